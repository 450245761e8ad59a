/*
 * The pipeline through real Kafka and PostgreSQL: a worker killed with
 * SIGKILL in the middle of 10,000 messages leaves every effect exactly
 * once; malformed messages are dead-lettered with a reason while the
 * worker keeps consuming.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_canary.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_kafka.h"
#include "vox_uuid.h"

#define STREAM_SIZE 10000

static atomic_int delivered_ok, delivered_failed;

static void count_delivery(void *opaque, const vox_error_t *err,
                           int32_t partition, int64_t offset)
{
	(void)opaque;
	(void)partition;
	(void)offset;
	if (err)
		atomic_fetch_add(&delivered_failed, 1);
	else
		atomic_fetch_add(&delivered_ok, 1);
}

static vox_producer_t *t_producer(void)
{
	vox_producer_conf_t conf = {.brokers = t_env("VOX_KAFKA_BROKERS"),
	                            .client_id = "vox-test"};
	vox_error_t err;
	vox_producer_t *p = vox_producer_new(&conf, &err);

	cr_assert_not_null(p, "producer: %s", err.message);
	return p;
}

/* A canary command for operation op_id, subject marks the test run. */
static char *canary_event(const char *op_id, const char *subject)
{
	json_t *ev =
	        vox_event_new(VOX_CANARY_TYPE, "/voxlink/tests", subject, NULL,
	                      NULL, json_pack("{s:s}", "operation_id", op_id));
	char *text = vox_json_dump(ev);

	json_decref(ev);
	return text;
}

static void publish_raw(vox_producer_t *p, const char *topic, const char *key,
                        const char *payload)
{
	vox_error_t err;

	cr_assert_eq(vox_producer_send_sync(p, topic, key, payload,
	                                    strlen(payload), NULL, 0, NULL,
	                                    NULL, &err),
	             0, "publish: %s", err.message);
}

struct progress {
	vox_pg_t *pg;
	const char *subject;
	long long target;
};

static long long completed_ops(vox_pg_t *pg, const char *subject)
{
	return t_pg_count(pg,
	                  "SELECT count(*) FROM operations WHERE subject = $1 "
	                  "AND status = 'completed'",
	                  subject);
}

static bool reached(void *arg)
{
	struct progress *pr = arg;

	return completed_ops(pr->pg, pr->subject) >= pr->target;
}

static pid_t start_worker(const char *topic, const char *group, const char *log)
{
	static char topics[320], grp[160];

	snprintf(topics, sizeof(topics), "VOX_WORKER_TOPICS=%s", topic);
	snprintf(grp, sizeof(grp), "VOX_WORKER_GROUP=%s", group);
	const char *const env[] = {topics,
	                           grp,
	                           "VOX_WORKER_METRICS_PORT=0",
	                           "VOX_KAFKA_SESSION_TIMEOUT_MS=6000",
	                           "VOX_WORKER_BACKOFF_MS=10",
	                           "VOX_WORKER_MAX_ATTEMPTS=2",
	                           NULL};
	return t_spawn("provisioning", log, env);
}

Test(pipeline, sigkill_midstream_effects_exactly_once, .timeout = 600)
{
	char topic[256], group[128], subject[128], id[VOX_UUID_STRLEN];
	vox_producer_t *p = t_producer();
	vox_pg_t *pg = t_pg();
	struct progress pr = {pg, subject, 0};
	long long at_kill, events, inbox, multi;
	pid_t worker;
	int status;

	t_topic_create("vox.test.kill", 6, topic, sizeof(topic));
	vox_uuid7(id);
	snprintf(subject, sizeof(subject), "tests/kill/%s", id);
	snprintf(group, sizeof(group), "vox.test.kill.%s", id);
	for (int i = 0; i < STREAM_SIZE; i++) {
		char op[VOX_UUID_STRLEN], *text;
		vox_error_t err;

		vox_uuid7(op);
		text = canary_event(op, subject);
		while (vox_producer_send(p, topic, op, text, strlen(text), NULL,
		                         0, count_delivery, NULL, &err) != 0)
			usleep(1000); /* local queue full: let it drain */
		free(text);
	}
	vox_producer_destroy(p, 60000);
	cr_assert_eq(atomic_load(&delivered_ok), STREAM_SIZE,
	             "delivered %d, failed %d", atomic_load(&delivered_ok),
	             atomic_load(&delivered_failed));

	worker = start_worker(topic, group, "kill-worker-1.log");
	pr.target = STREAM_SIZE / 4;
	cr_assert(t_wait_for(reached, &pr, 180000),
	          "worker did not get to %lld effects", pr.target);
	kill(worker, SIGKILL);
	waitpid(worker, &status, 0);
	at_kill = completed_ops(pg, subject);
	cr_log_info("SIGKILL after %lld of %d effects", at_kill, STREAM_SIZE);
	cr_assert_lt(at_kill, STREAM_SIZE, "killed too late to mean anything");

	worker = start_worker(topic, group, "kill-worker-2.log");
	pr.target = STREAM_SIZE;
	cr_assert(t_wait_for(reached, &pr, 300000),
	          "only %lld of %d effects after restart",
	          completed_ops(pg, subject), STREAM_SIZE);
	sleep(2); /* let any redelivery land before counting */
	status = t_stop(worker, SIGTERM, 30000);
	cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "worker did not stop cleanly on SIGTERM (%d)", status);

	cr_assert_eq(completed_ops(pg, subject), STREAM_SIZE);
	events = t_pg_count(pg,
	                    "SELECT count(*) FROM operation_events e JOIN "
	                    "operations o ON o.id = e.operation_id WHERE "
	                    "o.subject = $1 AND e.status = 'completed'",
	                    subject);
	cr_assert_eq(events, STREAM_SIZE, "%lld completion events", events);
	multi = t_pg_count(pg,
	                   "SELECT count(*) FROM (SELECT e.operation_id FROM "
	                   "operation_events e JOIN operations o ON o.id = "
	                   "e.operation_id WHERE o.subject = $1 GROUP BY 1 "
	                   "HAVING count(*) > 1) d",
	                   subject);
	cr_assert_eq(multi, 0, "%lld operations done twice", multi);
	inbox = t_pg_count(pg, "SELECT count(*) FROM inbox WHERE consumer = $1",
	                   group);
	cr_assert_eq(inbox, STREAM_SIZE, "%lld inbox rows", inbox);
	events = t_pg_count(pg,
	                    "SELECT count(*) FROM outbox x JOIN operations o "
	                    "ON o.id::text = x.message_key WHERE o.subject = "
	                    "$1",
	                    subject);
	cr_assert_eq(events, STREAM_SIZE, "%lld outbox events", events);
	vox_pg_destroy(pg);
}

