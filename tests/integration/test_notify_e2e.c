/*
 * Issue 13's acceptance 1 end to end, with nothing played by the test:
 * a customer makes a usage trigger and a webhook endpoint through the
 * ingress, a carrier pushes signed CDRs, the metering worker fires the
 * trigger, and the notifications worker (reading the real
 * vox.cmd.notifications) tells the account: by email; with SMTP down, by
 * SMS, whose receipt the SMS sandbox posts to the ingress (signed), which
 * publishes it back to the worker; with SMS failing too, by the webhook
 * endpoint, verified with the standardwebhooks package. The trigger's own
 * callback arrives each time, signed with its callback_secret.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "test_notify_helpers.h"
#include "vox_auth.h"
#include "vox_buf.h"
#include "vox_crypto.h"
#include "vox_uuid.h"

#define WAIT_MS 30000
/* The SMS step waits 5 s (at the suite's time scale of 1000) for the
 * receipt's round trip through the sandbox, the ingress and Kafka. */
#define SMS_DEADLINE "VOX_NOTIFY_SMS_DEADLINE_S=5000"

struct world {
	int port;
	pid_t ingress, metering;
	char account[40], key[64], number[20], email[80];
	char carrier[40], ckey[96], csecret[64];
	char endpoint[40], auth[100], cb_path[64], wh_path[64];
	char group[120];
};

static bool ingress_up(void *arg)
{
	return t_http("GET", *(int *)arg, "/healthz", NULL, NULL, NULL) == 200;
}

/* POST path with body under the account's key; the answer's JSON. */
static json_t *api_post(struct world *w, const char *path, const char *body,
                        int want)
{
	char idem[80], id[VOX_UUID_STRLEN], *text = NULL;
	json_t *doc;
	int status;

	vox_uuid7(id);
	snprintf(idem, sizeof(idem), "Idempotency-Key: e2e-%s", id);
	const char *headers[] = {w->auth, idem,
	                         "Content-Type: application/json", NULL};
	status = t_http_h("POST", w->port, path, body, headers, &text, NULL);
	cr_assert_eq(status, want, "POST %s: %d %s", path, status, text);
	doc = json_loads(text != NULL ? text : "null", JSON_DECODE_ANY, NULL);
	free(text);
	cr_assert_not_null(doc);
	return doc;
}

/* The receiver verifies requests to path with secret. */
static void receiver_secret(const char *path, const char *secret)
{
	json_t *req =
	        json_pack("{s:s, s:[s]}", "path", path, "secrets", secret);
	char *body = json_dumps(req, JSON_COMPACT);

	json_decref(tn_recv("POST", "/_admin/secrets", body));
	free(body);
	json_decref(req);
}

