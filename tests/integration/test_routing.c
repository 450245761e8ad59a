/*
 * Routing decisions through a real ingress (POST /v1/carrier/calls/route,
 * signed like the CDR push): open, closed (after-hours destination,
 * voicemail, reject), holiday, disabled, unconfigured and unknown numbers;
 * a configuration changed by SQL and a number deactivated reaching the
 * in-memory table through NOTIFY vox_routing within 2 s; bad signature,
 * replay (to the same ingress and to a second one: the replay store is
 * shared), Redis down (503, fail closed) and bad body; a credential revoked
 * with voxctl refused through the ingress's credential cache. And GET
 * /v1/numbers/{id}/business-hours/preview across New York's spring-forward,
 * with its 400s and 404s. Numbers and their configuration rows are made by SQL
 * (the configuration API writes the same columns).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "carrier_helpers.h"
#include "helpers.h"
#include "vox_json.h"
#include "vox_time.h"

static int port;
static pid_t ingress;
static char account[40], key[64];
static struct t_carrier carrier;
static atomic_int calls;

/* Monday to Friday 09:00-17:00 in New York, Christmas a holiday. */
static const char hours_ny[] =
        "{\"time_zone\":\"America/New_York\",\"weekly\":{"
        "\"mon\":[{\"open\":\"09:00\",\"close\":\"17:00\"}],"
        "\"tue\":[{\"open\":\"09:00\",\"close\":\"17:00\"}],"
        "\"wed\":[{\"open\":\"09:00\",\"close\":\"17:00\"}],"
        "\"thu\":[{\"open\":\"09:00\",\"close\":\"17:00\"}],"
        "\"fri\":[{\"open\":\"09:00\",\"close\":\"17:00\"}]},"
        "\"overrides\":[{\"name\":\"Christmas\",\"recurring\":{\"month\":12,"
        "\"day\":25},\"holiday\":true}]}";

/* Monday 2026-12-07: 10:00 EST, then 18:00 EST; Friday 2026-12-25 noon. */
#define AT_OPEN    "2026-12-07T15:00:00Z"
#define AT_CLOSED  "2026-12-07T23:00:00Z"
#define AT_HOLIDAY "2026-12-25T17:00:00Z"

/* A caller number unique to this request: Criterion runs each test in a
 * process of its own, so the pid keeps two tests' requests apart (a
 * repeated body signed in the same second would be a replay). */
static long caller(void)
{
	return (long)(getpid() % 1000) * 10000 +
	       atomic_fetch_add(&calls, 1) % 10000;
}

static bool ingress_up(void *arg)
{
	(void)arg;
	return t_http("GET", port, "/healthz", NULL, NULL, NULL) == 200;
}

static int route_body(const char *body, json_t **answer);

/* The ingress answers route requests: its routing table is loaded. */
static bool table_ready(void *arg)
{
	char body[128];
	json_t *d = NULL;
	int status;

	(void)arg;
	snprintf(body, sizeof(body),
	         "{\"to\":\"+16282000001\",\"from\":\"+1415%07ld\"}", caller());
	status = route_body(body, &d);
	json_decref(d);
	return status == 200;
}

static void suite_start(void)
{
	static char pe[64];
	const char *env[] = {pe, "VOX_RATE_READ=1000", "VOX_RATE_ROUTE=1000",
	                     NULL};

	port = t_free_port();
	snprintf(pe, sizeof(pe), "VOX_INGRESS_PORT=%d", port);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	t_account("owner", account, key);
	t_carrier_new(&carrier);
	ingress = t_spawn("ingress", "routing-ingress.log", env);
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
	cr_assert(t_wait_for(table_ready, NULL, 20000),
	          "routing table not loaded");
}

static void suite_stop(void)
{
	int status = t_stop(ingress, SIGTERM, 20000);

	cr_expect_eq(status, 0, "ingress exit status %d", status);
}

TestSuite(routing, .init = suite_start, .fini = suite_stop, .timeout = 60);

static void sql(const char *text, int n, const char *const *params)
{
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	cr_assert_eq(vox_pg_exec(pg, text, n, params, NULL, &err), 0, "%s: %s",
	             text, err.message);
	vox_pg_destroy(pg);
}

static const char *str(const json_t *o, const char *k)
{
	const char *v = vox_json_str(o, k);

	return v ? v : "(null)";
}

