/* Unit tests of annot-metrics' contributions (services/annot-metrics/
 * contrib.c, series.c) over hand-computed examples: quality per dimension
 * and version, an event late by an hour landing in its own window, a
 * double-validation pair's agreement cells, auto-check precision and
 * recall per rule, the funnel by cohort day with time in stage, lease
 * health and heartbeat gaps, hot spots, and bad events refused with the
 * field named.  The modules are compiled in by including their .c (see
 * test_lease_policy.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>

#include "event.h"
#include "../../services/annot-metrics/contrib.c"
#include "../../services/annot-metrics/series.c"
#include "../../services/annot-metrics/stats.c"
#include "../../services/annot-metrics/window.c"
#include "utf8.h"

#define T10 1795773600000LL /* 2026-11-27T10:00:00Z */
#define H 3600000LL

static char errstr[256];

static bool is_checker(void *opaque, const char *cat) {
    (void)opaque;
    return strcmp(cat, "factual_error") != 0 && strcmp(cat, "other") != 0;
}

static contrib_t ctx(series_batch_t *b, const char *gv) {
    return (contrib_t){b, gv, 0, is_checker, NULL, false};
}

/* The point (metric, window of kind holding ts, gv, labels), or NULL. */
static const series_value_t *point(series_batch_t *b, const char *metric, window_kind_t kind, int64_t ts,
                                   const char *gv, const char *labels) {
    window_t w = window_of(kind, ts);
    for (size_t i = 0; i < series_batch_count(b); i++) {
        const series_key_t *k = series_batch_key(b, i);
        if (strcmp(k->metric, metric) == 0 && k->window.kind == kind && k->window.start_ms == w.start_ms &&
            strcmp(k->gv, gv) == 0 && strcmp(k->labels, labels) == 0)
            return series_batch_value(b, i);
    }
    return NULL;
}

typedef struct result_spec {
    const char *validator, *author, *locale;
    Annot__V1__Verdict verdict;
    double score;
    int64_t at;
    const char *const *errors; /* categories, NULL-terminated */
    const char *const *findings;
    Annot__V1__Role role;
} result_spec_t;

/* Builds a ValidationResultEvent in the caller's storage. */
typedef struct result_ev {
    Annot__V1__EventHeader hdr;
    Annot__V1__ValidationResult r;
    Annot__V1__ValidationResultEvent ev;
    Annot__V1__ValidationError err[8];
    Annot__V1__ValidationError *errp[8];
    Annot__V1__Finding find[8];
    Annot__V1__Finding *findp[8];
} result_ev_t;

static void result_build(result_ev_t *e, const result_spec_t *s) {
    annot__v1__event_header__init(&e->hdr);
    annot__v1__validation_result__init(&e->r);
    annot__v1__validation_result_event__init(&e->ev);
    e->ev.header = &e->hdr;
    e->ev.result = &e->r;
    e->r.validator_id = (char *)s->validator;
    e->r.author_id = (char *)s->author;
    e->r.locale = (char *)s->locale;
    e->r.verdict = s->verdict;
    e->r.score = s->score;
    e->r.validated_at_ms = s->at;
    e->r.submitted_at_ms = s->at - 60000;
    e->r.task_kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    e->r.author_role = s->role ? s->role : ANNOT__V1__ROLE__ROLE_ANNOTATOR;
    for (size_t i = 0; s->errors && s->errors[i]; i++) {
        annot__v1__validation_error__init(&e->err[i]);
        e->err[i].category = (char *)s->errors[i];
        e->err[i].severity = strcmp(s->errors[i], "factual_error") == 0 ? ANNOT__V1__SEVERITY__SEVERITY_CRITICAL
                                                                         : ANNOT__V1__SEVERITY__SEVERITY_MINOR;
        e->err[i].section = strcmp(s->errors[i], "subjective_language") == 0 ? "3.1" : "";
        e->errp[i] = &e->err[i];
        e->r.n_errors = i + 1;
    }
    e->r.errors = e->errp;
    for (size_t i = 0; s->findings && s->findings[i]; i++) {
        annot__v1__finding__init(&e->find[i]);
        e->find[i].rule = (char *)s->findings[i];
        e->findp[i] = &e->find[i];
        e->r.n_check_findings = i + 1;
    }
    e->r.check_findings = e->findp;
}

