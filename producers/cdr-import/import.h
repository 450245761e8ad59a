/*
 * cdr-import: the pieces of one import run (docs/CDR_IMPORT.md).
 *   main.c        options, configuration, signals, exit code
 *   import.c      one file: rows to vox.cdr.raw, the acknowledged prefix,
 *                 rejects
 *   checkpoint.c  the file's identity and the resume point, written
 *                 atomically
 *   progress.c    the progress bar and the summary
 */
#ifndef CDR_IMPORT_H
#define CDR_IMPORT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vox_error.h"
#include "vox_kafka.h"

/* Set by the signal handler: the first SIGINT/SIGTERM received. */
extern volatile sig_atomic_t import_stop_signal;

typedef struct import_opts {
	const char *carrier;
	const char *checkpoint_dir; /* NULL: beside each file */
	bool restart;
	bool quiet;
	bool progress;     /* draw the progress bar (stderr is a terminal) */
	long max_rate;     /* rows sent per second, 0: no limit */
	int kafka_wait_ms; /* how long a report may take before giving up */
} import_opts_t;

#define IMPORT_MAX_REASONS 24

typedef struct import_stats {
	const char *path;
	long read, accepted, rejected, skipped;
	const char *reasons[IMPORT_MAX_REASONS];
	long reason_counts[IMPORT_MAX_REASONS];
	double elapsed_s;
	bool complete; /* every row done (now or by an earlier run) */
} import_stats_t;

typedef enum import_outcome {
	IMPORT_DONE = 0,
	IMPORT_INTERRUPTED,  /* a stop signal: checkpoint written */
	IMPORT_KAFKA_FAILED, /* deliveries failed: checkpoint written */
	IMPORT_REFUSED,      /* the file cannot be imported (err says why) */
} import_outcome_t;

/* The columns a file's header must name. */
#define IMPORT_NCOLUMNS 7
extern const char *const import_columns[IMPORT_NCOLUMNS];

/* Opens path and maps its header: col[i] receives the index of
 * import_columns[i] in the file. 0 or VOX_ERR_INVALID (err names the
 * missing column). */
int import_check_header(const char *path, int col[IMPORT_NCOLUMNS],
                        vox_error_t *err);

/* Imports one file. */
import_outcome_t import_file(vox_producer_t *producer, const char *path,
                             const import_opts_t *opts, import_stats_t *stats,
                             vox_error_t *err);

/* ---- checkpoint.c */
typedef struct checkpoint {
	char path[4096];    /* the checkpoint file */
	char rejects[4096]; /* the rejects file */
	char source[4096];  /* absolute path of the imported file */
	long long size;
	long long mtime_ns;
	char head_sha256[65]; /* of the first 64 KiB */
	char carrier[64];
	long line; /* every row starting on a line <= this is done */
	long long rejects_bytes; /* rejects written for those rows */
	bool complete;
} checkpoint_t;

/* Fills where the checkpoint and rejects of file live and its identity. */
int checkpoint_init(checkpoint_t *cp, const char *file, const char *dir,
                    const char *carrier, vox_error_t *err);
/* Loads a saved checkpoint into cp when it belongs to the same file and
 * carrier: 1 loaded, 0 none (or another file's: *mismatch says why),
 * VOX_ERR_INVALID when it cannot be read. */
int checkpoint_load(checkpoint_t *cp, char *mismatch, size_t mismatch_len,
                    vox_error_t *err);
/* Writes cp: temp file, fsync, rename, fsync of the directory. */
int checkpoint_save(const checkpoint_t *cp, vox_error_t *err);

/* ---- progress.c */
typedef struct progress progress_t;
progress_t *progress_new(bool enabled, const char *path, long long size);
/* Redraws at most 10 times a second (force: now). */
void progress_update(progress_t *pg, long long offset, long rows, long acked,
                     bool force);
void progress_destroy(progress_t *pg); /* clears the line */
void stats_count_reason(import_stats_t *stats, const char *reason, long n);
void stats_print(FILE *out, const import_stats_t *files, int nfiles);

#endif
