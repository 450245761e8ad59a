/*
 * Tests of vox_metrics: the exact text exposition output, registration
 * rules, refused arguments, and exact totals under concurrent updates.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_metrics.h"

static vox_metrics_t *reg;

static void setup(void)
{
	reg = vox_metrics_new();
	cr_assert_not_null(reg);
}

static void teardown(void)
{
	vox_metrics_destroy(reg);
}

/* Renders and compares the whole text; checks *len too. */
static void assert_render(const char *want)
{
	size_t len = 12345;
	char *text = vox_metrics_render(reg, &len);

	cr_assert_not_null(text);
	cr_assert_str_eq(text, want);
	cr_assert_eq(len, strlen(text));
	free(text);
}

TestSuite(metrics, .init = setup, .fini = teardown);

Test(metrics, empty_registry)
{
	assert_render("");
}

Test(metrics, counters_share_help_and_type)
{
	vox_counter_t *ok = vox_metrics_counter(
	        reg, "vox_requests_total", "Requests served.",
	        "route=\"/v1/canary\",code=\"202\"");
	vox_counter_t *bad = vox_metrics_counter(
	        reg, "vox_requests_total", "other help is ignored",
	        "route=\"/v1/canary\",code=\"400\"");
	vox_counter_t *plain =
	        vox_metrics_counter(reg, "vox_started_total", "Starts.", NULL);

	cr_assert_not_null(ok);
	cr_assert_not_null(bad);
	cr_assert_neq(ok, bad);
	vox_counter_inc(ok);
	vox_counter_add(ok, 41);
	vox_counter_inc(bad);
	vox_counter_inc(plain);
	assert_render("# HELP vox_requests_total Requests served.\n"
	              "# TYPE vox_requests_total counter\n"
	              "vox_requests_total{route=\"/v1/canary\",code=\"202\"} "
	              "42\n"
	              "vox_requests_total{route=\"/v1/canary\",code=\"400\"} "
	              "1\n"
	              "# HELP vox_started_total Starts.\n"
	              "# TYPE vox_started_total counter\n"
	              "vox_started_total 1\n");
}

Test(metrics, same_name_and_labels_is_same_series)
{
	vox_counter_t *a = vox_metrics_counter(reg, "c", "h", "k=\"v\"");
	vox_counter_t *b = vox_metrics_counter(reg, "c", "h", "k=\"v\"");
	vox_gauge_t *g1 = vox_metrics_gauge(reg, "g", "h", NULL);
	vox_gauge_t *g2 = vox_metrics_gauge(reg, "g", "h", "");

	cr_assert_eq(a, b);
	cr_assert_eq(g1, g2, "NULL and \"\" labels are the same series");
}

Test(metrics, name_taken_by_another_type)
{
	cr_assert_not_null(vox_metrics_counter(reg, "m", "h", NULL));
	cr_assert_null(vox_metrics_gauge(reg, "m", "h", NULL));
	cr_assert_null(
	        vox_metrics_histogram(reg, "m", "h", "a=\"b\"", NULL, 0));
	assert_render("# HELP m h\n# TYPE m counter\nm 0\n");
}

Test(metrics, gauge_values)
{
	vox_gauge_t *gauge = vox_metrics_gauge(reg, "vox_lag", "Lag.", NULL);

	vox_gauge_set(gauge, 0.1);
	assert_render("# HELP vox_lag Lag.\n# TYPE vox_lag gauge\n"
	              "vox_lag 0.1\n");
	vox_gauge_add(gauge, 0.2);
	/* shortest text that reads back exactly */
	assert_render("# HELP vox_lag Lag.\n# TYPE vox_lag gauge\n"
	              "vox_lag 0.30000000000000004\n");
	vox_gauge_set(gauge, -3);
	vox_gauge_add(gauge, -1.5);
	assert_render("# HELP vox_lag Lag.\n# TYPE vox_lag gauge\n"
	              "vox_lag -4.5\n");
	vox_gauge_set(gauge, 1e21);
	assert_render("# HELP vox_lag Lag.\n# TYPE vox_lag gauge\n"
	              "vox_lag 1e+21\n");
	vox_gauge_set(gauge, INFINITY);
	assert_render("# HELP vox_lag Lag.\n# TYPE vox_lag gauge\n"
	              "vox_lag +Inf\n");
	vox_gauge_set(gauge, -INFINITY);
	assert_render("# HELP vox_lag Lag.\n# TYPE vox_lag gauge\n"
	              "vox_lag -Inf\n");
	vox_gauge_set(gauge, NAN);
	assert_render("# HELP vox_lag Lag.\n# TYPE vox_lag gauge\n"
	              "vox_lag NaN\n");
}

