/* Unit tests of annot-metrics' windows and formulas (services/annot-metrics/
 * window.c, stats.c): window edges (the last millisecond of an hour and the
 * first of the next, days, before 1970, cohort days), when a window closes,
 * Cohen's kappa on hand-computed tables, and the latency histogram's
 * quantiles.  The modules are compiled in by including their .c (see
 * test_lease_policy.c for why). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include "../../services/annot-metrics/stats.c"
#include "../../services/annot-metrics/window.c"

/* 2026-11-27T10:00:00Z */
#define T10 1795773600000LL

static void test_hour_edges(void **state) {
    (void)state;
    window_t w = window_of(WINDOW_HOUR, T10);
    assert_int_equal(w.start_ms, T10);
    assert_int_equal(w.end_ms, T10 + 3600000);
    w = window_of(WINDOW_HOUR, T10 - 1);
    assert_int_equal(w.start_ms, T10 - 3600000);
    assert_int_equal(w.end_ms, T10);
    w = window_of(WINDOW_HOUR, T10 + 3599999);
    assert_int_equal(w.start_ms, T10);
    /* Before 1970 the floor still goes down. */
    w = window_of(WINDOW_HOUR, -1);
    assert_int_equal(w.start_ms, -3600000);
    assert_int_equal(w.end_ms, 0);
}

static void test_day_edges(void **state) {
    (void)state;
    /* 2026-11-27T00:00:00Z = T10 - 10 h */
    int64_t midnight = T10 - 10 * 3600000LL;
    window_t w = window_of(WINDOW_DAY, T10);
    assert_int_equal(w.start_ms, midnight);
    assert_int_equal(w.end_ms, midnight + 86400000LL);
    w = window_of(WINDOW_DAY, midnight - 1);
    assert_int_equal(w.start_ms, midnight - 86400000LL);
    char day[11];
    window_day_string(midnight - 1, day);
    assert_string_equal(day, "2026-11-26");
    window_day_string(midnight, day);
    assert_string_equal(day, "2026-11-27");
    w = window_of(WINDOW_ALL, T10);
    assert_int_equal(w.kind, WINDOW_ALL);
    assert_int_equal(w.start_ms, 0);
    assert_true(w.end_ms == WINDOW_OPEN_END);
}

static void test_cohort_day(void **state) {
    (void)state;
    window_t w;
    assert_int_equal(window_of_day("2026-11-27", &w), 0);
    assert_int_equal(w.kind, WINDOW_DAY);
    assert_int_equal(w.start_ms, T10 - 10 * 3600000LL);
    assert_int_equal(window_of_day("2024-02-29", &w), 0);
    assert_int_equal(window_of_day("2026-02-29", &w), -1);
    assert_int_equal(window_of_day("2026-13-01", &w), -1);
    assert_int_equal(window_of_day("2026-11-27x", &w), -1);
    assert_int_equal(window_of_day("27.11.2026", &w), -1);
    assert_int_equal(window_of_day("", &w), -1);
    assert_int_equal(window_of_day(NULL, &w), -1);
}

static void test_closed(void **state) {
    (void)state;
    window_t w = window_of(WINDOW_HOUR, T10);
    int64_t grace = 300000;
    assert_false(window_closed(&w, T10 + 3600000, grace));
    assert_false(window_closed(&w, T10 + 3600000 + grace - 1, grace));
    assert_true(window_closed(&w, T10 + 3600000 + grace, grace));
    window_t all = window_of(WINDOW_ALL, T10);
    assert_false(window_closed(&all, INT64_MAX / 2, grace));
    window_kind_t k;
    assert_int_equal(window_kind_parse("day", &k), 0);
    assert_int_equal(k, WINDOW_DAY);
    assert_string_equal(window_kind_name(WINDOW_ALL), "all");
    assert_int_equal(window_kind_parse("week", &k), -1);
}

