/*
 * exporter: the consume / flush / close loop (docs/EXPORT.md).
 *
 * Records are buffered per partition in one bucket per event hour. A flush
 * of a partition hands its buckets to the flush threads (flush.c), which
 * PUT each as <topic>+<partition>+<first offset> (gzip'd NDJSON) while
 * this thread keeps consuming; once every PUT of it is done, this thread
 * commits the partition's offset as of the flush, synchronously. One flush
 * per partition is under way at a time, so what is PUT and not committed
 * is always one range from the committed offset. The commit's metadata
 * lists the hours the partition has committed records of that are not
 * closed yet, so a restart knows them. An hour is closed (_SUCCESS) once
 * the topic's watermark minus the allowed lateness (or, when the topic is
 * idle, the wall clock minus it) is past its end and no record of it is
 * left uncommitted. Records of a closed hour are late: their objects get a
 * manifest under the hour's _late/.
 *
 * The S3 store failing is waited out with backoff (nothing is committed
 * meanwhile); a revoked partition drops what it had not committed (the next
 * owner reads it again and writes the same names).
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export_int.h"
#include "vox_fault.h"
#include "vox_log.h"
#include "vox_time.h"

/* ---- S3 reads ---- */

/* 1: the object is there, 0: not, -1: stopping before the store answered. */
static int s3_exists_retry(struct exporter *ex, const char *key)
{
	vox_error_t err;
	char *data = NULL;
	size_t len;

	for (int attempt = 1; *ex->running; attempt++) {
		int rc = vox_s3_get(ex->s3, key, 65536, &data, &len, &err);

		free(data);
		data = NULL;
		if (rc == 0)
			return 1;
		if (rc == VOX_ERR_NOT_FOUND)
			return 0;
		vox_counter_inc(ex->m_s3_errors);
		if (attempt == 1 || attempt % 10 == 0)
			vox_log(VOX_LOG_WARN, "S3 GET failed, retrying", "key",
			        key, "error", err.message, NULL);
		vox_sleep_ms(vox_backoff_ms(100, 10000, attempt, 0));
	}
	return -1;
}

/* ---- hours ---- */

static struct hour_state *hour_find(struct topic *t, int64_t hour)
{
	if (t->last_hit < t->nhours && t->hours[t->last_hit].hour == hour)
		return &t->hours[t->last_hit];
	for (size_t i = 0; i < t->nhours; i++)
		if (t->hours[i].hour == hour) {
			t->last_hit = i;
			return &t->hours[i];
		}
	return NULL;
}

/* The hour's state; a new one asks the store whether it was closed by an
 * earlier run (its _SUCCESS). NULL when stopping or out of memory. */
static struct hour_state *hour_get(struct exporter *ex, struct topic *t,
                                   int64_t hour)
{
	struct hour_state *hs = hour_find(t, hour);
	char key[EXP_KEY_MAX];
	vox_error_t err;
	int closed;

	if (hs != NULL)
		return hs;
	if (exp_success_key(t->name, hour, key, sizeof(key), &err) != 0) {
		vox_log(VOX_LOG_ERROR, "hour key", "error", err.message, NULL);
		return NULL;
	}
	closed = s3_exists_retry(ex, key);
	if (closed < 0)
		return NULL;
	if (t->nhours == t->hcap) {
		size_t cap = t->hcap ? t->hcap * 2 : 64;
		struct hour_state *h = realloc(t->hours, cap * sizeof(*h));

		if (h == NULL)
			return NULL;
		t->hours = h;
		t->hcap = cap;
	}
	hs = &t->hours[t->nhours++];
	hs->hour = hour;
	hs->closed = closed == 1;
	hs->pending = 0;
	return hs;
}

static void hour_uncount(struct topic *t, const struct bucket *b)
{
	struct hour_state *hs = hour_find(t, b->hour);

	if (hs != NULL)
		hs->pending -= (long)b->records;
}

/* ---- partitions ---- */

