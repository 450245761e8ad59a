/* vox_error: filling and naming error objects. */
#include "vox_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int error_vset(vox_error_t *err, vox_err_code_t code, bool retriable,
                      bool fatal, const char *fmt, va_list ap)
{
	if (err == NULL)
		return code;
	err->code = code;
	err->retriable = retriable;
	err->fatal = fatal;
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	return code;
}

int vox_error_set(vox_error_t *err, vox_err_code_t code, bool retriable,
                  const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = error_vset(err, code, retriable, false, fmt, ap);
	va_end(ap);
	return rc;
}

int vox_error_fatal(vox_error_t *err, vox_err_code_t code, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = error_vset(err, code, false, true, fmt, ap);
	va_end(ap);
	return rc;
}

void vox_error_clear(vox_error_t *err)
{
	if (err != NULL)
		memset(err, 0, sizeof(*err));
}

const char *vox_err_code_name(vox_err_code_t code)
{
	switch (code) {
	case VOX_OK:
		return "ok";
	case VOX_ERR_INVALID:
		return "invalid_argument";
	case VOX_ERR_NOT_FOUND:
		return "not_found";
	case VOX_ERR_CONFLICT:
		return "conflict";
	case VOX_ERR_UNAVAILABLE:
		return "unavailable";
	case VOX_ERR_TIMEOUT:
		return "timeout";
	case VOX_ERR_INTERNAL:
		return "internal";
	case VOX_ERR_NOMEM:
		return "out_of_memory";
	case VOX_ERR_DUPLICATE:
		return "duplicate";
	case VOX_ERR_LIMIT:
		return "limit_exceeded";
	}
	return "unknown";
}
