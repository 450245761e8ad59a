/*
 * What an account does with its endpoint's deliveries (docs/NOTIFICATIONS.md
 * "Attempts, recover, resend"): send a test message, list the attempts,
 * queue failed deliveries again (recover) or one message again (resend).
 * These only write rows: the notifications worker delivers them (the
 * vox_notify trigger wakes it at commit) and owns the retry semantics.
 * Recover and resend restart the retry schedule (attempts = 0); tries,
 * which numbers the attempt rows, keeps counting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress.h"
#include "vox_json.h"
#include "vox_time.h"

#define RECOVER_MAX_DAYS 14
#define MESSAGE_ID_MAX   64

/* Location of a 202 here: where its effect shows. */
static void attempts_location(vox_http_req_t *req, const char *id)
{
	char href[128];

	snprintf(href, sizeof(href), "/v1/webhook-endpoints/%s/attempts", id);
	vox_http_add_header(req, "Location", href);
}

/* "msg_" and the 32 hex digits of a new UUIDv7. */
static void message_id_new(char out[40])
{
	char uuid[VOX_UUID_STRLEN];
	size_t n = 4;

	vox_uuid7(uuid);
	memcpy(out, "msg_", 4);
	for (const char *p = uuid; *p; p++)
		if (*p != '-')
			out[n++] = *p;
	out[n] = '\0';
}

/* The endpoint (404 unless the caller's and not deleted) with its URL
 * checked again: what test sends to must be allowed now. */
static PGresult *endpoint_checked(vox_http_req_t *req, ingress_req_t *ir)
{
	PGresult *res = ingress_endpoint_lookup(req, ir);

	if (res != NULL &&
	    !ingress_url_allowed(req, ir->in, "url", PQgetvalue(res, 0, 1))) {
		PQclear(res);
		return NULL;
	}
	return res;
}

void ingress_endpoint_test(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	char msg_id[40], now[40];
	PGresult *ep, *res;
	json_t *body, *payload;
	char *payload_text;

	if (ir == NULL || (ep = endpoint_checked(req, ir)) == NULL)
		return;
	body = ingress_body(req, allowed, true);
	if (body == NULL || !idem_begin(req, ir))
		goto out;
	message_id_new(msg_id);
	vox_time_now_rfc3339(now, sizeof(now));
	/* sequence is the one the statement takes (jsonb_set below). */
	payload = json_pack("{s:s, s:s, s:s, s:i, s:s, s:{s:s}}", "id", msg_id,
	                    "type", "webhook.test", "timestamp", now,
	                    "sequence", 0, "account_id", ir->who.account_id,
	                    "data", "endpoint_id", PQgetvalue(ep, 0, 0));
	payload_text = vox_json_dump(payload);
	json_decref(payload);
	const char *params[] = {ir->who.account_id, PQgetvalue(ep, 0, 0),
	                        PQgetvalue(ep, 0, 1), msg_id, payload_text};
	res = ingress_query(
	        ir->in, req, "ingress_endpoint_test",
	        "WITH seq AS (INSERT INTO notification_sequences (account_id, "
	        "ordering_key, last) VALUES ($1, $2, 1) ON CONFLICT "
	        "(account_id, ordering_key) DO UPDATE SET last = "
	        "notification_sequences.last + 1 RETURNING last) INSERT INTO "
	        "notifications (account_id, webhook_endpoint_id, channel, "
	        "recipient, event_type, template, message_id, ordering_key, "
	        "sequence, payload, status, next_attempt_at) SELECT $1, "
	        "$2::uuid, 'webhook', $3, 'webhook.test', 'webhook.test', $4, "
	        "$2, seq.last, jsonb_set($5::jsonb, '{sequence}', "
	        "to_jsonb(seq.last)), 'queued', now() FROM seq RETURNING "
	        "message_id",
	        5, params);
	free(payload_text);
	if (res != NULL) {
		attempts_location(req, PQgetvalue(ep, 0, 0));
		ingress_reply(req, 202,
		              json_pack("{s:s}", "message_id",
		                        PQgetvalue(res, 0, 0)));
		PQclear(res);
	}
out:
	json_decref(body);
	PQclear(ep);
}

/* ---------------------------------------------------------------- attempts */

