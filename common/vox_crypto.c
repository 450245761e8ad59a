/* vox_crypto: AES-256-GCM sealing with a rotating keyring (OpenSSL EVP). */
#include "vox_crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRYPTO_FORMAT    0x01
#define CRYPTO_NONCE     12
#define CRYPTO_TAG       16
#define CRYPTO_HEADER    2
#define CRYPTO_MAX_KEYS  8
#define CRYPTO_KEY_CHARS 96 /* longer text cannot be a 32-byte key */

struct crypto_key {
	int id;
	unsigned char bytes[VOX_CRYPTO_KEY_BYTES];
};

struct vox_crypto_keyring {
	struct crypto_key keys[CRYPTO_MAX_KEYS]; /* [0] seals */
	int nkeys;
};

static bool key_from_hex(const char *text, size_t len, unsigned char *out)
{
	if (len != 2 * VOX_CRYPTO_KEY_BYTES)
		return false;
	for (size_t i = 0; i < VOX_CRYPTO_KEY_BYTES; i++) {
		int hi = OPENSSL_hexchar2int((unsigned char)text[2 * i]);
		int lo = OPENSSL_hexchar2int((unsigned char)text[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

/* base64 or base64url, padding optional: exactly 32 bytes. */
static bool key_from_base64(const char *text, size_t len, unsigned char *out)
{
	char std[CRYPTO_KEY_CHARS + 4];
	unsigned char raw[CRYPTO_KEY_CHARS];
	size_t n = 0;
	int decoded;
	bool ok;

	while (len > 0 && text[len - 1] == '=')
		len--;
	if (len != 43)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i] == '-' ? '+' : text[i] == '_' ? '/' : text[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return false;
		std[n++] = c;
	}
	std[n++] = '=';
	std[n] = '\0';
	decoded = EVP_DecodeBlock(raw, (const unsigned char *)std, (int)n);
	/* EVP_DecodeBlock counts the padding as a zero byte: 33 for 32. */
	ok = decoded == VOX_CRYPTO_KEY_BYTES + 1;
	if (ok)
		memcpy(out, raw, VOX_CRYPTO_KEY_BYTES);
	OPENSSL_cleanse(std, sizeof(std));
	OPENSSL_cleanse(raw, sizeof(raw));
	return ok;
}

/* "[ID:]KEY" of length len; what says which setting it came from. */
static int key_parse(const char *text, size_t len, bool id_required,
                     struct crypto_key *key, vox_error_t *err)
{
	const char *colon = memchr(text, ':', len);
	long id = 1;

	if (colon != NULL) {
		char digits[8];
		size_t n = (size_t)(colon - text);
		char *end;

		if (n == 0 || n >= sizeof(digits))
			goto bad_id;
		memcpy(digits, text, n);
		digits[n] = '\0';
		id = strtol(digits, &end, 10);
		if (*end != '\0' || id < 1 || id > 255)
			goto bad_id;
		len -= n + 1;
		text = colon + 1;
	} else if (id_required) {
		goto bad_id;
	}
	key->id = (int)id;
	if (len > CRYPTO_KEY_CHARS || (!key_from_hex(text, len, key->bytes) &&
	                               !key_from_base64(text, len, key->bytes)))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "encryption key %ld is not 32 bytes as 64 "
		                     "hex digits or base64",
		                     id);
	return 0;
bad_id:
	return vox_error_set(err, VOX_ERR_INVALID, false,
	                     "an encryption key must be written ID:KEY with "
	                     "ID 1..255");
}

static int ring_add(vox_crypto_keyring_t *ring, const char *text, size_t len,
                    bool id_required, vox_error_t *err)
{
	struct crypto_key *key = &ring->keys[ring->nkeys];
	int rc;

	if (ring->nkeys == CRYPTO_MAX_KEYS)
		return vox_error_set(err, VOX_ERR_LIMIT, false,
		                     "at most %d encryption keys",
		                     CRYPTO_MAX_KEYS);
	rc = key_parse(text, len, id_required, key, err);
	if (rc != 0)
		return rc;
	for (int i = 0; i < ring->nkeys; i++)
		if (ring->keys[i].id == key->id)
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "two encryption keys have id %d",
			                     key->id);
	ring->nkeys++;
	return 0;
}

vox_crypto_keyring_t *vox_crypto_keyring_new(const char *current,
                                             const char *old, vox_error_t *err)
{
	vox_crypto_keyring_t *ring;
	const char *p, *comma;

	if (current == NULL || *current == '\0') {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "no encryption key given");
		return NULL;
	}
	ring = calloc(1, sizeof(*ring));
	if (ring == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, false, "out of memory");
		return NULL;
	}
	if (ring_add(ring, current, strlen(current), false, err) != 0)
		goto failed;
	for (p = old; p != NULL && *p != '\0'; p = comma ? comma + 1 : NULL) {
		comma = strchr(p, ',');
		if (ring_add(ring, p, comma ? (size_t)(comma - p) : strlen(p),
		             true, err) != 0)
			goto failed;
	}
	return ring;
failed:
	vox_crypto_keyring_destroy(ring);
	return NULL;
}

void vox_crypto_keyring_destroy(vox_crypto_keyring_t *ring)
{
	if (ring == NULL)
		return;
	OPENSSL_cleanse(ring, sizeof(*ring));
	free(ring);
}

int vox_crypto_key_id(const vox_crypto_keyring_t *ring)
{
	return ring->keys[0].id;
}

/* One AES-256-GCM pass: encrypt (tag written) or decrypt (tag checked).
 * header is authenticated before aad. */
