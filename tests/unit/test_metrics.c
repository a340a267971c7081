/* Unit tests of common/metrics: the exact Prometheus text a scrape of
 * /metrics returns, label escaping, series identity and exact counts under
 * concurrent updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"

static int setup(void **state) {
    *state = metrics_registry_new();
    return 0;
}

static int teardown(void **state) {
    metrics_registry_destroy(*state);
    return 0;
}

static void render_is(metrics_registry_t *reg, const char *want) {
    char *text = metrics_render(reg);
    assert_string_equal(text, want);
    free(text);
}

static void test_empty_registry_renders_nothing(void **state) {
    render_is(*state, "");
}

static void test_counter_text(void **state) {
    metrics_registry_t *reg = *state;
    metrics_series_t *c = metrics_counter(reg, "annot_events_total", "Events applied", NULL);
    metrics_inc(c);
    metrics_inc(c);
    metrics_add(c, 3);
    assert_true(metrics_value(c) == 5);
    render_is(reg,
              "# HELP annot_events_total Events applied\n"
              "# TYPE annot_events_total counter\n"
              "annot_events_total 5\n");
}

static void test_help_escaped(void **state) {
    metrics_registry_t *reg = *state;
    metrics_counter(reg, "annot_x_total", "a \\ b\nc", NULL);
    render_is(reg,
              "# HELP annot_x_total a \\\\ b\\nc\n"
              "# TYPE annot_x_total counter\n"
              "annot_x_total 0\n");
}

static void test_gauge_text(void **state) {
    metrics_registry_t *reg = *state;
    metrics_series_t *g = metrics_gauge(reg, "annot_queue_depth", "Tasks queued", "");
    metrics_set(g, 10);
    metrics_add(g, -12.5);
    assert_true(metrics_value(g) == -2.5);
    metrics_series_t *r = metrics_gauge(reg, "annot_ratio", "A fraction", NULL);
    metrics_set(r, 0.1);
    render_is(reg,
              "# HELP annot_queue_depth Tasks queued\n"
              "# TYPE annot_queue_depth gauge\n"
              "annot_queue_depth -2.5\n"
              "# HELP annot_ratio A fraction\n"
              "# TYPE annot_ratio gauge\n"
              "annot_ratio 0.1\n");
}

static void test_labels_escaped(void **state) {
    metrics_registry_t *reg = *state;
    char labels[256];
    assert_ptr_equal(metrics_labels(labels, sizeof(labels), "topic", "annot.tasks.v1", "reason",
                                    "say \"no\"\\ then\nstop", NULL),
                     labels);
    assert_string_equal(labels, "topic=\"annot.tasks.v1\",reason=\"say \\\"no\\\"\\\\ then\\nstop\"");
    metrics_series_t *c = metrics_counter(reg, "annot_dlq_total", "Dead letters", labels);
    metrics_inc(c);
    render_is(reg,
              "# HELP annot_dlq_total Dead letters\n"
              "# TYPE annot_dlq_total counter\n"
              "annot_dlq_total{topic=\"annot.tasks.v1\",reason=\"say \\\"no\\\"\\\\ then\\nstop\"} 1\n");
}

static void test_labels_truncated_safely(void **state) {
    (void)state;
    char small[12];
    memset(small, 'x', sizeof(small));
    metrics_labels(small, sizeof(small), "topic", "a-rather-long-value", NULL);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_string_equal(small, "topic=\"a-ra");
    char empty[8];
    metrics_labels(empty, sizeof(empty), NULL);
    assert_string_equal(empty, "");
}

static void test_same_series_same_pointer(void **state) {
    metrics_registry_t *reg = *state;
    metrics_series_t *a = metrics_counter(reg, "annot_x_total", "X", "topic=\"a\"");
    metrics_series_t *a2 = metrics_counter(reg, "annot_x_total", "X", "topic=\"a\"");
    metrics_series_t *b = metrics_counter(reg, "annot_x_total", "X", "topic=\"b\"");
    metrics_series_t *none = metrics_counter(reg, "annot_x_total", "X", NULL);
    metrics_series_t *none2 = metrics_counter(reg, "annot_x_total", "X", "");
    assert_ptr_equal(a, a2);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(none, none2);
    assert_ptr_not_equal(none, a);
    metrics_inc(a);
    metrics_inc(a2);
    metrics_add(b, 7);
    /* One HELP/TYPE per family; series in the order they were created. */
    render_is(reg,
              "# HELP annot_x_total X\n"
              "# TYPE annot_x_total counter\n"
              "annot_x_total{topic=\"a\"} 2\n"
              "annot_x_total{topic=\"b\"} 7\n"
              "annot_x_total 0\n");
}

static void test_histogram_text(void **state) {
    metrics_registry_t *reg = *state;
    static const double buckets[] = {0.25, 0.5, 1};
    metrics_series_t *h =
        metrics_histogram(reg, "annot_apply_seconds", "Apply time", "topic=\"t\"", buckets, 3);
    metrics_observe(h, 0.25); /* a bound is inside its bucket: le means <= */
    metrics_observe(h, 0.5);
    metrics_observe(h, 0.75);
    metrics_observe(h, 4);
    assert_true(metrics_value(h) == 4);
    metrics_series_t *bare = metrics_histogram(reg, "annot_apply_seconds", "Apply time", NULL,
                                               NULL, 0); /* buckets fixed by the first call */
    metrics_observe(bare, 0.1);
    render_is(reg,
              "# HELP annot_apply_seconds Apply time\n"
              "# TYPE annot_apply_seconds histogram\n"
              "annot_apply_seconds_bucket{topic=\"t\",le=\"0.25\"} 1\n"
              "annot_apply_seconds_bucket{topic=\"t\",le=\"0.5\"} 2\n"
              "annot_apply_seconds_bucket{topic=\"t\",le=\"1\"} 3\n"
              "annot_apply_seconds_bucket{topic=\"t\",le=\"+Inf\"} 4\n"
              "annot_apply_seconds_sum{topic=\"t\"} 5.5\n"
              "annot_apply_seconds_count{topic=\"t\"} 4\n"
              "annot_apply_seconds_bucket{le=\"0.25\"} 1\n"
              "annot_apply_seconds_bucket{le=\"0.5\"} 1\n"
              "annot_apply_seconds_bucket{le=\"1\"} 1\n"
              "annot_apply_seconds_bucket{le=\"+Inf\"} 1\n"
              "annot_apply_seconds_sum 0.1\n"
              "annot_apply_seconds_count 1\n");
}

