/*
 * Single flight for searches (search.h): when a search is not cached (or
 * due for a refresh), one thread of this process asks PostgreSQL (and the
 * carrier) for it; the others that miss meanwhile wait for its answer
 * instead of all running the same search (bench/numbers: an expiry turned
 * into a burst of misses that backed up the HTTP threads for seconds).
 * Across ingress instances the thread that leads takes a Redis lock on the
 * key (SET NX PX with a token of its own, released by a compare-and-delete
 * script), so one instance searches while the others wait for its answer
 * in Redis (search.c).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "search.h"
#include "vox_redis.h"
#include "vox_time.h"
#include "vox_uuid.h"

/* How long a lock holds if its instance dies: longer than a search with a
 * carrier refill (1.5 s timeout) takes. */
#define SEARCH_LOCK_MS 3000

/* Deletes the lock only if it is still ours. */
static const char unlock_script[] =
        "if redis.call('get', KEYS[1]) == ARGV[1] then "
        "return redis.call('del', KEYS[1]) else return 0 end";

struct search_flight {
	char key[96];
	pthread_cond_t done_cond;
	int waiters;
	bool done;
	char *body; /* the leader's answer, NULL if it had none */
	char label[24];
	struct search_flight *next;
};

static pthread_mutex_t flights_lock = PTHREAD_MUTEX_INITIALIZER;
static struct search_flight *flights; /* those under way */

static void flight_free(struct search_flight *f)
{
	pthread_cond_destroy(&f->done_cond);
	free(f->body);
	free(f);
}

static struct search_flight *flight_new(const char *key)
{
	struct search_flight *f = calloc(1, sizeof(*f));
	pthread_condattr_t attr;

	if (f == NULL)
		return NULL;
	snprintf(f->key, sizeof(f->key), "%s", key);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&f->done_cond, &attr);
	pthread_condattr_destroy(&attr);
	f->next = flights;
	flights = f;
	return f;
}

/* Waits (flights_lock held) up to wait_ms for f's answer: a copy, or NULL
 * if it had none or took longer. */
static char *flight_wait(struct search_flight *f, int wait_ms, char *label,
                         size_t label_len)
{
	/* done_cond waits on CLOCK_MONOTONIC, vox_mono_us's clock. */
	int64_t deadline_us = vox_mono_us() + (int64_t)wait_ms * 1000;
	struct timespec until = {(time_t)(deadline_us / 1000000),
	                         (long)(deadline_us % 1000000) * 1000};
	char *body = NULL;

	f->waiters++;
	while (!f->done && pthread_cond_timedwait(&f->done_cond, &flights_lock,
	                                          &until) == 0)
		;
	if (f->done && f->body != NULL) {
		body = strdup(f->body);
		snprintf(label, label_len, "%s", f->label);
	}
	if (--f->waiters == 0 && f->done)
		flight_free(f); /* the leader left it to the last waiter */
	return body;
}

struct search_flight *search_flight_begin(const char *key, int wait_ms,
                                          char **shared, char *label,
                                          size_t label_len)
{
	struct search_flight *f;

	*shared = NULL;
	pthread_mutex_lock(&flights_lock);
	for (f = flights; f != NULL; f = f->next)
		if (strcmp(f->key, key) == 0)
			break;
	if (f == NULL)
		f = flight_new(key); /* NULL if out of memory: on its own */
	else if (wait_ms > 0) {
		*shared = flight_wait(f, wait_ms, label, label_len);
		f = NULL;
	} else
		f = NULL;
	pthread_mutex_unlock(&flights_lock);
	return f;
}

void search_flight_end(struct search_flight *f, const char *body,
                       const char *label)
{
	struct search_flight **at;

	if (f == NULL)
		return;
	pthread_mutex_lock(&flights_lock);
	for (at = &flights; *at != NULL; at = &(*at)->next)
		if (*at == f) {
			*at = f->next;
			break;
		}
	f->done = true;
	f->body = body ? strdup(body) : NULL;
	snprintf(f->label, sizeof(f->label), "%s", label);
	pthread_cond_broadcast(&f->done_cond);
	if (f->waiters == 0)
		flight_free(f);
	pthread_mutex_unlock(&flights_lock);
}

void search_lock_key(const char *key, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s:flight", key);
}

/* The cached value of KEYS[1] if there is one; else 1 if the lock KEYS[2]
 * was free and is now ours, 0 if another holds it. One round trip. */
static const char lock_script[] =
        "local v = redis.call('get', KEYS[1]) if v then return v end "
        "if redis.call('set', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) "
        "then return 1 else return 0 end";

enum search_lock search_flight_lock(ingress_t *in, const char *key,
                                    char token[SEARCH_LOCK_TOKEN_LEN],
                                    char **value)
{
	enum search_lock taken = SEARCH_LOCK_NONE;
	char lkey[128];
	vox_redis_t *r;
	redisReply *reply;
	vox_error_t err;

	token[0] = '\0';
	if (value != NULL)
		*value = NULL;
	if (!limiter_redis_usable(in->limiter) ||
	    (r = limiter_redis(in->limiter)) == NULL)
		return SEARCH_LOCK_NONE;
	vox_uuid7(token); /* 62 random bits: no other holder has it */
	search_lock_key(key, lkey, sizeof(lkey));
	if (value != NULL)
		reply = vox_redis_command(r, &err, "EVAL %s 2 %s %s %s %d",
		                          lock_script, key, lkey, token,
		                          SEARCH_LOCK_MS);
	else
		reply = vox_redis_command(r, &err, "SET %s %s NX PX %d", lkey,
		                          token, SEARCH_LOCK_MS);
	if (reply == NULL) {
		limiter_redis_failed(in->limiter);
		token[0] = '\0';
		return SEARCH_LOCK_NONE;
	}
	if (reply->type == REDIS_REPLY_STRING && value != NULL) {
		*value = strndup(reply->str, reply->len);
		taken = *value ? SEARCH_LOCK_CACHED : SEARCH_LOCK_NONE;
	} else if (reply->type == REDIS_REPLY_STATUS ||
	           (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1))
		taken = SEARCH_LOCK_OURS; /* OK, or the script's 1 */
	else if (reply->type == REDIS_REPLY_NIL ||
	         reply->type == REDIS_REPLY_INTEGER)
		taken = SEARCH_LOCK_THEIRS;
	freeReplyObject(reply);
	if (taken != SEARCH_LOCK_OURS)
		token[0] = '\0';
	return taken;
}

void search_flight_unlock(ingress_t *in, const char *key, const char *token)
{
	char lkey[128];
	vox_redis_t *r;
	redisReply *reply;
	vox_error_t err;

	if (token[0] == '\0' || !limiter_redis_usable(in->limiter) ||
	    (r = limiter_redis(in->limiter)) == NULL)
		return; /* it expires by itself */
	search_lock_key(key, lkey, sizeof(lkey));
	reply = vox_redis_command(r, &err, "EVAL %s 1 %s %s", unlock_script,
	                          lkey, token);
	if (reply == NULL)
		limiter_redis_failed(in->limiter);
	else
		freeReplyObject(reply);
}
