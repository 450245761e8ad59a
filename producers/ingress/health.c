/* /healthz (the process answers), /readyz (PostgreSQL, Redis and Kafka
 * answer), /metrics, /v1/openapi.yaml, and the benchmark's static answer.
 * None of them needs credentials. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress.h"

void ingress_healthz(vox_http_req_t *req, void *ctx)
{
	(void)ctx;
	vox_http_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static json_t *check_result(int rc, const vox_error_t *err)
{
	return rc == 0 ? json_pack("{s:s}", "status", "up")
	               : json_pack("{s:s, s:s}", "status", "down", "error",
	                           err->message);
}

static int check_pg(ingress_t *in, vox_error_t *err)
{
	vox_pg_t *pg = vox_pg_pool_acquire(in->pg_pool, 1000, err);
	int rc;

	if (pg == NULL)
		return VOX_ERR_UNAVAILABLE;
	rc = vox_pg_exec(pg, "SELECT 1", 0, NULL, NULL, err);
	vox_pg_pool_release(in->pg_pool, pg);
	return rc;
}

static int check_redis(ingress_t *in, vox_error_t *err)
{
	return limiter_ping(in->limiter, err);
}

void ingress_readyz(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	vox_error_t pg_err, redis_err, kafka_err;
	int pg_rc, redis_rc, kafka_rc;

	pg_rc = check_pg(in, &pg_err);
	redis_rc = check_redis(in, &redis_err);
	kafka_rc = vox_producer_ping(in->producer, 1000, &kafka_err);
	vox_http_reply_json(
	        req, pg_rc || redis_rc || kafka_rc ? 503 : 200,
	        json_pack("{s:s, s:{s:o, s:o, s:o}}", "status",
	                  pg_rc || redis_rc || kafka_rc ? "unavailable"
	                                                : "ready",
	                  "checks", "postgres", check_result(pg_rc, &pg_err),
	                  "redis", check_result(redis_rc, &redis_err), "kafka",
	                  check_result(kafka_rc, &kafka_err)));
}

void ingress_metrics(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;
	size_t len;
	char *text = vox_metrics_render(in->metrics, &len);

	if (text == NULL) {
		vox_http_reply_error(req, 500, "internal", "out of memory",
		                     NULL);
		return;
	}
	vox_http_reply(req, 200, "text/plain; version=0.0.4", text, len);
	free(text);
}

/* The contract this binary serves (VOX_OPENAPI_FILE, read at start). */
void ingress_openapi(vox_http_req_t *req, void *ctx)
{
	ingress_t *in = ctx;

	if (in->openapi == NULL) {
		vox_http_reply_error(req, 503, "openapi_unavailable",
		                     "the OpenAPI file could not be read at "
		                     "start (VOX_OPENAPI_FILE)",
		                     NULL);
		return;
	}
	vox_http_reply(req, 200, "application/yaml", in->openapi,
	               in->openapi_len);
}

/* The ceiling bench/ingress compares with: same server, same parsing,
 * a 202 without Kafka or PostgreSQL. Only with VOX_INGRESS_BENCH=true. */
void ingress_bench_static(vox_http_req_t *req, void *ctx)
{
	static const char body[] = "{\"status\":\"accepted\"}";

	(void)ctx;
	vox_http_reply(req, 202, "application/json", body, sizeof(body) - 1);
}
