/*
 * vox_crashguard: a record that kills the worker (segfault, abort, OOM
 * kill) does not stop the topic.
 *
 * Every polled batch (batch and handler mode) runs under an in-flight
 * mark (vox_inflight). A worker that gets offsets a dead process left
 * marked knows it died on them: it runs them in CRASH_SPLIT pieces, one
 * marked piece at a time, so each further crash shrinks the suspect range
 * CRASH_SPLIT times; a record that has killed the worker CRASH_LIMIT times
 * on its own is dead-lettered (vox-dlq-reason: crashed_worker) and its
 * offset moves on. Records that did not kill it are rated as usual (their
 * handlers are idempotent: running a piece again changes nothing).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "vox_consumer_int.h"
#include "vox_inflight.h"
#include "vox_log.h"

/* A record run alone that killed the worker this often is dead-lettered:
 * once could be a coincidence (an OOM kill of a busy process), twice on
 * its own is the record. */
#define CRASH_LIMIT 2
/* Pieces a suspect run is cut into per restart: 10,000 records take four
 * crashes to come down to one, then CRASH_LIMIT more on its own. */
#define CRASH_SPLIT 16

int vox_crashguard_begin(vox_consumer_t *c, vox_pg_t *pg,
                         const vox_batch_msg_t *msgs, size_t n, int attempts,
                         int64_t *mark, json_t **dead,
                         volatile sig_atomic_t *running)
{
	vox_error_t err;
	int outage = 0;

	*mark = 0;
	if (dead != NULL)
		*dead = NULL;
	if (pg == NULL || n == 0)
		return 0;
	while (vox_inflight_begin(pg, c->name, c->owner, msgs, n, attempts,
	                          mark, dead, &err) != 0) {
		if (err.code != VOX_ERR_UNAVAILABLE) {
			/* better unguarded than stopped */
			if (!c->guard_warned)
				vox_log(VOX_LOG_WARN,
				        "in-flight mark failed: batches run "
				        "without crash recovery",
				        "error", err.message, NULL);
			c->guard_warned = true;
			return 0;
		}
		vox_log(VOX_LOG_WARN, "postgres unavailable, waiting", "error",
		        err.message, NULL);
		if (!vox_consumer_nap(vox_consumer_backoff(c, ++outage),
		                      running))
			return VOX_CONSUMER_STOPPED;
	}
	return 0;
}

void vox_crashguard_end(vox_consumer_t *c, vox_pg_t *pg, int64_t mark,
                        volatile sig_atomic_t *running)
{
	vox_error_t err;
	int outage = 0;

	if (mark == 0)
		return;
	/* a mark left behind by a live worker is harmless; once it stops,
	 * the mark costs one careful run of a finished range */
	while (vox_inflight_clear(pg, mark, &err) != 0) {
		if (err.code != VOX_ERR_UNAVAILABLE ||
		    !vox_consumer_nap(vox_consumer_backoff(c, ++outage),
		                      running)) {
			vox_log(VOX_LOG_WARN, "in-flight mark not cleared",
			        "error", err.message, NULL);
			return;
		}
	}
}

/* The dead marks are recovered: forget them. */
static void guard_forget(vox_consumer_t *c, const json_t *dead,
                         volatile sig_atomic_t *running)
{
	vox_error_t err;
	int outage = 0;

	while (vox_inflight_forget(c->pg, dead, &err) != 0) {
		if (err.code != VOX_ERR_UNAVAILABLE ||
		    !vox_consumer_nap(vox_consumer_backoff(c, ++outage),
		                      running)) {
			vox_log(VOX_LOG_WARN,
			        "dead in-flight marks not deleted", "error",
			        err.message, NULL);
			return;
		}
	}
}

static int guard_dead_letter(vox_consumer_t *c, const rd_kafka_message_t *rkm,
                             int crashes, volatile sig_atomic_t *running)
{
	char part[16], off[24], times[16];

	snprintf(part, sizeof(part), "%" PRId32, rkm->partition);
	snprintf(off, sizeof(off), "%" PRId64, rkm->offset);
	snprintf(times, sizeof(times), "%d", crashes);
	vox_log(VOX_LOG_ERROR, "record killed the worker: dead-lettering it",
	        "topic", rd_kafka_topic_name(rkm->rkt), "partition", part,
	        "offset", off, "crashes", times, NULL);
	return vox_dlq_send(c, rkm, "crashed_worker", crashes, running) == 0
	               ? 0
	               : VOX_CONSUMER_STOPPED;
}

/* A batch being run in pieces. */
struct guard_pass {
	vox_consumer_t *c;
	rd_kafka_message_t **rkms;
	vox_batch_msg_t *msgs;
	vox_inflight_seen_t *seen;
	size_t n;
	json_t *left; /* dead marks not yet forgotten */
	volatile sig_atomic_t *running;
};

/* Pieces msgs[lo..hi) under its own mark; then forgets the dead marks
 * whose offsets are now all done (a later crash, before the whole batch
 * is, must not leave them behind: the consumer may never see those
 * offsets again). */
static int guard_piece(struct guard_pass *g, size_t lo, size_t hi, int attempts)
{
	json_t *done;
	int64_t mark;
	int rc;

	rc = vox_crashguard_begin(g->c, g->c->pg, g->msgs + lo, hi - lo,
	                          attempts, &mark, NULL, g->running);
	if (rc != 0)
		return rc;
	rc = vox_consumer_batch_finish(g->c, g->rkms + lo, g->msgs + lo,
	                               hi - lo, NULL, g->running);
	vox_crashguard_end(g->c, g->c->pg, mark, g->running);
	done = rc == 0 ? vox_inflight_finished(g->left, g->msgs, g->n, hi)
	               : NULL;
	if (done != NULL)
		guard_forget(g->c, done, g->running);
	json_decref(done);
	return rc;
}

