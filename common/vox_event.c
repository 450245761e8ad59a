/* vox_event: building and checking CloudEvents envelopes. */
#include "vox_event.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "vox_json.h"
#include "vox_uuid.h"

/* Every type we send: its source, its topic and its domain topic
 * (docs/ARCHITECTURE.md, docs/EVENTS.md). */
static const vox_event_kind_t kinds[] = {
        /* commands the ingress publishes */
        {"vox.canary.requested", "/voxlink/ingress", "vox.cmd.provisioning",
         NULL},
        {"vox.reservation.requested", "/voxlink/ingress",
         "vox.cmd.provisioning", NULL},
        {"vox.reservation.extend_requested", "/voxlink/ingress",
         "vox.cmd.provisioning", NULL},
        {"vox.order.requested", "/voxlink/ingress", "vox.cmd.provisioning",
         NULL},
        {"vox.number.activate_requested", "/voxlink/ingress",
         "vox.cmd.provisioning", NULL},
        {"vox.number.deactivate_requested", "/voxlink/ingress",
         "vox.cmd.provisioning", NULL},
        {"vox.number.release_requested", "/voxlink/ingress",
         "vox.cmd.provisioning", NULL},
        /* porting (docs/PORTING.md "Kafka commands"): the customer's
         * submit and cancel, the carrier's signed webhooks */
        {"vox.porting_order.submit_requested", "/voxlink/ingress",
         "vox.cmd.porting", NULL},
        {"vox.porting_order.cancel_requested", "/voxlink/ingress",
         "vox.cmd.porting", NULL},
        {"vox.porting.carrier_event", "/voxlink/carriers", "vox.cmd.porting",
         NULL},
        /* carrier records, from the ingress (api) or cdr-import (file) */
        {"vox.cdr.received", "/voxlink/carriers", "vox.cdr.raw", NULL},
        /* what the workers report */
        {"vox.canary.completed", "/voxlink/workers", "vox.events", NULL},
        {"number.reserved", "/voxlink/provisioning", "vox.events",
         "vox.events.numbers"},
        {"number.purchased", "/voxlink/provisioning", "vox.events",
         "vox.events.numbers"},
        {"number.activated", "/voxlink/provisioning", "vox.events",
         "vox.events.numbers"},
        {"number.deactivated", "/voxlink/provisioning", "vox.events",
         "vox.events.numbers"},
        {"number.released", "/voxlink/provisioning", "vox.events",
         "vox.events.numbers"},
        {"reservation.expired", "/voxlink/provisioning", "vox.events",
         "vox.events.numbers"},
        {"vox.usage.rated", "/voxlink/metering", "vox.events",
         "vox.events.usage"},
        {"vox.notification.requested", "/voxlink/metering",
         "vox.cmd.notifications", NULL},
        {"vox.number.routing_update_requested", "/voxlink/ingress",
         "vox.cmd.provisioning", NULL},
        {"vox.number.business_hours_update_requested", "/voxlink/ingress",
         "vox.cmd.provisioning", NULL},
        {"vox.number.voicemail_update_requested", "/voxlink/ingress",
         "vox.cmd.provisioning", NULL},
        {"vox.notification_preferences.update_requested", "/voxlink/ingress",
         "vox.cmd.provisioning", NULL},
        {"number.configured", "/voxlink/provisioning", "vox.events",
         "vox.events.numbers"},
        /* the SMS provider's delivery receipts, checked by the ingress */
        {"vox.sms.status_received", "/voxlink/ingress", "vox.cmd.notifications",
         NULL},
        /* a customer webhook endpoint the notifications worker disabled */
        {"endpoint.disabled", "/voxlink/notifications", "vox.events",
         "vox.events.notifications"},
        /* porting orders (docs/PORTING.md "Events"): the worker's moves,
         * and a draft the ingress cancels at once */
        {"porting_order.submitted", "/voxlink/porting", "vox.events",
         "vox.events.porting"},
        {"porting_order.in_process", "/voxlink/porting", "vox.events",
         "vox.events.porting"},
        {"porting_order.exception", "/voxlink/porting", "vox.events",
         "vox.events.porting"},
        {"porting_order.foc_date_confirmed", "/voxlink/porting", "vox.events",
         "vox.events.porting"},
        {"porting_order.ported", "/voxlink/porting", "vox.events",
         "vox.events.porting"},
        {"porting_order.cancel_pending", "/voxlink/porting", "vox.events",
         "vox.events.porting"},
        {"porting_order.cancelled", "/voxlink/porting", "vox.events",
         "vox.events.porting"},
        {"porting_order.expired", "/voxlink/porting", "vox.events",
         "vox.events.porting"},
        {"number.ported_in", "/voxlink/porting", "vox.events",
         "vox.events.numbers"},
        /* billing (docs/BILLING.md "Kafka commands"): the customer's and
         * the scheduler's commands, the payment gateway's webhooks */
        {"vox.invoice.generate_requested", "/voxlink/ingress",
         "vox.cmd.invoicing", NULL},
        {"vox.invoice.finalize_requested", "/voxlink/ingress",
         "vox.cmd.invoicing", NULL},
        {"vox.invoice.void_requested", "/voxlink/ingress", "vox.cmd.invoicing",
         NULL},
        {"vox.invoice.pay_requested", "/voxlink/ingress", "vox.cmd.invoicing",
         NULL},
        {"vox.invoice.mark_uncollectible_requested", "/voxlink/ingress",
         "vox.cmd.invoicing", NULL},
        {"vox.credit_note.create_requested", "/voxlink/ingress",
         "vox.cmd.invoicing", NULL},
        {"vox.payment_method.attach_requested", "/voxlink/ingress",
         "vox.cmd.invoicing", NULL},
        {"vox.payment.gateway_event", "/voxlink/payments", "vox.cmd.invoicing",
         NULL},
        /* billing events (docs/BILLING.md "Events") */
        {"invoice.created", "/voxlink/invoicing", "vox.events",
         "vox.events.billing"},
        {"invoice.finalized", "/voxlink/invoicing", "vox.events",
         "vox.events.billing"},
        {"invoice.paid", "/voxlink/invoicing", "vox.events",
         "vox.events.billing"},
        {"invoice.voided", "/voxlink/invoicing", "vox.events",
         "vox.events.billing"},
        {"invoice.marked_uncollectible", "/voxlink/invoicing", "vox.events",
         "vox.events.billing"},
        {"invoice.payment_failed", "/voxlink/invoicing", "vox.events",
         "vox.events.billing"},
        {"invoice.payment_reminder", "/voxlink/invoicing", "vox.events",
         "vox.events.billing"},
        {"credit_note.created", "/voxlink/invoicing", "vox.events",
         "vox.events.billing"},
        {"payment_method.attached", "/voxlink/invoicing", "vox.events",
         "vox.events.billing"},
        {"payment_method.failed", "/voxlink/invoicing", "vox.events",
         "vox.events.billing"},
        {"account.billing_suspended", "/voxlink/invoicing", "vox.events",
         "vox.events.billing"},
        {"account.billing_reinstated", "/voxlink/invoicing", "vox.events",
         "vox.events.billing"},
};

