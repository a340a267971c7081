/* work: see work.h. */
#include "work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "annot/v1/candidate.pb-c.h"
#include "annot/v1/submission.pb-c.h"
#include "annot/v1/validation.pb-c.h"
#include "event.h"
#include "fault.h"
#include "log.h"
#include "outbox.h"
#include "task_codec.h"
#include "utf8.h"

#define WAIT_S_MAX 30

void work_init(work_t *w, const char *redis_url, const char *ns, const lease_policy_t *policy, wake_t *wake,
               pg_pool_t *pool, kafka_producer_t *producer, const work_outputs_t *outputs, const char *source,
               metrics_registry_t *metrics) {
    memset(w, 0, sizeof(*w));
    w->redis_url = redis_url;
    w->ns = ns;
    w->policy = *policy;
    w->wake = wake;
    w->pool = pool;
    w->producer = producer;
    w->submissions_topic = outputs->submissions_topic;
    w->results_topic = outputs->results_topic;
    w->feedback_topic = outputs->feedback_topic;
    w->candidates_topic = outputs->candidates_topic;
    w->taxonomy = outputs->taxonomy;
    for (int s = CHECK_SEVERITY_MINOR; s <= CHECK_SEVERITY_CRITICAL; s++)
        w->weights[s] = check_rules_weight(outputs->rules, (check_severity_t)s);
    w->source = source;
    pthread_mutex_init(&w->lock, NULL);
    w->m_granted = metrics_counter(metrics, "annot_leases_total", "Lease outcomes", "outcome=\"granted\"");
    w->m_empty = metrics_counter(metrics, "annot_leases_total", "Lease outcomes", "outcome=\"nothing_to_do\"");
    w->m_lost = metrics_counter(metrics, "annot_leases_total", "Lease outcomes", "outcome=\"lost\"");
    w->m_submitted = metrics_counter(metrics, "annot_leases_total", "Lease outcomes", "outcome=\"submitted\"");
    w->m_released = metrics_counter(metrics, "annot_leases_total", "Lease outcomes", "outcome=\"released\"");
}

void work_destroy(work_t *w) {
    for (size_t i = 0; i < w->nconns; i++) {
        lease_store_destroy(w->conns[i].leases);
        redis_close(w->conns[i].redis);
    }
    free(w->conns);
    pthread_mutex_destroy(&w->lock);
}

/* A Redis connection and lease store for this request (libpq and hiredis
 * connections are one thread's at a time). */
static int conn_get(work_t *w, work_conn_t *c, char *errstr, size_t errlen) {
    pthread_mutex_lock(&w->lock);
    int have = w->nconns > 0;
    if (have) *c = w->conns[--w->nconns];
    pthread_mutex_unlock(&w->lock);
    if (have) return 0;
    if ((c->redis = redis_connect(w->redis_url, errstr, errlen)) == NULL) return -1;
    if ((c->leases = lease_store_new(c->redis, w->ns, errstr, errlen)) == NULL) {
        redis_close(c->redis);
        return -1;
    }
    return 0;
}

static void conn_put(work_t *w, work_conn_t *c) {
    pthread_mutex_lock(&w->lock);
    if (w->nconns == w->capconns) {
        w->capconns = w->capconns ? w->capconns * 2 : 16;
        w->conns = realloc(w->conns, w->capconns * sizeof(*w->conns));
        if (w->conns == NULL) abort();
    }
    w->conns[w->nconns++] = *c;
    pthread_mutex_unlock(&w->lock);
}

static void lost(work_t *w, http_response_t *resp, const lease_ack_t *ack) {
    metrics_inc(w->m_lost);
    http_response_error(resp, 409, "lease_lost", "the lease is no longer yours (%s)", lease_lost_name(ack->lost));
}

static void unavailable(http_response_t *resp, const char *err) {
    log_warn("work: %s", err);
    http_response_error(resp, 503, "unavailable", "try again shortly");
}

/* The queue a role leases from; -1 for a role that leases nothing. */
static int role_queue(const char *role, lease_queue_t *q) {
    if (strcmp(role, "annotator") == 0) *q = LEASE_QUEUE_ANNOTATION;
    else if (strcmp(role, "candidate") == 0) *q = LEASE_QUEUE_EXAM;
    else if (strcmp(role, "validator") == 0) *q = LEASE_QUEUE_VALIDATION;
    else return -1;
    return 0;
}

