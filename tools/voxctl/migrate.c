/*
 * voxctl migrate: applies migrations/NNNN_name.sql in order, each in its own
 * transaction, under an advisory lock (two deploys cannot interleave),
 * recorded in schema_migrations with a checksum. Running it twice changes
 * nothing; a file edited after it was applied is refused.
 *
 * A file whose first line is "-- voxctl:no-transaction" runs outside a
 * transaction, one statement at a time (CREATE INDEX CONCURRENTLY cannot
 * run in one): it must be safe to run again after failing half-way, and is
 * recorded only once every statement has succeeded.
 */
#include <dirent.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_crypto.h"
#include "vox_pg.h"
#include "voxctl.h"

#define MIGRATE_LOCK_KEY  "7263" /* "vox" advisory lock id */
#define MIGRATE_MAX_FILES 1000

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool migration_name_ok(const char *name)
{
	size_t n = strlen(name);

	for (int i = 0; i < 4; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return n > 9 && name[4] == '_' && strcmp(name + n - 4, ".sql") == 0;
}

/* Sorted list of migration file names; caller frees each and the list. */
static int migration_files(const char *dir, char ***out, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	char **names;
	size_t n = 0;

	if (d == NULL)
		return -1;
	names = calloc(MIGRATE_MAX_FILES, sizeof(*names));
	while (names && (ent = readdir(d)) != NULL && n < MIGRATE_MAX_FILES)
		if (migration_name_ok(ent->d_name))
			names[n++] = strdup(ent->d_name);
	closedir(d);
	if (names == NULL)
		return -1;
	qsort(names, n, sizeof(*names), name_cmp);
	*out = names;
	*count = n;
	return 0;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)size + 1);
		if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
			free(buf);
			buf = NULL;
		}
		if (buf)
			buf[size] = '\0';
	}
	fclose(f);
	return buf;
}

/* 0 not applied, 1 applied with the same checksum, -1 applied but changed
 * or the lookup failed. */
static int migration_state(vox_pg_t *pg, const char *version,
                           const char *checksum, vox_error_t *err)
{
	const char *params[] = {version};
	PGresult *res;
	int state;

	if (vox_pg_exec(pg,
	                "SELECT checksum FROM schema_migrations WHERE "
	                "version = $1",
	                1, params, &res, err) != 0)
		return -1;
	if (PQntuples(res) == 0)
		state = 0;
	else if (strcmp(PQgetvalue(res, 0, 0), checksum) == 0)
		state = 1;
	else
		state = -1;
	if (state == -1)
		snprintf(err->message, sizeof(err->message),
		         "migration %s was changed after it was applied "
		         "(checksum %.12s..., recorded %.12s...)",
		         version, checksum, PQgetvalue(res, 0, 0));
	PQclear(res);
	return state;
}

#define MIGRATE_NO_TX "-- voxctl:no-transaction\n"

/* Length of the statement at sql (up to and including its ';' at the top
 * level: not in a quote, comment or dollar quote); *content tells whether
 * it holds more than blanks and comments. */
static size_t statement_len(const char *sql, bool *content)
{
	const char *p = sql, *tag = NULL;
	size_t taglen = 0;

	*content = false;
	while (*p) {
		if (tag != NULL) {
			if (strncmp(p, tag, taglen) == 0) {
				p += taglen;
				tag = NULL;
			} else {
				p++;
			}
		} else if (p[0] == '-' && p[1] == '-') {
			p += strcspn(p, "\n");
		} else if (p[0] == '/' && p[1] == '*') {
			const char *end = strstr(p + 2, "*/");
			p = end ? end + 2 : p + strlen(p);
		} else if (*p == '\'' || *p == '"') {
			const char *end = strchr(p + 1, *p);
			*content = true;
			p = end ? end + 1 : p + strlen(p);
		} else if (*p == '$' &&
		           p[1 +
		             strspn(p + 1, "abcdefghijklmnopqrstuvwxyz_")] ==
		                   '$') {
			tag = p;
			taglen = 2 +
			         strspn(p + 1, "abcdefghijklmnopqrstuvwxyz_");
			p += taglen;
			*content = true;
		} else if (*p == ';') {
			return (size_t)(p - sql) + 1;
		} else {
			if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
				*content = true;
			p++;
		}
	}
	return (size_t)(p - sql);
}

/* Each statement of sql on its own, autocommitted. */
static int migration_run_each(vox_pg_t *pg, const char *sql, vox_error_t *err)
{
	int rc = 0;

	while (rc == 0 && *sql) {
		bool content;
		size_t n = statement_len(sql, &content);
		char *one = content ? strndup(sql, n) : NULL;

		if (content && one == NULL)
			return vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
		if (one != NULL)
			rc = vox_pg_exec(pg, one, 0, NULL, NULL, err);
		free(one);
		sql += n;
	}
	return rc;
}

