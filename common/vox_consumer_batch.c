/* vox_consumer_batch: batch mode. Polls up to batch_max messages, runs
 * them through the batch handler in one transaction, dead-letters what it
 * marked, stores the offsets; pipelined, the next batch is prepared on the
 * polling thread while a writer thread commits the last one. Each batch is
 * marked in flight first (vox_crashguard). */
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_consumer_int.h"
#include "vox_fault.h"
#include "vox_log.h"
#include "vox_time.h"

struct batch_tx {
	vox_consumer_t *c;
	vox_batch_msg_t *msgs;
	size_t n;
	void *prepared;
};

static int batch_in_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct batch_tx *tx = arg;

	for (size_t i = 0; i < tx->n; i++)
		tx->msgs[i].dlq_reason[0] = '\0';
	vox_fault_check_batch(tx->msgs, tx->n);
	return tx->c->batch_fn(pg, tx->msgs, tx->n, tx->prepared, tx->c->ctx,
	                       err);
}

/* Runs msgs[0..n) in one transaction until it commits (0), fails for good
 * (a negative vox_err code, err says why) or the consumer stops
 * (VOX_CONSUMER_STOPPED). PostgreSQL being down is waited out. */
static int batch_commit(vox_consumer_t *c, vox_batch_msg_t *msgs, size_t n,
                        void *prepared, vox_error_t *err,
                        volatile sig_atomic_t *running)
{
	struct batch_tx tx = {c, msgs, n, prepared};
	int attempt = 0, outage = 0;

	for (;;) {
		vox_error_clear(err);
		if (vox_pg_transaction(c->pg, batch_in_tx, &tx, err) == 0)
			return 0;
		if (err->code == VOX_ERR_UNAVAILABLE) {
			vox_log(VOX_LOG_WARN, "postgres unavailable, waiting",
			        "error", err->message, NULL);
			if (!vox_consumer_nap(vox_consumer_backoff(c, ++outage),
			                      running))
				return VOX_CONSUMER_STOPPED;
			continue;
		}
		if (err->retriable && ++attempt < c->max_attempts) {
			if (c->retries)
				vox_counter_inc(c->retries);
			vox_log(VOX_LOG_WARN, "batch failed, retrying", "error",
			        err->message, NULL);
			if (!vox_consumer_nap(vox_consumer_backoff(c, attempt),
			                      running))
				return VOX_CONSUMER_STOPPED;
			continue;
		}
		return err->code != 0 ? err->code : VOX_ERR_INTERNAL;
	}
}

void vox_consumer_batch_view(const rd_kafka_message_t *rkm, vox_batch_msg_t *m)
{
	m->topic = rd_kafka_topic_name(rkm->rkt);
	m->partition = rkm->partition;
	m->offset = rkm->offset;
	m->key = rkm->key;
	m->key_len = rkm->key_len;
	m->payload = rkm->payload;
	m->len = rkm->len;
	m->dlq_reason[0] = '\0';
}

/* Commits a polled batch, dead-letters what the handler (or a failed
 * single-message run) marked, stores the offsets. 0 when done. */
int vox_consumer_batch_finish(vox_consumer_t *c, rd_kafka_message_t **rkms,
                              vox_batch_msg_t *msgs, size_t n, void *prepared,
                              volatile sig_atomic_t *running)
{
	vox_error_t err;
	int rc = batch_commit(c, msgs, n, prepared, &err, running);

	if (rc < 0 && n > 1) {
		vox_log(VOX_LOG_WARN, "batch failed for good: one at a time",
		        "error", err.message, NULL);
		for (size_t i = 0; i < n; i++) {
			rc = batch_commit(c, msgs + i, 1, NULL, &err, running);
			if (rc == VOX_CONSUMER_STOPPED)
				return rc;
			if (rc != 0)
				snprintf(msgs[i].dlq_reason,
				         sizeof(msgs[i].dlq_reason),
				         "%s: %.200s",
				         vox_err_code_name(err.code),
				         err.message);
		}
	} else if (rc == VOX_CONSUMER_STOPPED) {
		return rc;
	} else if (rc != 0) {
		snprintf(msgs[0].dlq_reason, sizeof(msgs[0].dlq_reason),
		         "%s: %.200s", vox_err_code_name(err.code),
		         err.message);
	}
	if (vox_dlq_send_marked(c, rkms, msgs, n, running) != 0)
		return VOX_CONSUMER_STOPPED;
	for (size_t i = 0; i < n; i++)
		vox_consumer_store_offset(c, rkms[i]);
	if (c->processed)
		vox_counter_add(c->processed, (uint64_t)n);
	return 0;
}

