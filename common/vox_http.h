/*
 * vox_http: the HTTP server of the ingress and of every worker's /metrics,
 * over libmicrohttpd's internal epoll thread pool.
 *
 * Routes are a table of {method, pattern, handler}; a pattern segment
 * "{name}" captures that segment (vox_http_param). A handler either replies
 * at once or suspends the connection (no thread is parked) and later, from
 * any thread, calls vox_http_resume() with a continuation that runs on a
 * server thread and replies. Every non-2xx answer uses the error format of
 * DESIGN.md; every answer carries X-Request-Id.
 */
#ifndef VOX_HTTP_H
#define VOX_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vox_error.h"
#include "vox_metrics.h"

typedef struct vox_http vox_http_t;
typedef struct vox_http_req vox_http_req_t;

typedef void (*vox_http_handler_fn)(vox_http_req_t *req, void *ctx);

typedef struct vox_http_route {
	const char *method;
	const char *pattern; /* "/v1/operations/{id}" */
	vox_http_handler_fn fn;
	const char *name; /* metrics label; NULL: the pattern */
	const void *data; /* the application's, e.g. the permission needed */
} vox_http_route_t;

typedef struct vox_http_conf {
	const char *bind; /* IPv4 address, e.g. "127.0.0.1" */
	int port;         /* 0: any free port (see vox_http_port) */
	int threads;      /* thread pool size */
	size_t max_body;  /* bytes; larger bodies get 413 (routes may differ) */
	const vox_http_route_t *routes;
	size_t nroutes;
	void *ctx; /* passed to handlers */
	vox_metrics_t *metrics;
	const char *service; /* for metrics labels */
	/* Optional: a route's own body limit (0: max_body), asked before the
	 * body is read, so one route may take more than the others. */
	size_t (*route_max_body)(const vox_http_route_t *route);
	/* Memory of each connection for its request line, headers and
	 * reply headers (0: libmicrohttpd's 32 KiB); a request whose headers
	 * do not fit is answered 431. Bodies are kept apart from it. */
	size_t conn_memory;
} vox_http_conf_t;

vox_http_t *vox_http_start(const vox_http_conf_t *conf, vox_error_t *err);
int vox_http_port(const vox_http_t *http);
/* Stops accepting, waits up to drain_ms for suspended requests, stops. */
void vox_http_stop(vox_http_t *http, int drain_ms);

const char *vox_http_method(const vox_http_req_t *req);
const char *vox_http_path(const vox_http_req_t *req);
const char *vox_http_param(const vox_http_req_t *req, const char *name);
const char *vox_http_header(const vox_http_req_t *req, const char *name);
const char *vox_http_body(const vox_http_req_t *req, size_t *len);
const char *vox_http_request_id(const vox_http_req_t *req);
/* A query-string argument (already URL-decoded), or NULL. */
const char *vox_http_query(const vox_http_req_t *req, const char *name);
/* The matched route (NULL before routing or when none matched). */
const vox_http_route_t *vox_http_route(const vox_http_req_t *req);

/* The parts of a multipart/form-data (or urlencoded) body, through
 * libmicrohttpd's post processor: fn sees each part in pieces, in order;
 * off is where data starts within the part (0 on its first piece; an
 * empty part may come as one piece of size 0, or not at all). filename
 * and content_type are the part's own (NULL when it has none). fn returns
 * 0 to go on, anything else to stop: vox_http_form then returns that
 * value. VOX_ERR_INVALID when the request's Content-Type is not a form
 * with a boundary or the body is malformed or truncated. */
typedef int (*vox_http_part_fn)(void *arg, const char *name,
                                const char *filename, const char *content_type,
                                uint64_t off, const char *data, size_t size);
int vox_http_form(vox_http_req_t *req, vox_http_part_fn fn, void *arg,
                  vox_error_t *err);

/* Per-request slot for the handler's own state (freed with free_fn). */
void vox_http_set_state(vox_http_req_t *req, void *state,
                        void (*free_fn)(void *));
void *vox_http_state(const vox_http_req_t *req);

/* Replies: body is copied; json is stolen. */
void vox_http_reply(vox_http_req_t *req, int status, const char *content_type,
                    const char *body, size_t len);
void vox_http_reply_json(vox_http_req_t *req, int status, json_t *json);
/* {"error":{"code","message","details","timestamp","requestId"}};
 * details is stolen and may be NULL. */
void vox_http_reply_error(vox_http_req_t *req, int status, const char *code,
                          const char *message, json_t *details);
void vox_http_add_header(vox_http_req_t *req, const char *name,
                         const char *value);

/* A rule every answer of one request must follow, whichever code path
 * answers (the ingress stores or releases an Idempotency-Key claim with
 * it): fn sees the answer as it is set, before it is sent. A request that
 * ends with no answer (client gone while suspended, shutdown) calls it
 * with status 0 and no body. It runs once: it is cleared before the call,
 * so answers it makes itself do not call it again. */
typedef void (*vox_http_reply_hook_fn)(vox_http_req_t *req, int status,
                                       const char *body, size_t len, void *arg);
void vox_http_on_reply(vox_http_req_t *req, vox_http_reply_hook_fn fn,
                       void *arg);

/* A streamed answer (chunked: its length is not known up front), for
 * bodies too large to build in memory (an invoice's usage records as CSV).
 * fn fills buf with up to max bytes (at least 1, blocking if it must) and
 * returns how many; VOX_HTTP_STREAM_END when the body is complete,
 * VOX_HTTP_STREAM_ERROR to cut the connection (the client sees a truncated
 * chunked body, never a complete-looking one). It runs on a server thread.
 * free_fn(arg) runs once when the answer is done or abandoned. */
#define VOX_HTTP_STREAM_END   (-1)
#define VOX_HTTP_STREAM_ERROR (-2)
typedef long (*vox_http_stream_fn)(void *arg, uint64_t pos, char *buf,
                                   size_t max);
void vox_http_reply_stream(vox_http_req_t *req, int status,
                           const char *content_type, vox_http_stream_fn fn,
                           void *arg, void (*free_fn)(void *));

/* Parks the connection; the handler returns without replying. */
void vox_http_suspend(vox_http_req_t *req);
/* From any thread: then(req, ctx) runs on a server thread and replies. */
void vox_http_resume(vox_http_req_t *req, vox_http_handler_fn then);

#endif
