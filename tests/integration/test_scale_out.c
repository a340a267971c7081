/* Integration: scale-out.  Two instances of every service, each pair in one
 * consumer group (the two dispatchers also share PostgreSQL and Redis, and
 * the HTTP clients spread their calls over both).  Production tasks are
 * imported with `annotctl tasks import`; annotators lease and submit over
 * HTTP, validators lease what the assigner gave them and submit verdicts.
 * Once both instances of every service have applied events of the first
 * tasks (their /metrics counters), more tasks come and one instance of each
 * service is stopped while they are worked on: SIGKILL for the dispatcher,
 * the assigner and the metrics, SIGTERM for the autochecker and the funnel.
 * The last tasks come after the stop, on every partition: the survivors
 * must take over the stopped instances' partitions (after the session
 * timeout for the killed ones), and the clients move to the surviving
 * dispatcher.  At the end every task is submitted once, checked
 * once, assigned once and validated once (rows, and distinct event ids on
 * the topics), the funnel holds one score per verdict and the metrics'
 * throughput and quality rollups count each step exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "annot/v1/check.pb-c.h"
#include "annot/v1/submission.pb-c.h"
#include "annot/v1/validation.pb-c.h"
#include "itest.h"

#define N_TASKS 150
#define N_FIRST 30  /* imported first: both instances of each service take part */
#define N_SECOND 90 /* then up to here: one of each stops while it is worked on */
/* ... and the rest after the stop, on every partition: the survivors must
 * take over the stopped instances' partitions to finish it. */
#define N_ANN 4
#define N_VAL 3

enum { SVC_DISPATCHER, SVC_AUTOCHECKER, SVC_ASSIGNER, SVC_FUNNEL, SVC_METRICS, SVC_COUNT };
static const char *const svc_names[SVC_COUNT] = {"annot-dispatcher", "annot-autochecker", "annot-assigner",
                                                 "annot-funnel", "annot-metrics"};
/* The roles each service consumes, for the catch-up waits. */
static const char *const svc_roles[SVC_COUNT][11] = {
    {"tasks", "validation-assignments", "candidates", "annotators", NULL},
    {"submissions", NULL},
    {"checks", "annotators", "validation-results", "leases", NULL},
    {"candidates", "validation-results", NULL},
    {"tasks", "leases", "submissions", "checks", "validation-assignments", "validation-results", "feedback",
     "candidates", "annotators", "guidelines", NULL},
};

static char schema[SVC_COUNT][64], group[SVC_COUNT][128], skill[32], gv[64], task_prefix[64];
static pid_t pids[SVC_COUNT][2];
static int ops[SVC_COUNT][2], http[2];
static atomic_int http_alive[2];
static char ann_token[N_ANN][128], ann_id[N_ANN][64], val_token[N_VAL][128], val_id[N_VAL][64];
static atomic_int stop_clients;

static void user_id_of(const char *token, char *out, size_t len) {
    char me[4096];
    assert_int_equal(itest_http("GET", http[0], "/v1/me", token, NULL, 0, me, sizeof(me)), 200);
    json_t *j = json_loads(me, 0, NULL);
    snprintf(out, len, "%s", json_string_value(json_object_get(j, "user_id")));
    json_decref(j);
}

/* One instance of a consuming service (not the dispatcher) with its schema,
 * group and ops port; waits for /readyz. */
