/*
 * Tests of vox_uuid: layout of v7 ids, strict ordering within a thread and
 * across threads, and the text checks.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vox_uuid.h"

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

Test(uuid, layout)
{
	char id[VOX_UUID_STRLEN];
	uint64_t before = wall_ms(), after;

	vox_uuid7(id);
	after = wall_ms();
	cr_assert_eq(strlen(id), 36);
	cr_assert(vox_uuid_valid(id), "%s", id);
	cr_assert_eq(id[14], '7', "version nibble: %s", id);
	cr_assert(strchr("89ab", id[19]) != NULL, "variant: %s", id);
	for (const char *p = id; *p; p++)
		cr_assert(!(*p >= 'A' && *p <= 'F'), "lowercase: %s", id);
	/* the timestamp may only run ahead of the clock, never behind */
	cr_assert_geq(vox_uuid7_time_ms(id), before);
	cr_assert_leq(vox_uuid7_time_ms(id), after + 1);
}

Test(uuid, strictly_increasing_beyond_counter_space)
{
	/* 20000 ids are more than the 12-bit counter holds in one ms, so
	 * this also goes through the timestamp advancing on overflow */
	enum { N = 20000 };
	char prev[VOX_UUID_STRLEN], cur[VOX_UUID_STRLEN];
	uint64_t start = wall_ms();

	vox_uuid7(prev);
	for (int i = 0; i < N; i++) {
		vox_uuid7(cur);
		cr_assert_gt(strcmp(cur, prev), 0, "%s after %s", cur, prev);
		memcpy(prev, cur, sizeof(cur));
	}
	/* running ahead is bounded: at least 2048 ids fit in each ms */
	cr_assert_leq(vox_uuid7_time_ms(prev), wall_ms() + N / 2048 + 1);
	cr_assert_geq(vox_uuid7_time_ms(prev), start);
}

Test(uuid, random_part_differs)
{
	char a[VOX_UUID_STRLEN], b[VOX_UUID_STRLEN];

	vox_uuid7(a);
	vox_uuid7(b);
	/* 62 random bits: equal tails would mean no randomness */
	cr_assert_str_neq(a + 19, b + 19);
}

#define THREADS    4
#define PER_THREAD 5000

static char thread_ids[THREADS][PER_THREAD][VOX_UUID_STRLEN];

static void *make_ids(void *arg)
{
	char(*ids)[VOX_UUID_STRLEN] = arg;

	for (int i = 0; i < PER_THREAD; i++)
		vox_uuid7(ids[i]);
	return NULL;
}

static int compare_ids(const void *a, const void *b)
{
	return strcmp(a, b);
}

