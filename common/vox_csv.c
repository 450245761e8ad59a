/* vox_csv: streaming RFC 4180 reader and field writer. */
#include "vox_csv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct vox_csv {
	FILE *in;
	size_t max_record;
	char *buf; /* the fields, each NUL-terminated */
	size_t len, cap;
	size_t *starts; /* offset of each field in buf */
	size_t nfields, fcap;
	int pushback[3];
	int npushback;
	long line; /* line of the next byte to read */
	long record_line;
	long long offset;
	int last; /* the byte get() returned last */
	bool started;
};

vox_csv_t *vox_csv_new(FILE *in, size_t max_record)
{
	vox_csv_t *csv = calloc(1, sizeof(*csv));

	if (csv == NULL)
		return NULL;
	csv->in = in;
	csv->max_record = max_record ? max_record : 1024 * 1024;
	csv->cap = 4096;
	csv->fcap = 16;
	csv->buf = malloc(csv->cap);
	csv->starts = malloc(csv->fcap * sizeof(*csv->starts));
	csv->line = 1;
	if (csv->buf == NULL || csv->starts == NULL) {
		vox_csv_destroy(csv);
		return NULL;
	}
	return csv;
}

void vox_csv_destroy(vox_csv_t *csv)
{
	if (csv == NULL)
		return;
	free(csv->buf);
	free(csv->starts);
	free(csv);
}

static int get(vox_csv_t *csv)
{
	int c;

	if (csv->npushback > 0)
		c = csv->pushback[--csv->npushback];
	else
		c = getc_unlocked(csv->in);
	csv->last = c;
	if (c == EOF)
		return EOF;
	csv->offset++;
	if (c == '\n')
		csv->line++;
	return c;
}

static void unget(vox_csv_t *csv, int c)
{
	if (c == EOF)
		return;
	csv->pushback[csv->npushback++] = c;
	csv->offset--;
	if (c == '\n')
		csv->line--;
}

/* Drops a UTF-8 byte order mark at the start of the input. */
static void skip_bom(vox_csv_t *csv)
{
	int b0 = get(csv), b1, b2;

	if (b0 != 0xEF) {
		unget(csv, b0);
		return;
	}
	b1 = get(csv);
	b2 = b1 == 0xBB ? get(csv) : EOF;
	if (b1 == 0xBB && b2 == 0xBF)
		return;
	/* Not a BOM: give the bytes back in order. */
	unget(csv, b2);
	unget(csv, b1);
	unget(csv, b0);
}

static int append(vox_csv_t *csv, int c)
{
	if (csv->len >= csv->max_record)
		return VOX_ERR_LIMIT;
	if (csv->len + 1 >= csv->cap) {
		size_t cap = csv->cap * 2;
		char *grown = realloc(csv->buf, cap);

		if (grown == NULL)
			return VOX_ERR_NOMEM;
		csv->buf = grown;
		csv->cap = cap;
	}
	csv->buf[csv->len++] = (char)c;
	return 0;
}

static int field_begin(vox_csv_t *csv)
{
	if (csv->nfields == csv->fcap) {
		size_t fcap = csv->fcap * 2;
		size_t *grown = realloc(csv->starts, fcap * sizeof(*grown));

		if (grown == NULL)
			return VOX_ERR_NOMEM;
		csv->starts = grown;
		csv->fcap = fcap;
	}
	csv->starts[csv->nfields++] = csv->len;
	return 0;
}

/* Skips the rest of a malformed record's physical line. */
static int malformed(vox_csv_t *csv, int code, vox_error_t *err,
                     const char *why)
{
	int c = csv->last;

	while (c != EOF && c != '\n')
		c = get(csv);
	csv->nfields = 0;
	csv->len = 0;
	return vox_error_set(err, code, false, "line %ld: %s", csv->record_line,
	                     why);
}

/* Reads a quoted field (the opening quote is consumed); returns the byte
 * after the closing quote in *next. */
