/*
 * vox_schedule: evaluation of a parsed business-hours schedule at an
 * instant, and the walk to the next transitions.
 *
 * A local day X is "planned" by the first override matching X, else by the
 * weekly hours of its weekday. The open spans that touch X are X's own
 * intervals and the overnight intervals of X-1 (an interval belongs to the
 * day it starts, whatever overrides X). Outside every span X is closed, or
 * holiday when X's override says so. Wall times become instants through
 * the schedule's UCalendar (DST options set in vox_schedule_parse.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_schedule_internal.h"

#define US_PER_MS  1000
#define US_PER_DAY (86400LL * 1000000LL)
/* Instants evaluated: 1970-01-01T00:00Z up to 2200-01-01T00:00Z (the dates
 * a document may name), far from ICU's and int64's limits. */
#define MAX_INSTANT_US (7258118400LL * 1000000LL)

/* Which rule governs a local day. */
typedef struct day_plan {
	const sched_hours_t *hours;
	int ovr; /* override index, -1 for the weekly hours */
	int weekday;
	vox_schedule_state_kind_t closed_state;
} day_plan_t;

/* An open span: instants [start, end) and the interval that opened it. */
typedef struct span {
	int64_t start, end;
	int ovr; /* -1: weekly, weekday below */
	int weekday;
	int idx;
} span_t;

typedef struct day_info {
	int64_t begin, end; /* local midnight of X and of X+1 */
	day_plan_t plan;
	int n;
	span_t spans[2 * VOX_SCHEDULE_MAX_INTERVALS];
} day_info_t;

/* A state and the rule behind it (idx < 0: closed by the day's plan). */
typedef struct verdict {
	vox_schedule_state_kind_t state;
	int ovr;
	int weekday;
	int idx;
} verdict_t;

const char *vox_schedule_state_name(vox_schedule_state_kind_t state)
{
	switch (state) {
	case VOX_SCHEDULE_OPEN:
		return "open";
	case VOX_SCHEDULE_HOLIDAY:
		return "holiday";
	default:
		return "closed";
	}
}

const char *vox_schedule_zone(const vox_schedule_t *sched)
{
	return sched->zone;
}

void vox_schedule_destroy(vox_schedule_t *sched)
{
	if (!sched)
		return;
	if (sched->cal)
		ucal_close(sched->cal);
	pthread_mutex_destroy(&sched->lock);
	free(sched);
}

static bool override_matches(const sched_override_t *o, int64_t day, int64_t y,
                             int m, int d, int weekday)
{
	switch (o->kind) {
	case SCHED_OVR_DATE:
	case SCHED_OVR_RANGE:
		return day >= o->from_day && day <= o->to_day;
	case SCHED_OVR_MONTH_DAY:
		return m == o->month && d == o->mday;
	case SCHED_OVR_NTH_WEEKDAY:
		if (m != o->month || weekday != o->weekday)
			return false;
		if (o->nth < 0)
			return d + 7 > sched_days_in_month(y, m);
		return (d - 1) / 7 + 1 == o->nth;
	}
	return false;
}

static void plan_day(const vox_schedule_t *s, int64_t day, day_plan_t *p)
{
	int64_t y;
	int m, d;

	sched_civil_from_day(day, &y, &m, &d);
	p->weekday = sched_weekday(day);
	for (int i = 0; i < s->n_overrides; i++) {
		const sched_override_t *o = &s->overrides[i];
		if (override_matches(o, day, y, m, d, p->weekday)) {
			p->ovr = i;
			p->hours = &o->hours;
			p->closed_state = o->holiday ? VOX_SCHEDULE_HOLIDAY
			                             : VOX_SCHEDULE_CLOSED;
			return;
		}
	}
	p->ovr = -1;
	p->hours = &s->weekly[p->weekday];
	p->closed_state = VOX_SCHEDULE_CLOSED;
}

