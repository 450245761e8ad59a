/*
 * voxctl account and key against the real database: what `account
 * create` prints is a key whose SHA-256 is stored with role owner; keys
 * are created, listed (never with their secret) and revoked, twice; bad
 * usage exits 2 and unknown ids exit 1, with the reason on stderr.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_auth.h"
#include "vox_buf.h"
#include "vox_uuid.h"
#include "voxctl_helpers.h"

/* The string member key of the one-line JSON object text, copied. */
static void json_member(const char *text, const char *key, char *out,
                        size_t outlen)
{
	json_error_t jerr;
	json_t *obj = json_loads(text, 0, &jerr);
	const char *v;

	cr_assert_not_null(obj, "not JSON (%s): %s", jerr.text, text);
	v = json_string_value(json_object_get(obj, key));
	cr_assert_not_null(v, "no \"%s\" in %s", key, text);
	snprintf(out, outlen, "%s", v);
	json_decref(obj);
}

/* Column col of the api_keys row of key_id, as text ("" for NULL). */
static void key_column(vox_pg_t *pg, const char *key_id, const char *col,
                       char *out, size_t outlen)
{
	const char *params[] = {key_id};
	char sql[256];
	PGresult *res;
	vox_error_t err;

	snprintf(sql, sizeof(sql),
	         "SELECT %s::text FROM api_keys WHERE id = $1::uuid", col);
	cr_assert_eq(vox_pg_exec(pg, sql, 1, params, &res, &err), 0, "%s",
	             err.message);
	cr_assert_eq(PQntuples(res), 1, "no key %s", key_id);
	snprintf(out, outlen, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

struct account {
	char id[64];
	char key_id[64];
	char api_key[128];
};

/* A new account through voxctl --json, with a name unique to the run. */
static void account_new(struct account *acct, char *name, size_t namelen)
{
	char tag[VOX_UUID_STRLEN];
	struct t_voxctl_run r;

	vox_uuid7(tag);
	snprintf(name, namelen, "voxctl test %s", tag);
	r = VOXCTL("account", "create", "--name", name, "--json");
	cr_assert_eq(r.exit, 0, "account create: %s", r.err);
	json_member(r.out, "account_id", acct->id, sizeof(acct->id));
	json_member(r.out, "key_id", acct->key_id, sizeof(acct->key_id));
	json_member(r.out, "api_key", acct->api_key, sizeof(acct->api_key));
	t_voxctl_free(&r);
}

Test(voxctl_account, create_prints_the_owner_key_that_is_stored, .timeout = 60)
{
	char name[128], hash[65], col[256];
	struct account acct;
	vox_pg_t *pg = t_pg();

	account_new(&acct, name, sizeof(name));
	cr_assert(vox_uuid_valid(acct.id), "%s", acct.id);
	cr_assert(vox_uuid_valid(acct.key_id), "%s", acct.key_id);
	cr_assert(vox_apikey_well_formed(acct.api_key), "%s", acct.api_key);

	vox_apikey_hash_hex(acct.api_key, hash);
	key_column(pg, acct.key_id, "encode(secret_hash, 'hex')", col,
	           sizeof(col));
	cr_assert_str_eq(col, hash);
	key_column(pg, acct.key_id, "account_id", col, sizeof(col));
	cr_assert_str_eq(col, acct.id);
	key_column(pg, acct.key_id, "role", col, sizeof(col));
	cr_assert_str_eq(col, "owner");
	key_column(pg, acct.key_id, "prefix", col, sizeof(col));
	cr_assert_eq(strncmp(col, acct.api_key, VOX_APIKEY_PREFIX_LEN), 0);
	cr_assert_eq(strlen(col), VOX_APIKEY_PREFIX_LEN);
	key_column(pg, acct.key_id, "description", col, sizeof(col));
	cr_assert_str_eq(col, "created by voxctl");
	/* The ingress's lookup: the hash of what was printed finds it. */
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM api_keys WHERE "
	                        "secret_hash = decode($1, 'hex') AND "
	                        "revoked_at IS NULL",
	                        hash),
	             1);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM accounts WHERE id = $1 "
	                        "AND currency = 'USD' AND timezone = 'UTC' "
	                        "AND status = 'active'",
	                        acct.id),
	             1);
	vox_pg_destroy(pg);
}

