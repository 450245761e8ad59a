/*
 * vox_inflight: the in-flight marks of consumers (table consumer_inflight,
 * migration 0017): the evidence a worker leaves when it dies mid-batch.
 *
 * A mark records, per partition, the first..last offsets a consumer is
 * about to process, the owner (a uuid per consumer process) and the
 * PostgreSQL backend that wrote it. It is written autocommitted, never
 * inside the batch transaction, and deleted after the batch is finished.
 * A mark is "dead" when its owner is another process and its backend is no
 * longer in pg_stat_activity: a process that dies takes its connections
 * with it, so its marks outlive it, while the marks of a live worker (say
 * one still finishing a batch of a partition that a rebalance gave to
 * another) are never taken for a crash.
 *
 * Dead marks are returned as a JSON array of {"m": mark, "t": topic,
 * "p": partition, "f": first, "l": last, "a": attempts}; the caller owns
 * it (json_decref).
 */
#ifndef VOX_INFLIGHT_H
#define VOX_INFLIGHT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vox_consumer.h"
#include "vox_error.h"
#include "vox_pg.h"

/* What the dead marks say about one message. */
typedef struct vox_inflight_seen {
	int crashes; /* highest attempts of a dead mark over it; 0: clean */
	int alone;   /* highest attempts of a dead mark over it alone */
} vox_inflight_seen_t;

/* Marks msgs[0..n) in flight for consumer with attempts (one statement).
 * *mark receives the mark's id. With dead != NULL, the same statement
 * returns the dead marks over these offsets in *dead (NULL when none). */
int vox_inflight_begin(vox_pg_t *pg, const char *consumer, const char *owner,
                       const vox_batch_msg_t *msgs, size_t n, int attempts,
                       int64_t *mark, json_t **dead, vox_error_t *err);

/* Deletes a mark (all its partitions). */
int vox_inflight_clear(vox_pg_t *pg, int64_t mark, vox_error_t *err);

/* Deletes the dead marks listed (each partition row named, no more: the
 * other partitions of a dead mark may be another worker's to recover). */
int vox_inflight_forget(vox_pg_t *pg, const json_t *dead, vox_error_t *err);

/* Fills seen[0..n) from dead; returns how many messages a dead mark
 * covers. */
size_t vox_inflight_seen(const json_t *dead, const vox_batch_msg_t *msgs,
                         size_t n, vox_inflight_seen_t *seen);

/* Takes out of dead (and returns, NULL when none) the marks whose offsets
 * are all finished once msgs[0..done) are: one of their partition's
 * messages at or past their last offset is done, and none up to it is
 * left in msgs[done..n). The batch holds each partition in offset order. */
json_t *vox_inflight_finished(json_t *dead, const vox_batch_msg_t *msgs,
                              size_t n, size_t done);

#endif
