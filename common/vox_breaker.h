/*
 * vox_breaker: a circuit breaker for a dependency that may be down, shared
 * by threads (its state is kept in atomics).
 *
 * Closed: calls go out. After `failures` consecutive admitted calls ended
 * with the dependency not answering, it opens: calls are refused at once
 * (VOX_ERR_UNAVAILABLE, retriable) without waiting on a dead peer. After
 * cooldown_ms exactly one call is admitted as the probe (half-open; others
 * are still refused): if the dependency answered, it closes; if not, it
 * opens again for another cooldown.
 */
#ifndef VOX_BREAKER_H
#define VOX_BREAKER_H

#include <stdbool.h>

#include "vox_error.h"
#include "vox_metrics.h"

typedef enum vox_breaker_state {
	VOX_BREAKER_CLOSED = 0,
	VOX_BREAKER_OPEN = 1,
	VOX_BREAKER_HALF_OPEN = 2,
} vox_breaker_state_t;

typedef struct vox_breaker vox_breaker_t;

/* name (copied) names the dependency in logs and in the refusal
 * "<name> circuit open". gauge (optional, borrowed) is set to the state
 * (0 closed, 1 open, 2 half-open). NULL on ENOMEM. */
vox_breaker_t *vox_breaker_new(const char *name, int failures, int cooldown_ms,
                               vox_gauge_t *gauge);
void vox_breaker_destroy(vox_breaker_t *breaker);

/* 0 when a call may go out (*probe: it is the half-open probe, which
 * must be recorded); VOX_ERR_UNAVAILABLE with err filled when open. */
int vox_breaker_admit(vox_breaker_t *breaker, bool *probe, vox_error_t *err);

/* The end of an admitted call: answered says the dependency answered
 * (any answer, a refusal included). A probe must always be recorded, or
 * the breaker stays half-open. */
void vox_breaker_record(vox_breaker_t *breaker, bool probe, bool answered);

vox_breaker_state_t vox_breaker_state(const vox_breaker_t *breaker);

#endif
