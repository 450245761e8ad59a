/*
 * numbers_orders: end-to-end order latency for bench/numbers.
 *
 * Buys numbers through the API the way a client does, with a fixed number
 * of flows in parallel (-c), each flow one number:
 *   1. POST /v1/reservations {"phone_numbers":[E164]}      Prefer: wait=10
 *   2. POST /v1/orders {"reservation_id":...}               Prefer: wait=10
 *   3. POST /v1/numbers/{id}/activate {"forward_to":...}    Prefer: wait=10
 * Each step must come back finished (200, operation completed; the order
 * complete). The figure is "accepted -> active": from just before the order
 * is sent to when the activation's answer is in (client clock: what a
 * customer waits for once the purchase is submitted), and, from the
 * operations themselves, the order operation's created_at (when the ingress
 * accepted it) to the activation operation's completed_at (server clock:
 * without the client's last round trip). The reservation comes before the
 * order and is timed apart.
 *
 *   numbers_orders -p port -f numbers -c flows [-n count] [-a addr]
 *
 * The numbers file has one "number_id e164" line per number (ids from the
 * search); the API key comes from BENCH_KEY. Prints one line:
 *   ORDERS flows=N ok=N failed=N seconds=S per_s=R e2e_p50_ms= e2e_p90_ms=
 *          e2e_p99_ms= e2e_max_ms= srv_p50_ms= srv_p99_ms= srv_max_ms=
 *          reserve_p50_ms= reserve_p99_ms= order_p50_ms= order_p99_ms=
 *          activate_p50_ms= activate_p99_ms=
 * and the first failures on stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FORWARD_TO "+14155550100"

struct number {
	char id[40];
	char e164[20];
};

struct result {
	bool ok;
	double reserve_ms, order_ms, activate_ms, e2e_ms, srv_ms;
};

static struct sockaddr_in addr;
static char host_hdr[64];
static const char *key;
static struct number *nums;
static struct result *results;
static int count;
static atomic_int next_index;
static atomic_int failures_shown;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* "2026-11-24T16:02:17.123456Z" -> ms since the epoch; -1 if unreadable. */
static double iso_ms(const char *s)
{
	struct tm tm = {0};
	const char *p;
	double frac = 0;

	if (s == NULL || (p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*p == '.')
		frac = strtod(p, NULL);
	return ((double)timegm(&tm) + frac) * 1e3;
}

static int conn_open(void)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* One POST on *fd (reconnects once); the status, and the body in *body
 * (malloc'd). -1 on a connection failure. */
static int post(int *fd, const char *path, const char *json, char **body)
{
	static atomic_long idem;
	char req[2048], *buf = NULL;
	size_t cap = 16384, len = 0;
	int n, status = -1;

	*body = NULL;
	n = snprintf(req, sizeof(req),
	             "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer "
	             "%s\r\nContent-Type: application/json\r\nPrefer: "
	             "wait=10\r\nIdempotency-Key: bench-%d-%ld-%ld\r\n"
	             "Content-Length: %zu\r\n\r\n%s",
	             path, host_hdr, key, getpid(), (long)time(NULL),
	             atomic_fetch_add(&idem, 1), strlen(json), json);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (*fd < 0 && (*fd = conn_open()) < 0)
			return -1;
		if (send(*fd, req, (size_t)n, MSG_NOSIGNAL) == n)
			break;
		close(*fd);
		*fd = -1;
		if (attempt == 1)
			return -1;
	}
	buf = malloc(cap);
	if (buf == NULL)
		return -1;
	for (;;) {
		char *end;
		ssize_t r;

		if (len + 1 >= cap) {
			char *bigger = realloc(buf, cap * 2);

			if (bigger == NULL)
				break;
			buf = bigger;
			cap *= 2;
		}
		r = recv(*fd, buf + len, cap - 1 - len, 0);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			break;
		}
		len += (size_t)r;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end != NULL) {
			long clen = 0;
			size_t head = (size_t)(end + 4 - buf);

			for (char *p = strstr(buf, "\r\n"); p && p < end;
			     p = strstr(p + 2, "\r\n"))
				if (strncasecmp(p + 2, "Content-Length:", 15) ==
				    0)
					clen = strtol(p + 17, NULL, 10);
			if (len >= head + (size_t)clen) {
				if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
					status = -1;
				memmove(buf, buf + head, (size_t)clen);
				buf[clen] = '\0';
				*body = buf;
				return status;
			}
		}
	}
	free(buf);
	close(*fd);
	*fd = -1;
	return -1;
}

