/*
 * Usage: GET /v1/usage (sums of usage_daily, the per-day aggregates the
 * metering worker keeps) and the usage triggers resource
 * (/v1/usage-triggers). Triggers are account configuration, written
 * synchronously like API keys: the answer is the stored trigger, there is
 * no operation to follow. Firing them is the metering worker's job. The
 * callback_url passes the destination filter (vox_ssrf), and the callback
 * is signed with a whsec_ secret answered once, at creation.
 * Every query is scoped by the caller's account.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingress.h"
#include "vox_cdr.h"
#include "vox_json.h"
#include "vox_phone.h"
#include "vox_time.h"
#include "vox_whsig.h"

#define USAGE_MAX_DAYS        366
#define TRIGGER_NAME_MAX      200
#define TRIGGER_THRESHOLD_MAX (1LL << 53)

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static long days_from_civil(long y, long m, long d)
{
	long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Strict YYYY-MM-DD (years 2000..9999) to days since the epoch. */
static bool date_parse(const char *text, long *days)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
	                            31, 31, 30, 31, 30, 31};
	long y, m, d;

	if (strlen(text) != 10 || text[4] != '-' || text[7] != '-' ||
	    strspn(text, "0123456789") != 4 ||
	    strspn(text + 5, "0123456789") != 2 ||
	    strspn(text + 8, "0123456789") != 2)
		return false;
	y = strtol(text, NULL, 10);
	m = strtol(text + 5, NULL, 10);
	d = strtol(text + 8, NULL, 10);
	if (y < 2000 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	if (m == 2 && d == 29 &&
	    !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return false;
	*days = days_from_civil(y, m, d);
	return true;
}

struct usage_query {
	char start[11], end[11];
	const char *group_by, *event_type, *number;
};

/* Days since the epoch to YYYY-MM-DD. */
static void date_format(long days, char out[11])
{
	time_t t = (time_t)days * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

/* Reads and checks the query string; false after answering 400. A date
 * left out is chosen so that the range is valid: end_date defaults to
 * today, kept within start_date .. start_date + 365 days, and start_date
 * to the first day of end_date's month. */
static bool usage_args(vox_http_req_t *req, struct usage_query *q)
{
	const char *start = vox_http_query(req, "start_date");
	const char *end = vox_http_query(req, "end_date");
	long start_days = 0, end_days = 0;

	if (start != NULL && !date_parse(start, &start_days))
		return ingress_bad_param(req, "start_date",
		                         "a date YYYY-MM-DD (UTC) is needed");
	if (end != NULL && !date_parse(end, &end_days))
		return ingress_bad_param(req, "end_date",
		                         "a date YYYY-MM-DD (UTC) is needed");
	if (end == NULL) {
		end_days = (long)(vox_now_us() / 86400000000LL);
		if (start != NULL && end_days < start_days)
			end_days = start_days;
		if (start != NULL && end_days - start_days >= USAGE_MAX_DAYS)
			end_days = start_days + USAGE_MAX_DAYS - 1;
	}
	date_format(end_days, q->end);
	if (start == NULL) {
		snprintf(q->start, sizeof(q->start), "%.8s01", q->end);
		if (!date_parse(q->start, &start_days))
			return ingress_bad_param(
			        req, "end_date",
			        "a date YYYY-MM-DD (UTC) is needed");
	} else {
		date_format(start_days, q->start);
	}
	if (start_days > end_days)
		return ingress_bad_param(req, "start_date", "after end_date");
	if (end_days - start_days + 1 > USAGE_MAX_DAYS)
		return ingress_bad_param(req, "end_date",
		                         "the range covers more than 366 days");
	q->group_by = vox_http_query(req, "group_by");
	if (q->group_by == NULL)
		q->group_by = "day";
	if (strcmp(q->group_by, "day") != 0 &&
	    strcmp(q->group_by, "number") != 0 &&
	    strcmp(q->group_by, "event_type") != 0)
		return ingress_bad_param(req, "group_by",
		                         "one of day, number, event_type");
	q->event_type = vox_http_query(req, "event_type");
	if (q->event_type != NULL && vox_cdr_type_parse(q->event_type) < 0)
		return ingress_bad_param(req, "event_type",
		                         "one of inbound_call, outbound_call, "
		                         "sms_received, sms_sent");
	q->number = vox_http_query(req, "number");
	if (q->number != NULL && !vox_phone_is_e164(q->number))
		return ingress_bad_param(req, "number",
		                         "an E.164 number, e.g. +14155550123 "
		                         "(encode + as %2B)");
	return true;
}

/* micro-units as a decimal string: 12345678 -> "12.345678". */
static void micros_text(long long micros, char *out, size_t outlen)
{
	unsigned long long abs = micros < 0 ? 0ULL - (unsigned long long)micros
	                                    : (unsigned long long)micros;

	snprintf(out, outlen, "%s%llu.%06llu", micros < 0 ? "-" : "",
	         abs / 1000000ULL, abs % 1000000ULL);
}

enum { SUM_RECORDS, SUM_DURATION, SUM_BILLABLE, SUM_UNITS, SUM_COST, NSUMS };
static const char *const sum_names[NSUMS] = {
        "records", "duration_s", "billable_s", "units", "cost_micros"};

static json_t *sums_json(const long long sums[NSUMS])
{
	json_t *o = json_object();
	char cost[32];

	for (int i = 0; i < NSUMS; i++)
		json_object_set_new(o, sum_names[i], json_integer(sums[i]));
	micros_text(sums[SUM_COST], cost, sizeof(cost));
	json_object_set_new(o, "cost", json_string(cost));
	return o;
}

#define USAGE_SQL(key)                                                         \
	"SELECT " key ", sum(u.records)::bigint, sum(u.duration_s)::bigint, "  \
	"sum(u.billable_s)::bigint, sum(u.units)::bigint, "                    \
	"sum(u.cost_micros)::bigint FROM usage_daily u JOIN accounts a ON "    \
	"a.id = u.account_id AND u.currency = a.currency WHERE u.account_id "  \
	"= $1 AND u.day BETWEEN $2::date AND $3::date AND ($4::text IS NULL "  \
	"OR u.event_type = $4) AND ($5::text IS NULL OR u.e164 = $5) GROUP "   \
	"BY 1 ORDER BY 1"

static const struct {
	const char *group_by, *name, *sql;
} usage_queries[] = {
        {"day", "ingress_usage_by_day",
         USAGE_SQL("to_char(u.day, 'YYYY-MM-DD')")},
        {"number", "ingress_usage_by_number", USAGE_SQL("u.e164")},
        {"event_type", "ingress_usage_by_type", USAGE_SQL("u.event_type")},
};

/* The items and totals of res, in the answer's shape. */
static json_t *usage_answer(const struct usage_query *q, const char *currency,
                            const PGresult *res)
{
	long long totals[NSUMS] = {0};
	json_t *items = json_array();

	for (int row = 0; row < PQntuples(res); row++) {
		long long sums[NSUMS];
		json_t *item;

		for (int i = 0; i < NSUMS; i++) {
			sums[i] =
			        strtoll(PQgetvalue(res, row, i + 1), NULL, 10);
			totals[i] += sums[i];
		}
		item = sums_json(sums);
		json_object_set_new(item, q->group_by,
		                    json_string(PQgetvalue(res, row, 0)));
		json_array_append_new(items, item);
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "currency", currency,
	                 "start_date", q->start, "end_date", q->end, "group_by",
	                 q->group_by, "totals", sums_json(totals), "items",
	                 items);
}

void ingress_usage_get(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	struct usage_query q;
	PGresult *cur = NULL, *res = NULL;
	vox_error_t err;
	vox_pg_t *pg;
	size_t k = 0;
	int rc;

	if (ir == NULL || !usage_args(req, &q))
		return;
	while (strcmp(usage_queries[k].group_by, q.group_by) != 0)
		k++;
	const char *params[] = {ir->who.account_id, q.start, q.end,
	                        q.event_type, q.number};
	if ((pg = ingress_pg(ir->in, req)) == NULL)
		return;
	rc = vox_pg_execp(pg, "ingress_usage_currency",
	                  "SELECT currency FROM accounts WHERE id = $1", 1,
	                  params, &cur, &err);
	if (rc == 0)
		rc = vox_pg_execp(pg, usage_queries[k].name,
		                  usage_queries[k].sql, 5, params, &res, &err);
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (rc != 0)
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
	else if (PQntuples(cur) == 0)
		vox_http_reply_error(req, 404, "account_not_found",
		                     "no account has this id", NULL);
	else
		vox_http_reply_json(
		        req, 200, usage_answer(&q, PQgetvalue(cur, 0, 0), res));
	PQclear(cur);
	PQclear(res);
}

/* ---------------------------------------------------------------- triggers */

#define TRIGGER_COLUMNS                                                        \
	"id, category, trigger_by, threshold, recurring, callback_url, "       \
	"friendly_name, vox_iso(created_at), vox_iso(deleted_at)"

static json_t *trigger_row(const PGresult *res, int i)
{
	json_t *t = json_pack(
	        "{s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:s}", "id",
	        PQgetvalue(res, i, 0), "category", PQgetvalue(res, i, 1),
	        "trigger_by", PQgetvalue(res, i, 2), "threshold",
	        (json_int_t)strtoll(PQgetvalue(res, i, 3), NULL, 10),
	        "recurring", PQgetvalue(res, i, 4), "callback_url",
	        PQgetvalue(res, i, 5), "friendly_name",
	        PQgetisnull(res, i, 6) ? json_null()
	                               : json_string(PQgetvalue(res, i, 6)),
	        "created_at", PQgetvalue(res, i, 7));

	if (!PQgetisnull(res, i, 8))
		json_object_set_new(t, "deleted_at",
		                    json_string(PQgetvalue(res, i, 8)));
	return t;
}

static bool one_of(const char *value, const char *const *allowed)
{
	for (size_t i = 0; value != NULL && allowed[i] != NULL; i++)
		if (strcmp(value, allowed[i]) == 0)
			return true;
	return false;
}

/* The shape of a customer URL (ingress_url_shape_ok) with a host of at
 * least one character; the destination filter checks the rest. */
static bool callback_url_ok(const char *url)
{
	size_t scheme, host;

	if (!ingress_url_shape_ok(url))
		return false;
	scheme = url[4] == 's' ? 8 : 7;
	host = strcspn(url + scheme, "/?#");
	return host > 0 && url[scheme] != ':' && url[scheme] != '@';
}

/* UTF-8 code points (jansson checked the encoding). */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static bool bad_field(vox_http_req_t *req, const char *field, const char *why)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "%s %s", field, why);
	vox_http_reply_error(req, 400, "invalid_body", msg,
	                     json_pack("{s:s}", "field", field));
	return false;
}