struct dlq_seen {
	int count;
	char reasons[8][400];
};

static void collect_reason(void *arg, const char *payload, size_t len,
                           const char *header)
{
	struct dlq_seen *seen = arg;

	(void)payload;
	(void)len;
	if (seen->count < 8)
		snprintf(seen->reasons[seen->count], 400, "%s",
		         header ? header : "");
	seen->count++;
}

static bool reason_seen(const struct dlq_seen *seen, const char *needle)
{
	for (int i = 0; i < seen->count && i < 8; i++)
		if (strstr(seen->reasons[i], needle))
			return true;
	return false;
}

Test(pipeline, malformed_messages_dead_lettered_worker_goes_on, .timeout = 180)
{
	char topic[256], dlq[300], group[128], subject[128];
	char id[VOX_UUID_STRLEN], op[VOX_UUID_STRLEN], *text;
	char dead_op[VOX_UUID_STRLEN];
	vox_producer_t *p = t_producer();
	vox_pg_t *pg = t_pg();
	struct progress pr = {pg, subject, 1};
	struct dlq_seen seen = {0};
	json_t *ev;
	pid_t worker;

	t_topic_create("vox.test.dlq", 3, topic, sizeof(topic));
	snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
	vox_uuid7(id);
	snprintf(subject, sizeof(subject), "tests/dlq/%s", id);
	snprintf(group, sizeof(group), "vox.test.dlq.%s", id);
	worker = start_worker(topic, group, "dlq-worker.log");

	publish_raw(p, topic, "k1", "this is not JSON {");
	publish_raw(p, topic, "k2", "{\"specversion\":\"1.0\",\"type\":\"x\"}");
	publish_raw(p, topic, "k3", "{\"a\":1,\"a\":2}");
	ev = vox_event_new("vox.no.such.type", "/tests", subject, NULL, NULL,
	                   json_object());
	text = vox_json_dump(ev);
	publish_raw(p, topic, "k4", text);
	free(text);
	json_decref(ev);
	text = canary_event("not-a-uuid", subject);
	publish_raw(p, topic, "k5", text);
	free(text);
	/* A command whose operation the ingress accepted, refused for good by
	 * its handler (a key the canary does not allow): dead-lettered, and
	 * its operation failed with the reason instead of left accepted. */
	vox_uuid7(dead_op);
	{
		const char *params[] = {dead_op};
		vox_error_t err;

		cr_assert_eq(vox_pg_execp(pg, "t_dead_op",
		                          "INSERT INTO operations (id, kind, "
		                          "status) VALUES ($1, 'canary', "
		                          "'accepted')",
		                          1, params, NULL, &err),
		             0, "%s", err.message);
	}
	ev = vox_event_new(
	        VOX_CANARY_TYPE, "/voxlink/tests", subject, NULL, NULL,
	        json_pack("{s:s, s:b}", "operation_id", dead_op, "bogus", 1));
	text = vox_json_dump(ev);
	publish_raw(p, topic, "k6", text);
	free(text);
	json_decref(ev);
	/* A good one after the bad ones: the worker must still be going. */
	vox_uuid7(op);
	text = canary_event(op, subject);
	publish_raw(p, topic, op, text);
	free(text);
	vox_producer_destroy(p, 10000);

	cr_assert(t_wait_for(reached, &pr, 60000),
	          "the valid message after the bad ones was not processed");
	cr_assert_eq(t_stop(worker, SIGTERM, 30000), 0,
	             "worker did not exit cleanly");
	cr_assert_eq(t_consume_all(dlq, 3000, "vox-dlq-reason", collect_reason,
	                           &seen),
	             6, "dead letters: %d", seen.count);
	cr_assert(reason_seen(&seen, "invalid envelope"), "%s",
	          seen.reasons[0]);
	cr_assert(reason_seen(&seen, "missing attribute id"));
	cr_assert(reason_seen(&seen, "duplicate"), "duplicate key reason");
	cr_assert(reason_seen(&seen, "no handler for type vox.no.such.type"));
	cr_assert(reason_seen(&seen, "operation_id must be a UUID"));
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM operations WHERE id = $1 "
	                        "AND status = 'failed' AND error_code = "
	                        "'dead_lettered' AND error_message LIKE "
	                        "'%bogus%'",
	                        dead_op),
	             1, "the dead-lettered command's operation is not failed");
	vox_pg_destroy(pg);
}

