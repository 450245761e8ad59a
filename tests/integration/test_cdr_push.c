/*
 * POST /v1/carrier/cdrs against the real stack: carrier keys and signed
 * requests (missing, wrong, stale both ways, replayed, revoked), records
 * checked one by one, JSON arrays and NDJSON, the limits, and the records
 * on vox.cdr.raw keyed by our number; signing secrets sealed at rest
 * (voxctl carrier create with VOX_ENCRYPTION_KEY, voxctl carrier seal, a
 * rotated key) and the 503 of an ingress that cannot open them. One
 * ingress for the suite (no encryption key), plus one pointed at a dead
 * broker for the 503 path and ones with encryption keys.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "carrier_helpers.h"
#include "helpers.h"
#include "vox_auth.h"
#include "vox_cdr.h"
#include "vox_crypto.h"
#include "vox_json.h"
#include "vox_uuid.h"

/* Two encryption keys (ids 5 and 6) for sealed signing secrets. */
#define ENC_KEY                                                                \
	"5:9a0c3e5f7b1d2f4a6c8e0b2d4f6a8c0e1f3b5d7f9a1c3e5b7d9f0a2c4e6b8d0f"
#define ENC_KEY2                                                               \
	"6:0f1e2d3c4b5a69788796a5b4c3d2e1f00123456789abcdeffedcba9876543210"

static int port;
static pid_t ingress;

static bool ingress_up(void *arg)
{
	return t_http("GET", *(int *)arg, "/healthz", NULL, NULL, NULL) == 200;
}

/* extra: NULL-terminated settings on top of the suite's. */
static pid_t start_ingress(int *at, const char *const *extra)
{
	char pe[64];
	const char *env[8] = {pe, "VOX_RATE_COMMAND=1000",
	                      "VOX_RATE_READ=1000"};
	pid_t pid;

	*at = t_free_port();
	snprintf(pe, sizeof(pe), "VOX_INGRESS_PORT=%d", *at);
	for (int i = 0; extra != NULL && extra[i] != NULL && i < 4; i++)
		env[3 + i] = extra[i];
	pid = t_spawn("ingress", "cdr-push-ingress.log", env);
	cr_assert(t_wait_for(ingress_up, at, 20000), "ingress not up");
	return pid;
}

static void suite_start(void)
{
	ingress = start_ingress(&port, NULL);
}

static void suite_stop(void)
{
	int status = t_stop(ingress, SIGTERM, 20000);

	cr_expect_eq(status, 0, "ingress exit status %d", status);
}

/* POSTs body signed with (t, secret) unless signature is given ("" sends
 * no Vox-Signature header); authorization NULL sends none. */
static int push_raw(int at, const char *authorization, const char *signature,
                    const char *content_type, const char *body, json_t **answer)
{
	char auth_h[128], sig_h[512], ct_h[96], *text = NULL;
	const char *headers[4] = {NULL};
	int n = 0, status;

	if (authorization != NULL) {
		snprintf(auth_h, sizeof(auth_h), "Authorization: %s",
		         authorization);
		headers[n++] = auth_h;
	}
	if (signature != NULL && *signature != '\0') {
		snprintf(sig_h, sizeof(sig_h), "Vox-Signature: %s", signature);
		headers[n++] = sig_h;
	}
	snprintf(ct_h, sizeof(ct_h), "Content-Type: %s", content_type);
	headers[n++] = ct_h;
	status = t_http_h("POST", at, "/v1/carrier/cdrs", body, headers, &text,
	                  NULL);
	if (answer != NULL)
		*answer = json_loads(text, 0, NULL);
	free(text);
	return status;
}

/* A correctly signed push at time t (0: now) to the ingress at port at. */
static int push_signed(int at, const struct t_carrier *c, long long t,
                       const char *content_type, const char *body,
                       json_t **answer)
{
	char bearer[80], sig[65], header[128];

	if (t == 0)
		t = (long long)time(NULL);
	snprintf(bearer, sizeof(bearer), "Bearer %s", c->key);
	t_carrier_sign(c->secret, t, body, sig);
	snprintf(header, sizeof(header), "t=%lld,v1=%s", t, sig);
	return push_raw(at, bearer, header, content_type, body, answer);
}

/* A correctly signed push at time t (0: now) to the suite's ingress. */
static int push_at(const struct t_carrier *c, long long t,
                   const char *content_type, const char *body, json_t **answer)
{
	return push_signed(port, c, t, content_type, body, answer);
}

static int push(const struct t_carrier *c, const char *body, json_t **answer)
{
	return push_at(c, 0, "application/json", body, answer);
}