void work_acquire(work_t *w, const user_t *user, const http_request_t *req, http_response_t *resp) {
    json_t *body = http_request_json(req, resp);
    const char *queue_name = NULL;
    json_int_t wait_s = 0;
    lease_queue_t q, mine;
    if (body == NULL) goto out;
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (strcmp(key, "queue") == 0) {
            if (!json_is_string(v) || lease_queue_parse(json_string_value(v), &q) != 0) {
                http_response_error(resp, 400, "invalid_field", "queue: expected \"annotation\", \"exam\" or \"validation\"");
                goto out;
            }
            queue_name = json_string_value(v);
        } else if (strcmp(key, "wait_s") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > WAIT_S_MAX) {
                http_response_error(resp, 400, "invalid_field", "wait_s: expected an integer from 0 to %d", WAIT_S_MAX);
                goto out;
            }
            wait_s = json_integer_value(v);
        } else {
            char name[UTF8_QUOTE_MAX + 1];
            http_response_error(resp, 400, "invalid_field", "%s: unknown field", utf8_quote(name, sizeof(name), key));
            goto out;
        }
    }
    if (queue_name == NULL) {
        http_response_error(resp, 400, "invalid_field", "queue: required");
        goto out;
    }
    if (role_queue(user->role, &mine) != 0 || mine != q) {
        http_response_error(resp, 403, "forbidden", "the role %s does not lease from the %s queue", user->role,
                            queue_name);
        goto out;
    }
    if (strcmp(user->status, "suspended") == 0) {
        http_response_error(resp, 403, "suspended", "this account is suspended");
        goto out;
    }
    lease_pool_name_t pools[LEASE_POOLS_MAX];
    int npools = 0;
    char err[512];
    if (q == LEASE_QUEUE_ANNOTATION &&
        (npools = lease_policy_person_pools(user->locale, user->skills, user->nskills, pools, LEASE_POOLS_MAX, err,
                                            sizeof(err))) < 0) {
        http_response_error(resp, 403, "forbidden", "no work matches this account: %s", err);
        goto out;
    }
    lease_request_t lr = {user->user_id, pools, (size_t)npools, lease_policy_uses_own_queue(q),
                          lease_policy_excludes_author(q), 0, lease_policy_ttl_ms(&w->policy, q),
                          lease_policy_max_held(&w->policy, q)};
    work_conn_t c;
    if (conn_get(w, &c, err, sizeof(err)) != 0) {
        unavailable(resp, err);
        goto out;
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        /* Read the generation before trying: work queued between the try
         * and the wait still wakes us. */
        uint64_t gen = wake_generation(w->wake);
        lease_t lease = {0};
        int rc = lease_acquire(c.leases, q, &lr, &lease, err, sizeof(err));
        if (rc == LEASE_OK) {
            metrics_inc(w->m_granted);
            json_t *task = json_loadb(lease.task_json, lease.task_json_len, 0, NULL);
            http_response_json(resp, 200,
                               json_pack("{s:s, s:I, s:I, s:o}", "lease_id", lease.lease_id, "fencing_token",
                                         (json_int_t)lease.fencing_token, "expires_at_ms",
                                         (json_int_t)lease.expires_at_ms, "task", task ? task : json_object()));
            lease_free(&lease);
            break;
        }
        if (rc == LEASE_LIMIT) {
            http_response_error(resp, 409, "lease_limit", "already holding %d lease(s) of this queue", lr.max_held);
            break;
        }
        if (rc < 0) {
            unavailable(resp, err);
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left_ms = (long)wait_s * 1000 - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left_ms <= 0) {
            metrics_inc(w->m_empty);
            resp->status = 204;
            break;
        }
        wake_wait(w->wake, gen, left_ms < 1000 ? (int)left_ms : 1000);
    }
    conn_put(w, &c);
out:
    json_decref(body);
}

