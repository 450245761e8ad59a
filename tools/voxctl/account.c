/*
 * voxctl account: tenants.
 *   voxctl account create --name NAME [--currency USD] [--timezone UTC]
 *                         [--language en] [--json]
 *   voxctl account list [--json]
 *   voxctl account show ID [--json]
 *
 * create makes the account and its first key (role owner) in one
 * transaction: an account is never left without a way in.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "voxctl.h"

#define ACCOUNT_NAME_MAX     200
#define ACCOUNT_TIMEZONE_MAX 64 /* accounts.timezone CHECK */

#define ACCOUNT_CREATE_USAGE                                                   \
	"voxctl account create --name NAME [--currency USD] "                  \
	"[--timezone UTC] [--language en] [--json]"
#define ACCOUNT_LIST_USAGE "voxctl account list [--json]"
#define ACCOUNT_SHOW_USAGE "voxctl account show ID [--json]"

struct account_new {
	const char *name;
	const char *currency;
	const char *timezone;
	const char *language; /* of its notifications (accounts.language) */
	char id[VOX_UUID_STRLEN];
	struct voxctl_new_key key;
};

/* ISO 4217 shape, as the accounts.currency CHECK wants it. */
static bool currency_valid(const char *code)
{
	for (int i = 0; i < 3; i++)
		if (code[i] < 'A' || code[i] > 'Z')
			return false;
	return code[3] == '\0';
}

/* The characters of IANA zone names ("America/Argentina/Buenos_Aires",
 * "Etc/GMT+5"); whether the zone exists is PostgreSQL's to say. */
static bool timezone_shape_valid(const char *zone)
{
	size_t len = strlen(zone);

	return len >= 1 && len <= ACCOUNT_TIMEZONE_MAX &&
	       strspn(zone, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"
	                    "yz0123456789/_+-") == len;
}

/* accounts.language's CHECK: a BCP 47 primary tag and subtags. */
static bool language_valid(const char *tag)
{
	size_t n = strspn(tag, "abcdefghijklmnopqrstuvwxyz");

	if (n < 2 || n > 3)
		return false;
	while (tag[n] == '-') {
		size_t sub = strspn(tag + n + 1, "abcdefghijklmnopqrstuvwxyz"
		                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                                 "0123456789");

		if (sub < 2 || sub > 8)
			return false;
		n += 1 + sub;
	}
	return tag[n] == '\0';
}

static int account_check(const struct account_new *acct)
{
	char why[80];

	if (acct->name == NULL)
		return voxctl_usage_error(ACCOUNT_CREATE_USAGE,
		                          "--name is required");
	if (!voxctl_text_valid(acct->name, 1, ACCOUNT_NAME_MAX, why,
	                       sizeof(why)))
		return voxctl_usage_error(ACCOUNT_CREATE_USAGE, "--name %s",
		                          why);
	if (acct->name[strspn(acct->name, " ")] == '\0')
		return voxctl_usage_error(ACCOUNT_CREATE_USAGE,
		                          "--name is blank");
	if (!currency_valid(acct->currency))
		return voxctl_usage_error(
		        ACCOUNT_CREATE_USAGE,
		        "--currency \"%s\" is not an ISO 4217 "
		        "code (three capital letters)",
		        acct->currency);
	if (!language_valid(acct->language))
		return voxctl_usage_error(ACCOUNT_CREATE_USAGE,
		                          "--language \"%s\" is not a language "
		                          "tag (en, es, pt-BR)",
		                          acct->language);
	if (!timezone_shape_valid(acct->timezone))
		return voxctl_usage_error(
		        ACCOUNT_CREATE_USAGE,
		        "--timezone \"%s\" is not a time zone "
		        "name",
		        acct->timezone);
	return VOXCTL_OK;
}

/* VOXCTL_OK, VOXCTL_USAGE for a zone PostgreSQL does not know, or
 * VOXCTL_FAILED. */
