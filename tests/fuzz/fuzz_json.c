/*
 * libFuzzer target for vox_json_parse(): any input must give a value or a
 * clean error, never a crash, leak or sanitizer report. A parsed value is
 * dumped and parsed again to exercise the round trip too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vox_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vox_error_t err;
	json_t *value, *again;
	char *text;

	value = vox_json_parse((const char *)data, size, VOX_JSON_DEFAULT_DEPTH,
	                       &err);
	if (value == NULL) {
		/* a message must always be there and terminated */
		if (strlen(err.message) == 0)
			abort();
		return 0;
	}
	text = vox_json_dump(value);
	if (text != NULL) {
		/* what we print we must read back */
		again = vox_json_parse(text, strlen(text),
		                       VOX_JSON_DEFAULT_DEPTH, &err);
		if (again == NULL || !json_equal(value, again))
			abort();
		json_decref(again);
		free(text);
	}
	json_decref(value);
	return 0;
}
