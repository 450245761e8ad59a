/*
 * Invoice commands (docs/BILLING.md "States"): finalize, void, mark
 * uncollectible, credit notes, and settle, the one place an invoice
 * becomes paid. Each handler locks the invoice first (the lock order of
 * every transaction on an invoice: the invoice, then its account's
 * billing row, then the rest), checks its state and, when the command
 * does not apply, fails its operation with a code (not_found,
 * invalid_state, credit_exceeds_total, invalid_request) instead of
 * retrying. A command without the ids it needs is dead-lettered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv_internal.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_money.h"
#include "vox_pg.h"
#include "vox_uuid.h"

/* The invoice of a command, locked. */
struct inv_row {
	char id[40], account[40], status[16], currency[4], number[72];
	int64_t total, paid, credited, due;
	bool open_payment;
};

/* account_id, invoice_id and operation_id (UUIDs) of a command, checked
 * with the rest of its data (validate.c; a credit note's amount and reason
 * are the handler's: they fail the operation); VOX_ERR_INVALID
 * (dead-letter) otherwise. */
static int cmd_ids(const vox_message_t *msg, const char **account,
                   const char **invoice, const char **op, vox_error_t *err)
{
	vox_error_t why;
	int rc = strcmp(msg->type, "vox.credit_note.create_requested") == 0
	                 ? inv_credit_note_ids_validate(msg->data, &why)
	                 : inv_invoice_cmd_validate(msg->data, &why);

	if (rc != 0)
		return vox_error_set(err, VOX_ERR_INVALID, false, "%s: %s",
		                     msg->type, why.message);
	*account = vox_json_str(msg->data, "account_id");
	*invoice = vox_json_str(msg->data, "invoice_id");
	*op = vox_json_str(msg->data, "operation_id");
	return 0;
}

/* Locks the account's invoice; *found false when it has none of that
 * id. */
static int inv_lock(vox_pg_t *pg, const char *account, const char *invoice,
                    struct inv_row *row, bool *found, vox_error_t *err)
{
	const char *params[] = {invoice, account};
	PGresult *res;
	int rc;

	memset(row, 0, sizeof(*row));
	rc = vox_pg_execp(
	        pg, "inv_lock",
	        "SELECT i.status, i.currency, coalesce(i.number, ''), "
	        "i.total_micros, i.amount_paid_micros, "
	        "i.credited_micros, i.amount_due_micros, EXISTS "
	        "(SELECT 1 FROM payments p WHERE p.invoice_id = i.id "
	        "AND p.status IN ('pending', 'processing')) FROM "
	        "invoices i WHERE i.id = $1::uuid AND i.account_id = "
	        "$2::uuid FOR UPDATE OF i",
	        2, params, &res, err);
	if (rc != 0)
		return rc;
	*found = PQntuples(res) == 1;
	if (*found) {
		snprintf(row->id, sizeof(row->id), "%s", invoice);
		snprintf(row->account, sizeof(row->account), "%s", account);
		snprintf(row->status, sizeof(row->status), "%s",
		         PQgetvalue(res, 0, 0));
		snprintf(row->currency, sizeof(row->currency), "%s",
		         PQgetvalue(res, 0, 1));
		snprintf(row->number, sizeof(row->number), "%s",
		         PQgetvalue(res, 0, 2));
		row->total = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
		row->paid = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
		row->credited = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
		row->due = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
		row->open_payment = PQgetvalue(res, 0, 7)[0] == 't';
	}
	PQclear(res);
	return 0;
}

/* The command's invoice locked, or its operation failed (not_found) and
 * *row->id left empty. */
static int cmd_begin(vox_pg_t *pg, const vox_message_t *msg, const char *kind,
                     struct inv_row *row, const char **op, vox_error_t *err)
{
	const char *account, *invoice;
	bool found = false;
	int rc = cmd_ids(msg, &account, &invoice, op, err);

	if (rc == 0)
		rc = inv_lock(pg, account, invoice, row, &found, err);
	if (rc == 0 && !found)
		rc = inv_op_fail(pg, *op, account, kind, invoice, msg->time,
		                 "not_found", "the account has no such invoice",
		                 err);
	return rc;
}

static int refuse_state(vox_pg_t *pg, const vox_message_t *msg,
                        const char *kind, const char *op,
                        const struct inv_row *row, const char *why,
                        vox_error_t *err)
{
	char text[200];

	snprintf(text, sizeof(text), "the invoice is %s: %s", row->status, why);
	vox_log(VOX_LOG_INFO, "invoice command refused", "invoice_id", row->id,
	        "kind", kind, "reason", text, NULL);
	return inv_op_fail(pg, op, row->account, kind, row->id, msg->time,
	                   "invalid_state", text, err);
}