/* One polled batch: its messages, their views and the prepared state. */
struct batch_buf {
	rd_kafka_message_t **rkms;
	vox_batch_msg_t *msgs;
	size_t n;
	void *prepared;
	int64_t mark; /* its in-flight mark (0: none) */
	json_t *dead; /* marks of dead workers over its offsets, or NULL */
};

/* The writer thread of a pipelined batch consumer: finishes (commits,
 * dead-letters, stores offsets, frees) one batch at a time. */
struct batch_writer {
	vox_consumer_t *c;
	volatile sig_atomic_t *running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct batch_buf *job; /* handed over, not yet finished */
	bool stop;
	pthread_t thread;
};

/* Finishes a batch (in pieces when a worker died on its offsets), clears
 * its in-flight mark, frees it. The mark is cleared even when stopping:
 * the batch did not kill us. */
static void batch_done(vox_consumer_t *c, struct batch_buf *b,
                       volatile sig_atomic_t *running)
{
	double started = vox_mono_seconds();

	if (b->dead != NULL) {
		/* the pieces carry marks of their own */
		vox_crashguard_end(c, c->pg, b->mark, running);
		b->mark = 0;
		vox_crashguard_batch(c, b->rkms, b->msgs, b->n, b->dead,
		                     running);
	} else {
		vox_consumer_batch_finish(c, b->rkms, b->msgs, b->n,
		                          b->prepared, running);
	}
	vox_crashguard_end(c, c->pg, b->mark, running);
	b->mark = 0;
	json_decref(b->dead);
	b->dead = NULL;
	if (c->handle_seconds)
		vox_histogram_observe(c->handle_seconds,
		                      vox_mono_seconds() - started);
	if (b->prepared != NULL && c->batch_release != NULL)
		c->batch_release(b->prepared, c->ctx);
	b->prepared = NULL;
	for (size_t i = 0; i < b->n; i++)
		rd_kafka_message_destroy(b->rkms[i]);
	b->n = 0;
}

/* Drops a polled batch unprocessed (stopping): it is consumed again. */
static void batch_drop(struct batch_buf *b)
{
	json_decref(b->dead);
	b->dead = NULL;
	for (size_t i = 0; i < b->n; i++)
		rd_kafka_message_destroy(b->rkms[i]);
	b->n = 0;
}

static void *writer_loop(void *arg)
{
	struct batch_writer *w = arg;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->job == NULL && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->job == NULL)
			break;
		pthread_mutex_unlock(&w->lock);
		batch_done(w->c, w->job, w->running);
		pthread_mutex_lock(&w->lock);
		w->job = NULL;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Waits until the writer has finished its batch. */
static void writer_idle(struct batch_writer *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->job != NULL)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

