/* vox_auth: API key generation and hashing, JWT verification, roles. */
#include "vox_auth.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_crypto.h"
#include "vox_uuid.h"

static const struct {
	const char *name;
	unsigned perms;
} roles[] = {
        [VOX_ROLE_NONE] = {"none", 0},
        [VOX_ROLE_OWNER] = {"owner", VOX_PERM_READ | VOX_PERM_OPERATE |
                                             VOX_PERM_BILLING | VOX_PERM_KEYS |
                                             VOX_PERM_ACCOUNT},
        [VOX_ROLE_ADMIN] = {"admin", VOX_PERM_READ | VOX_PERM_OPERATE |
                                             VOX_PERM_BILLING | VOX_PERM_KEYS},
        [VOX_ROLE_DEVELOPER] = {"developer", VOX_PERM_READ | VOX_PERM_OPERATE},
        [VOX_ROLE_BILLING] = {"billing", VOX_PERM_READ | VOX_PERM_BILLING},
        [VOX_ROLE_VIEWER] = {"viewer", VOX_PERM_READ},
};

vox_role_t vox_role_parse(const char *name)
{
	for (int r = VOX_ROLE_OWNER; r <= VOX_ROLE_VIEWER; r++)
		if (name != NULL && strcmp(roles[r].name, name) == 0)
			return (vox_role_t)r;
	return VOX_ROLE_NONE;
}

const char *vox_role_name(vox_role_t role)
{
	return (unsigned)role <= VOX_ROLE_VIEWER ? roles[role].name : "none";
}

unsigned vox_role_perms(vox_role_t role)
{
	return (unsigned)role <= VOX_ROLE_VIEWER ? roles[role].perms : 0;
}

bool vox_role_allows(vox_role_t role, unsigned needed)
{
	return (vox_role_perms(role) & needed) == needed;
}

static const char b64url[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int vox_random_b64url(char *out, size_t outlen, vox_error_t *err)
{
	unsigned char raw[33]; /* 256 bits; one more byte pads to 44 chars */
	size_t n = 0;

	if (outlen < 44)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "key buffer too small");
	if (RAND_bytes(raw, 32) != 1)
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "no randomness for a key");
	raw[32] = 0;
	for (size_t i = 0; i < sizeof(raw); i += 3) {
		unsigned v = (unsigned)raw[i] << 16 |
		             (unsigned)raw[i + 1] << 8 | raw[i + 2];
		char quad[4] = {b64url[(v >> 18) & 63], b64url[(v >> 12) & 63],
		                b64url[(v >> 6) & 63], b64url[v & 63]};

		for (int k = 0; k < 4 && n < 43; k++)
			out[n++] = quad[k];
	}
	out[43] = '\0'; /* 43 chars carry the 256 random bits */
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int vox_apikey_generate(char *out, size_t outlen, vox_error_t *err)
{
	char body[44];
	int rc;

	if (outlen < VOX_APIKEY_LEN + 1)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "key buffer too small");
	rc = vox_random_b64url(body, sizeof(body), err);
	if (rc == 0)
		snprintf(out, outlen, "vox_%s", body);
	OPENSSL_cleanse(body, sizeof(body));
	return rc;
}

int vox_carrier_key_generate(char *out, size_t outlen, vox_error_t *err)
{
	char body[44];
	int rc;

	if (outlen < VOX_CARRIER_KEY_LEN + 1)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "key buffer too small");
	rc = vox_random_b64url(body, sizeof(body), err);
	if (rc == 0)
		snprintf(out, outlen, "voxc_%s", body);
	OPENSSL_cleanse(body, sizeof(body));
	return rc;
}

bool vox_carrier_key_well_formed(const char *key)
{
	if (key == NULL || strncmp(key, "voxc_", 5) != 0 ||
	    strlen(key) != VOX_CARRIER_KEY_LEN)
		return false;
	return strspn(key + 5, b64url) == VOX_CARRIER_KEY_LEN - 5;
}

bool vox_apikey_well_formed(const char *key)
{
	if (key == NULL || strncmp(key, "vox_", 4) != 0 ||
	    strlen(key) != VOX_APIKEY_LEN)
		return false;
	return strspn(key + 4, b64url) == VOX_APIKEY_LEN - 4;
}

void vox_apikey_hash_hex(const char *key, char out[65])
{
	vox_sha256_hex(key, strlen(key), out);
}

/* aud may be a string or an array of strings (RFC 7519 4.1.3). */
static bool jwt_audience_ok(jwt_t *jwt, const char *want)
{
	char *text = jwt_get_grants_json(jwt, "aud");
	json_t *aud;
	bool ok = false;

	if (text == NULL)
		return false;
	aud = json_loads(text, JSON_DECODE_ANY, NULL);
	free(text);
	if (json_is_string(aud)) {
		ok = strcmp(json_string_value(aud), want) == 0;
	} else if (json_is_array(aud)) {
		size_t i;
		json_t *v;

		json_array_foreach(aud, i, v) ok =
		        ok || (json_is_string(v) &&
		               strcmp(json_string_value(v), want) == 0);
	}
	json_decref(aud);
	return ok;
}