static pid_t service_start(int s, int *ops_port) {
    *ops_port = itest_free_port();
    const char *key = svc_names[s] + strlen("annot-");
    char bin[64], a_schema[128], a_group[192], a_ops[64], a_ns[64];
    snprintf(bin, sizeof(bin), "bin/%s", svc_names[s]);
    snprintf(a_schema, sizeof(a_schema), "%s.schema=%s", key, schema[s]);
    snprintf(a_group, sizeof(a_group), "%s.group=%s", key, group[s]);
    snprintf(a_ops, sizeof(a_ops), "ops.addr=127.0.0.1:%d", *ops_port);
    snprintf(a_ns, sizeof(a_ns), "dispatcher.redis.ns=%s", itest_run);
    char *argv[32] = {bin, "-X", a_schema, "-X", a_group, "-X", a_ops, "-X", "kafka.session.timeout.ms=6000"};
    int n = 9;
    if (s == SVC_ASSIGNER) {
        /* One validator per submission and no inactivity sweep: every
         * submission is assigned exactly once. */
        static char *const extra[] = {"assigner.inactive.after.ms=0", "assigner.double.share=0",
                                      "assigner.double.first.k=0"};
        argv[n++] = "-X";
        argv[n++] = a_ns;
        for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
            argv[n++] = "-X";
            argv[n++] = extra[i];
        }
    }
    argv[n] = NULL;
    pid_t pid = itest_spawn(svc_names[s], NULL, argv);
    char body[4096];
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (itest_http("GET", *ops_port, "/readyz", NULL, NULL, 0, body, sizeof(body)) != 200) {
        if (time(NULL) > deadline) fail_msg("%s never became ready", svc_names[s]);
        usleep(100 * 1000);
    }
    return pid;
}

/* An instance's count of events applied (its pipeline's counter). */
static long long applied_of(int port) {
    static char body[1 << 17];
    if (itest_http_get(port, "/metrics", body, sizeof(body)) != 200) return -1;
    const char *m = strstr(body, "annot_events_consumed_total{outcome=\"applied\"} ");
    return m ? strtoll(strchr(m, '}') + 2, NULL, 10) : -1;
}

static void caught_up(int s) {
    for (int r = 0; svc_roles[s][r]; r++) itest_wait_caught_up(group[s], svc_roles[s][r]);
}

