/* Integration: the candidate funnel end to end, through annot-dispatcher's
 * HTTP API, with annot-funnel on a real stack.
 *
 * Candidates A-D (and F, who stops in training) are imported with
 * `annotctl candidates import` (a file with bad lines first: nothing of it
 * is imported).  Over HTTP they answer the screening test (A, C, D right;
 * B wrong: B is rejected), read and acknowledge training, lease their exam
 * cases and submit them; a
 * validator leases the validation tasks and records real verdicts: C's
 * exam 1 carries a critical error (rejected), D's exam 2 only major errors
 * whose mean is below the threshold (rejected), A passes everything, is
 * approved, and the dispatcher then knows A as an annotator.  B re-applies:
 * refused during the (short, configured) cool-down, taken after it, and
 * reaches exam 1 on the second application.  An application for A in the
 * middle of exam 1 is an illegal transition: refused, recorded, and A's
 * stage announced again.  Bad input is dead-lettered.  `annotctl candidates
 * show` prints the history.  Finally a second funnel with an empty schema
 * replays both topics from the start and ends in the same state, having
 * emitted events with the same ids.  In between, A works as an annotator
 * and production verdicts move their standing: probation, suspension, and
 * back on probation after the retraining period; suspended again, A is
 * brought back by `annotctl annotators reinstate` and shown by `annotctl
 * annotators show`.  E and F meet the stage time limits (screening twice,
 * exam 1).  Last, two funnels in one consumer group replay everything, one
 * is killed mid-run, and the other takes over with nothing lost or
 * applied twice.
 *
 * The whole pipeline runs: exam cases and production work go from the
 * dispatcher through annot-autochecker and annot-assigner to the
 * validator's queue; the validator is created with `annotctl users add`
 * and reaches the assigner's roster through the annotators topic.  Skills
 * named after the run (exam pool and production) keep other runs' work on
 * the shared topics away from this run's validator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "annot/v1/annotator.pb-c.h"
#include "annot/v1/candidate.pb-c.h"
#include "annot/v1/deadletter.pb-c.h"
#include "annot/v1/submission.pb-c.h"
#include "annot/v1/validation.pb-c.h"
#include "itest.h"
#include "screening.h"

#define NCAND 6
enum { A, B, C, D, E, F };
/* E and F are the stage time limits' candidates. */
static const char *const cand_names[NCAND] = {"Aiko", "Bruno", "Chitra", "Dmitri", "Emeka", "Fatima"};

static char dschema[64], fschema[64], fgroup[96], aschema[64], cschema[64], validator[128], validator_id[64];
static char exam_skill[32], work_skill[32]; /* the run's exam pool and production skill */
static char cand_id[NCAND][64], cand_token[NCAND][128];
static int http_port, ops_port, funnel_ops;
static pid_t dispatcher, funnel, checker, assigner;
static screening_bank_t bank;
static pg_t *fpg, *apg; /* the funnel's and the assigner's schemas */

#define COOLDOWN_MS 4000

/* extra: more -X settings (NULL-terminated), or NULL. */
static pid_t funnel_start_at(const char *schema, const char *group, int *ops, const char *crash_at,
                             const char *const *extra) {
    *ops = itest_free_port();
    char a_schema[128], a_group[160], a_ops[64];
    snprintf(a_schema, sizeof(a_schema), "funnel.schema=%s", schema);
    snprintf(a_group, sizeof(a_group), "funnel.group=%s", group);
    snprintf(a_ops, sizeof(a_ops), "ops.addr=127.0.0.1:%d", *ops);
    char cool[64];
    snprintf(cool, sizeof(cool), "funnel.retry.cooldown.ms=%d", COOLDOWN_MS);
    char *argv[48] = {"bin/annot-funnel", "-X", a_schema, "-X", a_group, "-X", a_ops, "-X", cool,
                      "-X", "funnel.retry.max=1", "-X", "funnel.exam1.threshold=0.85", "-X",
                      "funnel.exam2.threshold=0.9", "-X", "standing.window=4", "-X", "standing.min.count=2",
                      "-X", "standing.probation=0.85", "-X", "standing.suspension=0.5", "-X",
                      "standing.retraining.ms=3000"};
    int n = 25;
    if (crash_at) {
        /* Small batches: the crash point is reached whatever the topics
         * hold. */
        argv[n++] = "-X";
        argv[n++] = "pipeline.batch.max=5";
    }
    for (size_t i = 0; extra && extra[i] && n < 46; i++) {
        argv[n++] = "-X";
        argv[n++] = (char *)extra[i];
    }
    argv[n] = NULL;
    pid_t pid = itest_spawn("annot-funnel", crash_at, argv);
    if (crash_at) return pid; /* it may die before it is ever ready */
    char body[1024];
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (itest_http_get(*ops, "/readyz", body, sizeof(body)) != 200) {
        if (time(NULL) > deadline) fail_msg("funnel never became ready");
        usleep(100 * 1000);
    }
    return pid;
}

static pid_t funnel_start(const char *schema, const char *group, int *ops) {
    return funnel_start_at(schema, group, ops, NULL, NULL);
}

/* annot-autochecker with the run's own schema and group. */
static pid_t checker_start(void) {
    char a_schema[128], a_group[128], a_ops[64];
    int ops = itest_free_port();
    snprintf(a_schema, sizeof(a_schema), "autochecker.schema=%s", cschema);
    snprintf(a_group, sizeof(a_group), "autochecker.group=chkf-%s", itest_run);
    snprintf(a_ops, sizeof(a_ops), "ops.addr=127.0.0.1:%d", ops);
    char *const argv[] = {"bin/annot-autochecker", "-X", a_schema, "-X", a_group, "-X", a_ops, NULL};
    pid_t pid = itest_spawn("annot-autochecker", NULL, argv);
    char body[1024];
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (itest_http_get(ops, "/readyz", body, sizeof(body)) != 200) {
        if (time(NULL) > deadline) fail_msg("autochecker never became ready");
        usleep(100 * 1000);
    }
    return pid;
}

/* annot-assigner: the exam pool is the run's exam skill; every submission
 * one validator (no double validation: this run has one validator); no
 * inactivity rule (no timing in the test). */
static pid_t assigner_start(void) {
    char a_schema[128], a_group[128], a_ops[64], a_ns[64], a_skill[96];
    int ops = itest_free_port();
    snprintf(a_schema, sizeof(a_schema), "assigner.schema=%s", aschema);
    snprintf(a_group, sizeof(a_group), "assigner.group=asgf-%s", itest_run);
    snprintf(a_ops, sizeof(a_ops), "ops.addr=127.0.0.1:%d", ops);
    snprintf(a_ns, sizeof(a_ns), "dispatcher.redis.ns=%s", itest_run);
    snprintf(a_skill, sizeof(a_skill), "assigner.exam.skill=%s", exam_skill);
    char *const argv[] = {"bin/annot-assigner", "-X", a_schema, "-X", a_group, "-X", a_ops, "-X", a_ns,
                          "-X", a_skill, "-X", "assigner.inactive.after.ms=0", "-X", "assigner.sweep.ms=300",
                          "-X", "assigner.double.share=0", "-X", "assigner.double.first.k=0", NULL};
    pid_t pid = itest_spawn("annot-assigner", NULL, argv);
    char body[1024];
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (itest_http_get(ops, "/readyz", body, sizeof(body)) != 200) {
        if (time(NULL) > deadline) fail_msg("assigner never became ready");
        usleep(100 * 1000);
    }
    return pid;
}

