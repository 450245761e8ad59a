/*
 * What generate.c, lines.c and invoices.c share: the set of drafts being
 * (re)computed in the current transaction (the temporary table inv_draft),
 * the one computation of their lines and totals, finalization, events in
 * bulk and the operations of commands.
 */
#ifndef INV_INTERNAL_H
#define INV_INTERNAL_H

#include <jansson.h>

#include "invoicing.h"

/* Creates (once per session) and empties the temporary table inv_draft
 * (id, account_id, ps, pe, tz, currency, pd, ppm): the drafts a
 * transaction recomputes. Rows go away at commit. */
int inv_draft_begin(vox_pg_t *pg, vox_error_t *err);

/* Locks the drafts selected by where_sql (a condition on invoices i, with
 * $1 the only parameter, may be NULL) in id order and adds them to
 * inv_draft; skip_locked leaves rows another transaction holds. Returns
 * the number added in *n. */
int inv_draft_add(vox_pg_t *pg, const char *name, const char *where_sql,
                  const char *param, bool skip_locked, int *n,
                  vox_error_t *err);

/* Recomputes from scratch the lines and totals of every invoice in
 * inv_draft (docs/BILLING.md "Lines"): same inputs, same lines. */
int inv_recompute(vox_pg_t *pg, vox_error_t *err);

/* Finalizes a draft locked by the caller and recomputed in this
 * transaction: gapless number, due date, usage cutoff, credit taken off
 * the account's balance, invoice.finalized, then settle (a zero total is
 * paid at once) and the payment (inv_payment_start). */
int inv_finalize_locked(vox_pg_t *pg, struct invoicing_ctx *ic,
                        const char *invoice_id, const char *traceparent,
                        vox_error_t *err);

/* Finalizes every draft of inv_draft (locked by the caller): their
 * accounts' billing rows locked, lines recomputed once more, then
 * inv_finalize_locked each; *n counts them. */
int inv_finalize_drafts(vox_pg_t *pg, struct invoicing_ctx *ic,
                        const char *traceparent, int *n, vox_error_t *err);

/* Queues events of one type, one statement: evs is an array of
 * [key, envelope text] pairs (not stolen). */
int inv_events_bulk(vox_pg_t *pg, const char *type, const json_t *evs,
                    vox_error_t *err);

/* Appends the event (vox_event_build, data stolen) to evs as [key, text]. */
int inv_event_add(json_t *evs, const char *type, const char *key,
                  const char *subject, const char *account_id,
                  const char *traceparent, json_t *data, vox_error_t *err);

/* Operations of commands (no-ops without an operation id). result is
 * stolen. */
int inv_op_done(vox_pg_t *pg, const char *op_id, const char *account_id,
                const char *kind, const char *subject, const char *at,
                json_t *result, vox_error_t *err);
int inv_op_fail(vox_pg_t *pg, const char *op_id, const char *account_id,
                const char *kind, const char *subject, const char *at,
                const char *code, const char *message, vox_error_t *err);

/* {"USD": 10000, ...}: micro-units per minor unit of each currency of
 * the drafts in inv_draft, for amount_due in SQL. Caller frees. */
char *inv_minor_units_json(vox_pg_t *pg, vox_error_t *err);

#endif
