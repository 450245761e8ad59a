/* What the porting handlers share: operations, locking an order, the
 * history rows, moves with their events, and the parent's summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "porting.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_ops.h"
#include "vox_porting.h"
#include "vox_uuid.h"

static void op_of(const vox_message_t *msg, const char *kind, vox_op_t *op)
{
	memset(op, 0, sizeof(*op));
	op->id = vox_json_str(msg->data, "operation_id");
	op->account_id = msg->account_id;
	op->kind = kind;
	op->subject = vox_json_str(msg->data, "order_id");
	op->at = msg->time;
}

int por_need(vox_pg_t *pg, const vox_message_t *msg, const char *kind,
             vox_error_t *err)
{
	static const char *const names[] = {"operation_id", "order_id"};
	vox_op_t op;

	if (por_envelope_validate(msg->event, err) != 0 ||
	    por_command_validate(msg->type, msg->data, err) != 0)
		return VOX_ERR_INVALID;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = vox_json_str(msg->data, names[i]);

		if (v == NULL || !vox_uuid_valid(v))
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "data.%s must be a UUID",
			                     names[i]);
	}
	op_of(msg, kind, &op);
	return vox_op_finish(pg, &op, "running", NULL, NULL, NULL, err);
}

int por_done(vox_pg_t *pg, const vox_message_t *msg, const char *kind,
             json_t *result, vox_error_t *err)
{
	char *text = vox_json_dump(result);
	vox_op_t op;
	int rc;

	json_decref(result);
	op_of(msg, kind, &op);
	rc = vox_op_finish(pg, &op, "completed", text, NULL, NULL, err);
	free(text);
	return rc;
}

int por_fail(vox_pg_t *pg, const vox_message_t *msg, const char *kind,
             const char *code, const char *message, vox_error_t *err)
{
	vox_op_t op;

	op_of(msg, kind, &op);
	vox_log(VOX_LOG_INFO, "porting operation failed", "operation_id", op.id,
	        "order_id", op.subject, "code", code, "reason", message, NULL);
	return vox_op_finish(pg, &op, "failed", NULL, code, message, err);
}

#define ORDER_COLUMNS                                                          \
	"o.id, o.account_id, coalesce(o.parent_id::text, ''), o.status, "      \
	"coalesce(o.losing_carrier, ''), coalesce(o.carrier_order_id, ''), "   \
	"coalesce(vox_iso(o.foc_date), ''), "                                  \
	"coalesce(o.requested_foc_date::text, ''), o.version, "                \
	"coalesce(o.foc_date < now() + interval '48 hours', false), "          \
	"(SELECT count(*) FROM porting_orders c WHERE c.parent_id = o.id) "

static void order_row(PGresult *res, int row, struct por_order *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->id, sizeof(o->id), "%s", PQgetvalue(res, row, 0));
	snprintf(o->account_id, sizeof(o->account_id), "%s",
	         PQgetvalue(res, row, 1));
	snprintf(o->parent_id, sizeof(o->parent_id), "%s",
	         PQgetvalue(res, row, 2));
	snprintf(o->status, sizeof(o->status), "%s", PQgetvalue(res, row, 3));
	snprintf(o->losing_carrier, sizeof(o->losing_carrier), "%s",
	         PQgetvalue(res, row, 4));
	snprintf(o->carrier_order_id, sizeof(o->carrier_order_id), "%s",
	         PQgetvalue(res, row, 5));
	snprintf(o->foc_date, sizeof(o->foc_date), "%s",
	         PQgetvalue(res, row, 6));
	snprintf(o->requested_foc_date, sizeof(o->requested_foc_date), "%s",
	         PQgetvalue(res, row, 7));
	o->version = strtol(PQgetvalue(res, row, 8), NULL, 10);
	o->within_cutoff = PQgetvalue(res, row, 9)[0] == 't';
	o->children = (int)strtol(PQgetvalue(res, row, 10), NULL, 10);
}

int por_order_lock(vox_pg_t *pg, const char *id, const char *account_id,
                   struct por_order *o, vox_error_t *err)
{
	const char *params[] = {id, account_id};
	PGresult *res;
	int rc;

	rc = vox_pg_execp(pg, "por_order_lock",
	                  "SELECT " ORDER_COLUMNS
	                  "FROM porting_orders o WHERE o.id = $1::uuid AND "
	                  "($2::uuid IS NULL OR o.account_id = $2::uuid) "
	                  "FOR UPDATE OF o",
	                  2, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                     "no porting order %s", id);
	}
	order_row(res, 0, o);
	PQclear(res);
	return 0;
}

int por_children(vox_pg_t *pg, const char *parent_id, struct por_order *out,
                 int max, int *n, vox_error_t *err)
{
	const char *params[] = {parent_id};
	PGresult *res;
	int rc;

	*n = 0;
	rc = vox_pg_execp(pg, "por_children",
	                  "SELECT " ORDER_COLUMNS
	                  "FROM porting_orders o WHERE o.parent_id = $1::uuid "
	                  "ORDER BY o.losing_carrier, o.id FOR UPDATE OF o",
	                  1, params, &res, err);
	if (rc != 0)
		return rc;
	for (int i = 0; i < PQntuples(res) && *n < max; i++)
		order_row(res, i, &out[(*n)++]);
	PQclear(res);
	return 0;
}

int por_history(vox_pg_t *pg, const char *order_id, const char *from,
                const char *to, bool applied, const char *source,
                const char *carrier_event_id, const char *reason,
                const char *detail_json, bool *inserted, vox_error_t *err)
{
	const char *params[] = {order_id, from,
	                        to,       applied ? "t" : "f",
	                        source,   carrier_event_id,
	                        reason,   detail_json};
	PGresult *res;
	int rc;

	rc = vox_pg_execp(
	        pg, "por_history",
	        "INSERT INTO porting_order_events (order_id, from_status, "
	        "to_status, applied, source, carrier_event_id, reason, detail) "
	        "VALUES ($1, $2, $3, $4::boolean, $5, $6, $7, $8::jsonb) "
	        "ON CONFLICT (carrier_event_id) WHERE carrier_event_id IS NOT "
	        "NULL DO NOTHING RETURNING id",
	        8, params, &res, err);
	if (rc != 0)
		return rc;
	if (inserted != NULL)
		*inserted = PQntuples(res) == 1;
	PQclear(res);
	return 0;
}

int por_move_as(vox_pg_t *pg, const vox_message_t *msg, struct por_order *o,
                const char *to, const char *source, const char *reason,
                const char *type, vox_error_t *err)
{
	char from[24];
	int rc;

	snprintf(from, sizeof(from), "%s", o->status);
	const char *params[] = {o->id, to};
	rc = vox_pg_execp(
	        pg, "por_move",
	        "WITH n AS (UPDATE porting_order_numbers SET status = $2, "
	        "updated_at = now() WHERE order_id = $1::uuid) "
	        "UPDATE porting_orders SET status = $2, "
	        "submitted_at = CASE WHEN $2 = 'submitted' THEN now() ELSE "
	        "submitted_at END, "
	        "foc_confirmed_at = CASE WHEN $2 = 'foc-date-confirmed' THEN "
	        "now() ELSE foc_confirmed_at END, "
	        "ported_at = CASE WHEN $2 = 'ported' THEN now() ELSE ported_at "
	        "END, "
	        "cancelled_at = CASE WHEN $2 = 'cancelled' THEN now() ELSE "
	        "cancelled_at END, "
	        "exceptions = CASE WHEN $2 = 'submitted' THEN '[]'::jsonb ELSE "
	        "exceptions END "
	        "WHERE id = $1::uuid",
	        2, params, NULL, err);
	if (rc != 0)
		return rc;
	snprintf(o->status, sizeof(o->status), "%s", to);
	if (source != NULL) {
		rc = por_history(pg, o->id, from, to, true, source, NULL,
		                 reason, NULL, NULL, err);
		if (rc != 0)
			return rc;
	}
	return por_emit_order(pg, msg, o->id, type, from, err);
}

int por_move(vox_pg_t *pg, const vox_message_t *msg, struct por_order *o,
             const char *to, const char *source, const char *reason,
             vox_error_t *err)
{
	return por_move_as(pg, msg, o, to, source, reason, NULL, err);
}

int por_emit_order(vox_pg_t *pg, const vox_message_t *msg, const char *id,
                   const char *type, const char *previous, vox_error_t *err)
{
	const char *params[] = {id, previous};
	const char *status, *account;
	json_error_t jerr;
	PGresult *res;
	json_t *data;
	int rc;

	/* The order's numbers are its own, or its children's (a parent). */
	rc = vox_pg_execp(
	        pg, "por_event_data",
	        "SELECT json_build_object('order_id', o.id, 'parent_id', "
	        "o.parent_id, 'account_id', o.account_id, 'status', o.status, "
	        "'previous_status', $2::text, 'phone_numbers', coalesce(("
	        "SELECT json_agg(json_build_object('phone_number', n.e164, "
	        "'status', n.status, 'number_id', n.number_id) ORDER BY "
	        "n.e164) "
	        "FROM porting_order_numbers n WHERE n.order_id = o.id OR "
	        "n.order_id IN (SELECT c.id FROM porting_orders c WHERE "
	        "c.parent_id = o.id)), '[]'), 'losing_carrier', "
	        "o.losing_carrier, 'foc_date', vox_iso(o.foc_date), "
	        "'exceptions', o.exceptions, 'cancel_reason', o.cancel_reason, "
	        "'customer_reference', o.customer_reference)::text "
	        "FROM porting_orders o WHERE o.id = $1::uuid",
	        2, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "porting order %s vanished", id);
	}
	data = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
	PQclear(res);
	if (data == NULL)
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "event data: %s", jerr.text);
	status = vox_json_str(data, "status");
	if (type == NULL)
		type = vox_porting_event_type(status);
	if (type == NULL) {
		json_decref(data);
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "no event type for status %s", status);
	}
	account = vox_json_str(data, "account_id");
	char account_id[40];
	snprintf(account_id, sizeof(account_id), "%s", account);
	return vox_event_emit(pg, type, id, id, account_id,
	                      msg != NULL ? msg->traceparent : NULL, data, err);
}