static int setup(void **state) {
    (void)state;
    if (itest_setup("test_scale_out") != 0) return -1;
    for (int s = 0; s < SVC_COUNT; s++) {
        snprintf(schema[s], sizeof(schema[s]), "scale_%.4s_%s", svc_names[s] + 6, itest_run);
        snprintf(group[s], sizeof(group[s]), "scale-%s-%s", svc_names[s] + 6, itest_run);
    }
    snprintf(skill, sizeof(skill), "k%s", itest_run + 1);
    snprintf(gv, sizeof(gv), "g-%s-scale", itest_run);
    snprintf(task_prefix, sizeof(task_prefix), "%s-scale-", itest_run);
    /* Short leases with many attempts: a lease whose holder's dispatcher
     * died expires and the task is handed out again, never parked. */
    static const char *const extra[] = {"lease.annotation.ttl.ms=5000", "lease.annotation.max.attempts=100",
                                        "lease.validation.ttl.ms=5000", "lease.validation.max.attempts=100",
                                        "kafka.session.timeout.ms=6000", NULL};
    pids[SVC_DISPATCHER][0] = itest_dispatcher_start(schema[SVC_DISPATCHER], &http[0], &ops[SVC_DISPATCHER][0], extra);
    pids[SVC_DISPATCHER][1] = itest_dispatcher_start(schema[SVC_DISPATCHER], &http[1], &ops[SVC_DISPATCHER][1], extra);
    snprintf(group[SVC_DISPATCHER], sizeof(group[SVC_DISPATCHER]), "disp-%s-%s", itest_run, schema[SVC_DISPATCHER]);
    atomic_store(&http_alive[0], 1);
    atomic_store(&http_alive[1], 1);
    for (int s = 1; s < SVC_COUNT; s++)
        for (int i = 0; i < 2; i++) pids[s][i] = service_start(s, &ops[s][i]);
    char extra_user[128];
    snprintf(extra_user, sizeof(extra_user), "--locale en-US --skills %s", skill);
    for (int i = 0; i < N_ANN; i++) {
        itest_user_add(schema[SVC_DISPATCHER], "annotator", extra_user, ann_token[i], sizeof(ann_token[i]));
        user_id_of(ann_token[i], ann_id[i], sizeof(ann_id[i]));
    }
    for (int i = 0; i < N_VAL; i++) {
        itest_user_add(schema[SVC_DISPATCHER], "validator", extra_user, val_token[i], sizeof(val_token[i]));
        user_id_of(val_token[i], val_id[i], sizeof(val_id[i]));
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    itest_kill_children(NULL);
    itest_teardown();
    return 0;
}

/* One call to whichever dispatcher is next (round robin per client); a
 * dispatcher that does not answer is marked gone and the call goes to the
 * other.  The call is repeated there as it was: a lease call is harmless
 * to repeat, and a repeated submit either finishes the lease or, when the
 * first attempt already had, gets the first answer again (202, replayed). */
static int call(unsigned *turn, const char *path, const char *token, const char *req, char *body, size_t len) {
    for (int tries = 0; tries < 4; tries++) {
        int d = (int)((*turn)++ % 2);
        if (!atomic_load(&http_alive[d])) d ^= 1;
        int st = itest_http("POST", http[d], path, token, req, strlen(req), body, len);
        if (st > 0) return st;
        atomic_store(&http_alive[d], 0);
    }
    return -1;
}

static atomic_int submitted_202, validated_202;

static void *annotator(void *arg) {
    int me = (int)(intptr_t)arg;
    unsigned turn = (unsigned)me;
    char body[1 << 14], path[160], req[512];
    while (!atomic_load(&stop_clients)) {
        int st = call(&turn, "/v1/leases", ann_token[me], "{\"queue\":\"annotation\",\"wait_s\":1}", body,
                      sizeof(body));
        if (st != 200) continue;
        json_t *j = json_loads(body, 0, NULL);
        snprintf(path, sizeof(path), "/v1/leases/%s/submit", json_string_value(json_object_get(j, "lease_id")));
        snprintf(req, sizeof(req),
                 "{\"description\":\"A bowl of %s: white rice in the centre with a fried egg on top of the rice.\"}",
                 json_string_value(json_object_get(json_object_get(j, "task"), "main_object")));
        json_decref(j);
        if (call(&turn, path, ann_token[me], req, body, sizeof(body)) == 202) atomic_fetch_add(&submitted_202, 1);
    }
    return NULL;
}

static void *validator(void *arg) {
    int me = (int)(intptr_t)arg;
    unsigned turn = (unsigned)me;
    char body[1 << 14], path[160];
    while (!atomic_load(&stop_clients)) {
        int st = call(&turn, "/v1/leases", val_token[me], "{\"queue\":\"validation\",\"wait_s\":1}", body,
                      sizeof(body));
        if (st != 200) continue;
        json_t *j = json_loads(body, 0, NULL);
        snprintf(path, sizeof(path), "/v1/leases/%s/submit", json_string_value(json_object_get(j, "lease_id")));
        json_decref(j);
        static const char verdict[] = "{\"verdict\":\"accept\",\"errors\":[]}";
        if (call(&turn, path, val_token[me], verdict, body, sizeof(body)) == 202)
            atomic_fetch_add(&validated_202, 1);
    }
    return NULL;
}

/* Imports tasks from .. to-1. */
static void import_tasks(int from, int to) {
    char path[256], cmd[512];
    snprintf(path, sizeof(path), "build/tests/scale-tasks.%s.%d.ndjson", itest_run, from);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    static const char *const dishes[] = {"bibimbap", "katsu curry", "nasi goreng", "loco moco", "omurice"};
    for (int i = from; i < to; i++)
        fprintf(f,
                "{\"task_id\":\"%s%d\",\"kind\":\"production\",\"image_uri\":\"s3://scale/%d.jpg\","
                "\"main_object\":\"%s\",\"locale\":\"en-US\",\"skills\":[\"%s\"],\"guideline_version\":\"%s\"}\n",
                task_prefix, i, i, dishes[i % 5], skill, gv);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "bin/annotctl -X dispatcher.schema=%s tasks import %s >/dev/null",
             schema[SVC_DISPATCHER], path);
    assert_int_equal(system(cmd), 0);
}

