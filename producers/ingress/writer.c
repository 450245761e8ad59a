/*
 * Accepted rows, written in batches. Every command answered 202 has its
 * operation row committed first (so GET never says 404 for it); one
 * multi-row INSERT per batch turns thousands of commits a second into a
 * few hundred (group commit), which is what lets the ingress run at Kafka's
 * pace rather than at fsync's. One row per command: the history's
 * "accepted" step is the row's created_at (vox_op_get), not a row of
 * operation_events of its own.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingress.h"
#include "vox_log.h"

#define BATCH_MAX 2000

struct pending {
	vox_http_req_t *req;
	ingress_req_t *ir;
	vox_http_handler_fn then;
};

struct accept_writer {
	vox_pg_t *pg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct pending *queue;
	size_t len, cap;
	bool stop;
	vox_counter_t *rows, *batches, *failures;
};

/* Appends a PostgreSQL array element: quoted, with " and \ escaped. */
static void array_add(char **buf, size_t *len, size_t *cap, const char *v)
{
	size_t need = (v ? strlen(v) * 2 : 0) + 8;

	if (*len + need >= *cap) {
		size_t grown = (*cap + need) * 2;
		char *p = realloc(*buf, grown);

		if (p == NULL)
			return;
		*buf = p;
		*cap = grown;
	}
	if (*len > 1)
		(*buf)[(*len)++] = ',';
	if (v == NULL || *v == '\0') {
		memcpy(*buf + *len, "NULL", 4);
		*len += 4;
	} else {
		(*buf)[(*len)++] = '"';
		for (const char *c = v; *c; c++) {
			if (*c == '"' || *c == '\\')
				(*buf)[(*len)++] = '\\';
			(*buf)[(*len)++] = *c;
		}
		(*buf)[(*len)++] = '"';
	}
	(*buf)[*len] = '\0';
}

enum { COL_ID, COL_ACCOUNT, COL_KIND, COL_SUBJECT, COL_REQUEST, COL_AT, NCOL };

static int writer_flush(struct accept_writer *w, struct pending *batch,
                        size_t n, vox_error_t *err)
{
	char *cols[NCOL];
	size_t lens[NCOL], caps[NCOL];
	int rc;

	for (int c = 0; c < NCOL; c++) {
		caps[c] = 64 + n * 48;
		cols[c] = malloc(caps[c]);
		if (cols[c] != NULL)
			memcpy(cols[c], "{", 2);
		lens[c] = 1;
	}
	for (size_t i = 0; i < n; i++) {
		ingress_req_t *ir = batch[i].ir;

		array_add(&cols[COL_ID], &lens[COL_ID], &caps[COL_ID],
		          ir->op_id);
		array_add(&cols[COL_ACCOUNT], &lens[COL_ACCOUNT],
		          &caps[COL_ACCOUNT], ir->who.account_id);
		array_add(&cols[COL_KIND], &lens[COL_KIND], &caps[COL_KIND],
		          ir->kind);
		array_add(&cols[COL_SUBJECT], &lens[COL_SUBJECT],
		          &caps[COL_SUBJECT], ir->subject);
		array_add(&cols[COL_REQUEST], &lens[COL_REQUEST],
		          &caps[COL_REQUEST],
		          vox_http_request_id(batch[i].req));
		array_add(&cols[COL_AT], &lens[COL_AT], &caps[COL_AT],
		          ir->accepted_at);
	}
	for (int c = 0; c < NCOL; c++) {
		cols[c][lens[c]++] = '}';
		cols[c][lens[c]] = '\0';
	}
	rc = vox_pg_execp(
	        w->pg, "ingress_accept_batch",
	        "INSERT INTO operations (id, account_id, kind, status, "
	        "subject, request_id, created_at, updated_at) SELECT id, "
	        "account_id, kind, 'accepted', subject, request_id, at, at "
	        "FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], "
	        "$5::text[], $6::timestamptz[]) AS t(id, account_id, kind, "
	        "subject, request_id, at) ON CONFLICT (id) DO NOTHING",
	        NCOL, (const char *const *)cols, NULL, err);
	for (int c = 0; c < NCOL; c++)
		free(cols[c]);
	return rc;
}

static void *writer_loop(void *arg)
{
	struct accept_writer *w = arg;
	struct pending *batch = malloc(BATCH_MAX * sizeof(*batch));
	vox_error_t err;
	size_t n;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		while (w->len == 0 && !w->stop)
			pthread_cond_wait(&w->wake, &w->lock);
		if (w->len == 0 && w->stop) {
			pthread_mutex_unlock(&w->lock);
			break;
		}
		n = w->len < BATCH_MAX ? w->len : BATCH_MAX;
		memcpy(batch, w->queue, n * sizeof(*batch));
		memmove(w->queue, w->queue + n, (w->len - n) * sizeof(*batch));
		w->len -= n;
		pthread_mutex_unlock(&w->lock);

		if (writer_flush(w, batch, n, &err) != 0 &&
		    writer_flush(w, batch, n, &err) != 0) {
			/* Kafka has these commands: the worker will write
			 * their rows. Until then GET may not find them. */
			vox_counter_inc(w->failures);
			vox_log(VOX_LOG_ERROR, "accepted rows not written",
			        "error", err.message, NULL);
		}
		vox_counter_add(w->rows, n);
		vox_counter_inc(w->batches);
		for (size_t i = 0; i < n; i++)
			vox_http_resume(batch[i].req, batch[i].then);
	}
	free(batch);
	return NULL;
}

struct accept_writer *accept_writer_new(const char *pg_url,
                                        vox_metrics_t *metrics)
{
	struct accept_writer *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->pg = vox_pg_new(pg_url);
	w->cap = 1024;
	w->queue = malloc(w->cap * sizeof(*w->queue));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	w->rows = vox_metrics_counter(metrics, "vox_accept_rows_total",
	                              "Accepted operation rows written", NULL);
	w->batches = vox_metrics_counter(metrics, "vox_accept_batches_total",
	                                 "Batches of accepted rows", NULL);
	w->failures = vox_metrics_counter(
	        metrics, "vox_accept_batch_failures_total",
	        "Batches of accepted rows that could not be written", NULL);
	if (w->pg == NULL || w->queue == NULL ||
	    pthread_create(&w->thread, NULL, writer_loop, w) != 0) {
		vox_pg_destroy(w->pg);
		free(w->queue);
		free(w);
		return NULL;
	}
	return w;
}

int accept_writer_warm(struct accept_writer *w, vox_error_t *err)
{
	/* before the server listens nothing is queued: the writer thread
	 * does not touch its connection yet */
	return vox_pg_connect(w->pg, 0, err);
}

void accept_writer_destroy(struct accept_writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	vox_pg_destroy(w->pg);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	free(w->queue);
	free(w);
}

void accept_writer_submit(struct accept_writer *w, vox_http_req_t *req,
                          ingress_req_t *ir, vox_http_handler_fn then)
{
	pthread_mutex_lock(&w->lock);
	if (w->len == w->cap) {
		struct pending *grown =
		        realloc(w->queue, w->cap * 2 * sizeof(*grown));

		if (grown != NULL) {
			w->queue = grown;
			w->cap *= 2;
		}
	}
	if (w->len < w->cap) {
		w->queue[w->len++] = (struct pending){req, ir, then};
		pthread_cond_signal(&w->wake);
		pthread_mutex_unlock(&w->lock);
		return;
	}
	pthread_mutex_unlock(&w->lock);
	vox_http_resume(req, then); /* out of memory: answer without the row */
}
