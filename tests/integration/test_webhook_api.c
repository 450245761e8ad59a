/*
 * /v1/webhook-endpoints against the real stack: the secret answered once
 * (sealed in PostgreSQL, never in GET, the same on an idempotent replay),
 * every field's limits, the destination filter at create and PATCH, the
 * 20-endpoint limit, tenancy and roles, rotation, delete, and the rows
 * test/recover/resend leave for the notifications worker; attempts read
 * from rows written here as the worker would. Also the usage trigger's
 * callback_url filter and callback_secret. One ingress for the suite.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "vox_crypto.h"
#include "vox_json.h"

#define ENC_KEY                                                                \
	"7f3c1e5a9b2d4f6081a3c5e7092b4d6f8a1c3e5079b2d4f6a8c0e2b4d6f8a0c2"
#define ALLOWED "127.0.0.77/32"

static int port;
static pid_t ingress;

static bool ingress_up(void *arg)
{
	(void)arg;
	return t_http("GET", port, "/healthz", NULL, NULL, NULL) == 200;
}

static void suite_start(void)
{
	static char port_env[64];

	port = t_free_port();
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", port);
	const char *const env[] = {port_env,
	                           "VOX_RATE_COMMAND=1000",
	                           "VOX_RATE_READ=1000",
	                           "VOX_ENCRYPTION_KEY=" ENC_KEY,
	                           "VOX_WEBHOOK_ALLOW_CIDRS=" ALLOWED,
	                           NULL};
	ingress = t_spawn("ingress", "webhook-api-ingress.log", env);
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
}

static void suite_stop(void)
{
	int status = t_stop(ingress, SIGTERM, 20000);

	cr_expect_eq(status, 0, "ingress exit status %d", status);
}

TestSuite(webhooks, .init = suite_start, .fini = suite_stop, .timeout = 120);

/* method path with key (and a JSON body, and an Idempotency-Key): the
 * status; *answer the parsed body (NULL when none). */
static int call(const char *method, const char *key, const char *path,
                const char *body, const char *idem, json_t **answer)
{
	char auth[96], ik[128], *text = NULL;
	const char *headers[4] = {auth, "Content-Type: application/json"};
	int status;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	if (idem != NULL) {
		snprintf(ik, sizeof(ik), "Idempotency-Key: %s", idem);
		headers[2] = ik;
	}
	status = t_http_h(method, port, path, body, headers, &text, NULL);
	*answer = text && *text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return status;
}

static const char *error_code(const json_t *answer)
{
	const char *code =
	        vox_json_str(json_object_get(answer, "error"), "code");

	return code ? code : "(none)";
}

static const char *error_field(const json_t *answer)
{
	const char *field = vox_json_str(
	        json_object_get(json_object_get(answer, "error"), "details"),
	        "field");

	return field ? field : "(none)";
}

/* Creates an endpoint from body (201 expected): its id into id. */
static void endpoint(const char *key, const char *body, char id[40])
{
	json_t *ans;
	int status =
	        call("POST", key, "/v1/webhook-endpoints", body, NULL, &ans);

	cr_assert_eq(status, 201, "status %d for %s", status, body);
	snprintf(id, 40, "%s", vox_json_str(ans, "id"));
	json_decref(ans);
}

/* One text value of a query with $1 = param (asserting one row). */
static char *sql_text(const char *sql, const char *param)
{
	vox_pg_t *pg = t_pg();
	PGresult *res = NULL;
	vox_error_t err;
	const char *params[] = {param};
	char *out;

	cr_assert_eq(vox_pg_exec(pg, sql, 1, params, &res, &err), 0, "%s",
	             err.message);
	cr_assert_eq(PQntuples(res), 1, "%s: %d rows", sql, PQntuples(res));
	out = strdup(PQgetisnull(res, 0, 0) ? "(null)" : PQgetvalue(res, 0, 0));
	PQclear(res);
	vox_pg_destroy(pg);
	return out;
}

static void sql_run(const char *sql, int n, const char *const *params)
{
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	cr_assert_eq(vox_pg_exec(pg, sql, n, params, NULL, &err), 0, "%s",
	             err.message);
	vox_pg_destroy(pg);
}

static long long count_rows(const char *sql, const char *param)
{
	vox_pg_t *pg = t_pg();
	long long n = t_pg_count(pg, sql, param);

	vox_pg_destroy(pg);
	return n;
}

/* Opens a sealed column (bytea text) with the suite's key and aad. */
static char *unseal(const char *column_text, const char *aad)
{
	vox_error_t err;
	vox_crypto_keyring_t *ring =
	        vox_crypto_keyring_new(ENC_KEY, NULL, &err);
	size_t sealed_len = 0, plain_len = 0;
	unsigned char *sealed;
	char *plain = NULL;

	cr_assert_not_null(ring, "%s", err.message);
	sealed = PQunescapeBytea((const unsigned char *)column_text,
	                         &sealed_len);
	cr_assert_eq(vox_crypto_open(ring, sealed, sealed_len, aad, strlen(aad),
	                             &plain, &plain_len, &err),
	             0, "%s", err.message);
	PQfreemem(sealed);
	vox_crypto_keyring_destroy(ring);
	return plain;
}

