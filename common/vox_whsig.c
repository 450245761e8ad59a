/*
 * vox_whsig: Standard Webhooks signatures on what we send, Twilio-style
 * signatures on what the SMS provider posts to us (vox_whsig.h).
 *
 * HMACs through OpenSSL's EVP_MAC (fed in parts, so the signed message is
 * never copied together), base64 through EVP_EncodeBlock/EVP_DecodeBlock,
 * secrets from RAND_bytes. Secrets are checked strictly (standard
 * alphabet, padding required) as the reference library's b64decode does,
 * so a secret we accept is one our customers' verifiers accept too.
 */
#include "vox_whsig.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHSIG_PREFIX     "whsec_"
#define WHSIG_PREFIX_LEN 6
#define WHSIG_KEY_MIN    16
#define WHSIG_KEY_MAX    64
#define WHSIG_KEY_NEW    24
#define WHSIG_SHA256_LEN 32
#define WHSIG_SHA1_LEN   20

/* One piece of the message an HMAC is computed over. */
struct mac_part {
	const void *data;
	size_t len;
};

/* HMAC(digest, key, parts...) into out (at least EVP_MAX_MD_SIZE). */
static int hmac_parts(const char *digest, const unsigned char *key,
                      size_t key_len, const struct mac_part *parts,
                      size_t nparts, unsigned char *out, size_t *out_len)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	int rc = -1;

	if (mac == NULL)
		return -1;
	ctx = EVP_MAC_CTX_new(mac);
	if (ctx == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	                                             (char *)digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, key, key_len, params) != 1)
		goto out;
	for (size_t i = 0; i < nparts; i++)
		if (parts[i].len > 0 &&
		    EVP_MAC_update(ctx, parts[i].data, parts[i].len) != 1)
			goto out;
	if (EVP_MAC_final(ctx, out, out_len, EVP_MAX_MD_SIZE) != 1)
		goto out;
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}

static bool is_b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Padded standard base64 of WHSIG_KEY_MIN..WHSIG_KEY_MAX bytes into key;
 * its length, or -1. EVP_DecodeBlock would skip blanks and count padding
 * as zero bytes, so the text is screened first and the padding taken off
 * the count here. */
