/*
 * Usage from end to end on the real stack: a carrier pushes signed CDRs to
 * the ingress (one push repeated), the metering worker rates them, and
 * GET /v1/usage answers totals equal to a direct SQL sum over
 * usage_records for the same range, for every grouping; a usage trigger
 * created through the API fires once per day it is crossed, as a
 * notification command. A CDR file import killed part-way and rerun is
 * counted once per record.
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_auth.h"
#include "vox_buf.h"
#include "vox_crypto.h"
#include "vox_uuid.h"

struct e2e {
	int port;
	pid_t ingress, worker;
	char account[40], key[64];
	char carrier[40], ckey[80], secret[64];
	char numbers[3][24];
	vox_pg_t *pg;
};

static bool up(void *arg)
{
	return t_http("GET", *(int *)arg, "/healthz", NULL, NULL, NULL) == 200;
}

static void sql(vox_pg_t *pg, const char *text, int n,
                const char *const *params)
{
	vox_error_t err;

	cr_assert_eq(vox_pg_exec(pg, text, n, params, NULL, &err), 0, "%s: %s",
	             text, err.message);
}

static void setup(struct e2e *e)
{
	static char port_env[64], group_env[128];
	char id[VOX_UUID_STRLEN], hash[65];
	vox_error_t err;

	memset(e, 0, sizeof(*e));
	e->pg = t_pg();
	t_account("owner", e->account, e->key);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (int i = 0; i < 3; i++) {
		/* valid NANP numbers of San Francisco's 628 */
		snprintf(e->numbers[i], sizeof(e->numbers[i]), "+1628%d%06d",
		         2 + rand() % 8, rand() % 1000000);
		const char *p[] = {e->numbers[i], e->account};
		sql(e->pg,
		    "INSERT INTO numbers (e164, country, area_code, "
		    "number_type, status, account_id, carrier) VALUES ($1, "
		    "'US', '628', 'local', 'active', $2, 'sandbox') ON "
		    "CONFLICT DO NOTHING",
		    2, p);
	}
	vox_uuid7(id);
	snprintf(e->carrier, sizeof(e->carrier), "e2e-%.4s%.12s", id + 19,
	         id + 24);
	cr_assert_eq(vox_carrier_key_generate(e->ckey, sizeof(e->ckey), &err),
	             0);
	cr_assert_eq(vox_random_b64url(e->secret, sizeof(e->secret), &err), 0);
	vox_apikey_hash_hex(e->ckey, hash);
	const char *p[] = {e->carrier, e->ckey, hash, e->secret};
	sql(e->pg,
	    "INSERT INTO carrier_credentials (carrier, key_prefix, key_hash, "
	    "signing_secret) VALUES ($1, left($2, 12), decode($3, 'hex'), $4)",
	    4, p);
	e->port = t_free_port();
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", e->port);
	const char *ienv[] = {port_env, "VOX_RATE_COMMAND=1000",
	                      "VOX_RATE_READ=1000", NULL};
	e->ingress = t_spawn("ingress", "usage-e2e-ingress.log", ienv);
	cr_assert(t_wait_for(up, &e->port, 20000), "ingress not up");
	snprintf(group_env, sizeof(group_env),
	         "VOX_WORKER_GROUP=vox.test.e2e.%s", id);
	const char *wenv[] = {group_env, "VOX_WORKER_METRICS_PORT=0",
	                      "VOX_KAFKA_SESSION_TIMEOUT_MS=6000", NULL};
	e->worker = t_spawn("metering", "usage-e2e-metering.log", wenv);
}

static void teardown(struct e2e *e)
{
	cr_expect_eq(t_stop(e->worker, SIGTERM, 30000), 0);
	cr_expect_eq(t_stop(e->ingress, SIGTERM, 20000), 0);
	vox_pg_destroy(e->pg);
}

/* A signed push of body; returns the HTTP status. */
static int push(struct e2e *e, const char *body)
{
	return t_cdr_push(e->port, e->ckey, e->secret, body);
}

