/* vox_relay: outbox rows to Kafka, marked published only when acknowledged;
 * one relay at a time (an advisory lock) so events keep their order. */
#include "vox_relay.h"

#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_buf.h"
#include "vox_log.h"

#define RELAY_MAX_HEADERS 16

struct relay_batch {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	int pending;
	bool *acked; /* per row */
};

struct relay_slot {
	struct relay_batch *batch;
	int row;
};

static void relay_delivered(void *opaque, const vox_error_t *err,
                            int32_t partition, int64_t offset)
{
	struct relay_slot *slot = opaque;
	struct relay_batch *b = slot->batch;

	(void)partition;
	(void)offset;
	/* Not marked, so it goes again next round (and its key's later
	 * rows wait for it: relay_pick). A row sent to two topics is acked
	 * only when both acknowledged it. */
	if (err != NULL)
		vox_log(VOX_LOG_WARN, "outbox row not acknowledged", "error",
		        err->message, NULL);
	pthread_mutex_lock(&b->lock);
	if (err != NULL)
		b->acked[slot->row] = false;
	if (--b->pending == 0)
		pthread_cond_signal(&b->done_cond);
	pthread_mutex_unlock(&b->lock);
}

/* Headers are stored as a JSON object of strings. */
static size_t relay_headers(const char *text, json_t **holder,
                            vox_kafka_header_t *out)
{
	const char *name;
	json_t *value;
	size_t n = 0;

	*holder = text ? json_loads(text, 0, NULL) : NULL;
	if (!json_is_object(*holder))
		return 0;
	json_object_foreach(*holder, name, value)
	{
		if (n == RELAY_MAX_HEADERS || !json_is_string(value))
			continue;
		out[n].name = name;
		out[n].value = json_string_value(value);
		n++;
	}
	return n;
}

/* Which rows this round sends: each key's first only (rows without a key
 * all). A later event of a key goes in a later round, once the earlier one
 * is acknowledged and marked, so when the earlier one fails (and goes
 * again next round) the later one cannot overtake it. Returns how many
 * rows wait for a later round. */
static int relay_pick(PGresult *rows, bool *send)
{
	int nrows = PQntuples(rows), held = 0;

	for (int i = 0; i < nrows; i++) {
		send[i] = true;
		if (PQgetisnull(rows, i, 2))
			continue; /* no key, no order to keep */
		for (int j = 0; j < i && send[i]; j++)
			if (!PQgetisnull(rows, j, 2) &&
			    strcmp(PQgetvalue(rows, i, 2),
			           PQgetvalue(rows, j, 2)) == 0 &&
			    strcmp(PQgetvalue(rows, i, 1),
			           PQgetvalue(rows, j, 1)) == 0)
				send[i] = false;
		held += !send[i];
	}
	return held;
}

/* The payload with its sequence as the first attribute:
 * {"sequence":N,...the rest}. Rows without one go as stored. */
static const char *relay_payload(PGresult *rows, int i, vox_buf_t *out,
                                 size_t *len)
{
	const char *payload = PQgetvalue(rows, i, 3);

	*len = (size_t)PQgetlength(rows, i, 3);
	if (PQgetisnull(rows, i, 7) || payload[0] != '{' || *len < 2)
		return payload;
	vox_buf_reset(out);
	vox_buf_adds(out, "{\"sequence\":");
	vox_buf_adds(out, PQgetvalue(rows, i, 7));
	if (payload[1] != '}')
		vox_buf_adds(out, ",");
	vox_buf_add(out, payload + 1, *len - 1);
	if (vox_buf_error(out))
		return NULL;
	*len = vox_buf_len(out);
	return vox_buf_str(out);
}

static void relay_send_one(vox_producer_t *producer, const char *topic,
                           PGresult *rows, int i, const char *payload,
                           size_t len, vox_kafka_header_t *headers,
                           size_t nheaders, struct relay_batch *b,
                           struct relay_slot *slot)
{
	vox_error_t err;

	pthread_mutex_lock(&b->lock);
	b->pending++;
	pthread_mutex_unlock(&b->lock);
	if (vox_producer_send(producer, topic,
	                      PQgetisnull(rows, i, 2) ? NULL
	                                              : PQgetvalue(rows, i, 2),
	                      payload, len, headers, nheaders, relay_delivered,
	                      slot, &err) != 0) {
		pthread_mutex_lock(&b->lock);
		b->pending--;
		b->acked[i] = false;
		pthread_mutex_unlock(&b->lock);
		vox_log(VOX_LOG_WARN, "outbox publish failed", "topic", topic,
		        "error", err.message, NULL);
	}
}

static int relay_send_rows(PGresult *rows, const bool *send,
                           vox_producer_t *producer, struct relay_batch *b,
                           struct relay_slot *slots)
{
	int nrows = PQntuples(rows);
	vox_buf_t text;

