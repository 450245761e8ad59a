/*
 * The porting API against the real stack and the carrier sandbox
 * (docs/PORTING.md): portability checks per number (ours and the
 * carrier's), drafts with sealed secrets (never answered, bound to their
 * row), every rule and bad input a clear 4xx with NOTHING stored (rows
 * counted before and after), tenancy (404), PATCH states (409), submit and
 * cancel commands on vox.cmd.porting with their operations, the FOC
 * windows, and the carrier's signed webhooks. One ingress for the suite,
 * pointed at VOX_TEST_PORTING_CARRIER_URL when set (a sandbox with porting
 * on another port), else at the stack's VOX_CARRIER_URL. No porting worker
 * runs here: states past draft are set in SQL where a test needs them.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carrier_helpers.h"
#include "helpers.h"
#include "vox_crypto.h"
#include "vox_json.h"
#include "vox_porting.h"

#define ENC_KEY                                                                \
	"3:5c2e4a6b8d0f1e3c5a7b9d1f3e5c7a9b0d2f4e6a8c0b2d4f6e8a0c2e4b6d8f0a"
#define TOPIC "vox.cmd.porting"

static int port;
static pid_t ingress;

static bool ingress_up(void *arg)
{
	(void)arg;
	return t_http("GET", port, "/healthz", NULL, NULL, NULL) == 200;
}

static void suite_start(void)
{
	static char port_env[64], carrier_env[600];
	const char *url = getenv("VOX_TEST_PORTING_CARRIER_URL");

	port = t_free_port();
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", port);
	snprintf(carrier_env, sizeof(carrier_env), "VOX_CARRIER_URL=%s",
	         url && *url ? url : t_env("VOX_CARRIER_URL"));
	const char *const env[] = {port_env,
	                           carrier_env,
	                           "VOX_RATE_COMMAND=1000",
	                           "VOX_RATE_READ=1000",
	                           "VOX_ENCRYPTION_KEY=" ENC_KEY,
	                           NULL};
	ingress = t_spawn("ingress", "porting-api-ingress.log", env);
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
}

static void suite_stop(void)
{
	int status = t_stop(ingress, SIGTERM, 20000);

	cr_expect_eq(status, 0, "ingress exit status %d", status);
}

TestSuite(porting_api, .init = suite_start, .fini = suite_stop, .timeout = 180);

/* ---------------------------------------------------------------- helpers */

static int call(const char *method, const char *key, const char *path,
                const char *body, const char *idem, json_t **answer)
{
	char auth[96], ik[128], *text = NULL;
	const char *headers[4] = {auth, "Content-Type: application/json"};
	int status;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	if (idem != NULL) {
		snprintf(ik, sizeof(ik), "Idempotency-Key: %s", idem);
		headers[2] = ik;
	}
	status = t_http_h(method, port, path, body, headers, &text, NULL);
	*answer = text && *text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return status;
}

static const char *error_code(const json_t *answer)
{
	const char *code =
	        vox_json_str(json_object_get(answer, "error"), "code");

	return code ? code : "(none)";
}

static const char *error_detail(const json_t *answer, const char *name)
{
	const char *v = vox_json_str(
	        json_object_get(json_object_get(answer, "error"), "details"),
	        name);

	return v ? v : "(none)";
}

static long long count_rows(const char *sql, const char *param)
{
	vox_pg_t *pg = t_pg();
	long long n = t_pg_count(pg, sql, param);

	vox_pg_destroy(pg);
	return n;
}

static void sql_run(const char *sql, int n, const char *const *params)
{
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	cr_assert_eq(vox_pg_exec(pg, sql, n, params, NULL, &err), 0, "%s",
	             err.message);
	vox_pg_destroy(pg);
}

/* Everything porting stored for the account: orders, numbers, history. */
static long long stored(const char *account)
{
	return count_rows("SELECT (SELECT count(*) FROM porting_orders WHERE "
	                  "account_id = $1::uuid) + (SELECT count(*) FROM "
	                  "porting_order_numbers n JOIN porting_orders o ON "
	                  "o.id = n.order_id WHERE o.account_id = $1::uuid) + "
	                  "(SELECT count(*) FROM porting_order_events e JOIN "
	                  "porting_orders o ON o.id = e.order_id WHERE "
	                  "o.account_id = $1::uuid)",
	                  account);
}

/* A fresh block of NANP numbers in the 555 exchange (never in the
 * sandbox's inventory), last digit chosen by the caller: 0-4 Acme
 * Wireless (PIN), 5-8 Beta Telecom, 9 not portable. */
static void number(char out[24], int last_digit)
{
	static const char *const areas[] = {
	        "212", "312", "415", "617", "646", "713", "206", "303",
	        "404", "503", "305", "512", "602", "702", "801", "919",
	        "615", "704", "214", "310", "408", "510", "650", "718",
	        "773", "847", "917", "201", "202", "216"};
	static unsigned seq;
	static int area = -1, base;

	if (area < 0) {
		srand((unsigned)time(NULL) ^ (unsigned)getpid());
		area = rand() % 30;
		base = rand() % 1000;
	}
	seq++;
	snprintf(out, 24, "+1%s555%03d%d", areas[(area + seq / 1000) % 30],
	         (base + seq) % 1000, last_digit);
}

/* Makes e164 the account's (active) as a bought number would be. Tests
 * that do must disown() it at the end: an owned number refuses every
 * later order holding it (number_already_owned), in any test run. */
static void own(const char *e164, const char *account)
{
	const char *params[] = {e164, account};

	sql_run("INSERT INTO numbers (e164, country, status, account_id) "
	        "VALUES ($1, 'US', 'active', $2::uuid) ON CONFLICT (country, "
	        "e164) DO UPDATE SET status = 'active', account_id = "
	        "$2::uuid",
	        2, params);
}

static void disown(const char *e164, const char *account)
{
	const char *params[] = {e164, account};

	sql_run("UPDATE numbers SET status = 'released', released_at = now() "
	        "WHERE e164 = $1 AND account_id = $2::uuid",
	        2, params);
}

/* A date n business days after today (UTC), as text. */
static void business_day(int n, char out[11])
{
	vox_date_t today = vox_date_of_unix((long long)time(NULL));
	vox_date_t d = vox_porting_add_business_days(&today, n);

	vox_date_format(&d, out);
}

/* A document row for account, as the documents API would leave it
 * (inserted in SQL: these tests are about orders). */
static void document(const char *account, const char *kind, char id[40])
{
	vox_uuid7(id);
	const char *params[] = {id, account, kind};
	sql_run("INSERT INTO documents (id, account_id, kind, filename, "
	        "content_type, size_bytes, sha256, storage_key) VALUES "
	        "($1::uuid, $2::uuid, $3, $3 || '.pdf', 'application/pdf', "
	        "1234, decode(repeat('ab', 32), 'hex'), 'documents/' || $2 || "
	        "'/' || $1)",
	        3, params);
}

/* A complete order body for one Acme number (PIN 4 last digits). */
static char *full_body(const char *e164, const char *loa, const char *inv)
{
	char foc[11];
	json_t *body;
	char *text;

	business_day(5, foc);
	body = json_pack(
	        "{s:[s], s:{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}, s:s, s:s}, "
	        "s:s, s:{s:s, s:s}, s:s}",
	        "phone_numbers", e164, "end_user", "authorized_name",
	        "Ada Lovelace", "business_name", "Analytical Ltd",
	        "service_address", "street", "1 Main St", "locality",
	        "San Francisco", "administrative_area", "CA", "postal_code",
	        "94105", "country", "US", "account_number", "ACC-123456", "pin",
	        e164 + strlen(e164) - 4, "requested_foc_date", foc, "documents",
	        "loa", loa, "invoice", inv, "customer_reference", "ticket 42");
	text = vox_json_dump(body);
	json_decref(body);
	return text;
}

/* Creates a draft from body (201 expected): its id. */
static void draft(const char *key, const char *body, char id[40])
{
	json_t *ans;
	int status = call("POST", key, "/v1/porting-orders", body, NULL, &ans);

	cr_assert_eq(status, 201, "status %d (%s %s %s) for %.200s", status,
	             error_code(ans), error_detail(ans, "rule"),
	             error_detail(ans, "phone_number"), body);
	snprintf(id, 40, "%s", vox_json_str(ans, "id"));
	json_decref(ans);
}

/* ---------------------------------------------------------------- checks */

/* Strings of n characters of c (UTF-8 multibyte when wide). */
static char *repeat(const char *unit, int n)
{
	size_t len = strlen(unit);
	char *s = malloc(len * (size_t)n + 1);

	for (int i = 0; i < n; i++)
		memcpy(s + len * (size_t)i, unit, len);
	s[len * (size_t)n] = '\0';
	return s;
}

