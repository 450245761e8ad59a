/*
 * Tests of vox_upstream against a tiny HTTP server started inside the
 * test (libmicrohttpd on a free loopback port): each request is answered
 * from a script of canned answers (the last one repeats) and recorded.
 * Retries, Retry-After, timeouts, the breaker, metrics, bodies, headers,
 * per-call overrides, the destination hook and sharing one handle between
 * threads. Timeouts and cooldowns are short: the whole suite takes a few
 * seconds, most of it the Retry-After cases.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vox_metrics.h"
#include "vox_time.h"
#include "vox_upstream.h"

#define MAX_SCRIPT 8
#define MAX_SEEN   64

typedef struct canned {
	unsigned status;
	const char *retry_after; /* NULL: no header */
	const char *body;
	int delay_ms; /* before answering */
} canned_t;

typedef struct seen {
	char method[16];
	char url[256];
	char idempotency_key[128];
	char signature[128];
	char content_type[64];
	char auth[64];
	char body[512];
} seen_t;

static struct server {
	struct MHD_Daemon *daemon;
	int port;
	pthread_mutex_t lock; /* guards everything below */
	canned_t script[MAX_SCRIPT];
	int nscript, requests;
	seen_t seen[MAX_SEEN];
} srv = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* A request's body as it arrives. */
struct upload {
	char body[512];
	size_t len;
};

static void copy_header(struct MHD_Connection *conn, const char *name,
                        char *out, size_t size)
{
	const char *value =
	        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);

	snprintf(out, size, "%s", value != NULL ? value : "");
}

static enum MHD_Result answer(struct MHD_Connection *conn, struct upload *up,
                              const char *url, const char *method)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	canned_t canned;
	seen_t seen = {0};

	snprintf(seen.method, sizeof(seen.method), "%s", method);
	snprintf(seen.url, sizeof(seen.url), "%s", url);
	copy_header(conn, "Idempotency-Key", seen.idempotency_key,
	            sizeof(seen.idempotency_key));
	copy_header(conn, "X-Signature", seen.signature,
	            sizeof(seen.signature));
	copy_header(conn, "Content-Type", seen.content_type,
	            sizeof(seen.content_type));
	copy_header(conn, "Authorization", seen.auth, sizeof(seen.auth));
	snprintf(seen.body, sizeof(seen.body), "%.*s", (int)up->len, up->body);
	pthread_mutex_lock(&srv.lock);
	canned = srv.script[srv.requests < srv.nscript ? srv.requests
	                                               : srv.nscript - 1];
	if (srv.requests < MAX_SEEN)
		srv.seen[srv.requests] = seen;
	srv.requests++;
	pthread_mutex_unlock(&srv.lock);
	if (canned.delay_ms > 0)
		vox_sleep_ms(canned.delay_ms);
	resp = MHD_create_response_from_buffer(
	        strlen(canned.body ? canned.body : ""),
	        (void *)(canned.body ? canned.body : ""),
	        MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	if (canned.retry_after != NULL)
		MHD_add_response_header(resp, "Retry-After",
		                        canned.retry_after);
	ret = MHD_queue_response(conn, canned.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn,
                              const char *url, const char *method,
                              const char *version, const char *data,
                              size_t *data_size, void **req_cls)
{
	struct upload *up = *req_cls;
	size_t room;

	(void)cls;
	(void)version;
	if (up == NULL) {
		*req_cls = calloc(1, sizeof(struct upload));
		return *req_cls != NULL ? MHD_YES : MHD_NO;
	}
	if (*data_size > 0) {
		room = sizeof(up->body) - up->len;
		if (*data_size < room)
			room = *data_size;
		memcpy(up->body + up->len, data, room);
		up->len += room;
		*data_size = 0;
		return MHD_YES;
	}
	return answer(conn, up, url, method);
}

static void completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                      enum MHD_RequestTerminationCode code)
{
	(void)cls;
	(void)conn;
	(void)code;
	free(*req_cls);
	*req_cls = NULL;
}

