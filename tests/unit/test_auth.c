/*
 * Tests of vox_auth: the role/permission table, API key generation, shape
 * check and hashing, and JWT verification against tokens made by libjwt
 * itself (plus hand-made ones libjwt would not make: alg "none", an HS256
 * token keyed with an RSA public key, tampered and garbage strings).
 */
#include <criterion/criterion.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_auth.h"

/* ---------------------------------------------------------------- roles */

static const unsigned all_perms[] = {
        VOX_PERM_READ, VOX_PERM_OPERATE, VOX_PERM_BILLING,
        VOX_PERM_KEYS, VOX_PERM_ACCOUNT,
};

/* The table of vox_auth.c, written out again on purpose. */
static const struct {
	vox_role_t role;
	const char *name;
	unsigned perms;
} role_table[] = {
        {VOX_ROLE_OWNER, "owner",
         VOX_PERM_READ | VOX_PERM_OPERATE | VOX_PERM_BILLING | VOX_PERM_KEYS |
                 VOX_PERM_ACCOUNT},
        {VOX_ROLE_ADMIN, "admin",
         VOX_PERM_READ | VOX_PERM_OPERATE | VOX_PERM_BILLING | VOX_PERM_KEYS},
        {VOX_ROLE_DEVELOPER, "developer", VOX_PERM_READ | VOX_PERM_OPERATE},
        {VOX_ROLE_BILLING, "billing", VOX_PERM_READ | VOX_PERM_BILLING},
        {VOX_ROLE_VIEWER, "viewer", VOX_PERM_READ},
        {VOX_ROLE_NONE, "none", 0},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

Test(auth_roles, each_role_allows_exactly_its_permissions)
{
	for (size_t r = 0; r < COUNT(role_table); r++) {
		cr_assert_eq(vox_role_perms(role_table[r].role),
		             role_table[r].perms, "%s", role_table[r].name);
		for (size_t p = 0; p < COUNT(all_perms); p++)
			cr_assert_eq(vox_role_allows(role_table[r].role,
			                             all_perms[p]),
			             (role_table[r].perms & all_perms[p]) != 0,
			             "%s / perm 0x%x", role_table[r].name,
			             all_perms[p]);
	}
}

Test(auth_roles, a_set_of_permissions_needs_all_of_them)
{
	cr_assert(
	        vox_role_allows(VOX_ROLE_ADMIN, VOX_PERM_READ | VOX_PERM_KEYS));
	cr_assert_not(vox_role_allows(VOX_ROLE_ADMIN,
	                              VOX_PERM_KEYS | VOX_PERM_ACCOUNT));
	cr_assert_not(vox_role_allows(VOX_ROLE_DEVELOPER,
	                              VOX_PERM_READ | VOX_PERM_BILLING));
	cr_assert_not(vox_role_allows(VOX_ROLE_BILLING,
	                              VOX_PERM_READ | VOX_PERM_OPERATE));
}

Test(auth_roles, names_round_trip_and_unknown_names_are_none)
{
	for (size_t r = 0; r < COUNT(role_table); r++)
		cr_assert_str_eq(vox_role_name(role_table[r].role),
		                 role_table[r].name);
	for (size_t r = 0; r + 1 < COUNT(role_table); r++)
		cr_assert_eq(vox_role_parse(role_table[r].name),
		             role_table[r].role);
	cr_assert_eq(vox_role_parse("none"), VOX_ROLE_NONE);
	cr_assert_eq(vox_role_parse("Owner"), VOX_ROLE_NONE);
	cr_assert_eq(vox_role_parse("owner "), VOX_ROLE_NONE);
	cr_assert_eq(vox_role_parse(""), VOX_ROLE_NONE);
	cr_assert_eq(vox_role_parse(NULL), VOX_ROLE_NONE);
	/* A role value from nowhere grants nothing. */
	cr_assert_str_eq(vox_role_name((vox_role_t)99), "none");
	cr_assert_eq(vox_role_perms((vox_role_t)99), 0);
	cr_assert_not(vox_role_allows((vox_role_t)99, VOX_PERM_READ));
}

/* ---------------------------------------------------------------- API keys */

#define KEY_ALPHABET                                                           \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

Test(auth_apikey, generated_keys_have_the_documented_shape)
{
	char key[VOX_APIKEY_LEN + 1];
	vox_error_t err;

	cr_assert_eq(vox_apikey_generate(key, sizeof(key), &err), 0, "%s",
	             err.message);
	cr_assert_eq(strlen(key), VOX_APIKEY_LEN);
	cr_assert_eq(strncmp(key, "vox_", 4), 0, "%s", key);
	cr_assert_eq(strspn(key + 4, KEY_ALPHABET), VOX_APIKEY_LEN - 4, "%s",
	             key);
	cr_assert(vox_apikey_well_formed(key), "%s", key);
}

Test(auth_apikey, a_small_buffer_is_refused)
{
	char key[VOX_APIKEY_LEN];
	vox_error_t err;

	cr_assert_eq(vox_apikey_generate(key, sizeof(key), &err),
	             VOX_ERR_INVALID);
}

Test(auth_carrier_key, generated_keys_have_the_documented_shape)
{
	char key[VOX_CARRIER_KEY_LEN + 1], secret[44], other[44];
	vox_error_t err;

	cr_assert_eq(vox_carrier_key_generate(key, sizeof(key), &err), 0);
	cr_assert_eq(strlen(key), VOX_CARRIER_KEY_LEN);
	cr_assert_eq(strncmp(key, "voxc_", 5), 0, "%s", key);
	cr_assert(vox_carrier_key_well_formed(key), "%s", key);
	/* the two kinds never pass for each other */
	cr_assert_not(vox_apikey_well_formed(key), "%s", key);
	cr_assert_eq(vox_random_b64url(secret, sizeof(secret), &err), 0);
	cr_assert_eq(vox_random_b64url(other, sizeof(other), &err), 0);
	cr_assert_eq(strlen(secret), 43);
	cr_assert_eq(strspn(secret, KEY_ALPHABET), 43, "%s", secret);
	cr_assert_str_neq(secret, other);
	cr_assert_eq(vox_random_b64url(secret, 43, &err), VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_key_generate(key, VOX_CARRIER_KEY_LEN, &err),
	             VOX_ERR_INVALID);
}

Test(auth_carrier_key, well_formed_refuses_other_shapes)
{
	char key[VOX_CARRIER_KEY_LEN + 1], api[VOX_APIKEY_LEN + 1];
	vox_error_t err;

	cr_assert_eq(vox_carrier_key_generate(key, sizeof(key), &err), 0);
	cr_assert_eq(vox_apikey_generate(api, sizeof(api), &err), 0);
	cr_assert_not(vox_carrier_key_well_formed(api), "%s", api);
	cr_assert_not(vox_carrier_key_well_formed(NULL));
	cr_assert_not(vox_carrier_key_well_formed("voxc_"));
	key[20] = '+';
	cr_assert_not(vox_carrier_key_well_formed(key), "%s", key);
	key[20] = 'A';
	key[VOX_CARRIER_KEY_LEN - 1] = '\0';
	cr_assert_not(vox_carrier_key_well_formed(key), "%s", key);
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int prefix_cmp(const void *a, const void *b)
{
	return strncmp(a, b, VOX_APIKEY_PREFIX_LEN);
}

Test(auth_apikey, a_thousand_keys_and_their_prefixes_are_distinct)
{
	static char keys[1000][VOX_APIKEY_LEN + 1];
	vox_error_t err;

	for (size_t i = 0; i < COUNT(keys); i++)
		cr_assert_eq(
		        vox_apikey_generate(keys[i], sizeof(keys[i]), &err), 0);
	qsort(keys, COUNT(keys), sizeof(keys[0]), key_cmp);
	for (size_t i = 1; i < COUNT(keys); i++)
		cr_assert_neq(strcmp(keys[i - 1], keys[i]), 0, "twice: %s",
		              keys[i]);
	/* The prefix is what people tell keys apart by: 48 random bits. */
	qsort(keys, COUNT(keys), sizeof(keys[0]), prefix_cmp);
	for (size_t i = 1; i < COUNT(keys); i++)
		cr_assert_neq(prefix_cmp(keys[i - 1], keys[i]), 0,
		              "prefix twice: %.12s", keys[i]);
}

Test(auth_apikey, well_formed_refuses_other_shapes)
{
	const char *good = "vox_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234";
	const char *bad[] = {
	        NULL,
	        "",
	        "vox_",
	        "vix_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234",
	        "VOX_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234",
	        "vox-abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_01234",
	        "voxabcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_012345",
	        "vox_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123",   /* 46 */
	        "vox_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_012345", /* 48 */
	        "vox_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ+_01234",
	        "vox_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ/_01234",
	        "vox_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123=",
	        "vox_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ _01234",
	        "vox_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ._01234",
	        "vox_abcdefghijklmnopqrstuvwxyzABCDEFGH\xc3\xa9-_01234", /* é */
	        " vox_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123",
	        "vox_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ-_0123\n",
	};

	cr_assert_eq(strlen(good), VOX_APIKEY_LEN);
	cr_assert(vox_apikey_well_formed(good));
	for (size_t i = 0; i < COUNT(bad); i++)
		cr_assert_not(vox_apikey_well_formed(bad[i]), "accepted \"%s\"",
		              bad[i] ? bad[i] : "(null)");
}

Test(auth_apikey, hash_is_lowercase_hex_sha256)
{
	char hex[65];

	vox_apikey_hash_hex("abc", hex);
	cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223"
	                      "b00361a396177a9cb410ff61f20015ad");
	vox_apikey_hash_hex("", hex);
	cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb924"
	                      "27ae41e4649b934ca495991b7852b855");
	vox_apikey_hash_hex("vox_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	                    hex);
	cr_assert_str_eq(hex, "9c26ece1c92c88f86a0acd82a990f0b9"
	                      "fc9084367bdd9a8a8c560e29e0fe2ae4");
}

/* ---------------------------------------------------------------- JWT */

#define NOW      1800000000L
#define ACCOUNT  "01900000-0000-7000-8000-0000000000a1"
#define ISSUER   "https://id.voxlink.test"
#define AUDIENCE "voxlink-api"
#define SECRET   "unit-test-hmac-secret-of-32-bytes!!"

/* Claims of a token to make; NULL or 0 leaves a claim out. */
struct claims {
	const char *sub;
	const char *account;
	const char *role;
	const char *iss;
	const char *aud;         /* a string */
	const char *grants_json; /* added as is: {"aud": [...]} */
	long exp;
	long nbf;
};

static const struct claims good_claims = {
        .sub = "user-42",
        .account = ACCOUNT,
        .role = "developer",
        .iss = ISSUER,
        .aud = AUDIENCE,
        .exp = NOW + 3600,
        .nbf = NOW - 60,
};

static vox_jwt_conf_t hs256_conf(void)
{
	return (vox_jwt_conf_t){
	        .alg = "HS256",
	        .key = SECRET,
	        .keylen = strlen(SECRET),
	        .issuer = ISSUER,
	        .audience = AUDIENCE,
	        .leeway_s = 30,
	};
}

/* A token libjwt signs with alg and key; free() it. */
static char *make_token(jwt_alg_t alg, const char *key, size_t keylen,
                        const struct claims *c)
{
	jwt_t *jwt = NULL;
	char *token;

	cr_assert_eq(jwt_new(&jwt), 0);
	if (c->sub)
		cr_assert_eq(jwt_add_grant(jwt, "sub", c->sub), 0);
	if (c->account)
		cr_assert_eq(jwt_add_grant(jwt, "vox_account", c->account), 0);
	if (c->role)
		cr_assert_eq(jwt_add_grant(jwt, "vox_role", c->role), 0);
	if (c->iss)
		cr_assert_eq(jwt_add_grant(jwt, "iss", c->iss), 0);
	if (c->aud)
		cr_assert_eq(jwt_add_grant(jwt, "aud", c->aud), 0);
	if (c->grants_json)
		cr_assert_eq(jwt_add_grants_json(jwt, c->grants_json), 0);
	if (c->exp)
		cr_assert_eq(jwt_add_grant_int(jwt, "exp", c->exp), 0);
	if (c->nbf)
		cr_assert_eq(jwt_add_grant_int(jwt, "nbf", c->nbf), 0);
	cr_assert_eq(
	        jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)keylen),
	        0);
	token = jwt_encode_str(jwt);
	cr_assert_not_null(token);
	jwt_free(jwt);
	return token;
}

