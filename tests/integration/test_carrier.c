/*
 * Integration tests of vox_carrier against a fake carrier: a thread
 * listening on 127.0.0.1:0 that answers each request from a script of
 * canned answers (the last one repeats) and records what it was sent.
 * The carrier's use of vox_upstream (retries, timeouts, Retry-After, the
 * circuit breaker, keep-alive, metrics) and its wire format are checked
 * here; vox_upstream alone is tested in tests/unit/test_upstream.c. The
 * real sandbox (ops/carrier-sandbox) is not needed.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_carrier.h"
#include "vox_time.h"

#define MAX_SCRIPT 8
#define MAX_SEEN   32

typedef struct canned {
	int status;          /* 0: read the request, never answer */
	const char *headers; /* extra lines, each ending in \r\n */
	const char *body;
} canned_t;

typedef struct seen {
	char method[16];
	char target[512];
	char auth[128];
	char idempotency_key[128];
	char content_type[64];
	char body[1024];
} seen_t;

typedef struct fake {
	int listen_fd, port;
	bool keep_alive;
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t lock; /* guards everything below */
	canned_t script[MAX_SCRIPT];
	int nscript;
	int requests, connections;
	seen_t seen[MAX_SEEN];
} fake_t;

static const char search_body[] =
        "{\"data\":[{\"phone_number\":\"+14155550123\","
        "\"phone_number_type\":\"local\",\"region_information\":["
        "{\"region_type\":\"country_code\",\"region_name\":\"US\"},"
        "{\"region_type\":\"location\",\"region_name\":\"San Francisco\"}],"
        "\"features\":[{\"name\":\"voice\"},{\"name\":\"sms\"}],"
        "\"cost_information\":{\"upfront_cost\":\"1.00\","
        "\"monthly_cost\":\"1.00\",\"currency\":\"USD\"}}]}";
static const char order_body[] =
        "{\"data\":{\"id\":\"ord-1\",\"status\":\"success\","
        "\"phone_numbers\":[{\"id\":\"num-1\",\"phone_number\":"
        "\"+14155550123\",\"status\":\"success\"}]}}";
static const char error_503[] =
        "{\"errors\":[{\"code\":\"10009\",\"title\":\"Unavailable\","
        "\"detail\":\"try again\"}]}";
static const char error_422[] =
        "{\"errors\":[{\"code\":\"10015\",\"title\":\"Invalid\","
        "\"detail\":\"forwards_to must be an E.164 number\"}]}";

static const canned_t ok_search = {200, NULL, search_body};
static const canned_t unavailable = {503, NULL, error_503};

/* ---- the fake carrier ---- */

/* Waits for fd to be readable; false when stopping. */
static bool wait_readable(fake_t *fake, int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	while (!atomic_load(&fake->stop)) {
		int rc = poll(&pfd, 1, 20);

		if (rc > 0)
			return true;
		if (rc < 0 && errno != EINTR)
			return false;
	}
	return false;
}

static void header_value(const char *head, const char *name, char *out,
                         size_t size)
{
	const char *line = strcasestr(head, name);
	size_t len;

	out[0] = '\0';
	if (line == NULL)
		return;
	line += strlen(name);
	while (*line == ' ')
		line++;
	len = strcspn(line, "\r\n");
	snprintf(out, size, "%.*s", (int)len, line);
}

