/*
 * metering: rates carrier CDRs from vox.cdr.raw in batches
 * (docs/METERING.md).
 */
#include "metering.h"
#include "vox_worker.h"

static struct meter_ctx meter = {.cards_lock = PTHREAD_MUTEX_INITIALIZER};

static const vox_cfg_opt_t opts[] = {
        {"VOX_USAGE_PARTITIONS_AHEAD", VOX_CFG_INT, "3", 1, 60,
         "months of usage_records partitions kept created ahead",
         &meter.partitions_ahead},
};

static void meter_teardown(void *ctx)
{
	meter_cards_free(ctx);
}

int main(int argc, char **argv)
{
	const vox_worker_def_t def = {
	        .name = "metering",
	        .about = "rates carrier CDRs (vox.cdr.raw) into usage records, "
	                 "exactly once per carrier record",
	        .topics = "vox.cdr.raw",
	        .metrics_port = 19102,
	        .batch_fn = meter_batch,
	        .batch_prepare = meter_prepare,
	        .batch_release = meter_release,
	        .ctx = &meter,
	        .tick = meter_tick,
	        .tick_ms = 60000,
	        .teardown = meter_teardown,
	        .opts = opts,
	        .nopts = sizeof(opts) / sizeof(opts[0]),
	};
	return vox_worker_main(&def, argc, argv);
}
