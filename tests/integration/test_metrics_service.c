/* Integration: annot-metrics on a real stack.  A known event stream (tasks,
 * leases, a submission, its check, validation results with a blind pair,
 * feedback, candidates through exam 1, an annotator status change, a
 * duplicate and an undecodable message) goes onto the topics; the service
 * is killed with SIGKILL right after a commit, restarted, and then gets an
 * event late by an hour.  The rollups must hold exactly the hand-computed
 * figures (no double counting across the crash, the duplicate dropped, the
 * late event in its own hour), the metrics topic must carry every revision
 * of every series point and its latest values, and the bad message must be
 * dead-lettered.
 *
 * Other tests share the stack's topics, so this run writes under a
 * guideline version of its own and asserts only on that version's points
 * (the all-versions points hold whatever else the suite produced). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "annot/v1/annotator.pb-c.h"
#include "annot/v1/candidate.pb-c.h"
#include "annot/v1/check.pb-c.h"
#include "annot/v1/deadletter.pb-c.h"
#include "annot/v1/feedback.pb-c.h"
#include "annot/v1/lease.pb-c.h"
#include "annot/v1/metric.pb-c.h"
#include "annot/v1/submission.pb-c.h"
#include "annot/v1/task.pb-c.h"
#include "annot/v1/validation.pb-c.h"
#include "itest.h"

#define METRICS_BIN "bin/annot-metrics"
#define T 981194400000LL /* 2001-02-03T10:00:00Z: windows long closed */
#define MIN 60000LL

static char gv[64], schema[64], group[64], prefix[64];
static kafka_producer_t *producer;

static int setup(void **state) {
    (void)state;
    if (itest_setup("test_metrics_service") != 0) return -1;
    snprintf(prefix, sizeof(prefix), "%s-", itest_run);
    return 0;
}

/* Each test writes under a guideline version, schema and group of its own. */
static void use_names(const char *test) {
    snprintf(gv, sizeof(gv), "g-%s-%s", itest_run, test);
    snprintf(schema, sizeof(schema), "metrics_%s_%s", itest_run, test);
    snprintf(group, sizeof(group), "metrics-%s-%s", itest_run, test);
}

static int teardown(void **state) {
    (void)state;
    itest_teardown();
    return 0;
}

/* Packs any message and produces it under key; the header's id is new
 * unless id is given. */
static void send_event(const char *role, const char *key, ProtobufCMessage *msg, Annot__V1__EventHeader *hdr,
                 char *id_out) {
    static char ids[512][EVENT_ID_LEN];
    static int nids;
    char *id = ids[nids++ % 512];
    if (id_out && id_out[0]) memcpy(id, id_out, EVENT_ID_LEN);
    else event_id_new(id);
    if (id_out) memcpy(id_out, id, EVENT_ID_LEN);
    event_header_fill(hdr, id, "test", "", gv);
    hdr->occurred_at_ms = T;
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    protobuf_c_message_pack(msg, buf);
    char k[128];
    snprintf(k, sizeof(k), "%s%s", prefix, key);
    itest_produce(producer, role, k, buf, len, NULL, NULL);
    free(buf);
}

/* Ids carry the run, so runs sharing a stack (and this service's state
 * tables, when a schema is reused) never meet. */
static const char *rid(const char *id) {
    static char buf[64][96];
    static int n;
    char *b = buf[n++ % 64];
    snprintf(b, 96, "%s%s", prefix, id);
    return b;
}

static void send_task(const char *id) {
    Annot__V1__EventHeader h;
    Annot__V1__Task t = ANNOT__V1__TASK__INIT;
    t.task_id = (char *)id;
    t.kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    t.created_at_ms = T + 1 * MIN;
    Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
    ev.header = &h;
    ev.task = &t;
    send_event("tasks", id, &ev.base, &h, NULL);
}

static void send_lease(const char *lease, int what, int64_t at, uint32_t count) {
    Annot__V1__EventHeader h;
    Annot__V1__LeaseEvent ev = ANNOT__V1__LEASE_EVENT__INIT;
    ev.header = &h;
    ev.lease_id = (char *)rid(lease);
    ev.task_id = (char *)rid(lease);
    ev.queue = ANNOT__V1__QUEUE__QUEUE_ANNOTATION;
    Annot__V1__LeaseGranted g = ANNOT__V1__LEASE_GRANTED__INIT;
    Annot__V1__LeaseHeartbeat hb = ANNOT__V1__LEASE_HEARTBEAT__INIT;
    Annot__V1__LeaseExpired x = ANNOT__V1__LEASE_EXPIRED__INIT;
    Annot__V1__LeaseReleased r = ANNOT__V1__LEASE_RELEASED__INIT;
    ev.event_case = what;
    switch (what) {
    case ANNOT__V1__LEASE_EVENT__EVENT_GRANTED: g.granted_at_ms = at; ev.granted = &g; break;
    case ANNOT__V1__LEASE_EVENT__EVENT_HEARTBEAT:
        hb.heartbeat_at_ms = at;
        hb.heartbeat_count = count;
        ev.heartbeat = &hb;
        break;
    case ANNOT__V1__LEASE_EVENT__EVENT_EXPIRED: x.expires_at_ms = at; ev.expired = &x; break;
    default:
        r.released_at_ms = at;
        r.reason = ANNOT__V1__RELEASE_REASON__RELEASE_REASON_SUBMITTED;
        ev.released = &r;
        break;
    }
    send_event("leases", lease, &ev.base, &h, NULL);
}

