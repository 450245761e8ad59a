/*
 * vox_gateway_internal: the payment gateway client's answer parsing, split
 * out of the HTTP so the unit tests can feed it the gateway's bodies
 * (tests/unit/test_gateway.c). Callers of vox_gateway.h never need it.
 */
#ifndef VOX_GATEWAY_INTERNAL_H
#define VOX_GATEWAY_INTERNAL_H

#include <stddef.h>

#include "vox_gateway.h"

/* A payment intent (200) or a card_error (402, its "payment_intent" and
 * decline) as a charge result. VOX_ERR_UNAVAILABLE (retriable) when the
 * body is not what the gateway sends: the charge's outcome is unknown, so
 * the caller asks again with the same key. */
int vox_gateway_parse_charge(long status, const char *body, size_t len,
                             vox_gateway_charge_t *out, vox_error_t *err);

/* A payment_method object. VOX_ERR_UNAVAILABLE when unreadable,
 * VOX_ERR_INVALID when it is not a card we can store. */
int vox_gateway_parse_method(const char *body, size_t len,
                             vox_gateway_method_t *out, vox_error_t *err);

/* The upstream's describe hook: "message (code, decline_code)" of a
 * Stripe-shaped error body, or "". */
void vox_gateway_describe(const char *body, size_t len, char *out, size_t size);

/* A token we send in a path: [A-Za-z0-9_]{1,120}. */
bool vox_gateway_token_ok(const char *token);

#endif
