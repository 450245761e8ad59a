/*
 * The configuration API end to end (issue 12): PUT a section through the
 * real ingress, Kafka and provisioning worker, then GET it back; the
 * version history; the voicemail PIN never shown; notification
 * preferences; every bad input of the issue answered 4xx with nothing
 * stored; and an Idempotency-Key replay of a PUT.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_json.h"

static int port;
static pid_t ingress, worker;
static char key[64], account[40];

static bool ingress_up(void *arg)
{
	(void)arg;
	return t_http("GET", port, "/healthz", NULL, NULL, NULL) == 200;
}

static void start(void)
{
	static char port_env[64];

	port = t_free_port();
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", port);
	const char *const ienv[] = {port_env, "VOX_RATE_COMMAND=1000",
	                            "VOX_RATE_READ=1000",
	                            "VOX_RATE_SEARCH=1000", NULL};
	/* the carrier sync retries within a second (the outage test) */
	/* 4 lanes: preference_updates_..._across_lanes checks their order */
	const char *const wenv[] = {"VOX_WORKER_METRICS_PORT=0",
	                            "VOX_WORKER_LANES=4",
	                            "VOX_KAFKA_SESSION_TIMEOUT_MS=6000",
	                            "VOX_CARRIER_SYNC_BACKOFF_MS=100",
	                            "VOX_CARRIER_SYNC_MAX_MS=1000",
	                            NULL};
	ingress = t_spawn("ingress", "config-ingress.log", ienv);
	worker = t_spawn("provisioning", "config-worker.log", wenv);
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
	t_account("owner", account, key);
}

/* The stack's carrier sandbox: its admin API and its /v2 API. */
static int carrier_call(const char *method, const char *path, const char *body,
                        char **text)
{
	const char *h[] = {"Authorization: Bearer sandbox-key",
	                   "Content-Type: application/json", NULL};

	return t_http_h(method,
	                (int)strtol(t_env("VOX_CARRIER_PORT"), NULL, 10), path,
	                body, h, text, NULL);
}

static void stop(void)
{
	/* a failed outage test must not leave the shared sandbox down */
	carrier_call("DELETE", "/admin/faults?endpoint=voice", NULL, NULL);
	cr_expect_eq(t_stop(ingress, SIGTERM, 20000), 0);
	cr_expect_eq(t_stop(worker, SIGTERM, 20000), 0);
}

TestSuite(config, .init = start, .fini = stop, .timeout = 180);

/* The answer as JSON; idem (may be NULL) is an Idempotency-Key. */
static json_t *call(const char *method, const char *path, const char *body,
                    const char *who, const char *idem, int expect)
{
	char auth[600], idem_h[300], *text = NULL;
	const char *h[5] = {auth, "Prefer: wait=20"};
	size_t n = 2;
	json_t *doc;
	int status;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
	         who ? who : key);
	if (body)
		h[n++] = "Content-Type: application/json";
	if (idem) {
		snprintf(idem_h, sizeof(idem_h), "Idempotency-Key: %s", idem);
		h[n++] = idem_h;
	}
	h[n] = NULL;
	status = t_http_h(method, port, path, body, h, &text, NULL);
	cr_assert_eq(status, expect, "%s %s: %d %s", method, path, status,
	             text);
	doc = json_loads(text, JSON_DECODE_ANY, NULL);
	cr_assert_not_null(doc, "%s %s: not JSON: %s", method, path, text);
	free(text);
	return doc;
}

static json_t *api(const char *method, const char *path, const char *body,
                   int expect)
{
	return call(method, path, body, NULL, NULL, expect);
}

/* A command answered with its finished operation (Prefer: wait). */
static json_t *command(const char *method, const char *path, const char *body,
                       const char *expect_status)
{
	json_t *op = api(method, path, body, 200);

	cr_assert_str_eq(vox_json_str(op, "status"), expect_status, "%s %s: %s",
	                 method, path, vox_json_dump(op));
	return op;
}

