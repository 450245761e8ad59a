/*
 * Tests of vox_crypto: seal/open round trips, the NIST AES-256-GCM vector,
 * key formats, rotation (old keys open, the current one seals), and every
 * way a sealed value can fail to open (other aad, altered byte, unknown
 * key, truncated).
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "vox_crypto.h"

#define HEX_KEY1                                                               \
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define HEX_KEY2                                                               \
	"1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100"

static vox_crypto_keyring_t *ring_or_fail(const char *current, const char *old)
{
	vox_error_t err = {0};
	vox_crypto_keyring_t *ring = vox_crypto_keyring_new(current, old, &err);

	cr_assert_not_null(ring, "%s", err.message);
	return ring;
}

static char *open_or_null(const vox_crypto_keyring_t *ring,
                          const unsigned char *sealed, size_t len,
                          const char *aad, vox_error_t *err)
{
	char *plain = NULL;
	size_t plain_len = 0;

	if (vox_crypto_open(ring, sealed, len, aad, strlen(aad), &plain,
	                    &plain_len, err) != 0)
		return NULL;
	cr_assert_eq(strlen(plain), plain_len);
	return plain;
}

Test(crypto, seal_open_round_trip)
{
	vox_crypto_keyring_t *ring = ring_or_fail(HEX_KEY1, NULL);
	const char *secret = "{\"key\":\"vox_secret\"}";
	unsigned char *a = NULL, *b = NULL;
	size_t alen, blen;
	vox_error_t err = {0};
	char *plain;

	cr_assert_eq(vox_crypto_seal(ring, secret, strlen(secret), "acct/ik", 7,
	                             &a, &alen, &err),
	             0, "%s", err.message);
	cr_assert_eq(alen, strlen(secret) + VOX_CRYPTO_OVERHEAD);
	cr_assert_eq(a[0], 0x01);
	cr_assert_eq(a[1], 1, "key id");
	cr_assert_null(memmem(a, alen, "vox_secret", 10), "plaintext visible");
	/* A fresh nonce each time: the same secret never seals the same. */
	cr_assert_eq(vox_crypto_seal(ring, secret, strlen(secret), "acct/ik", 7,
	                             &b, &blen, &err),
	             0);
	cr_assert(memcmp(a + 2, b + 2, 12) != 0, "nonce reused");
	plain = open_or_null(ring, a, alen, "acct/ik", &err);
	cr_assert_not_null(plain, "%s", err.message);
	cr_assert_str_eq(plain, secret);
	free(plain);
	/* Empty plaintext and empty aad work too. */
	free(b);
	cr_assert_eq(vox_crypto_seal(ring, "", 0, NULL, 0, &b, &blen, &err), 0);
	plain = open_or_null(ring, b, blen, "", &err);
	cr_assert_not_null(plain, "%s", err.message);
	cr_assert_str_eq(plain, "");
	free(plain);
	free(a);
	free(b);
	vox_crypto_keyring_destroy(ring);
}

/* The GCM core against NIST's test case 16 (AES-256, 96-bit IV, AAD),
 * through EVP like vox_crypto: the framing is ours, the cipher must not
 * be. */
