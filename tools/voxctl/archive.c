/*
 * voxctl housekeep, last steps: usage_records months past
 * VOX_USAGE_RETENTION_MONTHS leave the database for the object store
 * (docs/HOUSEKEEPING.md "Usage months").
 *
 * A month is archived only once every account with usage in it has a
 * non-draft invoice that covers the month's end and was cut off after the
 * account's last record of the month (invoices read usage_records: a month
 * not invoiced yet stays). Its partition is then detached (CONCURRENTLY
 * when usage_records has no DEFAULT partition; with one, PostgreSQL refuses
 * that, and a plain DETACH under a short lock_timeout, retried, takes the
 * parent's lock for a moment), written as gzip'd CSV with a header to
 * VOX_ARCHIVE_BUCKET at usage_records/YYYY/MM/<partition>.csv.gz, read
 * back and compared byte for byte (SHA-256), recorded in usage_archives
 * and dropped in one transaction. A detached table not archived yet (the
 * store was down, the pass was stopped) is archived by the next pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "vox_crypto.h"
#include "vox_s3.h"
#include "voxctl.h"

#define ARCHIVE_DETACH_TRIES 5
#define ARCHIVE_CHUNK        (256 * 1024)
/* A month found not invoiced is checked again after this: the check reads
 * the whole month, and passes come every few minutes. */
#define ARCHIVE_RECHECK "1 day"

/* clang-format off */
/* Attached monthly partitions before the retention's first kept month,
 * whether a pending CONCURRENTLY detach was interrupted, whether
 * usage_records has a DEFAULT partition, and whether the month was found
 * not invoiced less than ARCHIVE_RECHECK ago. */
static const char due_sql[] =
	"SELECT c.relname, i.inhdetachpending,"
	" (SELECT partdefid <> 0 FROM pg_partitioned_table"
	"  WHERE partrelid = 'usage_records'::regclass),"
	" EXISTS (SELECT 1 FROM housekeep_state s WHERE s.name ="
	"  'usage_kept:' || c.relname AND s.updated_at > now() - interval"
	"  '" ARCHIVE_RECHECK "')"
	" FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
	" WHERE i.inhparent = 'usage_records'::regclass"
	"  AND c.relname ~ '^usage_records_y[0-9]{4}m[0-9]{2}$'"
	"  AND to_date(substr(c.relname, 16, 4) || substr(c.relname, 21, 2),"
	"   'YYYYMM') < (date_trunc('month', now() AT TIME ZONE 'UTC')"
	"   - make_interval(months => $1::int))::date"
	" ORDER BY 1";

/* Detached monthly tables in usage_records' schema not archived yet. */
static const char detached_sql[] =
	"SELECT c.relname FROM pg_class c"
	" WHERE c.relnamespace = (SELECT relnamespace FROM pg_class"
	"  WHERE oid = 'usage_records'::regclass)"
	"  AND c.relkind = 'r' AND NOT c.relispartition"
	"  AND c.relname ~ '^usage_records_y[0-9]{4}m[0-9]{2}$'"
	"  AND NOT EXISTS (SELECT 1 FROM usage_archives a"
	"   WHERE a.partition = c.relname)"
	" ORDER BY 1";

/* Accounts of the month not invoiced past it (%s: the partition, a name
 * of the pattern above; $1 its month's end). */
static const char uninvoiced_fmt[] =
	"SELECT count(*) FROM (SELECT account_id, max(created_at) AS last"
	" FROM \"%s\" GROUP BY account_id) a WHERE NOT EXISTS (SELECT 1 FROM"
	" invoices i WHERE i.account_id = a.account_id AND i.status <> 'draft'"
	" AND i.period_end >= $1::timestamptz AND i.usage_cutoff >= a.last)";
/* clang-format on */

struct archive_tally {
	int archived, kept;
	long long rows;
};

/* "usage_records_y2019m03" -> "2019-03-01", "2019", "03". */
static void archive_month(const char *name, char month[11], char year[5],
                          char mm[3])
{
	snprintf(year, 5, "%.4s", name + 15);
	snprintf(mm, 3, "%.2s", name + 20);
	snprintf(month, 11, "%s-%s-01", year, mm);
}

/* 1 when some account of the month is not invoiced past it, 0 when all
 * are, -1 on error. */