Test(porting_api, portability_checks_answer_per_number)
{
	char account[40], key[64], acme[24], beta[24], nine[24], owned[24];
	char body[512];
	json_t *ans, *data;
	int status;

	t_account("developer", account, key);
	number(acme, 0);
	number(beta, 5);
	number(nine, 9);
	number(owned, 1);
	own(owned, account);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\", \"%s\", \"%s\", \"%s\", "
	         "\"+1 555\", \"+442079460000\"]}",
	         acme, beta, nine, owned);
	status = call("POST", key, "/v1/porting/portability-checks", body, NULL,
	              &ans);
	cr_assert_eq(status, 200, "%d %s", status, error_code(ans));
	data = json_object_get(ans, "data");
	cr_assert_eq(json_array_size(data), 6);
	json_t *a = json_array_get(data, 0), *b = json_array_get(data, 1);

	cr_expect_str_eq(vox_json_str(a, "phone_number"), acme);
	cr_expect(json_is_true(json_object_get(a, "portable")));
	cr_expect_str_eq(
	        vox_json_str(json_object_get(a, "losing_carrier"), "name"),
	        "Acme Wireless");
	cr_expect(json_is_true(json_object_get(
	        json_object_get(a, "requirements"), "pin_required")));
	cr_expect(json_is_null(json_object_get(a, "not_portable_reason")));
	cr_expect(json_is_true(json_object_get(b, "fast_portable")));
	cr_expect_str_eq(
	        vox_json_str(json_object_get(b, "losing_carrier"), "name"),
	        "Beta Telecom");
	static const char *const reasons[] = {NULL,
	                                      NULL,
	                                      "carrier_not_supported",
	                                      "already_on_platform",
	                                      "invalid_number",
	                                      "country_not_supported"};
	for (size_t i = 2; i < 6; i++) {
		json_t *item = json_array_get(data, i);

		cr_expect(json_is_false(json_object_get(item, "portable")),
		          "item %zu", i);
		cr_expect_str_eq(vox_json_str(item, "not_portable_reason"),
		                 reasons[i], "item %zu", i);
	}
	cr_expect_str_eq(vox_json_str(json_array_get(data, 4), "phone_number"),
	                 "+1 555");
	json_decref(ans);
	disown(owned, account);
	/* the list itself must be right */
	status = call("POST", key, "/v1/porting/portability-checks",
	              "{\"phone_numbers\": []}", NULL, &ans);
	cr_expect_eq(status, 400);
	json_decref(ans);
	status = call("POST", key, "/v1/porting/portability-checks",
	              "{\"phone_numbers\": [1]}", NULL, &ans);
	cr_expect_eq(status, 400);
	json_decref(ans);
	/* an item that is not a number is answered as sent, whatever its
	 * length in bytes: 64 three-byte characters, 20 of them, an ASCII
	 * one of 64; one answer per item, in order */
	char *wide = repeat("\u20ac", 64), *narrow = repeat("\u20ac", 20),
	     *ascii = repeat("x", 64);
	json_t *list = json_pack("{s:[s, s, s, s]}", "phone_numbers", wide,
	                         narrow, acme, ascii);
	char *text = vox_json_dump(list);
	status = call("POST", key, "/v1/porting/portability-checks", text, NULL,
	              &ans);
	cr_assert_eq(status, 200, "%d %s", status, error_code(ans));
	data = json_object_get(ans, "data");
	cr_assert_eq(json_array_size(data), 4, "%zu answers for 4",
	             json_array_size(data));
	cr_expect_str_eq(vox_json_str(json_array_get(data, 0), "phone_number"),
	                 wide);
	cr_expect_str_eq(vox_json_str(json_array_get(data, 1), "phone_number"),
	                 narrow);
	cr_expect_str_eq(vox_json_str(json_array_get(data, 2), "phone_number"),
	                 acme);
	cr_expect_str_eq(vox_json_str(json_array_get(data, 3), "phone_number"),
	                 ascii);
	cr_expect_str_eq(
	        vox_json_str(json_array_get(data, 1), "not_portable_reason"),
	        "invalid_number");
	json_decref(ans);
	json_decref(list);
	free(text);
	free(wide);
	free(narrow);
	free(ascii);
	/* a viewer may not */
	char viewer[64];
	t_key(account, "viewer", viewer, NULL);
	status = call("POST", viewer, "/v1/porting/portability-checks", body,
	              NULL, &ans);
	cr_expect_eq(status, 403);
	json_decref(ans);
}

/* ---------------------------------------------------------------- drafts */

Test(porting_api, draft_holds_secrets_sealed_and_never_answers_them)
{
	char account[40], key[64], e164[24], id[40], loa[40], inv[40];
	char *body, *text = NULL, path[96];
	json_t *ans, *eu;
	int status;

	t_account("developer", account, key);
	document(account, "loa", loa);
	document(account, "invoice", inv);
	number(e164, 3);
	body = full_body(e164, loa, inv);
	status = call("POST", key, "/v1/porting-orders", body, NULL, &ans);
	cr_assert_eq(status, 201, "%d %s", status, error_code(ans));
	snprintf(id, sizeof(id), "%s", vox_json_str(ans, "id"));
	text = vox_json_dump(ans);
	cr_expect_null(strstr(text, "ACC-123456"), "%s", text);
	cr_expect_null(strstr(text, "\"pin\""), "%s", text);
	cr_expect_null(strstr(text, "\"account_number\""), "%s", text);
	free(text);
	eu = json_object_get(ans, "end_user");
	cr_expect_str_eq(vox_json_str(eu, "account_number_last2"), "56");
	cr_expect_str_eq(vox_json_str(eu, "pin_last2"), e164 + 10);
	cr_expect_str_eq(vox_json_str(ans, "status"), "draft");
	cr_expect_str_eq(vox_json_str(ans, "losing_carrier"), "Acme Wireless");
	json_t *num = json_array_get(json_object_get(ans, "phone_numbers"), 0);
	cr_expect_str_eq(vox_json_str(num, "phone_number"), e164);
	cr_expect_str_eq(vox_json_str(num, "status"), "draft");
	cr_expect_str_eq(vox_json_str(num, "losing_carrier"), "Acme Wireless");
	json_decref(ans);
	/* GET says the same, without the secrets */
	snprintf(path, sizeof(path), "/v1/porting-orders/%s", id);
	status = call("GET", key, path, NULL, NULL, &ans);
	cr_assert_eq(status, 200);
	text = vox_json_dump(ans);
	cr_expect_null(strstr(text, "ACC-123456"), "%s", text);
	free(text);
	json_decref(ans);
	/* stored: country and type per number; the secrets sealed */
	cr_expect_eq(count_rows("SELECT count(*) FROM porting_order_numbers "
	                        "WHERE order_id = $1::uuid AND country = 'US' "
	                        "AND number_type = 'local' AND losing_carrier "
	                        "= 'Acme Wireless'",
	                        id),
	             1);
	cr_expect_eq(count_rows("SELECT count(*) FROM porting_orders WHERE id "
	                        "= $1::uuid AND position('ACC-123456'::bytea "
	                        "IN account_number_enc) = 0 AND "
	                        "account_number_last2 = '56'",
	                        id),
	             1);
	/* the ciphertext opens with its own aad only */
	vox_pg_t *pg = t_pg();
	PGresult *res = NULL;
	vox_error_t err;
	const char *params[] = {id};
	cr_assert_eq(vox_pg_exec(pg,
	                         "SELECT encode(account_number_enc, 'hex'), "
	                         "encode(pin_enc, 'hex') FROM porting_orders "
	                         "WHERE id = $1::uuid",
	                         1, params, &res, &err),
	             0);
	vox_crypto_keyring_t *ring =
	        vox_crypto_keyring_new(ENC_KEY, NULL, &err);
	cr_assert_not_null(ring);
	const char *hex = PQgetvalue(res, 0, 0);
	size_t n = strlen(hex) / 2;
	unsigned char *sealed = malloc(n);
	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &sealed[i]);
	char aad[200], *plain = NULL;
	size_t plain_len;
	vox_porting_aad(aad, sizeof(aad), "account_number", id, account);
	cr_assert_eq(vox_crypto_open(ring, sealed, n, aad, strlen(aad), &plain,
	                             &plain_len, &err),
	             0, "%s", err.message);
	cr_expect_str_eq(plain, "ACC-123456");
	free(plain);
	plain = NULL;
	/* another field, order or account: it does not open */
	vox_porting_aad(aad, sizeof(aad), "pin", id, account);
	cr_expect_neq(vox_crypto_open(ring, sealed, n, aad, strlen(aad), &plain,
	                              &plain_len, &err),
	              0);
	vox_porting_aad(aad, sizeof(aad), "account_number", id,
	                "00000000-0000-7000-8000-000000000000");
	cr_expect_neq(vox_crypto_open(ring, sealed, n, aad, strlen(aad), &plain,
	                              &plain_len, &err),
	              0);
	free(sealed);
	vox_crypto_keyring_destroy(ring);
	PQclear(res);
	vox_pg_destroy(pg);
	free(body);
	/* and the ingress never logged them (its log is in the cwd) */
	FILE *log = fopen("porting-api-ingress.log", "r");
	char line[4096];
	cr_assert_not_null(log);
	while (fgets(line, sizeof(line), log) != NULL)
		cr_expect_null(strstr(line, "ACC-123456"), "%s", line);
	fclose(log);
}