/* Buys one US 415 number (id and E.164 out); activates it when asked. */
static void buy(bool activate, char id[40], char e164[24])
{
	char body[200], path[160];
	json_t *found, *op, *list, *data;

	found = api("GET",
	            "/v1/available-numbers?country=US&area_code=415"
	            "&limit=50",
	            NULL, 200);
	data = json_object_get(found, "data");
	cr_assert_geq(json_array_size(data), 1);
	snprintf(e164, 24, "%s",
	         vox_json_str(
	                 json_array_get(data,
	                                (size_t)rand() % json_array_size(data)),
	                 "phone_number"));
	json_decref(found);
	snprintf(body, sizeof(body), "{\"phone_numbers\":[\"%s\"]}", e164);
	op = command("POST", "/v1/reservations", body, "completed");
	snprintf(body, sizeof(body), "{\"reservation_id\":\"%s\"}",
	         vox_json_str(json_object_get(op, "result"), "reservation_id"));
	json_decref(op);
	json_decref(command("POST", "/v1/orders", body, "completed"));
	list = api("GET", "/v1/numbers?status=purchased&limit=100", NULL, 200);
	id[0] = '\0';
	for (size_t i = 0; i < json_array_size(json_object_get(list, "data"));
	     i++) {
		json_t *n = json_array_get(json_object_get(list, "data"), i);

		if (strcmp(vox_json_str(n, "phone_number"), e164) == 0)
			snprintf(id, 40, "%s", vox_json_str(n, "id"));
	}
	json_decref(list);
	cr_assert(id[0], "bought number %s not listed", e164);
	if (!activate)
		return;
	snprintf(path, sizeof(path), "/v1/numbers/%s/activate", id);
	json_decref(command("POST", path, "{\"forward_to\":\"+14155550100\"}",
	                    "completed"));
}

static long long versions_of(const char *id)
{
	vox_pg_t *pg = t_pg();
	long long n = t_pg_count(pg,
	                         "SELECT count(*) FROM "
	                         "number_configuration_versions WHERE "
	                         "number_id = $1",
	                         id);

	vox_pg_destroy(pg);
	return n;
}

/* PUT section (completed), then the GET of it. */
static json_t *put_get(const char *id, const char *section, const char *body,
                       int *version)
{
	char path[200];
	json_t *op;

	snprintf(path, sizeof(path), "/v1/numbers/%s/%s", id, section);
	op = command("PUT", path, body, "completed");
	*version = (int)json_integer_value(
	        json_object_get(json_object_get(op, "result"), "version"));
	cr_assert_gt(*version, 0, "%s", vox_json_dump(op));
	json_decref(op);
	return api("GET", path, NULL, 200);
}

Test(config, routing_put_then_get_marks_pending_carrier)
{
	char id[40], e164[24];
	int version;
	json_t *r;

	buy(true, id, e164);
	/* Activation's forward_to reads as an enabled primary. */
	r = api("GET",
	        "/v1/numbers/00000000-0000-0000-0000-000000000000/routing",
	        NULL, 404);
	json_decref(r);
	char path[200];
	snprintf(path, sizeof(path), "/v1/numbers/%s/routing", id);
	r = api("GET", path, NULL, 200);
	cr_expect_str_eq(vox_json_str(r, "primary_destination"),
	                 "+14155550100");
	cr_expect(json_is_true(json_object_get(r, "enabled")));
	json_decref(r);
	r = put_get(
	        id, "routing",
	        "{\"primary_destination\":\"+1 (415) 555-0101\","
	        "\"failover_destination\":\"sip:desk@pbx.example.com:5060\","
	        "\"after_hours_destination\":\"+442079460000\","
	        "\"timeout_s\":25}",
	        &version);
	cr_expect_str_eq(vox_json_str(r, "primary_destination"),
	                 "+14155550101");
	cr_expect_str_eq(vox_json_str(r, "failover_destination"),
	                 "sip:desk@pbx.example.com:5060");
	cr_expect_str_eq(vox_json_str(r, "after_hours_destination"),
	                 "+442079460000");
	cr_expect(
	        json_is_null(json_object_get(r, "business_hours_destination")));
	cr_expect_eq(json_integer_value(json_object_get(r, "timeout_s")), 25);
	cr_expect(json_is_true(json_object_get(r, "enabled")));
	cr_expect_eq(json_integer_value(json_object_get(r, "version")),
	             version);
	cr_expect_str_eq(vox_json_str(r, "carrier_status"), "pending_carrier");
	json_decref(r);
	cr_expect_eq(versions_of(id), 1);
}

