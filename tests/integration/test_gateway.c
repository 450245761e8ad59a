/*
 * vox_gateway against the payment sandbox of the test stack
 * (VOX_PAYMENT_PORT, ops/payment-sandbox): charges, every test card's
 * decline, a charge whose answer is lost (timeout_after_charge) retried
 * with the same key -> exactly one row in the sandbox's ledger, a 500
 * then success, methods read and not found, a key reused with other
 * parameters. The sandbox is shared: every test makes its own payment
 * methods and scopes its faults to them.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "vox_gateway.h"
#include "vox_json.h"
#include "vox_uuid.h"

static vox_gateway_t *gateway(int timeout_ms, int attempts)
{
	char url[80];
	vox_gateway_conf_t conf = {.base_url = url,
	                           .api_key = "sk_sandbox",
	                           .timeout_ms = timeout_ms,
	                           .max_attempts = attempts,
	                           .backoff_ms = 50,
	                           .breaker_failures = 1000};
	vox_gateway_t *gw;
	vox_error_t err;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", t_payment_port());
	gw = vox_gateway_new(&conf, &err);
	cr_assert_not_null(gw, "%s", err.message);
	return gw;
}

/* A new payment method of card number, made as a browser would (the
 * publishable key); its id in pm. */
static void method(const char *number, char pm[128])
{
	t_payment_card(number, 2031, pm);
}

static void fault(const char *body)
{
	cr_assert_eq(t_payment("POST", "/admin/faults", body, NULL, NULL), 200);
}

/* Rows of the sandbox's ledger (charges actually taken) for pm. */
static size_t ledger(const char *pm)
{
	char path[200];
	json_t *doc;
	size_t n;

	snprintf(path, sizeof(path), "/admin/ledger?payment_method=%s", pm);
	cr_assert_eq(t_payment("GET", path, NULL, NULL, &doc), 200);
	n = json_array_size(json_object_get(doc, "data"));
	json_decref(doc);
	return n;
}

static void new_key(char key[64])
{
	char id[VOX_UUID_STRLEN];

	vox_uuid7(id);
	snprintf(key, 64, "%s:1", id);
}

Test(gateway, charge_succeeds_and_replays)
{
	vox_gateway_t *gw = gateway(5000, 3);
	vox_gateway_charge_t c, again, got;
	vox_error_t err;
	char pm[128], key[64];

	method("4242424242424242", pm);
	new_key(key);
	cr_assert_eq(vox_gateway_charge(gw, key, pm, 620, "USD", "inv-1",
	                                "pay-1", "acc-1", &c, &err),
	             0, "%s", err.message);
	cr_expect_eq(c.outcome, VOX_CHARGE_SUCCEEDED);
	cr_expect_eq(c.amount_minor, 620);
	cr_expect_eq(strncmp(c.intent_id, "pi_", 3), 0);
	/* the same key again: the first answer, not a second charge */
	cr_assert_eq(vox_gateway_charge(gw, key, pm, 620, "USD", "inv-1",
	                                "pay-1", "acc-1", &again, &err),
	             0, "%s", err.message);
	cr_expect_str_eq(again.intent_id, c.intent_id);
	cr_expect_eq(ledger(pm), 1);
	cr_assert_eq(vox_gateway_intent_get(gw, c.intent_id, &got, &err), 0,
	             "%s", err.message);
	cr_expect_eq(got.outcome, VOX_CHARGE_SUCCEEDED);
	cr_expect_eq(vox_gateway_intent_get(gw, "pi_nosuch", &got, &err),
	             VOX_ERR_NOT_FOUND);
	vox_gateway_destroy(gw);
}

Test(gateway, each_test_card_declines_with_its_code)
{
	static const struct {
		const char *number, *code;
		bool hard;
	} cards[] = {
	        {"4000000000009995", "insufficient_funds", false},
	        {"4000000000000069", "expired_card", true},
	        {"4000000000000002", "generic_decline", true},
	        {"4000000000000119", "processing_error", false},
	        {"4000000000000127", "incorrect_cvc", true},
	        {"4000000000009987", "lost_card", true},
	};
	vox_gateway_t *gw = gateway(5000, 3);

	for (size_t i = 0; i < sizeof(cards) / sizeof(cards[0]); i++) {
		vox_gateway_charge_t c, again;
		vox_error_t err;
		char pm[128], key[64];

		method(cards[i].number, pm);
		new_key(key);
		cr_assert_eq(vox_gateway_charge(gw, key, pm, 100, "eur", "i",
		                                "p", "a", &c, &err),
		             0, "%s: %s", cards[i].code, err.message);
		cr_expect_eq(c.outcome, VOX_CHARGE_DECLINED, "%s",
		             cards[i].code);
		cr_expect_str_eq(c.decline_code, cards[i].code);
		cr_expect_eq(c.hard, cards[i].hard, "%s", cards[i].code);
		cr_expect_neq(c.message[0], '\0');
		/* a decline is replayed too */
		cr_assert_eq(vox_gateway_charge(gw, key, pm, 100, "eur", "i",
		                                "p", "a", &again, &err),
		             0);
		cr_expect_str_eq(again.intent_id, c.intent_id);
		cr_expect_eq(ledger(pm), 0);
	}
	vox_gateway_destroy(gw);
}

