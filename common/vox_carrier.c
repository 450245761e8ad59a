/*
 * vox_carrier: the carrier adapter over libcurl (see vox_carrier.h for the
 * retry, error and breaker rules).
 *
 * A call is: breaker admission, then up to max_attempts exchanges on the
 * handle's one easy handle (curl_easy_reset between attempts keeps the
 * live connection), then the breaker told whether the carrier answered.
 * Answers are parsed with vox_json and copied into the caller's fixed
 * structs; anything that does not fit is cut at a UTF-8 boundary (names)
 * or refused (numbers, ids, money).
 */
#include "vox_carrier.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "vox_json.h"
#include "vox_log.h"

#define MAX_BODY       (4 << 20) /* bytes of an answer we read */
#define MAX_VALUE      64        /* bytes of a search filter value */
#define MAX_KEY        255       /* bytes of an idempotency key */
#define MAX_BACKOFF_MS 5000
#define MAX_ATTEMPTS   10
#define MAX_LIMIT      250  /* most numbers a search answers */
#define CONNECT_MS     1000 /* of timeout_ms, at most, to connect */
#define POLL_MAX_MS    2000 /* longest pause between pending order polls */

struct vox_carrier {
	char *base_url;    /* without a trailing '/' */
	char *auth_header; /* "Authorization: Bearer <key>" */
	int timeout_ms, max_attempts, backoff_ms;
	int breaker_failures, breaker_cooldown_ms;
	int order_wait_ms;
	vox_metrics_t *metrics;     /* borrowed, may be NULL */
	vox_gauge_t *breaker_gauge; /* NULL without metrics */
	CURL *curl;
	char curl_error[CURL_ERROR_SIZE];
	uint64_t rng;         /* xorshift64* state for the jitter */
	_Atomic int state;    /* vox_carrier_breaker_t */
	_Atomic int failures; /* consecutive calls that failed */
	_Atomic long long opened_ms;
};

/* One call as the retry loop sees it. */
struct request {
	const char *endpoint; /* "search", "order"...: logs and metrics */
	const char *method;
	char *url;                   /* owned */
	char *body;                  /* owned; NULL: none */
	const char *idempotency_key; /* NULL: none */
	/* a 404 after an attempt that may have landed means done (DELETE) */
	bool gone_is_done;
};

/* What an order answer says beyond the per-number results. */
struct order_status {
	char id[64];  /* the order's id, "" if none */
	bool pending; /* the carrier has not finished it */
};

struct response {
	long status; /* 0: no answer */
	char *body;  /* NUL-terminated when not NULL */
	size_t len;
	long retry_after_s; /* a 429's Retry-After, 0 if none */
	bool too_big;
};

typedef enum attempt_outcome {
	ATTEMPT_ANSWER, /* the carrier answered: 2xx, or a final 4xx */
	ATTEMPT_RETRY,  /* may pass: no connection, timeout, 408/429/5xx */
	ATTEMPT_LOCAL,  /* our side failed: memory, URL; not retried */
} attempt_outcome_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static uint64_t next_random(vox_carrier_t *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 0x2545F4914F6CDD1DULL;
}

/* Copies src when it fits in dst[size]. */
static bool copy_fits(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);

	if (len >= size)
		return false;
	memcpy(dst, src, len + 1);
	return true;
}

/* Copies src cut to size-1 bytes without splitting a UTF-8 sequence. */
static void copy_cut(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);

	if (len >= size) {
		len = size - 1;
		while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
			len--;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* "+" and 2 to 15 digits, the first not 0. */
static bool e164_shape(const char *text)
{
	size_t len;

	if (text == NULL || text[0] != '+' || text[1] < '1' || text[1] > '9')
		return false;
	len = strlen(text);
	if (len < 3 || len > 16)
		return false;
	for (size_t i = 1; i < len; i++)
		if (text[i] < '0' || text[i] > '9')
			return false;
	return true;
}

/* Nothing that could end or split a header line. */
static bool header_safe(const char *text, size_t max)
{
	size_t len = strnlen(text, max + 1);

	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
			return false;
	return true;
}

/* ---- metrics and logs ---- */

static void count_call(vox_carrier_t *c, const char *endpoint,
                       const char *outcome)
{
	char labels[96];

	if (c->metrics == NULL)
		return;
	snprintf(labels, sizeof(labels), "endpoint=\"%s\",outcome=\"%s\"",
	         endpoint, outcome);
	vox_counter_inc(
	        vox_metrics_counter(c->metrics, "vox_carrier_calls_total",
	                            "Carrier calls by outcome", labels));
}

static void count_retry(vox_carrier_t *c, const char *endpoint)
{
	char labels[64];

	if (c->metrics == NULL)
		return;
	snprintf(labels, sizeof(labels), "endpoint=\"%s\"", endpoint);
	vox_counter_inc(vox_metrics_counter(
	        c->metrics, "vox_carrier_retries_total",
	        "Carrier attempts that failed and were tried again", labels));
}

static void observe_call(vox_carrier_t *c, const char *endpoint,
                         long long started_ms)
{
	char labels[64];

	if (c->metrics == NULL)
		return;
	snprintf(labels, sizeof(labels), "endpoint=\"%s\"", endpoint);
	vox_histogram_observe(
	        vox_metrics_histogram(c->metrics, "vox_carrier_call_seconds",
	                              "Carrier call time, retries included",
	                              labels, NULL, 0),
	        (double)(now_ms() - started_ms) / 1000.0);
}

static void log_retry(const struct request *req, int attempt, long status,
                      long delay_ms, const vox_error_t *last)
{
	char attempt_s[16], status_s[16], delay_s[24];

	snprintf(attempt_s, sizeof(attempt_s), "%d", attempt);
	snprintf(status_s, sizeof(status_s), "%ld", status);
	snprintf(delay_s, sizeof(delay_s), "%ld", delay_ms);
	vox_log(VOX_LOG_WARN, "carrier call failed, retrying", "endpoint",
	        req->endpoint, "attempt", attempt_s, "status", status_s,
	        "error", last->message, "delay_ms", delay_s, NULL);
}

/* ---- circuit breaker ---- */

static void breaker_set(vox_carrier_t *c, vox_carrier_breaker_t state)
{
	atomic_store(&c->state, (int)state);
	if (c->breaker_gauge != NULL)
		vox_gauge_set(c->breaker_gauge, (double)state);
}

/* 0 when a call may go out; *trial when it is the half-open trial. */
static int breaker_admit(vox_carrier_t *c, bool *trial, vox_error_t *err)
{
	int state = atomic_load(&c->state);
	int expected = VOX_CARRIER_OPEN;

	*trial = false;
	if (state == VOX_CARRIER_CLOSED)
		return 0;
	if (state == VOX_CARRIER_OPEN &&
	    now_ms() - atomic_load(&c->opened_ms) >= c->breaker_cooldown_ms &&
	    atomic_compare_exchange_strong(&c->state, &expected,
	                                   VOX_CARRIER_HALF_OPEN)) {
		breaker_set(c, VOX_CARRIER_HALF_OPEN);
		vox_log(VOX_LOG_INFO, "carrier circuit half-open: trial call",
		        NULL);
		*trial = true;
		return 0;
	}
	return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
	                     "carrier circuit open");
}

