/*
 * vox_upstream: the retrying libcurl client (see vox_upstream.h for the
 * failure model, the breaker and the threading rules).
 *
 * A call takes an easy handle from the pool (or makes one), runs up to
 * max_attempts exchanges on it (curl_easy_reset between attempts keeps
 * its live connection), tells the breaker whether the provider answered,
 * and gives the handle back for the next call of any thread.
 */
#include "vox_upstream.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_json.h"
#include "vox_log.h"
#include "vox_time.h"

#define MAX_NAME   32   /* bytes of an upstream or endpoint name */
#define MAX_URL    2048 /* bytes of a base or absolute URL */
#define MAX_HEADER 1024 /* bytes of a header line we are given */

/* A pooled easy handle: one per call running at a time. */
struct easy {
	CURL *curl;
	struct easy *next;
	char error[CURL_ERROR_SIZE];
};

struct vox_upstream {
	char *name;
	char *base_url;      /* without a trailing '/' */
	char *auth_header;   /* NULL: none */
	char *accept_header; /* "Accept: ..." */
	int connect_timeout_ms, timeout_ms, max_attempts;
	int backoff_ms, backoff_max_ms, retry_after_max_ms;
	int breaker_failures, breaker_cooldown_ms;
	size_t max_body;
	vox_metrics_t *metrics; /* borrowed, may be NULL */
	vox_breaker_t *breaker; /* owned */
	vox_upstream_describe_fn *describe;
	vox_upstream_classify_fn *classify;
	vox_upstream_allow_fn *allow_address;
	void *allow_arg;
	pthread_mutex_t pool_lock; /* guards idle */
	struct easy *idle;
};

/* One call as the retry loop sees it. */
struct exchange {
	vox_upstream_t *up;
	const vox_upstream_request_t *req;
	struct easy *easy;
	struct curl_slist *headers;
	char *url;  /* owned */
	char *json; /* owned: req->json dumped */
	const char *method;
	const void *body; /* NULL: none */
	size_t body_len;
	int timeout_ms, attempts;
	bool refused; /* allow_address said no */
	bool too_big;
	vox_upstream_response_t *resp;
};

typedef enum attempt_outcome {
	ATTEMPT_ANSWER, /* the provider answered: success or a refusal */
	ATTEMPT_RETRY,  /* may pass: no connection, timeout, 408/429/5xx */
	ATTEMPT_LOCAL,  /* our side failed: memory, URL, refused address */
} attempt_outcome_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

bool vox_upstream_header_safe(const char *text, size_t max)
{
	size_t len;

	if (text == NULL)
		return false;
	len = strnlen(text, max + 1);
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
			return false;
	return true;
}

/* [a-z0-9_-]{1,MAX_NAME}: safe in a metric label and a log line. */
static bool name_safe(const char *text)
{
	size_t len = text != NULL ? strnlen(text, MAX_NAME + 1) : 0;

	if (len == 0 || len > MAX_NAME)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((text[i] >= 'a' && text[i] <= 'z') ||
		      (text[i] >= '0' && text[i] <= '9') || text[i] == '_' ||
		      text[i] == '-'))
			return false;
	return true;
}

static bool method_safe(const char *text)
{
	size_t len = strnlen(text, 17);

	if (len == 0 || len > 16)
		return false;
	for (size_t i = 0; i < len; i++)
		if (text[i] < 'A' || text[i] > 'Z')
			return false;
	return true;
}

static bool http_url(const char *url)
{
	return vox_upstream_header_safe(url, MAX_URL) &&
	       strchr(url, ' ') == NULL &&
	       ((strncmp(url, "http://", 7) == 0 && url[7] != '\0') ||
	        (strncmp(url, "https://", 8) == 0 && url[8] != '\0'));
}

/* "Name: value" with a token name. */
static bool header_line(const char *line)
{
	const char *colon;

	if (!vox_upstream_header_safe(line, MAX_HEADER))
		return false;
	colon = strchr(line, ':');
	if (colon == NULL || colon == line)
		return false;
	for (const char *p = line; p < colon; p++)
		if (*p == ' ' || *p == '\t')
			return false;
	return true;
}

