/*
 * Reads and synchronous writes served from PostgreSQL: operations, API
 * keys, the account. Every query is scoped by the caller's account: another
 * account's id answers 404 exactly like an unknown one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_ops.h"

static void not_found(vox_http_req_t *req, const char *code, const char *what)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "no %s has this id", what);
	vox_http_reply_error(req, 404, code, msg, NULL);
}

/* limit (1..100, default 20) and cursor (an id) from the query string;
 * false after answering 400. */
static bool page_args(vox_http_req_t *req, char *limit, size_t limitlen,
                      const char **cursor)
{
	const char *l = vox_http_query(req, "limit");
	char *end;
	long n = 20;

	if (l != NULL) {
		n = strtol(l, &end, 10);
		if (*l == '\0' || *end != '\0' || n < 1 || n > 100) {
			vox_http_reply_error(
			        req, 400, "invalid_parameter",
			        "limit must be an integer 1..100",
			        json_pack("{s:s}", "parameter", "limit"));
			return false;
		}
	}
	*cursor = vox_http_query(req, "cursor");
	if (*cursor != NULL && !vox_uuid_valid(*cursor)) {
		vox_http_reply_error(req, 400, "invalid_parameter",
		                     "cursor must be a next_cursor value from "
		                     "a previous page",
		                     json_pack("{s:s}", "parameter", "cursor"));
		return false;
	}
	snprintf(limit, limitlen, "%ld",
	         n + 1); /* one more: is there a next? */
	return true;
}

static json_t *text_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	               ? json_null()
	               : json_string(PQgetvalue(res, row, col));
}

/* {data:[...], next_cursor} from rows of which the first column is the id;
 * row_fn makes each item. */
static json_t *page(const PGresult *res, long limit,
                    json_t *(*row_fn)(const PGresult *res, int row))
{
	json_t *data = json_array();
	int n = PQntuples(res);
	int shown = n > limit ? (int)limit : n;

	for (int i = 0; i < shown; i++)
		json_array_append_new(data, row_fn(res, i));
	return json_pack("{s:o, s:o}", "data", data, "next_cursor",
	                 n > limit ? json_string(PQgetvalue(res, shown - 1, 0))
	                           : json_null());
}

static json_t *op_row(const PGresult *res, int i)
{
	return json_pack(
	        "{s:o, s:o, s:o, s:o, s:o, s:o}", "id", text_or_null(res, i, 0),
	        "kind", text_or_null(res, i, 1), "status",
	        text_or_null(res, i, 2), "subject", text_or_null(res, i, 3),
	        "created_at", text_or_null(res, i, 4), "completed_at",
	        text_or_null(res, i, 5));
}

void ingress_operation_list(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	char limit[16];
	const char *cursor;
	PGresult *res;
	vox_error_t err;
	vox_pg_t *pg;
	int rc;

	if (ir == NULL || !page_args(req, limit, sizeof(limit), &cursor))
		return;
	const char *params[] = {ir->who.account_id, cursor, limit};
	pg = ingress_pg(ir->in, req);
	if (pg == NULL)
		return;
	rc = vox_pg_execp(pg, "ingress_ops_list",
	                  "SELECT id, kind, status, subject, "
	                  "vox_iso(created_at), vox_iso(completed_at) FROM "
	                  "operations WHERE account_id = $1 AND ($2::uuid IS "
	                  "NULL OR id < $2::uuid) ORDER BY id DESC LIMIT "
	                  "$3::int",
	                  3, params, &res, &err);
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (rc != 0) {
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
		return;
	}
	vox_http_reply_json(req, 200,
	                    page(res, strtol(limit, NULL, 10) - 1, op_row));
	PQclear(res);
}

