/* Number commands: reserve, extend, order, activate, deactivate, release,
 * and the reservation expiry sweep. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provisioning.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_ops.h"
#include "vox_uuid.h"

/* An event for analysts and other workers about subject (a number),
 * caused by msg, committed with the effect. */
int prov_emit(vox_pg_t *pg, const char *type, const vox_message_t *msg,
              const char *subject, json_t *data, vox_error_t *err)
{
	return vox_event_emit(pg, type, subject, subject, msg->account_id,
	                      msg->traceparent, data, err);
}

void prov_op_of(const vox_message_t *msg, const char *kind, vox_op_t *op)
{
	memset(op, 0, sizeof(*op));
	op->id = vox_json_str(msg->data, "operation_id");
	op->account_id = msg->account_id;
	op->kind = kind;
	op->subject = msg->subject;
	op->at = msg->time;
}

int prov_done(vox_pg_t *pg, const vox_message_t *msg, const char *kind,
              json_t *result, vox_error_t *err)
{
	char *text = vox_json_dump(result);
	vox_op_t op;
	int rc;

	json_decref(result);
	prov_op_of(msg, kind, &op);
	rc = vox_op_finish(pg, &op, "completed", text, NULL, NULL, err);
	free(text);
	return rc;
}

/* A business failure: recorded on the operation, and the message is done
 * (returning 0 commits it). */
int prov_fail(vox_pg_t *pg, const vox_message_t *msg, const char *kind,
              const char *code, const char *message, vox_error_t *err)
{
	vox_op_t op;

	prov_op_of(msg, kind, &op);
	vox_log(VOX_LOG_INFO, "operation failed", "operation_id", op.id, "code",
	        code, "reason", message, NULL);
	return vox_op_finish(pg, &op, "failed", NULL, code, message, err);
}

/* Marks the operation running (creating its row if the ingress's
 * accepted row is not committed yet: rows of ours refer to it). */
static int prov_running(vox_pg_t *pg, const vox_message_t *msg,
                        vox_error_t *err)
{
	vox_op_t op;

	static const char *const kinds[][2] = {
	        {"vox.reservation.requested", "reservation.create"},
	        {"vox.reservation.extend_requested", "reservation.extend"},
	        {"vox.order.requested", "order.create"},
	        {"vox.number.activate_requested", "number.activate"},
	        {"vox.number.deactivate_requested", "number.deactivate"},
	        {"vox.number.release_requested", "number.release"},
	        {"vox.number.routing_update_requested",
	         "number.routing.update"},
	        {"vox.number.business_hours_update_requested",
	         "number.business_hours.update"},
	        {"vox.number.voicemail_update_requested",
	         "number.voicemail.update"},
	        {"vox.notification_preferences.update_requested",
	         "notification_preferences.update"},
	};
	const char *kind = msg->type;

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i][0], msg->type) == 0)
			kind = kinds[i][1];
	prov_op_of(msg, kind, &op);
	return vox_op_finish(pg, &op, "running", NULL, NULL, NULL, err);
}

int prov_need(vox_pg_t *pg, const vox_message_t *msg, const char *const *names,
              vox_error_t *err)
{
	if (prov_envelope_validate(msg->event, err) != 0 ||
	    prov_command_validate(msg->type, msg->data, err) != 0)
		return VOX_ERR_INVALID;
	for (size_t i = 0; names[i] != NULL; i++) {
		const char *v = vox_json_str(msg->data, names[i]);

		if (v == NULL || !vox_uuid_valid(v))
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "data.%s must be a UUID",
			                     names[i]);
	}
	return prov_running(pg, msg, err);
}

/* Why e164 could not be reserved. */
static const char *unavailable_reason(vox_pg_t *pg, const char *e164)
{
	const char *params[] = {e164};
	const char *reason = "not in the available inventory (search first)";
	vox_error_t err;
	PGresult *res;

	if (vox_pg_execp(pg, "prov_number_status",
	                 "SELECT status FROM numbers WHERE e164 = $1 LIMIT 1",
	                 1, params, &res, &err) != 0)
		return reason;
	if (PQntuples(res) == 1) {
		const char *st = PQgetvalue(res, 0, 0);

		reason = strcmp(st, "reserved") == 0
		                 ? "already held by another reservation"
		                 : "already sold";
	}
	PQclear(res);
	return reason;
}

