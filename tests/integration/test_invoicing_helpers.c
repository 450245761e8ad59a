/* The invoicing worker under test and its SQL fixtures
 * (test_invoicing_helpers.h). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "test_invoicing_helpers.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_kafka.h"
#include "vox_uuid.h"

#define OP_WAIT_MS 30000

static vox_producer_t *producer(void)
{
	static vox_producer_t *p;
	vox_producer_conf_t conf = {.brokers = t_env("VOX_KAFKA_BROKERS"),
	                            .client_id = "vox-test-invoicing"};
	vox_error_t err;

	if (p == NULL)
		p = vox_producer_new(&conf, &err);
	cr_assert_not_null(p, "%s", err.message);
	return p;
}

/* Workers still running when a test fails: stopped when it exits. */
static pid_t running[2];

static void __attribute__((destructor)) ti_cleanup(void)
{
	for (int k = 0; k < 2; k++)
		if (running[k] > 0)
			t_stop(running[k], SIGKILL, 5000);
}

void ti_start(struct ti *w, int nworkers, const char *const *extra)
{
	char id[VOX_UUID_STRLEN];

	memset(w, 0, sizeof(*w));
	w->pg = t_pg();
	w->nworkers = nworkers;
	vox_uuid7(id);
	t_topic_create("vox.test.invoicing", 2, w->topic, sizeof(w->topic));
	for (int k = 0; k < nworkers; k++) {
		static char topics[2][200], group[2][240];
		char log[64];
		const char *env[32];
		int n = 0;

		snprintf(w->group[k], sizeof(w->group[k]),
		         "vox.test.invoicing.%s.%d", id, k);
		snprintf(topics[k], sizeof(topics[k]), "VOX_WORKER_TOPICS=%s",
		         w->topic);
		snprintf(group[k], sizeof(group[k]), "VOX_WORKER_GROUP=%s",
		         w->group[k]);
		const char *base[] = {topics[k],
		                      group[k],
		                      "VOX_WORKER_METRICS_PORT=0",
		                      "VOX_INVOICING_SCHEDULE=0",
		                      "VOX_KAFKA_SESSION_TIMEOUT_MS=6000",
		                      "VOX_WORKER_MAX_ATTEMPTS=2",
		                      NULL};
		for (int i = 0; base[i] != NULL; i++)
			env[n++] = base[i];
		for (int i = 0; extra != NULL && extra[i] != NULL && n < 31;
		     i++)
			env[n++] = extra[i];
		env[n] = NULL;
		snprintf(log, sizeof(log), "invoicing-worker-%d.log", k);
		w->worker[k] = t_spawn("invoicing", log, env);
		running[k] = w->worker[k];
	}
}

void ti_stop(struct ti *w)
{
	for (int k = 0; k < w->nworkers; k++)
		if (w->worker[k] > 0) {
			cr_expect_eq(t_stop(w->worker[k], SIGTERM, 30000), 0);
			running[k] = 0;
		}
	vox_pg_destroy(w->pg);
}

void ti_send_raw(struct ti *w, const char *key, const char *payload)
{
	vox_error_t err;

	cr_assert_eq(vox_producer_send_sync(producer(), w->topic, key, payload,
	                                    strlen(payload), NULL, 0, NULL,
	                                    NULL, &err),
	             0, "%s", err.message);
}

void ti_send(struct ti *w, const char *type, const char *account, json_t *data)
{
	json_t *ev = vox_event_build(type, NULL, account, NULL, data);
	char *text;

	cr_assert_not_null(ev, "event %s", type);
	text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	ti_send_raw(w, account, text);
	free(text);
}

void ti_generate(struct ti *w, const char *account, const char *start,
                 const char *end, char op[40])
{
	vox_uuid7(op);
	ti_send(w, "vox.invoice.generate_requested", account,
	        json_pack("{s:s, s:s, s:s, s:s}", "account_id", account,
	                  "period_start", start, "period_end", end,
	                  "operation_id", op));
}

void ti_invoice_cmd(struct ti *w, const char *type, const char *account,
                    const char *invoice, json_t *extra, char op[40])
{
	json_t *data = json_pack("{s:s, s:s}", "account_id", account,
	                         "invoice_id", invoice);

	vox_uuid7(op);
	json_object_set_new(data, "operation_id", json_string(op));
	if (extra != NULL)
		json_object_update(data, extra);
	json_decref(extra);
	ti_send(w, type, account, data);
}

struct op_wait {
	struct ti *w;
	const char *op;
	json_t *row;
};

static bool op_done(void *arg)
{
	struct op_wait *o = arg;
	const char *params[] = {o->op};
	char *text = ti_str(o->w,
	                    "SELECT json_build_object('status', status, "
	                    "'error_code', error_code, 'error_message', "
	                    "error_message, 'result', result)::text FROM "
	                    "operations WHERE id = $1::uuid AND status IN "
	                    "('completed', 'failed')",
	                    1, params);

	if (text == NULL)
		return false;
	o->row = json_loads(text, 0, NULL);
	free(text);
	return o->row != NULL;
}

