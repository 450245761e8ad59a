/*
 * Tests of vox_carrier_secret: a signing secret sealed for one credential
 * opens from the column text libpq gives ("\x" hex) for that credential
 * only, with the key that sealed it (current or retired), and not without
 * a key, with another key, or into a buffer that is too small.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_carrier_secret.h"

#define KEY1                                                                   \
	"1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY2                                                                   \
	"2:1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100"
#define ID_A   "01a24d10-96f7-7430-b5ef-2146eb21a06b"
#define ID_B   "01a24d22-4d8f-7322-a3e7-1eedfec5ec38"
#define SECRET "dVdOVI12MMrXDTm6_kW66fmCLO3oWhV9MQ6ZLITKjSI"

static vox_crypto_keyring_t *ring(const char *current, const char *old)
{
	vox_error_t err = {0};
	vox_crypto_keyring_t *r = vox_crypto_keyring_new(current, old, &err);

	cr_assert_not_null(r, "%s", err.message);
	return r;
}

/* Sealed for id with r, as the column's text: "\x" and hex (malloc'd). */
static char *sealed_column(const vox_crypto_keyring_t *r, const char *id)
{
	char *hex = NULL, *column;
	vox_error_t err = {0};

	cr_assert_eq(vox_carrier_secret_seal(r, id, SECRET, &hex, &err), 0,
	             "%s", err.message);
	cr_assert_null(strstr(hex, "dVdOVI"), "plaintext in %s", hex);
	column = malloc(strlen(hex) + 3);
	cr_assert_not_null(column);
	snprintf(column, strlen(hex) + 3, "\\x%s", hex);
	free(hex);
	return column;
}

Test(carrier_secret, opens_for_its_credential_with_current_or_old_key)
{
	vox_crypto_keyring_t *one = ring(KEY1, NULL), *two = ring(KEY2, KEY1);
	char *column = sealed_column(one, ID_A),
	     out[VOX_CARRIER_SECRET_MAX + 1];
	vox_error_t err = {0};

	cr_assert_eq(vox_carrier_secret_open(one, ID_A, column, out,
	                                     sizeof(out), &err),
	             0, "%s", err.message);
	cr_expect_str_eq(out, SECRET);
	/* rotated: key 1 only opens now */
	cr_assert_eq(vox_carrier_secret_open(two, ID_A, column, out,
	                                     sizeof(out), &err),
	             0, "%s", err.message);
	cr_expect_str_eq(out, SECRET);
	free(column);
	vox_crypto_keyring_destroy(one);
	vox_crypto_keyring_destroy(two);
}

Test(carrier_secret, does_not_open_elsewhere_or_without_its_key)
{
	vox_crypto_keyring_t *one = ring(KEY1, NULL), *two = ring(KEY2, NULL);
	char *column = sealed_column(one, ID_A),
	     out[VOX_CARRIER_SECRET_MAX + 1];
	char small[16];
	vox_error_t err = {0};

	/* copied to another credential's row */
	cr_expect_neq(vox_carrier_secret_open(one, ID_B, column, out,
	                                      sizeof(out), &err),
	              0);
	cr_expect_str_eq(out, "");
	/* no key configured, or only another one */
	cr_expect_eq(vox_carrier_secret_open(NULL, ID_A, column, out,
	                                     sizeof(out), &err),
	             VOX_ERR_INVALID);
	cr_expect(strstr(err.message, "VOX_ENCRYPTION_KEY") != NULL, "%s",
	          err.message);
	cr_expect_eq(vox_carrier_secret_open(two, ID_A, column, out,
	                                     sizeof(out), &err),
	             VOX_ERR_INVALID);
	cr_expect(strstr(err.message, "key 1") != NULL, "%s", err.message);
	/* a secret that does not fit is refused, not cut */
	cr_expect_eq(vox_carrier_secret_open(one, ID_A, column, small,
	                                     sizeof(small), &err),
	             VOX_ERR_INVALID);
	cr_expect_str_eq(small, "");
	free(column);
	vox_crypto_keyring_destroy(one);
	vox_crypto_keyring_destroy(two);
}

Test(carrier_secret, refuses_to_seal_a_secret_it_could_not_read_back)
{
	vox_crypto_keyring_t *one = ring(KEY1, NULL);
	char long_secret[VOX_CARRIER_SECRET_MAX + 2], *hex = NULL;
	vox_error_t err = {0};

	memset(long_secret, 'a', sizeof(long_secret) - 1);
	long_secret[sizeof(long_secret) - 1] = '\0';
	cr_expect_eq(
	        vox_carrier_secret_seal(one, ID_A, long_secret, &hex, &err),
	        VOX_ERR_INVALID);
	cr_expect_null(hex);
	vox_crypto_keyring_destroy(one);
}