char *vox_upstream_escape(const char *text)
{
	/* the handle argument is unused since libcurl 7.82 */
	char *escaped = curl_easy_escape(NULL, text, 0);
	char *copy = escaped != NULL ? strdup(escaped) : NULL;

	curl_free(escaped);
	return copy;
}

const char *vox_upstream_name(const vox_upstream_t *up)
{
	return up->name;
}

const char *vox_upstream_base_url(const vox_upstream_t *up)
{
	return up->base_url;
}

/* ---- status mapping ---- */

vox_upstream_verdict_t vox_upstream_verdict(long status)
{
	if (status >= 200 && status < 300)
		return VOX_UPSTREAM_OK;
	if (status == 408 || status == 429 || status >= 500)
		return VOX_UPSTREAM_RETRY;
	return VOX_UPSTREAM_FINAL;
}

int vox_upstream_status_error(long status, const char *reason, vox_error_t *err)
{
	const char *sep = reason != NULL && reason[0] != '\0' ? ": " : "";

	if (sep[0] == '\0')
		reason = "";
	if (status == 401 || status == 403)
		return vox_error_fatal(err, VOX_ERR_INTERNAL,
		                       "refused our credentials (HTTP %ld)%s%s",
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
	                     "unexpected HTTP %ld (check the base URL)",
	                     status);
}

/* ---- metrics and logs ---- */

static void count(vox_upstream_t *up, const char *name, const char *help,
                  const char *endpoint, const char *key, const char *value)
{
	char labels[160];

	if (up->metrics == NULL)
		return;
	if (key != NULL)
		snprintf(labels, sizeof(labels),
		         "upstream=\"%s\",endpoint=\"%s\",%s=\"%s\"", up->name,
		         endpoint, key, value);
	else
		snprintf(labels, sizeof(labels),
		         "upstream=\"%s\",endpoint=\"%s\"", up->name, endpoint);
	vox_counter_inc(vox_metrics_counter(up->metrics, name, help, labels));
}

static void count_call(vox_upstream_t *up, const char *endpoint,
                       const char *outcome)
{
	count(up, "vox_upstream_calls_total",
	      "Upstream calls by outcome (ok, rejected, failed, circuit_open)",
	      endpoint, "outcome", outcome);
}

static void count_request(vox_upstream_t *up, const char *endpoint, long status)
{
	static const char *const classes[] = {"1xx", "2xx", "3xx", "4xx",
	                                      "5xx"};
	const char *class = "error";

	if (status >= 100 && status < 600)
		class = classes[status / 100 - 1];
	count(up, "vox_upstream_requests_total",
	      "Upstream HTTP exchanges by status class (error: no answer)",
	      endpoint, "class", class);
}

static void observe_call(vox_upstream_t *up, const char *endpoint,
                         int64_t started_ms)
{
	char labels[96];

	if (up->metrics == NULL)
		return;
	snprintf(labels, sizeof(labels), "upstream=\"%s\",endpoint=\"%s\"",
	         up->name, endpoint);
	vox_histogram_observe(
	        vox_metrics_histogram(up->metrics, "vox_upstream_call_seconds",
	                              "Upstream call time, retries included",
	                              labels, NULL, 0),
	        (double)(vox_mono_ms() - started_ms) / 1000.0);
}

static void log_retry(const struct exchange *ex, int attempt, long delay_ms,
                      const vox_error_t *last)
{
	char attempt_s[16], status_s[16], delay_s[24];

	snprintf(attempt_s, sizeof(attempt_s), "%d", attempt);
	snprintf(status_s, sizeof(status_s), "%ld", ex->resp->status);
	snprintf(delay_s, sizeof(delay_s), "%ld", delay_ms);
	vox_log(VOX_LOG_WARN, "upstream call failed, retrying", "upstream",
	        ex->up->name, "endpoint", ex->req->endpoint, "attempt",
	        attempt_s, "status", status_s, "error", last->message,
	        "delay_ms", delay_s, NULL);
}

vox_breaker_state_t vox_upstream_breaker_state(const vox_upstream_t *up)
{
	return vox_breaker_state(up->breaker);
}

