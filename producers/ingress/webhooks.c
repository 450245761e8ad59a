/*
 * Customer webhook endpoints (/v1/webhook-endpoints, docs/NOTIFICATIONS.md):
 * account configuration written synchronously, like API keys. The signing
 * secret (whsec_...) is answered once, at creation and at rotation, and
 * stored only sealed with the ingress's keyring, bound to its row (aad
 * "webhook_endpoints/<id>"): no keyring, no endpoint (503). Every URL goes
 * through the destination filter (vox_ssrf) here and again at delivery.
 * What happens to deliveries (test, attempts, recover, resend) is in
 * webhook_deliveries.c.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress.h"
#include "vox_crypto.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_ssrf.h"
#include "vox_whsig.h"

#define ENDPOINT_URL_MAX         2048
#define ENDPOINT_DESCRIPTION_MAX 500
#define ENDPOINT_EVENTS_MAX      50
#define ENDPOINTS_PER_ACCOUNT    20

/* The public event types an endpoint may subscribe to (NOTIFICATIONS.md
 * "What is notified"); "*" alone means all of them. */
static const char *const public_types[] = {
        "usage.trigger.fired", "number.purchased", "number.activated",
        "number.deactivated", "number.released", "number.configured",
        "reservation.expired", "endpoint.disabled", "webhook.test",
        /* porting orders (workers/porting) */
        "porting_order.submitted", "porting_order.in_process",
        "porting_order.exception", "porting_order.foc_date_confirmed",
        "porting_order.ported", "porting_order.cancel_pending",
        "porting_order.cancelled", "porting_order.expired",
        /* billing (workers/invoicing, docs/BILLING.md "Events") */
        "invoice.finalized", "invoice.paid", "invoice.payment_failed",
        "invoice.payment_reminder", "account.billing_suspended",
        "account.billing_reinstated", NULL};

/* ---------------------------------------------------------------- shared */

bool ingress_url_shape_ok(const char *url)
{
	size_t n = url ? strlen(url) : 0;

	if (n == 0 || n > ENDPOINT_URL_MAX ||
	    (strncmp(url, "http://", 7) != 0 &&
	     strncmp(url, "https://", 8) != 0))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 ||
		    (unsigned char)url[i] >= 0x7f)
			return false; /* percent-encoded, as URLs are sent */
	return true;
}

bool ingress_url_allowed(vox_http_req_t *req, ingress_t *in, const char *field,
                         const char *url)
{
	vox_ssrf_target_t target;
	vox_error_t err = {0};
	char msg[320];
	int rc;

	rc = vox_ssrf_check_url(in->ssrf, url, &target, &err);
	if (rc == 0 || rc == VOX_ERR_NOT_FOUND)
		return true; /* a name that does not resolve: checked again at
		              * every delivery */
	snprintf(msg, sizeof(msg), "%s is not an allowed destination: %s",
	         field, err.message);
	ingress_error(
	        req, 400, "invalid_body", msg,
	        json_pack("{s:s, s:s}", "field", field, "reason", err.message));
	return false;
}

/* A new secret and its sealed form for the row aad names: 0, or answered
 * (503 secret_storage_unavailable without a keyring, 500). */
int ingress_secret_make(vox_http_req_t *req, ingress_t *in, const char *aad,
                        char secret[VOX_WHSIG_SECRET_MAX], char **sealed_hex)
{
	vox_error_t err = {0};

	*sealed_hex = NULL;
	if (in->keyring == NULL) {
		ingress_error(req, 503, "secret_storage_unavailable",
		              "signing secrets are stored encrypted and this "
		              "server has no VOX_ENCRYPTION_KEY: a "
		              "configuration error on our side",
		              NULL);
		return -1;
	}
	if (vox_whsig_secret_new(secret) != 0 ||
	    vox_crypto_seal_hex(in->keyring, secret, aad, sealed_hex, &err) !=
	            0) {
		OPENSSL_cleanse(secret, VOX_WHSIG_SECRET_MAX);
		ingress_error(req, 500, "internal",
		              "cannot make a signing secret", NULL);
		return -1;
	}
	return 0;
}