static void send_submission_and_check(void) {
    Annot__V1__EventHeader h;
    Annot__V1__Task t = ANNOT__V1__TASK__INIT;
    t.task_id = "t1";
    t.created_at_ms = T + 1 * MIN;
    Annot__V1__Submission s = ANNOT__V1__SUBMISSION__INIT;
    s.submission_id = "s1";
    s.task_id = "t1";
    s.task_kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    s.submitted_at_ms = T + 3 * MIN;
    s.leased_at_ms = T + 2 * MIN;
    s.task = &t;
    Annot__V1__SubmissionEvent sev = ANNOT__V1__SUBMISSION_EVENT__INIT;
    sev.header = &h;
    sev.submission = &s;
    send_event("submissions", "s1", &sev.base, &h, NULL);
    Annot__V1__CheckResult c = ANNOT__V1__CHECK_RESULT__INIT;
    c.submission_id = "s1";
    c.checked_at_ms = T + 3 * MIN + 2000;
    c.submission = &s;
    Annot__V1__CheckResultEvent cev = ANNOT__V1__CHECK_RESULT_EVENT__INIT;
    cev.header = &h;
    cev.check = &c;
    send_event("checks", "s1", &cev.base, &h, NULL);
    Annot__V1__ValidationAssignment a = ANNOT__V1__VALIDATION_ASSIGNMENT__INIT;
    a.assignment_id = "as1";
    a.submission_id = "s1";
    a.assigned_at_ms = T + 3 * MIN + 5000;
    a.submitted_at_ms = T + 3 * MIN;
    Annot__V1__ValidationAssignmentEvent aev = ANNOT__V1__VALIDATION_ASSIGNMENT_EVENT__INIT;
    aev.header = &h;
    aev.assignment = &a;
    send_event("validation-assignments", "s1", &aev.base, &h, NULL);
}

typedef struct verdict {
    const char *validation_id, *submission, *validator, *author, *locale, *pair;
    Annot__V1__Verdict verdict;
    double score;
    int64_t at;
    const char *finding, *error, *section;
} verdict_t;

static void send_verdict(const verdict_t *v, char *id) {
    Annot__V1__EventHeader h;
    Annot__V1__ValidationResult r = ANNOT__V1__VALIDATION_RESULT__INIT;
    r.validation_id = (char *)rid(v->validation_id);
    r.submission_id = (char *)v->submission;
    r.validator_id = (char *)v->validator;
    r.author_id = (char *)v->author;
    r.author_role = ANNOT__V1__ROLE__ROLE_ANNOTATOR;
    r.task_kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    r.locale = (char *)v->locale;
    r.verdict = v->verdict;
    r.score = v->score;
    r.validated_at_ms = v->at;
    r.submitted_at_ms = T + 3 * MIN;
    r.task_created_at_ms = T + 1 * MIN;
    r.double_validation = v->pair != NULL;
    r.pair_id = (char *)(v->pair ? rid(v->pair) : "");
    Annot__V1__Finding f = ANNOT__V1__FINDING__INIT;
    Annot__V1__Finding *fp[1] = {&f};
    if (v->finding) {
        f.rule = (char *)v->finding;
        r.n_check_findings = 1;
        r.check_findings = fp;
    }
    Annot__V1__ValidationError e = ANNOT__V1__VALIDATION_ERROR__INIT;
    Annot__V1__ValidationError *ep[1] = {&e};
    if (v->error) {
        e.category = (char *)v->error;
        e.severity = ANNOT__V1__SEVERITY__SEVERITY_MINOR;
        e.section = (char *)(v->section ? v->section : "");
        r.n_errors = 1;
        r.errors = ep;
    }
    Annot__V1__ValidationResultEvent ev = ANNOT__V1__VALIDATION_RESULT_EVENT__INIT;
    ev.header = &h;
    ev.result = &r;
    send_event("validation-results", v->submission, &ev.base, &h, id);
}

static void send_feedback(const char *id, const char *section, Annot__V1__FeedbackKind kind) {
    Annot__V1__EventHeader h;
    Annot__V1__GuidelineFeedback f = ANNOT__V1__GUIDELINE_FEEDBACK__INIT;
    f.section = (char *)section;
    f.kind = kind;
    Annot__V1__GuidelineFeedbackEvent ev = ANNOT__V1__GUIDELINE_FEEDBACK_EVENT__INIT;
    ev.header = &h;
    ev.feedback = &f;
    ev.feedback_id = (char *)id;
    ev.created_at_ms = T + 12 * MIN;
    send_event("feedback", "s1", &ev.base, &h, NULL);
}

static void send_candidate(const char *cand, int what, bool passed, int64_t at) {
    Annot__V1__EventHeader h;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.header = &h;
    ev.candidate_id = (char *)rid(cand);
    Annot__V1__CandidateApplied a = ANNOT__V1__CANDIDATE_APPLIED__INIT;
    Annot__V1__StageEntered se = ANNOT__V1__STAGE_ENTERED__INIT;
    Annot__V1__StageDecided sd = ANNOT__V1__STAGE_DECIDED__INIT;
    ev.event_case = what;
    if (what == ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED) {
        a.cohort_day = "2001-02-03";
        a.applied_at_ms = at;
        ev.applied = &a;
    } else if (what == ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_ENTERED) {
        se.stage = ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_EXAM1;
        se.entered_at_ms = at; /* no cohort day: the one recorded at application */
        ev.stage_entered = &se;
    } else {
        sd.stage = ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_EXAM1;
        sd.passed = passed;
        sd.decided_at_ms = at;
        ev.stage_decided = &sd;
    }
    send_event("candidates", cand, &ev.base, &h, NULL);
}

static void send_annotator_status(void) {
    Annot__V1__EventHeader h;
    Annot__V1__AnnotatorStatusEvent ev = ANNOT__V1__ANNOTATOR_STATUS_EVENT__INIT;
    ev.header = &h;
    ev.annotator_id = "a1";
    ev.status = ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_PROBATION;
    ev.changed_at_ms = T + 20 * MIN;
    send_event("annotators", "a1", &ev.base, &h, NULL);
}

