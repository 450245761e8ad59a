/*
 * vox_json: strict JSON parsing on top of jansson.
 *
 * Untrusted input goes through vox_json_parse(): duplicate object keys are
 * refused (JSON_REJECT_DUPLICATES), nesting deeper than max_depth is refused
 * before jansson sees it, and a NUL byte inside the buffer is refused.
 */
#ifndef VOX_JSON_H
#define VOX_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vox_error.h"

#define VOX_JSON_DEFAULT_DEPTH 32

/* Returns a new reference, or NULL with err filled (VOX_ERR_INVALID for
 * malformed JSON or duplicate keys, VOX_ERR_LIMIT for too deep nesting;
 * the message names line/column or the duplicate key). */
json_t *vox_json_parse(const char *buf, size_t len, int max_depth,
                       vox_error_t *err);

/* Nesting depth of the JSON text (arrays/objects, strings skipped), without
 * building anything; stops counting once max_depth is exceeded. */
int vox_json_depth(const char *buf, size_t len, int max_depth);

/* Compact, key order preserved. Caller frees with free(). NULL on ENOMEM. */
char *vox_json_dump(const json_t *value);

/* Borrowed string member, or NULL if missing or not a string. */
const char *vox_json_str(const json_t *object, const char *key);

/* Checks that every key of object is one of the NULL-terminated allowed
 * list; fills err naming the first unknown key. Returns 0 or VOX_ERR_INVALID.
 */
int vox_json_only_keys(const json_t *object, const char *const *allowed,
                       vox_error_t *err);

#endif
