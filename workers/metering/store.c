/*
 * metering: the priced records written in one statement. Each column of
 * the records goes as one binary array parameter (built on the polling
 * thread, no text for the server to parse); one INSERT ... WITH unnests
 * them and does the usage_dedup insert (ON CONFLICT DO NOTHING: duplicates
 * drop out), the usage_records insert of the new ones, the usage_daily
 * upsert and the re-rated exceptions' resolution, and returns the
 * duplicates (the records not inserted: usually none, where returning the
 * inserted ones sent 10,000 rows back per batch). Until issue 17 the rows
 * were COPYed into a temporary table first: one statement and one table
 * more per batch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"

/* element types of the arrays (pg_type.oid) */
#define OID_INT8        20
#define OID_INT4        23
#define OID_TEXT        25
#define OID_TIMESTAMPTZ 1184
#define OID_UUID        2950

/* The columns, in the order of the statement's unnest. */
enum {
	C_ID,
	C_ACCOUNT,
	C_NUMBER,
	C_E164,
	C_TYPE,
	C_DIRECTION,
	C_CARRIER,
	C_CDR_ID,
	C_FROM,
	C_TO,
	C_STARTED,
	C_DURATION,
	C_BILLABLE,
	C_UNITS,
	C_CARD,
	C_RATE,
	C_RATE_MICROS,
	C_COST,
	C_CURRENCY,
	C_RERATE_OF,
	C_IDX,
	C_COUNT
};

_Static_assert(C_COUNT == METER_COLS, "batch.h: METER_COLS");

static const unsigned col_oid[C_COUNT] = {
        OID_UUID, OID_UUID, OID_UUID, OID_TEXT, OID_TEXT,        OID_TEXT,
        OID_TEXT, OID_TEXT, OID_TEXT, OID_TEXT, OID_TIMESTAMPTZ, OID_INT4,
        OID_INT4, OID_INT4, OID_UUID, OID_INT8, OID_INT8,        OID_INT8,
        OID_TEXT, OID_INT8, OID_INT4};

void meter_rows_free(struct batch *b)
{
	for (int k = 0; k < C_COUNT; k++)
		vox_copy_free(&b->cols[k]);
}

int meter_rows_build(struct batch *b)
{
	/* binary array parameters: their fields are binary COPY fields */
	for (int k = 0; k < C_COUNT; k++)
		vox_copy_array_begin(&b->cols[k], col_oid[k], (int32_t)b->good,
		                     k == C_RERATE_OF, 20 + b->good * 24);
	for (size_t i = 0; i < b->nrecs; i++) {
		const struct rec *r = &b->recs[i];
		vox_copybuf_t *c = b->cols;

		if (r->reason_code != NULL)
			continue;
		vox_copy_uuid(&c[C_ID], r->usage_id);
		vox_copy_uuid(&c[C_ACCOUNT], r->num->account_id);
		vox_copy_uuid(&c[C_NUMBER], r->num->id);
		vox_copy_text(&c[C_E164], r->cdr.number);
		vox_copy_text(&c[C_TYPE], vox_cdr_type_name(r->cdr.type));
		vox_copy_text(&c[C_DIRECTION], vox_cdr_is_inbound(r->cdr.type)
		                                       ? "inbound"
		                                       : "outbound");
		vox_copy_text(&c[C_CARRIER], r->carrier);
		vox_copy_text(&c[C_CDR_ID], r->cdr.id);
		vox_copy_text(&c[C_FROM], r->cdr.from);
		vox_copy_text(&c[C_TO], r->cdr.to);
		vox_copy_timestamptz(&c[C_STARTED], r->cdr.started_us);
		vox_copy_int4(&c[C_DURATION], r->cdr.duration_s);
		vox_copy_int4(&c[C_BILLABLE], r->charge.billable_s);
		vox_copy_int4(&c[C_UNITS], r->charge.units);
		vox_copy_uuid(&c[C_CARD], r->card_id);
		vox_copy_int8(&c[C_RATE], r->rate_id);
		vox_copy_int8(&c[C_RATE_MICROS], r->charge.rate_micros);
		vox_copy_int8(&c[C_COST], r->charge.cost_micros);
		vox_copy_text(&c[C_CURRENCY], r->currency);
		if (r->rerate_of > 0)
			vox_copy_int8(&c[C_RERATE_OF], r->rerate_of);
		else
			vox_copy_null(&c[C_RERATE_OF]);
		vox_copy_int4(&c[C_IDX], (int32_t)i);
	}
	for (int k = 0; k < C_COUNT; k++)
		if (b->cols[k].failed)
			return VOX_ERR_NOMEM;
	return 0;
}

static const char insert_sql[] =
        "WITH b AS (SELECT * FROM unnest($1::uuid[], $2::uuid[], "
        "$3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], "
        "$8::text[], $9::text[], $10::text[], $11::timestamptz[], "
        "$12::int[], $13::int[], $14::int[], $15::uuid[], $16::bigint[], "
        "$17::bigint[], $18::bigint[], $19::text[], $20::bigint[], "
        "$21::int[]) AS t(id, account_id, number_id, e164, event_type, "
        "direction, carrier, carrier_cdr_id, from_number, to_number, "
        "started_at, duration_s, billable_s, units, rate_card_id, rate_id, "
        "rate_micros, cost_micros, currency, rerate_of, idx)),"
        " d AS ("
        " INSERT INTO usage_dedup (carrier, carrier_cdr_id, usage_id, "
        "started_at)"
        " SELECT carrier, carrier_cdr_id, id, started_at FROM b"
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
        " FROM b JOIN d ON d.usage_id = b.id"
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
        " FROM b WHERE b.rerate_of IS NOT NULL"
        " AND e.carrier = b.carrier AND e.carrier_cdr_id = b.carrier_cdr_id"
        " AND e.status <> 'resolved' RETURNING 1)"
        " SELECT b.idx FROM b WHERE NOT EXISTS (SELECT 1 FROM d WHERE "
        "d.usage_id = b.id)";

int meter_insert(struct batch *b, vox_pg_t *pg, PGresult **dups,
                 vox_error_t *err)
{
	PGconn *conn = vox_pg_conn(pg);
	const char *values[C_COUNT];
	int lengths[C_COUNT], formats[C_COUNT];
	PGresult *res;

	if (conn == NULL)
		return vox_error_set(err, VOX_ERR_UNAVAILABLE, true,
		                     "postgres: not connected");
	/* prepared once per connection (binary parameters: vox_pg_execp
	 * sends text) */
	if (b->m->insert_conn != vox_pg_connects(pg)) {
		res = PQprepare(conn, "meter_insert_rows", insert_sql, 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			int rc = vox_pg_error(pg, res, err);

			PQclear(res);
			return rc;
		}
		PQclear(res);
		b->m->insert_conn = vox_pg_connects(pg);
	}
	for (int k = 0; k < C_COUNT; k++) {
		values[k] = b->cols[k].data;
		lengths[k] = (int)b->cols[k].len;
		formats[k] = 1;
	}
	res = PQexecPrepared(conn, "meter_insert_rows", C_COUNT, values,
	                     lengths, formats, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		int rc = vox_pg_error(pg, res, err);

		PQclear(res);
		return rc;
	}
	*dups = res;
	return 0;
}
