/*
 * How a carrier's request is authenticated (docs/CARRIER_CDRS.md), shared by
 * POST /v1/carrier/cdrs (cdrs.c) and POST /v1/carrier/calls/route
 * (routing_api.c). The carrier sends its own bearer key ("voxc_...",
 * carrier_credentials) and signs each request:
 *   Vox-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 * Nothing here asks PostgreSQL per request: the credential, with its opened
 * signing secret, comes from the ingress's cache (carrier_keys.c, dropped
 * on NOTIFY vox_carriers), and the replay check is a Redis key per
 * accepted signature (SET NX, shared by every ingress instance, expiring
 * when the signature's timestamp leaves the window) made in the same Redis
 * call as the rate limit. Without Redis no replay check can be made: the
 * request is refused 503 (fail closed). A sealed signing secret this
 * server cannot open is our misconfiguration, answered 503
 * signing_secret_unavailable, not the carrier's fault.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "carrier_auth.h"
#include "carrier_keys.h"
#include "vox_carrier_secret.h"
#include "vox_crypto.h"
#include "vox_log.h"
#include "vox_redis.h"
#include "vox_time.h"

#define AUTH_TOLERANCE_S    300
#define AUTH_MAX_SIGNATURES 8 /* v1= entries looked at */

void carrier_auth_refuse(vox_http_req_t *req, ingress_t *in, const char *code,
                         const char *message)
{
	vox_counter_inc(in->auth_failed);
	vox_http_add_header(req, "WWW-Authenticate",
	                    "Bearer realm=\"carriers\"");
	vox_http_reply_error(req, 401, code, message, NULL);
}

static void key_refuse(carrier_key_t *e, const char *reason)
{
	e->valid = false;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
}

/* Row 0 of res (id, carrier, signing_secret, status,
 * signing_secret_sealed) into e; VOX_ERR_INVALID when the secret is sealed
 * and cannot be opened here. */
static int key_from_row(const struct vox_crypto_keyring *ring, PGresult *res,
                        carrier_key_t *e, vox_error_t *err)
{
	snprintf(e->cred_id, sizeof(e->cred_id), "%s", PQgetvalue(res, 0, 0));
	snprintf(e->carrier, sizeof(e->carrier), "%s", PQgetvalue(res, 0, 1));
	if (strcmp(PQgetvalue(res, 0, 3), "active") != 0) {
		key_refuse(e, "carrier key revoked");
		return 0;
	}
	e->valid = true;
	if (!PQgetisnull(res, 0, 2)) {
		snprintf(e->secret, sizeof(e->secret), "%s",
		         PQgetvalue(res, 0, 2));
		return 0;
	}
	return vox_carrier_secret_open(ring, e->cred_id, PQgetvalue(res, 0, 4),
	                               e->secret, sizeof(e->secret), err);
}

/* One query: the credential behind hash (answered 503 when the database
 * does not answer). */
static int key_fetch(ingress_t *in, vox_http_req_t *req, const char *hash,
                     carrier_key_t *e, vox_error_t *err)
{
	const char *params[] = {hash};
	PGresult *res;
	int rc = 0;

	res = ingress_query(in, req, "ingress_carrier_fetch",
	                    "SELECT id, carrier, signing_secret, status, "
	                    "signing_secret_sealed FROM carrier_credentials "
	                    "WHERE key_hash = decode($1, 'hex')",
	                    1, params);
	if (res == NULL)
		return VOX_ERR_UNAVAILABLE;
	memset(e, 0, sizeof(*e));
	snprintf(e->hash, sizeof(e->hash), "%s", hash);
	e->fetched_ms = vox_mono_ms();
	if (PQntuples(res) == 0)
		key_refuse(e, "unknown carrier key");
	else
		rc = key_from_row(in->keyring, res, e, err);
	if (PQntuples(res) > 0) /* a plaintext secret: wiped, not just freed */
		OPENSSL_cleanse(PQgetvalue(res, 0, 2),
		                (size_t)PQgetlength(res, 0, 2));
	PQclear(res);
	if (rc != 0) {
		OPENSSL_cleanse(e->secret, sizeof(e->secret));
		return VOX_ERR_INVALID;
	}
	return 0;
}

/* The credential behind hash into out, from the cache or one query: 0
 * (out->valid says whether it may be used), VOX_ERR_UNAVAILABLE after
 * answering 503 database_unavailable, or VOX_ERR_INVALID with err when its
 * sealed secret cannot be opened with this server's keyring (out->cred_id
 * and out->carrier are set; nothing is cached: our misconfiguration, fixed
 * by a restart with the right key). */
static int credential_lookup(ingress_t *in, vox_http_req_t *req,
                             const char *hash, carrier_key_t *out,
                             vox_error_t *err)
{
	unsigned long generation;
	int rc;

	if (carrier_keys_get(in->carrier_keys, hash, out))
		return 0;
	generation = carrier_keys_generation(in->carrier_keys);
	rc = key_fetch(in, req, hash, out, err);
	if (rc == 0)
		carrier_keys_put(in->carrier_keys, out, generation);
	return rc;
}

