/*
 * The numbers API (docs/NUMBERS.md): search the available inventory
 * (synchronous, from PostgreSQL, refilled from the carrier when short,
 * cached briefly in Redis and served stale when the carrier is down), and
 * the lifecycle commands — reserve, extend, order, activate, deactivate,
 * release — which are checked here (404/409 with the current state) and
 * done by the provisioning worker, keyed by the E.164 number so commands on
 * one number stay in order.
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingress.h"
#include "vox_carrier.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_phone.h"
#include "vox_redis.h"

#define SEARCH_CACHE_S 10
#define SEARCH_STALE_S 3600
/* A cached search is refreshed (by one request) once this old, before
 * Redis drops it at SEARCH_CACHE_S. */
#define SEARCH_REFRESH_MS 7000
/* How long a search that missed waits for the one already asking
 * PostgreSQL and the carrier (1.5 s timeout) before asking itself. */
#define SEARCH_FLIGHT_WAIT_MS 2000
#define PROVISIONING          "vox.cmd.provisioning"

static const char *const number_columns =
        "id, e164, country, area_code, city, region, number_type, "
        "array_to_json(features)::text, setup_fee_micros, "
        "monthly_rate_micros, currency, status, vox_iso(purchased_at), "
        "vox_iso(activated_at)";

static json_t *number_row(const PGresult *res, int i, bool owned)
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

	if (owned) {
		json_object_set_new(n, "status",
		                    json_string(PQgetvalue(res, i, 11)));
		json_object_set_new(
		        n, "purchased_at",
		        PQgetisnull(res, i, 12)
		                ? json_null()
		                : json_string(PQgetvalue(res, i, 12)));
		json_object_set_new(
		        n, "activated_at",
		        PQgetisnull(res, i, 13)
		                ? json_null()
		                : json_string(PQgetvalue(res, i, 13)));
	}
	return n;
}

/* ---- search ---------------------------------------------------------- */

struct search {
	char country[3];
	const char *area_code, *city, *region, *type, *cursor;
	char contains[40], starts[40], ends[40]; /* LIKE patterns or "" */
	char features[40];                       /* "{voice,sms}" */
	unsigned feature_bits;
	long limit;
	char raw_contains[32], raw_starts[32], raw_ends[32];
};

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