static json_t *int_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	               ? json_null()
	               : json_integer(
	                         strtoll(PQgetvalue(res, row, col), NULL, 10));
}

static json_t *text_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col)
	               ? json_null()
	               : json_string(PQgetvalue(res, row, col));
}

static json_t *attempt_row(const PGresult *res, int i)
{
	return json_pack(
	        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
	        text_or_null(res, i, 0), "message_id", text_or_null(res, i, 1),
	        "event_type", text_or_null(res, i, 2), "attempt",
	        int_or_null(res, i, 3), "outcome", text_or_null(res, i, 4),
	        "status_code", int_or_null(res, i, 5), "duration_ms",
	        int_or_null(res, i, 6), "error", text_or_null(res, i, 7),
	        "started_at", text_or_null(res, i, 8), "finished_at",
	        text_or_null(res, i, 9), "next_attempt_at",
	        text_or_null(res, i, 10));
}

void ingress_endpoint_attempts(vox_http_req_t *req, void *ctx)
{
	static const char *const outcomes[] = {"sending", "succeeded", "failed",
	                                       "abandoned", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *cursor, *status;
	char limit[16];
	PGresult *ep, *res;
	size_t i = 0;

	if (ir == NULL ||
	    !ingress_page_args(req, limit, sizeof(limit), &cursor))
		return;
	status = vox_http_query(req, "status");
	while (status != NULL && outcomes[i] != NULL &&
	       strcmp(outcomes[i], status) != 0)
		i++;
	if (status != NULL && outcomes[i] == NULL) {
		ingress_bad_param(
		        req, "status",
		        "one of sending, succeeded, failed, abandoned");
		return;
	}
	if ((ep = ingress_endpoint_lookup(req, ir)) == NULL)
		return;
	const char *params[] = {ir->who.account_id, PQgetvalue(ep, 0, 0),
	                        cursor, status, limit};
	/* Newest first; attempt ids are random, so the order is
	 * (started_at, id) and the cursor an attempt id. */
	res = ingress_query(
	        ir->in, req, "ingress_endpoint_attempts",
	        "SELECT a.id, n.message_id, n.event_type, a.attempt, "
	        "a.outcome, a.status_code, a.duration_ms, a.error, "
	        "vox_iso(a.started_at), vox_iso(a.finished_at), "
	        "vox_iso(a.next_attempt_at) FROM notification_attempts a JOIN "
	        "notifications n ON n.id = a.notification_id WHERE "
	        "a.account_id = $1 AND n.account_id = $1 AND "
	        "n.webhook_endpoint_id = $2::uuid AND ($4::text IS NULL OR "
	        "a.outcome = $4) AND ($3::uuid IS NULL OR (a.started_at, "
	        "a.id) < (SELECT c.started_at, c.id FROM "
	        "notification_attempts c WHERE c.id = $3::uuid AND "
	        "c.account_id = $1)) ORDER BY a.started_at DESC, a.id DESC "
	        "LIMIT $5::int",
	        5, params);
	PQclear(ep);
	if (res == NULL)
		return;
	vox_http_reply_json(
	        req, 200,
	        ingress_page(res, strtol(limit, NULL, 10) - 1, attempt_row));
	PQclear(res);
}

/* ---------------------------------------------------------------- recover */

static bool bad_time(vox_http_req_t *req, const char *field, const char *why)
{
	char msg[200];

	snprintf(msg, sizeof(msg), "%s %s", field, why);
	ingress_error(req, 400, "invalid_body", msg,
	              json_pack("{s:s}", "field", field));
	return false;
}

/* since (required) and until (optional) as RFC 3339 in the window
 * [now - 14 days, now]; false after answering 400. */
static bool recover_range(vox_http_req_t *req, json_t *body, int64_t *since,
                          int64_t *until)
{
	const char *s = vox_json_str(body, "since");
	json_t *u = json_object_get(body, "until");
	int64_t now = vox_now_us();

	*until = 0;
	if (s == NULL || vox_rfc3339_parse(s, since) != 0)
		return bad_time(req, "since",
		                "must be an RFC 3339 date-time, e.g. "
		                "2026-12-06T20:00:00Z");
	if (*since > now)
		return bad_time(req, "since", "must not be in the future");
	if (*since < now - (int64_t)RECOVER_MAX_DAYS * 86400 * 1000000)
		return bad_time(req, "since", "must be at most 14 days ago");
	if (u != NULL && !json_is_null(u) &&
	    (!json_is_string(u) ||
	     vox_rfc3339_parse(json_string_value(u), until) != 0))
		return bad_time(req, "until",
		                "must be an RFC 3339 date-time or null");
	if (*until != 0 && *until < *since)
		return bad_time(req, "until", "must not be before since");
	return true;
}

void ingress_endpoint_recover(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"since", "until", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	char since_text[40], until_text[40];
	int64_t since, until;
	PGresult *ep = NULL, *res;
	json_t *body;

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	if (!recover_range(req, body, &since, &until) ||
	    (ep = ingress_endpoint_lookup(req, ir)) == NULL ||
	    !idem_begin(req, ir))
		goto out;
	vox_rfc3339_format(since, since_text, sizeof(since_text));
	vox_rfc3339_format(until, until_text, sizeof(until_text));
	const char *params[] = {ir->who.account_id, PQgetvalue(ep, 0, 0),
	                        since_text, until != 0 ? until_text : NULL};
	res = ingress_query(
	        ir->in, req, "ingress_endpoint_recover",
	        "WITH again AS (UPDATE notifications SET status = 'queued', "
	        "attempts = 0, lease_until = NULL, next_attempt_at = now() "
	        "WHERE account_id = $1 AND webhook_endpoint_id = $2::uuid AND "
	        "status IN ('failed', 'cancelled') AND created_at >= "
	        "$3::timestamptz AND "
	        "($4::timestamptz IS NULL OR created_at <= $4::timestamptz) "
	        "RETURNING 1) SELECT count(*) FROM again",
	        4, params);
	if (res != NULL) {
		attempts_location(req, PQgetvalue(ep, 0, 0));
		ingress_reply(
		        req, 202,
		        json_pack("{s:I}", "requeued",
		                  (json_int_t)strtoll(PQgetvalue(res, 0, 0),
		                                      NULL, 10)));
		PQclear(res);
	}
out:
	PQclear(ep);
	json_decref(body);
}

/* ---------------------------------------------------------------- resend */

static bool message_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	return n > 0 && n <= MESSAGE_ID_MAX &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                  "0123456789_-") == n;
}

