/*
 * metering: one batch of vox.cdr.raw messages in one transaction.
 *
 *  1. parse each message (envelope + record); bad ones become exceptions
 *  2. look up our numbers (owner, country, type, account currency) in one
 *     query; price each record in memory with the account's rate card
 *  3. COPY the priced records into a temp table, then one statement:
 *     usage_dedup insert (ON CONFLICT DO NOTHING: duplicates drop out),
 *     usage_records insert of the new ones, usage_daily upsert, resolved
 *     exceptions; it returns the new records
 *  4. usage triggers of the touched accounts and days, fired at most once
 *     per period (usage_trigger_fires), as vox.cmd.notifications commands
 *  5. vox.usage.rated events (per account, up to 500 records each)
 * All through the outbox and in the caller's transaction: a crash
 * anywhere leaves nothing half-done, and a redelivered batch is skipped by
 * usage_dedup.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metering.h"
#include "vox_cdr.h"
#include "vox_copy.h"
#include "vox_event.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_uuid.h"

#define RATED_PER_EVENT 500

struct number {
	char e164[24];
	char id[40], account_id[40], country[3], type[12], currency[4];
	int used;  /* slot in use */
	int found; /* owned by an account */
};

struct rec {
	vox_cdr_t cdr;
	char carrier[VOX_CARRIER_NAME_MAX + 1];
	long long rerate_of; /* 0: not a re-rate */
	const struct number *num;
	/* what pricing chose: copied, as the cards may be reloaded before
	 * the batch is written */
	char card_id[40], currency[4];
	long long rate_id;
	vox_charge_t charge; /* charge.rate is not kept (NULL) */
	char usage_id[VOX_UUID_STRLEN];
	/* set when the record cannot be rated */
	const char *reason_code;
	char reason[200];
	json_t *data; /* the event data (or raw payload), for an exception */
	size_t msg;
	int inserted; /* new in usage_records (not a duplicate) */
};

struct batch {
	struct meter_ctx *m;
	vox_batch_msg_t *msgs;
	size_t n;
	struct rec *recs;
	size_t nrecs;
	struct number *nums;
	size_t nums_cap;
	size_t good;        /* records priced */
	vox_copybuf_t copy; /* their rows for COPY (binary) */
};

/* ---------------------------------------------------------------- numbers */

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct number *number_slot(struct batch *b, const char *e164)
{
	size_t i = hash(e164) & (b->nums_cap - 1);

	while (b->nums[i].used && strcmp(b->nums[i].e164, e164) != 0)
		i = (i + 1) & (b->nums_cap - 1);
	if (!b->nums[i].used) {
		b->nums[i].used = 1;
		snprintf(b->nums[i].e164, sizeof(b->nums[i].e164), "%s", e164);
	}
	return &b->nums[i];
}

