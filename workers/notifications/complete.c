/*
 * Completion: what one attempt came to, written back in one transaction:
 * the attempt row, the notification (status, next attempt, lease cleared),
 * the endpoint's bookkeeping and the chain (delivered, or moved on when
 * its step failed). The chain is locked first, as everywhere.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifications.h"

static const char *const row_status[] = {
        [NOTIFY_DELIVERED] = "delivered",
        [NOTIFY_SENT] = "sent",
        [NOTIFY_RETRY] = "queued",
        [NOTIFY_FAILED] = "failed",
};

/* Nothing was sent: the claim is undone (no attempt to show). */
static int complete_unsent(vox_pg_t *pg, const struct notify_delivery *d,
                           vox_error_t *err)
{
	char tries[16];
	int rc;

	snprintf(tries, sizeof(tries), "%d", d->tries);
	const char *params[] = {d->id, tries};
	rc = vox_pg_execp(pg, "notify_unsent_attempt",
	                  "DELETE FROM notification_attempts WHERE "
	                  "notification_id = $1 AND attempt = $2::int",
	                  2, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(pg, "notify_unsent_row",
		                  "UPDATE notifications SET attempts = "
		                  "greatest(attempts - 1, 0), tries = "
		                  "greatest(tries - 1, 0), lease_until = NULL "
		                  "WHERE id = $1 AND tries = $2::int",
		                  2, params, NULL, err);
	return rc;
}

static int complete_attempt(vox_pg_t *pg, const struct notify_delivery *d,
                            const char *retry_ms, vox_error_t *err)
{
	char tries[16], status[16], duration[24];
	bool ok = d->outcome == NOTIFY_DELIVERED || d->outcome == NOTIFY_SENT;

	snprintf(tries, sizeof(tries), "%d", d->tries);
	snprintf(status, sizeof(status), "%d", d->status_code);
	snprintf(duration, sizeof(duration), "%ld", d->duration_ms);
	const char *params[] = {d->id,
	                        tries,
	                        ok ? "succeeded" : "failed",
	                        d->status_code ? status : NULL,
	                        duration,
	                        *d->error ? d->error : NULL,
	                        retry_ms};
	return vox_pg_execp(
	        pg, "notify_complete_attempt",
	        "UPDATE notification_attempts SET outcome = $3, status_code = "
	        "$4::int, duration_ms = $5::int, error = left($6, 1000), "
	        "finished_at = now(), next_attempt_at = now() + $7::bigint * "
	        "interval '1 ms' WHERE notification_id = $1 AND attempt = "
	        "$2::int",
	        7, params, NULL, err);
}

/* A row cancelled while it was on the wire stays cancelled unless it got
 * through. */
static int complete_notification(vox_pg_t *pg, const struct notify_delivery *d,
                                 const char *retry_ms, bool *ours,
                                 vox_error_t *err)
{
	char status[16], tries[16];
	PGresult *res;
	int rc;

	snprintf(status, sizeof(status), "%d", d->status_code);
	snprintf(tries, sizeof(tries), "%d", d->tries);
	const char *params[] = {d->id,
	                        row_status[d->outcome],
	                        *d->error ? d->error : NULL,
	                        d->status_code ? status : NULL,
	                        retry_ms,
	                        *d->provider_id ? d->provider_id : NULL,
	                        tries};
	rc = vox_pg_execp(
	        pg, "notify_complete_row",
	        "UPDATE notifications SET status = CASE WHEN $2 = 'queued' AND "
	        "status = 'cancelled' THEN 'cancelled' ELSE $2 END, last_error "
	        "= left($3, 2000), last_status_code = $4::int, sent_at = CASE "
	        "WHEN $2 IN ('sent', 'delivered') THEN now() ELSE sent_at END, "
	        "delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE "
	        "delivered_at END, next_attempt_at = CASE WHEN $5::bigint IS "
	        "NULL THEN next_attempt_at ELSE now() + $5::bigint * interval "
	        "'1 ms' END, provider_message_id = coalesce($6, "
	        "provider_message_id), lease_until = NULL WHERE id = $1 AND "
	        "tries = $7::int RETURNING id",
	        7, params, &res, err);
	if (rc != 0)
		return rc;
	*ours = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

/* The row, its attempt and its chain; the endpoint's bookkeeping only
 * when endpoint_now (else the caller does it afterwards, in endpoint
 * order: notify_complete_rows). Sets d->ours. */
static int complete_row(vox_pg_t *pg, const struct notify_ctx *nc,
                        struct notify_delivery *d, bool endpoint_now,
                        vox_error_t *err)
{
	char retry_ms[24];
	bool retry = d->outcome == NOTIFY_RETRY;
	int rc;

	d->ours = false;
	if (d->outcome == NOTIFY_UNSENT)
		return complete_unsent(pg, d, err);
	snprintf(retry_ms, sizeof(retry_ms), "%ld", d->retry_ms);
	if (*d->chain_id != '\0' &&
	    (rc = notify_chain_lock(pg, d->chain_id, err)) != 0)
		return rc;
	rc = complete_attempt(pg, d, retry ? retry_ms : NULL, err);
	if (rc == 0)
		rc = complete_notification(pg, d, retry ? retry_ms : NULL,
		                           &d->ours, err);
	/* Our lease ran out and another sender claimed the row since (a
	 * later try): our attempt row says what happened to ours, the row
	 * itself is theirs now. */
	if (rc != 0 || !d->ours)
		return rc;
	if (endpoint_now && strcmp(d->channel, "webhook") == 0 &&
	    (rc = notify_endpoint_result(pg, nc, d, err)) != 0)
		return rc;
	if (*d->chain_id == '\0')
		return 0;
	if (d->outcome == NOTIFY_DELIVERED)
		return notify_chain_delivered(pg, d->chain_id, err);
	if (d->outcome == NOTIFY_FAILED)
		return notify_chain_advance(pg, nc, d->chain_id, err);
	return 0;
}

int notify_complete_row(vox_pg_t *pg, const struct notify_ctx *nc,
                        struct notify_delivery *d, vox_error_t *err)
{
	return complete_row(pg, nc, d, true, err);
}

static int by_endpoint(const void *a, const void *b)
{
	const struct notify_delivery *x = *(struct notify_delivery *const *)a;
	const struct notify_delivery *y = *(struct notify_delivery *const *)b;

	return strcmp(x->endpoint_id, y->endpoint_id);
}

/* A claimed batch in one transaction (one commit for up to the claim
 * batch instead of one a row). Locks are taken in one order by every
 * sender, so two batches cannot deadlock: chains in id order (the claim
 * returns rows so), then endpoints in id order, a delivered endpoint's
 * bookkeeping written once. */
int notify_complete_rows(vox_pg_t *pg, const struct notify_ctx *nc,
                         struct notify_delivery *d, int n, vox_error_t *err)
{
	struct notify_delivery **hooks = calloc((size_t)n + 1, sizeof(*hooks));
	int rc = 0, k = 0;

	if (hooks == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	for (int i = 0; i < n && rc == 0; i++) {
		rc = complete_row(pg, nc, &d[i], false, err);
		if (rc == 0 && d[i].ours &&
		    strcmp(d[i].channel, "webhook") == 0)
			hooks[k++] = &d[i];
	}
	qsort(hooks, (size_t)k, sizeof(*hooks), by_endpoint);
	for (int i = 0; i < k && rc == 0; i++) {
		/* one success of an endpoint stands for the others after it
		 * in the batch; failures are each counted */
		if (hooks[i]->outcome == NOTIFY_DELIVERED && i + 1 < k &&
		    strcmp(hooks[i + 1]->endpoint_id, hooks[i]->endpoint_id) ==
		            0 &&
		    hooks[i + 1]->outcome == NOTIFY_DELIVERED)
			continue;
		rc = notify_endpoint_result(pg, nc, hooks[i], err);
	}
	free(hooks);
	return rc;
}
