/*
 * Idempotency-Key on POSTs, with Stripe's semantics, stored in PostgreSQL
 * for 24 h (durable across restarts, shared by every instance):
 *   - same key, same method+path+body: the first answer is replayed
 *     (Idempotent-Replayed: true);
 *   - same key, another body: 422 idempotency_key_reused;
 *   - same key while the first request is still in flight: 409
 *     idempotency_key_in_use (a hold older than 60 s is taken over: its
 *     process died).
 * Answers of 5xx are not stored: the key is released so the client can
 * retry with it. Requests that fail validation never take the key.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress.h"
#include "vox_log.h"

static bool idem_key_ok(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if (key[i] < 0x21 || key[i] > 0x7e)
			return false;
	return true;
}

/* SHA-256 over method, path and body, as hex. */
static void request_hash(vox_http_req_t *req, char out[65])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	size_t body_len;
	const char *body = vox_http_body(req, &body_len);

	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, vox_http_method(req),
	                 strlen(vox_http_method(req)));
	EVP_DigestUpdate(md, "\n", 1);
	EVP_DigestUpdate(md, vox_http_path(req), strlen(vox_http_path(req)));
	EVP_DigestUpdate(md, "\n", 1);
	EVP_DigestUpdate(md, body, body_len);
	EVP_DigestFinal_ex(md, digest, &len);
	EVP_MD_CTX_free(md);
	for (unsigned int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* Takes the key (new, expired or abandoned): 1 taken, 0 held by another
 * row (*res has it), <0 error. */
static int idem_take(vox_pg_t *pg, const char *const *params, PGresult **res,
                     vox_error_t *err)
{
	PGresult *taken;
	int rc;

	rc = vox_pg_execp(
	        pg, "ingress_idem_take",
	        "INSERT INTO idempotency_keys AS k (account_id, key, method, "
	        "path, request_hash) VALUES ($1, $2, $3, $4, decode($5, "
	        "'hex')) "
	        "ON CONFLICT (account_id, key) DO UPDATE SET method = "
	        "EXCLUDED.method, path = EXCLUDED.path, request_hash = "
	        "EXCLUDED.request_hash, status_code = NULL, response_body = "
	        "NULL, operation_id = NULL, created_at = now(), expires_at = "
	        "now() + interval '24 hours' WHERE k.expires_at < now() OR "
	        "(k.status_code IS NULL AND k.created_at < now() - interval "
	        "'60 seconds') RETURNING 1",
	        5, params, &taken, err);
	if (rc != 0)
		return rc;
	rc = PQntuples(taken);
	PQclear(taken);
	if (rc == 1)
		return 1;
	rc = vox_pg_execp(pg, "ingress_idem_get",
	                  "SELECT method, path, encode(request_hash, 'hex'), "
	                  "status_code, response_body FROM idempotency_keys "
	                  "WHERE account_id = $1 AND key = $2",
	                  2, params, res, err);
	return rc == 0 ? 0 : rc;
}

static void idem_answer_existing(vox_http_req_t *req, const PGresult *row,
                                 const char *hash)
{
	if (PQntuples(row) == 0) {
		/* Expired and removed between our two statements. */
		vox_http_reply_error(req, 409, "idempotency_key_in_use",
		                     "the key changed hands; retry", NULL);
		return;
	}
	if (strcmp(PQgetvalue(row, 0, 0), vox_http_method(req)) != 0 ||
	    strcmp(PQgetvalue(row, 0, 1), vox_http_path(req)) != 0 ||
	    strcmp(PQgetvalue(row, 0, 2), hash) != 0) {
		vox_http_reply_error(req, 422, "idempotency_key_reused",
		                     "this Idempotency-Key was used with "
		                     "another request; use a new key",
		                     NULL);
		return;
	}
	if (PQgetisnull(row, 0, 3)) {
		vox_http_add_header(req, "Retry-After", "1");
		vox_http_reply_error(req, 409, "idempotency_key_in_use",
		                     "a request with this Idempotency-Key is "
		                     "still being processed",
		                     NULL);
		return;
	}
	vox_http_add_header(req, "Idempotent-Replayed", "true");
	vox_http_reply(req, (int)strtol(PQgetvalue(row, 0, 3), NULL, 10),
	               "application/json", PQgetvalue(row, 0, 4),
	               (size_t)PQgetlength(row, 0, 4));
}

bool idem_begin(vox_http_req_t *req, ingress_req_t *ir)
{
	const char *key = vox_http_header(req, "Idempotency-Key");
	char hash[65];
	PGresult *row = NULL;
	vox_error_t err;
	vox_pg_t *pg;
	int rc;

	if (key == NULL)
		return true;
	if (!idem_key_ok(key)) {
		vox_http_reply_error(req, 400, "invalid_idempotency_key",
		                     "Idempotency-Key must be 1..255 printable "
		                     "ASCII characters",
		                     NULL);
		return false;
	}
	request_hash(req, hash);
	const char *params[] = {ir->who.account_id, key, vox_http_method(req),
	                        vox_http_path(req), hash};
	pg = ingress_pg(ir->in, req);
	if (pg == NULL)
		return false;
	rc = idem_take(pg, params, &row, &err);
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (rc < 0) {
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
		return false;
	}
	if (rc == 1) {
		ir->holds_idem = true;
		snprintf(ir->idem_key, sizeof(ir->idem_key), "%s", key);
		return true;
	}
	idem_answer_existing(req, row, hash);
	if (vox_http_header(req, "Idempotency-Key") != NULL)
		vox_counter_inc(ir->in->idem_hits);
	PQclear(row);
	return false;
}

void idem_finish(ingress_req_t *ir, int status, const char *body)
{
	char code[8];
	const char *params[] = {ir->who.account_id, ir->idem_key, code, body,
	                        ir->op_id[0] ? ir->op_id : NULL};
	vox_error_t err;
	vox_pg_t *pg;
	int rc;

	if (!ir->holds_idem)
		return;
	ir->holds_idem = false;
	snprintf(code, sizeof(code), "%d", status);
	pg = vox_pg_pool_acquire(ir->in->pg_pool, 2000, &err);
	if (pg == NULL)
		goto failed;
	if (status >= 500)
		rc = vox_pg_execp(pg, "ingress_idem_release",
		                  "DELETE FROM idempotency_keys WHERE "
		                  "account_id = $1 AND key = $2",
		                  2, params, NULL, &err);
	else
		rc = vox_pg_execp(pg, "ingress_idem_store",
		                  "UPDATE idempotency_keys SET status_code = "
		                  "$3::int, response_body = $4, operation_id = "
		                  "$5::uuid WHERE account_id = $1 AND key = $2",
		                  5, params, NULL, &err);
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (rc == 0)
		return;
failed:
	/* The hold expires by itself after 60 s; meanwhile retries get 409. */
	vox_log(VOX_LOG_WARN, "idempotency answer not stored", "error",
	        err.message, "account_id", ir->who.account_id, NULL);
}
