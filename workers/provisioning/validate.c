/*
 * The provisioning commands' data, checked before a handler acts: what
 * schemas/events/<type>.schema.json publishes for each type, so a command
 * the contract refuses is dead-lettered with the reason rather than half
 * applied (tests/unit/test_schemas.c runs every example through these).
 */
#include <string.h>

#include "provisioning.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_validate.h"

#define MAX_NUMBERS     10
#define MAX_PREFERENCES 50
#define MAX_CHANNELS    3

static int bad(vox_error_t *err, const char *message)
{
	return vox_error_set(err, VOX_ERR_INVALID, false, "%s", message);
}

int prov_reservation_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {"operation_id", "reservation_id",
	                                   "phone_numbers", NULL};
	static const char *const ids[] = {"operation_id", "reservation_id",
	                                  NULL};
	const json_t *numbers = json_object_get(data, "phone_numbers"), *n;
	size_t i;
	int rc;

	if ((rc = vox_validate_object(data, keys, err)) != 0 ||
	    (rc = vox_validate_uuids(data, ids, err)) != 0)
		return rc;
	if (!json_is_array(numbers) || json_array_size(numbers) == 0 ||
	    json_array_size(numbers) > MAX_NUMBERS)
		return vox_error_set(
		        err, VOX_ERR_INVALID, false,
		        "data.phone_numbers must hold 1..%d numbers",
		        MAX_NUMBERS);
	json_array_foreach(numbers, i, n)
	{
		if (!vox_valid_e164(json_string_value(n)))
			return bad(err, "phone_numbers must be E.164 strings");
	}
	return 0;
}

int prov_extend_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {"operation_id", "reservation_id",
	                                   NULL};
	int rc = vox_validate_object(data, keys, err);

	return rc != 0 ? rc : vox_validate_uuids(data, keys, err);
}

int prov_order_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {"operation_id", "order_id",
	                                   "reservation_id", NULL};
	int rc = vox_validate_object(data, keys, err);

	return rc != 0 ? rc : vox_validate_uuids(data, keys, err);
}

int prov_activate_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {"operation_id", "number_id",
	                                   "forward_to", NULL};
	static const char *const ids[] = {"operation_id", "number_id", NULL};
	int rc;

	if ((rc = vox_validate_object(data, keys, err)) != 0 ||
	    (rc = vox_validate_uuids(data, ids, err)) != 0)
		return rc;
	if (!vox_valid_e164(vox_json_str(data, "forward_to")))
		return bad(err, "data.forward_to must be an E.164 number");
	return 0;
}

/* deactivate and release */
int prov_number_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {"operation_id", "number_id", NULL};
	int rc = vox_validate_object(data, keys, err);

	return rc != 0 ? rc : vox_validate_uuids(data, keys, err);
}

/* null, E.164, or a sip: URI (sip:user@host[:port], at most 256). */
static bool destination_ok(const json_t *dest)
{
	const char *s = json_string_value(dest), *at, *host;
	size_t len;

	if (json_is_null(dest))
		return true;
	if (s == NULL)
		return false;
	if (vox_valid_e164(s))
		return true;
	len = strlen(s);
	if (len > 256 || strncmp(s, "sip:", 4) != 0)
		return false;
	at = strchr(s + 4, '@');
	if (at == NULL || at == s + 4)
		return false;
	host = at + 1;
	if (!((*host >= 'a' && *host <= 'z') ||
	      (*host >= 'A' && *host <= 'Z') || (*host >= '0' && *host <= '9')))
		return false;
	for (const char *p = host; *p != '\0'; p++) {
		if (*p == ':') {
			size_t digits = strspn(p + 1, "0123456789");

			return digits >= 1 && digits <= 5 &&
			       p[1 + digits] == '\0';
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
			return false;
	}
	return true;
}

static int routing_check(const json_t *config, vox_error_t *err)
{
	static const char *const dests[] = {
	        "primary_destination", "failover_destination",
	        "business_hours_destination", "after_hours_destination", NULL};
	static const char *const keys[] = {"primary_destination",
	                                   "failover_destination",
	                                   "business_hours_destination",
	                                   "after_hours_destination",
	                                   "timeout_s",
	                                   "enabled",
	                                   NULL};
	int rc;

	if ((rc = vox_validate_object(config, keys, err)) != 0)
		return rc;
	for (size_t i = 0; dests[i] != NULL; i++) {
		const json_t *d = json_object_get(config, dests[i]);

		if (d == NULL || !destination_ok(d))
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "data.config.%s must be null, an "
			                     "E.164 number or a sip: URI",
			                     dests[i]);
	}
	if ((rc = vox_validate_int(config, "timeout_s", 5, 120, err)) != 0)
		return rc;
	return vox_validate_bool(config, "enabled", err);
}

