/*
 * vox_validate: the small checks every command validator makes of its
 * data (`int <x>_validate(const json_t *data, vox_error_t *err)`), written
 * once so the C says exactly what the JSON Schemas in schemas/events/ say:
 * UUIDs in lower-case hex, E.164 as "+" and 7 to 15 digits, string lengths
 * in characters (UTF-8 code points, as JSON Schema counts them).
 * Every vox_validate_* action returns 0, or VOX_ERR_INVALID (not
 * retriable) with "data.<field> ..." in err.
 */
#ifndef VOX_VALIDATE_H
#define VOX_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>

#include "vox_error.h"

/* "+" then 1-9 then 6 to 14 digits (the schemas' E.164 pattern; the
 * ingress normalised it with libphonenumber before). */
bool vox_valid_e164(const char *text);

/* A lower-case hex UUID (8-4-4-4-12), the schemas' UUID pattern. */
bool vox_valid_uuid(const char *text);

/* Characters (code points) of UTF-8 text. */
size_t vox_utf8_chars(const char *text);

/* Each NULL-terminated name must be a member holding a UUID. */
int vox_validate_uuids(const json_t *data, const char *const *names,
                       vox_error_t *err);

/* data must be an object with no member outside allowed (NULL-terminated). */
int vox_validate_object(const json_t *data, const char *const *allowed,
                        vox_error_t *err);

/* key must be a string of min..max characters (optional: may be absent). */
int vox_validate_str(const json_t *data, const char *key, size_t min,
                     size_t max, bool optional, vox_error_t *err);

/* key must be an integer in min..max. */
int vox_validate_int(const json_t *data, const char *key, long long min,
                     long long max, vox_error_t *err);

/* key must be true or false. */
int vox_validate_bool(const json_t *data, const char *key, vox_error_t *err);

#endif