static const char *error_code(const json_t *answer)
{
	return vox_json_str(json_object_get(answer, "error"), "code");
}

static void expect_401(int status, json_t *answer, const char *code)
{
	cr_expect_eq(status, 401, "status %d, wanted 401 %s", status, code);
	cr_expect_str_eq(error_code(answer) ? error_code(answer) : "(none)",
	                 code);
	json_decref(answer);
}

/* A record of type at now (minus 60 s), for our number. */
static void record(char *out, size_t outlen, const char *id, const char *type,
                   const char *number)
{
	char when[40];

	vox_rfc3339_format(((int64_t)time(NULL) - 60) * 1000000, when,
	                   sizeof(when));
	if (strstr(type, "call"))
		snprintf(out, outlen,
		         "{\"id\":\"%s\",\"type\":\"%s\",\"from\":\"%s\","
		         "\"to\":\"%s\",\"started_at\":\"%s\",\"duration_s\":"
		         "42}",
		         id, type,
		         strcmp(type, "inbound_call") == 0 ? "+14155550100"
		                                           : number,
		         strcmp(type, "inbound_call") == 0 ? number
		                                           : "+14155550100",
		         when);
	else
		snprintf(out, outlen,
		         "{\"id\":\"%s\",\"type\":\"%s\",\"from\":\"%s\","
		         "\"to\":\"%s\",\"started_at\":\"%s\"}",
		         id, type,
		         strcmp(type, "sms_received") == 0 ? "anonymous"
		                                           : number,
		         strcmp(type, "sms_received") == 0 ? number
		                                           : "+442079460000",
		         when);
}

/* ---- reading vox.cdr.raw with the message keys */

struct seen {
	const char *carrier;
	int found;
	char ids[8][64], keys[8][32], vias[8][8];
};

static void seen_message(struct seen *s, const rd_kafka_message_t *m)
{
	json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
	json_t *data = json_object_get(ev, "data");
	const char *carrier = vox_json_str(data, "carrier");

	if (carrier != NULL && strcmp(carrier, s->carrier) == 0 &&
	    s->found < 8 &&
	    strcmp(vox_json_str(ev, "type"), VOX_CDR_EVENT_TYPE) == 0) {
		snprintf(s->ids[s->found], 64, "%s", vox_json_str(data, "id"));
		snprintf(s->keys[s->found], 32, "%.*s", (int)m->key_len,
		         (const char *)m->key);
		snprintf(s->vias[s->found], 8, "%s",
		         vox_json_str(data, "received_via"));
		s->found++;
	}
	json_decref(ev);
}

/* Reads vox.cdr.raw from the start until want records of the carrier
 * arrived and nothing came for 1 s (at most 30 s). */
