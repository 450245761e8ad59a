/*
 * Search answers cached in Redis (search.h). A value is
 * "<ms> {<e164>,...}\n<body>": when it was made (wall clock: other ingress
 * instances read it) and its numbers as a PostgreSQL array, so that a hit
 * rechecks them with one indexed query and drops those held or sold since,
 * without parsing the body unless some are gone. A long-lived stale copy
 * is what a search answers when the carrier is down and the pool is empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search.h"
#include "vox_crypto.h"
#include "vox_json.h"
#include "vox_redis.h"
#include "vox_time.h"

/* A cached search is refreshed (by one request) once this old, before
 * Redis drops it at SEARCH_CACHE_S. */
#define SEARCH_REFRESH_MS 7000

/* Wall clock: other instances read when a value was made. */
static long long wall_ms(void)
{
	return (long long)(vox_now_us() / 1000);
}

void search_cache_key(const struct search *q, bool stale, char *out,
                      size_t outlen)
{
	char text[512], digest[65];

	snprintf(text, sizeof(text), "%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%ld",
	         q->country, q->area_code ? q->area_code : "", q->contains,
	         q->starts, q->ends, q->city ? q->city : "",
	         q->region ? q->region : "", q->type ? q->type : "",
	         q->features, q->cursor ? q->cursor : "", q->limit);
	vox_sha256_hex(text, strlen(text), digest);
	/* v2: the value is "<ms> <numbers>\n<body>" (cache_value); the first
	 * 96 bits of the hash are plenty for a key */
	snprintf(out, outlen, "vox:search:v2:%s%.24s", stale ? "stale:" : "",
	         digest);
}

static char *cache_get(ingress_t *in, const char *key)
{
	vox_redis_t *r;
	redisReply *reply;
	vox_error_t err;
	char *text = NULL;

	if (!limiter_redis_usable(in->limiter) ||
	    (r = limiter_redis(in->limiter)) == NULL)
		return NULL;
	reply = vox_redis_command(r, &err, "GET %s", key);
	if (reply == NULL) {
		limiter_redis_failed(in->limiter);
		return NULL;
	}
	if (reply->type == REDIS_REPLY_STRING)
		text = strndup(reply->str, reply->len);
	freeReplyObject(reply);
	return text;
}

/* Sets key and stale_key to value and lets go of the lock if token holds
 * it, in one round trip. */
static const char store_script[] =
        "redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
        "redis.call('set', KEYS[2], ARGV[1], 'EX', ARGV[3]) "
        "if ARGV[4] ~= '' and redis.call('get', KEYS[3]) == ARGV[4] then "
        "redis.call('del', KEYS[3]) end return 1";

static void cache_put(ingress_t *in, const char *key, const char *stale_key,
                      const char *value, const char *token)
{
	char lkey[128];
	vox_redis_t *r;
	redisReply *reply;
	vox_error_t err;

	if (!limiter_redis_usable(in->limiter) ||
	    (r = limiter_redis(in->limiter)) == NULL)
		return;
	search_lock_key(key, lkey, sizeof(lkey));
	reply = vox_redis_command(r, &err, "EVAL %s 3 %s %s %s %s %d %d %s",
	                          store_script, key, stale_key, lkey, value,
	                          SEARCH_CACHE_S, SEARCH_STALE_S, token);
	if (reply == NULL)
		limiter_redis_failed(in->limiter);
	else
		freeReplyObject(reply);
}

/* The value cached for body (see the top of this file); NULL if out of
 * memory. */
static char *cache_value(const PGresult *res, int count, const char *body)
{
	size_t cap = 32 + strlen(body), len;
	char *value;

	for (int i = 0; i < count; i++)
		cap += (size_t)PQgetlength(res, i, 1) + 1;
	value = malloc(cap);
	if (value == NULL)
		return NULL;
	len = (size_t)snprintf(value, cap, "%lld {", wall_ms());
	for (int i = 0; i < count; i++) {
		size_t n = (size_t)PQgetlength(res, i, 1);

		if (i > 0)
			value[len++] = ',';
		memcpy(value + len, PQgetvalue(res, i, 1), n);
		len += n;
	}
	memcpy(value + len, "}\n", 2);
	len += 2;
	memcpy(value + len, body, strlen(body) + 1);
	return value;
}

