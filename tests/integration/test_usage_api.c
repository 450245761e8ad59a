/*
 * GET /v1/usage and /v1/usage-triggers against the real stack: usage_daily
 * rows written with SQL (as the metering worker would), summed by day,
 * number and event type, filtered by dates, type and number, and kept to
 * the caller's account; triggers created, listed page by page, read and
 * deleted, with their validation. One ingress for the suite.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "vox_json.h"

static int port;
static pid_t ingress;

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
	const char *const env[] = {port_env, "VOX_RATE_COMMAND=1000",
	                           "VOX_RATE_READ=1000", NULL};
	ingress = t_spawn("ingress", "usage-api-ingress.log", env);
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
}

static void suite_stop(void)
{
	int status = t_stop(ingress, SIGTERM, 20000);

	cr_expect_eq(status, 0, "ingress exit status %d", status);
}

/* One usage_daily row (the metering worker's aggregate). */
static void daily(const char *account, const char *day, const char *e164,
                  const char *type, long records, long duration, long billable,
                  long units, long long cost)
{
	char r[24], d[24], b[24], u[24], c[24];
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	snprintf(r, sizeof(r), "%ld", records);
	snprintf(d, sizeof(d), "%ld", duration);
	snprintf(b, sizeof(b), "%ld", billable);
	snprintf(u, sizeof(u), "%ld", units);
	snprintf(c, sizeof(c), "%lld", cost);
	const char *params[] = {account, day, e164, type, r, d, b, u, c};
	cr_assert_eq(vox_pg_exec(pg,
	                         "INSERT INTO usage_daily (account_id, day, "
	                         "e164, event_type, currency, records, "
	                         "duration_s, billable_s, units, cost_micros) "
	                         "VALUES ($1, $2, $3, $4, 'USD', $5, $6, $7, "
	                         "$8, $9)",
	                         9, params, NULL, &err),
	             0, "%s", err.message);
	vox_pg_destroy(pg);
}

static int get(const char *key, const char *path, json_t **answer)
{
	char auth[96], *text = NULL;
	const char *headers[] = {auth, NULL};
	int status;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	status = t_http_h("GET", port, path, NULL, headers, &text, NULL);
	*answer = json_loads(text, 0, NULL);
	free(text);
	return status;
}

static int send_json(const char *method, const char *key, const char *path,
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
	*answer = json_loads(text, 0, NULL);
	free(text);
	return status;
}

static long long total(const json_t *answer, const char *field)
{
	return json_integer_value(
	        json_object_get(json_object_get(answer, "totals"), field));
}

static const char *error_code(const json_t *answer)
{
	const char *code =
	        vox_json_str(json_object_get(answer, "error"), "code");

	return code ? code : "(none)";
}

TestSuite(usage, .init = suite_start, .fini = suite_stop, .timeout = 120);

/* Account A: two numbers over three days of October; B: one row. */
static void usage_fixture(char a[40], char a_key[64], char b[40],
                          char b_key[64])
{
	t_account("viewer", a, a_key);
	t_account("owner", b, b_key);
	daily(a, "2026-10-01", "+14155550001", "inbound_call", 2, 130, 180, 3,
	      25500);
	daily(a, "2026-10-01", "+14155550001", "sms_sent", 3, 0, 0, 4, 31600);
	daily(a, "2026-10-02", "+14155550002", "outbound_call", 1, 61, 120, 2,
	      12345678);
	daily(a, "2026-10-31", "+14155550002", "sms_received", 5, 0, 0, 5,
	      39500);
	daily(a, "2026-11-01", "+14155550001", "inbound_call", 1, 10, 60, 1,
	      8500);
	daily(b, "2026-10-01", "+14155550003", "inbound_call", 7, 700, 720, 12,
	      99);
}