static void breaker_record(vox_carrier_t *c, bool trial, bool carrier_up)
{
	char failures[16];
	int failed;

	if (carrier_up) {
		atomic_store(&c->failures, 0);
		if (atomic_load(&c->state) != VOX_CARRIER_CLOSED) {
			breaker_set(c, VOX_CARRIER_CLOSED);
			vox_log(VOX_LOG_INFO, "carrier circuit closed", NULL);
		}
		return;
	}
	failed = atomic_fetch_add(&c->failures, 1) + 1;
	if (!trial && failed < c->breaker_failures)
		return;
	atomic_store(&c->opened_ms, now_ms());
	breaker_set(c, VOX_CARRIER_OPEN);
	snprintf(failures, sizeof(failures), "%d", failed);
	vox_log(VOX_LOG_WARN, "carrier circuit opened", "failed_calls",
	        failures, "trial", trial ? "true" : "false", NULL);
}

vox_carrier_breaker_t vox_carrier_breaker_state(const vox_carrier_t *c)
{
	return (vox_carrier_breaker_t)atomic_load(&c->state);
}

/* ---- one HTTP exchange ---- */

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
	struct response *resp = arg;
	size_t n = size * nmemb;
	char *grown;

	if (resp->len + n > MAX_BODY) {
		resp->too_big = true;
		return 0;
	}
	grown = realloc(resp->body, resp->len + n + 1);
	if (grown == NULL)
		return 0;
	memcpy(grown + resp->len, data, n);
	resp->body = grown;
	resp->len += n;
	resp->body[resp->len] = '\0';
	return n;
}

static void response_reset(struct response *resp)
{
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

static attempt_outcome_t transport_error(vox_carrier_t *c, CURLcode rc,
                                         const struct response *resp,
                                         vox_error_t *err)
{
	const char *why = c->curl_error[0] != '\0' ? c->curl_error
	                                           : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		vox_error_set(err, VOX_ERR_TIMEOUT, true,
		              "no answer within %d ms", c->timeout_ms);
		return ATTEMPT_RETRY;
	case CURLE_WRITE_ERROR:
		if (resp->too_big)
			vox_error_set(err, VOX_ERR_LIMIT, false,
			              "answer larger than %d bytes", MAX_BODY);
		else
			vox_error_set(err, VOX_ERR_NOMEM, true,
			              "no memory for the answer");
		return ATTEMPT_LOCAL;
	case CURLE_OUT_OF_MEMORY:
		vox_error_set(err, VOX_ERR_NOMEM, true, "%s", why);
		return ATTEMPT_LOCAL;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_NOT_BUILT_IN:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		vox_error_set(err, VOX_ERR_INTERNAL, false, "bad URL: %s", why);
		return ATTEMPT_LOCAL;
	default:
		vox_error_set(err, VOX_ERR_UNAVAILABLE, true, "unreachable: %s",
		              why);
		return ATTEMPT_RETRY;
	}
}

static bool status_retriable(long status)
{
	return status == 408 || status == 429 || status >= 500;
}

static attempt_outcome_t attempt(vox_carrier_t *c, const struct request *req,
                                 struct curl_slist *headers,
                                 struct response *resp, vox_error_t *err)
{
	CURL *curl = c->curl;
	curl_off_t retry_after = 0;
	CURLcode rc;

