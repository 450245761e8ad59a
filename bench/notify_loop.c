/*
 * notify_loop: the baseline of bench/notifications: a plain libcurl loop
 * POSTing webhooks to the same receiver as the notifications worker, with
 * the same body shape and size and the same headers, as fast as it can.
 *
 * Each thread has one easy handle, reused for every request (keep-alive:
 * one connection), and sends one request after the other. Each body is a
 * notification as the worker sends it ({"id","type","timestamp","sequence",
 * "account_id","data":{...,"sent_at_us"}}, padded to -b bytes), built with
 * jansson per request, and signed like Standard Webhooks (webhook-id,
 * webhook-timestamp, webhook-signature by vox_whsig, the worker's signing
 * code, with -s's secret), so
 * the loop does per request what the worker's send does, minus the
 * database.
 *
 *   notify_loop -u URL [-u URL...] [-n requests | -d seconds] [-k threads]
 *               [-b body_bytes] [-s whsec_secret]
 *
 * Requests go to the URLs in turn. -n (default 20,000) is the total over
 * all threads; -d runs for that long instead. Prints one line:
 *   LOOP threads=K requests=N ok=N failed=N seconds=S rate=R p50_ms=
 *        p99_ms= max_ms= body_bytes=B
 * (ok: 2xx answers; rate: ok per second; p*: one request's round trip).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
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

#define MAX_URLS 64

struct loop {
	pthread_t thread;
	int index;
	long quota; /* requests to send; 0: until the deadline */
	long ok, failed;
	size_t body_bytes;
	float *lat_ms;
	size_t nlat, lat_cap;
};

static const char *urls[MAX_URLS];
static int nurls;
/* a fixed secret when none is given: signing costs the same */
static const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
static double deadline;
static long body_target;

static size_t discard(char *data, size_t size, size_t n, void *cls)
{
	(void)data;
	(void)cls;
	return size * n;
}

/* The template body: a number.activated notification like the worker's,
 * with "pad" making its text at least body_target bytes. */
static json_t *body_new(int thread)
{
	json_t *body = json_pack(
	        "{s:s, s:s, s:s, s:i, s:s, s:{s:s, s:s, s:s, s:s, s:I}}", "id",
	        "msg_00000000000000000000000000000000", "type",
	        "number.activated", "timestamp", "2026-01-01T00:00:00.000000Z",
	        "sequence", 1, "account_id",
	        "0193a601-2b3c-7d4e-8f50-617283940a1b", "data", "phone_number",
	        "+16285550100", "status", "active", "number_id",
	        "0193a601-2b3c-7d4e-8f50-617283940a1c", "account_id",
	        "0193a601-2b3c-7d4e-8f50-617283940a1b", "sent_at_us",
	        (json_int_t)vox_now_us());
	char *text;
	size_t len;

	if (body == NULL)
		return NULL;
	json_object_set_new(body, "sequence", json_integer(thread + 1));
	text = json_dumps(body, JSON_COMPACT);
	len = text ? strlen(text) : 0;
	free(text);
	/* ,"pad":"" is 9 bytes; the ids and times keep their lengths */
	if ((long)len + 9 < body_target) {
		size_t pad = (size_t)body_target - len - 9;
		char *fill = malloc(pad + 1);

		if (fill == NULL) {
			json_decref(body);
			return NULL;
		}
		memset(fill, 'x', pad);
		fill[pad] = '\0';
		json_object_set_new(json_object_get(body, "data"), "pad",
		                    json_string(fill));
		free(fill);
	}
	return body;
}

static void lat_add(struct loop *l, double ms)
{
	if (l->nlat == l->lat_cap) {
		float *grown;

		l->lat_cap = l->lat_cap ? l->lat_cap * 2 : 1 << 16;
		grown = realloc(l->lat_ms, l->lat_cap * sizeof(*l->lat_ms));
		if (grown == NULL)
			abort();
		l->lat_ms = grown;
	}
	l->lat_ms[l->nlat++] = (float)ms;
}

