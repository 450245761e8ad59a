/*
 * vox_carrier_port against the real carrier sandbox (docs/CARRIER_SANDBOX.md
 * "Porting"): a portability check read per number; a port created with an
 * Idempotency-Key (twice: one order), its exception read, corrected by
 * PATCH and followed to ported; refusals mapped (mixed losing carriers:
 * VOX_ERR_INVALID; PATCH or cancel of a ported order: VOX_ERR_CONFLICT;
 * unknown order: VOX_ERR_NOT_FOUND) without the PIN in any message; cancel;
 * and faults: failed attempts retried, and an answer lost after the order
 * was made retried into the same order.
 *
 * The suite runs its own sandbox process (this tree's ops/carrier-sandbox,
 * in memory, on a free port, steps of 20 ms and a time scale that brings
 * any FOC within a second) so that its settings and faults touch nobody
 * else's tests.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_carrier_port.h"
#include "vox_json.h"

#define PIN     "S3cr3t-0100"
#define ACCOUNT "ACC-int-4242"

static int sport;
static pid_t sandbox;
static vox_carrier_t *carrier;
static char foc[16];
static unsigned serial;

static bool sandbox_up(void *arg)
{
	(void)arg;
	return t_http("GET", sport, "/healthz", NULL, NULL, NULL) == 200;
}

static pid_t sandbox_spawn(void)
{
	const char *const env[] = {"VOX_CARRIER_INVENTORY_PER_COUNTRY=100",
	                           "VOX_CARRIER_API_KEY=sandbox-key",
	                           "VOX_CARRIER_PORT_STEP_MS=20",
	                           "VOX_CARRIER_PORT_TIME_SCALE=1000000000",
	                           NULL};

	return t_sandbox_spawn(sport, "carrier-port-sandbox.log", env);
}

/* The sandbox's admin API; the answer parsed (NULL when not asked). */
static json_t *sandbox_admin(const char *method, const char *path,
                             const char *body)
{
	char *text = NULL;
	int status = t_http(method, sport, path, body,
	                    body ? "application/json" : NULL, &text);
	json_t *doc;

	cr_assert(status >= 200 && status < 300, "sandbox %s %s: %d %s", method,
	          path, status, text ? text : "");
	doc = json_loads(text ? text : "null", JSON_DECODE_ANY, NULL);
	free(text);
	return doc;
}

static void start(void)
{
	vox_carrier_conf_t conf = {.api_key = "sandbox-key",
	                           .backoff_ms = 5,
	                           .max_attempts = 3,
	                           .breaker_failures = 50};
	static char url[64];
	time_t week = time(NULL) + 7 * 86400;
	vox_error_t err;

	sport = t_free_port();
	sandbox = sandbox_spawn();
	cr_assert(t_wait_for(sandbox_up, NULL, 30000), "sandbox not up");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", sport);
	conf.base_url = url;
	carrier = vox_carrier_new(&conf, &err);
	cr_assert_not_null(carrier, "%s", err.message);
	strftime(foc, sizeof(foc), "%Y-%m-%d", gmtime(&week));
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	serial = (unsigned)rand();
}

static void stop(void)
{
	vox_carrier_destroy(carrier);
	t_stop(sandbox, SIGTERM, 10000);
}

TestSuite(carrier_port, .init = start, .fini = stop, .timeout = 60);

/* A fresh number ending in last4 (the PIN rule's digits). */
static void number(char out[24], const char *last4)
{
	serial++;
	snprintf(out, 24, "+1415%03u%s", 200 + serial % 700, last4);
}

static vox_carrier_port_req_t port_req(const char *const *e164s, int n,
                                       const char *ref, const char *pin)
{
	vox_carrier_port_req_t req = {
	        .customer_reference = ref,
	        .e164s = e164s,
	        .n = n,
	        .authorized_name = "Ada Lovelace",
	        .business_name = "Analytical Ltd",
	        .service_address_json =
	                "{\"street\":\"1 Main St\",\"locality\":\"San "
	                "Francisco\",\"administrative_area\":\"CA\","
	                "\"postal_code\":\"94105\",\"country\":\"US\"}",
	        .account_number = ACCOUNT,
	        .pin = pin,
	        .foc_date = foc,
	        .loa_document_id = "doc-loa",
	        .invoice_document_id = "doc-invoice",
	};
	return req;
}

