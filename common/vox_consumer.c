/* vox_consumer: consume, claim in the inbox, handle, commit, store offset. */
#include "vox_consumer.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_time.h"

struct vox_consumer {
	rd_kafka_t *rk;
	vox_pg_t *pg;
	vox_producer_t *producer;
	char *name;
	const vox_handler_t *handlers;
	size_t nhandlers;
	void *ctx;
	int max_attempts, backoff_ms, backoff_max_ms;
	vox_counter_t *processed, *duplicates, *dead_lettered, *retries;
	vox_histogram_t *handle_seconds;
	vox_batch_fn batch_fn;
	int batch_max, batch_wait_ms;
	vox_batch_prepare_fn batch_prepare;
	vox_batch_release_fn batch_release;
	vox_pg_t *prepare_pg;
};

/* Sleeps ms in short slices so a stop request is noticed; false if stopped. */
static bool nap(long ms, volatile sig_atomic_t *running)
{
	while (ms > 0 && *running) {
		long slice = ms < 50 ? ms : 50;
		struct timespec ts = {0, slice * 1000000L};

		nanosleep(&ts, NULL);
		ms -= slice;
	}
	return *running;
}

/* The consumer's backoff: equal jitter in [d/2, d] (vox_time). */
static long backoff_delay(const vox_consumer_t *c, int attempt)
{
	return vox_backoff_ms(c->backoff_ms, c->backoff_max_ms, attempt, 0);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t kerr,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	char count[16];

	(void)opaque;
	snprintf(count, sizeof(count), "%d", parts->cnt);
	if (kerr == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		vox_log(VOX_LOG_INFO, "partitions assigned", "count", count,
		        NULL);
		rd_kafka_assign(rk, parts);
		return;
	}
	/* Revoked: the message in hand is already finished (we handle on the
	 * polling thread), so commit what was stored before letting go. */
	vox_log(VOX_LOG_INFO, "partitions revoked", "count", count, NULL);
	rd_kafka_commit(rk, NULL, 0);
	rd_kafka_assign(rk, NULL);
}

static void on_consumer_error(rd_kafka_t *rk, int kerr, const char *reason,
                              void *opaque)
{
	(void)rk;
	(void)opaque;
	vox_log(VOX_LOG_WARN, "kafka consumer error", "error",
	        rd_kafka_err2name(kerr), "reason", reason, NULL);
}

static void consumer_metrics(vox_consumer_t *c, vox_metrics_t *m)
{
	char labels[160];

	if (m == NULL)
		return;
	snprintf(labels, sizeof(labels), "consumer=\"%s\"", c->name);
	c->processed = vox_metrics_counter(
	        m, "vox_consumer_processed_total",
	        "Messages whose effect was committed", labels);
	c->duplicates = vox_metrics_counter(
	        m, "vox_consumer_duplicates_total",
	        "Redelivered messages skipped by the inbox", labels);
	c->dead_lettered = vox_metrics_counter(
	        m, "vox_consumer_dead_lettered_total",
	        "Messages sent to a dead-letter topic", labels);
	c->retries = vox_metrics_counter(m, "vox_consumer_retries_total",
	                                 "Handler attempts that were retried",
	                                 labels);
	c->handle_seconds = vox_metrics_histogram(
	        m, "vox_consumer_handle_seconds",
	        "Time from poll to stored offset per message", labels, NULL, 0);
}

