/*
 * vox_relay: publishes outbox rows to Kafka after their transaction
 * committed (DESIGN.md), so an event is never published for an effect that
 * rolled back and never lost for one that committed.
 *
 * Every worker process runs a relay, but only one publishes at a time (a
 * transaction-level advisory lock), taking rows in id order and sending at
 * most one row of a key per round, so a later event of a key is sent only
 * after the earlier one was acknowledged: events of one key (one
 * partition) keep their order even when a publish fails and is retried.
 * A row is marked published only after Kafka acknowledged it. Delivery is
 * at least once: consumers deduplicate by the CloudEvents id.
 */
#ifndef VOX_RELAY_H
#define VOX_RELAY_H

#include "vox_error.h"
#include "vox_kafka.h"
#include "vox_pg.h"

typedef struct vox_relay vox_relay_t;

/* Publishes up to batch unpublished rows; *published gets how many. */
int vox_relay_once(vox_pg_t *pg, vox_producer_t *producer, int batch,
                   int *published, vox_error_t *err);

/* A thread with its own connection that LISTENs for vox_outbox
 * notifications and relays until stopped (and at least every second). */
vox_relay_t *vox_relay_start(const char *conninfo, vox_producer_t *producer,
                             vox_error_t *err);

/* Relays what is left once more, then stops the thread. */
void vox_relay_stop(vox_relay_t *relay);

#endif
