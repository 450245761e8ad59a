/* The notifications suite's world (see test_notify_helpers.h). */
#include "test_notify_helpers.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "vox_crypto.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_kafka.h"
#include "vox_time.h"
#include "vox_uuid.h"
#include "vox_whsig.h"

#define RECV_HOST "127.0.0.77"
#define VENV_PY   "/.cache/voxlink/st-venv/bin/python"

struct tn_world tn;

/* A python helper of the tree on port, its stderr in log. */
static pid_t helper_spawn(const char *python, const char *script,
                          const char *host, int port, const char *log,
                          const char *extra_flag, const char *extra_value)
{
	char path[1024], port_text[16];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", t_env("VOX_ROOT"), script);
	snprintf(port_text, sizeof(port_text), "%d", port);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		FILE *f = freopen(log, "a", stderr);

		(void)f;
		f = freopen("/dev/null", "w", stdout);
		(void)f;
		unsetenv("VOX_SMS_FAULTS");
		setenv("VOX_SMS_RECEIPT_DELAY_MS", "50", 1);
		execl(python, python, path, "--host", host, "--port", port_text,
		      extra_flag, extra_value, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static bool tcp_up(void *arg)
{
	const char *url = arg;
	CURL *c = curl_easy_init();
	CURLcode rc;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 500L);
	rc = curl_easy_perform(c);
	curl_easy_cleanup(c);
	return rc == CURLE_OK;
}

static void helpers_start(void)
{
	char python[512], url[96];

	if (tn.recv > 0)
		return;
	tn.pg = t_pg();
	snprintf(tn.maildir, sizeof(tn.maildir), "%s/notify-maildir-%d",
	         getcwd(python, sizeof(python)), getpid());
	tn.sink_port = t_free_port();
	tn.sink = helper_spawn("/usr/bin/python3", "ops/smtp-sink/sink.py",
	                       "127.0.0.1", tn.sink_port, "notify-smtp.log",
	                       "--maildir", tn.maildir);
	tn.sms_port = t_free_port();
	tn.sms = helper_spawn("/usr/bin/python3", "ops/sms-sandbox/server.py",
	                      "127.0.0.1", tn.sms_port, "notify-sms.log", NULL,
	                      NULL);
	snprintf(python, sizeof(python), "%s%s", getenv("HOME"), VENV_PY);
	tn.recv_port = t_free_port();
	tn.recv = helper_spawn(python, "tests/support/webhook_receiver.py",
	                       RECV_HOST, tn.recv_port, "notify-receiver.log",
	                       NULL, NULL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", tn.sink_port);
	cr_assert(t_wait_for(tcp_up, url, 20000), "SMTP sink not up");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", tn.sms_port);
	cr_assert(t_wait_for(tcp_up, url, 20000), "SMS sandbox not up");
	snprintf(url, sizeof(url), "http://" RECV_HOST ":%d", tn.recv_port);
	cr_assert(t_wait_for(tcp_up, url, 20000), "receiver not up");
}

void tn_worker_spawn(const char *const *extra)
{
	static char topics[200], group[240], smtp[80], sms[80], cb[120];
	char log[64];
	const char *env[32];
	int n = 0;

	snprintf(topics, sizeof(topics), "VOX_WORKER_TOPICS=%s", tn.topic);
	snprintf(group, sizeof(group), "VOX_WORKER_GROUP=%s", tn.group);
	snprintf(smtp, sizeof(smtp), "VOX_SMTP_URL=smtp://127.0.0.1:%d",
	         tn.sink_port);
	snprintf(sms, sizeof(sms), "VOX_SMS_URL=http://127.0.0.1:%d",
	         tn.sms_port);
	/* receipts land on the receiver: the test plays the ingress */
	snprintf(cb, sizeof(cb),
	         "VOX_SMS_STATUS_CALLBACK_URL=http://" RECV_HOST
	         ":%d/sms-status",
	         tn.recv_port);
	const char *base[] = {topics,
	                      group,
	                      smtp,
	                      sms,
	                      cb,
	                      "VOX_ENCRYPTION_KEY=" TN_ENCRYPTION_KEY,
	                      "VOX_WEBHOOK_ALLOW_CIDRS=" RECV_HOST "/32",
	                      "VOX_NOTIFY_TIME_SCALE=1000",
	                      "VOX_NOTIFY_SENDERS=4",
	                      "VOX_NOTIFY_POLL_MS=200",
	                      "VOX_WORKER_METRICS_PORT=0",
	                      "VOX_WORKER_RELAY=false",
	                      "VOX_KAFKA_SESSION_TIMEOUT_MS=6000",
	                      NULL};
	for (int i = 0; base[i] != NULL; i++)
		env[n++] = base[i];
	for (int i = 0; extra != NULL && extra[i] != NULL && n < 31; i++)
		env[n++] = extra[i];
	env[n] = NULL;
	snprintf(log, sizeof(log), "notify-worker-%d.log", ++tn.worker_starts);
	tn.worker = t_spawn("../test-bin/notifications", log, env);
}

void tn_start(const char *const *extra)
{
	char id[VOX_UUID_STRLEN];

	helpers_start();
	vox_uuid7(id);
	t_topic_create("vox.test.notify", 1, tn.topic, sizeof(tn.topic));
	snprintf(tn.group, sizeof(tn.group), "vox.test.notify.%s", id);
	tn_worker_spawn(extra);
}

void tn_stop(void)
{
	if (tn.worker > 0)
		t_stop(tn.worker, SIGTERM, 20000);
	tn.worker = 0;
}

/* The helpers live as long as the test process. */
static void __attribute__((destructor)) helpers_stop(void)
{
	pid_t *pids[] = {&tn.sink, &tn.sms, &tn.recv};

	for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++)
		if (*pids[i] > 0) {
			t_stop(*pids[i], SIGTERM, 5000);
			*pids[i] = 0;
		}
}

void tn_account(const char *lang, const char *email, const char *phone,
                const char *channels, char account[40])
{
	char key[64];
	vox_error_t err;

	t_account("owner", account, key);
	const char *params[] = {account, lang, email, phone, channels};
	cr_assert_eq(
	        vox_pg_exec(
	                tn.pg,
	                "WITH a AS (UPDATE accounts SET language = $2 "
	                "WHERE id = $1), p AS (INSERT INTO "
	                "notification_preferences (account_id, "
	                "event_type, channels) SELECT $1, '*', "
	                "$5::text[] WHERE $5 IS NOT NULL) INSERT INTO "
	                "users (account_id, email, role, phone) SELECT "
	                "$1, $3::text, 'owner', $4::text WHERE $3 IS NOT NULL",
	                5, params, NULL, &err),
	        0, "%s", err.message);
}

char *tn_seal(const char *table, const char *id, const char *secret)
{
	vox_crypto_keyring_t *ring;
	unsigned char *sealed;
	size_t len;
	char aad[128], *hex;
	vox_error_t err;

	ring = vox_crypto_keyring_new(TN_ENCRYPTION_KEY, NULL, &err);
	cr_assert_not_null(ring, "%s", err.message);
	snprintf(aad, sizeof(aad), "%s/%s", table, id);
	cr_assert_eq(vox_crypto_seal(ring, secret, strlen(secret), aad,
	                             strlen(aad), &sealed, &len, &err),
	             0, "%s", err.message);
	hex = malloc(2 * len + 1);
	vox_hex_encode(sealed, len, hex);
	free(sealed);
	vox_crypto_keyring_destroy(ring);
	return hex;
}

void tn_endpoint(const char *account, const char *path, char id[40],
                 char secret[100])
{
	char url[2100], mine[VOX_WHSIG_SECRET_MAX], *sealed;
	vox_error_t err;

	if (strncmp(path, "http", 4) == 0)
		snprintf(url, sizeof(url), "%s", path);
	else
		snprintf(url, sizeof(url), "http://" RECV_HOST ":%d%s",
		         tn.recv_port, path);
	cr_assert_eq(vox_whsig_secret_new(mine), 0);
	vox_uuid7(id);
	sealed = tn_seal("webhook_endpoints", id, mine);
	const char *params[] = {id, account, url, sealed};
	cr_assert_eq(vox_pg_exec(tn.pg,
	                         "INSERT INTO webhook_endpoints (id, "
	                         "account_id, url, secret_enc) VALUES ($1, $2, "
	                         "$3, decode($4, 'hex'))",
	                         4, params, NULL, &err),
	             0, "%s", err.message);
	free(sealed);
	if (secret != NULL)
		snprintf(secret, 100, "%s", mine);
}

static char *last_payload, last_key[300];

void tn_publish(const char *type, const char *subject, const char *account,
                json_t *data, char event_id[40])
{
	json_t *ev;
	char *text;

	ev = vox_event_build(type, subject, account, NULL, data);
	if (ev == NULL) /* a type we do not send ourselves */
		ev = vox_event_new(type, "/voxlink/test", subject, account,
		                   NULL, NULL);
	cr_assert_not_null(ev);
	text = vox_json_dump(ev);
	free(last_payload);
	last_payload = text;
	snprintf(last_key, sizeof(last_key), "%s", subject);
	tn_republish_last();
	if (event_id != NULL)
		snprintf(event_id, 40, "%s", vox_json_str(ev, "id"));
	json_decref(ev);
}

void tn_republish_last(void)
{
	static vox_producer_t *producer;
	vox_producer_conf_t conf = {.brokers = t_env("VOX_KAFKA_BROKERS"),
	                            .client_id = "vox-test-notify"};
	vox_error_t err;

	if (producer == NULL)
		producer = vox_producer_new(&conf, &err);
	cr_assert_not_null(producer, "%s", err.message);
	cr_assert_eq(vox_producer_send_sync(producer, tn.topic, last_key,
	                                    last_payload, strlen(last_payload),
	                                    NULL, 0, NULL, NULL, &err),
	             0, "%s", err.message);
}

struct body {
	char *data;
	size_t len;
};

static size_t collect(char *ptr, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	char *grown = realloc(b->data, b->len + size * n + 1);

	cr_assert_not_null(grown);
	memcpy(grown + b->len, ptr, size * n);
	b->data = grown;
	b->len += size * n;
	b->data[b->len] = '\0';
	return size * n;
}

static json_t *http_json(const char *url, const char *method, const char *body,
                         const char *type)
{
	struct body b = {0};
	struct curl_slist *h = NULL;
	CURL *c = curl_easy_init();
	json_t *doc;
	char line[96];

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (body != NULL) {
		snprintf(line, sizeof(line), "Content-Type: %s", type);
		h = curl_slist_append(h, line);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	cr_assert_eq(curl_easy_perform(c), CURLE_OK, "%s %s", method, url);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	doc = b.data ? json_loads(b.data, 0, NULL) : NULL;
	free(b.data);
	return doc;
}

json_t *tn_recv(const char *method, const char *path, const char *body)
{
	char url[800];

	snprintf(url, sizeof(url), "http://" RECV_HOST ":%d%s", tn.recv_port,
	         path);
	return http_json(url, method, body, "application/json");
}

json_t *tn_received(const char *path, int min, int timeout_ms)
{
	char q[700];

	snprintf(q, sizeof(q), "/_admin/received?path=%s&min=%d&timeout_ms=%d",
	         path, min, timeout_ms);
	return tn_recv("GET", q, NULL);
}

json_t *tn_sms(const char *method, const char *path, const char *body)
{
	char url[512];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", tn.sms_port, path);
	return http_json(url, method, body, "application/json");
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = calloc(1, (size_t)n + 1);
	if (fread(text, 1, (size_t)n, f) != (size_t)n)
		text[0] = '\0';
	fclose(f);
	return text;
}

static char *mail_scan(const char *rcpt)
{
	char dir[300], path[600], needle[400];
	struct dirent *ent;
	char *text = NULL;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/new", tn.maildir);
	snprintf(needle, sizeof(needle), "To: <%s>", rcpt);
	d = opendir(dir);
	while (d != NULL && text == NULL && (ent = readdir(d)) != NULL) {
		if (ent->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
		text = slurp(path);
		if (text != NULL && strstr(text, needle) == NULL) {
			free(text);
			text = NULL;
		}
	}
	if (d != NULL)
		closedir(d);
	return text;
}

/* Quoted-printable undone in place (soft line breaks and =XX), so tests
 * can look for the rendered text. */
static void unquote(char *text)
{
	char *in = text, *out = text;
	unsigned hex;

	while (*in != '\0') {
		if (in[0] == '=' && in[1] == '\r' && in[2] == '\n')
			in += 3;
		else if (in[0] == '=' && in[1] == '\n')
			in += 2;
		else if (in[0] == '=' && sscanf(in + 1, "%2x", &hex) == 1 &&
		         in[1] != '\0' && in[2] != '\0') {
			*out++ = (char)hex;
			in += 3;
		} else
			*out++ = *in++;
	}
	*out = '\0';
}

char *tn_mail(const char *rcpt, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 100) {
		char *text = mail_scan(rcpt);

		if (text != NULL) {
			unquote(text);
			return text;
		}
		vox_sleep_ms(100);
	}
	return NULL;
}

char *tn_sql(const char *sql, const char *param)
{
	const char *params[] = {param};
	PGresult *res;
	vox_error_t err;
	char *out;

	cr_assert_eq(vox_pg_exec(tn.pg, sql, param ? 1 : 0, params, &res, &err),
	             0, "%s: %s", sql, err.message);
	out = strdup(PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return out;
}

bool tn_wait_sql(const char *sql, const char *param, const char *want,
                 int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 50) {
		char *got = tn_sql(sql, param);
		bool ok = strcmp(got, want) == 0;

		free(got);
		if (ok)
			return true;
		vox_sleep_ms(50);
	}
	return false;
}
