/* vox_event: building and checking CloudEvents envelopes. */
#include "vox_event.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "vox_json.h"
#include "vox_uuid.h"

void vox_traceparent_new(char *out, size_t outlen)
{
	unsigned char raw[24];
	char hex[49];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		RAND_bytes(raw, sizeof(raw));
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	/* 00-<32 hex trace id>-<16 hex span id>-01 */
	snprintf(out, outlen, "00-%.32s-%.16s-01", hex, hex + 32);
}

json_t *vox_event_new(const char *type, const char *source, const char *subject,
                      const char *account_id, const char *traceparent,
                      json_t *data)
{
	char id[VOX_UUID_STRLEN], when[40], trace[64];
	json_t *ev = json_object();

	if (ev == NULL) {
		json_decref(data);
		return NULL;
	}
	vox_uuid7(id);
	vox_time_now_rfc3339(when, sizeof(when));
	if (traceparent == NULL) {
		vox_traceparent_new(trace, sizeof(trace));
		traceparent = trace;
	}
	json_object_set_new(ev, "specversion", json_string("1.0"));
	json_object_set_new(ev, "id", json_string(id));
	json_object_set_new(ev, "source", json_string(source));
	json_object_set_new(ev, "type", json_string(type));
	json_object_set_new(ev, "time", json_string(when));
	if (subject != NULL)
		json_object_set_new(ev, "subject", json_string(subject));
	json_object_set_new(ev, "datacontenttype",
	                    json_string("application/json"));
	json_object_set_new(ev, "accountid",
	                    account_id ? json_string(account_id) : json_null());
	json_object_set_new(ev, "traceparent", json_string(traceparent));
	json_object_set_new(ev, "data", data ? data : json_object());
	return ev;
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