static void test_kappa(void **state) {
    (void)state;
    /* 50 items: both accept 20, first accepts/second rejects 5, the reverse
     * 10, both reject 15.  po = 35/50 = 0.7; the first accepts 25/50, the
     * second 30/50, so pe = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = 0.2/0.5. */
    assert_float_equal(stats_kappa(20, 5, 10, 15), 0.4, 1e-12);
    /* Always opposite on a balanced set: po = 0, pe = 0.5, kappa = -1. */
    assert_float_equal(stats_kappa(0, 2, 2, 0), -1.0, 1e-12);
    /* Full agreement over both classes: 1. */
    assert_float_equal(stats_kappa(3, 0, 0, 2), 1.0, 1e-12);
    /* Everything accepted by both: chance agreement is total; read as 1. */
    assert_float_equal(stats_kappa(4, 0, 0, 0), 1.0, 1e-12);
    /* Agreement no better than chance: a = (1,1,1,1): po = 0.5, pe = 0.5. */
    assert_float_equal(stats_kappa(1, 1, 1, 1), 0.0, 1e-12);
    assert_float_equal(stats_kappa(0, 0, 0, 0), 0.0, 1e-12);
    assert_float_equal(stats_ratio(1, 0), 0.0, 0);
    assert_float_equal(stats_ratio(3, 4), 0.75, 1e-12);
}

static void test_hist_buckets(void **state) {
    (void)state;
    assert_int_equal(stats_hist_bucket(0), 0);
    assert_int_equal(stats_hist_bucket(-5), 0);
    assert_int_equal(stats_hist_bucket(1), 0);
    assert_int_equal(stats_hist_bucket(1.0001), 1);
    assert_int_equal(stats_hist_bucket(2), 4); /* 2 = 2^(4/4): the top of bucket 4 */
    assert_int_equal(stats_hist_bucket(2.0001), 5);
    assert_int_equal(stats_hist_bucket(1024), 40);
    assert_int_equal(stats_hist_bucket(1e30), STATS_HIST_BUCKETS - 1);
    assert_int_equal(stats_hist_bucket(NAN), 0);
    for (int i = 1; i < STATS_HIST_BUCKETS - 1; i++) {
        assert_int_equal(stats_hist_bucket(stats_hist_upper(i)), i);
        assert_int_equal(stats_hist_bucket(stats_hist_upper(i) * 1.0000001), i + 1);
    }
}

static void test_hist_quantiles(void **state) {
    (void)state;
    int64_t h[STATS_HIST_BUCKETS] = {0};
    assert_float_equal(stats_hist_quantile(h, 0.5, 0, 0), 0.0, 0);
    /* Ten equal values: every quantile is the value itself (clamped). */
    h[stats_hist_bucket(100)] = 10;
    assert_float_equal(stats_hist_quantile(h, 0.5, 100, 100), 100.0, 0);
    assert_float_equal(stats_hist_quantile(h, 0.99, 100, 100), 100.0, 0);
    /* 1..100 ms: the 50th value is 50, known to within a bucket (19 %). */
    memset(h, 0, sizeof(h));
    for (int v = 1; v <= 100; v++) h[stats_hist_bucket(v)]++;
    double p50 = stats_hist_quantile(h, 0.5, 1, 100);
    assert_true(p50 >= 50 && p50 <= 50 * 1.19);
    double p90 = stats_hist_quantile(h, 0.9, 1, 100);
    assert_true(p90 >= 90 && p90 <= 100);
    /* The top quantile never exceeds the true maximum. */
    assert_float_equal(stats_hist_quantile(h, 1.0, 1, 100), 100.0, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hour_edges),  cmocka_unit_test(test_day_edges),
        cmocka_unit_test(test_cohort_day),  cmocka_unit_test(test_closed),
        cmocka_unit_test(test_kappa),       cmocka_unit_test(test_hist_buckets),
        cmocka_unit_test(test_hist_quantiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
