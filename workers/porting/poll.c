/*
 * The tick's second job: a lost webhook. A leaf the carrier has been silent
 * about for VOX_PORTING_POLL_AFTER_S (submitted, in-process, cancel-pending;
 * foc-date-confirmed once its FOC is that far past) is read at the carrier
 * (vox_carrier_port_get); a status that moved on is applied as the
 * carrier's event would have been (por_carrier_event, event id
 * "poll:<carrier order id>:<status>": polling again changes nothing). The
 * carrier's `ported` seen from before `foc-date-confirmed` is applied as
 * both moves, the FOC first. A poll does not learn the ported numbers'
 * carrier ids (the webhook carries them): numbers completed by a poll have
 * none until the carrier says.
 *
 * Each leaf is polled at most once per VOX_PORTING_POLL_AFTER_S by this
 * process (a small memory of the tick thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "porting.h"
#include "vox_buf.h"
#include "vox_carrier_port.h"
#include "vox_json.h"
#include "vox_log.h"
#include "vox_porting.h"
#include "vox_time.h"

#define POLL_MEMORY 512

struct polled {
	char id[40];
	long long at_us;
};

/* The tick thread's only: when each leaf was polled last. */
static struct polled polled[POLL_MEMORY];

/* Whether id was polled within every_us; else it is remembered as polled
 * now (in the free or oldest slot). */
static bool polled_recently(const char *id, long long now, long long every_us)
{
	int oldest = 0;

	for (int i = 0; i < POLL_MEMORY; i++) {
		if (strcmp(polled[i].id, id) == 0) {
			if (now - polled[i].at_us < every_us)
				return true;
			polled[i].at_us = now;
			return false;
		}
		if (polled[i].at_us < polled[oldest].at_us)
			oldest = i;
	}
	snprintf(polled[oldest].id, sizeof(polled[oldest].id), "%s", id);
	polled[oldest].at_us = now;
	return false;
}

/* The ids polled within every_us, as a PostgreSQL uuid[] literal, for
 * the candidates to skip (so the oldest silent leaves do not hold every
 * tick's batch). NULL when out of memory. */
static char *polled_list(long long now, long long every_us)
{
	vox_buf_t b;
	char *out;

	vox_buf_init(&b, POLL_MEMORY * 40 + 4);
	vox_buf_adds(&b, "{");
	for (int i = 0, n = 0; i < POLL_MEMORY; i++)
		if (*polled[i].id != '\0' && now - polled[i].at_us < every_us)
			vox_buf_printf(&b, "%s%s", n++ ? "," : "",
			               polled[i].id);
	vox_buf_adds(&b, "}");
	out = vox_buf_take(&b, NULL);
	if (out == NULL)
		vox_buf_free(&b);
	return out;
}

struct poll_apply {
	struct porting_ctx *pc;
	vox_message_t msg;
};

static int poll_apply_tx(vox_pg_t *pg, void *arg, vox_error_t *err)
{
	struct poll_apply *pa = arg;

	return por_carrier_event(pg, &pa->msg, pa->pc, err);
}

/* The carrier's status as the event the webhook would have carried. */
static int poll_apply(vox_pg_t *pg, struct porting_ctx *pc, const char *leaf,
                      const char *carrier_order, const char *status,
                      const vox_carrier_port_t *got, vox_error_t *err)
{
	struct poll_apply pa = {.pc = pc};
	json_t *exceptions = json_array(), *data;
	char id[160];
	int rc;

	for (int i = 0;
	     i < got->n_exceptions && i < VOX_CARRIER_PORT_EXCEPTIONS_MAX; i++)
		json_array_append_new(
		        exceptions,
		        json_pack("{s:s, s:s}", "code", got->exceptions[i].code,
		                  "field", got->exceptions[i].field));
	snprintf(id, sizeof(id), "poll:%s:%s", carrier_order, status);
	data = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s?, s:o, s:[]}}",
	                 "id", id, "event_type", "porting_order.status_changed",
	                 "carrier", pc->carrier_name, "payload", "id",
	                 carrier_order, "customer_reference", leaf, "status",
	                 status, "foc_date",
	                 *got->foc_date != '\0' ? got->foc_date : NULL,
	                 "exceptions", exceptions, "phone_numbers");
	if (data == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	pa.msg.data = data;
	pa.msg.id = id;
	pa.msg.type = "vox.porting.carrier_event";
	pa.msg.subject = leaf;
	pa.msg.topic = "vox.cmd.porting";
	rc = vox_pg_transaction(pg, poll_apply_tx, &pa, err);
	json_decref(data);
	return rc;
}