/* One refused request: status, code, rule; nothing stored. */
static void refused(const char *key, const char *account, const char *method,
                    const char *path, const char *body, int want_status,
                    const char *want_code, const char *want_rule)
{
	long long before = stored(account);
	json_t *ans;
	int status = call(method, key, path, body, NULL, &ans);

	cr_expect_eq(status, want_status, "%s %s: %d (%s) for %.300s", method,
	             path, status, error_code(ans), body);
	cr_expect_str_eq(error_code(ans), want_code, "for %.300s", body);
	if (want_rule != NULL)
		cr_expect_str_eq(error_detail(ans, "rule"), want_rule,
		                 "for %.300s", body);
	cr_expect_eq(stored(account), before, "rows stored for %.300s", body);
	json_decref(ans);
}

/* A body of count numbers (a duplicate when dup). */
static char *numbers_body(int count, bool dup)
{
	json_t *list = json_array(), *body;
	char e164[24], *text;

	for (int i = 0; i < count; i++) {
		number(e164, i % 9); /* never a 9 */
		json_array_append_new(list, json_string(e164));
	}
	if (dup)
		json_array_append(list, json_array_get(list, 0));
	body = json_pack("{s:o}", "phone_numbers", list);
	text = vox_json_dump(body);
	json_decref(body);
	return text;
}

Test(porting_api, rules_and_bad_input_store_nothing)
{
	char account[40], key[64], e164[24], nine[24], foc[11], body[1024];
	char *text;

	t_account("developer", account, key);
	number(e164, 2);
	number(nine, 9);
	/* FOC on a weekend, too early, too late */
	vox_date_t today = vox_date_of_unix((long long)time(NULL)), d = today;
	while (vox_date_weekday(&d) != 6 ||
	       vox_date_days(&d) < vox_date_days(&today) + 7)
		d = vox_date_from_days(vox_date_days(&d) + 1);
	vox_date_format(&d, foc);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"requested_foc_date\": "
	         "\"%s\"}",
	         e164, foc);
	refused(key, account, "POST", "/v1/porting-orders", body, 422,
	        "porting_rule_violated", "foc_not_business_day");
	business_day(1, foc);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"requested_foc_date\": "
	         "\"%s\"}",
	         e164, foc);
	refused(key, account, "POST", "/v1/porting-orders", body, 422,
	        "porting_rule_violated", "foc_too_early");
	business_day(25, foc); /* at least 35 calendar days */
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"requested_foc_date\": "
	         "\"%s\"}",
	         e164, foc);
	refused(key, account, "POST", "/v1/porting-orders", body, 422,
	        "porting_rule_violated", "foc_too_late");
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"requested_foc_date\": "
	         "\"2026-02-30\"}",
	         e164);
	refused(key, account, "POST", "/v1/porting-orders", body, 400,
	        "invalid_body", NULL);
	/* 1,001 numbers; a duplicate */
	text = numbers_body(1001, false);
	refused(key, account, "POST", "/v1/porting-orders", text, 422,
	        "porting_rule_violated", "too_many_numbers");
	free(text);
	text = numbers_body(3, true);
	refused(key, account, "POST", "/v1/porting-orders", text, 422,
	        "porting_rule_violated", "duplicate_number");
	free(text);
	/* not portable at the carrier */
	snprintf(body, sizeof(body), "{\"phone_numbers\": [\"%s\", \"%s\"]}",
	         e164, nine);
	refused(key, account, "POST", "/v1/porting-orders", body, 422,
	        "porting_rule_violated", "number_not_portable");
	/* not a number; no numbers; not JSON; unknown fields */
	refused(key, account, "POST", "/v1/porting-orders",
	        "{\"phone_numbers\": [\"+1 not\"]}", 400,
	        "invalid_phone_number", NULL);
	refused(key, account, "POST", "/v1/porting-orders",
	        "{\"phone_numbers\": []}", 400, "invalid_body", NULL);
	refused(key, account, "POST", "/v1/porting-orders", "{}", 400,
	        "invalid_body", NULL);
	refused(key, account, "POST", "/v1/porting-orders", "{\"phone_", 400,
	        "invalid_json", NULL);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"colour\": \"red\"}", e164);
	refused(key, account, "POST", "/v1/porting-orders", body, 400,
	        "invalid_body", NULL);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"end_user\": {\"ssn\": "
	         "\"1\"}}",
	         e164);
	refused(key, account, "POST", "/v1/porting-orders", body, 400,
	        "invalid_body", NULL);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"end_user\": "
	         "{\"service_address\": {\"country\": \"usa\"}}}",
	         e164);
	refused(key, account, "POST", "/v1/porting-orders", body, 400,
	        "invalid_body", NULL);
	/* a document that is not the account's */
	char other[40], okey[64], doc[40];
	t_account("developer", other, okey);
	document(other, "loa", doc);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"documents\": {\"loa\": "
	         "\"%s\"}}",
	         e164, doc);
	refused(key, account, "POST", "/v1/porting-orders", body, 400,
	        "invalid_body", NULL);
	/* control characters in a name, an address, a reference */
	static const char *const controlled[] = {
	        "\"end_user\": {\"authorized_name\": \"Ada\\nLovelace\"}",
	        "\"end_user\": {\"service_address\": {\"street\": "
	        "\"1 Main\\u0007St\"}}",
	        "\"customer_reference\": \"ticket\\t42\"",
	        "\"end_user\": {\"business_name\": \"A\\u007fB\"}",
	};
	for (size_t i = 0; i < 4; i++) {
		snprintf(body, sizeof(body),
		         "{\"phone_numbers\": [\"%s\"], %s}", e164,
		         controlled[i]);
		refused(key, account, "POST", "/v1/porting-orders", body, 400,
		        "invalid_body", NULL);
	}
	/* an invoice is not a letter of authorization, nor the reverse */
	char inv[40], loa[40];
	document(account, "invoice", inv);
	document(account, "loa", loa);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"documents\": {\"loa\": "
	         "\"%s\"}}",
	         e164, inv);
	refused(key, account, "POST", "/v1/porting-orders", body, 400,
	        "invalid_body", NULL);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"documents\": "
	         "{\"invoice\": \"%s\"}}",
	         e164, loa);
	refused(key, account, "POST", "/v1/porting-orders", body, 400,
	        "invalid_body", NULL);
	cr_expect_eq(stored(account), 0);
}

/* Every field of the body with every wrong JSON type, a 100,000-character
 * string and a deep object: a 400 naming the field (or the list's 400),
 * never a 5xx, nothing stored; the same through PATCH of a draft, which
 * stays as it was. */
Test(porting_api, every_field_with_every_wrong_type_is_a_clear_400)
{
	static const char *const paths[] = {
	        "phone_numbers",
	        "phone_numbers.0",
	        "end_user",
	        "end_user.authorized_name",
	        "end_user.business_name",
	        "end_user.service_address",
	        "end_user.service_address.street",
	        "end_user.service_address.locality",
	        "end_user.service_address.administrative_area",
	        "end_user.service_address.postal_code",
	        "end_user.service_address.country",
	        "end_user.account_number",
	        "end_user.pin",
	        "requested_foc_date",
	        "documents",
	        "documents.loa",
	        "documents.invoice",
	        "customer_reference",
	};
	char account[40], key[64], e164[24], id[40], path[96];
	char *huge = repeat("h", 100000);
	json_t *values =
	        json_pack("[i, b, f, [], {}, [i, i], {s:{s:{s:i}}}, s]", 7, 1,
	                  1.5, 1, 2, "a", "b", "c", 1, huge);

	t_account("developer", account, key);
	number(e164, 3);
	snprintf(path, sizeof(path), "{\"phone_numbers\": [\"%s\"]}", e164);
	draft(key, path, id);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s", id);
	for (size_t f = 0; f < sizeof(paths) / sizeof(paths[0]); f++) {
		size_t v;
		json_t *value;

		json_array_foreach(values, v, value)
		{
			char seg_path[96], *seg, *dot;
			json_t *body =
			        json_pack("{s:[s]}", "phone_numbers", e164);
			json_t *obj = body;
			char *text;
			int status;
			json_t *ans;

			/* {} is a right value for an object field */
			if (json_is_object(value) &&
			    json_object_size(value) == 0 &&
			    (strcmp(paths[f], "end_user") == 0 ||
			     strcmp(paths[f], "end_user.service_address") ==
			             0 ||
			     strcmp(paths[f], "documents") == 0)) {
				json_decref(body);
				continue;
			}
			snprintf(seg_path, sizeof(seg_path), "%s", paths[f]);
			seg = seg_path;
			while ((dot = strchr(seg, '.')) != NULL) {
				json_t *next;

				*dot = '\0';
				next = json_object_get(obj, seg);
				if (next == NULL) {
					next = json_object();
					json_object_set_new(obj, seg, next);
				}
				obj = next;
				seg = dot + 1;
			}
			if (json_is_array(obj))
				json_array_set(obj, 0, value);
			else
				json_object_set(obj, seg, value);
			text = vox_json_dump(body);
			for (int patch = 0; patch < 2; patch++) {
				status = call(patch ? "PATCH" : "POST", key,
				              patch ? path
				                    : "/v1/porting-orders",
				              text, NULL, &ans);
				cr_expect(status == 400 || status == 422,
				          "%s %s = %.60s: %d %s",
				          patch ? "PATCH" : "POST", paths[f],
				          text, status, error_code(ans));
				json_decref(ans);
			}
			json_decref(body);
			free(text);
		}
	}
	cr_expect_eq(stored(account), 2, "only the draft and its number");
	cr_expect_eq(count_rows("SELECT count(*) FROM porting_orders WHERE id "
	                        "= $1::uuid AND version = 1",
	                        id),
	             1, "the draft is unchanged");
	json_decref(values);
	free(huge);
}

