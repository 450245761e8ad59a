/*
 * How a carrier's request is authenticated (docs/CARRIER_CDRS.md), shared by
 * POST /v1/carrier/cdrs (cdrs.c) and POST /v1/carrier/calls/route
 * (routing_api.c). The carrier sends its own bearer key ("voxc_...",
 * carrier_credentials) and signs each request:
 *   Vox-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 * A request whose signature was accepted before is refused
 * (cdr_push_signatures, which holds the signatures of both routes). The
 * credential's signing secret is stored sealed (vox_carrier_secret, opened
 * with the ingress's keyring) or, where no VOX_ENCRYPTION_KEY was set when
 * it was made, in plaintext; a sealed one this server cannot open is our
 * misconfiguration, answered 503 signing_secret_unavailable, not the
 * carrier's fault.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "carrier_auth.h"
#include "vox_carrier_secret.h"
#include "vox_crypto.h"
#include "vox_log.h"
#include "vox_time.h"

#define AUTH_TOLERANCE_S    300
#define AUTH_PRUNE_EVERY_S  60
#define AUTH_SIG_KEEP       "10 minutes"
#define AUTH_MAX_SIGNATURES 8 /* v1= entries looked at */

void carrier_auth_refuse(vox_http_req_t *req, ingress_t *in, const char *code,
                         const char *message)
{
	vox_counter_inc(in->auth_failed);
	vox_http_add_header(req, "WWW-Authenticate",
	                    "Bearer realm=\"carriers\"");
	vox_http_reply_error(req, 401, code, message, NULL);
}

/* The signing secret of the credential in row 0 of res (id, carrier,
 * signing_secret, status, signing_secret_sealed) into secret: 0, or
 * answered 503 when it is sealed and cannot be opened here. */
static int auth_secret(vox_http_req_t *req, ingress_t *in,
                       carrier_caller_t *who, PGresult *res, char *secret,
                       size_t secretlen)
{
	vox_error_t err = {0};

	if (!PQgetisnull(res, 0, 2)) {
		snprintf(secret, secretlen, "%s", PQgetvalue(res, 0, 2));
		return 0;
	}
	if (vox_carrier_secret_open(in->keyring, who->cred_id,
	                            PQgetvalue(res, 0, 4), secret, secretlen,
	                            &err) == 0)
		return 0;
	vox_log(VOX_LOG_ERROR,
	        "cannot open a carrier credential's sealed signing secret: "
	        "set the VOX_ENCRYPTION_KEY (or VOX_ENCRYPTION_OLD_KEYS) it "
	        "was sealed with",
	        "credential_id", who->cred_id, "carrier", who->carrier, "error",
	        err.message, "request_id", vox_http_request_id(req), NULL);
	vox_http_add_header(req, "Retry-After", "60");
	vox_http_reply_error(req, 503, "signing_secret_unavailable",
	                     "this credential's signing secret is stored "
	                     "encrypted and this server cannot decrypt it: a "
	                     "configuration error on our side, not a problem "
	                     "with the request; retry later",
	                     NULL);
	return -1;
}

/* The credential behind "Bearer voxc_...": 0, or answered (401/503). */
static int auth_credential(vox_http_req_t *req, ingress_t *in,
                           carrier_caller_t *who, char *secret,
                           size_t secretlen)
{
	const char *auth = vox_http_header(req, "Authorization");
	const char *token, *params[1];
	char hash[65];
	PGresult *res;
	vox_error_t err;
	vox_pg_t *pg;
	int rc;

	if (auth == NULL || *auth == '\0') {
		carrier_auth_refuse(req, in, "missing_credentials",
		                    "send Authorization: Bearer <carrier key>");
		return -1;
	}
	if (strncasecmp(auth, "Bearer ", 7) != 0) {
		carrier_auth_refuse(req, in, "invalid_credentials",
		                    "the Authorization scheme must be Bearer");
		return -1;
	}
	token = auth + 7;
	while (*token == ' ')
		token++;
	if (!vox_carrier_key_well_formed(token)) {
		carrier_auth_refuse(
		        req, in, "invalid_credentials",
		        "not a carrier key (voxc_...): account API keys and "
		        "tokens are not accepted here");
		return -1;
	}
	vox_apikey_hash_hex(token, hash);
	params[0] = hash;
	if ((pg = ingress_pg(in, req)) == NULL)
		return -1;
	rc = vox_pg_execp(pg, "ingress_carrier_fetch",
	                  "SELECT id, carrier, signing_secret, status, "
	                  "signing_secret_sealed FROM carrier_credentials "
	                  "WHERE key_hash = decode($1, 'hex')",
	                  1, params, &res, &err);
	vox_pg_pool_release(in->pg_pool, pg);
	if (rc != 0) {
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
		return -1;
	}
	rc = -1;
	if (PQntuples(res) == 0) {
		carrier_auth_refuse(req, in, "invalid_credentials",
		                    "unknown carrier key");
	} else if (strcmp(PQgetvalue(res, 0, 3), "active") != 0) {
		carrier_auth_refuse(req, in, "invalid_credentials",
		                    "carrier key revoked");
	} else {
		snprintf(who->cred_id, sizeof(who->cred_id), "%s",
		         PQgetvalue(res, 0, 0));
		snprintf(who->carrier, sizeof(who->carrier), "%s",
		         PQgetvalue(res, 0, 1));
		rc = auth_secret(req, in, who, res, secret, secretlen);
	}
	if (PQntuples(res) > 0) /* a plaintext secret: wiped, not just freed */
		OPENSSL_cleanse(PQgetvalue(res, 0, 2),
		                (size_t)PQgetlength(res, 0, 2));
	PQclear(res);
	return rc;
}

