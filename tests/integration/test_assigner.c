/* Integration: annot-assigner with annot-dispatcher on a real stack.
 * Validators are created with `annotctl users add` (announced on the
 * annotators topic through the dispatcher's outbox: the assigner's roster);
 * checked submissions are produced on the checks topic as the autochecker
 * would.  Then, over the dispatcher's HTTP API:
 *   - each validator leases exactly the tasks assigned to them, and never
 *     a submission of their own;
 *   - a validator who lets a lease expire (parked after
 *     lease.validation.max.attempts) sees the work go to another;
 *   - the open work of validators who went quiet moves to one who is
 *     active, and leaves the quiet ones' queues. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "annot/v1/check.pb-c.h"
#include "annot/v1/deadletter.pb-c.h"
#include "itest.h"

#define NVAL 3
#define INACTIVE_MS 3000

static char dschema[64], aschema[64], skill[32];
static int http_port, ops_port, assigner_ops;
static pid_t dispatcher, assigner;
static char tokens[NVAL + 1][128], ids[NVAL + 1][64];

static void user_id_of(const char *token, char *out, size_t len) {
    char me[4096];
    assert_int_equal(itest_http("GET", http_port, "/v1/me", token, NULL, 0, me, sizeof(me)), 200);
    json_t *j = json_loads(me, 0, NULL);
    snprintf(out, len, "%s", json_string_value(json_object_get(j, "user_id")));
    json_decref(j);
}

/* The run's own skill and nothing else: the checks topic holds other runs'
 * work too (exam cases of the funnel tests, for the default exam pool), and
 * the assigner reads it from the start. */
static void validator_add(int i) {
    char extra[128];
    snprintf(extra, sizeof(extra), "--locale en-US --skills %s", skill);
    itest_user_add(dschema, "validator", extra, tokens[i], sizeof(tokens[i]));
    user_id_of(tokens[i], ids[i], sizeof(ids[i]));
}

/* inactive_ms 0: activity not required (no timing in the tests that do
 * not need it). */
static pid_t assigner_start(int inactive_ms) {
    char a_schema[128], a_group[128], a_ops[64], a_ns[64], a_inactive[64];
    assigner_ops = itest_free_port();
    snprintf(a_schema, sizeof(a_schema), "assigner.schema=%s", aschema);
    snprintf(a_group, sizeof(a_group), "assigner.group=asg-%s", itest_run);
    snprintf(a_ops, sizeof(a_ops), "ops.addr=127.0.0.1:%d", assigner_ops);
    snprintf(a_ns, sizeof(a_ns), "dispatcher.redis.ns=%s", itest_run);
    snprintf(a_inactive, sizeof(a_inactive), "assigner.inactive.after.ms=%d", inactive_ms);
    char *const argv[] = {"bin/annot-assigner", "-X", a_schema, "-X", a_group, "-X", a_ops, "-X", a_ns,
                          "-X", a_inactive, "-X", "assigner.sweep.ms=300", "-X", "assigner.double.share=0",
                          "-X", "assigner.double.first.k=0", NULL};
    pid_t pid = itest_spawn("annot-assigner", NULL, argv);
    char body[4096];
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (itest_http("GET", assigner_ops, "/readyz", NULL, NULL, 0, body, sizeof(body)) != 200) {
        if (time(NULL) > deadline) fail_msg("assigner never became ready");
        usleep(100 * 1000);
    }
    return pid;
}

/* Waits until the assigner knows validators 0..n-1 of this run. */
static void roster_wait(int n) {
    const char *list[NVAL + 1];
    for (int i = 0; i < n; i++) list[i] = ids[i];
    char *arr = pg_text_array(list, (size_t)n);
    pg_t *pg = itest_pg(aschema);
    itest_pg_wait_at_least_p(pg, "SELECT count(*) FROM validators WHERE validator_id = ANY($1::text[])", arr, n);
    pg_close(pg);
    free(arr);
}

/* This run's submission ids matching like ("-sub-%"), as a LIKE pattern. */
static const char *run_like(char *buf, size_t len, const char *like) {
    snprintf(buf, len, "%s%s", itest_run, like);
    return buf;
}

/* Waits until n assignments of this run's submissions matching like exist. */
static void assignments_wait(pg_t *pg, const char *like, int n) {
    char pattern[128];
    itest_pg_wait_at_least_p(pg, "SELECT count(*) FROM assignments WHERE submission_id LIKE $1",
                             run_like(pattern, sizeof(pattern), like), n);
}

