/*
 * payments: payment methods, charges, retries and the gateway's events
 * (docs/BILLING.md "Payments").
 *
 * No call to the payment gateway is ever made inside a transaction: the
 * handlers (in the batch's transaction) only record what is to be done,
 * and the tick, on its own connection, does the calls and records each
 * result in a transaction of its own:
 *
 *   claim    one statement: the due payments' next_attempt_at is pushed
 *            a lease ahead (FOR UPDATE SKIP LOCKED), so no other worker
 *            takes them while this one calls;
 *   attempt  the payment's open attempt (started, or error: a call that
 *            never got an answer) is reused with its Idempotency-Key, or a
 *            new one is committed `started` with the key
 *            "<payment id>:<attempt no>" BEFORE the call: a worker killed
 *            after the call and before recording leaves it `started`, and
 *            whoever takes the payment after the lease calls again with the
 *            same key, so the gateway answers the first charge instead of
 *            taking a second one;
 *   call     vox_gateway_charge (its own retries reuse the key too), or
 *            vox_gateway_intent_get for a processing intent;
 *   record   lock the invoice, then the payment and the attempt; apply the
 *            outcome only if they are still open (a webhook may have
 *            settled them meanwhile).
 *
 * Outcomes (apply_outcome, shared with the gateway's webhooks):
 * succeeded -> the payment succeeded, the invoice's amount_paid_micros
 * grows by what the gateway took and inv_invoice_settle decides whether it
 * is paid; processing -> polled every POLL_S (or a webhook); a soft
 * decline -> the next attempt VOX_PAYMENT_RETRY_DAYS[k] days after the
 * first (a day = VOX_BILLING_DAY_S s), failed after the last; a hard
 * decline -> failed at once; an error still retriable after the client's
 * attempts -> the same attempt again after a backoff. Each decline emits
 * invoice.payment_failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "invoicing.h"
#include "vox_event.h"
#include "vox_fault.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_money.h"
#include "vox_ops.h"
#include "vox_pg.h"
#include "vox_uuid.h"

#define MAX_RETRY_DAYS 32
#define POLL_S         5   /* a processing intent is asked about this often */
#define BACKOFF_MAX_S  300 /* an unreachable gateway: at most this between */

/* ------------------------------------------------------------ helpers */

/* VOX_PAYMENT_RETRY_DAYS: "1,3,5,7" -> {1,3,5,7}; the number of entries,
 * or -1 when it is not a list of increasing days. */
static int retry_days(const char *text, long out[MAX_RETRY_DAYS])
{
	const char *p = text ? text : "";
	int n = 0;

	while (*p != '\0') {
		char *end;
		long d = strtol(p, &end, 10);

		if (end == p || d < 0 || d > 3650 || n == MAX_RETRY_DAYS ||
		    (n > 0 && d <= out[n - 1]))
			return -1;
		out[n++] = d;
		p = end;
		while (*p == ' ')
			p++;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return -1;
	}
	return n;
}

