/* Unit tests of annot-metrics' publication (services/annot-metrics/
 * publish.c): a rollup row becomes the MetricEvent an analyst reads, with
 * the headline value computed from the totals (kappa, rates, quantiles),
 * sorted labels, the window, and an id that is the same for the same
 * revision and differs for the next one or for the final publication. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include "../../services/annot-metrics/contrib.c"
#include "../../services/annot-metrics/publish.c"
#include "../../services/annot-metrics/series.c"
#include "../../services/annot-metrics/stats.c"
#include "../../services/annot-metrics/window.c"
#include "annot/v1/metric.pb-c.h"

#define T10 1795773600000LL

static char errstr[256];

static rollup_row_t *row_new(const char *metric, window_kind_t kind, const char *labels) {
    static rollup_row_t row;
    memset(&row, 0, sizeof(row));
    snprintf(row.metric, sizeof(row.metric), "%s", metric);
    row.window = window_of(kind, T10);
    snprintf(row.gv, sizeof(row.gv), "g1");
    snprintf(row.labels, sizeof(row.labels), "%s", labels);
    row.value.vmin = row.value.vmax = NAN;
    row.revision = 3;
    return &row;
}

static Annot__V1__MetricEvent *pack_unpack(const rollup_row_t *row) {
    publish_opts_t opts = {"annot-metrics", 0.95, T10 + 5};
    uint8_t *buf;
    size_t len;
    assert_int_equal(publish_pack(row, &opts, &buf, &len, errstr, sizeof(errstr)), 0);
    Annot__V1__MetricEvent *ev = annot__v1__metric_event__unpack(NULL, len, buf);
    free(buf);
    assert_non_null(ev);
    return ev;
}

static void test_agreement_event(void **state) {
    (void)state;
    rollup_row_t *row = row_new(METRIC_AGREEMENT, WINDOW_HOUR, "{\"validator\": \"v1\"}");
    int64_t c[6] = {50, 35, 20, 5, 10, 15};
    memcpy(row->value.c, c, sizeof(c));
    row->value.sum = 5.0;
    Annot__V1__MetricEvent *ev = pack_unpack(row);
    assert_string_equal(ev->name, "validator.agreement");
    assert_string_equal(ev->header->source, "annot-metrics");
    assert_string_equal(ev->header->guideline_version, "g1");
    assert_string_equal(ev->guideline_version, "g1");
    assert_int_equal(ev->window->kind, ANNOT__V1__WINDOW_KIND__WINDOW_KIND_HOUR);
    assert_int_equal(ev->window->start_ms, T10);
    assert_int_equal(ev->window->end_ms, T10 + 3600000);
    assert_int_equal(ev->n_labels, 1);
    assert_string_equal(ev->labels[0]->key, "validator");
    assert_string_equal(ev->labels[0]->value, "v1");
    assert_float_equal(ev->value, 0.4, 1e-12);
    assert_int_equal(ev->count, 50);
    assert_int_equal(ev->revision, 3);
    assert_false(ev->final);
    assert_int_equal(ev->detail_case, ANNOT__V1__METRIC_EVENT__DETAIL_AGREEMENT);
    assert_int_equal(ev->agreement->pairs, 50);
    assert_int_equal(ev->agreement->agreed, 35);
    assert_float_equal(ev->agreement->mean_abs_score_diff, 0.1, 1e-12);
    annot__v1__metric_event__free_unpacked(ev, NULL);
}

static void test_funnel_and_hotspot_events(void **state) {
    (void)state;
    rollup_row_t *row = row_new(METRIC_FUNNEL, WINDOW_DAY, "{\"stage\": \"exam1\"}");
    row->value.c[0] = 10;
    row->value.c[1] = 4;
    row->value.c[2] = 4;
    Annot__V1__MetricEvent *ev = pack_unpack(row);
    assert_string_equal(ev->funnel->cohort_day, "2026-11-27");
    assert_int_equal(ev->funnel->stage, ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_EXAM1);
    assert_float_equal(ev->funnel->pass_rate, 0.5, 0);
    assert_float_equal(ev->value, 0.5, 0);
    annot__v1__metric_event__free_unpacked(ev, NULL);

    /* PostgreSQL prints short keys first; the event sorts them. */
    row = row_new(METRIC_HOTSPOT, WINDOW_ALL, "{\"kind\": \"edge_case\", \"section\": \"4.1\"}");
    row->value.c[0] = 7;
    ev = pack_unpack(row);
    assert_int_equal(ev->window->kind, ANNOT__V1__WINDOW_KIND__WINDOW_KIND_ALL_TIME);
    assert_int_equal(ev->window->end_ms, 0);
    assert_int_equal(ev->n_labels, 2);
    assert_string_equal(ev->labels[0]->key, "kind");
    assert_string_equal(ev->labels[1]->key, "section");
    assert_string_equal(ev->hot_spot->section, "4.1");
    assert_int_equal(ev->hot_spot->kind, ANNOT__V1__FEEDBACK_KIND__FEEDBACK_KIND_EDGE_CASE);
    assert_int_equal(ev->hot_spot->feedback_count, 7);
    annot__v1__metric_event__free_unpacked(ev, NULL);
}