	response_reset(resp);
	c->curl_error[0] = '\0';
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, req->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(c->timeout_ms < CONNECT_MS ? c->timeout_ms
	                                                   : CONNECT_MS));
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, c->curl_error);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "voxlink");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
	if (strcmp(req->method, "GET") != 0)
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
	if (req->body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE,
		                 (long)strlen(req->body));
	}
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK)
		return transport_error(c, rc, resp, err);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
	if (resp->status >= 200 && resp->status < 300)
		return ATTEMPT_ANSWER;
	vox_carrier_http_error(resp->status, resp->body, resp->len, err);
	if (!status_retriable(resp->status))
		return ATTEMPT_ANSWER;
	/* RFC 9110 gives Retry-After to 503 as well as 429 */
	if ((resp->status == 429 || resp->status == 503) &&
	    curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &retry_after) ==
	            CURLE_OK &&
	    retry_after > 0)
		resp->retry_after_s = retry_after > LONG_MAX / 1000
		                              ? LONG_MAX / 1000
		                              : (long)retry_after;
	return ATTEMPT_RETRY;
}

/* Delay before attempt n+1, or -1 when a Retry-After is beyond the cap. */
static long retry_delay(vox_carrier_t *c, int n, const struct response *resp)
{
	long cap = c->backoff_ms;

	if (resp->retry_after_s > 0) {
		if (resp->retry_after_s > VOX_CARRIER_RETRY_AFTER_MAX_MS / 1000)
			return -1;
		return resp->retry_after_s * 1000;
	}
	for (int i = 1; i < n && cap < MAX_BACKOFF_MS; i++)
		cap *= 2;
	if (cap > MAX_BACKOFF_MS)
		cap = MAX_BACKOFF_MS;
	return (long)(next_random(c) % (uint64_t)(cap + 1));
}

static struct curl_slist *request_headers(vox_carrier_t *c,
                                          const struct request *req)
{
	struct curl_slist *list = NULL, *grown;
	char key_header[MAX_KEY + 32];
	const char *lines[5];
	int n = 0;

	lines[n++] = c->auth_header;
	lines[n++] = "Accept: application/json";
	/* no "Expect: 100-continue" round trip */
	lines[n++] = "Expect:";
	if (req->body != NULL)
		lines[n++] = "Content-Type: application/json";
	if (req->idempotency_key != NULL) {
		snprintf(key_header, sizeof(key_header), "Idempotency-Key: %s",
		         req->idempotency_key);
		lines[n++] = key_header;
	}
	for (int i = 0; i < n; i++) {
		grown = curl_slist_append(list, lines[i]);
		if (grown == NULL) {
			curl_slist_free_all(list);
			return NULL;
		}
		list = grown;
	}
	return list;
}

/* The last attempt's error, with the endpoint and how many attempts ran
 * (or the Retry-After that stopped them); fatal is kept. */
static int call_failed(vox_error_t *err, const vox_error_t *last,
                       const char *endpoint, int attempts, long retry_after_s)
{
	if (retry_after_s > VOX_CARRIER_RETRY_AFTER_MAX_MS / 1000)
		vox_error_set(err, last->code, last->retriable,
		              "carrier %s: %s; it asks to wait %ld s", endpoint,
		              last->message, retry_after_s);
	else if (attempts > 1)
		vox_error_set(err, last->code, last->retriable,
		              "carrier %s: %s (%d attempts)", endpoint,
		              last->message, attempts);
	else
		vox_error_set(err, last->code, last->retriable,
		              "carrier %s: %s", endpoint, last->message);
	if (err != NULL)
		err->fatal = last->fatal;
	return last->code;
}

/*
 * The retry loop. On 0, resp holds a 2xx answer; otherwise err says why
 * (retriable after the attempts ran out, not retriable for a 4xx).
 */
static int call(vox_carrier_t *c, const struct request *req,
                struct response *resp, vox_error_t *err)
{
	long long started = now_ms();
	attempt_outcome_t outcome;
	struct curl_slist *headers;
	vox_error_t last;
	int attempts, n;
	bool trial;
	long delay;

	if (breaker_admit(c, &trial, err) != 0) {
		count_call(c, req->endpoint, "circuit_open");
		return VOX_ERR_UNAVAILABLE;
	}
	headers = request_headers(c, req);
	if (headers == NULL) {
		if (trial) /* never leave the breaker half-open */
			breaker_record(c, true, false);
		return vox_error_set(err, VOX_ERR_NOMEM, true,
		                     "carrier: no memory for headers");
	}
	vox_error_clear(&last);
	attempts = trial ? 1 : c->max_attempts;
	for (n = 1;; n++) {
		outcome = attempt(c, req, headers, resp, &last);
		if (outcome != ATTEMPT_RETRY || n >= attempts)
			break;
		delay = retry_delay(c, n, resp);
		if (delay < 0)
			break;
		log_retry(req, n, resp->status, delay, &last);
		count_retry(c, req->endpoint);
		sleep_ms(delay);
	}
	curl_slist_free_all(headers);
	observe_call(c, req->endpoint, started);
	if (outcome == ATTEMPT_ANSWER || outcome == ATTEMPT_RETRY)
		breaker_record(c, trial, outcome == ATTEMPT_ANSWER);
	else if (trial)
		breaker_record(c, true, false);
	if (outcome == ATTEMPT_ANSWER &&
	    (resp->status < 300 ||
	     (resp->status == 404 && req->gone_is_done && n > 1))) {
		count_call(c, req->endpoint, "ok");
		return 0;
	}
	count_call(c, req->endpoint,
	           outcome == ATTEMPT_ANSWER ? "rejected" : "failed");
	return call_failed(err, &last, req->endpoint, n, resp->retry_after_s);
}

