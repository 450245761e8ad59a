/*
 * notifications: turns usage triggers and number/reservation events into
 * chains of email, SMS and webhook deliveries, and runs the sender threads
 * that deliver them (docs/NOTIFICATIONS.md). The tick moves chains whose
 * step deadline passed.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifications.h"
#include "vox_log.h"
#include "vox_worker.h"

#ifndef VOX_TEMPLATE_DIR
#define VOX_TEMPLATE_DIR "workers/notifications/templates"
#endif

static struct notify_ctx notify;

static const vox_cfg_opt_t opts[] = {
        {"VOX_NOTIFY_TEMPLATES", VOX_CFG_STRING, VOX_TEMPLATE_DIR, 1, 4096,
         "directory of <lang>/<type>.<part>.mustache templates",
         &notify.templates_dir},
        {"VOX_NOTIFY_SENDERS", VOX_CFG_INT, "8", 1, 64,
         "sender threads (each with its own PostgreSQL connection)",
         &notify.senders},
        {"VOX_NOTIFY_POLL_MS", VOX_CFG_INT, "1000", 10, 60000,
         "longest wait for a vox_notify wakeup before looking for due rows",
         &notify.poll_ms},
        {"VOX_NOTIFY_CLAIM_BATCH", VOX_CFG_INT, "32", 1, 1000,
         "deliveries a sender claims at once", &notify.claim_batch},
        {"VOX_NOTIFY_LEASE_S", VOX_CFG_INT, "60", 1, 3600,
         "how long a claim holds its rows; a sender that dies leaves them "
         "to the others after this (must exceed every send timeout)",
         &notify.lease_s},
        {"VOX_NOTIFY_TIME_SCALE", VOX_CFG_INT, "1", 1, 1000000,
         "divides every retry delay and deadline (tests: 1000)",
         &notify.time_scale},
        {"VOX_NOTIFY_EMAIL_DEADLINE_S", VOX_CFG_INT, "600", 1, 604800,
         "time the email step has before the chain moves on",
         &notify.email_deadline_s},
        {"VOX_NOTIFY_SMS_DEADLINE_S", VOX_CFG_INT, "300", 1, 604800,
         "time the SMS step has before the chain moves on",
         &notify.sms_deadline_s},
        {"VOX_NOTIFY_WEBHOOK_DEADLINE_S", VOX_CFG_INT, "3600", 1, 604800,
         "time the webhook step has before the chain moves on",
         &notify.webhook_deadline_s},
        {"VOX_NOTIFY_ENDPOINT_FAILING_S", VOX_CFG_INT, "432000", 1, 31536000,
         "an endpoint failing every delivery this long is disabled (5 "
         "days)",
         &notify.endpoint_failing_s},
        {"VOX_WEBHOOK_TIMEOUT_MS", VOX_CFG_INT, "15000", 100, 120000,
         "time a webhook has to answer (2xx: delivered)",
         &notify.webhook_timeout_ms},
        {"VOX_WEBHOOK_ALLOW_CIDRS", VOX_CFG_STRING, "", 0, 2000,
         "comma-separated CIDRs webhooks may reach although private "
         "(self-hosted destinations); empty: public addresses only",
         &notify.allow_cidrs},
        {"VOX_ENCRYPTION_KEY", VOX_CFG_STRING, "", 0, 200,
         "AES-256-GCM key ([ID:]KEY) that opens endpoint and callback "
         "secrets; empty: signed deliveries fail",
         &notify.encryption_key},
        {"VOX_ENCRYPTION_OLD_KEYS", VOX_CFG_STRING, "", 0, 2000,
         "retired keys that still open what they sealed: ID:KEY,...",
         &notify.encryption_old_keys},
        {"VOX_SMTP_URL", VOX_CFG_STRING, "smtp://127.0.0.1:27025", 8, 2048,
         "SMTP server for email (the SMTP sink by default)", &notify.smtp_url},
        {"VOX_SMTP_TIMEOUT_MS", VOX_CFG_INT, "15000", 100, 120000,
         "time one SMTP delivery may take", &notify.smtp_timeout_ms},
        {"VOX_MAIL_FROM", VOX_CFG_STRING,
         "VoxLink <notifications@voxlink.test>", 3, 320,
         "From: of notification email", &notify.mail_from},
        {"VOX_SMS_URL", VOX_CFG_STRING, "http://127.0.0.1:27081", 8, 2048,
         "the SMS provider's Messages API (the SMS sandbox by default)",
         &notify.sms_url},
        {"VOX_SMS_ACCOUNT_SID", VOX_CFG_STRING, "AC_sandbox", 1, 64,
         "the SMS provider account", &notify.sms_sid},
        {"VOX_SMS_AUTH_TOKEN", VOX_CFG_STRING, "sandbox-token", 1, 256,
         "the SMS provider auth token", &notify.sms_token},
        {"VOX_SMS_FROM", VOX_CFG_STRING, "+15005550006", 2, 32,
         "sender number of notification SMS", &notify.sms_from},
        {"VOX_SMS_STATUS_CALLBACK_URL", VOX_CFG_STRING,
         "http://127.0.0.1:18080/v1/providers/sms/status", 8, 2048,
         "where the provider posts delivery receipts (the ingress)",
         &notify.sms_callback},
        {"VOX_SMS_TIMEOUT_MS", VOX_CFG_INT, "10000", 100, 120000,
         "time one SMS request may take", &notify.sms_timeout_ms},
};

static int notify_upstreams(struct notify_ctx *nc, vox_metrics_t *metrics,
                            vox_error_t *err)
{
	vox_upstream_conf_t wh = {0}, sms = {0};
	char auth[600], plain[400];
	unsigned char b64[560];

	wh.name = "webhooks";
	wh.base_url = "http://webhooks.invalid";
	wh.timeout_ms = (int)nc->webhook_timeout_ms;
	wh.connect_timeout_ms = (int)nc->webhook_timeout_ms;
	wh.max_attempts = 1; /* the schedule is ours */
	/* one customer's dead endpoint must not stop the others */
	wh.breaker_failures = 1000000;
	wh.max_body = 64 * 1024; /* read, never stored */
	wh.metrics = metrics;
	wh.allow_address = vox_ssrf_allow_addr;
	wh.allow_arg = nc->ssrf;
	nc->webhooks = vox_upstream_new(&wh, err);
	if (nc->webhooks == NULL)
		return -1;
	snprintf(plain, sizeof(plain), "%s:%s", nc->sms_sid, nc->sms_token);
	EVP_EncodeBlock(b64, (const unsigned char *)plain, (int)strlen(plain));
	snprintf(auth, sizeof(auth), "Authorization: Basic %s", b64);
	sms.name = "sms";
	sms.base_url = nc->sms_url;
	sms.auth_header = auth;
	sms.accept = "application/json";
	sms.timeout_ms = (int)nc->sms_timeout_ms;
	sms.max_attempts = 1; /* a send is not idempotent */
	sms.metrics = metrics;
	nc->sms = vox_upstream_new(&sms, err);
	return nc->sms == NULL ? -1 : 0;
}