static bool has_overnight(const sched_hours_t *h)
{
	for (int i = 0; i < h->n; i++)
		if (h->iv[i].close <= h->iv[i].open)
			return true;
	return false;
}

/* The instant of wall time `minute` (0..1440) of local day `day`. */
static int local_to_us(vox_schedule_t *s, int64_t day, int minute, int64_t *out)
{
	UErrorCode st = U_ZERO_ERROR;
	int64_t y;
	int m, d;

	if (minute >= SCHED_MINUTES_PER_DAY) {
		day++;
		minute -= SCHED_MINUTES_PER_DAY;
	}
	sched_civil_from_day(day, &y, &m, &d);
	ucal_clear(s->cal);
	ucal_setDateTime(s->cal, (int32_t)y, m - 1, d, minute / 60, minute % 60,
	                 0, &st);
	UDate ms = ucal_getMillis(s->cal, &st);
	if (U_FAILURE(st))
		return VOX_ERR_INVALID;
	*out = (int64_t)ms * US_PER_MS;
	return 0;
}

/* The local day (number) of an instant. */
static int local_day(vox_schedule_t *s, int64_t us, int64_t *day)
{
	UErrorCode st = U_ZERO_ERROR;
	int64_t ms = us / US_PER_MS - (us % US_PER_MS < 0);

	ucal_setMillis(s->cal, (UDate)ms, &st);
	int32_t y = ucal_get(s->cal, UCAL_EXTENDED_YEAR, &st);
	int32_t m = ucal_get(s->cal, UCAL_MONTH, &st);
	int32_t d = ucal_get(s->cal, UCAL_DATE, &st);
	if (U_FAILURE(st))
		return VOX_ERR_INVALID;
	*day = sched_day_from_civil(y, m + 1, d);
	return 0;
}

static int add_spans(vox_schedule_t *s, day_info_t *di, const day_plan_t *p,
                     int64_t day, bool overnight_only)
{
	for (int i = 0; i < p->hours->n; i++) {
		const sched_interval_t *iv = &p->hours->iv[i];
		bool overnight = iv->close <= iv->open;
		span_t sp = {0, 0, p->ovr, p->weekday, i};
		if (overnight_only && !overnight)
			continue;
		if (local_to_us(s, day, iv->open, &sp.start) != 0 ||
		    local_to_us(s, day + overnight, iv->close, &sp.end) != 0)
			return VOX_ERR_INVALID;
		/* both ends in a skipped hour: the interval does not happen */
		if (sp.start < sp.end)
			di->spans[di->n++] = sp;
	}
	return 0;
}

/* The spans touching local day X (X-1's overnight ones first) and its
 * midnights. */
static int day_info_build(vox_schedule_t *s, int64_t day, day_info_t *di)
{
	day_plan_t prev;

	di->n = 0;
	plan_day(s, day, &di->plan);
	plan_day(s, day - 1, &prev);
	if (local_to_us(s, day, 0, &di->begin) != 0 ||
	    local_to_us(s, day + 1, 0, &di->end) != 0)
		return VOX_ERR_INVALID;
	if (add_spans(s, di, &prev, day - 1, true) != 0 ||
	    add_spans(s, di, &di->plan, day, false) != 0)
		return VOX_ERR_INVALID;
	return 0;
}

static verdict_t verdict_in(const day_info_t *di, int64_t t)
{
	for (int i = 0; i < di->n; i++)
		if (di->spans[i].start <= t && t < di->spans[i].end)
			return (verdict_t){VOX_SCHEDULE_OPEN, di->spans[i].ovr,
			                   di->spans[i].weekday,
			                   di->spans[i].idx};
	return (verdict_t){di->plan.closed_state, di->plan.ovr,
	                   di->plan.weekday, -1};
}

