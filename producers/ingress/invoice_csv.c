/*
 * GET /v1/invoices/{id}/csv (docs/API.md "Invoices"): text/csv, RFC 4180
 * (CRLF, fields quoted when they hold a comma, quote, CR or LF).
 *  - default: the invoice's lines, one row each;
 *  - ?detail=usage: every usage record the invoice's usage lines sum (the
 *    account's rated records started in the period, in its currency, and
 *    for a finalized invoice recorded before its usage_cutoff), streamed:
 *    a connection of its own runs the query in libpq's single-row mode and
 *    libmicrohttpd pulls rows as the client reads, so two million records
 *    never sit in memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "vox_buf.h"
#include "vox_log.h"

#define CSV_CHUNK (48 * 1024)

/* One CSV field, quoted when it must be (RFC 4180). */
static void csv_field(vox_buf_t *b, const char *s, bool first)
{
	if (!first)
		vox_buf_add(b, ",", 1);
	if (strpbrk(s, ",\"\r\n") == NULL) {
		vox_buf_adds(b, s);
		return;
	}
	vox_buf_add(b, "\"", 1);
	for (const char *p = s; *p; p++) {
		if (*p == '"')
			vox_buf_add(b, "\"", 1);
		vox_buf_add(b, p, 1);
	}
	vox_buf_add(b, "\"", 1);
}

/* A row of res as CSV fields (NULL: empty), ending in CRLF. */
static void csv_row(vox_buf_t *b, const PGresult *res, int row, int ncols)
{
	for (int c = 0; c < ncols; c++)
		csv_field(b,
		          PQgetisnull(res, row, c) ? ""
		                                   : PQgetvalue(res, row, c),
		          c == 0);
	vox_buf_add(b, "\r\n", 2);
}

static void csv_header(vox_buf_t *b, const char *const *names)
{
	for (size_t i = 0; names[i] != NULL; i++)
		csv_field(b, names[i], i == 0);
	vox_buf_add(b, "\r\n", 2);
}

static void disposition(vox_http_req_t *req, const PGresult *inv,
                        const char *suffix)
{
	char v[200];

	snprintf(v, sizeof(v), "attachment; filename=\"invoice-%s%s.csv\"",
	         PQgetisnull(inv, 0, IC_NUMBER) ? PQgetvalue(inv, 0, IC_ID)
	                                        : PQgetvalue(inv, 0, IC_NUMBER),
	         suffix);
	vox_http_add_header(req, "Content-Disposition", v);
}

static void lines_csv(vox_http_req_t *req, ingress_req_t *ir,
                      const PGresult *inv, const char *id)
{
	static const char *const header[] = {
	        "line_no",       "kind",     "description", "phone_number",
	        "event_type",    "quantity", "unit",        "unit_price_micros",
	        "amount_micros", "days",     "period_days", "period_start",
	        "period_end",    NULL};
	PGresult *lines = billing_invoice_lines(req, ir, id);
	vox_buf_t b;

	if (lines == NULL)
		return;
	vox_buf_init(&b, 64u * 1024 * 1024);
	csv_header(&b, header);
	for (int i = 0; i < PQntuples(lines); i++)
		csv_row(&b, lines, i, LC_METADATA);
	PQclear(lines);
	if (vox_buf_error(&b) != 0) {
		vox_buf_free(&b);
		ingress_error(req, 500, "internal", "out of memory", NULL);
		return;
	}
	disposition(req, inv, "");
	vox_http_reply(req, 200, "text/csv; charset=utf-8", vox_buf_str(&b),
	               vox_buf_len(&b));
	vox_buf_free(&b);
}

/* ---------------------------------------------------------------- detail */

struct usage_stream {
	vox_pg_t *pg;
	vox_buf_t buf;
	size_t off;  /* sent of buf */
	bool done;   /* the query's rows are all in buf */
	bool failed; /* cut the answer */
	long long rows;
	char invoice_id[VOX_UUID_STRLEN];
};

static void usage_stream_free(void *arg)
{
	struct usage_stream *st = arg;
	PGconn *conn = st->pg ? vox_pg_conn(st->pg) : NULL;

	/* Abandoned halfway (the client left): stop the server's query
	 * before closing. */
	if (conn != NULL && !st->done) {
		PGcancel *c = PQgetCancel(conn);
		char errbuf[256];

		if (c != NULL) {
			PQcancel(c, errbuf, sizeof(errbuf));
			PQfreeCancel(c);
		}
	}
	vox_pg_destroy(st->pg);
	vox_buf_free(&st->buf);
	free(st);
}

