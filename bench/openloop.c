/*
 * openloop: a fixed-rate (open-loop) HTTP load generator for bench/ingress.
 *
 * Requests are scheduled at a fixed rate, whatever the server's pace; each
 * goes out on an idle keep-alive connection of a pool, and its latency is
 * measured from the time it was SCHEDULED, not from when it was sent, so a
 * slow server (or a slow generator) shows in the figures instead of
 * slowing the load down (no "coordinated omission", like wrk2). A request
 * that finds no idle connection waits in a queue, and that wait counts.
 *
 * One thread, epoll, plain sockets: it uses far less CPU than vegeta, which
 * matters on a 2-core machine that also runs the server, PostgreSQL, Redis
 * and Kafka. HTTP/1.1 only as far as the ingress needs: a status line,
 * headers and a Content-Length body.
 *
 *   openloop -p port [-a 127.0.0.1] [-P path] -r rate [-d seconds]
 *            [-c connections] [-w warmup_seconds] [-f requests] [-o log]
 *
 * API keys come from BENCH_KEYS (space-separated; used in turn, one per
 * request); none: no Authorization header.
 *
 * -f requests (tests/chaos): a file of requests used in turn instead, one
 * a line: "METHOD PATH KEY [BODY]" (KEY the bearer key, "-" for none; BODY
 * the rest of the line, sent as application/json).
 *
 * -o log (tests/chaos): one line per request of the measured window,
 * "<ms scheduled after the window's start> <status> <id> <latency ms>"
 * (latency from when the request was scheduled to its answer), after a
 * first line "# start <the window's start, epoch seconds>": status 0 when
 * the request got no answer (connection lost, unanswered 5 s after the
 * end), id the first "id" string of the answer's JSON body or "-". So a
 * caller can check what became of every command the server accepted.
 *
 * Signed carrier requests (bench/routing): with BENCH_CARRIER_KEY,
 * BENCH_CARRIER_SECRET and BENCH_ROUTE_NUMBERS (space-separated E.164),
 * each request is built when it is sent: a JSON body {"to": the next
 * number in turn, "from": a caller number unique to the request} signed
 * with Vox-Signature (HMAC-SHA256 of "<t>.<body>", docs/CARRIER_CDRS.md),
 * so no two requests share a signature (the server refuses replays). The
 * signing (a few microseconds) counts in the measured latency only when the
 * generator falls behind. The warm-up runs at the same
 * rate and is not counted. Prints one line of key=value pairs:
 *   OPEN rate=R sent=N ok=N non2xx=N errors=N unsent=N seconds=S rps=R
 *        p50_ms= p90_ms= p99_ms= p999_ms= max_ms=
 * (ok: 2xx answers; unsent: scheduled but still queued at the end; errors:
 * connection failures and requests unanswered 5 s after the end.)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEYS 64
#define MAX_REQS 65536
#define RBUF     16384

struct conn {
	int fd;
	bool busy;
	bool pooled;      /* in the idle pool (at most once) */
	int64_t sched_ns; /* when the request in flight was scheduled */
	bool counted;     /* that request is in the measured window */
	size_t rlen;
	char rbuf[RBUF];
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct sockaddr_in addr;
static int epfd;
static char *reqs[MAX_REQS];
static size_t req_lens[MAX_REQS];
static int nreqs;
static FILE *answer_log; /* -o */
static int64_t log_t0;   /* the measured window's start */

/* Signed carrier requests (BENCH_CARRIER_KEY...), NULL key: off. */
static const char *carrier_key, *carrier_secret;
static char *route_to[MAX_KEYS];
static int nroute_to;
static char host_port[64];
static const char *req_path;

static float *lat_ms;
static size_t nlat, lat_cap;
static long ok, non2xx, errors;

static int conn_open(struct conn *c)
{
	int one = 1;
	struct epoll_event ev = {.events = EPOLLIN};

	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -1;
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ev.data.ptr = c;
	epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
	c->busy = false;
	c->rlen = 0;
	return 0;
}

static void conn_reset(struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->busy = false;
	c->rlen = 0;
}

/* The first "id" string value of a JSON body, into id (or "-"). */
static void body_id(const char *body, size_t len, char *id, size_t idlen)
{
	const char *end = body + len, *p = body;

	snprintf(id, idlen, "-");
	while ((p = memmem(p, (size_t)(end - p), "\"id\"", 4)) != NULL) {
		const char *v = p + 4, *q;

		while (v < end && (*v == ' ' || *v == ':'))
			v++;
		p += 4;
		if (v >= end || *v != '"')
			continue;
		q = memchr(v + 1, '"', (size_t)(end - v - 1));
		if (q == NULL || (size_t)(q - v - 1) >= idlen)
			return;
		memcpy(id, v + 1, (size_t)(q - v - 1));
		id[q - v - 1] = '\0';
		return;
	}
}

