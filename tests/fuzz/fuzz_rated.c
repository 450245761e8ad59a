/*
 * libFuzzer target for the batch -> vox.usage.rated path
 * (vox_usage_rated_event, which the metering worker calls for every 500
 * records). The input is a JSON array of records as they arrive on
 * vox.cdr.raw; each one the worker's parser (vox_cdr_parse_trusted) takes
 * is priced from the fuzzer's numbers and put in the event. The event must
 * always be built, parse as JSON, pass the envelope and data checks, and
 * give back every record's strings and numbers unchanged. Inputs that are
 * not JSON are split at newlines into raw strings instead, to exercise the
 * escaping of anything (invalid UTF-8 may be refused, nothing else).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_buf.h"
#include "vox_event.h"
#include "vox_usage_event.h"
#include "vox_uuid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ACCOUNT "01a20f52-53f8-73dc-941d-e25bb75cb2ca"

static vox_cdr_t cdrs[VOX_USAGE_RATED_MAX];
static char carriers[VOX_USAGE_RATED_MAX][VOX_CARRIER_NAME_MAX + 1];
static char ids[VOX_USAGE_RATED_MAX][VOX_UUID_STRLEN];
static vox_rated_rec_t recs[VOX_USAGE_RATED_MAX];

/* The event in b parsed back: every record as it went in. */
static void check_back(const vox_buf_t *b, size_t n, bool validate)
{
	json_t *ev = NULL, *data, *list;
	vox_error_t err;

	if (vox_event_parse(vox_buf_str(b), vox_buf_len(b), &ev, &err) != 0)
		abort();
	data = json_object_get(ev, "data");
	list = json_object_get(data, "records");
	if (json_array_size(list) != n ||
	    (validate && vox_usage_rated_validate(data, &err) != 0))
		abort();
	for (size_t i = 0; i < n; i++) {
		const json_t *r = json_array_get(list, i);

		if (strcmp(json_string_value(
		                   json_object_get(r, "carrier_cdr_id")),
		           recs[i].carrier_cdr_id) != 0 ||
		    strcmp(json_string_value(json_object_get(r, "carrier")),
		           recs[i].carrier) != 0 ||
		    strcmp(json_string_value(json_object_get(r, "number")),
		           recs[i].number) != 0 ||
		    json_integer_value(json_object_get(r, "cost_micros")) !=
		            recs[i].cost_micros ||
		    json_integer_value(json_object_get(r, "billable_s")) !=
		            recs[i].billable_s)
			abort();
	}
	json_decref(ev);
}

/* Records from a JSON array: what the worker would rate. */
static size_t from_json(const json_t *root)
{
	const char *reason;
	vox_error_t err;
	size_t n = 0, i;
	json_t *rec;

	json_array_foreach(root, i, rec)
	{
		const char *carrier =
		        json_string_value(json_object_get(rec, "carrier"));

		if (n == VOX_USAGE_RATED_MAX)
			break;
		if (vox_cdr_parse_trusted(rec, &cdrs[n], &reason, &err) != 0)
			continue;
		snprintf(carriers[n], sizeof(carriers[n]), "%s",
		         vox_carrier_name_valid(carrier) ? carrier : "fuzz");
		vox_uuid7(ids[n]);
		recs[n] = (vox_rated_rec_t){
		        .usage_id = ids[n],
		        .carrier = carriers[n],
		        .carrier_cdr_id = cdrs[n].id,
		        .number = cdrs[n].number,
		        .type = cdrs[n].type,
		        .started_us = cdrs[n].started_us,
		        .billable_s = cdrs[n].duration_s,
		        .units = cdrs[n].segments,
		        .cost_micros =
		                (int64_t)cdrs[n].duration_s * 1000000007LL,
		};
		n++;
	}
	return n;
}

/* Raw strings: each line in turn an id, a carrier, a number. */
static size_t from_lines(char *text)
{
	size_t n = 0;
	char *line = text, *next;

	for (; line != NULL && n < VOX_USAGE_RATED_MAX; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		vox_uuid7(ids[n]);
		recs[n] = (vox_rated_rec_t){.usage_id = ids[n],
		                            .carrier_cdr_id = line,
		                            .carrier = line,
		                            .number = line,
		                            .type = (vox_cdr_type_t)(n % 4),
		                            .started_us = (int64_t)n * 999,
		                            .billable_s = (int)n,
		                            .cost_micros = INT64_MAX / 1000};
		n++;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = json_loadb((const char *)data, size, 0, NULL);
	bool parsed = json_is_array(root);
	char *text = NULL;
	vox_buf_t b;
	size_t n;
	int rc;

	if (parsed) {
		n = from_json(root);
	} else {
		text = malloc(size + 1);
		memcpy(text, data, size);
		text[size] = '\0';
		n = from_lines(text);
	}
	vox_buf_init(&b, VOX_EVENT_MAX_BYTES);
	if (n > 0) {
		rc = vox_usage_rated_event(&b, ACCOUNT, "USD", NULL, recs, n);
		if (parsed && rc != 0)
			abort(); /* parsed records always make an event */
		if (rc == 0)
			check_back(&b, n, parsed);
		else if (rc != VOX_ERR_INVALID && rc != VOX_ERR_LIMIT)
			abort();
	}
	vox_buf_free(&b);
	free(text);
	json_decref(root);
	return 0;
}
