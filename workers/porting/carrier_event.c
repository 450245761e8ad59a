/*
 * vox.porting.carrier_event: the carrier's webhook (docs/PORTING.md "The
 * carrier's webhooks"), applied to the leaf it is about.
 *
 * The event's history row is written first with its carrier event id
 * (ON CONFLICT DO NOTHING): a duplicate changes nothing at all. A move the
 * table allows is applied (status, exceptions, FOC, the numbers, and on
 * `ported` the numbers enter `numbers` as the account's, active); any
 * other is recorded with applied = false and its reason. The parent's
 * summary follows.
 *
 * An event can overtake our own record of the submit: the worker died
 * after the carrier took the order and before its transaction committed
 * (the carrier's webhooks do not wait for us). Such an event (its order
 * not submitted yet, or not there yet: a child of a split being redone,
 * while a submit operation is pending) is put back on the topic with a new
 * id until the submit is recorded, for at most VOX_PORTING_EARLY_WAIT_S;
 * applying it as refused would lose the move. An event about no order we
 * know is logged and skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "porting.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_porting.h"
#include "vox_uuid.h"

#define REQUEUE_FIELD "vox_requeue_until"

struct cevent {
	const char *id, *carrier, *carrier_order, *reference, *status;
	const char *foc_date;
	const json_t *payload, *exceptions, *numbers;
	char *numbers_json;
};

static int cevent_parse(const vox_message_t *msg, struct cevent *ev,
                        vox_error_t *err)
{
	memset(ev, 0, sizeof(*ev));
	ev->id = vox_json_str(msg->data, "id");
	ev->carrier = vox_json_str(msg->data, "carrier");
	ev->payload = json_object_get(msg->data, "payload");
	ev->carrier_order = vox_json_str(ev->payload, "id");
	ev->reference = vox_json_str(ev->payload, "customer_reference");
	ev->status = vox_json_str(ev->payload, "status");
	ev->foc_date = vox_json_str(ev->payload, "foc_date");
	ev->exceptions = json_object_get(ev->payload, "exceptions");
	ev->numbers = json_object_get(ev->payload, "phone_numbers");
	if (ev->id == NULL || *ev->id == '\0' || strlen(ev->id) > 200 ||
	    !json_is_object(ev->payload) || ev->carrier_order == NULL ||
	    strlen(ev->carrier_order) > 64 || ev->status == NULL ||
	    !vox_porting_status_valid(ev->status))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "a carrier porting event needs data.id, "
		                     "payload.id and a payload.status of ours");
	if (ev->exceptions != NULL && !json_is_array(ev->exceptions))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "payload.exceptions must be an array");
	if (ev->numbers != NULL && !json_is_array(ev->numbers))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "payload.phone_numbers must be an array");
	ev->numbers_json = ev->numbers != NULL
	                           ? json_dumps(ev->numbers, JSON_COMPACT)
	                           : strdup("[]");
	if (ev->numbers_json == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	return 0;
}

/* The leaf the event is about: by the carrier's order id, else by our id
 * (customer_reference). VOX_ERR_NOT_FOUND when neither. */
static int find_leaf(vox_pg_t *pg, const struct cevent *ev,
                     struct por_order *leaf, vox_error_t *err)
{
	const char *ref = ev->reference != NULL && vox_uuid_valid(ev->reference)
	                          ? ev->reference
	                          : NULL;
	const char *params[] = {ev->carrier_order, ref};
	PGresult *res;
	char id[40];
	int rc;

