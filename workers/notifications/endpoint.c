/*
 * Webhook endpoints seen from delivery: their bookkeeping (last success,
 * failing since, failure count), disabling (410, or failing for
 * VOX_NOTIFY_ENDPOINT_FAILING_S), and opening the sealed secrets that sign
 * deliveries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notifications.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"

int notify_secret_open(const struct notify_ctx *nc, const char *table,
                       const char *id, const char *column_text, char **out,
                       vox_error_t *err)
{
	unsigned char *sealed;
	size_t sealed_len = 0, plain_len = 0;
	char aad[96];
	int rc;

	*out = NULL;
	if (nc->keyring == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "no VOX_ENCRYPTION_KEY to open it");
	sealed = PQunescapeBytea((const unsigned char *)column_text,
	                         &sealed_len);
	if (sealed == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	/* bound to its row: a value copied elsewhere does not open */
	snprintf(aad, sizeof(aad), "%s/%s", table, id);
	rc = vox_crypto_open(nc->keyring, sealed, sealed_len, aad, strlen(aad),
	                     out, &plain_len, err);
	PQfreemem(sealed);
	return rc;
}

/* endpoint.disabled on vox.events (through the outbox), and a chain that
 * tells the account (its webhook step skips the disabled endpoint). */
static int disabled_event(vox_pg_t *pg, const struct notify_ctx *nc,
                          const char *endpoint_id, const char *account,
                          json_t *data, vox_error_t *err)
{
	const vox_event_kind_t *kind = vox_event_kind("endpoint.disabled");
	struct notify_event ev = {0};
	json_t *event;
	char *text;
	int rc;

	event = vox_event_build("endpoint.disabled", endpoint_id, account, NULL,
	                        json_incref(data));
	text = event ? vox_json_dump(event) : NULL;
	if (text == NULL || kind == NULL) {
		json_decref(event);
		free(text);
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	}
	rc = vox_event_outbox_add(pg, kind, endpoint_id, text, err);
	free(text);
	if (rc == 0) {
		ev.id = vox_json_str(event, "id");
		ev.type = "endpoint.disabled";
		ev.account_id = account;
		ev.ordering_key = endpoint_id;
		ev.time = vox_json_str(event, "time");
		ev.data = data;
		rc = notify_chain_start(pg, nc, &ev, err);
	}
	json_decref(event);
	return rc;
}

int notify_endpoint_disable(vox_pg_t *pg, const struct notify_ctx *nc,
                            const char *endpoint_id, const char *reason,
                            vox_error_t *err)
{
	const char *params[] = {endpoint_id, reason};
	PGresult *res;
	json_t *data;
	int rc;

	rc = vox_pg_execp(
	        pg, "notify_endpoint_disable",
	        "UPDATE webhook_endpoints SET enabled = false, disabled_at = "
	        "now(), disabled_reason = $2 WHERE id = $1 AND enabled AND "
	        "deleted_at IS NULL RETURNING account_id, url, "
	        "to_char(disabled_at AT TIME ZONE 'UTC', "
	        "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
	        2, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res); /* already disabled or deleted */
		return 0;
	}
	vox_log(VOX_LOG_WARN, "webhook endpoint disabled", "endpoint_id",
	        endpoint_id, "account_id", PQgetvalue(res, 0, 0), "reason",
	        reason, NULL);
	data = json_pack("{s:s, s:s, s:s, s:s}", "endpoint_id", endpoint_id,
	                 "url", PQgetvalue(res, 0, 1), "reason", reason,
	                 "disabled_at", PQgetvalue(res, 0, 2));
	rc = vox_pg_execp(pg, "notify_endpoint_cancel",
	                  "UPDATE notifications SET status = 'cancelled' WHERE "
	                  "webhook_endpoint_id = $1 AND status = 'queued'",
	                  1, params, NULL, err);
	if (rc == 0 && data == NULL)
		rc = vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	if (rc == 0)
		rc = disabled_event(pg, nc, endpoint_id, PQgetvalue(res, 0, 0),
		                    data, err);
	json_decref(data);
	PQclear(res);
	return rc;
}

/* A failed attempt: counted; failing for too long disables. */
static int endpoint_failed(vox_pg_t *pg, const struct notify_ctx *nc,
                           const struct notify_delivery *d, vox_error_t *err)
{
	char failing_ms[24], reason[120];
	PGresult *res;
	bool too_long;
	int rc;

	snprintf(failing_ms, sizeof(failing_ms), "%ld",
	         notify_scaled_ms(nc, (double)nc->endpoint_failing_s));
	const char *params[] = {d->endpoint_id, failing_ms};
	rc = vox_pg_execp(
	        pg, "notify_endpoint_failed",
	        "UPDATE webhook_endpoints SET failure_count = failure_count + "
	        "1, last_failure_at = now(), failing_since = "
	        "coalesce(failing_since, now()) WHERE id = $1 RETURNING "
	        "failing_since < now() - $2::bigint * interval '1 ms'",
	        2, params, &res, err);
	if (rc != 0)
		return rc;
	too_long = PQntuples(res) > 0 && *PQgetvalue(res, 0, 0) == 't';
	PQclear(res);
	if (!too_long)
		return 0;
	snprintf(reason, sizeof(reason),
	         "failing: every delivery failed for %ld s",
	         nc->endpoint_failing_s);
	return notify_endpoint_disable(pg, nc, d->endpoint_id, reason, err);
}

int notify_endpoint_result(vox_pg_t *pg, const struct notify_ctx *nc,
                           const struct notify_delivery *d, vox_error_t *err)
{
	const char *params[] = {d->endpoint_id};

	if (d->outcome == NOTIFY_DELIVERED)
		/* Written only when it changes something (or once a
		 * minute for last_success_at): an UPDATE whose WHERE is false
		 * takes no row lock, so the senders delivering to one busy
		 * endpoint do not queue on its row at every commit. */
		return vox_pg_execp(
		        pg, "notify_endpoint_ok",
		        "UPDATE webhook_endpoints SET "
		        "last_success_at = now(), failing_since = "
		        "NULL, failure_count = 0 WHERE id = $1 AND "
		        "(failing_since IS NOT NULL OR failure_count "
		        "<> 0 OR last_success_at IS NULL OR "
		        "last_success_at < now() - interval '1 "
		        "minute')",
		        1, params, NULL, err);
	if (d->gone)
		return notify_endpoint_disable(pg, nc, d->endpoint_id,
		                               "gone: endpoint answered 410",
		                               err);
	if (d->status_code == 0 && strncmp(d->error, "signing secret", 14) == 0)
		return 0; /* ours, not the endpoint's */
	return endpoint_failed(pg, nc, d, err);
}
