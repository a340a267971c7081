/* assigner: see assigner.h. */
#include "assigner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot/v1/annotator.pb-c.h"
#include "annot/v1/check.pb-c.h"
#include "annot/v1/lease.pb-c.h"
#include "annot/v1/validation.pb-c.h"
#include "event.h"
#include "log.h"
#include "outbox.h"

/* ---- configuration ----------------------------------------------------------- */

int assigner_conflicts_load(assigner_t *a, const char *path, char *errstr, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(errstr, errlen, "%s: cannot open", path);
        return -1;
    }
    size_t cap = 0, len = 0;
    char *text = NULL, line[1024];
    /* First pass: keep every pair as "validator\0author\0". */
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char v[LEASE_ID_MAX + 2], au[LEASE_ID_MAX + 2], extra[2];
        const char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || *p == '\0') continue;
        if (sscanf(p, "%129s %129s %1s", v, au, extra) != 2 || !lease_policy_id_valid(v) ||
            !lease_policy_id_valid(au)) {
            snprintf(errstr, errlen, "%s:%d: want 'validator_id author_id'", path, lineno);
            fclose(f);
            free(text);
            return -1;
        }
        size_t need = strlen(v) + strlen(au) + 2;
        if (len + need > cap) {
            cap = (len + need) * 2;
            if ((text = realloc(text, cap)) == NULL) abort();
        }
        memcpy(text + len, v, strlen(v) + 1);
        memcpy(text + len + strlen(v) + 1, au, strlen(au) + 1);
        len += need;
        a->nconflicts++;
    }
    fclose(f);
    a->conflicts_text = text;
    a->conflicts = calloc(a->nconflicts ? a->nconflicts : 1, sizeof(*a->conflicts));
    if (a->conflicts == NULL) abort();
    const char *p = text;
    for (size_t i = 0; i < a->nconflicts; i++) {
        a->conflicts[i].validator_id = p;
        p += strlen(p) + 1;
        a->conflicts[i].author_id = p;
        p += strlen(p) + 1;
    }
    return 0;
}

/* ---- the roster, with load ----------------------------------------------------- */

typedef struct roster {
    PGresult *res;
    size_t n;
    assign_validator_t *v;
    json_t **skills;          /* per validator, the parsed array */
    const char **skill_ptrs;  /* all skills, v[i].skills points in */
    const char **ids;
    long long *queued, *held, *seen;
} roster_t;

static void roster_free(roster_t *r) {
    for (size_t i = 0; i < r->n; i++) json_decref(r->skills[i]);
    free(r->skills);
    free(r->skill_ptrs);
    free(r->v);
    free(r->ids);
    free(r->queued);
    free(r->held);
    free(r->seen);
    PQclear(r->res);
    memset(r, 0, sizeof(*r));
}

/* Every validator not suspended, with their load from the dispatcher's
 * Redis and their assignments in the recent window.  -1 on failure (Redis
 * or PostgreSQL: the caller retries). */