void ingress_endpoint_aad(const char *id, char *out, size_t outlen)
{
	snprintf(out, outlen, "webhook_endpoints/%s", id);
}

/* ---------------------------------------------------------------- answers */

static json_t *text_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	               ? json_null()
	               : json_string(PQgetvalue(res, row, col));
}

json_t *ingress_endpoint_row(const PGresult *res, int i)
{
	json_t *events = json_loads(PQgetvalue(res, i, 2), 0, NULL);

	return json_pack(
	        "{s:o, s:o, s:o, s:o, s:b, s:o, s:o, s:o}", "id",
	        text_or_null(res, i, 0), "url", text_or_null(res, i, 1),
	        "events", events ? events : json_array(), "description",
	        text_or_null(res, i, 3), "enabled",
	        strcmp(PQgetvalue(res, i, 4), "t") == 0, "disabled_reason",
	        text_or_null(res, i, 5), "created_at", text_or_null(res, i, 6),
	        "updated_at", text_or_null(res, i, 7));
}

static void endpoint_not_found(vox_http_req_t *req)
{
	ingress_error(req, 404, "webhook_endpoint_not_found",
	              "no webhook endpoint has this id", NULL);
}

/* ---------------------------------------------------------------- input */

static bool bad_field(vox_http_req_t *req, const char *field, const char *why)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "%s %s", field, why);
	ingress_error(req, 400, "invalid_body", msg,
	              json_pack("{s:s}", "field", field));
	return false;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static bool public_type(const char *type)
{
	for (size_t i = 0; public_types[i] != NULL; i++)
		if (strcmp(type, public_types[i]) == 0)
			return true;
	return false;
}

/* events: 1..50 distinct public types, or ["*"] alone. */
static bool events_ok(vox_http_req_t *req, const json_t *events)
{
	size_t i, j, n = json_array_size(events);
	json_t *value;

	if (!json_is_array(events) || n == 0 || n > ENDPOINT_EVENTS_MAX)
		return bad_field(req, "events",
		                 "must be a list of 1 to 50 event types, or "
		                 "[\"*\"]");
	json_array_foreach(events, i, value)
	{
		const char *type = json_string_value(value);

		if (type == NULL)
			return bad_field(req, "events",
			                 "must hold strings (event types)");
		if (strcmp(type, "*") == 0 && n > 1)
			return bad_field(req, "events",
			                 "\"*\" (every type) must be alone");
		if (strcmp(type, "*") != 0 && !public_type(type)) {
			char msg[200];

			snprintf(msg, sizeof(msg),
			         "events: unknown event type \"%.60s\" (see "
			         "docs/NOTIFICATIONS.md)",
			         type);
			ingress_error(req, 400, "invalid_body", msg,
			              json_pack("{s:s}", "field", "events"));
			return false;
		}
		for (j = 0; j < i; j++)
			if (strcmp(type, json_string_value(json_array_get(
			                         events, j))) == 0)
				return bad_field(req, "events",
				                 "must not repeat a type");
	}
	return true;
}

/* The fields of a create (url required) or a PATCH; the URL is checked
 * against the destination filter. false after answering 400. */
static bool endpoint_fields_ok(vox_http_req_t *req, ingress_t *in, json_t *body,
                               bool create)
{
	json_t *url = json_object_get(body, "url");
	json_t *events = json_object_get(body, "events");
	json_t *description = json_object_get(body, "description");
	json_t *enabled = json_object_get(body, "enabled");
	const char *text = json_string_value(url);

	if ((create || url != NULL) && !ingress_url_shape_ok(text))
		return bad_field(req, "url",
		                 "must be an http:// or https:// URL of at "
		                 "most 2048 printable ASCII characters");
	if (events != NULL && !events_ok(req, events))
		return false;
	if (description != NULL && !json_is_null(description) &&
	    (!json_is_string(description) ||
	     utf8_chars(json_string_value(description)) >
	             ENDPOINT_DESCRIPTION_MAX))
		return bad_field(req, "description",
		                 "must be a string of at most 500 characters "
		                 "or null");
	if (enabled != NULL && !json_is_boolean(enabled))
		return bad_field(req, "enabled", "must be true or false");
	return text == NULL || ingress_url_allowed(req, in, "url", text);
}

