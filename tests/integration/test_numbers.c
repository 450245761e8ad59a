/*
 * The numbers API end to end against the real stack and the carrier
 * sandbox: search, reserve, order, activate, deactivate, release; the
 * reservation race; carrier failures (retried, and given up with a reason,
 * leaving nothing half-done); reservation expiry; per-number ordering; and
 * the 4xx of each bad input.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_json.h"

static int port;
static pid_t ingress, worker;
static char key[64], account[40];

static bool ingress_up(void *arg)
{
	(void)arg;
	return t_http("GET", port, "/healthz", NULL, NULL, NULL) == 200;
}

static size_t discard(char *ptr, size_t size, size_t n, void *arg)
{
	(void)ptr;
	(void)arg;
	return size * n;
}

/* The sandbox's admin API (faults, reset). */
static void carrier_admin(const char *method, const char *path,
                          const char *body)
{
	char url[512];
	CURL *curl = curl_easy_init();
	struct curl_slist *h =
	        curl_slist_append(NULL, "Content-Type: application/json");
	long status = 0;

	snprintf(url, sizeof(url), "%s%s", t_env("VOX_CARRIER_URL"), path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	if (body)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	cr_assert_eq(curl_easy_perform(curl), CURLE_OK, "carrier admin %s",
	             path);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	cr_assert_lt(status, 300, "carrier admin %s: %ld", path, status);
	curl_slist_free_all(h);
	curl_easy_cleanup(curl);
}

static void start(void)
{
	static char port_env[64];

	port = t_free_port();
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", port);
	const char *const ienv[] = {port_env, "VOX_RATE_COMMAND=1000",
	                            "VOX_RATE_READ=1000",
	                            "VOX_RATE_SEARCH=1000", NULL};
	const char *const wenv[] = {"VOX_WORKER_METRICS_PORT=0",
	                            "VOX_KAFKA_SESSION_TIMEOUT_MS=6000",
	                            "VOX_RESERVATION_TTL_S=3",
	                            "VOX_CARRIER_TIMEOUT_MS=1000", NULL};
	carrier_admin("DELETE", "/admin/faults", NULL);
	ingress = t_spawn("ingress", "numbers-ingress.log", ienv);
	worker = t_spawn("provisioning", "numbers-worker.log", wenv);
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
	t_account("owner", account, key);
}

static void stop(void)
{
	carrier_admin("DELETE", "/admin/faults", NULL);
	cr_expect_eq(t_stop(ingress, SIGTERM, 20000), 0);
	cr_expect_eq(t_stop(worker, SIGTERM, 20000), 0);
}

TestSuite(numbers, .init = start, .fini = stop, .timeout = 180);

static json_t *api(const char *method, const char *path, const char *body,
                   const char *who, int expect)
{
	char auth[600], *text = NULL;
	const char *h[] = {auth, "Prefer: wait=20",
	                   body ? "Content-Type: application/json" : NULL,
	                   NULL};
	json_t *doc;
	int status;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
	         who ? who : key);
	status = t_http_h(method, port, path, body, h, &text, NULL);
	if (expect != 0)
		cr_assert_eq(status, expect, "%s %s: %d %s", method, path,
		             status, text);
	doc = json_loads(text, JSON_DECODE_ANY, NULL);
	cr_assert_not_null(doc, "%s %s: not JSON: %s", method, path, text);
	free(text);
	return doc;
}

/* A command answered with the finished operation (Prefer: wait). */
static json_t *command(const char *method, const char *path, const char *body,
                       const char *expect_status)
{
	json_t *op = api(method, path, body, NULL, 200);

	cr_assert_str_eq(vox_json_str(op, "status"), expect_status, "%s %s: %s",
	                 method, path, vox_json_dump(op));
	return op;
}

/* Two available US 415 numbers from search. */
static void search_two(char a[24], char b[24])
{
	json_t *found = api("GET",
	                    "/v1/available-numbers?country=US&area_code=415"
	                    "&limit=50",
	                    NULL, NULL, 200);
	json_t *data = json_object_get(found, "data");

	cr_assert_geq(json_array_size(data), 2, "search found %zu",
	              json_array_size(data));
	/* Later tests take later numbers: pick at random among 50. */
	size_t i = (size_t)rand() % (json_array_size(data) - 1);
	snprintf(a, 24, "%s",
	         vox_json_str(json_array_get(data, i), "phone_number"));
	snprintf(b, 24, "%s",
	         vox_json_str(json_array_get(data, i + 1), "phone_number"));
	cr_assert_eq(strncmp(a, "+1415", 5), 0, "%s", a);
	json_decref(found);
}