Test(uuid, unique_across_threads)
{
	pthread_t threads[THREADS];
	char(*all)[VOX_UUID_STRLEN] = &thread_ids[0][0];

	for (int t = 0; t < THREADS; t++)
		cr_assert_eq(pthread_create(&threads[t], NULL, make_ids,
		                            thread_ids[t]),
		             0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(threads[t], NULL);
	for (int t = 0; t < THREADS; t++)
		for (int i = 1; i < PER_THREAD; i++)
			cr_assert_gt(
			        strcmp(thread_ids[t][i], thread_ids[t][i - 1]),
			        0, "per thread order");
	qsort(all, THREADS * PER_THREAD, VOX_UUID_STRLEN, compare_ids);
	for (int i = 1; i < THREADS * PER_THREAD; i++)
		cr_assert_neq(strcmp(all[i], all[i - 1]), 0, "duplicate %s",
		              all[i]);
}

Test(uuid, valid_accepts_canonical_forms)
{
	cr_assert(vox_uuid_valid("01936f0e-7c1a-7b3e-9d2f-3a4b5c6d7e8f"));
	cr_assert(vox_uuid_valid("00000000-0000-0000-0000-000000000000"));
	cr_assert(vox_uuid_valid("6BA7B810-9DAD-11D1-80B4-00C04FD430C8"),
	          "uppercase is valid input");
	cr_assert(vox_uuid_valid("6ba7b810-9dad-41d1-80b4-00c04fd430c8"));
}

Test(uuid, valid_rejects_bad_text)
{
	static const char *const bad[] = {
	        "",
	        "01936f0e-7c1a-7b3e-9d2f-3a4b5c6d7e8",   /* short */
	        "01936f0e-7c1a-7b3e-9d2f-3a4b5c6d7e8f0", /* long */
	        "01936f0e7c1a-7b3e-9d2f-3a4b5c6d7e8f0",  /* dash missing */
	        "01936f0e-7c1a-7b3e-9d2f_3a4b5c6d7e8f",  /* wrong separator */
	        "01936f0g-7c1a-7b3e-9d2f-3a4b5c6d7e8f",  /* not hex */
	        "{01936f0e-7c1a-7b3e-9d2f-3a4b5c6d7e8}", /* braces */
	        " 1936f0e-7c1a-7b3e-9d2f-3a4b5c6d7e8f",  /* blank */
	        "01936f0e-7c1a-7b3e-9d2f-3a4b5c6d7e8\n",
	        "01936f0e7c1a7b3e9d2f3a4b5c6d7e8f", /* no dashes */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(vox_uuid_valid(bad[i]), "accepted \"%s\"",
		              bad[i]);
	cr_assert_not(vox_uuid_valid(NULL));
}

Test(uuid, time_ms_of_v7_only)
{
	/* 0x01936f0e7c1a ms */
	cr_assert_eq(vox_uuid7_time_ms("01936f0e-7c1a-7b3e-9d2f-3a4b5c6d7e8f"),
	             0x01936f0e7c1aull);
	cr_assert_eq(vox_uuid7_time_ms("ffffffff-ffff-7fff-bfff-ffffffffffff"),
	             0xffffffffffffull);
	cr_assert_eq(vox_uuid7_time_ms("01936f0e-7c1a-4b3e-9d2f-3a4b5c6d7e8f"),
	             0, "v4");
	cr_assert_eq(vox_uuid7_time_ms("01936f0e-7c1a-7b3e-cd2f-3a4b5c6d7e8f"),
	             0, "wrong variant");
	cr_assert_eq(vox_uuid7_time_ms("not a uuid"), 0);
	cr_assert_eq(vox_uuid7_time_ms(NULL), 0);
}

/* Counter bits (rand_a) of an id. */
static unsigned counter_of(const char *id)
{
	return (unsigned)strtoul((char[]){id[15], id[16], id[17], '\0'}, NULL,
	                         16);
}

Test(uuid, clock_stepping_back_keeps_order)
{
	/* far in the future so the real clock state does not interfere;
	 * each test runs in its own process */
	const uint64_t t0 = 0x0f0000000000ull;
	char a[VOX_UUID_STRLEN], b[VOX_UUID_STRLEN], c[VOX_UUID_STRLEN];

	vox_uuid7_at(a, t0);
	cr_assert_eq(vox_uuid7_time_ms(a), t0);
	cr_assert_lt(counter_of(a), 0x800u, "counter starts with headroom");
	vox_uuid7_at(b, t0 - 5000); /* clock stepped back 5 s */
	cr_assert_gt(strcmp(b, a), 0, "%s after %s", b, a);
	cr_assert_eq(vox_uuid7_time_ms(b), t0, "timestamp held");
	cr_assert_eq(counter_of(b), counter_of(a) + 1);
	vox_uuid7_at(c, t0 + 1); /* clock catches up: a fresh ms */
	cr_assert_eq(vox_uuid7_time_ms(c), t0 + 1);
	cr_assert_gt(strcmp(c, b), 0);
}

Test(uuid, counter_overflow_advances_timestamp)
{
	const uint64_t t0 = 0x0f0000000000ull;
	char prev[VOX_UUID_STRLEN], cur[VOX_UUID_STRLEN];
	bool advanced = false;

	vox_uuid7_at(prev, t0);
	/* 4096 more ids in the same ms cannot all fit in 12 bits */
	for (int i = 0; i < 4096; i++) {
		vox_uuid7_at(cur, t0);
		cr_assert_gt(strcmp(cur, prev), 0, "%s after %s", cur, prev);
		if (vox_uuid7_time_ms(cur) == t0 + 1)
			advanced = true;
		cr_assert_leq(vox_uuid7_time_ms(cur), t0 + 1);
		memcpy(prev, cur, sizeof(cur));
	}
	cr_assert(advanced, "timestamp field never ran ahead");
}
