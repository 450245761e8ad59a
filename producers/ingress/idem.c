/*
 * Idempotency-Key on POSTs, with Stripe's semantics, stored in PostgreSQL
 * for 24 h (durable across restarts, shared by every instance):
 *   - same key, same method+path+body: the first answer is replayed
 *     (Idempotent-Replayed: true); "same body" is the same canonical JSON
 *     (key order and whitespace do not matter);
 *   - same key, another body: 422 idempotency_key_reused;
 *   - same key while the first request is still in flight: 409
 *     idempotency_key_in_use (a claim older than IDEM_CLAIM_TIMEOUT is
 *     taken over: its process died).
 * A request that takes the key hands its answer to the claim through a
 * reply hook (vox_http_on_reply), so whichever path answers, the claim is
 * settled: 2xx/4xx are stored, 5xx and 429 release the key so the client
 * can retry with it, and a request that ends unanswered releases it too.
 * Requests that fail validation never take the key.
 *
 * Answers that carry a secret (route_rule_t.secret_fields: a new API key)
 * are stored sealed with AES-256-GCM (vox_crypto, VOX_ENCRYPTION_KEY),
 * bound to their row by account id and key; a replay opens them and
 * answers the same body, as Stripe does. Without an encryption key they
 * are stored without the secret and a replay answers 409
 * idempotency_reply_withheld with that redacted answer: the secret is
 * never in the database in plaintext.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress.h"
#include "vox_crypto.h"
#include "vox_json.h"
#include "vox_log.h"

#define IDEM_CLAIM_TIMEOUT "60 seconds"

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

/* "now" for expiry and claims: the database's clock, moved by
 * VOX_TEST_CLOCK_SKEW_S in tests only. */
#define IDEM_NOW "(now() + make_interval(secs => $6::float8))"

/* Takes the key (new, expired or abandoned): 1 taken (claimed_at gets the
 * claim's time), 0 held by another row (*res has it), <0 error. */
static int idem_take(vox_pg_t *pg, const char *const *params, PGresult **res,
                     char *claimed_at, size_t claimed_len, vox_error_t *err)
{
	PGresult *taken;
	int rc;

	rc = vox_pg_execp(
	        pg, "ingress_idem_take",
	        "INSERT INTO idempotency_keys AS k (account_id, key, method, "
	        "path, request_hash, created_at, expires_at) VALUES ($1, $2, "
	        "$3, $4, decode($5, 'hex'), " IDEM_NOW ", " IDEM_NOW
	        " + interval '24 hours') "
	        "ON CONFLICT (account_id, key) DO UPDATE SET method = "
	        "EXCLUDED.method, path = EXCLUDED.path, request_hash = "
	        "EXCLUDED.request_hash, status_code = NULL, response_body = "
	        "NULL, response_sealed = NULL, secret_withheld = false, "
	        "operation_id = NULL, created_at = EXCLUDED.created_at, "
	        "expires_at = EXCLUDED.expires_at WHERE k.expires_at "
	        "< " IDEM_NOW
	        " OR (k.status_code IS NULL AND k.created_at < " IDEM_NOW
	        " - interval '" IDEM_CLAIM_TIMEOUT "') RETURNING created_at",
	        6, params, &taken, err);
	if (rc != 0)
		return rc;
	rc = PQntuples(taken);
	if (rc == 1)
		snprintf(claimed_at, claimed_len, "%s",
		         PQgetvalue(taken, 0, 0));
	PQclear(taken);
	if (rc == 1)
		return 1;
	rc = vox_pg_execp(pg, "ingress_idem_get",
	                  "SELECT method, path, encode(request_hash, 'hex'), "
	                  "status_code, response_body, encode(response_sealed, "
	                  "'hex'), secret_withheld FROM idempotency_keys "
	                  "WHERE account_id = $1 AND key = $2",
	                  2, params, res, err);
	return rc == 0 ? 0 : rc;
}

/* What binds a sealed answer to its row. */
static void sealed_aad(const ingress_req_t *ir, char *out, size_t outlen)
{
	snprintf(out, outlen, "idempotency/%s/%s", ir->who.account_id,
	         ir->idem_key);
}

