/*
 * POST /v1/providers/sms/status: the SMS provider's delivery receipts
 * (Twilio's StatusCallback, docs/NOTIFICATIONS.md "Email and SMS"). No API
 * key: the provider signs the form with X-Twilio-Signature (HMAC-SHA1 of
 * VOX_SMS_STATUS_CALLBACK_URL and the sorted parameters, keyed by
 * VOX_SMS_AUTH_TOKEN) and names its account (AccountSid). A good receipt
 * is published as vox.sms.status_received keyed by MessageSid, and the
 * answer (204) waits until Kafka acknowledged it, like a CDR push: a
 * provider that gets no 2xx retries. The notifications worker applies it.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingress.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_whsig.h"

#define SMS_FORM_MAX_PARAMS 64
#define SMS_SID_MAX         64
#define SMS_STATUS_MAX      32
#define SMS_TO_MAX          64
#define SMS_ERROR_CODE_MAX  16
#define SMS_STATUS_TYPE     "vox.sms.status_received"

/* The form, decoded: names[i]=values[i]. Owned by the request. */
struct sms_receipt {
	ingress_t *in;
	char *names[SMS_FORM_MAX_PARAMS];
	char *values[SMS_FORM_MAX_PARAMS];
	size_t n;
	vox_error_t err;
};

static void receipt_free(void *state)
{
	struct sms_receipt *r = state;

	for (size_t i = 0; i < r->n; i++) {
		curl_free(r->names[i]);
		curl_free(r->values[i]);
	}
	free(r);
}

/* One form component ('+' is a space, %XX an octet) decoded by libcurl;
 * NULL when malformed (a bad escape, an encoded NUL). */
static char *form_decode(const char *text, size_t len)
{
	char *plus = strndup(text, len), *out = NULL;
	int outlen = 0;

	if (plus == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (plus[i] == '+')
			plus[i] = ' ';
		else if (plus[i] == '%' &&
		         (i + 2 >= len ||
		          !isxdigit((unsigned char)plus[i + 1]) ||
		          !isxdigit((unsigned char)plus[i + 2])))
			goto out;
	}
	out = curl_easy_unescape(NULL, plus, (int)len, &outlen);
	if (out != NULL && (size_t)outlen != strlen(out)) {
		curl_free(out);
		out = NULL;
	}
out:
	free(plus);
	return out;
}

/* application/x-www-form-urlencoded into r; false when malformed. */
static bool form_parse(struct sms_receipt *r, const char *body, size_t len)
{
	const char *p = body, *end = body + len;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		size_t n = amp ? (size_t)(amp - p) : (size_t)(end - p);
		const char *eq = memchr(p, '=', n);

		if (n > 0) {
			if (eq == NULL || eq == p ||
			    r->n == SMS_FORM_MAX_PARAMS)
				return false;
			r->names[r->n] = form_decode(p, (size_t)(eq - p));
			r->values[r->n] =
			        form_decode(eq + 1, n - (size_t)(eq - p) - 1);
			r->n++;
			if (r->names[r->n - 1] == NULL ||
			    r->values[r->n - 1] == NULL)
				return false;
		}
		p += n + 1;
	}
	return r->n > 0;
}

static const char *form_get(const struct sms_receipt *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->names[i], name) == 0)
			return r->values[i];
	return NULL;
}

static bool content_type_form(vox_http_req_t *req)
{
	const char *ct = vox_http_header(req, "Content-Type");
	const char *want = "application/x-www-form-urlencoded";
	size_t n = strlen(want);

	return ct != NULL && strncasecmp(ct, want, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void refuse(vox_http_req_t *req, ingress_t *in, const char *code,
                   const char *message)
{
	vox_counter_inc(in->auth_failed);
	ingress_error(req, 403, code, message, NULL);
}

/* X-Twilio-Signature over the callback URL and the form, in constant
 * time: true, or false after answering 403. */
static bool signature_ok(vox_http_req_t *req, const struct sms_receipt *r)
{
	const char *sent = vox_http_header(req, "X-Twilio-Signature");
	char expected[32];
	bool ok;

	if (sent == NULL || *sent == '\0') {
		refuse(req, r->in, "missing_signature",
		       "send X-Twilio-Signature: base64 HMAC-SHA1 of the "
		       "callback URL and the sorted form parameters");
		return false;
	}
	ok = vox_whsig_twilio(
	             r->in->cfg->sms_auth_token, r->in->sms_callback_url,
	             (const char *const *)r->names,
	             (const char *const *)r->values, r->n, expected) == 0 &&
	     vox_whsig_equal(expected, sent);
	OPENSSL_cleanse(expected, sizeof(expected));
	if (!ok)
		refuse(req, r->in, "invalid_signature",
		       "X-Twilio-Signature does not match this request");
	return ok;
}

static bool bad_param(vox_http_req_t *req, const char *name, const char *why)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "%s %s", name, why);
	ingress_error(req, 400, "invalid_body", msg,
	              json_pack("{s:s}", "field", name));
	return false;
}

