/* vox_pg: self-healing PostgreSQL connection, pool, inbox and outbox. */
#include "vox_pg.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vox_log.h"
#include "vox_time.h"

struct vox_pg {
	char *conninfo;
	PGconn *conn;
	char **prepared; /* statement names prepared on conn */
	size_t nprepared, capprepared;
	unsigned connects;
};

vox_pg_t *vox_pg_new(const char *conninfo)
{
	vox_pg_t *pg = calloc(1, sizeof(*pg));

	if (pg == NULL)
		return NULL;
	pg->conninfo = strdup(conninfo);
	if (pg->conninfo == NULL) {
		free(pg);
		return NULL;
	}
	return pg;
}

static void pg_forget_prepared(vox_pg_t *pg)
{
	for (size_t i = 0; i < pg->nprepared; i++)
		free(pg->prepared[i]);
	pg->nprepared = 0;
}

static void pg_disconnect(vox_pg_t *pg)
{
	if (pg->conn != NULL)
		PQfinish(pg->conn);
	pg->conn = NULL;
	pg_forget_prepared(pg);
}

void vox_pg_destroy(vox_pg_t *pg)
{
	if (pg == NULL)
		return;
	pg_disconnect(pg);
	free(pg->prepared);
	free(pg->conninfo);
	free(pg);
}

unsigned vox_pg_connects(const vox_pg_t *pg)
{
	return pg->connects;
}

/* Server notices ("relation already exists, skipping") are not errors:
 * keep them out of stderr unless debugging. */
static void pg_notice(void *arg, const char *message)
{
	(void)arg;
	vox_log(VOX_LOG_DEBUG, "postgres notice", "notice", message, NULL);
}

static int pg_try_connect(vox_pg_t *pg, vox_error_t *err)
{
	static const char *const keys[] = {
	        "dbname",           "connect_timeout",
	        "keepalives_idle",  "keepalives_interval",
	        "keepalives_count", NULL};
	const char *vals[] = {pg->conninfo, "5", "10", "5", "3", NULL};

	pg_disconnect(pg);
	pg->conn = PQconnectdbParams(keys, vals, 1);
	if (pg->conn == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true,
		                     "postgres: out of memory");
	if (PQstatus(pg->conn) != CONNECTION_OK) {
		int rc =
		        vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                      "postgres: %s", PQerrorMessage(pg->conn));
		pg_disconnect(pg);
		return rc;
	}
	PQsetNoticeProcessor(pg->conn, pg_notice, NULL);
	pg->connects++;
	return 0;
}

static bool pg_healthy(const vox_pg_t *pg)
{
	return pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK;
}

int vox_pg_connect(vox_pg_t *pg, int wait_ms, vox_error_t *err)
{
	int64_t deadline = vox_mono_ms() + wait_ms;
	long delay;
	int rc, attempt = 0;

	if (pg_healthy(pg))
		return 0;
	for (;;) {
		rc = pg_try_connect(pg, err);
		if (rc == 0)
			return 0;
		delay = vox_backoff_ms(50, 2000, ++attempt, 0);
		if (vox_mono_ms() + delay > deadline)
			return rc;
		vox_sleep_ms(delay);
	}
}

PGconn *vox_pg_conn(vox_pg_t *pg)
{
	return pg_healthy(pg) ? pg->conn : NULL;
}

/* Turns a failed result into an error code; drops the connection when it is
 * the connection that failed, so the next call reconnects. */
int vox_pg_error(vox_pg_t *pg, const PGresult *res, vox_error_t *err)
{
	const char *state =
	        res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : "";
	char text[200];
	size_t len;

	if (msg == NULL || *msg == '\0')
		msg = PQerrorMessage(pg->conn);
	snprintf(text, sizeof(text), "%s", msg);
	len = strlen(text);
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
		text[--len] = '\0';
	if (PQstatus(pg->conn) != CONNECTION_OK || state == NULL ||
	    strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
		pg_disconnect(pg);
		return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                     "postgres connection lost: %s", text);
	}
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return vox_error_set(err, VOX_ERR_CONFLICT, true,
		                     "postgres %s: %s", state, text);
	if (strcmp(state, "23505") == 0)
		return vox_error_set(err, VOX_ERR_CONFLICT, false,
		                     "postgres %s: %s", state, text);
	if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "postgres %s: %s", state, text);
	return vox_error_set(err, VOX_ERR_INTERNAL, false, "postgres %s: %s",
	                     state, text);
}

