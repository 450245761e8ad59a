/*
 * vox_schedule_internal: what vox_schedule.c (evaluation) and
 * vox_schedule_parse.c (the JSON document) share: the parsed model and
 * proleptic Gregorian day arithmetic on local calendar dates (day numbers
 * count from 1970-01-01 = 0; they name a local date, not an instant).
 */
#ifndef VOX_SCHEDULE_INTERNAL_H
#define VOX_SCHEDULE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unicode/ucal.h>

#include "vox_schedule.h"

#define SCHED_MINUTES_PER_DAY 1440

/* Minutes after local midnight; close in 1..1440. close <= open: the
 * interval runs past midnight into the next day (open != close). */
typedef struct sched_interval {
	int16_t open;
	int16_t close;
} sched_interval_t;

typedef struct sched_hours {
	int n;
	sched_interval_t iv[VOX_SCHEDULE_MAX_INTERVALS];
} sched_hours_t;

typedef enum sched_override_kind {
	SCHED_OVR_DATE,        /* from_day only */
	SCHED_OVR_RANGE,       /* from_day..to_day inclusive */
	SCHED_OVR_MONTH_DAY,   /* month, mday every year */
	SCHED_OVR_NTH_WEEKDAY, /* the nth (1..5, -1 = last) weekday of month */
} sched_override_kind_t;

typedef struct sched_override {
	sched_override_kind_t kind;
	int64_t from_day, to_day;
	int month, mday;
	int weekday; /* 0 = Monday .. 6 = Sunday */
	int nth;
	bool holiday;
	sched_hours_t hours; /* n == 0: closed all day */
} sched_override_t;

struct vox_schedule {
	pthread_mutex_t lock; /* guards cal */
	UCalendar *cal;       /* owned; the schedule's zone, DST options set */
	char zone[64];
	bool always_open; /* no override and the weekly hours cover the week */
	sched_hours_t weekly[7]; /* 0 = Monday */
	int n_overrides;
	sched_override_t overrides[VOX_SCHEDULE_MAX_OVERRIDES];
};

extern const char *const vox_schedule_day_names[7];

static inline bool sched_is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static inline int sched_days_in_month(int64_t y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30,
	                             31, 31, 30, 31, 30, 31};
	return m == 2 && sched_is_leap(y) ? 29 : days[m - 1];
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
static inline int64_t sched_day_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static inline void sched_civil_from_day(int64_t day, int64_t *y, int *m, int *d)
{
	int64_t z = day + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

/* 0 = Monday .. 6 = Sunday (1970-01-01 was a Thursday). */
static inline int sched_weekday(int64_t day)
{
	int64_t r = (day + 3) % 7;
	return (int)(r < 0 ? r + 7 : r);
}

#endif
