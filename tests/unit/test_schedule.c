/*
 * Tests of vox_schedule (issue 12, "Time is hard"): a table of (schedule,
 * UTC instant, expected state, rule and next transition) over both DST
 * edges in New York, London and Adelaide, a +05:30 zone, overnight
 * intervals, a holiday after an overnight interval, nth and last weekdays,
 * Feb 29, a range across a year end and partial-day hours; the bad inputs
 * each refused with the field named; and transition listings whose local
 * times carry the offsets in force.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vox_schedule.h"
#include "vox_time.h"

/* Sunday 00:30-04:00 holds the skipped hour on 2026-03-08 and the repeated
 * one on 2026-11-01. */
static const char *NY_CONTAINS =
        "{\"time_zone\":\"America/New_York\",\"weekly\":{\"sun\":["
        "{\"open\":\"00:30\",\"close\":\"04:00\"}]}}";
/* Boundaries inside the gap and the repeat: 02:30 does not exist on
 * 2026-03-08, 01:30 happens twice on 2026-11-01. */
static const char *NY_EDGES =
        "{\"time_zone\":\"America/New_York\",\"weekly\":{\"sun\":["
        "{\"open\":\"02:30\",\"close\":\"05:00\"}],\"sat\":["
        "{\"open\":\"23:00\",\"close\":\"01:30\"}]}}";
/* London: spring 2026-03-29 01:00 GMT -> 02:00 BST; fall 2026-10-25
 * 02:00 BST -> 01:00 GMT. */
static const char *LONDON =
        "{\"time_zone\":\"Europe/London\",\"weekly\":{\"sun\":["
        "{\"open\":\"00:00\",\"close\":\"03:00\"},"
        "{\"open\":\"04:00\",\"close\":\"05:00\"}],"
        "\"sat\":[{\"open\":\"01:30\",\"close\":\"02:00\"}]}}";
static const char *LONDON_GAP =
        "{\"time_zone\":\"Europe/London\",\"weekly\":{\"sun\":["
        "{\"open\":\"01:30\",\"close\":\"06:00\"}]}}";
/* +05:30 all year. */
static const char *KOLKATA =
        "{\"time_zone\":\"Asia/Kolkata\",\"weekly\":{"
        "\"mon\":[{\"open\":\"09:00\",\"close\":\"17:30\"}]}}";
/* +09:30 / +10:30: DST starts 2026-10-04 02:00 ACST, ends 2026-04-05
 * 03:00 ACDT. */
static const char *ADELAIDE =
        "{\"time_zone\":\"Australia/Adelaide\",\"weekly\":{\"sun\":["
        "{\"open\":\"01:00\",\"close\":\"05:00\"}]}}";
/* Friday 22:00-02:00; 2026-12-26 (a Saturday) a holiday; Friday
 * 2027-01-01 closed (its night goes too); Saturday 2026-12-19 with hours
 * 01:00-05:00 that overlap Friday's night. */
static const char *NIGHT =
        "{\"time_zone\":\"Europe/London\",\"weekly\":{\"fri\":["
        "{\"open\":\"22:00\",\"close\":\"02:00\"}]},\"overrides\":["
        "{\"date\":\"2026-12-26\",\"holiday\":true,\"name\":\"Boxing "
        "Day\"},{\"date\":\"2027-01-01\"},"
        "{\"date\":\"2026-12-19\",\"hours\":[{\"open\":\"01:00\","
        "\"close\":\"05:00\"}]}]}";
/* Nothing but an interval inside New York's 2026-03-08 gap; London
 * Saturday 22:00-24:00 touching Sunday 00:00-02:00. */
static const char *GAP_ONLY =
        "{\"time_zone\":\"America/New_York\",\"weekly\":{\"sun\":["
        "{\"open\":\"02:10\",\"close\":\"02:50\"}]}}";
static const char *TOUCHING =
        "{\"time_zone\":\"Europe/London\",\"weekly\":{\"sat\":["
        "{\"open\":\"22:00\",\"close\":\"24:00\"}],\"sun\":["
        "{\"open\":\"00:00\",\"close\":\"02:00\"}]}}";
#define NY_WEEKDAYS                                                            \
	"\"weekly\":{\"mon\":[{\"open\":\"09:00\",\"close\":\"17:00\"}],"      \
	"\"tue\":[{\"open\":\"09:00\",\"close\":\"17:00\"}],"                  \
	"\"wed\":[{\"open\":\"09:00\",\"close\":\"17:00\"}],"                  \
	"\"thu\":[{\"open\":\"09:00\",\"close\":\"17:00\"}],"                  \
	"\"fri\":[{\"open\":\"09:00\",\"close\":\"17:00\"}]}"
static const char *US_HOLIDAYS =
        "{\"time_zone\":\"America/New_York\"," NY_WEEKDAYS
        ",\"overrides\":[{\"name\":\"Thanksgiving\",\"holiday\":true,"
        "\"recurring\":{\"month\":11,\"weekday\":\"thu\",\"n\":4}},"
        "{\"name\":\"Memorial Day\",\"holiday\":true,"
        "\"recurring\":{\"month\":5,\"weekday\":\"mon\",\"n\":-1}}]}";
