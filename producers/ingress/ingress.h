/*
 * ingress: the front door. It authenticates, validates, publishes and
 * answers; commands are answered 202 only after Kafka acknowledged them and
 * their "accepted" row is committed, so GET /v1/operations/{id} never
 * answers 404 for an accepted command.
 *
 * Modules: auth.c (API keys, JWTs, the credential cache), limits.c (rate
 * limits in Redis with a local fallback), idem.c and idem_hash.c
 * (Idempotency-Key), writer.c (accepted rows, batched), listener.c
 * (LISTEN: cache invalidation and Prefer: wait), commands.c, resources.c,
 * lifecycle.c, config.c (number configuration), usage.c, cdrs.c and
 * carrier_auth.c, routing.c and routing_api.c (call routing), health.c,
 * webhooks.c and webhook_deliveries.c (customer webhook endpoints),
 * sms_status.c (the SMS provider's delivery receipts), documents.c
 * (uploaded documents in the S3-compatible store), and the
 * number search (search.h: search.c, search_cache.c, search_flight.c,
 * pool_refill.c).
 */
#ifndef INGRESS_H
#define INGRESS_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "vox_auth.h"
#include "vox_http.h"
#include "vox_kafka.h"
#include "vox_metrics.h"
#include "vox_pg.h"
#include "vox_uuid.h"
#include "vox_whsig.h"

struct ingress_cfg {
	const char *bind, *pg_url, *redis_url, *brokers, *log_level;
	const char *jwt_alg, *jwt_secret, *jwt_key_file, *jwt_issuer;
	const char *jwt_audience, *openapi_file, *dashboard_dir;
	const char *carrier_url, *carrier_key;
	long port, threads, max_body, pg_pool, kafka_timeout_ms, linger_ms;
	long jwt_leeway_s, rate_read, rate_command, rate_search;
	long max_wait_s;
	long rate_route;  /* POST /v1/carrier/calls/route, per carrier key */
	long rate_lease;  /* most tokens leased from Redis at once */
	long conn_memory; /* per connection, for libmicrohttpd */
	long test_clock_skew_s; /* tests only: moves idempotency's "now" */
	const char *encryption_key, *encryption_old_keys;
	bool bench_routes;
	const char *webhook_allow_cidrs; /* vox_ssrf's allowlist */
	/* Documents (documents.c): the S3-compatible store, the size cap. */
	const char *s3_endpoint, *s3_region, *s3_bucket;
	const char *s3_access_key, *s3_secret_key;
	long document_max_bytes;
	/* SMS receipts (sms_status.c); callback URL "": ours on 127.0.0.1 */
	const char *sms_callback_url, *sms_auth_token, *sms_account_sid;
	/* The payment gateway's webhook signing secret (gateway_events.c). */
	const char *payment_webhook_secret;
};

struct key_cache;
struct carrier_keys;
struct limiter;
struct accept_writer;
struct listener;
struct vox_crypto_keyring;
struct routing_table;
struct vox_ssrf;
struct documents;

typedef struct ingress {
	const struct ingress_cfg *cfg;
	vox_pg_pool_t *pg_pool;
	vox_producer_t *producer;
	vox_metrics_t *metrics;
	vox_jwt_conf_t jwt;
	char *jwt_key; /* owned: secret or PEM */
	bool jwt_enabled;
	struct key_cache *keys;
	/* Carrier credentials (carrier_keys.h), kept by the listener. */
	struct carrier_keys *carrier_keys;
	struct limiter *limiter;
	struct accept_writer *writer;
	struct listener *listener;
	vox_counter_t *accepted, *refused, *auth_failed, *limited;
	vox_counter_t *idem_hits;
	vox_counter_t *cdrs_accepted, *cdrs_rejected, *cdrs_refused;
	vox_counter_t *routes_decided;
	/* Routing decisions from memory (routing.h), kept by the listener. */
	struct routing_table *routing;
	/* Seals stored answers that carry secrets; NULL: none configured
	 * (such answers are stored without the secret, idem.c). */
	struct vox_crypto_keyring *keyring;
	char *openapi; /* schemas/openapi.yaml as served */
	size_t openapi_len;
	/* The web dashboard's files (dashboard.c). */
	struct dashboard *dashboard;
	/* Where customer URLs may point (VOX_WEBHOOK_ALLOW_CIDRS). */
	struct vox_ssrf *ssrf;
	/* The document store and content check (documents.c). */
	struct documents *documents;
	/* The URL the SMS provider signs its receipts over. */
	char sms_callback_url[2100];
} ingress_t;

