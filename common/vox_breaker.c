/* vox_breaker: the circuit breaker (see vox_breaker.h). */
#include "vox_breaker.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_log.h"
#include "vox_time.h"

struct vox_breaker {
	char *name;
	int failures_to_open, cooldown_ms;
	vox_gauge_t *gauge;   /* borrowed, may be NULL */
	_Atomic int state;    /* vox_breaker_state_t */
	_Atomic int failures; /* consecutive calls that failed */
	_Atomic int64_t opened_ms;
};

static void breaker_set(vox_breaker_t *b, vox_breaker_state_t state)
{
	atomic_store(&b->state, (int)state);
	if (b->gauge != NULL)
		vox_gauge_set(b->gauge, (double)state);
}

vox_breaker_t *vox_breaker_new(const char *name, int failures, int cooldown_ms,
                               vox_gauge_t *gauge)
{
	vox_breaker_t *b = calloc(1, sizeof(*b));

	if (b == NULL || (b->name = strdup(name)) == NULL) {
		free(b);
		return NULL;
	}
	b->failures_to_open = failures > 0 ? failures : 1;
	b->cooldown_ms = cooldown_ms;
	b->gauge = gauge;
	breaker_set(b, VOX_BREAKER_CLOSED);
	return b;
}

void vox_breaker_destroy(vox_breaker_t *b)
{
	if (b == NULL)
		return;
	free(b->name);
	free(b);
}

int vox_breaker_admit(vox_breaker_t *b, bool *probe, vox_error_t *err)
{
	int state = atomic_load(&b->state);
	int expected = VOX_BREAKER_OPEN;

	*probe = false;
	if (state == VOX_BREAKER_CLOSED)
		return 0;
	/* the compare-and-swap lets one caller only through as the probe */
	if (state == VOX_BREAKER_OPEN &&
	    vox_mono_ms() - atomic_load(&b->opened_ms) >= b->cooldown_ms &&
	    atomic_compare_exchange_strong(&b->state, &expected,
	                                   VOX_BREAKER_HALF_OPEN)) {
		breaker_set(b, VOX_BREAKER_HALF_OPEN);
		vox_log(VOX_LOG_INFO, "circuit half-open: probe call",
		        "upstream", b->name, NULL);
		*probe = true;
		return 0;
	}
	return vox_error_set(err, VOX_ERR_UNAVAILABLE, true, "%s circuit open",
	                     b->name);
}

void vox_breaker_record(vox_breaker_t *b, bool probe, bool answered)
{
	char failures[16];
	int failed;

	if (answered) {
		atomic_store(&b->failures, 0);
		if (atomic_load(&b->state) != VOX_BREAKER_CLOSED) {
			breaker_set(b, VOX_BREAKER_CLOSED);
			vox_log(VOX_LOG_INFO, "circuit closed", "upstream",
			        b->name, NULL);
		}
		return;
	}
	failed = atomic_fetch_add(&b->failures, 1) + 1;
	if (!probe && failed < b->failures_to_open)
		return;
	atomic_store(&b->opened_ms, vox_mono_ms());
	breaker_set(b, VOX_BREAKER_OPEN);
	snprintf(failures, sizeof(failures), "%d", failed);
	vox_log(VOX_LOG_WARN, "circuit opened", "upstream", b->name,
	        "failed_calls", failures, "probe", probe ? "true" : "false",
	        NULL);
}

vox_breaker_state_t vox_breaker_state(const vox_breaker_t *b)
{
	return (vox_breaker_state_t)atomic_load(&b->state);
}
