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

/* Leased tokens: two ingress instances on one Redis, a limit high enough
 * to lease (500/s: 10 tokens a lease). Together they admit what the one
 * shared GCRA allows, give or take a lease each, with far fewer Redis
 * calls than requests. */
static int lease_ports[2];
static pid_t lease_ingress[2];
static char lease_key[64], lease_account[40];

static bool lease_up(void *arg)
{
	return t_http("GET", *(int *)arg, "/healthz", NULL, NULL, NULL) == 200;
}

static void lease_start(void)
{
	static char port_env[2][64];

	for (int i = 0; i < 2; i++) {
		char log[32];
		lease_ports[i] = t_free_port();
		snprintf(port_env[i], sizeof(port_env[i]),
		         "VOX_INGRESS_PORT=%d", lease_ports[i]);
		const char *const env[] = {port_env[i], "VOX_RATE_READ=500",
		                           "VOX_RATE_LEASE=10", NULL};
		snprintf(log, sizeof(log), "lease-ingress-%d.log", i);
		lease_ingress[i] = t_spawn("ingress", log, env);
		cr_assert(t_wait_for(lease_up, &lease_ports[i], 20000),
		          "ingress %d not up", i);
	}
	t_account("owner", lease_account, lease_key);
}

static void lease_stop(void)
{
	for (int i = 0; i < 2; i++)
		cr_expect_eq(t_stop(lease_ingress[i], SIGTERM, 20000), 0);
}

static long metric_value(int p, const char *name)
{
	char *metrics = NULL, *at;
	long v = -1;

	if (t_http("GET", p, "/metrics", NULL, NULL, &metrics) == 200 &&
	    (at = strstr(metrics, name)) != NULL)
		v = strtol(at + strlen(name), NULL, 10);
	free(metrics);
	return v;
}

TestSuite(limits_lease, .init = lease_start, .fini = lease_stop,
          .timeout = 120);

static void lease_burst(const char *auth, int n, int *ok, int *limited)
{
	const char *h[] = {auth, NULL};

	for (int i = 0; i < n; i++) {
		int status = t_http_h("GET", lease_ports[i % 2], "/v1/account",
		                      NULL, h, NULL, NULL);

		*ok += status == 200;
		*limited += status == 429;
	}
}

static long lease_calls(void)
{
	long calls = 0;

	for (int i = 0; i < 2; i++)
		calls += metric_value(lease_ports[i],
		                      "\nvox_ratelimit_lease_calls_total ");
	return calls;
}

Test(limits_lease, two_instances_share_one_limit_with_few_redis_calls)
{
	char auth[600];
	struct timespec t0, t1;
	int ok = 0, limited = 0;
	long calls;
	double elapsed_s, allowed;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", lease_key);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* within the burst (1,000): every lease is a full one */
	lease_burst(auth, 800, &ok, &limited);
	calls = lease_calls();
	cr_log_info("lease: 800 requests, %d ok, %ld Redis calls", ok, calls);
	cr_assert_eq(ok, 800, "refused within the burst");
	cr_assert_gt(calls, 0);
	cr_assert_leq(calls, 800 / 10 + 2, "tokens were not leased in chunks");
	/* past it: refused once the shared allowance is spent */
	lease_burst(auth, 800, &ok, &limited);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	elapsed_s = (double)(t1.tv_sec - t0.tv_sec) +
	            (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* the GCRA allows the burst plus 500/s of what the run took; each
	 * instance may spend at most one lease (10) ahead, and loses at most
	 * one lease a second unspent */
	allowed = 1000.0 + 500.0 * elapsed_s;
	cr_log_info("lease: %d ok, %d limited in %.2f s (GCRA allows %.0f)", ok,
	            limited, elapsed_s, allowed);
	cr_assert_eq(ok + limited, 1600);
	cr_assert_gt(limited, 0, "the shared limit was not enforced");
	cr_assert_leq((double)ok, allowed + 2 * 10 + 1,
	              "two instances admitted more than the shared limit");
	cr_assert_geq((double)ok, 1000.0 - 2 * 10 * (elapsed_s + 1),
	              "leases lost more than a lease per instance a second");
}