/* The claims libjwt does not check. */
static int jwt_claims(const vox_jwt_conf_t *conf, jwt_t *jwt, time_t now,
                      vox_error_t *err)
{
	long exp, nbf;
	const char *iss;

	errno = 0;
	exp = jwt_get_grant_int(jwt, "exp");
	if (errno != 0 || exp <= 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "token has no exp claim");
	if (now > exp + conf->leeway_s)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "token expired");
	errno = 0;
	nbf = jwt_get_grant_int(jwt, "nbf");
	if (errno == 0 && now + conf->leeway_s < nbf)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "token not valid yet (nbf)");
	if (conf->issuer != NULL) {
		iss = jwt_get_grant(jwt, "iss");
		if (iss == NULL || strcmp(iss, conf->issuer) != 0)
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "token issuer not accepted");
	}
	if (conf->audience != NULL && !jwt_audience_ok(jwt, conf->audience))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "token audience not accepted");
	return 0;
}

static int jwt_principal(jwt_t *jwt, vox_principal_t *who, vox_error_t *err)
{
	const char *account = jwt_get_grant(jwt, "vox_account");
	const char *role = jwt_get_grant(jwt, "vox_role");
	const char *sub = jwt_get_grant(jwt, "sub");

	if (account == NULL || !vox_uuid_valid(account))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "token has no vox_account claim");
	memset(who, 0, sizeof(*who));
	who->role = vox_role_parse(role);
	if (who->role == VOX_ROLE_NONE)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "token has no valid vox_role claim");
	snprintf(who->account_id, sizeof(who->account_id), "%s", account);
	snprintf(who->subject, sizeof(who->subject), "%s", sub ? sub : "");
	return 0;
}

/* The "alg" of the token's header, decoded by us: libjwt only decodes a
 * signed token when given a key, and then verifies with the token's own
 * choice of algorithm. Returns false when the header is unreadable. */
static bool jwt_header_alg(const char *token, char *alg, size_t alglen)
{
	const char *dot = strchr(token, '.');
	size_t n = dot ? (size_t)(dot - token) : 0, padded;
	unsigned char *decoded = NULL;
	char *b64 = NULL;
	json_t *head = NULL;
	bool ok = false;
	int len;

	if (n == 0 || n > 2048)
		return false;
	padded = (n + 3) / 4 * 4;
	b64 = malloc(padded + 1);
	decoded = malloc(padded);
	if (b64 == NULL || decoded == NULL)
		goto out;
	for (size_t i = 0; i < padded; i++)
		b64[i] = i < n ? (token[i] == '-'   ? '+'
		                  : token[i] == '_' ? '/'
		                                    : token[i])
		               : '=';
	b64[padded] = '\0';
	len = EVP_DecodeBlock(decoded, (unsigned char *)b64, (int)padded);
	if (len < 0)
		goto out;
	while (len > 0 && decoded[len - 1] == '\0')
		len--; /* EVP_DecodeBlock counts the padding bytes */
	head = json_loadb((const char *)decoded, (size_t)len, 0, NULL);
	if (json_is_string(json_object_get(head, "alg"))) {
		snprintf(alg, alglen, "%s",
		         json_string_value(json_object_get(head, "alg")));
		ok = true;
	}
out:
	json_decref(head);
	free(b64);
	free(decoded);
	return ok;
}

int vox_jwt_verify(const vox_jwt_conf_t *conf, const char *token, time_t now,
                   vox_principal_t *who, vox_error_t *err)
{
	jwt_alg_t pinned = jwt_str_alg(conf->alg);
	jwt_t *jwt = NULL;
	char alg[16];
	int rc;

	if (pinned == JWT_ALG_INVAL || pinned == JWT_ALG_NONE)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "no JWT algorithm configured");
	if (token == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false, "no token");
	/* Header first: libjwt verifies with whatever alg the token names,
	 * so an HS256 token "signed" with an RSA public key would pass. */
	if (!jwt_header_alg(token, alg, sizeof(alg)))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "malformed token");
	if (strcmp(alg, conf->alg) != 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "token algorithm not accepted");
	if (jwt_decode(&jwt, token, (const unsigned char *)conf->key,
	               (int)conf->keylen) != 0 ||
	    jwt == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "token signature not valid");
	if (jwt_get_alg(jwt) != pinned)
		rc = vox_error_set(err, VOX_ERR_INVALID, false,
		                   "token algorithm not accepted");
	else
		rc = jwt_claims(conf, jwt, now, err);
	if (rc == 0)
		rc = jwt_principal(jwt, who, err);
	jwt_free(jwt);
	return rc;
}
