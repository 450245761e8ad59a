/*
 * The billing API (docs/BILLING.md "API") against the real stack, with
 * invoices written as SQL fixtures (as the invoicing worker would): the
 * list and one invoice, roles and tenancy, the commands with their state
 * checks and what reaches vox.cmd.invoicing, payment methods, settings,
 * cost analytics against an independent SQL sum, the PDF (pages, number,
 * DRAFT), the CSV (quoting, the usage detail streamed, equal to the rows),
 * the payment gateway's signed webhooks and the purchase block while
 * billing is suspended. One ingress for the suite.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "helpers.h"
#include "vox_json.h"
#include "vox_uuid.h"

#define TOPIC  "vox.cmd.invoicing"
#define SECRET "whsec_test_billing"

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
	                           "VOX_RATE_READ=1000",
	                           "VOX_PAYMENT_WEBHOOK_SECRET=" SECRET, NULL};
	ingress = t_spawn("ingress", "billing-api-ingress.log", env);
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
}

static void suite_stop(void)
{
	int status = t_stop(ingress, SIGTERM, 20000);

	cr_expect_eq(status, 0, "ingress exit status %d", status);
}

TestSuite(billing_api, .init = suite_start, .fini = suite_stop, .timeout = 180);

/* ---------------------------------------------------------------- helpers */

static void sql_run(const char *sql, int n, const char *const *params)
{
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	cr_assert_eq(vox_pg_exec(pg, sql, n, params, NULL, &err), 0, "%s: %s",
	             sql, err.message);
	vox_pg_destroy(pg);
}

/* The first value of the first row, as text (malloc'd). */
static char *sql_value(const char *sql, int n, const char *const *params)
{
	vox_pg_t *pg = t_pg();
	PGresult *res = NULL;
	vox_error_t err;
	char *v;

	cr_assert_eq(vox_pg_exec(pg, sql, n, params, &res, &err), 0, "%s: %s",
	             sql, err.message);
	cr_assert_gt(PQntuples(res), 0, "no row: %s", sql);
	v = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	vox_pg_destroy(pg);
	return v;
}

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
	*answer = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return status;
}

static const char *error_code(const json_t *answer)
{
	const char *code =
	        vox_json_str(json_object_get(answer, "error"), "code");

	return code ? code : "(none)";
}

/* Expects status and error code; frees the answer. */
static void refused(const char *method, const char *key, const char *path,
                    const char *body, int want, const char *code)
{
	json_t *ans = NULL;
	int status = call(method, key, path, body, NULL, &ans);

	cr_expect_eq(status, want, "%s %s %s: %d, wanted %d (%s)", method, path,
	             body ? body : "", status, want, error_code(ans));
	if (code != NULL)
		cr_expect_str_eq(error_code(ans), code, "%s %s", method, path);
	json_decref(ans);
}

/* GET with the raw bytes (a PDF holds NULs) and the response headers. */
static long fetch(const char *key, const char *path, struct t_http_buf *body,
                  struct t_http_buf *headers)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *list = NULL;
	char url[512], auth[96];
	long status = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	list = curl_slist_append(list, auth);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, t_http_collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, t_http_collect);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, headers);
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(list);
	curl_easy_cleanup(curl);
	return status;
}

/* An invoice of account (SQL, as the worker writes one): status, number
 * (NULL for a draft), the period's local first day in UTC, amounts. */
static void invoice(const char *account, const char *status, const char *number,
                    const char *start, long long subtotal, long long tax,
                    long long due, char id[40])
{
	char sub[24], tx[24], tot[24], du[24], seq[8] = "";

	vox_uuid7(id);
	snprintf(sub, sizeof(sub), "%lld", subtotal);
	snprintf(tx, sizeof(tx), "%lld", tax);
	snprintf(tot, sizeof(tot), "%lld", subtotal + tax);
	snprintf(du, sizeof(du), "%lld", due);
	if (number != NULL)
		snprintf(seq, sizeof(seq), "%s", number + strlen(number) - 6);
	const char *params[] = {
	        id,    account, status, number, number ? seq : NULL,
	        start, sub,     tx,     tot,    du};
	sql_run("INSERT INTO invoices (id, account_id, status, number, seq, "
	        "period_start, period_end, subtotal_micros, tax_micros, "
	        "total_micros, amount_due_micros, currency, issued_at, due_at, "
	        "tax_rate_ppm, timezone) VALUES ($1::uuid, $2::uuid, $3, $4, "
	        "$5::int, $6::timestamptz, $6::timestamptz + interval '1 "
	        "month', $7::bigint, $8::bigint, $9::bigint, $10::bigint, "
	        "'USD', CASE WHEN $3 = 'draft' THEN NULL ELSE "
	        "$6::timestamptz + interval '1 month 1 day' END, CASE WHEN $3 "
	        "= 'draft' THEN NULL ELSE $6::timestamptz + interval '1 month "
	        "1 day' END, 88750, 'UTC')",
	        10, params);
}

static void line(const char *invoice_id, int no, const char *kind,
                 const char *description, const char *e164,
                 const char *event_type, long long qty, const char *unit,
                 long long price, long long amount)
{
	char n[8], q[24], p[24], a[24];

	snprintf(n, sizeof(n), "%d", no);
	snprintf(q, sizeof(q), "%lld", qty);
	snprintf(p, sizeof(p), "%lld", price);
	snprintf(a, sizeof(a), "%lld", amount);
	const char *params[] = {invoice_id, n, kind, description, e164,
	                        event_type, q, unit, p,           a};
	sql_run("INSERT INTO invoice_lines (invoice_id, line_no, kind, "
	        "description, e164, event_type, quantity, unit, "
	        "unit_price_micros, amount_micros, currency, period_start, "
	        "period_end) SELECT $1::uuid, $2::int, $3, $4, $5, $6, "
	        "$7::bigint, $8, $9::bigint, $10::bigint, 'USD', "
	        "i.period_start, i.period_end FROM invoices i WHERE i.id = "
	        "$1::uuid",
	        10, params);
}

/* An account with an owner key, and a finalized November 2026 invoice:
 * two number lines, one usage line; total 2,165,000 + tax. */