/* Runs req and frees what it owns; on 0 the caller frees resp->body. */
static int run(vox_carrier_t *c, struct request *req, struct response *resp,
               vox_error_t *err)
{
	int rc;

	memset(resp, 0, sizeof(*resp));
	if (req->url == NULL)
		rc = vox_error_set(err, VOX_ERR_NOMEM, true,
		                   "carrier %s: no memory", req->endpoint);
	else
		rc = call(c, req, resp, err);
	free(req->url);
	free(req->body);
	if (rc != 0)
		response_reset(resp);
	return rc;
}

/* ---- errors and answers ---- */

static int unreadable(vox_error_t *err, const char *what, const char *why)
{
	return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
	                     "carrier %s answer unreadable: %s", what, why);
}

/* "detail (code X)" from the first of an "errors" array, or "". */
static void errors_text(const json_t *errors, char *out, size_t size)
{
	const json_t *first = json_array_get(errors, 0);
	const char *text = vox_json_str(first, "detail");
	const char *code = vox_json_str(first, "code");

	if (text == NULL || text[0] == '\0')
		text = vox_json_str(first, "title");
	if (text == NULL)
		text = "";
	if (code != NULL && code[0] != '\0')
		snprintf(out, size, "%s%scode %s", text,
		         text[0] != '\0' ? ", " : "", code);
	else
		snprintf(out, size, "%s", text);
}

int vox_carrier_http_error(long status, const char *body, size_t len,
                           vox_error_t *err)
{
	json_t *root = NULL;
	char reason[200] = "";
	const char *sep;

	if (body != NULL && len > 0)
		root = vox_json_parse(body, len, VOX_JSON_DEFAULT_DEPTH, NULL);
	errors_text(json_object_get(root, "errors"), reason, sizeof(reason));
	json_decref(root);
	sep = reason[0] != '\0' ? ": " : "";
	if (status == 401 || status == 403)
		return vox_error_fatal(err, VOX_ERR_INTERNAL,
		                       "refused our API key (HTTP %ld)%s%s",
		                       status, sep, reason);
	if (status == 404)
		return vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                     "not found (HTTP 404)%s%s", sep, reason);
	if (status == 409)
		return vox_error_set(err, VOX_ERR_CONFLICT, false,
		                     "conflict (HTTP 409)%s%s", sep, reason);
	if (status == 429)
		return vox_error_set(err, VOX_ERR_LIMIT, true,
		                     "rate limited (HTTP 429)%s%s", sep,
		                     reason);
	if (status == 408 || status >= 500)
		return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                     "failed (HTTP %ld)%s%s", status, sep,
		                     reason);
	if (status >= 400)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "refused the request (HTTP %ld)%s%s",
		                     status, sep, reason);
	return vox_error_set(err, VOX_ERR_INTERNAL, false,
	                     "unexpected HTTP %ld (check VOX_CARRIER_URL)",
	                     status);
}

int vox_carrier_money_parse(const char *text, long long *micros)
{
	const long long max_whole = LLONG_MAX / 1000000 - 1;
	long long whole = 0, frac = 0;
	int whole_digits = 0, frac_digits = 0;
	bool negative = false;
	const char *p = text;

	if (p == NULL || micros == NULL)
		return VOX_ERR_INVALID;
	if (*p == '-') {
		negative = true;
		p++;
	}
	for (; *p >= '0' && *p <= '9'; p++, whole_digits++) {
		whole = whole * 10 + (*p - '0');
		if (whole > max_whole)
			return VOX_ERR_INVALID;
	}
	if (whole_digits == 0)
		return VOX_ERR_INVALID;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, frac_digits++) {
			if (frac_digits < 6)
				frac = frac * 10 + (*p - '0');
			else if (*p != '0') /* not representable exactly */
				return VOX_ERR_INVALID;
		}
		if (frac_digits == 0)
			return VOX_ERR_INVALID;
	}
	if (*p != '\0')
		return VOX_ERR_INVALID;
	for (int i = frac_digits; i < 6; i++)
		frac *= 10;
	*micros = (whole * 1000000 + frac) * (negative ? -1 : 1);
	return 0;
}

static bool upper_letters(const char *text, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (text[i] < 'A' || text[i] > 'Z')
			return false;
	return text[count] == '\0';
}

static void number_regions(const json_t *regions, vox_carrier_number_t *num)
{
	const json_t *region;
	size_t i;

	json_array_foreach(regions, i, region)
	{
		const char *kind = vox_json_str(region, "region_type");
		const char *name = vox_json_str(region, "region_name");

		if (kind == NULL || name == NULL)
			continue;
		if (strcmp(kind, "country_code") == 0 && upper_letters(name, 2))
			copy_fits(num->region, sizeof(num->region), name);
		else if (strcmp(kind, "location") == 0)
			copy_cut(num->city, sizeof(num->city), name);
		else if (strcmp(kind, "state") == 0 ||
		         strcmp(kind, "region") == 0) /* outside US/CA */
			copy_cut(num->state, sizeof(num->state), name);
	}
}

