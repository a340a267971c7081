/* Integration: validation work through annot-dispatcher.  Assignments
 * produced on the validation-assignments topic reach the assigned
 * validator's own queue; the validator leases one, a verdict with a category
 * outside the taxonomy is refused naming the field, a valid verdict is
 * recorded and published as a ValidationResultEvent (scored by severity)
 * with its guideline feedback; a validator is never handed their own work;
 * an annotator cannot lease validation work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "annot/v1/lease.pb-c.h"
#include "annot/v1/feedback.pb-c.h"
#include "annot/v1/validation.pb-c.h"
#include "itest.h"

static char schema[64], validator[128], validator_id[64], annotator[128];
static int http_port, ops_port;
static pid_t dispatcher;

static int setup(void **state) {
    (void)state;
    if (itest_setup("test_dispatcher_validation") != 0) return -1;
    snprintf(schema, sizeof(schema), "dispv_%s", itest_run);
    itest_user_add(schema, "validator", "--locale en-US", validator, sizeof(validator));
    itest_user_add(schema, "annotator", "--locale en-US", annotator, sizeof(annotator));
    dispatcher = itest_dispatcher_start(schema, &http_port, &ops_port, NULL);
    char body[4096];
    assert_int_equal(itest_http("GET", http_port, "/v1/me", validator, NULL, 0, body, sizeof(body)), 200);
    json_t *me = json_loads(body, 0, NULL);
    snprintf(validator_id, sizeof(validator_id), "%s", json_string_value(json_object_get(me, "user_id")));
    json_decref(me);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    itest_kill_children(NULL);
    itest_teardown();
    return 0;
}

static void produce_assignment(const char *assignment_id, const char *submission_id, const char *author_id) {
    char id[EVENT_ID_LEN];
    event_id_new(id);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, "test", "", "g-3");
    Annot__V1__Task t = ANNOT__V1__TASK__INIT;
    char task_id[128];
    snprintf(task_id, sizeof(task_id), "task-of-%s", submission_id);
    t.task_id = task_id;
    t.kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    t.main_object = "curry rice";
    t.locale = "en-US";
    t.guideline_version = "g-3";
    Annot__V1__ValidationAssignment a = ANNOT__V1__VALIDATION_ASSIGNMENT__INIT;
    a.assignment_id = (char *)assignment_id;
    a.submission_id = (char *)submission_id;
    a.task_id = task_id;
    a.validator_id = validator_id;
    a.author_id = (char *)author_id;
    a.reason = ANNOT__V1__ASSIGNMENT_REASON__ASSIGNMENT_REASON_INITIAL;
    a.description = "A beautiful plate of curry rice with sauce.";
    a.task = &t;
    a.task_kind = t.kind;
    a.check_score = 0.95;
    Annot__V1__ValidationAssignmentEvent ev = ANNOT__V1__VALIDATION_ASSIGNMENT_EVENT__INIT;
    ev.header = &hdr;
    ev.assignment = &a;
    uint8_t buf[2048];
    size_t len = annot__v1__validation_assignment_event__pack(&ev, buf);
    kafka_producer_t *p = itest_producer();
    itest_produce(p, "validation-assignments", submission_id, buf, len, NULL, NULL);
    kafka_producer_destroy(p, 5000);
}

static int lease_validation(const char *token, int wait_s, char *lease_id, size_t len, char *body, size_t blen) {
    char req[128];
    snprintf(req, sizeof(req), "{\"queue\":\"validation\",\"wait_s\":%d}", wait_s);
    int st = itest_http("POST", http_port, "/v1/leases", token, req, strlen(req), body, blen);
    if (st == 200) {
        json_t *j = json_loads(body, 0, NULL);
        snprintf(lease_id, len, "%s", json_string_value(json_object_get(j, "lease_id")));
        json_decref(j);
    }
    return st;
}

static void test_verdict_recorded_and_published(void **state) {
    (void)state;
    char aid[96], sid[96], lease_id[64], body[1 << 14], path[160];
    snprintf(aid, sizeof(aid), "%s-asg-1", itest_run);
    snprintf(sid, sizeof(sid), "%s-sub-1", itest_run);
    produce_assignment(aid, sid, "annotator-elsewhere");
    assert_int_equal(lease_validation(validator, 20, lease_id, sizeof(lease_id), body, sizeof(body)), 200);
    json_t *l = json_loads(body, 0, NULL);
    json_t *task = json_object_get(l, "task");
    assert_string_equal(json_string_value(json_object_get(task, "kind")), "validation");
    assert_string_equal(json_string_value(json_object_get(task, "submission_id")), sid);
    assert_non_null(strstr(json_string_value(json_object_get(task, "description")), "curry rice"));
    json_decref(l);

    snprintf(path, sizeof(path), "/v1/leases/%s/submit", lease_id);
    const char *bad = "{\"verdict\":\"reject\",\"errors\":[{\"category\":\"ugliness\",\"severity\":\"minor\"}]}";
    assert_int_equal(itest_http("POST", http_port, path, validator, bad, strlen(bad), body, sizeof(body)), 400);
    assert_non_null(strstr(body, "errors[0].category"));
    const char *good = "{\"verdict\":\"reject\",\"errors\":["
                       "{\"category\":\"subjective_language\",\"severity\":\"minor\",\"section\":\"3.1\"},"
                       "{\"category\":\"relation_missing\",\"severity\":\"major\",\"note\":\"how is the sauce placed?\"}],"
                       "\"feedback\":[{\"section\":\"4.1\",\"kind\":\"edge_case\",\"text\":\"sauce beside the rice\"}]}";
    int st = itest_http("POST", http_port, path, validator, good, strlen(good), body, sizeof(body));
    if (st != 202) fail_msg("submit: %d %s", st, body);
    /* {"submission_id"} as every submit answers (DESIGN.md section 7): the
     * submission the verdict is on; and the verdict's own id. */
    json_t *ans = json_loads(body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(ans, "submission_id")), sid);
    assert_true(event_id_valid(json_string_value(json_object_get(ans, "validation_id"))));
    json_decref(ans);
    /* The same submit again (its answer lost on the way): the same answer. */
    char first[sizeof(body)];
    memcpy(first, body, sizeof(first));
    assert_int_equal(itest_http("POST", http_port, path, validator, good, strlen(good), body, sizeof(body)), 202);
    itest_assert_replayed(first, body, "validation_id");
    itest_assert_replayed(first, body, "submission_id");
}