/* Reserves and orders numbers; returns the purchased numbers' ids. */
static void buy(const char *a, const char *b, char ida[40], char idb[40])
{
	char body[200], path[160];
	json_t *op, *list;

	snprintf(body, sizeof(body), "{\"phone_numbers\":[\"%s\",\"%s\"]}", a,
	         b);
	op = command("POST", "/v1/reservations", body, "completed");
	snprintf(body, sizeof(body), "{\"reservation_id\":\"%s\"}",
	         vox_json_str(json_object_get(op, "result"), "reservation_id"));
	json_decref(op);
	op = command("POST", "/v1/orders", body, "completed");
	cr_assert_str_eq(vox_json_str(json_object_get(op, "result"), "status"),
	                 "complete");
	json_decref(op);
	list = api("GET", "/v1/numbers?status=purchased&limit=100", NULL, NULL,
	           200);
	for (size_t i = 0; i < json_array_size(json_object_get(list, "data"));
	     i++) {
		json_t *n = json_array_get(json_object_get(list, "data"), i);

		if (strcmp(vox_json_str(n, "phone_number"), a) == 0)
			snprintf(ida, 40, "%s", vox_json_str(n, "id"));
		if (strcmp(vox_json_str(n, "phone_number"), b) == 0)
			snprintf(idb, 40, "%s", vox_json_str(n, "id"));
	}
	json_decref(list);
	cr_assert(ida[0] && idb[0], "bought numbers not listed");
	snprintf(path, sizeof(path), "/v1/numbers/%s", ida);
	json_decref(api("GET", path, NULL, NULL, 200));
}

static const char *number_status(const char *id)
{
	static char status[32];
	char path[160];
	json_t *n;

	snprintf(path, sizeof(path), "/v1/numbers/%s", id);
	n = api("GET", path, NULL, NULL, 200);
	snprintf(status, sizeof(status), "%s", vox_json_str(n, "status"));
	json_decref(n);
	return status;
}

struct seen_events {
	const char *a, *b;
	char types_a[4096], types_b[4096];
};

static void note_event(void *arg, const char *payload, size_t len,
                       const char *header)
{
	struct seen_events *seen = arg;
	json_t *ev = json_loadb(payload, len, 0, NULL);
	const char *subject = vox_json_str(ev, "subject");
	char *types = NULL;

	(void)header;
	if (subject && strcmp(subject, seen->a) == 0)
		types = seen->types_a;
	else if (subject && strcmp(subject, seen->b) == 0)
		types = seen->types_b;
	if (types != NULL) { /* "type1 type2 ...": appended while room */
		const char *type = vox_json_str(ev, "type");
		size_t have = strlen(types), add;

		type = type ? type : "";
		add = strlen(type);

		if (have + add + 2 <= sizeof(seen->types_a)) {
			memcpy(types + have, type, add);
			memcpy(types + have + add, " ", 2);
		}
	}
	json_decref(ev);
}

Test(numbers, search_reserve_order_activate_deactivate_release)
{
	struct seen_events seen = {0};
	char a[24], b[24], ida[40] = "", idb[40] = "", path[160];
	json_t *op, *again;

	search_two(a, b);
	buy(a, b, ida, idb);
	/* Bought numbers leave the search. */
	again = api("GET",
	            "/v1/available-numbers?country=US&area_code=415"
	            "&limit=100",
	            NULL, NULL, 200);
	{
		char *offered = vox_json_dump(again);

		cr_assert_null(strstr(offered, a), "%s still offered", a);
		free(offered);
	}
	json_decref(again);

	snprintf(path, sizeof(path), "/v1/numbers/%s/activate", ida);
	op = command("POST", path, "{\"forward_to\":\"+14155550100\"}",
	             "completed");
	json_decref(op);
	cr_assert_str_eq(number_status(ida), "active");
	snprintf(path, sizeof(path), "/v1/numbers/%s/deactivate", ida);
	json_decref(command("POST", path, NULL, "completed"));
	cr_assert_str_eq(number_status(ida), "suspended");
	snprintf(path, sizeof(path), "/v1/numbers/%s", idb);
	json_decref(command("DELETE", path, NULL, "completed"));
	/* Released: no longer the account's. */
	json_decref(api("GET", path, NULL, NULL, 404));
	/* Every step is on the events topic, in order per number. */
	seen.a = a;
	seen.b = b;
	sleep(1); /* the outbox relay publishes after commit */
	t_consume_all("vox.events", 3000, NULL, note_event, &seen);
	/* This run's events for a number are its latest, in order (the
	 * topic is keyed by the number; the relay sends a key's next event
	 * only after the previous one was acknowledged). */
	{
		const char *want = "number.reserved number.purchased "
		                   "number.activated number.deactivated ";
		size_t la = strlen(seen.types_a), lw = strlen(want);

		cr_assert(la >= lw && strcmp(seen.types_a + la - lw, want) == 0,
		          "events of %s: %s", a, seen.types_a);
		cr_assert(strstr(seen.types_b,
		                 "number.purchased number.released"),
		          "events of %s: %s", b, seen.types_b);
	}
}