static char *make_hs256(const struct claims *c)
{
	return make_token(JWT_ALG_HS256, SECRET, strlen(SECRET), c);
}

/* Asserts conf refuses token with a message containing why. */
static void assert_refused(const vox_jwt_conf_t *conf, const char *token,
                           const char *why)
{
	vox_principal_t who;
	vox_error_t err;

	vox_error_clear(&err);
	cr_assert_eq(vox_jwt_verify(conf, token, NOW, &who, &err),
	             VOX_ERR_INVALID, "accepted: %s", token);
	cr_assert_not_null(strstr(err.message, why), "\"%s\" is not \"%s\"",
	                   err.message, why);
}

static void assert_accepted(const vox_jwt_conf_t *conf, const char *token,
                            vox_principal_t *who)
{
	vox_error_t err;

	vox_error_clear(&err);
	cr_assert_eq(vox_jwt_verify(conf, token, NOW, who, &err), 0, "%s",
	             err.message);
}

/* base64url without padding, as JWS wants it; free() it. */
static char *b64url(const char *text)
{
	size_t len = strlen(text), n;
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	cr_assert_not_null(out);
	n = (size_t)EVP_EncodeBlock((unsigned char *)out,
	                            (const unsigned char *)text, (int)len);
	while (n > 0 && out[n - 1] == '=')
		out[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	return out;
}

/* "header.payload.signature" from JSON texts; free() it. */
static char *hand_token(const char *header_json, const char *payload_json,
                        const char *signature)
{
	char *head = b64url(header_json), *body = b64url(payload_json);
	size_t len = strlen(head) + strlen(body) + strlen(signature) + 3;
	char *token = malloc(len);

	cr_assert_not_null(token);
	snprintf(token, len, "%s.%s.%s", head, body, signature);
	free(head);
	free(body);
	return token;
}

#define GOOD_PAYLOAD                                                           \
	"{\"sub\":\"user-42\",\"vox_account\":\"" ACCOUNT                      \
	"\",\"vox_role\":\"owner\",\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE \
	"\",\"exp\":1800003600}"

Test(auth_jwt, a_valid_hs256_token_fills_the_principal)
{
	vox_jwt_conf_t conf = hs256_conf();
	char *token = make_hs256(&good_claims);
	vox_principal_t who;

	assert_accepted(&conf, token, &who);
	cr_assert_str_eq(who.account_id, ACCOUNT);
	cr_assert_eq(who.role, VOX_ROLE_DEVELOPER);
	cr_assert_str_eq(who.subject, "user-42");
	cr_assert_str_eq(who.key_id, "");
	free(token);
}

Test(auth_jwt, issuer_and_audience_are_optional_in_the_conf)
{
	vox_jwt_conf_t conf = hs256_conf();
	struct claims c = good_claims;
	vox_principal_t who;
	char *token;

	conf.issuer = NULL;
	conf.audience = NULL;
	c.iss = NULL;
	c.aud = NULL;
	c.sub = NULL;
	token = make_hs256(&c);
	assert_accepted(&conf, token, &who);
	cr_assert_str_eq(who.subject, "");
	free(token);
}

Test(auth_jwt, expiry_within_the_leeway_is_accepted)
{
	vox_jwt_conf_t conf = hs256_conf();
	struct claims c = good_claims;
	vox_principal_t who;
	char *token;

	c.exp = NOW - 20; /* leeway 30 */
	c.nbf = NOW + 20;
	token = make_hs256(&c);
	assert_accepted(&conf, token, &who);
	free(token);
}

Test(auth_jwt, an_expired_token_is_refused)
{
	vox_jwt_conf_t conf = hs256_conf();
	struct claims c = good_claims;
	char *token;

	c.exp = NOW - 31;
	token = make_hs256(&c);
	assert_refused(&conf, token, "token expired");
	free(token);
}

Test(auth_jwt, a_token_not_valid_yet_is_refused)
{
	vox_jwt_conf_t conf = hs256_conf();
	struct claims c = good_claims;
	char *token;

	c.nbf = NOW + 31;
	token = make_hs256(&c);
	assert_refused(&conf, token, "not valid yet");
	free(token);
}

Test(auth_jwt, a_token_without_exp_is_refused)
{
	vox_jwt_conf_t conf = hs256_conf();
	struct claims c = good_claims;
	char *token;

	c.exp = 0;
	token = make_hs256(&c);
	assert_refused(&conf, token, "no exp");
	free(token);
	c.grants_json = "{\"exp\":\"1800003600\"}"; /* a string is not a time */
	token = make_hs256(&c);
	assert_refused(&conf, token, "no exp");
	free(token);
}

Test(auth_jwt, a_wrong_or_missing_issuer_is_refused)
{
	vox_jwt_conf_t conf = hs256_conf();
	struct claims c = good_claims;
	char *token;

	c.iss = "https://evil.example";
	token = make_hs256(&c);
	assert_refused(&conf, token, "issuer not accepted");
	free(token);
	c.iss = NULL;
	token = make_hs256(&c);
	assert_refused(&conf, token, "issuer not accepted");
	free(token);
}

Test(auth_jwt, audience_as_a_string)
{
	vox_jwt_conf_t conf = hs256_conf();
	struct claims c = good_claims;
	vox_principal_t who;
	char *token;

	c.aud = "another-api";
	token = make_hs256(&c);
	assert_refused(&conf, token, "audience not accepted");
	free(token);
	c.aud = NULL;
	token = make_hs256(&c);
	assert_refused(&conf, token, "audience not accepted");
	free(token);
	c.aud = AUDIENCE;
	token = make_hs256(&c);
	assert_accepted(&conf, token, &who);
	free(token);
}

Test(auth_jwt, audience_as_an_array)
{
	vox_jwt_conf_t conf = hs256_conf();
	struct claims c = good_claims;
	vox_principal_t who;
	char *token;

	c.aud = NULL;
	c.grants_json = "{\"aud\":[\"billing-api\",\"" AUDIENCE "\"]}";
	token = make_hs256(&c);
	assert_accepted(&conf, token, &who);
	free(token);
	c.grants_json = "{\"aud\":[\"billing-api\",\"other\"]}";
	token = make_hs256(&c);
	assert_refused(&conf, token, "audience not accepted");
	free(token);
	c.grants_json = "{\"aud\":[]}";
	token = make_hs256(&c);
	assert_refused(&conf, token, "audience not accepted");
	free(token);
	c.grants_json = "{\"aud\":[42,{\"a\":\"" AUDIENCE "\"}]}";
	token = make_hs256(&c);
	assert_refused(&conf, token, "audience not accepted");
	free(token);
}

Test(auth_jwt, alg_none_is_refused)
{
	vox_jwt_conf_t conf = hs256_conf();
	const char *headers[] = {
	        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
	        "{\"alg\":\"None\",\"typ\":\"JWT\"}",
	        "{\"alg\":\"NONE\"}",
	        "{\"typ\":\"JWT\"}",
	};

	for (size_t i = 0; i < COUNT(headers); i++) {
		char *token = hand_token(headers[i], GOOD_PAYLOAD, "");

		assert_refused(&conf, token,
		               i < 3 ? "algorithm not accepted"
		                     : "malformed token");
		free(token);
	}
	/* nor can the conf itself ask for it */
	conf.alg = "none";
	{
		char *token = hand_token(headers[0], GOOD_PAYLOAD, "");

		assert_refused(&conf, token, "no JWT algorithm configured");
		free(token);
	}
}

Test(auth_jwt, an_hs256_header_with_an_empty_signature_is_refused)
{
	vox_jwt_conf_t conf = hs256_conf();
	char *token = hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
	                         GOOD_PAYLOAD, "");

	assert_refused(&conf, token, "signature not valid");
	free(token);
}

