/*
 * notifications: the worker that tells accounts what happened, by email,
 * SMS and signed webhooks, walking each account's channel order, and that
 * delivers usage triggers' callback_urls (docs/NOTIFICATIONS.md).
 *
 *   intake.c   handlers (consumer transaction): events -> chains
 *   chain.c    chains: sequence, steps and their rows, moving on
 *   sender.c   sender threads: claim (lease), send
 *   complete.c an attempt's outcome written back, chains moved on
 *   webhook.c  webhook and callback deliveries (signed, SSRF-checked)
 *   endpoint.c endpoint bookkeeping and disabling (endpoint.disabled)
 *   email.c    SMTP through libcurl
 *   sms.c      the Twilio-style Messages API through vox_upstream
 *   render.c   Mustache templates per event type and language
 */
#ifndef NOTIFICATIONS_H
#define NOTIFICATIONS_H

#include <jansson.h>
#include <stdbool.h>

#include "vox_consumer.h"
#include "vox_crypto.h"
#include "vox_metrics.h"
#include "vox_ssrf.h"
#include "vox_upstream.h"

#define NOTIFY_WEBHOOK_TRIES 8 /* attempts of a webhook before it fails */

struct notify_templates;
struct notify_senders;

struct notify_ctx {
	/* settings (main.c's table) */
	const char *templates_dir, *smtp_url, *mail_from;
	const char *sms_url, *sms_sid, *sms_token, *sms_from, *sms_callback;
	const char *allow_cidrs, *encryption_key, *encryption_old_keys;
	long senders, poll_ms, claim_batch, lease_s, time_scale;
	long webhook_timeout_ms, smtp_timeout_ms, sms_timeout_ms;
	long email_deadline_s, sms_deadline_s, webhook_deadline_s;
	long endpoint_failing_s;
	/* made by the setup */
	vox_crypto_keyring_t *keyring; /* NULL: no key (signing impossible) */
	vox_ssrf_t *ssrf;
	vox_upstream_t *webhooks, *sms;
	struct notify_templates *templates;
	struct notify_senders *pool;
	vox_metrics_t *metrics;
	vox_histogram_t *claim_sizes, *latency;
};

/* ---------------------------------------------------------------- intake */
/* batch.c: the intake, one transaction a polled batch. */
int notify_batch(vox_pg_t *pg, vox_batch_msg_t *msgs, size_t n, void *prepared,
                 void *ctx, vox_error_t *err);
int notify_requested(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                     vox_error_t *err);
/* What the intake needs of an event of vox.events it notifies (the whole
 * event): an account and a subject (the ordering key); reservation.expired
 * an account and data.reservation_id. Anything else in it is the
 * producer's to validate: an event that fails is skipped with the reason
 * (logged), not dead-lettered. 0 or VOX_ERR_INVALID. */
int notify_event_check(const json_t *event, vox_error_t *err);
int notify_reservation_check(const json_t *event, vox_error_t *err);
int notify_number_event(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                        vox_error_t *err);
int notify_reservation_event(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                             vox_error_t *err);
/* The receipt as its schema publishes it (0, or VOX_ERR_INVALID). */
int notify_sms_status_validate(const json_t *data, vox_error_t *err);
int notify_sms_status(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                      vox_error_t *err);

/* ---------------------------------------------------------------- chains */
/* An event to notify (strings and data borrowed). */
struct notify_event {
	const char *id;           /* source event id (unique per chain) */
	const char *type;         /* public type: "usage.trigger.fired" */
	const char *account_id;   /* must exist */
	const char *ordering_key; /* trigger, number, reservation, endpoint */
	const char *time;         /* RFC 3339, NULL: now */
	const json_t *data;       /* the public body's data */
	const char *trigger_id;   /* with callback_url: a callback row too */
	const char *callback_url;
};

/* In the caller's transaction: a chain for ev with its first step's rows
 * (and the callback row). An event that already has a chain is a no-op. */
int notify_chain_start(vox_pg_t *pg, const struct notify_ctx *nc,
                       const struct notify_event *ev, vox_error_t *err);
/* Locks the chain (FOR UPDATE) and moves it on when its step is over:
 * every row failed/cancelled, or the deadline passed with none delivered. */
int notify_chain_advance(vox_pg_t *pg, const struct notify_ctx *nc,
                         const char *chain_id, vox_error_t *err);
/* Locks the chain; then its status is delivered. */
int notify_chain_lock(vox_pg_t *pg, const char *chain_id, vox_error_t *err);
int notify_chain_delivered(vox_pg_t *pg, const char *chain_id,
                           vox_error_t *err);