static void read_cdr_topic(struct seen *s, int want)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *subs;
	char group[64], errstr[256], id[VOX_UUID_STRLEN];
	rd_kafka_t *rk;
	int idle = 0;

	vox_uuid7(id);
	snprintf(group, sizeof(group), "t-cdr-%s", id);
	rd_kafka_conf_set(conf, "bootstrap.servers", t_env("VOX_KAFKA_BROKERS"),
	                  errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr,
	                  sizeof(errstr));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
	                  sizeof(errstr));
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	cr_assert_not_null(rk, "%s", errstr);
	rd_kafka_poll_set_consumer(rk);
	subs = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(subs, VOX_CDR_TOPIC,
	                                  RD_KAFKA_PARTITION_UA);
	rd_kafka_subscribe(rk, subs);
	rd_kafka_topic_partition_list_destroy(subs);
	/* wall-clock time: the topic holds every earlier test's records
	 * (cdr_import writes tens of thousands), read at full speed */
	time_t start = time(NULL);

	while (time(NULL) - start < 30 && (s->found < want || idle < 1000)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

		if (m == NULL || m->err) {
			idle += 100;
			if (m)
				rd_kafka_message_destroy(m);
			continue;
		}
		idle = 0;
		seen_message(s, m);
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

TestSuite(cdr_push, .init = suite_start, .fini = suite_stop, .timeout = 120);

Test(cdr_push, signed_push_is_accepted_and_on_the_topic_keyed_by_number)
{
	struct t_carrier c;
	struct seen s = {0};
	char r1[512], r2[512], body[1100];
	json_t *answer;
	int status;

	t_carrier_new(&c);
	record(r1, sizeof(r1), "call-1", "inbound_call", "+14155550123");
	record(r2, sizeof(r2), "sms-1", "sms_sent", "+14155550199");
	snprintf(body, sizeof(body), "[%s,%s]", r1, r2);
	status = push(&c, body, &answer);
	cr_assert_eq(status, 202, "status %d", status);
	cr_expect_eq(json_integer_value(json_object_get(answer, "accepted")),
	             2);
	cr_expect_eq(json_integer_value(json_object_get(answer, "rejected")),
	             0);
	cr_expect_eq(json_array_size(json_object_get(answer, "errors")), 0);
	json_decref(answer);

	s.carrier = c.name;
	read_cdr_topic(&s, 2);
	cr_assert_eq(s.found, 2, "found %d records of %s", s.found, c.name);
	for (int i = 0; i < 2; i++) {
		bool call = strcmp(s.ids[i], "call-1") == 0;

		cr_expect(call || strcmp(s.ids[i], "sms-1") == 0, "%s",
		          s.ids[i]);
		cr_expect_str_eq(s.keys[i],
		                 call ? "+14155550123" : "+14155550199");
		cr_expect_str_eq(s.vias[i], "api");
	}
}

Test(cdr_push, credentials_are_checked)
{
	struct t_carrier c;
	char bearer[80], account[40], api_key[64], path_key[128];
	const char *headers[2] = {path_key, NULL};
	vox_pg_t *pg;
	vox_error_t err;
	int status;

	t_carrier_new(&c);
	{
		json_t *a;

		status = push_raw(port, NULL, "t=1,v1=00", "application/json",
		                  "[]", &a);
		expect_401(status, a, "missing_credentials");
		status = push_raw(port, "Basic abc", NULL, "application/json",
		                  "[]", &a);
		expect_401(status, a, "invalid_credentials");
		status = push_raw(
		        port,
		        "Bearer voxc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		        "AAAAAAA",
		        NULL, "application/json", "[]", &a);
		expect_401(status, a, "invalid_credentials");
		/* an account's API key is not a carrier key */
		t_account("owner", account, api_key);
		snprintf(bearer, sizeof(bearer), "Bearer %s", api_key);
		status = push_raw(port, bearer, NULL, "application/json", "[]",
		                  &a);
		expect_401(status, a, "invalid_credentials");
	}
	/* and a carrier key is not an account credential */
	snprintf(path_key, sizeof(path_key), "Authorization: Bearer %s", c.key);
	status =
	        t_http_h("GET", port, "/v1/account", NULL, headers, NULL, NULL);
	cr_expect_eq(status, 401, "carrier key on /v1/account: %d", status);

	/* revoked */
	pg = t_pg();
	cr_assert_eq(vox_pg_exec(pg,
	                         "UPDATE carrier_credentials SET status = "
	                         "'revoked', revoked_at = now() WHERE id = $1",
	                         1, (const char *[]){c.id}, NULL, &err),
	             0, "%s", err.message);
	vox_pg_destroy(pg);
	{
		json_t *a;

		status = push(&c, "[]", &a);
		expect_401(status, a, "invalid_credentials");
	}
}

Test(cdr_push, signatures_are_checked)
{
	struct t_carrier c;
	char bearer[80], sig[65], header[256];
	long long now = (long long)time(NULL);
	json_t *a;
	int status;

	t_carrier_new(&c);
	snprintf(bearer, sizeof(bearer), "Bearer %s", c.key);
	status = push_raw(port, bearer, "", "application/json", "[]", &a);
	expect_401(status, a, "missing_signature");
	status = push_raw(port, bearer, "v1=abc", "application/json", "[]", &a);
	expect_401(status, a, "invalid_signature");
	/* t must be plain digits: the signature covers its text */
	t_carrier_sign(c.secret, now, "[]", sig);
	snprintf(header, sizeof(header), "t=%lldx,v1=%s", now, sig);
	status = push_raw(port, bearer, header, "application/json", "[]", &a);
	expect_401(status, a, "invalid_signature");
	snprintf(header, sizeof(header), "t=0%lld,v1=%s", now, sig);
	status = push_raw(port, bearer, header, "application/json", "[]", &a);
	expect_401(status, a, "invalid_signature");
	/* signed with another secret */
	t_carrier_sign("another-secret-0123456789", now, "[]", sig);
	snprintf(header, sizeof(header), "t=%lld,v1=%s", now, sig);
	status = push_raw(port, bearer, header, "application/json", "[]", &a);
	expect_401(status, a, "invalid_signature");
	/* signed over another body */
	t_carrier_sign(c.secret, now, "[ ]", sig);
	snprintf(header, sizeof(header), "t=%lld,v1=%s", now, sig);
	status = push_raw(port, bearer, header, "application/json", "[]", &a);
	expect_401(status, a, "invalid_signature");
	/* stale, both directions */
	status = push_at(&c, now - 400, "application/json", "[]", &a);
	expect_401(status, a, "stale_timestamp");
	status = push_at(&c, now + 400, "application/json", "[]", &a);
	expect_401(status, a, "stale_timestamp");
	/* several v1: any match passes (a secret being rotated) */
	t_carrier_sign(c.secret, now, "[]", sig);
	snprintf(header, sizeof(header), "t=%lld,v1=%064d,v1=%s", now, 0, sig);
	status = push_raw(port, bearer, header, "application/json", "[]", &a);
	cr_expect_eq(status, 202, "two v1 entries: %d", status);
	json_decref(a);
}

Test(cdr_push, a_replayed_request_is_refused)
{
	struct t_carrier c;
	char bearer[80], sig[65], header[128], r1[512], body[600];
	long long now = (long long)time(NULL);
	json_t *a;
	int status;

	t_carrier_new(&c);
	record(r1, sizeof(r1), "replay-1", "outbound_call", "+14155550123");
	snprintf(body, sizeof(body), "[%s]", r1);
	snprintf(bearer, sizeof(bearer), "Bearer %s", c.key);
	t_carrier_sign(c.secret, now, body, sig);
	snprintf(header, sizeof(header), "t=%lld,v1=%s", now, sig);
	status = push_raw(port, bearer, header, "application/json", body, &a);
	cr_assert_eq(status, 202, "first: %d", status);
	json_decref(a);
	status = push_raw(port, bearer, header, "application/json", body, &a);
	expect_401(status, a, "replayed_request");
}

Test(cdr_push, each_record_gets_its_own_reason)
{
	struct t_carrier c;
	char good[512], body[2048], when[40];
	json_t *a, *errors;
	int status;

	t_carrier_new(&c);
	record(good, sizeof(good), "mix-ok", "sms_received", "+14155550123");
	vox_rfc3339_format(((int64_t)time(NULL) + 3600) * 1000000, when,
	                   sizeof(when));
	snprintf(body, sizeof(body),
	         "[%s, {\"id\":\"mix-type\",\"type\":\"fax\"}, 7,"
	         " {\"id\":\"mix-num\",\"type\":\"inbound_call\","
	         "\"from\":\"+14155550100\",\"to\":\"12\","
	         "\"started_at\":\"2026-01-01T00:00:00Z\",\"duration_s\":1},"
	         " {\"id\":\"mix-future\",\"type\":\"sms_sent\","
	         "\"from\":\"+14155550123\",\"to\":\"+14155550100\","
	         "\"started_at\":\"%s\"}]",
	         good, when);
	status = push(&c, body, &a);
	cr_assert_eq(status, 202, "status %d", status);
	cr_expect_eq(json_integer_value(json_object_get(a, "accepted")), 1);
	cr_expect_eq(json_integer_value(json_object_get(a, "rejected")), 4);
	errors = json_object_get(a, "errors");
	cr_assert_eq(json_array_size(errors), 4);
	{
		static const struct {
			int index;
			const char *id, *code;
		} want[] = {{1, "mix-type", "invalid_type"},
		            {2, NULL, "not_an_object"},
		            {3, "mix-num", "invalid_number"},
		            {4, "mix-future", "started_at_in_future"}};

		for (size_t i = 0; i < 4; i++) {
			json_t *e = json_array_get(errors, i);

			cr_expect_eq(
			        json_integer_value(json_object_get(e, "index")),
			        want[i].index);
			if (want[i].id)
				cr_expect_str_eq(vox_json_str(e, "id"),
				                 want[i].id);
			else
				cr_expect(
				        json_is_null(json_object_get(e, "id")));
			cr_expect_str_eq(vox_json_str(e, "code"), want[i].code,
			                 "index %d: %s", want[i].index,
			                 vox_json_str(e, "code"));
			cr_expect_not_null(vox_json_str(e, "message"));
		}
	}
	json_decref(a);
}

Test(cdr_push, ndjson_lines_blank_lines_and_a_line_that_is_not_json)
{
	struct t_carrier c;
	char r1[512], r2[512], body[1200];
	json_t *a, *e;
	int status;

	t_carrier_new(&c);
	record(r1, sizeof(r1), "nd-1", "inbound_call", "+14155550123");
	record(r2, sizeof(r2), "nd-2", "sms_sent", "+14155550123");
	snprintf(body, sizeof(body), "%s\n\n  \r\n{not json\n%s\r\n", r1, r2);
	status = push_at(&c, 0, "application/x-ndjson", body, &a);
	cr_assert_eq(status, 202, "status %d", status);
	cr_expect_eq(json_integer_value(json_object_get(a, "accepted")), 2);
	cr_expect_eq(json_integer_value(json_object_get(a, "rejected")), 1);
	e = json_array_get(json_object_get(a, "errors"), 0);
	cr_expect_eq(json_integer_value(json_object_get(e, "index")), 1);
	cr_expect_str_eq(vox_json_str(e, "code"), "invalid_json");
	json_decref(a);
}

Test(cdr_push, an_empty_array_is_accepted_with_nothing_in_it)
{
	struct t_carrier c;
	json_t *a;
	int status;

	t_carrier_new(&c);
	status = push(&c, "[]", &a);
	cr_assert_eq(status, 202, "status %d", status);
	cr_expect_eq(json_integer_value(json_object_get(a, "accepted")), 0);
	cr_expect_eq(json_integer_value(json_object_get(a, "rejected")), 0);
	json_decref(a);
}

Test(cdr_push, bodies_over_the_limits_get_413)
{
	struct t_carrier c;
	size_t n = 10001, len = 2 + n * 3;
	char *body = malloc(8u * 1024 * 1024 + 64);
	json_t *a;
	int status;

	t_carrier_new(&c);
	cr_assert_not_null(body);
	body[0] = '[';
	for (size_t i = 0; i < n; i++)
		memcpy(body + 1 + i * 3, i + 1 < n ? "{}," : "{} ", 3);
	body[len - 1] = ']';
	body[len] = '\0';
	status = push(&c, body, &a);
	cr_expect_eq(status, 413, "10,001 records: %d", status);
	cr_expect_str_eq(error_code(a) ? error_code(a) : "",
	                 "too_many_records");
	json_decref(a);

	/* 10,000 records of {} are fine: each is rejected on its own */
	memcpy(body + 1 + (n - 2) * 3, "{}]", 4);
	status = push(&c, body, &a);
	cr_expect_eq(status, 202, "10,000 records: %d", status);
	cr_expect_eq(json_integer_value(json_object_get(a, "rejected")), 10000);
	json_decref(a);

	/* over the byte cap (8 MiB) */
	memset(body, ' ', 8u * 1024 * 1024 + 8);
	body[0] = '[';
	body[8u * 1024 * 1024 + 8] = ']';
	body[8u * 1024 * 1024 + 9] = '\0';
	status = push(&c, body, &a);
	cr_expect_eq(status, 413, "over 8 MiB: %d", status);
	cr_expect_str_eq(error_code(a) ? error_code(a) : "",
	                 "payload_too_large");
	json_decref(a);
	free(body);
}

Test(cdr_push, bodies_that_are_not_records_get_400_or_415)
{
	struct t_carrier c;
	json_t *a;
	int status;

	t_carrier_new(&c);
	status = push(&c, "[{\"id\":", &a);
	cr_expect_eq(status, 400, "truncated JSON: %d", status);
	cr_expect_str_eq(error_code(a) ? error_code(a) : "", "invalid_json");
	json_decref(a);
	status = push(&c, "{\"records\":[]}", &a);
	cr_expect_eq(status, 400, "an object: %d", status);
	cr_expect_str_eq(error_code(a) ? error_code(a) : "", "invalid_body");
	json_decref(a);
	status = push_at(&c, 0, "application/x-ndjson", "id,type\nc1,x\n", &a);
	cr_expect_eq(status, 400, "CSV as NDJSON: %d", status);
	cr_expect_str_eq(error_code(a) ? error_code(a) : "", "invalid_json");
	json_decref(a);
	status = push_at(&c, 0, "text/csv", "id,type\n", &a);
	cr_expect_eq(status, 415, "text/csv: %d", status);
	json_decref(a);
}

Test(cdr_push, kafka_down_is_503_and_the_same_request_can_be_retried)
{
	struct t_carrier c;
	char bearer[80], sig[65], header[128], r1[512], body[600];
	long long now = (long long)time(NULL);
	int dead_port;
	pid_t dead;
	json_t *a;
	int status;

	/* an ingress whose broker never answers */
	static const char *const dead_env[] = {"VOX_KAFKA_BROKERS=127.0.0.1:1",
	                                       "VOX_KAFKA_TIMEOUT_MS=1500",
	                                       NULL};

	dead = start_ingress(&dead_port, dead_env);
	t_carrier_new(&c);
	record(r1, sizeof(r1), "down-1", "inbound_call", "+14155550123");
	snprintf(body, sizeof(body), "[%s]", r1);
	snprintf(bearer, sizeof(bearer), "Bearer %s", c.key);
	t_carrier_sign(c.secret, now, body, sig);
	snprintf(header, sizeof(header), "t=%lld,v1=%s", now, sig);
	status = push_raw(dead_port, bearer, header, "application/json", body,
	                  &a);
	t_stop(dead, SIGTERM, 20000);
	cr_expect_eq(status, 503, "dead broker: %d", status);
	cr_expect_str_eq(error_code(a) ? error_code(a) : "", "bus_unavailable");
	json_decref(a);
	/* the signature was forgotten: the very same request goes through */
	status = push_raw(port, bearer, header, "application/json", body, &a);
	cr_expect_eq(status, 202, "retry: %d", status);
	json_decref(a);
}

/* Runs a shell command; all of its stdout into out (malloc'd). Exit
 * status back. */
static int sh_out(const char *cmd, char **out)
{
	size_t len = 0, cap = 4096, n;
	char *buf = malloc(cap);
	FILE *p;
	int status;

	cr_assert_not_null(buf);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
		len += n;
		if (cap - len - 1 == 0) {
			cap *= 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
	}
	buf[len] = '\0';
	status = pclose(p);
	*out = buf;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs "env voxctl args redirect" (env: settings before the command, ""
 * for none); stdout (and what redirect sends there) into out. */
static int voxctl_sh(const char *env, const char *args, const char *redirect,
                     char **out)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "%s %s/voxctl %s %s", env,
	         t_env("VOX_BIN_DIR"), args, redirect);
	return sh_out(cmd, out);
}

