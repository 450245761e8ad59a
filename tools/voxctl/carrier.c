/*
 * voxctl carrier: credentials carriers push CDRs with
 * (POST /v1/carrier/cdrs, docs/CARRIER_CDRS.md).
 *   voxctl carrier create --name NAME [--json]
 *   voxctl carrier list [--json]
 *   voxctl carrier revoke ID
 *   voxctl carrier seal [--carrier NAME]
 *
 * create prints the bearer key ("voxc_...") and the signing secret once.
 * Only the key's SHA-256 is stored. The signing secret cannot be a hash
 * (the ingress must read it to check signatures): with VOX_ENCRYPTION_KEY
 * set it is stored sealed (vox_carrier_secret), without one in plaintext
 * with a warning. No command prints it again. With --json the one line is
 * exactly {"id","carrier","key","signing_secret"}: scripts depend on that
 * shape. seal brings every row to the current key: plaintext secrets are
 * sealed, secrets sealed with a retired key (VOX_ENCRYPTION_OLD_KEYS) are
 * sealed again.
 */
#include <getopt.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_carrier_secret.h"
#include "vox_cdr.h"
#include "vox_json.h"
#include "voxctl.h"

#define CARRIER_CREATE_USAGE "voxctl carrier create --name NAME [--json]"
#define CARRIER_LIST_USAGE   "voxctl carrier list [--json]"
#define CARRIER_REVOKE_USAGE "voxctl carrier revoke ID"
#define CARRIER_SEAL_USAGE   "voxctl carrier seal [--carrier NAME]"

struct new_carrier {
	char id[VOX_UUID_STRLEN];
	char key[VOX_CARRIER_KEY_LEN + 1]; /* shown once, then wiped */
	char secret[44];                   /* shown once, then wiped */
};

/* The keyring of VOX_ENCRYPTION_KEY (NULL when it is not set): VOXCTL_OK,
 * or VOXCTL_USAGE after saying why (a bad key is bad configuration). */
static int carrier_keyring(const struct voxctl_cfg *cfg,
                           vox_crypto_keyring_t **ring)
{
	vox_error_t err = {0};

	*ring = NULL;
	if (*cfg->encryption_key == '\0') {
		if (*cfg->encryption_old_keys == '\0')
			return VOXCTL_OK;
		fprintf(stderr, "voxctl: VOX_ENCRYPTION_OLD_KEYS needs "
		                "VOX_ENCRYPTION_KEY\n");
		return VOXCTL_USAGE;
	}
	*ring = vox_crypto_keyring_new(cfg->encryption_key,
	                               cfg->encryption_old_keys, &err);
	if (*ring == NULL) {
		fprintf(stderr, "voxctl: VOX_ENCRYPTION_KEY: %s\n",
		        err.message);
		return VOXCTL_USAGE;
	}
	return VOXCTL_OK;
}

/* A new credential; its secret sealed when ring is not NULL. */
static int carrier_insert(vox_pg_t *pg, const vox_crypto_keyring_t *ring,
                          const char *name, struct new_carrier *c,
                          vox_error_t *err)
{
	char hash[65], prefix[VOX_APIKEY_PREFIX_LEN + 1], *sealed_hex = NULL;
	const char *params[] = {c->id, name, prefix, hash, c->secret, NULL};
	int rc;

	if ((rc = vox_carrier_key_generate(c->key, sizeof(c->key), err)) != 0 ||
	    (rc = vox_random_b64url(c->secret, sizeof(c->secret), err)) != 0)
		goto out_wipe;
	vox_apikey_hash_hex(c->key, hash);
	snprintf(prefix, sizeof(prefix), "%.*s", VOX_APIKEY_PREFIX_LEN, c->key);
	vox_uuid7(c->id);
	if (ring != NULL) {
		rc = vox_carrier_secret_seal(ring, c->id, c->secret,
		                             &sealed_hex, err);
		if (rc != 0)
			goto out_wipe;
		params[4] = NULL;
		params[5] = sealed_hex;
	}
	rc = vox_pg_exec(pg,
	                 "INSERT INTO carrier_credentials (id, carrier, "
	                 "key_prefix, key_hash, signing_secret, "
	                 "signing_secret_sealed) VALUES ($1::uuid, $2, $3, "
	                 "decode($4, 'hex'), $5, decode($6, 'hex'))",
	                 6, params, NULL, err);
	free(sealed_hex);
out_wipe:
	if (rc != 0) {
		OPENSSL_cleanse(c->key, sizeof(c->key));
		OPENSSL_cleanse(c->secret, sizeof(c->secret));
	}
	return rc;
}

