/*
 * Tests of vox_cdr: each record class accepted and normalized, each bad
 * field refused with its reason code, RFC 3339 edge cases, and the
 * vox.cdr.received event parsing back to the same record.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "vox_cdr.h"
#include "vox_json.h"

#define NOW_US (1795000000LL * 1000000) /* 2026-11-18 */

static int parse(const char *text, vox_cdr_t *cdr, const char **reason)
{
	json_error_t jerr;
	json_t *rec = json_loads(text, JSON_DECODE_ANY, &jerr);
	vox_error_t err;
	int rc;

	cr_assert_not_null(rec, "%s: %s", text, jerr.text);
	rc = vox_cdr_parse(rec, NOW_US, cdr, reason, &err);
	json_decref(rec);
	return rc;
}

static void refused(const char *text, const char *code)
{
	vox_cdr_t cdr;
	const char *reason = NULL;

	cr_assert_eq(parse(text, &cdr, &reason), VOX_ERR_INVALID, "%s accepted",
	             text);
	cr_assert_str_eq(reason, code, "%s", text);
}

Test(cdr, inbound_call_normalized)
{
	vox_cdr_t cdr;
	const char *reason;
	char when[40];

	cr_assert_eq(parse("{\"id\":\"c-1\",\"type\":\"inbound_call\","
	                   "\"from\":\"anonymous\",\"to\":\"+14155550123\","
	                   "\"started_at\":\"2026-11-17T10:00:00.25+01:00\","
	                   "\"duration_s\":61,\"carrier_extra\":[1]}",
	                   &cdr, &reason),
	             0);
	cr_assert_str_eq(cdr.number, "+14155550123");
	cr_assert_eq(cdr.type, VOX_CDR_INBOUND_CALL);
	cr_assert_eq(cdr.duration_s, 61);
	cr_assert_eq(cdr.segments, 0);
	vox_rfc3339_format(cdr.started_us, when, sizeof(when));
	cr_assert_str_eq(when, "2026-11-17T09:00:00.250000Z");
}

Test(cdr, outbound_sms_defaults_to_one_segment)
{
	vox_cdr_t cdr;
	const char *reason;

	cr_assert_eq(parse("{\"id\":\"m:9\",\"type\":\"sms_sent\",\"from\":"
	                   "\"+442079460000\",\"to\":\"+33612345678\","
	                   "\"started_at\":\"2026-11-17T10:00:00Z\"}",
	                   &cdr, &reason),
	             0);
	cr_assert_str_eq(cdr.number, "+442079460000");
	cr_assert_eq(cdr.segments, 1);
	cr_assert_eq(cdr.duration_s, 0);
}

Test(cdr, each_bad_field_has_its_reason)
{
	refused("[1]", "not_an_object");
	refused("{\"type\":\"sms_sent\"}", "missing_id");
	refused("{\"id\":\"a b\",\"type\":\"sms_sent\"}", "invalid_id");
	refused("{\"id\":7,\"type\":\"sms_sent\"}", "missing_id");
	refused("{\"id\":\"x\",\"type\":\"fax\"}", "invalid_type");
	refused("{\"id\":\"x\",\"type\":\"inbound_call\",\"from\":\"+1\"}",
	        "missing_number");
	refused("{\"id\":\"x\",\"type\":\"inbound_call\",\"from\":\"a\","
	        "\"to\":\"+1415\"}",
	        "invalid_number");
	refused("{\"id\":\"x\",\"type\":\"inbound_call\",\"from\":\"a\","
	        "\"to\":\"+1 415 555 0123\"}",
	        "invalid_number");
	refused("{\"id\":\"x\",\"type\":\"inbound_call\",\"from\":\"a;b\","
	        "\"to\":\"+14155550123\"}",
	        "invalid_party");
	refused("{\"id\":\"x\",\"type\":\"inbound_call\",\"from\":\"a\","
	        "\"to\":\"+14155550123\",\"started_at\":\"2026-11-17 10:00\"}",
	        "invalid_started_at");
	refused("{\"id\":\"x\",\"type\":\"inbound_call\",\"from\":\"a\","
	        "\"to\":\"+14155550123\",\"started_at\":\"2026-02-29T10:00:"
	        "00Z\"}",
	        "invalid_started_at");
	refused("{\"id\":\"x\",\"type\":\"inbound_call\",\"from\":\"a\","
	        "\"to\":\"+14155550123\",\"started_at\":\"2026-11-17T10:00:"
	        "00\"}",
	        "invalid_started_at");
	refused("{\"id\":\"x\",\"type\":\"inbound_call\",\"from\":\"a\","
	        "\"to\":\"+14155550123\",\"started_at\":\"1999-12-31T23:59:"
	        "59Z\"}",
	        "invalid_started_at");
	refused("{\"id\":\"x\",\"type\":\"inbound_call\",\"from\":\"a\","
	        "\"to\":\"+14155550123\",\"started_at\":\"2030-01-01T00:00:"
	        "00Z\"}",
	        "started_at_in_future");
	refused("{\"id\":\"x\",\"type\":\"inbound_call\",\"from\":\"a\","
	        "\"to\":\"+14155550123\",\"started_at\":\"2026-11-17T10:00:"
	        "00Z\"}",
	        "invalid_duration");
	refused("{\"id\":\"x\",\"type\":\"outbound_call\",\"to\":\"a\","
	        "\"from\":\"+14155550123\",\"started_at\":\"2026-11-17T10:00:"
	        "00Z\","
	        "\"duration_s\":-1}",
	        "invalid_duration");
	refused("{\"id\":\"x\",\"type\":\"outbound_call\",\"to\":\"a\","
	        "\"from\":\"+14155550123\",\"started_at\":\"2026-11-17T10:00:"
	        "00Z\","
	        "\"duration_s\":86401}",
	        "invalid_duration");
	refused("{\"id\":\"x\",\"type\":\"outbound_call\",\"to\":\"a\","
	        "\"from\":\"+14155550123\",\"started_at\":\"2026-11-17T10:00:"
	        "00Z\","
	        "\"duration_s\":1.5}",
	        "invalid_duration");
	refused("{\"id\":\"x\",\"type\":\"sms_sent\",\"to\":\"a\","
	        "\"from\":\"+14155550123\",\"started_at\":\"2026-11-17T10:00:"
	        "00Z\","
	        "\"segments\":0}",
	        "invalid_segments");
	refused("{\"id\":\"x\",\"type\":\"sms_sent\",\"to\":\"a\","
	        "\"from\":\"+14155550123\",\"started_at\":\"2026-11-17T10:00:"
	        "00Z\","
	        "\"duration_s\":30}",
	        "invalid_duration");
}

