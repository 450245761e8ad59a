/*
 * vox_schedule_parse: the business-hours JSON document (docs/ROUTING.md)
 * into a vox_schedule_t, refusing every bad field with its JSON path in
 * the message: unknown zones (ICU falls back to GMT silently, so the id is
 * checked against ICU's system zones), times outside 00:00..24:00,
 * zero-length and overlapping intervals (an overnight interval against the
 * next day's first ones too), impossible dates and out-of-range recurrences.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ustring.h>

#include "vox_json.h"
#include "vox_schedule_internal.h"

const char *const vox_schedule_day_names[7] = {"mon", "tue", "wed", "thu",
                                               "fri", "sat", "sun"};

#define PATH_MAX_LEN 64
#define SUB_LEN      192

static int invalid(vox_error_t *err, const char *path, const char *what)
{
	return vox_error_set(err, VOX_ERR_INVALID, false, "%s: %s", path, what);
}

/* "HH:MM", 00:00..23:59, and 24:00 when allow_24. */
static int parse_time(const json_t *v, const char *path, bool allow_24,
                      int16_t *out, vox_error_t *err)
{
	const char *s = json_string_value(v);
	if (!s || strlen(s) != 5 || s[2] != ':')
		return invalid(err, path, "must be a time \"HH:MM\"");
	for (int i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return invalid(err, path, "must be a time \"HH:MM\"");
	int hh = (s[0] - '0') * 10 + (s[1] - '0');
	int mm = (s[3] - '0') * 10 + (s[4] - '0');
	if (mm > 59 || hh > 24 || (hh == 24 && mm != 0))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: \"%s\" is not a time of day "
		                     "(00:00..24:00)",
		                     path, s);
	if (hh == 24 && !allow_24)
		return invalid(err, path, "24:00 can only close an interval");
	*out = (int16_t)(hh * 60 + mm);
	return 0;
}

static int parse_interval(const json_t *v, const char *path,
                          sched_interval_t *out, vox_error_t *err)
{
	static const char *const keys[] = {"open", "close", NULL};
	char sub[SUB_LEN];
	vox_error_t kerr;

	if (!json_is_object(v))
		return invalid(err, path,
		               "must be an object {\"open\", \"close\"}");
	if (vox_json_only_keys(v, keys, &kerr) != 0)
		return invalid(err, path, kerr.message);
	snprintf(sub, sizeof(sub), "%.100s.open", path);
	if (parse_time(json_object_get(v, "open"), sub, false, &out->open,
	               err) != 0)
		return VOX_ERR_INVALID;
	snprintf(sub, sizeof(sub), "%.100s.close", path);
	if (parse_time(json_object_get(v, "close"), sub, true, &out->close,
	               err) != 0)
		return VOX_ERR_INVALID;
	if (out->open == out->close)
		return invalid(err, path,
		               "open equals close (an interval of length 0; "
		               "use 00:00-24:00 for a whole day)");
	return 0;
}

/* Minutes the interval lasts on the wall clock (1..1440). */
static int interval_length(const sched_interval_t *iv)
{
	return iv->close > iv->open
	               ? iv->close - iv->open
	               : iv->close + SCHED_MINUTES_PER_DAY - iv->open;
}

/* An interval placed on a timeline of minutes, for the overlap checks. */
typedef struct placed {
	int start, end;
	char path[PATH_MAX_LEN];
} placed_t;

/* Refuses the first two overlapping intervals; on a circle of `period`
 * minutes (the week) when period > 0, on a line otherwise. */
static int check_overlaps(const placed_t *p, int n, int period,
                          vox_error_t *err)
{
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			for (int k = period ? -1 : 0; k <= (period ? 1 : 0);
			     k++) {
				int s = p[j].start + k * period;
				int e = p[j].end + k * period;
				if (p[i].start < e && s < p[i].end)
					return vox_error_set(
					        err, VOX_ERR_INVALID, false,
					        "%s: overlaps %s", p[j].path,
					        p[i].path);
			}
	return 0;
}

/* An array of intervals; day_offset >= 0 places them in the week for the
 * caller's overlap check (into placed), < 0 checks them among themselves
 * (an override's hours). */