/* ---- the pool of easy handles ---- */

static struct easy *easy_take(vox_upstream_t *up)
{
	struct easy *easy;

	pthread_mutex_lock(&up->pool_lock);
	easy = up->idle;
	if (easy != NULL)
		up->idle = easy->next;
	pthread_mutex_unlock(&up->pool_lock);
	if (easy != NULL)
		return easy;
	easy = calloc(1, sizeof(*easy));
	if (easy != NULL && (easy->curl = curl_easy_init()) == NULL) {
		free(easy);
		easy = NULL;
	}
	return easy;
}

static void easy_give(vox_upstream_t *up, struct easy *easy)
{
	pthread_mutex_lock(&up->pool_lock);
	easy->next = up->idle;
	up->idle = easy;
	pthread_mutex_unlock(&up->pool_lock);
}

/* ---- one HTTP exchange ---- */

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
	struct exchange *ex = arg;
	vox_upstream_response_t *resp = ex->resp;
	size_t n = size * nmemb;
	char *grown;

	if (ex->req->flags & VOX_UPSTREAM_DISCARD_BODY)
		return n; /* read to keep the connection, never kept */
	if (resp->len + n > ex->up->max_body) {
		ex->too_big = true;
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

/* Asks allow_address before each new connection. */
static curl_socket_t open_socket(void *arg, curlsocktype purpose,
                                 struct curl_sockaddr *address)
{
	struct exchange *ex = arg;

	if (purpose == CURLSOCKTYPE_IPCXN &&
	    !ex->up->allow_address(ex->up->allow_arg, &address->addr,
	                           address->addrlen)) {
		ex->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(address->family, address->socktype | SOCK_CLOEXEC,
	              address->protocol);
}

static attempt_outcome_t transport_error(struct exchange *ex, CURLcode rc,
                                         vox_error_t *err)
{
	const char *why = ex->easy->error[0] != '\0' ? ex->easy->error
	                                             : curl_easy_strerror(rc);

	if (ex->refused) {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "destination address refused");
		return ATTEMPT_LOCAL;
	}
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		vox_error_set(err, VOX_ERR_TIMEOUT, true,
		              "no answer within %d ms", ex->timeout_ms);
		return ATTEMPT_RETRY;
	case CURLE_WRITE_ERROR:
		if (ex->too_big)
			vox_error_set(err, VOX_ERR_LIMIT, false,
			              "answer larger than %zu bytes",
			              ex->up->max_body);
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

static void attempt_setup(struct exchange *ex)
{
	CURL *curl = ex->easy->curl;
	vox_upstream_t *up = ex->up;

	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_URL, ex->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)ex->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(ex->timeout_ms < up->connect_timeout_ms
	                                ? ex->timeout_ms
	                                : up->connect_timeout_ms));
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, ex->easy->error);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, ex->headers);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "voxlink");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, ex);
	if (up->allow_address != NULL) {
		curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
		curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, ex);
	}
	if (strcmp(ex->method, "HEAD") == 0)
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	else if (strcmp(ex->method, "GET") != 0)
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, ex->method);
	if (ex->body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, ex->body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)ex->body_len);
	}
	if (ex->req->customize != NULL)
		ex->req->customize(curl, ex->req->customize_arg);
}

/* The provider's refusal or failure as an error; a RETRY verdict stays
 * retriable whatever the status. */
static void answer_error(struct exchange *ex, vox_upstream_verdict_t verdict,
                         vox_error_t *err)
{
	vox_upstream_response_t *resp = ex->resp;
	char reason[200] = "";

	if (ex->up->describe != NULL && resp->body != NULL)
		ex->up->describe(resp->body, resp->len, reason, sizeof(reason));
	vox_upstream_status_error(resp->status, reason, err);
	if (verdict == VOX_UPSTREAM_RETRY)
		err->retriable = true;
}