/* What a route needs (vox_http_route_t.data points at one of these). */
typedef struct route_rule {
	unsigned perms;          /* VOX_PERM_*; 0: no authentication at all */
	const char *limit_class; /* "read", "command", "search" */
	size_t max_body;         /* 0: VOX_MAX_BODY_BYTES */
	/* Fields of a 2xx answer that are secrets shown once (NULL
	 * terminated; NULL: none): such an answer is stored for its
	 * Idempotency-Key only sealed, never in plaintext (idem.c). */
	const char *const *secret_fields;
} route_rule_t;

/* POST /v1/carrier/cdrs takes up to 10,000 records: its body cap is
 * larger than VOX_MAX_BODY_BYTES (docs/CARRIER_CDRS.md). */
#define INGRESS_CDR_MAX_BODY (8u * 1024 * 1024)

/* Per-request state, owned by the request (freed with it). */
typedef struct ingress_req {
	ingress_t *in;
	vox_principal_t who;
	char op_id[VOX_UUID_STRLEN];
	char accepted_at[40];
	char subject[96];
	const char *kind;
	bool failed;
	vox_error_t err;
	int wait_s;      /* Prefer: wait=N, 0 if none */
	bool holds_idem; /* an Idempotency-Key row awaits this answer */
	char idem_key[256];
	char idem_claimed_at[48]; /* our claim's created_at, as PostgreSQL
	                           * wrote it */
	const char *const *secret_fields; /* the route's (route_rule_t) */
	/* The body holds a secret (a porting PIN): its Idempotency-Key
	 * request hash is keyed (vox_crypto_mac_hex), as a plain SHA-256 of
	 * a body whose other fields the stored answer shows gives a short
	 * secret away to whoever reads the table. */
	bool body_has_secret;
} ingress_req_t;

/* Authenticates, checks the route's permission and rate limit. Returns the
 * request's state, or NULL when it already answered (401/403/429/...). */
ingress_req_t *ingress_begin(vox_http_req_t *req, ingress_t *in);

/* A pooled connection, or NULL after answering 503. Release it with
 * vox_pg_pool_release(in->pg_pool, pg). */
vox_pg_t *ingress_pg(ingress_t *in, vox_http_req_t *req);

/* One prepared statement on a pooled connection: the result (PQclear it),
 * or NULL after answering 503 database_unavailable. */
PGresult *ingress_query(ingress_t *in, vox_http_req_t *req, const char *name,
                        const char *sql, int nparams,
                        const char *const *params);

/* The request body as a JSON object with only the allowed keys (NULL
 * terminated). An empty body gives {} when optional. NULL after answering
 * 400/415. */
json_t *ingress_body(vox_http_req_t *req, const char *const *allowed,
                     bool optional);

/* An error answer in the DESIGN.md format. details is stolen. */
void ingress_error(vox_http_req_t *req, int status, const char *code,
                   const char *message, json_t *details);

/* 400 invalid_parameter for query parameter name ("name: why");
 * returns false, for `return ingress_bad_param(...)`. */
bool ingress_bad_param(vox_http_req_t *req, const char *name, const char *why);

/* search.c: one number as JSON from columns id, e164, country, area_code,
 * city, region, number_type, features (JSON text), setup_fee_micros,
 * monthly_rate_micros, currency (0..10). */
json_t *ingress_number_json(const PGresult *res, int i);

/* resources.c: lists. limit (1..100, default 20; written as limit + 1 to
 * learn whether there is a next page) and cursor (an id) from the query
 * string; false after answering 400. */
bool ingress_page_args(vox_http_req_t *req, char *limit, size_t limitlen,
                       const char **cursor);
/* {data:[...], next_cursor} from rows whose first column is the id. */
json_t *ingress_page(const PGresult *res, long limit,
                     json_t *(*row_fn)(const PGresult *res, int row));

/* Counts the request against credential's limit_class at rate_per_s and
 * sets the RateLimit-* headers: true, or false after answering 429. */
