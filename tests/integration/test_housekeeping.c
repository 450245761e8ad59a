/*
 * voxctl housekeep against the real database and S3 stand-in
 * (docs/HOUSEKEEPING.md): rows past their retention go, the others stay
 * (unpublished outbox rows, keys before expiry, unfinished operations and
 * operations something references are never deleted); deletes go in
 * batches; a row a writer holds is skipped, not waited for; an old,
 * invoiced usage month is archived as gzip'd CSV that reads back, an
 * uninvoiced one and the current months stay; bad settings are refused.
 * Every row a test writes is marked with a tag of its own and removed at
 * the end; the rows that housekeep deletes are all older than anything
 * other suites write.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "helpers.h"
#include "vox_s3.h"
#include "voxctl_helpers.h"

TestSuite(housekeeping, .timeout = 120);

static void tag_new(char *tag, size_t len, const char *what)
{
	snprintf(tag, len, "hk-%s-%d-%ld", what, (int)getpid(),
	         (long)time(NULL));
}

static void sql_ok(vox_pg_t *pg, const char *sql, int n,
                   const char *const *params)
{
	vox_error_t err = {0};

	cr_assert_eq(vox_pg_exec(pg, sql, n, params, NULL, &err), 0, "%s: %s",
	             sql, err.message);
}

static long long count1(vox_pg_t *pg, const char *sql, const char *param)
{
	long long n = t_pg_count(pg, sql, param);

	cr_assert_geq(n, 0, "%s", sql);
	return n;
}

static struct t_voxctl_run housekeep(const char *const *env)
{
	return t_voxctl(env, (const char *const[]){"housekeep", NULL});
}

/* "<table>: N rows deleted, B batches, T ms" of out. */
static void table_line(const char *out, const char *table, long long *rows,
                       long *batches)
{
	char head[64];
	const char *line;

	snprintf(head, sizeof(head), "%s: ", table);
	line = strstr(out, head);
	cr_assert_not_null(line, "no line for %s in:\n%s", table, out);
	cr_assert_eq(sscanf(line + strlen(head),
	                    "%lld rows deleted, %ld "
	                    "batches",
	                    rows, batches),
	             2, "bad line for %s: %s", table, line);
}

