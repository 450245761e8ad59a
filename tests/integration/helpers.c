/* Integration test helpers (see helpers.h). */
#include "helpers.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vox_auth.h"
#include "vox_buf.h"
#include "vox_crypto.h"
#include "vox_json.h"
#include "vox_uuid.h"

const char *t_env(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0')
		cr_assert_fail(
		        "%s is not set: run the integration tests through "
		        "`make test` (tests/run)",
		        name);
	return v;
}

vox_pg_t *t_pg(void)
{
	vox_pg_t *pg = vox_pg_new(t_env("VOX_PG_URL"));
	vox_error_t err;

	cr_assert_not_null(pg);
	if (vox_pg_connect(pg, 10000, &err) != 0)
		cr_assert_fail("postgres: %s", err.message);
	return pg;
}

long long t_pg_count(vox_pg_t *pg, const char *sql, const char *param)
{
	const char *params[] = {param};
	PGresult *res;
	vox_error_t err;
	long long n;

	if (vox_pg_exec(pg, sql, param ? 1 : 0, params, &res, &err) != 0) {
		cr_log_error("query failed: %s", err.message);
		return -1;
	}
	n = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
	PQclear(res);
	return n;
}

static void create_topics(rd_kafka_t *rk, const char *const *names, int n,
                          int partitions)
{
	rd_kafka_NewTopic_t *topics[4];
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	const rd_kafka_CreateTopics_result_t *res;
	const rd_kafka_topic_result_t **results;
	rd_kafka_event_t *ev;
	char errstr[256];
	size_t cnt;

	for (int i = 0; i < n; i++)
		topics[i] = rd_kafka_NewTopic_new(names[i], i ? 1 : partitions,
		                                  1, errstr, sizeof(errstr));
	rd_kafka_CreateTopics(rk, topics, (size_t)n, NULL, q);
	ev = rd_kafka_queue_poll(q, 30000);
	cr_assert_not_null(ev, "CreateTopics timed out");
	res = rd_kafka_event_CreateTopics_result(ev);
	cr_assert_not_null(res, "unexpected admin event");
	results = rd_kafka_CreateTopics_result_topics(res, &cnt);
	for (size_t i = 0; i < cnt; i++)
		cr_assert(rd_kafka_topic_result_error(results[i]) == 0,
		          "create topic %s: %s",
		          rd_kafka_topic_result_name(results[i]),
		          rd_kafka_topic_result_error_string(results[i]));
	rd_kafka_event_destroy(ev);
	rd_kafka_NewTopic_destroy_array(topics, (size_t)n);
	rd_kafka_queue_destroy(q);
}

void t_topic_create(const char *prefix, int partitions, char *out,
                    size_t outlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char id[VOX_UUID_STRLEN], dlq[300], errstr[256];
	rd_kafka_t *rk;

	vox_uuid7(id);
	snprintf(out, outlen, "%s.%s", prefix, id);
	snprintf(dlq, sizeof(dlq), "%s.dlq", out);
	rd_kafka_conf_set(conf, "bootstrap.servers", t_env("VOX_KAFKA_BROKERS"),
	                  errstr, sizeof(errstr));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	cr_assert_not_null(rk, "%s", errstr);
	const char *const names[] = {out, dlq};
	create_topics(rk, names, 2, partitions);
	rd_kafka_destroy(rk);
}

