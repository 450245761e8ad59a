/* vox_consumer_message: handler mode. One message: parse the CloudEvents
 * envelope, find its handler, claim the id in the inbox and run the
 * handler in one transaction; retry, wait or dead-letter from the error. */
#include <pthread.h>
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
static int run_handler(vox_consumer_t *c, vox_pg_t *pg,
                       const rd_kafka_message_t *rkm,
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
		if (vox_pg_transaction(pg, handle_in_tx, &tx, &err) == 0) {
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
		return vox_dlq_send_on(c, pg, rkm, reason, attempt + 1,
		                       running);
	}
}

int vox_consumer_message(vox_consumer_t *c, const rd_kafka_message_t *rkm,
                         volatile sig_atomic_t *running)
{
	return vox_consumer_message_on(c, c->pg, rkm, running);
}

int vox_consumer_message_on(vox_consumer_t *c, vox_pg_t *pg,
                            const rd_kafka_message_t *rkm,
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
		rc = vox_dlq_send_on(c, pg, rkm, reason, 1, running);
		goto out;
	}
	handler = find_handler(c, vox_json_str(ev, "type"));
	if (handler == NULL) {
		snprintf(reason, sizeof(reason), "no handler for type %s",
		         vox_json_str(ev, "type"));
		rc = vox_dlq_send_on(c, pg, rkm, reason, 1, running);
		goto out;
	}
	if (rkm->key != NULL)
		key = strndup(rkm->key, rkm->key_len);
	message_view(c, rkm, ev, key, &msg);
	rc = run_handler(c, pg, rkm, handler, &msg, running);
out:
	free(key);
	json_decref(ev);
	return rc;
}

/* Handler mode, a polled batch: runs of messages with a set-based handler
 * in one transaction each, the others one at a time. */

static const vox_batch_handler_t *find_batch_handler(const vox_consumer_t *c,
                                                     const char *type)
{
	for (size_t i = 0; i < c->nbatch_handlers; i++)
		if (strcmp(c->batch_handlers[i].type, type) == 0)
			return &c->batch_handlers[i];
	return NULL;
}

/* One run of a batch: msgs[0..n) parsed, all of handler h. */
struct run_tx {
	vox_consumer_t *c;
	const vox_batch_handler_t *h;
	vox_message_t *msgs;
	size_t n;
	vox_message_t *claimed; /* the messages the inbox took */
	size_t nclaimed;
};

/* Claims msgs[0..n) in the inbox with one statement; fills claimed with
 * the ones it took (a message already there is a redelivery). */
static int run_claim(vox_pg_t *pg, struct run_tx *tx, vox_error_t *err)
{
	const char *params[2] = {tx->c->name, NULL};
	json_t *rows = json_array();
	PGresult *res = NULL;
	bool *taken;
	size_t at = 0;
	char *text;
	int rc;

	for (size_t i = 0; i < tx->n; i++)
		json_array_append_new(
		        rows, json_pack("{s:s, s:s, s:i, s:I}", "id",
		                        tx->msgs[i].id, "t", tx->msgs[i].topic,
		                        "p", (int)tx->msgs[i].partition, "o",
		                        (json_int_t)tx->msgs[i].offset));
	text = vox_json_dump(rows);
	json_decref(rows);
	if (text == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
	params[1] = text;
	rc = vox_pg_execp(pg, "vox_inbox_claim_many",
	                  "INSERT INTO inbox (consumer, message_id, topic, "
	                  "kafka_partition, kafka_offset) SELECT $1, t.id, "
	                  "t.t, t.p, t.o FROM json_to_recordset($2::json) AS "
	                  "t(id text, t text, p int, o bigint) ON CONFLICT DO "
	                  "NOTHING RETURNING topic, kafka_partition, "
	                  "kafka_offset",
	                  2, params, &res, err);
	free(text);
	if (rc != 0)
		return rc;
	tx->nclaimed = 0;
	taken = calloc(tx->n, sizeof(*taken));
	if (taken == NULL) {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
	}
	/* rows come back in the order given, as a rule: look from where the
	 * last one was found */
	for (int r = 0; r < PQntuples(res); r++) {
		const char *topic = PQgetvalue(res, r, 0);
		long part = strtol(PQgetvalue(res, r, 1), NULL, 10);
		long long off = strtoll(PQgetvalue(res, r, 2), NULL, 10);

		for (size_t k = 0; k < tx->n; k++) {
			size_t i = (at + k) % tx->n;

			if (tx->msgs[i].partition == part &&
			    tx->msgs[i].offset == off &&
			    strcmp(tx->msgs[i].topic, topic) == 0) {
				taken[i] = true;
				at = i + 1;
				break;
			}
		}
	}
	/* in poll order: the handler sees each partition in order */
	for (size_t i = 0; i < tx->n; i++)
		if (taken[i])
			tx->claimed[tx->nclaimed++] = tx->msgs[i];
	free(taken);
	PQclear(res);
	return 0;
}

static int run_in_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct run_tx *tx = arg;
	int rc = run_claim(pg, tx, err);

	if (rc != 0 || tx->nclaimed == 0)
		return rc;
	for (size_t i = 0; i < tx->nclaimed; i++)
		vox_fault_check_message(tx->claimed[i].payload,
		                        tx->claimed[i].len);
	return tx->h->fn(pg, tx->claimed, tx->nclaimed, tx->c->ctx, err);
}

