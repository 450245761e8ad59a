/*
 * Reservations, orders and number lifecycle commands: checked here against
 * the current state (404 for what is not the caller's, 409 with the current
 * state for an illegal transition), then published for the provisioning
 * worker, keyed by the E.164 number so commands on one number stay ordered.
 * The worker checks again: the state may change between here and there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "ingress.h"
#include "vox_json.h"
#include "vox_phone.h"

#define PROVISIONING "vox.cmd.provisioning"
#define MAX_NUMBERS  10

static void conflict(vox_http_req_t *req, const char *what, const char *status)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "the %s is %s: that change is not allowed",
	         what, status);
	ingress_error(req, 409, "invalid_state", msg,
	              json_pack("{s:s}", "current_status", status));
}

static void not_found(vox_http_req_t *req, const char *code, const char *what)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "no %s has this id", what);
	ingress_error(req, 404, code, msg, NULL);
}

/* First row of a scoped lookup; NULL after answering 404/503. */
static PGresult *lookup(vox_http_req_t *req, ingress_req_t *ir,
                        const char *name, const char *sql, const char *id,
                        const char *nf_code, const char *what)
{
	const char *params[] = {id, ir->who.account_id};
	PGresult *res = NULL;
	vox_error_t err;
	vox_pg_t *pg;
	int rc;

	if (id == NULL || !vox_uuid_valid(id)) {
		not_found(req, nf_code, what);
		return NULL;
	}
	pg = ingress_pg(ir->in, req);
	if (pg == NULL)
		return NULL;
	rc = vox_pg_execp(pg, name, sql, 2, params, &res, &err);
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (rc != 0) {
		ingress_error(req, 503, "database_unavailable", err.message,
		              NULL);
		return NULL;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		not_found(req, nf_code, what);
		return NULL;
	}
	return res;
}

PGresult *ingress_lookup(vox_http_req_t *req, ingress_req_t *ir,
                         const char *name, const char *sql, const char *id,
                         const char *nf_code, const char *what)
{
	return lookup(req, ir, name, sql, id, nf_code, what);
}

void ingress_conflict(vox_http_req_t *req, const char *what, const char *status)
{
	conflict(req, what, status);
}

void ingress_reservation_create(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"phone_numbers", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	char rid[VOX_UUID_STRLEN], msg[400];
	json_t *body, *numbers, *value, *list;
	size_t i;

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	numbers = json_object_get(body, "phone_numbers");
	if (!json_is_array(numbers) || json_array_size(numbers) == 0 ||
	    json_array_size(numbers) > MAX_NUMBERS) {
		snprintf(
		        msg, sizeof(msg),
		        "phone_numbers must be a list of 1 to %d E.164 numbers",
		        MAX_NUMBERS);
		vox_http_reply_error(
		        req, 400, "invalid_body", msg,
		        json_pack("{s:s}", "field", "phone_numbers"));
		goto out;
	}
	list = json_array();
	json_array_foreach(numbers, i, value)
	{
		vox_phone_t p;
		vox_error_t err;

		if (!json_is_string(value) ||
		    vox_phone_parse(json_string_value(value), NULL, &p, &err) !=
		            0) {
			snprintf(msg, sizeof(msg),
			         "phone_numbers[%zu] is not a valid E.164 "
			         "number%s%s",
			         i, json_is_string(value) ? ": " : "",
			         json_is_string(value) ? err.message : "");
			vox_http_reply_error(req, 400, "invalid_phone_number",
			                     msg,
			                     json_pack("{s:s, s:I}", "field",
			                               "phone_numbers", "index",
			                               (json_int_t)i));
			json_decref(list);
			goto out;
		}
		json_array_append_new(list, json_string(p.e164));
	}
	/* Before the key: a 403 stored for it would outlive the block. */
	if (billing_purchase_blocked(req, ir) || !idem_begin(req, ir)) {
		json_decref(list);
		goto out;
	}
	vox_uuid7(rid);
	ir->kind = "reservation.create";
	ingress_command(req, ir, PROVISIONING, "vox.reservation.requested",
	                json_string_value(json_array_get(list, 0)),
	                json_pack("{s:s, s:o}", "reservation_id", rid,
	                          "phone_numbers", list));
out:
	json_decref(body);
}

