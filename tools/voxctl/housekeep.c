/*
 * voxctl housekeep [--every SECONDS]: one pass over the tables that grow
 * without end, deleting what is past its retention (docs/HOUSEKEEPING.md),
 * then archiving old usage months (archive.c).
 *
 * Writers are never blocked for long: each batch is one DELETE of at most
 * VOX_HOUSEKEEP_BATCH rows, autocommitted (its own short transaction),
 * that picks its rows with FOR UPDATE SKIP LOCKED, so a row a writer holds
 * is left for a later pass instead of waited for; lock_timeout and
 * statement_timeout bound what a batch may wait for or take. A table is
 * done when a batch comes back short. The cut-off time is taken once per
 * pass, so a pass ends even while rows keep ageing.
 *
 * Prints one line per table: "<table>: N rows deleted, B batches, T ms".
 * Exit 0; 1 on an error (the line says which table); 2 for bad usage.
 * With --every, a pass runs every SECONDS until SIGTERM/SIGINT (a failed
 * pass is reported and the next one tried).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_buf.h"
#include "vox_signal.h"
#include "vox_time.h"
#include "voxctl.h"

#define HOUSEKEEP_USAGE "voxctl housekeep [--every SECONDS]"
#define HK_EVERY_MAX    86400
/* usage_dedup is swept by block ranges of this many pages (it has no
 * index on started_at, migrations/0015_usage_dedup_lean.sql). */
#define HK_SWEEP_BLOCKS 128

struct hk_count {
	long long rows;
	long batches;
};

struct hk_pass {
	vox_pg_t *pg;
	const struct voxctl_cfg *cfg;
	char now[64]; /* the pass's "now", as PostgreSQL wrote it */
	char batch[24];
};

/* The session's limits (again after a reconnection: a fresh session has
 * none). */
static int hk_session(vox_pg_t *pg, const struct voxctl_cfg *cfg,
                      vox_error_t *err)
{
	char lock[24], stmt[24];
	const char *params[] = {lock, stmt};

	snprintf(lock, sizeof(lock), "%ld", cfg->hk_lock_timeout_ms);
	snprintf(stmt, sizeof(stmt), "%ld", cfg->hk_statement_timeout_ms);
	return vox_pg_exec(pg,
	                   "SELECT set_config('lock_timeout', $1, false), "
	                   "set_config('statement_timeout', $2, false), "
	                   "set_config('application_name', 'voxctl "
	                   "housekeep', false)",
	                   2, params, NULL, err);
}

/* Runs sql (params[1] the batch size; params[0] the pass's now but for
 * usage_dedup) until a batch deletes fewer rows than the batch size. */
