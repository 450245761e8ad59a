/*
 * Porting order actions (docs/PORTING.md): submit and cancel. Both check
 * here what the customer can fix (state 409, rules 422, nothing changes),
 * then publish a command for the porting worker on vox.cmd.porting keyed
 * by the order id, answered 202 with its operation once Kafka has it
 * (commands.c). A draft's cancel needs no carrier: it is done here, at
 * once, with its history row and its event in one transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "porting.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"

static bool status_is(const PGresult *order, const char *status)
{
	return strcmp(PQgetvalue(order, 0, PC_STATUS), status) == 0;
}

static bool missing(vox_http_req_t *req, const char *field, const char *why)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "%s is needed to submit: %s", field, why);
	return porting_rule(req, "missing_field", msg,
	                    json_pack("{s:s}", "field", field));
}

/* What the losing carrier needs, apart from the PIN (which depends on
 * the numbers' check). */
static bool fields_complete(vox_http_req_t *req, const PGresult *order)
{
	static const char *const address[] = {"street", "locality",
	                                      "administrative_area",
	                                      "postal_code", "country"};
	json_t *addr;

	if (PQgetisnull(order, 0, PC_NAME))
		return missing(req, "end_user.authorized_name",
		               "the name on the account at the losing carrier");
	addr = PQgetisnull(order, 0, PC_ADDRESS)
	               ? NULL
	               : json_loads(PQgetvalue(order, 0, PC_ADDRESS), 0, NULL);
	for (size_t i = 0; i < 5; i++)
		if (vox_json_str(addr, address[i]) == NULL) {
			char field[64];

			json_decref(addr);
			snprintf(field, sizeof(field),
			         "end_user.service_address.%s", address[i]);
			return missing(req, field,
			               "the service address as the losing "
			               "carrier has it");
		}
	json_decref(addr);
	if (PQgetisnull(order, 0, PC_ACCOUNT_LAST2))
		return missing(req, "end_user.account_number",
		               "the account number at the losing carrier");
	if (PQgetisnull(order, 0, PC_REQUESTED_FOC))
		return missing(req, "requested_foc_date",
		               "see allowed-foc-windows");
	if (PQgetisnull(order, 0, PC_LOA))
		return missing(req, "documents.loa",
		               "a signed letter of authorization");
	if (PQgetisnull(order, 0, PC_INVOICE))
		return missing(req, "documents.invoice",
		               "a recent invoice of the losing carrier");
	return true;
}

static bool foc_still_ok(vox_http_req_t *req, const PGresult *order)
{
	vox_date_t today = porting_today(), foc, first, last;
	const char *text = PQgetvalue(order, 0, PC_REQUESTED_FOC);
	const char *rule;
	char a[11], b[11], msg[200];

	if (vox_date_parse(text, &foc) != 0 ||
	    (rule = vox_porting_foc_rule(&today, &foc)) == NULL)
		return true;
	vox_porting_foc_range(&today, &first, &last);
	vox_date_format(&first, a);
	vox_date_format(&last, b);
	snprintf(msg, sizeof(msg),
	         "requested_foc_date %s is no longer allowed: pick a business "
	         "day from %s to %s and PATCH it",
	         text, a, b);
	return porting_rule(req, rule, msg,
	                    json_pack("{s:s, s:s, s:s, s:s}", "field",
	                              "requested_foc_date", "earliest", a,
	                              "latest", b, "requested_foc_date", text));
}

/* The documents are still the account's. */
static bool documents_still_owned(vox_http_req_t *req, ingress_req_t *ir,
                                  const PGresult *order)
{
	const char *params[] = {PQgetvalue(order, 0, PC_LOA),
	                        PQgetvalue(order, 0, PC_INVOICE),
	                        ir->who.account_id};
	PGresult *res = ingress_query(
	        ir->in, req, "ingress_porting_docs",
	        "SELECT count(*) FROM documents WHERE id IN ($1::uuid, "
	        "$2::uuid) AND account_id = $3",
	        3, params);
	long want = strcmp(params[0], params[1]) == 0 ? 1 : 2;
	bool ok;

	if (res == NULL)
		return false;
	ok = strtol(PQgetvalue(res, 0, 0), NULL, 10) == want;
	PQclear(res);
	if (!ok)
		return missing(req, "documents",
		               "a document of this order is not there any "
		               "more: upload it again and PATCH the order");
	return true;
}

/* The numbers a submit sends: a leaf's own; a parent's, those of its
 * children in exception (the others are at the carrier, or ported: a
 * ported number is ours now and would fail the checks). A JSON array of
 * E.164 strings. */
