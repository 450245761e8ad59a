/* exporter: the pure parts: an event's hour, object names, gzip, the
 * open hours carried in a commit's metadata (docs/EXPORT.md). */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exporter.h"
#include "vox_buf.h"
#include "vox_time.h"

int64_t exp_hour_of(int64_t us)
{
	int64_t h = us / EXP_HOUR_US;

	if (us % EXP_HOUR_US < 0)
		h--;
	return h;
}

/*
 * A validating scan of the value (RFC 8259: structure, strings, escapes,
 * UTF-8, numbers, literals), which also finds the top-level "time" string:
 * a full jansson parse of every record cost five times the rest of the
 * export (bench/RESULTS.md). Only values with a line break are parsed with
 * jansson, to be written compact.
 */
#define SCAN_MAX_DEPTH 512

struct scan {
	const unsigned char *p, *end;
	const unsigned char *time; /* the top-level "time" string, raw */
	size_t time_len;
	int times; /* how many top-level "time" keys */
};

static void scan_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
	                         *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* One UTF-8 sequence of 2..4 bytes at s->p (its lead byte >= 0x80). */
static bool scan_utf8(struct scan *s)
{
	const unsigned char *p = s->p;
	size_t left = (size_t)(s->end - p), n;
	unsigned cp;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1fu;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0fu;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07u;
	else
		return false;
	if (left < n)
		return false;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return false;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return false;
	s->p += n;
	return true;
}

static bool is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* A string at s->p (its opening quote); its raw bytes in *raw and *len, and
 * whether it held an escape. */
static bool scan_string(struct scan *s, const unsigned char **raw, size_t *len,
                        bool *escaped)
{
	const unsigned char *start = ++s->p;

	*escaped = false;
	while (s->p < s->end) {
		unsigned char c = *s->p;

		if (c == '"') {
			*raw = start;
			*len = (size_t)(s->p - start);
			s->p++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			*escaped = true;
			if (s->end - s->p < 2)
				return false;
			c = s->p[1];
			if (c == 'u') {
				if (s->end - s->p < 6 || !is_hex(s->p[2]) ||
				    !is_hex(s->p[3]) || !is_hex(s->p[4]) ||
				    !is_hex(s->p[5]))
					return false;
				s->p += 6;
			} else if (c != '\0' &&
			           strchr("\"\\/bfnrt", c) != NULL) {
				s->p += 2;
			} else
				return false;
		} else if (c >= 0x80) {
			if (!scan_utf8(s))
				return false;
		} else
			s->p++;
	}
	return false;
}

static bool scan_digits(struct scan *s)
{
	const unsigned char *start = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > start;
}

static bool scan_number(struct scan *s)
{
	if (*s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (!scan_digits(s))
		return false;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (!scan_digits(s))
			return false;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (!scan_digits(s))
			return false;
	}
	return true;
}

static bool scan_literal(struct scan *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return false;
	s->p += n;
	return true;
}

static bool scan_value(struct scan *s, int depth);

/* An object or array at s->p; depth 0 is the value itself, whose "time"
 * member is remembered. */
static bool scan_container(struct scan *s, int depth)
{
	bool object = *s->p == '{', first = true;
	unsigned char close = object ? '}' : ']';

	if (depth >= SCAN_MAX_DEPTH)
		return false;
	s->p++;
	for (;;) {
		scan_ws(s);
		if (s->p >= s->end)
			return false;
		if (*s->p == close && first) {
			s->p++;
			return true;
		}
		if (object) {
			const unsigned char *key;
			size_t key_len;
			bool escaped, is_time;

			if (*s->p != '"' ||
			    !scan_string(s, &key, &key_len, &escaped))
				return false;
			is_time = depth == 0 && key_len == 4 &&
			          memcmp(key, "time", 4) == 0;
			scan_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return false;
			s->p++;
			scan_ws(s);
			if (is_time) {
				s->times++;
				s->time = NULL;
				if (s->p < s->end && *s->p == '"') {
					const unsigned char *raw;
					size_t len;

					if (!scan_string(s, &raw, &len,
					                 &escaped))
						return false;
					if (!escaped) {
						s->time = raw;
						s->time_len = len;
					}
				} else if (!scan_value(s, depth + 1))
					return false;
			} else if (!scan_value(s, depth + 1))
				return false;
		} else if (!scan_value(s, depth + 1))
			return false;
		first = false;
		scan_ws(s);
		if (s->p >= s->end)
			return false;
		if (*s->p == close) {
			s->p++;
			return true;
		}
		if (*s->p != ',')
			return false;
		s->p++;
	}
}

static bool scan_value(struct scan *s, int depth)
{
	const unsigned char *raw;
	size_t len;
	bool escaped;

	if (s->p >= s->end)
		return false;
	switch (*s->p) {
	case '{':
	case '[':
		return scan_container(s, depth);
	case '"':
		return scan_string(s, &raw, &len, &escaped);
	case 't':
		return scan_literal(s, "true");
	case 'f':
		return scan_literal(s, "false");
	case 'n':
		return scan_literal(s, "null");
	default:
		return (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) &&
		       scan_number(s);
	}
}

/* A compact copy of a value whose text holds a line break. */
static int record_compact(const char *value, size_t len, exp_record_t *rec,
                          vox_error_t *err)
{
	json_t *doc = json_loadb(value, len, 0, NULL);

	rec->owned = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER)
	                 : NULL;
	json_decref(doc);
	if (rec->owned == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true,
		                     "out of memory compacting an event");
	rec->line = rec->owned;
	rec->line_len = strlen(rec->owned);
	return 0;
}

