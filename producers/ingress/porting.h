/*
 * Porting orders in the ingress (docs/PORTING.md), shared by porting.c
 * (drafts: create, read, PATCH, lists, history, FOC windows),
 * porting_actions.c (submit, cancel), porting_check.c (portability:
 * ours, then the carrier's) and porting_events.c (the carrier's signed
 * webhooks).
 */
#ifndef INGRESS_PORTING_H
#define INGRESS_PORTING_H

#include "ingress.h"
#include "vox_carrier_port.h"
#include "vox_porting.h"

#define PORTING_TOPIC "vox.cmd.porting"
/* Losing carriers of one order (the sandbox has two; real ones, a few). */
#define PORTING_MAX_CHILDREN 64

/* The columns porting_order_json reads, for "FROM porting_orders o". */
#define PORTING_ORDER_COLUMNS                                                  \
	"o.id, o.status, o.parent_id, o.losing_carrier, o.authorized_name, "   \
	"o.business_name, o.service_address::text, o.account_number_last2, "   \
	"o.pin_last2, o.requested_foc_date::text, vox_iso(o.foc_date), "       \
	"o.loa_document_id, o.invoice_document_id, o.exceptions::text, "       \
	"o.cancel_reason, o.customer_reference, vox_iso(o.expires_at), "       \
	"vox_iso(o.created_at), vox_iso(o.updated_at), "                       \
	"vox_iso(o.submitted_at), vox_iso(o.ported_at), o.version, "           \
	"(SELECT coalesce(json_agg(json_build_object('phone_number', n.e164, " \
	"'status', n.status, 'losing_carrier', n.losing_carrier, "             \
	"'number_id', n.number_id) ORDER BY n.e164), '[]') FROM "              \
	"porting_order_numbers n WHERE n.order_id = o.id OR n.order_id IN "    \
	"(SELECT c.id FROM porting_orders c WHERE c.parent_id = "              \
	"o.id))::text, "                                                       \
	"(SELECT coalesce(json_agg(json_build_object('id', c.id, 'status', "   \
	"c.status, 'losing_carrier', c.losing_carrier, 'foc_date', "           \
	"vox_iso(c.foc_date), 'phone_numbers', (SELECT coalesce(json_agg("     \
	"n.e164 ORDER BY n.e164), '[]') FROM porting_order_numbers n WHERE "   \
	"n.order_id = c.id)) ORDER BY c.losing_carrier, c.id), '[]') FROM "    \
	"porting_orders c WHERE c.parent_id = o.id)::text, "                   \
	"coalesce((o.status NOT IN ('ported', 'cancelled') AND o.foc_date <= " \
	"now() + interval '48 hours') OR EXISTS (SELECT 1 FROM "               \
	"porting_orders "                                                      \
	"c WHERE c.parent_id = o.id AND c.status NOT IN ('ported', "           \
	"'cancelled') AND c.foc_date <= now() + interval '48 hours'), "        \
	"false), "                                                             \
	"(o.status = 'draft' AND o.expires_at <= now()) "
/* Column indexes of PORTING_ORDER_COLUMNS. */
enum porting_col {
	PC_ID,
	PC_STATUS,
	PC_PARENT,
	PC_LOSING,
	PC_NAME,
	PC_BUSINESS,
	PC_ADDRESS,
	PC_ACCOUNT_LAST2,
	PC_PIN_LAST2,
	PC_REQUESTED_FOC,
	PC_FOC,
	PC_LOA,
	PC_INVOICE,
	PC_EXCEPTIONS,
	PC_CANCEL_REASON,
	PC_REFERENCE,
	PC_EXPIRES,
	PC_CREATED,
	PC_UPDATED,
	PC_SUBMITTED,
	PC_PORTED,
	PC_VERSION,
	PC_NUMBERS,
	PC_CHILDREN,
	PC_WITHIN_48H,
	PC_EXPIRED /* a draft past its expires_at, not yet swept */
};

/* An order as answered (never a secret: only the *_last2). */
json_t *porting_order_json(const PGresult *res, int row);

/* The caller's order {id} (PORTING_ORDER_COLUMNS), or NULL after
 * answering 404 porting_order_not_found (also for an id that is not a
 * UUID) or 503. PQclear it. */
PGresult *porting_lookup(vox_http_req_t *req, ingress_req_t *ir,
                         const char *id);

/* 422 porting_rule_violated naming rule (details stolen, may be NULL;
 * details.rule is added). Returns false. */
bool porting_rule(vox_http_req_t *req, const char *rule, const char *message,
                  json_t *details);
/* 400 invalid_body naming field. Returns false. */
bool porting_bad_field(vox_http_req_t *req, const char *field, const char *why);

/* Portability of n canonical E.164 numbers (any n: the carrier is asked
 * in slices of VOX_CARRIER_PORT_CHECK_MAX): ours first (country US or CA;
 * already_on_platform when an account owns it in `numbers`), then the
 * carrier's for the rest. out[i] for e164s[i]. 0, or -1 after answering
 * (503 carrier_unavailable, database_unavailable). */
int porting_portability(vox_http_req_t *req, ingress_t *in,
                        const char *const *e164s, int n,
                        vox_carrier_portability_t *out);

/* The rules about numbers that hold whenever an order's numbers are
 * written or submitted: none owned by an account (number_already_owned),
 * none in another open order (number_in_other_port; own_order's and its
 * children's numbers do not count, NULL: none), every one portable at the
 * carrier (number_not_portable). out (n entries) gets the carrier's
 * answers. true, or false after answering 422/503. */
bool porting_numbers_ok(vox_http_req_t *req, ingress_t *in,
                        const char *own_order, const char *const *e164s, int n,
                        vox_carrier_portability_t *out);

/* A draft past its expires_at (the worker's sweep has not reached it):
 * true after answering 409 invalid_state, as it would once swept. */
bool porting_expired(vox_http_req_t *req, const PGresult *order);

/* Today's date, UTC. */
vox_date_t porting_today(void);

#endif
