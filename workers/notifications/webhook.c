/*
 * Webhook and callback deliveries: the stored body, compact, signed the
 * Standard Webhooks way, POSTed once per attempt (the retry schedule is
 * ours) to an address the destination filter checked at this attempt and
 * that the connection is pinned to (CURLOPT_RESOLVE; the connect hook
 * checks it again); no proxy, no redirect followed, answers never stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifications.h"
#include "vox_json.h"
#include "vox_time.h"
#include "vox_whsig.h"

/* Delay before attempt n + 1 after attempt n failed (s): immediately,
 * 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
static const double schedule_s[NOTIFY_WEBHOOK_TRIES] = {
        0, 5, 300, 1800, 7200, 18000, 36000, 36000};
#define RETRY_AFTER_MAX_S 36000.0

static void webhook_customize(CURL *curl, void *arg)
{
	curl_easy_setopt(curl, CURLOPT_RESOLVE, (struct curl_slist *)arg);
	curl_easy_setopt(curl, CURLOPT_PROXY, ""); /* never through a proxy */
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "VoxLink-Webhooks/1.0");
}

/* A failed attempt: again per the schedule (a longer Retry-After on 429
 * or 503 wins, up to 10 h), or failed for good after the last. */
static void webhook_retry(const struct notify_ctx *nc,
                          struct notify_delivery *d, int status,
                          long retry_after_s, const char *why)
{
	double delay;

	if (d->attempts >= NOTIFY_WEBHOOK_TRIES) {
		notify_outcome(d, NOTIFY_FAILED, status,
		               "%s; no attempt left after %d", why,
		               d->attempts);
		return;
	}
	delay = schedule_s[d->attempts < 0 ? 0 : d->attempts];
	if ((status == 429 || status == 503) && retry_after_s > delay)
		delay = (double)retry_after_s < RETRY_AFTER_MAX_S
		                ? (double)retry_after_s
		                : RETRY_AFTER_MAX_S;
	notify_outcome(d, NOTIFY_RETRY, status, "%s", why);
	d->retry_ms = notify_scaled_ms(nc, delay);
}

/* The webhook-signature value for the row's secrets ("" for an unsigned
 * callback). */
static int webhook_sign(const struct notify_delivery *d, long long ts,
                        const char *body, char *out, size_t outlen)
{
	const char *secrets[2];
	size_t n = 0;

	*out = '\0';
	if (d->secret != NULL)
		secrets[n++] = d->secret;
	if (d->secret_old != NULL)
		secrets[n++] = d->secret_old;
	if (n == 0)
		return 0;
	return vox_whsig_sign_all(secrets, n, d->message_id, ts, body,
	                          strlen(body), out, outlen);
}

/* The answer (or its absence) as the attempt's outcome. */
static void webhook_answer(const struct notify_ctx *nc,
                           struct notify_delivery *d, int rc,
                           const vox_upstream_response_t *resp,
                           const vox_error_t *err)
{
	int status = (int)resp->status;

	if (rc == 0 && status >= 200 && status < 300)
		notify_outcome(d, NOTIFY_DELIVERED, status, NULL);
	else if (status == 410) {
		notify_outcome(d, NOTIFY_FAILED, status,
		               "HTTP 410: the endpoint is gone");
		d->gone = strcmp(d->channel, "webhook") == 0;
	} else if (status == 0 && err->code == VOX_ERR_INVALID)
		notify_outcome(d, NOTIFY_FAILED, 0, "destination refused: %s",
		               err->message);
	else if (status >= 300 && status < 400) {
		char why[64];

		snprintf(why, sizeof(why),
		         "HTTP %d: redirects are not followed", status);
		webhook_retry(nc, d, status, 0, why);
	} else if (status != 0) {
		char why[32];

		snprintf(why, sizeof(why), "HTTP %d", status);
		webhook_retry(nc, d, status, resp->retry_after_s, why);
	} else
		webhook_retry(nc, d, 0, 0, err->message);
}

static void webhook_post(const struct notify_ctx *nc, struct notify_delivery *d,
                         const char *body, const vox_ssrf_target_t *target)
{
	char id_line[100], ts_line[48], sig_line[40 + 2 * VOX_WHSIG_SIG_MAX];
	char sig[2 * VOX_WHSIG_SIG_MAX];
	long long ts = (long long)(vox_now_us() / 1000000);
	vox_upstream_request_t req = {0};
	vox_upstream_response_t resp = {0};
	struct curl_slist *pin;
	vox_error_t err = {0};
	int rc;

	if (webhook_sign(d, ts, body, sig, sizeof(sig)) != 0) {
		notify_outcome(d, NOTIFY_FAILED, 0,
		               "signing secret: not a whsec_ secret");
		return;
	}
	pin = curl_slist_append(NULL, target->resolve);
	if (pin == NULL) {
		webhook_retry(nc, d, 0, 0, "out of memory");
		return;
	}
	snprintf(id_line, sizeof(id_line), "webhook-id: %s", d->message_id);
	snprintf(ts_line, sizeof(ts_line), "webhook-timestamp: %lld", ts);
	snprintf(sig_line, sizeof(sig_line), "webhook-signature: %s", sig);
	const char *headers[] = {id_line, ts_line, *sig ? sig_line : NULL,
	                         NULL};
	req.endpoint =
	        strcmp(d->channel, "callback") == 0 ? "callback" : "deliver";
	req.method = "POST";
	req.url = d->recipient;
	req.body = body;
	req.body_len = strlen(body);
	req.content_type = "application/json";
	req.headers = headers;
	req.max_attempts = 1;
	req.flags = VOX_UPSTREAM_DISCARD_BODY; /* the status decides */
	req.customize = webhook_customize;
	req.customize_arg = pin;
	rc = vox_upstream_call(nc->webhooks, &req, &resp, &err);
	webhook_answer(nc, d, rc, &resp, &err);
	vox_upstream_response_free(&resp); /* never stored */
	curl_slist_free_all(pin);
}

void notify_webhook_send(const struct notify_ctx *nc, struct notify_delivery *d)
{
	vox_ssrf_target_t target;
	vox_error_t err = {0};
	json_t *doc;
	char *body;
	int rc;

	rc = vox_ssrf_check_url(nc->ssrf, d->recipient, &target, &err);
	if (rc == VOX_ERR_NOT_FOUND) {
		webhook_retry(nc, d, 0, 0, err.message);
		return;
	}
	if (rc != 0) {
		notify_outcome(d, NOTIFY_FAILED, 0, "destination refused: %s",
		               err.message);
		return;
	}
	doc = json_loads(d->payload, 0, NULL);
	body = doc ? vox_json_dump(doc) : NULL;
	json_decref(doc);
	if (body == NULL) {
		notify_outcome(d, NOTIFY_FAILED, 0, "stored body is not JSON");
		return;
	}
	webhook_post(nc, d, body, &target);
	free(body);
}