static void wait_loaded(const char *e164);

/* An active number of the suite's account (id and e164 out), with a
 * configuration row when routing is not NULL. */
static void number_new(char id[40], char e164[24], const char *routing,
                       const char *hours, const char *voicemail)
{
	vox_pg_t *pg = t_pg();
	vox_error_t err;
	PGresult *res;

	/* 628 then an exchange 200..999: a valid US number */
	snprintf(e164, 24, "+1628%07d", 2000000 + rand() % 8000000);
	const char *params[] = {account, e164, routing, hours ? hours : "{}",
	                        voicemail ? voicemail : "{}"};
	/* one statement: the table never sees the number without its
	 * configuration */
	cr_assert_eq(
	        vox_pg_exec(pg,
	                    "WITH n AS (INSERT INTO numbers (e164, country, "
	                    "area_code, number_type, status, account_id, "
	                    "carrier, purchased_at, activated_at) VALUES ($2, "
	                    "'US', '628', 'local', 'active', $1, 'sandbox', "
	                    "now(), now()) RETURNING id), c AS (INSERT INTO "
	                    "number_configurations (account_id, "
	                    "number_country, number_id, call_forwarding, "
	                    "business_hours, voicemail) SELECT $1, 'US', id, "
	                    "$3::jsonb, $4::jsonb, $5::jsonb FROM n WHERE $3 "
	                    "IS NOT NULL) SELECT id FROM n",
	                    5, params, &res, &err),
	        0, "%s", err.message);
	snprintf(id, 40, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	vox_pg_destroy(pg);
	wait_loaded(e164);
}

/* A route request with this body signed at t by carrier c, to the ingress
 * on port at. */
static int route_signed(int at, const struct t_carrier *c, long long t,
                        const char *body, json_t **answer)
{
	char sig[65], sig_h[128], auth_h[128], *text = NULL;
	const char *headers[] = {auth_h, sig_h,
	                         "Content-Type: application/json", NULL};
	int status;

	snprintf(auth_h, sizeof(auth_h), "Authorization: Bearer %s", c->key);
	t_carrier_sign(c->secret, t, body, sig);
	snprintf(sig_h, sizeof(sig_h), "Vox-Signature: t=%lld,v1=%s", t, sig);
	status = t_http_h("POST", at, "/v1/carrier/calls/route", body, headers,
	                  &text, NULL);
	*answer = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return status;
}

/* A signed route request with this body; a fresh "from" each call would be
 * the caller's: here the body is given whole. */
static int route_body(const char *body, json_t **answer)
{
	return route_signed(port, &carrier, (long long)time(NULL), body,
	                    answer);
}

/* Asks for a call to `to` at `at` (NULL: now) from a caller number unique
 * to this request (so each signature is new). */
static json_t *route(const char *to, const char *at)
{
	char body[256];
	json_t *answer = NULL;
	int status;

	if (at != NULL)
		snprintf(
		        body, sizeof(body),
		        "{\"to\":\"%s\",\"from\":\"+1415%07ld\",\"at\":\"%s\"}",
		        to, caller(), at);
	else
		snprintf(body, sizeof(body),
		         "{\"to\":\"%s\",\"from\":\"+1415%07ld\"}", to,
		         caller());
	status = route_body(body, &answer);
	cr_assert_eq(status, 200, "route %s: %d %s", body, status,
	             str(json_object_get(answer, "error"), "message"));
	cr_assert_not_null(answer);
	return answer;
}

/* Routed: 200 and not number_unknown (503 routing_unavailable while an
 * ingress just started loads its table). */
static bool known(void *arg)
{
	char body[128];
	json_t *d = NULL;
	bool yes;

	snprintf(body, sizeof(body), "{\"to\":\"%s\",\"from\":\"+1415%07ld\"}",
	         (const char *)arg, caller());
	yes = route_body(body, &d) == 200 &&
	      strcmp(str(d, "rule"), "number_unknown") != 0;
	json_decref(d);
	return yes;
}

/* A number made by SQL reaches the table through NOTIFY: wait for it. */
static void wait_loaded(const char *e164)
{
	cr_assert(t_wait_for(known, (void *)e164, 2000),
	          "%s not in the routing table after 2 s", e164);
}

static void expect_decision(json_t *d, const char *action, const char *dest,
                            const char *state, const char *rule)
{
	cr_expect_str_eq(str(d, "action"), action);
	cr_expect_str_eq(str(d, "destination"), dest);
	cr_expect_str_eq(str(d, "state"), state);
	cr_expect_str_eq(str(d, "rule"), rule);
}

static const char routing_full[] =
        "{\"primary_destination\":\"+14155550100\","
        "\"failover_destination\":\"sip:desk@example.com\","
        "\"business_hours_destination\":\"+14155550101\","
        "\"after_hours_destination\":\"+14155550102\",\"timeout_s\":20,"
        "\"enabled\":true}";

Test(routing, open_forwards_to_the_business_hours_destination)
{
	char id[40], e164[24];
	json_t *d;

	number_new(id, e164, routing_full, hours_ny, NULL);
	d = route(e164, AT_OPEN);
	expect_decision(d, "forward", "+14155550101", "open", "weekly:mon#0");
	cr_expect_str_eq(str(d, "failover_destination"),
	                 "sip:desk@example.com");
	cr_expect_eq(json_integer_value(json_object_get(d, "timeout_s")), 20);
	cr_expect_str_eq(str(d, "next_transition_at"), "2026-12-07T22:00:00Z");
	json_decref(d);
}

Test(routing, closed_goes_after_hours_then_voicemail_then_reject)
{
	char id[40], e164[24];
	json_t *d;

	number_new(id, e164, routing_full, hours_ny, NULL);
	d = route(e164, AT_CLOSED);
	expect_decision(d, "forward", "+14155550102", "closed", "default");
	cr_expect_str_eq(str(d, "next_transition_at"), "2026-12-08T14:00:00Z");
	json_decref(d);

	number_new(id, e164,
	           "{\"primary_destination\":\"+14155550100\",\"enabled\":"
	           "true,\"timeout_s\":15}",
	           hours_ny, "{\"enabled\":true}");
	d = route(e164, AT_CLOSED);
	expect_decision(d, "voicemail", "(null)", "closed", "default");
	cr_expect_eq(json_integer_value(json_object_get(d, "timeout_s")), 15);
	json_decref(d);
	d = route(e164, AT_OPEN); /* no business-hours destination: primary */
	expect_decision(d, "forward", "+14155550100", "open", "weekly:mon#0");
	json_decref(d);

	number_new(id, e164, "{\"primary_destination\":\"+14155550100\"}",
	           hours_ny, "{\"enabled\":false}");
	d = route(e164, AT_CLOSED);
	expect_decision(d, "reject", "(null)", "closed", "default");
	json_decref(d);
}

Test(routing, holiday)
{
	char id[40], e164[24];
	json_t *d;

	number_new(id, e164, routing_full, hours_ny, NULL);
	d = route(e164, AT_HOLIDAY);
	expect_decision(d, "forward", "+14155550102", "holiday", "override:0");
	cr_expect_str_eq(str(d, "next_transition_at"), "2026-12-26T05:00:00Z");
	json_decref(d);
}

Test(routing, disabled_unconfigured_unknown_are_rejected)
{
	char id[40], e164[24];
	json_t *d;

	number_new(id, e164,
	           "{\"primary_destination\":\"+14155550100\",\"enabled\":"
	           "false}",
	           NULL, "{\"enabled\":true}");
	d = route(e164, AT_OPEN);
	expect_decision(d, "reject", "(null)", "open", "routing_disabled");
	json_decref(d);

	number_new(id, e164, NULL, NULL, NULL); /* no configuration row */
	d = route(e164, NULL);
	expect_decision(d, "reject", "(null)", "open",
	                "routing_not_configured");
	cr_expect(json_is_null(json_object_get(d, "next_transition_at")));
	json_decref(d);

	d = route("+16282000001", NULL); /* not one of ours (or not active) */
	expect_decision(d, "reject", "(null)", "(null)", "number_unknown");
	cr_expect(json_is_null(json_object_get(d, "state")));
	json_decref(d);
}

Test(routing, activation_document_forwards_always)
{
	char id[40], e164[24];
	json_t *d;

	number_new(id, e164, "{\"forward_to\":\"+14155550199\"}", NULL, NULL);
	d = route(e164, NULL);
	expect_decision(d, "forward", "+14155550199", "open", "default");
	cr_expect_eq(json_integer_value(json_object_get(d, "timeout_s")), 30);
	json_decref(d);
}

struct change {
	const char *e164, *want_rule, *want_dest;
};

static bool decision_is(void *arg)
{
	struct change *c = arg;
	json_t *d = route(c->e164, AT_OPEN);
	bool done = strcmp(str(d, "rule"), c->want_rule) == 0 &&
	            strcmp(str(d, "destination"), c->want_dest) == 0;

	json_decref(d);
	return done;
}

Test(routing, changes_reach_the_table_through_notify)
{
	char id[40], e164[24];
	struct change c = {e164, "weekly:mon#0", "+14155550101"};
	int64_t t0;

	number_new(id, e164, routing_full, hours_ny, NULL);
	cr_assert(t_wait_for(decision_is, &c, 2000), "new number not routed");

	const char *p1[] = {id};
	t0 = vox_mono_ms();
	sql("UPDATE number_configurations SET call_forwarding = "
	    "call_forwarding || '{\"business_hours_destination\": "
	    "\"+14155550177\"}', version = version + 1 WHERE number_id = $1",
	    1, p1);
	c.want_dest = "+14155550177";
	cr_assert(t_wait_for(decision_is, &c, 2000),
	          "configuration change not seen within 2 s");
	cr_log_info("configuration change seen after %lld ms",
	            (long long)(vox_mono_ms() - t0));

	sql("UPDATE number_configurations SET business_hours = '{}' WHERE "
	    "number_id = $1",
	    1, p1);
	c.want_rule = "default";
	cr_assert(t_wait_for(decision_is, &c, 2000),
	          "business hours removal not seen within 2 s");

	sql("UPDATE numbers SET status = 'suspended' WHERE id = $1", 1, p1);
	c.want_rule = "number_unknown";
	c.want_dest = "(null)";
	cr_assert(t_wait_for(decision_is, &c, 2000),
	          "deactivation not seen within 2 s");
	sql("UPDATE numbers SET status = 'active' WHERE id = $1", 1, p1);
	c.want_rule = "default";
	c.want_dest = "+14155550177";
	cr_assert(t_wait_for(decision_is, &c, 2000),
	          "reactivation not seen within 2 s");
}

/* Dunning (docs/BILLING.md): a billing hold rejects the number's calls
 * with rule billing_suspended before any configuration check, the number
 * keeping its status and configuration; clearing it routes it again; a
 * number that leaves the account loses its hold (migration 0031). */
Test(routing, billing_hold_rejects_then_lifts)
{
	char id[40], e164[24];
	struct change c = {e164, "weekly:mon#0", "+14155550101"};
	vox_pg_t *pg = t_pg();
	json_t *d;

	number_new(id, e164, routing_full, hours_ny, NULL);
	cr_assert(t_wait_for(decision_is, &c, 2000), "new number not routed");

	const char *p1[] = {id};
	sql("UPDATE numbers SET billing_hold_at = now() WHERE id = $1", 1, p1);
	c.want_rule = "billing_suspended";
	c.want_dest = "(null)";
	cr_assert(t_wait_for(decision_is, &c, 2000),
	          "billing hold not seen within 2 s");
	d = route(e164, AT_OPEN);
	expect_decision(d, "reject", "(null)", "open", "billing_suspended");
	/* nothing of the configuration applies: no failover, no timeout */
	cr_expect(json_is_null(json_object_get(d, "failover_destination")));
	cr_expect(json_is_null(json_object_get(d, "timeout_s")));
	cr_expect_str_eq(str(d, "next_transition_at"), "2026-12-07T22:00:00Z");
	json_decref(d);
	/* held whatever the time and the configuration */
	d = route(e164, AT_HOLIDAY);
	expect_decision(d, "reject", "(null)", "holiday", "billing_suspended");
	json_decref(d);
	cr_expect_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM numbers WHERE id = $1 "
	                        "AND status = 'active'",
	                        id),
	             1, "the hold changed the number's status");

	sql("UPDATE numbers SET billing_hold_at = NULL WHERE id = $1", 1, p1);
	c.want_rule = "weekly:mon#0";
	c.want_dest = "+14155550101";
	cr_assert(t_wait_for(decision_is, &c, 2000),
	          "hold lifted not seen within 2 s");

	/* held, then released to the pool: the hold goes with the account */
	sql("UPDATE numbers SET billing_hold_at = now() WHERE id = $1", 1, p1);
	sql("UPDATE numbers SET status = 'available', account_id = NULL WHERE "
	    "id = $1",
	    1, p1);
	cr_expect_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM numbers WHERE id = $1 "
	                        "AND billing_hold_at IS NULL",
	                        id),
	             1, "a released number kept its billing hold");
	vox_pg_destroy(pg);
}