static void test_quality_by_dimension_and_version(void **state) {
    (void)state;
    series_batch_t *b = series_batch_new();
    contrib_t c = ctx(b, "g1");
    static const char *const subj[] = {"subjective_language", NULL};
    static const char *const fact[] = {"factual_error", NULL};
    result_spec_t specs[3] = {
        {"v1", "a1", "ja-JP", ANNOT__V1__VERDICT__VERDICT_ACCEPT, 0.95, T10 + 60000, subj, NULL, 0},
        {"v1", "a2", "en-US", ANNOT__V1__VERDICT__VERDICT_REJECT, 0.0, T10 + 120000, fact, NULL, 0},
        {"v2", "a1", "ja-JP", ANNOT__V1__VERDICT__VERDICT_ACCEPT, 1.0, T10 + 180000, NULL, NULL, 0},
    };
    for (int i = 0; i < 3; i++) {
        result_ev_t e;
        result_build(&e, &specs[i]);
        assert_int_equal(contrib_validation(&c, &e.ev, NULL, errstr, sizeof(errstr)), 0);
    }
    /* Overall: 3 validated, 2 accepted, 1 rejected, 1 critical; mean
     * (0.95 + 0 + 1) / 3 = 0.65. */
    for (int k = 0; k < WINDOW_KIND_COUNT; k++) {
        for (int g = 0; g < 2; g++) {
            const series_value_t *v = point(b, METRIC_QUALITY, (window_kind_t)k, T10, g ? "" : "g1", "{}");
            assert_non_null(v);
            assert_int_equal(v->c[0], 3);
            assert_int_equal(v->c[1], 2);
            assert_int_equal(v->c[2], 1);
            assert_int_equal(v->c[3], 1);
            assert_float_equal(v->sum / v->c[0], 0.65, 1e-12);
        }
    }
    const series_value_t *a1 = point(b, METRIC_QUALITY, WINDOW_HOUR, T10, "g1", "{\"annotator\":\"a1\"}");
    assert_non_null(a1);
    assert_int_equal(a1->c[0], 2);
    assert_float_equal(a1->sum / 2, 0.975, 1e-12);
    const series_value_t *en = point(b, METRIC_QUALITY, WINDOW_DAY, T10, "", "{\"locale\":\"en-US\"}");
    assert_non_null(en);
    assert_int_equal(en->c[0], 1);
    assert_float_equal(en->sum, 0.0, 0);
    assert_non_null(point(b, METRIC_QUALITY, WINDOW_ALL, T10, "g1", "{\"task_kind\":\"production\"}"));
    /* The validator's section citation is a hot spot error. */
    const series_value_t *hot = point(b, METRIC_HOTSPOT, WINDOW_HOUR, T10, "g1", "{\"section\":\"3.1\"}");
    assert_non_null(hot);
    assert_int_equal(hot->c[0], 0);
    assert_int_equal(hot->c[1], 1);
    /* Throughput and latency of the validated step: 3 items, 60 s each. */
    const series_value_t *thr = point(b, METRIC_THROUGHPUT, WINDOW_HOUR, T10, "g1", "{\"step\":\"validated\"}");
    assert_non_null(thr);
    assert_int_equal(thr->c[0], 3);
    const series_value_t *lat = point(b, METRIC_LATENCY, WINDOW_HOUR, T10, "g1", "{\"step\":\"validated\"}");
    assert_non_null(lat);
    assert_int_equal(lat->c[0], 3);
    assert_float_equal(lat->vmin, 60000, 0);
    assert_float_equal(lat->vmax, 60000, 0);
    series_batch_destroy(b);
}

