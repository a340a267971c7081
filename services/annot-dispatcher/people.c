/* people: see people.h. */
#include "people.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot/v1/annotator.pb-c.h"
#include "annot/v1/candidate.pb-c.h"
#include "event.h"
#include "lease_policy.h"
#include "log.h"
#include "outbox.h"
#include "utf8.h"

/* ---- from Kafka ------------------------------------------------------------ */

static const char *stage_name(Annot__V1__FunnelStage s) {
    switch (s) {
    case ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_APPLIED: return "applied";
    case ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_SCREENING: return "screening";
    case ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_TRAINING: return "training";
    case ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_EXAM1: return "exam1";
    case ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_EXAM2: return "exam2";
    case ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_APPROVED: return "approved";
    case ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_REJECTED: return "rejected";
    default: return NULL;
    }
}

static pipeline_result_t command(pg_t *pg, const char *sql, int n, const char *const *params, char *errstr,
                                 size_t errlen) {
    return pg_command(pg, sql, n, params, errstr, errlen) < 0 ? PIPELINE_RETRY : PIPELINE_APPLIED;
}

/* Sets the candidate's stage, creating the row; a new application starts
 * from nothing. */
static pipeline_result_t set_stage(pg_t *pg, const char *candidate_id, const char *stage, bool fresh, char *errstr,
                                   size_t errlen) {
    const char *p[2] = {candidate_id, stage};
    if (fresh)
        return command(pg,
                       "INSERT INTO candidates (candidate_id, stage) VALUES ($1, $2) ON CONFLICT (candidate_id) DO "
                       "UPDATE SET stage = $2, screening_id = NULL, screening_version = NULL, screening_questions = "
                       "NULL, screening_due_ms = 0, training_version = NULL, training_samples = NULL, "
                       "training_completed_at = NULL, updated_at = now()",
                       2, p, errstr, errlen);
    return command(pg,
                   "INSERT INTO candidates (candidate_id, stage) VALUES ($1, $2) ON CONFLICT (candidate_id) DO "
                   "UPDATE SET stage = $2, updated_at = now()",
                   2, p, errstr, errlen);
}

pipeline_result_t people_apply_candidate(pg_t *pg, const rd_kafka_message_t *rkm, char *errstr, size_t errlen) {
    Annot__V1__CandidateEvent *ev =
        (Annot__V1__CandidateEvent *)event_unpack(&annot__v1__candidate_event__descriptor, rkm->payload, rkm->len, errstr, errlen);
    if (ev == NULL) return PIPELINE_INVALID;
    pipeline_result_t r = PIPELINE_APPLIED;
    const char *id = ev->candidate_id, *stage;
    if (!lease_policy_id_valid(id)) {
        snprintf(errstr, errlen, "candidate_id: empty or not a valid id");
        r = PIPELINE_INVALID;
        goto out;
    }
    switch (ev->event_case) {
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED:
        r = set_stage(pg, id, "applied", true, errstr, errlen);
        break;
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_ENTERED:
        if ((stage = stage_name(ev->stage_entered->stage)) == NULL) {
            snprintf(errstr, errlen, "stage_entered.stage: not a funnel stage (%d)", (int)ev->stage_entered->stage);
            r = PIPELINE_INVALID;
            break;
        }
        r = set_stage(pg, id, stage, false, errstr, errlen);
        break;
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_APPROVED:
        r = set_stage(pg, id, "approved", false, errstr, errlen);
        break;
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_REJECTED:
        r = set_stage(pg, id, "rejected", false, errstr, errlen);
        break;
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_SCREENING_ASSIGNED: {
        const Annot__V1__ScreeningAssigned *a = ev->screening_assigned;
        if (a->screening_id[0] == '\0' || a->test_version[0] == '\0' || a->n_question_ids == 0) {
            snprintf(errstr, errlen, "screening_assigned: screening_id, test_version and question_ids are required");
            r = PIPELINE_INVALID;
            break;
        }
        char *questions = pg_text_array((const char *const *)a->question_ids, a->n_question_ids), due[24];
        snprintf(due, sizeof(due), "%lld", (long long)a->due_at_ms);
        const char *p[5] = {id, a->screening_id, a->test_version, questions, due};
        r = command(pg,
                    "INSERT INTO candidates (candidate_id, stage, screening_id, screening_version, "
                    "screening_questions, screening_due_ms) VALUES ($1, 'screening', $2, $3, $4::text[], $5) "
                    "ON CONFLICT (candidate_id) DO UPDATE SET screening_id = $2, screening_version = $3, "
                    "screening_questions = $4::text[], screening_due_ms = $5, updated_at = now()",
                    5, p, errstr, errlen);
        free(questions);
        break;
    }
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_TRAINING_ASSIGNED: {
        const Annot__V1__TrainingAssigned *a = ev->training_assigned;
        if (a->guideline_version[0] == '\0') {
            snprintf(errstr, errlen, "training_assigned.guideline_version: required");
            r = PIPELINE_INVALID;
            break;
        }
        char *samples = pg_text_array((const char *const *)a->sample_ids, a->n_sample_ids);
        const char *p[3] = {id, a->guideline_version, samples};
        r = command(pg,
                    "INSERT INTO candidates (candidate_id, stage, training_version, training_samples) "
                    "VALUES ($1, 'training', $2, $3::text[]) ON CONFLICT (candidate_id) DO UPDATE SET "
                    "training_version = $2, training_samples = $3::text[], training_completed_at = NULL, "
                    "updated_at = now()",
                    3, p, errstr, errlen);
        free(samples);
        break;
    }
    default:
        /* The rest (our own answers and acknowledgements, scores, exam
         * cases, decisions) are the funnel's business. */
        break;
    }
out:
    annot__v1__candidate_event__free_unpacked(ev, NULL);
    return r;
}