static int topic_index(struct exporter *ex, const char *name)
{
	for (int i = 0; i < ex->ntopics; i++)
		if (strcmp(ex->topics[i].name, name) == 0)
			return i;
	return -1;
}

static struct part *part_find(struct exporter *ex, const char *topic,
                              int32_t partition, bool create)
{
	int ti = topic_index(ex, topic);
	struct part *p;

	if (ti < 0)
		return NULL;
	for (size_t i = 0; i < ex->nparts; i++)
		if (ex->parts[i]->topic == ti &&
		    ex->parts[i]->partition == partition)
			return ex->parts[i];
	if (!create)
		return NULL;
	if (ex->nparts == ex->pcap) {
		size_t cap = ex->pcap ? ex->pcap * 2 : 16;
		struct part **parts = realloc(ex->parts, cap * sizeof(*parts));

		if (parts == NULL)
			return NULL;
		ex->parts = parts;
		ex->pcap = cap;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->topic = ti;
	p->partition = partition;
	ex->parts[ex->nparts++] = p;
	return p;
}

/* Waits for the flush under way to finish its jobs (they give up at once
 * when cancelled), then forgets it. */
static void inflight_drop(struct exporter *ex, struct part *p, bool cancel)
{
	struct inflight *fl = &p->fl;

	if (!fl->active)
		return;
	if (cancel)
		atomic_store(&fl->cancel, true);
	while (atomic_load_explicit(&fl->done, memory_order_acquire) <
	       fl->njobs)
		vox_sleep_ms(5);
	for (size_t i = 0; i < fl->njobs; i++) {
		hour_uncount(&ex->topics[p->topic], &fl->jobs[i].b);
		vox_buf_free(&fl->jobs[i].b.raw);
	}
	free(fl->jobs);
	fl->jobs = NULL;
	fl->njobs = 0;
	fl->active = false;
	fl->stored = false;
}

/* Forgets what the partition read and did not commit. */
static void part_drop(struct exporter *ex, struct part *p)
{
	inflight_drop(ex, p, true);
	for (size_t i = 0; i < p->nbuckets; i++) {
		hour_uncount(&ex->topics[p->topic], &p->buckets[i]);
		vox_buf_free(&p->buckets[i].raw);
	}
	p->nbuckets = 0;
	p->bytes = 0;
	p->records = 0;
	p->dirty = false;
}

static void part_open_hour(struct part *p, int64_t hour)
{
	for (size_t i = 0; i < p->nopen; i++)
		if (p->open_hours[i] == hour)
			return;
	if (p->nopen == EXP_MAX_OPEN_HOURS) {
		/* the oldest goes: a restart may then miss closing it */
		memmove(p->open_hours, p->open_hours + 1,
		        (p->nopen - 1) * sizeof(p->open_hours[0]));
		p->nopen--;
	}
	p->open_hours[p->nopen++] = hour;
}

static void part_close_hour(struct part *p, int64_t hour)
{
	for (size_t i = 0; i < p->nopen; i++)
		if (p->open_hours[i] == hour) {
			p->open_hours[i] = p->open_hours[--p->nopen];
			return;
		}
}

/* The hours an earlier run committed records of (the commit metadata);
 * those not closed yet become this partition's open hours. */
static int part_load_meta(struct exporter *ex, struct part *p)
{
	struct topic *t = &ex->topics[p->topic];
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_topic_partition_t *tp;
	rd_kafka_resp_err_t kerr;
	int64_t hours[EXP_MAX_OPEN_HOURS];
	size_t n;
	int rc = 0;

	list = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(list, t->name, p->partition);
	kerr = rd_kafka_committed(ex->rk, list, 10000);
	tp = &list->elems[0];
	if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR && tp->err)
		kerr = tp->err;
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		vox_log(VOX_LOG_WARN, "committed offsets unknown, asking again",
		        "topic", t->name, "error", rd_kafka_err2str(kerr),
		        NULL);
		rc = -1;
		goto out;
	}
	n = exp_meta_parse(tp->metadata, tp->metadata_size, hours,
	                   EXP_MAX_OPEN_HOURS);
	for (size_t i = 0; i < n; i++) {
		struct hour_state *hs = hour_get(ex, t, hours[i]);

		if (hs == NULL) {
			rc = -1;
			goto out;
		}
		if (!hs->closed)
			part_open_hour(p, hours[i]);
	}
	p->need_meta = false;
