/*
 * The metering worker against the real stack: a CDR seen twice (in one
 * batch, in two batches, after a restart) counts once; SIGKILL three times
 * during a 200,000-record run leaves the exact count and cost; records
 * that cannot be rated are kept with their reason (exceptions table and
 * dead-letter topic) and re-rated with voxctl; a usage trigger fires once
 * per period.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_cdr.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_kafka.h"
#include "vox_usage_event.h"
#include "vox_uuid.h"

struct run {
	char topic[256], group[160], carrier[VOX_CARRIER_NAME_MAX + 1];
	char account[40], key[64];
	char card[40];
	char numbers[20][24];
	int nnumbers;
	vox_pg_t *pg;
	vox_producer_t *producer;
};

static atomic_int delivered, failed;

static void on_delivery(void *opaque, const vox_error_t *err, int32_t part,
                        int64_t off)
{
	(void)opaque;
	(void)part;
	(void)off;
	atomic_fetch_add(err ? &failed : &delivered, 1);
}

static void sql(vox_pg_t *pg, const char *text, int n,
                const char *const *params)
{
	vox_error_t err;

	cr_assert_eq(vox_pg_exec(pg, text, n, params, NULL, &err), 0, "%s: %s",
	             text, err.message);
}

/* A number of the run's account: +1 628 then 7 random digits. */
static void add_number(struct run *r, const char *account)
{
	char *e164 = r->numbers[r->nnumbers++];

	snprintf(e164, 24, "+1628%07d", rand() % 10000000);
	const char *params[] = {e164, account};
	sql(r->pg,
	    "INSERT INTO numbers (e164, country, area_code, number_type, "
	    "status, account_id, carrier, features, purchased_at, "
	    "activated_at) VALUES ($1, 'US', '628', 'local', 'active', $2, "
	    "'sandbox', '{voice,sms}', now(), now())",
	    2, params);
}

/* A run: own topic, group, carrier name (so dedup keys of earlier runs do
 * not matter), an account with `numbers` numbers priced by a card of its
 * own: calls 60/60 at 1,000 micro-units a minute plus a 7 connect fee for
 * outbound, messages 300 a segment sent; sms_received has NO rate. */