/* Looks up every distinct number of the batch in one query. */
static int numbers_load(struct batch *b, vox_pg_t *pg, vox_error_t *err)
{
	size_t len = 3, off = 0, count = 0;
	char *list;
	PGresult *res = NULL;
	int rc;

	for (size_t i = 0; i < b->nums_cap; i++)
		if (b->nums[i].used)
			len += strlen(b->nums[i].e164) + 1;
	list = malloc(len);
	if (list == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
	list[off++] = '{';
	for (size_t i = 0; i < b->nums_cap; i++)
		if (b->nums[i].used)
			off += (size_t)snprintf(list + off, len - off, "%s%s",
			                        count++ ? "," : "",
			                        b->nums[i].e164);
	list[off++] = '}';
	list[off] = '\0';
	const char *params[] = {list};
	rc = vox_pg_execp(pg, "meter_numbers",
	                  "SELECT n.e164, n.id, n.account_id, n.country, "
	                  "n.number_type, a.currency FROM numbers n "
	                  "JOIN accounts a ON a.id = n.account_id "
	                  "WHERE n.e164 = ANY($1::text[]) AND n.status IN "
	                  "('purchased', 'active', 'suspended', 'porting')",
	                  1, params, &res, err);
	free(list);
	if (rc != 0)
		return rc;
	for (int i = 0; i < PQntuples(res); i++) {
		struct number *nm = number_slot(b, PQgetvalue(res, i, 0));

		snprintf(nm->id, sizeof(nm->id), "%s", PQgetvalue(res, i, 1));
		snprintf(nm->account_id, sizeof(nm->account_id), "%s",
		         PQgetvalue(res, i, 2));
		snprintf(nm->country, sizeof(nm->country), "%s",
		         PQgetvalue(res, i, 3));
		snprintf(nm->type, sizeof(nm->type), "%s",
		         PQgetvalue(res, i, 4));
		snprintf(nm->currency, sizeof(nm->currency), "%s",
		         PQgetvalue(res, i, 5));
		nm->found = 1;
	}
	PQclear(res);
	return 0;
}

/* ---------------------------------------------------------------- parsing */

/* reason = what + detail (detail cut to 150 bytes). */
static void reject(struct rec *r, const char *code, const char *what,
                   const char *detail)
{
	r->reason_code = code;
	snprintf(r->reason, sizeof(r->reason), "%.40s%.150s", what, detail);
}

/* The envelope of a message from our own topic: JSON (duplicate keys
 * refused; jansson bounds the depth), an object with specversion 1.0 and
 * an object data. Cheaper than vox_event_parse, whose input limits are
 * for messages from outside. */
static int envelope_parse(const char *payload, size_t len, json_t **out,
                          vox_error_t *err)
{
	json_error_t jerr;
	json_t *ev = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *v;

	*out = NULL;
	if (ev == NULL)
		return vox_error_set(
		        err, VOX_ERR_INVALID, false,
		        "invalid JSON at line %d, column %d: %.120s", jerr.line,
		        jerr.column, jerr.text);
	v = json_string_value(json_object_get(ev, "specversion"));
	if (!json_is_object(ev) || v == NULL || strcmp(v, "1.0") != 0 ||
	    !json_is_object(json_object_get(ev, "data"))) {
		json_decref(ev);
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "not a CloudEvents 1.0 envelope with an "
		                     "object data");
	}
	*out = ev;
	return 0;
}

/* Fills r from message msg; on failure r->reason_code says why. */
static void parse_one(struct batch *b, size_t msg, struct rec *r)
{
	const vox_batch_msg_t *bm = &b->msgs[msg];
	json_t *ev = NULL, *data;
	const char *type, *carrier, *code;
	vox_error_t err;

	memset(r, 0, sizeof(*r));
	r->msg = msg;
	snprintf(r->carrier, sizeof(r->carrier), "unknown");
	if (envelope_parse(bm->payload, bm->len, &ev, &err) != 0) {
		/* json_stringn refuses invalid UTF-8: keep it as hex then. */
		r->data = json_pack("{s:s%}", "raw", bm->payload,
		                    bm->len > 8192 ? (size_t)8192 : bm->len);
		if (r->data == NULL)
			r->data = json_pack("{s:s, s:I}", "raw",
			                    "(not UTF-8 text)", "bytes",
			                    (json_int_t)bm->len);
		reject(r, "invalid_event", "not a CloudEvent: ", err.message);
		return;
	}
	data = json_object_get(ev, "data");
	r->data = json_incref(data);
	type = vox_json_str(ev, "type");
	carrier = json_string_value(json_object_get(data, "carrier"));
	if (vox_carrier_name_valid(carrier))
		snprintf(r->carrier, sizeof(r->carrier), "%s", carrier);
	if (type == NULL || strcmp(type, VOX_CDR_EVENT_TYPE) != 0)
		reject(r, "invalid_event",
		       "event type is not vox.cdr.received: ",
		       type ? type : "(none)");
	else if (!vox_carrier_name_valid(carrier))
		reject(r, "invalid_carrier",
		       "data.carrier is missing or not a ", "carrier name");
	else if (vox_cdr_parse_trusted(data, &r->cdr, &code, &err) != 0)
		reject(r, code, "", err.message);
	if (json_is_integer(json_object_get(data, "rerate_of")))
		r->rerate_of =
		        json_integer_value(json_object_get(data, "rerate_of"));
	/* An invalid record may still carry a usable id, so its exception
	 * row is shared by redeliveries. */
	if (r->cdr.id[0] == '\0') {
		const char *id = json_string_value(json_object_get(data, "id"));

		if (id != NULL && strlen(id) <= VOX_CDR_ID_MAX)
			snprintf(r->cdr.id, sizeof(r->cdr.id), "%s", id);
	}
	json_decref(ev);
}

