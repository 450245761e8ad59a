/*
 * The notifications worker end to end (docs/NOTIFICATIONS.md), a real
 * worker process (test-bin build) on a topic of its own, with its own SMTP
 * sink, SMS sandbox and webhook receiver (test_notify_helpers.c) and
 * VOX_NOTIFY_TIME_SCALE=1000 (5 s of the schedule are 5 ms here):
 * - a usage trigger is told by email; email refused -> SMS (its receipt
 *   settles it); email and SMS failing -> the webhook; the trigger's
 *   callback_url gets it signed with the trigger's own secret;
 * - webhooks: the retry schedule, 410 disabling the endpoint (and
 *   endpoint.disabled), both signatures during a rotation, recover, per
 *   number order, the destination filter at delivery, redirects;
 * - a worker killed with deliveries on the wire: every message arrives,
 *   the dead attempts are 'abandoned', and no attempt was sent twice.
 * Every delivery the receiver gets is verified with `standardwebhooks`.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "test_notify_helpers.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_kafka.h"
#include "vox_time.h"
#include "vox_uuid.h"

#define WAIT_MS 20000

static void start(void)
{
	tn_start(NULL);
}

static void stop(void)
{
	tn_stop();
}

TestSuite(notifications, .init = start, .fini = stop, .timeout = 90);

/* A unique path (and e-mail local part, phone) for this test. */
static void unique(const char *prefix, char *out, size_t outlen)
{
	char id[VOX_UUID_STRLEN];

	vox_uuid7(id);
	snprintf(out, outlen, "%s%.8s%.4s", prefix, id + 24, id + 9);
}

static void mail_of(const char *prefix, char out[80])
{
	char local[64];

	unique(prefix, local, sizeof(local));
	snprintf(out, 80, "%s@example.com", local);
}

static void phone_of(char out[20])
{
	snprintf(out, 20, "+1555%07ld", (long)(vox_now_us() % 10000000));
}

/* A usage trigger row with a sealed callback secret; secret receives it. */
static void trigger(const char *account, const char *callback, char id[40],
                    char secret[100])
{
	vox_error_t err;
	char *sealed;

	vox_uuid7(id);
	snprintf(secret, 100, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
	sealed = tn_seal("usage_triggers", id, secret);
	const char *params[] = {id, account, callback, sealed};
	cr_assert_eq(
	        vox_pg_exec(tn.pg,
	                    "INSERT INTO usage_triggers (id, account_id, "
	                    "category, trigger_by, threshold, recurring, "
	                    "callback_url, friendly_name, "
	                    "callback_secret_enc) VALUES ($1, $2, 'calls', "
	                    "'count', 3, 'daily', $3, 'three calls', "
	                    "decode($4, 'hex'))",
	                    4, params, NULL, &err),
	        0, "%s", err.message);
	free(sealed);
}

static void fire(const char *account, const char *trigger_id,
                 const char *callback, char event_id[40])
{
	tn_publish("vox.notification.requested", trigger_id, account,
	           json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, "
	                     "s:s, s:s}",
	                     "kind", "usage_trigger", "trigger_id", trigger_id,
	                     "account_id", account, "category", "calls",
	                     "trigger_by", "count", "threshold", 3, "value", 4,
	                     "recurring", "daily", "period_start", "2026-12-06",
	                     "callback_url", callback, "friendly_name",
	                     "three calls"),
	           event_id);
}

static void secrets(const char *path, const char *a, const char *b)
{
	char body[600];

	snprintf(body, sizeof(body),
	         "{\"path\":\"%s\",\"secrets\":[\"%s\"%s%s%s]}", path, a,
	         b ? ",\"" : "", b ? b : "", b ? "\"" : "");
	json_decref(tn_recv("POST", "/_admin/secrets", body));
}

static void script(const char *path, const char *responses)
{
	char body[1200];

	snprintf(body, sizeof(body), "{\"path\":\"%s\",\"responses\":%s}", path,
	         responses);
	json_decref(tn_recv("POST", "/_admin/script", body));
}

/* Every request of list verified with one of the path's secrets. */
static void all_verified(const json_t *list)
{
	size_t i;
	json_t *r;

	json_array_foreach(list, i, r)
	{
		cr_expect(json_is_true(json_object_get(r, "verified")),
		          "request %zu not verified: %s", i,
		          vox_json_str(r, "verify_error"));
	}
}

static long long count_sql(const char *sql, const char *param)
{
	return t_pg_count(tn.pg, sql, param);
}

#define CHAIN_STATUS                                                           \
	"SELECT status FROM notification_chains WHERE source_event_id = $1"