Test(routing, bad_signature_replay_and_bad_body)
{
	char sig_h[160], auth_h[128], *text = NULL, body[128];
	long long t = (long long)time(NULL);
	const char *headers[] = {auth_h, sig_h,
	                         "Content-Type: application/json", NULL};
	json_t *answer = NULL;
	int status;

	snprintf(auth_h, sizeof(auth_h), "Authorization: Bearer %s",
	         carrier.key);
	snprintf(sig_h, sizeof(sig_h), "Vox-Signature: t=%lld,v1=%064d", t, 0);
	status = t_http_h("POST", port, "/v1/carrier/calls/route",
	                  "{\"to\":\"+16282000001\",\"from\":\"\"}", headers,
	                  &text, NULL);
	cr_expect_eq(status, 401);
	cr_expect(text && strstr(text, "invalid_signature"), "%s", text);
	free(text);
	text = NULL;
	status = t_http_h(
	        "POST", port, "/v1/carrier/calls/route",
	        "{\"to\":\"+16282000001\",\"from\":\"\"}",
	        (const char *const[]){"Content-Type: application/json", NULL},
	        &text, NULL);
	cr_expect_eq(status, 401);
	cr_expect(text && strstr(text, "missing_credentials"), "%s", text);
	free(text);

	/* the same signed request twice: the second is a replay */
	snprintf(body, sizeof(body),
	         "{\"to\":\"+16282000001\",\"from\":\"+1415%07ld\"}", caller());
	status = route_body(body, &answer);
	cr_expect_eq(status, 200, "%d %s", status,
	             str(json_object_get(answer, "error"), "message"));
	json_decref(answer);
	cr_expect_eq(route_body(body, &answer), 401);
	cr_expect_str_eq(str(json_object_get(answer, "error"), "code"),
	                 "replayed_request");
	json_decref(answer);

	static const char *const bad[] = {
	        "{\"to\":\"6280000001\",\"from\":\"x\"}",
	        "{\"to\":\"+16282000001\"}",
	        "{\"to\":\"+16282000001\",\"from\":\"x\",\"at\":\"yesterday\"}",
	        "{\"to\":\"+16282000001\",\"from\":\"x\",\"extra\":1}",
	        "[1]",
	        "{\"to\":"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		status = route_body(bad[i], &answer);
		cr_expect_eq(status, 400, "%s: %d", bad[i], status);
		json_decref(answer);
	}
	/* a refused request did not use its signature up: sent again as it
	 * is, it is refused for its body again, not as a replay */
	t = (long long)time(NULL);
	for (int i = 0; i < 2; i++) {
		status = route_signed(port, &carrier, t, bad[1], &answer);
		cr_expect_eq(status, 400, "attempt %d: %d %s", i + 1, status,
		             str(json_object_get(answer, "error"), "code"));
		json_decref(answer);
	}
}