static void rate_one(struct batch *b, struct rec *r)
{
	const vox_rate_card_t *card;
	vox_error_t err;
	int rc;

	r->num = number_slot(b, r->cdr.number);
	if (!r->num->found) {
		reject(r, "unknown_number",
		       "not a number of any account: ", r->cdr.number);
		return;
	}
	card = meter_card_for(b->m, r->num->account_id, r->num->currency,
	                      r->cdr.started_us);
	if (card == NULL) {
		reject(r, "no_rate_card",
		       "no rate card in force at started_at for account ",
		       r->num->account_id);
		return;
	}
	rc = vox_rate_cdr(card, &r->cdr, r->num->country, r->num->type,
	                  &r->charge, &err);
	if (rc != 0) {
		reject(r, rc == VOX_ERR_NOT_FOUND ? "no_rate" : "cost_overflow",
		       "", err.message);
		return;
	}
	snprintf(r->card_id, sizeof(r->card_id), "%s", card->id);
	snprintf(r->currency, sizeof(r->currency), "%s", card->currency);
	r->rate_id = r->charge.rate->id;
	r->charge.rate = NULL;
	vox_uuid7(r->usage_id);
}

/* ---------------------------------------------------------------- writing */

static int temp_table(struct batch *b, vox_pg_t *pg, vox_error_t *err)
{
	if (b->m->temp_conn == vox_pg_connects(pg))
		return 0;
	if (vox_pg_exec(
	            pg,
	            "CREATE TEMP TABLE IF NOT EXISTS meter_batch ("
	            "id uuid, account_id uuid, number_id uuid, e164 text, "
	            "event_type text, direction text, carrier text, "
	            "carrier_cdr_id text, from_number text, to_number text, "
	            "started_at timestamptz, duration_s int, billable_s int, "
	            "units int, rate_card_id uuid, rate_id bigint, "
	            "rate_micros bigint, cost_micros bigint, currency text, "
	            "rerate_of bigint, idx int) ON COMMIT DELETE ROWS",
	            0, NULL, NULL, err) != 0)
		return err->code;
	b->m->temp_conn = vox_pg_connects(pg);
	return 0;
}

/* The priced records in binary COPY form (no database needed). */
static int copy_build(struct batch *b)
{
	vox_copybuf_t *c = &b->copy;

	vox_copy_begin(c, b->good * 300 + 64);
	for (size_t i = 0; i < b->nrecs; i++) {
		const struct rec *r = &b->recs[i];

		if (r->reason_code != NULL)
			continue;
		vox_copy_row(c, 21);
		vox_copy_uuid(c, r->usage_id);
		vox_copy_uuid(c, r->num->account_id);
		vox_copy_uuid(c, r->num->id);
		vox_copy_text(c, r->cdr.number);
		vox_copy_text(c, vox_cdr_type_name(r->cdr.type));
		vox_copy_text(c, vox_cdr_is_inbound(r->cdr.type) ? "inbound"
		                                                 : "outbound");
		vox_copy_text(c, r->carrier);
		vox_copy_text(c, r->cdr.id);
		vox_copy_text(c, r->cdr.from);
		vox_copy_text(c, r->cdr.to);
		vox_copy_timestamptz(c, r->cdr.started_us);
		vox_copy_int4(c, r->cdr.duration_s);
		vox_copy_int4(c, r->charge.billable_s);
		vox_copy_int4(c, r->charge.units);
		vox_copy_uuid(c, r->card_id);
		vox_copy_int8(c, r->rate_id);
		vox_copy_int8(c, r->charge.rate_micros);
		vox_copy_int8(c, r->charge.cost_micros);
		vox_copy_text(c, r->currency);
		if (r->rerate_of > 0)
			vox_copy_int8(c, r->rerate_of);
		else
			vox_copy_null(c);
		vox_copy_int4(c, (int32_t)i);
	}
	return vox_copy_end(c) == 0 ? 0 : VOX_ERR_NOMEM;
}

