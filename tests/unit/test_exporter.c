/*
 * The exporter's pure parts (workers/exporter/layout.c): an event's hour
 * from its CloudEvents time (offsets normalised to UTC, the Kafka
 * timestamp as fallback), what is refused, object names, gzip, and the
 * open hours a commit carries.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../../workers/exporter/exporter.h"
#include "vox_gzip.h"
#include "vox_time.h"

static int64_t hour_at(const char *rfc3339)
{
	int64_t us;

	cr_assert_eq(vox_rfc3339_parse(rfc3339, &us), 0, "%s", rfc3339);
	return exp_hour_of(us);
}

Test(exporter_layout, hours_are_floors_of_utc_time)
{
	cr_assert_eq(exp_hour_of(0), 0);
	cr_assert_eq(exp_hour_of(EXP_HOUR_US - 1), 0);
	cr_assert_eq(exp_hour_of(EXP_HOUR_US), 1);
	cr_assert_eq(exp_hour_of(-1), -1);
	cr_assert_eq(hour_at("2026-11-02T05:59:59.999999Z"),
	             hour_at("2026-11-02T05:00:00Z"));
	cr_assert_eq(hour_at("2026-11-02T06:00:00Z"),
	             hour_at("2026-11-02T05:00:00Z") + 1);
}

static void parse_ok(const char *value, int64_t kafka_ms, exp_record_t *rec)
{
	vox_error_t err = {0};

	cr_assert_eq(
	        exp_record_parse(value, strlen(value), kafka_ms, rec, &err), 0,
	        "%s: %s", value, err.message);
}

Test(exporter_layout, event_time_decides_the_hour_in_utc)
{
	exp_record_t rec;
	const char *ev =
	        "{\"id\":\"a\",\"time\":\"2026-11-02T01:30:00+02:00\"}";

	parse_ok(ev, 0, &rec);
	cr_assert_eq(rec.hour, hour_at("2026-11-01T23:00:00Z"));
	cr_assert_not(rec.from_kafka);
	/* the value itself is the line */
	cr_assert_eq(rec.line, ev);
	cr_assert_eq(rec.line_len, strlen(ev));
	cr_assert_null(rec.owned);
}

Test(exporter_layout, no_parseable_time_falls_back_to_the_kafka_timestamp)
{
	const char *values[] = {
	        "{\"id\":\"a\"}",
	        "{\"id\":\"a\",\"time\":\"yesterday\"}",
	        "{\"id\":\"a\",\"time\":1762041600}",
	        "{\"id\":\"a\",\"time\":\"2026-13-02T00:00:00Z\"}",
	        /* after 9999 in UTC: no object key can name its hour */
	        "{\"id\":\"a\",\"time\":\"9999-12-31T23:59:59-01:00\"}",
	        "{\"id\":\"a\",\"time\":\"1969-12-31T23:59:59Z\"}",
	};
	int64_t kafka_ms = 1762052400000; /* 2025-11-02T03:00:00Z */

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		exp_record_t rec;

		char key[EXP_KEY_MAX];
		vox_error_t err;

		parse_ok(values[i], kafka_ms, &rec);
		cr_assert(rec.from_kafka, "%s", values[i]);
		cr_assert_eq(rec.hour, hour_at("2025-11-02T03:00:00Z"));
		cr_assert_eq(exp_object_key("vox.t", rec.hour, 0, 1, key,
		                            sizeof(key), &err),
		             0, "%s", err.message);
	}
}

