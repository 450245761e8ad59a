/*
 * vox_porting: the rules of porting orders (docs/PORTING.md "Rules"):
 * calendar arithmetic, US federal holidays as observed, the FOC window,
 * status moves, a parent's summary and the aad of sealed secrets. Pure
 * functions: "today" is always the caller's.
 */
#include "vox_porting.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- dates */

static bool leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30,
	                           31, 31, 30, 31, 30, 31};

	return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

int vox_date_parse(const char *text, vox_date_t *d)
{
	int v[3] = {0, 0, 0};
	static const int widths[] = {4, 2, 2};
	const char *p = text;

	if (text == NULL || strlen(text) != 10)
		return -1;
	for (int part = 0; part < 3; part++) {
		for (int i = 0; i < widths[part]; i++, p++) {
			if (*p < '0' || *p > '9')
				return -1;
			v[part] = v[part] * 10 + (*p - '0');
		}
		if (part < 2 && *p++ != '-')
			return -1;
	}
	if (v[0] < 1 || v[1] < 1 || v[1] > 12 || v[2] < 1 ||
	    v[2] > month_days(v[0], v[1]))
		return -1;
	d->year = v[0];
	d->month = v[1];
	d->day = v[2];
	return 0;
}

void vox_date_format(const vox_date_t *d, char out[11])
{
	snprintf(out, 11, "%04u-%02u-%02u", (unsigned)d->year % 10000u,
	         (unsigned)d->month % 100u, (unsigned)d->day % 100u);
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
long vox_date_days(const vox_date_t *d)
{
	long y = d->year - (d->month <= 2);
	long era = (y >= 0 ? y : y - 399) / 400;
	long yoe = y - era * 400;
	long m = d->month;
	long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d->day - 1;
	long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

vox_date_t vox_date_from_days(long days)
{
	long z = days + 719468;
	long era = (z >= 0 ? z : z - 146096) / 146097;
	long doe = z - era * 146097;
	long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	long mp = (5 * doy + 2) / 153;
	vox_date_t d;

	d.day = (int)(doy - (153 * mp + 2) / 5 + 1);
	d.month = (int)(mp < 10 ? mp + 3 : mp - 9);
	d.year = (int)(yoe + era * 400 + (d.month <= 2));
	return d;
}

vox_date_t vox_date_of_unix(long long unix_s)
{
	long long days = unix_s / 86400;

	if (unix_s % 86400 < 0)
		days--;
	return vox_date_from_days((long)days);
}

int vox_date_weekday(const vox_date_t *d)
{
	long days = vox_date_days(d); /* 1970-01-01 was a Thursday (4) */
	long w = (days + 4) % 7;

	return (int)(w < 0 ? w + 7 : w);
}

/* ---------------------------------------------------------------- holidays */

/* The n-th (1..) weekday wd of a month, or the last one (n = -1). */
static vox_date_t nth_weekday(int year, int month, int wd, int n)
{
	vox_date_t d = {year, month, 1};
	int first;

	if (n < 0) {
		d.day = month_days(year, month);
		first = vox_date_weekday(&d);
		d.day -= (first - wd + 7) % 7;
		return d;
	}
	first = vox_date_weekday(&d);
	d.day = 1 + (wd - first + 7) % 7 + 7 * (n - 1);
	return d;
}

/* A fixed-date holiday moved off the weekend: Saturday to the Friday
 * before, Sunday to the Monday after. */
static long observed_days(int year, int month, int day)
{
	vox_date_t d = {year, month, day};
	long days = vox_date_days(&d);
	int wd = vox_date_weekday(&d);

	return wd == 6 ? days - 1 : wd == 0 ? days + 1 : days;
}

static bool holiday_of_year(int year, long days)
{
	static const int fixed[][2] = {
	        {1, 1}, {6, 19}, {7, 4}, {11, 11}, {12, 25}};
	/* {month, weekday, n}: MLK, Washington, Memorial, Labor, Columbus,
	 * Thanksgiving. */
	static const int floating[][3] = {{1, 1, 3}, {2, 1, 3},  {5, 1, -1},
	                                  {9, 1, 1}, {10, 1, 2}, {11, 4, 4}};

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (observed_days(year, fixed[i][0], fixed[i][1]) == days)
			return true;
	for (size_t i = 0; i < sizeof(floating) / sizeof(floating[0]); i++) {
		vox_date_t h = nth_weekday(year, floating[i][0], floating[i][1],
		                           floating[i][2]);

		if (vox_date_days(&h) == days)
			return true;
	}
	return false;
}

bool vox_porting_holiday(const vox_date_t *d)
{
	long days = vox_date_days(d);

	/* A Saturday New Year's Day is observed on December 31 before. */
	return holiday_of_year(d->year, days) ||
	       (d->month == 12 && holiday_of_year(d->year + 1, days));
}

bool vox_porting_business_day(const vox_date_t *d)
{
	int wd = vox_date_weekday(d);

	return wd != 0 && wd != 6 && !vox_porting_holiday(d);
}

vox_date_t vox_porting_add_business_days(const vox_date_t *d, int n)
{
	long days = vox_date_days(d);
	vox_date_t next = *d;

	while (n > 0) {
		next = vox_date_from_days(++days);
		if (vox_porting_business_day(&next))
			n--;
	}
	return next;
}

/* ---------------------------------------------------------------- FOC */

const char *vox_porting_foc_rule(const vox_date_t *today, const vox_date_t *foc)
{
	vox_date_t first = vox_porting_add_business_days(
	        today, VOX_PORTING_MIN_BUSINESS_DAYS);

	if (!vox_porting_business_day(foc))
		return "foc_not_business_day";
	if (vox_date_days(foc) < vox_date_days(&first))
		return "foc_too_early";
	if (vox_date_days(foc) > vox_date_days(today) + VOX_PORTING_MAX_DAYS)
		return "foc_too_late";
	return NULL;
}

void vox_porting_foc_range(const vox_date_t *today, vox_date_t *first,
                           vox_date_t *last)
{
	long days = vox_date_days(today) + VOX_PORTING_MAX_DAYS;

	*first = vox_porting_add_business_days(today,
	                                       VOX_PORTING_MIN_BUSINESS_DAYS);
	*last = vox_date_from_days(days);
	/* The last business day within the 30 days (never before first:
	 * 30 calendar days always hold 3 business days). */
	while (!vox_porting_business_day(last) &&
	       vox_date_days(last) > vox_date_days(first))
		*last = vox_date_from_days(--days);
}

/* ---------------------------------------------------------------- statuses */

static const char *const statuses[] = {
        "draft",          "submitted",          "in-process",
        "exception",      "foc-date-confirmed", "ported",
        "cancel-pending", "cancelled"};
#define NSTATUSES (sizeof(statuses) / sizeof(statuses[0]))

bool vox_porting_status_valid(const char *status)
{
	for (size_t i = 0; status != NULL && i < NSTATUSES; i++)
		if (strcmp(status, statuses[i]) == 0)
			return true;
	return false;
}

bool vox_porting_status_final(const char *status)
{
	return status != NULL && (strcmp(status, "ported") == 0 ||
	                          strcmp(status, "cancelled") == 0);
}

/* docs/PORTING.md "Moves allowed". */
static const struct move {
	const char *from, *to;
} moves[] = {
        {"draft", "submitted"},
        {"exception", "submitted"},
        {"submitted", "in-process"},
        {"submitted", "exception"},
        {"in-process", "exception"},
        {"in-process", "foc-date-confirmed"},
        {"submitted", "foc-date-confirmed"},
        {"foc-date-confirmed", "ported"},
        {"draft", "cancelled"},
        {"submitted", "cancel-pending"},
        {"in-process", "cancel-pending"},
        {"exception", "cancel-pending"},
        {"foc-date-confirmed", "cancel-pending"},
        {"cancel-pending", "cancelled"},
        {"cancel-pending", "ported"},
};

bool vox_porting_move_allowed(const char *from, const char *to)
{
	if (from == NULL || to == NULL)
		return false;
	for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++)
		if (strcmp(from, moves[i].from) == 0 &&
		    strcmp(to, moves[i].to) == 0)
			return true;
	return false;
}

static bool any_is(const char *const *child_status, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (child_status[i] != NULL && strcmp(child_status[i], s) == 0)
			return true;
	return false;
}

const char *vox_porting_summary(const char *const *child_status, size_t n)
{
	/* Least advanced first. */
	static const char *const open[] = {"submitted", "in-process",
	                                   "foc-date-confirmed"};

	if (any_is(child_status, n, "exception"))
		return "exception";
	for (size_t i = 0; i < sizeof(open) / sizeof(open[0]); i++)
		if (any_is(child_status, n, open[i]))
			return open[i];
	if (any_is(child_status, n, "cancel-pending"))
		return "cancel-pending";
	/* A draft child cannot exist (children are made at submit); were
	 * one there, the parent would not be final either. */
	if (any_is(child_status, n, "draft"))
		return "draft";
	return any_is(child_status, n, "ported") ? "ported" : "cancelled";
}

const char *vox_porting_event_type(const char *status)
{
	static const struct {
		const char *status, *type;
	} types[] = {
	        {"submitted", "porting_order.submitted"},
	        {"in-process", "porting_order.in_process"},
	        {"exception", "porting_order.exception"},
	        {"foc-date-confirmed", "porting_order.foc_date_confirmed"},
	        {"ported", "porting_order.ported"},
	        {"cancel-pending", "porting_order.cancel_pending"},
	        {"cancelled", "porting_order.cancelled"},
	};

	for (size_t i = 0;
	     status != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(status, types[i].status) == 0)
			return types[i].type;
	return NULL;
}

/* ---------------------------------------------------------------- secrets */

int vox_porting_aad(char *out, size_t len, const char *field,
                    const char *order_id, const char *account_id)
{
	return snprintf(out, len, "porting_orders.%s:%s:%s", field, order_id,
	                account_id);
}

void vox_porting_last2(const char *secret, char out[3])
{
	size_t n = secret ? strlen(secret) : 0;

	if (n >= 2) {
		out[0] = secret[n - 2];
		out[1] = secret[n - 1];
		out[2] = '\0';
	} else {
		out[0] = n == 1 ? secret[0] : '\0';
		out[1] = '\0';
	}
}