/* The events as JSON text for ARRAY(SELECT json_array_elements_text()),
 * or NULL when absent (malloc'd). */
static char *events_text(const json_t *body, bool default_all)
{
	json_t *events = json_object_get(body, "events");
	json_t *all;
	char *text;

	if (events != NULL)
		return vox_json_dump(events);
	if (!default_all)
		return NULL;
	all = json_pack("[s]", "*");
	text = vox_json_dump(all);
	json_decref(all);
	return text;
}

/* ---------------------------------------------------------------- create */

#define ENDPOINT_COLUMNS                                                       \
	"id, url, array_to_json(events)::text, description, enabled, "         \
	"disabled_reason, vox_iso(created_at), vox_iso(updated_at)"

struct endpoint_create {
	const char *const *params; /* id, account, url, events, description,
	                            * enabled, sealed secret */
	PGresult *row;
	bool full;
};

/* At most ENDPOINTS_PER_ACCOUNT: the account row is locked, so two
 * creates cannot both see 19. */
static int endpoint_create_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct endpoint_create *c = arg;
	const char *const account[] = {c->params[1]};
	PGresult *res = NULL;
	long long n;
	int rc;

	/* Two statements: the count's snapshot is taken after the lock. */
	rc = vox_pg_execp(pg, "ingress_endpoint_lock",
	                  "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", 1,
	                  account, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "ingress_endpoint_count",
		        "SELECT count(*) FROM webhook_endpoints WHERE "
		        "account_id = $1 AND deleted_at IS NULL",
		        1, account, &res, err);
	if (rc != 0)
		return rc;
	n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (n >= ENDPOINTS_PER_ACCOUNT) {
		c->full = true;
		return vox_error_set(err, VOX_ERR_LIMIT, false, "limit");
	}
	return vox_pg_execp(
	        pg, "ingress_endpoint_create",
	        "INSERT INTO webhook_endpoints (id, account_id, url, events, "
	        "description, enabled, secret_enc) VALUES ($1, $2, $3, "
	        "ARRAY(SELECT json_array_elements_text($4::json)), $5, "
	        "$6::boolean, decode($7, 'hex')) RETURNING " ENDPOINT_COLUMNS,
	        7, c->params, &c->row, err);
}

/* Runs the create; answers 201 with the secret, 409 or 503. */
static void endpoint_insert(vox_http_req_t *req, ingress_req_t *ir,
                            struct endpoint_create *c, const char *secret)
{
	vox_error_t err = {0};
	vox_pg_t *pg = ingress_pg(ir->in, req);
	json_t *created;
	int rc;

	if (pg == NULL)
		return;
	rc = vox_pg_transaction(pg, endpoint_create_tx, c, &err);
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (c->full) {
		ingress_error(
		        req, 409, "limit_reached",
		        "an account has at most 20 webhook endpoints: "
		        "delete one first",
		        json_pack("{s:i}", "limit", ENDPOINTS_PER_ACCOUNT));
	} else if (rc != 0 || c->row == NULL) {
		ingress_error(req, 503, "database_unavailable", err.message,
		              NULL);
	} else {
		created = ingress_endpoint_row(c->row, 0);
		json_object_set_new(created, "secret", json_string(secret));
		ingress_reply(req, 201, created);
	}
	PQclear(c->row);
	c->row = NULL;
}

