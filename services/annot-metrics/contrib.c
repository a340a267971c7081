/* contrib: see contrib.h. */
#include "contrib.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct delta {
    int64_t c[SERIES_COUNTERS];
    double sum;
    bool observe; /* a distribution sample: value */
    double value;
} delta_t;

static void delta_apply(series_value_t *v, const delta_t *d) {
    if (d->observe) {
        series_value_observe(v, d->value);
        return;
    }
    for (int i = 0; i < SERIES_COUNTERS; i++) v->c[i] += d->c[i];
    v->sum += d->sum;
}

/* Adds d to every window of wins, under the event's version and "". */
static void emit_windows(contrib_t *c, const char *metric, const window_t *wins, int nwin, const char *labels,
                         const delta_t *d) {
    const char *gvs[2] = {c->gv && c->gv[0] ? c->gv : "", ""};
    int ngv = gvs[0][0] ? 2 : 1;
    series_key_t key;
    for (int g = 0; g < ngv; g++) {
        for (int w = 0; w < nwin; w++) {
            memset(&key, 0, sizeof(key));
            snprintf(key.metric, sizeof(key.metric), "%s", metric);
            key.window = wins[w];
            snprintf(key.gv, sizeof(key.gv), "%s", gvs[g]);
            snprintf(key.labels, sizeof(key.labels), "%s", labels);
            delta_apply(series_batch_get(c->batch, &key), d);
        }
    }
}

/* The event's hour, day and all time. */
static void emit(contrib_t *c, const char *metric, int64_t ts, const char *labels, const delta_t *d) {
    window_t wins[WINDOW_KIND_COUNT];
    for (int k = 0; k < WINDOW_KIND_COUNT; k++) wins[k] = window_of((window_kind_t)k, ts);
    emit_windows(c, metric, wins, WINDOW_KIND_COUNT, labels, d);
}

static void emit_observe(contrib_t *c, const char *metric, int64_t ts, const char *labels, double value) {
    delta_t d = {.observe = true, .value = value < 0 ? 0 : value};
    emit(c, metric, ts, labels, &d);
}

static void emit_count(contrib_t *c, const char *metric, int64_t ts, const char *labels, int counter) {
    delta_t d = {0};
    d.c[counter] = 1;
    emit(c, metric, ts, labels, &d);
}

/* A label set of one pair; a value too long for a point's labels marks the
 * event (contrib_t.overflow) rather than merging it into another point. */
static const char *labels1(contrib_t *c, char *buf, size_t len, const char *k, const char *v) {
    const char *keys[1] = {k}, *vals[1] = {v ? v : ""};
    if (series_labels(buf, len, 1, keys, vals) != 0) c->overflow = true;
    return buf;
}

const char *contrib_enum_name(const ProtobufCEnumDescriptor *desc, int value, char *out, size_t len) {
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(desc, value);
    /* Value names carry the enum's name as prefix (TASK_KIND_ for
     * TaskKind), which is the prefix of the UNSPECIFIED value. */
    const ProtobufCEnumValue *unspec = protobuf_c_enum_descriptor_get_value(desc, 0);
    if (ev == NULL || value == 0) {
        snprintf(out, len, "unspecified");
        return out;
    }
    size_t skip = 0;
    if (unspec) {
        const char *u = strstr(unspec->name, "UNSPECIFIED");
        if (u) skip = (size_t)(u - unspec->name);
    }
    snprintf(out, len, "%s", strlen(ev->name) > skip ? ev->name + skip : ev->name);
    for (char *p = out; *p; p++) *p = (char)tolower((unsigned char)*p);
    return out;
}

/* The event's own time, else its header's; -1 when neither is set. */
static int64_t event_time(const contrib_t *c, int64_t own) {
    if (own > 0) return own;
    if (c->occurred_at_ms > 0) return c->occurred_at_ms;
    return -1;
}

/* Years past 9999 fit neither the windows' text form nor any sane clock. */
#define CONTRIB_TIME_MAX 253402300800000LL

static int need_time(int64_t ts, const char *field, char *errstr, size_t errlen) {
    if (ts >= CONTRIB_TIME_MAX) {
        snprintf(errstr, errlen, "%s is after the year 9999", field);
        return -1;
    }
    if (ts >= 0) return 0;
    snprintf(errstr, errlen, "%s and header.occurred_at_ms are both unset", field);
    return -1;
}

/* ---- steps --------------------------------------------------------------- */