static int copy_send(struct batch *b, vox_pg_t *pg, vox_error_t *err)
{
	PGconn *conn = vox_pg_conn(pg);
	PGresult *res;
	int ok;

	if (conn == NULL)
		return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                     "postgres: not connected");
	res = PQexec(conn, "COPY meter_batch FROM STDIN (FORMAT binary)");
	ok = PQresultStatus(res) == PGRES_COPY_IN;
	PQclear(res);
	if (ok)
		ok = PQputCopyData(conn, b->copy.data, (int)b->copy.len) == 1 &&
		     PQputCopyEnd(conn, NULL) == 1;
	res = PQgetResult(conn);
	if (!ok || PQresultStatus(res) != PGRES_COMMAND_OK) {
		vox_error_set(err, VOX_ERR_UNAVAILABLE, true, "COPY: %s",
		              PQerrorMessage(conn));
		PQclear(res);
		while ((res = PQgetResult(conn)) != NULL)
			PQclear(res);
		return err->code;
	}
	PQclear(res);
	return 0;
}

static const char insert_sql[] =
        "WITH d AS ("
        " INSERT INTO usage_dedup (carrier, carrier_cdr_id, usage_id, "
        "started_at)"
        " SELECT carrier, carrier_cdr_id, id, started_at FROM meter_batch"
        " ON CONFLICT DO NOTHING RETURNING usage_id),"
        " ins AS ("
        " INSERT INTO usage_records (id, account_id, number_id, e164, "
        "event_type, direction, carrier, carrier_cdr_id, from_number, "
        "to_number, started_at, ended_at, duration_s, billable_s, units, "
        "rate_card_id, rate_id, rate_micros, cost_micros, currency, rated_at)"
        " SELECT b.id, b.account_id, b.number_id, b.e164, b.event_type, "
        "b.direction, b.carrier, b.carrier_cdr_id, b.from_number, "
        "b.to_number, b.started_at, b.started_at + make_interval(secs => "
        "b.duration_s), b.duration_s, b.billable_s, b.units, b.rate_card_id, "
        "b.rate_id, b.rate_micros, b.cost_micros, b.currency, now()"
        " FROM meter_batch b JOIN d ON d.usage_id = b.id"
        " RETURNING account_id, e164, event_type, currency, started_at, "
        "duration_s, billable_s, units, cost_micros),"
        " agg AS ("
        " INSERT INTO usage_daily AS u (account_id, day, e164, event_type, "
        "currency, records, duration_s, billable_s, units, cost_micros)"
        " SELECT account_id, (started_at AT TIME ZONE 'UTC')::date, e164, "
        "event_type, currency, count(*), sum(duration_s), sum(billable_s), "
        "sum(units), sum(cost_micros) FROM ins GROUP BY 1, 2, 3, 4, 5"
        " ORDER BY 1, 2, 3, 4, 5"
        " ON CONFLICT (account_id, day, e164, event_type, currency) DO UPDATE"
        " SET records = u.records + EXCLUDED.records,"
        " duration_s = u.duration_s + EXCLUDED.duration_s,"
        " billable_s = u.billable_s + EXCLUDED.billable_s,"
        " units = u.units + EXCLUDED.units,"
        " cost_micros = u.cost_micros + EXCLUDED.cost_micros"
        " RETURNING 1),"
        " res AS ("
        " UPDATE usage_exceptions e SET status = 'resolved', "
        "resolved_at = now(), usage_id = CASE WHEN b.id IN (SELECT usage_id "
        "FROM d) THEN b.id END"
        " FROM meter_batch b WHERE b.rerate_of IS NOT NULL"
        " AND e.carrier = b.carrier AND e.carrier_cdr_id = b.carrier_cdr_id"
        " AND e.status <> 'resolved' RETURNING 1)"
        " SELECT b.idx, (SELECT count(*) FROM agg), (SELECT count(*) FROM "
        "res), (SELECT count(*) FROM ins)"
        " FROM meter_batch b JOIN d ON d.usage_id = b.id";