Test(config, business_hours_zone_defaults_to_the_account)
{
	char id[40], e164[24];
	int version;
	json_t *r;

	buy(true, id, e164);
	r = put_get(id, "business-hours",
	            "{\"weekly\":{\"mon\":[{\"open\":\"09:00\",\"close\":"
	            "\"17:00\"}],\"fri\":[{\"open\":\"22:00\",\"close\":"
	            "\"02:00\"}]},\"overrides\":[{\"name\":\"Thanksgiving\","
	            "\"recurring\":{\"month\":11,\"weekday\":\"thu\",\"n\":4},"
	            "\"holiday\":true}]}",
	            &version);
	cr_expect_str_eq(vox_json_str(r, "time_zone"), "UTC");
	cr_expect_str_eq(
	        vox_json_str(
	                json_array_get(
	                        json_object_get(json_object_get(r, "weekly"),
	                                        "fri"),
	                        0),
	                "close"),
	        "02:00");
	cr_expect_eq(json_array_size(json_object_get(r, "overrides")), 1);
	cr_expect(json_is_true(json_object_get(r, "configured")));
	json_decref(r);
	r = put_get(id, "business-hours",
	            "{\"time_zone\":\"Asia/Kolkata\",\"weekly\":{\"sun\":[{"
	            "\"open\":\"00:00\",\"close\":\"24:00\"}]}}",
	            &version);
	cr_expect_str_eq(vox_json_str(r, "time_zone"), "Asia/Kolkata");
	json_decref(r);
}

Test(config, voicemail_pin_is_hashed_and_never_shown)
{
	char id[40], e164[24], path[200];
	int version;
	json_t *r, *v;
	vox_pg_t *pg;

	buy(true, id, e164);
	r = put_get(
	        id, "voicemail",
	        "{\"enabled\":true,\"greeting\":{\"text\":\"Leave a message\"},"
	        "\"pin\":\"482913\",\"max_message_s\":90,"
	        "\"transcription\":true,\"emails\":[\"ops@example.com\"]}",
	        &version);
	cr_expect(json_is_true(json_object_get(r, "pin_set")));
	cr_expect_null(json_object_get(r, "pin"));
	cr_expect_null(json_object_get(r, "pin_hash"));
	cr_expect_str_eq(vox_json_str(json_object_get(r, "greeting"), "text"),
	                 "Leave a message");
	cr_expect_eq(json_integer_value(json_object_get(r, "max_message_s")),
	             90);
	cr_expect_null(strstr(vox_json_dump(r), "482913"));
	json_decref(r);
	/* Stored only as a PBKDF2 hash, in the row and in the history. */
	pg = t_pg();
	cr_expect_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM number_configurations "
	                        "WHERE number_id = $1 AND voicemail ->> "
	                        "'pin_hash' LIKE 'pbkdf2-sha256$%' AND "
	                        "voicemail::text NOT LIKE '%482913%'",
	                        id),
	             1);
	cr_expect_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM "
	                        "number_configuration_versions WHERE number_id "
	                        "= $1 AND config::text LIKE '%482913%'",
	                        id),
	             0);
	vox_pg_destroy(pg);
	/* A change without "pin" keeps it; "pin": null removes it. */
	r = put_get(id, "voicemail", "{\"enabled\":false}", &version);
	cr_expect(json_is_true(json_object_get(r, "pin_set")));
	json_decref(r);
	r = put_get(id, "voicemail", "{\"enabled\":true,\"pin\":null}",
	            &version);
	cr_expect(json_is_false(json_object_get(r, "pin_set")));
	json_decref(r);
	snprintf(path, sizeof(path), "/v1/numbers/%s/configuration/versions",
	         id);
	v = api("GET", path, NULL, 200);
	cr_expect_null(strstr(vox_json_dump(v), "pin_hash"));
	cr_expect_null(strstr(vox_json_dump(v), "482913"));
	json_decref(v);
}