static const char *status_name(Annot__V1__AnnotatorStatus s) {
    switch (s) {
    case ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_ACTIVE: return "active";
    case ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_PROBATION: return "probation";
    case ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_SUSPENDED: return "suspended";
    default: return NULL;
    }
}

pipeline_result_t people_apply_annotator(pg_t *pg, const rd_kafka_message_t *rkm, char *errstr, size_t errlen) {
    Annot__V1__AnnotatorStatusEvent *ev =
        (Annot__V1__AnnotatorStatusEvent *)event_unpack(&annot__v1__annotator_status_event__descriptor, rkm->payload, rkm->len, errstr, errlen);
    if (ev == NULL) return PIPELINE_INVALID;
    pipeline_result_t r = PIPELINE_INVALID;
    const char *status = status_name(ev->status);
    if (!lease_policy_id_valid(ev->annotator_id)) {
        snprintf(errstr, errlen, "annotator_id: empty or not a valid id");
        goto out;
    }
    if (status == NULL) {
        snprintf(errstr, errlen, "status: not an annotator status (%d)", (int)ev->status);
        goto out;
    }
    char quality[32], count[16];
    snprintf(quality, sizeof(quality), "%.17g", ev->rolling_quality);
    snprintf(count, sizeof(count), "%u", ev->window_count);
    /* No validated work yet: no quality to show. */
    const char *q = ev->window_count > 0 ? quality : NULL;
    long n;
    if (ev->role == ANNOT__V1__ROLE__ROLE_ANNOTATOR) {
        /* A promotion: from now on the dispatcher leases production work
         * by this locale and these skills. */
        char *skills = pg_text_array((const char *const *)ev->skills, ev->n_skills);
        const char *p[6] = {ev->annotator_id, status, q, count, ev->locale, skills};
        n = pg_command(pg,
                       "UPDATE users SET status = $2, rolling_quality = $3, validated_count = $4, "
                       "role = 'annotator', locale = $5, skills = $6::text[] WHERE user_id = $1",
                       6, p, errstr, errlen);
        free(skills);
    } else {
        const char *p[4] = {ev->annotator_id, status, q, count};
        n = pg_command(pg,
                       "UPDATE users SET status = $2, rolling_quality = $3, validated_count = $4 WHERE user_id = $1",
                       4, p, errstr, errlen);
    }
    if (n < 0) {
        r = PIPELINE_RETRY;
    } else if (n == 0) {
        snprintf(errstr, errlen, "annotator_id: no such user (%s)", ev->annotator_id);
    } else {
        r = PIPELINE_APPLIED;
    }
out:
    annot__v1__annotator_status_event__free_unpacked(ev, NULL);
    return r;
}