static const char exception_sql[] =
        "INSERT INTO usage_exceptions AS e (carrier, carrier_cdr_id, e164, "
        "reason_code, reason, record, source_topic, source_partition, "
        "source_offset)"
        " SELECT $1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9"
        " WHERE $2::text IS NULL OR NOT EXISTS (SELECT 1 FROM usage_dedup "
        "WHERE carrier = $1 AND carrier_cdr_id = $2)"
        " ON CONFLICT (carrier, carrier_cdr_id) WHERE carrier_cdr_id IS NOT "
        "NULL DO UPDATE SET seen_count = e.seen_count + 1, last_seen_at = "
        "now(), reason_code = EXCLUDED.reason_code, reason = "
        "EXCLUDED.reason, record = EXCLUDED.record, status = CASE WHEN "
        "e.status = 'resolved' THEN 'resolved' ELSE 'open' END"
        " RETURNING id";

/* Records what could not be rated; marks the message for the DLQ unless
 * the record was in fact already counted (a duplicate of a rated one). */
static int write_exception(struct batch *b, vox_pg_t *pg, struct rec *r,
                           vox_error_t *err)
{
	vox_batch_msg_t *bm = &b->msgs[r->msg];
	char part[16], off[24];
	PGresult *res = NULL;
	char *record = r->data ? json_dumps(r->data, JSON_COMPACT) : NULL;
	int rc;

	snprintf(part, sizeof(part), "%d", bm->partition);
	snprintf(off, sizeof(off), "%lld", (long long)bm->offset);
	const char *params[] = {r->carrier,
	                        r->cdr.id[0] ? r->cdr.id : NULL,
	                        r->cdr.number[0] ? r->cdr.number : NULL,
	                        r->reason_code,
	                        r->reason,
	                        record && json_is_object(r->data) ? record
	                                                          : "{}",
	                        bm->topic,
	                        part,
	                        off};
	rc = vox_pg_execp(pg, "meter_exception", exception_sql, 9, params, &res,
	                  err);
	free(record);
	if (rc != 0)
		return rc;
	if (PQntuples(res) == 1)
		snprintf(bm->dlq_reason, sizeof(bm->dlq_reason),
		         "%.30s: %.200s", r->reason_code, r->reason);
	PQclear(res);
	return 0;
}

/* ---------------------------------------------------------------- triggers */

static const char trigger_sql[] =
        "WITH touched AS ("
        " SELECT DISTINCT * FROM unnest($1::uuid[], $2::date[]) AS "
        "x(account_id, "
        "day)),"
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
        " INSERT INTO usage_trigger_fires (trigger_id, period_start, value)"
        " SELECT id, period_start, value FROM vals WHERE value >= threshold"
        " ON CONFLICT DO NOTHING"
        " RETURNING trigger_id, period_start, value";

static int fire(vox_pg_t *pg, const PGresult *fired, int i, vox_error_t *err)
{
	const char *params[] = {PQgetvalue(fired, i, 0)};
	PGresult *res = NULL;
	json_t *data, *ev;
	char *payload;
	int rc;

	rc = vox_pg_execp(pg, "meter_trigger",
	                  "SELECT account_id, category, trigger_by, threshold, "
	                  "recurring, callback_url, friendly_name FROM "
	                  "usage_triggers WHERE id = $1",
	                  1, params, &res, err);
	if (rc != 0)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "trigger vanished");
	}
	data = json_pack(
	        "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:o}",
	        "kind", "usage_trigger", "trigger_id", PQgetvalue(fired, i, 0),
	        "account_id", PQgetvalue(res, 0, 0), "category",
	        PQgetvalue(res, 0, 1), "trigger_by", PQgetvalue(res, 0, 2),
	        "threshold",
	        (json_int_t)strtoll(PQgetvalue(res, 0, 3), NULL, 10), "value",
	        (json_int_t)strtoll(PQgetvalue(fired, i, 2), NULL, 10),
	        "recurring", PQgetvalue(res, 0, 4), "period_start",
	        PQgetvalue(fired, i, 1), "callback_url", PQgetvalue(res, 0, 5),
	        "friendly_name",
	        PQgetisnull(res, 0, 6) ? json_null()
	                               : json_string(PQgetvalue(res, 0, 6)));
	ev = vox_event_new("vox.notification.requested", "/workers/metering",
	                   PQgetvalue(fired, i, 0), PQgetvalue(res, 0, 0), NULL,
	                   data);
	payload = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
	rc = payload ? vox_outbox_add(pg, "vox.cmd.notifications",
	                              PQgetvalue(res, 0, 0), payload, NULL, err)
	             : vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
	vox_log(VOX_LOG_INFO, "usage trigger fired", "trigger_id",
	        PQgetvalue(fired, i, 0), "period_start",
	        PQgetvalue(fired, i, 1), "value", PQgetvalue(fired, i, 2),
	        NULL);
	free(payload);
	json_decref(ev);
	PQclear(res);
	return rc;
}

