/*
 * Rate limits per credential and route class, shared by every ingress
 * instance through Redis (GCRA in one Lua call: no read-modify-write race).
 * A request does not go to Redis each time: an instance leases tokens in
 * chunks (up to a fiftieth of the rate per second, at most lease_max, each
 * lease good for LEASE_TTL_MS) into a local table and spends them without
 * a round trip, so a credential sending thousands a second costs Redis a
 * few calls a second, and an HTTP thread seldom waits on it. The limit
 * stays shared: Redis grants every token of a lease out of the same GCRA
 * allowance; an instance can be ahead of the others by at most one lease,
 * and unspent tokens of an expired lease are lost, never handed out twice.
 * Rates under 100/s lease one token at a time (exactly the GCRA of every
 * request). When Redis does not answer, each instance limits locally with the
 * same algorithm, logs it (at most every 10 s) and counts it in
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
/* How long leased tokens may be spent: a lease is at most a fiftieth of
 * a second's rate, so a busy credential renews it well before. */
#define LEASE_TTL_MS 1000

/* GCRA: KEYS[1] bucket; ARGV[1] emission interval (us), ARGV[2] burst.
 * Leaves allowed (1/0), remaining, retry_after_us, reset_us in locals. */
#define GCRA_LUA                                                               \
	"local t = redis.call('TIME') "                                        \
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "               \
	"local interval = tonumber(ARGV[1]) "                                  \
	"local burst = tonumber(ARGV[2]) "                                     \
	"local tolerance = interval * (burst - 1) "                            \
	"local tat = tonumber(redis.call('GET', KEYS[1]) or now) "             \
	"if tat < now then tat = now end "                                     \
	"local allowed, remaining, retry, reset = 0, 0, 0, 0 "                 \
	"if tat - now > tolerance then "                                       \
	"  retry, reset = tat - now - tolerance, tat - now "                   \
	"else "                                                                \
	"  local new_tat = tat + interval "                                    \
	"  redis.call('SET', KEYS[1], new_tat, 'PX', "                         \
	"    math.ceil((new_tat - now) / 1000) + 1) "                          \
	"  allowed = 1 "                                                       \
	"  remaining = math.floor((tolerance - (new_tat - now - interval)) "   \
	"    / interval) "                                                     \
	"  reset = new_tat - now "                                             \
	"end "

/* A lease: KEYS[1] bucket; ARGV[1] emission interval (us), ARGV[2] burst,
 * ARGV[3] tokens wanted. Grants as many of them as the GCRA allows now
 * (at least one, or none) in one step. Returns {granted, remaining after
 * them, retry_after_us, reset_us}. */
static const char lease_lua[] =
        "local t = redis.call('TIME') "
        "local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "
        "local interval = tonumber(ARGV[1]) "
        "local burst = tonumber(ARGV[2]) "
        "local want = tonumber(ARGV[3]) "
        "local tolerance = interval * (burst - 1) "
        "local tat = tonumber(redis.call('GET', KEYS[1]) or now) "
        "if tat < now then tat = now end "
        "if tat - now > tolerance then "
        "  return {0, 0, tat - now - tolerance, tat - now} "
        "end "
        "local n = math.floor((tolerance - (tat - now)) / interval) + 1 "
        "if n > want then n = want end "
        "local new_tat = tat + n * interval "
        "redis.call('SET', KEYS[1], new_tat, 'PX', "
        "  math.ceil((new_tat - now) / 1000) + 1) "
        "return {n, math.floor((tolerance - (new_tat - now - interval)) "
        "  / interval), 0, new_tat - now}";

/* The same, then when allowed SET KEYS[2] NX EX ARGV[3] (a use-once
 * token: a carrier request's signature). Returns {allowed, remaining,
 * retry_after_us, reset_us, fresh}: fresh 1 when KEYS[2] was not set
 * before, 0 when it was (a replay), or when not allowed (not set). */
