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
#include "vox_event.h"
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
	"SELECT id, e164, record::text, "
	"coalesce(e164, record->>'id', carrier_cdr_id) FROM usage_exceptions"
	" WHERE status = 'open' AND carrier_cdr_id IS NOT NULL"
	" AND ($1::text IS NULL OR carrier = $1)"
	" AND ($2::text IS NULL OR reason_code = $2)"
	" AND ($3::bigint IS NULL OR id = $3)"
	" ORDER BY id FOR UPDATE";
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

struct rerate {
	const struct usage_args *a;
	const char *topic;
	int count;
};

/* Row i's record sent again as a vox.cdr.received event marked
 * "rerate_of" (the one event builder: source and envelope as the ingress
 * makes them), and the exception marked requeued. */
static int rerate_one(vox_pg_t *pg, const char *topic, const PGresult *res,
                      int i, vox_error_t *err)
{
	const char *id = PQgetvalue(res, i, 0);
	const char *e164 =
	        PQgetisnull(res, i, 1) ? NULL : PQgetvalue(res, i, 1);
	json_t *data = json_loads(PQgetvalue(res, i, 2), 0, NULL), *ev;
	char *text;
	int rc;

	if (!json_is_object(data)) {
		json_decref(data);
		data = json_object();
	}
	json_object_set_new(data, "rerate_of",
	                    json_integer(strtoll(id, NULL, 10)));
	ev = vox_event_build(VOX_CDR_EVENT_TYPE, e164, NULL, NULL, data);
	text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	json_decref(ev);
	if (text == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
	rc = vox_outbox_add(pg, topic, PQgetvalue(res, i, 3), text, NULL, err);
	free(text);
	const char *params[] = {id};
	if (rc == 0)
		rc = vox_pg_exec(pg,
		                 "UPDATE usage_exceptions SET status = "
		                 "'requeued' WHERE id = $1",
		                 1, params, NULL, err);
	return rc;
}

static int rerate_in_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct rerate *r = arg;
	const char *params[] = {r->a->carrier, r->a->reason, r->a->id};
	PGresult *res = NULL;
	int rc = vox_pg_exec(pg, rerate_sql, 3, params, &res, err);

	r->count = 0;
	for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
		rc = rerate_one(pg, r->topic, res, i, err);
		r->count += rc == 0;
	}
	PQclear(res);
	return rc;
}

static int usage_rerate(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	struct usage_args a = {0};
	vox_error_t err = {0};
	vox_pg_t *pg;
	int rc = usage_read(RERATE_USAGE, argc, argv, &a);

	if (rc >= 0)
		return rc;
	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	struct rerate r = {&a, a.topic ? a.topic : VOX_CDR_TOPIC, 0};
	if (vox_pg_transaction(pg, rerate_in_tx, &r, &err) != 0) {
		fprintf(stderr, "voxctl: %s\n", err.message);
		vox_pg_destroy(pg);
		return VOXCTL_FAILED;
	}
	printf("%d exceptions requeued to %s (the metering worker's outbox "
	       "relay publishes them)\n",
	       r.count, r.topic);
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