int people_candidate_stage(pg_t *pg, const char *candidate_id, char *buf, size_t len) {
    char err[256];
    const char *p[1] = {candidate_id};
    PGresult *res =
        pg_query(pg, PGRES_TUPLES_OK, "SELECT stage FROM candidates WHERE candidate_id = $1", 1, p, err, sizeof(err));
    if (res == NULL) return -1;
    snprintf(buf, len, "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return 0;
}

/* ---- over HTTP ------------------------------------------------------------- */

/* What a candidate request starts with: the role, a database connection and
 * the candidate's row.  NULL after answering when one is missing. */
typedef struct cand_row {
    PGresult *res;
    const char *stage, *screening_id, *screening_version, *training_version;
    json_t *questions; /* the assigned question ids, or NULL */
    long long due_ms;
    bool screening_submitted, training_completed;
} cand_row_t;

static pg_t *candidate_begin(people_t *p, const user_t *user, cand_row_t *row, http_response_t *resp) {
    memset(row, 0, sizeof(*row));
    if (strcmp(user->role, "candidate") != 0) {
        http_response_error(resp, 403, "forbidden", "only candidates take the screening test and training");
        return NULL;
    }
    pg_t *pg = pg_pool_get(p->pool, 5000);
    char err[512];
    if (pg == NULL || pg_ensure(pg, err, sizeof(err)) != 0) {
        pg_pool_put(p->pool, pg);
        http_response_error(resp, 503, "unavailable", "try again shortly");
        return NULL;
    }
    const char *params[1] = {user->user_id};
    row->res = pg_query(pg, PGRES_TUPLES_OK,
                        "SELECT c.stage, c.screening_id, c.screening_version, array_to_json(c.screening_questions), "
                        "c.screening_due_ms, a.screening_id IS NOT NULL, c.training_version, "
                        "c.training_completed_at IS NOT NULL FROM candidates c LEFT JOIN screening_answers a ON "
                        "a.screening_id = c.screening_id WHERE c.candidate_id = $1",
                        1, params, err, sizeof(err));
    if (row->res == NULL) {
        log_warn("candidate lookup: %s", err);
        pg_pool_put(p->pool, pg);
        http_response_error(resp, 503, "unavailable", "try again shortly");
        return NULL;
    }
    if (PQntuples(row->res) == 1) {
        PGresult *r = row->res;
        row->stage = PQgetvalue(r, 0, 0);
        row->screening_id = PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1);
        row->screening_version = PQgetvalue(r, 0, 2);
        row->questions = PQgetisnull(r, 0, 3) ? NULL : json_loads(PQgetvalue(r, 0, 3), 0, NULL);
        row->due_ms = atoll(PQgetvalue(r, 0, 4));
        row->screening_submitted = strcmp(PQgetvalue(r, 0, 5), "t") == 0;
        row->training_version = PQgetisnull(r, 0, 6) ? NULL : PQgetvalue(r, 0, 6);
        row->training_completed = strcmp(PQgetvalue(r, 0, 7), "t") == 0;
    }
    return pg;
}

static void candidate_end(people_t *p, pg_t *pg, cand_row_t *row) {
    json_decref(row->questions);
    PQclear(row->res);
    pg_pool_put(p->pool, pg);
}

/* The assigned question ids as C strings (pointing into row->questions). */
static size_t question_ids(const cand_row_t *row, const char **ids, size_t max) {
    size_t n = 0, i;
    json_t *q;
    json_array_foreach(row->questions, i, q) {
        if (n < max && json_is_string(q)) ids[n++] = json_string_value(q);
    }
    return n;
}

#define QUESTIONS_MAX 256

void people_screening_get(people_t *p, const user_t *user, http_response_t *resp) {
    cand_row_t row;
    pg_t *pg = candidate_begin(p, user, &row, resp);
    if (pg == NULL) return;
    const char *ids[QUESTIONS_MAX];
    size_t n = question_ids(&row, ids, QUESTIONS_MAX);
    json_t *questions;
    if (row.screening_id == NULL || n == 0) {
        http_response_error(resp, 409, "no_screening", "no screening test is assigned to you (stage: %s)",
                            row.stage ? row.stage : "unknown");
    } else if (strcmp(row.screening_version, p->bank->version) != 0 ||
               (questions = screening_public_json(p->bank, ids, n)) == NULL) {
        log_error("screening %s: test version %s is not the loaded bank (%s) or names unknown questions",
                  row.screening_id, row.screening_version, p->bank->version);
        http_response_error(resp, 503, "unavailable", "the screening test %s is not available here",
                            row.screening_version);
    } else {
        json_t *out = json_pack("{s:s, s:s, s:I, s:b, s:o}", "screening_id", row.screening_id, "test_version",
                                row.screening_version, "due_at_ms", (json_int_t)row.due_ms, "submitted",
                                row.screening_submitted, "questions", questions);
        http_response_json(resp, 200, out);
    }
    candidate_end(p, pg, &row);
}