Test(notifications, usage_trigger_by_email_and_signed_callback)
{
	char account[40], es_account[40], trig[40], es_trig[40], secret[100];
	char email[80], es_email[80], path[64], cb[200], ev[40], es_ev[40];
	char *mail, *es_mail;
	json_t *got;

	mail_of("owner-", email);
	mail_of("duena-", es_email);
	unique("/cb-", path, sizeof(path));
	snprintf(cb, sizeof(cb), "http://127.0.0.77:%d%s", tn.recv_port, path);
	tn_account("en", email, NULL, NULL, account);
	tn_account("es", es_email, NULL, NULL, es_account);
	trigger(account, cb, trig, secret);
	trigger(es_account, cb, es_trig, secret);
	secrets(path, secret, NULL);
	fire(account, trig, cb, ev);
	fire(es_account, es_trig, cb, es_ev);

	mail = tn_mail(email, WAIT_MS);
	cr_assert_not_null(mail, "no email for %s", email);
	cr_expect(strstr(mail, "Subject: Usage alert: three calls reached 3"),
	          "%s", mail);
	cr_expect(strstr(mail, "multipart/alternative"));
	cr_expect(strstr(mail, "text/html"));
	cr_expect(strstr(mail, "Value now: 4"), "%s", mail);
	es_mail = tn_mail(es_email, WAIT_MS);
	cr_assert_not_null(es_mail);
	/* non-ASCII subject: RFC 2047 encoded */
	cr_expect(strstr(es_mail, "Subject: =?UTF-8?B?"), "%s", es_mail);
	cr_expect(strstr(es_mail, "Umbral: 3"), "%s", es_mail);
	free(mail);
	free(es_mail);
	cr_expect(tn_wait_sql(CHAIN_STATUS, ev, "delivered", WAIT_MS));

	got = tn_received(path, 2, WAIT_MS);
	cr_assert_eq(json_array_size(got), 2, "callbacks: %zu",
	             json_array_size(got));
	all_verified(got);
	cr_expect(strstr(vox_json_str(json_array_get(got, 0), "body"),
	                 "\"type\":\"usage.trigger.fired\""));
	json_decref(got);
	cr_expect(tn_wait_sql("SELECT string_agg(outcome, ',') FROM "
	                      "notification_attempts a JOIN notifications n ON "
	                      "n.id = a.notification_id WHERE n.channel = "
	                      "'callback' AND n.trigger_id = $1",
	                      trig, "succeeded", WAIT_MS));
	/* a redelivered event (same id) is a no-op, past the inbox too */
	tn_republish_last();
	vox_sleep_ms(1500);
	cr_expect_eq(count_sql("SELECT count(*) FROM notification_chains "
	                       "WHERE account_id = $1",
	                       es_account),
	             1);
	cr_expect_eq(count_sql("SELECT count(*) FROM notifications n JOIN "
	                       "notification_chains c ON c.id = n.chain_id "
	                       "WHERE c.source_event_id = $1",
	                       es_ev),
	             1);
}

/* The receipts the sandbox posted to the receiver, as the ingress would
 * publish them. */
static void relay_receipt(const char *sid)
{
	json_t *got = tn_received("/sms-status", 1, WAIT_MS);
	size_t i;
	json_t *r;
	bool found = false;

	json_array_foreach(got, i, r)
	{
		const char *body = vox_json_str(r, "body");

		found = found || (body && strstr(body, sid));
	}
	json_decref(got);
	cr_assert(found, "no receipt for %s", sid);
	tn_publish("vox.sms.status_received", sid, NULL,
	           json_pack("{s:s, s:s, s:s, s:n, s:s}", "provider", "sms",
	                     "provider_message_id", sid, "status", "delivered",
	                     "error_code", "to", "+15005550006"),
	           NULL);
}

static char *sms_sid(const char *phone)
{
	char q[80];
	json_t *list = NULL, *msg;
	char *sid = NULL;

	snprintf(q, sizeof(q), "/admin/messages?to=%%2B%s", phone + 1);
	for (int i = 0; i < 200 && sid == NULL; i++) {
		list = tn_sms("GET", q, NULL);
		msg = json_is_array(list)
		              ? json_array_get(list, 0)
		              : json_array_get(
		                        json_object_get(list, "messages"), 0);
		if (msg != NULL && vox_json_str(msg, "sid"))
			sid = strdup(vox_json_str(msg, "sid"));
		json_decref(list);
		if (sid == NULL)
			vox_sleep_ms(100);
	}
	return sid;
}