static int hk_batches(struct hk_pass *p, const char *sql, int nparams,
                      const char *const *params, struct hk_count *count,
                      vox_error_t *err)
{
	long long deleted;

	do {
		PGresult *res = NULL;

		if (!vox_running)
			return vox_error_set(err, VOX_ERR_INTERNAL, false,
			                     "interrupted");
		if (vox_pg_conn(p->pg) == NULL &&
		    hk_session(p->pg, p->cfg, err) != 0)
			return -1;
		if (vox_pg_exec(p->pg, sql, nparams, params, &res, err) != 0)
			return -1;
		deleted = strtoll(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		count->rows += deleted;
		count->batches++;
	} while (deleted >= p->cfg->hk_batch);
	return 0;
}

/* The batch statement of table: rows chosen by where (ORDER BY order),
 * locked or skipped, deleted by their ctid. */
#define HK_DELETE(table, where, order)                                         \
	"WITH doomed AS MATERIALIZED (SELECT ctid FROM " table " WHERE " where \
	" ORDER BY " order " LIMIT $2::int FOR UPDATE SKIP LOCKED) "           \
	"DELETE FROM " table " WHERE ctid = ANY(ARRAY(SELECT ctid FROM "       \
	"doomed))"

/* clang-format off */
static const char signatures_sql[] = HK_DELETE("cdr_push_signatures",
	"received_at < $1::timestamptz - make_interval(mins => $3::int)",
	"received_at");

/* In flight (status_code NULL) or answered, a key is kept until it
 * expires: the ingress replays or refuses on it until then. */
static const char idempotency_sql[] = HK_DELETE("idempotency_keys",
	"expires_at < $1::timestamptz", "expires_at");

static const char inbox_sql[] = HK_DELETE("inbox",
	"topic = $3 AND processed_at < $1::timestamptz - "
	"make_interval(days => $4::int)", "processed_at");

static const char inbox_null_sql[] = HK_DELETE("inbox",
	"topic IS NULL AND processed_at < $1::timestamptz - "
	"make_interval(days => $3::int)", "processed_at");

/* Never an unpublished row; published_at >= created_at bounds the scan. */
static const char outbox_sql[] = HK_DELETE("outbox",
	"created_at < $1::timestamptz - make_interval(hours => $3::int) AND "
	"published_at < $1::timestamptz - make_interval(hours => $3::int)",
	"created_at");

/* The topics of the inbox, through its (topic, processed_at) index. */
static const char inbox_topics_sql[] =
	"WITH RECURSIVE t(topic) AS ("
	" (SELECT topic FROM inbox WHERE topic IS NOT NULL ORDER BY topic"
	"  LIMIT 1)"
	" UNION ALL"
	" SELECT (SELECT i.topic FROM inbox i WHERE i.topic > t.topic"
	"  ORDER BY i.topic LIMIT 1) FROM t WHERE t.topic IS NOT NULL)"
	"SELECT topic FROM t WHERE topic IS NOT NULL";

/* The columns that reference operations without ON DELETE CASCADE or SET
 * NULL: an operation one of them names is kept (its order, reservation,
 * configuration version or port order shows it). */
static const char operation_refs_sql[] =
	"SELECT quote_ident(n.nspname) || '.' || quote_ident(r.relname),"
	" quote_ident(a.attname)"
	" FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid"
	" JOIN pg_namespace n ON n.oid = r.relnamespace"
	" JOIN pg_attribute a ON a.attrelid = c.conrelid"
	"  AND a.attnum = c.conkey[1]"
	" WHERE c.contype = 'f' AND c.confrelid = 'operations'::regclass"
	"  AND c.confdeltype IN ('a', 'r') AND cardinality(c.conkey) = 1"
	" ORDER BY 1";
/* clang-format on */

static int hk_signatures(struct hk_pass *p, struct hk_count *count,
                         vox_error_t *err)
{
	char mins[24];
	const char *params[] = {p->now, p->batch, mins};

	snprintf(mins, sizeof(mins), "%ld", p->cfg->hk_signatures_minutes);
	return hk_batches(p, signatures_sql, 3, params, count, err);
}

static int hk_idempotency(struct hk_pass *p, struct hk_count *count,
                          vox_error_t *err)
{
	const char *params[] = {p->now, p->batch};

	return hk_batches(p, idempotency_sql, 2, params, count, err);
}

/* Rows of a 7-day topic (the commands, vox.cdr.raw) can only come back
 * for 7 days; any other topic (vox.events*, dead letters: 30 days, or one
 * we do not know) gets the long retention. */
static long hk_inbox_days(const struct voxctl_cfg *cfg, const char *topic)
{
	size_t n = strlen(topic);
	bool dlq = n >= 4 && strcmp(topic + n - 4, ".dlq") == 0;

	if (!dlq && (strncmp(topic, "vox.cmd.", 8) == 0 ||
	             strcmp(topic, "vox.cdr.raw") == 0))
		return cfg->hk_inbox_days;
	return cfg->hk_inbox_long_days;
}

static int hk_inbox(struct hk_pass *p, struct hk_count *count, vox_error_t *err)
{
	char days[24];
	PGresult *topics = NULL;
	int rc;

	if (vox_pg_exec(p->pg, inbox_topics_sql, 0, NULL, &topics, err) != 0)
		return -1;
	rc = 0;
	for (int i = 0; rc == 0 && i < PQntuples(topics); i++) {
		const char *topic = PQgetvalue(topics, i, 0);
		const char *params[] = {p->now, p->batch, topic, days};

		snprintf(days, sizeof(days), "%ld",
		         hk_inbox_days(p->cfg, topic));
		rc = hk_batches(p, inbox_sql, 4, params, count, err);
	}
	PQclear(topics);
	if (rc == 0) {
		const char *params[] = {p->now, p->batch, days};

		snprintf(days, sizeof(days), "%ld", p->cfg->hk_inbox_long_days);
		rc = hk_batches(p, inbox_null_sql, 3, params, count, err);
	}
	return rc;
}

static int hk_outbox(struct hk_pass *p, struct hk_count *count,
                     vox_error_t *err)
{
	char hours[24];
	const char *params[] = {p->now, p->batch, hours};

	snprintf(hours, sizeof(hours), "%ld", p->cfg->hk_outbox_hours);
	return hk_batches(p, outbox_sql, 3, params, count, err);
}

/* The operations statement, with one NOT EXISTS per referencing column
 * (identifiers quoted by PostgreSQL). */
static int hk_operations_sql(vox_pg_t *pg, vox_buf_t *sql, vox_error_t *err)
{
	PGresult *refs = NULL;

	if (vox_pg_exec(pg, operation_refs_sql, 0, NULL, &refs, err) != 0)
		return -1;
	vox_buf_adds(sql,
	             "WITH doomed AS MATERIALIZED (SELECT o.ctid FROM "
	             "operations o WHERE o.created_at < $1::timestamptz "
	             "- make_interval(days => $3::int) AND o.status IN "
	             "('completed', 'failed') AND coalesce(o.completed_at, "
	             "o.updated_at) < $1::timestamptz - "
	             "make_interval(days => $3::int)");
	for (int i = 0; i < PQntuples(refs); i++)
		vox_buf_printf(sql,
		               " AND NOT EXISTS (SELECT 1 FROM %s x WHERE x.%s "
		               "= o.id)",
		               PQgetvalue(refs, i, 0), PQgetvalue(refs, i, 1));
	vox_buf_adds(sql, " ORDER BY o.created_at LIMIT $2::int FOR UPDATE OF "
	                  "o SKIP LOCKED) DELETE FROM operations WHERE ctid = "
	                  "ANY(ARRAY(SELECT ctid FROM doomed))");
	PQclear(refs);
	return vox_buf_check(sql, "the operations statement", err);
}

/* Their operation_events go with them (ON DELETE CASCADE). */
static int hk_operations(struct hk_pass *p, struct hk_count *count,
                         vox_error_t *err)
{
	char days[24];
	const char *params[] = {p->now, p->batch, days};
	vox_buf_t sql;
	int rc;

	vox_buf_init(&sql, 65536);
	snprintf(days, sizeof(days), "%ld", p->cfg->hk_operations_days);
	rc = hk_operations_sql(p->pg, &sql, err);
	if (rc == 0)
		rc = hk_batches(p, vox_buf_str(&sql), 3, params, count, err);
	vox_buf_free(&sql);
	return rc;
}

/* clang-format off */
/* usage_dedup keeps the pair of every usage record still in the database
 * (a CDR sent again must find it): rows older than both the retention's
 * first kept month and the oldest usage record left. */
static const char dedup_cutoff_sql[] =
	"SELECT least(date_trunc('month', $1::timestamptz AT TIME ZONE 'UTC')"
	"  AT TIME ZONE 'UTC' - make_interval(months => $2::int),"
	"  (SELECT min(started_at) FROM usage_records)),"
	" (SELECT value FROM housekeep_state"
	"  WHERE name = 'usage_dedup_swept_before'),"
	" pg_relation_size('usage_dedup') / current_setting('block_size')::int";

static const char dedup_sql[] =
	"WITH doomed AS MATERIALIZED (SELECT ctid FROM usage_dedup"
	" WHERE ctid >= format('(%s,0)', $1::bigint)::tid"
	"  AND ctid < format('(%s,0)', $1::bigint + $4::int)::tid"
	"  AND started_at < $3::timestamptz LIMIT $2::int FOR UPDATE SKIP LOCKED)"
	" DELETE FROM usage_dedup WHERE ctid = ANY(ARRAY(SELECT ctid FROM doomed))";
/* clang-format on */

/* A sweep of the whole table by block ranges (no index to find old rows
 * with), done again only when the cut-off has moved since the last one:
 * about once a month. */
static int hk_usage_dedup(struct hk_pass *p, struct hk_count *count,
                          vox_error_t *err)
{
	char months[24], block[24], step[24], cutoff[64];
	PGresult *res = NULL;
	long long blocks;
	int rc;

	snprintf(months, sizeof(months), "%ld", p->cfg->usage_retention_months);
	const char *cparams[] = {p->now, months};
	if (vox_pg_exec(p->pg, dedup_cutoff_sql, 2, cparams, &res, err) != 0)
		return -1;
	snprintf(cutoff, sizeof(cutoff), "%s", PQgetvalue(res, 0, 0));
	blocks = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	const char *swept[] = {
	        cutoff, PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1)};
	PGresult *moved = NULL;
	rc = vox_pg_exec(p->pg,
	                 "SELECT $2::timestamptz IS NULL OR $1::timestamptz > "
	                 "$2::timestamptz",
	                 2, swept, &moved, err);
	PQclear(res);
	if (rc != 0 || strcmp(PQgetvalue(moved, 0, 0), "t") != 0) {
		PQclear(moved);
		return rc;
	}
	PQclear(moved);
	snprintf(step, sizeof(step), "%d", HK_SWEEP_BLOCKS);
	for (long long b = 0; rc == 0 && b <= blocks; b += HK_SWEEP_BLOCKS) {
		const char *params[] = {block, p->batch, cutoff, step};

		snprintf(block, sizeof(block), "%lld", b);
		rc = hk_batches(p, dedup_sql, 4, params, count, err);
	}
	const char *done[] = {cutoff};
	if (rc == 0)
		rc = vox_pg_exec(p->pg,
		                 "INSERT INTO housekeep_state (name, value) "
		                 "VALUES ('usage_dedup_swept_before', $1) ON "
		                 "CONFLICT (name) DO UPDATE SET value = "
		                 "EXCLUDED.value, updated_at = now()",
		                 1, done, NULL, err);
	return rc;
}

