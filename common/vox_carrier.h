/*
 * vox_carrier: the adapter to the number carrier, a Telnyx v2-like HTTP API
 * (docs/CARRIER_SANDBOX.md): search, order, configure and release numbers.
 * It is a user of vox_upstream (upstream name "carrier"), which does the
 * HTTP, the retries, the Retry-After, the circuit breaker and the metrics.
 *
 * Failures that may pass (no connection, timeout, HTTP 408/429/5xx) are
 * retried inside a call with exponential backoff and full jitter, up to
 * max_attempts; a Retry-After (429, 503) is honoured when it is at most
 * 5 s, else the call stops there. What is still failing after that is
 * returned retriable (VOX_ERR_UNAVAILABLE, VOX_ERR_TIMEOUT or
 * VOX_ERR_LIMIT) for the caller to decide. Other 4xx are never retried:
 * VOX_ERR_INVALID (400, 422 and the rest) with the carrier's detail,
 * VOX_ERR_NOT_FOUND (404), VOX_ERR_CONFLICT (409); 401/403 are fatal (our
 * API key is wrong: nothing will work until it is fixed).
 *
 * A circuit breaker stops calling a carrier that keeps failing: after
 * breaker_failures consecutive calls failed retriably it opens, and calls
 * fail at once with VOX_ERR_UNAVAILABLE "carrier circuit open" (retriable)
 * without a request. After breaker_cooldown_ms one trial call (one attempt)
 * goes through: success closes it, failure opens it again. Any answer from
 * the carrier, 4xx included, counts as success: the carrier is up.
 *
 * Files: vox_carrier.c (the handle), vox_carrier_search.c,
 * vox_carrier_order.c, vox_carrier_number.c (configure, release),
 * vox_carrier_settings.c (versioned call forwarding),
 * vox_carrier_errors.c (the carrier's error bodies), vox_carrier_money.c,
 * vox_carrier_port.c (porting: vox_carrier_port.h).
 *
 * Threads: a vox_carrier_t may be shared by threads (vox_upstream keeps
 * one curl easy handle per running call and the breaker in atomics); one
 * breaker then watches the carrier for all of them.
 */
#ifndef VOX_CARRIER_H
#define VOX_CARRIER_H

#include <stdbool.h>
#include <stddef.h>

#include "vox_error.h"
#include "vox_metrics.h"
#include "vox_upstream.h"

/* Most numbers one order may carry. */
#define VOX_CARRIER_ORDER_MAX 100

typedef struct vox_carrier vox_carrier_t;

/* 0 (or unset) picks the default of each number. */
typedef struct vox_carrier_conf {
	const char *base_url; /* VOX_CARRIER_URL, http://127.0.0.1:27080 */
	const char *api_key;  /* sent as "Authorization: Bearer <key>" */
	int timeout_ms; /* per attempt (3000), of which 1000 at most to connect
	                 */
	int max_attempts; /* per call, 1..10 (3) */
	int backoff_ms; /* first retry delay, doubled each time, full jitter */
	int breaker_failures;    /* consecutive failed calls that open (5) */
	int breaker_cooldown_ms; /* open this long, then one trial (5000) */
	/* optional; borrowed, must outlive the handle: the vox_upstream_*
	 * series with upstream="carrier" (vox_upstream.h), endpoint one of
	 * search, order, order_status, configure, release, voice, and for
	 * porting portability, port_create, port_update, port_cancel,
	 * port_get */
	vox_metrics_t *metrics;
	int order_wait_ms; /* an order left pending is polled this long (10000)
	                    */
} vox_carrier_conf_t;

#define VOX_CARRIER_VOICE (1u << 0)
#define VOX_CARRIER_SMS   (1u << 1)
#define VOX_CARRIER_MMS   (1u << 2)

typedef struct vox_carrier_number {
	char e164[24];
	char type[16];     /* as the carrier says: "local", "toll_free"... */
	char region[3];    /* ISO alpha-2 */
	char city[96];     /* "" when not given; UTF-8, cut to fit */
	char state[64];    /* "CA"; outside US/CA the carrier's region text */
	unsigned features; /* VOX_CARRIER_VOICE | VOX_CARRIER_SMS | ... */
	long long upfront_micros, monthly_micros; /* 1.00 = 1000000 */
	char currency[4];                         /* "USD" */
} vox_carrier_number_t;

/* Every member optional (NULL/"" or 0). type: "local", "mobile" or
 * "toll_free". limit: at most max of vox_carrier_search(), which is also
 * the default, and at most 250 (the carrier's page). */
typedef struct vox_carrier_query {
	const char *country;     /* "US" */
	const char *area_code;   /* national destination code "415" */
	const char *contains;    /* digits anywhere in the number */
	const char *starts_with; /* "+1415" */
	const char *ends_with;   /* "0123" */
	const char *city;        /* locality "San Francisco" */
	const char *region;      /* administrative area "CA" */
	const char *type;
	unsigned features; /* all of these */
	int limit;
} vox_carrier_query_t;

typedef struct vox_carrier_order_result {
	char e164[24];
	bool ok;
	char carrier_id[64]; /* on success */
	char error[160];     /* otherwise: the carrier's reason */
} vox_carrier_order_result_t;