Test(crypto, nist_vector_through_evp)
{
	static const unsigned char key[32] = {
	        0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c,
	        0x6d, 0x6a, 0x8f, 0x94, 0x67, 0x30, 0x83, 0x08,
	        0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c,
	        0x6d, 0x6a, 0x8f, 0x94, 0x67, 0x30, 0x83, 0x08};
	static const unsigned char iv[12] = {0xca, 0xfe, 0xba, 0xbe,
	                                     0xfa, 0xce, 0xdb, 0xad,
	                                     0xde, 0xca, 0xf8, 0x88};
	static const unsigned char aad[20] = {
	        0xfe, 0xed, 0xfa, 0xce, 0xde, 0xad, 0xbe, 0xef, 0xfe, 0xed,
	        0xfa, 0xce, 0xde, 0xad, 0xbe, 0xef, 0xab, 0xad, 0xda, 0xd2};
	static const unsigned char want_tag[16] = {
	        0x76, 0xfc, 0x6e, 0xce, 0x0f, 0x4e, 0x17, 0x68,
	        0xcd, 0xdf, 0x88, 0x53, 0xbb, 0x2d, 0x55, 0x1b};
	static const char plain_hex[] =
	        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a"
	        "721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
	unsigned char plain[60], out[64], tag[16];
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0;

	for (size_t i = 0; i < sizeof(plain); i++) {
		unsigned int v;

		sscanf(plain_hex + 2 * i, "%2x", &v);
		plain[i] = (unsigned char)v;
	}
	cr_assert(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv));
	cr_assert(EVP_EncryptUpdate(ctx, NULL, &n, aad, sizeof(aad)));
	cr_assert(EVP_EncryptUpdate(ctx, out, &n, plain, sizeof(plain)));
	cr_assert(EVP_EncryptFinal_ex(ctx, out + n, &n));
	cr_assert(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag));
	EVP_CIPHER_CTX_free(ctx);
	cr_assert_eq(out[0], 0x52);
	cr_assert_eq(out[59], 0x62);
	cr_assert_arr_eq(tag, want_tag, 16);
}

Test(crypto, open_refuses_other_aad_altered_unknown_truncated)
{
	vox_crypto_keyring_t *ring = ring_or_fail(HEX_KEY1, NULL);
	vox_crypto_keyring_t *other = ring_or_fail("2:" HEX_KEY2, NULL);
	unsigned char *sealed = NULL;
	size_t len;
	vox_error_t err = {0};

	cr_assert_eq(vox_crypto_seal(ring, "secret", 6, "a/1", 3, &sealed, &len,
	                             &err),
	             0);
	cr_assert_null(open_or_null(ring, sealed, len, "a/2", &err));
	cr_assert_eq(err.code, VOX_ERR_INVALID);
	for (size_t i = 0; i < len; i++) {
		sealed[i] ^= 0x01;
		cr_assert_null(open_or_null(ring, sealed, len, "a/1", &err),
		               "byte %zu altered but opened", i);
		sealed[i] ^= 0x01;
	}
	cr_assert_null(open_or_null(other, sealed, len, "a/1", &err));
	cr_assert_not_null(strstr(err.message, "key 1"), "%s", err.message);
	cr_assert_null(open_or_null(ring, sealed, VOX_CRYPTO_OVERHEAD - 1,
	                            "a/1", &err));
	free(sealed);
	vox_crypto_keyring_destroy(ring);
	vox_crypto_keyring_destroy(other);
}

Test(crypto, rotation_old_keys_open_current_seals)
{
	vox_crypto_keyring_t *old_ring = ring_or_fail(HEX_KEY1, NULL);
	vox_crypto_keyring_t *ring = ring_or_fail("2:" HEX_KEY2, "1:" HEX_KEY1);
	unsigned char *before = NULL, *after = NULL;
	size_t blen, alen;
	vox_error_t err = {0};
	char *plain;

	cr_assert_eq(vox_crypto_key_id(ring), 2);
	cr_assert_eq(vox_crypto_seal(old_ring, "v1", 2, "x", 1, &before, &blen,
	                             &err),
	             0);
	cr_assert_eq(
	        vox_crypto_seal(ring, "v2", 2, "x", 1, &after, &alen, &err), 0);
	cr_assert_eq(after[1], 2);
	plain = open_or_null(ring, before, blen, "x", &err);
	cr_assert_not_null(plain, "%s", err.message);
	cr_assert_str_eq(plain, "v1");
	free(plain);
	cr_assert_null(open_or_null(old_ring, after, alen, "x", &err));
	free(before);
	free(after);
	vox_crypto_keyring_destroy(old_ring);
	vox_crypto_keyring_destroy(ring);
}