/* The charge is taken, its answer held longer than the client waits: the
 * client's next attempt (same key) gets the first answer. */
Test(gateway, timeout_after_charge_charges_once)
{
	vox_gateway_t *gw = gateway(400, 3);
	vox_gateway_charge_t c;
	vox_error_t err;
	char pm[128], key[64], rule[300];

	method("4242424242424242", pm);
	snprintf(rule, sizeof(rule),
	         "{\"fault\":\"timeout_after_charge\",\"payment_method\":"
	         "\"%s\",\"delay_ms\":1500}",
	         pm);
	fault(rule);
	new_key(key);
	cr_assert_eq(vox_gateway_charge(gw, key, pm, 1234, "USD", "i", "p", "a",
	                                &c, &err),
	             0, "%s", err.message);
	cr_expect_eq(c.outcome, VOX_CHARGE_SUCCEEDED);
	cr_expect_eq(ledger(pm), 1);

	/* every attempt of a call timed out: retriable; a later call with
	 * the same key is answered, still one charge */
	snprintf(rule, sizeof(rule),
	         "{\"fault\":\"timeout_after_charge\",\"payment_method\":"
	         "\"%s\",\"delay_ms\":1200,\"count\":2}",
	         pm);
	fault(rule);
	new_key(key);
	gw = (vox_gateway_destroy(gw), gateway(400, 2));
	cr_assert_neq(vox_gateway_charge(gw, key, pm, 99, "USD", "i", "p", "a",
	                                 &c, &err),
	              0);
	cr_expect(err.retriable, "%s", err.message);
	cr_assert_eq(vox_gateway_charge(gw, key, pm, 99, "USD", "i", "p", "a",
	                                &c, &err),
	             0, "%s", err.message);
	cr_expect_eq(c.outcome, VOX_CHARGE_SUCCEEDED);
	cr_expect_eq(ledger(pm), 2);
	vox_gateway_destroy(gw);
}

Test(gateway, error_500_then_ok)
{
	vox_gateway_t *gw = gateway(5000, 1);
	vox_gateway_charge_t c;
	vox_error_t err;
	char pm[128], key[64], rule[200], path[200];
	json_t *doc;

	method("4242424242424242", pm);
	snprintf(rule, sizeof(rule),
	         "{\"fault\":\"error_500\",\"payment_method\":\"%s\"}", pm);
	fault(rule);
	new_key(key);
	cr_assert_eq(vox_gateway_charge(gw, key, pm, 500, "USD", "i", "p", "a",
	                                &c, &err),
	             VOX_ERR_UNAVAILABLE);
	cr_expect(err.retriable);
	cr_expect_eq(ledger(pm), 0);
	cr_assert_eq(vox_gateway_charge(gw, key, pm, 500, "USD", "i", "p", "a",
	                                &c, &err),
	             0, "%s", err.message);
	cr_expect_eq(c.outcome, VOX_CHARGE_SUCCEEDED);
	cr_expect_eq(ledger(pm), 1);
	/* the 500 made no intent */
	snprintf(path, sizeof(path), "/admin/intents?payment_method=%s", pm);
	cr_assert_eq(t_payment("GET", path, NULL, NULL, &doc), 200);
	cr_expect_eq(json_array_size(json_object_get(doc, "data")), 1);
	json_decref(doc);
	/* inside one call (3 attempts) the 500 is not even seen */
	vox_gateway_destroy(gw);
	gw = gateway(5000, 3);
	fault(rule);
	new_key(key);
	cr_assert_eq(vox_gateway_charge(gw, key, pm, 501, "USD", "i", "p", "a",
	                                &c, &err),
	             0, "%s", err.message);
	cr_expect_eq(ledger(pm), 2);
	vox_gateway_destroy(gw);
}

