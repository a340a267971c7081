/* Integration: leasing through annot-dispatcher's HTTP API on a real stack.
 * Tasks produced on the tasks topic reach the dispatcher's intake; an
 * annotator long-polls and is woken by new work; leases heartbeat, release
 * and submit; a submission is recorded and its SubmissionEvent published;
 * a stale lease gets 409 lease_lost; wrong role and suspension get 403; bad
 * input gets its 400.  Each run has its own Redis namespace, consumer group
 * and skill, so runs on one stack never share work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>

#include "annot/v1/submission.pb-c.h"
#include "annot/v1/lease.pb-c.h"
#include "annot/v1/task.pb-c.h"
#include "itest.h"

static char schema[64], skill[32], annotator[128], candidate[128];
static int http_port, ops_port;
static pid_t dispatcher;

/* Production task i, or with candidate_id set, exam case i of that
 * candidate. */
static void produce_task_for(int i, const char *candidate_id) {
    char id[EVENT_ID_LEN], task_id[64];
    event_id_new(id);
    snprintf(task_id, sizeof(task_id), "%s-task-%d", itest_run, i);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, "test", "", "g-7");
    char *skills[1] = {skill};
    Annot__V1__Component comp = ANNOT__V1__COMPONENT__INIT;
    comp.name = "sauce";
    comp.relation = "poured over";
    comp.target = "rice";
    Annot__V1__Component *comps[1] = {&comp};
    Annot__V1__Task t = ANNOT__V1__TASK__INIT;
    t.task_id = task_id;
    t.kind = candidate_id ? ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE1 : ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    if (candidate_id) t.candidate_id = (char *)candidate_id;
    t.image_uri = "s3://images/curry.jpg";
    t.main_object = "curry rice";
    t.locale = "en-US";
    t.n_skills = 1;
    t.skills = skills;
    t.n_components = 1;
    t.components = comps;
    t.priority = 5;
    t.guideline_version = "g-7";
    Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
    ev.header = &hdr;
    ev.task = &t;
    uint8_t buf[1024];
    size_t len = annot__v1__task_event__pack(&ev, buf);
    kafka_producer_t *p = itest_producer();
    itest_produce(p, "tasks", task_id, buf, len, NULL, NULL);
    kafka_producer_destroy(p, 5000);
}

static void produce_task(int i) {
    produce_task_for(i, NULL);
}

static void user_id_of(const char *token, char *out, size_t len) {
    char me[4096];
    assert_int_equal(itest_http("GET", http_port, "/v1/me", token, NULL, 0, me, sizeof(me)), 200);
    json_t *j = json_loads(me, 0, NULL);
    assert_non_null(j);
    snprintf(out, len, "%s", json_string_value(json_object_get(j, "user_id")));
    json_decref(j);
}

static int setup(void **state) {
    (void)state;
    if (itest_setup("test_dispatcher_leases") != 0) return -1;
    snprintf(schema, sizeof(schema), "displ_%s", itest_run);
    snprintf(skill, sizeof(skill), "s%s", itest_run + 1);
    char extra[128];
    snprintf(extra, sizeof(extra), "--locale en-US --skills %s", skill);
    itest_user_add(schema, "annotator", extra, annotator, sizeof(annotator));
    itest_user_add(schema, "candidate", NULL, candidate, sizeof(candidate));
    static const char *const extra_x[] = {"lease.annotation.ttl.ms=60000", "lease.annotation.max.held=2",
                                          "lease.exam.ttl.ms=1000", "lease.exam.max.attempts=1", NULL};
    dispatcher = itest_dispatcher_start(schema, &http_port, &ops_port, extra_x);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    itest_kill_children(NULL);
    itest_teardown();
    return 0;
}

typedef struct lease_resp {
    int status;
    char lease_id[64];
    long long fence;
    char task_id[128];
    char body[1 << 14];
} lease_resp_t;

