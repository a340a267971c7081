/* standing_flow: annotators' standing in the database.  Every verdict on
 * production work is kept (the first per submission); the last K decide
 * the status (standing.h), and every change is an AnnotatorStatusEvent in
 * the same transaction.  A change's event id derives from the annotator and
 * the change's number, so a replay names the same changes the same way.
 * Promotions (from the funnel) start the row; annotators created otherwise
 * get a row, active, with their first verdict. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot/v1/annotator.pb-c.h"
#include "event.h"
#include "funnel.h"
#include "log.h"

typedef struct annotator {
    char id[128], locale[64], candidate_id[128];
    json_t *skills;
    standing_status_t status;
    int64_t window_start_ms;
    unsigned changes;
} annotator_t;

/* A line of the annotator's history; event_id "" for a refusal. */
static int history_add(flow_t *fl, const char *annotator_id, const char *kind, standing_status_t status,
                       standing_status_t prev, const char *reason, double quality, unsigned count,
                       const char *event_id) {
    char q[32], n[16], at[24];
    snprintf(q, sizeof(q), "%.17g", quality);
    snprintf(n, sizeof(n), "%u", count);
    snprintf(at, sizeof(at), "%lld", (long long)fl->now_ms);
    const char *st = standing_status_name(status), *pr = standing_status_name(prev);
    const char *p[10] = {annotator_id, kind, st ? st : "", pr ? pr : "", reason, q, n, event_id, fl->cause_id, at};
    return pg_command(fl->pg,
                      "INSERT INTO annotator_history (annotator_id, kind, status, previous, reason, rolling_quality, "
                      "window_count, event_id, cause_id, occurred_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
                      "$10)",
                      10, p, fl->errstr, fl->errlen) < 0
               ? -1
               : 0;
}

/* Emits the change of a to status (a->changes already counts it). */
static int status_emit(flow_t *fl, const annotator_t *a, standing_status_t prev, double quality, unsigned count,
                       const char *reason, bool promotion) {
    char cause[160], id[EVENT_ID_LEN];
    snprintf(cause, sizeof(cause), "%s/%u", a->id, a->changes);
    event_id_derive(id, cause, "annotator-status");
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, fl->f->svc->name, fl->cause_id, fl->f->training.guideline_version);
    hdr.occurred_at_ms = fl->now_ms;
    const char *skills[64];
    size_t ns = 0, i;
    json_t *v;
    json_array_foreach(a->skills, i, v) {
        if (ns < 64 && json_is_string(v)) skills[ns++] = json_string_value(v);
    }
    Annot__V1__AnnotatorStatusEvent ev = ANNOT__V1__ANNOTATOR_STATUS_EVENT__INIT;
    ev.header = &hdr;
    ev.annotator_id = (char *)a->id;
    ev.status = (Annot__V1__AnnotatorStatus)a->status;
    ev.previous_status = (Annot__V1__AnnotatorStatus)prev;
    ev.rolling_quality = quality;
    ev.window_size = fl->f->standing.window;
    ev.window_count = count;
    ev.reason = (char *)reason;
    ev.changed_at_ms = fl->now_ms;
    ev.probation_threshold = fl->f->standing.probation;
    ev.suspension_threshold = fl->f->standing.suspension;
    /* Role, locale and skills only when the funnel knows them (it promoted
     * the annotator): the dispatcher applies them as given, and an empty
     * locale would take away the annotator's work. */
    if (promotion || a->candidate_id[0]) {
        ev.role = ANNOT__V1__ROLE__ROLE_ANNOTATOR;
        ev.locale = (char *)a->locale;
        ev.n_skills = ns;
        ev.skills = (char **)skills;
        ev.candidate_id = (char *)a->candidate_id;
    }
    size_t len = annot__v1__annotator_status_event__get_packed_size(&ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) abort();
    annot__v1__annotator_status_event__pack(&ev, buf);
    int rc = flow_emit(fl, "annotators", a->id, buf, len);
    free(buf);
    if (rc == 0) rc = history_add(fl, a->id, "status", a->status, prev, reason, quality, count, id);
    if (rc == 0) {
        metrics_inc(fl->f->m_status[a->status]);
        log_info("annotator %s: %s -> %s (%s)", a->id, prev ? standing_status_name(prev) : "new",
                 standing_status_name(a->status), reason);
    }
    return rc;
}

static int annotator_save(flow_t *fl, const annotator_t *a, int64_t suspended_at_ms) {
    char start[24], susp[24], changes[16], now[24];
    snprintf(start, sizeof(start), "%lld", (long long)a->window_start_ms);
    snprintf(susp, sizeof(susp), "%lld", (long long)suspended_at_ms);
    snprintf(changes, sizeof(changes), "%u", a->changes);
    snprintf(now, sizeof(now), "%lld", (long long)fl->now_ms);
    const char *p[6] = {a->id, standing_status_name(a->status), start, susp, changes, now};
    return pg_command(fl->pg,
                      "UPDATE annotators SET status = $2, window_start_ms = $3, suspended_at_ms = $4, changes = $5, "
                      "updated_at_ms = $6 WHERE annotator_id = $1",
                      6, p, fl->errstr, fl->errlen) == 1
               ? 0
               : -1;
}