static int setup(void **state) {
    (void)state;
    if (itest_setup("test_funnel") != 0) return -1;
    char err[512];
    if (screening_bank_load(&bank, "config/screening/bank.json", err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(dschema, sizeof(dschema), "dispf_%s", itest_run);
    snprintf(fschema, sizeof(fschema), "funnel_%s", itest_run);
    snprintf(fgroup, sizeof(fgroup), "funnel-%s", itest_run);
    snprintf(aschema, sizeof(aschema), "asgf_%s", itest_run);
    snprintf(cschema, sizeof(cschema), "chkf_%s", itest_run);
    snprintf(exam_skill, sizeof(exam_skill), "x%s", itest_run + 1);
    snprintf(work_skill, sizeof(work_skill), "f%s", itest_run + 1);
    char extra[128];
    snprintf(extra, sizeof(extra), "--locale en-US --skills %s,%s", work_skill, exam_skill);
    itest_user_add(dschema, "validator", extra, validator, sizeof(validator));
    dispatcher = itest_dispatcher_start(dschema, &http_port, &ops_port, NULL);
    checker = checker_start();
    assigner = assigner_start();
    funnel = funnel_start(fschema, fgroup, &funnel_ops);
    fpg = itest_pg(fschema);
    char body[4096];
    assert_int_equal(itest_http("GET", http_port, "/v1/me", validator, NULL, 0, body, sizeof(body)), 200);
    json_t *me = json_loads(body, 0, NULL);
    snprintf(validator_id, sizeof(validator_id), "%s", json_string_value(json_object_get(me, "user_id")));
    json_decref(me);
    /* The validator reaches the assigner's roster through the dispatcher's
     * outbox and the annotators topic. */
    apg = itest_pg(aschema);
    itest_pg_wait_at_least_p(apg, "SELECT count(*) FROM validators WHERE validator_id = $1", validator_id, 1);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    pg_close(fpg);
    pg_close(apg);
    itest_kill_children(NULL);
    screening_bank_free(&bank);
    itest_teardown();
    return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static int who(const char *candidate_id) {
    for (int i = 0; i < NCAND; i++)
        if (strcmp(cand_id[i], candidate_id) == 0) return i;
    return -1;
}

static void stage_of(int c, char *buf, size_t len) {
    char err[256];
    const char *p[1] = {cand_id[c]};
    PGresult *res = pg_query(fpg, PGRES_TUPLES_OK, "SELECT stage FROM candidates WHERE candidate_id = $1", 1, p, err,
                             sizeof(err));
    snprintf(buf, len, "%s", res && PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
}

static void wait_stage(int c, const char *stage) {
    char now[32] = "";
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    for (;;) {
        stage_of(c, now, sizeof(now));
        if (strcmp(now, stage) == 0) return;
        if (time(NULL) > deadline) fail_msg("candidate %s never reached %s (stage: '%s')", cand_names[c], stage, now);
        usleep(100 * 1000);
    }
}

/* Runs annotctl with this run's schemas; returns its exit status and its
 * standard output (stderr goes to err_out). */
static int annotctl(const char *args, char *out, size_t outlen, char *err_out, size_t errlen) {
    char errfile[128], cmd[1024];
    snprintf(errfile, sizeof(errfile), "build/tests/annotctl.%s.err", itest_run);
    snprintf(cmd, sizeof(cmd), "bin/annotctl -X dispatcher.schema=%s -X funnel.schema=%s %s 2>%s", dschema, fschema,
             args, errfile);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t got = fread(out, 1, outlen - 1, f);
    out[got] = '\0';
    int st = pclose(f);
    FILE *e = fopen(errfile, "r");
    size_t egot = e ? fread(err_out, 1, errlen - 1, e) : 0;
    err_out[egot] = '\0';
    if (e) fclose(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static json_t *get_json(const char *path, const char *token, int want) {
    char body[1 << 16];
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    int st;
    /* 409 until the funnel's assignment reached the dispatcher. */
    while ((st = itest_http("GET", http_port, path, token, NULL, 0, body, sizeof(body))) == 409) {
        if (time(NULL) > deadline) fail_msg("GET %s stayed 409: %s", path, body);
        usleep(100 * 1000);
    }
    if (st != want) fail_msg("GET %s: %d %s", path, st, body);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    return j;
}

static void post(const char *path, const char *token, json_t *body, int want) {
    char *text = json_dumps(body, JSON_COMPACT), out[1 << 14];
    int st = itest_http("POST", http_port, path, token, text, strlen(text), out, sizeof(out));
    if (st != want) fail_msg("POST %s: %d %s (sent %s)", path, st, out, text);
    free(text);
    json_decref(body);
}

/* Answers the candidate's current screening test, right or wrong; waits
 * until the dispatcher serves screening_id other than not_this one. */
static void answer_screening(int c, bool right, const char *not_this, char *sid_out, size_t sid_len) {
    json_t *s = NULL;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    for (;;) {
        s = get_json("/v1/screening", cand_token[c], 200);
        if (not_this == NULL || strcmp(json_string_value(json_object_get(s, "screening_id")), not_this) != 0) break;
        json_decref(s);
        if (time(NULL) > deadline) fail_msg("no new screening for %s", cand_names[c]);
        usleep(100 * 1000);
    }
    const char *sid = json_string_value(json_object_get(s, "screening_id"));
    if (sid_out) snprintf(sid_out, sid_len, "%s", sid);
    json_t *answers = json_array(), *q;
    size_t i;
    json_array_foreach(json_object_get(s, "questions"), i, q) {
        const char *qid = json_string_value(json_object_get(q, "id"));
        const screening_question_t *sq = screening_find(&bank, qid);
        assert_non_null(sq);
        const char *answer = sq->answer;
        if (!right) {
            /* Any other option: wrong. */
            json_t *o;
            size_t k;
            json_array_foreach(sq->options, k, o) {
                const char *oid = json_string_value(json_object_get(o, "id"));
                if (strcmp(oid, sq->answer) != 0) {
                    answer = oid;
                    break;
                }
            }
        }
        json_array_append_new(answers, json_pack("{s:s, s:s}", "question_id", qid, "answer", answer));
    }
    post("/v1/screening", cand_token[c], json_pack("{s:s, s:o}", "screening_id", sid, "answers", answers), 202);
    json_decref(s);
}

static void acknowledge_training(int c) {
    json_t *t = get_json("/v1/training", cand_token[c], 200);
    const char *version = json_string_value(json_object_get(t, "guideline_version"));
    assert_non_null(version);
    assert_true(json_array_size(json_object_get(t, "samples")) > 0);
    post("/v1/training/complete", cand_token[c], json_pack("{s:s}", "guideline_version", version), 202);
    json_decref(t);
}

static long long cases_of(int c, const char *stage) {
    const char *params[2] = {cand_id[c], stage};
    return itest_pg_number_v(fpg,
                             "SELECT count(*) FROM exam_cases e JOIN candidates c USING (candidate_id) WHERE "
                             "candidate_id = $1 AND e.application = c.application AND e.stage = $2",
                             2, params);
}

/* The candidate leases and submits every case of the stage over HTTP.
 * Stage 2 cases come with their pre-generated text, which is edited. */
static int sit_exam(int c, int stage) {
    int n = 0;
    char body[1 << 16];
    for (;;) {
        const char *req = "{\"queue\":\"exam\",\"wait_s\":3}";
        int st = itest_http("POST", http_port, "/v1/leases", cand_token[c], req, strlen(req), body, sizeof(body));
        if (st == 204) break;
        if (st != 200) fail_msg("exam lease for %s: %d %s", cand_names[c], st, body);
        json_t *l = json_loads(body, 0, NULL), *task = json_object_get(l, "task");
        assert_string_equal(json_string_value(json_object_get(task, "kind")), stage == 1 ? "exam_stage1" : "exam_stage2");
        const char *main_object = json_string_value(json_object_get(task, "main_object"));
        if (stage == 2) assert_true(strlen(json_string_value(json_object_get(task, "pregenerated"))) > 0);
        char description[512], path[160];
        snprintf(description, sizeof(description),
                 "The %s stands in the centre of the image. Its parts are arranged as the task describes, each "
                 "placed on or beside the other, with nothing else in the frame.",
                 main_object);
        snprintf(path, sizeof(path), "/v1/leases/%s/submit", json_string_value(json_object_get(l, "lease_id")));
        post(path, cand_token[c], json_pack("{s:s}", "description", description), 202);
        json_decref(l);
        n++;
    }
    return n;
}

/* What the validator will say about each candidate's case. */
typedef enum { VERDICT_GOOD, VERDICT_CRITICAL, VERDICT_MAJORS } verdict_kind_t;

static long long assigned_total; /* this run's candidates' work given to our validator so far */

/* This run's candidate ids as a PostgreSQL text array. */
static char *cand_array(void) {
    const char *list[NCAND];
    for (int i = 0; i < NCAND; i++) list[i] = cand_id[i];
    return pg_text_array(list, NCAND);
}

/* Waits until the assigner has given our validator want more submissions
 * of this run's candidates (exam cases, and production work once
 * promoted): they went dispatcher -> autochecker -> assigner. */
static void assigned_wait(int want) {
    assigned_total += want;
    char *arr = cand_array();
    const char *q[2] = {validator_id, arr};
    const char *sql = "SELECT count(*) FROM assignments WHERE validator_id = $1 AND author_id = ANY($2::text[])";
    itest_pg_wait_at_least_v(apg, sql, 2, q, assigned_total);
    assert_int_equal(itest_pg_number_v(apg, sql, 2, q), assigned_total);
    free(arr);
}

/* The validator leases validation tasks over HTTP and records the verdict
 * each candidate has coming at this stage, until n of this run's
 * candidates' submissions are validated.  The exam pool is the same on
 * every run of a stack, so exam work that earlier runs left on the topics
 * may reach our validator too: it is accepted and not counted. */
static void validate(int n, const verdict_kind_t *verdicts) {
    char body[1 << 16];
    for (int i = 0; i < n;) {
        const char *req = "{\"queue\":\"validation\",\"wait_s\":20}";
        int st = itest_http("POST", http_port, "/v1/leases", validator, req, strlen(req), body, sizeof(body));
        if (st != 200) fail_msg("validation lease %d of %d: %d %s", i + 1, n, st, body);
        json_t *l = json_loads(body, 0, NULL);
        const char *sid = json_string_value(json_object_get(json_object_get(l, "task"), "submission_id"));
        /* Whose work it is, as the assigner recorded it. */
        const char *q[2] = {sid, validator_id};
        char err[256];
        PGresult *res = pg_query(apg, PGRES_TUPLES_OK,
                                 "SELECT author_id FROM assignments WHERE submission_id = $1 AND validator_id = $2", 2,
                                 q, err, sizeof(err));
        if (res == NULL) fail_msg("%s", err);
        assert_int_equal(PQntuples(res), 1);
        int c = who(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (c >= 0) i++;
        json_t *v;
        switch (c >= 0 ? verdicts[c] : VERDICT_GOOD) {
        case VERDICT_GOOD: v = json_pack("{s:s, s:[]}", "verdict", "accept", "errors"); break;
        case VERDICT_CRITICAL:
            v = json_pack("{s:s, s:[{s:s, s:s, s:s}]}", "verdict", "reject", "errors", "category", "factual_error",
                          "severity", "critical", "section", "1.2");
            break;
        default:
            /* 1 - 0.2 - 0.2 = 0.6 per case: below 0.9, no critical. */
            v = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "verdict", "reject", "errors", "category",
                          "relation_missing", "severity", "major", "category", "language_quality", "severity",
                          "major");
            break;
        }
        char path[160];
        snprintf(path, sizeof(path), "/v1/leases/%s/submit", json_string_value(json_object_get(l, "lease_id")));
        post(path, validator, v, 202);
        json_decref(l);
    }
}

/* Decisions on the candidates topic for candidate c: "stage:passed"... */
typedef struct decisions {
    int c;
    char text[512];
    int approved, status_events;
} decisions_t;

static void collect_decisions(const rd_kafka_message_t *m, void *opaque) {
    decisions_t *d = opaque;
    Annot__V1__CandidateEvent *ev = annot__v1__candidate_event__unpack(NULL, m->len, m->payload);
    if (ev == NULL) return;
    if (strcmp(ev->candidate_id, cand_id[d->c]) == 0) {
        if (ev->event_case == ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_DECIDED) {
            size_t off = strlen(d->text);
            snprintf(d->text + off, sizeof(d->text) - off, "%s%d:%s", off ? "," : "", (int)ev->stage_decided->stage,
                     ev->stage_decided->passed ? "pass" : "fail");
        } else if (ev->event_case == ANNOT__V1__CANDIDATE_EVENT__EVENT_APPROVED) {
            d->approved++;
            assert_string_equal(ev->approved->annotator_id, cand_id[d->c]);
            assert_string_equal(ev->approved->locale, "en-US");
            assert_int_equal(ev->approved->n_skills, 2);
        }
    }
    annot__v1__candidate_event__free_unpacked(ev, NULL);
}

static void collect_status(const rd_kafka_message_t *m, void *opaque) {
    decisions_t *d = opaque;
    Annot__V1__AnnotatorStatusEvent *ev = annot__v1__annotator_status_event__unpack(NULL, m->len, m->payload);
    if (ev == NULL) return;
    if (strcmp(ev->annotator_id, cand_id[d->c]) == 0) {
        d->status_events++;
        assert_int_equal(ev->role, ANNOT__V1__ROLE__ROLE_ANNOTATOR);
        assert_int_equal(ev->status, ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_ACTIVE);
        assert_int_equal(ev->previous_status, ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_UNSPECIFIED);
        assert_string_equal(ev->candidate_id, cand_id[d->c]);
        assert_string_equal(ev->locale, "en-US");
    }
    annot__v1__annotator_status_event__free_unpacked(ev, NULL);
}

/* ---- the test ------------------------------------------------------------- */

static void test_import_refuses_a_bad_file(void **state) {
    (void)state;
    char path[128], out[4096], err[4096];
    snprintf(path, sizeof(path), "build/tests/candidates-bad.%s.ndjson", itest_run);
    write_file(path, "{\"name\":\"Ok\",\"locale\":\"en-US\",\"skills\":[\"food\"]}\n"
                     "{\"name\":\"Bad\",\"locale\":\"english\",\"skills\":[\"food\"]}\n"
                     "{\"name\":\"Odd\",\"locale\":\"en-US\",\"age\":30}\n");
    char args[256];
    snprintf(args, sizeof(args), "candidates import %s", path);
    assert_int_equal(annotctl(args, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "line 2: locale: expected a BCP 47 tag"));
    assert_non_null(strstr(err, "line 3: age: unknown field"));
    assert_non_null(strstr(err, "nothing imported"));
    assert_string_equal(out, "");
    pg_t *dpg = itest_pg(dschema);
    assert_int_equal(itest_pg_number(dpg, "SELECT count(*) FROM users WHERE role = 'candidate'"), 0);
    pg_close(dpg);
}

typedef struct dead {
    const char *key;
    char reason[256];
} dead_t;

static void find_dead(const rd_kafka_message_t *m, void *opaque) {
    dead_t *d = opaque;
    Annot__V1__DeadLetter *dl = annot__v1__dead_letter__unpack(NULL, m->len, m->payload);
    if (dl == NULL) return;
    if (strcmp(dl->consumer_group, fgroup) == 0 && dl->key.len == strlen(d->key) &&
        memcmp(dl->key.data, d->key, dl->key.len) == 0) {
        assert_string_equal(dl->service, "annot-funnel");
        snprintf(d->reason, sizeof(d->reason), "%s", dl->reason);
    }
    annot__v1__dead_letter__free_unpacked(dl, NULL);
}

static void wait_dead(const char *key, const char *reason) {
    dead_t d = {key, ""};
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (strstr(d.reason, reason) == NULL) {
        if (time(NULL) > deadline) fail_msg("no dead letter for %s (%s); last reason '%s'", key, reason, d.reason);
        itest_read_all("dlq", find_dead, &d);
        if (strstr(d.reason, reason) == NULL) usleep(200 * 1000);
    }
}

/* Input the funnel cannot take goes to the dead-letter topic with its
 * reason, and the funnel goes on: an application without a name, one whose
 * name is not UTF-8 or is too long for the record (PostgreSQL would refuse
 * either on every retry), an exam verdict scored outside 0..1. */
static void test_bad_input_is_dead_lettered(void **state) {
    (void)state;
    kafka_producer_t *p = itest_producer();
    char id[EVENT_ID_LEN], cid[EVENT_ID_LEN], sub[64];
    event_id_new(id);
    event_id_new(cid);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, "itest", "", "");
    Annot__V1__CandidateApplied a = ANNOT__V1__CANDIDATE_APPLIED__INIT;
    a.locale = "en-US";
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.header = &hdr;
    ev.candidate_id = cid;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED;
    ev.applied = &a;
    uint8_t buf[1024];
    size_t len = annot__v1__candidate_event__pack(&ev, buf);
    itest_produce(p, "candidates", cid, buf, len, NULL, NULL);

    char cid2[EVENT_ID_LEN];
    event_id_new(id);
    event_id_new(cid2);
    a.name = "Ana \xff\xfe";
    ev.candidate_id = cid2;
    len = annot__v1__candidate_event__pack(&ev, buf);
    itest_produce(p, "candidates", cid2, buf, len, NULL, NULL);

    /* 150 Cyrillic letters, 300 bytes: cut to the record's 255, the last
     * letter would be split. */
    char cid3[EVENT_ID_LEN], long_name[301] = "";
    for (int i = 0; i < 150; i++) strcat(long_name, "Ж");
    event_id_new(id);
    event_id_new(cid3);
    a.name = long_name;
    ev.candidate_id = cid3;
    len = annot__v1__candidate_event__pack(&ev, buf);
    itest_produce(p, "candidates", cid3, buf, len, NULL, NULL);

    event_id_new(id);
    snprintf(sub, sizeof(sub), "%s-bad-verdict", itest_run);
    Annot__V1__ValidationResult r = ANNOT__V1__VALIDATION_RESULT__INIT;
    r.submission_id = sub;
    r.task_id = "some-task";
    r.candidate_id = cid;
    r.exam_stage = ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_EXAM1;
    r.author_role = ANNOT__V1__ROLE__ROLE_CANDIDATE;
    r.score = 1.5;
    Annot__V1__ValidationResultEvent vr = ANNOT__V1__VALIDATION_RESULT_EVENT__INIT;
    vr.header = &hdr;
    vr.result = &r;
    len = annot__v1__validation_result_event__pack(&vr, buf);
    itest_produce(p, "validation-results", sub, buf, len, NULL, NULL);
    kafka_producer_destroy(p, 5000);

    wait_dead(cid, "applied.name: required");
    wait_dead(cid2, "applied.name is not valid UTF-8");
    wait_dead(cid3, "applied.name: longer than 255 bytes");
    wait_dead(sub, "result.score: 1.5 is not within 0..1");
    char body[256];
    assert_int_equal(itest_http_get(funnel_ops, "/readyz", body, sizeof(body)), 200);
}

/* Produces an application for candidate c, who is in stage (a racing
 * import, say): an illegal transition.  The funnel refuses and records it;
 * the dispatcher, which reset its row on seeing the application, is told
 * again where c stands and what c was given. */
static void illegal_application(int c, const char *stage) {
    kafka_producer_t *prod = itest_producer();
    char eid[EVENT_ID_LEN], like[160];
    event_id_new(eid);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, eid, "itest", "", "");
    Annot__V1__CandidateApplied again = ANNOT__V1__CANDIDATE_APPLIED__INIT;
    again.name = (char *)cand_names[c];
    again.locale = "en-US";
    Annot__V1__CandidateEvent aev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    aev.header = &hdr;
    aev.candidate_id = cand_id[c];
    aev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED;
    aev.applied = &again;
    uint8_t abuf[512];
    size_t alen = annot__v1__candidate_event__pack(&aev, abuf);
    itest_produce(prod, "candidates", cand_id[c], abuf, alen, NULL, NULL);
    kafka_producer_destroy(prod, 5000);
    snprintf(like, sizeof(like), "apply: the candidate is in stage %s%%", stage);
    const char *params[3] = {cand_id[c], like, eid};
    itest_pg_wait_at_least_v(fpg,
                             "SELECT count(*) FROM history WHERE candidate_id = $1 AND kind = 'refused' AND "
                             "detail LIKE $2 AND event_id = $3",
                             3, params, 1);
    wait_stage(c, stage);
    char dgroup[160];
    snprintf(dgroup, sizeof(dgroup), "disp-%s-%s", itest_run, dschema);
    itest_wait_caught_up(dgroup, "candidates");
    json_t *me = get_json("/v1/me", cand_token[c], 200);
    assert_string_equal(json_string_value(json_object_get(me, "stage")), stage);
    json_decref(me);
}

/* Imports the candidates which[0..n) with `annotctl candidates import`,
 * told of no reachable broker: the import needs none (the applications go
 * through the dispatcher's outbox, and its relay publishes them). */
static void import_candidates(const int *which, int n) {
    char path[128], out[8192], err[4096], args[512];
    snprintf(path, sizeof(path), "build/tests/candidates.%s.%d.ndjson", itest_run, which[0]);
    char text[2048] = "";
    for (int k = 0; k < n; k++) {
        size_t off = strlen(text);
        snprintf(text + off, sizeof(text) - off, "{\"name\":\"%s\",\"locale\":\"en-US\",\"skills\":[\"%s\",\"crafts\"]}\n",
                 cand_names[which[k]], work_skill);
    }
    write_file(path, text);
    snprintf(args, sizeof(args), "-X kafka.bootstrap.servers=127.0.0.1:9 candidates import %s", path);
    if (annotctl(args, out, sizeof(out), err, sizeof(err)) != 0) fail_msg("import: %s", err);
    /* One JSON line per candidate: id, application 1, token. */
    char *line = out;
    for (int k = 0; k < n; k++) {
        int i = which[k];
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "name")), cand_names[i]);
        assert_int_equal(json_integer_value(json_object_get(j, "application")), 1);
        snprintf(cand_id[i], sizeof(cand_id[i]), "%s", json_string_value(json_object_get(j, "candidate_id")));
        snprintf(cand_token[i], sizeof(cand_token[i]), "%s", json_string_value(json_object_get(j, "token")));
        json_decref(j);
        line = nl + 1;
    }
}

static void test_funnel_end_to_end(void **state) {
    (void)state;
    char out[8192], err[4096];
    /* F passes screening here and waits in training for the time limits'
     * test. */
    const int first[] = {A, B, C, D, F};
    import_candidates(first, 5);

    /* Screening over HTTP: B answers wrong. */
    char b_screening[64];
    for (int k = 0; k < 5; k++) {
        int i = first[k];
        answer_screening(i, i != B, NULL, i == B ? b_screening : NULL, sizeof(b_screening));
    }
    wait_stage(F, "training");
    wait_stage(A, "training");
    wait_stage(C, "training");
    wait_stage(D, "training");
    wait_stage(B, "rejected");

    /* B re-applies at once: refused, the cool-down is running. */
    char reapply[128], reapply_args[512];
    snprintf(reapply, sizeof(reapply), "build/tests/reapply.%s.ndjson", itest_run);
    char line_b[256];
    snprintf(line_b, sizeof(line_b), "{\"candidate_id\":\"%s\",\"name\":\"Bruno\",\"locale\":\"en-US\",\"skills\":[\"%s\"]}\n",
             cand_id[B], work_skill);
    write_file(reapply, line_b);
    snprintf(reapply_args, sizeof(reapply_args), "candidates import %s", reapply);
    assert_int_equal(annotctl(reapply_args, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "line 1: candidate_id"));
    assert_non_null(strstr(err, "cool-down"));

    /* Training, acknowledged over HTTP. */
    acknowledge_training(A);
    acknowledge_training(C);
    acknowledge_training(D);
    wait_stage(A, "exam1");
    wait_stage(C, "exam1");
    wait_stage(D, "exam1");

    /* An application for A now (a racing import, say) is an illegal
     * transition: refused, recorded, and A still sits exam 1. */
    illegal_application(A, "exam1");

    /* Exam 1: every case leased and submitted over HTTP, validated over
     * HTTP; C's verdicts carry a critical error. */
    int n1 = 0;
    for (int c = A; c <= D; c++) {
        if (c == B) continue;
        long long want = cases_of(c, "exam1");
        assert_true(want >= 2);
        int got = sit_exam(c, 1);
        assert_int_equal(got, want);
        n1 += got;
    }
    assigned_wait(n1);
    const verdict_kind_t exam1[NCAND] = {VERDICT_GOOD, VERDICT_GOOD, VERDICT_CRITICAL, VERDICT_GOOD};
    validate(n1, exam1);
    wait_stage(A, "exam2");
    wait_stage(D, "exam2");
    wait_stage(C, "rejected");

    /* B after the cool-down: taken, a new screening, passed this time. */
    const char *p[1] = {cand_id[B]};
    long long retry_after = itest_pg_number_p(fpg, "SELECT retry_after_ms FROM candidates WHERE candidate_id = $1",
                                              p[0]);
    assert_true(retry_after > 0);
    while (event_now_ms() <= retry_after) usleep(100 * 1000);
    if (annotctl(reapply_args, out, sizeof(out), err, sizeof(err)) != 0) fail_msg("re-application: %s", err);
    assert_non_null(strstr(out, "\"application\":2"));
    assert_non_null(strstr(out, "\"token\":null"));
    wait_stage(B, "screening");
    /* Mid-screening, an illegal application must not cost B the test:
     * the dispatcher serves it again after the re-announcement. */
    illegal_application(B, "screening");
    answer_screening(B, true, b_screening, NULL, 0);
    wait_stage(B, "training");
    acknowledge_training(B);
    wait_stage(B, "exam1");

    /* Exam 2: A good, D's cases scored 0.6 with major errors only. */
    int n2 = sit_exam(A, 2) + sit_exam(D, 2);
    assert_int_equal(n2, cases_of(A, "exam2") + cases_of(D, "exam2"));
    assigned_wait(n2);
    const verdict_kind_t exam2[NCAND] = {VERDICT_GOOD, VERDICT_GOOD, VERDICT_GOOD, VERDICT_MAJORS};
    validate(n2, exam2);
    wait_stage(A, "approved");
    wait_stage(D, "rejected");

    /* A works as an annotator now: the dispatcher applied the promotion. */
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    for (;;) {
        json_t *me = get_json("/v1/me", cand_token[A], 200);
        bool annotator = strcmp(json_string_value(json_object_get(me, "role")), "annotator") == 0;
        if (annotator) assert_string_equal(json_string_value(json_object_get(me, "status")), "active");
        json_decref(me);
        if (annotator) break;
        if (time(NULL) > deadline) fail_msg("A never became an annotator at the dispatcher");
        usleep(100 * 1000);
    }

    /* The decisions, as the candidates topic carries them. */
    const char *expect[D + 1] = {"2:pass,3:pass,4:pass,5:pass", "2:fail,2:pass,3:pass", "2:pass,3:pass,4:fail",
                                 "2:pass,3:pass,4:pass,5:fail"};
    for (int c = A; c <= D; c++) {
        decisions_t d = {.c = c};
        itest_read_all("candidates", collect_decisions, &d);
        assert_string_equal(d.text, expect[c]);
        assert_int_equal(d.approved, c == A ? 1 : 0);
    }
    decisions_t st = {.c = A};
    itest_read_all("annotators", collect_status, &st);
    assert_int_equal(st.status_events, 1);

    /* The funnel's own counters saw the same decisions (this process
     * consumed from the start, so earlier runs' candidates count too:
     * at least). */
    static char metrics[1 << 16];
    assert_int_equal(itest_http_get(funnel_ops, "/metrics", metrics, sizeof(metrics)), 200);
    const char *series[] = {"annot_funnel_stage_decided_total{stage=\"exam1\",outcome=\"failed\"} ",
                            "annot_funnel_stage_decided_total{stage=\"exam2\",outcome=\"passed\"} ",
                            "annot_funnel_stage_decided_total{stage=\"screening\",outcome=\"failed\"} ",
                            "annot_funnel_stage_entered_total{stage=\"approved\"} ",
                            "\nannot_funnel_transitions_refused_total "}; /* not its # HELP line */
    for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++) {
        const char *at = strstr(metrics, series[i]);
        if (at == NULL || atof(at + strlen(series[i])) < 1) fail_msg("/metrics: %s is not >= 1", series[i]);
    }

    /* The history, as an operator sees it. */
    char show[256], shown[1 << 15];
    snprintf(show, sizeof(show), "candidates show %s", cand_id[C]);
    assert_int_equal(annotctl(show, shown, sizeof(shown), err, sizeof(err)), 0);
    json_t *h = json_loads(shown, 0, NULL);
    assert_non_null(h);
    assert_string_equal(json_string_value(json_object_get(h, "stage")), "rejected");
    assert_true(json_integer_value(json_object_get(h, "retry_after_ms")) > 0);
    assert_non_null(strstr(shown, "critical error"));
    assert_non_null(strstr(shown, "\"kind\": \"exam_case_assigned\""));
    json_decref(h);
    snprintf(show, sizeof(show), "candidates show %s", cand_id[B]);
    assert_int_equal(annotctl(show, shown, sizeof(shown), err, sizeof(err)), 0);
    assert_non_null(strstr(shown, "\"application\": 2"));
    assert_int_equal(annotctl("candidates show 00000000-0000-4000-8000-000000000000", shown, sizeof(shown), err,
                              sizeof(err)),
                     1);
    assert_non_null(strstr(err, "no candidate"));
}