void work_heartbeat(work_t *w, const user_t *user, const char *lease_id, http_response_t *resp) {
    work_conn_t c;
    char err[512];
    if (conn_get(w, &c, err, sizeof(err)) != 0) return unavailable(resp, err);
    lease_ack_t ack;
    int rc = lease_heartbeat(c.leases, lease_id, user->user_id, 0, 0, &ack, err, sizeof(err));
    conn_put(w, &c);
    if (rc == LEASE_OK) http_response_json(resp, 200, json_pack("{s:I}", "expires_at_ms", (json_int_t)ack.expires_at_ms));
    else if (rc == LEASE_LOST) lost(w, resp, &ack);
    else unavailable(resp, err);
}

void work_release(work_t *w, const user_t *user, const char *lease_id, http_response_t *resp) {
    work_conn_t c;
    char err[512];
    if (conn_get(w, &c, err, sizeof(err)) != 0) return unavailable(resp, err);
    lease_ack_t ack;
    /* The release script requeues the task and publishes on the queue's
     * wake channel in the same step, so long polls wake without a second
     * round trip from here. */
    int rc = lease_release(c.leases, lease_id, user->user_id, 0, &ack, err, sizeof(err));
    conn_put(w, &c);
    if (rc == LEASE_OK) {
        metrics_inc(w->m_released);
        http_response_json(resp, 200, json_pack("{s:s}", "task_id", ack.task_id));
    } else if (rc == LEASE_LOST) {
        lost(w, resp, &ack);
    } else {
        unavailable(resp, err);
    }
}

/* The PostgreSQL fence, inside the caller's transaction: the task is
 * finished unless PostgreSQL already holds a submission with an equal or
 * higher token (or the task is not queued).  Returns the task row (the
 * caller PQclear()s it; columns as FINISH_*), or NULL: *lost says whether
 * that is the fence (1) or a failure (0). */
enum { FINISH_PAYLOAD, FINISH_OWNER, FINISH_KIND };
static PGresult *task_finish(pg_t *pg, const char *task_id, uint64_t token, int *lost, char *errstr, size_t errlen) {
    char fence[24];
    snprintf(fence, sizeof(fence), "%llu", (unsigned long long)token);
    const char *params[2] = {task_id, fence};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "UPDATE tasks SET state = 'done', submitted_fence = $2 WHERE task_id = $1 AND "
                             "state = 'queued' AND submitted_fence < $2 RETURNING payload::text, owner_id, kind",
                             2, params, errstr, errlen);
    *lost = res != NULL && PQntuples(res) == 0;
    if (*lost) {
        PQclear(res);
        return NULL;
    }
    return res;
}

static json_t *verdict_errors_json(const verdict_t *v) {
    json_t *a = json_array();
    for (size_t i = 0; i < v->nerrors; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s}", "category", v->errors[i].category, "severity",
                                           check_severity_name(v->errors[i].severity), "section", v->errors[i].section,
                                           "note", v->errors[i].note));
    return a;
}

static json_t *verdict_feedback_json(const verdict_t *v) {
    json_t *a = json_array();
    for (size_t i = 0; i < v->nfeedback; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "section", v->feedback[i].section, "kind",
                                           verdict_feedback_kind_name(v->feedback[i].kind), "text", v->feedback[i].text));
    return a;
}

/* The 202 of a submit, first or replayed: {"submission_id"} (DESIGN.md
 * section 7), for a verdict the submission it is on, and its
 * "validation_id". */
static json_t *submit_answer(const char *validation_id, const char *submission_id, bool replayed) {
    json_t *a = json_pack("{s:s}", "submission_id", submission_id);
    if (validation_id) json_object_set_new(a, "validation_id", json_string(validation_id));
    if (replayed) json_object_set_new(a, "replayed", json_true());
    return a;
}

/* Records a verdict, its ValidationResultEvent and one GuidelineFeedbackEvent
 * per feedback item; 0 with *answer set, 1 when the fence refuses it, -1 on
 * failure.  On 0 the transaction is still open, for the caller to commit
 * once the Redis fence agrees (see work_submit). */
