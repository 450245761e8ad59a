/* vox_buf: the bounded, checked growable buffer (vox_buf.h). */
#include "vox_buf.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_ALLOC 64

void vox_buf_init(vox_buf_t *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void vox_buf_free(vox_buf_t *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
	b->err = 0;
}

void vox_buf_reset(vox_buf_t *b)
{
	b->len = 0;
	b->err = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* The first failure: free everything, remember why. */
static int fail(vox_buf_t *b, int code)
{
	free(b->data);
	b->data = NULL;
	b->len = b->alloc = 0;
	b->err = code;
	return code;
}

/* Room for extra more bytes plus the NUL, within the cap. */
static int grow(vox_buf_t *b, size_t extra)
{
	size_t need, alloc;
	char *p;

	if (b->err)
		return b->err;
	if (extra > b->max - b->len)
		return fail(b, VOX_ERR_LIMIT);
	need = b->len + extra + 1;
	if (need <= b->alloc)
		return 0;
	alloc = b->alloc ? b->alloc : MIN_ALLOC;
	while (alloc < need)
		alloc = alloc > SIZE_MAX / 2 ? need : alloc * 2;
	if (alloc > b->max + 1)
		alloc = b->max + 1;
	p = realloc(b->data, alloc);
	if (p == NULL)
		return fail(b, VOX_ERR_NOMEM);
	b->data = p;
	b->alloc = alloc;
	return 0;
}

int vox_buf_reserve(vox_buf_t *b, size_t len)
{
	if (len > b->max)
		len = b->max;
	return len > b->len ? grow(b, len - b->len) : b->err;
}

int vox_buf_add(vox_buf_t *b, const void *mem, size_t len)
{
	int rc = grow(b, len);

	if (rc != 0)
		return rc;
	memcpy(b->data + b->len, mem, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int vox_buf_adds(vox_buf_t *b, const char *s)
{
	return vox_buf_add(b, s, strlen(s));
}

int vox_buf_printf(vox_buf_t *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return b->err;
	/* measured first, then written into room made for exactly that */
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return fail(b, VOX_ERR_INVALID);
	if (grow(b, (size_t)n) != 0)
		return b->err;
	va_start(ap, fmt);
	vsnprintf(&b->data[b->len], (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int vox_buf_add_int(vox_buf_t *b, int64_t v)
{
	char digits[24], *p = digits + sizeof(digits);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	return vox_buf_add(b, p, (size_t)(digits + sizeof(digits) - p));
}

/* Length of the valid UTF-8 sequence at s (whose first byte is >= 0x80),
 * or 0: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];

	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
			return 0;
		return (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return 0;
		return (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80 &&
		                       (s[3] & 0xc0) == 0x80
		               ? 4
		               : 0;
	}
	return 0;
}

static int add_escape(vox_buf_t *b, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

	switch (c) {
	case '"':
	case '\\':
		esc[1] = (char)c;
		return vox_buf_add(b, esc, 2);
	case '\b':
		return vox_buf_add(b, "\\b", 2);
	case '\f':
		return vox_buf_add(b, "\\f", 2);
	case '\n':
		return vox_buf_add(b, "\\n", 2);
	case '\r':
		return vox_buf_add(b, "\\r", 2);
	case '\t':
		return vox_buf_add(b, "\\t", 2);
	default:
		return vox_buf_add(b, esc, 6);
	}
}

int vox_buf_add_json_str(vox_buf_t *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *run;

	if (s == NULL)
		return vox_buf_add(b, "null", 4);
	if (vox_buf_add(b, "\"", 1) != 0)
		return b->err;
	while (*p != '\0') {
		size_t seq;

		/* the longest run that goes out as is */
		for (run = p;
		     *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\'; p++)
			;
		if (p > run && vox_buf_add(b, run, (size_t)(p - run)) != 0)
			return b->err;
		if (*p == '\0')
			break;
		if (*p < 0x80) {
			if (add_escape(b, *p++) != 0)
				return b->err;
			continue;
		}
		seq = utf8_len(p);
		if (seq == 0)
			return fail(b, VOX_ERR_INVALID);
		if (vox_buf_add(b, p, seq) != 0)
			return b->err;
		p += seq;
	}
	return vox_buf_add(b, "\"", 1);
}

int vox_buf_error(const vox_buf_t *b)
{
	return b->err;
}

const char *vox_buf_str(const vox_buf_t *b)
{
	return b->data != NULL ? b->data : "";
}

size_t vox_buf_len(const vox_buf_t *b)
{
	return b->len;
}

char *vox_buf_take(vox_buf_t *b, size_t *len)
{
	char *text;

	if (b->err)
		return NULL;
	text = b->data != NULL ? b->data : strdup("");
	if (len != NULL)
		*len = text != NULL ? b->len : 0;
	b->data = NULL;
	b->len = b->alloc = 0;
	return text;
}

int vox_buf_check(const vox_buf_t *b, const char *what, vox_error_t *err)
{
	switch (b->err) {
	case 0:
		return 0;
	case VOX_ERR_LIMIT:
		return vox_error_set(err, VOX_ERR_LIMIT, false,
		                     "%s: longer than %zu bytes", what, b->max);
	case VOX_ERR_NOMEM:
		return vox_error_set(err, VOX_ERR_NOMEM, true,
		                     "%s: out of memory", what);
	default:
		return vox_error_set(err, b->err, false,
		                     "%s: a string is not UTF-8", what);
	}
}
