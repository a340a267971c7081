/* candidate_flow: moves candidates through the funnel.  Every input runs
 * the pure machine (funnel_machine.h) on the candidate's row, locked FOR
 * UPDATE; a refused transition is logged, counted and written to the
 * history, never applied.  Outputs are CandidateEvents (and exam
 * TaskEvents, and the AnnotatorStatusEvent of a promotion) queued in the
 * outbox in the input's transaction.  Their ids derive from the candidate,
 * the application and what they announce, not from whichever input
 * triggered them: an exam stage is decided by its last verdict in one run
 * and by the case assignment in a replay that reads the verdicts first,
 * and both must emit the same StageDecided. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "annot/v1/candidate.pb-c.h"
#include "annot/v1/task.pb-c.h"
#include "event.h"
#include "funnel.h"
#include "log.h"
#include "task_codec.h"

#define CAND_QUESTIONS_MAX 256
#define CAND_NAME_MAX 255
#define CAND_LOCALE_MAX 63
#define CAND_SETS_MAX 16

typedef struct cand {
    bool exists;
    char id[128], name[CAND_NAME_MAX + 1], locale[CAND_LOCALE_MAX + 1], cohort_day[16];
    json_t *skills; /* array of strings */
    funnel_state_t st;
    char screening_id[EVENT_ID_LEN], training_version[128];
    json_t *questions; /* array of question ids, or NULL */
    int64_t due_ms;    /* the current stage's deadline; 0 = none (or expiry sent) */
} cand_t;

static void cand_free(cand_t *c) {
    json_decref(c->skills);
    json_decref(c->questions);
    c->skills = c->questions = NULL;
}

/* The skills as C strings pointing into c->skills. */
static size_t cand_skills(const cand_t *c, const char **out, size_t max) {
    size_t n = 0, i;
    json_t *v;
    json_array_foreach(c->skills, i, v) {
        if (n < max && json_is_string(v)) out[n++] = json_string_value(v);
    }
    return n;
}

/* Loads and locks the candidate's row; c->exists says whether there is one.
 * 0, or -1 on a database error. */
static int cand_load(flow_t *fl, const char *id, cand_t *c) {
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", id);
    const char *p[1] = {id};
    PGresult *res = pg_query(fl->pg, PGRES_TUPLES_OK,
                             "SELECT name, locale, array_to_json(skills), cohort_day, stage, application, "
                             "retry_after_ms, coalesce(screening_id, ''), array_to_json(screening_questions), "
                             "coalesce(training_version, ''), stage_due_at_ms FROM candidates WHERE candidate_id = $1 FOR UPDATE",
                             1, p, fl->errstr, fl->errlen);
    if (res == NULL) return -1;
    if (PQntuples(res) == 1) {
        c->exists = true;
        snprintf(c->name, sizeof(c->name), "%s", PQgetvalue(res, 0, 0));
        snprintf(c->locale, sizeof(c->locale), "%s", PQgetvalue(res, 0, 1));
        c->skills = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
        snprintf(c->cohort_day, sizeof(c->cohort_day), "%s", PQgetvalue(res, 0, 3));
        if (funnel_stage_parse(PQgetvalue(res, 0, 4), &c->st.stage) != 0) c->st.stage = FUNNEL_NONE;
        c->st.application = (unsigned)atoi(PQgetvalue(res, 0, 5));
        c->st.retry_after_ms = atoll(PQgetvalue(res, 0, 6));
        snprintf(c->screening_id, sizeof(c->screening_id), "%s", PQgetvalue(res, 0, 7));
        c->questions = PQgetisnull(res, 0, 8) ? NULL : json_loads(PQgetvalue(res, 0, 8), 0, NULL);
        snprintf(c->training_version, sizeof(c->training_version), "%s", PQgetvalue(res, 0, 9));
        c->due_ms = atoll(PQgetvalue(res, 0, 10));
    }
    PQclear(res);
    return 0;
}

static int cand_save(flow_t *fl, const cand_t *c) {
    const char *skills[64];
    size_t ns = cand_skills(c, skills, 64);
    char *skills_text = pg_text_array(skills, ns);
    const char *qs[CAND_QUESTIONS_MAX];
    size_t nq = 0, i;
    json_t *v;
    json_array_foreach(c->questions, i, v) {
        if (nq < CAND_QUESTIONS_MAX && json_is_string(v)) qs[nq++] = json_string_value(v);
    }
    char *questions_text = c->questions ? pg_text_array(qs, nq) : NULL;
    char app[16], retry[24], now[24], due[24];
    snprintf(app, sizeof(app), "%u", c->st.application);
    snprintf(retry, sizeof(retry), "%lld", (long long)c->st.retry_after_ms);
    snprintf(now, sizeof(now), "%lld", (long long)fl->now_ms);
    snprintf(due, sizeof(due), "%lld", (long long)c->due_ms);
    const char *p[13] = {c->id, c->name, c->locale, skills_text, c->cohort_day, funnel_stage_name(c->st.stage), app,
                         retry, c->screening_id[0] ? c->screening_id : NULL, questions_text,
                         c->training_version[0] ? c->training_version : NULL, now, due};
    long n = pg_command(fl->pg,
                        "INSERT INTO candidates (candidate_id, name, locale, skills, cohort_day, stage, application, "
                        "retry_after_ms, screening_id, screening_questions, training_version, updated_at_ms, "
                        "stage_due_at_ms) VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $8, $9, $10::text[], $11, $12, "
                        "$13) ON CONFLICT "
                        "(candidate_id) DO UPDATE SET name = $2, locale = $3, skills = $4::text[], cohort_day = $5, "
                        "stage = $6, application = $7, retry_after_ms = $8, screening_id = $9, "
                        "screening_questions = $10::text[], training_version = $11, updated_at_ms = $12, "
                        "stage_due_at_ms = $13",
                        13, p, fl->errstr, fl->errlen);
    free(skills_text);
    free(questions_text);
    return n < 0 ? -1 : 0;
}