static void writer_hand(struct batch_writer *w, struct batch_buf *b)
{
	pthread_mutex_lock(&w->lock);
	w->job = b;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* How long the oldest of the polled messages waited (their Kafka
 * timestamps), 0 with none: vox_consumer_lag_seconds. */
static void batch_lag(vox_consumer_t *c, rd_kafka_message_t **rkms, size_t n)
{
	int64_t now_ms = vox_now_us() / 1000, oldest_ms = now_ms;

	if (c->lag_seconds == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		int64_t ts = rd_kafka_message_timestamp(rkms[i], NULL);

		if (ts > 0 && ts < oldest_ms)
			oldest_ms = ts;
	}
	vox_gauge_set(c->lag_seconds, (double)(now_ms - oldest_ms) / 1000.0);
}

/* Every 10 s, the heap's free pages go back to the system (malloc_trim walks
 * every arena): a backlog makes librdkafka's fetch queue and our batches
 * large for a moment, and glibc would otherwise keep that high-water mark
 * as RSS for good (the chaos soak saw a worker's RSS step up 20 % after a
 * lag spike and never come down). */
static void batch_trim(vox_consumer_t *c)
{
	double now = vox_mono_seconds();

	if (now - c->last_trim < 10.0)
		return;
	c->last_trim = now;
	malloc_trim(0);
}

size_t vox_consumer_batch_poll(vox_consumer_t *c, rd_kafka_message_t **rkms,
                               vox_batch_msg_t *msgs)
{
	rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 200);
	double deadline = vox_mono_seconds() + c->batch_wait_ms / 1000.0;
	size_t n = 0;

	while (rkm != NULL) {
		if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
			char reason[512];

			rd_kafka_fatal_error(c->rk, reason, sizeof(reason));
			vox_log(VOX_LOG_ERROR,
			        "fatal consumer error: this consumer is "
			        "unusable, exiting",
			        "error", reason, NULL);
			c->fatal = true;
			rd_kafka_message_destroy(rkm);
			break;
		} else if (rkm->err) {
			if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				vox_log(VOX_LOG_WARN, "consume error", "error",
				        rd_kafka_message_errstr(rkm), NULL);
			rd_kafka_message_destroy(rkm);
		} else {
			vox_consumer_batch_view(rkm, &msgs[n]);
			rkms[n++] = rkm;
		}
		if (n == (size_t)c->batch_max)
			break;
		double left = deadline - vox_mono_seconds();
		rkm = rd_kafka_consumer_poll(c->rk,
		                             left > 0 ? (int)(left * 1000) : 0);
	}
	batch_lag(c, rkms, n);
	batch_trim(c);
	return n;
}

/* Polls up to batch_max messages into b (waiting at most batch_wait_ms
 * after the first). */
static void batch_poll(vox_consumer_t *c, struct batch_buf *b)
{
	b->n = vox_consumer_batch_poll(c, b->rkms, b->msgs);
}

void vox_consumer_batch_run(vox_consumer_t *c, volatile sig_atomic_t *running)
{
	struct batch_buf bufs[2] = {{0}};
	struct batch_writer w = {.c = c, .running = running};
	bool pipelined = c->batch_prepare != NULL;
	int cur = 0;

	for (int i = 0; i < 2; i++) {
		bufs[i].rkms =
		        calloc((size_t)c->batch_max, sizeof(*bufs[i].rkms));
		bufs[i].msgs =
		        calloc((size_t)c->batch_max, sizeof(*bufs[i].msgs));
		if (bufs[i].rkms == NULL || bufs[i].msgs == NULL) {
			vox_log(VOX_LOG_ERROR, "batch buffers: out of memory",
			        NULL);
			goto out;
		}
	}
	if (pipelined) {
		pthread_mutex_init(&w.lock, NULL);
		pthread_cond_init(&w.cond, NULL);
		if (pthread_create(&w.thread, NULL, writer_loop, &w) != 0) {
			vox_log(VOX_LOG_WARN,
			        "no writer thread: batches are "
			        "not pipelined",
			        NULL);
			pipelined = false;
		}
	}
	while (*running && !c->fatal) {
		struct batch_buf *b = &bufs[cur];

		batch_poll(c, b);
		if (b->n == 0)
			continue;
		/* marked before prepare: a crash in prepare is on these
		 * offsets too */
		if (vox_crashguard_begin(c, pipelined ? c->prepare_pg : c->pg,
		                         b->msgs, b->n, 1, &b->mark, &b->dead,
		                         running) != 0) {
			batch_drop(b);
			break;
		}
		if (!pipelined) {
			batch_done(c, b, running);
			continue;
		}
		if (b->dead != NULL) {
			/* a worker died on these offsets: run them in pieces,
			 * one mark at a time, so the next crash points at
			 * one piece */
			writer_idle(&w);
			batch_done(c, b, running);
			continue;
		}
		/* prepare this batch while the writer commits the last one */
		b->prepared =
		        c->batch_prepare(c->prepare_pg, b->msgs, b->n, c->ctx);
		writer_idle(&w);
		writer_hand(&w, b);
		cur ^= 1;
	}
	if (pipelined) {
		writer_idle(&w);
		pthread_mutex_lock(&w.lock);
		w.stop = true;
		pthread_cond_broadcast(&w.cond);
		pthread_mutex_unlock(&w.lock);
		pthread_join(w.thread, NULL);
	}
out:
	for (int i = 0; i < 2; i++) {
		free(bufs[i].rkms);
		free(bufs[i].msgs);
	}
}