static int roster_load(assigner_t *a, pg_t *pg, roster_t *r, char *errstr, size_t errlen) {
    memset(r, 0, sizeof(*r));
    char now[24], window[24];
    snprintf(now, sizeof(now), "%lld", (long long)event_now_ms());
    snprintf(window, sizeof(window), "%lld", (long long)a->recent_window_ms);
    const char *p[2] = {now, window};
    r->res = pg_query(pg, PGRES_TUPLES_OK,
                      "SELECT validator_id, locale, array_to_json(skills)::text, status, last_active_ms, "
                      "CASE WHEN recent_since_ms > $1::bigint - $2::bigint THEN recent_count ELSE 0 END "
                      "FROM validators WHERE status <> 'suspended' ORDER BY validator_id",
                      2, p, errstr, errlen);
    if (r->res == NULL) return -1;
    size_t n = (size_t)PQntuples(r->res), nskills = 0;
    r->n = n;
    r->v = calloc(n + 1, sizeof(*r->v));
    r->skills = calloc(n + 1, sizeof(*r->skills));
    r->ids = calloc(n + 1, sizeof(*r->ids));
    r->queued = calloc(n + 1, sizeof(*r->queued));
    r->held = calloc(n + 1, sizeof(*r->held));
    r->seen = calloc(n + 1, sizeof(*r->seen));
    if (!r->v || !r->skills || !r->ids || !r->queued || !r->held || !r->seen) abort();
    for (size_t i = 0; i < n; i++) {
        r->skills[i] = json_loads(PQgetvalue(r->res, (int)i, 2), 0, NULL);
        nskills += json_array_size(r->skills[i]);
    }
    r->skill_ptrs = calloc(nskills + 1, sizeof(*r->skill_ptrs));
    if (r->skill_ptrs == NULL) abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        r->ids[i] = PQgetvalue(r->res, (int)i, 0);
        r->v[i] = (assign_validator_t){.id = r->ids[i], .locale = PQgetvalue(r->res, (int)i, 1),
                                       .skills = r->skill_ptrs + k,
                                       .suspended = strcmp(PQgetvalue(r->res, (int)i, 3), "suspended") == 0,
                                       .last_active_ms = atoll(PQgetvalue(r->res, (int)i, 4)),
                                       .recent = atoll(PQgetvalue(r->res, (int)i, 5))};
        size_t j;
        json_t *s;
        json_array_foreach(r->skills[i], j, s) {
            if (json_is_string(s)) r->skill_ptrs[k++] = json_string_value(s), r->v[i].nskills++;
        }
    }
    if (n == 0) return 0;
    if (lease_loads(a->leases, LEASE_QUEUE_VALIDATION, r->ids, n, 0, r->queued, r->held, r->seen, errstr, errlen) <
        0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        r->v[i].queued = r->queued[i];
        r->v[i].open_leases = r->held[i];
        /* Asking the dispatcher for validation work is activity too: an
         * idle validator who waits for work stays eligible for it. */
        if (r->seen[i] > r->v[i].last_active_ms) r->v[i].last_active_ms = r->seen[i];
    }
    return 0;
}

/* ---- choosing and emitting --------------------------------------------------- */

static bool is_exam(const Annot__V1__ValidationAssignment *as) {
    return as->task_kind == ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE1 ||
           as->task_kind == ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE2;
}

/* The roster index of the validator for as, or -1. */
static long choose(assigner_t *a, const roster_t *r, const Annot__V1__ValidationAssignment *as,
                   const char *const *exclude, size_t nexclude) {
    const Annot__V1__Task *t = as->task;
    assign_request_t req = {.submission_id = as->submission_id, .author_id = as->author_id,
                            .locale = t ? t->locale : "", .skills = t ? (const char *const *)t->skills : NULL,
                            .nskills = t ? t->n_skills : 0, .exam = is_exam(as), .exclude = exclude,
                            .nexclude = nexclude, .now_ms = event_now_ms()};
    return assign_pick(&a->policy, r->v, r->n, &req, a->conflicts, a->nconflicts);
}