static int consumer_conf(const vox_consumer_conf_t *conf,
                         rd_kafka_conf_t *kconf, vox_error_t *err)
{
	char session[16];

	snprintf(session, sizeof(session), "%d",
	         conf->session_timeout_ms ? conf->session_timeout_ms : 10000);
	if (vox_kafka_conf_set(kconf, "bootstrap.servers", conf->brokers,
	                       err) ||
	    vox_kafka_conf_set(kconf, "group.id", conf->group_id, err) ||
	    vox_kafka_conf_set(kconf, "enable.auto.offset.store", "false",
	                       err) ||
	    vox_kafka_conf_set(kconf, "enable.auto.commit", "true", err) ||
	    vox_kafka_conf_set(kconf, "auto.commit.interval.ms", "1000", err) ||
	    vox_kafka_conf_set(kconf, "auto.offset.reset", "earliest", err) ||
	    vox_kafka_conf_set(kconf, "session.timeout.ms", session, err) ||
	    vox_kafka_conf_set(kconf, "heartbeat.interval.ms", "1000", err))
		return err ? err->code : VOX_ERR_INVALID;
	if (conf->instance_id != NULL && *conf->instance_id != '\0' &&
	    vox_kafka_conf_set(kconf, "group.instance.id", conf->instance_id,
	                       err))
		return err ? err->code : VOX_ERR_INVALID;
	return 0;
}

static rd_kafka_t *consumer_handle(const vox_consumer_conf_t *conf,
                                   vox_error_t *err)
{
	rd_kafka_conf_t *kconf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *subs;
	char errstr[512];
	rd_kafka_resp_err_t kerr;
	rd_kafka_t *rk;
	size_t n = 0;

	if (consumer_conf(conf, kconf, err) != 0) {
		rd_kafka_conf_destroy(kconf);
		return NULL;
	}
	rd_kafka_conf_set_rebalance_cb(kconf, on_rebalance);
	rd_kafka_conf_set_error_cb(kconf, on_consumer_error);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, sizeof(errstr));
	if (rk == NULL) {
		rd_kafka_conf_destroy(kconf);
		vox_error_set(err, VOX_ERR_INVALID, false, "kafka: %s", errstr);
		return NULL;
	}
	/* kconf is now owned by rk */
	rd_kafka_poll_set_consumer(rk);
	while (conf->topics[n] != NULL)
		n++;
	subs = rd_kafka_topic_partition_list_new((int)n);
	for (size_t i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(subs, conf->topics[i],
		                                  RD_KAFKA_PARTITION_UA);
	kerr = rd_kafka_subscribe(rk, subs);
	rd_kafka_topic_partition_list_destroy(subs);
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		vox_error_set(err, VOX_ERR_INVALID, false, "subscribe: %s",
		              rd_kafka_err2str(kerr));
		rd_kafka_destroy(rk);
		return NULL;
	}
	return rk;
}

vox_consumer_t *vox_consumer_new(const vox_consumer_conf_t *conf, vox_pg_t *pg,
                                 vox_producer_t *producer, vox_error_t *err)
{
	vox_consumer_t *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
		return NULL;
	}
	c->name = strdup(conf->name ? conf->name : conf->group_id);
	c->pg = pg;
	c->producer = producer;
	c->handlers = conf->handlers;
	c->nhandlers = conf->nhandlers;
	c->ctx = conf->ctx;
	c->max_attempts = conf->max_attempts ? conf->max_attempts : 5;
	c->backoff_ms = conf->backoff_ms ? conf->backoff_ms : 100;
	c->backoff_max_ms = conf->backoff_max_ms ? conf->backoff_max_ms : 10000;
	c->batch_fn = conf->batch_fn;
	c->batch_max = conf->batch_max > 0 ? conf->batch_max : 5000;
	c->batch_wait_ms = conf->batch_wait_ms > 0 ? conf->batch_wait_ms : 20;
	c->batch_prepare = conf->batch_prepare;
	c->batch_release = conf->batch_release;
	c->prepare_pg = conf->prepare_pg;
	if (c->name == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
		goto out_free;
	}
	c->rk = consumer_handle(conf, err);
	if (c->rk == NULL)
		goto out_free;
	consumer_metrics(c, conf->metrics);
	return c;

out_free:
	free(c->name);
	free(c);
	return NULL;
}

void vox_consumer_destroy(vox_consumer_t *c)
{
	if (c == NULL)
		return;
	if (c->rk != NULL)
		rd_kafka_destroy(c->rk);
	free(c->name);
	free(c);
}