static unsigned number_features(const json_t *features)
{
	static const char *const names[] = {"voice", "sms", "mms"};
	const json_t *feature;
	unsigned bits = 0;
	size_t i;

	json_array_foreach(features, i, feature)
	{
		const char *name = json_is_string(feature)
		                           ? json_string_value(feature)
		                           : vox_json_str(feature, "name");

		for (unsigned k = 0; name != NULL && k < 3; k++)
			if (strcmp(name, names[k]) == 0)
				bits |= 1u << k;
	}
	return bits;
}

/* Absent: 0. Present: an exact decimal string. */
static bool money_member(const json_t *cost, const char *key, long long *micros)
{
	const json_t *value = json_object_get(cost, key);

	*micros = 0;
	return value == NULL ||
	       (json_is_string(value) &&
	        vox_carrier_money_parse(json_string_value(value), micros) == 0);
}

/* 0, or -1 with why filled: the item is skipped. */
static int search_item(const json_t *item, vox_carrier_number_t *num,
                       const char **why)
{
	const char *e164 = vox_json_str(item, "phone_number");
	const char *type = vox_json_str(item, "phone_number_type");
	const json_t *cost = json_object_get(item, "cost_information");
	const char *currency = vox_json_str(cost, "currency");

	memset(num, 0, sizeof(*num));
	*why = "phone_number is not E.164";
	if (!e164_shape(e164) || !copy_fits(num->e164, sizeof(num->e164), e164))
		return -1;
	*why = "phone_number_type too long";
	if (type != NULL && !copy_fits(num->type, sizeof(num->type), type))
		return -1;
	number_regions(json_object_get(item, "region_information"), num);
	num->features = number_features(json_object_get(item, "features"));
	*why = "bad upfront_cost";
	if (!money_member(cost, "upfront_cost", &num->upfront_micros))
		return -1;
	*why = "bad monthly_cost";
	if (!money_member(cost, "monthly_cost", &num->monthly_micros))
		return -1;
	*why = "bad currency";
	if (currency != NULL &&
	    (!upper_letters(currency, 3) ||
	     !copy_fits(num->currency, sizeof(num->currency), currency)))
		return -1;
	return 0;
}

int vox_carrier_parse_search(const char *body, size_t len,
                             vox_carrier_number_t *out, int max, int *count,
                             vox_error_t *err)
{
	vox_error_t jerr;
	json_t *root, *data, *item;
	const char *why;
	size_t i;
	int n = 0;

	if (count != NULL)
		*count = 0;
	root = vox_json_parse(body != NULL ? body : "", body != NULL ? len : 0,
	                      VOX_JSON_DEFAULT_DEPTH, &jerr);
	if (root == NULL)
		return unreadable(err, "search", jerr.message);
	data = json_object_get(root, "data");
	if (!json_is_array(data)) {
		json_decref(root);
		return unreadable(err, "search", "no \"data\" array");
	}
	json_array_foreach(data, i, item)
	{
		if (n >= max)
			break;
		if (search_item(item, &out[n], &why) == 0) {
			n++;
			continue;
		}
		vox_log(VOX_LOG_WARN, "carrier search: number skipped",
		        "phone_number",
		        vox_json_str(item, "phone_number")
		                ? vox_json_str(item, "phone_number")
		                : "",
		        "reason", why, NULL);
	}
	json_decref(root);
	if (count != NULL)
		*count = n;
	return 0;
}

/* The result for e164 not filled yet, or -1. */
static int order_slot(const char *e164, const char *const *e164s, int n,
                      const bool *answered)
{
	for (int k = 0; e164 != NULL && k < n; k++)
		if (!answered[k] && strcmp(e164s[k], e164) == 0)
			return k;
	return -1;
}

static void order_item(const json_t *item, vox_carrier_order_result_t *res)
{
	const char *status = vox_json_str(item, "status");
	const char *id = vox_json_str(item, "id");

	res->ok = false;
	if (status != NULL && strcmp(status, "success") == 0) {
		if (id != NULL && id[0] != '\0' &&
		    copy_fits(res->carrier_id, sizeof(res->carrier_id), id)) {
			res->ok = true;
			res->error[0] = '\0';
		} else {
			copy_cut(res->error, sizeof(res->error),
			         "carrier gave no usable id");
		}
		return;
	}
	errors_text(json_object_get(item, "errors"), res->error,
	            sizeof(res->error));
	if (res->error[0] == '\0')
		snprintf(res->error, sizeof(res->error), "carrier status %.40s",
		         status != NULL ? status : "missing");
}

static int order_answer(const char *body, size_t len, const char *const *e164s,
                        int n, vox_carrier_order_result_t *results,
                        struct order_status *status, vox_error_t *err)
{
	bool answered[VOX_CARRIER_ORDER_MAX] = {false};
	json_t *root, *data, *numbers, *item;
	const char *text;
	vox_error_t jerr;
	size_t i;