/* Partial hours on 12-24 listed before a range across the year end: the
 * first matching override wins. */
static const char *YEAR_END =
        "{\"time_zone\":\"America/New_York\"," NY_WEEKDAYS
        ",\"overrides\":[{\"date\":\"2026-12-24\",\"hours\":["
        "{\"open\":\"09:00\",\"close\":\"12:00\"}]},"
        "{\"from\":\"2026-12-24\",\"to\":\"2027-01-02\"}]}";
#define DAY_9_17(d) "\"" d "\":[{\"open\":\"09:00\",\"close\":\"17:00\"}]"
/* clang-format off */
static const char *LEAP =
        "{\"time_zone\":\"Europe/London\",\"weekly\":{"
        DAY_9_17("mon") "," DAY_9_17("tue") "," DAY_9_17("wed") ","
        DAY_9_17("thu") "," DAY_9_17("fri") "," DAY_9_17("sat") ","
        DAY_9_17("sun") "},"
        "\"overrides\":[{\"recurring\":{\"month\":2,\"day\":29},"
        "\"holiday\":true}]}";
/* clang-format on */

#define ALL(d) "\"" d "\":[{\"open\":\"00:00\",\"close\":\"24:00\"}]"
/* Open around the clock but for a holiday, and a full-day override that
 * changes nothing: the walk to the next transition skips whole open days. */
/* clang-format off */
static const char *ALL_WEEK =
        "{\"time_zone\":\"Europe/London\",\"weekly\":{"
        ALL("mon") "," ALL("tue") "," ALL("wed") "," ALL("thu") ","
        ALL("fri") "," ALL("sat") "," ALL("sun") "},"
        "\"overrides\":[{\"recurring\":{\"month\":12,\"day\":25},"
        "\"holiday\":true},"
        "{\"recurring\":{\"month\":2,\"day\":29},\"hours\":"
        "[{\"open\":\"00:00\",\"close\":\"24:00\"}]}]}";
/* clang-format on */

/* clang-format off */
static const char *MON_9_17_TUE_ALL =
        "{\"time_zone\":\"America/New_York\",\"weekly\":{"
        DAY_9_17("mon") "," ALL("tue") "}}";
static const char *NY_SAT_SUN_MON =
        "{\"time_zone\":\"America/New_York\",\"weekly\":{"
        DAY_9_17("sat") "," DAY_9_17("sun") "," DAY_9_17("mon") "}}";
/* clang-format on */

typedef struct state_case {
	const char *what;
	const char **schedule;
	const char *at;
	vox_schedule_state_kind_t state;
	const char *rule;
	const char *next; /* NULL: no transition within the horizon */
} state_case_t;

#define OPEN    VOX_SCHEDULE_OPEN
#define CLOSED  VOX_SCHEDULE_CLOSED
#define HOLIDAY VOX_SCHEDULE_HOLIDAY

