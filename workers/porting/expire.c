/*
 * The tick: drafts past their expires_at (30 days after creation) become
 * cancelled with cancel_reason draft_expired and the event
 * porting_order.expired, a batch at a time (SKIP LOCKED: a draft being
 * submitted right now is left for the next tick, where it is no longer a
 * draft).
 */
#include <stdio.h>

#include "porting.h"
#include "vox_log.h"

static int expire_in_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	const struct porting_ctx *pc = arg;
	char limit[24];
	PGresult *res;
	int rc;

	snprintf(limit, sizeof(limit), "%ld", pc->expire_batch);
	const char *params[] = {limit};
	rc = vox_pg_execp(pg, "por_expire",
	                  "UPDATE porting_orders SET cancel_reason = "
	                  "'draft_expired' WHERE id IN (SELECT id FROM "
	                  "porting_orders WHERE status = 'draft' AND "
	                  "expires_at <= now() ORDER BY expires_at LIMIT "
	                  "$1::int FOR UPDATE SKIP LOCKED) RETURNING id",
	                  1, params, &res, err);
	if (rc != 0)
		return rc;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		struct por_order o;

		rc = por_order_lock(pg, PQgetvalue(res, i, 0), NULL, &o, err);
		if (rc == 0)
			rc = por_move_as(pg, NULL, &o, "cancelled", "system",
			                 "draft_expired",
			                 "porting_order.expired", err);
	}
	if (rc == 0 && PQntuples(res) > 0)
		vox_logf(VOX_LOG_INFO, "%d porting drafts expired",
		         PQntuples(res));
	PQclear(res);
	return rc;
}

void por_expire(vox_pg_t *pg, void *ctx)
{
	vox_error_t err;

	if (vox_pg_transaction(pg, expire_in_tx, ctx, &err) != 0)
		vox_log(VOX_LOG_WARN, "porting draft expiry sweep failed",
		        "error", err.message, NULL);
}
