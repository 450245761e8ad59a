/*
 * Billing in the ingress (docs/BILLING.md "API"): invoices (invoices.c:
 * reads and commands; invoice_pdf.c; invoice_csv.c), payment methods
 * (payment_methods.c), billing settings and the purchase block
 * (billing_settings.c), cost analytics (cost_analytics.c) and the payment
 * gateway's webhooks (gateway_events.c). Reads are synchronous from
 * PostgreSQL; commands go to vox.cmd.invoicing keyed by the account id and
 * are answered 202 with an operation (commands.c).
 */
#ifndef INGRESS_BILLING_H
#define INGRESS_BILLING_H

#include "ingress.h"

#define BILLING_TOPIC "vox.cmd.invoicing"

/* The invoice columns every invoice answer is made of (billing_invoice_json),
 * over invoices i. */
#define INVOICE_COLUMNS                                                        \
	"i.id, i.number, i.status, vox_iso(i.period_start), "                  \
	"vox_iso(i.period_end), i.currency, i.subtotal_micros, "               \
	"i.tax_rate_ppm, i.tax_micros, i.total_micros, "                       \
	"i.credit_applied_micros, i.credited_micros, i.amount_paid_micros, "   \
	"i.amount_due_micros, vox_iso(i.issued_at), vox_iso(i.due_at), "       \
	"vox_iso(i.paid_at), vox_iso(i.voided_at), "                           \
	"vox_iso(i.marked_uncollectible_at), vox_iso(i.grace_until), "         \
	"COALESCE(i.timezone, a.timezone), vox_iso(i.created_at), "            \
	"vox_iso(i.updated_at) "
enum {
	IC_ID,
	IC_NUMBER,
	IC_STATUS,
	IC_PERIOD_START,
	IC_PERIOD_END,
	IC_CURRENCY,
	IC_SUBTOTAL,
	IC_TAX_RATE,
	IC_TAX,
	IC_TOTAL,
	IC_CREDIT_APPLIED,
	IC_CREDITED,
	IC_PAID,
	IC_DUE,
	IC_ISSUED_AT,
	IC_DUE_AT,
	IC_PAID_AT,
	IC_VOIDED_AT,
	IC_UNCOLLECTIBLE_AT,
	IC_GRACE_UNTIL,
	IC_TIMEZONE,
	IC_CREATED_AT,
	IC_UPDATED_AT,
	IC_NCOLS
};

/* An invoice row (INVOICE_COLUMNS) as answered, without its lines. */
json_t *billing_invoice_json(const PGresult *res, int row);

/* The caller's invoice {id} in INVOICE_COLUMNS, or NULL after answering
 * 404 invoice_not_found (also for an id that is not a UUID) or 503. */
PGresult *billing_invoice_lookup(vox_http_req_t *req, ingress_req_t *ir,
                                 const char *id);

/* The invoice's lines: line_no, kind, description, e164, event_type,
 * quantity, unit, unit_price_micros, amount_micros, days, period_days,
 * vox_iso(period_start), vox_iso(period_end), metadata (text), in line
 * order. NULL after answering 503. */
enum {
	LC_NO,
	LC_KIND,
	LC_DESCRIPTION,
	LC_E164,
	LC_EVENT_TYPE,
	LC_QUANTITY,
	LC_UNIT,
	LC_UNIT_PRICE,
	LC_AMOUNT,
	LC_DAYS,
	LC_PERIOD_DAYS,
	LC_PERIOD_START,
	LC_PERIOD_END,
	LC_METADATA
};
PGresult *billing_invoice_lines(vox_http_req_t *req, ingress_req_t *ir,
                                const char *id);

/* The credit notes of an invoice: number, amount_micros, reason,
 * applied_to, vox_iso(created_at), id. NULL after answering 503. */
PGresult *billing_invoice_credit_notes(vox_http_req_t *req, ingress_req_t *ir,
                                       const char *id);

/* An integer, also when written with a zero fraction (JSON, and JSON
 * Schema's "integer", do not tell 3600 from 3600.0): true with *out. */
bool billing_whole_number(const json_t *v, long long *out);

/* A micro-unit column as an integer. */
long long billing_micros(const PGresult *res, int row, int col);

/* Whether a purchase (reservation, order) is refused: true after
 * answering 403 account_suspended (the account's billing standing is
 * suspended; one primary-key read) or 503; false when it may go on. */
bool billing_purchase_blocked(vox_http_req_t *req, ingress_req_t *ir);

/* Handlers. */
void ingress_invoice_list(vox_http_req_t *req, void *ctx);
void ingress_invoice_get(vox_http_req_t *req, void *ctx);
void ingress_invoice_pdf(vox_http_req_t *req, void *ctx);
void ingress_invoice_csv(vox_http_req_t *req, void *ctx);
void ingress_invoice_generate(vox_http_req_t *req, void *ctx);
void ingress_invoice_finalize(vox_http_req_t *req, void *ctx);
void ingress_invoice_void(vox_http_req_t *req, void *ctx);
void ingress_invoice_uncollectible(vox_http_req_t *req, void *ctx);
void ingress_invoice_pay(vox_http_req_t *req, void *ctx);
void ingress_credit_note_create(vox_http_req_t *req, void *ctx);
void ingress_cost_analytics(vox_http_req_t *req, void *ctx);
void ingress_payment_method_create(vox_http_req_t *req, void *ctx);
void ingress_payment_method_list(vox_http_req_t *req, void *ctx);
void ingress_payment_method_delete(vox_http_req_t *req, void *ctx);
void ingress_payment_method_default(vox_http_req_t *req, void *ctx);
void ingress_billing_settings_get(vox_http_req_t *req, void *ctx);
void ingress_billing_settings_patch(vox_http_req_t *req, void *ctx);
void ingress_gateway_event(vox_http_req_t *req, void *ctx);

/* invoice_pdf.c: the invoice as a PDF (libharu): malloc'd bytes in *out,
 * their length in *len. inv: INVOICE_COLUMNS row 0; lines and notes as
 * above; account: name; draft: watermarked DRAFT. 0, or -1 (err). */
int billing_pdf_render(const PGresult *inv, const PGresult *lines,
                       const PGresult *notes, const char *account_name,
                       const char *account_id, unsigned char **out, size_t *len,
                       vox_error_t *err);

#endif
