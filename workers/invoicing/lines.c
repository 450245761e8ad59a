/*
 * The lines of an invoice (docs/BILLING.md "Lines"), computed set-based
 * for every draft of the temporary table inv_draft at once: a few
 * statements per batch whatever its size. A draft's lines are deleted and
 * made again from the inputs (ownership history, rated usage, late usage
 * of finalized periods, the account's credit), so the same inputs always
 * give the same lines. Each line is rounded once (half away from zero,
 * numeric intermediate), then the tax on their sum, once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv_internal.h"
#include "vox_buf.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_money.h"
#include "vox_ops.h"
#include "vox_pg.h"
#include "vox_time.h"

int inv_draft_begin(vox_pg_t *pg, vox_error_t *err)
{
	int rc =
	        vox_pg_exec(pg,
	                    "CREATE TEMP TABLE IF NOT EXISTS inv_draft ("
	                    "id uuid PRIMARY KEY, account_id uuid NOT NULL, "
	                    "ps timestamptz NOT NULL, pe timestamptz NOT NULL, "
	                    "tz text NOT NULL, currency char(3) NOT NULL, "
	                    "pd int NOT NULL, ppm int NOT NULL) "
	                    "ON COMMIT DELETE ROWS",
	                    0, NULL, NULL, err);

	if (rc == 0)
		rc = vox_pg_exec(pg, "DELETE FROM inv_draft", 0, NULL, NULL,
		                 err);
	/* the drafts' rated usage per category, summed by usage_aggregate */
	if (rc == 0)
		rc = vox_pg_exec(pg,
		                 "CREATE TEMP TABLE IF NOT EXISTS inv_usage ("
		                 "account_id uuid NOT NULL, ps timestamptz NOT "
		                 "NULL, currency char(3) NOT NULL, event_type "
		                 "text NOT NULL, n bigint NOT NULL, amount "
		                 "numeric NOT NULL, qty bigint NOT NULL) ON "
		                 "COMMIT DELETE ROWS",
		                 0, NULL, NULL, err);
	if (rc == 0)
		rc = vox_pg_exec(pg, "DELETE FROM inv_usage", 0, NULL, NULL,
		                 err);
	return rc;
}

int inv_draft_add(vox_pg_t *pg, const char *name, const char *where_sql,
                  const char *param, bool skip_locked, int *n, vox_error_t *err)
{
	char sql[2048];
	const char *params[] = {param};
	PGresult *res;
	int rc;

	/* period days: the local calendar days of the period (28-31),
	 * whatever daylight saving does to its length in hours */
	snprintf(sql, sizeof(sql),
	         "WITH l AS (SELECT i.id, i.account_id, i.period_start, "
	         "i.period_end, coalesce(i.timezone, a.timezone) AS tz, "
	         "i.currency, b.tax_rate_ppm FROM invoices i JOIN accounts a "
	         "ON a.id = i.account_id JOIN billing_accounts b ON "
	         "b.account_id = i.account_id WHERE i.status = 'draft' AND "
	         "(%s) ORDER BY i.id FOR UPDATE OF i%s) "
	         "INSERT INTO inv_draft SELECT id, account_id, period_start, "
	         "period_end, tz, currency, (period_end AT TIME ZONE tz)::date "
	         "- (period_start AT TIME ZONE tz)::date, tax_rate_ppm FROM l "
	         "ON CONFLICT (id) DO NOTHING",
	         where_sql ? where_sql : "true",
	         skip_locked ? " SKIP LOCKED" : "");
	rc = vox_pg_execp(pg, name, sql, param ? 1 : 0, params, &res, err);
	if (rc != 0)
		return rc;
	*n = (int)strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}

/* Number lines (monthly, prorated by local days; setup fees of purchases
 * in the period), usage per category, late usage of finalized periods:
 * one statement. */
