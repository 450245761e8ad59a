/*
 * Integration test helpers: the real PostgreSQL, Redis and Kafka of
 * `ops/stack` (located through the VOX_* variables `tests/run` exports),
 * our own binaries started as child processes, and a small HTTP client.
 */
#ifndef TEST_HELPERS_H
#define TEST_HELPERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "vox_pg.h"

/* The variable, or a Criterion failure naming it. */
const char *t_env(const char *name);

/* A connected vox_pg_t on the test database (fails the test otherwise). */
vox_pg_t *t_pg(void);

/* First column of the first row of sql as a long long (-1 on error). */
long long t_pg_count(vox_pg_t *pg, const char *sql, const char *param);

/* Creates topic (and topic.dlq) with partitions; fails the test on error.
 * Names get a unique suffix: out receives the full name. */
void t_topic_create(const char *prefix, int partitions, char *out,
                    size_t outlen);

/* Starts $VOX_BIN_DIR/<binary> with extra "NAME=value" settings (NULL
 * terminated) on top of the environment; stdout/stderr appended to
 * logfile. Returns the pid. */
pid_t t_spawn(const char *binary, const char *logfile, const char *const *env);

/* Sends sig and waits up to timeout_ms; returns the exit status as
 * waitpid gives it, or -1 after killing it with SIGKILL. */
int t_stop(pid_t pid, int sig, int timeout_ms);

/* A free TCP port on 127.0.0.1. */
int t_free_port(void);

/* HTTP to 127.0.0.1:port; returns the status (0: no connection). The
 * body, when asked for, is a malloc'd NUL-terminated string. */
int t_http(const char *method, int port, const char *path, const char *body,
           const char *content_type, char **response);

/* A new account with one key of role (SQL, as voxctl would): account
 * and key receive the id and the secret. */
void t_account(const char *role, char account[40], char key[64]);
/* POST /v1/carrier/cdrs with body, signed as a carrier does (Vox-Signature
 * t=<now>,v1=HMAC-SHA256(secret, "<t>.<body>")) under carrier_key;
 * returns the HTTP status. */
int t_cdr_push(int port, const char *carrier_key, const char *secret,
               const char *body);
/* Another key of role for account. key_id may be NULL. */
void t_key(const char *account, const char *role, char key[64],
           char key_id[40]);

/* HTTP with request headers (NULL-terminated "Name: value" list); the
 * response headers, when asked for, are returned like the body. */
int t_http_h(const char *method, int port, const char *path, const char *body,
             const char *const *headers, char **response, char **resp_headers);

/* Polls fn(arg) every 20 ms until it returns true or timeout_ms passed. */
bool t_wait_for(bool (*fn)(void *), void *arg, int timeout_ms);

/* Reads every message of topic from the beginning until none comes for
 * idle_ms; calls fn for each (header value of header_name, or NULL).
 * Returns the count. */
int t_consume_all(const char *topic, int idle_ms, const char *header_name,
                  void (*fn)(void *arg, const char *payload, size_t len,
                             const char *header),
                  void *arg);

/* Commits group's offsets at the end of topic, so a worker of that group
 * reads only what comes after (not every earlier test's commands). */
void t_group_at_end(const char *group, const char *topic);

/* A growing NUL-terminated buffer for libcurl's CURLOPT_WRITEFUNCTION
 * (t_http_collect, CURLOPT_WRITEDATA a struct t_http_buf; free data). */
struct t_http_buf {
	char *data;
	size_t len;
};
size_t t_http_collect(char *ptr, size_t size, size_t n, void *arg);

/* A carrier sandbox of the test's own on 127.0.0.1:port (stderr to
 * logfile in the cwd), without the stack's faults, traffic and porting
 * webhook target, with env ("NAME=value", NULL terminated) added. */
pid_t t_sandbox_spawn(int port, const char *logfile, const char *const *env);

/* The payment gateway sandbox of the stack (VOX_PAYMENT_PORT): JSON to
 * path with "Authorization: Bearer key" (NULL: none); the status, and the
 * parsed answer in *out (NULL when out is NULL or the body is not JSON). */
int t_payment(const char *method, const char *path, const char *body,
              const char *key, json_t **out);
int t_payment_port(void);
/* A card payment method made at the sandbox as a browser would (the
 * publishable key), expiring 12/exp_year: its pm_ token in pm. */
void t_payment_card(const char *number, int exp_year, char pm[128]);

/* The keys under prefix in the test stack's S3 bucket (ListObjectsV2,
 * signed as vox_s3 signs), at most 1000 (fails the test beyond): a
 * NULL-terminated array for t_s3_keys_free. */
char **t_s3_list(const char *prefix);
void t_s3_keys_free(char **keys);

#endif