Test(exporter_layout, what_is_not_an_event_is_refused_with_a_reason)
{
	const char *values[] = {
	        "not json",
	        "[1,2]",
	        "\"text\"",
	        "{\"a\":",
	        "{\"a\":1}x",
	        "{\"a\":1}{}",
	        "{\"a\":01}",
	        "{\"a\":1.}",
	        "{\"a\":-}",
	        "{\"a\":tru}",
	        "{\"a\":[1,]}",
	        "{\"a\":1,}",
	        "{a:1}",
	        "{\"a\":\"\\x\"}",
	        "{\"a\":\"\\u12g4\"}",
	        "{\"a\":\"tab\there\"}",
	        "{\"a\":\"\xc3\x28\"}",     /* bad UTF-8 */
	        "{\"a\":\"\xe0\x80\xaf\"}", /* overlong */
	        "{\"a\":\"\xed\xa0\x80\"}", /* a surrogate */
	        "{\"time\":\"2026-11-02T05:00:00Z\",\"time\":\"x\"}",
	};
	exp_record_t rec;
	vox_error_t err = {0};

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		cr_assert_eq(exp_record_parse(values[i], strlen(values[i]), 0,
		                              &rec, &err),
		             VOX_ERR_INVALID, "%s", values[i]);
		cr_assert_neq(err.message[0], '\0');
	}
	cr_assert_eq(exp_record_parse("", 0, 0, &rec, &err), VOX_ERR_INVALID);
	cr_assert_eq(exp_record_parse(NULL, 0, 0, &rec, &err), VOX_ERR_INVALID);
	/* no event time and no Kafka timestamp */
	cr_assert_eq(exp_record_parse("{}", 2, -1, &rec, &err),
	             VOX_ERR_INVALID);
	cr_assert(strstr(err.message, "time") != NULL, "%s", err.message);
}

Test(exporter_layout, valid_json_of_every_kind_is_taken)
{
	const char *values[] = {
	        "{}",
	        " {\"time\":\"2026-11-02T05:00:00Z\"} ",
	        "{\"a\":[1,-2.5e+3,0,true,false,null,{},[]],\"b\":{\"time\":1}"
	        "}",
	        "{\"a\":\"\\u00e9\\n\\\"\\\\\\/"
	        "\",\"b\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
	};
	exp_record_t rec;

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		parse_ok(values[i], 1000, &rec);
	/* a nested "time" is not the event's */
	parse_ok(values[2], 7200000, &rec);
	cr_assert(rec.from_kafka);
	cr_assert_eq(rec.hour, 2);
}

