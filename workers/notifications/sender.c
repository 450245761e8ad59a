/*
 * Sender threads: each LISTENs on vox_notify with its own connection,
 * claims due rows in a batch (lease, attempts + 1, an attempt row
 * 'sending', COMMIT), sends them one after the other, then writes every
 * outcome in one completion transaction. A sender that dies leaves its
 * leases to expire: the rows are claimed again as their next attempt and
 * the old attempt rows become 'abandoned'. Nothing is sent before its claim
 * committed, so no attempt goes out twice and no row is lost.
 */
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifications.h"
#include "vox_log.h"
#include "vox_signal.h"
#include "vox_time.h"

#define COMPLETE_TRIES 5 /* completion transactions before giving up */

struct sender {
	struct notify_senders *pool;
	pthread_t thread;
	vox_pg_t *pg;
	unsigned listened; /* vox_pg_connects() when LISTEN was last run */
	bool started;
};

struct notify_senders {
	struct notify_ctx *nc;
	volatile bool stop;
	int n;
	struct sender *threads;
};

/* Due, queued, not leased, and not behind an earlier queued row of the
 * same (endpoint or trigger, ordering key): per-resource order. One
 * EXISTS per channel, each an equality on its own partial index
 * (notifications_order_idx, notifications_callback_order_idx): an OR of
 * the two scanned every queued row for every candidate (15 ms a claim
 * with 20,000 queued, bench/RESULTS.md). A webhook goes to its endpoint's
 * URL as it is now (a PATCHed URL takes effect on the next attempt), and
 * waits while the endpoint is disabled (paused: re-enabling sends it). The
 * previous 'sending' attempt of a row claimed again was its dead sender's. */
static const char claim_sql[] =
        "WITH due AS (SELECT n.id FROM notifications n WHERE n.status = "
        "'queued' AND n.next_attempt_at <= now() AND (n.lease_until IS NULL "
        "OR n.lease_until < now()) AND NOT (n.channel = 'webhook' AND "
        "EXISTS (SELECT 1 FROM notifications e WHERE e.status = 'queued' "
        "AND e.webhook_endpoint_id = n.webhook_endpoint_id AND "
        "e.ordering_key = n.ordering_key AND e.sequence < n.sequence)) "
        "AND NOT (n.channel = 'callback' AND EXISTS (SELECT 1 FROM "
        "notifications e WHERE e.status = 'queued' AND e.channel = "
        "'callback' AND e.trigger_id = n.trigger_id AND e.ordering_key = "
        "n.ordering_key AND e.sequence < n.sequence)) AND NOT (n.channel "
        "= 'webhook' AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE "
        "w.id = n.webhook_endpoint_id AND (NOT w.enabled OR w.deleted_at "
        "IS NOT NULL))) ORDER BY n.next_attempt_at LIMIT $1::int FOR "
        "UPDATE OF n SKIP LOCKED), "
        "claimed AS (UPDATE notifications n SET lease_until = now() + "
        "$2::int * interval '1 s', attempts = n.attempts + 1, tries = "
        "n.tries + 1 FROM due WHERE n.id = due.id RETURNING n.*), "
        "abandoned AS (UPDATE notification_attempts a SET outcome = "
        "'abandoned', finished_at = now(), error = 'the sender stopped "
        "before it knew the outcome' FROM claimed c WHERE "
        "a.notification_id = c.id AND a.outcome = 'sending'), "
        "attempt AS (INSERT INTO notification_attempts (notification_id, "
        "account_id, attempt, channel) SELECT id, account_id, tries, "
        "channel FROM claimed) "
        "SELECT c.id, c.account_id, coalesce(c.chain_id::text, ''), "
        "coalesce(c.webhook_endpoint_id::text, ''), "
        "coalesce(c.trigger_id::text, ''), c.channel, "
        "coalesce(c.message_id, ''), coalesce(c.event_type, ''), a.name, "
        "a.language, CASE WHEN c.channel = 'webhook' THEN w.url ELSE "
        "c.recipient END, c.payload::text, c.attempts, c.tries, "
        "coalesce(extract(epoch FROM ch.created_at), 0), w.secret_enc, "
        "CASE WHEN w.secret_old_expires_at > now() THEN w.secret_old_enc "
        "END, t.callback_secret_enc FROM claimed c JOIN accounts a ON a.id = "
        "c.account_id LEFT JOIN notification_chains ch ON ch.id = "
        "c.chain_id LEFT JOIN webhook_endpoints w ON w.id = "
        "c.webhook_endpoint_id LEFT JOIN usage_triggers t ON t.id = "
        "c.trigger_id ORDER BY c.chain_id NULLS LAST";

