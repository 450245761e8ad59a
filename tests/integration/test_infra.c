/*
 * common/ against the real stack: PostgreSQL reconnects and the inbox,
 * the producer's rebuild after a fatal idempotence error, the outbox relay,
 * and voxctl migrate's idempotence.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_kafka.h"
#include "vox_relay.h"
#include "vox_uuid.h"

Test(pg, reconnects_after_the_server_drops_the_session)
{
	vox_pg_t *pg = t_pg(), *admin = t_pg();
	const char *params[1];
	char pid[16];
	PGresult *res;
	vox_error_t err;
	int rc;

	cr_assert_eq(vox_pg_execp(pg, "t_one", "SELECT 1 + $1::int", 1,
	                          (const char *[]){"1"}, NULL, &err),
	             0);
	snprintf(pid, sizeof(pid), "%d", PQbackendPID(vox_pg_conn(pg)));
	params[0] = pid;
	cr_assert_eq(vox_pg_exec(admin, "SELECT pg_terminate_backend($1::int)",
	                         1, params, NULL, &err),
	             0, "%s", err.message);
	/* The first call notices the loss and says so, retriable. */
	rc = vox_pg_execp(pg, "t_one", "SELECT 1 + $1::int", 1,
	                  (const char *[]){"1"}, NULL, &err);
	if (rc != 0) {
		cr_assert_eq(rc, VOX_ERR_UNAVAILABLE, "%s", err.message);
		cr_assert(err.retriable);
	}
	/* The next reconnects and re-prepares by itself. */
	cr_assert_eq(vox_pg_execp(pg, "t_one", "SELECT 1 + $1::int", 1,
	                          (const char *[]){"41"}, &res, &err),
	             0, "%s", err.message);
	cr_assert_str_eq(PQgetvalue(res, 0, 0), "42");
	PQclear(res);
	cr_assert_eq(vox_pg_connects(pg), 2);
	vox_pg_destroy(pg);
	vox_pg_destroy(admin);
}

static int claim_twice(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	const char *id = arg;
	int rc = vox_inbox_claim(pg, "t-inbox", id, "t", 0, 1, err);

	cr_assert_eq(rc, 0, "first claim: %d", rc);
	cr_assert_eq(vox_inbox_claim(pg, "t-inbox", id, "t", 0, 1, err),
	             VOX_ERR_DUPLICATE);
	return 0;
}

static int fail_after_claim(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	cr_assert_eq(vox_inbox_claim(pg, "t-inbox", arg, "t", 0, 2, err), 0);
	return vox_error_set(err, VOX_ERR_INVALID, false, "handler refused");
}