static attempt_outcome_t attempt(struct exchange *ex, vox_error_t *err,
                                 vox_upstream_verdict_t *verdict)
{
	vox_upstream_response_t *resp = ex->resp;
	CURL *curl = ex->easy->curl;
	curl_off_t retry_after = 0;
	CURLcode rc;

	free(resp->body);
	resp->body = NULL;
	resp->len = 0;
	resp->status = 0;
	resp->retry_after_s = 0;
	ex->easy->error[0] = '\0';
	ex->refused = ex->too_big = false;
	attempt_setup(ex);
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		count_request(ex->up, ex->req->endpoint, 0);
		return transport_error(ex, rc, err);
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
	count_request(ex->up, ex->req->endpoint, resp->status);
	*verdict = ex->up->classify != NULL
	                   ? ex->up->classify(resp->status)
	                   : vox_upstream_verdict(resp->status);
	if (*verdict == VOX_UPSTREAM_OK)
		return ATTEMPT_ANSWER;
	answer_error(ex, *verdict, err);
	if (*verdict == VOX_UPSTREAM_FINAL)
		return ATTEMPT_ANSWER;
	/* RFC 9110 gives Retry-After to 503 as well as 429; libcurl reads
	 * both delay-seconds and an HTTP-date (as seconds from now) */
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
static long retry_delay(const struct exchange *ex, int n)
{
	const vox_upstream_t *up = ex->up;
	long retry_after_s = ex->resp->retry_after_s;

	if (retry_after_s > 0) {
		if (retry_after_s > up->retry_after_max_ms / 1000)
			return -1;
		return retry_after_s * 1000;
	}
	return vox_backoff_ms(up->backoff_ms, up->backoff_max_ms, n, 1);
}

/* ---- a call ---- */

/* Appends line (a copy) to ex->headers; false on ENOMEM. */
static bool header_add(struct exchange *ex, const char *line)
{
	struct curl_slist *grown = curl_slist_append(ex->headers, line);

	if (grown == NULL)
		return false;
	ex->headers = grown;
	return true;
}

static int headers_build(struct exchange *ex, vox_error_t *err)
{
	const vox_upstream_request_t *req = ex->req;
	char *line = NULL;
	bool ok = true;

	if (ex->up->auth_header != NULL)
		ok = header_add(ex, ex->up->auth_header);
	/* no "Expect: 100-continue" round trip */
	ok = ok && header_add(ex, ex->up->accept_header) &&
	     header_add(ex, "Expect:");
	if (ok && ex->body != NULL) {
		ok = asprintf(&line, "Content-Type: %s",
		              req->json != NULL || req->content_type == NULL
		                      ? (req->json != NULL
		                                 ? "application/json"
		                                 : "application/octet-stream")
		                      : req->content_type) >= 0;
		ok = ok && header_add(ex, line);
		free(line);
		line = NULL;
	}
	if (ok && req->idempotency_key != NULL) {
		ok = asprintf(&line, "Idempotency-Key: %s",
		              req->idempotency_key) >= 0;
		ok = ok && header_add(ex, line);
		free(line);
	}
	for (size_t i = 0; ok && req->headers != NULL && req->headers[i]; i++)
		ok = header_add(ex, req->headers[i]);
	if (!ok)
		return vox_error_set(err, VOX_ERR_NOMEM, true,
		                     "no memory for the headers");
	return 0;
}

static int request_check(const vox_upstream_request_t *req, vox_error_t *err)
{
	if (!name_safe(req->endpoint))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "endpoint name missing or not "
		                     "[a-z0-9_-]{1,32}");
	if ((req->url == NULL) == (req->path == NULL))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "one of path and url is required");
	if (req->url != NULL && !http_url(req->url))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "url must be http(s)://host...");
	if (req->path != NULL &&
	    (!vox_upstream_header_safe(req->path, MAX_URL) ||
	     strchr(req->path, ' ') != NULL ||
	     (req->path[0] != '/' && req->path[0] != '?')))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "path must start with / or ?, without "
		                     "spaces or control characters");
	if (req->method != NULL && !method_safe(req->method))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "method must be [A-Z]{1,16}");
	if (req->idempotency_key != NULL &&
	    !vox_upstream_header_safe(req->idempotency_key,
	                              VOX_UPSTREAM_MAX_KEY))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "idempotency key must be 1 to %d "
		                     "printable bytes",
		                     VOX_UPSTREAM_MAX_KEY);
	for (size_t i = 0; req->headers != NULL && req->headers[i]; i++)
		if (!header_line(req->headers[i]))
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "header %zu is not a \"Name: "
			                     "value\" line",
			                     i);
	if (req->timeout_ms < 0 || req->max_attempts < 0 ||
	    req->max_attempts > VOX_UPSTREAM_MAX_ATTEMPTS ||
	    (req->json != NULL && req->body != NULL))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "bad timeout, attempts or two bodies");
	return 0;
}