static const state_case_t cases[] = {
        /* New York, spring forward: 00:30 EST = 05:30Z, 04:00 EDT = 08:00Z */
        {"ny spring before", &NY_CONTAINS, "2026-03-08T05:00:00Z", CLOSED,
         "default", "2026-03-08T05:30:00Z"},
        {"ny spring in the interval after the gap", &NY_CONTAINS,
         "2026-03-08T07:15:00Z", OPEN, "weekly:sun#0", "2026-03-08T08:00:00Z"},
        /* fall back: 00:30 EDT = 04:30Z, 04:00 EST = 09:00Z */
        {"ny fall, second 01:30", &NY_CONTAINS, "2026-11-01T06:30:00Z", OPEN,
         "weekly:sun#0", "2026-11-01T09:00:00Z"},
        {"ny fall closes at 04:00 EST", &NY_CONTAINS, "2026-11-01T09:00:00Z",
         CLOSED, "default", "2026-11-08T05:30:00Z"},
        /* an opening at 02:30 on 03-08 (skipped) opens at 03:00 EDT */
        {"ny open in the gap: not yet", &NY_EDGES, "2026-03-08T06:59:00Z",
         CLOSED, "default", "2026-03-08T07:00:00Z"},
        {"ny open in the gap: at 03:00 EDT", &NY_EDGES, "2026-03-08T07:00:00Z",
         OPEN, "weekly:sun#0", "2026-03-08T09:00:00Z"},
        {"ny open 02:30 on an ordinary sunday", &NY_EDGES,
         "2026-03-15T06:00:00Z", CLOSED, "default", "2026-03-15T06:30:00Z"},
        /* Saturday 23:00-01:30 into 11-01: closes at the first 01:30 (EDT) */
        {"ny close in the repeat: first occurrence", &NY_EDGES,
         "2026-11-01T05:00:00Z", OPEN, "weekly:sat#0", "2026-11-01T05:30:00Z"},
        {"ny close in the repeat: second 01:00 is closed", &NY_EDGES,
         "2026-11-01T06:00:00Z", CLOSED, "default", "2026-11-01T07:30:00Z"},
        /* London, spring: 00:00 GMT = 00:00Z, 03:00 BST = 02:00Z */
        {"london spring in the interval", &LONDON, "2026-03-29T01:30:00Z", OPEN,
         "weekly:sun#0", "2026-03-29T02:00:00Z"},
        {"london spring second interval", &LONDON, "2026-03-29T02:30:00Z",
         CLOSED, "default", "2026-03-29T03:00:00Z"},
        /* fall: 00:00 BST = 10-24 23:00Z, 03:00 GMT = 03:00Z */
        {"london fall, second 01:30", &LONDON, "2026-10-25T01:30:00Z", OPEN,
         "weekly:sun#0", "2026-10-25T03:00:00Z"},
        {"london fall, opened the evening before in UTC", &LONDON,
         "2026-10-24T23:00:00Z", OPEN, "weekly:sun#0", "2026-10-25T03:00:00Z"},
        {"london spring boundary in the gap", &LONDON_GAP,
         "2026-03-29T00:45:00Z", CLOSED, "default", "2026-03-29T01:00:00Z"},
        {"london summer opening", &LONDON_GAP, "2026-04-05T00:00:00Z", CLOSED,
         "default", "2026-04-05T00:30:00Z"},
        /* Kolkata +05:30: 09:00 = 03:30Z, 17:30 = 12:00Z */
        {"kolkata before opening", &KOLKATA, "2026-12-07T03:29:00Z", CLOSED,
         "default", "2026-12-07T03:30:00Z"},
        {"kolkata open", &KOLKATA, "2026-12-07T11:59:00Z", OPEN, "weekly:mon#0",
         "2026-12-07T12:00:00Z"},
        /* Adelaide DST start: 01:00 ACST = 10-03 15:30Z, 05:00 ACDT =
         * 18:30Z */
        {"adelaide spring", &ADELAIDE, "2026-10-03T17:00:00Z", OPEN,
         "weekly:sun#0", "2026-10-03T18:30:00Z"},
        /* DST end: 01:00 ACDT = 04-04 14:30Z, 05:00 ACST = 19:30Z */
        {"adelaide fall, second 02:30", &ADELAIDE, "2026-04-04T17:00:00Z", OPEN,
         "weekly:sun#0", "2026-04-04T19:30:00Z"},
        {"adelaide fall before", &ADELAIDE, "2026-04-04T14:00:00Z", CLOSED,
         "default", "2026-04-04T14:30:00Z"},
        /* Friday 22:00-02:00 */
        {"night: friday 23:00", &NIGHT, "2026-12-11T23:00:00Z", OPEN,
         "weekly:fri#0", "2026-12-12T02:00:00Z"},
        {"night: saturday 01:59 still friday's", &NIGHT, "2026-12-12T01:59:00Z",
         OPEN, "weekly:fri#0", "2026-12-12T02:00:00Z"},
        {"night: closes at 02:00", &NIGHT, "2026-12-12T02:00:00Z", CLOSED,
         "default", "2026-12-18T22:00:00Z"},
        /* the holiday morning after: friday night still ends at 02:00 */
        {"night before a holiday runs to 02:00", &NIGHT, "2026-12-26T01:00:00Z",
         OPEN, "weekly:fri#0", "2026-12-26T02:00:00Z"},
        {"holiday after the night", &NIGHT, "2026-12-26T03:00:00Z", HOLIDAY,
         "override:0", "2026-12-27T00:00:00Z"},
        {"closed after the holiday", &NIGHT, "2026-12-27T00:00:00Z", CLOSED,
         "default", "2027-01-08T22:00:00Z"},
        /* an override on the day an overnight interval starts removes it */
        {"friday closed by an override", &NIGHT, "2027-01-01T23:00:00Z", CLOSED,
         "override:1", "2027-01-08T22:00:00Z"},
        {"saturday morning after a closed friday", &NIGHT,
         "2027-01-02T01:00:00Z", CLOSED, "default", "2027-01-08T22:00:00Z"},
        /* saturday's own hours overlap friday's night: open throughout,
         * the interval that started first named */
        {"overlap: friday's night first", &NIGHT, "2026-12-19T01:30:00Z", OPEN,
         "weekly:fri#0", "2026-12-19T05:00:00Z"},
        {"overlap: then saturday's hours", &NIGHT, "2026-12-19T03:00:00Z", OPEN,
         "override:2#0", "2026-12-19T05:00:00Z"},
        /* 02:10-02:50 lies in the gap on 03-08: it does not happen */
        {"interval inside the gap", &GAP_ONLY, "2026-03-08T06:00:00Z", CLOSED,
         "default", "2026-03-15T06:10:00Z"},
        {"touching intervals: no transition at midnight", &TOUCHING,
         "2026-12-12T23:00:00Z", OPEN, "weekly:sat#0", "2026-12-13T02:00:00Z"},
        {"touching intervals: sunday's", &TOUCHING, "2026-12-13T00:00:00Z",
         OPEN, "weekly:sun#0", "2026-12-13T02:00:00Z"},
        /* fourth Thursday of November, last Monday of May */
        {"thanksgiving 2026-11-26", &US_HOLIDAYS, "2026-11-26T15:00:00Z",
         HOLIDAY, "override:0", "2026-11-27T05:00:00Z"},
        {"third thursday is open", &US_HOLIDAYS, "2026-11-19T15:00:00Z", OPEN,
         "weekly:thu#0", "2026-11-19T22:00:00Z"},
        {"thanksgiving 2027-11-25", &US_HOLIDAYS, "2027-11-25T15:00:00Z",
         HOLIDAY, "override:0", "2027-11-26T05:00:00Z"},
        {"eve of thanksgiving: next is the holiday", &US_HOLIDAYS,
         "2026-11-25T23:00:00Z", CLOSED, "default", "2026-11-26T05:00:00Z"},
        {"memorial day 2026-05-25", &US_HOLIDAYS, "2026-05-25T15:00:00Z",
         HOLIDAY, "override:1", "2026-05-26T04:00:00Z"},
        {"monday before memorial day", &US_HOLIDAYS, "2026-05-18T15:00:00Z",
         OPEN, "weekly:mon#0", "2026-05-18T21:00:00Z"},
        {"memorial day 2027-05-31", &US_HOLIDAYS, "2027-05-31T15:00:00Z",
         HOLIDAY, "override:1", "2027-06-01T04:00:00Z"},
        /* 02-29 applies in 2028, and in 2027 matches no day at all */
        {"feb 29 2028 is a holiday", &LEAP, "2028-02-29T12:00:00Z", HOLIDAY,
         "override:0", "2028-03-01T00:00:00Z"},
        {"feb 28 2027 open", &LEAP, "2027-02-28T12:00:00Z", OPEN,
         "weekly:sun#0", "2027-02-28T17:00:00Z"},
        {"mar 1 2027 open (no feb 29)", &LEAP, "2027-03-01T12:00:00Z", OPEN,
         "weekly:mon#0", "2027-03-01T17:00:00Z"},
        /* partial hours on 12-24 (EST: 09:00 = 14:00Z, 12:00 = 17:00Z) */
        {"12-24 partial hours open", &YEAR_END, "2026-12-24T16:00:00Z", OPEN,
         "override:0#0", "2026-12-24T17:00:00Z"},
        {"12-24 afternoon closed until 01-04", &YEAR_END,
         "2026-12-24T18:00:00Z", CLOSED, "override:0", "2027-01-04T14:00:00Z"},
        {"range across the year end, 12-31", &YEAR_END, "2026-12-31T15:00:00Z",
         CLOSED, "override:1", "2027-01-04T14:00:00Z"},
        {"range across the year end, 01-01", &YEAR_END, "2027-01-01T15:00:00Z",
         CLOSED, "override:1", "2027-01-04T14:00:00Z"},
        {"before the range", &YEAR_END, "2026-12-23T15:00:00Z", OPEN,
         "weekly:wed#0", "2026-12-23T22:00:00Z"},
        /* whole open days in a row, then the holiday */
        {"open around the clock until christmas", &ALL_WEEK,
         "2026-12-20T12:00:00Z", OPEN, "weekly:sun#0", "2026-12-25T00:00:00Z"},
        {"christmas holiday", &ALL_WEEK, "2026-12-25T12:00:00Z", HOLIDAY,
         "override:0", "2026-12-26T00:00:00Z"},
        {"next change 354 days ahead", &ALL_WEEK, "2027-01-05T12:00:00Z", OPEN,
         "weekly:tue#0", "2027-12-25T00:00:00Z"},
        {"full-day override hours", &ALL_WEEK, "2028-02-29T12:00:00Z", OPEN,
         "override:1#0", "2028-12-25T00:00:00Z"},
};