/* Records as (its validator chosen) and puts its event in the outbox. */
static int emit(assigner_t *a, pg_t *pg, const Annot__V1__ValidationAssignment *as, int slot, char *errstr,
                size_t errlen) {
    size_t len = annot__v1__validation_assignment__get_packed_size(as);
    uint8_t *packed = malloc(len ? len : 1);
    if (packed == NULL) abort();
    annot__v1__validation_assignment__pack(as, packed);
    char slot_s[4];
    snprintf(slot_s, sizeof(slot_s), "%d", slot);
    const char *reason = as->reason == ANNOT__V1__ASSIGNMENT_REASON__ASSIGNMENT_REASON_REASSIGNED ? "reassigned" : "initial";
    const char *params[8] = {as->assignment_id, as->submission_id, slot_s, as->pair_id, as->validator_id,
                             as->author_id, reason, (const char *)packed};
    int lengths[8] = {0, 0, 0, 0, 0, 0, 0, (int)len}, formats[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    PGresult *res = pg_query_ex(pg, PGRES_COMMAND_OK,
                                "INSERT INTO assignments (assignment_id, submission_id, slot, pair_id, validator_id, "
                                "author_id, reason, replaces, proto) VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8)",
                                8, params, lengths, formats, errstr, errlen);
    int rc = -1;
    if (res != NULL) {
        PQclear(res);
        /* One more in the validator's recent window (a new window when the
         * last one is over). */
        char now[24], window[24];
        snprintf(now, sizeof(now), "%lld", (long long)event_now_ms());
        snprintf(window, sizeof(window), "%lld", (long long)a->recent_window_ms);
        const char *p3[3] = {as->validator_id, now, window};
        if (pg_command(pg,
                       "UPDATE validators SET recent_count = CASE WHEN recent_since_ms > $2::bigint - $3::bigint "
                       "THEN recent_count + 1 ELSE 1 END, recent_since_ms = CASE WHEN recent_since_ms > "
                       "$2::bigint - $3::bigint THEN recent_since_ms ELSE $2::bigint END WHERE validator_id = $1",
                       3, p3, errstr, errlen) < 0)
            goto out;
        if (as->replaces_assignment_id[0] != '\0') {
            const char *p2[2] = {as->assignment_id, as->replaces_assignment_id};
            if (pg_command(pg, "UPDATE assignments SET replaces = $2 WHERE assignment_id = $1", 2, p2, errstr, errlen) < 0)
                goto out;
        }
        char event_id[EVENT_ID_LEN];
        event_id_derive(event_id, as->assignment_id, "assigned");
        Annot__V1__EventHeader hdr;
        event_header_fill(&hdr, event_id, a->svc->name, NULL, as->task ? as->task->guideline_version : NULL);
        Annot__V1__ValidationAssignmentEvent ev = ANNOT__V1__VALIDATION_ASSIGNMENT_EVENT__INIT;
        ev.header = &hdr;
        ev.assignment = (Annot__V1__ValidationAssignment *)as;
        size_t elen = annot__v1__validation_assignment_event__get_packed_size(&ev);
        uint8_t *buf = malloc(elen ? elen : 1);
        if (buf == NULL) abort();
        annot__v1__validation_assignment_event__pack(&ev, buf);
        rc = outbox_add(pg, a->topic, as->submission_id, strlen(as->submission_id), buf, elen, errstr, errlen);
        free(buf);
    }
out:
    free(packed);
    return rc;
}

/* Keeps a slot nobody could take, for assigner_retry_unassigned. */
static int park_slot(assigner_t *a, pg_t *pg, const Annot__V1__ValidationAssignment *as, int slot, const char *exclude,
                     char *errstr, size_t errlen) {
    size_t len = annot__v1__validation_assignment__get_packed_size(as);
    uint8_t *packed = malloc(len ? len : 1);
    if (packed == NULL) abort();
    annot__v1__validation_assignment__pack(as, packed);
    char slot_s[4];
    snprintf(slot_s, sizeof(slot_s), "%d", slot);
    const char *params[4] = {as->submission_id, slot_s, (const char *)packed, exclude ? exclude : ""};
    int lengths[4] = {0, 0, (int)len, 0}, formats[4] = {0, 0, 1, 0};
    PGresult *res = pg_query_ex(pg, PGRES_COMMAND_OK,
                                "INSERT INTO unassigned (submission_id, slot, assignment, exclude, reason) VALUES "
                                "($1, $2, $3, $4, 'no eligible validator') ON CONFLICT DO NOTHING",
                                4, params, lengths, formats, errstr, errlen);
    free(packed);
    if (res == NULL) return -1;
    PQclear(res);
    metrics_inc(a->m_unassigned);
    log_write_fields(LOG_LEVEL_WARN, json_pack("{s:s, s:i}", "submission_id", as->submission_id, "slot", slot),
                     "no eligible validator; kept for a later try");
    return 0;
}

/* ---- checks -------------------------------------------------------------------- */

static pipeline_result_t on_check(assigner_t *a, pg_t *pg, const rd_kafka_message_t *rkm, char *errstr,
                                  size_t errlen) {
    Annot__V1__CheckResultEvent *ev = (Annot__V1__CheckResultEvent *)event_unpack(
        &annot__v1__check_result_event__descriptor, rkm->payload, rkm->len, errstr, errlen);
    if (ev == NULL) return PIPELINE_INVALID;
    const Annot__V1__CheckResult *c = ev->check;
    const Annot__V1__Submission *s = c ? c->submission : NULL;
    pipeline_result_t r = PIPELINE_INVALID;
    roster_t roster = {0};
    if (s == NULL || s->task == NULL) {
        snprintf(errstr, errlen, "check.submission and its task: required");
        goto out;
    }
    if (!lease_policy_id_valid(s->submission_id) || !lease_policy_id_valid(s->author_id) ||
        !lease_policy_id_valid(s->task_id)) {
        snprintf(errstr, errlen, "check.submission: submission_id, task_id and author_id must be valid ids");
        goto out;
    }
    if (s->task->locale[0] == '\0') {
        snprintf(errstr, errlen, "check.submission.task.locale: empty");
        goto out;
    }
    r = PIPELINE_RETRY;
    /* Assigned already (a second check of the same submission): nothing. */
    const char *p1[1] = {s->submission_id};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "SELECT 1 FROM assignments WHERE submission_id = $1 UNION ALL "
                             "SELECT 1 FROM unassigned WHERE submission_id = $1 LIMIT 1",
                             1, p1, errstr, errlen);
    if (res == NULL) goto out;
    bool known = PQntuples(res) > 0;
    PQclear(res);
    if (known) {
        r = PIPELINE_APPLIED;
        goto out;
    }
    const char *p2[1] = {s->author_id};
    res = pg_query(pg, PGRES_TUPLES_OK,
                   "INSERT INTO authors (author_id, submissions) VALUES ($1, 1) ON CONFLICT (author_id) DO UPDATE "
                   "SET submissions = authors.submissions + 1 RETURNING submissions - 1, status",
                   1, p2, errstr, errlen);
    if (res == NULL) goto out;
    long long before = atoll(PQgetvalue(res, 0, 0));
    bool probation = strcmp(PQgetvalue(res, 0, 1), "probation") == 0;
    PQclear(res);

    char a0[EVENT_ID_LEN], a1[EVENT_ID_LEN], pair[EVENT_ID_LEN];
    event_id_derive(a0, s->submission_id, "assignment/0");
    event_id_derive(a1, s->submission_id, "assignment/1");
    event_id_derive(pair, s->submission_id, "pair");
    Annot__V1__ValidationAssignment as = ANNOT__V1__VALIDATION_ASSIGNMENT__INIT;
    as.submission_id = s->submission_id;
    as.task_id = s->task_id;
    as.author_id = s->author_id;
    as.reason = ANNOT__V1__ASSIGNMENT_REASON__ASSIGNMENT_REASON_INITIAL;
    as.assigned_at_ms = event_now_ms();
    as.description = s->description;
    as.task = s->task;
    as.n_check_findings = c->n_findings;
    as.check_findings = c->findings;
    as.check_score = c->score;
    as.submitted_at_ms = s->submitted_at_ms;
    as.task_kind = s->task_kind != ANNOT__V1__TASK_KIND__TASK_KIND_UNSPECIFIED ? s->task_kind : s->task->kind;
    as.candidate_id = s->candidate_id;
    as.exam_stage = c->exam_stage;
    as.author_role = s->author_role;
    bool dbl = assign_double(&a->policy, s->submission_id, is_exam(&as), probation, before);
    as.double_validation = dbl;
    as.pair_id = dbl ? pair : "";

    if (roster_load(a, pg, &roster, errstr, errlen) != 0) goto out;
    long first = choose(a, &roster, &as, NULL, 0);
    as.assignment_id = a0;
    if (first < 0) {
        if (park_slot(a, pg, &as, 0, NULL, errstr, errlen) != 0) goto out;
    } else {
        as.validator_id = (char *)roster.v[first].id;
        if (emit(a, pg, &as, 0, errstr, errlen) != 0) goto out;
        metrics_inc(a->m_assigned);
    }
    if (dbl) {
        const char *ex[1] = {first >= 0 ? roster.v[first].id : ""};
        long second = first >= 0 ? choose(a, &roster, &as, ex, 1) : -1;
        as.assignment_id = a1;
        as.validator_id = "";
        if (second < 0) {
            if (park_slot(a, pg, &as, 1, ex[0], errstr, errlen) != 0) goto out;
        } else {
            as.validator_id = (char *)roster.v[second].id;
            if (emit(a, pg, &as, 1, errstr, errlen) != 0) goto out;
            metrics_inc(a->m_assigned);
            metrics_inc(a->m_double);
        }
    }
    r = PIPELINE_APPLIED;
out:
    roster_free(&roster);
    annot__v1__check_result_event__free_unpacked(ev, NULL);
    return r;
}

