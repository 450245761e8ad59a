/*
 * libFuzzer target for vox_template_render(): any bytes as a template, with
 * HTML escaping on and off and a small max_len, over fixed data of every
 * JSON type, must render or fail cleanly (VOX_ERR_INVALID with a message),
 * never crash or trip a sanitizer; what renders is within max_len, and
 * vox_template_check() agrees on whether the template parses.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vox_template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *fixed_data(void)
{
	static json_t *root;

	if (root == NULL)
		root = json_loads("{\"s\":\"<a href='x'>&</a>\",\"n\":42,"
		                  "\"r\":1.5,\"t\":true,\"f\":false,\"z\":null,"
		                  "\"l\":[1,\"two\",{\"s\":\"three\"},[4]],"
		                  "\"o\":{\"s\":\"inner\",\"l\":[]}}",
		                  0, NULL);
	return root;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *tmpl;
	vox_error_t err;
	bool html = size > 0 && (data[0] & 1);
	size_t max_len = size > 0 && (data[0] & 2) ? 64 : 0;

	if (size > 4096)
		return 0;
	tmpl = malloc(size + 1);
	if (tmpl == NULL)
		return 0;
	memcpy(tmpl, data, size);
	tmpl[size] = '\0';
	memset(&err, 0, sizeof(err));
	char *out =
	        vox_template_render(tmpl, fixed_data(), html, max_len, &err);

	if (out != NULL) {
		if (max_len != 0 && strlen(out) > max_len)
			abort();
		if (!vox_template_check(tmpl, NULL))
			abort();
		free(out);
	} else if (err.code != VOX_ERR_INVALID || err.message[0] == '\0') {
		abort();
	}
	free(tmpl);
	return 0;
}
