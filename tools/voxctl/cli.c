/*
 * voxctl cli: what the database subcommands (account, key) share:
 * dispatching "voxctl COMMAND SUB", usage errors, text checks, the
 * connection, and printing rows as a table or as JSON.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_json.h"
#include "voxctl.h"

/* PostgreSQL type oids printed as JSON numbers or booleans. */
#define PG_OID_BOOL 16
#define PG_OID_INT8 20
#define PG_OID_INT2 21
#define PG_OID_INT4 23

static void subs_usage(const struct voxctl_sub *subs, size_t nsubs, FILE *out)
{
	fprintf(out, "usage:\n");
	for (size_t i = 0; i < nsubs; i++)
		fprintf(out, "  %s\n", subs[i].usage);
}

static bool is_help(const char *arg)
{
	return strcmp(arg, "help") == 0 || strcmp(arg, "--help") == 0 ||
	       strcmp(arg, "-h") == 0;
}

int voxctl_dispatch(const struct voxctl_sub *subs, size_t nsubs,
                    const struct voxctl_cfg *cfg, int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "voxctl: %s needs a subcommand\n", argv[0]);
		subs_usage(subs, nsubs, stderr);
		return VOXCTL_USAGE;
	}
	if (is_help(argv[1])) {
		subs_usage(subs, nsubs, stdout);
		return VOXCTL_OK;
	}
	for (size_t i = 0; i < nsubs; i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].run(cfg, argc - 1, argv + 1);
	fprintf(stderr, "voxctl: unknown %s subcommand \"%s\"\n", argv[0],
	        argv[1]);
	subs_usage(subs, nsubs, stderr);
	return VOXCTL_USAGE;
}

int voxctl_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;

	fputs("voxctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: %s\n", usage);
	return VOXCTL_USAGE;
}

void voxctl_getopt_reset(void)
{
	optind = 1;
	opterr = 0;
}

/* Needs an optstring starting with ':' so a missing value reads ':'. */
int voxctl_bad_option(const char *usage, int opt, char **argv)
{
	const char *arg = argv[optind - 1];

	if (opt == ':')
		return voxctl_usage_error(usage, "option %s needs a value",
		                          arg);
	return voxctl_usage_error(usage, "unknown option \"%s\"", arg);
}

/* Decodes the UTF-8 sequence at s into *cp; its length, or 0 when it is
 * not valid (overlong forms, surrogates and truncation included). */
static size_t utf8_decode(const unsigned char *s, unsigned *cp)
{
	unsigned c = s[0], min;
	size_t len;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, *cp = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3, *cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, *cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		*cp = *cp << 6 | (s[i] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

bool voxctl_text_valid(const char *text, size_t min, size_t max, char *why,
                       size_t whylen)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t chars = 0, len;
	unsigned cp;

	while (*s != '\0') {
		len = utf8_decode(s, &cp);
		if (len == 0) {
			snprintf(why, whylen, "not valid UTF-8");
			return false;
		}
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
			snprintf(why, whylen, "contains a control character");
			return false;
		}
		s += len;
		chars++;
	}
	if (chars < min || chars > max) {
		snprintf(why, whylen, "must be %zu to %zu characters (has %zu)",
		         min, max, chars);
		return false;
	}
	return true;
}

vox_pg_t *voxctl_pg_open(const struct voxctl_cfg *cfg)
{
	vox_error_t err = {0};
	vox_pg_t *pg = vox_pg_new(cfg->pg_url);

	if (pg == NULL) {
		fprintf(stderr, "voxctl: out of memory\n");
		return NULL;
	}
	if (vox_pg_connect(pg, (int)cfg->pg_wait_ms, &err) != 0)
		goto out_destroy;
	/* Arguments were checked as UTF-8 and JSON output must be UTF-8,
	 * whatever the client locale would choose. */
	if (vox_pg_exec(pg, "SET client_encoding = 'UTF8'", 0, NULL, NULL,
	                &err) != 0)
		goto out_destroy;
	return pg;

out_destroy:
	fprintf(stderr, "voxctl: %s\n", err.message);
	vox_pg_destroy(pg);
	return NULL;
}

/* Columns of one width in a terminal: code points, control characters
 * shown as '?'. */
static size_t cell_width(const char *text)
{
	size_t width = 0;

	for (const unsigned char *s = (const unsigned char *)text; *s; s++)
		if ((*s & 0xc0) != 0x80)
			width++;
	return width;
}

/* Cell text without control characters: stored names are not all
 * written by voxctl, and a table must stay one line per row. */
static void cell_print(const char *text, size_t pad, FILE *out)
{
	for (const unsigned char *s = (const unsigned char *)text; *s; s++)
		fputc(*s < 0x20 || *s == 0x7f ? '?' : *s, out);
	fprintf(out, "%*s", (int)pad, "");
}

static const char *cell_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? "-" : PQgetvalue(res, row, col);
}

static int stdout_flushed(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "voxctl: cannot write to stdout\n");
		return VOXCTL_FAILED;
	}
	return VOXCTL_OK;
}

