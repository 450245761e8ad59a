/* vox_worker: config, wiring and shutdown shared by every worker binary. */
#include "vox_worker.h"

#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_config.h"
#include "vox_http.h"
#include "vox_log.h"
#include "vox_relay.h"
#include "vox_signal.h"

#define WORKER_MAX_TOPICS 16

struct worker_cfg {
	const char *pg_url, *brokers, *group, *topics, *bind, *instance_id;
	const char *log_level;
	long metrics_port, max_attempts, session_timeout_ms, backoff_ms;
	long batch_max;
	long batch_wait_ms;
	long lanes;
	bool relay;
};

void vox_worker_metrics_reply(vox_http_req_t *req, void *ctx)
{
	size_t len;
	char *text = vox_metrics_render(ctx, &len);

	if (text == NULL) {
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		return;
	}
	vox_http_reply(req, 200, "text/plain; version=0.0.4", text, len);
	free(text);
}

void vox_worker_healthz_reply(vox_http_req_t *req, void *ctx)
{
	(void)ctx;
	vox_http_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

/* Set while the consume loop runs (PostgreSQL connected, the consumer made),
 * for /readyz; one worker per process. */
static atomic_bool worker_consuming;

/* GET /readyz: 200 while the worker consumes; 503 while it connects or
 * after it stopped consuming (draining on SIGTERM). */
static void worker_readyz_reply(vox_http_req_t *req, void *ctx)
{
	bool ready = atomic_load(&worker_consuming);

	(void)ctx;
	vox_http_reply_json(
	        req, ready ? 200 : 503,
	        json_pack("{s:s}", "status",
	                  ready ? "consuming" : "starting or stopping"));
}

/* Splits "a,b" into a NULL-terminated list; modifies buf. */
static int worker_topics(char *buf, const char **list)
{
	int n = 0;
	char *save = NULL, *tok;

	for (tok = strtok_r(buf, ",", &save); tok && n < WORKER_MAX_TOPICS;
	     tok = strtok_r(NULL, ",", &save))
		list[n++] = tok;
	list[n] = NULL;
	return n;
}

struct ticker {
	const vox_worker_def_t *def;
	vox_pg_t *pg;
	pthread_t thread;
	volatile bool stop;
};

static void *ticker_loop(void *arg)
{
	struct ticker *t = arg;
	vox_error_t err;

	while (!t->stop) {
		if (vox_pg_connect(t->pg, 0, &err) == 0)
			t->def->tick(t->pg, t->def->ctx);
		for (int waited = 0; waited < t->def->tick_ms && !t->stop;
		     waited += 50)
			poll(NULL, 0, 50);
	}
	return NULL;
}

static struct ticker *ticker_start(const vox_worker_def_t *def,
                                   const char *pg_url)
{
	struct ticker *t;

	if (def->tick == NULL)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->def = def;
	t->pg = vox_pg_new(pg_url);
	if (t->pg == NULL ||
	    pthread_create(&t->thread, NULL, ticker_loop, t) != 0) {
		vox_pg_destroy(t->pg);
		free(t);
		return NULL;
	}
	return t;
}

static void ticker_stop(struct ticker *t)
{
	if (t == NULL)
		return;
	t->stop = true;
	pthread_join(t->thread, NULL);
	vox_pg_destroy(t->pg);
	free(t);
}

static int worker_run(const vox_worker_def_t *def, struct worker_cfg *cfg,
                      vox_metrics_t *metrics)
{
	const char *topics[WORKER_MAX_TOPICS + 1];
	char *topics_buf = strdup(cfg->topics), client_id[96];
	vox_producer_conf_t pconf = {0};
	vox_consumer_conf_t cconf = {0};
	vox_producer_t *producer = NULL;
	vox_consumer_t *consumer = NULL;
	vox_relay_t *relay = NULL;
	struct ticker *ticker = NULL;
	vox_pg_t *pg = NULL, *prepare_pg = NULL;
	vox_pg_t *lane_pgs[VOX_CONSUMER_MAX_LANES] = {0};
	vox_error_t err;
	int rc = 1;

	if (topics_buf == NULL || worker_topics(topics_buf, topics) == 0) {
		vox_logf(VOX_LOG_ERROR, "no topics to consume");
		goto out;
	}
	pg = vox_pg_new(cfg->pg_url);
	if (pg == NULL || vox_pg_connect(pg, 30000, &err) != 0) {
		vox_log(VOX_LOG_ERROR, "postgres unreachable", "error",
		        pg ? err.message : "oom", NULL);
		goto out;
	}
	snprintf(client_id, sizeof(client_id), "vox-%s", def->name);
	pconf.brokers = cfg->brokers;
	pconf.client_id = client_id;
	producer = vox_producer_new(&pconf, &err);
	if (producer == NULL) {
		vox_log(VOX_LOG_ERROR, "kafka producer", "error", err.message,
		        NULL);
		goto out;
	}
	if (cfg->relay) {
		relay = vox_relay_start(cfg->pg_url, producer, &err);
		if (relay == NULL) {
			vox_log(VOX_LOG_ERROR, "outbox relay", "error",
			        err.message, NULL);
			goto out;
		}
	}
	cconf.brokers = cfg->brokers;
	cconf.group_id = cfg->group;
	cconf.instance_id = cfg->instance_id;
	cconf.topics = topics;
	cconf.handlers = def->handlers;
	cconf.nhandlers = def->nhandlers;
	cconf.batch_handlers = def->batch_handlers;
	cconf.nbatch_handlers = def->nbatch_handlers;
	cconf.ctx = def->ctx;
	cconf.max_attempts = (int)cfg->max_attempts;
	cconf.backoff_ms = (int)cfg->backoff_ms;
	cconf.session_timeout_ms = (int)cfg->session_timeout_ms;
	cconf.metrics = metrics;
	cconf.batch_fn = def->batch_fn;
	cconf.batch_max = (int)cfg->batch_max;
	cconf.batch_wait_ms = (int)cfg->batch_wait_ms;
	if (def->batch_fn != NULL && def->batch_prepare != NULL) {
		prepare_pg = vox_pg_new(cfg->pg_url);
		cconf.batch_prepare = def->batch_prepare;
		cconf.batch_release = def->batch_release;
		cconf.prepare_pg = prepare_pg;
	}
	if (def->batch_fn == NULL && cfg->lanes > 1) {
		cconf.lanes = (int)cfg->lanes;
		for (int i = 1; i < cconf.lanes; i++)
			lane_pgs[i] = vox_pg_new(cfg->pg_url);
		lane_pgs[0] = pg;
		cconf.lane_pgs = lane_pgs;
	}
	consumer = vox_consumer_new(&cconf, pg, producer, &err);
	if (consumer == NULL) {
		vox_log(VOX_LOG_ERROR, "kafka consumer", "error", err.message,
		        NULL);
		goto out;
	}
	ticker = ticker_start(def, cfg->pg_url);
	vox_log(VOX_LOG_INFO, "worker consuming", "group", cfg->group, "topics",
	        cfg->topics, NULL);
	atomic_store(&worker_consuming, true);
	rc = vox_consumer_run(consumer, &vox_running) == 0 ? 0 : 1;
	atomic_store(&worker_consuming, false);
	ticker_stop(ticker);
out:
	vox_consumer_destroy(consumer);
	vox_pg_destroy(prepare_pg);
	for (int i = 1; i < VOX_CONSUMER_MAX_LANES; i++)
		vox_pg_destroy(lane_pgs[i]);
	vox_relay_stop(relay); /* relays what is committed, then stops */
	vox_producer_destroy(producer, 10000);
	vox_pg_destroy(pg);
	free(topics_buf);
	return rc;
}

int vox_worker_main(const vox_worker_def_t *def, int argc, char **argv)
{
	static const vox_http_route_t routes[] = {
	        {"GET", "/metrics", vox_worker_metrics_reply, NULL, NULL},
	        {"GET", "/healthz", vox_worker_healthz_reply, NULL, NULL},
	        {"GET", "/readyz", worker_readyz_reply, NULL, NULL},
	};
	char group[96], port[16], batch[16], batch_wait[16], lanes[16];
	struct worker_cfg cfg = {0};
	vox_http_conf_t hconf = {0};
	vox_metrics_t *metrics;
	vox_http_t *http = NULL;
	vox_error_t err;
	int level, rc;

	snprintf(group, sizeof(group), "vox.%s", def->name);
	snprintf(port, sizeof(port), "%d", def->metrics_port);
	snprintf(batch, sizeof(batch), "%d",
	         def->batch_max > 0      ? def->batch_max
	         : def->batch_fn != NULL ? 10000
	                                 : 1000);
	snprintf(batch_wait, sizeof(batch_wait), "%d",
	         def->batch_wait_ms > 0  ? def->batch_wait_ms
	         : def->batch_fn != NULL ? 20
	                                 : 1);
	snprintf(lanes, sizeof(lanes), "%d", def->lanes > 0 ? def->lanes : 1);
	const vox_cfg_opt_t opts[] = {
	        {"VOX_PG_URL", VOX_CFG_STRING,
	         "postgresql://vox@127.0.0.1:25432/voxlink", 1, 4096,
	         "PostgreSQL connection URL", &cfg.pg_url},
	        {"VOX_KAFKA_BROKERS", VOX_CFG_STRING, "127.0.0.1:29092", 1,
	         4096, "Kafka bootstrap servers", &cfg.brokers},
	        {"VOX_WORKER_GROUP", VOX_CFG_STRING, group, 1, 200,
	         "consumer group (and inbox name)", &cfg.group},
	        {"VOX_WORKER_TOPICS", VOX_CFG_STRING, def->topics, 1, 2000,
	         "comma-separated topics to consume", &cfg.topics},
	        {"VOX_WORKER_INSTANCE_ID", VOX_CFG_STRING, "", 0, 200,
	         "static group membership id: one per instance, so a restart "
	         "gets its partitions back at once (empty: dynamic)",
	         &cfg.instance_id},
	        {"VOX_WORKER_BIND", VOX_CFG_STRING, "127.0.0.1", 7, 15,
	         "address of /metrics, /healthz and /readyz", &cfg.bind},
	        {"VOX_WORKER_METRICS_PORT", VOX_CFG_INT, port, 0, 65535,
	         "port of /metrics, /healthz and /readyz (0: any)",
	         &cfg.metrics_port},
	        {"VOX_WORKER_MAX_ATTEMPTS", VOX_CFG_INT, "5", 1, 100,
	         "handler attempts before dead-lettering", &cfg.max_attempts},
	        {"VOX_WORKER_BACKOFF_MS", VOX_CFG_INT, "100", 1, 60000,
	         "first retry delay, doubled each attempt", &cfg.backoff_ms},
	        {"VOX_WORKER_BATCH_MAX", VOX_CFG_INT, batch, 1, 100000,
	         "messages polled at once, at most one transaction for them "
	         "(batch-mode workers: metering 10000, notifications 100; "
	         "handler mode 1000)",
	         &cfg.batch_max},
	        {"VOX_WORKER_BATCH_WAIT_MS", VOX_CFG_INT, batch_wait, 1, 10000,
	         "how long a batch may wait to fill after its first message "
	         "(handler mode 1; metering 20; invoicing 200: a batch of "
	         "generate commands costs a scan of the period's usage)",
	         &cfg.batch_wait_ms},
	        {"VOX_WORKER_LANES", VOX_CFG_INT, lanes, 1,
	         VOX_CONSUMER_MAX_LANES,
	         "handler mode: messages of a polled batch run on this many "
	         "lanes at once, each with its own PostgreSQL connection; one "
	         "message key always on one lane, so per-key order holds "
	         "(e.g. provisioning: different numbers' orders at once)",
	         &cfg.lanes},
	        {"VOX_KAFKA_SESSION_TIMEOUT_MS", VOX_CFG_INT, "10000", 6000,
	         300000, "consumer group session timeout",
	         &cfg.session_timeout_ms},
	        {"VOX_WORKER_RELAY", VOX_CFG_BOOL, "true", 0, 0,
	         "run the outbox relay in this process", &cfg.relay},
	        {"VOX_LOG_LEVEL", VOX_CFG_STRING, "info", 4, 5,
	         "debug, info, warn or error", &cfg.log_level},
	};

	size_t ncommon = sizeof(opts) / sizeof(opts[0]);

	/* One glibc malloc arena for every thread, set before any thread
	 * exists (glibc fixes the count when a second thread first mallocs).
	 * By default each thread that mallocs (librdkafka's broker threads,
	 * ours) gets an arena of its own, up to 8 per core; malloc_trim in
	 * the consume loop (vox_consumer_batch.c) gives back the free pages
	 * of the main heap but never the free top of another arena, so after
	 * a backlog (a big fetch, big batches) each arena keeps the pages it
	 * touched as RSS for good: the chaos soak's provisioning worker
	 * stepped up 1.5-4.5 MB once and stayed there (docs/RELIABILITY.md,
	 * scenario 5). In one arena, what is freed is given back by the next
	 * trim. The workers' allocation rates are far below what one arena's
	 * lock holds (tcache serves most small blocks without it).
	 * MALLOC_ARENA_MAX in the environment still wins. */
	if (getenv("MALLOC_ARENA_MAX") == NULL)
		mallopt(M_ARENA_MAX, 1);

	vox_cfg_opt_t *all = calloc(ncommon + def->nopts, sizeof(*all));

	if (all == NULL)
		return 1;
	memcpy(all, opts, sizeof(opts));
	if (def->nopts > 0)
		memcpy(all + ncommon, def->opts, def->nopts * sizeof(*all));
	vox_config_load(def->name, def->about, all, ncommon + def->nopts, argc,
	                argv);
	free(all);
	level = vox_log_level_parse(cfg.log_level);
	if (level < 0) {
		fprintf(stderr,
		        "VOX_LOG_LEVEL: \"%s\" is not one of debug, "
		        "info, warn, error\n",
		        cfg.log_level);
		return 2;
	}
	vox_log_init(def->name, (vox_log_level_t)level);
	vox_signal_setup();
	metrics = vox_metrics_new();
	hconf.bind = cfg.bind;
	hconf.port = (int)cfg.metrics_port;
	hconf.threads = 1;
	hconf.max_body = 4096;
	hconf.routes = routes;
	hconf.nroutes = sizeof(routes) / sizeof(routes[0]);
	hconf.ctx = metrics;
	http = vox_http_start(&hconf, &err);
	if (http == NULL) {
		vox_log(VOX_LOG_ERROR, "metrics endpoint", "error", err.message,
		        NULL);
		vox_metrics_destroy(metrics);
		return 1;
	}
	snprintf(port, sizeof(port), "%d", vox_http_port(http));
	vox_log(VOX_LOG_INFO, "worker starting", "metrics_port", port, NULL);
	if (def->setup != NULL && def->setup(def->ctx, metrics) != 0) {
		vox_http_stop(http, 1000);
		vox_metrics_destroy(metrics);
		return 1;
	}
	rc = worker_run(def, &cfg, metrics);
	if (def->teardown != NULL)
		def->teardown(def->ctx);
	vox_http_stop(http, 1000);
	vox_metrics_destroy(metrics);
	vox_log(VOX_LOG_INFO, "worker stopped", NULL);
	return rc;
}