static int parse_hours(const json_t *v, const char *path, sched_hours_t *out,
                       placed_t *placed, int day_offset, vox_error_t *err)
{
	placed_t own[VOX_SCHEDULE_MAX_INTERVALS];
	placed_t *p = day_offset >= 0 ? placed : own;
	size_t i;
	json_t *item;

	if (!json_is_array(v))
		return invalid(err, path, "must be an array of intervals");
	if (json_array_size(v) > VOX_SCHEDULE_MAX_INTERVALS)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: at most %d intervals", path,
		                     VOX_SCHEDULE_MAX_INTERVALS);
	out->n = 0;
	json_array_foreach(v, i, item)
	{
		sched_interval_t *iv = &out->iv[out->n];
		snprintf(p[i].path, sizeof(p[i].path), "%s[%zu]", path, i);
		if (parse_interval(item, p[i].path, iv, err) != 0)
			return VOX_ERR_INVALID;
		p[i].start = (day_offset > 0 ? day_offset : 0) + iv->open;
		p[i].end = p[i].start + interval_length(iv);
		out->n++;
	}
	if (day_offset < 0)
		return check_overlaps(own, out->n, 0, err);
	return 0;
}

static int parse_weekly(const json_t *v, vox_schedule_t *s, vox_error_t *err)
{
	placed_t placed[7 * VOX_SCHEDULE_MAX_INTERVALS];
	int n_placed = 0, covered = 0;
	const char *key;
	json_t *hours;

	if (!v)
		return 0;
	if (!json_is_object(v))
		return invalid(err, "weekly",
		               "must be an object keyed by day "
		               "(mon..sun)");
	json_object_foreach((json_t *)v, key, hours)
	{
		int day = -1;
		char path[PATH_MAX_LEN];
		for (int d = 0; d < 7; d++)
			if (strcmp(key, vox_schedule_day_names[d]) == 0)
				day = d;
		snprintf(path, sizeof(path), "weekly.%.40s", key);
		if (day < 0)
			return invalid(err, path,
			               "unknown day (mon, tue, wed, thu, fri, "
			               "sat, sun)");
		if (parse_hours(hours, path, &s->weekly[day], placed + n_placed,
		                day * SCHED_MINUTES_PER_DAY, err) != 0)
			return VOX_ERR_INVALID;
		n_placed += s->weekly[day].n;
	}
	if (check_overlaps(placed, n_placed, 7 * SCHED_MINUTES_PER_DAY, err))
		return VOX_ERR_INVALID;
	for (int i = 0; i < n_placed; i++)
		covered += placed[i].end - placed[i].start;
	s->always_open = covered == 7 * SCHED_MINUTES_PER_DAY;
	return 0;
}

/* "YYYY-MM-DD", a real date in 1970..2199. */
static int parse_date(const json_t *v, const char *path, int64_t *day,
                      vox_error_t *err)
{
	const char *s = json_string_value(v);
	int y = 0, m = 0, d = 0;

	if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return invalid(err, path, "must be a date \"YYYY-MM-DD\"");
	for (int i = 0; i < 10; i++) {
		if (i == 4 || i == 7)
			continue;
		if (s[i] < '0' || s[i] > '9')
			return invalid(err, path,
			               "must be a date \"YYYY-MM-DD\"");
		int digit = s[i] - '0';
		if (i < 4)
			y = y * 10 + digit;
		else if (i < 7)
			m = m * 10 + digit;
		else
			d = d * 10 + digit;
	}
	if (y < 1970 || y > 2199 || m < 1 || m > 12 || d < 1 ||
	    d > sched_days_in_month(y, m))
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: \"%s\" is not a date "
		                     "(1970-01-01..2199-12-31)",
		                     path, s);
	*day = sched_day_from_civil(y, m, d);
	return 0;
}

static int parse_int_field(const json_t *obj, const char *key, const char *path,
                           int lo, int hi, int *out, vox_error_t *err)
{
	char sub[SUB_LEN];
	json_t *v = json_object_get(obj, key);

	snprintf(sub, sizeof(sub), "%.100s.%s", path, key);
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "%s: must be an integer %d..%d", sub, lo,
		                     hi);
	*out = (int)json_integer_value(v);
	return 0;
}

/* {"month": 12, "day": 25} or {"month": 11, "weekday": "thu", "n": 4}
 * (n 1..5, or -1 for the last). A day is checked against the longest
 * month, so 02-29 is accepted (it matches leap years only). */