const vox_event_kind_t *vox_event_kind(const char *type)
{
	for (size_t i = 0; type != NULL && i < sizeof(kinds) / sizeof(kinds[0]);
	     i++)
		if (strcmp(kinds[i].type, type) == 0)
			return &kinds[i];
	return NULL;
}

const vox_event_kind_t *vox_event_kind_at(size_t i)
{
	return i < sizeof(kinds) / sizeof(kinds[0]) ? &kinds[i] : NULL;
}

static void hex_random(char *out, size_t bytes)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[16];

	if (getrandom(raw, bytes, 0) != (ssize_t)bytes)
		RAND_bytes(raw, (int)bytes);
	for (size_t i = 0; i < bytes; i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 15];
	}
}

static bool hex_run(const char *s, size_t n)
{
	bool nonzero = false;

	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]) && (s[i] < 'a' || s[i] > 'f'))
			return false;
		nonzero |= s[i] != '0';
	}
	return nonzero;
}

void vox_traceparent_new(char *out, size_t outlen)
{
	char tp[VOX_TRACEPARENT_LEN];

	vox_traceparent_child(NULL, tp);
	snprintf(out, outlen, "%s", tp);
}

void vox_traceparent_child(const char *parent, char out[VOX_TRACEPARENT_LEN])
{
	/* 00-<32 hex trace id>-<16 hex span id>-<2 hex flags> */
	bool valid =
	        parent != NULL && strlen(parent) == VOX_TRACEPARENT_LEN - 1 &&
	        strncmp(parent, "00-", 3) == 0 && parent[35] == '-' &&
	        parent[52] == '-' && hex_run(parent + 3, 32) &&
	        hex_run(parent + 36, 16) &&
	        (hex_run(parent + 53, 2) || strcmp(parent + 53, "00") == 0);

	memcpy(out, "00-", 3);
	if (valid)
		memcpy(out + 3, parent + 3, 32);
	else
		hex_random(out + 3, 16);
	out[35] = '-';
	hex_random(out + 36, 8);
	out[52] = '-';
	memcpy(out + 53, valid ? parent + 53 : "01", 2);
	out[55] = '\0';
}

