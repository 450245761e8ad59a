/*
 * vox_worker: the whole life of a worker binary, so each worker is only
 * its handler table: config from the environment (--help prints it), JSON
 * logs, PostgreSQL, the producer (dead letters and outbox relay), the
 * outbox relay thread, /metrics, /healthz and /readyz (200 while it
 * consumes, 503 while it starts or stops) on the worker's own port, the
 * consume loop, and a staged shutdown on SIGTERM/SIGINT.
 */
#ifndef VOX_WORKER_H
#define VOX_WORKER_H

#include "vox_config.h"
#include "vox_consumer.h"
#include "vox_http.h"

typedef struct vox_worker_def {
	const char *name;   /* "provisioning" */
	const char *about;  /* one line for --help */
	const char *topics; /* default, comma-separated */
	int metrics_port;   /* default */
	const vox_handler_t *handlers;
	size_t nhandlers;
	/* Optional in handler mode: set-based forms of some handlers, for
	 * runs of their messages in one transaction (vox_consumer.h). */
	const vox_batch_handler_t *batch_handlers;
	size_t nbatch_handlers;
	/* Default of VOX_WORKER_LANES (0: 1): handler mode runs the messages
	 * of a polled batch that have no set-based form on this many lanes at
	 * once, each with its own PostgreSQL connection, a message key always
	 * on the same lane (the handlers must be thread-safe). */
	int lanes;
	/* Set instead of handlers: batch mode (vox_consumer.h), batches of up
	 * to VOX_WORKER_BATCH_MAX messages. */
	vox_batch_fn batch_fn;
	/* Default of VOX_WORKER_BATCH_MAX (0: 10000 in batch mode, 1000 in
	 * handler mode). Smaller batches commit sooner: what their effects
	 * start (notifications) is seen sooner. */
	int batch_max;
	/* Default of VOX_WORKER_BATCH_WAIT_MS (0: 20 in batch mode; 1 in
	 * handler mode, so a lone command keeps its latency): how long a
	 * batch may wait to fill after its first message. */
	int batch_wait_ms;
	/* Optional with batch_fn: pipelined batches (vox_consumer.h); the
	 * worker gives prepare a PostgreSQL connection of its own. */
	vox_batch_prepare_fn batch_prepare;
	vox_batch_release_fn batch_release;
	void *ctx;
	/* Optional periodic work (e.g. expiring reservations), on a thread
	 * of its own with its own connection, every tick_ms. */
	void (*tick)(vox_pg_t *pg, void *ctx);
	int tick_ms;
	/* Optional: called once after config is loaded, before consuming,
	 * with the registry the worker's /metrics shows (for the worker's own
	 * clients, e.g. vox_upstream); returns 0 or stops the worker. */
	int (*setup)(void *ctx, vox_metrics_t *metrics);
	void (*teardown)(void *ctx);
	/* The worker's own settings, shown by --help after the common ones. */
	const vox_cfg_opt_t *opts;
	size_t nopts;
} vox_worker_def_t;

/* The routes every worker serves, for a program that runs its own loop
 * (workers/exporter): GET /metrics renders the vox_metrics_t given as the
 * route's context, GET /healthz answers {"status":"ok"}. */
void vox_worker_metrics_reply(vox_http_req_t *req, void *ctx);
void vox_worker_healthz_reply(vox_http_req_t *req, void *ctx);

/* Returns the process exit code. */
int vox_worker_main(const vox_worker_def_t *def, int argc, char **argv);

#endif
