/*
 * Payment methods (docs/BILLING.md "Payments"): tokens of the payment
 * gateway (pm_..., made by its client-side library from card details we
 * never see). POST stores the token `pending` and publishes
 * vox.payment_method.attach_requested for the invoicing worker, which
 * reads the card's brand, last4 and expiry at the gateway and makes it
 * active (or failed); answered 202 with the operation. The list never
 * shows the token. DELETE is soft (deleted_at), make-default is written
 * here, synchronously.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "vox_json.h"

#define TOKEN_MAX 120

#define METHOD_COLUMNS                                                         \
	"id, status, brand, last4, exp_month, exp_year, is_default, "          \
	"failure_reason, vox_iso(created_at), vox_iso(updated_at) "

static json_t *text_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	               ? json_null()
	               : json_string(PQgetvalue(res, row, col));
}

static json_t *int_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	               ? json_null()
	               : json_integer(
	                         strtol(PQgetvalue(res, row, col), NULL, 10));
}

static json_t *method_json(const PGresult *res, int i)
{
	return json_pack(
	        "{s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:o, s:s, s:s}", "id",
	        PQgetvalue(res, i, 0), "status", PQgetvalue(res, i, 1), "brand",
	        text_or_null(res, i, 2), "last4", text_or_null(res, i, 3),
	        "exp_month", int_or_null(res, i, 4), "exp_year",
	        int_or_null(res, i, 5), "default",
	        strcmp(PQgetvalue(res, i, 6), "t") == 0, "failure_reason",
	        text_or_null(res, i, 7), "created_at", PQgetvalue(res, i, 8),
	        "updated_at", PQgetvalue(res, i, 9));
}

static void method_not_found(vox_http_req_t *req)
{
	ingress_error(req, 404, "payment_method_not_found",
	              "no payment method has this id", NULL);
}

/* pm_ then [A-Za-z0-9_], 1..120 characters in all. */
static bool token_ok(const char *t)
{
	size_t n = t ? strlen(t) : 0;

	if (n < 4 || n > TOKEN_MAX || strncmp(t, "pm_", 3) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((t[i] >= 'A' && t[i] <= 'Z') ||
		      (t[i] >= 'a' && t[i] <= 'z') ||
		      (t[i] >= '0' && t[i] <= '9') || t[i] == '_'))
			return false;
	return true;
}

void ingress_payment_method_create(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"token", "default", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const json_t *def;
	const char *token;
	PGresult *res = NULL;
	json_t *body;

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	token = vox_json_str(body, "token");
	def = json_object_get(body, "default");
	if (!token_ok(token)) {
		ingress_error(req, 400, "invalid_body",
		              "token must be the payment gateway's token: pm_ "
		              "then letters, digits or _, 4 to 120 characters",
		              json_pack("{s:s}", "field", "token"));
		goto out;
	}
	if (def != NULL && !json_is_boolean(def)) {
		ingress_error(req, 400, "invalid_body",
		              "default must be true or false",
		              json_pack("{s:s}", "field", "default"));
		goto out;
	}
	if (!idem_begin(req, ir))
		goto out;
	const char *params[] = {ir->who.account_id, token};
	/* A token already attached is refused, except this account's own
	 * still pending one: a retry after the bus refused the command
	 * publishes it again. */
	res = ingress_query(
	        ir->in, req, "ingress_payment_method_insert",
	        "WITH ins AS (INSERT INTO payment_methods (account_id, "
	        "gateway, gateway_token, status) VALUES ($1, 'sandbox', $2, "
	        "'pending') ON CONFLICT (gateway, gateway_token) DO NOTHING "
	        "RETURNING id) SELECT id FROM ins UNION ALL SELECT id FROM "
	        "payment_methods WHERE gateway = 'sandbox' AND gateway_token = "
	        "$2 AND account_id = $1 AND status = 'pending' AND deleted_at "
	        "IS NULL AND NOT EXISTS (SELECT 1 FROM ins)",
	        2, params);
	if (res == NULL)
		goto out;
	if (PQntuples(res) == 0) {
		ingress_error(req, 409, "payment_method_exists",
		              "this token is already attached: ask the gateway "
		              "for a new one",
		              NULL);
		goto out;
	}
	ir->kind = "payment_method.attach";
	ingress_command(
	        req, ir, BILLING_TOPIC, "vox.payment_method.attach_requested",
	        ir->who.account_id,
	        json_pack("{s:s, s:s, s:b}", "account_id", ir->who.account_id,
	                  "payment_method_id", PQgetvalue(res, 0, 0), "default",
	                  json_is_true(def)));
out:
	PQclear(res);
	json_decref(body);
}

