/*
 * Carrier sync of a number's forwarding (docs/ROUTING.md, "Carrier
 * sync") through the real provisioning worker and the real carrier
 * sandbox: a pending_carrier row is pushed with its version and ends
 * synced; with the carrier down the row stays pending (attempts growing,
 * carrier_error set) and, once the carrier is back, the carrier ends with
 * the LATEST of two versions made meanwhile; a version stored while a push
 * is on the wire stays owed and is pushed next; an older version arriving
 * late at the carrier is refused and counts as done.
 *
 * The suite runs its own carrier sandbox process (this tree's
 * ops/carrier-sandbox, in memory, on a free port) so that its fault
 * injection touches nobody else's tests, and its own worker on a topic and
 * group of its own. Rows are set up by SQL, as the configuration commands
 * store them: number_configurations with a new version and
 * carrier_status = 'pending_carrier'.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_carrier.h"
#include "vox_json.h"

/* numbers.carrier of this suite's numbers: its sandbox's state is gone
 * after a run, so the suite removes them at its start and end (no other
 * worker must push them forever). */
#define MARK "sandbox-config-sync"

static int sport, mport;
static pid_t sandbox, worker;
static char account[40], key[64], topic[128], group[160];
static vox_pg_t *pg;

static bool sandbox_up(void *arg)
{
	(void)arg;
	return t_http("GET", sport, "/healthz", NULL, NULL, NULL) == 200;
}

static pid_t sandbox_spawn(void)
{
	const char *const env[] = {"VOX_CARRIER_INVENTORY_PER_COUNTRY=300",
	                           "VOX_CARRIER_SEED=config-sync", NULL};

	return t_sandbox_spawn(sport, "config-sync-carrier.log", env);
}

/* The sandbox's admin API (faults); fails the test on an error. */
static void carrier_admin(const char *method, const char *path,
                          const char *body)
{
	char *text = NULL;
	int status = t_http(method, sport, path, body,
	                    body ? "application/json" : NULL, &text);

	cr_assert(status >= 200 && status < 300, "carrier admin %s %s: %d %s",
	          method, path, status, text ? text : "");
	free(text);
}

/* GET (or PATCH with body) on the sandbox's /v2 API, parsed. */
static json_t *carrier_api(const char *method, const char *path,
                           const char *body, int expect)
{
	const char *h[] = {"Authorization: Bearer sandbox-key",
	                   "Content-Type: application/json", NULL};
	char *text = NULL;
	json_t *doc;
	int status = t_http_h(method, sport, path, body, h, &text, NULL);

	cr_assert_eq(status, expect, "%s %s: %d %s", method, path, status,
	             text ? text : "");
	doc = json_loads(text, 0, NULL);
	cr_assert_not_null(doc, "%s %s: %s", method, path, text);
	free(text);
	return doc;
}

static void tidy(void)
{
	vox_error_t err;

	/* number_configurations go with them (ON DELETE CASCADE) */
	cr_assert_eq(vox_pg_exec(pg,
	                         "DELETE FROM numbers WHERE carrier = '" MARK
	                         "'",
	                         0, NULL, NULL, &err),
	             0, "%s", err.message);
}

static void start(void)
{
	static char url[64], topics[160], groups[200], metrics[64];

	pg = t_pg();
	tidy();
	sport = t_free_port();
	sandbox = sandbox_spawn();
	cr_assert(t_wait_for(sandbox_up, NULL, 30000), "sandbox not up");
	t_topic_create("config-sync-cmd", 1, topic, sizeof(topic));
	snprintf(group, sizeof(group), "%s-group", topic);
	snprintf(url, sizeof(url), "VOX_CARRIER_URL=http://127.0.0.1:%d",
	         sport);
	snprintf(topics, sizeof(topics), "VOX_WORKER_TOPICS=%s", topic);
	snprintf(groups, sizeof(groups), "VOX_WORKER_GROUP=%s", group);
	mport = t_free_port();
	snprintf(metrics, sizeof(metrics), "VOX_WORKER_METRICS_PORT=%d", mport);
	const char *const wenv[] = {url,
	                            topics,
	                            groups,
	                            metrics,
	                            "VOX_WORKER_RELAY=false",
	                            "VOX_KAFKA_SESSION_TIMEOUT_MS=6000",
	                            "VOX_CARRIER_TIMEOUT_MS=1000",
	                            "VOX_CARRIER_SYNC_BACKOFF_MS=100",
	                            "VOX_CARRIER_SYNC_MAX_MS=800",
	                            NULL};
	worker = t_spawn("provisioning", "config-sync-worker.log", wenv);
	t_account("owner", account, key);
}

