/*
 * Payments end to end: the invoicing worker (test-bin, its own command
 * topic and consumer group) against the real PostgreSQL, Kafka and the
 * payment sandbox of the test stack, with compressed days
 * (VOX_BILLING_DAY_S=1) and a short gateway timeout. Finalized invoices
 * are SQL fixtures (finalization is the invoices part's); the commands
 * are produced to Kafka as the ingress would.
 *
 * Covered: attach (the token read at the gateway, default), a charge that
 * succeeds (invoice paid); a soft decline, then success on the scheduled
 * retry after the card is fixed; a hard decline (failed, no retry, the
 * invoice stays finalized for dunning); a charge whose answer is lost
 * (timeout_after_charge on every attempt of a call) retried with the same
 * key on a later tick -> ONE row in the sandbox's ledger, the invoice paid
 * once; a worker killed right after the charge -> the next one calls with
 * the same key, still one charge; a gateway event applied once.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_kafka.h"
#include "vox_time.h"
#include "vox_uuid.h"

#define DUE_MICROS 6200000 /* 6.20 USD: 620 cents */

struct world {
	char topic[200], group[240], account[40], key[64];
	pid_t worker;
	int starts;
};

static struct world W;

static void worker_start(const char *fault_point)
{
	static char topics[240], group[280], url[80], fault[120];
	char log[80];

	snprintf(topics, sizeof(topics), "VOX_WORKER_TOPICS=%s", W.topic);
	snprintf(group, sizeof(group), "VOX_WORKER_GROUP=%s", W.group);
	snprintf(url, sizeof(url), "VOX_PAYMENT_URL=http://127.0.0.1:%d",
	         t_payment_port());
	snprintf(fault, sizeof(fault), "VOX_FAULT_POINT=%s",
	         fault_point ? fault_point : "");
	const char *env[] = {topics,
	                     group,
	                     url,
	                     fault,
	                     "VOX_WORKER_METRICS_PORT=0",
	                     "VOX_KAFKA_SESSION_TIMEOUT_MS=6000",
	                     "VOX_PAYMENT_TIMEOUT_MS=400",
	                     "VOX_BILLING_DAY_S=1",
	                     "VOX_PAYMENT_RETRY_DAYS=3,6",
	                     "VOX_INVOICING_SCHEDULE=0",
	                     NULL};
	snprintf(log, sizeof(log), "payments-e2e-worker-%d.log", ++W.starts);
	W.worker = t_spawn("../test-bin/invoicing", log, env);
}

static void setup(void)
{
	memset(&W, 0, sizeof(W));
	t_topic_create("vox.test.payments", 1, W.topic, sizeof(W.topic));
	snprintf(W.group, sizeof(W.group), "%s-group", W.topic);
	t_account("owner", W.account, W.key);
	worker_start(NULL);
}

static void teardown(void)
{
	if (W.worker > 0)
		t_stop(W.worker, SIGTERM, 20000);
}

static void delivered(void *opaque, const vox_error_t *err, int32_t partition,
                      int64_t offset)
{
	(void)opaque, (void)err, (void)partition, (void)offset;
}

static void produce(const char *type, json_t *data)
{
	vox_producer_conf_t conf = {.brokers = t_env("VOX_KAFKA_BROKERS"),
	                            .client_id = "vox-test-payments"};
	json_t *ev = vox_event_build(type, NULL, W.account, NULL, data);
	vox_producer_t *p;
	vox_error_t err;
	char *text;

	cr_assert_not_null(ev);
	text = vox_json_dump(ev);
	json_decref(ev);
	p = vox_producer_new(&conf, &err);
	cr_assert_not_null(p, "%s", err.message);
	cr_assert_eq(vox_producer_send(p, W.topic, W.account, text,
	                               strlen(text), NULL, 0, delivered, NULL,
	                               &err),
	             0, "%s", err.message);
	vox_producer_destroy(p, 10000);
	free(text);
}

/* First column of sql's first row ("" when none). */
static char *sql1(const char *sql, const char *param)
{
	vox_pg_t *pg = t_pg();
	const char *params[] = {param};
	PGresult *res;
	vox_error_t err;
	char *out;

	cr_assert_eq(vox_pg_exec(pg, sql, param ? 1 : 0, params, &res, &err), 0,
	             "%s: %s", sql, err.message);
	out = strdup(PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)
	                     ? PQgetvalue(res, 0, 0)
	                     : "");
	PQclear(res);
	vox_pg_destroy(pg);
	return out;
}