static void poll_one(vox_pg_t *pg, struct porting_ctx *pc, const char *leaf,
                     const char *carrier_order, const char *ours)
{
	vox_carrier_port_t got;
	vox_error_t err;
	int rc = 0;

	if (vox_carrier_port_get(pc->carrier, carrier_order, &got, &err) != 0) {
		vox_log(VOX_LOG_WARN, "polling a carrier porting order failed",
		        "order_id", leaf, "carrier_order_id", carrier_order,
		        "error", err.message, NULL);
		return;
	}
	if (strcmp(got.status, ours) == 0)
		return;
	vox_log(VOX_LOG_WARN,
	        "a carrier porting order moved without a webhook: applying "
	        "what the carrier says",
	        "order_id", leaf, "carrier_order_id", carrier_order, "status",
	        ours, "carrier_status", got.status, NULL);
	/* ported seen from before the FOC: the FOC's move first */
	if (strcmp(got.status, "ported") == 0 &&
	    !vox_porting_move_allowed(ours, "ported") &&
	    vox_porting_move_allowed(ours, "foc-date-confirmed"))
		rc = poll_apply(pg, pc, leaf, carrier_order,
		                "foc-date-confirmed", &got, &err);
	if (rc == 0)
		rc = poll_apply(pg, pc, leaf, carrier_order, got.status, &got,
		                &err);
	if (rc != 0)
		vox_log(VOX_LOG_WARN, "applying a polled porting status failed",
		        "order_id", leaf, "error", err.message, NULL);
}

void por_poll(vox_pg_t *pg, void *ctx)
{
	struct porting_ctx *pc = ctx;
	long long now = vox_now_us(), every = pc->poll_after_s * 1000000LL;
	char after[24], limit[24], *skip;
	vox_error_t err;
	PGresult *res;
	int rc;

	if (pc->poll_after_s <= 0)
		return;
	if ((skip = polled_list(now, every)) == NULL)
		return;
	snprintf(after, sizeof(after), "%ld", pc->poll_after_s);
	snprintf(limit, sizeof(limit), "%ld", pc->poll_batch);
	const char *params[] = {after, limit, skip};
	rc = vox_pg_execp(pg, "por_poll_candidates",
	                  "SELECT id, carrier_order_id, status FROM "
	                  "porting_orders WHERE carrier_order_id IS NOT NULL "
	                  "AND status IN ('submitted', 'in-process', "
	                  "'foc-date-confirmed', 'cancel-pending') AND "
	                  "updated_at < now() - make_interval(secs => "
	                  "$1::int) AND (status <> 'foc-date-confirmed' OR "
	                  "foc_date < now() - make_interval(secs => $1::int)) "
	                  "AND id <> ALL ($3::uuid[]) ORDER BY updated_at "
	                  "LIMIT $2::int",
	                  3, params, &res, &err);
	free(skip);
	if (rc != 0) {
		vox_log(VOX_LOG_WARN, "porting poll: candidates", "error",
		        err.message, NULL);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *leaf = PQgetvalue(res, i, 0);

		if (!polled_recently(leaf, now, every))
			poll_one(pg, pc, leaf, PQgetvalue(res, i, 1),
			         PQgetvalue(res, i, 2));
	}
	PQclear(res);
}
