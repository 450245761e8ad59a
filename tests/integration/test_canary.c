/*
 * The canary end to end: ingress (HTTP) -> Kafka -> provisioning worker ->
 * PostgreSQL, read back through GET /v1/operations/{id}; plus the ingress's
 * health, readiness, metrics and error answers.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "vox_json.h"

static int port;
static pid_t ingress, worker;

static bool ingress_up(void *arg)
{
	(void)arg;
	return t_http("GET", port, "/healthz", NULL, NULL, NULL) == 200;
}

static void start_pipeline(void)
{
	static char port_env[64];

	port = t_free_port();
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", port);
	const char *const ienv[] = {port_env, NULL};
	const char *const wenv[] = {"VOX_WORKER_METRICS_PORT=0",
	                            "VOX_KAFKA_SESSION_TIMEOUT_MS=6000", NULL};
	ingress = t_spawn("ingress", "canary-ingress.log", ienv);
	worker = t_spawn("provisioning", "canary-worker.log", wenv);
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
}

static void stop_pipeline(void)
{
	int istatus = t_stop(ingress, SIGTERM, 20000);
	int wstatus = t_stop(worker, SIGTERM, 20000);

	cr_expect_eq(istatus, 0, "ingress exit status %d", istatus);
	cr_expect_eq(wstatus, 0, "worker exit status %d", wstatus);
}

TestSuite(canary, .init = start_pipeline, .fini = stop_pipeline,
          .timeout = 120);

static json_t *get_json(const char *method, const char *path, const char *body,
                        int expect_status)
{
	char *text = NULL;
	int status = t_http(method, port, path, body, NULL, &text);
	json_t *doc;

	cr_assert_eq(status, expect_status, "%s %s: %d %s", method, path,
	             status, text);
	doc = json_loads(text, 0, NULL);
	cr_assert_not_null(doc, "not JSON: %s", text);
	free(text);
	return doc;
}

struct op_wait {
	char path[128];
	json_t *last;
};

static bool op_completed(void *arg)
{
	struct op_wait *w = arg;
	char *text = NULL;

	json_decref(w->last);
	w->last = NULL;
	if (t_http("GET", port, w->path, NULL, NULL, &text) == 200)
		w->last = json_loads(text, 0, NULL);
	free(text);
	return w->last &&
	       strcmp(vox_json_str(w->last, "status"), "completed") == 0;
}

static double canary_round_trip(void)
{
	struct op_wait w = {.last = NULL};
	struct timespec t0, t1;
	json_t *accepted, *history;
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	accepted = get_json("POST", "/v1/canary", NULL, 202);
	cr_assert_str_eq(vox_json_str(accepted, "status"), "accepted");
	snprintf(w.path, sizeof(w.path), "/v1/operations/%s",
	         vox_json_str(accepted, "id"));
	cr_assert(t_wait_for(op_completed, &w, 60000), "not completed: %s",
	          w.path);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	     (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	cr_assert_str_eq(vox_json_str(w.last, "kind"), "canary");
	cr_assert_not_null(vox_json_str(w.last, "completed_at"));
	history = json_object_get(w.last, "history");
	cr_assert_eq(json_array_size(history), 2, "history of %zu steps",
	             json_array_size(history));
	cr_assert_str_eq(vox_json_str(json_array_get(history, 0), "status"),
	                 "accepted");
	cr_assert_str_eq(vox_json_str(json_array_get(history, 1), "status"),
	                 "completed");
	json_decref(accepted);
	json_decref(w.last);
	return ms;
}

Test(canary, accepted_then_completed_within_a_second)
{
	double first = canary_round_trip(); /* includes the group join */
	double second = canary_round_trip();

	cr_log_info("canary round trips: first %.1f ms, then %.1f ms", first,
	            second);
	cr_assert_lt(second, 1000.0, "completed after %.1f ms", second);
}

Test(canary, readiness_checks_every_dependency)
{
	json_t *ready = get_json("GET", "/readyz", NULL, 200);
	json_t *checks = json_object_get(ready, "checks");

	cr_assert_str_eq(
	        vox_json_str(json_object_get(checks, "postgres"), "status"),
	        "up");
	cr_assert_str_eq(
	        vox_json_str(json_object_get(checks, "redis"), "status"), "up");
	cr_assert_str_eq(
	        vox_json_str(json_object_get(checks, "kafka"), "status"), "up");
	json_decref(ready);
}

Test(canary, metrics_in_prometheus_text_format)
{
	char *text = NULL;

	json_decref(get_json("POST", "/v1/canary", NULL, 202));
	cr_assert_eq(t_http("GET", port, "/metrics", NULL, NULL, &text), 200);
	cr_assert(strstr(text, "# TYPE vox_commands_accepted_total counter"),
	          "%s", text);
	cr_assert(strstr(text, "vox_http_requests_total{route=\"/v1/canary\""),
	          "%s", text);
	free(text);
}

static void assert_error(json_t *doc, const char *code)
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

Test(canary, bad_requests_get_clear_errors)
{
	assert_error(
	        get_json("GET",
	                 "/v1/operations/01890000-0000-7000-8000-000000000000",
	                 NULL, 404),
	        "operation_not_found");
	assert_error(get_json("GET", "/v1/operations/nope", NULL, 404),
	             "operation_not_found");
	assert_error(get_json("POST", "/v1/canary", "{\"a\":", 400),
	             "invalid_json");
	assert_error(get_json("POST", "/v1/canary", "{\"a\":1,\"a\":2}", 400),
	             "invalid_json");
	assert_error(get_json("POST", "/v1/canary", "{\"x\":1}", 400),
	             "invalid_body");
	assert_error(get_json("DELETE", "/v1/canary", NULL, 405),
	             "method_not_allowed");
	assert_error(get_json("GET", "/v2/nothing", NULL, 404),
	             "route_not_found");
}

Test(canary, oversized_body_refused)
{
	size_t n = 1024 * 1024 + 10;
	char *big = malloc(n + 1);

	memset(big, ' ', n);
	big[n] = '\0';
	assert_error(get_json("POST", "/v1/canary", big, 413),
	             "payload_too_large");
	free(big);
}
