/*
 * Integration tests of vox_redis against the Redis named by VOX_REDIS_URL
 * (the test stack's), plus failure cases that need no server: a closed
 * port, a peer that never answers, and malformed urls.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vox_redis.h"

#define TIMEOUT_MS 300

static const char *redis_url(void)
{
	const char *url = getenv("VOX_REDIS_URL");

	if (url == NULL || url[0] == '\0')
		cr_assert_fail("VOX_REDIS_URL is not set: run through "
		               "`make test` or point it at a Redis");
	return url;
}

/* VOX_REDIS_URL with its db, if any, replaced by db. */
static void url_with_db(char *out, size_t outlen, int db)
{
	const char *base = redis_url();
	const char *path = strchr(base + strlen("redis://"), '/');
	int host_len = path ? (int)(path - base) : (int)strlen(base);

	snprintf(out, outlen, "%.*s/%d", host_len, base, db);
}

static vox_redis_t *connect_live(int timeout_ms)
{
	vox_error_t err;
	vox_redis_t *r = vox_redis_new(redis_url(), timeout_ms, &err);

	cr_assert_not_null(r, "%s", err.message);
	return r;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A loopback port with nothing listening: bound, then closed. */
static int closed_port(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int port;

	cr_assert_geq(fd, 0);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	port = ntohs(addr.sin_port);
	close(fd);
	return port;
}

/* A listening socket that never accepts or answers: connects succeed (the
 * kernel completes them) and every command has to time out. */
static int silent_listener(int *port)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	cr_assert_eq(listen(fd, 8), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	*port = ntohs(addr.sin_port);
	return fd;
}

Test(redis, ping)
{
	vox_redis_t *r = connect_live(2000);
	vox_error_t err;

	cr_assert_eq(vox_redis_ping(r, &err), 0, "%s", err.message);
	cr_assert_eq(vox_redis_ping(r, NULL), 0);
	vox_redis_destroy(r);
}

Test(redis, set_and_get)
{
	vox_redis_t *r = connect_live(2000);
	char key[64], value[64];
	redisReply *reply;
	vox_error_t err;

	snprintf(key, sizeof(key), "vox:test:%ld", (long)getpid());
	snprintf(value, sizeof(value), "bin\r\n\"%c\"", 0x7f);
	reply = vox_redis_command(r, &err, "SET %s %s EX 60", key, value);
	cr_assert_not_null(reply, "%s", err.message);
	cr_assert_eq(reply->type, REDIS_REPLY_STATUS);
	cr_assert_str_eq(reply->str, "OK");
	freeReplyObject(reply);

	reply = vox_redis_command(r, &err, "GET %s", key);
	cr_assert_not_null(reply, "%s", err.message);
	cr_assert_eq(reply->type, REDIS_REPLY_STRING);
	cr_assert_str_eq(reply->str, value);
	freeReplyObject(reply);

	reply = vox_redis_command(r, &err, "DEL %s", key);
	cr_assert_not_null(reply, "%s", err.message);
	cr_assert_eq(reply->integer, 1);
	freeReplyObject(reply);

	reply = vox_redis_command(r, &err, "GET %s", key);
	cr_assert_not_null(reply, "%s", err.message);
	cr_assert_eq(reply->type, REDIS_REPLY_NIL);
	freeReplyObject(reply);
	vox_redis_destroy(r);
}

Test(redis, error_reply_is_returned_as_is)
{
	vox_redis_t *r = connect_live(2000);
	redisReply *reply;
	vox_error_t err;

	reply = vox_redis_command(r, &err, "NOSUCHCOMMAND %s", "x");
	cr_assert_not_null(reply, "%s", err.message);
	cr_assert_eq(reply->type, REDIS_REPLY_ERROR);
	freeReplyObject(reply);
	/* the connection is still good afterwards */
	cr_assert_eq(vox_redis_ping(r, &err), 0, "%s", err.message);
	vox_redis_destroy(r);
}

Test(redis, reconnects_after_server_closed_connection)
{
	vox_redis_t *victim = connect_live(2000);
	vox_redis_t *killer = connect_live(2000);
	redisReply *reply;
	vox_error_t err;

	cr_assert_eq(vox_redis_ping(victim, &err), 0, "%s", err.message);
	/* closes every other normal client, the victim among them */
	reply = vox_redis_command(killer, &err,
	                          "CLIENT KILL TYPE normal SKIPME yes");
	cr_assert_not_null(reply, "%s", err.message);
	cr_assert_eq(reply->type, REDIS_REPLY_INTEGER, "%s", reply->str);
	cr_assert_geq(reply->integer, 1);
	freeReplyObject(reply);
	/* the broken connection is noticed and the command retried once */
	cr_assert_eq(vox_redis_ping(victim, &err), 0, "%s", err.message);
	vox_redis_destroy(killer);
	vox_redis_destroy(victim);
}

Test(redis, slow_command_times_out_without_retry)
{
	vox_redis_t *r = connect_live(TIMEOUT_MS);
	char key[64];
	redisReply *reply;
	vox_error_t err;
	double start;

	snprintf(key, sizeof(key), "vox:test:empty:%ld", (long)getpid());
	start = now_s();
	/* blocks 2 s on the server side, far past our timeout */
	reply = vox_redis_command(r, &err, "BLPOP %s 2", key);
	cr_assert_null(reply);
	cr_assert_eq(err.code, VOX_ERR_TIMEOUT, "%s", err.message);
	cr_assert(err.retriable);
	/* one timeout, not two: a command that may have run is not resent */
	cr_assert_lt(now_s() - start, 2 * TIMEOUT_MS / 1000.0, "took %.3f s",
	             now_s() - start);
	/* the next call reconnects */
	cr_assert_eq(vox_redis_ping(r, &err), 0, "%s", err.message);
	vox_redis_destroy(r);
}

Test(redis, select_db_from_url)
{
	char url[512], key[64];
	vox_redis_t *db1, *db0;
	redisReply *reply;
	vox_error_t err;

	url_with_db(url, sizeof(url), 1);
	db1 = vox_redis_new(url, 2000, &err);
	cr_assert_not_null(db1, "%s", err.message);
	url_with_db(url, sizeof(url), 0);
	db0 = vox_redis_new(url, 2000, &err);
	cr_assert_not_null(db0, "%s", err.message);
	snprintf(key, sizeof(key), "vox:test:db:%ld", (long)getpid());
	reply = vox_redis_command(db1, &err, "SET %s 1 EX 60", key);
	cr_assert_not_null(reply, "%s", err.message);
	freeReplyObject(reply);
	reply = vox_redis_command(db0, &err, "EXISTS %s", key);
	cr_assert_not_null(reply, "%s", err.message);
	cr_assert_eq(reply->integer, 0, "key leaked into db 0");
	freeReplyObject(reply);
	reply = vox_redis_command(db1, &err, "DEL %s", key);
	cr_assert_eq(reply->integer, 1);
	freeReplyObject(reply);
	vox_redis_destroy(db0);
	vox_redis_destroy(db1);
}

Test(redis, missing_db_is_a_config_error)
{
	char url[512];
	vox_redis_t *r;
	vox_error_t err;

	url_with_db(url, sizeof(url), 100000);
	r = vox_redis_new(url, 2000, &err);
	cr_assert_not_null(r, "%s", err.message);
	cr_assert_null(vox_redis_command(r, &err, "PING"));
	cr_assert_eq(err.code, VOX_ERR_INVALID, "%s", err.message);
	cr_assert(err.fatal);
	vox_redis_destroy(r);
}

Test(redis_down, closed_port_is_unavailable_quickly)
{
	char url[64];
	vox_redis_t *r;
	vox_error_t err;
	double start;

	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", closed_port());
	r = vox_redis_new(url, TIMEOUT_MS, &err);
	cr_assert_not_null(r, "%s", err.message);
	start = now_s();
	cr_assert_null(vox_redis_command(r, &err, "PING"));
	cr_assert_eq(err.code, VOX_ERR_UNAVAILABLE, "%s", err.message);
	cr_assert(err.retriable);
	cr_assert_not(err.fatal);
	cr_assert_eq(vox_redis_ping(r, &err), VOX_ERR_UNAVAILABLE);
	cr_assert_lt(now_s() - start, TIMEOUT_MS / 1000.0 + 0.5);
	vox_redis_destroy(r);
}

Test(redis_down, silent_peer_times_out)
{
	int port, listener = silent_listener(&port);
	char url[64];
	vox_redis_t *r;
	vox_error_t err;
	double start, took;

	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
	r = vox_redis_new(url, TIMEOUT_MS, &err);
	cr_assert_not_null(r, "%s", err.message);
	start = now_s();
	cr_assert_null(vox_redis_command(r, &err, "GET %s", "k"));
	took = now_s() - start;
	cr_assert_eq(err.code, VOX_ERR_TIMEOUT, "%s", err.message);
	cr_assert_geq(took, TIMEOUT_MS / 1000.0 - 0.05, "%.3f s", took);
	cr_assert_lt(took, 2 * TIMEOUT_MS / 1000.0, "%.3f s", took);
	cr_assert_eq(vox_redis_ping(r, &err), VOX_ERR_UNAVAILABLE);
	vox_redis_destroy(r);
	close(listener);
}

Test(redis_url, accepted_forms)
{
	static const char *const good[] = {
	        "redis://localhost:6379", "redis://localhost",
	        "redis://127.0.0.1:1/0",  "redis://h:65535/15",
	        "redis://[::1]:6379/2",   "redis://h:6379/",
	};
	vox_error_t err;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		vox_redis_t *r = vox_redis_new(good[i], 100, &err);

		cr_assert_not_null(r, "%s: %s", good[i], err.message);
		vox_redis_destroy(r);
	}
}

Test(redis_url, refused_forms)
{
	static const char *const bad[] = {
	        "",
	        "localhost:6379",
	        "http://localhost:6379",
	        "redis://",
	        "redis://:6379",
	        "redis://h:",
	        "redis://h:0",
	        "redis://h:65536",
	        "redis://h:63x9",
	        "redis://h:6379/x",
	        "redis://h:6379/-1",
	        "redis://h:6379/1/2",
	        "redis://user:secret@h:6379",
	        "redis://h:6379?db=1",
	        "redis://[::1:6379",
	        "redis://h:6379/99999999999",
	};
	vox_error_t err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vox_error_clear(&err);
		cr_assert_null(vox_redis_new(bad[i], 100, &err), "accepted %s",
		               bad[i]);
		cr_assert_eq(err.code, VOX_ERR_INVALID, "%s", bad[i]);
		cr_assert_null(strstr(err.message, "secret"),
		               "password echoed: %s", err.message);
	}
	cr_assert_null(vox_redis_new(NULL, 100, &err));
	cr_assert_null(vox_redis_new("redis://h:1", 0, &err),
	               "a zero timeout would block forever");
	cr_assert_null(vox_redis_new("redis://h:1", -5, NULL));
}