/* Records what the candidate sent and its CandidateEvent in one
 * transaction.  sql must insert or update exactly one row, or none when it
 * was already done (then 409 with done_code). */
static void record(people_t *p, pg_t *pg, const user_t *user, const char *sql, int nparams, const char *const *params,
                   Annot__V1__CandidateEvent *ev, const char *done_code, const char *done_msg, json_t *answer,
                   http_response_t *resp) {
    char err[512];
    if (pg_begin(pg, err, sizeof(err)) != 0) goto fail;
    long n = pg_command(pg, sql, nparams, params, err, sizeof(err));
    if (n < 0) goto fail;
    if (n == 0) {
        pg_rollback(pg);
        http_response_error(resp, 409, done_code, "%s", done_msg);
        json_decref(answer);
        return;
    }
    size_t len = annot__v1__candidate_event__get_packed_size(ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) abort();
    annot__v1__candidate_event__pack(ev, buf);
    int rc = outbox_add(pg, p->candidates_topic, user->user_id, strlen(user->user_id), buf, len, err, sizeof(err));
    free(buf);
    if (rc != 0 || pg_commit(pg, err, sizeof(err)) != 0) goto fail;
    http_response_json(resp, 202, answer);
    return;
fail:
    pg_rollback(pg);
    log_warn("candidate answer not recorded: %s", err);
    http_response_error(resp, 503, "unavailable", "try again shortly");
    json_decref(answer);
}

void people_screening_post(people_t *p, const user_t *user, const http_request_t *req, http_response_t *resp) {
    json_t *body = http_request_json(req, resp);
    if (body == NULL) return;
    cand_row_t row;
    pg_t *pg = NULL;
    screening_answer_t *answers = NULL;
    Annot__V1__ScreeningAnswer *pa = NULL, **pap = NULL;
    const char *screening_id = NULL;
    size_t n = 0;
    char perr[512];
    if (screening_body_parse(body, &screening_id, &answers, &n, perr, sizeof(perr)) != 0) {
        http_response_error(resp, 400, "invalid_field", "%s", perr);
        goto out;
    }
    pa = calloc(n ? n : 1, sizeof(*pa));
    pap = calloc(n ? n : 1, sizeof(*pap));
    if (pa == NULL || pap == NULL) abort();
    if ((pg = candidate_begin(p, user, &row, resp)) == NULL) goto out;
    const char *ids[QUESTIONS_MAX];
    size_t nids = question_ids(&row, ids, QUESTIONS_MAX);
    char err[512];
    int64_t now = event_now_ms();
    if (row.screening_id == NULL || nids == 0) {
        http_response_error(resp, 409, "no_screening", "no screening test is assigned to you (stage: %s)",
                            row.stage ? row.stage : "unknown");
    } else if (strcmp(row.screening_id, screening_id) != 0) {
        http_response_error(resp, 400, "invalid_field", "screening_id: not your current screening test (%s)",
                            row.screening_id);
    } else if (row.screening_submitted) {
        http_response_error(resp, 409, "already_submitted", "this screening test was already answered");
    } else if (row.due_ms > 0 && now > row.due_ms) {
        http_response_error(resp, 409, "screening_expired", "the answers were due at %lld", row.due_ms);
    } else if (screening_answers_check(p->bank, ids, nids, answers, n, err, sizeof(err)) != 0) {
        http_response_error(resp, 400, "invalid_field", "%s", err);
    } else {
        for (size_t i = 0; i < n; i++) {
            annot__v1__screening_answer__init(&pa[i]);
            pa[i].question_id = (char *)answers[i].question_id;
            pa[i].answer = (char *)answers[i].answer;
            pap[i] = &pa[i];
        }
        char event_id[EVENT_ID_LEN];
        event_id_derive(event_id, screening_id, "screening-submitted");
        Annot__V1__EventHeader hdr;
        event_header_fill(&hdr, event_id, p->source, NULL, NULL);
        hdr.occurred_at_ms = now;
        Annot__V1__ScreeningSubmitted ss = ANNOT__V1__SCREENING_SUBMITTED__INIT;
        ss.screening_id = (char *)screening_id;
        ss.n_answers = n;
        ss.answers = pap;
        ss.submitted_at_ms = now;
        Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
        ev.header = &hdr;
        ev.candidate_id = (char *)user->user_id;
        ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_SCREENING_SUBMITTED;
        ev.screening_submitted = &ss;
        char *answers_text = json_dumps(json_object_get(body, "answers"), JSON_COMPACT);
        const char *params[3] = {screening_id, user->user_id, answers_text};
        record(p, pg, user,
               "INSERT INTO screening_answers (screening_id, candidate_id, answers) VALUES ($1, $2, $3) "
               "ON CONFLICT (screening_id) DO NOTHING",
               3, params, &ev, "already_submitted", "this screening test was already answered",
               json_pack("{s:s, s:s}", "screening_id", screening_id, "status", "submitted"), resp);
        free(answers_text);
    }
    candidate_end(p, pg, &row);
out:
    free(answers);
    free(pa);
    free(pap);
    json_decref(body);
}