static void store_offset(vox_consumer_t *c, const rd_kafka_message_t *rkm)
{
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t kerr;

	list = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(rkm->rkt),
	                                  rkm->partition)
	        ->offset = rkm->offset + 1;
	kerr = rd_kafka_offsets_store(c->rk, list);
	if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR)
		kerr = list->elems[0].err;
	rd_kafka_topic_partition_list_destroy(list);
	/* After a rebalance the partition may belong to another member: it
	 * will get the message again and the inbox will skip it. */
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR)
		vox_log(VOX_LOG_WARN, "offset not stored", "error",
		        rd_kafka_err2name(kerr), NULL);
}

/* Sends the original message to <topic>.dlq with the reason in headers.
 * Retries until Kafka takes it or the consumer stops: a dead letter is
 * never dropped. */
/* A dead letter sent without waiting (batch mode): the delivery report
 * fills ok and counts pending down. */
struct dlq_slot {
	atomic_int *pending;
	int ok;
};

static void dlq_delivered(void *opaque, const vox_error_t *err,
                          int32_t partition, int64_t offset)
{
	struct dlq_slot *slot = opaque;

	(void)partition;
	(void)offset;
	slot->ok = err == NULL;
	atomic_fetch_sub(slot->pending, 1);
}

/* slot NULL: waits for the broker. slot set: queues the message and
 * returns at once (slot->pending counted up), or falls back to waiting
 * when the local queue refuses it. */
static int dead_letter_to(vox_consumer_t *c, const rd_kafka_message_t *rkm,
                          const char *reason, int attempts,
                          volatile sig_atomic_t *running, struct dlq_slot *slot)
{
	const char *topic = rd_kafka_topic_name(rkm->rkt);
	char dlq[256], part[16], off[24], tries[16], when[40];
	char *key = NULL;
	vox_error_t err;
	int rc, n = 0;

	snprintf(dlq, sizeof(dlq), "%s.dlq", topic);
	snprintf(part, sizeof(part), "%d", rkm->partition);
	snprintf(off, sizeof(off), "%lld", (long long)rkm->offset);
	snprintf(tries, sizeof(tries), "%d", attempts);
	vox_time_now_rfc3339(when, sizeof(when));
	if (rkm->key != NULL)
		key = strndup(rkm->key, rkm->key_len);
	const vox_kafka_header_t headers[] = {
	        {"vox-dlq-reason", reason},
	        {"vox-dlq-consumer", c->name},
	        {"vox-dlq-source-topic", topic},
	        {"vox-dlq-source-partition", part},
	        {"vox-dlq-source-offset", off},
	        {"vox-dlq-attempts", tries},
	        {"vox-dlq-time", when},
	};
	vox_log(VOX_LOG_ERROR, "dead-lettering message", "reason", reason,
	        "topic", topic, "partition", part, "offset", off, "dlq", dlq,
	        NULL);
	if (slot != NULL) {
		atomic_fetch_add(slot->pending, 1);
		if (vox_producer_send(c->producer, dlq, key, rkm->payload,
		                      rkm->len, headers,
		                      sizeof(headers) / sizeof(headers[0]),
		                      dlq_delivered, slot, &err) == 0) {
			free(key);
			if (c->dead_lettered)
				vox_counter_inc(c->dead_lettered);
			return 0;
		}
		atomic_fetch_sub(slot->pending, 1);
	}
	while ((rc = vox_producer_send_sync(
	                c->producer, dlq, key, rkm->payload, rkm->len, headers,
	                sizeof(headers) / sizeof(headers[0]), NULL, NULL,
	                &err)) != 0) {
		vox_log(VOX_LOG_ERROR, "dead-letter publish failed, retrying",
		        "error", err.message, "dlq", dlq, NULL);
		if (!nap(backoff_delay(c, ++n), running))
			break;
	}
	free(key);
	if (rc == 0 && c->dead_lettered)
		vox_counter_inc(c->dead_lettered);
	if (slot != NULL)
		slot->ok = rc == 0;
	return rc;
}