static void finalized_fixture(char account[40], char key[64], char id[40],
                              char number[32])
{
	t_account("owner", account, key);
	snprintf(number, 32, "%.8s-000001", account);
	for (char *c = number; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	invoice(account, "finalized", number, "2026-11-01T00:00:00Z", 2165000,
	        192144, 2360000, id);
	line(id, 1, "number_monthly", "+14155550100 monthly, 30/30 days",
	     "+14155550100", NULL, 1, "month", 1000000, 1000000);
	line(id, 2, "number_monthly",
	     "+14155550101 monthly, \"partial\", 21/30 days", "+14155550101",
	     NULL, 1, "month", 1150000, 805000);
	line(id, 3, "usage", "Outbound calls", NULL, "outbound_call", 3600,
	     "second", 0, 360000);
}

/* ---------------------------------------------------------------- reads */

Test(billing_api, invoice_list_get_and_tenancy)
{
	char account[40], key[64], id[40], number[32], other[40], okey[64];
	char draft[40], path[160], vkey[64];
	json_t *ans, *data;

	finalized_fixture(account, key, id, number);
	invoice(account, "draft", NULL, "2026-12-01T00:00:00Z", 1000, 0, 0,
	        draft);
	t_key(account, "viewer", vkey, NULL);
	t_account("owner", other, okey);

	/* newest period first, paged */
	cr_assert_eq(
	        call("GET", vkey, "/v1/invoices?limit=1", NULL, NULL, &ans),
	        200);
	data = json_object_get(ans, "data");
	cr_assert_eq(json_array_size(data), 1);
	cr_expect_str_eq(vox_json_str(json_array_get(data, 0), "id"), draft);
	cr_expect(json_is_null(
	        json_object_get(json_array_get(data, 0), "number")));
	const char *cursor = vox_json_str(ans, "next_cursor");
	cr_assert_not_null(cursor);
	snprintf(path, sizeof(path), "/v1/invoices?limit=1&cursor=%s", cursor);
	json_decref(ans);
	cr_assert_eq(call("GET", vkey, path, NULL, NULL, &ans), 200);
	data = json_object_get(ans, "data");
	cr_assert_eq(json_array_size(data), 1);
	cr_expect_str_eq(vox_json_str(json_array_get(data, 0), "id"), id);
	cr_expect(json_is_null(json_object_get(ans, "next_cursor")));
	json_decref(ans);
	/* by status */
	cr_assert_eq(
	        call("GET", key, "/v1/invoices?status=draft", NULL, NULL, &ans),
	        200);
	cr_expect_eq(json_array_size(json_object_get(ans, "data")), 1);
	json_decref(ans);
	refused("GET", key, "/v1/invoices?status=open", NULL, 400,
	        "invalid_parameter");
	refused("GET", key, "/v1/invoices?limit=101", NULL, 400,
	        "invalid_parameter");
	refused("GET", key, "/v1/invoices?cursor=nope", NULL, 400,
	        "invalid_parameter");
	/* another account sees none of it */
	cr_assert_eq(call("GET", okey, "/v1/invoices", NULL, NULL, &ans), 200);
	cr_expect_eq(json_array_size(json_object_get(ans, "data")), 0);
	json_decref(ans);

	/* one invoice with its lines, credit notes and payments */
	const char *cn[] = {account, id};
	sql_run("INSERT INTO credit_notes (account_id, invoice_id, seq, "
	        "number, amount_micros, currency, reason, applied_to) VALUES "
	        "($1::uuid, $2::uuid, 1, 'CN-000001', 5000, 'USD', 'goodwill, "
	        "\"sorry\"', 'invoice')",
	        2, cn);
	sql_run("INSERT INTO payments (account_id, invoice_id, amount_micros, "
	        "currency, status, gateway, gateway_request_key, failure_code) "
	        "VALUES ($1::uuid, $2::uuid, 2360000, 'USD', 'failed', "
	        "'sandbox', gen_random_uuid()::text, 'insufficient_funds')",
	        2, cn);
	snprintf(path, sizeof(path), "/v1/invoices/%s", id);
	cr_assert_eq(call("GET", vkey, path, NULL, NULL, &ans), 200);
	cr_expect_str_eq(vox_json_str(ans, "number"), number);
	cr_expect_str_eq(vox_json_str(ans, "status"), "finalized");
	cr_expect_str_eq(vox_json_str(ans, "currency"), "USD");
	cr_expect_eq(json_integer_value(json_object_get(ans, "total_micros")),
	             2357144);
	cr_expect_eq(json_integer_value(json_object_get(ans, "tax_rate_ppm")),
	             88750);
	cr_expect_str_eq(vox_json_str(ans, "amount_due"), "2.36");
	cr_expect_str_eq(vox_json_str(ans, "period_start"),
	                 "2026-11-01T00:00:00.000000Z");
	data = json_object_get(ans, "lines");
	cr_assert_eq(json_array_size(data), 3);
	cr_expect_eq(json_integer_value(json_object_get(json_array_get(data, 1),
	                                                "amount_micros")),
	             805000);
	cr_expect_str_eq(vox_json_str(json_array_get(data, 2), "event_type"),
	                 "outbound_call");
	data = json_object_get(ans, "credit_notes");
	cr_assert_eq(json_array_size(data), 1);
	cr_expect_str_eq(vox_json_str(json_array_get(data, 0), "number"),
	                 "CN-000001");
	data = json_object_get(ans, "payments");
	cr_assert_eq(json_array_size(data), 1);
	cr_expect_str_eq(vox_json_str(json_array_get(data, 0), "failure_code"),
	                 "insufficient_funds");
	json_decref(ans);
	/* another account's, an unknown and a malformed id: 404 alike */
	refused("GET", okey, path, NULL, 404, "invoice_not_found");
	refused("GET", key, "/v1/invoices/0193a1b2-0000-7000-8000-000000000000",
	        NULL, 404, "invoice_not_found");
	refused("GET", key, "/v1/invoices/nope", NULL, 404,
	        "invoice_not_found");
	snprintf(path, sizeof(path), "/v1/invoices/%s/pdf", id);
	refused("GET", okey, path, NULL, 404, "invoice_not_found");
	snprintf(path, sizeof(path), "/v1/invoices/%s/csv", id);
	refused("GET", okey, path, NULL, 404, "invoice_not_found");
}

/* ---------------------------------------------------------------- commands */

struct seen {
	const char *op, *type;
	json_t *event;
	int count;
};

static void find_command(void *arg, const char *payload, size_t len,
                         const char *header)
{
	struct seen *s = arg;
	json_t *ev = json_loadb(payload, len, 0, NULL);
	const char *op =
	        vox_json_str(json_object_get(ev, "data"), "operation_id");

	(void)header;
	if (op != NULL && strcmp(op, s->op) == 0 &&
	    strcmp(vox_json_str(ev, "type"), s->type) == 0) {
		s->count++;
		json_decref(s->event);
		s->event = ev;
		return;
	}
	json_decref(ev);
}

/* The command with operation op: its data (owned by *s). */
static json_t *command(struct seen *s, const char *op, const char *type)
{
	s->op = op;
	s->type = type;
	s->event = NULL;
	s->count = 0;
	t_consume_all(TOPIC, 1500, NULL, find_command, s);
	cr_assert_eq(s->count, 1, "%s seen %d times", type, s->count);
	return json_object_get(s->event, "data");
}

Test(billing_api, generate_checks_the_period_and_publishes)
{
	char account[40], key[64], vkey[64], dkey[64], bkey[64];
	char op[64], *start;
	json_t *ans, *data;
	struct seen s;

	t_account("owner", account, key);
	t_key(account, "viewer", vkey, NULL);
	t_key(account, "developer", dkey, NULL);
	t_key(account, "billing", bkey, NULL);
	const char *tz[] = {account};
	sql_run("UPDATE accounts SET timezone = 'America/New_York' WHERE id = "
	        "$1::uuid",
	        1, tz);
	/* roles: billing = owner, admin, billing */
	refused("POST", vkey, "/v1/invoices",
	        "{\"period_start\":\"2026-11-01\"}", 403, "permission_denied");
	refused("POST", dkey, "/v1/invoices",
	        "{\"period_start\":\"2026-11-01\"}", 403, "permission_denied");
	/* shape */
	refused("POST", bkey, "/v1/invoices", "{}", 400, "invalid_body");
	refused("POST", bkey, "/v1/invoices", "{\"period_start\":\"2026-11\"}",
	        400, "invalid_body");
	refused("POST", bkey, "/v1/invoices",
	        "{\"period_start\":\"2026-02-30\"}", 400, "invalid_body");
	refused("POST", bkey, "/v1/invoices", "{\"period_start\":20261101}",
	        400, "invalid_body");
	refused("POST", bkey, "/v1/invoices",
	        "{\"period_start\":\"2026-11-01\",\"x\":1}", 400,
	        "invalid_body");
	/* not the anchor day; in the future */
	refused("POST", bkey, "/v1/invoices",
	        "{\"period_start\":\"2026-11-02\"}", 422, "invalid_period");
	refused("POST", bkey, "/v1/invoices",
	        "{\"period_start\":\"2999-01-01\"}", 422, "invalid_period");
	/* anchor 31 in a short month starts on its last day */
	sql_run("INSERT INTO billing_accounts (account_id, anchor_day) VALUES "
	        "($1::uuid, 31)",
	        1, tz);
	cr_assert_eq(call("POST", bkey, "/v1/invoices",
	                  "{\"period_start\":\"2026-02-28\"}", "gen-1", &ans),
	             202, "%s", error_code(ans));
	snprintf(op, sizeof(op), "%s", vox_json_str(ans, "id"));
	cr_expect_str_eq(vox_json_str(ans, "kind"), "invoice.generate");
	json_decref(ans);
	/* the same key: the same operation */
	cr_assert_eq(call("POST", bkey, "/v1/invoices",
	                  "{\"period_start\":\"2026-02-28\"}", "gen-1", &ans),
	             202);
	cr_expect_str_eq(vox_json_str(ans, "id"), op);
	json_decref(ans);
	data = command(&s, op, "vox.invoice.generate_requested");
	cr_expect_str_eq(vox_json_str(data, "account_id"), account);
	/* local midnight of Feb 28 and Mar 31 in New York (EST, EDT) */
	cr_expect_str_eq(vox_json_str(data, "period_start"),
	                 "2026-02-28T05:00:00.000000Z");
	cr_expect_str_eq(vox_json_str(data, "period_end"),
	                 "2026-03-31T04:00:00.000000Z");
	cr_expect_str_eq(vox_json_str(s.event, "accountid"), account);
	start = sql_value("SELECT vox_iso(period_start) FROM billing_period_of("
	                  "'2026-03-01T12:00:00Z', 31::smallint, "
	                  "'America/New_York')",
	                  0, NULL);
	cr_expect_str_eq(start, "2026-02-28T05:00:00.000000Z");
	free(start);
	json_decref(s.event);
}

Test(billing_api, invoice_actions_state_checks)
{
	char account[40], key[64], id[40], number[32], paid[40], draft[40];
	char path[200], op[64], vkey[64], reason[600];
	json_t *ans, *data;
	struct seen s;

	finalized_fixture(account, key, id, number);
	t_key(account, "viewer", vkey, NULL);
	invoice(account, "paid", "ABCDEF01-000002", "2026-10-01T00:00:00Z",
	        1000000, 0, 0, paid);
	invoice(account, "draft", NULL, "2026-12-01T00:00:00Z", 1000, 0, 0,
	        draft);
	/* finalize: only a draft */
	snprintf(path, sizeof(path), "/v1/invoices/%s/actions/finalize", id);
	refused("POST", key, path, NULL, 409, "invalid_state");
	refused("POST", vkey, path, NULL, 403, "permission_denied");
	snprintf(path, sizeof(path), "/v1/invoices/%s/actions/finalize", draft);
	cr_assert_eq(call("POST", key, path, NULL, NULL, &ans), 202);
	snprintf(op, sizeof(op), "%s", vox_json_str(ans, "id"));
	json_decref(ans);
	data = command(&s, op, "vox.invoice.finalize_requested");
	cr_expect_str_eq(vox_json_str(data, "invoice_id"), draft);
	cr_expect_str_eq(vox_json_str(data, "account_id"), account);
	json_decref(s.event);
	/* void: a paid invoice refused, a finalized one taken */
	snprintf(path, sizeof(path), "/v1/invoices/%s/actions/void", paid);
	refused("POST", key, path, NULL, 409, "invalid_state");
	/* (each command on an invoice of its own: an invoicing worker on
	 * the shared topic may act on them meanwhile) */
	char other[40];
	invoice(account, "finalized", "ABCDEF01-000003", "2026-09-01T00:00:00Z",
	        1000, 0, 1000, other);
	snprintf(path, sizeof(path), "/v1/invoices/%s/actions/void", other);
	cr_expect_eq(call("POST", key, path, "{}", NULL, &ans), 202);
	json_decref(ans);
	refused("POST", key, path, "{\"now\":true}", 400, "invalid_body");
	/* mark-uncollectible: not a draft */
	snprintf(path, sizeof(path),
	         "/v1/invoices/%s/actions/mark-uncollectible", draft);
	refused("POST", key, path, NULL, 409, "invalid_state");
	invoice(account, "finalized", "ABCDEF01-000004", "2026-08-01T00:00:00Z",
	        1000, 0, 1000, other);
	snprintf(path, sizeof(path),
	         "/v1/invoices/%s/actions/mark-uncollectible", other);
	cr_expect_eq(call("POST", key, path, NULL, NULL, &ans), 202);
	json_decref(ans);
	/* pay: nothing due on a paid one; no default method; in flight */
	snprintf(path, sizeof(path), "/v1/invoices/%s/actions/pay", paid);
	refused("POST", key, path, NULL, 409, "invalid_state");
	snprintf(path, sizeof(path), "/v1/invoices/%s/actions/pay", id);
	refused("POST", key, path, NULL, 409, "no_payment_method");
	const char *pm[] = {account, id};
	sql_run("INSERT INTO payment_methods (account_id, gateway, "
	        "gateway_token, is_default, status, brand, last4) VALUES "
	        "($1::uuid, 'sandbox', 'pm_' || replace($1::text, '-', ''), "
	        "true, "
	        "'active', 'visa', '4242')",
	        1, pm);
	cr_assert_eq(call("POST", key, path, NULL, NULL, &ans), 202);
	snprintf(op, sizeof(op), "%s", vox_json_str(ans, "id"));
	json_decref(ans);
	data = command(&s, op, "vox.invoice.pay_requested");
	cr_expect_str_eq(vox_json_str(data, "invoice_id"), id);
	json_decref(s.event);
	sql_run("INSERT INTO payments (account_id, invoice_id, amount_micros, "
	        "currency, status, gateway, gateway_request_key) VALUES "
	        "($1::uuid, $2::uuid, 2360000, 'USD', 'processing', 'sandbox', "
	        "gen_random_uuid()::text) ON CONFLICT DO NOTHING",
	        2, pm);
	refused("POST", key, path, NULL, 409, "payment_in_progress");

	/* credit notes */
	snprintf(path, sizeof(path), "/v1/invoices/%s/credit-notes", id);
	refused("POST", key, path, "{\"amount_micros\":0,\"reason\":\"x\"}",
	        400, "invalid_body");
	refused("POST", key, path, "{\"amount_micros\":1.5,\"reason\":\"x\"}",
	        400, "invalid_body");
	refused("POST", key, path, "{\"amount_micros\":10}", 400,
	        "invalid_body");
	refused("POST", key, path, "{\"amount_micros\":10,\"reason\":\"\"}",
	        400, "invalid_body");
	memset(reason, 'r', 501);
	reason[501] = '\0';
	char body[700];
	snprintf(body, sizeof(body), "{\"amount_micros\":10,\"reason\":\"%s\"}",
	         reason);
	refused("POST", key, path, body, 400, "invalid_body");
	refused("POST", key, path,
	        "{\"amount_micros\":2357145,\"reason\":\"too much\"}", 422,
	        "credit_note_too_large");
	refused("POST", vkey, path, "{\"amount_micros\":10,\"reason\":\"x\"}",
	        403, "permission_denied");
	/* 500 characters (UTF-8: 2 bytes each here) are fine */
	char *big = malloc(1100);
	for (int i = 0; i < 500; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2);
	big[1000] = '\0';
	char *body2 = malloc(1200);
	snprintf(body2, 1200, "{\"amount_micros\":2357144,\"reason\":\"%s\"}",
	         big);
	cr_assert_eq(call("POST", key, path, body2, "cn-1", &ans), 202, "%s",
	             error_code(ans));
	snprintf(op, sizeof(op), "%s", vox_json_str(ans, "id"));
	json_decref(ans);
	data = command(&s, op, "vox.credit_note.create_requested");
	cr_expect_eq(json_integer_value(json_object_get(data, "amount_micros")),
	             2357144);
	cr_expect_str_eq(vox_json_str(data, "reason"), big);
	json_decref(s.event);
	free(big);
	free(body2);
	/* a credit note on a draft */
	snprintf(path, sizeof(path), "/v1/invoices/%s/credit-notes", draft);
	refused("POST", key, path, "{\"amount_micros\":1,\"reason\":\"x\"}",
	        409, "invalid_state");
}

/* ---------------------------------------------------------------- methods */

Test(billing_api, payment_methods)
{
	char account[40], key[64], other[40], okey[64], vkey[64];
	char token[160], body[256], path[160], op[64], *pmid;
	json_t *ans, *data;
	struct seen s;

	t_account("billing", account, key);
	t_key(account, "viewer", vkey, NULL);
	t_account("owner", other, okey);
	refused("POST", key, "/v1/payment-methods", "{}", 400, "invalid_body");
	refused("POST", key, "/v1/payment-methods", "{\"token\":\"tok_1\"}",
	        400, "invalid_body");
	refused("POST", key, "/v1/payment-methods", "{\"token\":\"pm_a-b\"}",
	        400, "invalid_body");
	refused("POST", key, "/v1/payment-methods",
	        "{\"token\":\"pm_ok\",\"default\":\"yes\"}", 400,
	        "invalid_body");
	refused("POST", vkey, "/v1/payment-methods", "{\"token\":\"pm_ok\"}",
	        403, "permission_denied");
	/* 121 characters: refused; 120: taken */
	snprintf(token, sizeof(token), "pm_%.32s", account);
	for (char *c = token; *c; c++)
		if (*c == '-')
			*c = '_';
	size_t n = strlen(token);
	memset(token + n, 'x', 121 - n);
	token[121] = '\0';
	snprintf(body, sizeof(body), "{\"token\":\"%s\",\"default\":true}",
	         token);
	refused("POST", key, "/v1/payment-methods", body, 400, "invalid_body");
	token[120] = '\0';
	snprintf(body, sizeof(body), "{\"token\":\"%s\",\"default\":true}",
	         token);
	cr_assert_eq(
	        call("POST", key, "/v1/payment-methods", body, "pm-1", &ans),
	        202, "%s", error_code(ans));
	snprintf(op, sizeof(op), "%s", vox_json_str(ans, "id"));
	json_decref(ans);
	data = command(&s, op, "vox.payment_method.attach_requested");
	cr_expect_str_eq(vox_json_str(data, "account_id"), account);
	cr_expect(json_is_true(json_object_get(data, "default")));
	const char *tp[] = {token};
	pmid = sql_value("SELECT id FROM payment_methods WHERE gateway_token = "
	                 "$1",
	                 1, tp);
	cr_expect_str_eq(vox_json_str(data, "payment_method_id"), pmid);
	json_decref(s.event);
	/* the same token again: this account's own pending one is sent
	 * again (a retry); another account's attempt is refused */
	snprintf(body, sizeof(body), "{\"token\":\"%s\"}", token);
	refused("POST", okey, "/v1/payment-methods", body, 409,
	        "payment_method_exists");
	/* listed without the token */
	cr_assert_eq(call("GET", vkey, "/v1/payment-methods", NULL, NULL, &ans),
	             200);
	data = json_object_get(ans, "data");
	cr_assert_eq(json_array_size(data), 1);
	/* pending; or failed already if an invoicing worker runs on the
	 * shared topic (the sandbox does not know this token) */
	const char *st = vox_json_str(json_array_get(data, 0), "status");
	cr_expect(strcmp(st, "pending") == 0 || strcmp(st, "failed") == 0, "%s",
	          st);
	char *text = json_dumps(ans, 0);
	cr_expect_null(strstr(text, token), "the token is shown: %s", text);
	free(text);
	json_decref(ans);
	/* make-default: pending refused; active taken, the old default
	 * cleared */
	snprintf(path, sizeof(path),
	         "/v1/payment-methods/%s/actions/make-default", pmid);
	refused("POST", key, path, NULL, 409, "invalid_state");
	refused("POST", okey, path, NULL, 404, "payment_method_not_found");
	const char *ap[] = {account, pmid};
	sql_run("UPDATE payment_methods SET status = 'active', brand = 'visa', "
	        "last4 = '4242', exp_month = 12, exp_year = 2030 WHERE id = "
	        "$2::uuid AND account_id = $1::uuid",
	        2, ap);
	sql_run("INSERT INTO payment_methods (account_id, gateway, "
	        "gateway_token, is_default, status) VALUES ($1::uuid, "
	        "'sandbox', 'pm_old_' || replace($1::text, '-', ''), true, "
	        "'active')",
	        1, ap);
	cr_assert_eq(call("POST", key, path, NULL, NULL, &ans), 200, "%s",
	             error_code(ans));
	cr_expect(json_is_true(json_object_get(ans, "default")));
	cr_expect_str_eq(vox_json_str(ans, "last4"), "4242");
	json_decref(ans);
	char *defaults = sql_value("SELECT count(*) FROM payment_methods WHERE "
	                           "account_id = $1::uuid AND is_default",
	                           1, ap);
	cr_expect_str_eq(defaults, "1");
	free(defaults);
	/* delete: soft; another account's 404; twice 404 */
	snprintf(path, sizeof(path), "/v1/payment-methods/%s", pmid);
	refused("DELETE", okey, path, NULL, 404, "payment_method_not_found");
	refused("DELETE", vkey, path, NULL, 403, "permission_denied");
	refused("DELETE", key, path, NULL, 204, NULL);
	refused("DELETE", key, path, NULL, 404, "payment_method_not_found");
	refused("DELETE", key, "/v1/payment-methods/nope", NULL, 404,
	        "payment_method_not_found");
	char *deleted = sql_value("SELECT deleted_at IS NOT NULL FROM "
	                          "payment_methods WHERE id = $2::uuid "
	                          "AND account_id = $1::uuid",
	                          2, ap);
	cr_expect_str_eq(deleted, "t");
	free(deleted);
	free(pmid);
}

/* ---------------------------------------------------------------- settings */

Test(billing_api, settings_and_anchor_day)
{
	char account[40], key[64], vkey[64], id[40];
	json_t *ans;

	t_account("owner", account, key);
	t_key(account, "viewer", vkey, NULL);
	cr_assert_eq(
	        call("GET", vkey, "/v1/billing/settings", NULL, NULL, &ans),
	        200);
	cr_expect_eq(json_integer_value(json_object_get(ans, "anchor_day")), 1);
	cr_expect_eq(json_integer_value(json_object_get(ans, "grace_days")), 3);
	cr_expect_str_eq(vox_json_str(ans, "standing"), "good");
	cr_expect_str_eq(vox_json_str(ans, "dunning_plan"), "standard");
	cr_expect_eq(json_integer_value(
	                     json_object_get(ans, "credit_balance_micros")),
	             0);
	json_decref(ans);
	refused("PATCH", vkey, "/v1/billing/settings", "{\"anchor_day\":5}",
	        403, "permission_denied");
	refused("PATCH", key, "/v1/billing/settings", "{\"anchor_day\":0}", 400,
	        "invalid_body");
	refused("PATCH", key, "/v1/billing/settings", "{\"anchor_day\":32}",
	        400, "invalid_body");
	refused("PATCH", key, "/v1/billing/settings", "{\"anchor_day\":\"5\"}",
	        400, "invalid_body");
	refused("PATCH", key, "/v1/billing/settings", "{\"tax_rate_ppm\":0}",
	        400, "invalid_body");
	cr_assert_eq(call("PATCH", key, "/v1/billing/settings",
	                  "{\"anchor_day\":31}", NULL, &ans),
	             200, "%s", error_code(ans));
	cr_expect_eq(json_integer_value(json_object_get(ans, "anchor_day")),
	             31);
	json_decref(ans);
	invoice(account, "draft", NULL, "2026-10-31T00:00:00Z", 0, 0, 0, id);
	refused("PATCH", key, "/v1/billing/settings", "{\"anchor_day\":1}", 409,
	        "anchor_day_locked");
}

/* ---------------------------------------------------------------- analytics */

static void daily(const char *account, const char *day, const char *e164,
                  const char *type, long records, long long cost)
{
	char r[24], c[24];

	snprintf(r, sizeof(r), "%ld", records);
	snprintf(c, sizeof(c), "%lld", cost);
	const char *params[] = {account, day, e164, type, r, c};
	sql_run("INSERT INTO usage_daily (account_id, day, e164, event_type, "
	        "currency, records, cost_micros) VALUES ($1::uuid, $2::date, "
	        "$3, $4, 'USD', $5::bigint, $6::bigint)",
	        6, params);
}

static long long item_total(const json_t *ans, const char *group_by,
                            const char *key, const char *field)
{
	const json_t *item;
	size_t i;

	json_array_foreach(json_object_get(ans, "items"), i, item)
	{
		const char *k = vox_json_str(item, group_by);

		if (k != NULL && strcmp(k, key) == 0)
			return json_integer_value(json_object_get(item, field));
	}
	return -1;
}

Test(billing_api, cost_analytics_equals_sql)
{
	char account[40], key[64], id[40], number[32], other[40], okey[64];
	json_t *ans;
	char *want;

	finalized_fixture(account, key, id, number);
	t_account("owner", other, okey);
	daily(account, "2026-11-01", "+14155550100", "inbound_call", 3, 4500);
	daily(account, "2026-11-02", "+14155550100", "outbound_call", 2,
	      120000);
	daily(account, "2026-11-02", "+14155550101", "sms_sent", 10, 79000);
	daily(account, "2026-12-05", "+14155550101", "sms_sent", 1, 7900);
	daily(other, "2026-11-02", "+14155550101", "sms_sent", 1, 999);
	cr_assert_eq(call("GET", key,
	                  "/v1/cost-analytics?from=2026-11-01&to=2026-11-30"
	                  "&group_by=category",
	                  NULL, NULL, &ans),
	             200);
	const char *params[] = {account};
	want = sql_value(
	        "SELECT (SELECT sum(cost_micros) FROM usage_daily WHERE "
	        "account_id = $1::uuid AND day BETWEEN '2026-11-01' AND "
	        "'2026-11-30') + (SELECT sum(l.amount_micros) FROM "
	        "invoice_lines l JOIN invoices i ON i.id = l.invoice_id WHERE "
	        "i.account_id = $1::uuid AND l.kind IN ('number_monthly', "
	        "'number_setup') AND l.period_start >= '2026-11-01' AND "
	        "l.period_start < '2026-12-01')",
	        1, params);
	cr_expect_eq(json_integer_value(json_object_get(
	                     json_object_get(ans, "totals"), "total_micros")),
	             strtoll(want, NULL, 10), "total %s", want);
	free(want);
	cr_expect_eq(
	        item_total(ans, "category", "number_monthly", "rental_micros"),
	        1805000);
	cr_expect_eq(item_total(ans, "category", "sms_sent", "usage_micros"),
	             79000);
	cr_expect_eq(item_total(ans, "category", "usage", "total_micros"), -1,
	             "the invoice's usage line is not counted twice");
	json_decref(ans);
	/* by number: usage and rental of one number together */
	cr_assert_eq(call("GET", key,
	                  "/v1/cost-analytics?from=2026-11-01&to="
	                  "2026-11-30T23:59:59Z&group_by=number",
	                  NULL, NULL, &ans),
	             200);
	cr_expect_eq(item_total(ans, "number", "+14155550100", "total_micros"),
	             1000000 + 4500 + 120000);
	cr_expect_eq(item_total(ans, "number", "+14155550101", "total_micros"),
	             805000 + 79000);
	json_decref(ans);
	cr_assert_eq(call("GET", key,
	                  "/v1/cost-analytics?from=2026-11-01&to=2026-12-31"
	                  "&group_by=day",
	                  NULL, NULL, &ans),
	             200);
	cr_expect_eq(item_total(ans, "day", "2026-11-01", "total_micros"),
	             1805000 + 4500);
	cr_expect_eq(item_total(ans, "day", "2026-12-05", "usage_micros"),
	             7900);
	json_decref(ans);
	/* bad arguments */
	refused("GET", key, "/v1/cost-analytics?from=2026-13-01", NULL, 400,
	        "invalid_parameter");
	refused("GET", key, "/v1/cost-analytics?from=2026-11-02&to=2026-11-01",
	        NULL, 400, "invalid_parameter");
	refused("GET", key, "/v1/cost-analytics?from=2025-01-01&to=2026-01-02",
	        NULL, 400, "invalid_parameter");
	refused("GET", key, "/v1/cost-analytics?group_by=month", NULL, 400,
	        "invalid_parameter");
	/* 366 days is the most */
	refused("GET", key, "/v1/cost-analytics?from=2024-01-01&to=2024-12-31",
	        NULL, 200, NULL);
}

/* ---------------------------------------------------------------- PDF, CSV */

static int count_of(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	int c = 0;

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			c++;
	return c;
}

Test(billing_api, pdf_one_page_many_pages_and_draft)
{
	char account[40], key[64], id[40], number[32], draft[40], path[160];
	struct t_http_buf body = {0}, headers = {0};

	finalized_fixture(account, key, id, number);
	snprintf(path, sizeof(path), "/v1/invoices/%s/pdf", id);
	cr_assert_eq(fetch(key, path, &body, &headers), 200);
	cr_assert_gt(body.len, 5);
	cr_expect_eq(memcmp(body.data, "%PDF-", 5), 0);
	cr_expect_not_null(strstr(headers.data, "application/pdf"));
	cr_expect_gt(count_of(body.data, body.len, number), 0,
	             "the invoice number is in the document");
	cr_expect_gt(count_of(body.data, body.len, "/Count 1"), 0);
	free(body.data);
	free(headers.data);
	/* 150 lines: several pages, each with the table header */
	invoice(account, "draft", NULL, "2026-12-01T00:00:00Z", 150000, 0, 0,
	        draft);
	for (int i = 1; i <= 150; i++) {
		char desc[64], e164[20];

		snprintf(e164, sizeof(e164), "+1415555%04d", i);
		snprintf(desc, sizeof(desc), "%s monthly", e164);
		line(draft, i, "number_monthly", desc, e164, NULL, 1, "month",
		     1000, 1000);
	}
	snprintf(path, sizeof(path), "/v1/invoices/%s/pdf", draft);
	body = (struct t_http_buf){0};
	headers = (struct t_http_buf){0};
	cr_assert_eq(fetch(key, path, &body, &headers), 200);
	cr_expect_eq(memcmp(body.data, "%PDF-", 5), 0);
	cr_expect_gt(count_of(body.data, body.len, "/Count 4") +
	                     count_of(body.data, body.len, "/Count 5"),
	             0, "150 lines take 4 or 5 pages");
	cr_expect_gt(count_of(body.data, body.len, "Invoice DRAFT"), 0,
	             "a draft says so");
	free(body.data);
	free(headers.data);
}

static int csv_rows(const char *text)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, "\r\n")) != NULL; p += 2)
		n++;
	return n;
}

