/* window: see window.h. */
#include "window.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static int64_t floor_to(int64_t ts, int64_t size) {
    int64_t q = ts / size;
    if (ts % size != 0 && ts < 0) q--;
    return q * size;
}

window_t window_of(window_kind_t kind, int64_t ts_ms) {
    window_t w = {.kind = kind};
    switch (kind) {
    case WINDOW_HOUR:
        w.start_ms = floor_to(ts_ms, WINDOW_HOUR_MS);
        w.end_ms = w.start_ms + WINDOW_HOUR_MS;
        break;
    case WINDOW_DAY:
        w.start_ms = floor_to(ts_ms, WINDOW_DAY_MS);
        w.end_ms = w.start_ms + WINDOW_DAY_MS;
        break;
    default:
        w.kind = WINDOW_ALL;
        w.start_ms = 0;
        w.end_ms = WINDOW_OPEN_END;
        break;
    }
    return w;
}

int window_of_day(const char *day, window_t *out) {
    int y, m, d;
    char tail;
    if (day == NULL || strlen(day) != 10 || sscanf(day, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3) return -1;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31) return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    time_t t = timegm(&tm);
    /* timegm normalises 2026-02-31 to March: refuse what did not round-trip. */
    struct tm back;
    gmtime_r(&t, &back);
    if (back.tm_mday != d || back.tm_mon != m - 1) return -1;
    *out = window_of(WINDOW_DAY, (int64_t)t * 1000);
    return 0;
}

void window_day_string(int64_t ts_ms, char out[11]) {
    time_t t = (time_t)(floor_to(ts_ms, 1000) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char tmp[48];
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday);
    memcpy(out, tmp, 10);
    out[10] = '\0';
}

bool window_closed(const window_t *w, int64_t now_ms, int64_t grace_ms) {
    if (w->kind == WINDOW_ALL) return false;
    return now_ms >= w->end_ms + grace_ms;
}

static const char *const kind_names[WINDOW_KIND_COUNT] = {"hour", "day", "all"};

const char *window_kind_name(window_kind_t kind) {
    return kind >= 0 && kind < WINDOW_KIND_COUNT ? kind_names[kind] : "unknown";
}

int window_kind_parse(const char *name, window_kind_t *out) {
    for (int k = 0; k < WINDOW_KIND_COUNT; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (window_kind_t)k;
            return 0;
        }
    }
    return -1;
}
