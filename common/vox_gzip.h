/*
 * gzip (RFC 1952) of a buffer with zlib: the exporter's hourly objects and
 * the dashboard's files the ingress serves compressed.
 */
#ifndef VOX_GZIP_H
#define VOX_GZIP_H

#include <stddef.h>

#include "vox_error.h"

/* gzip of data at level (1..9) into *out (malloc'd, the caller's). */
int vox_gzip(const void *data, size_t len, int level, void **out,
             size_t *outlen, vox_error_t *err);

#endif