Test(billing_api, csv_lines_and_usage_detail)
{
	char account[40], key[64], id[40], number[32], path[160];
	struct t_http_buf body = {0}, headers = {0};

	finalized_fixture(account, key, id, number);
	snprintf(path, sizeof(path), "/v1/invoices/%s/csv", id);
	cr_assert_eq(fetch(key, path, &body, &headers), 200);
	cr_expect_not_null(strstr(headers.data, "text/csv"));
	cr_expect_eq(strncmp(body.data,
	                     "line_no,kind,description,phone_number,"
	                     "event_type,quantity,unit,unit_price_micros,"
	                     "amount_micros,days,period_days,period_start,"
	                     "period_end\r\n",
	                     strlen("line_no,kind,description,phone_number,"
	                            "event_type,quantity,unit,unit_price_"
	                            "micros,amount_micros,days,period_days,"
	                            "period_start,period_end\r\n")),
	             0, "%s", body.data);
	cr_expect_not_null(strstr(body.data,
	                          "\"+14155550101 monthly, \"\"partial\"\", "
	                          "21/30 days\""),
	                   "RFC 4180 quoting: %s", body.data);
	cr_expect_eq(csv_rows(body.data), 4);
	free(body.data);
	free(headers.data);
	refused("GET", key, "/v1/invoices/nope/csv", NULL, 404,
	        "invoice_not_found");
	snprintf(path, sizeof(path), "/v1/invoices/%s/csv?detail=all", id);
	refused("GET", key, path, NULL, 400, "invalid_parameter");

	/* the usage detail: 3000 records in the period (one unrated, one of
	 * December, one recorded after the cutoff: not billed) */
	const char *params[] = {account, id};
	sql_run("INSERT INTO usage_records (account_id, e164, event_type, "
	        "direction, carrier, carrier_cdr_id, started_at, billable_s, "
	        "units, cost_micros, rated_at, currency) SELECT $1::uuid, "
	        "'+14155550100', 'outbound_call', 'outbound', 'test', "
	        "'cdr-' || g, '2026-11-01T00:00:00Z'::timestamptz + g * "
	        "interval '13 minutes', 60, 1, 120 + g, now(), 'USD' FROM "
	        "generate_series(1, 3000) g",
	        1, params);
	sql_run("INSERT INTO usage_records (account_id, e164, event_type, "
	        "direction, carrier, carrier_cdr_id, started_at, units, "
	        "currency, created_at, cost_micros, rated_at) VALUES "
	        "($1::uuid, '+14155550100', 'sms_sent', 'outbound', 'test', "
	        "'u1', '2026-11-03T00:00:00Z', 1, 'USD', now(), NULL, NULL), "
	        "($1::uuid, '+14155550100', 'sms_sent', 'outbound', 'test', "
	        "'u2', '2026-12-03T00:00:00Z', 1, 'USD', now(), 5, now()), "
	        "($1::uuid, '+14155550100', 'sms_sent', 'outbound', 'test', "
	        "'u3', '2026-11-04T00:00:00Z', 1, 'USD', now() + interval '1 "
	        "day', 7, now())",
	        1, params);
	sql_run("UPDATE invoices SET usage_cutoff = now() + interval '1 hour' "
	        "WHERE id = $1::uuid",
	        1, params + 1);
	snprintf(path, sizeof(path), "/v1/invoices/%s/csv?detail=usage", id);
	body = (struct t_http_buf){0};
	headers = (struct t_http_buf){0};
	cr_assert_eq(fetch(key, path, &body, &headers), 200);
	static const char usage_header[] = "id,started_at,e164,event_type,"
	                                   "billable_s,units,cost_micros\r\n";
	cr_expect_eq(strncmp(body.data, usage_header, strlen(usage_header)), 0);
	cr_expect_not_null(strstr(headers.data, "chunked"), "%s", headers.data);
	char *want = sql_value(
	        "SELECT count(*) FROM usage_records r JOIN invoices i ON "
	        "i.id = $2::uuid WHERE r.account_id = $1::uuid AND "
	        "r.started_at >= i.period_start AND r.started_at < "
	        "i.period_end AND r.cost_micros IS NOT NULL AND r.created_at "
	        "<= i.usage_cutoff",
	        2, params);
	cr_expect_eq(csv_rows(body.data) - 1, (int)strtol(want, NULL, 10),
	             "rows %d, SQL %s", csv_rows(body.data) - 1, want);
	cr_expect_eq((int)strtol(want, NULL, 10), 3000);
	free(want);
	/* the cost column sums to the SQL sum */
	long long sum = 0;
	for (char *p = strstr(body.data, "\r\n") + 2; *p;) {
		char *end = strstr(p, "\r\n");
		char *comma = end;

		while (comma > p && comma[-1] != ',')
			comma--;
		sum += strtoll(comma, NULL, 10);
		p = end + 2;
	}
	want = sql_value("SELECT sum(120 + g) FROM generate_series(1, 3000) g",
	                 0, NULL);
	cr_expect_eq(sum, strtoll(want, NULL, 10));
	free(want);
	free(body.data);
	free(headers.data);
}