void notify_delivery_free(struct notify_delivery *d)
{
	free(d->recipient);
	free(d->payload);
	if (d->secret != NULL)
		explicit_bzero(d->secret, strlen(d->secret));
	if (d->secret_old != NULL)
		explicit_bzero(d->secret_old, strlen(d->secret_old));
	free(d->secret);
	free(d->secret_old);
	memset(d, 0, sizeof(*d));
}

void notify_outcome(struct notify_delivery *d, notify_outcome_t outcome,
                    int status, const char *fmt, ...)
{
	va_list ap;

	d->outcome = outcome;
	d->status_code = status;
	d->error[0] = '\0';
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(d->error, sizeof(d->error), fmt, ap);
		va_end(ap);
	}
}

#define COPY(field, col)                                                       \
	snprintf(field, sizeof(field), "%s", PQgetvalue(res, i, col))

/* Opens the row's secrets; a secret that does not open fails the row for
 * good (it will not open later either). */
static void claim_secrets(const struct notify_ctx *nc, PGresult *res, int i,
                          struct notify_delivery *d)
{
	vox_error_t err;
	int rc = 0;

	if (!PQgetisnull(res, i, 15))
		rc = notify_secret_open(nc, "webhook_endpoints", d->endpoint_id,
		                        PQgetvalue(res, i, 15), &d->secret,
		                        &err);
	if (rc == 0 && !PQgetisnull(res, i, 16))
		rc = notify_secret_open(nc, "webhook_endpoints", d->endpoint_id,
		                        PQgetvalue(res, i, 16), &d->secret_old,
		                        &err);
	if (rc == 0 && !PQgetisnull(res, i, 17))
		rc = notify_secret_open(nc, "usage_triggers", d->trigger_id,
		                        PQgetvalue(res, i, 17), &d->secret,
		                        &err);
	if (rc != 0)
		notify_outcome(d, NOTIFY_FAILED, 0, "signing secret: %s",
		               err.message);
}

static void claim_row(const struct notify_ctx *nc, PGresult *res, int i,
                      struct notify_delivery *d)
{
	memset(d, 0, sizeof(*d));
	d->outcome = NOTIFY_UNSENT;
	COPY(d->id, 0);
	COPY(d->account_id, 1);
	COPY(d->chain_id, 2);
	COPY(d->endpoint_id, 3);
	COPY(d->trigger_id, 4);
	COPY(d->channel, 5);
	COPY(d->message_id, 6);
	COPY(d->event_type, 7);
	COPY(d->account_name, 8);
	COPY(d->language, 9);
	d->recipient = strdup(PQgetvalue(res, i, 10));
	d->payload = strdup(PQgetvalue(res, i, 11));
	d->attempts = (int)strtol(PQgetvalue(res, i, 12), NULL, 10);
	d->tries = (int)strtol(PQgetvalue(res, i, 13), NULL, 10);
	d->chain_created = strtod(PQgetvalue(res, i, 14), NULL);
	if (d->recipient == NULL || d->payload == NULL)
		notify_outcome(d, NOTIFY_RETRY, 0, "out of memory");
	else
		claim_secrets(nc, res, i, d);
}

/* Claims up to the batch; commits before returning. *out (malloc'd) is
 * the caller's. Returns the count, or -1. */