Test(config, versions_are_listed_newest_first_and_paged)
{
	char id[40], e164[24], path[240];
	int version;
	json_t *r, *page, *data;

	buy(true, id, e164);
	json_decref(put_get(id, "routing",
	                    "{\"primary_destination\":\"+14155550102\"}",
	                    &version));
	json_decref(put_get(id, "business-hours",
	                    "{\"time_zone\":\"Europe/London\",\"weekly\":{}}",
	                    &version));
	r = put_get(id, "voicemail", "{\"enabled\":true}", &version);
	json_decref(r);
	snprintf(path, sizeof(path),
	         "/v1/numbers/%s/configuration/versions?limit=2", id);
	page = api("GET", path, NULL, 200);
	data = json_object_get(page, "data");
	cr_assert_eq(json_array_size(data), 2);
	cr_expect_str_eq(vox_json_str(json_array_get(data, 0), "section"),
	                 "voicemail");
	cr_expect_str_eq(vox_json_str(json_array_get(data, 1), "section"),
	                 "business_hours");
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(data, 0),
	                                                "version")),
	             version);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(data, 1),
	                                                "version")),
	             version - 1);
	cr_expect_not_null(
	        vox_json_str(json_array_get(data, 0), "operation_id"));
	cr_assert_not_null(vox_json_str(page, "next_cursor"));
	snprintf(path, sizeof(path),
	         "/v1/numbers/%s/configuration/versions?limit=2&cursor=%s", id,
	         vox_json_str(page, "next_cursor"));
	json_decref(page);
	page = api("GET", path, NULL, 200);
	data = json_object_get(page, "data");
	cr_assert_eq(json_array_size(data), 1);
	cr_expect_str_eq(vox_json_str(json_array_get(data, 0), "section"),
	                 "routing");
	cr_expect_str_eq(
	        vox_json_str(json_object_get(json_array_get(data, 0), "config"),
	                     "primary_destination"),
	        "+14155550102");
	cr_expect(json_is_null(json_object_get(page, "next_cursor")));
	json_decref(page);
}

/* PUT answers status with error code and details.field; nothing stored. */
static void refused(const char *id, const char *section, const char *body,
                    const char *field)
{
	char path[200];
	long long before = versions_of(id);
	json_t *e;

	snprintf(path, sizeof(path), "/v1/numbers/%s/%s", id, section);
	e = api("PUT", path, body, 400);
	cr_expect_str_eq(vox_json_str(json_object_get(e, "error"), "code"),
	                 "invalid_body", "%s", body);
	const char *got = vox_json_str(
	        json_object_get(json_object_get(e, "error"), "details"),
	        "field");
	/* The field, or a path inside it (weekly.mon[0].open). */
	cr_expect(got && strncmp(got, field, strlen(field)) == 0, "%s: %s",
	          body, vox_json_dump(e));
	json_decref(e);
	cr_expect_eq(versions_of(id), before, "%s stored", body);
}

Test(config, bad_inputs_are_refused_and_nothing_is_stored)
{
	char id[40], e164[24], body[200], *text;
	json_t *many;

	buy(true, id, e164);
	refused(id, "business-hours",
	        "{\"time_zone\":\"Mars/Olympus\",\"weekly\":{}}", "time_zone");
	refused(id, "business-hours",
	        "{\"weekly\":{\"mon\":[{\"open\":\"25:00\",\"close\":\"26:00\"}"
	        "]}}",
	        "weekly.mon[0]");
	refused(id, "business-hours",
	        "{\"weekly\":{\"mon\":[{\"open\":\"09:00\",\"close\":\"09:00\"}"
	        "]}}",
	        "weekly.mon[0]");
	many = json_pack("{s:{}, s:[]}", "weekly", "overrides");
	for (int i = 0; i < 51; i++) {
		char date[16];

		snprintf(date, sizeof(date), "2027-01-%02d", i % 28 + 1);
		json_array_append_new(json_object_get(many, "overrides"),
		                      json_pack("{s:s}", "date", date));
	}
	text = vox_json_dump(many);
	refused(id, "business-hours", text, "overrides");
	free(text);
	json_decref(many);
	refused(id, "routing", "{\"primary_destination\":\"not a number\"}",
	        "primary_destination");
	refused(id, "routing", "{\"primary_destination\":\"sip:nohost\"}",
	        "primary_destination");
	refused(id, "routing",
	        "{\"primary_destination\":\"+14155550100\","
	        "\"failover_destination\":\"http://x\"}",
	        "failover_destination");
	snprintf(body, sizeof(body), "{\"primary_destination\":\"%s\"}", e164);
	refused(id, "routing", body, "primary_destination");
	refused(id, "routing",
	        "{\"primary_destination\":\"+14155550100\",\"timeout_s\":4}",
	        "timeout_s");
	refused(id, "routing",
	        "{\"primary_destination\":\"+14155550100\",\"timeout_s\":121}",
	        "timeout_s");
	refused(id, "voicemail", "{\"pin\":\"12a4\"}", "pin");
	refused(id, "voicemail", "{\"pin\":\"123\"}", "pin");
	refused(id, "voicemail", "{\"emails\":[\"nobody\"]}", "emails");
	cr_expect_eq(versions_of(id), 0);
}

