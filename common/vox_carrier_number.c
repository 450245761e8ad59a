/*
 * vox_carrier_number: a number the carrier has given us, by its carrier
 * id: configure (PATCH: active or disabled, call forwarding) and release
 * (DELETE; a 404 on a retry means the first attempt went through).
 */
#include "vox_carrier_internal.h"
#include "vox_json.h"

static int id_check(const vox_carrier_t *c, const char *what,
                    const char *carrier_id, vox_error_t *err)
{
	if (c == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier %s: no carrier", what);
	/* it came from vox_carrier_order_result_t.carrier_id[64] */
	if (carrier_id == NULL || !vox_upstream_header_safe(carrier_id, 63))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier %s: carrier id missing, too long "
		                     "or not text",
		                     what);
	return 0;
}

int vox_carrier_configure(vox_carrier_t *c, const char *carrier_id, bool active,
                          const char *forward_to, vox_error_t *err)
{
	vox_upstream_request_t req = {.endpoint = "configure",
	                              .method = "PATCH"};
	vox_upstream_response_t resp;
	json_t *forwarding, *body;
	int rc;

	rc = id_check(c, "configure", carrier_id, err);
	if (rc != 0)
		return rc;
	if (forward_to != NULL && !vox_upstream_header_safe(forward_to, 32))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier configure: forward_to is empty, "
		                     "too long or not text");
	if (forward_to != NULL)
		forwarding = json_pack(
		        "{s:b,s:s,s:s}", "call_forwarding_enabled", 1,
		        "forwards_to", forward_to, "forwarding_type", "always");
	else
		forwarding = json_pack("{s:b,s:n}", "call_forwarding_enabled",
		                       0, "forwards_to");
	body = json_pack("{s:s,s:o?}", "status", active ? "active" : "disabled",
	                 "call_forwarding", forwarding);
	rc = vox_carrier_send(
	        c, &req, vox_carrier_resource_path("phone_numbers", carrier_id),
	        true, body, &resp, err);
	vox_upstream_response_free(&resp);
	return rc;
}

int vox_carrier_release(vox_carrier_t *c, const char *carrier_id,
                        vox_error_t *err)
{
	vox_upstream_request_t req = {.endpoint = "release",
	                              .method = "DELETE",
	                              .flags = VOX_UPSTREAM_GONE_IS_DONE};
	vox_upstream_response_t resp;
	int rc;

	rc = id_check(c, "release", carrier_id, err);
	if (rc != 0)
		return rc;
	rc = vox_carrier_send(
	        c, &req, vox_carrier_resource_path("phone_numbers", carrier_id),
	        false, NULL, &resp, err);
	vox_upstream_response_free(&resp);
	return rc;
}
