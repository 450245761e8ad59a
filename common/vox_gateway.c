/*
 * vox_gateway: the payment gateway client (vox_gateway.h) over a
 * vox_upstream named "payment". Every POST carries the caller's
 * Idempotency-Key and every attempt of a call sends it again, so a charge
 * whose answer was lost (timeout, 5xx, reset) is answered by the gateway
 * from its first result instead of being taken twice. A 409 (the same key
 * still in flight at the gateway) is retried like a 5xx.
 *
 * Answers: 200 intent -> succeeded / processing; 402 card_error ->
 * declined (decline_code, or the error's code when there is none, as for
 * processing_error and incorrect_cvc); 404, and 400 resource_missing on
 * payment_method -> VOX_ERR_NOT_FOUND; other 400 -> VOX_ERR_INVALID;
 * 401/403 fatal; 5xx, timeouts, 409 -> retriable after the attempts.
 */
#include "vox_gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_gateway_internal.h"
#include "vox_json.h"
#include "vox_upstream.h"

struct vox_gateway {
	vox_upstream_t *up; /* owned */
};

/* Soft declines (docs/BILLING.md "Payments"): a later attempt may pass. */
static const char *const soft_codes[] = {
        "insufficient_funds",
        "processing_error",
        "try_again_later",
        "issuer_not_available",
        "card_velocity_exceeded",
        "approve_with_id",
        "reenter_transaction",
        "withdrawal_count_limit_exceeded",
        NULL,
};

bool vox_gateway_decline_soft(const char *decline_code)
{
	if (decline_code == NULL)
		return false;
	for (size_t i = 0; soft_codes[i] != NULL; i++)
		if (strcmp(soft_codes[i], decline_code) == 0)
			return true;
	return false;
}

