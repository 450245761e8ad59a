/*
 * porting: the worker of vox.cmd.porting (docs/PORTING.md): submits orders
 * to the carrier (split by losing carrier), cancels them, applies the
 * carrier's events, completes ports into the inventory, and on its tick
 * expires drafts.
 */
#include <stdio.h>
#include <stdlib.h>

#include "porting.h"
#include "vox_log.h"
#include "vox_worker.h"

static struct porting_ctx porting;

static const vox_handler_t handlers[] = {
        {"vox.porting_order.submit_requested", por_submit},
        {"vox.porting_order.cancel_requested", por_cancel},
        {"vox.porting.carrier_event", por_carrier_event},
};

static const vox_cfg_opt_t opts[] = {
        {"VOX_CARRIER_URL", VOX_CFG_STRING, "http://127.0.0.1:27080", 8, 2048,
         "the carrier's API (the sandbox by default)", &porting.carrier_url},
        {"VOX_CARRIER_API_KEY", VOX_CFG_STRING, "sandbox-key", 1, 512,
         "the carrier API key", &porting.carrier_key},
        {"VOX_CARRIER_TIMEOUT_MS", VOX_CFG_INT, "3000", 100, 60000,
         "time per carrier call attempt (3 attempts)",
         &porting.carrier_timeout_ms},
        {"VOX_PORTING_CARRIER", VOX_CFG_STRING, "sandbox", 1, 63,
         "the carrier ports go through: its webhooks (the carrier of their "
         "credential) are the only ones applied, and ported numbers get it "
         "as their carrier",
         &porting.carrier_name},
        {"VOX_ENCRYPTION_KEY", VOX_CFG_STRING, "", 0, 200,
         "AES-256-GCM key, [ID:]KEY (docs/CONFIG.md): opens the sealed "
         "account numbers and PINs for the carrier and seals the copies of "
         "split orders (required)",
         &porting.encryption_key},
        {"VOX_ENCRYPTION_OLD_KEYS", VOX_CFG_STRING, "", 0, 2000,
         "retired keys that still open what they sealed: ID:KEY,...",
         &porting.encryption_old_keys},
        {"VOX_PORTING_EXPIRE_BATCH", VOX_CFG_INT, "100", 1, 10000,
         "drafts expired per tick at most", &porting.expire_batch},
        {"VOX_PORTING_POLL_AFTER_S", VOX_CFG_INT, "3600", 0, 2592000,
         "a leaf the carrier has sent nothing about for this long (a "
         "confirmed FOC: this long past it) is read at the carrier, and "
         "its status applied (a lost webhook); 0: never",
         &porting.poll_after_s},
        {"VOX_PORTING_POLL_BATCH", VOX_CFG_INT, "20", 1, 1000,
         "leaves polled per tick at most", &porting.poll_batch},
};

static int porting_setup(void *ctx, vox_metrics_t *metrics)
{
	struct porting_ctx *pc = ctx;
	vox_carrier_conf_t conf = {0};
	vox_error_t err;

	if (pc->ring == NULL) /* main() made it: here for safety */
		pc->ring = vox_crypto_keyring_new(
		        pc->encryption_key, pc->encryption_old_keys, &err);
	if (pc->ring == NULL)
		goto failed;
	conf.base_url = pc->carrier_url;
	conf.api_key = pc->carrier_key;
	conf.timeout_ms = (int)pc->carrier_timeout_ms;
	conf.max_attempts = 3;
	conf.metrics = metrics; /* vox_upstream_* {upstream="carrier"} */
	pc->carrier = vox_carrier_new(&conf, &err);
	if (pc->carrier == NULL)
		goto failed;
	return 0;
failed:
	vox_log(VOX_LOG_ERROR, "porting setup", "error", err.message, NULL);
	return -1;
}

/* Every tick: the draft expiry, then the lost-webhook poll. */
static void porting_tick(vox_pg_t *pg, void *ctx)
{
	por_expire(pg, ctx);
	por_poll(pg, ctx);
}

static void porting_teardown(void *ctx)
{
	struct porting_ctx *pc = ctx;

	vox_carrier_destroy(pc->carrier);
	vox_crypto_keyring_destroy(pc->ring);
}

/* The keyring is configuration: without it (or with a malformed key) the
 * worker stops at once with exit code 2, like any bad setting. Only when
 * it is to run (no arguments: vox_worker_main answers --help and refuses
 * anything else). */
static int porting_keyring(void)
{
	const char *key = getenv("VOX_ENCRYPTION_KEY");
	vox_error_t err;

	if (key == NULL || *key == '\0') {
		fprintf(stderr, "porting: VOX_ENCRYPTION_KEY is required: "
		                "porting orders carry sealed account numbers "
		                "and PINs\n");
		return 2;
	}
	porting.ring = vox_crypto_keyring_new(
	        key, getenv("VOX_ENCRYPTION_OLD_KEYS"), &err);
	if (porting.ring == NULL) {
		/* the message never holds key material */
		fprintf(stderr, "porting: VOX_ENCRYPTION_KEY: %s\n",
		        err.message);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int rc;
	const vox_worker_def_t def = {
	        .name = "porting",
	        .about = "porting orders: submit (split by losing carrier), "
	                 "cancel, carrier events, completion, draft expiry",
	        .topics = "vox.cmd.porting",
	        .metrics_port = 19105,
	        .handlers = handlers,
	        .nhandlers = sizeof(handlers) / sizeof(handlers[0]),
	        .ctx = &porting,
	        .tick = porting_tick,
	        .tick_ms = 1000,
	        .setup = porting_setup,
	        .teardown = porting_teardown,
	        .opts = opts,
	        .nopts = sizeof(opts) / sizeof(opts[0]),
	};

	if (argc == 1 && (rc = porting_keyring()) != 0)
		return rc;
	return vox_worker_main(&def, argc, argv);
}