typedef struct seen {
    const char *submission_id;
    int results, feedback;
} seen_t;

static void find_result(const rd_kafka_message_t *m, void *opaque) {
    seen_t *s = opaque;
    Annot__V1__ValidationResultEvent *ev = annot__v1__validation_result_event__unpack(NULL, m->len, m->payload);
    if (ev && ev->result && strcmp(ev->result->submission_id, s->submission_id) == 0) {
        s->results++;
        assert_int_equal(ev->result->verdict, ANNOT__V1__VERDICT__VERDICT_REJECT);
        assert_int_equal(ev->result->n_errors, 2);
        assert_string_equal(ev->result->errors[1]->category, "relation_missing");
        assert_true(ev->result->score > 0.7499 && ev->result->score < 0.7501); /* 1 - 0.05 - 0.2 */
        assert_string_equal(ev->result->validator_id, validator_id);
        assert_string_equal(ev->result->author_id, "annotator-elsewhere");
        assert_string_equal(ev->header->guideline_version, "g-3");
    }
    if (ev) annot__v1__validation_result_event__free_unpacked(ev, NULL);
}

static void find_feedback(const rd_kafka_message_t *m, void *opaque) {
    seen_t *s = opaque;
    Annot__V1__GuidelineFeedbackEvent *ev = annot__v1__guideline_feedback_event__unpack(NULL, m->len, m->payload);
    if (ev && ev->feedback && strcmp(ev->submission_id, s->submission_id) == 0) {
        s->feedback++;
        assert_int_equal(ev->feedback->kind, ANNOT__V1__FEEDBACK_KIND__FEEDBACK_KIND_EDGE_CASE);
        assert_string_equal(ev->feedback->section, "4.1");
    }
    if (ev) annot__v1__guideline_feedback_event__free_unpacked(ev, NULL);
}