static void produce_stream(void) {
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "t%d", i);
        send_task(id);
    }
    send_lease("L1", ANNOT__V1__LEASE_EVENT__EVENT_GRANTED, T + 2 * MIN, 0);
    send_lease("L1", ANNOT__V1__LEASE_EVENT__EVENT_HEARTBEAT, T + 2 * MIN + 30000, 1);
    send_lease("L1", ANNOT__V1__LEASE_EVENT__EVENT_RELEASED, T + 3 * MIN, 0);
    send_lease("L2", ANNOT__V1__LEASE_EVENT__EVENT_GRANTED, T + 2 * MIN, 0);
    send_lease("L2", ANNOT__V1__LEASE_EVENT__EVENT_EXPIRED, T + 4 * MIN, 0);
    send_submission_and_check();
    /* s1 validated blind by v1 (accept 1.0) and v2 (reject 0.8, citing
     * 3.1); s2 by v1 alone (accept 0.95, an error the checker missed). */
    verdict_t r1 = {"r1", "s1", "v1", "a1", "ja-JP", "p1", ANNOT__V1__VERDICT__VERDICT_ACCEPT, 1.0, T + 10 * MIN,
                    "subjective_language", NULL, NULL};
    verdict_t r2 = {"r2", "s1", "v2", "a1", "ja-JP", "p1", ANNOT__V1__VERDICT__VERDICT_REJECT, 0.8, T + 12 * MIN,
                    "subjective_language", "subjective_language", "3.1"};
    verdict_t r3 = {"r3", "s2", "v1", "a2", "en-US", NULL, ANNOT__V1__VERDICT__VERDICT_ACCEPT, 0.95, T + 15 * MIN,
                    "length", "relation_missing", NULL};
    char id3[EVENT_ID_LEN] = "";
    send_verdict(&r1, NULL);
    send_verdict(&r2, NULL);
    send_verdict(&r3, id3);
    send_feedback("f1", "3.1", ANNOT__V1__FEEDBACK_KIND__FEEDBACK_KIND_AMBIGUITY);
    send_feedback("f2", "3.1", ANNOT__V1__FEEDBACK_KIND__FEEDBACK_KIND_AMBIGUITY);
    send_feedback("f3", "4.1", ANNOT__V1__FEEDBACK_KIND__FEEDBACK_KIND_MISSING_RULE);
    send_candidate("c1", ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED, false, T);
    send_candidate("c2", ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED, false, T);
    send_candidate("c1", ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_ENTERED, false, T + 60 * MIN);
    send_candidate("c2", ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_ENTERED, false, T + 60 * MIN);
    send_candidate("c1", ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_DECIDED, true, T + 180 * MIN);
    send_candidate("c2", ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_DECIDED, false, T + 120 * MIN);
    send_annotator_status();
    /* The same verdict again (a producer's retry): the ledger drops it. */
    send_verdict(&r3, id3);
    /* A verdict whose locale is not UTF-8 (PostgreSQL would refuse it on
     * every retry): dead-lettered, the stream goes on. */
    verdict_t bad = {"rbad", "sbad", "v1", "a1", "ja-\xff\xfe", NULL, ANNOT__V1__VERDICT__VERDICT_ACCEPT, 1.0,
                     T + 16 * MIN, NULL, NULL, NULL};
    send_verdict(&bad, NULL);
    /* Not a protobuf message at all. */
    char k[96];
    snprintf(k, sizeof(k), "%sgarbage", prefix);
    itest_produce(producer, "validation-results", k, "\x08\x96\x01 not protobuf", 17, NULL, NULL);
}

static pid_t metrics_spawn_with(int port, const char *crash_at, int batch, const char *extra, const char *extra2) {
    char a_schema[128], a_group[128], a_ops[64], a_batch[64];
    snprintf(a_batch, sizeof(a_batch), "pipeline.batch.max=%d", batch);
    snprintf(a_schema, sizeof(a_schema), "metrics.schema=%s", schema);
    snprintf(a_group, sizeof(a_group), "metrics.group=%s", group);
    snprintf(a_ops, sizeof(a_ops), "ops.addr=127.0.0.1:%d", port);
    char *const argv[] = {METRICS_BIN, "-X", a_schema, "-X", a_group, "-X", a_ops,
                          "-X", "kafka.session.timeout.ms=6000", "-X", "kafka.auto.commit.interval.ms=200",
                          "-X", a_batch, "-X", "metrics.sweep.interval.ms=200",
                          "-X", (char *)(extra ? extra : "metrics.window.grace.ms=300000"),
                          "-X", (char *)(extra2 ? extra2 : "metrics.state.retention.ms=604800000"), NULL};
    return itest_spawn("annot-metrics", crash_at, argv);
}

static pid_t metrics_spawn(int port, const char *crash_at, int batch) {
    return metrics_spawn_with(port, crash_at, batch, NULL, NULL);
}

static void wait_all_caught_up(void) {
    static const char *const roles[] = {"tasks", "leases", "submissions", "checks", "validation-assignments",
                                        "validation-results",
                                        "feedback", "candidates", "annotators"};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) itest_wait_caught_up(group, roles[i]);
}

/* A number from a view, restricted to this run's version ($1). */
static double q(pg_t *pg, const char *sql) {
    char err[512];
    const char *params[1] = {gv};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, sql, 1, params, err, sizeof(err));
    if (res == NULL) fail_msg("%s: %s", sql, err);
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) fail_msg("%s: %d rows", sql, PQntuples(res));
    double v = strtod(PQgetvalue(res, 0, 0), NULL);
    PQclear(res);
    return v;
}

#define HOUR10 "window_kind = 'hour' AND window_start = '2001-02-03 10:00+00' AND guideline_version = $1"
#define HOUR09 "window_kind = 'hour' AND window_start = '2001-02-03 09:00+00' AND guideline_version = $1"
#define DAY "window_kind = 'day' AND window_start = '2001-02-03 00:00+00' AND guideline_version = $1"