/* ---------------------------------------------------------------- webhooks */

static int gateway_post(const char *body, const char *signature)
{
	char sig[300], *text = NULL;
	const char *headers[3] = {"Content-Type: application/json", NULL};
	int status;

	if (signature != NULL) {
		snprintf(sig, sizeof(sig), "Gateway-Signature: %s", signature);
		headers[1] = sig;
	}
	status = t_http_h("POST", port, "/v1/payment-gateway/events", body,
	                  headers, &text, NULL);
	free(text);
	return status;
}

static void sign(const char *secret, long long t, const char *body,
                 char out[200])
{
	unsigned char mac[32];
	unsigned int len = 0;
	char *payload;
	size_t n = strlen(body) + 32;

	payload = malloc(n);
	snprintf(payload, n, "%lld.%s", t, body);
	HMAC(EVP_sha256(), secret, (int)strlen(secret),
	     (const unsigned char *)payload, strlen(payload), mac, &len);
	free(payload);
	n = (size_t)snprintf(out, 200, "t=%lld,v1=", t);
	for (unsigned i = 0; i < len; i++)
		snprintf(out + n + 2 * i, 3, "%02x", mac[i]);
}

struct gw_seen {
	const char *event_id;
	json_t *event;
	int count;
};

static void find_gateway_event(void *arg, const char *payload, size_t len,
                               const char *header)
{
	struct gw_seen *s = arg;
	json_t *ev = json_loadb(payload, len, 0, NULL);
	const char *id = vox_json_str(json_object_get(ev, "data"), "event_id");

	(void)header;
	if (id != NULL && strcmp(id, s->event_id) == 0) {
		s->count++;
		json_decref(s->event);
		s->event = ev;
		return;
	}
	json_decref(ev);
}

