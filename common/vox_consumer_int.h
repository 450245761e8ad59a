/*
 * vox_consumer_int: what the files of the consumer share and nobody else
 * sees (librdkafka's rdkafka_int.h pattern). The consumer is one module
 * split by concern:
 *   vox_consumer.c          config, group membership, the poll loop
 *   vox_consumer_message.c  handler mode: envelope, inbox, retries
 *   vox_consumer_batch.c    batch mode: polling, commit, the writer thread
 *   vox_dlq.c               dead letters (<topic>.dlq with the reason)
 *   vox_crashguard.c        recovery from a worker that died mid-batch
 */
#ifndef VOX_CONSUMER_INT_H
#define VOX_CONSUMER_INT_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>

#include "vox_consumer.h"
#include "vox_uuid.h"

struct vox_consumer {
	rd_kafka_t *rk;
	vox_pg_t *pg;
	vox_producer_t *producer;
	char *name;
	/* this process's mark owner id (vox_inflight) */
	char owner[VOX_UUID_STRLEN];
	bool guard_warned; /* the in-flight table failed once: said so */
	/* librdkafka reported a fatal error (e.g. a static member fenced):
	 * this consumer can consume nothing more; the process must exit so
	 * that its supervisor starts a fresh one */
	bool fatal;
	const vox_handler_t *handlers;
	size_t nhandlers;
	int nlanes;
	vox_pg_t *lane_pgs[VOX_CONSUMER_MAX_LANES];
	const vox_batch_handler_t *batch_handlers;
	size_t nbatch_handlers;
	void *ctx;
	int max_attempts, backoff_ms, backoff_max_ms;
	vox_counter_t *processed, *duplicates, *dead_lettered, *retries;
	vox_counter_t *recoveries;
	vox_histogram_t *handle_seconds;
	vox_gauge_t *lag_seconds;
	double last_trim; /* vox_mono_seconds() of the last malloc_trim */
	vox_batch_fn batch_fn;
	int batch_max, batch_wait_ms;
	vox_batch_prepare_fn batch_prepare;
	vox_batch_release_fn batch_release;
	vox_pg_t *prepare_pg;
};

/* A batch run ended because the consumer is stopping, unfinished. */
#define VOX_CONSUMER_STOPPED 1

/* vox_consumer.c */
/* Sleeps ms in short slices so a stop request is noticed; false if
 * stopped. */
bool vox_consumer_nap(long ms, volatile sig_atomic_t *running);
/* The consumer's backoff: equal jitter in [d/2, d] (vox_time). */
long vox_consumer_backoff(const vox_consumer_t *c, int attempt);
void vox_consumer_store_offset(vox_consumer_t *c,
                               const rd_kafka_message_t *rkm);

/* vox_consumer_message.c: parses, claims and handles one message until it
 * is finished (0: its offset may be stored) or the consumer stops. */
int vox_consumer_message(vox_consumer_t *c, const rd_kafka_message_t *rkm,
                         volatile sig_atomic_t *running);
/* The same on connection pg (a lane's). */
int vox_consumer_message_on(vox_consumer_t *c, vox_pg_t *pg,
                            const rd_kafka_message_t *rkm,
                            volatile sig_atomic_t *running);

/* Handler mode: runs a polled batch rkms[0..n) (no dead marks over it:
 * the caller checked) and stores the offset of each message finished.
 * 0, or VOX_CONSUMER_STOPPED with the rest left unstored. */
int vox_consumer_messages(vox_consumer_t *c, rd_kafka_message_t **rkms,
                          size_t n, volatile sig_atomic_t *running);

/* vox_consumer_batch.c */
/* Polls up to batch_max messages into rkms (and their views into msgs),
 * waiting at most batch_wait_ms after the first: how many. */
size_t vox_consumer_batch_poll(vox_consumer_t *c, rd_kafka_message_t **rkms,
                               vox_batch_msg_t *msgs);
void vox_consumer_batch_run(vox_consumer_t *c, volatile sig_atomic_t *running);
void vox_consumer_batch_view(const rd_kafka_message_t *rkm, vox_batch_msg_t *m);
/* Commits msgs[0..n), dead-letters what the handler marked, stores the
 * offsets: 0, or VOX_CONSUMER_STOPPED. prepared may be NULL. */
int vox_consumer_batch_finish(vox_consumer_t *c, rd_kafka_message_t **rkms,
                              vox_batch_msg_t *msgs, size_t n, void *prepared,
                              volatile sig_atomic_t *running);

/* vox_dlq.c: sends the original message to <topic>.dlq with the reason in
 * headers, retrying until Kafka takes it or the consumer stops (non-zero):
 * a dead letter is never dropped. */
int vox_dlq_send(vox_consumer_t *c, const rd_kafka_message_t *rkm,
                 const char *reason, int attempts,
                 volatile sig_atomic_t *running);
/* The same, failing the message's operation on pg (a lane's). */
int vox_dlq_send_on(vox_consumer_t *c, vox_pg_t *pg,
                    const rd_kafka_message_t *rkm, const char *reason,
                    int attempts, volatile sig_atomic_t *running);
/* The messages of a batch with a dlq_reason, all queued at once. */
int vox_dlq_send_marked(vox_consumer_t *c, rd_kafka_message_t **rkms,
                        vox_batch_msg_t *msgs, size_t n,
                        volatile sig_atomic_t *running);

/* vox_crashguard.c (docs/ARCHITECTURE.md, "A message that kills the
 * worker"). */
/* Marks msgs[0..n) in flight on pg (autocommitted: never inside a
 * transaction), waiting out a PostgreSQL outage. With dead set, also
 * returns the marks of dead processes over these offsets there (NULL when
 * none; the caller owns it). *mark is 0 when no mark could be written (the
 * batch then runs unguarded). VOX_CONSUMER_STOPPED if stopped first. */
int vox_crashguard_begin(vox_consumer_t *c, vox_pg_t *pg,
                         const vox_batch_msg_t *msgs, size_t n, int attempts,
                         int64_t *mark, json_t **dead,
                         volatile sig_atomic_t *running);
/* Clears a mark after its batch is finished (0: nothing to clear). */
void vox_crashguard_end(vox_consumer_t *c, vox_pg_t *pg, int64_t mark,
                        volatile sig_atomic_t *running);
/* Runs a polled batch that covers offsets a dead worker left in flight:
 * in pieces, each marked, narrowing down to the record that kills the
 * worker, which is dead-lettered (crashed_worker). Uses c->pg on the
 * calling thread (the writer must be idle). 0 or VOX_CONSUMER_STOPPED. */
int vox_crashguard_batch(vox_consumer_t *c, rd_kafka_message_t **rkms,
                         vox_batch_msg_t *msgs, size_t n, const json_t *dead,
                         volatile sig_atomic_t *running);
/* Handler mode: one message under a mark; dead-letters it instead when it
 * has killed the worker too often. Same result as vox_consumer_message. */
int vox_crashguard_message(vox_consumer_t *c, const rd_kafka_message_t *rkm,
                           volatile sig_atomic_t *running);
/* Handler mode: a polled batch under one mark (vox_consumer_messages);
 * when a dead process left marks over its offsets, each message runs
 * alone under its own mark instead (vox_crashguard_message), so the next
 * crash names the message. Stores the offsets of what it finished: 0, or
 * VOX_CONSUMER_STOPPED. */
int vox_crashguard_messages(vox_consumer_t *c, rd_kafka_message_t **rkms,
                            vox_batch_msg_t *msgs, size_t n,
                            volatile sig_atomic_t *running);

#endif