static int read_quoted(vox_csv_t *csv, int *next, const char **why)
{
	int c, rc;

	for (;;) {
		c = get(csv);
		if (c == EOF) {
			*why = "quoted field not closed at the end of the file";
			return VOX_ERR_INVALID;
		}
		if (c == '\0') {
			*why = "NUL byte in a field";
			return VOX_ERR_INVALID;
		}
		if (c == '"') {
			c = get(csv);
			if (c != '"') {
				*next = c;
				return 0;
			}
		}
		rc = append(csv, c);
		if (rc != 0) {
			*why = "record too long";
			return rc;
		}
	}
}

/* Reads an unquoted field starting with c; returns the separator or line
 * end that ended it in *next (',' '\n' or EOF; CRLF gives '\n'). */
static int read_plain(vox_csv_t *csv, int c, int *next, const char **why)
{
	int rc;

	for (;;) {
		if (c == ',' || c == '\n' || c == EOF) {
			*next = c;
			return 0;
		}
		if (c == '\r') {
			int after = get(csv);

			if (after == '\n') {
				*next = '\n';
				return 0;
			}
			unget(csv, after);
		}
		if (c == '\0') {
			*why = "NUL byte in a field";
			return VOX_ERR_INVALID;
		}
		rc = append(csv, c);
		if (rc != 0) {
			*why = "record too long";
			return rc;
		}
		c = get(csv);
	}
}

int vox_csv_next(vox_csv_t *csv, vox_error_t *err)
{
	const char *why = "";
	int c, next = EOF, rc;

	if (!csv->started) {
		csv->started = true;
		skip_bom(csv);
	}
	csv->nfields = 0;
	csv->len = 0;
	do { /* blank lines are no records */
		csv->record_line = csv->line;
		c = get(csv);
		if (c == '\r') {
			int after = get(csv);

			if (after == '\n')
				c = '\n';
			else
				unget(csv, after);
		}
	} while (c == '\n');
	if (c == EOF)
		return 0;
	for (;;) {
		if (field_begin(csv) != 0)
			return malformed(csv, VOX_ERR_NOMEM, err,
			                 "out of memory");
		if (c == '"') {
			rc = read_quoted(csv, &next, &why);
			if (rc == 0 && next == '\r') {
				int after = get(csv);

				if (after == '\n')
					next = '\n';
				else
					unget(csv, after);
			}
			if (rc == 0 && next != ',' && next != '\n' &&
			    next != EOF) {
				why = "text after a closing quote";
				rc = VOX_ERR_INVALID;
			}
		} else {
			rc = read_plain(csv, c, &next, &why);
		}
		if (rc == 0 && append(csv, '\0') != 0) {
			rc = VOX_ERR_LIMIT;
			why = "record too long";
		}
		if (rc != 0)
			return malformed(csv, rc, err, why);
		if (next != ',')
			return 1;
		c = get(csv);
	}
}

size_t vox_csv_nfields(const vox_csv_t *csv)
{
	return csv->nfields;
}

const char *vox_csv_field(const vox_csv_t *csv, size_t i, size_t *len)
{
	const char *field = csv->buf + csv->starts[i];

	if (len != NULL)
		*len = (i + 1 < csv->nfields ? csv->starts[i + 1] - 1
		                             : csv->len - 1) -
		       csv->starts[i];
	return field;
}

long vox_csv_line(const vox_csv_t *csv)
{
	return csv->record_line;
}

long long vox_csv_offset(const vox_csv_t *csv)
{
	return csv->offset;
}

void vox_csv_write_field(FILE *out, const char *field)
{
	if (strpbrk(field, ",\"\r\n") == NULL) {
		fputs(field, out);
		return;
	}
	putc('"', out);
	for (const char *p = field; *p; p++) {
		if (*p == '"')
			putc('"', out);
		putc(*p, out);
	}
	putc('"', out);
}