/* Evaluates the triggers of the (account, day) pairs the new records
 * touched. The trigger rows are locked first, so two batches of one
 * account are evaluated one after the other, each seeing the other's sums. */
static int triggers(struct batch *b, vox_pg_t *pg, vox_error_t *err)
{
	/* distinct pairs: a batch touches few accounts and days */
	enum { MAX_PAIRS = 256 };
	const char *acct[MAX_PAIRS];
	int64_t day[MAX_PAIRS];
	size_t np = 0, cap = MAX_PAIRS * 50 + 3, ao = 0, dof = 0;
	char *accounts, *days, date[40];
	PGresult *fired = NULL;
	int rc;

	for (size_t i = 0; i < b->nrecs; i++) {
		const struct rec *r = &b->recs[i];
		int64_t d;
		size_t k;

		if (!r->inserted)
			continue;
		d = r->cdr.started_us / 86400000000LL;
		for (k = 0; k < np; k++)
			if (day[k] == d &&
			    strcmp(acct[k], r->num->account_id) == 0)
				break;
		if (k == np && np < MAX_PAIRS) {
			acct[np] = r->num->account_id;
			day[np++] = d;
		}
	}
	accounts = malloc(cap);
	days = malloc(cap);
	if (accounts == NULL || days == NULL) {
		free(accounts);
		free(days);
		return vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
	}
	accounts[ao++] = '{';
	days[dof++] = '{';
	for (size_t k = 0; k < np; k++) {
		vox_rfc3339_format(day[k] * 86400000000LL, date, sizeof(date));
		ao += (size_t)snprintf(accounts + ao, cap - ao, "%s%s",
		                       k ? "," : "", acct[k]);
		dof += (size_t)snprintf(days + dof, cap - dof, "%s%.10s",
		                        k ? "," : "", date);
	}
	snprintf(accounts + ao, cap - ao, "}");
	snprintf(days + dof, cap - dof, "}");
	const char *params[] = {accounts, days};
	rc = vox_pg_execp(pg, "meter_triggers", trigger_sql, 2, params, &fired,
	                  err);
	free(accounts);
	free(days);
	for (int i = 0; rc == 0 && i < PQntuples(fired); i++)
		rc = fire(pg, fired, i, err);
	PQclear(fired);
	return rc;
}

/* ---------------------------------------------------------------- events */

/* One vox.usage.rated event for recs[idx[0..n)] (one account). Built as
 * text: every string in it is from a restricted character set. */