/* ---- reassignment ------------------------------------------------------------- */

/* Gives assignment_id (open or leased) to another validator: never its
 * current one, never the other of its pair.  When nobody else is eligible:
 * with dead set (the dispatcher parked it: its validator will never see it
 * again) the replacement waits in `unassigned` for the retry; otherwise it
 * stays with its validator for now.  1 when reassigned or waiting, 0 when
 * it is no longer open or stays, -1 on failure. */
static int reassign(assigner_t *a, pg_t *pg, const roster_t *shared, const char *assignment_id, const char *detail,
                    bool dead, char *errstr, size_t errlen) {
    const char *p1[1] = {assignment_id};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "SELECT validator_id, slot, proto, submission_id FROM assignments WHERE assignment_id = $1 "
                             "AND state IN ('open', 'leased') FOR UPDATE",
                             1, p1, errstr, errlen);
    if (res == NULL) return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    size_t plen = 0;
    unsigned char *proto = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 2), &plen);
    Annot__V1__ValidationAssignment *old = proto ? annot__v1__validation_assignment__unpack(NULL, plen, proto) : NULL;
    PQfreemem(proto);
    char old_validator[LEASE_ID_MAX + 1], slot_s[4], submission[LEASE_ID_MAX + 1];
    snprintf(old_validator, sizeof(old_validator), "%s", PQgetvalue(res, 0, 0));
    snprintf(slot_s, sizeof(slot_s), "%s", PQgetvalue(res, 0, 1));
    snprintf(submission, sizeof(submission), "%s", PQgetvalue(res, 0, 3));
    PQclear(res);
    if (old == NULL) {
        snprintf(errstr, errlen, "assignment %s: stored proto does not decode", assignment_id);
        return -1;
    }
    int rc = -1;
    roster_t own = {0};
    const roster_t *roster = shared ? shared : &own;
    const char *p2[2] = {submission, slot_s};
    res = pg_query(pg, PGRES_TUPLES_OK,
                   "SELECT validator_id FROM assignments WHERE submission_id = $1 AND slot <> $2 AND state <> 'replaced'",
                   2, p2, errstr, errlen);
    if (res == NULL) goto out;
    const char *ex[2] = {old_validator, PQntuples(res) ? PQgetvalue(res, 0, 0) : ""};
    if (shared == NULL && roster_load(a, pg, &own, errstr, errlen) != 0) {
        PQclear(res);
        goto out;
    }
    /* The sweep read activity from PostgreSQL; the roster adds who asked
     * the dispatcher for work lately.  Someone still asking keeps it. */
    bool still_there = false;
    for (size_t i = 0; !dead && i < roster->n; i++)
        if (strcmp(roster->v[i].id, old_validator) == 0 &&
            event_now_ms() - roster->v[i].last_active_ms <= a->policy.inactive_after_ms)
            still_there = true;
    long pick = still_there ? -1 : choose(a, roster, old, ex, 2);
    char exclude[2 * LEASE_ID_MAX + 2];
    snprintf(exclude, sizeof(exclude), "%s%s%s", ex[0], ex[1][0] ? " " : "", ex[1]);
    PQclear(res);
    if (pick < 0 && !dead) {
        /* Every sweep sees it again until someone is eligible: not a warning
         * each time. */
        log_write_fields(LOG_LEVEL_DEBUG, json_pack("{s:s, s:s}", "assignment_id", assignment_id, "why", detail),
                         "not reassigned: nobody else is eligible");
        rc = pg_command(pg, "UPDATE assignments SET swept_at = now() WHERE assignment_id = $1", 1, p1, errstr,
                        errlen) < 0 ? -1 : 0;
        goto out;
    }
    if (pg_command(pg, "UPDATE assignments SET state = 'replaced' WHERE assignment_id = $1", 1, p1, errstr, errlen) < 0)
        goto out;
    char new_id[EVENT_ID_LEN];
    event_id_derive(new_id, assignment_id, "reassigned");
    Annot__V1__ValidationAssignment as = *old;
    as.assignment_id = new_id;
    as.reason = ANNOT__V1__ASSIGNMENT_REASON__ASSIGNMENT_REASON_REASSIGNED;
    as.replaces_assignment_id = (char *)assignment_id;
    as.previous_validator_id = old_validator;
    as.reassign_detail = (char *)detail;
    if (pick < 0) {
        as.validator_id = "";
        rc = park_slot(a, pg, &as, atoi(slot_s), exclude, errstr, errlen) == 0 ? 1 : -1;
        goto out;
    }
    as.validator_id = (char *)roster->v[pick].id;
    as.assigned_at_ms = event_now_ms();
    if (emit(a, pg, &as, atoi(slot_s), errstr, errlen) != 0) goto out;
    metrics_inc(a->m_reassigned);
    log_write_fields(LOG_LEVEL_INFO,
                     json_pack("{s:s, s:s, s:s, s:s, s:s}", "assignment_id", new_id, "replaces", assignment_id, "from",
                               old_validator, "to", as.validator_id, "why", detail),
                     "reassigned");
    rc = 1;