static int64_t get_i64(PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Moves operation op_id (nothing when NULL or "") to status. */
static int op_finish_rc(vox_pg_t *pg, const char *op_id, const char *account,
                        const char *kind, const char *subject,
                        const char *status, json_t *result, const char *code,
                        const char *message, vox_error_t *err)
{
	vox_op_t op = {0};
	char *text;
	int rc;

	if (op_id == NULL || *op_id == '\0') {
		json_decref(result);
		return 0;
	}
	text = result ? vox_json_dump(result) : NULL;
	json_decref(result);
	op.id = op_id;
	op.account_id = account;
	op.kind = kind;
	op.subject = subject;
	rc = vox_op_finish(pg, &op, status, text, code, message, err);
	free(text);
	return rc;
}

/* ------------------------------------------------------------ outcomes */

enum outcome_kind {
	OUT_SUCCEEDED = 1,
	OUT_PROCESSING,
	OUT_DECLINED,
	OUT_RETRY,   /* no answer: the same attempt again later */
	OUT_REFUSED, /* the gateway refused the request for good */
};

struct outcome {
	enum outcome_kind kind;
	const char *intent_id;    /* "" or NULL when unknown */
	const char *decline_code; /* declined / refused */
	bool hard;
	const char *message;
	int64_t amount_minor; /* succeeded: what the gateway took; 0 unknown */
};

/* What an open payment and its attempt look like, locked. */
struct payment_row {
	char id[40], invoice_id[40], account_id[40], status[16];
	char attempt_status[16], operation_id[40], currency[4];
	int64_t amount_micros;
	int attempt_no;
	long long first_attempt_s; /* epoch s of the first attempt's start */
	long long attempt_started_s;
	long long now_s;
};

/* Locks the invoice, then the payment and its attempt (the lock order of
 * every transaction on an invoice). 1 when found, 0 when not. */
static int payment_lock(vox_pg_t *pg, const char *payment_id, int attempt_no,
                        struct payment_row *p, vox_error_t *err)
{
	char no[16];
	const char *params[] = {payment_id, no};
	PGresult *res;
	int rc;

	snprintf(no, sizeof(no), "%d", attempt_no);
	rc = vox_pg_execp(
	        pg, "pay_lock_invoice",
	        "SELECT 1 FROM invoices WHERE id = (SELECT invoice_id "
	        "FROM payments WHERE id = $1::uuid) FOR UPDATE",
	        1, params, NULL, err);
	if (rc != 0)
		return rc;
	rc = vox_pg_execp(
	        pg, "pay_lock_payment",
	        "SELECT p.invoice_id, p.account_id, p.status, a.status, "
	        "coalesce(p.operation_id::text, ''), p.currency, "
	        "p.amount_micros, extract(epoch FROM (SELECT min(started_at) "
	        "FROM payment_attempts f WHERE f.payment_id = p.id))::bigint, "
	        "extract(epoch FROM a.started_at)::bigint, "
	        "extract(epoch FROM now())::bigint FROM payments p JOIN "
	        "payment_attempts a ON a.payment_id = p.id AND a.attempt_no = "
	        "$2::int WHERE p.id = $1::uuid FOR UPDATE OF p, a",
	        2, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return 0;
	}
	memset(p, 0, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "%s", payment_id);
	snprintf(p->invoice_id, sizeof(p->invoice_id), "%s",
	         PQgetvalue(res, 0, 0));
	snprintf(p->account_id, sizeof(p->account_id), "%s",
	         PQgetvalue(res, 0, 1));
	snprintf(p->status, sizeof(p->status), "%s", PQgetvalue(res, 0, 2));
	snprintf(p->attempt_status, sizeof(p->attempt_status), "%s",
	         PQgetvalue(res, 0, 3));
	snprintf(p->operation_id, sizeof(p->operation_id), "%s",
	         PQgetvalue(res, 0, 4));
	snprintf(p->currency, sizeof(p->currency), "%s", PQgetvalue(res, 0, 5));
	p->amount_micros = get_i64(res, 0, 6);
	p->first_attempt_s = get_i64(res, 0, 7);
	p->attempt_started_s = get_i64(res, 0, 8);
	p->now_s = get_i64(res, 0, 9);
	p->attempt_no = attempt_no;
	PQclear(res);
	return 1;
}

/* The next attempt's time after soft decline number attempt_no (epoch s),
 * or 0 when the schedule is over. */
static long long next_retry_s(const struct invoicing_ctx *ic,
                              const struct payment_row *p)
{
	long days[MAX_RETRY_DAYS];
	int n = retry_days(ic->retry_days, days);
	long long at;

	if (n <= 0 || p->attempt_no > n)
		return 0;
	at = p->first_attempt_s +
	     (long long)days[p->attempt_no - 1] * ic->day_s;
	return at > p->now_s ? at : p->now_s;
}

static int succeeded(vox_pg_t *pg, const struct payment_row *p,
                     const struct outcome *o, const char *traceparent,
                     vox_error_t *err)
{
	char no[16], paid[24];
	int64_t micros = p->amount_micros;
	const char *intent =
	        o->intent_id && *o->intent_id ? o->intent_id : NULL;
	int rc;

	if (o->amount_minor > 0 &&
	    !vox_money_from_minor(o->amount_minor, p->currency, &micros))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "payment %s: amount out of range", p->id);
	if (micros != p->amount_micros)
		vox_log(VOX_LOG_WARN,
		        "payments: the gateway took another amount than asked",
		        "payment_id", p->id, "intent_id", intent ? intent : "",
		        NULL);
	snprintf(no, sizeof(no), "%d", p->attempt_no);
	snprintf(paid, sizeof(paid), "%lld", (long long)micros);
	const char *params[] = {p->id, no, intent};
	const char *pay[] = {p->id, intent};
	const char *inv[] = {paid, p->invoice_id};
	rc = vox_pg_execp(
	        pg, "pay_ok_attempt",
	        "UPDATE payment_attempts SET status = 'succeeded', "
	        "gateway_intent_id = coalesce($3, gateway_intent_id), "
	        "finished_at = now(), decline_code = NULL WHERE "
	        "payment_id = $1::uuid AND attempt_no = $2::int",
	        3, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "pay_ok_payment",
		        "UPDATE payments SET status = 'succeeded', "
		        "gateway_payment_id = coalesce($2, "
		        "gateway_payment_id), "
		        "succeeded_at = now(), next_attempt_at = NULL, "
		        "failure_code = NULL, failure_reason = NULL, "
		        "decline_hard = NULL, operation_id = NULL WHERE id = "
		        "$1::uuid",
		        2, pay, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(pg, "pay_ok_invoice",
		                  "UPDATE invoices SET amount_paid_micros = "
		                  "amount_paid_micros + $1::bigint WHERE id = "
		                  "$2::uuid",
		                  2, inv, NULL, err);
	if (rc == 0)
		rc = inv_invoice_settle(pg, p->invoice_id, traceparent, err);
	if (rc == 0)
		rc = op_finish_rc(pg, p->operation_id, p->account_id,
		                  "invoice.pay", p->invoice_id, "completed",
		                  json_pack("{s:s, s:s, s:s?}", "payment_id",
		                            p->id, "status", "succeeded",
		                            "intent_id", intent),
		                  NULL, NULL, err);
	if (rc == 0)
		vox_log(VOX_LOG_INFO, "payment succeeded", "payment_id", p->id,
		        "invoice_id", p->invoice_id, "intent_id",
		        intent ? intent : "", NULL);
	return rc;
}

static int processing(vox_pg_t *pg, const struct payment_row *p,
                      const struct outcome *o, vox_error_t *err)
{
	char no[16], poll[16];
	const char *intent =
	        o->intent_id && *o->intent_id ? o->intent_id : NULL;
	const char *params[] = {p->id, no, intent};
	const char *pay[] = {p->id, intent, poll};
	int rc;

	snprintf(no, sizeof(no), "%d", p->attempt_no);
	snprintf(poll, sizeof(poll), "%d", POLL_S);
	rc = vox_pg_execp(
	        pg, "pay_proc_attempt",
	        "UPDATE payment_attempts SET status = 'processing', "
	        "gateway_intent_id = coalesce($3, gateway_intent_id) "
	        "WHERE payment_id = $1::uuid AND attempt_no = $2::int",
	        3, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "pay_proc_payment",
		        "UPDATE payments SET status = 'processing', "
		        "gateway_payment_id = coalesce($2, "
		        "gateway_payment_id), "
		        "next_attempt_at = now() + make_interval(secs => "
		        "$3::int) WHERE id = $1::uuid",
		        3, pay, NULL, err);
	return rc;
}

/* A decline, or the gateway's final refusal (refused: code given). */
static int declined(vox_pg_t *pg, struct invoicing_ctx *ic,
                    const struct payment_row *p, const struct outcome *o,
                    const char *traceparent, vox_error_t *err)
{
	char no[16], next[24];
	const char *code = o->decline_code && *o->decline_code
	                           ? o->decline_code
	                           : "generic_decline";
	const char *intent =
	        o->intent_id && *o->intent_id ? o->intent_id : NULL;
	const char *attempt_status =
	        o->kind == OUT_REFUSED ? "error" : "declined";
	long long at = o->hard ? 0 : next_retry_s(ic, p);
	json_t *data;
	int rc;

	snprintf(no, sizeof(no), "%d", p->attempt_no);
	snprintf(next, sizeof(next), "%lld", at);
	const char *msg = o->message ? o->message : "";
	const char *params[] = {p->id, no, intent, code, msg, attempt_status};
	const char *pay[] = {p->id, code, msg, at > 0 ? next : NULL,
	                     o->hard ? "t" : "f"};
	rc = vox_pg_execp(
	        pg, "pay_decl_attempt",
	        "UPDATE payment_attempts SET status = $6, "
	        "gateway_intent_id = coalesce($3, gateway_intent_id), "
	        "decline_code = $4, message = left($5, 500), "
	        "finished_at = now() WHERE payment_id = $1::uuid AND "
	        "attempt_no = $2::int",
	        6, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "pay_decl_payment",
		        "UPDATE payments SET status = CASE WHEN $4::bigint IS "
		        "NULL THEN 'failed' ELSE 'pending' END, "
		        "next_attempt_at = to_timestamp($4::bigint), "
		        "failure_code = $2, failure_reason = left($3, 500), "
		        "decline_hard = $5::boolean, operation_id = NULL "
		        "WHERE id = $1::uuid",
		        5, pay, NULL, err);
	if (rc != 0)
		return rc;
	data = json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:s?, s:o}",
	                 "invoice_id", p->invoice_id, "payment_id", p->id,
	                 "account_id", p->account_id, "decline_code", code,
	                 "hard", o->hard, "attempt", p->attempt_no, "message",
	                 o->message, "next_attempt_at",
	                 at > 0 ? json_integer(0) : json_null());
	if (data != NULL && at > 0) {
		/* RFC 3339 UTC of the next attempt */
		time_t t = (time_t)at;
		struct tm tm;
		char iso[32];

		gmtime_r(&t, &tm);
		strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_set_new(data, "next_attempt_at", json_string(iso));
	}
	rc = vox_event_emit(pg, "invoice.payment_failed", p->account_id,
	                    p->invoice_id, p->account_id, traceparent, data,
	                    err);
	if (rc == 0)
		rc = op_finish_rc(
		        pg, p->operation_id, p->account_id, "invoice.pay",
		        p->invoice_id, "failed", NULL,
		        o->kind == OUT_REFUSED ? code : "payment_declined",
		        o->message && *o->message ? o->message : code, err);
	vox_log(VOX_LOG_INFO, "payment declined", "payment_id", p->id,
	        "invoice_id", p->invoice_id, "decline_code", code, "hard",
	        o->hard ? "true" : "false", "retry", at > 0 ? next : "none",
	        NULL);
	return rc;
}

