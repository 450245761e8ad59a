/*
 * vox_canary: the pipeline probe. The provisioning worker answers it (it
 * is published to vox.cmd.provisioning); a worker answers it only if its
 * handler table has vox_canary_handle.
 *
 * `POST /v1/canary` publishes a "vox.canary.requested" command whose data is
 * {"operation_id": "<uuid>"}; a worker handling it completes the operation
 * (result names the worker, partition and offset) and emits
 * "vox.canary.completed" on vox.events through the outbox.
 */
#ifndef VOX_CANARY_H
#define VOX_CANARY_H

#include "vox_consumer.h"

#define VOX_CANARY_TYPE      "vox.canary.requested"
#define VOX_CANARY_DONE_TYPE "vox.canary.completed"
#define VOX_EVENTS_TOPIC     "vox.events"

/* Checks a canary command's data; the C twin of
 * schemas/events/vox.canary.requested.schema.json. */
int vox_canary_validate(const json_t *data, vox_error_t *err);

int vox_canary_handle(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                      vox_error_t *err);

/* The same for msgs[0..n) in one statement (vox_batch_handler_t): the
 * operations completed with their history rows, and the outbox rows, the
 * same rows vox_canary_handle writes one message at a time. Any invalid
 * message fails the whole call (the consumer then runs them one at a
 * time, which dead-letters it). */
int vox_canary_handle_batch(vox_pg_t *pg, const vox_message_t *msgs, size_t n,
                            void *ctx, vox_error_t *err);

#endif
