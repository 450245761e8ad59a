/*
 * vox_ops: the life of an operation (an accepted asynchronous command):
 * accepted -> running -> completed | failed, with a history row per step.
 *
 * The ingress records "accepted" after Kafka acknowledged the command; the
 * worker may get there first, so every write is an upsert and both orders
 * end in the same rows.
 */
#ifndef VOX_OPS_H
#define VOX_OPS_H

#include <jansson.h>

#include "vox_error.h"
#include "vox_pg.h"

typedef struct vox_op {
	const char *id;
	const char *account_id; /* NULL until accounts exist for the kind */
	const char *kind;       /* "canary", "number.purchase", ... */
	const char *subject;    /* resource the operation acts on, or NULL */
	const char *request_id;
	const char *request_json; /* the command's data, or NULL */
	const char *at;           /* RFC 3339 time it was accepted */
} vox_op_t;

/* Idempotent: a second call for the same id changes nothing. */
int vox_op_accept(vox_pg_t *pg, const vox_op_t *op, vox_error_t *err);

/* Moves the operation to status ("running", "completed", "failed") and
 * appends history; creates it if the accepted row is not there yet.
 * result_json / error_code / error_message may be NULL. */
int vox_op_finish(vox_pg_t *pg, const vox_op_t *op, const char *status,
                  const char *result_json, const char *error_code,
                  const char *error_message, vox_error_t *err);

/* The operation as the API shows it, with "history". account_id NULL: no
 * tenant filter. VOX_ERR_NOT_FOUND when absent (or another account's). */
int vox_op_get(vox_pg_t *pg, const char *id, const char *account_id,
               json_t **out, vox_error_t *err);

/* A command about to be dead-lettered (payload: its raw envelope): when
 * its data names an operation (data.operation_id) that is not finished,
 * the operation fails with code "dead_lettered" and the reason, so the
 * client sees why instead of an operation that runs forever. If the
 * ingress has not recorded it yet, it is made failed (kind: the command's
 * type) and the ingress's later accept leaves it so. Best effort, outside
 * any transaction: returns 0, or the error (logged by the caller). */
int vox_op_dead_lettered(vox_pg_t *pg, const void *payload, size_t len,
                         const char *reason, vox_error_t *err);

#endif