static bool hex_lower(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Vox-Signature: t=<unix seconds>,v1=<64 hex>[,v1=...]; other schemes
 * are skipped (room for v2). false when there is no t or no v1. t is 1..12
 * digits, kept as sent: the signature covers the text, not the number. */
static bool signature_parse(const char *header, char t_text[16], char v1[][65],
                            int *nv1)
{
	const char *p = header;
	bool have_t = false;

	*nv1 = 0;
	while (*p) {
		size_t n = strcspn(p, ",");
		const char *eq;

		while (*p == ' ') {
			p++;
			n--;
		}
		eq = memchr(p, '=', n);
		if (eq != NULL && eq - p == 1 && *p == 't') {
			size_t digits = n - 2;

			have_t = digits >= 1 && digits <= 12 &&
			         strspn(eq + 1, "0123456789") >= digits;
			if (have_t)
				snprintf(t_text, 16, "%.*s", (int)digits,
				         eq + 1);
		} else if (eq != NULL && eq - p == 2 &&
		           strncmp(p, "v1", 2) == 0 && n == 3 + 64 &&
		           hex_lower(eq + 1, 64) &&
		           *nv1 < AUTH_MAX_SIGNATURES) {
			memcpy(v1[*nv1], eq + 1, 64);
			v1[*nv1][64] = '\0';
			(*nv1)++;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return have_t && *nv1 > 0;
}

/* hex HMAC-SHA256(secret, "<t>.<body>"), or "" when OpenSSL failed.
 * EVP_MAC (the HMAC_CTX calls are deprecated in OpenSSL 3): the body is
 * fed as it is, without a copy behind "<t>.". */
static void signature_expected(const char *secret, const char *t_text,
                               const char *body, size_t len, char out[65])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
	        OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
	        OSSL_PARAM_construct_end()};
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;

	out[0] = '\0';
	if (ctx != NULL &&
	    EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret),
	                 params) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)t_text,
	                   strlen(t_text)) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)".", 1) == 1 &&
	    EVP_MAC_update(ctx, (const unsigned char *)body, len) == 1 &&
	    EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) == 1 && mdlen == 32) {
		vox_hex_encode(md, 32, out);
	}
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
}

/* Signature and timestamp: 0, or answered 401. */
static int auth_signature(vox_http_req_t *req, ingress_t *in,
                          carrier_caller_t *who, const char *secret)
{
	const char *header = vox_http_header(req, "Vox-Signature");
	char v1[AUTH_MAX_SIGNATURES][65], expected[65], t_text[16];
	const char *body;
	size_t len;
	long long skew;
	int nv1 = 0;
	bool match = false;

	if (header == NULL || *header == '\0') {
		carrier_auth_refuse(
		        req, in, "missing_signature",
		        "send Vox-Signature: t=<unix seconds>,v1=<hex "
		        "HMAC-SHA256 of \"<t>.<body>\">");
		return -1;
	}
	if (!signature_parse(header, t_text, v1, &nv1)) {
		carrier_auth_refuse(
		        req, in, "invalid_signature",
		        "Vox-Signature must be t=<unix seconds>,v1=<64 "
		        "lowercase "
		        "hex digits>");
		return -1;
	}
	body = vox_http_body(req, &len);
	signature_expected(secret, t_text, body, len, expected);
	/* Every entry is compared, in constant time, whatever matched. */
	for (int i = 0; i < nv1; i++) {
		if (expected[0] != '\0' &&
		    CRYPTO_memcmp(expected, v1[i], 64) == 0) {
			match = true;
			memcpy(who->signature, v1[i], sizeof(who->signature));
		}
	}
	OPENSSL_cleanse(expected, sizeof(expected));
	if (!match) {
		carrier_auth_refuse(
		        req, in, "invalid_signature",
		        "no v1 signature matches the body: sign \"<t>.<raw "
		        "body>\" with the credential's signing secret");
		return -1;
	}
	skew = (long long)(vox_now_us() / 1000000) - strtoll(t_text, NULL, 10);
	if (skew > AUTH_TOLERANCE_S || skew < -AUTH_TOLERANCE_S) {
		carrier_auth_refuse(
		        req, in, "stale_timestamp",
		        "the signature's timestamp is more than 300 s from our "
		        "clock: sign again with the current time");
		return -1;
	}
	return 0;
}