static int timezone_known(vox_pg_t *pg, const char *zone)
{
	const char *params[] = {zone};
	vox_error_t err = {0};
	PGresult *res;
	int rc;

	if (vox_pg_exec(pg,
	                "SELECT 1 FROM pg_timezone_names WHERE name = $1::text",
	                1, params, &res, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		return VOXCTL_FAILED;
	}
	rc = PQntuples(res) > 0 ? VOXCTL_OK : VOXCTL_USAGE;
	PQclear(res);
	if (rc == VOXCTL_USAGE)
		return voxctl_usage_error(
		        ACCOUNT_CREATE_USAGE,
		        "--timezone \"%s\" is not a known time "
		        "zone",
		        zone);
	return rc;
}

/* Runs inside vox_pg_transaction(). */
static int account_insert(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct account_new *acct = arg;
	const char *params[] = {acct->id, acct->name, acct->currency,
	                        acct->timezone, acct->language};
	int rc;

	vox_uuid7(acct->id);
	rc = vox_pg_exec(pg,
	                 "INSERT INTO accounts (id, name, currency, timezone, "
	                 "language) VALUES ($1::uuid, $2::text, $3::text, "
	                 "$4::text, $5::text)",
	                 5, params, NULL, err);
	if (rc != 0)
		return rc;
	return voxctl_key_insert(pg, acct->id, VOX_ROLE_OWNER,
	                         "created by voxctl", &acct->key, err);
}

static int account_create(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"name", required_argument, NULL, 'n'},
	        {"currency", required_argument, NULL, 'c'},
	        {"timezone", required_argument, NULL, 't'},
	        {"language", required_argument, NULL, 'l'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct account_new acct = {
	        .currency = "USD", .timezone = "UTC", .language = "en"};
	vox_error_t err = {0};
	bool json = false;
	vox_pg_t *pg;
	int opt, rc;

	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			acct.name = optarg;
			break;
		case 'c':
			acct.currency = optarg;
			break;
		case 't':
			acct.timezone = optarg;
			break;
		case 'l':
			acct.language = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: %s\n", ACCOUNT_CREATE_USAGE);
			return VOXCTL_OK;
		default:
			return voxctl_bad_option(ACCOUNT_CREATE_USAGE, opt,
			                         argv);
		}
	}
	if (optind < argc)
		return voxctl_usage_error(ACCOUNT_CREATE_USAGE,
		                          "unexpected argument \"%s\"",
		                          argv[optind]);
	rc = account_check(&acct);
	if (rc != VOXCTL_OK)
		return rc;

	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	rc = timezone_known(pg, acct.timezone);
	if (rc != VOXCTL_OK)
		goto out;
	/* Not retried: a COMMIT whose answer was lost may have created the
	 * account, and a second one would be a duplicate. */
	if (vox_pg_transaction(pg, account_insert, &acct, &err) != 0) {
		fprintf(stderr, "voxctl: account %s: %s\n",
		        err.retriable ? "may or may not have been created "
		                        "(see voxctl account list)"
		                      : "not created",
		        err.message);
		rc = VOXCTL_FAILED;
		goto out;
	}
	rc = voxctl_key_print_new(acct.id, &acct.key, json);
out:
	vox_pg_destroy(pg);
	return rc;
}

/* Parses [--json] and exactly nargs positional arguments of a read
 * command into *json and args. Returns -1 to go on, else an exit code. */
static int read_args(const char *usage, int argc, char **argv, bool *json,
                     int nargs, const char **args)
{
	static const struct option longopts[] = {
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int opt;

	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt == 'j') {
			*json = true;
		} else if (opt == 'h') {
			printf("usage: %s\n", usage);
			return VOXCTL_OK;
		} else {
			return voxctl_bad_option(usage, opt, argv);
		}
	}
	if (argc - optind != nargs)
		return voxctl_usage_error(
		        usage, "expected %d argument%s, got %d", nargs,
		        nargs == 1 ? "" : "s", argc - optind);
	for (int i = 0; i < nargs; i++)
		args[i] = argv[optind + i];
	return -1;
}

/* Runs a read-only query and prints its rows (or its single record). */
static int account_query(const struct voxctl_cfg *cfg, const char *sql,
                         const char *id, bool json)
{
	const char *params[] = {id};
	vox_error_t err = {0};
	PGresult *res;
	vox_pg_t *pg;
	int rc;

	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	if (vox_pg_exec(pg, sql, id ? 1 : 0, params, &res, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		rc = VOXCTL_FAILED;
		goto out;
	}
	if (id == NULL) {
		rc = voxctl_print_rows(res, json);
	} else if (PQntuples(res) == 0) {
		fprintf(stderr, "voxctl: no account %s\n", id);
		rc = VOXCTL_FAILED;
	} else {
		rc = voxctl_print_record(res, json);
	}
	PQclear(res);
out:
	vox_pg_destroy(pg);
	return rc;
}

/* clang-format off */
static const char account_list_sql[] =
	"SELECT id, name, status, "
	VOXCTL_TS("created_at") " AS created_at "
	"FROM accounts ORDER BY created_at, id";
/* clang-format on */

static int account_list(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	bool json = false;
	int rc = read_args(ACCOUNT_LIST_USAGE, argc, argv, &json, 0, NULL);

	if (rc >= 0)
		return rc;
	return account_query(cfg, account_list_sql, NULL, json);
}

/* active_keys: keys the ingress would accept now. */
/* clang-format off */
static const char account_show_sql[] =
	"SELECT a.id, a.name, a.status, a.currency, a.timezone, "
	VOXCTL_TS("a.created_at") " AS created_at, "
	VOXCTL_TS("a.updated_at") " AS updated_at, "
	VOXCTL_TS("a.suspended_at") " AS suspended_at, "
	VOXCTL_TS("a.closed_at") " AS closed_at, "
	"(SELECT count(*) FROM api_keys k WHERE k.account_id = a.id "
	"AND k.revoked_at IS NULL "
	"AND (k.expires_at IS NULL OR k.expires_at > now())) AS active_keys "
	"FROM accounts a WHERE a.id = $1::uuid";
/* clang-format on */

static int account_show(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	const char *id = NULL;
	bool json = false;
	int rc = read_args(ACCOUNT_SHOW_USAGE, argc, argv, &json, 1, &id);

	if (rc >= 0)
		return rc;
	if (!vox_uuid_valid(id))
		return voxctl_usage_error(ACCOUNT_SHOW_USAGE,
		                          "ID \"%s\" is not a UUID", id);
	return account_query(cfg, account_show_sql, id, json);
}

static const struct voxctl_sub account_subs[] = {
        {"create", ACCOUNT_CREATE_USAGE, account_create},
        {"list", ACCOUNT_LIST_USAGE, account_list},
        {"show", ACCOUNT_SHOW_USAGE, account_show},
};

int voxctl_account(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	return voxctl_dispatch(account_subs,
	                       sizeof(account_subs) / sizeof(account_subs[0]),
	                       cfg, argc, argv);
}
