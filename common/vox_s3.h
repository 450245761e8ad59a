/*
 * vox_s3: objects in an S3-compatible store (AWS S3, MinIO, Ceph, moto...)
 * over libcurl with its built-in AWS Signature V4 (CURLOPT_AWS_SIGV4),
 * path-style URLs (<endpoint>/<bucket>/<key>). Used for porting documents
 * (docs/PORTING.md "Documents"). Thread-safe: one curl easy handle per
 * call.
 */
#ifndef VOX_S3_H
#define VOX_S3_H

#include <stddef.h>

#include "vox_error.h"

typedef struct vox_s3 vox_s3_t;

typedef struct vox_s3_conf {
	const char *endpoint;   /* VOX_S3_ENDPOINT "http://127.0.0.1:27090" */
	const char *region;     /* VOX_S3_REGION "us-east-1" */
	const char *bucket;     /* VOX_S3_BUCKET "voxlink-documents" */
	const char *access_key; /* VOX_S3_ACCESS_KEY */
	const char *secret_key; /* VOX_S3_SECRET_KEY */
	int timeout_ms;         /* per request (10000) */
} vox_s3_conf_t;

/* Strings are copied. NULL with err on a bad conf. */
vox_s3_t *vox_s3_new(const vox_s3_conf_t *conf, vox_error_t *err);
void vox_s3_destroy(vox_s3_t *s3);

/* PUT the object (Content-Type content_type, x-amz-content-sha256 the
 * payload's hash). VOX_ERR_UNAVAILABLE when the store does not answer or
 * answers 5xx (retriable), VOX_ERR_INVALID for other refusals. */
int vox_s3_put(vox_s3_t *s3, const char *key, const void *data, size_t len,
               const char *content_type, vox_error_t *err);
/* GET the object into *data (malloc'd, the caller's), at most max bytes.
 * VOX_ERR_NOT_FOUND for 404. */
int vox_s3_get(vox_s3_t *s3, const char *key, size_t max, char **data,
               size_t *len, vox_error_t *err);
/* DELETE (a missing object is fine). */
int vox_s3_delete(vox_s3_t *s3, const char *key, vox_error_t *err);
/* Creates the bucket when it is missing (ops/stack, tests). */
int vox_s3_ensure_bucket(vox_s3_t *s3, vox_error_t *err);

/* The request path of key in bucket, "/<bucket>/<key>" with every byte of
 * the key but A-Z a-z 0-9 - . _ ~ / percent-encoded once (the canonical
 * URI SigV4 signs for S3), into out. VOX_ERR_INVALID for a key that is
 * empty, longer than 1024 bytes or holds a control character;
 * VOX_ERR_LIMIT when out is too small. */
int vox_s3_object_path(const char *bucket, const char *key, char *out,
                       size_t outlen, vox_error_t *err);

#endif
