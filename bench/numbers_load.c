/*
 * numbers_load: a fixed-rate (open-loop) GET load generator over a list of
 * URLs, for bench/numbers (the search of available numbers).
 *
 * Like bench/openloop.c (whose method it follows): requests are scheduled at
 * a fixed rate whatever the server's pace, each goes out on an idle
 * keep-alive connection of a pool, and its latency is counted from when it
 * was DUE, so a slow server shows in the figures instead of slowing the load
 * down (no coordinated omission). What it adds: GET requests taken from a
 * file of paths (one per line, e.g. /v1/available-numbers?country=US&...),
 * used in turn, each once (-o: never wrap; "cold" queries that miss the
 * cache) or cycled (the default: "cached" queries); the X-Cache header of
 * every answer is counted, with the latency of hits and misses apart; and a
 * request still unanswered at the end is not dropped from the percentiles:
 * it counts with the time it had waited so far (a lower bound, flagged
 * lower_bound=1), so an overloaded server cannot look fast by not answering.
 *
 *   numbers_load -p port -f paths -r rate [-d seconds] [-w warmup]
 *                [-c connections] [-o] [-g grace_seconds] [-C]
 *
 * SIGTERM or SIGINT ends the measured window early (then the grace period
 * and the figures, over the time actually measured): for a background
 * load that runs as long as something else does.
 *
 * -C: closed loop instead (each connection sends its next request as soon as
 * the previous answer is in; latency from the send): the capacity probe.
 * The API key comes from BENCH_KEY. Prints one line of key=value pairs:
 *   NUMLOAD mode=open rate=R due=N ok=N non2xx=N errors=N unanswered=N
 *           seconds=S rps=R p50_ms= p90_ms= p99_ms= p999_ms= max_ms=
 *           lower_bound=0|1 hit=N miss=N stale=N other=N hit_p50_ms=
 *           hit_p99_ms= miss_p50_ms= miss_p99_ms= wrapped=0|1
 * (due: requests scheduled in the measured window; ok: 2xx; unanswered:
 * still queued or in flight when the grace period after the end ran out.)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
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

#define RBUF 65536

enum cache { C_HIT, C_MISS, C_STALE, C_OTHER, C_NONE };

struct conn {
	int fd;
	bool busy;
	int64_t sched_ns;
	bool counted;
	size_t rlen;
	char rbuf[RBUF];
};

struct sample {
	float ms;
	unsigned char cache;
};

static struct sockaddr_in addr;
static int epfd;
static char **paths;
static size_t npaths;
static const char *key;
static char host_hdr[64];

static struct sample *lat;
static size_t nlat, lat_cap;
static long ok, non2xx, errors, cache_n[5];
static bool closed_loop;
static volatile sig_atomic_t stop_now;

static void on_stop(int sig)
{
	(void)sig;
	stop_now = 1;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr, "usage: numbers_load -p port -f paths -r rate "
	                "[-d seconds] [-w warmup] [-c connections] [-o] "
	                "[-g grace] [-C] [-a addr]\n");
	exit(2);
}

static void add_sample(double ms, enum cache c)
{
	if (nlat == lat_cap) {
		lat_cap = lat_cap ? lat_cap * 2 : 1 << 16;
		lat = realloc(lat, lat_cap * sizeof(*lat));
		if (lat == NULL) {
			fprintf(stderr, "numbers_load: out of memory\n");
			exit(1);
		}
	}
	lat[nlat].ms = (float)ms;
	lat[nlat].cache = (unsigned char)c;
	nlat++;
}

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

static enum cache header_cache(const char *v)
{
	if (strncasecmp(v, "hit", 3) == 0)
		return C_HIT;
	if (strncasecmp(v, "miss", 4) == 0)
		return C_MISS;
	if (strncasecmp(v, "stale", 5) == 0)
		return C_STALE;
	return C_OTHER;
}

/* Parses whole responses from c->rbuf; -1 on a protocol error. */
static int conn_parse(struct conn *c, int64_t now)
{
	for (;;) {
		char *end, *p;
		long clen = 0;
		int status;
		size_t total;
		enum cache cache = C_NONE;

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
			else if (strncasecmp(p + 2, "X-Cache:", 8) == 0)
				cache = header_cache(p + 10 +
				                     strspn(p + 10, " "));
		}
		total = (size_t)(end + 4 - c->rbuf) + (size_t)clen;
		if (total >= RBUF)
			return -1;
		if (c->rlen < total)
			return 0;
		if (!c->busy)
			return -1;
		if (c->counted) {
			if (status >= 200 && status < 300)
				ok++;
			else
				non2xx++;
			cache_n[cache]++;
			add_sample((double)(now - c->sched_ns) / 1e6, cache);
		}
		c->busy = false;
		memmove(c->rbuf, c->rbuf + total, c->rlen - total);
		c->rlen -= total;
	}
}

