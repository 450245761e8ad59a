/*
 * libFuzzer target for what vox_carrier reads from the carrier: search and
 * order answers, error bodies and money strings. Any bytes must give a
 * result or a clean error, never a crash or sanitizer report, and every
 * string filled must be terminated inside its field.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vox_carrier.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void terminated(const char *field, size_t size)
{
	if (memchr(field, '\0', size) == NULL)
		abort();
}

static void search(const char *body, size_t len)
{
	vox_carrier_number_t numbers[4];
	vox_error_t err;
	int count = -1;

	if (vox_carrier_parse_search(body, len, numbers, 4, &count, &err) !=
	    0) {
		if (count != 0 || !err.retriable)
			abort();
		return;
	}
	if (count < 0 || count > 4)
		abort();
	for (int i = 0; i < count; i++) {
		terminated(numbers[i].e164, sizeof(numbers[i].e164));
		terminated(numbers[i].type, sizeof(numbers[i].type));
		terminated(numbers[i].region, sizeof(numbers[i].region));
		terminated(numbers[i].city, sizeof(numbers[i].city));
		terminated(numbers[i].state, sizeof(numbers[i].state));
		terminated(numbers[i].currency, sizeof(numbers[i].currency));
		if (numbers[i].features > 7 || numbers[i].e164[0] != '+')
			abort();
	}
}

static void order(const char *body, size_t len)
{
	static const char *const asked[] = {"+14155550123", "+14155550124",
	                                    "+14155550123"};
	vox_carrier_order_result_t results[3];
	vox_error_t err;

	vox_carrier_parse_order(body, len, asked, 3, results, &err);
	for (int i = 0; i < 3; i++) {
		terminated(results[i].carrier_id,
		           sizeof(results[i].carrier_id));
		terminated(results[i].error, sizeof(results[i].error));
		if (strcmp(results[i].e164, asked[i]) != 0 ||
		    (results[i].ok && results[i].carrier_id[0] == '\0'))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	long long micros;
	vox_error_t err;
	char *body;
	size_t len;

	if (size == 0)
		return 0;
	len = size - 1;
	body = malloc(len + 1);
	if (body == NULL)
		return 0;
	memcpy(body, data + 1, len);
	body[len] = '\0';
	switch (data[0] % 4) {
	case 0:
		search(body, len);
		break;
	case 1:
		order(body, len);
		break;
	case 2:
		vox_carrier_http_error(400 + data[0] % 200, body, len, &err);
		terminated(err.message, sizeof(err.message));
		break;
	default:
		if (vox_carrier_money_parse(body, &micros) == 0 &&
		    strchr(body, '.') == NULL && micros % 1000000 != 0)
			abort();
		break;
	}
	free(body);
	return 0;
}
