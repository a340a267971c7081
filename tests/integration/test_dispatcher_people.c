/* Integration: candidates and annotators through annot-dispatcher on a real
 * stack.  The funnel's events (produced here on the candidates and
 * annotators topics, as annot-funnel would) give a candidate a screening
 * test and training; the candidate reads them and answers over HTTP, and
 * the answers come out on the candidates topic exactly once; a promotion
 * makes the candidate an annotator who leases production work; a
 * suspension gets 403; bad input gets its 4xx naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "annot/v1/annotator.pb-c.h"
#include "annot/v1/candidate.pb-c.h"
#include "annot/v1/deadletter.pb-c.h"
#include "annot/v1/task.pb-c.h"
#include "itest.h"

static char schema[64], skill[32], candidate[128], candidate_id[64], annotator[128];
static int http_port, ops_port;
static pid_t dispatcher;

static void me(const char *token, json_t **out) {
    char body[4096];
    assert_int_equal(itest_http("GET", http_port, "/v1/me", token, NULL, 0, body, sizeof(body)), 200);
    *out = json_loads(body, 0, NULL);
    assert_non_null(*out);
}

static int setup(void **state) {
    (void)state;
    if (itest_setup("test_dispatcher_people") != 0) return -1;
    snprintf(schema, sizeof(schema), "dispp_%s", itest_run);
    snprintf(skill, sizeof(skill), "p%s", itest_run + 1);
    itest_user_add(schema, "candidate", NULL, candidate, sizeof(candidate));
    itest_user_add(schema, "annotator", "--locale en-US", annotator, sizeof(annotator));
    dispatcher = itest_dispatcher_start(schema, &http_port, &ops_port, NULL);
    json_t *j;
    me(candidate, &j);
    snprintf(candidate_id, sizeof(candidate_id), "%s", json_string_value(json_object_get(j, "user_id")));
    json_decref(j);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    itest_kill_children(NULL);
    itest_teardown();
    return 0;
}

/* Produces a CandidateEvent for our candidate as the funnel would. */
static void produce_candidate(Annot__V1__CandidateEvent *ev) {
    char id[EVENT_ID_LEN];
    event_id_new(id);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, "annot-funnel", "", "");
    ev->header = &hdr;
    ev->candidate_id = candidate_id;
    uint8_t buf[4096];
    size_t len = annot__v1__candidate_event__pack(ev, buf);
    kafka_producer_t *p = itest_producer();
    itest_produce(p, "candidates", candidate_id, buf, len, NULL, NULL);
    kafka_producer_destroy(p, 5000);
}

static void produce_stage(Annot__V1__FunnelStage stage) {
    Annot__V1__StageEntered se = ANNOT__V1__STAGE_ENTERED__INIT;
    se.stage = stage;
    se.entered_at_ms = event_now_ms();
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_ENTERED;
    ev.stage_entered = &se;
    produce_candidate(&ev);
}

static void produce_status(const char *annotator_id, Annot__V1__AnnotatorStatus status, double quality,
                           Annot__V1__Role role) {
    char id[EVENT_ID_LEN];
    event_id_new(id);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, "annot-funnel", "", "");
    char *skills[1] = {skill};
    Annot__V1__AnnotatorStatusEvent ev = ANNOT__V1__ANNOTATOR_STATUS_EVENT__INIT;
    ev.header = &hdr;
    ev.annotator_id = (char *)annotator_id;
    ev.status = status;
    ev.rolling_quality = quality;
    ev.window_count = quality > 0 ? 20 : 0;
    ev.window_size = 20;
    ev.role = role;
    if (role == ANNOT__V1__ROLE__ROLE_ANNOTATOR) {
        ev.locale = "en-US";
        ev.n_skills = 1;
        ev.skills = skills;
        ev.candidate_id = candidate_id;
    }
    uint8_t buf[2048];
    size_t len = annot__v1__annotator_status_event__pack(&ev, buf);
    kafka_producer_t *p = itest_producer();
    itest_produce(p, "annotators", annotator_id, buf, len, NULL, NULL);
    kafka_producer_destroy(p, 5000);
}

/* GETs path as the candidate until the status is not 409 (the intake has
 * not applied the funnel's event yet). */
static int get_when_assigned(const char *path, char *body, size_t len) {
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    int st;
    while ((st = itest_http("GET", http_port, path, candidate, NULL, 0, body, len)) == 409 && time(NULL) < deadline)
        usleep(100 * 1000);
    return st;
}