Test(metrics, histogram_without_labels)
{
	static const double bounds[] = {0.1, 1, 2.5};
	vox_histogram_t *hist = vox_metrics_histogram(
	        reg, "vox_latency_seconds", "Latency.", NULL, bounds, 3);

	cr_assert_not_null(hist);
	vox_histogram_observe(hist, 0.05);
	vox_histogram_observe(hist, 0.1); /* le is inclusive */
	vox_histogram_observe(hist, 2);
	vox_histogram_observe(hist, 7);
	vox_histogram_observe(hist, NAN); /* dropped */
	assert_render("# HELP vox_latency_seconds Latency.\n"
	              "# TYPE vox_latency_seconds histogram\n"
	              "vox_latency_seconds_bucket{le=\"0.1\"} 2\n"
	              "vox_latency_seconds_bucket{le=\"1\"} 2\n"
	              "vox_latency_seconds_bucket{le=\"2.5\"} 3\n"
	              "vox_latency_seconds_bucket{le=\"+Inf\"} 4\n"
	              "vox_latency_seconds_sum 9.15\n"
	              "vox_latency_seconds_count 4\n");
}

Test(metrics, histogram_labels_merge_with_le)
{
	static const double bounds[] = {0.5};
	vox_histogram_t *hist = vox_metrics_histogram(
	        reg, "h", "H.", "route=\"/a\",method=\"POST\"", bounds, 1);
	vox_histogram_t *other = vox_metrics_histogram(
	        reg, "h", "H.", "route=\"/b\",method=\"GET\"", bounds, 1);

	vox_histogram_observe(hist, 1);
	vox_histogram_observe(other, 0.25);
	vox_histogram_observe(other, -1);
	assert_render("# HELP h H.\n# TYPE h histogram\n"
	              "h_bucket{route=\"/a\",method=\"POST\",le=\"0.5\"} 0\n"
	              "h_bucket{route=\"/a\",method=\"POST\",le=\"+Inf\"} 1\n"
	              "h_sum{route=\"/a\",method=\"POST\"} 1\n"
	              "h_count{route=\"/a\",method=\"POST\"} 1\n"
	              "h_bucket{route=\"/b\",method=\"GET\",le=\"0.5\"} 2\n"
	              "h_bucket{route=\"/b\",method=\"GET\",le=\"+Inf\"} 2\n"
	              "h_sum{route=\"/b\",method=\"GET\"} -0.75\n"
	              "h_count{route=\"/b\",method=\"GET\"} 2\n");
}

Test(metrics, histogram_default_buckets)
{
	vox_histogram_t *hist =
	        vox_metrics_histogram(reg, "d", "D.", NULL, NULL, 0);
	char *text;

	vox_histogram_observe(hist, 0.0005);
	vox_histogram_observe(hist, 11);
	text = vox_metrics_render(reg, NULL);
	cr_assert_not_null(text);
	cr_assert_not_null(strstr(text, "d_bucket{le=\"0.0005\"} 1\n"), "%s",
	                   text);
	cr_assert_not_null(strstr(text, "d_bucket{le=\"10\"} 1\n"), "%s", text);
	cr_assert_not_null(strstr(text, "d_bucket{le=\"+Inf\"} 2\n"), "%s",
	                   text);
	cr_assert_not_null(strstr(text, "d_sum 11.0005\nd_count 2\n"), "%s",
	                   text);
	free(text);
}

Test(metrics, help_is_escaped)
{
	vox_metrics_counter(reg, "e", "back\\slash\nnew line \"quoted\"", NULL);
	assert_render("# HELP e back\\\\slash\\nnew line \"quoted\"\n"
	              "# TYPE e counter\ne 0\n");
}

Test(metrics, help_may_be_null)
{
	vox_metrics_gauge(reg, "n", NULL, NULL);
	assert_render("# HELP n \n# TYPE n gauge\nn 0\n");
}

Test(metrics, escaped_label_values_are_kept)
{
	cr_assert_not_null(vox_metrics_counter(
	        reg, "l", "L.", "path=\"a\\\"b\\\\c\\nd\",x=\"\""));
	assert_render("# HELP l L.\n# TYPE l counter\n"
	              "l{path=\"a\\\"b\\\\c\\nd\",x=\"\"} 0\n");
}

