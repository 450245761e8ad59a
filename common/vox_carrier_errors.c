/*
 * vox_carrier_errors: the carrier's error bodies ({"errors":[{"code",
 * "title","detail"}]}) read into a reason, and a non-2xx answer into a
 * vox_error (the mapping itself is vox_upstream's).
 */
#include <stdio.h>

#include "vox_carrier_internal.h"
#include "vox_json.h"

int vox_carrier_unreadable(vox_error_t *err, const char *what, const char *why)
{
	return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
	                     "carrier %s answer unreadable: %s", what, why);
}

void vox_carrier_errors_text(const json_t *errors, char *out, size_t size)
{
	const json_t *first = json_array_get(errors, 0);
	const char *text = vox_json_str(first, "detail");
	const char *code = vox_json_str(first, "code");

	if (text == NULL || text[0] == '\0')
		text = vox_json_str(first, "title");
	if (text == NULL)
		text = "";
	if (code != NULL && code[0] != '\0')
		snprintf(out, size, "%s%scode %s", text,
		         text[0] != '\0' ? ", " : "", code);
	else
		snprintf(out, size, "%s", text);
}

void vox_carrier_describe(const char *body, size_t len, char *out, size_t size)
{
	json_t *root = NULL;

	if (body != NULL && len > 0)
		root = vox_json_parse(body, len, VOX_JSON_DEFAULT_DEPTH, NULL);
	vox_carrier_errors_text(json_object_get(root, "errors"), out, size);
	json_decref(root);
}

int vox_carrier_http_error(long status, const char *body, size_t len,
                           vox_error_t *err)
{
	char reason[200] = "";

	vox_carrier_describe(body, len, reason, sizeof(reason));
	return vox_upstream_status_error(status, reason, err);
}
