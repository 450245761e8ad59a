/* dunning: STUB until the dunning piece lands (docs/BILLING.md). */
#include "invoicing.h"

void inv_tick_dunning(vox_pg_t *pg, struct invoicing_ctx *ic)
{
	(void)pg, (void)ic;
}

int inv_dunning_lift(vox_pg_t *pg, const char *account_id,
                     const char *traceparent, vox_error_t *err)
{
	(void)pg, (void)account_id, (void)traceparent, (void)err;
	return 0;
}
