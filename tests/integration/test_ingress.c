/*
 * The ingress against the real stack: the canary end to end, credentials
 * (API keys, JWTs), roles, tenancy, idempotency, input limits, and the
 * errors users see. One ingress and one provisioning worker for the suite.
 */
#include <criterion/criterion.h>
#include <jwt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "vox_json.h"

#define JWT_SECRET "test-secret-0123456789abcdef0123456789abcdef"

static int port;
static pid_t ingress, worker;
static char owner_key[64], account_a[40];

static bool ingress_up(void *arg)
{
	(void)arg;
	return t_http("GET", port, "/healthz", NULL, NULL, NULL) == 200;
}

static void start_pipeline(void)
{
	static char port_env[64], openapi[600];

	port = t_free_port();
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", port);
	snprintf(openapi, sizeof(openapi),
	         "VOX_OPENAPI_FILE=%s/schemas/openapi.yaml", t_env("VOX_ROOT"));
	const char *const ienv[] = {port_env,
	                            openapi,
	                            "VOX_JWT_SECRET=" JWT_SECRET,
	                            "VOX_JWT_ISSUER=https://id.example",
	                            "VOX_JWT_AUDIENCE=voxlink",
	                            "VOX_RATE_COMMAND=1000",
	                            "VOX_RATE_READ=1000",
	                            NULL};
	const char *const wenv[] = {"VOX_WORKER_METRICS_PORT=0",
	                            "VOX_KAFKA_SESSION_TIMEOUT_MS=6000", NULL};
	ingress = t_spawn("ingress", "ingress-suite.log", ienv);
	worker = t_spawn("provisioning", "ingress-suite-worker.log", wenv);
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
	t_account("owner", account_a, owner_key);
}

static void stop_pipeline(void)
{
	int istatus = t_stop(ingress, SIGTERM, 20000);
	int wstatus = t_stop(worker, SIGTERM, 20000);

	cr_expect_eq(istatus, 0, "ingress exit status %d", istatus);
	cr_expect_eq(wstatus, 0, "worker exit status %d", wstatus);
}

TestSuite(ingress, .init = start_pipeline, .fini = stop_pipeline,
          .timeout = 120);

/* The request with "Authorization: Bearer key" (key may be NULL) plus
 * extra headers; checks the status and returns the parsed body. */
static json_t *call(const char *method, const char *path, const char *key,
                    const char *body, const char *extra, int expect,
                    char **headers_out)
{
	char auth[600], *text = NULL, *headers = NULL;
	const char *list[4] = {NULL};
	int n = 0, status;
	json_t *doc;

	if (key != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
		list[n++] = auth;
	}
	if (body != NULL)
		list[n++] = "Content-Type: application/json";
	if (extra != NULL)
		list[n++] = extra;
	status = t_http_h(method, port, path, body, list, &text, &headers);
	cr_assert_eq(status, expect, "%s %s: %d %s", method, path, status,
	             text);
	doc = json_loads(text, JSON_DECODE_ANY, NULL);
	cr_assert_not_null(doc, "not JSON: %s", text);
	free(text);
	if (headers_out != NULL)
		*headers_out = headers;
	else
		free(headers);
	return doc;
}

static void expect_error(json_t *doc, const char *code)
{
	json_t *e = json_object_get(doc, "error");

	cr_assert_not_null(e, "no error object");
	cr_assert_str_eq(vox_json_str(e, "code"), code);
	cr_assert_not_null(vox_json_str(e, "message"));
	cr_assert_not_null(vox_json_str(e, "timestamp"));
	cr_assert_not_null(vox_json_str(e, "requestId"));
	cr_assert(json_is_object(json_object_get(e, "details")));
	json_decref(doc);
}

struct op_wait {
	char path[128];
	const char *key;
	json_t *last;
};

