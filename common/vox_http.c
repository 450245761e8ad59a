/* vox_http: routing, bodies, async replies and errors over libmicrohttpd. */
#include "vox_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vox_buf.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_time.h"
#include "vox_uuid.h"

#define HTTP_MAX_PARAMS  4
#define HTTP_MAX_HEADERS 8

struct vox_http {
	struct MHD_Daemon *daemon;
	vox_http_conf_t conf;
	atomic_int suspended;
	int port;
};

struct vox_http_req {
	vox_http_t *http;
	struct MHD_Connection *conn;
	const char *method, *path;
	char request_id[VOX_UUID_STRLEN + 96];
	char *body;
	size_t len, cap, max_body;
	bool too_large, dispatched, suspended;
	vox_http_handler_fn then;
	const vox_http_route_t *route;
	char *param_names[HTTP_MAX_PARAMS], *param_values[HTTP_MAX_PARAMS];
	int nparams;
	char *hdr_names[HTTP_MAX_HEADERS], *hdr_values[HTTP_MAX_HEADERS];
	int nheaders;
	struct MHD_Response *response;
	int status;
	void *state;
	void (*free_state)(void *);
	vox_http_reply_hook_fn on_reply;
	void *on_reply_arg;
	double started; /* vox_mono_seconds() when it arrived */
};

const char *vox_http_method(const vox_http_req_t *req)
{
	return req->method;
}

const char *vox_http_path(const vox_http_req_t *req)
{
	return req->path;
}

const char *vox_http_request_id(const vox_http_req_t *req)
{
	return req->request_id;
}

const char *vox_http_param(const vox_http_req_t *req, const char *name)
{
	for (int i = 0; i < req->nparams; i++)
		if (strcmp(req->param_names[i], name) == 0)
			return req->param_values[i];
	return NULL;
}

const char *vox_http_header(const vox_http_req_t *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *vox_http_query(const vox_http_req_t *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
	                                   name);
}

const vox_http_route_t *vox_http_route(const vox_http_req_t *req)
{
	return req->route;
}

const char *vox_http_body(const vox_http_req_t *req, size_t *len)
{
	*len = req->len;
	return req->body ? req->body : "";
}

struct http_form {
	vox_http_part_fn fn;
	void *arg;
	int stopped; /* fn's nonzero answer */
};

static enum MHD_Result http_form_piece(void *cls, enum MHD_ValueKind kind,
                                       const char *key, const char *filename,
                                       const char *content_type,
                                       const char *transfer_encoding,
                                       const char *data, uint64_t off,
                                       size_t size)
{
	struct http_form *form = cls;

	(void)kind;
	(void)transfer_encoding;
	if (form->stopped != 0)
		return MHD_NO;
	form->stopped = form->fn(form->arg, key, filename, content_type, off,
	                         data, size);
	return form->stopped == 0 ? MHD_YES : MHD_NO;
}

int vox_http_form(vox_http_req_t *req, vox_http_part_fn fn, void *arg,
                  vox_error_t *err)
{
	struct http_form form = {fn, arg, 0};
	struct MHD_PostProcessor *pp;
	enum MHD_Result parsed = MHD_YES, complete;

	/* 16 KiB: a part's header lines must fit (a 255-byte filename and
	 * its quoting with room to spare); data streams through. */
	pp = MHD_create_post_processor(req->conn, 16 * 1024, http_form_piece,
	                               &form);
	if (pp == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "the body is not multipart/form-data with "
		                     "a boundary");
	if (req->len > 0)
		parsed = MHD_post_process(pp, req->body, req->len);
	/* Flushes the last piece; MHD_NO when the body ended mid-part. */
	complete = MHD_destroy_post_processor(pp);
	if (form.stopped != 0)
		return form.stopped;
	if (parsed != MHD_YES || complete != MHD_YES)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "the multipart body is malformed or "
		                     "truncated");
	return 0;
}