Test(cdr, rfc3339_edges)
{
	int64_t us;

	cr_assert_eq(vox_rfc3339_parse("2024-02-29T23:59:59.999999Z", &us), 0);
	cr_assert_eq(us, 1709251199999999LL);
	cr_assert_eq(vox_rfc3339_parse("2024-03-01T00:00:00-00:30", &us), 0);
	cr_assert_eq(us, 1709253000LL * 1000000);
	cr_assert_neq(vox_rfc3339_parse("2024-13-01T00:00:00Z", &us), 0);
	cr_assert_neq(vox_rfc3339_parse("2024-01-01T24:00:00Z", &us), 0);
	cr_assert_neq(vox_rfc3339_parse("2024-01-01T00:00:00.Z", &us), 0);
	cr_assert_neq(vox_rfc3339_parse("2024-01-01T00:00:00Zjunk", &us), 0);
	cr_assert_neq(vox_rfc3339_parse("", &us), 0);
	cr_assert_neq(vox_rfc3339_parse(NULL, &us), 0);
}

Test(cdr, event_round_trips)
{
	vox_cdr_t cdr, back;
	const char *reason;
	char ev[1024];
	json_t *root, *data;
	vox_error_t err;

	cr_assert_eq(
	        parse("{\"id\":\"r-7\",\"type\":\"outbound_call\",\"from\":"
	              "\"+14155550123\",\"to\":\"+4915123456789\","
	              "\"started_at\":\"2026-11-17T10:00:00.123Z\","
	              "\"duration_s\":0}",
	              &cdr, &reason),
	        0);
	cr_assert_gt(vox_cdr_event(&cdr, "sandbox", "api", ev, sizeof(ev)), 0);
	root = json_loads(ev, 0, NULL);
	cr_assert_not_null(root, "%s", ev);
	cr_assert_str_eq(vox_json_str(root, "type"), VOX_CDR_EVENT_TYPE);
	cr_assert_str_eq(vox_json_str(root, "subject"), "+14155550123");
	data = json_object_get(root, "data");
	cr_assert_str_eq(vox_json_str(data, "carrier"), "sandbox");
	cr_assert_eq(vox_cdr_parse(data, 0, &back, &reason, &err), 0, "%s",
	             err.message);
	cr_assert_eq(memcmp(&cdr, &back, sizeof(cdr)), 0);
	cr_assert_eq(vox_cdr_event(&cdr, "sandbox", "api", ev, 100), -1);
	json_decref(root);
}

Test(cdr, carrier_names)
{
	cr_assert(vox_carrier_name_valid("sandbox"));
	cr_assert(vox_carrier_name_valid("telnyx-eu_2"));
	cr_assert_not(vox_carrier_name_valid("Sandbox"));
	cr_assert_not(vox_carrier_name_valid("-x"));
	cr_assert_not(vox_carrier_name_valid(""));
	cr_assert_not(vox_carrier_name_valid(NULL));
}
