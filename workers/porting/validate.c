/*
 * The porting commands as schemas/events/<type>.schema.json publishes
 * them, checked before a handler acts (a command the contract refuses is
 * dead-lettered with the reason): the customer's submit and cancel from
 * the ingress, and the carrier's webhooks (vox.porting.carrier_event),
 * which name no account of ours.
 */
#include <stdint.h>
#include <string.h>

#include "porting.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_porting.h"
#include "vox_validate.h"

static int bad(vox_error_t *err, const char *message)
{
	return vox_error_set(err, VOX_ERR_INVALID, false, "%s", message);
}

static int source_check(const json_t *event, vox_error_t *err)
{
	const vox_event_kind_t *kind =
	        vox_event_kind(vox_json_str(event, "type"));
	const char *source = vox_json_str(event, "source");

	if (kind == NULL || source == NULL || strcmp(kind->source, source) != 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "source must be %s",
		                     kind ? kind->source : "known");
	return 0;
}

int por_envelope_validate(const json_t *event, vox_error_t *err)
{
	if (!vox_valid_uuid(vox_json_str(event, "accountid")))
		return bad(err, "accountid must be a UUID");
	return source_check(event, err);
}

int por_carrier_envelope_validate(const json_t *event, vox_error_t *err)
{
	const json_t *account = json_object_get(event, "accountid");

	if (account != NULL && !json_is_null(account))
		return bad(err, "a carrier's event names no account (accountid "
		                "must be null)");
	return source_check(event, err);
}

int por_submit_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {"order_id", "account_id", "version",
	                                   "operation_id", NULL};
	static const char *const ids[] = {"operation_id", "order_id",
	                                  "account_id", NULL};
	int rc;

	if ((rc = vox_validate_object(data, keys, err)) != 0 ||
	    (rc = vox_validate_uuids(data, ids, err)) != 0)
		return rc;
	if (!json_is_integer(json_object_get(data, "version")) ||
	    json_integer_value(json_object_get(data, "version")) < 1)
		return bad(err, "data.version must be a positive integer");
	return 0;
}

int por_cancel_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {"order_id", "account_id",
	                                   "operation_id", NULL};
	int rc = vox_validate_object(data, keys, err);

	return rc != 0 ? rc : vox_validate_uuids(data, keys, err);
}

int por_carrier_event_validate(const json_t *data, vox_error_t *err)
{
	const json_t *payload = json_object_get(data, "payload");
	const json_t *occurred = json_object_get(data, "occurred_at");
	const json_t *list;
	const char *status = vox_json_str(payload, "status");
	int rc;

	if (!json_is_object(data))
		return bad(err, "data must be an object");
	if ((rc = vox_validate_str(data, "id", 1, POR_EVENT_ID_MAX, false,
	                           err)) != 0 ||
	    (rc = vox_validate_str(data, "event_type", 1, 100, false, err)) !=
	            0 ||
	    (rc = vox_validate_str(data, "carrier", 1, SIZE_MAX, false, err)) !=
	            0)
		return rc;
	/* the ingress passes a carrier's null through */
	if (occurred != NULL && !json_is_null(occurred) &&
	    !json_is_string(occurred))
		return bad(err, "data.occurred_at must be a string or null");
	if (!json_is_object(payload))
		return bad(err, "data.payload must be an object");
	if (vox_validate_str(payload, "id", 1, POR_CARRIER_ID_MAX, false,
	                     err) != 0)
		return bad(err, "data.payload.id must be the carrier's order "
		                "id (1 to 200 characters)");
	if (!vox_valid_uuid(vox_json_str(payload, "customer_reference")))
		return bad(err, "data.payload.customer_reference must be our "
		                "porting order id (a UUID)");
	/* a carrier never reports an order back to draft */
	if (!vox_porting_status_valid(status) || strcmp(status, "draft") == 0)
		return bad(err, "data.payload.status must be one of submitted, "
		                "in-process, exception, foc-date-confirmed, "
		                "ported, cancel-pending, cancelled");
	list = json_object_get(payload, "exceptions");
	if (list != NULL && !json_is_array(list))
		return bad(err, "payload.exceptions must be an array");
	list = json_object_get(payload, "phone_numbers");
	if (list != NULL && !json_is_array(list))
		return bad(err, "payload.phone_numbers must be an array");
	return 0;
}

static const struct {
	const char *type;
	int (*validate)(const json_t *data, vox_error_t *err);
} commands[] = {
        {"vox.porting_order.submit_requested", por_submit_validate},
        {"vox.porting_order.cancel_requested", por_cancel_validate},
};

int por_command_validate(const char *type, const json_t *data, vox_error_t *err)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].type, type) == 0)
			return commands[i].validate(data, err);
	return vox_error_set(err, VOX_ERR_INVALID, false,
	                     "no porting order command %s", type);
}