static void stop(void)
{
	if (sport > 0 && sandbox > 0)
		t_http("DELETE", sport, "/admin/faults", NULL, NULL, NULL);
	cr_expect_eq(t_stop(worker, SIGTERM, 20000), 0);
	t_stop(sandbox, SIGTERM, 10000);
	tidy();
	vox_pg_destroy(pg);
}

TestSuite(config_sync, .init = start, .fini = stop, .timeout = 120);

/* A number owned by the account, bought from the sandbox, with its
 * configuration row synced at version 1 (forwarding to +14155550100). */
static void number(char number_id[40], char carrier_id[64])
{
	json_t *found, *order, *item;
	char body[160], *e164 = NULL;
	PGresult *res;
	vox_error_t err;

	found = carrier_api("GET",
	                    "/v2/available_phone_numbers?filter[country_code]"
	                    "=US&filter[limit]=250",
	                    NULL, 200);
	/* one that the shared database does not know yet */
	for (size_t i = 0; i < json_array_size(json_object_get(found, "data"));
	     i++) {
		const char *e = vox_json_str(
		        json_array_get(json_object_get(found, "data"),
		                       (i * 7919 + (size_t)getpid()) % 250 %
		                               json_array_size(json_object_get(
		                                       found, "data"))),
		        "phone_number");

		if (t_pg_count(pg,
		               "SELECT count(*) FROM numbers WHERE e164 = $1",
		               e) == 0) {
			e164 = strdup(e);
			break;
		}
	}
	json_decref(found);
	cr_assert_not_null(e164, "no number free in the database");
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\":[{\"phone_number\":\"%s\"}]}", e164);
	order = carrier_api("POST", "/v2/number_orders", body, 201);
	item = json_array_get(json_object_get(json_object_get(order, "data"),
	                                      "phone_numbers"),
	                      0);
	cr_assert_str_eq(vox_json_str(item, "status"), "success");
	snprintf(carrier_id, 64, "%s", vox_json_str(item, "id"));
	json_decref(order);

	const char *params[] = {e164, account, carrier_id};
	cr_assert_eq(
	        vox_pg_exec(
	                pg,
	                "WITH n AS (INSERT INTO numbers (e164, country, "
	                "area_code, status, account_id, carrier, "
	                "carrier_number_id, purchased_at, activated_at) "
	                "VALUES ($1, 'US', substr($1, 3, 3), 'active', "
	                "$2::uuid, '" MARK "', $3, now(), now()) RETURNING "
	                "id) INSERT INTO number_configurations (account_id, "
	                "number_country, number_id, call_forwarding, "
	                "version, carrier_version, carrier_status) SELECT "
	                "$2::uuid, 'US', n.id, '{\"forward_to\": "
	                "\"+14155550100\"}', 1, 1, 'synced' FROM n "
	                "RETURNING number_id",
	                3, params, &res, &err),
	        0, "%s", err.message);
	snprintf(number_id, 40, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	free(e164);
}

/* What a stored routing change does to the row: a new version of
 * call_forwarding, owed to the carrier. Returns the new version. */
static int change(const char *number_id, const char *destination)
{
	char doc[200];
	const char *params[] = {number_id, doc};
	PGresult *res;
	vox_error_t err;
	int version;

	snprintf(doc, sizeof(doc),
	         "{\"primary_destination\": \"%s\", \"enabled\": true, "
	         "\"timeout_s\": 20}",
	         destination);
	cr_assert_eq(vox_pg_exec(pg,
	                         "UPDATE number_configurations SET "
	                         "call_forwarding = $2::jsonb, version = "
	                         "version + 1, carrier_status = "
	                         "'pending_carrier', carrier_next_at = now() "
	                         "WHERE number_id = $1::uuid RETURNING version",
	                         2, params, &res, &err),
	             0, "%s", err.message);
	cr_assert_eq(PQntuples(res), 1);
	version = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return version;
}

struct row {
	char status[24], error[300];
	int version, carrier_version, attempts;
};

static struct row row_of(const char *number_id)
{
	const char *params[] = {number_id};
	struct row r = {0};
	PGresult *res;
	vox_error_t err;

	cr_assert_eq(
	        vox_pg_exec(pg,
	                    "SELECT carrier_status, coalesce(carrier_error, "
	                    "''), version, carrier_version, "
	                    "carrier_attempts FROM number_configurations "
	                    "WHERE number_id = $1::uuid",
	                    1, params, &res, &err),
	        0, "%s", err.message);
	cr_assert_eq(PQntuples(res), 1);
	snprintf(r.status, sizeof(r.status), "%s", PQgetvalue(res, 0, 0));
	snprintf(r.error, sizeof(r.error), "%s", PQgetvalue(res, 0, 1));
	r.version = (int)strtol(PQgetvalue(res, 0, 2), NULL, 10);
	r.carrier_version = (int)strtol(PQgetvalue(res, 0, 3), NULL, 10);
	r.attempts = (int)strtol(PQgetvalue(res, 0, 4), NULL, 10);
	PQclear(res);
	return r;
}

