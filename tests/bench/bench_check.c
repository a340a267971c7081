/* bench_check: how fast the guideline checker runs in-process, on one core,
 * on realistic descriptions (60 to 250 words), and, as the ceiling, how fast
 * Vectorscan alone scans the same bytes with the same databases.  Then where
 * a check's time goes: its first stages one at a time (check_internal.h),
 * and the engine alone over the scan forms they produce.  Prints figures;
 * there is no pass or fail.
 *
 * The headline figures are over a stream of descriptions the process has not
 * seen before: every corpus description in up to STREAM_ORDERS orders of its
 * sentences (its own first), each distinct, shuffled.  Looping over the 215
 * corpus texts themselves lets the CPU's branch predictor learn them, and
 * the raw scan, whose branches depend on nothing but the bytes, gains most
 * from that: it runs about twice as fast on the repeated corpus as on texts
 * it has not met, which a service that sees every submission once never
 * gets.  Those figures are printed too, for comparison.
 *
 *   bench_check [CORPUS.ndjson [RULES_DIR [SECONDS]]]
 *
 * Defaults: tests/corpus/checker.ndjson, config/guideline, 3 seconds for
 * each side of each measurement, in 15 alternating rounds.  Run from the
 * repository root (as `make bench` does). */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
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

/* The stream: each description in up to STREAM_ORDERS orders of its
 * sentences (cut after ". ", "! " and "? "), the first its own, duplicates
 * dropped, then all of them shuffled with a fixed seed.  The variants share
 * their original's task; their texts are their own. */
