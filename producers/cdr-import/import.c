/*
 * cdr-import, one file: each CSV row becomes a JSON record checked by
 * vox_cdr_parse(), then the vox.cdr.received event on vox.cdr.raw (key:
 * our number) through the idempotent producer. Rows are queued in line
 * order in a ring; delivery reports (which come per partition, so out of
 * order) mark their slot, and the ring's head advances over every slot
 * that is done: the checkpoint is the line of the last slot passed, so
 * every row up to it is acknowledged (or rejected, in the rejects file).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "import.h"
#include "vox_cdr.h"
#include "vox_csv.h"
#include "vox_log.h"
#include "vox_time.h"

const char *const import_columns[IMPORT_NCOLUMNS] = {
        "id", "type", "from", "to", "started_at", "duration_s", "segments"};
#define FIRST_NUMERIC_COLUMN 5 /* duration_s, segments */

#define RING_SLOTS       65536
#define SAVE_INTERVAL_S  0.5
#define SAVE_EVERY_LINES 5000

enum slot_state { SLOT_PENDING = 0, SLOT_DONE, SLOT_FAILED };

struct inflight;
struct slot {
	struct inflight *owner;
	long line;
	long long rejects_end; /* rejects file size once this row was done */
	int state;
};

/* Rows between being read and being passed by the head. */
struct inflight {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct slot *slots;
	unsigned long head, tail; /* slot n is slots[n % RING_SLOTS] */
	long sent, reported, acked;
	bool failed;
	char error[256];
};

struct file_import {
	const import_opts_t *opts;
	vox_producer_t *producer;
	import_stats_t *stats;
	checkpoint_t cp;
	long resume_line; /* rows starting on lines <= this were done before */
	long saved_line;
	double saved_at;
	FILE *in;
	vox_csv_t *csv;
	int col[IMPORT_NCOLUMNS];
	size_t ncolumns;
	char **header;
	FILE *rejects;
	long long rejects_pos;
	struct inflight fl;
	progress_t *pg;
	double started;
};

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (long)s) * 1e9)};

	nanosleep(&ts, NULL);
}

static bool stopping(void)
{
	return import_stop_signal != 0;
}

/* ------------------------------------------------------------- header */