/* Polls the order until it has status (at most 10 s). */
static void wait_status(const char *id, const char *status,
                        vox_carrier_port_t *out)
{
	vox_error_t err;

	for (int i = 0; i < 500; i++) {
		cr_assert_eq(vox_carrier_port_get(carrier, id, out, &err), 0,
		             "%s", err.message);
		if (strcmp(out->status, status) == 0)
			return;
		usleep(20000);
	}
	cr_assert_fail("order %s: %s, not %s", id, out->status, status);
}

static long long orders_for(const char *ref)
{
	char path[160];
	json_t *doc;
	long long n;

	snprintf(path, sizeof(path),
	         "/admin/porting/orders?customer_reference=%s", ref);
	doc = sandbox_admin("GET", path, NULL);
	n = json_integer_value(
	        json_object_get(json_object_get(doc, "meta"), "total_results"));
	json_decref(doc);
	return n;
}

Test(carrier_port, portability_is_read_per_number)
{
	char a[24], b[24], c[24];
	const char *asked[] = {a, b, c, "+442071838750"};
	vox_carrier_portability_t out[4];
	vox_error_t err;

	number(a, "0100");
	number(b, "0105");
	number(c, "0109");
	cr_assert_eq(vox_carrier_portability(carrier, asked, 4, out, &err), 0,
	             "%s", err.message);
	cr_assert(out[0].portable);
	cr_assert_str_eq(out[0].losing_carrier, "Acme Wireless");
	cr_assert_str_eq(out[0].spid, "1111");
	cr_assert(out[0].pin_required && out[0].account_number_required);
	cr_assert_not(out[0].fast_portable);
	cr_assert_str_eq(out[0].number_type, "local");
	cr_assert(out[1].portable && out[1].fast_portable);
	cr_assert_str_eq(out[1].losing_carrier, "Beta Telecom");
	cr_assert_not(out[1].pin_required);
	cr_assert_not(out[2].portable);
	cr_assert_str_eq(out[2].not_portable_reason, "carrier_not_supported");
	cr_assert_not(out[3].portable);
	cr_assert_str_eq(out[3].not_portable_reason, "country_not_supported");
}

Test(carrier_port, exception_fixed_by_patch_then_ported)
{
	char a[24], ref[48], key[64], pin[8];
	const char *numbers[] = {a};
	vox_carrier_port_req_t req;
	vox_carrier_port_t out, again;
	vox_error_t err;

	number(a, "0101");
	snprintf(ref, sizeof(ref), "int-port-%u", serial);
	snprintf(key, sizeof(key), "%s:1", ref);
	req = port_req(numbers, 1, ref, PIN);
	cr_assert_eq(vox_carrier_port_create(carrier, &req, key, &out, &err), 0,
	             "%s", err.message);
	cr_assert_str_eq(out.status, "submitted");
	cr_assert_neq(out.id[0], '\0');
	/* the same key again: the same order, not a second one */
	cr_assert_eq(vox_carrier_port_create(carrier, &req, key, &again, &err),
	             0, "%s", err.message);
	cr_assert_str_eq(again.id, out.id);
	cr_assert_eq(orders_for(ref), 1);

	wait_status(out.id, "exception", &again);
	cr_assert_eq(again.n_exceptions, 1);
	cr_assert_str_eq(again.exceptions[0].code, "wrong_pin");
	cr_assert_str_eq(again.exceptions[0].field, "end_user.pin");

	/* the PIN is the number's last four digits */
	snprintf(pin, sizeof(pin), "%s", a + strlen(a) - 4);
	req = (vox_carrier_port_req_t){.pin = pin};
	snprintf(key, sizeof(key), "%s:2", ref);
	cr_assert_eq(vox_carrier_port_update(carrier, out.id, &req, key, &again,
	                                     &err),
	             0, "%s", err.message);
	cr_assert_str_eq(again.status, "submitted");
	wait_status(out.id, "ported", &again);
	cr_assert_eq(again.n_exceptions, 0);
	cr_assert(strncmp(again.foc_date, foc, 10) == 0 &&
	                  strcmp(again.foc_date + 10, "T14:00:00Z") == 0,
	          "%s", again.foc_date);

	/* too late for a PATCH or a cancel now */
	snprintf(key, sizeof(key), "%s:3", ref);
	cr_assert_eq(vox_carrier_port_update(carrier, out.id, &req, key, &again,
	                                     &err),
	             VOX_ERR_CONFLICT, "%s", err.message);
	cr_assert_eq(vox_carrier_port_cancel(carrier, out.id, &again, &err),
	             VOX_ERR_CONFLICT, "%s", err.message);
	cr_assert_not_null(strstr(err.message, "invalid_state"), "%s",
	                   err.message);
}