out:
    roster_free(&own);
    annot__v1__validation_assignment__free_unpacked(old, NULL);
    return rc;
}

/* ---- roster, results and leases ---------------------------------------------- */

static const char *status_name(Annot__V1__AnnotatorStatus s) {
    switch (s) {
    case ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_ACTIVE: return "active";
    case ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_PROBATION: return "probation";
    case ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_SUSPENDED: return "suspended";
    default: return NULL;
    }
}

static pipeline_result_t on_annotator(pg_t *pg, const rd_kafka_message_t *rkm, char *errstr, size_t errlen) {
    Annot__V1__AnnotatorStatusEvent *ev =
        (Annot__V1__AnnotatorStatusEvent *)event_unpack(&annot__v1__annotator_status_event__descriptor, rkm->payload, rkm->len, errstr, errlen);
    if (ev == NULL) return PIPELINE_INVALID;
    pipeline_result_t r = PIPELINE_INVALID;
    const char *status = status_name(ev->status);
    if (!lease_policy_id_valid(ev->annotator_id) || status == NULL) {
        snprintf(errstr, errlen, "annotator_id or status: missing or not valid");
        goto out;
    }
    /* A roster change counts as activity from when the assigner learns of
     * it: a validator just added is available at once. */
    char at[24];
    snprintf(at, sizeof(at), "%lld", (long long)event_now_ms());
    long n;
    if (ev->role == ANNOT__V1__ROLE__ROLE_VALIDATOR) {
        char *skills = pg_text_array((const char *const *)ev->skills, ev->n_skills);
        const char *p[5] = {ev->annotator_id, ev->locale, skills, status, at};
        n = pg_command(pg,
                       "INSERT INTO validators (validator_id, locale, skills, status, last_active_ms) VALUES "
                       "($1, $2, $3::text[], $4, $5) ON CONFLICT (validator_id) DO UPDATE SET locale = $2, "
                       "skills = $3::text[], status = $4, last_active_ms = greatest(validators.last_active_ms, $5), "
                       "updated_at = now()",
                       5, p, errstr, errlen);
        free(skills);
    } else {
        const char *p[2] = {ev->annotator_id, status};
        n = pg_command(pg, "UPDATE validators SET status = $2, updated_at = now() WHERE validator_id = $1", 2, p,
                       errstr, errlen);
    }
    const char *p2[2] = {ev->annotator_id, status};
    if (n < 0 || pg_command(pg,
                            "INSERT INTO authors (author_id, status) VALUES ($1, $2) ON CONFLICT (author_id) DO UPDATE "
                            "SET status = $2",
                            2, p2, errstr, errlen) < 0) {
        r = PIPELINE_RETRY;
        goto out;
    }
    r = PIPELINE_APPLIED;
out:
    annot__v1__annotator_status_event__free_unpacked(ev, NULL);
    return r;
}

