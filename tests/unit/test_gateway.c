/*
 * Tests of vox_gateway without a server: decline classification, the
 * gateway's answers parsed (intents, card_errors, methods, garbage), the
 * webhook signature, and argument checks that fail before any request.
 * Against the sandbox: tests/integration/test_gateway.c.
 */
#include <criterion/criterion.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "vox_crypto.h"
#include "vox_gateway.h"
#include "vox_gateway_internal.h"

#define DEAD_URL "http://127.0.0.1:1"

Test(gateway, decline_classes)
{
	static const char *const soft[] = {
	        "insufficient_funds", "processing_error", "try_again_later",
	        "issuer_not_available", "card_velocity_exceeded"};
	static const char *const hard[] = {
	        "expired_card",      "lost_card",       "stolen_card",
	        "do_not_honor",      "generic_decline", "card_declined",
	        "incorrect_cvc",     "fraudulent",      "",
	        "INSUFFICIENT_FUNDS"};

	for (size_t i = 0; i < sizeof(soft) / sizeof(soft[0]); i++)
		cr_expect(vox_gateway_decline_soft(soft[i]), "%s", soft[i]);
	for (size_t i = 0; i < sizeof(hard) / sizeof(hard[0]); i++)
		cr_expect(!vox_gateway_decline_soft(hard[i]), "%s", hard[i]);
	cr_expect(!vox_gateway_decline_soft(NULL));
}

static int parse(long status, const char *body, vox_gateway_charge_t *c,
                 vox_error_t *err)
{
	return vox_gateway_parse_charge(status, body, strlen(body), c, err);
}

Test(gateway, parse_succeeded_and_processing)
{
	vox_gateway_charge_t c;
	vox_error_t err;

	cr_assert_eq(parse(200,
	                   "{\"id\":\"pi_1\",\"object\":\"payment_intent\","
	                   "\"amount\":620,\"currency\":\"usd\",\"status\":"
	                   "\"succeeded\",\"last_payment_error\":null}",
	                   &c, &err),
	             0, "%s", err.message);
	cr_expect_eq(c.outcome, VOX_CHARGE_SUCCEEDED);
	cr_expect_str_eq(c.intent_id, "pi_1");
	cr_expect_eq(c.amount_minor, 620);
	cr_assert_eq(parse(200,
	                   "{\"id\":\"pi_2\",\"amount\":1,\"status\":"
	                   "\"processing\"}",
	                   &c, &err),
	             0);
	cr_expect_eq(c.outcome, VOX_CHARGE_PROCESSING);
	/* a failed intent read back (GET after a webhook) */
	cr_assert_eq(parse(200,
	                   "{\"id\":\"pi_3\",\"amount\":5,\"status\":"
	                   "\"requires_payment_method\",\"last_payment_error\":"
	                   "{\"code\":\"card_declined\",\"decline_code\":"
	                   "\"insufficient_funds\",\"message\":\"no money\"}}",
	                   &c, &err),
	             0);
	cr_expect_eq(c.outcome, VOX_CHARGE_DECLINED);
	cr_expect_str_eq(c.decline_code, "insufficient_funds");
	cr_expect(!c.hard);
	cr_expect_str_eq(c.message, "no money");
}

/* Stripe's card_error bodies: decline_code when there is one, else the
 * error's code (processing_error, incorrect_cvc have none). */
Test(gateway, parse_declines)
{
	static const struct {
		const char *code, *decline, *want;
		bool hard;
	} cases[] = {
	        {"card_declined", "insufficient_funds", "insufficient_funds",
	         false},
	        {"expired_card", "expired_card", "expired_card", true},
	        {"card_declined", "generic_decline", "generic_decline", true},
	        {"processing_error", NULL, "processing_error", false},
	        {"incorrect_cvc", NULL, "incorrect_cvc", true},
	        {"card_declined", "lost_card", "lost_card", true},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[1024], dc[80] = "";
		vox_gateway_charge_t c;
		vox_error_t err;

		if (cases[i].decline)
			snprintf(dc, sizeof(dc), "\"decline_code\":\"%s\",",
			         cases[i].decline);
		snprintf(body, sizeof(body),
		         "{\"error\":{\"type\":\"card_error\",\"code\":\"%s\","
		         "%s\"message\":\"Your card was declined.\","
		         "\"payment_intent\":{\"id\":\"pi_d%zu\",\"amount\":"
		         "99,\"status\":\"requires_payment_method\"}}}",
		         cases[i].code, dc, i);
		cr_assert_eq(parse(402, body, &c, &err), 0, "%s: %s",
		             cases[i].want, err.message);
		cr_expect_eq(c.outcome, VOX_CHARGE_DECLINED);
		cr_expect_str_eq(c.decline_code, cases[i].want);
		cr_expect_eq(c.hard, cases[i].hard, "%s", cases[i].want);
		cr_expect_str_eq(c.message, "Your card was declined.");
		cr_expect_eq(strncmp(c.intent_id, "pi_d", 4), 0);
	}
}

