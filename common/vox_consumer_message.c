/* vox_consumer_message: handler mode. One message: parse the CloudEvents
 * envelope, find its handler, claim the id in the inbox and run the
 * handler in one transaction; retry, wait or dead-letter from the error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_consumer_int.h"
#include "vox_event.h"
#include "vox_fault.h"
#include "vox_json.h"
#include "vox_log.h"

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
	vox_fault_check_message(tx->msg->payload, tx->msg->len);
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
	vox_message_envelope(ev, msg);
	msg->consumer = c->name;
}

void vox_message_envelope(const json_t *ev, vox_message_t *msg)
{
	msg->event = ev;
	msg->id = vox_json_str(ev, "id");
	msg->type = vox_json_str(ev, "type");
	msg->account_id = vox_json_str(ev, "accountid");
	msg->subject = vox_json_str(ev, "subject");
	msg->time = vox_json_str(ev, "time");
	msg->traceparent = vox_json_str(ev, "traceparent");
	msg->data = json_object_get(ev, "data");
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
			if (!vox_consumer_nap(vox_consumer_backoff(c, ++outage),
			                      running))
				return -1;
			continue;
		}
		if (err.retriable && ++attempt < c->max_attempts) {
			if (c->retries)
				vox_counter_inc(c->retries);
			vox_log(VOX_LOG_WARN, "handler failed, retrying",
			        "error", err.message, "message_id", msg->id,
			        NULL);
			if (!vox_consumer_nap(vox_consumer_backoff(c, attempt),
			                      running))
				return -1;
			continue;
		}
		snprintf(reason, sizeof(reason), "%s: %s",
		         vox_err_code_name(err.code), err.message);
		return vox_dlq_send(c, rkm, reason, attempt + 1, running);
	}
}

int vox_consumer_message(vox_consumer_t *c, const rd_kafka_message_t *rkm,
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
		rc = vox_dlq_send(c, rkm, reason, 1, running);
		goto out;
	}
	handler = find_handler(c, vox_json_str(ev, "type"));
	if (handler == NULL) {
		snprintf(reason, sizeof(reason), "no handler for type %s",
		         vox_json_str(ev, "type"));
		rc = vox_dlq_send(c, rkm, reason, 1, running);
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
