/*
 * libFuzzer target for vox_cdr (the records carriers push and files hold):
 * any JSON must be accepted or refused with a reason code, never a crash,
 * leak or sanitizer report. An accepted record makes an event that parses
 * back (strictly, and as the metering worker reads it) to the same record,
 * and its cost under a card of every increment kind is computed without
 * overflow reports.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vox_cdr.h"
#include "vox_rating.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static vox_rate_t rates[] = {
        {1, VOX_CDR_INBOUND_CALL, "", "", "", 8500, 0, 0, 60, 60},
        {2, VOX_CDR_OUTBOUND_CALL, "4", "", "", INT64_MAX / 100000, 0, 7, 1, 1},
        {3, VOX_CDR_OUTBOUND_CALL, "", "", "", 14000, 0, 0, 30, 6},
        {4, VOX_CDR_SMS_SENT, "", "", "", 0, 7900, 0, 60, 60},
};
static const vox_rate_card_t card = {"fuzz", "USD", 0, 0, true, rates, 4};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *rec =
	        json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	vox_cdr_t cdr, back, trusted;
	const char *reason = NULL;
	char ev[1024];
	vox_error_t err;
	vox_charge_t ch;
	json_t *root;

	if (rec == NULL)
		return 0;
	if (vox_cdr_parse(rec, 1795000000LL * 1000000, &cdr, &reason, &err) !=
	    0) {
		if (reason == NULL || err.message[0] == '\0')
			abort(); /* a refusal always says why */
		json_decref(rec);
		return 0;
	}
	if (vox_cdr_event(&cdr, "fuzz", "api", ev, sizeof(ev)) < 0)
		abort(); /* 1024 bytes always fit */
	root = json_loads(ev, 0, NULL);
	if (root == NULL ||
	    vox_cdr_parse(json_object_get(root, "data"), 0, &back, &reason,
	                  &err) != 0 ||
	    memcmp(&cdr, &back, sizeof(cdr)) != 0 ||
	    vox_cdr_parse_trusted(json_object_get(root, "data"), &trusted,
	                          &reason, &err) != 0 ||
	    memcmp(&cdr, &trusted, sizeof(cdr)) != 0 ||
	    vox_cdr_validate(json_object_get(root, "data"), &err) != 0)
		abort();
	if (vox_rate_cdr(&card, &cdr, "US", "local", &ch, &err) == 0 &&
	    ch.cost_micros < 0)
		abort();
	json_decref(root);
	json_decref(rec);
	return 0;
}