static vox_schedule_t *load(const char *text)
{
	json_error_t jerr;
	vox_error_t err;
	vox_schedule_t *s = NULL;
	json_t *doc = json_loads(text, 0, &jerr);

	cr_assert_not_null(doc, "bad test JSON: %s: %s", jerr.text, text);
	cr_assert_eq(vox_schedule_parse(doc, NULL, &s, &err), 0, "%s",
	             err.message);
	json_decref(doc);
	return s;
}

static int64_t utc(const char *text)
{
	int64_t us;
	cr_assert_eq(vox_rfc3339_parse(text, &us), 0, "bad instant %s", text);
	return us;
}

Test(schedule, state_table)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const state_case_t *c = &cases[i];
		vox_schedule_t *s = load(*c->schedule);
		vox_schedule_state_t st;
		vox_error_t err;
		char next[40] = "none";

		cr_assert_eq(vox_schedule_state(s, utc(c->at), &st, &err), 0,
		             "%s: %s", c->what, err.message);
		if (st.has_next)
			vox_rfc3339_format(st.next_transition_us, next,
			                   sizeof(next));
		cr_expect_eq(st.state, c->state, "%s: state %s, expected %s",
		             c->what, vox_schedule_state_name(st.state),
		             vox_schedule_state_name(c->state));
		cr_expect_str_eq(st.rule, c->rule, "%s: rule %s, expected %s",
		                 c->what, st.rule, c->rule);
		if (c->next) {
			cr_expect(st.has_next, "%s: no next transition",
			          c->what);
			cr_expect_eq(st.next_transition_us, utc(c->next),
			             "%s: next %s, expected %s", c->what, next,
			             c->next);
			cr_expect_neq(st.next_state, st.state, "%s", c->what);
		} else {
			cr_expect(!st.has_next, "%s: next %s, expected none",
			          c->what, next);
		}
		vox_schedule_destroy(s);
	}
}