static void script(int n, const canned_t *canned)
{
	cr_assert(n >= 1 && n <= MAX_SCRIPT);
	pthread_mutex_lock(&srv.lock);
	memcpy(srv.script, canned, (size_t)n * sizeof(*canned));
	srv.nscript = n;
	srv.requests = 0;
	pthread_mutex_unlock(&srv.lock);
}

static void server_start(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	const union MHD_DaemonInfo *info;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv.daemon = MHD_start_daemon(
	        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
	        0, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR,
	        (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED,
	        completed, NULL, MHD_OPTION_END);
	cr_assert_not_null(srv.daemon, "MHD_start_daemon");
	info = MHD_get_daemon_info(srv.daemon, MHD_DAEMON_INFO_BIND_PORT);
	cr_assert_not_null(info);
	srv.port = info->port;
	cr_assert_gt(srv.port, 0);
}

static void server_stop(void)
{
	MHD_stop_daemon(srv.daemon);
	srv.daemon = NULL;
}

static int requests(void)
{
	int n;

	pthread_mutex_lock(&srv.lock);
	n = srv.requests;
	pthread_mutex_unlock(&srv.lock);
	return n;
}

static seen_t seen(int i)
{
	seen_t one;

	pthread_mutex_lock(&srv.lock);
	cr_assert_lt(i, srv.requests);
	one = srv.seen[i];
	pthread_mutex_unlock(&srv.lock);
	return one;
}

TestSuite(upstream, .init = server_start, .fini = server_stop);

/* ---- the client ---- */

static void describe(const char *body, size_t len, char *out, size_t size)
{
	snprintf(out, size, "says %.*s", (int)len, body);
}

static vox_upstream_t *upstream(vox_upstream_conf_t conf)
{
	char url[64];
	vox_error_t err;
	vox_upstream_t *up;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/", srv.port);
	conf.name = "test";
	conf.base_url = url;
	if (conf.auth_header == NULL)
		conf.auth_header = "Authorization: Bearer k1";
	if (conf.backoff_ms == 0)
		conf.backoff_ms = 10;
	if (conf.timeout_ms == 0)
		conf.timeout_ms = 1000;
	up = vox_upstream_new(&conf, &err);
	cr_assert_not_null(up, "%s", err.message);
	return up;
}

static int get(vox_upstream_t *up, vox_upstream_response_t *resp,
               vox_error_t *err)
{
	vox_upstream_request_t req = {.endpoint = "read", .path = "/things"};

	vox_error_clear(err);
	return vox_upstream_call(up, &req, resp, err);
}

/* The value of one series in the rendered registry, or -1. */
static long long series(vox_metrics_t *metrics, const char *line_start)
{
	char *text = vox_metrics_render(metrics, NULL);
	const char *at;
	long long value = -1;

	cr_assert_not_null(text);
	at = strstr(text, line_start);
	if (at != NULL)
		value = strtoll(at + strlen(line_start), NULL, 10);
	free(text);
	return value;
}

static const canned_t unavailable = {503, NULL, "{\"e\":\"down\"}", 0};
static const canned_t ok = {200, NULL, "{\"ok\":true}", 0};

Test(upstream, retries_a_503_then_succeeds)
{
	const canned_t answers[] = {unavailable, ok};
	vox_metrics_t *metrics = vox_metrics_new();
	vox_upstream_t *up =
	        upstream((vox_upstream_conf_t){.metrics = metrics});
	vox_upstream_response_t resp;
	vox_error_t err;

	script(2, answers);
	cr_assert_eq(get(up, &resp, &err), 0, "%s", err.message);
	cr_assert_eq(resp.status, 200);
	cr_assert_eq(resp.attempts, 2);
	cr_assert_str_eq(resp.body, "{\"ok\":true}");
	cr_assert_eq(requests(), 2);
	for (int i = 0; i < 2; i++) {
		cr_expect_str_eq(seen(i).method, "GET");
		cr_expect_str_eq(seen(i).url, "/api/things");
		cr_expect_str_eq(seen(i).auth, "Bearer k1");
	}
	cr_expect_eq(series(metrics, "vox_upstream_requests_total{upstream="
	                             "\"test\",endpoint=\"read\",class="
	                             "\"5xx\"} "),
	             1);
	cr_expect_eq(series(metrics, "vox_upstream_requests_total{upstream="
	                             "\"test\",endpoint=\"read\",class="
	                             "\"2xx\"} "),
	             1);
	cr_expect_eq(series(metrics, "vox_upstream_retries_total{upstream="
	                             "\"test\",endpoint=\"read\"} "),
	             1);
	cr_expect_eq(series(metrics, "vox_upstream_calls_total{upstream="
	                             "\"test\",endpoint=\"read\",outcome="
	                             "\"ok\"} "),
	             1);
	cr_expect_eq(series(metrics, "vox_upstream_call_seconds_count{upstream="
	                             "\"test\",endpoint=\"read\"} "),
	             1);
	vox_upstream_response_free(&resp);
	vox_upstream_destroy(up);
	vox_metrics_destroy(metrics);
}

Test(upstream, gives_up_retriable_after_max_attempts)
{
	vox_upstream_t *up = upstream(
	        (vox_upstream_conf_t){.max_attempts = 3, .describe = describe});
	vox_upstream_response_t resp;
	vox_error_t err;

	script(1, &unavailable);
	cr_assert_eq(get(up, &resp, &err), VOX_ERR_UNAVAILABLE);
	cr_assert(err.retriable);
	cr_assert_not(err.fatal);
	cr_assert_str_eq(err.message, "test read: failed (HTTP 503): says "
	                              "{\"e\":\"down\"} (3 attempts)");
	cr_assert_eq(requests(), 3);
	/* the last answer is kept for the caller */
	cr_assert_eq(resp.status, 503);
	cr_assert_str_eq(resp.body, "{\"e\":\"down\"}");
	vox_upstream_response_free(&resp);
	vox_upstream_destroy(up);
}

/* The first answer asks to wait; the retry must come within [min, max). */
static void retried_after(const canned_t *first, int min_ms, int max_ms)
{
	const canned_t answers[] = {*first, ok};
	vox_upstream_t *up = upstream((vox_upstream_conf_t){0});
	vox_upstream_response_t resp;
	int64_t started = vox_mono_ms(), elapsed;
	vox_error_t err;

	script(2, answers);
	cr_assert_eq(get(up, &resp, &err), 0, "%s", err.message);
	elapsed = vox_mono_ms() - started;
	cr_assert_geq(elapsed, min_ms, "retried after %lld ms",
	              (long long)elapsed);
	cr_assert_lt(elapsed, max_ms, "retried after %lld ms",
	             (long long)elapsed);
	cr_assert_eq(requests(), 2);
	vox_upstream_response_free(&resp);
	vox_upstream_destroy(up);
}

Test(upstream, retry_after_seconds_is_honoured)
{
	const canned_t first = {503, "1", "{}", 0};

	retried_after(&first, 1000, 1800);
}

Test(upstream, retry_after_http_date_is_honoured)
{
	canned_t first = {429, NULL, "{}", 0};
	time_t when = time(NULL) + 2;
	char date[64];
	struct tm tm;

	gmtime_r(&when, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	first.retry_after = date;
	/* whole seconds: 2 s from a clock somewhere in its second */
	retried_after(&first, 1000, 2800);
}

Test(upstream, retry_after_beyond_the_bound_stops)
{
	const canned_t answers[] = {{429, "3", "{}", 0}, ok};
	vox_upstream_t *up =
	        upstream((vox_upstream_conf_t){.retry_after_max_ms = 2000});
	vox_upstream_response_t resp;
	int64_t started = vox_mono_ms();
	vox_error_t err;

	script(2, answers);
	cr_assert_eq(get(up, &resp, &err), VOX_ERR_LIMIT);
	cr_assert(err.retriable);
	cr_assert_not_null(strstr(err.message, "it asks to wait 3 s"), "%s",
	                   err.message);
	cr_assert_eq(resp.retry_after_s, 3);
	cr_assert_eq(requests(), 1);
	cr_assert_lt(vox_mono_ms() - started, 500);
	vox_upstream_response_free(&resp);
	vox_upstream_destroy(up);
}

Test(upstream, no_retry_on_400)
{
	const canned_t answers[] = {{400, NULL, "bad field", 0}, ok};
	vox_upstream_t *up =
	        upstream((vox_upstream_conf_t){.describe = describe});
	vox_upstream_response_t resp;
	vox_error_t err;

	script(2, answers);
	cr_assert_eq(get(up, &resp, &err), VOX_ERR_INVALID);
	cr_assert_not(err.retriable);
	cr_assert_str_eq(err.message, "test read: refused the request (HTTP "
	                              "400): says bad field");
	cr_assert_eq(resp.status, 400);
	cr_assert_eq(resp.attempts, 1);
	cr_assert_eq(requests(), 1);
	/* a refusal is an answer: the provider is up */
	cr_assert_eq(vox_upstream_breaker_state(up), VOX_BREAKER_CLOSED);
	vox_upstream_response_free(&resp);
	vox_upstream_destroy(up);
}

Test(upstream, status_mapping)
{
	static const struct {
		long status;
		int code;
		bool retriable, fatal;
	} cases[] = {
	        {401, VOX_ERR_INTERNAL, false, true},
	        {403, VOX_ERR_INTERNAL, false, true},
	        {404, VOX_ERR_NOT_FOUND, false, false},
	        {409, VOX_ERR_CONFLICT, false, false},
	        {422, VOX_ERR_INVALID, false, false},
	        {408, VOX_ERR_UNAVAILABLE, true, false},
	        {429, VOX_ERR_LIMIT, true, false},
	        {500, VOX_ERR_UNAVAILABLE, true, false},
	        {302, VOX_ERR_INTERNAL, false, false},
	};
	vox_error_t err;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vox_error_clear(&err);
		cr_expect_eq(
		        vox_upstream_status_error(cases[i].status, "", &err),
		        cases[i].code, "HTTP %ld", cases[i].status);
		cr_expect_eq(err.retriable, cases[i].retriable, "HTTP %ld",
		             cases[i].status);
		cr_expect_eq(err.fatal, cases[i].fatal, "HTTP %ld",
		             cases[i].status);
	}
	cr_expect_eq(vox_upstream_verdict(204), VOX_UPSTREAM_OK);
	cr_expect_eq(vox_upstream_verdict(503), VOX_UPSTREAM_RETRY);
	cr_expect_eq(vox_upstream_verdict(404), VOX_UPSTREAM_FINAL);
}

Test(upstream, timeout_is_retriable)
{
	const canned_t answers[] = {{200, NULL, "{}", 400}};
	vox_upstream_t *up = upstream((vox_upstream_conf_t){0});
	vox_upstream_request_t req = {.endpoint = "slow",
	                              .path = "/slow",
	                              .timeout_ms = 100,
	                              .max_attempts = 2};
	vox_upstream_response_t resp;
	int64_t started = vox_mono_ms(), elapsed;
	vox_error_t err;

	script(1, answers);
	cr_assert_eq(vox_upstream_call(up, &req, &resp, &err), VOX_ERR_TIMEOUT);
	elapsed = vox_mono_ms() - started;
	cr_assert(err.retriable);
	cr_assert_str_eq(err.message, "test slow: no answer within 100 ms (2 "
	                              "attempts)");
	cr_assert_eq(resp.status, 0);
	cr_assert_geq(elapsed, 190);
	cr_assert_lt(elapsed, 390, "took %lld ms", (long long)elapsed);
	vox_upstream_response_free(&resp);
	vox_upstream_destroy(up);
}

Test(upstream, breaker_opens_and_a_half_open_probe_closes_it)
{
	vox_metrics_t *metrics = vox_metrics_new();
	vox_upstream_t *up =
	        upstream((vox_upstream_conf_t){.max_attempts = 2,
	                                       .breaker_failures = 3,
	                                       .breaker_cooldown_ms = 200,
	                                       .metrics = metrics});
	const char *gauge = "vox_upstream_breaker_state{upstream=\"test\"} ";
	vox_upstream_response_t resp;
	int64_t started;
	vox_error_t err;

	script(1, &unavailable);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(get(up, &resp, &err), VOX_ERR_UNAVAILABLE);
		vox_upstream_response_free(&resp);
		cr_assert_eq(vox_upstream_breaker_state(up),
		             i < 2 ? VOX_BREAKER_CLOSED : VOX_BREAKER_OPEN);
	}
	cr_assert_eq(requests(), 6);
	cr_assert_eq(series(metrics, gauge), 1);

	/* open: fails at once, nothing sent */
	started = vox_mono_ms();
	cr_assert_eq(get(up, &resp, &err), VOX_ERR_UNAVAILABLE);
	cr_assert(err.retriable);
	cr_assert_str_eq(err.message, "test circuit open");
	cr_assert_lt(vox_mono_ms() - started, 50);
	cr_assert_eq(requests(), 6);
	cr_assert_eq(series(metrics, "vox_upstream_calls_total{upstream="
	                             "\"test\",endpoint=\"read\",outcome="
	                             "\"circuit_open\"} "),
	             1);

	/* after the cooldown one probe goes through and closes it */
	script(1, &ok);
	vox_sleep_ms(250);
	cr_assert_eq(get(up, &resp, &err), 0, "%s", err.message);
	vox_upstream_response_free(&resp);
	cr_assert_eq(requests(), 1);
	cr_assert_eq(vox_upstream_breaker_state(up), VOX_BREAKER_CLOSED);
	cr_assert_eq(series(metrics, gauge), 0);
	vox_upstream_destroy(up);
	vox_metrics_destroy(metrics);
}