struct racer {
	const char *number;
	char key[64];
	bool won, answered;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	char body[120];
	json_t *op;

	snprintf(body, sizeof(body), "{\"phone_numbers\":[\"%s\"]}", r->number);
	op = api("POST", "/v1/reservations", body, r->key, 0);
	r->answered = vox_json_str(op, "status") != NULL;
	r->won = r->answered &&
	         strcmp(vox_json_str(op, "status"), "completed") == 0;
	json_decref(op);
	return NULL;
}

Test(numbers, fifty_reservations_of_one_number_one_wins)
{
	struct racer racers[50];
	pthread_t threads[50];
	char a[24], b[24];
	int wins = 0;

	search_two(a, b);
	for (int i = 0; i < 50; i++) {
		char acct[40];

		racers[i].number = a;
		if (i % 10 == 0)
			t_account("developer", acct, racers[i].key);
		else
			memcpy(racers[i].key, racers[i - (i % 10)].key,
			       sizeof(racers[i].key));
	}
	for (int i = 0; i < 50; i++)
		pthread_create(&threads[i], NULL, race, &racers[i]);
	for (int i = 0; i < 50; i++) {
		pthread_join(threads[i], NULL);
		cr_assert(racers[i].answered, "racer %d got no operation", i);
		wins += racers[i].won;
	}
	cr_assert_eq(wins, 1, "%d reservations won one number", wins);
}

Test(numbers, carrier_failing_twice_then_succeeding_is_retried)
{
	char a[24], b[24], ida[40] = "", idb[40] = "", path[160];

	search_two(a, b);
	buy(a, b, ida, idb);
	carrier_admin("POST", "/admin/faults",
	              "{\"endpoint\":\"configure\",\"fail_next\":2,"
	              "\"status\":503}");
	snprintf(path, sizeof(path), "/v1/numbers/%s/activate", ida);
	json_decref(command("POST", path, "{\"forward_to\":\"+14155550100\"}",
	                    "completed"));
	cr_assert_str_eq(number_status(ida), "active");
}

Test(numbers, carrier_that_keeps_failing_fails_the_operation_cleanly)
{
	char a[24], b[24], ida[40] = "", idb[40] = "", path[160];
	json_t *op, *error;

	search_two(a, b);
	buy(a, b, ida, idb);
	carrier_admin("POST", "/admin/faults",
	              "{\"endpoint\":\"configure\",\"error_rate\":1,"
	              "\"status\":503}");
	snprintf(path, sizeof(path), "/v1/numbers/%s/activate", ida);
	op = command("POST", path, "{\"forward_to\":\"+14155550100\"}",
	             "failed");
	error = json_object_get(op, "error");
	cr_assert_str_eq(vox_json_str(error, "code"), "carrier_unavailable");
	cr_assert_gt(strlen(vox_json_str(error, "message")), 0);
	json_decref(op);
	carrier_admin("DELETE", "/admin/faults", NULL);
	/* Nothing half-done: still purchased, not active. */
	cr_assert_str_eq(number_status(ida), "purchased");
}