static void test_exam_work_is_not_quality(void **state) {
    (void)state;
    series_batch_t *b = series_batch_new();
    contrib_t c = ctx(b, "");
    result_spec_t s = {"v1", "cand", "ja-JP", ANNOT__V1__VERDICT__VERDICT_REJECT, 0.2, T10, NULL, NULL,
                       ANNOT__V1__ROLE__ROLE_CANDIDATE};
    result_ev_t e;
    result_build(&e, &s);
    assert_int_equal(contrib_validation(&c, &e.ev, NULL, errstr, sizeof(errstr)), 0);
    assert_null(point(b, METRIC_QUALITY, WINDOW_HOUR, T10, "", "{}"));
    /* No version: only the all-versions points. */
    assert_non_null(point(b, METRIC_THROUGHPUT, WINDOW_HOUR, T10, "", "{\"step\":\"validated\"}"));
    series_batch_destroy(b);
}

static void test_late_event_lands_in_its_window(void **state) {
    (void)state;
    series_batch_t *b = series_batch_new();
    contrib_t c = ctx(b, "g1");
    result_spec_t now = {"v1", "a1", "ja-JP", ANNOT__V1__VERDICT__VERDICT_ACCEPT, 1.0, T10 + 5, NULL, NULL, 0};
    result_spec_t late = {"v1", "a1", "ja-JP", ANNOT__V1__VERDICT__VERDICT_REJECT, 0.5, T10 - 1, NULL, NULL, 0};
    result_ev_t e;
    result_build(&e, &now);
    assert_int_equal(contrib_validation(&c, &e.ev, NULL, errstr, sizeof(errstr)), 0);
    result_build(&e, &late);
    assert_int_equal(contrib_validation(&c, &e.ev, NULL, errstr, sizeof(errstr)), 0);
    /* 09:59:59.999 belongs to the 09:00 hour, not to 10:00. */
    const series_value_t *h10 = point(b, METRIC_QUALITY, WINDOW_HOUR, T10, "g1", "{}");
    const series_value_t *h09 = point(b, METRIC_QUALITY, WINDOW_HOUR, T10 - H, "g1", "{}");
    assert_int_equal(h10->c[0], 1);
    assert_float_equal(h10->sum, 1.0, 0);
    assert_int_equal(h09->c[0], 1);
    assert_float_equal(h09->sum, 0.5, 0);
    /* Same day, so the day and all-time points hold both. */
    assert_int_equal(point(b, METRIC_QUALITY, WINDOW_DAY, T10, "g1", "{}")->c[0], 2);
    assert_int_equal(point(b, METRIC_QUALITY, WINDOW_ALL, T10, "g1", "{}")->c[0], 2);
    series_batch_destroy(b);
}