Test(auth_jwt, a_token_signed_with_another_secret_is_refused)
{
	vox_jwt_conf_t conf = hs256_conf();
	const char *other = "another-secret-of-thirty-two-bytes!";
	char *token =
	        make_token(JWT_ALG_HS256, other, strlen(other), &good_claims);

	assert_refused(&conf, token, "signature not valid");
	free(token);
}

Test(auth_jwt, a_tampered_signature_is_refused)
{
	vox_jwt_conf_t conf = hs256_conf();
	char *token = make_hs256(&good_claims);
	char *sig = strrchr(token, '.') + 1;

	/* Not the last character: its low bits are only padding. */
	sig[5] = sig[5] == 'A' ? 'B' : 'A';
	assert_refused(&conf, token, "signature not valid");
	free(token);
}

Test(auth_jwt, a_payload_from_another_token_is_refused)
{
	vox_jwt_conf_t conf = hs256_conf();
	struct claims c = good_claims;
	char *viewer, *owner, *spliced;
	size_t len;

	c.role = "viewer";
	viewer = make_hs256(&c);
	c.role = "owner";
	owner = make_hs256(&c);
	/* owner's header and payload under viewer's signature */
	len = strlen(owner) + strlen(viewer) + 1;
	spliced = malloc(len);
	cr_assert_not_null(spliced);
	snprintf(spliced, len, "%.*s%s", (int)(strrchr(owner, '.') - owner),
	         owner, strrchr(viewer, '.'));
	assert_refused(&conf, spliced, "signature not valid");
	free(spliced);
	free(viewer);
	free(owner);
}