static int notify_setup(void *ctx, vox_metrics_t *metrics)
{
	static const double sizes[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
	static const double secs[] = {0.05, 0.1, 0.25, 0.5, 1,   2.5,  5,
	                              10,   30,  60,   300, 900, 3600, 21600};
	struct notify_ctx *nc = ctx;
	const char *pg_url = getenv("VOX_PG_URL");
	vox_error_t err;

	nc->metrics = metrics;
	nc->claim_sizes =
	        vox_metrics_histogram(metrics, "vox_notify_claim_batch_size",
	                              "deliveries claimed at once", NULL, sizes,
	                              sizeof(sizes) / sizeof(sizes[0]));
	nc->latency = vox_metrics_histogram(
	        metrics, "vox_notify_delivery_latency_seconds",
	        "from the event's chain to a delivered message", NULL, secs,
	        sizeof(secs) / sizeof(secs[0]));
	if (nc->lease_s * 1000 <= nc->webhook_timeout_ms ||
	    nc->lease_s * 1000 <= nc->smtp_timeout_ms ||
	    nc->lease_s * 1000 <= nc->sms_timeout_ms) {
		vox_logf(VOX_LOG_ERROR,
		         "VOX_NOTIFY_LEASE_S (%ld s) must be "
		         "longer than every send timeout",
		         nc->lease_s);
		return -1;
	}
	if (*nc->encryption_key != '\0') {
		nc->keyring = vox_crypto_keyring_new(
		        nc->encryption_key, nc->encryption_old_keys, &err);
		if (nc->keyring == NULL)
			goto failed;
	} else {
		vox_log(VOX_LOG_WARN,
		        "no VOX_ENCRYPTION_KEY: deliveries to signed webhook "
		        "endpoints fail until one is set",
		        NULL);
	}
	nc->ssrf = vox_ssrf_new(nc->allow_cidrs, &err);
	if (nc->ssrf == NULL || notify_upstreams(nc, metrics, &err) != 0)
		goto failed;
	nc->templates = notify_templates_load(nc->templates_dir, &err);
	if (nc->templates == NULL)
		goto failed;
	/* the same default as vox_worker's VOX_PG_URL */
	nc->pool = notify_senders_start(
	        nc,
	        pg_url ? pg_url : "postgresql://vox@127.0.0.1:25432/voxlink",
	        &err);
	if (nc->pool == NULL)
		goto failed;
	return 0;
failed:
	vox_log(VOX_LOG_ERROR, "notifications setup", "error", err.message,
	        NULL);
	return -1;
}

static void notify_tick(vox_pg_t *pg, void *ctx)
{
	notify_chain_sweep(pg, ctx);
}

static void notify_teardown(void *ctx)
{
	struct notify_ctx *nc = ctx;

	notify_senders_stop(nc->pool);
	notify_templates_free(nc->templates);
	vox_upstream_destroy(nc->webhooks);
	vox_upstream_destroy(nc->sms);
	vox_ssrf_destroy(nc->ssrf);
	vox_crypto_keyring_destroy(nc->keyring);
}

int main(int argc, char **argv)
{
	const vox_worker_def_t def = {
	        .name = "notifications",
	        .about = "email, SMS and webhook notifications, and usage "
	                 "trigger callbacks",
	        .topics = "vox.cmd.notifications,vox.events",
	        .metrics_port = 19104,
	        .batch_fn = notify_batch, /* batch.c */
	        /* a batch's deliveries wait for its commit: keep it short */
	        .batch_max = 100,
	        .ctx = &notify,
	        .tick = notify_tick,
	        .tick_ms = 500,
	        .setup = notify_setup,
	        .teardown = notify_teardown,
	        .opts = opts,
	        .nopts = sizeof(opts) / sizeof(opts[0]),
	};

	return vox_worker_main(&def, argc, argv);
}