Test(porting_api, a_replayed_create_answers_the_same_draft_once)
{
	char account[40], key[64], e164[24], body[256], first[40];
	json_t *ans;
	int status;

	t_account("developer", account, key);
	number(e164, 8);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"end_user\": {\"pin\": "
	         "\"QzXw7!\"}}",
	         e164);
	status = call("POST", key, "/v1/porting-orders", body, "porting-idem-1",
	              &ans);
	cr_assert_eq(status, 201, "%d %s", status, error_code(ans));
	snprintf(first, sizeof(first), "%s", vox_json_str(ans, "id"));
	json_decref(ans);
	status = call("POST", key, "/v1/porting-orders", body, "porting-idem-1",
	              &ans);
	cr_expect_eq(status, 201);
	cr_expect_str_eq(vox_json_str(ans, "id"), first);
	json_decref(ans);
	cr_expect_eq(count_rows("SELECT count(*) FROM porting_orders WHERE "
	                        "account_id = $1::uuid",
	                        account),
	             1);
	/* the stored answer holds no secret either */
	cr_expect_eq(count_rows("SELECT count(*) FROM idempotency_keys WHERE "
	                        "account_id = $1::uuid AND response_body::text "
	                        "LIKE '%QzXw7!%'",
	                        account),
	             0);
	/* nor does the request hash: a plain SHA-256 of the canonical body
	 * (whose other fields the stored answer shows) would give a PIN
	 * away by trying them all; it is keyed */
	json_t *doc = json_loads(body, 0, NULL);
	char *canon = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	char *plain = NULL, sha[65];
	cr_assert(asprintf(&plain, "POST\n/v1/porting-orders\n%s", canon) > 0);
	vox_sha256_hex(plain, strlen(plain), sha);
	cr_expect_eq(count_rows("SELECT count(*) FROM idempotency_keys WHERE "
	                        "account_id = $1::uuid AND key = "
	                        "'porting-idem-1'",
	                        account),
	             1);
	char sql[200];
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM idempotency_keys WHERE account_id = "
	         "$1::uuid AND encode(request_hash, 'hex') = '%s'",
	         sha);
	cr_expect_eq(count_rows(sql, account), 0, "the plain hash is stored");
	free(plain);
	free(canon);
	json_decref(doc);
	/* the keyed hash still tells bodies apart: another PIN, same key */
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"end_user\": {\"pin\": "
	         "\"QzXw8!\"}}",
	         e164);
	status = call("POST", key, "/v1/porting-orders", body, "porting-idem-1",
	              &ans);
	cr_expect_eq(status, 422, "%d", status);
	cr_expect_str_eq(error_code(ans), "idempotency_key_reused");
	json_decref(ans);
}

Test(porting_api, one_thousand_numbers_are_accepted)
{
	char account[40], key[64], id[40];
	char *text = numbers_body(1000, false);

	t_account("developer", account, key);
	draft(key, text, id);
	cr_expect_eq(count_rows("SELECT count(*) FROM porting_order_numbers "
	                        "WHERE order_id = $1::uuid",
	                        id),
	             1000);
	free(text);
}

Test(porting_api, every_field_at_its_maximum_and_one_over)
{
	static const struct {
		const char *path; /* in the body */
		const char *unit;
		int max;
	} fields[] = {
	        {"end_user.authorized_name", "é", 200},
	        {"end_user.business_name", "b", 200},
	        {"end_user.service_address.street", "s", 200},
	        {"end_user.service_address.locality", "l", 200},
	        {"end_user.service_address.administrative_area", "a", 200},
	        {"end_user.service_address.postal_code", "9", 200},
	        {"end_user.account_number", "7", 64},
	        {"end_user.pin", "1", 16},
	        {"customer_reference", "r", 200},
	};
	char account[40], key[64], e164[24], id[40];

	t_account("developer", account, key);
	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
		for (int over = 0; over < 2; over++) {
			char *value =
			        repeat(fields[f].unit, fields[f].max + over);
			json_t *body, *obj;
			char *text, path[200], *dot, *seg;

			number(e164, 4);
			body = json_pack("{s:[s]}", "phone_numbers", e164);
			obj = body;
			snprintf(path, sizeof(path), "%s", fields[f].path);
			seg = path;
			while ((dot = strchr(seg, '.')) != NULL) {
				json_t *next;

				*dot = '\0';
				next = json_object_get(obj, seg);
				if (next == NULL) {
					next = json_object();
					json_object_set_new(obj, seg, next);
				}
				obj = next;
				seg = dot + 1;
			}
			json_object_set_new(obj, seg, json_string(value));
			text = vox_json_dump(body);
			if (over == 0) {
				draft(key, text, id);
			} else {
				refused(key, account, "POST",
				        "/v1/porting-orders", text, 400,
				        "invalid_body", NULL);
			}
			json_decref(body);
			free(text);
			free(value);
		}
	/* empty secrets are refused too; control characters in a PIN */
	char body[512];
	number(e164, 4);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"end_user\": {\"pin\": "
	         "\"\"}}",
	         e164);
	refused(key, account, "POST", "/v1/porting-orders", body, 400,
	        "invalid_body", NULL);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"end_user\": {\"pin\": "
	         "\"12\\n4\"}}",
	         e164);
	refused(key, account, "POST", "/v1/porting-orders", body, 400,
	        "invalid_body", NULL);
	/* at least 4 characters: the last two are answered, so a PIN or an
	 * account number of 2 would be answered whole (and 1 too) */
	static const char *const short_secrets[][2] = {
	        {"pin", "7"},
	        {"pin", "73"},
	        {"pin", "739"},
	        {"account_number", "A9"},
	        {"account_number", "A98"},
	};
	for (size_t i = 0; i < 5; i++) {
		number(e164, 4);
		snprintf(body, sizeof(body),
		         "{\"phone_numbers\": [\"%s\"], \"end_user\": {\"%s\": "
		         "\"%s\"}}",
		         e164, short_secrets[i][0], short_secrets[i][1]);
		refused(key, account, "POST", "/v1/porting-orders", body, 400,
		        "invalid_body", NULL);
	}
	number(e164, 4);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"end_user\": {\"pin\": "
	         "\"7391\", \"account_number\": \"A981\"}}",
	         e164);
	json_t *ans;
	cr_assert_eq(call("POST", key, "/v1/porting-orders", body, NULL, &ans),
	             201);
	json_t *eu = json_object_get(ans, "end_user");
	cr_expect_str_eq(vox_json_str(eu, "pin_last2"), "91");
	cr_expect_str_eq(vox_json_str(eu, "account_number_last2"), "81");
	json_decref(ans);
}