void ingress_endpoint_resend(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *msg_id = vox_http_param(req, "msg_id");
	PGresult *ep, *res;
	json_t *body;

	if (ir == NULL || (ep = ingress_endpoint_lookup(req, ir)) == NULL)
		return;
	body = ingress_body(req, allowed, true);
	if (body == NULL)
		goto out;
	if (!message_id_ok(msg_id)) {
		ingress_error(req, 404, "message_not_found",
		              "no delivery of this message to this endpoint",
		              NULL);
		goto out;
	}
	if (!idem_begin(req, ir))
		goto out;
	const char *params[] = {ir->who.account_id, PQgetvalue(ep, 0, 0),
	                        msg_id};
	res = ingress_query(
	        ir->in, req, "ingress_endpoint_resend",
	        "WITH target AS (SELECT id, status FROM notifications WHERE "
	        "account_id = $1 AND webhook_endpoint_id = $2::uuid AND "
	        "message_id = $3 ORDER BY created_at DESC LIMIT 1 FOR UPDATE), "
	        "again AS (UPDATE notifications n SET status = 'queued', "
	        "attempts = 0, lease_until = NULL, next_attempt_at = now() "
	        "FROM target WHERE n.id = target.id AND target.status <> "
	        "'queued' RETURNING n.id) SELECT target.status FROM target",
	        3, params);
	if (res == NULL)
		goto out;
	if (PQntuples(res) == 0) {
		ingress_error(req, 404, "message_not_found",
		              "no delivery of this message to this endpoint",
		              NULL);
	} else if (strcmp(PQgetvalue(res, 0, 0), "queued") == 0) {
		ingress_error(
		        req, 409, "already_queued",
		        "this message is queued for this endpoint already",
		        json_pack("{s:s}", "current_status", "queued"));
	} else {
		attempts_location(req, PQgetvalue(ep, 0, 0));
		ingress_reply(req, 202,
		              json_pack("{s:s}", "message_id", msg_id));
	}
	PQclear(res);
out:
	json_decref(body);
	PQclear(ep);
}
