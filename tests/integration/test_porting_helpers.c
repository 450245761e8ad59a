/* The porting suites' world (see test_porting_helpers.h). */
#include "test_porting_helpers.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "test_notify_helpers.h"
#include "vox_auth.h"
#include "vox_crypto.h"
#include "vox_time.h"
#include "vox_uuid.h"

/* The running test's world, for tp_fini. */
static struct tp_world *tp_current;

static bool ingress_up(void *arg)
{
	return t_http("GET", *(int *)arg, "/healthz", NULL, NULL, NULL) == 200;
}

/* The carrier sandbox (VOX_CARRIER_URL + path): status, JSON answer. */
static json_t *sandbox(const char *method, const char *path, const char *body,
                       long *status)
{
	char url[512];
	struct t_http_buf s = {NULL, 0};
	struct curl_slist *h = NULL;
	CURL *c = curl_easy_init();
	json_t *doc;

	snprintf(url, sizeof(url), "%s%s", t_env("VOX_CARRIER_URL"), path);
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, t_http_collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	*status = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	doc = json_loads(s.data != NULL ? s.data : "null", JSON_DECODE_ANY,
	                 NULL);
	free(s.data);
	return doc;
}

void tp_sandbox_faults(const char *method, const char *body)
{
	long status;

	json_decref(sandbox(method, "/admin/faults", body, &status));
	cr_assert(status >= 200 && status < 300, "%s /admin/faults: %ld",
	          method, status);
}

static void sandbox_porting(const json_t *settings)
{
	char *body = json_dumps(settings, JSON_COMPACT);
	long status;
	json_t *doc = sandbox("POST", "/admin/porting", body, &status);

	cr_assert_eq(status, 200, "POST /admin/porting: %ld", status);
	json_decref(doc);
	free(body);
}

void tp_time_scale(long scale)
{
	json_t *s = json_pack("{s:I}", "time_scale", (json_int_t)scale);

	sandbox_porting(s);
	json_decref(s);
}

int tp_carrier_orders(const char *ref)
{
	char path[200];
	long status;
	json_t *doc, *list;
	int n = 0;

	snprintf(path, sizeof(path),
	         "/admin/porting/orders?customer_reference=%s", ref);
	doc = sandbox("GET", path, NULL, &status);
	cr_assert_eq(status, 200, "GET %s: %ld", path, status);
	list = json_is_array(doc) ? doc : json_object_get(doc, "data");
	if (list == NULL)
		list = json_object_get(doc, "orders");
	cr_assert(json_is_array(list), "no order list from the sandbox");
	for (size_t i = 0; i < json_array_size(list); i++) {
		const char *r = json_string_value(json_object_get(
		        json_array_get(list, i), "customer_reference"));

		n += r != NULL && strcmp(r, ref) == 0;
	}
	json_decref(doc);
	return n;
}

void tp_number(char out[20], int last)
{
	char id[VOX_UUID_STRLEN];
	unsigned long r;

	/* from a uuid's random bits: rand() is not seeded, and other suites
	 * draw the same sequence */
	vox_uuid7(id);
	r = strtoul(id + 28, NULL, 16);
	snprintf(out, 20, "+1628%lu%05lu%d", 2 + r % 8, (r / 8) % 100000, last);
}

void tp_worker_spawn(struct tp_world *w, const char *fault_points)
{
	static char group[240], carrier[80], fault[200];
	char log[64];
	const char *env[16];
	int n = 0;

	snprintf(group, sizeof(group), "VOX_WORKER_GROUP=%s", w->group);
	snprintf(carrier, sizeof(carrier), "VOX_PORTING_CARRIER=%s",
	         w->carrier);
	env[n++] = group;
	env[n++] = carrier;
	env[n++] = "VOX_ENCRYPTION_KEY=" TP_ENCRYPTION_KEY;
	env[n++] = "VOX_WORKER_METRICS_PORT=0";
	env[n++] = "VOX_WORKER_TOPICS=vox.cmd.porting";
	env[n++] = "VOX_KAFKA_SESSION_TIMEOUT_MS=6000";
	env[n++] = "VOX_PORTING_EARLY_WAIT_S=60";
	if (*w->extra != '\0')
		env[n++] = w->extra;
	if (fault_points != NULL) {
		snprintf(fault, sizeof(fault), "VOX_FAULT_POINT=%s",
		         fault_points);
		env[n++] = fault;
	} else {
		env[n++] = "VOX_FAULT_POINT=";
	}
	env[n] = NULL;
	snprintf(log, sizeof(log), "porting-%s-worker-%d.log", w->tag,
	         ++w->worker_starts);
	w->worker = t_spawn(w->test_bin ? "../test-bin/porting" : "porting",
	                    log, env);
}

