/*
 * GET/PATCH /v1/billing/settings (docs/BILLING.md "The billing period"):
 * the account's billing settings (the defaults until a row is made), its
 * standing, credit balance and current period. The customer may change
 * only anchor_day, and only while the account has no invoice (a period
 * already billed would otherwise overlap or leave a gap); tax, grace,
 * terms and the dunning plan are an operator's (voxctl billing).
 *
 * And the purchase block: while the standing is suspended (a dunning
 * suspend step ran), reservations and orders answer 403
 * account_suspended (one primary-key read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "vox_json.h"

/* The settings with the defaults of migration 0027 when there is no row. */
static const char settings_sql[] =
        "SELECT COALESCE(b.anchor_day, 1), COALESCE(b.tax_rate_ppm, 0), "
        "COALESCE(b.grace_days, 3), COALESCE(b.payment_terms_days, 0), "
        "COALESCE(b.dunning_plan, 'standard'), COALESCE(b.standing, "
        "'good'), vox_iso(b.suspended_at), "
        "COALESCE(b.credit_balance_micros, 0), a.currency, a.timezone, "
        "vox_iso(p.period_start), vox_iso(p.period_end), EXISTS (SELECT 1 "
        "FROM invoices i WHERE i.account_id = a.id) FROM accounts a LEFT "
        "JOIN billing_accounts b ON b.account_id = a.id, "
        "billing_period_of(now(), COALESCE(b.anchor_day, 1::smallint), "
        "a.timezone) p WHERE a.id = $1";

static json_t *settings_json(const PGresult *res)
{
	return json_pack(
	        "{s:I, s:I, s:I, s:I, s:s, s:s, s:o, s:I, s:s, s:s, "
	        "s:{s:s, s:s}, s:b}",
	        "anchor_day", billing_micros(res, 0, 0), "tax_rate_ppm",
	        billing_micros(res, 0, 1), "grace_days",
	        billing_micros(res, 0, 2), "payment_terms_days",
	        billing_micros(res, 0, 3), "dunning_plan",
	        PQgetvalue(res, 0, 4), "standing", PQgetvalue(res, 0, 5),
	        "suspended_at",
	        PQgetisnull(res, 0, 6) ? json_null()
	                               : json_string(PQgetvalue(res, 0, 6)),
	        "credit_balance_micros",
	        (json_int_t)strtoll(PQgetvalue(res, 0, 7), NULL, 10),
	        "currency", PQgetvalue(res, 0, 8), "timezone",
	        PQgetvalue(res, 0, 9), "current_period", "start",
	        PQgetvalue(res, 0, 10), "end", PQgetvalue(res, 0, 11),
	        "anchor_day_locked", strcmp(PQgetvalue(res, 0, 12), "t") == 0);
}

void ingress_billing_settings_get(vox_http_req_t *req, void *ctx)
{
	ingress_req_t *ir = ingress_begin(req, ctx);
	PGresult *res;

	if (ir == NULL)
		return;
	const char *params[] = {ir->who.account_id};
	res = ingress_query(ir->in, req, "ingress_billing_settings",
	                    settings_sql, 1, params);
	if (res == NULL)
		return;
	if (PQntuples(res) == 0)
		ingress_error(req, 404, "account_not_found",
		              "no account has this id", NULL);
	else
		vox_http_reply_json(req, 200, settings_json(res));
	PQclear(res);
}

struct anchor_change {
	const char *account, *anchor;
	bool locked;
	PGresult *row;
};

/* The row made (or locked), no invoice yet, then the change: the
 * invoicing worker's generation reads anchor_day under the same row. */
static int anchor_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct anchor_change *c = arg;
	const char *params[] = {c->account, c->anchor};
	PGresult *res = NULL;
	int rc;

	rc = vox_pg_execp(pg, "ingress_billing_row",
	                  "INSERT INTO billing_accounts (account_id) VALUES "
	                  "($1) ON CONFLICT (account_id) DO NOTHING",
	                  1, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "ingress_billing_lock",
		        "SELECT EXISTS (SELECT 1 FROM invoices WHERE "
		        "account_id = $1) FROM billing_accounts WHERE "
		        "account_id = $1 FOR UPDATE",
		        1, params, &res, err);
	if (rc != 0)
		return rc;
	c->locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (c->locked)
		return vox_error_set(err, VOX_ERR_CONFLICT, false,
		                     "the account has invoices");
	rc = vox_pg_execp(pg, "ingress_billing_anchor",
	                  "UPDATE billing_accounts SET anchor_day = "
	                  "$2::smallint WHERE account_id = $1",
	                  2, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(pg, "ingress_billing_settings", settings_sql,
		                  1, params, &c->row, err);
	return rc;
}

void ingress_billing_settings_patch(vox_http_req_t *req, void *ctx)
{
	static const char *const allowed[] = {"anchor_day", NULL};
	ingress_req_t *ir = ingress_begin(req, ctx);
	struct anchor_change c = {0};
	vox_error_t err = {0};
	const json_t *v;
	long long day;
	char anchor[8];
	json_t *body;
	vox_pg_t *pg;
	int rc;

	if (ir == NULL || (body = ingress_body(req, allowed, false)) == NULL)
		return;
	v = json_object_get(body, "anchor_day");
	if (!billing_whole_number(v, &day) || day < 1 || day > 31) {
		ingress_error(req, 400, "invalid_body",
		              "anchor_day must be an integer 1..31 (the day of "
		              "the month periods start on; a shorter month "
		              "starts on its last day)",
		              json_pack("{s:s}", "field", "anchor_day"));
		json_decref(body);
		return;
	}
	snprintf(anchor, sizeof(anchor), "%d", (int)day);
	json_decref(body);
	if ((pg = ingress_pg(ir->in, req)) == NULL)
		return;
	c.account = ir->who.account_id;
	c.anchor = anchor;
	rc = vox_pg_transaction(pg, anchor_tx, &c, &err);
	vox_pg_pool_release(ir->in->pg_pool, pg);
	if (rc == 0)
		vox_http_reply_json(req, 200, settings_json(c.row));
	else if (c.locked)
		ingress_error(
		        req, 409, "anchor_day_locked",
		        "the anchor day can change only while the account "
		        "has no invoice",
		        NULL);
	else
		ingress_error(req, 503, "database_unavailable", err.message,
		              NULL);
	PQclear(c.row);
}

bool billing_purchase_blocked(vox_http_req_t *req, ingress_req_t *ir)
{
	const char *params[] = {ir->who.account_id};
	PGresult *res = ingress_query(ir->in, req, "ingress_billing_standing",
	                              "SELECT standing FROM billing_accounts "
	                              "WHERE account_id = $1",
	                              1, params);
	bool blocked;

	if (res == NULL)
		return true; /* answered 503 */
	blocked = PQntuples(res) == 1 &&
	          strcmp(PQgetvalue(res, 0, 0), "suspended") == 0;
	PQclear(res);
	if (blocked)
		ingress_error(
		        req, 403, "account_suspended",
		        "the account's billing is suspended for an unpaid "
		        "invoice: no new purchases until it is paid",
		        json_pack("{s:s}", "standing", "suspended"));
	return blocked;
}