struct racer {
	vox_upstream_t *up;
	int rc;
	vox_error_t err;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	vox_upstream_response_t resp;

	r->rc = get(r->up, &resp, &r->err);
	vox_upstream_response_free(&resp);
	return NULL;
}

Test(upstream, one_probe_at_a_time_and_a_failed_probe_reopens)
{
	const canned_t slow_fail = {503, NULL, "{}", 200};
	vox_upstream_t *up =
	        upstream((vox_upstream_conf_t){.max_attempts = 3,
	                                       .breaker_failures = 1,
	                                       .breaker_cooldown_ms = 100});
	struct racer probe = {.up = up};
	vox_upstream_response_t resp;
	pthread_t thread;
	vox_error_t err;

	script(1, &unavailable);
	cr_assert_eq(get(up, &resp, &err), VOX_ERR_UNAVAILABLE);
	vox_upstream_response_free(&resp);
	cr_assert_eq(vox_upstream_breaker_state(up), VOX_BREAKER_OPEN);
	cr_assert_eq(requests(), 3);
	script(1, &slow_fail);
	vox_sleep_ms(150);
	cr_assert_eq(pthread_create(&thread, NULL, race, &probe), 0);
	vox_sleep_ms(60); /* the probe is waiting on the server */
	cr_assert_eq(vox_upstream_breaker_state(up), VOX_BREAKER_HALF_OPEN);
	cr_assert_eq(get(up, &resp, &err), VOX_ERR_UNAVAILABLE);
	cr_assert_str_eq(err.message, "test circuit open");
	vox_upstream_response_free(&resp);
	pthread_join(thread, NULL);
	/* the probe is one attempt, whatever max_attempts says */
	cr_assert_eq(probe.rc, VOX_ERR_UNAVAILABLE);
	cr_assert_not_null(strstr(probe.err.message, "HTTP 503"), "%s",
	                   probe.err.message);
	cr_assert_eq(requests(), 1);
	cr_assert_eq(vox_upstream_breaker_state(up), VOX_BREAKER_OPEN);
	vox_upstream_destroy(up);
}

