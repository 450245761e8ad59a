/*
 * vox_carrier_internal: what the vox_carrier_*.c files share and callers
 * of vox_carrier.h never see: the handle, resource paths, the carrier's
 * error bodies and the bounded copies into fixed fields.
 */
#ifndef VOX_CARRIER_INTERNAL_H
#define VOX_CARRIER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vox_carrier.h"
#include "vox_upstream.h"

struct vox_carrier {
	vox_upstream_t *up; /* owned */
	int backoff_ms;     /* first pause between pending order polls */
	int order_wait_ms;
};

/* Runs req on the carrier's upstream with path and body (both stolen; a
 * NULL path, or a NULL body when with_body, is ENOMEM from building
 * them). resp is always filled: free it with vox_upstream_response_free();
 * on 0 it holds the 2xx answer. */
int vox_carrier_send(vox_carrier_t *c, vox_upstream_request_t *req, char *path,
                     bool with_body, json_t *body,
                     vox_upstream_response_t *resp, vox_error_t *err);

/* "/v2/<collection>/<escaped id>", or NULL on ENOMEM; free(). */
char *vox_carrier_resource_path(const char *collection, const char *id);

/* The upstream's describe hook: the reason in a carrier error body. */
void vox_carrier_describe(const char *body, size_t len, char *out, size_t size);

/* "detail, code X" from the first of an "errors" array, or "". */
void vox_carrier_errors_text(const json_t *errors, char *out, size_t size);

/* VOX_ERR_UNAVAILABLE, retriable: "carrier <what> answer unreadable". */
int vox_carrier_unreadable(vox_error_t *err, const char *what, const char *why);

/* Copies src when it fits in dst[size]. */
bool vox_carrier_copy_fits(char *dst, size_t size, const char *src);
/* Copies src cut to size-1 bytes without splitting a UTF-8 sequence. */
void vox_carrier_copy_cut(char *dst, size_t size, const char *src);
/* "+" and 2 to 15 digits, the first not 0. */
bool vox_carrier_e164_shape(const char *text);

#endif
