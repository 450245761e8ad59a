/*
 * GET /v1/available-numbers (docs/NUMBERS.md): the search arguments, the
 * query on the local pool of available numbers and the answer. A search is
 * served from the cache (search_cache.c) when it can; a miss is asked by
 * one thread at a time (search_flight.c); a short answer refills the pool
 * from the carrier first (pool_refill.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search.h"
#include "vox_json.h"
#include "vox_phone.h"
#include "vox_time.h"

/* How long a search that missed waits for the one already asking
 * PostgreSQL and the carrier (1.5 s timeout) before asking itself. */
#define SEARCH_FLIGHT_WAIT_MS 2000
/* How long a search that missed waits for another instance that is asking
 * (its Redis lock is taken) before asking PostgreSQL itself. */
#define SEARCH_REMOTE_WAIT_MS 1000

static const char *const number_columns =
        "id, e164, country, area_code, city, region, number_type, "
        "array_to_json(features)::text, setup_fee_micros, "
        "monthly_rate_micros, currency";

void search_features_text(unsigned bits, char out[SEARCH_FEATURES_LEN])
{
	static const char *const names[] = {"voice", "sms", "mms"};
	size_t n = 0;

	out[n++] = '{';
	for (unsigned i = 0; i < 3; i++) {
		size_t len = strlen(names[i]);

		if ((bits & (1u << i)) == 0)
			continue;
		if (n > 1)
			out[n++] = ',';
		memcpy(out + n, names[i], len);
		n += len;
	}
	out[n++] = '}';
	out[n] = '\0';
}

json_t *ingress_number_json(const PGresult *res, int i)
{
	json_t *n = json_pack(
	        "{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:o, s:{s:I, s:I, "
	        "s:s}}",
	        "id", PQgetvalue(res, i, 0), "phone_number",
	        PQgetvalue(res, i, 1), "country", PQgetvalue(res, i, 2),
	        "area_code",
	        PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3), "city",
	        PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4), "region",
	        PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5), "type",
	        PQgetvalue(res, i, 6), "features",
	        json_loads(PQgetvalue(res, i, 7), 0, NULL), "price",
	        "setup_micros",
	        (json_int_t)strtoll(PQgetvalue(res, i, 8), NULL, 10),
	        "monthly_micros",
	        (json_int_t)strtoll(PQgetvalue(res, i, 9), NULL, 10),
	        "currency", PQgetvalue(res, i, 10));

	return n;
}

/* Vanity letters to keypad digits, '*' to one-character wildcard. */
static bool pattern_digits(const char *in, char *out, size_t outlen)
{
	static const char keypad[] = "22233344455566677778889999";
	size_t n = 0;

	for (const char *c = in; *c; c++) {
		char d;

		if (n + 2 >= outlen)
			return false;
		if (isdigit((unsigned char)*c))
			d = *c;
		else if (isalpha((unsigned char)*c))
			d = keypad[toupper((unsigned char)*c) - 'A'];
		else if (*c == '*')
			d = '_';
		else
			return false;
		out[n++] = d;
	}
	out[n] = '\0';
	return n > 0;
}

static bool digits_only(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n > 0 && n <= max && strspn(s, "0123456789") == n;
}