Test(metrics, bad_names_are_refused)
{
	static const char *const names[] = {"",    "1abc", "a-b",
	                                    "a b", "a{b}", "é"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		cr_assert_null(vox_metrics_counter(reg, names[i], "h", NULL),
		               "accepted name \"%s\"", names[i]);
	cr_assert_null(vox_metrics_counter(reg, NULL, "h", NULL));
	cr_assert_not_null(vox_metrics_counter(reg, "ns:sub_total", "h", NULL));
	cr_assert_null(vox_metrics_counter(NULL, "x", "h", NULL));
}

Test(metrics, bad_labels_are_refused)
{
	static const char *const labels[] = {
	        "route",          /* no value */
	        "route=/a",       /* unquoted */
	        "route=\"/a",     /* unterminated */
	        "route=\"/a\",",  /* trailing comma */
	        ",route=\"/a\"",  /* leading comma */
	        "=\"/a\"",        /* no name */
	        "1x=\"/a\"",      /* bad name */
	        "a:b=\"/a\"",     /* colon not allowed in label names */
	        "r=\"a\nb\"",     /* raw newline */
	        "r=\"a\\tb\"",    /* unknown escape */
	        "r=\"a\" ",       /* trailing blank */
	        "r=\"a\"s=\"b\"", /* missing comma */
	};

	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		cr_assert_null(vox_metrics_gauge(reg, "g", "h", labels[i]),
		               "accepted labels %s", labels[i]);
	cr_assert_null(
	        vox_metrics_histogram(reg, "h", "h", "le=\"1\"", NULL, 0),
	        "le is the histogram's own label");
	cr_assert_not_null(vox_metrics_counter(reg, "c", "h", "le=\"1\""),
	                   "le is fine on a counter");
	assert_render("# HELP c h\n# TYPE c counter\nc{le=\"1\"} 0\n");
}

Test(metrics, bad_bounds_are_refused)
{
	static const double unsorted[] = {1, 0.5};
	static const double repeated[] = {1, 1};
	const double with_nan[] = {1, NAN};
	const double with_inf[] = {1, INFINITY};

	cr_assert_null(vox_metrics_histogram(reg, "h", "h", NULL, unsorted, 2));
	cr_assert_null(vox_metrics_histogram(reg, "h", "h", NULL, repeated, 2));
	cr_assert_null(vox_metrics_histogram(reg, "h", "h", NULL, with_nan, 2));
	cr_assert_null(vox_metrics_histogram(reg, "h", "h", NULL, with_inf, 2));
	assert_render("");
}

Test(metrics, updates_on_null_are_ignored)
{
	vox_counter_inc(NULL);
	vox_counter_add(NULL, 3);
	vox_gauge_set(NULL, 1);
	vox_gauge_add(NULL, 1);
	vox_histogram_observe(NULL, 1);
	vox_metrics_destroy(NULL);
	cr_assert_null(vox_metrics_render(NULL, NULL));
}

#define THREADS 4
#define ROUNDS  50000

struct workload {
	vox_counter_t *counter;
	vox_gauge_t *gauge;
	vox_histogram_t *hist;
};

static void *hammer(void *arg)
{
	struct workload *work = arg;

	for (int i = 0; i < ROUNDS; i++) {
		vox_counter_inc(work->counter);
		vox_gauge_add(work->gauge, 0.5);
		vox_histogram_observe(work->hist, (i % 2) ? 0.25 : 2);
	}
	return NULL;
}

Test(metrics, concurrent_updates_are_exact)
{
	static const double bounds[] = {1};
	struct workload work = {
	        vox_metrics_counter(reg, "c", "C.", NULL),
	        vox_metrics_gauge(reg, "g", "G.", NULL),
	        vox_metrics_histogram(reg, "h", "H.", NULL, bounds, 1),
	};
	pthread_t threads[THREADS];
	char want[512];

	for (int t = 0; t < THREADS; t++)
		cr_assert_eq(pthread_create(&threads[t], NULL, hammer, &work),
		             0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(threads[t], NULL);
	/* halves and quarters add up exactly in binary floating point */
	snprintf(want, sizeof(want),
	         "# HELP c C.\n# TYPE c counter\nc %d\n"
	         "# HELP g G.\n# TYPE g gauge\ng %d\n"
	         "# HELP h H.\n# TYPE h histogram\n"
	         "h_bucket{le=\"1\"} %d\nh_bucket{le=\"+Inf\"} %d\n"
	         "h_sum %d\nh_count %d\n",
	         THREADS * ROUNDS, THREADS * ROUNDS / 2, THREADS * ROUNDS / 2,
	         THREADS * ROUNDS, THREADS * (ROUNDS / 2) * 9 / 4,
	         THREADS * ROUNDS);
	assert_render(want);
}
