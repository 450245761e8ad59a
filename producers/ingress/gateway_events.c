/*
 * POST /v1/payment-gateway/events: the payment gateway's webhooks
 * (docs/BILLING.md "Payments"). No API key: the gateway signs the body,
 * "Gateway-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>"
 * with VOX_PAYMENT_WEBHOOK_SECRET, checked within 300 s
 * (vox_gateway_signature_check). The body (at most 64 KiB) is the
 * gateway's event {id, type, created, data: {object: <payment intent>}};
 * only the fields the invoicing worker reads go on, as
 * vox.payment.gateway_event on vox.cmd.invoicing keyed by the account
 * (metadata.account_id) or else the intent id, and the answer (200) waits
 * until Kafka has it, so a 200 is never lost. The worker applies each
 * event id once: a redelivery is harmless.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "billing.h"
#include "vox_event.h"
#include "vox_gateway.h"
#include "vox_json.h"
#include "vox_log.h"

#define GW_TOLERANCE_S 300
#define GW_ID_MAX      200
#define GW_TYPE_MAX    100
#define GW_INTENT_MAX  127
#define GW_CODE_MAX    64

struct gw_push {
	char event_id[4 * GW_ID_MAX + 1];
	vox_error_t err;
	bool failed;
};

/* UTF-8 code points (jansson checked the encoding): lengths are in
 * characters, as JSON Schema counts them. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static bool text_ok(const json_t *v, size_t max)
{
	const char *s = json_string_value(v);

	return s != NULL && *s != '\0' && utf8_chars(s) <= max;
}

/* Absent or null, or a string of 1..max characters. */
static bool opt_text(const json_t *obj, const char *key, size_t max)
{
	const json_t *v = json_object_get(obj, key);

	return v == NULL || json_is_null(v) || text_ok(v, max);
}

/* Absent or null, or a UUID. */
static bool opt_uuid(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return v == NULL || json_is_null(v) ||
	       vox_uuid_valid(json_string_value(v));
}

