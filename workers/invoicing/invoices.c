/* invoices: STUB until the invoices piece lands (docs/BILLING.md). */
#include "invoicing.h"

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

int inv_invoice_settle(vox_pg_t *pg, const char *invoice_id,
                       const char *traceparent, vox_error_t *err)
{
	(void)pg, (void)invoice_id, (void)traceparent;
	return stub(err);
}

void inv_tick_invoices(vox_pg_t *pg, struct invoicing_ctx *ic)
{
	(void)pg, (void)ic;
}