void vox_http_set_state(vox_http_req_t *req, void *state,
                        void (*free_fn)(void *))
{
	req->state = state;
	req->free_state = free_fn;
}

void *vox_http_state(const vox_http_req_t *req)
{
	return req->state;
}

void vox_http_add_header(vox_http_req_t *req, const char *name,
                         const char *value)
{
	if (req->nheaders == HTTP_MAX_HEADERS)
		return;
	req->hdr_names[req->nheaders] = strdup(name);
	req->hdr_values[req->nheaders] = strdup(value);
	req->nheaders++;
}

void vox_http_on_reply(vox_http_req_t *req, vox_http_reply_hook_fn fn,
                       void *arg)
{
	req->on_reply = fn;
	req->on_reply_arg = arg;
}

static void http_reply_hook(vox_http_req_t *req, int status, const char *body,
                            size_t len)
{
	vox_http_reply_hook_fn fn = req->on_reply;

	if (fn == NULL)
		return;
	req->on_reply = NULL;
	fn(req, status, body, len, req->on_reply_arg);
}

void vox_http_reply(vox_http_req_t *req, int status, const char *content_type,
                    const char *body, size_t len)
{
	struct MHD_Response *resp;

	http_reply_hook(req, status, body, len);
	resp = MHD_create_response_from_buffer(len, (void *)body,
	                                       MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        content_type);
	MHD_add_response_header(resp, "X-Request-Id", req->request_id);
	for (int i = 0; i < req->nheaders; i++)
		if (req->hdr_names[i] && req->hdr_values[i])
			MHD_add_response_header(resp, req->hdr_names[i],
			                        req->hdr_values[i]);
	if (req->response != NULL)
		MHD_destroy_response(req->response);
	req->response = resp;
	req->status = status;
}

struct http_stream {
	vox_http_stream_fn fn;
	void *arg;
	void (*free_fn)(void *);
};

static ssize_t http_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_stream *st = cls;
	long n = st->fn(st->arg, pos, buf, max);

	if (n == VOX_HTTP_STREAM_END)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n <= 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return (ssize_t)n;
}

static void http_stream_free(void *cls)
{
	struct http_stream *st = cls;

	if (st->free_fn != NULL)
		st->free_fn(st->arg);
	free(st);
}

void vox_http_reply_stream(vox_http_req_t *req, int status,
                           const char *content_type, vox_http_stream_fn fn,
                           void *arg, void (*free_fn)(void *))
{
	struct http_stream *st = malloc(sizeof(*st));
	struct MHD_Response *resp = NULL;

	http_reply_hook(req, status, NULL, 0);
	if (st != NULL) {
		st->fn = fn;
		st->arg = arg;
		st->free_fn = free_fn;
		resp = MHD_create_response_from_callback(
		        MHD_SIZE_UNKNOWN, 64 * 1024, http_stream_read, st,
		        http_stream_free);
	}
	if (resp == NULL) {
		free(st);
		if (free_fn != NULL)
			free_fn(arg);
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        content_type);
	MHD_add_response_header(resp, "X-Request-Id", req->request_id);
	for (int i = 0; i < req->nheaders; i++)
		if (req->hdr_names[i] && req->hdr_values[i])
			MHD_add_response_header(resp, req->hdr_names[i],
			                        req->hdr_values[i]);
	if (req->response != NULL)
		MHD_destroy_response(req->response);
	req->response = resp;
	req->status = status;
}

void vox_http_reply_json(vox_http_req_t *req, int status, json_t *json)
{
	char *text = vox_json_dump(json);

	json_decref(json);
	if (text == NULL) {
		vox_http_reply(req, 500, "application/json", "{}", 2);
		return;
	}
	vox_http_reply(req, status, "application/json", text, strlen(text));
	free(text);
}

