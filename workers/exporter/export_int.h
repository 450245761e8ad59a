/*
 * exporter internals shared by export.c (the consume loop, hours, commits)
 * and flush.c (the threads that gzip and PUT the objects of a flush).
 */
#ifndef EXPORT_INT_H
#define EXPORT_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "exporter.h"
#include "vox_buf.h"
#include "vox_s3.h"

#define EXP_MAX_TOPICS     32
#define EXP_MAX_OPEN_HOURS 400 /* fits the broker's 4096 metadata bytes */
#define EXP_MAX_THREADS    16

/* The records of one partition in one event hour. */
struct bucket {
	int64_t hour, first_offset, last_offset;
	size_t records;
	bool late;
	vox_buf_t raw; /* NDJSON */
};

/* One object of a flush, made and PUT on a flush thread. */
struct flush_job {
	const char *topic; /* ex->topics[i].name: lives as long as ex */
	int32_t partition;
	struct bucket b;        /* moved here from the partition */
	struct inflight *owner; /* the flush it belongs to */
	struct flush_job *next; /* the queue */
	int rc;
};

/* A flush of a partition under way: its objects being PUT, then (on the
 * consume thread) its offset committed. One at a time per partition. */
struct inflight {
	bool active, stored; /* stored: every PUT done, commit pending */
	struct flush_job *jobs;
	size_t njobs;
	atomic_size_t done; /* jobs finished (ok or not) */
	atomic_bool cancel; /* revoked: give up the PUTs */
	int64_t offset;     /* committed after the PUTs */
	size_t records;
};

struct part {
	int topic; /* index in ex->topics */
	int32_t partition;
	bool assigned, need_meta, broken;
	bool dirty;          /* read past what the last flush took */
	int64_t next_offset; /* after the last record read */
	int64_t dirty_since; /* mono ms of the first record not flushed */
	struct bucket *buckets;
	size_t nbuckets, bcap, bytes, records;
	int64_t open_hours[EXP_MAX_OPEN_HOURS]; /* committed, not closed */
	size_t nopen;
	struct inflight fl;
};

struct hour_state {
	int64_t hour;
	bool closed;
	long pending; /* records read, not yet committed */
};

struct topic {
	char name[256];
	int64_t watermark_us; /* max event time read; INT64_MIN: none */
	int64_t last_msg_ms;  /* mono */
	struct hour_state *hours;
	size_t nhours, hcap, last_hit;
};

struct exporter {
	const exp_conf_t *conf;
	volatile sig_atomic_t *running;
	rd_kafka_t *rk;
	vox_s3_t *s3;
	struct topic topics[EXP_MAX_TOPICS];
	int ntopics;
	struct part **parts; /* stable addresses: jobs point at them */
	size_t nparts, pcap;
	bool fatal;
	/* the flush threads */
	pthread_t threads[EXP_MAX_THREADS];
	size_t nthreads;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct flush_job *queue, *queue_tail;
	bool stopping;
	atomic_bool abandon; /* S3 retries stop (the process is leaving) */
	vox_counter_t *m_records, *m_objects, *m_bytes, *m_late, *m_closed;
	vox_counter_t *m_skipped, *m_s3_errors, *m_commits;
};

/* flush.c */
int flush_threads_start(struct exporter *ex);
void flush_threads_stop(struct exporter *ex);
/* Queues the jobs of p->fl (filled by the caller). */
void flush_enqueue(struct exporter *ex, struct inflight *fl);
/* PUT with backoff until stored, or cancel/abandon (-1). */
int exp_put_retry(struct exporter *ex, const atomic_bool *cancel,
                  const char *key, const void *data, size_t len,
                  const char *type);

#endif