static bool op_completed(void *arg)
{
	struct op_wait *w = arg;
	char auth[600], *text = NULL;
	const char *h[] = {auth, NULL};

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", w->key);
	json_decref(w->last);
	w->last = NULL;
	if (t_http_h("GET", port, w->path, NULL, h, &text, NULL) == 200)
		w->last = json_loads(text, 0, NULL);
	free(text);
	return w->last &&
	       strcmp(vox_json_str(w->last, "status"), "completed") == 0;
}

static double canary_round_trip(const char *key)
{
	struct op_wait w = {.key = key, .last = NULL};
	struct timespec t0, t1;
	json_t *accepted, *history;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	accepted = call("POST", "/v1/canary", key, NULL, NULL, 202, NULL);
	cr_assert_str_eq(vox_json_str(accepted, "status"), "accepted");
	snprintf(w.path, sizeof(w.path), "/v1/operations/%s",
	         vox_json_str(accepted, "id"));
	/* Accepted means readable at once: never 404. */
	json_decref(call("GET", w.path, key, NULL, NULL, 200, NULL));
	cr_assert(t_wait_for(op_completed, &w, 60000), "not completed: %s",
	          w.path);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	history = json_object_get(w.last, "history");
	cr_assert_eq(json_array_size(history), 2);
	cr_assert_str_eq(vox_json_str(json_array_get(history, 0), "status"),
	                 "accepted");
	cr_assert_str_eq(vox_json_str(json_array_get(history, 1), "status"),
	                 "completed");
	cr_assert_str_eq(vox_json_str(w.last, "account_id"), account_a);
	json_decref(accepted);
	json_decref(w.last);
	return (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

Test(ingress, canary_accepted_then_completed_within_a_second)
{
	double first = canary_round_trip(owner_key);
	double second = canary_round_trip(owner_key);

	cr_log_info("canary round trips: first %.1f ms, then %.1f ms", first,
	            second);
	cr_assert_lt(second, 1000.0, "completed after %.1f ms", second);
}

Test(ingress, prefer_wait_returns_the_finished_operation)
{
	char *headers = NULL;
	json_t *op;

	canary_round_trip(owner_key); /* the worker has joined its group */
	op = call("POST", "/v1/canary", owner_key, NULL, "Prefer: wait=10", 200,
	          &headers);
	cr_assert_str_eq(vox_json_str(op, "status"), "completed");
	cr_assert(strstr(headers, "Preference-Applied: wait=10"), "%s",
	          headers);
	free(headers);
	json_decref(op);
}

Test(ingress, credentials_missing_malformed_unknown_revoked)
{
	char key[64], key_id[40], path[128];

	expect_error(call("POST", "/v1/canary", NULL, NULL, NULL, 401, NULL),
	             "missing_credentials");
	expect_error(
	        call("POST", "/v1/canary", "vox_short", NULL, NULL, 401, NULL),
	        "invalid_credentials");
	expect_error(call("POST", "/v1/canary",
	                  "vox_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	                  NULL, NULL, 401, NULL),
	             "invalid_credentials");
	/* Revoked through the API: refused at once. */
	t_key(account_a, "developer", key, key_id);
	json_decref(call("POST", "/v1/canary", key, NULL, NULL, 202, NULL));
	snprintf(path, sizeof(path), "/v1/api-keys/%s", key_id);
	json_decref(call("DELETE", path, owner_key, NULL, NULL, 200, NULL));
	expect_error(call("POST", "/v1/canary", key, NULL, NULL, 401, NULL),
	             "invalid_credentials");
}

struct revoked {
	const char *key;
};

static bool refused(void *arg)
{
	struct revoked *r = arg;
	char auth[600];
	const char *h[] = {auth, NULL};

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->key);
	return t_http_h("GET", port, "/v1/account", NULL, h, NULL, NULL) == 401;
}

Test(ingress, key_revoked_elsewhere_stops_working_at_once)
{
	char key[64], key_id[40];
	struct revoked r = {key};
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	t_key(account_a, "viewer", key, key_id);
	json_t *acct = call("GET", "/v1/account", key, NULL, NULL, 200, NULL);
	json_t *cred = json_object_get(acct, "credential");
	cr_assert_str_eq(json_string_value(json_object_get(cred, "type")),
	                 "api_key");
	cr_assert_str_eq(json_string_value(json_object_get(cred, "role")),
	                 "viewer");
	cr_assert_str_eq(json_string_value(json_object_get(cred, "key_id")),
	                 key_id);
	json_decref(acct);
	/* As voxctl key revoke does it: straight in the database. */
	const char *params[] = {key_id};
	cr_assert_eq(vox_pg_exec(pg,
	                         "UPDATE api_keys SET revoked_at = now() "
	                         "WHERE id = $1",
	                         1, params, NULL, &err),
	             0);
	cr_assert(t_wait_for(refused, &r, 1000),
	          "revoked key still accepted after 1 s");
	vox_pg_destroy(pg);
}

Test(ingress, roles_outside_the_matrix_get_403)
{
	char viewer[64], billing[64], developer[64];

	t_key(account_a, "viewer", viewer, NULL);
	t_key(account_a, "billing", billing, NULL);
	t_key(account_a, "developer", developer, NULL);
	expect_error(call("POST", "/v1/canary", viewer, NULL, NULL, 403, NULL),
	             "permission_denied");
	expect_error(call("POST", "/v1/canary", billing, NULL, NULL, 403, NULL),
	             "permission_denied");
	json_decref(
	        call("GET", "/v1/operations", viewer, NULL, NULL, 200, NULL));
	json_decref(
	        call("POST", "/v1/canary", developer, NULL, NULL, 202, NULL));
	expect_error(
	        call("GET", "/v1/api-keys", developer, NULL, NULL, 403, NULL),
	        "permission_denied");
	expect_error(call("POST", "/v1/api-keys", viewer,
	                  "{\"role\":\"viewer\"}", NULL, 403, NULL),
	             "permission_denied");
}

Test(ingress, admin_cannot_mint_owner_keys)
{
	char admin[64];
	json_t *made;

	t_key(account_a, "admin", admin, NULL);
	expect_error(call("POST", "/v1/api-keys", admin, "{\"role\":\"owner\"}",
	                  NULL, 403, NULL),
	             "permission_denied");
	made = call("POST", "/v1/api-keys", admin,
	            "{\"role\":\"developer\",\"description\":\"ci\"}", NULL,
	            201, NULL);
	cr_assert(strncmp(vox_json_str(made, "key"), "vox_", 4) == 0);
	/* The new key works, and its secret is never shown again. */
	json_decref(call("POST", "/v1/canary", vox_json_str(made, "key"), NULL,
	                 NULL, 202, NULL));
	json_decref(made);
}

Test(ingress, another_accounts_ids_answer_404)
{
	char account_b[40], key_b[64], key_a2[40], path[160];
	json_t *op, *list;

	t_account("owner", account_b, key_b);
	t_key(account_a, "viewer", (char[64]){0}, key_a2);
	op = call("POST", "/v1/canary", owner_key, NULL, NULL, 202, NULL);
	snprintf(path, sizeof(path), "/v1/operations/%s",
	         vox_json_str(op, "id"));
	expect_error(call("GET", path, key_b, NULL, NULL, 404, NULL),
	             "operation_not_found");
	snprintf(path, sizeof(path), "/v1/api-keys/%s", key_a2);
	expect_error(call("GET", path, key_b, NULL, NULL, 404, NULL),
	             "api_key_not_found");
	expect_error(call("DELETE", path, key_b, NULL, NULL, 404, NULL),
	             "api_key_not_found");
	/* ...and exactly like an id that does not exist. */
	expect_error(call("GET",
	                  "/v1/api-keys/01a20000-0000-7000-8000-000000000000",
	                  key_b, NULL, NULL, 404, NULL),
	             "api_key_not_found");
	list = call("GET", "/v1/operations?limit=100", key_b, NULL, NULL, 200,
	            NULL);
	cr_assert_eq(json_array_size(json_object_get(list, "data")), 0);
	json_decref(list);
	list = call("GET", "/v1/api-keys", key_b, NULL, NULL, 200, NULL);
	cr_assert_eq(json_array_size(json_object_get(list, "data")), 1);
	json_decref(list);
	/* A's key still works after B's attempts: nothing was revoked. */
	json_decref(call("GET", path, owner_key, NULL, NULL, 200, NULL));
	json_decref(op);
}

Test(ingress, idempotency_key_replays_refuses_and_holds)
{
	char account[40], key[64];
	json_t *first, *again;
	char *headers = NULL;
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	t_account("owner", account, key);
	first = call("POST", "/v1/canary", key, "{}", "Idempotency-Key: ik-1",
	             202, NULL);
	again = call("POST", "/v1/canary", key, "{}", "Idempotency-Key: ik-1",
	             202, &headers);
	cr_assert_str_eq(vox_json_str(first, "id"), vox_json_str(again, "id"));
	cr_assert(strstr(headers, "Idempotent-Replayed: true"), "%s", headers);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM operations WHERE "
	                        "account_id = $1",
	                        account),
	             1, "two operations for one Idempotency-Key");
	/* Only the JSON counts ("{ }" is "{}"), but no body is another
	 * request. */
	json_decref(call("POST", "/v1/canary", key, "{ }",
	                 "Idempotency-Key: ik-1", 202, NULL));
	expect_error(call("POST", "/v1/canary", key, NULL,
	                  "Idempotency-Key: ik-1", 422, NULL),
	             "idempotency_key_reused");
	/* A first request still in flight: the duplicate gets 409. */
	const char *params[] = {account};
	cr_assert_eq(vox_pg_exec(pg,
	                         "INSERT INTO idempotency_keys (account_id, "
	                         "key, method, path, request_hash) VALUES ($1, "
	                         "'ik-busy', 'POST', '/v1/canary', "
	                         "sha256(convert_to(E'POST\\n/v1/canary\\n', "
	                         "'UTF8')))",
	                         1, params, NULL, &err),
	             0, "%s", err.message);
	expect_error(call("POST", "/v1/canary", key, NULL,
	                  "Idempotency-Key: ik-busy", 409, NULL),
	             "idempotency_key_in_use");
	expect_error(call("POST", "/v1/canary", key, NULL,
	                  "Idempotency-Key: \x01"
	                  "bad",
	                  400, NULL),
	             "invalid_idempotency_key");
	free(headers);
	json_decref(first);
	json_decref(again);
	vox_pg_destroy(pg);
}