static int claim(struct sender *s, struct notify_delivery **out)
{
	const struct notify_ctx *nc = s->pool->nc;
	char batch[16], lease[16];
	PGresult *res;
	vox_error_t err;
	int n;

	*out = NULL;
	snprintf(batch, sizeof(batch), "%ld", nc->claim_batch);
	snprintf(lease, sizeof(lease), "%ld", nc->lease_s);
	const char *params[] = {batch, lease};
	/* one statement: its own transaction, committed when it returns */
	if (vox_pg_execp(s->pg, "notify_claim", claim_sql, 2, params, &res,
	                 &err) != 0) {
		vox_log(VOX_LOG_WARN, "claim", "error", err.message, NULL);
		return -1;
	}
	n = PQntuples(res);
	if (n > 0) {
		*out = calloc((size_t)n, sizeof(**out));
		if (*out == NULL) {
			/* the leases expire: claimed again later */
			PQclear(res);
			return -1;
		}
		for (int i = 0; i < n; i++)
			claim_row(nc, res, i, &(*out)[i]);
		vox_histogram_observe(nc->claim_sizes, (double)n);
	}
	PQclear(res);
	return n;
}

static void send_one(const struct notify_ctx *nc, struct notify_delivery *d)
{
	int64_t t0 = vox_mono_ms();

	if (strcmp(d->channel, "email") == 0)
		notify_email_send(nc, d);
	else if (strcmp(d->channel, "sms") == 0)
		notify_sms_send(nc, d);
	else
		notify_webhook_send(nc, d);
	d->duration_ms = (long)(vox_mono_ms() - t0);
}

/* Longest a send may take on channel (ms). */
static long send_budget(const struct notify_ctx *nc, const char *channel)
{
	if (strcmp(channel, "email") == 0)
		return nc->smtp_timeout_ms;
	if (strcmp(channel, "sms") == 0)
		return nc->sms_timeout_ms;
	return nc->webhook_timeout_ms;
}

static void count_outcome(const struct notify_ctx *nc,
                          const struct notify_delivery *d)
{
	static const char *const names[] = {"delivered", "sent", "retry",
	                                    "failed", "unsent"};
	char labels[96];

	snprintf(labels, sizeof(labels), "channel=\"%s\",outcome=\"%s\"",
	         d->channel, names[d->outcome]);
	vox_counter_inc(vox_metrics_counter(
	        nc->metrics, "vox_notify_deliveries_total",
	        "delivery attempts by channel and outcome", labels));
	if (d->outcome == NOTIFY_DELIVERED && d->chain_created > 0)
		vox_histogram_observe(nc->latency, (double)vox_now_us() / 1e6 -
		                                           d->chain_created);
}

struct complete_tx {
	const struct notify_ctx *nc;
	struct notify_delivery *d;
	int n;
};

static int complete_in_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct complete_tx *tx = arg;

	if (tx->n == 1)
		return notify_complete_row(pg, tx->nc, tx->d, err);
	return notify_complete_rows(pg, tx->nc, tx->d, tx->n, err);
}

/* Writes the outcomes of n rows in one transaction; retried on deadlocks
 * and lost connections. A batch that fails for good is written row by
 * row; giving up on a row leaves its lease to expire (it goes again:
 * at-least-once). */
static void complete(struct sender *s, struct notify_delivery *d, int n)
{
	struct complete_tx tx = {s->pool->nc, d, n};
	vox_error_t err;

	for (int t = 1; t <= COMPLETE_TRIES; t++) {
		if (vox_pg_transaction(s->pg, complete_in_tx, &tx, &err) == 0) {
			for (int i = 0; i < n; i++)
				count_outcome(tx.nc, &d[i]);
			return;
		}
		vox_log(VOX_LOG_WARN, "completion", "notification_id", d->id,
		        "rows", n > 1 ? "batch" : "one", "error", err.message,
		        NULL);
		if (!err.retriable)
			break;
		vox_sleep_ms(vox_backoff_ms(50, 2000, t, 0));
	}
	for (int i = 0; n > 1 && i < n; i++)
		complete(s, &d[i], 1);
}

/* Sends the batch, then writes every outcome in one transaction. A row
 * whose send could outlast the lease is not sent (its claim is undone),
 * so no other sender can take a row while it is on the wire. */