/* No answer after the client's attempts: the same attempt (same key)
 * again after a backoff that grows with the time it has been trying. */
static int retry_later(vox_pg_t *pg, const struct payment_row *p,
                       const struct outcome *o, vox_error_t *err)
{
	long long waited = p->now_s - p->attempt_started_s, backoff;
	char no[16], secs[24];
	const char *params[] = {p->id, no, o->message ? o->message : ""};
	const char *pay[] = {p->id, secs};
	int rc;

	backoff = waited < 1               ? 1
	          : waited > BACKOFF_MAX_S ? BACKOFF_MAX_S
	                                   : waited;
	snprintf(no, sizeof(no), "%d", p->attempt_no);
	snprintf(secs, sizeof(secs), "%lld", backoff);
	rc = vox_pg_execp(pg, "pay_retry_attempt",
	                  "UPDATE payment_attempts SET status = 'error', "
	                  "message = left($3, 500) WHERE payment_id = $1::uuid "
	                  "AND attempt_no = $2::int",
	                  3, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "pay_retry_payment",
		        "UPDATE payments SET next_attempt_at = now() + "
		        "make_interval(secs => $2::int) WHERE id = "
		        "$1::uuid",
		        2, pay, NULL, err);
	return rc;
}

/* Applies o to attempt attempt_no of payment_id if both are still open;
 * in the caller's transaction. *applied (optional) says whether it did,
 * and why not in note[notelen]. */