/* A run of records that dead marks cover, in CRASH_SPLIT pieces; a piece
 * of one record is marked with the times it ran alone, so its next crash
 * counts. */
static int guard_suspects(struct guard_pass *g, size_t from, size_t to)
{
	size_t step = (to - from + CRASH_SPLIT - 1) / CRASH_SPLIT;
	const vox_inflight_seen_t *seen = g->seen;
	int rc = 0;

	for (size_t lo = from, hi; lo < to && rc == 0; lo = hi) {
		int crashes = 0;

		hi = to - lo < step ? to : lo + step;
		if (hi - lo == 1 && seen[lo].alone >= CRASH_LIMIT) {
			rc = guard_dead_letter(g->c, g->rkms[lo],
			                       seen[lo].alone, g->running);
			if (rc == 0)
				vox_consumer_store_offset(g->c, g->rkms[lo]);
			continue;
		}
		for (size_t i = lo; i < hi; i++)
			if (seen[i].crashes > crashes)
				crashes = seen[i].crashes;
		rc = guard_piece(g, lo, hi,
		                 hi - lo == 1 ? seen[lo].alone + 1
		                              : crashes + 1);
	}
	return rc;
}

int vox_crashguard_batch(vox_consumer_t *c, rd_kafka_message_t **rkms,
                         vox_batch_msg_t *msgs, size_t n, const json_t *dead,
                         volatile sig_atomic_t *running)
{
	struct guard_pass g = {c,      rkms,
	                       msgs,   calloc(n, sizeof(*g.seen)),
	                       n,      json_deep_copy(dead),
	                       running};
	char total[24], covered[24];
	int rc = 0;

	if (g.seen == NULL || g.left == NULL) { /* no memory to be careful */
		rc = vox_consumer_batch_finish(c, rkms, msgs, n, NULL, running);
		goto out;
	}
	snprintf(covered, sizeof(covered), "%zu",
	         vox_inflight_seen(dead, msgs, n, g.seen));
	snprintf(total, sizeof(total), "%zu", n);
	vox_log(VOX_LOG_WARN,
	        "a worker died on these offsets: running them in pieces",
	        "records", total, "suspect", covered, NULL);
	if (c->recoveries)
		vox_counter_inc(c->recoveries);
	/* runs of one crash count: the piece that crashed last time is a
	 * run of its own, cut smaller this time */
	for (size_t lo = 0, hi; lo < n && rc == 0; lo = hi) {
		for (hi = lo + 1;
		     hi < n && g.seen[hi].crashes == g.seen[lo].crashes; hi++)
			;
		if (g.seen[lo].crashes > 0)
			rc = guard_suspects(&g, lo, hi);
		else
			rc = guard_piece(&g, lo, hi, 1);
	}
	/* the rest reaches past this batch: forgotten too (a crash further
	 * on leaves a fresh mark) */
	if (rc == 0 && json_array_size(g.left) > 0)
		guard_forget(c, g.left, running);
out:
	json_decref(g.left);
	free(g.seen);
	return rc;
}

int vox_crashguard_message(vox_consumer_t *c, const rd_kafka_message_t *rkm,
                           volatile sig_atomic_t *running)
{
	vox_inflight_seen_t seen = {0, 0};
	vox_batch_msg_t view;
	json_t *dead = NULL;
	int64_t mark;
	int rc;

	vox_consumer_batch_view(rkm, &view);
	if (vox_crashguard_begin(c, c->pg, &view, 1, 1, &mark, &dead,
	                         running) != 0)
		return -1;
	if (dead != NULL) {
		/* it ran alone: its own mark counts its crashes */
		vox_inflight_seen(dead, &view, 1, &seen);
		vox_crashguard_end(c, c->pg, mark, running);
		if (c->recoveries)
			vox_counter_inc(c->recoveries);
		if (seen.alone >= CRASH_LIMIT) {
			rc = guard_dead_letter(c, rkm, seen.alone, running);
			goto out;
		}
		if (vox_crashguard_begin(c, c->pg, &view, 1, seen.alone + 1,
		                         &mark, NULL, running) != 0) {
			rc = -1;
			goto out_dead;
		}
	}
	rc = vox_consumer_message(c, rkm, running);
	vox_crashguard_end(c, c->pg, mark, running);
out:
	if (rc == 0 && dead != NULL)
		guard_forget(c, dead, running);
out_dead:
	json_decref(dead);
	return rc;
}

int vox_crashguard_messages(vox_consumer_t *c, rd_kafka_message_t **rkms,
                            vox_batch_msg_t *msgs, size_t n,
                            volatile sig_atomic_t *running)
{
	json_t *dead = NULL;
	int64_t mark;
	int rc = 0;

	if (vox_crashguard_begin(c, c->pg, msgs, n, 1, &mark, &dead, running) !=
	    0)
		return VOX_CONSUMER_STOPPED;
	if (dead == NULL) {
		rc = vox_consumer_messages(c, rkms, n, running);
		vox_crashguard_end(c, c->pg, mark, running);
		return rc;
	}
	/* A worker died on some of these: each runs alone under its own
	 * mark, which finds the dead marks over it (and forgets them once it
	 * is finished), so a record that kills us again is named by its
	 * mark. */
	vox_crashguard_end(c, c->pg, mark, running);
	json_decref(dead);
	vox_log(VOX_LOG_WARN,
	        "a worker died on these offsets: one message at a time", NULL);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (!*running)
			return VOX_CONSUMER_STOPPED;
		rc = vox_crashguard_message(c, rkms[i], running);
		if (rc == 0)
			vox_consumer_store_offset(c, rkms[i]);
		else
			rc = VOX_CONSUMER_STOPPED;
	}
	return rc;
}