/* Runs voxctl with args (stderr dropped); all of stdout into out. */
static int voxctl(const char *args, char **out)
{
	return voxctl_sh("", args, "2>/dev/null", out);
}

static bool push_refused(void *arg)
{
	json_t *a = NULL;
	int status = push(arg, "[]", &a);

	json_decref(a);
	return status == 401;
}

Test(cdr_push, voxctl_carrier_create_json_works_for_a_push_until_revoked)
{
	struct t_carrier c = {0};
	char args[128], uuid[VOX_UUID_STRLEN], *out;
	json_t *made, *a;
	int rc, status;

	vox_uuid7(uuid);
	snprintf(c.name, sizeof(c.name), "v-%.4s%.12s", uuid + 19, uuid + 24);
	snprintf(args, sizeof(args), "carrier create --name %s --json", c.name);
	rc = voxctl(args, &out);
	cr_assert_eq(rc, 0, "exit %d", rc);
	made = json_loads(out, 0, NULL);
	free(out);
	cr_assert(json_is_object(made));
	cr_expect_eq(json_object_size(made), 4,
	             "exactly id, carrier, key, "
	             "signing_secret");
	cr_expect_str_eq(vox_json_str(made, "carrier"), c.name);
	snprintf(c.id, sizeof(c.id), "%s", vox_json_str(made, "id"));
	snprintf(c.key, sizeof(c.key), "%s", vox_json_str(made, "key"));
	snprintf(c.secret, sizeof(c.secret), "%s",
	         vox_json_str(made, "signing_secret"));
	cr_expect(vox_carrier_key_well_formed(c.key), "%s", c.key);
	cr_expect_eq(strlen(c.secret), 43);
	json_decref(made);

	status = push(&c, "[]", &a);
	cr_expect_eq(status, 202, "push with the new credential: %d", status);
	json_decref(a);
	rc = voxctl("carrier list --json", &out);
	cr_expect_eq(rc, 0);
	cr_expect(strstr(out, c.id) != NULL, "listed");
	cr_expect(strstr(out, c.secret) == NULL, "secret never listed");
	free(out);
	snprintf(args, sizeof(args), "carrier revoke %s", c.id);
	cr_expect_eq(voxctl(args, &out), 0);
	free(out);
	cr_expect_eq(voxctl(args, &out), 0, "revoking twice is done");
	cr_expect(strstr(out, "already revoked") != NULL, "%s", out);
	free(out);
	/* the ingress cached the credential: the revocation reaches it
	 * through NOTIFY vox_carriers (milliseconds) */
	cr_expect(t_wait_for(push_refused, &c, 1000),
	          "revoked credential still accepted after 1 s");
	status = push(&c, "[]", &a);
	expect_401(status, a, "invalid_credentials");
	cr_expect_eq(voxctl("carrier create --name Not_Valid", &out), 2);
	free(out);
}