static void log_answer(const struct conn *c, int status, const char *body,
                       size_t len, int64_t now)
{
	char id[128];

	if (answer_log == NULL || !c->counted)
		return;
	body_id(body, len, id, sizeof(id));
	fprintf(answer_log, "%.1f %d %s %.1f\n",
	        (double)(c->sched_ns - log_t0) / 1e6, status, id,
	        (double)(now - c->sched_ns) / 1e6);
}

static void record(struct conn *c, int status, int64_t now)
{
	if (!c->counted)
		return;
	if (status >= 200 && status < 300)
		ok++;
	else
		non2xx++;
	if (nlat == lat_cap) {
		lat_cap = lat_cap ? lat_cap * 2 : 1 << 16;
		lat_ms = realloc(lat_ms, lat_cap * sizeof(*lat_ms));
		if (lat_ms == NULL) {
			fprintf(stderr, "openloop: out of memory\n");
			exit(1);
		}
	}
	lat_ms[nlat++] = (float)((double)(now - c->sched_ns) / 1e6);
}

/* Parses whole responses from c->rbuf; returns -1 on a protocol error. */
static int conn_parse(struct conn *c, int64_t now)
{
	for (;;) {
		char *end, *p;
		long clen = 0;
		int status;
		size_t total;

		c->rbuf[c->rlen] = '\0';
		end = strstr(c->rbuf, "\r\n\r\n");
		if (end == NULL)
			return c->rlen >= RBUF - 1 ? -1 : 0;
		if (strncmp(c->rbuf, "HTTP/1.", 7) != 0 ||
		    sscanf(c->rbuf + 8, " %d", &status) != 1)
			return -1;
		for (p = strstr(c->rbuf, "\r\n"); p && p < end;
		     p = strstr(p + 2, "\r\n")) {
			if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
				clen = strtol(p + 17, NULL, 10);
		}
		total = (size_t)(end + 4 - c->rbuf) + (size_t)clen;
		if (total >= RBUF)
			return -1;
		if (c->rlen < total)
			return 0;
		if (!c->busy)
			return -1; /* an answer nobody asked for */
		log_answer(c, status, end + 4, (size_t)clen, now);
		record(c, status, now);
		c->busy = false;
		memmove(c->rbuf, c->rbuf + total, c->rlen - total);
		c->rlen -= total;
	}
}

/* Puts c back in the idle pool unless it is there already: the server
 * may close an idle keep-alive connection, and pooling it twice would
 * overrun the pool. */
static void pool_put(struct conn *c, struct conn *conns, int *idle, int *nidle)
{
	if (c->pooled)
		return;
	c->pooled = true;
	idle[(*nidle)++] = (int)(c - conns);
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

static double pct(double p)
{
	size_t i;

	if (nlat == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)(nlat - 1) + 0.5);
	return lat_ms[i];
}

static void usage(void)
{
	fprintf(stderr, "usage: openloop -p port [-a addr] [-P path] -r rate "
	                "[-d seconds] [-c connections] [-w warmup_seconds] "
	                "[-f requests] [-o log]\n");
	exit(2);
}

/* The k-th signed route request into buf; its length, or 0. */
static size_t route_request(long k, char *buf, size_t buflen)
{
	char body[160], msg[192], hex[65];
	unsigned char md[32];
	size_t mdlen = 0;
	long long t = (long long)time(NULL);
	int blen, mlen, n;

	blen = snprintf(body, sizeof(body),
	                "{\"to\":\"%s\",\"from\":\"+1415%07ld\"}",
	                route_to[k % nroute_to], k % 10000000);
	mlen = snprintf(msg, sizeof(msg), "%lld.%s", t, body);
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, carrier_secret,
	              strlen(carrier_secret), (unsigned char *)msg,
	              (size_t)mlen, md, sizeof(md), &mdlen) == NULL ||
	    mdlen != 32)
		return 0;
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	n = snprintf(buf, buflen,
	             "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer "
	             "%s\r\nVox-Signature: t=%lld,v1=%s\r\nContent-Type: "
	             "application/json\r\nContent-Length: %d\r\n\r\n%s",
	             req_path, host_port, carrier_key, t, hex, blen, body);
	return n > 0 && (size_t)n < buflen ? (size_t)n : 0;
}

/* BENCH_CARRIER_KEY, BENCH_CARRIER_SECRET, BENCH_ROUTE_NUMBERS: false
 * when the key is not set (plain mode). */
