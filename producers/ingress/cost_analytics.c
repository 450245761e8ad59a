/*
 * GET /v1/cost-analytics?from&to&group_by=category|number|day
 * (docs/API.md "Cost analytics"): what the account spent, in micro-units
 * of its currency, from two sources:
 *  - usage: usage_daily (the metering worker's per-UTC-day sums of rated
 *    usage_records.cost_micros), days from..to;
 *  - rental: the number_monthly and number_setup lines of the account's
 *    invoices that are not void, each counted on the UTC day its line
 *    period (else its invoice's period) starts, when that day is in
 *    from..to.
 * from and to are dates (YYYY-MM-DD) or RFC 3339 times, reduced to their
 * UTC day; both days are included; at most 366 days. Defaults: to = today
 * (UTC), from = the first day of to's month.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "vox_json.h"
#include "vox_time.h"

#define ANALYTICS_MAX_DAYS 366

/* Days since the epoch of a proleptic Gregorian date (H. Hinnant). */
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

static void civil_from_days(long z, long *y, long *m, long *d)
{
	long era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yoe + era * 400 + (*m <= 2);
}

static void day_text(long days, char out[11])
{
	long y, m, d;

	civil_from_days(days, &y, &m, &d);
	snprintf(out, 11, "%04ld-%02ld-%02ld", y, m, d);
}

/* YYYY-MM-DD (2000..9999, a real day) or an RFC 3339 time: its UTC day. */
static bool day_parse(const char *text, long *days)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
	                            31, 31, 30, 31, 30, 31};
	int64_t us;
	long y, m, d;

	if (strlen(text) == 10) {
		if (text[4] != '-' || text[7] != '-' ||
		    strspn(text, "0123456789") != 4 ||
		    strspn(text + 5, "0123456789") != 2 ||
		    strspn(text + 8, "0123456789") != 2)
			return false;
		y = strtol(text, NULL, 10);
		m = strtol(text + 5, NULL, 10);
		d = strtol(text + 8, NULL, 10);
		if (y < 2000 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] ||
		    (m == 2 && d == 29 &&
		     !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
			return false;
		*days = days_from_civil(y, m, d);
		return true;
	}
	if (strlen(text) > 64 || vox_rfc3339_parse(text, &us) != 0)
		return false;
	*days = (long)((us >= 0 ? us : us - 86399999999LL) / 86400000000LL);
	return *days >= days_from_civil(2000, 1, 1) &&
	       *days <= days_from_civil(9999, 12, 31);
}

#define ANALYTICS_SQL(key)                                                     \
	"WITH acct AS (SELECT currency FROM accounts WHERE id = $1), c AS ("   \
	"SELECT u.day, u.e164, u.event_type AS category, u.cost_micros AS "    \
	"usage, 0::bigint AS rental, u.records FROM usage_daily u, acct "      \
	"WHERE u.account_id = $1 AND u.day BETWEEN $2::date AND $3::date AND " \
	"u.currency = acct.currency UNION ALL SELECT (COALESCE("               \
	"l.period_start, i.period_start) AT TIME ZONE 'UTC')::date, l.e164, "  \
	"l.kind, 0, l.amount_micros, 0 FROM invoices i JOIN invoice_lines l "  \
	"ON l.invoice_id = i.id, acct WHERE i.account_id = $1 AND i.status "   \
	"<> 'void' AND i.currency = acct.currency AND i.period_start < "       \
	"($3::date + 32) AND i.period_end > ($2::date - 32) AND l.kind IN "    \
	"('number_monthly', 'number_setup') AND (COALESCE(l.period_start, "    \
	"i.period_start) AT TIME ZONE 'UTC')::date BETWEEN $2::date AND "      \
	"$3::date) SELECT " key ", sum(usage)::bigint, sum(rental)::bigint, "  \
	"sum(records)::bigint FROM c GROUP BY 1 ORDER BY 1"

static const struct {
	const char *group_by, *name, *sql;
} queries[] = {
        {"day", "ingress_costs_by_day",
         ANALYTICS_SQL("to_char(day, 'YYYY-MM-DD')")},
        {"number", "ingress_costs_by_number", ANALYTICS_SQL("e164")},
        {"category", "ingress_costs_by_category", ANALYTICS_SQL("category")},
};