/* Reads one request into seen; false when the peer closed. */
static bool read_request(fake_t *fake, int fd, seen_t *seen)
{
	static char buf[16384];
	char length[16];
	size_t used = 0, body_len;
	char *end = NULL;
	ssize_t n;

	memset(seen, 0, sizeof(*seen));
	while (end == NULL) {
		if (used == sizeof(buf) - 1 || !wait_readable(fake, fd))
			return false;
		n = read(fd, buf + used, sizeof(buf) - 1 - used);
		if (n <= 0)
			return false;
		used += (size_t)n;
		buf[used] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	*end = '\0';
	sscanf(buf, "%15s %511s", seen->method, seen->target);
	header_value(buf, "\r\nAuthorization:", seen->auth, sizeof(seen->auth));
	header_value(buf, "\r\nIdempotency-Key:", seen->idempotency_key,
	             sizeof(seen->idempotency_key));
	header_value(buf, "\r\nContent-Type:", seen->content_type,
	             sizeof(seen->content_type));
	header_value(buf, "\r\nContent-Length:", length, sizeof(length));
	body_len = strtoul(length, NULL, 10);
	used -= (size_t)(end + 4 - buf);
	memmove(buf, end + 4, used);
	while (used < body_len && used < sizeof(buf) - 1) {
		if (!wait_readable(fake, fd))
			return false;
		n = read(fd, buf + used, sizeof(buf) - 1 - used);
		if (n <= 0)
			return false;
		used += (size_t)n;
	}
	snprintf(seen->body, sizeof(seen->body), "%.*s", (int)body_len, buf);
	return true;
}

static void answer(fake_t *fake, int fd, const canned_t *canned)
{
	char head[512];
	const char *body = canned->body ? canned->body : "";
	int len = snprintf(head, sizeof(head),
	                   "HTTP/1.1 %d Canned\r\nContent-Type: "
	                   "application/json\r\nContent-Length: %zu\r\n%s"
	                   "Connection: %s\r\n\r\n",
	                   canned->status, strlen(body),
	                   canned->headers ? canned->headers : "",
	                   fake->keep_alive ? "keep-alive" : "close");

	if (write(fd, head, (size_t)len) != len ||
	    write(fd, body, strlen(body)) != (ssize_t)strlen(body))
		perror("fake carrier: write");
}

static void serve_connection(fake_t *fake, int fd)
{
	seen_t seen;
	canned_t canned;
	int index;

	while (read_request(fake, fd, &seen)) {
		pthread_mutex_lock(&fake->lock);
		index = fake->requests < fake->nscript ? fake->requests
		                                       : fake->nscript - 1;
		canned = fake->script[index];
		if (fake->requests < MAX_SEEN)
			fake->seen[fake->requests] = seen;
		fake->requests++;
		pthread_mutex_unlock(&fake->lock);
		if (canned.status == 0) {
			/* hold until the client gives up and closes */
			char sink[256];

			while (wait_readable(fake, fd) &&
			       read(fd, sink, sizeof(sink)) > 0)
				;
			return;
		}
		answer(fake, fd, &canned);
		if (!fake->keep_alive)
			return;
	}
}

static void *fake_main(void *arg)
{
	fake_t *fake = arg;

	while (wait_readable(fake, fake->listen_fd)) {
		int fd = accept(fake->listen_fd, NULL, NULL);

		if (fd < 0)
			continue;
		pthread_mutex_lock(&fake->lock);
		fake->connections++;
		pthread_mutex_unlock(&fake->lock);
		serve_connection(fake, fd);
		close(fd);
	}
	return NULL;
}

static void fake_script(fake_t *fake, int n, const canned_t *script)
{
	cr_assert(n >= 1 && n <= MAX_SCRIPT);
	pthread_mutex_lock(&fake->lock);
	memcpy(fake->script, script, (size_t)n * sizeof(*script));
	fake->nscript = n;
	fake->requests = 0;
	pthread_mutex_unlock(&fake->lock);
}

static fake_t *fake_start(bool keep_alive, int n, const canned_t *script)
{
	fake_t *fake = calloc(1, sizeof(*fake));
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t addr_len = sizeof(addr);

	cr_assert_not_null(fake);
	fake->keep_alive = keep_alive;
	pthread_mutex_init(&fake->lock, NULL);
	fake_script(fake, n, script);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fake->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fake->listen_fd, 0);
	cr_assert_eq(
	        bind(fake->listen_fd, (struct sockaddr *)&addr, sizeof(addr)),
	        0);
	cr_assert_eq(listen(fake->listen_fd, 16), 0);
	cr_assert_eq(getsockname(fake->listen_fd, (struct sockaddr *)&addr,
	                         &addr_len),
	             0);
	fake->port = ntohs(addr.sin_port);
	cr_assert_eq(pthread_create(&fake->thread, NULL, fake_main, fake), 0);
	return fake;
}