/* ---- signing secrets sealed at rest */

/* voxctl carrier create --json with env ("" or settings): c filled in;
 * *said is all voxctl wrote, stderr included (malloc'd). */
static void carrier_made_by_voxctl(const char *env, struct t_carrier *c,
                                   char **said)
{
	char args[128], uuid[VOX_UUID_STRLEN];
	const char *line;
	json_t *made;

	memset(c, 0, sizeof(*c));
	vox_uuid7(uuid);
	snprintf(c->name, sizeof(c->name), "s-%.4s%.12s", uuid + 19, uuid + 24);
	snprintf(args, sizeof(args), "carrier create --name %s --json",
	         c->name);
	cr_assert_eq(voxctl_sh(env, args, "2>&1", said), 0, "%s", *said);
	line = strchr(*said, '{');
	cr_assert_not_null(line, "%s", *said);
	made = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
	cr_assert(json_is_object(made), "%s", *said);
	cr_expect_eq(json_object_size(made), 4, "%s", line);
	snprintf(c->id, sizeof(c->id), "%s", vox_json_str(made, "id"));
	snprintf(c->key, sizeof(c->key), "%s", vox_json_str(made, "key"));
	snprintf(c->secret, sizeof(c->secret), "%s",
	         vox_json_str(made, "signing_secret"));
	cr_assert_eq(strlen(c->secret), 43, "%s", line);
	json_decref(made);
}