static int post(const char *token, const char *path, const char *body, char *out, size_t len) {
    return itest_http("POST", http_port, path, token, body, body ? strlen(body) : 0, out, len);
}

static void expect_400(const char *path, const char *body, const char *field) {
    char out[4096];
    int st = post(candidate, path, body, out, sizeof(out));
    if (st != 400 || strstr(out, field) == NULL) fail_msg("%s %s: %d %s (expected 400 naming %s)", path, body, st, out, field);
}

typedef struct seen {
    int screening, training;
    size_t answers;
} seen_t;

static void find_answers(const rd_kafka_message_t *m, void *opaque) {
    seen_t *s = opaque;
    Annot__V1__CandidateEvent *ev = annot__v1__candidate_event__unpack(NULL, m->len, m->payload);
    assert_non_null(ev);
    if (strcmp(ev->candidate_id, candidate_id) == 0) {
        if (ev->event_case == ANNOT__V1__CANDIDATE_EVENT__EVENT_SCREENING_SUBMITTED) {
            s->screening++;
            s->answers = ev->screening_submitted->n_answers;
            assert_string_equal(ev->screening_submitted->screening_id, "scr-1");
            assert_string_equal(ev->header->source, "annot-dispatcher");
            assert_int_equal(m->key_len, strlen(candidate_id));
        }
        if (ev->event_case == ANNOT__V1__CANDIDATE_EVENT__EVENT_TRAINING_COMPLETED) {
            s->training++;
            assert_string_equal(ev->training_completed->guideline_version_acknowledged, "g-2026.11");
        }
    }
    annot__v1__candidate_event__free_unpacked(ev, NULL);
}

static void test_screening(void **state) {
    (void)state;
    char body[1 << 14];
    /* Nothing assigned yet. */
    assert_int_equal(itest_http("GET", http_port, "/v1/screening", candidate, NULL, 0, body, sizeof(body)), 409);
    assert_non_null(strstr(body, "no_screening"));
    /* Only candidates take screening tests. */
    assert_int_equal(itest_http("GET", http_port, "/v1/screening", annotator, NULL, 0, body, sizeof(body)), 403);

    produce_stage(ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_SCREENING);
    char *qids[3] = {"L2", "G1", "L1"};
    Annot__V1__ScreeningAssigned sa = ANNOT__V1__SCREENING_ASSIGNED__INIT;
    sa.screening_id = "scr-1";
    sa.test_version = "screen-v1";
    sa.n_question_ids = 3;
    sa.question_ids = qids;
    sa.assigned_at_ms = event_now_ms();
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_SCREENING_ASSIGNED;
    ev.screening_assigned = &sa;
    produce_candidate(&ev);

    assert_int_equal(get_when_assigned("/v1/screening", body, sizeof(body)), 200);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "screening_id")), "scr-1");
    assert_false(json_is_true(json_object_get(j, "submitted")));
    json_t *qs = json_object_get(j, "questions");
    assert_int_equal(json_array_size(qs), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(qs, 0), "id")), "L2");
    assert_true(json_array_size(json_object_get(json_array_get(qs, 0), "options")) >= 2);
    json_decref(j);
    assert_null(strstr(body, "answer")); /* never the key */
    me(candidate, &j);
    assert_string_equal(json_string_value(json_object_get(j, "stage")), "screening");
    json_decref(j);

    /* Bad answers, each refused naming the field; nothing recorded. */
    expect_400("/v1/screening", "{\"screening_id\":", "body");
    expect_400("/v1/screening", "{\"screening_id\":\"scr-0\",\"answers\":[]}", "screening_id");
    expect_400("/v1/screening", "{\"screening_id\":\"scr-1\"}", "answers");
    expect_400("/v1/screening", "{\"screening_id\":\"scr-1\",\"answers\":{}}", "answers");
    expect_400("/v1/screening",
               "{\"screening_id\":\"scr-1\",\"answers\":[{\"question_id\":\"L2\",\"answer\":\"b\"},"
               "{\"question_id\":\"G1\",\"answer\":\"b\"}]}",
               "L1 is not answered");
    expect_400("/v1/screening",
               "{\"screening_id\":\"scr-1\",\"answers\":[{\"question_id\":\"L2\",\"answer\":\"q\"},"
               "{\"question_id\":\"G1\",\"answer\":\"b\"},{\"question_id\":\"L1\",\"answer\":\"a\"}]}",
               "answers[0].answer");
    expect_400("/v1/screening",
               "{\"screening_id\":\"scr-1\",\"answers\":[{\"question_id\":\"G5\",\"answer\":\"b\"}]}",
               "answers[0].question_id");
    expect_400("/v1/screening", "{\"screening_id\":\"scr-1\",\"answers\":[{\"question_id\":\"L2\",\"answer\":1}]}",
               "answers[0].answer");
    expect_400("/v1/screening", "{\"screening_id\":\"scr-1\",\"answers\":[],\"score\":1}", "score");
    expect_400("/v1/screening", "{\"screening_id\":\"scr-1\",\"answers\":[\"a\"]}", "answers[0]");

    const char *good = "{\"screening_id\":\"scr-1\",\"answers\":[{\"question_id\":\"L2\",\"answer\":\"b\"},"
                       "{\"question_id\":\"G1\",\"answer\":\"a\"},{\"question_id\":\"L1\",\"answer\":\"a\"}]}";
    int st = post(candidate, "/v1/screening", good, body, sizeof(body));
    if (st != 202) fail_msg("screening answers: %d %s", st, body);
    assert_int_equal(post(candidate, "/v1/screening", good, body, sizeof(body)), 409);
    assert_non_null(strstr(body, "already_submitted"));
    assert_int_equal(itest_http("GET", http_port, "/v1/screening", candidate, NULL, 0, body, sizeof(body)), 200);
    assert_true(json_is_true(json_object_get(j = json_loads(body, 0, NULL), "submitted")));
    json_decref(j);

    seen_t s;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    do {
        s = (seen_t){0, 0, 0};
        itest_read_all("candidates", find_answers, &s);
    } while (s.screening == 0 && time(NULL) < deadline && usleep(200 * 1000) == 0);
    assert_int_equal(s.screening, 1);
    assert_int_equal(s.answers, 3);
}