/* An integer, also when written with a zero fraction: JSON (and JSON
 * Schema's "integer") does not tell 3600 from 3600.0. */
static bool whole_number(const json_t *v, long long *out)
{
	double d;

	if (json_is_integer(v)) {
		*out = (long long)json_integer_value(v);
		return true;
	}
	if (!json_is_real(v))
		return false;
	d = json_real_value(v);
	if (!(d > -9.2e18 && d < 9.2e18) || d != (double)(long long)d)
		return false;
	*out = (long long)d;
	return true;
}
static bool trigger_fields_ok(vox_http_req_t *req, json_t *body)
{
	static const char *const categories[] = {
	        "all", "calls",       "calls_inbound", "calls_outbound",
	        "sms", "sms_inbound", "sms_outbound",  NULL};
	static const char *const bys[] = {"count", "usage", "price", NULL};
	static const char *const recurrings[] = {"daily", "monthly", "none",
	                                         NULL};
	json_t *threshold = json_object_get(body, "threshold");
	json_t *name = json_object_get(body, "friendly_name");
	long long value;

	if (!one_of(vox_json_str(body, "category"), categories))
		return bad_field(req, "category",
		                 "must be one of all, calls, calls_inbound, "
		                 "calls_outbound, sms, sms_inbound, "
		                 "sms_outbound");
	if (!one_of(vox_json_str(body, "trigger_by"), bys))
		return bad_field(req, "trigger_by",
		                 "must be one of count, usage, price");
	if (!one_of(vox_json_str(body, "recurring"), recurrings))
		return bad_field(req, "recurring",
		                 "must be one of daily, monthly, none");
	if (!whole_number(threshold, &value) || value < 1 ||
	    value > TRIGGER_THRESHOLD_MAX)
		return bad_field(req, "threshold",
		                 "must be an integer 1..9007199254740992 "
		                 "(records, seconds or segments, or "
		                 "micro-units)");
	if (!callback_url_ok(vox_json_str(body, "callback_url")))
		return bad_field(req, "callback_url",
		                 "must be an http:// or https:// URL with a "
		                 "host, at most 2048 printable ASCII "
		                 "characters");
	if (name != NULL && !json_is_null(name) &&
	    (!json_is_string(name) ||
	     utf8_chars(json_string_value(name)) > TRIGGER_NAME_MAX))
		return bad_field(req, "friendly_name",
		                 "must be a string of at most 200 characters");
	return true;
}

