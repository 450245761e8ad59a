/*
 * The invoicing commands as schemas/events/<type>.schema.json publishes
 * them. A command that fails its check is dead-lettered with the reason
 * (it can never be made), except a credit note's amount or reason, which
 * fails the operation the customer is waiting on (invalid_request). The
 * messages are the ones the handlers gave before these were separate
 * (tests/integration/test_invoicing.c looks for them).
 */
#include <string.h>

#include "invoicing.h"
#include "vox_json.h"
#include "vox_validate.h"

#define GENERATE_TYPE "vox.invoice.generate_requested"

static int bad(vox_error_t *err, const char *message)
{
	return vox_error_set(err, VOX_ERR_INVALID, false, "%s", message);
}

/* data has only keys, and the NULL-terminated ids are UUIDs. */
static int ids_check(const json_t *data, const char *const *keys,
                     const char *const *ids, vox_error_t *err)
{
	int rc = vox_validate_object(data, keys, err);

	return rc != 0 ? rc : vox_validate_uuids(data, ids, err);
}

/* finalize, void, mark uncollectible, pay */
int inv_invoice_cmd_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {"account_id", "invoice_id",
	                                   "operation_id", NULL};

	return ids_check(data, keys, keys, err);
}

int inv_credit_note_ids_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {"account_id",   "invoice_id",
	                                   "operation_id", "amount_micros",
	                                   "reason",       NULL};
	static const char *const ids[] = {"account_id", "invoice_id",
	                                  "operation_id", NULL};

	return ids_check(data, keys, ids, err);
}

int inv_credit_note_terms_validate(const json_t *data, vox_error_t *err)
{
	const json_t *amount = json_object_get(data, "amount_micros");

	if (!json_is_integer(amount) || json_integer_value(amount) <= 0 ||
	    vox_validate_str(data, "reason", 1, 500, false, err) != 0)
		return bad(err, "amount_micros must be a positive integer and "
		                "reason 1 to 500 characters");
	return 0;
}

int inv_credit_note_validate(const json_t *data, vox_error_t *err)
{
	int rc = inv_credit_note_ids_validate(data, err);

	return rc != 0 ? rc : inv_credit_note_terms_validate(data, err);
}

int inv_attach_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {"account_id", "payment_method_id",
	                                   "default", "operation_id", NULL};
	static const char *const ids[] = {"account_id", "payment_method_id",
	                                  "operation_id", NULL};
	const json_t *def = json_object_get(data, "default");
	int rc = ids_check(data, keys, ids, err);

	if (rc != 0)
		return rc;
	if (def != NULL && !json_is_boolean(def))
		return bad(err, "data.default must be true or false");
	return 0;
}

/* YYYY-MM-DDTHH:MM:SS[.fraction]Z, as the ingress and the tick write a
 * period's ends. */
static bool utc_time_ok(const char *s)
{
	static const char shape[] = "0000-00-00T00:00:00";
	size_t i;

	if (s == NULL || strlen(s) < sizeof(shape))
		return false;
	for (i = 0; i < sizeof(shape) - 1; i++)
		if (shape[i] == '0' ? (s[i] < '0' || s[i] > '9')
		                    : s[i] != shape[i])
			return false;
	if (s[i] == '.') {
		size_t digits = strspn(s + i + 1, "0123456789");

		if (digits == 0)
			return false;
		i += 1 + digits;
	}
	return s[i] == 'Z' && s[i + 1] == '\0';
}

int inv_generate_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {"account_id", "period_start",
	                                   "period_end", "operation_id", NULL};
	static const char *const account[] = {"account_id", NULL};
	static const char *const op[] = {"operation_id", NULL};
	const char *start = vox_json_str(data, "period_start");
	const char *end = vox_json_str(data, "period_end");

	if (vox_validate_object(data, keys, err) != 0 ||
	    vox_validate_uuids(data, account, err) != 0 || start == NULL ||
	    end == NULL ||
	    (json_object_get(data, "operation_id") != NULL &&
	     vox_validate_uuids(data, op, err) != 0))
		return bad(err, GENERATE_TYPE ": data.account_id, period_start "
		                              "and period_end are required "
		                              "(operation_id a UUID, no other "
		                              "field)");
	if (!utc_time_ok(start) || !utc_time_ok(end))
		return bad(err, "invalid_period: period_start and period_end "
		                "must be RFC 3339 times, start before end");
	return 0;
}

static bool nullable_str(const json_t *data, const char *key, size_t max)
{
	const json_t *v = json_object_get(data, key);

	return v != NULL && (json_is_null(v) ||
	                     (json_is_string(v) &&
	                      vox_utf8_chars(json_string_value(v)) <= max));
}

static bool nullable_uuid(const json_t *data, const char *key)
{
	const json_t *v = json_object_get(data, key);

	return v != NULL &&
	       (json_is_null(v) || vox_valid_uuid(json_string_value(v)));
}

static bool currency_ok(const json_t *v)
{
	const char *s = json_string_value(v);

	return json_is_null(v) ||
	       (s != NULL && strlen(s) == 3 &&
	        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 3);
}

int inv_gateway_event_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {
	        "event_id", "type",     "intent_id", "status", "decline_code",
	        "amount",   "currency", "metadata",  "code",   NULL};
	static const char *const meta_keys[] = {"invoice_id", "payment_id",
	                                        "account_id", NULL};
	const json_t *meta = json_object_get(data, "metadata");
	const json_t *amount = json_object_get(data, "amount");
	int rc;

	if ((rc = vox_validate_object(data, keys, err)) != 0)
		return rc;
	if (vox_validate_str(data, "event_id", 1, 200, false, err) != 0 ||
	    vox_validate_str(data, "type", 1, 100, false, err) != 0 ||
	    vox_validate_str(data, "intent_id", 1, 127, false, err) != 0)
		return bad(err, "vox.payment.gateway_event: data.event_id, "
		                "type and intent_id are required");
	if (!nullable_str(data, "status", 64) ||
	    !nullable_str(data, "decline_code", 64) ||
	    !nullable_str(data, "code", 64))
		return bad(err, "data.status, decline_code and code must be "
		                "null or at most 64 characters");
	if (amount == NULL ||
	    (!json_is_null(amount) &&
	     (!json_is_integer(amount) || json_integer_value(amount) < 0)))
		return bad(err, "data.amount must be null or a non-negative "
		                "integer");
	if (!json_object_get(data, "currency") ||
	    !currency_ok(json_object_get(data, "currency")))
		return bad(err, "data.currency must be null or an upper-case "
		                "ISO 4217 code");
	if (!json_is_object(meta) ||
	    vox_json_only_keys(meta, meta_keys, err) != 0 ||
	    !nullable_uuid(meta, "invoice_id") ||
	    !nullable_uuid(meta, "payment_id") ||
	    !nullable_uuid(meta, "account_id"))
		return bad(err,
		           "data.metadata must be {invoice_id, payment_id, "
		           "account_id}, each null or a UUID");
	return 0;
}