static int map_header(vox_csv_t *csv, const char *path,
                      int col[IMPORT_NCOLUMNS], vox_error_t *err)
{
	int rc = vox_csv_next(csv, err);

	if (rc == 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: empty file, no header line", path);
	if (rc < 0)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: header: %s", path, err->message);
	for (int i = 0; i < IMPORT_NCOLUMNS; i++)
		col[i] = -1;
	for (size_t f = 0; f < vox_csv_nfields(csv); f++) {
		const char *name = vox_csv_field(csv, f, NULL);

		for (int i = 0; i < IMPORT_NCOLUMNS; i++) {
			if (strcasecmp(name, import_columns[i]) != 0)
				continue;
			if (col[i] >= 0)
				return vox_error_set(
				        err, VOX_ERR_INVALID, false,
				        "%s: column \"%s\" named twice in the "
				        "header",
				        path, import_columns[i]);
			col[i] = (int)f;
		}
	}
	for (int i = 0; i < IMPORT_NCOLUMNS; i++)
		if (col[i] < 0)
			return vox_error_set(
			        err, VOX_ERR_INVALID, false,
			        "%s: the header has no \"%s\" column (needs "
			        "id,type,from,to,started_at,duration_s,"
			        "segments "
			        "in any order)",
			        path, import_columns[i]);
	return 0;
}

int import_check_header(const char *path, int col[IMPORT_NCOLUMNS],
                        vox_error_t *err)
{
	FILE *in = fopen(path, "rb");
	vox_csv_t *csv;
	int rc;

	if (in == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false, "%s: %s",
		                     path, strerror(errno));
	csv = vox_csv_new(in, 0);
	rc = csv ? map_header(csv, path, col, err)
	         : vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
	vox_csv_destroy(csv);
	fclose(in);
	return rc;
}

/* ------------------------------------------------------------- ring */

static void on_delivery(void *opaque, const vox_error_t *err, int32_t partition,
                        int64_t offset)
{
	struct slot *slot = opaque;
	struct inflight *fl = slot->owner;

	(void)partition;
	(void)offset;
	pthread_mutex_lock(&fl->lock);
	if (err != NULL) {
		slot->state = SLOT_FAILED;
		if (!fl->failed)
			snprintf(fl->error, sizeof(fl->error), "%s",
			         err->message);
		fl->failed = true;
	} else {
		slot->state = SLOT_DONE;
		fl->acked++;
	}
	fl->reported++;
	pthread_cond_broadcast(&fl->changed);
	pthread_mutex_unlock(&fl->lock);
}

/* Moves the head over done slots; the checkpoint follows it. */
static void advance(struct file_import *fi)
{
	struct inflight *fl = &fi->fl;

	pthread_mutex_lock(&fl->lock);
	while (fl->head < fl->tail) {
		struct slot *s = &fl->slots[fl->head % RING_SLOTS];

		if (s->state != SLOT_DONE)
			break;
		fi->cp.line = s->line;
		fi->cp.rejects_bytes = s->rejects_end;
		fl->head++;
	}
	pthread_mutex_unlock(&fl->lock);
}

static int save(struct file_import *fi, vox_error_t *err)
{
	if (fi->rejects != NULL &&
	    (fflush(fi->rejects) != 0 || fsync(fileno(fi->rejects)) != 0))
		return vox_error_set(err, VOX_ERR_UNAVAILABLE, false,
		                     "writing %s: %s", fi->cp.rejects,
		                     strerror(errno));
	if (checkpoint_save(&fi->cp, err) != 0)
		return err->code;
	fi->saved_line = fi->cp.line;
	fi->saved_at = vox_mono_seconds();
	return 0;
}

static int maybe_save(struct file_import *fi, vox_error_t *err)
{
	advance(fi);
	if (fi->cp.line == fi->saved_line ||
	    (vox_mono_seconds() - fi->saved_at < SAVE_INTERVAL_S &&
	     fi->cp.line - fi->saved_line < SAVE_EVERY_LINES))
		return 0;
	return save(fi, err);
}

/* Takes the next slot, waiting while the ring is full. NULL when a stop
 * signal or a failed delivery ends the wait. */
static struct slot *slot_take(struct file_import *fi, long line, int state)
{
	struct inflight *fl = &fi->fl;
	struct slot *s;

	while (fl->tail - fl->head >= RING_SLOTS) {
		advance(fi);
		if (fl->tail - fl->head < RING_SLOTS)
			break;
		if (stopping() || fl->failed)
			return NULL;
		sleep_s(0.005);
	}
	pthread_mutex_lock(&fl->lock);
	s = &fl->slots[fl->tail % RING_SLOTS];
	s->owner = fl;
	s->line = line;
	s->rejects_end = fi->rejects_pos;
	s->state = state;
	fl->tail++;
	pthread_mutex_unlock(&fl->lock);
	return s;
}

/* Waits for the report of every message sent. */
static void drain(struct file_import *fi)
{
	struct inflight *fl = &fi->fl;

	pthread_mutex_lock(&fl->lock);
	while (fl->reported < fl->sent) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&fl->changed, &fl->lock, &until);
		pthread_mutex_unlock(&fl->lock);
		progress_update(fi->pg, vox_csv_offset(fi->csv),
		                fi->stats->read, fl->acked, false);
		pthread_mutex_lock(&fl->lock);
	}
	pthread_mutex_unlock(&fl->lock);
}

/* ------------------------------------------------------------- rows */