static int history_add(flow_t *fl, const cand_t *c, const char *event_id, const char *kind, funnel_stage_t stage,
                       const char *detail) {
    char app[16], at[24];
    snprintf(app, sizeof(app), "%u", c->st.application);
    snprintf(at, sizeof(at), "%lld", (long long)fl->now_ms);
    const char *p[7] = {c->id, app, event_id, kind, funnel_stage_name(stage), detail ? detail : "", at};
    return pg_command(fl->pg,
                      "INSERT INTO history (candidate_id, application, event_id, kind, stage, detail, occurred_at_ms) "
                      "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                      7, p, fl->errstr, fl->errlen) < 0
               ? -1
               : 0;
}

/* "<candidate>/<application>": what every output of this application
 * derives its id from. */
static void cand_cause(const cand_t *c, char *buf, size_t len) {
    snprintf(buf, len, "%s/%u", c->id, c->st.application);
}

/* Emits ev (its oneof set by the caller) for candidate c with the id
 * derived from (candidate, application, purpose), and writes it to the
 * history. */
static int emit_cand(flow_t *fl, const cand_t *c, Annot__V1__CandidateEvent *ev, const char *purpose,
                     const char *kind, funnel_stage_t stage, const char *detail) {
    char cause[192], id[EVENT_ID_LEN];
    cand_cause(c, cause, sizeof(cause));
    event_id_derive(id, cause, purpose);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, fl->f->svc->name, fl->cause_id, fl->f->training.guideline_version);
    hdr.occurred_at_ms = fl->now_ms;
    ev->header = &hdr;
    ev->candidate_id = (char *)c->id;
    size_t len = annot__v1__candidate_event__get_packed_size(ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) abort();
    annot__v1__candidate_event__pack(ev, buf);
    int rc = flow_emit(fl, "candidates", c->id, buf, len);
    free(buf);
    if (rc != 0) return -1;
    return history_add(fl, c, id, kind, stage, detail);
}

/* Announces that c entered stage and starts the stage's clock (saved with
 * the row by the caller). */
static int enter(flow_t *fl, cand_t *c, funnel_stage_t stage) {
    c->due_ms = funnel_stage_due(&fl->f->timeouts, stage, fl->now_ms);
    char purpose[64];
    snprintf(purpose, sizeof(purpose), "entered/%s", funnel_stage_name(stage));
    Annot__V1__StageEntered se = ANNOT__V1__STAGE_ENTERED__INIT;
    se.stage = (Annot__V1__FunnelStage)stage;
    se.entered_at_ms = fl->now_ms;
    se.cohort_day = (char *)c->cohort_day;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_ENTERED;
    ev.stage_entered = &se;
    metrics_inc(fl->f->m_entered[stage]);
    return emit_cand(fl, c, &ev, purpose, "stage_entered", stage, NULL);
}

/* Runs the machine.  1: refused (logged, counted, in the history); 0:
 * moved; -1: database error. */
/* Logs, counts and records a refused input: 1, or -1 on a database error. */
static int refuse(flow_t *fl, const cand_t *c, const char *why) {
    log_warn("candidate %s: transition refused: %s (input event %s)", c->id, why, fl->cause_id);
    metrics_inc(fl->f->m_refused);
    if (!c->exists) return 1; /* no history without a candidate */
    return history_add(fl, c, fl->cause_id, "refused", c->st.stage, why) < 0 ? -1 : 1;
}

static int step(flow_t *fl, cand_t *c, funnel_input_t in, funnel_stage_t stage) {
    funnel_event_t ev = {in, stage, fl->now_ms};
    char why[256];
    if (funnel_step(&fl->f->policy, &c->st, &ev, why, sizeof(why)) == 0) return 0;
    return refuse(fl, c, why);
}

static pipeline_result_t refused_result(int rc) { return rc < 0 ? PIPELINE_RETRY : PIPELINE_APPLIED; }

static int decided(flow_t *fl, const cand_t *c, funnel_stage_t stage, const funnel_decision_t *d) {
    char purpose[64];
    snprintf(purpose, sizeof(purpose), "decided/%s", funnel_stage_name(stage));
    Annot__V1__StageDecided sd = ANNOT__V1__STAGE_DECIDED__INIT;
    sd.stage = (Annot__V1__FunnelStage)stage;
    sd.passed = d->passed;
    sd.mean_score = d->mean_score;
    sd.critical_errors = d->critical_errors;
    sd.threshold = d->threshold;
    sd.cases_validated = d->cases;
    sd.reason = (char *)d->reason;
    sd.decided_at_ms = fl->now_ms;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_DECIDED;
    ev.stage_decided = &sd;
    metrics_inc(d->passed ? fl->f->m_passed[stage] : fl->f->m_failed[stage]);
    char detail[200];
    snprintf(detail, sizeof(detail), "%s: %s", d->passed ? "passed" : "failed", d->reason);
    return emit_cand(fl, c, &ev, purpose, "stage_decided", stage, detail);
}

static int reject(flow_t *fl, cand_t *c, funnel_stage_t failed, const char *reason) {
    Annot__V1__CandidateRejected cr = ANNOT__V1__CANDIDATE_REJECTED__INIT;
    cr.stage = (Annot__V1__FunnelStage)failed;
    cr.reason = (char *)reason;
    cr.retry_allowed_after_ms = c->st.retry_after_ms;
    cr.rejected_at_ms = fl->now_ms;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_REJECTED;
    ev.rejected = &cr;
    char detail[256];
    snprintf(detail, sizeof(detail), "%s; retry after %lld", reason, (long long)c->st.retry_after_ms);
    if (emit_cand(fl, c, &ev, "rejected", "rejected", failed, detail) != 0) return -1;
    return enter(fl, c, FUNNEL_REJECTED);
}

