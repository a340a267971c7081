/* bench_check: how fast the guideline checker runs in-process, on one core,
 * over the realistic descriptions of the labelled corpus (60 to 250 words),
 * and, as the ceiling, how fast Vectorscan alone scans the same bytes with
 * the same databases.  Then where a check's time goes: its first stages
 * one at a time (check_internal.h), and the engine alone over the scan
 * forms they produce.  Prints figures; there is no pass or fail.
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
#include "check_internal.h"

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

static int count_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
                       void *opaque) {
    (void)id, (void)from, (void)to, (void)flags;
    (*(size_t *)opaque)++;
    return 0;
}

/* Mean microseconds a description of the first stages of a check, each
 * timed over all the descriptions in turn, and of Vectorscan alone over
 * the scan forms the lexicon stage matches (padded as it pads them). */
typedef struct stages {
    double prepare, lexicon, sentences, engine;
} stages_t;

static stages_t stages_measure(const check_rules_t *rules, check_scratch_t *scratch, const item_t *items,
                               size_t count, double seconds) {
    stages_t st = {0, 0, 0, 0};
    check_text_t t;
    memset(&t, 0, sizeof(t));
    char **forms = calloc(count, sizeof(*forms));
    size_t *form_len = calloc(count, sizeof(*form_len)), runs = 0, matches = 0;
    double start = now_s();
    while (now_s() - start < seconds) {
        for (size_t i = 0; i < count; i++) {
            const check_lang_t *lang = check_rules_language(rules, items[i].task.locale);
            double a = now_s();
            check_text_prepare(&t, rules, items[i].text, items[i].len);
            double b = now_s();
            check_lexicon_scan(lang, scratch->hs, &t);
            double c = now_s();
            check_text_sentences(&t);
            st.prepare += b - a;
            st.lexicon += c - b;
            st.sentences += now_s() - c;
            if (forms[i] == NULL && lang->db != NULL) {
                form_len[i] = t.norm_len + 2;
                forms[i] = malloc(form_len[i]);
                memcpy(forms[i], t.scan, form_len[i]);
            }
            runs++;
        }
    }
    st.prepare *= 1e6 / (double)runs, st.lexicon *= 1e6 / (double)runs, st.sentences *= 1e6 / (double)runs;
    size_t engine_runs = 0;
    start = now_s();
    double end = start;
    while (end - start < seconds) {
        for (size_t i = 0; i < count; i++) {
            if (forms[i] != NULL)
                hs_scan(check_rules_language(rules, items[i].task.locale)->db, forms[i], (unsigned)form_len[i], 0,
                        scratch->hs, count_match, &matches);
            engine_runs++;
        }
        end = now_s();
    }
    st.engine = (end - start) * 1e6 / (double)engine_runs;
    for (size_t i = 0; i < count; i++) free(forms[i]);
    free(forms);
    free(form_len);
    check_text_free(&t);
    return st;
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

    stages_t st = stages_measure(rules, scratch, items, count, seconds / 3);
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
    double per_check = 1e6 / check_rate, first = st.prepare + st.lexicon + st.sentences;
    printf("  stages      prepare %.2f us, lexicon scan %.2f us (the engine alone over its scan forms %.2f us), "
           "sentences %.2f us; names, rules and findings the other %.2f us of %.2f us\n",
           st.prepare, st.lexicon, st.engine, st.sentences, per_check > first ? per_check - first : 0, per_check);
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
