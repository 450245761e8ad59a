/*
 * metering: usage triggers. After the records are written, the triggers
 * of every (account, day) pair the new records touched are evaluated in
 * one statement, fired at most once per period (usage_trigger_fires), and
 * each fire becomes a vox.notification.requested command on
 * vox.cmd.notifications through the outbox.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "vox_buf.h"
#include "vox_log.h"
#include "vox_usage_event.h"

static const char trigger_sql[] =
        "WITH touched AS ("
        " SELECT DISTINCT * FROM unnest($1::uuid[], $2::date[]) AS "
        "x(account_id, day)),"
        " locked AS ("
        " SELECT t.* FROM usage_triggers t WHERE t.deleted_at IS NULL"
        " AND t.account_id IN (SELECT account_id FROM touched)"
        " ORDER BY t.id FOR UPDATE),"
        " periods AS ("
        " SELECT DISTINCT t.id, t.account_id, t.category, t.trigger_by, "
        "t.threshold, t.recurring, t.callback_url,"
        " CASE t.recurring WHEN 'daily' THEN x.day"
        " WHEN 'monthly' THEN date_trunc('month', x.day)::date"
        " ELSE (t.created_at AT TIME ZONE 'UTC')::date END AS period_start"
        " FROM locked t JOIN touched x ON x.account_id = t.account_id"
        " WHERE t.recurring <> 'none' OR x.day >= (t.created_at AT TIME ZONE "
        "'UTC')::date),"
        " vals AS ("
        " SELECT p.id, p.period_start, p.threshold,"
        " coalesce(sum(CASE p.trigger_by WHEN 'count' THEN d.records"
        " WHEN 'usage' THEN CASE WHEN d.event_type LIKE '%call' THEN "
        "d.billable_s ELSE d.units END"
        " ELSE d.cost_micros END), 0)::bigint AS value"
        " FROM periods p LEFT JOIN usage_daily d ON d.account_id = "
        "p.account_id"
        " AND d.day >= p.period_start"
        " AND d.day < CASE p.recurring WHEN 'daily' THEN p.period_start + 1"
        " WHEN 'monthly' THEN (p.period_start + interval '1 month')::date"
        " ELSE 'infinity'::date END"
        " AND d.event_type = ANY (usage_category_types(p.category))"
        " GROUP BY p.id, p.period_start, p.threshold)"
        ", fired AS ("
        " INSERT INTO usage_trigger_fires (trigger_id, period_start, value)"
        " SELECT id, period_start, value FROM vals WHERE value >= threshold"
        " ON CONFLICT DO NOTHING"
        " RETURNING trigger_id, period_start, value)"
        " SELECT f.trigger_id, f.period_start, f.value, t.account_id, "
        "t.category, t.trigger_by, t.threshold, t.recurring, "
        "t.callback_url, t.friendly_name"
        " FROM fired f JOIN locked t ON t.id = f.trigger_id"
        " ORDER BY f.trigger_id, f.period_start";

/* The new records sorted by (account, day, batch order): the distinct
 * (account, day) pairs are runs, and an account's records are found by
 * binary search. As many as the batch has: no cap. */
struct touched {
	const struct rec **recs;
	size_t n;
};

static int64_t rec_day(const struct rec *r)
{
	return r->cdr.started_us / 86400000000LL;
}

static int touched_cmp(const void *pa, const void *pb)
{
	const struct rec *a = *(const struct rec *const *)pa;
	const struct rec *b = *(const struct rec *const *)pb;
	int c = strcmp(a->num->account_id, b->num->account_id);

	if (c != 0)
		return c;
	if (rec_day(a) != rec_day(b))
		return rec_day(a) < rec_day(b) ? -1 : 1;
	return a < b ? -1 : a > b;
}

static int touched_make(const struct batch *b, struct touched *t)
{
	t->n = 0;
	t->recs = malloc((b->nrecs ? b->nrecs : 1) * sizeof(*t->recs));
	if (t->recs == NULL)
		return VOX_ERR_NOMEM;
	for (size_t i = 0; i < b->nrecs; i++)
		if (b->recs[i].inserted)
			t->recs[t->n++] = &b->recs[i];
	qsort(t->recs, t->n, sizeof(*t->recs), touched_cmp);
	return 0;
}

