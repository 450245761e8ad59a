/*
 * POST /v1/providers/sms/status against the real stack: a receipt signed
 * as the SMS provider signs it (X-Twilio-Signature over the callback URL
 * and the sorted form) is answered 204 once vox.sms.status_received is on
 * vox.cmd.notifications; a bad or missing signature, another AccountSid,
 * a malformed form, missing or oversized fields are refused and publish
 * nothing. One ingress for the suite, with its own auth token.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "vox_json.h"
#include "vox_uuid.h"
#include "vox_whsig.h"

#define TOKEN       "test-sms-token"
#define ACCOUNT_SID "AC_test_receipts"
#define TOPIC       "vox.cmd.notifications"

static int port;
static pid_t ingress;
static char callback_url[128];

static bool ingress_up(void *arg)
{
	(void)arg;
	return t_http("GET", port, "/healthz", NULL, NULL, NULL) == 200;
}

static void suite_start(void)
{
	static char port_env[64];

	port = t_free_port();
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", port);
	snprintf(callback_url, sizeof(callback_url),
	         "http://127.0.0.1:%d/v1/providers/sms/status", port);
	const char *const env[] = {port_env, "VOX_SMS_AUTH_TOKEN=" TOKEN,
	                           "VOX_SMS_ACCOUNT_SID=" ACCOUNT_SID, NULL};
	ingress = t_spawn("ingress", "sms-status-ingress.log", env);
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
}

static void suite_stop(void)
{
	int status = t_stop(ingress, SIGTERM, 20000);

	cr_expect_eq(status, 0, "ingress exit status %d", status);
}

TestSuite(sms_status, .init = suite_start, .fini = suite_stop, .timeout = 120);

/* A receipt: names/values (n pairs), form-encoded with libcurl, signed
 * with token over url (NULL signature: none sent; "" : computed). */
static int post_receipt(const char *const *names, const char *const *values,
                        size_t n, const char *token, const char *signature,
                        char **answer)
{
	char sig[32], header[96], *body = strdup("");
	const char *headers[3] = {
	        "Content-Type: application/x-www-form-urlencoded"};
	CURL *curl = curl_easy_init();
	int status;

	for (size_t i = 0; i < n; i++) {
		char *k = curl_easy_escape(curl, names[i], 0);
		char *v = curl_easy_escape(curl, values[i], 0);
		size_t len = strlen(body) + strlen(k) + strlen(v) + 3;
		char *next = malloc(len);

		snprintf(next, len, "%s%s%s=%s", body, i ? "&" : "", k, v);
		free(body);
		body = next;
		curl_free(k);
		curl_free(v);
	}
	curl_easy_cleanup(curl);
	if (signature != NULL && *signature == '\0') {
		cr_assert_eq(vox_whsig_twilio(token, callback_url, names,
		                              values, n, sig),
		             0);
		signature = sig;
	}
	if (signature != NULL) {
		snprintf(header, sizeof(header), "X-Twilio-Signature: %s",
		         signature);
		headers[1] = header;
	}
	status = t_http_h("POST", port, "/v1/providers/sms/status", body,
	                  headers, answer, NULL);
	free(body);
	return status;
}

/* The receipt fields; sid unique per test. */
struct receipt {
	const char *names[8];
	const char *values[8];
	size_t n;
};

static void receipt_make(struct receipt *r, const char *sid, const char *status,
                         const char *error_code)
{
	static const char *const names[] = {
	        "MessageSid", "MessageStatus", "To",       "From",
	        "AccountSid", "ApiVersion",    "ErrorCode"};

	memcpy(r->names, names, sizeof(names));
	r->values[0] = sid;
	r->values[1] = status;
	r->values[2] = "+14155550123";
	r->values[3] = "+14155550100";
	r->values[4] = ACCOUNT_SID;
	r->values[5] = "2010-04-01";
	r->values[6] = error_code;
	r->n = 7;
}

struct found {
	const char *sid;
	int count;
	json_t *event;
};

static void find_sid(void *arg, const char *payload, size_t len,
                     const char *header)
{
	struct found *f = arg;
	json_t *ev = json_loadb(payload, len, 0, NULL);
	json_t *data = json_object_get(ev, "data");

	(void)header;
	if (vox_json_str(data, "provider_message_id") != NULL &&
	    strcmp(vox_json_str(data, "provider_message_id"), f->sid) == 0) {
		f->count++;
		json_decref(f->event);
		f->event = json_incref(ev);
	}
	json_decref(ev);
}

/* A MessageSid no other run has used. */
static void new_sid(char out[40])
{
	char uuid[VOX_UUID_STRLEN];
	size_t n = 2;

	vox_uuid7(uuid);
	memcpy(out, "SM", 2);
	for (const char *p = uuid; *p; p++)
		if (*p != '-')
			out[n++] = *p;
	out[n] = '\0';
}

static const char *error_code(const char *text)
{
	static char code[64];
	json_t *doc = json_loads(text ? text : "", 0, NULL);
	const char *c = vox_json_str(json_object_get(doc, "error"), "code");

	snprintf(code, sizeof(code), "%s", c ? c : "(none)");
	json_decref(doc);
	return code;
}

