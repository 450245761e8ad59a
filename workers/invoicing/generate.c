/*
 * Generation, set-based for every generate command of a batch
 * (docs/BILLING.md "States"): the requests go into a temporary table in
 * one statement; billing settings are made for accounts that have none;
 * each period is checked against billing_period_of; ONE INSERT ... ON
 * CONFLICT (account_id, period_start) DO NOTHING makes the missing
 * invoices; every draft among them is locked and recomputed from scratch
 * (lines.c); finalized, paid, void and uncollectible invoices are
 * returned as they are. Two commands for one (account, period), in one
 * batch or in two workers at once, end in one invoice: the UNIQUE key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv_internal.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_pg.h"
#include "vox_time.h"

#define KIND "invoice.generate"

static int req_table(vox_pg_t *pg, struct inv_generate_req *reqs, size_t n,
                     vox_error_t *err)
{
	json_t *rows = json_array();
	char *text;
	int rc;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(rows, json_pack("{s:I, s:s, s:s, s:s}",
		                                      "o", (json_int_t)i, "a",
		                                      reqs[i].account_id, "s",
		                                      reqs[i].period_start, "e",
		                                      reqs[i].period_end));
	text = vox_json_dump(rows);
	json_decref(rows);
	if (text == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	rc = vox_pg_exec(
	        pg,
	        "CREATE TEMP TABLE IF NOT EXISTS inv_req (ord int "
	        "PRIMARY KEY, account_id uuid NOT NULL, ps timestamptz "
	        "NOT NULL, pe timestamptz NOT NULL, state text NOT "
	        "NULL DEFAULT 'not_found', tz text, currency char(3), "
	        "invoice_id uuid, created boolean NOT NULL DEFAULT "
	        "false) ON COMMIT DELETE ROWS",
	        0, NULL, NULL, err);
	if (rc == 0)
		rc = vox_pg_exec(pg, "DELETE FROM inv_req", 0, NULL, NULL, err);
	const char *params[] = {text};
	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "inv_req_fill",
		        "INSERT INTO inv_req (ord, account_id, ps, pe) "
		        "SELECT (e ->> 'o')::int, (e ->> 'a')::uuid, "
		        "(e ->> 's')::timestamptz, (e ->> "
		        "'e')::timestamptz FROM "
		        "jsonb_array_elements($1::jsonb) e",
		        1, params, NULL, err);
	free(text);
	return rc;
}

/* Billing settings with the defaults for accounts that have none; the
 * period of each request checked against billing_period_of (one
 * definition) and not in the future. */
static int req_check(vox_pg_t *pg, vox_error_t *err)
{
	int rc = vox_pg_execp(pg, "inv_req_settings",
	                      "INSERT INTO billing_accounts (account_id) "
	                      "SELECT DISTINCT r.account_id FROM inv_req r "
	                      "JOIN accounts a ON a.id = r.account_id ORDER "
	                      "BY 1 ON CONFLICT (account_id) DO NOTHING",
	                      0, NULL, NULL, err);

	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "inv_req_check",
		        "UPDATE inv_req r SET tz = x.tz, currency = "
		        "x.currency, "
		        "state = x.state FROM (SELECT q.ord, a.timezone AS tz, "
		        "a.currency, CASE WHEN p.period_start = q.ps AND "
		        "p.period_end = q.pe AND q.ps <= now() THEN 'ok' ELSE "
		        "'invalid_period' END AS state FROM inv_req q JOIN "
		        "accounts a ON a.id = q.account_id JOIN "
		        "billing_accounts "
		        "b ON b.account_id = a.id, LATERAL "
		        "billing_period_of(q.ps, b.anchor_day, a.timezone) p) "
		        "x "
		        "WHERE r.ord = x.ord",
		        0, NULL, NULL, err);
	return rc;
}

/* One INSERT for all; then every request learns its invoice (made now,
 * or before, or by another worker that committed while we waited). */