struct want {
	const char *number_id;
	int version, attempts;
};

static bool synced_at(void *arg)
{
	const struct want *w = arg;
	struct row r = row_of(w->number_id);

	return strcmp(r.status, "synced") == 0 &&
	       r.carrier_version >= w->version;
}

static bool attempts_at_least(void *arg)
{
	const struct want *w = arg;

	return row_of(w->number_id).attempts >= w->attempts;
}

/* The carrier's voice settings of the number. */
static json_t *on_carrier(const char *carrier_id)
{
	char path[160];
	json_t *doc, *data;

	snprintf(path, sizeof(path), "/v2/phone_numbers/%s/voice", carrier_id);
	doc = carrier_api("GET", path, NULL, 200);
	data = json_incref(json_object_get(doc, "data"));
	json_decref(doc);
	return data;
}

static long long carrier_version_of(const json_t *settings)
{
	return json_integer_value(
	        json_object_get(settings, "settings_version"));
}

static const char *forwards_to(const json_t *settings)
{
	return vox_json_str(json_object_get(settings, "call_forwarding"),
	                    "forwards_to");
}

Test(config_sync, a_pending_change_is_pushed_with_its_version)
{
	char number_id[40], carrier_id[64];
	struct want w;
	struct row r;
	json_t *s;

	number(number_id, carrier_id);
	w = (struct want){number_id, change(number_id, "+14155550142"), 0};
	cr_assert_eq(w.version, 2);
	cr_assert(t_wait_for(synced_at, &w, 15000), "not synced: %s",
	          row_of(number_id).error);
	r = row_of(number_id);
	cr_assert_eq(r.carrier_version, 2);
	cr_assert_eq(r.attempts, 0);
	cr_assert_str_eq(r.error, "");
	s = on_carrier(carrier_id);
	cr_assert_eq(carrier_version_of(s), 2);
	cr_assert_str_eq(forwards_to(s), "+14155550142");
	cr_assert(json_is_true(
	        json_object_get(json_object_get(s, "call_forwarding"),
	                        "call_forwarding_enabled")));
	json_decref(s);
}

static bool metrics_show_failures(void *arg)
{
	char *text = NULL;
	bool ok;

	(void)arg;
	if (t_http("GET", mport, "/metrics", NULL, NULL, &text) != 200) {
		free(text);
		return false;
	}
	ok = strstr(text,
	            "vox_carrier_sync_pushes_total{outcome=\"failed\"}") !=
	             NULL &&
	     strstr(text, "vox_carrier_sync_pending") != NULL;
	free(text);
	return ok;
}

Test(config_sync, carrier_down_then_back_ends_with_the_latest_version)
{
	char number_id[40], carrier_id[64];
	struct want w;
	struct row r;
	json_t *s;
	int first, second;

	number(number_id, carrier_id);
	carrier_admin("POST", "/admin/faults",
	              "{\"endpoint\":\"voice\",\"error_rate\":1,"
	              "\"status\":503}");
	first = change(number_id, "+14155550143");
	w = (struct want){number_id, first, 2};
	cr_assert(t_wait_for(attempts_at_least, &w, 20000),
	          "attempts did not grow: %d", row_of(number_id).attempts);
	r = row_of(number_id);
	cr_assert_str_eq(r.status, "pending_carrier");
	cr_assert_eq(r.carrier_version, 1);
	cr_assert(strstr(r.error, "503") != NULL ||
	                  strstr(r.error, "unavailable") != NULL ||
	                  strstr(r.error, "circuit") != NULL,
	          "carrier_error: %s", r.error);

	/* a second change while the carrier is still down */
	second = change(number_id, "+14155550144");
	cr_assert_eq(second, first + 1);
	w.attempts = r.attempts + 2;
	cr_assert(t_wait_for(attempts_at_least, &w, 20000),
	          "attempts did not grow after the second change");
	r = row_of(number_id);
	cr_assert_str_eq(r.status, "pending_carrier");
	cr_assert_neq(r.error[0], '\0');
	s = on_carrier(carrier_id);
	cr_assert_eq(carrier_version_of(s), 0, "the carrier got a push");
	json_decref(s);
	cr_assert(t_wait_for(metrics_show_failures, NULL, 5000),
	          "no failed pushes in the worker's metrics");

	/* the carrier comes back */
	carrier_admin("DELETE", "/admin/faults?endpoint=voice", NULL);
	w.version = second;
	cr_assert(t_wait_for(synced_at, &w, 30000), "not synced: %s",
	          row_of(number_id).error);
	r = row_of(number_id);
	cr_assert_eq(r.carrier_version, second);
	cr_assert_str_eq(r.error, "");
	s = on_carrier(carrier_id);
	cr_assert_eq(carrier_version_of(s), second);
	cr_assert_str_eq(forwards_to(s), "+14155550144");
	json_decref(s);
}