static void wait_status(int c, const char *status) {
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    char now[32] = "";
    for (;;) {
        json_t *me = get_json("/v1/me", cand_token[c], 200);
        snprintf(now, sizeof(now), "%s", json_string_value(json_object_get(me, "status")));
        json_decref(me);
        if (strcmp(now, status) == 0) return;
        if (time(NULL) > deadline) fail_msg("%s never became %s (status: %s)", cand_names[c], status, now);
        usleep(100 * 1000);
    }
}

/* The annotator leases n production tasks over HTTP and submits them. */
static void work(int c, int n) {
    char body[1 << 16];
    for (int i = 0; i < n; i++) {
        const char *req = "{\"queue\":\"annotation\",\"wait_s\":20}";
        int st = itest_http("POST", http_port, "/v1/leases", cand_token[c], req, strlen(req), body, sizeof(body));
        if (st != 200) fail_msg("production lease for %s: %d %s", cand_names[c], st, body);
        json_t *l = json_loads(body, 0, NULL);
        char path[160];
        snprintf(path, sizeof(path), "/v1/leases/%s/submit", json_string_value(json_object_get(l, "lease_id")));
        post(path, cand_token[c],
             json_pack("{s:s}", "description", "A bowl of rice in the centre of the image, with sauce poured over it."),
             202);
        json_decref(l);
    }
}

