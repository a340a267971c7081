/* lease_event: see lease_event.h. */
#include "lease_event.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
    [LEASE_EVENT_GRANTED] = "granted",   [LEASE_EVENT_HEARTBEAT] = "heartbeat",
    [LEASE_EVENT_EXPIRED] = "expired",   [LEASE_EVENT_RELEASED] = "released",
    [LEASE_EVENT_PARKED] = "parked",
};

static const char *const why_names[] = {
    [LEASE_WHY_HOLDER] = "holder",
    [LEASE_WHY_SUBMITTED] = "submitted",
    [LEASE_WHY_REVOKED] = "revoked",
    [LEASE_WHY_MAX_ATTEMPTS] = "max_attempts",
};

/* The value of field name among the pairs, or NULL. */
static const char *field(const char *const *kv, const size_t *lens, size_t n, const char *name, size_t *len) {
    for (size_t i = 0; i + 1 < n; i += 2) {
        if (strcmp(kv[i], name) == 0) {
            *len = lens[i + 1];
            return kv[i + 1];
        }
    }
    return NULL;
}

static int get_str(const char *const *kv, const size_t *lens, size_t n, const char *name, char *out,
                   size_t outlen, bool required, char *errstr, size_t errlen) {
    size_t len = 0;
    const char *v = field(kv, lens, n, name, &len);
    if (v == NULL || (required && len == 0) || len >= outlen || memchr(v, '\0', len) != NULL) {
        snprintf(errstr, errlen, "lease event field '%s' is %s", name, v == NULL ? "missing" : "malformed");
        return -1;
    }
    memcpy(out, v, len);
    out[len] = '\0';
    return 0;
}

static int get_int(const char *const *kv, const size_t *lens, size_t n, const char *name, int64_t min,
                   int64_t max, int64_t *out, char *errstr, size_t errlen) {
    char buf[32];
    if (get_str(kv, lens, n, name, buf, sizeof(buf), true, errstr, errlen) != 0) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        snprintf(errstr, errlen, "lease event field '%s' is malformed", name);
        return -1;
    }
    *out = v;
    return 0;
}