static void lease(const char *token, const char *req, lease_resp_t *out) {
    out->status = itest_http("POST", http_port, "/v1/leases", token, req, strlen(req), out->body, sizeof(out->body));
    out->lease_id[0] = out->task_id[0] = '\0';
    if (out->status != 200) return;
    json_t *j = json_loads(out->body, 0, NULL);
    assert_non_null(j);
    snprintf(out->lease_id, sizeof(out->lease_id), "%s", json_string_value(json_object_get(j, "lease_id")));
    out->fence = json_integer_value(json_object_get(j, "fencing_token"));
    json_t *task = json_object_get(j, "task");
    snprintf(out->task_id, sizeof(out->task_id), "%s", json_string_value(json_object_get(task, "task_id")));
    assert_true(json_string_length(json_object_get(task, "main_object")) > 0);
    assert_true(json_integer_value(json_object_get(j, "expires_at_ms")) > 0);
    json_decref(j);
}

static int post(const char *token, const char *lease_id, const char *action, const char *body, char *out, size_t len) {
    char path[256];
    snprintf(path, sizeof(path), "/v1/leases/%s/%s", lease_id, action);
    return itest_http("POST", http_port, path, token, body, body ? strlen(body) : 0, out, len);
}

static void *long_poll(void *arg) {
    lease(annotator, "{\"queue\":\"annotation\",\"wait_s\":20}", arg);
    return NULL;
}

static void test_long_poll_is_woken_by_new_work(void **state) {
    (void)state;
    static lease_resp_t r;
    pthread_t th;
    pthread_create(&th, NULL, long_poll, &r);
    usleep(300 * 1000); /* let the poll start waiting; the test holds either way */
    produce_task(1);
    pthread_join(th, NULL);
    assert_int_equal(r.status, 200);
    char task[128];
    snprintf(task, sizeof(task), "%s-task-1", itest_run);
    assert_string_equal(r.task_id, task);
    char body[4096];
    assert_int_equal(post(annotator, r.lease_id, "heartbeat", NULL, body, sizeof(body)), 200);
    assert_non_null(strstr(body, "expires_at_ms"));
    const char *sub = "{\"description\":\"Japanese curry rice: the brown sauce is poured over the white rice.\"}";
    assert_int_equal(post(annotator, r.lease_id, "submit", sub, body, sizeof(body)), 202);
    char first[4096];
    snprintf(first, sizeof(first), "%s", body);
    assert_non_null(strstr(first, "submission_id"));
    /* Submitting again is a retry of a submit whose answer was lost: the
     * same answer, and nothing recorded twice (test_submission_event_published
     * counts one row and one event). */
    assert_int_equal(post(annotator, r.lease_id, "submit", sub, body, sizeof(body)), 202);
    itest_assert_replayed(first, body, "submission_id");
    /* Someone else with that lease id: lost, not the author's answer. */
    assert_int_equal(post(candidate, r.lease_id, "submit", sub, body, sizeof(body)), 409);
    assert_non_null(strstr(body, "lease_lost"));
}

typedef struct found {
    const char *task_id;
    int count;
} found_t;

static void find_submission(const rd_kafka_message_t *m, void *opaque) {
    found_t *f = opaque;
    Annot__V1__SubmissionEvent *ev = annot__v1__submission_event__unpack(NULL, m->len, m->payload);
    if (ev == NULL) return;
    if (ev->submission && strcmp(ev->submission->task_id, f->task_id) == 0) {
        f->count++;
        assert_non_null(strstr(ev->submission->description, "poured over"));
        assert_non_null(ev->submission->task);
        assert_string_equal(ev->submission->task->main_object, "curry rice");
        assert_int_equal(ev->submission->task->n_components, 1);
        assert_string_equal(ev->header->guideline_version, "g-7");
        assert_true(ev->submission->fencing_token >= 1);
    }
    annot__v1__submission_event__free_unpacked(ev, NULL);
}

static void test_submission_event_published(void **state) {
    (void)state;
    char task[128];
    snprintf(task, sizeof(task), "%s-task-1", itest_run);
    found_t f = {task, 0};
    itest_read_all("submissions", find_submission, &f);
    assert_int_equal(f.count, 1);
    pg_t *pg = itest_pg(schema);
    assert_int_equal(itest_pg_number_p(pg, "SELECT count(*) FROM submissions WHERE task_id = $1", task), 1);
    pg_close(pg);
}

