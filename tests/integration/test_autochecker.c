/* Integration: annot-autochecker on a real stack.  Submissions, clean and
 * with subjective language, go in; the service is killed right after a
 * commit, restarted, has its rules reloaded by SIGHUP mid-stream, and stops
 * on SIGTERM.  Every submission must be checked and recorded exactly once,
 * with the findings a validator would expect, its CheckResultEvent published
 * under the id derived from the submission event, and the input it cannot
 * check (undecodable, no task, an author id not valid UTF-8) dead-lettered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "annot/v1/check.pb-c.h"
#include "annot/v1/deadletter.pb-c.h"
#include "annot/v1/submission.pb-c.h"
#include "itest.h"

#define CHECKER_BIN "bin/annot-autochecker"
#define N_SUBMISSIONS 60

static int setup(void **state) {
    (void)state;
    return itest_setup("test_autochecker");
}

static int teardown(void **state) {
    (void)state;
    itest_teardown();
    return 0;
}

static const char clean_text[] =
    "Japanese curry rice on a white ceramic plate. The thick brown curry sauce is poured over the left half "
    "of the white rice, with soft cubes of carrot and potato in the sauce. A silver spoon lies on the right "
    "side of the plate, on a light wooden table.";
static const char subjective_text[] =
    "Japanese curry rice on a white ceramic plate. The thick brown curry sauce is poured over the left half "
    "of the white rice, with soft cubes of carrot and potato in the sauce. It looks absolutely delicious and "
    "the whole scene is beautiful.";

typedef struct sub {
    char event_id[EVENT_ID_LEN];
    char submission_id[96];
    int subjective;
} sub_t;

static void produce_submission(kafka_producer_t *p, sub_t *s, const char *author_id) {
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, s->event_id, "test", "", "g-test");
    Annot__V1__Component comp = ANNOT__V1__COMPONENT__INIT;
    comp.name = "sauce";
    comp.relation = "poured over";
    comp.target = "rice";
    Annot__V1__Component *comps[1] = {&comp};
    Annot__V1__Task task = ANNOT__V1__TASK__INIT;
    task.task_id = s->submission_id;
    task.kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    task.main_object = "curry rice";
    task.locale = "en-US";
    task.n_components = 1;
    task.components = comps;
    Annot__V1__Submission sub = ANNOT__V1__SUBMISSION__INIT;
    sub.submission_id = s->submission_id;
    sub.task_id = s->submission_id;
    sub.author_id = (char *)author_id;
    sub.task_kind = task.kind;
    sub.description = (char *)(s->subjective ? subjective_text : clean_text);
    sub.task = &task;
    Annot__V1__SubmissionEvent ev = ANNOT__V1__SUBMISSION_EVENT__INIT;
    ev.header = &hdr;
    ev.submission = &sub;
    size_t len = annot__v1__submission_event__get_packed_size(&ev);
    uint8_t *buf = malloc(len);
    annot__v1__submission_event__pack(&ev, buf);
    itest_produce(p, "submissions", s->submission_id, buf, len, NULL, NULL);
    free(buf);
}

static pid_t checker_spawn(const char *schema, const char *group, int port, const char *crash_at) {
    char a_schema[128], a_group[128], a_ops[64];
    snprintf(a_schema, sizeof(a_schema), "autochecker.schema=%s", schema);
    snprintf(a_group, sizeof(a_group), "autochecker.group=%s", group);
    snprintf(a_ops, sizeof(a_ops), "ops.addr=127.0.0.1:%d", port);
    char *const argv[] = {CHECKER_BIN, "-X", a_schema, "-X", a_group, "-X", a_ops,
                          "-X", "kafka.session.timeout.ms=6000", "-X", "kafka.auto.commit.interval.ms=200",
                          "-X", "pipeline.batch.max=5", NULL};
    return itest_spawn("annot-autochecker", crash_at, argv);
}

typedef struct checks_seen {
    const char *prefix;
    sub_t *subs;
    int found[N_SUBMISSIONS];
    int subjective_flagged;
} checks_seen_t;

static void collect_check(const rd_kafka_message_t *m, void *opaque) {
    checks_seen_t *c = opaque;
    size_t pl = strlen(c->prefix);
    if (m->key_len < pl || memcmp(m->key, c->prefix, pl) != 0) return;
    Annot__V1__CheckResultEvent *ev = annot__v1__check_result_event__unpack(NULL, m->len, m->payload);
    assert_non_null(ev);
    assert_non_null(ev->check);
    int i = atoi(ev->check->submission_id + pl);
    assert_true(i >= 0 && i < N_SUBMISSIONS);
    sub_t *s = &c->subs[i];
    char want[EVENT_ID_LEN];
    event_id_derive(want, s->event_id, "check");
    assert_string_equal(ev->header->event_id, want);
    assert_string_equal(ev->header->causation_id, s->event_id);
    assert_string_equal(ev->header->guideline_version, "g-test");
    int subjective = 0;
    for (size_t f = 0; f < ev->check->n_findings; f++)
        subjective |= strcmp(ev->check->findings[f]->rule, "subjective_language") == 0;
    assert_int_equal(subjective, s->subjective);
    if (s->subjective) assert_true(ev->check->score < 1.0);
    c->subjective_flagged += subjective && c->found[i] == 0;
    c->found[i]++;
    annot__v1__check_result_event__free_unpacked(ev, NULL);
}

/* Distinct dead letters: after the crash the replayed stretch may publish
 * one twice, under the same id (derived from topic, partition and offset). */