/* What the gateway never sends: the outcome is unknown, so retriable
 * (the caller asks again with the same key). */
Test(gateway, parse_garbage_is_retriable)
{
	static const char *const bodies[] = {
	        "",
	        "not json",
	        "[]",
	        "{}",
	        "{\"id\":\"pi_1\"}",
	        "{\"id\":\"x_1\",\"amount\":1,\"status\":\"succeeded\"}",
	        "{\"id\":\"pi_1\",\"amount\":0,\"status\":\"succeeded\"}",
	        "{\"id\":\"pi_1\",\"amount\":1,\"status\":\"weird\"}"};
	vox_gateway_charge_t c;
	vox_error_t err;

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		cr_expect_eq(parse(200, bodies[i], &c, &err),
		             VOX_ERR_UNAVAILABLE, "%s", bodies[i]);
		cr_expect(err.retriable, "%s", bodies[i]);
	}
	cr_expect_eq(
	        parse(402, "{\"error\":{\"type\":\"card_error\"}}", &c, &err),
	        VOX_ERR_UNAVAILABLE);
}

Test(gateway, parse_long_fields)
{
	char body[2048], code[300];
	vox_gateway_charge_t c;
	vox_error_t err;

	memset(code, 'x', sizeof(code) - 1);
	code[sizeof(code) - 1] = '\0';
	snprintf(body, sizeof(body),
	         "{\"error\":{\"code\":\"card_declined\",\"decline_code\":"
	         "\"%s\",\"message\":\"%s\",\"payment_intent\":{\"id\":"
	         "\"pi_1\",\"amount\":1,\"status\":"
	         "\"requires_payment_method\"}}}",
	         code, code);
	cr_assert_eq(parse(402, body, &c, &err), 0);
	cr_expect_eq(strlen(c.decline_code), sizeof(c.decline_code) - 1);
	cr_expect_eq(strlen(c.message), 255);
	/* an intent id longer than ours is unreadable, not cut */
	char big[200];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(body, sizeof(body),
	         "{\"id\":\"pi_%s\",\"amount\":1,\"status\":\"succeeded\"}",
	         big);
	cr_expect_eq(parse(200, body, &c, &err), VOX_ERR_UNAVAILABLE);
}

Test(gateway, parse_method)
{
	const char *ok = "{\"id\":\"pm_1\",\"object\":\"payment_method\","
	                 "\"card\":{\"brand\":\"visa\",\"last4\":\"4242\","
	                 "\"exp_month\":12,\"exp_year\":2034}}";
	vox_gateway_method_t m;
	vox_error_t err;

	cr_assert_eq(vox_gateway_parse_method(ok, strlen(ok), &m, &err), 0,
	             "%s", err.message);
	cr_expect_str_eq(m.id, "pm_1");
	cr_expect_str_eq(m.brand, "visa");
	cr_expect_str_eq(m.last4, "4242");
	cr_expect_eq(m.exp_month, 12);
	cr_expect_eq(m.exp_year, 2034);

	static const char *const bad[] = {
	        "{\"id\":\"pm_1\"}",
	        "{\"id\":\"pm_1\",\"card\":{\"last4\":\"42\",\"exp_month\":1,"
	        "\"exp_year\":2030}}",
	        "{\"id\":\"pm_1\",\"card\":{\"last4\":\"4242\",\"exp_month\":"
	        "13,\"exp_year\":2030}}",
	        "{\"id\":\"pm_1\",\"card\":{\"last4\":\"abcd\",\"exp_month\":"
	        "1,\"exp_year\":2030}}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(vox_gateway_parse_method(bad[i], strlen(bad[i]),
		                                      &m, &err),
		             VOX_ERR_INVALID, "%s", bad[i]);
	cr_expect_eq(vox_gateway_parse_method("nope", 4, &m, &err),
	             VOX_ERR_UNAVAILABLE);
}

Test(gateway, describe)
{
	const char *b = "{\"error\":{\"type\":\"card_error\",\"code\":"
	                "\"card_declined\",\"decline_code\":\"lost_card\","
	                "\"message\":\"Your card was declined.\"}}";
	char out[200];

	vox_gateway_describe(b, strlen(b), out, sizeof(out));
	cr_expect_str_eq(out,
	                 "Your card was declined. (card_declined, lost_card)");
	vox_gateway_describe("x", 1, out, sizeof(out));
	cr_expect_str_eq(out, "");
}