static bool bad_param(vox_http_req_t *req, const char *name, const char *why)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "%s: %s", name, why);
	vox_http_reply_error(req, 400, "invalid_parameter", msg,
	                     json_pack("{s:s}", "parameter", name));
	return false;
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
		return bad_param(req, "country",
		                 "required (ISO code, e.g. US)");
	if (strlen(country) != 2 || !vox_phone_region_supported(country))
		return bad_param(req, "country",
		                 "not a supported country code");
	q->country[0] = (char)toupper((unsigned char)country[0]);
	q->country[1] = (char)toupper((unsigned char)country[1]);
	q->area_code = vox_http_query(req, "area_code");
	if (q->area_code && !digits_only(q->area_code, 6))
		return bad_param(req, "area_code", "1 to 6 digits");
	if ((v = vox_http_query(req, "contains")) != NULL) {
		if (!pattern_digits(v, digits, 20))
			return bad_param(
			        req, "contains",
			        "digits, letters or * (one character)");
		snprintf(q->contains, sizeof(q->contains), "%%%s%%", digits);
		snprintf(q->raw_contains, sizeof(q->raw_contains), "%s", v);
	}
	if ((v = vox_http_query(req, "starts_with")) != NULL) {
		if (!digits_only(v, 15))
			return bad_param(req, "starts_with", "digits");
		snprintf(q->starts, sizeof(q->starts), "+%d%s%%",
		         vox_phone_country_code(q->country), v);
		snprintf(q->raw_starts, sizeof(q->raw_starts), "%s", v);
	}
	if ((v = vox_http_query(req, "ends_with")) != NULL) {
		if (!digits_only(v, 15))
			return bad_param(req, "ends_with", "digits");
		snprintf(q->ends, sizeof(q->ends), "%%%s", v);
		snprintf(q->raw_ends, sizeof(q->raw_ends), "%s", v);
	}
	q->city = vox_http_query(req, "city");
	q->region = vox_http_query(req, "region");
	q->type = vox_http_query(req, "type");
	if (q->type && strcmp(q->type, "local") != 0 &&
	    strcmp(q->type, "mobile") != 0 && strcmp(q->type, "toll_free") != 0)
		return bad_param(req, "type", "local, mobile or toll_free");
	snprintf(q->features, sizeof(q->features), "{}");
	if ((v = vox_http_query(req, "features")) != NULL && *v != '\0') {
		size_t n = 1;

		for (const char *f = v; *f;) {
			size_t len = strcspn(f, ",");

			if (len == 5 && strncmp(f, "voice", 5) == 0)
				q->feature_bits |= 1;
			else if (len == 3 && strncmp(f, "sms", 3) == 0)
				q->feature_bits |= 2;
			else if (len == 3 && strncmp(f, "mms", 3) == 0)
				q->feature_bits |= 4;
			else
				return bad_param(
				        req, "features",
				        "comma-separated voice, sms, mms");
			f += len + (f[len] == ',');
		}
		q->features[0] = '{';
		if (q->feature_bits & 1)
			n += (size_t)snprintf(q->features + n, 40 - n,
			                      "voice,");
		if (q->feature_bits & 2)
			n += (size_t)snprintf(q->features + n, 40 - n, "sms,");
		if (q->feature_bits & 4)
			n += (size_t)snprintf(q->features + n, 40 - n, "mms,");
		q->features[n - 1] = '}';
		q->features[n] = '\0';
	}
	q->limit = 20;
	if ((v = vox_http_query(req, "limit")) != NULL) {
		char *end;

		q->limit = strtol(v, &end, 10);
		if (*v == '\0' || *end != '\0' || q->limit < 1 ||
		    q->limit > 100)
			return bad_param(req, "limit", "an integer 1..100");
	}
	q->cursor = vox_http_query(req, "cursor");
	if (q->cursor && !vox_phone_is_e164(q->cursor))
		return bad_param(req, "cursor",
		                 "a next_cursor value from a previous page");
	return true;
}