static void check_rows(pg_t *pg) {
    /* Quality: r1 1.0, r2 0.8, r3 0.95 at 10:xx, the late r4 1.0 at 09:30. */
    assert_float_equal(q(pg, "SELECT validated FROM quality WHERE dimension = 'all' AND " HOUR10), 3, 0);
    assert_float_equal(q(pg, "SELECT quality_level FROM quality WHERE dimension = 'all' AND " HOUR10), 2.75 / 3, 1e-9);
    assert_float_equal(q(pg, "SELECT rejected FROM quality WHERE dimension = 'all' AND " HOUR10), 1, 0);
    assert_float_equal(q(pg, "SELECT validated FROM quality WHERE dimension = 'all' AND " HOUR09), 1, 0);
    assert_float_equal(q(pg, "SELECT validated FROM quality WHERE dimension = 'all' AND " DAY), 4, 0);
    assert_float_equal(q(pg, "SELECT quality_level FROM quality WHERE dimension = 'all' AND " DAY), 3.75 / 4, 1e-9);
    assert_float_equal(q(pg, "SELECT on_target::int FROM quality WHERE dimension = 'all' AND " DAY), 0, 0);
    assert_float_equal(q(pg, "SELECT quality_level FROM quality WHERE dimension = 'annotator' AND value = 'a1' AND " DAY),
                       2.8 / 3, 1e-9);
    assert_float_equal(q(pg, "SELECT validated FROM quality WHERE dimension = 'locale' AND value = 'en-US' AND " DAY), 1, 0);
    /* Agreement: one pair, v1 accept then v2 reject. */
    assert_float_equal(q(pg, "SELECT pairs FROM validator_agreement WHERE validator = '' AND " HOUR10), 1, 0);
    assert_float_equal(q(pg, "SELECT agreed FROM validator_agreement WHERE validator = '' AND " HOUR10), 0, 0);
    assert_float_equal(q(pg, "SELECT accept_reject FROM validator_agreement WHERE validator = '' AND " HOUR10), 1, 0);
    assert_float_equal(q(pg, "SELECT kappa FROM validator_agreement WHERE validator = '' AND " HOUR10), 0, 1e-12);
    assert_float_equal(q(pg, "SELECT mean_abs_score_diff FROM validator_agreement WHERE validator = '' AND " HOUR10),
                       0.2, 1e-9);
    assert_float_equal(q(pg, "SELECT reject_accept FROM validator_agreement WHERE validator = 'v2' AND " HOUR10), 1, 0);
    /* Precision: subjective_language flagged on r1 (not confirmed) and r2
     * (confirmed); length flagged on r3 (not confirmed); relation_missing
     * missed on r3. */
    assert_float_equal(q(pg, "SELECT flagged FROM autocheck_precision WHERE rule = '' AND " HOUR10), 3, 0);
    assert_float_equal(q(pg, "SELECT precision FROM autocheck_precision WHERE rule = '' AND " HOUR10), 1.0 / 3, 1e-9);
    assert_float_equal(q(pg, "SELECT recall FROM autocheck_precision WHERE rule = '' AND " HOUR10), 0.5, 1e-9);
    assert_float_equal(q(pg, "SELECT precision FROM autocheck_precision WHERE rule = 'subjective_language' AND " HOUR10),
                       0.5, 1e-9);
    assert_float_equal(q(pg, "SELECT missed FROM autocheck_precision WHERE rule = 'relation_missing' AND " HOUR10), 1, 0);
    /* Funnel, cohort 2001-02-03: two applied; exam 1 entered by both, c1
     * passed after 2 h, c2 failed after 1 h. */
    assert_float_equal(q(pg, "SELECT entered FROM funnel WHERE cohort_day = '2001-02-03' AND stage = 'applied' "
                             "AND guideline_version = $1"), 2, 0);
    assert_float_equal(q(pg, "SELECT entered FROM funnel WHERE cohort_day = '2001-02-03' AND stage = 'exam1' "
                             "AND guideline_version = $1"), 2, 0);
    assert_float_equal(q(pg, "SELECT pass_rate FROM funnel WHERE cohort_day = '2001-02-03' AND stage = 'exam1' "
                             "AND guideline_version = $1"), 0.5, 0);
    assert_float_equal(q(pg, "SELECT mean_time_in_stage_s FROM funnel WHERE cohort_day = '2001-02-03' AND "
                             "stage = 'exam1' AND guideline_version = $1"), 5400, 1e-9);
    /* Leases: two granted, one expired, one submitted, one heartbeat 30 s
     * after its grant. */
    assert_float_equal(q(pg, "SELECT granted FROM lease_health WHERE queue = 'annotation' AND " HOUR10), 2, 0);
    assert_float_equal(q(pg, "SELECT expiry_rate FROM lease_health WHERE queue = 'annotation' AND " HOUR10), 0.5, 0);
    assert_float_equal(q(pg, "SELECT submitted FROM lease_health WHERE queue = 'annotation' AND " HOUR10), 1, 0);
    assert_float_equal(q(pg, "SELECT heartbeats FROM lease_health WHERE queue = 'annotation' AND " HOUR10), 1, 0);
    assert_float_equal(q(pg, "SELECT p50_ms FROM latency WHERE metric = 'lease.heartbeat_gap_ms' AND " HOUR10), 30000, 0);
    assert_float_equal(q(pg, "SELECT mean_ms FROM latency WHERE metric = 'lease.time_to_submit_ms' AND " HOUR10), 60000, 0);
    /* Steps: created -> submitted 2 min; submitted -> checked 2 s. */
    assert_float_equal(q(pg, "SELECT p99_ms FROM latency WHERE step = 'submitted' AND metric = 'latency_ms' AND " HOUR10),
                       120000, 0);
    assert_float_equal(q(pg, "SELECT p50_ms FROM latency WHERE step = 'checked' AND " HOUR10), 2000, 0);
    assert_float_equal(q(pg, "SELECT p50_ms FROM latency WHERE step = 'assigned' AND " HOUR10), 5000, 0);
    assert_float_equal(q(pg, "SELECT items FROM throughput WHERE step = 'assigned' AND " HOUR10), 1, 0);
    assert_float_equal(q(pg, "SELECT items FROM throughput WHERE step = 'imported' AND " HOUR10), 3, 0);
    assert_float_equal(q(pg, "SELECT items FROM throughput WHERE step = 'validated' AND " DAY), 4, 0);
    /* Hot spots: 3.1 has two feedback items and one validator error. */
    assert_float_equal(q(pg, "SELECT feedback_count FROM guideline_hotspots WHERE section = '3.1' AND kind = '' AND " DAY),
                       2, 0);
    assert_float_equal(q(pg, "SELECT error_count FROM guideline_hotspots WHERE section = '3.1' AND kind = '' AND " DAY),
                       1, 0);
    assert_float_equal(q(pg, "SELECT feedback_count FROM guideline_hotspots WHERE section = '4.1' AND "
                             "kind = 'missing_rule' AND " DAY), 1, 0);
    assert_float_equal(q(pg, "SELECT changes FROM annotator_status_changes WHERE status = 'probation' AND " DAY), 1, 0);
    /* Everything of this run is published and final (its windows closed
     * long ago); the all-time points never close. */
    assert_float_equal(q(pg, "SELECT count(*) FROM rollups WHERE guideline_version = $1 AND window_kind <> 'all' "
                             "AND NOT final_published"), 0, 0);
    assert_float_equal(q(pg, "SELECT count(*) FROM outbox WHERE $1 <> ''"), 0, 0);
}

