/* publish: a rollup row (a series point's totals) as the MetricEvent that
 * announces it on the metrics topic.  Pure.  The event id derives from the
 * point and its revision, so the same totals always go out under the same
 * id, and a replay that republishes them is dropped by a consumer's ledger;
 * the value and the detail are computed with stats.h, as the SQL views
 * compute them. */
#ifndef METRICS_PUBLISH_H
#define METRICS_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "series.h"

typedef struct rollup_row {
    char metric[SERIES_METRIC_MAX];
    window_t window;
    char gv[SERIES_GV_MAX];
    char labels[SERIES_LABELS_MAX]; /* as PostgreSQL prints the jsonb */
    series_value_t value;           /* hist points at hist_buf when present */
    int64_t hist_buf[STATS_HIST_BUCKETS];
    int64_t revision;
    bool final;
} rollup_row_t;

typedef struct publish_opts {
    const char *source;     /* the service name, for the header */
    double quality_target;  /* QualityStats.target */
    int64_t computed_at_ms; /* when the totals were computed */
} publish_opts_t;

/* The event's id: UUID v5 of the point and its revision (and whether it is
 * the final publication). */
void publish_event_id(const rollup_row_t *row, char out[EVENT_ID_LEN]);
/* Packs the MetricEvent of row into *out (malloc'd; the caller frees). */
int publish_pack(const rollup_row_t *row, const publish_opts_t *opts, uint8_t **out, size_t *len, char *errstr,
                 size_t errlen);

#endif
