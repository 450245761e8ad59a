/*
 * invoicing: the worker of vox.cmd.invoicing (docs/BILLING.md). Generates
 * invoices per (account, period) set-based, refreshes drafts during the
 * grace period, finalizes them with a gapless number, issues credit notes,
 * charges the default payment method at the payment gateway, retries soft
 * declines, applies the gateway's webhooks, and walks unpaid invoices down
 * the dunning ladder.
 *
 * Batch mode (batch.c): every polled batch runs in ONE transaction. The
 * generate commands of a batch are handled together, set-based
 * (inv_generate_batch: one INSERT ... SELECT ... GROUP BY for all their
 * accounts), idempotent by UNIQUE (account_id, period_start); every other
 * command claims its id in the inbox and runs its handler. Calls to the
 * payment gateway are never made inside a batch: handlers record what is
 * to be charged, and the tick thread (its own connection) makes the calls
 * outside any transaction and records their results.
 *
 * Files: batch.c (dispatch), invoices.c + generate.c (invoices: generate,
 * refresh, finalize, void, uncollectible, credit notes, settle, the
 * schedule), payments.c (payment methods, charges, retries, gateway
 * events), dunning.c (the ladder, holds, reinstatement).
 */
#ifndef INVOICING_H
#define INVOICING_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "vox_consumer.h"
#include "vox_gateway.h"

struct invoicing_ctx {
	vox_gateway_t *gateway;
	const char *payment_url, *payment_key;
	long payment_timeout_ms;
	const char *retry_days;    /* "1,3,5,7" */
	long day_s;                /* VOX_BILLING_DAY_S: a dunning/retry day */
	long schedule;             /* 1: the tick generates and finalizes */
	long tick_batch;           /* rows per tick step at most */
	const char *dunning_plans; /* VOX_DUNNING_PLANS: "" = every plan */
	long refresh_s; /* a draft in grace is refreshed this often */
	long scan_s;    /* closed periods are looked for this often */
};

/* One generate command of a batch. */
struct inv_generate_req {
	char account_id[40];
	char period_start[40], period_end[40]; /* RFC 3339, UTC */
	char operation_id[40];                 /* "" when none */
	const vox_message_t *msg;
	/* the message's dead-letter reason, set when the command can never
	 * be made and has no operation to fail */
	char *dlq_reason;
	size_t dlq_len;
};

/* validate.c: the commands as their schemas publish them (0, or
 * VOX_ERR_INVALID with the reason). */
/* finalize, void, mark uncollectible, pay */
int inv_invoice_cmd_validate(const json_t *data, vox_error_t *err);
/* a credit note: its ids (dead-lettered), its amount and reason (the
 * operation fails), both */
int inv_credit_note_ids_validate(const json_t *data, vox_error_t *err);
int inv_credit_note_terms_validate(const json_t *data, vox_error_t *err);
int inv_credit_note_validate(const json_t *data, vox_error_t *err);
int inv_attach_validate(const json_t *data, vox_error_t *err);
int inv_generate_validate(const json_t *data, vox_error_t *err);
int inv_gateway_event_validate(const json_t *data, vox_error_t *err);

/* batch.c: the consumer's batch function. */
int inv_batch(vox_pg_t *pg, vox_batch_msg_t *msgs, size_t n, void *prepared,
              void *ctx, vox_error_t *err);

/* ---- invoices (invoices.c, generate.c) ---- */
/* Makes (or refreshes, while draft) the invoices of reqs, set-based, in
 * the batch's transaction; finishes their operations. */
int inv_generate_batch(vox_pg_t *pg, struct invoicing_ctx *ic,
                       struct inv_generate_req *reqs, size_t n,
                       vox_error_t *err);
int inv_finalize(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                 vox_error_t *err);
int inv_void(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
             vox_error_t *err);
int inv_mark_uncollectible(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                           vox_error_t *err);
int inv_credit_note(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                    vox_error_t *err);
/* Recomputes the invoice's amount due (total - credit notes - succeeded
 * payments, rounded to the minor unit); at 0 a finalized or uncollectible
 * invoice becomes paid (invoice.paid) and inv_dunning_lift runs. In the
 * caller's transaction. */
int inv_invoice_settle(vox_pg_t *pg, const char *invoice_id,
                       const char *traceparent, vox_error_t *err);
/* Tick: generate commands for periods that closed, refresh drafts in
 * grace, finalize drafts past grace. */
void inv_tick_invoices(vox_pg_t *pg, struct invoicing_ctx *ic);

/* ---- payments (payments.c) ---- */
int inv_payment_method_attach(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                              vox_error_t *err);
int inv_pay(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
            vox_error_t *err);
int inv_gateway_event(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                      vox_error_t *err);
/* Called by finalization (in its transaction) when amount_due > 0: makes
 * the payment to be charged by the tick (nothing when the account has no
 * default method). */
int inv_payment_start(vox_pg_t *pg, const char *invoice_id,
                      const char *traceparent, vox_error_t *err);
/* Tick: charge what is due (first attempts, retries, timed-out
 * attempts), poll processing intents, attach pending methods. */
void inv_tick_payments(vox_pg_t *pg, struct invoicing_ctx *ic);

/* ---- dunning (dunning.c) ---- */
/* Tick: run the ladder steps that are due. */
void inv_tick_dunning(vox_pg_t *pg, struct invoicing_ctx *ic);
/* When the account has no past-due invoice left: clears every hold,
 * standing good, account.billing_reinstated. In the caller's transaction. */
int inv_dunning_lift(vox_pg_t *pg, const char *account_id,
                     const char *traceparent, vox_error_t *err);

#endif