Test(upstream, json_raw_bodies_and_headers)
{
	const char *const extra[] = {"X-Signature: v1,abc=", NULL};
	vox_upstream_t *up = upstream((vox_upstream_conf_t){0});
	json_t *doc = json_pack("{s:s,s:i}", "a", "b", "n", 1);
	vox_upstream_request_t req = {.endpoint = "send",
	                              .path = "/charges?x=1",
	                              .json = doc,
	                              .idempotency_key = "key-1",
	                              .headers = extra};
	vox_upstream_response_t resp;
	vox_error_t err;
	seen_t one;

	script(1, &ok);
	cr_assert_eq(vox_upstream_call(up, &req, &resp, &err), 0, "%s",
	             err.message);
	vox_upstream_response_free(&resp);
	one = seen(0);
	cr_assert_str_eq(one.method, "POST");
	cr_assert_str_eq(one.url, "/api/charges");
	cr_assert_str_eq(one.body, "{\"a\":\"b\",\"n\":1}");
	cr_assert_str_eq(one.content_type, "application/json");
	cr_assert_str_eq(one.idempotency_key, "key-1");
	cr_assert_str_eq(one.signature, "v1,abc=");

	req = (vox_upstream_request_t){.endpoint = "put",
	                               .method = "PUT",
	                               .path = "/blob",
	                               .body = "raw\0bytes",
	                               .body_len = 9,
	                               .content_type = "text/plain"};
	cr_assert_eq(vox_upstream_call(up, &req, &resp, &err), 0, "%s",
	             err.message);
	vox_upstream_response_free(&resp);
	one = seen(1);
	cr_assert_str_eq(one.method, "PUT");
	cr_assert_str_eq(one.content_type, "text/plain");
	cr_assert_eq(memcmp(one.body, "raw", 4), 0); /* up to the NUL */
	json_decref(doc);
	vox_upstream_destroy(up);
}