Test(webhooks, secret_is_answered_once_sealed_and_never_read_back)
{
	char account[40], key[64], aad[80], path[128];
	json_t *ans, *item;
	char *stored, *plain, *secret;
	int status;

	t_account("developer", account, key);
	status = call("POST", key, "/v1/webhook-endpoints",
	              "{\"url\":\"https://hooks.example.com/vox\","
	              "\"description\":\"prod\"}",
	              NULL, &ans);
	cr_assert_eq(status, 201, "status %d", status);
	secret = strdup(vox_json_str(ans, "secret"));
	cr_expect_eq(strncmp(secret, "whsec_", 6), 0, "%s", secret);
	cr_expect_str_eq(json_string_value(json_array_get(
	                         json_object_get(ans, "events"), 0)),
	                 "*");
	cr_expect(json_is_true(json_object_get(ans, "enabled")));
	cr_expect(json_is_null(json_object_get(ans, "disabled_reason")));
	snprintf(path, sizeof(path), "/v1/webhook-endpoints/%s",
	         vox_json_str(ans, "id"));
	snprintf(aad, sizeof(aad), "webhook_endpoints/%s",
	         vox_json_str(ans, "id"));
	stored = sql_text("SELECT secret_enc FROM webhook_endpoints WHERE id = "
	                  "$1",
	                  vox_json_str(ans, "id"));
	cr_expect_null(strstr(stored, secret + 6), "plaintext stored");
	plain = unseal(stored, aad);
	cr_expect_str_eq(plain, secret);
	json_decref(ans);

	status = call("GET", key, path, NULL, NULL, &ans);
	cr_assert_eq(status, 200);
	cr_expect_null(json_object_get(ans, "secret"));
	cr_expect_str_eq(vox_json_str(ans, "description"), "prod");
	json_decref(ans);
	status = call("GET", key, "/v1/webhook-endpoints", NULL, NULL, &ans);
	cr_assert_eq(status, 200);
	item = json_array_get(json_object_get(ans, "data"), 0);
	cr_expect_null(json_object_get(item, "secret"));
	cr_expect_str_eq(vox_json_str(item, "url"),
	                 "https://hooks.example.com/vox");
	json_decref(ans);
	free(stored);
	free(plain);
	free(secret);
}

Test(webhooks, idempotent_replay_answers_the_same_secret)
{
	char account[40], key[64];
	const char *body = "{\"url\":\"https://hooks.example.com/replay\"}";
	json_t *first, *again;

	t_account("admin", account, key);
	cr_assert_eq(call("POST", key, "/v1/webhook-endpoints", body,
	                  "ep-replay-1", &first),
	             201);
	cr_assert_eq(call("POST", key, "/v1/webhook-endpoints", body,
	                  "ep-replay-1", &again),
	             201);
	cr_expect_str_eq(vox_json_str(again, "secret"),
	                 vox_json_str(first, "secret"));
	cr_expect_str_eq(vox_json_str(again, "id"), vox_json_str(first, "id"));
	cr_expect_eq(count_rows("SELECT count(*) FROM webhook_endpoints WHERE "
	                        "account_id = $1",
	                        account),
	             1);
	json_decref(first);
	json_decref(again);
}

/* A body {"url": <url of n bytes>}. */
static char *url_body(size_t n)
{
	const char *head = "https://hooks.example.com/";
	char *url = malloc(n + 1), *body;
	json_t *doc;

	memcpy(url, head, strlen(head));
	memset(url + strlen(head), 'a', n - strlen(head));
	url[n] = '\0';
	doc = json_pack("{s:s}", "url", url);
	body = json_dumps(doc, 0);
	json_decref(doc);
	free(url);
	return body;
}

/* {"url":..., "description": <n characters>} */
static char *description_body(size_t n)
{
	char *d = malloc(n + 1), *body;
	json_t *doc;

	memset(d, 'd', n);
	d[n] = '\0';
	doc = json_pack("{s:s, s:s}", "url", "https://hooks.example.com/",
	                "description", d);
	body = json_dumps(doc, 0);
	json_decref(doc);
	free(d);
	return body;
}

static void expect_bad(const char *key, const char *method, const char *path,
                       const char *body, const char *field)
{
	json_t *ans;
	int status = call(method, key, path, body, NULL, &ans);

	cr_expect_eq(status, 400, "%s: status %d", body, status);
	cr_expect_str_eq(error_field(ans), field, "%s", body);
	json_decref(ans);
}