Test(config, other_accounts_number_404_and_inactive_409)
{
	char id[40], e164[24], path[200], other[64], other_account[40];
	json_t *e;

	buy(false, id, e164);
	snprintf(path, sizeof(path), "/v1/numbers/%s/routing", id);
	e = api("PUT", path, "{\"primary_destination\":\"+14155550100\"}", 409);
	cr_expect_str_eq(vox_json_str(json_object_get(e, "error"), "code"),
	                 "invalid_state");
	cr_expect_str_eq(
	        vox_json_str(
	                json_object_get(json_object_get(e, "error"), "details"),
	                "current_status"),
	        "purchased");
	json_decref(e);
	t_account("owner", other_account, other);
	e = call("PUT", path, "{\"primary_destination\":\"+14155550100\"}",
	         other, NULL, 404);
	cr_expect_str_eq(vox_json_str(json_object_get(e, "error"), "code"),
	                 "number_not_found");
	json_decref(e);
	json_decref(call("GET", path, NULL, other, NULL, 404));
	snprintf(path, sizeof(path), "/v1/numbers/%s/voicemail", id);
	json_decref(call("GET", path, NULL, other, NULL, 404));
	snprintf(path, sizeof(path), "/v1/numbers/%s/configuration/versions",
	         id);
	json_decref(call("GET", path, NULL, other, NULL, 404));
	cr_expect_eq(versions_of(id), 0);
}

Test(config, idempotency_key_replays_a_put)
{
	char id[40], e164[24], path[200], idem[64];
	json_t *first, *again, *e;

	buy(true, id, e164);
	snprintf(idem, sizeof(idem), "cfg-%d-%d", rand(), rand());
	snprintf(path, sizeof(path), "/v1/numbers/%s/routing", id);
	first = call("PUT", path, "{\"primary_destination\":\"+14155550103\"}",
	             NULL, idem, 200);
	again = call("PUT", path, "{\"primary_destination\":\"+14155550103\"}",
	             NULL, idem, 202);
	cr_expect_str_eq(vox_json_str(first, "id"), vox_json_str(again, "id"));
	cr_expect_eq(versions_of(id), 1);
	/* The same key with another body is refused. */
	e = call("PUT", path, "{\"primary_destination\":\"+14155550104\"}",
	         NULL, idem, 422);
	json_decref(e);
	cr_expect_eq(versions_of(id), 1);
	json_decref(first);
	json_decref(again);
}

Test(config, notification_preferences_keep_the_fallback_order)
{
	json_t *r, *p, *e;

	json_decref(
	        command("PUT", "/v1/notification-preferences",
	                "{\"preferences\":{\"number.activated\":[\"sms\","
	                "\"email\"],\"*\":[\"webhook\",\"email\",\"sms\"]}}",
	                "completed"));
	r = api("GET", "/v1/notification-preferences", NULL, 200);
	p = json_object_get(r, "preferences");
	cr_assert_eq(json_object_size(p), 2, "%s", vox_json_dump(r));
	cr_expect_str_eq(json_string_value(json_array_get(
	                         json_object_get(p, "number.activated"), 0)),
	                 "sms");
	cr_expect_str_eq(json_string_value(json_array_get(
	                         json_object_get(p, "number.activated"), 1)),
	                 "email");
	cr_expect_str_eq(
	        json_string_value(json_array_get(json_object_get(p, "*"), 0)),
	        "webhook");
	cr_expect_eq(json_array_size(json_object_get(p, "*")), 3);
	json_decref(r);
	e = api("PUT", "/v1/notification-preferences",
	        "{\"preferences\":{\"x\":[\"pigeon\"]}}", 400);
	json_decref(e);
	e = api("PUT", "/v1/notification-preferences",
	        "{\"preferences\":{\"x\":[\"sms\",\"sms\"]}}", 400);
	json_decref(e);
	json_decref(command("PUT", "/v1/notification-preferences",
	                    "{\"preferences\":{}}", "completed"));
	r = api("GET", "/v1/notification-preferences", NULL, 200);
	cr_expect_eq(json_object_size(json_object_get(r, "preferences")), 0);
	json_decref(r);
}