static int touch(pg_t *pg, const char *validator_id, int64_t at_ms, char *errstr, size_t errlen) {
    char at[24];
    snprintf(at, sizeof(at), "%lld", (long long)at_ms);
    const char *p[2] = {validator_id, at};
    return pg_command(pg, "UPDATE validators SET last_active_ms = greatest(last_active_ms, $2) WHERE validator_id = $1",
                      2, p, errstr, errlen) < 0 ? -1 : 0;
}

static pipeline_result_t on_result(pg_t *pg, const rd_kafka_message_t *rkm, char *errstr, size_t errlen) {
    Annot__V1__ValidationResultEvent *ev = (Annot__V1__ValidationResultEvent *)event_unpack(
        &annot__v1__validation_result_event__descriptor, rkm->payload, rkm->len, errstr, errlen);
    if (ev == NULL) return PIPELINE_INVALID;
    if (ev->result == NULL) {
        snprintf(errstr, errlen, "result: required");
        annot__v1__validation_result_event__free_unpacked(ev, NULL);
        return PIPELINE_INVALID;
    }
    const char *p[1] = {ev->result->assignment_id};
    int64_t at = ev->result->validated_at_ms > 0 ? ev->result->validated_at_ms : event_now_ms();
    pipeline_result_t r = PIPELINE_APPLIED;
    if (pg_command(pg, "UPDATE assignments SET state = 'done' WHERE assignment_id = $1", 1, p, errstr, errlen) < 0 ||
        touch(pg, ev->result->validator_id, at, errstr, errlen) != 0)
        r = PIPELINE_RETRY;
    annot__v1__validation_result_event__free_unpacked(ev, NULL);
    return r;
}