static int hk_archive(struct hk_pass *p, struct hk_count *count,
                      vox_error_t *err)
{
	(void)count;
	return voxctl_archive_usage(p->pg, p->cfg, err);
}

static const struct hk_step {
	const char *table;
	int (*run)(struct hk_pass *p, struct hk_count *count, vox_error_t *err);
	bool prints; /* prints its own line */
} hk_steps[] = {
        {"cdr_push_signatures", hk_signatures, false},
        {"idempotency_keys", hk_idempotency, false},
        {"inbox", hk_inbox, false},
        {"outbox", hk_outbox, false},
        {"operations", hk_operations, false},
        /* archived months first: usage_dedup follows them */
        {"usage_records partitions", hk_archive, true},
        {"usage_dedup", hk_usage_dedup, false},
};

/* One pass; 0 when every step worked. Every step runs even when one
 * fails (a table that cannot be pruned does not stop the others). */
static int hk_pass_run(vox_pg_t *pg, const struct voxctl_cfg *cfg)
{
	struct hk_pass p = {.pg = pg, .cfg = cfg};
	vox_error_t err = {0};
	PGresult *res = NULL;
	int failed = 0;

	snprintf(p.batch, sizeof(p.batch), "%ld", cfg->hk_batch);
	if (hk_session(pg, cfg, &err) != 0 ||
	    vox_pg_exec(pg, "SELECT now()", 0, NULL, &res, &err) != 0) {
		fprintf(stderr, "voxctl: housekeep: %s\n", err.message);
		return -1;
	}
	snprintf(p.now, sizeof(p.now), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	for (size_t i = 0; i < sizeof(hk_steps) / sizeof(hk_steps[0]); i++) {
		const struct hk_step *s = &hk_steps[i];
		struct hk_count count = {0};
		int64_t start;

		if (!vox_running)
			break;
		start = vox_mono_ms();
		memset(&err, 0, sizeof(err));
		if (s->run(&p, &count, &err) != 0) {
			fprintf(stderr,
			        "voxctl: housekeep %s: %s (%lld rows deleted "
			        "before)\n",
			        s->table, err.message, count.rows);
			failed = -1;
		} else if (!s->prints) {
			printf("%s: %lld rows deleted, %ld batches, %lld ms\n",
			       s->table, count.rows, count.batches,
			       (long long)(vox_mono_ms() - start));
		}
		fflush(stdout);
	}
	return failed;
}

static int hk_args(int argc, char **argv, long *every)
{
	static const struct option longopts[] = {
	        {"every", required_argument, NULL, 'e'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	char *end;
	int opt;

	voxctl_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			errno = 0;
			*every = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    *every < 1 || *every > HK_EVERY_MAX)
				return voxctl_usage_error(
				        HOUSEKEEP_USAGE,
				        "--every \"%s\" is not a number of "
				        "seconds from 1 to %d",
				        optarg, HK_EVERY_MAX);
			break;
		case 'h':
			printf("usage: %s\n", HOUSEKEEP_USAGE);
			return VOXCTL_OK;
		default:
			return voxctl_bad_option(HOUSEKEEP_USAGE, opt, argv);
		}
	}
	if (argc != optind)
		return voxctl_usage_error(HOUSEKEEP_USAGE,
		                          "unexpected argument \"%s\"",
		                          argv[optind]);
	return -1;
}