Test(billing_api, gateway_webhook_signature_and_forwarding)
{
	char evt[64], body[1024], sig[200], account[40], inv[40], pay[40];
	long long now = (long long)time(NULL);

	vox_uuid7(account);
	vox_uuid7(inv);
	vox_uuid7(pay);
	snprintf(evt, sizeof(evt), "evt_%.8s%.4s", pay + 24, pay + 9);
	snprintf(body, sizeof(body),
	         "{\"id\":\"%s\",\"type\":\"payment_intent.payment_failed\","
	         "\"created\":%lld,\"data\":{\"object\":{\"id\":\"pi_123\","
	         "\"object\":\"payment_intent\",\"amount\":236.0,\"currency\":"
	         "\"usd\",\"status\":\"requires_payment_method\","
	         "\"customer\":\"cus_secret\",\"last_payment_error\":{"
	         "\"decline_code\":\"insufficient_funds\",\"code\":\"card_"
	         "declined\",\"message\":\"no\"},"
	         "\"metadata\":{\"invoice_id\":\"%s\",\"payment_id\":\"%s\","
	         "\"account_id\":\"%s\"}}}}",
	         evt, now, inv, pay, account);
	/* missing, wrong secret, tampered body, old, from the future */
	cr_expect_eq(gateway_post(body, NULL), 401);
	sign("whsec_other", now, body, sig);
	cr_expect_eq(gateway_post(body, sig), 401);
	sign(SECRET, now, "{}", sig);
	cr_expect_eq(gateway_post(body, sig), 401);
	sign(SECRET, now - 301, body, sig);
	cr_expect_eq(gateway_post(body, sig), 401);
	sign(SECRET, now + 400, body, sig);
	cr_expect_eq(gateway_post(body, sig), 401);
	cr_expect_eq(gateway_post(body, "t=abc,v1=00"), 401);
	{
		char *text = NULL;
		char hdr[260];
		const char *headers[] = {"Content-Type: application/json", hdr,
		                         NULL};

		sign(SECRET, now - 301, body, sig);
		snprintf(hdr, sizeof(hdr), "Gateway-Signature: %s", sig);
		t_http_h("POST", port, "/v1/payment-gateway/events", body,
		         headers, &text, NULL);
		cr_expect_not_null(strstr(text, "stale_timestamp"), "%s", text);
		free(text);
		t_http_h("POST", port, "/v1/payment-gateway/events", body,
		         headers + 1, &text, NULL);
		free(text);
	}
	/* signed right: a bad shape is still refused */
	sign(SECRET, now, "{\"id\":\"evt_1\"}", sig);
	cr_expect_eq(gateway_post("{\"id\":\"evt_1\"}", sig), 400);
	static const char bad_created[] =
	        "{\"id\":\"evt_2\",\"type\":\"x\",\"created\":{},"
	        "\"data\":{\"object\":{\"id\":\"pi_1\"}}}";
	sign(SECRET, now, bad_created, sig);
	cr_expect_eq(gateway_post(bad_created, sig), 400);
	static const char bad_amount[] =
	        "{\"id\":\"evt_3\",\"type\":\"x\",\"data\":{\"object\":{"
	        "\"id\":\"pi_1\",\"amount\":-1}}}";
	sign(SECRET, now, bad_amount, sig);
	cr_expect_eq(gateway_post(bad_amount, sig), 400);
	/* good: 200 once Kafka has it, with only the listed fields */
	sign(SECRET, now, body, sig);
	cr_assert_eq(gateway_post(body, sig), 200);
	struct gw_seen s = {.event_id = evt};
	t_consume_all(TOPIC, 1500, NULL, find_gateway_event, &s);
	cr_assert_eq(s.count, 1);
	cr_expect_str_eq(vox_json_str(s.event, "type"),
	                 "vox.payment.gateway_event");
	json_t *data = json_object_get(s.event, "data");
	cr_expect_str_eq(vox_json_str(data, "intent_id"), "pi_123");
	cr_expect_str_eq(vox_json_str(data, "decline_code"),
	                 "insufficient_funds");
	cr_expect_str_eq(vox_json_str(data, "currency"), "USD");
	cr_expect_str_eq(vox_json_str(data, "code"), "card_declined");
	cr_expect_null(json_object_get(data, "message"));
	cr_expect_eq(json_integer_value(json_object_get(data, "amount")), 236);
	cr_expect_str_eq(
	        vox_json_str(json_object_get(data, "metadata"), "invoice_id"),
	        inv);
	char *text = json_dumps(s.event, 0);
	cr_expect_null(strstr(text, "cus_secret"), "%s", text);
	free(text);
	json_decref(s.event);
	/* over 64 KiB */
	char *large = malloc(70 * 1024);
	memset(large, ' ', 70 * 1024 - 1);
	large[0] = '{';
	large[70 * 1024 - 2] = '}';
	large[70 * 1024 - 1] = '\0';
	sign(SECRET, now, large, sig);
	cr_expect_eq(gateway_post(large, sig), 413);
	free(large);
}

