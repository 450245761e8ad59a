/*
 * POST /v1/carrier/porting-events: the carrier's porting webhooks
 * (docs/PORTING.md "The carrier's webhooks"), authenticated and signed like
 * CDR pushes (carrier_auth.c: carrier key, Vox-Signature, +-300 s, replay
 * refused). The shape is checked here; what the event means for the order
 * is the porting worker's: the data object, plus the caller's carrier, goes
 * to vox.cmd.porting as vox.porting.carrier_event keyed by our order id
 * (payload.customer_reference), and the answer (202) waits until Kafka has
 * it. A request not taken (bad body, Kafka down) forgets its signature, so
 * the carrier may send it again as it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "carrier_auth.h"
#include "porting.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"

#define EVENT_ID_MAX   200
#define EVENT_TYPE_MAX 100

/* One webhook, owned by the request (freed with it). */
struct porting_push {
	ingress_t *in;
	carrier_caller_t who;
	char event_id[EVENT_ID_MAX + 1];
	vox_error_t err;
	bool failed;
};

static void push_free(void *state)
{
	free(state);
}

static bool text_ok(const json_t *v, size_t max)
{
	const char *s = json_string_value(v);

	return s != NULL && s[0] != '\0' && strlen(s) <= max;
}

static bool absent_or(const json_t *v, bool (*is)(const json_t *))
{
	return v == NULL || is(v);
}

static bool is_string(const json_t *v)
{
	return json_is_string(v);
}

static bool is_array(const json_t *v)
{
	return json_is_array(v);
}

/* What the worker relies on in a webhook: NULL when the shape is right,
 * else the field that is not, *why saying what it must be. */
static const char *event_shape_error(const json_t *doc, const char **why)
{
	const json_t *data = json_object_get(doc, "data");
	const json_t *payload = json_object_get(data, "payload");
	const char *status = vox_json_str(payload, "status");

	*why = "must be an object";
	if (!json_is_object(doc))
		return "body";
	if (!json_is_object(data))
		return "data";
	*why = "must be the event id (1 to 200 characters)";
	if (!text_ok(json_object_get(data, "id"), EVENT_ID_MAX))
		return "data.id";
	*why = "must be a string of 1 to 100 characters";
	if (!text_ok(json_object_get(data, "event_type"), EVENT_TYPE_MAX))
		return "data.event_type";
	*why = "must be an RFC 3339 time";
	if (!absent_or(json_object_get(data, "occurred_at"), is_string))
		return "data.occurred_at";
	*why = "must be an object";
	if (!json_is_object(payload))
		return "data.payload";
	*why = "must be the carrier's porting order id (1 to 200 characters)";
	if (!text_ok(json_object_get(payload, "id"), EVENT_ID_MAX))
		return "data.payload.id";
	*why = "must be our porting order id (a UUID)";
	if (!vox_uuid_valid(vox_json_str(payload, "customer_reference")))
		return "data.payload.customer_reference";
	*why = "must be one of submitted, in-process, exception, "
	       "foc-date-confirmed, ported, cancel-pending, cancelled";
	if (!vox_porting_status_valid(status) || strcmp(status, "draft") == 0)
		return "data.payload.status";
	*why = "must be a list";
	if (!absent_or(json_object_get(payload, "exceptions"), is_array))
		return "data.payload.exceptions";
	if (!absent_or(json_object_get(payload, "phone_numbers"), is_array))
		return "data.payload.phone_numbers";
	return NULL;
}

static void push_answer(vox_http_req_t *req, void *ctx)
{
	struct porting_push *push = vox_http_state(req);

	(void)ctx;
	if (push->failed) {
		carrier_auth_forget(push->in, &push->who);
		vox_log(VOX_LOG_WARN, "porting event not accepted", "carrier",
		        push->who.carrier, "error", push->err.message,
		        "request_id", vox_http_request_id(req), NULL);
		vox_http_add_header(req, "Retry-After", "1");
		vox_http_reply_error(
		        req, 503, "bus_unavailable",
		        "the event could not be made durable: "
		        "retry the same request",
		        json_pack("{s:s}", "reason", push->err.message));
		return;
	}
	vox_http_reply_json(req, 202,
	                    json_pack("{s:s, s:s}", "id", push->event_id,
	                              "status", "accepted"));
}

/* On the producer's poll thread: it must not block. */
static void push_delivered(void *opaque, const vox_error_t *err,
                           int32_t partition, int64_t offset)
{
	vox_http_req_t *req = opaque;
	struct porting_push *push = vox_http_state(req);

	(void)partition;
	(void)offset;
	if (err != NULL) {
		push->failed = true;
		push->err = *err;
	}
	vox_http_resume(req, push_answer);
}

void ingress_porting_carrier_event(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	struct porting_push *push = calloc(1, sizeof(*push));
	json_t *doc = NULL, *data, *event;
	const char *body, *ct, *field, *why;
	char key[VOX_UUID_STRLEN], *text = NULL;
	vox_error_t err = {0};
	size_t len;

	if (push == NULL) {
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		return;
	}
	push->in = in;
	vox_http_set_state(req, push, push_free);
	if (carrier_auth_check(req, in, "command", in->cfg->rate_command,
	                       &push->who) != 0)
		return;
	ct = vox_http_header(req, "Content-Type");
	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
		carrier_auth_forget(in, &push->who);
		vox_http_reply_error(req, 415, "unsupported_media_type",
		                     "send the event as Content-Type: "
		                     "application/json",
		                     NULL);
		return;
	}
	body = vox_http_body(req, &len);
	doc = vox_json_parse(body, len, VOX_JSON_DEFAULT_DEPTH, &err);
	if (doc == NULL) {
		carrier_auth_forget(in, &push->who);
		vox_http_reply_error(req, 400, "invalid_json", err.message,
		                     NULL);
		return;
	}
	if ((field = event_shape_error(doc, &why)) != NULL) {
		char msg[200];

		carrier_auth_forget(in, &push->who);
		snprintf(msg, sizeof(msg), "%s %s", field, why);
		vox_http_reply_error(req, 400, "invalid_body", msg,
		                     json_pack("{s:s}", "field", field));
		goto out;
	}
	data = json_object_get(doc, "data");
	snprintf(push->event_id, sizeof(push->event_id), "%s",
	         vox_json_str(data, "id"));
	snprintf(key, sizeof(key), "%s",
	         vox_json_str(json_object_get(data, "payload"),
	                      "customer_reference"));
	data = json_deep_copy(data);
	json_object_set_new(data, "carrier", json_string(push->who.carrier));
	event = vox_event_build("vox.porting.carrier_event", key, NULL, NULL,
	                        data);
	if (event != NULL) {
		json_object_set_new(event, "requestid",
		                    json_string(vox_http_request_id(req)));
		text = vox_json_dump(event);
		json_decref(event);
	}
	if (text == NULL) {
		carrier_auth_forget(in, &push->who);
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		goto out;
	}
	vox_http_suspend(req);
	if (vox_producer_send(in->producer, PORTING_TOPIC, key, text,
	                      strlen(text), NULL, 0, push_delivered, req,
	                      &push->err) != 0) {
		push->failed = true;
		vox_http_resume(req, push_answer);
	}
out:
	free(text);
	json_decref(doc);
}