static void test_distribution_and_quality_events(void **state) {
    (void)state;
    rollup_row_t *row = row_new(METRIC_LATENCY, WINDOW_HOUR, "{\"step\": \"checked\"}");
    for (int v = 1; v <= 100; v++) series_value_observe(&row->value, v);
    Annot__V1__MetricEvent *ev = pack_unpack(row);
    assert_int_equal(ev->distribution->count, 100);
    assert_float_equal(ev->distribution->sum, 5050, 0);
    assert_float_equal(ev->value, 50.5, 1e-12);
    assert_float_equal(ev->distribution->min, 1, 0);
    assert_float_equal(ev->distribution->max, 100, 0);
    assert_true(ev->distribution->p50 >= 50 && ev->distribution->p50 <= 60);
    assert_float_equal(ev->distribution->p99, 100, 0);
    assert_string_equal(ev->unit, "ms");
    annot__v1__metric_event__free_unpacked(ev, NULL);
    free(row->value.hist);

    row = row_new(METRIC_QUALITY, WINDOW_DAY, "{}");
    row->value.c[0] = 4;
    row->value.c[1] = 3;
    row->value.c[2] = 1;
    row->value.sum = 3.6;
    ev = pack_unpack(row);
    assert_int_equal(ev->n_labels, 0);
    assert_float_equal(ev->quality->mean_score, 0.9, 1e-12);
    assert_float_equal(ev->quality->target, 0.95, 0);
    assert_int_equal(ev->quality->validated, 4);
    annot__v1__metric_event__free_unpacked(ev, NULL);

    row = row_new("no.such.metric", WINDOW_DAY, "{}");
    publish_opts_t opts = {"x", 0.95, 0};
    uint8_t *buf;
    size_t len;
    assert_int_equal(publish_pack(row, &opts, &buf, &len, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "no.such.metric"));
}

static void test_event_ids(void **state) {
    (void)state;
    rollup_row_t *row = row_new(METRIC_THROUGHPUT, WINDOW_HOUR, "{\"step\": \"checked\"}");
    char a[EVENT_ID_LEN], b[EVENT_ID_LEN], c[EVENT_ID_LEN], d[EVENT_ID_LEN];
    publish_event_id(row, a);
    publish_event_id(row, b);
    assert_string_equal(a, b);
    assert_true(event_id_valid(a));
    row->final = true;
    publish_event_id(row, c);
    assert_string_not_equal(a, c);
    row->final = false;
    row->revision++;
    publish_event_id(row, d);
    assert_string_not_equal(a, d);
    row->revision--;
    snprintf(row->gv, sizeof(row->gv), "g2");
    publish_event_id(row, d);
    assert_string_not_equal(a, d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agreement_event),
        cmocka_unit_test(test_funnel_and_hotspot_events),
        cmocka_unit_test(test_distribution_and_quality_events),
        cmocka_unit_test(test_event_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
