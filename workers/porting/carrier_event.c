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
 * (the carrier's webhooks do not wait for us). Such an event (its leaf has
 * no carrier order yet, or is not there yet: a child of a split that is
 * redone; or a resubmit of a leaf in exception is pending) is held on the
 * order that has the numbers (a history row, applied = false, reason
 * "early", the event as detail) and applied in its order by the submit
 * when it is recorded: applying it as refused would lose the move. An
 * event about no order we know is logged and skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "porting.h"
#include "vox_event.h"
#include "vox_fault.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_porting.h"
#include "vox_uuid.h"

struct cevent {
	const char *id, *carrier, *carrier_order, *reference, *status;
	const char *foc_date;
	const json_t *payload, *exceptions, *numbers;
	char *numbers_json;
};

static int cevent_parse(const json_t *data, struct cevent *ev, vox_error_t *err)
{
	memset(ev, 0, sizeof(*ev));
	ev->id = vox_json_str(data, "id");
	ev->carrier = vox_json_str(data, "carrier");
	ev->payload = json_object_get(data, "payload");
	ev->carrier_order = vox_json_str(ev->payload, "id");
	ev->reference = vox_json_str(ev->payload, "customer_reference");
	ev->status = vox_json_str(ev->payload, "status");
	ev->foc_date = vox_json_str(ev->payload, "foc_date");
	ev->exceptions = json_object_get(ev->payload, "exceptions");
	ev->numbers = json_object_get(ev->payload, "phone_numbers");
	if (ev->id == NULL || *ev->id == '\0' || strlen(ev->id) > 200 ||
	    !json_is_object(ev->payload) || ev->carrier_order == NULL ||
	    strlen(ev->carrier_order) > POR_CARRIER_ID_MAX ||
	    ev->status == NULL || !vox_porting_status_valid(ev->status))
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

/* Whether a submit of the leaf (or its parent) is still pending: an
 * accepted or running porting.submit operation. */
static int submit_pending(vox_pg_t *pg, const struct por_order *leaf,
                          bool *pending, vox_error_t *err)
{
	const char *params[] = {leaf->id,
	                        *leaf->parent_id ? leaf->parent_id : leaf->id};
	PGresult *res;
	int rc;

	rc = vox_pg_execp(
	        pg, "por_submit_pending",
	        "SELECT EXISTS (SELECT 1 FROM operations op WHERE op.kind = "
	        "'porting.submit' AND op.status IN ('accepted', 'running') AND "
	        "(op.subject IN ($1, $2) OR op.request->>'order_id' IN ($1, "
	        "$2)))",
	        2, params, &res, err);
	if (rc != 0)
		return rc;
	*pending = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return 0;
}

/* The order that holds the event's numbers before its submit is recorded
 * (the parent of a split being redone): draft or exception. */
static int find_holder(vox_pg_t *pg, const struct cevent *ev,
                       struct por_order *holder, vox_error_t *err)
{
	const char *params[] = {ev->numbers_json};
	PGresult *res;
	char id[40];
	int rc;

	rc = vox_pg_execp(pg, "por_find_holder",
	                  "SELECT n.order_id FROM porting_order_numbers n JOIN "
	                  "porting_orders o ON o.id = n.order_id WHERE "
	                  "o.status IN ('draft', 'exception') AND n.e164 IN "
	                  "(SELECT x->>'phone_number' FROM "
	                  "jsonb_array_elements($1::jsonb) x) LIMIT 1",
	                  1, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return VOX_ERR_NOT_FOUND;
	}
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return por_order_lock(pg, id, NULL, holder, err);
}

/* Keeps an event that came before our record of its submit (the worker
 * died after the carrier took the order, before its commit; the carrier's
 * webhooks do not wait for us) on the order that holds it, applied =
 * false with reason "early" and the whole event as detail; the submit
 * replays it once recorded (por_early_replay). A duplicate is nothing. */
static int hold_early(vox_pg_t *pg, const vox_message_t *msg,
                      const struct por_order *holder, const struct cevent *ev,
                      vox_error_t *err)
{
	char *detail = json_dumps(msg->data, JSON_COMPACT);
	int rc;

	if (detail == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	rc = por_history(pg, holder->id, holder->status, ev->status, false,
	                 "carrier", ev->id, POR_EARLY, detail, NULL, err);
	free(detail);
	vox_log(VOX_LOG_INFO,
	        "carrier porting event before its submit was recorded: held",
	        "order_id", holder->id, "carrier_event_id", ev->id, NULL);
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

	/* The ownership intervals the numbers' trigger opens are ports, not
	 * purchases: no setup fee (migration 0027, docs/BILLING.md). */
	rc = vox_pg_execp(pg, "por_ownership_source",
	                  "SELECT set_config('vox.ownership_source', "
	                  "'port_in', true)",
	                  0, NULL, NULL, err);
	if (rc != 0)
		return rc;
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
	        "status, currency) SELECT o.id, p.country, p.e164, "
	        "p.number_id, "
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
		vox_log(VOX_LOG_WARN, "carrier porting event refused",
		        "order_id", leaf->id, "carrier_event_id", ev->id,
		        "reason", reason, NULL);
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
	/* tests: killed with the move written, not committed */
	if (rc == 0)
		vox_fault_point(strcmp(ev->status, "ported") == 0
		                        ? "porting.event.ported"
		                        : "porting.event.applied");
	return rc;
}

int por_carrier_event(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                      vox_error_t *err)
{
	struct porting_ctx *pc = ctx;
	struct por_order leaf;
	struct cevent ev;
	bool pending = false;
	int rc;

	/* the whole command as its schema says (the poll's own events have
	 * no envelope); cevent_parse, shared with the replay of held events,
	 * reads what the worker uses */
	memset(&ev, 0, sizeof(ev));
	if ((msg->event != NULL &&
	     por_carrier_envelope_validate(msg->event, err) != 0) ||
	    por_carrier_event_validate(msg->data, err) != 0) {
		rc = VOX_ERR_INVALID;
		goto out;
	}
	if ((rc = cevent_parse(msg->data, &ev, err)) != 0)
		goto out;
	if (ev.carrier == NULL || strcmp(ev.carrier, pc->carrier_name) != 0) {
		vox_log(VOX_LOG_WARN,
		        "carrier porting event from another carrier: skipped",
		        "carrier", ev.carrier, "carrier_event_id", ev.id, NULL);
		goto out;
	}
	rc = find_leaf(pg, &ev, &leaf, err);
	if (rc == VOX_ERR_NOT_FOUND) {
		/* a child of a split not recorded yet, or nothing of ours */
		rc = find_holder(pg, &ev, &leaf, err);
		if (rc == 0)
			rc = hold_early(pg, msg, &leaf, &ev, err);
		else if (rc == VOX_ERR_NOT_FOUND) {
			vox_log(VOX_LOG_WARN,
			        "carrier porting event for no order of ours: "
			        "skipped",
			        "carrier_event_id", ev.id, "order_id",
			        ev.reference, NULL);
			rc = 0;
		}
		goto out;
	}
	if (rc != 0)
		goto out;
	if (*leaf.carrier_order_id != '\0' &&
	    strcmp(leaf.carrier_order_id, ev.carrier_order) != 0) {
		vox_log(VOX_LOG_WARN,
		        "carrier porting event names another carrier order: "
		        "skipped",
		        "order_id", leaf.id, "carrier_event_id", ev.id, NULL);
		goto out;
	}
	if (*leaf.carrier_order_id == '\0') {
		rc = hold_early(pg, msg, &leaf, &ev, err);
		goto out;
	}
	if (strcmp(leaf.status, "exception") == 0) {
		/* a resubmit the carrier took and we did not record yet */
		if ((rc = submit_pending(pg, &leaf, &pending, err)) != 0)
			goto out;
		if (pending) {
			rc = hold_early(pg, msg, &leaf, &ev, err);
			goto out;
		}
	}
	rc = apply(pg, msg, pc, &leaf, &ev, err);
out:
	free(ev.numbers_json);
	return rc;
}

int por_early_replay(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                     const char *holder_id, const char *leaf_id,
                     vox_error_t *err)
{
	struct porting_ctx *pc = ctx;
	PGresult *res;
	int rc;

	const char *params[] = {leaf_id, holder_id, POR_EARLY};
	rc = vox_pg_execp(
	        pg, "por_early_take",
	        "WITH e AS (SELECT id, detail FROM porting_order_events WHERE "
	        "order_id IN ($1::uuid, $2::uuid) AND NOT applied AND reason = "
	        "$3 AND (detail->'payload'->>'customer_reference' = $1::text "
	        "OR detail->'payload'->>'id' = (SELECT carrier_order_id FROM "
	        "porting_orders WHERE id = $1::uuid)) FOR UPDATE), d AS ("
	        "DELETE FROM porting_order_events x USING e WHERE x.id = e.id) "
	        "SELECT detail::text FROM e ORDER BY id",
	        3, params, &res, err);
	if (rc != 0)
		return rc;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		json_t *data = json_loads(PQgetvalue(res, i, 0), 0, NULL);
		struct por_order leaf;
		struct cevent ev;

		rc = cevent_parse(data, &ev, err);
		if (rc == 0)
			rc = por_order_lock(pg, leaf_id, NULL, &leaf, err);
		if (rc == 0)
			rc = apply(pg, msg, pc, &leaf, &ev, err);
		free(ev.numbers_json);
		json_decref(data);
	}
	PQclear(res);
	return rc;
}