Test(schedule, never_changes)
{
	/* Monday 09:00-17:00, Tuesday all day */
	vox_schedule_t *open = load(MON_9_17_TUE_ALL);
	vox_schedule_t *closed = load("{\"time_zone\":\"Europe/Paris\"}");
	vox_schedule_t *all =
	        load("{\"time_zone\":\"Asia/Kolkata\",\"weekly\":{"
	             "\"mon\":[{\"open\":\"00:00\",\"close\":\"24:00\"}],"
	             "\"tue\":[{\"open\":\"00:00\",\"close\":\"12:00\"},"
	             "{\"open\":\"12:00\",\"close\":\"00:00\"}],"
	             "\"wed\":[{\"open\":\"00:00\",\"close\":\"24:00\"}],"
	             "\"thu\":[{\"open\":\"00:00\",\"close\":\"24:00\"}],"
	             "\"fri\":[{\"open\":\"00:00\",\"close\":\"24:00\"}],"
	             "\"sat\":[{\"open\":\"00:00\",\"close\":\"24:00\"}],"
	             "\"sun\":[{\"open\":\"00:00\",\"close\":\"24:00\"}]}}");
	vox_schedule_state_t st;
	vox_error_t err;

	cr_assert_eq(vox_schedule_state(closed, utc("2026-06-01T12:00:00Z"),
	                                &st, &err),
	             0);
	cr_expect_eq(st.state, CLOSED);
	cr_expect_str_eq(st.rule, "default");
	cr_expect(!st.has_next);
	cr_assert_eq(
	        vox_schedule_state(all, utc("2026-06-02T12:00:00Z"), &st, &err),
	        0);
	cr_expect_eq(st.state, OPEN);
	cr_expect_str_eq(st.rule, "weekly:tue#1");
	cr_expect(!st.has_next);
	/* Tuesday 00:00-24:00 touches Monday's 17:00 close only */
	cr_assert_eq(vox_schedule_state(open, utc("2026-06-02T12:00:00Z"), &st,
	                                &err),
	             0);
	cr_expect_eq(st.state, OPEN);
	cr_expect_str_eq(st.rule, "weekly:tue#0");
	cr_expect_eq(st.next_transition_us, utc("2026-06-03T04:00:00Z"));
	vox_schedule_destroy(open);
	vox_schedule_destroy(closed);
	vox_schedule_destroy(all);
}

/* Bad documents, each refused with the field named. */
typedef struct bad_case {
	const char *json;
	const char *message; /* expected start of the error message */
} bad_case_t;

