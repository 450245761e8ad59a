/*
 * A number's configuration (docs/API.md "Configuration", issue 12): PUT
 * validates a section (routing, business hours, voicemail) against the
 * caller's active number and publishes it for the provisioning worker,
 * which stores it as a new version; GET answers the current section and
 * the version history from PostgreSQL. Notification preferences are the
 * account's, stored the same way without versions. A voicemail PIN is
 * hashed here (PBKDF2) so that it never travels or rests in clear.
 */
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress.h"
#include "vox_crypto.h"
#include "vox_json.h"
#include "vox_phone.h"
#include "vox_routing_doc.h"
#include "vox_schedule.h"

#define PROVISIONING    "vox.cmd.provisioning"
#define SIP_MAX         256
#define PIN_ITERATIONS  100000
#define PIN_SALT_BYTES  16
#define MAX_EMAILS      10
#define MAX_GREETING    2000
#define MAX_PREFERENCES 50

/* The caller's number (404 otherwise), its status, E.164, the account's
 * zone and the current configuration row (NULLs when none). */
static const char number_sql[] =
        "SELECT n.status, n.e164, a.timezone, c.call_forwarding::text, "
        "c.business_hours::text, c.voicemail::text, c.version, "
        "c.carrier_status FROM numbers n JOIN accounts a ON a.id = "
        "n.account_id LEFT JOIN number_configurations c ON c.number_id = "
        "n.id WHERE n.id = $1 AND n.account_id = $2";
enum { COL_STATUS, COL_E164, COL_ZONE, COL_ROUTING };

typedef struct section {
	const char *name;  /* as stored in number_configuration_versions */
	const char *route; /* its path pattern (main.c's route table) */
	const char *kind, *type;
	int column; /* of number_sql */
	const char *const *keys;
	/* The document to store, or NULL after answering 400. */
	json_t *(*check)(vox_http_req_t *req, json_t *body,
	                 const PGresult *num);
	/* The public form of a stored document (new reference). */
	json_t *(*show)(const json_t *stored);
} section_t;

static void bad_field(vox_http_req_t *req, const char *field, const char *why)
{
	char msg[400];

	snprintf(msg, sizeof(msg), "%s: %s", field, why);
	ingress_error(req, 400, "invalid_body", msg,
	              json_pack("{s:s}", "field", field));
}