static void run_setup(struct run *r, int numbers)
{
	char id[VOX_UUID_STRLEN];
	vox_producer_conf_t conf = {.brokers = t_env("VOX_KAFKA_BROKERS"),
	                            .client_id = "vox-test-metering"};
	vox_error_t err;
	PGresult *res = NULL;

	memset(r, 0, sizeof(*r));
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	vox_uuid7(id);
	t_topic_create("vox.test.cdr", 4, r->topic, sizeof(r->topic));
	snprintf(r->group, sizeof(r->group), "vox.test.metering.%s", id);
	snprintf(r->carrier, sizeof(r->carrier), "t%.8s%.4s", id + 24, id + 9);
	r->pg = t_pg();
	t_account("owner", r->account, r->key);
	const char *p1[] = {r->account};
	cr_assert_eq(vox_pg_exec(r->pg,
	                         "INSERT INTO rate_cards (name, currency, "
	                         "effective_from) VALUES ('test card', 'USD', "
	                         "'2020-01-01') RETURNING id",
	                         0, NULL, &res, &err),
	             0, "%s", err.message);
	snprintf(r->card, sizeof(r->card), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	const char *p2[] = {r->card, r->account};
	sql(r->pg,
	    "INSERT INTO rates (rate_card_id, currency, event_type, prefix, "
	    "per_minute_micros, per_unit_micros, setup_micros, "
	    "first_increment_s, next_increment_s) VALUES "
	    "($1, 'USD', 'inbound_call', '', 1000, 0, 0, 60, 60),"
	    "($1, 'USD', 'outbound_call', '', 1000, 0, 7, 60, 60),"
	    "($1, 'USD', 'sms_sent', '', 0, 300, 0, 60, 60)",
	    1, p2);
	sql(r->pg,
	    "INSERT INTO account_rate_cards (account_id, rate_card_id, "
	    "effective_from) VALUES ($2, $1, '2020-01-01')",
	    2, p2);
	(void)p1;
	for (int i = 0; i < numbers; i++)
		add_number(r, r->account);
	r->producer = vox_producer_new(&conf, &err);
	cr_assert_not_null(r->producer, "%s", err.message);
	atomic_store(&delivered, 0);
	atomic_store(&failed, 0);
}

static void run_teardown(struct run *r)
{
	if (r->producer)
		vox_producer_destroy(r->producer, 30000);
	vox_pg_destroy(r->pg);
}

static void send_raw(struct run *r, const char *key, const char *payload)
{
	vox_error_t err;

	while (vox_producer_send(r->producer, r->topic, key, payload,
	                         strlen(payload), NULL, 0, on_delivery, NULL,
	                         &err) != 0)
		usleep(1000);
}

/* Sends one record; returns its expected cost under the run's card. */
static long long send_cdr(struct run *r, const char *id, vox_cdr_type_t type,
                          const char *number, int64_t started_us, int duration)
{
	vox_cdr_t cdr;
	char ev[1024];

	memset(&cdr, 0, sizeof(cdr));
	snprintf(cdr.id, sizeof(cdr.id), "%s", id);
	cdr.type = type;
	snprintf(cdr.number, sizeof(cdr.number), "%s", number);
	if (vox_cdr_is_inbound(type)) {
		snprintf(cdr.from, sizeof(cdr.from), "+12125550100");
		snprintf(cdr.to, sizeof(cdr.to), "%s", number);
	} else {
		snprintf(cdr.from, sizeof(cdr.from), "%s", number);
		snprintf(cdr.to, sizeof(cdr.to), "+12125550100");
	}
	cdr.started_us = started_us;
	if (vox_cdr_is_call(type))
		cdr.duration_s = duration;
	else
		cdr.segments = duration;
	cr_assert_gt(vox_cdr_event(&cdr, r->carrier, "api", ev, sizeof(ev)), 0);
	send_raw(r, number, ev);
	switch (type) {
	case VOX_CDR_INBOUND_CALL:
		return duration ? (duration + 59) / 60 * 1000LL : 0;
	case VOX_CDR_OUTBOUND_CALL:
		return duration ? (duration + 59) / 60 * 1000LL + 7 : 0;
	case VOX_CDR_SMS_SENT:
		return 300LL * duration;
	default:
		return -1;
	}
}

static void flush(int expected)
{
	for (int i = 0;
	     i < 600 &&
	     atomic_load(&delivered) + atomic_load(&failed) < expected;
	     i++)
		usleep(100000);
	cr_assert_eq(atomic_load(&delivered), expected, "delivered %d of %d",
	             atomic_load(&delivered), expected);
}

/* The worker on the run's topic and group; extra: one more setting or
 * NULL. The log starts empty. */
static pid_t start_worker_with(struct run *r, const char *log,
                               const char *extra)
{
	static char topics[300], group[200];

	snprintf(topics, sizeof(topics), "VOX_WORKER_TOPICS=%s", r->topic);
	snprintf(group, sizeof(group), "VOX_WORKER_GROUP=%s", r->group);
	const char *const env[] = {topics,
	                           group,
	                           "VOX_WORKER_METRICS_PORT=0",
	                           "VOX_KAFKA_SESSION_TIMEOUT_MS=6000",
	                           "VOX_WORKER_BACKOFF_MS=10",
	                           extra,
	                           NULL};
	unlink(log);
	return t_spawn("metering", log, env);
}

static pid_t start_worker(struct run *r, const char *log)
{
	return start_worker_with(r, log, NULL);
}

static long long count_usage(struct run *r)
{
	return t_pg_count(
	        r->pg, "SELECT count(*) FROM usage_records WHERE carrier = $1",
	        r->carrier);
}

static long long sum_cost(struct run *r)
{
	return t_pg_count(r->pg,
	                  "SELECT coalesce(sum(cost_micros), 0) FROM "
	                  "usage_records WHERE carrier = $1",
	                  r->carrier);
}

static long long daily(struct run *r, const char *what)
{
	char q[200];

	snprintf(q, sizeof(q),
	         "SELECT coalesce(sum(%s), 0) FROM usage_daily WHERE "
	         "account_id = $1",
	         what);
	return t_pg_count(r->pg, q, r->account);
}

struct goal {
	struct run *r;
	long long n;
};

static bool usage_reached(void *arg)
{
	struct goal *g = arg;

	return count_usage(g->r) >= g->n;
}

static void wait_usage(struct run *r, long long n, int timeout_ms)
{
	struct goal g = {r, n};

	cr_assert(t_wait_for(usage_reached, &g, timeout_ms),
	          "%lld usage records of %lld", count_usage(r), n);
}

static int64_t now_us(void)
{
	return (int64_t)time(NULL) * 1000000;
}

static void stop_clean(pid_t pid)
{
	int status = t_stop(pid, SIGTERM, 30000);

	cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "worker did not stop cleanly (%d)", status);
}

Test(metering, same_record_counted_once, .timeout = 240)
{
	struct run r;
	long long cost = 0;
	int64_t t = now_us() - 3600LL * 1000000;
	pid_t w;

	run_setup(&r, 2);
	/* batch 1: a1 twice, a2, a3 */
	cost += send_cdr(&r, "a1", VOX_CDR_INBOUND_CALL, r.numbers[0], t, 61);
	send_cdr(&r, "a1", VOX_CDR_INBOUND_CALL, r.numbers[0], t, 61);
	cost += send_cdr(&r, "a2", VOX_CDR_OUTBOUND_CALL, r.numbers[1], t, 0);
	cost += send_cdr(&r, "a3", VOX_CDR_SMS_SENT, r.numbers[1], t, 2);
	flush(4);
	w = start_worker(&r, "metering-dup-1.log");
	wait_usage(&r, 3, 60000);
	/* batch 2: the same records again, and one new */
	send_cdr(&r, "a1", VOX_CDR_INBOUND_CALL, r.numbers[0], t, 61);
	send_cdr(&r, "a3", VOX_CDR_SMS_SENT, r.numbers[1], t, 2);
	cost += send_cdr(&r, "a4", VOX_CDR_OUTBOUND_CALL, r.numbers[0], t, 60);
	flush(7);
	wait_usage(&r, 4, 60000);
	sleep(2);
	stop_clean(w);
	/* a restart under a new group reads the whole topic again */
	{
		char again[sizeof(r.group)];

		snprintf(again, sizeof(again), "%.150s.again", r.group);
		memcpy(r.group, again, sizeof(again));
	}
	w = start_worker(&r, "metering-dup-2.log");
	sleep(8);
	stop_clean(w);
	cr_assert_eq(count_usage(&r), 4);
	cr_assert_eq(sum_cost(&r), cost, "cost %lld, expected %lld",
	             sum_cost(&r), cost);
	cr_assert_eq(cost, 2000 + 0 + 600 + 1007);
	cr_assert_eq(daily(&r, "records"), 4);
	cr_assert_eq(daily(&r, "cost_micros"), cost);
	cr_assert_eq(daily(&r, "billable_s"), 120 + 60);
	cr_assert_eq(daily(&r, "units"), 2);
	run_teardown(&r);
}