Test(auth_jwt, account_and_role_claims_are_required)
{
	vox_jwt_conf_t conf = hs256_conf();
	struct claims c = good_claims;
	char *token;

	c.account = NULL;
	token = make_hs256(&c);
	assert_refused(&conf, token, "no vox_account");
	free(token);
	c.account = "not-a-uuid";
	token = make_hs256(&c);
	assert_refused(&conf, token, "no vox_account");
	free(token);
	c.account = ACCOUNT;
	c.role = "root";
	token = make_hs256(&c);
	assert_refused(&conf, token, "vox_role");
	free(token);
	c.role = "none";
	token = make_hs256(&c);
	assert_refused(&conf, token, "vox_role");
	free(token);
	c.role = NULL;
	token = make_hs256(&c);
	assert_refused(&conf, token, "vox_role");
	free(token);
}

Test(auth_jwt, garbage_is_refused_without_crashing)
{
	vox_jwt_conf_t conf = hs256_conf();
	static char long_garbage[70000];
	const char *garbage[] = {
	        "",
	        ".",
	        "..",
	        "...",
	        "abc",
	        "a.b.c",
	        "eyJ.eyJ.",
	        "Bearer xyz",
	        "\xff\xfe.\x01\x02.\x80",
	        "eyJhbGciOiJIUzI1NiJ9",
	        "eyJhbGciOiJIUzI1NiJ9.",
	        "eyJhbGciOiJIUzI1NiJ9..",
	        "eyJhbGciOiJIUzI1NiJ9.!!!!.????",
	        "eyJhbGciOiJIUzI1NiJ9.e30.",
	        "W10.e30.",          /* header [] */
	        "eyJhbGciOjF9.e30.", /* {"alg":1} */
	        "=====.=====.=====",
	        long_garbage,
	};
	vox_principal_t who;
	vox_error_t err;

	memset(long_garbage, 'e', sizeof(long_garbage) - 1);
	long_garbage[100] = '.';
	long_garbage[200] = '.';
	for (size_t i = 0; i < COUNT(garbage); i++)
		cr_assert_eq(vox_jwt_verify(&conf, garbage[i], NOW, &who, &err),
		             VOX_ERR_INVALID, "accepted garbage #%zu", i);
}

