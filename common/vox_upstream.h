/*
 * vox_upstream: the one retrying HTTP client for every provider we call
 * (the carrier, the payment gateway, SMS and mail providers, customer
 * webhooks, object storage), over libcurl.
 *
 * One vox_upstream_t per provider: name, base URL, auth header, timeouts,
 * retry policy, a circuit breaker and metrics. A call is: breaker
 * admission, then up to max_attempts exchanges, then the breaker told
 * whether the provider answered.
 *
 * Failure model:
 * - Retried inside a call, with exponential backoff and full jitter
 *   (vox_backoff_ms) up to max_attempts: no connection, DNS failure,
 *   timeout, connection reset, and HTTP 408, 429 and 5xx (or what the
 *   classify hook says). A Retry-After on 429/503 (delay-seconds or
 *   HTTP-date) replaces the backoff when it is at most retry_after_max_ms;
 *   a longer one stops the call there.
 * - Still failing after that: returned retriable (VOX_ERR_UNAVAILABLE,
 *   VOX_ERR_TIMEOUT, or VOX_ERR_LIMIT for 429) for the caller to decide.
 * - Other answers are final and never retried: 404 VOX_ERR_NOT_FOUND,
 *   409 VOX_ERR_CONFLICT, other 4xx VOX_ERR_INVALID, 401/403 fatal (our
 *   credentials are wrong: nothing works until they are fixed), 3xx
 *   VOX_ERR_INTERNAL (redirects are not followed).
 * - Our side (memory, a destination the allow_address hook refused, an
 *   answer over max_body): not retried.
 * Every attempt of a call sends the same request, headers included, so an
 * Idempotency-Key makes a retried POST safe; a POST that is not idempotent
 * must be called with max_attempts 1.
 *
 * Circuit breaker (vox_breaker: closed, open, half-open): after
 * breaker_failures consecutive calls failed retriably it opens and calls
 * fail at once with VOX_ERR_UNAVAILABLE "<name> circuit open" (retriable),
 * nothing sent. After breaker_cooldown_ms one probe call of one attempt
 * goes through: success closes it, failure opens it again. Any answer,
 * 4xx included, counts as success: the provider is up.
 *
 * Threads: a vox_upstream_t may be shared by any number of threads (the
 * breaker is kept in atomics; curl easy handles are per call, taken from
 * the handle's pool and given back, so a thread that calls again reuses a
 * live connection). vox_upstream_destroy() only once no call is running.
 */
#ifndef VOX_UPSTREAM_H
#define VOX_UPSTREAM_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "vox_breaker.h"
#include "vox_error.h"
#include "vox_metrics.h"

#define VOX_UPSTREAM_MAX_ATTEMPTS 10
/* Longest Idempotency-Key and header line value we send. */
#define VOX_UPSTREAM_MAX_KEY 255

typedef struct vox_upstream vox_upstream_t;

/* How an HTTP status ends an attempt. */
typedef enum vox_upstream_verdict {
	VOX_UPSTREAM_OK,    /* success: the call returns 0 */
	VOX_UPSTREAM_FINAL, /* a refusal: not retried, the call fails */
	VOX_UPSTREAM_RETRY, /* may pass: tried again */
} vox_upstream_verdict_t;

/* Writes into out[size] the provider's own reason from an error answer's
 * body (e.g. the carrier's errors[0].detail), "" if none. */
typedef void vox_upstream_describe_fn(const char *body, size_t len, char *out,
                                      size_t size);
/* The verdict for a status; NULL in the conf gives vox_upstream_verdict():
 * 2xx OK, 408/429/5xx RETRY, the rest FINAL. */
typedef vox_upstream_verdict_t vox_upstream_classify_fn(long status);
/* Whether a connection may be opened to addr (called after DNS, for every
 * address tried, so a name that resolves to a private address is caught).
 * false: the call fails VOX_ERR_INVALID, not retried, nothing sent. This
 * is where customer webhooks will refuse loopback/private addresses. */
typedef bool vox_upstream_allow_fn(void *arg, const struct sockaddr *addr,
                                   socklen_t len);
/* Sets extra curl options on each attempt after ours (SMTP's MAIL_FROM,
 * S3's AWS_SIGV4...); must not touch WRITEFUNCTION/WRITEDATA. */
typedef void vox_upstream_customize_fn(CURL *curl, void *arg);