Test(ingress, bad_bodies_get_clear_4xx)
{
	char deep[41];
	json_t *e;

	memset(deep, '[', 40);
	deep[40] = '\0';
	expect_error(call("POST", "/v1/api-keys", owner_key, "{\"role\":", NULL,
	                  400, NULL),
	             "invalid_json");
	expect_error(call("POST", "/v1/api-keys", owner_key,
	                  "{\"role\":\"viewer\",\"role\":\"owner\"}", NULL, 400,
	                  NULL),
	             "invalid_json");
	e = call("POST", "/v1/api-keys", owner_key,
	         "{\"role\":\"viewer\",\"admin\":true}", NULL, 400, NULL);
	cr_assert_str_eq(
	        vox_json_str(
	                json_object_get(json_object_get(e, "error"), "details"),
	                "field"),
	        "admin", "details do not name the unknown field");
	expect_error(e, "invalid_body");
	expect_error(call("POST", "/v1/api-keys", owner_key,
	                  "{\"role\":\"root\"}", NULL, 400, NULL),
	             "invalid_body");
	expect_error(
	        call("POST", "/v1/api-keys", owner_key, "[1]", NULL, 400, NULL),
	        "invalid_body");
	expect_error(
	        call("POST", "/v1/api-keys", owner_key, deep, NULL, 400, NULL),
	        "invalid_json");
	expect_error(call("POST", "/v1/canary", owner_key, "{\"x\":1}", NULL,
	                  400, NULL),
	             "invalid_body");
	expect_error(call("GET", "/v1/operations?limit=0", owner_key, NULL,
	                  NULL, 400, NULL),
	             "invalid_parameter");
	expect_error(call("GET", "/v1/operations?cursor=abc", owner_key, NULL,
	                  NULL, 400, NULL),
	             "invalid_parameter");
	expect_error(call("GET", "/v1/operations/nope", owner_key, NULL, NULL,
	                  404, NULL),
	             "operation_not_found");
	expect_error(
	        call("DELETE", "/v1/canary", owner_key, NULL, NULL, 405, NULL),
	        "method_not_allowed");
	expect_error(
	        call("GET", "/v2/nothing", owner_key, NULL, NULL, 404, NULL),
	        "route_not_found");
}