void vox_http_reply_error(vox_http_req_t *req, int status, const char *code,
                          const char *message, json_t *details)
{
	char when[40];

	vox_time_now_rfc3339(when, sizeof(when));
	vox_http_reply_json(
	        req, status,
	        json_pack("{s:{s:s, s:s, s:o, s:s, s:s}}", "error", "code",
	                  code, "message", message, "details",
	                  details ? details : json_object(), "timestamp", when,
	                  "requestId", req->request_id));
}

void vox_http_suspend(vox_http_req_t *req)
{
	req->suspended = true;
	atomic_fetch_add(&req->http->suspended, 1);
	MHD_suspend_connection(req->conn);
}

void vox_http_resume(vox_http_req_t *req, vox_http_handler_fn then)
{
	req->then = then;
	MHD_resume_connection(req->conn);
}

/* Accepts a client's X-Request-Id when it is short and plain; otherwise
 * makes one, so logs and messages can always be joined on it. */
static void http_request_id(vox_http_req_t *req)
{
	const char *given = vox_http_header(req, "X-Request-Id");
	size_t n = given ? strlen(given) : 0;
	bool ok = n > 0 && n <= 128;

	for (size_t i = 0; ok && i < n; i++) {
		char c = given[i];

		ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		     (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
	}
	if (ok)
		snprintf(req->request_id, sizeof(req->request_id), "%s", given);
	else
		vox_uuid7(req->request_id);
}

/* Matches path against pattern, capturing {name} segments. */
static bool http_match(vox_http_req_t *req, const char *pattern)
{
	const char *p = pattern, *u = req->path;

	req->nparams = 0;
	while (*p && *u) {
		if (*p == '{') {
			const char *pend = strchr(p, '}');
			size_t ulen = strcspn(u, "/");

			if (pend == NULL || ulen == 0 ||
			    req->nparams == HTTP_MAX_PARAMS)
				return false;
			req->param_names[req->nparams] =
			        strndup(p + 1, (size_t)(pend - p - 1));
			req->param_values[req->nparams] = strndup(u, ulen);
			req->nparams++;
			p = pend + 1;
			u += ulen;
			continue;
		}
		if (*p != *u)
			return false;
		p++;
		u++;
	}
	return *p == '\0' && *u == '\0';
}

static void http_free_params(vox_http_req_t *req)
{
	for (int i = 0; i < req->nparams; i++) {
		free(req->param_names[i]);
		free(req->param_values[i]);
	}
	req->nparams = 0;
}

/* Adds method to the Allow list unless it is there already. */
static void http_allow_add(vox_buf_t *allow, const char *method)
{
	const char *list = vox_buf_str(allow);
	size_t n = strlen(method);

	for (const char *at = list; (at = strstr(at, method)) != NULL; at += n)
		if ((at == list || at[-1] == ' ') &&
		    (at[n] == '\0' || at[n] == ','))
			return;
	if (vox_buf_len(allow) > 0)
		vox_buf_adds(allow, ", ");
	vox_buf_adds(allow, method);
}

static void http_dispatch(vox_http_req_t *req)
{
	const vox_http_conf_t *conf = &req->http->conf;
	vox_buf_t allow;

	if (req->too_large) {
		char msg[128];

		snprintf(msg, sizeof(msg),
		         "request body larger than %zu bytes; send less",
		         req->max_body);
		vox_http_reply_error(req, 413, "payload_too_large", msg, NULL);
		return;
	}
	vox_buf_init(&allow, 256);
	for (size_t i = 0; i < conf->nroutes; i++) {
		bool matched = http_match(req, conf->routes[i].pattern);

		if (matched &&
		    strcmp(conf->routes[i].method, req->method) == 0) {
			req->route = &conf->routes[i];
			vox_buf_free(&allow);
			conf->routes[i].fn(req, conf->ctx);
			return;
		}
		http_free_params(req);
		if (matched)
			http_allow_add(&allow, conf->routes[i].method);
	}
	if (vox_buf_len(&allow) > 0) {
		/* RFC 9110 15.5.6: a 405 lists the methods the path takes. */
		vox_http_add_header(req, "Allow", vox_buf_str(&allow));
		vox_http_reply_error(
		        req, 405, "method_not_allowed",
		        "this path does not take that method",
		        json_pack("{s:s}", "allow", vox_buf_str(&allow)));
	} else {
		vox_http_reply_error(req, 404, "route_not_found",
		                     "no such endpoint", NULL);
	}
	vox_buf_free(&allow);
}

static bool http_body_append(vox_http_req_t *req, const char *data, size_t n)
{
	size_t max = req->max_body;

	if (req->too_large || req->len + n > max) {
		req->too_large = true;
		return true; /* keep reading, answer 413 at the end */
	}
	if (req->len + n + 1 > req->cap) {
		size_t cap = req->cap ? req->cap : 1024;
		char *grown;

		while (cap < req->len + n + 1)
			cap *= 2;
		/* not realloc: the old buffer is wiped (a body may hold a
		 * secret, a porting PIN) */
		grown = malloc(cap);
		if (grown == NULL)
			return false;
		if (req->body != NULL) {
			memcpy(grown, req->body, req->len);
			OPENSSL_cleanse(req->body, req->cap);
			free(req->body);
		}
		req->body = grown;
		req->cap = cap;
	}
	memcpy(req->body + req->len, data, n);
	req->len += n;
	req->body[req->len] = '\0';
	return true;
}

/* The body limit of the route the request will reach: known from the
 * method and path before the body is read, so a large body is refused
 * while it streams in rather than after it was buffered. */
static size_t http_body_limit(vox_http_req_t *req)
{
	const vox_http_conf_t *conf = &req->http->conf;

	for (size_t i = 0; conf->route_max_body && i < conf->nroutes; i++) {
		const vox_http_route_t *route = &conf->routes[i];
		bool matched = strcmp(route->method, req->method) == 0 &&
		               http_match(req, route->pattern);
		size_t max = matched ? conf->route_max_body(route) : 0;

		http_free_params(req);
		if (matched)
			return max ? max : conf->max_body;
	}
	return conf->max_body;
}

static vox_http_req_t *http_req_new(vox_http_t *http,
                                    struct MHD_Connection *conn,
                                    const char *url, const char *method)
{
	vox_http_req_t *req = calloc(1, sizeof(*req));
	const char *clen;

	if (req == NULL)
		return NULL;
	req->http = http;
	req->conn = conn;
	req->method = method;
	req->path = url;
	req->started = vox_mono_seconds();
	http_request_id(req);
	req->max_body = http_body_limit(req);
	clen = vox_http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (clen != NULL && strtoull(clen, NULL, 10) > req->max_body)
		req->too_large = true;
	return req;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn,
                                   const char *url, const char *method,
                                   const char *version, const char *upload,
                                   size_t *upload_size, void **con_cls)
{
	vox_http_t *http = cls;
	vox_http_req_t *req = *con_cls;
	vox_http_handler_fn then;

	(void)version;
	if (req == NULL) {
		req = http_req_new(http, conn, url, method);
		*con_cls = req;
		return req ? MHD_YES : MHD_NO;
	}
	if (*upload_size > 0) {
		bool ok = http_body_append(req, upload, *upload_size);

		*upload_size = 0;
		return ok ? MHD_YES : MHD_NO;
	}
	if (req->suspended) {
		/* Resumed: the continuation replies. */
		req->suspended = false;
		atomic_fetch_sub(&http->suspended, 1);
		then = req->then;
		req->then = NULL;
		if (then != NULL)
			then(req, http->conf.ctx);
	} else if (!req->dispatched) {
		req->dispatched = true;
		http_dispatch(req);
	}
	if (req->suspended)
		return MHD_YES;
	if (req->response == NULL)
		vox_http_reply_error(req, 500, "internal",
		                     "the handler gave no answer", NULL);
	return MHD_queue_response(conn, (unsigned)req->status, req->response);
}

static void http_count(vox_http_req_t *req)
{
	vox_metrics_t *m = req->http->conf.metrics;
	const char *route = "unmatched";
	char labels[256];
	double secs;

	if (m == NULL)
		return;
	if (req->route != NULL)
		route = req->route->name ? req->route->name
		                         : req->route->pattern;
	secs = vox_mono_seconds() - req->started;
	snprintf(labels, sizeof(labels),
	         "route=\"%s\",method=\"%s\",code=\"%d\"", route, req->method,
	         req->status);
	vox_counter_inc(vox_metrics_counter(m, "vox_http_requests_total",
	                                    "HTTP requests answered", labels));
	snprintf(labels, sizeof(labels), "route=\"%s\"", route);
	vox_histogram_observe(
	        vox_metrics_histogram(m, "vox_http_request_seconds",
	                              "Time from request to answer", labels,
	                              NULL, 0),
	        secs);
}

static void http_completed(void *cls, struct MHD_Connection *conn,
                           void **con_cls, enum MHD_RequestTerminationCode toe)
{
	vox_http_req_t *req = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (req == NULL)
		return;
	if (req->status != 0)
		http_count(req);
	http_reply_hook(req, 0, NULL, 0); /* ended unanswered */
	if (req->response != NULL)
		MHD_destroy_response(req->response);
	if (req->free_state != NULL)
		req->free_state(req->state);
	http_free_params(req);
	for (int i = 0; i < req->nheaders; i++) {
		free(req->hdr_names[i]);
		free(req->hdr_values[i]);
	}
	if (req->body != NULL)
		OPENSSL_cleanse(req->body, req->cap);
	free(req->body);
	free(req);
	*con_cls = NULL;
}

vox_http_t *vox_http_start(const vox_http_conf_t *conf, vox_error_t *err)
{
	vox_http_t *http = calloc(1, sizeof(*http));
	struct sockaddr_in addr = {.sin_family = AF_INET};
	const union MHD_DaemonInfo *info;

	if (http == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
		return NULL;
	}
	http->conf = *conf;
	addr.sin_port = htons((uint16_t)conf->port);
	if (inet_pton(AF_INET, conf->bind, &addr.sin_addr) != 1) {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "bad bind address %s", conf->bind);
		free(http);
		return NULL;
	}
	http->daemon = MHD_start_daemon(
	        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
	                MHD_USE_ITC,
	        (uint16_t)conf->port, NULL, NULL, http_access, http,
	        MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_THREAD_POOL_SIZE,
	        (unsigned)(conf->threads > 0 ? conf->threads : 2),
	        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
	        MHD_OPTION_CONNECTION_LIMIT, (unsigned)10000,
	        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
	        MHD_OPTION_NOTIFY_COMPLETED, http_completed, http,
	        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	        conf->conn_memory > 0 ? conf->conn_memory : (size_t)32768,
	        MHD_OPTION_END);
	if (http->daemon == NULL) {
		vox_error_set(err, VOX_ERR_UNAVAILABLE, false,
		              "cannot listen on %s:%d (in use?)", conf->bind,
		              conf->port);
		free(http);
		return NULL;
	}
	info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_BIND_PORT);
	http->port = info ? info->port : conf->port;
	return http;
}

int vox_http_port(const vox_http_t *http)
{
	return http->port;
}

void vox_http_stop(vox_http_t *http, int drain_ms)
{
	if (http == NULL)
		return;
	MHD_quiesce_daemon(http->daemon);
	/* Suspended connections must be resumed before MHD_stop_daemon. */
	while (atomic_load(&http->suspended) > 0 && drain_ms > 0) {
		struct timespec ts = {0, 10 * 1000000L};

		nanosleep(&ts, NULL);
		drain_ms -= 10;
	}
	MHD_stop_daemon(http->daemon);
	free(http);
}