static int archive_uninvoiced(vox_pg_t *pg, const char *name, long *accounts,
                              vox_error_t *err)
{
	char sql[sizeof(uninvoiced_fmt) + 64], month[11], year[5], mm[3];
	char end[32];
	PGresult *res = NULL;
	const char *params[] = {end};

	archive_month(name, month, year, mm);
	snprintf(sql, sizeof(sql), uninvoiced_fmt, name);
	/* the month's end, computed by PostgreSQL */
	const char *mp[] = {month};
	if (vox_pg_exec(pg,
	                "SELECT (($1::date + interval '1 month')::timestamp "
	                "AT TIME ZONE 'UTC')::text",
	                1, mp, &res, err) != 0)
		return -1;
	snprintf(end, sizeof(end), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (vox_pg_exec(pg, sql, 1, params, &res, err) != 0)
		return -1;
	*accounts = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return *accounts > 0;
}

/* Remembers that name was found not invoiced, now. */
static int archive_kept(vox_pg_t *pg, const char *name, long accounts,
                        vox_error_t *err)
{
	char count[24];
	const char *params[] = {name, count};

	snprintf(count, sizeof(count), "%ld", accounts);
	return vox_pg_exec(pg,
	                   "INSERT INTO housekeep_state (name, value) VALUES "
	                   "('usage_kept:' || $1, $2) ON CONFLICT (name) DO "
	                   "UPDATE SET value = EXCLUDED.value, updated_at = "
	                   "now()",
	                   2, params, NULL, err);
}

static int archive_detach(vox_pg_t *pg, const char *name, bool pending,
                          bool has_default, vox_error_t *err)
{
	char sql[200];
	struct timespec pause = {0, 500 * 1000 * 1000};
	int rc = -1;

	snprintf(sql, sizeof(sql),
	         "ALTER TABLE usage_records DETACH PARTITION \"%s\"%s", name,
	         pending       ? " FINALIZE"
	         : has_default ? ""
	                       : " CONCURRENTLY");
	/* lock_timeout (the session's) bounds how long writers queue behind
	 * a plain DETACH; a busy moment is tried again. */
	for (int i = 0; i < ARCHIVE_DETACH_TRIES && rc != 0; i++) {
		if (i > 0)
			nanosleep(&pause, NULL);
		rc = vox_pg_exec(pg, sql, 0, NULL, NULL, err);
		if (rc != 0 && strstr(err->message, "55P03") == NULL)
			break;
	}
	return rc;
}

struct gz_out {
	z_stream zs;
	unsigned char *data;
	size_t len, cap;
};

static int gz_write(struct gz_out *g, const void *in, size_t n, int flush)
{
	int zrc;

	g->zs.next_in = (Bytef *)in;
	g->zs.avail_in = (uInt)n;
	do {
		if (g->cap - g->len < ARCHIVE_CHUNK) {
			size_t cap = g->cap * 2 + ARCHIVE_CHUNK;
			unsigned char *d = realloc(g->data, cap);

			if (d == NULL)
				return -1;
			g->data = d;
			g->cap = cap;
		}
		g->zs.next_out = g->data + g->len;
		g->zs.avail_out = (uInt)(g->cap - g->len);
		zrc = deflate(&g->zs, flush);
		g->len = g->cap - g->zs.avail_out;
		if (zrc == Z_STREAM_ERROR)
			return -1;
	} while (g->zs.avail_out == 0 ||
	         (flush == Z_FINISH && zrc != Z_STREAM_END));
	return 0;
}

/* The table as gzip'd CSV with a header line, in g; *rows its rows. */
static int archive_export(vox_pg_t *pg, const char *name, struct gz_out *g,
                          long long *rows, vox_error_t *err)
{
	PGconn *conn = vox_pg_conn(pg);
	char sql[200], *line;
	PGresult *res;
	int n, rc = 0;

	if (conn == NULL)
		return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                     "postgres connection lost");
	if (deflateInit2(&g->zs, 6, Z_DEFLATED, 15 + 16, 8,
	                 Z_DEFAULT_STRATEGY) != Z_OK)
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "deflateInit2 failed");
	snprintf(sql, sizeof(sql),
	         "COPY (SELECT * FROM \"%s\" ORDER BY started_at, id) TO "
	         "STDOUT WITH (FORMAT csv, HEADER true)",
	         name);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT) {
		rc = vox_pg_error(pg, res, err);
		PQclear(res);
		return rc != 0 ? rc : -1;
	}
	PQclear(res);
	while ((n = PQgetCopyData(conn, &line, 0)) > 0) {
		if (rc == 0 && gz_write(g, line, (size_t)n, Z_NO_FLUSH) != 0)
			rc = vox_error_set(err, VOX_ERR_NOMEM, false,
			                   "out of memory compressing %s",
			                   name);
		PQfreemem(line);
	}
	res = PQgetResult(conn);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == 0)
		rc = vox_pg_error(pg, res, err);
	*rows = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
	if (rc == 0 && gz_write(g, "", 0, Z_FINISH) != 0)
		rc = vox_error_set(err, VOX_ERR_NOMEM, false,
		                   "out of memory compressing %s", name);
	return rc;
}

