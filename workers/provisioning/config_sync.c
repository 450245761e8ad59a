/*
 * config_sync: pushes the forwarding part of a number's configuration to
 * the carrier until it lands (docs/ROUTING.md, "Carrier sync"). Run from
 * the worker's tick, on the ticker's own connection.
 *
 * A row owes a push when carrier_status = 'pending_carrier'; it is due
 * when carrier_next_at <= now() (or NULL). One pass: claim a small batch
 * (FOR UPDATE SKIP LOCKED, carrier_next_at pushed a lease ahead so no
 * other worker takes it while we push) and commit; push each number's
 * current call_forwarding with its version, outside any transaction; then
 * record the outcome with a version check:
 *   landed (the carrier holds version V >= the pushed one, a 409 "older
 *   than mine" included): carrier_version = GREATEST(carrier_version, V),
 *   and 'synced' only if the row's version is still <= V; a version
 *   stored meanwhile stays pending and is due at once.
 *   failed: carrier_attempts + 1, carrier_error, carrier_next_at = now()
 *   + backoff (exponential, equal jitter, capped); a refusal that cannot
 *   pass by itself (bad destination, unknown carrier id) waits the cap.
 *   After a retriable failure (the carrier is down) the rest of the batch
 *   is recorded failed with the same reason without a push, so that one
 *   tick never spends more than one push's timeouts (the reservation
 *   expiry shares the tick).
 * The latest version wins: the carrier never takes an older version over
 * a newer one, and we only ever move carrier_version forward.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provisioning.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_routing_doc.h"
#include "vox_time.h"
#include "vox_uuid.h"

#define SYNC_BATCH   16
#define SYNC_LEASE_S "120" /* longer than one push with its retries */

struct sync_row {
	char number_id[VOX_UUID_STRLEN];
	char carrier_id[64];
	int version, attempts;
	char *forwarding; /* call_forwarding as text, owned */
};

static vox_counter_t *pushes(vox_metrics_t *metrics, const char *outcome)
{
	char labels[32];

	snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome);
	return vox_metrics_counter(
	        metrics, "vox_carrier_sync_pushes_total",
	        "Forwarding pushes to the carrier by outcome", labels);
}

void prov_sync_metrics(struct prov_ctx *pc, vox_metrics_t *metrics)
{
	if (metrics == NULL)
		return;
	pc->sync_pending = vox_metrics_gauge(
	        metrics, "vox_carrier_sync_pending",
	        "Numbers whose forwarding still owes a push to the carrier",
	        NULL);
	pc->sync_ok = pushes(metrics, "ok");
	pc->sync_failed = pushes(metrics, "failed");
}

static int claim(vox_pg_t *pg, struct sync_row *rows, int *n, vox_error_t *err)
{
	char batch[16];
	const char *params[] = {batch};
	PGresult *res;
	int rc;

	snprintf(batch, sizeof(batch), "%d", SYNC_BATCH);
	rc = vox_pg_execp(
	        pg, "prov_sync_claim",
	        "WITH due AS (SELECT number_id, number_country FROM "
	        "number_configurations WHERE carrier_status = "
	        "'pending_carrier' AND (carrier_next_at IS NULL OR "
	        "carrier_next_at <= now()) ORDER BY carrier_next_at NULLS "
	        "FIRST LIMIT $1::int FOR UPDATE SKIP LOCKED) "
	        "UPDATE number_configurations c SET carrier_next_at = now() + "
	        "interval '" SYNC_LEASE_S " seconds' FROM due JOIN numbers n "
	        "ON n.country = due.number_country AND n.id = due.number_id "
	        "WHERE c.number_id = due.number_id RETURNING "
	        "c.number_id, coalesce(n.carrier_number_id, ''), c.version, "
	        "c.carrier_attempts, c.call_forwarding::text",
	        1, params, &res, err);
	if (rc != 0)
		return rc;
	*n = 0;
	for (int i = 0; i < PQntuples(res) && *n < SYNC_BATCH; i++) {
		struct sync_row *r = &rows[*n];

		snprintf(r->number_id, sizeof(r->number_id), "%s",
		         PQgetvalue(res, i, 0));
		snprintf(r->carrier_id, sizeof(r->carrier_id), "%s",
		         PQgetvalue(res, i, 1));
		r->version = (int)strtol(PQgetvalue(res, i, 2), NULL, 10);
		r->attempts = (int)strtol(PQgetvalue(res, i, 3), NULL, 10);
		r->forwarding = strdup(PQgetvalue(res, i, 4));
		if (r->forwarding == NULL) {
			rc = vox_error_set(err, VOX_ERR_NOMEM, true,
			                   "sync claim: no memory");
			break;
		}
		(*n)++;
	}
	PQclear(res);
	return rc;
}

/* call_forwarding (the routing section, or activation's {"forward_to"})
 * as the carrier's forwarding: the primary destination when enabled. */
int prov_sync_forwarding(const json_t *doc, vox_carrier_forwarding_t *fwd)
{
	vox_routing_doc_t r;

	vox_routing_doc_read(doc, &r);
	memset(fwd, 0, sizeof(*fwd));
	fwd->enabled = r.enabled && r.primary != NULL && r.primary[0] != '\0';
	fwd->forwards_to = fwd->enabled ? r.primary : NULL;
	return 0;
}