static const char gcra_once_lua[] =
        GCRA_LUA "local fresh = 0 "
                 "if allowed == 1 and "
                 "   redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then "
                 "  fresh = 1 "
                 "end "
                 "return {allowed, remaining, retry, reset, fresh}";

struct local_bucket {
	char key[96];
	double tat_us;
};

/* Tokens leased from Redis, spent locally. */
struct lease {
	char key[96];
	long tokens;    /* left to spend */
	long remaining; /* what Redis had left after granting them */
	long reset_us;  /* Redis's reset when granted */
	long granted_ms, expires_ms;
};

struct limiter {
	char *redis_url;
	long lease_max;
	/* EVALSHA: a script's text is sent once per connection, not per
	 * request (EVAL when Redis answers NOSCRIPT). */
	char once_sha[41], lease_sha[41];
	pthread_key_t conn_key; /* one Redis connection per server thread */
	atomic_long redis_down_until_ms;
	atomic_long last_warning_ms;
	pthread_mutex_t local_lock;
	struct local_bucket local[LOCAL_SLOTS];
	pthread_mutex_t lease_lock;
	struct lease leases[LOCAL_SLOTS];
	vox_counter_t *via_redis, *via_local, *via_lease, *lease_calls;
	vox_gauge_t *redis_up;
};

static void conn_free(void *conn)
{
	vox_redis_destroy(conn);
}

static void script_sha1(const char *script, char out[41])
{
	unsigned char md[SHA_DIGEST_LENGTH];

	SHA1((const unsigned char *)script, strlen(script), md);
	vox_hex_encode(md, SHA_DIGEST_LENGTH, out);
}