/* The envelope's attributes in their order: both writers below use it. */
enum { ATTR_MAX = 9 };
struct attrs {
	const char *name[ATTR_MAX], *value[ATTR_MAX];
	size_t n;
	char id[VOX_UUID_STRLEN], time[40], trace[VOX_TRACEPARENT_LEN];
};

static void attr(struct attrs *a, const char *name, const char *value)
{
	a->name[a->n] = name;
	a->value[a->n++] = value;
}

static void attrs_fill(struct attrs *a, const char *type, const char *source,
                       const char *subject, const char *account_id,
                       const char *parent)
{
	a->n = 0;
	vox_uuid7(a->id);
	vox_time_now_rfc3339(a->time, sizeof(a->time));
	vox_traceparent_child(parent, a->trace);
	attr(a, "specversion", "1.0");
	attr(a, "id", a->id);
	attr(a, "source", source);
	attr(a, "type", type);
	attr(a, "time", a->time);
	if (subject != NULL)
		attr(a, "subject", subject);
	attr(a, "datacontenttype", "application/json");
	attr(a, "accountid", account_id); /* null when not known */
	attr(a, "traceparent", a->trace);
}

json_t *vox_event_new(const char *type, const char *source, const char *subject,
                      const char *account_id, const char *parent, json_t *data)
{
	json_t *ev = json_object();
	struct attrs a;

	if (ev == NULL) {
		json_decref(data);
		return NULL;
	}
	attrs_fill(&a, type, source, subject, account_id, parent);
	for (size_t i = 0; i < a.n; i++)
		if (json_object_set_new(ev, a.name[i],
		                        a.value[i] ? json_string(a.value[i])
		                                   : json_null()) != 0)
			goto out_nomem;
	if (json_object_set_new(ev, "data", data ? data : json_object()) != 0) {
		data = NULL; /* set_new released it */
		goto out_nomem;
	}
	return ev;

out_nomem:
	json_decref(data);
	json_decref(ev);
	return NULL;
}

json_t *vox_event_build(const char *type, const char *subject,
                        const char *account_id, const char *parent,
                        json_t *data)
{
	const vox_event_kind_t *kind = vox_event_kind(type);

	if (kind == NULL) {
		json_decref(data);
		return NULL;
	}
	return vox_event_new(kind->type, kind->source, subject, account_id,
	                     parent, data);
}

int vox_event_head(vox_buf_t *b, const char *type, const char *subject,
                   const char *account_id, const char *parent)
{
	const vox_event_kind_t *kind = vox_event_kind(type);
	struct attrs a;

	if (kind == NULL)
		return vox_buf_error(b) ? vox_buf_error(b) : VOX_ERR_INTERNAL;
	attrs_fill(&a, kind->type, kind->source, subject, account_id, parent);
	vox_buf_add(b, "{", 1);
	for (size_t i = 0; i < a.n; i++) {
		vox_buf_add_json_str(b, a.name[i]);
		vox_buf_add(b, ":", 1);
		vox_buf_add_json_str(b, a.value[i]);
		vox_buf_add(b, ",", 1);
	}
	return vox_buf_adds(b, "\"data\":");
}

