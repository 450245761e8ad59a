/* exporter: the pure parts: an event's hour, object names, gzip, the
 * open hours carried in a commit's metadata (docs/EXPORT.md). */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

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

/* A compact copy of a JSON document whose text holds a line break. */
static int record_compact(json_t *doc, exp_record_t *rec, vox_error_t *err)
{
	rec->owned = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
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
	json_error_t jerr;
	json_t *doc;
	const char *time;
	int rc = 0;

	memset(rec, 0, sizeof(*rec));
	if (value == NULL || len == 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "empty value");
	doc = json_loadb(value, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "not JSON: %s (line %d column %d)",
		                     jerr.text, jerr.line, jerr.column);
	if (!json_is_object(doc)) {
		rc = vox_error_set(err, VOX_ERR_INVALID, false,
		                   "not a JSON object");
		goto out;
	}
	time = json_string_value(json_object_get(doc, "time"));
	if (time == NULL || vox_rfc3339_parse(time, &rec->time_us) != 0) {
		if (kafka_ts_ms < 0) {
			rc = vox_error_set(err, VOX_ERR_INVALID, false,
			                   "no parseable time and no Kafka "
			                   "timestamp");
			goto out;
		}
		rec->time_us = kafka_ts_ms * 1000;
		rec->from_kafka = true;
	}
	rec->hour = exp_hour_of(rec->time_us);
	if (memchr(value, '\n', len) != NULL ||
	    memchr(value, '\r', len) != NULL) {
		rc = record_compact(doc, rec, err);
		goto out;
	}
	rec->line = value;
	rec->line_len = len;
out:
	json_decref(doc);
	return rc;
}

static bool topic_ok(const char *topic)
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

	if (!topic_ok(topic))
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

int exp_gzip(const void *data, size_t len, int level, void **out,
             size_t *outlen, vox_error_t *err)
{
	z_stream zs;
	uLong bound;
	unsigned char *buf;
	int zrc;

	*out = NULL;
	*outlen = 0;
	memset(&zs, 0, sizeof(zs));
	/* 15 + 16: a gzip wrapper, not zlib's */
	if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8,
	                 Z_DEFAULT_STRATEGY) != Z_OK)
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "deflateInit2 (level %d) failed", level);
	bound = deflateBound(&zs, (uLong)len) + 32;
	buf = malloc(bound);
	if (buf == NULL) {
		deflateEnd(&zs);
		return vox_error_set(err, VOX_ERR_NOMEM, true,
		                     "out of memory for %zu bytes", len);
	}
	zs.next_in = (Bytef *)data;
	zs.avail_in = (uInt)len;
	zs.next_out = buf;
	zs.avail_out = (uInt)bound;
	zrc = deflate(&zs, Z_FINISH);
	if (zrc != Z_STREAM_END) {
		deflateEnd(&zs);
		free(buf);
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "deflate failed (%d)", zrc);
	}
	*outlen = zs.total_out;
	*out = buf;
	deflateEnd(&zs);
	return 0;
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