/* ---------------------------------------------------------------- RS256 */

struct rsa_pem {
	char *private_pem;
	char *public_pem;
};

static char *bio_text(BIO *bio)
{
	char *data, *text;
	long len = BIO_get_mem_data(bio, &data);

	text = malloc((size_t)len + 1);
	cr_assert_not_null(text);
	memcpy(text, data, (size_t)len);
	text[len] = '\0';
	return text;
}

/* A fresh 2048-bit pair as PEM text; free both. */
static struct rsa_pem rsa_pair(void)
{
	EVP_PKEY *pkey = EVP_RSA_gen(2048);
	BIO *priv = BIO_new(BIO_s_mem()), *pub = BIO_new(BIO_s_mem());
	struct rsa_pem pem;

	cr_assert_not_null(pkey);
	cr_assert_eq(
	        PEM_write_bio_PrivateKey(priv, pkey, NULL, NULL, 0, NULL, NULL),
	        1);
	cr_assert_eq(PEM_write_bio_PUBKEY(pub, pkey), 1);
	pem.private_pem = bio_text(priv);
	pem.public_pem = bio_text(pub);
	BIO_free(priv);
	BIO_free(pub);
	EVP_PKEY_free(pkey);
	return pem;
}

static vox_jwt_conf_t rs256_conf(const struct rsa_pem *pem)
{
	vox_jwt_conf_t conf = hs256_conf();

	conf.alg = "RS256";
	conf.key = pem->public_pem;
	conf.keylen = strlen(pem->public_pem);
	return conf;
}

