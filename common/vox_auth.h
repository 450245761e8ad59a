/*
 * vox_auth: credentials and what they may do.
 *
 * API keys are "vox_" followed by 43 base64url characters (256 random
 * bits). Only their SHA-256 is stored; the first 12 characters (the
 * "prefix") are kept in clear so people can tell keys apart.
 *
 * JWTs are verified with libjwt against ONE configured algorithm: a token
 * whose header names another (including "none") is refused before its
 * signature is looked at, and exp/nbf/iss/aud are checked here because
 * libjwt 1.10 does not. Claims: sub, vox_account (account id), vox_role.
 *
 * Roles and permissions: docs/PERMISSIONS.md is the matrix in prose.
 */
#ifndef VOX_AUTH_H
#define VOX_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "vox_error.h"

#define VOX_APIKEY_LEN        47 /* "vox_" + 43 */
#define VOX_APIKEY_PREFIX_LEN 12

typedef enum vox_role {
	VOX_ROLE_NONE = 0,
	VOX_ROLE_OWNER,
	VOX_ROLE_ADMIN,
	VOX_ROLE_DEVELOPER,
	VOX_ROLE_BILLING,
	VOX_ROLE_VIEWER,
} vox_role_t;

/* What a route needs; a role holds a set of these. */
typedef enum vox_perm {
	VOX_PERM_READ = 1 << 0,    /* read the account's resources */
	VOX_PERM_OPERATE = 1 << 1, /* commands on numbers, porting, config */
	VOX_PERM_BILLING = 1 << 2, /* invoices, payments, payment methods */
	VOX_PERM_KEYS = 1 << 3,    /* manage API keys and users */
	VOX_PERM_ACCOUNT = 1 << 4, /* change or close the account */
} vox_perm_t;

vox_role_t vox_role_parse(const char *name); /* VOX_ROLE_NONE if unknown */
const char *vox_role_name(vox_role_t role);
unsigned vox_role_perms(vox_role_t role);
bool vox_role_allows(vox_role_t role, unsigned needed);

/* Who is calling, once authenticated. */
typedef struct vox_principal {
	char account_id[40];
	char key_id[40];   /* API key id, or "" for a JWT */
	char subject[128]; /* JWT sub, or the key prefix */
	vox_role_t role;
} vox_principal_t;

/* A new random key into out (at least VOX_APIKEY_LEN + 1 bytes). */
int vox_apikey_generate(char *out, size_t outlen, vox_error_t *err);
/* Shape check only: "vox_" + 43 base64url characters. */
bool vox_apikey_well_formed(const char *key);
/* SHA-256 of the whole key, as 64 lowercase hex characters + NUL. */
void vox_apikey_hash_hex(const char *key, char out[65]);

/* Carrier credentials (POST /v1/carrier/cdrs, docs/CARRIER_CDRS.md):
 * "voxc_" + 43 base64url characters (256 random bits), stored as their
 * SHA-256 (vox_apikey_hash_hex) like API keys. The distinct prefix keeps
 * the two kinds apart: neither works where the other is expected. */
#define VOX_CARRIER_KEY_LEN 48 /* "voxc_" + 43 */
/* 256 random bits as 43 base64url characters (no padding) + NUL: the
 * body of a key, or a signing secret. out must hold 44 bytes. */
int vox_random_b64url(char *out, size_t outlen, vox_error_t *err);
int vox_carrier_key_generate(char *out, size_t outlen, vox_error_t *err);
bool vox_carrier_key_well_formed(const char *key);

typedef struct vox_jwt_conf {
	const char *alg; /* "HS256", "RS256", ...: the only one accepted */
	const char *key; /* HMAC secret or PEM public key */
	size_t keylen;
	const char *issuer;   /* required iss; NULL: not checked */
	const char *audience; /* required in aud; NULL: not checked */
	long leeway_s;        /* clock skew allowed on exp/nbf */
} vox_jwt_conf_t;

/* Verifies token at time now. On success fills who (role from vox_role,
 * account from vox_account). Errors are VOX_ERR_INVALID with a message
 * that may be shown to the caller ("token expired", "algorithm not
 * accepted", ...). */
int vox_jwt_verify(const vox_jwt_conf_t *conf, const char *token, time_t now,
                   vox_principal_t *who, vox_error_t *err);

#endif