Test(numbers, reservations_expire_by_themselves)
{
	char a[24], b[24], body[120], path[160];
	json_t *op, *res;

	search_two(a, b);
	snprintf(body, sizeof(body), "{\"phone_numbers\":[\"%s\"]}", a);
	op = command("POST", "/v1/reservations", body, "completed");
	snprintf(path, sizeof(path), "/v1/reservations/%s",
	         vox_json_str(json_object_get(op, "result"), "reservation_id"));
	json_decref(op);
	res = api("GET", path, NULL, NULL, 200);
	cr_assert_str_eq(vox_json_str(res, "status"), "active");
	json_decref(res);
	sleep(6); /* the suite's worker holds for 3 s */
	res = api("GET", path, NULL, NULL, 200);
	cr_assert_str_eq(vox_json_str(res, "status"), "expired");
	json_decref(res);
	/* Back on offer: another account can hold it. */
	json_decref(command("POST", "/v1/reservations", body, "completed"));
}

static json_t *wait_op(const char *id)
{
	char path[160];
	json_t *op = NULL;

	snprintf(path, sizeof(path), "/v1/operations/%s", id);
	for (int i = 0; i < 200; i++) {
		op = api("GET", path, NULL, NULL, 200);
		if (strcmp(vox_json_str(op, "status"), "completed") == 0 ||
		    strcmp(vox_json_str(op, "status"), "failed") == 0)
			return op;
		json_decref(op);
		usleep(50000);
	}
	cr_assert_fail("operation %s did not finish", id);
	return NULL;
}

Test(numbers, commands_on_one_number_keep_their_order)
{
	char a[24], b[24], ida[40] = "", idb[40] = "", path[160], auth[600];
	const char *h[] = {auth, "Content-Type: application/json", NULL};
	char *t1 = NULL, *t2 = NULL;
	json_t *o1, *o2, *d1, *d2, *num;

	search_two(a, b);
	buy(a, b, ida, idb);
	snprintf(path, sizeof(path), "/v1/numbers/%s/activate", ida);
	json_decref(command("POST", path, "{\"forward_to\":\"+14155550100\"}",
	                    "completed"));
	/* Deactivate then activate again, back to back, without waiting: the
	 * number must end active with the second destination. */
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	snprintf(path, sizeof(path), "/v1/numbers/%s/deactivate", ida);
	cr_assert_eq(t_http_h("POST", port, path, NULL, h, &t1, NULL), 202);
	snprintf(path, sizeof(path), "/v1/numbers/%s/activate", ida);
	cr_assert_eq(t_http_h("POST", port, path,
	                      "{\"forward_to\":\"+14155550199\"}", h, &t2,
	                      NULL),
	             202, "%s", t2);
	o1 = json_loads(t1, 0, NULL);
	o2 = json_loads(t2, 0, NULL);
	d1 = wait_op(vox_json_str(o1, "id"));
	d2 = wait_op(vox_json_str(o2, "id"));
	cr_assert_str_eq(vox_json_str(d1, "status"), "completed");
	cr_assert_str_eq(vox_json_str(d2, "status"), "completed");
	cr_assert_lt(strcmp(vox_json_str(d1, "completed_at"),
	                    vox_json_str(d2, "completed_at")),
	             0, "activate finished before the earlier deactivate");
	snprintf(path, sizeof(path), "/v1/numbers/%s", ida);
	num = api("GET", path, NULL, NULL, 200);
	cr_assert_str_eq(vox_json_str(num, "status"), "active");
	cr_assert_str_eq(vox_json_str(json_object_get(num, "call_forwarding"),
	                              "primary_destination"),
	                 "+14155550199");
	json_decref(num);
	json_decref(o1);
	json_decref(o2);
	json_decref(d1);
	json_decref(d2);
	free(t1);
	free(t2);
}

/* A search answer with its X-Cache header. */
struct searcher {
	const char *path;
	int port; /* 0: the suite's ingress */
	char cache[32];
	char *text;
	int status;
};

static void *search_once(void *arg)
{
	struct searcher *s = arg;
	char auth[600], *head = NULL, *line;
	const char *h[] = {auth, NULL};

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	s->status = t_http_h("GET", s->port ? s->port : port, s->path, NULL, h,
	                     &s->text, &head);
	s->cache[0] = '\0';
	if (head && (line = strcasestr(head, "X-Cache:")) != NULL) {
		line += strlen("X-Cache:");
		while (*line == ' ')
			line++;
		snprintf(s->cache, sizeof(s->cache), "%.*s",
		         (int)strcspn(line, "\r\n"), line);
	}
	free(head);
	return NULL;
}

