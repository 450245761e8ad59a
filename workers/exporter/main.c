/*
 * exporter: the event topics as hourly gzip'd NDJSON objects in the
 * S3-compatible store (docs/EXPORT.md). Its own consume loop (export.c):
 * no PostgreSQL, the offsets are committed after the objects are stored.
 */
#include <stdio.h>
#include <stdlib.h>

#include "exporter.h"
#include "vox_config.h"
#include "vox_http.h"
#include "vox_log.h"
#include "vox_signal.h"
#include "vox_worker.h"

static exp_conf_t conf;
static const char *bind_addr, *log_level, *bucket, *s3_bucket;
static long metrics_port;

static const vox_cfg_opt_t opts[] = {
        {"VOX_KAFKA_BROKERS", VOX_CFG_STRING, "127.0.0.1:29092", 1, 4096,
         "Kafka bootstrap servers", &conf.brokers},
        {"VOX_EXPORT_TOPICS", VOX_CFG_STRING,
         "vox.events.numbers,vox.events.usage,vox.events.billing,"
         "vox.events.porting,vox.events.notifications",
         1, 2000, "comma-separated topics to export (at most 32)",
         &conf.topics},
        {"VOX_EXPORT_GROUP", VOX_CFG_STRING, "voxlink-exporter", 1, 200,
         "consumer group (its committed offsets say what is exported)",
         &conf.group},
        {"VOX_EXPORT_INSTANCE_ID", VOX_CFG_STRING, "", 0, 200,
         "static group membership id: one per instance, so a restart gets "
         "its partitions back at once (empty: dynamic)",
         &conf.instance_id},
        {"VOX_KAFKA_SESSION_TIMEOUT_MS", VOX_CFG_INT, "10000", 6000, 300000,
         "consumer group session timeout", &conf.session_timeout_ms},
        {"VOX_S3_ENDPOINT", VOX_CFG_STRING, "http://127.0.0.1:27090", 8, 2048,
         "S3-compatible store (path-style URLs)", &conf.s3_endpoint},
        {"VOX_S3_REGION", VOX_CFG_STRING, "us-east-1", 1, 64,
         "region the requests are signed for", &conf.s3_region},
        {"VOX_S3_BUCKET", VOX_CFG_STRING, "voxlink-documents", 3, 63,
         "the documents' bucket: the export's unless VOX_EXPORT_BUCKET",
         &s3_bucket},
        {"VOX_S3_ACCESS_KEY", VOX_CFG_STRING, NULL, 1, 256,
         "access key id (required)", &conf.s3_access_key},
        {"VOX_S3_SECRET_KEY", VOX_CFG_STRING, NULL, 1, 256,
         "secret access key (required)", &conf.s3_secret_key},
        {"VOX_S3_TIMEOUT_MS", VOX_CFG_INT, "30000", 100, 600000,
         "time per S3 request (failures are retried with backoff)",
         &conf.s3_timeout_ms},
        {"VOX_EXPORT_BUCKET", VOX_CFG_STRING, "", 0, 63,
         "bucket of the export (empty: VOX_S3_BUCKET); made if missing",
         &bucket},
        {"VOX_EXPORT_MAX_RECORDS", VOX_CFG_INT, "200000", 1, 10000000,
         "a partition is flushed when it holds this many records",
         &conf.max_records},
        {"VOX_EXPORT_MAX_BYTES", VOX_CFG_INT, "67108864", 1024, 1073741824,
         "a partition is flushed when it holds this many bytes (before "
         "gzip)",
         &conf.max_bytes},
        {"VOX_EXPORT_FLUSH_MS", VOX_CFG_INT, "60000", 10, 86400000,
         "a partition is flushed when its oldest unflushed record was "
         "read this long ago",
         &conf.flush_ms},
        {"VOX_EXPORT_LATENESS_MS", VOX_CFG_INT, "600000", 0, 604800000,
         "allowed lateness: an hour closes when the topic's newest event "
         "time is this far past its end",
         &conf.lateness_ms},
        {"VOX_EXPORT_IDLE_CLOSE_MS", VOX_CFG_INT, "300000", 10, 86400000,
         "a topic with no message for this long closes its hours by the "
         "wall clock (minus the lateness): a quiet last hour closes too",
         &conf.idle_close_ms},
        {"VOX_EXPORT_GZIP_LEVEL", VOX_CFG_INT, "6", 1, 9,
         "zlib level of the objects (1 fastest, 9 smallest)", &conf.gzip_level},
        {"VOX_EXPORT_THREADS", VOX_CFG_INT, "2", 1, 16,
         "threads that gzip and PUT the objects of a flush", &conf.threads},
        {"VOX_EXPORT_FETCH_QUEUE_MB", VOX_CFG_INT, "256", 16, 4096,
         "messages fetched ahead per instance (librdkafka's "
         "queued.max.messages.kbytes)",
         &conf.fetch_queue_mb},
        {"VOX_EXPORT_BIND", VOX_CFG_STRING, "127.0.0.1", 7, 15,
         "address of /metrics and /healthz", &bind_addr},
        {"VOX_EXPORT_METRICS_PORT", VOX_CFG_INT, "19107", 0, 65535,
         "port of /metrics and /healthz (0: any)", &metrics_port},
        {"VOX_LOG_LEVEL", VOX_CFG_STRING, "info", 4, 5,
         "debug, info, warn or error", &log_level},
};

int main(int argc, char **argv)
{
	static const vox_http_route_t routes[] = {
	        {"GET", "/metrics", vox_worker_metrics_reply, NULL, NULL},
	        {"GET", "/healthz", vox_worker_healthz_reply, NULL, NULL},
	};
	vox_http_conf_t hconf = {0};
	vox_http_t *http;
	vox_error_t err;
	char port[16];
	int level, rc;

	vox_config_load("exporter",
	                "the event topics as hourly gzip'd NDJSON objects in "
	                "S3, with _SUCCESS per closed hour",
	                opts, sizeof(opts) / sizeof(opts[0]), argc, argv);
	level = vox_log_level_parse(log_level);
	if (level < 0) {
		fprintf(stderr,
		        "VOX_LOG_LEVEL: \"%s\" is not one of debug, "
		        "info, warn, error\n",
		        log_level);
		return 2;
	}
	conf.bucket = bucket[0] ? bucket : s3_bucket;
	vox_log_init("exporter", (vox_log_level_t)level);
	vox_signal_setup();
	conf.metrics = vox_metrics_new();
	hconf.bind = bind_addr;
	hconf.port = (int)metrics_port;
	hconf.threads = 1;
	hconf.max_body = 4096;
	hconf.routes = routes;
	hconf.nroutes = sizeof(routes) / sizeof(routes[0]);
	hconf.ctx = conf.metrics;
	http = vox_http_start(&hconf, &err);
	if (http == NULL) {
		vox_log(VOX_LOG_ERROR, "metrics endpoint", "error", err.message,
		        NULL);
		vox_metrics_destroy(conf.metrics);
		return 1;
	}
	snprintf(port, sizeof(port), "%d", vox_http_port(http));
	vox_log(VOX_LOG_INFO, "exporter starting", "metrics_port", port, NULL);
	rc = exp_run(&conf, &vox_running);
	vox_http_stop(http, 1000);
	vox_metrics_destroy(conf.metrics);
	vox_log(VOX_LOG_INFO, "exporter stopped", NULL);
	return rc;
}
