/* vox_kafka: idempotent producer with delivery callbacks and rebuild on
 * fatal errors. */
#include "vox_kafka.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vox_log.h"

struct vox_producer {
	char *brokers, *client_id;
	int message_timeout_ms, linger_ms;
	pthread_rwlock_t lock; /* read: use rk; write: replace rk */
	rd_kafka_t *rk;
	pthread_t poller;
	atomic_bool fatal, stop;
	atomic_uint rebuilds;
};

struct delivery {
	vox_delivery_fn cb;
	void *opaque;
};

int vox_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                       const char *value, vox_error_t *err)
{
	char errstr[256];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) !=
	    RD_KAFKA_CONF_OK)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "kafka config %s=%s: %s", name, value,
		                     errstr);
	return 0;
}

/* Maps a delivery failure to our error object. */
static void delivery_error(rd_kafka_resp_err_t kerr, vox_error_t *err)
{
	switch (kerr) {
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
		/* The message may still have been written: callers must
		 * treat the outcome as unknown. */
		vox_error_set(err, VOX_ERR_TIMEOUT, true,
		              "kafka delivery timed out: %s",
		              rd_kafka_err2str(kerr));
		break;
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
		vox_error_set(err, VOX_ERR_NOT_FOUND, false, "kafka: %s",
		              rd_kafka_err2str(kerr));
		break;
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
		vox_error_set(err, VOX_ERR_LIMIT, false, "kafka: %s",
		              rd_kafka_err2str(kerr));
		break;
	default:
		vox_error_set(err, VOX_ERR_UNAVAILABLE, true, "kafka: %s",
		              rd_kafka_err2str(kerr));
	}
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                        void *opaque)
{
	struct delivery *d = msg->_private;
	vox_error_t err;

	(void)rk;
	(void)opaque;
	if (d == NULL)
		return;
	if (msg->err) {
		delivery_error(msg->err, &err);
		d->cb(d->opaque, &err, msg->partition, msg->offset);
	} else {
		d->cb(d->opaque, NULL, msg->partition, msg->offset);
	}
	free(d);
}

static void on_error(rd_kafka_t *rk, int kerr, const char *reason, void *opaque)
{
	vox_producer_t *p = opaque;
	char fatal_reason[512];

	if (kerr == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_fatal_error(rk, fatal_reason, sizeof(fatal_reason));
		vox_log(VOX_LOG_ERROR, "kafka producer fatal error, rebuilding",
		        "reason", fatal_reason, NULL);
		atomic_store(&p->fatal, true);
		return;
	}
	vox_log(VOX_LOG_WARN, "kafka producer error", "error",
	        rd_kafka_err2name(kerr), "reason", reason, NULL);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
	(void)rk;
	vox_log(level <= 3   ? VOX_LOG_ERROR
	        : level <= 4 ? VOX_LOG_WARN
	        : level <= 6 ? VOX_LOG_INFO
	                     : VOX_LOG_DEBUG,
	        buf, "component", "librdkafka", "facility", fac, NULL);
}

static rd_kafka_t *producer_handle(vox_producer_t *p, vox_error_t *err)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char timeout[16], linger[16], errstr[512];
	rd_kafka_t *rk;

	snprintf(timeout, sizeof(timeout), "%d", p->message_timeout_ms);
	snprintf(linger, sizeof(linger), "%d", p->linger_ms);
	if (vox_kafka_conf_set(conf, "bootstrap.servers", p->brokers, err) ||
	    vox_kafka_conf_set(conf, "client.id", p->client_id, err) ||
	    vox_kafka_conf_set(conf, "enable.idempotence", "true", err) ||
	    vox_kafka_conf_set(conf, "acks", "all", err) ||
	    vox_kafka_conf_set(conf, "message.timeout.ms", timeout, err) ||
	    vox_kafka_conf_set(conf, "linger.ms", linger, err) ||
	    vox_kafka_conf_set(conf, "socket.keepalive.enable", "true", err))
		goto out_conf;
	rd_kafka_conf_set_opaque(conf, p);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_log_cb(conf, on_log);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		vox_error_set(err, VOX_ERR_INVALID, false, "kafka: %s", errstr);
		goto out_conf;
	}
	return rk; /* conf is now owned by rk */

out_conf:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* Called on the poll thread after a fatal error: everything the old handle
 * held gets its delivery report (an error), then a new handle replaces it. */
