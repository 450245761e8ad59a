/*
 * invoicing: the worker of vox.cmd.invoicing (docs/BILLING.md):
 * invoices, payments and dunning. Batch mode (batch.c); the tick does the
 * schedule, the gateway calls and the ladder.
 */
#include <stdio.h>
#include <stdlib.h>

#include "invoicing.h"
#include "vox_log.h"
#include "vox_worker.h"

static struct invoicing_ctx invoicing;

static const vox_cfg_opt_t opts[] = {
        {"VOX_PAYMENT_URL", VOX_CFG_STRING, "http://127.0.0.1:27082", 8, 2048,
         "the payment gateway's API (the sandbox by default)",
         &invoicing.payment_url},
        {"VOX_PAYMENT_API_KEY", VOX_CFG_STRING, "sk_sandbox", 1, 512,
         "the payment gateway's secret API key", &invoicing.payment_key},
        {"VOX_PAYMENT_TIMEOUT_MS", VOX_CFG_INT, "10000", 100, 120000,
         "time per gateway call attempt (3 attempts, same idempotency key)",
         &invoicing.payment_timeout_ms},
        {"VOX_PAYMENT_RETRY_DAYS", VOX_CFG_STRING, "1,3,5,7", 1, 200,
         "soft declines are tried again this many billing days after the "
         "first attempt",
         &invoicing.retry_days},
        {"VOX_BILLING_DAY_S", VOX_CFG_INT, "86400", 1, 86400,
         "the length of a day of the dunning ladder, the payment retries "
         "and the grace period (tests compress it)",
         &invoicing.day_s},
        {"VOX_INVOICING_SCHEDULE", VOX_CFG_INT, "1", 0, 1,
         "1: the tick generates invoices for closed periods and finalizes "
         "drafts past their grace period; 0: only on request",
         &invoicing.schedule},
        {"VOX_INVOICING_TICK_BATCH", VOX_CFG_INT, "500", 1, 100000,
         "rows each tick step takes at most", &invoicing.tick_batch},
        {"VOX_DUNNING_PLANS", VOX_CFG_STRING, "", 0, 2000,
         "comma-separated dunning plans whose ladders this worker walks "
         "(empty: every plan): a staged roll-out of a plan, and test "
         "workers that compress the day",
         &invoicing.dunning_plans},
        {"VOX_INVOICING_REFRESH_S", VOX_CFG_INT, "3600", 1, 86400,
         "a draft in its grace period is recomputed this often (late CDRs "
         "land on it); a period asked for with no invoice yet is asked "
         "for again after this long",
         &invoicing.refresh_s},
        {"VOX_INVOICING_SCAN_S", VOX_CFG_INT, "60", 1, 86400,
         "closed periods without an invoice are looked for this often",
         &invoicing.scan_s},
};

static int invoicing_setup(void *ctx, vox_metrics_t *metrics)
{
	struct invoicing_ctx *ic = ctx;
	vox_gateway_conf_t conf = {0};
	vox_error_t err;

	conf.base_url = ic->payment_url;
	conf.api_key = ic->payment_key;
	conf.timeout_ms = (int)ic->payment_timeout_ms;
	conf.max_attempts = 3;
	conf.metrics = metrics; /* vox_upstream_* {upstream="payment"} */
	ic->gateway = vox_gateway_new(&conf, &err);
	if (ic->gateway == NULL) {
		vox_log(VOX_LOG_ERROR, "invoicing setup", "error", err.message,
		        NULL);
		return -1;
	}
	return 0;
}

/* Every tick: the schedule, the charges, the ladder. */
static void invoicing_tick(vox_pg_t *pg, void *ctx)
{
	inv_tick_invoices(pg, ctx);
	inv_tick_payments(pg, ctx);
	inv_tick_dunning(pg, ctx);
}

static void invoicing_teardown(void *ctx)
{
	struct invoicing_ctx *ic = ctx;

	vox_gateway_destroy(ic->gateway);
}

int main(int argc, char **argv)
{
	const vox_worker_def_t def = {
	        .name = "invoicing",
	        .about = "invoices, payments and dunning: generation per "
	                 "period, finalization, charges, retries, the ladder",
	        .topics = "vox.cmd.invoicing",
	        .metrics_port = 19106,
	        .batch_fn = inv_batch,
	        .batch_max = 10000,
	        .batch_wait_ms = 200,
	        .ctx = &invoicing,
	        .tick = invoicing_tick,
	        .tick_ms = 1000,
	        .setup = invoicing_setup,
	        .teardown = invoicing_teardown,
	        .opts = opts,
	        .nopts = sizeof(opts) / sizeof(opts[0]),
	};

	return vox_worker_main(&def, argc, argv);
}