static void test_agreement_cells(void **state) {
    (void)state;
    series_batch_t *b = series_batch_new();
    contrib_t c = ctx(b, "g1");
    /* v1 accepted with 1.0 earlier; v2 now rejects with 0.6. */
    contrib_half_t first = {"v1", ANNOT__V1__VERDICT__VERDICT_ACCEPT, 1.0};
    result_spec_t s = {"v2", "a1", "ja-JP", ANNOT__V1__VERDICT__VERDICT_REJECT, 0.6, T10, NULL, NULL, 0};
    result_ev_t e;
    result_build(&e, &s);
    assert_int_equal(contrib_validation(&c, &e.ev, &first, errstr, sizeof(errstr)), 0);
    const series_value_t *all = point(b, METRIC_AGREEMENT, WINDOW_HOUR, T10, "g1", "{}");
    assert_non_null(all);
    assert_int_equal(all->c[0], 1); /* pairs */
    assert_int_equal(all->c[1], 0); /* agreed */
    assert_int_equal(all->c[3], 1); /* first accepts, second rejects */
    assert_int_equal(all->c[2] + all->c[4] + all->c[5], 0);
    assert_float_equal(all->sum, 0.4, 1e-12);
    /* Per validator, the named validator is the first rater. */
    const series_value_t *v1 = point(b, METRIC_AGREEMENT, WINDOW_HOUR, T10, "g1", "{\"validator\":\"v1\"}");
    const series_value_t *v2 = point(b, METRIC_AGREEMENT, WINDOW_HOUR, T10, "g1", "{\"validator\":\"v2\"}");
    assert_int_equal(v1->c[3], 1);
    assert_int_equal(v2->c[4], 1);
    assert_int_equal(v2->c[3], 0);
    /* A second pair, both accept: kappa over (aa 1, ar 1) is 0 (the second
     * rater's split is all chance), agreement 1 of 2. */
    contrib_half_t f2 = {"v1", ANNOT__V1__VERDICT__VERDICT_ACCEPT, 1.0};
    result_spec_t s2 = {"v2", "a2", "ja-JP", ANNOT__V1__VERDICT__VERDICT_ACCEPT, 1.0, T10 + 1, NULL, NULL, 0};
    result_build(&e, &s2);
    assert_int_equal(contrib_validation(&c, &e.ev, &f2, errstr, sizeof(errstr)), 0);
    all = point(b, METRIC_AGREEMENT, WINDOW_HOUR, T10, "g1", "{}"); /* points move as the batch grows */
    assert_int_equal(all->c[0], 2);
    assert_int_equal(all->c[1], 1);
    assert_float_equal(stats_kappa(all->c[2], all->c[3], all->c[4], all->c[5]), 0.0, 1e-12);
    assert_float_equal(all->sum / all->c[0], 0.2, 1e-12);
    series_batch_destroy(b);
}

static void test_precision_and_recall(void **state) {
    (void)state;
    series_batch_t *b = series_batch_new();
    contrib_t c = ctx(b, "g1");
    static const char *const findings[] = {"subjective_language", "length", "subjective_language", NULL};
    static const char *const errors[] = {"subjective_language", "relation_missing", "factual_error", NULL};
    result_spec_t s = {"v1", "a1", "ja-JP", ANNOT__V1__VERDICT__VERDICT_REJECT, 0.7, T10, errors, findings, 0};
    result_ev_t e;
    result_build(&e, &s);
    assert_int_equal(contrib_validation(&c, &e.ev, NULL, errstr, sizeof(errstr)), 0);
    const series_value_t *subj = point(b, METRIC_PRECISION, WINDOW_HOUR, T10, "g1", "{\"rule\":\"subjective_language\"}");
    assert_int_equal(subj->c[0], 1); /* flagged once per submission, however many findings */
    assert_int_equal(subj->c[1], 1);
    assert_int_equal(subj->c[2], 0);
    const series_value_t *len = point(b, METRIC_PRECISION, WINDOW_HOUR, T10, "g1", "{\"rule\":\"length\"}");
    assert_int_equal(len->c[0], 1);
    assert_int_equal(len->c[1], 0);
    const series_value_t *rel = point(b, METRIC_PRECISION, WINDOW_HOUR, T10, "g1", "{\"rule\":\"relation_missing\"}");
    assert_int_equal(rel->c[0], 0);
    assert_int_equal(rel->c[2], 1);
    /* A validator-only category is not the checker's miss. */
    assert_null(point(b, METRIC_PRECISION, WINDOW_HOUR, T10, "g1", "{\"rule\":\"factual_error\"}"));
    const series_value_t *all = point(b, METRIC_PRECISION, WINDOW_HOUR, T10, "g1", "{}");
    assert_int_equal(all->c[0], 2);
    assert_int_equal(all->c[1], 1);
    assert_int_equal(all->c[2], 1);
    /* precision 1/2, recall 1/2 */
    series_batch_destroy(b);
}

