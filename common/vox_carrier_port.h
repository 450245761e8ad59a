/*
 * vox_carrier_port: porting at the carrier (docs/CARRIER_SANDBOX.md
 * "Porting"), Telnyx v2-like: portability checks and porting orders. Calls
 * go through the vox_carrier_t handle (retries, breaker, metrics with
 * endpoints "portability", "port_create", "port_update", "port_cancel",
 * "port_get"); errors map as in vox_carrier.h.
 */
#ifndef VOX_CARRIER_PORT_H
#define VOX_CARRIER_PORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vox_carrier.h"

/* Most numbers one portability check carries (VOX_PORTING_CHECK_MAX). */
#define VOX_CARRIER_PORT_CHECK_MAX 250
/* Most numbers one porting order carries. */
#define VOX_CARRIER_PORT_MAX 1000
/* Most exceptions a vox_carrier_port_t keeps (the rest are dropped). */
#define VOX_CARRIER_PORT_EXCEPTIONS_MAX 8

typedef struct vox_carrier_portability {
	char e164[24];
	bool portable, fast_portable;
	char not_portable_reason[40]; /* "" when portable */
	char losing_carrier[96];      /* "" when unknown */
	char spid[16];
	char number_type[16]; /* "local", "mobile", "toll_free" */
	bool pin_required, account_number_required;
} vox_carrier_portability_t;

/* POST /v2/portability_checks for e164s[n] (1..VOX_CARRIER_PORT_CHECK_MAX):
 * out[i] for e164s[i] (a number missing from the answer: not portable,
 * reason "number_not_found"). Every e164s[i] must have the E.164 shape
 * ("+" and 2..15 digits), else VOX_ERR_INVALID before any request: check
 * the numbers first and ask only about the valid ones. Safe to retry (a
 * check changes nothing at the carrier). */
int vox_carrier_portability(vox_carrier_t *c, const char *const *e164s, int n,
                            vox_carrier_portability_t *out, vox_error_t *err);

/* What a port request carries. Secrets are borrowed, never logged. */
typedef struct vox_carrier_port_req {
	const char *customer_reference; /* our order id (required) */
	const char *const *e164s;
	int n; /* 1..1000 */
	const char *authorized_name, *business_name;
	const char *service_address_json; /* a JSON object, or NULL */
	const char *account_number, *pin; /* pin may be NULL */
	const char *foc_date;             /* "YYYY-MM-DD" */
	const char *loa_document_id, *invoice_document_id;
} vox_carrier_port_req_t;

typedef struct vox_carrier_port_exception {
	char code[40];  /* "wrong_pin", "name_mismatch"... */
	char field[48]; /* "end_user.pin"... ("" when not given) */
} vox_carrier_port_exception_t;

typedef struct vox_carrier_port {
	char id[64];       /* the carrier's porting order id */
	char status[24];   /* our status names: "submitted", "in-process"... */
	char foc_date[32]; /* "2026-12-14T14:00:00Z" once confirmed, else "" */
	int n_exceptions;  /* in exception: its reasons (at most _MAX kept) */
	vox_carrier_port_exception_t
	        exceptions[VOX_CARRIER_PORT_EXCEPTIONS_MAX];
} vox_carrier_port_t;

/* POST /v2/porting_orders with Idempotency-Key = idempotency_key (the
 * leaf order's id + ":" + its version): the carrier answers a repeated key
 * with the first order, so a redelivered submit never ports twice.
 * Required in req: customer_reference, e164s/n, foc_date (the carrier
 * refuses an order without it). A refusal (VOX_ERR_INVALID, not retriable)
 * carries the carrier's code in its message: "mixed_losing_carriers",
 * "number_not_portable", "number_in_open_port", "duplicate_number". */
int vox_carrier_port_create(vox_carrier_t *c, const vox_carrier_port_req_t *req,
                            const char *idempotency_key,
                            vox_carrier_port_t *out, vox_error_t *err);
/* PATCH /v2/porting_orders/{id}: corrected details after an exception
 * (the carrier resubmits: out->status "submitted"); Idempotency-Key as
 * above. Only what req sets is sent (e164s and customer_reference are
 * not). Outside "exception": VOX_ERR_CONFLICT (409 invalid_state). */
int vox_carrier_port_update(vox_carrier_t *c, const char *carrier_order_id,
                            const vox_carrier_port_req_t *req,
                            const char *idempotency_key,
                            vox_carrier_port_t *out, vox_error_t *err);
/* POST /v2/porting_orders/{id}/actions/cancel. Idempotent at the carrier
 * (a second cancel answers the order as it is): out->status
 * "cancel-pending", then a webhook says "cancelled". A ported order:
 * VOX_ERR_CONFLICT. */
int vox_carrier_port_cancel(vox_carrier_t *c, const char *carrier_order_id,
                            vox_carrier_port_t *out, vox_error_t *err);
/* GET /v2/porting_orders/{id}. */
int vox_carrier_port_get(vox_carrier_t *c, const char *carrier_order_id,
                         vox_carrier_port_t *out, vox_error_t *err);

/* Building blocks, exposed for tests (tests/unit/test_carrier_port.c). */

/* The JSON body of a port request (docs/CARRIER_SANDBOX.md "Porting"):
 * with_numbers for a create (phone_numbers and customer_reference, both
 * required then); without for a PATCH (only what req sets). NULL with
 * VOX_ERR_INVALID for a bad request; the message never holds the account
 * number or the PIN. The body does: never log it. */
json_t *vox_carrier_port_body(const vox_carrier_port_req_t *req,
                              bool with_numbers, vox_error_t *err);

/* A portability answer's body into out[n] for e164s[n] (see
 * vox_carrier_portability). Unreadable: VOX_ERR_UNAVAILABLE, retriable. */
int vox_carrier_parse_portability(const char *body, size_t len,
                                  const char *const *e164s, int n,
                                  vox_carrier_portability_t *out,
                                  vox_error_t *err);

/* A porting order answer's body ({"data": {...}}) into out. An order
 * without a usable id or with a status we do not know is
 * VOX_ERR_UNAVAILABLE (unreadable), retriable. */
int vox_carrier_parse_port(const char *body, size_t len,
                           vox_carrier_port_t *out, vox_error_t *err);

#endif