typedef struct lease_seen {
    const char *task_id;
    char holder_id[64];
    int granted, heartbeat, submitted, other;
    char lease_id[64];
    uint64_t fence;
} lease_seen_t;

static void find_lease_events(const rd_kafka_message_t *m, void *opaque) {
    lease_seen_t *s = opaque;
    Annot__V1__LeaseEvent *ev = annot__v1__lease_event__unpack(NULL, m->len, m->payload);
    assert_non_null(ev); /* everything on the leases topic decodes */
    if (strcmp(ev->task_id, s->task_id) == 0) {
        assert_int_equal(ev->queue, ANNOT__V1__QUEUE__QUEUE_ANNOTATION);
        assert_string_equal(ev->holder_id, s->holder_id);
        assert_true(event_id_valid(ev->header->event_id));
        assert_string_equal(ev->header->source, "annot-dispatcher");
        assert_int_equal(m->key_len, strlen(s->task_id));
        if (s->lease_id[0] == '\0') snprintf(s->lease_id, sizeof(s->lease_id), "%s", ev->lease_id);
        assert_string_equal(ev->lease_id, s->lease_id);
        if (ev->event_case == ANNOT__V1__LEASE_EVENT__EVENT_GRANTED) {
            s->granted++;
            s->fence = ev->fencing_token;
            assert_int_equal(ev->granted->ttl_ms, 60000);
            assert_int_equal(ev->granted->expires_at_ms - ev->granted->granted_at_ms, 60000);
        } else if (ev->event_case == ANNOT__V1__LEASE_EVENT__EVENT_HEARTBEAT) {
            s->heartbeat++;
            assert_int_equal(ev->heartbeat->heartbeat_count, 1);
        } else if (ev->event_case == ANNOT__V1__LEASE_EVENT__EVENT_RELEASED &&
                   ev->released->reason == ANNOT__V1__RELEASE_REASON__RELEASE_REASON_SUBMITTED) {
            s->submitted++;
            assert_false(ev->released->requeued);
        } else {
            s->other++;
        }
    }
    annot__v1__lease_event__free_unpacked(ev, NULL);
}

/* The lease of the first test shows on the leases topic as granted,
 * heartbeat and released on submit, each exactly once. */
static void test_lease_events_published(void **state) {
    (void)state;
    char task[128];
    snprintf(task, sizeof(task), "%s-task-1", itest_run);
    char holder[64];
    user_id_of(annotator, holder, sizeof(holder));
    lease_seen_t s;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    do {
        memset(&s, 0, sizeof(s));
        s.task_id = task;
        snprintf(s.holder_id, sizeof(s.holder_id), "%s", holder);
        itest_read_all("leases", find_lease_events, &s);
    } while (s.submitted == 0 && time(NULL) < deadline && usleep(200 * 1000) == 0);
    assert_int_equal(s.granted, 1);
    assert_int_equal(s.heartbeat, 1);
    assert_int_equal(s.submitted, 1);
    assert_int_equal(s.other, 0);
    assert_true(s.fence >= 1);
}

static void test_stale_lease_after_release_gets_409(void **state) {
    (void)state;
    produce_task(2);
    lease_resp_t a, b;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    do {
        lease(annotator, "{\"queue\":\"annotation\",\"wait_s\":5}", &a);
    } while (a.status == 204 && time(NULL) < deadline);
    assert_int_equal(a.status, 200);
    char body[4096];
    assert_int_equal(post(annotator, a.lease_id, "release", NULL, body, sizeof(body)), 200);
    lease(annotator, "{\"queue\":\"annotation\",\"wait_s\":5}", &b);
    assert_int_equal(b.status, 200);
    assert_string_equal(b.task_id, a.task_id);
    assert_true(b.fence > a.fence); /* the token rose with the new lease */
    const char *sub = "{\"description\":\"curry rice with the sauce poured over the rice\"}";
    assert_int_equal(post(annotator, a.lease_id, "submit", sub, body, sizeof(body)), 409);
    assert_non_null(strstr(body, "lease_lost"));
    assert_int_equal(post(annotator, a.lease_id, "heartbeat", NULL, body, sizeof(body)), 409);
    /* A bad body is refused naming the field, and the lease stays good. */
    assert_int_equal(post(annotator, b.lease_id, "submit", "{\"description\":7}", body, sizeof(body)), 400);
    assert_non_null(strstr(body, "description"));
    assert_int_equal(post(annotator, b.lease_id, "submit", "{\"description\":\"x\",\"mood\":1}", body, sizeof(body)), 400);
    assert_non_null(strstr(body, "mood"));
    assert_int_equal(post(annotator, b.lease_id, "submit", sub, body, sizeof(body)), 202);
    /* Nothing left: 204 after the (short) wait. */
    lease(annotator, "{\"queue\":\"annotation\",\"wait_s\":0}", &a);
    assert_int_equal(a.status, 204);
}

