/*
 * vox_metrics: a Prometheus registry with the text exposition format
 * (text/plain; version=0.0.4). Counters, gauges and histograms; updates are
 * lock-free atomics, registration and rendering take the registry lock.
 *
 * A series is a metric name plus a fixed label string such as
 *   route="/v1/canary",code="202"
 * Asking twice for the same name and labels returns the same series.
 * Series live as long as the registry.
 */
#ifndef VOX_METRICS_H
#define VOX_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct vox_metrics vox_metrics_t;
typedef struct vox_counter vox_counter_t;
typedef struct vox_gauge vox_gauge_t;
typedef struct vox_histogram vox_histogram_t;

vox_metrics_t *vox_metrics_new(void);
void vox_metrics_destroy(vox_metrics_t *reg);

/* labels may be NULL or "". Returns NULL only on ENOMEM or when name is
 * already registered with another type. */
vox_counter_t *vox_metrics_counter(vox_metrics_t *reg, const char *name,
                                   const char *help, const char *labels);
vox_gauge_t *vox_metrics_gauge(vox_metrics_t *reg, const char *name,
                               const char *help, const char *labels);
/* bounds: ascending upper bounds (the +Inf bucket is implicit); copied.
 * NULL/0 gives default latency buckets in seconds (0.0005 .. 10). */
vox_histogram_t *vox_metrics_histogram(vox_metrics_t *reg, const char *name,
                                       const char *help, const char *labels,
                                       const double *bounds, size_t nbounds);

void vox_counter_add(vox_counter_t *counter, uint64_t n);
void vox_counter_inc(vox_counter_t *counter);
void vox_gauge_set(vox_gauge_t *gauge, double value);
void vox_gauge_add(vox_gauge_t *gauge, double delta);
void vox_histogram_observe(vox_histogram_t *hist, double value);

/* The whole registry in the text format, HELP/TYPE once per name. Caller
 * frees with free(). *len gets strlen. NULL on ENOMEM. */
char *vox_metrics_render(vox_metrics_t *reg, size_t *len);

#endif