/* Validations recorded for this run's tasks (the dispatcher's rows). */
static long long validations_done(pg_t *dpg) {
    return itest_pg_number_p(dpg,
                             "SELECT count(*) FROM validations v JOIN submissions s ON s.submission_id::text = "
                             "v.submission_id WHERE starts_with(s.task_id, $1)",
                             task_prefix);
}

/* Distinct event ids per submission of this run on a topic. */
typedef struct ids_seen {
    json_t *by_submission; /* submission id -> {event id: true} */
} ids_seen_t;

static void note(ids_seen_t *s, const char *task_id, const char *submission_id, const char *event_id) {
    if (task_id == NULL || strncmp(task_id, task_prefix, strlen(task_prefix)) != 0) return;
    json_t *e = json_object_get(s->by_submission, submission_id);
    if (e == NULL) {
        e = json_object();
        json_object_set_new(s->by_submission, submission_id, e);
    }
    json_object_set_new(e, event_id, json_true());
}

static void seen_submission(const rd_kafka_message_t *m, void *opaque) {
    Annot__V1__SubmissionEvent *ev = annot__v1__submission_event__unpack(NULL, m->len, m->payload);
    if (ev && ev->submission && ev->header)
        note(opaque, ev->submission->task_id, ev->submission->submission_id, ev->header->event_id);
    if (ev) annot__v1__submission_event__free_unpacked(ev, NULL);
}

static void seen_check(const rd_kafka_message_t *m, void *opaque) {
    Annot__V1__CheckResultEvent *ev = annot__v1__check_result_event__unpack(NULL, m->len, m->payload);
    if (ev && ev->check && ev->header) note(opaque, ev->check->task_id, ev->check->submission_id, ev->header->event_id);
    if (ev) annot__v1__check_result_event__free_unpacked(ev, NULL);
}

static void seen_assignment(const rd_kafka_message_t *m, void *opaque) {
    Annot__V1__ValidationAssignmentEvent *ev =
        annot__v1__validation_assignment_event__unpack(NULL, m->len, m->payload);
    if (ev && ev->assignment && ev->header)
        note(opaque, ev->assignment->task_id, ev->assignment->submission_id, ev->header->event_id);
    if (ev) annot__v1__validation_assignment_event__free_unpacked(ev, NULL);
}

static void seen_result(const rd_kafka_message_t *m, void *opaque) {
    Annot__V1__ValidationResultEvent *ev = annot__v1__validation_result_event__unpack(NULL, m->len, m->payload);
    /* The result names the submission; its task is in the assignment. */
    if (ev && ev->result && ev->header && ev->result->task_id)
        note(opaque, ev->result->task_id, ev->result->submission_id, ev->header->event_id);
    if (ev) annot__v1__validation_result_event__free_unpacked(ev, NULL);
}

/* Every submission of the run appears on the topic of role under exactly
 * one event id. */
static void assert_once_on(const char *role, void (*fn)(const rd_kafka_message_t *, void *)) {
    ids_seen_t s = {json_object()};
    itest_read_all(role, fn, &s);
    const char *sid;
    json_t *e;
    int subs = 0;
    json_object_foreach(s.by_submission, sid, e) {
        subs++;
        if (json_object_size(e) != 1) fail_msg("%s: submission %s under %zu event ids", role, sid, json_object_size(e));
    }
    if (subs != N_TASKS) fail_msg("%s: %d submissions of this run, want %d", role, subs, N_TASKS);
    json_decref(s.by_submission);
}

static long long metric_all(pg_t *mpg, const char *sql) {
    return itest_pg_number_p(mpg, sql, gv);
}

