/*
 * notify_receiver: the webhook endpoint of bench/notifications.
 *
 * A libmicrohttpd server (epoll, a pool of internal threads) that answers
 * 200 "ok" to every POST, whatever its path, and records for each one its
 * arrival time (CLOCK_REALTIME, µs, taken when the whole body is in), its
 * `webhook-id` header and the event time the body carries: data.sent_at_us
 * (set by the bench's producer when it made the event) and the body's
 * "timestamp" (RFC 3339, the notification's own time). Latency is arrival
 * minus event time, both read from the same machine's clock. No Python in
 * the measured path.
 *
 *   notify_receiver [-a 127.0.0.77] [-p port] [-t threads] [-c capacity]
 *                   [-s whsec_secret]
 *
 * With -s every request's `webhook-signature` is checked (Standard
 * Webhooks: HMAC-SHA256 over "<id>.<timestamp>.<body>" with the decoded
 * secret; any of its space-separated entries may match): sig_ok/sig_bad.
 *
 * GET /_stats answers the summary line; GET /_count the number of requests
 * recorded (cheap: for polling); GET /_reset forgets every record (call it
 * while no delivery is in flight). On SIGTERM or SIGINT the
 * summary is printed on stdout and the program exits 0. The summary is one
 * line of key=value pairs:
 *   RECV count= distinct= dup= sig_ok= sig_bad= dropped= first_us= last_us=
 *        span_s= rate= lat_n= p50_ms= p90_ms= p99_ms= max_ms= ts_p50_ms=
 *        ts_p99_ms=
 * (distinct: distinct (path, webhook-id) pairs: one message goes to every
 * endpoint under the same id; dup: count - distinct, i.e. redeliveries;
 * dropped: requests beyond -c, answered but not recorded; rate: count over
 * first..last arrival; p*: from data.sent_at_us, ts_*: from "timestamp".)
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vox_time.h"
#include "vox_whsig.h"

#define BODY_MAX (1024 * 1024)
#define ID_MAX   128

enum sig_state { SIG_UNCHECKED, SIG_OK, SIG_BAD };

struct record {
	atomic_bool ready; /* written in full: the summary may read it */
	int64_t arrival_us;
	int64_t event_us; /* data.sent_at_us, or -1 */
	int64_t stamp_us; /* the body's "timestamp", or -1 */
	unsigned char sig;
	char id[ID_MAX]; /* "<path> <webhook-id>" */
};

struct upload {
	char *body;
	size_t len, cap;
	bool too_big;
};

static struct record *records;
static size_t capacity = 2000000;
static atomic_size_t taken;
static atomic_long dropped;
static const char *secret; /* NULL: signatures are not checked */
static struct MHD_Response *ok_response;

static void event_times(const char *body, size_t len, int64_t *event_us,
                        int64_t *stamp_us)
{
	json_t *doc = json_loadb(body, len, 0, NULL);
	const char *stamp;
	json_t *sent;

	*event_us = *stamp_us = -1;
	if (doc == NULL)
		return;
	sent = json_object_get(json_object_get(doc, "data"), "sent_at_us");
	if (json_is_integer(sent))
		*event_us = json_integer_value(sent);
	stamp = json_string_value(json_object_get(doc, "timestamp"));
	if (stamp == NULL || vox_rfc3339_parse(stamp, stamp_us) != 0)
		*stamp_us = -1;
	json_decref(doc);
}

/* Whether one of the "v1,<base64>" entries of header is the signature of
 * "<id>.<timestamp>.<body>" under the secret (vox_whsig: the worker's own
 * signing code). */
static bool signature_ok(const char *id, const char *stamp, const char *header,
                         const char *body, size_t len)
{
	char want[VOX_WHSIG_SIG_MAX], entry[VOX_WHSIG_SIG_MAX];
	const char *p;

	if (id == NULL || stamp == NULL || header == NULL ||
	    vox_whsig_sign(secret, id, strtoll(stamp, NULL, 10), body, len,
	                   want) != 0)
		return false;
	for (p = header; *p != '\0';) {
		size_t n = strcspn(p, " ");

		if (n < sizeof(entry)) {
			memcpy(entry, p, n);
			entry[n] = '\0';
			if (vox_whsig_equal(entry, want))
				return true;
		}
		p += n;
		p += strspn(p, " ");
	}
	return false;
}