static void world_start(struct world *w)
{
	char port_env[40], cb_env[160], group_env[160], topics_env[80];
	char hash[65], id[VOX_UUID_STRLEN];
	vox_pg_t *pg = t_pg();
	vox_error_t err;
	json_t *doc;

	memset(w, 0, sizeof(*w));
	vox_uuid7(id);
	/* the notifications worker on the real topics, from their ends,
	 * sending receipts' URL as the ingress's (started below) */
	w->port = t_free_port();
	snprintf(cb_env, sizeof(cb_env),
	         "VOX_SMS_STATUS_CALLBACK_URL=http://127.0.0.1:%d/v1/providers/"
	         "sms/status",
	         w->port);
	snprintf(w->group, sizeof(w->group), "vox.test.notify-e2e.%s", id);
	t_group_at_end(w->group, "vox.cmd.notifications");
	t_group_at_end(w->group, "vox.events");
	snprintf(group_env, sizeof(group_env), "VOX_WORKER_GROUP=%s", w->group);
	snprintf(topics_env, sizeof(topics_env),
	         "VOX_WORKER_TOPICS=vox.cmd.notifications,vox.events");
	const char *nenv[] = {topics_env,   group_env,
	                      cb_env,       "VOX_WORKER_RELAY=true",
	                      SMS_DEADLINE, NULL};
	tn_start(nenv);

	/* the account: one owner with an email and a phone, default order */
	snprintf(w->email, sizeof(w->email), "e2e-%s@example.com", id + 24);
	/* from the uuid's random bits: rand() is not seeded, and other
	 * suites draw the same sequence */
	{
		unsigned long r = strtoul(id + 28, NULL, 16);

		snprintf(w->number, sizeof(w->number), "+1628%lu%06lu",
		         2 + r % 8, (r / 8) % 1000000);
	}
	tn_account("en", w->email, "+14155550199", NULL, w->account);
	t_key(w->account, "owner", w->key, NULL);
	snprintf(w->auth, sizeof(w->auth), "Authorization: Bearer %s", w->key);
	{
		const char *p[] = {w->number, w->account};

		cr_assert_eq(
		        vox_pg_exec(pg,
		                    "INSERT INTO numbers (e164, country, "
		                    "area_code, number_type, status, "
		                    "account_id, carrier) VALUES ($1, 'US', "
		                    "'628', 'local', 'active', $2, "
		                    "'sandbox')",
		                    2, p, NULL, &err),
		        0, "%s", err.message);
	}
	/* a carrier credential to push CDRs with */
	snprintf(w->carrier, sizeof(w->carrier), "e2en-%.12s", id + 24);
	cr_assert_eq(vox_carrier_key_generate(w->ckey, sizeof(w->ckey), &err),
	             0);
	cr_assert_eq(vox_random_b64url(w->csecret, sizeof(w->csecret), &err),
	             0);
	vox_apikey_hash_hex(w->ckey, hash);
	{
		const char *p[] = {w->carrier, w->ckey, hash, w->csecret};

		cr_assert_eq(vox_pg_exec(pg,
		                         "INSERT INTO carrier_credentials "
		                         "(carrier, key_prefix, key_hash, "
		                         "signing_secret) VALUES ($1, left($2, "
		                         "12), decode($3, 'hex'), $4)",
		                         4, p, NULL, &err),
		             0, "%s", err.message);
	}
	vox_pg_destroy(pg);

	/* the ingress: receipts come back to it, signed over that URL */
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", w->port);
	const char *ienv[] = {port_env,
	                      cb_env,
	                      "VOX_ENCRYPTION_KEY=" TN_ENCRYPTION_KEY,
	                      "VOX_WEBHOOK_ALLOW_CIDRS=127.0.0.77/32",
	                      "VOX_RATE_COMMAND=1000",
	                      "VOX_RATE_READ=1000",
	                      NULL};
	w->ingress = t_spawn("ingress", "notify-e2e-ingress.log", ienv);
	cr_assert(t_wait_for(ingress_up, &w->port, 20000), "ingress not up");

	/* the metering worker, which fires the trigger */
	snprintf(group_env, sizeof(group_env), "VOX_WORKER_GROUP=%s.metering",
	         w->group);
	const char *menv[] = {group_env, "VOX_WORKER_METRICS_PORT=0",
	                      "VOX_KAFKA_SESSION_TIMEOUT_MS=6000", NULL};
	w->metering = t_spawn("metering", "notify-e2e-metering.log", menv);

	/* the customer's webhook endpoint and trigger, through the API */
	snprintf(w->wh_path, sizeof(w->wh_path), "/e2e-wh-%.12s", id + 24);
	snprintf(w->cb_path, sizeof(w->cb_path), "/e2e-cb-%.12s", id + 24);
	char body[300];
	snprintf(body, sizeof(body),
	         "{\"url\":\"http://127.0.0.77:%d%s\",\"events\":"
	         "[\"usage.trigger.fired\"]}",
	         tn.recv_port, w->wh_path);
	doc = api_post(w, "/v1/webhook-endpoints", body, 201);
	snprintf(w->endpoint, sizeof(w->endpoint), "%s",
	         json_string_value(json_object_get(doc, "id")));
	receiver_secret(w->wh_path,
	                json_string_value(json_object_get(doc, "secret")));
	json_decref(doc);
	snprintf(body, sizeof(body),
	         "{\"category\":\"sms\",\"trigger_by\":\"count\",\"threshold\":"
	         "3,\"recurring\":\"daily\",\"callback_url\":\"http://"
	         "127.0.0.77:%d%s\"}",
	         tn.recv_port, w->cb_path);
	doc = api_post(w, "/v1/usage-triggers", body, 201);
	cr_assert(json_is_string(json_object_get(doc, "callback_secret")));
	receiver_secret(w->cb_path, json_string_value(json_object_get(
	                                    doc, "callback_secret")));
	json_decref(doc);
}

static void world_stop(struct world *w)
{
	tn_stop();
	cr_expect_eq(t_stop(w->metering, SIGTERM, 30000), 0);
	cr_expect_eq(t_stop(w->ingress, SIGTERM, 20000), 0);
}

/* Pushes 3 SMS records on the day `days` before today: the trigger's
 * threshold for that day. */
