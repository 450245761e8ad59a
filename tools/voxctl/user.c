/*
 * voxctl user: the people of an account, who get its notifications
 * (docs/NOTIFICATIONS.md: email to active owners and admins, SMS to those
 * of them with a phone).
 *   voxctl user add --account ID --email EMAIL [--name NAME]
 *                   [--role ROLE] [--phone +E164] [--json]
 *   voxctl user list --account ID [--json]
 *   voxctl user update ID [--phone +E164 | --no-phone] [--role ROLE]
 *                   [--status active|disabled]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_json.h"
#include "vox_phone.h"
#include "voxctl.h"

#define USER_ADD_USAGE                                                         \
	"voxctl user add --account ID --email EMAIL [--name NAME] "            \
	"[--role ROLE] [--phone +E164] [--json]"
#define USER_LIST_USAGE "voxctl user list --account ID [--json]"
#define USER_UPDATE_USAGE                                                      \
	"voxctl user update ID [--phone +E164 | --no-phone] [--role ROLE] "    \
	"[--status active|disabled]"
#define USER_EMAIL_MAX 320 /* users.email CHECK */
#define USER_NAME_MAX  200

struct user_opts {
	const char *account, *email, *name, *role, *phone, *status;
	bool no_phone, json;
};

static bool role_valid(const char *role)
{
	static const char *const roles[] = {"owner", "admin", "developer",
	                                    "billing", "viewer"};

	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(role, roles[i]) == 0)
			return true;
	return false;
}

/* One address: local@domain, no spaces, as users.email's CHECK. */
static bool email_valid(const char *email)
{
	const char *at = strchr(email, '@');
	size_t len = strlen(email);

	return len <= USER_EMAIL_MAX && at != NULL && at != email &&
	       at[1] != '\0' && strchr(at + 1, '@') == NULL &&
	       strpbrk(email, " \t\r\n") == NULL;
}

static int user_opts_check(const char *usage, const struct user_opts *o)
{
	char why[80];

	if (o->email != NULL && !email_valid(o->email))
		return voxctl_usage_error(
		        usage, "--email \"%s\" is not an address", o->email);
	if (o->name != NULL &&
	    !voxctl_text_valid(o->name, 1, USER_NAME_MAX, why, sizeof(why)))
		return voxctl_usage_error(usage, "--name %s", why);
	if (o->role != NULL && !role_valid(o->role))
		return voxctl_usage_error(usage,
		                          "--role \"%s\": owner, admin, "
		                          "developer, billing or viewer",
		                          o->role);
	if (o->phone != NULL && !vox_phone_is_e164(o->phone))
		return voxctl_usage_error(usage,
		                          "--phone \"%s\" is not a valid E.164 "
		                          "number",
		                          o->phone);
	if (o->status != NULL && strcmp(o->status, "active") != 0 &&
	    strcmp(o->status, "disabled") != 0)
		return voxctl_usage_error(usage,
		                          "--status \"%s\": active or disabled",
		                          o->status);
	if (o->phone != NULL && o->no_phone)
		return voxctl_usage_error(usage, "--phone and --no-phone");
	return VOXCTL_OK;
}

/* Parses the options of every user subcommand; -1 to go on, else an
 * exit code. */
static int user_parse(const char *usage, int argc, char **argv,
                      struct user_opts *o)
{
	static const struct option longopts[] = {
	        {"account", required_argument, NULL, 'a'},
	        {"email", required_argument, NULL, 'e'},
	        {"name", required_argument, NULL, 'n'},
	        {"role", required_argument, NULL, 'r'},
	        {"phone", required_argument, NULL, 'p'},
	        {"no-phone", no_argument, NULL, 'P'},
	        {"status", required_argument, NULL, 's'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int opt;

	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			o->account = optarg;
			break;
		case 'e':
			o->email = optarg;
			break;
		case 'n':
			o->name = optarg;
			break;
		case 'r':
			o->role = optarg;
			break;
		case 'p':
			o->phone = optarg;
			break;
		case 'P':
			o->no_phone = true;
			break;
		case 's':
			o->status = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			printf("usage: %s\n", usage);
			return VOXCTL_OK;
		default:
			return voxctl_bad_option(usage, opt, argv);
		}
	}
	return -1;
}

/* Runs sql and prints its rows as JSON lines or a table; no row is
 * "no such user" (exit 1). */