static void send_batch(struct sender *s, struct notify_delivery *d, int n)
{
	const struct notify_ctx *nc = s->pool->nc;
	int64_t until = vox_mono_ms() + nc->lease_s * 1000 - 1000;

	for (int i = 0; i < n; i++)
		if (d[i].outcome == NOTIFY_UNSENT &&
		    vox_mono_ms() + send_budget(nc, d[i].channel) < until &&
		    !s->pool->stop)
			send_one(nc, &d[i]);
	complete(s, d, n);
}

/* LISTEN again after every reconnect (a new session listens to
 * nothing). */
static void listen_again(struct sender *s)
{
	vox_error_t err;

	if (vox_pg_conn(s->pg) == NULL || s->listened == vox_pg_connects(s->pg))
		return;
	if (vox_pg_exec(s->pg, "LISTEN vox_notify", 0, NULL, NULL, &err) == 0)
		s->listened = vox_pg_connects(s->pg);
}

/* Waits for a wakeup (or poll_ms); drains what libpq collected. */
static void wait_wakeup(struct sender *s)
{
	PGconn *conn = vox_pg_conn(s->pg);
	PGnotify *note;
	struct pollfd pfd;
	long left = s->pool->nc->poll_ms;

	if (conn == NULL) {
		vox_sleep_ms(left);
		return;
	}
	/* A NOTIFY that came in with the last query's answer is already in
	 * libpq's queue, and the socket will not say so: claim again now
	 * (sleeping here held every wakeup back by up to poll_ms). */
	PQconsumeInput(conn);
	if ((note = PQnotifies(conn)) != NULL) {
		do
			PQfreemem(note);
		while ((note = PQnotifies(conn)) != NULL);
		return;
	}
	pfd.fd = PQsocket(conn);
	pfd.events = POLLIN;
	/* short slices so a stop is seen quickly */
	while (left > 0 && !s->pool->stop && vox_running) {
		long slice = left < 200 ? left : 200;

		if (poll(&pfd, 1, (int)slice) > 0)
			break;
		left -= slice;
	}
	PQconsumeInput(conn);
	while ((note = PQnotifies(conn)) != NULL)
		PQfreemem(note);
}

static void *sender_loop(void *arg)
{
	struct sender *s = arg;
	struct notify_delivery *d;
	vox_error_t err;
	int n;

	while (!s->pool->stop && vox_running) {
		if (vox_pg_connect(s->pg, 0, &err) != 0) {
			vox_sleep_ms(500);
			continue;
		}
		listen_again(s);
		n = claim(s, &d);
		if (n > 0) {
			send_batch(s, d, n);
			for (int i = 0; i < n; i++)
				notify_delivery_free(&d[i]);
		}
		free(d);
		if (n <= 0)
			wait_wakeup(s);
	}
	return NULL;
}

struct notify_senders *notify_senders_start(struct notify_ctx *nc,
                                            const char *pg_url,
                                            vox_error_t *err)
{
	struct notify_senders *pool = calloc(1, sizeof(*pool));

	if (pool == NULL ||
	    (pool->threads = calloc((size_t)nc->senders,
	                            sizeof(*pool->threads))) == NULL) {
		free(pool);
		vox_error_set(err, VOX_ERR_NOMEM, false, "out of memory");
		return NULL;
	}
	pool->nc = nc;
	for (pool->n = 0; pool->n < nc->senders; pool->n++) {
		struct sender *s = &pool->threads[pool->n];

		s->pool = pool;
		s->pg = vox_pg_new(pg_url);
		if (s->pg == NULL ||
		    pthread_create(&s->thread, NULL, sender_loop, s) != 0) {
			vox_pg_destroy(s->pg);
			notify_senders_stop(pool);
			vox_error_set(err, VOX_ERR_INTERNAL, false,
			              "cannot start sender threads");
			return NULL;
		}
		s->started = true;
	}
	return pool;
}

void notify_senders_stop(struct notify_senders *pool)
{
	if (pool == NULL)
		return;
	pool->stop = true;
	for (int i = 0; i < pool->n; i++) {
		if (!pool->threads[i].started)
			continue;
		pthread_join(pool->threads[i].thread, NULL);
		vox_pg_destroy(pool->threads[i].pg);
	}
	free(pool->threads);
	free(pool);
}
