/* vox_consumer: config, group membership and the poll loop
 * (vox_consumer.h); the other concerns are in the files listed in
 * vox_consumer_int.h. */
#include "vox_consumer.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vox_consumer_int.h"
#include "vox_log.h"
#include "vox_time.h"

bool vox_consumer_nap(long ms, volatile sig_atomic_t *running)
{
	while (ms > 0 && *running) {
		long slice = ms < 50 ? ms : 50;
		struct timespec ts = {0, slice * 1000000L};

		nanosleep(&ts, NULL);
		ms -= slice;
	}
	return *running;
}

long vox_consumer_backoff(const vox_consumer_t *c, int attempt)
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
	c->recoveries = vox_metrics_counter(
	        m, "vox_consumer_crash_recoveries_total",
	        "Batches run in pieces because a worker died on their offsets",
	        labels);
	c->handle_seconds = vox_metrics_histogram(
	        m, "vox_consumer_handle_seconds",
	        "Time from poll to stored offsets per polled batch", labels,
	        NULL, 0);
	/* Lag in time, which a count of messages does not give (a backlog of
	 * 10,000 is seconds for metering and minutes for porting): alerts
	 * compare it with how late a command may complete. */
	c->lag_seconds = vox_metrics_gauge(
	        m, "vox_consumer_lag_seconds",
	        "Age of the oldest message of the last polled batch when it "
	        "was polled (0: a poll found nothing waiting)",
	        labels);
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
	c->batch_handlers = conf->batch_handlers;
	c->nbatch_handlers = conf->nbatch_handlers;
	c->nlanes = 1;
	if (conf->lanes > 1 && conf->lane_pgs != NULL) {
		c->nlanes = conf->lanes < VOX_CONSUMER_MAX_LANES
		                    ? conf->lanes
		                    : VOX_CONSUMER_MAX_LANES;
		for (int i = 0; i < c->nlanes; i++)
			c->lane_pgs[i] =
			        conf->lane_pgs[i] ? conf->lane_pgs[i] : pg;
	}
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
	vox_uuid7(c->owner);
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

void vox_consumer_store_offset(vox_consumer_t *c, const rd_kafka_message_t *rkm)
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

/* Handler mode: polls what is available, runs it under one in-flight
 * mark (vox_crashguard_messages), which stores the offsets. */
static void handler_run(vox_consumer_t *c, volatile sig_atomic_t *running)
{
	rd_kafka_message_t **rkms = calloc((size_t)c->batch_max, sizeof(*rkms));
	vox_batch_msg_t *msgs = calloc((size_t)c->batch_max, sizeof(*msgs));
	size_t n;
	double started;

	if (rkms == NULL || msgs == NULL) {
		vox_log(VOX_LOG_ERROR, "message buffers: out of memory", NULL);
		goto out;
	}
	while (*running && !c->fatal) {
		n = vox_consumer_batch_poll(c, rkms, msgs);
		if (n == 0)
			continue;
		started = vox_mono_seconds();
		vox_crashguard_messages(c, rkms, msgs, n, running);
		if (c->handle_seconds)
			vox_histogram_observe(c->handle_seconds,
			                      vox_mono_seconds() - started);
		for (size_t i = 0; i < n; i++)
			rd_kafka_message_destroy(rkms[i]);
	}
out:
	free(rkms);
	free(msgs);
}

int vox_consumer_run(vox_consumer_t *c, volatile sig_atomic_t *running)
{
	rd_kafka_resp_err_t kerr;

	if (c->batch_fn != NULL)
		vox_consumer_batch_run(c, running);
	else
		handler_run(c, running);
	if (c->fatal) {
		/* nothing can be committed: the stored offsets are consumed
		 * again by the next instance, and the inbox skips them */
		rd_kafka_consumer_close(c->rk);
		return VOX_ERR_UNAVAILABLE;
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