static void step(contrib_t *c, const char *name, int64_t ts, int64_t since_ms) {
    char lb[SERIES_LABELS_MAX];
    labels1(c, lb, sizeof(lb), "step", name);
    emit_count(c, METRIC_THROUGHPUT, ts, lb, 0);
    if (since_ms > 0) emit_observe(c, METRIC_LATENCY, ts, lb, (double)(ts - since_ms));
}

int contrib_task(contrib_t *c, const Annot__V1__TaskEvent *ev, char *errstr, size_t errlen) {
    if (ev->task == NULL) {
        snprintf(errstr, errlen, "task is missing");
        return -1;
    }
    int64_t ts = event_time(c, ev->task->created_at_ms);
    if (need_time(ts, "task.created_at_ms", errstr, errlen)) return -1;
    step(c, "imported", ts, 0);
    return 0;
}

static const char *queue_of_kind(Annot__V1__TaskKind kind) {
    return kind == ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE1 || kind == ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE2
               ? "exam"
               : "annotation";
}

int contrib_submission(contrib_t *c, const Annot__V1__SubmissionEvent *ev, char *errstr, size_t errlen) {
    const Annot__V1__Submission *s = ev->submission;
    if (s == NULL) {
        snprintf(errstr, errlen, "submission is missing");
        return -1;
    }
    int64_t ts = event_time(c, s->submitted_at_ms);
    if (need_time(ts, "submission.submitted_at_ms", errstr, errlen)) return -1;
    step(c, "submitted", ts, s->task ? s->task->created_at_ms : 0);
    if (s->leased_at_ms > 0) {
        char lb[SERIES_LABELS_MAX];
        labels1(c, lb, sizeof(lb), "queue", queue_of_kind(s->task_kind));
        emit_observe(c, METRIC_TIME_TO_SUBMIT, ts, lb, (double)(ts - s->leased_at_ms));
    }
    return 0;
}

int contrib_check(contrib_t *c, const Annot__V1__CheckResultEvent *ev, char *errstr, size_t errlen) {
    if (ev->check == NULL) {
        snprintf(errstr, errlen, "check is missing");
        return -1;
    }
    int64_t ts = event_time(c, ev->check->checked_at_ms);
    if (need_time(ts, "check.checked_at_ms", errstr, errlen)) return -1;
    step(c, "checked", ts, ev->check->submission ? ev->check->submission->submitted_at_ms : 0);
    return 0;
}

int contrib_assignment(contrib_t *c, const Annot__V1__ValidationAssignmentEvent *ev, char *errstr, size_t errlen) {
    if (ev->assignment == NULL) {
        snprintf(errstr, errlen, "assignment is missing");
        return -1;
    }
    int64_t ts = event_time(c, ev->assignment->assigned_at_ms);
    if (need_time(ts, "assignment.assigned_at_ms", errstr, errlen)) return -1;
    step(c, "assigned", ts, ev->assignment->submitted_at_ms);
    return 0;
}

/* ---- leases -------------------------------------------------------------- */

int contrib_lease(contrib_t *c, const Annot__V1__LeaseEvent *ev, const contrib_beat_t *prev, char *errstr,
                  size_t errlen) {
    char qn[32], lb[SERIES_LABELS_MAX];
    if (ev->queue == ANNOT__V1__QUEUE__QUEUE_UNSPECIFIED) {
        snprintf(errstr, errlen, "queue is unset");
        return -1;
    }
    labels1(c, lb, sizeof(lb), "queue", contrib_enum_name(&annot__v1__queue__descriptor, ev->queue, qn, sizeof(qn)));
    int64_t ts;
    switch (ev->event_case) {
    case ANNOT__V1__LEASE_EVENT__EVENT_GRANTED:
        ts = event_time(c, ev->granted->granted_at_ms);
        if (need_time(ts, "granted.granted_at_ms", errstr, errlen)) return -1;
        emit_count(c, METRIC_LEASE, ts, lb, 0);
        return 0;
    case ANNOT__V1__LEASE_EVENT__EVENT_HEARTBEAT: {
        const Annot__V1__LeaseHeartbeat *h = ev->heartbeat;
        ts = event_time(c, h->heartbeat_at_ms);
        if (need_time(ts, "heartbeat.heartbeat_at_ms", errstr, errlen)) return -1;
        emit_count(c, METRIC_LEASE, ts, lb, 5);
        /* Heartbeats may be sampled: the gap is the time since the last
         * one seen divided by the heartbeats that happened in between. */
        if (prev != NULL && ts >= prev->at_ms) {
            uint32_t beats = h->heartbeat_count > prev->count ? h->heartbeat_count - prev->count : 1;
            emit_observe(c, METRIC_HEARTBEAT_GAP, ts, lb, (double)(ts - prev->at_ms) / beats);
        }
        return 0;
    }
    case ANNOT__V1__LEASE_EVENT__EVENT_EXPIRED:
        ts = event_time(c, ev->expired->expires_at_ms);
        if (need_time(ts, "expired.expires_at_ms", errstr, errlen)) return -1;
        emit_count(c, METRIC_LEASE, ts, lb, 1);
        return 0;
    case ANNOT__V1__LEASE_EVENT__EVENT_RELEASED:
        ts = event_time(c, ev->released->released_at_ms);
        if (need_time(ts, "released.released_at_ms", errstr, errlen)) return -1;
        emit_count(c, METRIC_LEASE, ts, lb,
                   ev->released->reason == ANNOT__V1__RELEASE_REASON__RELEASE_REASON_SUBMITTED ? 3 : 2);
        return 0;
    case ANNOT__V1__LEASE_EVENT__EVENT_PARKED:
        ts = event_time(c, ev->parked->parked_at_ms);
        if (need_time(ts, "parked.parked_at_ms", errstr, errlen)) return -1;
        emit_count(c, METRIC_LEASE, ts, lb, 4);
        return 0;
    default:
        snprintf(errstr, errlen, "lease event has none of granted/heartbeat/expired/released/parked");
        return -1;
    }
}