static int rows_table(const PGresult *res)
{
	int ncols = PQnfields(res), nrows = PQntuples(res);
	size_t *widths = calloc((size_t)ncols, sizeof(*widths));

	if (widths == NULL) {
		fprintf(stderr, "voxctl: out of memory\n");
		return VOXCTL_FAILED;
	}
	for (int c = 0; c < ncols; c++) {
		widths[c] = cell_width(PQfname(res, c));
		for (int r = 0; r < nrows; r++) {
			size_t w = cell_width(cell_text(res, r, c));

			widths[c] = w > widths[c] ? w : widths[c];
		}
	}
	for (int r = -1; r < nrows; r++) {
		for (int c = 0; c < ncols; c++) {
			const char *text =
			        r < 0 ? PQfname(res, c) : cell_text(res, r, c);
			bool last = c == ncols - 1;

			cell_print(text,
			           last ? 0 : widths[c] - cell_width(text) + 2,
			           stdout);
		}
		fputc('\n', stdout);
	}
	free(widths);
	return stdout_flushed();
}

static json_t *cell_json(const PGresult *res, int row, int col)
{
	const char *text = PQgetvalue(res, row, col);

	if (PQgetisnull(res, row, col))
		return json_null();
	switch (PQftype(res, col)) {
	case PG_OID_BOOL:
		return json_boolean(text[0] == 't');
	case PG_OID_INT2:
	case PG_OID_INT4:
	case PG_OID_INT8:
		return json_integer(strtoll(text, NULL, 10));
	default:
		return json_string(text);
	}
}

static json_t *row_json(const PGresult *res, int row)
{
	json_t *object = json_object();

	for (int c = 0; object != NULL && c < PQnfields(res); c++)
		if (json_object_set_new(object, PQfname(res, c),
		                        cell_json(res, row, c)) != 0) {
			json_decref(object);
			object = NULL;
		}
	return object;
}

/* Prints value as one line and releases it. */
static int json_print(json_t *value)
{
	char *text = value ? vox_json_dump(value) : NULL;

	json_decref(value);
	if (text == NULL) {
		fprintf(stderr, "voxctl: cannot build the JSON output\n");
		return VOXCTL_FAILED;
	}
	printf("%s\n", text);
	free(text);
	return stdout_flushed();
}

int voxctl_print_rows(const PGresult *res, bool json)
{
	json_t *rows;

	if (!json)
		return rows_table(res);
	rows = json_array();
	for (int r = 0; rows != NULL && r < PQntuples(res); r++)
		if (json_array_append_new(rows, row_json(res, r)) != 0) {
			json_decref(rows);
			rows = NULL;
		}
	return json_print(rows);
}

int voxctl_print_record(const PGresult *res, bool json)
{
	size_t width = 0;

	if (PQntuples(res) < 1)
		return VOXCTL_FAILED;
	if (json)
		return json_print(row_json(res, 0));
	for (int c = 0; c < PQnfields(res); c++)
		if (cell_width(PQfname(res, c)) > width)
			width = cell_width(PQfname(res, c));
	for (int c = 0; c < PQnfields(res); c++) {
		printf("%s:", PQfname(res, c));
		cell_print("", width - cell_width(PQfname(res, c)) + 1, stdout);
		cell_print(cell_text(res, 0, c), 0, stdout);
		fputc('\n', stdout);
	}
	return stdout_flushed();
}

static int revoke_run(vox_pg_t *pg, const struct voxctl_revocation *r,
                      const char *id)
{
	const char *params[] = {id};
	vox_error_t err = {0};
	PGresult *res;
	int rc = VOXCTL_OK, revoked;

	if (vox_pg_exec(pg, r->update_sql, 1, params, &res, &err) != 0)
		goto out_db_error;
	revoked = PQntuples(res);
	if (revoked == 1)
		r->print_revoked(id, res);
	PQclear(res);
	if (revoked == 1)
		return VOXCTL_OK;
	if (vox_pg_exec(pg, r->revoked_at_sql, 1, params, &res, &err) != 0)
		goto out_db_error;
	if (PQntuples(res) == 1) {
		printf("%s %s already revoked at %s\n", r->what, id,
		       PQgetvalue(res, 0, 0));
	} else {
		fprintf(stderr, "voxctl: no %s %s\n", r->what, id);
		rc = VOXCTL_FAILED;
	}
	PQclear(res);
	return rc;

out_db_error:
	fprintf(stderr, "voxctl: %s\n", err.message);
	return VOXCTL_FAILED;
}

int voxctl_revoke(const struct voxctl_cfg *cfg,
                  const struct voxctl_revocation *r, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	vox_pg_t *pg;
	int opt, rc;

	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt != 'h')
			return voxctl_bad_option(r->usage, opt, argv);
		printf("usage: %s\n", r->usage);
		return VOXCTL_OK;
	}
	if (argc - optind != 1)
		return voxctl_usage_error(r->usage, "one %s is needed",
		                          r->id_name);
	if (!vox_uuid_valid(argv[optind]))
		return voxctl_usage_error(r->usage, "%s \"%s\" is not a UUID",
		                          r->id_name, argv[optind]);
	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	rc = revoke_run(pg, r, argv[optind]);
	vox_pg_destroy(pg);
	if (rc == VOXCTL_OK && (fflush(stdout) != 0 || ferror(stdout)))
		rc = VOXCTL_FAILED;
	return rc;
}