void tp_worker_env(struct tp_world *w, const char *setting)
{
	/* just started, it may not handle SIGTERM yet: any end will do */
	cr_assert_neq(t_stop(w->worker, SIGTERM, 20000), -1);
	snprintf(w->extra, sizeof(w->extra), "%s", setting);
	tp_worker_spawn(w, NULL);
}

void tp_webhook_url(const char *url)
{
	json_t *s = json_pack("{s:s}", "webhook_url", url);

	sandbox_porting(s);
	json_decref(s);
}

bool tp_worker_died(struct tp_world *w, int timeout_ms)
{
	int status;

	for (int waited = 0; waited < timeout_ms; waited += 50) {
		pid_t got = waitpid(w->worker, &status, WNOHANG);

		if (got == w->worker) {
			w->worker = 0;
			return WIFSIGNALED(status) &&
			       WTERMSIG(status) == SIGABRT;
		}
		usleep(50 * 1000);
	}
	return false;
}

/* A carrier credential of the run's own (its carrier name is the
 * worker's VOX_PORTING_CARRIER). */
static void credential(struct tp_world *w, const char *id)
{
	vox_pg_t *pg = t_pg();
	char hash[65];
	vox_error_t err;

	snprintf(w->carrier, sizeof(w->carrier), "pt-%.12s", id + 24);
	cr_assert_eq(vox_carrier_key_generate(w->ckey, sizeof(w->ckey), &err),
	             0);
	cr_assert_eq(vox_random_b64url(w->csecret, sizeof(w->csecret), &err),
	             0);
	vox_apikey_hash_hex(w->ckey, hash);
	const char *p[] = {w->carrier, w->ckey, hash, w->csecret};
	cr_assert_eq(vox_pg_exec(pg,
	                         "INSERT INTO carrier_credentials (carrier, "
	                         "key_prefix, key_hash, signing_secret) VALUES "
	                         "($1, left($2, 12), decode($3, 'hex'), $4)",
	                         4, p, NULL, &err),
	             0, "%s", err.message);
	vox_pg_destroy(pg);
}