struct routed_by {
	int port;
	const struct t_carrier *c;
	int status;
	char code[40];
};

/* One fresh signed request to r->port as r->c: status and error code. */
static bool route_once(void *arg)
{
	struct routed_by *r = arg;
	char body[128];
	json_t *d = NULL;

	snprintf(body, sizeof(body),
	         "{\"to\":\"+16282000001\",\"from\":\"+1415%07ld\"}", caller());
	r->status =
	        route_signed(r->port, r->c, (long long)time(NULL), body, &d);
	snprintf(r->code, sizeof(r->code), "%s",
	         str(json_object_get(d, "error"), "code"));
	json_decref(d);
	return r->status == 200;
}

static bool port_up(void *arg)
{
	return t_http("GET", *(int *)arg, "/healthz", NULL, NULL, NULL) == 200;
}

/* Without Redis no replay check can be made: refused 503 (fail closed),
 * and nothing was recorded: the same request is taken where Redis is. */
Test(routing, redis_down_is_503_and_the_same_request_goes_through_later)
{
	static char pe[64];
	const char *env[] = {pe, "VOX_RATE_ROUTE=1000",
	                     "VOX_REDIS_URL=redis://127.0.0.1:1", NULL};
	char body[128];
	json_t *d = NULL;
	long long t = (long long)time(NULL);
	int dead_port = t_free_port(), status;
	pid_t dead;

	snprintf(pe, sizeof(pe), "VOX_INGRESS_PORT=%d", dead_port);
	dead = t_spawn("ingress", "routing-ingress-noredis.log", env);
	cr_assert(t_wait_for(port_up, &dead_port, 20000), "ingress not up");
	snprintf(body, sizeof(body),
	         "{\"to\":\"+16282000001\",\"from\":\"+1415%07ld\"}", caller());
	status = route_signed(dead_port, &carrier, t, body, &d);
	cr_expect_eq(t_stop(dead, SIGTERM, 20000), 0);
	cr_expect_eq(status, 503, "no Redis: %d", status);
	cr_expect_str_eq(str(json_object_get(d, "error"), "code"),
	                 "replay_store_unavailable");
	json_decref(d);
	status = route_signed(port, &carrier, t, body, &d);
	cr_expect_eq(status, 200, "with Redis: %d", status);
	json_decref(d);
}

