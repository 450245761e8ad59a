/*
 * Tests of vox_carrier_port without a server: the port request body (field
 * names, the address mapping, every limit at its maximum and one past it),
 * the answers parsed (portability checks, porting orders), argument checks
 * that fail before any request, and the rule that the PIN and the account
 * number reach neither an error message nor a log line. Against the real
 * sandbox: tests/integration/test_carrier_port.c.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vox_carrier_port.h"
#include "vox_json.h"

/* nothing listens there: a request would fail as unreachable */
#define DEAD_URL "http://127.0.0.1:1"
#define PIN      "S3cr3tPin!9"
#define ACCOUNT  "ACC-9f8e7d6c5b4a"

static const char *const one_number[] = {"+14155550100"};

static vox_carrier_port_req_t full_req(void)
{
	vox_carrier_port_req_t req = {
	        .customer_reference = "0b0e1c8a-order",
	        .e164s = one_number,
	        .n = 1,
	        .authorized_name = "Ada Lovelace",
	        .business_name = "Analytical Ltd",
	        .service_address_json =
	                "{\"street\":\"1 Main St\",\"locality\":\"San "
	                "Francisco\",\"administrative_area\":\"CA\","
	                "\"postal_code\":\"94105\",\"country\":\"US\"}",
	        .account_number = ACCOUNT,
	        .pin = PIN,
	        .foc_date = "2026-12-14",
	        .loa_document_id = "doc-loa",
	        .invoice_document_id = "doc-invoice",
	};
	return req;
}

static const char *path_str(json_t *root, const char *a, const char *b,
                            const char *c)
{
	json_t *node = json_object_get(root, a);

	if (b != NULL)
		node = json_object_get(node, b);
	return vox_json_str(node, c);
}

/* ---- the request body ---- */

Test(carrier_port_body, create_has_every_field)
{
	vox_carrier_port_req_t req = full_req();
	vox_error_t err;
	json_t *body = vox_carrier_port_body(&req, true, &err);

	cr_assert_not_null(body, "%s", err.message);
	cr_assert_eq(json_array_size(json_object_get(body, "phone_numbers")),
	             1);
	cr_assert_str_eq(json_string_value(json_array_get(
	                         json_object_get(body, "phone_numbers"), 0)),
	                 "+14155550100");
	cr_assert_str_eq(vox_json_str(body, "customer_reference"),
	                 "0b0e1c8a-order");
	cr_assert_str_eq(path_str(body, "end_user", "admin", "entity_name"),
	                 "Analytical Ltd");
	cr_assert_str_eq(
	        path_str(body, "end_user", "admin", "authorized_person_name"),
	        "Ada Lovelace");
	cr_assert_str_eq(path_str(body, "end_user", "admin", "account_number"),
	                 ACCOUNT);
	cr_assert_str_eq(path_str(body, "end_user", "admin", "pin_passcode"),
	                 PIN);
	cr_assert_str_eq(
	        path_str(body, "end_user", "location", "street_address"),
	        "1 Main St");
	cr_assert_str_eq(path_str(body, "end_user", "location", "locality"),
	                 "San Francisco");
	cr_assert_str_eq(
	        path_str(body, "end_user", "location", "administrative_area"),
	        "CA");
	cr_assert_str_eq(path_str(body, "end_user", "location", "postal_code"),
	                 "94105");
	cr_assert_str_eq(path_str(body, "end_user", "location", "country_code"),
	                 "US");
	cr_assert_str_eq(path_str(body, "activation_settings", NULL,
	                          "foc_datetime_requested"),
	                 "2026-12-14T14:00:00Z");
	cr_assert_str_eq(path_str(body, "documents", NULL, "loa"), "doc-loa");
	cr_assert_str_eq(path_str(body, "documents", NULL, "invoice"),
	                 "doc-invoice");
	json_decref(body);
}