out:
	rd_kafka_topic_partition_list_destroy(list);
	return rc;
}

/* ---- flush and commit ---- */

static void part_debug(struct exporter *ex, struct part *p, const char *msg,
                       size_t records)
{
	char part[16], n[24];

	snprintf(part, sizeof(part), "%" PRId32, p->partition);
	snprintf(n, sizeof(n), "%zu", records);
	vox_log(VOX_LOG_DEBUG, msg, "topic", ex->topics[p->topic].name,
	        "partition", part, "records", n, NULL);
}

static int part_commit(struct exporter *ex, struct part *p, int64_t offset)
{
	struct topic *t = &ex->topics[p->topic];
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_topic_partition_t *tp;
	rd_kafka_resp_err_t kerr;
	char meta[4096];

	if (exp_meta_format(p->open_hours, p->nopen, meta, sizeof(meta)) != 0)
		return -1;
	list = rd_kafka_topic_partition_list_new(1);
	tp = rd_kafka_topic_partition_list_add(list, t->name, p->partition);
	tp->offset = offset;
	tp->metadata = strdup(meta); /* now owned by the list */
	tp->metadata_size = tp->metadata ? strlen(meta) : 0;
	kerr = rd_kafka_commit(ex->rk, list, 0);
	if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR && list->elems[0].err)
		kerr = list->elems[0].err;
	rd_kafka_topic_partition_list_destroy(list);
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		char part[16];

		snprintf(part, sizeof(part), "%" PRId32, p->partition);
		vox_log(VOX_LOG_WARN,
		        "commit failed (tried again; the objects "
		        "stay under their names)",
		        "topic", t->name, "partition", part, "error",
		        rd_kafka_err2str(kerr), NULL);
		return -1;
	}
	vox_counter_inc(ex->m_commits);
	return 0;
}

/* Starts a flush of the partition: its buckets go to the flush threads,
 * to be committed up to what it has read. Nothing when a flush of it is
 * still under way (the next tick tries again). */
static void flush_start(struct exporter *ex, struct part *p)
{
	struct inflight *fl = &p->fl;

	if (fl->active || !p->dirty || !p->assigned || p->broken)
		return;
	fl->jobs = calloc(p->nbuckets ? p->nbuckets : 1, sizeof(*fl->jobs));
	if (fl->jobs == NULL)
		return;
	for (size_t i = 0; i < p->nbuckets; i++) {
		struct flush_job *job = &fl->jobs[i];

		job->topic = ex->topics[p->topic].name;
		job->partition = p->partition;
		job->b = p->buckets[i]; /* its buffer now owned by the job */
		job->owner = fl;
	}
	fl->njobs = p->nbuckets;
	atomic_store(&fl->done, 0);
	atomic_store(&fl->cancel, false);
	fl->offset = p->next_offset;
	fl->records = p->records;
	fl->stored = false;
	fl->active = true;
	p->nbuckets = 0;
	p->bytes = 0;
	p->records = 0;
	p->dirty = false;
	part_debug(ex, p, "flush started", fl->records);
	flush_enqueue(ex, fl);
}