void ingress_endpoint_create(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"url", "events", "description",
	                                      "enabled", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	char id[VOX_UUID_STRLEN], aad[64], secret[VOX_WHSIG_SECRET_MAX];
	char *sealed = NULL, *events = NULL;
	struct endpoint_create c = {0};
	json_t *body, *enabled;

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	if (!endpoint_fields_ok(req, ir->in, body, true) ||
	    !idem_begin(req, ir))
		goto out;
	vox_uuid7(id); /* time-ordered: the list pages by id */
	ingress_endpoint_aad(id, aad, sizeof(aad));
	if (ingress_secret_make(req, ir->in, aad, secret, &sealed) != 0)
		goto out;
	events = events_text(body, true);
	enabled = json_object_get(body, "enabled");
	const char *params[] = {id,
	                        ir->who.account_id,
	                        vox_json_str(body, "url"),
	                        events,
	                        vox_json_str(body, "description"),
	                        json_is_false(enabled) ? "false" : "true",
	                        sealed};
	c.params = params;
	endpoint_insert(req, ir, &c, secret);
	OPENSSL_cleanse(secret, sizeof(secret));
out:
	free(sealed);
	free(events);
	json_decref(body);
}

/* ---------------------------------------------------------------- reads */

void ingress_endpoint_list(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	char limit[16];
	const char *cursor;
	PGresult *res;

	if (ir == NULL ||
	    !ingress_page_args(req, limit, sizeof(limit), &cursor))
		return;
	const char *params[] = {ir->who.account_id, cursor, limit};
	res = ingress_query(ir->in, req, "ingress_endpoint_list",
	                    "SELECT " ENDPOINT_COLUMNS " FROM "
	                    "webhook_endpoints WHERE account_id = $1 AND "
	                    "deleted_at IS NULL AND ($2::uuid IS NULL OR id "
	                    "< $2::uuid) ORDER BY id DESC LIMIT $3::int",
	                    3, params);
	if (res == NULL)
		return;
	vox_http_reply_json(req, 200,
	                    ingress_page(res, strtol(limit, NULL, 10) - 1,
	                                 ingress_endpoint_row));
	PQclear(res);
}

PGresult *ingress_endpoint_lookup(vox_http_req_t *req, ingress_req_t *ir)
{
	return ingress_lookup(req, ir, "ingress_endpoint_get",
	                      "SELECT " ENDPOINT_COLUMNS " FROM "
	                      "webhook_endpoints WHERE id = $1 AND "
	                      "account_id = $2 AND deleted_at IS NULL",
	                      vox_http_param(req, "id"),
	                      "webhook_endpoint_not_found", "webhook endpoint");
}

void ingress_endpoint_get(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	PGresult *res;

	if (ir == NULL || (res = ingress_endpoint_lookup(req, ir)) == NULL)
		return;
	vox_http_reply_json(req, 200, ingress_endpoint_row(res, 0));
	PQclear(res);
}

/* ---------------------------------------------------------------- writes */

void ingress_endpoint_update(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"url", "events", "description",
	                                      "enabled", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	json_t *body, *enabled;
	char *events = NULL;
	PGresult *res;

	if (ir == NULL)
		return;
	if (!vox_uuid_valid(id)) {
		endpoint_not_found(req);
		return;
	}
	if ((body = ingress_body(req, allowed, false)) == NULL)
		return;
	if (!endpoint_fields_ok(req, ir->in, body, false))
		goto out;
	events = events_text(body, false);
	enabled = json_object_get(body, "enabled");
	const char *params[] = {id,
	                        ir->who.account_id,
	                        vox_json_str(body, "url"),
	                        events,
	                        json_object_get(body, "description") ? "true"
	                                                             : "false",
	                        vox_json_str(body, "description"),
	                        enabled == NULL         ? NULL
	                        : json_is_true(enabled) ? "true"
	                                                : "false"};
	/* Enabling again clears what disabled it (the worker's 5 days of
	 * failures or a 410): the next delivery is a fresh start. */
	res = ingress_query(
	        ir->in, req, "ingress_endpoint_update",
	        "UPDATE webhook_endpoints SET url = coalesce($3, url), "
	        "events = CASE WHEN $4::json IS NULL THEN events ELSE "
	        "ARRAY(SELECT json_array_elements_text($4::json)) END, "
	        "description = CASE WHEN $5::boolean THEN $6 ELSE "
	        "description END, enabled = coalesce($7::boolean, enabled), "
	        "disabled_reason = CASE WHEN $7::boolean THEN NULL ELSE "
	        "disabled_reason END, failing_since = CASE WHEN $7::boolean "
	        "THEN NULL ELSE failing_since END, disabled_at = CASE WHEN "
	        "$7::boolean THEN NULL WHEN NOT $7::boolean THEN "
	        "coalesce(disabled_at, now()) ELSE disabled_at END WHERE id "
	        "= $1 AND account_id = $2 AND deleted_at IS NULL "
	        "RETURNING " ENDPOINT_COLUMNS,
	        7, params);
	if (res == NULL)
		goto out;
	if (PQntuples(res) == 0)
		endpoint_not_found(req);
	else
		vox_http_reply_json(req, 200, ingress_endpoint_row(res, 0));
	PQclear(res);
out:
	free(events);
	json_decref(body);
}

