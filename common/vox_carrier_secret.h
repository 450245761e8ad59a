/*
 * vox_carrier_secret: carrier signing secrets at rest (the HMAC secrets of
 * signed CDR pushes, docs/CARRIER_CDRS.md). The ingress must read a secret
 * to check Vox-Signature, so it cannot be stored as a hash: it is sealed
 * with vox_crypto (AES-256-GCM, VOX_ENCRYPTION_KEY) into
 * carrier_credentials.signing_secret_sealed, bound to its row by the
 * associated data "carrier_credentials/<id>" (a sealed value copied to
 * another credential does not open there). voxctl seals, the ingress
 * opens; both go through here so the binding is written once.
 */
#ifndef VOX_CARRIER_SECRET_H
#define VOX_CARRIER_SECRET_H

#include <stddef.h>

#include "vox_crypto.h"
#include "vox_error.h"

/* The longest signing secret read back (bytes, without the NUL). */
#define VOX_CARRIER_SECRET_MAX 511

/* Seals secret (at most VOX_CARRIER_SECRET_MAX bytes) for credential_id
 * (a uuid as text) with ring's current key. *sealed_hex (malloc'd, lower-case
 * hex, for decode($n, 'hex')) is the caller's. */
int vox_carrier_secret_seal(const vox_crypto_keyring_t *ring,
                            const char *credential_id, const char *secret,
                            char **sealed_hex, vox_error_t *err);

/* Opens signing_secret_sealed as libpq's text output gives a bytea column
 * ("\x" and hex) into out (outlen bytes, NUL-terminated; wipe it after
 * use). VOX_ERR_INVALID when ring is NULL (no key configured), the value
 * was sealed with a key the ring does not hold, it was altered or belongs
 * to another credential, or the secret does not fit in out. The message
 * never holds key or secret material. */
int vox_carrier_secret_open(const vox_crypto_keyring_t *ring,
                            const char *credential_id, const char *column_text,
                            char *out, size_t outlen, vox_error_t *err);

#endif
