/*
 * vox_consumer: the at-least-once consume loop every worker runs, made
 * exactly-once in effect by the inbox.
 *
 * For each message: parse the CloudEvents envelope (invalid: dead-letter),
 * find the handler for its type (none: dead-letter), then in ONE PostgreSQL
 * transaction claim the message id in the inbox and run the handler. Only
 * after COMMIT is the offset stored (enable.auto.offset.store=false; the
 * auto-commit then commits stored offsets only). A redelivered message finds
 * its id in the inbox and is skipped.
 *
 * Failures: PostgreSQL unreachable -> wait and retry the same message,
 * without limit (nothing is skipped). A retriable handler error -> retry with
 * exponential backoff and jitter up to max_attempts, then dead-letter. A
 * non-retriable error -> dead-letter at once. Dead letters go to
 * "<topic>.dlq" with the original key and bytes and the reason in headers
 * (vox-dlq-reason, vox-dlq-consumer, vox-dlq-source-topic, ...).
 *
 * A crash inside a handler (segfault, abort, OOM kill) is survived across
 * restarts: every polled batch (batch and handler mode) runs under an
 * in-flight mark in PostgreSQL (table consumer_inflight, vox_inflight.h);
 * a worker that finds offsets a dead process left marked runs them in
 * pieces, narrows the crash down to one message and dead-letters it
 * (vox-dlq-reason: crashed_worker) once it has killed the worker twice on
 * its own (docs/ARCHITECTURE.md).
 */
#ifndef VOX_CONSUMER_H
#define VOX_CONSUMER_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "vox_error.h"
#include "vox_kafka.h"
#include "vox_metrics.h"
#include "vox_pg.h"

typedef struct vox_consumer vox_consumer_t;

#define VOX_CONSUMER_MAX_LANES 16

typedef struct vox_message {
	const char *topic;
	int32_t partition;
	int64_t offset;
	const char *key; /* NUL-terminated copy, or NULL */
	const char *payload;
	size_t len;
	const json_t *event; /* the parsed envelope */
	const char *id, *type, *account_id, *subject, *time, *traceparent;
	const json_t *data;
	const char *consumer; /* inbox name of the consumer */
} vox_message_t;

/* Fills msg's envelope members (event, id, type, account_id, subject,
 * time, traceparent, data) from a parsed envelope; for batch handlers that
 * run handler-style functions over the messages they parse. */
void vox_message_envelope(const json_t *ev, vox_message_t *msg);

/* Runs inside the transaction, after the inbox claim. Return 0 to commit;
 * an error rolls everything back (the inbox claim too). */
typedef int (*vox_handler_fn)(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                              vox_error_t *err);

typedef struct vox_handler {
	const char *type; /* CloudEvents type, e.g. "vox.canary.requested" */
	vox_handler_fn fn;
} vox_handler_t;

/* Handler mode polls what is available (up to batch_max messages, waiting
 * at most batch_wait_ms after the first) under ONE in-flight mark. A run
 * of consecutive messages whose type has a set-based form here is claimed
 * in the inbox with one statement and handled by it in ONE transaction:
 * msgs[0..n) are the claimed ones (redeliveries left out), in poll order.
 * If that transaction fails for any reason but an outage, the run is
 * rolled back and each message goes the single-message way (its own
 * transaction, retries, dead letter), in order. Messages of other types
 * always go the single-message way. */
typedef int (*vox_handler_batch_fn)(vox_pg_t *pg, const vox_message_t *msgs,
                                    size_t n, void *ctx, vox_error_t *err);

typedef struct vox_batch_handler {
	const char *type;
	vox_handler_batch_fn fn;
} vox_batch_handler_t;