typedef struct park_seen {
    const char *task_id;
    int granted, expired, parked;
} park_seen_t;

static void find_park_events(const rd_kafka_message_t *m, void *opaque) {
    park_seen_t *s = opaque;
    Annot__V1__LeaseEvent *ev = annot__v1__lease_event__unpack(NULL, m->len, m->payload);
    assert_non_null(ev);
    if (strcmp(ev->task_id, s->task_id) == 0) {
        assert_int_equal(ev->queue, ANNOT__V1__QUEUE__QUEUE_EXAM);
        if (ev->event_case == ANNOT__V1__LEASE_EVENT__EVENT_GRANTED) s->granted++;
        if (ev->event_case == ANNOT__V1__LEASE_EVENT__EVENT_EXPIRED) {
            s->expired++;
            assert_false(ev->expired->requeued);
            assert_int_equal(ev->expired->max_attempts, 1);
            assert_true(ev->expired->detected_at_ms >= ev->expired->expires_at_ms);
        }
        if (ev->event_case == ANNOT__V1__LEASE_EVENT__EVENT_PARKED) {
            s->parked++;
            assert_int_equal(ev->parked->reason, ANNOT__V1__PARK_REASON__PARK_REASON_MAX_ATTEMPTS);
            assert_int_equal(ev->parked->attempts, 1);
        }
    }
    annot__v1__lease_event__free_unpacked(ev, NULL);
}

/* An exam case whose lease expires (max attempts 1 here) is parked: the
 * reaper's expired and parked events reach the leases topic, PostgreSQL
 * records it (so a rebuild does not queue it again: see the Redis loss
 * test), and nobody can lease it. */
static void test_expired_exam_case_is_parked(void **state) {
    (void)state;
    char cand_id[64], task[128];
    user_id_of(candidate, cand_id, sizeof(cand_id));
    produce_task_for(100, cand_id);
    snprintf(task, sizeof(task), "%s-task-100", itest_run);
    lease_resp_t a;
    lease(candidate, "{\"queue\":\"exam\",\"wait_s\":20}", &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.task_id, task);
    pg_t *pg = itest_pg(schema);
    /* This task: the schema may hold other parked work (validation tasks
     * replaced by the assigner, from other tests on the same topics). */
    time_t until = time(NULL) + ITEST_DEADLINE_S;
    while (itest_pg_number_p(pg, "SELECT count(*) FROM tasks WHERE task_id = $1 AND state = 'parked'", task) != 1) {
        if (time(NULL) > until) fail_msg("exam case %s never parked in PostgreSQL", task);
        usleep(100 * 1000);
    }
    pg_close(pg);
    park_seen_t s;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    do {
        s = (park_seen_t){task, 0, 0, 0};
        itest_read_all("leases", find_park_events, &s);
    } while (s.parked == 0 && time(NULL) < deadline && usleep(200 * 1000) == 0);
    assert_int_equal(s.granted, 1);
    assert_int_equal(s.expired, 1);
    assert_int_equal(s.parked, 1);
    char body[4096];
    assert_int_equal(post(candidate, a.lease_id, "heartbeat", NULL, body, sizeof(body)), 409);
    lease(candidate, "{\"queue\":\"exam\",\"wait_s\":0}", &a);
    assert_int_equal(a.status, 204);
}