Test(upstream, per_call_overrides_and_absolute_url)
{
	vox_upstream_t *up = upstream((vox_upstream_conf_t){.max_attempts = 3});
	char url[80];
	vox_upstream_request_t req = {.endpoint = "hook",
	                              .url = url,
	                              .method = "POST",
	                              .max_attempts = 1};
	vox_upstream_response_t resp;
	vox_error_t err;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/elsewhere", srv.port);
	script(1, &unavailable);
	cr_assert_eq(vox_upstream_call(up, &req, &resp, &err),
	             VOX_ERR_UNAVAILABLE);
	cr_assert_eq(requests(), 1);
	cr_assert_str_eq(seen(0).url, "/elsewhere");
	cr_assert_str_eq(seen(0).method, "POST");
	vox_upstream_response_free(&resp);
	vox_upstream_destroy(up);
}

Test(upstream, delete_gone_on_a_retry_is_done)
{
	const canned_t answers[] = {unavailable, {404, NULL, "{}", 0}};
	vox_upstream_t *up = upstream((vox_upstream_conf_t){0});
	vox_upstream_request_t req = {.endpoint = "del",
	                              .method = "DELETE",
	                              .path = "/x/1",
	                              .flags = VOX_UPSTREAM_GONE_IS_DONE};
	vox_upstream_response_t resp;
	vox_error_t err;

	script(2, answers);
	cr_assert_eq(vox_upstream_call(up, &req, &resp, &err), 0, "%s",
	             err.message);
	vox_upstream_response_free(&resp);
	/* a 404 at once is an unknown id */
	script(1, &answers[1]);
	cr_assert_eq(vox_upstream_call(up, &req, &resp, &err),
	             VOX_ERR_NOT_FOUND);
	vox_upstream_response_free(&resp);
	vox_upstream_destroy(up);
}