static void secret_unavailable(vox_http_req_t *req, const carrier_key_t *key,
                               const vox_error_t *err)
{
	vox_log(VOX_LOG_ERROR,
	        "cannot open a carrier credential's sealed signing secret: "
	        "set the VOX_ENCRYPTION_KEY (or VOX_ENCRYPTION_OLD_KEYS) it "
	        "was sealed with",
	        "credential_id", key->cred_id, "carrier", key->carrier, "error",
	        err->message, "request_id", vox_http_request_id(req), NULL);
	vox_http_add_header(req, "Retry-After", "60");
	vox_http_reply_error(req, 503, "signing_secret_unavailable",
	                     "this credential's signing secret is stored "
	                     "encrypted and this server cannot decrypt it: a "
	                     "configuration error on our side, not a problem "
	                     "with the request; retry later",
	                     NULL);
}

/* The credential behind "Bearer voxc_..." into key (valid): 0, or
 * answered (401/503). key->secret is the caller's to wipe. */
static int auth_credential(vox_http_req_t *req, ingress_t *in,
                           carrier_key_t *key)
{
	const char *auth = vox_http_header(req, "Authorization");
	const char *token;
	char hash[65];
	vox_error_t err = {0};
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
	rc = credential_lookup(in, req, hash, key, &err);
	if (rc == VOX_ERR_INVALID)
		secret_unavailable(req, key, &err);
	if (rc != 0)
		return -1; /* answered */
	if (!key->valid) {
		carrier_auth_refuse(req, in, "invalid_credentials",
		                    key->reason);
		return -1;
	}
	return 0;
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
static EVP_MAC *hmac_method;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

/* Fetched once: EVP_MAC_fetch looks the method up under a lock. Never
 * freed (one per process, like OpenSSL's own method store). */
static void hmac_fetch(void)
{
	hmac_method = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static void signature_expected(const char *secret, const char *t_text,
                               const char *body, size_t len, char out[65])
{
	EVP_MAC_CTX *ctx;
	OSSL_PARAM params[] = {
	        OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
	        OSSL_PARAM_construct_end()};
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;

	out[0] = '\0';
	pthread_once(&hmac_once, hmac_fetch);
	ctx = hmac_method ? EVP_MAC_CTX_new(hmac_method) : NULL;
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
	who->signed_at = strtoll(t_text, NULL, 10);
	skew = (long long)(vox_now_us() / 1000000) - who->signed_at;
	if (skew > AUTH_TOLERANCE_S || skew < -AUTH_TOLERANCE_S) {
		carrier_auth_refuse(
		        req, in, "stale_timestamp",
		        "the signature's timestamp is more than 300 s from our "
		        "clock: sign again with the current time");
		return -1;
	}
	return 0;
}

/* vox:sig:<carrier>:<signature>: the replay store's key of who's request. */
static void replay_key(const carrier_caller_t *who, char *out, size_t outlen)
{
	snprintf(out, outlen, "vox:sig:%s:%s", who->carrier, who->signature);
}

/* Counts the request against the credential's rate limit and records its
 * signature, in one Redis call: 0, or answered (429, 401
 * replayed_request, 503 replay_store_unavailable). */
static int auth_once(vox_http_req_t *req, ingress_t *in,
                     const char *limit_class, long rate_per_s,
                     const carrier_caller_t *who)
{
	struct limit_result limit;
	char key[160];
	long long now = (long long)(vox_now_us() / 1000000);
	/* A replay is refused as stale once t is out of the window: the key
	 * need not outlive that (at most 600 s, for a t 300 s ahead). */
	long ttl = (long)(who->signed_at + AUTH_TOLERANCE_S - now) + 1;
	bool fresh;

	replay_key(who, key, sizeof(key));
	if (limiter_check_once(in->limiter, who->cred_id, limit_class,
	                       rate_per_s, key, ttl < 1 ? 1 : ttl, &limit,
	                       &fresh) != 0) {
		vox_http_add_header(req, "Retry-After", "1");
		vox_http_reply_error(
		        req, 503, "replay_store_unavailable",
		        "cannot check this signed request against replays "
		        "(the shared store does not answer): retry the same "
		        "request later",
		        NULL);
		return -1;
	}
	if (!ingress_rate_answer(req, in, limit_class, &limit))
		return -1;
	if (!fresh) {
		carrier_auth_refuse(
		        req, in, "replayed_request",
		        "this signed request was already received: sign each "
		        "request anew");
		return -1;
	}
	return 0;
}

void carrier_auth_forget(ingress_t *in, const carrier_caller_t *who)
{
	struct vox_redis *conn = limiter_redis(in->limiter);
	redisReply *r = NULL;
	char key[160];
	vox_error_t err = {0};

	replay_key(who, key, sizeof(key));
	if (conn != NULL)
		r = vox_redis_command(conn, &err, "DEL %s", key);
	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		vox_log(VOX_LOG_WARN,
		        "cannot forget a carrier request's signature: the "
		        "carrier's retry of the same request will be refused "
		        "as a replay",
		        "carrier", who->carrier, "error",
		        r ? r->str : err.message, NULL);
	if (r != NULL)
		freeReplyObject(r);
}

int carrier_auth_check(vox_http_req_t *req, ingress_t *in,
                       const char *limit_class, long rate_per_s,
                       carrier_caller_t *who)
{
	carrier_key_t key;
	int rc = -1;

	memset(who, 0, sizeof(*who));
	if (auth_credential(req, in, &key) != 0)
		goto out;
	snprintf(who->cred_id, sizeof(who->cred_id), "%s", key.cred_id);
	snprintf(who->carrier, sizeof(who->carrier), "%s", key.carrier);
	if (auth_signature(req, in, who, key.secret) != 0 ||
	    auth_once(req, in, limit_class, rate_per_s, who) != 0)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(&key, sizeof(key));
	return rc;
}
