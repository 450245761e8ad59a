/*
 * Rate limits through Redis, and what happens when Redis goes away: the
 * ingress keeps serving (never hangs), limits each instance locally, and
 * says so in its metrics. The suite runs a Redis of its own so that
 * stopping it touches nothing else.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_json.h"

static int port, redis_port;
static pid_t ingress, redis;
static char key[64], account[40];

static bool redis_up(void *arg)
{
	char cmd[128];

	(void)arg;
	snprintf(cmd, sizeof(cmd),
	         "redis-cli -p %d ping 2>/dev/null | grep -q PONG", redis_port);
	return system(cmd) == 0;
}

static bool ingress_up(void *arg)
{
	(void)arg;
	return t_http("GET", port, "/healthz", NULL, NULL, NULL) == 200;
}

static void start(void)
{
	static char port_env[64], redis_env[96];
	char redis_arg[16];

	redis_port = t_free_port();
	snprintf(redis_arg, sizeof(redis_arg), "%d", redis_port);
	redis = fork();
	if (redis == 0) {
		freopen("/dev/null", "w", stdout);
		execlp("redis-server", "redis-server", "--port", redis_arg,
		       "--bind", "127.0.0.1", "--save", "", "--appendonly",
		       "no", "--loglevel", "warning", (char *)NULL);
		_exit(127);
	}
	cr_assert(t_wait_for(redis_up, NULL, 10000), "private redis not up");
	port = t_free_port();
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", port);
	snprintf(redis_env, sizeof(redis_env),
	         "VOX_REDIS_URL=redis://127.0.0.1:%d", redis_port);
	const char *const env[] = {port_env, redis_env, "VOX_RATE_COMMAND=5",
	                           "VOX_RATE_READ=5", NULL};
	ingress = t_spawn("ingress", "limits-ingress.log", env);
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
	t_account("owner", account, key);
}

static void stop(void)
{
	cr_expect_eq(t_stop(ingress, SIGTERM, 20000), 0);
	if (redis > 0)
		t_stop(redis, SIGTERM, 5000);
}

TestSuite(limits, .init = start, .fini = stop, .timeout = 120);

struct burst {
	int ok, limited;
	bool retry_after, remaining_zero;
	double slowest_ms;
};

static void burst(int n, struct burst *b)
{
	char auth[600];
	const char *h[] = {auth, NULL};

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	memset(b, 0, sizeof(*b));
	for (int i = 0; i < n; i++) {
		char *headers = NULL;
		struct timespec t0, t1;
		double ms;
		int status;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		status = t_http_h("GET", port, "/v1/account", NULL, h, NULL,
		                  &headers);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		     (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		if (ms > b->slowest_ms)
			b->slowest_ms = ms;
		if (status == 200)
			b->ok++;
		if (status == 429) {
			b->limited++;
			b->retry_after |=
			        strstr(headers, "Retry-After: ") != NULL;
			b->remaining_zero |=
			        strstr(headers, "RateLimit-Remaining: 0") !=
			        NULL;
		}
		free(headers);
	}
}

Test(limits, burst_past_the_limit_gets_429_with_retry_after)
{
	struct burst b;

	burst(40, &b);
	cr_log_info("burst: %d ok, %d limited", b.ok, b.limited);
	cr_assert_geq(b.ok, 10, "burst of 10 refused early (%d ok)", b.ok);
	cr_assert_lt(b.ok, 20, "limit not enforced (%d ok)", b.ok);
	cr_assert_gt(b.limited, 0);
	cr_assert(b.retry_after, "429 without Retry-After");
	cr_assert(b.remaining_zero, "429 without RateLimit-Remaining: 0");
	sleep(3); /* the bucket refills at 5/s */
	burst(3, &b);
	cr_assert_eq(b.ok, 3, "the limit did not recover");
}

Test(limits, redis_down_keeps_serving_with_local_limits)
{
	struct burst b;
	char *metrics = NULL;

	t_stop(redis, SIGKILL, 5000);
	redis = 0;
	burst(40, &b);
	cr_log_info("without redis: %d ok, %d limited, slowest %.0f ms", b.ok,
	            b.limited, b.slowest_ms);
	cr_assert_geq(b.ok, 10, "ingress stopped serving without Redis");
	cr_assert_gt(b.limited, 0, "no local limit without Redis");
	cr_assert_lt(b.slowest_ms, 1000.0, "a request hung on the dead Redis");
	cr_assert_eq(t_http("GET", port, "/metrics", NULL, NULL, &metrics),
	             200);
	cr_assert(strstr(metrics, "vox_ratelimit_redis_up 0"), "%s", metrics);
	cr_assert(
	        strstr(metrics, "vox_ratelimit_checks_total{store=\"local\"}"),
	        "%s", metrics);
	free(metrics);
	/* readiness reports it */
	cr_assert_eq(t_http("GET", port, "/readyz", NULL, NULL, NULL), 503);
}