Test(voxctl_account, create_text_output_is_four_lines, .timeout = 60)
{
	char id[VOX_UUID_STRLEN], acct_id[64], key_id[64], api_key[128];
	char hash[65];
	vox_pg_t *pg = t_pg();
	struct t_voxctl_run r;
	int n = 0;

	vox_uuid7(id);
	r = VOXCTL("account", "create", "--name", id, "--currency", "EUR",
	           "--timezone", "Europe/Paris");
	cr_assert_eq(r.exit, 0, "%s", r.err);
	cr_assert_eq(sscanf(r.out,
	                    "account_id: %63s\nkey_id: %63s\napi_key: "
	                    "%127s\n%n",
	                    acct_id, key_id, api_key, &n),
	             3, "%s", r.out);
	cr_assert_str_eq(r.out + n, "(store the key now: it is shown once and "
	                            "cannot be recovered)\n");
	cr_assert(vox_uuid_valid(acct_id));
	cr_assert(vox_uuid_valid(key_id));
	cr_assert(vox_apikey_well_formed(api_key), "%s", api_key);
	vox_apikey_hash_hex(api_key, hash);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM api_keys WHERE "
	                        "secret_hash = decode($1, 'hex')",
	                        hash),
	             1);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM accounts WHERE id = $1 "
	                        "AND currency = 'EUR' AND "
	                        "timezone = 'Europe/Paris'",
	                        acct_id),
	             1);
	t_voxctl_free(&r);
	vox_pg_destroy(pg);
}

Test(voxctl_account, create_refuses_bad_input_and_creates_nothing,
     .timeout = 60)
{
	char name[64], tag[VOX_UUID_STRLEN], long_name[202];
	vox_pg_t *pg = t_pg();
	struct t_voxctl_run r;

	vox_uuid7(tag);
	snprintf(name, sizeof(name), "refused %s", tag);
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';

	r = VOXCTL("account", "create");
	t_voxctl_refused(&r, 2, "--name is required");
	r = VOXCTL("account", "create", "--name", long_name);
	t_voxctl_refused(&r, 2, "200 characters");
	r = VOXCTL("account", "create", "--name", "   ");
	t_voxctl_refused(&r, 2, "blank");
	r = VOXCTL("account", "create", "--name", "a\nb");
	t_voxctl_refused(&r, 2, "control character");
	r = VOXCTL("account", "create", "--name", "\xc3\x28");
	t_voxctl_refused(&r, 2, "UTF-8");
	r = VOXCTL("account", "create", "--name", name, "--currency", "usd");
	t_voxctl_refused(&r, 2, "--currency");
	r = VOXCTL("account", "create", "--name", name, "--currency", "EURO");
	t_voxctl_refused(&r, 2, "--currency");
	r = VOXCTL("account", "create", "--name", name, "--timezone",
	           "Mars/Olympus_Mons");
	t_voxctl_refused(&r, 2, "--timezone");
	r = VOXCTL("account", "create", "--name", name, "--timezone",
	           "UTC'; DROP TABLE accounts; --");
	t_voxctl_refused(&r, 2, "--timezone");
	r = VOXCTL("account", "create", "--name", name, "--owner", "x");
	t_voxctl_refused(&r, 2, "unknown option");
	r = VOXCTL("account", "create", "--name", name, "extra");
	t_voxctl_refused(&r, 2, "unexpected argument");
	r = VOXCTL("account", "frobnicate");
	t_voxctl_refused(&r, 2, "unknown account subcommand");
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM accounts WHERE name = $1",
	                        name),
	             0);
	vox_pg_destroy(pg);
}

Test(voxctl_account, list_and_show, .timeout = 60)
{
	char name[128], unknown[VOX_UUID_STRLEN], active[64];
	struct account acct;
	json_t *rows, *row;
	size_t i;
	bool found = false;
	struct t_voxctl_run r;

	account_new(&acct, name, sizeof(name));
	r = VOXCTL("account", "list");
	cr_assert_eq(r.exit, 0, "%s", r.err);
	cr_assert_eq(strncmp(r.out, "id ", 3), 0, "header: %s", r.out);
	cr_assert_not_null(strstr(r.out, acct.id));
	cr_assert_not_null(strstr(r.out, name));
	cr_assert_null(strstr(r.out, acct.api_key));
	t_voxctl_free(&r);

	r = VOXCTL("account", "list", "--json");
	cr_assert_eq(r.exit, 0, "%s", r.err);
	rows = json_loads(r.out, 0, NULL);
	cr_assert(json_is_array(rows), "%s", r.out);
	json_array_foreach(rows, i, row)
	{
		if (strcmp(json_string_value(json_object_get(row, "id")),
		           acct.id) != 0)
			continue;
		found = true;
		cr_assert_str_eq(
		        json_string_value(json_object_get(row, "name")), name);
		cr_assert_str_eq(
		        json_string_value(json_object_get(row, "status")),
		        "active");
		cr_assert(json_is_string(json_object_get(row, "created_at")));
	}
	cr_assert(found, "%s not listed", acct.id);
	json_decref(rows);
	t_voxctl_free(&r);

	r = VOXCTL("account", "show", acct.id);
	cr_assert_eq(r.exit, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, name));
	cr_assert_not_null(strstr(r.out, "currency:"));
	t_voxctl_free(&r);
	r = VOXCTL("account", "show", acct.id, "--json");
	cr_assert_eq(r.exit, 0, "%s", r.err);
	json_member(r.out, "status", active, sizeof(active));
	cr_assert_str_eq(active, "active");
	rows = json_loads(r.out, 0, NULL);
	cr_assert_eq(json_integer_value(json_object_get(rows, "active_keys")),
	             1, "%s", r.out);
	json_decref(rows);
	t_voxctl_free(&r);

	vox_uuid7(unknown);
	r = VOXCTL("account", "show", unknown);
	t_voxctl_refused(&r, 1, "no account");
	r = VOXCTL("account", "show", "not-a-uuid");
	t_voxctl_refused(&r, 2, "not a UUID");
	r = VOXCTL("account", "show");
	t_voxctl_refused(&r, 2, "usage:");
}