/* Batch mode, for high-volume streams (metering): the consumer neither
 * parses envelopes nor claims an inbox; it hands up to batch_max raw
 * messages to batch_fn inside ONE transaction, so the handler must make its
 * effect idempotent by itself (metering: usage_dedup). The handler may set
 * dlq_reason on messages that can never succeed; they are dead-lettered
 * after the commit. Offsets of the whole batch are stored after that.
 * A batch failing with a non-retriable error is split and run one message
 * at a time, so one poison message does not hold the others. */
typedef struct vox_batch_msg {
	const char *topic;
	int32_t partition;
	int64_t offset;
	const char *key; /* not NUL-terminated: key_len bytes, or NULL */
	size_t key_len;
	const char *payload; /* not NUL-terminated */
	size_t len;
	char dlq_reason[240]; /* set by the handler; cleared before each try */
} vox_batch_msg_t;

/* prepared: what batch_prepare returned for these messages, or NULL
 * (no prepare hook, or the batch was split: do everything). */
typedef int (*vox_batch_fn)(vox_pg_t *pg, vox_batch_msg_t *msgs, size_t n,
                            void *prepared, void *ctx, vox_error_t *err);

/* Optional pipelining of batch mode: the work of a batch that needs no
 * transaction (parsing, pricing, lookups on a connection of its own) runs
 * on the polling thread while the previous batch commits on a writer
 * thread. Returns the state handed to batch_fn (NULL is allowed: it does
 * it all); batch_release frees it after the batch is finished. */
typedef void *(*vox_batch_prepare_fn)(vox_pg_t *pg, vox_batch_msg_t *msgs,
                                      size_t n, void *ctx);
typedef void (*vox_batch_release_fn)(void *prepared, void *ctx);

typedef struct vox_consumer_conf {
	const char *brokers;
	const char *group_id;
	const char *name;          /* inbox consumer name (NULL: group_id) */
	const char *instance_id;   /* group.instance.id, static membership */
	const char *const *topics; /* NULL-terminated */
	const vox_handler_t *handlers;
	size_t nhandlers;
	void *ctx;              /* passed to handlers */
	int max_attempts;       /* 0: 5 */
	int backoff_ms;         /* 0: 100 */
	int backoff_max_ms;     /* 0: 10000 */
	int session_timeout_ms; /* 0: 10000 */
	vox_metrics_t *metrics; /* optional */
	/* handler mode: set-based forms of some handlers (optional) */
	const vox_batch_handler_t *batch_handlers;
	size_t nbatch_handlers;
	/* Handler mode: lanes (0, 1: none) and one connection per lane
	 * (lane_pgs[0] may be the consumer's own); up to
	 * VOX_CONSUMER_MAX_LANES. The messages of a polled batch without a
	 * set-based form run on lane hash(key) % lanes, each lane in poll
	 * order, all lanes at once; offsets are stored per partition up to
	 * the first message not finished. */
	int lanes;
	vox_pg_t *const *lane_pgs;
	vox_batch_fn batch_fn; /* set: batch mode (handlers unused) */
	/* messages polled at once; handler mode too (vox_worker: 10000 in
	 * batch mode, 1000 in handler mode) */
	int batch_max;     /* 0: 5000 messages */
	int batch_wait_ms; /* 0: 20 ms to fill a batch after the first */
	vox_batch_prepare_fn batch_prepare; /* optional: pipelined batches */
	vox_batch_release_fn batch_release;
	vox_pg_t *prepare_pg; /* the polling thread's connection for prepare */
} vox_consumer_conf_t;

/* pg and producer stay owned by the caller and must outlive the consumer;
 * the producer carries dead letters. */
vox_consumer_t *vox_consumer_new(const vox_consumer_conf_t *conf, vox_pg_t *pg,
                                 vox_producer_t *producer, vox_error_t *err);

/* Consumes until *running becomes 0; then finishes the message in hand,
 * commits stored offsets and leaves the group. Returns 0 on a clean stop. */
int vox_consumer_run(vox_consumer_t *c, volatile sig_atomic_t *running);

void vox_consumer_destroy(vox_consumer_t *c);

#endif
