/* window: the tumbling windows metrics are kept in (a UTC hour, a UTC day)
 * and the cumulative one (all time).  Pure: a window is a function of the
 * event's own time, never of the clock, so a late event lands in the window
 * it belongs to and a replay lands where the first delivery did. */
#ifndef METRICS_WINDOW_H
#define METRICS_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    WINDOW_HOUR = 0,
    WINDOW_DAY,
    WINDOW_ALL,
    WINDOW_KIND_COUNT
} window_kind_t;

#define WINDOW_HOUR_MS 3600000LL
#define WINDOW_DAY_MS 86400000LL
/* The end of the all-time window: open. */
#define WINDOW_OPEN_END INT64_MAX

typedef struct window {
    window_kind_t kind;
    int64_t start_ms; /* inclusive */
    int64_t end_ms;   /* exclusive; WINDOW_OPEN_END for WINDOW_ALL */
} window_t;

/* The window of kind that holds ts_ms (floor, also before 1970). */
window_t window_of(window_kind_t kind, int64_t ts_ms);
/* The day window of a cohort day "YYYY-MM-DD"; -1 when day is not a date. */
int window_of_day(const char *day, window_t *out);
/* "YYYY-MM-DD" of ts_ms (UTC). */
void window_day_string(int64_t ts_ms, char out[11]);
/* True once no more events are expected for w: its end plus the grace
 * allowed for late events has passed.  The all-time window never closes.
 * A late event after that still updates the window (and republishes it). */
bool window_closed(const window_t *w, int64_t now_ms, int64_t grace_ms);
/* "hour", "day", "all": the rollups' window_kind column. */
const char *window_kind_name(window_kind_t kind);
/* The inverse; -1 for an unknown name. */
int window_kind_parse(const char *name, window_kind_t *out);

#endif
