/*
 * The exporter (workers/exporter, docs/EXPORT.md) against the stack's Kafka
 * and S3 stand-in: a day of traffic whose CloudEvents times span the 24
 * hours of a past day, produced to a fresh 4-partition topic while the
 * exporter runs and is SIGKILLed twice, then made to abort once right
 * after PUTting a flush's objects and before committing them; then every event
 * of the topic is in exactly one exported object (ids and count equal what the
 * topic holds, read back), in the object of its hour, every hour has _SUCCESS,
 * and an event of an hour already closed lands in that hour's late
 * manifest. A message that is not JSON is skipped; a pretty-printed event
 * is exported on one line. And a store that stops answering (a proxy in
 * front of the stand-in, shut) holds the commits back without losing
 * anything: once it answers again, every event is there once.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "helpers.h"
#include "vox_buf.h"
#include "vox_s3.h"

#define DAY_EVENTS 14400 /* one every 6 s of event time over 24 h */
#define DAY        "2026-11-02"

struct day {
	char topic[200];
	const char *date;               /* of the events: YYYY-MM-DD */
	unsigned char seen[DAY_EVENTS]; /* per ev-<n>: times found */
	long exported, in_topic, late_found;
	int manifests_for_late;
};

static vox_s3_t *s3_open(void)
{
	vox_s3_conf_t conf = {
	        .endpoint = t_env("VOX_S3_ENDPOINT"),
	        .region = t_env("VOX_S3_REGION"),
	        .bucket = t_env("VOX_S3_BUCKET"),
	        .access_key = t_env("VOX_S3_ACCESS_KEY"),
	        .secret_key = t_env("VOX_S3_SECRET_KEY"),
	        .timeout_ms = 10000,
	};
	vox_error_t err = {0};
	vox_s3_t *s3 = vox_s3_new(&conf, &err);

	cr_assert_not_null(s3, "vox_s3_new: %s", err.message);
	return s3;
}

/* gunzip of data (a whole gzip member) into a NUL-terminated string. */
static char *gunzip(const char *data, size_t len, size_t *outlen)
{
	z_stream zs = {0};
	size_t cap = len * 8 + 1024;
	char *out = malloc(cap);
	int zrc;

	cr_assert_eq(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = (Bytef *)data;
	zs.avail_in = (uInt)len;
	for (;;) {
		zs.next_out = (Bytef *)out + zs.total_out;
		zs.avail_out = (uInt)(cap - zs.total_out - 1);
		zrc = inflate(&zs, Z_NO_FLUSH);
		if (zrc == Z_STREAM_END)
			break;
		cr_assert(zrc == Z_OK || zrc == Z_BUF_ERROR,
		          "not a gzip object (%d)", zrc);
		cap *= 2;
		out = realloc(out, cap);
	}
	*outlen = zs.total_out;
	out[*outlen] = '\0';
	inflateEnd(&zs);
	return out;
}

static void produce(rd_kafka_t *rk, const char *topic, const char *key,
                    const char *value, size_t len)
{
	rd_kafka_resp_err_t kerr;

	do {
		kerr = rd_kafka_producev(
		        rk, RD_KAFKA_V_TOPIC(topic),
		        RD_KAFKA_V_KEY(key, strlen(key)),
		        RD_KAFKA_V_VALUE((void *)value, len),
		        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		        RD_KAFKA_V_END);
		if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 50);
	} while (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL);
	cr_assert_eq(kerr, RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s",
	             rd_kafka_err2str(kerr));
}

static void produce_event(rd_kafka_t *rk, const char *topic, const char *id,
                          const char *time, int account, bool pretty)
{
	char key[32];
	json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:{s:i}}",
	                       "specversion", "1.0", "id", id, "source",
	                       "/tests/exporter", "type", "usage.recorded",
	                       "time", time, "subject", "acct", "sequence",
	                       account, "data", "account", account);
	char *text = json_dumps(ev, pretty ? JSON_INDENT(2) : JSON_COMPACT);

	snprintf(key, sizeof(key), "acct-%d", account);
	produce(rk, topic, key, text, strlen(text));
	free(text);
	json_decref(ev);
}

