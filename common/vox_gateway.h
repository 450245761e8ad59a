/*
 * vox_gateway: the client of the payment gateway, a Stripe-like HTTP API
 * (docs/PAYMENT_SANDBOX.md; the sandbox of ops/payment-sandbox stands in
 * for it). It is a user of vox_upstream (upstream name "payment"), which
 * does the HTTP, the retries with backoff, the circuit breaker and the
 * metrics, as vox_carrier does for the carrier.
 *
 * Every POST carries an Idempotency-Key chosen by the caller; a retry
 * inside a call (no connection, timeout, 5xx) sends the SAME key, so a
 * charge whose answer was lost is answered, not taken again. What is
 * still failing after max_attempts is returned retriable
 * (VOX_ERR_UNAVAILABLE or VOX_ERR_TIMEOUT) and the caller may call again
 * later with the same key, with the same guarantee.
 *
 * A decline is not an error: vox_gateway_charge() returns 0 with
 * out->outcome = VOX_CHARGE_DECLINED, the gateway's decline_code and
 * whether it is hard (never retried: expired, lost or stolen card, ...)
 * or soft (insufficient funds, issuer unavailable: retried on the
 * schedule of docs/BILLING.md).
 *
 * Threads: a vox_gateway_t may be shared by threads, like vox_carrier_t.
 */
#ifndef VOX_GATEWAY_H
#define VOX_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vox_error.h"
#include "vox_metrics.h"

typedef struct vox_gateway vox_gateway_t;

/* 0 (or unset) picks the default of each number. */
typedef struct vox_gateway_conf {
	const char *base_url; /* VOX_PAYMENT_URL, http://127.0.0.1:27082 */
	const char *api_key;  /* "Authorization: Bearer <key>" (sk_sandbox) */
	int timeout_ms;       /* per attempt (10000) */
	int max_attempts;     /* per call, 1..10 (3) */
	int backoff_ms;       /* first retry delay, doubled, full jitter */
	int breaker_failures; /* (5) */
	int breaker_cooldown_ms; /* (5000) */
	vox_metrics_t *metrics;  /* optional, borrowed */
} vox_gateway_conf_t;

vox_gateway_t *vox_gateway_new(const vox_gateway_conf_t *conf,
                               vox_error_t *err);
void vox_gateway_destroy(vox_gateway_t *gw);

/* A card payment method as the gateway describes it: we never see more. */
typedef struct vox_gateway_method {
	char id[128];   /* the token: "pm_..." */
	char brand[32]; /* "visa" */
	char last4[5];
	int exp_month; /* 1..12 */
	int exp_year;  /* 2026 */
} vox_gateway_method_t;

/* GET /v1/payment_methods/{token}. VOX_ERR_NOT_FOUND: no such token;
 * VOX_ERR_INVALID: a token we refuse (not [A-Za-z0-9_]{1,120}). */
int vox_gateway_method_get(vox_gateway_t *gw, const char *token,
                           vox_gateway_method_t *out, vox_error_t *err);

typedef enum vox_charge_outcome {
	VOX_CHARGE_SUCCEEDED = 1,
	VOX_CHARGE_PROCESSING, /* accepted; settles later (a webhook, or
	                          vox_gateway_intent_get) */
	VOX_CHARGE_DECLINED,
} vox_charge_outcome_t;

typedef struct vox_gateway_charge {
	vox_charge_outcome_t outcome;
	char intent_id[128];   /* "pi_..." */
	char decline_code[64]; /* declined: "insufficient_funds", ... */
	bool hard;             /* declined: never retry */
	char message[256];     /* declined: the gateway's words */
	int64_t amount_minor;  /* what the gateway says it charged */
} vox_gateway_charge_t;

/* POST /v1/payment_intents {amount (minor units), currency (lower case on
 * the wire), payment_method, confirm: true, metadata {invoice_id,
 * payment_id, account_id}} with Idempotency-Key: key (the gateway's
 * webhooks carry the metadata back: the ingress keys them by account). 0 with
 * out filled, or an error: retriable after max_attempts (same key each time),
 * VOX_ERR_INVALID for a request the gateway refuses (400), VOX_ERR_NOT_FOUND
 * (no such payment method). */
int vox_gateway_charge(vox_gateway_t *gw, const char *key, const char *token,
                       int64_t amount_minor, const char *currency,
                       const char *invoice_id, const char *payment_id,
                       const char *account_id, vox_gateway_charge_t *out,
                       vox_error_t *err);

/* GET /v1/payment_intents/{id}: the intent's state now, as a charge
 * result (for a PROCESSING one). */
int vox_gateway_intent_get(vox_gateway_t *gw, const char *intent_id,
                           vox_gateway_charge_t *out, vox_error_t *err);

/* Soft declines, which a later attempt may turn into a success. */
bool vox_gateway_decline_soft(const char *decline_code);

/* Checks a webhook's "Gateway-Signature: t=<unix s>,v1=<hex>" header:
 * v1 = hex(HMAC-SHA256(secret, "<t>." body)), |now - t| <= tolerance_s,
 * several v1 entries allowed (secret rotation at the gateway). 0, or
 * VOX_ERR_INVALID with why. */
int vox_gateway_signature_check(const char *secret, const char *header,
                                const char *body, size_t len, int64_t now_s,
                                int tolerance_s, vox_error_t *err);

#endif
