/* vox_ops: operation state and history in PostgreSQL. */
#include "vox_ops.h"

#include <stdlib.h>
#include <string.h>

#include "vox_json.h"
#include "vox_uuid.h"

/* vox_iso() (migration 0008) formats RFC 3339 UTC with microseconds. */
static const char op_get_sql[] =
        "SELECT id, account_id, kind, status, subject, result, error_code, "
        "error_message, request_id, vox_iso(created_at), vox_iso(updated_at), "
        "vox_iso(completed_at) FROM operations WHERE id = $1 "
        "AND ($2::uuid IS NULL OR account_id = $2::uuid)";

/* The "accepted" step is the operation's created_at when no row of
 * operation_events says it (the ingress writes none: one row less per
 * command; vox_op_accept still does). */
static const char op_history_sql[] =
        "SELECT status, vox_iso(at), detail FROM (SELECT 'accepted' AS "
        "status, created_at AS at, NULL::jsonb AS detail, 0::bigint AS id "
        "FROM operations o WHERE o.id = $1 AND NOT EXISTS (SELECT 1 FROM "
        "operation_events e WHERE e.operation_id = $1 AND e.status = "
        "'accepted') UNION ALL SELECT status, at, detail, id FROM "
        "operation_events WHERE operation_id = $1) h ORDER BY at, id";

int vox_op_accept(vox_pg_t *pg, const vox_op_t *op, vox_error_t *err)
{
	const char *params[] = {op->id,      op->account_id,   op->kind,
	                        op->subject, op->request_json, op->request_id,
	                        op->at};

	return vox_pg_execp(
	        pg, "vox_op_accept",
	        "WITH op AS (INSERT INTO operations (id, account_id, kind, "
	        "status, subject, request, request_id, created_at, updated_at) "
	        "VALUES ($1, $2, $3, 'accepted', $4, $5::jsonb, $6, $7, $7) "
	        "ON CONFLICT (id) DO NOTHING RETURNING id) "
	        "INSERT INTO operation_events (operation_id, status, at) "
	        "SELECT $1, 'accepted', $7 WHERE NOT EXISTS (SELECT 1 FROM "
	        "operation_events WHERE operation_id = $1 AND status = "
	        "'accepted')",
	        7, params, NULL, err);
}

int vox_op_finish(vox_pg_t *pg, const vox_op_t *op, const char *status,
                  const char *result_json, const char *error_code,
                  const char *error_message, vox_error_t *err)
{
	const char *params[] = {op->id,        op->account_id, op->kind,
	                        status,        result_json,    error_code,
	                        error_message, op->at,         op->subject,
	                        op->request_id};

	return vox_pg_execp(
	        pg, "vox_op_finish",
	        "WITH op AS (INSERT INTO operations AS o (id, account_id, "
	        "kind, status, result, error_code, error_message, created_at, "
	        "updated_at, completed_at, subject, request_id) VALUES ($1, "
	        "$2, "
	        "$3, $4, $5::jsonb, $6, $7, coalesce($8::timestamptz, now()), "
	        "now(), CASE WHEN $4 IN ('completed', 'failed') THEN now() "
	        "END, "
	        "$9, $10) "
	        "ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, "
	        "result = EXCLUDED.result, error_code = EXCLUDED.error_code, "
	        "error_message = EXCLUDED.error_message, updated_at = now(), "
	        "completed_at = EXCLUDED.completed_at RETURNING id) "
	        "INSERT INTO operation_events (operation_id, status, detail) "
	        "SELECT id, $4, CASE WHEN $6::text IS NULL THEN NULL ELSE "
	        "jsonb_build_object('code', $6::text, 'message', $7::text) END "
	        "FROM op",
	        10, params, NULL, err);
}

static json_t *text_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	               ? json_null()
	               : json_string(PQgetvalue(res, row, col));
}

static json_t *jsonb_or_null(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return json_null();
	return json_loads(PQgetvalue(res, row, col), 0, NULL);
}