void ingress_endpoint_delete(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	PGresult *res;

	if (ir == NULL)
		return;
	if (!vox_uuid_valid(id)) {
		endpoint_not_found(req);
		return;
	}
	const char *params[] = {id, ir->who.account_id};
	/* Deliveries not yet sent are cancelled with it; those made stay
	 * (the attempts are history). */
	res = ingress_query(
	        ir->in, req, "ingress_endpoint_delete",
	        "WITH gone AS (UPDATE webhook_endpoints SET deleted_at = "
	        "now(), enabled = false WHERE id = $1 AND account_id = $2 "
	        "AND deleted_at IS NULL RETURNING id), cancelled AS (UPDATE "
	        "notifications n SET status = 'cancelled', lease_until = "
	        "NULL FROM gone WHERE n.webhook_endpoint_id = gone.id AND "
	        "n.account_id = $2 AND n.status = 'queued') SELECT id FROM "
	        "gone",
	        2, params);
	if (res == NULL)
		return;
	if (PQntuples(res) == 0)
		endpoint_not_found(req);
	else
		vox_http_reply(req, 204, NULL, "", 0);
	PQclear(res);
}

void ingress_endpoint_rotate(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	char aad[64], secret[VOX_WHSIG_SECRET_MAX], *sealed = NULL;
	PGresult *res;
	json_t *body;

	if (ir == NULL)
		return;
	if (!vox_uuid_valid(id)) {
		endpoint_not_found(req);
		return;
	}
	if ((body = ingress_body(req, allowed, true)) == NULL)
		return;
	json_decref(body);
	if (!idem_begin(req, ir))
		return;
	ingress_endpoint_aad(id, aad, sizeof(aad));
	if (ingress_secret_make(req, ir->in, aad, secret, &sealed) != 0)
		return;
	const char *params[] = {id, ir->who.account_id, sealed};
	/* The previous secret stays valid for 24 h: deliveries carry both
	 * signatures meanwhile. */
	res = ingress_query(
	        ir->in, req, "ingress_endpoint_rotate",
	        "UPDATE webhook_endpoints SET secret_old_enc = secret_enc, "
	        "secret_old_expires_at = now() + interval '24 hours', "
	        "secret_enc = decode($3, 'hex') WHERE id = $1 AND account_id "
	        "= $2 AND deleted_at IS NULL RETURNING id, "
	        "vox_iso(secret_old_expires_at)",
	        3, params);
	if (res != NULL && PQntuples(res) == 0)
		endpoint_not_found(req);
	else if (res != NULL)
		ingress_reply(req, 200,
		              json_pack("{s:s, s:s, s:s}", "id",
		                        PQgetvalue(res, 0, 0), "secret", secret,
		                        "previous_secret_expires_at",
		                        PQgetvalue(res, 0, 1)));
	OPENSSL_cleanse(secret, sizeof(secret));
	PQclear(res);
	free(sealed);
}