static int apply_outcome(vox_pg_t *pg, struct invoicing_ctx *ic,
                         const char *payment_id, int attempt_no,
                         const struct outcome *o, const char *traceparent,
                         bool *applied, char *note, size_t notelen,
                         vox_error_t *err)
{
	struct payment_row p;
	int rc = payment_lock(pg, payment_id, attempt_no, &p, err);

	if (applied)
		*applied = false;
	if (rc < 0)
		return rc;
	if (rc == 0) {
		snprintf(note, notelen, "no attempt %d of payment %s",
		         attempt_no, payment_id);
		return 0;
	}
	if ((strcmp(p.status, "pending") != 0 &&
	     strcmp(p.status, "processing") != 0) ||
	    strcmp(p.attempt_status, "succeeded") == 0 ||
	    strcmp(p.attempt_status, "declined") == 0) {
		snprintf(note, notelen,
		         "already settled: payment %s, attempt %d %s", p.status,
		         attempt_no, p.attempt_status);
		return 0;
	}
	if (o->kind == OUT_PROCESSING &&
	    strcmp(p.attempt_status, "processing") == 0) {
		snprintf(note, notelen, "already processing");
		return 0;
	}
	if (applied)
		*applied = true;
	switch (o->kind) {
	case OUT_SUCCEEDED:
		return succeeded(pg, &p, o, traceparent, err);
	case OUT_PROCESSING:
		return processing(pg, &p, o, err);
	case OUT_DECLINED:
	case OUT_REFUSED:
		return declined(pg, ic, &p, o, traceparent, err);
	case OUT_RETRY:
		if (strcmp(p.attempt_status, "processing") == 0) {
			/* a poll that failed: poll again later */
			return vox_pg_execp(
			        pg, "pay_repoll",
			        "UPDATE payments SET next_attempt_at = now() + "
			        "interval '5 seconds' WHERE id = $1::uuid",
			        1, (const char *const[]){payment_id}, NULL,
			        err);
		}
		return retry_later(pg, &p, o, err);
	}
	return 0;
}

/* ------------------------------------------------------------ payments */

/* A pending payment of the invoice for its amount due, charged by the
 * tick from now, with the account's default active method; op_id NULL or
 * the operation to finish with its first outcome. 1 made, 0 none (an
 * open one exists), VOX_ERR_NOT_FOUND no default method. */
static int payment_make(vox_pg_t *pg, const char *invoice_id, const char *op_id,
                        char payment_id[40], vox_error_t *err)
{
	const char *params[] = {invoice_id, op_id};
	PGresult *res;
	int rc;

	rc = vox_pg_execp(
	        pg, "pay_make",
	        "WITH inv AS (SELECT id, account_id, amount_due_micros, "
	        "currency FROM invoices WHERE id = $1::uuid AND "
	        "amount_due_micros > 0 AND status IN ('finalized', "
	        "'uncollectible')), pm AS (SELECT m.id FROM payment_methods m, "
	        "inv WHERE m.account_id = inv.account_id AND m.is_default AND "
	        "m.deleted_at IS NULL AND m.status = 'active'), n AS (SELECT "
	        "gen_random_uuid() AS id), ins AS (INSERT INTO payments (id, "
	        "account_id, invoice_id, payment_method_id, amount_micros, "
	        "currency, status, gateway, gateway_request_key, "
	        "next_attempt_at, operation_id) SELECT n.id, inv.account_id, "
	        "inv.id, pm.id, inv.amount_due_micros, inv.currency, "
	        "'pending', 'sandbox', n.id::text, now(), $2::uuid FROM inv, "
	        "pm, n ON CONFLICT (invoice_id) WHERE status IN ('pending', "
	        "'processing') DO NOTHING RETURNING id) SELECT (SELECT "
	        "count(*) "
	        "FROM inv), (SELECT count(*) FROM pm), (SELECT id::text FROM "
	        "ins)",
	        2, params, &res, err);
	if (rc != 0)
		return rc;
	if (strcmp(PQgetvalue(res, 0, 0), "0") == 0)
		rc = vox_error_set(err, VOX_ERR_CONFLICT, false,
		                   "invoice %s has nothing to pay", invoice_id);
	else if (strcmp(PQgetvalue(res, 0, 1), "0") == 0)
		rc = vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                   "the account has no active default payment "
		                   "method");
	else if (PQgetisnull(res, 0, 2))
		rc = 0;
	else {
		snprintf(payment_id, 40, "%s", PQgetvalue(res, 0, 2));
		rc = 1;
	}
	PQclear(res);
	return rc;
}

int inv_payment_start(vox_pg_t *pg, const char *invoice_id,
                      const char *traceparent, vox_error_t *err)
{
	char payment_id[40] = "";
	int rc;

	(void)traceparent;
	rc = payment_make(pg, invoice_id, NULL, payment_id, err);
	if (rc == VOX_ERR_NOT_FOUND || rc == VOX_ERR_CONFLICT) {
		/* no method: dunning takes the invoice; nothing due: nothing */
		vox_log(VOX_LOG_INFO, "payments: invoice not charged",
		        "invoice_id", invoice_id, "reason", err->message, NULL);
		return 0;
	}
	return rc < 0 ? rc : 0;
}

int inv_pay(vox_pg_t *pg, const vox_message_t *msg, void *ctx, vox_error_t *err)
{
	const char *invoice = vox_json_str(msg->data, "invoice_id");
	const char *op = vox_json_str(msg->data, "operation_id");
	char payment_id[40] = "";
	vox_error_t why;
	int rc;

	(void)ctx;
	if (inv_invoice_cmd_validate(msg->data, &why) != 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "vox.invoice.pay_requested: %s",
		                     why.message);
	if (msg->account_id == NULL || !vox_uuid_valid(msg->account_id))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "vox.invoice.pay_requested: accountid and "
		                     "data.invoice_id must be UUIDs");
	const char *params[] = {invoice, msg->account_id};
	PGresult *res;

	/* the invoice first (lock order), and only the account's own */
	rc = vox_pg_execp(pg, "pay_req_lock",
	                  "SELECT status FROM invoices WHERE id = $1::uuid AND "
	                  "account_id = $2::uuid FOR UPDATE",
	                  2, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return op_finish_rc(pg, op, msg->account_id, "invoice.pay",
		                    invoice, "failed", NULL, "not_found",
		                    "no such invoice", err);
	}
	PQclear(res);
	rc = payment_make(pg, invoice, op, payment_id, &why);
	if (rc == 1)
		return op_finish_rc(
		        pg, op, msg->account_id, "invoice.pay", invoice,
		        "running", json_pack("{s:s}", "payment_id", payment_id),
		        NULL, NULL, err);
	if (rc == 0)
		return op_finish_rc(
		        pg, op, msg->account_id, "invoice.pay", invoice,
		        "failed", NULL, "payment_in_progress",
		        "a payment of this invoice is in flight", err);
	if (rc == VOX_ERR_NOT_FOUND)
		return op_finish_rc(pg, op, msg->account_id, "invoice.pay",
		                    invoice, "failed", NULL,
		                    "no_payment_method", why.message, err);
	if (rc == VOX_ERR_CONFLICT)
		return op_finish_rc(pg, op, msg->account_id, "invoice.pay",
		                    invoice, "failed", NULL,
		                    "invoice_not_payable", why.message, err);
	*err = why;
	return rc;
}