/* suffix tells a re-announcement apart from the assignment itself ("" for
 * the assignment). */
static int assign_screening(flow_t *fl, cand_t *c, const char *suffix) {
    const funnel_t *f = fl->f;
    size_t k = f->screening_questions < f->bank.n ? f->screening_questions : f->bank.n;
    size_t idx[CAND_QUESTIONS_MAX];
    char seed[192];
    cand_cause(c, seed, sizeof(seed));
    if (k > CAND_QUESTIONS_MAX || funnel_draw(seed, f->bank.n, k, idx) != 0) {
        snprintf(fl->errstr, fl->errlen, "screening draw failed");
        return -1;
    }
    char *ids[CAND_QUESTIONS_MAX];
    json_decref(c->questions);
    c->questions = json_array();
    for (size_t i = 0; i < k; i++) {
        ids[i] = (char *)f->bank.questions[idx[i]].id;
        json_array_append_new(c->questions, json_string(ids[i]));
    }
    event_id_derive(c->screening_id, seed, "screening-id");
    Annot__V1__ScreeningAssigned sa = ANNOT__V1__SCREENING_ASSIGNED__INIT;
    sa.screening_id = c->screening_id;
    sa.test_version = (char *)f->bank.version;
    sa.n_question_ids = k;
    sa.question_ids = ids;
    sa.assigned_at_ms = fl->now_ms;
    sa.due_at_ms = f->screening_due_ms > 0 ? fl->now_ms + f->screening_due_ms : 0;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_SCREENING_ASSIGNED;
    ev.screening_assigned = &sa;
    char detail[128];
    snprintf(detail, sizeof(detail), "%zu questions of %s", k, f->bank.version);
    char purpose[EVENT_ID_LEN + 32];
    snprintf(purpose, sizeof(purpose), "screening-assigned%s", suffix);
    return emit_cand(fl, c, &ev, purpose, "screening_assigned", FUNNEL_SCREENING, detail);
}

static int assign_training(flow_t *fl, cand_t *c, const char *suffix) {
    const training_t *t = &fl->f->training;
    snprintf(c->training_version, sizeof(c->training_version), "%s", t->guideline_version);
    Annot__V1__TrainingAssigned ta = ANNOT__V1__TRAINING_ASSIGNED__INIT;
    ta.guideline_version = (char *)t->guideline_version;
    ta.n_sample_ids = t->nsamples;
    ta.sample_ids = (char **)t->sample_ids;
    ta.assigned_at_ms = fl->now_ms;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_TRAINING_ASSIGNED;
    ev.training_assigned = &ta;
    char purpose[EVENT_ID_LEN + 32];
    snprintf(purpose, sizeof(purpose), "training-assigned%s", suffix);
    return emit_cand(fl, c, &ev, purpose, "training_assigned", FUNNEL_TRAINING, t->guideline_version);
}

static int exam_check(flow_t *fl, cand_t *c, funnel_stage_t stage);

/* Hands out the stage's exam cases: for each, a TaskEvent (the dispatcher
 * queues it for this candidate alone) and an ExamCaseAssigned; then checks
 * whether their verdicts are already here (a replay). */
static int assign_exam(flow_t *fl, cand_t *c, funnel_stage_t stage) {
    int n_stage = stage == FUNNEL_EXAM1 ? 1 : 2;
    const exam_bank_t *bank = &fl->f->exams;
    const exam_set_t *sets[CAND_SETS_MAX];
    size_t nsets;
    char cause[192], seed[224];
    cand_cause(c, cause, sizeof(cause));
    snprintf(seed, sizeof(seed), "%s/%s", cause, funnel_stage_name(stage));
    if (exam_bank_choose(bank, n_stage, c->locale, seed, sets, CAND_SETS_MAX, &nsets) != 0) {
        snprintf(fl->errstr, fl->errlen, "exam bank: cannot choose %s sets", funnel_stage_name(stage));
        return -1;
    }
    unsigned total = 0;
    for (size_t i = 0; i < nsets; i++) total += (unsigned)sets[i]->ncases;
    for (size_t i = 0; i < nsets; i++) {
        for (size_t k = 0; k < sets[i]->ncases; k++) {
            const exam_case_t *ec = &sets[i]->cases[k];
            char purpose[256], task_id[EVENT_ID_LEN], tev_id[EVENT_ID_LEN];
            snprintf(purpose, sizeof(purpose), "exam-task/%s/%s/%s", funnel_stage_name(stage), sets[i]->id, ec->id);
            event_id_derive(task_id, cause, purpose);
            event_id_derive(tev_id, task_id, "exam-task-event");
            task_proto_t tp;
            if (exam_case_task(ec, n_stage, &tp, fl->errstr, fl->errlen) != 0) {
                task_proto_clear(&tp);
                return -1;
            }
            Annot__V1__Task *t = &tp.task;
            t->task_id = task_id;
            t->candidate_id = c->id;
            t->exam_case_set = (char *)sets[i]->id;
            t->created_at_ms = fl->now_ms;
            if (t->guideline_version == NULL || t->guideline_version[0] == '\0')
                t->guideline_version = (char *)fl->f->training.guideline_version;
            Annot__V1__EventHeader hdr;
            event_header_fill(&hdr, tev_id, fl->f->svc->name, fl->cause_id, t->guideline_version);
            hdr.occurred_at_ms = fl->now_ms;
            Annot__V1__TaskEvent tev = ANNOT__V1__TASK_EVENT__INIT;
            tev.header = &hdr;
            tev.task = t;
            size_t len = annot__v1__task_event__get_packed_size(&tev);
            uint8_t *buf = malloc(len);
            if (buf == NULL) abort();
            annot__v1__task_event__pack(&tev, buf);
            int rc = flow_emit(fl, "tasks", task_id, buf, len);
            free(buf);
            /* The task's strings live in tp's owner (task_codec.h): clearing
             * frees those and never the ones set here. */
            task_proto_clear(&tp);
            if (rc != 0) return -1;

            char app[16], at[24];
            snprintf(app, sizeof(app), "%u", c->st.application);
            snprintf(at, sizeof(at), "%lld", (long long)fl->now_ms);
            const char *p[6] = {task_id, c->id, app, funnel_stage_name(stage), sets[i]->id, at};
            if (pg_command(fl->pg,
                           "INSERT INTO exam_cases (task_id, candidate_id, application, stage, case_set, "
                           "assigned_at_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (task_id) DO NOTHING",
                           6, p, fl->errstr, fl->errlen) < 0)
                return -1;
            Annot__V1__ExamCaseAssigned ea = ANNOT__V1__EXAM_CASE_ASSIGNED__INIT;
            ea.stage = (Annot__V1__FunnelStage)stage;
            ea.case_set = (char *)sets[i]->id;
            ea.task_id = task_id;
            ea.assigned_at_ms = fl->now_ms;
            ea.stage_case_count = total;
            Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
            ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_EXAM_CASE_ASSIGNED;
            ev.exam_case_assigned = &ea;
            char cpurpose[EVENT_ID_LEN + 16], detail[256];
            snprintf(cpurpose, sizeof(cpurpose), "exam-case/%s", task_id);
            snprintf(detail, sizeof(detail), "%s/%s task %s", sets[i]->id, ec->id, task_id);
            if (emit_cand(fl, c, &ev, cpurpose, "exam_case_assigned", stage, detail) != 0) return -1;
        }
    }
    return exam_check(fl, c, stage);
}