#define BIG 200000

Test(metering, sigkill_three_times_exact_totals, .timeout = 900)
{
	struct run r;
	long long cost = 0, at;
	int64_t t0 = now_us() - 86400LL * 1000000;
	char id[32];
	pid_t w;

	run_setup(&r, 20);
	for (int i = 0; i < BIG; i++) {
		vox_cdr_type_t type =
		        (vox_cdr_type_t)(i % 3 == 2 ? VOX_CDR_SMS_SENT : i % 3);
		int d = type == VOX_CDR_SMS_SENT ? 1 + i % 3 : (i * 7919) % 900;

		snprintf(id, sizeof(id), "big-%d", i);
		cost += send_cdr(&r, id, type, r.numbers[i % 20],
		                 t0 + (int64_t)i * 300000, d);
		/* 1% sent twice, some far apart */
		if (i % 100 == 0 && i > 5000) {
			snprintf(id, sizeof(id), "big-%d", i - 5000);
			type = (vox_cdr_type_t)((i - 5000) % 3 == 2
			                                ? VOX_CDR_SMS_SENT
			                                : (i - 5000) % 3);
			d = type == VOX_CDR_SMS_SENT
			            ? 1 + (i - 5000) % 3
			            : ((i - 5000) * 7919) % 900;
			send_cdr(&r, id, type, r.numbers[(i - 5000) % 20],
			         t0 + (int64_t)(i - 5000) * 300000, d);
		}
	}
	flush(BIG + (BIG - 5001) / 100);
	for (int k = 1; k <= 3; k++) {
		char log[64];

		snprintf(log, sizeof(log), "metering-kill-%d.log", k);
		w = start_worker(&r, log);
		wait_usage(&r, (long long)BIG * k / 4, 300000);
		kill(w, SIGKILL);
		waitpid(w, NULL, 0);
		at = count_usage(&r);
		cr_log_info("SIGKILL %d at %lld records", k, at);
		cr_assert_lt(at, BIG, "killed too late to mean anything");
	}
	w = start_worker(&r, "metering-kill-4.log");
	wait_usage(&r, BIG, 300000);
	sleep(3);
	stop_clean(w);
	cr_assert_eq(count_usage(&r), BIG);
	cr_assert_eq(sum_cost(&r), cost, "cost %lld, expected %lld",
	             sum_cost(&r), cost);
	cr_assert_eq(daily(&r, "records"), BIG);
	cr_assert_eq(daily(&r, "cost_micros"), cost);
	cr_assert_eq(t_pg_count(r.pg,
	                        "SELECT count(*) FROM usage_dedup WHERE "
	                        "carrier = $1",
	                        r.carrier),
	             BIG);
	run_teardown(&r);
}

struct dlq {
	int count;
	char reasons[16][300];
};

static void on_dlq(void *arg, const char *payload, size_t len,
                   const char *header)
{
	struct dlq *d = arg;

	(void)payload;
	(void)len;
	if (d->count < 16)
		snprintf(d->reasons[d->count], sizeof(d->reasons[0]), "%s",
		         header ? header : "(none)");
	d->count++;
}

static long long exceptions(struct run *r, const char *code)
{
	char q[300];

	snprintf(q, sizeof(q),
	         "SELECT count(*) FROM usage_exceptions WHERE reason_code = "
	         "'%s' AND status = 'open' AND (carrier = $1 OR record::text "
	         "LIKE '%%' || $1 || '%%')",
	         code);
	return t_pg_count(r->pg, q, r->carrier);
}

/* A message with a NUL byte in it is no CloudEvent; kept as text its raw
 * copy became \u0000, which jsonb refuses: the whole batch failed for good
 * and ran one message at a time (tests/chaos/4_poison.sh). It is an
 * exception of its batch now, the others rated with it. */
Test(metering, nul_byte_message_is_an_exception_of_its_batch, .timeout = 120)
{
	static const char nul_text[] = "chaos poison: a NUL \0 byte";
	struct run r;
	int64_t t = now_us() - 600LL * 1000000;
	vox_error_t err;
	pid_t w;

	run_setup(&r, 1);
	send_cdr(&r, "nul-ok-1", VOX_CDR_INBOUND_CALL, r.numbers[0], t, 30);
	while (vox_producer_send(r.producer, r.topic, r.numbers[0], nul_text,
	                         sizeof(nul_text) - 1, NULL, 0, on_delivery,
	                         NULL, &err) != 0)
		usleep(1000);
	send_cdr(&r, "nul-ok-2", VOX_CDR_INBOUND_CALL, r.numbers[0], t, 30);
	flush(3);
	w = start_worker(&r, "metering-nul.log");
	wait_usage(&r, 2, 60000);
	sleep(2);
	stop_clean(w);
	cr_assert_eq(count_usage(&r), 2);
	cr_assert_eq(t_pg_count(r.pg,
	                        "SELECT count(*) FROM usage_exceptions WHERE "
	                        "source_topic = $1 AND reason_code = "
	                        "'invalid_event' AND record->>'raw' = "
	                        "'(not UTF-8 text, or NUL bytes)'",
	                        r.topic),
	             1);
	run_teardown(&r);
}