/* sip:user@host[:port], nothing else (no parameters, no headers). */
static bool sip_uri_valid(const char *uri)
{
	const char *at, *host, *colon;
	size_t len = strlen(uri);

	if (len > SIP_MAX || strncmp(uri, "sip:", 4) != 0)
		return false;
	at = strchr(uri + 4, '@');
	if (at == NULL || at == uri + 4)
		return false;
	for (const char *p = uri + 4; p < at; p++)
		if (!isalnum((unsigned char)*p) &&
		    strchr("-_.!~*'()&=+$,%", *p) == NULL)
			return false;
	host = at + 1;
	colon = strchr(host, ':');
	if (colon == host || *host == '\0' || *host == '.' || *host == '-')
		return false;
	for (const char *p = host; *p != '\0' && p != colon; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
			return false;
	if (colon != NULL) {
		char *end;
		long port = strtol(colon + 1, &end, 10);

		if (colon[1] == '\0' || !isdigit((unsigned char)colon[1]) ||
		    *end != '\0' || port < 1 || port > 65535)
			return false;
	}
	return true;
}

/* A destination field: null/absent, an E.164 number (normalised) other
 * than the number itself, or a SIP URI. False after answering 400. */
static bool check_destination(vox_http_req_t *req, json_t *doc,
                              const char *field, const char *self)
{
	json_t *v = json_object_get(doc, field);
	const char *text;
	vox_phone_t p;
	vox_error_t err;
	char why[300];

	if (v == NULL || json_is_null(v)) {
		json_object_set_new(doc, field, json_null());
		return true;
	}
	text = json_string_value(v);
	if (text != NULL && strncmp(text, "sip:", 4) == 0) {
		if (sip_uri_valid(text))
			return true;
		bad_field(req, field,
		          "not a SIP URI of the form sip:user@host[:port]");
		return false;
	}
	if (text == NULL || vox_phone_parse(text, NULL, &p, &err) != 0) {
		snprintf(why, sizeof(why),
		         "must be an E.164 number or a sip: URI%s%s",
		         text ? ": " : "", text ? err.message : "");
		bad_field(req, field, why);
		return false;
	}
	if (strcmp(p.e164, self) == 0) {
		bad_field(req, field,
		          "is the number itself: calls would loop back to it");
		return false;
	}
	json_object_set_new(doc, field, json_string(p.e164));
	return true;
}

static const char *const routing_keys[] = {"primary_destination",
                                           "failover_destination",
                                           "business_hours_destination",
                                           "after_hours_destination",
                                           "timeout_s",
                                           "enabled",
                                           NULL};

static json_t *routing_check(vox_http_req_t *req, json_t *body,
                             const PGresult *num)
{
	const char *self = PQgetvalue(num, 0, COL_E164);
	json_t *enabled = json_object_get(body, "enabled");
	json_t *timeout = json_object_get(body, "timeout_s");

	if (enabled != NULL && !json_is_boolean(enabled)) {
		bad_field(req, "enabled", "must be true or false");
		return NULL;
	}
	if (timeout != NULL &&
	    (!json_is_integer(timeout) || json_integer_value(timeout) < 5 ||
	     json_integer_value(timeout) > 120)) {
		bad_field(req, "timeout_s", "must be an integer 5..120");
		return NULL;
	}
	for (size_t i = 0; i < 4; i++)
		if (!check_destination(req, body, routing_keys[i], self))
			return NULL;
	if (enabled == NULL)
		json_object_set_new(body, "enabled", json_true());
	if (timeout == NULL)
		json_object_set_new(
		        body, "timeout_s",
		        json_integer(VOX_ROUTING_DEFAULT_TIMEOUT_S));
	if (json_is_true(json_object_get(body, "enabled")) &&
	    json_is_null(json_object_get(body, "primary_destination"))) {
		bad_field(req, "primary_destination",
		          "is required while routing is enabled");
		return NULL;
	}
	return json_incref(body);
}

/* The stored routing document in its full form; activation's
 * {"forward_to": ...} reads as an enabled primary destination. */
static json_t *routing_show(const json_t *stored)
{
	const char *dests[4];
	vox_routing_doc_t r;
	json_t *out = json_object();

	vox_routing_doc_read(stored, &r);
	dests[0] = r.primary;
	dests[1] = r.failover;
	dests[2] = r.open_dest;
	dests[3] = r.closed_dest;
	for (size_t i = 0; i < 4; i++) /* the order of routing_keys */
		json_object_set_new(out, routing_keys[i],
		                    dests[i] ? json_string(dests[i])
		                             : json_null());
	json_object_set_new(out, "timeout_s", json_integer(r.timeout_s));
	/* nothing stored yet: not enabled */
	json_object_set_new(out, "enabled",
	                    json_boolean(r.configured && r.enabled));
	return out;
}

static json_t *hours_check(vox_http_req_t *req, json_t *body,
                           const PGresult *num)
{
	vox_schedule_t *sched = NULL;
	vox_error_t err;
	char field[64];
	size_t n;

	if (vox_schedule_parse(body, PQgetvalue(num, 0, COL_ZONE), &sched,
	                       &err) != 0) {
		if (err.code != VOX_ERR_INVALID) {
			ingress_error(req, 500, "internal", err.message, NULL);
			return NULL;
		}
		n = strcspn(err.message, ":");
		snprintf(field, sizeof(field), "%.*s",
		         (int)(n < sizeof(field) ? n : sizeof(field) - 1),
		         err.message);
		ingress_error(req, 400, "invalid_body", err.message,
		              json_pack("{s:s}", "field", field));
		return NULL;
	}
	/* Stored with the zone it was checked in: a later change of the
	 * account's zone does not move the hours. */
	json_object_set_new(body, "time_zone",
	                    json_string(vox_schedule_zone(sched)));
	vox_schedule_destroy(sched);
	return json_incref(body);
}

static json_t *copy_show(const json_t *stored)
{
	return json_deep_copy(stored);
}

/* PBKDF2-HMAC-SHA256 with a random salt, as "pbkdf2-sha256$N$salt$hash". */
static int pin_hash(const char *pin, char *out, size_t outlen)
{
	unsigned char salt[PIN_SALT_BYTES], key[32];
	char salt_hex[2 * PIN_SALT_BYTES + 1], key_hex[65];

	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    PKCS5_PBKDF2_HMAC(pin, (int)strlen(pin), salt, sizeof(salt),
	                      PIN_ITERATIONS, EVP_sha256(), sizeof(key),
	                      key) != 1)
		return -1;
	vox_hex_encode(salt, sizeof(salt), salt_hex);
	vox_hex_encode(key, sizeof(key), key_hex);
	snprintf(out, outlen, "pbkdf2-sha256$%d$%s$%s", PIN_ITERATIONS,
	         salt_hex, key_hex);
	return 0;
}