/* A, now an annotator, works on production tasks: two verdicts of 0.6 put
 * them on probation (rolling quality below 0.85), two critical ones
 * suspend them (below 0.5: no lease, 403), and the retraining period
 * (3 s here) brings them back on probation.  Every change reached the
 * dispatcher through an AnnotatorStatusEvent. */
/* Imports n production tasks of the run's skill, ids <run>-<prefix>-i. */
static void import_tasks(const char *prefix, int n) {
    char path[128], text[4096] = "", out[4096], err[4096], args[256];
    snprintf(path, sizeof(path), "build/tests/funnel-tasks.%s.%s.ndjson", itest_run, prefix);
    for (int i = 0; i < n; i++) {
        size_t off = strlen(text);
        snprintf(text + off, sizeof(text) - off,
                 "{\"task_id\":\"%s-%s-%d\",\"kind\":\"production\",\"image_uri\":\"file://x.jpg\","
                 "\"main_object\":\"rice bowl\",\"locale\":\"en-US\",\"skills\":[\"%s\"],"
                 "\"guideline_version\":\"g-2026.11\"}\n",
                 itest_run, prefix, i, work_skill);
    }
    write_file(path, text);
    snprintf(args, sizeof(args), "tasks import %s", path);
    if (annotctl(args, out, sizeof(out), err, sizeof(err)) != 0) fail_msg("tasks import: %s", err);
}