Test(usage, grouped_by_day_with_totals_and_a_decimal_cost)
{
	char a[40], a_key[64], b[40], b_key[64];
	json_t *ans, *items;
	int status;

	usage_fixture(a, a_key, b, b_key);
	status = get(a_key,
	             "/v1/usage?start_date=2026-10-01&end_date=2026-10-31",
	             &ans);
	cr_assert_eq(status, 200, "status %d", status);
	cr_expect_str_eq(vox_json_str(ans, "currency"), "USD");
	cr_expect_str_eq(vox_json_str(ans, "group_by"), "day");
	cr_expect_str_eq(vox_json_str(ans, "start_date"), "2026-10-01");
	cr_expect_str_eq(vox_json_str(ans, "end_date"), "2026-10-31");
	cr_expect_eq(total(ans, "records"), 11);
	cr_expect_eq(total(ans, "duration_s"), 191);
	cr_expect_eq(total(ans, "billable_s"), 300);
	cr_expect_eq(total(ans, "units"), 14);
	cr_expect_eq(total(ans, "cost_micros"), 12442278);
	cr_expect_str_eq(vox_json_str(json_object_get(ans, "totals"), "cost"),
	                 "12.442278");
	items = json_object_get(ans, "items");
	cr_assert_eq(json_array_size(items), 3);
	cr_expect_str_eq(vox_json_str(json_array_get(items, 0), "day"),
	                 "2026-10-01");
	cr_expect_str_eq(vox_json_str(json_array_get(items, 1), "day"),
	                 "2026-10-02");
	cr_expect_str_eq(vox_json_str(json_array_get(items, 2), "day"),
	                 "2026-10-31");
	cr_expect_eq(json_integer_value(json_object_get(
	                     json_array_get(items, 0), "records")),
	             5);
	cr_expect_str_eq(vox_json_str(json_array_get(items, 2), "cost"),
	                 "0.039500");
	json_decref(ans);
}

Test(usage, grouped_by_number_and_event_type_and_filtered)
{
	char a[40], a_key[64], b[40], b_key[64];
	json_t *ans, *items;
	int status;

	usage_fixture(a, a_key, b, b_key);
	status = get(a_key,
	             "/v1/usage?start_date=2026-10-01&end_date=2026-11-30&"
	             "group_by=number",
	             &ans);
	cr_assert_eq(status, 200, "status %d", status);
	items = json_object_get(ans, "items");
	cr_assert_eq(json_array_size(items), 2);
	cr_expect_str_eq(vox_json_str(json_array_get(items, 0), "number"),
	                 "+14155550001");
	cr_expect_eq(json_integer_value(json_object_get(
	                     json_array_get(items, 0), "records")),
	             6);
	cr_expect_str_eq(vox_json_str(json_array_get(items, 1), "number"),
	                 "+14155550002");
	json_decref(ans);

	status = get(a_key,
	             "/v1/usage?start_date=2026-10-01&end_date=2026-11-30&"
	             "group_by=event_type",
	             &ans);
	cr_assert_eq(status, 200, "status %d", status);
	items = json_object_get(ans, "items");
	cr_assert_eq(json_array_size(items), 4);
	cr_expect_str_eq(vox_json_str(json_array_get(items, 0), "event_type"),
	                 "inbound_call");
	cr_expect_eq(json_integer_value(json_object_get(
	                     json_array_get(items, 0), "records")),
	             3);
	cr_expect_str_eq(vox_json_str(json_array_get(items, 3), "event_type"),
	                 "sms_sent");
	json_decref(ans);

	/* filters: a type, a number (+ encoded), one day */
	status = get(a_key,
	             "/v1/usage?start_date=2026-10-01&end_date=2026-11-30&"
	             "event_type=inbound_call&number=%2B14155550001",
	             &ans);
	cr_assert_eq(status, 200, "status %d", status);
	cr_expect_eq(total(ans, "records"), 3);
	cr_expect_eq(total(ans, "cost_micros"), 34000);
	json_decref(ans);
	status = get(a_key,
	             "/v1/usage?start_date=2026-10-02&end_date=2026-10-02",
	             &ans);
	cr_assert_eq(status, 200, "status %d", status);
	cr_expect_eq(total(ans, "records"), 1);
	cr_expect_str_eq(vox_json_str(json_object_get(ans, "totals"), "cost"),
	                 "12.345678");
	json_decref(ans);
}