static int carrier_print_new(const char *name, struct new_carrier *c, bool json)
{
	json_t *shown = NULL;
	char *text = NULL;
	int rc = VOXCTL_OK;

	if (json) {
		shown = json_pack("{s:s, s:s, s:s, s:s}", "id", c->id,
		                  "carrier", name, "key", c->key,
		                  "signing_secret", c->secret);
		text = shown ? vox_json_dump(shown) : NULL;
		if (text == NULL)
			rc = VOXCTL_FAILED;
		else
			printf("%s\n", text);
	} else {
		printf("id: %s\ncarrier: %s\nkey: %s\nsigning_secret: %s\n"
		       "(store both now: they are shown once)\n",
		       c->id, name, c->key, c->secret);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		rc = VOXCTL_FAILED;
	if (rc != VOXCTL_OK)
		fprintf(stderr,
		        "voxctl: the new credential could not be printed: "
		        "revoke it (voxctl carrier revoke %s) and create "
		        "another\n",
		        c->id);
	if (text != NULL)
		OPENSSL_cleanse(text, strlen(text));
	free(text);
	json_decref(shown); /* jansson's copies are not wiped */
	OPENSSL_cleanse(c->key, sizeof(c->key));
	OPENSSL_cleanse(c->secret, sizeof(c->secret));
	return rc;
}

static int carrier_create(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"name", required_argument, NULL, 'n'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *name = NULL;
	vox_crypto_keyring_t *ring;
	struct new_carrier c;
	vox_error_t err = {0};
	bool json = false;
	vox_pg_t *pg;
	int opt, rc;

	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			name = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: %s\n", CARRIER_CREATE_USAGE);
			return VOXCTL_OK;
		default:
			return voxctl_bad_option(CARRIER_CREATE_USAGE, opt,
			                         argv);
		}
	}
	if (optind < argc)
		return voxctl_usage_error(CARRIER_CREATE_USAGE,
		                          "unexpected argument \"%s\"",
		                          argv[optind]);
	if (name == NULL)
		return voxctl_usage_error(CARRIER_CREATE_USAGE,
		                          "--name is required");
	if (!vox_carrier_name_valid(name))
		return voxctl_usage_error(
		        CARRIER_CREATE_USAGE,
		        "--name \"%s\" must be 1..63 of a-z 0-9 _ - starting "
		        "with a letter or digit",
		        name);
	if ((rc = carrier_keyring(cfg, &ring)) != VOXCTL_OK)
		return rc;
	pg = voxctl_pg_open(cfg);
	if (pg == NULL) {
		rc = VOXCTL_FAILED;
		goto out_ring;
	}
	if (carrier_insert(pg, ring, name, &c, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		rc = VOXCTL_FAILED;
		goto out;
	}
	if (ring == NULL)
		fprintf(stderr,
		        "voxctl: warning: VOX_ENCRYPTION_KEY is not set, so "
		        "the signing secret is stored unencrypted; production "
		        "must set VOX_ENCRYPTION_KEY (then `voxctl carrier "
		        "seal` seals the secrets stored without it)\n");
	rc = carrier_print_new(name, &c, json);
out:
	vox_pg_destroy(pg);
out_ring:
	vox_crypto_keyring_destroy(ring);
	return rc;
}