/* Every key row of the JSON list of account, checked for shape; returns
 * the row of key_id (a new reference) or NULL. */
static json_t *key_listed(const struct account *acct, const char *key_id,
                          size_t *count)
{
	static const char *const columns[] = {
	        "id",         "prefix",       "role",       "description",
	        "created_at", "last_used_at", "revoked_at",
	};
	json_t *rows, *row, *found = NULL;
	struct t_voxctl_run r =
	        VOXCTL("key", "list", "--account", acct->id, "--json");
	size_t i;

	cr_assert_eq(r.exit, 0, "%s", r.err);
	rows = json_loads(r.out, 0, NULL);
	cr_assert(json_is_array(rows), "%s", r.out);
	*count = json_array_size(rows);
	json_array_foreach(rows, i, row)
	{
		cr_assert_eq(json_object_size(row),
		             sizeof(columns) / sizeof(columns[0]), "%s", r.out);
		for (size_t c = 0; c < sizeof(columns) / sizeof(columns[0]);
		     c++)
			cr_assert_not_null(json_object_get(row, columns[c]),
			                   "no %s", columns[c]);
		if (strcmp(json_string_value(json_object_get(row, "id")),
		           key_id) == 0)
			found = json_incref(row);
	}
	json_decref(rows);
	t_voxctl_free(&r);
	return found;
}

Test(voxctl_key, create_list_and_revoke_twice, .timeout = 60)
{
	char name[128], key_id[64], api_key[128], hash[65], col[256];
	char first_revoked[64];
	struct account acct;
	vox_pg_t *pg = t_pg();
	json_t *row;
	size_t count;
	struct t_voxctl_run r;

	account_new(&acct, name, sizeof(name));
	r = VOXCTL("key", "create", "--account", acct.id, "--role", "developer",
	           "--description", "ci: deploys", "--json");
	cr_assert_eq(r.exit, 0, "%s", r.err);
	json_member(r.out, "key_id", key_id, sizeof(key_id));
	json_member(r.out, "api_key", api_key, sizeof(api_key));
	t_voxctl_free(&r);
	cr_assert(vox_apikey_well_formed(api_key));
	cr_assert_str_neq(api_key, acct.api_key);
	vox_apikey_hash_hex(api_key, hash);
	key_column(pg, key_id, "encode(secret_hash, 'hex')", col, sizeof(col));
	cr_assert_str_eq(col, hash);
	key_column(pg, key_id, "role", col, sizeof(col));
	cr_assert_str_eq(col, "developer");
	key_column(pg, key_id, "account_id", col, sizeof(col));
	cr_assert_str_eq(col, acct.id);

	row = key_listed(&acct, key_id, &count);
	cr_assert_eq(count, 2);
	cr_assert_not_null(row, "%s not listed", key_id);
	cr_assert_str_eq(json_string_value(json_object_get(row, "role")),
	                 "developer");
	cr_assert_str_eq(json_string_value(json_object_get(row, "description")),
	                 "ci: deploys");
	cr_assert_eq(strncmp(json_string_value(json_object_get(row, "prefix")),
	                     api_key, VOX_APIKEY_PREFIX_LEN),
	             0);
	cr_assert(json_is_null(json_object_get(row, "revoked_at")));
	json_decref(row);

	r = VOXCTL("key", "revoke", key_id);
	cr_assert_eq(r.exit, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "revoked key"), "%s", r.out);
	t_voxctl_free(&r);
	key_column(pg, key_id, "revoked_at", first_revoked,
	           sizeof(first_revoked));
	cr_assert_str_neq(first_revoked, "");
	/* The owner key of the account is untouched. */
	key_column(pg, acct.key_id, "revoked_at IS NULL", col, sizeof(col));
	cr_assert_str_eq(col, "true");

	r = VOXCTL("key", "revoke", key_id);
	cr_assert_eq(r.exit, 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "already revoked"), "%s", r.out);
	t_voxctl_free(&r);
	key_column(pg, key_id, "revoked_at", col, sizeof(col));
	cr_assert_str_eq(col, first_revoked, "a second revoke moved the time");

	row = key_listed(&acct, key_id, &count);
	cr_assert_not_null(row);
	cr_assert(json_is_string(json_object_get(row, "revoked_at")));
	json_decref(row);
	vox_pg_destroy(pg);
}