static void record(struct MHD_Connection *conn, const char *url,
                   const struct upload *up)
{
	size_t slot = atomic_fetch_add(&taken, 1);
	const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                             "webhook-id");
	struct record *r;

	if (slot >= capacity) {
		atomic_fetch_add(&dropped, 1);
		return;
	}
	r = &records[slot];
	r->arrival_us = vox_now_us();
	event_times(up->body, up->len, &r->event_us, &r->stamp_us);
	snprintf(r->id, sizeof(r->id), "%.60s %s", url, id ? id : "");
	r->sig = SIG_UNCHECKED;
	if (secret != NULL)
		r->sig = signature_ok(id,
		                      MHD_lookup_connection_value(
		                              conn, MHD_HEADER_KIND,
		                              "webhook-timestamp"),
		                      MHD_lookup_connection_value(
		                              conn, MHD_HEADER_KIND,
		                              "webhook-signature"),
		                      up->body ? up->body : "", up->len)
		                 ? SIG_OK
		                 : SIG_BAD;
	atomic_store(&r->ready, true);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static double pct_ms(const int64_t *sorted, size_t n, double p)
{
	if (n == 0)
		return 0.0;
	return (double)sorted[(size_t)(p / 100.0 * (double)(n - 1) + 0.5)] /
	       1000.0;
}

/* The summary line of the records written so far, into out. */
static void summary(char *out, size_t outlen)
{
	size_t n = atomic_load(&taken), count = 0, nlat = 0, nts = 0;
	size_t distinct = 0, sig_ok = 0, sig_bad = 0;
	int64_t first = 0, last = 0, *lat, *ts;
	const char **ids;

	if (n > capacity)
		n = capacity;
	lat = malloc((n + 1) * sizeof(*lat));
	ts = malloc((n + 1) * sizeof(*ts));
	ids = malloc((n + 1) * sizeof(*ids));
	if (lat == NULL || ts == NULL || ids == NULL) {
		snprintf(out, outlen, "RECV error=out_of_memory");
		goto out_free;
	}
	for (size_t i = 0; i < n; i++) {
		const struct record *r = &records[i];

		if (!atomic_load(&r->ready))
			continue;
		if (count == 0 || r->arrival_us < first)
			first = r->arrival_us;
		if (r->arrival_us > last)
			last = r->arrival_us;
		ids[count++] = r->id;
		if (r->event_us >= 0)
			lat[nlat++] = r->arrival_us - r->event_us;
		if (r->stamp_us >= 0)
			ts[nts++] = r->arrival_us - r->stamp_us;
		sig_ok += r->sig == SIG_OK;
		sig_bad += r->sig == SIG_BAD;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_i64);
	qsort(ts, nts, sizeof(*ts), cmp_i64);
	qsort(ids, count, sizeof(*ids), cmp_id);
	for (size_t i = 0; i < count; i++)
		distinct += i == 0 || strcmp(ids[i], ids[i - 1]) != 0;
	snprintf(out, outlen,
	         "RECV count=%zu distinct=%zu dup=%zu sig_ok=%zu sig_bad=%zu "
	         "dropped=%ld first_us=%lld last_us=%lld span_s=%.3f "
	         "rate=%.0f lat_n=%zu p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f "
	         "max_ms=%.2f ts_p50_ms=%.2f ts_p99_ms=%.2f",
	         count, distinct, count - distinct, sig_ok, sig_bad,
	         atomic_load(&dropped), (long long)first, (long long)last,
	         (double)(last - first) / 1e6,
	         last > first
	                 ? (double)(count - 1) * 1e6 / (double)(last - first)
	                 : 0.0,
	         nlat, pct_ms(lat, nlat, 50), pct_ms(lat, nlat, 90),
	         pct_ms(lat, nlat, 99),
	         nlat ? (double)lat[nlat - 1] / 1000.0 : 0.0,
	         pct_ms(ts, nts, 50), pct_ms(ts, nts, 99));
out_free:
	free(lat);
	free(ts);
	free(ids);
}

static void reset(void)
{
	size_t n = atomic_load(&taken);

	if (n > capacity)
		n = capacity;
	for (size_t i = 0; i < n; i++)
		atomic_store(&records[i].ready, false);
	atomic_store(&taken, 0);
	atomic_store(&dropped, 0);
}

static enum MHD_Result answer_text(struct MHD_Connection *conn,
                                   unsigned int status, const char *text)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	        strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	if (resp == NULL)
		return MHD_NO;
	rc = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result admin(struct MHD_Connection *conn, const char *url)
{
	char line[1024];

	if (strcmp(url, "/_stats") == 0) {
		summary(line, sizeof(line));
		return answer_text(conn, MHD_HTTP_OK, line);
	}
	if (strcmp(url, "/_count") == 0) {
		size_t n = atomic_load(&taken);

		snprintf(line, sizeof(line), "%zu",
		         n < capacity ? n : capacity);
		return answer_text(conn, MHD_HTTP_OK, line);
	}
	if (strcmp(url, "/_reset") == 0) {
		reset();
		return answer_text(conn, MHD_HTTP_OK, "reset");
	}
	return answer_text(conn, MHD_HTTP_NOT_FOUND, "not found");
}