int por_parent_sync(vox_pg_t *pg, const vox_message_t *msg,
                    const char *parent_id, vox_error_t *err)
{
	struct por_order parent, kids[POR_MAX_CHILDREN];
	const char *statuses[POR_MAX_CHILDREN];
	const char *summary;
	int n = 0, rc;

	rc = por_order_lock(pg, parent_id, NULL, &parent, err);
	if (rc != 0)
		return rc;
	rc = por_children(pg, parent_id, kids, POR_MAX_CHILDREN, &n, err);
	if (rc != 0 || n == 0)
		return rc;
	for (int i = 0; i < n; i++)
		statuses[i] = kids[i].status;
	summary = vox_porting_summary(statuses, (size_t)n);
	if (summary == NULL || strcmp(summary, parent.status) == 0)
		return 0;
	/* The parent's exceptions and FOC are its children's: the first
	 * exception's list, the latest confirmed FOC. */
	const char *params[] = {parent_id};
	rc = vox_pg_execp(
	        pg, "por_parent_fields",
	        "UPDATE porting_orders p SET exceptions = coalesce((SELECT "
	        "jsonb_agg(e) FROM porting_orders c, jsonb_array_elements("
	        "c.exceptions) e WHERE c.parent_id = p.id AND c.status = "
	        "'exception'), '[]'::jsonb), foc_date = (SELECT "
	        "max(c.foc_date) "
	        "FROM porting_orders c WHERE c.parent_id = p.id) WHERE p.id = "
	        "$1::uuid",
	        1, params, NULL, err);
	if (rc != 0)
		return rc;
	return por_move(pg, msg, &parent, summary, "system", "children", err);
}

json_t *por_result(const struct por_order *o)
{
	return json_pack("{s:s, s:s}", "order_id", o->id, "status", o->status);
}