/* Each message of rkms[0..n) the single-message way, in order, storing
 * its offset once finished. */
static int run_singly(vox_consumer_t *c, rd_kafka_message_t **rkms, size_t n,
                      volatile sig_atomic_t *running)
{
	for (size_t i = 0; i < n; i++) {
		/* stopping: the rest is consumed again */
		if (!*running || vox_consumer_message(c, rkms[i], running) != 0)
			return VOX_CONSUMER_STOPPED;
		vox_consumer_store_offset(c, rkms[i]);
	}
	return 0;
}

/* Lanes: the messages of rkms[0..n) on c->nlanes threads at once, lane
 * hash(key) % nlanes (the partition when there is no key), each lane in
 * poll order on its own connection. Then offsets are stored per
 * partition up to the first message not finished (a lane that stopped
 * leaves the rest of its messages to be consumed again). */
struct lane {
	vox_consumer_t *c;
	vox_pg_t *pg;
	rd_kafka_message_t **rkms;
	const unsigned char *lane_of;
	bool *done;
	size_t n;
	unsigned char id;
	volatile sig_atomic_t *running;
	pthread_t thread;
	bool started;
};

static void *lane_main(void *arg)
{
	struct lane *l = arg;

	for (size_t i = 0; i < l->n; i++) {
		if (l->lane_of[i] != l->id)
			continue;
		if (!*l->running ||
		    vox_consumer_message_on(l->c, l->pg, l->rkms[i],
		                            l->running) != 0)
			break; /* stopping: the rest comes again */
		l->done[i] = true;
	}
	return NULL;
}

static unsigned char lane_of(const rd_kafka_message_t *rkm, int nlanes)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	const unsigned char *k = rkm->key;

	if (k == NULL || rkm->key_len == 0)
		return (unsigned char)((uint32_t)rkm->partition %
		                       (uint32_t)nlanes);
	for (size_t i = 0; i < rkm->key_len; i++)
		h = (h ^ k[i]) * 16777619u;
	return (unsigned char)(h % (uint32_t)nlanes);
}

/* Stores the offsets of the finished messages that no unfinished one of
 * their partition precedes; 0 when all were finished. */
static int lanes_store(vox_consumer_t *c, rd_kafka_message_t **rkms,
                       const bool *done, size_t n)
{
	size_t nblocked = 0;
	const rd_kafka_message_t **blocked = calloc(n, sizeof(*blocked));
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		bool held = false;

		for (size_t b = 0; blocked != NULL && b < nblocked && !held;
		     b++)
			held = blocked[b]->rkt == rkms[i]->rkt &&
			       blocked[b]->partition == rkms[i]->partition;
		if (done[i] && !held && blocked != NULL) {
			vox_consumer_store_offset(c, rkms[i]);
			continue;
		}
		rc = VOX_CONSUMER_STOPPED;
		if (!held && blocked != NULL)
			blocked[nblocked++] = rkms[i];
	}
	free(blocked);
	return rc;
}

static int run_lanes(vox_consumer_t *c, rd_kafka_message_t **rkms, size_t n,
                     volatile sig_atomic_t *running)
{
	struct lane lanes[VOX_CONSUMER_MAX_LANES];
	unsigned char *which = calloc(n, 1);
	bool *done = calloc(n, sizeof(*done));
	int rc;

	if (which == NULL || done == NULL) {
		free(which);
		free(done);
		return run_singly(c, rkms, n, running);
	}
	for (size_t i = 0; i < n; i++)
		which[i] = lane_of(rkms[i], c->nlanes);
	for (int l = 0; l < c->nlanes; l++) {
		memset(&lanes[l], 0, sizeof(lanes[l]));
		lanes[l].c = c;
		lanes[l].pg = c->lane_pgs[l];
		lanes[l].rkms = rkms;
		lanes[l].lane_of = which;
		lanes[l].done = done;
		lanes[l].n = n;
		lanes[l].id = (unsigned char)l;
		lanes[l].running = running;
		/* lane 0 runs on this thread; a lane whose thread cannot
		 * start runs here too, after it */
		if (l > 0 && memchr(which, l, n) != NULL)
			lanes[l].started =
			        pthread_create(&lanes[l].thread, NULL,
			                       lane_main, &lanes[l]) == 0;
	}
	lane_main(&lanes[0]);
	for (int l = 1; l < c->nlanes; l++) {
		if (lanes[l].started)
			pthread_join(lanes[l].thread, NULL);
		else if (memchr(which, l, n) != NULL)
			lane_main(&lanes[l]);
	}
	rc = lanes_store(c, rkms, done, n);
	free(which);
	free(done);
	return rc;
}

