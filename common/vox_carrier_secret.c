/* vox_carrier_secret: carrier signing secrets sealed to their row. */
#include "vox_carrier_secret.h"

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What binds a sealed secret to its credential. */
static void secret_aad(const char *credential_id, char *out, size_t outlen)
{
	snprintf(out, outlen, "carrier_credentials/%s", credential_id);
}

int vox_carrier_secret_seal(const vox_crypto_keyring_t *ring,
                            const char *credential_id, const char *secret,
                            char **sealed_hex, vox_error_t *err)
{
	char aad[96];

	*sealed_hex = NULL;
	if (strlen(secret) > VOX_CARRIER_SECRET_MAX)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "the signing secret is longer than %d "
		                     "bytes",
		                     VOX_CARRIER_SECRET_MAX);
	secret_aad(credential_id, aad, sizeof(aad));
	return vox_crypto_seal_hex(ring, secret, aad, sealed_hex, err);
}

int vox_carrier_secret_open(const vox_crypto_keyring_t *ring,
                            const char *credential_id, const char *column_text,
                            char *out, size_t outlen, vox_error_t *err)
{
	unsigned char *sealed;
	size_t sealed_len = 0, plain_len = 0;
	char aad[96], *plain = NULL;
	int rc;

	out[0] = '\0';
	if (ring == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "the signing secret is sealed and no "
		                     "VOX_ENCRYPTION_KEY is configured");
	sealed = PQunescapeBytea((const unsigned char *)column_text,
	                         &sealed_len);
	if (sealed == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, false,
		                     "out of memory");
	secret_aad(credential_id, aad, sizeof(aad));
	rc = vox_crypto_open(ring, sealed, sealed_len, aad, strlen(aad), &plain,
	                     &plain_len, err);
	PQfreemem(sealed);
	if (rc != 0)
		return rc;
	if (plain_len < outlen)
		memcpy(out, plain, plain_len + 1);
	else
		rc = vox_error_set(
		        err, VOX_ERR_INVALID, false,
		        "the signing secret is longer than %zu bytes",
		        outlen - 1);
	OPENSSL_cleanse(plain, plain_len);
	free(plain);
	return rc;
}