static pipeline_result_t on_lease(assigner_t *a, pg_t *pg, const rd_kafka_message_t *rkm, char *errstr,
                                  size_t errlen) {
    Annot__V1__LeaseEvent *ev =
        (Annot__V1__LeaseEvent *)event_unpack(&annot__v1__lease_event__descriptor, rkm->payload, rkm->len, errstr, errlen);
    if (ev == NULL) return PIPELINE_INVALID;
    pipeline_result_t r = PIPELINE_APPLIED;
    if (ev->queue != ANNOT__V1__QUEUE__QUEUE_VALIDATION || ev->assignment_id[0] == '\0') goto out;
    const char *p[1] = {ev->assignment_id};
    int64_t at = ev->header ? ev->header->occurred_at_ms : event_now_ms();
    switch (ev->event_case) {
    case ANNOT__V1__LEASE_EVENT__EVENT_GRANTED:
        if (pg_command(pg, "UPDATE assignments SET state = 'leased' WHERE assignment_id = $1 AND state = 'open'", 1, p,
                       errstr, errlen) < 0)
            r = PIPELINE_RETRY;
        /* a grant is activity too */
        __attribute__((fallthrough));
    case ANNOT__V1__LEASE_EVENT__EVENT_HEARTBEAT:
    case ANNOT__V1__LEASE_EVENT__EVENT_RELEASED:
        if (r == PIPELINE_APPLIED && ev->holder_id[0] && touch(pg, ev->holder_id, at, errstr, errlen) != 0)
            r = PIPELINE_RETRY;
        break;
    case ANNOT__V1__LEASE_EVENT__EVENT_PARKED: {
        char detail[96];
        snprintf(detail, sizeof(detail), "lease expired %u times", ev->parked->attempts);
        if (reassign(a, pg, NULL, ev->assignment_id, detail, true, errstr, errlen) < 0) r = PIPELINE_RETRY;
        break;
    }
    default:
        break;
    }
out:
    annot__v1__lease_event__free_unpacked(ev, NULL);
    return r;
}

pipeline_result_t assigner_apply(void *opaque, pipeline_ctx_t *ctx, const rd_kafka_message_t *rkm,
                                 const Annot__V1__EventHeader *hdr, char *errstr, size_t errlen) {
    (void)hdr;
    assigner_t *a = opaque;
    pg_t *pg = pipeline_pg(ctx);
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    if (strcmp(topic, service_topic(a->svc, "checks")) == 0) return on_check(a, pg, rkm, errstr, errlen);
    if (strcmp(topic, service_topic(a->svc, "annotators")) == 0) return on_annotator(pg, rkm, errstr, errlen);
    if (strcmp(topic, service_topic(a->svc, "validation-results")) == 0) return on_result(pg, rkm, errstr, errlen);
    return on_lease(a, pg, rkm, errstr, errlen);
}

/* ---- sweeps -------------------------------------------------------------------- */

