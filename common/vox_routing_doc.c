/* vox_routing_doc: the stored routing section, read one way. */
#include "vox_routing_doc.h"

#include <string.h>

#include "vox_json.h"

void vox_routing_doc_read(const json_t *doc, vox_routing_doc_t *out)
{
	const json_t *enabled = json_object_get(doc, "enabled");
	const json_t *timeout = json_object_get(doc, "timeout_s");

	memset(out, 0, sizeof(*out));
	out->timeout_s = VOX_ROUTING_DEFAULT_TIMEOUT_S;
	out->configured = json_is_object(doc) && json_object_size(doc) > 0;
	if (!out->configured)
		return;
	if (json_object_get(doc, "primary_destination") == NULL &&
	    vox_json_str(doc, "forward_to") != NULL) {
		out->legacy = true;
		out->enabled = true;
		out->primary = vox_json_str(doc, "forward_to");
		return;
	}
	out->primary = vox_json_str(doc, "primary_destination");
	out->failover = vox_json_str(doc, "failover_destination");
	out->open_dest = vox_json_str(doc, "business_hours_destination");
	out->closed_dest = vox_json_str(doc, "after_hours_destination");
	out->enabled = enabled == NULL || json_is_true(enabled);
	if (json_is_integer(timeout))
		out->timeout_s = (int)json_integer_value(timeout);
}