static bool refuse_all(void *arg, const struct sockaddr *addr, socklen_t len)
{
	int *asked = arg;

	(void)len;
	cr_expect_eq(addr->sa_family, AF_INET);
	(*asked)++;
	return false;
}

Test(upstream, destination_hook_refuses_before_sending)
{
	int asked = 0;
	vox_upstream_t *up = upstream((vox_upstream_conf_t){
	        .allow_address = refuse_all, .allow_arg = &asked});
	vox_upstream_response_t resp;
	vox_error_t err;

	script(1, &ok);
	cr_assert_eq(get(up, &resp, &err), VOX_ERR_INVALID);
	cr_assert_not(err.retriable);
	cr_assert_str_eq(err.message, "test read: destination address refused");
	cr_assert_eq(asked, 1); /* not retried */
	cr_assert_eq(requests(), 0);
	cr_assert_eq(vox_upstream_breaker_state(up), VOX_BREAKER_CLOSED);
	vox_upstream_response_free(&resp);
	vox_upstream_destroy(up);
}

Test(upstream, bad_requests_refused_before_sending)
{
	const char *const split[] = {"X-A: 1\r\nX-B: 2", NULL};
	const char *const nameless[] = {": v", NULL};
	const vox_upstream_request_t bad[] = {
	        {.path = "/x"},
	        {.endpoint = "Bad Name", .path = "/x"},
	        {.endpoint = "e"},
	        {.endpoint = "e", .path = "/x", .url = "http://h/"},
	        {.endpoint = "e", .path = "x"},
	        {.endpoint = "e", .path = "/x y"},
	        {.endpoint = "e", .url = "ftp://h/"},
	        {.endpoint = "e", .path = "/x", .method = "get"},
	        {.endpoint = "e", .path = "/x", .idempotency_key = "k\n"},
	        {.endpoint = "e", .path = "/x", .headers = split},
	        {.endpoint = "e", .path = "/x", .headers = nameless},
	        {.endpoint = "e", .path = "/x", .max_attempts = 11},
	};
	vox_upstream_t *up = upstream((vox_upstream_conf_t){0});
	vox_upstream_response_t resp;
	vox_error_t err;

	script(1, &ok);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(vox_upstream_call(up, &bad[i], &resp, &err),
		             VOX_ERR_INVALID, "request %zu accepted", i);
		cr_expect_not(err.retriable);
		vox_upstream_response_free(&resp);
	}
	cr_assert_eq(requests(), 0);
	vox_upstream_destroy(up);
}