	if (n < 1 || n > VOX_CARRIER_ORDER_MAX)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier order: %d numbers", n);
	for (int k = 0; k < n; k++) {
		memset(&results[k], 0, sizeof(results[k]));
		copy_cut(results[k].e164, sizeof(results[k].e164), e164s[k]);
		copy_cut(results[k].error, sizeof(results[k].error),
		         "not in the carrier's answer");
	}
	root = vox_json_parse(body != NULL ? body : "", body != NULL ? len : 0,
	                      VOX_JSON_DEFAULT_DEPTH, &jerr);
	if (root == NULL)
		return unreadable(err, "order", jerr.message);
	data = json_object_get(root, "data");
	numbers = json_object_get(data, "phone_numbers");
	if (!json_is_array(numbers)) {
		json_decref(root);
		return unreadable(err, "order", "no \"data.phone_numbers\"");
	}
	memset(status, 0, sizeof(*status));
	text = vox_json_str(data, "id");
	if (text != NULL && header_safe(text, sizeof(status->id) - 1))
		copy_fits(status->id, sizeof(status->id), text);
	text = vox_json_str(data, "status");
	status->pending = text != NULL && strcmp(text, "pending") == 0;
	json_array_foreach(numbers, i, item)
	{
		int k = order_slot(vox_json_str(item, "phone_number"), e164s, n,
		                   answered);

		if (k < 0)
			continue; /* not one we asked for */
		answered[k] = true;
		order_item(item, &results[k]);
		text = vox_json_str(item, "status");
		if (text != NULL && strcmp(text, "pending") == 0)
			status->pending = true;
	}
	json_decref(root);
	return 0;
}

int vox_carrier_parse_order(const char *body, size_t len,
                            const char *const *e164s, int n,
                            vox_carrier_order_result_t *results,
                            vox_error_t *err)
{
	struct order_status status;

	return order_answer(body, len, e164s, n, results, &status, err);
}

/* ---- requests ---- */

static int query_value(const char *name, const char *value, vox_error_t *err)
{
	if (value != NULL && strnlen(value, MAX_VALUE + 1) > MAX_VALUE)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier search: %s longer than %d bytes",
		                     name, MAX_VALUE);
	return 0;
}

static int search_check(const vox_carrier_query_t *q, vox_error_t *err)
{
	const char *const values[] = {q->country,     q->area_code, q->contains,
	                              q->starts_with, q->ends_with, q->city,
	                              q->region};
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(values) / sizeof(values[0]);
	     i++)
		rc = query_value("a filter", values[i], err);
	if (rc != 0)
		return rc;
	if (q->type != NULL && q->type[0] != '\0' &&
	    strcmp(q->type, "local") != 0 && strcmp(q->type, "mobile") != 0 &&
	    strcmp(q->type, "toll_free") != 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier search: type \"%.20s\" is not "
		                     "local, mobile or toll_free",
		                     q->type);
	if (q->limit < 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier search: limit %d", q->limit);
	if ((q->features &
	     ~(VOX_CARRIER_VOICE | VOX_CARRIER_SMS | VOX_CARRIER_MMS)) != 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier search: unknown features 0x%x",
		                     q->features);
	return 0;
}

/* Writes "<sep>key=<escaped value>"; false when out of memory. */
static bool query_param(vox_carrier_t *c, FILE *out, char *sep, const char *key,
                        const char *value)
{
	char *escaped;

	if (value == NULL || value[0] == '\0')
		return true;
	escaped = curl_easy_escape(c->curl, value, 0);
	if (escaped == NULL)
		return false;
	fprintf(out, "%c%s=%s", *sep, key, escaped);
	curl_free(escaped);
	*sep = '&';
	return true;
}

char *vox_carrier_search_url(vox_carrier_t *c, const vox_carrier_query_t *q,
                             int max, vox_error_t *err)
{
	static const char *const feature_names[] = {"voice", "sms", "mms"};
	const struct {
		const char *key, *value;
	} params[] = {
	        {"filter[country_code]", q->country},
	        {"filter[national_destination_code]", q->area_code},
	        {"filter[phone_number][contains]", q->contains},
	        {"filter[phone_number][starts_with]", q->starts_with},
	        {"filter[phone_number][ends_with]", q->ends_with},
	        {"filter[locality]", q->city},
	        {"filter[administrative_area]", q->region},
	        {"filter[phone_number_type]", q->type},
	};
	char *url = NULL, sep = '?';
	size_t size = 0;
	bool ok = true;
	FILE *out;

	if (max < 1)
		max = 1;
	if (search_check(q, err) != 0)
		return NULL;
	out = open_memstream(&url, &size);
	if (out == NULL)
		goto failed_nomem;
	fprintf(out, "%s/v2/available_phone_numbers", c->base_url);
	for (size_t i = 0; ok && i < sizeof(params) / sizeof(params[0]); i++)
		ok = query_param(c, out, &sep, params[i].key, params[i].value);
	for (unsigned k = 0; k < 3; k++)
		if (q->features & (1u << k)) {
			fprintf(out, "%cfilter[features][]=%s", sep,
			        feature_names[k]);
			sep = '&';
		}
	if (max > MAX_LIMIT)
		max = MAX_LIMIT;
	fprintf(out, "%cfilter[limit]=%d", sep,
	        q->limit > 0 && q->limit < max ? q->limit : max);
	if (ferror(out))
		ok = false;
	if (fclose(out) != 0 || !ok)
		goto failed_nomem;
	return url;

failed_nomem:
	free(url);
	vox_error_set(err, VOX_ERR_NOMEM, true, "carrier search: no memory");
	return NULL;
}

/* base_url + "/v2/<collection>/" + escaped id, or NULL on ENOMEM. */
static char *resource_url(vox_carrier_t *c, const char *collection,
                          const char *id)
{
	char *escaped = curl_easy_escape(c->curl, id, 0);
	char *url = NULL;

	if (escaped != NULL &&
	    asprintf(&url, "%s/v2/%s/%s", c->base_url, collection, escaped) < 0)
		url = NULL;
	curl_free(escaped);
	return url;
}