static int get_name(const char *const *kv, const size_t *lens, size_t n, const char *name,
                    const char *const *names, int first, int last, int *out, char *errstr, size_t errlen) {
    char buf[32];
    if (get_str(kv, lens, n, name, buf, sizeof(buf), true, errstr, errlen) != 0) return -1;
    for (int i = first; i <= last; i++) {
        if (strcmp(buf, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    snprintf(errstr, errlen, "lease event field '%s' has an unknown value", name);
    return -1;
}

int lease_event_parse(const char *const *kv, const size_t *lens, size_t n, lease_event_rec_t *rec,
                      char *errstr, size_t errlen) {
    memset(rec, 0, sizeof(*rec));
    int kind = 0, why = 0;
    int64_t v;
    if (get_name(kv, lens, n, "k", kind_names, LEASE_EVENT_GRANTED, LEASE_EVENT_PARKED, &kind, errstr, errlen) != 0 ||
        get_str(kv, lens, n, "l", rec->lease_id, sizeof(rec->lease_id), true, errstr, errlen) != 0 ||
        get_str(kv, lens, n, "t", rec->task_id, sizeof(rec->task_id), true, errstr, errlen) != 0 ||
        get_str(kv, lens, n, "h", rec->holder_id, sizeof(rec->holder_id), false, errstr, errlen) != 0)
        return -1;
    rec->kind = (lease_event_kind_t)kind;
    /* Tokens and times travel as Lua numbers: exact up to 2^53. */
    const int64_t exact = (int64_t)1 << 53;
    if (get_int(kv, lens, n, "f", 0, exact, &v, errstr, errlen) != 0) return -1;
    rec->fence = (uint64_t)v;
    if (get_int(kv, lens, n, "a", 0, UINT32_MAX, &v, errstr, errlen) != 0) return -1;
    rec->attempt = (uint32_t)v;
    if (get_int(kv, lens, n, "at", 0, exact, &rec->at_ms, errstr, errlen) != 0) return -1;

    switch (rec->kind) {
    case LEASE_EVENT_GRANTED:
        if (get_int(kv, lens, n, "exp", 0, exact, &rec->expires_at_ms, errstr, errlen) != 0 ||
            get_int(kv, lens, n, "ttl", 0, exact, &rec->ttl_ms, errstr, errlen) != 0 ||
            get_int(kv, lens, n, "qw", 0, exact, &rec->queue_wait_ms, errstr, errlen) != 0)
            return -1;
        break;
    case LEASE_EVENT_HEARTBEAT:
        if (get_int(kv, lens, n, "exp", 0, exact, &rec->expires_at_ms, errstr, errlen) != 0 ||
            get_int(kv, lens, n, "n", 1, UINT32_MAX, &v, errstr, errlen) != 0)
            return -1;
        rec->count = (uint32_t)v;
        break;
    case LEASE_EVENT_EXPIRED:
        if (get_int(kv, lens, n, "exp", 0, exact, &rec->expires_at_ms, errstr, errlen) != 0) return -1;
        if (get_int(kv, lens, n, "rq", 0, 1, &v, errstr, errlen) != 0) return -1;
        rec->requeued = v == 1;
        if (get_int(kv, lens, n, "ma", 0, UINT32_MAX, &v, errstr, errlen) != 0) return -1;
        rec->max_attempts = (uint32_t)v;
        if (get_int(kv, lens, n, "n", 1, UINT32_MAX, &v, errstr, errlen) != 0) return -1;
        rec->count = (uint32_t)v;
        break;
    case LEASE_EVENT_RELEASED:
        if (get_name(kv, lens, n, "why", why_names, LEASE_WHY_HOLDER, LEASE_WHY_REVOKED, &why, errstr, errlen) != 0 ||
            get_int(kv, lens, n, "rq", 0, 1, &v, errstr, errlen) != 0)
            return -1;
        rec->why = (lease_event_why_t)why;
        rec->requeued = v == 1;
        break;
    case LEASE_EVENT_PARKED:
        if (get_name(kv, lens, n, "why", why_names, LEASE_WHY_MAX_ATTEMPTS, LEASE_WHY_MAX_ATTEMPTS, &why, errstr,
                     errlen) != 0 ||
            get_int(kv, lens, n, "n", 1, UINT32_MAX, &v, errstr, errlen) != 0)
            return -1;
        rec->why = (lease_event_why_t)why;
        rec->count = (uint32_t)v;
        break;
    }
    return 0;
}

static Annot__V1__Queue queue_proto(lease_queue_t q) {
    switch (q) {
    case LEASE_QUEUE_ANNOTATION: return ANNOT__V1__QUEUE__QUEUE_ANNOTATION;
    case LEASE_QUEUE_EXAM: return ANNOT__V1__QUEUE__QUEUE_EXAM;
    case LEASE_QUEUE_VALIDATION: return ANNOT__V1__QUEUE__QUEUE_VALIDATION;
    }
    return ANNOT__V1__QUEUE__QUEUE_UNSPECIFIED;
}

static Annot__V1__ReleaseReason release_reason(lease_event_why_t why) {
    switch (why) {
    case LEASE_WHY_HOLDER: return ANNOT__V1__RELEASE_REASON__RELEASE_REASON_HOLDER;
    case LEASE_WHY_SUBMITTED: return ANNOT__V1__RELEASE_REASON__RELEASE_REASON_SUBMITTED;
    case LEASE_WHY_REVOKED: return ANNOT__V1__RELEASE_REASON__RELEASE_REASON_REVOKED;
    default: return ANNOT__V1__RELEASE_REASON__RELEASE_REASON_UNSPECIFIED;
    }
}

void lease_event_build(lease_event_msg_t *m, const lease_event_rec_t *rec, lease_queue_t q,
                       const lease_event_subject_t *subject, const char *source) {
    memset(m, 0, sizeof(*m));
    annot__v1__lease_event__init(&m->ev);
    /* One id per thing that can happen to a lease once; heartbeats by
     * number. */
    char purpose[48];
    if (rec->kind == LEASE_EVENT_HEARTBEAT)
        snprintf(purpose, sizeof(purpose), "lease-heartbeat:%u", rec->count);
    else
        snprintf(purpose, sizeof(purpose), "lease-%s", kind_names[rec->kind]);
    event_id_derive(m->event_id, rec->lease_id, purpose);
    event_header_fill(&m->header, m->event_id, source, NULL, NULL);
    m->header.occurred_at_ms = rec->at_ms;
    m->ev.header = &m->header;
    m->ev.lease_id = (char *)rec->lease_id;
    m->ev.task_id = (char *)rec->task_id;
    m->ev.queue = queue_proto(q);
    m->ev.holder_id = (char *)rec->holder_id;
    m->ev.fencing_token = rec->fence;
    m->ev.attempt = rec->attempt;
    if (q == LEASE_QUEUE_VALIDATION) {
        m->ev.assignment_id = (char *)rec->task_id;
        if (subject != NULL && subject->task_id != NULL) m->ev.task_id = (char *)subject->task_id;
        if (subject != NULL && subject->submission_id != NULL) m->ev.submission_id = (char *)subject->submission_id;
    }
    switch (rec->kind) {
    case LEASE_EVENT_GRANTED:
        annot__v1__lease_granted__init(&m->granted);
        m->granted.granted_at_ms = rec->at_ms;
        m->granted.expires_at_ms = rec->expires_at_ms;
        m->granted.ttl_ms = rec->ttl_ms;
        m->granted.queue_wait_ms = rec->queue_wait_ms;
        m->ev.event_case = ANNOT__V1__LEASE_EVENT__EVENT_GRANTED;
        m->ev.granted = &m->granted;
        break;
    case LEASE_EVENT_HEARTBEAT:
        annot__v1__lease_heartbeat__init(&m->heartbeat);
        m->heartbeat.heartbeat_at_ms = rec->at_ms;
        m->heartbeat.expires_at_ms = rec->expires_at_ms;
        m->heartbeat.heartbeat_count = rec->count;
        m->ev.event_case = ANNOT__V1__LEASE_EVENT__EVENT_HEARTBEAT;
        m->ev.heartbeat = &m->heartbeat;
        break;
    case LEASE_EVENT_EXPIRED:
        annot__v1__lease_expired__init(&m->expired);
        m->expired.expires_at_ms = rec->expires_at_ms;
        m->expired.detected_at_ms = rec->at_ms;
        m->expired.requeued = rec->requeued;
        m->expired.max_attempts = rec->max_attempts;
        m->ev.event_case = ANNOT__V1__LEASE_EVENT__EVENT_EXPIRED;
        m->ev.expired = &m->expired;
        break;
    case LEASE_EVENT_RELEASED:
        annot__v1__lease_released__init(&m->released);
        m->released.released_at_ms = rec->at_ms;
        m->released.reason = release_reason(rec->why);
        m->released.requeued = rec->requeued;
        if (rec->why == LEASE_WHY_REVOKED) m->released.detail = "queues rebuilt from PostgreSQL";
        m->ev.event_case = ANNOT__V1__LEASE_EVENT__EVENT_RELEASED;
        m->ev.released = &m->released;
        break;
    case LEASE_EVENT_PARKED:
        annot__v1__task_parked__init(&m->parked);
        m->parked.parked_at_ms = rec->at_ms;
        m->parked.reason = ANNOT__V1__PARK_REASON__PARK_REASON_MAX_ATTEMPTS;
        snprintf(m->reason_text, sizeof(m->reason_text), "%u leases expired", rec->count);
        m->parked.reason_text = m->reason_text;
        m->parked.attempts = rec->count;
        m->ev.event_case = ANNOT__V1__LEASE_EVENT__EVENT_PARKED;
        m->ev.parked = &m->parked;
        break;
    }
}

const char *lease_event_key(const lease_event_msg_t *m) {
    return m->ev.task_id;
}