static int dead_letter(vox_consumer_t *c, const rd_kafka_message_t *rkm,
                       const char *reason, int attempts,
                       volatile sig_atomic_t *running)
{
	return dead_letter_to(c, rkm, reason, attempts, running, NULL);
}

static const vox_handler_t *find_handler(const vox_consumer_t *c,
                                         const char *type)
{
	for (size_t i = 0; i < c->nhandlers; i++)
		if (strcmp(c->handlers[i].type, type) == 0)
			return &c->handlers[i];
	return NULL;
}

struct handle_tx {
	vox_consumer_t *c;
	const vox_handler_t *handler;
	const vox_message_t *msg;
	bool duplicate;
};

static int handle_in_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct handle_tx *tx = arg;
	int rc;

	rc = vox_inbox_claim(pg, tx->c->name, tx->msg->id, tx->msg->topic,
	                     tx->msg->partition, (long long)tx->msg->offset,
	                     err);
	if (rc == VOX_ERR_DUPLICATE) {
		tx->duplicate = true;
		return rc; /* nothing to write: roll back */
	}
	if (rc != 0)
		return rc;
	return tx->handler->fn(pg, tx->msg, tx->c->ctx, err);
}

static void message_view(const vox_consumer_t *c, const rd_kafka_message_t *rkm,
                         const json_t *ev, const char *key, vox_message_t *msg)
{
	msg->topic = rd_kafka_topic_name(rkm->rkt);
	msg->partition = rkm->partition;
	msg->offset = rkm->offset;
	msg->key = key;
	msg->payload = rkm->payload;
	msg->len = rkm->len;
	msg->event = ev;
	msg->id = vox_json_str(ev, "id");
	msg->type = vox_json_str(ev, "type");
	msg->account_id = vox_json_str(ev, "accountid");
	msg->subject = vox_json_str(ev, "subject");
	msg->time = vox_json_str(ev, "time");
	msg->traceparent = vox_json_str(ev, "traceparent");
	msg->data = json_object_get(ev, "data");
	msg->consumer = c->name;
}

/* Runs the handler until it commits, is skipped as a duplicate, or must be
 * dead-lettered. Returns 0 when the message is finished (offset may be
 * stored), non-zero when the consumer is stopping with it unfinished. */
static int run_handler(vox_consumer_t *c, const rd_kafka_message_t *rkm,
                       const vox_handler_t *handler, const vox_message_t *msg,
                       volatile sig_atomic_t *running)
{
	struct handle_tx tx = {c, handler, msg, false};
	char reason[400];
	vox_error_t err;
	int attempt = 0, outage = 0;

	for (;;) {
		vox_error_clear(&err);
		tx.duplicate = false;
		if (vox_pg_transaction(c->pg, handle_in_tx, &tx, &err) == 0) {
			if (c->processed)
				vox_counter_inc(c->processed);
			return 0;
		}
		if (tx.duplicate) {
			if (c->duplicates)
				vox_counter_inc(c->duplicates);
			return 0;
		}
		if (err.code == VOX_ERR_UNAVAILABLE) {
			/* Our own database is down: wait for it, whatever
			 * the number of tries. */
			vox_log(VOX_LOG_WARN, "postgres unavailable, waiting",
			        "error", err.message, "message_id", msg->id,
			        NULL);
			if (!nap(backoff_delay(c, ++outage), running))
				return -1;
			continue;
		}
		if (err.retriable && ++attempt < c->max_attempts) {
			if (c->retries)
				vox_counter_inc(c->retries);
			vox_log(VOX_LOG_WARN, "handler failed, retrying",
			        "error", err.message, "message_id", msg->id,
			        NULL);
			if (!nap(backoff_delay(c, attempt), running))
				return -1;
			continue;
		}
		snprintf(reason, sizeof(reason), "%s: %s",
		         vox_err_code_name(err.code), err.message);
		return dead_letter(c, rkm, reason, attempt + 1, running);
	}
}