static int id_check(const char *what, const char *carrier_id, vox_error_t *err)
{
	/* it came from vox_carrier_order_result_t.carrier_id[64] */
	if (carrier_id == NULL || !header_safe(carrier_id, 63))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier %s: carrier id missing, too long "
		                     "or not text",
		                     what);
	return 0;
}

/* A JSON text of value (stolen), or NULL on ENOMEM. */
static char *json_text(json_t *value)
{
	char *text = value != NULL ? vox_json_dump(value) : NULL;

	json_decref(value);
	return text;
}

int vox_carrier_search(vox_carrier_t *c, const vox_carrier_query_t *q,
                       vox_carrier_number_t *out, int max, int *count,
                       vox_error_t *err)
{
	struct request req = {.endpoint = "search", .method = "GET"};
	struct response resp;
	vox_error_t url_err;
	int rc;

	if (count != NULL)
		*count = 0;
	if (c == NULL || q == NULL || out == NULL || max < 1)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier search: bad arguments");
	req.url = vox_carrier_search_url(c, q, max, &url_err);
	if (req.url == NULL) {
		if (err != NULL)
			*err = url_err;
		return url_err.code;
	}
	rc = run(c, &req, &resp, err);
	if (rc == 0)
		rc = vox_carrier_parse_search(resp.body, resp.len, out, max,
		                              count, err);
	response_reset(&resp);
	return rc;
}

static int order_check(const char *const *e164s, int n, const char *key,
                       const vox_carrier_order_result_t *results,
                       vox_error_t *err)
{
	if (e164s == NULL || results == NULL || n < 1 ||
	    n > VOX_CARRIER_ORDER_MAX)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier order: 1 to %d numbers",
		                     VOX_CARRIER_ORDER_MAX);
	if (key == NULL || !header_safe(key, MAX_KEY))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier order: an idempotency key of 1 "
		                     "to %d printable bytes is required",
		                     MAX_KEY);
	for (int k = 0; k < n; k++)
		if (!e164_shape(e164s[k]))
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "carrier order: number %d is not "
			                     "E.164",
			                     k);
	return 0;
}

/*
 * Polls GET /v2/number_orders/{id} until the order is no longer pending,
 * for at most order_wait_ms. Still pending then: VOX_ERR_TIMEOUT,
 * retriable; the retry's Idempotency-Key gets the same order back.
 */
static int order_wait(vox_carrier_t *c, const char *order_id,
                      const char *const *e164s, int n,
                      vox_carrier_order_result_t *results, vox_error_t *err)
{
	long long deadline = now_ms() + c->order_wait_ms;
	struct order_status status = {.pending = true};
	long pause = c->backoff_ms, left;
	struct response resp;
	int rc = 0;

	if (order_id[0] == '\0')
		return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                     "carrier order: pending, without an id");
	while (rc == 0 && status.pending) {
		struct request req = {.endpoint = "order_status",
		                      .method = "GET"};

		left = (long)(deadline - now_ms());
		if (left <= 0)
			return vox_error_set(err, VOX_ERR_TIMEOUT, true,
			                     "carrier order %s still pending "
			                     "after %d ms",
			                     order_id, c->order_wait_ms);
		sleep_ms(pause < left ? pause : left);
		pause = pause * 2 < POLL_MAX_MS ? pause * 2 : POLL_MAX_MS;
		req.url = resource_url(c, "number_orders", order_id);
		rc = run(c, &req, &resp, err);
		if (rc == 0)
			rc = order_answer(resp.body, resp.len, e164s, n,
			                  results, &status, err);
		response_reset(&resp);
	}
	return rc;
}