int vox_event_emit(vox_pg_t *pg, const char *type, const char *key,
                   const char *subject, const char *account_id,
                   const char *parent, json_t *data, vox_error_t *err)
{
	const vox_event_kind_t *kind = vox_event_kind(type);
	json_t *ev = vox_event_build(type, subject, account_id, parent, data);
	char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	int rc;

	json_decref(ev);
	if (kind == NULL)
		return vox_error_set(
		        err, VOX_ERR_INTERNAL, false,
		        "event type %s is not in vox_event's table", type);
	if (text == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
	rc = vox_event_outbox_add(pg, kind, key, text, err);
	free(text);
	return rc;
}

const char *vox_event_seq_scope(const vox_event_kind_t *kind)
{
	if (kind->domain_topic != NULL)
		return kind->domain_topic;
	return strcmp(kind->topic, "vox.events") == 0 ? kind->topic : NULL;
}

int vox_event_outbox_add(vox_pg_t *pg, const vox_event_kind_t *kind,
                         const char *key, const char *text, vox_error_t *err)
{
	const char *params[] = {kind->topic, key, text, kind->domain_topic,
	                        vox_event_seq_scope(kind)};
	int rc;

	rc = vox_pg_execp(
	        pg, "vox_event_outbox_add",
	        "INSERT INTO outbox (topic, message_key, payload, "
	        "domain_topic, seq_scope) VALUES ($1, $2, $3, $4, $5)",
	        5, params, NULL, err);
	if (rc != 0)
		return rc;
	return vox_pg_execp(pg, "vox_outbox_notify", "NOTIFY vox_outbox", 0,
	                    NULL, NULL, err);
}

int vox_event_emit_buf(vox_pg_t *pg, const char *type, const char *key,
                       const vox_buf_t *b, vox_error_t *err)
{
	const vox_event_kind_t *kind = vox_event_kind(type);
	int rc;

	if (kind == NULL)
		return vox_error_set(
		        err, VOX_ERR_INTERNAL, false,
		        "event type %s is not in vox_event's table", type);
	rc = vox_buf_check(b, type, err);

	if (rc != 0)
		return rc;
	return vox_event_outbox_add(pg, kind, key, vox_buf_str(b), err);
}

static bool event_type_ok(const char *type)
{
	if (*type == '\0' || strlen(type) > 128)
		return false;
	for (const char *c = type; *c; c++)
		if (!islower((unsigned char)*c) &&
		    !isdigit((unsigned char)*c) && *c != '.' && *c != '_' &&
		    *c != '-')
			return false;
	return true;
}

/* A required, non-empty string attribute of at most maxlen bytes. */
static int event_need_str(const json_t *ev, const char *name, size_t maxlen,
                          vox_error_t *err)
{
	const json_t *v = json_object_get(ev, name);

	if (v == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "missing attribute %s", name);
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > maxlen)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "attribute %s must be a string of 1..%zu "
		                     "bytes",
		                     name, maxlen);
	return 0;
}

static int event_optional_str(const json_t *ev, const char *name,
                              vox_error_t *err)
{
	const json_t *v = json_object_get(ev, name);

	if (v == NULL || json_is_null(v) || json_is_string(v))
		return 0;
	return vox_error_set(err, VOX_ERR_INVALID, false,
	                     "attribute %s must be a string", name);
}

int vox_event_parse(const char *payload, size_t len, json_t **event,
                    vox_error_t *err)
{
	json_t *ev;
	const json_t *data;
	int rc;

	*event = NULL;
	if (payload == NULL || len == 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "empty message");
	if (len > VOX_EVENT_MAX_BYTES)
		return vox_error_set(err, VOX_ERR_LIMIT, false,
		                     "message of %zu bytes exceeds %d", len,
		                     VOX_EVENT_MAX_BYTES);
	ev = vox_json_parse(payload, len, VOX_JSON_DEFAULT_DEPTH, err);
	if (ev == NULL)
		return err ? err->code : VOX_ERR_INVALID;
	if (!json_is_object(ev)) {
		rc = vox_error_set(err, VOX_ERR_INVALID, false,
		                   "message is not a JSON object");
		goto out_bad;
	}
	if ((rc = event_need_str(ev, "id", 200, err)) ||
	    (rc = event_need_str(ev, "source", 500, err)) ||
	    (rc = event_need_str(ev, "type", 128, err)) ||
	    (rc = event_need_str(ev, "specversion", 8, err)) ||
	    (rc = event_optional_str(ev, "time", err)) ||
	    (rc = event_optional_str(ev, "subject", err)) ||
	    (rc = event_optional_str(ev, "accountid", err)) ||
	    (rc = event_optional_str(ev, "traceparent", err)))
		goto out_bad;
	if (strcmp(vox_json_str(ev, "specversion"), "1.0") != 0) {
		rc = vox_error_set(err, VOX_ERR_INVALID, false,
		                   "specversion must be \"1.0\"");
		goto out_bad;
	}
	if (!event_type_ok(vox_json_str(ev, "type"))) {
		rc = vox_error_set(err, VOX_ERR_INVALID, false,
		                   "type must be lowercase [a-z0-9._-]");
		goto out_bad;
	}
	data = json_object_get(ev, "data");
	if (data == NULL || !json_is_object(data)) {
		rc = vox_error_set(err, VOX_ERR_INVALID, false,
		                   "data must be a JSON object");
		goto out_bad;
	}
	*event = ev;
	return 0;

out_bad:
	json_decref(ev);
	return rc;
}
