/*
 * vox_crypto: secrets at rest (DESIGN.md "Security rules"), sealed with
 * AES-256-GCM under a key from the environment.
 *
 * A keyring holds the current key, which seals, and older keys, which
 * only open: rotating is adding a new current key and keeping the old one
 * in the "old" list until nothing sealed with it is left. Each sealed value
 * says which key sealed it:
 *
 *   0x01 | key id (1..255) | nonce (12 random bytes) | ciphertext | tag (16)
 *
 * The format byte and key id are authenticated with the caller's
 * associated data (aad), which binds a sealed value to its place (e.g.
 * "account id / Idempotency-Key"): a value copied to another row does not
 * open there. Keys are written as "[ID:]KEY", KEY being 32 bytes as 64 hex
 * digits or base64/base64url (padding optional), ID 1..255 (default 1).
 */
#ifndef VOX_CRYPTO_H
#define VOX_CRYPTO_H

#include <stddef.h>

#include "vox_error.h"

#define VOX_CRYPTO_KEY_BYTES 32
/* Bytes a sealed value adds to its plaintext. */
#define VOX_CRYPTO_OVERHEAD (2 + 12 + 16)

typedef struct vox_crypto_keyring vox_crypto_keyring_t;

/* current: "[ID:]KEY" (required); old: "ID:KEY,ID:KEY" or NULL/"" (keys
 * that only open). NULL with err set when a key is malformed or two keys
 * share an id (the message never contains key material). */
vox_crypto_keyring_t *vox_crypto_keyring_new(const char *current,
                                             const char *old, vox_error_t *err);
/* Wipes the keys. NULL is accepted. */
void vox_crypto_keyring_destroy(vox_crypto_keyring_t *ring);
/* The id of the key that seals. */
int vox_crypto_key_id(const vox_crypto_keyring_t *ring);

/* Seals plain (len bytes) with the current key and a fresh random nonce.
 * *out (malloc'd, *out_len = len + VOX_CRYPTO_OVERHEAD) is the caller's. */
int vox_crypto_seal(const vox_crypto_keyring_t *ring, const void *plain,
                    size_t len, const void *aad, size_t aad_len,
                    unsigned char **out, size_t *out_len, vox_error_t *err);

/* vox_crypto_seal of the text secret bound to the text aad, as lower-case
 * hex for a bytea parameter (decode($n, 'hex')). *hex (malloc'd) is the
 * caller's. */
int vox_crypto_seal_hex(const vox_crypto_keyring_t *ring, const char *secret,
                        const char *aad, char **hex, vox_error_t *err);

/* HMAC-SHA256 of data under a key derived from the ring's current key
 * (never the sealing key itself), as lower-case hex: a digest of something
 * that holds a secret which, unlike a plain hash, cannot be brute-forced
 * from a database dump without the key. Another current key gives another
 * digest. out may be data itself. 0, or -1. */
int vox_crypto_mac_hex(const vox_crypto_keyring_t *ring, const void *data,
                       size_t len, char out[65]);

/* Opens what vox_crypto_seal made with any key of the ring and the same
 * aad. *plain (malloc'd, NUL-terminated after *plain_len bytes) is the
 * caller's; wipe it when it holds a secret. VOX_ERR_INVALID when the value
 * is not ours, its key is not in the ring, or it was altered. */
int vox_crypto_open(const vox_crypto_keyring_t *ring,
                    const unsigned char *sealed, size_t len, const void *aad,
                    size_t aad_len, char **plain, size_t *plain_len,
                    vox_error_t *err);

/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void vox_hex_encode(const void *in, size_t n, char *out);

/* SHA-256 of len bytes as 64 lower-case hex digits and a NUL. */
void vox_sha256_hex(const void *data, size_t len, char out[65]);

#endif