static const char lines_sql[] =
        "WITH own AS ("
        " SELECT d.id AS invoice_id, d.currency, d.tz, d.pd, o.id AS own_id,"
        "  o.number_id, o.e164, o.source, o.monthly_rate_micros AS rate,"
        "  o.setup_fee_micros AS setup, o.started_at,"
        "  greatest(o.started_at, d.ps) AS s,"
        "  least(coalesce(o.ended_at, d.pe), d.pe) AS e, d.ps, d.pe"
        " FROM inv_draft d JOIN number_ownerships o"
        "  ON o.account_id = d.account_id AND o.started_at < d.pe"
        "  AND (o.ended_at IS NULL OR (o.ended_at > d.ps"
        "       AND o.ended_at > o.started_at))"
        "  AND o.currency = d.currency),"
        " monthly AS ("
        " SELECT *, ((e - interval '1 microsecond') AT TIME ZONE tz)::date"
        "  - (s AT TIME ZONE tz)::date + 1 AS days FROM own),"
        " usage AS ("
        " SELECT d.id AS invoice_id, d.currency, x.event_type, x.n,"
        "  x.amount, x.qty"
        " FROM inv_draft d JOIN inv_usage x ON x.account_id = d.account_id"
        "  AND x.ps = d.ps AND x.currency = d.currency),"
        /* records of a finalized period that came after its cutoff and
         * after every later invoice's cutoff: the first invoice finalized
         * after they arrived bills them */
        " late_f AS MATERIALIZED ("
        " SELECT d.id AS invoice_id, d.account_id, d.currency,"
        "  f.id AS f_id, f.period_start AS fps, f.period_end AS fpe,"
        "  greatest(f.usage_cutoff, (SELECT max(g.usage_cutoff) FROM"
        "   invoices g WHERE g.account_id = d.account_id AND g.status <>"
        "   'draft' AND g.id <> d.id AND g.period_start > f.period_start))"
        "   AS cutoff"
        " FROM inv_draft d JOIN invoices f ON f.account_id = d.account_id"
        "  AND f.period_start < d.ps AND f.usage_cutoff IS NOT NULL"
        "  AND f.status <> 'draft'),"
        " late AS ("
        " SELECT x.invoice_id, x.currency, x.fps, x.fpe, x.f_id,"
        "  u.event_type, count(*) AS n, sum(u.cost_micros) AS amount,"
        "  sum(CASE WHEN u.event_type IN ('inbound_call', 'outbound_call')"
        "      THEN u.billable_s ELSE u.units END) AS qty"
        " FROM late_f x JOIN usage_records u ON u.account_id = x.account_id"
        "  AND u.started_at >= x.fps AND u.started_at < x.fpe"
        "  AND u.created_at > x.cutoff"
        " WHERE u.cost_micros IS NOT NULL AND u.currency = x.currency"
        " GROUP BY x.invoice_id, x.currency, x.f_id, x.fps, x.fpe,"
        "  u.event_type),"
        " cat (event_type, label, unit, ord) AS (VALUES"
        "  ('inbound_call', 'Inbound calls', 'second', 1),"
        "  ('outbound_call', 'Outbound calls', 'second', 2),"
        "  ('sms_received', 'SMS received', 'message', 3),"
        "  ('sms_sent', 'SMS sent', 'message', 4)),"
        " l AS ("
        " SELECT invoice_id, currency, 1 AS sort, e164 AS k1, s AS k2,"
        "  own_id AS k3, 'number_monthly' AS kind,"
        "  'Number ' || e164 || ', ' || days || ' of ' || pd || ' days'"
        "   AS description, e164, NULL::text AS event_type, 1::bigint AS qty,"
        "  'month' AS unit, rate AS unit_price,"
        "  round(rate::numeric * days / pd)::bigint AS amount,"
        "  s AS lps, e AS lpe, number_id, days, pd,"
        "  jsonb_build_object('ownership_id', own_id, 'source', source)"
        "   AS meta FROM monthly"
        " UNION ALL"
        " SELECT invoice_id, currency, 2, e164, s, own_id, 'number_setup',"
        "  'Setup fee, number ' || e164, e164, NULL, 1, 'each', setup, setup,"
        "  NULL, NULL, number_id, NULL, NULL,"
        "  jsonb_build_object('ownership_id', own_id)"
        " FROM own WHERE source = 'purchase' AND started_at >= ps"
        "  AND setup > 0"
        " UNION ALL"
        " SELECT u.invoice_id, u.currency, 3, c.ord::text, NULL, NULL,"
        "  'usage', c.label || ', ' || u.n || ' records', NULL,"
        "  u.event_type, u.qty, c.unit, 0, u.amount::bigint, NULL, NULL,"
        "  NULL, NULL, NULL, jsonb_build_object('records', u.n)"
        " FROM usage u JOIN cat c USING (event_type)"
        " UNION ALL"
        " SELECT x.invoice_id, x.currency, 4, vox_iso(x.fps) || c.ord,"
        "  NULL, NULL, 'late_usage', 'Late ' || lower(c.label) || ' of the"
        " period from ' || to_char(x.fps, 'YYYY-MM-DD') || ', ' || x.n ||"
        "  ' records', NULL, x.event_type, x.qty, c.unit, 0,"
        "  x.amount::bigint, x.fps, x.fpe, NULL, NULL, NULL,"
        "  jsonb_build_object('records', x.n, 'invoice_id', x.f_id)"
        " FROM late x JOIN cat c USING (event_type))"
        "INSERT INTO invoice_lines (invoice_id, line_no, kind, description,"
        " e164, event_type, quantity, unit, unit_price_micros, amount_micros,"
        " currency, period_start, period_end, number_id, days, period_days,"
        " metadata)"
        " SELECT invoice_id, row_number() OVER (PARTITION BY invoice_id"
        "  ORDER BY sort, k1, k2, k3), kind, description, e164, event_type,"
        "  qty, unit, unit_price, amount, currency, lps, lpe, number_id, days,"
        "  pd, meta FROM l";