void ingress_operation_get(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	vox_error_t err;
	json_t *op;
	vox_pg_t *pg;
	int rc;

	if (ir == NULL)
		return;
	if (!vox_uuid_valid(id)) {
		not_found(req, "operation_not_found", "operation");
		return;
	}
	pg = ingress_pg(ir->in, req);
	if (pg == NULL)
		return;
	rc = vox_op_get(pg, id, ir->who.account_id, &op, &err);
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (rc == VOX_ERR_NOT_FOUND)
		not_found(req, "operation_not_found", "operation");
	else if (rc != 0)
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
	else
		vox_http_reply_json(req, 200, op);
}

#define KEY_COLUMNS                                                            \
	"id, prefix, role, description, vox_iso(created_at), "                 \
	"vox_iso(last_used_at), vox_iso(revoked_at)"

static json_t *key_row(const PGresult *res, int i)
{
	return json_pack(
	        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
	        text_or_null(res, i, 0), "prefix", text_or_null(res, i, 1),
	        "role", text_or_null(res, i, 2), "description",
	        text_or_null(res, i, 3), "created_at", text_or_null(res, i, 4),
	        "last_used_at", text_or_null(res, i, 5), "revoked_at",
	        text_or_null(res, i, 6));
}

void ingress_key_create(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"role", "description", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	char key[VOX_APIKEY_LEN + 1], hash[65],
	        prefix[VOX_APIKEY_PREFIX_LEN + 1];
	char id[VOX_UUID_STRLEN];
	const char *role_name, *description;
	vox_role_t role;
	vox_error_t err;
	PGresult *res;
	json_t *body, *created;

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	role_name = vox_json_str(body, "role");
	role = vox_role_parse(role_name);
	description = vox_json_str(body, "description");
	if (role == VOX_ROLE_NONE) {
		vox_http_reply_error(req, 400, "invalid_body",
		                     "role must be one of owner, admin, "
		                     "developer, billing, viewer",
		                     json_pack("{s:s}", "field", "role"));
		goto out;
	}
	if ((json_object_get(body, "description") && description == NULL &&
	     !json_is_null(json_object_get(body, "description"))) ||
	    (description && strlen(description) > 500)) {
		vox_http_reply_error(
		        req, 400, "invalid_body",
		        "description must be a string of at most "
		        "500 characters",
		        json_pack("{s:s}", "field", "description"));
		goto out;
	}
	if (role == VOX_ROLE_OWNER && ir->who.role != VOX_ROLE_OWNER) {
		vox_http_reply_error(req, 403, "permission_denied",
		                     "only an owner can create owner keys",
		                     NULL);
		goto out;
	}
	if (!idem_begin(req, ir))
		goto out;
	if (vox_apikey_generate(key, sizeof(key), &err) != 0) {
		ingress_reply(req, 500,
		              json_pack("{s:{s:s,s:s}}", "error", "code",
		                        "internal", "message", err.message));
		goto out;
	}
	vox_apikey_hash_hex(key, hash);
	memcpy(prefix, key, VOX_APIKEY_PREFIX_LEN);
	prefix[VOX_APIKEY_PREFIX_LEN] = '\0';
	vox_uuid7(id);
	const char *params[] = {id,   ir->who.account_id,  prefix,
	                        hash, vox_role_name(role), description};
	res = ingress_query(
	        ir->in, req, "ingress_key_create",
	        "INSERT INTO api_keys (id, account_id, prefix, "
	        "secret_hash, role, description) VALUES ($1, $2, $3, "
	        "decode($4, 'hex'), $5, $6) RETURNING " KEY_COLUMNS,
	        6, params);
	if (res == NULL)
		goto out;
	created = key_row(res, 0);
	json_object_set_new(created, "key", json_string(key));
	PQclear(res);
	ingress_reply(req, 201, created);
out:
	json_decref(body);
}