static void rule_name(const verdict_t *v, char *out, size_t cap)
{
	if (v->ovr >= 0 && v->idx >= 0)
		snprintf(out, cap, "override:%d#%d", v->ovr, v->idx);
	else if (v->ovr >= 0)
		snprintf(out, cap, "override:%d", v->ovr);
	else if (v->idx >= 0)
		snprintf(out, cap, "weekly:%s#%d",
		         vox_schedule_day_names[v->weekday], v->idx);
	else
		snprintf(out, cap, "default");
}

/* Whether the wall-clock intervals in force on day X (its own, and X-1's
 * overnight ones) cover all of it: then every instant of X is open, DST or
 * not, and the walk skips X without asking ICU. */
static bool day_all_open(const day_plan_t *p, const day_plan_t *prev)
{
	int covered = 0;
	bool grew = true;

	/* at most 2 * 12 ranges: extend the covered prefix until it stops */
	while (grew && covered < SCHED_MINUTES_PER_DAY) {
		grew = false;
		for (int i = 0; i < prev->hours->n; i++) {
			const sched_interval_t *iv = &prev->hours->iv[i];
			if (iv->close <= iv->open && iv->close > covered) {
				covered = iv->close;
				grew = true;
			}
		}
		for (int i = 0; i < p->hours->n; i++) {
			const sched_interval_t *iv = &p->hours->iv[i];
			int end = iv->close <= iv->open ? SCHED_MINUTES_PER_DAY
			                                : iv->close;
			if (iv->open <= covered && end > covered) {
				covered = end;
				grew = true;
			}
		}
	}
	return covered >= SCHED_MINUTES_PER_DAY;
}

static void sort_instants(int64_t *a, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && a[j - 1] > a[j]; j--) {
			int64_t tmp = a[j];
			a[j] = a[j - 1];
			a[j - 1] = tmp;
		}
}

/* The first instant after t, within local days day..last_day, where the
 * state differs from cur. Returns 1 found, 0 none, or an error. */
static int next_change(vox_schedule_t *s, int64_t t, int64_t day,
                       int64_t last_day, vox_schedule_state_kind_t cur,
                       int64_t *at, verdict_t *next)
{
	day_info_t di;
	int64_t cand[1 + 4 * VOX_SCHEDULE_MAX_INTERVALS];

	if (s->always_open)
		return 0;
	for (int64_t x = day; x <= last_day; x++) {
		day_plan_t p, prev;
		plan_day(s, x, &p);
		plan_day(s, x - 1, &prev);
		/* no span touches X: its state is its plan's all day long */
		if (p.hours->n == 0 && !has_overnight(prev.hours) &&
		    p.closed_state == cur)
			continue;
		if (cur == VOX_SCHEDULE_OPEN && day_all_open(&p, &prev))
			continue;
		if (day_info_build(s, x, &di) != 0)
			return VOX_ERR_INVALID;
		int n = 0;
		cand[n++] = di.begin;
		for (int i = 0; i < di.n; i++) {
			if (di.spans[i].start >= di.begin &&
			    di.spans[i].start < di.end)
				cand[n++] = di.spans[i].start;
			if (di.spans[i].end >= di.begin &&
			    di.spans[i].end < di.end)
				cand[n++] = di.spans[i].end;
		}
		sort_instants(cand, n);
		for (int i = 0; i < n; i++) {
			if (cand[i] <= t)
				continue;
			verdict_t v = verdict_in(&di, cand[i]);
			if (v.state != cur) {
				*at = cand[i];
				*next = v;
				return 1;
			}
		}
	}
	return 0;
}

static int state_locked(vox_schedule_t *s, int64_t t, int64_t *day,
                        verdict_t *v)
{
	day_info_t di;

	if (local_day(s, t, day) != 0 || day_info_build(s, *day, &di) != 0)
		return VOX_ERR_INVALID;
	*v = verdict_in(&di, t);
	return 0;
}