Test(crypto, key_formats)
{
	/* The same 32 bytes as hex, base64 (padded or not) and base64url. */
	static const char *const same[] = {
	        HEX_KEY1, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
	        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
	        "7:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"};
	static const char *const bad[] = {
	        "00",
	        HEX_KEY1 "00",
	        "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e"
	        "1f",
	        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh",
	        "0:" HEX_KEY1,
	        "256:" HEX_KEY1,
	        "x:" HEX_KEY1,
	        ""};
	vox_crypto_keyring_t *ring = ring_or_fail(HEX_KEY1, NULL);
	unsigned char *sealed = NULL;
	size_t len;
	vox_error_t err = {0};

	cr_assert_eq(vox_crypto_seal(ring, "k", 1, "", 0, &sealed, &len, &err),
	             0);
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		/* Key id 7 for the last: open it through an old-key slot. */
		vox_crypto_keyring_t *r =
		        i == 3 ? ring_or_fail(same[3], "1:" HEX_KEY1)
		               : ring_or_fail(same[i], NULL);
		char *plain = open_or_null(r, sealed, len, "", &err);

		cr_assert_not_null(plain, "form %zu: %s", i, err.message);
		free(plain);
		vox_crypto_keyring_destroy(r);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vox_crypto_keyring_t *r =
		        vox_crypto_keyring_new(bad[i], NULL, &err);

		cr_assert_null(r, "bad key %zu accepted", i);
		cr_assert_null(strstr(err.message, "0102030405"),
		               "key material in \"%s\"", err.message);
	}
	/* Old keys need an id, and ids are unique. */
	cr_assert_null(vox_crypto_keyring_new(HEX_KEY1, HEX_KEY2, &err));
	cr_assert_null(vox_crypto_keyring_new(HEX_KEY1, "1:" HEX_KEY2, &err));
	cr_assert_not_null(strstr(err.message, "id 1"), "%s", err.message);
	free(sealed);
	vox_crypto_keyring_destroy(ring);
}

Test(crypto, hex_and_sha256_hex)
{
	const unsigned char bytes[] = {0x00, 0x0f, 0xa5, 0xff};
	char hex[9], digest[65];

	vox_hex_encode(bytes, sizeof(bytes), hex);
	cr_assert_str_eq(hex, "000fa5ff");
	vox_hex_encode(bytes, 0, hex);
	cr_assert_str_eq(hex, "");
	/* FIPS 180-2, appendix B.1 */
	vox_sha256_hex("abc", 3, digest);
	cr_assert_str_eq(digest, "ba7816bf8f01cfea414140de5dae2223"
	                         "b00361a396177a9cb410ff61f20015ad");
}

Test(crypto, mac_is_keyed_stable_and_not_a_plain_hash)
{
	vox_crypto_keyring_t *a = ring_or_fail(HEX_KEY1, NULL);
	vox_crypto_keyring_t *a2 = ring_or_fail(HEX_KEY1, NULL);
	vox_crypto_keyring_t *b = ring_or_fail(HEX_KEY2, NULL);
	char ma[65], ma2[65], mb[65], mother[65], sha[65];
	const char *data = "POST\n/v1/porting-orders\n{\"pin\":\"0100\"}";

	cr_assert_eq(vox_crypto_mac_hex(a, data, strlen(data), ma), 0);
	cr_assert_eq(vox_crypto_mac_hex(a2, data, strlen(data), ma2), 0);
	cr_assert_eq(vox_crypto_mac_hex(b, data, strlen(data), mb), 0);
	cr_assert_eq(vox_crypto_mac_hex(a, data, strlen(data) - 1, mother), 0);
	vox_sha256_hex(data, strlen(data), sha);
	cr_expect_eq(strlen(ma), 64);
	cr_expect_str_eq(ma, ma2, "the same key gives the same digest");
	cr_expect_str_neq(ma, mb, "another key, another digest");
	cr_expect_str_neq(ma, mother);
	cr_expect_str_neq(ma, sha);
	/* in place, as idem.c uses it */
	char inplace[65];
	memcpy(inplace, sha, sizeof(inplace));
	cr_assert_eq(vox_crypto_mac_hex(a, inplace, 64, inplace), 0);
	char direct[65];
	cr_assert_eq(vox_crypto_mac_hex(a, sha, 64, direct), 0);
	cr_expect_str_eq(inplace, direct);
	vox_crypto_keyring_destroy(a);
	vox_crypto_keyring_destroy(a2);
	vox_crypto_keyring_destroy(b);
}