/* The id of the key the credential's secret is sealed with; 0 when it is
 * in plaintext (and never both). */
static long long sealed_with(vox_pg_t *pg, const char *id)
{
	cr_expect_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM carrier_credentials "
	                        "WHERE id = $1::uuid AND (signing_secret IS "
	                        "NULL) <> (signing_secret_sealed IS NULL)",
	                        id),
	             1);
	return t_pg_count(pg,
	                  "SELECT coalesce(get_byte(signing_secret_sealed, 1), "
	                  "0) FROM carrier_credentials WHERE id = $1::uuid",
	                  id);
}

/* Rows of carrier_credentials whose text holds the secret. */
static long long secret_as_text(vox_pg_t *pg, const char *secret)
{
	return t_pg_count(pg,
	                  "SELECT count(*) FROM carrier_credentials c WHERE "
	                  "strpos(c::text, $1) > 0",
	                  secret);
}

static void expect_503_sealed(int status, json_t *answer, const char *what)
{
	cr_expect_eq(status, 503, "%s: %d", what, status);
	cr_expect_str_eq(error_code(answer) ? error_code(answer) : "(none)",
	                 "signing_secret_unavailable", "%s", what);
	json_decref(answer);
}

/* An empty signed push to the ingress at port at answers 202. */
static void expect_accepted(int at, const struct t_carrier *c, const char *what)
{
	json_t *a;
	int status = push_signed(at, c, 0, "application/json", "[]", &a);

	cr_expect_eq(status, 202, "%s: %d", what, status);
	json_decref(a);
}

