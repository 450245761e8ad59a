/*
 * The invoicing schedule (VOX_INVOICING_SCHEDULE=1), on the tick's own
 * connection, each step in its own transaction:
 * 1. every VOX_INVOICING_SCAN_S, accounts that owned a number or had
 *    usage in their last closed period and have no invoice for it get a
 *    vox.invoice.generate_requested command (through the outbox, key =
 *    the account): one worker at a time scans (an advisory lock), and each
 *    period is asked for once (billing_accounts.generate_requested_for);
 * 2. drafts in their grace period are recomputed at most every
 *    VOX_INVOICING_REFRESH_S, so late CDRs land on them;
 * 3. drafts past grace_until are finalized.
 * Steps 2 and 3 take their drafts FOR UPDATE SKIP LOCKED: two workers
 * never do the same one twice; correctness never depends on it (UNIQUE
 * keys and the state each statement checks).
 */
#include <stdio.h>
#include <stdlib.h>

#include "inv_internal.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_pg.h"
#include "vox_time.h"

static const char scan_sql[] =
        "WITH acc AS (SELECT a.id, a.timezone AS tz, coalesce(b.anchor_day,"
        "  1::smallint) AS anchor, b.generate_requested_for AS rf,"
        "  b.generate_requested_at AS ra FROM accounts a LEFT JOIN"
        "  billing_accounts b ON b.account_id = a.id),"
        " per AS (SELECT acc.*, p.period_start, p.period_end FROM acc,"
        "  LATERAL billing_period_of(now(), acc.anchor, acc.tz) cur,"
        "  LATERAL billing_period_of(cur.period_start - interval"
        "  '1 microsecond', acc.anchor, acc.tz) p),"
        " due AS (SELECT per.id, per.period_start, per.period_end FROM per"
        "  WHERE NOT EXISTS (SELECT 1 FROM invoices i WHERE i.account_id ="
        "   per.id AND i.period_start = per.period_start)"
        "  AND (per.rf IS DISTINCT FROM per.period_start OR per.ra < now() -"
        "   $2::bigint * interval '1 second')"
        "  AND (EXISTS (SELECT 1 FROM number_ownerships o WHERE"
        "   o.account_id = per.id AND o.started_at < per.period_end AND"
        "   (o.ended_at IS NULL OR o.ended_at > per.period_start))"
        "   OR EXISTS (SELECT 1 FROM usage_records u WHERE u.account_id ="
        "   per.id AND u.started_at >= per.period_start AND u.started_at <"
        "   per.period_end))"
        "  ORDER BY per.id LIMIT $1::int),"
        " mark AS (INSERT INTO billing_accounts (account_id,"
        "  generate_requested_for, generate_requested_at) SELECT id,"
        "  period_start, now() FROM due ON CONFLICT (account_id) DO UPDATE"
        "  SET generate_requested_for = excluded.generate_requested_for,"
        "  generate_requested_at = excluded.generate_requested_at)"
        "SELECT id, vox_iso(period_start), vox_iso(period_end) FROM due";

static int scan_in_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct invoicing_ctx *ic = arg;
	char limit[24], refresh[24];
	const char *params[] = {limit, refresh};
	json_t *evs;
	PGresult *res;
	int rc;

	rc = vox_pg_execp(pg, "inv_scan_lock",
	                  "SELECT pg_try_advisory_xact_lock(hashtext("
	                  "'vox.invoicing.scan'))",
	                  0, NULL, &res, err);
	if (rc != 0)
		return rc;
	bool mine = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (!mine)
		return 0;
	snprintf(limit, sizeof(limit), "%ld", ic->tick_batch);
	snprintf(refresh, sizeof(refresh), "%ld", ic->refresh_s);
	rc = vox_pg_execp(pg, "inv_scan", scan_sql, 2, params, &res, err);
	if (rc != 0)
		return rc;
	evs = json_array();
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		const char *account = PQgetvalue(res, i, 0);

		rc = inv_event_add(
		        evs, "vox.invoice.generate_requested", account, account,
		        account, NULL,
		        json_pack("{s:s, s:s, s:s}", "account_id", account,
		                  "period_start", PQgetvalue(res, i, 1),
		                  "period_end", PQgetvalue(res, i, 2)),
		        err);
	}
	if (rc == 0)
		rc = inv_events_bulk(pg, "vox.invoice.generate_requested", evs,
		                     err);
	if (rc == 0 && PQntuples(res) > 0)
		vox_logf(VOX_LOG_INFO, "invoicing: %d invoices asked for",
		         PQntuples(res));
	json_decref(evs);
	PQclear(res);
	return rc;
}

static int refresh_in_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct invoicing_ctx *ic = arg;
	char where[400];
	int n = 0;
	int rc = inv_draft_begin(pg, err);

	snprintf(where, sizeof(where),
	         "i.id IN (SELECT id FROM invoices WHERE status = 'draft' AND "
	         "grace_until > now() AND (refreshed_at IS NULL OR "
	         "refreshed_at < now() - %ld * interval '1 second') ORDER BY "
	         "refreshed_at NULLS FIRST LIMIT %ld)",
	         ic->refresh_s, ic->tick_batch);
	if (rc == 0)
		rc = inv_draft_add(pg, "inv_tick_refresh", where, NULL, true,
		                   &n, err);
	if (rc == 0 && n > 0)
		rc = inv_recompute(pg, err);
	if (rc == 0 && n > 0)
		vox_logf(VOX_LOG_INFO, "invoicing: %d drafts refreshed", n);
	return rc;
}

static int finalize_in_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct invoicing_ctx *ic = arg;
	char where[300];
	int n = 0, done = 0;
	int rc = inv_draft_begin(pg, err);

	snprintf(where, sizeof(where),
	         "i.id IN (SELECT id FROM invoices WHERE status = 'draft' AND "
	         "grace_until <= now() ORDER BY grace_until LIMIT %ld)",
	         ic->tick_batch);
	if (rc == 0)
		rc = inv_draft_add(pg, "inv_tick_finalize", where, NULL, true,
		                   &n, err);
	if (rc == 0 && n > 0)
		rc = inv_finalize_drafts(pg, ic, NULL, &done, err);
	if (rc == 0 && done > 0)
		vox_logf(VOX_LOG_INFO, "invoicing: %d invoices finalized",
		         done);
	return rc;
}

static void step(vox_pg_t *pg, vox_pg_tx_fn fn, struct invoicing_ctx *ic,
                 const char *what)
{
	vox_error_t err;

	if (vox_pg_transaction(pg, fn, ic, &err) != 0)
		vox_log(VOX_LOG_WARN, "invoicing tick step failed", "step",
		        what, "error", err.message, NULL);
}

void inv_tick_invoices(vox_pg_t *pg, struct invoicing_ctx *ic)
{
	static int64_t last_scan_ms;
	int64_t now = vox_mono_ms();

	if (!ic->schedule)
		return;
	if (last_scan_ms == 0 || now - last_scan_ms >= ic->scan_s * 1000) {
		last_scan_ms = now;
		step(pg, scan_in_tx, ic, "generate");
	}
	step(pg, refresh_in_tx, ic, "refresh");
	step(pg, finalize_in_tx, ic, "finalize");
}