Test(carrier_port_body, patch_carries_only_what_is_set)
{
	vox_carrier_port_req_t req = {.pin = "0100"};
	vox_error_t err;
	json_t *body = vox_carrier_port_body(&req, false, &err);

	cr_assert_not_null(body, "%s", err.message);
	cr_assert_null(json_object_get(body, "phone_numbers"));
	cr_assert_null(json_object_get(body, "customer_reference"));
	cr_assert_null(json_object_get(body, "documents"));
	cr_assert_null(json_object_get(body, "activation_settings"));
	cr_assert_null(
	        json_object_get(json_object_get(body, "end_user"), "location"));
	cr_assert_str_eq(path_str(body, "end_user", "admin", "pin_passcode"),
	                 "0100");
	cr_assert_eq(json_object_size(json_object_get(
	                     json_object_get(body, "end_user"), "admin")),
	             1);
	json_decref(body);

	req = (vox_carrier_port_req_t){0};
	body = vox_carrier_port_body(&req, false, &err);
	cr_assert_not_null(body, "%s", err.message);
	cr_assert_eq(json_object_size(body), 0);
	json_decref(body);
}

Test(carrier_port_body, limits_at_their_maximum)
{
	static const char *numbers[VOX_CARRIER_PORT_MAX];
	static char storage[VOX_CARRIER_PORT_MAX][24];
	vox_carrier_port_req_t req = full_req();
	char name[1025], pin[17], account[65], ref[256];
	vox_error_t err;
	json_t *body;

	for (int k = 0; k < VOX_CARRIER_PORT_MAX; k++) {
		snprintf(storage[k], sizeof(storage[k]), "+1415555%04d", k);
		numbers[k] = storage[k];
	}
	memset(name, 'n', 1024);
	name[1024] = '\0';
	memset(pin, '7', 16);
	pin[16] = '\0';
	memset(account, 'a', 64);
	account[64] = '\0';
	memset(ref, 'r', 255);
	ref[255] = '\0';
	req.e164s = numbers;
	req.n = VOX_CARRIER_PORT_MAX;
	req.authorized_name = req.business_name = name;
	req.pin = pin;
	req.account_number = account;
	req.customer_reference = ref;
	body = vox_carrier_port_body(&req, true, &err);
	cr_assert_not_null(body, "%s", err.message);
	cr_assert_eq(json_array_size(json_object_get(body, "phone_numbers")),
	             VOX_CARRIER_PORT_MAX);
	cr_assert_eq(strlen(path_str(body, "end_user", "admin",
	                             "authorized_person_name")),
	             1024);
	json_decref(body);
}

/* One past each limit, and shapes we refuse: VOX_ERR_INVALID, and the
 * message never holds the secrets. */