static int rejects_open(struct file_import *fi, vox_error_t *err)
{
	fi->rejects = fopen(fi->cp.rejects, "a");
	if (fi->rejects == NULL)
		return vox_error_set(err, VOX_ERR_UNAVAILABLE, false, "%s: %s",
		                     fi->cp.rejects, strerror(errno));
	if (ftell(fi->rejects) == 0) {
		fputs("line,reason,detail", fi->rejects);
		for (size_t i = 0; i < fi->ncolumns; i++) {
			fputc(',', fi->rejects);
			vox_csv_write_field(fi->rejects, fi->header[i]);
		}
		fputs("\r\n", fi->rejects);
	}
	return 0;
}

/* Writes the row to the rejects file and queues it as done. */
static int reject(struct file_import *fi, long line, const char *reason,
                  const char *detail, bool with_fields, vox_error_t *err)
{
	if (fi->rejects == NULL && rejects_open(fi, err) != 0)
		return err->code;
	fprintf(fi->rejects, "%ld,%s,", line, reason);
	vox_csv_write_field(fi->rejects, detail);
	for (size_t i = 0; with_fields && i < vox_csv_nfields(fi->csv); i++) {
		fputc(',', fi->rejects);
		vox_csv_write_field(fi->rejects,
		                    vox_csv_field(fi->csv, i, NULL));
	}
	fputs("\r\n", fi->rejects);
	fi->rejects_pos = ftell(fi->rejects);
	fi->stats->rejected++;
	stats_count_reason(fi->stats, reason, 1);
	return slot_take(fi, line, SLOT_DONE) ? 0 : 1;
}