	vox_buf_init(&text, 2 * 1024 * 1024);
	for (int i = 0; i < nrows; i++) {
		vox_kafka_header_t headers[RELAY_MAX_HEADERS];
		json_t *holder;
		size_t nheaders, len;
		const char *payload;

		if (!send[i])
			continue;
		payload = relay_payload(rows, i, &text, &len);
		if (payload == NULL) {
			vox_log(VOX_LOG_WARN, "outbox row too large to number",
			        "id", PQgetvalue(rows, i, 0), NULL);
			continue; /* not acked: tried again next round */
		}
		nheaders = relay_headers(
		        PQgetisnull(rows, i, 4) ? NULL : PQgetvalue(rows, i, 4),
		        &holder, headers);
		slots[i].batch = b;
		slots[i].row = i;
		b->acked[i] = true;
		relay_send_one(producer, PQgetvalue(rows, i, 1), rows, i,
		               payload, len, headers, nheaders, b, &slots[i]);
		if (!PQgetisnull(rows, i, 5))
			relay_send_one(producer, PQgetvalue(rows, i, 5), rows,
			               i, payload, len, headers, nheaders, b,
			               &slots[i]);
		json_decref(holder);
	}
	vox_buf_free(&text);
	pthread_mutex_lock(&b->lock);
	while (b->pending > 0)
		pthread_cond_wait(&b->done_cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

/* "{1,2,3}" of the acknowledged row ids. */
static char *relay_acked_ids(PGresult *rows, const bool *acked, int *count)
{
	int nrows = PQntuples(rows);
	vox_buf_t ids;

	*count = 0;
	/* row ids are bigint: at most 20 digits and a comma each */
	vox_buf_init(&ids, (size_t)nrows * 22 + 3);
	vox_buf_adds(&ids, "{");
	for (int i = 0; i < nrows; i++) {
		if (!acked[i])
			continue;
		if (*count)
			vox_buf_adds(&ids, ",");
		vox_buf_adds(&ids, PQgetvalue(rows, i, 0));
		(*count)++;
	}
	vox_buf_adds(&ids, "}");
	return vox_buf_take(&ids, NULL);
}

struct relay_tx {
	vox_producer_t *producer;
	int batch;
	int published;
	bool more; /* rows were left for the next round */
};

static int relay_in_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct relay_tx *tx = arg;
	struct relay_batch b = {.pending = 0};
	struct relay_slot *slots = NULL;
	PGresult *rows = NULL;
	char limit[16], *ids = NULL;
	bool *send = NULL;
	int rc, nrows, held;

	/* One relay publishes at a time (the others find the lock taken and
	 * wait for the next round): concurrent relays would each take rows
	 * and publish them in any order, breaking per-key event order. */
	rc = vox_pg_execp(pg, "vox_relay_lock",
	                  "SELECT pg_try_advisory_xact_lock(7264)", 0, NULL,
	                  &rows, err);
	if (rc != 0)
		return rc;
	rc = strcmp(PQgetvalue(rows, 0, 0), "t") == 0 ? 0 : 1;
	PQclear(rows);
	rows = NULL;
	if (rc == 1)
		return 0;
	snprintf(limit, sizeof(limit), "%d", tx->batch);
	const char *params[] = {limit};
	/* Numbers the events of this round that have none yet, per (scope,
	 * key) in id order: the order the rounds publish a key's rows in
	 * (migrations/0033_event_sequences.sql). */
	rc = vox_pg_execp(
	        pg, "vox_relay_number",
	        "WITH r AS (SELECT id, seq_scope, coalesce(message_key, '') AS "
	        "k, "
	        "row_number() OVER (PARTITION BY seq_scope, "
	        "coalesce(message_key, '') ORDER BY id) AS rn "
	        "FROM (SELECT id, seq_scope, message_key, sequence FROM outbox "
	        "WHERE published_at IS NULL ORDER BY id LIMIT $1) t "
	        "WHERE seq_scope IS NOT NULL AND sequence IS NULL), "
	        "c AS (SELECT seq_scope, k, count(*) AS n FROM r GROUP BY 1, "
	        "2), "
	        "b AS (INSERT INTO event_sequences AS e "
	        "(scope, message_key, last_sequence) "
	        "SELECT seq_scope, k, n FROM c ORDER BY 1, 2 "
	        "ON CONFLICT (scope, message_key) DO UPDATE SET last_sequence "
	        "= "
	        "e.last_sequence + EXCLUDED.last_sequence "
	        "RETURNING scope, message_key, last_sequence) "
	        "UPDATE outbox o SET sequence = b.last_sequence - c.n + r.rn "
	        "FROM r JOIN c ON c.seq_scope = r.seq_scope AND c.k = r.k "
	        "JOIN b ON b.scope = r.seq_scope AND b.message_key = r.k "
	        "WHERE o.id = r.id",
	        1, params, NULL, err);
	if (rc != 0)
		return rc;
	rc = vox_pg_execp(pg, "vox_relay_take",
	                  "SELECT id, topic, message_key, payload, headers, "
	                  "domain_topic, seq_scope, sequence "
	                  "FROM outbox WHERE published_at IS NULL ORDER BY id "
	                  "LIMIT $1 FOR UPDATE SKIP LOCKED",
	                  1, params, &rows, err);
	if (rc != 0)
		return rc;
	nrows = PQntuples(rows);
	if (nrows == 0)
		goto out;
	b.acked = calloc((size_t)nrows, sizeof(*b.acked));
	send = calloc((size_t)nrows, sizeof(*send));
	slots = calloc((size_t)nrows, sizeof(*slots));
	if (b.acked == NULL || send == NULL || slots == NULL) {
		rc = vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
		goto out;
	}
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.done_cond, NULL);
	held = relay_pick(rows, send);
	relay_send_rows(rows, send, tx->producer, &b, slots);
	pthread_mutex_destroy(&b.lock);
	pthread_cond_destroy(&b.done_cond);
	ids = relay_acked_ids(rows, b.acked, &tx->published);
	if (ids == NULL) {
		rc = vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
		goto out;
	}
	/* Held rows go next round at once, unless a send failed. */
	tx->more = held > 0 && tx->published == nrows - held;
	if (tx->published > 0) {
		const char *upd[] = {ids};

		rc = vox_pg_execp(pg, "vox_relay_mark",
		                  "UPDATE outbox SET published_at = now() "
		                  "WHERE id = ANY($1::bigint[])",
		                  1, upd, NULL, err);
	}
out:
	free(ids);
	free(slots);
	free(send);
	free(b.acked);
	PQclear(rows);
	return rc;
}