static void test_funnel_by_cohort(void **state) {
    (void)state;
    series_batch_t *b = series_batch_new();
    contrib_t c = ctx(b, "g1");
    Annot__V1__EventHeader hdr = ANNOT__V1__EVENT_HEADER__INIT;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.header = &hdr;
    ev.candidate_id = "c1";
    Annot__V1__CandidateApplied ap = ANNOT__V1__CANDIDATE_APPLIED__INIT;
    ap.cohort_day = "2026-11-20";
    ap.applied_at_ms = T10;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED;
    ev.applied = &ap;
    assert_int_equal(contrib_candidate(&c, &ev, NULL, errstr, sizeof(errstr)), 0);
    window_t cohort;
    window_of_day("2026-11-20", &cohort);
    const series_value_t *applied =
        point(b, METRIC_FUNNEL, WINDOW_DAY, cohort.start_ms, "g1", "{\"stage\":\"applied\"}");
    assert_non_null(applied);
    assert_int_equal(applied->c[0], 1);
    /* No hour window for cohorts. */
    assert_null(point(b, METRIC_FUNNEL, WINDOW_HOUR, T10, "g1", "{\"stage\":\"applied\"}"));

    /* Entered exam 1 without a cohort day on the event: the recorded cohort. */
    Annot__V1__StageEntered se = ANNOT__V1__STAGE_ENTERED__INIT;
    se.stage = ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_EXAM1;
    se.entered_at_ms = T10 + H;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_ENTERED;
    ev.stage_entered = &se;
    contrib_entry_t known = {T10, "2026-11-20"};
    assert_int_equal(contrib_candidate(&c, &ev, &known, errstr, sizeof(errstr)), 0);
    /* Decided 2 h after entering: passed, 7,200 s in the stage. */
    Annot__V1__StageDecided sd = ANNOT__V1__STAGE_DECIDED__INIT;
    sd.stage = ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_EXAM1;
    sd.passed = true;
    sd.decided_at_ms = T10 + 3 * H;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_DECIDED;
    ev.stage_decided = &sd;
    contrib_entry_t entry = {T10 + H, "2026-11-20"};
    assert_int_equal(contrib_candidate(&c, &ev, &entry, errstr, sizeof(errstr)), 0);
    /* Another candidate of the same cohort fails it, entry unknown. */
    sd.passed = false;
    contrib_entry_t cohort_only = {0, "2026-11-20"};
    assert_int_equal(contrib_candidate(&c, &ev, &cohort_only, errstr, sizeof(errstr)), 0);
    const series_value_t *exam =
        point(b, METRIC_FUNNEL, WINDOW_DAY, cohort.start_ms, "", "{\"stage\":\"exam1\"}");
    assert_non_null(exam);
    assert_int_equal(exam->c[0], 1);
    assert_int_equal(exam->c[1], 1);
    assert_int_equal(exam->c[2], 1);
    assert_int_equal(exam->c[3], 1);
    assert_float_equal(exam->sum, 2.0 * H, 0);
    assert_int_equal(point(b, METRIC_FUNNEL, WINDOW_ALL, 0, "g1", "{\"stage\":\"exam1\"}")->c[1], 1);

    ap.cohort_day = "2026-11-31";
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED;
    ev.applied = &ap; /* a oneof: one union member at a time */
    assert_int_equal(contrib_candidate(&c, &ev, NULL, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "2026-11-31"));
    series_batch_destroy(b);
}

