/*
 * dunning: the ladder (docs/BILLING.md "Dunning"). Every tick, on the
 * tick's own connection:
 *
 * 1. standing: accounts with an unpaid invoice past its due date become
 *    past_due (from good); past_due accounts with none left go back to good
 *    (a payment racing the first statement cannot leave an account
 *    past_due for nothing).
 * 2. the steps that are due: for each unpaid invoice past its due date
 *    (finalized or uncollectible, amount_due > 0), each step of the
 *    account's plan (dunning_plans.steps ordered by after_days; step_no is
 *    that order) with due_at + after_days * VOX_BILLING_DAY_S <= now and no
 *    dunning_steps_done row. Each runs in a transaction of its own that
 *    locks the invoice and checks again that it is still unpaid (a payment
 *    landing between the query and the step wins: service already paid for
 *    is never blocked), then records the step (PRIMARY KEY: never twice)
 *    and acts:
 *    - remind: invoice.payment_reminder;
 *    - suspend: standing suspended, every owned number held
 *      (billing_hold_at: the routing decision rejects it, the ingress
 *      refuses purchases), account.billing_suspended;
 *    - release: one vox.number.release_requested per held number, with an
 *      operation (kind number.release) as the ingress sends it for DELETE
 *      /v1/numbers/{id}, through the outbox.
 *    A reminder that is due while a later step of the same invoice is due
 *    too (the worker was down, a plan changed, a day shorter than a tick)
 *    is recorded as skipped and not sent: the later step's notice says
 *    more. Suspend and release always run, in order.
 *
 * VOX_DUNNING_PLANS ("a,b"; unset or empty: every plan) limits the steps
 * to the accounts on those plans: a staged roll-out of a plan, and the
 * tests, whose workers compress the day (VOX_BILLING_DAY_S=1) and must not
 * walk other suites' invoices down the ladder on the shared database (a
 * setting of the worker, main.c).
 *
 * inv_dunning_lift runs in the transaction that settles an invoice.
 *
 * Lock order, as everywhere on invoices: the invoice, then the account's
 * billing_accounts row, then its numbers. The lift takes the billing row
 * FOR UPDATE before it looks for past-due invoices, so two payments of the
 * account's last two unpaid invoices cannot both miss each other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invoicing.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_ops.h"
#include "vox_pg.h"
#include "vox_time.h"
#include "vox_uuid.h"

/* The states a number is owned in (migration 0027's ownership). */
#define OWNED "('purchased', 'active', 'suspended')"
/* An invoice still owed and past its due date. */
#define PAST_DUE                                                               \
	"i.status IN ('finalized', 'uncollectible') AND "                      \
	"i.amount_due_micros > 0 AND i.due_at IS NOT NULL AND i.due_at < "     \
	"now()"

struct step {
	char invoice[VOX_UUID_STRLEN], account[VOX_UUID_STRLEN];
	char action[16];
	int step_no;
	bool skip;
	long day_s;
};

static void tick_log(const char *what, const vox_error_t *err)
{
	vox_log(VOX_LOG_ERROR, "dunning tick", "step", what, "error",
	        err->message, NULL);
}

/* 1. standing from the invoices. */
static void standing_refresh(vox_pg_t *pg, struct invoicing_ctx *ic)
{
	char limit[24];
	const char *params[] = {limit};
	vox_error_t err;

	snprintf(limit, sizeof(limit), "%ld", ic->tick_batch);
	if (vox_pg_execp(pg, "dun_past_due",
	                 "INSERT INTO billing_accounts (account_id, standing) "
	                 "SELECT DISTINCT i.account_id, 'past_due' FROM "
	                 "invoices i WHERE " PAST_DUE
	                 " AND NOT EXISTS (SELECT 1 FROM billing_accounts b "
	                 "WHERE b.account_id = i.account_id AND b.standing <> "
	                 "'good') LIMIT $1::int ON CONFLICT (account_id) DO "
	                 "UPDATE SET standing = 'past_due' WHERE "
	                 "billing_accounts.standing = 'good'",
	                 1, params, NULL, &err) != 0)
		tick_log("past_due", &err);
	if (vox_pg_execp(
	            pg, "dun_good_again",
	            "UPDATE billing_accounts b SET standing = 'good' WHERE "
	            "b.standing = 'past_due' AND NOT EXISTS (SELECT 1 "
	            "FROM invoices i WHERE i.account_id = b.account_id "
	            "AND " PAST_DUE ")",
	            0, NULL, NULL, &err) != 0)
		tick_log("good_again", &err);
}

/* The steps due now, oldest invoice first, at most tick_batch. A step of
 * a plan that is not {after_days: 0..99999, action: remind|suspend|release}
 * is ignored (plans are written by operators). */