Test(housekeeping, prunes_past_retention_keeps_the_rest)
{
	vox_pg_t *pg = t_pg();
	char account[40], key[64], tag[64], cmd[80], ev[80];
	const char *p[] = {tag, cmd, ev};
	const char *pa[] = {tag, account};
	const char *pc[] = {cmd};

	t_account("owner", account, key);
	tag_new(tag, sizeof(tag), "keep");
	snprintf(cmd, sizeof(cmd), "vox.cmd.%s", tag);
	snprintf(ev, sizeof(ev), "vox.events.%s", tag);
	/* inbox: a 7-day topic keeps 8 days, another 31 */
	sql_ok(pg,
	       "INSERT INTO inbox (consumer, message_id, topic, processed_at) "
	       "VALUES ($1, 'cmd-old', $2, now() - interval '9 days'), "
	       "($1, 'cmd-new', $2, now() - interval '7 days'), "
	       "($1, 'ev-mid', $3, now() - interval '9 days'), "
	       "($1, 'ev-old', $3, now() - interval '32 days')",
	       3, p);
	/* outbox: published and old goes; unpublished stays, however old */
	sql_ok(pg,
	       "INSERT INTO outbox (topic, message_key, payload, created_at, "
	       "published_at) VALUES "
	       "($1, 'pub-old', '{}', now() - interval '3 days', now() - "
	       "interval '2 days'), "
	       "($1, 'pub-new', '{}', now() - interval '3 days', now() - "
	       "interval '1 hour'), "
	       "($1, 'unpub-old', '{}', now() - interval '60 days', NULL)",
	       1, pc);
	/* idempotency keys: only expired ones go, answered or in flight */
	sql_ok(pg,
	       "INSERT INTO idempotency_keys (account_id, key, method, path, "
	       "request_hash, status_code, created_at, expires_at) VALUES "
	       "($2, $1 || '-expired', 'POST', '/v1/x', sha256('a'), 201, "
	       "now() - interval '25 hours', now() - interval '1 hour'), "
	       "($2, $1 || '-answered', 'POST', '/v1/x', sha256('a'), 201, "
	       "now() - interval '23 hours', now() + interval '1 hour'), "
	       "($2, $1 || '-inflight', 'POST', '/v1/x', sha256('a'), NULL, "
	       "now() - interval '23 hours', now() + interval '1 hour')",
	       2, pa);
	/* operations: terminal and 90+ days old go with their events */
	sql_ok(pg,
	       "INSERT INTO operations (id, account_id, kind, status, subject, "
	       "created_at, updated_at, completed_at) SELECT "
	       "gen_random_uuid(), $2, 'hk.test', s, $1 || '-' || s || '-' || "
	       "d, now() - make_interval(days => d + 1), now() - "
	       "make_interval(days => d), CASE WHEN s IN ('completed', "
	       "'failed') THEN now() - make_interval(days => d) END FROM "
	       "unnest(ARRAY['completed', 'failed', 'running', 'accepted']) s, "
	       "unnest(ARRAY[100, 10]) d",
	       2, pa);
	sql_ok(pg,
	       "INSERT INTO operation_events (operation_id, status, at) SELECT "
	       "id, status, created_at FROM operations WHERE subject LIKE $1 "
	       "|| '-%'",
	       1, p);
	/* one old completed operation an order still names */
	sql_ok(pg,
	       "INSERT INTO operations (id, account_id, kind, status, subject, "
	       "created_at, completed_at) VALUES (gen_random_uuid(), $2, "
	       "'hk.test', 'completed', $1 || '-referenced', now() - interval "
	       "'200 days', now() - interval '200 days')",
	       2, pa);
	sql_ok(pg,
	       "INSERT INTO orders (account_id, status, currency, created_at, "
	       "operation_id) SELECT $2, 'completed', 'USD', now() - interval "
	       "'200 days', id FROM operations WHERE subject = $1 || "
	       "'-referenced'",
	       2, pa);
	/* signatures: 5 minutes of tolerance, kept 15 */
	sql_ok(pg,
	       "INSERT INTO cdr_push_signatures (carrier, signature, "
	       "received_at) VALUES ($1, 'old', now() - interval '20 "
	       "minutes'), ($1, 'new', now() - interval '1 minute')",
	       1, p);

	struct t_voxctl_run r = housekeep(NULL);
	cr_assert_eq(r.exit, 0, "exit %d: %s%s", r.exit, r.out, r.err);
	for (const char *const *t =
	             (const char *const[]){
	                     "cdr_push_signatures", "idempotency_keys", "inbox",
	                     "outbox", "operations", "usage_dedup", NULL};
	     *t; t++) {
		long long rows;
		long batches;

		table_line(r.out, *t, &rows, &batches);
		/* usage_dedup is swept only when its cut-off moved */
		if (strcmp(*t, "usage_dedup") != 0)
			cr_assert_geq(batches, 1, "%s", *t);
	}
	cr_assert_not_null(strstr(r.out, "usage_records partitions: "), "%s",
	                   r.out);
	t_voxctl_free(&r);

	cr_assert_eq(count1(pg,
	                    "SELECT (string_agg(message_id, ',' ORDER BY "
	                    "message_id) = 'cmd-new,ev-mid')::int FROM inbox "
	                    "WHERE consumer = $1",
	                    tag),
	             1, "inbox kept the wrong rows");
	cr_assert_eq(count1(pg,
	                    "SELECT (string_agg(message_key, ',' ORDER BY "
	                    "message_key) = 'pub-new,unpub-old')::int FROM "
	                    "outbox WHERE topic = $1",
	                    cmd),
	             1, "outbox kept the wrong rows");
	cr_assert_eq(count1(pg,
	                    "SELECT (string_agg(key, ',' ORDER BY key) = $1 "
	                    "|| '-answered,' || $1 || '-inflight')::int FROM "
	                    "idempotency_keys WHERE key LIKE $1 || '-%'",
	                    tag),
	             1, "idempotency_keys kept the wrong rows");
	cr_assert_eq(count1(pg,
	                    "SELECT (string_agg(subject, ',' ORDER BY subject) "
	                    "= $1 || '-accepted-10,' || $1 || '-accepted-100,' "
	                    "|| $1 || '-completed-10,' || $1 || '-failed-10,' "
	                    "|| $1 || '-referenced,' || $1 || '-running-10,' "
	                    "|| $1 || '-running-100')::int FROM operations "
	                    "WHERE subject LIKE $1 || '-%'",
	                    tag),
	             1, "operations kept the wrong rows");
	cr_assert_eq(count1(pg,
	                    "SELECT count(*) FROM operation_events e JOIN "
	                    "operations o ON o.id = e.operation_id WHERE "
	                    "o.subject LIKE $1 || '-%'",
	                    tag),
	             6, "the kept operations keep their events");
	cr_assert_eq(count1(pg,
	                    "SELECT count(*) FROM operation_events e WHERE "
	                    "NOT EXISTS (SELECT 1 FROM operations o WHERE o.id "
	                    "= e.operation_id)",
	                    NULL),
	             0);
	cr_assert_eq(count1(pg,
	                    "SELECT (string_agg(signature, ',') = 'new')::int "
	                    "FROM cdr_push_signatures WHERE carrier = $1",
	                    tag),
	             1, "cdr_push_signatures kept the wrong rows");

	sql_ok(pg, "DELETE FROM inbox WHERE consumer = $1", 1, p);
	sql_ok(pg, "DELETE FROM outbox WHERE topic = $1", 1, pc);
	sql_ok(pg, "DELETE FROM idempotency_keys WHERE key LIKE $1 || '-%'", 1,
	       p);
	sql_ok(pg,
	       "DELETE FROM orders WHERE operation_id IN (SELECT id FROM "
	       "operations WHERE subject LIKE $1 || '-%')",
	       1, p);
	sql_ok(pg, "DELETE FROM operations WHERE subject LIKE $1 || '-%'", 1,
	       p);
	sql_ok(pg, "DELETE FROM cdr_push_signatures WHERE carrier = $1", 1, p);
	vox_pg_destroy(pg);
}