static int validation_record(work_t *w, pg_t *pg, const user_t *user, const char *lease_id, const lease_ack_t *ack,
                             const verdict_t *v, json_t **answer, char *errstr, size_t errlen) {
    char validation_id[EVENT_ID_LEN];
    event_id_derive(validation_id, lease_id, "validation");
    if (pg_ensure(pg, errstr, errlen) != 0 || pg_begin(pg, errstr, errlen) != 0) return -1;
    int lost = 0, rc = -1;
    Annot__V1__ValidationAssignment *a = NULL;
    PGresult *res = task_finish(pg, ack->task_id, ack->fencing_token, &lost, errstr, errlen);
    if (res == NULL) goto fail;
    PQclear(res);
    const char *p1[1] = {ack->task_id};
    res = pg_query_ex(pg, PGRES_TUPLES_OK, "SELECT proto FROM assignments WHERE assignment_id = $1", 1, p1, NULL, NULL,
                      errstr, errlen);
    if (res == NULL) goto fail;
    /* Text result: bytea comes back escaped. */
    size_t plen = 0;
    unsigned char *proto = PQntuples(res) ? PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &plen) : NULL;
    PQclear(res);
    a = proto ? annot__v1__validation_assignment__unpack(NULL, plen, proto) : NULL;
    PQfreemem(proto);
    if (a == NULL) {
        snprintf(errstr, errlen, "assignment %s: not recorded or undecodable", ack->task_id);
        goto fail;
    }
    json_t *errors = verdict_errors_json(v), *feedback = verdict_feedback_json(v);
    char *errors_text = json_dumps(errors, JSON_COMPACT), *feedback_text = json_dumps(feedback, JSON_COMPACT);
    json_decref(errors);
    json_decref(feedback);
    char score[32], fence[24];
    snprintf(score, sizeof(score), "%.6f", v->score);
    snprintf(fence, sizeof(fence), "%llu", (unsigned long long)ack->fencing_token);
    const char *p2[9] = {validation_id, ack->task_id, a->submission_id, user->user_id, v->accept ? "accept" : "reject",
                         score, errors_text ? errors_text : "[]", feedback_text ? feedback_text : "[]", fence};
    long n = pg_command(pg,
                        "INSERT INTO validations (validation_id, assignment_id, submission_id, validator_id, verdict, "
                        "score, errors, feedback, fencing_token) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        9, p2, errstr, errlen);
    free(errors_text);
    free(feedback_text);
    if (n != 1) goto fail;

    const Annot__V1__Task *t = a->task;
    char event_id[EVENT_ID_LEN];
    event_id_derive(event_id, validation_id, "validated");
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, event_id, w->source, "", t ? t->guideline_version : "");
    Annot__V1__ValidationError verr[VERDICT_ITEMS_MAX], *verrp[VERDICT_ITEMS_MAX];
    for (size_t i = 0; i < v->nerrors; i++) {
        annot__v1__validation_error__init(&verr[i]);
        verr[i].category = (char *)v->errors[i].category;
        verr[i].severity = (Annot__V1__Severity)v->errors[i].severity; /* same numbering */
        verr[i].section = (char *)v->errors[i].section;
        verr[i].note = (char *)v->errors[i].note;
        verrp[i] = &verr[i];
    }
    Annot__V1__GuidelineFeedback fb[VERDICT_ITEMS_MAX], *fbp[VERDICT_ITEMS_MAX];
    for (size_t i = 0; i < v->nfeedback; i++) {
        annot__v1__guideline_feedback__init(&fb[i]);
        fb[i].section = (char *)v->feedback[i].section;
        fb[i].kind = (Annot__V1__FeedbackKind)v->feedback[i].kind; /* same numbering */
        fb[i].text = (char *)v->feedback[i].text;
        fbp[i] = &fb[i];
    }
    Annot__V1__ValidationResult r = ANNOT__V1__VALIDATION_RESULT__INIT;
    r.validation_id = validation_id;
    r.assignment_id = a->assignment_id;
    r.submission_id = a->submission_id;
    r.task_id = a->task_id;
    r.validator_id = (char *)user->user_id;
    r.author_id = a->author_id;
    r.author_role = a->author_role;
    r.verdict = v->accept ? ANNOT__V1__VERDICT__VERDICT_ACCEPT : ANNOT__V1__VERDICT__VERDICT_REJECT;
    r.n_errors = v->nerrors;
    r.errors = verrp;
    r.n_feedback = v->nfeedback;
    r.feedback = fbp;
    r.score = v->score;
    r.validated_at_ms = hdr.occurred_at_ms;
    r.lease_id = (char *)lease_id;
    r.fencing_token = ack->fencing_token;
    r.validator_guideline_version = t ? t->guideline_version : "";
    r.task_kind = a->task_kind;
    r.locale = t ? t->locale : "";
    r.n_skills = t ? t->n_skills : 0;
    r.skills = t ? t->skills : NULL;
    r.candidate_id = a->candidate_id;
    r.exam_stage = a->exam_stage;
    r.exam_case_set = t ? t->exam_case_set : "";
    r.golden_expected_verdict = t && t->golden ? t->golden->expected_verdict : ANNOT__V1__VERDICT__VERDICT_UNSPECIFIED;
    r.double_validation = a->double_validation;
    r.pair_id = a->pair_id;
    r.n_check_findings = a->n_check_findings;
    r.check_findings = a->check_findings;
    r.check_score = a->check_score;
    r.submitted_at_ms = a->submitted_at_ms;
    r.task_created_at_ms = t ? t->created_at_ms : 0;
    Annot__V1__ValidationResultEvent ev = ANNOT__V1__VALIDATION_RESULT_EVENT__INIT;
    ev.header = &hdr;
    ev.result = &r;
    size_t len = annot__v1__validation_result_event__get_packed_size(&ev);
    uint8_t *buf = malloc(len);
    if (buf == NULL) abort();
    annot__v1__validation_result_event__pack(&ev, buf);
    int ok = outbox_add(pg, w->results_topic, a->submission_id, strlen(a->submission_id), buf, len, errstr, errlen) == 0;
    free(buf);
    for (size_t i = 0; ok && i < v->nfeedback; i++) {
        char fid[EVENT_ID_LEN], fev_id[EVENT_ID_LEN], purpose[32];
        snprintf(purpose, sizeof(purpose), "feedback/%zu", i);
        event_id_derive(fid, validation_id, purpose);
        event_id_derive(fev_id, fid, "event");
        Annot__V1__EventHeader fh;
        event_header_fill(&fh, fev_id, w->source, event_id, hdr.guideline_version);
        Annot__V1__GuidelineFeedbackEvent fe = ANNOT__V1__GUIDELINE_FEEDBACK_EVENT__INIT;
        fe.header = &fh;
        fe.feedback_id = fid;
        fe.feedback = &fb[i];
        fe.validator_id = (char *)user->user_id;
        fe.submission_id = a->submission_id;
        fe.task_id = a->task_id;
        fe.validation_id = validation_id;
        fe.locale = r.locale;
        fe.task_kind = a->task_kind;
        fe.validator_guideline_version = r.validator_guideline_version;
        fe.created_at_ms = hdr.occurred_at_ms;
        size_t flen = annot__v1__guideline_feedback_event__get_packed_size(&fe);
        uint8_t *fbuf = malloc(flen);
        if (fbuf == NULL) abort();
        annot__v1__guideline_feedback_event__pack(&fe, fbuf);
        ok = outbox_add(pg, w->feedback_topic, a->submission_id, strlen(a->submission_id), fbuf, flen, errstr, errlen) == 0;
        free(fbuf);
    }
    if (!ok) goto fail;
    *answer = submit_answer(validation_id, a->submission_id, false);
    rc = 0;
    goto out;
