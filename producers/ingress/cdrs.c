/*
 * POST /v1/carrier/cdrs: carriers push call and message detail records
 * (docs/CARRIER_CDRS.md). The carrier authenticates with its own bearer
 * key and signs each request (carrier_auth.c, which records the signature
 * so a replay is refused); the signature is forgotten again when no record
 * was taken (a bad body, no good record) or publishing fails, so the same
 * request can be sent again. Each record is checked with vox_cdr_parse; the
 * good ones go to vox.cdr.raw keyed by our number, and the answer (202, with
 * the per-record reasons for the bad ones) waits until Kafka acknowledged every
 * one. No thread waits meanwhile: the connection is suspended and resumed from
 * the producer's delivery reports.
 */
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "carrier_auth.h"
#include "ingress.h"
#include "vox_cdr.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_time.h"

#define CDR_MAX_RECORDS 10000

/* One push, owned by the request (freed with it). */
struct cdr_push {
	ingress_t *in;
	carrier_caller_t who;
	json_t *errors; /* [{index, id, code, message}] */
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

static void cdr_answer(vox_http_req_t *req, void *ctx)
{
	struct cdr_push *push = vox_http_state(req);

	(void)ctx;
	if (atomic_load(&push->failed)) {
		carrier_auth_forget(push->in, &push->who);
		vox_counter_add(push->in->cdrs_refused, push->accepted);
		vox_log(VOX_LOG_WARN, "CDR push not accepted", "carrier",
		        push->who.carrier, "error", push->err.message,
		        "request_id", vox_http_request_id(req), NULL);
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
		carrier_auth_forget(push->in, &push->who);
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
	if (ngood == 0) {
		/* nothing taken: the same request may come again */
		carrier_auth_forget(push->in, &push->who);
		cdr_answer(req, NULL);
		free(good);
		return;
	}
	atomic_store(&push->pending, ngood + 1);
	vox_http_suspend(req);
	for (i = 0; i < ngood; i++) {
		char event[1024];
		int n = vox_cdr_event(&good[i], push->who.carrier, "api", event,
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
	if (carrier_auth_check(req, in, "command", in->cfg->rate_command,
	                       &push->who) != 0)
		return;
	records = cdr_records(req, push);
	if (records == NULL) {
		carrier_auth_forget(in, &push->who);
		return;
	}
	cdr_publish(req, push, records);
	json_decref(records);
}