#define ZONE    "{\"time_zone\":\"Europe/London\","
#define MON(iv) ZONE "\"weekly\":{\"mon\":[" iv "]}}"
#define OVR(o)  ZONE "\"overrides\":[" o "]}"
static const bad_case_t bad_cases[] = {
        {"{\"time_zone\":\"Mars/Olympus_Mons\"}",
         "time_zone: unknown time zone \"Mars/Olympus_Mons\""},
        {"{\"time_zone\":\"GMT+05:00\"}", "time_zone: unknown time zone"},
        {"{\"time_zone\":\"\"}", "time_zone: is not an IANA time zone"},
        {"{\"time_zone\":\"Europe/ London\"}",
         "time_zone: is not an IANA time zone"},
        {"{\"time_zone\":5}", "time_zone: must be a string"},
        {"{\"weekly\":{}}", "time_zone: is required"},
        {ZONE "\"timezone\":\"UTC\"}", "body: "},
        {MON("{\"open\":\"09:00\",\"close\":\"25:00\"}"),
         "weekly.mon[0].close: \"25:00\" is not a time of day"},
        {MON("{\"open\":\"09:60\",\"close\":\"10:00\"}"),
         "weekly.mon[0].open: \"09:60\" is not a time of day"},
        {MON("{\"open\":\"9:00\",\"close\":\"10:00\"}"),
         "weekly.mon[0].open: must be a time \"HH:MM\""},
        {MON("{\"open\":\"24:00\",\"close\":\"10:00\"}"),
         "weekly.mon[0].open: 24:00 can only close an interval"},
        {MON("{\"open\":\"09:00\"}"),
         "weekly.mon[0].close: must be a time \"HH:MM\""},
        {MON("{\"open\":\"09:00\",\"close\":\"09:00\"}"),
         "weekly.mon[0]: open equals close"},
        {MON("{\"open\":\"09:00\",\"close\":\"12:00\"},"
             "{\"open\":\"11:00\",\"close\":\"13:00\"}"),
         "weekly.mon[1]: overlaps weekly.mon[0]"},
        {ZONE "\"weekly\":{\"mon\":[{\"open\":\"22:00\",\"close\":\"02:00\"}],"
              "\"tue\":[{\"open\":\"01:00\",\"close\":\"05:00\"}]}}",
         "weekly.tue[0]: overlaps weekly.mon[0]"},
        {ZONE "\"weekly\":{\"mon\":[{\"open\":\"00:30\",\"close\":\"05:00\"}],"
              "\"sun\":[{\"open\":\"23:00\",\"close\":\"01:00\"}]}}",
         "weekly.sun[0]: overlaps weekly.mon[0]"},
        {ZONE "\"weekly\":{\"funday\":[]}}", "weekly.funday: unknown day"},
        {ZONE "\"weekly\":{\"mon\":{}}}",
         "weekly.mon: must be an array of intervals"},
        {OVR("{\"date\":\"2027-02-29\"}"),
         "overrides[0].date: \"2027-02-29\" is not a date"},
        {OVR("{\"date\":\"2026-13-01\"}"),
         "overrides[0].date: \"2026-13-01\" is not a date"},
        {OVR("{\"date\":\"26-12-01\"}"),
         "overrides[0].date: must be a date \"YYYY-MM-DD\""},
        {OVR("{\"from\":\"2026-12-24\",\"to\":\"2026-12-01\"}"),
         "overrides[0].to: is before from"},
        {OVR("{\"from\":\"2026-12-24\"}"), "overrides[0].to: required"},
        {OVR("{\"date\":\"2026-12-24\",\"recurring\":{\"month\":1,\"day\":1}}"),
         "overrides[0]: needs exactly one of"},
        {OVR("{}"), "overrides[0]: needs exactly one of"},
        {OVR("{\"date\":\"2026-12-24\",\"closed\":true}"), "overrides[0]: "},
        {OVR("{\"recurring\":{\"month\":11,\"weekday\":\"thursday\","
             "\"n\":4}}"),
         "overrides[0].recurring.weekday: must be a weekday"},
        {OVR("{\"recurring\":{\"month\":11,\"weekday\":\"thu\",\"n\":6}}"),
         "overrides[0].recurring.n: must be 1..5, or -1"},
        {OVR("{\"recurring\":{\"month\":11,\"weekday\":\"thu\",\"n\":0}}"),
         "overrides[0].recurring.n: must be 1..5, or -1"},
        {OVR("{\"recurring\":{\"month\":11,\"weekday\":\"thu\",\"n\":-2}}"),
         "overrides[0].recurring.n: must be 1..5, or -1"},
        {OVR("{\"recurring\":{\"month\":13,\"day\":1}}"),
         "overrides[0].recurring.month: must be an integer 1..12"},
        {OVR("{\"recurring\":{\"month\":2,\"day\":30}}"),
         "overrides[0].recurring.day: must be an integer 1..29"},
        {OVR("{\"recurring\":{\"month\":2,\"day\":3,\"n\":1}}"),
         "overrides[0].recurring: either day, or weekday and n"},
        {OVR("{\"date\":\"2026-12-24\",\"holiday\":\"yes\"}"),
         "overrides[0].holiday: must be true or false"},
        {OVR("{\"date\":\"2026-12-24\"},{\"date\":\"2026-12-24\",\"hours\":"
             "[{\"open\":\"09:00\",\"close\":\"12:00\"},"
             "{\"open\":\"10:00\",\"close\":\"11:00\"}]}"),
         "overrides[1].hours[1]: overlaps overrides[1].hours[0]"},
        {OVR("{\"date\":\"2026-12-24\",\"hours\":[{\"open\":\"09:00\","
             "\"close\":\"24:30\"}]}"),
         "overrides[0].hours[0].close: \"24:30\" is not a time of day"},
        {ZONE "\"overrides\":{}}", "overrides: must be an array"},
};

Test(schedule, bad_inputs)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const bad_case_t *c = &bad_cases[i];
		json_error_t jerr;
		vox_error_t err;
		vox_schedule_t *s = (vox_schedule_t *)1;
		json_t *doc = json_loads(c->json, 0, &jerr);

		cr_assert_not_null(doc, "bad test JSON: %s", c->json);
		cr_expect_eq(vox_schedule_parse(doc, NULL, &s, &err),
		             VOX_ERR_INVALID, "accepted: %s", c->json);
		cr_expect_null(s);
		cr_expect_eq(
		        strncmp(err.message, c->message, strlen(c->message)), 0,
		        "message \"%s\", expected \"%s...\"", err.message,
		        c->message);
		json_decref(doc);
	}
}

Test(schedule, fifty_overrides_at_most)
{
	json_t *doc = json_pack("{s:s, s:[]}", "time_zone", "Europe/London",
	                        "overrides");
	json_t *list = json_object_get(doc, "overrides");
	vox_schedule_t *s = NULL;
	vox_error_t err;

	for (int i = 0; i < 50; i++)
		json_array_append_new(
		        list, json_pack("{s:{s:i, s:i}}", "recurring", "month",
		                        1 + i % 12, "day", 1 + i % 28));
	cr_assert_eq(vox_schedule_parse(doc, NULL, &s, &err), 0, "%s",
	             err.message);
	vox_schedule_destroy(s);
	json_array_append_new(list, json_pack("{s:s}", "date", "2026-12-24"));
	cr_assert_eq(vox_schedule_parse(doc, NULL, &s, &err), VOX_ERR_INVALID);
	cr_expect_str_eq(err.message,
	                 "overrides: at most 50 overrides (got 51)");
	json_decref(doc);
}