void people_training_get(people_t *p, const user_t *user, http_response_t *resp) {
    cand_row_t row;
    pg_t *pg = candidate_begin(p, user, &row, resp);
    if (pg == NULL) return;
    if (row.training_version == NULL) {
        http_response_error(resp, 409, "no_training", "no training is assigned to you (stage: %s)",
                            row.stage ? row.stage : "unknown");
    } else if (strcmp(row.training_version, p->training->guideline_version) != 0) {
        log_error("training for guideline %s assigned, but the material loaded is for %s", row.training_version,
                  p->training->guideline_version);
        http_response_error(resp, 503, "unavailable", "the training for guideline %s is not available here",
                            row.training_version);
    } else {
        json_t *out = json_deep_copy(p->training->root);
        json_object_set_new(out, "completed", json_boolean(row.training_completed));
        http_response_json(resp, 200, out);
    }
    candidate_end(p, pg, &row);
}

void people_training_complete(people_t *p, const user_t *user, const http_request_t *req, http_response_t *resp) {
    json_t *body = http_request_json(req, resp);
    if (body == NULL) return;
    const char *key, *version = NULL;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "guideline_version") == 0 && json_is_string(v)) {
            version = json_string_value(v);
        } else {
            char name[UTF8_QUOTE_MAX + 1];
            http_response_error(resp, 400, "invalid_field", "%s: %s", utf8_quote(name, sizeof(name), key),
                                strcmp(key, "guideline_version") == 0 ? "expected a string" : "unknown field");
            json_decref(body);
            return;
        }
    }
    if (version == NULL) {
        http_response_error(resp, 400, "invalid_field", "guideline_version: required");
        json_decref(body);
        return;
    }
    cand_row_t row;
    pg_t *pg = candidate_begin(p, user, &row, resp);
    if (pg != NULL) {
        if (row.training_version == NULL) {
            http_response_error(resp, 409, "no_training", "no training is assigned to you (stage: %s)",
                                row.stage ? row.stage : "unknown");
        } else if (strcmp(version, row.training_version) != 0) {
            http_response_error(resp, 400, "invalid_field", "guideline_version: your training is for %s",
                                row.training_version);
        } else if (row.training_completed) {
            http_response_error(resp, 409, "already_completed", "this training was already acknowledged");
        } else {
            int64_t now = event_now_ms();
            /* The screening id names this application: a candidate who
             * re-applies acknowledges the same version again, and that
             * acknowledgement must not be taken for a duplicate. */
            char cause[320], event_id[EVENT_ID_LEN];
            snprintf(cause, sizeof(cause), "%s/%s/%s", user->user_id, row.screening_id ? row.screening_id : "",
                     version);
            event_id_derive(event_id, cause, "training-completed");
            Annot__V1__EventHeader hdr;
            event_header_fill(&hdr, event_id, p->source, NULL, version);
            hdr.occurred_at_ms = now;
            Annot__V1__TrainingCompleted tc = ANNOT__V1__TRAINING_COMPLETED__INIT;
            tc.guideline_version_acknowledged = (char *)version;
            tc.completed_at_ms = now;
            Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
            ev.header = &hdr;
            ev.candidate_id = (char *)user->user_id;
            ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_TRAINING_COMPLETED;
            ev.training_completed = &tc;
            const char *params[2] = {user->user_id, version};
            record(p, pg, user,
                   "UPDATE candidates SET training_completed_at = now(), updated_at = now() WHERE candidate_id = $1 "
                   "AND training_version = $2 AND training_completed_at IS NULL",
                   2, params, &ev, "already_completed", "this training was already acknowledged",
                   json_pack("{s:s, s:s}", "guideline_version", version, "status", "completed"), resp);
        }
        candidate_end(p, pg, &row);
    }
    json_decref(body);
}
