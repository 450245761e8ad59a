/*
 * exporter: the hourly S3 export of the event topics (docs/EXPORT.md).
 *
 * layout.c holds the pure parts (an event's hour, object names, gzip);
 * export.c the consume / commit / close loop around them; flush.c the
 * threads that gzip and PUT the objects (export_int.h their shared state).
 */
#ifndef EXPORTER_H
#define EXPORTER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vox_error.h"
#include "vox_metrics.h"

#define EXP_HOUR_US INT64_C(3600000000)
/* Longest object key we make (S3's limit; a 249-byte topic needs ~570). */
#define EXP_KEY_MAX 1024

/* One message as the exporter sees it. */
/* 10000-01-01T00:00:00Z: the first event time an object key cannot name
 * (dt=YYYY has four digits); a later time counts as no time. */
#define EXP_MAX_TIME_US (253402300800LL * 1000000)

typedef struct exp_record {
	int64_t hour;     /* hours since the epoch (UTC) */
	int64_t time_us;  /* the event time (or the Kafka timestamp) */
	bool from_kafka;  /* no parseable CloudEvents time: Kafka timestamp */
	const char *line; /* what to write (no line break inside) */
	size_t line_len;
	char *owned; /* malloc'd when line is a compacted copy, or NULL */
} exp_record_t;

/* The hour (floor, so times before 1970 fall in the right hour too). */
int64_t exp_hour_of(int64_t us);

/* Classifies one message value: its event time is the CloudEvents "time"
 * (RFC 3339, any offset, normalised to UTC); without a parseable one, the
 * Kafka message timestamp kafka_ts_ms (-1: none). The line is the value as
 * it is, or, when the value holds a line break (pretty-printed JSON), a
 * compact copy (rec->owned; free it). VOX_ERR_INVALID with the reason for
 * an empty value, a value that is not a JSON object, or one with no time
 * at all. */
int exp_record_parse(const char *value, size_t len, int64_t kafka_ts_ms,
                     exp_record_t *rec, vox_error_t *err);

/* A Kafka topic name: 1..249 of a-z A-Z 0-9 . _ - */
bool exp_topic_valid(const char *topic);

/* "events/<topic>/dt=YYYY-MM-DD/hr=HH/" into out. VOX_ERR_LIMIT when out
 * is too small, VOX_ERR_INVALID for a topic name Kafka would not allow. */
int exp_hour_prefix(const char *topic, int64_t hour, char *out, size_t outlen,
                    vox_error_t *err);
/* <prefix><topic>+<partition>+<first offset>.ndjson.gz */
int exp_object_key(const char *topic, int64_t hour, int32_t partition,
                   int64_t first_offset, char *out, size_t outlen,
                   vox_error_t *err);
/* <prefix>_SUCCESS */
int exp_success_key(const char *topic, int64_t hour, char *out, size_t outlen,
                    vox_error_t *err);
/* <prefix>_late/<topic>+<partition>+<first offset>.json */
int exp_late_key(const char *topic, int64_t hour, int32_t partition,
                 int64_t first_offset, char *out, size_t outlen,
                 vox_error_t *err);

/* The open hours a partition's commit carries (its offset metadata):
 * "v1 h=<hour>,<hour>..." . Parse ignores what it does not understand. */
int exp_meta_format(const int64_t *hours, size_t n, char *out, size_t outlen);
size_t exp_meta_parse(const char *meta, size_t len, int64_t *hours, size_t max);

typedef struct exp_conf {
	const char *brokers, *group, *topics, *instance_id;
	const char *s3_endpoint, *s3_region, *s3_access_key, *s3_secret_key;
	const char *bucket;
	long max_records, max_bytes, flush_ms, lateness_ms, idle_close_ms;
	long gzip_level, threads, session_timeout_ms, s3_timeout_ms;
	long fetch_queue_mb;
	vox_metrics_t *metrics;
} exp_conf_t;

/* Runs until *running becomes 0, then flushes what it holds (when the
 * store answers), commits and leaves the group. 0 on a clean stop, 2 for
 * bad settings (VOX_EXPORT_TOPICS, the S3 ones), 1 otherwise. */
int exp_run(const exp_conf_t *conf, volatile sig_atomic_t *running);

#endif