int standing_flow_promote(flow_t *fl, const char *annotator_id, const char *locale, const char *skills_array,
                          const char *const *skills, size_t nskills) {
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)fl->now_ms);
    const char *p[5] = {annotator_id, locale, skills_array, annotator_id, now};
    /* Approved once: a replayed approval finds the row and emits the same
     * event (same id) again, which consumers drop. */
    if (pg_command(fl->pg,
                   "INSERT INTO annotators (annotator_id, status, locale, skills, candidate_id, window_start_ms, "
                   "changes, updated_at_ms) VALUES ($1, 'active', $2, $3::text[], $4, $5, 1, $5) "
                   "ON CONFLICT (annotator_id) DO NOTHING",
                   5, p, fl->errstr, fl->errlen) < 0)
        return -1;
    annotator_t a = {.status = STANDING_ACTIVE, .changes = 1};
    snprintf(a.id, sizeof(a.id), "%s", annotator_id);
    snprintf(a.locale, sizeof(a.locale), "%s", locale);
    snprintf(a.candidate_id, sizeof(a.candidate_id), "%s", annotator_id);
    a.skills = json_array();
    for (size_t i = 0; i < nskills; i++) json_array_append_new(a.skills, json_string(skills[i]));
    int rc = status_emit(fl, &a, STANDING_NONE, 0.0, 0, "approved from candidate", true);
    json_decref(a.skills);
    return rc;
}

/* Loads and locks the row, creating it (active) for an annotator the
 * funnel did not promote.  0, or -1. */
static int annotator_load(flow_t *fl, const char *id, annotator_t *a) {
    memset(a, 0, sizeof(*a));
    snprintf(a->id, sizeof(a->id), "%s", id);
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)fl->now_ms);
    const char *p[2] = {id, now};
    if (pg_command(fl->pg,
                   "INSERT INTO annotators (annotator_id, status, updated_at_ms) VALUES ($1, 'active', $2) "
                   "ON CONFLICT (annotator_id) DO NOTHING",
                   2, p, fl->errstr, fl->errlen) < 0)
        return -1;
    PGresult *res = pg_query(fl->pg, PGRES_TUPLES_OK,
                             "SELECT status, locale, array_to_json(skills), candidate_id, window_start_ms, changes "
                             "FROM annotators WHERE annotator_id = $1 FOR UPDATE",
                             1, p, fl->errstr, fl->errlen);
    if (res == NULL) return -1;
    int rc = -1;
    if (PQntuples(res) == 1 && standing_status_parse(PQgetvalue(res, 0, 0), &a->status) == 0) {
        snprintf(a->locale, sizeof(a->locale), "%s", PQgetvalue(res, 0, 1));
        a->skills = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
        snprintf(a->candidate_id, sizeof(a->candidate_id), "%s", PQgetvalue(res, 0, 3));
        a->window_start_ms = atoll(PQgetvalue(res, 0, 4));
        a->changes = (unsigned)atoi(PQgetvalue(res, 0, 5));
        rc = 0;
    } else {
        snprintf(fl->errstr, fl->errlen, "annotator %s: row unreadable", id);
    }
    PQclear(res);
    return rc;
}

