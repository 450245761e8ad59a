/*
 * Rate limits per credential and route class, shared by every ingress
 * instance through Redis (GCRA in one Lua call: no read-modify-write race).
 * When Redis does not answer, each instance limits locally with the same
 * algorithm, logs it (at most every 10 s) and counts it in
 * vox_ratelimit_local_total; after a failure Redis is skipped for a second
 * so a dead Redis costs one timeout per second, not one per request.
 */
#include <math.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingress.h"
#include "vox_crypto.h"
#include "vox_log.h"
#include "vox_redis.h"
#include "vox_time.h"

#define LOCAL_SLOTS      4096
#define REDIS_TIMEOUT_MS 100
#define REDIS_BACKOFF_MS 1000

/* GCRA: KEYS[1] bucket; ARGV[1] emission interval (us), ARGV[2] burst.
 * Returns {allowed, remaining, retry_after_us, reset_us}. */
static const char gcra_lua[] =
        "local t = redis.call('TIME') "
        "local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "
        "local interval = tonumber(ARGV[1]) "
        "local burst = tonumber(ARGV[2]) "
        "local tolerance = interval * (burst - 1) "
        "local tat = tonumber(redis.call('GET', KEYS[1]) or now) "
        "if tat < now then tat = now end "
        "if tat - now > tolerance then "
        "  return {0, 0, tat - now - tolerance, tat - now} "
        "end "
        "local new_tat = tat + interval "
        "redis.call('SET', KEYS[1], new_tat, 'PX', "
        "  math.ceil((new_tat - now) / 1000) + 1) "
        "local remaining = math.floor((tolerance - (new_tat - now - interval)) "
        "  / interval) "
        "return {1, remaining, 0, new_tat - now}";

struct local_bucket {
	char key[96];
	double tat_us;
};

struct limiter {
	char *redis_url;
	char script_sha[41];    /* EVALSHA: the script is sent only once */
	pthread_key_t conn_key; /* one Redis connection per server thread */
	atomic_long redis_down_until_ms;
	atomic_long last_warning_ms;
	pthread_mutex_t local_lock;
	struct local_bucket local[LOCAL_SLOTS];
	vox_counter_t *via_redis, *via_local;
	vox_gauge_t *redis_up;
};

static void conn_free(void *conn)
{
	vox_redis_destroy(conn);
}

struct limiter *limiter_new(const char *redis_url, vox_metrics_t *metrics)
{
	struct limiter *lim = calloc(1, sizeof(*lim));

	if (lim == NULL)
		return NULL;
	lim->redis_url = strdup(redis_url);
	{
		unsigned char md[SHA_DIGEST_LENGTH];

		SHA1((const unsigned char *)gcra_lua, strlen(gcra_lua), md);
		vox_hex_encode(md, SHA_DIGEST_LENGTH, lim->script_sha);
	}
	pthread_key_create(&lim->conn_key, conn_free);
	pthread_mutex_init(&lim->local_lock, NULL);
	lim->via_redis = vox_metrics_counter(
	        metrics, "vox_ratelimit_checks_total",
	        "Rate limit decisions by where they were made",
	        "store=\"redis\"");
	lim->via_local = vox_metrics_counter(
	        metrics, "vox_ratelimit_checks_total",
	        "Rate limit decisions by where they were made",
	        "store=\"local\"");
	lim->redis_up = vox_metrics_gauge(
	        metrics, "vox_ratelimit_redis_up",
	        "1 while rate limits are shared through Redis", NULL);
	vox_gauge_set(lim->redis_up, 1);
	return lim;
}

void limiter_destroy(struct limiter *lim)
{
	if (lim == NULL)
		return;
	pthread_key_delete(lim->conn_key);
	pthread_mutex_destroy(&lim->local_lock);
	free(lim->redis_url);
	free(lim);
}

static vox_redis_t *limiter_conn(struct limiter *lim, vox_error_t *err)
{
	vox_redis_t *conn = pthread_getspecific(lim->conn_key);

	if (conn == NULL) {
		conn = vox_redis_new(lim->redis_url, REDIS_TIMEOUT_MS, err);
		if (conn != NULL)
			pthread_setspecific(lim->conn_key, conn);
	}
	return conn;
}

int limiter_ping(struct limiter *lim, vox_error_t *err)
{
	vox_redis_t *conn = limiter_conn(lim, err);

	return conn ? vox_redis_ping(conn, err) : VOX_ERR_UNAVAILABLE;
}