bool ingress_rate_limit(vox_http_req_t *req, ingress_t *in,
                        const char *credential, const char *limit_class,
                        long rate_per_s);

/* lifecycle.c: the first row of sql ($1 = id, $2 = the caller's account),
 * or NULL after answering 404 nf_code (also for an id that is not a UUID)
 * or 503. PQclear it. */
PGresult *ingress_lookup(vox_http_req_t *req, ingress_req_t *ir,
                         const char *name, const char *sql, const char *id,
                         const char *nf_code, const char *what);
/* 409 invalid_state with details.current_status. */
void ingress_conflict(vox_http_req_t *req, const char *what,
                      const char *status);

/* RateLimit-* (and Retry-After when refused) from a limiter answer. */
struct limit_result;
void ingress_rate_headers(vox_http_req_t *req, const struct limit_result *r);
/* The headers and, when refused, the 429 of a limiter answer for
 * limit_class: true when allowed. */
bool ingress_rate_answer(vox_http_req_t *req, ingress_t *in,
                         const char *limit_class,
                         const struct limit_result *limit);

/* Answers json (stolen); an error object gets its timestamp and
 * requestId. Like every answer, it settles the request's Idempotency-Key
 * claim (idem.c). */
void ingress_reply(vox_http_req_t *req, int status, json_t *json);

/* auth.c */
struct key_cache *key_cache_new(void);
void key_cache_destroy(struct key_cache *cache);
void key_cache_forget(struct key_cache *cache, const char *hash_hex);
/* account NULL: forget everything. */
void key_cache_forget_account(struct key_cache *cache, const char *account);
/* 0, or an HTTP status (401/403/503) with code and message filled. */
int auth_authenticate(ingress_t *in, const char *authorization,
                      vox_principal_t *who, const char **code, char *message,
                      size_t msglen);

/* limits.c */
struct limit_result {
	bool allowed;
	long limit, remaining, reset_s, retry_after_s;
};
struct limiter *limiter_new(const char *redis_url, long lease_max,
                            vox_metrics_t *metrics);
void limiter_destroy(struct limiter *lim);
/* PING on this thread's connection (readiness). */
int limiter_ping(struct limiter *lim, vox_error_t *err);
void limiter_check(struct limiter *lim, const char *credential,
                   const char *limit_class, long rate_per_s,
                   struct limit_result *out);
/* The same check through Redis only, and in the same round trip, when
 * allowed, SET once_key NX EX once_ttl_s: *fresh false when once_key was
 * already set (a replay; also false when not allowed, then nothing is
 * set). VOX_ERR_UNAVAILABLE when Redis does not answer (or failed within
 * the last second): no local fallback, a once-key needs the shared store. */
int limiter_check_once(struct limiter *lim, const char *credential,
                       const char *limit_class, long rate_per_s,
                       const char *once_key, long once_ttl_s,
                       struct limit_result *out, bool *fresh);

/* idem.c: Idempotency-Key. Returns true when the request may go on (no
 * key, or a fresh one now held); false when it already answered (replay,
 * 409, 422, 400, 503). A held key is settled by the request's answer,
 * whichever code path gives it (a vox_http reply hook). */
bool idem_begin(vox_http_req_t *req, ingress_req_t *ir);
/* Settles the held key now with this answer instead of the one the request
 * will send: stores 2xx/4xx (sealed when it carries a secret), releases
 * 5xx, 429 and status 0 (no answer). Does nothing without a held key. */
void idem_finish(ingress_req_t *ir, int status, const char *body, size_t len);
/* SHA-256 (hex) over method, path and the body as canonical JSON (sorted
 * keys, no whitespace), or the raw body when it is not JSON. */
void idem_request_hash(const char *method, const char *path, const char *body,
                       size_t body_len, char out[65]);

/* writer.c: records "accepted" for commands in batches. */
struct accept_writer *accept_writer_new(const char *pg_url,
                                        vox_metrics_t *metrics);
/* Connects the writer's PostgreSQL connection (before listening). */
int accept_writer_warm(struct accept_writer *w, vox_error_t *err);
void accept_writer_destroy(struct accept_writer *w);
/* Queues the row; then(req) runs on a server thread once it is committed
 * (or failed: logged; Kafka has the command regardless). */