/* 0 (or NULL) picks the default of each member. */
typedef struct vox_upstream_conf {
	const char *name;        /* required: [a-z0-9_-]{1,32}; logs, metrics,
	                            error messages ("carrier search: ...") */
	const char *base_url;    /* required: http(s)://host[:port][/path] */
	const char *auth_header; /* whole line, "Authorization: Bearer k" */
	const char *accept;      /* Accept value ("application/json") */
	int connect_timeout_ms;  /* (1000), never more than timeout_ms */
	int timeout_ms;          /* per attempt, all included (3000) */
	int max_attempts;        /* per call, 1..10 (3) */
	int backoff_ms;          /* first retry delay cap, doubled (100) */
	int backoff_max_ms;      /* (5000) */
	int retry_after_max_ms;  /* a longer Retry-After stops (5000) */
	int breaker_failures;    /* consecutive failed calls that open (5) */
	int breaker_cooldown_ms; /* open this long, then one probe (5000) */
	size_t max_body;         /* bytes of an answer we read (4 MiB) */
	/* optional; borrowed, must outlive the handle. Series, each with
	 * upstream="<name>": vox_upstream_requests_total{endpoint,class}
	 * per attempt (class 2xx..5xx, or "error": no answer),
	 * vox_upstream_calls_total{endpoint,outcome} per call (ok,
	 * rejected, failed, circuit_open), vox_upstream_retries_total
	 * {endpoint}, vox_upstream_call_seconds{endpoint} (retries
	 * included), vox_upstream_breaker_state (0 closed, 1 open, 2
	 * half-open). */
	vox_metrics_t *metrics;
	vox_upstream_describe_fn *describe;   /* optional */
	vox_upstream_classify_fn *classify;   /* optional */
	vox_upstream_allow_fn *allow_address; /* optional */
	void *allow_arg;
} vox_upstream_conf_t;

/* Per-call behaviour. */
#define VOX_UPSTREAM_DISCARD_BODY                                              \
	(1u << 1) /* the answer's body is read and thrown away, whatever its   \
size (customer webhooks: the status decides, the body is never kept) */
#define VOX_UPSTREAM_GONE_IS_DONE                                              \
	(1u << 0) /* DELETE: a 404 after an                                    \
attempt that may have landed (timeout, 5xx) means it did: 0 */

/* One call. Everything is borrowed for the call only. */
typedef struct vox_upstream_request {
	const char *endpoint; /* required, [a-z0-9_]{1,32}: "search" */
	const char *method;   /* NULL: GET, or POST when there is a body */
	const char *path;     /* appended to base_url: "/v2/numbers?x=1" */
	const char *url;      /* instead of path: an absolute URL (webhooks)
	                       */
	/* a body: json (sent compact, application/json), or body[body_len]
	 * with content_type (default application/octet-stream) */
	const json_t *json;
	const void *body;
	size_t body_len;
	const char *content_type;
	const char *idempotency_key; /* "Idempotency-Key: <key>", 1..255 */
	const char *const *headers;  /* NULL-terminated "Name: value" lines
	                                (signatures...), checked */
	int timeout_ms;              /* 0: the upstream's */
	int max_attempts;            /* 0: the upstream's */
	unsigned flags;              /* VOX_UPSTREAM_GONE_IS_DONE */
	vox_upstream_customize_fn *customize;
	void *customize_arg;
} vox_upstream_request_t;

/* The last attempt's answer; kept on failure too (a refusal's body). */
typedef struct vox_upstream_response {
	long status; /* 0: no answer */
	char *body;  /* owned, NUL-terminated, NULL when empty */
	size_t len;
	int attempts;
	long retry_after_s; /* the last Retry-After, 0 if none */
} vox_upstream_response_t;

/* Checks conf (strings copied; metrics and hooks borrowed) and prepares
 * the handle; nothing is sent. NULL with err filled (VOX_ERR_INVALID) on a
 * bad conf, the message naming the member. */
vox_upstream_t *vox_upstream_new(const vox_upstream_conf_t *conf,
                                 vox_error_t *err);
void vox_upstream_destroy(vox_upstream_t *up);

/* Runs req (see the failure model at the top). 0 on success (2xx, or
 * GONE_IS_DONE); otherwise err says why, prefixed "<name> <endpoint>: "
 * and followed by "(N attempts)" when several ran. resp (required) is
 * always filled: free it with vox_upstream_response_free(). */
int vox_upstream_call(vox_upstream_t *up, const vox_upstream_request_t *req,
                      vox_upstream_response_t *resp, vox_error_t *err);
void vox_upstream_response_free(vox_upstream_response_t *resp);

/* Safe from any thread. */
vox_breaker_state_t vox_upstream_breaker_state(const vox_upstream_t *up);
const char *vox_upstream_name(const vox_upstream_t *up);
/* The base URL without a trailing '/'. */
const char *vox_upstream_base_url(const vox_upstream_t *up);

/* Building blocks for adapters. */

/* The default verdict: 2xx OK, 408/429/5xx RETRY, the rest FINAL. */
vox_upstream_verdict_t vox_upstream_verdict(long status);

/* The error for a status that is not a success, with the provider's
 * reason appended when not "" (see the failure model). Returns the code. */
int vox_upstream_status_error(long status, const char *reason,
                              vox_error_t *err);

/* Percent-encoded text (RFC 3986 unreserved kept); caller frees with
 * free(). NULL on ENOMEM. */
char *vox_upstream_escape(const char *text);

/* 1..max bytes with nothing that could end or split a header line. */
bool vox_upstream_header_safe(const char *text, size_t max);

#endif