static const char due_sql[] =
        "WITH inv AS (SELECT i.id, i.account_id, i.due_at, p.steps FROM "
        "invoices i LEFT JOIN billing_accounts b ON b.account_id = "
        "i.account_id JOIN dunning_plans p ON p.name = "
        "coalesce(b.dunning_plan, 'standard') WHERE " PAST_DUE
        " AND ($3::text IS NULL OR p.name = ANY (string_to_array($3, ','))) "
        "AND (SELECT count(*) FROM dunning_steps_done d WHERE d.invoice_id "
        "= i.id) < jsonb_array_length(p.steps)), "
        "steps AS (SELECT inv.id, inv.account_id, inv.due_at, s.step->>"
        "'action' AS action, (s.step->>'after_days')::int AS after_days, "
        "(row_number() OVER (PARTITION BY inv.id ORDER BY (s.step->>"
        "'after_days')::int, s.ord) - 1)::int AS step_no FROM inv CROSS JOIN "
        "LATERAL jsonb_array_elements(inv.steps) WITH ORDINALITY AS s(step, "
        "ord) WHERE jsonb_typeof(s.step) = 'object' AND s.step->>'after_days' "
        "~ '^[0-9]{1,5}$' AND s.step->>'action' IN ('remind', 'suspend', "
        "'release')), "
        "due AS (SELECT *, max(step_no) OVER (PARTITION BY id) AS last_due "
        "FROM steps WHERE due_at + after_days * $1::bigint * interval '1 "
        "second' <= now()) "
        "SELECT id, account_id, step_no, action, action = 'remind' AND "
        "step_no < last_due FROM due WHERE NOT EXISTS (SELECT 1 FROM "
        "dunning_steps_done d WHERE d.invoice_id = due.id AND d.step_no = "
        "due.step_no) ORDER BY due_at, id, step_no LIMIT $2::int";

static int remind(vox_pg_t *pg, const struct step *s, const PGresult *inv,
                  vox_error_t *err)
{
	json_t *data =
	        json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:i}",
	                  "invoice_id", s->invoice, "account_id", s->account,
	                  "number", PQgetvalue(inv, 0, 3), "amount_due_micros",
	                  (json_int_t)strtoll(PQgetvalue(inv, 0, 2), NULL, 10),
	                  "currency", PQgetvalue(inv, 0, 4), "due_at",
	                  PQgetvalue(inv, 0, 5), "days_past_due",
	                  (json_int_t)strtoll(PQgetvalue(inv, 0, 6), NULL, 10),
	                  "step", s->step_no);

	if (data == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	return vox_event_emit(pg, "invoice.payment_reminder", s->account,
	                      s->invoice, s->account, NULL, data, err);
}

/* The account's billing row, made with the defaults if missing, locked;
 * its standing in out. */
