/*
 * vox_error: the error object every action returns through.
 *
 * An action returns 0 on success or a negative vox_err_code; when the caller
 * passed a vox_error_t it is filled with a message and says whether trying
 * again may help (retriable) or the component must stop (fatal). Workers
 * decide retry, dead-letter or exit from those two flags alone.
 */
#ifndef VOX_ERROR_H
#define VOX_ERROR_H

#include <stdbool.h>

typedef enum vox_err_code {
	VOX_OK = 0,
	VOX_ERR_INVALID = -1, /* bad input: never retried */
	VOX_ERR_NOT_FOUND = -2,
	VOX_ERR_CONFLICT = -3,
	VOX_ERR_UNAVAILABLE = -4, /* a dependency is down: retriable */
	VOX_ERR_TIMEOUT = -5,     /* retriable; the outcome may be unknown */
	VOX_ERR_INTERNAL = -6,
	VOX_ERR_NOMEM = -7,
	VOX_ERR_DUPLICATE = -8, /* already done: callers treat as success */
	VOX_ERR_LIMIT = -9,     /* a size, depth or rate limit was hit */
} vox_err_code_t;

typedef struct vox_error {
	vox_err_code_t code;
	bool retriable;
	bool fatal;
	char message[256];
} vox_error_t;

/* Fills err (which may be NULL) and returns code, so callers can write
 * `return vox_error_set(err, VOX_ERR_INVALID, false, "bad %s", what);` */
int vox_error_set(vox_error_t *err, vox_err_code_t code, bool retriable,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Like vox_error_set() but marks the error fatal (the component must stop
 * or rebuild the failing part). */
int vox_error_fatal(vox_error_t *err, vox_err_code_t code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

void vox_error_clear(vox_error_t *err);

/* Stable machine-readable name: "invalid_argument", "unavailable", ... */
const char *vox_err_code_name(vox_err_code_t code);

#endif