struct synced_at {
	const char *id;
	long long version;
};

static bool carrier_synced(void *arg)
{
	const struct synced_at *w = arg;
	vox_pg_t *pg = t_pg();
	char want[24];
	const char *params[] = {w->id, want};
	PGresult *res = NULL;
	vox_error_t err;
	bool done;

	snprintf(want, sizeof(want), "%lld", w->version);
	done = vox_pg_exec(pg,
	                   "SELECT 1 FROM number_configurations WHERE "
	                   "number_id = $1::uuid AND carrier_status = "
	                   "'synced' AND carrier_version = $2::int",
	                   2, params, &res, &err) == 0 &&
	       PQntuples(res) == 1;
	PQclear(res);
	vox_pg_destroy(pg);
	return done;
}

/* Acceptance 1 of issue 12: a routing change made while the carrier is
 * down is stored and owed (pending_carrier); two changes later the carrier
 * comes back and ends with the LATEST one, never the older. */
Test(config, routing_changes_during_a_carrier_outage_reach_it_latest_first)
{
	char id[40], e164[24], path[200], carrier_path[200], *text = NULL;
	int v1, v2, status;
	json_t *r, *settings, *doc;
	vox_pg_t *pg;
	PGresult *res = NULL;
	vox_error_t err;

	buy(true, id, e164);
	status = carrier_call("POST", "/admin/faults",
	                      "{\"endpoint\":\"voice\",\"error_rate\":1,"
	                      "\"status\":503}",
	                      &text);
	cr_assert(status >= 200 && status < 300, "fault: %d %s", status,
	          text ? text : "");
	free(text);
	text = NULL;
	r = put_get(id, "routing", "{\"primary_destination\":\"+14155550123\"}",
	            &v1);
	cr_expect_str_eq(vox_json_str(r, "carrier_status"), "pending_carrier");
	json_decref(r);
	r = put_get(id, "routing", "{\"primary_destination\":\"+14155550124\"}",
	            &v2);
	cr_assert_gt(v2, v1);
	json_decref(r);
	/* still owed while the carrier refuses, with the reason kept */
	pg = t_pg();
	sleep(2);
	const char *params[] = {id};
	cr_assert_eq(vox_pg_exec(pg,
	                         "SELECT c.carrier_status, c.carrier_attempts, "
	                         "c.carrier_error IS NOT NULL, "
	                         "n.carrier_number_id FROM "
	                         "number_configurations c JOIN numbers n ON "
	                         "n.id = c.number_id WHERE c.number_id = "
	                         "$1::uuid",
	                         1, params, &res, &err),
	             0, "%s", err.message);
	cr_assert_eq(PQntuples(res), 1);
	cr_expect_str_eq(PQgetvalue(res, 0, 0), "pending_carrier");
	cr_expect_geq(strtol(PQgetvalue(res, 0, 1), NULL, 10), 1);
	cr_expect_str_eq(PQgetvalue(res, 0, 2), "t");
	snprintf(carrier_path, sizeof(carrier_path),
	         "/v2/phone_numbers/%s/voice", PQgetvalue(res, 0, 3));
	PQclear(res);
	vox_pg_destroy(pg);
	/* the carrier comes back */
	status = carrier_call("DELETE", "/admin/faults?endpoint=voice", NULL,
	                      NULL);
	cr_assert(status >= 200 && status < 300, "fault cleared: %d", status);
	struct synced_at want = {id, v2};
	cr_assert(t_wait_for(carrier_synced, &want, 15000),
	          "version %d not synced to the carrier", v2);
	cr_assert_eq(carrier_call("GET", carrier_path, NULL, &text), 200, "%s",
	             text ? text : "");
	doc = json_loads(text, 0, NULL);
	free(text);
	settings = json_object_get(doc, "data");
	cr_assert_not_null(settings);
	cr_expect_eq(json_integer_value(
	                     json_object_get(settings, "settings_version")),
	             v2);
	cr_expect_str_eq(
	        vox_json_str(json_object_get(settings, "call_forwarding"),
	                     "forwards_to"),
	        "+14155550124");
	json_decref(doc);
	snprintf(path, sizeof(path), "/v1/numbers/%s/routing", id);
	r = api("GET", path, NULL, 200);
	cr_expect_str_eq(vox_json_str(r, "carrier_status"), "synced");
	json_decref(r);
}