/* Rows into buf until it holds a chunk or the query ends. */
static void usage_fill(struct usage_stream *st)
{
	PGconn *conn = vox_pg_conn(st->pg);
	PGresult *res;

	while (!st->done && !st->failed && vox_buf_len(&st->buf) < CSV_CHUNK) {
		res = PQgetResult(conn);
		if (res == NULL) {
			st->done = true;
			break;
		}
		switch (PQresultStatus(res)) {
		case PGRES_SINGLE_TUPLE:
			csv_row(&st->buf, res, 0, 7);
			st->rows++;
			break;
		case PGRES_TUPLES_OK:
			break; /* the end; NULL follows */
		default:
			vox_log(VOX_LOG_ERROR, "invoice usage CSV failed",
			        "invoice", st->invoice_id, "error",
			        PQresultErrorMessage(res), NULL);
			st->failed = true;
		}
		PQclear(res);
	}
	if (vox_buf_error(&st->buf) != 0)
		st->failed = true;
}

static long usage_read(void *arg, uint64_t pos, char *out, size_t max)
{
	struct usage_stream *st = arg;
	size_t left, n;

	(void)pos;
	if (st->off == vox_buf_len(&st->buf)) {
		vox_buf_reset(&st->buf);
		st->off = 0;
		usage_fill(st);
	}
	left = vox_buf_len(&st->buf) - st->off;
	if (st->failed)
		return VOX_HTTP_STREAM_ERROR;
	if (left == 0)
		return VOX_HTTP_STREAM_END;
	n = left < max ? left : max;
	memcpy(out, vox_buf_str(&st->buf) + st->off, n);
	st->off += n;
	return (long)n;
}

static const char usage_sql[] =
        "SELECT r.id, vox_iso(r.started_at), r.e164, r.event_type, "
        "r.billable_s, r.units, r.cost_micros FROM invoices i JOIN "
        "usage_records r ON r.account_id = i.account_id AND r.started_at >= "
        "i.period_start AND r.started_at < i.period_end AND r.currency = "
        "i.currency AND r.cost_micros IS NOT NULL AND (i.usage_cutoff IS "
        "NULL OR r.created_at <= i.usage_cutoff) WHERE i.id = $1 AND "
        "i.account_id = $2 ORDER BY r.started_at, r.id";

static void usage_csv(vox_http_req_t *req, ingress_req_t *ir,
                      const PGresult *inv, const char *id)
{
	static const char *const header[] = {
	        "id",         "started_at", "e164",        "event_type",
	        "billable_s", "units",      "cost_micros", NULL};
	struct usage_stream *st = calloc(1, sizeof(*st));
	const char *params[] = {id, ir->who.account_id};
	vox_error_t err = {0};
	PGconn *conn;

	if (st == NULL) {
		ingress_error(req, 500, "internal", "out of memory", NULL);
		return;
	}
	snprintf(st->invoice_id, sizeof(st->invoice_id), "%s", id);
	vox_buf_init(&st->buf, 4u * CSV_CHUNK);
	/* A connection of its own: a long export must not hold one of the
	 * pool's. */
	st->pg = vox_pg_new(ir->in->cfg->pg_url);
	if (st->pg == NULL || vox_pg_connect(st->pg, 2000, &err) != 0) {
		ingress_error(req, 503, "database_unavailable",
		              st->pg ? err.message : "out of memory", NULL);
		st->done = true;
		usage_stream_free(st);
		return;
	}
	conn = vox_pg_conn(st->pg);
	if (!PQsendQueryParams(conn, usage_sql, 2, NULL, params, NULL, NULL,
	                       0) ||
	    !PQsetSingleRowMode(conn)) {
		ingress_error(req, 503, "database_unavailable",
		              PQerrorMessage(conn), NULL);
		usage_stream_free(st);
		return;
	}
	csv_header(&st->buf, header);
	/* The first rows now: a query that fails at once answers 503, not
	 * a 200 cut short. */
	usage_fill(st);
	if (st->failed) {
		ingress_error(req, 503, "database_unavailable",
		              "the usage records could not be read", NULL);
		usage_stream_free(st);
		return;
	}
	disposition(req, inv, "-usage");
	vox_http_reply_stream(req, 200, "text/csv; charset=utf-8", usage_read,
	                      st, usage_stream_free);
}

void ingress_invoice_csv(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	const char *detail;
	PGresult *inv;

	if (ir == NULL)
		return;
	detail = vox_http_query(req, "detail");
	if (detail != NULL && strcmp(detail, "usage") != 0 &&
	    strcmp(detail, "lines") != 0) {
		ingress_bad_param(req, "detail", "usage or lines");
		return;
	}
	if ((inv = billing_invoice_lookup(req, ir, id)) == NULL)
		return;
	if (detail != NULL && strcmp(detail, "usage") == 0)
		usage_csv(req, ir, inv, id);
	else
		lines_csv(req, ir, inv, id);
	PQclear(inv);
}
