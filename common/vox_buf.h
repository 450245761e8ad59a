/*
 * vox_buf: one bounded, checked, growable byte buffer (after curl's
 * dynbuf) for every document we assemble as text: JSON events, SQL array
 * literals. Every append is checked against a hard cap set at init; the
 * first failure sticks (later appends do nothing and return it) and frees
 * the memory, so a caller may append a whole document and look at the
 * result once. The text is always NUL-terminated.
 *
 * Ownership: the buffer owns its memory until vox_buf_take() hands it to
 * the caller (who free()s it) and leaves the buffer empty. The struct is
 * public only so it can live on the stack; use the functions.
 */
#ifndef VOX_BUF_H
#define VOX_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "vox_error.h"

typedef struct vox_buf {
	char *data;
	size_t len;   /* bytes used, without the NUL */
	size_t alloc; /* bytes allocated */
	size_t max;   /* the cap: len never exceeds it */
	int err; /* 0, or the first failure (VOX_ERR_LIMIT/NOMEM/INVALID) */
} vox_buf_t;

/* An empty buffer that will hold at most max bytes (plus the NUL). */
void vox_buf_init(vox_buf_t *b, size_t max);

/* Frees the memory (if not taken); the buffer is then empty and
 * error-free, ready for reuse with the same cap. */
void vox_buf_free(vox_buf_t *b);

/* Empties the buffer, keeping its memory; clears a sticky error. */
void vox_buf_reset(vox_buf_t *b);

/* Pre-allocates room for len bytes in all (a hint: never exceeds max). */
int vox_buf_reserve(vox_buf_t *b, size_t len);

/* Appends: 0, or the sticky error (VOX_ERR_LIMIT when the result would
 * exceed the cap, VOX_ERR_NOMEM). */
int vox_buf_add(vox_buf_t *b, const void *mem, size_t len);
int vox_buf_adds(vox_buf_t *b, const char *s);
int vox_buf_printf(vox_buf_t *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
int vox_buf_add_int(vox_buf_t *b, int64_t v);

/* Appends s as a JSON string, quotes included, escaped as RFC 8259 says
 * (", \, control characters; everything else as is). NULL appends null.
 * s must be UTF-8: invalid UTF-8 fails with VOX_ERR_INVALID (sticky too),
 * as JSON text must be UTF-8. */
int vox_buf_add_json_str(vox_buf_t *b, const char *s);

/* The sticky error (0 if none). */
int vox_buf_error(const vox_buf_t *b);

/* The text so far ("" when empty or failed); valid until the next call. */
const char *vox_buf_str(const vox_buf_t *b);
size_t vox_buf_len(const vox_buf_t *b);

/* Hands the text to the caller (free() it) and empties the buffer; *len
 * (may be NULL) gets its length. NULL when the buffer failed (its error
 * is kept until vox_buf_reset) or on ENOMEM for an empty buffer. */
char *vox_buf_take(vox_buf_t *b, size_t *len);

/* Fills err from the buffer's sticky error (what names the document) and
 * returns it; 0 when there is none. */
int vox_buf_check(const vox_buf_t *b, const char *what, vox_error_t *err);

#endif
