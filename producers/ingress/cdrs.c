/*
 * POST /v1/carrier/cdrs: carriers push call and message detail records
 * (docs/CARRIER_CDRS.md). The carrier authenticates with its own bearer
 * key ("voxc_...", carrier_credentials) and signs each request:
 *   Vox-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 * A request whose signature was accepted before is refused
 * (cdr_push_signatures). The credential's signing secret is stored sealed
 * (vox_carrier_secret, opened with the ingress's keyring) or, where no
 * VOX_ENCRYPTION_KEY was set when it was made, in plaintext; a sealed one
 * this server cannot open is our misconfiguration, answered 503
 * signing_secret_unavailable, not the carrier's fault. Each record is checked
 * with vox_cdr_parse; the good ones go to vox.cdr.raw keyed by our number, and
 * the answer (202, with the per-record reasons for the bad ones) waits until
 * Kafka acknowledged every one. No thread waits meanwhile: the connection is
 * suspended and resumed from the producer's delivery reports.
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
#include <time.h>

#include "ingress.h"
#include "vox_carrier_secret.h"
#include "vox_cdr.h"
#include "vox_crypto.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_time.h"

#define CDR_TOLERANCE_S    300
#define CDR_PRUNE_EVERY_S  60
#define CDR_SIG_KEEP       "10 minutes"
#define CDR_MAX_SIGNATURES 8 /* v1= entries looked at */
#define CDR_MAX_RECORDS    10000

/* One push, owned by the request (freed with it). */
struct cdr_push {
	ingress_t *in;
	char cred_id[40];
	char carrier[VOX_CARRIER_NAME_MAX + 1];
	char signature[65]; /* the v1 that matched: the replay key */
	json_t *errors;     /* [{index, id, code, message}] */
	size_t accepted, rejected;
	atomic_size_t pending; /* deliveries not yet reported, + 1 */
	atomic_bool failed;
	pthread_mutex_t lock; /* err */
	vox_error_t err;
};

static void cdr_push_free(void *state)
{
	struct cdr_push *push = state;

	json_decref(push->errors);
	pthread_mutex_destroy(&push->lock);
	OPENSSL_cleanse(push, sizeof(*push));
	free(push);
}