static void test_leases_and_heartbeat_gaps(void **state) {
    (void)state;
    series_batch_t *b = series_batch_new();
    contrib_t c = ctx(b, "");
    Annot__V1__EventHeader hdr = ANNOT__V1__EVENT_HEADER__INIT;
    Annot__V1__LeaseEvent ev = ANNOT__V1__LEASE_EVENT__INIT;
    ev.header = &hdr;
    ev.queue = ANNOT__V1__QUEUE__QUEUE_ANNOTATION;
    Annot__V1__LeaseGranted g = ANNOT__V1__LEASE_GRANTED__INIT;
    g.granted_at_ms = T10;
    ev.event_case = ANNOT__V1__LEASE_EVENT__EVENT_GRANTED;
    ev.granted = &g;
    for (int i = 0; i < 4; i++) assert_int_equal(contrib_lease(&c, &ev, NULL, errstr, sizeof(errstr)), 0);
    Annot__V1__LeaseExpired x = ANNOT__V1__LEASE_EXPIRED__INIT;
    x.expires_at_ms = T10 + 1000;
    ev.event_case = ANNOT__V1__LEASE_EVENT__EVENT_EXPIRED;
    ev.expired = &x;
    assert_int_equal(contrib_lease(&c, &ev, NULL, errstr, sizeof(errstr)), 0);
    Annot__V1__LeaseReleased r = ANNOT__V1__LEASE_RELEASED__INIT;
    r.released_at_ms = T10 + 2000;
    r.reason = ANNOT__V1__RELEASE_REASON__RELEASE_REASON_SUBMITTED;
    ev.event_case = ANNOT__V1__LEASE_EVENT__EVENT_RELEASED;
    ev.released = &r;
    assert_int_equal(contrib_lease(&c, &ev, NULL, errstr, sizeof(errstr)), 0);
    /* A heartbeat 30 s after the grant, then one seen 60 s later that is
     * the third: two heartbeats in 60 s, a gap of 30 s each. */
    Annot__V1__LeaseHeartbeat hb = ANNOT__V1__LEASE_HEARTBEAT__INIT;
    hb.heartbeat_at_ms = T10 + 30000;
    hb.heartbeat_count = 1;
    ev.event_case = ANNOT__V1__LEASE_EVENT__EVENT_HEARTBEAT;
    ev.heartbeat = &hb;
    contrib_beat_t grant = {T10, 0};
    assert_int_equal(contrib_lease(&c, &ev, &grant, errstr, sizeof(errstr)), 0);
    hb.heartbeat_at_ms = T10 + 90000;
    hb.heartbeat_count = 3;
    contrib_beat_t first = {T10 + 30000, 1};
    assert_int_equal(contrib_lease(&c, &ev, &first, errstr, sizeof(errstr)), 0);
    const char *lb = "{\"queue\":\"annotation\"}";
    const series_value_t *h = point(b, METRIC_LEASE, WINDOW_HOUR, T10, "", lb);
    assert_int_equal(h->c[0], 4);
    assert_int_equal(h->c[1], 1);
    assert_int_equal(h->c[3], 1);
    assert_int_equal(h->c[5], 2);
    assert_float_equal(stats_ratio((double)h->c[1], (double)h->c[0]), 0.25, 0);
    const series_value_t *gap = point(b, METRIC_HEARTBEAT_GAP, WINDOW_HOUR, T10, "", lb);
    assert_int_equal(gap->c[0], 2);
    assert_float_equal(gap->vmin, 30000, 0);
    assert_float_equal(gap->vmax, 30000, 0);
    ev.queue = ANNOT__V1__QUEUE__QUEUE_UNSPECIFIED;
    assert_int_equal(contrib_lease(&c, &ev, NULL, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "queue"));
    series_batch_destroy(b);
}