static int cmp_sample(const void *a, const void *b)
{
	float x = ((const struct sample *)a)->ms,
	      y = ((const struct sample *)b)->ms;

	return (x > y) - (x < y);
}

/* Percentile p of the sorted samples of class c (C_NONE: all). */
static double pct(double p, int c)
{
	size_t n = 0, want, i;

	for (i = 0; i < nlat; i++)
		n += c == C_NONE || lat[i].cache == c;
	if (n == 0)
		return 0;
	want = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	for (i = 0; i < nlat; i++)
		if (c == C_NONE || lat[i].cache == c) {
			if (want == 0)
				return lat[i].ms;
			want--;
		}
	return 0;
}

static long num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end != '\0')
		usage();
	return v;
}

static void load_paths(const char *file)
{
	FILE *f = fopen(file, "r");
	char line[2048];
	size_t cap = 0;

	if (f == NULL) {
		perror(file);
		exit(2);
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] != '/')
			continue;
		if (npaths == cap) {
			cap = cap ? cap * 2 : 1024;
			paths = realloc(paths, cap * sizeof(*paths));
			if (paths == NULL)
				exit(1);
		}
		paths[npaths++] = strdup(line);
	}
	fclose(f);
	if (npaths == 0) {
		fprintf(stderr, "numbers_load: no paths in %s\n", file);
		exit(2);
	}
}

/* Sends the next path on c; false if the connection failed. */
static bool send_next(struct conn *c, size_t *k, int64_t sched,
                      int64_t t_measure, bool once, bool *wrapped)
{
	char req[4096];
	int len;
	ssize_t w;

	if (*k >= npaths && once)
		*wrapped = true;
	len = snprintf(req, sizeof(req),
	               "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer "
	               "%s\r\n\r\n",
	               paths[*k % npaths], host_hdr, key ? key : "");
	(*k)++;
	if (c->fd < 0 && conn_open(c) != 0)
		return false;
	w = send(c->fd, req, (size_t)len, MSG_NOSIGNAL);
	if (w != len) {
		conn_reset(c);
		return false;
	}
	c->busy = true;
	c->sched_ns = sched;
	c->counted = sched >= t_measure;
	return true;
}