Test(gateway, bad_arguments_fail_before_sending)
{
	vox_gateway_conf_t conf = {
	        .base_url = DEAD_URL, .api_key = "sk_test", .max_attempts = 1};
	vox_gateway_t *gw;
	vox_gateway_charge_t c;
	vox_gateway_method_t m;
	vox_error_t err;
	char key[300];

	cr_expect_null(vox_gateway_new(
	        &(vox_gateway_conf_t){.base_url = DEAD_URL}, &err));
	gw = vox_gateway_new(&conf, &err);
	cr_assert_not_null(gw, "%s", err.message);
	cr_expect_eq(vox_gateway_charge(gw, NULL, "pm_card_visa", 100, "USD",
	                                "i", "p", "a", &c, &err),
	             VOX_ERR_INVALID);
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	cr_expect_eq(vox_gateway_charge(gw, key, "pm_card_visa", 100, "USD",
	                                "i", "p", "a", &c, &err),
	             VOX_ERR_INVALID);
	cr_expect_eq(vox_gateway_charge(gw, "k\r\nX: y", "pm_card_visa", 100,
	                                "USD", "i", "p", "a", &c, &err),
	             VOX_ERR_INVALID);
	cr_expect_eq(vox_gateway_charge(gw, "k", "pm/../x", 100, "USD", "i",
	                                "p", "a", &c, &err),
	             VOX_ERR_INVALID);
	cr_expect_eq(vox_gateway_charge(gw, "k", "pm_card_visa", 0, "USD", "i",
	                                "p", "a", &c, &err),
	             VOX_ERR_INVALID);
	cr_expect_eq(vox_gateway_charge(gw, "k", "pm_card_visa", 1, "US1", "i",
	                                "p", "a", &c, &err),
	             VOX_ERR_INVALID);
	cr_expect_eq(vox_gateway_method_get(gw, "", &m, &err), VOX_ERR_INVALID);
	cr_expect_eq(vox_gateway_intent_get(gw, "pi_1?x=1", &c, &err),
	             VOX_ERR_INVALID);
	/* nothing listens: retriable */
	cr_expect_eq(vox_gateway_method_get(gw, "pm_card_visa", &m, &err),
	             VOX_ERR_UNAVAILABLE, "%s", err.message);
	cr_expect(err.retriable);
	vox_gateway_destroy(gw);
}

static void sign(const char *secret, long long t, const char *body, char *out,
                 size_t size)
{
	unsigned char mac[32];
	unsigned int len = 0;
	char payload[512], hex[65];

	snprintf(payload, sizeof(payload), "%lld.%s", t, body);
	HMAC(EVP_sha256(), secret, (int)strlen(secret),
	     (const unsigned char *)payload, strlen(payload), mac, &len);
	vox_hex_encode(mac, len, hex);
	snprintf(out, size, "t=%lld,v1=%s", t, hex);
}

Test(gateway, webhook_signature)
{
	const char *body = "{\"id\":\"evt_1\"}";
	char h[200], two[400];
	vox_error_t err;

	sign("whsec_sandbox", 1000, body, h, sizeof(h));
	cr_expect_eq(vox_gateway_signature_check("whsec_sandbox", h, body,
	                                         strlen(body), 1100, 300, &err),
	             0, "%s", err.message);
	cr_expect_eq(vox_gateway_signature_check("other", h, body, strlen(body),
	                                         1100, 300, &err),
	             VOX_ERR_INVALID);
	cr_expect_eq(vox_gateway_signature_check("whsec_sandbox", h, body,
	                                         strlen(body), 1400, 300, &err),
	             VOX_ERR_INVALID);
	cr_expect_eq(vox_gateway_signature_check("whsec_sandbox", h, "{}", 2,
	                                         1100, 300, &err),
	             VOX_ERR_INVALID);
	cr_expect_eq(vox_gateway_signature_check("whsec_sandbox", "v1=ab", body,
	                                         strlen(body), 1100, 300, &err),
	             VOX_ERR_INVALID);
	/* rotation: an old secret's v1 next to the new one */
	sign("old", 1000, body, two, sizeof(two));
	{
		char one[sizeof(two)];

		memcpy(one, two, sizeof(one));
		cr_assert_lt(
		        snprintf(two, sizeof(two), "%s%s", one, strchr(h, ',')),
		        (int)sizeof(two));
	}
	cr_expect_eq(vox_gateway_signature_check("whsec_sandbox", two, body,
	                                         strlen(body), 1000, 300, &err),
	             0, "%s", err.message);
}