Test(sms_status, signed_receipt_is_published_before_the_204)
{
	char sid[40], bad_sid[40], *answer = NULL;
	struct receipt r, bad;
	struct found f = {0}, none = {0};
	json_t *data;

	new_sid(sid);
	receipt_make(&r, sid, "undelivered", "30003");
	cr_assert_eq(post_receipt(r.names, r.values, r.n, TOKEN, "", &answer),
	             204, "%s", answer ? answer : "");
	cr_expect(answer == NULL || *answer == '\0', "body: %s", answer);
	free(answer);
	/* a bad signature publishes nothing */
	new_sid(bad_sid);
	receipt_make(&bad, bad_sid, "delivered", "");
	cr_assert_eq(post_receipt(bad.names, bad.values, bad.n, "other-token",
	                          "", &answer),
	             403);
	cr_expect_str_eq(error_code(answer), "invalid_signature");
	free(answer);

	f.sid = sid;
	t_consume_all(TOPIC, 1500, NULL, find_sid, &f);
	cr_assert_eq(f.count, 1, "receipt seen %d times", f.count);
	cr_expect_str_eq(vox_json_str(f.event, "type"),
	                 "vox.sms.status_received");
	cr_expect_str_eq(vox_json_str(f.event, "source"), "/voxlink/ingress");
	data = json_object_get(f.event, "data");
	cr_expect_str_eq(vox_json_str(data, "provider"), "sms");
	cr_expect_str_eq(vox_json_str(data, "status"), "undelivered");
	cr_expect_str_eq(vox_json_str(data, "error_code"), "30003");
	cr_expect_str_eq(vox_json_str(data, "to"), "+14155550123");
	cr_expect_eq(json_object_size(data), 5);
	json_decref(f.event);
	none.sid = bad_sid;
	t_consume_all(TOPIC, 500, NULL, find_sid, &none);
	cr_expect_eq(none.count, 0, "a refused receipt was published");
	json_decref(none.event);
}

Test(sms_status, refused_receipts_say_why)
{
	char sid[40], long_sid[70], *answer = NULL;
	struct receipt r;

	new_sid(sid);
	receipt_make(&r, sid, "delivered", "");
	cr_expect_eq(post_receipt(r.names, r.values, r.n, TOKEN, NULL, &answer),
	             403);
	cr_expect_str_eq(error_code(answer), "missing_signature");
	free(answer);
	cr_expect_eq(post_receipt(r.names, r.values, r.n, TOKEN,
	                          "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", &answer),
	             403);
	cr_expect_str_eq(error_code(answer), "invalid_signature");
	free(answer);
	/* signed, but for another provider account */
	r.values[4] = "AC_someone_else";
	cr_expect_eq(post_receipt(r.names, r.values, r.n, TOKEN, "", &answer),
	             403);
	cr_expect_str_eq(error_code(answer), "invalid_credentials");
	free(answer);
	/* signed, without MessageStatus / MessageSid */
	receipt_make(&r, sid, "delivered", "");
	r.names[1] = "Other";
	cr_expect_eq(post_receipt(r.names, r.values, r.n, TOKEN, "", &answer),
	             400);
	cr_expect_str_eq(error_code(answer), "invalid_body");
	free(answer);
	receipt_make(&r, sid, "delivered", "");
	r.names[0] = "Sid";
	cr_expect_eq(post_receipt(r.names, r.values, r.n, TOKEN, "", &answer),
	             400);
	free(answer);
	/* MessageSid at its limit (64) and one over */
	memset(long_sid, 'a', 64);
	long_sid[64] = '\0';
	receipt_make(&r, long_sid, "sent", "");
	cr_expect_eq(post_receipt(r.names, r.values, r.n, TOKEN, "", &answer),
	             204, "%s", answer ? answer : "");
	free(answer);
	memset(long_sid, 'a', 65);
	long_sid[65] = '\0';
	receipt_make(&r, long_sid, "sent", "");
	cr_expect_eq(post_receipt(r.names, r.values, r.n, TOKEN, "", &answer),
	             400);
	free(answer);
	receipt_make(&r, sid, "delivered", "E42");
	cr_expect_eq(post_receipt(r.names, r.values, r.n, TOKEN, "", &answer),
	             400);
	free(answer);
}

Test(sms_status, malformed_forms_are_400_and_other_types_415)
{
	const char *form[] = {"Content-Type: application/x-www-form-urlencoded",
	                      "X-Twilio-Signature: x", NULL};
	const char *json[] = {"Content-Type: application/json",
	                      "X-Twilio-Signature: x", NULL};
	const char *bodies[] = {"",      "MessageSid", "=x",
	                        "a=%zz", "a=%4",       "a=%00"};
	char *answer = NULL;

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		cr_expect_eq(t_http_h("POST", port, "/v1/providers/sms/status",
		                      bodies[i], form, &answer, NULL),
		             400, "body %s", bodies[i]);
		free(answer);
		answer = NULL;
	}
	cr_expect_eq(t_http_h("POST", port, "/v1/providers/sms/status",
	                      "{\"MessageSid\":\"SM1\"}", json, &answer, NULL),
	             415);
	free(answer);
}
