/*
 * A record that kills the metering worker does not stop metering: the
 * test-only metering binary (vox_fault hooks) aborts on one record; run
 * under a supervisor that restarts it whenever it dies, the worker narrows
 * the crash down to that record, dead-letters it (crashed_worker) and goes
 * on. Every other record is rated exactly once and the worker stays up.
 * The same for a handler-mode worker (provisioning), whose micro-batch of
 * canaries (one transaction for the run) the culprit kills first.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_canary.h"
#include "vox_cdr.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_kafka.h"
#include "vox_time.h"
#include "vox_uuid.h"

#define CRASH_RECORDS  3000
#define CRASH_CULPRIT  1234 /* its index */
#define CRASH_STARTS   16   /* worker starts allowed, the first included */
#define CRASH_BUDGET_S 45.0 /* to consume everything, restarts included */

struct crash_run {
	char topic[256], group[160], instance[160], carrier[40];
	char account[40], key[64], number[24], culprit[64];
	char subject[128]; /* handler mode: the canaries' subject */
	long long cost;    /* expected, without the culprit */
	vox_pg_t *pg;
};

static atomic_int acked, refused;

static void on_ack(void *opaque, const vox_error_t *err, int32_t part,
                   int64_t off)
{
	(void)opaque;
	(void)part;
	(void)off;
	atomic_fetch_add(err ? &refused : &acked, 1);
}

/* The run's account: one number, one card that prices sms_sent at 300
 * micro-units a segment (set up in one statement). */
static void crash_setup(struct crash_run *r)
{
	char id[VOX_UUID_STRLEN];
	vox_error_t err;

	memset(r, 0, sizeof(*r));
	vox_uuid7(id);
	t_topic_create("vox.test.crash", 2, r->topic, sizeof(r->topic));
	snprintf(r->group, sizeof(r->group), "vox.test.crash.%s", id);
	snprintf(r->instance, sizeof(r->instance), "crash-%s", id);
	snprintf(r->carrier, sizeof(r->carrier), "k%.8s%.4s", id + 24, id + 9);
	snprintf(r->culprit, sizeof(r->culprit), "culprit-%s", id);
	snprintf(r->number, sizeof(r->number), "+1628%07ld",
	         (long)(vox_now_us() % 10000000));
	r->pg = t_pg();
	t_account("owner", r->account, r->key);
	const char *params[] = {r->account, r->number};
	cr_assert_eq(
	        vox_pg_exec(
	                r->pg,
	                "WITH card AS (INSERT INTO rate_cards (name, "
	                "currency, effective_from) VALUES ('crash card', "
	                "'USD', '2020-01-01') RETURNING id),"
	                " rate AS (INSERT INTO rates (rate_card_id, "
	                "currency, event_type, prefix, per_minute_micros, "
	                "per_unit_micros, setup_micros, first_increment_s, "
	                "next_increment_s) SELECT id, 'USD', 'sms_sent', "
	                "'', 0, 300, 0, 60, 60 FROM card),"
	                " assign AS (INSERT INTO account_rate_cards "
	                "(account_id, rate_card_id, effective_from) SELECT "
	                "$1, id, '2020-01-01' FROM card)"
	                " INSERT INTO numbers (e164, country, area_code, "
	                "number_type, status, account_id, carrier, features, "
	                "purchased_at, activated_at) VALUES ($2, 'US', "
	                "'628', 'local', 'active', $1, 'sandbox', "
	                "'{voice,sms}', now(), now())",
	                2, params, NULL, &err),
	        0, "%s", err.message);
}

/* CRASH_RECORDS sent messages of 1 to 3 segments, keyed by record id (so
 * both partitions get some); one has the culprit's id. */