static void test_result_and_feedback_events(void **state) {
    (void)state;
    char sid[96];
    snprintf(sid, sizeof(sid), "%s-sub-1", itest_run);
    seen_t s = {sid, 0, 0};
    itest_read_all("validation-results", find_result, &s);
    itest_read_all("feedback", find_feedback, &s);
    assert_int_equal(s.results, 1);
    assert_int_equal(s.feedback, 1);
}

typedef struct vlease_seen {
    const char *assignment_id, *submission_id;
    int granted, submitted;
} vlease_seen_t;

static void find_validation_lease(const rd_kafka_message_t *m, void *opaque) {
    vlease_seen_t *s = opaque;
    Annot__V1__LeaseEvent *ev = annot__v1__lease_event__unpack(NULL, m->len, m->payload);
    assert_non_null(ev);
    if (strcmp(ev->assignment_id, s->assignment_id) == 0) {
        char task_id[128];
        snprintf(task_id, sizeof(task_id), "task-of-%s", s->submission_id);
        assert_int_equal(ev->queue, ANNOT__V1__QUEUE__QUEUE_VALIDATION);
        assert_string_equal(ev->submission_id, s->submission_id);
        assert_string_equal(ev->task_id, task_id);
        assert_string_equal(ev->holder_id, validator_id);
        if (ev->event_case == ANNOT__V1__LEASE_EVENT__EVENT_GRANTED) s->granted++;
        if (ev->event_case == ANNOT__V1__LEASE_EVENT__EVENT_RELEASED &&
            ev->released->reason == ANNOT__V1__RELEASE_REASON__RELEASE_REASON_SUBMITTED)
            s->submitted++;
    }
    annot__v1__lease_event__free_unpacked(ev, NULL);
}

/* A validation lease's events name the assignment, the submission and the
 * task under validation. */
static void test_validation_lease_events(void **state) {
    (void)state;
    char aid[96], sid[96];
    snprintf(aid, sizeof(aid), "%s-asg-1", itest_run);
    snprintf(sid, sizeof(sid), "%s-sub-1", itest_run);
    vlease_seen_t s;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    do {
        s = (vlease_seen_t){aid, sid, 0, 0};
        itest_read_all("leases", find_validation_lease, &s);
    } while (s.submitted == 0 && time(NULL) < deadline && usleep(200 * 1000) == 0);
    assert_int_equal(s.granted, 1);
    assert_int_equal(s.submitted, 1);
}

static void test_never_own_work_and_roles(void **state) {
    (void)state;
    char aid[96], sid[96], lease_id[64], body[1 << 14];
    snprintf(aid, sizeof(aid), "%s-asg-own", itest_run);
    snprintf(sid, sizeof(sid), "%s-sub-own", itest_run);
    produce_assignment(aid, sid, validator_id); /* the validator wrote it */
    /* Wait until the intake has it, then the validator still gets nothing. */
    pg_t *pg = itest_pg(schema);
    itest_pg_wait_at_least(pg, "SELECT count(*) FROM assignments WHERE assignment_id LIKE '%-asg-own'", 1);
    pg_close(pg);
    assert_int_equal(lease_validation(validator, 0, lease_id, sizeof(lease_id), body, sizeof(body)), 204);
    assert_int_equal(lease_validation(annotator, 0, lease_id, sizeof(lease_id), body, sizeof(body)), 403);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdict_recorded_and_published),
        cmocka_unit_test(test_result_and_feedback_events),
        cmocka_unit_test(test_validation_lease_events),
        cmocka_unit_test(test_never_own_work_and_roles),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