static int pg_result(vox_pg_t *pg, PGresult *r, PGresult **res,
                     vox_error_t *err)
{
	ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	int rc;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (res != NULL)
			*res = r;
		else
			PQclear(r);
		return 0;
	}
	rc = vox_pg_error(pg, r, err);
	PQclear(r);
	return rc;
}

static int pg_ready(vox_pg_t *pg, vox_error_t *err)
{
	if (pg_healthy(pg))
		return 0;
	return vox_pg_connect(pg, 0, err);
}

int vox_pg_exec(vox_pg_t *pg, const char *sql, int nparams,
                const char *const *params, PGresult **res, vox_error_t *err)
{
	int rc = pg_ready(pg, err);

	if (rc != 0)
		return rc;
	return pg_result(pg,
	                 PQexecParams(pg->conn, sql, nparams, NULL, params,
	                              NULL, NULL, 0),
	                 res, err);
}

static bool pg_is_prepared(const vox_pg_t *pg, const char *name)
{
	for (size_t i = 0; i < pg->nprepared; i++)
		if (strcmp(pg->prepared[i], name) == 0)
			return true;
	return false;
}

static int pg_prepare(vox_pg_t *pg, const char *name, const char *sql,
                      int nparams, vox_error_t *err)
{
	char *copy;
	int rc;

	if (pg->nprepared == pg->capprepared) {
		size_t cap = pg->capprepared ? pg->capprepared * 2 : 16;
		char **grown = realloc(pg->prepared, cap * sizeof(*grown));

		if (grown == NULL)
			return vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
		pg->prepared = grown;
		pg->capprepared = cap;
	}
	copy = strdup(name);
	if (copy == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
	rc = pg_result(pg, PQprepare(pg->conn, name, sql, nparams, NULL), NULL,
	               err);
	if (rc != 0) {
		free(copy);
		return rc;
	}
	pg->prepared[pg->nprepared++] = copy;
	return 0;
}

int vox_pg_execp(vox_pg_t *pg, const char *name, const char *sql, int nparams,
                 const char *const *params, PGresult **res, vox_error_t *err)
{
	int rc = pg_ready(pg, err);

	if (rc == 0 && !pg_is_prepared(pg, name))
		rc = pg_prepare(pg, name, sql, nparams, err);
	if (rc != 0)
		return rc;
	return pg_result(
	        pg,
	        PQexecPrepared(pg->conn, name, nparams, params, NULL, NULL, 0),
	        res, err);
}

int vox_pg_exec_script(vox_pg_t *pg, const char *sql, vox_error_t *err)
{
	int rc = pg_ready(pg, err);

	if (rc != 0)
		return rc;
	return pg_result(pg, PQexec(pg->conn, sql), NULL, err);
}

int vox_pg_transaction(vox_pg_t *pg, vox_pg_tx_fn fn, void *arg,
                       vox_error_t *err)
{
	int rc = vox_pg_exec(pg, "BEGIN", 0, NULL, NULL, err);

	if (rc != 0)
		return rc;
	rc = fn(pg, arg, err);
	if (rc != 0)
		goto out_rollback;
	return vox_pg_exec(pg, "COMMIT", 0, NULL, NULL, err);

out_rollback:
	/* A broken connection has nothing to roll back: the server already
	 * aborted the transaction when the session ended. */
	if (pg_healthy(pg))
		PQclear(PQexec(pg->conn, "ROLLBACK"));
	return rc;
}

int vox_inbox_claim(vox_pg_t *pg, const char *consumer, const char *message_id,
                    const char *topic, int partition, long long offset,
                    vox_error_t *err)
{
	char part[16], off[24];
	const char *params[] = {consumer, message_id, topic, part, off};
	PGresult *res;
	int rc, inserted;

	snprintf(part, sizeof(part), "%d", partition);
	snprintf(off, sizeof(off), "%lld", offset);
	rc = vox_pg_execp(pg, "vox_inbox_claim",
	                  "INSERT INTO inbox (consumer, message_id, topic, "
	                  "kafka_partition, kafka_offset) VALUES "
	                  "($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
	                  5, params, &res, err);
	if (rc != 0)
		return rc;
	inserted = (int)strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return inserted == 1 ? 0 : VOX_ERR_DUPLICATE;
}

int vox_outbox_add(vox_pg_t *pg, const char *topic, const char *key,
                   const char *payload, const char *headers_json,
                   vox_error_t *err)
{
	const char *params[] = {topic, key, payload, headers_json};
	int rc;

	rc = vox_pg_execp(pg, "vox_outbox_add",
	                  "INSERT INTO outbox (topic, message_key, payload, "
	                  "headers) VALUES ($1, $2, $3, $4::jsonb)",
	                  4, params, NULL, err);
	if (rc != 0)
		return rc;
	/* Wakes the relay at commit; PostgreSQL folds repeats in one
	 * transaction into one notification. */
	return vox_pg_execp(pg, "vox_outbox_notify", "NOTIFY vox_outbox", 0,
	                    NULL, NULL, err);
}

struct vox_pg_pool {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	vox_pg_t **all;
	vox_pg_t **idle;
	int size, nidle;
};

vox_pg_pool_t *vox_pg_pool_new(const char *conninfo, int size)
{
	vox_pg_pool_t *pool = calloc(1, sizeof(*pool));

	if (pool == NULL)
		return NULL;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->freed, NULL);
	pool->all = calloc((size_t)size, sizeof(*pool->all));
	pool->idle = calloc((size_t)size, sizeof(*pool->idle));
	if (pool->all == NULL || pool->idle == NULL)
		goto out_free;
	for (int i = 0; i < size; i++) {
		pool->all[i] = vox_pg_new(conninfo);
		if (pool->all[i] == NULL)
			goto out_free;
		pool->idle[pool->nidle++] = pool->all[i];
		pool->size++;
	}
	return pool;

out_free:
	vox_pg_pool_destroy(pool);
	return NULL;
}