Test(porting_api, someone_elses_order_is_404_everywhere)
{
	char account[40], key[64], other[40], okey[64], e164[24], id[40];
	char body[256], path[160];
	static const char *const routes[][2] = {
	        {"GET", ""},
	        {"PATCH", ""},
	        {"POST", "/actions/submit"},
	        {"POST", "/actions/cancel"},
	        {"GET", "/events"},
	        {"GET", "/allowed-foc-windows"},
	};

	t_account("developer", account, key);
	t_account("developer", other, okey);
	number(e164, 1);
	snprintf(body, sizeof(body), "{\"phone_numbers\": [\"%s\"]}", e164);
	draft(key, body, id);
	for (size_t i = 0; i < 6; i++) {
		snprintf(path, sizeof(path), "/v1/porting-orders/%s%s", id,
		         routes[i][1]);
		refused(okey, other, routes[i][0], path,
		        strcmp(routes[i][0], "PATCH") == 0
		                ? "{\"customer_reference\": \"x\"}"
		                : NULL,
		        404, "porting_order_not_found", NULL);
		snprintf(path, sizeof(path), "/v1/porting-orders/not-a-uuid%s",
		         routes[i][1]);
		refused(key, account, routes[i][0], path,
		        strcmp(routes[i][0], "PATCH") == 0 ? "{}" : NULL, 404,
		        "porting_order_not_found", NULL);
	}
	/* and it is not in the other's list */
	json_t *ans;
	cr_assert_eq(call("GET", okey, "/v1/porting-orders", NULL, NULL, &ans),
	             200);
	cr_expect_eq(json_array_size(json_object_get(ans, "data")), 0);
	json_decref(ans);
	/* nothing changed on ours */
	cr_expect_eq(count_rows("SELECT count(*) FROM porting_orders WHERE id "
	                        "= $1::uuid AND status = 'draft' AND version = "
	                        "1 AND customer_reference IS NULL",
	                        id),
	             1);
}

Test(porting_api, patch_raises_version_and_only_in_draft_or_exception)
{
	char account[40], key[64], e164[24], e2[24], id[40], path[96];
	char body[512];
	json_t *ans;
	int status;

	t_account("developer", account, key);
	number(e164, 1);
	number(e2, 6);
	snprintf(body, sizeof(body), "{\"phone_numbers\": [\"%s\"]}", e164);
	draft(key, body, id);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s", id);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\", \"%s\"], \"end_user\": "
	         "{\"pin\": \"9876\", \"authorized_name\": \"Grace\"}}",
	         e164, e2);
	status = call("PATCH", key, path, body, NULL, &ans);
	cr_assert_eq(status, 200, "%d %s", status, error_code(ans));
	cr_expect_eq(json_integer_value(json_object_get(ans, "version")), 2);
	cr_expect_eq(json_array_size(json_object_get(ans, "phone_numbers")), 2);
	cr_expect(json_is_null(json_object_get(ans, "losing_carrier")));
	cr_expect_str_eq(
	        vox_json_str(json_object_get(ans, "end_user"), "pin_last2"),
	        "76");
	json_decref(ans);
	/* clearing the PIN clears its last two */
	status = call("PATCH", key, path, "{\"end_user\": {\"pin\": null}}",
	              NULL, &ans);
	cr_assert_eq(status, 200);
	cr_expect(json_is_null(json_object_get(json_object_get(ans, "end_user"),
	                                       "pin_last2")));
	cr_expect_str_eq(vox_json_str(json_object_get(ans, "end_user"),
	                              "authorized_name"),
	                 "Grace");
	cr_expect_eq(json_integer_value(json_object_get(ans, "version")), 3);
	json_decref(ans);
	cr_expect_eq(count_rows("SELECT count(*) FROM porting_orders WHERE id "
	                        "= $1::uuid AND pin_enc IS NULL",
	                        id),
	             1);
	/* in exception: details yes, numbers no */
	const char *params[] = {id};
	sql_run("UPDATE porting_orders SET status = 'exception' WHERE id = "
	        "$1::uuid",
	        1, params);
	status = call("PATCH", key, path, "{\"customer_reference\": \"t-7\"}",
	              NULL, &ans);
	cr_expect_eq(status, 200);
	json_decref(ans);
	snprintf(body, sizeof(body), "{\"phone_numbers\": [\"%s\"]}", e164);
	refused(key, account, "PATCH", path, body, 409, "invalid_state", NULL);
	/* submitted (the worker's): no PATCH at all */
	sql_run("UPDATE porting_orders SET status = 'submitted' WHERE id = "
	        "$1::uuid",
	        1, params);
	refused(key, account, "PATCH", path, "{\"customer_reference\": \"x\"}",
	        409, "invalid_state", NULL);
	cr_expect_eq(count_rows("SELECT version FROM porting_orders WHERE id = "
	                        "$1::uuid",
	                        id),
	             4);
}

/* ---------------------------------------------------------------- actions */

struct seen {
	const char
	        *key_id; /* data.order_id or data.payload.customer_reference */
	const char *type;
	int count;
	json_t *event;
};

static void find_command(void *arg, const char *payload, size_t len,
                         const char *header)
{
	struct seen *s = arg;
	json_t *ev = json_loadb(payload, len, 0, NULL);
	json_t *data = json_object_get(ev, "data");
	const char *id = vox_json_str(data, "order_id");

	(void)header;
	if (id == NULL)
		id = vox_json_str(json_object_get(data, "payload"),
		                  "customer_reference");
	if (id != NULL && strcmp(id, s->key_id) == 0 &&
	    strcmp(vox_json_str(ev, "type"), s->type) == 0) {
		s->count++;
		json_decref(s->event);
		s->event = json_incref(ev);
	}
	json_decref(ev);
}

/* A draft past its expires_at that the worker's sweep has not reached yet
 * is answered as it will be once swept: neither PATCH nor submit. */
Test(porting_api, an_expired_draft_is_not_patched_or_submitted)
{
	char account[40], key[64], e164[24], id[40], body[256], path[128];

	t_account("developer", account, key);
	number(e164, 6);
	snprintf(body, sizeof(body), "{\"phone_numbers\": [\"%s\"]}", e164);
	draft(key, body, id);
	const char *params[] = {id};
	sql_run("UPDATE porting_orders SET expires_at = now() - interval '1 "
	        "second' WHERE id = $1::uuid",
	        1, params);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s", id);
	refused(key, account, "PATCH", path, "{\"customer_reference\": \"x\"}",
	        409, "invalid_state", NULL);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s/actions/submit",
	         id);
	refused(key, account, "POST", path, NULL, 409, "invalid_state", NULL);
	cr_expect_eq(count_rows("SELECT count(*) FROM porting_orders WHERE id "
	                        "= $1::uuid AND version = 1 AND "
	                        "customer_reference IS NULL",
	                        id),
	             1);
}

Test(porting_api, submit_checks_fields_then_publishes_one_command)
{
	char account[40], key[64], e164[24], id[40], path[128], loa[40],
	        inv[40];
	char body[512], *full;
	json_t *ans;
	int status;

	t_account("developer", account, key);
	number(e164, 0);
	snprintf(body, sizeof(body), "{\"phone_numbers\": [\"%s\"]}", e164);
	draft(key, body, id);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s/actions/submit",
	         id);
	/* the first missing field, then the next */
	refused(key, account, "POST", path, NULL, 422, "porting_rule_violated",
	        "missing_field");
	status = call("POST", key, path, NULL, NULL, &ans);
	cr_expect_str_eq(error_detail(ans, "field"),
	                 "end_user.authorized_name");
	json_decref(ans);
	/* everything but the PIN (Acme needs it) */
	document(account, "loa", loa);
	document(account, "invoice", inv);
	full = full_body(e164, loa, inv);
	json_t *patch = json_loads(full, 0, NULL);
	json_object_del(patch, "phone_numbers");
	json_object_set_new(json_object_get(patch, "end_user"), "pin",
	                    json_null());
	char *ptext = vox_json_dump(patch);
	char opath[128];
	snprintf(opath, sizeof(opath), "/v1/porting-orders/%s", id);
	status = call("PATCH", key, opath, ptext, NULL, &ans);
	cr_assert_eq(status, 200, "%d %s", status, error_code(ans));
	json_decref(ans);
	status = call("POST", key, path, NULL, NULL, &ans);
	cr_expect_eq(status, 422);
	cr_expect_str_eq(error_detail(ans, "field"), "end_user.pin");
	json_decref(ans);
	status = call("PATCH", key, opath,
	              "{\"end_user\": {\"pin\": \"0100\"}}", NULL, &ans);
	cr_assert_eq(status, 200);
	json_decref(ans);
	/* a FOC date that became too early while the draft waited */
	const char *params[] = {id};
	sql_run("UPDATE porting_orders SET requested_foc_date = current_date "
	        "WHERE id = $1::uuid",
	        1, params);
	refused(key, account, "POST", path, NULL, 422, "porting_rule_violated",
	        "foc_too_early");
	char foc[11];
	business_day(4, foc);
	const char *fparams[] = {id, foc};
	sql_run("UPDATE porting_orders SET requested_foc_date = $2::date WHERE "
	        "id = $1::uuid",
	        2, fparams);
	/* now it goes: 202 with the operation, after Kafka has it */
	status = call("POST", key, path, NULL, "porting-submit-1", &ans);
	cr_assert_eq(status, 202, "%d %s", status, error_code(ans));
	cr_expect_str_eq(vox_json_str(ans, "kind"), "porting.submit");
	cr_expect_str_eq(vox_json_str(ans, "status"), "accepted");
	char op[40];
	snprintf(op, sizeof(op), "%s", vox_json_str(ans, "id"));
	json_decref(ans);
	struct seen s = {.key_id = id,
	                 .type = "vox.porting_order.submit_requested"};
	t_consume_all(TOPIC, 1500, NULL, find_command, &s);
	cr_assert_eq(s.count, 1, "submit seen %d times", s.count);
	json_t *data = json_object_get(s.event, "data");
	cr_expect_str_eq(vox_json_str(data, "account_id"), account);
	cr_expect_eq(json_integer_value(json_object_get(data, "version")), 3);
	cr_expect_str_eq(vox_json_str(data, "operation_id"), op);
	json_decref(s.event);
	/* the operation exists; a replay answers the same */
	char oppath[96];
	snprintf(oppath, sizeof(oppath), "/v1/operations/%s", op);
	cr_expect_eq(call("GET", key, oppath, NULL, NULL, &ans), 200);
	json_decref(ans);
	status = call("POST", key, path, NULL, "porting-submit-1", &ans);
	cr_expect_eq(status, 202);
	cr_expect_str_eq(vox_json_str(ans, "id"), op);
	json_decref(ans);
	free(ptext);
	json_decref(patch);
	free(full);
}

