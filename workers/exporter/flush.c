/*
 * exporter: the flush threads. Each job makes one object (gzip of a
 * bucket's NDJSON) and PUTs it, then its late manifest if the bucket is
 * late; the consume thread commits the partition's offset once every job
 * of the flush is done (export.c). gzip is most of the exporter's work, so
 * it runs here, beside the consuming (bench/RESULTS.md).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "export_int.h"
#include "vox_gzip.h"
#include "vox_log.h"
#include "vox_time.h"

int exp_put_retry(struct exporter *ex, const atomic_bool *cancel,
                  const char *key, const void *data, size_t len,
                  const char *type)
{
	vox_error_t err;

	for (int attempt = 1;; attempt++) {
		if (atomic_load(&ex->abandon) ||
		    (cancel != NULL && atomic_load(cancel)))
			return -1;
		if (vox_s3_put(ex->s3, key, data, len, type, &err) == 0)
			return 0;
		vox_counter_inc(ex->m_s3_errors);
		if (attempt == 1 || attempt % 10 == 0)
			vox_log(VOX_LOG_WARN, "S3 PUT failed, retrying", "key",
			        key, "error", err.message, NULL);
		vox_sleep_ms(vox_backoff_ms(100, 10000, attempt, 0));
	}
}

static int job_manifest(struct exporter *ex, struct flush_job *job,
                        const char *object)
{
	struct bucket *b = &job->b;
	char key[EXP_KEY_MAX], at[40];
	vox_error_t err;
	json_t *doc;
	char *text;
	int rc;

	if (exp_late_key(job->topic, b->hour, job->partition, b->first_offset,
	                 key, sizeof(key), &err) != 0)
		return -1;
	vox_rfc3339_format(b->hour * EXP_HOUR_US, at, sizeof(at));
	doc = json_pack("{s:s, s:s, s:i, s:I, s:I, s:I, s:s}", "object", object,
	                "topic", job->topic, "partition", (int)job->partition,
	                "first_offset", (json_int_t)b->first_offset,
	                "last_offset", (json_int_t)b->last_offset, "records",
	                (json_int_t)b->records, "hour", at);
	text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (text == NULL)
		return -1;
	rc = exp_put_retry(ex, &job->owner->cancel, key, text, strlen(text),
	                   "application/json");
	free(text);
	return rc;
}

static int job_run(struct exporter *ex, struct flush_job *job)
{
	struct bucket *b = &job->b;
	char key[EXP_KEY_MAX];
	vox_error_t err;
	void *gz;
	size_t gzlen;
	int rc;

	if (exp_object_key(job->topic, b->hour, job->partition, b->first_offset,
	                   key, sizeof(key), &err) != 0 ||
	    vox_gzip(vox_buf_str(&b->raw), vox_buf_len(&b->raw),
	             (int)ex->conf->gzip_level, &gz, &gzlen, &err) != 0) {
		vox_log(VOX_LOG_ERROR, "object not made", "topic", job->topic,
		        "error", err.message, NULL);
		return -1;
	}
	rc = exp_put_retry(ex, &job->owner->cancel, key, gz, gzlen,
	                   "application/gzip");
	free(gz);
	if (rc == 0 && b->late)
		rc = job_manifest(ex, job, key);
	if (rc == 0) {
		vox_counter_inc(ex->m_objects);
		vox_counter_add(ex->m_bytes, gzlen);
	}
	return rc;
}

static void *flush_thread(void *arg)
{
	struct exporter *ex = arg;

	for (;;) {
		struct flush_job *job;

		pthread_mutex_lock(&ex->lock);
		while (ex->queue == NULL && !ex->stopping)
			pthread_cond_wait(&ex->wake, &ex->lock);
		job = ex->queue;
		if (job != NULL) {
			ex->queue = job->next;
			if (ex->queue == NULL)
				ex->queue_tail = NULL;
		}
		pthread_mutex_unlock(&ex->lock);
		if (job == NULL)
			return NULL; /* stopping, nothing queued */
		job->rc = job_run(ex, job);
		atomic_fetch_add_explicit(&job->owner->done, 1,
		                          memory_order_release);
	}
}

void flush_enqueue(struct exporter *ex, struct inflight *fl)
{
	pthread_mutex_lock(&ex->lock);
	for (size_t i = 0; i < fl->njobs; i++) {
		struct flush_job *job = &fl->jobs[i];

		job->next = NULL;
		if (ex->queue_tail != NULL)
			ex->queue_tail->next = job;
		else
			ex->queue = job;
		ex->queue_tail = job;
	}
	pthread_cond_broadcast(&ex->wake);
	pthread_mutex_unlock(&ex->lock);
}

int flush_threads_start(struct exporter *ex)
{
	size_t want = (size_t)ex->conf->threads;

	if (want > EXP_MAX_THREADS)
		want = EXP_MAX_THREADS;
	pthread_mutex_init(&ex->lock, NULL);
	pthread_cond_init(&ex->wake, NULL);
	for (ex->nthreads = 0; ex->nthreads < want; ex->nthreads++)
		if (pthread_create(&ex->threads[ex->nthreads], NULL,
		                   flush_thread, ex) != 0)
			break;
	if (ex->nthreads == 0) {
		vox_log(VOX_LOG_ERROR, "no flush thread could start", NULL);
		return -1;
	}
	return 0;
}

/* Queued jobs are still run (a clean stop waits for its flushes before
 * this); jobs of an abandoning process end at their next retry. */
void flush_threads_stop(struct exporter *ex)
{
	if (ex->nthreads == 0)
		return;
	pthread_mutex_lock(&ex->lock);
	ex->stopping = true;
	pthread_cond_broadcast(&ex->wake);
	pthread_mutex_unlock(&ex->lock);
	for (size_t i = 0; i < ex->nthreads; i++)
		pthread_join(ex->threads[i], NULL);
	ex->nthreads = 0;
	pthread_cond_destroy(&ex->wake);
	pthread_mutex_destroy(&ex->lock);
}
