/*
 * voxctl key: API keys of an account.
 *   voxctl key create --account ID --role ROLE [--description TEXT] [--json]
 *   voxctl key list --account ID [--json]
 *   voxctl key revoke KEY_ID
 *
 * A new key is printed once: only its SHA-256 is stored (api_keys.
 * secret_hash) with its first VOX_APIKEY_PREFIX_LEN characters in clear,
 * so nothing voxctl prints later can show the secret again.
 */
#include <getopt.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_buf.h"
#include "vox_json.h"
#include "voxctl.h"

#define KEY_DESCRIPTION_MAX 500

#define KEY_CREATE_USAGE                                                       \
	"voxctl key create --account ID --role ROLE [--description TEXT] "     \
	"[--json]"
#define KEY_LIST_USAGE   "voxctl key list --account ID [--json]"
#define KEY_REVOKE_USAGE "voxctl key revoke KEY_ID"

int voxctl_key_insert(vox_pg_t *pg, const char *account_id, vox_role_t role,
                      const char *description, struct voxctl_new_key *key,
                      vox_error_t *err)
{
	char hash[65], prefix[VOX_APIKEY_PREFIX_LEN + 1];
	const char *params[] = {key->id, account_id,          prefix,
	                        hash,    vox_role_name(role), description};
	PGresult *res;
	int rc;

	rc = vox_apikey_generate(key->secret, sizeof(key->secret), err);
	if (rc != 0)
		return rc;
	vox_apikey_hash_hex(key->secret, hash);
	snprintf(prefix, sizeof(prefix), "%.*s", VOX_APIKEY_PREFIX_LEN,
	         key->secret);
	vox_uuid7(key->id);
	/* INSERT ... SELECT: no row when the account does not exist, without
	 * a window between a lookup and the insert. */
	rc = vox_pg_exec(pg,
	                 "INSERT INTO api_keys (id, account_id, prefix, "
	                 "secret_hash, role, description) SELECT $1::uuid, "
	                 "a.id, $3::text, decode($4::text, 'hex'), $5::text, "
	                 "$6::text FROM accounts a WHERE a.id = $2::uuid",
	                 6, params, &res, err);
	if (rc != 0)
		goto out_wipe;
	if (strcmp(PQcmdTuples(res), "1") != 0)
		rc = vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                   "no account %s", account_id);
	PQclear(res);
out_wipe:
	if (rc != 0)
		OPENSSL_cleanse(key->secret, sizeof(key->secret));
	return rc;
}

int voxctl_key_print_new(const char *account_id, struct voxctl_new_key *key,
                         bool json)
{
	json_t *shown = json ? json_object() : NULL;
	char *text = NULL;
	int rc = VOXCTL_OK;

	if (json) {
		if (account_id != NULL)
			json_object_set_new(shown, "account_id",
			                    json_string(account_id));
		json_object_set_new(shown, "key_id", json_string(key->id));
		json_object_set_new(shown, "api_key", json_string(key->secret));
		text = vox_json_dump(shown);
		if (text == NULL)
			rc = VOXCTL_FAILED;
		else
			printf("%s\n", text);
	} else {
		if (account_id != NULL)
			printf("account_id: %s\n", account_id);
		printf("key_id: %s\napi_key: %s\n(store the key now: it is "
		       "shown once and cannot be recovered)\n",
		       key->id, key->secret);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		rc = VOXCTL_FAILED;
	if (rc != VOXCTL_OK)
		fprintf(stderr,
		        "voxctl: the new key could not be printed: revoke "
		        "it (voxctl key revoke %s) and create another\n",
		        key->id);
	if (text != NULL)
		OPENSSL_cleanse(text, strlen(text));
	free(text);
	json_decref(shown); /* jansson's copy of the secret is not wiped */
	OPENSSL_cleanse(key->secret, sizeof(key->secret));
	return rc;
}

static int role_usage_error(const char *name)
{
	vox_buf_t roles;
	int rc;

	vox_buf_init(&roles, 256);
	for (int r = VOX_ROLE_OWNER; r <= VOX_ROLE_VIEWER; r++)
		vox_buf_printf(&roles, "%s%s", r == VOX_ROLE_OWNER ? "" : ", ",
		               vox_role_name((vox_role_t)r));
	rc = voxctl_usage_error(KEY_CREATE_USAGE,
	                        "unknown role \"%s\" (roles: %s)", name,
	                        vox_buf_str(&roles));
	vox_buf_free(&roles);
	return rc;
}

static int key_create(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"account", required_argument, NULL, 'a'},
	        {"role", required_argument, NULL, 'r'},
	        {"description", required_argument, NULL, 'd'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *account = NULL, *role_name = NULL, *description = NULL;
	struct voxctl_new_key key;
	vox_error_t err = {0};
	bool json = false;
	vox_role_t role;
	char why[80];
	vox_pg_t *pg;
	int opt, rc;

	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			account = optarg;
			break;
		case 'r':
			role_name = optarg;
			break;
		case 'd':
			description = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: %s\n", KEY_CREATE_USAGE);
			return VOXCTL_OK;
		default:
			return voxctl_bad_option(KEY_CREATE_USAGE, opt, argv);
		}
	}
	if (optind < argc)
		return voxctl_usage_error(KEY_CREATE_USAGE,
		                          "unexpected argument \"%s\"",
		                          argv[optind]);
	if (account == NULL || role_name == NULL)
		return voxctl_usage_error(KEY_CREATE_USAGE,
		                          "--account and --role are required");
	if (!vox_uuid_valid(account))
		return voxctl_usage_error(KEY_CREATE_USAGE,
		                          "--account \"%s\" is not a UUID",
		                          account);
	role = vox_role_parse(role_name);
	if (role == VOX_ROLE_NONE)
		return role_usage_error(role_name);
	if (description != NULL &&
	    !voxctl_text_valid(description, 0, KEY_DESCRIPTION_MAX, why,
	                       sizeof(why)))
		return voxctl_usage_error(KEY_CREATE_USAGE, "--description %s",
		                          why);
	if (description != NULL && *description == '\0')
		description = NULL; /* stored as "no description" */

	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	if (voxctl_key_insert(pg, account, role, description, &key, &err) !=
	    0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		rc = VOXCTL_FAILED;
		goto out;
	}
	rc = voxctl_key_print_new(NULL, &key, json);