static int push(struct prov_ctx *pc, const struct sync_row *r, long long *held,
                vox_error_t *err)
{
	vox_carrier_forwarding_t fwd;
	json_t *doc;
	int rc;

	if (r->carrier_id[0] == '\0')
		return vox_error_set(err, VOX_ERR_NOT_FOUND, false,
		                     "the number has no carrier id");
	doc = json_loads(r->forwarding, 0, NULL);
	if (doc == NULL)
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "call_forwarding unreadable");
	prov_sync_forwarding(doc, &fwd);
	rc = vox_carrier_push_forwarding(pc->carrier, r->carrier_id,
	                                 r->number_id, r->version, &fwd, held,
	                                 err);
	json_decref(doc);
	return rc;
}

static int landed(vox_pg_t *pg, const struct sync_row *r, long long held,
                  vox_error_t *err)
{
	char version[24];
	const char *params[] = {r->number_id, version};

	snprintf(version, sizeof(version), "%lld", held);
	return vox_pg_execp(
	        pg, "prov_sync_landed",
	        "UPDATE number_configurations SET carrier_version = "
	        "GREATEST(carrier_version, $2::int), carrier_status = CASE "
	        "WHEN "
	        "version <= $2::int THEN 'synced' ELSE carrier_status END, "
	        "carrier_attempts = CASE WHEN version <= $2::int THEN 0 ELSE "
	        "carrier_attempts END, carrier_error = CASE WHEN version <= "
	        "$2::int THEN NULL ELSE carrier_error END, carrier_next_at = "
	        "CASE WHEN version <= $2::int THEN NULL ELSE now() END WHERE "
	        "number_id = $1::uuid",
	        2, params, NULL, err);
}

static int failed(vox_pg_t *pg, struct prov_ctx *pc, const struct sync_row *r,
                  const vox_error_t *why, vox_error_t *err)
{
	char delay[24], message[300];
	const char *params[] = {r->number_id, delay, message};
	long ms;

	ms = why->retriable ? vox_backoff_ms(pc->sync_backoff_ms,
	                                     pc->sync_max_backoff_ms,
	                                     r->attempts + 1, 0)
	                    : pc->sync_max_backoff_ms;
	snprintf(delay, sizeof(delay), "%ld", ms);
	snprintf(message, sizeof(message), "%s", why->message);
	return vox_pg_execp(
	        pg, "prov_sync_failed",
	        "UPDATE number_configurations SET carrier_attempts = "
	        "carrier_attempts + 1, carrier_error = $3, carrier_next_at = "
	        "now() + make_interval(secs => $2::bigint / 1000.0) WHERE "
	        "number_id = $1::uuid AND carrier_status = 'pending_carrier'",
	        3, params, NULL, err);
}

static void count_pending(vox_pg_t *pg, struct prov_ctx *pc)
{
	PGresult *res;
	vox_error_t err;

	if (pc->sync_pending == NULL)
		return;
	if (vox_pg_execp(pg, "prov_sync_pending",
	                 "SELECT count(*) FROM number_configurations WHERE "
	                 "carrier_status = 'pending_carrier'",
	                 0, NULL, &res, &err) != 0)
		return;
	vox_gauge_set(pc->sync_pending, atof(PQgetvalue(res, 0, 0)));
	PQclear(res);
}

void prov_config_sync(vox_pg_t *pg, void *ctx)
{
	struct prov_ctx *pc = ctx;
	struct sync_row rows[SYNC_BATCH];
	vox_error_t err, why;
	long long held;
	bool down = false;
	int n = 0;

	memset(rows, 0, sizeof(rows));
	if (claim(pg, rows, &n, &err) != 0) {
		vox_log(VOX_LOG_WARN, "carrier sync claim failed", "error",
		        err.message, NULL);
		goto cleanup;
	}
	for (int i = 0; i < n; i++) {
		const struct sync_row *r = &rows[i];
		char version[16];
		int rc;

		snprintf(version, sizeof(version), "%d", r->version);
		if (down) {
			/* the carrier is down: the rest of the batch waits
			 * too, without a tick spent on timeouts */
			vox_counter_inc(pc->sync_failed);
			rc = failed(pg, pc, r, &why, &err);
		} else if (push(pc, r, &held, &why) == 0) {
			vox_counter_inc(pc->sync_ok);
			rc = landed(pg, r, held, &err);
			vox_log(VOX_LOG_INFO, "forwarding on the carrier",
			        "number_id", r->number_id, "version", version,
			        NULL);
		} else {
			vox_counter_inc(pc->sync_failed);
			rc = failed(pg, pc, r, &why, &err);
			down = why.retriable;
			vox_log(VOX_LOG_WARN, "forwarding push failed",
			        "number_id", r->number_id, "version", version,
			        "error", why.message, NULL);
		}
		if (rc != 0)
			vox_log(VOX_LOG_WARN, "carrier sync state not saved",
			        "number_id", r->number_id, "error", err.message,
			        NULL);
	}
	count_pending(pg, pc);
cleanup:
	for (int i = 0; i < n; i++)
		free(rows[i].forwarding);
}