static bool refused(void *arg)
{
	return !route_once(arg) && ((struct routed_by *)arg)->status == 401;
}

/* The ingress caches carrier credentials: a revocation reaches it through
 * NOTIFY vox_carriers, not at the cache entry's expiry (60 s). */
Test(routing, a_revoked_credential_is_refused_right_after_voxctl_carrier_revoke)
{
	struct t_carrier c;
	struct routed_by r = {port, &c, 0, ""};
	char cmd[512];
	int64_t revoked_us, refused_us;

	t_carrier_new(&c);
	/* twice: the second is answered from the cache */
	for (int i = 0; i < 2; i++)
		cr_assert(route_once(&r), "before revoking: %d %s", r.status,
		          r.code);
	snprintf(cmd, sizeof(cmd), "%s/voxctl carrier revoke %s >/dev/null",
	         t_env("VOX_BIN_DIR"), c.id);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	revoked_us = vox_mono_us();
	cr_assert(t_wait_for(refused, &r, 1000),
	          "revoked credential still accepted after 1 s: %d", r.status);
	refused_us = vox_mono_us();
	cr_expect_str_eq(r.code, "invalid_credentials");
	cr_log_info("refused %lld ms after voxctl returned",
	            (long long)(refused_us - revoked_us) / 1000);
	/* and stays refused (a negative answer, not a lost entry) */
	cr_expect(!route_once(&r) && r.status == 401, "%d", r.status);
}