typedef struct dead_seen {
    const char *prefix, *group;
    int count;
    char ids[8][EVENT_ID_LEN];
} dead_seen_t;

static void collect_dead(const rd_kafka_message_t *m, void *opaque) {
    dead_seen_t *d = opaque;
    Annot__V1__DeadLetter *dl = annot__v1__dead_letter__unpack(NULL, m->len, m->payload);
    assert_non_null(dl);
    if (dl->key.len >= strlen(d->prefix) && memcmp(dl->key.data, d->prefix, strlen(d->prefix)) == 0 &&
        strcmp(dl->consumer_group, d->group) == 0) {
        assert_string_equal(dl->topic, itest_topic("submissions"));
        int known = 0;
        for (int i = 0; i < d->count; i++) known |= strcmp(d->ids[i], dl->header->event_id) == 0;
        if (!known && d->count < 8) snprintf(d->ids[d->count++], EVENT_ID_LEN, "%s", dl->header->event_id);
    }
    annot__v1__dead_letter__free_unpacked(dl, NULL);
}

static void test_checks_exactly_once_with_crash_and_reload(void **state) {
    (void)state;
    char schema[64], group[64], prefix[64];
    snprintf(schema, sizeof(schema), "ac_%s", itest_run);
    snprintf(group, sizeof(group), "ac-%s", itest_run);
    snprintf(prefix, sizeof(prefix), "%s-sub-", itest_run);

    static sub_t subs[N_SUBMISSIONS];
    kafka_producer_t *p = itest_producer();
    for (int i = 0; i < N_SUBMISSIONS; i++) {
        event_id_new(subs[i].event_id);
        snprintf(subs[i].submission_id, sizeof(subs[i].submission_id), "%s%03d", prefix, i);
        subs[i].subjective = i % 2;
        produce_submission(p, &subs[i], "annotator-1");
    }
    char key[96];
    snprintf(key, sizeof(key), "%sgarbage", prefix);
    itest_produce(p, "submissions", key, "\x08\x96\x01 not a submission", 20, NULL, NULL);
    /* A submission event without its task: cannot be checked. */
    Annot__V1__EventHeader hdr;
    char id[EVENT_ID_LEN];
    event_id_new(id);
    event_header_fill(&hdr, id, "test", "", "g-test");
    Annot__V1__Submission bare = ANNOT__V1__SUBMISSION__INIT;
    snprintf(key, sizeof(key), "%snotask", prefix);
    bare.submission_id = key;
    Annot__V1__SubmissionEvent ev = ANNOT__V1__SUBMISSION_EVENT__INIT;
    ev.header = &hdr;
    ev.submission = &bare;
    uint8_t buf[512];
    size_t len = annot__v1__submission_event__pack(&ev, buf);
    itest_produce(p, "submissions", key, buf, len, NULL, NULL);
    /* A checkable submission whose author id is not UTF-8: PostgreSQL
     * would refuse it on every retry, so it is dead-lettered. */
    sub_t bad = {.subjective = 0};
    event_id_new(bad.event_id);
    snprintf(bad.submission_id, sizeof(bad.submission_id), "%sbadutf8", prefix);
    produce_submission(p, &bad, "annotator-\xff\xfe");
    kafka_producer_destroy(p, 5000);

    int port = itest_free_port();
    int st = itest_wait(checker_spawn(schema, group, port, "pipeline.after_commit:3"));
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);

    pid_t pid = checker_spawn(schema, group, port, NULL);
    pg_t *pg = itest_pg(schema);
    itest_pg_wait_at_least(pg, "SELECT count(*) FROM check_results", N_SUBMISSIONS / 2);
    kill(pid, SIGHUP);
    itest_wait_caught_up(group, "submissions");
    char body[1 << 16];
    assert_int_equal(itest_http_get(port, "/readyz", body, sizeof(body)), 200);
    kill(pid, SIGTERM);
    st = itest_wait(pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    assert_int_equal(itest_pg_number_p(pg, "SELECT count(*) FROM check_results WHERE starts_with(submission_id, $1)",
                                       prefix),
                     N_SUBMISSIONS);
    assert_int_equal(itest_pg_number_p(pg,
                                       "SELECT count(*) FROM check_results WHERE starts_with(submission_id, $1) "
                                       "AND findings @> '[{\"rule\":\"subjective_language\"}]'",
                                       prefix),
                     N_SUBMISSIONS / 2);
    pg_close(pg);

    checks_seen_t seen = {prefix, subs, {0}, 0};
    itest_read_all("checks", collect_check, &seen);
    for (int i = 0; i < N_SUBMISSIONS; i++) {
        if (seen.found[i] == 0) fail_msg("no check published for %s", subs[i].submission_id);
    }
    assert_int_equal(seen.subjective_flagged, N_SUBMISSIONS / 2);

    static dead_seen_t dead;
    dead.prefix = prefix;
    dead.group = group;
    itest_read_all("dlq", collect_dead, &dead);
    assert_int_equal(dead.count, 3); /* garbage, no task, not UTF-8 */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_checks_exactly_once_with_crash_and_reload, itest_kill_children),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