Test(usage, each_account_sees_only_its_own)
{
	char a[40], a_key[64], b[40], b_key[64], other[40], other_key[64];
	json_t *ans;
	int status;

	usage_fixture(a, a_key, b, b_key);
	status = get(b_key,
	             "/v1/usage?start_date=2026-10-01&end_date=2026-11-30",
	             &ans);
	cr_assert_eq(status, 200, "status %d", status);
	cr_expect_eq(total(ans, "records"), 7);
	cr_expect_str_eq(vox_json_str(json_object_get(ans, "totals"), "cost"),
	                 "0.000099");
	json_decref(ans);
	/* another account filtering on A's number sees nothing */
	t_account("developer", other, other_key);
	status = get(other_key,
	             "/v1/usage?start_date=2026-10-01&end_date=2026-11-30&"
	             "number=%2B14155550001",
	             &ans);
	cr_assert_eq(status, 200, "status %d", status);
	cr_expect_eq(total(ans, "records"), 0);
	cr_expect_eq(json_array_size(json_object_get(ans, "items")), 0);
	cr_expect_str_eq(vox_json_str(json_object_get(ans, "totals"), "cost"),
	                 "0.000000");
	json_decref(ans);
}

Test(usage, default_range_is_this_month_to_today)
{
	char a[40], a_key[64], first[11], today[11];
	time_t now = time(NULL);
	struct tm tm;
	json_t *ans;
	int status;

	gmtime_r(&now, &tm);
	strftime(first, sizeof(first), "%Y-%m-01", &tm);
	strftime(today, sizeof(today), "%Y-%m-%d", &tm);
	t_account("viewer", a, a_key);
	daily(a, today, "+14155550001", "sms_sent", 2, 0, 0, 2, 15800);
	status = get(a_key, "/v1/usage", &ans);
	cr_assert_eq(status, 200, "status %d", status);
	cr_expect_str_eq(vox_json_str(ans, "start_date"), first);
	cr_expect_str_eq(vox_json_str(ans, "end_date"), today);
	cr_expect_eq(total(ans, "records"), 2);
	json_decref(ans);
}

Test(usage, bad_parameters_get_400)
{
	static const struct {
		const char *query, *parameter;
	} bad[] = {
	        {"start_date=2026-10-32", "start_date"},
	        {"start_date=2026-2-01", "start_date"},
	        {"end_date=yesterday", "end_date"},
	        {"start_date=2026-02-29&end_date=2026-03-01", "start_date"},
	        {"start_date=2026-10-05&end_date=2026-10-04", "start_date"},
	        {"start_date=2025-01-01&end_date=2026-01-02", "end_date"},
	        {"group_by=month", "group_by"},
	        {"event_type=fax", "event_type"},
	        {"number=4155550001", "number"},
	};
	char a[40], a_key[64], path[160];
	json_t *ans;
	int status;

	t_account("viewer", a, a_key);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), "/v1/usage?%s", bad[i].query);
		status = get(a_key, path, &ans);
		cr_expect_eq(status, 400, "%s: %d", bad[i].query, status);
		cr_expect_str_eq(error_code(ans), "invalid_parameter", "%s",
		                 bad[i].query);
		cr_expect_str_eq(
		        vox_json_str(
		                json_object_get(json_object_get(ans, "error"),
		                                "details"),
		                "parameter")
		                ?: "",
		        bad[i].parameter, "%s", bad[i].query);
		json_decref(ans);
	}
	/* 366 days inclusive is the most */
	status = get(a_key,
	             "/v1/usage?start_date=2024-01-01&end_date=2024-12-31",
	             &ans);
	cr_expect_eq(status, 200, "366 days: %d", status);
	json_decref(ans);
}

#define TRIGGER_BODY                                                           \
	"{\"category\":\"calls\",\"threshold\":3600,\"trigger_by\":\"usage\"," \
	"\"recurring\":\"monthly\",\"callback_url\":\"https://hooks.example/"  \
	"usage\",\"friendly_name\":\"an hour of calls\"}"