Test(metering, bad_records_kept_with_reason_then_rerated, .timeout = 300)
{
	struct run r;
	char dlq_topic[300], bad[1024], cmd[1024], unknown[24], *out = NULL;
	char notjson[100];
	struct dlq d = {0};
	int64_t t = now_us() - 600LL * 1000000;
	pid_t w;
	FILE *p;
	int status;

	run_setup(&r, 1);
	snprintf(unknown, sizeof(unknown), "+1628%07d", rand() % 10000000);
	send_cdr(&r, "ok-1", VOX_CDR_INBOUND_CALL, r.numbers[0], t, 30);
	send_cdr(&r, "unknown-1", VOX_CDR_INBOUND_CALL, unknown, t, 30);
	send_cdr(&r, "norate-1", VOX_CDR_SMS_RECEIVED, r.numbers[0], t, 1);
	snprintf(notjson, sizeof(notjson), "this is not json %s", r.carrier);
	send_raw(&r, r.numbers[0], notjson);
	snprintf(bad, sizeof(bad),
	         "{\"specversion\":\"1.0\",\"id\":\"x-1\",\"source\":\"/t\","
	         "\"type\":\"vox.cdr.received\",\"data\":{\"carrier\":\"%s\","
	         "\"id\":\"badtype-1\",\"type\":\"fax\",\"from\":\"a\","
	         "\"to\":\"%s\",\"started_at\":\"2026-01-01T00:00:00Z\","
	         "\"received_via\":\"api\"}}",
	         r.carrier, r.numbers[0]);
	send_raw(&r, r.numbers[0], bad);
	snprintf(
	        bad, sizeof(bad),
	        "{\"specversion\":\"1.0\",\"id\":\"x-2\",\"source\":\"/t\","
	        "\"type\":\"vox.cdr.received\",\"data\":{\"carrier\":\"%s\","
	        "\"id\":\"nodur-1\",\"type\":\"outbound_call\",\"from\":\"%s\","
	        "\"to\":\"+12125550100\",\"started_at\":\"2026-01-01T00:00:"
	        "00Z\","
	        "\"received_via\":\"api\"}}",
	        r.carrier, r.numbers[0]);
	send_raw(&r, r.numbers[0], bad);
	flush(6);
	w = start_worker(&r, "metering-bad.log");
	wait_usage(&r, 1, 60000);
	sleep(3);
	cr_assert_eq(count_usage(&r), 1);
	cr_assert_eq(exceptions(&r, "unknown_number"), 1);
	cr_assert_eq(exceptions(&r, "no_rate"), 1);
	cr_assert_eq(exceptions(&r, "invalid_type"), 1);
	cr_assert_eq(exceptions(&r, "invalid_duration"), 1);
	cr_assert_eq(
	        t_pg_count(r.pg,
	                   "SELECT count(*) FROM usage_exceptions WHERE "
	                   "reason_code = 'invalid_event' AND record->>'raw' "
	                   "= $1",
	                   notjson),
	        1);
	snprintf(dlq_topic, sizeof(dlq_topic), "%s.dlq", r.topic);
	cr_assert_eq(
	        t_consume_all(dlq_topic, 3000, "vox-dlq-reason", on_dlq, &d), 5,
	        "%d dead letters", d.count);
	for (int i = 0; i < d.count && i < 16; i++)
		cr_log_info("dead letter: %s", d.reasons[i]);

	/* Fix the causes: the number joins the account, sms_received gets a
	 * rate; then re-rate the open exceptions of this carrier. */
	const char *p1[] = {unknown, r.account};
	sql(r.pg,
	    "INSERT INTO numbers (e164, country, area_code, number_type, "
	    "status, account_id, carrier) VALUES ($1, 'US', '628', 'local', "
	    "'active', $2, 'sandbox')",
	    2, p1);
	const char *p2[] = {r.card};
	sql(r.pg,
	    "INSERT INTO rates (rate_card_id, currency, event_type, "
	    "per_unit_micros) VALUES ($1, 'USD', 'sms_received', 11)",
	    1, p2);
	snprintf(cmd, sizeof(cmd),
	         "%s/voxctl usage rerate --carrier %s --topic %s 2>&1; echo "
	         "exit=$?",
	         t_env("VOX_BIN_DIR"), r.carrier, r.topic);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	out = calloc(1, 4096);
	cr_assert_geq(fread(out, 1, 4095, p), 0);
	pclose(p);
	cr_log_info("voxctl: %s", out);
	cr_assert(strstr(out, "exit=0") != NULL, "%s", out);
	cr_assert(strstr(out, "4 exceptions requeued") != NULL, "%s", out);
	wait_usage(&r, 3, 60000);
	sleep(2);
	status = t_stop(w, SIGTERM, 30000);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_assert_eq(count_usage(&r), 3);
	cr_assert_eq(t_pg_count(r.pg,
	                        "SELECT count(*) FROM usage_exceptions WHERE "
	                        "carrier = $1 AND status = 'resolved' AND "
	                        "usage_id IS NOT NULL",
	                        r.carrier),
	             2);
	/* the two bad-field records failed again: open, seen twice */
	cr_assert_eq(t_pg_count(r.pg,
	                        "SELECT count(*) FROM usage_exceptions WHERE "
	                        "carrier = $1 AND status = 'open' AND "
	                        "seen_count = 2",
	                        r.carrier),
	             2);
	free(out);
	run_teardown(&r);
}

