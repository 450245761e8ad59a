/* vox_cdr: checking, normalizing and encoding carrier CDRs (vox_cdr.h). */
#include "vox_cdr.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vox_buf.h"
#include "vox_event.h"
#include "vox_phone.h"
#include "vox_uuid.h"

static const char *const type_names[VOX_CDR_NTYPES] = {
        "inbound_call", "outbound_call", "sms_received", "sms_sent"};

/* 2000-01-01T00:00:00Z */
#define OLDEST_US (946684800LL * 1000000)

const char *vox_cdr_type_name(vox_cdr_type_t type)
{
	return (unsigned)type < VOX_CDR_NTYPES ? type_names[type] : NULL;
}

int vox_cdr_type_parse(const char *name)
{
	for (int i = 0; name != NULL && i < VOX_CDR_NTYPES; i++)
		if (strcmp(name, type_names[i]) == 0)
			return i;
	return -1;
}

int vox_carrier_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > VOX_CARRIER_NAME_MAX ||
	    !(islower((unsigned char)name[0]) ||
	      isdigit((unsigned char)name[0])))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)name[i]) &&
		    !isdigit((unsigned char)name[i]) && name[i] != '_' &&
		    name[i] != '-')
			return 0;
	return 1;
}

static int charset_ok(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) &&
		    strchr(extra, s[i]) == NULL)
			return 0;
	return 1;
}

static int bad(vox_error_t *err, const char **reason_code, const char *code,
               const char *msg)
{
	*reason_code = code;
	return vox_error_set(err, VOX_ERR_INVALID, false, "%s", msg);
}

/* An integer field: absent -> *out = dflt (returns 1); present and an
 * integer in [lo, hi] -> 0; anything else -> -1. */
static int int_field(const json_t *rec, const char *key, int lo, int hi,
                     int dflt, int *out)
{
	const json_t *v = json_object_get(rec, key);

	if (v == NULL || json_is_null(v)) {
		*out = dflt;
		return 1;
	}
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi)
		return -1;
	*out = (int)json_integer_value(v);
	return 0;
}