static int setup(void **state) {
    (void)state;
    if (itest_setup("test_assigner") != 0) return -1;
    snprintf(dschema, sizeof(dschema), "dispa_%s", itest_run);
    snprintf(aschema, sizeof(aschema), "asg_%s", itest_run);
    snprintf(skill, sizeof(skill), "a%s", itest_run + 1);
    /* A lease outlives a slow lease-check-submit on a loaded machine; the
     * expiry test waits it out. */
    static const char *const extra_x[] = {"lease.validation.ttl.ms=4000", "lease.validation.max.attempts=1", NULL};
    dispatcher = itest_dispatcher_start(dschema, &http_port, &ops_port, extra_x);
    assigner = assigner_start(0);
    for (int i = 0; i < NVAL; i++) validator_add(i);
    /* The roster reaches the assigner through the dispatcher's outbox (the
     * topic may hold other runs' validators too: wait for ours). */
    roster_wait(NVAL);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    itest_kill_children(NULL);
    itest_teardown();
    return 0;
}

/* A checked submission by author, as the autochecker publishes it. */
static void produce_check(const char *submission_id, const char *author) {
    char id[EVENT_ID_LEN], task_id[128];
    event_id_new(id);
    snprintf(task_id, sizeof(task_id), "task-of-%s", submission_id);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, "annot-autochecker", "", "g-2026.11");
    char *skills[1] = {skill};
    Annot__V1__Task t = ANNOT__V1__TASK__INIT;
    t.task_id = task_id;
    t.kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    t.main_object = "pad thai";
    t.locale = "en-US";
    t.n_skills = 1;
    t.skills = skills;
    t.guideline_version = "g-2026.11";
    Annot__V1__Submission s = ANNOT__V1__SUBMISSION__INIT;
    s.submission_id = (char *)submission_id;
    s.task_id = task_id;
    s.author_id = (char *)author;
    s.author_role = ANNOT__V1__ROLE__ROLE_ANNOTATOR;
    s.task_kind = t.kind;
    s.description = "Pad thai on a white plate: rice noodles with shrimp, a lime wedge on the rim.";
    s.task = &t;
    Annot__V1__CheckResult c = ANNOT__V1__CHECK_RESULT__INIT;
    c.submission_id = (char *)submission_id;
    c.task_id = task_id;
    c.author_id = (char *)author;
    c.task_kind = t.kind;
    c.locale = "en-US";
    c.score = 1.0;
    c.submission = &s;
    Annot__V1__CheckResultEvent ev = ANNOT__V1__CHECK_RESULT_EVENT__INIT;
    ev.header = &hdr;
    ev.check = &c;
    uint8_t buf[4096];
    size_t len = annot__v1__check_result_event__pack(&ev, buf);
    kafka_producer_t *p = itest_producer();
    itest_produce(p, "checks", submission_id, buf, len, NULL, NULL);
    kafka_producer_destroy(p, 5000);
}

/* Leases one validation task as validator i: 200 with the assignment id
 * and lease id filled, or 204. */
static int lease_one(int i, int wait_s, char *assignment_id, char *lease_id, size_t len) {
    char req[64], body[1 << 14];
    snprintf(req, sizeof(req), "{\"queue\":\"validation\",\"wait_s\":%d}", wait_s);
    int st = itest_http("POST", http_port, "/v1/leases", tokens[i], req, strlen(req), body, sizeof(body));
    if (st == 200) {
        json_t *j = json_loads(body, 0, NULL);
        snprintf(lease_id, len, "%s", json_string_value(json_object_get(j, "lease_id")));
        snprintf(assignment_id, len, "%s",
                 json_string_value(json_object_get(json_object_get(j, "task"), "assignment_id")));
        json_decref(j);
    }
    return st;
}

static int accept_one(int i, const char *lease_id) {
    char path[160], body[4096];
    snprintf(path, sizeof(path), "/v1/leases/%s/submit", lease_id);
    const char *v = "{\"verdict\":\"accept\",\"errors\":[]}";
    return itest_http("POST", http_port, path, tokens[i], v, strlen(v), body, sizeof(body));
}

static long long pg_count_p2(pg_t *pg, const char *sql, const char *a, const char *b) {
    char err[256];
    const char *p[2] = {a, b};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, sql, 2, p, err, sizeof(err));
    if (res == NULL) fail_msg("%s", err);
    long long n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

#define N_SUBS 12