/* The JSON array of records r0..r0+n on the days before today. */
static char *records(struct e2e *e, int r0, int n)
{
	static const char *types[] = {"inbound_call", "outbound_call",
	                              "sms_received", "sms_sent"};
	char when[32], extra[40], *text;
	time_t today = time(NULL) / 86400 * 86400;
	vox_buf_t buf;

	vox_buf_init(&buf, 256 * (size_t)n + 8);
	vox_buf_adds(&buf, "[");
	for (int i = r0; i < r0 + n; i++) {
		const char *type = types[i % 4];
		const char *ours = e->numbers[i % 3];
		bool inbound = i % 4 == 0 || i % 4 == 2;
		time_t at = today - 86400 * (1 + i % 3) + 600 + i;
		struct tm tm;

		gmtime_r(&at, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (i % 4 < 2)
			snprintf(extra, sizeof(extra), "\"duration_s\":%d",
			         (i * 37) % 700);
		else
			snprintf(extra, sizeof(extra), "\"segments\":%d",
			         1 + i % 3);
		vox_buf_printf(
		        &buf,
		        "%s{\"id\":\"e2e-%d\",\"type\":\"%s\",\"from\":\"%s\","
		        "\"to\":\"%s\",\"started_at\":\"%s\",%s}",
		        i > r0 ? "," : "", i, type,
		        inbound ? "+12125550100" : ours,
		        inbound ? ours : "+442079460000", when, extra);
	}
	vox_buf_adds(&buf, "]");
	text = vox_buf_take(&buf, NULL);
	cr_assert_not_null(text, "records text too long");
	return text;
}

struct want {
	struct e2e *e;
	long long n;
};

static bool rated(void *arg)
{
	struct want *w = arg;

	return t_pg_count(
	               w->e->pg,
	               "SELECT count(*) FROM usage_records WHERE carrier = $1",
	               w->e->carrier) >= w->n;
}

static long long sql_sum(struct e2e *e, const char *what, const char *from,
                         const char *to)
{
	char q[400];
	PGresult *res = NULL;
	vox_error_t err;
	long long v;

	snprintf(q, sizeof(q),
	         "SELECT coalesce(sum(%s), 0) FROM usage_records WHERE "
	         "account_id = $1 AND started_at >= $2::date AND started_at < "
	         "$3::date + 1",
	         what);
	const char *p[] = {e->account, from, to};
	cr_assert_eq(vox_pg_exec(e->pg, q, 3, p, &res, &err), 0, "%s",
	             err.message);
	v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static json_t *get_json(struct e2e *e, const char *path)
{
	char auth[100], *text = NULL;
	const char *headers[] = {auth, NULL};
	json_t *j;
	int status;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", e->key);
	status = t_http_h("GET", e->port, path, NULL, headers, &text, NULL);
	cr_assert_eq(status, 200, "%s: %d %s", path, status, text);
	j = json_loads(text, 0, NULL);
	free(text);
	cr_assert_not_null(j);
	return j;
}

static long long item_sum(const json_t *answer, const char *field)
{
	const json_t *items = json_object_get(answer, "items"), *it;
	long long s = 0;
	size_t i;

	json_array_foreach(items, i, it) s +=
	        json_integer_value(json_object_get(it, field));
	return s;
}

Test(usage_e2e, pushed_records_rated_once_and_usage_equals_sql, .timeout = 180)
{
	struct e2e e;
	struct want w = {&e, 60};
	char path[200], from[16], to[16], *body, *trig = NULL;
	time_t today = time(NULL) / 86400 * 86400, t;
	static const char *groups[] = {"day", "number", "event_type"};
	static const char *sums[] = {"records", "duration_s", "billable_s",
	                             "units", "cost_micros"};
	const char *headers[3];
	char auth[100];
	struct tm tm;
	json_t *answer;
	long long fires;
	int status;

	setup(&e);
	/* a trigger: 10 records of any kind in a UTC day */
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", e.key);
	headers[0] = auth;
	headers[1] = "Content-Type: application/json";
	headers[2] = NULL;
	status = t_http_h("POST", e.port, "/v1/usage-triggers",
	                  "{\"category\":\"all\",\"threshold\":10,"
	                  "\"trigger_by\":\"count\",\"recurring\":\"daily\","
	                  "\"callback_url\":\"https://hooks.example.com/u\"}",
	                  headers, &trig, NULL);
	cr_assert_eq(status, 201, "%d %s", status, trig);
	free(trig);

	/* 60 records in three pushes; the second push is sent twice */
	for (int k = 0; k < 3; k++) {
		body = records(&e, k * 20, 20);
		cr_assert_eq(push(&e, body), 202);
		if (k == 1) {
			sleep(1); /* a new timestamp: a new signature */
			cr_assert_eq(push(&e, body), 202);
		}
		free(body);
	}
	cr_assert(t_wait_for(rated, &w, 60000), "records not rated");
	sleep(2); /* the repeated push lands too */
	cr_assert_eq(t_pg_count(e.pg,
	                        "SELECT count(*) FROM usage_records WHERE "
	                        "carrier = $1",
	                        e.carrier),
	             60);

	t = today - 3 * 86400;
	gmtime_r(&t, &tm);
	strftime(from, sizeof(from), "%Y-%m-%d", &tm);
	t = today - 86400;
	gmtime_r(&t, &tm);
	strftime(to, sizeof(to), "%Y-%m-%d", &tm);
	for (size_t g = 0; g < 3; g++) {
		snprintf(path, sizeof(path),
		         "/v1/usage?start_date=%s&end_date=%s&group_by=%s",
		         from, to, groups[g]);
		answer = get_json(&e, path);
		for (size_t s = 0; s < 5; s++) {
			long long want =
			        sql_sum(&e, s == 0 ? "1" : sums[s], from, to);
			long long total = json_integer_value(json_object_get(
			        json_object_get(answer, "totals"), sums[s]));

			cr_assert_eq(total, want, "%s totals.%s %lld, SQL %lld",
			             groups[g], sums[s], total, want);
			cr_assert_eq(item_sum(answer, sums[s]), want,
			             "%s items %s", groups[g], sums[s]);
		}
		cr_log_info(
		        "GET %s: %lld records, %lld micro-units", path,
		        json_integer_value(json_object_get(
		                json_object_get(answer, "totals"), "records")),
		        json_integer_value(json_object_get(
		                json_object_get(answer, "totals"),
		                "cost_micros")));
		json_decref(answer);
	}
	cr_assert_eq(sql_sum(&e, "1", from, to), 60);

	/* 20 records a day on three days: the trigger fired once for each */
	fires = t_pg_count(e.pg,
	                   "SELECT count(*) FROM usage_trigger_fires f JOIN "
	                   "usage_triggers t ON t.id = f.trigger_id WHERE "
	                   "t.account_id = $1",
	                   e.account);
	cr_assert_eq(fires, 3, "%lld fires", fires);
	cr_assert_eq(t_pg_count(e.pg,
	                        "SELECT count(*) FROM outbox WHERE topic = "
	                        "'vox.cmd.notifications' AND payload::jsonb "
	                        "->> 'accountid' = $1",
	                        e.account),
	             3);
	teardown(&e);
}

/* Spawns cdr-import on file for carrier; returns its pid. */
static pid_t import_start(const char *carrier, const char *file)
{
	char bin[512], arg[96];
	pid_t pid;

	snprintf(bin, sizeof(bin), "%s/cdr-import", t_env("VOX_BIN_DIR"));
	snprintf(arg, sizeof(arg), "--carrier=%s", carrier);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execl(bin, "cdr-import", "--quiet", "--max-rate=5000", arg,
		      file, (char *)NULL);
		_exit(127);
	}
	return pid;
}

Test(usage_e2e, import_killed_and_rerun_counts_every_record_once,
     .timeout = 240)
{
	enum { ROWS = 20000 };
	struct e2e e;
	struct want w = {&e, ROWS};
	char file[256], when[32];
	time_t base = time(NULL) - 7200;
	struct tm tm;
	pid_t pid;
	int status;
	FILE *f;

	setup(&e);
	snprintf(file, sizeof(file), "%s/e2e-%s.csv", t_env("VOX_TEST_LOGS"),
	         e.carrier);
	f = fopen(file, "w");
	cr_assert_not_null(f);
	fprintf(f, "id,type,from,to,started_at,duration_s,segments\n");
	for (int i = 0; i < ROWS; i++) {
		time_t at = base + i / 10;

		gmtime_r(&at, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (i % 2)
			fprintf(f,
			        "f-%d,outbound_call,%s,+442079460000,%s,%d,\n",
			        i, e.numbers[i % 3], when, i % 300);
		else
			fprintf(f, "f-%d,sms_received,+12125550100,%s,%s,,%d\n",
			        i, e.numbers[i % 3], when, 1 + i % 2);
	}
	fclose(f);
	/* killed part-way (about 1 s in at 5,000 rows/s), then rerun */
	pid = import_start(e.carrier, file);
	usleep(1200 * 1000);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	pid = import_start(e.carrier, file);
	waitpid(pid, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "rerun exit %d", WEXITSTATUS(status));
	cr_assert(t_wait_for(rated, &w, 120000), "%lld of %d rated",
	          t_pg_count(e.pg,
	                     "SELECT count(*) FROM usage_records WHERE "
	                     "carrier = $1",
	                     e.carrier),
	          ROWS);
	sleep(2);
	cr_assert_eq(t_pg_count(e.pg,
	                        "SELECT count(*) FROM usage_records WHERE "
	                        "carrier = $1",
	                        e.carrier),
	             ROWS);
	cr_assert_eq(t_pg_count(e.pg,
	                        "SELECT count(DISTINCT carrier_cdr_id) FROM "
	                        "usage_records WHERE carrier = $1",
	                        e.carrier),
	             ROWS);
	cr_assert_eq(t_pg_count(e.pg,
	                        "SELECT coalesce(sum(records), 0) FROM "
	                        "usage_daily WHERE account_id = $1",
	                        e.account),
	             ROWS);
	teardown(&e);
}