static void fail(int i, const char *step, int status, const char *body)
{
	if (atomic_fetch_add(&failures_shown, 1) < 5)
		fprintf(stderr, "numbers_orders: %s %s: HTTP %d %.300s\n",
		        nums[i].e164, step, status, body ? body : "");
}

/* A finished, completed operation's JSON, or NULL (and the failure told). */
static json_t *step(int *fd, int i, const char *name, const char *path,
                    const char *json)
{
	char *body = NULL;
	int status = post(fd, path, json, &body);
	json_t *op = NULL;
	const char *st;

	if (status == 200 && body != NULL)
		op = json_loads(body, 0, NULL);
	st = op ? json_string_value(json_object_get(op, "status")) : NULL;
	if (st == NULL || strcmp(st, "completed") != 0) {
		fail(i, name, status, body);
		json_decref(op);
		op = NULL;
	}
	free(body);
	return op;
}

static void flow(int *fd, int i)
{
	struct result *res = &results[i];
	char json[256], path[128];
	const char *s;
	double t0, t1, t2, t3, created, completed;
	json_t *op, *result;

	snprintf(json, sizeof(json), "{\"phone_numbers\":[\"%s\"]}",
	         nums[i].e164);
	t0 = now_ms();
	if ((op = step(fd, i, "reserve", "/v1/reservations", json)) == NULL)
		return;
	result = json_object_get(op, "result");
	s = json_string_value(json_object_get(result, "reservation_id"));
	if (s == NULL) {
		fail(i, "reserve (no reservation_id)", 200, NULL);
		json_decref(op);
		return;
	}
	snprintf(json, sizeof(json), "{\"reservation_id\":\"%s\"}", s);
	json_decref(op);

	t1 = now_ms();
	if ((op = step(fd, i, "order", "/v1/orders", json)) == NULL)
		return;
	s = json_string_value(
	        json_object_get(json_object_get(op, "result"), "status"));
	created = iso_ms(json_string_value(json_object_get(op, "created_at")));
	if (s == NULL || strcmp(s, "complete") != 0) {
		fail(i, "order (not complete)", 200, s);
		json_decref(op);
		return;
	}
	json_decref(op);

	t2 = now_ms();
	snprintf(path, sizeof(path), "/v1/numbers/%s/activate", nums[i].id);
	if ((op = step(fd, i, "activate", path,
	               "{\"forward_to\":\"" FORWARD_TO "\"}")) == NULL)
		return;
	t3 = now_ms();
	completed =
	        iso_ms(json_string_value(json_object_get(op, "completed_at")));
	json_decref(op);

	res->ok = true;
	res->reserve_ms = t1 - t0;
	res->order_ms = t2 - t1;
	res->activate_ms = t3 - t2;
	res->e2e_ms = t3 - t1;
	res->srv_ms = created >= 0 && completed >= 0 ? completed - created : -1;
}

