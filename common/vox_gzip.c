/* gzip with zlib (vox_gzip.h). */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "vox_gzip.h"

int vox_gzip(const void *data, size_t len, int level, void **out,
             size_t *outlen, vox_error_t *err)
{
	z_stream zs;
	uLong bound;
	unsigned char *buf;
	int zrc;

	*out = NULL;
	*outlen = 0;
	memset(&zs, 0, sizeof(zs));
	/* 15 + 16: a gzip wrapper, not zlib's */
	if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8,
	                 Z_DEFAULT_STRATEGY) != Z_OK)
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "deflateInit2 (level %d) failed", level);
	bound = deflateBound(&zs, (uLong)len) + 32;
	buf = malloc(bound);
	if (buf == NULL) {
		deflateEnd(&zs);
		return vox_error_set(err, VOX_ERR_NOMEM, true,
		                     "out of memory for %zu bytes", len);
	}
	zs.next_in = (Bytef *)data;
	zs.avail_in = (uInt)len;
	zs.next_out = buf;
	zs.avail_out = (uInt)bound;
	zrc = deflate(&zs, Z_FINISH);
	if (zrc != Z_STREAM_END) {
		deflateEnd(&zs);
		free(buf);
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "deflate failed (%d)", zrc);
	}
	*outlen = zs.total_out;
	*out = buf;
	deflateEnd(&zs);
	return 0;
}