/* Never key_hash or a signing secret. */
/* clang-format off */
static const char carrier_list_sql[] =
	"SELECT id, carrier, key_prefix, status, "
	VOXCTL_TS("created_at") " AS created_at, "
	VOXCTL_TS("revoked_at") " AS revoked_at "
	"FROM carrier_credentials ORDER BY carrier, created_at, id";
/* clang-format on */

static int carrier_list(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	vox_error_t err = {0};
	bool json = false;
	PGresult *res;
	vox_pg_t *pg;
	int opt, rc;

	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: %s\n", CARRIER_LIST_USAGE);
			return VOXCTL_OK;
		default:
			return voxctl_bad_option(CARRIER_LIST_USAGE, opt, argv);
		}
	}
	if (optind < argc)
		return voxctl_usage_error(CARRIER_LIST_USAGE,
		                          "unexpected argument \"%s\"",
		                          argv[optind]);
	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	if (vox_pg_exec(pg, carrier_list_sql, 0, NULL, &res, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		rc = VOXCTL_FAILED;
		goto out;
	}
	rc = voxctl_print_rows(res, json);
	PQclear(res);
out:
	vox_pg_destroy(pg);
	return rc;
}

/* clang-format off */
static const char carrier_revoked_at_sql[] =
	"SELECT " VOXCTL_TS("revoked_at") " FROM carrier_credentials "
	"WHERE id = $1::uuid";
/* clang-format on */

