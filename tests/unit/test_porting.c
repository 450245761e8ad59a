/*
 * Tests of vox_porting: calendar dates, US federal holidays as observed in
 * 2026-2028 (every day of the three years against the published list),
 * business days, the FOC rules at their edges, status moves, a parent's
 * summary, event types, the aad and last2.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "vox_porting.h"

static vox_date_t D(const char *text)
{
	vox_date_t d = {0, 0, 0};

	cr_assert_eq(vox_date_parse(text, &d), 0, "%s", text);
	return d;
}

static void assert_date(const vox_date_t *d, const char *want)
{
	char got[11];

	vox_date_format(d, got);
	cr_assert_str_eq(got, want);
}

Test(porting, date_parse)
{
	static const char *const bad[] = {
	        "",           "2026-1-01",   "2026-13-01", "2026-00-10",
	        "2026-02-29", "2026-02-30",  "2026-04-31", "2026/12/01",
	        "26-12-01",   "2026-12-011", "2026-12-0a", "0000-01-01",
	        " 2026-12-01"};
	vox_date_t d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(vox_date_parse(bad[i], &d), -1, "%s", bad[i]);
	cr_assert_eq(vox_date_parse(NULL, &d), -1);
	d = D("2028-02-29"); /* a leap day */
	cr_assert_eq(d.year, 2028);
	cr_assert_eq(d.month, 2);
	cr_assert_eq(d.day, 29);
	assert_date(&d, "2028-02-29");
	d = D("2000-02-29");
	assert_date(&d, "2000-02-29");
	cr_assert_eq(vox_date_parse("1900-02-29", &d), -1);
}

Test(porting, days_round_trip)
{
	vox_date_t d = D("1970-01-01");

	cr_assert_eq(vox_date_days(&d), 0);
	d = D("2026-12-07");
	cr_assert_eq(vox_date_days(&d), 20794);
	cr_assert_eq(vox_date_weekday(&d), 1); /* a Monday */
	for (long days = -1000; days < 40000; days += 7) {
		vox_date_t back = vox_date_from_days(days);

		cr_assert_eq(vox_date_days(&back), days);
	}
	d = vox_date_of_unix(1796601600LL); /* 2026-12-07T00:00:00Z */
	assert_date(&d, "2026-12-07");
	d = vox_date_of_unix(1796601600LL - 1);
	assert_date(&d, "2026-12-06");
	d = vox_date_of_unix(-1);
	assert_date(&d, "1969-12-31");
}

/* The US federal holidays as observed (OPM), 2026-2028. */
static const char *const holidays[] = {
        "2026-01-01", "2026-01-19", "2026-02-16",
        "2026-05-25", "2026-06-19", "2026-07-03", /* July 4 is a Saturday */
        "2026-09-07", "2026-10-12", "2026-11-11",
        "2026-11-26", "2026-12-25", "2027-01-01",
        "2027-01-18", "2027-02-15", "2027-05-31",
        "2027-06-18", /* June 19 is a Saturday */
        "2027-07-05", /* July 4 is a Sunday */
        "2027-09-06", "2027-10-11", "2027-11-11",
        "2027-11-25", "2027-12-24", /* Christmas is a Saturday */
        "2027-12-31",               /* New Year's Day 2028 is a Saturday */
        "2028-01-17", "2028-02-21", "2028-05-29",
        "2028-06-19", "2028-07-04", "2028-09-04",
        "2028-10-09", "2028-11-10", /* Veterans Day is a Saturday */
        "2028-11-23", "2028-12-25"};
#define NHOLIDAYS (sizeof(holidays) / sizeof(holidays[0]))

static bool listed(const char *text)
{
	for (size_t i = 0; i < NHOLIDAYS; i++)
		if (strcmp(text, holidays[i]) == 0)
			return true;
	return false;
}

Test(porting, holidays_2026_to_2028)
{
	vox_date_t first = D("2026-01-01"), last = D("2028-12-31");
	size_t found = 0;

	for (long days = vox_date_days(&first); days <= vox_date_days(&last);
	     days++) {
		vox_date_t d = vox_date_from_days(days);
		char text[11];
		int wd = vox_date_weekday(&d);

		vox_date_format(&d, text);
		cr_assert_eq(vox_porting_holiday(&d), listed(text), "%s", text);
		found += vox_porting_holiday(&d);
		cr_assert_eq(vox_porting_business_day(&d),
		             wd != 0 && wd != 6 && !listed(text), "%s", text);
	}
	cr_assert_eq(found, NHOLIDAYS);
	/* The days themselves when moved are not business days anyway. */
	vox_date_t sat = D("2026-07-04");
	cr_assert_not(vox_porting_business_day(&sat));
}