/* The account's credit balance, as far as the subtotal goes. */
static const char credit_sql[] =
        "INSERT INTO invoice_lines (invoice_id, line_no, kind, description,"
        " quantity, unit, unit_price_micros, amount_micros, currency)"
        " SELECT d.id, s.n + 1, 'credit', 'Account credit', 1, 'each',"
        "  -least(b.credit_balance_micros, s.sub),"
        "  -least(b.credit_balance_micros, s.sub), d.currency"
        " FROM inv_draft d JOIN billing_accounts b ON b.account_id ="
        "  d.account_id AND b.credit_balance_micros > 0,"
        /* only the drafts of accounts with credit read their lines */
        " LATERAL (SELECT count(*) AS n, coalesce(sum(amount_micros), 0)"
        "  AS sub FROM invoice_lines WHERE invoice_id = d.id) s"
        " WHERE s.sub > 0";

/* Totals: tax on a positive subtotal, rounded once; amount due rounded
 * to the currency's minor unit ($1: micro-units per minor unit). */
static const char totals_sql[] =
        "UPDATE invoices i SET subtotal_micros = t.sub, tax_micros = t.tax,"
        " total_micros = t.sub + t.tax, credit_applied_micros = t.credit,"
        " tax_rate_ppm = t.ppm, timezone = t.tz, refreshed_at = now(),"
        " version = i.version + 1,"
        " amount_due_micros = greatest(0, round((t.sub + t.tax -"
        "  i.credited_micros)::numeric / t.unit) * t.unit -"
        "  i.amount_paid_micros)::bigint"
        " FROM (SELECT d.id, d.ppm, d.tz, x.sub, x.credit,"
        "  CASE WHEN x.sub > 0 THEN round(x.sub::numeric * d.ppm / 1000000)"
        "  ::bigint ELSE 0 END AS tax,"
        "  coalesce(($1::jsonb ->> d.currency)::bigint, 1) AS unit"
        "  FROM inv_draft d, LATERAL (SELECT"
        "   coalesce(sum(l.amount_micros), 0)::bigint AS sub,"
        "   coalesce(-sum(l.amount_micros) FILTER (WHERE l.kind ="
        "   'credit'), 0)::bigint AS credit FROM invoice_lines l WHERE"
        "   l.invoice_id = d.id) x) t"
        " WHERE i.id = t.id";