Test(voxctl_key, create_text_output_is_three_lines, .timeout = 60)
{
	char name[128], key_id[64], api_key[128];
	struct account acct;
	struct t_voxctl_run r;
	int n = 0;

	account_new(&acct, name, sizeof(name));
	r = VOXCTL("key", "create", "--account", acct.id, "--role", "viewer");
	cr_assert_eq(r.exit, 0, "%s", r.err);
	cr_assert_eq(sscanf(r.out, "key_id: %63s\napi_key: %127s\n%n", key_id,
	                    api_key, &n),
	             2, "%s", r.out);
	cr_assert_str_eq(r.out + n, "(store the key now: it is shown once and "
	                            "cannot be recovered)\n");
	cr_assert(vox_uuid_valid(key_id));
	cr_assert(vox_apikey_well_formed(api_key));
	t_voxctl_free(&r);
}

Test(voxctl_key, list_never_prints_a_secret, .timeout = 60)
{
	char name[128], key_id[64], api_key[128], owner_hash[65], hash[65];
	struct account acct;
	struct t_voxctl_run r;

	account_new(&acct, name, sizeof(name));
	r = VOXCTL("key", "create", "--account", acct.id, "--role", "billing",
	           "--json");
	cr_assert_eq(r.exit, 0, "%s", r.err);
	json_member(r.out, "key_id", key_id, sizeof(key_id));
	json_member(r.out, "api_key", api_key, sizeof(api_key));
	t_voxctl_free(&r);
	vox_apikey_hash_hex(acct.api_key, owner_hash);
	vox_apikey_hash_hex(api_key, hash);

	for (int json = 0; json < 2; json++) {
		r = json ? VOXCTL("key", "list", "--account", acct.id, "--json")
		         : VOXCTL("key", "list", "--account", acct.id);
		cr_assert_eq(r.exit, 0, "%s", r.err);
		cr_assert_not_null(strstr(r.out, key_id));
		cr_assert_not_null(strstr(r.out, acct.key_id));
		/* the prefix is shown, nothing past it */
		cr_assert_not_null(strstr(r.out, "vox_"));
		cr_assert_null(strstr(r.out, api_key), "%s", r.out);
		cr_assert_null(strstr(r.out, acct.api_key), "%s", r.out);
		cr_assert_null(strstr(r.out, api_key + VOX_APIKEY_PREFIX_LEN));
		cr_assert_null(strstr(r.out, hash));
		cr_assert_null(strstr(r.out, owner_hash));
		cr_assert_null(strstr(r.err, api_key));
		t_voxctl_free(&r);
	}
	r = VOXCTL("account", "show", acct.id);
	cr_assert_eq(r.exit, 0, "%s", r.err);
	cr_assert_null(strstr(r.out, acct.api_key));
	cr_assert_null(strstr(r.out, owner_hash));
	t_voxctl_free(&r);
}

Test(voxctl_key, a_bad_role_exits_2_and_lists_the_roles, .timeout = 60)
{
	char name[128];
	struct account acct;
	vox_pg_t *pg = t_pg();
	struct t_voxctl_run r;

	account_new(&acct, name, sizeof(name));
	r = VOXCTL("key", "create", "--account", acct.id, "--role", "root");
	t_voxctl_refused(&r, 2, "owner, admin, developer, billing, viewer");
	r = VOXCTL("key", "create", "--account", acct.id, "--role", "none");
	t_voxctl_refused(&r, 2, "unknown role");
	r = VOXCTL("key", "create", "--account", acct.id, "--role", "Owner");
	t_voxctl_refused(&r, 2, "unknown role");
	r = VOXCTL("key", "create", "--account", acct.id);
	t_voxctl_refused(&r, 2, "--role");
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM api_keys WHERE "
	                        "account_id = $1",
	                        acct.id),
	             1);
	vox_pg_destroy(pg);
}