/* The first new record of account (for its traceparent), or NULL. */
static const struct rec *touched_first(const struct touched *t,
                                       const char *account)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(t->recs[mid]->num->account_id, account) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < t->n && strcmp(t->recs[lo]->num->account_id, account) == 0
	               ? t->recs[lo]
	               : NULL;
}

/* The distinct pairs as two array literals ($1::uuid[], $2::date[]);
 * account ids are UUIDs and days dates: nothing to quote. */
static void touched_arrays(const struct touched *t, vox_buf_t *accounts,
                           vox_buf_t *days)
{
	char date[40];

	vox_buf_add(accounts, "{", 1);
	vox_buf_add(days, "{", 1);
	for (size_t i = 0; i < t->n; i++) {
		if (i > 0 &&
		    strcmp(t->recs[i - 1]->num->account_id,
		           t->recs[i]->num->account_id) == 0 &&
		    rec_day(t->recs[i - 1]) == rec_day(t->recs[i]))
			continue;
		if (vox_buf_len(accounts) > 1) {
			vox_buf_add(accounts, ",", 1);
			vox_buf_add(days, ",", 1);
		}
		vox_buf_adds(accounts, t->recs[i]->num->account_id);
		vox_rfc3339_format(rec_day(t->recs[i]) * 86400000000LL, date,
		                   sizeof(date));
		vox_buf_add(days, date, 10);
	}
	vox_buf_add(accounts, "}", 1);
	vox_buf_add(days, "}", 1);
}

/* One vox.notification.requested command for row i of fired, a child of
 * the account's first new record. */
static int fire(vox_pg_t *pg, const struct touched *t, const PGresult *fired,
                int i, vox_error_t *err)
{
	const char *trigger = PQgetvalue(fired, i, 0);
	const char *account = PQgetvalue(fired, i, 3);
	const struct rec *cause = touched_first(t, account);
	json_t *data;

	data = json_pack(
	        "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:o}",
	        "kind", "usage_trigger", "trigger_id", trigger, "account_id",
	        account, "category", PQgetvalue(fired, i, 4), "trigger_by",
	        PQgetvalue(fired, i, 5), "threshold",
	        (json_int_t)strtoll(PQgetvalue(fired, i, 6), NULL, 10), "value",
	        (json_int_t)strtoll(PQgetvalue(fired, i, 2), NULL, 10),
	        "recurring", PQgetvalue(fired, i, 7), "period_start",
	        PQgetvalue(fired, i, 1), "callback_url",
	        PQgetvalue(fired, i, 8), "friendly_name",
	        PQgetisnull(fired, i, 9)
	                ? json_null()
	                : json_string(PQgetvalue(fired, i, 9)));
	if (data == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
	vox_log(VOX_LOG_INFO, "usage trigger fired", "trigger_id", trigger,
	        "account_id", account, "period_start", PQgetvalue(fired, i, 1),
	        "value", PQgetvalue(fired, i, 2), NULL);
	return vox_event_emit(
	        pg, VOX_NOTIFICATION_TYPE, account, trigger, account,
	        cause && cause->trace[0] ? cause->trace : NULL, data, err);
}

/* Evaluates the triggers of the (account, day) pairs the new records
 * touched. The trigger rows are locked first, so two batches of one
 * account are evaluated one after the other, each seeing the other's sums. */
int meter_triggers(struct batch *b, vox_pg_t *pg, vox_error_t *err)
{
	struct touched t;
	vox_buf_t accounts, days;
	PGresult *fired = NULL;
	int rc;

	if (touched_make(b, &t) != 0)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
	vox_buf_init(&accounts, t.n * VOX_UUID_STRLEN + 2);
	vox_buf_init(&days, t.n * 11 + 2);
	touched_arrays(&t, &accounts, &days);
	rc = vox_buf_check(&accounts, "trigger accounts", err);
	if (rc == 0)
		rc = vox_buf_check(&days, "trigger days", err);
	if (rc == 0) {
		const char *params[] = {vox_buf_str(&accounts),
		                        vox_buf_str(&days)};

		rc = vox_pg_execp(pg, "meter_triggers", trigger_sql, 2, params,
		                  &fired, err);
	}
	for (int i = 0; rc == 0 && i < PQntuples(fired); i++)
		rc = fire(pg, &t, fired, i, err);
	PQclear(fired);
	vox_buf_free(&accounts);
	vox_buf_free(&days);
	free(t.recs);
	return rc;
}