/* A flush whose PUTs are all done: commit, then forget its records. */
static void flush_finish(struct exporter *ex, struct part *p)
{
	struct inflight *fl = &p->fl;

	if (!fl->stored) {
		bool failed = false;

		for (size_t i = 0; i < fl->njobs; i++)
			failed = failed || fl->jobs[i].rc != 0;
		if (failed) {
			/* out of memory making an object: all again (the
			 * names are the same); abandoned: nothing more */
			if (!atomic_load(&ex->abandon)) {
				atomic_store(&fl->done, 0);
				flush_enqueue(ex, fl);
			}
			return;
		}
		for (size_t i = 0; i < fl->njobs; i++) {
			if (!fl->jobs[i].b.late)
				part_open_hour(p, fl->jobs[i].b.hour);
			/* test builds: die here, the objects PUT and not
			 * committed (tests/integration/test_exporter.c) */
			vox_fault_check_message(
			        vox_buf_str(&fl->jobs[i].b.raw),
			        vox_buf_len(&fl->jobs[i].b.raw));
		}
		fl->stored = true;
	}
	if (part_commit(ex, p, fl->offset) != 0)
		return;
	for (size_t i = 0; i < fl->njobs; i++)
		if (fl->jobs[i].b.late)
			vox_counter_add(ex->m_late, fl->jobs[i].b.records);
	vox_counter_add(ex->m_records, fl->records);
	part_debug(ex, p, "flush committed", fl->records);
	inflight_drop(ex, p, false);
}

/* Commits the flushes whose PUTs are done. */
static void flushes_reap(struct exporter *ex)
{
	for (size_t i = 0; i < ex->nparts; i++) {
		struct part *p = ex->parts[i];

		if (p->fl.active &&
		    atomic_load_explicit(&p->fl.done, memory_order_acquire) ==
		            p->fl.njobs)
			flush_finish(ex, p);
	}
}

/* ---- records ---- */

static struct bucket *bucket_get(struct part *p, int64_t hour, bool late,
                                 int64_t offset)
{
	struct bucket *b;

	for (size_t i = 0; i < p->nbuckets; i++)
		if (p->buckets[i].hour == hour)
			return &p->buckets[i];
	if (p->nbuckets == p->bcap) {
		size_t cap = p->bcap ? p->bcap * 2 : 4;

		b = realloc(p->buckets, cap * sizeof(*b));
		if (b == NULL)
			return NULL;
		p->buckets = b;
		p->bcap = cap;
	}
	b = &p->buckets[p->nbuckets++];
	memset(b, 0, sizeof(*b));
	b->hour = hour;
	b->late = late;
	b->first_offset = offset;
	/* no cap of its own: the flush triggers bound it */
	vox_buf_init(&b->raw, (size_t)1 << 40);
	return b;
}

static void record_skip(struct exporter *ex, const rd_kafka_message_t *m,
                        const char *reason)
{
	char part[16], off[24];

	snprintf(part, sizeof(part), "%" PRId32, m->partition);
	snprintf(off, sizeof(off), "%" PRId64, m->offset);
	vox_counter_inc(ex->m_skipped);
	vox_log(VOX_LOG_WARN, "record skipped", "topic",
	        rd_kafka_topic_name(m->rkt), "partition", part, "offset", off,
	        "reason", reason, NULL);
}

/* -1: the record could not be taken (stopping, out of memory): the
 * partition must not commit past it. */
static int record_add(struct exporter *ex, struct part *p,
                      const rd_kafka_message_t *m)
{
	struct topic *t = &ex->topics[p->topic];
	rd_kafka_timestamp_type_t tstype;
	int64_t ts = rd_kafka_message_timestamp(m, &tstype);
	struct hour_state *hs;
	struct bucket *b;
	exp_record_t rec;
	vox_error_t err;
	int rc = -1;

	if (exp_record_parse(m->payload, m->len, ts, &rec, &err) != 0) {
		if (err.code != VOX_ERR_INVALID)
			return -1;
		record_skip(ex, m, err.message);
		return 0;
	}
	hs = hour_get(ex, t, rec.hour);
	if (hs == NULL)
		goto out;
	b = bucket_get(p, rec.hour, hs->closed, m->offset);
	if (b == NULL)
		goto out;
	vox_buf_add(&b->raw, rec.line, rec.line_len);
	if (vox_buf_add(&b->raw, "\n", 1) != 0)
		goto out;
	b->last_offset = m->offset;
	b->records++;
	hs->pending++;
	p->bytes += rec.line_len + 1;
	p->records++;
	if (rec.time_us > t->watermark_us)
		t->watermark_us = rec.time_us;
	rc = 0;
out:
	free(rec.owned);
	return rc;
}