static int process_message(vox_consumer_t *c, const rd_kafka_message_t *rkm,
                           volatile sig_atomic_t *running)
{
	const vox_handler_t *handler;
	char reason[400], *key = NULL;
	vox_message_t msg;
	vox_error_t err;
	json_t *ev = NULL;
	int rc;

	if (vox_event_parse(rkm->payload, rkm->len, &ev, &err) != 0) {
		snprintf(reason, sizeof(reason), "invalid envelope: %s",
		         err.message);
		rc = dead_letter(c, rkm, reason, 1, running);
		goto out;
	}
	handler = find_handler(c, vox_json_str(ev, "type"));
	if (handler == NULL) {
		snprintf(reason, sizeof(reason), "no handler for type %s",
		         vox_json_str(ev, "type"));
		rc = dead_letter(c, rkm, reason, 1, running);
		goto out;
	}
	if (rkm->key != NULL)
		key = strndup(rkm->key, rkm->key_len);
	message_view(c, rkm, ev, key, &msg);
	rc = run_handler(c, rkm, handler, &msg, running);
out:
	free(key);
	json_decref(ev);
	return rc;
}

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
	return tx->c->batch_fn(pg, tx->msgs, tx->n, tx->prepared, tx->c->ctx,
	                       err);
}

/* Runs msgs[0..n) in one transaction until it commits (0), fails for good
 * (a negative vox_err code, err says why) or the consumer stops
 * (BATCH_STOPPED). PostgreSQL being down is waited out. */
#define BATCH_STOPPED 1
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
			if (!nap(backoff_delay(c, ++outage), running))
				return BATCH_STOPPED;
			continue;
		}
		if (err->retriable && ++attempt < c->max_attempts) {
			if (c->retries)
				vox_counter_inc(c->retries);
			vox_log(VOX_LOG_WARN, "batch failed, retrying", "error",
			        err->message, NULL);
			if (!nap(backoff_delay(c, attempt), running))
				return BATCH_STOPPED;
			continue;
		}
		return err->code != 0 ? err->code : VOX_ERR_INTERNAL;
	}
}

static void batch_view(rd_kafka_message_t *rkm, vox_batch_msg_t *m)
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

/* Dead-letters the marked messages of a batch: all queued at once, then
 * waited for; any the broker did not take is sent again, waiting, until it
 * is (or the consumer stops: non-zero). */
static int dead_letter_batch(vox_consumer_t *c, rd_kafka_message_t **rkms,
                             vox_batch_msg_t *msgs, size_t n,
                             volatile sig_atomic_t *running)
{
	struct dlq_slot *slots;
	atomic_int pending = 0;
	size_t marked = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		marked += msgs[i].dlq_reason[0] != '\0';
	if (marked == 0)
		return 0;
	slots = calloc(n, sizeof(*slots));
	if (slots == NULL) { /* one at a time then */
		for (size_t i = 0; i < n && rc == 0; i++)
			if (msgs[i].dlq_reason[0] != '\0')
				rc = dead_letter(c, rkms[i], msgs[i].dlq_reason,
				                 1, running);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		slots[i].pending = &pending;
		if (msgs[i].dlq_reason[0] != '\0')
			dead_letter_to(c, rkms[i], msgs[i].dlq_reason, 1,
			               running, &slots[i]);
	}
	/* every queued message gets its report within the producer's
	 * message timeout */
	while (atomic_load(&pending) > 0)
		poll(NULL, 0, 1);
	for (size_t i = 0; i < n && rc == 0; i++)
		if (msgs[i].dlq_reason[0] != '\0' && !slots[i].ok)
			rc = dead_letter(c, rkms[i], msgs[i].dlq_reason, 1,
			                 running);
	free(slots);
	return rc;
}