Test(webhooks, every_field_at_its_limit_and_one_over)
{
	char account[40], key[64], id[40];
	char *body;

	t_account("developer", account, key);
	body = url_body(2048);
	endpoint(key, body, id);
	free(body);
	body = url_body(2049);
	expect_bad(key, "POST", "/v1/webhook-endpoints", body, "url");
	free(body);
	body = description_body(500);
	endpoint(key, body, id);
	free(body);
	body = description_body(501);
	expect_bad(key, "POST", "/v1/webhook-endpoints", body, "description");
	free(body);
	/* every public type once: allowed */
	endpoint(key,
	         "{\"url\":\"https://hooks.example.com/\",\"events\":["
	         "\"usage.trigger.fired\",\"number.purchased\","
	         "\"number.activated\",\"number.deactivated\","
	         "\"number.released\",\"number.configured\","
	         "\"reservation.expired\",\"endpoint.disabled\","
	         "\"webhook.test\"],\"enabled\":false}",
	         id);
	{
		json_t *doc = json_pack("{s:s, s:[]}", "url",
		                        "https://hooks.example.com/", "events");
		json_t *events = json_object_get(doc, "events");

		for (int i = 0; i < 51; i++)
			json_array_append_new(events,
			                      json_string("number.activated"));
		body = json_dumps(doc, 0);
		json_decref(doc);
		expect_bad(key, "POST", "/v1/webhook-endpoints", body,
		           "events");
		free(body);
	}
	const char *bad[][2] = {
	        {"{}", "url"},
	        {"{\"url\":\"ftp://hooks.example.com/\"}", "url"},
	        {"{\"url\":\"HTTPS://hooks.example.com/\"}", "url"},
	        {"{\"url\":42}", "url"},
	        {"{\"url\":\"https://h.example.com/a b\"}", "url"},
	        {"{\"url\":\"https://h.example.com/\u00e9\"}", "url"},
	        {"{\"url\":\"https://h.example.com/\",\"events\":[]}",
	         "events"},
	        {"{\"url\":\"https://h.example.com/\",\"events\":"
	         "[\"number.sold\"]}",
	         "events"},
	        {"{\"url\":\"https://h.example.com/\",\"events\":"
	         "[\"*\",\"number.activated\"]}",
	         "events"},
	        {"{\"url\":\"https://h.example.com/\",\"events\":"
	         "[\"number.activated\",\"number.activated\"]}",
	         "events"},
	        {"{\"url\":\"https://h.example.com/\",\"events\":[1]}",
	         "events"},
	        {"{\"url\":\"https://h.example.com/\",\"events\":\"*\"}",
	         "events"},
	        {"{\"url\":\"https://h.example.com/\",\"enabled\":\"yes\"}",
	         "enabled"},
	        {"{\"url\":\"https://h.example.com/\",\"description\":7}",
	         "description"},
	        {"{\"url\":\"https://h.example.com/\",\"secret\":\"x\"}",
	         "secret"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad(key, "POST", "/v1/webhook-endpoints", bad[i][0],
		           bad[i][1]);
	cr_expect_eq(count_rows("SELECT count(*) FROM webhook_endpoints WHERE "
	                        "account_id = $1",
	                        account),
	             3);
}

static const char *const refused_urls[] = {
        "http://127.0.0.1/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://localhost/",
        "http://[::ffff:10.0.0.1]/",
};

Test(webhooks, private_and_loopback_destinations_are_refused)
{
	char account[40], key[64], id[40], path[128], body[160];
	json_t *ans;

	t_account("developer", account, key);
	for (size_t i = 0; i < sizeof(refused_urls) / sizeof(refused_urls[0]);
	     i++) {
		snprintf(body, sizeof(body), "{\"url\":\"%s\"}",
		         refused_urls[i]);
		expect_bad(key, "POST", "/v1/webhook-endpoints", body, "url");
	}
	/* the operator's allowlist admits a self-hosted receiver */
	endpoint(key, "{\"url\":\"http://127.0.0.77:9/\"}", id);
	snprintf(path, sizeof(path), "/v1/webhook-endpoints/%s", id);
	for (size_t i = 0; i < sizeof(refused_urls) / sizeof(refused_urls[0]);
	     i++) {
		snprintf(body, sizeof(body), "{\"url\":\"%s\"}",
		         refused_urls[i]);
		expect_bad(key, "PATCH", path, body, "url");
	}
	cr_assert_eq(call("GET", key, path, NULL, NULL, &ans), 200);
	cr_expect_str_eq(vox_json_str(ans, "url"), "http://127.0.0.77:9/");
	json_decref(ans);
	/* a name that does not resolve is accepted: checked at delivery */
	endpoint(key, "{\"url\":\"https://no-such-host.invalid/x\"}", id);
	cr_assert_eq(call("POST", key, "/v1/usage-triggers",
	                  "{\"category\":\"calls\",\"threshold\":1,"
	                  "\"trigger_by\":\"count\",\"recurring\":\"none\","
	                  "\"callback_url\":\"http://169.254.169.254/latest/"
	                  "meta-data\"}",
	                  NULL, &ans),
	             400);
	cr_expect_str_eq(error_field(ans), "callback_url");
	json_decref(ans);
}

Test(webhooks, twenty_endpoints_per_account)
{
	char account[40], key[64], id[40], path[128];
	json_t *ans;

	t_account("developer", account, key);
	for (int i = 0; i < 20; i++)
		endpoint(key, "{\"url\":\"https://hooks.example.com/\"}", id);
	cr_assert_eq(call("POST", key, "/v1/webhook-endpoints",
	                  "{\"url\":\"https://hooks.example.com/\"}", NULL,
	                  &ans),
	             409);
	cr_expect_str_eq(error_code(ans), "limit_reached");
	json_decref(ans);
	/* a deleted one does not count */
	snprintf(path, sizeof(path), "/v1/webhook-endpoints/%s", id);
	cr_assert_eq(call("DELETE", key, path, NULL, NULL, &ans), 204);
	json_decref(ans);
	endpoint(key, "{\"url\":\"https://hooks.example.com/\"}", id);
}

Test(webhooks, other_accounts_get_404_and_viewers_403)
{
	char a[40], a_key[64], b[40], b_key[64], viewer[64], id[40];
	char path[200];
	json_t *ans;
	const char *writes[][2] = {
	        {"PATCH", ""},
	        {"DELETE", ""},
	        {"POST", "/rotate-secret"},
	        {"POST", "/test"},
	        {"POST", "/recover"},
	        {"POST", "/messages/msg_1/resend"},
	};

	t_account("developer", a, a_key);
	t_account("developer", b, b_key);
	t_key(a, "viewer", viewer, NULL);
	endpoint(a_key, "{\"url\":\"https://hooks.example.com/\"}", id);
	snprintf(path, sizeof(path), "/v1/webhook-endpoints/%s", id);
	cr_expect_eq(call("GET", b_key, path, NULL, NULL, &ans), 404);
	cr_expect_str_eq(error_code(ans), "webhook_endpoint_not_found");
	json_decref(ans);
	cr_expect_eq(call("GET", viewer, path, NULL, NULL, &ans), 200);
	json_decref(ans);
	cr_expect_eq(call("POST", viewer, "/v1/webhook-endpoints",
	                  "{\"url\":\"https://hooks.example.com/\"}", NULL,
	                  &ans),
	             403);
	json_decref(ans);
	time_t hour_ago = time(NULL) - 3600;
	char recover[80];
	struct tm tm;

	strftime(recover, sizeof(recover), "{\"since\":\"%Y-%m-%dT%H:%M:%SZ\"}",
	         gmtime_r(&hour_ago, &tm));
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		const char *body =
		        strcmp(writes[i][1], "/recover") == 0 ? recover : "{}";

		snprintf(path, sizeof(path), "/v1/webhook-endpoints/%s%s", id,
		         writes[i][1]);
		cr_expect_eq(call(writes[i][0], viewer, path, body, NULL, &ans),
		             403, "%s %s", writes[i][0], path);
		json_decref(ans);
		cr_expect_eq(call(writes[i][0], b_key, path, body, NULL, &ans),
		             404, "%s %s", writes[i][0], path);
		json_decref(ans);
	}
	snprintf(path, sizeof(path), "/v1/webhook-endpoints/%s/attempts", id);
	cr_expect_eq(call("GET", b_key, path, NULL, NULL, &ans), 404);
	json_decref(ans);
	cr_expect_eq(call("GET", a_key, "/v1/webhook-endpoints/not-a-uuid",
	                  NULL, NULL, &ans),
	             404);
	json_decref(ans);
}

Test(webhooks, patch_changes_fields_and_enabling_clears_the_disable)
{
	char account[40], key[64], id[40], path[128];
	json_t *ans;

	t_account("developer", account, key);
	endpoint(key, "{\"url\":\"https://hooks.example.com/\"}", id);
	snprintf(path, sizeof(path), "/v1/webhook-endpoints/%s", id);
	const char *params[] = {id};
	sql_run("UPDATE webhook_endpoints SET enabled = false, "
	        "disabled_reason = 'answered 410', failing_since = now(), "
	        "disabled_at = now() WHERE id = $1",
	        1, params);
	cr_assert_eq(call("GET", key, path, NULL, NULL, &ans), 200);
	cr_expect_str_eq(vox_json_str(ans, "disabled_reason"), "answered 410");
	json_decref(ans);
	cr_assert_eq(call("PATCH", key, path,
	                  "{\"enabled\":true,\"events\":[\"number.activated\"],"
	                  "\"description\":\"again\",\"url\":"
	                  "\"https://hooks2.example.com/\"}",
	                  NULL, &ans),
	             200);
	cr_expect(json_is_true(json_object_get(ans, "enabled")));
	cr_expect(json_is_null(json_object_get(ans, "disabled_reason")));
	cr_expect_str_eq(vox_json_str(ans, "url"),
	                 "https://hooks2.example.com/");
	cr_expect_str_eq(vox_json_str(ans, "description"), "again");
	cr_expect_str_eq(json_string_value(json_array_get(
	                         json_object_get(ans, "events"), 0)),
	                 "number.activated");
	json_decref(ans);
	cr_expect_eq(count_rows("SELECT count(*) FROM webhook_endpoints WHERE "
	                        "id = $1 AND failing_since IS NULL AND "
	                        "disabled_at IS NULL",
	                        id),
	             1);
	/* description null clears it; other fields stay */
	cr_assert_eq(
	        call("PATCH", key, path, "{\"description\":null}", NULL, &ans),
	        200);
	cr_expect(json_is_null(json_object_get(ans, "description")));
	cr_expect_str_eq(vox_json_str(ans, "url"),
	                 "https://hooks2.example.com/");
	json_decref(ans);
	expect_bad(key, "PATCH", path, "{\"events\":[]}", "events");
	expect_bad(key, "PATCH", path, "{\"url\":null}", "url");
}

/* A webhook notification row of endpoint id with status and message id,
 * created `age` ago; its id into out (may be NULL). */
static void delivery(const char *account, const char *id, const char *status,
                     const char *msg_id, const char *age, char out[40])
{
	char *nid;
	const char *params[] = {account, id, status, msg_id, age};
	vox_pg_t *pg = t_pg();
	PGresult *res = NULL;
	vox_error_t err;

	cr_assert_eq(
	        vox_pg_exec(
	                pg,
	                "INSERT INTO notifications (account_id, "
	                "webhook_endpoint_id, channel, recipient, "
	                "event_type, template, message_id, ordering_key, "
	                "sequence, status, attempts, tries, sent_at, "
	                "created_at) VALUES ($1, $2::uuid, 'webhook', "
	                "'https://hooks.example.com/', 'number.activated', "
	                "'number.activated', $4, $2::text, 1, $3, 8, 8, CASE "
	                "WHEN $3 IN ('sent', 'delivered') THEN now() END, "
	                "now() - $5::interval) RETURNING id",
	                5, params, &res, &err),
	        0, "%s", err.message);
	nid = PQgetvalue(res, 0, 0);
	if (out != NULL)
		snprintf(out, 40, "%s", nid);
	PQclear(res);
	vox_pg_destroy(pg);
}

Test(webhooks, delete_cancels_queued_deliveries_and_is_404_after)
{
	char account[40], key[64], id[40], path[128], queued[40], failed[40];
	json_t *ans;

	t_account("developer", account, key);
	endpoint(key, "{\"url\":\"https://hooks.example.com/\"}", id);
	delivery(account, id, "queued", "msg_q1", "1 minute", queued);
	delivery(account, id, "failed", "msg_f1", "1 minute", failed);
	snprintf(path, sizeof(path), "/v1/webhook-endpoints/%s", id);
	cr_assert_eq(call("DELETE", key, path, NULL, NULL, &ans), 204);
	cr_expect_null(ans);
	cr_expect_eq(count_rows("SELECT count(*) FROM notifications WHERE id = "
	                        "$1 AND status = 'cancelled'",
	                        queued),
	             1);
	cr_expect_eq(count_rows("SELECT count(*) FROM notifications WHERE id = "
	                        "$1 AND status = 'failed'",
	                        failed),
	             1);
	cr_expect_eq(count_rows("SELECT count(*) FROM webhook_endpoints WHERE "
	                        "id = $1 AND deleted_at IS NOT NULL AND NOT "
	                        "enabled",
	                        id),
	             1);
	cr_expect_eq(call("GET", key, path, NULL, NULL, &ans), 404);
	json_decref(ans);
	cr_expect_eq(call("DELETE", key, path, NULL, NULL, &ans), 404);
	json_decref(ans);
	cr_expect_eq(call("PATCH", key, path, "{\"enabled\":true}", NULL, &ans),
	             404);
	json_decref(ans);
	cr_assert_eq(
	        call("GET", key, "/v1/webhook-endpoints", NULL, NULL, &ans),
	        200);
	cr_expect_eq(json_array_size(json_object_get(ans, "data")), 0);
	json_decref(ans);
}

Test(webhooks, rotation_answers_a_new_secret_and_keeps_the_old_for_a_day)
{
	char account[40], key[64], id[40], path[160], aad[80];
	char *before, *old, *plain;
	json_t *ans, *again;

	t_account("developer", account, key);
	endpoint(key, "{\"url\":\"https://hooks.example.com/\"}", id);
	before = sql_text("SELECT secret_enc FROM webhook_endpoints WHERE id = "
	                  "$1",
	                  id);
	snprintf(path, sizeof(path), "/v1/webhook-endpoints/%s/rotate-secret",
	         id);
	cr_assert_eq(call("POST", key, path, NULL, "rot-1", &ans), 200);
	cr_expect_str_eq(vox_json_str(ans, "id"), id);
	cr_expect_eq(strncmp(vox_json_str(ans, "secret"), "whsec_", 6), 0);
	cr_expect_not_null(vox_json_str(ans, "previous_secret_expires_at"));
	/* a replay of the same key answers the same secret */
	cr_assert_eq(call("POST", key, path, NULL, "rot-1", &again), 200);
	cr_expect_str_eq(vox_json_str(again, "secret"),
	                 vox_json_str(ans, "secret"));
	old = sql_text("SELECT secret_old_enc FROM webhook_endpoints WHERE id "
	               "= $1",
	               id);
	cr_expect_str_eq(old, before);
	cr_expect_eq(count_rows("SELECT count(*) FROM webhook_endpoints WHERE "
	                        "id = $1 AND secret_old_expires_at BETWEEN "
	                        "now() + interval '23 hours 59 minutes' AND "
	                        "now() + interval '24 hours'",
	                        id),
	             1);
	free(old);
	old = sql_text("SELECT secret_enc FROM webhook_endpoints WHERE id = $1",
	               id);
	snprintf(aad, sizeof(aad), "webhook_endpoints/%s", id);
	plain = unseal(old, aad);
	cr_expect_str_eq(plain, vox_json_str(ans, "secret"));
	free(plain);
	free(old);
	free(before);
	json_decref(ans);
	json_decref(again);
}

Test(webhooks, test_queues_one_signed_message_for_the_worker)
{
	char account[40], key[64], id[40], path[160];
	json_t *ans, *payload;
	char *text;
	vox_pg_t *pg = t_pg();
	PGresult *res = NULL;
	vox_error_t err;

	t_account("developer", account, key);
	endpoint(key, "{\"url\":\"http://127.0.0.77:9/hook\"}", id);
	snprintf(path, sizeof(path), "/v1/webhook-endpoints/%s/test", id);
	cr_assert_eq(call("POST", key, path, NULL, NULL, &ans), 202);
	json_decref(ans);
	cr_assert_eq(call("POST", key, path, NULL, NULL, &ans), 202);
	const char *msg = vox_json_str(ans, "message_id");
	cr_assert_not_null(msg);
	cr_expect_eq(strlen(msg), 36, "%s", msg);
	cr_expect_eq(strncmp(msg, "msg_", 4), 0, "%s", msg);
	cr_expect_eq(strspn(msg + 4, "0123456789abcdef"), 32, "%s", msg);
	const char *params[] = {msg};
	cr_assert_eq(vox_pg_exec(pg,
	                         "SELECT channel, webhook_endpoint_id, "
	                         "recipient, event_type, template, "
	                         "ordering_key, sequence, status, "
	                         "next_attempt_at <= now(), payload::text, "
	                         "account_id FROM notifications WHERE "
	                         "message_id = $1",
	                         1, params, &res, &err),
	             0, "%s", err.message);
	cr_assert_eq(PQntuples(res), 1);
	cr_expect_str_eq(PQgetvalue(res, 0, 0), "webhook");
	cr_expect_str_eq(PQgetvalue(res, 0, 1), id);
	cr_expect_str_eq(PQgetvalue(res, 0, 2), "http://127.0.0.77:9/hook");
	cr_expect_str_eq(PQgetvalue(res, 0, 3), "webhook.test");
	cr_expect_str_eq(PQgetvalue(res, 0, 4), "webhook.test");
	cr_expect_str_eq(PQgetvalue(res, 0, 5), id);
	cr_expect_str_eq(PQgetvalue(res, 0, 6), "2"); /* the second test */
	cr_expect_str_eq(PQgetvalue(res, 0, 7), "queued");
	cr_expect_str_eq(PQgetvalue(res, 0, 8), "t");
	cr_expect_str_eq(PQgetvalue(res, 0, 10), account);
	text = PQgetvalue(res, 0, 9);
	payload = json_loads(text, 0, NULL);
	cr_assert_not_null(payload, "%s", text);
	cr_expect_str_eq(vox_json_str(payload, "id"), msg);
	cr_expect_str_eq(vox_json_str(payload, "type"), "webhook.test");
	cr_expect_str_eq(vox_json_str(payload, "account_id"), account);
	cr_expect_eq(json_integer_value(json_object_get(payload, "sequence")),
	             2);
	cr_expect_not_null(vox_json_str(payload, "timestamp"));
	cr_expect_str_eq(
	        vox_json_str(json_object_get(payload, "data"), "endpoint_id"),
	        id);
	json_decref(payload);
	PQclear(res);
	vox_pg_destroy(pg);
	json_decref(ans);
	/* a URL refused now (made so behind the API's back) is 400 */
	const char *p2[] = {id};
	sql_run("UPDATE webhook_endpoints SET url = 'http://10.0.0.1/' WHERE "
	        "id = $1",
	        1, p2);
	cr_assert_eq(call("POST", key, path, NULL, NULL, &ans), 400);
	cr_expect_str_eq(error_field(ans), "url");
	json_decref(ans);
}

/* An attempt row of notification nid, started `ago` before now. */
static void attempt(const char *account, const char *nid, int n,
                    const char *outcome, const char *ago)
{
	char num[16];

	snprintf(num, sizeof(num), "%d", n);
	const char *params[] = {account, nid, num, outcome, ago};
	sql_run("INSERT INTO notification_attempts (notification_id, "
	        "account_id, attempt, channel, outcome, status_code, "
	        "duration_ms, error, next_attempt_at, started_at, finished_at) "
	        "VALUES ($2, $1, $3::int, 'webhook', $4, CASE $4 WHEN "
	        "'succeeded' THEN 200 ELSE 503 END, 120, CASE $4 WHEN 'failed' "
	        "THEN 'answered 503' END, CASE $4 WHEN 'failed' THEN now() + "
	        "interval '5 minutes' END, now() - $5::interval, now() - "
	        "$5::interval + interval '120 ms')",
	        5, params);
}

Test(webhooks, attempts_are_listed_newest_first_in_pages)
{
	char account[40], key[64], id[40], other[40], path[256], nid[40];
	char onid[40];
	json_t *ans, *first;
	const char *cursor;

	t_account("developer", account, key);
	endpoint(key, "{\"url\":\"https://hooks.example.com/\"}", id);
	endpoint(key, "{\"url\":\"https://hooks.example.com/\"}", other);
	delivery(account, id, "delivered", "msg_att1", "1 hour", nid);
	delivery(account, other, "failed", "msg_att2", "1 hour", onid);
	attempt(account, nid, 1, "failed", "30 minutes");
	attempt(account, nid, 2, "abandoned", "20 minutes");
	attempt(account, nid, 3, "succeeded", "10 minutes");
	attempt(account, onid, 1, "failed", "5 minutes");
	snprintf(path, sizeof(path),
	         "/v1/webhook-endpoints/%s/attempts?limit=2", id);
	cr_assert_eq(call("GET", key, path, NULL, NULL, &ans), 200);
	cr_assert_eq(json_array_size(json_object_get(ans, "data")), 2);
	first = json_array_get(json_object_get(ans, "data"), 0);
	cr_expect_eq(json_integer_value(json_object_get(first, "attempt")), 3);
	cr_expect_str_eq(vox_json_str(first, "outcome"), "succeeded");
	cr_expect_str_eq(vox_json_str(first, "message_id"), "msg_att1");
	cr_expect_str_eq(vox_json_str(first, "event_type"), "number.activated");
	cr_expect_eq(json_integer_value(json_object_get(first, "status_code")),
	             200);
	cr_expect_eq(json_integer_value(json_object_get(first, "duration_ms")),
	             120);
	cr_expect(json_is_null(json_object_get(first, "error")));
	cr_expect_not_null(vox_json_str(first, "started_at"));
	cr_expect_not_null(vox_json_str(first, "finished_at"));
	cr_expect(json_is_null(json_object_get(first, "next_attempt_at")));
	cr_expect_eq(json_object_size(first), 11);
	cursor = vox_json_str(ans, "next_cursor");
	cr_assert_not_null(cursor);
	snprintf(path, sizeof(path),
	         "/v1/webhook-endpoints/%s/attempts?limit=2&cursor=%s", id,
	         cursor);
	json_decref(ans);
	cr_assert_eq(call("GET", key, path, NULL, NULL, &ans), 200);
	cr_assert_eq(json_array_size(json_object_get(ans, "data")), 1);
	first = json_array_get(json_object_get(ans, "data"), 0);
	cr_expect_eq(json_integer_value(json_object_get(first, "attempt")), 1);
	cr_expect_str_eq(vox_json_str(first, "error"), "answered 503");
	cr_expect_not_null(vox_json_str(first, "next_attempt_at"));
	cr_expect(json_is_null(json_object_get(ans, "next_cursor")));
	json_decref(ans);
	snprintf(path, sizeof(path),
	         "/v1/webhook-endpoints/%s/attempts?status=abandoned", id);
	cr_assert_eq(call("GET", key, path, NULL, NULL, &ans), 200);
	cr_expect_eq(json_array_size(json_object_get(ans, "data")), 1);
	json_decref(ans);
	snprintf(path, sizeof(path),
	         "/v1/webhook-endpoints/%s/attempts?status=lost", id);
	cr_assert_eq(call("GET", key, path, NULL, NULL, &ans), 400);
	json_decref(ans);
	snprintf(path, sizeof(path),
	         "/v1/webhook-endpoints/%s/attempts?limit=101", id);
	cr_assert_eq(call("GET", key, path, NULL, NULL, &ans), 400);
	json_decref(ans);
}

Test(webhooks, recover_queues_failed_deliveries_since_a_time)
{
	char account[40], key[64], id[40], path[160], body[160], since[40];
	char until[40], recent[40], older[40], done[40];
	json_t *ans;
	time_t now = time(NULL), t;
	struct tm tm;

	t_account("developer", account, key);
	endpoint(key, "{\"url\":\"https://hooks.example.com/\"}", id);
	delivery(account, id, "failed", "msg_r1", "1 hour", recent);
	delivery(account, id, "failed", "msg_r2", "3 hours", older);
	delivery(account, id, "delivered", "msg_r3", "1 hour", done);
	snprintf(path, sizeof(path), "/v1/webhook-endpoints/%s/recover", id);
	t = now - 2 * 3600;
	gmtime_r(&t, &tm);
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(body, sizeof(body), "{\"since\":\"%s\"}", since);
	cr_assert_eq(call("POST", key, path, body, NULL, &ans), 202);
	cr_expect_eq(json_integer_value(json_object_get(ans, "requeued")), 1);
	json_decref(ans);
	cr_expect_eq(count_rows("SELECT count(*) FROM notifications WHERE id = "
	                        "$1 AND status = 'queued' AND attempts = 0 AND "
	                        "tries = 8 AND lease_until IS NULL AND "
	                        "next_attempt_at <= now()",
	                        recent),
	             1);
	cr_expect_eq(count_rows("SELECT count(*) FROM notifications WHERE id = "
	                        "$1 AND status = 'failed'",
	                        older),
	             1);
	cr_expect_eq(count_rows("SELECT count(*) FROM notifications WHERE id = "
	                        "$1 AND status = 'delivered'",
	                        done),
	             1);
	/* since and until */
	t = now - 4 * 3600;
	gmtime_r(&t, &tm);
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	t = now - 2 * 3600;
	gmtime_r(&t, &tm);
	strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(body, sizeof(body), "{\"since\":\"%s\",\"until\":\"%s\"}",
	         since, until);
	cr_assert_eq(call("POST", key, path, body, NULL, &ans), 202, "%s",
	             body);
	cr_expect_eq(json_integer_value(json_object_get(ans, "requeued")), 1);
	json_decref(ans);
	/* bad ranges */
	t = now + 3600;
	gmtime_r(&t, &tm);
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(body, sizeof(body), "{\"since\":\"%s\"}", since);
	expect_bad(key, "POST", path, body, "since");
	t = now - 15 * 86400;
	gmtime_r(&t, &tm);
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(body, sizeof(body), "{\"since\":\"%s\"}", since);
	expect_bad(key, "POST", path, body, "since");
	expect_bad(key, "POST", path, "{\"since\":\"yesterday\"}", "since");
	expect_bad(key, "POST", path, "{}", "since");
	t = now - 3600;
	gmtime_r(&t, &tm);
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(body, sizeof(body),
	         "{\"since\":\"%s\",\"until\":\"2020-01-01T00:00:00Z\"}",
	         since);
	expect_bad(key, "POST", path, body, "until");
}

Test(webhooks, resend_queues_one_message_again)
{
	char account[40], key[64], id[40], path[200], nid[40];
	json_t *ans;

	t_account("developer", account, key);
	endpoint(key, "{\"url\":\"https://hooks.example.com/\"}", id);
	delivery(account, id, "delivered",
	         "msg_0193a6012b3c7d4e8f50617283940a1b", "1 day", nid);
	snprintf(path, sizeof(path),
	         "/v1/webhook-endpoints/%s/messages/"
	         "msg_0193a6012b3c7d4e8f50617283940a1b/resend",
	         id);
	cr_assert_eq(call("POST", key, path, NULL, NULL, &ans), 202);
	cr_expect_str_eq(vox_json_str(ans, "message_id"),
	                 "msg_0193a6012b3c7d4e8f50617283940a1b");
	json_decref(ans);
	cr_expect_eq(count_rows("SELECT count(*) FROM notifications WHERE id = "
	                        "$1 AND status = 'queued' AND attempts = 0 AND "
	                        "tries = 8 AND next_attempt_at <= now()",
	                        nid),
	             1);
	cr_assert_eq(call("POST", key, path, NULL, NULL, &ans), 409);
	cr_expect_str_eq(error_code(ans), "already_queued");
	json_decref(ans);
	snprintf(path, sizeof(path),
	         "/v1/webhook-endpoints/%s/messages/msg_nope/resend", id);
	cr_assert_eq(call("POST", key, path, NULL, NULL, &ans), 404);
	cr_expect_str_eq(error_code(ans), "message_not_found");
	json_decref(ans);
}

Test(webhooks, usage_trigger_callback_secret_is_shown_once)
{
	char account[40], key[64], path[128], aad[80];
	json_t *ans;
	char *stored, *plain;

	t_account("developer", account, key);
	cr_assert_eq(call("POST", key, "/v1/usage-triggers",
	                  "{\"category\":\"calls\",\"threshold\":10,"
	                  "\"trigger_by\":\"count\",\"recurring\":\"daily\","
	                  "\"callback_url\":\"https://hooks.example.com/u\"}",
	                  NULL, &ans),
	             201);
	cr_expect_eq(strncmp(vox_json_str(ans, "callback_secret"), "whsec_", 6),
	             0);
	snprintf(aad, sizeof(aad), "usage_triggers/%s",
	         vox_json_str(ans, "id"));
	stored =
	        sql_text("SELECT callback_secret_enc FROM usage_triggers WHERE "
	                 "id = $1",
	                 vox_json_str(ans, "id"));
	plain = unseal(stored, aad);
	cr_expect_str_eq(plain, vox_json_str(ans, "callback_secret"));
	snprintf(path, sizeof(path), "/v1/usage-triggers/%s",
	         vox_json_str(ans, "id"));
	json_decref(ans);
	cr_assert_eq(call("GET", key, path, NULL, NULL, &ans), 200);
	cr_expect_null(json_object_get(ans, "callback_secret"));
	json_decref(ans);
	cr_assert_eq(call("GET", key, "/v1/usage-triggers", NULL, NULL, &ans),
	             200);
	cr_expect_null(
	        json_object_get(json_array_get(json_object_get(ans, "data"), 0),
	                        "callback_secret"));
	json_decref(ans);
	free(stored);
	free(plain);
}