/* ---------------------------------------------------------------- block */

Test(billing_api, purchases_refused_while_suspended)
{
	char account[40], key[64];
	json_t *ans;

	t_account("developer", account, key);
	const char *params[] = {account};
	sql_run("INSERT INTO billing_accounts (account_id, standing, "
	        "suspended_at) VALUES ($1::uuid, 'suspended', now())",
	        1, params);
	refused("POST", key, "/v1/reservations",
	        "{\"phone_numbers\":[\"+14155550199\"]}", 403,
	        "account_suspended");
	refused("POST", key, "/v1/orders",
	        "{\"reservation_id\":\"0193a1b2-0000-7000-8000-000000000000\"}",
	        403, "account_suspended");
	/* reads and other commands go on */
	cr_expect_eq(call("GET", key, "/v1/numbers", NULL, NULL, &ans), 200);
	json_decref(ans);
	sql_run("UPDATE billing_accounts SET standing = 'good', suspended_at = "
	        "NULL WHERE account_id = $1::uuid",
	        1, params);
	cr_expect_eq(call("POST", key, "/v1/reservations",
	                  "{\"phone_numbers\":[\"+14155550199\"]}", NULL, &ans),
	             202);
	json_decref(ans);
}

/* ---------------------------------------------------------------- voxctl */