/* Tick: chains whose step deadline passed. */
void notify_chain_sweep(vox_pg_t *pg, const struct notify_ctx *nc);
/* ms of a delay or deadline of s seconds under VOX_NOTIFY_TIME_SCALE. */
long notify_scaled_ms(const struct notify_ctx *nc, double s);

/* ---------------------------------------------------------------- delivery */
typedef enum notify_outcome {
	NOTIFY_DELIVERED, /* the end: 2xx, SMTP 250 */
	NOTIFY_SENT,      /* SMS accepted: waits for its receipt */
	NOTIFY_RETRY,     /* failed attempt; again after retry_ms */
	NOTIFY_FAILED,    /* failed for good */
	NOTIFY_UNSENT,    /* never tried (lease ran short): claim undone */
} notify_outcome_t;

/* One claimed row, what sending it needs, and what came of it. */
struct notify_delivery {
	char id[40], account_id[40], chain_id[40], endpoint_id[40];
	char trigger_id[40], channel[12], message_id[72], event_type[204];
	char account_name[804], language[40]; /* 200 characters of UTF-8 */
	char *recipient, *payload;            /* owned */
	char *secret, *secret_old; /* opened, owned, wiped when freed */
	int attempts, tries;
	double chain_created; /* epoch s; 0: not in a chain */
	/* outcome */
	notify_outcome_t outcome;
	int status_code; /* HTTP or SMTP; 0: none */
	long duration_ms, retry_ms;
	bool gone; /* webhook 410: disable the endpoint */
	char error[1000];
	char provider_id[128]; /* SMS sid */
	bool ours; /* completion: the row was still ours (same try) */
};

void notify_delivery_free(struct notify_delivery *d);
/* Sets the outcome and its error text. */
void notify_outcome(struct notify_delivery *d, notify_outcome_t outcome,
                    int status, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Each sends d and fills its outcome. */
void notify_webhook_send(const struct notify_ctx *nc,
                         struct notify_delivery *d);
void notify_email_send(const struct notify_ctx *nc, struct notify_delivery *d);
void notify_sms_send(const struct notify_ctx *nc, struct notify_delivery *d);
/* Retry delay of a failed email/SMS attempt (ms). */
long notify_message_retry_ms(const struct notify_ctx *nc, int attempts);

/* In its own transaction: the row's outcome, its attempt row, its
 * endpoint's bookkeeping and its chain (complete.c). */
int notify_complete_row(vox_pg_t *pg, const struct notify_ctx *nc,
                        struct notify_delivery *d, vox_error_t *err);
/* The whole claimed batch in the caller's transaction, in lock order. */
int notify_complete_rows(vox_pg_t *pg, const struct notify_ctx *nc,
                         struct notify_delivery *d, int n, vox_error_t *err);

/* Sender threads (VOX_NOTIFY_SENDERS), each with its own connection. */
struct notify_senders *notify_senders_start(struct notify_ctx *nc,
                                            const char *pg_url,
                                            vox_error_t *err);
void notify_senders_stop(struct notify_senders *pool);

/* ---------------------------------------------------------------- endpoints */
/* In the completion transaction: bookkeeping of a webhook attempt, and
 * disabling (410, or failing for VOX_NOTIFY_ENDPOINT_FAILING_S). */
int notify_endpoint_result(vox_pg_t *pg, const struct notify_ctx *nc,
                           const struct notify_delivery *d, vox_error_t *err);
/* Disables the endpoint (if enabled), cancels its queued rows, emits
 * endpoint.disabled and notifies the account. */
int notify_endpoint_disable(vox_pg_t *pg, const struct notify_ctx *nc,
                            const char *endpoint_id, const char *reason,
                            vox_error_t *err);
/* The associated data a sealed secret is bound to: "<table>/<id>". */
int notify_secret_open(const struct notify_ctx *nc, const char *table,
                       const char *id, const char *column_text, char **out,
                       vox_error_t *err);

/* ---------------------------------------------------------------- templates */
/* Loads every <dir>/<lang>/<type>.<part>.mustache and checks each; en must
 * have subject, txt, html and sms for every type a chain can carry. */
struct notify_templates *notify_templates_load(const char *dir,
                                               vox_error_t *err);
void notify_templates_free(struct notify_templates *t);
/* Renders part ("subject", "txt", "html", "sms") of type for language
 * (falling back to en) over {event, data, account}. Caller frees. */
char *notify_render(const struct notify_templates *t,
                    const struct notify_delivery *d, const char *part,
                    vox_error_t *err);

#endif
