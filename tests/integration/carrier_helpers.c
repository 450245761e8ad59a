/* Carrier credentials and signatures for tests (carrier_helpers.h). */
#include "carrier_helpers.h"

#include <criterion/criterion.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "vox_crypto.h"

/* A new active credential with a unique carrier name (SQL, as voxctl). */
void t_carrier_new(struct t_carrier *c)
{
	char hash[65], uuid[VOX_UUID_STRLEN];
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	vox_uuid7(c->id);
	vox_uuid7(uuid);
	/* the random tail of a UUIDv7: lowercase hex, unique */
	snprintf(c->name, sizeof(c->name), "t-%.4s%.12s", uuid + 19, uuid + 24);
	cr_assert_eq(vox_carrier_key_generate(c->key, sizeof(c->key), &err), 0);
	cr_assert_eq(vox_random_b64url(c->secret, sizeof(c->secret), &err), 0);
	vox_apikey_hash_hex(c->key, hash);
	const char *params[] = {c->id, c->name, c->key, hash, c->secret};
	cr_assert_eq(
	        vox_pg_exec(pg,
	                    "INSERT INTO carrier_credentials (id, carrier, "
	                    "key_prefix, key_hash, signing_secret) VALUES "
	                    "($1, $2, left($3, 12), decode($4, 'hex'), $5)",
	                    5, params, NULL, &err),
	        0, "%s", err.message);
	vox_pg_destroy(pg);
}

/* hex HMAC-SHA256(secret, "<t>.<body>") */
void t_carrier_sign(const char *secret, long long t, const char *body,
                    char out[65])
{
	size_t blen = strlen(body), len;
	char *msg = malloc(blen + 32);
	unsigned char md[32];
	unsigned int mdlen = 0;

	cr_assert_not_null(msg);
	len = (size_t)snprintf(msg, 32, "%lld.", t);
	memcpy(msg + len, body, blen);
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)msg,
	     len + blen, md, &mdlen);
	vox_hex_encode(md, 32, out);
	free(msg);
}