/* voxctl billing ARGS: exit status; stdout in out (outlen bytes). */
static int voxctl_billing(const char *args, char *out, size_t outlen)
{
	char cmd[512];
	FILE *p;
	size_t n;
	int status;

	snprintf(cmd, sizeof(cmd), "%s/voxctl billing %s 2>/dev/null",
	         t_env("VOX_BIN_DIR"), args);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, outlen - 1, p);
	out[n] = '\0';
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(billing_api, voxctl_billing_sets_what_customers_cannot)
{
	char account[40], key[64], args[256], out[2048], id[40];
	json_t *o, *ans;

	t_account("owner", account, key);
	cr_assert_eq(voxctl_billing(account, out, sizeof(out)), 0);
	o = json_loads(out, 0, NULL);
	cr_expect_eq(json_integer_value(json_object_get(o, "tax_rate_ppm")), 0);
	cr_expect_str_eq(vox_json_str(o, "dunning_plan"), "standard");
	json_decref(o);
	snprintf(args, sizeof(args),
	         "%s --tax-rate-ppm 88750 --grace-days 0 --terms-days 90 "
	         "--dunning-plan lenient --anchor-day 15",
	         account);
	cr_assert_eq(voxctl_billing(args, out, sizeof(out)), 0);
	o = json_loads(out, 0, NULL);
	cr_expect_eq(json_integer_value(json_object_get(o, "tax_rate_ppm")),
	             88750);
	cr_expect_eq(json_integer_value(json_object_get(o, "grace_days")), 0);
	cr_expect_eq(
	        json_integer_value(json_object_get(o, "payment_terms_days")),
	        90);
	cr_expect_eq(json_integer_value(json_object_get(o, "anchor_day")), 15);
	json_decref(o);
	/* the API shows it */
	cr_assert_eq(call("GET", key, "/v1/billing/settings", NULL, NULL, &ans),
	             200);
	cr_expect_str_eq(vox_json_str(ans, "dunning_plan"), "lenient");
	cr_expect_eq(json_integer_value(json_object_get(ans, "tax_rate_ppm")),
	             88750);
	json_decref(ans);
	/* bad usage: 2; refused: 1, nothing changed */
	static const char *const bad[] = {"--tax-rate-ppm 1000001",
	                                  "--tax-rate-ppm -1",
	                                  "--grace-days 32",
	                                  "--terms-days 91",
	                                  "--anchor-day 0",
	                                  "--anchor-day 32",
	                                  "--dunning-plan 'Bad Name'",
	                                  "--tax-rate-ppm 5x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(args, sizeof(args), "%s %s", account, bad[i]);
		cr_expect_eq(voxctl_billing(args, out, sizeof(out)), 2, "%s",
		             bad[i]);
	}
	cr_expect_eq(voxctl_billing("not-a-uuid", out, sizeof(out)), 2);
	cr_expect_eq(voxctl_billing("", out, sizeof(out)), 2);
	snprintf(args, sizeof(args), "%s --dunning-plan nosuchplan", account);
	cr_expect_eq(voxctl_billing(args, out, sizeof(out)), 1);
	cr_expect_eq(voxctl_billing("0193a5f2-7c4d-7000-8000-000000000000", out,
	                            sizeof(out)),
	             1);
	invoice(account, "draft", NULL, "2026-11-15T00:00:00Z", 0, 0, 0, id);
	snprintf(args, sizeof(args), "%s --anchor-day 1", account);
	cr_expect_eq(voxctl_billing(args, out, sizeof(out)), 1);
	snprintf(args, sizeof(args), "%s --tax-rate-ppm 0", account);
	cr_assert_eq(voxctl_billing(args, out, sizeof(out)), 0);
	o = json_loads(out, 0, NULL);
	cr_expect_eq(json_integer_value(json_object_get(o, "anchor_day")), 15);
	cr_expect_str_eq(vox_json_str(o, "dunning_plan"), "lenient");
	json_decref(o);
}