static void refuse(vox_http_req_t *req, ingress_t *in, const char *code,
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
static int cdr_secret(vox_http_req_t *req, struct cdr_push *push, PGresult *res,
                      char *secret, size_t secretlen)
{
	vox_error_t err = {0};

	if (!PQgetisnull(res, 0, 2)) {
		snprintf(secret, secretlen, "%s", PQgetvalue(res, 0, 2));
		return 0;
	}
	if (vox_carrier_secret_open(push->in->keyring, push->cred_id,
	                            PQgetvalue(res, 0, 4), secret, secretlen,
	                            &err) == 0)
		return 0;
	vox_log(VOX_LOG_ERROR,
	        "cannot open a carrier credential's sealed signing secret: "
	        "set the VOX_ENCRYPTION_KEY (or VOX_ENCRYPTION_OLD_KEYS) it "
	        "was sealed with",
	        "credential_id", push->cred_id, "carrier", push->carrier,
	        "error", err.message, "request_id", vox_http_request_id(req),
	        NULL);
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
static int cdr_credential(vox_http_req_t *req, struct cdr_push *push,
                          char *secret, size_t secretlen)
{
	const char *auth = vox_http_header(req, "Authorization");
	const char *token, *params[1];
	char hash[65];
	PGresult *res;
	vox_error_t err;
	vox_pg_t *pg;
	int rc;

	if (auth == NULL || *auth == '\0') {
		refuse(req, push->in, "missing_credentials",
		       "send Authorization: Bearer <carrier key>");
		return -1;
	}
	if (strncasecmp(auth, "Bearer ", 7) != 0) {
		refuse(req, push->in, "invalid_credentials",
		       "the Authorization scheme must be Bearer");
		return -1;
	}
	token = auth + 7;
	while (*token == ' ')
		token++;
	if (!vox_carrier_key_well_formed(token)) {
		refuse(req, push->in, "invalid_credentials",
		       "not a carrier key (voxc_...): account API keys and "
		       "tokens are not accepted here");
		return -1;
	}
	vox_apikey_hash_hex(token, hash);
	params[0] = hash;
	if ((pg = ingress_pg(push->in, req)) == NULL)
		return -1;
	rc = vox_pg_execp(pg, "ingress_carrier_fetch",
	                  "SELECT id, carrier, signing_secret, status, "
	                  "signing_secret_sealed FROM carrier_credentials "
	                  "WHERE key_hash = decode($1, 'hex')",
	                  1, params, &res, &err);
	vox_pg_pool_release(push->in->pg_pool, pg);
	if (rc != 0) {
		vox_http_reply_error(req, 503, "database_unavailable",
		                     err.message, NULL);
		return -1;
	}
	rc = -1;
	if (PQntuples(res) == 0) {
		refuse(req, push->in, "invalid_credentials",
		       "unknown carrier key");
	} else if (strcmp(PQgetvalue(res, 0, 3), "active") != 0) {
		refuse(req, push->in, "invalid_credentials",
		       "carrier key revoked");
	} else {
		snprintf(push->cred_id, sizeof(push->cred_id), "%s",
		         PQgetvalue(res, 0, 0));
		snprintf(push->carrier, sizeof(push->carrier), "%s",
		         PQgetvalue(res, 0, 1));
		rc = cdr_secret(req, push, res, secret, secretlen);
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
		           hex_lower(eq + 1, 64) && *nv1 < CDR_MAX_SIGNATURES) {
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
static int cdr_signature(vox_http_req_t *req, struct cdr_push *push,
                         const char *secret)
{
	const char *header = vox_http_header(req, "Vox-Signature");
	char v1[CDR_MAX_SIGNATURES][65], expected[65], t_text[16];
	const char *body;
	size_t len;
	long long skew;
	int nv1 = 0;
	bool match = false;

	if (header == NULL || *header == '\0') {
		refuse(req, push->in, "missing_signature",
		       "send Vox-Signature: t=<unix seconds>,v1=<hex "
		       "HMAC-SHA256 of \"<t>.<body>\">");
		return -1;
	}
	if (!signature_parse(header, t_text, v1, &nv1)) {
		refuse(req, push->in, "invalid_signature",
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
			memcpy(push->signature, v1[i], sizeof(push->signature));
		}
	}
	OPENSSL_cleanse(expected, sizeof(expected));
	if (!match) {
		refuse(req, push->in, "invalid_signature",
		       "no v1 signature matches the body: sign \"<t>.<raw "
		       "body>\" with the credential's signing secret");
		return -1;
	}
	skew = (long long)(vox_now_us() / 1000000) - strtoll(t_text, NULL, 10);
	if (skew > CDR_TOLERANCE_S || skew < -CDR_TOLERANCE_S) {
		refuse(req, push->in, "stale_timestamp",
		       "the signature's timestamp is more than 300 s from our "
		       "clock: sign again with the current time");
		return -1;
	}
	return 0;
}

/* What the metering worker sees as one record per element or line. */
static bool content_type_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	return ct != NULL && strncasecmp(ct, want, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static void reject(struct cdr_push *push, size_t index, const json_t *rec,
                   const char *code, const char *message)
{
	const char *id = json_is_object(rec) ? vox_json_str(rec, "id") : NULL;

	push->rejected++;
	json_array_append_new(push->errors,
	                      json_pack("{s:I, s:o, s:s, s:s}", "index",
	                                (json_int_t)index, "id",
	                                id && strlen(id) <= VOX_CDR_ID_MAX
	                                        ? json_string(id)
	                                        : json_null(),
	                                "code", code, "message", message));
}

/* The records as a JSON array: from the array body, or one per non-blank
 * NDJSON line (a line that is not JSON is null here and rejected with
 * invalid_json). NULL after answering 400/413/415. */
static json_t *cdr_records(vox_http_req_t *req, struct cdr_push *push)
{
	const char *ct = vox_http_header(req, "Content-Type");
	size_t len;
	const char *body = vox_http_body(req, &len), *p = body;
	json_t *records = NULL, *bad_lines;
	vox_error_t err;
	size_t parsed = 0;

	if (content_type_is(ct, "application/json")) {
		records =
		        vox_json_parse(body, len, VOX_JSON_DEFAULT_DEPTH, &err);
		if (records == NULL) {
			vox_http_reply_error(req, 400, "invalid_json",
			                     err.message, NULL);
			return NULL;
		}
		if (!json_is_array(records)) {
			json_decref(records);
			vox_http_reply_error(req, 400, "invalid_body",
			                     "the body must be a JSON array of "
			                     "records",
			                     NULL);
			return NULL;
		}
		goto out_count;
	}
	if (!content_type_is(ct, "application/x-ndjson")) {
		vox_http_reply_error(req, 415, "unsupported_media_type",
		                     "send application/json (an array of "
		                     "records) or application/x-ndjson (one "
		                     "record per line)",
		                     NULL);
		return NULL;
	}
	records = json_array();
	bad_lines = json_array();
	while (p < body + len && json_array_size(records) <= CDR_MAX_RECORDS) {
		const char *nl = memchr(p, '\n', (size_t)(body + len - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(body + len - p);
		size_t blank = strspn(p, " \t\r");
		json_t *rec;

		if (blank < n) {
			rec = vox_json_parse(p, n, VOX_JSON_DEFAULT_DEPTH,
			                     &err);
			if (rec != NULL)
				parsed++;
			else
				json_array_append_new(
				        bad_lines,
				        json_pack("{s:I, s:s}", "index",
				                  (json_int_t)json_array_size(
				                          records),
				                  "message", err.message));
			json_array_append_new(records, rec ? rec : json_null());
		}
		p += n + 1;
	}
	if (json_array_size(records) > 0 && parsed == 0) {
		json_decref(records);
		json_decref(bad_lines);
		vox_http_reply_error(req, 400, "invalid_json",
		                     "no line of the body is JSON: send one "
		                     "record per line",
		                     NULL);
		return NULL;
	}
	{
		size_t i;
		json_t *bad;

		json_array_foreach(bad_lines, i, bad) reject(
		        push,
		        (size_t)json_integer_value(
		                json_object_get(bad, "index")),
		        NULL, "invalid_json",
		        json_string_value(json_object_get(bad, "message")));
	}
	json_decref(bad_lines);
out_count:
	if (json_array_size(records) > CDR_MAX_RECORDS) {
		char msg[96];

		json_decref(records);
		snprintf(msg, sizeof(msg),
		         "at most %d records per request: split the batch",
		         CDR_MAX_RECORDS);
		vox_http_reply_error(
		        req, 413, "too_many_records", msg,
		        json_pack("{s:i}", "limit", CDR_MAX_RECORDS));
		return NULL;
	}
	return records;
}

/* Deletes signatures past the tolerance now and then (at most once a
 * minute per instance; a replay of them is refused as stale anyway). */
static void signatures_prune(vox_pg_t *pg)
{
	static atomic_llong last_prune;
	long long now = (long long)(vox_now_us() / 1000000),
	          last = atomic_load(&last_prune);
	vox_error_t err;

	if (now - last < CDR_PRUNE_EVERY_S ||
	    !atomic_compare_exchange_strong(&last_prune, &last, now))
		return;
	if (vox_pg_execp(pg, "ingress_cdr_sig_prune",
	                 "DELETE FROM cdr_push_signatures WHERE received_at < "
	                 "now() - interval '" CDR_SIG_KEEP "'",
	                 0, NULL, NULL, &err) != 0)
		vox_log(VOX_LOG_WARN, "cannot prune cdr_push_signatures",
		        "error", err.message, NULL);
}

/* Remembers the signature: 0, or answered (401 replayed_request / 503). */
static int signature_remember(vox_http_req_t *req, struct cdr_push *push)
{
	const char *params[] = {push->carrier, push->signature};
	vox_error_t err;
	vox_pg_t *pg = ingress_pg(push->in, req);
	int rc;

	if (pg == NULL)
		return -1;
	signatures_prune(pg);
	rc = vox_pg_execp(pg, "ingress_cdr_sig_insert",
	                  "INSERT INTO cdr_push_signatures (carrier, "
	                  "signature) VALUES ($1, $2)",
	                  2, params, NULL, &err);
	vox_pg_pool_release(push->in->pg_pool, pg);
	if (rc == VOX_ERR_CONFLICT) {
		refuse(req, push->in, "replayed_request",
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
static void signature_forget(struct cdr_push *push)
{
	const char *params[] = {push->carrier, push->signature};
	vox_error_t err;
	vox_pg_t *pg = vox_pg_pool_acquire(push->in->pg_pool, 2000, &err);
	int rc = VOX_ERR_UNAVAILABLE;

	if (pg != NULL) {
		rc = vox_pg_execp(pg, "ingress_cdr_sig_delete",
		                  "DELETE FROM cdr_push_signatures WHERE "
		                  "carrier = $1 AND signature = $2",
		                  2, params, NULL, &err);
		vox_pg_pool_release(push->in->pg_pool, pg);
	}
	if (rc != 0)
		vox_log(VOX_LOG_WARN,
		        "cannot forget a CDR push signature: the carrier's "
		        "retry will be refused as a replay",
		        "carrier", push->carrier, "error", err.message, NULL);
}

static void cdr_answer(vox_http_req_t *req, void *ctx)
{
	struct cdr_push *push = vox_http_state(req);

	(void)ctx;
	if (atomic_load(&push->failed)) {
		signature_forget(push);
		vox_counter_add(push->in->cdrs_refused, push->accepted);
		vox_log(VOX_LOG_WARN, "CDR push not accepted", "carrier",
		        push->carrier, "error", push->err.message, "request_id",
		        vox_http_request_id(req), NULL);
		vox_http_add_header(req, "Retry-After", "1");
		vox_http_reply_error(
		        req, 503, "bus_unavailable",
		        "the records could not be made durable: "
		        "retry the same request (records already "
		        "taken are deduplicated by carrier and id)",
		        json_pack("{s:s}", "reason", push->err.message));
		return;
	}
	vox_counter_add(push->in->cdrs_accepted, push->accepted);
	vox_counter_add(push->in->cdrs_rejected, push->rejected);
	vox_http_reply_json(req, 202,
	                    json_pack("{s:I, s:I, s:O}", "accepted",
	                              (json_int_t)push->accepted, "rejected",
	                              (json_int_t)push->rejected, "errors",
	                              push->errors));
}

/* One reference of pending dropped; the last one resumes the request. */
static void push_release(vox_http_req_t *req, struct cdr_push *push)
{
	if (atomic_fetch_sub(&push->pending, 1) == 1)
		vox_http_resume(req, cdr_answer);
}

/* On the producer's poll thread: it must not block. */
static void cdr_delivered(void *opaque, const vox_error_t *err,
                          int32_t partition, int64_t offset)
{
	vox_http_req_t *req = opaque;
	struct cdr_push *push = vox_http_state(req);

	(void)partition;
	(void)offset;
	if (err != NULL) {
		pthread_mutex_lock(&push->lock);
		if (!atomic_load(&push->failed))
			push->err = *err;
		atomic_store(&push->failed, true);
		pthread_mutex_unlock(&push->lock);
	}
	push_release(req, push);
}

/* Checks every record, publishes the good ones; answers later. */
static void cdr_publish(vox_http_req_t *req, struct cdr_push *push,
                        json_t *records)
{
	int64_t now_us = vox_now_us();
	vox_cdr_t *good;
	size_t i, ngood = 0;
	json_t *rec;

	good = calloc(json_array_size(records) + 1, sizeof(*good));
	if (good == NULL) {
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		return;
	}
	json_array_foreach(records, i, rec)
	{
		const char *code = "invalid_record";
		vox_error_t err;

		if (json_is_null(rec))
			continue; /* an NDJSON line that is not JSON */
		if (vox_cdr_parse(rec, now_us, &good[ngood], &code, &err) == 0)
			ngood++;
		else
			reject(push, i, rec, code, err.message);
	}
	push->accepted = ngood;
	if (ngood == 0 || signature_remember(req, push) != 0) {
		if (ngood == 0)
			cdr_answer(req, NULL);
		free(good);
		return;
	}
	atomic_store(&push->pending, ngood + 1);
	vox_http_suspend(req);
	for (i = 0; i < ngood; i++) {
		char event[1024];
		int n = vox_cdr_event(&good[i], push->carrier, "api", event,
		                      sizeof(event));
		vox_error_t err = {0};

		if (atomic_load(&push->failed) || n < 0 ||
		    vox_producer_send(push->in->producer, VOX_CDR_TOPIC,
		                      good[i].number, event, (size_t)n, NULL, 0,
		                      cdr_delivered, req, &err) != 0) {
			pthread_mutex_lock(&push->lock);
			if (!atomic_load(&push->failed))
				push->err = err;
			if (n < 0)
				vox_error_set(&push->err, VOX_ERR_INTERNAL,
				              false, "record too large");
			atomic_store(&push->failed, true);
			pthread_mutex_unlock(&push->lock);
			push_release(req, push);
		}
	}
	free(good);
	push_release(req, push); /* the guard taken above */
}

void ingress_cdr_push(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	struct cdr_push *push = calloc(1, sizeof(*push));
	struct limit_result limit;
	char secret[VOX_CARRIER_SECRET_MAX + 1];
	json_t *records;

	if (push == NULL) {
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		return;
	}
	push->in = in;
	pthread_mutex_init(&push->lock, NULL);
	push->errors = json_array();
	vox_http_set_state(req, push, cdr_push_free);
	if (cdr_credential(req, push, secret, sizeof(secret)) != 0)
		goto out;
	if (cdr_signature(req, push, secret) != 0)
		goto out;
	limiter_check(in->limiter, push->cred_id, "command",
	              in->cfg->rate_command, &limit);
	ingress_rate_headers(req, &limit);
	if (!limit.allowed) {
		vox_counter_inc(in->limited);
		vox_http_reply_error(req, 429, "rate_limited",
		                     "too many requests: slow down and retry "
		                     "after Retry-After seconds",
		                     json_pack("{s:s, s:I}", "class", "command",
		                               "limit",
		                               (json_int_t)limit.limit));
		goto out;
	}
	records = cdr_records(req, push);
	if (records == NULL)
		goto out;
	cdr_publish(req, push, records);
	json_decref(records);
out:
	OPENSSL_cleanse(secret, sizeof(secret));
}