Test(upstream, conf_checked)
{
	const vox_upstream_conf_t good = {.name = "p", .base_url = "http://h"};
	vox_upstream_conf_t conf;
	vox_error_t err;
	vox_upstream_t *up;

	cr_assert_null(vox_upstream_new(NULL, &err));
	conf = good;
	conf.name = "Pay Gateway";
	cr_assert_null(vox_upstream_new(&conf, &err));
	cr_assert_not_null(strstr(err.message, "name"), "%s", err.message);
	conf = good;
	conf.base_url = "smtp://h";
	cr_assert_null(vox_upstream_new(&conf, &err));
	cr_assert_not_null(strstr(err.message, "base URL"), "%s", err.message);
	conf = good;
	conf.auth_header = "Bearer k";
	cr_assert_null(vox_upstream_new(&conf, &err));
	conf = good;
	conf.auth_header = "Authorization: k\r\nX: 1";
	cr_assert_null(vox_upstream_new(&conf, &err));
	conf = good;
	conf.timeout_ms = -5;
	cr_assert_null(vox_upstream_new(&conf, &err));
	cr_assert_str_eq(err.message, "p: timeout_ms -5 is outside 1..600000");
	up = vox_upstream_new(&good, &err);
	cr_assert_not_null(up, "%s", err.message);
	cr_assert_str_eq(vox_upstream_name(up), "p");
	cr_assert_str_eq(vox_upstream_base_url(up), "http://h");
	vox_upstream_destroy(up);
}

#define THREADS 4
#define CALLS   10

static void *caller(void *arg)
{
	struct racer *r = arg;

	for (int i = 0; i < CALLS && r->rc == 0; i++) {
		vox_upstream_response_t resp;

		r->rc = get(r->up, &resp, &r->err);
		if (r->rc == 0 && strcmp(resp.body, "{\"ok\":true}") != 0)
			r->rc = -100;
		vox_upstream_response_free(&resp);
	}
	return NULL;
}

Test(upstream, one_handle_shared_by_threads)
{
	vox_upstream_t *up = upstream((vox_upstream_conf_t){0});
	struct racer racers[THREADS];
	pthread_t threads[THREADS];

	script(1, &ok);
	for (int i = 0; i < THREADS; i++) {
		racers[i] = (struct racer){.up = up};
		cr_assert_eq(
		        pthread_create(&threads[i], NULL, caller, &racers[i]),
		        0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		cr_expect_eq(racers[i].rc, 0, "thread %d: %s", i,
		             racers[i].err.message);
	}
	cr_assert_eq(requests(), THREADS * CALLS);
	vox_upstream_destroy(up);
}

Test(upstream, escape)
{
	char *text = vox_upstream_escape("a b/+é");

	cr_assert_str_eq(text, "a%20b%2F%2B%C3%A9");
	free(text);
}