enum { STREAM_ORDERS = 20 };

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void) { /* xorshift64: a fixed, portable sequence */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t stream_build(const item_t *items, size_t count, item_t **out) {
    item_t *v = malloc(count * STREAM_ORDERS * sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        const char *t = items[i].text;
        size_t len = items[i].len, cut[65], nc = 0;
        cut[nc++] = 0;
        for (size_t j = 0; j + 1 < len && nc < 64; j++)
            if ((t[j] == '.' || t[j] == '!' || t[j] == '?') && t[j + 1] == ' ') cut[nc++] = j + 2;
        cut[nc] = len;
        size_t first = n;
        for (size_t k = 0; k < STREAM_ORDERS; k++) {
            size_t order[64];
            for (size_t q = 0; q < nc; q++) order[q] = q;
            for (size_t q = nc - 1; k > 0 && q > 0; q--) {
                size_t r = (size_t)(rng_next() % (q + 1)), x = order[q];
                order[q] = order[r];
                order[r] = x;
            }
            char *text = malloc(len + nc + 1);
            size_t w = 0;
            for (size_t q = 0; q < nc; q++) {
                size_t a = cut[order[q]], b = cut[order[q] + 1];
                while (b > a && t[b - 1] == ' ') b--;
                if (w > 0) text[w++] = ' ';
                memcpy(text + w, t + a, b - a);
                w += b - a;
            }
            text[w] = '\0';
            bool dup = false;
            for (size_t d = first; d < n && !dup; d++) dup = v[d].len == w && memcmp(v[d].text, text, w) == 0;
            if (dup) {
                free(text);
                continue;
            }
            v[n] = items[i];
            v[n].text = text;
            v[n].len = w;
            n++;
        }
    }
    for (size_t q = n - 1; n > 1 && q > 0; q--) {
        size_t r = (size_t)(rng_next() % (q + 1));
        item_t x = v[q];
        v[q] = v[r];
        v[r] = x;
    }
    *out = v;
    return n;
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

/* The checker and, as the ceiling, the same databases over the same bytes
 * with nothing else, in alternating rounds: on a shared machine a burst of
 * load then hits both sides alike, and the medians of the rounds (and of
 * their ratios) are what is printed.  Every checker call is timed too, for
 * the latency percentiles. */
enum { ROUNDS = 15 };

typedef struct measured {
    double check_rate, raw_rate, ratio, ratio_low, ratio_high;
    double p50, p99, pmax;
    size_t runs, findings, raw_runs, matches;
} measured_t;

static int measure(const check_rules_t *rules, check_scratch_t *scratch, const item_t *items, size_t count,
                   double seconds, measured_t *out) {
    char err[512];
    check_result_t res;
    check_result_init(&res);
    /* warm-up: caches, buffers grown to size */
    for (size_t i = 0; i < count; i++)
        check_run(rules, scratch, &items[i].task, items[i].text, items[i].len, &res, err, sizeof(err));
    double slice = seconds / ROUNDS;
    double check_rates[ROUNDS], raw_rates[ROUNDS], ratios[ROUNDS];
    size_t lat_cap = 1 << 20;
    double *lat = malloc(lat_cap * sizeof(*lat));
    memset(out, 0, sizeof(*out));
    for (int round = 0; round < ROUNDS; round++) {
        size_t round_runs = 0;
        double start = now_s(), end = start;
        while (end - start < slice) {
            for (size_t i = 0; i < count; i++) {
                double a = now_s();
                if (check_run(rules, scratch, &items[i].task, items[i].text, items[i].len, &res, err, sizeof(err)) !=
                    0) {
                    fprintf(stderr, "bench_check: %s\n", err);
                    return -1;
                }
                double b = now_s();
                out->findings += res.count;
                if (out->runs == lat_cap) {
                    lat_cap *= 2;
                    lat = realloc(lat, lat_cap * sizeof(*lat));
                }
                lat[out->runs++] = b - a;
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
                    return -1;
                }
                out->matches += m;
                round_raw++;
            }
            end = now_s();
        }
        out->raw_runs += round_raw;
        raw_rates[round] = (double)round_raw / (end - start);
        ratios[round] = check_rates[round] / raw_rates[round];
    }
    qsort(lat, out->runs, sizeof(*lat), cmp_double);
    out->p50 = lat[out->runs / 2];
    out->p99 = lat[(size_t)((double)out->runs * 0.99)];
    out->pmax = lat[out->runs - 1];
    qsort(check_rates, ROUNDS, sizeof(double), cmp_double);
    qsort(raw_rates, ROUNDS, sizeof(double), cmp_double);
    qsort(ratios, ROUNDS, sizeof(double), cmp_double);
    out->check_rate = check_rates[ROUNDS / 2];
    out->raw_rate = raw_rates[ROUNDS / 2];
    out->ratio = ratios[ROUNDS / 2];
    out->ratio_low = ratios[0];
    out->ratio_high = ratios[ROUNDS - 1];
    free(lat);
    check_result_free(&res);
    return 0;
}

static void measured_print(const char *what, const measured_t *m, double mean_bytes) {
    printf("%s\n", what);
    printf("  checker     %10.0f descriptions/s per core  %7.1f MB/s  p50 %6.2f us  p99 %6.2f us  max %7.2f us"
           "  (%zu runs, %.2f findings/description)\n",
           m->check_rate, m->check_rate * mean_bytes / 1e6, m->p50 * 1e6, m->p99 * 1e6, m->pmax * 1e6, m->runs,
           (double)m->findings / (double)m->runs);
    printf("  raw scan    %10.0f descriptions/s per core  %7.1f MB/s  (Vectorscan alone, same databases, %.1f "
           "matches/description)\n",
           m->raw_rate, m->raw_rate * mean_bytes / 1e6, (double)m->matches / (double)m->raw_runs);
    printf("  ratio       %10.1f %% of the raw scan (median of %d alternating rounds; lowest %.1f %%, highest %.1f %%)\n",
           100.0 * m->ratio, ROUNDS, 100.0 * m->ratio_low, 100.0 * m->ratio_high);
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
    item_t *items, *stream;
    size_t count = items_load(corpus, &items);
    if (count == 0) {
        fprintf(stderr, "bench_check: no descriptions of 60-250 words in %s\n", corpus);
        return 1;
    }
    size_t stream_count = stream_build(items, count, &stream);
    size_t bytes = 0, words = 0, stream_bytes = 0;
    for (size_t i = 0; i < count; i++) {
        bytes += items[i].len;
        words += words_of(items[i].text, items[i].len);
    }
    for (size_t i = 0; i < stream_count; i++) stream_bytes += stream[i].len;
    check_scratch_t *scratch = check_scratch_new();

    measured_t fresh, repeated;
    if (measure(rules, scratch, stream, stream_count, seconds, &fresh) != 0 ||
        measure(rules, scratch, items, count, seconds, &repeated) != 0)
        return 1;
    stages_t st = stages_measure(rules, scratch, stream, stream_count, seconds / 3);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    printf("bench_check: %zu corpus descriptions of 60-250 words (mean %.0f words, %.0f bytes), rules %s loaded in "
           "%.0f ms\n",
           count, (double)words / (double)count, (double)bytes / (double)count, check_rules_version(rules),
           load_s * 1000);
    char what[160];
    snprintf(what, sizeof(what),
             "a stream of %zu distinct descriptions (the corpus, up to %d sentence orders each, shuffled):",
             stream_count, STREAM_ORDERS);
    measured_print(what, &fresh, (double)stream_bytes / (double)stream_count);
    snprintf(what, sizeof(what), "the %zu corpus descriptions over and over (branch predictor trained on them):",
             count);
    measured_print(what, &repeated, (double)bytes / (double)count);
    double per_check = 1e6 / fresh.check_rate, first = st.prepare + st.lexicon + st.sentences;
    printf("stages on the stream: prepare %.2f us, lexicon scan %.2f us (the engine alone over its scan forms %.2f "
           "us), sentences %.2f us; names, rules and findings the other %.2f us of %.2f us\n",
           st.prepare, st.lexicon, st.engine, st.sentences, per_check > first ? per_check - first : 0, per_check);
    printf("peak RSS    %10ld KiB\n", ru.ru_maxrss);

    for (size_t i = 0; i < stream_count; i++) free(stream[i].text);
    free(stream);
    for (size_t i = 0; i < count; i++) {
        check_task_clear(&items[i].task);
        free(items[i].text);
    }
    free(items);
    check_scratch_destroy(scratch);
    check_rules_destroy(rules);
    return 0;
}