Test(exporter_layout, nesting_is_bounded)
{
	char deep[2100];
	exp_record_t rec;
	vox_error_t err = {0};
	size_t n = 0;

	memcpy(deep, "{\"a\":", 5);
	n = 5;
	for (int i = 0; i < 1000; i++)
		deep[n++] = '[';
	for (int i = 0; i < 1000; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	cr_assert_eq(exp_record_parse(deep, n, 0, &rec, &err), VOX_ERR_INVALID);
}

Test(exporter_layout, a_pretty_printed_event_is_written_on_one_line)
{
	const char *ev = "{\n  \"id\": \"a\",\r\n  \"time\": "
	                 "\"2026-11-02T05:00:00Z\",\n  \"data\": {\"n\": 1}\n}";
	exp_record_t rec;

	parse_ok(ev, -1, &rec);
	cr_assert_not_null(rec.owned);
	cr_assert_str_eq(rec.line, "{\"id\":\"a\",\"time\":\"2026-11-02T05:00:"
	                           "00Z\",\"data\":{\"n\":1}}");
	cr_assert_eq(rec.line_len, strlen(rec.line));
	free(rec.owned);
}

Test(exporter_layout, object_names_follow_the_layout)
{
	char key[EXP_KEY_MAX];
	vox_error_t err = {0};
	int64_t h = hour_at("2026-11-02T07:00:00Z");

	cr_assert_eq(exp_object_key("vox.events.usage", h, 3, 120045, key,
	                            sizeof(key), &err),
	             0, "%s", err.message);
	cr_assert_str_eq(key, "events/vox.events.usage/dt=2026-11-02/hr=07/"
	                      "vox.events.usage+3+120045.ndjson.gz");
	cr_assert_eq(
	        exp_success_key("vox.events.usage", h, key, sizeof(key), &err),
	        0);
	cr_assert_str_eq(
	        key, "events/vox.events.usage/dt=2026-11-02/hr=07/_SUCCESS");
	cr_assert_eq(exp_late_key("vox.events.usage", h, 0, 7, key, sizeof(key),
	                          &err),
	             0);
	cr_assert_str_eq(key, "events/vox.events.usage/dt=2026-11-02/hr=07/"
	                      "_late/vox.events.usage+0+7.json");
	/* the last hour of a year, the first of 1970 */
	cr_assert_eq(exp_hour_prefix("t", hour_at("2026-12-31T23:59:59Z"), key,
	                             sizeof(key), &err),
	             0);
	cr_assert_str_eq(key, "events/t/dt=2026-12-31/hr=23/");
	cr_assert_eq(exp_hour_prefix("t", 0, key, sizeof(key), &err), 0);
	cr_assert_str_eq(key, "events/t/dt=1970-01-01/hr=00/");
}

Test(exporter_layout, bad_topic_names_and_small_buffers_are_errors)
{
	char key[EXP_KEY_MAX], small[20];
	vox_error_t err = {0};

	cr_assert_eq(exp_object_key("a/b", 0, 0, 0, key, sizeof(key), &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(exp_object_key("", 0, 0, 0, key, sizeof(key), &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(exp_object_key("a b", 0, 0, 0, key, sizeof(key), &err),
	             VOX_ERR_INVALID);
	cr_assert_eq(exp_object_key("vox.events.usage", 0, 0, 0, small,
	                            sizeof(small), &err),
	             VOX_ERR_LIMIT);
}

Test(exporter_layout, gzip_round_trips)
{
	const char *text = "{\"id\":\"a\"}\n{\"id\":\"b\"}\n";
	char back[256];
	uLongf backlen = sizeof(back);
	void *gz;
	size_t gzlen;
	z_stream zs = {0};

	cr_assert_eq(vox_gzip(text, strlen(text), 6, &gz, &gzlen, NULL), 0);
	cr_assert_eq(((unsigned char *)gz)[0], 0x1f); /* gzip magic */
	cr_assert_eq(((unsigned char *)gz)[1], 0x8b);
	cr_assert_eq(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = gz;
	zs.avail_in = (uInt)gzlen;
	zs.next_out = (Bytef *)back;
	zs.avail_out = (uInt)backlen;
	cr_assert_eq(inflate(&zs, Z_FINISH), Z_STREAM_END);
	cr_assert_eq(zs.total_out, strlen(text));
	cr_assert_eq(memcmp(back, text, strlen(text)), 0);
	inflateEnd(&zs);
	free(gz);
	/* an empty object is a valid gzip member too */
	cr_assert_eq(vox_gzip("", 0, 1, &gz, &gzlen, NULL), 0);
	cr_assert_gt(gzlen, 0);
	free(gz);
}

Test(exporter_layout, open_hours_round_trip_through_commit_metadata)
{
	int64_t hours[] = {493212, 493213, -5}, back[8];
	char meta[4096];

	cr_assert_eq(exp_meta_format(hours, 3, meta, sizeof(meta)), 0);
	cr_assert_str_eq(meta, "v1 h=493212,493213,-5");
	cr_assert_eq(exp_meta_parse(meta, strlen(meta), back, 8), 3);
	cr_assert_eq(memcmp(back, hours, sizeof(hours)), 0);
	cr_assert_eq(exp_meta_format(hours, 0, meta, sizeof(meta)), 0);
	cr_assert_eq(exp_meta_parse(meta, strlen(meta), back, 8), 0);
	/* someone else's metadata, none, or too long: no hours */
	cr_assert_eq(exp_meta_parse("hello", 5, back, 8), 0);
	cr_assert_eq(exp_meta_parse(NULL, 0, back, 8), 0);
	cr_assert_eq(exp_meta_parse("v1 h=1,x,3", 10, back, 8), 1);
	cr_assert_eq(exp_meta_format(hours, 3, meta, 10), VOX_ERR_LIMIT);
}