static int rated_event(struct batch *b, vox_pg_t *pg, const size_t *idx,
                       size_t n, vox_error_t *err)
{
	const struct rec *first = &b->recs[idx[0]];
	size_t cap = 1024 + n * 360, off;
	char *buf = malloc(cap), id[VOX_UUID_STRLEN], now[40], trace[64];
	char started[40];
	long long cost = 0;
	int rc;

	if (buf == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
	for (size_t i = 0; i < n; i++)
		cost += b->recs[idx[i]].charge.cost_micros;
	vox_uuid7(id);
	vox_time_now_rfc3339(now, sizeof(now));
	vox_traceparent_new(trace, sizeof(trace));
	off = (size_t)snprintf(
	        buf, cap,
	        "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":"
	        "\"/workers/metering\",\"type\":\"vox.usage.rated\",\"time\":"
	        "\"%s\",\"subject\":\"%s\",\"datacontenttype\":"
	        "\"application/json\",\"accountid\":\"%s\",\"traceparent\":"
	        "\"%s\",\"data\":{\"account_id\":\"%s\",\"currency\":\"%s\","
	        "\"count\":%zu,\"cost_micros\":%lld,\"records\":[",
	        id, now, first->num->account_id, first->num->account_id, trace,
	        first->num->account_id, first->currency, n, cost);
	for (size_t i = 0; i < n; i++) {
		const struct rec *r = &b->recs[idx[i]];

		vox_rfc3339_format(r->cdr.started_us, started, sizeof(started));
		off += (size_t)snprintf(
		        buf + off, cap - off,
		        "%s{\"id\":\"%s\",\"carrier\":\"%s\",\"carrier_cdr_"
		        "id\":"
		        "\"%s\",\"number\":\"%s\",\"event_type\":\"%s\","
		        "\"started_at\":\"%s\",\"billable_s\":%d,\"units\":%d,"
		        "\"cost_micros\":%lld}",
		        i ? "," : "", r->usage_id, r->carrier, r->cdr.id,
		        r->cdr.number, vox_cdr_type_name(r->cdr.type), started,
		        r->charge.billable_s, r->charge.units,
		        (long long)r->charge.cost_micros);
	}
	snprintf(buf + off, cap - off, "]}}");
	rc = vox_outbox_add(pg, "vox.events", first->num->account_id, buf, NULL,
	                    err);
	free(buf);
	return rc;
}

/* One event per account per RATED_PER_EVENT new records. */
static int rated_events(struct batch *b, vox_pg_t *pg, vox_error_t *err)
{
	size_t *idx = malloc(b->nrecs * sizeof(*idx)), n;
	char *done = calloc(b->nrecs, 1);
	int rc = 0;

	if (idx == NULL || done == NULL) {
		free(idx);
		free(done);
		return vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
	}
	for (size_t i = 0; rc == 0 && i < b->nrecs; i++) {
		const char *account;

		if (!b->recs[i].inserted || done[i])
			continue;
		account = b->recs[i].num->account_id;
		n = 0;
		for (size_t j = i; j < b->nrecs; j++) {
			if (!b->recs[j].inserted || done[j] ||
			    strcmp(b->recs[j].num->account_id, account) != 0)
				continue;
			done[j] = 1;
			idx[n++] = j;
			if (n == RATED_PER_EVENT) {
				rc = rated_event(b, pg, idx, n, err);
				n = 0;
				if (rc != 0)
					break;
			}
		}
		if (rc == 0 && n > 0)
			rc = rated_event(b, pg, idx, n, err);
	}
	free(idx);
	free(done);
	return rc;
}

/* ---------------------------------------------------------------- batch */

static void batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->nrecs; i++)
		json_decref(b->recs[i].data);
	free(b->recs);
	free(b->nums);
	vox_copy_free(&b->copy);
	free(b);
}

static double ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Everything before the writes: parse, look up the numbers, price, build
 * the COPY text. pg may be outside any transaction (it only reads). */
static struct batch *batch_build(struct meter_ctx *m, vox_pg_t *pg,
                                 vox_batch_msg_t *msgs, size_t n,
                                 vox_error_t *err)
{
	struct batch *b = calloc(1, sizeof(*b));
	int rc;

	if (b == NULL) {
		vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
		return NULL;
	}
	b->m = m;
	b->msgs = msgs;
	b->n = n;
	b->recs = calloc(n, sizeof(*b->recs));
	for (b->nums_cap = 16; b->nums_cap < 2 * n; b->nums_cap *= 2)
		;
	b->nums = calloc(b->nums_cap, sizeof(*b->nums));
	if (b->recs == NULL || b->nums == NULL) {
		batch_free(b);
		vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		parse_one(b, i, &b->recs[i]);
		if (b->recs[i].reason_code == NULL)
			number_slot(b, b->recs[i].cdr.number);
	}
	b->nrecs = n;
	rc = numbers_load(b, pg, err);
	if (rc == 0) {
		pthread_mutex_lock(&m->cards_lock);
		rc = meter_cards_refresh(m, pg, err);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (b->recs[i].reason_code == NULL)
				rate_one(b, &b->recs[i]);
			b->good += b->recs[i].reason_code == NULL;
		}
		pthread_mutex_unlock(&m->cards_lock);
	}
	if (rc == 0 && copy_build(b) != 0)
		rc = vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
	if (rc != 0) {
		batch_free(b);
		return NULL;
	}
	return b;
}