static const char reservation_sql[] =
        "SELECT e164, status, vox_iso(expires_at), vox_iso(created_at) "
        "FROM reservations WHERE group_id = $1 AND account_id = $2 ORDER "
        "BY e164";

void ingress_reservation_get(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	const char *status = "expired";
	PGresult *res;
	json_t *nums;

	if (ir == NULL ||
	    (res = lookup(req, ir, "ingress_reservation_get", reservation_sql,
	                  id, "reservation_not_found", "reservation")) == NULL)
		return;
	nums = json_array();
	for (int i = 0; i < PQntuples(res); i++) {
		const char *st = PQgetvalue(res, i, 1);

		if (strcmp(st, "active") == 0 || strcmp(status, "active") != 0)
			status = strcmp(st, "active") == 0 ? "active" : st;
		json_array_append_new(
		        nums, json_pack("{s:s, s:s}", "phone_number",
		                        PQgetvalue(res, i, 0), "status", st));
	}
	vox_http_reply_json(req, 200,
	                    json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", id,
	                              "status", status, "expires_at",
	                              PQgetvalue(res, 0, 2), "created_at",
	                              PQgetvalue(res, 0, 3), "phone_numbers",
	                              nums));
	PQclear(res);
}

/* The reservation must exist (404) and hold numbers (409); returns its
 * first number (the message key), malloc'd, or NULL after answering. */
static char *reservation_active(vox_http_req_t *req, ingress_req_t *ir,
                                const char *id)
{
	PGresult *res =
	        lookup(req, ir, "ingress_reservation_check", reservation_sql,
	               id, "reservation_not_found", "reservation");
	char *key = NULL;

	if (res == NULL)
		return NULL;
	for (int i = 0; i < PQntuples(res) && key == NULL; i++)
		if (strcmp(PQgetvalue(res, i, 1), "active") == 0)
			key = strdup(PQgetvalue(res, i, 0));
	if (key == NULL)
		conflict(req, "reservation", PQgetvalue(res, 0, 1));
	PQclear(res);
	return key;
}

void ingress_reservation_extend(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	json_t *body;
	char *key;

	if (ir == NULL || (body = ingress_body(req, allowed, true)) == NULL)
		return;
	json_decref(body);
	/* The key first: a retry after the worker acted replays the 202
	 * instead of meeting the new state. */
	if (!idem_begin(req, ir) ||
	    (key = reservation_active(req, ir, id)) == NULL)
		return;
	ir->kind = "reservation.extend";
	ingress_command(req, ir, PROVISIONING,
	                "vox.reservation.extend_requested", key,
	                json_pack("{s:s}", "reservation_id", id));
	free(key);
}

void ingress_order_create(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"reservation_id", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	char oid[VOX_UUID_STRLEN];
	const char *rid;
	json_t *body;
	char *key;

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	rid = vox_json_str(body, "reservation_id");
	if (rid == NULL || !vox_uuid_valid(rid)) {
		vox_http_reply_error(
		        req, 400, "invalid_body",
		        "reservation_id must be the id of a "
		        "reservation",
		        json_pack("{s:s}", "field", "reservation_id"));
		goto out;
	}
	if (billing_purchase_blocked(req, ir) || !idem_begin(req, ir) ||
	    (key = reservation_active(req, ir, rid)) == NULL)
		goto out;
	vox_uuid7(oid);
	ir->kind = "order.create";
	ingress_command(req, ir, PROVISIONING, "vox.order.requested", key,
	                json_pack("{s:s, s:s}", "order_id", oid,
	                          "reservation_id", rid));
	free(key);
out:
	json_decref(body);
}

