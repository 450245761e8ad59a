/* invoices: STUB until the invoices piece lands (docs/BILLING.md), but
 * inv_invoice_settle, which is real. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invoicing.h"
#include "vox_event.h"
#include "vox_money.h"
#include "vox_pg.h"

static int stub(vox_error_t *err)
{
	return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
	                     "invoices: not built yet");
}

int inv_generate_batch(vox_pg_t *pg, struct invoicing_ctx *ic,
                       struct inv_generate_req *reqs, size_t n,
                       vox_error_t *err)
{
	(void)pg, (void)ic, (void)reqs, (void)n;
	return stub(err);
}

int inv_finalize(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                 vox_error_t *err)
{
	(void)pg, (void)msg, (void)ctx;
	return stub(err);
}

int inv_void(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
             vox_error_t *err)
{
	(void)pg, (void)msg, (void)ctx;
	return stub(err);
}

int inv_mark_uncollectible(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                           vox_error_t *err)
{
	(void)pg, (void)msg, (void)ctx;
	return stub(err);
}

int inv_credit_note(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                    vox_error_t *err)
{
	(void)pg, (void)msg, (void)ctx;
	return stub(err);
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
	char due_s[24], account[40], status[16], currency[4];
	PGresult *res;
	int rc;

	rc = vox_pg_execp(pg, "inv_settle_lock",
	                  "SELECT total_micros, credited_micros, "
	                  "amount_paid_micros, currency, status, account_id "
	                  "FROM invoices WHERE id = $1::uuid FOR UPDATE",
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
		        "{s:s, s:s, s:I, s:I, s:s}", "invoice_id", invoice_id,
		        "account_id", account, "total_micros",
		        (json_int_t)total, "amount_paid_micros",
		        (json_int_t)paid, "currency", currency);

		rc = vox_event_emit(pg, "invoice.paid", account, invoice_id,
		                    account, traceparent, data, err);
	}
	if (rc == 0)
		rc = inv_dunning_lift(pg, account, traceparent, err);
	return rc;
}

void inv_tick_invoices(vox_pg_t *pg, struct invoicing_ctx *ic)
{
	(void)pg, (void)ic;
}