typedef struct exam_seen {
    const char *task_id, *candidate_id;
    int count;
} exam_seen_t;

static void find_exam_submission(const rd_kafka_message_t *m, void *opaque) {
    exam_seen_t *f = opaque;
    Annot__V1__SubmissionEvent *ev = annot__v1__submission_event__unpack(NULL, m->len, m->payload);
    if (ev == NULL) return;
    if (ev->submission && strcmp(ev->submission->task_id, f->task_id) == 0) {
        f->count++;
        assert_int_equal(ev->submission->exam_stage, ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_EXAM1);
        assert_string_equal(ev->submission->candidate_id, f->candidate_id);
        assert_int_equal(ev->submission->author_role, ANNOT__V1__ROLE__ROLE_CANDIDATE);
    }
    annot__v1__submission_event__free_unpacked(ev, NULL);
}

/* An exam case's submission names its stage and candidate: the funnel
 * decides a stage only from verdicts that carry them, and they come from
 * here through the autochecker and the assigner. */
static void test_exam_submission_carries_its_stage(void **state) {
    (void)state;
    char cand_id[64], task[128], body[4096];
    user_id_of(candidate, cand_id, sizeof(cand_id));
    produce_task_for(101, cand_id);
    snprintf(task, sizeof(task), "%s-task-101", itest_run);
    lease_resp_t a;
    lease(candidate, "{\"queue\":\"exam\",\"wait_s\":20}", &a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.task_id, task);
    const char *sub = "{\"description\":\"Curry rice: the brown sauce is poured over the white rice.\"}";
    assert_int_equal(post(candidate, a.lease_id, "submit", sub, body, sizeof(body)), 202);
    exam_seen_t f = {task, cand_id, 0};
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    do {
        f.count = 0;
        itest_read_all("submissions", find_exam_submission, &f);
    } while (f.count == 0 && time(NULL) < deadline && usleep(200 * 1000) == 0);
    assert_int_equal(f.count, 1);
}

static void test_redis_loss_rebuilds_from_postgresql(void **state) {
    (void)state;
    produce_task(3);
    lease_resp_t a, b;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    do {
        lease(annotator, "{\"queue\":\"annotation\",\"wait_s\":5}", &a);
    } while (a.status == 204 && time(NULL) < deadline);
    assert_int_equal(a.status, 200);
    itest_redis_lose_everything();
    /* The dispatcher notices within a second and queues task 3 again; the
     * finished tasks 1 and 2 stay finished. */
    lease(annotator, "{\"queue\":\"annotation\",\"wait_s\":20}", &b);
    assert_int_equal(b.status, 200);
    assert_string_equal(b.task_id, a.task_id);
    assert_true(b.fence > a.fence);
    assert_true(b.fence >= (1LL << 32));
    char body[4096];
    const char *sub = "{\"description\":\"curry rice with the sauce poured over the rice\"}";
    assert_int_equal(post(annotator, a.lease_id, "submit", sub, body, sizeof(body)), 409);
    assert_int_equal(post(annotator, b.lease_id, "submit", sub, body, sizeof(body)), 202);
    lease(annotator, "{\"queue\":\"annotation\",\"wait_s\":0}", &a);
    assert_int_equal(a.status, 204);
    /* The parked exam case stayed parked through the rebuild. */
    lease(candidate, "{\"queue\":\"exam\",\"wait_s\":0}", &a);
    assert_int_equal(a.status, 204);
}

/* annotctl tasks import: a file with a bad line imports nothing and names
 * the line and field; a good file's tasks reach the dispatcher's queues. */