static void answer_withheld(vox_http_req_t *req, int status,
                            const char *redacted, const char *why)
{
	json_t *first = redacted ? json_loads(redacted, 0, NULL) : NULL;
	char msg[300];

	snprintf(msg, sizeof(msg),
	         "the first request with this Idempotency-Key was answered "
	         "%d, with a secret that is shown once; %s. "
	         "details.first_answer is that answer without the secret",
	         status, why);
	vox_http_reply_error(req, 409, "idempotency_reply_withheld", msg,
	                     json_pack("{s:i, s:o}", "status", status,
	                               "first_answer",
	                               first ? first : json_null()));
}

/* A stored secret-bearing answer, opened and replayed. */
static void answer_sealed(vox_http_req_t *req, ingress_req_t *ir, int status,
                          const char *hex)
{
	size_t len = strlen(hex) / 2, plain_len = 0;
	unsigned char *sealed = malloc(len ? len : 1);
	char aad[320], *plain = NULL;
	vox_error_t err = {0};
	int rc = -1;

	if (sealed != NULL && ir->in->keyring != NULL) {
		for (size_t i = 0; i < len; i++) {
			unsigned int byte;

			sscanf(hex + 2 * i, "%2x", &byte);
			sealed[i] = (unsigned char)byte;
		}
		sealed_aad(ir, aad, sizeof(aad));
		rc = vox_crypto_open(ir->in->keyring, sealed, len, aad,
		                     strlen(aad), &plain, &plain_len, &err);
	}
	free(sealed);
	if (rc != 0) {
		vox_log(VOX_LOG_WARN, "sealed idempotent answer not opened",
		        "error", err.message, "account_id", ir->who.account_id,
		        NULL);
		answer_withheld(req, status, NULL,
		                "its encrypted copy cannot be opened with "
		                "the configured encryption keys");
		return;
	}
	vox_http_add_header(req, "Idempotent-Replayed", "true");
	vox_http_reply(req, status, "application/json", plain, plain_len);
	OPENSSL_cleanse(plain, plain_len);
	free(plain);
}

static void idem_answer_existing(vox_http_req_t *req, ingress_req_t *ir,
                                 const PGresult *row, const char *hash)
{
	int status;

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
	status = (int)strtol(PQgetvalue(row, 0, 3), NULL, 10);
	if (!PQgetisnull(row, 0, 5)) {
		answer_sealed(req, ir, status, PQgetvalue(row, 0, 5));
	} else if (strcmp(PQgetvalue(row, 0, 6), "t") == 0) {
		answer_withheld(req, status, PQgetvalue(row, 0, 4),
		                "this server keeps no encrypted copy of it "
		                "(no VOX_ENCRYPTION_KEY): if it was lost, "
		                "revoke that key and create another");
	} else {
		vox_http_add_header(req, "Idempotent-Replayed", "true");
		vox_http_reply(req, status, "application/json",
		               PQgetvalue(row, 0, 4),
		               (size_t)PQgetlength(row, 0, 4));
	}
}

static void idem_on_reply(vox_http_req_t *req, int status, const char *body,
                          size_t len, void *arg)
{
	(void)req;
	idem_finish(arg, status, body, len);
}

bool idem_begin(vox_http_req_t *req, ingress_req_t *ir)
{
	const char *key = vox_http_header(req, "Idempotency-Key");
	const char *body;
	char hash[65], skew[24];
	PGresult *row = NULL;
	vox_error_t err;
	size_t body_len;
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
	body = vox_http_body(req, &body_len);
	idem_request_hash(vox_http_method(req), vox_http_path(req), body,
	                  body_len, hash);
	if (ir->body_has_secret) {
		/* Without a key such a body is refused later (503, the claim
		 * released); with one, only the keyed digest is stored. */
		if (ir->in->keyring == NULL ||
		    vox_crypto_mac_hex(ir->in->keyring, hash, 64, hash) != 0) {
			vox_http_reply_error(
			        req, 503, "secret_storage_unavailable",
			        "this request carries a secret and this server "
			        "cannot key its Idempotency-Key record (no "
			        "VOX_ENCRYPTION_KEY); nothing was stored",
			        NULL);
			return false;
		}
	}
	snprintf(skew, sizeof(skew), "%ld", ir->in->cfg->test_clock_skew_s);
	snprintf(ir->idem_key, sizeof(ir->idem_key), "%s", key);
	const char *params[] = {ir->who.account_id, key,  vox_http_method(req),
	                        vox_http_path(req), hash, skew};
	pg = ingress_pg(ir->in, req);
	if (pg == NULL)
		return false;
	rc = idem_take(pg, params, &row, ir->idem_claimed_at,
	               sizeof(ir->idem_claimed_at), &err);
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (rc < 0) {
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
		return false;
	}
	if (rc == 1) {
		ir->holds_idem = true;
		vox_http_on_reply(req, idem_on_reply, ir);
		return true;
	}
	idem_answer_existing(req, ir, row, hash);
	vox_counter_inc(ir->in->idem_hits);
	PQclear(row);
	return false;
}