static void test_standing_from_production_verdicts(void **state) {
    (void)state;
    char out[4096];
    import_tasks("prod", 4);

    const verdict_kind_t majors[NCAND] = {VERDICT_MAJORS, VERDICT_MAJORS, VERDICT_MAJORS, VERDICT_MAJORS};
    const verdict_kind_t critical[NCAND] = {VERDICT_CRITICAL, VERDICT_CRITICAL, VERDICT_CRITICAL, VERDICT_CRITICAL};
    work(A, 2);
    assigned_wait(2);
    validate(2, majors);
    wait_status(A, "probation");
    work(A, 2);
    assigned_wait(2);
    validate(2, critical);
    wait_status(A, "suspended");
    const char *req = "{\"queue\":\"annotation\",\"wait_s\":0}";
    assert_int_equal(itest_http("POST", http_port, "/v1/leases", cand_token[A], req, strlen(req), out, sizeof(out)),
                     403);
    wait_status(A, "probation");
    assert_int_not_equal(
        itest_http("POST", http_port, "/v1/leases", cand_token[A], req, strlen(req), out, sizeof(out)), 403);
    const char *p[1] = {cand_id[A]};
    assert_int_equal(itest_pg_number_p(fpg, "SELECT changes FROM annotators WHERE annotator_id = $1", p[0]), 4);
}