static void crash_produce(struct crash_run *r)
{
	vox_producer_conf_t conf = {.brokers = t_env("VOX_KAFKA_BROKERS"),
	                            .client_id = "vox-test-crash"};
	int64_t t0 = vox_now_us() - 7200LL * 1000000;
	vox_producer_t *p;
	vox_error_t err;

	atomic_store(&acked, 0);
	atomic_store(&refused, 0);
	p = vox_producer_new(&conf, &err);
	cr_assert_not_null(p, "%s", err.message);
	for (int i = 0; i < CRASH_RECORDS; i++) {
		vox_cdr_t cdr = {.type = VOX_CDR_SMS_SENT,
		                 .segments = 1 + i % 3,
		                 .started_us = t0 + i * 1000000LL};
		char ev[1024];

		if (i == CRASH_CULPRIT)
			snprintf(cdr.id, sizeof(cdr.id), "%s", r->culprit);
		else
			snprintf(cdr.id, sizeof(cdr.id), "sms-%d", i);
		snprintf(cdr.number, sizeof(cdr.number), "%s", r->number);
		snprintf(cdr.from, sizeof(cdr.from), "%s", r->number);
		snprintf(cdr.to, sizeof(cdr.to), "+12125550100");
		cr_assert_gt(
		        vox_cdr_event(&cdr, r->carrier, "api", ev, sizeof(ev)),
		        0);
		while (vox_producer_send(p, r->topic, cdr.id, ev, strlen(ev),
		                         NULL, 0, on_ack, NULL, &err) != 0)
			vox_sleep_ms(1);
		if (i != CRASH_CULPRIT)
			r->cost += 300LL * cdr.segments;
	}
	vox_producer_destroy(p, 30000);
	cr_assert_eq(atomic_load(&acked), CRASH_RECORDS, "acked %d, refused %d",
	             atomic_load(&acked), atomic_load(&refused));
}

/* binary (test-bin/, with the fault hook) on the run's topic, aborting on
 * the culprit. */
static pid_t crash_spawn(const struct crash_run *r, const char *binary,
                         int start)
{
	static char topics[300], group[200], instance[200], fault[100];
	char log[64], path[64];

	snprintf(topics, sizeof(topics), "VOX_WORKER_TOPICS=%s", r->topic);
	snprintf(group, sizeof(group), "VOX_WORKER_GROUP=%s", r->group);
	/* static membership: a restarted worker takes its partitions back at
	 * once, as it would under a supervisor with stable instance names */
	snprintf(instance, sizeof(instance), "VOX_WORKER_INSTANCE_ID=%s",
	         r->instance);
	snprintf(fault, sizeof(fault), "VOX_FAULT_ABORT_ON=%s", r->culprit);
	snprintf(log, sizeof(log), "crash-%s-%d.log", binary, start);
	snprintf(path, sizeof(path), "../test-bin/%s", binary);
	const char *const env[] = {topics,
	                           group,
	                           instance,
	                           fault,
	                           "VOX_WORKER_METRICS_PORT=0",
	                           "VOX_KAFKA_SESSION_TIMEOUT_MS=6000",
	                           "VOX_WORKER_BACKOFF_MS=10",
	                           NULL};
	return t_spawn(path, log, env);
}

static pid_t crash_worker(void *arg, int start)
{
	return crash_spawn(arg, "metering", start);
}

static long long rated(struct crash_run *r, const char *what)
{
	char sql[200];

	snprintf(sql, sizeof(sql),
	         "SELECT %s FROM usage_records WHERE carrier = $1", what);
	return t_pg_count(r->pg, sql, r->carrier);
}

static long long rated_count(void *arg)
{
	return rated(arg, "count(*)");
}

/* How a dead worker ended, for the log: abort() is SIGABRT in a plain
 * build, an exit code under ASan (which reports the abort itself). */
static void crash_describe(int status, char *out, size_t outlen)
{
	if (WIFSIGNALED(status))
		snprintf(out, outlen, "signal %d", WTERMSIG(status));
	else
		snprintf(out, outlen, "exit %d", WEXITSTATUS(status));
}