static void producer_rebuild(vox_producer_t *p)
{
	rd_kafka_t *fresh;
	vox_error_t err;

	pthread_rwlock_wrlock(&p->lock);
	rd_kafka_purge(p->rk,
	               RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_flush(p->rk, 2000);
	while (rd_kafka_outq_len(p->rk) > 0 && rd_kafka_poll(p->rk, 100) >= 0)
		if (atomic_load(&p->stop))
			break;
	rd_kafka_destroy(p->rk);
	p->rk = NULL;
	while ((fresh = producer_handle(p, &err)) == NULL) {
		vox_log(VOX_LOG_ERROR, "kafka producer rebuild failed", "error",
		        err.message, NULL);
		if (atomic_load(&p->stop))
			break;
		sleep(1);
	}
	p->rk = fresh;
	atomic_fetch_add(&p->rebuilds, 1);
	atomic_store(&p->fatal, false);
	pthread_rwlock_unlock(&p->lock);
	vox_log(VOX_LOG_INFO, "kafka producer rebuilt", NULL);
}

static void *producer_poll_loop(void *arg)
{
	vox_producer_t *p = arg;

	while (!atomic_load(&p->stop)) {
		if (atomic_load(&p->fatal))
			producer_rebuild(p);
		pthread_rwlock_rdlock(&p->lock);
		if (p->rk != NULL)
			rd_kafka_poll(p->rk, 100);
		pthread_rwlock_unlock(&p->lock);
	}
	return NULL;
}

vox_producer_t *vox_producer_new(const vox_producer_conf_t *conf,
                                 vox_error_t *err)
{
	vox_producer_t *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
		return NULL;
	}
	p->brokers = strdup(conf->brokers);
	p->client_id = strdup(conf->client_id ? conf->client_id : "voxlink");
	p->message_timeout_ms =
	        conf->message_timeout_ms ? conf->message_timeout_ms : 30000;
	p->linger_ms = conf->linger_ms ? conf->linger_ms : 5;
	pthread_rwlock_init(&p->lock, NULL);
	if (p->brokers == NULL || p->client_id == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
		goto out_free;
	}
	p->rk = producer_handle(p, err);
	if (p->rk == NULL)
		goto out_free;
	if (pthread_create(&p->poller, NULL, producer_poll_loop, p) != 0) {
		vox_error_set(err, VOX_ERR_INTERNAL, false,
		              "cannot start producer poll thread");
		rd_kafka_destroy(p->rk);
		goto out_free;
	}
	return p;

out_free:
	pthread_rwlock_destroy(&p->lock);
	free(p->brokers);
	free(p->client_id);
	free(p);
	return NULL;
}

void vox_producer_destroy(vox_producer_t *p, int timeout_ms)
{
	if (p == NULL)
		return;
	pthread_rwlock_rdlock(&p->lock);
	if (p->rk != NULL && rd_kafka_flush(p->rk, timeout_ms) != 0)
		vox_log(VOX_LOG_WARN,
		        "kafka producer closed with undelivered "
		        "messages",
		        NULL);
	pthread_rwlock_unlock(&p->lock);
	atomic_store(&p->stop, true);
	pthread_join(p->poller, NULL);
	if (p->rk != NULL) {
		/* Remaining messages get their (failed) reports now. */
		rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE |
		                              RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(p->rk, 0);
		rd_kafka_destroy(p->rk);
	}
	pthread_rwlock_destroy(&p->lock);
	free(p->brokers);
	free(p->client_id);
	free(p);
}

static rd_kafka_headers_t *build_headers(const vox_kafka_header_t *headers,
                                         size_t nheaders)
{
	rd_kafka_headers_t *hdrs;

	if (nheaders == 0)
		return NULL;
	hdrs = rd_kafka_headers_new(nheaders);
	for (size_t i = 0; i < nheaders; i++)
		rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
		                    -1);
	return hdrs;
}