Test(usage, triggers_created_listed_read_and_deleted)
{
	char a[40], a_key[64], b[40], b_key[64], path[128], ids[3][40];
	json_t *ans, *again;
	int status;

	t_account("developer", a, a_key);
	t_account("owner", b, b_key);
	for (int i = 0; i < 3; i++) {
		char ik[48];

		snprintf(ik, sizeof(ik), "trigger-%s-%d", a + 24, i);
		status = send_json("POST", a_key, "/v1/usage-triggers",
		                   TRIGGER_BODY, ik, &ans);
		cr_assert_eq(status, 201, "create: %d", status);
		snprintf(ids[i], 40, "%s", vox_json_str(ans, "id"));
		cr_expect_str_eq(vox_json_str(ans, "category"), "calls");
		cr_expect_str_eq(vox_json_str(ans, "trigger_by"), "usage");
		cr_expect_str_eq(vox_json_str(ans, "recurring"), "monthly");
		cr_expect_eq(
		        json_integer_value(json_object_get(ans, "threshold")),
		        3600);
		cr_expect_str_eq(vox_json_str(ans, "friendly_name"),
		                 "an hour of calls");
		cr_expect_not_null(vox_json_str(ans, "created_at"));
		/* the same key and body: the first answer again */
		status = send_json("POST", a_key, "/v1/usage-triggers",
		                   TRIGGER_BODY, ik, &again);
		cr_expect_eq(status, 201, "replay: %d", status);
		cr_expect_str_eq(vox_json_str(again, "id"), ids[i]);
		json_decref(again);
		json_decref(ans);
	}
	/* newest first, one per page */
	status = get(a_key, "/v1/usage-triggers?limit=2", &ans);
	cr_assert_eq(status, 200, "list: %d", status);
	cr_assert_eq(json_array_size(json_object_get(ans, "data")), 2);
	cr_expect_str_eq(
	        vox_json_str(json_array_get(json_object_get(ans, "data"), 0),
	                     "id"),
	        ids[2]);
	snprintf(path, sizeof(path), "/v1/usage-triggers?limit=2&cursor=%s",
	         vox_json_str(ans, "next_cursor"));
	json_decref(ans);
	status = get(a_key, path, &ans);
	cr_assert_eq(status, 200, "page 2: %d", status);
	cr_expect_eq(json_array_size(json_object_get(ans, "data")), 1);
	cr_expect(json_is_null(json_object_get(ans, "next_cursor")));
	json_decref(ans);

	/* another account: 404, and it lists none of them */
	snprintf(path, sizeof(path), "/v1/usage-triggers/%s", ids[0]);
	status = get(b_key, path, &ans);
	cr_expect_eq(status, 404, "cross-account get: %d", status);
	cr_expect_str_eq(error_code(ans), "usage_trigger_not_found");
	json_decref(ans);
	status = send_json("DELETE", b_key, path, NULL, NULL, &ans);
	cr_expect_eq(status, 404, "cross-account delete: %d", status);
	json_decref(ans);
	status = get(b_key, "/v1/usage-triggers", &ans);
	cr_expect_eq(json_array_size(json_object_get(ans, "data")), 0);
	json_decref(ans);

	/* read, delete, then gone */
	status = get(a_key, path, &ans);
	cr_expect_eq(status, 200, "get: %d", status);
	cr_expect_str_eq(vox_json_str(ans, "id") ?: "", ids[0]);
	json_decref(ans);
	status = send_json("DELETE", a_key, path, NULL, NULL, &ans);
	cr_expect_eq(status, 200, "delete: %d", status);
	cr_expect_not_null(vox_json_str(ans, "deleted_at"));
	json_decref(ans);
	status = get(a_key, path, &ans);
	cr_expect_eq(status, 404, "get after delete: %d", status);
	json_decref(ans);
	status = send_json("DELETE", a_key, path, NULL, NULL, &ans);
	cr_expect_eq(status, 404, "delete twice: %d", status);
	json_decref(ans);
	status = get(a_key, "/v1/usage-triggers", &ans);
	cr_expect_eq(json_array_size(json_object_get(ans, "data")), 2);
	json_decref(ans);
	status = get(a_key, "/v1/usage-triggers/not-a-uuid", &ans);
	cr_expect_eq(status, 404, "malformed id: %d", status);
	json_decref(ans);
}