static bool append(struct upload *up, const char *data, size_t len)
{
	if (up->len + len > BODY_MAX)
		return false;
	if (up->len + len + 1 > up->cap) {
		size_t cap = up->cap ? up->cap : 1024;
		char *grown;

		while (cap < up->len + len + 1)
			cap *= 2;
		grown = realloc(up->body, cap);
		if (grown == NULL)
			return false;
		up->body = grown;
		up->cap = cap;
	}
	memcpy(up->body + up->len, data, len);
	up->len += len;
	up->body[up->len] = '\0';
	return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
	struct upload *up = *con_cls;

	(void)cls;
	(void)version;
	if (strcmp(method, "POST") != 0)
		return admin(conn, url);
	if (up == NULL) {
		up = calloc(1, sizeof(*up));
		if (up == NULL)
			return MHD_NO;
		*con_cls = up;
		return MHD_YES;
	}
	if (*data_size > 0) {
		if (!up->too_big && !append(up, data, *data_size))
			up->too_big = true;
		*data_size = 0;
		return MHD_YES;
	}
	if (up->too_big)
		return answer_text(conn, MHD_HTTP_CONTENT_TOO_LARGE,
		                   "body too large");
	record(conn, url, up);
	return MHD_queue_response(conn, MHD_HTTP_OK, ok_response);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
	struct upload *up = *con_cls;

	(void)cls;
	(void)conn;
	(void)why;
	if (up != NULL) {
		free(up->body);
		free(up);
		*con_cls = NULL;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: notify_receiver [-a addr] [-p port] "
	                "[-t threads] [-c capacity] [-s whsec_secret]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr_text = "127.0.0.77";
	unsigned int threads = 2;
	long port = 48077;
	struct sockaddr_in addr = {.sin_family = AF_INET};
	struct MHD_Daemon *daemon;
	char line[1024];
	sigset_t stop;
	int opt, sig;

	while ((opt = getopt(argc, argv, "a:p:t:c:s:")) != -1) {
		switch (opt) {
		case 'a':
			addr_text = optarg;
			break;
		case 'p':
			port = strtol(optarg, NULL, 10);
			break;
		case 't':
			threads = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'c':
			capacity = strtoul(optarg, NULL, 10);
			break;
		case 's':
			secret = optarg;
			if (!vox_whsig_secret_valid(secret)) {
				fprintf(stderr, "notify_receiver: -s: not a "
				                "whsec_ secret\n");
				return 2;
			}
			break;
		default:
			usage();
		}
	}
	if (port < 1 || port > 65535 || threads < 1 || threads > 64 ||
	    capacity < 1 || capacity > 100000000 ||
	    inet_pton(AF_INET, addr_text, &addr.sin_addr) != 1)
		usage();
	addr.sin_port = htons((uint16_t)port);
	/* calloc: pages are touched only as records arrive */
	records = calloc(capacity, sizeof(*records));
	ok_response = MHD_create_response_from_buffer(2, (void *)"ok",
	                                              MHD_RESPMEM_PERSISTENT);
	if (records == NULL || ok_response == NULL) {
		fprintf(stderr, "notify_receiver: out of memory\n");
		return 1;
	}
	/* blocked before the server's threads start, so they inherit it and
	 * only sigwait below sees the signals */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	daemon = MHD_start_daemon(
	        MHD_USE_EPOLL_INTERNAL_THREAD, 0, NULL, NULL, on_request, NULL,
	        MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_THREAD_POOL_SIZE,
	        threads, MHD_OPTION_CONNECTION_LIMIT, 4096U,
	        MHD_OPTION_CONNECTION_TIMEOUT, 60U, MHD_OPTION_NOTIFY_COMPLETED,
	        on_completed, NULL, MHD_OPTION_END);
	if (daemon == NULL) {
		fprintf(stderr, "notify_receiver: cannot listen on %s:%ld\n",
		        addr_text, port);
		return 1;
	}
	fprintf(stderr, "notify_receiver: listening on %s:%ld\n", addr_text,
	        port);
	sigwait(&stop, &sig);
	MHD_stop_daemon(daemon);
	summary(line, sizeof(line));
	printf("%s\n", line);
	MHD_destroy_response(ok_response);
	free(records);
	return 0;
}