static int migration_apply(vox_pg_t *pg, const char *name, const char *sql,
                           const char *checksum, vox_error_t *err)
{
	char version[5];
	const char *params[] = {version, name, checksum};
	int rc;

	snprintf(version, sizeof(version), "%.4s", name);
	if (strncmp(sql, MIGRATE_NO_TX, strlen(MIGRATE_NO_TX)) == 0) {
		rc = migration_run_each(pg, sql, err);
		if (rc == 0)
			rc = vox_pg_exec(
			        pg,
			        "INSERT INTO schema_migrations (version, "
			        "name, checksum) VALUES ($1, $2, $3)",
			        3, params, NULL, err);
		return rc;
	}
	rc = vox_pg_exec(pg, "BEGIN", 0, NULL, NULL, err);
	if (rc == 0)
		rc = vox_pg_exec_script(pg, sql, err);
	if (rc == 0)
		rc = vox_pg_exec(pg,
		                 "INSERT INTO schema_migrations (version, "
		                 "name, checksum) VALUES ($1, $2, $3)",
		                 3, params, NULL, err);
	if (rc == 0)
		return vox_pg_exec(pg, "COMMIT", 0, NULL, NULL, err);
	vox_pg_exec(pg, "ROLLBACK", 0, NULL, NULL, NULL);
	return rc;
}

static int migrate_all(vox_pg_t *pg, const struct voxctl_cfg *cfg, char **files,
                       size_t nfiles, vox_error_t *err)
{
	int applied = 0, current = 0;

	for (size_t i = 0; i < nfiles; i++) {
		char path[4096], checksum[65] = "", version[5];
		char *sql;
		int state;

		snprintf(path, sizeof(path), "%s/%s", cfg->migrations_dir,
		         files[i]);
		snprintf(version, sizeof(version), "%.4s", files[i]);
		sql = read_file(path);
		if (sql == NULL) {
			fprintf(stderr, "voxctl: cannot read %s\n", path);
			return 1;
		}
		vox_sha256_hex(sql, strlen(sql), checksum);
		state = migration_state(pg, version, checksum, err);
		if (state == 0 &&
		    migration_apply(pg, files[i], sql, checksum, err) != 0) {
			fprintf(stderr, "voxctl: %s failed, %s: %s\n", files[i],
			        strncmp(sql, MIGRATE_NO_TX,
			                strlen(MIGRATE_NO_TX)) == 0
			                ? "not in a transaction (run migrate "
			                  "again once fixed)"
			                : "rolled back",
			        err->message);
			state = -2;
		} else if (state < 0) {
			fprintf(stderr, "voxctl: %s: %s\n", files[i],
			        err->message);
		}
		free(sql);
		if (state < 0)
			return 1;
		if (state == 0) {
			printf("applied %s\n", files[i]);
			applied++;
		} else {
			current++;
		}
	}
	printf("migrations: %d applied, %d already applied\n", applied,
	       current);
	return 0;
}

int voxctl_migrate(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	char **files = NULL;
	size_t nfiles = 0;
	vox_error_t err = {0};
	vox_pg_t *pg;
	int rc = 1;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: voxctl migrate\n");
		return 2;
	}
	if (migration_files(cfg->migrations_dir, &files, &nfiles) != 0) {
		fprintf(stderr, "voxctl: cannot read %s\n",
		        cfg->migrations_dir);
		return 1;
	}
	pg = vox_pg_new(cfg->pg_url);
	if (pg == NULL || vox_pg_connect(pg, (int)cfg->pg_wait_ms, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		goto out;
	}
	/* Session lock: held across the per-file transactions. */
	if (vox_pg_exec(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0,
	                NULL, NULL, &err) != 0 ||
	    vox_pg_exec(pg,
	                "CREATE TABLE IF NOT EXISTS schema_migrations ("
	                "version text PRIMARY KEY, name text NOT NULL, "
	                "checksum text NOT NULL, applied_at timestamptz NOT "
	                "NULL DEFAULT now())",
	                0, NULL, NULL, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		goto out;
	}
	rc = migrate_all(pg, cfg, files, nfiles, &err);
	vox_pg_exec(pg, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", 0,
	            NULL, NULL, NULL);
out:
	vox_pg_destroy(pg);
	for (size_t i = 0; i < nfiles; i++)
		free(files[i]);
	free(files);
	return rc;
}
