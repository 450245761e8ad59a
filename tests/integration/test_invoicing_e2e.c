/*
 * Issue 15's acceptance 1 through the real paths: a month of an account
 * in America/Chicago (anchor day 17, tax 82,500 ppm, grace 31 days) with
 * numbers bought and released through the API (ingress, provisioning
 * worker, carrier sandbox), usage pushed as signed CDRs and rated by the
 * metering worker, and the invoice made, refreshed and finalized by the
 * invoicing worker on vox.cmd.invoicing (each worker in a consumer group
 * of its own, at the end of its topic).
 *
 * THE FIXTURE STEP. An invoice can only be finalized for a period that has
 * closed, and the numbers were bought a minute ago. So the test period is
 * the account's PREVIOUS billing period, and the ownership history rows
 * (number_ownerships) that the real purchases and releases wrote for this
 * account are moved into it by shifting their timestamps, and nothing
 * else: the rows, their prices and sources are what the trigger on
 * `numbers` recorded. Chosen days (local dates, d0 = the period's first):
 *   A  owned all period           started d0 - 5, still open
 *   B  bought mid-period          started d0 + 9, still open
 *   C  released mid-period        started d0 - 40, ended d0 + 12
 *   D  bought and released in it  started d0 + 3, ended d0 + 5 23:59:59
 *   E  bought after C and D were released: left as it is (the current
 *      period), so it is not on the invoice.
 * CDRs are pushed with started_at in that period (metering rates by the
 * number's current owner, so C's and D's go before their release), two
 * at its edges that must not be billed (1 s before the start, exactly the
 * end) and two that must (exactly the start, 1 s before the end).
 *
 * The expected invoice is computed here, in SQL of the test's own written
 * from docs/BILLING.md (not the worker's statements): the period from the
 * anchor day, days owned per interval, round(rate * days / period_days)
 * half away from zero, setup fees of purchases in the period, the sum of
 * the rated usage records, tax = round(subtotal * ppm / 1e6).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "carrier_helpers.h"
#include "helpers.h"
#include "vox_buf.h"
#include "vox_json.h"
#include "vox_uuid.h"

#define WAIT_MS 30000
#define TZ      "America/Chicago"
#define ANCHOR  17
#define TAX_PPM 82500

static int port;
static pid_t ingress, provisioning, metering, invoicing;
static char account[40], key[64];
static struct t_carrier carrier;
static vox_pg_t *pg;

static bool ingress_up(void *arg)
{
	(void)arg;
	return t_http("GET", port, "/healthz", NULL, NULL, NULL) == 200;
}

/* A worker in a consumer group of its own, at the end of topic. */
static pid_t worker(const char *binary, const char *topic,
                    const char *const *extra)
{
	static char groups[4][200];
	static int n;
	char id[VOX_UUID_STRLEN], log[80];
	const char *env[16];
	int k = 0;

	cr_assert_lt(n, 4);
	vox_uuid7(id);
	snprintf(groups[n], sizeof(groups[n]),
	         "VOX_WORKER_GROUP=vox.test.invoicing-e2e.%s.%s", binary, id);
	t_group_at_end(groups[n] + strlen("VOX_WORKER_GROUP="), topic);
	env[k++] = groups[n++];
	env[k++] = "VOX_WORKER_METRICS_PORT=0";
	env[k++] = "VOX_KAFKA_SESSION_TIMEOUT_MS=6000";
	for (int i = 0; extra != NULL && extra[i] != NULL && k < 15; i++)
		env[k++] = extra[i];
	env[k] = NULL;
	snprintf(log, sizeof(log), "invoicing-e2e-%s.log", binary);
	return t_spawn(binary, log, env);
}

static void suite_start(void)
{
	static char port_env[64], pay[80];

	port = t_free_port();
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", port);
	const char *const ienv[] = {port_env, "VOX_RATE_COMMAND=1000",
	                            "VOX_RATE_READ=1000",
	                            "VOX_RATE_SEARCH=1000", NULL};
	ingress = t_spawn("ingress", "invoicing-e2e-ingress.log", ienv);
	provisioning = worker("provisioning", "vox.cmd.provisioning", NULL);
	metering = worker("metering", "vox.cdr.raw", NULL);
	snprintf(pay, sizeof(pay), "VOX_PAYMENT_URL=http://127.0.0.1:%s",
	         getenv("VOX_PAYMENT_PORT") ? getenv("VOX_PAYMENT_PORT")
	                                    : "27182");
	/* the schedule off (the test asks); a dunning plan that does not
	 * exist, so its ladder walks no other suite's invoices */
	const char *const wenv[] = {pay, "VOX_INVOICING_SCHEDULE=0",
	                            "VOX_DUNNING_PLANS=invoicing-e2e-none",
	                            NULL};
	invoicing = worker("invoicing", "vox.cmd.invoicing", wenv);
	cr_assert(t_wait_for(ingress_up, NULL, 20000), "ingress not up");
	t_carrier_new(&carrier);
	pg = t_pg();
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
}