void ingress_order_get(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	PGresult *res;
	json_t *items;

	if (ir == NULL ||
	    (res = lookup(req, ir, "ingress_order_get",
	                  "SELECT o.status, vox_iso(o.created_at), "
	                  "vox_iso(o.completed_at), o.failure_reason, i.e164, "
	                  "i.status, i.failure_reason, i.setup_fee_micros, "
	                  "i.monthly_rate_micros, o.currency FROM orders o "
	                  "LEFT JOIN order_items i ON i.order_id = o.id WHERE "
	                  "o.id = $1 AND o.account_id = $2 ORDER BY i.e164",
	                  id, "order_not_found", "order")) == NULL)
		return;
	items = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		if (!PQgetisnull(res, i, 4))
			json_array_append_new(
			        items,
			        json_pack("{s:s, s:s, s:s?, s:I, s:I}",
			                  "phone_number", PQgetvalue(res, i, 4),
			                  "status", PQgetvalue(res, i, 5),
			                  "reason",
			                  PQgetisnull(res, i, 6)
			                          ? NULL
			                          : PQgetvalue(res, i, 6),
			                  "setup_micros",
			                  (json_int_t)strtoll(
			                          PQgetvalue(res, i, 7), NULL,
			                          10),
			                  "monthly_micros",
			                  (json_int_t)strtoll(
			                          PQgetvalue(res, i, 8), NULL,
			                          10)));
	vox_http_reply_json(
	        req, 200,
	        json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s, s:o}", "id", id,
	                  "status", PQgetvalue(res, 0, 0), "created_at",
	                  PQgetvalue(res, 0, 1), "completed_at",
	                  PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2),
	                  "failure_reason",
	                  PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3),
	                  "currency", PQgetvalue(res, 0, 9), "phone_numbers",
	                  items));
	PQclear(res);
}

static const char owned_sql[] =
        "SELECT n.id, n.e164, n.country, n.area_code, n.city, n.region, "
        "n.number_type, array_to_json(n.features)::text, "
        "n.setup_fee_micros, n.monthly_rate_micros, n.currency, n.status, "
        "vox_iso(n.purchased_at), vox_iso(n.activated_at), "
        "c.call_forwarding::text FROM numbers n LEFT JOIN "
        "number_configurations c ON c.number_id = n.id WHERE n.id = $1 AND "
        "n.account_id = $2";

/* A number the caller owns: the search's fields (ingress_number_json),
 * its status and dates, and its call forwarding (column 14, when
 * selected). */
static json_t *owned_row(const PGresult *res, int i)
{
	json_t *n = ingress_number_json(res, i);
	static const int text_cols[] = {11, 12, 13};
	static const char *const text_names[] = {"status", "purchased_at",
	                                         "activated_at"};

	for (size_t k = 0; k < 3; k++)
		json_object_set_new(n, text_names[k],
		                    PQgetisnull(res, i, text_cols[k])
		                            ? json_null()
		                            : json_string(PQgetvalue(
		                                      res, i, text_cols[k])));
	json_object_set_new(
	        n, "call_forwarding",
	        PQnfields(res) > 14 && !PQgetisnull(res, i, 14)
	                ? json_loads(PQgetvalue(res, i, 14), 0, NULL)
	                : json_null());
	return n;
}

void ingress_number_get(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	PGresult *res;

	if (ir == NULL || (res = lookup(req, ir, "ingress_number_get",
	                                owned_sql, vox_http_param(req, "id"),
	                                "number_not_found", "number")) == NULL)
		return;
	vox_http_reply_json(req, 200, owned_row(res, 0));
	PQclear(res);
}

