/* metrics: Prometheus counters, gauges and histograms, rendered in the text
 * exposition format for /metrics.  A series is a family name plus a label
 * set; it is created on first use and its pointer stays valid until the
 * registry is destroyed, so hot paths look a series up once and keep it.
 * Updates and rendering may run on different threads. */
#ifndef ANNOT_METRICS_H
#define ANNOT_METRICS_H

#include <stddef.h>

typedef struct metrics_registry metrics_registry_t;
typedef struct metrics_series metrics_series_t;

typedef enum {
    METRICS_COUNTER = 0,
    METRICS_GAUGE,
    METRICS_HISTOGRAM,
} metrics_type_t;

metrics_registry_t *metrics_registry_new(void);
void metrics_registry_destroy(metrics_registry_t *reg);

/* labels is the inside of the braces, e.g. `topic="annot.tasks.v1"` (build it
 * with metrics_labels), or NULL/"" for none.  A name registered with another
 * type is a programming error and aborts. */
metrics_series_t *metrics_counter(metrics_registry_t *reg, const char *name, const char *help,
                                  const char *labels);
metrics_series_t *metrics_gauge(metrics_registry_t *reg, const char *name, const char *help,
                                const char *labels);
/* buckets: ascending upper bounds (the +Inf bucket is implicit); NULL gives
 * latency buckets in seconds from 1 ms to 10 s.  The family's first call
 * fixes its buckets. */
metrics_series_t *metrics_histogram(metrics_registry_t *reg, const char *name, const char *help,
                                    const char *labels, const double *buckets, size_t nbuckets);

void metrics_inc(metrics_series_t *s);            /* counter += 1 */
void metrics_add(metrics_series_t *s, double v);  /* counter or gauge += v */
void metrics_set(metrics_series_t *s, double v);  /* gauge = v */
void metrics_observe(metrics_series_t *s, double v); /* histogram sample */
double metrics_value(metrics_series_t *s);        /* counter/gauge value, histogram count */

/* Formats label pairs ("key", value, ..., NULL) with values escaped as the
 * exposition format asks; returns buf. */
char *metrics_labels(char *buf, size_t len, ...) __attribute__((sentinel));

/* Renders every family; the caller frees the text. */
char *metrics_render(metrics_registry_t *reg);

#endif