/* Sleeps seconds, or less when a signal asks to stop. */
static void hk_wait(long seconds)
{
	for (long i = 0; vox_running && i < seconds * 5; i++)
		vox_sleep_ms(200);
}

int voxctl_housekeep(const struct voxctl_cfg *cfg, int argc, char **argv)
{
	long every = 0;
	vox_pg_t *pg;
	int rc = hk_args(argc, argv, &every);

	if (rc >= 0)
		return rc;
	if (cfg->hk_inbox_long_days < cfg->hk_inbox_days)
		return voxctl_usage_error(
		        HOUSEKEEP_USAGE,
		        "VOX_HOUSEKEEP_INBOX_LONG_DAYS (%ld) is shorter than "
		        "VOX_HOUSEKEEP_INBOX_DAYS (%ld): the 30-day topics "
		        "would "
		        "lose their deduplication before the 7-day ones",
		        cfg->hk_inbox_long_days, cfg->hk_inbox_days);
	vox_signal_setup();
	pg = voxctl_pg_open(cfg);
	if (pg == NULL)
		return VOXCTL_FAILED;
	do {
		rc = hk_pass_run(pg, cfg);
		if (every > 0)
			hk_wait(every);
	} while (every > 0 && vox_running);
	vox_pg_destroy(pg);
	if (every > 0)
		return VOXCTL_OK; /* stopped by a signal; failures were said */
	return rc == 0 ? VOXCTL_OK : VOXCTL_FAILED;
}