static bool email_valid(const char *s)
{
	const char *at = strchr(s, '@');
	size_t len = strlen(s);

	if (len < 3 || len > 254 || at == NULL || at == s ||
	    strchr(at + 1, '@') != NULL || strchr(at + 1, '.') == NULL ||
	    at[1] == '.' || s[len - 1] == '.')
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return false;
	return true;
}

/* enabled, transcription (booleans, default false), max_message_s
 * (10..600, default 120), emails; false after answering 400. */
static bool voicemail_plain(vox_http_req_t *req, json_t *body)
{
	static const char *const flags[] = {"enabled", "transcription"};
	json_t *max = json_object_get(body, "max_message_s");
	json_t *emails = json_object_get(body, "emails"), *e;
	size_t i;

	for (i = 0; i < 2; i++) {
		json_t *v = json_object_get(body, flags[i]);

		if (v != NULL && !json_is_boolean(v)) {
			bad_field(req, flags[i], "must be true or false");
			return false;
		}
		if (v == NULL)
			json_object_set_new(body, flags[i], json_false());
	}
	if (max != NULL &&
	    (!json_is_integer(max) || json_integer_value(max) < 10 ||
	     json_integer_value(max) > 600)) {
		bad_field(req, "max_message_s", "must be an integer 10..600");
		return false;
	}
	if (max == NULL)
		json_object_set_new(body, "max_message_s", json_integer(120));
	if (emails == NULL || json_is_null(emails)) {
		json_object_set_new(body, "emails", json_array());
		return true;
	}
	if (!json_is_array(emails) || json_array_size(emails) > MAX_EMAILS) {
		bad_field(req, "emails",
		          "must be a list of at most 10 addresses");
		return false;
	}
	json_array_foreach(emails, i, e) if (!json_is_string(e) ||
	                                     !email_valid(json_string_value(e)))
	{
		bad_field(req, "emails", "each must be an email address");
		return false;
	}
	return true;
}

/* greeting: null, {"text": ...} or {"audio_id": ...}. */
static bool greeting_valid(const json_t *g)
{
	static const char *const keys[] = {"text", "audio_id", NULL};
	const char *text = vox_json_str(g, "text");
	const char *audio = vox_json_str(g, "audio_id");
	vox_error_t err;

	if (g == NULL || json_is_null(g))
		return true;
	if (!json_is_object(g) || json_object_size(g) != 1 ||
	    vox_json_only_keys(g, keys, &err) != 0)
		return false;
	if (text != NULL)
		return strlen(text) >= 1 && strlen(text) <= MAX_GREETING;
	return audio != NULL && vox_uuid_valid(audio);
}