/* One request: fresh id, time and signature, like a delivery attempt. */
static void send_one(struct loop *l, CURL *curl, json_t *body, long i)
{
	char id[40], stamp_text[48], hdr[5][240], sig[VOX_WHSIG_SIG_MAX], *text;
	struct curl_slist *headers = NULL;
	long long stamp = (long long)time(NULL);
	long status = 0;
	double t0;
	size_t len;

	snprintf(id, sizeof(id), "msg_%08x%024lx", (unsigned)l->index,
	         (unsigned long)i);
	vox_time_now_rfc3339(stamp_text, sizeof(stamp_text));
	json_object_set_new(body, "id", json_string(id));
	json_object_set_new(body, "timestamp", json_string(stamp_text));
	json_object_set_new(json_object_get(body, "data"), "sent_at_us",
	                    json_integer(vox_now_us()));
	text = json_dumps(body, JSON_COMPACT);
	if (text == NULL ||
	    vox_whsig_sign(secret, id, stamp, text, strlen(text), sig) != 0) {
		free(text);
		l->failed++;
		return;
	}
	len = strlen(text);
	l->body_bytes = len;
	snprintf(hdr[0], sizeof(hdr[0]), "webhook-id: %s", id);
	snprintf(hdr[1], sizeof(hdr[1]), "webhook-timestamp: %lld", stamp);
	snprintf(hdr[2], sizeof(hdr[2]), "webhook-signature: %s", sig);
	snprintf(hdr[3], sizeof(hdr[3]), "content-type: application/json");
	/* as vox_upstream: no "Expect: 100-continue" round trip */
	snprintf(hdr[4], sizeof(hdr[4]), "Expect:");
	for (int h = 0; h < 5; h++)
		headers = curl_slist_append(headers, hdr[h]);
	curl_easy_setopt(curl, CURLOPT_URL, urls[i % nurls]);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)len);
	t0 = vox_mono_seconds();
	if (curl_easy_perform(curl) == CURLE_OK &&
	    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) ==
	            CURLE_OK &&
	    status >= 200 && status < 300) {
		l->ok++;
		lat_add(l, (vox_mono_seconds() - t0) * 1e3);
	} else {
		l->failed++;
	}
	curl_slist_free_all(headers);
	free(text);
}

static void *run(void *arg)
{
	struct loop *l = arg;
	CURL *curl = curl_easy_init();
	json_t *body = body_new(l->index);

	if (curl == NULL || body == NULL) {
		fprintf(stderr, "notify_loop: out of memory\n");
		exit(1);
	}
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "VoxLink-Webhooks/1.0");
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 15000L);
	curl_easy_setopt(curl, CURLOPT_PROXY, "");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	for (long i = 0;
	     l->quota ? i < l->quota : vox_mono_seconds() < deadline; i++)
		send_one(l, curl, body, i);
	json_decref(body);
	curl_easy_cleanup(curl);
	return NULL;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

static void usage(void)
{
	fprintf(stderr, "usage: notify_loop -u URL [-u URL...] [-n requests | "
	                "-d seconds] [-k threads] [-b body_bytes] "
	                "[-s whsec_secret]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long total = 20000, threads = 1, ok = 0, failed = 0;
	double seconds = 0, t0, elapsed;
	struct loop *loops;
	float *all;
	size_t nall = 0, body_bytes = 0;
	int opt;

	while ((opt = getopt(argc, argv, "u:n:d:k:b:s:")) != -1) {
		switch (opt) {
		case 'u':
			if (nurls == MAX_URLS)
				usage();
			urls[nurls++] = optarg;
			break;
		case 'n':
			total = strtol(optarg, NULL, 10);
			break;
		case 'd':
			seconds = strtod(optarg, NULL);
			break;
		case 'k':
			threads = strtol(optarg, NULL, 10);
			break;
		case 'b':
			body_target = strtol(optarg, NULL, 10);
			break;
		case 's':
			secret = optarg;
			if (!vox_whsig_secret_valid(secret))
				usage();
			break;
		default:
			usage();
		}
	}
	if (nurls == 0 || threads < 1 || threads > 256 ||
	    (seconds <= 0 && total < 1) || seconds > 3600 || body_target < 0 ||
	    body_target > 1000000)
		usage();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	loops = calloc((size_t)threads, sizeof(*loops));
	if (loops == NULL)
		return 1;
	t0 = vox_mono_seconds();
	deadline = t0 + seconds;
	for (long k = 0; k < threads; k++) {
		loops[k].index = (int)k;
		loops[k].quota =
		        seconds > 0 ? 0
		                    : total / threads + (k < total % threads);
		if (pthread_create(&loops[k].thread, NULL, run, &loops[k]) !=
		    0) {
			fprintf(stderr, "notify_loop: cannot start a thread\n");
			return 1;
		}
	}
	for (long k = 0; k < threads; k++) {
		pthread_join(loops[k].thread, NULL);
		ok += loops[k].ok;
		failed += loops[k].failed;
		nall += loops[k].nlat;
		body_bytes = loops[k].body_bytes;
	}
	elapsed = vox_mono_seconds() - t0;
	all = malloc((nall + 1) * sizeof(*all));
	if (all == NULL)
		return 1;
	nall = 0;
	for (long k = 0; k < threads; k++) {
		memcpy(all + nall, loops[k].lat_ms,
		       loops[k].nlat * sizeof(*all));
		nall += loops[k].nlat;
		free(loops[k].lat_ms);
	}
	qsort(all, nall, sizeof(*all), cmp_float);
	printf("LOOP threads=%ld requests=%ld ok=%ld failed=%ld seconds=%.3f "
	       "rate=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	       "body_bytes=%zu\n",
	       threads, ok + failed, ok, failed, elapsed, (double)ok / elapsed,
	       nall ? all[nall / 2] : 0.0,
	       nall ? all[(size_t)(0.99 * (double)(nall - 1))] : 0.0,
	       nall ? all[nall - 1] : 0.0, body_bytes);
	free(all);
	free(loops);
	curl_global_cleanup();
	return failed > 0 && ok == 0;
}
