/* stats: the formulas behind the metrics, over additive counts (so a window
 * can be summed in any order, split across batches, and updated late):
 * Cohen's kappa from a 2x2 confusion table, ratios, and a log-scale
 * histogram for latency quantiles.  The SQL views use the same formulas
 * (migrations/002_views.sql); keep the two in step. */
#ifndef METRICS_STATS_H
#define METRICS_STATS_H

#include <stdint.h>

/* Cohen's kappa of two raters on accept/reject: aa = both accept, ar =
 * first accepts and second rejects, ra, rr.  1 when the raters agree on
 * every item even if chance agreement is total (all items one class), 0
 * for no items. */
double stats_kappa(int64_t aa, int64_t ar, int64_t ra, int64_t rr);
/* num / den, 0 when den is 0. */
double stats_ratio(double num, double den);

/* Histogram of non-negative values (milliseconds): bucket 0 holds values
 * <= 1, bucket i holds (2^((i-1)/4), 2^(i/4)], the last bucket everything
 * larger: a quantile is known to within 19 %, clamped to the exact min and
 * max, in 128 counters whatever the number of observations. */
#define STATS_HIST_BUCKETS 128

int stats_hist_bucket(double value);
/* The upper bound of bucket i. */
double stats_hist_upper(int i);
/* The q-quantile (0 < q <= 1): the upper bound of the bucket holding the
 * ceil(q * count)-th observation, clamped to [vmin, vmax]; 0 when empty. */
double stats_hist_quantile(const int64_t hist[STATS_HIST_BUCKETS], double q, double vmin, double vmax);

#endif