static json_t *voicemail_check(vox_http_req_t *req, json_t *body,
                               const PGresult *num)
{
	json_t *pin = json_object_get(body, "pin");
	char hash[160];
	const char *p;

	(void)num;
	if (!voicemail_plain(req, body))
		return NULL;
	if (!greeting_valid(json_object_get(body, "greeting"))) {
		bad_field(req, "greeting",
		          "must be null, {\"text\": 1..2000 bytes} or "
		          "{\"audio_id\": an uploaded file's id}");
		return NULL;
	}
	if (json_object_get(body, "greeting") == NULL)
		json_object_set_new(body, "greeting", json_null());
	if (pin == NULL) /* absent: the worker keeps the current PIN */
		return json_incref(body);
	p = json_string_value(pin);
	if (!json_is_null(pin)) {
		size_t n = p ? strlen(p) : 0;

		if (p == NULL || n < 4 || n > 10 ||
		    strspn(p, "0123456789") != n) {
			bad_field(req, "pin", "must be 4 to 10 digits");
			return NULL;
		}
		if (pin_hash(p, hash, sizeof(hash)) != 0) {
			ingress_error(req, 500, "internal",
			              "the PIN could not be hashed", NULL);
			return NULL;
		}
	}
	json_object_set_new(body, "pin_hash",
	                    json_is_null(pin) ? json_null()
	                                      : json_string(hash));
	json_object_del(body, "pin");
	return json_incref(body);
}

/* Never the hash: whether a PIN is set. */
static json_t *voicemail_show(const json_t *stored)
{
	json_t *out = json_deep_copy(stored);

	json_object_set_new(out, "pin_set",
	                    json_boolean(json_is_string(
	                            json_object_get(stored, "pin_hash"))));
	json_object_del(out, "pin_hash");
	return out;
}

static const char *const hours_keys[] = {"time_zone", "weekly", "overrides",
                                         NULL};
static const char *const voicemail_keys[] = {
        "enabled",       "greeting", "pin", "max_message_s",
        "transcription", "emails",   NULL};

static const section_t sections[] = {
        {"routing", "/v1/numbers/{id}/routing", "number.routing.update",
         "vox.number.routing_update_requested", COL_ROUTING, routing_keys,
         routing_check, routing_show},
        {"business_hours", "/v1/numbers/{id}/business-hours",
         "number.business_hours.update",
         "vox.number.business_hours_update_requested", COL_ROUTING + 1,
         hours_keys, hours_check, copy_show},
        {"voicemail", "/v1/numbers/{id}/voicemail", "number.voicemail.update",
         "vox.number.voicemail_update_requested", COL_ROUTING + 2,
         voicemail_keys, voicemail_check, voicemail_show},
};

static const section_t *section_named(const char *name)
{
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strcmp(sections[i].name, name) == 0)
			return &sections[i];
	return NULL;
}

/* The section a route serves. */
static const section_t *section_of(vox_http_req_t *req)
{
	const char *pattern = vox_http_route(req)->pattern;

	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strcmp(sections[i].route, pattern) == 0)
			return &sections[i];
	abort(); /* a route in main.c without its section here */
}

void ingress_config_put(vox_http_req_t *req, void *ctx)
{
	const section_t *s = section_of(req);
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	PGresult *num = NULL;
	json_t *body, *doc = NULL;

	if (ir == NULL || (body = ingress_body(req, s->keys, false)) == NULL)
		return;
	/* The key first: a retry after the worker acted replays the 202. */
	if (!idem_begin(req, ir) ||
	    (num = ingress_lookup(req, ir, "ingress_config_number", number_sql,
	                          id, "number_not_found", "number")) == NULL)
		goto out;
	if (strcmp(PQgetvalue(num, 0, COL_STATUS), "active") != 0) {
		ingress_conflict(req, "number", PQgetvalue(num, 0, COL_STATUS));
		goto out;
	}
	if ((doc = s->check(req, body, num)) == NULL)
		goto out;
	ir->kind = s->kind;
	ingress_command(
	        req, ir, PROVISIONING, s->type, PQgetvalue(num, 0, COL_E164),
	        json_pack("{s:s, s:o}", "number_id", id, "config", doc));
out:
	PQclear(num);
	json_decref(body);
}

