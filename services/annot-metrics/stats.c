/* stats: see stats.h. */
#include "stats.h"

#include <math.h>

double stats_kappa(int64_t aa, int64_t ar, int64_t ra, int64_t rr) {
    double n = (double)(aa + ar + ra + rr);
    if (n <= 0) return 0.0;
    double po = (double)(aa + rr) / n;
    double pe = ((double)(aa + ar) * (double)(aa + ra) + (double)(ra + rr) * (double)(ar + rr)) / (n * n);
    /* pe == 1 only when both raters put every item in one class: they
     * agree perfectly, and kappa's 0/0 is read as full agreement. */
    if (pe >= 1.0) return 1.0;
    return (po - pe) / (1.0 - pe);
}

double stats_ratio(double num, double den) { return den != 0 ? num / den : 0.0; }

int stats_hist_bucket(double value) {
    if (!(value > 1.0)) return 0;
    /* The smallest i with value <= 2^(i/4). */
    int i = (int)ceil(4.0 * log2(value) - 1e-9);
    if (i < 1) i = 1;
    /* log2 rounding at a boundary: step to the exact bucket. */
    while (i > 1 && value <= stats_hist_upper(i - 1)) i--;
    while (i < STATS_HIST_BUCKETS - 1 && value > stats_hist_upper(i)) i++;
    return i < STATS_HIST_BUCKETS ? i : STATS_HIST_BUCKETS - 1;
}

double stats_hist_upper(int i) { return exp2((double)i / 4.0); }

double stats_hist_quantile(const int64_t hist[STATS_HIST_BUCKETS], double q, double vmin, double vmax) {
    int64_t count = 0;
    for (int i = 0; i < STATS_HIST_BUCKETS; i++) count += hist[i];
    if (count == 0) return 0.0;
    int64_t rank = (int64_t)ceil(q * (double)count);
    if (rank < 1) rank = 1;
    int64_t seen = 0;
    double v = vmax;
    for (int i = 0; i < STATS_HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen >= rank) {
            v = stats_hist_upper(i);
            break;
        }
    }
    if (v < vmin) v = vmin;
    if (v > vmax) v = vmax;
    return v;
}