/* Checks conf (strings are copied; metrics is borrowed) and prepares the
 * handle; nothing is sent. NULL with err filled (VOX_ERR_INVALID, not
 * retriable) on a bad conf. */
vox_carrier_t *vox_carrier_new(const vox_carrier_conf_t *conf,
                               vox_error_t *err);
void vox_carrier_destroy(vox_carrier_t *c);

/* Available numbers matching q into out[max]; *count gets how many. */
int vox_carrier_search(vox_carrier_t *c, const vox_carrier_query_t *q,
                       vox_carrier_number_t *out, int max, int *count,
                       vox_error_t *err);

/* Orders the n (1..VOX_CARRIER_ORDER_MAX) numbers e164s in one order.
 * idempotency_key (required; the same for every attempt of the same
 * purchase: the provisioning worker passes the reservation id) is
 * sent as the Idempotency-Key header and the order's customer_reference,
 * so retries never order twice: the carrier answers a repeated key with
 * the first order. An order the carrier leaves pending is polled (GET
 * /v2/number_orders/{id}) for up to order_wait_ms, then VOX_ERR_TIMEOUT,
 * retriable. Returns 0 when the order is settled; then results[i] (for
 * e164s[i]) says ok with the carrier's id, or the carrier's reason in
 * error (a number taken or unknown is final: do not retry it). */
int vox_carrier_order(vox_carrier_t *c, const char *const *e164s, int n,
                      const char *idempotency_key,
                      vox_carrier_order_result_t *results, vox_error_t *err);

/* Activates (or disables) the number and sets forwarding of every call to
 * forward_to (E.164), or none when forward_to is NULL (forwarding off, the
 * target cleared). A bad forward_to is VOX_ERR_INVALID with the carrier's
 * detail. Idempotent. */
int vox_carrier_configure(vox_carrier_t *c, const char *carrier_id, bool active,
                          const char *forward_to, vox_error_t *err);

/* Gives the number back. A 404 on a retry after an attempt that may have
 * landed (timeout, 5xx) means that one did: 0. A 404 on the first attempt
 * is VOX_ERR_NOT_FOUND (an unknown id, or released before: callers
 * releasing treat it as done too). */
int vox_carrier_release(vox_carrier_t *c, const char *carrier_id,
                        vox_error_t *err);

/* A number's call forwarding as the carrier's voice settings. */
typedef struct vox_carrier_forwarding {
	bool enabled;
	const char *forwards_to; /* E.164 or sip: URI; required if enabled */
	bool on_failure; /* forwarding_type "on_failure", else "always" */
} vox_carrier_forwarding_t;

/* Pushes fwd as version (>= 1) of the number's settings (PATCH
 * /v2/phone_numbers/{carrier_id}/voice, Idempotency-Key
 * "<number_id>:<version>"), retried like every call. Returns 0 when the
 * carrier holds version or a newer one: the carrier refuses a version
 * older than its own (409), which is done for us, never an error. Then
 * *carrier_version is the version the carrier holds (>= version). On
 * failure *carrier_version is -1 and err says why (retriable when the
 * carrier is down). */
int vox_carrier_push_forwarding(vox_carrier_t *c, const char *carrier_id,
                                const char *number_id, int version,
                                const vox_carrier_forwarding_t *fwd,
                                long long *carrier_version, vox_error_t *err);

/* Safe from any thread. */
vox_breaker_state_t vox_carrier_breaker_state(const vox_carrier_t *c);

/* Building blocks, exposed for tests (tests/unit/test_carrier.c). */

/* Exact decimal money ("1.00", "0.5", "12", "-0.25") to micros
 * (1000000 = 1.00), no floating point. VOX_ERR_INVALID for anything else:
 * empty, spaces, "+1", "1.", ".5", "1e3", more than 6 decimals that are
 * not zeros, overflow. */
int vox_carrier_money_parse(const char *text, long long *micros);

/* The search URL for q (values escaped); caller frees with free(). NULL
 * with VOX_ERR_INVALID for a bad query (unknown type, negative limit, a
 * value longer than 64 bytes). */
char *vox_carrier_search_url(vox_carrier_t *c, const vox_carrier_query_t *q,
                             int max, vox_error_t *err);

/* A search answer's body into out[max]. Items the carrier sent malformed
 * (no E.164 number, bad money...) are skipped with a warning. An
 * unreadable body is VOX_ERR_UNAVAILABLE, retriable. */
int vox_carrier_parse_search(const char *body, size_t len,
                             vox_carrier_number_t *out, int max, int *count,
                             vox_error_t *err);

/* An order answer's body into results[n] for e164s[n]: numbers missing
 * from the answer are not ok. */
int vox_carrier_parse_order(const char *body, size_t len,
                            const char *const *e164s, int n,
                            vox_carrier_order_result_t *results,
                            vox_error_t *err);

/* The error for a non-2xx answer (status, body with {"errors":[...]}):
 * see the mapping at the top. Returns the code. */
int vox_carrier_http_error(long status, const char *body, size_t len,
                           vox_error_t *err);

#endif