Test(porting, add_business_days)
{
	vox_date_t d = D("2026-12-07"), r; /* Monday */

	r = vox_porting_add_business_days(&d, 3);
	assert_date(&r, "2026-12-10");
	d = D("2026-12-10"); /* Thursday: over the weekend */
	r = vox_porting_add_business_days(&d, 3);
	assert_date(&r, "2026-12-15");
	d = D("2026-12-22"); /* over Christmas and the weekend */
	r = vox_porting_add_business_days(&d, 3);
	assert_date(&r, "2026-12-28");
	d = D("2027-12-22"); /* Dec 24 and Dec 31 2027 observed */
	r = vox_porting_add_business_days(&d, 3);
	assert_date(&r, "2027-12-28");
	r = vox_porting_add_business_days(&d, 6);
	assert_date(&r, "2028-01-03");
	d = D("2026-12-12"); /* from a Saturday */
	r = vox_porting_add_business_days(&d, 1);
	assert_date(&r, "2026-12-14");
}

Test(porting, foc_rules_at_the_edges)
{
	vox_date_t today = D("2026-12-07"), foc;

	foc = D("2026-12-09"); /* the 2nd business day */
	cr_assert_str_eq(vox_porting_foc_rule(&today, &foc), "foc_too_early");
	foc = D("2026-12-10"); /* the 3rd: the first allowed */
	cr_assert_null(vox_porting_foc_rule(&today, &foc));
	foc = D("2026-12-07"); /* today */
	cr_assert_str_eq(vox_porting_foc_rule(&today, &foc), "foc_too_early");
	foc = D("2026-11-30"); /* the past */
	cr_assert_str_eq(vox_porting_foc_rule(&today, &foc), "foc_too_early");
	foc = D("2027-01-06"); /* today + 30, a Wednesday */
	cr_assert_null(vox_porting_foc_rule(&today, &foc));
	foc = D("2027-01-07"); /* today + 31 */
	cr_assert_str_eq(vox_porting_foc_rule(&today, &foc), "foc_too_late");
	foc = D("2026-12-12"); /* Saturday */
	cr_assert_str_eq(vox_porting_foc_rule(&today, &foc),
	                 "foc_not_business_day");
	foc = D("2026-12-13"); /* Sunday */
	cr_assert_str_eq(vox_porting_foc_rule(&today, &foc),
	                 "foc_not_business_day");
	foc = D("2026-12-25"); /* Christmas */
	cr_assert_str_eq(vox_porting_foc_rule(&today, &foc),
	                 "foc_not_business_day");
	foc = D("2027-01-01"); /* New Year's Day */
	cr_assert_str_eq(vox_porting_foc_rule(&today, &foc),
	                 "foc_not_business_day");
	/* Holidays push the earliest day out. */
	today = D("2026-12-22");
	foc = D("2026-12-24");
	cr_assert_str_eq(vox_porting_foc_rule(&today, &foc), "foc_too_early");
	foc = D("2026-12-28");
	cr_assert_null(vox_porting_foc_rule(&today, &foc));
	today = D("2026-07-02");
	foc = D("2026-07-07");
	cr_assert_str_eq(vox_porting_foc_rule(&today, &foc), "foc_too_early");
	foc = D("2026-07-08");
	cr_assert_null(vox_porting_foc_rule(&today, &foc));
}

Test(porting, foc_range)
{
	vox_date_t today = D("2026-12-07"), first, last;

	vox_porting_foc_range(&today, &first, &last);
	assert_date(&first, "2026-12-10");
	assert_date(&last, "2027-01-06");
	/* today + 30 is New Year's Day 2027: the last is the day before */
	today = D("2026-12-02");
	vox_porting_foc_range(&today, &first, &last);
	assert_date(&first, "2026-12-07");
	assert_date(&last, "2026-12-31");
}

Test(porting, foc_range_weekend_end)
{
	vox_date_t today = D("2026-12-04"), first, last;

	/* 2026-12-04 + 30 = 2027-01-03, a Sunday; Jan 1 is a holiday and
	 * Jan 2 a Saturday: the last is Dec 31. */
	vox_porting_foc_range(&today, &first, &last);
	assert_date(&first, "2026-12-09");
	assert_date(&last, "2026-12-31");
	cr_assert(vox_porting_business_day(&last));
	cr_assert_null(vox_porting_foc_rule(&today, &last));
	cr_assert_null(vox_porting_foc_rule(&today, &first));
}

Test(porting, statuses)
{
	static const char *const all[] = {
	        "draft",          "submitted",          "in-process",
	        "exception",      "foc-date-confirmed", "ported",
	        "cancel-pending", "cancelled"};

	for (size_t i = 0; i < 8; i++)
		cr_assert(vox_porting_status_valid(all[i]), "%s", all[i]);
	cr_assert_not(vox_porting_status_valid("in_process"));
	cr_assert_not(vox_porting_status_valid(""));
	cr_assert_not(vox_porting_status_valid(NULL));
	cr_assert(vox_porting_status_final("ported"));
	cr_assert(vox_porting_status_final("cancelled"));
	cr_assert_not(vox_porting_status_final("cancel-pending"));
	cr_assert_not(vox_porting_status_final("draft"));
}