/* ------------------------------------------------------------ the tick:
 * charges */

struct due {
	char id[40], status[16], invoice_id[40], account_id[40];
	char currency[4], token[128], intent[128];
	int64_t amount_micros;
};

/* The open attempt of a pending payment (reused with its key), or a new
 * one committed `started` before any call. 0 with no/key filled. */
static int attempt_open(vox_pg_t *pg, const char *payment_id, int *no,
                        char key[128], vox_error_t *err)
{
	const char *params[] = {payment_id};
	PGresult *res;
	int rc;

	rc = vox_pg_execp(
	        pg, "pay_attempt_open",
	        "WITH open AS (SELECT attempt_no, idempotency_key FROM "
	        "payment_attempts WHERE payment_id = $1::uuid AND status IN "
	        "('started', 'error') ORDER BY attempt_no DESC LIMIT 1), ins "
	        "AS (INSERT INTO payment_attempts (payment_id, attempt_no, "
	        "idempotency_key) SELECT p.id, p.attempts + 1, p.id::text || "
	        "':' || (p.attempts + 1) FROM payments p WHERE p.id = "
	        "$1::uuid AND p.status = 'pending' AND NOT EXISTS (SELECT 1 "
	        "FROM open) RETURNING attempt_no, idempotency_key), upd AS "
	        "(UPDATE payments p SET attempts = ins.attempt_no FROM ins "
	        "WHERE p.id = $1::uuid RETURNING 1) SELECT attempt_no, "
	        "idempotency_key FROM open UNION ALL SELECT attempt_no, "
	        "idempotency_key FROM ins",
	        1, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_CONFLICT, false,
		                     "payment %s is no longer pending",
		                     payment_id);
	}
	*no = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	snprintf(key, 128, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

/* The attempt a processing payment waits on. */
static int attempt_processing(vox_pg_t *pg, const char *payment_id, int *no,
                              char intent[128], vox_error_t *err)
{
	const char *params[] = {payment_id};
	PGresult *res;
	int rc;

	rc = vox_pg_execp(pg, "pay_attempt_proc",
	                  "SELECT attempt_no, coalesce(gateway_intent_id, '') "
	                  "FROM payment_attempts WHERE payment_id = $1::uuid "
	                  "AND status = 'processing' ORDER BY attempt_no DESC "
	                  "LIMIT 1",
	                  1, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) != 1 || *PQgetvalue(res, 0, 1) == '\0') {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                     "payment %s: no processing intent",
		                     payment_id);
	}
	*no = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	snprintf(intent, 128, "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

struct record_arg {
	struct invoicing_ctx *ic;
	const char *payment_id;
	int attempt_no;
	const struct outcome *o;
};

static int record_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct record_arg *ra = arg;
	char note[200] = "";
	char tp[VOX_TRACEPARENT_LEN];

	vox_traceparent_new(tp, sizeof(tp));
	return apply_outcome(pg, ra->ic, ra->payment_id, ra->attempt_no, ra->o,
	                     tp, NULL, note, sizeof(note), err);
}

/* The client's answer as an outcome. */
static void outcome_of(int rc, const vox_gateway_charge_t *c,
                       const vox_error_t *err, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	if (rc == 0) {
		o->intent_id = c->intent_id;
		o->amount_minor = c->amount_minor;
		o->kind = c->outcome == VOX_CHARGE_SUCCEEDED    ? OUT_SUCCEEDED
		          : c->outcome == VOX_CHARGE_PROCESSING ? OUT_PROCESSING
		                                                : OUT_DECLINED;
		o->decline_code = c->decline_code;
		o->hard = c->hard;
		o->message = c->message;
		return;
	}
	o->message = err->message;
	if (err->retriable || err->fatal) {
		/* no answer, or our credentials refused (fatal: nothing works
		 * until an operator fixes them; the attempt waits) */
		o->kind = OUT_RETRY;
		return;
	}
	o->kind = OUT_REFUSED;
	o->hard = true;
	o->decline_code = rc == VOX_ERR_NOT_FOUND ? "invalid_payment_method"
	                                          : "gateway_refused";
}