/* A worker under test: how to start it and when it is done. */
struct crash_target {
	pid_t (*start)(void *arg, int start);
	long long (*done)(void *arg); /* records finished so far */
	long long goal;
	void *arg;
};

/* Restarts the worker whenever it dies, as a supervisor would, until the
 * goal is reached; returns the running worker, *starts the starts it
 * took. */
static pid_t crash_supervise(const struct crash_target *t, int *starts)
{
	double deadline = vox_mono_seconds() + CRASH_BUDGET_S;
	pid_t pid = t->start(t->arg, 1);
	char how[32];
	int status;

	*starts = 1;
	while (t->done(t->arg) < t->goal) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			crash_describe(status, how, sizeof(how));
			cr_log_info("worker died (%s) at %lld records", how,
			            t->done(t->arg));
			cr_assert_lt(*starts, CRASH_STARTS,
			             "still dying after %d starts", *starts);
			pid = t->start(t->arg, ++*starts);
		}
		cr_assert_lt(vox_mono_seconds(), deadline,
		             "%lld of %lld records done after %.0f s",
		             t->done(t->arg), t->goal, CRASH_BUDGET_S);
		vox_sleep_ms(50);
	}
	return pid;
}

/* The last worker stays up (nothing left that kills it) and stops
 * cleanly. */
static void crash_still_up(pid_t pid)
{
	int status;

	vox_sleep_ms(3000);
	cr_assert_eq(waitpid(pid, &status, WNOHANG), 0,
	             "the worker died after the culprit was dead-lettered");
	status = t_stop(pid, SIGTERM, 30000);
	cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "worker did not stop cleanly (%d)", status);
}

struct dead_letters {
	const char *culprit;
	int count, culprit_crashed;
	char reason[200];
};

static void on_dead_letter(void *arg, const char *payload, size_t len,
                           const char *reason)
{
	struct dead_letters *d = arg;

	d->count++;
	snprintf(d->reason, sizeof(d->reason), "%s", reason ? reason : "");
	if (reason != NULL && strcmp(reason, "crashed_worker") == 0 &&
	    memmem(payload, len, d->culprit, strlen(d->culprit)) != NULL)
		d->culprit_crashed++;
}

/* The culprit is on the DLQ once, as crashed_worker, and no in-flight
 * mark is left behind. */
static void crash_culprit_dead_lettered(struct crash_run *r)
{
	struct dead_letters dl = {.culprit = r->culprit};
	char dlq[300];

	snprintf(dlq, sizeof(dlq), "%s.dlq", r->topic);
	t_consume_all(dlq, 3000, "vox-dlq-reason", on_dead_letter, &dl);
	cr_assert_eq(dl.count, 1, "%d dead letters (last reason: %s)", dl.count,
	             dl.reason);
	cr_assert_eq(dl.culprit_crashed, 1, "dead letter reason: %s",
	             dl.reason);
	cr_assert_eq(t_pg_count(r->pg,
	                        "SELECT count(*) FROM consumer_inflight WHERE "
	                        "consumer = $1",
	                        r->group),
	             0, "in-flight marks left behind");
}

Test(crash, record_that_kills_the_worker_is_dead_lettered, .timeout = 150)
{
	struct rlimit no_core = {0, 0};
	struct crash_run r;
	int starts;
	pid_t pid;

	setrlimit(RLIMIT_CORE, &no_core); /* the aborts leave no cores */
	crash_setup(&r);
	crash_produce(&r);
	double t0 = vox_mono_seconds();
	struct crash_target target = {crash_worker, rated_count,
	                              CRASH_RECORDS - 1, &r};
	pid = crash_supervise(&target, &starts);
	cr_log_info("%d records rated in %.1f s with %d starts",
	            CRASH_RECORDS - 1, vox_mono_seconds() - t0, starts);
	cr_assert_geq(starts, 2, "the culprit never killed the worker");
	crash_still_up(pid);

	/* every other record exactly once, at its price */
	cr_assert_eq(rated(&r, "count(*)"), CRASH_RECORDS - 1);
	cr_assert_eq(rated(&r, "count(DISTINCT carrier_cdr_id)"),
	             CRASH_RECORDS - 1);
	cr_assert_eq(rated(&r, "coalesce(sum(cost_micros), 0)"), r.cost,
	             "cost %lld, expected %lld",
	             rated(&r, "coalesce(sum(cost_micros), 0)"), r.cost);
	cr_assert_eq(rated(&r, "count(*) FILTER (WHERE carrier_cdr_id LIKE "
	                       "'culprit-%')"),
	             0, "the culprit was rated");
	crash_culprit_dead_lettered(&r);
	vox_pg_destroy(r.pg);
}