static int emit(vox_pg_t *pg, const char *type, const struct inv_row *row,
                const char *traceparent, json_t *data, vox_error_t *err)
{
	return vox_event_emit(pg, type, row->account, row->id, row->account,
	                      traceparent, data, err);
}

/* ---------------------------------------------------------------- finalize */

int inv_finalize_locked(vox_pg_t *pg, struct invoicing_ctx *ic,
                        const char *invoice_id, const char *traceparent,
                        vox_error_t *err)
{
	char day[24], account[40], status[16];
	int64_t owed = 0;
	const char *params[] = {invoice_id, day};
	int64_t due;
	PGresult *res;
	json_t *data;
	int rc;

	snprintf(day, sizeof(day), "%ld", ic->day_s);
	/* the number is taken in this transaction: a rollback leaves no
	 * hole; the credit the lines took off leaves the balance now */
	rc = vox_pg_execp(
	        pg, "inv_finalize",
	        "WITH b AS (UPDATE billing_accounts b SET next_invoice_seq = "
	        "b.next_invoice_seq + 1, credit_balance_micros = "
	        "b.credit_balance_micros - i.credit_applied_micros FROM "
	        "invoices i WHERE i.id = $1::uuid AND i.status = 'draft' AND "
	        "b.account_id = i.account_id RETURNING b.next_invoice_seq - 1 "
	        "AS seq, b.payment_terms_days AS terms) UPDATE invoices i SET "
	        "status = 'finalized', seq = b.seq, number = "
	        "upper(left(replace(i.account_id::text, '-', ''), 8)) || '-' "
	        "|| lpad(b.seq::text, greatest(6, length(b.seq::text)), '0'), "
	        "issued_at = now(), due_at = now() + b.terms * $2::bigint * "
	        "interval '1 second', usage_cutoff = now(), version = "
	        "i.version + 1 FROM b WHERE i.id = $1::uuid RETURNING "
	        "i.account_id, i.number, i.total_micros, i.currency, "
	        "vox_iso(i.period_start), vox_iso(i.period_end), "
	        "vox_iso(i.due_at)",
	        2, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "invoice %s is not a draft with billing "
		                     "settings",
		                     invoice_id);
	}
	snprintf(account, sizeof(account), "%s", PQgetvalue(res, 0, 0));
	/* nothing is paid or credited on a draft: what is due is the total
	 * rounded to the minor unit (inv_invoice_settle sets the same) */
	{
		int64_t total = strtoll(PQgetvalue(res, 0, 2), NULL, 10);

		if (!vox_money_round_minor(total, PQgetvalue(res, 0, 3),
		                           &owed) ||
		    owed < 0)
			owed = 0;
	}
	data = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s}",
	                 "invoice_id", invoice_id, "account_id", account,
	                 "number", PQgetvalue(res, 0, 1), "total_micros",
	                 (json_int_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10),
	                 "amount_due_micros", (json_int_t)owed, "currency",
	                 PQgetvalue(res, 0, 3), "period_start",
	                 PQgetvalue(res, 0, 4), "period_end",
	                 PQgetvalue(res, 0, 5), "due_at",
	                 PQgetvalue(res, 0, 6));
	PQclear(res);
	rc = vox_event_emit(pg, "invoice.finalized", account, invoice_id,
	                    account, traceparent, data, err);
	/* a zero total is paid at once */
	if (rc == 0)
		rc = inv_invoice_settle(pg, invoice_id, traceparent, err);
	if (rc != 0)
		return rc;
	rc = vox_pg_execp(
	        pg, "inv_finalized_due",
	        "SELECT status, amount_due_micros FROM invoices WHERE "
	        "id = $1::uuid",
	        1, params, &res, err);
	if (rc != 0)
		return rc;
	snprintf(status, sizeof(status), "%s", PQgetvalue(res, 0, 0));
	due = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	if (strcmp(status, "finalized") == 0 && due > 0)
		rc = inv_payment_start(pg, invoice_id, traceparent, err);
	return rc;
}

/* Locks the billing rows of the accounts of inv_draft, in one order:
 * finalizing takes their credit and their next number. */
