/*
 * routing.c: the in-memory routing table the carrier's per-call question
 * (POST /v1/carrier/calls/route) is answered from, without a database round
 * trip. One entry per active number, keyed by E.164: its routing section
 * (number_configurations.call_forwarding), whether voicemail is on, and its
 * parsed business hours (vox_schedule_t). Loaded whole when the listener
 * (re)connects, then one number at a time on each vox_routing notification
 * (configuration changes, migration 0020; status changes, 0023).
 *
 * Threads: decisions take a read lock for the lookup and the evaluation;
 * a reload builds the new entry outside the lock and swaps it in under the
 * write lock, so readers never see half an entry and the old one is freed
 * when no reader can hold it.
 */
#ifndef ROUTING_H
#define ROUTING_H

#include <stdbool.h>
#include <stdint.h>

#include "vox_error.h"
#include "vox_pg.h"
#include "vox_schedule.h"

#define ROUTING_DEST_MAX 256

typedef struct routing_table routing_table_t;

typedef enum routing_action {
	ROUTING_REJECT = 0,
	ROUTING_FORWARD,
	ROUTING_VOICEMAIL,
} routing_action_t;

typedef struct routing_decision {
	routing_action_t action;
	char destination[ROUTING_DEST_MAX]; /* "" unless forward */
	char failover[ROUTING_DEST_MAX];    /* "" when none */
	int timeout_s;                      /* 0 when not configured */
	bool has_state;                     /* false: unknown number */
	vox_schedule_state_kind_t state;
	/* The schedule's rule ("weekly:mon#0", "override:3", "default"), or
	 * why the call is refused whatever the time: "number_unknown",
	 * "billing_suspended", "routing_not_configured", "routing_disabled",
	 * "no_destination". */
	char rule[40];
	bool has_next;
	int64_t next_us;
} routing_decision_t;

routing_table_t *routing_table_new(void);
void routing_table_destroy(routing_table_t *table);

/* Replaces the whole table with the active numbers (after a reconnect:
 * changes may have been missed). 0 or an error (table unchanged). */
int routing_load_all(routing_table_t *table, vox_pg_t *pg, vox_error_t *err);

/* Reloads one number by id (a vox_routing payload): updated, added, or
 * removed when it is gone or no longer active. */
int routing_reload(routing_table_t *table, vox_pg_t *pg, const char *number_id,
                   vox_error_t *err);

/* Whether routing_load_all succeeded once (before that every number would
 * look unknown). */
bool routing_ready(const routing_table_t *table);

/* The decision for a call to e164 at at_us (docs/ROUTING.md). Never touches
 * the database. 0, or VOX_ERR_INVALID (at outside the schedule's range),
 * VOX_ERR_INTERNAL (ICU). */
int routing_decide(routing_table_t *table, const char *e164, int64_t at_us,
                   routing_decision_t *out, vox_error_t *err);

const char *routing_action_name(routing_action_t action);

#endif
