/*
 * Issue 15's acceptance 3, the dunning ladder time-compressed
 * (VOX_BILLING_DAY_S=1: a ladder "day" is a second) through the real
 * ingress, provisioning worker (carrier sandbox), invoicing worker (test
 * build, its own topic and group, VOX_DUNNING_PLANS = the test's own plan
 * so that it walks no other suite's invoices) and payment gateway sandbox:
 *
 * 1. numbers bought through the API, one routed (forward); a finalized
 *    unpaid invoice (SQL fixture) -> reminders (invoice.payment_reminder
 *    in the outbox), then suspended (standing, holds; the routing decision
 *    rejects with billing_suspended) -> PAYMENT (an active method, the
 *    vox.invoice.pay_requested command) -> paid, every hold lifted at
 *    once, standing good, account.billing_reinstated, routed again.
 * 2. a payment landing before the suspend step: no suspension.
 * 3. the release step: the held numbers released through provisioning
 *    (operations of kind number.release, completed), the holds gone.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "carrier_helpers.h"
#include "helpers.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_kafka.h"
#include "vox_uuid.h"

#define WAIT_MS 30000

static int port;
static pid_t ingress, provisioning, invoicing;
static char account[40], key[64], topic[160];
static struct t_carrier carrier;

static bool ingress_up(void *arg)
{
	(void)arg;
	return t_http("GET", port, "/healthz", NULL, NULL, NULL) == 200;
}

static void suite_start(void)
{
	static char port_env[64], group[200];
	char id[VOX_UUID_STRLEN];

	vox_uuid7(id);
	port = t_free_port();
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", port);
	const char *const ienv[] = {port_env,
	                            "VOX_RATE_COMMAND=1000",
	                            "VOX_RATE_READ=1000",
	                            "VOX_RATE_SEARCH=1000",
	                            "VOX_RATE_ROUTE=1000",
	                            NULL};
	snprintf(group, sizeof(group), "VOX_WORKER_GROUP=vox.test.dunning.%s",
	         id);
	t_group_at_end(group + strlen("VOX_WORKER_GROUP="),
	               "vox.cmd.provisioning");
	const char *const wenv[] = {group, "VOX_WORKER_METRICS_PORT=0",
	                            "VOX_KAFKA_SESSION_TIMEOUT_MS=6000", NULL};
	ingress = t_spawn("ingress", "dunning-ingress.log", ienv);
	provisioning =
	        t_spawn("provisioning", "dunning-provisioning.log", wenv);
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
	t_carrier_new(&carrier);
	t_topic_create("vox.test.invoicing", 1, topic, sizeof(topic));
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
}

static void suite_stop(void)
{
	if (invoicing > 0)
		t_stop(invoicing, SIGTERM, 20000);
	cr_expect_eq(t_stop(provisioning, SIGTERM, 20000), 0);
	cr_expect_eq(t_stop(ingress, SIGTERM, 20000), 0);
}

TestSuite(dunning_e2e, .init = suite_start, .fini = suite_stop, .timeout = 180);

/* ---------------------------------------------------------------- SQL */

static void sql(const char *text, int n, const char *const *params)
{
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	cr_assert_eq(vox_pg_exec(pg, text, n, params, NULL, &err), 0, "%s: %s",
	             text, err.message);
	vox_pg_destroy(pg);
}

static long long count(const char *text, const char *param)
{
	vox_pg_t *pg = t_pg();
	long long n = t_pg_count(pg, text, param);

	vox_pg_destroy(pg);
	return n;
}

struct until {
	const char *sql, *param;
	long long want; /* at least */
};

static bool reached(void *arg)
{
	struct until *u = arg;

	return count(u->sql, u->param) >= u->want;
}

/* Waits until the count of sql (one parameter) is at least want. */
static void wait_count(const char *text, const char *param, long long want,
                       const char *what)
{
	struct until u = {text, param, want};

	cr_assert(t_wait_for(reached, &u, WAIT_MS), "%s: not within %d ms",
	          what, WAIT_MS);
}

/* ---------------------------------------------------------------- API */

static json_t *api(const char *method, const char *path, const char *body,
                   int expect)
{
	char auth[600], idem[80], id[VOX_UUID_STRLEN], *text = NULL;
	const char *h[] = {auth, idem, "Prefer: wait=20",
	                   "Content-Type: application/json", NULL};
	json_t *doc;
	int status;

	vox_uuid7(id);
	snprintf(idem, sizeof(idem), "Idempotency-Key: dun-%s", id);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	status = t_http_h(method, port, path, body, h, &text, NULL);
	cr_assert_eq(status, expect, "%s %s: %d %s", method, path, status,
	             text ? text : "");
	doc = json_loads(text ? text : "null", JSON_DECODE_ANY, NULL);
	free(text);
	return doc;
}