/* Everything a call needs before the first attempt. */
static int exchange_prepare(struct exchange *ex, vox_error_t *err)
{
	const vox_upstream_request_t *req = ex->req;
	int rc = request_check(req, err);

	if (rc != 0)
		return rc;
	ex->timeout_ms =
	        req->timeout_ms > 0 ? req->timeout_ms : ex->up->timeout_ms;
	ex->attempts = req->max_attempts > 0 ? req->max_attempts
	                                     : ex->up->max_attempts;
	if (req->json != NULL) {
		ex->json = vox_json_dump(req->json);
		if (ex->json == NULL)
			goto failed_nomem;
		ex->body = ex->json;
		ex->body_len = strlen(ex->json);
	} else if (req->body != NULL) {
		ex->body = req->body;
		ex->body_len = req->body_len;
	}
	ex->method = req->method != NULL ? req->method
	             : ex->body != NULL  ? "POST"
	                                 : "GET";
	if (req->url != NULL)
		ex->url = strdup(req->url);
	else if (asprintf(&ex->url, "%s%s", ex->up->base_url, req->path) < 0)
		ex->url = NULL;
	if (ex->url == NULL)
		goto failed_nomem;
	return headers_build(ex, err);

failed_nomem:
	return vox_error_set(err, VOX_ERR_NOMEM, true, "no memory");
}

static void exchange_release(struct exchange *ex)
{
	if (ex->easy != NULL)
		easy_give(ex->up, ex->easy);
	curl_slist_free_all(ex->headers);
	free(ex->url);
	/* the body may hold a secret (a porting PIN): not left in the heap */
	if (ex->json != NULL)
		OPENSSL_cleanse(ex->json, strlen(ex->json));
	free(ex->json);
}

/* The last attempt's error with the upstream, endpoint and how many
 * attempts ran (or the Retry-After that stopped them); fatal is kept. */
static int call_failed(const struct exchange *ex, vox_error_t *err,
                       const vox_error_t *last, int attempts)
{
	const char *name = ex->up->name;
	const char *endpoint = name_safe(ex->req->endpoint) ? ex->req->endpoint
	                                                    : "(bad endpoint)";
	long retry_after_s = ex->resp->retry_after_s;

	if (retry_after_s > ex->up->retry_after_max_ms / 1000)
		vox_error_set(err, last->code, last->retriable,
		              "%s %s: %s; it asks to wait %ld s", name,
		              endpoint, last->message, retry_after_s);
	else if (attempts > 1)
		vox_error_set(err, last->code, last->retriable,
		              "%s %s: %s (%d attempts)", name, endpoint,
		              last->message, attempts);
	else
		vox_error_set(err, last->code, last->retriable, "%s %s: %s",
		              name, endpoint, last->message);
	if (err != NULL)
		err->fatal = last->fatal;
	return last->code;
}

