/*
 * libFuzzer target for vox_schedule_parse() and the evaluation: any input
 * must give a schedule or a clean error naming a field. A schedule that
 * parses is evaluated at a few instants, and what it says must hold: the
 * state at the announced next transition is the announced next state, and
 * every listed transition really changes the state.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vox_json.h"
#include "vox_schedule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define US_PER_DAY (86400LL * 1000000LL)

typedef struct walk {
	vox_schedule_t *s;
	int64_t last_us; /* the previous transition (or the start) */
	vox_schedule_state_kind_t last_state;
} walk_t;

static int check_transition(const vox_schedule_transition_t *t, void *arg)
{
	walk_t *w = arg;
	vox_schedule_state_t at, before, mid;

	/* the walk released the lock: evaluating here must be fine */
	if (vox_schedule_state(w->s, t->at_us, &at, NULL) != 0 ||
	    vox_schedule_state(w->s, t->at_us - 1, &before, NULL) != 0 ||
	    vox_schedule_state(w->s, w->last_us + (t->at_us - w->last_us) / 2,
	                       &mid, NULL) != 0)
		abort();
	if (at.state != t->state || before.state == t->state ||
	    t->at_us <= w->last_us)
		abort();
	/* nothing was skipped between two listed transitions */
	if (mid.state != w->last_state || before.state != w->last_state)
		abort();
	w->last_us = t->at_us;
	w->last_state = t->state;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	vox_error_t err;
	vox_schedule_t *s = NULL;
	json_t *doc;
	/* 2026-01-01T00:00:00Z, shifted by the input's first bytes */
	int64_t t0 = 1767225600LL * 1000000LL;

	doc = vox_json_parse((const char *)data, size, VOX_JSON_DEFAULT_DEPTH,
	                     &err);
	if (doc == NULL)
		return 0;
	if (vox_schedule_parse(doc, "Europe/London", &s, &err) != 0) {
		/* a field path, then ": " */
		if (strstr(err.message, ": ") == NULL)
			abort();
		json_decref(doc);
		return 0;
	}
	for (size_t i = 0; i < size && i < 8; i++)
		t0 += (int64_t)data[i] * 3 * US_PER_DAY / 256 *
		      (int64_t)(i + 1);
	for (int k = 0; k < 4; k++) {
		vox_schedule_state_t st, next;
		int64_t t = t0 + k * (US_PER_DAY / 3 + 7 * 60000000LL);
		if (vox_schedule_state(s, t, &st, &err) != 0)
			abort();
		if (!st.has_next)
			continue;
		if (st.next_transition_us <= t ||
		    vox_schedule_state(s, st.next_transition_us, &next, NULL) !=
		            0 ||
		    next.state != st.next_state || next.state == st.state)
			abort();
	}
	vox_schedule_state_t first;
	if (vox_schedule_state(s, t0, &first, &err) != 0)
		abort();
	walk_t w = {s, t0, first.state};
	if (vox_schedule_transitions(s, t0, 10, check_transition, &w, &err) !=
	    0)
		abort();
	vox_schedule_destroy(s);
	json_decref(doc);
	return 0;
}