Test(notifications, sms_when_email_is_refused_and_its_receipt_settles_it)
{
	char account[40], trig[40], secret[100], email[80], phone[20], ev[40];
	char cb[120], *sid;

	mail_of("reject-", email);
	phone_of(phone);
	tn_account("en", email, phone, NULL, account);
	snprintf(cb, sizeof(cb), "http://127.0.0.77:%d/cb-any", tn.recv_port);
	trigger(account, cb, trig, secret);
	fire(account, trig, cb, ev);
	sid = sms_sid(phone);
	cr_assert_not_null(sid, "no SMS to %s", phone);
	cr_expect(tn_wait_sql("SELECT status FROM notifications WHERE "
	                      "provider_message_id = $1",
	                      sid, "sent", WAIT_MS));
	relay_receipt(sid);
	cr_expect(tn_wait_sql("SELECT status FROM notifications WHERE "
	                      "provider_message_id = $1",
	                      sid, "delivered", WAIT_MS));
	cr_expect(tn_wait_sql(CHAIN_STATUS, ev, "delivered", WAIT_MS));
	/* the email attempt failed for good with the sink's 550 */
	cr_expect(tn_wait_sql("SELECT a.outcome || ' ' || a.status_code FROM "
	                      "notification_attempts a JOIN notifications n ON "
	                      "n.id = a.notification_id JOIN "
	                      "notification_chains c ON c.id = n.chain_id "
	                      "WHERE c.source_event_id = $1 AND n.channel = "
	                      "'email'",
	                      ev, "failed 550", WAIT_MS));
	free(sid);
}

Test(notifications, webhook_when_email_and_sms_fail)
{
	char account[40], trig[40], secret[100], email[80], phone[20], ev[40];
	char cb[120], path[64], endpoint[40], whsec[100];
	json_t *got;

	mail_of("reject-", email);
	phone_of(phone);
	unique("/wh-", path, sizeof(path));
	tn_account("en", email, phone, NULL, account);
	tn_endpoint(account, path, endpoint, whsec);
	secrets(path, whsec, NULL);
	json_decref(tn_sms("POST", "/admin/faults",
	                   "{\"endpoint\":\"send\",\"status\":500,"
	                   "\"error_rate\":1.0}"));
	snprintf(cb, sizeof(cb), "http://127.0.0.77:%d/cb-any", tn.recv_port);
	trigger(account, cb, trig, secret);
	fire(account, trig, cb, ev);
	got = tn_received(path, 1, WAIT_MS);
	cr_assert_eq(json_array_size(got), 1);
	all_verified(got);
	json_decref(got);
	json_decref(tn_sms("DELETE", "/admin/faults", NULL));
	cr_expect(tn_wait_sql(CHAIN_STATUS, ev, "delivered", WAIT_MS));
	/* each channel's attempts, in the attempts table */
	cr_expect(tn_wait_sql(
	        "SELECT string_agg(DISTINCT n.channel || ':' || "
	        "a.outcome, ',' ORDER BY n.channel || ':' || "
	        "a.outcome) FROM notification_attempts a JOIN "
	        "notifications n ON n.id = a.notification_id JOIN "
	        "notification_chains c ON c.id = n.chain_id WHERE "
	        "c.source_event_id = $1",
	        ev, "email:failed,sms:failed,webhook:succeeded", WAIT_MS));
}

/* An account whose notifications go to webhooks only, with one endpoint
 * on a fresh receiver path. */
static void webhook_account(char account[40], char path[64], char id[40],
                            char whsec[100])
{
	unique("/wh-", path, 64);
	tn_account("en", NULL, NULL, "{webhook}", account);
	tn_endpoint(account, path, id, whsec);
	secrets(path, whsec, NULL);
}

static void number_event(const char *account, const char *e164,
                         const char *type)
{
	tn_publish(type, e164, account,
	           json_pack("{s:s, s:s}", "phone_number", e164, "status",
	                     "active"),
	           NULL);
}

Test(notifications, webhook_retry_schedule)
{
	char account[40], path[64], id[40], whsec[100];
	json_t *got;
	double at[4];

	webhook_account(account, path, id, whsec);
	script(path, "[{\"status\":500},{\"status\":500},{\"status\":500}]");
	number_event(account, "+15550000001", "number.activated");
	got = tn_received(path, 4, WAIT_MS);
	cr_assert_eq(json_array_size(got), 4);
	all_verified(got);
	for (int i = 0; i < 4; i++)
		at[i] = json_real_value(
		        json_object_get(json_array_get(got, (size_t)i), "at"));
	/* 5 s, 5 min, 30 min divided by 1000 */
	cr_expect_geq(at[1] - at[0], 0.005);
	cr_expect_geq(at[2] - at[1], 0.300);
	cr_expect_geq(at[3] - at[2], 1.800);
	/* one webhook-id for every attempt */
	cr_expect_str_eq(
	        vox_json_str(json_object_get(json_array_get(got, 0), "headers"),
	                     "webhook-id"),
	        vox_json_str(json_object_get(json_array_get(got, 3), "headers"),
	                     "webhook-id"));
	json_decref(got);
	cr_expect(tn_wait_sql(
	        "SELECT string_agg(a.outcome || ' ' || "
	        "a.status_code, ',' ORDER BY a.attempt) FROM "
	        "notification_attempts a JOIN notifications n ON "
	        "n.id = a.notification_id WHERE "
	        "n.webhook_endpoint_id = $1",
	        id, "failed 500,failed 500,failed 500,succeeded 200", WAIT_MS));
	cr_expect(tn_wait_sql("SELECT failure_count || ' ' || (failing_since "
	                      "IS NULL) || ' ' || (last_success_at IS NOT "
	                      "NULL) FROM webhook_endpoints WHERE id = $1",
	                      id, "0 true true", WAIT_MS));
}