Test(usage, trigger_validation_names_the_field)
{
	static const struct {
		const char *body, *field;
	} bad[] = {
	        {"{\"category\":\"fax\",\"threshold\":1,\"trigger_by\":"
	         "\"count\",\"recurring\":\"none\",\"callback_url\":"
	         "\"https://h.example/\"}",
	         "category"},
	        {"{\"category\":\"sms\",\"threshold\":1,\"trigger_by\":"
	         "\"minutes\",\"recurring\":\"none\",\"callback_url\":"
	         "\"https://h.example/\"}",
	         "trigger_by"},
	        {"{\"category\":\"sms\",\"threshold\":1,\"trigger_by\":"
	         "\"count\",\"recurring\":\"yearly\",\"callback_url\":"
	         "\"https://h.example/\"}",
	         "recurring"},
	        {"{\"category\":\"sms\",\"threshold\":0,\"trigger_by\":"
	         "\"count\",\"recurring\":\"none\",\"callback_url\":"
	         "\"https://h.example/\"}",
	         "threshold"},
	        {"{\"category\":\"sms\",\"threshold\":1.5,\"trigger_by\":"
	         "\"count\",\"recurring\":\"none\",\"callback_url\":"
	         "\"https://h.example/\"}",
	         "threshold"},
	        {"{\"category\":\"sms\",\"threshold\":\"5\",\"trigger_by\":"
	         "\"count\",\"recurring\":\"none\",\"callback_url\":"
	         "\"https://h.example/\"}",
	         "threshold"},
	        {"{\"category\":\"sms\",\"threshold\":9007199254740993,"
	         "\"trigger_by\":\"count\",\"recurring\":\"none\","
	         "\"callback_url\":\"https://h.example/\"}",
	         "threshold"},
	        {"{\"category\":\"sms\",\"threshold\":1,\"trigger_by\":"
	         "\"count\",\"recurring\":\"none\",\"callback_url\":"
	         "\"ftp://h.example/\"}",
	         "callback_url"},
	        {"{\"category\":\"sms\",\"threshold\":1,\"trigger_by\":"
	         "\"count\",\"recurring\":\"none\",\"callback_url\":"
	         "\"https:///path\"}",
	         "callback_url"},
	        {"{\"category\":\"sms\",\"threshold\":1,\"trigger_by\":"
	         "\"count\",\"recurring\":\"none\"}",
	         "callback_url"},
	        {"{\"category\":\"sms\",\"threshold\":1,\"trigger_by\":"
	         "\"count\",\"recurring\":\"none\",\"callback_url\":"
	         "\"https://h.example/\",\"friendly_name\":7}",
	         "friendly_name"},
	        {"{\"category\":\"sms\",\"threshold\":1,\"trigger_by\":"
	         "\"count\",\"recurring\":\"none\",\"callback_url\":"
	         "\"https://h.example/\",\"colour\":\"red\"}",
	         "colour"},
	};
	char a[40], a_key[64], v[40], v_key[64], *long_url;
	json_t *ans;
	int status;

	t_account("admin", a, a_key);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		status = send_json("POST", a_key, "/v1/usage-triggers",
		                   bad[i].body, NULL, &ans);
		cr_expect_eq(status, 400, "%s: %d", bad[i].field, status);
		cr_expect_str_eq(
		        vox_json_str(
		                json_object_get(json_object_get(ans, "error"),
		                                "details"),
		                "field")
		                ?: "",
		        bad[i].field);
		json_decref(ans);
	}
	/* a URL over 2048 characters */
	long_url = malloc(2300);
	cr_assert_not_null(long_url);
	snprintf(long_url, 2300,
	         "{\"category\":\"sms\",\"threshold\":1,\"trigger_by\":"
	         "\"count\",\"recurring\":\"none\",\"callback_url\":"
	         "\"https://h.example/%02040d\"}",
	         0);
	status = send_json("POST", a_key, "/v1/usage-triggers", long_url, NULL,
	                   &ans);
	cr_expect_eq(status, 400, "long URL: %d", status);
	json_decref(ans);
	free(long_url);
	/* 2^53 is the largest threshold */
	status = send_json("POST", a_key, "/v1/usage-triggers",
	                   "{\"category\":\"all\",\"threshold\":"
	                   "9007199254740992,\"trigger_by\":\"price\","
	                   "\"recurring\":\"daily\",\"callback_url\":"
	                   "\"http://h.example:8080\"}",
	                   NULL, &ans);
	cr_expect_eq(status, 201, "2^53: %d", status);
	json_decref(ans);
	/* a viewer may read but not create */
	t_account("viewer", v, v_key);
	status = send_json("POST", v_key, "/v1/usage-triggers", TRIGGER_BODY,
	                   NULL, &ans);
	cr_expect_eq(status, 403, "viewer create: %d", status);
	json_decref(ans);
	status = get(v_key, "/v1/usage-triggers", &ans);
	cr_expect_eq(status, 200, "viewer list: %d", status);
	json_decref(ans);
}