/* Waits until candidate c's application app is rejected. */
static void wait_rejected(int c, const char *app) {
    const char *p[2] = {cand_id[c], app};
    itest_pg_wait_at_least_v(fpg,
                             "SELECT count(*) FROM candidates WHERE candidate_id = $1 AND application = $2::int AND "
                             "stage = 'rejected'",
                             2, p, 1);
}

/* The time limit's decision in c's history for application app. */
static void assert_expired(int c, const char *app, const char *reason_like) {
    const char *p[3] = {cand_id[c], app, reason_like};
    assert_int_equal(itest_pg_number_v(fpg,
                                       "SELECT count(*) FROM history WHERE candidate_id = $1 AND application = "
                                       "$2::int AND kind = 'stage_expired' AND detail LIKE $3",
                                       3, p),
                     1);
    assert_int_equal(itest_pg_number_v(fpg,
                                       "SELECT count(*) FROM history WHERE candidate_id = $1 AND application = "
                                       "$2::int AND kind = 'stage_decided' AND detail LIKE 'failed: ' || $3",
                                       3, p),
                     1);
}

/* Stage time limits.  The funnel restarts (same group: an operator's
 * change of policy) with a screening deadline of 2 s, 3 s to submit an
 * exam stage's cases and a grace of 0.3 s.  E never answers the screening
 * test: the attempt fails at the deadline and E is rejected, the cool-down
 * counted from the deadline; E re-applies after it and lets the second
 * test lapse too: rejected for good (one retry allowed).  F, waiting in
 * training, acknowledges it now and submits no exam case: exam 1 fails at
 * its limit.  Submitted cases reach the funnel from the dispatcher: every
 * case A sat is recorded. */