void *meter_prepare(vox_pg_t *pg, vox_batch_msg_t *msgs, size_t n, void *ctx)
{
	vox_error_t err;
	struct batch *b;

	/* On any failure here the writer does the whole batch itself. */
	if (pg == NULL || vox_pg_connect(pg, 0, &err) != 0)
		return NULL;
	b = batch_build(ctx, pg, msgs, n, &err);
	if (b == NULL)
		vox_log(VOX_LOG_WARN, "batch not prepared: the writer does it",
		        "error", err.message, NULL);
	return b;
}

void meter_release(void *prepared, void *ctx)
{
	(void)ctx;
	batch_free(prepared);
}

int meter_batch(vox_pg_t *pg, vox_batch_msg_t *msgs, size_t n, void *prepared,
                void *ctx, vox_error_t *err)
{
	struct batch *b = prepared;
	PGresult *ins = NULL;
	size_t bad = 0;
	/* phase times (ms): build (when not prepared), copy, insert,
	 * triggers, events, exceptions */
	double t[7];
	int rc = 0;

	t[0] = ms_now();
	if (b == NULL) {
		b = batch_build(ctx, pg, msgs, n, err);
		if (b == NULL)
			return err->code;
	}
	for (size_t i = 0; i < b->nrecs; i++)
		b->recs[i].inserted = 0;
	t[1] = t[2] = t[3] = t[4] = t[5] = ms_now();
	if (b->good > 0) {
		rc = temp_table(b, pg, err);
		if (rc == 0)
			rc = copy_send(b, pg, err);
		t[2] = ms_now();
		if (rc == 0)
			rc = vox_pg_execp(pg, "meter_insert", insert_sql, 0,
			                  NULL, &ins, err);
		t[3] = ms_now();
		for (int i = 0; rc == 0 && i < PQntuples(ins); i++) {
			long k = strtol(PQgetvalue(ins, i, 0), NULL, 10);

			if (k >= 0 && (size_t)k < b->nrecs)
				b->recs[k].inserted = 1;
		}
		if (rc == 0 && PQntuples(ins) > 0)
			rc = triggers(b, pg, err);
		t[4] = ms_now();
		if (rc == 0 && PQntuples(ins) > 0)
			rc = rated_events(b, pg, err);
		t[5] = ms_now();
		if (rc != 0)
			goto out;
	}
	for (size_t i = 0; i < b->nrecs && rc == 0; i++)
		if (b->recs[i].reason_code != NULL) {
			rc = write_exception(b, pg, &b->recs[i], err);
			bad++;
		}
	t[6] = ms_now();
	if (rc == 0) {
		char line[300];

		snprintf(line, sizeof(line),
		         "batch: %zu messages, %d rated, %zu duplicates, %zu "
		         "exceptions; ms: build %.1f, copy %.1f, insert %.1f, "
		         "triggers %.1f, events %.1f, exceptions %.1f%s",
		         n, ins ? PQntuples(ins) : 0,
		         b->good - (size_t)(ins ? PQntuples(ins) : 0), bad,
		         t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3],
		         t[5] - t[4], t[6] - t[5],
		         prepared ? " (prepared)" : "");
		vox_log(VOX_LOG_DEBUG, line, NULL);
	}
out:
	PQclear(ins);
	if (b != prepared)
		batch_free(b);
	return rc;
}

void meter_tick(vox_pg_t *pg, void *ctx)
{
	struct meter_ctx *m = ctx;
	static time_t last;
	time_t now = time(NULL);
	char ahead[16];
	vox_error_t err;

	if (last != 0 && now - last < 3600)
		return;
	snprintf(ahead, sizeof(ahead), "%ld", m->partitions_ahead);
	const char *params[] = {ahead};
	if (vox_pg_exec(pg, "SELECT usage_ensure_partitions($1::int)", 1,
	                params, NULL, &err) == 0)
		last = now;
	else
		vox_log(VOX_LOG_WARN, "usage partitions not ensured", "error",
		        err.message, NULL);
}
