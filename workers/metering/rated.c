/*
 * metering: vox.usage.rated events on vox.events, through the outbox: one
 * per account per VOX_USAGE_RATED_MAX new records, the records in batch
 * order. The text is built by vox_usage_rated_event (common/, fuzzed by
 * tests/fuzz/fuzz_rated.c); each event is a child of the trace of its
 * first record.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "vox_buf.h"
#include "vox_usage_event.h"

/* Events of one batch: one buffer and one record array, reused. */
struct rated {
	vox_buf_t text;
	vox_rated_rec_t recs[VOX_USAGE_RATED_MAX];
	const struct rec *first;
	size_t n;
};

static void rated_add(struct rated *ev, const struct rec *r)
{
	vox_rated_rec_t *out = &ev->recs[ev->n++];

	if (ev->n == 1)
		ev->first = r;
	out->usage_id = r->usage_id;
	out->carrier = r->carrier;
	out->carrier_cdr_id = r->cdr.id;
	out->number = r->cdr.number;
	out->type = r->cdr.type;
	out->started_us = r->cdr.started_us;
	out->billable_s = r->charge.billable_s;
	out->units = r->charge.units;
	out->cost_micros = r->charge.cost_micros;
}

/* Writes the collected records as one event and starts the next. */
static int rated_flush(struct rated *ev, vox_pg_t *pg, vox_error_t *err)
{
	const struct rec *first = ev->first;
	int rc;

	if (ev->n == 0)
		return 0;
	vox_buf_reset(&ev->text);
	vox_usage_rated_event(
	        &ev->text, first->num->account_id, first->currency,
	        first->trace[0] ? first->trace : NULL, ev->recs, ev->n);
	rc = vox_event_emit_buf(pg, VOX_USAGE_RATED_TYPE,
	                        first->num->account_id, &ev->text, err);
	ev->n = 0;
	return rc;
}

int meter_rated_events(struct batch *b, vox_pg_t *pg, vox_error_t *err)
{
	struct rated *ev = malloc(sizeof(*ev));
	char *done = calloc(b->nrecs ? b->nrecs : 1, 1);
	int rc = 0;

	if (ev == NULL || done == NULL) {
		free(ev);
		free(done);
		return vox_error_set(err, VOX_ERR_NOMEM, true, "oom");
	}
	vox_buf_init(&ev->text, VOX_EVENT_MAX_BYTES);
	ev->n = 0;
	for (size_t i = 0; rc == 0 && i < b->nrecs; i++) {
		const char *account;

		if (!b->recs[i].inserted || done[i])
			continue;
		account = b->recs[i].num->account_id;
		for (size_t j = i; rc == 0 && j < b->nrecs; j++) {
			if (!b->recs[j].inserted || done[j] ||
			    strcmp(b->recs[j].num->account_id, account) != 0)
				continue;
			done[j] = 1;
			rated_add(ev, &b->recs[j]);
			if (ev->n == VOX_USAGE_RATED_MAX)
				rc = rated_flush(ev, pg, err);
		}
		if (rc == 0)
			rc = rated_flush(ev, pg, err);
	}
	vox_buf_free(&ev->text);
	free(ev);
	free(done);
	return rc;
}