static int user_print(vox_pg_t *pg, const char *sql, int n,
                      const char *const *params, bool json)
{
	int rows;
	vox_error_t err = {0};
	PGresult *res;

	if (vox_pg_exec(pg, sql, n, params, &res, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		return VOXCTL_FAILED;
	}
	rows = PQntuples(res);
	for (int i = 0; i < rows; i++) {
		if (json) {
			json_t *row = json_object();
			char *text;

			for (int c = 0; c < PQnfields(res); c++)
				json_object_set_new(
				        row, PQfname(res, c),
				        PQgetisnull(res, i, c)
				                ? json_null()
				                : json_string(PQgetvalue(res, i,
				                                         c)));
			text = vox_json_dump(row);
			if (text != NULL)
				puts(text);
			free(text);
			json_decref(row);
		} else {
			for (int c = 0; c < PQnfields(res); c++)
				printf("%s%s", c ? "  " : "",
				       PQgetisnull(res, i, c)
				               ? "-"
				               : PQgetvalue(res, i, c));
			putchar('\n');
		}
	}
	PQclear(res);
	return rows > 0 || strncmp(sql, "SELECT", 6) == 0 ? VOXCTL_OK
	                                                  : VOXCTL_FAILED;
}

#define USER_COLUMNS "id, account_id, email, name, role, status, phone"

static int user_add(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	struct user_opts o = {.role = "admin"};
	char id[VOX_UUID_STRLEN];
	vox_pg_t *pg;
	int rc = user_parse(USER_ADD_USAGE, argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (optind < argc)
		return voxctl_usage_error(USER_ADD_USAGE,
		                          "unexpected argument \"%s\"",
		                          argv[optind]);
	if (o.account == NULL || !vox_uuid_valid(o.account))
		return voxctl_usage_error(USER_ADD_USAGE,
		                          "--account ID (a uuid) is required");
	if (o.email == NULL)
		return voxctl_usage_error(USER_ADD_USAGE,
		                          "--email is required");
	if (o.no_phone || o.status != NULL)
		return voxctl_usage_error(USER_ADD_USAGE,
		                          "--no-phone and --status are for "
		                          "update");
	rc = user_opts_check(USER_ADD_USAGE, &o);
	if (rc != VOXCTL_OK)
		return rc;
	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	vox_uuid7(id);
	{
		const char *params[] = {id,     o.account, o.email,
		                        o.name, o.role,    o.phone};

		rc = user_print(
		        pg,
		        "INSERT INTO users (id, account_id, email, "
		        "name, role, phone) VALUES ($1::uuid, "
		        "$2::uuid, $3, $4, $5, $6) RETURNING " USER_COLUMNS,
		        6, params, o.json);
	}
	vox_pg_destroy(pg);
	return rc;
}

static int user_list(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	struct user_opts o = {0};
	vox_pg_t *pg;
	int rc = user_parse(USER_LIST_USAGE, argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (optind < argc || o.account == NULL || !vox_uuid_valid(o.account))
		return voxctl_usage_error(USER_LIST_USAGE,
		                          "--account ID (a uuid) is required, "
		                          "and nothing else");
	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	{
		const char *params[] = {o.account};

		rc = user_print(pg,
		                "SELECT " USER_COLUMNS " FROM users WHERE "
		                "account_id = $1::uuid ORDER BY created_at, id",
		                1, params, o.json);
	}
	vox_pg_destroy(pg);
	return rc;
}

static int user_update(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	struct user_opts o = {0};
	const char *id;
	vox_pg_t *pg;
	int rc = user_parse(USER_UPDATE_USAGE, argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (argc - optind != 1 || !vox_uuid_valid(argv[optind]))
		return voxctl_usage_error(USER_UPDATE_USAGE,
		                          "one user ID (a uuid) is required");
	id = argv[optind];
	if (o.account != NULL || o.email != NULL || o.name != NULL)
		return voxctl_usage_error(USER_UPDATE_USAGE,
		                          "only --phone, --no-phone, --role "
		                          "and --status can change");
	rc = user_opts_check(USER_UPDATE_USAGE, &o);
	if (rc != VOXCTL_OK)
		return rc;
	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	{
		const char *params[] = {id, o.phone, o.no_phone ? "t" : "f",
		                        o.role, o.status};

		rc = user_print(
		        pg,
		        "UPDATE users SET phone = CASE WHEN $3::boolean THEN "
		        "NULL ELSE coalesce($2, phone) END, role = "
		        "coalesce($4, role), status = coalesce($5, status) "
		        "WHERE id = $1::uuid RETURNING " USER_COLUMNS,
		        5, params, o.json);
	}
	if (rc == VOXCTL_FAILED)
		fprintf(stderr, "voxctl: no user %s\n", id);
	vox_pg_destroy(pg);
	return rc;
}

int voxctl_user(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	static const struct voxctl_sub subs[] = {
	        {"add", USER_ADD_USAGE, user_add},
	        {"list", USER_LIST_USAGE, user_list},
	        {"update", USER_UPDATE_USAGE, user_update},
	};

	return voxctl_dispatch(subs, sizeof(subs) / sizeof(subs[0]), cfg, argc,
	                       argv);
}