void accept_writer_submit(struct accept_writer *w, vox_http_req_t *req,
                          ingress_req_t *ir, vox_http_handler_fn then);

/* listener.c: LISTEN vox_keys / vox_accounts / vox_carriers / vox_ops /
 * vox_routing. */
struct listener *listener_new(ingress_t *in);
void listener_destroy(struct listener *l);
/* Parks req until operation ir->op_id finishes or ir->wait_s passes; then
 * resumes it with then. */
void listener_wait_for(struct listener *l, vox_http_req_t *req,
                       ingress_req_t *ir, vox_http_handler_fn then);

/* Publishes a command (data stolen; its operation_id is added) of type to
 * topic keyed by key (NULL: the operation id) and answers 202 later; set
 * ir->kind first. The caller has validated and taken the Idempotency-Key. */
void ingress_command(vox_http_req_t *req, ingress_req_t *ir, const char *topic,
                     const char *type, const char *key, json_t *data);

/* webhooks.c: customer URLs and their signing secrets, for webhook
 * endpoints and usage triggers' callbacks. */
/* http:// or https:// (lower case), 1..2048 printable ASCII characters:
 * the shape of a customer URL, before the destination filter. */
bool ingress_url_shape_ok(const char *url);
/* Whether url may be a destination (vox_ssrf; a name that does not resolve
 * passes, it is checked again at delivery): true, or false after answering
 * 400 invalid_body naming field and the reason. */
bool ingress_url_allowed(vox_http_req_t *req, ingress_t *in, const char *field,
                         const char *url);
/* A new whsec_ secret and its sealed form (vox_crypto_seal_hex), bound to
 * the row aad names ("webhook_endpoints/<id>", "usage_triggers/<id>"; the
 * notifications worker opens with the same). 0, or -1 after answering
 * (503 secret_storage_unavailable without a keyring, 500). */
int ingress_secret_make(vox_http_req_t *req, ingress_t *in, const char *aad,
                        char secret[VOX_WHSIG_SECRET_MAX], char **sealed_hex);
void ingress_endpoint_aad(const char *id, char *out, size_t outlen);
/* An endpoint as answered (never its secret), from the columns id, url,
 * events (JSON text), description, enabled, disabled_reason, created_at,
 * updated_at. */
json_t *ingress_endpoint_row(const PGresult *res, int i);
/* The caller's endpoint {id} (not deleted) in those columns, or NULL after
 * answering 404 webhook_endpoint_not_found or 503. PQclear it. */
PGresult *ingress_endpoint_lookup(vox_http_req_t *req, ingress_req_t *ir);

/* limits.c: this thread's Redis connection (search cache), or NULL. */
struct vox_redis *limiter_redis(struct limiter *lim);
bool limiter_redis_usable(struct limiter *lim);
void limiter_redis_failed(struct limiter *lim);

/* Route handlers. */
void ingress_canary(vox_http_req_t *req, void *ctx);
void ingress_operation_get(vox_http_req_t *req, void *ctx);
void ingress_operation_list(vox_http_req_t *req, void *ctx);
void ingress_key_create(vox_http_req_t *req, void *ctx);
void ingress_key_list(vox_http_req_t *req, void *ctx);
void ingress_key_get(vox_http_req_t *req, void *ctx);
void ingress_key_revoke(vox_http_req_t *req, void *ctx);
void ingress_account_get(vox_http_req_t *req, void *ctx);
void ingress_openapi(vox_http_req_t *req, void *ctx);

/* dashboard.c: the web dashboard's files, read once from dir (a missing
 * dir is logged; its pages then answer 503). */