static void test_tasks_import(void **state) {
    (void)state;
    char path[128], cmd[512], task_line[512];
    snprintf(path, sizeof(path), "/tmp/annot-import-%s.ndjson", itest_run);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 2; i++) {
        snprintf(task_line, sizeof(task_line),
                 "{\"task_id\":\"%s-imp-%d\",\"kind\":\"production\",\"image_uri\":\"s3://i/%d.jpg\","
                 "\"main_object\":\"kimono\",\"locale\":\"en-US\",\"skills\":[\"%s\"],\"priority\":3}\n",
                 itest_run, i, i, skill);
        fputs(task_line, f);
    }
    fputs("{\"task_id\":\"x\",\"kind\":\"production\",\"main_object\":\"x\",\"shape\":\"round\"}\n", f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "bin/annotctl tasks import %s 2>/tmp/annot-import-%s.err", path, itest_run);
    assert_int_not_equal(system(cmd), 0);
    char errpath[128], errtext[1024] = "";
    snprintf(errpath, sizeof(errpath), "/tmp/annot-import-%s.err", itest_run);
    f = fopen(errpath, "r");
    size_t got = fread(errtext, 1, sizeof(errtext) - 1, f);
    errtext[got] = '\0';
    fclose(f);
    assert_non_null(strstr(errtext, "line 3"));
    assert_non_null(strstr(errtext, "task.shape"));
    assert_non_null(strstr(errtext, "nothing imported"));
    /* Without the bad line it imports, and both tasks can be leased. */
    snprintf(cmd, sizeof(cmd), "head -n 2 %s | bin/annotctl tasks import - >/dev/null", path);
    assert_int_equal(system(cmd), 0);
    /* Two live leases at once (lease.annotation.max.held=2): both tasks. */
    lease_resp_t r[2];
    char body[4096];
    for (int i = 0; i < 2; i++) {
        lease(annotator, "{\"queue\":\"annotation\",\"wait_s\":20}", &r[i]);
        assert_int_equal(r[i].status, 200);
        assert_non_null(strstr(r[i].task_id, "-imp-"));
    }
    assert_string_not_equal(r[0].task_id, r[1].task_id);
    for (int i = 0; i < 2; i++)
        assert_int_equal(post(annotator, r[i].lease_id, "submit", "{\"description\":\"a kimono\"}", body, sizeof(body)), 202);
    unlink(path);
    unlink(errpath);
}

static void test_roles_suspension_and_bad_input(void **state) {
    (void)state;
    lease_resp_t r;
    lease(candidate, "{\"queue\":\"annotation\"}", &r);
    assert_int_equal(r.status, 403);
    lease(annotator, "{\"queue\":\"nope\"}", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "queue"));
    lease(annotator, "{\"queue\":\"annotation\",\"wait_s\":99}", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "wait_s"));
    lease(annotator, "{\"queue\":\"annotation\",\"color\":1}", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "color"));
    lease(annotator, "not json", &r);
    assert_int_equal(r.status, 400);
    char body[4096];
    assert_int_equal(post(annotator, "no-such-lease", "heartbeat", NULL, body, sizeof(body)), 409);
    /* An unknown lease is lost, whatever the body. */
    assert_int_equal(post(annotator, "no-such-lease", "submit", "{\"description\":7}", body, sizeof(body)), 409);
    /* So is an empty lease id, or one too long to be ours (both were 404,
     * as if the path did not exist). */
    char overlong[201];
    memset(overlong, 'a', sizeof(overlong) - 1);
    overlong[sizeof(overlong) - 1] = '\0';
    /* Nor one holding an encoded NUL or slash (the NUL cut the path short,
     * the slash made another path: both 404). */
    const char *never_issued[] = {"", overlong, "%00", "x%00y", "a%2Fb", "%2F"};
    const char *actions[] = {"heartbeat", "release", "submit"};
    for (size_t i = 0; i < sizeof(never_issued) / sizeof(never_issued[0]); i++) {
        for (size_t a = 0; a < 3; a++) {
            assert_int_equal(post(annotator, never_issued[i], actions[a], "{\"description\":\"x\"}", body, sizeof(body)),
                             409);
            assert_non_null(strstr(body, "\"lease_lost\""));
        }
    }

    pg_t *pg = itest_pg(schema);
    char err[256];
    assert_int_equal(pg_command(pg, "UPDATE users SET status = 'suspended' WHERE role = 'annotator'", 0, NULL, err,
                                sizeof(err)), 1);
    pg_close(pg);
    lease(annotator, "{\"queue\":\"annotation\"}", &r);
    assert_int_equal(r.status, 403);
    assert_non_null(strstr(r.body, "suspended"));
}