long assigner_sweep_inactive(assigner_t *a, pg_t *pg, char *errstr, size_t errlen) {
    if (a->policy.inactive_after_ms <= 0) return 0;
    if (pg_ensure(pg, errstr, errlen) != 0) return -1;
    char cutoff[24], after[24];
    snprintf(cutoff, sizeof(cutoff), "%lld", (long long)(event_now_ms() - a->policy.inactive_after_ms));
    snprintf(after, sizeof(after), "%lld", (long long)a->policy.inactive_after_ms);
    const char *p[2] = {cutoff, after};
    /* Open, never leased, older than the inactivity span, of a validator
     * with no sign of life in that span. */
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "SELECT a.assignment_id FROM assignments a JOIN validators v USING (validator_id) "
                             "WHERE a.state = 'open' AND v.last_active_ms < $1 AND a.created_at < now() - "
                             "make_interval(secs => $2::double precision / 1000) "
                             "ORDER BY a.swept_at NULLS FIRST, a.created_at LIMIT 100",
                             2, p, errstr, errlen);
    if (res == NULL) return -1;
    long total = 0;
    /* One roster for the sweep: the loads it reads change little within
     * it, and a backlog nobody can take costs one query, not one each. */
    roster_t roster = {0};
    if (PQntuples(res) > 0 && roster_load(a, pg, &roster, errstr, errlen) != 0) total = -1;
    for (int i = 0; i < PQntuples(res) && total >= 0; i++) {
        if (pg_begin(pg, errstr, errlen) != 0) {
            total = -1;
            break;
        }
        int rc = reassign(a, pg, &roster, PQgetvalue(res, i, 0), "validator inactive", false, errstr, errlen);
        if (rc < 0 || pg_commit(pg, errstr, errlen) != 0) {
            pg_rollback(pg);
            total = -1;
        } else {
            total += rc;
        }
    }
    roster_free(&roster);
    PQclear(res);
    return total;
}

long assigner_retry_unassigned(assigner_t *a, pg_t *pg, char *errstr, size_t errlen) {
    if (pg_ensure(pg, errstr, errlen) != 0) return -1;
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "SELECT submission_id, slot, assignment, exclude FROM unassigned ORDER BY since LIMIT 100",
                             0, NULL, errstr, errlen);
    if (res == NULL) return -1;
    long total = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        size_t plen = 0;
        unsigned char *proto = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 2), &plen);
        Annot__V1__ValidationAssignment *as = proto ? annot__v1__validation_assignment__unpack(NULL, plen, proto) : NULL;
        PQfreemem(proto);
        if (as == NULL) continue;
        roster_t roster = {0};
        char *unset = as->validator_id; /* restored before the free below */
        /* "a" or "a b": whoever must not take it (ids hold no space). */
        char exclude[2 * LEASE_ID_MAX + 2];
        snprintf(exclude, sizeof(exclude), "%s", PQgetvalue(res, i, 3));
        char *comma = strchr(exclude, ' ');
        if (comma) *comma = '\0';
        const char *ex[2] = {exclude, comma ? comma + 1 : ""};
        int ok = pg_begin(pg, errstr, errlen) == 0 && roster_load(a, pg, &roster, errstr, errlen) == 0;
        long pick = ok ? choose(a, &roster, as, ex, 2) : -1;
        if (ok && pick >= 0) {
            const char *p[2] = {PQgetvalue(res, i, 0), PQgetvalue(res, i, 1)};
            as->validator_id = (char *)roster.v[pick].id;
            ok = emit(a, pg, as, atoi(PQgetvalue(res, i, 1)), errstr, errlen) == 0 &&
                 pg_command(pg, "DELETE FROM unassigned WHERE submission_id = $1 AND slot = $2", 2, p, errstr,
                            errlen) >= 0 &&
                 pg_commit(pg, errstr, errlen) == 0;
            if (ok) {
                total++;
                metrics_inc(a->m_assigned);
            }
        }
        if (!ok || pick < 0) pg_rollback(pg);
        as->validator_id = unset;
        roster_free(&roster);
        annot__v1__validation_assignment__free_unpacked(as, NULL);
        if (!ok) {
            PQclear(res);
            return -1;
        }
    }
    PQclear(res);
    return total;
}