fail:
    pg_rollback(pg);
    rc = lost ? 1 : -1;
out:
    if (a) annot__v1__validation_assignment__free_unpacked(a, NULL);
    return rc;
}

/* Tells the funnel that a candidate submitted an exam case (its exam time
 * limit counts these), through the outbox of the submission's transaction.
 * The id derives from the submission: a retried submit is the same event. */
static int exam_submitted_add(const work_t *w, pg_t *pg, const Annot__V1__Submission *s, char *errstr,
                              size_t errlen) {
    char id[EVENT_ID_LEN];
    event_id_derive(id, s->submission_id, "exam-case-submitted");
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, w->source, s->submission_id, s->task->guideline_version);
    hdr.occurred_at_ms = s->submitted_at_ms;
    Annot__V1__ExamCaseSubmitted es = ANNOT__V1__EXAM_CASE_SUBMITTED__INIT;
    es.task_id = s->task_id;
    es.submission_id = s->submission_id;
    es.stage = s->exam_stage;
    es.submitted_at_ms = s->submitted_at_ms;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.header = &hdr;
    ev.candidate_id = s->candidate_id;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_EXAM_CASE_SUBMITTED;
    ev.exam_case_submitted = &es;
    size_t len = annot__v1__candidate_event__get_packed_size(&ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) abort();
    annot__v1__candidate_event__pack(&ev, buf);
    int rc = outbox_add(pg, w->candidates_topic, s->candidate_id, strlen(s->candidate_id), buf, len, errstr, errlen);
    free(buf);
    return rc;
}

