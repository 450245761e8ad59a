/* vox_copy: PostgreSQL binary COPY rows (vox_copy.h). */
#include "vox_copy.h"

#include <arpa/inet.h>
#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "vox_uuid.h"

/* 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in Unix seconds */
#define PG_EPOCH_UNIX 946684800LL

static void put(vox_copybuf_t *b, const void *p, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n > b->cap) {
		size_t cap = (b->cap + n) * 2;
		char *d = realloc(b->data, cap);

		if (d == NULL) {
			b->failed = 1;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void put16(vox_copybuf_t *b, int16_t v)
{
	uint16_t x = htons((uint16_t)v);

	put(b, &x, 2);
}

static void put32(vox_copybuf_t *b, int32_t v)
{
	uint32_t x = htonl((uint32_t)v);

	put(b, &x, 4);
}

static void copy_init(vox_copybuf_t *b, size_t size_hint)
{
	memset(b, 0, sizeof(*b));
	b->data = malloc(size_hint > 64 ? size_hint : 64);
	b->cap = b->data ? (size_hint > 64 ? size_hint : 64) : 0;
	b->failed = b->data == NULL;
}

void vox_copy_begin(vox_copybuf_t *b, size_t size_hint)
{
	static const char sig[11] = "PGCOPY\n\377\r\n";

	copy_init(b, size_hint);
	put(b, sig, sizeof(sig));
	put32(b, 0); /* flags */
	put32(b, 0); /* header extension length */
}

void vox_copy_array_begin(vox_copybuf_t *b, uint32_t elem_oid, int32_t n,
                          int has_nulls, size_t size_hint)
{
	copy_init(b, size_hint);
	put32(b, 1);                 /* dimensions */
	put32(b, has_nulls ? 1 : 0); /* flags */
	put32(b, (int32_t)elem_oid);
	put32(b, n); /* elements of the dimension */
	put32(b, 1); /* its lower bound */
}

void vox_copy_row(vox_copybuf_t *b, int ncols)
{
	put16(b, (int16_t)ncols);
}

void vox_copy_null(vox_copybuf_t *b)
{
	put32(b, -1);
}

void vox_copy_text(vox_copybuf_t *b, const char *s)
{
	size_t n = strlen(s);

	put32(b, (int32_t)n);
	put(b, s, n);
}

void vox_copy_int4(vox_copybuf_t *b, int32_t v)
{
	put32(b, 4);
	put32(b, v);
}

void vox_copy_int8(vox_copybuf_t *b, int64_t v)
{
	uint64_t x = htobe64((uint64_t)v);

	put32(b, 8);
	put(b, &x, 8);
}

void vox_copy_uuid(vox_copybuf_t *b, const char *uuid)
{
	unsigned char raw[16];

	if (!vox_uuid_bytes(uuid, raw)) {
		b->failed = 1;
		return;
	}
	put32(b, 16);
	put(b, raw, 16);
}

void vox_copy_timestamptz(vox_copybuf_t *b, int64_t unix_us)
{
	vox_copy_int8(b, unix_us - PG_EPOCH_UNIX * 1000000);
}

int vox_copy_end(vox_copybuf_t *b)
{
	put16(b, -1);
	return b->failed ? -1 : 0;
}

void vox_copy_free(vox_copybuf_t *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}