/* One round; *more: rows are waiting that this round left out. */
static int relay_round(vox_pg_t *pg, vox_producer_t *producer, int batch,
                       int *published, bool *more, vox_error_t *err)
{
	struct relay_tx tx = {producer, batch, 0, false};
	int rc = vox_pg_transaction(pg, relay_in_tx, &tx, err);

	*published = rc == 0 ? tx.published : 0;
	*more = rc == 0 && (tx.more || tx.published == batch);
	return rc;
}

int vox_relay_once(vox_pg_t *pg, vox_producer_t *producer, int batch,
                   int *published, vox_error_t *err)
{
	bool more;

	return relay_round(pg, producer, batch, published, &more, err);
}

struct vox_relay {
	vox_pg_t *pg;
	vox_producer_t *producer;
	pthread_t thread;
	atomic_bool stop;
};

static int relay_listen(vox_relay_t *r, vox_error_t *err)
{
	int rc = vox_pg_connect(r->pg, 0, err);

	if (rc != 0)
		return rc;
	return vox_pg_exec(r->pg, "LISTEN vox_outbox", 0, NULL, NULL, err);
}

/* Waits for a notification on the listening connection, up to ms. */
static void relay_wait(vox_relay_t *r, int ms)
{
	PGconn *conn = vox_pg_conn(r->pg);
	struct pollfd pfd;
	PGnotify *note;

	if (conn == NULL) {
		poll(NULL, 0, ms);
		return;
	}
	pfd.fd = PQsocket(conn);
	pfd.events = POLLIN;
	if (poll(&pfd, 1, ms) > 0)
		PQconsumeInput(conn);
	while ((note = PQnotifies(conn)) != NULL)
		PQfreemem(note);
}

static void *relay_loop(void *arg)
{
	vox_relay_t *r = arg;
	unsigned listened_on = 0;
	vox_error_t err;
	bool more = false;
	int published;

	while (!atomic_load(&r->stop)) {
		if (vox_pg_connects(r->pg) != listened_on ||
		    vox_pg_conn(r->pg) == NULL) {
			if (relay_listen(r, &err) != 0) {
				relay_wait(r, 1000);
				continue;
			}
			listened_on = vox_pg_connects(r->pg);
		}
		if (relay_round(r->pg, r->producer, 500, &published, &more,
		                &err) != 0) {
			vox_log(VOX_LOG_WARN, "outbox relay failed", "error",
			        err.message, NULL);
			relay_wait(r, 1000);
			continue;
		}
		if (!more)
			relay_wait(r, 1000);
	}
	/* What is left, including rows held for their key's order. */
	for (int i = 0; i < 100; i++)
		if (relay_round(r->pg, r->producer, 500, &published, &more,
		                &err) != 0 ||
		    !more)
			break;
	return NULL;
}

vox_relay_t *vox_relay_start(const char *conninfo, vox_producer_t *producer,
                             vox_error_t *err)
{
	vox_relay_t *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
		return NULL;
	}
	r->pg = vox_pg_new(conninfo);
	r->producer = producer;
	if (r->pg == NULL ||
	    pthread_create(&r->thread, NULL, relay_loop, r) != 0) {
		vox_error_set(err, VOX_ERR_INTERNAL, false,
		              "cannot start outbox relay");
		vox_pg_destroy(r->pg);
		free(r);
		return NULL;
	}
	return r;
}

void vox_relay_stop(vox_relay_t *r)
{
	if (r == NULL)
		return;
	atomic_store(&r->stop, true);
	pthread_join(r->thread, NULL);
	vox_pg_destroy(r->pg);
	free(r);
}