static bool route_setup(void)
{
	const char *numbers = getenv("BENCH_ROUTE_NUMBERS");

	carrier_key = getenv("BENCH_CARRIER_KEY");
	carrier_secret = getenv("BENCH_CARRIER_SECRET");
	if (carrier_key == NULL || *carrier_key == '\0')
		return false;
	if (carrier_secret == NULL || numbers == NULL) {
		fprintf(stderr,
		        "openloop: BENCH_CARRIER_KEY needs "
		        "BENCH_CARRIER_SECRET and BENCH_ROUTE_NUMBERS\n");
		exit(2);
	}
	for (const char *s = numbers; *s && nroute_to < MAX_KEYS;) {
		size_t n;

		s += strspn(s, " \t\n");
		n = strcspn(s, " \t\n");
		if (n == 0)
			break;
		route_to[nroute_to++] = strndup(s, n);
		s += n;
	}
	if (nroute_to == 0) {
		fprintf(stderr, "openloop: BENCH_ROUTE_NUMBERS is empty\n");
		exit(2);
	}
	return true;
}

/* -f: "METHOD PATH KEY [BODY]" a line into reqs; exits on a bad file. */
static void load_requests(const char *file, const char *host, int port)
{
	FILE *f = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if (f == NULL) {
		fprintf(stderr, "openloop: %s: %s\n", file, strerror(errno));
		exit(2);
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		char method[16], path[512], key[256], auth[300] = "";
		const char *body;
		int used = 0, n;

		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (sscanf(line, "%15s %511s %255s%n", method, path, key,
		           &used) != 3 ||
		    nreqs == MAX_REQS) {
			fprintf(stderr,
			        "openloop: %s: bad line or too many: %s\n",
			        file, line);
			exit(2);
		}
		body = line + used;
		body += strspn(body, " ");
		if (strcmp(key, "-") != 0)
			snprintf(auth, sizeof(auth),
			         "Authorization: Bearer %s\r\n", key);
		n = asprintf(&reqs[nreqs],
		             "%s %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s"
		             "Content-Length: %zu\r\n\r\n%s",
		             method, path, host, port, auth,
		             *body ? "Content-Type: application/json\r\n" : "",
		             strlen(body), body);
		if (n < 0) {
			fprintf(stderr, "openloop: out of memory\n");
			exit(1);
		}
		req_lens[nreqs++] = (size_t)n;
	}
	free(line);
	fclose(f);
	if (nreqs == 0) {
		fprintf(stderr, "openloop: %s: no requests\n", file);
		exit(2);
	}
}