/* The answer as stored: sealed (hex in *sealed_hex) when it carries a
 * secret and a key is configured; without a key, the answer minus its
 * secret fields (*redacted). Returns 0, or -1 when it cannot be stored
 * safely (then the claim is released). */
static int idem_protect(ingress_req_t *ir, const char *body, size_t len,
                        char **sealed_hex, char **redacted)
{
	const char *const *fields = ir->secret_fields;
	unsigned char *sealed = NULL;
	size_t sealed_len = 0;
	char aad[320];
	vox_error_t err;
	json_t *doc;

	if (ir->in->keyring == NULL) {
		doc = vox_json_parse(body, len, VOX_JSON_DEFAULT_DEPTH, &err);
		for (size_t i = 0; doc != NULL && fields[i] != NULL; i++)
			json_object_del(doc, fields[i]);
		*redacted = doc ? vox_json_dump(doc) : NULL;
		json_decref(doc);
		return *redacted ? 0 : -1;
	}
	sealed_aad(ir, aad, sizeof(aad));
	if (vox_crypto_seal(ir->in->keyring, body, len, aad, strlen(aad),
	                    &sealed, &sealed_len, &err) != 0 ||
	    (*sealed_hex = malloc(2 * sealed_len + 1)) == NULL) {
		free(sealed);
		return -1;
	}
	vox_hex_encode(sealed, sealed_len, *sealed_hex);
	free(sealed);
	return 0;
}

void idem_finish(ingress_req_t *ir, int status, const char *body, size_t len)
{
	char code[16], *sealed_hex = NULL, *redacted = NULL, *plain = NULL;
	bool release = status == 0 || status == 429 || status >= 500;
	vox_error_t err = {0};
	vox_pg_t *pg;
	int rc;

	if (!ir->holds_idem)
		return;
	ir->holds_idem = false;
	if (!release && ir->secret_fields != NULL && status < 300 &&
	    idem_protect(ir, body, len, &sealed_hex, &redacted) != 0)
		release = true; /* never stored in plaintext */
	if (!release && sealed_hex == NULL && redacted == NULL &&
	    (plain = strndup(body, len)) == NULL)
		release = true;
	snprintf(code, sizeof(code), "%d", status);
	const char *params[] = {
	        ir->who.account_id,          ir->idem_key,
	        ir->idem_claimed_at,         code,
	        redacted ? redacted : plain, sealed_hex,
	        redacted ? "true" : "false", ir->op_id[0] ? ir->op_id : NULL};
	pg = vox_pg_pool_acquire(ir->in->pg_pool, 2000, &err);
	if (pg == NULL) {
		rc = -1;
	} else if (release) {
		/* Only our own claim: after IDEM_CLAIM_TIMEOUT another request
		 * may have taken the key over. */
		rc = vox_pg_execp(pg, "ingress_idem_release",
		                  "DELETE FROM idempotency_keys WHERE "
		                  "account_id = $1 AND key = $2 AND created_at "
		                  "= $3::timestamptz AND status_code IS NULL",
		                  3, params, NULL, &err);
	} else {
		rc = vox_pg_execp(
		        pg, "ingress_idem_store",
		        "UPDATE idempotency_keys SET status_code = $4::int, "
		        "response_body = $5, response_sealed = decode($6, "
		        "'hex'), secret_withheld = $7::boolean, operation_id = "
		        "$8::uuid WHERE account_id = $1 AND key = $2 AND "
		        "created_at = $3::timestamptz AND status_code IS NULL",
		        8, params, NULL, &err);
	}
	if (pg != NULL)
		vox_pg_pool_release(ir->in->pg_pool, pg);
	if (sealed_hex != NULL)
		OPENSSL_cleanse(sealed_hex, strlen(sealed_hex));
	free(sealed_hex);
	free(redacted);
	free(plain);
	if (rc != 0)
		/* The claim is taken over after IDEM_CLAIM_TIMEOUT; meanwhile
		 * retries get 409. */
		vox_log(VOX_LOG_WARN, "idempotency answer not stored", "error",
		        err.message, "account_id", ir->who.account_id, NULL);
}
