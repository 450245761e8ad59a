/*
 * Ordering held numbers, and the life of an owned number: activate (with
 * forwarding), deactivate (suspend), release to the carrier; plus the
 * sweep that returns expired holds to the pool. A carrier that keeps
 * failing (after the adapter's retries) fails the operation with the reason
 * and leaves the number as it was: nothing half-done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provisioning.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_uuid.h"

#define MAX_ITEMS 10

struct held {
	char country[3], e164[24], reservation[VOX_UUID_STRLEN];
	char setup[24], monthly[24], currency[4];
};

static int load_held(vox_pg_t *pg, const char *group, const char *account,
                     struct held *held, int *n, vox_error_t *err)
{
	const char *params[] = {group, account};
	PGresult *res;
	int rc;

	rc = vox_pg_execp(
	        pg, "prov_order_held",
	        "SELECT r.country, r.e164, r.id, n.setup_fee_micros, "
	        "n.monthly_rate_micros, n.currency FROM reservations r JOIN "
	        "numbers n ON n.country = r.country AND n.e164 = r.e164 WHERE "
	        "r.group_id = $1 AND r.account_id = $2 AND r.status = 'active' "
	        "AND r.expires_at > now() ORDER BY r.e164 FOR UPDATE OF r",
	        2, params, &res, err);
	if (rc != 0)
		return rc;
	*n = PQntuples(res) < MAX_ITEMS ? PQntuples(res) : MAX_ITEMS;
	for (int i = 0; i < *n; i++) {
		snprintf(held[i].country, sizeof(held[i].country), "%s",
		         PQgetvalue(res, i, 0));
		snprintf(held[i].e164, sizeof(held[i].e164), "%s",
		         PQgetvalue(res, i, 1));
		snprintf(held[i].reservation, sizeof(held[i].reservation), "%s",
		         PQgetvalue(res, i, 2));
		snprintf(held[i].setup, sizeof(held[i].setup), "%s",
		         PQgetvalue(res, i, 3));
		snprintf(held[i].monthly, sizeof(held[i].monthly), "%s",
		         PQgetvalue(res, i, 4));
		snprintf(held[i].currency, sizeof(held[i].currency), "%s",
		         PQgetvalue(res, i, 5));
	}
	PQclear(res);
	return 0;
}

/* One ordered number: owned (purchased) or back to the pool. */
static int order_item(vox_pg_t *pg, const vox_message_t *msg,
                      const char *order_id, const struct held *h,
                      const vox_carrier_order_result_t *r, json_t *items,
                      vox_error_t *err)
{
	char item_id[VOX_UUID_STRLEN];
	const char *status = r->ok ? "provisioned" : "failed";
	int rc;

	vox_uuid7(item_id);
	const char *params[] = {item_id,         order_id,
	                        h->country,      h->e164,
	                        h->reservation,  status,
	                        h->setup,        h->monthly,
	                        h->currency,     r->ok ? NULL : r->error,
	                        msg->account_id, r->ok ? r->carrier_id : NULL};
	rc = vox_pg_execp(
	        pg, "prov_order_item",
	        "WITH item AS (INSERT INTO order_items (id, order_id, country, "
	        "e164, reservation_id, status, setup_fee_micros, "
	        "monthly_rate_micros, currency, failure_reason) VALUES ($1, "
	        "$2, "
	        "$3, $4, $5, $6, $7::bigint, $8::bigint, $9, $10)), "
	        "res AS (UPDATE reservations SET status = CASE WHEN $6 = "
	        "'provisioned' THEN 'converted' ELSE 'released' END, closed_at "
	        "= "
	        "now() WHERE id = $5) "
	        "UPDATE numbers SET status = CASE WHEN $6 = 'provisioned' THEN "
	        "'purchased' ELSE 'available' END, account_id = CASE WHEN $6 = "
	        "'provisioned' THEN $11::uuid END, carrier = 'sandbox', "
	        "carrier_number_id = $12, purchased_at = CASE WHEN $6 = "
	        "'provisioned' THEN now() END WHERE country = $3 AND e164 = $4 "
	        "RETURNING id",
	        12, params, NULL, err);
	if (rc != 0)
		return rc;
	json_array_append_new(
	        items, json_pack("{s:s, s:s, s:s?}", "phone_number", h->e164,
	                         "status", r->ok ? "purchased" : "failed",
	                         "reason", r->ok ? NULL : r->error));
	if (!r->ok)
		return 0;
	return prov_emit(pg, "number.purchased", msg, h->e164,
	                 json_pack("{s:s, s:s}", "phone_number", h->e164,
	                           "order_id", order_id),
	                 err);
}