Test(porting_api, cancel_draft_at_once_and_the_48_hour_rule)
{
	char account[40], key[64], e164[24], id[40], id2[40], path[128];
	char body[256];
	json_t *ans;
	int status;

	t_account("developer", account, key);
	number(e164, 7);
	snprintf(body, sizeof(body), "{\"phone_numbers\": [\"%s\"]}", e164);
	draft(key, body, id);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s/actions/cancel",
	         id);
	status = call("POST", key, path, NULL, NULL, &ans);
	cr_assert_eq(status, 200, "%d %s", status, error_code(ans));
	cr_expect_str_eq(vox_json_str(ans, "status"), "cancelled");
	cr_expect_str_eq(vox_json_str(ans, "cancel_reason"), "cancelled");
	json_decref(ans);
	cr_expect_eq(count_rows("SELECT count(*) FROM porting_order_events "
	                        "WHERE order_id = $1::uuid AND from_status = "
	                        "'draft' AND to_status = 'cancelled' AND "
	                        "source = 'api'",
	                        id),
	             1);
	cr_expect_eq(count_rows("SELECT count(*) FROM outbox WHERE message_key "
	                        "= $1 AND topic = 'vox.events' AND payload "
	                        "LIKE '%\"porting_order.cancelled\"%'",
	                        id),
	             1);
	/* its history */
	snprintf(path, sizeof(path), "/v1/porting-orders/%s/events", id);
	cr_assert_eq(call("GET", key, path, NULL, NULL, &ans), 200);
	cr_expect_eq(json_array_size(json_object_get(ans, "data")), 1);
	json_decref(ans);
	/* final: 409 */
	snprintf(path, sizeof(path), "/v1/porting-orders/%s/actions/cancel",
	         id);
	refused(key, account, "POST", path, NULL, 409, "invalid_state", NULL);
	/* A confirmed FOC within 48 h: the worker's state, set here in SQL
	 * (no worker runs in this suite). */
	number(e164, 7);
	snprintf(body, sizeof(body), "{\"phone_numbers\": [\"%s\"]}", e164);
	draft(key, body, id2);
	const char *params[] = {id2};
	sql_run("UPDATE porting_orders SET status = 'foc-date-confirmed', "
	        "foc_date = now() + interval '47 hours' WHERE id = $1::uuid",
	        1, params);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s/actions/cancel",
	         id2);
	refused(key, account, "POST", path, NULL, 422, "porting_rule_violated",
	        "cancel_too_late");
	/* 49 h away: the cancel goes to the worker */
	sql_run("UPDATE porting_orders SET foc_date = now() + interval '49 "
	        "hours' WHERE id = $1::uuid",
	        1, params);
	status = call("POST", key, path, NULL, NULL, &ans);
	cr_assert_eq(status, 202, "%d %s", status, error_code(ans));
	cr_expect_str_eq(vox_json_str(ans, "kind"), "porting.cancel");
	json_decref(ans);
	struct seen s = {.key_id = id2,
	                 .type = "vox.porting_order.cancel_requested"};
	t_consume_all(TOPIC, 1500, NULL, find_command, &s);
	cr_expect_eq(s.count, 1, "cancel seen %d times", s.count);
	json_decref(s.event);
	/* a parent with one child within 48 h: the whole cancel refused */
	char child[40];
	vox_uuid7(child);
	const char *cparams[] = {child, account, id2};
	sql_run("UPDATE porting_orders SET status = 'in-process', foc_date = "
	        "NULL WHERE id = $1::uuid",
	        1, params);
	sql_run("INSERT INTO porting_orders (id, account_id, parent_id, "
	        "status, foc_date) VALUES ($1::uuid, $2::uuid, $3::uuid, "
	        "'foc-date-confirmed', now() + interval '1 hour')",
	        3, cparams);
	refused(key, account, "POST", path, NULL, 422, "porting_rule_violated",
	        "cancel_too_late");
}

Test(porting_api, lists_and_foc_windows)
{
	char account[40], key[64], e164[24], ids[3][40], path[160], body[256];
	json_t *ans, *data;

	t_account("viewer", account, key);
	char dev[64];
	t_key(account, "developer", dev, NULL);
	for (int i = 0; i < 3; i++) {
		number(e164, 2);
		snprintf(body, sizeof(body), "{\"phone_numbers\": [\"%s\"]}",
		         e164);
		draft(dev, body, ids[i]);
	}
	/* a viewer reads, newest first, two per page */
	cr_assert_eq(call("GET", key, "/v1/porting-orders?limit=2", NULL, NULL,
	                  &ans),
	             200);
	data = json_object_get(ans, "data");
	cr_assert_eq(json_array_size(data), 2);
	cr_expect_str_eq(vox_json_str(json_array_get(data, 0), "id"), ids[2]);
	cr_expect_str_eq(vox_json_str(json_array_get(data, 1), "id"), ids[1]);
	snprintf(path, sizeof(path), "/v1/porting-orders?limit=2&cursor=%s",
	         vox_json_str(ans, "next_cursor"));
	json_decref(ans);
	cr_assert_eq(call("GET", key, path, NULL, NULL, &ans), 200);
	data = json_object_get(ans, "data");
	cr_assert_eq(json_array_size(data), 1);
	cr_expect_str_eq(vox_json_str(json_array_get(data, 0), "id"), ids[0]);
	cr_expect(json_is_null(json_object_get(ans, "next_cursor")));
	json_decref(ans);
	cr_expect_eq(call("GET", key, "/v1/porting-orders?status=ported", NULL,
	                  NULL, &ans),
	             200);
	cr_expect_eq(json_array_size(json_object_get(ans, "data")), 0);
	json_decref(ans);
	cr_expect_eq(call("GET", key, "/v1/porting-orders?status=nope", NULL,
	                  NULL, &ans),
	             400);
	json_decref(ans);
	/* a viewer does not write */
	snprintf(body, sizeof(body), "{\"phone_numbers\": [\"%s\"]}", e164);
	cr_expect_eq(call("POST", key, "/v1/porting-orders", body, NULL, &ans),
	             403);
	json_decref(ans);
	/* the windows: business days from the 3rd to 30 days ahead */
	snprintf(path, sizeof(path),
	         "/v1/porting-orders/%s/allowed-foc-windows", ids[0]);
	cr_assert_eq(call("GET", key, path, NULL, NULL, &ans), 200);
	data = json_object_get(ans, "data");
	cr_assert_geq(json_array_size(data), 15);
	vox_date_t today = vox_date_of_unix((long long)time(NULL)), first, last;
	char a[11], b[11], start[32];
	vox_porting_foc_range(&today, &first, &last);
	vox_date_format(&first, a);
	vox_date_format(&last, b);
	json_t *w0 = json_array_get(data, 0);
	cr_expect_str_eq(vox_json_str(w0, "date"), a);
	snprintf(start, sizeof(start), "%sT14:00:00Z", a);
	cr_expect_str_eq(vox_json_str(w0, "started_at"), start);
	cr_expect_str_eq(
	        vox_json_str(json_array_get(data, json_array_size(data) - 1),
	                     "date"),
	        b);
	size_t i;
	json_t *w;
	json_array_foreach(data, i, w)
	{
		vox_date_t d;

		cr_assert_eq(vox_date_parse(vox_json_str(w, "date"), &d), 0);
		cr_expect(vox_porting_business_day(&d), "%s",
		          vox_json_str(w, "date"));
	}
	json_decref(ans);
}

/* ---------------------------------------------------------------- carrier */