static int hours_check(const json_t *config, vox_error_t *err)
{
	static const char *const keys[] = {"time_zone", "weekly", "overrides",
	                                   NULL};
	const json_t *weekly = json_object_get(config, "weekly");
	const json_t *overrides = json_object_get(config, "overrides");
	int rc;

	if ((rc = vox_validate_object(config, keys, err)) != 0 ||
	    (rc = vox_validate_str(config, "time_zone", 1, 64, false, err)) !=
	            0)
		return rc;
	if (weekly != NULL && !json_is_object(weekly))
		return bad(err, "data.config.weekly must be an object");
	if (overrides != NULL &&
	    (!json_is_array(overrides) || json_array_size(overrides) > 50))
		return bad(err, "data.config.overrides must be an array of at "
		                "most 50");
	return 0;
}

/* pbkdf2-sha256$<iterations>$<32 hex salt>$<64 hex hash> */
static bool pin_hash_ok(const char *s)
{
	static const char prefix[] = "pbkdf2-sha256$";
	size_t digits;

	if (strncmp(s, prefix, sizeof(prefix) - 1) != 0)
		return false;
	s += sizeof(prefix) - 1;
	digits = strspn(s, "0123456789");
	if (digits == 0 || s[digits] != '$')
		return false;
	s += digits + 1;
	if (strspn(s, "0123456789abcdef") != 32 || s[32] != '$')
		return false;
	s += 33;
	return strspn(s, "0123456789abcdef") == 64 && s[64] == '\0';
}

static int greeting_check(const json_t *greeting, vox_error_t *err)
{
	static const char *const text[] = {"text", NULL};
	static const char *const audio[] = {"audio_id", NULL};

	if (json_is_null(greeting))
		return 0;
	if (json_is_object(greeting) && json_object_size(greeting) == 1) {
		if (json_object_get(greeting, "text") != NULL &&
		    vox_json_only_keys(greeting, text, err) == 0 &&
		    vox_validate_str(greeting, "text", 1, 2000, false, err) ==
		            0)
			return 0;
		if (json_object_get(greeting, "audio_id") != NULL &&
		    vox_validate_uuids(greeting, audio, err) == 0)
			return 0;
	}
	return bad(err, "data.config.greeting must be null, {\"text\"} (1 to "
	                "2000 characters) or {\"audio_id\"}");
}

static int voicemail_check(const json_t *config, vox_error_t *err)
{
	static const char *const keys[] = {"enabled",
	                                   "greeting",
	                                   "max_message_s",
	                                   "transcription",
	                                   "emails",
	                                   "pin_hash",
	                                   NULL};
	const json_t *emails = json_object_get(config, "emails"), *e;
	const json_t *pin = json_object_get(config, "pin_hash");
	const json_t *greeting = json_object_get(config, "greeting");
	size_t i;
	int rc;

	if ((rc = vox_validate_object(config, keys, err)) != 0 ||
	    (rc = vox_validate_bool(config, "enabled", err)) != 0 ||
	    (rc = vox_validate_bool(config, "transcription", err)) != 0 ||
	    (rc = vox_validate_int(config, "max_message_s", 10, 600, err)) != 0)
		return rc;
	if (greeting == NULL)
		return bad(err, "data.config.greeting is missing");
	if ((rc = greeting_check(greeting, err)) != 0)
		return rc;
	if (!json_is_array(emails) || json_array_size(emails) > 10)
		return bad(err, "data.config.emails must be an array of at "
		                "most 10");
	json_array_foreach(emails, i, e)
	{
		if (!json_is_string(e) ||
		    vox_utf8_chars(json_string_value(e)) > 254)
			return bad(err, "data.config.emails must be strings of "
			                "at most 254 characters");
	}
	if (pin != NULL && !json_is_null(pin) &&
	    !(json_is_string(pin) && pin_hash_ok(json_string_value(pin))))
		return bad(err, "data.config.pin_hash must be null or a "
		                "pbkdf2-sha256 hash (never the PIN)");
	return 0;
}

