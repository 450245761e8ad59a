/*
 * vox_routing_doc: reading a number's stored routing section
 * (number_configurations.call_forwarding, docs/ROUTING.md) the one way the
 * ingress's GET, its routing table and the worker's carrier push all read
 * it. The document is the API's {primary_destination, failover_destination,
 * business_hours_destination, after_hours_destination, timeout_s, enabled},
 * or activation's older {"forward_to": ...}, which reads as an enabled
 * primary destination with the default timeout. An absent "enabled" means
 * enabled; an absent "timeout_s" the default.
 */
#ifndef VOX_ROUTING_DOC_H
#define VOX_ROUTING_DOC_H

#include <jansson.h>
#include <stdbool.h>

#define VOX_ROUTING_DEFAULT_TIMEOUT_S 30

typedef struct vox_routing_doc {
	bool configured; /* a non-empty object */
	bool enabled;
	bool legacy; /* activation's {"forward_to"} */
	int timeout_s;
	/* borrowed from the document; NULL when absent or not a string */
	const char *primary, *failover, *open_dest, *closed_dest;
} vox_routing_doc_t;

void vox_routing_doc_read(const json_t *doc, vox_routing_doc_t *out);

#endif