/* Records the submission and its event; 0, 1 when PostgreSQL holds a newer
 * submission for the task (lease lost), -1 on failure.  As for
 * validation_record: on 0 the transaction is open. */
static int submission_record(work_t *w, pg_t *pg, const user_t *user, const char *lease_id, const lease_ack_t *ack,
                             const char *description, json_t **answer, char *errstr, size_t errlen) {
    char fence[24], submission_id[EVENT_ID_LEN];
    snprintf(fence, sizeof(fence), "%llu", (unsigned long long)ack->fencing_token);
    /* The submission id derives from the lease: a retried submit of the
     * same lease cannot record a second one. */
    event_id_derive(submission_id, lease_id, "submission");
    if (pg_ensure(pg, errstr, errlen) != 0 || pg_begin(pg, errstr, errlen) != 0) return -1;
    int lost = 0;
    PGresult *res = task_finish(pg, ack->task_id, ack->fencing_token, &lost, errstr, errlen);
    if (res == NULL) {
        pg_rollback(pg);
        return lost ? 1 : -1;
    }
    const char *p2[6] = {submission_id, ack->task_id, lease_id, fence, user->user_id, description};
    if (pg_command(pg,
                   "INSERT INTO submissions (submission_id, task_id, lease_id, fencing_token, author_id, description) "
                   "VALUES ($1, $2, $3, $4, $5, $6)",
                   6, p2, errstr, errlen) != 1) {
        PQclear(res);
        goto fail;
    }
    /* The task snapshot the checker needs, from the payload the lease
     * carried. */
    task_proto_t tp;
    json_t *payload = json_loads(PQgetvalue(res, 0, FINISH_PAYLOAD), 0, NULL);
    int bad = payload == NULL || task_proto_from_json(payload, &tp, errstr, errlen) != 0;
    json_decref(payload);
    if (bad) {
        if (payload != NULL) task_proto_clear(&tp);
        PQclear(res);
        goto fail;
    }
    Annot__V1__Task *task = &tp.task;
    char event_id[EVENT_ID_LEN];
    event_id_derive(event_id, submission_id, "submitted");
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, event_id, w->source, "", task->guideline_version);
    Annot__V1__Submission s = ANNOT__V1__SUBMISSION__INIT;
    s.submission_id = submission_id;
    s.task_id = (char *)ack->task_id;
    s.lease_id = (char *)lease_id;
    s.fencing_token = ack->fencing_token;
    s.author_id = (char *)user->user_id;
    s.author_role = strcmp(user->role, "candidate") == 0 ? ANNOT__V1__ROLE__ROLE_CANDIDATE : ANNOT__V1__ROLE__ROLE_ANNOTATOR;
    s.task_kind = task->kind;
    s.description = (char *)description;
    s.submitted_at_ms = hdr.occurred_at_ms;
    s.attempt = ack->attempt;
    s.task = task;
    s.candidate_id = PQgetvalue(res, 0, FINISH_OWNER);
    /* The exam stage travels with the submission (checker, assigner, and
     * back on the verdict), so the funnel can tell an exam case's verdict
     * from production work's. */
    if (task->kind == ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE1)
        s.exam_stage = ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_EXAM1;
    else if (task->kind == ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE2)
        s.exam_stage = ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_EXAM2;
    Annot__V1__SubmissionEvent ev = ANNOT__V1__SUBMISSION_EVENT__INIT;
    ev.header = &hdr;
    ev.submission = &s;
    size_t len = annot__v1__submission_event__get_packed_size(&ev);
    uint8_t *buf = malloc(len);
    if (buf == NULL) abort();
    annot__v1__submission_event__pack(&ev, buf);
    int rc = outbox_add(pg, w->submissions_topic, submission_id, strlen(submission_id), buf, len, errstr, errlen);
    free(buf);
    if (rc == 0 && s.exam_stage != ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_UNSPECIFIED && s.candidate_id[0])
        rc = exam_submitted_add(w, pg, &s, errstr, errlen);
    task_proto_clear(&tp);
    if (rc != 0) {
        PQclear(res);
        goto fail;
    }
    PQclear(res);
    *answer = submit_answer(NULL, submission_id, false);
    return 0;
