/*
 * vox_redis: a blocking hiredis connection with timeouts that reconnects by
 * itself.
 *
 * A context that failed once is never used again (hiredis leaves it in an
 * unknown state): it is freed and the next command connects anew. A command
 * is sent a second time only when it failed on a connection that had been
 * idle and turned out closed; after a timeout it is not, since Redis may
 * have run it, and the caller gets VOX_ERR_TIMEOUT to decide.
 */
#include "vox_redis.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct vox_redis {
	char host[256];
	int port;
	int db;
	struct timeval timeout;
	redisContext *ctx; /* NULL while disconnected */
};

static int parse_number(const char *text, size_t len, long max, long *out)
{
	long value = 0;

	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return -1;
		value = value * 10 + (text[i] - '0');
	}
	if (value > max)
		return -1;
	*out = value;
	return 0;
}

/* redis://host[:port][/db], host may be [ipv6]. */
static int parse_url(vox_redis_t *r, const char *url, vox_error_t *err)
{
	static const char scheme[] = "redis://";
	const char *host, *host_end, *p;
	long port = 6379, db = 0;
	size_t host_len;

	if (url == NULL || strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		goto out_bad_url;
	host = url + sizeof(scheme) - 1;
	if (host[0] == '[') {
		host++;
		host_end = strchr(host, ']');
		if (host_end == NULL)
			goto out_bad_url;
		p = host_end + 1;
	} else {
		host_end = host + strcspn(host, ":/@?#");
		p = host_end;
	}
	host_len = (size_t)(host_end - host);
	if (host_len == 0 || host_len >= sizeof(r->host))
		goto out_bad_url;
	memcpy(r->host, host, host_len);
	r->host[host_len] = '\0';

	if (*p == ':') {
		size_t len = strcspn(p + 1, "/");

		if (parse_number(p + 1, len, 65535, &port) != 0 || port == 0)
			goto out_bad_url;
		p += 1 + len;
	}
	if (*p == '/' && p[1] != '\0') {
		if (parse_number(p + 1, strlen(p + 1), INT_MAX, &db) != 0)
			goto out_bad_url;
		p += strlen(p);
	} else if (*p == '/') {
		p++;
	}
	if (*p != '\0')
		goto out_bad_url;
	r->port = (int)port;
	r->db = (int)db;
	return 0;

out_bad_url:
	/* the url is not echoed: it may carry a password */
	return vox_error_fatal(err, VOX_ERR_INVALID,
	                       "redis url must be redis://host:port[/db]");
}

vox_redis_t *vox_redis_new(const char *url, int timeout_ms, vox_error_t *err)
{
	vox_redis_t *r;

	/* hiredis reads a zero timeout as "wait forever" */
	if (timeout_ms <= 0) {
		vox_error_fatal(err, VOX_ERR_INVALID,
		                "redis timeout must be > 0 ms, got %d",
		                timeout_ms);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		vox_error_fatal(err, VOX_ERR_NOMEM, "redis: out of memory");
		return NULL;
	}
	if (parse_url(r, url, err) != 0) {
		free(r);
		return NULL;
	}
	r->timeout.tv_sec = timeout_ms / 1000;
	r->timeout.tv_usec = (timeout_ms % 1000) * 1000;
	return r;
}

static void redis_disconnect(vox_redis_t *r)
{
	if (r->ctx != NULL) {
		redisFree(r->ctx);
		r->ctx = NULL;
	}
}

void vox_redis_destroy(vox_redis_t *r)
{
	if (r == NULL)
		return;
	redis_disconnect(r);
	free(r);
}

static int redis_select(vox_redis_t *r, vox_error_t *err)
{
	redisReply *reply;
	int rc = 0;

	reply = redisCommand(r->ctx, "SELECT %d", r->db);
	if (reply == NULL) {
		rc = vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                   "redis %s:%d: SELECT %d: %s", r->host,
		                   r->port, r->db, r->ctx->errstr);
		goto out_disconnect;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		/* a db index the server does not have is a config error */
		rc = vox_error_fatal(
		        err, VOX_ERR_INVALID, "redis %s:%d: SELECT %d: %.*s",
		        r->host, r->port, r->db, (int)reply->len, reply->str);
		goto out_free_reply;
	}
	freeReplyObject(reply);
	return 0;

out_free_reply:
	freeReplyObject(reply);
out_disconnect:
	redis_disconnect(r);
	return rc;
}