/* PUT, then GET back and compare: the rows are dropped only once the
 * store holds exactly these bytes. */
static int archive_store(vox_s3_t *s3, const char *key, const struct gz_out *g,
                         char sha[65], vox_error_t *err)
{
	char *back = NULL, back_sha[65];
	size_t back_len = 0;
	int rc;

	vox_sha256_hex(g->data, g->len, sha);
	rc = vox_s3_put(s3, key, g->data, g->len, "application/gzip", err);
	if (rc == 0)
		rc = vox_s3_get(s3, key, g->len + 1, &back, &back_len, err);
	if (rc == 0) {
		vox_sha256_hex(back, back_len, back_sha);
		if (back_len != g->len || strcmp(sha, back_sha) != 0)
			rc = vox_error_set(err, VOX_ERR_INTERNAL, true,
			                   "%s read back differs from what was "
			                   "written (%zu bytes, %zu read)",
			                   key, g->len, back_len);
	}
	free(back);
	return rc;
}

struct archive_done {
	const char *name, *month, *bucket, *key, *sha;
	char rows[24], bytes[24];
};

static int archive_record_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct archive_done *d = arg;
	const char *params[] = {d->name, d->month, d->bucket, d->key,
	                        d->rows, d->bytes, d->sha};
	char sql[100];

	if (vox_pg_exec(pg,
	                "INSERT INTO usage_archives (partition, month, bucket, "
	                "object_key, rows, bytes, sha256) VALUES ($1, $2, $3, "
	                "$4, $5, $6, $7)",
	                7, params, NULL, err) != 0)
		return -1;
	if (vox_pg_exec(pg,
	                "DELETE FROM housekeep_state WHERE name = "
	                "'usage_kept:' || $1",
	                1, params, NULL, err) != 0)
		return -1;
	snprintf(sql, sizeof(sql), "DROP TABLE \"%s\"", d->name);
	return vox_pg_exec(pg, sql, 0, NULL, NULL, err);
}

static int archive_one(vox_pg_t *pg, vox_s3_t *s3, const char *bucket,
                       const char *name, struct archive_tally *t,
                       vox_error_t *err)
{
	char month[11], year[5], mm[3], key[200], sha[65];
	struct gz_out g;
	long long rows = 0;
	int rc;

	memset(&g, 0, sizeof(g));
	archive_month(name, month, year, mm);
	snprintf(key, sizeof(key), "usage_records/%s/%s/%s.csv.gz", year, mm,
	         name);
	rc = archive_export(pg, name, &g, &rows, err);
	deflateEnd(&g.zs);
	if (rc == 0)
		rc = archive_store(s3, key, &g, sha, err);
	if (rc == 0) {
		struct archive_done d = {name, month, bucket, key, sha, "", ""};

		snprintf(d.rows, sizeof(d.rows), "%lld", rows);
		snprintf(d.bytes, sizeof(d.bytes), "%zu", g.len);
		rc = vox_pg_transaction(pg, archive_record_tx, &d, err);
	}
	if (rc == 0) {
		printf("usage_records partitions: %s archived: %lld rows, "
		       "%zu bytes to s3://%s/%s\n",
		       name, rows, g.len, bucket, key);
		t->archived++;
		t->rows += rows;
	}
	free(g.data);
	return rc;
}

