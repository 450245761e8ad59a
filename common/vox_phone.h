/*
 * vox_phone: E.164 phone number parsing and validation (libphonenumber
 * 8.12 behind a C interface; the implementation is C++, vox_phone.cc).
 *
 * Every function is thread-safe and never throws or aborts on any input:
 * bad text gives VOX_ERR_INVALID with a reason a user can act on.
 *
 * Accepted text: E.164 with the usual punctuation ("+1 (415) 555-0123",
 * "+44 20 7946 0000") or, with a default region, the national form
 * ("020 7946 0000" in GB). Letters (vanity numbers such as 1-800-FLOWERS,
 * extensions such as "x12") and non-ASCII characters are refused rather
 * than silently translated or dropped. Numbers of non-geographic calling
 * codes (+800, +882...) are refused: they belong to no region.
 */
#ifndef VOX_PHONE_H
#define VOX_PHONE_H

#ifdef __cplusplus
/* vox_error.h has no C++ guards of its own, hence the include inside. */
extern "C" {
#endif

#include <stdbool.h>

#include "vox_error.h"

typedef struct vox_phone {
	char e164[24];      /* "+14155550123" */
	char region[3];     /* ISO 3166 alpha-2 of the number, "US" */
	int country_code;   /* 1 */
	char national[20];  /* national significant number "4155550123" */
	char area_code[12]; /* national destination code "415" ("" if none) */
	/* "local" (fixed line, or fixed line or mobile), "mobile",
	 * "toll_free", "premium_rate", "voip", "shared_cost", "personal",
	 * "pager", "uan", "voicemail", "unknown" */
	char type[16];
	/* English geocoder description below the country ("San Francisco,
	 * CA", "London"); "" when only the country is known. UTF-8. */
	char city[96];
} vox_phone_t;

/* Parses text into out. default_region (ISO alpha-2, any case) is used
 * only for national-format text; NULL means text must be international
 * ("+..."). Returns 0, or VOX_ERR_INVALID (never retriable) with a reason:
 * "not a phone number", "too short for GB", "invalid number for US",
 * "unsupported country calling code", "unsupported region XX"...
 * out is zeroed on failure. */
int vox_phone_parse(const char *text, const char *default_region,
                    vox_phone_t *out, vox_error_t *err);

/* True when text is exactly a canonical E.164 string ("+" then digits, no
 * punctuation) of a valid number: what vox_phone_parse() puts in e164. */
bool vox_phone_is_e164(const char *text);

/* True for an ISO alpha-2 code (any case) libphonenumber has metadata for. */
bool vox_phone_region_supported(const char *region);

/* The region's country calling code (1 for "US" and "CA"), 0 if unknown. */
int vox_phone_country_code(const char *region);

#ifdef __cplusplus
}
#endif

#endif