static bool search_args(vox_http_req_t *req, struct search *q)
{
	const char *country = vox_http_query(req, "country");
	const char *v;
	char digits[32];

	memset(q, 0, sizeof(*q));
	if (country == NULL)
		return ingress_bad_param(req, "country",
		                         "required (ISO code, e.g. US)");
	if (strlen(country) != 2 || !vox_phone_region_supported(country))
		return ingress_bad_param(req, "country",
		                         "not a supported country code");
	q->country[0] = (char)toupper((unsigned char)country[0]);
	q->country[1] = (char)toupper((unsigned char)country[1]);
	q->area_code = vox_http_query(req, "area_code");
	if (q->area_code && !digits_only(q->area_code, 6))
		return ingress_bad_param(req, "area_code", "1 to 6 digits");
	if ((v = vox_http_query(req, "contains")) != NULL) {
		if (!pattern_digits(v, digits, 20))
			return ingress_bad_param(
			        req, "contains",
			        "digits, letters or * (one character)");
		snprintf(q->contains, sizeof(q->contains), "%%%s%%", digits);
		snprintf(q->raw_contains, sizeof(q->raw_contains), "%s", v);
	}
	if ((v = vox_http_query(req, "starts_with")) != NULL) {
		if (!digits_only(v, 15))
			return ingress_bad_param(req, "starts_with", "digits");
		snprintf(q->starts, sizeof(q->starts), "+%d%s%%",
		         vox_phone_country_code(q->country), v);
		snprintf(q->raw_starts, sizeof(q->raw_starts), "%s", v);
	}
	if ((v = vox_http_query(req, "ends_with")) != NULL) {
		if (!digits_only(v, 15))
			return ingress_bad_param(req, "ends_with", "digits");
		snprintf(q->ends, sizeof(q->ends), "%%%s", v);
		snprintf(q->raw_ends, sizeof(q->raw_ends), "%s", v);
	}
	q->city = vox_http_query(req, "city");
	q->region = vox_http_query(req, "region");
	q->type = vox_http_query(req, "type");
	if (q->type && strcmp(q->type, "local") != 0 &&
	    strcmp(q->type, "mobile") != 0 && strcmp(q->type, "toll_free") != 0)
		return ingress_bad_param(req, "type",
		                         "local, mobile or toll_free");
	snprintf(q->features, sizeof(q->features), "{}");
	if ((v = vox_http_query(req, "features")) != NULL && *v != '\0') {
		for (const char *f = v; *f;) {
			size_t len = strcspn(f, ",");

			if (len == 5 && strncmp(f, "voice", 5) == 0)
				q->feature_bits |= 1;
			else if (len == 3 && strncmp(f, "sms", 3) == 0)
				q->feature_bits |= 2;
			else if (len == 3 && strncmp(f, "mms", 3) == 0)
				q->feature_bits |= 4;
			else
				return ingress_bad_param(
				        req, "features",
				        "comma-separated voice, sms, mms");
			f += len + (f[len] == ',');
		}
		search_features_text(q->feature_bits, q->features);
	}
	q->limit = 20;
	if ((v = vox_http_query(req, "limit")) != NULL) {
		char *end;

		q->limit = strtol(v, &end, 10);
		if (*v == '\0' || *end != '\0' || q->limit < 1 ||
		    q->limit > 100)
			return ingress_bad_param(req, "limit",
			                         "an integer 1..100");
	}
	q->cursor = vox_http_query(req, "cursor");
	if (q->cursor && !vox_phone_is_e164(q->cursor))
		return ingress_bad_param(
		        req, "cursor",
		        "a next_cursor value from a previous page");
	return true;
}

/* An area code and contains with three digits in a row, nothing else:
 * the trigram index (migration 0036) answers it whatever the digits. */
static bool search_is_contains(const struct search *q)
{
	size_t run = 0, best = 0;

	if (q->area_code == NULL || q->contains[0] == '\0' || q->starts[0] ||
	    q->ends[0] || q->city || q->region || q->type || q->cursor)
		return false;
	for (const char *c = q->contains; *c; c++) {
		run = isdigit((unsigned char)*c) ? run + 1 : 0;
		if (run > best)
			best = run;
	}
	return best >= 3;
}

