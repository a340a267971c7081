/* metrics: see metrics.h.  One mutex guards the registry: updates are a few
 * additions, far cheaper than the I/O around them, and a scrape holds the
 * lock only while it formats. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double default_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,  0.5,    1,     2.5,  5,     10};

typedef struct metrics_family metrics_family_t;

struct metrics_series {
    metrics_family_t *family;
    char *labels;
    double value;          /* counter, gauge; histogram sum */
    unsigned long long count; /* histogram */
    unsigned long long *bucket_counts;
    metrics_series_t *next;
};

struct metrics_family {
    metrics_registry_t *reg;
    char *name;
    char *help;
    metrics_type_t type;
    double *buckets;
    size_t nbuckets;
    metrics_series_t *series;
    metrics_family_t *next;
};

struct metrics_registry {
    pthread_mutex_t lock;
    metrics_family_t *families, *last;
};

metrics_registry_t *metrics_registry_new(void) {
    metrics_registry_t *reg = calloc(1, sizeof(*reg));
    if (reg == NULL) abort();
    pthread_mutex_init(&reg->lock, NULL);
    return reg;
}

void metrics_registry_destroy(metrics_registry_t *reg) {
    if (reg == NULL) return;
    metrics_family_t *f = reg->families;
    while (f != NULL) {
        metrics_family_t *fn = f->next;
        metrics_series_t *s = f->series;
        while (s != NULL) {
            metrics_series_t *sn = s->next;
            free(s->labels);
            free(s->bucket_counts);
            free(s);
            s = sn;
        }
        free(f->name);
        free(f->help);
        free(f->buckets);
        free(f);
        f = fn;
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static metrics_series_t *metrics_series_get(metrics_registry_t *reg, const char *name,
                                            const char *help, metrics_type_t type,
                                            const char *labels, const double *buckets,
                                            size_t nbuckets) {
    if (labels == NULL) labels = "";
    pthread_mutex_lock(&reg->lock);
    metrics_family_t *f = reg->families;
    while (f != NULL && strcmp(f->name, name) != 0) f = f->next;
    if (f == NULL) {
        f = calloc(1, sizeof(*f));
        if (f == NULL) abort();
        f->reg = reg;
        f->name = strdup(name);
        f->help = strdup(help ? help : "");
        f->type = type;
        if (type == METRICS_HISTOGRAM) {
            if (buckets == NULL) {
                buckets = default_buckets;
                nbuckets = sizeof(default_buckets) / sizeof(default_buckets[0]);
            }
            f->buckets = malloc(nbuckets * sizeof(double));
            if (f->buckets == NULL) abort();
            memcpy(f->buckets, buckets, nbuckets * sizeof(double));
            f->nbuckets = nbuckets;
        }
        if (reg->last) reg->last->next = f;
        else reg->families = f;
        reg->last = f;
    } else if (f->type != type) {
        fprintf(stderr, "metrics: %s registered twice with different types\n", name);
        abort();
    }
    metrics_series_t *s = f->series, *prev = NULL;
    while (s != NULL && strcmp(s->labels, labels) != 0) {
        prev = s;
        s = s->next;
    }
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL) abort();
        s->family = f;
        s->labels = strdup(labels);
        if (type == METRICS_HISTOGRAM) {
            s->bucket_counts = calloc(f->nbuckets, sizeof(*s->bucket_counts));
            if (s->bucket_counts == NULL) abort();
        }
        if (prev) prev->next = s;
        else f->series = s;
    }
    pthread_mutex_unlock(&reg->lock);
    return s;
}

metrics_series_t *metrics_counter(metrics_registry_t *reg, const char *name, const char *help,
                                  const char *labels) {
    return metrics_series_get(reg, name, help, METRICS_COUNTER, labels, NULL, 0);
}

metrics_series_t *metrics_gauge(metrics_registry_t *reg, const char *name, const char *help,
                                const char *labels) {
    return metrics_series_get(reg, name, help, METRICS_GAUGE, labels, NULL, 0);
}

metrics_series_t *metrics_histogram(metrics_registry_t *reg, const char *name, const char *help,
                                    const char *labels, const double *buckets, size_t nbuckets) {
    return metrics_series_get(reg, name, help, METRICS_HISTOGRAM, labels, buckets, nbuckets);
}

static pthread_mutex_t *series_lock(metrics_series_t *s) { return &s->family->reg->lock; }

void metrics_inc(metrics_series_t *s) { metrics_add(s, 1.0); }

