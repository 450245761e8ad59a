/* payments: STUB until the payments piece lands (docs/BILLING.md). */
#include "invoicing.h"

static int stub(vox_error_t *err)
{
	return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
	                     "payments: not built yet");
}

int inv_payment_method_attach(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                              vox_error_t *err)
{
	(void)pg, (void)msg, (void)ctx;
	return stub(err);
}

int inv_pay(vox_pg_t *pg, const vox_message_t *msg, void *ctx, vox_error_t *err)
{
	(void)pg, (void)msg, (void)ctx;
	return stub(err);
}

int inv_gateway_event(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                      vox_error_t *err)
{
	(void)pg, (void)msg, (void)ctx;
	return stub(err);
}

int inv_payment_start(vox_pg_t *pg, const char *invoice_id,
                      const char *traceparent, vox_error_t *err)
{
	(void)pg, (void)invoice_id, (void)traceparent, (void)err;
	return 0;
}

void inv_tick_payments(vox_pg_t *pg, struct invoicing_ctx *ic)
{
	(void)pg, (void)ic;
}
