/* series: see series.h.  The batch is an array of points in first-touch
 * order plus an open-addressing index over it (FNV-1a of the key). */
#include "series.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct point {
    series_key_t key;
    series_value_t value;
    uint64_t hash;
} point_t;

struct series_batch {
    point_t *points;
    size_t count, cap;
    size_t *index; /* slots holding point number + 1; 0 = empty */
    size_t nslots;
};

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (q == NULL) abort();
    return q;
}

void series_value_observe(series_value_t *v, double x) {
    if (v->hist == NULL) {
        v->hist = calloc(STATS_HIST_BUCKETS, sizeof(*v->hist));
        if (v->hist == NULL) abort();
    }
    v->c[0]++;
    v->sum += x;
    if (isnan(v->vmin) || x < v->vmin) v->vmin = x;
    if (isnan(v->vmax) || x > v->vmax) v->vmax = x;
    v->hist[stats_hist_bucket(x)]++;
}

static size_t json_escape(char *out, size_t len, const char *s) {
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[8];
        const char *piece = tmp;
        if (*p == '"' || *p == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)*p;
            tmp[2] = '\0';
        } else if (*p < 0x20) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
        } else {
            tmp[0] = (char)*p;
            tmp[1] = '\0';
        }
        size_t n = strlen(piece);
        if (o + n >= len) return len;
        memcpy(out + o, piece, n);
        o += n;
    }
    if (o < len) out[o] = '\0';
    return o;
}

int series_labels(char *out, size_t len, size_t npairs, const char *const *keys, const char *const *values) {
    size_t o = 0;
    if (len < 3) return -1;
    out[o++] = '{';
    for (size_t i = 0; i < npairs; i++) {
        if (o + 8 >= len) goto overflow;
        if (i > 0) out[o++] = ',';
        out[o++] = '"';
        size_t n = json_escape(out + o, len - o, keys[i]);
        if (o + n + 4 >= len) goto overflow;
        o += n;
        out[o++] = '"';
        out[o++] = ':';
        out[o++] = '"';
        n = json_escape(out + o, len - o, values[i]);
        if (o + n + 3 >= len) goto overflow;
        o += n;
        out[o++] = '"';
    }
    out[o++] = '}';
    out[o] = '\0';
    return 0;
overflow:
    snprintf(out, len, "{}");
    return -1;
}

series_batch_t *series_batch_new(void) {
    series_batch_t *b = calloc(1, sizeof(*b));
    if (b == NULL) abort();
    b->nslots = 256;
    b->index = calloc(b->nslots, sizeof(*b->index));
    if (b->index == NULL) abort();
    return b;
}

void series_batch_reset(series_batch_t *b) {
    for (size_t i = 0; i < b->count; i++) free(b->points[i].value.hist);
    b->count = 0;
    memset(b->index, 0, b->nslots * sizeof(*b->index));
}

void series_batch_destroy(series_batch_t *b) {
    if (b == NULL) return;
    series_batch_reset(b);
    free(b->points);
    free(b->index);
    free(b);
}

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t key_hash(const series_key_t *k) {
    uint64_t h = 1469598103934665603ULL;
    h = fnv(h, k->metric, strlen(k->metric) + 1);
    h = fnv(h, &k->window.kind, sizeof(k->window.kind));
    h = fnv(h, &k->window.start_ms, sizeof(k->window.start_ms));
    h = fnv(h, k->gv, strlen(k->gv) + 1);
    return fnv(h, k->labels, strlen(k->labels) + 1);
}

static int key_equal(const series_key_t *a, const series_key_t *b) {
    return a->window.kind == b->window.kind && a->window.start_ms == b->window.start_ms &&
           strcmp(a->metric, b->metric) == 0 && strcmp(a->gv, b->gv) == 0 && strcmp(a->labels, b->labels) == 0;
}

static void index_grow(series_batch_t *b) {
    free(b->index);
    b->nslots *= 2;
    b->index = calloc(b->nslots, sizeof(*b->index));
    if (b->index == NULL) abort();
    for (size_t i = 0; i < b->count; i++) {
        size_t s = b->points[i].hash & (b->nslots - 1);
        while (b->index[s] != 0) s = (s + 1) & (b->nslots - 1);
        b->index[s] = i + 1;
    }
}

series_value_t *series_batch_get(series_batch_t *b, const series_key_t *key) {
    uint64_t h = key_hash(key);
    size_t s = h & (b->nslots - 1);
    while (b->index[s] != 0) {
        point_t *pt = &b->points[b->index[s] - 1];
        if (pt->hash == h && key_equal(&pt->key, key)) return &pt->value;
        s = (s + 1) & (b->nslots - 1);
    }
    if (b->count == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->points = xrealloc(b->points, b->cap * sizeof(*b->points));
    }
    point_t *pt = &b->points[b->count];
    memset(pt, 0, sizeof(*pt));
    pt->key = *key;
    pt->hash = h;
    pt->value.vmin = NAN;
    pt->value.vmax = NAN;
    b->index[s] = ++b->count;
    if (b->count * 2 > b->nslots) index_grow(b);
    return &pt->value;
}

size_t series_batch_count(const series_batch_t *b) { return b->count; }
const series_key_t *series_batch_key(const series_batch_t *b, size_t i) { return &b->points[i].key; }
const series_value_t *series_batch_value(const series_batch_t *b, size_t i) { return &b->points[i].value; }