static int lock_accounts(vox_pg_t *pg, vox_error_t *err)
{
	return vox_pg_execp(
	        pg, "inv_lock_accounts",
	        "SELECT 1 FROM billing_accounts WHERE account_id IN "
	        "(SELECT account_id FROM inv_draft) ORDER BY "
	        "account_id FOR UPDATE",
	        0, NULL, NULL, err);
}

int inv_finalize_drafts(vox_pg_t *pg, struct invoicing_ctx *ic,
                        const char *traceparent, int *n, vox_error_t *err)
{
	PGresult *res;
	int rc = lock_accounts(pg, err);

	*n = 0;
	if (rc == 0)
		rc = inv_recompute(pg, err);
	if (rc == 0)
		rc = vox_pg_execp(pg, "inv_draft_ids",
		                  "SELECT id FROM inv_draft ORDER BY id", 0,
		                  NULL, &res, err);
	if (rc != 0)
		return rc;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		rc = inv_finalize_locked(pg, ic, PQgetvalue(res, i, 0),
		                         traceparent, err);
		if (rc == 0)
			(*n)++;
	}
	PQclear(res);
	return rc;
}

int inv_finalize(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                 vox_error_t *err)
{
	static const char kind[] = "invoice.finalize";
	struct inv_row row;
	const char *op = NULL;
	int n = 0, rc;

	rc = cmd_begin(pg, msg, kind, &row, &op, err);
	if (rc != 0 || row.id[0] == '\0')
		return rc;
	if (strcmp(row.status, "draft") != 0)
		return refuse_state(pg, msg, kind, op, &row,
		                    "only a draft can be finalized", err);
	const char *params[] = {row.id};
	rc = inv_draft_begin(pg, err);
	if (rc == 0)
		rc = inv_draft_add(pg, "inv_draft_one", "i.id = $1::uuid",
		                   params[0], false, &n, err);
	if (rc == 0)
		rc = inv_finalize_drafts(pg, ctx, msg->traceparent, &n, err);
	/* the row as finalized (status, number): read again */
	if (rc == 0) {
		struct inv_row locked = row;
		bool found;

		rc = inv_lock(pg, locked.account, locked.id, &row, &found, err);
	}
	if (rc == 0)
		rc = inv_op_done(pg, op, row.account, kind, row.id, msg->time,
		                 json_pack("{s:s, s:s, s:s}", "invoice_id",
		                           row.id, "status", row.status,
		                           "number", row.number),
		                 err);
	return rc;
}

/* ---------------------------------------------------------------- void,
 * uncollectible */

int inv_void(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
             vox_error_t *err)
{
	static const char kind[] = "invoice.void";
	struct inv_row row;
	const char *op = NULL;
	int rc;

	(void)ctx;
	rc = cmd_begin(pg, msg, kind, &row, &op, err);
	if (rc != 0 || row.id[0] == '\0')
		return rc;
	if (strcmp(row.status, "finalized") != 0 || row.paid > 0)
		return refuse_state(pg, msg, kind, op, &row,
		                    "only a finalized invoice with nothing "
		                    "paid can be voided",
		                    err);
	if (row.open_payment)
		return refuse_state(pg, msg, kind, op, &row,
		                    "a payment is in flight", err);
	const char *params[] = {row.id};
	rc = vox_pg_execp(pg, "inv_void",
	                  "UPDATE invoices SET status = 'void', voided_at = "
	                  "now(), amount_due_micros = 0, version = version + 1 "
	                  "WHERE id = $1::uuid",
	                  1, params, NULL, err);
	if (rc == 0)
		rc = emit(pg, "invoice.voided", &row, msg->traceparent,
		          json_pack("{s:s, s:s, s:s, s:I, s:s}", "invoice_id",
		                    row.id, "account_id", row.account, "number",
		                    row.number, "total_micros",
		                    (json_int_t)row.total, "currency",
		                    row.currency),
		          err);
	/* a void invoice is owed no more: its dunning blocks go */
	if (rc == 0)
		rc = inv_dunning_lift(pg, row.account, msg->traceparent, err);
	if (rc == 0)
		rc = inv_op_done(pg, op, row.account, kind, row.id, msg->time,
		                 json_pack("{s:s, s:s}", "invoice_id", row.id,
		                           "status", "void"),
		                 err);
	return rc;
}