static json_t *numbers_to_submit(const PGresult *order)
{
	json_t *children =
	        json_loads(PQgetvalue(order, 0, PC_CHILDREN), 0, NULL);
	json_t *own = json_loads(PQgetvalue(order, 0, PC_NUMBERS), 0, NULL);
	json_t *out = json_array(), *item;
	size_t i;

	if (json_array_size(children) == 0) {
		json_array_foreach(own, i, item) json_array_append(
		        out, json_object_get(item, "phone_number"));
	} else {
		json_array_foreach(children, i, item)
		{
			const char *status = vox_json_str(item, "status");

			if (status != NULL && strcmp(status, "exception") == 0)
				json_array_extend(
				        out,
				        json_object_get(item, "phone_numbers"));
		}
	}
	json_decref(children);
	json_decref(own);
	return out;
}

/* The numbers checked again, and the PIN when their losing carrier needs
 * one. */
static bool numbers_still_ok(vox_http_req_t *req, ingress_req_t *ir,
                             const PGresult *order)
{
	json_t *numbers = numbers_to_submit(order);
	size_t n = json_array_size(numbers);
	const char **e164s = calloc(n + 1, sizeof(*e164s));
	vox_carrier_portability_t *checks = calloc(n + 1, sizeof(*checks));
	bool ok = false, pin_required = false;

	if (e164s == NULL || checks == NULL) {
		ingress_error(req, 500, "internal", "out of memory", NULL);
		goto out;
	}
	if (n == 0) {
		missing(req, "phone_numbers",
		        "an order ports 1 to 1000 numbers");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		e164s[i] = json_string_value(json_array_get(numbers, i));
	if (!porting_numbers_ok(req, ir->in, PQgetvalue(order, 0, PC_ID), e164s,
	                        (int)n, checks))
		goto out;
	for (size_t i = 0; i < n; i++)
		pin_required = pin_required || checks[i].pin_required;
	ok = !pin_required || !PQgetisnull(order, 0, PC_PIN_LAST2) ||
	     missing(req, "end_user.pin",
	             "the losing carrier of these numbers needs the "
	             "port-out PIN");
out:
	free(e164s);
	free(checks);
	json_decref(numbers);
	return ok;
}

void ingress_porting_submit(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	PGresult *order;
	json_t *body;

	if (ir == NULL || (body = ingress_body(req, allowed, true)) == NULL)
		return;
	json_decref(body);
	/* The key first: a retry after the worker acted replays the 202
	 * instead of meeting the new state. */
	if (!idem_begin(req, ir) ||
	    (order = porting_lookup(req, ir, id)) == NULL)
		return;
	if (!status_is(order, "draft") && !status_is(order, "exception")) {
		ingress_conflict(req, "porting order",
		                 PQgetvalue(order, 0, PC_STATUS));
	} else if (porting_expired(req, order)) {
		/* answered */
	} else if (fields_complete(req, order) && foc_still_ok(req, order) &&
	           documents_still_owned(req, ir, order) &&
	           numbers_still_ok(req, ir, order)) {
		ir->kind = "porting.submit";
		ingress_command(
		        req, ir, PORTING_TOPIC,
		        "vox.porting_order.submit_requested", id,
		        json_pack("{s:s, s:s, s:I}", "order_id", id,
		                  "account_id", ir->who.account_id, "version",
		                  (json_int_t)strtol(
		                          PQgetvalue(order, 0, PC_VERSION),
		                          NULL, 10)));
	}
	PQclear(order);
}

/* ---------------------------------------------------------------- cancel */

struct draft_cancel {
	const char *id, *account;
	bool state_changed;
	PGresult *row;
};

/* draft -> cancelled: the order, its numbers, a history row and the
 * porting_order.cancelled event, together. */
static int draft_cancel_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct draft_cancel *c = arg;
	const char *params[] = {c->id, c->account};
	json_t *data;
	int rc;

	rc = vox_pg_execp(pg, "ingress_porting_cancel_draft",
	                  "UPDATE porting_orders SET status = 'cancelled', "
	                  "cancel_reason = 'cancelled', cancelled_at = now() "
	                  "WHERE id = $1 AND account_id = $2 AND status = "
	                  "'draft' RETURNING id",
	                  2, params, &c->row, err);
	if (rc != 0)
		return rc;
	if (PQntuples(c->row) == 0) {
		c->state_changed = true;
		return vox_error_set(err, VOX_ERR_CONFLICT, false,
		                     "not a draft any more");
	}
	PQclear(c->row);
	c->row = NULL;
	rc = vox_pg_execp(pg, "ingress_porting_cancel_numbers",
	                  "UPDATE porting_order_numbers SET status = "
	                  "'cancelled', updated_at = now() WHERE order_id = $1",
	                  1, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "ingress_porting_cancel_history",
		        "INSERT INTO porting_order_events (order_id, "
		        "from_status, to_status, source, reason) VALUES "
		        "($1, 'draft', 'cancelled', 'api', "
		        "'cancelled')",
		        1, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(pg, "ingress_porting_reread",
		                  "SELECT " PORTING_ORDER_COLUMNS
		                  "FROM porting_orders o WHERE o.id = $1",
		                  1, params, &c->row, err);
	if (rc != 0)
		return rc;
	json_t *numbers = json_array();
	json_t *rows = json_loads(PQgetvalue(c->row, 0, PC_NUMBERS), 0, NULL);
	json_t *row;
	size_t i;

	/* the shape of the worker's porting_order.* data (workers/porting/
	 * order.c, schemas/events/porting_order.cancelled.schema.json) */
	json_array_foreach(rows, i, row) json_array_append_new(
	        numbers,
	        json_pack("{s:O, s:O, s:O}", "phone_number",
	                  json_object_get(row, "phone_number"), "status",
	                  json_object_get(row, "status"), "number_id",
	                  json_object_get(row, "number_id")
	                          ? json_object_get(row, "number_id")
	                          : json_null()));
	json_decref(rows);
	data = json_pack(
	        "{s:s, s:n, s:s, s:s, s:s, s:o, s:s?, s:n, s:[], s:s, s:s?}",
	        "order_id", c->id, "parent_id", "account_id", c->account,
	        "status", "cancelled", "previous_status", "draft",
	        "phone_numbers", numbers, "losing_carrier",
	        PQgetisnull(c->row, 0, PC_LOSING)
	                ? NULL
	                : PQgetvalue(c->row, 0, PC_LOSING),
	        "foc_date", "exceptions", "cancel_reason", "cancelled",
	        "customer_reference",
	        PQgetisnull(c->row, 0, PC_REFERENCE)
	                ? NULL
	                : PQgetvalue(c->row, 0, PC_REFERENCE));
	return vox_event_emit(pg, "porting_order.cancelled", c->id, c->id,
	                      c->account, NULL, data, err);
}

static void cancel_draft(vox_http_req_t *req, ingress_req_t *ir, const char *id)
{
	struct draft_cancel c = {.id = id, .account = ir->who.account_id};
	vox_error_t err = {0};
	vox_pg_t *pg = ingress_pg(ir->in, req);
	int rc;

	if (pg == NULL)
		return;
	rc = vox_pg_transaction(pg, draft_cancel_tx, &c, &err);
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (rc == 0)
		ingress_reply(req, 200, porting_order_json(c.row, 0));
	else if (c.state_changed)
		ingress_error(req, 409, "invalid_state",
		              "the porting order is not a draft any more: read "
		              "it again",
		              NULL);
	else
		ingress_error(req, 503, "database_unavailable", err.message,
		              NULL);
	PQclear(c.row);
}

void ingress_porting_cancel(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	const char *status;
	PGresult *order;
	json_t *body;

	if (ir == NULL || (body = ingress_body(req, allowed, true)) == NULL)
		return;
	json_decref(body);
	if (!idem_begin(req, ir) ||
	    (order = porting_lookup(req, ir, id)) == NULL)
		return;
	status = PQgetvalue(order, 0, PC_STATUS);
	if (strcmp(status, "draft") == 0) {
		cancel_draft(req, ir, id);
	} else if (!vox_porting_move_allowed(status, "cancel-pending")) {
		ingress_conflict(req, "porting order", status);
	} else if (strcmp(PQgetvalue(order, 0, PC_WITHIN_48H), "t") == 0) {
		porting_rule(req, "cancel_too_late",
		             "the port is confirmed for less than 48 hours "
		             "from now (foc_date): it can no longer be "
		             "cancelled",
		             json_pack("{s:o}", "foc_date",
		                       PQgetisnull(order, 0, PC_FOC)
		                               ? json_null()
		                               : json_string(PQgetvalue(
		                                         order, 0, PC_FOC))));
	} else {
		ir->kind = "porting.cancel";
		ingress_command(req, ir, PORTING_TOPIC,
		                "vox.porting_order.cancel_requested", id,
		                json_pack("{s:s, s:s}", "order_id", id,
		                          "account_id", ir->who.account_id));
	}
	PQclear(order);
}
