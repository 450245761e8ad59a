/*
 * vox_log: one JSON object per line on stderr.
 *
 *   {"time":"2026-11-24T16:02:17.123Z","level":"info","service":"ingress",
 *    "msg":"operation accepted","operation_id":"...","request_id":"..."}
 *
 * Context ids are passed as NULL-terminated key/value string pairs so every
 * line carries the ids that locate it (request id, topic/partition/offset,
 * operation id, account id). Each line is written with one write(2).
 */
#ifndef VOX_LOG_H
#define VOX_LOG_H

typedef enum vox_log_level {
	VOX_LOG_DEBUG = 0,
	VOX_LOG_INFO,
	VOX_LOG_WARN,
	VOX_LOG_ERROR,
} vox_log_level_t;

/* service is copied. Until called, lines say "service":"vox". */
void vox_log_init(const char *service, vox_log_level_t min_level);

/* Parses "debug", "info", "warn", "error"; returns -1 otherwise. */
int vox_log_level_parse(const char *name);

/* vox_log(VOX_LOG_INFO, "consumed", "topic", t, "offset", off, NULL) */
void vox_log(vox_log_level_t level, const char *msg, ...)
        __attribute__((sentinel));

/* printf-style message without context pairs. */
void vox_logf(vox_log_level_t level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#endif
