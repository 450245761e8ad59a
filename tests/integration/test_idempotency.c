/*
 * Idempotency-Key against the real stack (docs/API.md "Idempotency"):
 * secrets never stored in plaintext (a database dump holds none), sealed
 * answers replayed as they were, the canonical request hash, 5xx
 * releasing the key, takeover of a claim a crashed ingress left, and the
 * 24 h expiry, seen through ingresses whose idempotency clock is moved
 * (VOX_TEST_CLOCK_SKEW_S, a tests-only setting).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "helpers.h"
#include "vox_json.h"
#include "vox_uuid.h"

#define ENC_KEY                                                                \
	"3:7f1c0b9a5d2e48f6a1c3e5b7d9f0a2c4e6b8d0f2a4c6e8b0d2f4a6c8e0b2d4f6"

struct ingress {
	pid_t pid;
	int port;
};

static bool ingress_up(void *arg)
{
	const struct ingress *in = arg;

	return t_http("GET", in->port, "/healthz", NULL, NULL, NULL) == 200;
}

/* An ingress with extra settings (NULL-terminated "NAME=value"). */
static struct ingress start_ingress(const char *log, const char *const *extra)
{
	static char port_env[8][64];
	static int nth;
	char *port_line = port_env[nth++ % 8];
	const char *env[12] = {NULL};
	struct ingress in = {0, t_free_port()};
	int n = 0;

	snprintf(port_line, 64, "VOX_INGRESS_PORT=%d", in.port);
	env[n++] = port_line;
	env[n++] = "VOX_RATE_COMMAND=1000";
	env[n++] = "VOX_RATE_READ=1000";
	for (int i = 0; extra && extra[i] && n < 11; i++)
		env[n++] = extra[i];
	in.pid = t_spawn("ingress", log, env);
	cr_assert(t_wait_for(ingress_up, &in, 20000), "%s: not up", log);
	return in;
}

static void stop_ingress(struct ingress *in)
{
	int status = t_stop(in->pid, SIGTERM, 20000);

	cr_expect_eq(status, 0, "ingress exit status %d", status);
}

/* POST with a key, JSON body and Idempotency-Key; the status, the body
 * (malloc'd) and whether it was a replay. */
static int post(const struct ingress *in, const char *path, const char *key,
                const char *idem, const char *body, char **out, bool *replayed)
{
	char auth[128], idem_h[300], *headers = NULL;
	const char *h[] = {auth, "Content-Type: application/json", idem_h,
	                   NULL};
	int status;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	snprintf(idem_h, sizeof(idem_h), "Idempotency-Key: %s", idem);
	status = t_http_h("POST", in->port, path, body, h, out, &headers);
	if (replayed != NULL)
		*replayed =
		        headers != NULL &&
		        strstr(headers, "Idempotent-Replayed: true") != NULL;
	free(headers);
	return status;
}

static json_t *parse(const char *text)
{
	json_t *doc = json_loads(text ? text : "", 0, NULL);

	cr_assert_not_null(doc, "not JSON: %s", text);
	return doc;
}

static const char *error_code(json_t *doc)
{
	return vox_json_str(json_object_get(doc, "error"), "code");
}

/* Every place of a pg_dump of the whole database that holds needle
 * (streamed: the dump is not kept). */