static void *worker(void *arg)
{
	int fd = -1, i;

	(void)arg;
	while ((i = atomic_fetch_add(&next_index, 1)) < count)
		flow(&fd, i);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Percentile p of one field over the successful flows. */
static double pct(size_t off, double p)
{
	double *v = malloc((size_t)count * sizeof(*v));
	size_t n = 0;
	double out = 0;

	if (v == NULL)
		return 0;
	for (int i = 0; i < count; i++) {
		double x = *(const double *)((const char *)&results[i] + off);

		if (results[i].ok && x >= 0)
			v[n++] = x;
	}
	if (n > 0) {
		qsort(v, n, sizeof(*v), cmp_double);
		out = v[(size_t)(p / 100.0 * (double)(n - 1) + 0.5)];
	}
	free(v);
	return out;
}

static void usage(void)
{
	fprintf(stderr, "usage: numbers_orders -p port -f numbers -c flows "
	                "[-n count] [-a addr]\n");
	exit(2);
}

/* A whole decimal number, or usage(). */
static int num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end != '\0' || v < 0 || v > 1000000)
		usage();
	return (int)v;
}

int main(int argc, char **argv)
{
	const char *hostname = "127.0.0.1", *file = NULL;
	int port = 0, flows = 20, limit = -1, opt, okn = 0, cap = 0;
	char line[256];
	pthread_t *threads;
	double t0, secs;
	FILE *f;

	while ((opt = getopt(argc, argv, "a:p:f:c:n:h")) != -1) {
		switch (opt) {
		case 'a':
			hostname = optarg;
			break;
		case 'p':
			port = num(optarg);
			break;
		case 'f':
			file = optarg;
			break;
		case 'c':
			flows = num(optarg);
			break;
		case 'n':
			limit = num(optarg);
			break;
		default:
			usage();
		}
	}
	if (port <= 0 || port > 65535 || file == NULL || flows < 1)
		usage();
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, hostname, &addr.sin_addr) != 1)
		usage();
	snprintf(host_hdr, sizeof(host_hdr), "%s:%d", hostname, port);
	if ((key = getenv("BENCH_KEY")) == NULL)
		usage();
	if ((f = fopen(file, "r")) == NULL) {
		perror(file);
		return 2;
	}
	while (fgets(line, sizeof(line), f) && (limit < 0 || count < limit)) {
		if (count == cap) {
			cap = cap ? cap * 2 : 256;
			nums = realloc(nums, (size_t)cap * sizeof(*nums));
			if (nums == NULL)
				return 1;
		}
		if (sscanf(line, "%39s %19s", nums[count].id,
		           nums[count].e164) == 2)
			count++;
	}
	fclose(f);
	if (count == 0) {
		fprintf(stderr, "numbers_orders: no numbers in %s\n", file);
		return 2;
	}
	results = calloc((size_t)count, sizeof(*results));
	threads = calloc((size_t)flows, sizeof(*threads));
	if (results == NULL || threads == NULL)
		return 1;
	t0 = now_ms();
	for (int i = 0; i < flows; i++)
		pthread_create(&threads[i], NULL, worker, NULL);
	for (int i = 0; i < flows; i++)
		pthread_join(threads[i], NULL);
	secs = (now_ms() - t0) / 1e3;
	for (int i = 0; i < count; i++)
		okn += results[i].ok;

#define P(field, p) pct(offsetof(struct result, field), p)
	printf("ORDERS flows=%d ok=%d failed=%d seconds=%.2f per_s=%.1f "
	       "e2e_p50_ms=%.1f e2e_p90_ms=%.1f e2e_p99_ms=%.1f "
	       "e2e_max_ms=%.1f srv_p50_ms=%.1f srv_p99_ms=%.1f "
	       "srv_max_ms=%.1f reserve_p50_ms=%.1f reserve_p99_ms=%.1f "
	       "order_p50_ms=%.1f order_p99_ms=%.1f activate_p50_ms=%.1f "
	       "activate_p99_ms=%.1f\n",
	       count, okn, count - okn, secs, okn / secs, P(e2e_ms, 50),
	       P(e2e_ms, 90), P(e2e_ms, 99), P(e2e_ms, 100), P(srv_ms, 50),
	       P(srv_ms, 99), P(srv_ms, 100), P(reserve_ms, 50),
	       P(reserve_ms, 99), P(order_ms, 50), P(order_ms, 99),
	       P(activate_ms, 50), P(activate_ms, 99));
	return okn == count ? 0 : 1;
}