/* A disabled endpoint holds its deliveries (paused); a changed URL is
 * where the next attempt goes: nothing reaches the old one. */
Test(notifications, paused_endpoint_then_new_url_gets_the_delivery)
{
	char account[40], path[64], id[40], whsec[100], moved[64], url[128];
	json_t *got;
	vox_error_t err;

	webhook_account(account, path, id, whsec);
	unique("/moved-", moved, sizeof(moved));
	secrets(moved, whsec, NULL);
	const char *off[] = {id};
	cr_assert_eq(vox_pg_exec(tn.pg,
	                         "UPDATE webhook_endpoints SET enabled = false "
	                         "WHERE id = $1",
	                         1, off, NULL, &err),
	             0, "%s", err.message);
	number_event(account, "+15550000009", "number.activated");
	cr_assert(tn_wait_sql("SELECT count(*) FROM notifications WHERE "
	                      "webhook_endpoint_id = $1 AND status = 'queued'",
	                      id, "1", WAIT_MS));
	sleep(1);
	got = tn_received(path, 0, 10);
	cr_expect_eq(json_array_size(got), 0, "sent to a disabled endpoint");
	json_decref(got);
	snprintf(url, sizeof(url), "http://127.0.0.77:%d%s", tn.recv_port,
	         moved);
	const char *on[] = {id, url};
	cr_assert_eq(vox_pg_exec(tn.pg,
	                         "UPDATE webhook_endpoints SET enabled = true, "
	                         "url = $2 WHERE id = $1",
	                         2, on, NULL, &err),
	             0, "%s", err.message);
	got = tn_received(moved, 1, WAIT_MS);
	cr_assert_eq(json_array_size(got), 1);
	all_verified(got);
	json_decref(got);
	got = tn_received(path, 0, 10);
	cr_expect_eq(json_array_size(got), 0, "the old URL got it");
	json_decref(got);
}

Test(notifications, gone_disables_the_endpoint)
{
	char account[40], path[64], id[40], whsec[100];

	webhook_account(account, path, id, whsec);
	script(path, "[{\"status\":410}]");
	number_event(account, "+15550000002", "number.released");
	cr_assert(tn_wait_sql("SELECT enabled || ' ' || disabled_reason FROM "
	                      "webhook_endpoints WHERE id = $1",
	                      id, "false gone: endpoint answered 410",
	                      WAIT_MS));
	cr_expect_eq(count_sql("SELECT count(*) FROM outbox WHERE topic = "
	                       "'vox.events' AND message_key = $1 AND payload "
	                       "LIKE '%\"type\":\"endpoint.disabled\"%'",
	                       id),
	             1);
	/* the account is told (webhook-only: its one endpoint is disabled,
	 * so the chain has nowhere to go) */
	cr_expect(tn_wait_sql("SELECT status FROM notification_chains WHERE "
	                      "account_id = $1 AND event_type = "
	                      "'endpoint.disabled'",
	                      account, "exhausted", WAIT_MS));
}

