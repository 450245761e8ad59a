/*
 * vox_carrier_settings: a number's call forwarding pushed to the carrier
 * as its voice settings (PATCH /v2/phone_numbers/{id}/voice), with the
 * version of our configuration it comes from. The carrier keeps the
 * highest version it was sent and refuses an older one (409, code 10020,
 * errors[0].meta.current_version): for us that is done, a newer version
 * is already there. Idempotency-Key "<number id>:<version>".
 */
#include <stdio.h>
#include <stdlib.h>

#include "vox_carrier_internal.h"
#include "vox_json.h"

/* The version in an answer: data.settings_version (2xx) or
 * errors[0].meta.current_version (409); -1 when absent. */
static long long held_version(const vox_upstream_response_t *resp)
{
	json_t *doc, *v = NULL;
	long long out = -1;

	if (resp->body == NULL)
		return -1;
	doc = vox_json_parse(resp->body, resp->len, 8, NULL);
	if (doc == NULL)
		return -1;
	if (resp->status == 409)
		v = json_object_get(
		        json_object_get(
		                json_array_get(json_object_get(doc, "errors"),
		                               0),
		                "meta"),
		        "current_version");
	else
		v = json_object_get(json_object_get(doc, "data"),
		                    "settings_version");
	if (json_is_integer(v))
		out = json_integer_value(v);
	json_decref(doc);
	return out;
}

static int settings_check(const vox_carrier_t *c, const char *carrier_id,
                          const char *number_id, int version,
                          const vox_carrier_forwarding_t *fwd, vox_error_t *err)
{
	if (c == NULL || fwd == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier voice: no carrier or forwarding");
	if (carrier_id == NULL || !vox_upstream_header_safe(carrier_id, 63))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier voice: carrier id missing, too "
		                     "long or not text");
	if (number_id == NULL || !vox_upstream_header_safe(number_id, 64))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier voice: number id missing");
	if (version < 1)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier voice: version %d < 1", version);
	if (fwd->enabled && (fwd->forwards_to == NULL ||
	                     !vox_upstream_header_safe(fwd->forwards_to, 255)))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier voice: forwarding enabled "
		                     "without a destination");
	return 0;
}

int vox_carrier_push_forwarding(vox_carrier_t *c, const char *carrier_id,
                                const char *number_id, int version,
                                const vox_carrier_forwarding_t *fwd,
                                long long *carrier_version, vox_error_t *err)
{
	vox_upstream_request_t req = {.endpoint = "voice", .method = "PATCH"};
	vox_upstream_response_t resp;
	char key[96], *path = NULL;
	json_t *body = NULL;
	long long held;
	int rc;

	*carrier_version = -1;
	rc = settings_check(c, carrier_id, number_id, version, fwd, err);
	if (rc != 0)
		return rc;
	snprintf(key, sizeof(key), "%s:%d", number_id, version);
	req.idempotency_key = key;
	body = json_pack("{s:i,s:{s:b,s:s?,s:s}}", "settings_version", version,
	                 "call_forwarding", "call_forwarding_enabled",
	                 fwd->enabled ? 1 : 0, "forwards_to",
	                 fwd->enabled ? fwd->forwards_to : NULL,
	                 "forwarding_type",
	                 fwd->on_failure ? "on_failure" : "always");
	path = vox_carrier_resource_path("phone_numbers", carrier_id);
	if (path != NULL) {
		char *voice = NULL;

		if (asprintf(&voice, "%s/voice", path) < 0)
			voice = NULL;
		free(path);
		path = voice;
	}
	rc = vox_carrier_send(c, &req, path, true, body, &resp, err);
	held = held_version(&resp);
	if (rc == 0 ||
	    (rc == VOX_ERR_CONFLICT && resp.status == 409 && held >= version)) {
		/* a 2xx, or refused because a newer version is there */
		*carrier_version = held >= 0 ? held : version;
		rc = 0;
	}
	vox_upstream_response_free(&resp);
	return rc;
}