static void test_two_of_each_one_stops_nothing_lost_nothing_doubled(void **state) {
    (void)state;
    /* The roster reaches both assigners' shared schema. */
    pg_t *apg = itest_pg(schema[SVC_ASSIGNER]);
    const char *vl[N_VAL];
    for (int i = 0; i < N_VAL; i++) vl[i] = val_id[i];
    char *arr = pg_text_array(vl, N_VAL);
    itest_pg_wait_at_least_p(apg, "SELECT count(*) FROM validators WHERE validator_id = ANY($1::text[])", arr, N_VAL);
    free(arr);
    /* Both groups have read what earlier tests left on the topics: from
     * here on, what the instances apply is this run's work. */
    for (int s = 0; s < SVC_COUNT; s++) caught_up(s);
    long long base[SVC_COUNT][2];
    for (int s = 0; s < SVC_COUNT; s++)
        for (int i = 0; i < 2; i++) base[s][i] = applied_of(ops[s][i]);

    import_tasks(0, N_FIRST);
    pthread_t th[N_ANN + N_VAL];
    for (int i = 0; i < N_ANN; i++) pthread_create(&th[i], NULL, annotator, (void *)(intptr_t)i);
    for (int i = 0; i < N_VAL; i++) pthread_create(&th[N_ANN + i], NULL, validator, (void *)(intptr_t)i);

    /* Both instances of every service take part before anything stops. */
    pg_t *dpg = itest_pg(schema[SVC_DISPATCHER]);
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    for (int s = 0; s < SVC_COUNT; s++) {
        for (int i = 0; i < 2; i++) {
            while (applied_of(ops[s][i]) <= base[s][i]) {
                if (time(NULL) > deadline) fail_msg("%s instance %d applied nothing of this run", svc_names[s], i);
                usleep(100 * 1000);
            }
        }
    }
    /* The rest arrives, and one of each stops while it is worked on. */
    import_tasks(N_FIRST, N_SECOND);
    while (validations_done(dpg) < N_FIRST + 5) {
        if (time(NULL) > deadline) fail_msg("the work was never validated");
        usleep(50 * 1000);
    }
    long long before_stop = validations_done(dpg);
    fprintf(stderr, "  stopping one of each after %lld of %d validations\n", before_stop, N_TASKS);

    /* One of each stops: killed outright or asked to stop. */
    kill(pids[SVC_DISPATCHER][0], SIGKILL);
    kill(pids[SVC_ASSIGNER][0], SIGKILL);
    kill(pids[SVC_METRICS][0], SIGKILL);
    itest_stop_cleanly(pids[SVC_AUTOCHECKER][0]);
    itest_stop_cleanly(pids[SVC_FUNNEL][0]);
    for (int s = SVC_DISPATCHER; s <= SVC_METRICS; s += 2) {
        int st = itest_wait(pids[s][0]);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    }
    long long survivor[SVC_COUNT];
    for (int s = 0; s < SVC_COUNT; s++) survivor[s] = applied_of(ops[s][1]);

    /* The survivors finish the work. */
    import_tasks(N_SECOND, N_TASKS);
    while (validations_done(dpg) < N_TASKS) {
        if (time(NULL) > deadline + ITEST_DEADLINE_S) fail_msg("the work was never finished after the stop");
        usleep(200 * 1000);
    }
    atomic_store(&stop_clients, 1);
    for (int i = 0; i < N_ANN + N_VAL; i++) pthread_join(th[i], NULL);
    fprintf(stderr, "  clients saw %d submits and %d verdicts accepted (202)\n", atomic_load(&submitted_202),
            atomic_load(&validated_202));
    /* Every queue drained: later outputs are on the topics and applied. */
    for (int s = 0; s < SVC_COUNT; s++) caught_up(s);
    for (int s = 0; s < SVC_COUNT; s++)
        if (applied_of(ops[s][1]) <= survivor[s]) fail_msg("%s: the survivor applied nothing after the stop", svc_names[s]);

    /* The dispatcher: every task done, submitted once, validated once. */
    assert_int_equal(itest_pg_number_p(dpg, "SELECT count(*) FROM tasks WHERE starts_with(task_id, $1) AND state = 'done'",
                                       task_prefix),
                     N_TASKS);
    assert_int_equal(itest_pg_number_p(dpg, "SELECT count(*) FROM submissions WHERE starts_with(task_id, $1)", task_prefix),
                     N_TASKS);
    assert_int_equal(validations_done(dpg), N_TASKS);
    assert_int_equal(itest_pg_number_p(dpg,
                                       "SELECT count(DISTINCT v.submission_id) FROM validations v JOIN submissions s ON "
                                       "s.submission_id::text = v.submission_id WHERE starts_with(s.task_id, $1)",
                                       task_prefix),
                     N_TASKS);
    /* The autochecker and the assigner: one row per submission. */
    pg_t *cpg = itest_pg(schema[SVC_AUTOCHECKER]);
    assert_int_equal(itest_pg_number_p(cpg, "SELECT count(*) FROM check_results WHERE starts_with(task_id, $1)",
                                       task_prefix),
                     N_TASKS);
    pg_close(cpg);
    const char *subs_sql = "SELECT count(*) FROM assignments WHERE submission_id = ANY($1::text[])";
    PGresult *res;
    char err[256];
    const char *p[1] = {task_prefix};
    res = pg_query(dpg, PGRES_TUPLES_OK,
                   "SELECT '{' || string_agg(submission_id::text, ',') || '}' FROM submissions WHERE "
                   "starts_with(task_id, $1)",
                   1, p, err, sizeof(err));
    if (res == NULL) fail_msg("%s", err);
    char *sub_arr = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    assert_int_equal(itest_pg_number_p(apg, subs_sql, sub_arr), N_TASKS);
    assert_int_equal(itest_pg_number_p(apg, "SELECT count(*) FROM assignments WHERE submission_id = ANY($1::text[]) "
                                            "AND state = 'done' AND reason = 'initial'",
                                       sub_arr),
                     N_TASKS);
    /* The funnel: one score per verdict, for this run's annotators. */
    pg_t *fpg = itest_pg(schema[SVC_FUNNEL]);
    assert_int_equal(itest_pg_number_p(fpg, "SELECT count(*) FROM annotator_scores WHERE submission_id = ANY($1::text[])",
                                       sub_arr),
                     N_TASKS);
    pg_close(fpg);
    free(sub_arr);
    /* Each step on its topic under one event id per submission. */
    assert_once_on("submissions", seen_submission);
    assert_once_on("checks", seen_check);
    assert_once_on("validation-assignments", seen_assignment);
    assert_once_on("validation-results", seen_result);
    /* The metrics: every step counted once under this run's guideline
     * version (the 'all' window). */
    pg_t *mpg = itest_pg(schema[SVC_METRICS]);
    static const char *const steps[] = {"imported", "submitted", "checked", "assigned", "validated"};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        const char *params[2] = {gv, steps[i]};
        long long items = itest_pg_number_v(mpg,
                                            "SELECT sum(items) FROM throughput WHERE window_kind = 'all' AND "
                                            "guideline_version = $1 AND step = $2",
                                            2, params);
        if (items != N_TASKS) fail_msg("metrics: step %s counted %lld times, want %d", steps[i], items, N_TASKS);
    }
    assert_int_equal(metric_all(mpg, "SELECT validated FROM quality WHERE window_kind = 'all' AND "
                                     "guideline_version = $1 AND dimension = 'all'"),
                     N_TASKS);
    pg_close(mpg);
    pg_close(apg);
    pg_close(dpg);
    /* The survivors stop cleanly. */
    for (int s = 0; s < SVC_COUNT; s++) itest_stop_cleanly(pids[s][1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_of_each_one_stops_nothing_lost_nothing_doubled),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
