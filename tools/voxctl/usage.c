/*
 * voxctl usage: the metering side (docs/METERING.md).
 *   voxctl usage exceptions [--carrier C] [--reason CODE]
 *                           [--status open|requeued|resolved|all] [--json]
 *   voxctl usage rerate [--carrier C] [--reason CODE] [--id N]
 *                       [--topic vox.cdr.raw]
 *
 * rerate sends open exceptions (those with a carrier record id) back to
 * vox.cdr.raw through the outbox, marked "rerate_of"; the metering worker
 * resolves them when they rate, or opens them again with the new reason.
 * Usage is still counted once: usage_dedup holds.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_cdr.h"
#include "voxctl.h"

#define EXCEPTIONS_USAGE                                                       \
	"voxctl usage exceptions [--carrier C] [--reason CODE] "               \
	"[--status open|requeued|resolved|all] [--json]"
#define RERATE_USAGE                                                           \
	"voxctl usage rerate [--carrier C] [--reason CODE] [--id N] "          \
	"[--topic vox.cdr.raw]"

struct usage_args {
	const char *carrier, *reason, *status, *id, *topic;
	bool json;
};

static int usage_read(const char *usage, int argc, char **argv,
                      struct usage_args *a)
{
	static const struct option longopts[] = {
	        {"carrier", required_argument, NULL, 'c'},
	        {"reason", required_argument, NULL, 'r'},
	        {"status", required_argument, NULL, 's'},
	        {"id", required_argument, NULL, 'i'},
	        {"topic", required_argument, NULL, 't'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int opt;

	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			a->carrier = optarg;
			break;
		case 'r':
			a->reason = optarg;
			break;
		case 's':
			a->status = optarg;
			break;
		case 'i':
			a->id = optarg;
			break;
		case 't':
			a->topic = optarg;
			break;
		case 'j':
			a->json = true;
			break;
		case 'h':
			printf("usage: %s\n", usage);
			return VOXCTL_OK;
		default:
			return voxctl_bad_option(usage, opt, argv);
		}
	}
	if (argc != optind)
		return voxctl_usage_error(usage, "unexpected argument \"%s\"",
		                          argv[optind]);
	if (a->carrier && !vox_carrier_name_valid(a->carrier))
		return voxctl_usage_error(usage,
		                          "--carrier \"%s\" is not a "
		                          "carrier name",
		                          a->carrier);
	if (a->reason && strspn(a->reason, "abcdefghijklmnopqrstuvwxyz_") !=
	                         strlen(a->reason))
		return voxctl_usage_error(usage,
		                          "--reason \"%s\" is not a "
		                          "reason code",
		                          a->reason);
	if (a->id && (strspn(a->id, "0123456789") != strlen(a->id) ||
	              strlen(a->id) == 0 || strlen(a->id) > 18))
		return voxctl_usage_error(usage, "--id \"%s\" is not a number",
		                          a->id);
	if (a->status && strcmp(a->status, "open") != 0 &&
	    strcmp(a->status, "requeued") != 0 &&
	    strcmp(a->status, "resolved") != 0 && strcmp(a->status, "all") != 0)
		return voxctl_usage_error(usage,
		                          "--status \"%s\" is not open, "
		                          "requeued, resolved or all",
		                          a->status);
	if (a->topic && (strlen(a->topic) == 0 || strlen(a->topic) > 249))
		return voxctl_usage_error(usage,
		                          "--topic is empty or too long");
	return -1;
}

/* clang-format off */
static const char exceptions_sql[] =
	"SELECT id, carrier, carrier_cdr_id, e164, reason_code, reason, status, "
	"seen_count, " VOXCTL_TS("last_seen_at") " AS last_seen_at "
	"FROM usage_exceptions WHERE ($1::text IS NULL OR carrier = $1) "
	"AND ($2::text IS NULL OR reason_code = $2) "
	"AND ($3::text = 'all' OR status = $3) ORDER BY id LIMIT 1000";

static const char rerate_sql[] =
	"WITH picked AS ("
	" SELECT id, e164, record FROM usage_exceptions"
	" WHERE status = 'open' AND carrier_cdr_id IS NOT NULL"
	" AND ($1::text IS NULL OR carrier = $1)"
	" AND ($2::text IS NULL OR reason_code = $2)"
	" AND ($3::bigint IS NULL OR id = $3)"
	" ORDER BY id FOR UPDATE),"
	" sent AS ("
	" INSERT INTO outbox (topic, message_key, payload)"
	" SELECT $4, coalesce(e164, record->>'id'), json_build_object("
	"'specversion', '1.0', 'id', gen_random_uuid()::text,"
	" 'source', '/voxctl/usage-rerate', 'type', 'vox.cdr.received',"
	" 'time', " VOXCTL_TS("now()") ", 'subject', e164,"
	" 'datacontenttype', 'application/json', 'accountid', NULL,"
	" 'data', record || jsonb_build_object('rerate_of', id))::text"
	" FROM picked ORDER BY id RETURNING 1)"
	" UPDATE usage_exceptions e SET status = 'requeued'"
	" FROM picked p WHERE e.id = p.id AND (SELECT count(*) FROM sent) >= 0"
	" RETURNING e.id";
/* clang-format on */

static int usage_exceptions(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	struct usage_args a = {0};
	vox_error_t err = {0};
	PGresult *res = NULL;
	vox_pg_t *pg;
	int rc = usage_read(EXCEPTIONS_USAGE, argc, argv, &a);

	if (rc >= 0)
		return rc;
	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	const char *params[] = {a.carrier, a.reason,
	                        a.status ? a.status : "open"};
	if (vox_pg_exec(pg, exceptions_sql, 3, params, &res, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		vox_pg_destroy(pg);
		return VOXCTL_FAILED;
	}
	rc = voxctl_print_rows(res, a.json);
	PQclear(res);
	vox_pg_destroy(pg);
	return rc;
}

static int usage_rerate(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	struct usage_args a = {0};
	vox_error_t err = {0};
	PGresult *res = NULL;
	vox_pg_t *pg;
	int rc = usage_read(RERATE_USAGE, argc, argv, &a);

	if (rc >= 0)
		return rc;
	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	const char *params[] = {a.carrier, a.reason, a.id,
	                        a.topic ? a.topic : VOX_CDR_TOPIC};
	if (vox_pg_exec(pg, rerate_sql, 4, params, &res, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		vox_pg_destroy(pg);
		return VOXCTL_FAILED;
	}
	printf("%d exceptions requeued to %s (the metering worker's outbox "
	       "relay publishes them)\n",
	       PQntuples(res), a.topic ? a.topic : VOX_CDR_TOPIC);
	PQclear(res);
	vox_pg_destroy(pg);
	return VOXCTL_OK;
}

static const struct voxctl_sub usage_subs[] = {
        {"exceptions", EXCEPTIONS_USAGE, usage_exceptions},
        {"rerate", RERATE_USAGE, usage_rerate},
};

int voxctl_usage(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	return voxctl_dispatch(usage_subs,
	                       sizeof(usage_subs) / sizeof(usage_subs[0]), cfg,
	                       argc, argv);
}