static void charge_one(vox_pg_t *pg, struct invoicing_ctx *ic,
                       const struct due *d)
{
	vox_gateway_charge_t c;
	struct outcome o;
	struct record_arg ra = {.ic = ic, .payment_id = d->id, .o = &o};
	vox_error_t err, gerr;
	char key[128];
	int64_t minor;
	int rc;

	if (strcmp(d->status, "processing") == 0) {
		if (attempt_processing(pg, d->id, &ra.attempt_no, key, &err) !=
		    0) {
			vox_log(VOX_LOG_WARN, "payments: poll", "payment_id",
			        d->id, "error", err.message, NULL);
			return;
		}
		rc = vox_gateway_intent_get(ic->gateway, key, &c, &gerr);
	} else {
		if (attempt_open(pg, d->id, &ra.attempt_no, key, &err) != 0) {
			vox_log(VOX_LOG_WARN, "payments: attempt", "payment_id",
			        d->id, "error", err.message, NULL);
			return;
		}
		if (!vox_money_to_minor(d->amount_micros, d->currency, &minor))
			minor = 0; /* refused by the client: recorded below */
		rc = vox_gateway_charge(ic->gateway, key, d->token, minor,
		                        d->currency, d->invoice_id, d->id,
		                        d->account_id, &c, &gerr);
		/* killed here: the attempt stays `started`, the next worker
		 * calls again with the same key */
		vox_fault_point("payments.after_charge");
	}
	outcome_of(rc, &c, &gerr, &o);
	if (o.kind == OUT_RETRY)
		vox_log(gerr.fatal ? VOX_LOG_ERROR : VOX_LOG_WARN,
		        "payments: the gateway did not answer; the same "
		        "attempt "
		        "again later",
		        "payment_id", d->id, "error", gerr.message, NULL);
	if (vox_pg_transaction(pg, record_tx, &ra, &err) != 0)
		/* the attempt stays open: after the lease, the same key again
		 */
		vox_log(VOX_LOG_WARN,
		        "payments: recording a gateway answer "
		        "failed",
		        "payment_id", d->id, "error", err.message, NULL);
}

static void charge_due(vox_pg_t *pg, struct invoicing_ctx *ic)
{
	char limit[24], lease[24];
	const char *params[] = {limit, lease};
	long lease_s;
	struct due *due;
	vox_error_t err;
	PGresult *res;
	int n;

	/* longer than a call can take (3 attempts and their backoff): the
	 * time after which a worker killed in the middle is replaced */
	lease_s = 2 * (3 * ic->payment_timeout_ms) / 1000 + 5;
	snprintf(limit, sizeof(limit), "%ld", ic->tick_batch);
	snprintf(lease, sizeof(lease), "%ld", lease_s);
	if (vox_pg_execp(
	            pg, "pay_claim",
	            "UPDATE payments p SET next_attempt_at = now() + "
	            "make_interval(secs => $2::int) FROM (SELECT id FROM "
	            "payments WHERE status IN ('pending', 'processing') AND "
	            "next_attempt_at <= now() ORDER BY next_attempt_at LIMIT "
	            "$1::int FOR UPDATE SKIP LOCKED) due WHERE p.id = due.id "
	            "RETURNING p.id, p.status, p.invoice_id, p.account_id, "
	            "p.currency, coalesce((SELECT gateway_token FROM "
	            "payment_methods m WHERE m.id = p.payment_method_id), ''), "
	            "p.amount_micros",
	            2, params, &res, &err) != 0) {
		vox_log(VOX_LOG_WARN, "payments: claiming due payments failed",
		        "error", err.message, NULL);
		return;
	}
	n = PQntuples(res);
	due = n > 0 ? calloc((size_t)n, sizeof(*due)) : NULL;
	for (int i = 0; due != NULL && i < n; i++) {
		snprintf(due[i].id, sizeof(due[i].id), "%s",
		         PQgetvalue(res, i, 0));
		snprintf(due[i].status, sizeof(due[i].status), "%s",
		         PQgetvalue(res, i, 1));
		snprintf(due[i].invoice_id, sizeof(due[i].invoice_id), "%s",
		         PQgetvalue(res, i, 2));
		snprintf(due[i].account_id, sizeof(due[i].account_id), "%s",
		         PQgetvalue(res, i, 3));
		snprintf(due[i].currency, sizeof(due[i].currency), "%s",
		         PQgetvalue(res, i, 4));
		snprintf(due[i].token, sizeof(due[i].token), "%s",
		         PQgetvalue(res, i, 5));
		due[i].amount_micros = get_i64(res, i, 6);
	}
	PQclear(res);
	for (int i = 0; due != NULL && i < n; i++)
		charge_one(pg, ic, &due[i]);
	free(due);
}

/* ------------------------------------------------------------ payment methods
 */

/* The attach command: the row is the ingress's (pending); what the command
 * asks (operation, default) is kept on it for the tick, or applied at
 * once when the tick already read the token. */