/* Handler-mode micro-batches: a backlog of canaries is polled in batches
 * and each run of canaries is one transaction. Redelivered messages (the
 * same CloudEvent twice) are skipped by the one-statement inbox claim, and
 * a canary its handler refuses in the middle of a batch makes the batch go
 * one message at a time: it alone is dead-lettered, every other operation
 * is completed exactly once, with one outbox event. */
#define BATCHED 3000

Test(pipeline, batched_canaries_exactly_once_with_a_bad_one, .timeout = 300)
{
	char topic[256], dlq[300], group[128], subject[128];
	char id[VOX_UUID_STRLEN], bad_op[VOX_UUID_STRLEN];
	vox_producer_t *p = t_producer();
	vox_pg_t *pg = t_pg();
	struct progress pr = {pg, subject, BATCHED};
	struct dlq_seen seen = {0};
	long long n;
	pid_t worker;

	t_topic_create("vox.test.batched", 3, topic, sizeof(topic));
	snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
	vox_uuid7(id);
	snprintf(subject, sizeof(subject), "tests/batched/%s", id);
	snprintf(group, sizeof(group), "vox.test.batched.%s", id);
	vox_uuid7(bad_op);
	for (int i = 0; i < BATCHED; i++) {
		char op[VOX_UUID_STRLEN], *text;
		vox_error_t err;

		vox_uuid7(op);
		text = canary_event(op, subject);
		for (int copy = 0; copy < (i % 100 == 0 ? 2 : 1); copy++)
			while (vox_producer_send(
			               p, topic, op, text, strlen(text), NULL,
			               0, count_delivery, NULL, &err) != 0)
				usleep(1000);
		free(text);
		if (i == BATCHED / 2) {
			json_t *ev = vox_event_new(
			        VOX_CANARY_TYPE, "/voxlink/tests", subject,
			        NULL, NULL,
			        json_pack("{s:s, s:b}", "operation_id", bad_op,
			                  "bogus", 1));

			text = vox_json_dump(ev);
			json_decref(ev);
			publish_raw(p, topic, bad_op, text);
			free(text);
		}
	}
	vox_producer_destroy(p, 60000);

	worker = start_worker(topic, group, "batched-worker.log");
	cr_assert(t_wait_for(reached, &pr, 240000), "only %lld of %d done",
	          completed_ops(pg, subject), BATCHED);
	sleep(2); /* let any redelivery land before counting */
	cr_assert_eq(t_stop(worker, SIGTERM, 30000), 0,
	             "worker did not exit cleanly");

	cr_assert_eq(completed_ops(pg, subject), BATCHED);
	n = t_pg_count(pg,
	               "SELECT count(*) FROM operation_events e JOIN "
	               "operations o ON o.id = e.operation_id WHERE "
	               "o.subject = $1 AND e.status = 'completed'",
	               subject);
	cr_assert_eq(n, BATCHED, "%lld completion events", n);
	n = t_pg_count(pg,
	               "SELECT count(*) FROM outbox x JOIN operations o "
	               "ON o.id::text = x.message_key WHERE o.subject = $1",
	               subject);
	cr_assert_eq(n, BATCHED, "%lld outbox events", n);
	n = t_pg_count(pg, "SELECT count(*) FROM inbox WHERE consumer = $1",
	               group);
	cr_assert_eq(n, BATCHED, "%lld inbox rows", n);
	cr_assert_eq(t_consume_all(dlq, 3000, "vox-dlq-reason", collect_reason,
	                           &seen),
	             1, "dead letters: %d", seen.count);
	cr_assert(reason_seen(&seen, "bogus"), "%s", seen.reasons[0]);
	vox_pg_destroy(pg);
}