static void carrier_print_revoked(const char *id, const PGresult *res)
{
	printf("revoked carrier credential %s (%s, %s...)\n", id,
	       PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
}

static int carrier_revoke(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	static const struct voxctl_revocation r = {
	        CARRIER_REVOKE_USAGE,
	        "ID",
	        "carrier credential",
	        "UPDATE carrier_credentials SET status = 'revoked', revoked_at "
	        "= now() WHERE id = $1::uuid AND status = 'active' RETURNING "
	        "carrier, key_prefix",
	        carrier_revoked_at_sql,
	        carrier_print_revoked};

	return voxctl_revoke(cfg, &r, argc, argv);
}

/* Rows whose secret is not sealed with the current key ($1): plaintext,
 * or sealed with a retired one (byte 1 of a sealed value is its key id,
 * vox_crypto.h); only carrier $2 unless it is NULL. */
static const char carrier_unsealed_sql[] =
        "SELECT id, signing_secret, signing_secret_sealed FROM "
        "carrier_credentials WHERE (signing_secret IS NOT NULL OR "
        "get_byte(signing_secret_sealed, 1) <> $1::int) AND ($2::text IS "
        "NULL OR carrier = $2) ORDER BY id";

/* Only if the row still holds what was read ($3: the sealed value read,
 * NULL for a plaintext row), so two seals at once do not clash. The
 * plaintext is not sent back to compare: parameters can end up in the
 * server's log. */
static const char carrier_reseal_sql[] =
        "UPDATE carrier_credentials SET signing_secret = NULL, "
        "signing_secret_sealed = decode($2, 'hex') WHERE id = $1::uuid AND "
        "((signing_secret IS NOT NULL AND $3::bytea IS NULL) OR "
        "signing_secret_sealed = $3::bytea)";

struct seal_counts {
	long sealed, resealed, failed;
};

/* Seals row of res (carrier_unsealed_sql) with the current key, and wipes
 * the plaintext the row held. */
static void carrier_seal_row(vox_pg_t *pg, const vox_crypto_keyring_t *ring,
                             PGresult *res, int row, struct seal_counts *n)
{
	const char *id = PQgetvalue(res, row, 0);
	bool plain = !PQgetisnull(res, row, 1);
	char secret[VOX_CARRIER_SECRET_MAX + 1], *sealed_hex = NULL;
	const char *params[3] = {id, NULL,
	                         plain ? NULL : PQgetvalue(res, row, 2)};
	PGresult *done = NULL;
	vox_error_t err = {0};
	int rc = 0;

	secret[0] = '\0';
	if (!plain)
		rc = vox_carrier_secret_open(ring, id, PQgetvalue(res, row, 2),
		                             secret, sizeof(secret), &err);
	if (rc == 0)
		rc = vox_carrier_secret_seal(
		        ring, id, plain ? PQgetvalue(res, row, 1) : secret,
		        &sealed_hex, &err);
	if (plain)
		OPENSSL_cleanse(PQgetvalue(res, row, 1),
		                (size_t)PQgetlength(res, row, 1));
	OPENSSL_cleanse(secret, sizeof(secret));
	params[1] = sealed_hex;
	if (rc == 0)
		rc = vox_pg_exec(pg, carrier_reseal_sql, 3, params, &done,
		                 &err);
	free(sealed_hex);
	if (rc != 0) {
		fprintf(stderr, "voxctl: carrier credential %s: %s\n", id,
		        err.message);
		n->failed++;
	} else if (strcmp(PQcmdTuples(done), "1") != 0) {
		/* changed since it was read: another seal did it */
	} else if (plain) {
		n->sealed++;
	} else {
		n->resealed++;
	}
	PQclear(done);
}

static int carrier_seal(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"carrier", required_argument, NULL, 'c'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct seal_counts n = {0};
	vox_crypto_keyring_t *ring;
	vox_error_t err = {0};
	char key_id[8];
	const char *params[] = {key_id, NULL};
	PGresult *res = NULL;
	vox_pg_t *pg;
	int opt, rc;

	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			params[1] = optarg;
			break;
		case 'h':
			printf("usage: %s\n", CARRIER_SEAL_USAGE);
			return VOXCTL_OK;
		default:
			return voxctl_bad_option(CARRIER_SEAL_USAGE, opt, argv);
		}
	}
	if (optind < argc)
		return voxctl_usage_error(CARRIER_SEAL_USAGE,
		                          "unexpected argument \"%s\"",
		                          argv[optind]);
	if ((rc = carrier_keyring(cfg, &ring)) != VOXCTL_OK)
		return rc;
	if (ring == NULL)
		return voxctl_usage_error(CARRIER_SEAL_USAGE,
		                          "set VOX_ENCRYPTION_KEY: it is the "
		                          "key that seals");
	snprintf(key_id, sizeof(key_id), "%d", vox_crypto_key_id(ring));
	pg = voxctl_pg_open(cfg);
	if (pg == NULL) {
		rc = VOXCTL_FAILED;
		goto out_ring;
	}
	if (vox_pg_exec(pg, carrier_unsealed_sql, 2, params, &res, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		rc = VOXCTL_FAILED;
		goto out;
	}
	for (int row = 0; row < PQntuples(res); row++)
		carrier_seal_row(pg, ring, res, row, &n);
	PQclear(res);
	printf("sealed %ld plaintext signing secrets and re-sealed %ld sealed "
	       "with a retired key, with key %s",
	       n.sealed, n.resealed, key_id);
	if (n.failed > 0)
		printf("; %ld could not be sealed (see above)", n.failed);
	printf("\n");
	rc = n.failed > 0 ? VOXCTL_FAILED : VOXCTL_OK;
out:
	vox_pg_destroy(pg);
out_ring:
	vox_crypto_keyring_destroy(ring);
	return rc;
}

static const struct voxctl_sub carrier_subs[] = {
        {"create", CARRIER_CREATE_USAGE, carrier_create},
        {"list", CARRIER_LIST_USAGE, carrier_list},
        {"revoke", CARRIER_REVOKE_USAGE, carrier_revoke},
        {"seal", CARRIER_SEAL_USAGE, carrier_seal},
};

int voxctl_carrier(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	return voxctl_dispatch(carrier_subs,
	                       sizeof(carrier_subs) / sizeof(carrier_subs[0]),
	                       cfg, argc, argv);
}