Test(carrier_port_body, refusals_name_the_field_never_the_value)
{
	static const char *numbers[VOX_CARRIER_PORT_MAX + 1];
	static const char *const bad_number[] = {"4155550100"};
	char long_name[1026], long_pin[18], long_account[66];
	vox_carrier_port_req_t req;
	vox_error_t err;

	memset(long_name, 'n', 1025);
	long_name[1025] = '\0';
	memset(long_pin, '7', 17);
	long_pin[17] = '\0';
	memset(long_account, 'a', 65);
	long_account[65] = '\0';
	for (int k = 0; k <= VOX_CARRIER_PORT_MAX; k++)
		numbers[k] = "+14155550100";

#define REFUSED(with_numbers, field, value, needle)                            \
	do {                                                                   \
		req = full_req();                                              \
		req.field = value;                                             \
		cr_assert_null(                                                \
		        vox_carrier_port_body(&req, with_numbers, &err),       \
		        #field " accepted");                                   \
		cr_assert_eq(err.code, VOX_ERR_INVALID, #field);               \
		cr_assert_not_null(strstr(err.message, needle), "%s",          \
		                   err.message);                               \
		cr_assert_null(strstr(err.message, PIN), "%s", err.message);   \
		cr_assert_null(strstr(err.message, ACCOUNT), "%s",             \
		               err.message);                                   \
	} while (0)

	REFUSED(true, n, 0, "numbers");
	REFUSED(true, n, VOX_CARRIER_PORT_MAX + 1, "numbers");
	REFUSED(true, e164s, bad_number, "E.164");
	REFUSED(true, customer_reference, NULL, "customer_reference");
	REFUSED(true, customer_reference, "", "customer_reference");
	REFUSED(true, authorized_name, long_name, "authorized_name");
	REFUSED(true, authorized_name, "", "authorized_name");
	REFUSED(true, authorized_name, "bad\xff utf8", "authorized_name");
	REFUSED(true, business_name, "tab\there", "business_name");
	REFUSED(true, pin, long_pin, "PIN");
	REFUSED(true, pin, "0100\n", "PIN");
	REFUSED(false, pin, "", "PIN");
	REFUSED(true, account_number, long_account, "account number");
	REFUSED(false, account_number, "caf\xc3\xa9", "account number");
	REFUSED(true, foc_date, "2026-12-1", "foc_date");
	REFUSED(true, foc_date, "2026/12/14", "foc_date");
	REFUSED(true, service_address_json, "[1]", "service_address_json");
	REFUSED(true, service_address_json, "{", "service_address_json");
	REFUSED(true, service_address_json, "{\"street\":1}", "street");
	REFUSED(true, loa_document_id, "", "LOA");
	REFUSED(true, invoice_document_id, "a\nb", "invoice");
#undef REFUSED

	/* the count check needs the array too */
	req = full_req();
	req.e164s = numbers;
	req.n = VOX_CARRIER_PORT_MAX + 1;
	cr_assert_null(vox_carrier_port_body(&req, true, &err));
	/* without numbers (PATCH) they are not looked at */
	req.e164s = NULL;
	req.n = 0;
	req.customer_reference = NULL;
	json_decref(vox_carrier_port_body(&req, false, &err));
}

/* ---- the answers ---- */

Test(carrier_port_answer, portability)
{
	static const char body[] =
	        "{\"data\":["
	        "{\"phone_number\":\"+14155550105\",\"portable\":true,"
	        "\"fast_portable\":true,\"not_portable_reason\":null,"
	        "\"losing_carrier\":{\"name\":\"Beta "
	        "Telecom\",\"spid\":\"2222\"},"
	        "\"phone_number_type\":\"local\",\"requirements\":"
	        "{\"pin_required\":false,\"account_number_required\":true}},"
	        "{\"phone_number\":\"+14155550100\",\"portable\":true,"
	        "\"fast_portable\":false,\"not_portable_reason\":null,"
	        "\"losing_carrier\":{\"name\":\"Acme "
	        "Wireless\",\"spid\":\"1111\"},"
	        "\"phone_number_type\":\"local\",\"requirements\":"
	        "{\"pin_required\":true,\"account_number_required\":true}},"
	        "{\"phone_number\":\"+14155550109\",\"portable\":false,"
	        "\"fast_portable\":false,\"not_portable_reason\":"
	        "\"carrier_not_supported\",\"losing_carrier\":null},"
	        "{\"phone_number\":\"+14155550108\",\"portable\":\"yes\"},"
	        "{\"phone_number\":\"+19995550100\",\"portable\":true}"
	        "]}";
	const char *const asked[] = {"+14155550100", "+14155550105",
	                             "+14155550109", "+14155550108",
	                             "+14155550107"};
	vox_carrier_portability_t out[5];
	vox_error_t err;

	cr_assert_eq(vox_carrier_parse_portability(body, strlen(body), asked, 5,
	                                           out, &err),
	             0, "%s", err.message);
	cr_assert_str_eq(out[0].e164, "+14155550100");
	cr_assert(out[0].portable);
	cr_assert_not(out[0].fast_portable);
	cr_assert_str_eq(out[0].not_portable_reason, "");
	cr_assert_str_eq(out[0].losing_carrier, "Acme Wireless");
	cr_assert_str_eq(out[0].spid, "1111");
	cr_assert_str_eq(out[0].number_type, "local");
	cr_assert(out[0].pin_required);
	cr_assert(out[0].account_number_required);

	cr_assert(out[1].portable && out[1].fast_portable);
	cr_assert_str_eq(out[1].losing_carrier, "Beta Telecom");
	cr_assert_not(out[1].pin_required);

	cr_assert_not(out[2].portable);
	cr_assert_str_eq(out[2].not_portable_reason, "carrier_not_supported");
	cr_assert_str_eq(out[2].losing_carrier, "");

	/* malformed: skipped, as if not answered */
	cr_assert_not(out[3].portable);
	cr_assert_str_eq(out[3].not_portable_reason, "number_not_found");
	/* not in the answer */
	cr_assert_str_eq(out[4].e164, "+14155550107");
	cr_assert_not(out[4].portable);
	cr_assert_str_eq(out[4].not_portable_reason, "number_not_found");
}

Test(carrier_port_answer, portability_unreadable_and_limits)
{
	static const char *asked[VOX_CARRIER_PORT_CHECK_MAX + 1];
	static vox_carrier_portability_t out[VOX_CARRIER_PORT_CHECK_MAX + 1];
	static const char no_reason[] =
	        "{\"data\":[{\"phone_number\":\"+14155550100\","
	        "\"portable\":false}]}";
	vox_error_t err;

	for (int k = 0; k <= VOX_CARRIER_PORT_CHECK_MAX; k++)
		asked[k] = "+14155550100";
	cr_assert_eq(
	        vox_carrier_parse_portability("nope", 4, asked, 1, out, &err),
	        VOX_ERR_UNAVAILABLE);
	cr_assert(err.retriable);
	cr_assert_eq(vox_carrier_parse_portability("{\"data\":{}}", 11, asked,
	                                           1, out, &err),
	             VOX_ERR_UNAVAILABLE);
	cr_assert_eq(vox_carrier_parse_portability("{\"data\":[]}", 11, asked,
	                                           VOX_CARRIER_PORT_CHECK_MAX,
	                                           out, &err),
	             0);
	cr_assert_str_eq(
	        out[VOX_CARRIER_PORT_CHECK_MAX - 1].not_portable_reason,
	        "number_not_found");
	cr_assert_eq(vox_carrier_parse_portability(
	                     "{\"data\":[]}", 11, asked,
	                     VOX_CARRIER_PORT_CHECK_MAX + 1, out, &err),
	             VOX_ERR_INVALID);
	/* not portable without a reason: "unknown", never "" */
	cr_assert_eq(vox_carrier_parse_portability(no_reason, strlen(no_reason),
	                                           asked, 1, out, &err),
	             0);
	cr_assert_str_eq(out[0].not_portable_reason, "unknown");
}

Test(carrier_port_answer, order)
{
	static const char body[] =
	        "{\"data\":{\"id\":\"po-1\",\"status\":{\"value\":"
	        "\"exception\"},"
	        "\"activation_settings\":{\"foc_datetime_actual\":null},"
	        "\"exceptions\":[{\"code\":\"wrong_pin\",\"field\":"
	        "\"end_user.pin\",\"message\":\"The PIN does not match.\"},"
	        "{\"code\":\"name_mismatch\",\"field\":"
	        "\"end_user.authorized_name\"},{\"field\":\"x\"}]}}";
	static const char confirmed[] =
	        "{\"data\":{\"id\":\"po-2\",\"status\":\"foc-date-confirmed\","
	        "\"activation_settings\":{\"foc_datetime_actual\":"
	        "\"2026-12-14T14:00:00Z\"}}}";
	vox_carrier_port_t out;
	vox_error_t err;

	cr_assert_eq(vox_carrier_parse_port(body, strlen(body), &out, &err), 0,
	             "%s", err.message);
	cr_assert_str_eq(out.id, "po-1");
	cr_assert_str_eq(out.status, "exception");
	cr_assert_str_eq(out.foc_date, "");
	cr_assert_eq(out.n_exceptions, 2); /* the one without a code dropped */
	cr_assert_str_eq(out.exceptions[0].code, "wrong_pin");
	cr_assert_str_eq(out.exceptions[0].field, "end_user.pin");
	cr_assert_str_eq(out.exceptions[1].code, "name_mismatch");

	cr_assert_eq(vox_carrier_parse_port(confirmed, strlen(confirmed), &out,
	                                    &err),
	             0, "%s", err.message);
	cr_assert_str_eq(out.status, "foc-date-confirmed");
	cr_assert_str_eq(out.foc_date, "2026-12-14T14:00:00Z");
	cr_assert_eq(out.n_exceptions, 0);
}

Test(carrier_port_answer, order_exceptions_kept_to_the_maximum)
{
	json_t *list = json_array(), *doc;
	char *body;
	vox_carrier_port_t out;
	vox_error_t err;

	for (int k = 0; k < VOX_CARRIER_PORT_EXCEPTIONS_MAX + 3; k++)
		json_array_append_new(list, json_pack("{s:s,s:s}", "code",
		                                      "wrong_pin", "field",
		                                      "end_user.pin"));
	doc = json_pack("{s:{s:s,s:{s:s},s:o}}", "data", "id", "po-3", "status",
	                "value", "exception", "exceptions", list);
	body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	cr_assert_not_null(body);
	cr_assert_eq(vox_carrier_parse_port(body, strlen(body), &out, &err), 0,
	             "%s", err.message);
	cr_assert_eq(out.n_exceptions, VOX_CARRIER_PORT_EXCEPTIONS_MAX);
	free(body);
}

Test(carrier_port_answer, order_unreadable)
{
	static const char *const bodies[] = {
	        "",
	        "[]",
	        "{\"data\":{\"status\":{\"value\":\"submitted\"}}}",
	        "{\"data\":{\"id\":\"\",\"status\":\"submitted\"}}",
	        "{\"data\":{\"id\":\"a\\nb\",\"status\":\"submitted\"}}",
	        "{\"data\":{\"id\":\"po\",\"status\":{\"value\":\"draft\"}}}",
	        "{\"data\":{\"id\":\"po\",\"status\":{\"value\":\"done\"}}}",
	        "{\"data\":{\"id\":\"po\"}}",
	};
	vox_carrier_port_t out;
	vox_error_t err;

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		cr_assert_eq(vox_carrier_parse_port(
		                     bodies[i], strlen(bodies[i]), &out, &err),
		             VOX_ERR_UNAVAILABLE, "body %zu", i);
		cr_assert(err.retriable);
		cr_assert_str_eq(out.id, "");
	}
}

/* ---- the calls: argument checks, and nothing secret logged ---- */

static vox_carrier_t *dead_carrier(void)
{
	vox_carrier_conf_t conf = {.base_url = DEAD_URL,
	                           .api_key = "test-key",
	                           .max_attempts = 2,
	                           .backoff_ms = 1,
	                           .timeout_ms = 300};
	vox_error_t err;
	vox_carrier_t *c = vox_carrier_new(&conf, &err);

	cr_assert_not_null(c, "%s", err.message);
	return c;
}

Test(carrier_port_call, bad_arguments_send_nothing)
{
	vox_carrier_t *c = dead_carrier();
	vox_carrier_port_req_t req = full_req();
	const char *const bad[] = {"+1415555010x"};
	vox_carrier_portability_t checks[1];
	vox_carrier_port_t out;
	vox_error_t err;

	cr_assert_eq(vox_carrier_port_create(c, &req, NULL, &out, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_port_create(c, &req, "a\r\nb", &out, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_port_update(c, NULL, &req, "k", &out, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_port_update(c, "po", &req, NULL, &out, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_port_cancel(c, "", &out, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_port_get(c, "a\nb", &out, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_portability(c, bad, 1, checks, &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(vox_carrier_portability(c, bad, 0, checks, &err),
	             VOX_ERR_INVALID);
	req.pin = "0100\t";
	cr_assert_eq(vox_carrier_port_create(c, &req, "k", &out, &err),
	             VOX_ERR_INVALID);
	vox_carrier_destroy(c);
}

/* A create that fails (no carrier) and is retried logs a retry line: it
 * holds neither the PIN nor the account number, and neither does the
 * error. stderr (vox_log's) is captured into a file for the call. */
Test(carrier_port_call, secrets_in_no_log_line)
{
	vox_carrier_t *c = dead_carrier();
	vox_carrier_port_req_t req = full_req();
	char path[] = "/tmp/test_carrier_port_XXXXXX", text[8192];
	vox_carrier_port_t out;
	vox_error_t err;
	int fd = mkstemp(path), saved = dup(2), rc;
	ssize_t got;

	cr_assert_geq(fd, 0);
	cr_assert_geq(saved, 0);
	fflush(stderr);
	dup2(fd, 2);
	rc = vox_carrier_port_create(c, &req, "order-1:1", &out, &err);
	req.pin = NULL;
	vox_carrier_port_update(c, "po-1", &req, "order-1:2", &out, &err);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	cr_assert_neq(rc, 0);
	cr_assert(err.retriable, "%s", err.message);
	cr_assert_null(strstr(err.message, PIN));
	cr_assert_null(strstr(err.message, ACCOUNT));
	lseek(fd, 0, SEEK_SET);
	got = read(fd, text, sizeof(text) - 1);
	close(fd);
	unlink(path);
	cr_assert_geq(got, 0);
	text[got] = '\0';
	cr_assert_not_null(strstr(text, "retrying"), "no retry logged: %s",
	                   text);
	cr_assert_null(strstr(text, PIN), "%s", text);
	cr_assert_null(strstr(text, ACCOUNT), "%s", text);
	vox_carrier_destroy(c);
}