/* "env voxctl args" exits want_rc and says want_text. */
static void expect_voxctl(const char *env, const char *args, int want_rc,
                          const char *want_text)
{
	char *said;
	int rc = voxctl_sh(env, args, "2>&1", &said);

	cr_expect_eq(rc, want_rc, "%s: exit %d: %s", args, rc, said);
	cr_expect(strstr(said, want_text) != NULL, "%s: %s", args, said);
	free(said);
}

Test(cdr_push, a_secret_made_with_a_key_is_sealed_and_only_that_key_opens_it)
{
	static const char *const keyed_env[] = {"VOX_ENCRYPTION_KEY=" ENC_KEY,
	                                        NULL};
	static const char *const other_env[] = {"VOX_ENCRYPTION_KEY=" ENC_KEY2,
	                                        NULL};
	struct t_carrier c, wrong;
	vox_pg_t *pg = t_pg();
	int keyed_port, other_port, status;
	char *said, *log;
	pid_t keyed, other;
	vox_error_t err;
	json_t *a;

	carrier_made_by_voxctl("VOX_ENCRYPTION_KEY=" ENC_KEY, &c, &said);
	cr_expect_null(strstr(said, "warning"), "%s", said);
	free(said);
	cr_expect_eq(sealed_with(pg, c.id), 5, "not sealed with key 5");
	cr_expect_eq(secret_as_text(pg, c.secret), 0,
	             "the signing secret is stored as text");

	/* an ingress with the key verifies with it */
	keyed = start_ingress(&keyed_port, keyed_env);
	expect_accepted(keyed_port, &c, "sealed secret, same key");
	wrong = c;
	snprintf(wrong.secret, sizeof(wrong.secret), "not-%.39s", c.secret);
	status = push_signed(keyed_port, &wrong, 0, "application/json", "[]",
	                     &a);
	expect_401(status, a, "invalid_signature");
	cr_expect_eq(t_stop(keyed, SIGTERM, 20000), 0);

	/* no key (the suite's ingress), or another key: our side is
	 * misconfigured, not the carrier's request */
	status = push(&c, "[]", &a);
	expect_503_sealed(status, a, "no key");
	other = start_ingress(&other_port, other_env);
	status = push_signed(other_port, &c, 0, "application/json", "[]", &a);
	t_stop(other, SIGTERM, 20000);
	expect_503_sealed(status, a, "another key");
	/* the log names the credential, never the secret */
	cr_assert_eq(sh_out("cat cdr-push-ingress.log", &log), 0);
	cr_expect_not_null(strstr(log, c.id), "credential id not logged");
	cr_expect_null(strstr(log, c.secret), "the secret is in the log");
	free(log);

	/* revoked is 401 as for any key, whatever the keys */
	cr_assert_eq(vox_pg_exec(pg,
	                         "UPDATE carrier_credentials SET status = "
	                         "'revoked', revoked_at = now() WHERE id = $1",
	                         1, (const char *[]){c.id}, NULL, &err),
	             0, "%s", err.message);
	status = push(&c, "[]", &a);
	expect_401(status, a, "invalid_credentials");
	vox_pg_destroy(pg);
}

