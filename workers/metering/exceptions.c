/*
 * metering: records that cannot be rated are kept in usage_exceptions with
 * their reason (one row per carrier record id, counted when seen again)
 * and their message is dead-lettered, unless the record was in fact
 * already rated (a duplicate of a counted one).
 */
#include <stdio.h>
#include <stdlib.h>

#include "batch.h"

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
int meter_exception_write(struct batch *b, vox_pg_t *pg, struct rec *r,
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