static void message_take(struct exporter *ex, rd_kafka_message_t *m,
                         int64_t now)
{
	struct part *p;

	if (m->err) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			vox_log(VOX_LOG_WARN, "consume error", "error",
			        rd_kafka_message_errstr(m), NULL);
		return;
	}
	p = part_find(ex, rd_kafka_topic_name(m->rkt), m->partition, false);
	if (p == NULL || !p->assigned || p->broken)
		return;
	while (p->need_meta && *ex->running && part_load_meta(ex, p) != 0)
		vox_sleep_ms(500);
	if (p->need_meta || record_add(ex, p, m) != 0) {
		/* this process stops without committing past it */
		p->broken = true;
		if (*ex->running) {
			vox_log(VOX_LOG_ERROR, "record not buffered: stopping",
			        "topic", ex->topics[p->topic].name, NULL);
			ex->fatal = true;
		}
		return;
	}
	if (!p->dirty) {
		p->dirty = true;
		p->dirty_since = now;
	}
	p->next_offset = m->offset + 1;
	ex->topics[p->topic].last_msg_ms = now;
	if (p->records < (size_t)ex->conf->max_records &&
	    p->bytes < (size_t)ex->conf->max_bytes)
		return;
	/* full: flush, waiting for the flush before it if there is one */
	while (p->fl.active && !p->broken && !ex->fatal) {
		flushes_reap(ex);
		if (p->fl.active)
			vox_sleep_ms(1);
	}
	flush_start(ex, p);
}

/* ---- periodic work ---- */

static void flush_due(struct exporter *ex, int64_t now)
{
	for (size_t i = 0; i < ex->nparts; i++) {
		struct part *p = ex->parts[i];

		if (p->dirty && now - p->dirty_since >= ex->conf->flush_ms)
			flush_start(ex, p);
	}
}

static int hour_close(struct exporter *ex, struct topic *t,
                      struct hour_state *hs)
{
	char key[EXP_KEY_MAX], at[40], closed_at[40];
	vox_error_t err;
	json_t *doc;
	char *text;
	int rc;

	if (exp_success_key(t->name, hs->hour, key, sizeof(key), &err) != 0)
		return -1;
	vox_rfc3339_format(hs->hour * EXP_HOUR_US, at, sizeof(at));
	vox_time_now_rfc3339(closed_at, sizeof(closed_at));
	doc = json_pack("{s:s, s:s, s:s}", "topic", t->name, "hour", at,
	                "closed_at", closed_at);
	text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (text == NULL)
		return -1;
	for (int attempt = 1; (rc = vox_s3_put(ex->s3, key, text, strlen(text),
	                                       "application/json", &err)) != 0;
	     attempt++) {
		vox_counter_inc(ex->m_s3_errors);
		if (attempt == 1 || attempt % 10 == 0)
			vox_log(VOX_LOG_WARN, "S3 PUT failed, retrying", "key",
			        key, "error", err.message, NULL);
		if (!*ex->running)
			break;
		vox_sleep_ms(vox_backoff_ms(100, 10000, attempt, 0));
	}
	free(text);
	if (rc != 0)
		return rc;
	hs->closed = true;
	for (size_t i = 0; i < ex->nparts; i++)
		if (ex->parts[i]->topic == t - ex->topics)
			part_close_hour(ex->parts[i], hs->hour);
	vox_counter_inc(ex->m_closed);
	vox_log(VOX_LOG_INFO, "hour closed", "topic", t->name, "hour", at,
	        NULL);
	return 0;
}

/* The end of the topic's closable time: its watermark minus the allowed
 * lateness, or, when the topic is idle, the wall clock minus it. */