static bool integer_text(const char *s, size_t len)
{
	size_t i = s[0] == '-' ? 1 : 0;

	if (len <= i || len - i > 18)
		return false;
	for (; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* The row as the JSON record the ingress would receive; empty cells are
 * absent. NULL when a cell is not UTF-8. */
static json_t *row_record(struct file_import *fi)
{
	json_t *rec = json_object(), *value;

	for (int i = 0; rec && i < IMPORT_NCOLUMNS; i++) {
		size_t len;
		const char *cell =
		        vox_csv_field(fi->csv, (size_t)fi->col[i], &len);

		if (len == 0)
			continue;
		if (i >= FIRST_NUMERIC_COLUMN && integer_text(cell, len))
			value = json_integer(strtoll(cell, NULL, 10));
		else
			value = json_stringn(cell, len);
		if (value == NULL) {
			json_decref(rec);
			return NULL;
		}
		json_object_set_new(rec, import_columns[i], value);
	}
	return rec;
}

static int send_row(struct file_import *fi, const vox_cdr_t *cdr, long line,
                    vox_error_t *err)
{
	char event[1024];
	struct slot *s;
	int len = vox_cdr_event(cdr, fi->opts->carrier, "file", event,
	                        sizeof(event));

	if (len < 0)
		return reject(fi, line, "internal", "event too large", true,
		              err);
	s = slot_take(fi, line, SLOT_PENDING);
	if (s == NULL)
		return 1;
	for (;;) {
		int rc = vox_producer_send(fi->producer, VOX_CDR_TOPIC,
		                           cdr->number, event, (size_t)len,
		                           NULL, 0, on_delivery, s, err);

		if (rc == 0)
			break;
		if (rc != VOX_ERR_LIMIT || stopping() || fi->fl.failed) {
			/* Never sent: the slot is the last one, take it back.
			 */
			pthread_mutex_lock(&fi->fl.lock);
			fi->fl.tail--;
			if (rc != VOX_ERR_LIMIT && !fi->fl.failed) {
				fi->fl.failed = true;
				snprintf(fi->fl.error, sizeof(fi->fl.error),
				         "%s", err->message);
			}
			pthread_mutex_unlock(&fi->fl.lock);
			return 1;
		}
		sleep_s(0.002); /* librdkafka's queue is full */
	}
	pthread_mutex_lock(&fi->fl.lock);
	fi->fl.sent++;
	pthread_mutex_unlock(&fi->fl.lock);
	return 0;
}

/* One row: 0 handled, 1 stop reading, < 0 an error of ours. */
static int import_row(struct file_import *fi, vox_error_t *err)
{
	long line = vox_csv_line(fi->csv);
	const char *reason = NULL;
	char detail[96];
	vox_error_t why;
	vox_cdr_t cdr;
	json_t *rec;
	int rc;

	if (vox_csv_nfields(fi->csv) != fi->ncolumns) {
		snprintf(detail, sizeof(detail),
		         "the row has %zu fields, the header %zu",
		         vox_csv_nfields(fi->csv), fi->ncolumns);
		return reject(fi, line, "malformed_row", detail, true, err);
	}
	rec = row_record(fi);
	if (rec == NULL)
		return reject(fi, line, "invalid_encoding",
		              "a field is not UTF-8", true, err);
	rc = vox_cdr_parse(rec, vox_now_us(), &cdr, &reason, &why);
	json_decref(rec);
	if (rc != 0)
		return reject(fi, line, reason ? reason : "invalid",
		              why.message, true, err);
	return send_row(fi, &cdr, line, err);
}

static void pace(struct file_import *fi)
{
	double due;

	if (fi->opts->max_rate <= 0)
		return;
	due = fi->started + (double)fi->fl.sent / (double)fi->opts->max_rate;
	while (!stopping()) {
		double now = vox_mono_seconds();

		if (now >= due)
			break;
		sleep_s(due - now < 0.05 ? due - now : 0.05);
	}
}

/* Reads rows until the end, a stop signal or a failed delivery. */
static int read_rows(struct file_import *fi, bool *eof, vox_error_t *err)
{
	vox_error_t bad;
	long n = 0;
	int rc;

	while (!stopping() && !fi->fl.failed) {
		rc = vox_csv_next(fi->csv, &bad);
		if (rc == 0) {
			*eof = true;
			return 0;
		}
		fi->stats->read++;
		if (vox_csv_line(fi->csv) <= fi->resume_line) {
			fi->stats->skipped++;
			continue;
		}
		if (rc < 0)
			rc = reject(fi, vox_csv_line(fi->csv),
			            rc == VOX_ERR_LIMIT ? "row_too_long"
			                                : "malformed_row",
			            bad.message, false, err);
		else
			rc = import_row(fi, err);
		if (rc < 0)
			return rc;
		if (rc > 0)
			return 0;
		pace(fi);
		if ((++n & 63) == 0) {
			if (maybe_save(fi, err) != 0)
				return err->code;
			progress_update(fi->pg, vox_csv_offset(fi->csv),
			                fi->stats->read, fi->fl.acked, false);
		}
	}
	return 0;
}

/* ------------------------------------------------------------- setup */

static int prepare(struct file_import *fi, const char *path, vox_error_t *err)
{
	char mismatch[160];
	struct stat st;
	int rc;

	if (checkpoint_init(&fi->cp, path, fi->opts->checkpoint_dir,
	                    fi->opts->carrier, err) != 0)
		return err->code;
	rc = fi->opts->restart ? 0
	                       : checkpoint_load(&fi->cp, mismatch,
	                                         sizeof(mismatch), err);
	if (rc < 0)
		return rc;
	if (rc == 0 && !fi->opts->restart && mismatch[0])
		vox_log(VOX_LOG_WARN,
		        "checkpoint ignored, importing from the start", "file",
		        path, "checkpoint", fi->cp.path, "why", mismatch, NULL);
	if (rc == 1) {
		fi->resume_line = fi->cp.line;
		/* Rejects of rows after the checkpoint are written again. */
		if (stat(fi->cp.rejects, &st) == 0 &&
		    st.st_size > fi->cp.rejects_bytes &&
		    truncate(fi->cp.rejects, fi->cp.rejects_bytes) != 0)
			return vox_error_set(err, VOX_ERR_INVALID, false,
			                     "%s: %s", fi->cp.rejects,
			                     strerror(errno));
	} else if (unlink(fi->cp.rejects) != 0 && errno != ENOENT) {
		return vox_error_set(err, VOX_ERR_INVALID, false, "%s: %s",
		                     fi->cp.rejects, strerror(errno));
	}
	fi->rejects_pos = fi->cp.rejects_bytes;
	fi->in = fopen(path, "rb");
	if (fi->in == NULL)
		return vox_error_set(err, VOX_ERR_INVALID, false, "%s: %s",
		                     path, strerror(errno));
	fi->csv = vox_csv_new(fi->in, 0);
	fi->fl.slots = calloc(RING_SLOTS, sizeof(*fi->fl.slots));
	if (fi->csv == NULL || fi->fl.slots == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
	if (map_header(fi->csv, path, fi->col, err) != 0)
		return err->code;
	fi->ncolumns = vox_csv_nfields(fi->csv);
	fi->header = calloc(fi->ncolumns, sizeof(*fi->header));
	if (fi->header == NULL)
		return vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
	for (size_t i = 0; i < fi->ncolumns; i++)
		if ((fi->header[i] = strdup(vox_csv_field(fi->csv, i, NULL))) ==
		    NULL)
			return vox_error_set(err, VOX_ERR_NOMEM, false, "oom");
	if (rc != 1) {
		fi->cp.line = vox_csv_line(fi->csv);
		fi->resume_line = 0;
	}
	fi->saved_line = rc == 1 ? fi->cp.line : -1;
	return 0;
}

static void cleanup(struct file_import *fi)
{
	if (fi->rejects != NULL)
		fclose(fi->rejects);
	for (size_t i = 0; fi->header && i < fi->ncolumns; i++)
		free(fi->header[i]);
	free(fi->header);
	vox_csv_destroy(fi->csv);
	if (fi->in != NULL)
		fclose(fi->in);
	free(fi->fl.slots);
	progress_destroy(fi->pg);
	pthread_mutex_destroy(&fi->fl.lock);
	pthread_cond_destroy(&fi->fl.changed);
}

import_outcome_t import_file(vox_producer_t *producer, const char *path,
                             const import_opts_t *opts, import_stats_t *stats,
                             vox_error_t *err)
{
	struct file_import fi = {
	        .opts = opts, .producer = producer, .stats = stats};
	import_outcome_t outcome = IMPORT_DONE;
	bool eof = false;

	pthread_mutex_init(&fi.fl.lock, NULL);
	pthread_cond_init(&fi.fl.changed, NULL);
	memset(stats, 0, sizeof(*stats));
	stats->path = path;
	fi.started = vox_mono_seconds();
	if (prepare(&fi, path, err) != 0) {
		outcome = IMPORT_REFUSED;
		goto out;
	}
	fi.pg = progress_new(opts->progress, path, fi.cp.size);
	if (read_rows(&fi, &eof, err) < 0) {
		outcome = IMPORT_REFUSED;
		eof = false;
	}
	drain(&fi);
	advance(&fi);
	fi.cp.complete = eof && !fi.fl.failed && fi.fl.head == fi.fl.tail;
	if (fi.fl.failed) {
		outcome = IMPORT_KAFKA_FAILED;
		vox_error_set(err, VOX_ERR_UNAVAILABLE, true, "%s",
		              fi.fl.error);
	} else if (!eof && outcome == IMPORT_DONE) {
		outcome = IMPORT_INTERRUPTED;
	}
	if (outcome != IMPORT_REFUSED || fi.fl.sent > 0) {
		vox_error_t serr;

		if (save(&fi, &serr) != 0) {
			vox_log(VOX_LOG_ERROR, "checkpoint not written", "file",
			        path, "error", serr.message, NULL);
			if (outcome == IMPORT_DONE) {
				*err = serr;
				outcome = IMPORT_REFUSED;
			}
		}
	}
	progress_update(fi.pg, vox_csv_offset(fi.csv), stats->read, fi.fl.acked,
	                true);
	stats->complete = fi.cp.complete;
out:
	stats->accepted = fi.fl.acked;
	stats->elapsed_s = vox_mono_seconds() - fi.started;
	cleanup(&fi);
	return outcome;
}