Test(notifications, rotation_signs_with_both_secrets)
{
	char account[40], path[64], id[40], whsec[100], *sealed;
	const char old[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
	vox_error_t err;
	json_t *got, *by;

	webhook_account(account, path, id, whsec);
	sealed = tn_seal("webhook_endpoints", id, old);
	const char *params[] = {id, sealed};
	cr_assert_eq(vox_pg_exec(tn.pg,
	                         "UPDATE webhook_endpoints SET secret_old_enc "
	                         "= decode($2, 'hex'), secret_old_expires_at = "
	                         "now() + interval '1 day' WHERE id = $1",
	                         2, params, NULL, &err),
	             0, "%s", err.message);
	free(sealed);
	secrets(path, whsec, old);
	number_event(account, "+15550000003", "number.configured");
	got = tn_received(path, 1, WAIT_MS);
	cr_assert_eq(json_array_size(got), 1);
	all_verified(got);
	by = json_object_get(json_array_get(got, 0), "verified_by");
	cr_expect_eq(json_array_size(by), 2, "verified by %zu secrets",
	             json_array_size(by));
	json_decref(got);
}

Test(notifications, recover_queues_again_and_delivers)
{
	char account[40], path[64], id[40], whsec[100];
	json_t *got;

	webhook_account(account, path, id, whsec);
	script(path, "[{\"status\":500}],\"then\":{\"status\":500}");
	number_event(account, "+15550000004", "number.deactivated");
	cr_assert(tn_wait_sql("SELECT count(*) FROM notification_attempts a "
	                      "JOIN notifications n ON n.id = "
	                      "a.notification_id WHERE n.webhook_endpoint_id = "
	                      "$1 AND a.outcome = 'failed'",
	                      id, "2", WAIT_MS));
	/* given up (as after the 8th attempt), then recovered as the API
	 * does: attempts back to 0, tries go on */
	const char *params[] = {id};
	vox_error_t err;
	cr_assert_eq(vox_pg_exec(tn.pg,
	                         "UPDATE notifications SET status = 'failed', "
	                         "next_attempt_at = now() + interval '1 day' "
	                         "WHERE webhook_endpoint_id = $1",
	                         1, params, NULL, &err),
	             0, "%s", err.message);
	script(path, "[{\"status\":200}],\"then\":{\"status\":200}");
	cr_assert_eq(
	        vox_pg_exec(tn.pg,
	                    "UPDATE notifications SET status = 'queued', "
	                    "attempts = 0, lease_until = NULL, "
	                    "next_attempt_at = now() WHERE "
	                    "webhook_endpoint_id = $1 AND status = 'failed'",
	                    1, params, NULL, &err),
	        0, "%s", err.message);
	cr_expect(tn_wait_sql("SELECT status FROM notifications WHERE "
	                      "webhook_endpoint_id = $1",
	                      id, "delivered", WAIT_MS));
	got = tn_received(path, 3, WAIT_MS);
	all_verified(got);
	json_decref(got);
	cr_expect_eq(count_sql("SELECT max(attempt) FROM notification_attempts "
	                       "a JOIN notifications n ON n.id = "
	                       "a.notification_id WHERE n.webhook_endpoint_id "
	                       "= $1",
	                       id),
	             count_sql("SELECT tries FROM notifications WHERE "
	                       "webhook_endpoint_id = $1",
	                       id));
}

Test(notifications, one_number_in_sequence_order)
{
	static const char *const types[] = {
	        "number.purchased", "number.activated", "number.configured",
	        "number.deactivated", "number.released"};
	char account[40], path[64], id[40], whsec[100];
	long long last = 0, seq;
	json_t *got, *body, *r;
	size_t i;

	webhook_account(account, path, id, whsec);
	script(path, "[{\"status\":500},{\"status\":500}]");
	for (int k = 0; k < 5; k++)
		number_event(account, "+15550000005", types[k]);
	got = tn_received(path, 7, WAIT_MS);
	cr_assert_eq(json_array_size(got), 7, "got %zu", json_array_size(got));
	all_verified(got);
	json_array_foreach(got, i, r)
	{
		body = json_loads(vox_json_str(r, "body"), 0, NULL);
		seq = json_integer_value(json_object_get(body, "sequence"));
		cr_expect_geq(seq, last, "sequence %lld after %lld", seq, last);
		last = seq;
		json_decref(body);
	}
	cr_expect_eq(last, 5);
	json_decref(got);
}

Test(notifications, destination_filter_at_delivery)
{
	static const char *const hosts[] = {"127.0.0.1", "10.0.0.1",
	                                    "169.254.169.254", "[::1]",
	                                    "localhost"};
	char account[40], id[40], url[200];
	json_t *got;

	tn_account("en", NULL, NULL, "{webhook}", account);
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		snprintf(url, sizeof(url), "http://%s:%d/ssrf", hosts[i],
		         tn.recv_port);
		tn_endpoint(account, url, id, NULL);
	}
	number_event(account, "+15550000006", "number.activated");
	cr_expect(tn_wait_sql("SELECT count(*) FROM notification_attempts a "
	                      "JOIN notifications n ON n.id = "
	                      "a.notification_id WHERE n.account_id = $1 AND "
	                      "a.outcome = 'failed' AND a.error LIKE "
	                      "'destination refused:%' AND a.status_code IS "
	                      "NULL",
	                      account, "5", WAIT_MS));
	got = tn_received("/ssrf", 0, 0);
	cr_expect_eq(json_array_size(got), 0);
	json_decref(got);
}

Test(notifications, redirect_is_not_followed)
{
	char account[40], path[64], id[40], whsec[100];

	webhook_account(account, path, id, whsec);
	script(path, "[{\"status\":302,\"headers\":{\"Location\":"
	             "\"http://10.0.0.1/\"}}],\"then\":{\"status\":302,"
	             "\"headers\":{\"Location\":\"http://10.0.0.1/\"}}");
	number_event(account, "+15550000007", "number.activated");
	cr_expect(tn_wait_sql("SELECT a.outcome || ' ' || a.status_code FROM "
	                      "notification_attempts a JOIN notifications n ON "
	                      "n.id = a.notification_id WHERE "
	                      "n.webhook_endpoint_id = $1 AND a.attempt = 1",
	                      id, "failed 302", WAIT_MS));
	cr_expect_eq(count_sql("SELECT count(*) FROM notifications WHERE "
	                       "webhook_endpoint_id = $1 AND status = "
	                       "'delivered'",
	                       id),
	             0);
}