Test(pg, inbox_claims_once_and_rolls_back_with_the_effect)
{
	char id[VOX_UUID_STRLEN], id2[VOX_UUID_STRLEN];
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	vox_uuid7(id);
	cr_assert_eq(vox_pg_transaction(pg, claim_twice, id, &err), 0);
	cr_assert_eq(
	        t_pg_count(pg,
	                   "SELECT count(*) FROM inbox WHERE message_id = $1",
	                   id),
	        1);
	vox_uuid7(id2);
	cr_assert_eq(vox_pg_transaction(pg, fail_after_claim, id2, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(
	        t_pg_count(pg,
	                   "SELECT count(*) FROM inbox WHERE message_id = $1",
	                   id2),
	        0, "a rolled-back effect left its inbox row");
	vox_pg_destroy(pg);
}

Test(pg, errors_are_classified)
{
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	cr_assert_eq(vox_pg_exec(pg, "SELECT 1/0", 0, NULL, NULL, &err),
	             VOX_ERR_INVALID);
	cr_assert_not(err.retriable);
	cr_assert_eq(vox_pg_exec(pg, "SELECT * FROM no_such_table", 0, NULL,
	                         NULL, &err),
	             VOX_ERR_INTERNAL);
	cr_assert(strstr(err.message, "no_such_table"), "%s", err.message);
	vox_pg_destroy(pg);
}

static vox_producer_t *producer(void)
{
	vox_producer_conf_t conf = {.brokers = t_env("VOX_KAFKA_BROKERS"),
	                            .client_id = "vox-test"};
	vox_error_t err;
	vox_producer_t *p = vox_producer_new(&conf, &err);

	cr_assert_not_null(p, "%s", err.message);
	return p;
}

static bool rebuilt(void *arg)
{
	return vox_producer_rebuilds(arg) > 0;
}

Test(kafka, producer_rebuilds_after_fatal_idempotence_error, .timeout = 120)
{
	vox_producer_t *p = producer();
	char topic[256];
	vox_error_t err;
	int rc;

	t_topic_create("vox.test.fatal", 1, topic, sizeof(topic));
	cr_assert_eq(vox_producer_send_sync(p, topic, "k", "one", 3, NULL, 0,
	                                    NULL, NULL, &err),
	             0, "%s", err.message);
	cr_assert_eq(vox_producer_inject_fatal(p), 0);
	cr_assert(t_wait_for(rebuilt, p, 20000), "producer not rebuilt");
	/* The process goes on and the new handle publishes. */
	for (int i = 0; i < 50; i++) {
		rc = vox_producer_send_sync(p, topic, "k", "two", 3, NULL, 0,
		                            NULL, NULL, &err);
		if (rc == 0)
			break;
	}
	cr_assert_eq(rc, 0, "%s", err.message);
	cr_assert_eq(t_consume_all(topic, 2000, NULL, NULL, NULL), 2);
	vox_producer_destroy(p, 5000);
}

Test(kafka, unknown_topic_is_reported_not_hung, .timeout = 60)
{
	vox_producer_conf_t conf = {.brokers = t_env("VOX_KAFKA_BROKERS"),
	                            .client_id = "vox-test",
	                            .message_timeout_ms = 3000};
	vox_error_t err;
	vox_producer_t *p = vox_producer_new(&conf, &err);
	int rc;

	cr_assert_not_null(p);
	rc = vox_producer_send_sync(p, "vox.no.such.topic", NULL, "x", 1, NULL,
	                            0, NULL, NULL, &err);
	cr_assert_neq(rc, 0);
	cr_assert_gt(strlen(err.message), 0);
	cr_assert_eq(vox_producer_ping(p, 5000, &err), 0, "%s", err.message);
	vox_producer_destroy(p, 1000);
}

static int add_rows(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	const char *topic = arg;
	char payload[64];
	int rc = 0;

	for (int i = 0; i < 20 && rc == 0; i++) {
		snprintf(payload, sizeof(payload), "{\"n\":%d}", i);
		rc = vox_outbox_add(pg, topic, "key", payload,
		                    "{\"vox-test\":\"yes\"}", err);
	}
	return rc;
}

static void header_is_yes(void *arg, const char *payload, size_t len,
                          const char *header)
{
	int *ok = arg;

	(void)payload;
	(void)len;
	if (header && strcmp(header, "yes") == 0)
		(*ok)++;
}

Test(relay, publishes_committed_rows_once, .timeout = 120)
{
	vox_producer_t *p = producer();
	vox_pg_t *pg = t_pg();
	char topic[256];
	vox_error_t err;
	int published = 0, total = 0, with_header = 0;

	t_topic_create("vox.test.relay", 1, topic, sizeof(topic));
	cr_assert_eq(vox_pg_transaction(pg, add_rows, topic, &err), 0, "%s",
	             err.message);
	/* Other tests' rows may be waiting too: relay until ours are out. */
	/* Another relay (a worker's) may hold the relay lock for a while:
	 * keep trying for up to 10 s. */
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(vox_relay_once(pg, p, 500, &published, &err), 0,
		             "%s", err.message);
		total += published;
		if (t_pg_count(pg,
		               "SELECT count(*) FROM outbox WHERE topic = $1 "
		               "AND published_at IS NULL",
		               topic) == 0)
			break;
		usleep(50000);
	}
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM outbox WHERE topic = $1 "
	                        "AND published_at IS NOT NULL",
	                        topic),
	             20);
	cr_assert_eq(t_consume_all(topic, 2000, "vox-test", header_is_yes,
	                           &with_header),
	             20);
	cr_assert_eq(with_header, 20);
	vox_producer_destroy(p, 5000);
	vox_pg_destroy(pg);
}

Test(voxctl, migrate_twice_changes_nothing, .timeout = 60)
{
	char cmd[1200], line[256];
	long long before, after;
	vox_pg_t *pg = t_pg();
	bool saw = false, exited_ok = false;
	FILE *out;

	before = t_pg_count(pg, "SELECT count(*) FROM schema_migrations", NULL);
	snprintf(cmd, sizeof(cmd),
	         "VOX_MIGRATIONS_DIR=%s/migrations %s/voxctl migrate 2>&1; "
	         "echo exit=$?",
	         t_env("VOX_ROOT"), t_env("VOX_BIN_DIR"));
	out = popen(cmd, "r");
	cr_assert_not_null(out);
	while (fgets(line, sizeof(line), out)) {
		if (strstr(line, "migrations: 0 applied"))
			saw = true;
		if (strcmp(line, "exit=0\n") == 0)
			exited_ok = true;
	}
	/* pclose's status is lost to Criterion's child reaping: the shell
	 * reports voxctl's exit code instead. */
	pclose(out);
	cr_assert(exited_ok, "voxctl migrate failed");
	cr_assert(saw, "second migrate applied something");
	after = t_pg_count(pg, "SELECT count(*) FROM schema_migrations", NULL);
	cr_assert_eq(before, after);
	cr_assert_gt(after, 0);
	vox_pg_destroy(pg);
}