/* A run of one set-based handler: one transaction, or (when it fails) in
 * halves down to the single-message way. */
static int run_group(vox_consumer_t *c, rd_kafka_message_t **rkms,
                     vox_message_t *msgs, size_t n,
                     const vox_batch_handler_t *h,
                     volatile sig_atomic_t *running)
{
	struct run_tx tx = {c, h, msgs, n, calloc(n, sizeof(*msgs)), 0};
	char count[24];
	vox_error_t err;
	int outage = 0;

	if (tx.claimed == NULL)
		return run_singly(c, rkms, n, running);
	for (;;) {
		vox_error_clear(&err);
		if (vox_pg_transaction(c->pg, run_in_tx, &tx, &err) == 0) {
			if (c->processed)
				vox_counter_add(c->processed,
				                (uint64_t)tx.nclaimed);
			if (c->duplicates && n > tx.nclaimed)
				vox_counter_add(c->duplicates,
				                (uint64_t)(n - tx.nclaimed));
			for (size_t i = 0; i < n; i++)
				vox_consumer_store_offset(c, rkms[i]);
			free(tx.claimed);
			return 0;
		}
		if (err.code != VOX_ERR_UNAVAILABLE)
			break;
		vox_log(VOX_LOG_WARN, "postgres unavailable, waiting", "error",
		        err.message, NULL);
		if (!vox_consumer_nap(vox_consumer_backoff(c, ++outage),
		                      running)) {
			free(tx.claimed);
			return VOX_CONSUMER_STOPPED;
		}
	}
	free(tx.claimed);
	if (n == 1) /* it decides alone (retry, dead letter) */
		return run_singly(c, rkms, n, running);
	/* Rolled back: halves, in order, down to the message that fails,
	 * which then decides alone as it would have without batching (a bad
	 * message costs about log2(n) transactions more, not n). */
	snprintf(count, sizeof(count), "%zu", n);
	vox_log(VOX_LOG_WARN, "batch of messages failed: in halves", "messages",
	        count, "type", h->type, "error", err.message, NULL);
	if (run_group(c, rkms, msgs, n / 2, h, running) != 0)
		return VOX_CONSUMER_STOPPED;
	return run_group(c, rkms + n / 2, msgs + n / 2, n - n / 2, h, running);
}

int vox_consumer_messages(vox_consumer_t *c, rd_kafka_message_t **rkms,
                          size_t n, volatile sig_atomic_t *running)
{
	const vox_batch_handler_t **bh = calloc(n, sizeof(*bh));
	vox_message_t *msgs = calloc(n, sizeof(*msgs));
	json_t **evs = calloc(n, sizeof(*evs));
	char **keys = calloc(n, sizeof(*keys));
	vox_error_t err;
	int rc = 0;

	if (bh == NULL || msgs == NULL || evs == NULL || keys == NULL) {
		rc = run_singly(c, rkms, n, running);
		goto out;
	}
	if (c->nbatch_handlers > 0) {
		for (size_t i = 0; i < n; i++) {
			if (vox_event_parse(rkms[i]->payload, rkms[i]->len,
			                    &evs[i], &err) != 0)
				continue; /* dead-lettered on its own */
			bh[i] = find_batch_handler(
			        c, vox_json_str(evs[i], "type"));
			if (bh[i] == NULL)
				continue;
			if (rkms[i]->key != NULL)
				keys[i] =
				        strndup(rkms[i]->key, rkms[i]->key_len);
			message_view(c, rkms[i], evs[i], keys[i], &msgs[i]);
		}
	}
	for (size_t i = 0, j; i < n && rc == 0; i = j) {
		for (j = i + 1; j < n && bh[j] == bh[i]; j++)
			;
		if (!*running)
			rc = VOX_CONSUMER_STOPPED; /* the rest comes again */
		else if (bh[i] == NULL && c->nlanes > 1 && j - i > 1)
			rc = run_lanes(c, rkms + i, j - i, running);
		else if (bh[i] == NULL)
			rc = run_singly(c, rkms + i, j - i, running);
		else
			rc = run_group(c, rkms + i, msgs + i, j - i, bh[i],
			               running);
	}
out:
	for (size_t i = 0; evs != NULL && keys != NULL && i < n; i++) {
		json_decref(evs[i]);
		free(keys[i]);
	}
	free(bh);
	free(msgs);
	free(evs);
	free(keys);
	return rc;
}