static void result_fill(struct limit_result *out, long rate, long burst,
                        bool allowed, double remaining, double retry_us,
                        double reset_us)
{
	out->allowed = allowed;
	out->limit = burst;
	out->remaining = remaining < 0 ? 0 : (long)remaining;
	out->retry_after_s = allowed ? 0 : (long)ceil(retry_us / 1e6);
	if (!allowed && out->retry_after_s < 1)
		out->retry_after_s = 1;
	out->reset_s = (long)ceil(reset_us / 1e6);
	(void)rate;
}

static int check_redis(struct limiter *lim, const char *bucket, long interval,
                       long burst, struct limit_result *out)
{
	char interval_s[24], burst_s[24];
	redisReply *r;
	vox_error_t err;
	vox_redis_t *conn = limiter_conn(lim, &err);

	if (conn == NULL)
		return VOX_ERR_UNAVAILABLE;
	snprintf(interval_s, sizeof(interval_s), "%ld", interval);
	snprintf(burst_s, sizeof(burst_s), "%ld", burst);
	/* EVAL keeps it stateless; Redis caches the compiled script. */
	r = vox_redis_command(conn, &err, "EVAL %s 1 %s %s %s", gcra_lua,
	                      bucket, interval_s, burst_s);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
		if (r != NULL)
			freeReplyObject(r);
		return VOX_ERR_UNAVAILABLE;
	}
	result_fill(out, 0, burst, r->element[0]->integer == 1,
	            (double)r->element[1]->integer,
	            (double)r->element[2]->integer,
	            (double)r->element[3]->integer);
	freeReplyObject(r);
	return 0;
}

static void check_local(struct limiter *lim, const char *bucket, long interval,
                        long burst, struct limit_result *out)
{
	unsigned long h = 5381;
	struct local_bucket *b;
	double now, tat, tolerance = (double)interval * (double)(burst - 1);

	for (const char *c = bucket; *c; c++)
		h = h * 33 + (unsigned char)*c;
	now = (double)vox_mono_us();
	pthread_mutex_lock(&lim->local_lock);
	b = &lim->local[h % LOCAL_SLOTS];
	if (strcmp(b->key, bucket) != 0) {
		snprintf(b->key, sizeof(b->key), "%s", bucket);
		b->tat_us = now;
	}
	tat = b->tat_us < now ? now : b->tat_us;
	if (tat - now > tolerance) {
		result_fill(out, 0, burst, false, 0, tat - now - tolerance,
		            tat - now);
	} else {
		b->tat_us = tat + (double)interval;
		result_fill(out, 0, burst, true,
		            floor((tolerance - (b->tat_us - now - interval)) /
		                  (double)interval),
		            0, b->tat_us - now);
	}
	pthread_mutex_unlock(&lim->local_lock);
}

static void redis_failed(struct limiter *lim)
{
	long now = vox_mono_ms();
	long last = atomic_load(&lim->last_warning_ms);

	atomic_store(&lim->redis_down_until_ms, now + REDIS_BACKOFF_MS);
	vox_gauge_set(lim->redis_up, 0);
	if (now - last > 10000 &&
	    atomic_compare_exchange_strong(&lim->last_warning_ms, &last, now))
		vox_log(VOX_LOG_WARN,
		        "redis unreachable: rate limits are per instance until "
		        "it answers",
		        NULL);
}

void limiter_check(struct limiter *lim, const char *credential,
                   const char *limit_class, long rate_per_s,
                   struct limit_result *out)
{
	long interval = 1000000L / (rate_per_s > 0 ? rate_per_s : 1);
	long burst = rate_per_s * 2;
	char bucket[96];

	snprintf(bucket, sizeof(bucket), "vox:rl:%s:%s", limit_class,
	         credential);
	if (vox_mono_ms() >= atomic_load(&lim->redis_down_until_ms)) {
		if (check_redis(lim, bucket, interval, burst, out) == 0) {
			vox_counter_inc(lim->via_redis);
			vox_gauge_set(lim->redis_up, 1);
			return;
		}
		redis_failed(lim);
	}
	vox_counter_inc(lim->via_local);
	check_local(lim, bucket, interval, burst, out);
}

struct vox_redis *limiter_redis(struct limiter *lim)
{
	vox_error_t err;

	return limiter_conn(lim, &err);
}

bool limiter_redis_usable(struct limiter *lim)
{
	return vox_mono_ms() >= atomic_load(&lim->redis_down_until_ms);
}

void limiter_redis_failed(struct limiter *lim)
{
	redis_failed(lim);
}