/* A command answered with its finished operation (Prefer: wait). */
static json_t *command(const char *method, const char *path, const char *body)
{
	json_t *op = api(method, path, body, 200);

	cr_assert_str_eq(vox_json_str(op, "status"), "completed", "%s %s",
	                 method, path);
	return op;
}

/* n (1..2) available US 415 numbers bought through the API: search,
 * reserve, order (the provisioning worker and the carrier sandbox). */
static void buy(int n, char e164[][24], char ids[][40])
{
	json_t *found = api("GET",
	                    "/v1/available-numbers?country=US&area_code=415"
	                    "&limit=50",
	                    NULL, 200);
	json_t *data = json_object_get(found, "data"), *op, *list;
	char body[200];
	size_t at;

	cr_assert_geq(json_array_size(data), (size_t)n + 1);
	at = (size_t)rand() % (json_array_size(data) - (size_t)n);
	for (int i = 0; i < n; i++)
		snprintf(e164[i], 24, "%s",
		         vox_json_str(json_array_get(data, at + (size_t)i),
		                      "phone_number"));
	json_decref(found);
	if (n == 1)
		snprintf(body, sizeof(body), "{\"phone_numbers\":[\"%s\"]}",
		         e164[0]);
	else
		snprintf(body, sizeof(body),
		         "{\"phone_numbers\":[\"%s\",\"%s\"]}", e164[0],
		         e164[1]);
	op = command("POST", "/v1/reservations", body);
	snprintf(body, sizeof(body), "{\"reservation_id\":\"%s\"}",
	         vox_json_str(json_object_get(op, "result"), "reservation_id"));
	json_decref(op);
	json_decref(command("POST", "/v1/orders", body));
	list = api("GET", "/v1/numbers?limit=100", NULL, 200);
	for (int i = 0; i < n; i++) {
		ids[i][0] = '\0';
		for (size_t j = 0;
		     j < json_array_size(json_object_get(list, "data")); j++) {
			json_t *num = json_array_get(
			        json_object_get(list, "data"), j);

			if (strcmp(vox_json_str(num, "phone_number"),
			           e164[i]) == 0)
				snprintf(ids[i], 40, "%s",
				         vox_json_str(num, "id"));
		}
		cr_assert(ids[i][0] != '\0', "%s not bought", e164[i]);
	}
	json_decref(list);
}

/* ---------------------------------------------------------------- routing */

/* The routing decision's rule for a call to e164 now. */
static void route_rule(const char *e164, char rule[48])
{
	char body[200], sig[65], sig_h[128], auth_h[128], *text = NULL;
	const char *headers[] = {auth_h, sig_h,
	                         "Content-Type: application/json", NULL};
	long long t = (long long)time(NULL);
	char id[VOX_UUID_STRLEN];
	json_t *d;
	int status;

	vox_uuid7(id); /* a fresh caller: a new body, never a replay */
	snprintf(body, sizeof(body), "{\"to\":\"%s\",\"from\":\"+1212%07lu\"}",
	         e164, strtoul(id + 29, NULL, 16) % 10000000);
	snprintf(auth_h, sizeof(auth_h), "Authorization: Bearer %s",
	         carrier.key);
	t_carrier_sign(carrier.secret, t, body, sig);
	snprintf(sig_h, sizeof(sig_h), "Vox-Signature: t=%lld,v1=%s", t, sig);
	status = t_http_h("POST", port, "/v1/carrier/calls/route", body,
	                  headers, &text, NULL);
	d = text ? json_loads(text, 0, NULL) : NULL;
	snprintf(rule, 48, "%s",
	         status == 200 && vox_json_str(d, "rule")
	                 ? vox_json_str(d, "rule")
	                 : "(no answer)");
	if (status == 200 && strcmp(vox_json_str(d, "action"), "forward") == 0)
		snprintf(rule, 48, "forward");
	json_decref(d);
	free(text);
}

struct route_want {
	const char *e164, *rule;
};

static bool route_is(void *arg)
{
	struct route_want *w = arg;
	char rule[48];

	route_rule(w->e164, rule);
	return strcmp(rule, w->rule) == 0;
}

