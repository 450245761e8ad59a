/*
 * vox_pg: PostgreSQL access for every binary.
 *
 * A vox_pg_t is one connection that reconnects by itself: a call that finds
 * the connection broken (server restarted, network cut) reconnects with
 * backoff before it runs, and a statement that fails because the
 * connection died reports VOX_ERR_UNAVAILABLE (retriable). Prepared
 * statements are prepared on first use on each physical connection.
 * Not thread-safe: one vox_pg_t per thread, or take one from a vox_pg_pool_t.
 */
#ifndef VOX_PG_H
#define VOX_PG_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "vox_error.h"

typedef struct vox_pg vox_pg_t;
typedef struct vox_pg_pool vox_pg_pool_t;

/* Does not connect yet. conninfo is copied. */
vox_pg_t *vox_pg_new(const char *conninfo);
void vox_pg_destroy(vox_pg_t *pg);

/* Connects (or checks the connection), retrying with exponential backoff
 * for up to wait_ms (0: one try). */
int vox_pg_connect(vox_pg_t *pg, int wait_ms, vox_error_t *err);

/* Times the physical connection was (re)established. */
unsigned vox_pg_connects(const vox_pg_t *pg);

/* Runs sql with text parameters (NULL entries are SQL NULL). On success
 * *res (if not NULL) owns the result: PQclear() it. Commands that return
 * no rows may pass res = NULL. Errors are classified: connection loss and
 * serialization failures/deadlocks are retriable; unique violations are
 * VOX_ERR_CONFLICT; data exceptions VOX_ERR_INVALID. */
int vox_pg_exec(vox_pg_t *pg, const char *sql, int nparams,
                const char *const *params, PGresult **res, vox_error_t *err);

/* Like vox_pg_exec() through a named prepared statement; name must be
 * unique per sql text for the process. */
int vox_pg_execp(vox_pg_t *pg, const char *name, const char *sql, int nparams,
                 const char *const *params, PGresult **res, vox_error_t *err);

/* The error of a failed result (res may be NULL), classified: connection
 * lost (VOX_ERR_UNAVAILABLE, retriable; the connection is dropped so the
 * next call reconnects), serialization failure or deadlock (retriable
 * conflict), unique violation, bad data, other. For callers that run libpq
 * themselves (binary parameters, pipelines). */
int vox_pg_error(vox_pg_t *pg, const PGresult *res, vox_error_t *err);

/* Runs a script of several statements (migrations); no parameters. */
int vox_pg_exec_script(vox_pg_t *pg, const char *sql, vox_error_t *err);

/* fn runs between BEGIN and COMMIT; any error rolls back. Connection loss
 * during the transaction is reported as retriable: the caller decides to
 * run it again (nothing was committed unless COMMIT answered). */
typedef int (*vox_pg_tx_fn)(vox_pg_t *pg, void *arg, vox_error_t *err);
int vox_pg_transaction(vox_pg_t *pg, vox_pg_tx_fn fn, void *arg,
                       vox_error_t *err);

/* The raw connection (NULL when not connected), for LISTEN and the like. */
PGconn *vox_pg_conn(vox_pg_t *pg);

/* A fixed set of connections shared by threads. acquire blocks until one is
 * free, up to wait_ms (-1: forever); NULL with VOX_ERR_UNAVAILABLE after. */
vox_pg_pool_t *vox_pg_pool_new(const char *conninfo, int size);
void vox_pg_pool_destroy(vox_pg_pool_t *pool);
vox_pg_t *vox_pg_pool_acquire(vox_pg_pool_t *pool, int wait_ms,
                              vox_error_t *err);
void vox_pg_pool_release(vox_pg_pool_t *pool, vox_pg_t *pg);

/* Inbox (DESIGN.md): inside a transaction, records that consumer processed
 * message_id. Returns 0 the first time, VOX_ERR_DUPLICATE when it already
 * had (the caller skips the effect). */
int vox_inbox_claim(vox_pg_t *pg, const char *consumer, const char *message_id,
                    const char *topic, int partition, long long offset,
                    vox_error_t *err);

/* Outbox (DESIGN.md): inside a transaction, queues payload for topic; the
 * relay publishes it after commit. headers_json may be NULL (a JSON object
 * of string values). */
int vox_outbox_add(vox_pg_t *pg, const char *topic, const char *key,
                   const char *payload, const char *headers_json,
                   vox_error_t *err);

#endif