/* ---- validation results -------------------------------------------------- */


/* The distinct strings of a list, in first-seen order (at most max). */
static size_t distinct(const char **out, size_t max, const char *s, size_t n_out) {
    for (size_t i = 0; i < n_out; i++) {
        if (strcmp(out[i], s) == 0) return n_out;
    }
    if (n_out < max) out[n_out++] = s;
    return n_out;
}

#define CONTRIB_MAX_RULES 64

static void precision(contrib_t *c, const Annot__V1__ValidationResult *r, int64_t ts) {
    const char *flagged[CONTRIB_MAX_RULES], *recorded[CONTRIB_MAX_RULES];
    size_t nf = 0, nr = 0;
    for (size_t i = 0; i < r->n_check_findings; i++) nf = distinct(flagged, CONTRIB_MAX_RULES, r->check_findings[i]->rule, nf);
    for (size_t i = 0; i < r->n_errors; i++) nr = distinct(recorded, CONTRIB_MAX_RULES, r->errors[i]->category, nr);
    delta_t all = {0};
    char lb[SERIES_LABELS_MAX];
    for (size_t i = 0; i < nf; i++) {
        delta_t d = {0};
        d.c[0] = 1;
        for (size_t j = 0; j < nr; j++) d.c[1] |= strcmp(flagged[i], recorded[j]) == 0;
        all.c[0] += d.c[0];
        all.c[1] += d.c[1];
        emit(c, METRIC_PRECISION, ts, labels1(c, lb, sizeof(lb), "rule", flagged[i]), &d);
    }
    for (size_t j = 0; j < nr; j++) {
        bool was_flagged = false;
        for (size_t i = 0; i < nf; i++) was_flagged |= strcmp(flagged[i], recorded[j]) == 0;
        if (was_flagged || c->checker_rule == NULL || !c->checker_rule(c->checker_opaque, recorded[j])) continue;
        delta_t d = {0};
        d.c[2] = 1;
        all.c[2]++;
        emit(c, METRIC_PRECISION, ts, labels1(c, lb, sizeof(lb), "rule", recorded[j]), &d);
    }
    if (nf > 0 || all.c[2] > 0) emit(c, METRIC_PRECISION, ts, "{}", &all);
}

static void agreement(contrib_t *c, const Annot__V1__ValidationResult *r, const contrib_half_t *other, int64_t ts) {
    bool a1 = other->verdict == ANNOT__V1__VERDICT__VERDICT_ACCEPT;
    bool a2 = r->verdict == ANNOT__V1__VERDICT__VERDICT_ACCEPT;
    double diff = fabs(other->score - r->score);
    /* Cells aa, ar, ra, rr are counters 2..5: first rater's verdict, then
     * the second's. */
    int cell_pair = 2 + (a1 ? 0 : 2) + (a2 ? 0 : 1);
    int cell_swapped = 2 + (a2 ? 0 : 2) + (a1 ? 0 : 1);
    delta_t d = {.sum = diff};
    d.c[0] = 1;
    d.c[1] = a1 == a2;
    d.c[cell_pair] = 1;
    emit(c, METRIC_AGREEMENT, ts, "{}", &d);
    char lb[SERIES_LABELS_MAX];
    emit(c, METRIC_AGREEMENT, ts, labels1(c, lb, sizeof(lb), "validator", other->validator_id), &d);
    d.c[cell_pair] = 0;
    d.c[cell_swapped] = 1;
    emit(c, METRIC_AGREEMENT, ts, labels1(c, lb, sizeof(lb), "validator", r->validator_id), &d);
}