/* body signed with secret at t (0: now). */
static int carrier_post_at(const struct t_carrier *c, const char *secret,
                           long long t, const char *body, json_t **answer)
{
	char auth[128], sig[65], sigh[160], *text = NULL;
	int status;

	if (t == 0)
		t = (long long)time(NULL);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->key);
	t_carrier_sign(secret, t, body, sig);
	snprintf(sigh, sizeof(sigh), "Vox-Signature: t=%lld,v1=%s", t, sig);
	const char *headers[] = {auth, sigh, "Content-Type: application/json",
	                         NULL};
	status = t_http_h("POST", port, "/v1/carrier/porting-events", body,
	                  headers, &text, NULL);
	*answer = text && *text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return status;
}

static int carrier_post(const struct t_carrier *c, const char *secret,
                        const char *body, json_t **answer)
{
	return carrier_post_at(c, secret, 0, body, answer);
}

Test(porting_api, carrier_webhook_signed_and_published_by_order)
{
	struct t_carrier c;
	char order[40], event_id[40], body[1024];
	json_t *ans;
	int status;

	t_carrier_new(&c);
	vox_uuid7(order);
	vox_uuid7(event_id);
	snprintf(body, sizeof(body),
	         "{\"data\": {\"id\": \"%s\", \"event_type\": "
	         "\"porting_order.status_changed\", \"occurred_at\": "
	         "\"2026-12-07T10:00:00Z\", \"payload\": {\"id\": \"cpo-1\", "
	         "\"customer_reference\": \"%s\", \"status\": "
	         "\"foc-date-confirmed\", \"foc_date\": "
	         "\"2026-12-14T14:00:00Z\"}}}",
	         event_id, order);
	/* a bad signature: 401, nothing published */
	status = carrier_post(&c, "not-the-secret-0123456789", body, &ans);
	cr_expect_eq(status, 401, "%d", status);
	cr_expect_str_eq(error_code(ans), "invalid_signature");
	json_decref(ans);
	/* a bad shape: 400 (and the same signed request may come again) */
	char bad[512];
	snprintf(bad, sizeof(bad),
	         "{\"data\": {\"id\": \"x\", \"event_type\": \"t\", "
	         "\"payload\": {\"id\": \"p\", \"customer_reference\": "
	         "\"%s\", \"status\": \"lost\"}}}",
	         order);
	cr_expect_eq(carrier_post(&c, c.secret, bad, &ans), 400);
	json_decref(ans);
	cr_expect_eq(carrier_post(&c, c.secret,
	                          "{\"data\": {\"id\": \"x\", \"event_type\": "
	                          "\"t\", \"payload\": {\"id\": \"p\", "
	                          "\"customer_reference\": \"ticket 42\", "
	                          "\"status\": \"ported\"}}}",
	                          &ans),
	             400);
	json_decref(ans);
	/* signed: 202, one message keyed by our order id */
	long long t = (long long)time(NULL);
	status = carrier_post_at(&c, c.secret, t, body, &ans);
	cr_assert_eq(status, 202, "%d %s", status, error_code(ans));
	json_decref(ans);
	struct seen s = {.key_id = order, .type = "vox.porting.carrier_event"};
	t_consume_all(TOPIC, 1500, NULL, find_command, &s);
	cr_assert_eq(s.count, 1, "event seen %d times", s.count);
	json_t *data = json_object_get(s.event, "data");
	cr_expect_str_eq(vox_json_str(data, "carrier"), c.name);
	cr_expect_str_eq(vox_json_str(data, "id"), event_id);
	cr_expect_str_eq(
	        vox_json_str(json_object_get(data, "payload"), "status"),
	        "foc-date-confirmed");
	json_decref(s.event);
	/* the same signed request again is a replay */
	status = carrier_post_at(&c, c.secret, t, body, &ans);
	cr_expect_eq(status, 401, "%d", status);
	cr_expect_str_eq(error_code(ans), "replayed_request");
	json_decref(ans);
}

/* A carrier's payload is its whole porting order: what it says beyond the
 * fields the worker reads (an end user's account number and PIN, anything
 * else) never reaches Kafka; items of a bad shape are 400. */