static vox_s3_t *archive_s3(const struct voxctl_cfg *cfg, vox_error_t *err)
{
	vox_s3_conf_t conf = {
	        .endpoint = cfg->s3_endpoint,
	        .region = cfg->s3_region,
	        .bucket = cfg->archive_bucket,
	        .access_key = cfg->s3_access_key,
	        .secret_key = cfg->s3_secret_key,
	        .timeout_ms = 120000,
	};
	vox_error_t ignored = {0};
	vox_s3_t *s3;

	if (cfg->s3_access_key[0] == '\0') {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "usage months are due for archiving but "
		              "VOX_S3_ACCESS_KEY is empty: they are kept");
		return NULL;
	}
	s3 = vox_s3_new(&conf, err);
	/* A store that refuses bucket creation may still hold the bucket:
	 * the PUT says what is wrong. */
	if (s3 != NULL)
		vox_s3_ensure_bucket(s3, &ignored);
	return s3;
}

/* Detaches the due months that are invoiced; counts the others. */
static int archive_detach_due(vox_pg_t *pg, const struct voxctl_cfg *cfg,
                              struct archive_tally *t, vox_error_t *err)
{
	char months[24];
	const char *params[] = {months};
	PGresult *due = NULL;
	int rc = 0;

	snprintf(months, sizeof(months), "%ld", cfg->usage_retention_months);
	if (vox_pg_exec(pg, due_sql, 1, params, &due, err) != 0)
		return -1;
	for (int i = 0; rc == 0 && i < PQntuples(due); i++) {
		const char *name = PQgetvalue(due, i, 0);
		bool pending = strcmp(PQgetvalue(due, i, 1), "t") == 0;
		bool has_default = strcmp(PQgetvalue(due, i, 2), "t") == 0;
		bool kept_lately = strcmp(PQgetvalue(due, i, 3), "t") == 0;
		long accounts = 0;

		if (kept_lately && !pending) {
			printf("usage_records partitions: %s kept: not "
			       "invoiced past its month at the last check "
			       "(again after " ARCHIVE_RECHECK ")\n",
			       name);
			t->kept++;
			continue;
		}
		rc = pending ? 0 : archive_uninvoiced(pg, name, &accounts, err);
		if (rc == 1) {
			printf("usage_records partitions: %s kept: %ld "
			       "accounts not invoiced past its month\n",
			       name, accounts);
			t->kept++;
			rc = archive_kept(pg, name, accounts, err);
			continue;
		}
		/* not detached when it could not be archived after */
		if (rc == 0 && cfg->s3_access_key[0] == '\0')
			rc = vox_error_set(
			        err, VOX_ERR_INVALID, false,
			        "%s is due for archiving but "
			        "VOX_S3_ACCESS_KEY is empty: it stays",
			        name);
		if (rc == 0)
			rc = archive_detach(pg, name, pending, has_default,
			                    err);
	}
	PQclear(due);
	return rc;
}

int voxctl_archive_usage(vox_pg_t *pg, const struct voxctl_cfg *cfg,
                         vox_error_t *err)
{
	struct archive_tally t = {0};
	struct timespec start, now;
	vox_error_t ignored = {0};
	char timeout[24];
	PGresult *detached = NULL;
	vox_s3_t *s3 = NULL;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &start);
	/* Reading a whole month (the invoice check, the export) may take
	 * longer than a batch may: it blocks no writer. lock_timeout stays. */
	rc = vox_pg_exec(pg, "SET statement_timeout = 0", 0, NULL, NULL, err);
	if (rc == 0)
		rc = archive_detach_due(pg, cfg, &t, err);
	if (rc == 0)
		rc = vox_pg_exec(pg, detached_sql, 0, NULL, &detached, err);
	if (rc == 0 && PQntuples(detached) > 0 &&
	    (s3 = archive_s3(cfg, err)) == NULL)
		rc = -1;
	for (int i = 0; rc == 0 && i < PQntuples(detached); i++)
		rc = archive_one(pg, s3, cfg->archive_bucket,
		                 PQgetvalue(detached, i, 0), &t, err);
	PQclear(detached);
	vox_s3_destroy(s3);
	snprintf(timeout, sizeof(timeout), "%ld", cfg->hk_statement_timeout_ms);
	const char *params[] = {timeout};
	if (vox_pg_exec(pg, "SELECT set_config('statement_timeout', $1, false)",
	                1, params, NULL, rc == 0 ? err : &ignored) != 0)
		rc = -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (rc == 0)
		printf("usage_records partitions: %d archived (%lld rows), %d "
		       "kept, %lld ms\n",
		       t.archived, t.rows, t.kept,
		       (now.tv_sec - start.tv_sec) * 1000LL +
		               (now.tv_nsec - start.tv_nsec) / 1000000);
	return rc;
}