static int order_record(vox_pg_t *pg, const vox_message_t *msg,
                        const char *order_id, const char *status,
                        const char *currency, const char *reason,
                        vox_error_t *err)
{
	const char *params[] = {
	        order_id, msg->account_id,
	        status,   vox_json_str(msg->data, "operation_id"),
	        currency, reason};

	return vox_pg_execp(
	        pg, "prov_order_record",
	        "INSERT INTO orders (id, account_id, status, operation_id, "
	        "currency, failure_reason, completed_at) VALUES ($1, $2, $3, "
	        "$4, $5, $6, CASE WHEN $3 IN ('completed', "
	        "'partially_completed', 'failed') THEN now() END) ON CONFLICT "
	        "(id) DO UPDATE SET status = EXCLUDED.status, failure_reason = "
	        "EXCLUDED.failure_reason, completed_at = EXCLUDED.completed_at",
	        6, params, NULL, err);
}

int prov_order(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
               vox_error_t *err)
{
	static const char *const ids[] = {"operation_id", "order_id",
	                                  "reservation_id", NULL};
	struct prov_ctx *pc = ctx;
	const char *order_id = vox_json_str(msg->data, "order_id");
	vox_carrier_order_result_t results[MAX_ITEMS];
	const char *e164s[MAX_ITEMS];
	struct held held[MAX_ITEMS];
	vox_error_t carrier_err;
	json_t *items;
	int n = 0, ok = 0, rc;

	if ((rc = prov_need(pg, msg, ids, err)) != 0)
		return rc;
	rc = load_held(pg, vox_json_str(msg->data, "reservation_id"),
	               msg->account_id, held, &n, err);
	if (rc != 0)
		return rc;
	if (n == 0)
		return prov_fail(pg, msg, "order.create",
		                 "reservation_not_active",
		                 "the reservation is not active: expired, "
		                 "already ordered or unknown",
		                 err);
	rc = order_record(pg, msg, order_id, "processing", held[0].currency,
	                  NULL, err);
	if (rc != 0)
		return rc;
	for (int i = 0; i < n; i++)
		e164s[i] = held[i].e164;
	/* The reservation id is the carrier's Idempotency-Key: a retry, a
	 * redelivery or a second order of the same reservation (after an
	 * answer was lost) gets the carrier's first answer, never a second
	 * purchase. */
	if (vox_carrier_order(pc->carrier, e164s, n,
	                      vox_json_str(msg->data, "reservation_id"),
	                      results, &carrier_err) != 0) {
		rc = order_record(pg, msg, order_id, "failed", held[0].currency,
		                  carrier_err.message, err);
		if (rc != 0)
			return rc;
		return prov_fail(pg, msg, "order.create", "carrier_unavailable",
		                 carrier_err.message, err);
	}
	items = json_array();
	for (int i = 0; i < n && rc == 0; i++) {
		rc = order_item(pg, msg, order_id, &held[i], &results[i], items,
		                err);
		ok += results[i].ok;
	}
	if (rc == 0)
		rc = order_record(pg, msg, order_id,
		                  ok == n   ? "completed"
		                  : ok == 0 ? "failed"
		                            : "partially_completed",
		                  held[0].currency, NULL, err);
	if (rc != 0) {
		json_decref(items);
		return rc;
	}
	if (ok == 0) {
		json_decref(items);
		return prov_fail(pg, msg, "order.create", "carrier_refused",
		                 results[0].error, err);
	}
	return prov_done(pg, msg, "order.create",
	                 json_pack("{s:s, s:s, s:o}", "order_id", order_id,
	                           "status", ok == n ? "complete" : "partial",
	                           "phone_numbers", items),
	                 err);
}

struct owned {
	char country[3], e164[24], status[16], carrier_id[64];
};