static bool e164_syntax(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 8 || n > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9')
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static int cdr_parse(const json_t *rec, int64_t now_us, bool trusted,
                     vox_cdr_t *out, const char **reason_code, vox_error_t *err)
{
	const char *id, *type, *from, *to, *ours, *started;
	int t, rc;
	vox_phone_t phone;
	char msg[200];

	memset(out, 0, sizeof(*out));
	*reason_code = NULL;
	if (!json_is_object(rec))
		return bad(err, reason_code, "not_an_object",
		           "a record must be a JSON object");
	id = json_string_value(json_object_get(rec, "id"));
	if (id == NULL)
		return bad(err, reason_code, "missing_id",
		           "id (the carrier's record id) is required, as a "
		           "string");
	if (!charset_ok(id, VOX_CDR_ID_MAX, "._:-"))
		return bad(
		        err, reason_code, "invalid_id",
		        "id must be 1..128 characters of A-Z a-z 0-9 . _ : -");
	type = json_string_value(json_object_get(rec, "type"));
	t = vox_cdr_type_parse(type);
	if (t < 0)
		return bad(err, reason_code, "invalid_type",
		           "type must be inbound_call, outbound_call, "
		           "sms_received or sms_sent");
	from = json_string_value(json_object_get(rec, "from"));
	to = json_string_value(json_object_get(rec, "to"));
	ours = vox_cdr_is_inbound(t) ? to : from;
	if (ours == NULL) {
		snprintf(msg, sizeof(msg),
		         "%s (our number on an %s record) is required",
		         vox_cdr_is_inbound(t) ? "to" : "from",
		         vox_cdr_is_inbound(t) ? "inbound" : "outbound");
		return bad(err, reason_code, "missing_number", msg);
	}
	if (trusted) {
		memset(&phone, 0, sizeof(phone));
		if (e164_syntax(ours))
			snprintf(phone.e164, sizeof(phone.e164), "%s", ours);
	} else if (vox_phone_parse(ours, NULL, &phone, NULL) != 0) {
		phone.e164[0] = '\0';
	}
	if (phone.e164[0] == '\0' || strcmp(phone.e164, ours) != 0) {
		snprintf(msg, sizeof(msg),
		         "%s must be a valid number in E.164 (+14155550123)",
		         vox_cdr_is_inbound(t) ? "to" : "from");
		return bad(err, reason_code, "invalid_number", msg);
	}
	if (from == NULL || to == NULL ||
	    !charset_ok(vox_cdr_is_inbound(t) ? from : to, VOX_CDR_PARTY_MAX,
	                "+"))
		return bad(err, reason_code, "invalid_party",
		           "from and to are required; the other party is 1..32 "
		           "characters of + 0-9 A-Z a-z");
	started = json_string_value(json_object_get(rec, "started_at"));
	if (started == NULL ||
	    vox_rfc3339_parse(started, &out->started_us) != 0 ||
	    out->started_us < OLDEST_US)
		return bad(err, reason_code, "invalid_started_at",
		           "started_at must be an RFC 3339 time with a zone, "
		           "2000-01-01 or later (2026-11-24T16:02:17Z)");
	if (now_us > 0 && out->started_us > now_us + VOX_CDR_FUTURE_SKEW_US)
		return bad(err, reason_code, "started_at_in_future",
		           "started_at is more than 5 minutes in the future");
	if (vox_cdr_is_call(t)) {
		rc = int_field(rec, "duration_s", 0, VOX_CDR_MAX_DURATION_S, -1,
		               &out->duration_s);
		if (rc != 0)
			return bad(
			        err, reason_code, "invalid_duration",
			        "duration_s is required for calls: an integer "
			        "0..86400");
		if (int_field(rec, "segments", 0, 0, 0, &out->segments) < 0)
			return bad(err, reason_code, "invalid_segments",
			           "segments is for messages only");
	} else {
		if (int_field(rec, "segments", 1, VOX_CDR_MAX_SEGMENTS, 1,
		              &out->segments) < 0)
			return bad(err, reason_code, "invalid_segments",
			           "segments must be an integer 1..100");
		if (int_field(rec, "duration_s", 0, 0, 0, &out->duration_s) < 0)
			return bad(err, reason_code, "invalid_duration",
			           "duration_s is for calls only (or 0)");
	}
	memcpy(out->id, id, strlen(id) + 1);
	out->type = (vox_cdr_type_t)t;
	/* Both checked above: at most VOX_CDR_PARTY_MAX characters. */
	snprintf(out->from, sizeof(out->from), "%s", from);
	snprintf(out->to, sizeof(out->to), "%s", to);
	snprintf(out->number, sizeof(out->number), "%s", phone.e164);
	return 0;
}

int vox_cdr_parse(const json_t *rec, int64_t now_us, vox_cdr_t *out,
                  const char **reason_code, vox_error_t *err)
{
	return cdr_parse(rec, now_us, false, out, reason_code, err);
}

int vox_cdr_parse_trusted(const json_t *rec, vox_cdr_t *out,
                          const char **reason_code, vox_error_t *err)
{
	return cdr_parse(rec, 0, true, out, reason_code, err);
}

int vox_cdr_event(const vox_cdr_t *cdr, const char *carrier, const char *via,
                  char *out, size_t outlen)
{
	char started[40];
	vox_buf_t b;
	int n = -1;

	if (outlen == 0)
		return -1;
	vox_rfc3339_format(cdr->started_us, started, sizeof(started));
	vox_buf_init(&b, outlen - 1);
	vox_buf_reserve(&b, 1024);
	/* no account yet: the metering worker finds it from the number */
	vox_event_head(&b, VOX_CDR_EVENT_TYPE, cdr->number, NULL, NULL);
	const struct {
		const char *key; /* with its separator */
		const char *value;
	} strs[] = {
	        {"{\"carrier\":", carrier},
	        {",\"id\":", cdr->id},
	        {",\"type\":", vox_cdr_type_name(cdr->type)},
	        {",\"from\":", cdr->from},
	        {",\"to\":", cdr->to},
	        {",\"started_at\":", started},
	        {",\"received_via\":", via},
	};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		vox_buf_adds(&b, strs[i].key);
		vox_buf_add_json_str(&b, strs[i].value);
	}
	vox_buf_adds(&b, ",\"duration_s\":");
	vox_buf_add_int(&b, cdr->duration_s);
	vox_buf_adds(&b, ",\"segments\":");
	vox_buf_add_int(&b, cdr->segments);
	if (vox_buf_adds(&b, "}}") == 0) {
		n = (int)vox_buf_len(&b);
		memcpy(out, vox_buf_str(&b), (size_t)n + 1);
	}
	vox_buf_free(&b);
	return n;
}

int vox_cdr_check(const json_t *data, vox_cdr_t *out, const char **reason_code,
                  vox_error_t *err)
{
	const char *via =
	        json_string_value(json_object_get(data, "received_via"));
	int rc;

	if (!vox_carrier_name_valid(
	            json_string_value(json_object_get(data, "carrier"))))
		return bad(err, reason_code, "invalid_carrier",
		           "data.carrier is missing or not a carrier name (a-z "
		           "0-9 _ -, at most 63)");
	if ((rc = vox_cdr_parse_trusted(data, out, reason_code, err)) != 0)
		return rc;
	if (via == NULL ||
	    (strcmp(via, "api") != 0 && strcmp(via, "file") != 0))
		return bad(err, reason_code, "invalid_received_via",
		           "received_via must be \"api\" or \"file\"");
	return 0;
}

int vox_cdr_validate(const json_t *data, vox_error_t *err)
{
	const char *reason;
	vox_cdr_t cdr;

	return vox_cdr_check(data, &cdr, &reason, err);
}
