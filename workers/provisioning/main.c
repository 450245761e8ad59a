/*
 * provisioning: the worker that turns number commands into carrier calls
 * and database state (docs/NUMBERS.md), answers the pipeline canary, and
 * on its tick expires reservations and pushes pending forwarding to the
 * carrier (config_sync.c, docs/ROUTING.md "Carrier sync").
 */
#include <stdio.h>

#include "provisioning.h"
#include "vox_canary.h"
#include "vox_log.h"
#include "vox_worker.h"

static struct prov_ctx prov;

static const vox_handler_t handlers[] = {
        {VOX_CANARY_TYPE, vox_canary_handle},
        {"vox.reservation.requested", prov_reserve},
        {"vox.reservation.extend_requested", prov_extend},
        {"vox.order.requested", prov_order},
        {"vox.number.activate_requested", prov_activate},
        {"vox.number.deactivate_requested", prov_deactivate},
        {"vox.number.release_requested", prov_release},
        {"vox.number.routing_update_requested", prov_configure},
        {"vox.number.business_hours_update_requested", prov_configure},
        {"vox.number.voicemail_update_requested", prov_configure},
        {"vox.notification_preferences.update_requested", prov_preferences},
};

/* The canary in runs: one transaction for a run of canaries (issue 17). */
static const vox_batch_handler_t batch_handlers[] = {
        {VOX_CANARY_TYPE, vox_canary_handle_batch},
};

static const vox_cfg_opt_t opts[] = {
        {"VOX_CARRIER_URL", VOX_CFG_STRING, "http://127.0.0.1:27080", 8, 2048,
         "the carrier's numbers API (the sandbox by default)",
         &prov.carrier_url},
        {"VOX_CARRIER_API_KEY", VOX_CFG_STRING, "sandbox-key", 1, 512,
         "the carrier API key", &prov.carrier_key},
        {"VOX_CARRIER_TIMEOUT_MS", VOX_CFG_INT, "3000", 100, 60000,
         "time per carrier call attempt (3 attempts)",
         &prov.carrier_timeout_ms},
        {"VOX_RESERVATION_TTL_S", VOX_CFG_INT, "900", 1, 86400,
         "how long a reservation holds its numbers (and each extension)",
         &prov.reservation_ttl_s},
        {"VOX_CARRIER_SYNC_BACKOFF_MS", VOX_CFG_INT, "1000", 10, 600000,
         "first pause before pushing a failed forwarding again (doubled)",
         &prov.sync_backoff_ms},
        {"VOX_CARRIER_SYNC_MAX_MS", VOX_CFG_INT, "300000", 10, 3600000,
         "longest pause between pushes of a pending forwarding",
         &prov.sync_max_backoff_ms},
};

static int prov_setup(void *ctx, vox_metrics_t *metrics)
{
	struct prov_ctx *pc = ctx;
	vox_carrier_conf_t conf = {0};
	vox_error_t err;

	conf.base_url = pc->carrier_url;
	conf.api_key = pc->carrier_key;
	conf.timeout_ms = (int)pc->carrier_timeout_ms;
	conf.max_attempts = 3;
	conf.metrics = metrics; /* vox_upstream_* {upstream="carrier"} */
	prov_sync_metrics(pc, metrics);
	pc->carrier = vox_carrier_new(&conf, &err);
	if (pc->carrier == NULL) {
		vox_log(VOX_LOG_ERROR, "carrier adapter", "error", err.message,
		        NULL);
		return -1;
	}
	return 0;
}

/* Every tick: the reservation expiry sweep, then the carrier sync. */
static void prov_tick(vox_pg_t *pg, void *ctx)
{
	prov_expire(pg, ctx);
	prov_config_sync(pg, ctx);
}

static void prov_teardown(void *ctx)
{
	struct prov_ctx *pc = ctx;

	vox_carrier_destroy(pc->carrier);
}

int main(int argc, char **argv)
{
	const vox_worker_def_t def = {
	        .name = "provisioning",
	        .about = "number commands (reserve, order, activate, "
	                 "deactivate, release) and the canary",
	        .topics = "vox.cmd.provisioning",
	        .metrics_port = 19101,
	        .handlers = handlers,
	        .nhandlers = sizeof(handlers) / sizeof(handlers[0]),
	        .batch_handlers = batch_handlers,
	        .nbatch_handlers =
	                sizeof(batch_handlers) / sizeof(batch_handlers[0]),
	        .ctx = &prov,
	        /* VOX_WORKER_LANES may run different numbers' commands at
	         * once (the handlers share only the carrier adapter, which is
	         * thread-safe); 1 by default: 4 lanes measured slower for 20
	         * parallel order flows on 2 cores (bench/RESULTS.md) */
	        .tick = prov_tick,
	        .tick_ms = 1000,
	        .setup = prov_setup,
	        .teardown = prov_teardown,
	        .opts = opts,
	        .nopts = sizeof(opts) / sizeof(opts[0]),
	};

	return vox_worker_main(&def, argc, argv);
}