pipeline_result_t standing_flow_result(flow_t *fl, const char *annotator_id, const char *submission_id, double score,
                                       int64_t validated_at_ms) {
    char s[32], at[24];
    snprintf(s, sizeof(s), "%.17g", score);
    snprintf(at, sizeof(at), "%lld", (long long)validated_at_ms);
    const char *p[4] = {annotator_id, submission_id, s, at};
    long n = pg_command(fl->pg,
                        "INSERT INTO annotator_scores (annotator_id, submission_id, score, validated_at_ms) VALUES "
                        "($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                        4, p, fl->errstr, fl->errlen);
    if (n < 0) return PIPELINE_RETRY;
    if (n == 0) return PIPELINE_APPLIED; /* the second verdict of a pair */
    annotator_t a;
    if (annotator_load(fl, annotator_id, &a) != 0) return PIPELINE_RETRY;
    pipeline_result_t r = PIPELINE_RETRY;
    char start[24], k[16];
    snprintf(start, sizeof(start), "%lld", (long long)a.window_start_ms);
    snprintf(k, sizeof(k), "%u", fl->f->standing.window);
    const char *q[3] = {annotator_id, start, k};
    PGresult *res = pg_query(fl->pg, PGRES_TUPLES_OK,
                             "SELECT score FROM annotator_scores WHERE annotator_id = $1 AND validated_at_ms >= $2 "
                             "ORDER BY validated_at_ms DESC, submission_id DESC LIMIT $3::int",
                             3, q, fl->errstr, fl->errlen);
    if (res == NULL) goto out;
    int ns = PQntuples(res);
    double *scores = calloc((size_t)ns + 1, sizeof(*scores));
    if (scores == NULL) abort();
    for (int i = 0; i < ns; i++) scores[i] = strtod(PQgetvalue(res, i, 0), NULL);
    PQclear(res);
    double quality;
    unsigned count;
    char reason[160];
    standing_status_t prev = a.status;
    a.status = standing_evaluate(&fl->f->standing, prev, scores, (size_t)ns, &quality, &count, reason, sizeof(reason));
    free(scores);
    if (a.status == prev) {
        r = PIPELINE_APPLIED;
        goto out;
    }
    a.changes++;
    if (annotator_save(fl, &a, a.status == STANDING_SUSPENDED ? fl->now_ms : 0) != 0 ||
        status_emit(fl, &a, prev, quality, count, reason, false) != 0)
        goto out;
    r = PIPELINE_APPLIED;
out:
    json_decref(a.skills);
    return r;
}

/* Back on probation with an empty window: what they did before the
 * suspension no longer counts. */
static int reinstate(flow_t *fl, annotator_t *a, const char *reason) {
    a->status = STANDING_PROBATION;
    a->window_start_ms = fl->now_ms;
    a->changes++;
    return annotator_save(fl, a, 0) != 0 || status_emit(fl, a, STANDING_SUSPENDED, 0.0, 0, reason, false) != 0 ? -1
                                                                                                               : 0;
}

pipeline_result_t standing_flow_reinstate_request(flow_t *fl, const char *annotator_id, const char *reason) {
    const char *p[1] = {annotator_id};
    PGresult *res = pg_query(fl->pg, PGRES_TUPLES_OK, "SELECT 1 FROM annotators WHERE annotator_id = $1", 1, p,
                             fl->errstr, fl->errlen);
    if (res == NULL) return PIPELINE_RETRY;
    bool known = PQntuples(res) == 1;
    PQclear(res);
    char why[320];
    if (!known) {
        /* Not one of ours (annotctl checks first; a request raced with
         * nothing): logged and dropped, there is no row to write it to. */
        log_warn("annotator %s: reinstatement refused: no such annotator (input event %s)", annotator_id,
                 fl->cause_id);
        metrics_inc(fl->f->m_refused);
        return PIPELINE_APPLIED;
    }
    annotator_t a;
    if (annotator_load(fl, annotator_id, &a) != 0) return PIPELINE_RETRY;
    pipeline_result_t r = PIPELINE_RETRY;
    if (a.status != STANDING_SUSPENDED) {
        snprintf(why, sizeof(why), "reinstatement refused: the annotator is %s, not suspended",
                 standing_status_name(a.status));
        log_warn("annotator %s: %s (input event %s)", annotator_id, why, fl->cause_id);
        metrics_inc(fl->f->m_refused);
        if (history_add(fl, a.id, "refused", a.status, a.status, why, 0.0, 0, "") == 0) r = PIPELINE_APPLIED;
        goto out;
    }
    snprintf(why, sizeof(why), "reinstated by an operator: %s", reason[0] ? reason : "(no reason given)");
    if (reinstate(fl, &a, why) == 0) r = PIPELINE_APPLIED;
out:
    json_decref(a.skills);
    return r;
}

long standing_flow_reinstate(flow_t *fl) {
    const standing_policy_t *sp = &fl->f->standing;
    if (sp->retraining_ms <= 0) return 0;
    char cutoff[24];
    snprintf(cutoff, sizeof(cutoff), "%lld", (long long)(fl->now_ms - sp->retraining_ms));
    const char *p[1] = {cutoff};
    if (pg_begin(fl->pg, fl->errstr, fl->errlen) != 0) return -1;
    PGresult *res = pg_query(fl->pg, PGRES_TUPLES_OK,
                             "SELECT annotator_id, suspended_at_ms FROM annotators WHERE status = 'suspended' AND "
                             "suspended_at_ms <= $1 ORDER BY annotator_id LIMIT 100 FOR UPDATE SKIP LOCKED",
                             1, p, fl->errstr, fl->errlen);
    if (res == NULL) goto fail;
    long done = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        annotator_t a;
        if (annotator_load(fl, PQgetvalue(res, i, 0), &a) != 0) {
            PQclear(res);
            goto fail;
        }
        bool due = standing_reinstate_due(sp, a.status, atoll(PQgetvalue(res, i, 1)), fl->now_ms);
        int rc = 0;
        if (due) {
            char reason[96];
            snprintf(reason, sizeof(reason), "retraining period of %lld ms over", (long long)sp->retraining_ms);
            rc = reinstate(fl, &a, reason);
            done++;
        }
        json_decref(a.skills);
        if (rc != 0) {
            PQclear(res);
            goto fail;
        }
    }
    PQclear(res);
    if (pg_commit(fl->pg, fl->errstr, fl->errlen) != 0) goto fail;
    return done;
fail:
    pg_rollback(fl->pg);
    return -1;
}