void ingress_config_get(vox_http_req_t *req, void *ctx)
{
	const section_t *s = section_of(req);
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	json_t *stored = NULL, *out;
	PGresult *num;

	if (ir == NULL ||
	    (num = ingress_lookup(req, ir, "ingress_config_number", number_sql,
	                          id, "number_not_found", "number")) == NULL)
		return;
	if (!PQgetisnull(num, 0, s->column))
		stored = json_loads(PQgetvalue(num, 0, s->column), 0, NULL);
	if (stored == NULL)
		stored = json_object();
	out = s->show(stored);
	json_object_set_new(out, "configured",
	                    json_boolean(json_object_size(stored) > 0));
	json_object_set_new(out, "number_id", json_string(id));
	json_object_set_new(out, "version",
	                    json_integer(PQgetisnull(num, 0, 6)
	                                         ? 0
	                                         : strtol(PQgetvalue(num, 0, 6),
	                                                  NULL, 10)));
	if (s->column == COL_ROUTING)
		json_object_set_new(
		        out, "carrier_status",
		        PQgetisnull(num, 0, 7)
		                ? json_null()
		                : json_string(PQgetvalue(num, 0, 7)));
	json_decref(stored);
	vox_http_reply_json(req, 200, out);
	PQclear(num);
}

static json_t *version_row(const PGresult *res, int i)
{
	const section_t *s = section_named(PQgetvalue(res, i, 1));
	json_t *stored = json_loads(PQgetvalue(res, i, 2), 0, NULL);
	json_t *config = stored && s ? s->show(stored) : json_object();

	json_decref(stored);
	return json_pack("{s:i, s:s, s:o, s:s?, s:s}", "version",
	                 (int)strtol(PQgetvalue(res, i, 0), NULL, 10),
	                 "section", PQgetvalue(res, i, 1), "config", config,
	                 "operation_id",
	                 PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3),
	                 "created_at", PQgetvalue(res, i, 4));
}

/* limit 1..100 (default 20) and cursor (a version, from next_cursor). */
static bool versions_args(vox_http_req_t *req, long *limit, long *cursor)
{
	const char *l = vox_http_query(req, "limit");
	const char *c = vox_http_query(req, "cursor");
	char *end;

	*limit = 20;
	*cursor = 0;
	if (l != NULL) {
		*limit = strtol(l, &end, 10);
		if (*l == '\0' || *end != '\0' || *limit < 1 || *limit > 100)
			return ingress_bad_param(req, "limit",
			                         "an integer 1..100");
	}
	if (c != NULL) {
		*cursor = strtol(c, &end, 10);
		if (*c == '\0' || *end != '\0' || *cursor < 2 ||
		    *cursor > 1000000000)
			return ingress_bad_param(
			        req, "cursor",
			        "a next_cursor value from a previous page");
	}
	return true;
}

