/* bench_check: how fast the guideline checker runs in-process, on one core,
 * over the realistic descriptions of the labelled corpus (60 to 250 words),
 * and, as the ceiling, how fast Vectorscan alone scans the same bytes with
 * the same databases.  Prints figures; there is no pass or fail.
 *
 *   bench_check [CORPUS.ndjson [RULES_DIR [SECONDS]]]
 *
 * Defaults: tests/corpus/checker.ndjson, config/guideline, 3 seconds for
 * each side, in 15 alternating rounds.  Run from the repository root (as
 * `make bench` does). */
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

    /* The checker and, as the ceiling, the same databases over the same
     * bytes with nothing else, in alternating rounds: on a shared machine
     * a burst of load then hits both sides alike, and the medians of the
     * rounds (and of their ratios) are what is printed.  Every checker
     * call is timed too, for the latency percentiles. */
    enum { ROUNDS = 15 };
    double slice = seconds / ROUNDS;
    double check_rates[ROUNDS], raw_rates[ROUNDS], ratios[ROUNDS];
    size_t lat_cap = 1 << 20, runs = 0, findings = 0, raw_runs = 0, matches = 0;
    double *lat = malloc(lat_cap * sizeof(*lat));
    for (int round = 0; round < ROUNDS; round++) {
        size_t round_runs = 0;
        double start = now_s(), end = start;
        while (end - start < slice) {
            for (size_t i = 0; i < count; i++) {
                double a = now_s();
                if (check_run(rules, scratch, &items[i].task, items[i].text, items[i].len, &res, err, sizeof(err)) !=
                    0) {
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
                round_runs++;
            }
            end = now_s();
        }
        check_rates[round] = (double)round_runs / (end - start);
        size_t round_raw = 0;
        start = now_s();
        end = start;
        while (end - start < slice) {
            for (size_t i = 0; i < count; i++) {
                size_t m;
                if (check_rules_scan_raw(rules, scratch, items[i].task.locale, items[i].text, items[i].len, &m) !=
                    0) {
                    fprintf(stderr, "bench_check: raw scan failed\n");
                    return 1;
                }
                matches += m;
                round_raw++;
            }
            end = now_s();
        }
        raw_runs += round_raw;
        raw_rates[round] = (double)round_raw / (end - start);
        ratios[round] = check_rates[round] / raw_rates[round];
    }
    qsort(lat, runs, sizeof(*lat), cmp_double);
    double p50 = lat[runs / 2], p99 = lat[(size_t)((double)runs * 0.99)], pmax = lat[runs - 1];
    qsort(check_rates, ROUNDS, sizeof(double), cmp_double);
    qsort(raw_rates, ROUNDS, sizeof(double), cmp_double);
    qsort(ratios, ROUNDS, sizeof(double), cmp_double);
    double check_rate = check_rates[ROUNDS / 2], raw_rate = raw_rates[ROUNDS / 2], ratio = ratios[ROUNDS / 2];

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
    printf("  ratio       %10.1f %% of the raw scan (median of %d alternating rounds; lowest %.1f %%, highest %.1f %%)\n",
           100.0 * ratio, ROUNDS, 100.0 * ratios[0], 100.0 * ratios[ROUNDS - 1]);
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