/* Every payload sql returns (one column, one text parameter) is a valid
 * event of type: envelope, C validator of its data; fn (may be NULL) sees
 * each parsed event. Returns how many. */
static int valid_events(vox_pg_t *pg, const char *query, const char *param,
                        const char *type,
                        int (*validate)(const json_t *, vox_error_t *),
                        void (*fn)(void *, const json_t *), void *arg)
{
	const char *params[] = {param};
	PGresult *res = NULL;
	vox_error_t err;
	int n;

	cr_assert_eq(vox_pg_exec(pg, query, 1, params, &res, &err), 0, "%s",
	             err.message);
	n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		const char *text = PQgetvalue(res, i, 0);
		json_t *ev = NULL;

		cr_assert_eq(vox_event_parse(text, strlen(text), &ev, &err), 0,
		             "%s: %.300s", err.message, text);
		cr_assert_str_eq(vox_json_str(ev, "type"), type);
		cr_assert_eq(validate(json_object_get(ev, "data"), &err), 0,
		             "%s: %.300s", err.message, text);
		if (fn != NULL)
			fn(arg, ev);
		json_decref(ev);
	}
	PQclear(res);
	return n;
}

Test(metering, trigger_fires_once_per_period, .timeout = 240)
{
	struct run r;
	int64_t day1 = (now_us() / 86400000000LL - 2) * 86400000000LL;
	int64_t day2 = day1 + 86400000000LL;
	PGresult *res = NULL;
	vox_error_t err;
	char trig[40];
	pid_t w;

	run_setup(&r, 1);
	const char *p1[] = {r.account};
	cr_assert_eq(
	        vox_pg_exec(r.pg,
	                    "INSERT INTO usage_triggers (account_id, "
	                    "category, trigger_by, threshold, recurring, "
	                    "callback_url) VALUES ($1, 'calls', 'count', 3, "
	                    "'daily', 'https://example.com/hook') "
	                    "RETURNING id",
	                    1, p1, &res, &err),
	        0, "%s", err.message);
	snprintf(trig, sizeof(trig), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	w = start_worker(&r, "metering-trigger.log");
	/* day 1: two calls and a message: below the threshold */
	send_cdr(&r, "t1", VOX_CDR_INBOUND_CALL, r.numbers[0], day1 + 1000, 10);
	send_cdr(&r, "t2", VOX_CDR_INBOUND_CALL, r.numbers[0], day1 + 2000, 10);
	send_cdr(&r, "t3", VOX_CDR_SMS_SENT, r.numbers[0], day1 + 3000, 1);
	flush(3);
	wait_usage(&r, 3, 60000);
	cr_assert_eq(
	        t_pg_count(r.pg,
	                   "SELECT count(*) FROM usage_trigger_fires WHERE "
	                   "trigger_id = $1",
	                   trig),
	        0);
	/* the third call reaches it exactly; more calls do not fire again */
	send_cdr(&r, "t4", VOX_CDR_OUTBOUND_CALL, r.numbers[0], day1 + 4000,
	         10);
	flush(4);
	wait_usage(&r, 4, 60000);
	send_cdr(&r, "t5", VOX_CDR_OUTBOUND_CALL, r.numbers[0], day1 + 5000,
	         10);
	send_cdr(&r, "t6", VOX_CDR_INBOUND_CALL, r.numbers[0], day1 + 6000, 10);
	/* day 2: three calls: fires for day 2 */
	send_cdr(&r, "u1", VOX_CDR_INBOUND_CALL, r.numbers[0], day2 + 1000, 10);
	send_cdr(&r, "u2", VOX_CDR_INBOUND_CALL, r.numbers[0], day2 + 2000, 10);
	send_cdr(&r, "u3", VOX_CDR_INBOUND_CALL, r.numbers[0], day2 + 3000, 10);
	flush(9);
	wait_usage(&r, 9, 60000);
	sleep(2);
	stop_clean(w);
	cr_assert_eq(
	        t_pg_count(r.pg,
	                   "SELECT count(*) FROM usage_trigger_fires WHERE "
	                   "trigger_id = $1",
	                   trig),
	        2);
	cr_assert_eq(
	        t_pg_count(r.pg,
	                   "SELECT min(value) FROM usage_trigger_fires WHERE "
	                   "trigger_id = $1",
	                   trig),
	        3);
	cr_assert_eq(t_pg_count(r.pg,
	                        "SELECT count(*) FROM outbox WHERE topic = "
	                        "'vox.cmd.notifications' AND payload::jsonb -> "
	                        "'data' ->> 'trigger_id' = $1",
	                        trig),
	             2);
	/* what the worker published matches schemas/ (C validators) */
	cr_assert_eq(
	        valid_events(r.pg,
	                     "SELECT payload FROM outbox WHERE topic = "
	                     "'vox.cmd.notifications' AND message_key = $1",
	                     r.account, VOX_NOTIFICATION_TYPE,
	                     vox_notification_validate, NULL, NULL),
	        2);
	cr_assert_geq(valid_events(r.pg,
	                           "SELECT payload FROM outbox WHERE topic = "
	                           "'vox.events' AND message_key = $1",
	                           r.account, VOX_USAGE_RATED_TYPE,
	                           vox_usage_rated_validate, NULL, NULL),
	              1);
	run_teardown(&r);
}

/* voxctl usage refuses bad options with exit 2 and touches nothing. */
static int voxctl_exit(const char *args, char *out, size_t outlen)
{
	char cmd[512], *at;
	size_t n;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "%s/voxctl %s 2>&1; echo exit=$?",
	         t_env("VOX_BIN_DIR"), args);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, outlen - 1, p);
	out[n] = '\0';
	pclose(p);
	at = strstr(out, "exit=");
	return at ? (int)strtol(at + 5, NULL, 10) : -1;
}