int inv_mark_uncollectible(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                           vox_error_t *err)
{
	static const char kind[] = "invoice.mark_uncollectible";
	struct inv_row row;
	const char *op = NULL;
	int rc;

	(void)ctx;
	rc = cmd_begin(pg, msg, kind, &row, &op, err);
	if (rc != 0 || row.id[0] == '\0')
		return rc;
	if (strcmp(row.status, "finalized") != 0)
		return refuse_state(pg, msg, kind, op, &row,
		                    "only a finalized invoice can be marked "
		                    "uncollectible",
		                    err);
	const char *params[] = {row.id};
	rc = vox_pg_execp(pg, "inv_uncollectible",
	                  "UPDATE invoices SET status = 'uncollectible', "
	                  "marked_uncollectible_at = now(), version = version "
	                  "+ 1 WHERE id = $1::uuid",
	                  1, params, NULL, err);
	if (rc == 0)
		rc = emit(pg, "invoice.marked_uncollectible", &row,
		          msg->traceparent,
		          json_pack("{s:s, s:s, s:s, s:I, s:s}", "invoice_id",
		                    row.id, "account_id", row.account, "number",
		                    row.number, "amount_due_micros",
		                    (json_int_t)row.due, "currency",
		                    row.currency),
		          err);
	if (rc == 0)
		rc = inv_op_done(pg, op, row.account, kind, row.id, msg->time,
		                 json_pack("{s:s, s:s}", "invoice_id", row.id,
		                           "status", "uncollectible"),
		                 err);
	return rc;
}

/* ---------------------------------------------------------------- credit notes
 */

int inv_credit_note(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                    vox_error_t *err)
{
	static const char kind[] = "credit_note.create";
	const json_t *amount_j = json_object_get(msg->data, "amount_micros");
	const char *reason = vox_json_str(msg->data, "reason");
	char amount_s[24], applied_s[16];
	struct inv_row row;
	const char *op = NULL, *applied;
	vox_error_t why;
	json_int_t amount;
	int64_t prior;
	PGresult *res;
	int rc;

	(void)ctx;
	rc = cmd_begin(pg, msg, kind, &row, &op, err);
	if (rc != 0 || row.id[0] == '\0')
		return rc;
	if (inv_credit_note_terms_validate(msg->data, &why) != 0)
		return inv_op_fail(pg, op, row.account, kind, row.id, msg->time,
		                   "invalid_request", why.message, err);
	amount = json_integer_value(amount_j);
	if (strcmp(row.status, "finalized") != 0 &&
	    strcmp(row.status, "paid") != 0 &&
	    strcmp(row.status, "uncollectible") != 0)
		return refuse_state(pg, msg, kind, op, &row,
		                    "credit notes are for finalized, paid or "
		                    "uncollectible invoices",
		                    err);
	const char *params[] = {row.id, amount_s, reason, applied_s};
	rc = vox_pg_execp(pg, "inv_cn_prior",
	                  "SELECT coalesce(sum(amount_micros), 0) FROM "
	                  "credit_notes WHERE invoice_id = $1::uuid",
	                  1, params, &res, err);
	if (rc != 0)
		return rc;
	prior = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (amount > row.total - prior) {
		char text[160];

		snprintf(text, sizeof(text),
		         "credit notes would total more than the invoice: "
		         "%lld of %lld already credited",
		         (long long)prior, (long long)row.total);
		return inv_op_fail(pg, op, row.account, kind, row.id, msg->time,
		                   "credit_exceeds_total", text, err);
	}
	/* on a paid invoice the credit goes to the account's balance, on
	 * an unpaid one off its amount due */
	applied = strcmp(row.status, "paid") == 0 ? "balance" : "invoice";
	snprintf(amount_s, sizeof(amount_s), "%lld", (long long)amount);
	snprintf(applied_s, sizeof(applied_s), "%s", applied);
	rc = vox_pg_execp(
	        pg, "inv_cn_insert",
	        "WITH b AS (UPDATE billing_accounts b SET next_credit_note_seq "
	        "= b.next_credit_note_seq + 1, credit_balance_micros = "
	        "b.credit_balance_micros + CASE WHEN $4 = 'balance' THEN "
	        "$2::bigint ELSE 0 END FROM invoices i WHERE i.id = $1::uuid "
	        "AND b.account_id = i.account_id RETURNING b.account_id, "
	        "b.next_credit_note_seq - 1 AS seq) INSERT INTO credit_notes "
	        "(account_id, invoice_id, seq, number, amount_micros, "
	        "currency, reason, applied_to) SELECT b.account_id, $1::uuid, "
	        "b.seq, 'CN-' || upper(left(replace(b.account_id::text, '-', "
	        "''), 8)) || '-' || lpad(b.seq::text, greatest(6, "
	        "length(b.seq::text)), '0'), $2::bigint, i.currency, $3, $4 "
	        "FROM b JOIN invoices i ON i.id = $1::uuid RETURNING id, "
	        "number",
	        4, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "credit note: no billing settings for %s",
		                     row.account);
	}
	json_t *data = json_pack(
	        "{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "credit_note_id",
	        PQgetvalue(res, 0, 0), "number", PQgetvalue(res, 0, 1),
	        "invoice_id", row.id, "account_id", row.account,
	        "amount_micros", amount, "currency", row.currency, "reason",
	        reason, "applied_to", applied);
	json_t *result = json_pack("{s:s, s:s, s:s, s:s}", "credit_note_id",
	                           PQgetvalue(res, 0, 0), "number",
	                           PQgetvalue(res, 0, 1), "invoice_id", row.id,
	                           "applied_to", applied);
	PQclear(res);
	if (strcmp(applied, "invoice") == 0) {
		rc = vox_pg_execp(pg, "inv_cn_credited",
		                  "UPDATE invoices SET credited_micros = "
		                  "credited_micros + $2::bigint, version = "
		                  "version + 1 WHERE id = $1::uuid",
		                  2, params, NULL, err);
		if (rc == 0)
			rc = inv_invoice_settle(pg, row.id, msg->traceparent,
			                        err);
	}
	if (rc == 0)
		rc = emit(pg, "credit_note.created", &row, msg->traceparent,
		          data, err);
	else
		json_decref(data);
	if (rc == 0)
		rc = inv_op_done(pg, op, row.account, kind, row.id, msg->time,
		                 result, err);
	else
		json_decref(result);
	return rc;
}