/* Every ingress instance shares the replay store (Redis): a signed request
 * taken by one is a replay at another. */
Test(routing, a_replay_to_a_second_ingress_is_refused_too)
{
	static char pe[64];
	const char *env[] = {pe, "VOX_RATE_READ=1000", "VOX_RATE_ROUTE=1000",
	                     NULL};
	struct routed_by second = {0, &carrier, 0, ""};
	char body[128];
	json_t *d = NULL;
	long long t = (long long)time(NULL);
	pid_t other;
	int status;

	second.port = t_free_port();
	snprintf(pe, sizeof(pe), "VOX_INGRESS_PORT=%d", second.port);
	other = t_spawn("ingress", "routing-ingress-2.log", env);
	cr_assert(t_wait_for(route_once, &second, 20000),
	          "second ingress not routing: %d %s", second.status,
	          second.code);
	for (int first = 0; first < 2; first++) {
		int ports[2] = {port, second.port};

		snprintf(body, sizeof(body),
		         "{\"to\":\"+16282000001\",\"from\":\"+1415%07ld\"}",
		         caller());
		status = route_signed(ports[first], &carrier, t, body, &d);
		cr_expect_eq(status, 200, "first at %d: %d", ports[first],
		             status);
		json_decref(d);
		status = route_signed(ports[1 - first], &carrier, t, body, &d);
		cr_expect_eq(status, 401, "replay at %d: %d", ports[1 - first],
		             status);
		cr_expect_str_eq(str(json_object_get(d, "error"), "code"),
		                 "replayed_request");
		json_decref(d);
	}
	cr_expect_eq(t_stop(other, SIGTERM, 20000), 0);
}