static void suite_stop(void)
{
	cr_expect_eq(t_stop(invoicing, SIGTERM, 20000), 0);
	cr_expect_eq(t_stop(metering, SIGTERM, 20000), 0);
	cr_expect_eq(t_stop(provisioning, SIGTERM, 20000), 0);
	cr_expect_eq(t_stop(ingress, SIGTERM, 20000), 0);
	vox_pg_destroy(pg);
}

TestSuite(invoicing_e2e, .init = suite_start, .fini = suite_stop,
          .timeout = 180);

/* ---------------------------------------------------------------- SQL */

static void sql(const char *text, int n, const char *const *params)
{
	vox_error_t err;

	cr_assert_eq(vox_pg_exec(pg, text, n, params, NULL, &err), 0, "%s: %s",
	             text, err.message);
}

/* First column of the first row (malloc'd); fails without one. */
static char *str(const char *text, int n, const char *const *params)
{
	PGresult *res;
	vox_error_t err;
	char *out;

	cr_assert_eq(vox_pg_exec(pg, text, n, params, &res, &err), 0, "%s: %s",
	             text, err.message);
	cr_assert(PQntuples(res) > 0 && !PQgetisnull(res, 0, 0), "no value: %s",
	          text);
	out = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return out;
}

/* The invoice's status is want (str's copy freed). */
static void status_is(const char *const *ip, const char *want)
{
	char *status = str("SELECT status FROM invoices WHERE id = $1", 1, ip);
	bool same = strcmp(status, want) == 0;

	cr_assert(same, "invoice status %s, not %s", status, want);
	free(status);
}

static long long num(const char *text, int n, const char *const *params)
{
	char *s = str(text, n, params);
	long long v = strtoll(s, NULL, 10);

	free(s);
	return v;
}

/* ---------------------------------------------------------------- API */

static json_t *api(const char *method, const char *path, const char *body,
                   int *status)
{
	char auth[600], idem[80], id[VOX_UUID_STRLEN], *text = NULL;
	const char *h[] = {auth, idem, "Prefer: wait=20",
	                   "Content-Type: application/json", NULL};
	json_t *doc;

	vox_uuid7(id);
	snprintf(idem, sizeof(idem), "Idempotency-Key: inv-e2e-%s", id);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	*status = t_http_h(method, port, path, body, h, &text, NULL);
	doc = json_loads(text ? text : "null", JSON_DECODE_ANY, NULL);
	cr_assert_not_null(doc, "%s %s: %d %s", method, path, *status,
	                   text ? text : "");
	free(text);
	return doc;
}

static json_t *api_ok(const char *method, const char *path, const char *body,
                      int expect)
{
	int status;
	json_t *doc = api(method, path, body, &status);

	if (status != expect) {
		char *t = json_dumps(doc, JSON_COMPACT);
		cr_assert_fail("%s %s: %d %s", method, path, status, t);
	}
	return doc;
}

static bool op_finished(void *arg)
{
	const char *p[] = {arg};

	return t_pg_count(pg,
	                  "SELECT count(*) FROM operations WHERE id = "
	                  "$1::uuid AND status IN ('completed', 'failed')",
	                  p[0]) == 1;
}

/* A command (202, or 200 with Prefer: wait): waits for its operation,
 * which must complete; returns the operation's result. */
static json_t *command(const char *method, const char *path, const char *body)
{
	int status;
	json_t *op = api(method, path, body, &status), *result;
	char id[40];
	char *text;

	cr_assert(status == 200 || status == 202, "%s %s: %d", method, path,
	          status);
	cr_assert_not_null(vox_json_str(op, "id"), "%s %s: no operation",
	                   method, path);
	snprintf(id, sizeof(id), "%s", vox_json_str(op, "id"));
	json_decref(op);
	cr_assert(t_wait_for(op_finished, id, WAIT_MS),
	          "%s %s: operation %s not finished", method, path, id);
	const char *p[] = {id};
	text = str("SELECT json_build_object('status', status, 'error', "
	           "error_message, 'result', result)::text FROM operations "
	           "WHERE id = $1::uuid",
	           1, p);
	op = json_loads(text, 0, NULL);
	free(text);
	cr_assert_str_eq(vox_json_str(op, "status"), "completed",
	                 "%s %s: operation %s failed: %s", method, path, id,
	                 vox_json_str(op, "error"));
	result = json_incref(json_object_get(op, "result"));
	json_decref(op);
	return result;
}

/* n available US numbers bought through the API (search, reserve,
 * order): E.164 and ids. */
