/*
 * The number search (GET /v1/available-numbers, docs/NUMBERS.md), one
 * concern per file:
 *   search.c         arguments, the query on the local pool, the answer
 *   search_cache.c   answers cached in Redis, rechecked on a hit, and the
 *                    stale copy served when the carrier is down
 *   search_memory.c  answers kept in this process for a second, served
 *                    without Redis or a recheck
 *   search_flight.c  single flight: one thread of one instance asks for a
 *                    missed or refreshing search (a Redis lock across
 *                    instances), the others wait for its answer
 *   pool_refill.c    the carrier refills the local pool when a search
 *                    comes up short
 */
#ifndef INGRESS_SEARCH_H
#define INGRESS_SEARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "ingress.h"

/* "{voice,sms,mms}" at most. */
#define SEARCH_FEATURES_LEN 16

struct search {
	char country[3];
	const char *area_code, *city, *region, *type, *cursor;
	char contains[40], starts[40], ends[40]; /* LIKE patterns or "" */
	char features[SEARCH_FEATURES_LEN];      /* "{voice,sms}" */
	unsigned feature_bits;                   /* 1 voice, 2 sms, 4 mms */
	long limit;
	char raw_contains[32], raw_starts[32], raw_ends[32];
};

/* search.c: feature bits as a PostgreSQL text[] literal ("{}" for 0). */
void search_features_text(unsigned bits, char out[SEARCH_FEATURES_LEN]);

/* search_cache.c */
#define SEARCH_CACHE_S 10
#define SEARCH_STALE_S 3600
/* The Redis key of a search (stale: the long-lived copy). */
void search_cache_key(const struct search *q, bool stale, char *out,
                      size_t outlen);
/* The answer to key kept in memory (search_memory.c), else the one cached
 * in Redis, rechecked against the pool (and then kept in memory); NULL if
 * none. *old: due for a refresh. */
char *search_cache_lookup(ingress_t *in, const char *key, bool *old);
/* The body of the stale copy at key, without recheck; NULL if none. */
char *search_cache_stale(ingress_t *in, const char *key);
/* The answer in a raw cached value of key (search_flight_lock), rechecked
 * as search_cache_lookup does; NULL if unusable. */
char *search_cache_value(ingress_t *in, const char *key, const char *value,
                         bool *old);
/* Caches body, whose numbers are the first count rows of res, at key
 * (SEARCH_CACHE_S) and stale_key (SEARCH_STALE_S), and in the same round
 * trip releases key's lock if token (not "") holds it; then empties
 * token. */
void search_cache_store(ingress_t *in, const char *key, const char *stale_key,
                        const PGresult *res, int count, const char *body,
                        char *token);

/* search_memory.c */
#define SEARCH_MEMORY_MS 1000
/* A copy of the answer to key kept in this process less than
 * SEARCH_MEMORY_MS ago, or NULL. */
char *search_memory_get(const char *key);
/* Keeps a copy of body as the answer to key. */
void search_memory_put(const char *key, const char *body);

/* search_flight.c */
struct search_flight;
/* Leads the flight of key: returns it, to end with search_flight_end.
 * NULL when another thread leads it; then, with wait_ms > 0, *shared gets
 * a copy of its answer (NULL if it had none within wait_ms). */
struct search_flight *search_flight_begin(const char *key, int wait_ms,
                                          char **shared, char *label,
                                          size_t label_len);
/* Ends a flight this thread leads (NULL: nothing), handing its answer
 * (body, may be NULL) to the threads waiting for it. */
void search_flight_end(struct search_flight *f, const char *body,
                       const char *label);
/* Across instances: a Redis lock per key, held by the one instance that
 * searches it. */
enum search_lock {
	SEARCH_LOCK_OURS,   /* taken: search, then release it */
	SEARCH_LOCK_THEIRS, /* another instance searches it now */
	SEARCH_LOCK_CACHED, /* not taken: the answer is cached (*value) */
	SEARCH_LOCK_NONE    /* Redis unusable: search on our own */
};
#define SEARCH_LOCK_TOKEN_LEN 40
/* The Redis key of key's lock. */
void search_lock_key(const char *key, char *out, size_t outlen);
/* Tries to take key's lock (for SEARCH_LOCK_MS at most); token gets what
 * releases it. With value, in the same round trip: if key is cached, its
 * raw value (malloc'd, for search_cache_value) instead of the lock. */
enum search_lock search_flight_lock(ingress_t *in, const char *key,
                                    char token[SEARCH_LOCK_TOKEN_LEN],
                                    char **value);
/* Releases key's lock if token still holds it (not after it expired and
 * another instance took it). */
void search_flight_unlock(ingress_t *in, const char *key, const char *token);

/* pool_refill.c */
/* Asks the carrier for more numbers like q's into the pool; false if the
 * carrier failed. */
bool pool_refill(ingress_t *in, vox_pg_t *pg, const struct search *q);
/* The carrier failed a refill lately: answers say X-Cache: stale. */
bool pool_refill_failed_lately(void);

#endif