struct limiter *limiter_new(const char *redis_url, long lease_max,
                            vox_metrics_t *metrics)
{
	struct limiter *lim = calloc(1, sizeof(*lim));

	if (lim == NULL)
		return NULL;
	lim->redis_url = strdup(redis_url);
	lim->lease_max = lease_max > 0 ? lease_max : 1;
	script_sha1(gcra_once_lua, lim->once_sha);
	script_sha1(lease_lua, lim->lease_sha);
	pthread_key_create(&lim->conn_key, conn_free);
	pthread_mutex_init(&lim->local_lock, NULL);
	pthread_mutex_init(&lim->lease_lock, NULL);
	lim->via_redis = vox_metrics_counter(
	        metrics, "vox_ratelimit_checks_total",
	        "Rate limit decisions by where they were made",
	        "store=\"redis\"");
	lim->via_local = vox_metrics_counter(
	        metrics, "vox_ratelimit_checks_total",
	        "Rate limit decisions by where they were made",
	        "store=\"local\"");
	lim->via_lease = vox_metrics_counter(
	        metrics, "vox_ratelimit_checks_total",
	        "Rate limit decisions by where they were made",
	        "store=\"lease\"");
	lim->lease_calls =
	        vox_metrics_counter(metrics, "vox_ratelimit_lease_calls_total",
	                            "Calls to Redis that leased tokens", NULL);
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
	pthread_mutex_destroy(&lim->lease_lock);
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

/* One script call on bucket, by its SHA1 (its text when Redis answers
 * NOSCRIPT): a lease of want tokens (once_key NULL), or the GCRA of one
 * request then SET once_key NX EX once_ttl.
 * The reply (an array of 4, or 5 with once_key), or NULL. */
static redisReply *gcra_call(struct limiter *lim, const char *bucket,
                             long interval, long burst, const char *once_key,
                             long once_ttl_s, long want)
{
	char interval_s[24], burst_s[24], arg_s[24];
	size_t nreply = once_key ? 5 : 4;
	redisReply *r = NULL;
	vox_error_t err;
	vox_redis_t *conn = limiter_conn(lim, &err);

	if (conn == NULL)
		return NULL;
	snprintf(interval_s, sizeof(interval_s), "%ld", interval);
	snprintf(burst_s, sizeof(burst_s), "%ld", burst);
	snprintf(arg_s, sizeof(arg_s), "%ld", want > 0 ? want : once_ttl_s);
	for (int sent_text = 0; sent_text < 2; sent_text++) {
		const char *cmd = sent_text ? "EVAL" : "EVALSHA";
		const char *script;

		if (once_key != NULL)
			script = sent_text ? gcra_once_lua : lim->once_sha;
		else
			script = sent_text ? lease_lua : lim->lease_sha;
		if (once_key != NULL)
			r = vox_redis_command(conn, &err,
			                      "%s %s 2 %s %s %s %s %s", cmd,
			                      script, bucket, once_key,
			                      interval_s, burst_s, arg_s);
		else
			r = vox_redis_command(conn, &err, "%s %s 1 %s %s %s %s",
			                      cmd, script, bucket, interval_s,
			                      burst_s, arg_s);
		if (r == NULL || r->type != REDIS_REPLY_ERROR ||
		    strncmp(r->str, "NOSCRIPT", 8) != 0)
			break;
		freeReplyObject(r); /* not loaded yet: send the text */
		r = NULL;
	}
	if (r != NULL &&
	    (r->type != REDIS_REPLY_ARRAY || r->elements != nreply)) {
		freeReplyObject(r);
		r = NULL;
	}
	for (size_t i = 0; r != NULL && i < nreply; i++)
		if (r->element[i]->type != REDIS_REPLY_INTEGER) {
			freeReplyObject(r);
			r = NULL;
		}
	return r;
}

static void result_from_reply(struct limit_result *out, long burst,
                              const redisReply *r)
{
	result_fill(out, 0, burst, r->element[0]->integer == 1,
	            (double)r->element[1]->integer,
	            (double)r->element[2]->integer,
	            (double)r->element[3]->integer);
}

/* The slot of bucket in a table of LOCAL_SLOTS (djb2). */
static size_t bucket_slot(const char *bucket)
{
	unsigned long h = 5381;

	for (const char *c = bucket; *c; c++)
		h = h * 33 + (unsigned char)*c;
	return h % LOCAL_SLOTS;
}

/* The lease slot of bucket; lease_lock held. */
static struct lease *lease_slot(struct limiter *lim, const char *bucket)
{
	return &lim->leases[bucket_slot(bucket)];
}

/* Spends a leased token of bucket: true when there was one. */
static bool lease_spend(struct limiter *lim, const char *bucket, long burst,
                        struct limit_result *out)
{
	long now = vox_mono_ms();
	struct lease *l;
	bool spent = false;

	pthread_mutex_lock(&lim->lease_lock);
	l = lease_slot(lim, bucket);
	if (l->tokens > 0 && now < l->expires_ms &&
	    strcmp(l->key, bucket) == 0) {
		l->tokens--;
		/* what Redis had left, plus what is left here; the reset
		 * as Redis said it, less the time since */
		result_fill(out, 0, burst, true,
		            (double)(l->remaining + l->tokens), 0,
		            (double)l->reset_us -
		                    (double)(now - l->granted_ms) * 1000.0);
		spent = true;
	}
	pthread_mutex_unlock(&lim->lease_lock);
	return spent;
}

/* Keeps the tokens of a lease past the one the request takes. */
static void lease_keep(struct limiter *lim, const char *bucket, long tokens,
                       long remaining, long reset_us)
{
	long now = vox_mono_ms();
	struct lease *l;

	pthread_mutex_lock(&lim->lease_lock);
	l = lease_slot(lim, bucket);
	if (strcmp(l->key, bucket) != 0 || now >= l->expires_ms) {
		snprintf(l->key, sizeof(l->key), "%s", bucket);
		l->tokens = 0;
	}
	l->tokens += tokens;
	l->remaining = remaining;
	l->reset_us = reset_us;
	l->granted_ms = now;
	l->expires_ms = now + LEASE_TTL_MS;
	pthread_mutex_unlock(&lim->lease_lock);
}

/* A fiftieth of the rate per second, between 1 and lease_max. */
static long lease_size(const struct limiter *lim, long rate_per_s)
{
	long want = rate_per_s / 50;

	if (want > lim->lease_max)
		want = lim->lease_max;
	return want < 1 ? 1 : want;
}

static int check_redis(struct limiter *lim, const char *bucket, long interval,
                       long burst, long want, struct limit_result *out)
{
	redisReply *r;
	long granted;

	if (lease_spend(lim, bucket, burst, out)) {
		vox_counter_inc(lim->via_lease);
		return 0;
	}
	r = gcra_call(lim, bucket, interval, burst, NULL, 0, want);
	if (r == NULL)
		return VOX_ERR_UNAVAILABLE;
	vox_counter_inc(lim->lease_calls);
	vox_counter_inc(lim->via_redis);
	granted = (long)r->element[0]->integer;
	if (granted > 1)
		lease_keep(lim, bucket, granted - 1,
		           (long)r->element[1]->integer,
		           (long)r->element[3]->integer);
	result_fill(out, 0, burst, granted > 0,
	            (double)(r->element[1]->integer +
	                     (granted > 1 ? granted - 1 : 0)),
	            (double)r->element[2]->integer,
	            (double)r->element[3]->integer);
	freeReplyObject(r);
	return 0;
}

static void check_local(struct limiter *lim, const char *bucket, long interval,
                        long burst, struct limit_result *out)
{
	struct local_bucket *b;
	double now, tat, tolerance = (double)interval * (double)(burst - 1);

	now = (double)vox_mono_us();
	pthread_mutex_lock(&lim->local_lock);
	b = &lim->local[bucket_slot(bucket)];
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

/* Rate limits are per second; a burst of two seconds' worth. */
static void limit_params(const char *credential, const char *limit_class,
                         long rate_per_s, char bucket[96], long *interval,
                         long *burst)
{
	*interval = 1000000L / (rate_per_s > 0 ? rate_per_s : 1);
	if (*interval < 1) /* over 10^6/s: one a microsecond, Redis's clock */
		*interval = 1;
	*burst = rate_per_s * 2;
	snprintf(bucket, 96, "vox:rl:%s:%s", limit_class, credential);
}

void limiter_check(struct limiter *lim, const char *credential,
                   const char *limit_class, long rate_per_s,
                   struct limit_result *out)
{
	long interval, burst;
	char bucket[96];

	limit_params(credential, limit_class, rate_per_s, bucket, &interval,
	             &burst);
	if (vox_mono_ms() >= atomic_load(&lim->redis_down_until_ms)) {
		if (check_redis(lim, bucket, interval, burst,
		                lease_size(lim, rate_per_s), out) == 0) {
			vox_gauge_set(lim->redis_up, 1);
			return;
		}
		redis_failed(lim);
	}
	vox_counter_inc(lim->via_local);
	check_local(lim, bucket, interval, burst, out);
}

int limiter_check_once(struct limiter *lim, const char *credential,
                       const char *limit_class, long rate_per_s,
                       const char *once_key, long once_ttl_s,
                       struct limit_result *out, bool *fresh)
{
	long interval, burst;
	char bucket[96];
	redisReply *r;

	*fresh = false;
	if (vox_mono_ms() < atomic_load(&lim->redis_down_until_ms))
		return VOX_ERR_UNAVAILABLE;
	limit_params(credential, limit_class, rate_per_s, bucket, &interval,
	             &burst);
	r = gcra_call(lim, bucket, interval, burst, once_key, once_ttl_s, 0);
	if (r == NULL) {
		redis_failed(lim);
		return VOX_ERR_UNAVAILABLE;
	}
	vox_counter_inc(lim->via_redis);
	vox_gauge_set(lim->redis_up, 1);
	result_from_reply(out, burst, r);
	*fresh = r->element[4]->integer == 1;
	freeReplyObject(r);
	return 0;
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