static bool currency_ok(const json_t *v)
{
	const char *s = json_string_value(v);

	if (v == NULL || json_is_null(v))
		return true;
	if (s == NULL || strlen(s) != 3)
		return false;
	for (int i = 0; i < 3; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

/* NULL when the event has the shape the worker relies on, else the field
 * that has not, *why saying what it must be. */
static const char *shape_error(const json_t *doc, const char **why)
{
	const json_t *obj =
	        json_object_get(json_object_get(doc, "data"), "object");
	const json_t *amount = json_object_get(obj, "amount");
	const json_t *meta = json_object_get(obj, "metadata");
	const json_t *lpe = json_object_get(obj, "last_payment_error");
	const json_t *created = json_object_get(doc, "created");
	long long n;

	*why = "must be an object";
	if (!json_is_object(doc))
		return "body";
	*why = "must be the event id (1 to 200 characters)";
	if (!text_ok(json_object_get(doc, "id"), GW_ID_MAX))
		return "id";
	*why = "must be the event type (1 to 100 characters)";
	if (!text_ok(json_object_get(doc, "type"), GW_TYPE_MAX))
		return "type";
	*why = "must be an integer (unix seconds)";
	if (created != NULL && !billing_whole_number(created, &n))
		return "created";
	*why = "must be an object";
	if (!json_is_object(json_object_get(doc, "data")))
		return "data";
	*why = "must be an object (the payment intent)";
	if (!json_is_object(obj))
		return "data.object";
	*why = "must be the payment intent id (1 to 127 characters)";
	if (!text_ok(json_object_get(obj, "id"), GW_INTENT_MAX))
		return "data.object.id";
	*why = "must be a string of 1 to 64 characters";
	if (!opt_text(obj, "status", GW_CODE_MAX))
		return "data.object.status";
	*why = "must be an integer of at least 0 (minor units)";
	if (amount != NULL && !json_is_null(amount) &&
	    (!billing_whole_number(amount, &n) || n < 0))
		return "data.object.amount";
	*why = "must be a three-letter currency code";
	if (!currency_ok(json_object_get(obj, "currency")))
		return "data.object.currency";
	*why = "must be an object";
	if (lpe != NULL && !json_is_null(lpe) && !json_is_object(lpe))
		return "data.object.last_payment_error";
	*why = "must be a string of 1 to 64 characters";
	if (json_is_object(lpe) && !opt_text(lpe, "decline_code", GW_CODE_MAX))
		return "data.object.last_payment_error.decline_code";
	if (json_is_object(lpe) && !opt_text(lpe, "code", GW_CODE_MAX))
		return "data.object.last_payment_error.code";
	*why = "must be an object";
	if (meta != NULL && !json_is_null(meta) && !json_is_object(meta))
		return "data.object.metadata";
	*why = "must be a UUID";
	if (!opt_uuid(meta, "invoice_id"))
		return "data.object.metadata.invoice_id";
	if (!opt_uuid(meta, "payment_id"))
		return "data.object.metadata.payment_id";
	if (!opt_uuid(meta, "account_id"))
		return "data.object.metadata.account_id";
	return NULL;
}

static json_t *copy_or_null(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return v != NULL ? json_deep_copy(v) : json_null();
}

/* What goes to the worker (BILLING.md "Kafka commands"), nothing else: a
 * gateway's intent carries more (customer, billing details) than we
 * keep. */
static json_t *event_kept(const json_t *doc)
{
	const json_t *obj =
	        json_object_get(json_object_get(doc, "data"), "object");
	const json_t *meta = json_object_get(obj, "metadata");
	const json_t *lpe = json_object_get(obj, "last_payment_error");
	const char *currency = vox_json_str(obj, "currency");
	long long amount;
	json_t *out;
	char cur[4] = "";

	if (currency != NULL) {
		for (int i = 0; i < 3; i++)
			cur[i] = (char)(currency[i] >= 'a' && currency[i] <= 'z'
			                        ? currency[i] - 'a' + 'A'
			                        : currency[i]);
		cur[3] = '\0';
	}
	out = json_pack(
	        "{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:{s:o, s:o, "
	        "s:o}}",
	        "event_id", vox_json_str(doc, "id"), "type",
	        vox_json_str(doc, "type"), "intent_id", vox_json_str(obj, "id"),
	        "status", copy_or_null(obj, "status"), "decline_code",
	        json_is_object(lpe) ? copy_or_null(lpe, "decline_code")
	                            : json_null(),
	        "amount",
	        billing_whole_number(json_object_get(obj, "amount"), &amount)
	                ? json_integer(amount)
	                : json_null(),
	        "currency", currency != NULL ? json_string(cur) : json_null(),
	        "metadata", "invoice_id", copy_or_null(meta, "invoice_id"),
	        "payment_id", copy_or_null(meta, "payment_id"), "account_id",
	        copy_or_null(meta, "account_id"));
	/* The error's code too: the worker falls back to it when a decline
	 * has no decline_code (BILLING.md "Payments"). */
	json_object_set_new(out, "code",
	                    json_is_object(lpe) ? copy_or_null(lpe, "code")
	                                        : json_null());
	return out;
}

static void gw_answer(vox_http_req_t *req, void *ctx)
{
	struct gw_push *push = vox_http_state(req);

	(void)ctx;
	if (push->failed) {
		vox_log(VOX_LOG_WARN, "gateway event not accepted", "event",
		        push->event_id, "error", push->err.message,
		        "request_id", vox_http_request_id(req), NULL);
		vox_http_add_header(req, "Retry-After", "1");
		vox_http_reply_error(
		        req, 503, "bus_unavailable",
		        "the event could not be made durable: retry it",
		        json_pack("{s:s}", "reason", push->err.message));
		return;
	}
	vox_http_reply_json(
	        req, 200,
	        json_pack("{s:s, s:b}", "id", push->event_id, "received", 1));
}

/* On the producer's poll thread: it must not block. */
static void gw_delivered(void *opaque, const vox_error_t *err,
                         int32_t partition, int64_t offset)
{
	vox_http_req_t *req = opaque;
	struct gw_push *push = vox_http_state(req);

	(void)partition;
	(void)offset;
	if (err != NULL) {
		push->failed = true;
		push->err = *err;
	}
	vox_http_resume(req, gw_answer);
}

/* 0, or -1 after answering 401 missing_signature, stale_timestamp or
 * invalid_signature. */
static int signature_ok(vox_http_req_t *req, ingress_t *in, const char *body,
                        size_t len)
{
	const char *header = vox_http_header(req, "Gateway-Signature");
	int64_t now = (int64_t)time(NULL);
	vox_error_t err = {0}, err2 = {0};

	if (header == NULL || *header == '\0') {
		vox_http_reply_error(req, 401, "missing_signature",
		                     "no Gateway-Signature header", NULL);
		return -1;
	}
	if (vox_gateway_signature_check(in->cfg->payment_webhook_secret, header,
	                                body, len, now, GW_TOLERANCE_S,
	                                &err) == 0)
		return 0;
	/* Right but old (or from the future): say so, the sender's clock
	 * or its retries are the problem. */
	if (vox_gateway_signature_check(in->cfg->payment_webhook_secret, header,
	                                body, len, now, 1 << 30, &err2) == 0)
		vox_http_reply_error(
		        req, 401, "stale_timestamp",
		        "Gateway-Signature's t= is more than 300 s "
		        "from our clock",
		        NULL);
	else
		vox_http_reply_error(req, 401, "invalid_signature", err.message,
		                     NULL);
	return -1;
}

void ingress_gateway_event(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	struct gw_push *push = calloc(1, sizeof(*push));
	const char *body, *ct, *field, *why, *key;
	json_t *doc = NULL, *data, *event;
	vox_error_t err = {0};
	char msg_key[4 * GW_INTENT_MAX + 1], *text = NULL;
	size_t len;

	if (push == NULL) {
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		return;
	}
	vox_http_set_state(req, push, free);
	body = vox_http_body(req, &len);
	if (signature_ok(req, in, body ? body : "", body ? len : 0) != 0)
		return;
	ct = vox_http_header(req, "Content-Type");
	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
		vox_http_reply_error(req, 415, "unsupported_media_type",
		                     "send the event as Content-Type: "
		                     "application/json",
		                     NULL);
		return;
	}
	doc = vox_json_parse(body, len, VOX_JSON_DEFAULT_DEPTH, &err);
	if (doc == NULL) {
		vox_http_reply_error(req, 400, "invalid_json", err.message,
		                     NULL);
		return;
	}
	if ((field = shape_error(doc, &why)) != NULL) {
		char msg[200];

		snprintf(msg, sizeof(msg), "%s %s", field, why);
		vox_http_reply_error(req, 400, "invalid_body", msg,
		                     json_pack("{s:s}", "field", field));
		goto out;
	}
	snprintf(push->event_id, sizeof(push->event_id), "%s",
	         vox_json_str(doc, "id"));
	data = event_kept(doc);
	key = vox_json_str(json_object_get(data, "metadata"), "account_id");
	snprintf(msg_key, sizeof(msg_key), "%s",
	         key ? key : vox_json_str(data, "intent_id"));
	event = vox_event_build("vox.payment.gateway_event", push->event_id,
	                        key, NULL, data);
	if (event != NULL) {
		json_object_set_new(event, "requestid",
		                    json_string(vox_http_request_id(req)));
		text = vox_json_dump(event);
		json_decref(event);
	}
	if (text == NULL) {
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		goto out;
	}
	vox_http_suspend(req);
	if (vox_producer_send(in->producer, BILLING_TOPIC, msg_key, text,
	                      strlen(text), NULL, 0, gw_delivered, req,
	                      &push->err) != 0) {
		push->failed = true;
		vox_http_resume(req, gw_answer);
	}
out:
	free(text);
	json_decref(doc);
}
