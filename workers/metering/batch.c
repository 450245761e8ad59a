/*
 * metering: one batch of vox.cdr.raw messages in one transaction.
 *
 *  1. parse each message, look up our numbers, price each record
 *     (pricing.c); bad records become exceptions (exceptions.c)
 *  2. check the batch's accounts once (accounts.c); write the priced
 *     records, sent as arrays, in one statement: duplicates drop out,
 *     usage_daily is updated (store.c)
 *  3. usage triggers of the touched accounts and days (triggers.c)
 *  4. vox.usage.rated events (rated.c)
 * All through the outbox and in the caller's transaction: a crash
 * anywhere leaves nothing half-done, and a redelivered batch is skipped by
 * usage_dedup. Step 1 may run ahead on the polling thread (meter_prepare)
 * while the writer commits the previous batch.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "vox_log.h"
#include "vox_time.h"

static void batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->nrecs; i++)
		json_decref(b->recs[i].data);
	free(b->recs);
	free(b->nums);
	meter_rows_free(b);
	free(b);
}

/* Milliseconds on the monotonic clock, for the phase times. */
static double ms_now(void)
{
	return (double)vox_mono_us() / 1000.0;
}

/* Everything before the writes: parse, look up the numbers, price, build
 * the rows' arrays. pg may be outside any transaction (it only reads). */
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
		meter_parse(b, i, &b->recs[i]);
		if (b->recs[i].reason_code == NULL)
			meter_number_slot(b, b->recs[i].cdr.number);
	}
	b->nrecs = n;
	rc = meter_numbers_load(b, pg, err);
	if (rc == 0) {
		pthread_mutex_lock(&m->cards_lock);
		rc = meter_cards_refresh(m, pg, err);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (b->recs[i].reason_code == NULL)
				meter_rate(b, &b->recs[i]);
			b->good += b->recs[i].reason_code == NULL;
		}
		pthread_mutex_unlock(&m->cards_lock);
	}
	if (rc == 0 && meter_rows_build(b) != 0)
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
	PGresult *dups = NULL;
	size_t bad = 0, rated = 0;
	/* phase times (ms): build (when not prepared), accounts, insert,
	 * triggers, events, exceptions */
	double t[7];
	size_t gone = 0;
	int rc = 0;

	t[0] = ms_now();
	if (b == NULL) {
		b = batch_build(ctx, pg, msgs, n, err);
		if (b == NULL)
			return err->code;
	}
	for (size_t i = 0; i < b->nrecs; i++)
		b->recs[i].inserted = 0;
	t[1] = ms_now();
	if (b->good > 0) {
		/* records of accounts gone since the lookup become exceptions:
		 * their rows are built again without them */
		rc = meter_accounts_check(b, pg, &gone, err);
		if (rc == 0 && gone > 0) {
			meter_rows_free(b);
			if (meter_rows_build(b) != 0)
				rc = vox_error_set(err, VOX_ERR_NOMEM, true,
				                   "oom");
		}
		if (rc != 0)
			goto out;
	}
	t[2] = t[3] = t[4] = t[5] = ms_now();
	if (b->good > 0) {
		rc = meter_insert(b, pg, &dups, err);
		t[3] = ms_now();
		/* every priced record went in but the duplicates returned */
		for (size_t i = 0; rc == 0 && i < b->nrecs; i++)
			b->recs[i].inserted = b->recs[i].reason_code == NULL;
		for (int i = 0; rc == 0 && i < PQntuples(dups); i++) {
			long k = strtol(PQgetvalue(dups, i, 0), NULL, 10);

			if (k >= 0 && (size_t)k < b->nrecs)
				b->recs[k].inserted = 0;
		}
		for (size_t i = 0; rc == 0 && i < b->nrecs; i++)
			rated += (size_t)b->recs[i].inserted;
		if (rc == 0 && rated > 0)
			rc = meter_triggers(b, pg, err);
		t[4] = ms_now();
		if (rc == 0 && rated > 0)
			rc = meter_rated_events(b, pg, err);
		t[5] = ms_now();
		if (rc != 0)
			goto out;
	}
	for (size_t i = 0; i < b->nrecs && rc == 0; i++)
		if (b->recs[i].reason_code != NULL) {
			rc = meter_exception_write(b, pg, &b->recs[i], err);
			bad++;
		}
	t[6] = ms_now();
	if (rc == 0) {
		char line[320];

		snprintf(line, sizeof(line),
		         "batch: %zu messages, %zu rated, %zu duplicates, %zu "
		         "exceptions; ms: build %.1f, accounts %.1f, insert "
		         "%.1f, triggers %.1f, events %.1f, exceptions %.1f%s",
		         n, rated, b->good - rated, bad, t[1] - t[0],
		         t[2] - t[1], t[3] - t[2], t[4] - t[3], t[5] - t[4],
		         t[6] - t[5], prepared ? " (prepared)" : "");
		vox_log(VOX_LOG_DEBUG, line, NULL);
	}
out:
	PQclear(dups);
	if (b != prepared)
		batch_free(b);
	return rc;
}