static void test_histogram_default_buckets(void **state) {
    metrics_registry_t *reg = *state;
    metrics_series_t *h = metrics_histogram(reg, "annot_lat_seconds", "Latency", NULL, NULL, 0);
    metrics_observe(h, 0.003);
    metrics_observe(h, 20);
    /* The bounds are written as an operator types them in a query
     * (le="0.1"), not as 0.10000000000000001. */
    render_is(reg,
              "# HELP annot_lat_seconds Latency\n"
              "# TYPE annot_lat_seconds histogram\n"
              "annot_lat_seconds_bucket{le=\"0.001\"} 0\n"
              "annot_lat_seconds_bucket{le=\"0.0025\"} 0\n"
              "annot_lat_seconds_bucket{le=\"0.005\"} 1\n"
              "annot_lat_seconds_bucket{le=\"0.01\"} 1\n"
              "annot_lat_seconds_bucket{le=\"0.025\"} 1\n"
              "annot_lat_seconds_bucket{le=\"0.05\"} 1\n"
              "annot_lat_seconds_bucket{le=\"0.1\"} 1\n"
              "annot_lat_seconds_bucket{le=\"0.25\"} 1\n"
              "annot_lat_seconds_bucket{le=\"0.5\"} 1\n"
              "annot_lat_seconds_bucket{le=\"1\"} 1\n"
              "annot_lat_seconds_bucket{le=\"2.5\"} 1\n"
              "annot_lat_seconds_bucket{le=\"5\"} 1\n"
              "annot_lat_seconds_bucket{le=\"10\"} 1\n"
              "annot_lat_seconds_bucket{le=\"+Inf\"} 2\n"
              "annot_lat_seconds_sum 20.003\n"
              "annot_lat_seconds_count 2\n");
}

static void test_values_round_trip(void **state) {
    metrics_registry_t *reg = *state;
    metrics_series_t *g = metrics_gauge(reg, "g", "", NULL);
    /* 0.1 + 0.2 is not 0.3: the text must still give back the exact value. */
    metrics_set(g, 0.1 + 0.2);
    char *text = metrics_render(reg);
    const char *v = strstr(text, "\ng ");
    assert_non_null(v);
    assert_true(strtod(v + 3, NULL) == 0.1 + 0.2);
    free(text);
    metrics_set(g, 1e20);
    text = metrics_render(reg);
    v = strstr(text, "\ng ");
    assert_non_null(v);
    assert_true(strtod(v + 3, NULL) == 1e20);
    free(text);
}

static void test_families_in_registration_order(void **state) {
    metrics_registry_t *reg = *state;
    metrics_inc(metrics_counter(reg, "b_total", "B", NULL));
    metrics_set(metrics_gauge(reg, "a", "A", NULL), 1);
    render_is(reg,
              "# HELP b_total B\n# TYPE b_total counter\nb_total 1\n"
              "# HELP a A\n# TYPE a gauge\na 1\n");
}

#define THREADS 8
#define INCREMENTS 20000

static void *incrementer_run(void *arg) {
    metrics_registry_t *reg = arg;
    /* Each thread looks the series up itself, as a service's workers do. */
    metrics_series_t *c = metrics_counter(reg, "annot_hits_total", "Hits", "k=\"v\"");
    metrics_series_t *h = metrics_histogram(reg, "annot_h", "H", NULL, NULL, 0);
    for (int i = 0; i < INCREMENTS; i++) {
        metrics_inc(c);
        metrics_observe(h, 0.002);
    }
    return NULL;
}

static void test_concurrent_increments_add_up(void **state) {
    metrics_registry_t *reg = *state;
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, incrementer_run, reg), 0);
    /* A scrape in the middle must not disturb the counts. */
    free(metrics_render(reg));
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    metrics_series_t *c = metrics_counter(reg, "annot_hits_total", "Hits", "k=\"v\"");
    metrics_series_t *h = metrics_histogram(reg, "annot_h", "H", NULL, NULL, 0);
    assert_true(metrics_value(c) == THREADS * INCREMENTS);
    assert_true(metrics_value(h) == THREADS * INCREMENTS);
    char *text = metrics_render(reg);
    char want[128];
    snprintf(want, sizeof(want), "annot_hits_total{k=\"v\"} %d\n", THREADS * INCREMENTS);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof(want), "annot_h_bucket{le=\"0.0025\"} %d\n", THREADS * INCREMENTS);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof(want), "annot_h_bucket{le=\"0.001\"} 0\n");
    assert_non_null(strstr(text, want));
    free(text);
}

static void test_type_clash_aborts(void **state) {
    metrics_registry_t *reg = *state;
    metrics_counter(reg, "annot_clash", "C", NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (freopen("/dev/null", "w", stderr) == NULL) _exit(2);
        metrics_gauge(reg, "annot_clash", "C", NULL);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_type_clash_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_registry_renders_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gauge_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels_truncated_safely, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_series_same_pointer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram_default_buckets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_families_in_registration_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_increments_add_up, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
