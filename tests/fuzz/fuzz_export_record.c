/*
 * libFuzzer target for the exporter's record scan (workers/exporter/
 * layout.c: exp_record_parse, a hand-written JSON check that finds the
 * CloudEvents time). Any bytes give a record or a clean refusal, never a
 * crash or sanitizer report; and whatever jansson takes as a JSON object
 * (short enough not to reach the scan's depth limit, no NUL byte) the
 * scan takes too.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* the exporter's layout.c is a program's, not the common library's */
#include "../../workers/exporter/layout.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	exp_record_t rec;
	vox_error_t err;
	json_t *doc;
	int rc = exp_record_parse((const char *)data, size, 1000, &rec, &err);

	if (rc == 0) {
		char key[EXP_KEY_MAX];

		if (rec.line == NULL || rec.line_len == 0 ||
		    memchr(rec.line, '\n', rec.line_len) != NULL)
			abort();
		/* an accepted record's object can always be named (else its
		 * flush could never succeed: a poison message) */
		if (exp_object_key("vox.t", rec.hour, 0, 0, key, sizeof(key),
		                   &err) != 0)
			abort();
		free(rec.owned);
	} else if (err.message[0] == '\0') {
		abort();
	}
	/* jansson 2.14 takes a NUL byte between tokens as blank; the scan
	 * (rightly) does not: no comparison for such input */
	if (memchr(data, '\0', size) != NULL)
		return 0;
	doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
	                 NULL);
	if (doc != NULL && json_is_object(doc) && size < 400 && rc != 0)
		abort(); /* jansson's object, refused by the scan */
	json_decref(doc);
	return 0;
}