static int req_invoices(vox_pg_t *pg, struct invoicing_ctx *ic,
                        vox_error_t *err)
{
	char day[24];
	int rc;

	snprintf(day, sizeof(day), "%ld", ic->day_s);
	const char *params[] = {day};
	rc = vox_pg_execp(
	        pg, "inv_req_insert",
	        "WITH ins AS (INSERT INTO invoices (account_id, period_start, "
	        "period_end, currency, grace_until, tax_rate_ppm, timezone) "
	        "SELECT DISTINCT ON (r.account_id, r.ps) r.account_id, r.ps, "
	        "r.pe, r.currency, r.pe + b.grace_days * $1::bigint * "
	        "interval '1 second', b.tax_rate_ppm, r.tz FROM inv_req r JOIN "
	        "billing_accounts b ON b.account_id = r.account_id WHERE "
	        "r.state = 'ok' ORDER BY r.account_id, r.ps ON CONFLICT "
	        "(account_id, period_start) DO NOTHING RETURNING id, "
	        "account_id, period_start) UPDATE inv_req r SET invoice_id = "
	        "ins.id, created = true FROM ins WHERE r.account_id = "
	        "ins.account_id AND r.ps = ins.period_start",
	        1, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(pg, "inv_req_existing",
		                  "UPDATE inv_req r SET invoice_id = i.id FROM "
		                  "invoices i WHERE r.state = 'ok' AND "
		                  "r.invoice_id IS NULL AND i.account_id = "
		                  "r.account_id AND i.period_start = r.ps",
		                  0, NULL, NULL, err);
	return rc;
}

/* A request that cannot be made: its operation fails with code, or,
 * without one, the message is dead-lettered with the reason. */
static int req_refuse(vox_pg_t *pg, struct inv_generate_req *r,
                      const char *code, const char *message, vox_error_t *err)
{
	if (r->operation_id[0] == '\0') {
		snprintf(r->dlq_reason, r->dlq_len, "%s: %s", code, message);
		return 0;
	}
	/* an account that does not exist cannot own the operation */
	return inv_op_fail(pg, r->operation_id,
	                   strcmp(code, "not_found") == 0 ? NULL
	                                                  : r->account_id,
	                   KIND, NULL, r->msg->time, code, message, err);
}

/* Operations finished, invoice.created for the invoices made. */
static int req_results(vox_pg_t *pg, struct inv_generate_req *reqs, size_t n,
                       vox_error_t *err)
{
	json_t *evs = json_array();
	PGresult *res;
	int rc;

	rc = vox_pg_execp(pg, "inv_req_results",
	                  "SELECT r.ord, r.state, coalesce(r.invoice_id::text, "
	                  "''), coalesce(i.status, ''), r.created, "
	                  "vox_iso(i.period_start), vox_iso(i.period_end), "
	                  "i.total_micros, i.currency FROM inv_req r LEFT JOIN "
	                  "invoices i ON i.id = r.invoice_id ORDER BY "
	                  "r.invoice_id, r.ord",
	                  0, NULL, &res, err);
	if (rc != 0)
		goto out;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		long ord = strtol(PQgetvalue(res, i, 0), NULL, 10);
		const char *state = PQgetvalue(res, i, 1);
		const char *invoice = PQgetvalue(res, i, 2);
		const char *status = PQgetvalue(res, i, 3);
		struct inv_generate_req *r;

		if (ord < 0 || (size_t)ord >= n)
			continue;
		r = &reqs[ord];
		if (strcmp(state, "not_found") == 0) {
			rc = req_refuse(pg, r, "not_found", "no such account",
			                err);
			continue;
		}
		if (strcmp(state, "ok") != 0 || invoice[0] == '\0') {
			rc = req_refuse(
			        pg, r, "invalid_period",
			        "the period is not a billing period of "
			        "the account (billing_period_of) or has "
			        "not started",
			        err);
			continue;
		}
		rc = inv_op_done(pg, r->operation_id, r->account_id, KIND,
		                 invoice, r->msg->time,
		                 json_pack("{s:s, s:s}", "invoice_id", invoice,
		                           "status", status),
		                 err);
		/* one event per invoice made, however many asked for it */
		if (rc == 0 && PQgetvalue(res, i, 4)[0] == 't') {
			/* rows of one invoice are adjacent */
			if (i == 0 ||
			    strcmp(PQgetvalue(res, i - 1, 2), invoice) != 0)
				rc = inv_event_add(
				        evs, "invoice.created", r->account_id,
				        invoice, r->account_id,
				        r->msg->traceparent,
				        json_pack("{s:s, s:s, s:s, s:s, s:s, "
				                  "s:I, s:s}",
				                  "invoice_id", invoice,
				                  "account_id", r->account_id,
				                  "status", status,
				                  "period_start",
				                  PQgetvalue(res, i, 5),
				                  "period_end",
				                  PQgetvalue(res, i, 6),
				                  "total_micros",
				                  (json_int_t)strtoll(
				                          PQgetvalue(res, i, 7),
				                          NULL, 10),
				                  "currency",
				                  PQgetvalue(res, i, 8)),
				        err);
		}
	}
	PQclear(res);
	if (rc == 0)
		rc = inv_events_bulk(pg, "invoice.created", evs, err);
out:
	json_decref(evs);
	return rc;
}

int inv_generate_batch(vox_pg_t *pg, struct invoicing_ctx *ic,
                       struct inv_generate_req *reqs, size_t n,
                       vox_error_t *err)
{
	int64_t t[5];
	int drafts = 0;
	int rc;

	/* phase times, logged per batch (bench/invoicing reads them) */
	t[0] = vox_mono_us();
	rc = req_table(pg, reqs, n, err);
	if (rc == 0)
		rc = req_check(pg, err);
	if (rc == 0)
		rc = req_invoices(pg, ic, err);
	t[1] = vox_mono_us();
	if (rc == 0)
		rc = inv_draft_begin(pg, err);
	if (rc == 0)
		rc = inv_draft_add(pg, "inv_req_drafts",
		                   "i.id IN (SELECT invoice_id FROM inv_req)",
		                   NULL, false, &drafts, err);
	t[2] = vox_mono_us();
	if (rc == 0 && drafts > 0)
		rc = inv_recompute(pg, err);
	t[3] = vox_mono_us();
	if (rc == 0)
		rc = req_results(pg, reqs, n, err);
	t[4] = vox_mono_us();
	if (rc == 0) {
		char line[200];

		snprintf(line, sizeof(line),
		         "%zu commands, %d drafts: requests %.1f ms, lock "
		         "%.1f ms, lines %.1f ms, results %.1f ms",
		         n, drafts, (double)(t[1] - t[0]) / 1000,
		         (double)(t[2] - t[1]) / 1000,
		         (double)(t[3] - t[2]) / 1000,
		         (double)(t[4] - t[3]) / 1000);
		vox_log(VOX_LOG_INFO, "invoicing batch", "detail", line, NULL);
	}
	return rc;
}