static int gcm_run(bool encrypt, const unsigned char *key,
                   const unsigned char *nonce, const unsigned char *header,
                   const void *aad, size_t aad_len, const unsigned char *in,
                   size_t len, unsigned char *out, unsigned char *tag)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, aad_n = 0, ok;

	if (ctx == NULL)
		return -1;
	ok = EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL,
	                       encrypt) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CRYPTO_NONCE,
	                         NULL) == 1 &&
	     EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, encrypt) == 1 &&
	     EVP_CipherUpdate(ctx, NULL, &aad_n, header, CRYPTO_HEADER) == 1 &&
	     (aad_len == 0 ||
	      EVP_CipherUpdate(ctx, NULL, &aad_n, aad, (int)aad_len) == 1) &&
	     (len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1) &&
	     (encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
	                                     CRYPTO_TAG, tag) == 1) &&
	     EVP_CipherFinal_ex(ctx, out + n, &n) == 1 &&
	     (!encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
	                                      CRYPTO_TAG, tag) == 1);
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

int vox_crypto_seal(const vox_crypto_keyring_t *ring, const void *plain,
                    size_t len, const void *aad, size_t aad_len,
                    unsigned char **out, size_t *out_len, vox_error_t *err)
{
	const struct crypto_key *key = &ring->keys[0];
	unsigned char *sealed, *nonce;

	*out = NULL;
	if (len > INT32_MAX - VOX_CRYPTO_OVERHEAD || aad_len > INT32_MAX)
		return vox_error_set(err, VOX_ERR_LIMIT, false,
		                     "too large to seal");
	sealed = malloc(len + VOX_CRYPTO_OVERHEAD);
	if (sealed == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, false,
		                     "out of memory");
	sealed[0] = CRYPTO_FORMAT;
	sealed[1] = (unsigned char)key->id;
	nonce = sealed + CRYPTO_HEADER;
	if (RAND_bytes(nonce, CRYPTO_NONCE) != 1 ||
	    gcm_run(true, key->bytes, nonce, sealed, aad, aad_len, plain, len,
	            nonce + CRYPTO_NONCE, nonce + CRYPTO_NONCE + len) != 0) {
		free(sealed);
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "AES-256-GCM sealing failed");
	}
	*out = sealed;
	*out_len = len + VOX_CRYPTO_OVERHEAD;
	return 0;
}

int vox_crypto_mac_hex(const vox_crypto_keyring_t *ring, const void *data,
                       size_t len, char out[65])
{
	static const char label[] = "vox_crypto mac v1";
	unsigned char subkey[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
	unsigned int n = 0, m = 0;
	bool ok;

	ok = HMAC(EVP_sha256(), ring->keys[0].bytes, VOX_CRYPTO_KEY_BYTES,
	          (const unsigned char *)label, sizeof(label) - 1, subkey,
	          &n) != NULL &&
	     HMAC(EVP_sha256(), subkey, (int)n, data, len, mac, &m) != NULL &&
	     m == 32;
	/* out only now: it may be data (in place) */
	if (ok)
		vox_hex_encode(mac, 32, out);
	else
		out[0] = '\0';
	OPENSSL_cleanse(subkey, sizeof(subkey));
	return ok ? 0 : -1;
}

int vox_crypto_seal_hex(const vox_crypto_keyring_t *ring, const char *secret,
                        const char *aad, char **hex, vox_error_t *err)
{
	unsigned char *sealed = NULL;
	size_t sealed_len = 0;
	int rc;

	*hex = NULL;
	rc = vox_crypto_seal(ring, secret, strlen(secret), aad, strlen(aad),
	                     &sealed, &sealed_len, err);
	if (rc != 0)
		return rc;
	*hex = malloc(2 * sealed_len + 1);
	if (*hex == NULL)
		rc = vox_error_set(err, VOX_ERR_NOMEM, false, "out of memory");
	else
		vox_hex_encode(sealed, sealed_len, *hex);
	free(sealed);
	return rc;
}

int vox_crypto_open(const vox_crypto_keyring_t *ring,
                    const unsigned char *sealed, size_t len, const void *aad,
                    size_t aad_len, char **plain, size_t *plain_len,
                    vox_error_t *err)
{
	const struct crypto_key *key = NULL;
	size_t text_len;
	unsigned char tag[CRYPTO_TAG];
	char *text;

	*plain = NULL;
	if (len < VOX_CRYPTO_OVERHEAD || sealed[0] != CRYPTO_FORMAT ||
	    len > INT32_MAX || aad_len > INT32_MAX)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "not a sealed value");
	for (int i = 0; i < ring->nkeys && key == NULL; i++)
		if (ring->keys[i].id == sealed[1])
			key = &ring->keys[i];
	if (key == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "sealed with key %d, which is not "
		                     "configured",
		                     sealed[1]);
	text_len = len - VOX_CRYPTO_OVERHEAD;
	text = malloc(text_len + 1);
	if (text == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, false,
		                     "out of memory");
	memcpy(tag, sealed + len - CRYPTO_TAG, CRYPTO_TAG);
	if (gcm_run(false, key->bytes, sealed + CRYPTO_HEADER, sealed, aad,
	            aad_len, sealed + CRYPTO_HEADER + CRYPTO_NONCE, text_len,
	            (unsigned char *)text, tag) != 0) {
		OPENSSL_cleanse(text, text_len);
		free(text);
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "sealed value altered, or sealed for "
		                     "another place");
	}
	text[text_len] = '\0';
	*plain = text;
	*plain_len = text_len;
	return 0;
}

void vox_hex_encode(const void *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *bytes = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

void vox_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	vox_hex_encode(md, 32, out);
}
