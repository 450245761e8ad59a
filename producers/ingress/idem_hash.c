/*
 * The Idempotency-Key request hash: what makes two requests "the same
 * request" (idem.c). SHA-256 over method, path and the body as canonical
 * JSON, so a client that re-serialises its retry (other key order, other
 * whitespace, other string escapes) still gets the first answer.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress.h"
#include "vox_crypto.h"
#include "vox_json.h"

/* The body as canonical JSON (keys sorted, no whitespace), malloc'd; NULL
 * when it is not JSON that vox_json_parse accepts (duplicate keys, too
 * deep, NUL...): then the raw bytes are hashed, so two such bodies match
 * only when identical. */
static char *canonical_body(const char *body, size_t len)
{
	json_t *doc;
	char *text;

	if (len == 0 || (doc = vox_json_parse(body, len, VOX_JSON_DEFAULT_DEPTH,
	                                      NULL)) == NULL)
		return NULL;
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY |
	                               JSON_REAL_PRECISION(17));
	json_decref(doc);
	return text;
}

/* SHA-256 over method, path and canonical body, as hex. */
void idem_request_hash(const char *method, const char *path, const char *body,
                       size_t body_len, char out[65])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	char *canonical = canonical_body(body, body_len);

	if (canonical != NULL) {
		body = canonical;
		body_len = strlen(canonical);
	}
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, method, strlen(method));
	EVP_DigestUpdate(md, "\n", 1);
	EVP_DigestUpdate(md, path, strlen(path));
	EVP_DigestUpdate(md, "\n", 1);
	EVP_DigestUpdate(md, body, body_len);
	EVP_DigestFinal_ex(md, digest, &len);
	EVP_MD_CTX_free(md);
	free(canonical);
	vox_hex_encode(digest, 32, out);
}