Test(auth_jwt, a_valid_rs256_token_is_accepted, .timeout = 30)
{
	struct rsa_pem pem = rsa_pair();
	vox_jwt_conf_t conf = rs256_conf(&pem);
	char *token = make_token(JWT_ALG_RS256, pem.private_pem,
	                         strlen(pem.private_pem), &good_claims);
	vox_principal_t who;

	assert_accepted(&conf, token, &who);
	cr_assert_str_eq(who.account_id, ACCOUNT);
	cr_assert_eq(who.role, VOX_ROLE_DEVELOPER);
	free(token);
	free(pem.private_pem);
	free(pem.public_pem);
}

Test(auth_jwt, an_rs256_token_of_another_key_pair_is_refused, .timeout = 30)
{
	struct rsa_pem pem = rsa_pair(), other = rsa_pair();
	vox_jwt_conf_t conf = rs256_conf(&pem);
	char *token = make_token(JWT_ALG_RS256, other.private_pem,
	                         strlen(other.private_pem), &good_claims);

	assert_refused(&conf, token, "signature not valid");
	free(token);
	free(pem.private_pem);
	free(pem.public_pem);
	free(other.private_pem);
	free(other.public_pem);
}

/* The classic swap: the verifier's RSA public key is public, so an attacker
 * HMACs a token with it and names HS256; a verifier that follows the
 * token's alg checks that HMAC with the same bytes and accepts it. */
Test(auth_jwt, hs256_keyed_with_the_rsa_public_key_is_refused, .timeout = 30)
{
	struct rsa_pem pem = rsa_pair();
	vox_jwt_conf_t conf = rs256_conf(&pem);
	struct claims c = good_claims;
	char *token;

	c.role = "owner";
	token = make_token(JWT_ALG_HS256, pem.public_pem,
	                   strlen(pem.public_pem), &c);
	assert_refused(&conf, token, "algorithm not accepted");
	free(token);
	/* and the other way round: RS256 tokens when HS256 is pinned */
	token = make_token(JWT_ALG_RS256, pem.private_pem,
	                   strlen(pem.private_pem), &c);
	conf = hs256_conf();
	assert_refused(&conf, token, "algorithm not accepted");
	free(token);
	free(pem.private_pem);
	free(pem.public_pem);
}