fail:
    pg_rollback(pg);
    return -1;
}

/* A submit retried because its answer never arrived (the connection broke,
 * the dispatcher restarted) finds its lease gone: this very submit ended
 * it.  When the lease's submission (or verdict) is recorded as this
 * person's, the retry gets the first answer again.  1 when it did, 0 when
 * there is no such record, -1 on failure. */
static int answer_replayed(work_t *w, const user_t *user, const char *lease_id, lease_queue_t q,
                           http_response_t *resp) {
    bool validation = q == LEASE_QUEUE_VALIDATION;
    char id[EVENT_ID_LEN], err[512];
    event_id_derive(id, lease_id, validation ? "validation" : "submission");
    pg_t *pg = pg_pool_get(w->pool, 5000);
    if (pg == NULL) return -1;
    const char *params[2] = {id, user->user_id};
    PGresult *res = pg_ensure(pg, err, sizeof(err)) != 0
                        ? NULL
                        : pg_query(pg, PGRES_TUPLES_OK,
                                   validation
                                       ? "SELECT submission_id FROM validations WHERE validation_id = $1 AND "
                                         "validator_id = $2"
                                       : "SELECT submission_id FROM submissions WHERE submission_id = $1 AND author_id = $2",
                                   2, params, err, sizeof(err));
    int n = res ? PQntuples(res) : -1;
    if (n > 0)
        http_response_json(resp, 202, submit_answer(validation ? id : NULL, PQgetvalue(res, 0, 0), true));
    PQclear(res);
    pg_pool_put(w->pool, pg);
    return n <= 0 ? n : 1;
}