/* Approval: CandidateApproved, and the annotator status that makes the
 * dispatcher treat the candidate's own user as an annotator. */
static int approve(flow_t *fl, cand_t *c) {
    const char *skills[64];
    size_t ns = cand_skills(c, skills, 64);
    Annot__V1__CandidateApproved ca = ANNOT__V1__CANDIDATE_APPROVED__INIT;
    ca.annotator_id = c->id;
    ca.n_skills = ns;
    ca.skills = (char **)skills;
    ca.locale = c->locale;
    ca.approved_at_ms = fl->now_ms;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_APPROVED;
    ev.approved = &ca;
    if (emit_cand(fl, c, &ev, "approved", "approved", FUNNEL_APPROVED, c->locale) != 0) return -1;
    char *arr = pg_text_array(skills, ns);
    int rc = standing_flow_promote(fl, c->id, c->locale, arr, skills, ns);
    free(arr);
    return rc;
}

/* After a decision: the machine moves (or refuses), then what the new
 * stage needs. */
static int advance(flow_t *fl, cand_t *c, funnel_stage_t stage, const funnel_decision_t *d) {
    if (decided(fl, c, stage, d) != 0) return -1;
    int rc = step(fl, c, d->passed ? FUNNEL_INPUT_PASS : FUNNEL_INPUT_FAIL, stage);
    if (rc != 0) return rc < 0 ? -1 : 0;
    if (!d->passed) return reject(fl, c, stage, d->reason) != 0 || cand_save(fl, c) != 0 ? -1 : 0;
    if (enter(fl, c, c->st.stage) != 0 || cand_save(fl, c) != 0) return -1;
    switch (c->st.stage) {
    case FUNNEL_TRAINING: return assign_training(fl, c, "") != 0 || cand_save(fl, c) != 0 ? -1 : 0;
    case FUNNEL_EXAM1:
    case FUNNEL_EXAM2: return assign_exam(fl, c, c->st.stage);
    case FUNNEL_APPROVED: return approve(fl, c);
    default: return 0;
    }
}

/* Decides an exam stage when every case of it has its verdict. */
static int exam_check(flow_t *fl, cand_t *c, funnel_stage_t stage) {
    char app[16];
    snprintf(app, sizeof(app), "%u", c->st.application);
    const char *p[3] = {c->id, app, funnel_stage_name(stage)};
    PGresult *res = pg_query(fl->pg, PGRES_TUPLES_OK,
                             "SELECT r.score, r.critical, r.validated_at_ms, e.assigned_at_ms FROM exam_cases e "
                             "LEFT JOIN exam_results r USING (task_id) "
                             "WHERE e.candidate_id = $1 AND e.application = $2 AND e.stage = $3 ORDER BY e.task_id",
                             3, p, fl->errstr, fl->errlen);
    if (res == NULL) return -1;
    int n = PQntuples(res);
    bool complete = n > 0;
    double *scores = calloc((size_t)n + 1, sizeof(*scores));
    unsigned *critical = calloc((size_t)n + 1, sizeof(*critical));
    if (scores == NULL || critical == NULL) abort();
    /* The stage is decided when its last piece arrived: the last verdict,
     * or (a replay reading verdicts first) the assignment.  That time, not
     * the trigger's, stamps the decision, so the cool-down it starts is
     * the same in every run. */
    int64_t complete_at = 0;
    for (int i = 0; i < n && complete; i++) {
        if (PQgetisnull(res, i, 0)) {
            complete = false;
            break;
        }
        scores[i] = strtod(PQgetvalue(res, i, 0), NULL);
        critical[i] = (unsigned)atoi(PQgetvalue(res, i, 1));
        int64_t v = atoll(PQgetvalue(res, i, 2)), a = atoll(PQgetvalue(res, i, 3));
        if (v > complete_at) complete_at = v;
        if (a > complete_at) complete_at = a;
    }
    PQclear(res);
    int rc = 0;
    if (complete) {
        funnel_decision_t d;
        funnel_exam_decide(scores, critical, (size_t)n, fl->f->exam_threshold[stage == FUNNEL_EXAM1 ? 0 : 1], &d);
        int64_t trigger_ms = fl->now_ms;
        fl->now_ms = complete_at;
        rc = advance(fl, c, stage, &d);
        fl->now_ms = trigger_ms;
    }
    free(scores);
    free(critical);
    return rc;
}

