/*
 * vox_gateway_sig: the payment gateway's webhook signature (vox_gateway.h):
 * "Gateway-Signature: t=<unix s>,v1=<hex>[,v1=<hex>...]",
 * v1 = hex(HMAC-SHA256(secret, "<t>." body)).
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "vox_crypto.h"
#include "vox_gateway.h"

int vox_gateway_signature_check(const char *secret, const char *header,
                                const char *body, size_t len, int64_t now_s,
                                int tolerance_s, vox_error_t *err)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char want[2 * EVP_MAX_MD_SIZE + 1], tbuf[24];
	const char *p;
	bool have_t = false, match = false;
	long long t = 0;

	if (secret == NULL || *secret == '\0' || header == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "no Gateway-Signature");
	/* t first: the signed payload starts with it */
	for (p = header; *p != '\0';) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n > 2 && strncmp(p, "t=", 2) == 0 && n - 2 < sizeof(tbuf)) {
			char *stop;

			memcpy(tbuf, p + 2, n - 2);
			tbuf[n - 2] = '\0';
			t = strtoll(tbuf, &stop, 10);
			have_t = *stop == '\0' && stop != tbuf;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (!have_t)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "Gateway-Signature has no timestamp");
	if (t < now_s - tolerance_s || t > now_s + tolerance_s)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "Gateway-Signature timestamp outside the "
		                     "%d s window",
		                     tolerance_s);
	{
		size_t tl = strlen(tbuf);
		char *signed_payload = malloc(tl + 1 + len + 1);

		if (signed_payload == NULL)
			return vox_error_set(err, VOX_ERR_NOMEM, true,
			                     "out of memory");
		memcpy(signed_payload, tbuf, tl);
		signed_payload[tl] = '.';
		if (len > 0)
			memcpy(signed_payload + tl + 1, body, len);
		if (HMAC(EVP_sha256(), secret, (int)strlen(secret),
		         (const unsigned char *)signed_payload, tl + 1 + len,
		         mac, &maclen) == NULL) {
			free(signed_payload);
			return vox_error_set(err, VOX_ERR_INTERNAL, false,
			                     "HMAC failed");
		}
		free(signed_payload);
	}
	vox_hex_encode(mac, maclen, want);
	for (p = header; *p != '\0';) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == 3 + 2 * (size_t)maclen && strncmp(p, "v1=", 3) == 0 &&
		    CRYPTO_memcmp(p + 3, want, 2 * (size_t)maclen) == 0)
			match = true;
		p += n;
		if (*p == ',')
			p++;
	}
	if (!match)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "Gateway-Signature does not match");
	return 0;
}
