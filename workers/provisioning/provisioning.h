/*
 * provisioning: number commands turned into carrier calls and database
 * state (docs/NUMBERS.md). Every handler runs inside the consumer's
 * transaction: its database effects, its events (outbox) and the inbox row
 * commit together. Carrier calls are idempotent (order: Idempotency-Key =
 * order id; configure/release: by carrier number id), so a redelivered
 * message repeats them harmlessly.
 */
#ifndef PROVISIONING_H
#define PROVISIONING_H

#include "vox_carrier.h"
#include "vox_consumer.h"
#include "vox_ops.h"

struct prov_ctx {
	vox_carrier_t *carrier;
	const char *carrier_url, *carrier_key;
	long reservation_ttl_s;
	long carrier_timeout_ms;
	/* carrier sync (config_sync.c) */
	long sync_backoff_ms, sync_max_backoff_ms;
	vox_gauge_t *sync_pending;
	vox_counter_t *sync_ok, *sync_failed;
};

int prov_reserve(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                 vox_error_t *err);
int prov_extend(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                vox_error_t *err);
int prov_order(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
               vox_error_t *err);
int prov_activate(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                  vox_error_t *err);
int prov_deactivate(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                    vox_error_t *err);
int prov_release(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                 vox_error_t *err);
/* config.c: the routing, business_hours and voicemail sections, and the
 * account's notification preferences. */
int prov_configure(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                   vox_error_t *err);
int prov_preferences(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                     vox_error_t *err);
/* Shared by the handlers (numbers.c). */
int prov_emit(vox_pg_t *pg, const char *type, const vox_message_t *msg,
              const char *subject, json_t *data, vox_error_t *err);
void prov_op_of(const vox_message_t *msg, const char *kind, vox_op_t *op);
int prov_done(vox_pg_t *pg, const vox_message_t *msg, const char *kind,
              json_t *result, vox_error_t *err);
int prov_fail(vox_pg_t *pg, const vox_message_t *msg, const char *kind,
              const char *code, const char *message, vox_error_t *err);
/* Checks the message's account and data (prov_command_validate) and
 * ids, then marks the operation running. Returns VOX_ERR_INVALID for a
 * message that can never succeed. */
int prov_need(vox_pg_t *pg, const vox_message_t *msg, const char *const *names,
              vox_error_t *err);

/* validate.c: each command's data as its schema publishes it (0, or
 * VOX_ERR_INVALID with the reason); prov_need runs the one of msg->type. */
int prov_reservation_validate(const json_t *data, vox_error_t *err);
int prov_extend_validate(const json_t *data, vox_error_t *err);
int prov_order_validate(const json_t *data, vox_error_t *err);
int prov_activate_validate(const json_t *data, vox_error_t *err);
/* deactivate and release */
int prov_number_validate(const json_t *data, vox_error_t *err);
int prov_routing_validate(const json_t *data, vox_error_t *err);
int prov_hours_validate(const json_t *data, vox_error_t *err);
int prov_voicemail_validate(const json_t *data, vox_error_t *err);
int prov_preferences_validate(const json_t *data, vox_error_t *err);
/* The envelope: accountid a UUID, source the table's (vox_event.c). */
int prov_envelope_validate(const json_t *event, vox_error_t *err);
int prov_command_validate(const char *type, const json_t *data,
                          vox_error_t *err);

/* Ticker: expires reservations past their time. */
void prov_expire(vox_pg_t *pg, void *ctx);

/* Ticker: pushes pending forwarding to the carrier (config_sync.c). */
void prov_config_sync(vox_pg_t *pg, void *ctx);
/* Registers the sync's metrics (metrics may be NULL). */
void prov_sync_metrics(struct prov_ctx *pc, vox_metrics_t *metrics);
/* A call_forwarding document as the carrier's forwarding (borrows doc). */
int prov_sync_forwarding(const json_t *doc, vox_carrier_forwarding_t *fwd);

#endif