/* PATCH .../voice calls the sandbox counted, -1 if it did not answer. */
static long long voice_calls(void)
{
	char *text = NULL;
	json_t *doc;
	long long calls = -1;

	if (t_http("GET", sport, "/admin/stats", NULL, NULL, &text) == 200) {
		doc = json_loads(text, 0, NULL);
		calls = json_integer_value(json_object_get(
		        json_object_get(doc, "calls"), "voice"));
		json_decref(doc);
	}
	free(text);
	return calls;
}

static bool pushed_once_more(void *arg)
{
	return voice_calls() > *(const long long *)arg;
}

Test(config_sync, a_version_stored_during_a_push_is_pushed_next)
{
	char number_id[40], carrier_id[64];
	struct want w;
	json_t *s;
	long long before;
	int first, second;

	number(number_id, carrier_id);
	/* every push takes 0.7 s (the worker waits 1 s): time to store a
	 * newer version meanwhile */
	carrier_admin("POST", "/admin/faults",
	              "{\"endpoint\":\"voice\",\"latency_ms\":700}");
	before = voice_calls();
	first = change(number_id, "+14155550145");
	cr_assert(t_wait_for(pushed_once_more, &before, 10000),
	          "no push started");
	second = change(number_id, "+14155550146");
	w = (struct want){number_id, second, 0};
	cr_assert(t_wait_for(synced_at, &w, 20000), "not synced: %s",
	          row_of(number_id).error);
	carrier_admin("DELETE", "/admin/faults?endpoint=voice", NULL);
	cr_assert_eq(row_of(number_id).carrier_version, second);
	s = on_carrier(carrier_id);
	cr_assert_eq(carrier_version_of(s), second, "first was %d", first);
	cr_assert_str_eq(forwards_to(s), "+14155550146");
	json_decref(s);
}

Test(config_sync, an_older_version_arriving_late_is_refused)
{
	char number_id[40], carrier_id[64], url[64];
	vox_carrier_conf_t conf = {0};
	vox_carrier_forwarding_t fwd = {true, "+14155550199", false};
	vox_carrier_t *c;
	vox_error_t err;
	struct want w;
	long long held = 0;
	json_t *s;
	int latest;

	number(number_id, carrier_id);
	change(number_id, "+14155550147");
	latest = change(number_id, "+14155550148");
	w = (struct want){number_id, latest, 0};
	cr_assert(t_wait_for(synced_at, &w, 15000), "not synced: %s",
	          row_of(number_id).error);

	/* the push of version 2 that was held up somewhere arrives now */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", sport);
	conf.base_url = url;
	conf.api_key = "sandbox-key";
	c = vox_carrier_new(&conf, &err);
	cr_assert_not_null(c, "%s", err.message);
	cr_assert_eq(vox_carrier_push_forwarding(c, carrier_id, number_id,
	                                         latest - 1, &fwd, &held, &err),
	             0, "an older version is done, not an error: %s",
	             err.message);
	cr_assert_eq(held, latest, "the carrier holds %lld", held);
	/* the same version again is a replay, also done */
	cr_assert_eq(vox_carrier_push_forwarding(c, carrier_id, number_id,
	                                         latest, &fwd, &held, &err),
	             0, "%s", err.message);
	cr_assert_eq(held, latest);
	vox_carrier_destroy(c);

	s = on_carrier(carrier_id);
	cr_assert_eq(carrier_version_of(s), latest);
	cr_assert_str_eq(forwards_to(s), "+14155550148");
	json_decref(s);
	/* and the row does not go back */
	cr_assert_eq(row_of(number_id).carrier_version, latest);
	cr_assert_str_eq(row_of(number_id).status, "synced");

	/* the sandbox's answer itself: 409 with the version it has */
	char path[160], body[200];
	snprintf(path, sizeof(path), "/v2/phone_numbers/%s/voice", carrier_id);
	snprintf(body, sizeof(body),
	         "{\"settings_version\":%d,\"call_forwarding\":{"
	         "\"call_forwarding_enabled\":false}}",
	         latest - 1);
	s = carrier_api("PATCH", path, body, 409);
	cr_assert_eq(
	        json_integer_value(json_object_get(
	                json_object_get(
	                        json_array_get(json_object_get(s, "errors"), 0),
	                        "meta"),
	                "current_version")),
	        latest);
	json_decref(s);
}