static int dump_count(const char *const *needles, int *found)
{
	static char buf[1 << 16];
	char cmd[1024];
	size_t keep = 0, n;
	FILE *dump;
	int status;

	snprintf(cmd, sizeof(cmd), "%s/pg_dump --no-owner -d '%s' 2>/dev/null",
	         getenv("VOX_PG_BIN") ? getenv("VOX_PG_BIN")
	                              : "/usr/lib/postgresql/15/bin",
	         t_env("VOX_PG_URL"));
	dump = popen(cmd, "r");
	cr_assert_not_null(dump);
	while ((n = fread(buf + keep, 1, sizeof(buf) - keep, dump)) > 0) {
		size_t len = keep + n;

		for (int i = 0; needles[i] != NULL; i++)
			if (memmem(buf, len, needles[i], strlen(needles[i])))
				found[i]++;
		/* Keep a tail so a needle across two reads is seen. */
		keep = len < 128 ? len : 128;
		memmove(buf, buf + len - keep, keep);
	}
	status = pclose(dump);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* voxctl carrier create --json with the encryption key of the test's
 * ingress (the signing secret is then stored sealed): key and signing
 * secret. */
static void carrier_create(char key[80], char secret[80])
{
	char cmd[512], line[1024], uuid[VOX_UUID_STRLEN];
	json_t *made;
	FILE *p;

	vox_uuid7(uuid);
	snprintf(cmd, sizeof(cmd),
	         "VOX_ENCRYPTION_KEY=" ENC_KEY
	         " %s/voxctl carrier create --name idem-%.12s --json "
	         "2>/dev/null",
	         t_env("VOX_BIN_DIR"), uuid + 24);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	cr_assert_not_null(fgets(line, sizeof(line), p));
	cr_assert_eq(pclose(p), 0);
	made = parse(line);
	snprintf(key, 80, "%s", vox_json_str(made, "key"));
	snprintf(secret, 80, "%s", vox_json_str(made, "signing_secret"));
	json_decref(made);
}

TestSuite(idempotency, .timeout = 180);

Test(idempotency, new_secrets_are_sealed_replayed_and_not_in_a_dump)
{
	const char *const extra[] = {"VOX_ENCRYPTION_KEY=" ENC_KEY, NULL};
	struct ingress in = start_ingress("idem-sealed.log", extra);
	char account[40], owner[64], idem[64], carrier_key[80], signing[80];
	char *first = NULL, *again = NULL, *copied = NULL;
	const char *body = "{\"role\":\"developer\",\"description\":\"ci\"}";
	json_t *a, *b;
	bool replayed = false;
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	t_account("owner", account, owner);
	snprintf(idem, sizeof(idem), "sealed-%s", account);
	cr_assert_eq(
	        post(&in, "/v1/api-keys", owner, idem, body, &first, &replayed),
	        201, "%s", first);
	cr_assert_not(replayed);
	cr_assert_eq(
	        post(&in, "/v1/api-keys", owner, idem, body, &again, &replayed),
	        201, "%s", again);
	cr_assert(replayed, "no Idempotent-Replayed header");
	/* Stripe's semantics: the very same body, secret included. */
	cr_assert_str_eq(again, first);
	a = parse(first);
	const char *secret = vox_json_str(a, "key");
	cr_assert(secret != NULL && strncmp(secret, "vox_", 4) == 0, "%s",
	          first);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM api_keys WHERE "
	                        "account_id = $1",
	                        account),
	             2, "the replay created another key");
	/* Stored sealed, nothing in plaintext. */
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM idempotency_keys WHERE "
	                        "account_id = $1 AND response_body IS NULL "
	                        "AND octet_length(response_sealed) > 30",
	                        account),
	             1);

	/* The sealed answer is bound to its row: copied under another key
	 * of the same request, it does not open. */
	const char *params[] = {account, idem};
	cr_assert_eq(vox_pg_exec(pg,
	                         "INSERT INTO idempotency_keys (account_id, "
	                         "key, method, path, request_hash, "
	                         "status_code, response_sealed) SELECT "
	                         "account_id, $2 || '-copy', method, path, "
	                         "request_hash, status_code, response_sealed "
	                         "FROM idempotency_keys WHERE account_id = $1 "
	                         "AND key = $2",
	                         2, params, NULL, &err),
	             0, "%s", err.message);
	char idem_copy[80];
	snprintf(idem_copy, sizeof(idem_copy), "%s-copy", idem);
	cr_assert_eq(post(&in, "/v1/api-keys", owner, idem_copy, body, &copied,
	                  NULL),
	             409, "%s", copied);
	b = parse(copied);
	cr_assert_str_eq(error_code(b), "idempotency_reply_withheld");
	cr_assert_null(strstr(copied, secret), "secret in %s", copied);
	json_decref(b);

	/* A carrier credential too (voxctl: only its key's hash is stored,
	 * its signing secret sealed with the key). */
	carrier_create(carrier_key, signing);
	/* The account id is a control: the scan does see the data. */
	const char *needles[] = {
	        secret,  secret + 4, carrier_key, carrier_key + 5,
	        signing, account,    NULL};
	int found[6] = {0};
	cr_assert_eq(dump_count(needles, found), 0, "pg_dump failed");
	cr_assert_gt(found[5], 0, "the dump does not hold the account");
	cr_expect_eq(found[0] + found[1], 0, "the API key is in the dump");
	cr_expect_eq(found[2] + found[3], 0, "the carrier key is in the dump");
	cr_expect_eq(found[4], 0, "the carrier signing secret is in the dump");
	json_decref(a);
	free(first);
	free(again);
	free(copied);
	vox_pg_destroy(pg);
	stop_ingress(&in);
}