void vox_pg_pool_destroy(vox_pg_pool_t *pool)
{
	if (pool == NULL)
		return;
	for (int i = 0; i < pool->size; i++)
		vox_pg_destroy(pool->all[i]);
	free(pool->all);
	free(pool->idle);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->freed);
	free(pool);
}

vox_pg_t *vox_pg_pool_acquire(vox_pg_pool_t *pool, int wait_ms,
                              vox_error_t *err)
{
	struct timespec deadline;
	vox_pg_t *pg = NULL;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += wait_ms / 1000;
	deadline.tv_nsec += (wait_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&pool->lock);
	while (pool->nidle == 0) {
		if (wait_ms < 0)
			pthread_cond_wait(&pool->freed, &pool->lock);
		else if (pthread_cond_timedwait(&pool->freed, &pool->lock,
		                                &deadline) == ETIMEDOUT)
			break;
	}
	if (pool->nidle > 0)
		pg = pool->idle[--pool->nidle];
	pthread_mutex_unlock(&pool->lock);
	if (pg == NULL)
		vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		              "postgres: no free connection in %d ms", wait_ms);
	return pg;
}

void vox_pg_pool_release(vox_pg_pool_t *pool, vox_pg_t *pg)
{
	pthread_mutex_lock(&pool->lock);
	pool->idle[pool->nidle++] = pg;
	pthread_cond_signal(&pool->freed);
	pthread_mutex_unlock(&pool->lock);
}
