/*
 * vox_csv: a streaming RFC 4180 reader (producers/cdr-import).
 *
 * Fields are separated by ',', records by CRLF or LF (a lone CR inside an
 * unquoted field is kept). A field may be quoted ("a, b"), with "" for a
 * quote inside; a quoted field may span lines. The last record may lack
 * its line end. Blank lines are skipped. A UTF-8 byte order mark at the
 * start is dropped. A NUL byte, text after a closing quote ("ab"c) or a
 * quote left open at the end of the input makes the record malformed: it
 * is reported once and reading goes on at the next line.
 */
#ifndef VOX_CSV_H
#define VOX_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "vox_error.h"

typedef struct vox_csv vox_csv_t;

/* Reads from in (not owned: the caller closes it). max_record bounds one
 * record's bytes (0: 1 MiB). NULL when out of memory. */
vox_csv_t *vox_csv_new(FILE *in, size_t max_record);
void vox_csv_destroy(vox_csv_t *csv);

/* Reads the next record: 1 when there is one, 0 at the end of the input,
 * VOX_ERR_INVALID for a malformed record and VOX_ERR_LIMIT for one over
 * max_record (err says why; the record is skipped, call again for the
 * next one). The fields stay valid until the next call. */
int vox_csv_next(vox_csv_t *csv, vox_error_t *err);

size_t vox_csv_nfields(const vox_csv_t *csv);
/* Field i (< nfields) as a NUL-terminated string; *len may be NULL. */
const char *vox_csv_field(const vox_csv_t *csv, size_t i, size_t *len);
/* Line (1-based) on which the last record (or malformed record) began. */
long vox_csv_line(const vox_csv_t *csv);
/* Bytes of input consumed so far. */
long long vox_csv_offset(const vox_csv_t *csv);

/* Appends field as one CSV field to out (quoted when it holds a comma,
 * quote, CR or LF). */
void vox_csv_write_field(FILE *out, const char *field);

#endif