/* ---- the metrics topic --------------------------------------------------- */

#define MAX_SERIES 512

typedef struct seen_series {
    char key[512];
    int64_t max_revision;
    uint64_t revisions; /* bit r-1 set when revision r was seen (r <= 64) */
    double value;
    int64_t count;
    bool final;
} seen_series_t;

typedef struct seen {
    seen_series_t s[MAX_SERIES];
    int n;
    int messages;
} seen_t;

static void collect_metric(const rd_kafka_message_t *m, void *opaque) {
    seen_t *seen = opaque;
    Annot__V1__MetricEvent *ev = annot__v1__metric_event__unpack(NULL, m->len, m->payload);
    assert_non_null(ev);
    if (strcmp(ev->guideline_version, gv) != 0) {
        annot__v1__metric_event__free_unpacked(ev, NULL);
        return;
    }
    assert_string_equal(ev->header->guideline_version, gv);
    assert_int_equal((int)m->key_len, (int)strlen(ev->name));
    assert_memory_equal(m->key, ev->name, m->key_len);
    char key[512];
    snprintf(key, sizeof(key), "%s|%d|%lld|%s", ev->name, ev->window->kind, (long long)ev->window->start_ms,
             ev->labels_json);
    int i = 0;
    while (i < seen->n && strcmp(seen->s[i].key, key) != 0) i++;
    if (i == seen->n) {
        assert_true(seen->n < MAX_SERIES);
        snprintf(seen->s[seen->n++].key, sizeof(key), "%s", key);
    }
    seen_series_t *s = &seen->s[i];
    seen->messages++;
    assert_true(ev->revision >= 1 && ev->revision <= 64);
    s->revisions |= 1ULL << (ev->revision - 1);
    if (ev->revision >= s->max_revision) {
        s->max_revision = ev->revision;
        s->value = ev->value;
        s->count = ev->count;
        s->final = s->final || ev->final;
    }
    annot__v1__metric_event__free_unpacked(ev, NULL);
}

static const seen_series_t *series(const seen_t *seen, const char *name, int kind, int64_t start, const char *labels) {
    char key[512];
    snprintf(key, sizeof(key), "%s|%d|%lld|%s", name, kind, (long long)start, labels);
    for (int i = 0; i < seen->n; i++) {
        if (strcmp(seen->s[i].key, key) == 0) return &seen->s[i];
    }
    fail_msg("no metric event for %s", key);
    return NULL;
}

static void check_topic(pg_t *pg) {
    static seen_t seen;
    memset(&seen, 0, sizeof(seen));
    itest_read_all("metrics", collect_metric, &seen);
    /* One series on the topic per rollup row of this version, and every
     * revision of each was published (none skipped by the crash). */
    assert_int_equal(seen.n, (int)q(pg, "SELECT count(*) FROM rollups WHERE guideline_version = $1"));
    for (int i = 0; i < seen.n; i++) {
        const seen_series_t *s = &seen.s[i];
        assert_int_equal(s->revisions, (s->max_revision >= 64 ? ~0ULL : (1ULL << s->max_revision) - 1));
        if (strstr(s->key, "|5|") == NULL) assert_true(s->final); /* closed windows */
    }
    const int hour = ANNOT__V1__WINDOW_KIND__WINDOW_KIND_HOUR, day = ANNOT__V1__WINDOW_KIND__WINDOW_KIND_DAY;
    const seen_series_t *s = series(&seen, "quality.level", day, T - 10 * 60 * MIN, "{}");
    assert_float_equal(s->value, 3.75 / 4, 1e-9);
    assert_int_equal(s->count, 4);
    s = series(&seen, "quality.level", hour, T - 60 * MIN, "{}");
    assert_float_equal(s->value, 1.0, 0);
    s = series(&seen, "validator.agreement", hour, T, "{}");
    assert_float_equal(s->value, 0.0, 1e-12);
    assert_int_equal(s->count, 1);
    s = series(&seen, "funnel.stage", day, T - 10 * 60 * MIN, "{\"stage\": \"exam1\"}");
    assert_float_equal(s->value, 0.5, 0);
    s = series(&seen, "autocheck.precision", hour, T, "{\"rule\": \"subjective_language\"}");
    assert_float_equal(s->value, 0.5, 0);
    s = series(&seen, "lease.health", hour, T, "{\"queue\": \"annotation\"}");
    assert_float_equal(s->value, 0.5, 0);
    s = series(&seen, "guideline.hotspot", day, T - 10 * 60 * MIN, "{\"kind\": \"ambiguity\", \"section\": \"3.1\"}");
    assert_float_equal(s->value, 2, 0);
}

/* `annotctl metrics tail --json` prints this run's points as JSON lines. */
static void check_tail(pg_t *pg) {
    FILE *f = popen("bin/annotctl metrics tail --json --from-beginning --once", "r");
    assert_non_null(f);
    char line[8192], needle[96];
    snprintf(needle, sizeof(needle), "\"guideline_version\":\"%s\"", gv);
    int ours = 0, quality_day = 0;
    while (fgets(line, sizeof(line), f)) {
        json_error_t jerr;
        json_t *j = json_loads(line, 0, &jerr);
        if (j == NULL) fail_msg("not JSON: %s", line);
        if (strstr(line, needle)) {
            ours++;
            if (strcmp(json_string_value(json_object_get(j, "name")), "quality.level") == 0 &&
                strcmp(json_string_value(json_object_get(json_object_get(j, "window"), "kind")), "day") == 0 &&
                json_object_size(json_object_get(j, "labels")) == 0 &&
                json_integer_value(json_object_get(json_object_get(j, "quality"), "validated")) == 4)
                quality_day++;
        }
        json_decref(j);
    }
    assert_int_equal(pclose(f), 0);
    /* At least one line per point of this version, the latest day quality
     * among them. */
    assert_true(ours >= (int)q(pg, "SELECT count(*) FROM rollups WHERE guideline_version = $1"));
    assert_true(quality_day >= 1);
}