static void test_stage_timeouts(void **state) {
    (void)state;
    itest_stop_cleanly(funnel);
    static const char *const limits[] = {"funnel.screening.due.ms=2000", "funnel.exam.timeout.ms=3000",
                                         "funnel.timeout.grace.ms=300", NULL};
    funnel = funnel_start_at(fschema, fgroup, &funnel_ops, NULL, limits);
    const int e[] = {E};
    import_candidates(e, 1);
    acknowledge_training(F);
    wait_rejected(E, "1");
    wait_rejected(F, "1");
    assert_expired(E, "1", "timed out: screening not answered by %");
    assert_expired(F, "1", "timed out: 0 of % cases submitted by %");
    const char *pf[1] = {cand_id[F]};
    assert_true(itest_pg_number_p(fpg, "SELECT count(*) FROM exam_cases WHERE candidate_id = $1", pf[0]) >= 2);
    /* A failed attempt like any other: the cool-down runs from the
     * deadline. */
    const char *pe[1] = {cand_id[E]};
    assert_int_equal(itest_pg_number_p(fpg,
                                       "SELECT c.retry_after_ms - h.occurred_at_ms FROM candidates c JOIN history h "
                                       "USING (candidate_id) WHERE candidate_id = $1 AND h.kind = 'rejected'",
                                       pe[0]),
                     COOLDOWN_MS);

    /* E's retry lapses as well: no retry left. */
    long long retry_after = itest_pg_number_p(fpg, "SELECT retry_after_ms FROM candidates WHERE candidate_id = $1",
                                              pe[0]);
    while (event_now_ms() <= retry_after) usleep(100 * 1000);
    char path[128], line[256], args[256], out[4096], err[4096];
    snprintf(path, sizeof(path), "build/tests/reapply-e.%s.ndjson", itest_run);
    snprintf(line, sizeof(line), "{\"candidate_id\":\"%s\",\"name\":\"Emeka\",\"locale\":\"en-US\"}\n", cand_id[E]);
    write_file(path, line);
    snprintf(args, sizeof(args), "candidates import %s", path);
    if (annotctl(args, out, sizeof(out), err, sizeof(err)) != 0) fail_msg("re-application: %s", err);
    wait_rejected(E, "2");
    assert_expired(E, "2", "timed out: screening not answered by %");
    assert_int_equal(itest_pg_number_p(fpg, "SELECT retry_after_ms FROM candidates WHERE candidate_id = $1", pe[0]),
                     0);

    /* Every exam case A submitted reached the funnel. */
    const char *pa[1] = {cand_id[A]};
    long long a_cases = itest_pg_number_p(fpg, "SELECT count(*) FROM exam_cases WHERE candidate_id = $1", pa[0]);
    assert_true(a_cases >= 4);
    assert_int_equal(itest_pg_number_p(fpg, "SELECT count(*) FROM exam_submissions WHERE candidate_id = $1", pa[0]),
                     a_cases);
    static char metrics[1 << 16];
    assert_int_equal(itest_http_get(funnel_ops, "/metrics", metrics, sizeof(metrics)), 200);
    const char *at = strstr(metrics, "\nannot_funnel_stage_timeouts_total ");
    assert_non_null(at);
    assert_true(atof(at + strlen("\nannot_funnel_stage_timeouts_total ")) >= 3);
}

/* The operator's side of standing.  The funnel restarts with no
 * retraining period (standing.retraining.ms=0: only an operator brings a
 * suspended annotator back).  A, on probation, gets two critical verdicts
 * and is suspended; `annotctl annotators show` prints the status, the
 * rolling quality over the window and every change with its reason;
 * `annotctl annotators reinstate` brings A back on probation, which the
 * dispatcher enforces; asking again, or for someone the funnel does not
 * know, is refused with the reason. */
static void test_operator_reinstates(void **state) {
    (void)state;
    itest_stop_cleanly(funnel);
    static const char *const no_retraining[] = {"standing.retraining.ms=0", NULL};
    funnel = funnel_start_at(fschema, fgroup, &funnel_ops, NULL, no_retraining);
    import_tasks("prod2", 2);
    const verdict_kind_t critical[NCAND] = {VERDICT_CRITICAL, VERDICT_CRITICAL, VERDICT_CRITICAL, VERDICT_CRITICAL};
    work(A, 2);
    assigned_wait(2);
    validate(2, critical);
    wait_status(A, "suspended");

    static char shown[1 << 15];
    char args[256], err[4096];
    snprintf(args, sizeof(args), "-X standing.window=4 annotators show %s", cand_id[A]);
    assert_int_equal(annotctl(args, shown, sizeof(shown), err, sizeof(err)), 0);
    json_t *o = json_loads(shown, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "status")), "suspended");
    assert_true(json_number_value(json_object_get(o, "rolling_quality")) < 0.5);
    assert_int_equal(json_integer_value(json_object_get(o, "window_count")), 2);
    assert_int_equal(json_integer_value(json_object_get(o, "window_size")), 4);
    assert_int_equal(json_integer_value(json_object_get(o, "validated_total")), 6);
    assert_true(json_integer_value(json_object_get(o, "suspended_at_ms")) > 0);
    char seq[128] = "";
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(o, "history"), i, h) {
        size_t off = strlen(seq);
        snprintf(seq + off, sizeof(seq) - off, "%s%s", off ? "," : "", json_string_value(json_object_get(h, "status")));
    }
    assert_string_equal(seq, "active,probation,suspended,probation,suspended");
    assert_non_null(strstr(shown, "retraining period of 3000 ms over"));
    assert_non_null(strstr(shown, "rolling quality 0.00 < suspension 0.50"));
    json_decref(o);

    /* Back on probation by the operator's word. */
    snprintf(args, sizeof(args), "annotators reinstate %s --reason 'retrained with the lead'", cand_id[A]);
    if (annotctl(args, shown, sizeof(shown), err, sizeof(err)) != 0) fail_msg("reinstate: %s", err);
    assert_non_null(strstr(shown, "\"status\":\"probation\""));
    assert_non_null(strstr(shown, "reinstated by an operator: retrained with the lead"));
    wait_status(A, "probation");
    const char *req = "{\"queue\":\"annotation\",\"wait_s\":0}";
    char out[4096];
    assert_int_not_equal(
        itest_http("POST", http_port, "/v1/leases", cand_token[A], req, strlen(req), out, sizeof(out)), 403);
    /* Not suspended any more: nothing to reinstate. */
    assert_int_equal(annotctl(args, shown, sizeof(shown), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "is probation, not suspended"));
    snprintf(args, sizeof(args), "annotators reinstate %s --reason x", validator_id);
    assert_int_equal(annotctl(args, shown, sizeof(shown), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "no annotator"));
    assert_int_equal(annotctl("annotators reinstate --reason x", shown, sizeof(shown), err, sizeof(err)), 2);
    const char *p[1] = {cand_id[A]};
    assert_int_equal(itest_pg_number_p(fpg, "SELECT changes FROM annotators WHERE annotator_id = $1", p[0]), 6);
}

/* What a funnel schema says of a candidate: stage, application, retry
 * time, and every event it emitted (by id, sorted). */
static void state_of(pg_t *pg, int c, char *buf, size_t len) {
    char err[256];
    const char *p[1] = {cand_id[c]};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "SELECT stage || '/' || application || '/' || retry_after_ms || '/' || (SELECT "
                             "coalesce(string_agg(event_id, ',' ORDER BY event_id), '') FROM history h WHERE "
                             "h.candidate_id = c.candidate_id AND kind NOT IN ('refused', 'exam_case_validated')) "
                             "FROM candidates c WHERE candidate_id = $1",
                             1, p, err, sizeof(err));
    if (res == NULL) fail_msg("%s", err);
    snprintf(buf, len, "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "(none)");
    PQclear(res);
}