char *inv_minor_units_json(vox_pg_t *pg, vox_error_t *err)
{
	json_t *units = json_object();
	PGresult *res;
	char *text = NULL;

	if (vox_pg_execp(pg, "inv_draft_currencies",
	                 "SELECT DISTINCT currency FROM inv_draft", 0, NULL,
	                 &res, err) != 0)
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *code = PQgetvalue(res, i, 0);
		int exp = vox_currency_exponent(code);
		json_int_t unit = 1;

		for (int e = exp; e >= 0 && e < 6; e++)
			unit *= 10;
		json_object_set_new(units, code, json_integer(unit));
	}
	PQclear(res);
	text = vox_json_dump(units);
	if (text == NULL)
		vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
out:
	json_decref(units);
	return text;
}

/* 5 arrays of at most a batch's accounts x 4 categories */
#define USAGE_ARRAY_MAX ((size_t)256 << 20)

/* The rated usage of one group of drafts sharing a period and a
 * currency, per account and category: a plain SELECT, so PostgreSQL may
 * run it in parallel (a statement that writes, or reads a temporary
 * table, never is), with the accounts as a hashed array and constant
 * bounds (only the period's partitions). Its rows go into inv_usage. */
static int usage_group(vox_pg_t *pg, const char *accounts, const char *ps,
                       const char *pe, const char *currency, vox_error_t *err)
{
	const char *params[5] = {accounts, ps, pe, currency};
	vox_buf_t ids, types, ns, amounts, qtys;
	PGresult *res;
	int rc, rows;

	rc = vox_pg_execp(
	        pg, "inv_usage_group",
	        "SELECT u.account_id, u.event_type, count(*), "
	        "sum(u.cost_micros), sum(CASE WHEN u.event_type IN "
	        "('inbound_call', 'outbound_call') THEN u.billable_s ELSE "
	        "u.units END) FROM usage_records u WHERE u.account_id = "
	        "ANY($1::uuid[]) AND u.started_at >= $2::timestamptz AND "
	        "u.started_at < $3::timestamptz AND u.cost_micros IS NOT "
	        "NULL AND u.currency = $4 GROUP BY 1, 2",
	        4, params, &res, err);
	if (rc != 0)
		return rc;
	rows = PQntuples(res);
	if (rows == 0) {
		PQclear(res);
		return 0;
	}
	vox_buf_init(&ids, USAGE_ARRAY_MAX);
	vox_buf_init(&types, USAGE_ARRAY_MAX);
	vox_buf_init(&ns, USAGE_ARRAY_MAX);
	vox_buf_init(&amounts, USAGE_ARRAY_MAX);
	vox_buf_init(&qtys, USAGE_ARRAY_MAX);
	vox_buf_adds(&ids, "{");
	vox_buf_adds(&types, "{");
	vox_buf_adds(&ns, "{");
	vox_buf_adds(&amounts, "{");
	vox_buf_adds(&qtys, "{");
	for (int i = 0; i < rows; i++) {
		const char *sep = i > 0 ? "," : "";

		/* uuids, category names and numbers: nothing to quote */
		vox_buf_printf(&ids, "%s%s", sep, PQgetvalue(res, i, 0));
		vox_buf_printf(&types, "%s%s", sep, PQgetvalue(res, i, 1));
		vox_buf_printf(&ns, "%s%s", sep, PQgetvalue(res, i, 2));
		vox_buf_printf(&amounts, "%s%s", sep, PQgetvalue(res, i, 3));
		vox_buf_printf(&qtys, "%s%s", sep, PQgetvalue(res, i, 4));
	}
	PQclear(res);
	vox_buf_adds(&ids, "}");
	vox_buf_adds(&types, "}");
	vox_buf_adds(&ns, "}");
	vox_buf_adds(&amounts, "}");
	vox_buf_adds(&qtys, "}");
	if ((rc = vox_buf_check(&ids, "usage ids", err)) == 0 &&
	    (rc = vox_buf_check(&types, "usage types", err)) == 0 &&
	    (rc = vox_buf_check(&ns, "usage counts", err)) == 0 &&
	    (rc = vox_buf_check(&amounts, "usage amounts", err)) == 0 &&
	    (rc = vox_buf_check(&qtys, "usage quantities", err)) == 0) {
		const char *ins[] = {vox_buf_str(&ids), ps,
		                     currency,          vox_buf_str(&types),
		                     vox_buf_str(&ns),  vox_buf_str(&amounts),
		                     vox_buf_str(&qtys)};

		rc = vox_pg_execp(
		        pg, "inv_usage_insert",
		        "INSERT INTO inv_usage SELECT a, $2::timestamptz, $3, "
		        "t, "
		        "n, m, q FROM unnest($1::uuid[], $4::text[], "
		        "$5::bigint[], $6::numeric[], $7::bigint[]) AS x(a, t, "
		        "n, m, q)",
		        7, ins, NULL, err);
	}
	vox_buf_free(&ids);
	vox_buf_free(&types);
	vox_buf_free(&ns);
	vox_buf_free(&amounts);
	vox_buf_free(&qtys);
	return rc;
}