/* Waits until sql (one param) answers want. */
static void wait_sql(const char *sql, const char *param, const char *want,
                     int timeout_ms)
{
	long long until = vox_now_us() + timeout_ms * 1000LL;
	char *got = NULL;

	for (;;) {
		free(got);
		got = sql1(sql, param);
		if (strcmp(got, want) == 0 || vox_now_us() > until)
			break;
		usleep(100 * 1000);
	}
	cr_assert_str_eq(got, want, "%s [%s]", sql, param);
	free(got);
}

/* A card at the sandbox (as a browser would make it), attached through
 * the command as the ingress does: its row id in id, token in pm. */
static void attach(const char *number, char id[40], char pm[128])
{
	char op[VOX_UUID_STRLEN];

	t_payment_card(number, 2032, pm);

	vox_pg_t *pg = t_pg();
	const char *params[] = {W.account, pm};
	PGresult *res;
	vox_error_t err;

	cr_assert_eq(vox_pg_exec(pg,
	                         "INSERT INTO payment_methods (account_id, "
	                         "gateway, gateway_token, status) VALUES ($1, "
	                         "'sandbox', $2, 'pending') RETURNING id",
	                         2, params, &res, &err),
	             0, "%s", err.message);
	snprintf(id, 40, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	vox_pg_destroy(pg);
	vox_uuid7(op);
	produce("vox.payment_method.attach_requested",
	        json_pack("{s:s, s:s, s:b, s:s}", "account_id", W.account,
	                  "payment_method_id", id, "default", 1, "operation_id",
	                  op));
	wait_sql("SELECT status FROM payment_methods WHERE id = $1", id,
	         "active", 20000);
	wait_sql("SELECT status FROM operations WHERE id = $1", op, "completed",
	         20000);
}

/* A finalized invoice of the account owing DUE_MICROS (a fixture: the
 * invoices part makes real ones). */
static void invoice(char id[40])
{
	vox_pg_t *pg = t_pg();
	const char *params[] = {W.account};
	PGresult *res;
	vox_error_t err;

	cr_assert_eq(
	        vox_pg_exec(pg,
	                    "WITH s AS (SELECT coalesce(max(seq), 0) + 1 AS "
	                    "seq FROM invoices WHERE account_id = $1) INSERT "
	                    "INTO invoices (account_id, number, seq, "
	                    "period_start, period_end, status, "
	                    "subtotal_micros, tax_micros, total_micros, "
	                    "currency, issued_at, due_at, amount_due_micros) "
	                    "SELECT $1, 'T-' || s.seq, s.seq, "
	                    "'2026-11-01'::timestamptz - make_interval(months "
	                    "=> s.seq), '2026-12-01'::timestamptz - "
	                    "make_interval(months => s.seq), 'finalized', "
	                    "5693345, 505284, 6198629, 'USD', now(), now(), "
	                    "6200000 FROM s RETURNING id",
	                    1, params, &res, &err),
	        0, "%s", err.message);
	snprintf(id, 40, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	vox_pg_destroy(pg);
}

static void pay(const char *invoice_id, char op[VOX_UUID_STRLEN])
{
	vox_uuid7(op);
	produce("vox.invoice.pay_requested",
	        json_pack("{s:s, s:s, s:s}", "account_id", W.account,
	                  "invoice_id", invoice_id, "operation_id", op));
}

static size_t ledger(const char *invoice_id)
{
	char path[200];
	json_t *doc;
	size_t n;

	snprintf(path, sizeof(path), "/admin/ledger?invoice_id=%s", invoice_id);
	cr_assert_eq(t_payment("GET", path, NULL, NULL, &doc), 200);
	n = json_array_size(json_object_get(doc, "data"));
	json_decref(doc);
	return n;
}

static long long count(const char *sql, const char *param)
{
	char *v = sql1(sql, param);
	long long n = atoll(v);

	free(v);
	return n;
}

#define PAYMENT_STATUS "SELECT status FROM payments WHERE invoice_id = $1"
#define INVOICE_STATUS "SELECT status FROM invoices WHERE id = $1"
#define ATTEMPTS                                                               \
	"SELECT count(*) FROM payment_attempts a JOIN payments p ON p.id = "   \
	"a.payment_id WHERE p.invoice_id = $1"
#define FAILED_EVENTS                                                          \
	"SELECT count(*) FROM outbox WHERE payload LIKE "                      \
	"'%\"invoice.payment_failed\"%' AND payload LIKE '%' || $1 || '%'"

TestSuite(payments_e2e, .init = setup, .fini = teardown, .timeout = 180);

Test(payments_e2e, attach_and_charge_succeeds)
{
	char pmid[40], pm[128], inv[40], op[VOX_UUID_STRLEN];

	attach("4242424242424242", pmid, pm);
	wait_sql("SELECT is_default::text || ' ' || last4 || ' ' || brand "
	         "FROM payment_methods WHERE id = $1",
	         pmid, "true 4242 visa", 1000);
	invoice(inv);
	pay(inv, op);
	wait_sql(PAYMENT_STATUS, inv, "succeeded", 30000);
	wait_sql(INVOICE_STATUS, inv, "paid", 5000);
	wait_sql("SELECT amount_paid_micros || ' ' || amount_due_micros FROM "
	         "invoices WHERE id = $1",
	         inv, "6200000 0", 1000);
	wait_sql("SELECT status FROM operations WHERE id = $1", op, "completed",
	         5000);
	cr_expect_eq(ledger(inv), 1);
	cr_expect_eq(count(ATTEMPTS, inv), 1);
	/* paying a paid invoice again: refused, nothing charged */
	pay(inv, op);
	wait_sql("SELECT status || ' ' || error_code FROM operations WHERE id "
	         "= $1",
	         op, "failed invoice_not_payable", 20000);
	cr_expect_eq(ledger(inv), 1);
}

Test(payments_e2e, soft_decline_then_success_on_retry)
{
	char pmid[40], pm[128], inv[40], op[VOX_UUID_STRLEN], path[200];

	attach("4000000000009995", pmid, pm);
	invoice(inv);
	pay(inv, op);
	wait_sql("SELECT a.status || ' ' || a.decline_code || ' ' || p.status "
	         "FROM payment_attempts a JOIN payments p ON p.id = "
	         "a.payment_id WHERE p.invoice_id = $1",
	         inv, "declined insufficient_funds pending", 30000);
	/* the next attempt is scheduled 3 "days" after the first */
	wait_sql("SELECT (next_attempt_at > now())::text FROM payments WHERE "
	         "invoice_id = $1",
	         inv, "true", 1000);
	/* the customer fixes the card */
	snprintf(path, sizeof(path), "/admin/payment_methods/%s", pm);
	cr_assert_eq(t_payment("POST", path, "{\"behavior\":\"succeed\"}", NULL,
	                       NULL),
	             200);
	wait_sql(PAYMENT_STATUS, inv, "succeeded", 30000);
	wait_sql(INVOICE_STATUS, inv, "paid", 5000);
	cr_expect_eq(count(ATTEMPTS, inv), 2);
	cr_expect_eq(ledger(inv), 1);
	cr_expect_eq(count(FAILED_EVENTS, inv), 1);
	wait_sql("SELECT status || ' ' || error_code FROM operations WHERE id "
	         "= $1",
	         op, "failed payment_declined", 1000);
}

Test(payments_e2e, hard_decline_fails_without_retry)
{
	char pmid[40], pm[128], inv[40], op[VOX_UUID_STRLEN];

	attach("4000000000000069", pmid, pm);
	invoice(inv);
	pay(inv, op);
	wait_sql("SELECT status || ' ' || failure_code || ' ' || "
	         "decline_hard::text || ' ' || (next_attempt_at IS NULL)::text "
	         "FROM payments WHERE invoice_id = $1",
	         inv, "failed expired_card true true", 30000);
	sleep(4); /* past the first retry day: nothing more */
	cr_expect_eq(count(ATTEMPTS, inv), 1);
	cr_expect_eq(ledger(inv), 0);
	wait_sql(INVOICE_STATUS, inv, "finalized", 1000);
	cr_expect_eq(count(FAILED_EVENTS, inv), 1);
	wait_sql("SELECT error_code FROM operations WHERE id = $1", op,
	         "payment_declined", 1000);
}

/* Every attempt of the first call times out after the charge was taken;
 * the next tick calls again with the same key and gets the answer. */
Test(payments_e2e, lost_answer_is_retried_with_the_same_key)
{
	char pmid[40], pm[128], inv[40], op[VOX_UUID_STRLEN], rule[300];

	attach("4242424242424242", pmid, pm);
	snprintf(rule, sizeof(rule),
	         "{\"fault\":\"timeout_after_charge\",\"payment_method\":"
	         "\"%s\",\"delay_ms\":1000,\"count\":3}",
	         pm);
	cr_assert_eq(t_payment("POST", "/admin/faults", rule, NULL, NULL), 200);
	invoice(inv);
	pay(inv, op);
	/* the call failed retriably: the attempt waits, same key */
	wait_sql("SELECT a.status FROM payment_attempts a JOIN payments p ON "
	         "p.id = a.payment_id WHERE p.invoice_id = $1",
	         inv, "error", 30000);
	wait_sql(PAYMENT_STATUS, inv, "succeeded", 30000);
	wait_sql(INVOICE_STATUS, inv, "paid", 5000);
	cr_expect_eq(count(ATTEMPTS, inv), 1);
	cr_expect_eq(ledger(inv), 1, "charged more than once");
	wait_sql("SELECT amount_paid_micros::text FROM invoices WHERE id = $1",
	         inv, "6200000", 1000);
}

/* The worker dies right after the gateway took the charge, before it
 * recorded anything: the next worker calls again with the same key. */
Test(payments_e2e, worker_killed_after_charge_charges_once)
{
	char pmid[40], pm[128], inv[40], op[VOX_UUID_STRLEN];
	int status;

	attach("4242424242424242", pmid, pm);
	cr_assert_neq(t_stop(W.worker, SIGTERM, 20000), -1);
	worker_start("payments.after_charge");
	invoice(inv);
	pay(inv, op);
	for (int i = 0; i < 300 && waitpid(W.worker, &status, WNOHANG) == 0;
	     i++)
		usleep(100 * 1000);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	          "the worker did not die at the fault point");
	W.worker = 0;
	cr_expect_eq(ledger(inv), 1);
	wait_sql("SELECT a.status FROM payment_attempts a JOIN payments p ON "
	         "p.id = a.payment_id WHERE p.invoice_id = $1",
	         inv, "started", 1000);
	worker_start(NULL);
	wait_sql(PAYMENT_STATUS, inv, "succeeded", 40000);
	cr_expect_eq(count(ATTEMPTS, inv), 1);
	cr_expect_eq(ledger(inv), 1, "charged twice");
	wait_sql(INVOICE_STATUS, inv, "paid", 5000);
}

/* A charge that answers processing, settled by the gateway's event; the
 * event delivered twice and another event for the settled intent change
 * nothing more. */
Test(payments_e2e, gateway_event_applied_once)
{
	char pmid[40], pm[128], inv[40], op[VOX_UUID_STRLEN], path[200];
	char evt[80], evt2[80], *intent, *payment;

	attach("4242424242424242", pmid, pm);
	snprintf(path, sizeof(path), "/admin/payment_methods/%s", pm);
	cr_assert_eq(t_payment("POST", path, "{\"behavior\":\"processing\"}",
	                       NULL, NULL),
	             200);
	invoice(inv);
	pay(inv, op);
	wait_sql(PAYMENT_STATUS, inv, "processing", 30000);
	intent = sql1("SELECT gateway_payment_id FROM payments WHERE "
	              "invoice_id = $1",
	              inv);
	payment = sql1("SELECT id FROM payments WHERE invoice_id = $1", inv);
	cr_assert_eq(strncmp(intent, "pi_", 3), 0);
	snprintf(evt, sizeof(evt), "evt_%s", payment);
	snprintf(evt2, sizeof(evt2), "evt_%s_2", payment);
	for (int i = 0; i < 3; i++)
		produce("vox.payment.gateway_event",
		        json_pack("{s:s, s:s, s:s, s:s, s:n, s:n, s:i, s:s, "
		                  "s:{s:s, s:s, s:s}}",
		                  "event_id", i < 2 ? evt : evt2, "type",
		                  "payment_intent.succeeded", "intent_id",
		                  intent, "status", "succeeded", "decline_code",
		                  "code", "amount", 620, "currency", "USD",
		                  "metadata", "invoice_id", inv, "payment_id",
		                  payment, "account_id", W.account));
	wait_sql("SELECT count(*) FROM gateway_events WHERE intent_id = $1",
	         intent, "2", 30000);
	wait_sql(PAYMENT_STATUS, inv, "succeeded", 5000);
	wait_sql(INVOICE_STATUS, inv, "paid", 5000);
	wait_sql("SELECT amount_paid_micros::text FROM invoices WHERE id = $1",
	         inv, "6200000", 1000);
	wait_sql("SELECT applied::text FROM gateway_events WHERE id = $1", evt,
	         "true", 1000);
	wait_sql("SELECT applied::text || ' ' || (note LIKE 'already "
	         "settled%')::text FROM gateway_events WHERE id = $1",
	         evt2, "false true", 1000);
	free(intent);
	free(payment);
}