void metrics_add(metrics_series_t *s, double v) {
    pthread_mutex_lock(series_lock(s));
    s->value += v;
    pthread_mutex_unlock(series_lock(s));
}

void metrics_set(metrics_series_t *s, double v) {
    pthread_mutex_lock(series_lock(s));
    s->value = v;
    pthread_mutex_unlock(series_lock(s));
}

void metrics_observe(metrics_series_t *s, double v) {
    metrics_family_t *f = s->family;
    pthread_mutex_lock(series_lock(s));
    for (size_t i = 0; i < f->nbuckets; i++) {
        if (v <= f->buckets[i]) s->bucket_counts[i]++;
    }
    s->count++;
    s->value += v;
    pthread_mutex_unlock(series_lock(s));
}

double metrics_value(metrics_series_t *s) {
    pthread_mutex_lock(series_lock(s));
    double v = s->family->type == METRICS_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(series_lock(s));
    return v;
}

static void label_put(char *buf, size_t len, size_t *off, char c) {
    if (*off + 1 < len) buf[(*off)++] = c;
}

char *metrics_labels(char *buf, size_t len, ...) {
    size_t off = 0;
    const char *key;
    va_list ap;
    va_start(ap, len);
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *val = va_arg(ap, const char *);
        if (off > 0) label_put(buf, len, &off, ',');
        for (const char *p = key; *p; p++) label_put(buf, len, &off, *p);
        label_put(buf, len, &off, '=');
        label_put(buf, len, &off, '"');
        for (const char *p = val ? val : ""; *p; p++) {
            if (*p == '\\' || *p == '"' || *p == '\n') label_put(buf, len, &off, '\\');
            label_put(buf, len, &off, *p == '\n' ? 'n' : *p);
        }
        label_put(buf, len, &off, '"');
    }
    va_end(ap);
    if (len > 0) buf[off] = '\0';
    return buf;
}

typedef struct text {
    char *buf;
    size_t len, cap;
} text_t;

static void text_printf(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(text_t *t, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
        t->buf = realloc(t->buf, t->cap);
        if (t->buf == NULL) abort();
    }
}

/* The shortest text that reads back as v: %.17g alone turns a bucket bound
 * of 0.1 into le="0.10000000000000001", which a query for le="0.1" does not
 * match. */
static void text_value(text_t *t, double v) {
    if (isinf(v)) {
        text_printf(t, v > 0 ? "+Inf" : "-Inf");
    } else if (v == (double)(long long)v && fabs(v) < 1e15) {
        text_printf(t, "%lld", (long long)v);
    } else {
        char buf[32];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof(buf), "%.*g", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
        text_printf(t, "%s", buf);
    }
}

char *metrics_render(metrics_registry_t *reg) {
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    text_t t = {malloc(4096), 0, 4096};
    if (t.buf == NULL) abort();
    t.buf[0] = '\0';
    pthread_mutex_lock(&reg->lock);
    for (metrics_family_t *f = reg->families; f != NULL; f = f->next) {
        text_printf(&t, "# HELP %s ", f->name);
        /* HELP text escapes backslash and newline (exposition format). */
        for (const char *h = f->help; *h; h++) {
            if (*h == '\\') text_printf(&t, "\\\\");
            else if (*h == '\n') text_printf(&t, "\\n");
            else text_printf(&t, "%c", *h);
        }
        text_printf(&t, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
        for (metrics_series_t *s = f->series; s != NULL; s = s->next) {
            const char *sep = s->labels[0] ? "," : "";
            if (f->type != METRICS_HISTOGRAM) {
                text_printf(&t, s->labels[0] ? "%s{%s} " : "%s%s ", f->name, s->labels);
                text_value(&t, s->value);
                text_printf(&t, "\n");
                continue;
            }
            for (size_t i = 0; i < f->nbuckets; i++) {
                text_printf(&t, "%s_bucket{%s%sle=\"", f->name, s->labels, sep);
                text_value(&t, f->buckets[i]);
                text_printf(&t, "\"} %llu\n", s->bucket_counts[i]);
            }
            text_printf(&t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, s->labels, sep, s->count);
            text_printf(&t, s->labels[0] ? "%s_sum{%s} " : "%s_sum%s ", f->name, s->labels);
            text_value(&t, s->value);
            text_printf(&t, s->labels[0] ? "\n%s_count{%s} %llu\n" : "\n%s_count%s %llu\n", f->name,
                        s->labels, s->count);
        }
    }
    pthread_mutex_unlock(&reg->lock);
    return t.buf;
}