static int search_local(vox_pg_t *pg, const struct search *q, PGresult **res,
                        vox_error_t *err)
{
	char limit[24], sql[1024];

	snprintf(limit, sizeof(limit), "%ld", q->limit + 1);
	if (search_is_contains(q)) {
		/* The commonest cold search: a prepared statement of its
		 * own, so PostgreSQL plans it once per connection instead of
		 * every time (planning was about half its ~0.5 ms); every
		 * filter is an index condition, so the generic plan is the
		 * trigram index's too, never a walk of the area code. With
		 * fewer than three digits in a row it would have no trigram
		 * to look up: those take the statement below. */
		const char *params[] = {q->country, q->area_code, q->contains,
		                        q->features, limit};

		snprintf(sql, sizeof(sql),
		         "SELECT %s FROM numbers WHERE country = $1 AND status "
		         "= 'available' AND area_code = $2 AND e164 LIKE $3 "
		         "AND features @> $4::text[] ORDER BY e164 LIMIT "
		         "$5::int",
		         number_columns);
		return vox_pg_execp(pg, "ingress_search_contains", sql, 5,
		                    params, res, err);
	}
	const char *params[] = {q->country,
	                        q->area_code,
	                        q->contains[0] ? q->contains : NULL,
	                        q->starts[0] ? q->starts : NULL,
	                        q->ends[0] ? q->ends : NULL,
	                        q->city,
	                        q->region,
	                        q->type,
	                        q->features,
	                        q->cursor,
	                        limit};
	snprintf(sql, sizeof(sql),
	         "SELECT %s FROM numbers WHERE country = $1 AND status = "
	         "'available' AND ($2::text IS NULL OR area_code = $2) AND "
	         "($3::text IS NULL OR e164 LIKE $3) AND ($4::text IS NULL OR "
	         "e164 LIKE $4) AND ($5::text IS NULL OR e164 LIKE $5) AND "
	         "($6::text IS NULL OR lower(city) = lower($6)) AND ($7::text "
	         "IS NULL OR lower(region) = lower($7)) AND ($8::text IS NULL "
	         "OR number_type = $8) AND features @> $9::text[] AND "
	         "($10::text IS NULL OR e164 > $10) ORDER BY e164 LIMIT "
	         "$11::int",
	         number_columns);
	/* Unnamed statement: planned with the actual filters every time. A
	 * prepared one drifts to a generic plan (bench/numbers: ~460 ms). */
	return vox_pg_exec(pg, sql, 11, params, res, err);
}

static void search_answer(vox_http_req_t *req, const char *text,
                          const char *cache)
{
	vox_http_add_header(req, "X-Cache",
	                    pool_refill_failed_lately() ? "stale" : cache);
	vox_http_reply(req, 200, "application/json", text, strlen(text));
}

/* Searches PostgreSQL (refilled from the carrier when short), caches and
 * answers (releasing key's lock if token holds it: token is emptied then).
 * Returns the body answered (malloc'd) and its X-Cache in *label, or NULL
 * after an error answer. */
static char *search_fresh(ingress_req_t *ir, vox_http_req_t *req,
                          const struct search *q, const char *key,
                          const char *stale_key, char *token,
                          const char **label)
{
	char *text;
	bool carrier_ok = true;
	PGresult *res = NULL;
	vox_error_t err;
	json_t *data;
	vox_pg_t *pg;
	int n;

	pg = ingress_pg(ir->in, req);
	if (pg == NULL)
		return NULL;
	if (search_local(pg, q, &res, &err) == 0 &&
	    PQntuples(res) <= q->limit && q->cursor == NULL) {
		/* Short: ask the carrier for more, then look again. */
		carrier_ok = pool_refill(ir->in, pg, q);
		PQclear(res);
		res = NULL;
		if (search_local(pg, q, &res, &err) != 0)
			res = NULL;
	}
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (res == NULL) {
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
		return NULL;
	}
	n = PQntuples(res);
	if (!carrier_ok && n == 0 &&
	    (text = search_cache_stale(ir->in, stale_key)) != NULL) {
		/* The carrier is down and we have nothing fresh: the last
		 * answer, marked stale (the original design's fallback). */
		PQclear(res);
		*label = "stale";
		search_answer(req, text, *label);
		return text;
	}
	data = json_array();
	for (int i = 0; i < n && i < q->limit; i++)
		json_array_append_new(data, ingress_number_json(res, i));
	json_t *body = json_pack(
	        "{s:o, s:o}", "data", data, "next_cursor",
	        n > q->limit
	                ? json_string(PQgetvalue(res, (int)q->limit - 1, 1))
	                : json_null());
	text = vox_json_dump(body);
	json_decref(body);
	if (n > 0 && text != NULL)
		search_cache_store(ir->in, key, stale_key, res,
		                   n < q->limit ? n : (int)q->limit, text,
		                   token);
	PQclear(res);
	if (text == NULL) {
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		return NULL;
	}
	/* Without the carrier the local pool may be out of date: say so. */
	*label = carrier_ok ? "miss" : "stale";
	search_answer(req, text, *label);
	return text;
}