Test(idempotency, without_a_key_secrets_are_withheld_not_stored)
{
	const char *const extra[] = {"VOX_ENCRYPTION_KEY=", NULL};
	struct ingress in = start_ingress("idem-nokey.log", extra);
	char account[40], owner[64], idem[64], *first = NULL, *again = NULL;
	const char *body = "{\"role\":\"viewer\"}";
	json_t *a, *b, *answer;
	vox_pg_t *pg = t_pg();

	t_account("owner", account, owner);
	snprintf(idem, sizeof(idem), "nokey-%s", account);
	cr_assert_eq(post(&in, "/v1/api-keys", owner, idem, body, &first, NULL),
	             201, "%s", first);
	a = parse(first);
	cr_assert_eq(post(&in, "/v1/api-keys", owner, idem, body, &again, NULL),
	             409, "%s", again);
	b = parse(again);
	cr_assert_str_eq(error_code(b), "idempotency_reply_withheld");
	answer = json_object_get(
	        json_object_get(json_object_get(b, "error"), "details"),
	        "first_answer");
	cr_assert_str_eq(vox_json_str(answer, "id"), vox_json_str(a, "id"));
	cr_assert_null(json_object_get(answer, "key"));
	cr_assert_null(strstr(again, vox_json_str(a, "key")));
	const char *params[] = {account, vox_json_str(a, "key")};
	PGresult *res = NULL;
	vox_error_t err;

	cr_assert_eq(vox_pg_exec(pg,
	                         "SELECT response_body FROM idempotency_keys "
	                         "WHERE account_id = $1 AND secret_withheld "
	                         "AND response_sealed IS NULL AND "
	                         "strpos(response_body, $2) = 0",
	                         2, params, &res, &err),
	             0, "%s", err.message);
	cr_assert_eq(PQntuples(res), 1, "no withheld row without the secret");
	PQclear(res);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM api_keys WHERE "
	                        "account_id = $1",
	                        account),
	             2);
	json_decref(a);
	json_decref(b);
	free(first);
	free(again);
	vox_pg_destroy(pg);
	stop_ingress(&in);
}

static const char trigger_body[] =
        "{\"category\":\"calls\",\"threshold\":1000,\"trigger_by\":"
        "\"count\",\"recurring\":\"daily\",\"callback_url\":"
        "\"https://example.com/hook\",\"friendly_name\":\"\\u00e9t\\u00e9\"}";
/* The same JSON: other key order, whitespace, escapes. */
static const char trigger_body_reordered[] =
        "{\n  \"friendly_name\" : \"\xc3\xa9t\xc3\xa9\",\n"
        "  \"recurring\":\"daily\", \"callback_url\":"
        "\"https:\\/\\/example.com\\/hook\",\n\t\"threshold\": 1000 ,"
        "\"trigger_by\":\"count\",\"category\":\"calls\"}";
static const char trigger_body_other[] =
        "{\"category\":\"calls\",\"threshold\":1001,\"trigger_by\":"
        "\"count\",\"recurring\":\"daily\",\"callback_url\":"
        "\"https://example.com/hook\",\"friendly_name\":\"\\u00e9t\\u00e9\"}";

static long long triggers(vox_pg_t *pg, const char *account)
{
	return t_pg_count(pg,
	                  "SELECT count(*) FROM usage_triggers WHERE "
	                  "account_id = $1",
	                  account);
}