static bool chars_in(const char *s, const char *set, size_t max)
{
	size_t n = strlen(s);

	return n > 0 && n <= max && strspn(s, set) == n;
}

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/* The fields the event carries; false after answering 400. */
static bool fields_ok(vox_http_req_t *req, const struct sms_receipt *r)
{
	const char *sid = form_get(r, "MessageSid");
	const char *status = form_get(r, "MessageStatus");
	const char *to = form_get(r, "To");
	const char *code = form_get(r, "ErrorCode");

	if (sid == NULL || !chars_in(sid, ALNUM "_-", SMS_SID_MAX))
		return bad_param(req, "MessageSid",
		                 "is required: 1 to 64 letters, digits, _ "
		                 "or -");
	if (status == NULL ||
	    !chars_in(status, "abcdefghijklmnopqrstuvwxyz_", SMS_STATUS_MAX))
		return bad_param(req, "MessageStatus",
		                 "is required: a lower-case status such as "
		                 "delivered");
	if (to != NULL && *to != '\0' &&
	    !chars_in(to, "+0123456789", SMS_TO_MAX))
		return bad_param(req, "To", "must be a phone number");
	if (code != NULL && *code != '\0' &&
	    !chars_in(code, "0123456789", SMS_ERROR_CODE_MAX))
		return bad_param(req, "ErrorCode", "must be digits");
	return true;
}

/* ---------------------------------------------------------------- publish */

static void receipt_refused(vox_http_req_t *req, void *ctx)
{
	struct sms_receipt *r = vox_http_state(req);

	(void)ctx;
	vox_counter_inc(r->in->refused);
	vox_log(VOX_LOG_WARN, "SMS receipt not accepted", "error",
	        r->err.message, "request_id", vox_http_request_id(req), NULL);
	vox_http_add_header(req, "Retry-After", "1");
	ingress_error(req, 503, "bus_unavailable",
	              "the receipt could not be made durable: send it again",
	              json_pack("{s:s}", "reason", r->err.message));
}

static void receipt_accepted(vox_http_req_t *req, void *ctx)
{
	struct sms_receipt *r = vox_http_state(req);

	(void)ctx;
	vox_counter_inc(r->in->accepted);
	vox_http_reply(req, 204, NULL, "", 0);
}

/* On the producer's poll thread: it must not block. */
static void receipt_delivered(void *opaque, const vox_error_t *err,
                              int32_t partition, int64_t offset)
{
	vox_http_req_t *req = opaque;
	struct sms_receipt *r = vox_http_state(req);

	(void)partition;
	(void)offset;
	if (err != NULL) {
		r->err = *err;
		vox_http_resume(req, receipt_refused);
		return;
	}
	vox_http_resume(req, receipt_accepted);
}

/* sid: the checked MessageSid. */
static void receipt_publish(vox_http_req_t *req, struct sms_receipt *r,
                            const char *sid)
{
	const char *code = form_get(r, "ErrorCode");
	const char *to = form_get(r, "To");
	char subject[96];
	json_t *event;
	char *text;

	snprintf(subject, sizeof(subject), "sms/%s", sid ? sid : "");
	event = vox_event_build(
	        SMS_STATUS_TYPE, subject, NULL, NULL,
	        json_pack("{s:s, s:s, s:s, s:o, s:o}", "provider", "sms",
	                  "provider_message_id", sid, "status",
	                  form_get(r, "MessageStatus"), "error_code",
	                  code && *code ? json_string(code) : json_null(), "to",
	                  to && *to ? json_string(to) : json_null()));
	text = event ? vox_json_dump(event) : NULL;
	json_decref(event);
	if (text == NULL) {
		ingress_error(req, 500, "internal", "out of memory", NULL);
		return;
	}
	vox_http_suspend(req);
	if (vox_producer_send(r->in->producer,
	                      vox_event_kind(SMS_STATUS_TYPE)->topic, sid, text,
	                      strlen(text), NULL, 0, receipt_delivered, req,
	                      &r->err) != 0)
		vox_http_resume(req, receipt_refused);
	free(text);
}

void ingress_sms_status(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	struct sms_receipt *r = calloc(1, sizeof(*r));
	const char *body, *account;
	char credential[96];
	size_t len;

	if (r == NULL) {
		ingress_error(req, 500, "internal", "out of memory", NULL);
		return;
	}
	r->in = in;
	vox_http_set_state(req, r, receipt_free);
	if (!content_type_form(req)) {
		ingress_error(req, 415, "unsupported_media_type",
		              "send the receipt as "
		              "application/x-www-form-urlencoded",
		              NULL);
		return;
	}
	body = vox_http_body(req, &len);
	if (!form_parse(r, body, len)) {
		ingress_error(req, 400, "invalid_body",
		              "the body is not a form (name=value&...) of at "
		              "most 64 parameters",
		              NULL);
		return;
	}
	if (!signature_ok(req, r) || !fields_ok(req, r))
		return;
	account = form_get(r, "AccountSid");
	if (account == NULL ||
	    !vox_whsig_equal(account, in->cfg->sms_account_sid)) {
		refuse(req, in, "invalid_credentials",
		       "AccountSid is not the SMS provider account we use");
		return;
	}
	snprintf(credential, sizeof(credential), "sms:%s", account);
	if (!ingress_rate_limit(req, in, credential, "command",
	                        in->cfg->rate_command))
		return;
	receipt_publish(req, r, form_get(r, "MessageSid"));
}