Test(gateway, methods_and_refusals)
{
	vox_gateway_t *gw = gateway(5000, 3);
	vox_gateway_method_t m;
	vox_gateway_charge_t c;
	vox_error_t err;
	char pm[128], key[64];

	method("5555555555554444", pm);
	cr_assert_eq(vox_gateway_method_get(gw, pm, &m, &err), 0, "%s",
	             err.message);
	cr_expect_str_eq(m.id, pm);
	cr_expect_str_eq(m.brand, "mastercard");
	cr_expect_str_eq(m.last4, "4444");
	cr_expect_eq(m.exp_month, 12);
	cr_expect_eq(m.exp_year, 2031);
	cr_expect_eq(vox_gateway_method_get(gw, "pm_nosuch", &m, &err),
	             VOX_ERR_NOT_FOUND, "%s", err.message);
	new_key(key);
	cr_expect_eq(vox_gateway_charge(gw, key, "pm_nosuch", 1, "USD", "i",
	                                "p", "a", &c, &err),
	             VOX_ERR_NOT_FOUND, "%s", err.message);
	/* a key reused with other parameters: refused, never retried */
	new_key(key);
	cr_assert_eq(vox_gateway_charge(gw, key, pm, 10, "USD", "i", "p", "a",
	                                &c, &err),
	             0);
	cr_expect_eq(vox_gateway_charge(gw, key, pm, 11, "USD", "i", "p", "a",
	                                &c, &err),
	             VOX_ERR_INVALID);
	cr_expect(!err.retriable);
	cr_expect_eq(ledger(pm), 1);
	/* amounts at the gateway's maximum and over it */
	new_key(key);
	cr_expect_eq(vox_gateway_charge(gw, key, pm, 99999999, "USD", "i", "p",
	                                "a", &c, &err),
	             0, "%s", err.message);
	new_key(key);
	cr_expect_eq(vox_gateway_charge(gw, key, pm, 100000000, "USD", "i", "p",
	                                "a", &c, &err),
	             VOX_ERR_INVALID);
	vox_gateway_destroy(gw);

	/* our secret key wrong: fatal, nothing works until it is fixed */
	char url[80];
	vox_gateway_conf_t conf = {.base_url = url, .api_key = "sk_wrong"};

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", t_payment_port());
	gw = vox_gateway_new(&conf, &err);
	cr_assert_not_null(gw);
	cr_expect_neq(vox_gateway_method_get(gw, pm, &m, &err), 0);
	cr_expect(err.fatal, "%s", err.message);
	vox_gateway_destroy(gw);
}

/* The sandbox's own rules, over plain HTTP. */
Test(gateway, sandbox_refusals)
{
	json_t *doc;

	/* the publishable key only makes methods */
	cr_expect_eq(t_payment("POST", "/v1/payment_intents",
	                       "{\"amount\":1,\"currency\":\"usd\","
	                       "\"payment_method\":\"pm_card_visa\","
	                       "\"confirm\":true}",
	                       "pk_sandbox", NULL),
	             401);
	cr_expect_eq(t_payment("GET", "/v1/payment_methods/pm_card_visa", NULL,
	                       NULL, NULL),
	             401);
	/* a past expiry is refused at creation */
	cr_assert_eq(t_payment("POST", "/v1/payment_methods",
	                       "{\"type\":\"card\",\"card\":{\"number\":"
	                       "\"4242424242424242\",\"exp_month\":1,"
	                       "\"exp_year\":2020}}",
	                       "pk_sandbox", &doc),
	             402);
	cr_expect_str_eq(vox_json_str(json_object_get(doc, "error"), "code"),
	                 "invalid_expiry_year");
	json_decref(doc);
	/* a number failing the Luhn check */
	cr_expect_eq(t_payment("POST", "/v1/payment_methods",
	                       "{\"type\":\"card\",\"card\":{\"number\":"
	                       "\"4242424242424241\",\"exp_month\":1,"
	                       "\"exp_year\":2040}}",
	                       "pk_sandbox", NULL),
	             402);
	cr_expect_eq(t_payment("POST", "/v1/payment_intents", "{\"amount\":1}",
	                       "sk_sandbox", &doc),
	             400);
	cr_expect_str_eq(vox_json_str(json_object_get(doc, "error"), "param"),
	                 "currency");
	json_decref(doc);
	cr_expect_eq(t_payment("POST", "/admin/faults", "{\"fault\":\"nope\"}",
	                       NULL, NULL),
	             400);
}
