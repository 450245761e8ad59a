/*
 * porting: the worker of vox.cmd.porting (docs/PORTING.md). Submits
 * orders to the carrier (split by losing carrier), cancels them, applies
 * the carrier's events, completes ports into `numbers` and expires drafts.
 *
 * Every handler runs inside the consumer's transaction: its database
 * effects, the porting_order_events rows, the vox.events events (outbox)
 * and the inbox row commit together. Carrier calls are idempotent (create:
 * Idempotency-Key "<leaf id>:<version>", update: "<leaf id>:<version>:<n>"
 * with n the leaf's earlier submits, cancel: idempotent at the carrier), so
 * a redelivered command repeats them harmlessly. Secrets are opened only to
 * build a carrier request and never logged.
 */
#ifndef PORTING_H
#define PORTING_H

#include <jansson.h>
#include <stdbool.h>

#include "vox_carrier.h"
#include "vox_consumer.h"
#include "vox_crypto.h"

struct porting_ctx {
	vox_carrier_t *carrier;
	vox_crypto_keyring_t *ring;
	const char *carrier_url, *carrier_key, *carrier_name;
	const char *encryption_key, *encryption_old_keys;
	long carrier_timeout_ms;
	long expire_batch;
	long poll_after_s, poll_batch; /* the lost-webhook poll (poll.c) */
};

/* The carrier's event id and order id, as the command's schema allows
 * (the ingress's webhook takes order ids of at most 64). */
#define POR_EVENT_ID_MAX   200
#define POR_CARRIER_ID_MAX 200

/* One order row, as the handlers need it (porting_orders). */
struct por_order {
	char id[40], account_id[40], parent_id[40]; /* "" when NULL */
	char status[24], losing_carrier[204];
	char carrier_order_id[POR_CARRIER_ID_MAX + 4];
	char foc_date[40];           /* vox_iso, "" when NULL */
	char requested_foc_date[12]; /* "YYYY-MM-DD", "" when NULL */
	long version;
	bool within_cutoff; /* foc_date within 48 h from now */
	int children;       /* how many child orders it has */
};

/* handlers (submit.c, cancel.c, carrier_event.c) */
int por_submit(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
               vox_error_t *err);
int por_cancel(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
               vox_error_t *err);
int por_carrier_event(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                      vox_error_t *err);
/* Applies, in their order, the carrier events held on holder_id (the
 * leaf itself, or the parent it was split from) before the submit of
 * leaf_id was recorded (carrier_event.c); called by the submit once it
 * is. */
int por_early_replay(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                     const char *holder_id, const char *leaf_id,
                     vox_error_t *err);
/* The reason of a held early event. */
#define POR_EARLY "early"
/* tick (expire.c): drafts past expires_at become cancelled. */
void por_expire(vox_pg_t *pg, void *ctx);
/* tick (poll.c): leaves the carrier has been silent about are read at the
 * carrier, and a status that moved on is applied (a lost webhook). */
void por_poll(vox_pg_t *pg, void *ctx);

/* validate.c: the commands as their schemas publish them (0, or
 * VOX_ERR_INVALID with the reason). por_need runs the envelope check and
 * the validator of msg->type; por_carrier_event its own two. */
int por_envelope_validate(const json_t *event, vox_error_t *err);
int por_carrier_envelope_validate(const json_t *event, vox_error_t *err);
int por_submit_validate(const json_t *data, vox_error_t *err);
int por_cancel_validate(const json_t *data, vox_error_t *err);
int por_carrier_event_validate(const json_t *data, vox_error_t *err);
int por_command_validate(const char *type, const json_t *data,
                         vox_error_t *err);

/* order.c: shared by the handlers */
/* Checks the message's account and data.order_id / data.operation_id,
 * then marks the operation (kind) running. VOX_ERR_INVALID for a message
 * that can never succeed. */
int por_need(vox_pg_t *pg, const vox_message_t *msg, const char *kind,
             vox_error_t *err);
/* The operation completed with result (stolen), or failed with a code
 * (a business failure: the message is done). */
int por_done(vox_pg_t *pg, const vox_message_t *msg, const char *kind,
             json_t *result, vox_error_t *err);
int por_fail(vox_pg_t *pg, const vox_message_t *msg, const char *kind,
             const char *code, const char *message, vox_error_t *err);
/* Locks the order (FOR UPDATE); account_id may be NULL (any account).
 * VOX_ERR_NOT_FOUND when there is none. */
int por_order_lock(vox_pg_t *pg, const char *id, const char *account_id,
                   struct por_order *o, vox_error_t *err);
/* The ids and statuses of o's children, locked, oldest first (*n up to
 * max). */
int por_children(vox_pg_t *pg, const char *parent_id, struct por_order *out,
                 int max, int *n, vox_error_t *err);
/* One porting_order_events row. carrier_event_id may be NULL; with one,
 * *inserted says whether the row is new (false: a duplicate). */
int por_history(vox_pg_t *pg, const char *order_id, const char *from,
                const char *to, bool applied, const char *source,
                const char *carrier_event_id, const char *reason,
                const char *detail_json, bool *inserted, vox_error_t *err);
/* Sets the order's status (and its numbers'), with the timestamps of the
 * status; then its history row (unless carrier_event_id: the caller wrote
 * it) and its vox.events event. */
int por_move(vox_pg_t *pg, const vox_message_t *msg, struct por_order *o,
             const char *to, const char *source, const char *reason,
             vox_error_t *err);
/* por_move() announced as type (NULL: the status's own). msg may be NULL
 * (the tick). */
int por_move_as(vox_pg_t *pg, const vox_message_t *msg, struct por_order *o,
                const char *to, const char *source, const char *reason,
                const char *type, vox_error_t *err);
/* The vox.events event (vox_porting_event_type, or type when not NULL) of
 * order id having entered its current status from previous. */
int por_emit_order(vox_pg_t *pg, const vox_message_t *msg, const char *id,
                   const char *type, const char *previous, vox_error_t *err);
/* Recomputes a parent's summary status from its children; a change is
 * written, recorded and announced like any move. */
int por_parent_sync(vox_pg_t *pg, const vox_message_t *msg,
                    const char *parent_id, vox_error_t *err);
/* The order as the operation's result: {order_id, status}. */
json_t *por_result(const struct por_order *o);

#define POR_MAX_CHILDREN 16 /* losing carriers in one order */

#endif