static void test_training(void **state) {
    (void)state;
    char body[1 << 15];
    assert_int_equal(itest_http("GET", http_port, "/v1/training", candidate, NULL, 0, body, sizeof(body)), 409);
    assert_non_null(strstr(body, "no_training"));
    assert_int_equal(post(candidate, "/v1/training/complete", "{\"guideline_version\":\"g-2026.11\"}", body,
                          sizeof(body)),
                     409);

    produce_stage(ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_TRAINING);
    char *samples[2] = {"S1", "S2"};
    Annot__V1__TrainingAssigned ta = ANNOT__V1__TRAINING_ASSIGNED__INIT;
    ta.guideline_version = "g-2026.11";
    ta.n_sample_ids = 2;
    ta.sample_ids = samples;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_TRAINING_ASSIGNED;
    ev.training_assigned = &ta;
    produce_candidate(&ev);

    assert_int_equal(get_when_assigned("/v1/training", body, sizeof(body)), 200);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "guideline_version")), "g-2026.11");
    assert_true(json_array_size(json_object_get(j, "sections")) >= 10);
    assert_true(json_array_size(json_object_get(j, "samples")) >= 4);
    assert_false(json_is_true(json_object_get(j, "completed")));
    json_decref(j);

    expect_400("/v1/training/complete", "{\"guideline_version\":\"g-1999\"}", "guideline_version");
    expect_400("/v1/training/complete", "{\"guideline_version\":7}", "guideline_version");
    expect_400("/v1/training/complete", "{}", "guideline_version");
    expect_400("/v1/training/complete", "{\"guideline_version\":\"g-2026.11\",\"read\":true}", "read");
    int st = post(candidate, "/v1/training/complete", "{\"guideline_version\":\"g-2026.11\"}", body, sizeof(body));
    if (st != 202) fail_msg("training complete: %d %s", st, body);
    assert_int_equal(post(candidate, "/v1/training/complete", "{\"guideline_version\":\"g-2026.11\"}", body,
                          sizeof(body)),
                     409);
    assert_non_null(strstr(body, "already_completed"));
    assert_int_equal(itest_http("GET", http_port, "/v1/training", candidate, NULL, 0, body, sizeof(body)), 200);
    assert_true(json_is_true(json_object_get(j = json_loads(body, 0, NULL), "completed")));
    json_decref(j);

    seen_t s;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    do {
        s = (seen_t){0, 0, 0};
        itest_read_all("candidates", find_answers, &s);
    } while (s.training == 0 && time(NULL) < deadline && usleep(200 * 1000) == 0);
    assert_int_equal(s.training, 1);
    assert_int_equal(s.screening, 1);
}