void ingress_number_list(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *status = vox_http_query(req, "status");
	const char *cursor = vox_http_query(req, "cursor");
	const char *limit_arg = vox_http_query(req, "limit");
	char limit[16], *end;
	long n = 20;
	PGresult *res;
	vox_error_t err;
	vox_pg_t *pg;
	json_t *data;
	int rc;

	if (ir == NULL)
		return;
	if (limit_arg != NULL) {
		n = strtol(limit_arg, &end, 10);
		if (*limit_arg == '\0' || *end != '\0' || n < 1 || n > 100) {
			vox_http_reply_error(
			        req, 400, "invalid_parameter",
			        "limit must be an integer 1..100",
			        json_pack("{s:s}", "parameter", "limit"));
			return;
		}
	}
	if (status != NULL && strcmp(status, "purchased") != 0 &&
	    strcmp(status, "active") != 0 && strcmp(status, "suspended") != 0 &&
	    strcmp(status, "porting") != 0) {
		vox_http_reply_error(
		        req, 400, "invalid_parameter",
		        "status must be purchased, active, suspended "
		        "or porting",
		        json_pack("{s:s}", "parameter", "status"));
		return;
	}
	if (cursor != NULL && !vox_phone_is_e164(cursor)) {
		vox_http_reply_error(req, 400, "invalid_parameter",
		                     "cursor must be a next_cursor value",
		                     json_pack("{s:s}", "parameter", "cursor"));
		return;
	}
	snprintf(limit, sizeof(limit), "%ld", n + 1);
	const char *params[] = {ir->who.account_id, status, cursor, limit};
	pg = ingress_pg(ir->in, req);
	if (pg == NULL)
		return;
	rc = vox_pg_execp(
	        pg, "ingress_number_list",
	        "SELECT n.id, n.e164, n.country, n.area_code, n.city, "
	        "n.region, n.number_type, array_to_json(n.features)::text, "
	        "n.setup_fee_micros, n.monthly_rate_micros, n.currency, "
	        "n.status, vox_iso(n.purchased_at), vox_iso(n.activated_at) "
	        "FROM numbers n WHERE n.account_id = $1 AND ($2::text IS NULL "
	        "OR n.status = $2) AND ($3::text IS NULL OR n.e164 > $3) ORDER "
	        "BY n.e164 LIMIT $4::int",
	        4, params, &res, &err);
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (rc != 0) {
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
		return;
	}
	data = json_array();
	for (int i = 0; i < PQntuples(res) && i < n; i++)
		json_array_append_new(data, owned_row(res, i));
	vox_http_reply_json(
	        req, 200,
	        json_pack("{s:o, s:o}", "data", data, "next_cursor",
	                  PQntuples(res) > n
	                          ? json_string(PQgetvalue(res, (int)n - 1, 1))
	                          : json_null()));
	PQclear(res);
}

/* Checks the caller's number is in one of the from states, then publishes
 * type with data (stolen) keyed by its E.164. */
static void number_command(vox_http_req_t *req, ingress_req_t *ir,
                           const char *kind, const char *type,
                           const char *const *from, json_t *data)
{
	const char *id = vox_http_param(req, "id");
	PGresult *res = NULL;
	bool allowed = false;

	if (idem_begin(req, ir))
		res = lookup(req, ir, "ingress_number_check", owned_sql, id,
		             "number_not_found", "number");
	if (res == NULL) {
		json_decref(data);
		return;
	}
	for (size_t i = 0; from[i] != NULL; i++)
		allowed =
		        allowed || strcmp(PQgetvalue(res, 0, 11), from[i]) == 0;
	if (!allowed) {
		conflict(req, "number", PQgetvalue(res, 0, 11));
	} else {
		json_object_set_new(data, "number_id", json_string(id));
		ir->kind = kind;
		ingress_command(req, ir, PROVISIONING, type,
		                PQgetvalue(res, 0, 1), data);
		data = NULL;
	}
	json_decref(data);
	PQclear(res);
}

void ingress_number_activate(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"forward_to", NULL};
	static const char *const from[] = {"purchased", "suspended", "active",
	                                   NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *to;
	vox_phone_t p;
	vox_error_t err;
	json_t *body;
	char msg[400];

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	to = vox_json_str(body, "forward_to");
	if (to == NULL || vox_phone_parse(to, NULL, &p, &err) != 0) {
		snprintf(msg, sizeof(msg),
		         "forward_to must be an E.164 number to forward calls "
		         "to%s%s",
		         to ? ": " : "", to ? err.message : "");
		vox_http_reply_error(req, 400, "invalid_phone_number", msg,
		                     json_pack("{s:s}", "field", "forward_to"));
		json_decref(body);
		return;
	}
	number_command(req, ir, "number.activate",
	               "vox.number.activate_requested", from,
	               json_pack("{s:s}", "forward_to", p.e164));
	json_decref(body);
}

void ingress_number_deactivate(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {NULL};
	static const char *const from[] = {"active", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	json_t *body;

	if (ir == NULL || (body = ingress_body(req, allowed, true)) == NULL)
		return;
	json_decref(body);
	number_command(req, ir, "number.deactivate",
	               "vox.number.deactivate_requested", from, json_object());
}

void ingress_number_release(vox_http_req_t *req, void *ctx)
{
	static const char *const from[] = {"purchased", "active", "suspended",
	                                   NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);

	if (ir == NULL)
		return;
	number_command(req, ir, "number.release",
	               "vox.number.release_requested", from, json_object());
}
