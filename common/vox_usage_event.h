/*
 * vox_usage_event: the events the metering worker publishes, checked the
 * way consumers (and tests/unit/test_schemas.c) check them; their JSON
 * Schemas are schemas/events/vox.usage.rated.schema.json and
 * vox.notification.requested.schema.json (docs/METERING.md).
 */
#ifndef VOX_USAGE_EVENT_H
#define VOX_USAGE_EVENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "vox_buf.h"
#include "vox_cdr.h"
#include "vox_error.h"

#define VOX_USAGE_RATED_TYPE  "vox.usage.rated"
#define VOX_NOTIFICATION_TYPE "vox.notification.requested"

/* At most this many records in one vox.usage.rated event. */
#define VOX_USAGE_RATED_MAX 500

/* One rated record as vox.usage.rated carries it (strings borrowed). */
typedef struct vox_rated_rec {
	const char *usage_id;       /* usage_records.id */
	const char *carrier;        /* carrier name */
	const char *carrier_cdr_id; /* the carrier's record id */
	const char *number;         /* our number, E.164 */
	vox_cdr_type_t type;
	int64_t started_us;
	int billable_s, units;
	int64_t cost_micros;
} vox_rated_rec_t;

/* Appends the vox.usage.rated event of account's recs[0..n) (1..
 * VOX_USAGE_RATED_MAX) to b: the envelope of vox_event_head (subject and
 * accountid the account; a child of parent, which may be NULL) and its
 * data, every string JSON-escaped. Built as text because it is on the
 * metering hot path (one event per 500 records). 0 or b's sticky error:
 * give b a cap of VOX_EVENT_MAX_BYTES, which any 500 records fit. */
int vox_usage_rated_event(vox_buf_t *b, const char *account_id,
                          const char *currency, const char *parent,
                          const vox_rated_rec_t *recs, size_t n);

/* data of vox.usage.rated: {account_id, currency, count, cost_micros,
 * records: [{id, carrier, carrier_cdr_id, number, event_type, started_at,
 * billable_s, units, cost_micros}]}, count = records' length, cost_micros
 * = their sum. 0 or VOX_ERR_INVALID. */
int vox_usage_rated_validate(const json_t *data, vox_error_t *err);

/* data of vox.notification.requested of kind usage_trigger: {kind,
 * trigger_id, account_id, category, trigger_by, threshold, value,
 * recurring, period_start, callback_url, friendly_name}. */
int vox_notification_validate(const json_t *data, vox_error_t *err);

#endif