static int key_decode(const char *text, unsigned char key[WHSIG_KEY_MAX + 3])
{
	size_t len = strlen(text), pad = 0;
	int decoded;

	if (len == 0 || len % 4 != 0 || len > (WHSIG_KEY_MAX + 2) / 3 * 4)
		return -1;
	while (pad < 2 && text[len - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < len - pad; i++)
		if (!is_b64_char(text[i]))
			return -1;
	decoded = EVP_DecodeBlock(key, (const unsigned char *)text, (int)len);
	if (decoded < 0)
		return -1;
	decoded -= (int)pad;
	if (decoded < WHSIG_KEY_MIN || decoded > WHSIG_KEY_MAX)
		return -1;
	return decoded;
}

int vox_whsig_secret_new(char out[VOX_WHSIG_SECRET_MAX])
{
	unsigned char raw[WHSIG_KEY_NEW];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	memcpy(out, WHSIG_PREFIX, WHSIG_PREFIX_LEN);
	EVP_EncodeBlock((unsigned char *)out + WHSIG_PREFIX_LEN, raw,
	                sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

bool vox_whsig_secret_valid(const char *secret)
{
	unsigned char key[WHSIG_KEY_MAX + 3];
	bool ok;

	if (secret == NULL ||
	    strncmp(secret, WHSIG_PREFIX, WHSIG_PREFIX_LEN) != 0)
		return false;
	ok = key_decode(secret + WHSIG_PREFIX_LEN, key) > 0;
	OPENSSL_cleanse(key, sizeof(key));
	return ok;
}

int vox_whsig_sign(const char *secret, const char *msg_id, long long timestamp,
                   const void *body, size_t body_len,
                   char out[VOX_WHSIG_SIG_MAX])
{
	unsigned char key[WHSIG_KEY_MAX + 3], mac[EVP_MAX_MD_SIZE];
	char stamp[24];
	size_t mac_len = 0;
	int key_len, rc = -1;

	if (secret == NULL || msg_id == NULL || (body == NULL && body_len) ||
	    timestamp < 0 ||
	    strncmp(secret, WHSIG_PREFIX, WHSIG_PREFIX_LEN) != 0)
		return -1;
	key_len = key_decode(secret + WHSIG_PREFIX_LEN, key);
	if (key_len < 0)
		goto out;
	snprintf(stamp, sizeof(stamp), "%lld", timestamp);
	struct mac_part parts[] = {
	        {msg_id, strlen(msg_id)}, {".", 1},
	        {stamp, strlen(stamp)},   {".", 1},
	        {body, body_len},
	};
	if (hmac_parts("SHA256", key, (size_t)key_len, parts,
	               sizeof(parts) / sizeof(parts[0]), mac, &mac_len) != 0 ||
	    mac_len != WHSIG_SHA256_LEN)
		goto out;
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_len);
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int vox_whsig_sign_all(const char *const *secrets, size_t n, const char *msg_id,
                       long long timestamp, const void *body, size_t body_len,
                       char *out, size_t outlen)
{
	char one[VOX_WHSIG_SIG_MAX];
	size_t used = 0;

	if (secrets == NULL || n < 1 || n > 2 || out == NULL || outlen == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t len;

		if (vox_whsig_sign(secrets[i], msg_id, timestamp, body,
		                   body_len, one) != 0)
			return -1;
		len = strlen(one);
		/* the separator, the entry and the final NUL must fit */
		if ((i > 0) + len + 1 > outlen - used)
			return -1;
		if (i > 0)
			out[used++] = ' ';
		memcpy(out + used, one, len);
		used += len;
	}
	out[used] = '\0';
	return 0;
}

/* Sort order of the form parameters: by name, then by value (as Twilio's
 * own libraries do for a name given twice), bytewise. */
struct form_pair {
	const char *name;
	const char *value;
};

static int form_pair_cmp(const void *a, const void *b)
{
	const struct form_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

int vox_whsig_twilio(const char *auth_token, const char *url,
                     const char *const *names, const char *const *values,
                     size_t n, char out[32])
{
	struct form_pair *pairs = NULL;
	struct mac_part *parts = NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t mac_len = 0;
	int rc = -1;

	/* an empty token is a missing setting, not a key */
	if (auth_token == NULL || auth_token[0] == '\0' || url == NULL ||
	    (n > 0 && (names == NULL || values == NULL)) || n > 100000)
		return -1;
	pairs = calloc(n + 1, sizeof(*pairs));
	parts = calloc(2 * n + 1, sizeof(*parts));
	if (pairs == NULL || parts == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (names[i] == NULL || values[i] == NULL)
			goto out;
		pairs[i].name = names[i];
		pairs[i].value = values[i];
	}
	qsort(pairs, n, sizeof(*pairs), form_pair_cmp);
	parts[0] = (struct mac_part){url, strlen(url)};
	for (size_t i = 0; i < n; i++) {
		parts[1 + 2 * i] =
		        (struct mac_part){pairs[i].name, strlen(pairs[i].name)};
		parts[2 + 2 * i] = (struct mac_part){pairs[i].value,
		                                     strlen(pairs[i].value)};
	}
	if (hmac_parts("SHA1", (const unsigned char *)auth_token,
	               strlen(auth_token), parts, 2 * n + 1, mac,
	               &mac_len) != 0 ||
	    mac_len != WHSIG_SHA1_LEN)
		goto out;
	EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
	rc = 0;
out:
	free(parts);
	free(pairs);
	return rc;
}

bool vox_whsig_equal(const char *a, const char *b)
{
	size_t len;

	if (a == NULL || b == NULL)
		return false;
	len = strlen(a);
	/* Lengths are not secret (every signature has the same one). */
	if (len != strlen(b))
		return false;
	return CRYPTO_memcmp(a, b, len) == 0;
}