/* A whole decimal number, or usage(). */
static long num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end != '\0')
		usage();
	return v;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *path = "/v1/canary";
	const char *keys = getenv("BENCH_KEYS");
	const char *req_file = NULL, *log_file = NULL;
	int port = 0, nconn = 256, opt;
	double rate = 0, seconds = 10, warmup = 2;
	struct conn *conns;
	int *idle, nidle = 0;
	int64_t t0, t_measure, t_end, interval, next;
	long sent = 0, queued = 0, k = 0;
	struct epoll_event evs[256];

	while ((opt = getopt(argc, argv, "a:p:P:r:d:c:w:f:o:h")) != -1) {
		switch (opt) {
		case 'a':
			host = optarg;
			break;
		case 'p':
			port = (int)num(optarg);
			break;
		case 'P':
			path = optarg;
			break;
		case 'r':
			rate = atof(optarg);
			break;
		case 'd':
			seconds = atof(optarg);
			break;
		case 'c':
			nconn = (int)num(optarg);
			break;
		case 'w':
			warmup = atof(optarg);
			break;
		case 'f':
			req_file = optarg;
			break;
		case 'o':
			log_file = optarg;
			break;
		default:
			usage();
		}
	}
	if (port <= 0 || port > 65535 || rate <= 0 || seconds <= 0 ||
	    nconn < 1 || warmup < 0)
		usage();
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		usage();
	snprintf(host_port, sizeof(host_port), "%s:%d", host, port);
	req_path = path;

	if (log_file != NULL && (answer_log = fopen(log_file, "w")) == NULL) {
		fprintf(stderr, "openloop: %s: %s\n", log_file,
		        strerror(errno));
		return 2;
	}
	if (req_file != NULL) {
		load_requests(req_file, host, port);
		keys = NULL;
	} else if (route_setup()) {
		keys = NULL; /* each request is built when sent */
	}
	for (const char *s = keys ? keys : ""; *s && nreqs < MAX_KEYS;) {
		size_t n;

		s += strspn(s, " \t\n");
		n = strcspn(s, " \t\n");
		if (n == 0)
			break;
		req_lens[nreqs] = (size_t)asprintf(
		        &reqs[nreqs],
		        "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: "
		        "Bearer %.*s\r\nContent-Length: 0\r\n\r\n",
		        path, host, port, (int)n, s);
		nreqs++;
		s += n;
	}
	if (nreqs == 0 && req_file == NULL) {
		req_lens[0] = (size_t)asprintf(
		        &reqs[0],
		        "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: "
		        "0\r\n\r\n",
		        path, host, port);
		nreqs = 1;
	}

	epfd = epoll_create1(0);
	conns = calloc((size_t)nconn, sizeof(*conns));
	idle = calloc((size_t)nconn, sizeof(*idle));
	if (conns == NULL || idle == NULL)
		return 1;
	for (int i = 0; i < nconn; i++) {
		if (conn_open(&conns[i]) != 0) {
			fprintf(stderr, "openloop: connect %s:%d: %s\n", host,
			        port, strerror(errno));
			return 1;
		}
		pool_put(&conns[i], conns, idle, &nidle);
	}

	interval = (int64_t)(1e9 / rate);
	t0 = now_ns();
	t_measure = t0 + (int64_t)(warmup * 1e9);
	log_t0 = t_measure;
	if (answer_log != NULL) {
		struct timespec wall;

		clock_gettime(CLOCK_REALTIME, &wall);
		fprintf(answer_log, "# start %.3f\n",
		        (double)wall.tv_sec + (double)wall.tv_nsec / 1e9 +
		                warmup);
	}
	t_end = t_measure + (int64_t)(seconds * 1e9);
	next = t0;
	for (;;) {
		int64_t now = now_ns();
		int n;
		struct timespec tmo;
		int64_t wait;

		/* Requests due by now: those not yet sent are "queued". */
		if (now < t_end)
			while (next <= now && next < t_end) {
				queued++;
				next += interval;
			}
		while (queued > 0 && nidle > 0) {
			int64_t sched = next - queued * interval;
			struct conn *c = &conns[idle[--nidle]];
			const char *wire = reqs[k % nreqs];
			size_t len = req_lens[k % nreqs];
			char signed_req[1024];
			ssize_t w;

			c->pooled = false;
			if (c->fd < 0 && conn_open(c) != 0) {
				errors++;
				pool_put(c, conns, idle, &nidle);
				break;
			}
			if (carrier_key != NULL) {
				len = route_request(k, signed_req,
				                    sizeof(signed_req));
				wire = signed_req;
			}
			w = len == 0 ? -1
			             : send(c->fd, wire, len, MSG_NOSIGNAL);
			k++;
			queued--;
			if (w !=
			    (ssize_t)len) { /* a fresh request always fits */
				if (sched >= t_measure)
					errors++;
				conn_reset(c);
				pool_put(c, conns, idle, &nidle);
				continue;
			}
			c->busy = true;
			c->sched_ns = sched;
			c->counted = sched >= t_measure;
			if (c->counted)
				sent++;
		}
		if (now >= t_end) {
			int busy = 0;

			for (int i = 0; i < nconn; i++)
				busy += conns[i].busy;
			if (busy == 0 || now > t_end + 5000000000LL)
				break;
			wait = 10000000;
		} else {
			wait = queued > 0 ? 1000000 : next - now;
			if (wait < 0)
				wait = 0;
		}
		tmo.tv_sec = wait / 1000000000;
		tmo.tv_nsec = wait % 1000000000;
		n = epoll_pwait2(epfd, evs, 256, &tmo, NULL);
		now = now_ns();
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			ssize_t r = recv(c->fd, c->rbuf + c->rlen,
			                 RBUF - 1 - c->rlen, 0);

			if (r > 0) {
				c->rlen += (size_t)r;
				if (conn_parse(c, now) == 0) {
					if (!c->busy)
						pool_put(c, conns, idle,
						         &nidle);
					continue;
				}
			} else if (r < 0 &&
			           (errno == EAGAIN || errno == EINTR)) {
				continue;
			}
			/* closed, error or garbage: the request is lost */
			if (c->busy && c->counted) {
				errors++;
				log_answer(c, 0, "", 0, now);
			}
			conn_reset(c);
			pool_put(c, conns, idle, &nidle);
		}
	}
	for (int i = 0; i < nconn; i++)
		if (conns[i].busy && conns[i].counted) {
			errors++;
			log_answer(&conns[i], 0, "", 0, now_ns());
		}
	if (answer_log != NULL && fclose(answer_log) != 0) {
		fprintf(stderr, "openloop: writing the log failed\n");
		return 1;
	}

	qsort(lat_ms, nlat, sizeof(*lat_ms), cmp_float);
	printf("OPEN rate=%.0f sent=%ld ok=%ld non2xx=%ld errors=%ld "
	       "unsent=%ld "
	       "seconds=%.2f rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f "
	       "p999_ms=%.2f max_ms=%.2f\n",
	       rate, sent, ok, non2xx, errors, queued, seconds,
	       (double)ok / seconds, pct(50), pct(90), pct(99), pct(99.9),
	       nlat ? (double)lat_ms[nlat - 1] : 0.0);
	free(conns);
	free(idle);
	return 0;
}