typedef struct dashboard dashboard_t;
dashboard_t *dashboard_load(const char *dir);
void dashboard_free(dashboard_t *d);
void ingress_dashboard_index(vox_http_req_t *req, void *ctx);
void ingress_dashboard_file(vox_http_req_t *req, void *ctx);
void ingress_healthz(vox_http_req_t *req, void *ctx);
void ingress_readyz(vox_http_req_t *req, void *ctx);
void ingress_metrics(vox_http_req_t *req, void *ctx);
void ingress_bench_static(vox_http_req_t *req, void *ctx);
void ingress_numbers_search(vox_http_req_t *req, void *ctx);
void ingress_reservation_create(vox_http_req_t *req, void *ctx);
void ingress_reservation_extend(vox_http_req_t *req, void *ctx);
void ingress_reservation_get(vox_http_req_t *req, void *ctx);
void ingress_order_create(vox_http_req_t *req, void *ctx);
void ingress_order_get(vox_http_req_t *req, void *ctx);
void ingress_number_list(vox_http_req_t *req, void *ctx);
void ingress_number_get(vox_http_req_t *req, void *ctx);
void ingress_number_activate(vox_http_req_t *req, void *ctx);
void ingress_number_deactivate(vox_http_req_t *req, void *ctx);
void ingress_number_release(vox_http_req_t *req, void *ctx);
void ingress_cdr_push(vox_http_req_t *req, void *ctx);
void ingress_call_route(vox_http_req_t *req, void *ctx);
void ingress_hours_preview(vox_http_req_t *req, void *ctx);
void ingress_usage_get(vox_http_req_t *req, void *ctx);
void ingress_trigger_create(vox_http_req_t *req, void *ctx);
void ingress_trigger_list(vox_http_req_t *req, void *ctx);
void ingress_trigger_get(vox_http_req_t *req, void *ctx);
void ingress_trigger_delete(vox_http_req_t *req, void *ctx);
void ingress_endpoint_create(vox_http_req_t *req, void *ctx);
void ingress_endpoint_list(vox_http_req_t *req, void *ctx);
void ingress_endpoint_get(vox_http_req_t *req, void *ctx);
void ingress_endpoint_update(vox_http_req_t *req, void *ctx);
void ingress_endpoint_delete(vox_http_req_t *req, void *ctx);
void ingress_endpoint_rotate(vox_http_req_t *req, void *ctx);
void ingress_endpoint_test(vox_http_req_t *req, void *ctx);
void ingress_endpoint_attempts(vox_http_req_t *req, void *ctx);
void ingress_endpoint_recover(vox_http_req_t *req, void *ctx);
void ingress_endpoint_resend(vox_http_req_t *req, void *ctx);
void ingress_sms_status(vox_http_req_t *req, void *ctx);
/* config.c: PUT/GET of a number's routing, business-hours and voicemail
 * (the section is the route's), its versions, notification preferences. */
void ingress_config_put(vox_http_req_t *req, void *ctx);
void ingress_config_get(vox_http_req_t *req, void *ctx);
void ingress_config_versions(vox_http_req_t *req, void *ctx);
void ingress_preferences_put(vox_http_req_t *req, void *ctx);
void ingress_preferences_get(vox_http_req_t *req, void *ctx);

/* documents.c: POST /v1/documents (multipart), GET /v1/documents/{id} and
 * /v1/documents/{id}/content (docs/PORTING.md "Documents"). The upload
 * route's body cap is VOX_DOCUMENT_MAX_BYTES plus this much for the
 * multipart framing (boundaries, part headers, the kind part). */
#define INGRESS_DOCUMENT_FORM_OVERHEAD (64u * 1024)
/* The store (NULL without S3 credentials: the routes answer 503) and
 * libmagic; NULL with err when the configuration is bad or libmagic has
 * no database. */
struct documents *documents_new(const struct ingress_cfg *cfg,
                                vox_error_t *err);
void documents_destroy(struct documents *d);
void ingress_document_create(vox_http_req_t *req, void *ctx);
void ingress_document_get(vox_http_req_t *req, void *ctx);
void ingress_document_content(vox_http_req_t *req, void *ctx);
/* porting.c, porting_actions.c, porting_check.c, porting_events.c:
 * porting orders (docs/PORTING.md; shared helpers in porting.h). */
void ingress_porting_check(vox_http_req_t *req, void *ctx);
void ingress_porting_create(vox_http_req_t *req, void *ctx);
void ingress_porting_list(vox_http_req_t *req, void *ctx);
void ingress_porting_get(vox_http_req_t *req, void *ctx);
void ingress_porting_update(vox_http_req_t *req, void *ctx);
void ingress_porting_submit(vox_http_req_t *req, void *ctx);
void ingress_porting_cancel(vox_http_req_t *req, void *ctx);
void ingress_porting_events(vox_http_req_t *req, void *ctx);
void ingress_porting_windows(vox_http_req_t *req, void *ctx);
void ingress_porting_carrier_event(vox_http_req_t *req, void *ctx);

#endif