/* Deletes signatures past the tolerance now and then (at most once a
 * minute per instance; a replay of them is refused as stale anyway). */
static void signatures_prune(vox_pg_t *pg)
{
	static atomic_llong last_prune;
	long long now = (long long)(vox_now_us() / 1000000),
	          last = atomic_load(&last_prune);
	vox_error_t err;

	if (now - last < AUTH_PRUNE_EVERY_S ||
	    !atomic_compare_exchange_strong(&last_prune, &last, now))
		return;
	if (vox_pg_execp(pg, "ingress_cdr_sig_prune",
	                 "DELETE FROM cdr_push_signatures WHERE received_at < "
	                 "now() - interval '" AUTH_SIG_KEEP "'",
	                 0, NULL, NULL, &err) != 0)
		vox_log(VOX_LOG_WARN, "cannot prune cdr_push_signatures",
		        "error", err.message, NULL);
}

/* Remembers the signature: 0, or answered (401 replayed_request / 503). */
int carrier_auth_remember(vox_http_req_t *req, ingress_t *in,
                          const carrier_caller_t *who)
{
	const char *params[] = {who->carrier, who->signature};
	vox_error_t err;
	vox_pg_t *pg = ingress_pg(in, req);
	int rc;

	if (pg == NULL)
		return -1;
	signatures_prune(pg);
	rc = vox_pg_execp(pg, "ingress_cdr_sig_insert",
	                  "INSERT INTO cdr_push_signatures (carrier, "
	                  "signature) VALUES ($1, $2)",
	                  2, params, NULL, &err);
	vox_pg_pool_release(in->pg_pool, pg);
	if (rc == VOX_ERR_CONFLICT) {
		carrier_auth_refuse(
		        req, in, "replayed_request",
		        "this signed request was already received: sign each "
		        "push anew");
		return -1;
	}
	if (rc != 0) {
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
		return -1;
	}
	return 0;
}

/* Publishing failed: forget the signature so the same request can be
 * retried as it is. */
void carrier_auth_forget(ingress_t *in, const carrier_caller_t *who)
{
	const char *params[] = {who->carrier, who->signature};
	vox_error_t err;
	vox_pg_t *pg = vox_pg_pool_acquire(in->pg_pool, 2000, &err);
	int rc = VOX_ERR_UNAVAILABLE;

	if (pg != NULL) {
		rc = vox_pg_execp(pg, "ingress_cdr_sig_delete",
		                  "DELETE FROM cdr_push_signatures WHERE "
		                  "carrier = $1 AND signature = $2",
		                  2, params, NULL, &err);
		vox_pg_pool_release(in->pg_pool, pg);
	}
	if (rc != 0)
		vox_log(VOX_LOG_WARN,
		        "cannot forget a CDR push signature: the carrier's "
		        "retry will be refused as a replay",
		        "carrier", who->carrier, "error", err.message, NULL);
}

int carrier_auth_check(vox_http_req_t *req, ingress_t *in,
                       const char *limit_class, long rate_per_s,
                       carrier_caller_t *who)
{
	char secret[VOX_CARRIER_SECRET_MAX + 1];
	int rc = -1;

	memset(who, 0, sizeof(*who));
	secret[0] = '\0';
	if (auth_credential(req, in, who, secret, sizeof(secret)) != 0 ||
	    auth_signature(req, in, who, secret) != 0)
		goto out;
	if (!ingress_rate_limit(req, in, who->cred_id, limit_class, rate_per_s))
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}