static int64_t topic_mark(struct exporter *ex, struct topic *t, int64_t now)
{
	int64_t now_us = vox_now_us(), mark = INT64_MIN;
	int64_t lateness_us = ex->conf->lateness_ms * 1000;

	if (t->watermark_us != INT64_MIN)
		mark = t->watermark_us - lateness_us;
	if (now - t->last_msg_ms >= ex->conf->idle_close_ms &&
	    now_us - lateness_us > mark)
		mark = now_us - lateness_us;
	return mark;
}

static bool hour_due(const struct hour_state *hs, int64_t mark)
{
	return !hs->closed && (hs->hour + 1) * EXP_HOUR_US <= mark;
}

/* Flushes the partitions holding records of due hours, and closes the due
 * hours none of whose records is left uncommitted. */
static void hours_close(struct exporter *ex, int64_t now)
{
	int64_t marks[EXP_MAX_TOPICS];

	for (int ti = 0; ti < ex->ntopics; ti++)
		marks[ti] = topic_mark(ex, &ex->topics[ti], now);
	for (size_t i = 0; i < ex->nparts; i++) {
		struct part *p = ex->parts[i];
		struct topic *t = &ex->topics[p->topic];

		for (size_t b = 0; b < p->nbuckets; b++) {
			struct hour_state *hs =
			        hour_find(t, p->buckets[b].hour);

			if (hs != NULL && hour_due(hs, marks[p->topic])) {
				flush_start(ex, p);
				break;
			}
		}
	}
	for (int ti = 0; ti < ex->ntopics; ti++) {
		struct topic *t = &ex->topics[ti];

		for (size_t h = 0; h < t->nhours && *ex->running; h++)
			if (hour_due(&t->hours[h], marks[ti]) &&
			    t->hours[h].pending == 0)
				hour_close(ex, t, &t->hours[h]);
	}
}

/* ---- the consumer ---- */

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t kerr,
                         rd_kafka_topic_partition_list_t *list, void *opaque)
{
	struct exporter *ex = opaque;
	bool assign = kerr == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;

	for (int i = 0; i < list->cnt; i++) {
		struct part *p = part_find(ex, list->elems[i].topic,
		                           list->elems[i].partition, true);

		if (p == NULL)
			continue;
		/* a revoked partition: its flush under way gives up, and
		 * what it read and did not commit is dropped */
		part_drop(ex, p);
		p->assigned = assign;
		p->need_meta = assign;
		p->broken = false;
		p->nopen = 0;
	}
	vox_log(VOX_LOG_INFO,
	        assign ? "partitions assigned"
	               : "partitions revoked (uncommitted records dropped)",
	        NULL);
	/* the committed offsets (fetched by the assign) are where we start */
	rd_kafka_assign(rk, assign ? list : NULL);
}

static int conf_set(rd_kafka_conf_t *kc, const char *name, const char *value)
{
	char errstr[256];

	if (rd_kafka_conf_set(kc, name, value, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK) {
		vox_log(VOX_LOG_ERROR, "kafka setting", "name", name, "error",
		        errstr, NULL);
		return -1;
	}
	return 0;
}

static rd_kafka_t *consumer_new(struct exporter *ex)
{
	const exp_conf_t *c = ex->conf;
	rd_kafka_conf_t *kc = rd_kafka_conf_new();
	char errstr[256], session[24], queue_kb[24];
	rd_kafka_t *rk;

	snprintf(session, sizeof(session), "%ld", c->session_timeout_ms);
	snprintf(queue_kb, sizeof(queue_kb), "%ld", c->fetch_queue_mb * 1024);
	if (conf_set(kc, "bootstrap.servers", c->brokers) ||
	    conf_set(kc, "group.id", c->group) ||
	    conf_set(kc, "client.id", "vox-exporter") ||
	    conf_set(kc, "enable.auto.commit", "false") ||
	    conf_set(kc, "enable.auto.offset.store", "false") ||
	    conf_set(kc, "auto.offset.reset", "earliest") ||
	    conf_set(kc, "session.timeout.ms", session) ||
	    /* a deep prefetch: at librdkafka's 64 MB the fetcher idles
	     * ~0.6 s each time it fills (bench/RESULTS.md) */
	    conf_set(kc, "queued.max.messages.kbytes", queue_kb) ||
	    conf_set(kc, "queued.min.messages", "1000000") ||
	    (c->instance_id[0] &&
	     conf_set(kc, "group.instance.id", c->instance_id))) {
		rd_kafka_conf_destroy(kc);
		return NULL;
	}
	rd_kafka_conf_set_rebalance_cb(kc, on_rebalance);
	rd_kafka_conf_set_opaque(kc, ex);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr));
	if (rk == NULL) {
		vox_log(VOX_LOG_ERROR, "kafka consumer", "error", errstr, NULL);
		rd_kafka_conf_destroy(kc);
		return NULL;
	}
	/* kc is now owned by rk */
	rd_kafka_poll_set_consumer(rk);
	return rk;
}