/* Short leases, so that a killed worker's rows come back within the
 * test; one row per claim, so four go out at once. */
static void crash_start(void)
{
	static const char *const extra[] = {
	        "VOX_NOTIFY_LEASE_S=5",     "VOX_WEBHOOK_TIMEOUT_MS=3000",
	        "VOX_SMTP_TIMEOUT_MS=3000", "VOX_SMS_TIMEOUT_MS=3000",
	        "VOX_NOTIFY_CLAIM_BATCH=1", NULL};

	tn_start(extra);
}

TestSuite(notify_crash, .init = crash_start, .fini = stop, .timeout = 120);

#define CRASH_EVENTS 6

Test(notify_crash, killed_mid_delivery_loses_nothing_sends_no_attempt_twice)
{
	static const char *const crash_env[] = {
	        "VOX_NOTIFY_LEASE_S=5",     "VOX_WEBHOOK_TIMEOUT_MS=3000",
	        "VOX_SMTP_TIMEOUT_MS=3000", "VOX_SMS_TIMEOUT_MS=3000",
	        "VOX_NOTIFY_CLAIM_BATCH=1", NULL};
	char account[40], path[64], id[40], whsec[100], e164[32];
	json_t *got, *r;
	PGresult *res;
	vox_error_t err;
	size_t i;
	int status;

	webhook_account(account, path, id, whsec);
	script(path, "[],\"then\":{\"status\":200,\"delay_ms\":2000}");
	for (int k = 0; k < CRASH_EVENTS; k++) {
		snprintf(e164, sizeof(e164), "+1555100000%d", k);
		number_event(account, e164, "number.activated");
	}
	/* four on the wire (the receiver records on arrival), then kill */
	got = tn_received(path, 4, WAIT_MS);
	cr_assert_geq(json_array_size(got), 4);
	json_decref(got);
	kill(tn.worker, SIGKILL);
	waitpid(tn.worker, &status, 0);
	tn.worker = 0;
	tn_worker_spawn(crash_env);
	cr_assert(tn_wait_sql("SELECT count(*) FROM notifications WHERE "
	                      "webhook_endpoint_id = $1 AND status = "
	                      "'delivered'",
	                      id, "6", 60000),
	          "not every message was delivered");
	got = tn_received(path, 0, 0);
	all_verified(got);
	cr_expect_geq(count_sql("SELECT count(*) FROM notification_attempts a "
	                        "JOIN notifications n ON n.id = "
	                        "a.notification_id WHERE "
	                        "n.webhook_endpoint_id = $1 AND a.outcome = "
	                        "'abandoned'",
	                        id),
	              1);
	/* per message: as many requests as attempts (tries), no more */
	const char *params[] = {id};
	cr_assert_eq(vox_pg_exec(tn.pg,
	                         "SELECT message_id, tries FROM notifications "
	                         "WHERE webhook_endpoint_id = $1",
	                         1, params, &res, &err),
	             0, "%s", err.message);
	cr_expect_eq(PQntuples(res), CRASH_EVENTS);
	for (int row = 0; row < PQntuples(res); row++) {
		int seen = 0;

		json_array_foreach(got, i, r)
		{
			const char *wid = vox_json_str(
			        json_object_get(r, "headers"), "webhook-id");

			seen += wid &&
			        strcmp(wid, PQgetvalue(res, row, 0)) == 0;
		}
		cr_expect_eq(
		        seen, (int)strtol(PQgetvalue(res, row, 1), NULL, 10),
		        "%s: %d requests, %s tries", PQgetvalue(res, row, 0),
		        seen, PQgetvalue(res, row, 1));
	}
	PQclear(res);
	json_decref(got);
}

static void count_one(void *arg, const char *payload, size_t len,
                      const char *header)
{
	(void)payload;
	(void)len;
	(void)header;
	(*(int *)arg)++;
}