static int preview(const char *bearer_key, const char *id, const char *query,
                   json_t **answer)
{
	char path[256], auth_h[128], *text = NULL;
	const char *headers[] = {auth_h, NULL};
	int status;

	snprintf(auth_h, sizeof(auth_h), "Authorization: Bearer %s",
	         bearer_key);
	snprintf(path, sizeof(path), "/v1/numbers/%s/business-hours/preview%s",
	         id, query);
	status = t_http_h("GET", port, path, NULL, headers, &text, NULL);
	*answer = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return status;
}

Test(routing, preview_across_spring_forward)
{
	static const char daily[] =
	        "{\"time_zone\":\"America/New_York\",\"weekly\":{"
	        "\"fri\":[{\"open\":\"09:00\",\"close\":\"17:00\"}],"
	        "\"sat\":[{\"open\":\"09:00\",\"close\":\"17:00\"}],"
	        "\"sun\":[{\"open\":\"09:00\",\"close\":\"17:00\"}]}}";
	static const char *const want[][4] = {
	        {"2026-03-06T14:00:00Z", "2026-03-06T09:00:00-05:00", "open",
	         "weekly:fri#0"},
	        {"2026-03-06T22:00:00Z", "2026-03-06T17:00:00-05:00", "closed",
	         "default"},
	        {"2026-03-07T14:00:00Z", "2026-03-07T09:00:00-05:00", "open",
	         "weekly:sat#0"},
	        {"2026-03-07T22:00:00Z", "2026-03-07T17:00:00-05:00", "closed",
	         "default"},
	        {"2026-03-08T13:00:00Z", "2026-03-08T09:00:00-04:00", "open",
	         "weekly:sun#0"},
	        {"2026-03-08T21:00:00Z", "2026-03-08T17:00:00-04:00", "closed",
	         "default"},
	};
	char id[40], e164[24], other_account[40], other_key[64], reader[64];
	json_t *answer, *list;

	number_new(id, e164, routing_full, daily, NULL);
	t_key(account, "viewer", reader, NULL);
	cr_assert_eq(preview(reader, id, "?from=2026-03-06T05:00:00Z&days=4",
	                     &answer),
	             200);
	cr_expect_str_eq(str(answer, "time_zone"), "America/New_York");
	cr_expect_str_eq(str(answer, "state"), "closed");
	cr_expect_eq(json_integer_value(json_object_get(answer, "days")), 4);
	list = json_object_get(answer, "transitions");
	cr_assert_eq(json_array_size(list), 6, "%zu transitions",
	             json_array_size(list));
	for (size_t i = 0; i < 6; i++) {
		json_t *t = json_array_get(list, i);

		cr_expect_str_eq(str(t, "at"), want[i][0]);
		cr_expect_str_eq(str(t, "local"), want[i][1]);
		cr_expect_str_eq(str(t, "state"), want[i][2]);
		cr_expect_str_eq(str(t, "rule"), want[i][3]);
	}
	json_decref(answer);

	cr_expect_eq(preview(key, id, "?days=0", &answer), 400);
	json_decref(answer);
	cr_expect_eq(preview(key, id, "?days=32", &answer), 400);
	json_decref(answer);
	cr_expect_eq(preview(key, id, "?from=tomorrow", &answer), 400);
	json_decref(answer);
	cr_expect_eq(preview(key, "00000000-0000-7000-8000-000000000000", "",
	                     &answer),
	             404);
	json_decref(answer);
	t_account("owner", other_account, other_key);
	cr_expect_eq(preview(other_key, id, "", &answer), 404);
	json_decref(answer);

	/* no business hours: always open, nothing to list */
	number_new(id, e164, routing_full, NULL, NULL);
	cr_assert_eq(preview(key, id, "", &answer), 200);
	cr_expect_str_eq(str(answer, "state"), "open");
	cr_expect_str_eq(str(answer, "rule"), "default");
	cr_expect_eq(json_array_size(json_object_get(answer, "transitions")),
	             0);
	json_decref(answer);
}