static int parse_recurring(const json_t *v, const char *path,
                           sched_override_t *o, vox_error_t *err)
{
	static const char *const keys[] = {"month", "day", "weekday", "n",
	                                   NULL};
	char sub[SUB_LEN];
	vox_error_t kerr;
	json_t *wd = json_object_get(v, "weekday");

	if (!json_is_object(v))
		return invalid(err, path, "must be an object");
	if (vox_json_only_keys(v, keys, &kerr) != 0)
		return invalid(err, path, kerr.message);
	if (parse_int_field(v, "month", path, 1, 12, &o->month, err) != 0)
		return VOX_ERR_INVALID;
	if (json_object_get(v, "day")) {
		if (wd || json_object_get(v, "n"))
			return invalid(err, path,
			               "either day, or weekday and n");
		o->kind = SCHED_OVR_MONTH_DAY;
		return parse_int_field(v, "day", path, 1,
		                       sched_days_in_month(2000, o->month),
		                       &o->mday, err);
	}
	o->kind = SCHED_OVR_NTH_WEEKDAY;
	snprintf(sub, sizeof(sub), "%.100s.weekday", path);
	o->weekday = -1;
	for (int d = 0; d < 7 && json_is_string(wd); d++)
		if (strcmp(json_string_value(wd), vox_schedule_day_names[d]) ==
		    0)
			o->weekday = d;
	if (o->weekday < 0)
		return invalid(err, sub,
		               "must be a weekday (mon, tue, wed, thu, fri, "
		               "sat, sun)");
	snprintf(sub, sizeof(sub), "%.100s.n", path);
	json_t *n = json_object_get(v, "n");
	json_int_t nv = json_is_integer(n) ? json_integer_value(n) : 0;
	if (!(nv >= 1 && nv <= 5) && nv != -1)
		return invalid(err, sub, "must be 1..5, or -1 for the last");
	o->nth = (int)nv;
	return 0;
}

/* Which days the override matches: exactly one of date, from/to,
 * recurring. */
static int parse_selector(const json_t *v, const char *path,
                          sched_override_t *o, vox_error_t *err)
{
	char sub[SUB_LEN];
	json_t *date = json_object_get(v, "date");
	json_t *from = json_object_get(v, "from");
	json_t *to = json_object_get(v, "to");
	json_t *rec = json_object_get(v, "recurring");

	if ((date != NULL) + (from != NULL || to != NULL) + (rec != NULL) != 1)
		return invalid(err, path,
		               "needs exactly one of date, from and to, "
		               "recurring");
	if (rec) {
		snprintf(sub, sizeof(sub), "%.100s.recurring", path);
		return parse_recurring(rec, sub, o, err);
	}
	snprintf(sub, sizeof(sub), "%.100s.%s", path, date ? "date" : "from");
	if (parse_date(date ? date : from, sub, &o->from_day, err) != 0)
		return VOX_ERR_INVALID;
	o->kind = SCHED_OVR_DATE;
	o->to_day = o->from_day;
	if (date)
		return 0;
	o->kind = SCHED_OVR_RANGE;
	snprintf(sub, sizeof(sub), "%.100s.to", path);
	if (!to)
		return invalid(err, sub, "required with from");
	if (parse_date(to, sub, &o->to_day, err) != 0)
		return VOX_ERR_INVALID;
	if (o->to_day < o->from_day)
		return invalid(err, sub, "is before from");
	return 0;
}

static int parse_override(const json_t *v, const char *path,
                          sched_override_t *o, vox_error_t *err)
{
	static const char *const keys[] = {"name",    "date",      "from",
	                                   "to",      "recurring", "hours",
	                                   "holiday", NULL};
	char sub[SUB_LEN];
	vox_error_t kerr;
	json_t *name = json_object_get(v, "name");
	json_t *holiday = json_object_get(v, "holiday");
	json_t *hours = json_object_get(v, "hours");

	if (!json_is_object(v))
		return invalid(err, path, "must be an object");
	if (vox_json_only_keys(v, keys, &kerr) != 0)
		return invalid(err, path, kerr.message);
	snprintf(sub, sizeof(sub), "%.100s.name", path);
	if (name && (!json_is_string(name) || json_string_length(name) > 100))
		return invalid(err, sub,
		               "must be a string of at most 100 "
		               "characters");
	snprintf(sub, sizeof(sub), "%.100s.holiday", path);
	if (holiday && !json_is_boolean(holiday))
		return invalid(err, sub, "must be true or false");
	o->holiday = json_is_true(holiday);
	if (parse_selector(v, path, o, err) != 0)
		return VOX_ERR_INVALID;
	snprintf(sub, sizeof(sub), "%.100s.hours", path);
	o->hours.n = 0;
	return hours ? parse_hours(hours, sub, &o->hours, NULL, -1, err) : 0;
}