int exp_record_parse(const char *value, size_t len, int64_t kafka_ts_ms,
                     exp_record_t *rec, vox_error_t *err)
{
	struct scan s = {0};
	char time[64];
	bool has_time = false;

	memset(rec, 0, sizeof(*rec));
	if (value == NULL || len == 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "empty value");
	s.p = (const unsigned char *)value;
	s.end = s.p + len;
	scan_ws(&s);
	if (s.p >= s.end || *s.p != '{') {
		if (s.p < s.end && (*s.p == '[' || *s.p == '"'))
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "not a JSON object");
		return vox_error_set(err, VOX_ERR_INVALID, false, "not JSON");
	}
	if (!scan_container(&s, 0))
		return vox_error_set(
		        err, VOX_ERR_INVALID, false,
		        "not JSON: malformed at byte %zu",
		        (size_t)(s.p - (const unsigned char *)value));
	scan_ws(&s);
	if (s.p != s.end)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "not JSON: text after the object");
	if (s.times > 1)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "duplicate \"time\" member");
	if (s.time != NULL && s.time_len < sizeof(time)) {
		memcpy(time, s.time, s.time_len);
		time[s.time_len] = '\0';
		/* A time whose hour cannot be named (after 9999-12-31 in
		 * UTC: "9999-12-31T23:30:00-01:00") is no better than none:
		 * its object could never be written. */
		has_time = vox_rfc3339_parse(time, &rec->time_us) == 0 &&
		           rec->time_us < EXP_MAX_TIME_US;
	}
	if (!has_time) {
		if (kafka_ts_ms < 0)
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "no parseable time and no Kafka "
			                     "timestamp");
		rec->time_us = kafka_ts_ms * 1000;
		rec->from_kafka = true;
	}
	rec->hour = exp_hour_of(rec->time_us);
	if (memchr(value, '\n', len) != NULL ||
	    memchr(value, '\r', len) != NULL)
		return record_compact(value, len, rec, err);
	rec->line = value;
	rec->line_len = len;
	return 0;
}

bool exp_topic_valid(const char *topic)
{
	size_t n = strlen(topic);

	if (n == 0 || n > 249)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = topic[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

int exp_hour_prefix(const char *topic, int64_t hour, char *out, size_t outlen,
                    vox_error_t *err)
{
	time_t secs = (time_t)(hour * 3600);
	struct tm tm;
	int n;

	if (!exp_topic_valid(topic))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "topic name \"%.64s\" is not a Kafka name",
		                     topic);
	if (gmtime_r(&secs, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "hour %" PRId64 " is out of range", hour);
	n = snprintf(out, outlen, "events/%s/dt=%04d-%02d-%02d/hr=%02d/", topic,
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour);
	if (n < 0 || (size_t)n >= outlen)
		return vox_error_set(err, VOX_ERR_LIMIT, false,
		                     "object key too long");
	return 0;
}

/* prefix + a name made of fmt. */
static int key_with(const char *topic, int64_t hour, char *out, size_t outlen,
                    vox_error_t *err, const char *name)
{
	size_t used;
	int rc = exp_hour_prefix(topic, hour, out, outlen, err);

	if (rc != 0)
		return rc;
	used = strlen(out);
	if (used + strlen(name) >= outlen)
		return vox_error_set(err, VOX_ERR_LIMIT, false,
		                     "object key too long");
	memcpy(out + used, name, strlen(name) + 1);
	return 0;
}

int exp_object_key(const char *topic, int64_t hour, int32_t partition,
                   int64_t first_offset, char *out, size_t outlen,
                   vox_error_t *err)
{
	char name[320];

	snprintf(name, sizeof(name), "%s+%" PRId32 "+%" PRId64 ".ndjson.gz",
	         topic, partition, first_offset);
	return key_with(topic, hour, out, outlen, err, name);
}

int exp_success_key(const char *topic, int64_t hour, char *out, size_t outlen,
                    vox_error_t *err)
{
	return key_with(topic, hour, out, outlen, err, "_SUCCESS");
}

int exp_late_key(const char *topic, int64_t hour, int32_t partition,
                 int64_t first_offset, char *out, size_t outlen,
                 vox_error_t *err)
{
	char name[320];

	snprintf(name, sizeof(name), "_late/%s+%" PRId32 "+%" PRId64 ".json",
	         topic, partition, first_offset);
	return key_with(topic, hour, out, outlen, err, name);
}

int exp_meta_format(const int64_t *hours, size_t n, char *out, size_t outlen)
{
	vox_buf_t b;
	int rc;

	vox_buf_init(&b, outlen - 1);
	vox_buf_adds(&b, "v1 h=");
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			vox_buf_adds(&b, ",");
		vox_buf_add_int(&b, hours[i]);
	}
	rc = vox_buf_error(&b);
	if (rc == 0)
		memcpy(out, vox_buf_str(&b), vox_buf_len(&b) + 1);
	vox_buf_free(&b);
	return rc;
}

size_t exp_meta_parse(const char *meta, size_t len, int64_t *hours, size_t max)
{
	char buf[4200], *p, *end;
	size_t n = 0;

	if (meta == NULL || len < 5 || len >= sizeof(buf) ||
	    memcmp(meta, "v1 h=", 5) != 0)
		return 0;
	memcpy(buf, meta, len);
	buf[len] = '\0';
	p = buf + 5;
	while (*p != '\0' && n < max) {
		long long h = strtoll(p, &end, 10);

		if (end == p)
			break;
		hours[n++] = h;
		p = end;
		if (*p != ',')
			break;
		p++;
	}
	return n;
}