static void fire(struct world *w, int days)
{
	time_t at = time(NULL) / 86400 * 86400 - 86400L * days + 3600;
	char when[32], id[VOX_UUID_STRLEN];
	vox_buf_t buf;
	struct tm tm;
	char *body;

	gmtime_r(&at, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	vox_uuid7(id);
	vox_buf_init(&buf, 2048);
	vox_buf_adds(&buf, "[");
	for (int i = 0; i < 3; i++)
		vox_buf_printf(&buf,
		               "%s{\"id\":\"n-%s-%d\",\"type\":\"sms_sent\","
		               "\"from\":\"%s\",\"to\":\"+442079460000\","
		               "\"started_at\":\"%s\",\"segments\":1}",
		               i ? "," : "", id, i, w->number, when);
	vox_buf_adds(&buf, "]");
	body = vox_buf_take(&buf, NULL);
	cr_assert_not_null(body);
	cr_assert_eq(t_cdr_push(w->port, w->ckey, w->csecret, body), 202);
	free(body);
}

/* The callback of the n-th fire arrived and verified. */
static void callback_verified(struct world *w, int n)
{
	json_t *got = tn_received(w->cb_path, n, WAIT_MS);

	cr_assert(json_array_size(got) >= (size_t)n, "%zu callbacks",
	          json_array_size(got));
	cr_assert(json_is_true(json_object_get(
	                  json_array_get(got, (size_t)n - 1), "verified")),
	          "callback %d not verified by standardwebhooks", n);
	json_decref(got);
}

#define CHAINS_DELIVERED                                                       \
	"SELECT count(*) FROM notification_chains WHERE account_id = $1 AND "  \
	"status = 'delivered'"
#define CHANNELS_USED                                                          \
	"SELECT string_agg(n.channel || ':' || n.status, ',' ORDER BY "        \
	"n.created_at) FROM notifications n JOIN notification_chains c ON "    \
	"c.id = n.chain_id WHERE c.account_id = $1 AND c.id = (SELECT id "     \
	"FROM notification_chains WHERE account_id = $1 ORDER BY created_at "  \
	"DESC LIMIT 1)"

Test(notify_e2e, trigger_fires_email_then_sms_then_webhook, .timeout = 240)
{
	struct world w;
	char *mail, *used;
	json_t *got;

	world_start(&w);

	/* 1. email */
	fire(&w, 3);
	mail = tn_mail(w.email, WAIT_MS);
	cr_assert_not_null(mail, "no email arrived in the sink's Maildir");
	cr_expect(strstr(mail, w.account) != NULL ||
	                  strstr(mail, "trigger") != NULL,
	          "the email does not speak of the trigger: %.300s", mail);
	free(mail);
	callback_verified(&w, 1);
	cr_assert(tn_wait_sql(CHAINS_DELIVERED, w.account, "1", WAIT_MS));

	/* 2. SMTP down: the SMS, settled by its receipt through the ingress */
	tn_stop();
	const char *down[] = {"VOX_SMTP_URL=smtp://127.0.0.1:1", NULL};
	char cb_env[160], group_env[160];
	snprintf(cb_env, sizeof(cb_env),
	         "VOX_SMS_STATUS_CALLBACK_URL=http://127.0.0.1:%d/v1/providers/"
	         "sms/status",
	         w.port);
	snprintf(group_env, sizeof(group_env), "VOX_WORKER_GROUP=%s", w.group);
	const char *env2[] = {
	        "VOX_WORKER_TOPICS=vox.cmd.notifications,vox.events",
	        group_env,
	        cb_env,
	        "VOX_WORKER_RELAY=true",
	        SMS_DEADLINE,
	        down[0],
	        NULL};
	tn_worker_spawn(env2);
	fire(&w, 2);
	used = tn_wait_sql(CHAINS_DELIVERED, w.account, "2", WAIT_MS)
	               ? NULL
	               : tn_sql(CHANNELS_USED, w.account);
	cr_assert_null(used, "the SMS was not settled delivered: %s", used);
	used = tn_sql(CHANNELS_USED, w.account);
	cr_expect(strstr(used, "email:") == used &&
	                  strstr(used, "sms:delivered") != NULL,
	          "channels: %s", used);
	free(used);
	got = tn_sms("GET", "/admin/messages?to=%2B14155550199", NULL);
	cr_assert(json_array_size(json_object_get(got, "messages")) >= 1,
	          "no SMS at the sandbox");
	json_decref(got);
	callback_verified(&w, 2);

	/* 3. SMS failing too: the webhook endpoint made through the API */
	json_decref(tn_sms("POST", "/admin/faults",
	                   "{\"endpoint\":\"send\",\"status\":500,"
	                   "\"error_rate\":1.0}"));
	fire(&w, 1);
	got = tn_received(w.wh_path, 1, WAIT_MS);
	json_decref(tn_sms("DELETE", "/admin/faults", NULL));
	cr_assert(json_array_size(got) >= 1, "no webhook delivery");
	cr_assert(json_is_true(
	                  json_object_get(json_array_get(got, 0), "verified")),
	          "the webhook did not verify with standardwebhooks");
	json_decref(got);
	cr_assert(tn_wait_sql(CHAINS_DELIVERED, w.account, "3", WAIT_MS));
	used = tn_sql(CHANNELS_USED, w.account);
	cr_expect(strstr(used, "sms:") != NULL &&
	                  strstr(used, "sms:delivered") == NULL &&
	                  strstr(used, "webhook:delivered") != NULL,
	          "channels: %s", used);
	free(used);
	callback_verified(&w, 3);

	/* the delivery log, as the customer reads it */
	{
		char path[120], *text = NULL;
		const char *headers[] = {w.auth, NULL};

		snprintf(path, sizeof(path),
		         "/v1/webhook-endpoints/%s/attempts", w.endpoint);
		cr_assert_eq(t_http_h("GET", w.port, path, NULL, headers, &text,
		                      NULL),
		             200);
		cr_expect(strstr(text, "\"succeeded\"") != NULL, "%s", text);
		free(text);
	}
	world_stop(&w);
}