Test(porting_api, carrier_webhook_forwards_only_what_the_worker_reads)
{
	struct t_carrier c;
	char order[40], event_id[40], body[2048], bad[1024];
	json_t *ans;
	int status;

	t_carrier_new(&c);
	vox_uuid7(order);
	vox_uuid7(event_id);
	snprintf(
	        body, sizeof(body),
	        "{\"data\": {\"id\": \"%s\", \"event_type\": "
	        "\"porting_order.status_changed\", \"record_type\": \"event\", "
	        "\"payload\": {\"id\": \"cpo-2\", \"customer_reference\": "
	        "\"%s\", \"status\": \"exception\", \"foc_date\": null, "
	        "\"end_user\": {\"admin\": {\"account_number\": "
	        "\"ACC-SECRET-98\", \"pin_passcode\": \"7391\"}}, "
	        "\"exceptions\": [{\"code\": \"wrong_pin\", \"field\": "
	        "\"end_user.pin\", \"message\": \"no\", \"pin_passcode\": "
	        "\"7391\"}], \"phone_numbers\": [{\"phone_number\": "
	        "\"+14155550100\", \"status\": \"exception\", \"id\": null, "
	        "\"account_number\": \"ACC-SECRET-98\"}]}}}",
	        event_id, order);
	status = carrier_post(&c, c.secret, body, &ans);
	cr_assert_eq(status, 202, "%d %s", status, error_code(ans));
	json_decref(ans);
	struct seen s = {.key_id = order, .type = "vox.porting.carrier_event"};
	t_consume_all(TOPIC, 1500, NULL, find_command, &s);
	cr_assert_eq(s.count, 1, "event seen %d times", s.count);
	char *text = json_dumps(s.event, JSON_COMPACT);
	cr_expect_null(strstr(text, "7391"), "%s", text);
	cr_expect_null(strstr(text, "ACC-SECRET"), "%s", text);
	cr_expect_null(strstr(text, "record_type"), "%s", text);
	json_t *payload =
	        json_object_get(json_object_get(s.event, "data"), "payload");
	cr_expect_str_eq(
	        vox_json_str(json_array_get(
	                             json_object_get(payload, "exceptions"), 0),
	                     "code"),
	        "wrong_pin");
	cr_expect_str_eq(
	        vox_json_str(
	                json_array_get(
	                        json_object_get(payload, "phone_numbers"), 0),
	                "phone_number"),
	        "+14155550100");
	cr_expect(json_is_null(json_object_get(payload, "foc_date")));
	free(text);
	json_decref(s.event);
	/* shapes the worker could not use: 400 naming the field */
	static const struct {
		const char *payload_tail, *field;
	} cases[] = {
	        {"\"foc_date\": \"next tuesday\"", "data.payload.foc_date"},
	        {"\"exceptions\": [\"wrong_pin\"]", "data.payload.exceptions"},
	        {"\"exceptions\": [{\"code\": 7}]", "data.payload.exceptions"},
	        {"\"phone_numbers\": [{\"status\": \"ported\"}]",
	         "data.payload.phone_numbers"},
	        {"\"phone_numbers\": [{\"phone_number\": \"+14155550100\", "
	         "\"status\": \"lost\"}]",
	         "data.payload.phone_numbers"},
	        {"\"phone_numbers\": [{\"phone_number\": \"+14155550100\", "
	         "\"id\": "
	         "\"0123456789012345678901234567890123456789012345678901234567"
	         "8901234\"}]",
	         "data.payload.phone_numbers"},
	        {"\"phone_numbers\": [[1, 2]]", "data.payload.phone_numbers"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char eid[40];

		vox_uuid7(eid);
		snprintf(bad, sizeof(bad),
		         "{\"data\": {\"id\": \"%s\", \"event_type\": \"t\", "
		         "\"payload\": {\"id\": \"cpo-3\", "
		         "\"customer_reference\": \"%s\", \"status\": "
		         "\"ported\", %s}}}",
		         eid, order, cases[i].payload_tail);
		status = carrier_post(&c, c.secret, bad, &ans);
		cr_expect_eq(status, 400, "case %zu: %d", i, status);
		cr_expect_str_eq(error_detail(ans, "field"), cases[i].field,
		                 "case %zu", i);
		json_decref(ans);
	}
	/* the carrier's order id longer than the worker keeps (64) */
	snprintf(bad, sizeof(bad),
	         "{\"data\": {\"id\": \"x-%s\", \"event_type\": \"t\", "
	         "\"payload\": {\"id\": \"%065d\", \"customer_reference\": "
	         "\"%s\", \"status\": \"ported\"}}}",
	         event_id, 7, order);
	cr_expect_eq(carrier_post(&c, c.secret, bad, &ans), 400);
	json_decref(ans);
}

/* ---------------------------------------------------------------- parents */

/* The secret field of order id opens with its own aad and equals want. */
static void assert_sealed(const char *field, const char *id,
                          const char *account, const char *want)
{
	vox_pg_t *pg = t_pg();
	PGresult *res = NULL;
	vox_error_t err;
	char sql[160], aad[200], *plain = NULL;
	const char *params[] = {id};
	size_t n, plain_len;
	unsigned char *sealed;
	vox_crypto_keyring_t *ring =
	        vox_crypto_keyring_new(ENC_KEY, NULL, &err);

	cr_assert_not_null(ring);
	snprintf(sql, sizeof(sql),
	         "SELECT encode(%s_enc, 'hex') FROM porting_orders WHERE id = "
	         "$1::uuid",
	         field);
	cr_assert_eq(vox_pg_exec(pg, sql, 1, params, &res, &err), 0, "%s",
	             err.message);
	cr_assert_eq(PQntuples(res), 1);
	n = strlen(PQgetvalue(res, 0, 0)) / 2;
	cr_assert_gt(n, 0, "%s of %s not stored", field, id);
	sealed = malloc(n);
	for (size_t i = 0; i < n; i++)
		sscanf(PQgetvalue(res, 0, 0) + 2 * i, "%2hhx", &sealed[i]);
	vox_porting_aad(aad, sizeof(aad), field, id, account);
	cr_assert_eq(vox_crypto_open(ring, sealed, n, aad, strlen(aad), &plain,
	                             &plain_len, &err),
	             0, "%s of %s: %s", field, id, err.message);
	cr_expect_str_eq(plain, want);
	free(plain);
	free(sealed);
	PQclear(res);
	vox_crypto_keyring_destroy(ring);
	vox_pg_destroy(pg);
}

Test(porting_api, parent_shows_children_and_patch_reaches_those_in_exception)
{
	char account[40], key[64], acme[24], beta[24], parent[40], path[128];
	char kid[2][40], body[256];
	json_t *ans, *children;
	int status;

	t_account("developer", account, key);
	number(acme, 1);
	number(beta, 6);
	snprintf(body, sizeof(body), "{\"phone_numbers\": [\"%s\", \"%s\"]}",
	         acme, beta);
	draft(key, body, parent);
	/* The worker's split, done here in SQL (no worker in this suite):
	 * one child per losing carrier, the numbers moved to them. */
	vox_uuid7(kid[0]);
	vox_uuid7(kid[1]);
	const char *params[] = {parent, account, kid[0], kid[1]};
	sql_run("INSERT INTO porting_orders (id, account_id, parent_id, "
	        "status, "
	        "losing_carrier) VALUES ($3::uuid, $2::uuid, $1::uuid, "
	        "'exception', 'Acme Wireless'), ($4::uuid, $2::uuid, $1::uuid, "
	        "'foc-date-confirmed', 'Beta Telecom')",
	        4, params);
	/* (the numbers keep their draft status: an open one would hold
	 * the number against every later test run's orders) */
	sql_run("UPDATE porting_order_numbers SET order_id = CASE WHEN "
	        "losing_carrier = 'Acme Wireless' THEN $3::uuid ELSE $4::uuid "
	        "END WHERE order_id = $1::uuid AND $2::uuid IS NOT NULL",
	        4, params);
	sql_run("UPDATE porting_orders SET status = 'exception' WHERE id = "
	        "$1::uuid AND account_id = $2::uuid",
	        2, params);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s", parent);
	status = call("GET", key, path, NULL, NULL, &ans);
	cr_assert_eq(status, 200);
	children = json_object_get(ans, "children");
	cr_assert_eq(json_array_size(children), 2);
	cr_expect_str_eq(
	        vox_json_str(json_array_get(children, 0), "losing_carrier"),
	        "Acme Wireless");
	cr_expect_str_eq(vox_json_str(json_array_get(children, 0), "status"),
	                 "exception");
	cr_expect_str_eq(json_string_value(json_array_get(
	                         json_object_get(json_array_get(children, 0),
	                                         "phone_numbers"),
	                         0)),
	                 acme);
	cr_expect_eq(json_array_size(json_object_get(ans, "phone_numbers")), 2);
	json_decref(ans);
	/* a child reads as an order of its own, listed by parent */
	snprintf(path, sizeof(path), "/v1/porting-orders?parent_id=%s", parent);
	cr_assert_eq(call("GET", key, path, NULL, NULL, &ans), 200);
	cr_expect_eq(json_array_size(json_object_get(ans, "data")), 2);
	json_decref(ans);
	/* the fix reaches the parent and the child in exception, each
	 * secret sealed for its own row; not the other child */
	snprintf(path, sizeof(path), "/v1/porting-orders/%s", parent);
	status = call("PATCH", key, path,
	              "{\"end_user\": {\"pin\": \"4321\", "
	              "\"authorized_name\": \"Ada King\"}}",
	              NULL, &ans);
	cr_assert_eq(status, 200, "%d %s", status, error_code(ans));
	json_decref(ans);
	assert_sealed("pin", parent, account, "4321");
	assert_sealed("pin", kid[0], account, "4321");
	cr_expect_eq(count_rows("SELECT count(*) FROM porting_orders WHERE id "
	                        "= $1::uuid AND authorized_name = 'Ada King' "
	                        "AND pin_last2 = '21'",
	                        kid[0]),
	             1);
	cr_expect_eq(count_rows("SELECT count(*) FROM porting_orders WHERE id "
	                        "= $1::uuid AND pin_enc IS NULL AND "
	                        "authorized_name IS NULL",
	                        kid[1]),
	             1);
	/* the parent's numbers are not a PATCH target out of draft */
	snprintf(body, sizeof(body), "{\"phone_numbers\": [\"%s\"]}", acme);
	refused(key, account, "PATCH", path, body, 409, "invalid_state", NULL);
	/* The other child ported (its number is the account's now): the
	 * resubmit checks only the numbers of the child in exception. */
	sql_run("UPDATE porting_orders SET status = 'ported' WHERE id = "
	        "$4::uuid AND parent_id = $1::uuid AND account_id = $2::uuid "
	        "AND $3::uuid IS NOT NULL",
	        4, params);
	own(beta, account);
	char loa[40], inv[40], *full;
	document(account, "loa", loa);
	document(account, "invoice", inv);
	full = full_body(acme, loa, inv);
	json_t *patch = json_loads(full, 0, NULL);
	json_object_del(patch, "phone_numbers");
	char *ptext = vox_json_dump(patch);
	status = call("PATCH", key, path, ptext, NULL, &ans);
	cr_assert_eq(status, 200, "%d %s", status, error_code(ans));
	json_decref(ans);
	snprintf(path, sizeof(path), "/v1/porting-orders/%s/actions/submit",
	         parent);
	status = call("POST", key, path, NULL, NULL, &ans);
	cr_expect_eq(status, 202, "%d %s %s", status, error_code(ans),
	             error_detail(ans, "rule"));
	json_decref(ans);
	assert_sealed("account_number", kid[0], account, "ACC-123456");
	disown(beta, account);
	free(ptext);
	free(full);
	json_decref(patch);
}

/* ---------------------------------------------------------------- no key */

Test(porting_api, no_encryption_key_refuses_secrets_and_stores_nothing)
{
	char account[40], key[64], e164[24], body[512], pe[64];
	int at = t_free_port();
	const char *url = getenv("VOX_TEST_PORTING_CARRIER_URL");
	static char carrier_env[600];
	json_t *ans;
	int status;

	snprintf(pe, sizeof(pe), "VOX_INGRESS_PORT=%d", at);
	snprintf(carrier_env, sizeof(carrier_env), "VOX_CARRIER_URL=%s",
	         url && *url ? url : t_env("VOX_CARRIER_URL"));
	const char *const env[] = {pe, carrier_env, "VOX_ENCRYPTION_KEY=",
	                           "VOX_RATE_COMMAND=1000", NULL};
	pid_t other = t_spawn("ingress", "porting-api-nokey-ingress.log", env);
	int saved = port;

	port = at;
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
	t_account("developer", account, key);
	number(e164, 3);
	snprintf(body, sizeof(body),
	         "{\"phone_numbers\": [\"%s\"], \"end_user\": {\"pin\": "
	         "\"1234\"}}",
	         e164);
	refused(key, account, "POST", "/v1/porting-orders", body, 503,
	        "secret_storage_unavailable", NULL);
	/* without a secret it works */
	snprintf(body, sizeof(body), "{\"phone_numbers\": [\"%s\"]}", e164);
	status = call("POST", key, "/v1/porting-orders", body, NULL, &ans);
	cr_expect_eq(status, 201, "%d %s", status, error_code(ans));
	json_decref(ans);
	port = saved;
	cr_expect_eq(t_stop(other, SIGTERM, 20000), 0);
}