static void wait_route(const char *e164, const char *rule)
{
	struct route_want w = {e164, rule};
	char got[48];

	if (!t_wait_for(route_is, &w, 5000)) {
		route_rule(e164, got);
		cr_assert_fail("%s: routing %s, not %s", e164, got, rule);
	}
}

/* ---------------------------------------------------------------- fixtures */

/* The test's own plan (name out) with these steps, and the account on it. */
static void plan(const char *steps, char name[40])
{
	char id[VOX_UUID_STRLEN];

	vox_uuid7(id);
	snprintf(name, 40, "dun-%s", id + 24);
	const char *p[] = {name, steps};
	const char *a[] = {account, name};
	sql("INSERT INTO dunning_plans (name, steps) VALUES ($1, $2::jsonb)", 2,
	    p);
	sql("INSERT INTO billing_accounts (account_id, dunning_plan) VALUES "
	    "($1, $2) ON CONFLICT (account_id) DO UPDATE SET dunning_plan = $2",
	    2, a);
}

/* A finalized invoice of last month, due now, 12.345678 owed (12.35 to
 * pay). */
static void invoice(char id[40])
{
	vox_pg_t *pg = t_pg();
	const char *p[] = {account};
	vox_error_t err;
	PGresult *res;

	cr_assert_eq(
	        vox_pg_exec(
	                pg,
	                "INSERT INTO invoices (account_id, number, seq, "
	                "period_start, period_end, status, "
	                "subtotal_micros, tax_micros, total_micros, "
	                "amount_due_micros, currency, issued_at, due_at, "
	                "timezone) VALUES ($1::uuid, upper(left($1::text, 8)) "
	                "|| '-000001', 1, date_trunc('month', now()) - "
	                "interval '1 month', date_trunc('month', now()), "
	                "'finalized', 12345678, 0, 12345678, 12350000, "
	                "'USD', now(), now(), 'UTC') RETURNING id",
	                1, p, &res, &err),
	        0, "%s", err.message);
	snprintf(id, 40, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	vox_pg_destroy(pg);
}

/* The invoicing worker (test build) on the suite's topic, the day a
 * second, the ladder of plan only. */
static void invoicing_spawn(const char *plan_name)
{
	static char group[220], topics[200], plans[80], pay[80];
	char id[VOX_UUID_STRLEN];

	if (invoicing > 0)
		t_stop(invoicing, SIGTERM, 20000);
	vox_uuid7(id);
	snprintf(group, sizeof(group),
	         "VOX_WORKER_GROUP=vox.test.dunning-invoicing.%s", id);
	snprintf(topics, sizeof(topics), "VOX_WORKER_TOPICS=%s", topic);
	snprintf(plans, sizeof(plans), "VOX_DUNNING_PLANS=%s", plan_name);
	snprintf(pay, sizeof(pay), "VOX_PAYMENT_URL=http://127.0.0.1:%s",
	         getenv("VOX_PAYMENT_PORT") ? getenv("VOX_PAYMENT_PORT")
	                                    : "27182");
	const char *env[] = {group,
	                     topics,
	                     plans,
	                     pay,
	                     "VOX_BILLING_DAY_S=1",
	                     "VOX_INVOICING_SCHEDULE=0",
	                     "VOX_PAYMENT_RETRY_DAYS=1",
	                     "VOX_WORKER_METRICS_PORT=0",
	                     "VOX_KAFKA_SESSION_TIMEOUT_MS=6000",
	                     NULL};
	invoicing =
	        t_spawn("../test-bin/invoicing", "dunning-invoicing.log", env);
}

/* A command on the invoicing worker's topic, as the ingress sends it. */
static void produce(const char *type, json_t *data)
{
	json_t *ev = vox_event_build(type, NULL, account, NULL, data);
	char *text = vox_json_dump(ev), errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;

	cr_assert_not_null(text);
	rd_kafka_conf_set(conf, "bootstrap.servers", t_env("VOX_KAFKA_BROKERS"),
	                  errstr, sizeof(errstr));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	cr_assert_not_null(rk, "%s", errstr);
	cr_assert_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
	                               RD_KAFKA_V_KEY(account, strlen(account)),
	                               RD_KAFKA_V_VALUE(text, strlen(text)),
	                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                               RD_KAFKA_V_END),
	             RD_KAFKA_RESP_ERR_NO_ERROR);
	cr_assert_eq(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_destroy(rk);
	free(text);
	json_decref(ev);
}

/* A card (4242..., always succeeds) made at the payment gateway sandbox,
 * as its client-side library would: its pm_ token. */