void ingress_payment_method_list(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *cursor;
	char limit[16];
	PGresult *res;

	if (ir == NULL ||
	    !ingress_page_args(req, limit, sizeof(limit), &cursor))
		return;
	const char *params[] = {ir->who.account_id, cursor, limit};
	res = ingress_query(
	        ir->in, req, "ingress_payment_method_list",
	        "SELECT " METHOD_COLUMNS "FROM payment_methods m WHERE "
	        "account_id = $1 AND deleted_at IS NULL AND ($2::uuid IS NULL "
	        "OR (m.created_at, m.id) < (SELECT c.created_at, c.id FROM "
	        "payment_methods c WHERE c.id = $2::uuid AND c.account_id = "
	        "$1)) ORDER BY created_at DESC, id DESC LIMIT $3::int",
	        3, params);
	if (res == NULL)
		return;
	vox_http_reply_json(
	        req, 200,
	        ingress_page(res, strtol(limit, NULL, 10) - 1, method_json));
	PQclear(res);
}

void ingress_payment_method_delete(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	PGresult *res;

	if (ir == NULL)
		return;
	if (!vox_uuid_valid(id)) {
		method_not_found(req);
		return;
	}
	const char *params[] = {id, ir->who.account_id};
	/* The default may go too: the account then has none until one is
	 * made default (the worker makes the next attached one default). */
	res = ingress_query(ir->in, req, "ingress_payment_method_delete",
	                    "UPDATE payment_methods SET deleted_at = now(), "
	                    "is_default = false WHERE id = $1 AND account_id = "
	                    "$2 AND deleted_at IS NULL RETURNING id",
	                    2, params);
	if (res == NULL)
		return;
	if (PQntuples(res) == 0)
		method_not_found(req);
	else
		vox_http_reply(req, 204, NULL, "", 0);
	PQclear(res);
}

struct make_default {
	const char *id, *account;
	PGresult *row;
	bool missing, not_active;
	char status[16];
};

static int make_default_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct make_default *m = arg;
	const char *params[] = {m->id, m->account};
	PGresult *res = NULL;
	int rc;

	/* Locks the account's live methods: two make-defaults in a row
	 * end with the last one's, never with two defaults. */
	rc = vox_pg_execp(pg, "ingress_payment_method_lock",
	                  "SELECT id, status FROM payment_methods WHERE "
	                  "account_id = $1 AND deleted_at IS NULL ORDER BY id "
	                  "FOR UPDATE",
	                  1, params + 1, &res, err);
	if (rc != 0)
		return rc;
	for (int i = 0; i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 0), m->id) == 0)
			snprintf(m->status, sizeof(m->status), "%s",
			         PQgetvalue(res, i, 1));
	PQclear(res);
	if (m->status[0] == '\0') {
		m->missing = true;
		return vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                     "no such payment method");
	}
	if (strcmp(m->status, "active") != 0) {
		m->not_active = true;
		return vox_error_set(err, VOX_ERR_CONFLICT, false,
		                     "not active");
	}
	rc = vox_pg_execp(pg, "ingress_payment_method_undefault",
	                  "UPDATE payment_methods SET is_default = false WHERE "
	                  "account_id = $2 AND is_default AND id <> $1 AND "
	                  "deleted_at IS NULL",
	                  2, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "ingress_payment_method_default",
		        "UPDATE payment_methods SET is_default = true "
		        "WHERE id = $1 AND account_id = $2 "
		        "RETURNING " METHOD_COLUMNS,
		        2, params, &m->row, err);
	return rc;
}

void ingress_payment_method_default(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	struct make_default m = {0};
	vox_error_t err = {0};
	json_t *body;
	vox_pg_t *pg;
	int rc;

	if (ir == NULL || (body = ingress_body(req, allowed, true)) == NULL)
		return;
	json_decref(body);
	if (!vox_uuid_valid(id)) {
		method_not_found(req);
		return;
	}
	if (!idem_begin(req, ir) || (pg = ingress_pg(ir->in, req)) == NULL)
		return;
	m.id = id;
	m.account = ir->who.account_id;
	rc = vox_pg_transaction(pg, make_default_tx, &m, &err);
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (rc == 0)
		vox_http_reply_json(req, 200, method_json(m.row, 0));
	else if (m.missing)
		method_not_found(req);
	else if (m.not_active)
		ingress_conflict(req, "payment method", m.status);
	else
		ingress_error(req, 503, "database_unavailable", err.message,
		              NULL);
	PQclear(m.row);
}