/* The retry loop over a prepared exchange. */
static int exchange_run(struct exchange *ex, bool probe, vox_error_t *err)
{
	vox_upstream_verdict_t verdict = VOX_UPSTREAM_FINAL;
	attempt_outcome_t outcome;
	vox_error_t last;
	long delay;
	int n;

	vox_error_clear(&last);
	if (probe) /* the probe is one attempt, whatever was asked */
		ex->attempts = 1;
	for (n = 1;; n++) {
		outcome = attempt(ex, &last, &verdict);
		if (outcome != ATTEMPT_RETRY || n >= ex->attempts)
			break;
		delay = retry_delay(ex, n);
		if (delay < 0)
			break;
		log_retry(ex, n, delay, &last);
		count(ex->up, "vox_upstream_retries_total",
		      "Upstream attempts that failed and were tried again",
		      ex->req->endpoint, NULL, NULL);
		vox_sleep_ms(delay);
	}
	ex->resp->attempts = n;
	if (outcome == ATTEMPT_ANSWER || outcome == ATTEMPT_RETRY)
		vox_breaker_record(ex->up->breaker, probe,
		                   outcome == ATTEMPT_ANSWER);
	else if (probe) /* never leave the breaker half-open */
		vox_breaker_record(ex->up->breaker, true, false);
	if (outcome == ATTEMPT_ANSWER &&
	    (verdict == VOX_UPSTREAM_OK ||
	     (ex->resp->status == 404 && n > 1 &&
	      (ex->req->flags & VOX_UPSTREAM_GONE_IS_DONE)))) {
		count_call(ex->up, ex->req->endpoint, "ok");
		return 0;
	}
	count_call(ex->up, ex->req->endpoint,
	           outcome == ATTEMPT_ANSWER ? "rejected" : "failed");
	return call_failed(ex, err, &last, n);
}

int vox_upstream_call(vox_upstream_t *up, const vox_upstream_request_t *req,
                      vox_upstream_response_t *resp, vox_error_t *err)
{
	struct exchange ex = {.up = up, .req = req, .resp = resp};
	int64_t started = vox_mono_ms();
	vox_error_t local;
	bool probe = false;
	int rc;

	if (resp != NULL)
		memset(resp, 0, sizeof(*resp));
	if (up == NULL || req == NULL || resp == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "upstream call: bad arguments");
	rc = exchange_prepare(&ex, &local);
	if (rc != 0) {
		call_failed(&ex, err, &local, 1);
		goto out;
	}
	if (vox_breaker_admit(up->breaker, &probe, err) != 0) {
		count_call(up, req->endpoint, "circuit_open");
		rc = VOX_ERR_UNAVAILABLE;
		goto out;
	}
	ex.easy = easy_take(up);
	if (ex.easy == NULL) {
		if (probe)
			vox_breaker_record(up->breaker, true, false);
		rc = vox_error_set(err, VOX_ERR_NOMEM, true,
		                   "%s %s: no memory for a curl handle",
		                   up->name, req->endpoint);
		goto out;
	}
	rc = exchange_run(&ex, probe, err);
	observe_call(up, req->endpoint, started);
out:
	exchange_release(&ex);
	return rc;
}

void vox_upstream_response_free(vox_upstream_response_t *resp)
{
	if (resp == NULL)
		return;
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

/* ---- the handle ---- */

/* 0 picks def; otherwise value must be in [min, max]. */
static int conf_int(const vox_upstream_conf_t *conf, const char *name,
                    int value, int def, int min, int max, int *out,
                    vox_error_t *err)
{
	if (value == 0)
		value = def;
	if (value < min || value > max)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: %s %d is outside %d..%d", conf->name,
		                     name, value, min, max);
	*out = value;
	return 0;
}

static int conf_check(const vox_upstream_conf_t *conf, vox_error_t *err)
{
	if (!name_safe(conf->name))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "upstream name missing or not "
		                     "[a-z0-9_-]{1,32}");
	if (conf->base_url == NULL || !http_url(conf->base_url))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: base URL must be http(s)://host"
		                     "[:port]",
		                     conf->name);
	if (conf->auth_header != NULL && !header_line(conf->auth_header))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: the auth header is not a \"Name: "
		                     "value\" line",
		                     conf->name);
	if (conf->accept != NULL &&
	    !vox_upstream_header_safe(conf->accept, 128))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: bad accept", conf->name);
	return 0;
}

