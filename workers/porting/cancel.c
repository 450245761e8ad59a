/*
 * vox.porting_order.cancel_requested: every leaf of the order that is not
 * final goes to cancel-pending after the carrier took the cancel (the
 * carrier's event then makes it cancelled, or ported when the port won the
 * race). A leaf within 48 h of its confirmed FOC refuses the whole cancel
 * (cancel_too_late, nothing changes), as the ingress does; a draft leaf
 * (the carrier never saw it) is cancelled at once.
 */
#include <stdio.h>
#include <string.h>

#include "porting.h"
#include "vox_carrier_port.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_porting.h"

#define KIND          "porting.cancel"
#define CANCEL_REASON "cancelled" /* as the ingress cancels a draft */

static int set_reason(vox_pg_t *pg, const char *id, vox_error_t *err)
{
	const char *params[] = {id, CANCEL_REASON};

	return vox_pg_execp(pg, "por_cancel_reason",
	                    "UPDATE porting_orders SET cancel_reason = $2 "
	                    "WHERE id = $1::uuid",
	                    2, params, NULL, err);
}

/* One leaf: 0 when done or skipped, else the error to return. */
static int cancel_leaf(vox_pg_t *pg, const vox_message_t *msg,
                       const struct porting_ctx *pc, struct por_order *leaf,
                       vox_error_t *err)
{
	vox_carrier_port_t out;
	vox_error_t cerr;
	int rc;

	if (vox_porting_status_final(leaf->status) ||
	    strcmp(leaf->status, "cancel-pending") == 0)
		return 0;
	if (strcmp(leaf->status, "draft") == 0 ||
	    *leaf->carrier_order_id == '\0') {
		if ((rc = set_reason(pg, leaf->id, err)) != 0)
			return rc;
		return por_move(pg, msg, leaf, "cancelled", "api",
		                CANCEL_REASON, err);
	}
	if (vox_carrier_port_cancel(pc->carrier, leaf->carrier_order_id, &out,
	                            &cerr) != 0) {
		if (cerr.retriable || cerr.fatal ||
		    cerr.code == VOX_ERR_INTERNAL ||
		    cerr.code == VOX_ERR_NOMEM) {
			*err = cerr;
			return cerr.code;
		}
		/* e.g. ported already: the carrier's event tells us */
		vox_log(VOX_LOG_WARN, "the carrier refused a porting cancel",
		        "order_id", leaf->id, "carrier_order_id",
		        leaf->carrier_order_id, "error", cerr.message, NULL);
		return 0;
	}
	if ((rc = set_reason(pg, leaf->id, err)) != 0)
		return rc;
	return por_move(pg, msg, leaf, "cancel-pending", "api", CANCEL_REASON,
	                err);
}

int por_cancel(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
               vox_error_t *err)
{
	struct porting_ctx *pc = ctx;
	struct por_order o, leaves[POR_MAX_CHILDREN];
	int n = 0, rc;
	bool parent;

	if ((rc = por_need(pg, msg, KIND, err)) != 0)
		return rc;
	rc = por_order_lock(pg, vox_json_str(msg->data, "order_id"),
	                    msg->account_id, &o, err);
	if (rc == VOX_ERR_NOT_FOUND)
		return por_fail(pg, msg, KIND, "porting_order_not_found",
		                "the porting order does not exist", err);
	if (rc != 0)
		return rc;
	if (vox_porting_status_final(o.status))
		return por_fail(pg, msg, KIND, "invalid_state",
		                "the order is already final", err);
	parent = o.children > 0;
	if (parent)
		rc = por_children(pg, o.id, leaves, POR_MAX_CHILDREN, &n, err);
	else
		leaves[n++] = o;
	if (rc != 0)
		return rc;
	for (int i = 0; i < n; i++)
		if (!vox_porting_status_final(leaves[i].status) &&
		    strcmp(leaves[i].status, "foc-date-confirmed") == 0 &&
		    leaves[i].within_cutoff)
			return por_fail(pg, msg, KIND, "cancel_too_late",
			                "a confirmed FOC is less than 48 hours "
			                "away",
			                err);
	for (int i = 0; i < n && rc == 0; i++)
		rc = cancel_leaf(pg, msg, pc, &leaves[i], err);
	if (rc == 0 && parent)
		rc = por_parent_sync(pg, msg, o.id, err);
	else if (rc == 0 && *o.parent_id != '\0') /* a child by its id */
		rc = por_parent_sync(pg, msg, o.parent_id, err);
	if (rc == 0)
		rc = por_order_lock(pg, o.id, NULL, &o, err);
	if (rc != 0)
		return rc;
	return por_done(pg, msg, KIND, por_result(&o), err);
}