/* The dispatcher resets its view of a candidate on every application,
 * even one the funnel refuses: tell it again where they stand and what
 * they were given (the same screening test, drawn again from the same
 * seed; the same training).  New ids: these are new events. */
static int reannounce(flow_t *fl, cand_t *c) {
    char suffix[EVENT_ID_LEN + 16];
    snprintf(suffix, sizeof(suffix), "/reannounce/%s", fl->cause_id);
    Annot__V1__StageEntered se = ANNOT__V1__STAGE_ENTERED__INIT;
    se.stage = (Annot__V1__FunnelStage)c->st.stage;
    se.entered_at_ms = fl->now_ms;
    se.cohort_day = c->cohort_day;
    Annot__V1__CandidateEvent out = ANNOT__V1__CANDIDATE_EVENT__INIT;
    out.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_ENTERED;
    out.stage_entered = &se;
    char purpose[EVENT_ID_LEN + 32];
    snprintf(purpose, sizeof(purpose), "entered%s", suffix);
    if (emit_cand(fl, c, &out, purpose, "stage_reannounced", c->st.stage, NULL) != 0) return -1;
    if (c->st.stage == FUNNEL_SCREENING) return assign_screening(fl, c, suffix);
    if (c->st.stage == FUNNEL_TRAINING) return assign_training(fl, c, suffix);
    return 0;
}

/* ---- inputs ------------------------------------------------------------- */

/* A value longer than its field in the record is refused rather than cut:
 * a cut could split a UTF-8 character, which PostgreSQL would refuse on
 * every retry. */
static bool fits(flow_t *fl, const char *field, const char *value, size_t max) {
    if (strlen(value) <= max) return true;
    snprintf(fl->errstr, fl->errlen, "%s: longer than %zu bytes", field, max);
    return false;
}