/* Takes key's lock, or finds key cached (the answer, rechecked), in one
 * round trip. */
static char *search_lock_or_cached(ingress_t *in, const char *key,
                                   enum search_lock *lock,
                                   char token[SEARCH_LOCK_TOKEN_LEN])
{
	char *value = NULL, *text = NULL;
	bool old;

	*lock = search_flight_lock(in, key, token, &value);
	if (*lock == SEARCH_LOCK_CACHED) {
		text = search_cache_value(in, key, value, &old);
		free(value);
		*lock = SEARCH_LOCK_NONE; /* if unusable: search on our own */
	}
	return text;
}

/* Another instance searches key (its lock is taken): waits for its answer
 * in Redis, taking the lock if it is let go without one. Returns the
 * answer (a hit), or NULL with *lock OURS (search) or NONE (waited
 * SEARCH_REMOTE_WAIT_MS in vain: search anyway, bounded rather than
 * stuck behind an instance that hangs). */
static char *search_wait_remote(ingress_t *in, const char *key,
                                enum search_lock *lock,
                                char token[SEARCH_LOCK_TOKEN_LEN])
{
	int64_t deadline = vox_mono_ms() + SEARCH_REMOTE_WAIT_MS;
	long pause_ms = 2;
	char *text;

	while (vox_mono_ms() < deadline) {
		vox_sleep_ms(pause_ms);
		text = search_lock_or_cached(in, key, lock, token);
		if (text != NULL || *lock != SEARCH_LOCK_THEIRS)
			return text;
		if (pause_ms < 20)
			pause_ms *= 2;
	}
	*lock = SEARCH_LOCK_NONE;
	return NULL;
}

void ingress_numbers_search(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	char key[96], stale_key[96], label[24], *text, *shared;
	char token[SEARCH_LOCK_TOKEN_LEN] = "";
	struct search_flight *flight = NULL;
	const char *fresh_label = "miss";
	enum search_lock lock;
	bool old = false;
	struct search q;

	if (ir == NULL || !search_args(req, &q))
		return;
	search_cache_key(&q, false, key, sizeof(key));
	search_cache_key(&q, true, stale_key, sizeof(stale_key));
	if ((text = search_cache_lookup(ir->in, key, &old)) != NULL) {
		/* Due for a refresh: one thread of one instance refreshes it,
		 * the others go on serving it until then (it is at most
		 * SEARCH_CACHE_S old: Redis drops it then), so a popular
		 * search never misses. */
		if (!old ||
		    (flight = search_flight_begin(key, 0, &shared, label,
		                                  sizeof(label))) == NULL) {
			search_answer(req, text, "hit");
			free(text);
			return;
		}
		lock = search_flight_lock(ir->in, key, token, NULL);
		if (lock == SEARCH_LOCK_THEIRS) {
			search_answer(req, text, "hit");
			search_flight_end(flight, text, "hit");
			free(text);
			return;
		}
		free(text);
	} else {
		flight = search_flight_begin(key, SEARCH_FLIGHT_WAIT_MS,
		                             &shared, label, sizeof(label));
		if (shared != NULL) {
			/* Another thread's answer of just now: as good as a
			 * hit (a miss of its own would say so). */
			if (strcmp(label, "miss") == 0)
				snprintf(label, sizeof(label), "hit");
			search_answer(req, shared, label);
			free(shared);
			return;
		}
		/* The previous leader (here or elsewhere) may have cached it
		 * since we looked: then a hit, else the lock. */
		text = search_lock_or_cached(ir->in, key, &lock, token);
		if (text == NULL && lock == SEARCH_LOCK_THEIRS)
			text = search_wait_remote(ir->in, key, &lock, token);
		if (text != NULL) {
			search_answer(req, text, "hit");
			search_flight_end(flight, text, "hit");
			free(text);
			return;
		}
	}
	text = search_fresh(ir, req, &q, key, stale_key, token, &fresh_label);
	if (lock == SEARCH_LOCK_OURS && token[0] != '\0')
		search_flight_unlock(ir->in, key, token); /* nothing stored */
	search_flight_end(flight, text, fresh_label);
	free(text);
}