static void fake_stop(fake_t *fake)
{
	atomic_store(&fake->stop, true);
	pthread_join(fake->thread, NULL);
	close(fake->listen_fd);
	pthread_mutex_destroy(&fake->lock);
	free(fake);
}

static int fake_requests(fake_t *fake)
{
	int n;

	pthread_mutex_lock(&fake->lock);
	n = fake->requests;
	pthread_mutex_unlock(&fake->lock);
	return n;
}

static seen_t fake_seen(fake_t *fake, int i)
{
	seen_t seen;

	pthread_mutex_lock(&fake->lock);
	cr_assert_lt(i, fake->requests);
	seen = fake->seen[i];
	pthread_mutex_unlock(&fake->lock);
	return seen;
}

/* ---- the adapter under test ---- */

static vox_carrier_t *carrier_at(int port, vox_carrier_conf_t conf)
{
	char url[64];
	vox_error_t err;
	vox_carrier_t *c;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	conf.base_url = url;
	conf.api_key = "test-key";
	if (conf.backoff_ms == 0)
		conf.backoff_ms = 10;
	c = vox_carrier_new(&conf, &err);
	cr_assert_not_null(c, "%s", err.message);
	return c;
}

static int search(vox_carrier_t *c, int *count, vox_error_t *err)
{
	vox_carrier_query_t q = {.country = "US", .area_code = "415"};
	vox_carrier_number_t numbers[5];

	vox_error_clear(err);
	return vox_carrier_search(c, &q, numbers, 5, count, err);
}