pid_t t_spawn(const char *binary, const char *logfile, const char *const *env)
{
	char path[1024];
	pid_t parent = getpid(), pid;

	snprintf(path, sizeof(path), "%s/%s", t_env("VOX_BIN_DIR"), binary);
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);

		/* a test that fails (or crashes) before stopping what it
		 * started must not leave it running on the shared stack
		 * (nor start it, if the test died before the prctl) */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);

		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		for (int i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execl(path, binary, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

int t_stop(pid_t pid, int sig, int timeout_ms)
{
	int status;

	if (pid <= 0)
		return -1; /* kill(-1, ...) would signal every process */
	kill(pid, sig);
	for (int waited = 0; waited < timeout_ms; waited += 20) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		sleep_ms(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

int t_free_port(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	getsockname(fd, (struct sockaddr *)&addr, &len);
	port = ntohs(addr.sin_port);
	close(fd);
	return port;
}

size_t t_http_collect(char *ptr, size_t size, size_t n, void *arg)
{
	struct t_http_buf *b = arg;
	char *grown = realloc(b->data, b->len + size * n + 1);

	if (grown == NULL)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, ptr, size * n);
	b->len += size * n;
	b->data[b->len] = '\0';
	return size * n;
}

int t_http(const char *method, int port, const char *path, const char *body,
           const char *content_type, char **response)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *headers = NULL;
	struct t_http_buf buf = {NULL, 0};
	char url[512], ctype[128];
	long status = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 15000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, t_http_collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
	if (body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		snprintf(ctype, sizeof(ctype), "Content-Type: %s",
		         content_type ? content_type : "application/json");
		headers = curl_slist_append(headers, ctype);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	}
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	if (response != NULL)
		*response = buf.data ? buf.data : strdup("");
	else
		free(buf.data);
	return (int)status;
}

bool t_wait_for(bool (*fn)(void *), void *arg, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (fn(arg))
			return true;
		sleep_ms(20);
	}
	return false;
}

int t_consume_all(const char *topic, int idle_ms, const char *header_name,
                  void (*fn)(void *arg, const char *payload, size_t len,
                             const char *header),
                  void *arg)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *subs;
	char group[64], errstr[256], id[VOX_UUID_STRLEN];
	rd_kafka_message_t *m;
	rd_kafka_t *rk;
	int count = 0, idle = 0;

	vox_uuid7(id);
	snprintf(group, sizeof(group), "t-%s", id);
	rd_kafka_conf_set(conf, "bootstrap.servers", t_env("VOX_KAFKA_BROKERS"),
	                  errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr,
	                  sizeof(errstr));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
	                  sizeof(errstr));
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	cr_assert_not_null(rk, "%s", errstr);
	rd_kafka_poll_set_consumer(rk);
	subs = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_subscribe(rk, subs);
	rd_kafka_topic_partition_list_destroy(subs);
	/* The first assignment takes a moment: count idle time only after a
	 * message arrived, or after 20 s with none. */
	while (idle < (count ? idle_ms : 20000)) {
		m = rd_kafka_consumer_poll(rk, 100);
		if (m == NULL || m->err) {
			idle += 100;
			if (m)
				rd_kafka_message_destroy(m);
			continue;
		}
		idle = 0;
		count++;
		if (fn != NULL) {
			rd_kafka_headers_t *hdrs = NULL;
			const void *val = NULL;
			size_t vlen = 0;
			char *hval = NULL;

			if (header_name &&
			    rd_kafka_message_headers(m, &hdrs) == 0 &&
			    rd_kafka_header_get_last(hdrs, header_name, &val,
			                             &vlen) == 0)
				hval = strndup(val, vlen);
			fn(arg, m->payload, m->len, hval);
			free(hval);
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return count;
}

void t_key(const char *account, const char *role, char key[64], char key_id[40])
{
	char hash[65], prefix[VOX_APIKEY_PREFIX_LEN + 1], id[VOX_UUID_STRLEN];
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	cr_assert_eq(vox_apikey_generate(key, 64, &err), 0);
	vox_apikey_hash_hex(key, hash);
	memcpy(prefix, key, VOX_APIKEY_PREFIX_LEN);
	prefix[VOX_APIKEY_PREFIX_LEN] = '\0';
	vox_uuid7(id);
	const char *params[] = {id, account, prefix, hash, role};
	cr_assert_eq(
	        vox_pg_exec(pg,
	                    "INSERT INTO api_keys (id, account_id, prefix, "
	                    "secret_hash, role) VALUES ($1, $2, $3, "
	                    "decode($4, 'hex'), $5)",
	                    5, params, NULL, &err),
	        0, "%s", err.message);
	if (key_id != NULL)
		snprintf(key_id, 40, "%s", id);
	vox_pg_destroy(pg);
}

void t_account(const char *role, char account[40], char key[64])
{
	vox_pg_t *pg = t_pg();
	vox_error_t err;

	vox_uuid7(account);
	const char *params[] = {account};
	cr_assert_eq(
	        vox_pg_exec(pg,
	                    "INSERT INTO accounts (id, name) VALUES ($1::uuid, "
	                    "'test ' || $1::text)",
	                    1, params, NULL, &err),
	        0, "%s", err.message);
	vox_pg_destroy(pg);
	t_key(account, role, key, NULL);
}

static size_t http_collect_headers(char *ptr, size_t size, size_t n, void *arg)
{
	return t_http_collect(ptr, size, n, arg);
}

int t_http_h(const char *method, int port, const char *path, const char *body,
             const char *const *headers, char **response, char **resp_headers)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *list = NULL;
	struct t_http_buf buf = {NULL, 0}, hbuf = {NULL, 0};
	char url[512];
	long status = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, t_http_collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buf);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, http_collect_headers);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &hbuf);
	if (body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	}
	/* curl adds its own form Content-Type to bodies unless told: an
	 * empty "Content-Type:" header removes it. */
	list = curl_slist_append(list, "Content-Type:");
	list = curl_slist_append(list, "Expect:");
	for (int i = 0; headers && headers[i]; i++)
		list = curl_slist_append(list, headers[i]);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(list);
	curl_easy_cleanup(curl);
	if (response != NULL)
		*response = buf.data ? buf.data : strdup("");
	else
		free(buf.data);
	if (resp_headers != NULL)
		*resp_headers = hbuf.data ? hbuf.data : strdup("");
	else
		free(hbuf.data);
	return (int)status;
}