json_t *ti_op_wait(struct ti *w, const char *op)
{
	struct op_wait o = {w, op, NULL};

	cr_assert(t_wait_for(op_done, &o, OP_WAIT_MS),
	          "operation %s did not finish", op);
	return o.row;
}

void ti_op_invoice(struct ti *w, const char *op, char invoice[40])
{
	json_t *row = ti_op_wait(w, op);
	const json_t *result = json_object_get(row, "result");

	cr_assert_str_eq(vox_json_str(row, "status"), "completed",
	                 "operation %s: %s %s", op,
	                 vox_json_str(row, "error_code"),
	                 vox_json_str(row, "error_message"));
	cr_assert_not_null(vox_json_str(result, "invoice_id"));
	snprintf(invoice, 40, "%s", vox_json_str(result, "invoice_id"));
	json_decref(row);
}

void ti_op_failed(struct ti *w, const char *op, const char *code)
{
	json_t *row = ti_op_wait(w, op);

	cr_assert_str_eq(vox_json_str(row, "status"), "failed", "operation %s",
	                 op);
	cr_assert_str_eq(vox_json_str(row, "error_code"), code,
	                 "operation %s: %s", op,
	                 vox_json_str(row, "error_message"));
	cr_log_info("%s failed as expected: %s", op,
	            vox_json_str(row, "error_message"));
	json_decref(row);
}

void ti_sql(struct ti *w, const char *sql, int n, const char *const *params)
{
	vox_error_t err;

	cr_assert_eq(vox_pg_exec(w->pg, sql, n, params, NULL, &err), 0,
	             "%s: %s", sql, err.message);
}

char *ti_str(struct ti *w, const char *sql, int n, const char *const *params)
{
	PGresult *res;
	vox_error_t err;
	char *out = NULL;

	cr_assert_eq(vox_pg_exec(w->pg, sql, n, params, &res, &err), 0,
	             "%s: %s", sql, err.message);
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		out = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return out;
}

long long ti_num(struct ti *w, const char *sql, int n,
                 const char *const *params)
{
	char *text = ti_str(w, sql, n, params);
	long long v;

	cr_assert_not_null(text, "no row: %s", sql);
	v = strtoll(text, NULL, 10);
	free(text);
	return v;
}

void ti_account(struct ti *w, const char *tz, int anchor_day, int tax_ppm,
                int grace_days, char account[40])
{
	char key[64], anchor[8], tax[16], grace[8];

	t_account("owner", account, key);
	snprintf(anchor, sizeof(anchor), "%d", anchor_day);
	snprintf(tax, sizeof(tax), "%d", tax_ppm);
	snprintf(grace, sizeof(grace), "%d", grace_days);
	const char *params[] = {account, tz};
	const char *settings[] = {account, anchor, tax, grace};
	ti_sql(w, "UPDATE accounts SET timezone = $2 WHERE id = $1::uuid", 2,
	       params);
	ti_sql(w,
	       "INSERT INTO billing_accounts (account_id, anchor_day, "
	       "tax_rate_ppm, grace_days) VALUES ($1::uuid, $2::smallint, "
	       "$3::int, $4::smallint)",
	       4, settings);
}

void ti_own(struct ti *w, const char *account, const char *e164,
            const char *start, const char *end, const char *source,
            long long rate, long long setup)
{
	char rate_s[24], setup_s[24];

	snprintf(rate_s, sizeof(rate_s), "%lld", rate);
	snprintf(setup_s, sizeof(setup_s), "%lld", setup);
	const char *params[] = {account, e164,   start,  end,
	                        source,  rate_s, setup_s};
	ti_sql(w,
	       "INSERT INTO number_ownerships (number_id, country, e164, "
	       "account_id, started_at, ended_at, source, "
	       "monthly_rate_micros, setup_fee_micros, currency) VALUES "
	       "(gen_random_uuid(), 'US', $2, $1::uuid, $3::timestamptz, "
	       "$4::timestamptz, $5, $6::bigint, $7::bigint, 'USD')",
	       7, params);
}

void ti_usage(struct ti *w, const char *account, const char *type,
              const char *start, int n, long long cost)
{
	char n_s[16], cost_s[24];

	snprintf(n_s, sizeof(n_s), "%d", n);
	snprintf(cost_s, sizeof(cost_s), "%lld", cost);
	const char *params[] = {account, type, start, n_s, cost_s};
	ti_sql(w,
	       "INSERT INTO usage_records (account_id, e164, event_type, "
	       "direction, carrier, carrier_cdr_id, started_at, duration_s, "
	       "billable_s, units, cost_micros, currency, rated_at) SELECT "
	       "$1::uuid, '+14155550100', $2, CASE WHEN $2 IN "
	       "('inbound_call', 'sms_received') THEN 'inbound' ELSE "
	       "'outbound' END, 'test', gen_random_uuid()::text, "
	       "$3::timestamptz + g * interval '1 second', 60, 60, 1, "
	       "$5::bigint, 'USD', now() FROM generate_series(0, $4::int - 1) "
	       "g",
	       5, params);
}