Test(notifications, bad_messages_dead_lettered_or_skipped_never_stop_it)
{
	char account[40], path[64], id[40], whsec[100], dlq[200], big[400];
	char trig[40];
	int dead = 0;
	json_t *got;

	webhook_account(account, path, id, whsec);
	vox_uuid7(trig);
	/* schema-invalid command: dead-lettered (no trigger_id) */
	tn_publish("vox.notification.requested", trig, account,
	           json_pack("{s:s, s:s}", "kind", "usage_trigger",
	                     "account_id", account),
	           NULL);
	/* an event of the stream without account, or with a subject over
	 * 300 bytes: skipped, not dead-lettered */
	number_event(NULL, "+15550000008", "number.activated");
	memset(big, '9', sizeof(big) - 1);
	big[0] = '+';
	big[sizeof(big) - 1] = '\0';
	number_event(account, big, "number.activated");
	/* and the worker goes on */
	number_event(account, "+15550000009", "number.activated");
	got = tn_received(path, 1, WAIT_MS);
	cr_assert_eq(json_array_size(got), 1);
	all_verified(got);
	json_decref(got);
	snprintf(dlq, sizeof(dlq), "%s.dlq", tn.topic);
	cr_expect_eq(t_consume_all(dlq, 3000, NULL, count_one, &dead), 1);
	cr_expect_eq(dead, 1);
	cr_expect_eq(count_sql("SELECT count(*) FROM notification_chains "
	                       "WHERE account_id = $1",
	                       account),
	             1);
}

/* A template that does not parse stops the worker at startup, naming
 * the file. */
Test(notify_templates, a_bad_template_stops_the_worker_naming_it)
{
	char dir[300], file[400], env_dir[340], log[64];
	FILE *f;
	int status;

	snprintf(dir, sizeof(dir), "%s/notify-bad-templates-%d",
	         getcwd(file, sizeof(file)), getpid());
	snprintf(file, sizeof(file), "mkdir -p %s/en", dir);
	cr_assert_eq(system(file), 0);
	snprintf(file, sizeof(file), "%s/en/usage.trigger.fired.txt.mustache",
	         dir);
	f = fopen(file, "w");
	cr_assert_not_null(f);
	fputs("{{#data}} never closed", f);
	fclose(f);
	snprintf(env_dir, sizeof(env_dir), "VOX_NOTIFY_TEMPLATES=%s", dir);
	snprintf(log, sizeof(log), "notify-bad-templates-%d.log", getpid());
	const char *const env[] = {env_dir, "VOX_WORKER_METRICS_PORT=0", NULL};
	status = t_stop(t_spawn("../test-bin/notifications", log, env), 0,
	                10000);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) != 0, "status %d",
	          status);
	f = fopen(log, "r");
	cr_assert_not_null(f);
	char line[2048];
	bool named = false;
	while (fgets(line, sizeof(line), f) != NULL)
		named = named || strstr(line, "usage.trigger.fired.txt");
	fclose(f);
	cr_expect(named, "the log does not name the template");
}

/* Email with the SMTP server unreachable: tried again on the message
 * schedule until the email step's deadline (600 s / 1000), then SMS. */
static void smtp_down_start(void)
{
	static const char *const extra[] = {"VOX_SMTP_URL=smtp://127.0.0.1:9",
	                                    NULL};

	tn_start(extra);
}

TestSuite(notify_smtp_down, .init = smtp_down_start, .fini = stop,
          .timeout = 90);

Test(notify_smtp_down, email_retried_until_its_deadline_then_sms)
{
	char account[40], trig[40], secret[100], email[80], phone[20], ev[40];
	char cb[120], *sid;

	mail_of("owner-", email);
	phone_of(phone);
	tn_account("en", email, phone, NULL, account);
	snprintf(cb, sizeof(cb), "http://127.0.0.77:%d/cb-any", tn.recv_port);
	trigger(account, cb, trig, secret);
	fire(account, trig, cb, ev);
	sid = sms_sid(phone);
	cr_assert_not_null(sid, "no SMS to %s", phone);
	free(sid);
	cr_expect(tn_wait_sql("SELECT n.status || ' ' || (SELECT count(*) > 0 "
	                      "FROM notification_attempts a WHERE "
	                      "a.notification_id = n.id AND a.outcome = "
	                      "'failed' AND a.status_code IS NULL) FROM "
	                      "notifications n JOIN notification_chains c ON "
	                      "c.id = n.chain_id WHERE c.source_event_id = $1 "
	                      "AND n.channel = 'email'",
	                      ev, "cancelled true", WAIT_MS));
	cr_expect(tn_mail(email, 0) == NULL);
}

/* An endpoint whose deliveries fail without a break for the failing
 * window (5 days; here 1 s at the time scale of 1000) is disabled at its
 * next failure, and endpoint.disabled is emitted. */
static void failing_start(void)
{
	static const char *const extra[] = {
	        "VOX_NOTIFY_ENDPOINT_FAILING_S=1000", NULL};

	tn_start(extra);
}

TestSuite(notify_failing, .init = failing_start, .fini = stop, .timeout = 90);