Test(schedule, default_zone_and_alias)
{
	json_t *doc = json_pack("{s:{s:[{s:s, s:s}]}}", "weekly", "mon", "open",
	                        "09:00", "close", "17:00");
	vox_schedule_t *s = NULL;
	vox_schedule_state_t st;
	vox_error_t err;

	cr_assert_eq(vox_schedule_parse(doc, "US/Eastern", &s, &err), 0, "%s",
	             err.message);
	/* an alias is kept as given, and evaluated as its zone */
	cr_expect_str_eq(vox_schedule_zone(s), "US/Eastern");
	cr_assert_eq(
	        vox_schedule_state(s, utc("2026-12-07T14:00:00Z"), &st, &err),
	        0);
	cr_expect_eq(st.state, OPEN); /* 09:00 EST */
	cr_expect_eq(st.next_transition_us, utc("2026-12-07T22:00:00Z"));
	vox_schedule_destroy(s);
	cr_expect_eq(vox_schedule_parse(doc, "Nowhere/Land", &s, &err),
	             VOX_ERR_INVALID);
	json_decref(doc);
}

/* Collects transitions as "local state" strings. */
typedef struct collected {
	int n;
	char lines[16][160];
	int64_t at[16];
} collected_t;

static int collect(const vox_schedule_transition_t *t, void *arg)
{
	collected_t *c = arg;
	if (c->n >= 16)
		return 1;
	snprintf(c->lines[c->n], sizeof(c->lines[0]), "%s %s %s", t->local,
	         vox_schedule_state_name(t->state), t->rule);
	c->at[c->n++] = t->at_us;
	return 0;
}

/* Transition listings: local times carry the offset in force. */
typedef struct listing_case {
	const char *what;
	const char **schedule;
	const char *from;
	int days;
	const char *want[8]; /* NULL-terminated */
} listing_case_t;

static const listing_case_t listings[] = {
        {"new york across spring forward",
         &NY_SAT_SUN_MON,
         "2026-03-07T00:00:00Z",
         3,
         {"2026-03-07T09:00:00-05:00 open weekly:sat#0",
          "2026-03-07T17:00:00-05:00 closed default",
          "2026-03-08T09:00:00-04:00 open weekly:sun#0",
          "2026-03-08T17:00:00-04:00 closed default",
          "2026-03-09T09:00:00-04:00 open weekly:mon#0",
          "2026-03-09T17:00:00-04:00 closed default", NULL}},
        {"new york: an opening in the gap",
         &NY_EDGES,
         "2026-03-08T00:00:00Z",
         1,
         {"2026-03-07T23:00:00-05:00 open weekly:sat#0",
          "2026-03-08T01:30:00-05:00 closed default",
          "2026-03-08T03:00:00-04:00 open weekly:sun#0",
          "2026-03-08T05:00:00-04:00 closed default", NULL}},
        {"new york: a closing in the repeat",
         &NY_EDGES,
         "2026-10-31T12:00:00Z",
         1,
         {"2026-10-31T23:00:00-04:00 open weekly:sat#0",
          "2026-11-01T01:30:00-04:00 closed default",
          "2026-11-01T02:30:00-05:00 open weekly:sun#0",
          "2026-11-01T05:00:00-05:00 closed default", NULL}},
        {"london across fall back",
         &LONDON,
         "2026-10-23T12:00:00Z",
         2,
         {"2026-10-24T01:30:00+01:00 open weekly:sat#0",
          "2026-10-24T02:00:00+01:00 closed default",
          "2026-10-25T00:00:00+01:00 open weekly:sun#0",
          "2026-10-25T03:00:00+00:00 closed default",
          "2026-10-25T04:00:00+00:00 open weekly:sun#1",
          "2026-10-25T05:00:00+00:00 closed default", NULL}},
        {"adelaide across spring forward",
         &ADELAIDE,
         "2026-10-03T00:00:00Z",
         1,
         {"2026-10-04T01:00:00+09:30 open weekly:sun#0",
          "2026-10-04T05:00:00+10:30 closed default", NULL}},
        {"a holiday after the night before",
         &NIGHT,
         "2026-12-25T12:00:00Z",
         3,
         {"2026-12-25T22:00:00+00:00 open weekly:fri#0",
          "2026-12-26T02:00:00+00:00 holiday override:0",
          "2026-12-27T00:00:00+00:00 closed default", NULL}},
};

Test(schedule, transitions_table)
{
	for (size_t i = 0; i < sizeof(listings) / sizeof(listings[0]); i++) {
		const listing_case_t *l = &listings[i];
		vox_schedule_t *s = load(*l->schedule);
		collected_t c = {0};
		vox_error_t err;
		int n = 0;

		cr_assert_eq(vox_schedule_transitions(s, utc(l->from), l->days,
		                                      collect, &c, &err),
		             0, "%s: %s", l->what, err.message);
		while (l->want[n])
			n++;
		cr_expect_eq(c.n, n, "%s: %d transitions, expected %d", l->what,
		             c.n, n);
		for (int k = 0; k < n && k < c.n; k++)
			cr_expect_str_eq(c.lines[k], l->want[k],
			                 "%s: \"%s\", expected \"%s\"", l->what,
			                 c.lines[k], l->want[k]);
		vox_schedule_destroy(s);
	}
}