bool vox_gateway_token_ok(const char *token)
{
	size_t n;

	if (token == NULL)
		return false;
	n = strlen(token);
	if (n < 1 || n > 120)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = token[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* Copies src (may be NULL: "") into dst[size] when it fits. */
static bool copy_fits(char *dst, size_t size, const char *src)
{
	size_t n;

	if (src == NULL)
		src = "";
	n = strlen(src);
	if (n >= size)
		return false;
	memcpy(dst, src, n + 1);
	return true;
}

/* Cut at size-1 bytes without splitting a UTF-8 sequence. */
static void copy_cut(char *dst, size_t size, const char *src)
{
	size_t n;

	if (src == NULL)
		src = "";
	n = strlen(src);
	if (n >= size) {
		n = size - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int unreadable(vox_error_t *err, const char *what, const char *why)
{
	return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
	                     "payment %s: answer unreadable: %s", what, why);
}

void vox_gateway_describe(const char *body, size_t len, char *out, size_t size)
{
	json_t *root = NULL, *e;
	const char *msg, *code, *decline;

	if (size == 0)
		return;
	out[0] = '\0';
	if (body != NULL && len > 0)
		root = vox_json_parse(body, len, VOX_JSON_DEFAULT_DEPTH, NULL);
	e = json_object_get(root, "error");
	msg = vox_json_str(e, "message");
	code = vox_json_str(e, "code");
	decline = vox_json_str(e, "decline_code");
	if (msg != NULL)
		snprintf(out, size, "%.300s%s%.64s%s%.64s%s", msg,
		         code || decline ? " (" : "", code ? code : "",
		         code && decline ? ", " : "", decline ? decline : "",
		         code || decline ? ")" : "");
	json_decref(root);
}

/* The intent object's fields into out (status decides the outcome). */
static int intent_fill(const json_t *pi, vox_gateway_charge_t *out,
                       vox_error_t *err)
{
	const char *id = vox_json_str(pi, "id");
	const char *status = vox_json_str(pi, "status");
	json_t *amount = json_object_get(pi, "amount");
	json_t *lpe = json_object_get(pi, "last_payment_error");

	if (id == NULL || strncmp(id, "pi_", 3) != 0 ||
	    !copy_fits(out->intent_id, sizeof(out->intent_id), id))
		return unreadable(err, "intent", "no intent id");
	if (status == NULL)
		return unreadable(err, "intent", "no status");
	if (!json_is_integer(amount) || json_integer_value(amount) <= 0)
		return unreadable(err, "intent", "no amount");
	out->amount_minor = (int64_t)json_integer_value(amount);
	if (strcmp(status, "succeeded") == 0) {
		out->outcome = VOX_CHARGE_SUCCEEDED;
		return 0;
	}
	if (strcmp(status, "processing") == 0 ||
	    strcmp(status, "requires_capture") == 0 ||
	    strcmp(status, "requires_confirmation") == 0 ||
	    strcmp(status, "requires_action") == 0) {
		out->outcome = VOX_CHARGE_PROCESSING;
		return 0;
	}
	if (strcmp(status, "requires_payment_method") == 0 ||
	    strcmp(status, "canceled") == 0) {
		const char *code = vox_json_str(lpe, "decline_code");

		if (code == NULL)
			code = vox_json_str(lpe, "code");
		if (code == NULL)
			code = strcmp(status, "canceled") == 0
			               ? "canceled"
			               : "generic_decline";
		out->outcome = VOX_CHARGE_DECLINED;
		copy_cut(out->decline_code, sizeof(out->decline_code), code);
		copy_cut(out->message, sizeof(out->message),
		         vox_json_str(lpe, "message"));
		out->hard = !vox_gateway_decline_soft(out->decline_code);
		return 0;
	}
	return unreadable(err, "intent", "unknown status");
}

int vox_gateway_parse_charge(long status, const char *body, size_t len,
                             vox_gateway_charge_t *out, vox_error_t *err)
{
	json_t *root, *pi, *e;
	int rc;

	memset(out, 0, sizeof(*out));
	if (body == NULL || len == 0)
		return unreadable(err, "charge", "empty");
	root = vox_json_parse(body, len, VOX_JSON_DEFAULT_DEPTH, err);
	if (root == NULL)
		return unreadable(err, "charge", "not JSON");
	if (status != 402) {
		rc = intent_fill(root, out, err);
		json_decref(root);
		return rc;
	}
	/* 402 card_error: the decline, and the intent it left behind */
	e = json_object_get(root, "error");
	pi = json_object_get(e, "payment_intent");
	if (!json_is_object(e) || !json_is_object(pi)) {
		json_decref(root);
		return unreadable(err, "charge", "402 without payment_intent");
	}
	rc = intent_fill(pi, out, err);
	if (rc == 0) {
		const char *code = vox_json_str(e, "decline_code");

		if (code == NULL)
			code = vox_json_str(e, "code");
		out->outcome = VOX_CHARGE_DECLINED;
		copy_cut(out->decline_code, sizeof(out->decline_code),
		         code != NULL ? code : "generic_decline");
		copy_cut(out->message, sizeof(out->message),
		         vox_json_str(e, "message"));
		out->hard = !vox_gateway_decline_soft(out->decline_code);
	}
	json_decref(root);
	return rc;
}

int vox_gateway_parse_method(const char *body, size_t len,
                             vox_gateway_method_t *out, vox_error_t *err)
{
	json_t *root, *card, *m, *y;
	const char *last4;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (body == NULL || len == 0)
		return unreadable(err, "method", "empty");
	root = vox_json_parse(body, len, VOX_JSON_DEFAULT_DEPTH, err);
	if (root == NULL)
		return unreadable(err, "method", "not JSON");
	card = json_object_get(root, "card");
	m = json_object_get(card, "exp_month");
	y = json_object_get(card, "exp_year");
	last4 = vox_json_str(card, "last4");
	if (!copy_fits(out->id, sizeof(out->id), vox_json_str(root, "id")) ||
	    out->id[0] == '\0')
		rc = unreadable(err, "method", "no id");
	else if (!json_is_object(card))
		rc = vox_error_set(err, VOX_ERR_INVALID, false,
		                   "payment method %s is not a card", out->id);
	else if (last4 == NULL || strlen(last4) != 4 ||
	         strspn(last4, "0123456789") != 4 || !json_is_integer(m) ||
	         json_integer_value(m) < 1 || json_integer_value(m) > 12 ||
	         !json_is_integer(y) || json_integer_value(y) < 2000 ||
	         json_integer_value(y) > 2100)
		rc = vox_error_set(err, VOX_ERR_INVALID, false,
		                   "payment method %s: card details out of "
		                   "range",
		                   out->id);
	if (rc == 0) {
		memcpy(out->last4, last4, 5);
		out->exp_month = (int)json_integer_value(m);
		out->exp_year = (int)json_integer_value(y);
		copy_cut(out->brand, sizeof(out->brand),
		         vox_json_str(card, "brand")
		                 ? vox_json_str(card, "brand")
		                 : "unknown");
	}
	json_decref(root);
	return rc;
}

/* 409: the same Idempotency-Key still in flight at the gateway (a
 * previous attempt of ours): asking again shortly gets its answer. */
static vox_upstream_verdict_t classify(long status)
{
	if (status == 409)
		return VOX_UPSTREAM_RETRY;
	return vox_upstream_verdict(status);
}

vox_gateway_t *vox_gateway_new(const vox_gateway_conf_t *conf, vox_error_t *err)
{
	vox_upstream_conf_t uc = {0};
	char *auth = NULL;
	vox_gateway_t *gw;

	if (conf == NULL || conf->api_key == NULL ||
	    !vox_upstream_header_safe(conf->api_key, 512)) {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "payment: an API key is required");
		return NULL;
	}
	gw = calloc(1, sizeof(*gw));
	if (gw == NULL ||
	    asprintf(&auth, "Authorization: Bearer %s", conf->api_key) < 0) {
		free(gw);
		vox_error_set(err, VOX_ERR_NOMEM, true, "payment: no memory");
		return NULL;
	}
	uc.name = "payment";
	uc.base_url = conf->base_url;
	uc.auth_header = auth;
	uc.accept = "application/json";
	uc.timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 10000;
	uc.connect_timeout_ms = uc.timeout_ms < 1000 ? uc.timeout_ms : 1000;
	uc.max_attempts = conf->max_attempts;
	uc.backoff_ms = conf->backoff_ms;
	uc.breaker_failures = conf->breaker_failures;
	uc.breaker_cooldown_ms = conf->breaker_cooldown_ms;
	uc.metrics = conf->metrics;
	uc.describe = vox_gateway_describe;
	uc.classify = classify;
	gw->up = vox_upstream_new(&uc, err);
	free(auth);
	if (gw->up == NULL) {
		free(gw);
		return NULL;
	}
	return gw;
}

void vox_gateway_destroy(vox_gateway_t *gw)
{
	if (gw == NULL)
		return;
	vox_upstream_destroy(gw->up);
	free(gw);
}

/* "<prefix><escaped id>", or NULL (ENOMEM). */
static char *path_of(const char *prefix, const char *id)
{
	char *esc = vox_upstream_escape(id), *path = NULL;

	if (esc != NULL && asprintf(&path, "%s%s", prefix, esc) < 0)
		path = NULL;
	free(esc);
	return path;
}

/* A 400 naming a missing resource (Stripe's resource_missing): not found. */
static bool resource_missing(const vox_upstream_response_t *resp)
{
	json_t *root;
	const char *code;
	bool missing;

	if (resp->status != 400 || resp->body == NULL)
		return false;
	root = vox_json_parse(resp->body, resp->len, VOX_JSON_DEFAULT_DEPTH,
	                      NULL);
	code = vox_json_str(json_object_get(root, "error"), "code");
	missing = code != NULL && strcmp(code, "resource_missing") == 0;
	json_decref(root);
	return missing;
}

int vox_gateway_method_get(vox_gateway_t *gw, const char *token,
                           vox_gateway_method_t *out, vox_error_t *err)
{
	vox_upstream_request_t req = {0};
	vox_upstream_response_t resp;
	char *path;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!vox_gateway_token_ok(token))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "payment method token: expected "
		                     "[A-Za-z0-9_]{1,120}");
	path = path_of("/v1/payment_methods/", token);
	if (path == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true,
		                     "payment: no memory");
	req.endpoint = "method_get";
	req.path = path;
	rc = vox_upstream_call(gw->up, &req, &resp, err);
	if (rc == 0)
		rc = vox_gateway_parse_method(resp.body, resp.len, out, err);
	else if (resource_missing(&resp))
		rc = vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                   "payment method %s: no such method", token);
	vox_upstream_response_free(&resp);
	free(path);
	return rc;
}

