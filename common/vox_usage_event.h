/*
 * vox_usage_event: the events the metering worker publishes, checked the
 * way consumers (and tests/unit/test_schemas.c) check them; their JSON
 * Schemas are schemas/events/vox.usage.rated.schema.json and
 * vox.notification.requested.schema.json (docs/METERING.md).
 */
#ifndef VOX_USAGE_EVENT_H
#define VOX_USAGE_EVENT_H

#include <jansson.h>

#include "vox_error.h"

#define VOX_USAGE_RATED_TYPE  "vox.usage.rated"
#define VOX_NOTIFICATION_TYPE "vox.notification.requested"

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