/* With VOX_WORKER_LANES=4 (set for this suite) the provisioning worker
 * runs commands of different keys on lanes at once: preference updates are
 * keyed by account, so each account's updates must still apply in the order
 * they were accepted, while several accounts' run side by side. 6 accounts x 15
 * updates, sent interleaved while the worker is paused: every update
 * completes once,
 * each account's operations complete in acceptance order, and each ends
 * with its last update's preferences. */
#define LANE_ACCOUNTS 6
#define LANE_UPDATES  15

static bool lane_ops_done(void *arg)
{
	vox_pg_t *pg = arg;

	return t_pg_count(
	               pg,
	               "SELECT count(*) FROM operations WHERE kind = "
	               "'notification_preferences.update' AND status = "
	               "'completed' AND account_id = ANY(string_to_array($1, "
	               "',')::uuid[])",
	               t_env("VOX_TEST_LANE_ACCOUNTS")) ==
	       LANE_ACCOUNTS * LANE_UPDATES;
}

Test(config, preference_updates_of_one_account_apply_in_order_across_lanes)
{
	static const char *const bodies[] = {
	        "{\"preferences\":{\"number.activated\":[\"email\"]}}",
	        "{\"preferences\":{\"number.activated\":[\"webhook\","
	        "\"email\"]}}",
	};
	char accounts[LANE_ACCOUNTS][40], keys[LANE_ACCOUNTS][64];
	char list[LANE_ACCOUNTS * 40 + 8] = "", auth[LANE_ACCOUNTS][600];
	vox_pg_t *pg = t_pg();
	long long out_of_order, last_wrong;

	for (int a = 0; a < LANE_ACCOUNTS; a++) {
		t_account("owner", accounts[a], keys[a]);
		snprintf(auth[a], sizeof(auth[a]), "Authorization: Bearer %s",
		         keys[a]);
		/* "id,id,...": every id is 36 characters */
		memcpy(list + a * 37, accounts[a], 36);
		list[a * 37 + 36] = a + 1 < LANE_ACCOUNTS ? ',' : '\0';
	}
	setenv("VOX_TEST_LANE_ACCOUNTS", list, 1);
	/* the worker paused while they are sent: it then polls them as one
	 * backlog and its lanes run them at once (a second is well inside its
	 * group session) */
	cr_assert_eq(kill(worker, SIGSTOP), 0);
	for (int u = 0; u < LANE_UPDATES; u++)
		for (int a = 0; a < LANE_ACCOUNTS; a++) {
			const char *h[] = {auth[a],
			                   "Content-Type: application/json",
			                   NULL};

			cr_assert_eq(t_http_h("PUT", port,
			                      "/v1/notification-preferences",
			                      bodies[u % 2], h, NULL, NULL),
			             202);
		}
	cr_assert_eq(kill(worker, SIGCONT), 0);
	cr_assert(t_wait_for(lane_ops_done, pg, 60000),
	          "not every update completed");
	/* in acceptance (created_at, id: UUIDv7) order, completion times
	 * never go back within an account */
	out_of_order = t_pg_count(
	        pg,
	        "SELECT count(*) FROM (SELECT completed_at < lag(completed_at) "
	        "OVER (PARTITION BY account_id ORDER BY created_at, id) AS "
	        "back FROM operations WHERE kind = "
	        "'notification_preferences.update' AND account_id = "
	        "ANY(string_to_array($1, ',')::uuid[])) o WHERE back",
	        list);
	cr_assert_eq(out_of_order, 0, "%lld updates applied out of order",
	             out_of_order);
	/* the last update (u = 14: bodies[0]) is what each account has */
	last_wrong = t_pg_count(
	        pg,
	        "SELECT count(*) FROM unnest(string_to_array($1, ',')::uuid[]) "
	        "a WHERE (SELECT channels FROM notification_preferences p "
	        "WHERE p.account_id = a AND p.user_id IS NULL AND "
	        "p.event_type = 'number.activated') IS DISTINCT FROM "
	        "ARRAY['email']",
	        list);
	cr_assert_eq(last_wrong, 0, "%lld accounts without their last update",
	             last_wrong);
	vox_pg_destroy(pg);
}