static int redis_connect(vox_redis_t *r, vox_error_t *err)
{
	int rc;

	r->ctx = redisConnectWithTimeout(r->host, r->port, r->timeout);
	if (r->ctx == NULL)
		return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                     "redis %s:%d: cannot allocate context",
		                     r->host, r->port);
	if (r->ctx->err != 0) {
		rc = vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                   "redis %s:%d: connect: %s", r->host, r->port,
		                   r->ctx->errstr);
		goto out_disconnect;
	}
	if (redisSetTimeout(r->ctx, r->timeout) != REDIS_OK) {
		rc = vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                   "redis %s:%d: set timeout: %s", r->host,
		                   r->port, r->ctx->errstr);
		goto out_disconnect;
	}
	/* finds a peer that vanished without a FIN while we were idle */
	redisEnableKeepAlive(r->ctx);
	if (r->db != 0)
		return redis_select(r, err);
	return 0;

out_disconnect:
	redis_disconnect(r);
	return rc;
}

/* Fills err for a failed command and drops the context. Returns true when
 * the command may be sent again on a new connection. */
static bool redis_failed(vox_redis_t *r, int saved_errno, vox_error_t *err)
{
	int kind = r->ctx->err;
	bool timed_out = kind == REDIS_ERR_IO &&
	                 (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK);

	if (timed_out)
		vox_error_set(err, VOX_ERR_TIMEOUT, true,
		              "redis %s:%d: no reply within %ld ms", r->host,
		              r->port,
		              (long)(r->timeout.tv_sec * 1000 +
		                     r->timeout.tv_usec / 1000));
	else
		vox_error_set(err, VOX_ERR_UNAVAILABLE, true, "redis %s:%d: %s",
		              r->host, r->port,
		              r->ctx->errstr[0] ? r->ctx->errstr
		                                : "connection broken");
	redis_disconnect(r);
	return !timed_out && (kind == REDIS_ERR_IO || kind == REDIS_ERR_EOF);
}

redisReply *vox_redis_command(vox_redis_t *r, vox_error_t *err, const char *fmt,
                              ...)
{
	redisReply *reply = NULL;

	if (r == NULL || fmt == NULL) {
		vox_error_set(err, VOX_ERR_INVALID, false,
		              "redis: no connection or command");
		return NULL;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		bool reused = r->ctx != NULL;
		int saved_errno;
		va_list ap;

		if (!reused && redis_connect(r, err) != 0)
			return NULL;
		va_start(ap, fmt);
		errno = 0;
		reply = redisvCommand(r->ctx, fmt, ap);
		saved_errno = errno;
		va_end(ap);
		if (reply != NULL && r->ctx->err == 0)
			return reply;
		freeReplyObject(reply);
		reply = NULL;
		/* a fresh connection that fails is not worth a second try */
		if (!redis_failed(r, saved_errno, err) || !reused)
			break;
	}
	return reply;
}

int vox_redis_ping(vox_redis_t *r, vox_error_t *err)
{
	vox_error_t local;
	redisReply *reply;
	int rc = 0;

	if (err == NULL)
		err = &local;
	reply = vox_redis_command(r, err, "PING");
	if (reply == NULL) {
		/* a health check only tells up or down, timeouts included */
		err->code = VOX_ERR_UNAVAILABLE;
		return VOX_ERR_UNAVAILABLE;
	}
	if (!(reply->type == REDIS_REPLY_STATUS && reply->str != NULL &&
	      strcmp(reply->str, "PONG") == 0))
		rc = vox_error_set(
		        err, VOX_ERR_UNAVAILABLE, true,
		        "redis %s:%d: PING answered %s", r->host, r->port,
		        reply->str != NULL ? reply->str : "a non-status reply");
	freeReplyObject(reply);
	return rc;
}