static int parse_overrides(const json_t *v, vox_schedule_t *s, vox_error_t *err)
{
	size_t i;
	json_t *item;

	if (!v)
		return 0;
	if (!json_is_array(v))
		return invalid(err, "overrides", "must be an array");
	if (json_array_size(v) > VOX_SCHEDULE_MAX_OVERRIDES)
		return vox_error_set(
		        err, VOX_ERR_INVALID, false,
		        "overrides: at most %d overrides (got %zu)",
		        VOX_SCHEDULE_MAX_OVERRIDES, json_array_size(v));
	json_array_foreach(v, i, item)
	{
		char path[PATH_MAX_LEN];
		snprintf(path, sizeof(path), "overrides[%zu]", i);
		if (parse_override(item, path, &s->overrides[i], err) != 0)
			return VOX_ERR_INVALID;
		s->n_overrides++;
	}
	if (s->n_overrides > 0)
		s->always_open = false;
	return 0;
}

/* Checks zone against ICU's system zones (aliases included) and opens the
 * schedule's calendar with the DST options of vox_schedule.h. */
static int open_zone(vox_schedule_t *s, const char *zone, vox_error_t *err)
{
	UChar id[64], canonical[64];
	UBool is_system = 0;
	UErrorCode st = U_ZERO_ERROR;
	size_t len = strlen(zone);
	bool printable = true;

	for (size_t i = 0; i < len; i++)
		if (zone[i] <= ' ' || zone[i] > '~')
			printable = false;
	if (!printable || len == 0 || len >= sizeof(id) / sizeof(id[0]))
		return invalid(err, "time_zone", "is not an IANA time zone");
	u_uastrncpy(id, zone, (int32_t)len);
	int32_t n = ucal_getCanonicalTimeZoneID(id, (int32_t)len, canonical, 63,
	                                        &is_system, &st);
	if (U_FAILURE(st) || !is_system || n <= 0 || n >= 63)
		return vox_error_set(err, VOX_ERR_INVALID, false,
		                     "time_zone: unknown time zone \"%s\"",
		                     zone);
	/* kept as given: ICU's canonical ids are CLDR's (Asia/Kolkata would
	 * come back as Asia/Calcutta) */
	memcpy(s->zone, zone, len);
	s->cal =
	        ucal_open(id, (int32_t)len, "en_US_POSIX", UCAL_GREGORIAN, &st);
	if (U_FAILURE(st) || !s->cal)
		return vox_error_set(err, VOX_ERR_INTERNAL, false,
		                     "time_zone: ICU cannot open \"%s\": %s",
		                     zone, u_errorName(st));
	ucal_setAttribute(s->cal, UCAL_LENIENT, 1);
	ucal_setAttribute(s->cal, UCAL_SKIPPED_WALL_TIME,
	                  UCAL_WALLTIME_NEXT_VALID);
	ucal_setAttribute(s->cal, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
	return 0;
}

int vox_schedule_parse(const json_t *doc, const char *default_zone,
                       vox_schedule_t **out, vox_error_t *err)
{
	static const char *const keys[] = {"time_zone", "weekly", "overrides",
	                                   NULL};
	vox_error_t kerr;
	vox_schedule_t *s = NULL;
	json_t *zone;
	int rc;

	*out = NULL;
	if (!json_is_object(doc))
		return invalid(err, "body", "must be an object");
	if (vox_json_only_keys(doc, keys, &kerr) != 0)
		return invalid(err, "body", kerr.message);
	zone = json_object_get(doc, "time_zone");
	if (zone && !json_is_string(zone))
		return invalid(err, "time_zone", "must be a string");
	if (!zone && !default_zone)
		return invalid(err, "time_zone", "is required");
	s = calloc(1, sizeof(*s));
	if (!s)
		return vox_error_set(err, VOX_ERR_NOMEM, true, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	rc = open_zone(s, zone ? json_string_value(zone) : default_zone, err);
	if (rc != 0)
		goto fail;
	rc = parse_weekly(json_object_get(doc, "weekly"), s, err);
	if (rc != 0)
		goto fail;
	rc = parse_overrides(json_object_get(doc, "overrides"), s, err);
	if (rc != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	vox_schedule_destroy(s);
	return rc;
}