/* Splits a cached value: *made (ms), the numbers (malloc'd) and *body
 * (inside value); NULL if it is not one. */
static char *cache_value_split(const char *value, long long *made,
                               const char **body)
{
	const char *list, *nl;
	char *end;

	*made = strtoll(value, &end, 10);
	if (end == value || *end != ' ' || end[1] != '{')
		return NULL;
	list = end + 1;
	nl = strchr(list, '\n');
	if (nl == NULL)
		return NULL;
	*body = nl + 1;
	return strndup(list, (size_t)(nl - list));
}

/* body without the numbers that are not in available (the recheck's
 * rows); NULL when unusable. */
static char *cache_filter(const char *body, const PGresult *available)
{
	json_t *doc = json_loads(body, 0, NULL), *data, *kept, *n;
	char *out = NULL;
	size_t i;

	data = json_object_get(doc, "data");
	if (!json_is_array(data))
		goto out;
	kept = json_array();
	json_array_foreach(data, i, n)
	{
		const char *e164 = vox_json_str(n, "phone_number");

		for (int r = 0; e164 && r < PQntuples(available); r++)
			if (strcmp(PQgetvalue(available, r, 0), e164) == 0) {
				json_array_append(kept, n);
				break;
			}
	}
	json_object_set_new(doc, "data", kept);
	out = vox_json_dump(doc);
out:
	json_decref(doc);
	return out;
}

/* The body of a cached value without the numbers held or sold since it was
 * cached (one indexed query; the JSON is parsed only when some are gone);
 * NULL when unusable. *old: the value is due for a refresh. */
static char *cache_hit(ingress_t *in, const char *value, bool *old)
{
	const char *body = NULL;
	char *list, *out = NULL;
	PGresult *res = NULL;
	long long made;
	vox_error_t err;
	int count = 0;
	vox_pg_t *pg;

	list = cache_value_split(value, &made, &body);
	if (list == NULL || strcmp(list, "{}") == 0)
		goto out;
	*old = wall_ms() - made >= SEARCH_REFRESH_MS;
	count = 1;
	for (const char *c = list; *c; c++)
		count += *c == ',';
	const char *params[] = {list};
	pg = vox_pg_pool_acquire(in->pg_pool, 1000, &err);
	if (pg == NULL)
		goto out;
	if (vox_pg_execp(pg, "ingress_search_recheck",
	                 "SELECT e164 FROM numbers WHERE e164 = "
	                 "ANY($1::text[]) AND status = 'available'",
	                 1, params, &res, &err) != 0)
		res = NULL;
	vox_pg_pool_release(in->pg_pool, pg);
	if (res == NULL)
		goto out;
	/* E.164s are unique: as many rows means none is gone. */
	out = PQntuples(res) == count ? strdup(body) : cache_filter(body, res);
	PQclear(res);
out:
	free(list);
	return out;
}

char *search_cache_value(ingress_t *in, const char *key, const char *value,
                         bool *old)
{
	char *text = cache_hit(in, value, old);

	if (text != NULL)
		search_memory_put(key, text);
	return text;
}

char *search_cache_lookup(ingress_t *in, const char *key, bool *old)
{
	char *value, *text;

	*old = false;
	if ((text = search_memory_get(key)) != NULL)
		return text; /* rechecked or made less than a second ago */
	if ((value = cache_get(in, key)) == NULL)
		return NULL;
	text = search_cache_value(in, key, value, old);
	free(value);
	return text;
}

char *search_cache_stale(ingress_t *in, const char *key)
{
	char *value = cache_get(in, key), *list, *text = NULL;
	const char *body;
	long long made;

	if (value == NULL)
		return NULL;
	list = cache_value_split(value, &made, &body);
	if (list != NULL)
		text = strdup(body);
	free(list);
	free(value);
	return text;
}

void search_cache_store(ingress_t *in, const char *key, const char *stale_key,
                        const PGresult *res, int count, const char *body,
                        char *token)
{
	char *value = cache_value(res, count, body);

	if (value == NULL)
		return;
	cache_put(in, key, stale_key, value, token);
	token[0] = '\0'; /* released with the store */
	free(value);
	search_memory_put(key, body);
}