int vox_producer_send(vox_producer_t *p, const char *topic, const char *key,
                      const void *payload, size_t len,
                      const vox_kafka_header_t *headers, size_t nheaders,
                      vox_delivery_fn cb, void *opaque, vox_error_t *err)
{
	struct delivery *d = malloc(sizeof(*d));
	rd_kafka_headers_t *hdrs;
	rd_kafka_resp_err_t kerr;

	if (d == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
	d->cb = cb;
	d->opaque = opaque;
	hdrs = build_headers(headers, nheaders);
	pthread_rwlock_rdlock(&p->lock);
	kerr = p->rk == NULL
	               ? RD_KAFKA_RESP_ERR__FATAL
	               : rd_kafka_producev(
	                         p->rk, RD_KAFKA_V_TOPIC(topic),
	                         RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
	                         RD_KAFKA_V_VALUE((void *)payload, len),
	                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                         RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(d),
	                         RD_KAFKA_V_END);
	pthread_rwlock_unlock(&p->lock);
	if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0; /* d and hdrs are now owned by librdkafka */
	if (hdrs != NULL)
		rd_kafka_headers_destroy(hdrs);
	free(d);
	if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		return vox_error_set(err, VOX_ERR_LIMIT, true,
		                     "kafka: local queue full");
	if (kerr == RD_KAFKA_RESP_ERR__FATAL)
		return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                     "kafka: producer is being rebuilt");
	delivery_error(kerr, err);
	return err ? err->code : VOX_ERR_UNAVAILABLE;
}

struct sync_wait {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	bool done;
	bool failed;
	vox_error_t err;
	int32_t partition;
	int64_t offset;
};

static void sync_done(void *opaque, const vox_error_t *err, int32_t partition,
                      int64_t offset)
{
	struct sync_wait *w = opaque;

	pthread_mutex_lock(&w->lock);
	if (err != NULL) {
		w->failed = true;
		w->err = *err;
	}
	w->partition = partition;
	w->offset = offset;
	w->done = true;
	pthread_cond_signal(&w->done_cond);
	pthread_mutex_unlock(&w->lock);
}

int vox_producer_send_sync(vox_producer_t *p, const char *topic,
                           const char *key, const void *payload, size_t len,
                           const vox_kafka_header_t *headers, size_t nheaders,
                           int32_t *partition, int64_t *offset,
                           vox_error_t *err)
{
	struct sync_wait w = {.done = false};
	int rc;

	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.done_cond, NULL);
	rc = vox_producer_send(p, topic, key, payload, len, headers, nheaders,
	                       sync_done, &w, err);
	if (rc != 0)
		goto out;
	/* The report always comes: message.timeout.ms bounds the wait. */
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.done_cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	if (w.failed) {
		if (err != NULL)
			*err = w.err;
		rc = w.err.code;
		goto out;
	}
	if (partition != NULL)
		*partition = w.partition;
	if (offset != NULL)
		*offset = w.offset;
out:
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.done_cond);
	return rc;
}

int vox_producer_ping(vox_producer_t *p, int timeout_ms, vox_error_t *err)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR__FATAL;
	int rc = 0;

	pthread_rwlock_rdlock(&p->lock);
	if (p->rk != NULL)
		kerr = rd_kafka_metadata(p->rk, 0, NULL, &md, timeout_ms);
	pthread_rwlock_unlock(&p->lock);
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR)
		rc = vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                   "kafka metadata: %s",
		                   rd_kafka_err2str(kerr));
	else if (md->broker_cnt == 0)
		rc = vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                   "kafka: no broker");
	if (md != NULL)
		rd_kafka_metadata_destroy(md);
	return rc;
}

int vox_producer_warm(vox_producer_t *p, const char *const *topics,
                      int timeout_ms, vox_error_t *err)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t kerr;
	rd_kafka_topic_t *rkt;
	int rc = 0;

	pthread_rwlock_rdlock(&p->lock);
	for (size_t i = 0; p->rk != NULL && topics[i] != NULL && rc == 0; i++) {
		/* the handle keeps the topic (and its leaders) once named */
		rkt = rd_kafka_topic_new(p->rk, topics[i], NULL);
		if (rkt == NULL)
			continue;
		md = NULL;
		kerr = rd_kafka_metadata(p->rk, 0, rkt, &md, timeout_ms);
		if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR)
			rc = vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
			                   "kafka metadata of %s: %s",
			                   topics[i], rd_kafka_err2str(kerr));
		if (md != NULL)
			rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(rkt);
	}
	pthread_rwlock_unlock(&p->lock);
	return rc;
}

unsigned vox_producer_rebuilds(vox_producer_t *p)
{
	return atomic_load(&p->rebuilds);
}

int vox_producer_inject_fatal(vox_producer_t *p)
{
	rd_kafka_resp_err_t kerr;

	pthread_rwlock_rdlock(&p->lock);
	kerr = rd_kafka_test_fatal_error(
	        p->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
	        "injected by test");
	pthread_rwlock_unlock(&p->lock);
	return kerr == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : VOX_ERR_INTERNAL;
}