static void buy(int n, char e164[][24], char ids[][40])
{
	json_t *found = api_ok("GET",
	                       "/v1/available-numbers?country=US&area_code=415"
	                       "&limit=50",
	                       NULL, 200);
	json_t *data = json_object_get(found, "data"), *res, *list, *arr;
	vox_buf_t body;
	char order[120];
	size_t at;

	cr_assert_geq(json_array_size(data), (size_t)n + 1);
	at = (size_t)rand() % (json_array_size(data) - (size_t)n);
	vox_buf_init(&body, 4096);
	vox_buf_adds(&body, "{\"phone_numbers\":[");
	for (int i = 0; i < n; i++) {
		snprintf(e164[i], 24, "%s",
		         vox_json_str(json_array_get(data, at + (size_t)i),
		                      "phone_number"));
		vox_buf_printf(&body, "%s\"%s\"", i ? "," : "", e164[i]);
	}
	vox_buf_adds(&body, "]}");
	json_decref(found);
	res = command("POST", "/v1/reservations", vox_buf_str(&body));
	vox_buf_free(&body);
	snprintf(order, sizeof(order), "{\"reservation_id\":\"%s\"}",
	         vox_json_str(res, "reservation_id"));
	json_decref(res);
	json_decref(command("POST", "/v1/orders", order));
	list = api_ok("GET", "/v1/numbers?limit=100", NULL, 200);
	arr = json_object_get(list, "data");
	for (int i = 0; i < n; i++) {
		ids[i][0] = '\0';
		for (size_t j = 0; j < json_array_size(arr); j++) {
			json_t *nm = json_array_get(arr, j);

			if (strcmp(vox_json_str(nm, "phone_number"), e164[i]) ==
			    0)
				snprintf(ids[i], 40, "%s",
				         vox_json_str(nm, "id"));
		}
		cr_assert(ids[i][0] != '\0', "%s not bought", e164[i]);
	}
	json_decref(list);
}

/* voxctl billing ACCOUNT args... (the operator's settings). */
static void voxctl_billing(const char *args)
{
	char cmd[600];
	FILE *f;
	char line[512];

	snprintf(cmd, sizeof(cmd), "'%s/voxctl' billing %s %s 2>&1",
	         t_env("VOX_BIN_DIR"), account, args);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		cr_log_info("voxctl billing: %s", line);
	cr_assert_eq(pclose(f), 0, "%s failed", cmd);
}

/* ---------------------------------------------------------------- CDRs */

struct cdr {
	const char *type, *e164;
	time_t at;
	int amount; /* duration_s or segments */
};

static int cdr_seq;