int contrib_validation(contrib_t *c, const Annot__V1__ValidationResultEvent *ev, const contrib_half_t *other,
                       char *errstr, size_t errlen) {
    const Annot__V1__ValidationResult *r = ev->result;
    if (r == NULL) {
        snprintf(errstr, errlen, "result is missing");
        return -1;
    }
    if (r->verdict != ANNOT__V1__VERDICT__VERDICT_ACCEPT && r->verdict != ANNOT__V1__VERDICT__VERDICT_REJECT) {
        snprintf(errstr, errlen, "result.verdict is neither accept nor reject");
        return -1;
    }
    if (!(r->score >= 0.0 && r->score <= 1.0)) {
        snprintf(errstr, errlen, "result.score is outside 0..1");
        return -1;
    }
    int64_t ts = event_time(c, r->validated_at_ms);
    if (need_time(ts, "result.validated_at_ms", errstr, errlen)) return -1;
    step(c, "validated", ts, r->submitted_at_ms);
    if (r->task_created_at_ms > 0) {
        char lb[SERIES_LABELS_MAX];
        emit_observe(c, METRIC_LATENCY, ts, labels1(c, lb, sizeof(lb), "step", "end_to_end"),
                     (double)(ts - r->task_created_at_ms));
    }

    bool exam = r->author_role == ANNOT__V1__ROLE__ROLE_CANDIDATE ||
                r->task_kind == ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE1 ||
                r->task_kind == ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE2;
    if (!exam) {
        delta_t d = {.sum = r->score};
        d.c[0] = 1;
        d.c[1] = r->verdict == ANNOT__V1__VERDICT__VERDICT_ACCEPT;
        d.c[2] = !d.c[1];
        for (size_t i = 0; i < r->n_errors; i++) d.c[3] += r->errors[i]->severity == ANNOT__V1__SEVERITY__SEVERITY_CRITICAL;
        char lb[SERIES_LABELS_MAX], kind[32];
        emit(c, METRIC_QUALITY, ts, "{}", &d);
        emit(c, METRIC_QUALITY, ts, labels1(c, lb, sizeof(lb), "annotator", r->author_id), &d);
        emit(c, METRIC_QUALITY, ts, labels1(c, lb, sizeof(lb), "locale", r->locale), &d);
        emit(c, METRIC_QUALITY, ts,
             labels1(c, lb, sizeof(lb), "task_kind",
                     contrib_enum_name(&annot__v1__task_kind__descriptor, r->task_kind, kind, sizeof(kind))),
             &d);
    }
    precision(c, r, ts);
    for (size_t i = 0; i < r->n_errors; i++) {
        if (r->errors[i]->section[0] == '\0') continue;
        char lb[SERIES_LABELS_MAX];
        delta_t d = {0};
        d.c[1] = 1;
        emit(c, METRIC_HOTSPOT, ts, labels1(c, lb, sizeof(lb), "section", r->errors[i]->section), &d);
    }
    if (other != NULL) agreement(c, r, other, ts);
    return 0;
}

/* ---- feedback, candidates, annotators ------------------------------------ */

int contrib_feedback(contrib_t *c, const Annot__V1__GuidelineFeedbackEvent *ev, char *errstr, size_t errlen) {
    const Annot__V1__GuidelineFeedback *f = ev->feedback;
    if (f == NULL) {
        snprintf(errstr, errlen, "feedback is missing");
        return -1;
    }
    if (f->kind == ANNOT__V1__FEEDBACK_KIND__FEEDBACK_KIND_UNSPECIFIED) {
        snprintf(errstr, errlen, "feedback.kind is unset");
        return -1;
    }
    int64_t ts = event_time(c, ev->created_at_ms);
    if (need_time(ts, "created_at_ms", errstr, errlen)) return -1;
    char kind[32], lb[SERIES_LABELS_MAX];
    const char *keys[2] = {"kind", "section"};
    const char *vals[2] = {contrib_enum_name(&annot__v1__feedback_kind__descriptor, f->kind, kind, sizeof(kind)),
                           f->section};
    if (series_labels(lb, sizeof(lb), 2, keys, vals) != 0) c->overflow = true;
    delta_t d = {0};
    d.c[0] = 1;
    emit(c, METRIC_HOTSPOT, ts, lb, &d);
    emit(c, METRIC_HOTSPOT, ts, labels1(c, lb, sizeof(lb), "section", f->section), &d);
    return 0;
}