static void produce_production_task(const char *task_id) {
    char id[EVENT_ID_LEN];
    event_id_new(id);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, "test", "", "g-2026.11");
    char *skills[1] = {skill};
    Annot__V1__Task t = ANNOT__V1__TASK__INIT;
    t.task_id = (char *)task_id;
    t.kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    t.main_object = "hanbok";
    t.locale = "en-US";
    t.n_skills = 1;
    t.skills = skills;
    t.priority = 5;
    Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
    ev.header = &hdr;
    ev.task = &t;
    uint8_t buf[1024];
    size_t len = annot__v1__task_event__pack(&ev, buf);
    kafka_producer_t *p = itest_producer();
    itest_produce(p, "tasks", task_id, buf, len, NULL, NULL);
    kafka_producer_destroy(p, 5000);
}

/* Waits until /v1/me of token shows field == want. */
static void me_wait(const char *token, const char *field, const char *want) {
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    for (;;) {
        json_t *j;
        me(token, &j);
        int ok = json_is_string(json_object_get(j, field)) &&
                 strcmp(json_string_value(json_object_get(j, field)), want) == 0;
        json_decref(j);
        if (ok) return;
        if (time(NULL) > deadline) fail_msg("/v1/me never showed %s=%s", field, want);
        usleep(100 * 1000);
    }
}

typedef struct dead {
    char reason[128];
    int unknown_user;
} dead_t;

static void find_dead(const rd_kafka_message_t *m, void *opaque) {
    dead_t *d = opaque;
    Annot__V1__DeadLetter *dl = annot__v1__dead_letter__unpack(NULL, m->len, m->payload);
    if (dl == NULL) return;
    if (strstr(dl->reason, d->reason) != NULL && strstr(dl->topic, "annotators") != NULL)
        d->unknown_user++;
    annot__v1__dead_letter__free_unpacked(dl, NULL);
}

/* The funnel promotes the candidate: they lease production work in their
 * locale and skill.  Rolling quality then suspends them: 403.  A status
 * for nobody goes to the dead-letter topic. */
static void test_promotion_and_suspension(void **state) {
    (void)state;
    char body[1 << 14], task_id[96];
    snprintf(task_id, sizeof(task_id), "%s-prod-1", itest_run);
    produce_production_task(task_id);
    assert_int_equal(post(candidate, "/v1/leases", "{\"queue\":\"annotation\",\"wait_s\":0}", body, sizeof(body)), 403);

    produce_status(candidate_id, ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_ACTIVE, 0,
                   ANNOT__V1__ROLE__ROLE_ANNOTATOR);
    me_wait(candidate, "role", "annotator");
    json_t *j;
    me(candidate, &j);
    assert_string_equal(json_string_value(json_object_get(j, "locale")), "en-US");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "skills"), 0)), skill);
    assert_true(json_is_null(json_object_get(j, "rolling_quality")));
    json_decref(j);
    int st = post(candidate, "/v1/leases", "{\"queue\":\"annotation\",\"wait_s\":10}", body, sizeof(body));
    if (st != 200) fail_msg("lease after promotion: %d %s", st, body);
    assert_non_null(strstr(body, task_id));

    produce_status(candidate_id, ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_SUSPENDED, 0.62,
                   ANNOT__V1__ROLE__ROLE_UNSPECIFIED);
    me_wait(candidate, "status", "suspended");
    me(candidate, &j);
    assert_true(json_real_value(json_object_get(j, "rolling_quality")) > 0.619 &&
                json_real_value(json_object_get(j, "rolling_quality")) < 0.621);
    assert_int_equal(json_integer_value(json_object_get(j, "validated_count")), 20);
    assert_string_equal(json_string_value(json_object_get(j, "role")), "annotator");
    json_decref(j);
    assert_int_equal(post(candidate, "/v1/leases", "{\"queue\":\"annotation\",\"wait_s\":0}", body, sizeof(body)), 403);

    char ghost[64];
    snprintf(ghost, sizeof(ghost), "ghost-%s", itest_run);
    produce_status(ghost, ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_ACTIVE, 0, ANNOT__V1__ROLE__ROLE_UNSPECIFIED);
    dead_t d;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    do {
        d = (dead_t){"", 0};
        snprintf(d.reason, sizeof(d.reason), "no such user (%s)", ghost);
        itest_read_all("dlq", find_dead, &d);
    } while (d.unknown_user == 0 && time(NULL) < deadline && usleep(200 * 1000) == 0);
    assert_int_equal(d.unknown_user, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_screening),
        cmocka_unit_test(test_training),
        cmocka_unit_test(test_promotion_and_suspension),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