static void gateway_method(char pm[128])
{
	t_payment_card("4242424242424242", 2034, pm);
}

static const char reminders_sql[] =
        "SELECT count(*) FROM outbox WHERE topic = 'vox.events' AND "
        "message_key = $1 AND payload::jsonb->>'type' = "
        "'invoice.payment_reminder'";
static const char held_sql[] =
        "SELECT count(*) FROM numbers WHERE account_id = $1 AND "
        "billing_hold_at IS NOT NULL";

/* ---------------------------------------------------------------- tests */

Test(dunning_e2e, ladder_reminds_suspends_and_payment_lifts_every_hold)
{
	char e164[2][24], ids[2][40], inv[40], name[40], path[160];
	json_t *doc;

	t_account("owner", account, key);
	buy(2, e164, ids);
	snprintf(path, sizeof(path), "/v1/numbers/%s/activate", ids[0]);
	json_decref(command("POST", path, "{\"forward_to\":\"+14155550100\"}"));
	wait_route(e164[0], "forward");

	/* remind at D+2 and D+4, suspend at D+6, release far away */
	plan("[{\"after_days\": 2, \"action\": \"remind\"}, {\"after_days\": "
	     "4, \"action\": \"remind\"}, {\"after_days\": 6, \"action\": "
	     "\"suspend\"}, {\"after_days\": 600, \"action\": \"release\"}]",
	     name);
	invoice(inv);
	invoicing_spawn(name);

	wait_count("SELECT count(*) FROM billing_accounts WHERE account_id = "
	           "$1 AND standing = 'past_due'",
	           account, 1, "past_due");
	wait_count(reminders_sql, account, 1, "a reminder");
	wait_count("SELECT count(*) FROM billing_accounts WHERE account_id = "
	           "$1 AND standing = 'suspended' AND suspended_at IS NOT NULL",
	           account, 1, "suspended");
	/* both reminder steps ran before the suspension (sent, or the first
	 * skipped when both came due in one tick) */
	cr_expect_eq(count("SELECT count(*) FROM dunning_steps_done WHERE "
	                   "invoice_id = $1 AND step_no IN (0, 1, 2)",
	                   inv),
	             3);
	cr_expect_eq(count(held_sql, account), 2, "both numbers held");
	cr_expect_eq(count("SELECT count(*) FROM outbox WHERE topic = "
	                   "'vox.events' AND message_key = $1 AND "
	                   "payload::jsonb->>'type' = "
	                   "'account.billing_suspended' AND "
	                   "payload::jsonb->'data'->>'numbers' = '2'",
	                   account),
	             1);
	/* the numbers keep their status: the hold is separate */
	cr_expect_eq(count("SELECT count(*) FROM numbers WHERE account_id = "
	                   "$1 AND status = 'active'",
	                   account),
	             1);
	wait_route(e164[0], "billing_suspended");
	/* the reminder's data */
	{
		vox_pg_t *pg = t_pg();
		const char *p[] = {account};
		vox_error_t err;
		PGresult *res;

		cr_assert_eq(vox_pg_exec(pg,
		                         "SELECT payload FROM outbox WHERE "
		                         "message_key = $1 AND "
		                         "payload::jsonb->>'type' = "
		                         "'invoice.payment_reminder' ORDER BY "
		                         "id LIMIT 1",
		                         1, p, &res, &err),
		             0, "%s", err.message);
		doc = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
		PQclear(res);
		vox_pg_destroy(pg);
		json_t *data = json_object_get(doc, "data");
		cr_expect_str_eq(vox_json_str(doc, "subject"), inv);
		cr_expect_eq(json_integer_value(json_object_get(
		                     data, "amount_due_micros")),
		             12350000);
		cr_expect_str_eq(vox_json_str(data, "currency"), "USD");
		cr_expect_geq(json_integer_value(
		                      json_object_get(data, "days_past_due")),
		              2);
		json_decref(doc);
	}

	/* PAYMENT: an active default method, then pay */
	char pm[128];

	gateway_method(pm);
	const char *p[] = {account, pm};
	sql("INSERT INTO payment_methods (account_id, gateway, gateway_token, "
	    "brand, last4, exp_month, exp_year, is_default, status) VALUES "
	    "($1, 'sandbox', $2, 'visa', '4242', 12, 2034, true, 'active')",
	    2, p);
	char op[VOX_UUID_STRLEN];

	vox_uuid7(op);
	produce("vox.invoice.pay_requested",
	        json_pack("{s:s, s:s, s:s}", "account_id", account,
	                  "invoice_id", inv, "operation_id", op));
	wait_count("SELECT count(*) FROM invoices WHERE id = $1 AND status = "
	           "'paid' AND amount_due_micros = 0",
	           inv, 1, "invoice paid");
	/* every hold lifted at once, in the paying transaction */
	cr_expect_eq(count(held_sql, account), 0);
	cr_expect_eq(count("SELECT count(*) FROM billing_accounts WHERE "
	                   "account_id = $1 AND standing = 'good' AND "
	                   "suspended_at IS NULL",
	                   account),
	             1);
	cr_expect_eq(count("SELECT count(*) FROM outbox WHERE topic = "
	                   "'vox.events' AND message_key = $1 AND "
	                   "payload::jsonb->>'type' = "
	                   "'account.billing_reinstated'",
	                   account),
	             1);
	wait_route(e164[0], "forward");
	/* no further step for a paid invoice */
	sleep(2);
	cr_expect_eq(count("SELECT count(*) FROM dunning_steps_done WHERE "
	                   "invoice_id = $1",
	                   inv),
	             3);
}

