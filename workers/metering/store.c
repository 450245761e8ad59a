/*
 * metering: the priced records written in one statement. They are COPYed
 * (binary) into a temporary table, then one INSERT ... WITH does the
 * usage_dedup insert (ON CONFLICT DO NOTHING: duplicates drop out), the
 * usage_records insert of the new ones, the usage_daily upsert and the
 * re-rated exceptions' resolution, and returns the new records.
 */
#include <stdlib.h>

#include "batch.h"

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

int meter_copy_build(struct batch *b)
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

int meter_copy_send(struct batch *b, vox_pg_t *pg, vox_error_t *err)
{
	int rc = temp_table(b, pg, err);

	return rc != 0 ? rc : copy_send(b, pg, err);
}

int meter_insert(vox_pg_t *pg, PGresult **inserted, vox_error_t *err)
{
	return vox_pg_execp(pg, "meter_insert", insert_sql, 0, NULL, inserted,
	                    err);
}
