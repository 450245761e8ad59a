/*
 * ingress: the front door. It authenticates, validates, publishes and
 * answers; commands are answered 202 only after Kafka acknowledged them.
 */
#ifndef INGRESS_H
#define INGRESS_H

#include <pthread.h>

#include "vox_http.h"
#include "vox_kafka.h"
#include "vox_metrics.h"
#include "vox_pg.h"
#include "vox_redis.h"

typedef struct ingress {
	vox_pg_pool_t *pg_pool;
	vox_producer_t *producer;
	vox_metrics_t *metrics;
	const char *redis_url;
	pthread_mutex_t redis_lock; /* one connection for readiness checks */
	vox_redis_t *redis;
	vox_counter_t *accepted, *refused;
} ingress_t;

/* Route handlers. */
void ingress_canary(vox_http_req_t *req, void *ctx);
void ingress_operation_get(vox_http_req_t *req, void *ctx);
void ingress_healthz(vox_http_req_t *req, void *ctx);
void ingress_readyz(vox_http_req_t *req, void *ctx);
void ingress_metrics(vox_http_req_t *req, void *ctx);

/* Takes a pooled connection or answers 503 and returns NULL. */
vox_pg_t *ingress_pg(ingress_t *in, vox_http_req_t *req);

#endif