/* Commits a polled batch, dead-letters what the handler (or a failed
 * single-message run) marked, stores the offsets. 0 when done. */
static int batch_finish(vox_consumer_t *c, rd_kafka_message_t **rkms,
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
			if (rc == BATCH_STOPPED)
				return rc;
			if (rc != 0)
				snprintf(msgs[i].dlq_reason,
				         sizeof(msgs[i].dlq_reason),
				         "%s: %.200s",
				         vox_err_code_name(err.code),
				         err.message);
		}
	} else if (rc == BATCH_STOPPED) {
		return rc;
	} else if (rc != 0) {
		snprintf(msgs[0].dlq_reason, sizeof(msgs[0].dlq_reason),
		         "%s: %.200s", vox_err_code_name(err.code),
		         err.message);
	}
	if (dead_letter_batch(c, rkms, msgs, n, running) != 0)
		return BATCH_STOPPED;
	for (size_t i = 0; i < n; i++)
		store_offset(c, rkms[i]);
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

static void batch_done(vox_consumer_t *c, struct batch_buf *b,
                       volatile sig_atomic_t *running)
{
	double started = vox_mono_seconds();

	batch_finish(c, b->rkms, b->msgs, b->n, b->prepared, running);
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

/* Polls up to batch_max messages into b (waiting at most batch_wait_ms
 * after the first). */
static void batch_poll(vox_consumer_t *c, struct batch_buf *b)
{
	rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 200);
	double deadline = vox_mono_seconds() + c->batch_wait_ms / 1000.0;

	b->n = 0;
	while (rkm != NULL) {
		if (rkm->err) {
			if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				vox_log(VOX_LOG_WARN, "consume error", "error",
				        rd_kafka_message_errstr(rkm), NULL);
			rd_kafka_message_destroy(rkm);
		} else {
			batch_view(rkm, &b->msgs[b->n]);
			b->rkms[b->n++] = rkm;
		}
		if (b->n == (size_t)c->batch_max)
			break;
		double left = deadline - vox_mono_seconds();
		rkm = rd_kafka_consumer_poll(c->rk,
		                             left > 0 ? (int)(left * 1000) : 0);
	}
}

static void batch_run(vox_consumer_t *c, volatile sig_atomic_t *running)
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
	while (*running) {
		struct batch_buf *b = &bufs[cur];

		batch_poll(c, b);
		if (b->n == 0)
			continue;
		if (!pipelined) {
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

int vox_consumer_run(vox_consumer_t *c, volatile sig_atomic_t *running)
{
	rd_kafka_message_t *rkm;
	rd_kafka_resp_err_t kerr;
	double started;

	if (c->batch_fn != NULL)
		batch_run(c, running);
	while (c->batch_fn == NULL && *running) {
		rkm = rd_kafka_consumer_poll(c->rk, 200);
		if (rkm == NULL)
			continue;
		if (rkm->err) {
			if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				vox_log(VOX_LOG_WARN, "consume error", "error",
				        rd_kafka_message_errstr(rkm), NULL);
			rd_kafka_message_destroy(rkm);
			continue;
		}
		started = vox_mono_seconds();
		if (process_message(c, rkm, running) == 0) {
			store_offset(c, rkm);
			if (c->handle_seconds)
				vox_histogram_observe(c->handle_seconds,
				                      vox_mono_seconds() -
				                              started);
		}
		rd_kafka_message_destroy(rkm);
	}
	vox_log(VOX_LOG_INFO, "consumer stopping: committing offsets", NULL);
	kerr = rd_kafka_commit(c->rk, NULL, 0);
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR &&
	    kerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
		vox_log(VOX_LOG_WARN, "final commit failed", "error",
		        rd_kafka_err2name(kerr), NULL);
	kerr = rd_kafka_consumer_close(c->rk);
	return kerr == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : VOX_ERR_UNAVAILABLE;
}