static int conf_apply(vox_upstream_t *up, const vox_upstream_conf_t *conf,
                      vox_error_t *err)
{
	int rc = conf_check(conf, err);

	if (rc != 0)
		return rc;
	up->max_body = conf->max_body > 0 ? conf->max_body : 4u << 20;
	up->describe = conf->describe;
	up->classify = conf->classify;
	up->allow_address = conf->allow_address;
	up->allow_arg = conf->allow_arg;
	up->metrics = conf->metrics;
	if (conf_int(conf, "timeout_ms", conf->timeout_ms, 3000, 1, 600000,
	             &up->timeout_ms, err) ||
	    conf_int(conf, "connect_timeout_ms", conf->connect_timeout_ms, 1000,
	             1, 600000, &up->connect_timeout_ms, err) ||
	    conf_int(conf, "max_attempts", conf->max_attempts, 3, 1,
	             VOX_UPSTREAM_MAX_ATTEMPTS, &up->max_attempts, err) ||
	    conf_int(conf, "backoff_max_ms", conf->backoff_max_ms, 5000, 1,
	             600000, &up->backoff_max_ms, err) ||
	    conf_int(conf, "backoff_ms", conf->backoff_ms, 100, 1,
	             up->backoff_max_ms, &up->backoff_ms, err) ||
	    conf_int(conf, "retry_after_max_ms", conf->retry_after_max_ms, 5000,
	             1, 3600000, &up->retry_after_max_ms, err) ||
	    conf_int(conf, "breaker_failures", conf->breaker_failures, 5, 1,
	             1000000, &up->breaker_failures, err) ||
	    conf_int(conf, "breaker_cooldown_ms", conf->breaker_cooldown_ms,
	             5000, 1, 3600000, &up->breaker_cooldown_ms, err))
		return VOX_ERR_INVALID;
	return 0;
}

static int strings_copy(vox_upstream_t *up, const vox_upstream_conf_t *conf)
{
	size_t len;

	up->name = strdup(conf->name);
	up->base_url = strdup(conf->base_url);
	if (up->name == NULL || up->base_url == NULL)
		return VOX_ERR_NOMEM;
	len = strlen(up->base_url);
	while (len > 0 && up->base_url[len - 1] == '/')
		up->base_url[--len] = '\0';
	if (conf->auth_header != NULL &&
	    (up->auth_header = strdup(conf->auth_header)) == NULL)
		return VOX_ERR_NOMEM;
	if (asprintf(&up->accept_header, "Accept: %s",
	             conf->accept != NULL ? conf->accept : "application/json") <
	    0) {
		up->accept_header = NULL;
		return VOX_ERR_NOMEM;
	}
	return 0;
}

vox_upstream_t *vox_upstream_new(const vox_upstream_conf_t *conf,
                                 vox_error_t *err)
{
	vox_gauge_t *gauge = NULL;
	vox_upstream_t *up;
	char labels[64];

	if (conf == NULL) {
		vox_error_set(err, VOX_ERR_INVALID, false, "upstream: no conf");
		return NULL;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		vox_error_set(err, VOX_ERR_INTERNAL, false,
		              "curl_global_init: %s",
		              curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	up = calloc(1, sizeof(*up));
	if (up == NULL)
		goto failed_nomem;
	pthread_mutex_init(&up->pool_lock, NULL);
	if (conf_apply(up, conf, err) != 0)
		goto failed;
	if (strings_copy(up, conf) != 0)
		goto failed_nomem;
	if (up->metrics != NULL) {
		snprintf(labels, sizeof(labels), "upstream=\"%s\"", up->name);
		gauge = vox_metrics_gauge(
		        up->metrics, "vox_upstream_breaker_state",
		        "Upstream circuit: 0 closed, 1 open, 2 half-open",
		        labels);
	}
	up->breaker = vox_breaker_new(up->name, up->breaker_failures,
	                              up->breaker_cooldown_ms, gauge);
	if (up->breaker == NULL)
		goto failed_nomem;
	return up;

failed_nomem:
	vox_error_set(err, VOX_ERR_NOMEM, true, "upstream: no memory");
failed:
	vox_upstream_destroy(up);
	return NULL;
}

void vox_upstream_destroy(vox_upstream_t *up)
{
	struct easy *easy, *next;

	if (up == NULL)
		return;
	for (easy = up->idle; easy != NULL; easy = next) {
		next = easy->next;
		curl_easy_cleanup(easy->curl);
		free(easy);
	}
	pthread_mutex_destroy(&up->pool_lock);
	vox_breaker_destroy(up->breaker);
	free(up->name);
	free(up->base_url);
	free(up->auth_header);
	free(up->accept_header);
	free(up);
}
