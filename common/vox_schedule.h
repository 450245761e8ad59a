/*
 * vox_schedule: a number's business hours (issue 12) parsed from its JSON
 * document and evaluated at an instant: open, closed or holiday, the rule
 * that decided it and the next instant the state changes.
 *
 * The model (docs/ROUTING.md has the JSON with examples): an IANA time
 * zone; a weekly schedule of "HH:MM" intervals per day, where an interval
 * whose close is <= its open runs past midnight and belongs to the day it
 * starts; at most VOX_SCHEDULE_MAX_OVERRIDES dated overrides (a date, a date
 * range, a recurring month-day or nth weekday of a month) that replace the
 * weekly intervals of the days they match, either closing the day or giving
 * it its own intervals; an override marked "holiday" makes its closed time
 * "holiday" instead of "closed". The first override in list order that
 * matches a day wins.
 *
 * Local time comes from ICU (one UCalendar per schedule, made at parse
 * time). DST: a boundary in a skipped hour maps to the first valid instant
 * after the gap (UCAL_WALLTIME_NEXT_VALID); a boundary in a repeated hour
 * maps to its first occurrence (UCAL_WALLTIME_FIRST).
 *
 * Threads: a vox_schedule_t may be shared; calls on it are serialised by a
 * mutex of its own (a UCalendar is not thread-safe). An evaluation takes a
 * few microseconds, so contention is not a concern at routing rates.
 */
#ifndef VOX_SCHEDULE_H
#define VOX_SCHEDULE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "vox_error.h"

#define VOX_SCHEDULE_MAX_OVERRIDES 50
#define VOX_SCHEDULE_MAX_INTERVALS 12 /* per day or per override */
/* How far vox_schedule_state() looks for the next transition. */
#define VOX_SCHEDULE_HORIZON_DAYS 400

typedef struct vox_schedule vox_schedule_t;

typedef enum vox_schedule_state_kind {
	VOX_SCHEDULE_CLOSED = 0,
	VOX_SCHEDULE_OPEN = 1,
	VOX_SCHEDULE_HOLIDAY = 2,
} vox_schedule_state_kind_t;

typedef struct vox_schedule_state {
	vox_schedule_state_kind_t state;
	/* "weekly:mon#0" (interval 0 of Monday's weekly hours), "override:3#1"
	 * (interval 1 of override 3), "override:3" (closed by override 3),
	 * "default" (outside every interval, no override). An interval is
	 * named by the day it starts, even on the morning after. */
	char rule[32];
	bool has_next; /* false: no change within VOX_SCHEDULE_HORIZON_DAYS */
	int64_t next_transition_us; /* UTC microseconds, when has_next */
	vox_schedule_state_kind_t next_state;
} vox_schedule_state_t;

typedef struct vox_schedule_transition {
	int64_t at_us; /* UTC microseconds */
	/* Local wall time with its offset: 2026-03-08T03:00:00-04:00 */
	char local[64];
	vox_schedule_state_kind_t state; /* the state from at_us on */
	char rule[32];
} vox_schedule_transition_t;

/* Parses and validates a business-hours document. default_zone (may be
 * NULL) is used when the document has no "time_zone" (the account's zone).
 * On error returns VOX_ERR_INVALID (for every bad input, including more
 * than VOX_SCHEDULE_MAX_OVERRIDES overrides) with a message that starts
 * with the field's JSON path: "weekly.mon[0].close: ...",
 * "overrides[3].date: ...", "time_zone: ...". VOX_ERR_NOMEM or
 * VOX_ERR_INTERNAL (ICU failed) otherwise.
 * The document is not kept (the caller keeps ownership). */
int vox_schedule_parse(const json_t *doc, const char *default_zone,
                       vox_schedule_t **out, vox_error_t *err);

void vox_schedule_destroy(vox_schedule_t *sched);

/* The IANA zone id the schedule evaluates in, as the document (or the
 * default) spelled it. */
const char *vox_schedule_zone(const vox_schedule_t *sched);

/* The state at instant_us (UTC microseconds), the rule that decided it and
 * the next transition (the first later instant where the state differs).
 * Returns 0, or VOX_ERR_INVALID for an instant outside 1970..2199 ("at: ..."),
 * VOX_ERR_INTERNAL if ICU fails. */
int vox_schedule_state(vox_schedule_t *sched, int64_t instant_us,
                       vox_schedule_state_t *out, vox_error_t *err);

/* Calls fn for every transition in (from_us, from_us + days * 24 h), in
 * order (days: 1..VOX_SCHEDULE_HORIZON_DAYS). fn returning non-zero stops
 * the walk and that value is returned. The state at from_us itself is
 * vox_schedule_state()'s. VOX_ERR_INVALID for days out of range or from
 * outside 1970..2199. */
typedef int (*vox_schedule_transition_fn)(const vox_schedule_transition_t *t,
                                          void *arg);
int vox_schedule_transitions(vox_schedule_t *sched, int64_t from_us, int days,
                             vox_schedule_transition_fn fn, void *arg,
                             vox_error_t *err);

/* "open", "closed", "holiday". */
const char *vox_schedule_state_name(vox_schedule_state_kind_t state);

#endif
