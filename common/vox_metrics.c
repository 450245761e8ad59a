/*
 * vox_metrics: Prometheus registry and text exposition format 0.0.4.
 *
 * Families (one per metric name) and their series are kept in registration
 * order so the output is stable. Updates never take the lock: counters are
 * atomic integers, doubles are stored as their bit patterns in atomic
 * 64-bit words and changed with compare-and-swap.
 */
#include "vox_metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
} metric_type_t;

static const char *const type_names[] = {"counter", "gauge", "histogram"};

struct vox_counter {
	_Atomic uint64_t value;
};

struct vox_gauge {
	_Atomic uint64_t bits;
};

struct vox_histogram {
	size_t nbounds;
	double *bounds;
	/* per bucket, not cumulative; the last one is +Inf. _count is their
	 * sum at render time, so it always equals the +Inf bucket */
	_Atomic uint64_t *buckets;
	_Atomic uint64_t sum_bits;
};

struct series {
	char *labels;
	struct series *next;
	union {
		struct vox_counter counter;
		struct vox_gauge gauge;
		struct vox_histogram hist;
	} u;
};

struct family {
	char *name;
	char *help;
	metric_type_t type;
	struct series *first, *last;
	struct family *next;
};

struct vox_metrics {
	pthread_mutex_t lock;
	struct family *first, *last;
};

static const double default_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                        0.025,  0.05,  0.1,    0.25,  0.5,
                                        1,      2.5,   5,      10};

static uint64_t double_bits(double value)
{
	uint64_t bits;

	memcpy(&bits, &value, sizeof(bits));
	return bits;
}

static double bits_double(uint64_t bits)
{
	double value;

	memcpy(&value, &bits, sizeof(value));
	return value;
}

static void atomic_add_double(_Atomic uint64_t *target, double delta)
{
	uint64_t old = atomic_load_explicit(target, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(
	        target, &old, double_bits(bits_double(old) + delta),
	        memory_order_relaxed, memory_order_relaxed))
		;
}

vox_metrics_t *vox_metrics_new(void)
{
	vox_metrics_t *reg = calloc(1, sizeof(*reg));

	if (reg == NULL)
		return NULL;
	if (pthread_mutex_init(&reg->lock, NULL) != 0) {
		free(reg);
		return NULL;
	}
	return reg;
}

static void series_free(struct series *series, metric_type_t type)
{
	if (type == METRIC_HISTOGRAM) {
		free(series->u.hist.bounds);
		free((void *)series->u.hist.buckets);
	}
	free(series->labels);
	free(series);
}

void vox_metrics_destroy(vox_metrics_t *reg)
{
	struct family *family, *next_family;

	if (reg == NULL)
		return;
	for (family = reg->first; family != NULL; family = next_family) {
		struct series *series, *next_series;

		next_family = family->next;
		for (series = family->first; series != NULL;
		     series = next_series) {
			next_series = series->next;
			series_free(series, family->type);
		}
		free(family->name);
		free(family->help);
		free(family);
	}
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* as the exposition format requires. */
static bool name_valid(const char *name, bool colon_ok)
{
	if (name == NULL || *name == '\0' || (*name >= '0' && *name <= '9'))
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' ||
		      (colon_ok && c == ':')))
			return false;
	}
	return true;
}

/* The label string is pasted into the output as is, so a malformed one
 * would break the whole scrape: check it is name="value"[,name="value"]
 * with values escaped, and that a histogram does not bring its own le. */
static bool labels_valid(const char *labels, bool is_histogram)
{
	const char *p = labels;

	while (*p != '\0') {
		const char *name = p;
		size_t name_len;

		while (*p != '\0' && *p != '=')
			p++;
		name_len = (size_t)(p - name);
		if (*p != '=' || p[1] != '"' || name_len == 0)
			return false;
		{
			char label[128];

			if (name_len >= sizeof(label))
				return false;
			memcpy(label, name, name_len);
			label[name_len] = '\0';
			if (!name_valid(label, false) ||
			    (is_histogram && strcmp(label, "le") == 0))
				return false;
		}
		for (p += 2; *p != '"'; p++) {
			if (*p == '\0' || *p == '\n')
				return false;
			if (*p == '\\') {
				p++;
				if (*p != '\\' && *p != '"' && *p != 'n')
					return false;
			}
		}
		p++;
		if (*p == ',' && p[1] != '\0')
			p++;
		else if (*p != '\0')
			return false;
	}
	return true;
}

static bool bounds_valid(const double *bounds, size_t nbounds)
{
	for (size_t i = 0; i < nbounds; i++) {
		if (!isfinite(bounds[i]))
			return false;
		if (i > 0 && !(bounds[i] > bounds[i - 1]))
			return false;
	}
	return true;
}