/* The caller's number, locked for the change; false when not found. */
static int load_owned(vox_pg_t *pg, const vox_message_t *msg, struct owned *num,
                      bool *found, vox_error_t *err)
{
	const char *params[] = {vox_json_str(msg->data, "number_id"),
	                        msg->account_id};
	PGresult *res;
	int rc;

	rc = vox_pg_execp(pg, "prov_owned",
	                  "SELECT country, e164, status, "
	                  "coalesce(carrier_number_id, '') FROM numbers WHERE "
	                  "id = $1 AND account_id = $2 FOR UPDATE",
	                  2, params, &res, err);
	if (rc != 0)
		return rc;
	*found = PQntuples(res) == 1;
	if (*found) {
		snprintf(num->country, sizeof(num->country), "%s",
		         PQgetvalue(res, 0, 0));
		snprintf(num->e164, sizeof(num->e164), "%s",
		         PQgetvalue(res, 0, 1));
		snprintf(num->status, sizeof(num->status), "%s",
		         PQgetvalue(res, 0, 2));
		snprintf(num->carrier_id, sizeof(num->carrier_id), "%s",
		         PQgetvalue(res, 0, 3));
	}
	PQclear(res);
	return 0;
}

/* Looks the number up and checks the transition; 1 when the handler
 * should go on, 0 when it already recorded the failure. */
static int lifecycle_begin(vox_pg_t *pg, const vox_message_t *msg,
                           const char *kind, const char *const *from,
                           struct owned *num, vox_error_t *err)
{
	static const char *const ids[] = {"operation_id", "number_id", NULL};
	char reason[160];
	bool found;
	int rc;

	if ((rc = prov_need(pg, msg, ids, err)) != 0)
		return rc;
	rc = load_owned(pg, msg, num, &found, err);
	if (rc != 0)
		return rc;
	if (!found)
		return prov_fail(pg, msg, kind, "number_not_found",
		                 "no number of this account has this id", err);
	for (size_t i = 0; from[i] != NULL; i++)
		if (strcmp(from[i], num->status) == 0)
			return 1;
	snprintf(reason, sizeof(reason), "the number is %s", num->status);
	return prov_fail(pg, msg, kind, "invalid_state", reason, err);
}

static int set_status(vox_pg_t *pg, const vox_message_t *msg,
                      const struct owned *num, const char *status,
                      const char *forward_to, vox_error_t *err)
{
	const char *params[] = {num->country, num->e164, status,
	                        msg->account_id, forward_to};

	return vox_pg_execp(
	        pg, "prov_set_status",
	        "WITH n AS (UPDATE numbers SET status = $3, activated_at = "
	        "CASE "
	        "WHEN $3 = 'active' THEN coalesce(activated_at, now()) ELSE "
	        "activated_at END WHERE country = $1 AND e164 = $2 RETURNING "
	        "country, id) INSERT INTO number_configurations (account_id, "
	        "number_country, number_id, call_forwarding) SELECT $4, "
	        "country, id, CASE WHEN $5::text IS NULL THEN '{}'::jsonb ELSE "
	        "jsonb_build_object('enabled', true, 'primary_destination', "
	        "$5::text) END FROM n ON CONFLICT (number_id) DO UPDATE SET "
	        "call_forwarding = CASE WHEN $5::text IS NULL THEN "
	        "number_configurations.call_forwarding ELSE "
	        "EXCLUDED.call_forwarding END, version = "
	        "number_configurations.version + 1",
	        5, params, NULL, err);
}

static int configure(vox_pg_t *pg, const vox_message_t *msg,
                     struct prov_ctx *pc, const char *kind, bool active,
                     const char *const *from, const char *event,
                     vox_error_t *err)
{
	const char *forward_to = vox_json_str(msg->data, "forward_to");
	const char *to = active ? "active" : "suspended";
	vox_error_t carrier_err;
	struct owned num;
	int rc;

	rc = lifecycle_begin(pg, msg, kind, from, &num, err);
	if (rc != 1)
		return rc;
	if (vox_carrier_configure(pc->carrier, num.carrier_id, active,
	                          active ? forward_to : NULL,
	                          &carrier_err) != 0)
		return prov_fail(pg, msg, kind,
		                 carrier_err.code == VOX_ERR_INVALID
		                         ? "carrier_refused"
		                         : "carrier_unavailable",
		                 carrier_err.message, err);
	rc = set_status(pg, msg, &num, to, active ? forward_to : NULL, err);
	if (rc == 0)
		rc = prov_emit(pg, event, msg, num.e164,
		               json_pack("{s:s, s:s, s:s?}", "phone_number",
		                         num.e164, "status", to, "forward_to",
		                         active ? forward_to : NULL),
		               err);
	if (rc != 0)
		return rc;
	return prov_done(pg, msg, kind,
	                 json_pack("{s:s, s:s, s:s}", "number_id",
	                           vox_json_str(msg->data, "number_id"),
	                           "phone_number", num.e164, "status", to),
	                 err);
}