/* The instants behind the local times: 09:00 EDT is 13:00Z. */
Test(schedule, transitions_instants)
{
	vox_schedule_t *s = load(NY_SAT_SUN_MON);
	collected_t c = {0};
	vox_error_t err;

	cr_assert_eq(vox_schedule_transitions(s, utc("2026-03-07T00:00:00Z"), 3,
	                                      collect, &c, &err),
	             0, "%s", err.message);
	cr_assert_eq(c.n, 6);
	cr_expect_eq(c.at[0], utc("2026-03-07T14:00:00Z"));
	cr_expect_eq(c.at[2], utc("2026-03-08T13:00:00Z"));
	cr_expect_eq(c.at[5], utc("2026-03-09T21:00:00Z"));
	vox_schedule_destroy(s);
}

Test(schedule, transitions_stop_and_range)
{
	vox_schedule_t *s = load(NIGHT);
	collected_t c = {0};
	vox_error_t err;

	c.n = 16; /* full: collect stops the walk with 1 */
	cr_expect_eq(vox_schedule_transitions(s, utc("2026-12-25T12:00:00Z"), 3,
	                                      collect, &c, &err),
	             1);
	cr_expect_eq(vox_schedule_transitions(s, 0, 0, collect, &c, &err),
	             VOX_ERR_INVALID);
	cr_expect_eq(vox_schedule_transitions(s, 0, 401, collect, &c, &err),
	             VOX_ERR_INVALID);
	vox_schedule_destroy(s);
}

Test(schedule, instants_out_of_range)
{
	vox_schedule_t *s = load(NIGHT);
	vox_schedule_state_t st;
	vox_error_t err;
	collected_t c = {0};

	cr_expect_eq(vox_schedule_state(s, -1, &st, &err), VOX_ERR_INVALID);
	cr_expect_eq(vox_schedule_state(s, INT64_MAX, &st, &err),
	             VOX_ERR_INVALID);
	cr_expect_str_eq(err.message, "at: outside 1970..2199");
	cr_expect_eq(
	        vox_schedule_state(s, utc("2199-12-31T23:59:59Z"), &st, &err),
	        0, "%s", err.message);
	cr_expect_eq(
	        vox_schedule_transitions(s, INT64_MIN, 5, collect, &c, &err),
	        VOX_ERR_INVALID);
	vox_schedule_destroy(s);
}

/* One schedule used by two threads at once gives what one thread gets. */
typedef struct shared_run {
	vox_schedule_t *s;
	int64_t t0;
	int bad;
} shared_run_t;

#define SHARED_STEPS 3000
static vox_schedule_state_t shared_expected[SHARED_STEPS];

static void *shared_worker(void *arg)
{
	shared_run_t *r = arg;
	for (int i = 0; i < SHARED_STEPS; i++) {
		vox_schedule_state_t st;
		if (vox_schedule_state(r->s, r->t0 + (int64_t)i * 613000000,
		                       &st, NULL) != 0 ||
		    memcmp(&st, &shared_expected[i], sizeof(st)) != 0)
			r->bad++;
	}
	return NULL;
}

Test(schedule, shared_between_threads)
{
	vox_schedule_t *s = load(US_HOLIDAYS);
	shared_run_t runs[2] = {{s, utc("2026-11-01T00:00:00Z"), 0},
	                        {s, utc("2026-11-01T00:00:00Z"), 0}};
	pthread_t threads[2];

	for (int i = 0; i < SHARED_STEPS; i++)
		cr_assert_eq(vox_schedule_state(
		                     s, runs[0].t0 + (int64_t)i * 613000000,
		                     &shared_expected[i], NULL),
		             0);
	for (int i = 0; i < 2; i++)
		pthread_create(&threads[i], NULL, shared_worker, &runs[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	cr_expect_eq(runs[0].bad + runs[1].bad, 0);
	vox_schedule_destroy(s);
}

/* The routing budget is 1 ms a decision; this is microseconds. */
Test(schedule, evaluation_is_fast)
{
	vox_schedule_t *s = load(US_HOLIDAYS);
	vox_schedule_state_t st;
	int64_t t0 = utc("2026-11-20T12:00:00Z"), start = vox_mono_us();
	int n = 20000;

	for (int i = 0; i < n; i++)
		cr_assert_eq(vox_schedule_state(s, t0 + (int64_t)i * 61000000,
		                                &st, NULL),
		             0);
	double avg = (double)(vox_mono_us() - start) / n;
	cr_log_info("vox_schedule_state: %.2f us per call", avg);
	fprintf(stderr, "schedule: vox_schedule_state %.2f us per call\n", avg);
	cr_expect_lt(avg, 1000.0);
	vox_schedule_destroy(s);
}