Test(idempotency, same_json_replays_other_json_is_422)
{
	struct ingress in = start_ingress("idem-canonical.log", NULL);
	char account[40], owner[64], *first = NULL, *again = NULL,
	                             *other = NULL;
	bool replayed = false;
	vox_pg_t *pg = t_pg();
	json_t *e;

	t_account("owner", account, owner);
	cr_assert_eq(post(&in, "/v1/usage-triggers", owner, "canon",
	                  trigger_body, &first, NULL),
	             201, "%s", first);
	cr_assert_eq(post(&in, "/v1/usage-triggers", owner, "canon",
	                  trigger_body_reordered, &again, &replayed),
	             201, "%s", again);
	cr_assert(replayed);
	cr_assert_str_eq(again, first);
	cr_assert_eq(triggers(pg, account), 1);
	cr_assert_eq(post(&in, "/v1/usage-triggers", owner, "canon",
	                  trigger_body_other, &other, NULL),
	             422, "%s", other);
	e = parse(other);
	cr_assert_str_eq(error_code(e), "idempotency_key_reused");
	cr_assert_eq(triggers(pg, account), 1);
	json_decref(e);
	free(first);
	free(again);
	free(other);
	vox_pg_destroy(pg);
	stop_ingress(&in);
}

/* VOX_KAFKA_BROKERS of a broker that is not there. */
static const char *no_broker(void)
{
	static char setting[64];

	snprintf(setting, sizeof(setting), "VOX_KAFKA_BROKERS=127.0.0.1:%d",
	         t_free_port());
	return setting;
}

Test(idempotency, a_5xx_releases_the_key_for_the_retry)
{
	/* The command cannot be made durable: 503 bus_unavailable. */
	const char *const extra[] = {no_broker(), "VOX_KAFKA_TIMEOUT_MS=300",
	                             NULL};
	struct ingress down = start_ingress("idem-5xx.log", extra);
	struct ingress up = start_ingress("idem-5xx-up.log", NULL);
	char account[40], owner[64], *first = NULL, *retry = NULL,
	                             *replay = NULL;
	bool replayed = false;
	vox_pg_t *pg = t_pg();
	json_t *e;

	t_account("owner", account, owner);
	cr_assert_eq(
	        post(&down, "/v1/canary", owner, "five", "{}", &first, NULL),
	        503, "%s", first);
	e = parse(first);
	cr_assert_str_eq(error_code(e), "bus_unavailable");
	json_decref(e);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM idempotency_keys WHERE "
	                        "account_id = $1",
	                        account),
	             0, "the key is still held after the 503");
	/* The client's retry (same key) is served, not refused with 409. */
	cr_assert_eq(post(&up, "/v1/canary", owner, "five", "{}", &retry, NULL),
	             202, "%s", retry);
	cr_assert_eq(post(&up, "/v1/canary", owner, "five", "{}", &replay,
	                  &replayed),
	             202, "%s", replay);
	cr_assert(replayed);
	cr_assert_str_eq(replay, retry);
	free(first);
	free(retry);
	free(replay);
	vox_pg_destroy(pg);
	stop_ingress(&down);
	stop_ingress(&up);
}

struct held {
	const struct ingress *in;
	const char *key;
	int status;
};

static void *post_and_hang(void *arg)
{
	struct held *h = arg;
	char *out = NULL;

	h->status =
	        post(h->in, "/v1/canary", h->key, "crash", "{}", &out, NULL);
	free(out);
	return NULL;
}

struct claim_wait {
	vox_pg_t *pg;
	const char *account;
};

static bool claim_held(void *arg)
{
	struct claim_wait *w = arg;

	return t_pg_count(w->pg,
	                  "SELECT count(*) FROM idempotency_keys WHERE "
	                  "account_id = $1 AND status_code IS NULL",
	                  w->account) == 1;
}