static int reserve_one(vox_pg_t *pg, const vox_message_t *msg,
                       const struct prov_ctx *pc, const char *e164,
                       json_t *results, vox_error_t *err)
{
	char ttl[24], id[VOX_UUID_STRLEN];
	const char *group = vox_json_str(msg->data, "reservation_id");
	const char *op_id = vox_json_str(msg->data, "operation_id");
	PGresult *res;
	int rc;

	snprintf(ttl, sizeof(ttl), "%ld", pc->reservation_ttl_s);
	vox_uuid7(id);
	const char *params[] = {e164, id, group, msg->account_id, op_id, ttl};
	/* The row lock makes concurrent reservations of one number queue up
	 * here; only the first finds it available. */
	rc = vox_pg_execp(
	        pg, "prov_reserve",
	        "WITH n AS (UPDATE numbers SET status = 'reserved' WHERE e164 "
	        "= "
	        "$1 AND status = 'available' RETURNING country, e164) "
	        "INSERT INTO reservations (id, group_id, account_id, country, "
	        "e164, operation_id, expires_at) SELECT $2, $3, $4, country, "
	        "e164, $5, now() + make_interval(secs => $6::int) FROM n "
	        "RETURNING vox_iso(expires_at)",
	        6, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 1) {
		json_array_append_new(results,
		                      json_pack("{s:s, s:s, s:s}",
		                                "phone_number", e164, "status",
		                                "reserved", "expires_at",
		                                PQgetvalue(res, 0, 0)));
		PQclear(res);
		return prov_emit(pg, "number.reserved", msg, e164,
		                 json_pack("{s:s, s:s}", "phone_number", e164,
		                           "reservation_id", group),
		                 err);
	}
	PQclear(res);
	json_array_append_new(
	        results, json_pack("{s:s, s:s, s:s, s:s}", "phone_number", e164,
	                           "status", "failed", "code", "conflict",
	                           "reason", unavailable_reason(pg, e164)));
	return 0;
}

int prov_reserve(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                 vox_error_t *err)
{
	static const char *const ids[] = {"operation_id", "reservation_id",
	                                  NULL};
	const json_t *numbers = json_object_get(msg->data, "phone_numbers");
	json_t *results, *value;
	size_t i, reserved = 0;
	int rc;

	/* prov_need ran prov_reservation_validate: 1..10 E.164 strings */
	if ((rc = prov_need(pg, msg, ids, err)) != 0)
		return rc;
	results = json_array();
	json_array_foreach(numbers, i, value)
	{
		rc = reserve_one(pg, msg, ctx, json_string_value(value),
		                 results, err);
		if (rc != 0) {
			json_decref(results);
			return rc;
		}
	}
	json_array_foreach(results, i, value) reserved +=
	        strcmp(vox_json_str(value, "status"), "reserved") == 0;
	if (reserved == 0) {
		json_decref(results);
		return prov_fail(pg, msg, "reservation.create", "conflict",
		                 "none of the numbers could be reserved: held, "
		                 "sold or not in inventory",
		                 err);
	}
	return prov_done(pg, msg, "reservation.create",
	                 json_pack("{s:s, s:o}", "reservation_id",
	                           vox_json_str(msg->data, "reservation_id"),
	                           "phone_numbers", results),
	                 err);
}

int prov_extend(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                vox_error_t *err)
{
	static const char *const ids[] = {"operation_id", "reservation_id",
	                                  NULL};
	const struct prov_ctx *pc = ctx;
	char ttl[24];
	PGresult *res;
	int rc;

	if ((rc = prov_need(pg, msg, ids, err)) != 0)
		return rc;
	snprintf(ttl, sizeof(ttl), "%ld", pc->reservation_ttl_s);
	const char *params[] = {vox_json_str(msg->data, "reservation_id"),
	                        msg->account_id, ttl};
	rc = vox_pg_execp(pg, "prov_extend",
	                  "UPDATE reservations SET expires_at = now() + "
	                  "make_interval(secs => $3::int) WHERE group_id = $1 "
	                  "AND account_id = $2 AND status = 'active' "
	                  "RETURNING vox_iso(expires_at)",
	                  3, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return prov_fail(pg, msg, "reservation.extend",
		                 "reservation_not_active",
		                 "the reservation is not active (expired, "
		                 "ordered or unknown)",
		                 err);
	}
	json_t *result = json_pack(
	        "{s:s, s:s, s:i}", "reservation_id", params[0], "expires_at",
	        PQgetvalue(res, 0, 0), "numbers", PQntuples(res));
	PQclear(res);
	return prov_done(pg, msg, "reservation.extend", result, err);
}