/* `annotctl report` prints the hand-computed figures of this version. */
static void check_report(void) {
    char cmd[256], line[512];
    snprintf(cmd, sizeof(cmd), "bin/annotctl -X metrics.schema=%s report --version %s", schema, gv);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    int exam1 = 0, quality = 0, kappa = 0, precision = 0, hotspot = 0, leases = 0;
    while (fgets(line, sizeof(line), f)) {
        /* exam 1: entered 2, passed 1, failed 1, 50 %, 5400 s in stage */
        exam1 |= strstr(line, "exam1") && strstr(line, " 2 ") && strstr(line, "50.0 %") && strstr(line, "5400");
        /* quality over the four verdicts: 3.75 / 4, below the 95 % target */
        quality |= strncmp(line, "   all ", 7) == 0 && strstr(line, "93.75 %") && strstr(line, "BELOW");
        kappa |= strstr(line, "(all pairs)") && strstr(line, "0.000") && strstr(line, "0.200");
        precision |= strstr(line, "(all rules)") && strstr(line, "33.3 %") && strstr(line, "50.0 %");
        hotspot |= strncmp(line, "   3.1 ", 7) == 0 && strstr(line, "ambiguity 2");
        leases |= strstr(line, "annotation") && strstr(line, "50.0 %") && strstr(line, "60000");
    }
    assert_int_equal(pclose(f), 0);
    assert_true(exam1);
    assert_true(quality);
    assert_true(kappa);
    assert_true(precision);
    assert_true(hotspot);
    assert_true(leases);
}

/* Distinct dead letters: a replay after the crash may publish one twice,
 * under the same id (derived from topic, partition and offset). */
typedef struct dead_seen {
    int count;
    char ids[8][EVENT_ID_LEN];
} dead_seen_t;

static void collect_dead(const rd_kafka_message_t *m, void *opaque) {
    dead_seen_t *d = opaque;
    Annot__V1__DeadLetter *dl = annot__v1__dead_letter__unpack(NULL, m->len, m->payload);
    assert_non_null(dl);
    size_t pl = strlen(prefix);
    if (strcmp(dl->consumer_group, group) == 0 && dl->key.len >= pl && memcmp(dl->key.data, prefix, pl) == 0) {
        assert_string_equal(dl->topic, itest_topic("validation-results"));
        int known = 0;
        for (int i = 0; i < d->count; i++) known |= strcmp(d->ids[i], dl->header->event_id) == 0;
        if (!known && d->count < 8) snprintf(d->ids[d->count++], EVENT_ID_LEN, "%s", dl->header->event_id);
    }
    annot__v1__dead_letter__free_unpacked(dl, NULL);
}

static void test_known_stream_crash_late_and_duplicate(void **state) {
    (void)state;
    use_names("known");
    /* The topics hold what earlier tests produced.  A first run of the
     * group reads all of it, so that the crash below falls in this test's
     * own stream. */
    int port = itest_free_port();
    pid_t pid = metrics_spawn(port, NULL, 500);
    wait_all_caught_up();
    itest_stop_cleanly(pid);

    producer = itest_producer();
    produce_stream();

    /* Killed right after its second commit (batches of 4: mid-stream);
     * then run to the end. */
    int st = itest_wait(metrics_spawn(port, "pipeline.after_commit:2", 4));
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    pid = metrics_spawn(port, NULL, 4);
    wait_all_caught_up();

    /* An event late by an hour: r4, validated at 09:30, arrives last. */
    verdict_t r4 = {"r4", "s4", "v2", "a1", "ja-JP", NULL, ANNOT__V1__VERDICT__VERDICT_ACCEPT, 1.0, T - 30 * MIN,
                    NULL, NULL, NULL};
    send_verdict(&r4, NULL);
    pg_t *pg = itest_pg(schema);
    const char *params[1] = {gv};
    (void)params;
    itest_pg_wait_at_least_p(pg,
                             "SELECT validated FROM quality WHERE dimension = 'all' AND window_kind = 'day' AND "
                             "guideline_version = $1",
                             gv, 4);
    itest_wait_caught_up(group, "validation-results");
    char body[1 << 12];
    assert_int_equal(itest_http_get(port, "/readyz", body, sizeof(body)), 200);
    itest_stop_cleanly(pid);
    kafka_producer_destroy(producer, 5000);

    check_rows(pg);
    check_topic(pg);
    check_tail(pg);
    check_report();
    static dead_seen_t dead;
    itest_read_all("dlq", collect_dead, &dead);
    assert_int_equal(dead.count, 2);
    pg_close(pg);
}

/* The final publication: a window still open for late events is published
 * with final = false; once its grace has passed the sweeper publishes it
 * again, same revision, final = true, and marks the row. */
typedef struct final_seen {
    const char *labels;
    int64_t start;
    int open, closed;
    int64_t open_rev, closed_rev;
} final_seen_t;

static void collect_final(const rd_kafka_message_t *m, void *opaque) {
    final_seen_t *f = opaque;
    Annot__V1__MetricEvent *ev = annot__v1__metric_event__unpack(NULL, m->len, m->payload);
    assert_non_null(ev);
    if (strcmp(ev->guideline_version, gv) == 0 && strcmp(ev->name, "quality.level") == 0 &&
        ev->window->kind == ANNOT__V1__WINDOW_KIND__WINDOW_KIND_HOUR && ev->window->start_ms == f->start &&
        strcmp(ev->labels_json, f->labels) == 0) {
        if (ev->final) {
            f->closed++;
            f->closed_rev = ev->revision;
        } else {
            f->open++;
            f->open_rev = ev->revision;
        }
    }
    annot__v1__metric_event__free_unpacked(ev, NULL);
}