Test(idempotency, a_claim_left_by_a_crash_is_taken_over_after_60s)
{
	/* This one waits for a broker that never comes, then is killed: its
	 * request holds the key and never answers. */
	const char *const hang_env[] = {no_broker(),
	                                "VOX_KAFKA_TIMEOUT_MS=120000", NULL};
	/* One minute and a half later, as far as idempotency can tell. */
	const char *const later_env[] = {"VOX_TEST_CLOCK_SKEW_S=90", NULL};
	struct ingress hang = start_ingress("idem-crash.log", hang_env);
	struct ingress now = start_ingress("idem-crash-now.log", NULL);
	struct ingress later;
	char account[40], owner[64], *busy = NULL, *taken = NULL;
	struct held h = {&hang, owner, -1};
	vox_pg_t *pg = t_pg();
	struct claim_wait w = {pg, account};
	pthread_t thread;
	json_t *e;

	t_account("owner", account, owner);
	cr_assert_eq(pthread_create(&thread, NULL, post_and_hang, &h), 0);
	cr_assert(t_wait_for(claim_held, &w, 10000), "no claim taken");
	cr_assert_eq(t_stop(hang.pid, SIGKILL, 5000) & 0x7f, SIGKILL);
	pthread_join(thread, NULL);
	cr_assert_eq(h.status, 0, "the crashed ingress answered %d", h.status);
	cr_assert(claim_held(&w), "the crash did not leave the claim");
	/* Within the 60 s the claim still counts: in flight. */
	cr_assert_eq(
	        post(&now, "/v1/canary", owner, "crash", "{}", &busy, NULL),
	        409, "%s", busy);
	e = parse(busy);
	cr_assert_str_eq(error_code(e), "idempotency_key_in_use");
	json_decref(e);
	/* After them it is abandoned: the next request takes it over. */
	later = start_ingress("idem-crash-later.log", later_env);
	cr_assert_eq(
	        post(&later, "/v1/canary", owner, "crash", "{}", &taken, NULL),
	        202, "%s", taken);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM idempotency_keys WHERE "
	                        "account_id = $1 AND status_code = 202",
	                        account),
	             1);
	free(busy);
	free(taken);
	vox_pg_destroy(pg);
	stop_ingress(&now);
	stop_ingress(&later);
}

Test(idempotency, keys_expire_after_24_hours)
{
	/* 23 h 59 min and 24 h 1 min after now, for idempotency. */
	const char *const before_env[] = {"VOX_TEST_CLOCK_SKEW_S=86340", NULL};
	const char *const after_env[] = {"VOX_TEST_CLOCK_SKEW_S=86460", NULL};
	struct ingress in = start_ingress("idem-expiry.log", NULL);
	struct ingress before = start_ingress("idem-expiry-1.log", before_env);
	struct ingress after = start_ingress("idem-expiry-2.log", after_env);
	char account[40], owner[64], *first = NULL, *out = NULL;
	bool replayed = false;
	vox_pg_t *pg = t_pg();
	json_t *e;

	t_account("owner", account, owner);
	cr_assert_eq(post(&in, "/v1/usage-triggers", owner, "day", trigger_body,
	                  &first, NULL),
	             201, "%s", first);
	/* A minute before expiry: still the first answer, still 422. */
	cr_assert_eq(post(&before, "/v1/usage-triggers", owner, "day",
	                  trigger_body, &out, &replayed),
	             201, "%s", out);
	cr_assert(replayed);
	cr_assert_str_eq(out, first);
	free(out);
	cr_assert_eq(post(&before, "/v1/usage-triggers", owner, "day",
	                  trigger_body_other, &out, NULL),
	             422, "%s", out);
	e = parse(out);
	cr_assert_str_eq(error_code(e), "idempotency_key_reused");
	json_decref(e);
	free(out);
	cr_assert_eq(triggers(pg, account), 1);
	/* A minute after: the key is new again, for any body. */
	cr_assert_eq(post(&after, "/v1/usage-triggers", owner, "day",
	                  trigger_body_other, &out, &replayed),
	             201, "%s", out);
	cr_assert_not(replayed);
	cr_assert_eq(triggers(pg, account), 2);
	free(out);
	free(first);
	vox_pg_destroy(pg);
	stop_ingress(&in);
	stop_ingress(&before);
	stop_ingress(&after);
}
