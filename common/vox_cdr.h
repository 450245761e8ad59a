/*
 * vox_cdr: carrier call/message detail records (CDRs), the one definition
 * the ingress (POST /v1/carrier/cdrs), producers/cdr-import and the
 * metering worker share (docs/METERING.md).
 *
 * A record on the wire (JSON object; the CSV layout of cdr-import has the
 * same columns):
 *   id          the carrier's record id, 1..128 of [A-Za-z0-9._:-]
 *   type        inbound_call | outbound_call | sms_received | sms_sent
 *   from, to    the parties. Our number is "to" for inbound records and
 *               "from" for outbound ones and must be a valid E.164 number;
 *               the other party is 1..32 of [+0-9A-Za-z] ("anonymous", a
 *               short code, ...)
 *   started_at  RFC 3339 with a zone (Z or +hh:mm), at most 5 minutes in
 *               the future and not before 2000-01-01
 *   duration_s  calls: integer seconds 0..86400 (required); messages: absent
 *   segments    messages: integer 1..100 (default 1); calls: absent
 * Other fields are ignored (carriers add their own).
 *
 * On vox.cdr.raw each accepted record is one CloudEvent of type
 * vox.cdr.received, key and subject our number, data the normalized record
 * plus "carrier" and "received_via" (api | file).
 */
#ifndef VOX_CDR_H
#define VOX_CDR_H

#include <jansson.h>
#include <stdint.h>

#include "vox_error.h"
#include "vox_time.h"

#define VOX_CDR_TOPIC          "vox.cdr.raw"
#define VOX_CDR_EVENT_TYPE     "vox.cdr.received"
#define VOX_CDR_ID_MAX         128
#define VOX_CDR_PARTY_MAX      32
#define VOX_CDR_MAX_DURATION_S 86400
#define VOX_CDR_MAX_SEGMENTS   100
#define VOX_CDR_FUTURE_SKEW_US (300LL * 1000000)
#define VOX_CARRIER_NAME_MAX   63

typedef enum vox_cdr_type {
	VOX_CDR_INBOUND_CALL = 0,
	VOX_CDR_OUTBOUND_CALL,
	VOX_CDR_SMS_RECEIVED,
	VOX_CDR_SMS_SENT,
	VOX_CDR_NTYPES
} vox_cdr_type_t;

typedef struct vox_cdr {
	char id[VOX_CDR_ID_MAX + 1];
	vox_cdr_type_t type;
	char from[VOX_CDR_PARTY_MAX + 1];
	char to[VOX_CDR_PARTY_MAX + 1];
	char number[24];    /* our number, canonical E.164 */
	int64_t started_us; /* Unix epoch microseconds, UTC */
	int duration_s;     /* calls; 0 for messages */
	int segments;       /* messages; 0 for calls */
} vox_cdr_t;

/* "inbound_call", ...; NULL for an out-of-range type. */
const char *vox_cdr_type_name(vox_cdr_type_t type);
/* -1 when name is not one of the four. */
int vox_cdr_type_parse(const char *name);
static inline int vox_cdr_is_call(vox_cdr_type_t t)
{
	return t == VOX_CDR_INBOUND_CALL || t == VOX_CDR_OUTBOUND_CALL;
}
static inline int vox_cdr_is_inbound(vox_cdr_type_t t)
{
	return t == VOX_CDR_INBOUND_CALL || t == VOX_CDR_SMS_RECEIVED;
}

/* Checks and normalizes one record. now_us > 0 enables the "not in the
 * future" check (the ingress and cdr-import pass the clock; the metering
 * worker passes 0, the record was checked when received). Returns 0, or
 * VOX_ERR_INVALID with *reason_code one of: not_an_object, missing_id,
 * invalid_id, invalid_type, missing_number, invalid_number, invalid_party,
 * invalid_started_at, started_at_in_future, invalid_duration,
 * invalid_segments; err->message says what exactly. */
int vox_cdr_parse(const json_t *rec, int64_t now_us, vox_cdr_t *out,
                  const char **reason_code, vox_error_t *err);

/* vox_cdr_parse() for records read back from vox.cdr.raw (checked when
 * received): no clock check, and our number is checked for E.164 syntax
 * only (libphonenumber costs microseconds a record; the metering worker
 * then requires it to be one of our numbers anyway). */
int vox_cdr_parse_trusted(const json_t *rec, vox_cdr_t *out,
                          const char **reason_code, vox_error_t *err);

/* The data of a vox.cdr.received event as the metering worker takes it:
 * carrier a carrier name (reason invalid_carrier), the record
 * (vox_cdr_parse_trusted: our number E.164 by syntax, as the schema says)
 * and received_via api or file (invalid_received_via). 0, or
 * VOX_ERR_INVALID with *reason_code. */
int vox_cdr_check(const json_t *data, vox_cdr_t *out, const char **reason_code,
                  vox_error_t *err);
/* vox_cdr_check() of data alone (tests/unit/test_schemas.c, the fuzzer).
 */
int vox_cdr_validate(const json_t *data, vox_error_t *err);

/* True for a carrier name as stored in carrier_credentials. */
int vox_carrier_name_valid(const char *name);

/* The vox.cdr.received CloudEvent for a parsed record, as a NUL-terminated
 * JSON string in out (at most outlen bytes, 1024 is always enough).
 * via: "api" or "file". Returns its length, or -1 if it did not fit. */
int vox_cdr_event(const vox_cdr_t *cdr, const char *carrier, const char *via,
                  char *out, size_t outlen);

#endif