static void test_closed_window_published_final(void **state) {
    (void)state;
    use_names("final");
    int64_t at = event_now_ms() - 3 * 3600000LL;
    int64_t hour = at - at % 3600000LL;
    int port = itest_free_port();
    /* The topics' history first, then this test's event. */
    pid_t pid = metrics_spawn(port, NULL, 500);
    wait_all_caught_up();
    itest_stop_cleanly(pid);
    /* Two days of grace: the hour of three hours ago is still open. */
    pid = metrics_spawn_with(port, NULL, 500, "metrics.window.grace.ms=172800000", NULL);
    producer = itest_producer();
    verdict_t r = {"rf", "sf", "v1", "a1", "ja-JP", NULL, ANNOT__V1__VERDICT__VERDICT_ACCEPT, 1.0, at, NULL, NULL, NULL};
    send_verdict(&r, NULL);
    /* The first half of a pair whose second verdict never comes (an hour
     * earlier, out of the hour watched below). */
    verdict_t half = {"rh", "sh", "v2", "a1", "ja-JP", "ph", ANNOT__V1__VERDICT__VERDICT_ACCEPT, 1.0,
                      at - 3600000LL, NULL, NULL, NULL};
    send_verdict(&half, NULL);
    kafka_producer_destroy(producer, 5000);
    pg_t *pg = itest_pg(schema);
    char hour_ms[24];
    snprintf(hour_ms, sizeof(hour_ms), "%lld", (long long)hour);
    const char *hp[2] = {gv, hour_ms};
    itest_pg_wait_at_least_v(pg,
                             "SELECT count(*) FROM rollups WHERE guideline_version = $1 AND metric = 'quality.level' "
                             "AND window_kind = 'hour' AND labels = '{}' AND window_start = "
                             "to_timestamp($2::bigint / 1000.0)",
                             2, hp, 1);
    char pair_id[128];
    snprintf(pair_id, sizeof(pair_id), "%sph", prefix);
    const char *pair_sql = "SELECT count(*) FROM pair_halves WHERE pair_id = $1";
    itest_pg_wait_at_least_p(pg, pair_sql, pair_id, 1);
    itest_stop_cleanly(pid);
    assert_float_equal(q(pg, "SELECT count(*) FROM rollups WHERE guideline_version = $1 AND window_kind = 'hour' "
                             "AND final_published"), 0, 0);

    /* No grace: the sweeper finds the hour closed; and one second of
     * retention drops the lonely pair half. */
    sleep(1);
    pid = metrics_spawn_with(port, NULL, 500, "metrics.window.grace.ms=0", "metrics.state.retention.ms=1000");
    long long hour_rows = q(pg, "SELECT count(*) FROM rollups WHERE guideline_version = $1 AND window_kind = 'hour'");
    itest_pg_wait_at_least_p(pg,
                             "SELECT count(*) FROM rollups WHERE guideline_version = $1 AND window_kind = 'hour' "
                             "AND final_published",
                             gv, hour_rows);
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (itest_pg_number_p(pg, pair_sql, pair_id) != 0) {
        if (time(NULL) > deadline) fail_msg("the pair half was never pruned");
        usleep(100 * 1000);
    }
    itest_stop_cleanly(pid);

    final_seen_t f = {"{}", hour, 0, 0, 0, 0};
    itest_read_all("metrics", collect_final, &f);
    assert_int_equal(f.open, 1);
    assert_int_equal(f.closed, 1);
    assert_int_equal(f.open_rev, 1);
    assert_int_equal(f.closed_rev, 1);
    /* The all-time points never close. */
    assert_float_equal(q(pg, "SELECT count(*) FROM rollups WHERE guideline_version = $1 AND window_kind = 'all' "
                             "AND final_published"), 0, 0);
    pg_close(pg);
}

/* A mixed stream with state across events: blind pairs, heartbeats,
 * candidates through exam 1, feedback. */
static void produce_mixed(int n) {
    for (int i = 0; i < n; i++) {
        char a[16], v[16], sub[32], pair[32], vid[32], lease[32], cand[32];
        snprintf(a, sizeof(a), "a%d", i % 7);
        snprintf(v, sizeof(v), "v%d", i % 5);
        snprintf(sub, sizeof(sub), "ms%d", i / 2);
        snprintf(pair, sizeof(pair), "mp%d", i / 2);
        snprintf(vid, sizeof(vid), "mr%d", i);
        snprintf(lease, sizeof(lease), "ml%d", i / 4);
        snprintf(cand, sizeof(cand), "mc%d", i / 3);
        int64_t at = T + (int64_t)(i % 180) * MIN;
        verdict_t r = {vid, sub, v, a, i % 2 ? "ja-JP" : "en-US", i % 4 < 2 ? pair : NULL,
                       i % 3 ? ANNOT__V1__VERDICT__VERDICT_ACCEPT : ANNOT__V1__VERDICT__VERDICT_REJECT,
                       i % 3 ? 0.95 : 0.4, at, i % 2 ? "length" : "speculation", i % 5 ? NULL : "speculation",
                       "3.2"};
        send_verdict(&r, NULL);
        switch (i % 4) {
        case 0: send_lease(lease, ANNOT__V1__LEASE_EVENT__EVENT_GRANTED, at, 0); break;
        case 1: send_lease(lease, ANNOT__V1__LEASE_EVENT__EVENT_HEARTBEAT, at + 20000, 1); break;
        case 2: send_lease(lease, ANNOT__V1__LEASE_EVENT__EVENT_HEARTBEAT, at + 50000, 2); break;
        default: send_lease(lease, ANNOT__V1__LEASE_EVENT__EVENT_EXPIRED, at + 90000, 0); break;
        }
        switch (i % 3) {
        case 0: send_candidate(cand, ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED, false, at); break;
        case 1: send_candidate(cand, ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_ENTERED, false, at + MIN); break;
        default: send_candidate(cand, ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_DECIDED, i % 2, at + 9 * MIN); break;
        }
        if (i % 6 == 0) send_feedback(vid, "3.2", ANNOT__V1__FEEDBACK_KIND__FEEDBACK_KIND_EDGE_CASE);
    }
}