	rc = vox_pg_execp(pg, "por_find_leaf",
	                  "SELECT id FROM porting_orders WHERE "
	                  "carrier_order_id = $1 UNION ALL SELECT id FROM "
	                  "porting_orders WHERE id = $2::uuid LIMIT 1",
	                  2, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return VOX_ERR_NOT_FOUND;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return por_order_lock(pg, id, NULL, leaf, err);
}

/* Whether a submit of this order (or its parent, or of an order holding
 * the event's numbers) is still pending: the event came before it. */
static int submit_pending(vox_pg_t *pg, const char *leaf_id,
                          const struct cevent *ev, bool *pending,
                          vox_error_t *err)
{
	const char *params[] = {leaf_id, ev->numbers_json};
	PGresult *res;
	int rc;

	rc = vox_pg_execp(
	        pg, "por_submit_pending",
	        "WITH mine AS (SELECT o.id::text AS id FROM porting_orders o "
	        "WHERE o.id = $1::uuid UNION SELECT o.parent_id::text FROM "
	        "porting_orders o WHERE o.id = $1::uuid AND o.parent_id IS NOT "
	        "NULL UNION SELECT coalesce(o.parent_id, o.id)::text FROM "
	        "porting_order_numbers n JOIN porting_orders o ON o.id = "
	        "n.order_id WHERE o.status IN ('draft', 'exception') AND "
	        "n.e164 IN (SELECT x->>'phone_number' FROM "
	        "jsonb_array_elements($2::jsonb) x)) "
	        "SELECT EXISTS (SELECT 1 FROM operations op WHERE op.kind = "
	        "'porting.submit' AND op.status IN ('accepted', 'running') AND "
	        "(op.subject IN (SELECT id FROM mine) OR op.request->>'order_id' "
	        "IN (SELECT id FROM mine)))",
	        2, params, &res, err);
	if (rc != 0)
		return rc;
	*pending = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return 0;
}

/* Puts the event back on its topic under a new id (the inbox would skip
 * the old one), until its deadline. */
static int requeue(vox_pg_t *pg, const vox_message_t *msg,
                   const struct porting_ctx *pc, vox_error_t *err)
{
	const json_t *until = json_object_get(msg->data, REQUEUE_FIELD);
	long long now = (long long)time(NULL), deadline;
	char id[VOX_UUID_STRLEN], *text;
	json_t *ev, *data;
	int rc;

	deadline = json_is_integer(until) ? json_integer_value(until)
	                                  : now + pc->early_wait_s;
	if (now > deadline) {
		vox_log(VOX_LOG_WARN,
		        "a carrier porting event found no submitted order in "
		        "time: skipped",
		        "message_id", msg->id, "order_id", msg->subject, NULL);
		return 0;
	}
	ev = json_deep_copy(msg->event);
	data = ev != NULL ? json_object_get(ev, "data") : NULL;
	if (data == NULL) {
		json_decref(ev);
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	}
	vox_uuid7(id);
	json_object_set_new(ev, "id", json_string(id));
	json_object_set_new(data, REQUEUE_FIELD, json_integer(deadline));
	text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (text == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	/* not a hot loop while the submit is on its way */
	usleep(50 * 1000);
	rc = vox_outbox_add(pg, msg->topic, msg->key, text, NULL, err);
	free(text);
	return rc;
}

/* The leaf's fields from the event, before the move. */
static int apply_fields(vox_pg_t *pg, const struct por_order *leaf,
                        const struct cevent *ev, vox_error_t *err)
{
	char *exceptions = ev->exceptions != NULL
	                           ? json_dumps(ev->exceptions, JSON_COMPACT)
	                           : strdup("[]");
	const char *params[] = {leaf->id, ev->status, exceptions, ev->foc_date,
	                        ev->numbers_json};
	int rc;

	if (exceptions == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	rc = vox_pg_execp(
	        pg, "por_event_fields",
	        "WITH n AS (UPDATE porting_order_numbers p SET "
	        "carrier_number_id = x->>'id' FROM jsonb_array_elements("
	        "$5::jsonb) x WHERE p.order_id = $1::uuid AND p.e164 = "
	        "x->>'phone_number' AND coalesce(x->>'id', '') <> '') "
	        "UPDATE porting_orders SET exceptions = CASE WHEN $2 = "
	        "'exception' THEN $3::jsonb ELSE exceptions END, foc_date = "
	        "coalesce($4::timestamptz, foc_date) WHERE id = $1::uuid",
	        5, params, NULL, err);
	free(exceptions);
	return rc;
}

/* A ported leaf's numbers enter the inventory as the account's, active
 * (a row that is available or released is taken over; one owned by
 * anyone is left alone and logged), with a port_in order for invoicing. */
static int complete(vox_pg_t *pg, const vox_message_t *msg,
                    const struct porting_ctx *pc, const struct por_order *leaf,
                    vox_error_t *err)
{
	const char *params[] = {leaf->id, pc->carrier_name};
	PGresult *res;
	int rc;

	rc = vox_pg_execp(
	        pg, "por_complete_numbers",
	        "WITH n AS (INSERT INTO numbers (e164, country, number_type, "
	        "status, account_id, carrier, carrier_number_id, purchased_at, "
	        "activated_at) SELECT p.e164, p.country, p.number_type, "
	        "'active', o.account_id, $2, p.carrier_number_id, now(), now() "
	        "FROM porting_order_numbers p JOIN porting_orders o ON o.id = "
	        "p.order_id WHERE p.order_id = $1::uuid ON CONFLICT (country, "
	        "e164) DO UPDATE SET status = 'active', account_id = "
	        "EXCLUDED.account_id, carrier = EXCLUDED.carrier, "
	        "carrier_number_id = EXCLUDED.carrier_number_id, number_type = "
	        "EXCLUDED.number_type, purchased_at = now(), activated_at = "
	        "now(), released_at = NULL WHERE numbers.status IN "
	        "('available', 'released') RETURNING id, e164, account_id) "
	        "UPDATE porting_order_numbers p SET number_id = n.id FROM n "
	        "WHERE p.order_id = $1::uuid AND p.e164 = n.e164 RETURNING "
	        "n.id, n.e164, n.account_id",
	        2, params, &res, err);
	if (rc != 0)
		return rc;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++)
		rc = vox_event_emit(
		        pg, "number.ported_in", PQgetvalue(res, i, 1),
		        PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
		        msg->traceparent,
		        json_pack("{s:s, s:s, s:s, s:s}", "number_id",
		                  PQgetvalue(res, i, 0), "phone_number",
		                  PQgetvalue(res, i, 1), "account_id",
		                  PQgetvalue(res, i, 2), "order_id", leaf->id),
		        err);
	PQclear(res);
	if (rc != 0)
		return rc;
	rc = vox_pg_execp(
	        pg, "por_complete_missing",
	        "SELECT string_agg(e164, ',') FROM porting_order_numbers WHERE "
	        "order_id = $1::uuid AND number_id IS NULL",
	        1, params, &res, err);
	if (rc != 0)
		return rc;
	if (!PQgetisnull(res, 0, 0))
		vox_log(VOX_LOG_ERROR,
		        "ported numbers already owned in the inventory were "
		        "left alone",
		        "order_id", leaf->id, "phone_numbers",
		        PQgetvalue(res, 0, 0), NULL);
	PQclear(res);
	/* the order of the port (for invoicing): one per leaf, its id */
	return vox_pg_execp(
	        pg, "por_complete_order",
	        "WITH o AS (INSERT INTO orders (id, account_id, kind, status, "
	        "currency, completed_at) SELECT id, account_id, 'port_in', "
	        "'completed', 'USD', now() FROM porting_orders WHERE id = "
	        "$1::uuid ON CONFLICT (id) DO NOTHING RETURNING id) "
	        "INSERT INTO order_items (order_id, country, e164, number_id, "
	        "status, currency) SELECT o.id, p.country, p.e164, p.number_id, "
	        "'provisioned', 'USD' FROM o JOIN porting_order_numbers p ON "
	        "p.order_id = o.id WHERE p.number_id IS NOT NULL",
	        1, params, NULL, err);
}

static int apply(vox_pg_t *pg, const vox_message_t *msg,
                 const struct porting_ctx *pc, struct por_order *leaf,
                 const struct cevent *ev, vox_error_t *err)
{
	char *detail = json_dumps(ev->payload, JSON_COMPACT);
	bool allowed = vox_porting_move_allowed(leaf->status, ev->status);
	bool inserted = false;
	char reason[120];
	int rc;

	if (detail == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	snprintf(reason, sizeof(reason), "move not allowed: %s -> %s",
	         leaf->status, ev->status);
	rc = por_history(pg, leaf->id, leaf->status, ev->status, allowed,
	                 "carrier", ev->id, allowed ? NULL : reason, detail,
	                 &inserted, err);
	free(detail);
	if (rc != 0 || !inserted)
		return rc; /* a duplicate changes nothing */
	if (!allowed) {
		vox_log(VOX_LOG_WARN, "carrier porting event refused", "order_id",
		        leaf->id, "carrier_event_id", ev->id, "reason", reason,
		        NULL);
		return 0;
	}
	if ((rc = apply_fields(pg, leaf, ev, err)) != 0)
		return rc;
	if (strcmp(ev->status, "ported") == 0 &&
	    (rc = complete(pg, msg, pc, leaf, err)) != 0)
		return rc;
	if ((rc = por_move(pg, msg, leaf, ev->status, NULL, NULL, err)) != 0)
		return rc;
	if (*leaf->parent_id != '\0')
		rc = por_parent_sync(pg, msg, leaf->parent_id, err);
	return rc;
}

int por_carrier_event(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                      vox_error_t *err)
{
	struct porting_ctx *pc = ctx;
	struct por_order leaf;
	struct cevent ev;
	bool pending = false, found;
	int rc;

	if ((rc = cevent_parse(msg, &ev, err)) != 0)
		goto out;
	if (ev.carrier == NULL || strcmp(ev.carrier, pc->carrier_name) != 0) {
		vox_log(VOX_LOG_WARN,
		        "carrier porting event from another carrier: skipped",
		        "carrier", ev.carrier, "carrier_event_id", ev.id, NULL);
		goto out;
	}
	rc = find_leaf(pg, &ev, &leaf, err);
	if (rc != 0 && rc != VOX_ERR_NOT_FOUND)
		goto out;
	found = rc == 0;
	if (found && *leaf.carrier_order_id != '\0' &&
	    strcmp(leaf.carrier_order_id, ev.carrier_order) != 0) {
		vox_log(VOX_LOG_WARN,
		        "carrier porting event names another carrier order: "
		        "skipped",
		        "order_id", leaf.id, "carrier_event_id", ev.id, NULL);
		rc = 0;
		goto out;
	}
	if (!found || *leaf.carrier_order_id == '\0' ||
	    strcmp(leaf.status, "exception") == 0) {
		rc = submit_pending(pg, found ? leaf.id : NULL, &ev, &pending,
		                    err);
		if (rc != 0)
			goto out;
		if (pending) {
			rc = requeue(pg, msg, pc, err);
			goto out;
		}
		if (!found) {
			vox_log(VOX_LOG_WARN,
			        "carrier porting event for no order of ours: "
			        "skipped",
			        "carrier_event_id", ev.id, NULL);
			goto out;
		}
	}
	rc = apply(pg, msg, pc, &leaf, &ev, err);
out:
	free(ev.numbers_json);
	return rc;
}