static json_t *op_history(const PGresult *res)
{
	json_t *history = json_array();

	for (int i = 0; i < PQntuples(res); i++) {
		json_t *step = json_object();

		json_object_set_new(step, "status", text_or_null(res, i, 0));
		json_object_set_new(step, "at", text_or_null(res, i, 1));
		if (!PQgetisnull(res, i, 2))
			json_object_set_new(step, "detail",
			                    jsonb_or_null(res, i, 2));
		json_array_append_new(history, step);
	}
	return history;
}

int vox_op_get(vox_pg_t *pg, const char *id, const char *account_id,
               json_t **out, vox_error_t *err)
{
	const char *params[] = {id, account_id};
	PGresult *res = NULL, *hist = NULL;
	json_t *op;
	int rc;

	*out = NULL;
	rc = vox_pg_execp(pg, "vox_op_get", op_get_sql, 2, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) {
		rc = vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                   "operation %s not found", id);
		goto out;
	}
	rc = vox_pg_execp(pg, "vox_op_history", op_history_sql, 1, params,
	                  &hist, err);
	if (rc != 0)
		goto out;
	op = json_object();
	json_object_set_new(op, "id", text_or_null(res, 0, 0));
	json_object_set_new(op, "account_id", text_or_null(res, 0, 1));
	json_object_set_new(op, "kind", text_or_null(res, 0, 2));
	json_object_set_new(op, "status", text_or_null(res, 0, 3));
	json_object_set_new(op, "subject", text_or_null(res, 0, 4));
	json_object_set_new(op, "result", jsonb_or_null(res, 0, 5));
	if (!PQgetisnull(res, 0, 6)) {
		json_t *e = json_object();

		json_object_set_new(e, "code", text_or_null(res, 0, 6));
		json_object_set_new(e, "message", text_or_null(res, 0, 7));
		json_object_set_new(op, "error", e);
	} else {
		json_object_set_new(op, "error", json_null());
	}
	json_object_set_new(op, "request_id", text_or_null(res, 0, 8));
	json_object_set_new(op, "created_at", text_or_null(res, 0, 9));
	json_object_set_new(op, "updated_at", text_or_null(res, 0, 10));
	json_object_set_new(op, "completed_at", text_or_null(res, 0, 11));
	json_object_set_new(op, "history", op_history(hist));
	*out = op;
out:
	PQclear(res);
	PQclear(hist);
	return rc;
}

int vox_op_dead_lettered(vox_pg_t *pg, const void *payload, size_t len,
                         const char *reason, vox_error_t *err)
{
	json_t *ev = json_loadb(payload, len, 0, NULL);
	const char *op_id, *account, *type;
	const char *params[4];
	int rc = 0;

	if (ev == NULL)
		return 0; /* not JSON: names no operation */
	op_id = vox_json_str(json_object_get(ev, "data"), "operation_id");
	account = vox_json_str(ev, "accountid");
	type = vox_json_str(ev, "type");
	if (op_id != NULL && vox_uuid_valid(op_id)) {
		params[0] = op_id;
		params[1] = account != NULL && vox_uuid_valid(account) ? account
		                                                       : NULL;
		params[2] = type != NULL ? type : "unknown";
		params[3] = reason;
		rc = vox_pg_execp(
		        pg, "vox_op_dead_lettered",
		        "WITH op AS (INSERT INTO operations AS o (id, "
		        "account_id, kind, status, error_code, error_message, "
		        "completed_at) VALUES ($1::uuid, $2::uuid, $3, "
		        "'failed', 'dead_lettered', $4, now()) ON CONFLICT "
		        "(id) "
		        "DO UPDATE SET status = 'failed', error_code = "
		        "'dead_lettered', error_message = $4, completed_at = "
		        "now(), updated_at = now() WHERE o.status IN "
		        "('accepted', 'running') RETURNING id) INSERT INTO "
		        "operation_events (operation_id, status, detail) "
		        "SELECT "
		        "id, 'failed', jsonb_build_object('code', "
		        "'dead_lettered', 'message', $4::text) FROM op",
		        4, params, NULL, err);
	}
	json_decref(ev);
	return rc;
}