Test(dunning_e2e, a_payment_before_the_suspend_step_means_no_suspension)
{
	char e164[1][24], ids[1][40], inv[40], name[40], path[160];

	t_account("owner", account, key);
	buy(1, e164, ids);
	snprintf(path, sizeof(path), "/v1/numbers/%s/activate", ids[0]);
	json_decref(command("POST", path, "{\"forward_to\":\"+14155550100\"}"));
	plan("[{\"after_days\": 1, \"action\": \"remind\"}, {\"after_days\": "
	     "5, \"action\": \"suspend\"}]",
	     name);
	invoice(inv);
	invoicing_spawn(name);
	wait_count(reminders_sql, account, 1, "a reminder");

	/* the payment lands (the invoice as inv_invoice_settle leaves it;
	 * the real payment path is the test above) before D+5 */
	const char *p[] = {inv};
	sql("UPDATE invoices SET status = 'paid', amount_paid_micros = "
	    "12350000, amount_due_micros = 0, paid_at = now() WHERE id = $1",
	    1, p);
	sleep(7); /* past D+5 */
	cr_expect_eq(count("SELECT count(*) FROM dunning_steps_done WHERE "
	                   "invoice_id = $1 AND action = 'suspend'",
	                   inv),
	             0, "a paid invoice was walked to its suspend step");
	cr_expect_eq(count(held_sql, account), 0);
	cr_expect_eq(count("SELECT count(*) FROM billing_accounts WHERE "
	                   "account_id = $1 AND standing = 'suspended'",
	                   account),
	             0);
	/* past_due went back to good by itself: nothing is owed */
	wait_count("SELECT count(*) FROM billing_accounts WHERE account_id = "
	           "$1 AND standing = 'good'",
	           account, 1, "good again");
	wait_route(e164[0], "forward");
}

Test(dunning_e2e, the_release_step_releases_the_held_numbers)
{
	char e164[2][24], ids[2][40], inv[40], name[40];

	t_account("owner", account, key);
	buy(2, e164, ids);
	plan("[{\"after_days\": 1, \"action\": \"suspend\"}, {\"after_days\": "
	     "3, \"action\": \"release\"}]",
	     name);
	invoice(inv);
	invoicing_spawn(name);
	wait_count(held_sql, account, 2, "both numbers held");
	/* released through provisioning, as DELETE /v1/numbers/{id} */
	wait_count("SELECT count(*) FROM operations WHERE account_id = $1 AND "
	           "kind = 'number.release' AND status = 'completed'",
	           account, 2, "two release operations completed");
	cr_expect_eq(count("SELECT count(*) FROM numbers WHERE account_id = "
	                   "$1",
	                   account),
	             0, "numbers still the account's");
	for (int i = 0; i < 2; i++)
		cr_expect_eq(count("SELECT count(*) FROM numbers WHERE id = $1 "
		                   "AND status = 'available' AND "
		                   "billing_hold_at IS NULL",
		                   ids[i]),
		             1, "%s not back in the pool unheld", e164[i]);
	/* once: the step's row, one operation per number */
	sleep(2);
	cr_expect_eq(count("SELECT count(*) FROM operations WHERE account_id "
	                   "= $1 AND kind = 'number.release'",
	                   account),
	             2);
	cr_expect_eq(count("SELECT count(*) FROM dunning_steps_done WHERE "
	                   "invoice_id = $1",
	                   inv),
	             2);
}
