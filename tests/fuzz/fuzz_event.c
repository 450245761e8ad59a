/*
 * libFuzzer target: what a worker does first with every Kafka message —
 * parse and check the CloudEvents envelope, then the canary's data
 * validator. Must never crash, leak or accept a non-object envelope.
 */
#include <stdint.h>
#include <stdlib.h>

#include "vox_canary.h"
#include "vox_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *ev = NULL;
	vox_error_t err;

	if (vox_event_parse((const char *)data, size, &ev, &err) == 0) {
		if (!json_is_object(ev))
			abort();
		vox_canary_validate(json_object_get(ev, "data"), &err);
		json_decref(ev);
	}
	return 0;
}