int vox_carrier_order(vox_carrier_t *c, const char *const *e164s, int n,
                      const char *idempotency_key,
                      vox_carrier_order_result_t *results, vox_error_t *err)
{
	struct request req = {.endpoint = "order",
	                      .method = "POST",
	                      .idempotency_key = idempotency_key};
	struct order_status status;
	struct response resp;
	json_t *numbers;
	int rc;

	if (c == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier order: no carrier");
	rc = order_check(e164s, n, idempotency_key, results, err);
	if (rc != 0)
		return rc;
	for (int k = 0; k < n; k++) {
		memset(&results[k], 0, sizeof(results[k]));
		copy_cut(results[k].e164, sizeof(results[k].e164), e164s[k]);
	}
	numbers = json_array();
	for (int k = 0; numbers != NULL && k < n; k++)
		json_array_append_new(
		        numbers, json_pack("{s:s}", "phone_number", e164s[k]));
	req.body = json_text(json_pack("{s:o?,s:s}", "phone_numbers", numbers,
	                               "customer_reference", idempotency_key));
	if (asprintf(&req.url, "%s/v2/number_orders", c->base_url) < 0)
		req.url = NULL;
	if (req.body == NULL) {
		free(req.url);
		req.url = NULL;
	}
	rc = run(c, &req, &resp, err);
	if (rc == 0)
		rc = order_answer(resp.body, resp.len, e164s, n, results,
		                  &status, err);
	response_reset(&resp);
	if (rc == 0 && status.pending)
		rc = order_wait(c, status.id, e164s, n, results, err);
	return rc;
}

int vox_carrier_configure(vox_carrier_t *c, const char *carrier_id, bool active,
                          const char *forward_to, vox_error_t *err)
{
	struct request req = {.endpoint = "configure", .method = "PATCH"};
	struct response resp;
	json_t *forwarding;
	int rc;

	if (c == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier configure: no carrier");
	rc = id_check("configure", carrier_id, err);
	if (rc != 0)
		return rc;
	if (forward_to != NULL && !header_safe(forward_to, 32))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier configure: forward_to is empty, "
		                     "too long or not text");
	if (forward_to != NULL)
		forwarding = json_pack(
		        "{s:b,s:s,s:s}", "call_forwarding_enabled", 1,
		        "forwards_to", forward_to, "forwarding_type", "always");
	else
		forwarding = json_pack("{s:b,s:n}", "call_forwarding_enabled",
		                       0, "forwards_to");
	req.body = json_text(json_pack("{s:s,s:o?}", "status",
	                               active ? "active" : "disabled",
	                               "call_forwarding", forwarding));
	req.url = req.body != NULL
	                  ? resource_url(c, "phone_numbers", carrier_id)
	                  : NULL;
	rc = run(c, &req, &resp, err);
	response_reset(&resp);
	return rc;
}

int vox_carrier_release(vox_carrier_t *c, const char *carrier_id,
                        vox_error_t *err)
{
	struct request req = {.endpoint = "release",
	                      .method = "DELETE",
	                      .gone_is_done = true};
	struct response resp;
	int rc;

	if (c == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier release: no carrier");
	rc = id_check("release", carrier_id, err);
	if (rc != 0)
		return rc;
	req.url = resource_url(c, "phone_numbers", carrier_id);
	rc = run(c, &req, &resp, err);
	response_reset(&resp);
	return rc;
}

/* ---- the handle ---- */

/* 0 picks def; otherwise value must be in [min, max]. */
static int conf_int(const char *name, int value, int def, int min, int max,
                    int *out, vox_error_t *err)
{
	if (value == 0)
		value = def;
	if (value < min || value > max)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier: %s %d is outside %d..%d", name,
		                     value, min, max);
	*out = value;
	return 0;
}

static int conf_apply(vox_carrier_t *c, const vox_carrier_conf_t *conf,
                      vox_error_t *err)
{
	const char *url = conf->base_url;

	if (url == NULL || !header_safe(url, 512) ||
	    !((strncmp(url, "http://", 7) == 0 && url[7] != '\0') ||
	      (strncmp(url, "https://", 8) == 0 && url[8] != '\0')))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier: base URL must be http(s)://host"
		                     "[:port]");
	if (conf->api_key == NULL || !header_safe(conf->api_key, 512))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "carrier: an API key is required");
	return conf_int("timeout_ms", conf->timeout_ms, 3000, 1, 600000,
	                &c->timeout_ms, err) ||
	       conf_int("max_attempts", conf->max_attempts, 3, 1, MAX_ATTEMPTS,
	                &c->max_attempts, err) ||
	       conf_int("backoff_ms", conf->backoff_ms, 100, 1, MAX_BACKOFF_MS,
	                &c->backoff_ms, err) ||
	       conf_int("breaker_failures", conf->breaker_failures, 5, 1,
	                1000000, &c->breaker_failures, err) ||
	       conf_int("breaker_cooldown_ms", conf->breaker_cooldown_ms, 5000,
	                1, 3600000, &c->breaker_cooldown_ms, err) ||
	       conf_int("order_wait_ms", conf->order_wait_ms, 10000, 1, 600000,
	                &c->order_wait_ms, err);
}

vox_carrier_t *vox_carrier_new(const vox_carrier_conf_t *conf, vox_error_t *err)
{
	vox_carrier_t *c;
	size_t len;

	if (conf == NULL) {
		vox_error_set(err, VOX_ERR_INVALID, false, "carrier: no conf");
		return NULL;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		vox_error_set(err, VOX_ERR_INTERNAL, false,
		              "curl_global_init: %s",
		              curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto failed_nomem;
	if (conf_apply(c, conf, err) != 0)
		goto failed;
	c->base_url = strdup(conf->base_url);
	if (c->base_url == NULL ||
	    asprintf(&c->auth_header, "Authorization: Bearer %s",
	             conf->api_key) < 0) {
		c->auth_header = NULL;
		goto failed_nomem;
	}
	len = strlen(c->base_url);
	while (len > 0 && c->base_url[len - 1] == '/')
		c->base_url[--len] = '\0';
	c->curl = curl_easy_init();
	if (c->curl == NULL)
		goto failed_nomem;
	if (getrandom(&c->rng, sizeof(c->rng), 0) != (ssize_t)sizeof(c->rng))
		c->rng = (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)c;
	c->rng |= 1; /* xorshift never leaves 0 */
	c->metrics = conf->metrics;
	if (c->metrics != NULL)
		c->breaker_gauge = vox_metrics_gauge(
		        c->metrics, "vox_carrier_breaker_state",
		        "Carrier circuit: 0 closed, 1 open, 2 half-open", NULL);
	breaker_set(c, VOX_CARRIER_CLOSED);
	return c;

failed_nomem:
	vox_error_set(err, VOX_ERR_NOMEM, true, "carrier: no memory");
failed:
	vox_carrier_destroy(c);
	return NULL;
}

void vox_carrier_destroy(vox_carrier_t *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	free(c->base_url);
	free(c->auth_header);
	free(c);
}