/* The callback's signing secret for trigger id, sealed (*sealed_hex,
 * malloc'd). Without a keyring the trigger is made unsigned, as triggers
 * made before signing were (its callbacks still carry webhook-id and
 * webhook-timestamp): 0 with *sealed_hex NULL. -1 after answering 500. */
static int trigger_secret(vox_http_req_t *req, ingress_t *in, const char *id,
                          char secret[VOX_WHSIG_SECRET_MAX], char **sealed_hex)
{
	char aad[64];

	*sealed_hex = NULL;
	secret[0] = '\0';
	if (in->keyring == NULL)
		return 0;
	snprintf(aad, sizeof(aad), "usage_triggers/%s", id);
	return ingress_secret_make(req, in, aad, secret, sealed_hex);
}

void ingress_trigger_create(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {
	        "category",     "threshold",     "trigger_by", "recurring",
	        "callback_url", "friendly_name", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	char id[VOX_UUID_STRLEN], threshold[24];
	char secret[VOX_WHSIG_SECRET_MAX], *sealed = NULL;
	long long value = 0;
	PGresult *res;
	json_t *body, *trigger;

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	if (!trigger_fields_ok(req, body) ||
	    !ingress_url_allowed(req, ir->in, "callback_url",
	                         vox_json_str(body, "callback_url")) ||
	    !idem_begin(req, ir))
		goto out;
	vox_uuid7(id); /* time-ordered: the list pages by id */
	if (trigger_secret(req, ir->in, id, secret, &sealed) != 0)
		goto out;
	if (sealed == NULL) /* no secret in the answer: replay it as is */
		ir->secret_fields = NULL;
	whole_number(json_object_get(body, "threshold"), &value);
	snprintf(threshold, sizeof(threshold), "%lld", value);
	const char *params[] = {id,
	                        ir->who.account_id,
	                        vox_json_str(body, "category"),
	                        vox_json_str(body, "trigger_by"),
	                        threshold,
	                        vox_json_str(body, "recurring"),
	                        vox_json_str(body, "callback_url"),
	                        vox_json_str(body, "friendly_name"),
	                        sealed};
	res = ingress_query(
	        ir->in, req, "ingress_trigger_create",
	        "INSERT INTO usage_triggers (id, account_id, "
	        "category, trigger_by, threshold, recurring, "
	        "callback_url, friendly_name, callback_secret_enc) VALUES ($1, "
	        "$2, $3, $4, $5::bigint, $6, $7, $8, decode($9, 'hex')) "
	        "RETURNING " TRIGGER_COLUMNS,
	        9, params);
	if (res != NULL) {
		/* shown once: GET and the list never carry it */
		trigger = trigger_row(res, 0);
		if (sealed != NULL)
			json_object_set_new(trigger, "callback_secret",
			                    json_string(secret));
		ingress_reply(req, 201, trigger);
		PQclear(res);
	}
	OPENSSL_cleanse(secret, sizeof(secret));
out:
	free(sealed);
	json_decref(body);
}

void ingress_trigger_list(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	char limit[16];
	const char *cursor;
	PGresult *res;

	if (ir == NULL ||
	    !ingress_page_args(req, limit, sizeof(limit), &cursor))
		return;
	const char *params[] = {ir->who.account_id, cursor, limit};
	res = ingress_query(ir->in, req, "ingress_trigger_list",
	                    "SELECT " TRIGGER_COLUMNS " FROM usage_triggers "
	                    "WHERE account_id = $1 AND deleted_at IS NULL AND "
	                    "($2::uuid IS NULL OR id < $2::uuid) ORDER BY id "
	                    "DESC LIMIT $3::int",
	                    3, params);
	if (res == NULL)
		return;
	vox_http_reply_json(
	        req, 200,
	        ingress_page(res, strtol(limit, NULL, 10) - 1, trigger_row));
	PQclear(res);
}

static void trigger_one(vox_http_req_t *req, void *ctx, bool delete)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	PGresult *res;

	if (ir == NULL)
		return;
	if (!vox_uuid_valid(id)) {
		vox_http_reply_error(req, 404, "usage_trigger_not_found",
		                     "no usage trigger has this id", NULL);
		return;
	}
	const char *params[] = {ir->who.account_id, id};
	res = delete ? ingress_query(ir->in, req, "ingress_trigger_delete",
	                             "UPDATE usage_triggers SET deleted_at = "
	                             "now() WHERE account_id = $1 AND id = $2 "
	                             "AND deleted_at IS NULL "
	                             "RETURNING " TRIGGER_COLUMNS,
	                             2, params)
	             : ingress_query(ir->in, req, "ingress_trigger_get",
	                             "SELECT " TRIGGER_COLUMNS " FROM "
	                             "usage_triggers WHERE account_id = $1 "
	                             "AND id = $2 AND deleted_at IS NULL",
	                             2, params);
	if (res == NULL)
		return;
	if (PQntuples(res) == 0)
		vox_http_reply_error(req, 404, "usage_trigger_not_found",
		                     "no usage trigger has this id", NULL);
	else
		vox_http_reply_json(req, 200, trigger_row(res, 0));
	PQclear(res);
}

void ingress_trigger_get(vox_http_req_t *req, void *ctx)
{
	trigger_one(req, ctx, false);
}

void ingress_trigger_delete(vox_http_req_t *req, void *ctx)
{
	trigger_one(req, ctx, true);
}