int inv_payment_method_attach(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                              vox_error_t *err)
{
	const char *pm = vox_json_str(msg->data, "payment_method_id");
	const char *op = vox_json_str(msg->data, "operation_id");
	const json_t *def = json_object_get(msg->data, "default");
	char status[16], reason[64];
	vox_error_t why;
	PGresult *res;
	int rc;

	(void)ctx;
	if (inv_attach_validate(msg->data, &why) != 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "vox.payment_method.attach_requested: %s",
		                     why.message);
	if (msg->account_id == NULL || !vox_uuid_valid(msg->account_id))
		return vox_error_set(
		        err, VOX_ERR_INVALID, false,
		        "vox.payment_method.attach_requested: "
		        "accountid and data.payment_method_id must "
		        "be UUIDs, default a boolean");
	const char *params[] = {pm, msg->account_id, op,
	                        json_is_true(def) ? "t" : "f"};
	rc = vox_pg_execp(
	        pg, "pm_attach_mark",
	        "UPDATE payment_methods SET attach_operation_id = "
	        "$3::uuid, attach_default = $4::boolean WHERE id = "
	        "$1::uuid AND account_id = $2::uuid RETURNING status, "
	        "coalesce(failure_reason, '')",
	        4, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return op_finish_rc(pg, op, msg->account_id,
		                    "payment_method.attach", pm, "failed", NULL,
		                    "payment_method_not_found",
		                    "no such payment method", err);
	}
	snprintf(status, sizeof(status), "%s", PQgetvalue(res, 0, 0));
	snprintf(reason, sizeof(reason), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	if (strcmp(status, "pending") == 0)
		return op_finish_rc(pg, op, msg->account_id,
		                    "payment_method.attach", pm, "running",
		                    NULL, NULL, NULL, err);
	if (strcmp(status, "failed") == 0)
		return op_finish_rc(pg, op, msg->account_id,
		                    "payment_method.attach", pm, "failed", NULL,
		                    *reason ? reason : "invalid_payment_method",
		                    "the gateway does not know this token",
		                    err);
	/* active already (the tick was first): default if asked */
	if (json_is_true(def)) {
		rc = vox_pg_execp(
		        pg, "pm_attach_undefault",
		        "UPDATE payment_methods SET is_default = false "
		        "WHERE account_id = $2::uuid AND is_default AND "
		        "id <> $1::uuid",
		        2, params, NULL, err);
		if (rc == 0)
			rc = vox_pg_execp(
			        pg, "pm_attach_default",
			        "UPDATE payment_methods SET is_default = "
			        "true WHERE id = $1::uuid AND deleted_at "
			        "IS NULL",
			        1, params, NULL, err);
		if (rc != 0)
			return rc;
	}
	return op_finish_rc(pg, op, msg->account_id, "payment_method.attach",
	                    pm, "completed",
	                    json_pack("{s:s, s:s}", "payment_method_id", pm,
	                              "status", "active"),
	                    NULL, NULL, err);
}

struct attach_arg {
	const char *id, *account_id;
	const vox_gateway_method_t *m; /* NULL: failed */
	const char *reason;
};

static int attach_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct attach_arg *aa = arg;
	char month[8], year[8], op[40], tp[VOX_TRACEPARENT_LEN];
	bool make_default;
	json_t *data;
	PGresult *res;
	int rc;

	vox_traceparent_new(tp, sizeof(tp));
	const char *lp[] = {aa->id};
	rc = vox_pg_execp(
	        pg, "pm_tick_lock",
	        "SELECT coalesce(attach_operation_id::text, ''), "
	        "attach_default OR NOT EXISTS (SELECT 1 FROM "
	        "payment_methods d WHERE d.account_id = "
	        "m.account_id AND d.is_default AND d.deleted_at IS "
	        "NULL) FROM payment_methods m WHERE id = $1::uuid AND "
	        "status = 'pending' FOR UPDATE",
	        1, lp, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) { /* done meanwhile, or deleted */
		PQclear(res);
		return 0;
	}
	snprintf(op, sizeof(op), "%s", PQgetvalue(res, 0, 0));
	make_default = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	if (aa->m == NULL) {
		const char *fp[] = {aa->id, aa->reason};

		rc = vox_pg_execp(
		        pg, "pm_tick_fail",
		        "UPDATE payment_methods SET status = 'failed', "
		        "failure_reason = $2 WHERE id = $1::uuid",
		        2, fp, NULL, err);
		data = json_pack("{s:s, s:s, s:s}", "payment_method_id", aa->id,
		                 "account_id", aa->account_id, "reason",
		                 aa->reason);
		if (rc == 0)
			rc = vox_event_emit(pg, "payment_method.failed",
			                    aa->account_id, aa->id,
			                    aa->account_id, tp, data, err);
		else
			json_decref(data);
		if (rc == 0)
			rc = op_finish_rc(
			        pg, op, aa->account_id, "payment_method.attach",
			        aa->id, "failed", NULL, aa->reason,
			        "the payment gateway refused this token", err);
		return rc;
	}
	snprintf(month, sizeof(month), "%d", aa->m->exp_month);
	snprintf(year, sizeof(year), "%d", aa->m->exp_year);
	const char *ap[] = {aa->id,        aa->m->brand,
	                    aa->m->last4,  month,
	                    year,          make_default ? "t" : "f",
	                    aa->account_id};
	const char *up[] = {aa->id, aa->account_id};

	if (make_default)
		rc = vox_pg_execp(
		        pg, "pm_tick_undefault",
		        "UPDATE payment_methods SET is_default = false "
		        "WHERE account_id = $2::uuid AND is_default AND "
		        "id <> $1::uuid",
		        2, up, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "pm_tick_activate",
		        "UPDATE payment_methods SET status = 'active', "
		        "brand = $2, last4 = $3, exp_month = "
		        "$4::smallint, exp_year = $5::smallint, "
		        "is_default = is_default OR $6::boolean, "
		        "failure_reason = NULL WHERE id = $1::uuid AND "
		        "account_id = $7::uuid",
		        7, ap, NULL, err);
	data = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:b}",
	                 "payment_method_id", aa->id, "account_id",
	                 aa->account_id, "brand", aa->m->brand, "last4",
	                 aa->m->last4, "exp_month", aa->m->exp_month,
	                 "exp_year", aa->m->exp_year, "default", make_default);
	if (rc == 0)
		rc = vox_event_emit(pg, "payment_method.attached",
		                    aa->account_id, aa->id, aa->account_id, tp,
		                    data, err);
	else
		json_decref(data);
	if (rc == 0)
		rc = op_finish_rc(pg, op, aa->account_id,
		                  "payment_method.attach", aa->id, "completed",
		                  json_pack("{s:s, s:s, s:s, s:s, s:b}",
		                            "payment_method_id", aa->id,
		                            "status", "active", "brand",
		                            aa->m->brand, "last4", aa->m->last4,
		                            "default", make_default),
		                  NULL, NULL, err);
	return rc;
}