Test(ingress, wrong_content_type_is_415)
{
	char auth[600], *text = NULL;
	int status;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", owner_key);
	const char *h[] = {auth, "Content-Type: text/plain", NULL};
	status = t_http_h("POST", port, "/v1/api-keys", "{\"role\":\"viewer\"}",
	                  h, &text, NULL);
	cr_assert_eq(status, 415, "%d %s", status, text);
	expect_error(json_loads(text, 0, NULL), "unsupported_media_type");
	free(text);
}

Test(ingress, oversized_body_is_413)
{
	size_t n = 1024 * 1024 + 10;
	char *big = malloc(n + 1);

	memset(big, ' ', n);
	big[n] = '\0';
	expect_error(
	        call("POST", "/v1/canary", owner_key, big, NULL, 413, NULL),
	        "payload_too_large");
	free(big);
}

static char *jwt_make(const char *alg, const char *secret, long exp_offset,
                      const char *aud)
{
	jwt_t *jwt = NULL;
	char *token;
	time_t now = time(NULL);

	jwt_new(&jwt);
	jwt_add_grant(jwt, "sub", "user-42");
	jwt_add_grant(jwt, "iss", "https://id.example");
	jwt_add_grant(jwt, "aud", aud);
	jwt_add_grant(jwt, "vox_account", account_a);
	jwt_add_grant(jwt, "vox_role", "developer");
	jwt_add_grant_int(jwt, "iat", now);
	jwt_add_grant_int(jwt, "exp", now + exp_offset);
	jwt_set_alg(jwt, jwt_str_alg(alg), (const unsigned char *)secret,
	            (int)strlen(secret));
	token = jwt_encode_str(jwt);
	jwt_free(jwt);
	return token;
}