Test(metering, voxctl_usage_refuses_bad_options)
{
	static const char *bad[] = {
	        "usage rerate --carrier 'Bad Name'",
	        "usage rerate --reason 'DROP TABLE'",
	        "usage rerate --id 12x",
	        "usage rerate extra",
	        "usage exceptions --status nope",
	        "usage nothing",
	};
	char out[2048];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = voxctl_exit(bad[i], out, sizeof(out));

		cr_assert_eq(rc, 2, "voxctl %s: exit %d: %s", bad[i], rc, out);
		cr_assert(strstr(out, "usage:") != NULL ||
		                  strstr(out, "voxctl:") != NULL,
		          "%s", out);
	}
	cr_assert_eq(voxctl_exit("usage exceptions --status all --carrier "
	                         "no-such-carrier --json",
	                         out, sizeof(out)),
	             0, "%s", out);
	cr_assert(strncmp(out, "[]", 2) == 0, "%s", out);
}

static bool file_has(const char *path, const char *text)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	bool found = false;

	while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, text) != NULL;
	if (f != NULL)
		fclose(f);
	return found;
}

#define MANY_ACCOUNTS 1000

/* One batch touching 1,000 (account, day) pairs, each crossing its
 * trigger: 1,000 fires and 1,000 notification commands (there was a
 * silent cap of 256 pairs). */