int main(int argc, char **argv)
{
	const char *hostname = "127.0.0.1", *file = NULL;
	int port = 0, nconn = 64, opt;
	double rate = 0, seconds = 10, warmup = 2, grace = 5;
	bool once = false, wrapped = false;
	struct conn *conns;
	int *idle, nidle = 0;
	int64_t t0, t_measure, t_end, interval = 0, next;
	long due = 0, queued = 0, unanswered = 0;
	size_t k = 0;
	struct epoll_event evs[256];

	while ((opt = getopt(argc, argv, "a:p:f:r:d:w:c:og:Ch")) != -1) {
		switch (opt) {
		case 'a':
			hostname = optarg;
			break;
		case 'p':
			port = (int)num(optarg);
			break;
		case 'f':
			file = optarg;
			break;
		case 'r':
			rate = atof(optarg);
			break;
		case 'd':
			seconds = atof(optarg);
			break;
		case 'w':
			warmup = atof(optarg);
			break;
		case 'c':
			nconn = (int)num(optarg);
			break;
		case 'o':
			once = true;
			break;
		case 'g':
			grace = atof(optarg);
			break;
		case 'C':
			closed_loop = true;
			break;
		default:
			usage();
		}
	}
	if (port <= 0 || port > 65535 || file == NULL ||
	    (!closed_loop && rate <= 0) || seconds <= 0 || nconn < 1 ||
	    warmup < 0 || grace < 0)
		usage();
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, hostname, &addr.sin_addr) != 1)
		usage();
	snprintf(host_hdr, sizeof(host_hdr), "%s:%d", hostname, port);
	key = getenv("BENCH_KEY");
	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	load_paths(file);

	epfd = epoll_create1(0);
	conns = calloc((size_t)nconn, sizeof(*conns));
	idle = calloc((size_t)nconn, sizeof(*idle));
	if (conns == NULL || idle == NULL)
		return 1;
	for (int i = 0; i < nconn; i++) {
		if (conn_open(&conns[i]) != 0) {
			fprintf(stderr, "numbers_load: connect %s:%d: %s\n",
			        hostname, port, strerror(errno));
			return 1;
		}
		idle[nidle++] = i;
	}

	if (!closed_loop)
		interval = (int64_t)(1e9 / rate);
	t0 = now_ns();
	t_measure = t0 + (int64_t)(warmup * 1e9);
	t_end = t_measure + (int64_t)(seconds * 1e9);
	next = t0;
	for (;;) {
		int64_t now = now_ns();
		int n;
		struct timespec tmo;
		int64_t wait;

		if (stop_now && now < t_end) {
			t_end = now > t_measure ? now : t_measure + 1;
			seconds = (double)(t_end - t_measure) / 1e9;
		}
		if (closed_loop) {
			while (now < t_end && nidle > 0) {
				struct conn *c = &conns[idle[--nidle]];

				if (!send_next(c, &k, now, t_measure, once,
				               &wrapped)) {
					errors += now >= t_measure;
					idle[nidle++] = (int)(c - conns);
					break;
				}
				due += c->counted;
			}
		} else {
			if (now < t_end)
				while (next <= now && next < t_end) {
					queued++;
					due += next >= t_measure;
					next += interval;
				}
			while (queued > 0 && nidle > 0) {
				int64_t sched = next - queued * interval;
				struct conn *c = &conns[idle[--nidle]];

				queued--;
				if (!send_next(c, &k, sched, t_measure, once,
				               &wrapped)) {
					errors += sched >= t_measure;
					idle[nidle++] = (int)(c - conns);
					continue;
				}
			}
		}
		if (now >= t_end) {
			int busy = 0;

			for (int i = 0; i < nconn; i++)
				busy += conns[i].busy;
			if ((busy == 0 && queued == 0) ||
			    now > t_end + (int64_t)(grace * 1e9))
				break;
			wait = 10000000;
		} else if (closed_loop) {
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
						idle[nidle++] =
						        (int)(c - conns);
					continue;
				}
			} else if (r < 0 &&
			           (errno == EAGAIN || errno == EINTR)) {
				continue;
			}
			if (c->busy && c->counted)
				errors++;
			conn_reset(c);
			idle[nidle++] = (int)(c - conns);
		}
	}

	/* What is still unanswered counts, with the wait so far (a lower
	 * bound of its latency). */
	{
		int64_t now = now_ns();

		for (int i = 0; i < nconn; i++)
			if (conns[i].busy && conns[i].counted) {
				unanswered++;
				add_sample((double)(now - conns[i].sched_ns) /
				                   1e6,
				           C_NONE);
			}
		for (long q = queued; q > 0; q--) {
			int64_t sched = next - q * interval;

			if (sched >= t_measure) {
				unanswered++;
				add_sample((double)(now - sched) / 1e6, C_NONE);
			}
		}
	}

	qsort(lat, nlat, sizeof(*lat), cmp_sample);
	printf("NUMLOAD mode=%s rate=%.0f due=%ld ok=%ld non2xx=%ld "
	       "errors=%ld unanswered=%ld seconds=%.2f rps=%.0f p50_ms=%.2f "
	       "p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f "
	       "lower_bound=%d hit=%ld miss=%ld stale=%ld other=%ld "
	       "hit_p50_ms=%.2f hit_p99_ms=%.2f miss_p50_ms=%.2f "
	       "miss_p99_ms=%.2f wrapped=%d\n",
	       closed_loop ? "closed" : "open", closed_loop ? 0.0 : rate, due,
	       ok, non2xx, errors, unanswered, seconds, (double)ok / seconds,
	       pct(50, C_NONE), pct(90, C_NONE), pct(99, C_NONE),
	       pct(99.9, C_NONE), nlat ? (double)lat[nlat - 1].ms : 0.0,
	       unanswered > 0, cache_n[C_HIT], cache_n[C_MISS],
	       cache_n[C_STALE], cache_n[C_OTHER] + cache_n[C_NONE],
	       pct(50, C_HIT), pct(99, C_HIT), pct(50, C_MISS), pct(99, C_MISS),
	       wrapped);
	return 0;
}