static void attach_pending(vox_pg_t *pg, struct invoicing_ctx *ic)
{
	char limit[24];
	const char *params[] = {limit};
	vox_error_t err;
	PGresult *res;

	snprintf(limit, sizeof(limit), "%ld", ic->tick_batch);
	if (vox_pg_execp(pg, "pm_tick_pending",
	                 "SELECT id, account_id, gateway_token FROM "
	                 "payment_methods WHERE status = 'pending' AND "
	                 "deleted_at IS NULL ORDER BY created_at LIMIT $1::int",
	                 1, params, &res, &err) != 0) {
		vox_log(VOX_LOG_WARN, "payments: pending methods", "error",
		        err.message, NULL);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct attach_arg aa = {.id = PQgetvalue(res, i, 0),
		                        .account_id = PQgetvalue(res, i, 1)};
		vox_gateway_method_t m;
		vox_error_t gerr;
		int rc = vox_gateway_method_get(
		        ic->gateway, PQgetvalue(res, i, 2), &m, &gerr);
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		if (rc == 0 && (m.exp_year < tm.tm_year + 1900 ||
		                (m.exp_year == tm.tm_year + 1900 &&
		                 m.exp_month < tm.tm_mon + 1))) {
			aa.reason = "expired_card";
		} else if (rc == 0) {
			aa.m = &m;
		} else if (rc == VOX_ERR_NOT_FOUND || rc == VOX_ERR_INVALID) {
			aa.reason = "invalid_payment_method";
		} else {
			vox_log(VOX_LOG_WARN,
			        "payments: reading a payment method at the "
			        "gateway failed; next tick",
			        "payment_method_id", aa.id, "error",
			        gerr.message, NULL);
			continue;
		}
		if (vox_pg_transaction(pg, attach_tx, &aa, &err) != 0)
			vox_log(VOX_LOG_WARN, "payments: recording a method",
			        "payment_method_id", aa.id, "error",
			        err.message, NULL);
	}
	PQclear(res);
}

void inv_tick_payments(vox_pg_t *pg, struct invoicing_ctx *ic)
{
	attach_pending(pg, ic);
	charge_due(pg, ic);
}

/* ------------------------------------------------------------ gateway events
 */

/* The attempt an intent belongs to: by the intent id recorded on it, else
 * (the answer never came back to us) the payment's open attempt named by
 * the intent's metadata. 1 found, 0 not. */
static int attempt_of(vox_pg_t *pg, const char *intent, const char *payment,
                      char payment_id[40], int *no, vox_error_t *err)
{
	const char *params[] = {intent, payment};
	PGresult *res;
	int rc;

	rc = vox_pg_execp(
	        pg, "gw_attempt_of",
	        "(SELECT payment_id::text, attempt_no, 1 FROM payment_attempts "
	        "WHERE gateway_intent_id = $1 LIMIT 1) UNION ALL (SELECT "
	        "payment_id::text, attempt_no, 2 FROM payment_attempts WHERE "
	        "$2::text IS NOT NULL AND payment_id = $2::uuid AND status IN "
	        "('started', 'error', 'processing') ORDER BY attempt_no DESC "
	        "LIMIT 1) ORDER BY 3 LIMIT 1",
	        2, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	snprintf(payment_id, 40, "%s", PQgetvalue(res, 0, 0));
	*no = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return 1;
}

int inv_gateway_event(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                      vox_error_t *err)
{
	const json_t *d = msg->data;
	const char *event_id = vox_json_str(d, "event_id");
	const char *type = vox_json_str(d, "type");
	const char *intent = vox_json_str(d, "intent_id");
	const char *payment =
	        vox_json_str(json_object_get(d, "metadata"), "payment_id");
	const char *code = vox_json_str(d, "decline_code");
	json_t *amount = json_object_get(d, "amount");
	struct outcome o = {0};
	char payment_id[40], note[200] = "", *payload;
	bool applied = false;
	PGresult *res;
	int no = 0, rc;

	if (inv_gateway_event_validate(d, err) != 0)
		return VOX_ERR_INVALID; /* schema-invalid: dead-lettered */
	if (payment != NULL && !vox_uuid_valid(payment))
		payment = NULL;
	payload = vox_json_dump(d);
	if (payload == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	const char *ip[] = {event_id, type, intent, payload};
	rc = vox_pg_execp(pg, "gw_event_claim",
	                  "INSERT INTO gateway_events (id, type, intent_id, "
	                  "payload) VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT "
	                  "(id) DO NOTHING RETURNING 1",
	                  4, ip, &res, err);
	free(payload);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) { /* applied once already */
		PQclear(res);
		return 0;
	}
	PQclear(res);
	if (strcmp(type, "payment_intent.succeeded") == 0)
		o.kind = OUT_SUCCEEDED;
	else if (strcmp(type, "payment_intent.processing") == 0)
		o.kind = OUT_PROCESSING;
	else if (strcmp(type, "payment_intent.payment_failed") == 0)
		o.kind = OUT_DECLINED;
	else
		snprintf(note, sizeof(note), "type not applied");
	o.intent_id = intent;
	o.amount_minor =
	        json_is_integer(amount) && json_integer_value(amount) > 0
	                ? (int64_t)json_integer_value(amount)
	                : 0;
	if (code == NULL)
		code = vox_json_str(d, "code");
	o.decline_code = code ? code : "generic_decline";
	o.hard = !vox_gateway_decline_soft(o.decline_code);
	o.message = "declined (gateway event)";
	if (o.kind != 0) {
		rc = attempt_of(pg, intent, payment, payment_id, &no, err);
		if (rc < 0)
			return rc;
		if (rc == 0)
			snprintf(note, sizeof(note),
			         "no payment of ours has "
			         "this intent");
		else if ((rc = apply_outcome(pg, ctx, payment_id, no, &o,
		                             msg->traceparent, &applied, note,
		                             sizeof(note), err)) != 0)
			return rc;
	}
	if (!applied)
		vox_log(VOX_LOG_INFO, "payments: gateway event changes nothing",
		        "event_id", event_id, "intent_id", intent, "note", note,
		        NULL);
	const char *up[] = {event_id, applied ? "t" : "f", note};
	return vox_pg_execp(pg, "gw_event_done",
	                    "UPDATE gateway_events SET applied = $2::boolean, "
	                    "note = nullif($3, '') WHERE id = $1",
	                    3, up, NULL, err);
}