Test(carrier_port, refusals_are_final_and_hold_no_secret)
{
	char a[24], b[24], ref[48];
	const char *numbers[] = {a, b};
	vox_carrier_port_req_t req;
	vox_carrier_port_t out;
	vox_error_t err;

	number(a, "0102");
	number(b, "0106");
	snprintf(ref, sizeof(ref), "int-mixed-%u", serial);
	req = port_req(numbers, 2, ref, PIN);
	cr_assert_eq(vox_carrier_port_create(carrier, &req, ref, &out, &err),
	             VOX_ERR_INVALID, "%s", err.message);
	cr_assert_not(err.retriable);
	cr_assert_not_null(strstr(err.message, "mixed_losing_carriers"), "%s",
	                   err.message);
	cr_assert_null(strstr(err.message, PIN));
	cr_assert_null(strstr(err.message, ACCOUNT));
	cr_assert_eq(orders_for(ref), 0);

	cr_assert_eq(vox_carrier_port_get(carrier, "no-such-order", &out, &err),
	             VOX_ERR_NOT_FOUND, "%s", err.message);
}

Test(carrier_port, cancel_then_cancelled)
{
	char a[24], ref[48];
	const char *numbers[] = {a};
	vox_carrier_port_req_t req;
	vox_carrier_port_t out, c;
	vox_error_t err;

	number(a, "0107");
	snprintf(ref, sizeof(ref), "int-cancel-%u", serial);
	req = port_req(numbers, 1, ref, NULL);
	/* a FOC far ahead: still waiting for it when cancelled */
	req.foc_date = "2099-12-14";
	cr_assert_eq(vox_carrier_port_create(carrier, &req, ref, &out, &err), 0,
	             "%s", err.message);
	wait_status(out.id, "foc-date-confirmed", &c);
	cr_assert_eq(vox_carrier_port_cancel(carrier, out.id, &c, &err), 0,
	             "%s", err.message);
	cr_assert_str_eq(c.status, "cancel-pending");
	wait_status(out.id, "cancelled", &c);
	/* a second cancel answers the order as it is */
	cr_assert_eq(vox_carrier_port_cancel(carrier, out.id, &c, &err), 0,
	             "%s", err.message);
	cr_assert_str_eq(c.status, "cancelled");
}

Test(carrier_port, failed_attempts_and_lost_answers_make_one_order)
{
	char a[24], b[24], ref[48], ref2[48];
	const char *first[] = {a}, *second[] = {b};
	vox_carrier_port_req_t req;
	vox_carrier_port_t out;
	vox_error_t err;
	json_t *left;

	number(a, "0205");
	number(b, "0206");
	snprintf(ref, sizeof(ref), "int-retry-%u", serial);
	snprintf(ref2, sizeof(ref2), "int-lost-%u", serial);

	/* two 503s before the order is made: retried inside the call */
	json_decref(sandbox_admin("POST", "/admin/faults",
	                          "{\"endpoint\":\"port_create\","
	                          "\"fail_next\":2}"));
	req = port_req(first, 1, ref, NULL);
	cr_assert_eq(vox_carrier_port_create(carrier, &req, ref, &out, &err), 0,
	             "%s", err.message);
	cr_assert_eq(orders_for(ref), 1);

	/* the order made, its answer lost (twice): the retries with the
	 * same key get the first order back */
	json_decref(sandbox_admin("POST", "/admin/faults",
	                          "{\"endpoint\":\"port_create\","
	                          "\"fail_next\":2,\"phase\":\"after\"}"));
	req = port_req(second, 1, ref2, NULL);
	cr_assert_eq(vox_carrier_port_create(carrier, &req, ref2, &out, &err),
	             0, "%s", err.message);
	cr_assert_eq(orders_for(ref2), 1);

	/* every attempt failing: retriable, and no secret in the message */
	json_decref(sandbox_admin("POST", "/admin/faults",
	                          "{\"endpoint\":\"port_create\","
	                          "\"fail_next\":3}"));
	req = port_req(second, 1, ref2, PIN);
	cr_assert_neq(
	        vox_carrier_port_create(carrier, &req, "other-key", &out, &err),
	        0);
	cr_assert(err.retriable, "%s", err.message);
	cr_assert_null(strstr(err.message, PIN));
	left = sandbox_admin("DELETE", "/admin/faults", NULL);
	json_decref(left);
}