int t_cdr_push(int port, const char *carrier_key, const char *secret,
               const char *body)
{
	long long t = (long long)time(NULL);
	size_t blen = strlen(body), len;
	char *msg = malloc(blen + 32), sig[65], auth[128], sigh[160];
	unsigned char md[32];
	unsigned int mdlen = 0;

	cr_assert_not_null(msg);
	len = (size_t)snprintf(msg, 32, "%lld.", t);
	memcpy(msg + len, body, blen);
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)msg,
	     len + blen, md, &mdlen);
	vox_hex_encode(md, 32, sig);
	free(msg);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", carrier_key);
	snprintf(sigh, sizeof(sigh), "Vox-Signature: t=%lld,v1=%s", t, sig);
	const char *headers[] = {auth, sigh, "Content-Type: application/json",
	                         NULL};
	return t_http_h("POST", port, "/v1/carrier/cdrs", body, headers, NULL,
	                NULL);
}

/* Commits group's offsets at the end of topic, so a worker of that group
 * reads only what comes after (not every earlier test's commands). */
void t_group_at_end(const char *group, const char *topic)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_topic_t *rkt;
	rd_kafka_t *rk;

	rd_kafka_conf_set(conf, "bootstrap.servers", t_env("VOX_KAFKA_BROKERS"),
	                  errstr, sizeof(errstr));
	rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	cr_assert_not_null(rk, "%s", errstr);
	rkt = rd_kafka_topic_new(rk, topic, NULL);
	cr_assert_eq(rd_kafka_metadata(rk, 0, rkt, &md, 10000),
	             RD_KAFKA_RESP_ERR_NO_ERROR);
	list = rd_kafka_topic_partition_list_new(8);
	for (int p = 0; p < md->topics[0].partition_cnt; p++) {
		int64_t lo = 0, hi = 0;

		cr_assert_eq(rd_kafka_query_watermark_offsets(rk, topic, p, &lo,
		                                              &hi, 10000),
		             RD_KAFKA_RESP_ERR_NO_ERROR);
		rd_kafka_topic_partition_list_add(list, topic, p)->offset = hi;
	}
	cr_assert_eq(rd_kafka_commit(rk, list, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(list);
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
}

pid_t t_sandbox_spawn(int port, const char *logfile, const char *const *env)
{
	char server[1024], portstr[16];
	pid_t pid;

	snprintf(server, sizeof(server), "%s/ops/carrier-sandbox/server.py",
	         t_env("VOX_ROOT"));
	snprintf(portstr, sizeof(portstr), "%d", port);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		FILE *log = freopen(logfile, "a", stderr);

		(void)log;
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* as t_spawn */
		unsetenv("VOX_CARRIER_FAULTS");
		unsetenv("VOX_CARRIER_TRAFFIC");
		unsetenv("VOX_CARRIER_PORT_WEBHOOK_URL");
		for (int i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execl("/usr/bin/python3", "python3", server, "--host",
		      "127.0.0.1", "--port", portstr, (char *)NULL);
		_exit(127);
	}
	return pid;
}

int t_payment(const char *method, const char *path, const char *body,
              const char *key, json_t **out)
{
	char auth[80];
	const char *headers[] = {"Content-Type: application/json", auth, NULL};
	char *resp = NULL;
	int status;

	snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
	         key ? key : "");
	if (key == NULL)
		headers[1] = NULL;
	status = t_http_h(method, t_payment_port(), path, body, headers, &resp,
	                  NULL);
	if (out != NULL)
		*out = resp ? vox_json_parse(resp, strlen(resp), 32, NULL)
		            : NULL;
	free(resp);
	return status;
}