/* Funnel counts go to the cohort's day and all time. */
static int funnel(contrib_t *c, const char *cohort_day, Annot__V1__FunnelStage stage, const delta_t *d,
                  char *errstr, size_t errlen) {
    window_t wins[2];
    if (window_of_day(cohort_day, &wins[0]) != 0) {
        snprintf(errstr, errlen, "cohort day '%s' is not YYYY-MM-DD", cohort_day);
        return -1;
    }
    wins[1] = window_of(WINDOW_ALL, 0);
    char sn[32], lb[SERIES_LABELS_MAX];
    labels1(c, lb, sizeof(lb), "stage", contrib_enum_name(&annot__v1__funnel_stage__descriptor, stage, sn, sizeof(sn)));
    emit_windows(c, METRIC_FUNNEL, wins, 2, lb, d);
    return 0;
}

int contrib_candidate(contrib_t *c, const Annot__V1__CandidateEvent *ev, const contrib_entry_t *entry,
                      char *errstr, size_t errlen) {
    char day[11];
    delta_t d = {0};
    switch (ev->event_case) {
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED: {
        /* Applying is the funnel's first stage; the funnel's StageEntered
         * events count the stages after it. */
        const Annot__V1__CandidateApplied *a = ev->applied;
        const char *cohort = a->cohort_day;
        if (cohort[0] == '\0') {
            int64_t ts = event_time(c, a->applied_at_ms);
            if (need_time(ts, "applied.applied_at_ms", errstr, errlen)) return -1;
            window_day_string(ts, day);
            cohort = day;
        }
        d.c[0] = 1;
        return funnel(c, cohort, ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_APPLIED, &d, errstr, errlen);
    }
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_ENTERED: {
        const Annot__V1__StageEntered *s = ev->stage_entered;
        if (s->stage == ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_APPLIED) return 0; /* counted from CandidateApplied */
        if (s->stage == ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_UNSPECIFIED) {
            snprintf(errstr, errlen, "stage_entered.stage is unset");
            return -1;
        }
        const char *cohort = s->cohort_day[0] ? s->cohort_day : entry && entry->cohort_day[0] ? entry->cohort_day : NULL;
        if (cohort == NULL) {
            int64_t ts = event_time(c, s->entered_at_ms);
            if (need_time(ts, "stage_entered.entered_at_ms", errstr, errlen)) return -1;
            window_day_string(ts, day);
            cohort = day;
        }
        d.c[0] = 1;
        return funnel(c, cohort, s->stage, &d, errstr, errlen);
    }
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_DECIDED: {
        const Annot__V1__StageDecided *s = ev->stage_decided;
        if (s->stage == ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_UNSPECIFIED) {
            snprintf(errstr, errlen, "stage_decided.stage is unset");
            return -1;
        }
        int64_t ts = event_time(c, s->decided_at_ms);
        if (need_time(ts, "stage_decided.decided_at_ms", errstr, errlen)) return -1;
        const char *cohort = entry && entry->cohort_day[0] ? entry->cohort_day : NULL;
        if (cohort == NULL) {
            /* Decided without a recorded entry (its events were lost or came
             * from before this service): the decision's day stands in. */
            window_day_string(ts, day);
            cohort = day;
        }
        d.c[s->passed ? 1 : 2] = 1;
        if (entry && entry->entered_at_ms > 0 && ts >= entry->entered_at_ms) {
            d.c[3] = 1;
            d.sum = (double)(ts - entry->entered_at_ms);
        }
        return funnel(c, cohort, s->stage, &d, errstr, errlen);
    }
    case ANNOT__V1__CANDIDATE_EVENT__EVENT__NOT_SET:
        snprintf(errstr, errlen, "candidate event has no event set");
        return -1;
    default:
        return 0; /* screening, training and exam-case details: not metrics */
    }
}

int contrib_annotator(contrib_t *c, const Annot__V1__AnnotatorStatusEvent *ev, char *errstr, size_t errlen) {
    if (ev->status == ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_UNSPECIFIED) {
        snprintf(errstr, errlen, "status is unset");
        return -1;
    }
    int64_t ts = event_time(c, ev->changed_at_ms);
    if (need_time(ts, "changed_at_ms", errstr, errlen)) return -1;
    char sn[32], lb[SERIES_LABELS_MAX];
    labels1(c, lb, sizeof(lb), "status",
            contrib_enum_name(&annot__v1__annotator_status__descriptor, ev->status, sn, sizeof(sn)));
    emit_count(c, METRIC_ANNOTATORS, ts, lb, 0);
    return 0;
}