/* Rows of this version in schema a and not in b, and the other way round. */
static double rows_differ(pg_t *pg, const char *a, const char *b) {
    char sql[2048];
    const char *cols = "metric, window_kind, window_start, guideline_version, labels, c0, c1, c2, c3, c4, c5, "
                       "round(s0::numeric, 6), vmin, vmax, hist";
    snprintf(sql, sizeof(sql),
             "SELECT (SELECT count(*) FROM (SELECT %s FROM %s.rollups WHERE guideline_version = $1 EXCEPT "
             "SELECT %s FROM %s.rollups WHERE guideline_version = $1) x) + (SELECT count(*) FROM (SELECT %s FROM "
             "%s.rollups WHERE guideline_version = $1 EXCEPT SELECT %s FROM %s.rollups WHERE guideline_version = "
             "$1) y)",
             cols, a, cols, b, cols, b, cols, a);
    return q(pg, sql);
}

/* The same stream into three schemas: one run straight through, one killed
 * with SIGKILL from outside at arbitrary moments, again and again, and one
 * by two instances of the group at once (the partitions split between
 * them, both writing the same all-time rows).  The rollups must be
 * identical: nothing lost, nothing counted twice, pairs, heartbeats and
 * stage entries carried across the crashes and the rebalances. */
static void test_sigkill_anywhere_same_rows(void **state) {
    (void)state;
    use_names("kill");
    char ref_schema[64], kill_schema[64], duo_schema[64], ref_group[64], kill_group[64], duo_group[64];
    snprintf(ref_schema, sizeof(ref_schema), "metrics_%s_ref", itest_run);
    snprintf(kill_schema, sizeof(kill_schema), "metrics_%s_kill", itest_run);
    snprintf(duo_schema, sizeof(duo_schema), "metrics_%s_duo", itest_run);
    snprintf(ref_group, sizeof(ref_group), "metrics-%s-ref", itest_run);
    snprintf(kill_group, sizeof(kill_group), "metrics-%s-kill", itest_run);
    snprintf(duo_group, sizeof(duo_group), "metrics-%s-duo", itest_run);
    int port = itest_free_port();
    /* Every group reads the topics' history first. */
    const char *schemas[3] = {ref_schema, kill_schema, duo_schema}, *groups[3] = {ref_group, kill_group, duo_group};
    for (int k = 0; k < 3; k++) {
        snprintf(schema, sizeof(schema), "%s", schemas[k]);
        snprintf(group, sizeof(group), "%s", groups[k]);
        pid_t pid = metrics_spawn(port, NULL, 500);
        wait_all_caught_up();
        itest_stop_cleanly(pid);
    }
    producer = itest_producer();
    produce_mixed(240);
    kafka_producer_destroy(producer, 5000);

    snprintf(schema, sizeof(schema), "%s", ref_schema);
    snprintf(group, sizeof(group), "%s", ref_group);
    pid_t pid = metrics_spawn(port, NULL, 500);
    wait_all_caught_up();
    itest_stop_cleanly(pid);

    snprintf(schema, sizeof(schema), "%s", kill_schema);
    snprintf(group, sizeof(group), "%s", kill_group);
    /* Each instance is killed at a random moment after it applied
     * something (a fresh member first waits for the group to let the dead
     * one go). */
    pg_t *kpg = itest_pg(kill_schema);
    long long start = itest_pg_number(kpg, "SELECT count(*) FROM processed_events"), at_kill[4];
    srand((unsigned)time(NULL));
    for (int k = 0; k < 4; k++) {
        long long before = itest_pg_number(kpg, "SELECT count(*) FROM processed_events");
        pid = metrics_spawn(port, NULL, 7);
        itest_pg_wait_at_least(kpg, "SELECT count(*) FROM processed_events", before + 1);
        usleep((useconds_t)(rand() % 300) * 1000);
        kill(pid, SIGKILL);
        itest_wait(pid);
        at_kill[k] = itest_pg_number(kpg, "SELECT count(*) FROM processed_events");
    }
    pid = metrics_spawn(port, NULL, 7);
    wait_all_caught_up();
    itest_stop_cleanly(pid);
    long long end = itest_pg_number(kpg, "SELECT count(*) FROM processed_events");
    pg_close(kpg);
    /* The first kill at least fell inside the stream, not after it. */
    printf("killed at %lld, %lld, %lld, %lld of events %lld..%lld\n", at_kill[0], at_kill[1], at_kill[2],
           at_kill[3], start, end);
    assert_true(at_kill[0] > start && at_kill[0] < end);

    /* Two members of one group at once. */
    snprintf(schema, sizeof(schema), "%s", duo_schema);
    snprintf(group, sizeof(group), "%s", duo_group);
    pid_t one = metrics_spawn(port, NULL, 7), two = metrics_spawn(itest_free_port(), NULL, 7);
    wait_all_caught_up();
    itest_stop_cleanly(one);
    itest_stop_cleanly(two);

    pg_t *pg = itest_pg(ref_schema);
    char sql[2048];
    assert_float_equal(rows_differ(pg, ref_schema, kill_schema), 0, 0);
    assert_float_equal(rows_differ(pg, ref_schema, duo_schema), 0, 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.rollups WHERE guideline_version = $1", ref_schema);
    assert_true(q(pg, sql) > 100);
    /* The reference itself is right: 240 verdicts, 60 complete pairs. */
    snprintf(sql, sizeof(sql),
             "SELECT validated FROM %s.quality WHERE guideline_version = $1 AND window_kind = 'all' AND "
             "dimension = 'all'",
             ref_schema);
    assert_float_equal(q(pg, sql), 240, 0);
    snprintf(sql, sizeof(sql),
             "SELECT pairs FROM %s.validator_agreement WHERE guideline_version = $1 AND window_kind = 'all' AND "
             "validator = ''",
             ref_schema);
    assert_float_equal(q(pg, sql), 60, 0);
    pg_close(pg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_known_stream_crash_late_and_duplicate, itest_kill_children),
        cmocka_unit_test_teardown(test_closed_window_published_final, itest_kill_children),
        cmocka_unit_test_teardown(test_sigkill_anywhere_same_rows, itest_kill_children),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