static void test_each_validator_leases_exactly_their_assignments(void **state) {
    (void)state;
    char sid[96];
    for (int k = 0; k < N_SUBS; k++) {
        snprintf(sid, sizeof(sid), "%s-sub-%d", itest_run, k);
        produce_check(sid, "annotator-x");
    }
    /* Validator 0 also annotates: their own submission is never theirs to
     * validate. */
    snprintf(sid, sizeof(sid), "%s-sub-own", itest_run);
    produce_check(sid, ids[0]);
    pg_t *pg = itest_pg(aschema);
    assignments_wait(pg, "-sub-%", N_SUBS + 1);
    assert_int_equal(itest_pg_number_p(pg, "SELECT count(*) FROM assignments WHERE validator_id = $1 AND "
                                           "submission_id LIKE '%-sub-own'", ids[0]),
                     0);
    int per[NVAL] = {0};
    for (int i = 0; i < NVAL; i++) {
        char aid[96], lid[96];
        /* Everything the assigner gave validator i, and nothing else. */
        long long mine = itest_pg_number_p(pg, "SELECT count(*) FROM assignments WHERE validator_id = $1", ids[i]);
        while (lease_one(i, per[i] < mine ? 10 : 1, aid, lid, sizeof(aid)) == 200) {
            assert_int_equal(pg_count_p2(pg, "SELECT count(*) FROM assignments WHERE assignment_id = $1 AND "
                                             "validator_id = $2",
                                         aid, ids[i]),
                             1);
            assert_int_equal(accept_one(i, lid), 202);
            per[i]++;
        }
        assert_int_equal(per[i], mine);
    }
    assert_int_equal(per[0] + per[1] + per[2], N_SUBS + 1);
    /* Load was spread: nobody got more than half. */
    for (int i = 0; i < NVAL; i++) assert_true(per[i] <= (N_SUBS + 1) / 2);
    char pattern[128];
    itest_pg_wait_at_least_p(pg, "SELECT count(*) FROM assignments WHERE submission_id LIKE $1 AND state = 'done'",
                             run_like(pattern, sizeof(pattern), "-sub-%"), N_SUBS + 1);
    pg_close(pg);
}

typedef struct dead {
    const char *key1, *key2;
    int found1, found2;
} dead_t;

static void find_dead(const rd_kafka_message_t *m, void *opaque) {
    dead_t *d = opaque;
    Annot__V1__DeadLetter *dl = annot__v1__dead_letter__unpack(NULL, m->len, m->payload);
    if (dl == NULL) return;
    if (strcmp(dl->service, "annot-assigner") == 0 && dl->key.len == strlen(d->key1) &&
        memcmp(dl->key.data, d->key1, dl->key.len) == 0)
        d->found1++;
    if (strcmp(dl->service, "annot-assigner") == 0 && dl->key.len == strlen(d->key2) &&
        memcmp(dl->key.data, d->key2, dl->key.len) == 0 && strstr(dl->reason, "submission"))
        d->found2++;
    annot__v1__dead_letter__free_unpacked(dl, NULL);
}

/* Bytes that are no CheckResultEvent, and one without its submission: both
 * dead-lettered with their reason, and the assigner goes on (the tests
 * after this one). */
static void test_bad_input_is_dead_lettered(void **state) {
    (void)state;
    char k1[64], k2[64];
    snprintf(k1, sizeof(k1), "%s-garbage", itest_run);
    snprintf(k2, sizeof(k2), "%s-nosub", itest_run);
    kafka_producer_t *p = itest_producer();
    itest_produce(p, "checks", k1, "\xff\xfe not protobuf", 16, NULL, NULL);
    char id[EVENT_ID_LEN];
    event_id_new(id);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, "test", "", "");
    Annot__V1__CheckResult c = ANNOT__V1__CHECK_RESULT__INIT;
    c.submission_id = k2;
    Annot__V1__CheckResultEvent ev = ANNOT__V1__CHECK_RESULT_EVENT__INIT;
    ev.header = &hdr;
    ev.check = &c;
    uint8_t buf[512];
    size_t len = annot__v1__check_result_event__pack(&ev, buf);
    itest_produce(p, "checks", k2, buf, len, NULL, NULL);
    kafka_producer_destroy(p, 5000);
    dead_t d;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    do {
        d = (dead_t){k1, k2, 0, 0};
        itest_read_all("dlq", find_dead, &d);
    } while ((d.found1 == 0 || d.found2 == 0) && time(NULL) < deadline && usleep(200 * 1000) == 0);
    assert_int_equal(d.found1, 1);
    assert_int_equal(d.found2, 1);
}

/* Lease expiry (max attempts 1 here): parked in the dispatcher, reassigned
 * by the assigner to someone else, who leases and validates it. */