static pipeline_result_t on_applied(flow_t *fl, const Annot__V1__CandidateEvent *ev) {
    const Annot__V1__CandidateApplied *a = ev->applied;
    if (a->name[0] == '\0' || a->locale[0] == '\0') {
        snprintf(fl->errstr, fl->errlen, "applied.%s: required", a->name[0] ? "locale" : "name");
        return PIPELINE_INVALID;
    }
    if (!fits(fl, "applied.name", a->name, CAND_NAME_MAX) || !fits(fl, "applied.locale", a->locale, CAND_LOCALE_MAX))
        return PIPELINE_INVALID;
    struct tm day = {0};
    const char *day_end = a->cohort_day[0] ? strptime(a->cohort_day, "%Y-%m-%d", &day) : "";
    if (day_end == NULL || *day_end != '\0' || (a->cohort_day[0] && strlen(a->cohort_day) != 10)) {
        snprintf(fl->errstr, fl->errlen, "applied.cohort_day: expected a date YYYY-MM-DD");
        return PIPELINE_INVALID;
    }
    if (a->applied_at_ms > 0) fl->now_ms = a->applied_at_ms;
    cand_t c;
    if (cand_load(fl, ev->candidate_id, &c) != 0) return PIPELINE_RETRY;
    pipeline_result_t r = PIPELINE_RETRY;
    int rc = step(fl, &c, FUNNEL_INPUT_APPLY, FUNNEL_NONE);
    if (rc < 0) goto out;
    if (rc > 0) {
        if (c.exists && reannounce(fl, &c) != 0) goto out;
        r = PIPELINE_APPLIED;
        goto out;
    }
    snprintf(c.name, sizeof(c.name), "%s", a->name);
    snprintf(c.locale, sizeof(c.locale), "%s", a->locale);
    json_decref(c.skills);
    c.skills = json_array();
    for (size_t i = 0; i < a->n_skills; i++) json_array_append_new(c.skills, json_string(a->skills[i]));
    if (a->cohort_day[0]) {
        snprintf(c.cohort_day, sizeof(c.cohort_day), "%s", a->cohort_day);
    } else {
        time_t t = (time_t)(fl->now_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(c.cohort_day, sizeof(c.cohort_day), "%Y-%m-%d", &tm);
    }
    c.screening_id[0] = c.training_version[0] = '\0';
    json_decref(c.questions);
    c.questions = NULL;
    char detail[320];
    snprintf(detail, sizeof(detail), "application %u: %s, %s", c.st.application, a->name, a->locale);
    if (history_add(fl, &c, fl->cause_id, "applied", FUNNEL_APPLIED, detail) != 0) goto out;
    if (enter(fl, &c, FUNNEL_APPLIED) != 0) goto out;
    if ((rc = step(fl, &c, FUNNEL_INPUT_START, FUNNEL_NONE)) != 0) {
        r = rc < 0 ? PIPELINE_RETRY : PIPELINE_APPLIED;
        goto out;
    }
    if (enter(fl, &c, FUNNEL_SCREENING) != 0 || assign_screening(fl, &c, "") != 0 || cand_save(fl, &c) != 0) goto out;
    r = PIPELINE_APPLIED;
out:
    cand_free(&c);
    return r;
}

static pipeline_result_t on_screening(flow_t *fl, const Annot__V1__CandidateEvent *ev) {
    const Annot__V1__ScreeningSubmitted *s = ev->screening_submitted;
    cand_t c;
    if (cand_load(fl, ev->candidate_id, &c) != 0) return PIPELINE_RETRY;
    pipeline_result_t r = PIPELINE_RETRY;
    char why[256];
    if (!c.exists || strcmp(c.screening_id, s->screening_id) != 0) {
        snprintf(why, sizeof(why), "screening answers for %s, not the candidate's current screening", s->screening_id);
        r = refused_result(refuse(fl, &c, why));
        goto out;
    }
    if (c.st.stage != FUNNEL_SCREENING) {
        /* Answers after the screening was decided: the machine refuses. */
        r = refused_result(step(fl, &c, FUNNEL_INPUT_PASS, FUNNEL_SCREENING));
        goto out;
    }
    const char *ids[CAND_QUESTIONS_MAX];
    size_t nids = 0, i;
    json_t *v;
    json_array_foreach(c.questions, i, v) {
        if (nids < CAND_QUESTIONS_MAX && json_is_string(v)) ids[nids++] = json_string_value(v);
    }
    screening_answer_t *answers = calloc(s->n_answers + 1, sizeof(*answers));
    if (answers == NULL) abort();
    for (size_t k = 0; k < s->n_answers; k++) {
        answers[k].question_id = s->answers[k]->question_id;
        answers[k].answer = s->answers[k]->answer;
    }
    unsigned correct = screening_correct(&fl->f->bank, ids, nids, answers, s->n_answers);
    free(answers);
    funnel_decision_t d;
    funnel_screening_decide(correct, (unsigned)nids, fl->f->screening_threshold, &d);
    Annot__V1__ScreeningScored sc = ANNOT__V1__SCREENING_SCORED__INIT;
    sc.screening_id = c.screening_id;
    sc.score = d.mean_score;
    sc.passed = d.passed;
    sc.threshold = d.threshold;
    sc.correct = correct;
    sc.total = (uint32_t)nids;
    sc.scored_at_ms = fl->now_ms;
    Annot__V1__CandidateEvent out = ANNOT__V1__CANDIDATE_EVENT__INIT;
    out.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_SCREENING_SCORED;
    out.screening_scored = &sc;
    if (history_add(fl, &c, fl->cause_id, "screening_submitted", FUNNEL_SCREENING, NULL) != 0) goto out;
    if (emit_cand(fl, &c, &out, "screening-scored", "screening_scored", FUNNEL_SCREENING, d.reason) != 0) goto out;
    r = advance(fl, &c, FUNNEL_SCREENING, &d) != 0 ? PIPELINE_RETRY : PIPELINE_APPLIED;
out:
    cand_free(&c);
    return r;
}

static pipeline_result_t on_training(flow_t *fl, const Annot__V1__CandidateEvent *ev) {
    const char *version = ev->training_completed->guideline_version_acknowledged;
    cand_t c;
    if (cand_load(fl, ev->candidate_id, &c) != 0) return PIPELINE_RETRY;
    pipeline_result_t r = PIPELINE_RETRY;
    char why[300];
    if (!c.exists || (c.st.stage == FUNNEL_TRAINING && strcmp(version, c.training_version) != 0)) {
        snprintf(why, sizeof(why), "training acknowledged for %s, assigned '%s'", version, c.training_version);
        r = refused_result(refuse(fl, &c, why));
        goto out;
    }
    if (c.st.stage != FUNNEL_TRAINING) {
        r = refused_result(step(fl, &c, FUNNEL_INPUT_PASS, FUNNEL_TRAINING));
        goto out;
    }
    funnel_decision_t d = {.passed = true, .mean_score = 1.0, .threshold = 1.0, .cases = 1};
    snprintf(d.reason, sizeof(d.reason), "acknowledged guideline %s", version);
    if (history_add(fl, &c, fl->cause_id, "training_completed", FUNNEL_TRAINING, version) != 0) goto out;
    r = advance(fl, &c, FUNNEL_TRAINING, &d) != 0 ? PIPELINE_RETRY : PIPELINE_APPLIED;
out:
    cand_free(&c);
    return r;
}

/* An exam case submitted (from the dispatcher): kept for the exam's time
 * limit, the first per case. */
static pipeline_result_t on_exam_submitted(flow_t *fl, const Annot__V1__CandidateEvent *ev) {
    const Annot__V1__ExamCaseSubmitted *es = ev->exam_case_submitted;
    if (es->task_id[0] == '\0' || es->submission_id[0] == '\0') {
        snprintf(fl->errstr, fl->errlen, "exam_case_submitted.%s: required", es->task_id[0] ? "submission_id" : "task_id");
        return PIPELINE_INVALID;
    }
    char at[24];
    snprintf(at, sizeof(at), "%lld", (long long)(es->submitted_at_ms > 0 ? es->submitted_at_ms : fl->now_ms));
    const char *p[4] = {es->task_id, ev->candidate_id, es->submission_id, at};
    long n = pg_command(fl->pg,
                        "INSERT INTO exam_submissions (task_id, candidate_id, submission_id, submitted_at_ms) VALUES "
                        "($1, $2, $3, $4) ON CONFLICT (task_id) DO NOTHING",
                        4, p, fl->errstr, fl->errlen);
    if (n < 0) return PIPELINE_RETRY;
    if (n == 0) return PIPELINE_APPLIED;
    cand_t c;
    if (cand_load(fl, ev->candidate_id, &c) != 0) return PIPELINE_RETRY;
    pipeline_result_t r = PIPELINE_APPLIED;
    char detail[160];
    snprintf(detail, sizeof(detail), "task %s: submission %s", es->task_id, es->submission_id);
    if (c.exists && history_add(fl, &c, fl->cause_id, "exam_case_submitted", (funnel_stage_t)es->stage, detail) != 0)
        r = PIPELINE_RETRY;
    cand_free(&c);
    return r;
}

/* A stage's deadline passed (the sweep's StageExpired, read in the
 * candidate's order): the stage fails unless it was left already or, for
 * an exam, every case was submitted by the deadline. */
static pipeline_result_t on_expired(flow_t *fl, const Annot__V1__CandidateEvent *ev) {
    const Annot__V1__StageExpired *se = ev->stage_expired;
    funnel_stage_t stage = (funnel_stage_t)se->stage;
    if (funnel_stage_name(stage) == NULL || se->due_at_ms <= 0) {
        snprintf(fl->errstr, fl->errlen, "stage_expired.%s: out of range", se->due_at_ms <= 0 ? "due_at_ms" : "stage");
        return PIPELINE_INVALID;
    }
    /* The decision is stamped with the deadline, so the cool-down it
     * starts does not depend on when the sweep ran. */
    fl->now_ms = se->due_at_ms;
    cand_t c;
    if (cand_load(fl, ev->candidate_id, &c) != 0) return PIPELINE_RETRY;
    pipeline_result_t r = PIPELINE_RETRY;
    char why[256];
    if (!c.exists || c.st.application != se->application || c.st.stage != stage) {
        snprintf(why, sizeof(why), "%s of application %u expired: the candidate is in %s of application %u",
                 funnel_stage_name(stage), se->application, funnel_stage_name(c.st.stage), c.st.application);
        r = refused_result(refuse(fl, &c, why));
        goto out;
    }
    unsigned cases = 0, in_time = 0;
    if (stage == FUNNEL_EXAM1 || stage == FUNNEL_EXAM2) {
        char app[16], due[24];
        snprintf(app, sizeof(app), "%u", c.st.application);
        snprintf(due, sizeof(due), "%lld", (long long)se->due_at_ms);
        const char *p[4] = {c.id, app, funnel_stage_name(stage), due};
        PGresult *res = pg_query(fl->pg, PGRES_TUPLES_OK,
                                 "SELECT count(*), count(s.task_id) FILTER (WHERE s.submitted_at_ms <= $4::bigint) "
                                 "FROM exam_cases e LEFT JOIN exam_submissions s USING (task_id) "
                                 "WHERE e.candidate_id = $1 AND e.application = $2 AND e.stage = $3",
                                 4, p, fl->errstr, fl->errlen);
        if (res == NULL) goto out;
        cases = (unsigned)atoi(PQgetvalue(res, 0, 0));
        in_time = (unsigned)atoi(PQgetvalue(res, 0, 1));
        PQclear(res);
    }
    funnel_decision_t d;
    int rc = funnel_timeout_decide(stage, cases, in_time, se->due_at_ms, &d, why, sizeof(why));
    if (rc <= 0) {
        r = refused_result(refuse(fl, &c, why));
        goto out;
    }
    metrics_inc(fl->f->m_timed_out);
    if (history_add(fl, &c, fl->cause_id, "stage_expired", stage, d.reason) != 0) goto out;
    r = advance(fl, &c, stage, &d) != 0 ? PIPELINE_RETRY : PIPELINE_APPLIED;
out:
    cand_free(&c);
    return r;
}

pipeline_result_t candidate_flow_apply(flow_t *fl, const void *payload, size_t len) {
    Annot__V1__CandidateEvent *ev = (Annot__V1__CandidateEvent *)event_unpack(&annot__v1__candidate_event__descriptor,
                                                                               payload, len, fl->errstr, fl->errlen);
    if (ev == NULL) return PIPELINE_INVALID;
    pipeline_result_t r = PIPELINE_APPLIED;
    bool ours = ev->event_case == ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED ||
                ev->event_case == ANNOT__V1__CANDIDATE_EVENT__EVENT_SCREENING_SUBMITTED ||
                ev->event_case == ANNOT__V1__CANDIDATE_EVENT__EVENT_TRAINING_COMPLETED ||
                ev->event_case == ANNOT__V1__CANDIDATE_EVENT__EVENT_EXAM_CASE_SUBMITTED ||
                ev->event_case == ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_EXPIRED ||
                ev->event_case == ANNOT__V1__CANDIDATE_EVENT__EVENT_REINSTATEMENT_REQUESTED;
    if (!ours) goto out; /* the funnel's own announcements */
    if (!event_id_valid(ev->candidate_id)) {
        snprintf(fl->errstr, fl->errlen, "candidate_id: not a user id (UUID): '%.64s'", ev->candidate_id);
        r = PIPELINE_INVALID;
        goto out;
    }
    switch (ev->event_case) {
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED: r = on_applied(fl, ev); break;
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_SCREENING_SUBMITTED: r = on_screening(fl, ev); break;
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_EXAM_CASE_SUBMITTED: r = on_exam_submitted(fl, ev); break;
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_EXPIRED: r = on_expired(fl, ev); break;
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_REINSTATEMENT_REQUESTED:
        r = standing_flow_reinstate_request(fl, ev->candidate_id, ev->reinstatement_requested->reason);
        break;
    default: r = on_training(fl, ev); break;
    }
out:
    annot__v1__candidate_event__free_unpacked(ev, NULL);
    return r;
}

pipeline_result_t candidate_flow_exam_result(flow_t *fl, const char *candidate_id, const char *task_id, double score,
                                             unsigned critical, int64_t validated_at_ms) {
    char s[32], crit[16], at[24];
    snprintf(s, sizeof(s), "%.17g", score);
    snprintf(crit, sizeof(crit), "%u", critical);
    snprintf(at, sizeof(at), "%lld", (long long)validated_at_ms);
    const char *p[5] = {task_id, candidate_id, s, crit, at};
    /* The first verdict on a case counts (a double validation's second
     * verdict changes nothing). */
    long n = pg_command(fl->pg,
                        "INSERT INTO exam_results (task_id, candidate_id, score, critical, validated_at_ms) VALUES "
                        "($1, $2, $3, $4, $5) ON CONFLICT (task_id) DO NOTHING",
                        5, p, fl->errstr, fl->errlen);
    if (n < 0) return PIPELINE_RETRY;
    if (n == 0) return PIPELINE_APPLIED;
    cand_t c;
    if (cand_load(fl, candidate_id, &c) != 0) return PIPELINE_RETRY;
    pipeline_result_t r = PIPELINE_APPLIED;
    const char *q2[2] = {task_id, candidate_id};
    PGresult *res = pg_query(fl->pg, PGRES_TUPLES_OK,
                   "SELECT application, stage FROM exam_cases WHERE task_id = $1 AND candidate_id = $2", 2, q2,
                   fl->errstr, fl->errlen);
    if (res == NULL) {
        r = PIPELINE_RETRY;
        goto out;
    }
    funnel_stage_t stage = FUNNEL_NONE;
    if (PQntuples(res) == 1 && c.exists && (unsigned)atoi(PQgetvalue(res, 0, 0)) == c.st.application &&
        funnel_stage_parse(PQgetvalue(res, 0, 1), &stage) == 0 && stage == c.st.stage) {
        char detail[160];
        snprintf(detail, sizeof(detail), "task %s: score %.2f, %u critical", task_id, score, critical);
        if (history_add(fl, &c, fl->cause_id, "exam_case_validated", stage, detail) != 0 ||
            exam_check(fl, &c, stage) != 0)
            r = PIPELINE_RETRY;
    } else if (PQntuples(res) == 1 && c.exists) {
        /* A verdict for a case of a stage the candidate has left (or an
         * earlier application): kept, decides nothing. */
        log_info("candidate %s: verdict on task %s after its stage was decided", candidate_id, task_id);
    }
    /* No case yet: kept for when it is assigned (a replay). */
    PQclear(res);
out:
    cand_free(&c);
    return r;
}

long candidate_flow_expire(flow_t *fl) {
    char cutoff[24];
    snprintf(cutoff, sizeof(cutoff), "%lld", (long long)(fl->now_ms - fl->f->timeout_grace_ms));
    const char *p[1] = {cutoff};
    if (pg_begin(fl->pg, fl->errstr, fl->errlen) != 0) return -1;
    /* SKIP LOCKED: a candidate a pipeline batch holds is taken next time;
     * several instances sweep without waiting on each other. */
    PGresult *res = pg_query(fl->pg, PGRES_TUPLES_OK,
                             "SELECT candidate_id, stage, application, stage_due_at_ms FROM candidates WHERE "
                             "stage_due_at_ms > 0 AND stage_due_at_ms <= $1::bigint ORDER BY stage_due_at_ms "
                             "LIMIT 100 FOR UPDATE SKIP LOCKED",
                             1, p, fl->errstr, fl->errlen);
    if (res == NULL) goto fail;
    long n = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        cand_t c = {.exists = true};
        snprintf(c.id, sizeof(c.id), "%s", PQgetvalue(res, i, 0));
        if (funnel_stage_parse(PQgetvalue(res, i, 1), &c.st.stage) != 0) continue;
        c.st.application = (unsigned)atoi(PQgetvalue(res, i, 2));
        int64_t due = atoll(PQgetvalue(res, i, 3));
        Annot__V1__StageExpired se = ANNOT__V1__STAGE_EXPIRED__INIT;
        se.stage = (Annot__V1__FunnelStage)c.st.stage;
        se.application = c.st.application;
        se.due_at_ms = due;
        Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
        ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_EXPIRED;
        ev.stage_expired = &se;
        /* Its id derives from the candidate, application and stage: a sweep
         * that sends it again (a replay's) sends the same event. */
        char purpose[64], cause[192], id[EVENT_ID_LEN];
        snprintf(purpose, sizeof(purpose), "expired/%s", funnel_stage_name(c.st.stage));
        cand_cause(&c, cause, sizeof(cause));
        event_id_derive(id, cause, purpose);
        Annot__V1__EventHeader hdr;
        event_header_fill(&hdr, id, fl->f->svc->name, "", fl->f->training.guideline_version);
        hdr.occurred_at_ms = due;
        ev.header = &hdr;
        ev.candidate_id = c.id;
        size_t len = annot__v1__candidate_event__get_packed_size(&ev);
        uint8_t *buf = malloc(len ? len : 1);
        if (buf == NULL) abort();
        annot__v1__candidate_event__pack(&ev, buf);
        int rc = flow_emit(fl, "candidates", c.id, buf, len);
        free(buf);
        const char *q[1] = {c.id};
        if (rc != 0 || pg_command(fl->pg, "UPDATE candidates SET stage_due_at_ms = 0 WHERE candidate_id = $1", 1, q,
                                  fl->errstr, fl->errlen) != 1) {
            PQclear(res);
            goto fail;
        }
        log_info("candidate %s: %s of application %u past its deadline %lld", c.id, funnel_stage_name(c.st.stage),
                 c.st.application, (long long)due);
        n++;
    }
    PQclear(res);
    if (pg_commit(fl->pg, fl->errstr, fl->errlen) != 0) goto fail;
    return n;
fail:
    pg_rollback(fl->pg);
    return -1;
}