/* One signed push of n records (202). */
static void push(const struct cdr *c, int n)
{
	vox_buf_t b;
	char when[32];
	int status;

	vox_buf_init(&b, 1 << 20);
	vox_buf_adds(&b, "[");
	for (int i = 0; i < n; i++) {
		bool call = strstr(c[i].type, "call") != NULL;
		bool in = strncmp(c[i].type, "inbound", 7) == 0 ||
		          strcmp(c[i].type, "sms_received") == 0;
		struct tm tm;

		gmtime_r(&c[i].at, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		vox_buf_printf(&b,
		               "%s{\"id\":\"inv-e2e-%s-%d\",\"type\":\"%s\","
		               "\"from\":\"%s\",\"to\":\"%s\",\"started_at\":"
		               "\"%s\",\"%s\":%d}",
		               i ? "," : "", account, cdr_seq++, c[i].type,
		               in ? "+12125550100" : c[i].e164,
		               in ? c[i].e164 : "+442079460000", when,
		               call ? "duration_s" : "segments", c[i].amount);
	}
	vox_buf_adds(&b, "]");
	cr_assert_eq(vox_buf_error(&b), 0);
	status = t_cdr_push(port, carrier.key, carrier.secret, vox_buf_str(&b));
	cr_assert_eq(status, 202, "CDR push: %d", status);
	vox_buf_free(&b);
}

static long long seen(void)
{
	return t_pg_count(pg,
	                  "SELECT (SELECT count(*) FROM usage_records WHERE "
	                  "carrier = $1) + (SELECT count(*) FROM "
	                  "usage_exceptions WHERE carrier = $1)",
	                  carrier.name);
}

static bool all_seen(void *arg)
{
	return seen() >= *(long long *)arg;
}

/* Waits until metering took every record pushed so far: all rated. */
static void wait_rated(void)
{
	long long want = cdr_seq;

	cr_assert(t_wait_for(all_seen, &want, WAIT_MS),
	          "metering: %lld of %lld records", seen(), want);
	cr_assert_eq(t_pg_count(pg,
	                        "SELECT count(*) FROM usage_records WHERE "
	                        "carrier = $1 AND cost_micros IS NOT NULL",
	                        carrier.name),
	             want, "not every record rated");
}

/* ---------------------------------------------------------------- the check */

/* The test's own computation (docs/BILLING.md "Lines"), for the period
 * starting at local date $2 (and ending at $3) of account $1 in time zone
 * $4 with tax $5 ppm: one row {subtotal, tax, total, usage, monthly,
 * setup, period_days}. */
static const char expected_sql[] =
        "WITH p AS (SELECT ($2::date)::timestamp AT TIME ZONE $4 AS s, "
        "($3::date)::timestamp AT TIME ZONE $4 AS e, $3::date - $2::date "
        "AS days), "
        "own AS (SELECT o.*, GREATEST(o.started_at, p.s) AS a, "
        "LEAST(COALESCE(o.ended_at, p.e), p.e) AS b FROM number_ownerships "
        "o, p WHERE o.account_id = $1::uuid AND o.currency = 'USD' AND "
        "o.started_at < p.e AND COALESCE(o.ended_at, 'infinity') > p.s AND "
        "COALESCE(o.ended_at, 'infinity') > o.started_at), "
        /* the local days on which any part was owned: from a's date to
         * the date of the last instant before b */
        "monthly AS (SELECT COALESCE(sum(round(own.monthly_rate_micros::"
        "numeric * (((own.b - interval '1 microsecond') AT TIME ZONE $4)::"
        "date - (own.a AT TIME ZONE $4)::date + 1) / p.days)), 0) AS m "
        "FROM own, p), "
        "setup AS (SELECT COALESCE(sum(setup_fee_micros), 0) AS m FROM own, "
        "p WHERE source = 'purchase' AND started_at >= p.s AND started_at "
        "< p.e), "
        "usage AS (SELECT COALESCE(sum(cost_micros), 0) AS m FROM "
        "usage_records r, p WHERE r.account_id = $1::uuid AND "
        "r.started_at >= p.s AND r.started_at < p.e AND r.cost_micros IS "
        "NOT NULL AND r.currency = 'USD'), "
        "sub AS (SELECT monthly.m + setup.m + usage.m AS m FROM monthly, "
        "setup, usage) "
        "SELECT json_build_object('subtotal', sub.m, 'tax', CASE WHEN "
        "sub.m > 0 THEN round(sub.m * $5::numeric / 1000000) ELSE 0 END, "
        "'usage', usage.m, 'monthly', monthly.m, 'setup', setup.m, "
        "'period_days', p.days)::text FROM sub, usage, monthly, setup, p";

struct period {
	char d0[16], d1[16]; /* local dates of start and end */
	time_t s, e;         /* the instants */
	int days;
};

/* Asserts the invoice's figures equal the computation; returns the
 * expected usage sum. */
static long long check_invoice(const char *inv, const struct period *p)
{
	char ppm[16], *text;
	json_t *want;
	long long sub, tax, usage;

	snprintf(ppm, sizeof(ppm), "%d", TAX_PPM);
	const char *params[] = {account, p->d0, p->d1, TZ, ppm};
	text = str(expected_sql, 5, params);
	want = json_loads(text, 0, NULL);
	free(text);
	cr_assert_not_null(want);
	sub = json_integer_value(json_object_get(want, "subtotal"));
	tax = json_integer_value(json_object_get(want, "tax"));
	usage = json_integer_value(json_object_get(want, "usage"));
	cr_assert_eq(json_integer_value(json_object_get(want, "period_days")),
	             p->days);
	const char *ip[] = {inv};
	cr_log_info(
	        "expected: monthly %lld, setup %lld, usage %lld, subtotal "
	        "%lld, tax %lld, total %lld",
	        (long long)json_integer_value(json_object_get(want, "monthly")),
	        (long long)json_integer_value(json_object_get(want, "setup")),
	        usage, sub, tax, sub + tax);
	cr_assert_eq(num("SELECT subtotal_micros FROM invoices WHERE id = $1",
	                 1, ip),
	             sub, "subtotal");
	cr_assert_eq(
	        num("SELECT tax_micros FROM invoices WHERE id = $1", 1, ip),
	        tax, "tax");
	cr_assert_eq(
	        num("SELECT total_micros FROM invoices WHERE id = $1", 1, ip),
	        sub + tax, "total");
	/* the lines, by kind, sum to the same parts */
	cr_assert_eq(num("SELECT COALESCE(sum(amount_micros), 0) FROM "
	                 "invoice_lines WHERE invoice_id = $1 AND kind = "
	                 "'usage'",
	                 1, ip),
	             usage, "usage lines");
	cr_assert_eq(num("SELECT COALESCE(sum(amount_micros), 0) FROM "
	                 "invoice_lines WHERE invoice_id = $1 AND kind = "
	                 "'number_monthly'",
	                 1, ip),
	             json_integer_value(json_object_get(want, "monthly")),
	             "monthly lines");
	cr_assert_eq(num("SELECT COALESCE(sum(amount_micros), 0) FROM "
	                 "invoice_lines WHERE invoice_id = $1 AND kind = "
	                 "'number_setup'",
	                 1, ip),
	             json_integer_value(json_object_get(want, "setup")),
	             "setup lines");
	json_decref(want);
	return usage;
}

/* The number's monthly line: days (-1: no line). */
static long long line_days(const char *inv, const char *number_id)
{
	const char *p[] = {inv, number_id};

	vox_error_t err;
	PGresult *res;
	long long v = -1;

	cr_assert_eq(vox_pg_exec(pg,
	                         "SELECT days, period_days, amount_micros FROM "
	                         "invoice_lines WHERE invoice_id = $1::uuid "
	                         "AND kind = 'number_monthly' AND number_id "
	                         "= $2::uuid",
	                         2, p, &res, &err),
	             0, "%s", err.message);
	cr_assert_leq(PQntuples(res), 1);
	if (PQntuples(res) == 1)
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

/* Every line of the invoice and its figures, as one text. */
static char *snapshot(const char *inv)
{
	const char *p[] = {inv};

	return str(
	        "SELECT (SELECT json_build_object('number', number, 'seq', "
	        "seq, 'status', status, 'subtotal', subtotal_micros, "
	        "'tax', tax_micros, 'total', total_micros, 'due', "
	        "amount_due_micros, 'cutoff', usage_cutoff, 'issued', "
	        "issued_at, 'version', version, 'updated', updated_at)::text "
	        "FROM invoices WHERE id = $1::uuid) || ' ' || "
	        "COALESCE((SELECT string_agg(row_to_json(l)::text, E'\\n' "
	        "ORDER BY l.line_no) FROM invoice_lines l WHERE "
	        "l.invoice_id = $1::uuid), '')",
	        1, p);
}

/* GET path as text; status must be 200. */
static char *get_text(const char *path, size_t *len)
{
	char auth[600], *text = NULL;
	const char *h[] = {auth, NULL};
	int status;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
	status = t_http_h("GET", port, path, NULL, h, &text, NULL);
	cr_assert_eq(status, 200, "GET %s: %d", path, status);
	cr_assert_not_null(text);
	if (len != NULL)
		*len = strlen(text);
	return text;
}

/* Σ of column col (0-based) of a CSV without quoted commas in the
 * figures' columns: the header's name checked. */
static long long csv_sum(const char *csv, const char *name, long long *rows)
{
	const char *line = csv, *next;
	int col = -1;
	long long sum = 0;

	*rows = 0;
	for (; *line; line = next) {
		const char *f = line;
		int c = 0;

		next = strstr(line, "\r\n");
		next = next ? next + 2 : line + strlen(line);
		if (col < 0) {
			/* the header: find name */
			for (const char *q = line; q < next; c++) {
				size_t n = strcspn(q, ",\r");

				if (n == strlen(name) &&
				    strncmp(q, name, n) == 0)
					col = c;
				q += n + 1;
				if (q[-1] == '\r')
					break;
			}
			cr_assert_geq(col, 0, "no column %s", name);
			continue;
		}
		/* skip quoted fields properly up to col */
		for (c = 0; c < col; c++) {
			if (*f == '"') {
				f++;
				while (*f && !(*f == '"' && f[1] != '"'))
					f += *f == '"' ? 2 : 1;
				f++;
			} else {
				f += strcspn(f, ",\r");
			}
			cr_assert_eq(*f, ',', "short CSV row");
			f++;
		}
		sum += strtoll(f, NULL, 10);
		(*rows)++;
	}
	return sum;
}

/* ---------------------------------------------------------------- the test */

Test(invoicing_e2e, a_month_bought_released_used_late_cdrs_finalized_exact)
{
	char e164[5][24], ids[5][40], path[300], body[200], inv[40], *text;
	const char *names = "ABCDE";
	struct period p;
	json_t *res, *doc;

	/* ---- the account: Chicago, anchor 17, tax 8.25 %, grace 31 days */
	t_account("owner", account, key);
	const char *ap[] = {account, TZ};
	sql("UPDATE accounts SET timezone = $2 WHERE id = $1::uuid", 2, ap);
	voxctl_billing("--tax-rate-ppm 82500 --grace-days 31");
	doc = api_ok("PATCH", "/v1/billing/settings", "{\"anchor_day\":17}",
	             200);
	cr_assert_eq(json_integer_value(json_object_get(doc, "anchor_day")),
	             ANCHOR);
	json_decref(doc);

	/* the previous period, computed here: the current one starts on the
	 * last local 17th on or before today */
	{
		const char *pp[] = {TZ};
		char *row = str(
		        "WITH t AS (SELECT (now() AT TIME ZONE $1)::date AS "
		        "d), "
		        "c AS (SELECT CASE WHEN extract(day FROM d) >= 17 THEN "
		        "date_trunc('month', d)::date + 16 ELSE (date_trunc("
		        "'month', d) - interval '1 month')::date + 16 END AS "
		        "d1 FROM t), q AS (SELECT (d1 - interval '1 month')::"
		        "date AS d0, d1 FROM c) SELECT d0 || ' ' || d1 || ' ' "
		        "|| extract(epoch FROM d0::timestamp AT TIME ZONE $1)::"
		        "bigint || ' ' || extract(epoch FROM d1::timestamp AT "
		        "TIME ZONE $1)::bigint || ' ' || (d1 - d0) FROM q",
		        1, pp);
		long long s, e;

		cr_assert_eq(sscanf(row, "%15s %15s %lld %lld %d", p.d0, p.d1,
		                    &s, &e, &p.days),
		             5, "%s", row);
		p.s = (time_t)s;
		p.e = (time_t)e;
		free(row);
		cr_log_info("test period [%s, %s) local, %d days", p.d0, p.d1,
		            p.days);
	}

	/* ---- numbers: A..D bought, A and B activated */
	buy(4, e164, ids);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/v1/numbers/%s/activate", ids[i]);
		json_decref(command("POST", path,
		                    "{\"forward_to\":\"+14155550100\"}"));
	}

	/* ---- usage in the period, for A..D while they are the account's */
	{
		static const char *types[] = {"inbound_call", "outbound_call",
		                              "sms_received", "sms_sent"};
		struct cdr c[44];
		int n = 0;
		time_t span = p.e - p.s - 7200;

		for (int i = 0; i < 40; i++) {
			c[n].type = types[i % 4];
			c[n].e164 = e164[i % 4];
			c[n].at = p.s + 3600 +
			          (time_t)(((long long)i * 97231) %
			                   (long long)span);
			c[n].amount =
			        i % 4 < 2 ? 1 + (i * 37) % 700 : 1 + i % 3;
			n++;
		}
		/* the edges: not billed, billed, billed, not billed */
		c[n++] = (struct cdr){"outbound_call", e164[0], p.s - 1, 61};
		c[n++] = (struct cdr){"outbound_call", e164[0], p.s, 62};
		c[n++] = (struct cdr){"sms_sent", e164[0], p.e - 1, 2};
		c[n++] = (struct cdr){"outbound_call", e164[0], p.e, 63};
		push(c, n);
	}
	wait_rated();

	/* ---- C and D released; E bought after */
	for (int i = 2; i < 4; i++) {
		snprintf(path, sizeof(path), "/v1/numbers/%s", ids[i]);
		json_decref(command("DELETE", path, NULL));
	}
	buy(1, &e164[4], &ids[4]);
	for (int i = 0; i < 5; i++) {
		const char *op[] = {account, ids[i]};

		cr_assert_eq(num("SELECT count(*) FROM number_ownerships WHERE "
		                 "account_id = $1::uuid AND number_id = "
		                 "$2::uuid",
		                 2, op),
		             1, "%c: one ownership interval", names[i]);
		cr_assert_eq(
		        num("SELECT count(*) FROM number_ownerships WHERE "
		            "account_id = $1::uuid AND number_id = "
		            "$2::uuid AND source = 'purchase' AND (ended_at "
		            "IS NULL) = ($2::uuid IN (SELECT id FROM "
		            "numbers WHERE account_id = $1::uuid))",
		            2, op),
		        1, "%c: the purchase and its end as recorded",
		        names[i]);
	}

	/* ---- THE FIXTURE STEP: the history moved into the test period */
	{
		static const struct {
			int start_day;
			const char *start_time;
			int end_day; /* 99: still open */
			const char *end_time;
			long long days; /* of the period owned */
		} shift[4] = {
		        {-5, "11:00", 99, NULL, 0},
		        {9, "15:30", 99, NULL, 0},
		        {-40, "09:00", 12, "08:00", 13},
		        {3, "10:00", 5, "23:59:59", 3},
		};
		for (int i = 0; i < 4; i++) {
			char sd[8], ed[8];

			snprintf(sd, sizeof(sd), "%d", shift[i].start_day);
			snprintf(ed, sizeof(ed), "%d", shift[i].end_day);
			const char *sp[] = {account,
			                    ids[i],
			                    p.d0,
			                    sd,
			                    shift[i].start_time,
			                    shift[i].end_day == 99 ? NULL : ed,
			                    shift[i].end_time,
			                    TZ};
			sql("UPDATE number_ownerships SET started_at = "
			    "(($3::date + $4::int) + $5::time) AT TIME ZONE "
			    "$8, "
			    "ended_at = CASE WHEN $6::int IS NULL THEN NULL "
			    "ELSE "
			    "(($3::date + $6::int) + $7::time) AT TIME ZONE $8 "
			    "END WHERE account_id = $1::uuid AND number_id = "
			    "$2::uuid",
			    8, sp);
		}
	}

	/* ---- generate the draft */
	snprintf(body, sizeof(body), "{\"period_start\":\"%s\"}", p.d0);
	res = command("POST", "/v1/invoices", body);
	cr_assert_not_null(vox_json_str(res, "invoice_id"));
	snprintf(inv, sizeof(inv), "%s", vox_json_str(res, "invoice_id"));
	json_decref(res);
	const char *ip[] = {inv};
	status_is(ip, "draft");
	{
		const char *pp[] = {inv, p.d0, p.d1, TZ};
		cr_assert_eq(num("SELECT count(*) FROM invoices WHERE id = $1 "
		                 "AND period_start = $2::date::timestamp AT "
		                 "TIME ZONE $4 AND period_end = "
		                 "$3::date::timestamp AT TIME ZONE $4",
		                 4, pp),
		             1, "the invoice's period is not [%s, %s) local",
		             p.d0, p.d1);
	}
	long long usage1 = check_invoice(inv, &p);

	/* each number's days: A all, B from d0+9, C to d0+12, D three, E
	 * none */
	cr_assert_eq(line_days(inv, ids[0]), p.days, "A");
	cr_assert_eq(line_days(inv, ids[1]), p.days - 9, "B");
	cr_assert_eq(line_days(inv, ids[2]), 13, "C");
	cr_assert_eq(line_days(inv, ids[3]), 3, "D");
	cr_assert_eq(line_days(inv, ids[4]), -1, "E is not of this period");
	/* A owned all period: exactly its monthly rate */
	{
		const char *np[] = {inv, ids[0]};
		cr_assert_eq(
		        num("SELECT amount_micros FROM invoice_lines WHERE "
		            "invoice_id = $1 AND kind = 'number_monthly' "
		            "AND number_id = $2",
		            2, np),
		        num("SELECT monthly_rate_micros FROM "
		            "number_ownerships WHERE number_id = $2 AND "
		            "account_id = (SELECT account_id FROM invoices "
		            "WHERE id = $1)",
		            2, np));
		/* setup fees: B and D (bought in the period) only */
		cr_assert_eq(num("SELECT count(*) FROM invoice_lines WHERE "
		                 "invoice_id = $1 AND kind = 'number_setup' "
		                 "AND number_id NOT IN (SELECT number_id FROM "
		                 "number_ownerships o WHERE o.account_id = "
		                 "(SELECT account_id FROM invoices WHERE id = "
		                 "$1) AND o.started_at >= (SELECT period_start "
		                 "FROM invoices WHERE id = $1))",
		                 1, ip),
		             0);
	}
	/* the edges: 1 s before the start and exactly the end not billed */
	{
		char s[24], e[24];
		snprintf(s, sizeof(s), "%lld", (long long)p.s);
		snprintf(e, sizeof(e), "%lld", (long long)p.e);
		const char *ep[] = {account, s, e};
		cr_assert_eq(num("SELECT count(*) FROM usage_records WHERE "
		                 "account_id = $1::uuid AND started_at IN "
		                 "(to_timestamp($2::bigint), "
		                 "to_timestamp($3::bigint) - interval '1 s')",
		                 3, ep),
		             2, "the two edge records inside");
		cr_assert_eq(num("SELECT count(*) FROM usage_records WHERE "
		                 "account_id = $1::uuid AND started_at IN "
		                 "(to_timestamp($2::bigint) - interval '1 s', "
		                 "to_timestamp($3::bigint))",
		                 3, ep),
		             2, "the two edge records outside");
		cr_assert_eq(
		        num("SELECT sum(cost_micros) FROM usage_records "
		            "WHERE account_id = $1::uuid AND started_at >= "
		            "to_timestamp($2::bigint) - interval '1 s' AND "
		            "started_at <= to_timestamp($3::bigint)",
		            3, ep) -
		                num("SELECT sum(cost_micros) FROM "
		                    "usage_records WHERE account_id = "
		                    "$1::uuid AND started_at IN "
		                    "(to_timestamp($2::bigint) - interval "
		                    "'1 s', to_timestamp($3::bigint))",
		                    3, ep),
		        usage1, "usage billed = the records inside");
	}
	text = snapshot(inv);
	cr_log_info("draft: %s", text);
	free(text);

	/* ---- late CDRs in the grace period, timestamped in the period */
	const char *cp[] = {carrier.name};
	long long rated_before = num("SELECT sum(cost_micros) FROM "
	                             "usage_records WHERE carrier = $1",
	                             1, cp);
	{
		struct cdr late[6];
		for (int i = 0; i < 6; i++)
			late[i] = (struct cdr){
			        i % 2 ? "sms_received" : "outbound_call",
			        e164[i % 2], p.s + 86400 * (2 + 4 * i) + 777,
			        i % 2 ? 1 : 100 + 33 * i};
		push(late, 6);
	}
	wait_rated();
	long long late_cost = num("SELECT sum(cost_micros) FROM usage_records "
	                          "WHERE carrier = $1",
	                          1, cp) -
	                      rated_before;
	/* a refresh: the same period again recomputes the draft */
	res = command("POST", "/v1/invoices", body);
	cr_assert_str_eq(vox_json_str(res, "invoice_id"), inv,
	                 "a refresh made another invoice");
	json_decref(res);
	status_is(ip, "draft");
	long long usage2 = check_invoice(inv, &p);
	cr_assert_gt(late_cost, 0);
	cr_assert_eq(usage2, usage1 + late_cost,
	             "the late CDRs (%lld) are not on the draft", late_cost);

	/* ---- finalize */
	snprintf(path, sizeof(path), "/v1/invoices/%s/actions/finalize", inv);
	json_decref(command("POST", path, NULL));
	status_is(ip, "finalized");
	{
		const char *np[] = {inv, account};
		cr_assert_eq(
		        num("SELECT count(*) FROM invoices WHERE id = $1 "
		            "AND seq = 1 AND number = upper(left($2, 8)) || "
		            "'-000001' AND usage_cutoff IS NOT NULL",
		            2, np),
		        1, "number %s",
		        str("SELECT COALESCE(number, '(none)') FROM "
		            "invoices WHERE id = $1",
		            1, ip));
	}
	long long usage3 = check_invoice(inv, &p);
	cr_assert_eq(usage3, usage2);
	char *before = snapshot(inv);
	cr_log_info("finalized: %s", before);

	/* ---- a CDR after finalization, and regenerate: the same invoice
	 * (the record is another invoice's late usage) */
	{
		struct cdr after = {"outbound_call", e164[0],
		                    p.s + 86400 * 4 + 99, 240};
		push(&after, 1);
	}
	wait_rated();
	res = command("POST", "/v1/invoices", body);
	cr_assert_str_eq(vox_json_str(res, "invoice_id"), inv);
	json_decref(res);
	char *after = snapshot(inv);
	cr_assert_str_eq(after, before, "the finalized invoice changed");
	free(after);
	cr_assert_eq(num("SELECT count(*) FROM invoices WHERE account_id = "
	                 "(SELECT account_id FROM invoices WHERE id = $1)",
	                 1, ip),
	             1, "one invoice");

	/* ---- what the API serves: JSON, CSV, CSV detail, PDF */
	long long total =
	        num("SELECT total_micros FROM invoices WHERE id = $1", 1, ip);
	long long subtotal = num(
	        "SELECT subtotal_micros FROM invoices WHERE id = $1", 1, ip);
	snprintf(path, sizeof(path), "/v1/invoices/%s", inv);
	doc = api_ok("GET", path, NULL, 200);
	cr_assert_eq(json_integer_value(json_object_get(doc, "total_micros")),
	             total);
	cr_assert_str_eq(vox_json_str(doc, "status"), "finalized");
	cr_assert_eq(json_array_size(json_object_get(doc, "lines")),
	             (size_t)num("SELECT count(*) FROM invoice_lines WHERE "
	                         "invoice_id = $1",
	                         1, ip));
	json_decref(doc);
	{
		long long rows;
		snprintf(path, sizeof(path), "/v1/invoices/%s/csv", inv);
		text = get_text(path, NULL);
		cr_assert_eq(csv_sum(text, "amount_micros", &rows), subtotal,
		             "CSV lines");
		cr_assert_eq(rows, num("SELECT count(*) FROM invoice_lines "
		                       "WHERE invoice_id = $1",
		                       1, ip));
		free(text);
		snprintf(path, sizeof(path), "/v1/invoices/%s/csv?detail=usage",
		         inv);
		text = get_text(path, NULL);
		cr_assert_eq(csv_sum(text, "cost_micros", &rows), usage3,
		             "CSV usage detail");
		cr_assert_eq(rows, 40 + 2 + 6, "usage records billed");
		free(text);
	}
	{
		char auth[600], *pdf = NULL, *hdrs = NULL;
		const char *h[] = {auth, NULL};
		int status;

		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
		snprintf(path, sizeof(path), "/v1/invoices/%s/pdf", inv);
		status = t_http_h("GET", port, path, NULL, h, &pdf, &hdrs);
		cr_assert_eq(status, 200);
		cr_assert_not_null(pdf);
		cr_assert_eq(strncmp(pdf, "%PDF-", 5), 0, "not a PDF");
		free(pdf);
		free(hdrs);
	}
	free(before);
	cr_log_info("invoice %s: total %lld micro-units, equal to the "
	            "computation",
	            inv, total);
}