static void test_expired_validation_lease_goes_to_another(void **state) {
    (void)state;
    char sid[96], owner[64] = "";
    snprintf(sid, sizeof(sid), "%s-sub-expire", itest_run);
    produce_check(sid, "annotator-y");
    pg_t *pg = itest_pg(aschema);
    assignments_wait(pg, "-sub-expire", 1);
    int x = -1;
    for (int i = 0; i < NVAL; i++)
        if (itest_pg_number_p(pg, "SELECT count(*) FROM assignments WHERE validator_id = $1 AND submission_id LIKE "
                                  "'%-sub-expire'",
                              ids[i]) == 1)
            x = i;
    assert_true(x >= 0);
    snprintf(owner, sizeof(owner), "%s", ids[x]);
    char aid[96], lid[96];
    assert_int_equal(lease_one(x, 10, aid, lid, sizeof(aid)), 200);
    /* ... and let it expire.  The others long-poll for the reassignment. */
    int got = -1;
    char aid2[96], lid2[96];
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (got < 0 && time(NULL) < deadline) {
        for (int i = 0; i < NVAL && got < 0; i++) {
            if (i == x) continue;
            if (lease_one(i, 1, aid2, lid2, sizeof(aid2)) == 200) got = i;
        }
    }
    assert_true(got >= 0 && got != x);
    assert_string_not_equal(aid2, aid);
    assert_int_equal(accept_one(got, lid2), 202);
    /* The old one is replaced, the new one done; the first validator's late
     * verdict is refused. */
    assert_int_equal(pg_count_p2(pg, "SELECT count(*) FROM assignments WHERE assignment_id = $1 AND state = $2", aid,
                                 "replaced"),
                     1);
    itest_pg_wait_at_least_p(pg, "SELECT count(*) FROM assignments WHERE submission_id = $1 AND state = 'done'", sid, 1);
    assert_int_equal(accept_one(x, lid), 409);
    pg_close(pg);
}

/* Validators who went quiet: their open work moves to one who is active
 * (a new validator), and leaves their queues.  The assigner restarts with
 * an inactivity span of INACTIVE_MS for this. */
static void test_quiet_validators_work_moves(void **state) {
    (void)state;
    char sid[96];
    for (int k = 0; k < 3; k++) {
        snprintf(sid, sizeof(sid), "%s-sub-quiet-%d", itest_run, k);
        produce_check(sid, "annotator-z");
    }
    pg_t *pg = itest_pg(aschema);
    assignments_wait(pg, "-sub-quiet-%", 3);
    /* Nobody works for longer than the span; then a new validator arrives. */
    itest_stop_cleanly(assigner);
    usleep((INACTIVE_MS + 500) * 1000);
    assigner = assigner_start(INACTIVE_MS);
    validator_add(NVAL);
    roster_wait(NVAL + 1);
    int got = 0;
    char aid[96], lid[96];
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (got < 3 && time(NULL) < deadline) {
        if (lease_one(NVAL, 2, aid, lid, sizeof(aid)) != 200) continue;
        assert_int_equal(pg_count_p2(pg, "SELECT count(*) FROM assignments WHERE assignment_id = $1 AND "
                                         "validator_id = $2 AND reason = 'reassigned'",
                                     aid, ids[NVAL]),
                         1);
        assert_int_equal(accept_one(NVAL, lid), 202);
        got++;
    }
    assert_int_equal(got, 3);
    /* The quiet ones' copies left their queues. */
    for (int i = 0; i < NVAL; i++) assert_int_equal(lease_one(i, 0, aid, lid, sizeof(aid)), 204);
    char pattern[128];
    assert_int_equal(itest_pg_number_p(pg, "SELECT count(*) FROM assignments WHERE submission_id LIKE $1 AND state = "
                                           "'replaced'",
                                       run_like(pattern, sizeof(pattern), "-sub-quiet-%")),
                     3);
    pg_close(pg);
}

static void test_sigterm_stops_cleanly(void **state) {
    (void)state;
    char body[1 << 14];
    assert_int_equal(itest_http_get(assigner_ops, "/metrics", body, sizeof(body)), 200);
    /* This run of the assigner made the three of the quiet test. */
    assert_non_null(strstr(body, "annot_assignments_total{kind=\"reassigned\"} 3"));
    itest_stop_cleanly(assigner);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_validator_leases_exactly_their_assignments),
        cmocka_unit_test(test_bad_input_is_dead_lettered),
        cmocka_unit_test(test_expired_validation_lease_goes_to_another),
        cmocka_unit_test(test_quiet_validators_work_moves),
        cmocka_unit_test(test_sigterm_stops_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