Test(ingress, jwt_checked_for_algorithm_expiry_and_audience)
{
	char *good = jwt_make("HS256", JWT_SECRET, 300, "voxlink");
	char *expired = jwt_make("HS256", JWT_SECRET, -3600, "voxlink");
	char *other_aud = jwt_make("HS256", JWT_SECRET, 300, "someone-else");
	char *other_alg = jwt_make("HS512", JWT_SECRET, 300, "voxlink");
	char *bad_sig = jwt_make("HS256", "not-the-secret-but-long-enough-xx",
	                         300, "voxlink");
	json_t *e;

	json_decref(call("POST", "/v1/canary", good, NULL, NULL, 202, NULL));
	/* The account names the credential: what the dashboard shows. */
	e = call("GET", "/v1/account", good, NULL, NULL, 200, NULL);
	cr_assert_str_eq(json_string_value(json_object_get(
	                         json_object_get(e, "credential"), "type")),
	                 "jwt");
	cr_assert_str_eq(json_string_value(json_object_get(
	                         json_object_get(e, "credential"), "role")),
	                 "developer");
	cr_assert_str_eq(json_string_value(json_object_get(
	                         json_object_get(e, "credential"), "subject")),
	                 "user-42");
	cr_assert(json_is_null(
	        json_object_get(json_object_get(e, "credential"), "key_id")));
	json_decref(e);
	e = call("GET", "/v1/account", expired, NULL, NULL, 401, NULL);
	cr_assert(strstr(vox_json_str(json_object_get(e, "error"), "message"),
	                 "expired"));
	expect_error(e, "invalid_credentials");
	expect_error(
	        call("GET", "/v1/account", other_aud, NULL, NULL, 401, NULL),
	        "invalid_credentials");
	e = call("GET", "/v1/account", other_alg, NULL, NULL, 401, NULL);
	cr_assert(strstr(vox_json_str(json_object_get(e, "error"), "message"),
	                 "algorithm"));
	expect_error(e, "invalid_credentials");
	expect_error(call("GET", "/v1/account", bad_sig, NULL, NULL, 401, NULL),
	             "invalid_credentials");
	/* alg "none": header {"alg":"none"}, no signature. */
	expect_error(call("GET", "/v1/account",
	                  "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
	                  "eyJ2b3hfYWNjb3VudCI6IngiLCJleHAiOjk5OTk5OTk5OTl9.",
	                  NULL, NULL, 401, NULL),
	             "invalid_credentials");
	free(good);
	free(expired);
	free(other_aud);
	free(other_alg);
	free(bad_sig);
}

