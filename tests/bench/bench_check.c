/* bench_check: how fast the guideline checker runs in-process, on one core,
 * over the realistic descriptions of the labelled corpus (60 to 250 words),
 * and, as the ceiling, how fast Vectorscan alone scans the same bytes with
 * the same databases.  Prints figures; there is no pass or fail.
 *
 *   bench_check [CORPUS.ndjson [RULES_DIR [SECONDS]]]
 *
 * Defaults: tests/corpus/checker.ndjson, config/guideline, 3 seconds per
 * measurement.  Run from the repository root (as `make bench` does). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "check.h"

typedef struct item {
    check_task_t task;
    char *text;
    size_t len;
} item_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t words_of(const char *s, size_t len) {
    size_t n = 0;
    int in = 0;
    for (size_t i = 0; i < len; i++) {
        int sp = s[i] == ' ' || s[i] == '\n' || s[i] == '\t';
        n += !sp && !in;
        in = !sp;
    }
    return n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t items_load(const char *path, item_t **out) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    item_t *items = NULL;
    size_t count = 0;
    char *line = NULL, err[256];
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) != -1) {
        json_t *obj = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, NULL);
        if (obj == NULL) continue;
        item_t it;
        const char *text;
        if (check_request_from_json(obj, &it.task, &text, &it.len, err, sizeof(err)) == 0) {
            size_t w = words_of(text, it.len);
            if (w >= 60 && w <= 250) {
                it.text = malloc(it.len + 1);
                memcpy(it.text, text, it.len + 1);
                items = realloc(items, (count + 1) * sizeof(*items));
                items[count++] = it;
                json_decref(obj);
                continue;
            }
        }
        check_task_clear(&it.task);
        json_decref(obj);
    }
    free(line);
    fclose(f);
    *out = items;
    return count;
}

int main(int argc, char **argv) {
    const char *corpus = argc > 1 ? argv[1] : "tests/corpus/checker.ndjson";
    const char *dir = argc > 2 ? argv[2] : "config/guideline";
    double seconds = argc > 3 ? atof(argv[3]) : 3.0;
    char err[512];

    double t0 = now_s();
    check_rules_t *rules = check_rules_load(dir, err, sizeof(err));
    if (rules == NULL) {
        fprintf(stderr, "bench_check: %s\n", err);
        return 1;
    }
    double load_s = now_s() - t0;
    item_t *items;
    size_t count = items_load(corpus, &items);
    if (count == 0) {
        fprintf(stderr, "bench_check: no descriptions of 60-250 words in %s\n", corpus);
        return 1;
    }
    size_t bytes = 0, words = 0;
    for (size_t i = 0; i < count; i++) {
        bytes += items[i].len;
        words += words_of(items[i].text, items[i].len);
    }
    check_scratch_t *scratch = check_scratch_new();
    check_result_t res;
    check_result_init(&res);

    /* warm-up: caches, buffers grown to size */
    for (size_t i = 0; i < count; i++)
        check_run(rules, scratch, &items[i].task, items[i].text, items[i].len, &res, err, sizeof(err));

    /* the checker: every call timed, for the latency percentiles */
    size_t lat_cap = 1 << 20, runs = 0, findings = 0;
    double *lat = malloc(lat_cap * sizeof(*lat));
    double start = now_s(), end = start;
    while (end - start < seconds) {
        for (size_t i = 0; i < count; i++) {
            double a = now_s();
            if (check_run(rules, scratch, &items[i].task, items[i].text, items[i].len, &res, err, sizeof(err)) != 0) {
                fprintf(stderr, "bench_check: %s\n", err);
                return 1;
            }
            double b = now_s();
            findings += res.count;
            if (runs == lat_cap) {
                lat_cap *= 2;
                lat = realloc(lat, lat_cap * sizeof(*lat));
            }
            lat[runs++] = b - a;
        }
        end = now_s();
    }
    double check_s = end - start;
    double check_rate = (double)runs / check_s;
    qsort(lat, runs, sizeof(*lat), cmp_double);
    double p50 = lat[runs / 2], p99 = lat[(size_t)((double)runs * 0.99)], pmax = lat[runs - 1];

    /* the ceiling: the same databases over the same bytes, nothing else */
    size_t raw_runs = 0, matches = 0;
    start = now_s();
    end = start;
    while (end - start < seconds) {
        for (size_t i = 0; i < count; i++) {
            size_t m;
            if (check_rules_scan_raw(rules, scratch, items[i].task.locale, items[i].text, items[i].len, &m) != 0) {
                fprintf(stderr, "bench_check: raw scan failed\n");
                return 1;
            }
            matches += m;
            raw_runs++;
        }
        end = now_s();
    }
    double raw_s = end - start;
    double raw_rate = (double)raw_runs / raw_s;

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("bench_check: %zu descriptions of 60-250 words (mean %.0f words, %.0f bytes), rules %s loaded in %.0f ms\n",
           count, (double)words / (double)count, (double)bytes / (double)count, check_rules_version(rules),
           load_s * 1000);
    printf("  checker     %10.0f descriptions/s per core  %7.1f MB/s  p50 %6.2f us  p99 %6.2f us  max %7.2f us"
           "  (%zu runs, %.2f findings/description)\n",
           check_rate, check_rate * (double)bytes / (double)count / 1e6, p50 * 1e6, p99 * 1e6, pmax * 1e6, runs,
           (double)findings / (double)runs);
    printf("  raw scan    %10.0f descriptions/s per core  %7.1f MB/s  (Vectorscan alone, same databases, %.1f "
           "matches/description)\n",
           raw_rate, raw_rate * (double)bytes / (double)count / 1e6, (double)matches / (double)raw_runs);
    printf("  ratio       %10.1f %% of the raw scan\n", 100.0 * check_rate / raw_rate);
    printf("  peak RSS    %10ld KiB\n", ru.ru_maxrss);

    free(lat);
    for (size_t i = 0; i < count; i++) {
        check_task_clear(&items[i].task);
        free(items[i].text);
    }
    free(items);
    check_result_free(&res);
    check_scratch_destroy(scratch);
    check_rules_destroy(rules);
    return 0;
}