void work_submit(work_t *w, const user_t *user, const char *lease_id, const http_request_t *req,
                 http_response_t *resp) {
    json_t *body = http_request_json(req, resp);
    char err[512];
    const char *description = NULL;
    verdict_t verdict;
    lease_queue_t q;
    lease_ack_t ack = {0};
    work_conn_t c;
    if (body == NULL) goto out;
    if (lease_policy_lease_id_queue(lease_id, &q) != 0) {
        ack.lost = LEASE_LOST_UNKNOWN;
        lost(w, resp, &ack);
        goto out;
    }
    /* What is submitted depends on the queue: a verdict for validation
     * work, a description otherwise. */
    int bad = q == LEASE_QUEUE_VALIDATION ? verdict_parse(body, w->taxonomy, w->weights, &verdict, err, sizeof(err))
                                          : verdict_description_parse(body, &description, err, sizeof(err));
    const json_t *fv = json_object_get(body, "fencing_token");
    if (bad == 0 && fv != NULL && (!json_is_integer(fv) || json_integer_value(fv) <= 0)) {
        snprintf(err, sizeof(err), "fencing_token: expected a positive integer");
        bad = -1;
    }
    if (bad != 0) {
        http_response_error(resp, 400, "invalid_field", "%s", err);
        goto out;
    }
    if (strcmp(user->status, "suspended") == 0) {
        http_response_error(resp, 403, "suspended", "this account is suspended");
        goto out;
    }
    if (conn_get(w, &c, err, sizeof(err)) != 0) {
        unavailable(resp, err);
        goto out;
    }
    /* Both fences, PostgreSQL's inside Redis's: the submission is recorded
     * in an open transaction, the Redis script then ends the lease if it is
     * still live with this token, and only then is the transaction
     * committed.  So PostgreSQL never holds a submission Redis refused, and
     * a task Redis marked done is either recorded or queued again. */
    int rc = lease_peek(c.leases, lease_id, user->user_id, &ack, err, sizeof(err));
    if (rc == LEASE_OK && fv != NULL && (uint64_t)json_integer_value(fv) != ack.fencing_token) {
        ack.lost = LEASE_LOST_FENCE;
        rc = LEASE_LOST;
    }
    if (rc != LEASE_OK) {
        conn_put(w, &c);
        int replayed = rc == LEASE_LOST ? answer_replayed(w, user, lease_id, q, resp) : -1;
        if (replayed == 0) lost(w, resp, &ack);
        else if (replayed < 0) unavailable(resp, rc == LEASE_LOST ? "looking for a recorded submission failed" : err);
        goto out;
    }
    pg_t *pg = pg_pool_get(w->pool, 5000);
    json_t *answer = NULL;
    int r = pg == NULL ? -1
            : q == LEASE_QUEUE_VALIDATION
                ? validation_record(w, pg, user, lease_id, &ack, &verdict, &answer, err, sizeof(err))
                : submission_record(w, pg, user, lease_id, &ack, description, &answer, err, sizeof(err));
    if (r == 0) {
        lease_ack_t done;
        rc = lease_submit(c.leases, lease_id, user->user_id, ack.fencing_token, 0, &done, err, sizeof(err));
        fault_point("dispatcher.submit.before_commit");
        if (rc == LEASE_OK && pg_commit(pg, err, sizeof(err)) == 0) {
            metrics_inc(w->m_submitted);
            /* Recorded: nothing for work_reconcile to look at (should this
             * fail, it finds the task done in PostgreSQL and agrees). */
            if (lease_confirm(c.leases, q, ack.task_id, err, sizeof(err)) < 0) log_warn("confirm: %s", err);
            /* Durable now (a committed outbox row); publish it right away,
             * the main loop's relay picks up what this one could not. */
            size_t published;
            char rerr[256];
            if (outbox_relay(pg, w->producer, &published, rerr, sizeof(rerr)) != 0) log_warn("outbox relay: %s", rerr);
            http_response_json(resp, 202, answer);
            answer = NULL;
        } else if (rc == LEASE_LOST) {
            pg_rollback(pg);
            lost(w, resp, &done);
        } else {
            /* Redis may have marked the task done (the script ran, then the
             * commit failed; or the connection broke after the script):
             * PostgreSQL still has it queued, and work_reconcile queues it
             * again. */
            pg_rollback(pg);
            unavailable(resp, err);
        }
    } else if (r == 1) {
        metrics_inc(w->m_lost);
        http_response_error(resp, 409, "lease_lost", "a submission with a newer fencing token was recorded");
    } else {
        unavailable(resp, pg ? err : "no database connection free");
    }
    json_decref(answer);
    conn_put(w, &c);
    pg_pool_put(w->pool, pg);
out:
    json_decref(body);
}

size_t work_reap(work_t *w) {
    work_conn_t c;
    char err[512];
    if (conn_get(w, &c, err, sizeof(err)) != 0) return 0;
    size_t total = 0;
    for (int q = LEASE_QUEUE_FIRST; q <= LEASE_QUEUE_LAST; q++) {
        lease_expired_t out[64];
        size_t n = 0;
        do {
            if (lease_reap(c.leases, (lease_queue_t)q, 0, lease_policy_max_attempts(&w->policy, (lease_queue_t)q), out, 64,
                           &n, err, sizeof(err)) < 0) {
                log_warn("reaper: %s", err);
                break;
            }
            for (size_t i = 0; i < n; i++)
                log_write_fields(LOG_LEVEL_INFO,
                                 json_pack("{s:s, s:s, s:s, s:i, s:b}", "lease_id", out[i].lease_id, "task_id",
                                           out[i].task_id, "holder_id", out[i].holder_id, "attempts",
                                           (int)out[i].expired_attempts, "parked", out[i].parked),
                                 "lease expired");
            total += n;
        } while (n == 64);
    }
    if (total > 0) wake_notify(w->wake);
    conn_put(w, &c);
    return total;
}