Test(ingress, health_readiness_metrics_openapi_need_no_key)
{
	json_t *ready = call("GET", "/readyz", NULL, NULL, NULL, 200, NULL);
	char *text = NULL;

	cr_assert_str_eq(vox_json_str(ready, "status"), "ready");
	json_decref(ready);
	cr_assert_eq(t_http("GET", port, "/metrics", NULL, NULL, &text), 200);
	cr_assert(strstr(text, "vox_commands_accepted_total"), "%s", text);
	free(text);
	cr_assert_eq(t_http("GET", port, "/v1/openapi.yaml", NULL, NULL, &text),
	             200);
	cr_assert(strstr(text, "openapi: 3.1"), "%.200s", text);
	free(text);
}

/* Each connection holds 4 KiB for its request line and headers
 * (VOX_INGRESS_CONN_MEMORY, so 10,000 idle keep-alive clients fit in a
 * small RSS): a JWT-sized Authorization plus a 255-character
 * Idempotency-Key and a traceparent fit with room to spare; headers past
 * the limit get 431, not a hang or a crash, and the server goes on. */
Test(ingress, headers_of_3kb_are_served_larger_ones_get_431)
{
	char auth[600], idem[300], pad[2200], big[6100];
	const char *ok_h[] = {
	        auth,
	        idem,
	        "Content-Type: application/json",
	        "traceparent: 00-0af7651916cd43dd8448eb211c80319c-"
	        "b7ad6b7169203331-01",
	        pad,
	        NULL};
	const char *big_h[] = {auth, big, NULL};

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", owner_key);
	memcpy(idem, "Idempotency-Key: ", 17);
	memset(idem + 17, 'k', 255);
	idem[17 + 255] = '\0';
	memcpy(pad, "X-Pad: ", 7);
	memset(pad + 7, 'p', 1800);
	pad[7 + 1800] = '\0';
	memcpy(big, "X-Pad: ", 7);
	memset(big + 7, 'p', 6000);
	big[7 + 6000] = '\0';
	int status =
	        t_http_h("POST", port, "/v1/canary", "{}", ok_h, NULL, NULL);

	cr_assert_eq(status, 202, "3 KB of headers: %d", status);
	cr_assert_eq(
	        t_http_h("GET", port, "/v1/account", NULL, big_h, NULL, NULL),
	        431);
	cr_assert_eq(t_http("GET", port, "/healthz", NULL, NULL, NULL), 200);
}