int prov_activate(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                  vox_error_t *err)
{
	static const char *const from[] = {"purchased", "suspended", "active",
	                                   NULL};
	return configure(pg, msg, ctx, "number.activate", true, from,
	                 "number.activated", err);
}

int prov_deactivate(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                    vox_error_t *err)
{
	static const char *const from[] = {"active", NULL};
	return configure(pg, msg, ctx, "number.deactivate", false, from,
	                 "number.deactivated", err);
}

int prov_release(vox_pg_t *pg, const vox_message_t *msg, void *ctx,
                 vox_error_t *err)
{
	static const char *const from[] = {"purchased", "active", "suspended",
	                                   NULL};
	struct prov_ctx *pc = ctx;
	vox_error_t carrier_err;
	struct owned num;
	int rc;

	rc = lifecycle_begin(pg, msg, "number.release", from, &num, err);
	if (rc != 1)
		return rc;
	if (vox_carrier_release(pc->carrier, num.carrier_id, &carrier_err) !=
	            0 &&
	    carrier_err.code != VOX_ERR_NOT_FOUND)
		return prov_fail(pg, msg, "number.release",
		                 "carrier_unavailable", carrier_err.message,
		                 err);
	const char *params[] = {num.country, num.e164};
	rc = vox_pg_execp(
	        pg, "prov_release",
	        "WITH n AS (UPDATE numbers SET status = 'available', "
	        "account_id = NULL, carrier_number_id = NULL, "
	        "released_at = now(), activated_at = NULL, "
	        "purchased_at = NULL WHERE country = $1 AND e164 = $2 "
	        "RETURNING id) DELETE FROM number_configurations WHERE "
	        "number_id IN (SELECT id FROM n)",
	        2, params, NULL, err);
	if (rc == 0)
		rc = prov_emit(pg, "number.released", msg, num.e164,
		               json_pack("{s:s}", "phone_number", num.e164),
		               err);
	if (rc != 0)
		return rc;
	return prov_done(pg, msg, "number.release",
	                 json_pack("{s:s, s:s}", "phone_number", num.e164,
	                           "status", "released"),
	                 err);
}

static int expire_in_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	PGresult *res;
	int rc;

	(void)arg;
	rc = vox_pg_execp(
	        pg, "prov_expire",
	        "WITH r AS (UPDATE reservations SET status = 'expired', "
	        "closed_at = now() WHERE status = 'active' AND expires_at <= "
	        "now() RETURNING country, e164, account_id, group_id) "
	        "UPDATE numbers n SET status = 'available' FROM r WHERE "
	        "n.country = r.country AND n.e164 = r.e164 AND n.status = "
	        "'reserved' RETURNING n.e164, r.account_id, r.group_id",
	        0, NULL, &res, err);
	if (rc != 0)
		return rc;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++)
		rc = vox_event_emit(
		        pg, "reservation.expired", PQgetvalue(res, i, 0),
		        PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), NULL,
		        json_pack("{s:s, s:s}", "phone_number",
		                  PQgetvalue(res, i, 0), "reservation_id",
		                  PQgetvalue(res, i, 2)),
		        err);
	PQclear(res);
	return rc;
}

void prov_expire(vox_pg_t *pg, void *ctx)
{
	vox_error_t err;

	(void)ctx;
	if (vox_pg_transaction(pg, expire_in_tx, NULL, &err) != 0)
		vox_log(VOX_LOG_WARN, "reservation expiry sweep failed",
		        "error", err.message, NULL);
}
