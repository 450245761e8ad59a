/*
 * Tests of vox_csv (the RFC 4180 reader behind producers/cdr-import): each
 * tests/data/csv/<case>.csv is read and rendered one record a line as
 * "<line> <nfields>: f1|f2|..." (CR and LF shown as \r \n) or
 * "<line> error: <code>", and compared with <case>.expected. Run from the
 * repository root.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_csv.h"

#define DATA_DIR "tests/data/csv/"

static void render_field(FILE *out, const char *field)
{
	for (const char *p = field; *p; p++) {
		if (*p == '\n')
			fputs("\\n", out);
		else if (*p == '\r')
			fputs("\\r", out);
		else
			fputc(*p, out);
	}
}

/* Everything the reader returns for in, rendered; caller frees. */
static char *render(FILE *in, size_t max_record)
{
	vox_csv_t *csv = vox_csv_new(in, max_record);
	vox_error_t err;
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	int rc;

	cr_assert_not_null(csv);
	while ((rc = vox_csv_next(csv, &err)) != 0) {
		if (rc < 0) {
			fprintf(out, "%ld error: %s\n", vox_csv_line(csv),
			        vox_err_code_name(err.code));
			continue;
		}
		fprintf(out, "%ld %zu: ", vox_csv_line(csv),
		        vox_csv_nfields(csv));
		for (size_t i = 0; i < vox_csv_nfields(csv); i++) {
			if (i > 0)
				fputc('|', out);
			render_field(out, vox_csv_field(csv, i, NULL));
		}
		fputc('\n', out);
	}
	vox_csv_destroy(csv);
	fclose(out);
	return text;
}

static char *slurp(const char *path)
{
	FILE *file = fopen(path, "rb");
	char *text;
	long size;

	cr_assert_not_null(file, "cannot open %s (run from the repo root)",
	                   path);
	fseek(file, 0, SEEK_END);
	size = ftell(file);
	rewind(file);
	text = calloc(1, (size_t)size + 1);
	cr_assert_eq(fread(text, 1, (size_t)size, file), (size_t)size);
	fclose(file);
	return text;
}

static void check_case(const char *name)
{
	char path[256];
	char *got, *want;
	FILE *in;

	snprintf(path, sizeof(path), DATA_DIR "%s.csv", name);
	in = fopen(path, "rb");
	cr_assert_not_null(in, "cannot open %s", path);
	got = render(in, 0);
	fclose(in);
	snprintf(path, sizeof(path), DATA_DIR "%s.expected", name);
	want = slurp(path);
	cr_assert_str_eq(got, want, "%s:\n got:\n%s want:\n%s", name, got,
	                 want);
	free(got);
	free(want);
}

Test(csv, quotes_doubled_inside_quoted_fields)
{
	check_case("quotes");
}
Test(csv, embedded_comma_and_newline_keep_the_first_line_number)
{
	check_case("embedded");
}
Test(csv, crlf_line_ends)
{
	check_case("crlf");
}
Test(csv, empty_cells)
{
	check_case("empty_cells");
}
Test(csv, last_record_without_newline)
{
	check_case("no_final_newline");
}
Test(csv, blank_lines_are_skipped)
{
	check_case("blank_lines");
}
Test(csv, malformed_records_are_reported_and_reading_goes_on)
{
	check_case("malformed");
}
Test(csv, utf8_bom_is_dropped)
{
	check_case("bom");
}
Test(csv, lone_cr_is_data)
{
	check_case("lone_cr");
}

Test(csv, record_over_the_limit_is_refused_then_reading_goes_on)
{
	char text[] = "0123456789,0123456789\nshort\n";
	FILE *in = fmemopen(text, strlen(text), "rb");
	char *got = render(in, 16);

	cr_assert_str_eq(got, "1 error: limit_exceeded\n2 1: short\n");
	free(got);
	fclose(in);
}

Test(csv, nul_byte_is_malformed)
{
	char text[] = "a\0b,c\nd\n";
	FILE *in = fmemopen(text, sizeof(text) - 1, "rb");
	char *got = render(in, 0);

	cr_assert_str_eq(got, "1 error: invalid_argument\n2 1: d\n");
	free(got);
	fclose(in);
}

Test(csv, written_fields_read_back)
{
	const char *fields[] = {"plain", "with, comma", "with \"quote\"",
	                        "two\r\nlines", ""};
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	vox_csv_t *csv;
	vox_error_t err;
	FILE *in;

	for (size_t i = 0; i < 5; i++) {
		if (i)
			fputc(',', out);
		vox_csv_write_field(out, fields[i]);
	}
	fputs("\r\n", out);
	fclose(out);
	in = fmemopen(text, len, "rb");
	csv = vox_csv_new(in, 0);
	cr_assert_eq(vox_csv_next(csv, &err), 1);
	cr_assert_eq(vox_csv_nfields(csv), 5);
	for (size_t i = 0; i < 5; i++)
		cr_assert_str_eq(vox_csv_field(csv, i, NULL), fields[i]);
	cr_assert_eq(vox_csv_next(csv, &err), 0);
	vox_csv_destroy(csv);
	fclose(in);
	free(text);
}
