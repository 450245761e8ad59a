/*
 * vox_porting: the rules of porting orders (docs/PORTING.md "Rules"),
 * shared by the ingress (validation, allowed-foc-windows) and the porting
 * worker: business days, the FOC window, status names and moves, the
 * parent's summary status and the additional data that binds a sealed
 * secret to its row. Pure functions, no I/O.
 *
 * Dates are proleptic Gregorian calendar dates; "today" is the caller's
 * (UTC in production, given so tests can move it).
 */
#ifndef VOX_PORTING_H
#define VOX_PORTING_H

#include <stdbool.h>
#include <stddef.h>

#define VOX_PORTING_MAX_NUMBERS       1000 /* per order */
#define VOX_PORTING_CHECK_MAX         250  /* per portability check */
#define VOX_PORTING_MIN_BUSINESS_DAYS 3
#define VOX_PORTING_MAX_DAYS          30
#define VOX_PORTING_CANCEL_CUTOFF_S   (48 * 3600)
#define VOX_PORTING_DRAFT_TTL_DAYS    30
/* The FOC window of a business day, UTC all year (09:00-17:00 US Eastern
 * standard time, 10:00-18:00 daylight time). */
#define VOX_PORTING_WINDOW_START_H 14
#define VOX_PORTING_WINDOW_END_H   22

typedef struct vox_date {
	int year, month, day; /* month 1..12, day 1..31 */
} vox_date_t;

/* "YYYY-MM-DD" (exactly) into *d: 0, or -1 for anything else (including
 * 2026-02-30). */
int vox_date_parse(const char *text, vox_date_t *d);
/* "YYYY-MM-DD" into out (11 bytes). */
void vox_date_format(const vox_date_t *d, char out[11]);
/* Days since 1970-01-01 and back. */
long vox_date_days(const vox_date_t *d);
vox_date_t vox_date_from_days(long days);
/* The UTC date of a unix time. */
vox_date_t vox_date_of_unix(long long unix_s);
/* 0 = Sunday .. 6 = Saturday. */
int vox_date_weekday(const vox_date_t *d);

/* A US federal holiday as observed (a Saturday holiday on the Friday
 * before, a Sunday one on the Monday after): New Year's Day, Martin Luther
 * King Jr. Day, Washington's Birthday, Memorial Day, Juneteenth,
 * Independence Day, Labor Day, Columbus Day, Veterans Day, Thanksgiving,
 * Christmas. */
bool vox_porting_holiday(const vox_date_t *d);
/* Not a Saturday, Sunday or holiday. */
bool vox_porting_business_day(const vox_date_t *d);
/* The n-th business day after d (n >= 1). */
vox_date_t vox_porting_add_business_days(const vox_date_t *d, int n);

/* Whether foc may be requested today: NULL when it may, else the rule it
 * breaks: "foc_not_business_day", "foc_too_early" (before the
 * VOX_PORTING_MIN_BUSINESS_DAYS-th business day after today) or
 * "foc_too_late" (more than VOX_PORTING_MAX_DAYS after today). */
const char *vox_porting_foc_rule(const vox_date_t *today,
                                 const vox_date_t *foc);
/* The first and last day a FOC may be requested on (the first is a
 * business day; the days between that are business days are the allowed
 * ones). */
void vox_porting_foc_range(const vox_date_t *today, vox_date_t *first,
                           vox_date_t *last);

/* Statuses (docs/PORTING.md "Statuses"). */
bool vox_porting_status_valid(const char *status);
bool vox_porting_status_final(const char *status); /* ported, cancelled */
/* Whether from -> to is a move of the table in docs/PORTING.md. */
bool vox_porting_move_allowed(const char *from, const char *to);
/* The summary status of a parent whose children have these statuses
 * (n >= 1), by the four rules of docs/PORTING.md "Split by losing
 * carrier". A static string. */
const char *vox_porting_summary(const char *const *child_status, size_t n);
/* The vox.events type of entering status: "porting_order.in_process" for
 * "in-process"...; "porting_order.expired" is the caller's for a draft
 * that expired. NULL for an unknown status. */
const char *vox_porting_event_type(const char *status);

/* The aad that binds a sealed secret (field "account_number" or "pin") to
 * its order and account: "porting_orders.<field>:<order id>:<account id>".
 * Returns the length written (snprintf's), cut to len. */
int vox_porting_aad(char *out, size_t len, const char *field,
                    const char *order_id, const char *account_id);
/* The last two characters of a secret ("" for "", one for one). */
void vox_porting_last2(const char *secret, char out[3]);

#endif
