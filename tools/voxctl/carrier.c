/*
 * voxctl carrier: credentials carriers push CDRs with
 * (POST /v1/carrier/cdrs, docs/CARRIER_CDRS.md).
 *   voxctl carrier create --name NAME [--json]
 *   voxctl carrier list [--json]
 *   voxctl carrier revoke ID
 *
 * create prints the bearer key ("voxc_...") and the signing secret once.
 * Only the key's SHA-256 is stored; the signing secret is stored as given
 * (the ingress must read it to check signatures) but no command prints it
 * again. With --json the one line is exactly
 * {"id","carrier","key","signing_secret"}: scripts depend on that shape.
 */
#include <getopt.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_cdr.h"
#include "vox_json.h"
#include "voxctl.h"

#define CARRIER_CREATE_USAGE "voxctl carrier create --name NAME [--json]"
#define CARRIER_LIST_USAGE   "voxctl carrier list [--json]"
#define CARRIER_REVOKE_USAGE "voxctl carrier revoke ID"

struct new_carrier {
	char id[VOX_UUID_STRLEN];
	char key[VOX_CARRIER_KEY_LEN + 1]; /* shown once, then wiped */
	char secret[44];                   /* shown once, then wiped */
};

static int carrier_insert(vox_pg_t *pg, const char *name, struct new_carrier *c,
                          vox_error_t *err)
{
	char hash[65], prefix[VOX_APIKEY_PREFIX_LEN + 1];
	const char *params[] = {c->id, name, prefix, hash, c->secret};
	int rc;

	if ((rc = vox_carrier_key_generate(c->key, sizeof(c->key), err)) != 0 ||
	    (rc = vox_random_b64url(c->secret, sizeof(c->secret), err)) != 0)
		goto out_wipe;
	vox_apikey_hash_hex(c->key, hash);
	snprintf(prefix, sizeof(prefix), "%.*s", VOX_APIKEY_PREFIX_LEN, c->key);
	vox_uuid7(c->id);
	rc = vox_pg_exec(pg,
	                 "INSERT INTO carrier_credentials (id, carrier, "
	                 "key_prefix, key_hash, signing_secret) VALUES "
	                 "($1::uuid, $2, $3, decode($4, 'hex'), $5)",
	                 5, params, NULL, err);
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
	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	if (carrier_insert(pg, name, &c, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		rc = VOXCTL_FAILED;
		goto out;
	}
	rc = carrier_print_new(name, &c, json);
out:
	vox_pg_destroy(pg);
	return rc;
}

/* Never key_hash or signing_secret. */
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

static const struct voxctl_sub carrier_subs[] = {
        {"create", CARRIER_CREATE_USAGE, carrier_create},
        {"list", CARRIER_LIST_USAGE, carrier_list},
        {"revoke", CARRIER_REVOKE_USAGE, carrier_revoke},
};

int voxctl_carrier(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	return voxctl_dispatch(carrier_subs,
	                       sizeof(carrier_subs) / sizeof(carrier_subs[0]),
	                       cfg, argc, argv);
}
