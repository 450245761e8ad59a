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
#include "vox_time.h"

#define EVENT_ID_MAX   200
#define EVENT_TYPE_MAX 100
/* The carrier's order and number ids: what the worker stores (64). */
#define CARRIER_ID_MAX 64
#define EXCEPTIONS_MAX 100
#define EXC_CODE_MAX   64
#define EXC_FIELD_MAX  100
#define EXC_MSG_MAX    1000

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

/* Absent, null, or a string of min to max bytes. */
static bool opt_text(const json_t *obj, const char *key, size_t min, size_t max)
{
	const json_t *v = json_object_get(obj, key);
	const char *s = json_string_value(v);

	return v == NULL || json_is_null(v) ||
	       (s != NULL && strlen(s) >= min && strlen(s) <= max);
}

static bool foc_ok(const json_t *v)
{
	int64_t us;

	return v == NULL || json_is_null(v) ||
	       (json_is_string(v) &&
	        vox_rfc3339_parse(json_string_value(v), &us) == 0);
}

static bool exception_ok(const json_t *item)
{
	return json_is_object(item) &&
	       opt_text(item, "code", 1, EXC_CODE_MAX) &&
	       opt_text(item, "field", 1, EXC_FIELD_MAX) &&
	       opt_text(item, "message", 0, EXC_MSG_MAX);
}

/* +, then 7 to 15 digits, the first not 0 (porting_order_numbers.e164). */
static bool e164_shape(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n < 8 || n > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9')
		return false;
	for (size_t i = 2; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool number_ok(const json_t *item)
{
	const char *status = vox_json_str(item, "status");

	return json_is_object(item) && opt_text(item, "status", 1, 32) &&
	       e164_shape(vox_json_str(item, "phone_number")) &&
	       (status == NULL || (vox_porting_status_valid(status) &&
	                           strcmp(status, "draft") != 0)) &&
	       opt_text(item, "id", 0, CARRIER_ID_MAX);
}

/* Absent, or a list of at most max items each ok. */
static bool list_ok(const json_t *list, size_t max, bool (*ok)(const json_t *))
{
	const json_t *item;
	size_t i;

	if (list == NULL)
		return true;
	if (!json_is_array(list) || json_array_size(list) > max)
		return false;
	json_array_foreach(list, i, item) if (!ok(item)) return false;
	return true;
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
	if (!opt_text(data, "occurred_at", 1, 64))
		return "data.occurred_at";
	*why = "must be an object";
	if (!json_is_object(payload))
		return "data.payload";
	*why = "must be the carrier's porting order id (1 to 64 characters)";
	if (!text_ok(json_object_get(payload, "id"), CARRIER_ID_MAX))
		return "data.payload.id";
	*why = "must be our porting order id (a UUID)";
	if (!vox_uuid_valid(vox_json_str(payload, "customer_reference")))
		return "data.payload.customer_reference";
	*why = "must be one of submitted, in-process, exception, "
	       "foc-date-confirmed, ported, cancel-pending, cancelled";
	if (!vox_porting_status_valid(status) || strcmp(status, "draft") == 0)
		return "data.payload.status";
	*why = "must be an RFC 3339 time or null";
	if (!foc_ok(json_object_get(payload, "foc_date")))
		return "data.payload.foc_date";
	*why = "must be a list of at most 100 objects {code, field, message} "
	       "(strings of at most 64, 100, 1000 characters)";
	if (!list_ok(json_object_get(payload, "exceptions"), EXCEPTIONS_MAX,
	             exception_ok))
		return "data.payload.exceptions";
	*why = "must be a list of at most 1000 objects {phone_number, status, "
	       "id} (E.164, one of our statuses, 1 to 64 characters)";
	if (!list_ok(json_object_get(payload, "phone_numbers"),
	             VOX_PORTING_MAX_NUMBERS, number_ok))
		return "data.payload.phone_numbers";
	return NULL;
}

/* What goes to the worker: the fields it reads, and nothing else. A
 * carrier's payload is its porting order, which may carry the end user's
 * account number and PIN (Telnyx's end_user.admin does): copied whole, they
 * would reach Kafka, the order's history (detail) and GET .../events. */
static json_t *pick(const json_t *from, const char *const *keys)
{
	json_t *out = json_object();

	for (size_t i = 0; keys[i] != NULL; i++) {
		json_t *v = json_object_get(from, keys[i]);

		if (v != NULL)
			json_object_set_new(out, keys[i], json_deep_copy(v));
	}
	return out;
}

static json_t *pick_list(const json_t *list, const char *const *keys)
{
	json_t *out = json_array(), *item;
	size_t i;

	json_array_foreach(list, i, item)
	        json_array_append_new(out, pick(item, keys));
	return out;
}

static json_t *event_kept(const json_t *data)
{
	static const char *const data_keys[] = {"id", "event_type",
	                                        "occurred_at", NULL};
	static const char *const payload_keys[] = {"id", "customer_reference",
	                                           "status", "foc_date", NULL};
	static const char *const exception_keys[] = {"code", "field", "message",
	                                             NULL};
	static const char *const number_keys[] = {"phone_number", "status",
	                                          "id", NULL};
	const json_t *payload = json_object_get(data, "payload");
	const json_t *list;
	json_t *out = pick(data, data_keys);
	json_t *kept = pick(payload, payload_keys);

	if ((list = json_object_get(payload, "exceptions")) != NULL)
		json_object_set_new(kept, "exceptions",
		                    pick_list(list, exception_keys));
	if ((list = json_object_get(payload, "phone_numbers")) != NULL)
		json_object_set_new(kept, "phone_numbers",
		                    pick_list(list, number_keys));
	json_object_set_new(out, "payload", kept);
	return out;
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
	data = event_kept(data);
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