/* inv_usage for every draft of inv_draft: one aggregate per distinct
 * (period, currency), which is one for a batch of accounts on the same
 * anchor day and zone. */
static int usage_aggregate(vox_pg_t *pg, vox_error_t *err)
{
	PGresult *res;
	int rc;

	rc = vox_pg_execp(pg, "inv_usage_groups",
	                  "SELECT array_agg(account_id)::text, vox_iso(ps), "
	                  "vox_iso(pe), currency FROM inv_draft GROUP BY ps, "
	                  "pe, currency",
	                  0, NULL, &res, err);
	if (rc != 0)
		return rc;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++)
		rc = usage_group(pg, PQgetvalue(res, i, 0),
		                 PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
		                 PQgetvalue(res, i, 3), err);
	PQclear(res);
	return rc;
}

int inv_recompute(vox_pg_t *pg, vox_error_t *err)
{
	int64_t t0 = vox_mono_us(), t1 = 0, tu = 0, t2 = 0;
	char lo[40], hi[40], *units;
	PGresult *res;
	int rc;

	rc = vox_pg_execp(pg, "inv_lines_delete",
	                  "DELETE FROM invoice_lines WHERE invoice_id IN "
	                  "(SELECT id FROM inv_draft)",
	                  0, NULL, NULL, err);
	/* the planner needs the drafts' count to join them to usage; JIT
	 * compiling the big statement costs more than it saves
	 * (bench/invoicing: 300 ms a batch) */
	if (rc == 0)
		rc = vox_pg_exec(pg, "ANALYZE inv_draft", 0, NULL, NULL, err);
	if (rc == 0)
		rc = vox_pg_exec(pg, "SET LOCAL jit = off", 0, NULL, NULL, err);
	/* the usage of a batch is summed in memory (hash aggregate), not
	 * sorted on disk; the plan is made for the batch's own bounds */
	if (rc == 0)
		rc = vox_pg_exec(pg, "SET LOCAL work_mem = '128MB'", 0, NULL,
		                 NULL, err);
	if (rc == 0)
		rc = vox_pg_exec(
		        pg, "SET LOCAL plan_cache_mode = force_custom_plan", 0,
		        NULL, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "inv_draft_bounds",
		        "SELECT vox_iso(min(ps)), vox_iso(max(pe)) FROM "
		        "inv_draft",
		        0, NULL, &res, err);
	if (rc != 0)
		return rc;
	snprintf(lo, sizeof(lo), "%s", PQgetvalue(res, 0, 0));
	snprintf(hi, sizeof(hi), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	if (lo[0] == '\0') /* no drafts */
		return 0;
	t1 = vox_mono_us();
	rc = usage_aggregate(pg, err);
	tu = vox_mono_us();
	if (rc == 0)
		rc = vox_pg_execp(pg, "inv_lines", lines_sql, 0, NULL, NULL,
		                  err);
	t2 = vox_mono_us();
	if (rc == 0)
		rc = vox_pg_execp(pg, "inv_lines_credit", credit_sql, 0, NULL,
		                  NULL, err);
	if (rc != 0)
		return rc;
	units = inv_minor_units_json(pg, err);
	if (units == NULL)
		return err->code;
	const char *params[] = {units};
	rc = vox_pg_execp(pg, "inv_totals", totals_sql, 1, params, NULL, err);
	free(units);
	vox_logf(VOX_LOG_DEBUG,
	         "invoicing lines: delete+analyze %.1f ms, usage %.1f ms, "
	         "lines %.1f ms, credit+totals %.1f ms",
	         (double)(t1 - t0) / 1000, (double)(tu - t1) / 1000,
	         (double)(t2 - tu) / 1000, (double)(vox_mono_us() - t2) / 1000);
	return rc;
}

int inv_event_add(json_t *evs, const char *type, const char *key,
                  const char *subject, const char *account_id,
                  const char *traceparent, json_t *data, vox_error_t *err)
{
	json_t *ev =
	        vox_event_build(type, subject, account_id, traceparent, data);
	char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	int rc = 0;

	json_decref(ev);
	if (text == NULL ||
	    json_array_append_new(evs, json_pack("[s,s]", key, text)) != 0)
		rc = vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	free(text);
	return rc;
}

int inv_events_bulk(vox_pg_t *pg, const char *type, const json_t *evs,
                    vox_error_t *err)
{
	const vox_event_kind_t *kind = vox_event_kind(type);
	char *text;
	int rc;

	if (kind == NULL)
		return vox_error_set(
		        err, VOX_ERR_INTERNAL, false,
		        "event type %s is not in vox_event's table", type);
	if (json_array_size(evs) == 0)
		return 0;
	text = vox_json_dump(evs);
	if (text == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	const char *params[] = {kind->topic, text};
	rc = vox_pg_execp(pg, "inv_events_bulk",
	                  "INSERT INTO outbox (topic, message_key, payload) "
	                  "SELECT $1, e ->> 0, e ->> 1 FROM "
	                  "jsonb_array_elements($2::jsonb) WITH ORDINALITY "
	                  "AS t(e, n) ORDER BY n",
	                  2, params, NULL, err);
	free(text);
	if (rc == 0)
		rc = vox_pg_execp(pg, "vox_outbox_notify", "NOTIFY vox_outbox",
		                  0, NULL, NULL, err);
	return rc;
}

static void op_fill(vox_op_t *op, const char *op_id, const char *account_id,
                    const char *kind, const char *subject, const char *at)
{
	memset(op, 0, sizeof(*op));
	op->id = op_id;
	op->account_id = account_id;
	op->kind = kind;
	op->subject = subject;
	op->at = at;
}

int inv_op_done(vox_pg_t *pg, const char *op_id, const char *account_id,
                const char *kind, const char *subject, const char *at,
                json_t *result, vox_error_t *err)
{
	char *text;
	vox_op_t op;
	int rc;

	if (op_id == NULL || op_id[0] == '\0') {
		json_decref(result);
		return 0;
	}
	text = vox_json_dump(result);
	json_decref(result);
	op_fill(&op, op_id, account_id, kind, subject, at);
	rc = vox_op_finish(pg, &op, "completed", text, NULL, NULL, err);
	free(text);
	return rc;
}

int inv_op_fail(vox_pg_t *pg, const char *op_id, const char *account_id,
                const char *kind, const char *subject, const char *at,
                const char *code, const char *message, vox_error_t *err)
{
	vox_op_t op;

	if (op_id == NULL || op_id[0] == '\0')
		return 0;
	op_fill(&op, op_id, account_id, kind, subject, at);
	return vox_op_finish(pg, &op, "failed", NULL, code, message, err);
}