static rd_kafka_t *producer_new(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[256];
	rd_kafka_t *rk;

	rd_kafka_conf_set(conf, "bootstrap.servers", t_env("VOX_KAFKA_BROKERS"),
	                  errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	cr_assert_not_null(rk, "%s", errstr);
	return rk;
}

/* The test build (its fault hook): with abort_on, it aborts after the PUTs
 * of the flush holding that text, before the commit. */
static pid_t exporter_start_at(const char *topic, char env[][256],
                               const char *abort_on, int s3_port,
                               int metrics_port)
{
	const char *envp[14];
	int n = 0;

	snprintf(env[0], 256, "VOX_EXPORT_TOPICS=%s", topic);
	snprintf(env[1], 256, "VOX_EXPORT_GROUP=exp-%s", topic);
	snprintf(env[2], 256, "VOX_EXPORT_INSTANCE_ID=exp-%s", topic);
	/* event time runs ~5,000 times faster than the wall clock here */
	snprintf(env[3], 256, "VOX_EXPORT_LATENESS_MS=1800000");
	snprintf(env[4], 256, "VOX_EXPORT_IDLE_CLOSE_MS=2000");
	snprintf(env[5], 256, "VOX_EXPORT_FLUSH_MS=300");
	/* small objects: an hour of a partition is split over several */
	snprintf(env[6], 256, "VOX_EXPORT_MAX_RECORDS=70");
	snprintf(env[7], 256, "VOX_EXPORT_METRICS_PORT=%d", metrics_port);
	snprintf(env[8], 256, "VOX_KAFKA_SESSION_TIMEOUT_MS=6000");
	snprintf(env[9], 256, "VOX_FAULT_ABORT_ON=%s",
	         abort_on ? abort_on : "");
	for (n = 0; n < 10; n++)
		envp[n] = env[n];
	if (s3_port > 0) {
		snprintf(env[10], 256, "VOX_S3_ENDPOINT=http://127.0.0.1:%d",
		         s3_port);
		envp[n++] = env[10];
	}
	envp[n] = NULL;
	return t_spawn("../test-bin/exporter", "exporter.log", envp);
}

static pid_t exporter_start(const char *topic, char env[][256],
                            const char *abort_on)
{
	return exporter_start_at(topic, env, abort_on, 0, 0);
}

/* Waits for the exporter to die by itself (its fault hook). */
static int exited(pid_t pid, int timeout_ms)
{
	int status;

	for (int waited = 0; waited < timeout_ms; waited += 20) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(20000);
	}
	return -1;
}

static void on_topic_message(void *arg, const char *payload, size_t len,
                             const char *header)
{
	struct day *d = arg;
	json_t *ev = json_loadb(payload, len, 0, NULL);

	(void)header;
	if (json_is_string(json_object_get(ev, "id")))
		d->in_topic++;
	json_decref(ev);
}

/* Every line of one object: an event of the object's hour, counted. */
static void check_object(struct day *d, vox_s3_t *s3, const char *key, int hour)
{
	char *data = NULL, *text, *save = NULL;
	size_t len = 0, tlen;
	vox_error_t err = {0};
	char want[32];

	cr_assert_eq(vox_s3_get(s3, key, 64u << 20, &data, &len, &err), 0,
	             "get %s: %s", key, err.message);
	text = gunzip(data, len, &tlen);
	snprintf(want, sizeof(want), "%sT%02d:", d->date, hour);
	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		json_t *ev = json_loads(line, 0, NULL);
		const char *id = json_string_value(json_object_get(ev, "id"));
		const char *time =
		        json_string_value(json_object_get(ev, "time"));
		int n;

		cr_assert_not_null(id,
		                   "%s: a line that is not an event: %.200s",
		                   key, line);
		cr_assert(time && strncmp(time, want, strlen(want)) == 0,
		          "%s holds an event of %s", key, time);
		if (strcmp(id, "late-1") == 0)
			d->late_found++;
		else {
			cr_assert_eq(sscanf(id, "ev-%d", &n), 1, "id %s", id);
			cr_assert(n >= 0 && n < DAY_EVENTS);
			d->seen[n]++;
		}
		d->exported++;
		json_decref(ev);
	}
	free(text);
	free(data);
}