static int search_local(vox_pg_t *pg, const struct search *q, PGresult **res,
                        vox_error_t *err)
{
	char limit[24], sql[1024];

	snprintf(limit, sizeof(limit), "%ld", q->limit + 1);
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

/* Adds what the carrier offers to the local pool (never overwriting). */
static int inventory_add(vox_pg_t *pg, const vox_carrier_number_t *nums, int n,
                         vox_error_t *err)
{
	int rc = 0;

	for (int i = 0; i < n && rc == 0; i++) {
		char setup[24], monthly[24], features[40];
		vox_phone_t p;
		size_t f = 1;

		if (vox_phone_parse(nums[i].e164, NULL, &p, NULL) != 0)
			continue; /* the carrier offered something invalid */
		snprintf(setup, sizeof(setup), "%lld", nums[i].upfront_micros);
		snprintf(monthly, sizeof(monthly), "%lld",
		         nums[i].monthly_micros);
		features[0] = '{';
		if (nums[i].features & 1)
			f += (size_t)snprintf(features + f, 40 - f, "voice,");
		if (nums[i].features & 2)
			f += (size_t)snprintf(features + f, 40 - f, "sms,");
		if (nums[i].features & 4)
			f += (size_t)snprintf(features + f, 40 - f, "mms,");
		if (f == 1)
			f += (size_t)snprintf(features + f, 40 - f, "voice,");
		features[f - 1] = '}';
		features[f] = '\0';
		const char *params[] = {
		        nums[i].e164,
		        p.region,
		        p.area_code[0] ? p.area_code : NULL,
		        nums[i].city[0] ? nums[i].city : NULL,
		        nums[i].state[0] ? nums[i].state : NULL,
		        strcmp(nums[i].type, "mobile") == 0      ? "mobile"
		        : strcmp(nums[i].type, "toll_free") == 0 ? "toll_free"
		                                                 : "local",
		        features,
		        setup,
		        monthly,
		        nums[i].currency[0] ? nums[i].currency : "USD"};
		rc = vox_pg_execp(
		        pg, "ingress_inventory_add",
		        "INSERT INTO numbers (e164, country, area_code, city, "
		        "region, number_type, features, setup_fee_micros, "
		        "monthly_rate_micros, currency, carrier) VALUES ($1, "
		        "$2, "
		        "$3, $4, $5, $6, $7::text[], $8::bigint, $9::bigint, "
		        "$10, "
		        "'sandbox') ON CONFLICT DO NOTHING",
		        10, params, NULL, err);
	}
	return rc;
}

/* When a refill last failed (ms, monotonic; 0: the carrier answered since).
 * For a while after, every search answer says X-Cache: stale: the pool
 * cannot be checked against the carrier. */
static atomic_long carrier_failed_ms;
#define CARRIER_STALE_MS 15000

static long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static bool carrier_recently_failed(void)
{
	long failed = atomic_load(&carrier_failed_ms);

	return failed != 0 && mono_ms() - failed < CARRIER_STALE_MS;
}

static pthread_key_t carrier_key;
static pthread_once_t carrier_once = PTHREAD_ONCE_INIT;

static void carrier_free(void *c)
{
	vox_carrier_destroy(c);
}

static void carrier_key_make(void)
{
	pthread_key_create(&carrier_key, carrier_free);
}

/* This server thread's carrier client. */
static vox_carrier_t *ingress_carrier(ingress_t *in)
{
	vox_carrier_t *c;

	pthread_once(&carrier_once, carrier_key_make);
	c = pthread_getspecific(carrier_key);
	if (c == NULL) {
		vox_carrier_conf_t conf = {0};
		vox_error_t err;

		conf.base_url = in->cfg->carrier_url;
		conf.api_key = in->cfg->carrier_key;
		conf.timeout_ms =
		        1500; /* a search waits for this, keep short */
		conf.max_attempts = 1;
		c = vox_carrier_new(&conf, &err);
		if (c != NULL)
			pthread_setspecific(carrier_key, c);
	}
	return c;
}

/* Asks the carrier for more numbers like these; false if it failed. */
static bool search_refill(ingress_t *in, vox_pg_t *pg, const struct search *q)
{
	vox_carrier_number_t found[100];
	vox_carrier_query_t cq = {0};
	vox_carrier_t *carrier = ingress_carrier(in);
	vox_error_t err;
	int count = 0;

	if (carrier == NULL)
		return false;
	cq.country = q->country;
	cq.area_code = q->area_code;
	cq.contains = q->raw_contains[0] ? q->raw_contains : NULL;
	char starts[40];

	snprintf(starts, sizeof(starts), "+%d%s",
	         vox_phone_country_code(q->country), q->raw_starts);
	cq.starts_with = q->raw_starts[0] ? starts : NULL;
	cq.ends_with = q->raw_ends[0] ? q->raw_ends : NULL;
	cq.city = q->city;
	cq.region = q->region;
	cq.type = q->type;
	cq.features = q->feature_bits;
	cq.limit = 100;
	if (vox_carrier_search(carrier, &cq, found, 100, &count, &err) != 0) {
		vox_log(VOX_LOG_WARN, "carrier search failed", "error",
		        err.message, NULL);
		atomic_store(&carrier_failed_ms, mono_ms());
		return false;
	}
	atomic_store(&carrier_failed_ms, 0);
	if (inventory_add(pg, found, count, &err) != 0)
		vox_log(VOX_LOG_WARN, "inventory refill not stored", "error",
		        err.message, NULL);
	return true;
}

static void cache_key(vox_http_req_t *req, const struct search *q, char *out,
                      size_t outlen, bool stale)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	char text[512];

	snprintf(text, sizeof(text), "%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%ld",
	         q->country, q->area_code ? q->area_code : "", q->contains,
	         q->starts, q->ends, q->city ? q->city : "",
	         q->region ? q->region : "", q->type ? q->type : "",
	         q->features, q->cursor ? q->cursor : "", q->limit);
	(void)req;
	EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
	/* v2: the value is "<ms> <numbers>\n<body>" (cache_value) */
	snprintf(out, outlen, "vox:search:v2:%s", stale ? "stale:" : "");
	for (unsigned int i = 0; i < 12; i++)
		snprintf(out + strlen(out), outlen - strlen(out), "%02x",
		         md[i]);
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

static void cache_put(ingress_t *in, const char *key, const char *text,
                      int ttl_s)
{
	vox_redis_t *r;
	redisReply *reply;
	vox_error_t err;

	if (!limiter_redis_usable(in->limiter) ||
	    (r = limiter_redis(in->limiter)) == NULL)
		return;
	reply = vox_redis_command(r, &err, "SET %s %s EX %d", key, text, ttl_s);
	if (reply == NULL)
		limiter_redis_failed(in->limiter);
	else
		freeReplyObject(reply);
}

static long long wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000L;
}

