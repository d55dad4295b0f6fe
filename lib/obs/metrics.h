/*
 * metrics.h - Prometheus metrics: counters, gauges and histograms with fixed label sets,
 * rendered in the text exposition format. Updates are lock-free atomics, safe from any thread
 * (pool threads observe stage latencies); registration and rendering take a mutex.
 */
#ifndef PC_METRICS_H
#define PC_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct pc_metrics pc_metrics_t;
typedef struct pc_counter pc_counter_t;
typedef struct pc_gauge pc_gauge_t;
typedef struct pc_histogram pc_histogram_t;

pc_metrics_t *pc_metrics_new(void);
void pc_metrics_free(pc_metrics_t *m);

/* Registration returns a handle owned by m (same name + labels returns the same handle).
 * labels is the inside of {...}, e.g. "kind=\"ISSUE\",outcome=\"issued\"", or "" for none.
 * NULL when out of memory, and for programming errors: a name that is not a Prometheus name
 * ([a-zA-Z_:][a-zA-Z0-9_:]*), a name already registered as another type, or histogram bounds
 * that are not finite and strictly ascending. Every update function accepts NULL and does
 * nothing, so a failed registration costs a metric, not the process. help and TYPE come from
 * the first registration of a name; a histogram keeps its first bounds. Any thread. */
pc_counter_t *pc_metrics_counter(pc_metrics_t *m, const char *name, const char *help,
                                 const char *labels);
pc_gauge_t *pc_metrics_gauge(pc_metrics_t *m, const char *name, const char *help,
                             const char *labels);
/* bounds: ascending upper bounds (seconds for latencies), +Inf is implicit. */
pc_histogram_t *pc_metrics_histogram(pc_metrics_t *m, const char *name, const char *help,
                                     const char *labels, const double *bounds, size_t count);

void pc_counter_inc(pc_counter_t *c);
void pc_counter_add(pc_counter_t *c, uint64_t n);
uint64_t pc_counter_get(const pc_counter_t *c);
void pc_gauge_set(pc_gauge_t *g, double v);
/* pc_gauge_add adds delta (may be negative) atomically, e.g. for an in-flight count. */
void pc_gauge_add(pc_gauge_t *g, double delta);
double pc_gauge_get(const pc_gauge_t *g);
void pc_histogram_observe(pc_histogram_t *h, double v);

/* Latency buckets in seconds, 1 ms .. 60 s, for stage and end-to-end histograms. */
extern const double pc_metrics_latency_bounds[];
extern const size_t pc_metrics_latency_bounds_count;

/* pc_metrics_render returns the text format (malloc'd, caller frees; *len set), HELP and TYPE
 * once per metric name, series grouped by name in order of first registration. NULL when out of
 * memory. Any thread. */
char *pc_metrics_render(pc_metrics_t *m, size_t *len);

#endif
