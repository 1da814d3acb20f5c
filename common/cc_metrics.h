/*
 * cc_metrics: counters, gauges and histograms rendered in the Prometheus text format 0.0.4.
 *
 * A registry owns its metrics; handles stay valid until cc_metrics_free(). Registration and
 * rendering take the registry's mutex; updates are lock-free (C11 atomics), so hot paths may call
 * cc_counter_add / cc_gauge_set / cc_histogram_observe from any thread. A render concurrent with
 * updates sees each value atomically but not a snapshot across values.
 */
#ifndef CC_METRICS_H
#define CC_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cc_metrics cc_metrics; /* a registry */
struct cc_counter;
struct cc_gauge;
struct cc_histogram;

/* A new empty registry; NULL on ENOMEM. */
cc_metrics *cc_metrics_new(void);
/* Frees the registry and every metric it handed out. NULL is a no-op. */
void cc_metrics_free(cc_metrics *m);
/* labels: NULL or a preformatted Prometheus label list without braces, e.g. "topic=\"cc.agents\"".
 * Same name+labels twice returns the same metric. NULL on allocation failure, bad name
 * ([a-zA-Z_:][a-zA-Z0-9_:]*) or when the name is already registered with another type. */
struct cc_counter *cc_metrics_counter(cc_metrics *m, const char *name, const char *help,
                                      const char *labels);
struct cc_gauge *cc_metrics_gauge(cc_metrics *m, const char *name, const char *help,
                                  const char *labels);
/* bounds: ascending upper bounds (seconds or whatever unit the name says), copied; the +Inf
 * bucket is implicit. NULL also when bounds are not strictly ascending or nbounds is 0. */
struct cc_histogram *cc_metrics_histogram(cc_metrics *m, const char *name, const char *help,
                                          const char *labels, const double *bounds, size_t nbounds);
void cc_counter_add(struct cc_counter *c, uint64_t n);
void cc_gauge_set(struct cc_gauge *g, double v);
void cc_gauge_add(struct cc_gauge *g, double delta);
/* Counts v in every bucket whose bound is >= v (cumulative), and in _sum/_count. */
void cc_histogram_observe(struct cc_histogram *h, double v);
/* Prometheus text exposition format 0.0.4 (HELP/TYPE once per family, _bucket{le=..}/_sum/_count,
 * +Inf bucket). Families in registration order. Returns a malloc'd NUL-terminated string (caller
 * frees), *len (may be NULL) set; NULL on ENOMEM. */
char *cc_metrics_render(cc_metrics *m, size_t *len);

#endif