void tp_start(struct tp_world *w, bool notify, bool test_bin,
              const char *fault_points, long time_scale)
{
	char id[VOX_UUID_STRLEN], port_env[40], url[120], mgroup[240];
	json_t *settings;

	memset(w, 0, sizeof(*w));
	tp_current = w;
	vox_uuid7(id);
	snprintf(w->tag, sizeof(w->tag), "%.8s", id + 28);
	w->test_bin = test_bin;
	w->notify = notify;
	w->port = t_free_port();
	credential(w, id);

	/* the account (with a user to mail when notify) */
	snprintf(w->email, sizeof(w->email), "port-%s@example.com", id + 24);
	if (notify) {
		char group[240];

		snprintf(group, sizeof(group), "vox.test.porting-notify.%s",
		         id);
		t_group_at_end(group, "vox.events");
		static char genv[260];
		snprintf(genv, sizeof(genv), "VOX_WORKER_GROUP=%s", group);
		const char *nenv[] = {"VOX_WORKER_TOPICS=vox.events", genv,
		                      NULL};
		tn_start(nenv);
		tn_account("en", w->email, NULL, NULL, w->account);
	} else {
		char unused[64];

		t_account("owner", w->account, unused);
	}
	t_key(w->account, "owner", w->key, NULL);
	snprintf(w->auth, sizeof(w->auth), "Authorization: Bearer %s", w->key);

	/* the ingress */
	snprintf(port_env, sizeof(port_env), "VOX_INGRESS_PORT=%d", w->port);
	const char *ienv[] = {port_env, "VOX_ENCRYPTION_KEY=" TP_ENCRYPTION_KEY,
	                      "VOX_RATE_COMMAND=1000", "VOX_RATE_READ=1000",
	                      NULL};
	char log[64];
	snprintf(log, sizeof(log), "porting-%s-ingress.log", w->tag);
	w->ingress = t_spawn("ingress", log, ienv);
	cr_assert(t_wait_for(ingress_up, &w->port, 20000), "ingress not up");

	/* the porting worker, from the end of vox.cmd.porting */
	snprintf(w->group, sizeof(w->group), "vox.test.porting.%s", id);
	t_group_at_end(w->group, "vox.cmd.porting");
	tp_worker_spawn(w, fault_points);

	/* the metering worker, for the ported number's CDRs */
	snprintf(mgroup, sizeof(mgroup),
	         "VOX_WORKER_GROUP=vox.test.porting-"
	         "metering.%s",
	         id);
	t_group_at_end(mgroup + strlen("VOX_WORKER_GROUP="), "vox.cdr.raw");
	const char *menv[] = {mgroup, "VOX_WORKER_METRICS_PORT=0",
	                      "VOX_KAFKA_SESSION_TIMEOUT_MS=6000",
	                      "VOX_WORKER_RELAY=false", NULL};
	snprintf(log, sizeof(log), "porting-%s-metering.log", w->tag);
	w->metering = t_spawn("metering", log, menv);

	/* the sandbox's webhooks to this ingress, signed with our credential */
	snprintf(url, sizeof(url),
	         "http://127.0.0.1:%d/v1/carrier/porting-events", w->port);
	settings = json_pack("{s:s, s:s, s:s, s:I, s:I}", "webhook_url", url,
	                     "api_key", w->ckey, "signing_secret", w->csecret,
	                     "time_scale", (json_int_t)time_scale, "step_ms",
	                     (json_int_t)200);
	sandbox_porting(settings);
	json_decref(settings);
}

void tp_fini(void)
{
	struct tp_world *w = tp_current;

	if (w == NULL)
		return;
	if (w->notify)
		tn_stop();
	pid_t *pids[] = {&w->worker, &w->metering, &w->ingress};
	for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++)
		if (*pids[i] > 0) {
			t_stop(*pids[i], SIGTERM, 10000);
			*pids[i] = 0;
		}
	tp_current = NULL;
}

void tp_stop(struct tp_world *w)
{
	/* the sandbox is shared: back to the time scale of make test */
	tp_time_scale(500000);
	if (w->notify)
		tn_stop();
	if (w->worker > 0)
		cr_expect_eq(t_stop(w->worker, SIGTERM, 20000), 0);
	cr_expect_eq(t_stop(w->metering, SIGTERM, 30000), 0);
	cr_expect_eq(t_stop(w->ingress, SIGTERM, 20000), 0);
	w->worker = w->metering = w->ingress = 0;
	w->notify = false;
	tp_current = NULL;
}

json_t *tp_api(struct tp_world *w, const char *method, const char *path,
               const char *body, int want)
{
	char idem[80], id[VOX_UUID_STRLEN], *text = NULL;
	json_t *doc;
	int status;

	vox_uuid7(id);
	snprintf(idem, sizeof(idem), "Idempotency-Key: port-%s", id);
	const char *headers[] = {w->auth, idem,
	                         "Content-Type: application/json", NULL};
	status = t_http_h(method, w->port, path, body, headers, &text, NULL);
	cr_assert_eq(status, want, "%s %s: %d %s", method, path, status,
	             text ? text : "");
	doc = json_loads(text != NULL ? text : "null", JSON_DECODE_ANY, NULL);
	free(text);
	cr_assert_not_null(doc, "%s %s: not JSON", method, path);
	return doc;
}