static struct family *family_find(vox_metrics_t *reg, const char *name)
{
	for (struct family *family = reg->first; family != NULL;
	     family = family->next)
		if (strcmp(family->name, name) == 0)
			return family;
	return NULL;
}

static struct family *family_add(vox_metrics_t *reg, const char *name,
                                 const char *help, metric_type_t type)
{
	struct family *family = calloc(1, sizeof(*family));

	if (family == NULL)
		return NULL;
	family->name = strdup(name);
	family->help = strdup(help != NULL ? help : "");
	if (family->name == NULL || family->help == NULL)
		goto out_free_family;
	family->type = type;
	if (reg->last != NULL)
		reg->last->next = family;
	else
		reg->first = family;
	reg->last = family;
	return family;

out_free_family:
	free(family->name);
	free(family->help);
	free(family);
	return NULL;
}

static int hist_init(struct vox_histogram *hist, const double *bounds,
                     size_t nbounds)
{
	if (bounds == NULL || nbounds == 0) {
		bounds = default_bounds;
		nbounds = sizeof(default_bounds) / sizeof(default_bounds[0]);
	}
	hist->nbounds = nbounds;
	hist->bounds = malloc(nbounds * sizeof(*bounds));
	hist->buckets = calloc(nbounds + 1, sizeof(*hist->buckets));
	if (hist->bounds == NULL || hist->buckets == NULL)
		return -1;
	memcpy(hist->bounds, bounds, nbounds * sizeof(*bounds));
	return 0;
}

/* Finds or creates the series; NULL on ENOMEM, bad arguments or a name
 * taken by another type. */
static struct series *series_get(vox_metrics_t *reg, const char *name,
                                 const char *help, const char *labels,
                                 metric_type_t type, const double *bounds,
                                 size_t nbounds)
{
	struct family *family;
	struct series *series = NULL;

	if (labels == NULL)
		labels = "";
	if (reg == NULL || !name_valid(name, true) ||
	    !labels_valid(labels, type == METRIC_HISTOGRAM))
		return NULL;
	if (type == METRIC_HISTOGRAM && bounds != NULL &&
	    !bounds_valid(bounds, nbounds))
		return NULL;

	pthread_mutex_lock(&reg->lock);
	family = family_find(reg, name);
	if (family != NULL) {
		if (family->type != type)
			goto out_unlock;
		for (series = family->first; series != NULL;
		     series = series->next)
			if (strcmp(series->labels, labels) == 0)
				goto out_unlock;
	}

	series = calloc(1, sizeof(*series));
	if (series == NULL)
		goto out_unlock;
	series->labels = strdup(labels);
	if (series->labels == NULL)
		goto out_free_series;
	if (type == METRIC_HISTOGRAM &&
	    hist_init(&series->u.hist, bounds, nbounds) != 0)
		goto out_free_series;
	/* the family comes last so a failure never leaves an empty one */
	if (family == NULL) {
		family = family_add(reg, name, help, type);
		if (family == NULL)
			goto out_free_series;
	}
	if (family->last != NULL)
		family->last->next = series;
	else
		family->first = series;
	family->last = series;
	goto out_unlock;

out_free_series:
	series_free(series, type);
	series = NULL;
out_unlock:
	pthread_mutex_unlock(&reg->lock);
	return series;
}

vox_counter_t *vox_metrics_counter(vox_metrics_t *reg, const char *name,
                                   const char *help, const char *labels)
{
	struct series *series =
	        series_get(reg, name, help, labels, METRIC_COUNTER, NULL, 0);

	return series != NULL ? &series->u.counter : NULL;
}

vox_gauge_t *vox_metrics_gauge(vox_metrics_t *reg, const char *name,
                               const char *help, const char *labels)
{
	struct series *series =
	        series_get(reg, name, help, labels, METRIC_GAUGE, NULL, 0);

	return series != NULL ? &series->u.gauge : NULL;
}

vox_histogram_t *vox_metrics_histogram(vox_metrics_t *reg, const char *name,
                                       const char *help, const char *labels,
                                       const double *bounds, size_t nbounds)
{
	struct series *series = series_get(reg, name, help, labels,
	                                   METRIC_HISTOGRAM, bounds, nbounds);

	return series != NULL ? &series->u.hist : NULL;
}

/* Updates accept NULL: registration fails only on ENOMEM or a programming
 * error, and a metric must never be the thing that crashes a service. */
void vox_counter_add(vox_counter_t *counter, uint64_t n)
{
	if (counter != NULL)
		atomic_fetch_add_explicit(&counter->value, n,
		                          memory_order_relaxed);
}

void vox_counter_inc(vox_counter_t *counter)
{
	vox_counter_add(counter, 1);
}