/* What is cached for an answer: "<ms> {<e164>,...}\n<body>", when it was
 * made (wall clock: other ingress instances read it) and its numbers as a
 * PostgreSQL array, so that a hit rechecks them without parsing the body.
 * NULL if out of memory. */
static char *cache_value(const PGresult *res, int count, const char *body)
{
	size_t cap = (size_t)count * 26 + strlen(body) + 48, len;
	char *value = malloc(cap);

	if (value == NULL)
		return NULL;
	len = (size_t)snprintf(value, cap, "%lld {", wall_ms());
	for (int i = 0; i < count; i++)
		len += (size_t)snprintf(value + len, cap - len, "%s%s",
		                        i ? "," : "", PQgetvalue(res, i, 1));
	snprintf(value + len, cap - len, "}\n%s", body);
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

/* The cached answer to key, rechecked (cache_hit); NULL if none. */
static char *cache_lookup(ingress_t *in, const char *key, bool *old)
{
	char *value = cache_get(in, key), *text;

	if (value == NULL)
		return NULL;
	text = cache_hit(in, value, old);
	free(value);
	return text;
}

/* Single flight: when a search is not cached (or due for a refresh), one
 * thread of this process asks PostgreSQL (and the carrier) for it; the
 * others that miss meanwhile wait for its answer instead of all running
 * the same search (bench/numbers: an expiry turned into a burst of
 * misses that backed up the HTTP threads for seconds). */
struct flight {
	char key[96];
	pthread_cond_t done_cond;
	int waiters;
	bool done;
	char *body; /* the leader's answer, NULL if it had none */
	char label[24];
	struct flight *next;
};

static pthread_mutex_t flights_lock = PTHREAD_MUTEX_INITIALIZER;
static struct flight *flights; /* those under way */

static void flight_free(struct flight *f)
{
	pthread_cond_destroy(&f->done_cond);
	free(f->body);
	free(f);
}

static struct flight *flight_new(const char *key)
{
	struct flight *f = calloc(1, sizeof(*f));
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
static char *flight_wait(struct flight *f, int wait_ms, char *label,
                         size_t label_len)
{
	struct timespec until;
	char *body = NULL;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
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

/* Leads the flight of key: returns it, to end with flight_end. NULL when
 * another thread leads it; then, with wait_ms > 0, *shared gets a copy of
 * its answer (NULL if it had none within wait_ms). */
static struct flight *flight_begin(const char *key, int wait_ms, char **shared,
                                   char *label, size_t label_len)
{
	struct flight *f;

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

/* Ends a flight this thread leads, handing its answer (body, may be NULL)
 * to the threads waiting for it. */
static void flight_end(struct flight *f, const char *body, const char *label)
{
	struct flight **at;

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

static void search_answer(vox_http_req_t *req, const char *text,
                          const char *cache)
{
	vox_http_add_header(req, "X-Cache",
	                    carrier_recently_failed() ? "stale" : cache);
	vox_http_reply(req, 200, "application/json", text, strlen(text));
}

/* Searches PostgreSQL (refilled from the carrier when short), caches and
 * answers. Returns the body answered (malloc'd) and its X-Cache in *label,
 * or NULL after an error answer. */
static char *search_fresh(ingress_req_t *ir, vox_http_req_t *req,
                          const struct search *q, const char *key,
                          const char *stale_key, const char **label)
{
	char *text, *value;
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
		carrier_ok = search_refill(ir->in, pg, q);
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
	    (value = cache_get(ir->in, stale_key)) != NULL) {
		/* The carrier is down and we have nothing fresh: the last
		 * answer, marked stale (the original design's fallback). */
		const char *body;
		long long made;
		char *list = cache_value_split(value, &made, &body);

		text = list ? strdup(body) : NULL;
		free(list);
		free(value);
		if (text != NULL) {
			PQclear(res);
			*label = "stale";
			search_answer(req, text, *label);
			return text;
		}
	}
	data = json_array();
	for (int i = 0; i < n && i < q->limit; i++)
		json_array_append_new(data, number_row(res, i, false));
	json_t *body = json_pack(
	        "{s:o, s:o}", "data", data, "next_cursor",
	        n > q->limit
	                ? json_string(PQgetvalue(res, (int)q->limit - 1, 1))
	                : json_null());
	text = vox_json_dump(body);
	json_decref(body);
	value = NULL;
	if (n > 0 && text != NULL)
		value = cache_value(res, n < q->limit ? n : (int)q->limit,
		                    text);
	PQclear(res);
	if (text == NULL) {
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		return NULL;
	}
	if (value != NULL) {
		cache_put(ir->in, key, value, SEARCH_CACHE_S);
		cache_put(ir->in, stale_key, value, SEARCH_STALE_S);
		free(value);
	}
	/* Without the carrier the local pool may be out of date: say so. */
	*label = carrier_ok ? "miss" : "stale";
	search_answer(req, text, *label);
	return text;
}

void ingress_numbers_search(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	char key[96], stale_key[96], label[24], *text, *shared;
	struct flight *flight = NULL;
	const char *fresh_label = "miss";
	bool old = false;
	struct search q;

	if (ir == NULL || !search_args(req, &q))
		return;
	cache_key(req, &q, key, sizeof(key), false);
	cache_key(req, &q, stale_key, sizeof(stale_key), true);
	if ((text = cache_lookup(ir->in, key, &old)) != NULL) {
		/* Due for a refresh: one thread refreshes it, the others go
		 * on serving it until then (it is at most SEARCH_CACHE_S old:
		 * Redis drops it then), so a popular search never misses. */
		if (!old || (flight = flight_begin(key, 0, &shared, label,
		                                   sizeof(label))) == NULL) {
			search_answer(req, text, "hit");
			free(text);
			return;
		}
		free(text);
	}
	if (flight == NULL) {
		flight = flight_begin(key, SEARCH_FLIGHT_WAIT_MS, &shared,
		                      label, sizeof(label));
		if (shared != NULL) {
			/* Another thread's answer of just now: as good as a
			 * hit (a miss of its own would say so). */
			if (strcmp(label, "miss") == 0)
				snprintf(label, sizeof(label), "hit");
			search_answer(req, shared, label);
			free(shared);
			return;
		}
		/* The previous leader may have cached it since we looked. */
		if (flight != NULL &&
		    (text = cache_lookup(ir->in, key, &old)) != NULL) {
			search_answer(req, text, "hit");
			flight_end(flight, text, "hit");
			free(text);
			return;
		}
	}
	text = search_fresh(ir, req, &q, key, stale_key, &fresh_label);
	flight_end(flight, text, fresh_label);
	free(text);
}