int t_payment_port(void)
{
	return (int)strtol(t_env("VOX_PAYMENT_PORT"), NULL, 10);
}

void t_payment_card(const char *number, int exp_year, char pm[128])
{
	char body[256];
	json_t *doc;

	snprintf(body, sizeof(body),
	         "{\"type\":\"card\",\"card\":{\"number\":\"%s\","
	         "\"exp_month\":12,\"exp_year\":%d,\"cvc\":\"123\"}}",
	         number, exp_year);
	cr_assert_eq(t_payment("POST", "/v1/payment_methods", body,
	                       "pk_sandbox", &doc),
	             200, "payment sandbox: no card %s", number);
	snprintf(pm, 128, "%s", vox_json_str(doc, "id"));
	json_decref(doc);
	cr_assert_eq(strncmp(pm, "pm_", 3), 0);
}

static size_t s3_on_body(char *data, size_t size, size_t n, void *arg)
{
	return vox_buf_add(arg, data, size * n) == 0 ? size * n : 0;
}

char **t_s3_list(const char *prefix)
{
	char url[1024], userpwd[600], sigv4[96];
	struct curl_slist *headers = NULL;
	CURL *curl = curl_easy_init();
	char *escaped = curl_easy_escape(curl, prefix, 0);
	char **keys = calloc(1001, sizeof(char *));
	vox_buf_t body;
	long status = 0;
	size_t n = 0;

	vox_buf_init(&body, 8u << 20);
	snprintf(url, sizeof(url), "%s/%s?list-type=2&prefix=%s",
	         t_env("VOX_S3_ENDPOINT"), t_env("VOX_S3_BUCKET"), escaped);
	snprintf(userpwd, sizeof(userpwd), "%s:%s", t_env("VOX_S3_ACCESS_KEY"),
	         t_env("VOX_S3_SECRET_KEY"));
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", t_env("VOX_S3_REGION"));
	headers = curl_slist_append(
	        headers, "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb9"
	                 "2427ae41e4649b934ca495991b7852b855");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(curl, CURLOPT_USERPWD, userpwd);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s3_on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
	cr_assert_eq(curl_easy_perform(curl), CURLE_OK);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	cr_assert_eq(status, 200, "list %s: %ld %.300s", prefix, status,
	             vox_buf_str(&body));
	cr_assert_null(strstr(vox_buf_str(&body), "<IsTruncated>true"),
	               "more than 1000 objects under %s", prefix);
	for (const char *p = vox_buf_str(&body);
	     (p = strstr(p, "<Key>")) != NULL && n < 1000;) {
		const char *end = strstr(p + 5, "</Key>");

		cr_assert_not_null(end);
		keys[n++] = strndup(p + 5, (size_t)(end - p - 5));
		p = end;
	}
	curl_free(escaped);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	vox_buf_free(&body);
	return keys;
}

void t_s3_keys_free(char **keys)
{
	for (size_t i = 0; keys[i] != NULL; i++)
		free(keys[i]);
	free(keys);
}