Test(numbers, concurrent_misses_of_one_search_ask_once)
{
	struct searcher s[12];
	pthread_t threads[12];
	char path[160];
	int misses = 0;

	/* A query no other test asks within the cache's 10 s. */
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	snprintf(path, sizeof(path),
	         "/v1/available-numbers?country=US&area_code=415&limit=%d"
	         "&ends_with=%d",
	         30 + rand() % 60, rand() % 10);
	for (int i = 0; i < 12; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].path = path;
		pthread_create(&threads[i], NULL, search_once, &s[i]);
	}
	for (int i = 0; i < 12; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < 12; i++) {
		cr_assert_eq(s[i].status, 200, "%d %s", s[i].status, s[i].text);
		cr_assert(strcmp(s[i].cache, "hit") == 0 ||
		                  strcmp(s[i].cache, "miss") == 0,
		          "X-Cache: %s", s[i].cache);
		misses += strcmp(s[i].cache, "miss") == 0;
		/* one answer, shared */
		cr_assert_str_eq(s[i].text, s[0].text);
	}
	/* The ingress's HTTP threads are fewer than 12: those that find the
	 * answer cached never miss; the others wait for the one asking. */
	cr_assert_eq(misses, 1, "%d of 12 searches went to PostgreSQL", misses);
	for (int i = 0; i < 12; i++)
		free(s[i].text);
}

static bool port_up(void *arg)
{
	return t_http("GET", *(int *)arg, "/healthz", NULL, NULL, NULL) == 200;
}

Test(numbers, concurrent_misses_across_two_instances_ask_once)
{
	static char port_env[64];
	struct searcher s[16];
	pthread_t threads[16];
	char path[160];
	int misses = 0, other = t_free_port();
	pid_t second;

	/* A second ingress on the same Redis and PostgreSQL. */
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", other);
	const char *const env[] = {port_env, "VOX_RATE_SEARCH=1000", NULL};
	second = t_spawn("ingress", "numbers-ingress-2.log", env);
	cr_assert(t_wait_for(port_up, &other, 20000), "second ingress not up");
	/* A query no other test asks (their limits are 30..89): short in
	 * the local pool, so the one that asks refills from the carrier, and
	 * takes a while; not empty (an empty answer is not cached). */
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	snprintf(path, sizeof(path),
	         "/v1/available-numbers?country=US&area_code=415&limit=%d"
	         "&ends_with=%d",
	         90 + rand() % 11, rand() % 10);
	for (int i = 0; i < 16; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].path = path;
		s[i].port = i % 2 ? other : port;
		pthread_create(&threads[i], NULL, search_once, &s[i]);
	}
	for (int i = 0; i < 16; i++)
		pthread_join(threads[i], NULL);
	for (int i = 0; i < 16; i++) {
		cr_assert_eq(s[i].status, 200, "%d %s", s[i].status, s[i].text);
		cr_assert(strcmp(s[i].cache, "hit") == 0 ||
		                  strcmp(s[i].cache, "miss") == 0,
		          "X-Cache: %s", s[i].cache);
		misses += strcmp(s[i].cache, "miss") == 0;
		/* one answer, shared by both instances */
		cr_assert_str_eq(s[i].text, s[0].text);
	}
	/* One instance asked PostgreSQL and the carrier (its Redis lock);
	 * the other waited for its answer in Redis. */
	cr_assert_eq(misses, 1, "%d of 16 searches on two instances missed",
	             misses);
	for (int i = 0; i < 16; i++)
		free(s[i].text);
	cr_expect_eq(t_stop(second, SIGTERM, 20000), 0);
}

/* Polls (t_wait_for) until a search answers from the cache without the
 * held number: answers kept in an instance's memory are served without a
 * recheck for up to a second (docs/NUMBERS.md). */
struct held_search {
	struct searcher *s;
	const char *held;
};

static bool held_left_out(void *arg)
{
	struct held_search *h = arg;

	free(h->s->text);
	h->s->text = NULL;
	search_once(h->s);
	return h->s->status == 200 && strcmp(h->s->cache, "hit") == 0 &&
	       strstr(h->s->text, h->held) == NULL;
}