static int billing_lock(vox_pg_t *pg, const char *account, char out[16],
                        vox_error_t *err)
{
	const char *params[] = {account};
	PGresult *res;
	int rc;

	rc = vox_pg_execp(pg, "dun_billing_make",
	                  "INSERT INTO billing_accounts (account_id) VALUES "
	                  "($1::uuid) ON CONFLICT (account_id) DO NOTHING",
	                  1, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(pg, "dun_billing_lock",
		                  "SELECT standing FROM billing_accounts WHERE "
		                  "account_id = $1::uuid FOR UPDATE",
		                  1, params, &res, err);
	if (rc != 0)
		return rc;
	snprintf(out, 16, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return 0;
}

static int suspend(vox_pg_t *pg, const struct step *s, vox_error_t *err)
{
	const char *params[] = {s->account};
	char standing[16];
	long long held;
	PGresult *res;
	int rc;

	if ((rc = billing_lock(pg, s->account, standing, err)) != 0)
		return rc;
	rc = vox_pg_execp(pg, "dun_suspend",
	                  "UPDATE billing_accounts SET standing = 'suspended', "
	                  "suspended_at = coalesce(suspended_at, now()) WHERE "
	                  "account_id = $1::uuid",
	                  1, params, NULL, err);
	if (rc == 0)
		rc = vox_pg_execp(
		        pg, "dun_hold",
		        "WITH h AS (UPDATE numbers SET billing_hold_at = now() "
		        "WHERE account_id = $1::uuid AND status IN " OWNED
		        " AND billing_hold_at IS NULL RETURNING id) SELECT "
		        "(SELECT count(*) FROM h) + (SELECT count(*) FROM "
		        "numbers WHERE account_id = $1::uuid AND status "
		        "IN " OWNED " AND billing_hold_at IS NOT NULL)",
		        1, params, &res, err);
	if (rc != 0)
		return rc;
	held = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	vox_log(VOX_LOG_INFO, "account suspended for an unpaid invoice",
	        "account_id", s->account, "invoice_id", s->invoice, NULL);
	if (strcmp(standing, "suspended") == 0)
		return 0; /* an earlier invoice suspended it: told already */
	return vox_event_emit(pg, "account.billing_suspended", s->account,
	                      s->account, s->account, NULL,
	                      json_pack("{s:s, s:s, s:I}", "account_id",
	                                s->account, "invoice_id", s->invoice,
	                                "numbers", (json_int_t)held),
	                      err);
}

/* One release command, as the ingress sends it for DELETE
 * /v1/numbers/{id}: an operation (accepted here, in the step's
 * transaction) and vox.number.release_requested keyed by the E.164. */
static int release_one(vox_pg_t *pg, const struct step *s,
                       const char *number_id, const char *e164,
                       vox_error_t *err)
{
	char op_id[VOX_UUID_STRLEN], subject[64], at[40], *request;
	json_t *data;
	vox_op_t op;
	int rc;

	vox_uuid7(op_id);
	snprintf(subject, sizeof(subject), "operations/%s", op_id);
	vox_time_now_rfc3339(at, sizeof(at));
	data = json_pack("{s:s, s:s}", "number_id", number_id, "operation_id",
	                 op_id);
	request = data ? vox_json_dump(data) : NULL;
	if (request == NULL) {
		json_decref(data);
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	}
	memset(&op, 0, sizeof(op));
	op.id = op_id;
	op.account_id = s->account;
	op.kind = "number.release";
	op.subject = subject;
	op.request_json = request;
	op.at = at;
	rc = vox_op_accept(pg, &op, err);
	free(request);
	if (rc != 0) {
		json_decref(data);
		return rc;
	}
	vox_log(VOX_LOG_INFO, "releasing a held number for an unpaid invoice",
	        "account_id", s->account, "invoice_id", s->invoice,
	        "phone_number", e164, "operation_id", op_id, NULL);
	return vox_event_emit(pg, "vox.number.release_requested", e164, subject,
	                      s->account, NULL, data, err);
}

static int release(vox_pg_t *pg, const struct step *s, vox_error_t *err)
{
	const char *params[] = {s->account};
	char standing[16];
	PGresult *res;
	int rc;

	if ((rc = billing_lock(pg, s->account, standing, err)) != 0)
		return rc;
	rc = vox_pg_execp(pg, "dun_held",
	                  "SELECT id, e164 FROM numbers WHERE account_id = "
	                  "$1::uuid AND status IN " OWNED
	                  " AND billing_hold_at IS NOT NULL ORDER BY e164 FOR "
	                  "UPDATE",
	                  1, params, &res, err);
	if (rc != 0)
		return rc;
	for (int i = 0; rc == 0 && i < PQntuples(res); i++)
		rc = release_one(pg, s, PQgetvalue(res, i, 0),
		                 PQgetvalue(res, i, 1), err);
	PQclear(res);
	return rc;
}

static int step_run(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	const struct step *s = arg;
	char day_s[24], step_no[16];
	const char *params[] = {s->invoice, day_s};
	const char *rec[] = {s->invoice, step_no, s->action,
	                     s->skip ? "skipped" : "done"};
	PGresult *inv, *res;
	bool unpaid, recorded;
	int rc;

	snprintf(day_s, sizeof(day_s), "%ld", s->day_s);
	snprintf(step_no, sizeof(step_no), "%d", s->step_no);
	rc = vox_pg_execp(
	        pg, "dun_invoice_lock",
	        "SELECT i.account_id, i.status, i.amount_due_micros, "
	        "coalesce(i.number, ''), i.currency, vox_iso(i.due_at), "
	        "floor(extract(epoch FROM now() - i.due_at) / $2::bigint)::"
	        "bigint, i.status IN ('finalized', 'uncollectible') AND "
	        "i.amount_due_micros > 0 FROM invoices i WHERE i.id = $1::uuid "
	        "FOR UPDATE",
	        2, params, &inv, err);
	if (rc != 0)
		return rc;
	unpaid = PQntuples(inv) == 1 && strcmp(PQgetvalue(inv, 0, 7), "t") == 0;
	if (!unpaid) { /* paid (or voided) since the query: nothing */
		PQclear(inv);
		return 0;
	}
	rc = vox_pg_execp(
	        pg, "dun_step_record",
	        "INSERT INTO dunning_steps_done (invoice_id, step_no, "
	        "action, outcome) VALUES ($1::uuid, $2::int, $3, $4) "
	        "ON CONFLICT DO NOTHING RETURNING 1",
	        4, rec, &res, err);
	if (rc != 0) {
		PQclear(inv);
		return rc;
	}
	recorded = PQntuples(res) == 1;
	PQclear(res);
	if (!recorded || s->skip) /* another worker ran it; or superseded */
		rc = 0;
	else if (strcmp(s->action, "remind") == 0)
		rc = remind(pg, s, inv, err);
	else if (strcmp(s->action, "suspend") == 0)
		rc = suspend(pg, s, err);
	else
		rc = release(pg, s, err);
	PQclear(inv);
	return rc;
}

/* 2. the steps that are due, each in its own transaction. */
static void steps_run(vox_pg_t *pg, struct invoicing_ctx *ic)
{
	const char *plans = ic->dunning_plans;
	char day_s[24], limit[24];
	const char *params[] = {day_s, limit,
	                        plans != NULL && *plans != '\0' ? plans : NULL};
	vox_error_t err;
	PGresult *res;

	snprintf(day_s, sizeof(day_s), "%ld", ic->day_s);
	snprintf(limit, sizeof(limit), "%ld", ic->tick_batch);
	if (vox_pg_execp(pg, "dun_due", due_sql, 3, params, &res, &err) != 0) {
		tick_log("due", &err);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct step s = {0};

		snprintf(s.invoice, sizeof(s.invoice), "%s",
		         PQgetvalue(res, i, 0));
		snprintf(s.account, sizeof(s.account), "%s",
		         PQgetvalue(res, i, 1));
		s.step_no = (int)strtol(PQgetvalue(res, i, 2), NULL, 10);
		snprintf(s.action, sizeof(s.action), "%s",
		         PQgetvalue(res, i, 3));
		s.skip = strcmp(PQgetvalue(res, i, 4), "t") == 0;
		s.day_s = ic->day_s;
		if (vox_pg_transaction(pg, step_run, &s, &err) != 0)
			vox_log(VOX_LOG_ERROR,
			        "dunning step failed (tried "
			        "again next tick)",
			        "invoice_id", s.invoice, "action", s.action,
			        "error", err.message, NULL);
	}
	PQclear(res);
}

void inv_tick_dunning(vox_pg_t *pg, struct invoicing_ctx *ic)
{
	standing_refresh(pg, ic);
	steps_run(pg, ic);
}

int inv_dunning_lift(vox_pg_t *pg, const char *account_id,
                     const char *traceparent, vox_error_t *err)
{
	const char *params[] = {account_id};
	char standing[16];
	long long cleared;
	PGresult *res;
	bool owed;
	int rc;

	rc = vox_pg_execp(pg, "dun_lift_lock",
	                  "SELECT standing FROM billing_accounts WHERE "
	                  "account_id = $1::uuid FOR UPDATE",
	                  1, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 0) { /* never billed late: nothing held */
		PQclear(res);
		return 0;
	}
	snprintf(standing, sizeof(standing), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	/* a statement after the lock: it sees what a payment of another
	 * invoice of the account committed while we waited */
	rc = vox_pg_execp(pg, "dun_lift_owed",
	                  "SELECT EXISTS (SELECT 1 FROM invoices i WHERE "
	                  "i.account_id = $1::uuid AND " PAST_DUE ")",
	                  1, params, &res, err);
	if (rc != 0)
		return rc;
	owed = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (owed)
		return 0;
	rc = vox_pg_execp(
	        pg, "dun_lift_holds",
	        "WITH c AS (UPDATE numbers SET billing_hold_at = NULL "
	        "WHERE account_id = $1::uuid AND billing_hold_at IS "
	        "NOT NULL RETURNING 1) SELECT count(*) FROM c",
	        1, params, &res, err);
	if (rc != 0)
		return rc;
	cleared = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (strcmp(standing, "good") == 0)
		return 0;
	rc = vox_pg_execp(pg, "dun_lift_good",
	                  "UPDATE billing_accounts SET standing = 'good', "
	                  "suspended_at = NULL WHERE account_id = $1::uuid",
	                  1, params, NULL, err);
	if (rc != 0)
		return rc;
	vox_log(VOX_LOG_INFO, "account reinstated: nothing past due",
	        "account_id", account_id, NULL);
	return vox_event_emit(pg, "account.billing_reinstated", account_id,
	                      account_id, account_id, traceparent,
	                      json_pack("{s:s, s:s, s:I}", "account_id",
	                                account_id, "previous_standing",
	                                standing, "numbers",
	                                (json_int_t)cleared),
	                      err);
}
