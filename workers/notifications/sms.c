/*
 * SMS through a Twilio-style Messages API (vox_upstream "sms"): the
 * rendered .sms template (at most 1600 characters), with a StatusCallback
 * where the provider posts delivery receipts (the ingress turns them into
 * vox.sms.status_received). 201 leaves the row 'sent' until its receipt;
 * a 4xx refusal fails it for good; 5xx, no answer or a timeout retry on
 * the message schedule until the step's deadline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifications.h"
#include "vox_buf.h"
#include "vox_json.h"

#define SMS_MAX_CHARS 1600

/* Cuts text after SMS_MAX_CHARS UTF-8 characters. */
static void sms_cut(char *text)
{
	size_t chars = 0;

	for (char *p = text; *p != '\0'; p++) {
		if (((unsigned char)*p & 0xC0) == 0x80)
			continue; /* continuation byte */
		if (chars++ == SMS_MAX_CHARS) {
			*p = '\0';
			return;
		}
	}
}

/* One form field, escaped. 0, or -1 (no memory). */
static int form_add(vox_buf_t *b, const char *name, const char *value)
{
	char *escaped = vox_upstream_escape(value);

	if (escaped == NULL)
		return -1;
	if (vox_buf_len(b) > 0)
		vox_buf_adds(b, "&");
	vox_buf_adds(b, name);
	vox_buf_adds(b, "=");
	vox_buf_adds(b, escaped);
	free(escaped);
	return vox_buf_error(b) != 0 ? -1 : 0;
}

static void sms_answer(const struct notify_ctx *nc, struct notify_delivery *d,
                       int rc, const vox_upstream_response_t *resp,
                       const vox_error_t *err)
{
	json_t *doc;
	const char *sid;

	if (rc == 0 && resp->status == 201) {
		doc = json_loads(resp->body ? resp->body : "", 0, NULL);
		sid = vox_json_str(doc, "sid");
		if (sid != NULL && strlen(sid) < sizeof(d->provider_id)) {
			notify_outcome(d, NOTIFY_SENT, 201, NULL);
			snprintf(d->provider_id, sizeof(d->provider_id), "%s",
			         sid);
		} else {
			/* sent, but its receipt cannot be matched: the
			 * step deadline moves the chain on */
			notify_outcome(d, NOTIFY_SENT, 201,
			               "provider answered without a sid");
		}
		json_decref(doc);
	} else if (resp->status >= 400 && resp->status < 500 &&
	           resp->status != 408 && resp->status != 429) {
		/* 408 and 429 (the provider's rate limit) are retried below,
		 * the rest of 4xx is final: the message itself is refused */
		notify_outcome(d, NOTIFY_FAILED, (int)resp->status,
		               "refused: %s", err->message);
	} else {
		notify_outcome(d, NOTIFY_RETRY, (int)resp->status, "%s",
		               rc == 0 ? "unexpected answer" : err->message);
		d->retry_ms = notify_message_retry_ms(nc, d->attempts);
		if (notify_scaled_ms(nc, (double)resp->retry_after_s) >
		    d->retry_ms)
			d->retry_ms = notify_scaled_ms(
			        nc, (double)resp->retry_after_s);
	}
}

void notify_sms_send(const struct notify_ctx *nc, struct notify_delivery *d)
{
	vox_upstream_request_t req = {0};
	vox_upstream_response_t resp = {0};
	char *text, *sid = NULL, path[256];
	vox_error_t err = {0};
	vox_buf_t form;
	int rc;

	text = notify_render(nc->templates, d, "sms", &err);
	if (text == NULL) {
		notify_outcome(d, NOTIFY_FAILED, 0, "template: %s",
		               err.message);
		return;
	}
	sms_cut(text);
	vox_buf_init(&form, 64 * 1024);
	rc = form_add(&form, "To", d->recipient) |
	     form_add(&form, "From", nc->sms_from) |
	     form_add(&form, "Body", text) |
	     form_add(&form, "StatusCallback", nc->sms_callback);
	free(text);
	sid = vox_upstream_escape(nc->sms_sid);
	if (rc != 0 || sid == NULL) {
		notify_outcome(d, NOTIFY_RETRY, 0, "out of memory");
		d->retry_ms = notify_message_retry_ms(nc, d->attempts);
		goto out;
	}
	snprintf(path, sizeof(path), "/2010-04-01/Accounts/%s/Messages.json",
	         sid);
	req.endpoint = "messages";
	req.method = "POST";
	req.path = path;
	req.body = vox_buf_str(&form);
	req.body_len = vox_buf_len(&form);
	req.content_type = "application/x-www-form-urlencoded";
	req.max_attempts = 1;
	rc = vox_upstream_call(nc->sms, &req, &resp, &err);
	sms_answer(nc, d, rc, &resp, &err);
	vox_upstream_response_free(&resp);
out:
	free(sid);
	vox_buf_free(&form);
}