static void test_metrics_show_leases_and_queues(void **state) {
    (void)state;
    char body[1 << 16], want[128];
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    snprintf(want, sizeof(want), "annot_queue_depth{pool=\"en-US/%s\"} 0", skill);
    /* Gauges refresh every second. */
    do {
        assert_int_equal(itest_http_get(ops_port, "/metrics", body, sizeof(body)), 200);
    } while (strstr(body, want) == NULL && time(NULL) < deadline && usleep(200 * 1000) == 0);
    assert_non_null(strstr(body, want));
    assert_non_null(strstr(body, "annot_leases_open{queue=\"annotation\"} "));
    assert_non_null(strstr(body, "annot_leases_total{outcome=\"granted\"}"));
    assert_non_null(strstr(body, "annot_leases_total{outcome=\"submitted\"}"));
}

/* kill -9 between the Redis script that ends the lease and the PostgreSQL
 * commit that records the submission: nothing is recorded, and the next
 * dispatcher queues the task again (it is never stuck "done" in Redis
 * alone); its new holder submits it. */
static void test_crash_before_commit_loses_no_task(void **state) {
    (void)state;
    /* A fresh annotator: the one above was suspended. */
    char worker[128], extra[128];
    snprintf(extra, sizeof(extra), "--locale en-US --skills %s", skill);
    itest_user_add(schema, "annotator", extra, worker, sizeof(worker));
    itest_stop_cleanly(dispatcher);
    static const char *const extra_x[] = {"lease.annotation.ttl.ms=60000", NULL};
    pid_t crashing = itest_dispatcher_start_at(schema, &http_port, &ops_port, extra_x, "dispatcher.submit.before_commit");
    produce_task(5);
    char task[128];
    snprintf(task, sizeof(task), "%s-task-5", itest_run);
    lease_resp_t a, b;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    do {
        lease(worker, "{\"queue\":\"annotation\",\"wait_s\":20}", &a);
    } while (a.status == 204 && time(NULL) < deadline);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.task_id, task);
    char body[4096];
    const char *sub = "{\"description\":\"curry rice with the sauce poured over the rice\"}";
    assert_true(post(worker, a.lease_id, "submit", sub, body, sizeof(body)) != 202);
    int st = itest_wait(crashing);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    pg_t *pg = itest_pg(schema);
    assert_int_equal(itest_pg_number_p(pg, "SELECT count(*) FROM submissions WHERE task_id = $1", task), 0);

    dispatcher = itest_dispatcher_start(schema, &http_port, &ops_port, extra_x);
    lease(worker, "{\"queue\":\"annotation\",\"wait_s\":30}", &b);
    assert_int_equal(b.status, 200);
    assert_string_equal(b.task_id, task);
    assert_true(b.fence > a.fence);
    assert_int_equal(post(worker, b.lease_id, "submit", sub, body, sizeof(body)), 202);
    assert_int_equal(itest_pg_number_p(pg, "SELECT count(*) FROM submissions WHERE task_id = $1", task), 1);
    pg_close(pg);
}

static void test_sigterm_stops_cleanly(void **state) {
    (void)state;
    itest_stop_cleanly(dispatcher);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_poll_is_woken_by_new_work),
        cmocka_unit_test(test_submission_event_published),
        cmocka_unit_test(test_lease_events_published),
        cmocka_unit_test(test_stale_lease_after_release_gets_409),
        cmocka_unit_test(test_expired_exam_case_is_parked),
        cmocka_unit_test(test_exam_submission_carries_its_stage),
        cmocka_unit_test(test_redis_loss_rebuilds_from_postgresql),
        cmocka_unit_test(test_tasks_import),
        cmocka_unit_test(test_roles_suspension_and_bad_input),
        cmocka_unit_test(test_metrics_show_leases_and_queues),
        cmocka_unit_test(test_crash_before_commit_loses_no_task),
        cmocka_unit_test(test_sigterm_stops_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