/* Handler mode: the 20 canaries are there before the worker starts, so
 * they are polled as one batch and run as one transaction under one mark,
 * which the culprit kills (start 1). A worker that finds that dead mark
 * runs each message alone under its own mark: the culprit kills it twice
 * on its own (starts 2 and 3) and is dead-lettered at start 4. Had the
 * poll split the batch before the culprit, the run would be as without
 * batches (dead-lettered at start 3). */
#define CANARIES       20
#define CANARY_CULPRIT 7

static pid_t canary_worker(void *arg, int start)
{
	return crash_spawn(arg, "provisioning", start);
}

static long long canaries_done(void *arg)
{
	struct crash_run *r = arg;

	return t_pg_count(r->pg,
	                  "SELECT count(*) FROM operations WHERE subject = $1 "
	                  "AND status = 'completed'",
	                  r->subject);
}

Test(crash, message_that_kills_a_handler_worker_is_dead_lettered,
     .timeout = 120)
{
	struct rlimit no_core = {0, 0};
	char id[VOX_UUID_STRLEN];
	vox_producer_conf_t conf = {.brokers = t_env("VOX_KAFKA_BROKERS"),
	                            .client_id = "vox-test-crash"};
	struct crash_run r = {0};
	struct crash_target target = {canary_worker, canaries_done,
	                              CANARIES - 1, &r};
	vox_producer_t *p;
	vox_error_t err;
	int starts;
	pid_t pid;

	setrlimit(RLIMIT_CORE, &no_core);
	vox_uuid7(id);
	t_topic_create("vox.test.crash.canary", 1, r.topic, sizeof(r.topic));
	snprintf(r.group, sizeof(r.group), "vox.test.crash.canary.%s", id);
	snprintf(r.instance, sizeof(r.instance), "canary-%s", id);
	snprintf(r.subject, sizeof(r.subject), "tests/crash/%s", id);
	r.pg = t_pg();
	p = vox_producer_new(&conf, &err);
	cr_assert_not_null(p, "%s", err.message);
	for (int i = 0; i < CANARIES; i++) {
		char op[VOX_UUID_STRLEN], *text;
		json_t *ev;

		vox_uuid7(op);
		if (i == CANARY_CULPRIT)
			snprintf(r.culprit, sizeof(r.culprit), "%s", op);
		ev = vox_event_new(VOX_CANARY_TYPE, "/voxlink/tests", r.subject,
		                   NULL, NULL,
		                   json_pack("{s:s}", "operation_id", op));
		text = vox_json_dump(ev);
		json_decref(ev);
		cr_assert_eq(vox_producer_send_sync(p, r.topic, op, text,
		                                    strlen(text), NULL, 0, NULL,
		                                    NULL, &err),
		             0, "%s", err.message);
		free(text);
	}
	vox_producer_destroy(p, 10000);

	pid = crash_supervise(&target, &starts);
	cr_log_info("%d messages done with %d starts", CANARIES - 1, starts);
	cr_assert(starts == 3 || starts == 4, "dead-lettered at start %d",
	          starts);
	crash_still_up(pid);
	cr_assert_eq(canaries_done(&r), CANARIES - 1);
	crash_culprit_dead_lettered(&r);
	vox_pg_destroy(r.pg);
}