void vox_gauge_set(vox_gauge_t *gauge, double value)
{
	if (gauge != NULL)
		atomic_store_explicit(&gauge->bits, double_bits(value),
		                      memory_order_relaxed);
}

void vox_gauge_add(vox_gauge_t *gauge, double delta)
{
	if (gauge != NULL)
		atomic_add_double(&gauge->bits, delta);
}

void vox_histogram_observe(vox_histogram_t *hist, double value)
{
	size_t i;

	/* a NaN would turn _sum into NaN for the life of the process */
	if (hist == NULL || isnan(value))
		return;
	for (i = 0; i < hist->nbounds; i++)
		if (value <= hist->bounds[i])
			break;
	atomic_fetch_add_explicit(&hist->buckets[i], 1, memory_order_relaxed);
	atomic_add_double(&hist->sum_bits, value);
}

/* Shortest text that reads back as the same double, as Prometheus clients
 * print them (0.1, not 0.10000000000000001). */
static void format_double(char *out, size_t outlen, double value)
{
	if (isnan(value)) {
		snprintf(out, outlen, "NaN");
		return;
	}
	if (isinf(value)) {
		snprintf(out, outlen, "%s", value > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* whole numbers in full: le="10", not le="1e+01" */
	if (value == floor(value) && fabs(value) < 1e15) {
		snprintf(out, outlen, "%.0f", value);
		return;
	}
	for (int precision = 1; precision <= 17; precision++) {
		snprintf(out, outlen, "%.*g", precision, value);
		if (strtod(out, NULL) == value)
			return;
	}
}

/* HELP text escapes only backslash and newline (format 0.0.4). */
static void put_help(FILE *out, const char *help)
{
	for (const char *p = help; *p != '\0'; p++) {
		if (*p == '\\')
			fputs("\\\\", out);
		else if (*p == '\n')
			fputs("\\n", out);
		else
			fputc(*p, out);
	}
}

static void put_labels(FILE *out, const char *labels)
{
	if (labels[0] != '\0')
		fprintf(out, "{%s}", labels);
}

static void render_histogram(FILE *out, const char *name,
                             const struct series *series)
{
	const struct vox_histogram *hist = &series->u.hist;
	const char *sep = series->labels[0] != '\0' ? "," : "";
	uint64_t cumulative = 0;
	char number[32];

	for (size_t i = 0; i <= hist->nbounds; i++) {
		cumulative += atomic_load_explicit(&hist->buckets[i],
		                                   memory_order_relaxed);
		if (i < hist->nbounds)
			format_double(number, sizeof(number), hist->bounds[i]);
		else
			snprintf(number, sizeof(number), "+Inf");
		fprintf(out, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name,
		        series->labels, sep, number, cumulative);
	}
	format_double(number, sizeof(number),
	              bits_double(atomic_load_explicit(&hist->sum_bits,
	                                               memory_order_relaxed)));
	fprintf(out, "%s_sum", name);
	put_labels(out, series->labels);
	fprintf(out, " %s\n%s_count", number, name);
	put_labels(out, series->labels);
	fprintf(out, " %" PRIu64 "\n", cumulative);
}

static void render_family(FILE *out, const struct family *family)
{
	char number[32];

	fprintf(out, "# HELP %s ", family->name);
	put_help(out, family->help);
	fprintf(out, "\n# TYPE %s %s\n", family->name,
	        type_names[family->type]);
	for (const struct series *series = family->first; series != NULL;
	     series = series->next) {
		switch (family->type) {
		case METRIC_COUNTER:
			fputs(family->name, out);
			put_labels(out, series->labels);
			fprintf(out, " %" PRIu64 "\n",
			        atomic_load_explicit(&series->u.counter.value,
			                             memory_order_relaxed));
			break;
		case METRIC_GAUGE:
			format_double(number, sizeof(number),
			              bits_double(atomic_load_explicit(
			                      &series->u.gauge.bits,
			                      memory_order_relaxed)));
			fputs(family->name, out);
			put_labels(out, series->labels);
			fprintf(out, " %s\n", number);
			break;
		case METRIC_HISTOGRAM:
			render_histogram(out, family->name, series);
			break;
		}
	}
}

char *vox_metrics_render(vox_metrics_t *reg, size_t *len)
{
	char *text = NULL;
	size_t size = 0;
	FILE *out;
	bool failed;

	if (reg == NULL)
		return NULL;
	out = open_memstream(&text, &size);
	if (out == NULL)
		return NULL;
	pthread_mutex_lock(&reg->lock);
	for (const struct family *family = reg->first; family != NULL;
	     family = family->next)
		render_family(out, family);
	pthread_mutex_unlock(&reg->lock);
	failed = ferror(out) != 0;
	if (fclose(out) != 0 || failed) {
		free(text);
		return NULL;
	}
	if (len != NULL)
		*len = size;
	return text;
}