static bool all_closed(void *arg)
{
	struct day *d = arg;
	vox_s3_t *s3 = s3_open();
	bool ok = true;

	for (int h = 0; h < 24 && ok; h++) {
		char key[400], *data = NULL;
		size_t len;

		snprintf(key, sizeof(key),
		         "events/%s/dt=" DAY "/hr=%02d/_SUCCESS", d->topic, h);
		ok = vox_s3_get(s3, key, 4096, &data, &len, NULL) == 0;
		free(data);
	}
	vox_s3_destroy(s3);
	return ok;
}

static bool late_listed(void *arg)
{
	struct day *d = arg;
	char prefix[400];
	char **keys;
	bool found;

	snprintf(prefix, sizeof(prefix), "events/%s/dt=" DAY "/hr=05/_late/",
	         d->topic);
	keys = t_s3_list(prefix);
	found = keys[0] != NULL;
	t_s3_keys_free(keys);
	return found;
}

Test(exporter, day_exported_exactly_once_across_two_kills, .timeout = 120)
{
	static struct day d;
	char env[12][256], time[40], id[32], prefix[400];
	rd_kafka_t *rk = producer_new();
	vox_s3_t *s3;
	pid_t pid;
	int late_objects = 0, status;

	memset(&d, 0, sizeof(d));
	d.date = DAY;
	t_topic_create("exp.day", 4, d.topic, sizeof(d.topic));
	pid = exporter_start(d.topic, env, NULL);
	for (int i = 0; i < DAY_EVENTS; i++) {
		int secs = i * 6;

		snprintf(time, sizeof(time), DAY "T%02d:%02d:%02dZ",
		         secs / 3600, secs / 60 % 60, secs % 60);
		snprintf(id, sizeof(id), "ev-%d", i);
		produce_event(rk, d.topic, id, time, i % 50, i == 777);
		if (i == 4000)
			produce(rk, d.topic, "acct-1", "not json at all", 15);
		if (i % 1200 == 1199) { /* 8 s of event time a pause */
			rd_kafka_flush(rk, 10000);
			usleep(150000);
		}
		/* SIGKILL midway twice: whatever was PUT and not committed
		 * is read again and written under the same names */
		if (i == 5000 || i == 10000) {
			rd_kafka_flush(rk, 10000);
			usleep(400000);
			t_stop(pid, SIGKILL, 5000);
			pid = exporter_start(d.topic, env,
			                     i == 10000 ? "\"ev-12000\""
			                                : NULL);
		}
		/* and once exactly between the PUTs and the commit */
		if (i == 12500) {
			rd_kafka_flush(rk, 10000);
			status = exited(pid, 20000);
			cr_assert(WIFSIGNALED(status) &&
			                  WTERMSIG(status) == SIGABRT,
			          "the exporter did not stop at its fault hook "
			          "(status %d)",
			          status);
			pid = exporter_start(d.topic, env, NULL);
		}
	}
	rd_kafka_flush(rk, 10000);
	cr_assert(t_wait_for(all_closed, &d, 40000),
	          "not every hour of the day has its _SUCCESS "
	          "(exporter.log)");

	/* an event of an hour already closed: its own object + manifest */
	produce_event(rk, d.topic, "late-1", DAY "T05:30:00Z", 7, false);
	rd_kafka_flush(rk, 10000);
	cr_assert(t_wait_for(late_listed, &d, 20000),
	          "the late event is in no late manifest of hr=05");
	cr_assert_eq(WEXITSTATUS(t_stop(pid, SIGTERM, 20000)), 0);
	rd_kafka_destroy(rk);

	/* what the topic holds, read back */
	t_consume_all(d.topic, 2000, NULL, on_topic_message, &d);
	cr_assert_eq(d.in_topic, DAY_EVENTS + 1);

	s3 = s3_open();
	for (int h = 0; h < 24; h++) {
		char **keys;

		snprintf(prefix, sizeof(prefix),
		         "events/%s/dt=" DAY "/hr=%02d/", d.topic, h);
		keys = t_s3_list(prefix);
		for (size_t i = 0; keys[i] != NULL; i++) {
			const char *name = strrchr(keys[i], '/') + 1;

			if (strstr(keys[i], ".ndjson.gz") != NULL) {
				cr_assert_eq(
				        strncmp(name, d.topic, strlen(d.topic)),
				        0, "object name %s", keys[i]);
				check_object(&d, s3, keys[i], h);
			} else if (strstr(keys[i], "/_late/") != NULL) {
				char *data = NULL;
				size_t len;
				json_t *m;
				const char *object;

				cr_assert_eq(vox_s3_get(s3, keys[i], 65536,
				                        &data, &len, NULL),
				             0);
				m = json_loadb(data, len, 0, NULL);
				object = json_string_value(
				        json_object_get(m, "object"));
				cr_assert_not_null(object, "manifest %s",
				                   keys[i]);
				cr_assert_eq(
				        strncmp(object, prefix, strlen(prefix)),
				        0, "%s lists %s", keys[i], object);
				if (h == 5)
					late_objects++;
				json_decref(m);
				free(data);
			} else
				cr_assert_str_eq(name, "_SUCCESS");
		}
		t_s3_keys_free(keys);
	}
	vox_s3_destroy(s3);
	for (int n = 0; n < DAY_EVENTS; n++)
		cr_assert_eq(d.seen[n], 1, "ev-%d exported %d times", n,
		             d.seen[n]);
	cr_assert_eq(d.late_found, 1);
	cr_assert_eq(d.exported, d.in_topic,
	             "%ld events exported, %ld in the topic", d.exported,
	             d.in_topic);
	cr_assert_geq(late_objects, 1);
}

