/*
 * ingress: HTTP API in front of the Kafka command topics.
 * Until authentication exists it binds to 127.0.0.1 only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingress.h"
#include "vox_config.h"
#include "vox_log.h"
#include "vox_signal.h"

struct ingress_cfg {
	const char *bind, *pg_url, *redis_url, *brokers, *log_level;
	long port, threads, max_body, pg_pool, kafka_timeout_ms, linger_ms;
};

static const vox_http_route_t routes[] = {
        {"POST", "/v1/canary", ingress_canary, NULL},
        {"GET", "/v1/operations/{id}", ingress_operation_get, NULL},
        {"GET", "/healthz", ingress_healthz, NULL},
        {"GET", "/readyz", ingress_readyz, NULL},
        {"GET", "/metrics", ingress_metrics, NULL},
};

static int ingress_serve(const struct ingress_cfg *cfg, ingress_t *in)
{
	vox_http_conf_t hconf = {0};
	vox_http_t *http;
	vox_error_t err;
	char port[16];

	hconf.bind = cfg->bind;
	hconf.port = (int)cfg->port;
	hconf.threads = (int)cfg->threads;
	hconf.max_body = (size_t)cfg->max_body;
	hconf.routes = routes;
	hconf.nroutes = sizeof(routes) / sizeof(routes[0]);
	hconf.ctx = in;
	hconf.metrics = in->metrics;
	http = vox_http_start(&hconf, &err);
	if (http == NULL) {
		vox_log(VOX_LOG_ERROR, "cannot start HTTP server", "error",
		        err.message, NULL);
		return 1;
	}
	snprintf(port, sizeof(port), "%d", vox_http_port(http));
	vox_log(VOX_LOG_INFO, "ingress listening", "bind", cfg->bind, "port",
	        port, NULL);
	while (vox_running)
		pause();
	vox_log(VOX_LOG_INFO, "ingress stopping: draining requests", NULL);
	/* Deliveries still in flight resume their requests while we drain. */
	vox_producer_destroy(in->producer, 5000);
	in->producer = NULL;
	vox_http_stop(http, 5000);
	return 0;
}

int main(int argc, char **argv)
{
	struct ingress_cfg cfg;
	const vox_cfg_opt_t opts[] = {
	        {"VOX_INGRESS_BIND", VOX_CFG_STRING, "127.0.0.1", 7, 15,
	         "IPv4 address to listen on (loopback until auth exists)",
	         &cfg.bind},
	        {"VOX_INGRESS_PORT", VOX_CFG_INT, "18080", 0, 65535,
	         "TCP port of the HTTP API", &cfg.port},
	        {"VOX_INGRESS_THREADS", VOX_CFG_INT, "4", 1, 256,
	         "HTTP thread pool size", &cfg.threads},
	        {"VOX_MAX_BODY_BYTES", VOX_CFG_INT, "1048576", 1024, 67108864,
	         "largest request body accepted", &cfg.max_body},
	        {"VOX_PG_URL", VOX_CFG_STRING,
	         "postgresql://vox@127.0.0.1:55432/voxlink", 1, 4096,
	         "PostgreSQL connection URL", &cfg.pg_url},
	        {"VOX_PG_POOL", VOX_CFG_INT, "8", 1, 512,
	         "PostgreSQL connections", &cfg.pg_pool},
	        {"VOX_REDIS_URL", VOX_CFG_STRING, "redis://127.0.0.1:56379", 1,
	         4096, "Redis URL", &cfg.redis_url},
	        {"VOX_KAFKA_BROKERS", VOX_CFG_STRING, "127.0.0.1:59092", 1,
	         4096, "Kafka bootstrap servers", &cfg.brokers},
	        {"VOX_KAFKA_TIMEOUT_MS", VOX_CFG_INT, "10000", 100, 300000,
	         "time a command may wait for Kafka before 503",
	         &cfg.kafka_timeout_ms},
	        {"VOX_KAFKA_LINGER_MS", VOX_CFG_INT, "2", 0, 1000,
	         "producer batching delay", &cfg.linger_ms},
	        {"VOX_LOG_LEVEL", VOX_CFG_STRING, "info", 4, 5,
	         "debug, info, warn or error", &cfg.log_level},
	};
	vox_producer_conf_t pconf = {0};
	ingress_t in = {0};
	vox_error_t err;
	int level, rc = 1;

	vox_config_load("ingress", "VoxLink HTTP API: publishes commands", opts,
	                sizeof(opts) / sizeof(opts[0]), argc, argv);
	level = vox_log_level_parse(cfg.log_level);
	if (level < 0) {
		fprintf(stderr,
		        "VOX_LOG_LEVEL: \"%s\" is not one of debug, "
		        "info, warn, error\n",
		        cfg.log_level);
		return 2;
	}
	if (strncmp(cfg.bind, "127.", 4) != 0) {
		/* Nothing authenticates callers yet (issue 4 adds it). */
		fprintf(stderr,
		        "VOX_INGRESS_BIND: \"%s\" is not a loopback "
		        "address; only 127.x.x.x until authentication "
		        "exists\n",
		        cfg.bind);
		return 2;
	}
	vox_log_init("ingress", (vox_log_level_t)level);
	vox_signal_setup();
	in.metrics = vox_metrics_new();
	in.accepted =
	        vox_metrics_counter(in.metrics, "vox_commands_accepted_total",
	                            "Commands Kafka acknowledged", NULL);
	in.refused = vox_metrics_counter(
	        in.metrics, "vox_commands_refused_total",
	        "Commands answered 503 because Kafka did not take them", NULL);
	in.pg_pool = vox_pg_pool_new(cfg.pg_url, (int)cfg.pg_pool);
	pthread_mutex_init(&in.redis_lock, NULL);
	in.redis = vox_redis_new(cfg.redis_url, 500, &err);
	if (in.pg_pool == NULL || in.redis == NULL) {
		vox_log(VOX_LOG_ERROR, "bad PostgreSQL or Redis settings",
		        "error", err.message, NULL);
		goto out;
	}
	pconf.brokers = cfg.brokers;
	pconf.client_id = "vox-ingress";
	pconf.message_timeout_ms = (int)cfg.kafka_timeout_ms;
	pconf.linger_ms = (int)cfg.linger_ms;
	in.producer = vox_producer_new(&pconf, &err);
	if (in.producer == NULL) {
		vox_log(VOX_LOG_ERROR, "kafka producer", "error", err.message,
		        NULL);
		goto out;
	}
	rc = ingress_serve(&cfg, &in);
out:
	vox_producer_destroy(in.producer, 5000);
	vox_redis_destroy(in.redis);
	vox_pg_pool_destroy(in.pg_pool);
	vox_metrics_destroy(in.metrics);
	pthread_mutex_destroy(&in.redis_lock);
	vox_log(VOX_LOG_INFO, "ingress stopped", NULL);
	return rc;
}