/* amount_due = round_minor(total - credited) - paid, never below 0
 * (docs/BILLING.md "Lines"); at 0 a finalized or uncollectible invoice
 * is paid. The row is locked first: the lock order of every transaction
 * on an invoice (payments, credit notes, dunning) is invoice, then the
 * rest. */
int inv_invoice_settle(vox_pg_t *pg, const char *invoice_id,
                       const char *traceparent, vox_error_t *err)
{
	const char *params[3] = {invoice_id};
	int64_t total, credited, paid, owed, due;
	char due_s[24], account[40], status[16], currency[4], number[80];
	PGresult *res;
	int rc;

	rc = vox_pg_execp(pg, "inv_settle_lock",
	                  "SELECT total_micros, credited_micros, "
	                  "amount_paid_micros, currency, status, account_id, "
	                  "coalesce(number, '') FROM invoices WHERE id = "
	                  "$1::uuid FOR UPDATE",
	                  1, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                     "no invoice %s", invoice_id);
	}
	total = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	credited = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	paid = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	snprintf(currency, sizeof(currency), "%s", PQgetvalue(res, 0, 3));
	snprintf(status, sizeof(status), "%s", PQgetvalue(res, 0, 4));
	snprintf(account, sizeof(account), "%s", PQgetvalue(res, 0, 5));
	snprintf(number, sizeof(number), "%s", PQgetvalue(res, 0, 6));
	PQclear(res);
	if (!vox_money_round_minor(total - credited, currency, &owed))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "invoice %s: amount out of range",
		                     invoice_id);
	due = owed - paid > 0 ? owed - paid : 0;
	snprintf(due_s, sizeof(due_s), "%lld", (long long)due);
	params[1] = due_s;
	if (due > 0 || (strcmp(status, "finalized") != 0 &&
	                strcmp(status, "uncollectible") != 0))
		return vox_pg_execp(pg, "inv_settle_due",
		                    "UPDATE invoices SET amount_due_micros = "
		                    "$2::bigint WHERE id = $1::uuid AND "
		                    "amount_due_micros <> $2::bigint",
		                    2, params, NULL, err);
	rc = vox_pg_execp(pg, "inv_settle_paid",
	                  "UPDATE invoices SET amount_due_micros = 0, status = "
	                  "'paid', paid_at = now() WHERE id = $1::uuid",
	                  1, params, NULL, err);
	if (rc == 0) {
		json_t *data = json_pack(
		        "{s:s, s:s, s:s, s:I, s:I, s:s}", "invoice_id",
		        invoice_id, "account_id", account, "number", number,
		        "total_micros", (json_int_t)total, "amount_paid_micros",
		        (json_int_t)paid, "currency", currency);

		rc = vox_event_emit(pg, "invoice.paid", account, invoice_id,
		                    account, traceparent, data, err);
	}
	if (rc == 0)
		rc = inv_dunning_lift(pg, account, traceparent, err);
	return rc;
}
