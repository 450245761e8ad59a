/* vox_validate: checks shared by the command validators. */
#include "vox_validate.h"

#include <string.h>

#include "vox_json.h"

bool vox_valid_e164(const char *text)
{
	size_t len;

	if (text == NULL || text[0] != '+' || text[1] < '1' || text[1] > '9')
		return false;
	len = strlen(text);
	if (len < 8 || len > 16)
		return false;
	for (size_t i = 1; i < len; i++)
		if (text[i] < '0' || text[i] > '9')
			return false;
	return true;
}

bool vox_valid_uuid(const char *text)
{
	if (text == NULL || strlen(text) != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		char c = text[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') ||
		             (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	return true;
}

size_t vox_utf8_chars(const char *text)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		n += (*p & 0xC0) != 0x80;
	return n;
}

int vox_validate_uuids(const json_t *data, const char *const *names,
                       vox_error_t *err)
{
	for (size_t i = 0; names[i] != NULL; i++)
		if (!vox_valid_uuid(
		            json_string_value(json_object_get(data, names[i]))))
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "data.%s must be a UUID",
			                     names[i]);
	return 0;
}

int vox_validate_object(const json_t *data, const char *const *allowed,
                        vox_error_t *err)
{
	if (!json_is_object(data))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "data must be an object");
	return vox_json_only_keys(data, allowed, err) == 0 ? 0
	                                                   : VOX_ERR_INVALID;
}

int vox_validate_str(const json_t *data, const char *key, size_t min,
                     size_t max, bool optional, vox_error_t *err)
{
	const json_t *v = json_object_get(data, key);
	size_t n;

	if (v == NULL && optional)
		return 0;
	if (!json_is_string(v))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "data.%s must be a string", key);
	n = vox_utf8_chars(json_string_value(v));
	if (n < min || n > max)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "data.%s must have %zu to %zu characters",
		                     key, min, max);
	return 0;
}

int vox_validate_int(const json_t *data, const char *key, long long min,
                     long long max, vox_error_t *err)
{
	const json_t *v = json_object_get(data, key);

	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "data.%s must be an integer in %lld..%lld",
		                     key, min, max);
	return 0;
}

int vox_validate_bool(const json_t *data, const char *key, vox_error_t *err)
{
	if (!json_is_boolean(json_object_get(data, key)))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "data.%s must be true or false", key);
	return 0;
}
