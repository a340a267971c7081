/* series: one point of one metric series, and a batch of them.
 *
 * A series point is (metric, window, guideline version, labels); its value
 * is a handful of additive counters (what each counter means is per metric,
 * see contrib.h and docs/METRICS.md), a sum, a min/max and, for
 * distributions, a histogram.  Being additive, contributions can be summed
 * in any order: a batch folds its events' contributions per point in memory
 * (series_batch_t) and writes each point once, with SQL adding the batch's
 * delta to the stored totals.  The batch's size is bounded by the batch of
 * events, never by the history. */
#ifndef METRICS_SERIES_H
#define METRICS_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"
#include "window.h"

#define SERIES_COUNTERS 6
#define SERIES_METRIC_MAX 48
#define SERIES_GV_MAX 96
#define SERIES_LABELS_MAX 320

typedef struct series_key {
    char metric[SERIES_METRIC_MAX];
    window_t window;
    char gv[SERIES_GV_MAX];         /* "" = all versions */
    char labels[SERIES_LABELS_MAX]; /* a JSON object, keys sorted; "{}" = none */
} series_key_t;

typedef struct series_value {
    int64_t c[SERIES_COUNTERS];
    double sum;
    double vmin, vmax; /* NAN while nothing was observed */
    int64_t *hist;     /* STATS_HIST_BUCKETS counters, or NULL (not a distribution) */
} series_value_t;

/* Adds one observation to a distribution: c[0] += 1, sum, min, max and the
 * histogram (allocated on first use; aborts when out of memory). */
void series_value_observe(series_value_t *v, double x);

/* Builds the canonical labels object from nkeys pairs, keys given in
 * ascending order.  Values are JSON-escaped.  Returns -1 when it does not
 * fit (out is then "{}"). */
int series_labels(char *out, size_t len, size_t npairs, const char *const *keys, const char *const *values);

typedef struct series_batch series_batch_t;

series_batch_t *series_batch_new(void);
void series_batch_destroy(series_batch_t *b);
/* Forgets every point (keeps the memory for the next batch). */
void series_batch_reset(series_batch_t *b);
/* The value of the point key, created zeroed on first use.  The pointer is
 * valid until the next series_batch_get or reset. */
series_value_t *series_batch_get(series_batch_t *b, const series_key_t *key);
size_t series_batch_count(const series_batch_t *b);
/* The i-th point, in the order they were first touched. */
const series_key_t *series_batch_key(const series_batch_t *b, size_t i);
const series_value_t *series_batch_value(const series_batch_t *b, size_t i);

#endif