Test(notify_failing, failing_for_the_window_disables_the_endpoint)
{
	char account[40], path[64], id[40], whsec[100];

	webhook_account(account, path, id, whsec);
	/* 500 forever: attempts at 0, 5 ms, 300 ms, 1.8 s, 7.2 s... */
	script(path, "[{\"status\":500}],\"then\":{\"status\":500}");
	number_event(account, "+15550000012", "number.activated");
	cr_assert(tn_wait_sql("SELECT enabled || ' ' || left(disabled_reason, "
	                      "7) FROM webhook_endpoints WHERE id = $1",
	                      id, "false failing", WAIT_MS));
	/* disabled at the first failure past the window: the 4th attempt
	 * (0.305 s after the first is not yet 1 s; 2.105 s is) */
	cr_expect(tn_wait_sql("SELECT count(*) FROM notification_attempts a "
	                      "JOIN notifications n ON n.id = "
	                      "a.notification_id WHERE n.webhook_endpoint_id "
	                      "= $1",
	                      id, "4", WAIT_MS));
	cr_expect_eq(count_sql("SELECT count(*) FROM outbox WHERE topic = "
	                       "'vox.events' AND message_key = $1 AND payload "
	                       "LIKE '%\"type\":\"endpoint.disabled\"%'",
	                       id),
	             1);
	/* its retry is cancelled with the rest of its queue (recover brings
	 * it back once the endpoint is enabled) */
	cr_expect(tn_wait_sql("SELECT status FROM notifications WHERE "
	                      "webhook_endpoint_id = $1 AND event_type = "
	                      "'number.activated'",
	                      id, "cancelled", WAIT_MS));
}

struct op_wait {
	vox_pg_t *pg;
	const char *op;
};

static bool op_failed(void *arg)
{
	struct op_wait *w = arg;

	return t_pg_count(w->pg,
	                  "SELECT count(*) FROM operations WHERE id = $1 AND "
	                  "status = 'failed' AND error_code = 'dead_lettered' "
	                  "AND error_message = 'no handler for type "
	                  "vox.no.such.command'",
	                  w->op) == 1;
}

/* A command nobody handles on a command topic (vox.cmd.*) is
 * dead-lettered and its operation failed, as in every other worker; the
 * unknown types of the shared event stream are skipped (the suites above).
 * It was skipped too, leaving the operation accepted
 * (tests/chaos/4_poison.sh). */
Test(notify_commands, unknown_command_type_is_dead_lettered, .timeout = 120)
{
	char topic[256], dlq[300], group[128], id[VOX_UUID_STRLEN];
	char topics_env[300], group_env[200], op[VOX_UUID_STRLEN], *text;
	vox_producer_conf_t conf = {.brokers = t_env("VOX_KAFKA_BROKERS"),
	                            .client_id = "vox-test-notify-cmd"};
	vox_pg_t *pg = t_pg();
	struct op_wait wait = {pg, op};
	vox_producer_t *p;
	vox_error_t err;
	int dead = 0;
	json_t *ev;
	pid_t worker;

	t_topic_create("vox.cmd.notifications.test", 1, topic, sizeof(topic));
	snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
	vox_uuid7(id);
	snprintf(group, sizeof(group), "vox.test.notify.cmd.%s", id);
	vox_uuid7(op);
	const char *params[] = {op};
	cr_assert_eq(vox_pg_execp(pg, "t_cmd_op",
	                          "INSERT INTO operations (id, kind, status) "
	                          "VALUES ($1, 'test', 'accepted')",
	                          1, params, NULL, &err),
	             0, "%s", err.message);
	ev = vox_event_new("vox.no.such.command", "/voxlink/ingress", "test",
	                   NULL, NULL, json_pack("{s:s}", "operation_id", op));
	text = vox_json_dump(ev);
	p = vox_producer_new(&conf, &err);
	cr_assert_not_null(p, "%s", err.message);
	cr_assert_eq(vox_producer_send_sync(p, topic, "test", text,
	                                    strlen(text), NULL, 0, NULL, NULL,
	                                    &err),
	             0, "%s", err.message);
	vox_producer_destroy(p, 5000);
	free(text);
	json_decref(ev);
	snprintf(topics_env, sizeof(topics_env), "VOX_WORKER_TOPICS=%s", topic);
	snprintf(group_env, sizeof(group_env), "VOX_WORKER_GROUP=%s", group);
	const char *env[] = {topics_env,
	                     group_env,
	                     "VOX_WORKER_METRICS_PORT=0",
	                     "VOX_WORKER_RELAY=false",
	                     "VOX_KAFKA_SESSION_TIMEOUT_MS=6000",
	                     NULL};
	worker = t_spawn("notifications", "notify-unknown-command.log", env);
	cr_assert(t_wait_for(op_failed, &wait, 60000),
	          "the operation of the unknown command is not failed");
	cr_assert_eq(t_stop(worker, SIGTERM, 20000), 0);
	cr_assert_eq(t_consume_all(dlq, 3000, NULL, count_one, &dead), 1);
	vox_pg_destroy(pg);
}