static void test_feedback_hotspots(void **state) {
    (void)state;
    series_batch_t *b = series_batch_new();
    contrib_t c = ctx(b, "g2");
    Annot__V1__EventHeader hdr = ANNOT__V1__EVENT_HEADER__INIT;
    Annot__V1__GuidelineFeedback f = ANNOT__V1__GUIDELINE_FEEDBACK__INIT;
    Annot__V1__GuidelineFeedbackEvent ev = ANNOT__V1__GUIDELINE_FEEDBACK_EVENT__INIT;
    ev.header = &hdr;
    ev.feedback = &f;
    ev.created_at_ms = T10;
    f.section = "4.1";
    f.kind = ANNOT__V1__FEEDBACK_KIND__FEEDBACK_KIND_AMBIGUITY;
    assert_int_equal(contrib_feedback(&c, &ev, errstr, sizeof(errstr)), 0);
    assert_int_equal(contrib_feedback(&c, &ev, errstr, sizeof(errstr)), 0);
    f.kind = ANNOT__V1__FEEDBACK_KIND__FEEDBACK_KIND_EDGE_CASE;
    assert_int_equal(contrib_feedback(&c, &ev, errstr, sizeof(errstr)), 0);
    assert_int_equal(point(b, METRIC_HOTSPOT, WINDOW_DAY, T10, "g2", "{\"kind\":\"ambiguity\",\"section\":\"4.1\"}")->c[0], 2);
    assert_int_equal(point(b, METRIC_HOTSPOT, WINDOW_DAY, T10, "g2", "{\"kind\":\"edge_case\",\"section\":\"4.1\"}")->c[0], 1);
    assert_int_equal(point(b, METRIC_HOTSPOT, WINDOW_DAY, T10, "g2", "{\"section\":\"4.1\"}")->c[0], 3);
    f.kind = ANNOT__V1__FEEDBACK_KIND__FEEDBACK_KIND_UNSPECIFIED;
    assert_int_equal(contrib_feedback(&c, &ev, errstr, sizeof(errstr)), -1);
    series_batch_destroy(b);
}

static void test_bad_events_named(void **state) {
    (void)state;
    series_batch_t *b = series_batch_new();
    contrib_t c = ctx(b, "");
    result_spec_t s = {"v1", "a1", "ja-JP", ANNOT__V1__VERDICT__VERDICT_UNSPECIFIED, 1.0, T10, NULL, NULL, 0};
    result_ev_t e;
    result_build(&e, &s);
    assert_int_equal(contrib_validation(&c, &e.ev, NULL, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "verdict"));
    s.verdict = ANNOT__V1__VERDICT__VERDICT_ACCEPT;
    s.score = 1.5;
    result_build(&e, &s);
    assert_int_equal(contrib_validation(&c, &e.ev, NULL, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "score"));
    s.score = 1.0;
    s.at = 0;
    result_build(&e, &s);
    assert_int_equal(contrib_validation(&c, &e.ev, NULL, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "validated_at_ms"));
    s.at = 253402300800000LL;
    result_build(&e, &s);
    assert_int_equal(contrib_validation(&c, &e.ev, NULL, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "9999"));
    s.at = 0;
    result_build(&e, &s);
    /* The header's time stands in for a missing own time. */
    c.occurred_at_ms = T10;
    assert_int_equal(contrib_validation(&c, &e.ev, NULL, errstr, sizeof(errstr)), 0);
    Annot__V1__TaskEvent t = ANNOT__V1__TASK_EVENT__INIT;
    assert_int_equal(contrib_task(&c, &t, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "task"));
    series_batch_destroy(b);
}

static void test_labels_and_batch(void **state) {
    (void)state;
    char out[SERIES_LABELS_MAX];
    const char *keys[2] = {"kind", "section"}, *vals[2] = {"ambiguity", "say \"hi\"\n"};
    assert_int_equal(series_labels(out, sizeof(out), 2, keys, vals), 0);
    assert_string_equal(out, "{\"kind\":\"ambiguity\",\"section\":\"say \\\"hi\\\"\\u000a\"}");
    assert_int_equal(series_labels(out, 8, 2, keys, vals), -1);
    assert_string_equal(out, "{}");
    /* Many points: the index grows and every point stays findable. */
    series_batch_t *b = series_batch_new();
    series_key_t k = {.metric = "m", .gv = ""};
    for (int i = 0; i < 5000; i++) {
        snprintf(k.labels, sizeof(k.labels), "{\"i\":\"%d\"}", i);
        series_batch_get(b, &k)->c[0] += i;
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(k.labels, sizeof(k.labels), "{\"i\":\"%d\"}", i);
        series_batch_get(b, &k)->c[1]++;
    }
    assert_int_equal(series_batch_count(b), 5000);
    assert_int_equal(series_batch_value(b, 4999)->c[0], 4999);
    assert_int_equal(series_batch_value(b, 4999)->c[1], 1);
    series_batch_reset(b);
    assert_int_equal(series_batch_count(b), 0);
    assert_int_equal(series_batch_get(b, &k)->c[0], 0);
    series_batch_destroy(b);
}

