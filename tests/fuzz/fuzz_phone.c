/*
 * libFuzzer target for vox_phone_parse(): any bytes, with and without a
 * default region, must give a number or a clean VOX_ERR_INVALID, never a
 * crash or sanitizer report. The first byte picks the default region.
 * What parses must be canonical: its e164 passes vox_phone_is_e164() and
 * parses back to the same number.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vox_phone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const regions[] = {NULL, "US", "GB", "DE", "FR",
                                      "AU", "CA", "BR", "IN", "it",
                                      "XX", "ZZ", "",   "U",  "001"};

static void check(const char *text, const char *region)
{
	vox_phone_t phone, again;
	vox_error_t err;

	memset(&err, 0, sizeof(err));
	if (vox_phone_parse(text, region, &phone, &err) != 0) {
		if (err.code != VOX_ERR_INVALID || err.retriable ||
		    strlen(err.message) == 0 || phone.e164[0] != '\0')
			abort();
		return;
	}
	if (!vox_phone_is_e164(phone.e164) ||
	    vox_phone_parse(phone.e164, NULL, &again, &err) != 0 ||
	    memcmp(&phone, &again, sizeof(phone)) != 0)
		abort();
	if (vox_phone_country_code(phone.region) == 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *region;
	char *text;

	if (size == 0)
		return 0;
	region = regions[data[0] % (sizeof(regions) / sizeof(regions[0]))];
	text = malloc(size);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	check(text, region);
	vox_phone_is_e164(text);
	vox_phone_region_supported(text);
	vox_phone_country_code(text);
	free(text);
	return 0;
}