out:
	vox_pg_destroy(pg);
	return rc;
}

/* VOXCTL_OK when the account exists, VOXCTL_FAILED after saying why. */
static int account_exists(vox_pg_t *pg, const char *account)
{
	const char *params[] = {account};
	vox_error_t err = {0};
	PGresult *res;
	int rc;

	if (vox_pg_exec(pg, "SELECT 1 FROM accounts WHERE id = $1::uuid", 1,
	                params, &res, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		return VOXCTL_FAILED;
	}
	rc = PQntuples(res) == 1 ? VOXCTL_OK : VOXCTL_FAILED;
	if (rc != VOXCTL_OK)
		fprintf(stderr, "voxctl: no account %s\n", account);
	PQclear(res);
	return rc;
}

/* Never secret_hash: the prefix is what tells keys apart. */
/* clang-format off */
static const char key_list_sql[] =
	"SELECT id, prefix, role, description, "
	VOXCTL_TS("created_at") " AS created_at, "
	VOXCTL_TS("last_used_at") " AS last_used_at, "
	VOXCTL_TS("revoked_at") " AS revoked_at "
	"FROM api_keys WHERE account_id = $1::uuid ORDER BY created_at, id";
/* clang-format on */

static int key_list(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"account", required_argument, NULL, 'a'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *account = NULL;
	vox_error_t err = {0};
	bool json = false;
	PGresult *res;
	vox_pg_t *pg;
	int opt, rc;

	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			account = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: %s\n", KEY_LIST_USAGE);
			return VOXCTL_OK;
		default:
			return voxctl_bad_option(KEY_LIST_USAGE, opt, argv);
		}
	}
	if (optind < argc)
		return voxctl_usage_error(KEY_LIST_USAGE,
		                          "unexpected argument \"%s\"",
		                          argv[optind]);
	if (account == NULL)
		return voxctl_usage_error(KEY_LIST_USAGE,
		                          "--account is required");
	if (!vox_uuid_valid(account))
		return voxctl_usage_error(KEY_LIST_USAGE,
		                          "--account \"%s\" is not a UUID",
		                          account);

	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	rc = account_exists(pg, account);
	if (rc != VOXCTL_OK)
		goto out;
	if (vox_pg_exec(pg, key_list_sql, 1, (const char *[]){account}, &res,
	                &err) != 0) {
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
static const char key_revoked_at_sql[] =
	"SELECT " VOXCTL_TS("revoked_at") " FROM api_keys WHERE id = $1::uuid";
/* clang-format on */

static void key_print_revoked(const char *id, const PGresult *res)
{
	printf("revoked key %s (%s..., account %s)\n", id,
	       PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0));
}

static int key_revoke(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	static const struct voxctl_revocation r = {
	        KEY_REVOKE_USAGE,
	        "KEY_ID",
	        "key",
	        "UPDATE api_keys SET revoked_at = now() WHERE id = $1::uuid "
	        "AND revoked_at IS NULL RETURNING account_id, prefix",
	        key_revoked_at_sql,
	        key_print_revoked};

	return voxctl_revoke(cfg, &r, argc, argv);
}

static const struct voxctl_sub key_subs[] = {
        {"create", KEY_CREATE_USAGE, key_create},
        {"list", KEY_LIST_USAGE, key_list},
        {"revoke", KEY_REVOKE_USAGE, key_revoke},
};

int voxctl_key(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	return voxctl_dispatch(key_subs, sizeof(key_subs) / sizeof(key_subs[0]),
	                       cfg, argc, argv);
}