int vox_schedule_state(vox_schedule_t *sched, int64_t instant_us,
                       vox_schedule_state_t *out, vox_error_t *err)
{
	verdict_t v, next;
	int64_t day, at = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (instant_us < 0 || instant_us >= MAX_INSTANT_US)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "at: outside 1970..2199");
	pthread_mutex_lock(&sched->lock);
	rc = state_locked(sched, instant_us, &day, &v);
	if (rc == 0)
		rc = next_change(sched, instant_us, day,
		                 day + VOX_SCHEDULE_HORIZON_DAYS, v.state, &at,
		                 &next);
	pthread_mutex_unlock(&sched->lock);
	if (rc < 0)
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "ICU cannot place instant %lld",
		                     (long long)instant_us);
	out->state = v.state;
	rule_name(&v, out->rule, sizeof(out->rule));
	out->has_next = rc == 1;
	out->next_transition_us = rc == 1 ? at : 0;
	out->next_state = rc == 1 ? next.state : v.state;
	return 0;
}

/* 2026-03-08T03:00:00-04:00 */
static int format_local(vox_schedule_t *s, int64_t us, char *out, size_t cap)
{
	UErrorCode st = U_ZERO_ERROR;

	ucal_setMillis(s->cal, (UDate)(us / US_PER_MS), &st);
	int32_t y = ucal_get(s->cal, UCAL_EXTENDED_YEAR, &st);
	int32_t mo = ucal_get(s->cal, UCAL_MONTH, &st);
	int32_t d = ucal_get(s->cal, UCAL_DATE, &st);
	int32_t h = ucal_get(s->cal, UCAL_HOUR_OF_DAY, &st);
	int32_t mi = ucal_get(s->cal, UCAL_MINUTE, &st);
	int32_t sec = ucal_get(s->cal, UCAL_SECOND, &st);
	int32_t off = ucal_get(s->cal, UCAL_ZONE_OFFSET, &st) +
	              ucal_get(s->cal, UCAL_DST_OFFSET, &st);
	if (U_FAILURE(st))
		return VOX_ERR_INVALID;
	int32_t off_min = abs(off) / 60000;
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", y,
	         mo + 1, d, h, mi, sec, off < 0 ? '-' : '+', off_min / 60,
	         off_min % 60);
	return 0;
}

int vox_schedule_transitions(vox_schedule_t *sched, int64_t from_us, int days,
                             vox_schedule_transition_fn fn, void *arg,
                             vox_error_t *err)
{
	vox_schedule_transition_t tr;
	verdict_t v;
	int64_t t = from_us, day, until = from_us + days * US_PER_DAY;
	int rc, stopped = 0;

	if (days < 1 || days > VOX_SCHEDULE_HORIZON_DAYS)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "days: must be 1..%d",
		                     VOX_SCHEDULE_HORIZON_DAYS);
	if (from_us < 0 || from_us >= MAX_INSTANT_US)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "from: outside 1970..2199");
	pthread_mutex_lock(&sched->lock);
	rc = state_locked(sched, from_us, &day, &v);
	while (rc == 0 && stopped == 0) {
		/* a transition before `until` lies within days + 1 local days
		 * of t's day whatever the offsets */
		int64_t last_day = day + (until - t) / US_PER_DAY + 1;
		rc = next_change(sched, t, day, last_day, v.state, &tr.at_us,
		                 &v);
		if (rc <= 0 || tr.at_us >= until)
			break;
		tr.state = v.state;
		rule_name(&v, tr.rule, sizeof(tr.rule));
		rc = format_local(sched, tr.at_us, tr.local, sizeof(tr.local));
		if (rc == 0)
			rc = local_day(sched, tr.at_us, &day);
		t = tr.at_us;
		if (rc == 0) {
			/* the callback runs without the lock held */
			pthread_mutex_unlock(&sched->lock);
			stopped = fn(&tr, arg);
			pthread_mutex_lock(&sched->lock);
		}
	}
	pthread_mutex_unlock(&sched->lock);
	if (rc < 0)
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "ICU cannot place the transitions after "
		                     "%lld",
		                     (long long)from_us);
	return stopped;
}