void ingress_config_versions(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	const char *id = vox_http_param(req, "id");
	char limit_s[24], cursor_s[24];
	long limit, cursor;
	PGresult *res, *num;
	json_t *data;
	int n, shown;

	if (ir == NULL || !versions_args(req, &limit, &cursor) ||
	    (num = ingress_lookup(req, ir, "ingress_config_number", number_sql,
	                          id, "number_not_found", "number")) == NULL)
		return;
	PQclear(num);
	snprintf(limit_s, sizeof(limit_s), "%ld", limit + 1);
	snprintf(cursor_s, sizeof(cursor_s), "%ld", cursor);
	const char *params[] = {id, ir->who.account_id, cursor_s, limit_s};
	res = ingress_query(
	        ir->in, req, "ingress_config_versions",
	        "SELECT version, section, config::text, operation_id, "
	        "vox_iso(created_at) FROM number_configuration_versions WHERE "
	        "number_id = $1 AND account_id = $2 AND ($3::int = 0 OR "
	        "version < $3::int) ORDER BY version DESC LIMIT $4::int",
	        4, params);
	if (res == NULL)
		return;
	n = PQntuples(res);
	shown = n > limit ? (int)limit : n;
	data = json_array();
	for (int i = 0; i < shown; i++)
		json_array_append_new(data, version_row(res, i));
	vox_http_reply_json(
	        req, 200,
	        json_pack("{s:o, s:o}", "data", data, "next_cursor",
	                  n > limit ? json_string(PQgetvalue(res, shown - 1, 0))
	                            : json_null()));
	PQclear(res);
}

/* {event_type: [channels in order of fallback]}: event types or "*",
 * channels known and distinct; false after answering 400. */
static bool preferences_valid(vox_http_req_t *req, const json_t *prefs)
{
	static const char *const channels[] = {"email", "sms", "webhook"};
	const char *type;
	const json_t *list, *ch;
	size_t j;

	if (!json_is_object(prefs) ||
	    json_object_size(prefs) > MAX_PREFERENCES) {
		bad_field(req, "preferences",
		          "must be an object of at most 50 event types");
		return false;
	}
	json_object_foreach((json_t *)prefs, type, list)
	{
		unsigned seen = 0;

		if (strlen(type) < 1 || strlen(type) > 200 ||
		    strspn(type, "abcdefghijklmnopqrstuvwxyz0123456789_.*") !=
		            strlen(type)) {
			bad_field(req, "preferences",
			          "keys are event types (a-z, 0-9, _ . *) or "
			          "\"*\"");
			return false;
		}
		if (!json_is_array(list) || json_array_size(list) < 1 ||
		    json_array_size(list) > 3) {
			bad_field(req, "preferences",
			          "each event type lists 1 to 3 channels in "
			          "order of fallback");
			return false;
		}
		json_array_foreach(list, j, ch)
		{
			size_t c = 0;

			while (c < 3 && (!json_is_string(ch) ||
			                 strcmp(json_string_value(ch),
			                        channels[c]) != 0))
				c++;
			if (c == 3 || (seen & (1u << c)) != 0) {
				bad_field(req, "preferences",
				          "each channel is one of email, sms, "
				          "webhook, at most once");
				return false;
			}
			seen |= 1u << c;
		}
	}
	return true;
}

void ingress_preferences_put(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"preferences", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	json_t *body, *prefs;

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	prefs = json_object_get(body, "preferences");
	if (preferences_valid(req, prefs) && idem_begin(req, ir)) {
		ir->kind = "notification_preferences.update";
		ingress_command(req, ir, PROVISIONING,
		                "vox.notification_preferences.update_requested",
		                ir->who.account_id,
		                json_pack("{s:O}", "preferences", prefs));
	}
	json_decref(body);
}

void ingress_preferences_get(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	PGresult *res;
	json_t *prefs;

	if (ir == NULL)
		return;
	const char *params[] = {ir->who.account_id};
	res = ingress_query(ir->in, req, "ingress_preferences_get",
	                    "SELECT event_type, array_to_json(channels)::text "
	                    "FROM notification_preferences WHERE account_id = "
	                    "$1 AND user_id IS NULL ORDER BY event_type",
	                    1, params);
	if (res == NULL)
		return;
	prefs = json_object();
	for (int i = 0; i < PQntuples(res); i++)
		json_object_set_new(prefs, PQgetvalue(res, i, 0),
		                    json_loads(PQgetvalue(res, i, 1), 0, NULL));
	vox_http_reply_json(req, 200, json_pack("{s:o}", "preferences", prefs));
	PQclear(res);
}
