/*
 * libFuzzer target for vox_csv (the cdr-import reader): any input must give
 * records or clean errors, never a crash, leak or sanitizer report; line
 * numbers never go backwards, and every record read, written again with
 * vox_csv_write_field, reads back as the same fields.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const vox_csv_t *csv)
{
	size_t n = vox_csv_nfields(csv), len = 0;
	char *text = NULL;
	FILE *out = open_memstream(&text, &len), *in;
	vox_csv_t *again;
	vox_error_t err;

	/* A first record of our own: a field starting with a BOM must not be
	 * at the start of the stream, where the reader drops one. */
	fputs("x\n", out);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', out);
		vox_csv_write_field(out, vox_csv_field(csv, i, NULL));
	}
	fputc('\n', out);
	fclose(out);
	in = fmemopen(text, len, "rb");
	again = vox_csv_new(in, 0);
	if (vox_csv_next(again, &err) != 1)
		abort();
	/* One empty field is a blank line, which is no record. */
	if (!(n == 1 && vox_csv_field(csv, 0, NULL)[0] == '\0')) {
		if (vox_csv_next(again, &err) != 1 ||
		    vox_csv_nfields(again) != n)
			abort();
		for (size_t i = 0; i < n; i++)
			if (strcmp(vox_csv_field(again, i, NULL),
			           vox_csv_field(csv, i, NULL)) != 0)
				abort();
	}
	vox_csv_destroy(again);
	fclose(in);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *in;
	vox_csv_t *csv;
	vox_error_t err;
	long line = 0;
	int rc;

	if (size == 0)
		return 0;
	in = fmemopen((void *)data, size, "rb");
	if (in == NULL)
		return 0;
	csv = vox_csv_new(in, 4096);
	while ((rc = vox_csv_next(csv, &err)) != 0) {
		if (vox_csv_line(csv) < line)
			abort();
		line = vox_csv_line(csv);
		if (rc < 0) {
			if (strlen(err.message) == 0)
				abort();
			continue;
		}
		round_trip(csv);
	}
	vox_csv_destroy(csv);
	fclose(in);
	return 0;
}