int vox_gateway_charge(vox_gateway_t *gw, const char *key, const char *token,
                       int64_t amount_minor, const char *currency,
                       const char *invoice_id, const char *payment_id,
                       const char *account_id, vox_gateway_charge_t *out,
                       vox_error_t *err)
{
	vox_upstream_request_t req = {0};
	vox_upstream_response_t resp;
	char cur[4];
	json_t *body;
	int rc;

	memset(out, 0, sizeof(*out));
	if (key == NULL || !vox_upstream_header_safe(key, VOX_UPSTREAM_MAX_KEY))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "payment charge: an idempotency key of "
		                     "1..%d characters is required",
		                     VOX_UPSTREAM_MAX_KEY);
	if (!vox_gateway_token_ok(token))
		return vox_error_set(
		        err, VOX_ERR_INVALID, false,
		        "payment charge: bad payment method token");
	if (amount_minor <= 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "payment charge: amount must be positive");
	if (currency == NULL || strlen(currency) != 3)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "payment charge: bad currency");
	for (int i = 0; i < 3; i++) {
		char c = currency[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c < 'a' || c > 'z')
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "payment charge: bad currency");
		cur[i] = c;
	}
	cur[3] = '\0';
	body = json_pack("{s:I, s:s, s:s, s:b, s:{s:s, s:s, s:s}}", "amount",
	                 (json_int_t)amount_minor, "currency", cur,
	                 "payment_method", token, "confirm", 1, "metadata",
	                 "invoice_id", invoice_id ? invoice_id : "",
	                 "payment_id", payment_id ? payment_id : "",
	                 "account_id", account_id ? account_id : "");
	if (body == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true,
		                     "payment: no memory");
	req.endpoint = "charge";
	req.method = "POST";
	req.path = "/v1/payment_intents";
	req.json = body;
	req.idempotency_key = key;
	rc = vox_upstream_call(gw->up, &req, &resp, err);
	json_decref(body);
	if (rc == 0 || resp.status == 402)
		rc = vox_gateway_parse_charge(resp.status, resp.body, resp.len,
		                              out, err);
	else if (resource_missing(&resp))
		rc = vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                   "payment charge: no such payment method %s",
		                   token);
	vox_upstream_response_free(&resp);
	return rc;
}

int vox_gateway_intent_get(vox_gateway_t *gw, const char *intent_id,
                           vox_gateway_charge_t *out, vox_error_t *err)
{
	vox_upstream_request_t req = {0};
	vox_upstream_response_t resp;
	char *path;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!vox_gateway_token_ok(intent_id))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "payment intent id: expected "
		                     "[A-Za-z0-9_]{1,120}");
	path = path_of("/v1/payment_intents/", intent_id);
	if (path == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true,
		                     "payment: no memory");
	req.endpoint = "intent_get";
	req.path = path;
	rc = vox_upstream_call(gw->up, &req, &resp, err);
	if (rc == 0)
		rc = vox_gateway_parse_charge(resp.status, resp.body, resp.len,
		                              out, err);
	vox_upstream_response_free(&resp);
	free(path);
	return rc;
}
