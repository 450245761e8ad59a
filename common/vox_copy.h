/*
 * vox_copy: rows in PostgreSQL's binary COPY format, built in memory
 * (COPY ... FROM STDIN (FORMAT binary)). The server then parses no text:
 * uuids, timestamps and integers arrive as they are stored. Used by
 * bench/metering. The fields are also those of a binary array parameter
 * (vox_copy_array_begin): the metering worker sends its columns so.
 */
#ifndef VOX_COPY_H
#define VOX_COPY_H

#include <stddef.h>
#include <stdint.h>

typedef struct vox_copybuf {
	char *data;
	size_t len, cap;
	int failed; /* out of memory: the buffer is unusable */
} vox_copybuf_t;

/* Starts a buffer with the binary COPY header. */
void vox_copy_begin(vox_copybuf_t *b, size_t size_hint);
/* Starts a buffer holding instead a one-dimensional binary array (the
 * binary format of a parameter of type elem_oid[]) of n elements, each
 * added with a field function below (vox_copy_null if has_nulls). Ended by
 * nothing: the buffer is the array once its n elements are in. */
void vox_copy_array_begin(vox_copybuf_t *b, uint32_t elem_oid, int32_t n,
                          int has_nulls, size_t size_hint);
/* Starts a row of ncols fields; each field below adds one. */
void vox_copy_row(vox_copybuf_t *b, int ncols);
void vox_copy_null(vox_copybuf_t *b);
void vox_copy_text(vox_copybuf_t *b, const char *s);
void vox_copy_int4(vox_copybuf_t *b, int32_t v);
void vox_copy_int8(vox_copybuf_t *b, int64_t v);
/* A canonical textual uuid ("0193a601-2b3c-..."); a malformed one marks
 * the buffer failed. */
void vox_copy_uuid(vox_copybuf_t *b, const char *uuid);
/* timestamptz from Unix epoch microseconds. */
void vox_copy_timestamptz(vox_copybuf_t *b, int64_t unix_us);
/* Adds the trailer; returns 0, or -1 when the buffer failed. */
int vox_copy_end(vox_copybuf_t *b);
void vox_copy_free(vox_copybuf_t *b);

#endif