static int topics_parse(struct exporter *ex, const char *topics)
{
	const char *p = topics;

	while (*p != '\0') {
		size_t n = strcspn(p, ",");

		if (n > 0) {
			struct topic *t;

			if (ex->ntopics == EXP_MAX_TOPICS ||
			    n >= sizeof(t->name))
				return -1;
			t = &ex->topics[ex->ntopics++];
			memcpy(t->name, p, n);
			t->name[n] = '\0';
			if (!exp_topic_valid(t->name))
				return -1;
			t->watermark_us = INT64_MIN;
			t->last_msg_ms = vox_mono_ms();
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return ex->ntopics > 0 ? 0 : -1;
}

static void metrics_register(struct exporter *ex, vox_metrics_t *reg)
{
	if (reg == NULL)
		return;
	ex->m_records = vox_metrics_counter(
	        reg, "vox_export_records_total",
	        "records written to S3 and committed", NULL);
	ex->m_objects = vox_metrics_counter(reg, "vox_export_objects_total",
	                                    "objects PUT", NULL);
	ex->m_bytes = vox_metrics_counter(reg, "vox_export_object_bytes_total",
	                                  "gzip'd bytes PUT", NULL);
	ex->m_late =
	        vox_metrics_counter(reg, "vox_export_late_records_total",
	                            "records of an hour already closed", NULL);
	ex->m_closed = vox_metrics_counter(reg, "vox_export_hours_closed_total",
	                                   "_SUCCESS markers written", NULL);
	ex->m_skipped = vox_metrics_counter(
	        reg, "vox_export_skipped_total",
	        "messages not exported (not JSON, not an object, no time)",
	        NULL);
	ex->m_s3_errors = vox_metrics_counter(
	        reg, "vox_export_s3_errors_total",
	        "failed S3 requests (retried with backoff)", NULL);
	ex->m_commits = vox_metrics_counter(
	        reg, "vox_export_commits_total",
	        "partition offsets committed after their objects", NULL);
}

static int exporter_open(struct exporter *ex)
{
	const exp_conf_t *c = ex->conf;
	vox_s3_conf_t sc = {c->s3_endpoint,   c->s3_region,
	                    c->bucket,        c->s3_access_key,
	                    c->s3_secret_key, (int)c->s3_timeout_ms};
	rd_kafka_topic_partition_list_t *subs;
	vox_error_t err;

	if (topics_parse(ex, c->topics) != 0) {
		vox_log(VOX_LOG_ERROR,
		        "VOX_EXPORT_TOPICS: 1..32 Kafka topic names (1..249 of "
		        "a-z A-Z 0-9 . _ -)",
		        NULL);
		return 2;
	}
	ex->s3 = vox_s3_new(&sc, &err);
	if (ex->s3 == NULL) {
		vox_log(VOX_LOG_ERROR, "S3 settings", "error", err.message,
		        NULL);
		return 2;
	}
	for (int attempt = 1; vox_s3_ensure_bucket(ex->s3, &err) != 0;
	     attempt++) {
		if (!*ex->running)
			return -1;
		if (attempt == 1 || attempt % 10 == 0)
			vox_log(VOX_LOG_WARN,
			        "S3 bucket not reachable, retrying", "bucket",
			        c->bucket, "error", err.message, NULL);
		vox_sleep_ms(vox_backoff_ms(100, 10000, attempt, 0));
	}
	if (flush_threads_start(ex) != 0)
		return -1;
	ex->rk = consumer_new(ex);
	if (ex->rk == NULL)
		return -1;
	subs = rd_kafka_topic_partition_list_new(ex->ntopics);
	for (int i = 0; i < ex->ntopics; i++)
		rd_kafka_topic_partition_list_add(subs, ex->topics[i].name,
		                                  RD_KAFKA_PARTITION_UA);
	if (rd_kafka_subscribe(ex->rk, subs) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		vox_log(VOX_LOG_ERROR, "subscribe failed", NULL);
		rd_kafka_topic_partition_list_destroy(subs);
		return -1;
	}
	rd_kafka_topic_partition_list_destroy(subs);
	return 0;
}

/* A clean stop writes and commits what it holds. A store that does not
 * answer is waited for (a second signal exits at once, committing nothing
 * more); commits still refused after 10 s are given up (the objects stay,
 * the next run rewrites them). */
static void exporter_drain(struct exporter *ex)
{
	int64_t give_up = vox_mono_ms() + 10000;

	for (;;) {
		bool putting = false, committing = false;

		flushes_reap(ex);
		for (size_t i = 0; i < ex->nparts; i++) {
			struct part *p = ex->parts[i];

			if (!p->fl.active)
				flush_start(ex, p);
			if (p->fl.active && p->fl.stored)
				committing = true;
			else if (p->fl.active)
				putting = true;
		}
		if (!putting && (!committing || vox_mono_ms() > give_up))
			return;
		vox_sleep_ms(5);
	}
}

static void exporter_close(struct exporter *ex)
{
	atomic_store(&ex->abandon, true);
	for (size_t i = 0; i < ex->nparts; i++)
		inflight_drop(ex, ex->parts[i], true);
	flush_threads_stop(ex);
	if (ex->rk != NULL) {
		rd_kafka_consumer_close(ex->rk);
		rd_kafka_destroy(ex->rk);
	}
	for (size_t i = 0; i < ex->nparts; i++) {
		part_drop(ex, ex->parts[i]);
		free(ex->parts[i]->buckets);
		free(ex->parts[i]);
	}
	free(ex->parts);
	for (int i = 0; i < ex->ntopics; i++)
		free(ex->topics[i].hours);
	vox_s3_destroy(ex->s3);
}

int exp_run(const exp_conf_t *conf, volatile sig_atomic_t *running)
{
	struct exporter ex;
	int64_t last_tick = 0;
	int rc;

	memset(&ex, 0, sizeof(ex));
	ex.conf = conf;
	ex.running = running;
	atomic_init(&ex.abandon, false);
	metrics_register(&ex, conf->metrics);
	/* 2: a bad setting (the settings' exit code), 1: the rest */
	if ((rc = exporter_open(&ex)) != 0) {
		rc = rc == 2 ? 2 : 1;
		goto out;
	}
	vox_log(VOX_LOG_INFO, "exporter consuming", "topics", conf->topics,
	        "bucket", conf->bucket, NULL);
	while (*running && !ex.fatal) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(ex.rk, 20);
		int64_t now = vox_mono_ms();

		if (m != NULL) {
			message_take(&ex, m, now);
			rd_kafka_message_destroy(m);
		}
		if (m == NULL || now - last_tick >= 20) {
			flushes_reap(&ex);
			flush_due(&ex, now);
			hours_close(&ex, now);
			last_tick = now;
		}
	}
	if (!ex.fatal)
		exporter_drain(&ex);
	rc = ex.fatal ? 1 : 0;
out:
	exporter_close(&ex);
	return rc;
}