Test(housekeeping, deletes_in_batches_of_the_batch_size)
{
	vox_pg_t *pg = t_pg();
	char tag[64], cmd[80];
	const char *p[] = {tag, cmd};
	long long rows;
	long batches;

	tag_new(tag, sizeof(tag), "batch");
	snprintf(cmd, sizeof(cmd), "vox.cmd.%s", tag);
	sql_ok(pg,
	       "INSERT INTO inbox (consumer, message_id, topic, processed_at) "
	       "SELECT $1, 'm' || i, $2, now() - interval '20 days' FROM "
	       "generate_series(1, 25) i",
	       2, p);
	struct t_voxctl_run r = housekeep(
	        (const char *const[]){"VOX_HOUSEKEEP_BATCH=10", NULL});
	cr_assert_eq(r.exit, 0, "exit %d: %s%s", r.exit, r.out, r.err);
	table_line(r.out, "inbox", &rows, &batches);
	/* 10 + 10 + 5 for our topic; other topics add their own */
	cr_assert_geq(rows, 25, "%s", r.out);
	cr_assert_geq(batches, 3, "%s", r.out);
	t_voxctl_free(&r);
	cr_assert_eq(count1(pg,
	                    "SELECT count(*) FROM inbox WHERE consumer = $1",
	                    tag),
	             0);
	vox_pg_destroy(pg);
}