static void test_strings_must_be_utf8(void **state) {
    (void)state;
    static const char *const two[] = {"subjective_language", "relation_missing", NULL};
    result_spec_t s = {"v1", "a1", "ja-JP", ANNOT__V1__VERDICT__VERDICT_ACCEPT, 1.0, T10, two, NULL, 0};
    result_ev_t e;
    result_build(&e, &s);
    e.hdr.guideline_version = "2026.11";
    assert_int_equal(utf8_proto_strings_valid(&e.ev.base, errstr, sizeof(errstr)), 0);
    e.err[1].section = "4.\xff";
    assert_int_equal(utf8_proto_strings_valid(&e.ev.base, errstr, sizeof(errstr)), -1);
    assert_string_equal(errstr, "result.errors[1].section is not valid UTF-8");
    e.err[1].section = "4.1";
    e.hdr.guideline_version = "g\xc3"; /* a truncated two-byte sequence */
    assert_int_equal(utf8_proto_strings_valid(&e.ev.base, errstr, sizeof(errstr)), -1);
    assert_string_equal(errstr, "header.guideline_version is not valid UTF-8");
    e.hdr.guideline_version = "版本 3";
    assert_int_equal(utf8_proto_strings_valid(&e.ev.base, errstr, sizeof(errstr)), 0);

    /* Only the oneof member that is set is looked at. */
    Annot__V1__EventHeader hdr = ANNOT__V1__EVENT_HEADER__INIT;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    Annot__V1__CandidateApplied ap = ANNOT__V1__CANDIDATE_APPLIED__INIT;
    ev.header = &hdr;
    ev.candidate_id = "c1";
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED;
    ev.applied = &ap;
    ap.name = "Ann\x80";
    assert_int_equal(utf8_proto_strings_valid(&ev.base, errstr, sizeof(errstr)), -1);
    assert_string_equal(errstr, "applied.name is not valid UTF-8");
    ap.name = "Ann";
    assert_int_equal(utf8_proto_strings_valid(&ev.base, errstr, sizeof(errstr)), 0);
}

static void test_label_too_long_is_refused(void **state) {
    (void)state;
    series_batch_t *b = series_batch_new();
    contrib_t c = ctx(b, "g1");
    char locale[400];
    memset(locale, 'x', sizeof(locale) - 1);
    locale[sizeof(locale) - 1] = '\0';
    result_spec_t s = {"v1", "a1", locale, ANNOT__V1__VERDICT__VERDICT_ACCEPT, 1.0, T10, NULL, NULL, 0};
    result_ev_t e;
    result_build(&e, &s);
    assert_int_equal(contrib_validation(&c, &e.ev, NULL, errstr, sizeof(errstr)), 0);
    /* The caller refuses the event; it never merges into "{}". */
    assert_true(c.overflow);
    series_batch_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quality_by_dimension_and_version),
        cmocka_unit_test(test_exam_work_is_not_quality),
        cmocka_unit_test(test_late_event_lands_in_its_window),
        cmocka_unit_test(test_agreement_cells),
        cmocka_unit_test(test_precision_and_recall),
        cmocka_unit_test(test_funnel_by_cohort),
        cmocka_unit_test(test_leases_and_heartbeat_gaps),
        cmocka_unit_test(test_feedback_hotspots),
        cmocka_unit_test(test_bad_events_named),
        cmocka_unit_test(test_labels_and_batch),
        cmocka_unit_test(test_strings_must_be_utf8),
        cmocka_unit_test(test_label_too_long_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
