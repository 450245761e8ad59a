/*
 * vox_kafka: the idempotent producer every binary publishes through.
 *
 * enable.idempotence=true (so acks=all, bounded in-flight, retries), with a
 * delivery report for every message: callers either pass a callback (called
 * once, from the producer's poll thread) or block in vox_producer_send_sync().
 *
 * librdkafka 2.0.2 can raise a fatal idempotence error after a broker
 * disconnect (fixed only in 2.3.0). The producer then purges what it holds
 * (their callbacks report VOX_ERR_UNAVAILABLE, outcome unknown), destroys
 * the handle and builds a new one; the process keeps running.
 */
#ifndef VOX_KAFKA_H
#define VOX_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "vox_error.h"

typedef struct vox_producer vox_producer_t;

typedef struct vox_kafka_header {
	const char *name;
	const char *value; /* NUL-terminated */
} vox_kafka_header_t;

/* err is NULL when the broker acknowledged the message. */
typedef void (*vox_delivery_fn)(void *opaque, const vox_error_t *err,
                                int32_t partition, int64_t offset);

typedef struct vox_producer_conf {
	const char *brokers;
	const char *client_id;
	int message_timeout_ms; /* give up a message after this (0: 30000) */
	int linger_ms;          /* batching delay (0: 5) */
} vox_producer_conf_t;

vox_producer_t *vox_producer_new(const vox_producer_conf_t *conf,
                                 vox_error_t *err);

/* Waits up to timeout_ms for outstanding deliveries, then destroys. */
void vox_producer_destroy(vox_producer_t *p, int timeout_ms);

/* Queues one message. On 0, cb(opaque, ...) is called exactly once later,
 * on the poll thread: it must not block or send.
 * On error cb is not called. key may be NULL; payload is copied. */
int vox_producer_send(vox_producer_t *p, const char *topic, const char *key,
                      const void *payload, size_t len,
                      const vox_kafka_header_t *headers, size_t nheaders,
                      vox_delivery_fn cb, void *opaque, vox_error_t *err);

/* Queues and waits for the delivery report. partition/offset may be NULL. */
int vox_producer_send_sync(vox_producer_t *p, const char *topic,
                           const char *key, const void *payload, size_t len,
                           const vox_kafka_header_t *headers, size_t nheaders,
                           int32_t *partition, int64_t *offset,
                           vox_error_t *err);

/* Asks the cluster for metadata within timeout_ms: 0 when a broker answers. */
int vox_producer_ping(vox_producer_t *p, int timeout_ms, vox_error_t *err);
/* Looks up topics' partitions and leaders before the first message to
 * them (a server warming up before it listens): 0, or the first error. */
int vox_producer_warm(vox_producer_t *p, const char *const *topics,
                      int timeout_ms, vox_error_t *err);

/* How many times the handle was rebuilt after a fatal error. */
unsigned vox_producer_rebuilds(vox_producer_t *p);

/* For tests: raise a fatal error in the current handle, as librdkafka does
 * on an idempotence sequence desynchronisation. */
int vox_producer_inject_fatal(vox_producer_t *p);

/* Sets a librdkafka property on a conf, filling err on failure. */
struct rd_kafka_conf_s;
int vox_kafka_conf_set(struct rd_kafka_conf_s *conf, const char *name,
                       const char *value, vox_error_t *err);

#endif