Test(porting, moves)
{
	static const char *const all[] = {
	        "draft",          "submitted",          "in-process",
	        "exception",      "foc-date-confirmed", "ported",
	        "cancel-pending", "cancelled"};
	/* The table of docs/PORTING.md, as "from>to". */
	static const char *const allowed[] = {
	        "draft>submitted",
	        "exception>submitted",
	        "submitted>in-process",
	        "submitted>exception",
	        "in-process>exception",
	        "in-process>foc-date-confirmed",
	        "submitted>foc-date-confirmed",
	        "foc-date-confirmed>ported",
	        "draft>cancelled",
	        "submitted>cancel-pending",
	        "in-process>cancel-pending",
	        "exception>cancel-pending",
	        "foc-date-confirmed>cancel-pending",
	        "cancel-pending>cancelled",
	        "cancel-pending>ported"};
	int n = 0;

	for (size_t i = 0; i < 8; i++)
		for (size_t j = 0; j < 8; j++) {
			char key[64];
			bool want = false;

			snprintf(key, sizeof(key), "%s>%s", all[i], all[j]);
			for (size_t k = 0;
			     k < sizeof(allowed) / sizeof(allowed[0]); k++)
				want = want || strcmp(key, allowed[k]) == 0;
			cr_assert_eq(vox_porting_move_allowed(all[i], all[j]),
			             want, "%s", key);
			n += want;
		}
	cr_assert_eq(n, 15);
	/* Nothing leaves a final status. */
	cr_assert_not(vox_porting_move_allowed("ported", "cancelled"));
	cr_assert_not(vox_porting_move_allowed("cancelled", "submitted"));
	cr_assert_not(vox_porting_move_allowed(NULL, "submitted"));
	cr_assert_not(vox_porting_move_allowed("draft", "bogus"));
}

Test(porting, summary)
{
	const char *a[] = {"ported", "exception", "in-process"};
	const char *b[] = {"foc-date-confirmed", "in-process", "ported"};
	const char *c[] = {"foc-date-confirmed", "submitted"};
	const char *d[] = {"cancel-pending", "ported"};
	const char *e[] = {"cancelled", "ported"};
	const char *f[] = {"cancelled", "cancelled"};
	const char *g[] = {"foc-date-confirmed", "cancel-pending"};
	const char *h[] = {"ported"};

	cr_assert_str_eq(vox_porting_summary(a, 3), "exception");
	cr_assert_str_eq(vox_porting_summary(b, 3), "in-process");
	cr_assert_str_eq(vox_porting_summary(c, 2), "submitted");
	cr_assert_str_eq(vox_porting_summary(d, 2), "cancel-pending");
	cr_assert_str_eq(vox_porting_summary(e, 2), "ported");
	cr_assert_str_eq(vox_porting_summary(f, 2), "cancelled");
	cr_assert_str_eq(vox_porting_summary(g, 2), "foc-date-confirmed");
	cr_assert_str_eq(vox_porting_summary(h, 1), "ported");
}

Test(porting, event_types)
{
	cr_assert_str_eq(vox_porting_event_type("in-process"),
	                 "porting_order.in_process");
	cr_assert_str_eq(vox_porting_event_type("foc-date-confirmed"),
	                 "porting_order.foc_date_confirmed");
	cr_assert_str_eq(vox_porting_event_type("cancel-pending"),
	                 "porting_order.cancel_pending");
	cr_assert_str_eq(vox_porting_event_type("submitted"),
	                 "porting_order.submitted");
	cr_assert_str_eq(vox_porting_event_type("exception"),
	                 "porting_order.exception");
	cr_assert_str_eq(vox_porting_event_type("ported"),
	                 "porting_order.ported");
	cr_assert_str_eq(vox_porting_event_type("cancelled"),
	                 "porting_order.cancelled");
	cr_assert_null(vox_porting_event_type("draft"));
	cr_assert_null(vox_porting_event_type("nope"));
	cr_assert_null(vox_porting_event_type(NULL));
}

Test(porting, aad)
{
	char out[160], small[16];
	int n;

	n = vox_porting_aad(out, sizeof(out), "pin",
	                    "0193a000-0000-7000-8000-000000000001",
	                    "0193a000-0000-7000-8000-000000000002");
	cr_assert_str_eq(out, "porting_orders.pin:0193a000-0000-7000-8000-"
	                      "000000000001:0193a000-0000-7000-8000-"
	                      "000000000002");
	cr_assert_eq(n, (int)strlen(out));
	n = vox_porting_aad(small, sizeof(small), "account_number", "a", "b");
	cr_assert_eq(n, (int)strlen("porting_orders.account_number:a:b"));
	cr_assert_eq(strlen(small), sizeof(small) - 1);
}

Test(porting, last2)
{
	char out[3];

	vox_porting_last2("ACC-123456", out);
	cr_assert_str_eq(out, "56");
	vox_porting_last2("0100", out);
	cr_assert_str_eq(out, "00");
	vox_porting_last2("7", out);
	cr_assert_str_eq(out, "7");
	vox_porting_last2("", out);
	cr_assert_str_eq(out, "");
	vox_porting_last2(NULL, out);
	cr_assert_str_eq(out, "");
}
