/* vox_dlq: dead letters of the consumer: the original key and bytes on
 * "<topic>.dlq", the reason and the source in vox-dlq-* headers. */
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_consumer_int.h"
#include "vox_log.h"
#include "vox_ops.h"
#include "vox_time.h"

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
static int dlq_send_to(vox_consumer_t *c, const rd_kafka_message_t *rkm,
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
		if (!vox_consumer_nap(vox_consumer_backoff(c, ++n), running))
			break;
	}
	free(key);
	if (rc == 0 && c->dead_lettered)
		vox_counter_inc(c->dead_lettered);
	if (slot != NULL)
		slot->ok = rc == 0;
	return rc;
}

/* The operation a dead-lettered command names fails with the reason
 * (vox_op_dead_lettered); a failure to say so is logged, and the dead
 * letter goes on. */
static void dlq_fail_operation(vox_pg_t *pg, const rd_kafka_message_t *rkm,
                               const char *reason)
{
	vox_error_t err;

	if (pg != NULL &&
	    vox_op_dead_lettered(pg, rkm->payload, rkm->len, reason, &err) != 0)
		vox_log(VOX_LOG_WARN, "dead letter's operation not failed",
		        "error", err.message, NULL);
}

int vox_dlq_send_on(vox_consumer_t *c, vox_pg_t *pg,
                    const rd_kafka_message_t *rkm, const char *reason,
                    int attempts, volatile sig_atomic_t *running)
{
	dlq_fail_operation(pg, rkm, reason);
	return dlq_send_to(c, rkm, reason, attempts, running, NULL);
}

int vox_dlq_send(vox_consumer_t *c, const rd_kafka_message_t *rkm,
                 const char *reason, int attempts,
                 volatile sig_atomic_t *running)
{
	return vox_dlq_send_on(c, c->pg, rkm, reason, attempts, running);
}
/* Dead-letters the marked messages of a batch: all queued at once, then
 * waited for; any the broker did not take is sent again, waiting, until it
 * is (or the consumer stops: non-zero). */
int vox_dlq_send_marked(vox_consumer_t *c, rd_kafka_message_t **rkms,
                        vox_batch_msg_t *msgs, size_t n,
                        volatile sig_atomic_t *running)
{
	struct dlq_slot *slots;
	atomic_int pending = 0;
	size_t marked = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		if (msgs[i].dlq_reason[0] != '\0') {
			marked++;
			dlq_fail_operation(c->pg, rkms[i], msgs[i].dlq_reason);
		}
	if (marked == 0)
		return 0;
	slots = calloc(n, sizeof(*slots));
	if (slots == NULL) { /* one at a time then */
		for (size_t i = 0; i < n && rc == 0; i++)
			if (msgs[i].dlq_reason[0] != '\0')
				rc = vox_dlq_send(c, rkms[i],
				                  msgs[i].dlq_reason, 1,
				                  running);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		slots[i].pending = &pending;
		if (msgs[i].dlq_reason[0] != '\0')
			dlq_send_to(c, rkms[i], msgs[i].dlq_reason, 1, running,
			            &slots[i]);
	}
	/* every queued message gets its report within the producer's
	 * message timeout */
	while (atomic_load(&pending) > 0)
		poll(NULL, 0, 1);
	for (size_t i = 0; i < n && rc == 0; i++)
		if (msgs[i].dlq_reason[0] != '\0' && !slots[i].ok)
			rc = vox_dlq_send(c, rkms[i], msgs[i].dlq_reason, 1,
			                  running);
	free(slots);
	return rc;
}