Test(housekeeping, a_row_a_writer_holds_is_skipped_not_waited_for)
{
	vox_pg_t *pg = t_pg(), *writer = t_pg();
	char tag[64], cmd[80];
	const char *p[] = {tag, cmd};
	struct timespec t0, t1;

	tag_new(tag, sizeof(tag), "locked");
	snprintf(cmd, sizeof(cmd), "vox.cmd.%s", tag);
	sql_ok(pg,
	       "INSERT INTO inbox (consumer, message_id, topic, processed_at) "
	       "VALUES ($1, 'held', $2, now() - interval '20 days'), ($1, "
	       "'free', $2, now() - interval '20 days')",
	       2, p);
	sql_ok(writer, "BEGIN", 0, NULL);
	sql_ok(writer,
	       "SELECT 1 FROM inbox WHERE consumer = $1 AND message_id = "
	       "'held' FOR UPDATE",
	       1, p);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct t_voxctl_run r = housekeep(NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_eq(r.exit, 0, "exit %d: %s%s", r.exit, r.out, r.err);
	t_voxctl_free(&r);
	cr_assert_lt(t1.tv_sec - t0.tv_sec, 10, "the pass waited for the row");
	cr_assert_eq(
	        count1(pg,
	               "SELECT (string_agg(message_id, ',') = 'held')::int "
	               "FROM inbox WHERE consumer = $1",
	               tag),
	        1, "the held row is skipped, the free one deleted");
	/* the writer is not blocked by the pass either: it goes on */
	sql_ok(writer,
	       "UPDATE inbox SET kafka_offset = 1 WHERE consumer = $1 AND "
	       "message_id = 'held'",
	       1, p);
	sql_ok(writer, "COMMIT", 0, NULL);
	r = housekeep(NULL);
	cr_assert_eq(r.exit, 0);
	t_voxctl_free(&r);
	cr_assert_eq(count1(pg,
	                    "SELECT count(*) FROM inbox WHERE consumer = $1",
	                    tag),
	             0, "released, it goes on the next pass");
	vox_pg_destroy(writer);
	vox_pg_destroy(pg);
}

/* The object at key, gunzipped. */
static char *s3_gunzip(const char *key)
{
	vox_s3_conf_t conf = {
	        .endpoint = t_env("VOX_S3_ENDPOINT"),
	        .region = t_env("VOX_S3_REGION"),
	        .bucket = "voxlink-archive",
	        .access_key = t_env("VOX_S3_ACCESS_KEY"),
	        .secret_key = t_env("VOX_S3_SECRET_KEY"),
	        .timeout_ms = 10000,
	};
	vox_error_t err = {0};
	vox_s3_t *s3 = vox_s3_new(&conf, &err);
	char *gz = NULL, *plain = calloc(1, 1 << 20);
	size_t len = 0;
	z_stream zs;

	cr_assert_not_null(s3, "%s", err.message);
	cr_assert_eq(vox_s3_get(s3, key, 1 << 20, &gz, &len, &err), 0, "%s: %s",
	             key, err.message);
	memset(&zs, 0, sizeof(zs));
	cr_assert_eq(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = (Bytef *)gz;
	zs.avail_in = (uInt)len;
	zs.next_out = (Bytef *)plain;
	zs.avail_out = (1 << 20) - 1;
	cr_assert_eq(inflate(&zs, Z_FINISH), Z_STREAM_END, "not gzip");
	inflateEnd(&zs);
	vox_s3_delete(s3, key, &err);
	vox_s3_destroy(s3);
	free(gz);
	return plain;
}

Test(housekeeping, an_old_invoiced_month_is_archived_and_readable)
{
	vox_pg_t *pg = t_pg();
	char paid[40], unpaid[40], key[64], tag[64];
	const char *p[] = {paid, unpaid, tag};
	const char *pt[] = {tag};
	const char *ppt[] = {paid, tag};
	char *csv;

	t_account("owner", paid, key);
	t_account("owner", unpaid, key);
	tag_new(tag, sizeof(tag), "arch");
	sql_ok(pg, "DROP TABLE IF EXISTS usage_records_y2019m03", 0, NULL);
	sql_ok(pg, "DROP TABLE IF EXISTS usage_records_y2019m04", 0, NULL);
	sql_ok(pg, "DELETE FROM usage_archives WHERE month < '2020-01-01'", 0,
	       NULL);
	sql_ok(pg,
	       "CREATE TABLE usage_records_y2019m03 PARTITION OF usage_records "
	       "FOR VALUES FROM ('2019-03-01 00:00Z') TO ('2019-04-01 00:00Z')",
	       0, NULL);
	sql_ok(pg,
	       "CREATE TABLE usage_records_y2019m04 PARTITION OF usage_records "
	       "FOR VALUES FROM ('2019-04-01 00:00Z') TO ('2019-05-01 00:00Z')",
	       0, NULL);
	sql_ok(pg,
	       "INSERT INTO usage_records (account_id, e164, event_type, "
	       "direction, carrier, carrier_cdr_id, started_at, duration_s, "
	       "currency, cost_micros, rated_at) SELECT CASE WHEN m = 3 THEN "
	       "$1::uuid ELSE $2::uuid END, '+15550009999', 'inbound_call', "
	       "'inbound', $3, $3 || '-' || m || '-' || i, make_timestamptz("
	       "2019, m, 10, 12, i, 0, 'UTC'), 60, 'USD', 1000, now() FROM "
	       "generate_series(3, 4) m, generate_series(1, 3) i",
	       3, p);
	sql_ok(pg,
	       "INSERT INTO usage_dedup (carrier, carrier_cdr_id, usage_id, "
	       "started_at) SELECT carrier, carrier_cdr_id, id, started_at "
	       "FROM "
	       "usage_records WHERE carrier = $1",
	       1, pt);
	/* the month of paid is invoiced (finalized after its records) */
	sql_ok(pg,
	       "INSERT INTO invoices (account_id, period_start, period_end, "
	       "status, currency, number, issued_at, usage_cutoff) VALUES ($1, "
	       "'2019-03-01 00:00Z', '2019-04-01 00:00Z', 'finalized', 'USD', "
	       "$2, now(), now())",
	       2, ppt);
	sql_ok(pg, "DELETE FROM housekeep_state", 0, NULL);

	/* nowhere to archive to: the month is not detached, exit 1 */
	struct t_voxctl_run r =
	        housekeep((const char *const[]){"VOX_S3_ACCESS_KEY=", NULL});
	cr_assert_eq(r.exit, 1, "exit %d: %s%s", r.exit, r.out, r.err);
	cr_assert_not_null(strstr(r.err, "usage_records_y2019m03 is due for "
	                                 "archiving but VOX_S3_ACCESS_KEY is "
	                                 "empty"),
	                   "%s", r.err);
	cr_assert_not_null(strstr(r.out, "inbox: "),
	                   "the other tables are done");
	t_voxctl_free(&r);
	cr_assert_eq(count1(pg,
	                    "SELECT count(*) FROM pg_inherits WHERE inhrelid = "
	                    "'usage_records_y2019m03'::regclass",
	                    NULL),
	             1, "still a partition");

	r = housekeep(NULL);
	cr_assert_eq(r.exit, 0, "exit %d: %s%s", r.exit, r.out, r.err);
	cr_assert_not_null(strstr(r.out, "usage_records_y2019m03 archived: "
	                                 "3 rows"),
	                   "%s", r.out);
	cr_assert_not_null(strstr(r.out, "usage_records_y2019m04 kept: 1 "
	                                 "accounts"),
	                   "%s", r.out);
	t_voxctl_free(&r);
	/* the verdict is kept a day: the next pass does not read the month */
	r = housekeep(NULL);
	cr_assert_eq(r.exit, 0, "exit %d: %s%s", r.exit, r.out, r.err);
	cr_assert_not_null(strstr(r.out, "usage_records_y2019m04 kept: not "
	                                 "invoiced past its month at the last "
	                                 "check"),
	                   "%s", r.out);
	t_voxctl_free(&r);

	cr_assert_eq(count1(pg,
	                    "SELECT count(*) FROM pg_class WHERE relname = "
	                    "'usage_records_y2019m03'",
	                    NULL),
	             0, "the archived month is dropped");
	cr_assert_eq(
	        count1(pg,
	               "SELECT count(*) FROM usage_records WHERE carrier = "
	               "$1 AND started_at < '2019-04-01 00:00Z'",
	               tag),
	        0);
	cr_assert_eq(
	        count1(pg,
	               "SELECT count(*) FROM usage_records WHERE carrier = "
	               "$1",
	               tag),
	        3, "the uninvoiced month stays");
	cr_assert_eq(
	        count1(pg,
	               "SELECT count(*) FROM pg_inherits WHERE inhparent = "
	               "'usage_records'::regclass AND inhrelid = "
	               "to_regclass('usage_records_y' || to_char(now() AT "
	               "TIME ZONE 'UTC', 'YYYY\"m\"MM'))",
	               NULL),
	        1, "the current month is untouched");
	/* usage_dedup follows: the archived month's pairs go */
	cr_assert_eq(count1(pg,
	                    "SELECT count(*) FROM usage_dedup WHERE carrier = "
	                    "$1",
	                    tag),
	             3);
	cr_assert_eq(count1(pg,
	                    "SELECT rows FROM usage_archives WHERE partition = "
	                    "'usage_records_y2019m03'",
	                    NULL),
	             3);

	csv = s3_gunzip("usage_records/2019/03/usage_records_y2019m03.csv.gz");
	cr_assert_eq(strncmp(csv, "id,account_id,number_id,e164,", 29), 0,
	             "header: %.80s", csv);
	for (int i = 1; i <= 3; i++) {
		char cdr[96];

		snprintf(cdr, sizeof(cdr), ",%s-3-%d,", tag, i);
		cr_assert_not_null(strstr(csv, cdr), "%s not in %s", cdr, csv);
	}
	cr_assert_not_null(strstr(csv, paid));
	free(csv);

	sql_ok(pg, "DROP TABLE usage_records_y2019m04", 0, NULL);
	sql_ok(pg, "DELETE FROM usage_dedup WHERE carrier = $1", 1, pt);
	sql_ok(pg, "DELETE FROM invoices WHERE account_id = $1", 1, p);
	sql_ok(pg, "DELETE FROM usage_archives WHERE month < '2020-01-01'", 0,
	       NULL);
	vox_pg_destroy(pg);
}

Test(housekeeping, bad_settings_are_refused)
{
	struct t_voxctl_run r;

	r = housekeep((const char *const[]){"VOX_HOUSEKEEP_BATCH=0", NULL});
	t_voxctl_refused(&r, 2, "VOX_HOUSEKEEP_BATCH");
	r = housekeep(
	        (const char *const[]){"VOX_HOUSEKEEP_OUTBOX_HOURS=soon", NULL});
	t_voxctl_refused(&r, 2, "VOX_HOUSEKEEP_OUTBOX_HOURS");
	r = housekeep(
	        (const char *const[]){"VOX_HOUSEKEEP_INBOX_LONG_DAYS=3", NULL});
	t_voxctl_refused(&r, 2, "VOX_HOUSEKEEP_INBOX_LONG_DAYS");
	r = housekeep(
	        (const char *const[]){"VOX_USAGE_RETENTION_MONTHS=1", NULL});
	t_voxctl_refused(&r, 2, "VOX_USAGE_RETENTION_MONTHS");
	r = t_voxctl(NULL,
	             (const char *const[]){"housekeep", "--every", "0", NULL});
	t_voxctl_refused(&r, 2, "--every");
	r = t_voxctl(NULL, (const char *const[]){"housekeep", "now", NULL});
	t_voxctl_refused(&r, 2, "unexpected argument");
	r = housekeep((const char *const[]){
	        "VOX_PG_URL=postgresql://vox@127.0.0.1:1/voxlink",
	        "VOX_PG_WAIT_MS=0", NULL});
	t_voxctl_refused(&r, 1, "voxctl: ");
}

Test(housekeeping, every_repeats_until_sigterm)
{
	char log[512], path[1024], *text = NULL;
	pid_t pid;
	FILE *f;
	size_t len = 0;
	int status, passes = 0;

	snprintf(log, sizeof(log), "%s/housekeep-every-%d.log",
	         t_env("VOX_TEST_LOGS"), (int)getpid());
	snprintf(path, sizeof(path), "%s/voxctl", t_env("VOX_BIN_DIR"));
	unlink(log);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (freopen(log, "w", stdout) == NULL)
			_exit(127);
		execl(path, "voxctl", "housekeep", "--every", "1",
		      (char *)NULL);
		_exit(127);
	}
	sleep(3);
	status = t_stop(pid, SIGTERM, 10000);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "stopped by SIGTERM it exits 0 (status %d)", status);
	f = fopen(log, "r");
	cr_assert_not_null(f);
	while (getline(&text, &len, f) > 0)
		passes += strncmp(text, "usage_dedup: ", 13) == 0;
	free(text);
	fclose(f);
	cr_assert_geq(passes, 2, "a pass every second");
}

/* 0037 ran outside a transaction (voxctl:no-transaction): its indexes were
 * built CONCURRENTLY, and a build that failed would leave them INVALID. */
Test(housekeeping, the_indexes_of_0037_are_valid)
{
	vox_pg_t *pg = t_pg();

	cr_assert_eq(
	        count1(pg,
	               "SELECT count(*) FROM pg_index WHERE indisvalid AND "
	               "indexrelid::regclass::text IN "
	               "('inbox_topic_processed_idx', 'outbox_created_idx', "
	               "'operations_created_idx', "
	               "'reservations_operation_idx', "
	               "'number_configuration_versions_operation_idx', "
	               "'porting_orders_operation_idx')",
	               NULL),
	        6);
	cr_assert_eq(count1(pg,
	                    "SELECT count(*) FROM schema_migrations WHERE "
	                    "version = '0037'",
	                    NULL),
	             1);
	vox_pg_destroy(pg);
}