void ingress_key_list(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	char limit[16];
	const char *cursor;
	PGresult *res;

	if (ir == NULL || !page_args(req, limit, sizeof(limit), &cursor))
		return;
	const char *params[] = {ir->who.account_id, cursor, limit};
	res = ingress_query(
	        ir->in, req, "ingress_key_list",
	        "SELECT " KEY_COLUMNS " FROM api_keys WHERE account_id "
	        "= $1 AND ($2::uuid IS NULL OR id < $2::uuid) ORDER "
	        "BY id DESC LIMIT $3::int",
	        3, params);
	if (res == NULL)
		return;
	vox_http_reply_json(req, 200,
	                    page(res, strtol(limit, NULL, 10) - 1, key_row));
	PQclear(res);
}

static void key_one(vox_http_req_t *req, void *ctx, bool revoke)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	PGresult *res;

	if (ir == NULL)
		return;
	if (!vox_uuid_valid(id)) {
		not_found(req, "api_key_not_found", "API key");
		return;
	}
	const char *params[] = {ir->who.account_id, id};
	res = revoke ? ingress_query(
	                       ir->in, req, "ingress_key_revoke",
	                       "UPDATE api_keys SET revoked_at = "
	                       "coalesce(revoked_at, now()) WHERE account_id "
	                       "= $1 AND id = $2 RETURNING " KEY_COLUMNS
	                       ", encode(secret_hash, 'hex')",
	                       2, params)
	             : ingress_query(ir->in, req, "ingress_key_get",
	                             "SELECT " KEY_COLUMNS
	                             " FROM api_keys WHERE "
	                             "account_id = $1 AND id = $2",
	                             2, params);
	if (res == NULL)
		return;
	if (PQntuples(res) == 0) {
		not_found(req, "api_key_not_found", "API key");
	} else {
		/* Forget it here at once: the NOTIFY that tells every ingress
		 * comes a moment later, and the caller may use the key in
		 * between (it was accepted once in a test run). */
		if (revoke)
			key_cache_forget(ir->in->keys, PQgetvalue(res, 0, 7));
		vox_http_reply_json(req, 200, key_row(res, 0));
	}
	PQclear(res);
}

void ingress_key_get(vox_http_req_t *req, void *ctx)
{
	key_one(req, ctx, false);
}

void ingress_key_revoke(vox_http_req_t *req, void *ctx)
{
	key_one(req, ctx, true);
}

/* Who is asking: what the dashboard shows and allows follows the role. */
static json_t *account_credential(const vox_principal_t *who)
{
	bool key = who->key_id[0] != '\0';

	return json_pack("{s:s, s:s, s:o, s:s}", "type",
	                 key ? "api_key" : "jwt", "role",
	                 vox_role_name(who->role), "key_id",
	                 key ? json_string(who->key_id) : json_null(),
	                 "subject", who->subject);
}

void ingress_account_get(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	PGresult *res;

	if (ir == NULL)
		return;
	const char *params[] = {ir->who.account_id};
	res = ingress_query(ir->in, req, "ingress_account_get",
	                    "SELECT id, name, status, currency, timezone, "
	                    "vox_iso(created_at) FROM accounts WHERE id = $1",
	                    1, params);
	if (res == NULL)
		return;
	if (PQntuples(res) == 0)
		not_found(req, "account_not_found", "account");
	else
		vox_http_reply_json(
		        req, 200,
		        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
		                  text_or_null(res, 0, 0), "name",
		                  text_or_null(res, 0, 1), "status",
		                  text_or_null(res, 0, 2), "currency",
		                  text_or_null(res, 0, 3), "timezone",
		                  text_or_null(res, 0, 4), "created_at",
		                  text_or_null(res, 0, 5), "credential",
		                  account_credential(&ir->who)));
	PQclear(res);
}

bool ingress_page_args(vox_http_req_t *req, char *limit, size_t limitlen,
                       const char **cursor)
{
	return page_args(req, limit, limitlen, cursor);
}

json_t *ingress_page(const PGresult *res, long limit,
                     json_t *(*row_fn)(const PGresult *res, int row))
{
	return page(res, limit, row_fn);
}