Test(voxctl_key, unknown_or_malformed_ids, .timeout = 60)
{
	char unknown[VOX_UUID_STRLEN], long_text[502], name[128];
	struct account acct;
	struct t_voxctl_run r;

	vox_uuid7(unknown);
	r = VOXCTL("key", "create", "--account", unknown, "--role", "owner");
	t_voxctl_refused(&r, 1, "no account");
	r = VOXCTL("key", "list", "--account", unknown);
	t_voxctl_refused(&r, 1, "no account");
	r = VOXCTL("key", "revoke", unknown);
	t_voxctl_refused(&r, 1, "no key");

	r = VOXCTL("key", "create", "--account", "42", "--role", "owner");
	t_voxctl_refused(&r, 2, "not a UUID");
	r = VOXCTL("key", "list", "--account", "' OR 1=1 --");
	t_voxctl_refused(&r, 2, "not a UUID");
	r = VOXCTL("key", "revoke", "x");
	t_voxctl_refused(&r, 2, "not a UUID");
	r = VOXCTL("key", "revoke");
	t_voxctl_refused(&r, 2, "KEY_ID");

	account_new(&acct, name, sizeof(name));
	memset(long_text, 'd', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	r = VOXCTL("key", "create", "--account", acct.id, "--role", "viewer",
	           "--description", long_text);
	t_voxctl_refused(&r, 2, "--description");
}

/* voxctl user: who an account's notifications go to. */
Test(voxctl_user, add_list_update_and_refuse_bad_input, .timeout = 60)
{
	char name[128], email[96], id[64];
	struct account acct;
	vox_pg_t *pg = t_pg();
	struct t_voxctl_run r;

	account_new(&acct, name, sizeof(name));
	snprintf(email, sizeof(email), "ops+%.8s@example.com", acct.id + 28);
	r = VOXCTL("user", "add", "--account", acct.id, "--email", email,
	           "--role", "owner", "--phone", "+14155550123", "--json");
	cr_assert_eq(r.exit, 0, "user add: %s", r.err);
	json_member(r.out, "id", id, sizeof(id));
	t_voxctl_free(&r);
	cr_assert(vox_uuid_valid(id), "%s", id);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM users WHERE id = $1 AND "
	                        "phone = '+14155550123' AND role = 'owner'",
	                        id),
	             1);

	/* The same address again (any case) is refused by the database. */
	for (char *c = email; *c; c++)
		*c = (char)(*c == 'o' ? 'O' : *c);
	r = VOXCTL("user", "add", "--account", acct.id, "--email", email);
	cr_assert_eq(r.exit, 1, "duplicate email: %s", r.out);
	t_voxctl_free(&r);
	/* Bad input: exit 2, nothing written. */
	r = VOXCTL("user", "add", "--account", acct.id, "--email", "nobody");
	cr_assert_eq(r.exit, 2);
	t_voxctl_free(&r);
	r = VOXCTL("user", "add", "--account", acct.id, "--email",
	           "x@example.com", "--phone", "4155550123");
	cr_assert_eq(r.exit, 2);
	t_voxctl_free(&r);
	r = VOXCTL("user", "add", "--account", acct.id, "--email",
	           "x@example.com", "--role", "root");
	cr_assert_eq(r.exit, 2);
	t_voxctl_free(&r);
	r = VOXCTL("user", "add", "--account", "not-a-uuid", "--email",
	           "x@example.com");
	cr_assert_eq(r.exit, 2);
	t_voxctl_free(&r);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM users WHERE account_id = "
	                        "$1",
	                        acct.id),
	             1);

	r = VOXCTL("user", "update", id, "--no-phone", "--status", "disabled");
	cr_assert_eq(r.exit, 0, "%s", r.err);
	t_voxctl_free(&r);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM users WHERE id = $1 AND "
	                        "phone IS NULL AND status = 'disabled'",
	                        id),
	             1);
	r = VOXCTL("user", "update", "01930000-0000-7000-8000-000000000000",
	           "--role", "admin");
	cr_assert_eq(r.exit, 1);
	t_voxctl_free(&r);
	r = VOXCTL("user", "list", "--account", acct.id, "--json");
	cr_assert_eq(r.exit, 0);
	cr_assert(strstr(r.out, id) != NULL, "%s", r.out);
	t_voxctl_free(&r);
	vox_pg_destroy(pg);
}