Test(numbers, cached_search_leaves_out_numbers_held_since)
{
	struct searcher first = {0}, again = {0};
	char path[160], body[120], held[24];
	json_t *doc, *op;

	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	snprintf(path, sizeof(path),
	         "/v1/available-numbers?country=US&area_code=415&limit=%d"
	         "&ends_with=%d",
	         30 + rand() % 60, rand() % 10);
	first.path = again.path = path;
	search_once(&first);
	cr_assert_eq(first.status, 200, "%s", first.text);
	cr_assert_str_eq(first.cache, "miss");
	doc = json_loads(first.text, 0, NULL);
	cr_assert_geq(json_array_size(json_object_get(doc, "data")), 2);
	snprintf(held, sizeof(held), "%s",
	         vox_json_str(json_array_get(json_object_get(doc, "data"), 0),
	                      "phone_number"));
	json_decref(doc);
	snprintf(body, sizeof(body), "{\"phone_numbers\":[\"%s\"]}", held);
	op = command("POST", "/v1/reservations", body, "completed");
	json_decref(op);
	struct held_search check = {&again, held};
	cr_assert(t_wait_for(held_left_out, &check, 5000),
	          "%s is held but still offered (X-Cache: %s): %s", held,
	          again.cache, again.text);
	/* the rest of the cached answer is still there */
	doc = json_loads(again.text, 0, NULL);
	cr_assert_not_null(doc, "%s", again.text);
	cr_assert_geq(json_array_size(json_object_get(doc, "data")), 1);
	json_decref(doc);
	free(first.text);
	free(again.text);
}

Test(numbers, contains_answers_the_numbers_that_contain_the_digits)
{
	char a[24], b[24], path[160], digits[4];
	json_t *found, *n;
	bool seen = false;
	size_t i;

	/* Three digits of a number in the pool (the trigram index's
	 * statement), then two (the general one). */
	search_two(a, b);
	for (int len = 3; len >= 2; len--) {
		snprintf(digits, sizeof(digits), "%s", a + strlen(a) - 4);
		digits[len] = '\0';
		snprintf(path, sizeof(path),
		         "/v1/available-numbers?country=US&area_code=415"
		         "&contains=%s&limit=100",
		         digits);
		found = api("GET", path, NULL, NULL, 200);
		seen = false;
		json_array_foreach(json_object_get(found, "data"), i, n)
		{
			const char *e164 = vox_json_str(n, "phone_number");

			cr_assert_not_null(strstr(e164, digits),
			                   "%s does not contain %s", e164,
			                   digits);
			seen |= strcmp(e164, a) == 0;
		}
		cr_assert(seen, "%s not found by contains=%s", a, digits);
		json_decref(found);
	}
}

Test(numbers, bad_inputs_get_4xx)
{
	char a[24], b[24], ida[40] = "", idb[40] = "", path[160];
	json_t *e;

	json_decref(api("GET", "/v1/available-numbers", NULL, NULL, 400));
	json_decref(api("GET", "/v1/available-numbers?country=ZZ", NULL, NULL,
	                400));
	json_decref(api("GET", "/v1/available-numbers?country=US&type=fax",
	                NULL, NULL, 400));
	json_decref(api("GET",
	                "/v1/available-numbers?country=US&contains=12%2534",
	                NULL, NULL, 400));
	json_decref(api("GET", "/v1/available-numbers?country=US&limit=500",
	                NULL, NULL, 400));
	e = api("POST", "/v1/reservations",
	        "{\"phone_numbers\":[\"+1415555\"]}", NULL, 400);
	cr_assert_str_eq(vox_json_str(json_object_get(e, "error"), "code"),
	                 "invalid_phone_number");
	json_decref(e);
	json_decref(api("POST", "/v1/reservations", "{\"phone_numbers\":[]}",
	                NULL, 400));
	json_decref(api("POST", "/v1/orders",
	                "{\"reservation_id\":\"01a20000-0000-7000-8000-"
	                "000000000000\"}",
	                NULL, 404));
	json_decref(api("POST",
	                "/v1/numbers/01a20000-0000-7000-8000-000000000000/"
	                "deactivate",
	                NULL, NULL, 404));
	search_two(a, b);
	buy(a, b, ida, idb);
	snprintf(path, sizeof(path), "/v1/numbers/%s/deactivate", ida);
	e = api("POST", path, NULL, NULL, 409);
	cr_assert_str_eq(
	        vox_json_str(
	                json_object_get(json_object_get(e, "error"), "details"),
	                "current_status"),
	        "purchased");
	json_decref(e);
	snprintf(path, sizeof(path), "/v1/numbers/%s/activate", ida);
	json_decref(api("POST", path, "{\"forward_to\":\"12\"}", NULL, 400));
}