Test(metering, triggers_fire_for_1000_accounts_in_one_batch, .timeout = 300)
{
	struct run r;
	int64_t t = now_us() - 3600LL * 1000000;
	char block[8], names[80], id[32], number[24];
	PGresult *res = NULL;
	vox_error_t err;
	pid_t w;

	run_setup(&r, 0);
	/* one partition: the 1,000 records come in one fetch, one batch */
	t_topic_create("vox.test.cdr1", 1, r.topic, sizeof(r.topic));
	/* a block of 1,000 numbers nobody has: +1629 BBBB nnn */
	cr_assert_eq(vox_pg_exec(r.pg,
	                         "SELECT lpad(b::text, 4, '0') FROM "
	                         "generate_series(0, 9999) b WHERE NOT EXISTS "
	                         "(SELECT 1 FROM numbers WHERE country = 'US' "
	                         "AND e164 LIKE '+1629' || lpad(b::text, 4, "
	                         "'0') || '%') ORDER BY random() LIMIT 1",
	                         0, NULL, &res, &err),
	             0, "%s", err.message);
	cr_assert_eq(PQntuples(res), 1, "no free block of numbers");
	snprintf(block, sizeof(block), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	snprintf(names, sizeof(names), "many %s ", r.carrier);
	/* accounts "many <carrier> <i>", each with number i, the run's card
	 * and a trigger at the first call of a day */
	const char *p1[] = {block, names, r.card};
	sql(r.pg,
	    "WITH a AS (INSERT INTO accounts (name) SELECT $2 || g FROM "
	    "generate_series(0, 999) g RETURNING id, name),"
	    " n AS (INSERT INTO numbers (e164, country, area_code, "
	    "number_type, status, account_id, carrier, features, "
	    "purchased_at, activated_at) SELECT '+1629' || $1 || "
	    "lpad(substr(a.name, length($2) + 1), 3, '0'), 'US', '629', "
	    "'local', 'active', a.id, 'sandbox', '{voice,sms}', now(), now() "
	    "FROM a RETURNING 1),"
	    " c AS (INSERT INTO account_rate_cards (account_id, rate_card_id, "
	    "effective_from) SELECT id, $3, '2020-01-01' FROM a RETURNING 1),"
	    " tr AS (INSERT INTO usage_triggers (account_id, category, "
	    "trigger_by, threshold, recurring, callback_url) SELECT id, "
	    "'calls', 'count', 1, 'daily', 'https://example.com/hook' FROM a "
	    "RETURNING 1)"
	    " SELECT (SELECT count(*) FROM n), (SELECT count(*) FROM c), "
	    "(SELECT count(*) FROM tr)",
	    3, p1);
	for (int i = 0; i < MANY_ACCOUNTS; i++) {
		snprintf(id, sizeof(id), "many-%d", i);
		snprintf(number, sizeof(number), "+1629%s%03d", block, i);
		send_cdr(&r, id, VOX_CDR_INBOUND_CALL, number, t, 30);
	}
	flush(MANY_ACCOUNTS);
	w = start_worker_with(&r, "metering-many.log", "VOX_LOG_LEVEL=debug");
	wait_usage(&r, MANY_ACCOUNTS, 120000);
	sleep(2);
	stop_clean(w);
	cr_assert(file_has("metering-many.log", "batch: 1000 messages, 1000 "
	                                        "rated"),
	          "the 1,000 records were not one batch (metering-many.log)");
	cr_assert_eq(t_pg_count(r.pg,
	                        "SELECT count(*) FROM usage_trigger_fires f "
	                        "JOIN usage_triggers t ON t.id = f.trigger_id "
	                        "JOIN accounts a ON a.id = t.account_id WHERE "
	                        "a.name LIKE $1 || '%'",
	                        names),
	             MANY_ACCOUNTS);
	cr_assert_eq(
	        valid_events(r.pg,
	                     "SELECT o.payload FROM outbox o JOIN accounts "
	                     "a ON a.id::text = o.message_key WHERE "
	                     "o.topic = 'vox.cmd.notifications' AND a.name "
	                     "LIKE $1 || '%'",
	                     names, VOX_NOTIFICATION_TYPE,
	                     vox_notification_validate, NULL, NULL),
	        MANY_ACCOUNTS);
	/* and one rated event per account */
	cr_assert_eq(
	        valid_events(r.pg,
	                     "SELECT o.payload FROM outbox o JOIN accounts "
	                     "a ON a.id::text = o.message_key WHERE "
	                     "o.topic = 'vox.events' AND a.name LIKE $1 || "
	                     "'%'",
	                     names, VOX_USAGE_RATED_TYPE,
	                     vox_usage_rated_validate, NULL, NULL),
	        MANY_ACCOUNTS);
	run_teardown(&r);
}

#define LONGEST_RECORDS 30000

/* s filled to len characters from the record id alphabet after prefix. */
static void fill(char *s, size_t len, const char *prefix, const char *pad)
{
	size_t n = strlen(prefix), k = strlen(pad);

	memcpy(s, prefix, n);
	for (size_t i = n; i < len; i++)
		s[i] = pad[i % k];
	s[len] = '\0';
}

struct longest {
	char *seen; /* per record number: how often it was in an event */
	long long records;
	const char *carrier, *number;
};

static void note_rated(void *arg, const json_t *ev)
{
	struct longest *l = arg;
	const json_t *recs =
	        json_object_get(json_object_get(ev, "data"), "records");
	const json_t *rec;
	size_t i;

	json_array_foreach(recs, i, rec)
	{
		const char *id = vox_json_str(rec, "carrier_cdr_id");
		long k = strtol(id + 1, NULL, 10);

		cr_assert_eq(strlen(id), VOX_CDR_ID_MAX, "%s", id);
		cr_assert_str_eq(vox_json_str(rec, "carrier"), l->carrier);
		cr_assert_str_eq(vox_json_str(rec, "number"), l->number);
		cr_assert(k >= 0 && k < LONGEST_RECORDS, "%s", id);
		l->seen[k]++;
		l->records++;
	}
}

/* 30,000 records for one account (batches of up to 10,000), every
 * carrier-supplied field at its documented maximum (docs/CARRIER_CDRS.md): each
 * is rated exactly once and the vox.usage.rated events carry the full values.
 * The old fixed-size event buffer overran the heap on these. */
Test(metering, longest_fields_rated_once_in_10000_record_batches,
     .timeout = 600)
{
	struct run r;
	struct longest l = {0};
	int64_t t = now_us() - 7200LL * 1000000;
	char number[24], party[VOX_CDR_PARTY_MAX + 1], ev[1024];
	vox_cdr_t cdr;
	pid_t w;

	run_setup(&r, 0);
	/* the longest carrier name and the longest E.164 number */
	fill(r.carrier, VOX_CARRIER_NAME_MAX, r.carrier, "-_z9");
	snprintf(number, sizeof(number), "+1628%05d%06d", rand() % 100000,
	         rand() % 1000000);
	cr_assert_eq(strlen(number), 16);
	snprintf(r.numbers[0], sizeof(r.numbers[0]), "%s", number);
	const char *p1[] = {number, r.account};
	sql(r.pg,
	    "INSERT INTO numbers (e164, country, area_code, number_type, "
	    "status, account_id, carrier, features, purchased_at, "
	    "activated_at) VALUES ($1, 'US', '628', 'local', 'active', $2, "
	    "'sandbox', '{voice,sms}', now(), now())",
	    2, p1);
	fill(party, VOX_CDR_PARTY_MAX, "+", "9Zz0");
	for (int i = 0; i < LONGEST_RECORDS; i++) {
		char prefix[16];

		memset(&cdr, 0, sizeof(cdr));
		snprintf(prefix, sizeof(prefix), "L%07d", i);
		fill(cdr.id, VOX_CDR_ID_MAX, prefix, ".:_-Zz9");
		cdr.type = (vox_cdr_type_t)(i % 2 ? VOX_CDR_OUTBOUND_CALL
		                                  : VOX_CDR_SMS_SENT);
		snprintf(cdr.number, sizeof(cdr.number), "%s", number);
		snprintf(cdr.from, sizeof(cdr.from), "%s", number);
		snprintf(cdr.to, sizeof(cdr.to), "%s", party);
		cdr.started_us = t + i;
		if (vox_cdr_is_call(cdr.type))
			cdr.duration_s = VOX_CDR_MAX_DURATION_S;
		else
			cdr.segments = VOX_CDR_MAX_SEGMENTS;
		cr_assert_gt(
		        vox_cdr_event(&cdr, r.carrier, "file", ev, sizeof(ev)),
		        0);
		send_raw(&r, number, ev);
	}
	flush(LONGEST_RECORDS);
	w = start_worker_with(&r, "metering-longest.log",
	                      "VOX_LOG_LEVEL=debug");
	wait_usage(&r, LONGEST_RECORDS, 300000);
	sleep(2);
	stop_clean(w);
	cr_assert(file_has("metering-longest.log",
	                   "batch: 10000 messages, 10000 rated"),
	          "no full batch (metering-longest.log)");
	cr_assert_eq(count_usage(&r), LONGEST_RECORDS);
	cr_assert_eq(t_pg_count(r.pg,
	                        "SELECT count(DISTINCT carrier_cdr_id) FROM "
	                        "usage_records WHERE carrier = $1 AND "
	                        "length(carrier_cdr_id) = 128",
	                        r.carrier),
	             LONGEST_RECORDS);
	cr_assert_eq(daily(&r, "records"), LONGEST_RECORDS);
	cr_assert_eq(sum_cost(&r), LONGEST_RECORDS / 2 * (1440 * 1000LL + 7) +
	                                   LONGEST_RECORDS / 2 * 300LL * 100);
	l.seen = calloc(LONGEST_RECORDS, 1);
	l.carrier = r.carrier;
	l.number = number;
	/* at least one event per 500 records of each batch */
	cr_assert_geq(valid_events(r.pg,
	                           "SELECT payload FROM outbox WHERE topic = "
	                           "'vox.events' AND message_key = $1",
	                           r.account, VOX_USAGE_RATED_TYPE,
	                           vox_usage_rated_validate, note_rated, &l),
	              LONGEST_RECORDS / VOX_USAGE_RATED_MAX);
	cr_assert_eq(l.records, LONGEST_RECORDS);
	for (int i = 0; i < LONGEST_RECORDS; i++)
		cr_assert_eq(l.seen[i], 1, "record %d in %d events", i,
		             l.seen[i]);
	free(l.seen);
	run_teardown(&r);
}

static bool account_lock_waited(void *arg)
{
	struct run *r = arg;

	return t_pg_count(r->pg,
	                  "SELECT count(*) FROM pg_locks WHERE relation = "
	                  "$1::regclass AND NOT granted",
	                  "accounts") > 0;
}

struct exc_goal {
	struct run *r;
	const char *code;
};

static bool exception_seen(void *arg)
{
	struct exc_goal *g = arg;

	return exceptions(g->r, g->code) > 0;
}

/* usage_records has no foreign key on account_id (0035): the worker
 * checks a batch's accounts once, in its transaction, with a key-share
 * lock. An account deleted after the number lookup and before that check
 * (the test holds the check back with a table lock, deletes the account,
 * then lets it go) gets no usage record: its record is an exception
 * 'unknown_account', dead-lettered with that reason, and the worker goes
 * on rating. */
Test(metering, account_gone_before_the_check_is_an_exception, .timeout = 240)
{
	struct run r;
	char gone[40], dlq_topic[300];
	struct dlq d = {0};
	struct exc_goal g = {&r, "unknown_account"};
	int64_t t = now_us() - 600LL * 1000000;
	vox_pg_t *locker;
	PGresult *res = NULL;
	vox_error_t err;
	pid_t w;

	run_setup(&r, 1);
	/* an account with nothing but one number (priced by the default
	 * card), so that it can be deleted */
	cr_assert_eq(vox_pg_exec(r.pg,
	                         "INSERT INTO accounts (name) VALUES "
	                         "('metering gone') RETURNING id",
	                         0, NULL, &res, &err),
	             0, "%s", err.message);
	snprintf(gone, sizeof(gone), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	add_number(&r, gone);
	send_cdr(&r, "gone-1", VOX_CDR_INBOUND_CALL, r.numbers[1], t, 30);
	flush(1);

	/* EXCLUSIVE lets the number lookup read accounts but holds back
	 * the check's FOR KEY SHARE */
	locker = t_pg();
	sql(locker, "BEGIN", 0, NULL);
	sql(locker, "LOCK TABLE accounts IN EXCLUSIVE MODE", 0, NULL);
	w = start_worker(&r, "metering-gone.log");
	cr_assert(t_wait_for(account_lock_waited, &r, 60000),
	          "the worker never waited for accounts");
	const char *p1[] = {r.numbers[1]}, *p2[] = {gone};
	sql(locker, "DELETE FROM numbers WHERE e164 = $1", 1, p1);
	sql(locker, "DELETE FROM number_ownerships WHERE account_id = $1", 1,
	    p2);
	sql(locker, "DELETE FROM accounts WHERE id = $1", 1, p2);
	sql(locker, "COMMIT", 0, NULL);
	vox_pg_destroy(locker);

	cr_assert(t_wait_for(exception_seen, &g, 60000),
	          "no unknown_account exception");
	cr_assert_eq(count_usage(&r), 0);
	cr_assert_eq(t_pg_count(r.pg,
	                        "SELECT count(*) FROM usage_exceptions WHERE "
	                        "carrier = $1 AND carrier_cdr_id = 'gone-1' "
	                        "AND reason LIKE '%no longer exists%'",
	                        r.carrier),
	             1);
	snprintf(dlq_topic, sizeof(dlq_topic), "%s.dlq", r.topic);
	cr_assert_eq(
	        t_consume_all(dlq_topic, 3000, "vox-dlq-reason", on_dlq, &d), 1,
	        "%d dead letters", d.count);
	cr_assert(strncmp(d.reasons[0], "unknown_account: ", 17) == 0, "%s",
	          d.reasons[0]);

	/* the worker goes on: a record of the other account is rated */
	send_cdr(&r, "kept-1", VOX_CDR_INBOUND_CALL, r.numbers[0], t, 30);
	flush(2);
	wait_usage(&r, 1, 60000);
	stop_clean(w);
	cr_assert_eq(daily(&r, "records"), 1);
	run_teardown(&r);
}