static json_t *sums_json(long long usage, long long rental, long long records)
{
	return json_pack("{s:I, s:I, s:I, s:I}", "usage_micros",
	                 (json_int_t)usage, "rental_micros", (json_int_t)rental,
	                 "total_micros", (json_int_t)(usage + rental),
	                 "usage_records", (json_int_t)records);
}

void ingress_cost_analytics(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *from = NULL, *to = NULL, *group_by;
	long from_days, to_days;
	char from_text[11], to_text[11];
	long long tu = 0, tr = 0, tn = 0;
	PGresult *cur = NULL, *res = NULL;
	vox_error_t err;
	json_t *items;
	vox_pg_t *pg;
	size_t k = 0;
	int rc;

	if (ir == NULL)
		return;
	from = vox_http_query(req, "from");
	to = vox_http_query(req, "to");
	if (from != NULL && !day_parse(from, &from_days)) {
		ingress_bad_param(req, "from",
		                  "a date YYYY-MM-DD or an RFC 3339 time");
		return;
	}
	if (to != NULL && !day_parse(to, &to_days)) {
		ingress_bad_param(req, "to",
		                  "a date YYYY-MM-DD or an RFC 3339 time");
		return;
	}
	if (to == NULL) {
		to_days = (long)(vox_now_us() / 86400000000LL);
		if (from != NULL && to_days < from_days)
			to_days = from_days;
		if (from != NULL && to_days - from_days >= ANALYTICS_MAX_DAYS)
			to_days = from_days + ANALYTICS_MAX_DAYS - 1;
	}
	if (from == NULL) {
		long y, m, d;

		civil_from_days(to_days, &y, &m, &d);
		from_days = days_from_civil(y, m, 1);
	}
	if (from_days > to_days) {
		ingress_bad_param(req, "from", "after to");
		return;
	}
	if (to_days - from_days + 1 > ANALYTICS_MAX_DAYS) {
		ingress_bad_param(req, "to",
		                  "the range covers more than 366 days");
		return;
	}
	group_by = vox_http_query(req, "group_by");
	if (group_by == NULL)
		group_by = "category";
	while (k < 3 && strcmp(queries[k].group_by, group_by) != 0)
		k++;
	if (k == 3) {
		ingress_bad_param(req, "group_by",
		                  "one of category, number, day");
		return;
	}
	day_text(from_days, from_text);
	day_text(to_days, to_text);
	const char *params[] = {ir->who.account_id, from_text, to_text};
	if ((pg = ingress_pg(ir->in, req)) == NULL)
		return;
	rc = vox_pg_execp(pg, "ingress_usage_currency",
	                  "SELECT currency FROM accounts WHERE id = $1", 1,
	                  params, &cur, &err);
	if (rc == 0)
		rc = vox_pg_execp(pg, queries[k].name, queries[k].sql, 3,
		                  params, &res, &err);
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (rc != 0) {
		ingress_error(req, 503, "database_unavailable", err.message,
		              NULL);
		goto out;
	}
	if (PQntuples(cur) == 0) {
		ingress_error(req, 404, "account_not_found",
		              "no account has this id", NULL);
		goto out;
	}
	items = json_array();
	for (int i = 0; i < PQntuples(res); i++) {
		long long u = billing_micros(res, i, 1);
		long long r = billing_micros(res, i, 2);
		long long n = billing_micros(res, i, 3);
		json_t *item = sums_json(u, r, n);

		tu += u;
		tr += r;
		tn += n;
		json_object_set_new(
		        item, group_by,
		        PQgetisnull(res, i, 0)
		                ? json_null()
		                : json_string(PQgetvalue(res, i, 0)));
		json_array_append_new(items, item);
	}
	vox_http_reply_json(req, 200,
	                    json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}",
	                              "currency", PQgetvalue(cur, 0, 0), "from",
	                              from_text, "to", to_text, "group_by",
	                              group_by, "totals", sums_json(tu, tr, tn),
	                              "items", items));
out:
	PQclear(cur);
	PQclear(res);
}