void tp_document(struct tp_world *w, const char *kind, char id[40])
{
	static const char pdf[] =
	        "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
	        "2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
	        "trailer << /Root 1 0 R >>\n%%EOF\n";
	char body[1024], ctype[120], idem[80], uid[VOX_UUID_STRLEN];
	char *text = NULL;
	json_t *doc;
	int status;

	vox_uuid7(uid);
	snprintf(ctype, sizeof(ctype),
	         "Content-Type: multipart/form-data; boundary=b-%s", uid);
	snprintf(body, sizeof(body),
	         "--b-%s\r\nContent-Disposition: form-data; name=\"kind\"\r\n"
	         "\r\n%s\r\n--b-%s\r\nContent-Disposition: form-data; "
	         "name=\"file\"; filename=\"%s.pdf\"\r\nContent-Type: "
	         "application/pdf\r\n\r\n%s\r\n--b-%s--\r\n",
	         uid, kind, uid, kind, pdf, uid);
	snprintf(idem, sizeof(idem), "Idempotency-Key: doc-%s", uid);
	const char *headers[] = {w->auth, idem, ctype, NULL};
	status = t_http_h("POST", w->port, "/v1/documents", body, headers,
	                  &text, NULL);
	cr_assert_eq(status, 201, "POST /v1/documents: %d %s", status,
	             text ? text : "");
	doc = json_loads(text, 0, NULL);
	free(text);
	cr_assert_not_null(doc);
	snprintf(id, 40, "%s", json_string_value(json_object_get(doc, "id")));
	json_decref(doc);
}

void tp_first_foc(struct tp_world *w, const char *order_id, char date[11])
{
	char path[200];
	json_t *doc, *first;

	snprintf(path, sizeof(path),
	         "/v1/porting-orders/%s/allowed-foc-windows", order_id);
	doc = tp_api(w, "GET", path, NULL, 200);
	first = json_array_get(json_object_get(doc, "data"), 0);
	cr_assert_not_null(first, "no FOC window offered");
	snprintf(date, 11, "%s",
	         json_string_value(json_object_get(first, "date")));
	json_decref(doc);
}

json_t *tp_wait_status(struct tp_world *w, const char *order_id,
                       const char *status, int timeout_ms)
{
	char path[120];
	long long until = vox_now_us() + (long long)timeout_ms * 1000;
	json_t *doc = NULL;

	snprintf(path, sizeof(path), "/v1/porting-orders/%s", order_id);
	for (;;) {
		const char *now;

		json_decref(doc);
		doc = tp_api(w, "GET", path, NULL, 200);
		now = json_string_value(json_object_get(doc, "status"));
		if ((now != NULL && strcmp(now, status) == 0) ||
		    vox_now_us() > until)
			break;
		usleep(100 * 1000);
	}
	cr_assert_str_eq(json_string_value(json_object_get(doc, "status")),
	                 status, "order %s did not reach %s", order_id, status);
	return doc;
}

int tp_carrier_event(struct tp_world *w, const char *body)
{
	long long t = (long long)time(NULL);
	size_t blen = strlen(body), len;
	char *signed_text = malloc(blen + 32), sig[65], auth[160], sigh[160];
	unsigned char md[32];
	unsigned int mdlen = 0;

	cr_assert_not_null(signed_text);
	len = (size_t)snprintf(signed_text, 32, "%lld.", t);
	memcpy(signed_text + len, body, blen);
	HMAC(EVP_sha256(), w->csecret, (int)strlen(w->csecret),
	     (unsigned char *)signed_text, len + blen, md, &mdlen);
	vox_hex_encode(md, 32, sig);
	free(signed_text);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", w->ckey);
	snprintf(sigh, sizeof(sigh), "Vox-Signature: t=%lld,v1=%s", t, sig);
	const char *headers[] = {auth, sigh, "Content-Type: application/json",
	                         NULL};
	return t_http_h("POST", w->port, "/v1/carrier/porting-events", body,
	                headers, NULL, NULL);
}

bool tp_wait_sql(const char *sql, const char *param, const char *want,
                 int timeout_ms, char **last)
{
	long long until = vox_now_us() + (long long)timeout_ms * 1000;
	vox_pg_t *pg = t_pg();
	const char *params[] = {param};
	char *seen = NULL;
	bool ok = false;

	for (;;) {
		PGresult *res;
		vox_error_t err;

		if (vox_pg_exec(pg, sql, 1, params, &res, &err) == 0) {
			free(seen);
			seen = strdup(PQntuples(res) > 0 &&
			                              !PQgetisnull(res, 0, 0)
			                      ? PQgetvalue(res, 0, 0)
			                      : "");
			PQclear(res);
			ok = seen != NULL && strcmp(seen, want) == 0;
		}
		if (ok || vox_now_us() > until)
			break;
		usleep(100 * 1000);
	}
	vox_pg_destroy(pg);
	if (last != NULL)
		*last = seen;
	else
		free(seen);
	return ok;
}