Test(cdr_push, voxctl_carrier_seal_seals_plaintext_and_reseals_a_retired_key)
{
	static const char *const keyed_env[] = {"VOX_ENCRYPTION_KEY=" ENC_KEY,
	                                        NULL};
	static const char *const rotated_env[] = {
	        "VOX_ENCRYPTION_KEY=" ENC_KEY2,
	        "VOX_ENCRYPTION_OLD_KEYS=" ENC_KEY, NULL};
	struct t_carrier c;
	vox_pg_t *pg = t_pg();
	int keyed_port, rotated_port, status;
	char args[128], *said;
	pid_t keyed, rotated;
	json_t *a;

	carrier_made_by_voxctl("", &c, &said);
	cr_expect(strstr(said, "unencrypted") != NULL &&
	                  strstr(said, "production must set "
	                               "VOX_ENCRYPTION_KEY") != NULL,
	          "no warning: %s", said);
	free(said);
	cr_expect_eq(sealed_with(pg, c.id), 0, "not plaintext");

	/* plaintext rows verify on an ingress that has a key too */
	keyed = start_ingress(&keyed_port, keyed_env);
	expect_accepted(keyed_port, &c, "plaintext, keyed ingress");

	/* only this carrier's rows: the database is shared */
	snprintf(args, sizeof(args), "carrier seal --carrier %s", c.name);
	expect_voxctl("", args, 2, "VOX_ENCRYPTION_KEY");
	expect_voxctl("VOX_ENCRYPTION_KEY=" ENC_KEY, args, 0,
	              "sealed 1 plaintext");
	cr_expect_eq(sealed_with(pg, c.id), 5, "not sealed with key 5");
	cr_expect_eq(secret_as_text(pg, c.secret), 0);
	expect_accepted(keyed_port, &c, "sealed by voxctl carrier seal");
	expect_voxctl("VOX_ENCRYPTION_KEY=" ENC_KEY, args, 0,
	              "sealed 0 plaintext signing secrets and re-sealed 0");

	/* rotation: key 6 seals, key 5 still opens until the re-seal */
	expect_voxctl("VOX_ENCRYPTION_KEY=" ENC_KEY2
	              " VOX_ENCRYPTION_OLD_KEYS=" ENC_KEY,
	              args, 0, "re-sealed 1");
	cr_expect_eq(sealed_with(pg, c.id), 6, "not re-sealed with key 6");
	rotated = start_ingress(&rotated_port, rotated_env);
	expect_accepted(rotated_port, &c, "re-sealed, rotated ingress");
	status = push_signed(keyed_port, &c, 0, "application/json", "[]", &a);
	expect_503_sealed(status, a, "key 5 only, sealed with key 6");
	t_stop(rotated, SIGTERM, 20000);
	t_stop(keyed, SIGTERM, 20000);
	vox_pg_destroy(pg);
}