static int config_validate(const json_t *data,
                           int (*check)(const json_t *, vox_error_t *),
                           vox_error_t *err)
{
	static const char *const keys[] = {"operation_id", "number_id",
	                                   "config", NULL};
	static const char *const ids[] = {"operation_id", "number_id", NULL};
	const json_t *config = json_object_get(data, "config");
	int rc;

	if ((rc = vox_validate_object(data, keys, err)) != 0 ||
	    (rc = vox_validate_uuids(data, ids, err)) != 0)
		return rc;
	if (!json_is_object(config))
		return bad(err, "data.config must be an object");
	return check(config, err);
}

int prov_routing_validate(const json_t *data, vox_error_t *err)
{
	return config_validate(data, routing_check, err);
}

int prov_hours_validate(const json_t *data, vox_error_t *err)
{
	return config_validate(data, hours_check, err);
}

int prov_voicemail_validate(const json_t *data, vox_error_t *err)
{
	return config_validate(data, voicemail_check, err);
}

static bool pref_name_ok(const char *name)
{
	size_t len = strlen(name);

	return len >= 1 && len <= 200 &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.*") == len;
}

static bool channels_ok(const json_t *channels)
{
	static const char *const names[] = {"email", "sms", "webhook"};
	bool seen[3] = {false, false, false};
	const json_t *c;
	size_t i;

	if (!json_is_array(channels) || json_array_size(channels) == 0 ||
	    json_array_size(channels) > MAX_CHANNELS)
		return false;
	json_array_foreach(channels, i, c)
	{
		const char *s = json_string_value(c);
		size_t k = 0;

		while (k < 3 && (s == NULL || strcmp(s, names[k]) != 0))
			k++;
		if (k == 3 || seen[k])
			return false;
		seen[k] = true;
	}
	return true;
}

int prov_preferences_validate(const json_t *data, vox_error_t *err)
{
	static const char *const keys[] = {"operation_id", "preferences", NULL};
	static const char *const ids[] = {"operation_id", NULL};
	const json_t *prefs = json_object_get(data, "preferences");
	const char *name;
	json_t *channels;
	int rc;

	if ((rc = vox_validate_object(data, keys, err)) != 0 ||
	    (rc = vox_validate_uuids(data, ids, err)) != 0)
		return rc;
	if (!json_is_object(prefs))
		return bad(err, "data.preferences must be an object");
	if (json_object_size(prefs) > MAX_PREFERENCES)
		return bad(err,
		           "data.preferences has more than 50 event types");
	json_object_foreach((json_t *)prefs, name, channels)
	{
		if (!pref_name_ok(name))
			return bad(err, "data.preferences: an event type must "
			                "be 1 to 200 of [a-z0-9_.*]");
		if (!channels_ok(channels))
			return bad(err, "data.preferences: channels must be 1 "
			                "to 3 distinct of email, sms, webhook");
	}
	return 0;
}

/* Every provisioning command comes from the ingress for an account. */
int prov_envelope_validate(const json_t *event, vox_error_t *err)
{
	const vox_event_kind_t *kind =
	        vox_event_kind(vox_json_str(event, "type"));
	const char *source = vox_json_str(event, "source");

	if (!vox_valid_uuid(vox_json_str(event, "accountid")))
		return bad(err, "accountid must be a UUID");
	if (kind == NULL || source == NULL || strcmp(kind->source, source) != 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "source must be %s",
		                     kind ? kind->source : "known");
	return 0;
}

static const struct {
	const char *type;
	int (*validate)(const json_t *data, vox_error_t *err);
} commands[] = {
        {"vox.reservation.requested", prov_reservation_validate},
        {"vox.reservation.extend_requested", prov_extend_validate},
        {"vox.order.requested", prov_order_validate},
        {"vox.number.activate_requested", prov_activate_validate},
        {"vox.number.deactivate_requested", prov_number_validate},
        {"vox.number.release_requested", prov_number_validate},
        {"vox.number.routing_update_requested", prov_routing_validate},
        {"vox.number.business_hours_update_requested", prov_hours_validate},
        {"vox.number.voicemail_update_requested", prov_voicemail_validate},
        {"vox.notification_preferences.update_requested",
         prov_preferences_validate},
};

int prov_command_validate(const char *type, const json_t *data,
                          vox_error_t *err)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].type, type) == 0)
			return commands[i].validate(data, err);
	return vox_error_set(err, VOX_ERR_INVALID, false,
	                     "no provisioning command %s", type);
}