/* A TCP proxy to the S3 stand-in that can be shut: a shut proxy closes
 * every connection at once, as a store that went away. */
struct proxy {
	int listen_fd, port, upstream_port;
	atomic_bool down;
};

static void *proxy_pump(void *arg)
{
	int *fds = arg;
	struct pollfd pfd[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
	char buf[65536];

	for (;;) {
		if (poll(pfd, 2, 1000) < 0)
			break;
		for (int i = 0; i < 2; i++)
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t n = read(pfd[i].fd, buf, sizeof(buf));

				if (n <= 0 ||
				    write(pfd[1 - i].fd, buf, (size_t)n) != n)
					goto out;
			}
	}
out:
	close(fds[0]);
	close(fds[1]);
	free(fds);
	return NULL;
}

static void *proxy_accept(void *arg)
{
	struct proxy *px = arg;

	for (;;) {
		int c = accept(px->listen_fd, NULL, NULL), *fds;
		struct sockaddr_in up = {.sin_family = AF_INET};
		pthread_t t;

		if (c < 0)
			continue;
		if (atomic_load(&px->down)) {
			close(c);
			continue;
		}
		fds = malloc(2 * sizeof(int));
		fds[0] = c;
		fds[1] = socket(AF_INET, SOCK_STREAM, 0);
		up.sin_port = htons((uint16_t)px->upstream_port);
		up.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(fds[1], (struct sockaddr *)&up, sizeof(up)) != 0 ||
		    pthread_create(&t, NULL, proxy_pump, fds) != 0) {
			close(fds[0]);
			close(fds[1]);
			free(fds);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

static void proxy_start(struct proxy *px)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof(addr);
	const char *endpoint = t_env("VOX_S3_ENDPOINT");
	const char *colon = strrchr(endpoint, ':');
	pthread_t t;

	cr_assert_not_null(colon, "VOX_S3_ENDPOINT %s has no port", endpoint);
	px->upstream_port = (int)strtol(colon + 1, NULL, 10);
	px->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(
	        bind(px->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	cr_assert_eq(listen(px->listen_fd, 64), 0);
	getsockname(px->listen_fd, (struct sockaddr *)&addr, &len);
	px->port = ntohs(addr.sin_port);
	atomic_init(&px->down, false);
	cr_assert_eq(pthread_create(&t, NULL, proxy_accept, px), 0);
	pthread_detach(t);
}

/* The value of a counter of the exporter's /metrics (-1: no answer). */
static long metric(int port, const char *name)
{
	char *body = NULL, *at;
	long value = -1;
	size_t n = strlen(name);

	if (t_http("GET", port, "/metrics", NULL, NULL, &body) == 200)
		for (at = body; (at = strstr(at, name)) != NULL; at += n)
			if ((at == body || at[-1] == '\n') && at[n] == ' ') {
				value = strtol(at + n + 1, NULL, 10);
				break;
			}
	free(body);
	return value;
}

struct wait_metric {
	int port;
	long want;
};

static bool records_reach(void *arg)
{
	struct wait_metric *w = arg;

	return metric(w->port, "vox_export_records_total") >= w->want;
}

static void produce_hour_events(rd_kafka_t *rk, const char *topic, int from,
                                int to)
{
	char id[32], time[40];

	for (int i = from; i < to; i++) {
		snprintf(id, sizeof(id), "ev-%d", i);
		snprintf(time, sizeof(time), "2026-11-03T%02d:%02d:00Z",
		         i / 125, i % 60);
		produce_event(rk, topic, id, time, i % 20, false);
	}
	rd_kafka_flush(rk, 10000);
}

Test(exporter, a_store_that_stops_answering_holds_commits_and_loses_nothing,
     .timeout = 90)
{
	static struct day d;
	static struct proxy px;
	char env[12][256], prefix[400];
	rd_kafka_t *rk = producer_new();
	int mport = t_free_port();
	struct wait_metric w = {mport, 200};
	vox_s3_t *s3;
	pid_t pid;
	long held, errors;

	memset(&d, 0, sizeof(d));
	d.date = "2026-11-03";
	t_topic_create("exp.outage", 2, d.topic, sizeof(d.topic));
	proxy_start(&px);
	pid = exporter_start_at(d.topic, env, NULL, px.port, mport);
	produce_hour_events(rk, d.topic, 0, 200);
	cr_assert(t_wait_for(records_reach, &w, 30000),
	          "the first 200 events were not exported (%ld)",
	          metric(mport, "vox_export_records_total"));

	/* the store goes away: events keep coming, nothing is committed */
	atomic_store(&px.down, true);
	produce_hour_events(rk, d.topic, 200, 500);
	usleep(3000000);
	held = metric(mport, "vox_export_records_total");
	errors = metric(mport, "vox_export_s3_errors_total");
	cr_assert_eq(held, 200, "%ld records committed with the store away",
	             held);
	cr_assert_gt(errors, 0, "no failed S3 request counted");

	/* back: everything goes out, once */
	atomic_store(&px.down, false);
	w.want = 500;
	cr_assert(t_wait_for(records_reach, &w, 30000),
	          "after the store came back: %ld of 500 exported",
	          metric(mport, "vox_export_records_total"));
	cr_assert_eq(WEXITSTATUS(t_stop(pid, SIGTERM, 20000)), 0);
	rd_kafka_destroy(rk);

	s3 = s3_open();
	for (int h = 0; h < 4; h++) {
		char **keys;

		snprintf(prefix, sizeof(prefix), "events/%s/dt=%s/hr=%02d/",
		         d.topic, d.date, h);
		keys = t_s3_list(prefix);
		for (size_t i = 0; keys[i] != NULL; i++)
			if (strstr(keys[i], ".ndjson.gz") != NULL)
				check_object(&d, s3, keys[i], h);
		t_s3_keys_free(keys);
	}
	vox_s3_destroy(s3);
	for (int n = 0; n < 500; n++)
		cr_assert_eq(d.seen[n], 1, "ev-%d exported %d times", n,
		             d.seen[n]);
	cr_assert_eq(d.exported, 500);
}