Test(carrier, succeeds_on_the_third_attempt)
{
	const canned_t script[] = {unavailable, unavailable, ok_search};
	fake_t *fake = fake_start(false, 3, script);
	vox_carrier_t *c = carrier_at(fake->port, (vox_carrier_conf_t){0});
	vox_error_t err;
	seen_t seen;
	int count = 0;

	cr_assert_eq(search(c, &count, &err), 0, "%s", err.message);
	cr_assert_eq(count, 1);
	cr_assert_eq(fake_requests(fake), 3);
	for (int i = 0; i < 3; i++) {
		seen = fake_seen(fake, i);
		cr_expect_str_eq(seen.method, "GET");
		cr_expect_str_eq(seen.target,
		                 "/v2/available_phone_numbers?filter[country_"
		                 "code]=US&filter[national_destination_code]="
		                 "415&filter[limit]=5");
		cr_expect_str_eq(seen.auth, "Bearer test-key");
	}
	cr_assert_eq(vox_carrier_breaker_state(c), VOX_BREAKER_CLOSED);
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, fails_retriable_after_max_attempts)
{
	fake_t *fake = fake_start(false, 1, &unavailable);
	vox_carrier_t *c =
	        carrier_at(fake->port, (vox_carrier_conf_t){.max_attempts = 4});
	vox_error_t err;
	int count = 9;

	cr_assert_eq(search(c, &count, &err), VOX_ERR_UNAVAILABLE);
	cr_assert(err.retriable);
	cr_assert_not(err.fatal);
	cr_assert_eq(count, 0);
	cr_assert_str_eq(err.message, "carrier search: failed (HTTP 503): try "
	                              "again, code 10009 (4 attempts)");
	cr_assert_eq(fake_requests(fake), 4);
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, unprocessable_is_not_retried)
{
	const canned_t script[] = {{422, NULL, error_422}};
	fake_t *fake = fake_start(false, 1, script);
	vox_carrier_t *c = carrier_at(fake->port, (vox_carrier_conf_t){0});
	vox_error_t err;
	seen_t seen;

	cr_assert_eq(vox_carrier_configure(c, "num/1", true, "+1555", &err),
	             VOX_ERR_INVALID);
	cr_assert_not(err.retriable);
	cr_assert_str_eq(err.message,
	                 "carrier configure: refused the request (HTTP 422): "
	                 "forwards_to must be an E.164 number, code 10015");
	cr_assert_eq(fake_requests(fake), 1);
	seen = fake_seen(fake, 0);
	cr_assert_str_eq(seen.method, "PATCH");
	cr_assert_str_eq(seen.target, "/v2/phone_numbers/num%2F1");
	cr_assert_str_eq(seen.content_type, "application/json");
	cr_assert_str_eq(seen.body,
	                 "{\"status\":\"active\",\"call_forwarding\":{"
	                 "\"call_forwarding_enabled\":true,\"forwards_to\":"
	                 "\"+1555\",\"forwarding_type\":\"always\"}}");
	/* an answer, even a refusal, says the carrier is up */
	cr_assert_eq(vox_carrier_breaker_state(c), VOX_BREAKER_CLOSED);
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, configure_and_release)
{
	const canned_t script[] = {{200, NULL, "{\"data\":{\"id\":\"n1\"}}"},
	                           {200, NULL, "{\"data\":{\"id\":\"n1\"}}"},
	                           {404, NULL,
	                            "{\"errors\":[{\"detail\":"
	                            "\"no such number\"}]}"}};
	fake_t *fake = fake_start(false, 3, script);
	vox_carrier_t *c = carrier_at(
	        fake->port, (vox_carrier_conf_t){.breaker_failures = 1});
	vox_error_t err;
	seen_t seen;

	cr_assert_eq(vox_carrier_configure(c, "n1", false, NULL, &err), 0, "%s",
	             err.message);
	seen = fake_seen(fake, 0);
	cr_assert_str_eq(seen.body, "{\"status\":\"disabled\",\"call_"
	                            "forwarding\":{\"call_forwarding_enabled\":"
	                            "false,\"forwards_to\":null}}");
	cr_assert_eq(vox_carrier_release(c, "n1", &err), 0, "%s", err.message);
	seen = fake_seen(fake, 1);
	cr_assert_str_eq(seen.method, "DELETE");
	cr_assert_str_eq(seen.target, "/v2/phone_numbers/n1");
	cr_assert_str_eq(seen.body, "");
	cr_assert_eq(vox_carrier_release(c, "n1", &err), VOX_ERR_NOT_FOUND);
	cr_assert_not(err.retriable);
	cr_assert_not_null(strstr(err.message, "no such number"));
	cr_assert_eq(fake_requests(fake), 3);
	cr_assert_eq(vox_carrier_breaker_state(c), VOX_BREAKER_CLOSED);
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, forwarding_pushed_with_its_version)
{
	const canned_t script[] = {
	        unavailable,
	        {200, NULL, "{\"data\":{\"settings_version\":7}}"},
	        {409, NULL,
	         "{\"errors\":[{\"code\":\"10020\",\"detail\":\"older\","
	         "\"meta\":{\"current_version\":9}}]}"},
	        {409, NULL, "{\"errors\":[{\"code\":\"10001\"}]}"}};
	fake_t *fake = fake_start(false, 4, script);
	vox_carrier_t *c = carrier_at(fake->port, (vox_carrier_conf_t){0});
	vox_carrier_forwarding_t on = {true, "sip:desk@pbx.example.com", false};
	vox_carrier_forwarding_t off = {false, NULL, false};
	vox_error_t err;
	long long held;
	seen_t seen;

	/* a 503, then the answer: the same request with the same key */
	cr_assert_eq(vox_carrier_push_forwarding(c, "n1", "num-a", 7, &on,
	                                         &held, &err),
	             0, "%s", err.message);
	cr_assert_eq(held, 7);
	cr_assert_eq(fake_requests(fake), 2);
	for (int i = 0; i < 2; i++) {
		seen = fake_seen(fake, i);
		cr_assert_str_eq(seen.method, "PATCH");
		cr_assert_str_eq(seen.target, "/v2/phone_numbers/n1/voice");
		cr_assert_str_eq(seen.idempotency_key, "num-a:7");
		cr_assert_str_eq(seen.body,
		                 "{\"settings_version\":7,\"call_forwarding\":{"
		                 "\"call_forwarding_enabled\":true,"
		                 "\"forwards_to\":\"sip:desk@pbx.example.com\","
		                 "\"forwarding_type\":\"always\"}}");
	}
	/* refused because the carrier has a newer version: done */
	cr_assert_eq(vox_carrier_push_forwarding(c, "n1", "num-a", 8, &off,
	                                         &held, &err),
	             0, "%s", err.message);
	cr_assert_eq(held, 9);
	seen = fake_seen(fake, 2);
	cr_assert_str_eq(seen.body, "{\"settings_version\":8,\"call_"
	                            "forwarding\":{\"call_forwarding_enabled\":"
	                            "false,\"forwards_to\":null,\"forwarding_"
	                            "type\":\"always\"}}");
	/* a 409 that does not say a newer version is there is a conflict */
	cr_assert_eq(vox_carrier_push_forwarding(c, "n1", "num-a", 10, &off,
	                                         &held, &err),
	             VOX_ERR_CONFLICT);
	cr_assert_eq(held, -1);
	/* nothing sent for a bad call */
	cr_assert_eq(vox_carrier_push_forwarding(c, "n1", "num-a", 0, &off,
	                                         &held, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_push_forwarding(
	                     c, "n1", "num-a", 11,
	                     &(vox_carrier_forwarding_t){true, NULL, false},
	                     &held, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(fake_requests(fake), 4);
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, order_retried_with_the_same_key)
{
	const canned_t script[] = {unavailable, {201, NULL, order_body}};
	const char *const numbers[] = {"+14155550123", "+14155550124"};
	vox_carrier_order_result_t results[2];
	fake_t *fake = fake_start(false, 2, script);
	vox_carrier_t *c = carrier_at(fake->port, (vox_carrier_conf_t){0});
	vox_error_t err;

	cr_assert_eq(vox_carrier_order(c, numbers, 2, "op-1", results, &err), 0,
	             "%s", err.message);
	cr_assert(results[0].ok);
	cr_assert_str_eq(results[0].carrier_id, "num-1");
	cr_assert_not(results[1].ok);
	cr_assert_str_eq(results[1].e164, "+14155550124");
	cr_assert_str_eq(results[1].error, "not in the carrier's answer");
	cr_assert_eq(fake_requests(fake), 2);
	for (int i = 0; i < 2; i++) {
		seen_t seen = fake_seen(fake, i);

		cr_expect_str_eq(seen.method, "POST");
		cr_expect_str_eq(seen.target, "/v2/number_orders");
		cr_expect_str_eq(seen.idempotency_key, "op-1");
		cr_expect_str_eq(seen.body,
		                 "{\"phone_numbers\":[{\"phone_number\":"
		                 "\"+14155550123\"},{\"phone_number\":"
		                 "\"+14155550124\"}],\"customer_reference\":"
		                 "\"op-1\"}");
	}
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, never_answering_times_out)
{
	const canned_t script[] = {{0, NULL, NULL}};
	fake_t *fake = fake_start(false, 1, script);
	vox_carrier_t *c =
	        carrier_at(fake->port, (vox_carrier_conf_t){.timeout_ms = 200,
	                                                    .max_attempts = 2});
	int64_t started = vox_mono_ms(), elapsed;
	vox_error_t err;
	int count;

	cr_assert_eq(search(c, &count, &err), VOX_ERR_TIMEOUT);
	elapsed = vox_mono_ms() - started;
	cr_assert(err.retriable);
	cr_assert_not_null(strstr(err.message, "within 200 ms (2 attempts)"),
	                   "%s", err.message);
	/* 2 x 200 ms plus a backoff of at most 10 ms */
	cr_assert_geq(elapsed, 390);
	cr_assert_lt(elapsed, 800, "took %lld ms", (long long)elapsed);
	cr_assert_eq(fake_requests(fake), 2);
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, connection_refused_is_retriable)
{
	int port = t_free_port(); /* nothing listens there */
	vox_carrier_t *c = carrier_at(port, (vox_carrier_conf_t){0});
	int64_t started = vox_mono_ms();
	vox_error_t err;
	int count;

	cr_assert_eq(search(c, &count, &err), VOX_ERR_UNAVAILABLE);
	cr_assert(err.retriable);
	cr_assert_not_null(strstr(err.message, "unreachable"), "%s",
	                   err.message);
	cr_assert_not_null(strstr(err.message, "(3 attempts)"), "%s",
	                   err.message);
	cr_assert_lt(vox_mono_ms() - started, 1000);
	vox_carrier_destroy(c);
}

Test(carrier, retry_after_is_honoured)
{
	const canned_t script[] = {{429, "Retry-After: 1\r\n", "{}"},
	                           ok_search};
	fake_t *fake = fake_start(false, 2, script);
	vox_carrier_t *c = carrier_at(fake->port, (vox_carrier_conf_t){0});
	int64_t started = vox_mono_ms(), elapsed;
	vox_error_t err;
	int count;

	cr_assert_eq(search(c, &count, &err), 0, "%s", err.message);
	elapsed = vox_mono_ms() - started;
	cr_assert_geq(elapsed, 1000, "retried after %lld ms",
	              (long long)elapsed);
	cr_assert_lt(elapsed, 2000);
	cr_assert_eq(fake_requests(fake), 2);
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, retry_after_beyond_the_cap_stops)
{
	const canned_t script[] = {{429, "Retry-After: 60\r\n", "{}"}};
	fake_t *fake = fake_start(false, 1, script);
	vox_carrier_t *c = carrier_at(fake->port, (vox_carrier_conf_t){0});
	int64_t started = vox_mono_ms();
	vox_error_t err;
	int count;

	cr_assert_eq(search(c, &count, &err), VOX_ERR_LIMIT);
	cr_assert(err.retriable);
	cr_assert_not_null(strstr(err.message, "wait 60 s"), "%s", err.message);
	cr_assert_eq(fake_requests(fake), 1);
	cr_assert_lt(vox_mono_ms() - started, 500);
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, breaker_opens_then_a_trial_closes_it)
{
	fake_t *fake = fake_start(false, 1, &unavailable);
	vox_carrier_t *c = carrier_at(
	        fake->port, (vox_carrier_conf_t){.max_attempts = 2,
	                                         .breaker_failures = 3,
	                                         .breaker_cooldown_ms = 300});
	int64_t started;
	vox_error_t err;
	int count;

	for (int i = 0; i < 3; i++) {
		cr_assert_eq(search(c, &count, &err), VOX_ERR_UNAVAILABLE);
		cr_assert_eq(vox_carrier_breaker_state(c),
		             i < 2 ? VOX_BREAKER_CLOSED : VOX_BREAKER_OPEN);
	}
	cr_assert_eq(fake_requests(fake), 6);

	/* open: fails at once, nothing sent */
	started = vox_mono_ms();
	cr_assert_eq(search(c, &count, &err), VOX_ERR_UNAVAILABLE);
	cr_assert(err.retriable);
	cr_assert_str_eq(err.message, "carrier circuit open");
	cr_assert_lt(vox_mono_ms() - started, 50);
	cr_assert_eq(fake_requests(fake), 6);

	/* after the cooldown one trial goes through and closes it */
	fake_script(fake, 1, &ok_search);
	usleep(350 * 1000);
	cr_assert_eq(search(c, &count, &err), 0, "%s", err.message);
	cr_assert_eq(count, 1);
	cr_assert_eq(fake_requests(fake), 1);
	cr_assert_eq(vox_carrier_breaker_state(c), VOX_BREAKER_CLOSED);
	cr_assert_eq(search(c, &count, &err), 0, "%s", err.message);
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, failed_trial_reopens_at_once)
{
	fake_t *fake = fake_start(false, 1, &unavailable);
	vox_carrier_t *c = carrier_at(
	        fake->port, (vox_carrier_conf_t){.max_attempts = 3,
	                                         .breaker_failures = 1,
	                                         .breaker_cooldown_ms = 200});
	vox_error_t err;
	int count;

	cr_assert_eq(search(c, &count, &err), VOX_ERR_UNAVAILABLE);
	cr_assert_eq(vox_carrier_breaker_state(c), VOX_BREAKER_OPEN);
	cr_assert_eq(fake_requests(fake), 3);
	usleep(250 * 1000);
	/* the trial is one attempt, whatever max_attempts says */
	cr_assert_eq(search(c, &count, &err), VOX_ERR_UNAVAILABLE);
	cr_assert_not_null(strstr(err.message, "HTTP 503"), "%s", err.message);
	cr_assert_eq(fake_requests(fake), 4);
	cr_assert_eq(vox_carrier_breaker_state(c), VOX_BREAKER_OPEN);
	cr_assert_eq(search(c, &count, &err), VOX_ERR_UNAVAILABLE);
	cr_assert_str_eq(err.message, "carrier circuit open");
	cr_assert_eq(fake_requests(fake), 4);
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, connection_kept_alive)
{
	fake_t *fake = fake_start(true, 1, &ok_search);
	vox_carrier_t *c = carrier_at(fake->port, (vox_carrier_conf_t){0});
	vox_error_t err;
	int count;

	for (int i = 0; i < 3; i++)
		cr_assert_eq(search(c, &count, &err), 0, "%s", err.message);
	cr_assert_eq(fake_requests(fake), 3);
	pthread_mutex_lock(&fake->lock);
	cr_assert_eq(fake->connections, 1);
	pthread_mutex_unlock(&fake->lock);
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, metrics)
{
	const canned_t script[] = {unavailable, ok_search};
	fake_t *fake = fake_start(false, 2, script);
	vox_metrics_t *metrics = vox_metrics_new();
	vox_carrier_t *c = carrier_at(fake->port,
	                              (vox_carrier_conf_t){.metrics = metrics});
	vox_error_t err;
	char *text;
	int count;

	cr_assert_eq(search(c, &count, &err), 0, "%s", err.message);
	text = vox_metrics_render(metrics, NULL);
	cr_assert_not_null(text);
	cr_expect_not_null(strstr(text, "vox_upstream_calls_total{upstream="
	                                "\"carrier\",endpoint=\"search\","
	                                "outcome=\"ok\"} 1\n"),
	                   "%s", text);
	cr_expect_not_null(strstr(text, "vox_upstream_requests_total{upstream="
	                                "\"carrier\",endpoint=\"search\","
	                                "class=\"5xx\"} 1\n"),
	                   "%s", text);
	cr_expect_not_null(strstr(text, "vox_upstream_requests_total{upstream="
	                                "\"carrier\",endpoint=\"search\","
	                                "class=\"2xx\"} 1\n"),
	                   "%s", text);
	cr_expect_not_null(strstr(text, "vox_upstream_retries_total{upstream="
	                                "\"carrier\",endpoint=\"search\"} 1\n"),
	                   "%s", text);
	cr_expect_not_null(strstr(text, "vox_upstream_breaker_state{upstream="
	                                "\"carrier\"} 0\n"),
	                   "%s", text);
	cr_expect_not_null(strstr(text, "vox_upstream_call_seconds_count{"
	                                "upstream=\"carrier\",endpoint="
	                                "\"search\"} 1\n"),
	                   "%s", text);
	free(text);
	vox_carrier_destroy(c);
	vox_metrics_destroy(metrics);
	fake_stop(fake);
}

Test(carrier, release_gone_on_a_retry_is_done)
{
	const canned_t script[] = {unavailable, {404, NULL, "{}"}};
	fake_t *fake = fake_start(false, 2, script);
	vox_carrier_t *c = carrier_at(fake->port, (vox_carrier_conf_t){0});
	vox_error_t err;

	cr_assert_eq(vox_carrier_release(c, "n1", &err), 0, "%s", err.message);
	cr_assert_eq(fake_requests(fake), 2);
	vox_carrier_destroy(c);
	fake_stop(fake);
}

static const char pending_body[] =
        "{\"data\":{\"id\":\"ord-9\",\"status\":\"pending\","
        "\"phone_numbers\":[{\"id\":\"num-9\",\"phone_number\":"
        "\"+14155550123\",\"status\":\"pending\"}]}}";
static const char settled_body[] =
        "{\"data\":{\"id\":\"ord-9\",\"status\":\"success\","
        "\"phone_numbers\":[{\"id\":\"num-9\",\"phone_number\":"
        "\"+14155550123\",\"status\":\"success\"}]}}";

Test(carrier, pending_order_is_polled)
{
	const canned_t script[] = {{201, NULL, pending_body},
	                           {200, NULL, pending_body},
	                           {200, NULL, settled_body}};
	const char *const numbers[] = {"+14155550123"};
	vox_carrier_order_result_t results[1];
	fake_t *fake = fake_start(true, 3, script);
	vox_carrier_t *c = carrier_at(fake->port, (vox_carrier_conf_t){0});
	vox_error_t err;

	cr_assert_eq(vox_carrier_order(c, numbers, 1, "op-9", results, &err), 0,
	             "%s", err.message);
	cr_assert(results[0].ok, "%s", results[0].error);
	cr_assert_str_eq(results[0].carrier_id, "num-9");
	cr_assert_eq(fake_requests(fake), 3);
	for (int i = 1; i < 3; i++) {
		seen_t seen = fake_seen(fake, i);

		cr_expect_str_eq(seen.method, "GET");
		cr_expect_str_eq(seen.target, "/v2/number_orders/ord-9");
		cr_expect_str_eq(seen.auth, "Bearer test-key");
	}
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, order_pending_too_long_is_retriable)
{
	const canned_t script[] = {{201, NULL, pending_body},
	                           {200, NULL, pending_body}};
	const char *const numbers[] = {"+14155550123"};
	vox_carrier_order_result_t results[1];
	fake_t *fake = fake_start(true, 2, script);
	vox_carrier_t *c = carrier_at(
	        fake->port, (vox_carrier_conf_t){.order_wait_ms = 300});
	int64_t started = vox_mono_ms();
	vox_error_t err;

	cr_assert_eq(vox_carrier_order(c, numbers, 1, "op-9", results, &err),
	             VOX_ERR_TIMEOUT);
	cr_assert(err.retriable);
	cr_assert_str_eq(err.message,
	                 "carrier order ord-9 still pending after 300 ms");
	cr_assert_geq(vox_mono_ms() - started, 300);
	cr_assert_lt(vox_mono_ms() - started, 800);
	cr_assert_geq(fake_requests(fake), 3);
	vox_carrier_destroy(c);
	fake_stop(fake);
}

Test(carrier, wrong_key_is_fatal_and_not_retried)
{
	const canned_t script[] = {{401, NULL,
	                            "{\"errors\":[{\"code\":\"10009\","
	                            "\"detail\":\"bad key\"}]}"}};
	fake_t *fake = fake_start(false, 1, script);
	vox_carrier_t *c = carrier_at(fake->port, (vox_carrier_conf_t){0});
	vox_error_t err;
	int count;

	cr_assert_eq(search(c, &count, &err), VOX_ERR_INTERNAL);
	cr_assert(err.fatal);
	cr_assert_not(err.retriable);
	cr_assert_str_eq(err.message, "carrier search: refused our credentials "
	                              "(HTTP 401): bad key, code 10009");
	cr_assert_eq(fake_requests(fake), 1);
	vox_carrier_destroy(c);
	fake_stop(fake);
}