/* A second funnel with an empty schema reads both topics from the start,
 * killed once on the way: it reaches the same state and emits the same
 * event ids. */
static void test_replay_gives_the_same_state(void **state) {
    (void)state;
    itest_wait_caught_up(fgroup, "candidates");
    itest_wait_caught_up(fgroup, "validation-results");
    char rschema[96], rgroup[128];
    snprintf(rschema, sizeof(rschema), "%s_replay", fschema);
    snprintf(rgroup, sizeof(rgroup), "%s-replay", fgroup);
    int rops;
    /* The replaying funnel is killed (SIGKILL) right after its third
     * commit, before it published or stored anything of that batch, and
     * started again: the restart must neither lose nor double a step. */
    pid_t crashed = funnel_start_at(rschema, rgroup, &rops, "pipeline.after_commit:3", NULL);
    int st = itest_wait(crashed);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    pid_t replay = funnel_start(rschema, rgroup, &rops);
    itest_wait_caught_up(rgroup, "candidates");
    itest_wait_caught_up(rgroup, "validation-results");
    /* Its own outputs went back on the candidates topic: once more. */
    itest_wait_caught_up(rgroup, "candidates");
    pg_t *rpg = itest_pg(rschema);
    for (int c = 0; c < NCAND; c++) {
        static char a[1 << 14], b[1 << 14];
        state_of(fpg, c, a, sizeof(a));
        state_of(rpg, c, b, sizeof(b));
        assert_true(strlen(a) > 40);
        if (strcmp(a, b) != 0) fail_msg("candidate %s: live %s, replayed %s", cand_names[c], a, b);
    }
    pg_close(rpg);
    itest_stop_cleanly(replay);
    itest_stop_cleanly(funnel);
}

/* The funnel's own CandidateEvents on the topic for each of this run's
 * candidates, by id (the same event produced by several funnels is one);
 * the sweep's StageExpired are inputs, not announcements, and left out. */
typedef struct produced {
    json_t *ids[NCAND]; /* objects used as sets of event ids */
} produced_t;

static void collect_produced(const rd_kafka_message_t *m, void *opaque) {
    produced_t *pr = opaque;
    Annot__V1__CandidateEvent *ev = annot__v1__candidate_event__unpack(NULL, m->len, m->payload);
    if (ev == NULL) return;
    int c = who(ev->candidate_id);
    if (c >= 0 && ev->header && strcmp(ev->header->source, "annot-funnel") == 0 &&
        ev->event_case != ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_EXPIRED)
        json_object_set_new(pr->ids[c], ev->header->event_id, json_true());
    annot__v1__candidate_event__free_unpacked(ev, NULL);
}

/* The events a funnel schema's history says were emitted for c, as a set. */
static json_t *emitted_of(pg_t *pg, int c) {
    char err[256];
    const char *p[1] = {cand_id[c]};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "SELECT event_id FROM history WHERE candidate_id = $1 AND kind NOT IN ('refused', "
                             "'applied', 'screening_submitted', 'training_completed', 'exam_case_submitted', "
                             "'exam_case_validated', 'stage_expired')",
                             1, p, err, sizeof(err));
    if (res == NULL) fail_msg("%s", err);
    json_t *set = json_object();
    for (int i = 0; i < PQntuples(res); i++) json_object_set_new(set, PQgetvalue(res, i, 0), json_true());
    PQclear(res);
    return set;
}

/* A funnel replays the two topics from the start into an empty schema and
 * is killed (SIGKILL) right after a commit, before it published that
 * batch's events or stored its offsets; a second funnel in the same
 * consumer group takes its partitions over.  Then: every candidate's state
 * is the live funnel's, no input was applied twice and no event recorded
 * twice, and the events the schema records as emitted are exactly the
 * funnel's events on the candidates topic.
 *
 * One after the other, not side by side: with two members from the start,
 * whichever joined first could consume everything (a real broker's join
 * takes its time), and the other, holding only partitions already done,
 * would never reach its crash point.  Alone, the first one holds every
 * partition and has work left after its fourth commit. */
static void test_two_instances_take_over(void **state) {
    (void)state;
    char pschema[96], pgroup[128];
    snprintf(pschema, sizeof(pschema), "%s_pair", fschema);
    snprintf(pgroup, sizeof(pgroup), "%s-pair", fgroup);
    /* One message a batch, so the crash comes early with work left; a
     * short session, so the group gives up on the dead member soon. */
    static const char *const shared[] = {"pipeline.batch.max=1", "kafka.session.timeout.ms=6000", NULL};
    int ops1, ops2;
    pid_t killed = funnel_start_at(pschema, pgroup, &ops1, "pipeline.after_commit:4", shared);
    int st = itest_wait(killed);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    pid_t survivor = funnel_start_at(pschema, pgroup, &ops2, NULL, shared);
    itest_wait_caught_up(pgroup, "candidates");
    itest_wait_caught_up(pgroup, "validation-results");
    /* Its own outputs went back on the candidates topic: once more. */
    itest_wait_caught_up(pgroup, "candidates");

    pg_t *ppg = itest_pg(pschema);
    char *arr = cand_array();
    const char *q[1] = {arr};
    /* Nothing applied or recorded twice. */
    assert_int_equal(itest_pg_number_v(ppg,
                                       "SELECT count(*) FROM (SELECT 1 FROM history WHERE candidate_id = "
                                       "ANY($1::text[]) GROUP BY candidate_id, kind, event_id HAVING count(*) > 1) d",
                                       1, q),
                     0);
    assert_int_equal(itest_pg_number_v(ppg,
                                       "SELECT count(*) FROM (SELECT 1 FROM exam_cases WHERE candidate_id = "
                                       "ANY($1::text[]) GROUP BY task_id HAVING count(*) > 1) d",
                                       1, q),
                     0);
    free(arr);
    produced_t pr;
    for (int c = 0; c < NCAND; c++) pr.ids[c] = json_object();
    itest_read_all("candidates", collect_produced, &pr);
    for (int c = 0; c < NCAND; c++) {
        static char a[1 << 14], b[1 << 14];
        state_of(fpg, c, a, sizeof(a));
        state_of(ppg, c, b, sizeof(b));
        if (strcmp(a, b) != 0) fail_msg("candidate %s: live %s, two instances %s", cand_names[c], a, b);
        json_t *h = emitted_of(ppg, c);
        assert_true(json_object_size(h) > 0);
        if (!json_equal(h, pr.ids[c])) {
            char *x = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS), *y = json_dumps(pr.ids[c], JSON_COMPACT | JSON_SORT_KEYS);
            fail_msg("candidate %s: recorded %s, on the topic %s", cand_names[c], x, y);
        }
        json_decref(h);
        json_decref(pr.ids[c]);
    }
    pg_close(ppg);
    itest_stop_cleanly(survivor);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_refuses_a_bad_file),
        cmocka_unit_test(test_bad_input_is_dead_lettered),
        cmocka_unit_test(test_funnel_end_to_end),
        cmocka_unit_test(test_standing_from_production_verdicts),
        cmocka_unit_test(test_stage_timeouts),
        cmocka_unit_test(test_operator_reinstates),
        cmocka_unit_test(test_replay_gives_the_same_state),
        cmocka_unit_test(test_two_instances_take_over),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
