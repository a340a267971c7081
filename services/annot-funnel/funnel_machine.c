/* funnel_machine: see funnel_machine.h. */
#include "funnel_machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const stage_names[FUNNEL_STAGE_COUNT] = {
    "none", "applied", "screening", "training", "exam1", "exam2", "approved", "rejected",
};

const char *funnel_stage_name(funnel_stage_t s) {
    return (unsigned)s < FUNNEL_STAGE_COUNT ? stage_names[s] : NULL;
}

int funnel_stage_parse(const char *name, funnel_stage_t *s) {
    for (unsigned i = 0; i < FUNNEL_STAGE_COUNT; i++) {
        if (strcmp(name, stage_names[i]) == 0) {
            *s = (funnel_stage_t)i;
            return 0;
        }
    }
    return -1;
}

const char *funnel_input_name(funnel_input_t in) {
    static const char *const names[FUNNEL_INPUT_COUNT] = {"apply", "start", "pass", "fail"};
    return (unsigned)in < FUNNEL_INPUT_COUNT ? names[in] : "?";
}

/* The stage a pass leads to; FUNNEL_NONE where there is no pass. */
static funnel_stage_t next_on_pass(funnel_stage_t s) {
    switch (s) {
    case FUNNEL_SCREENING: return FUNNEL_TRAINING;
    case FUNNEL_TRAINING: return FUNNEL_EXAM1;
    case FUNNEL_EXAM1: return FUNNEL_EXAM2;
    case FUNNEL_EXAM2: return FUNNEL_APPROVED;
    default: return FUNNEL_NONE;
    }
}

/* Training is acknowledged, never failed: only the scored stages fail. */
static bool can_fail(funnel_stage_t s) { return s == FUNNEL_SCREENING || s == FUNNEL_EXAM1 || s == FUNNEL_EXAM2; }

int funnel_step(const funnel_policy_t *policy, funnel_state_t *st, const funnel_event_t *ev, char *why, size_t len) {
    const char *from = funnel_stage_name(st->stage);
    if (from == NULL || (unsigned)ev->input >= FUNNEL_INPUT_COUNT) {
        snprintf(why, len, "unknown stage or input");
        return -1;
    }
    switch (ev->input) {
    case FUNNEL_INPUT_APPLY:
        if (st->stage == FUNNEL_NONE) {
            st->stage = FUNNEL_APPLIED;
            st->application = 1;
            st->retry_after_ms = 0;
            return 0;
        }
        if (st->stage != FUNNEL_REJECTED) {
            snprintf(why, len, "apply: the candidate is in stage %s, not rejected", from);
            return -1;
        }
        if (st->retry_after_ms == 0 || st->application > policy->retries_max) {
            snprintf(why, len, "apply: no retry left (application %u, %u retr%s allowed)", st->application,
                     policy->retries_max, policy->retries_max == 1 ? "y" : "ies");
            return -1;
        }
        if (ev->at_ms < st->retry_after_ms) {
            snprintf(why, len, "apply: in cool-down until %lld (%lld ms left)", (long long)st->retry_after_ms,
                     (long long)(st->retry_after_ms - ev->at_ms));
            return -1;
        }
        st->stage = FUNNEL_APPLIED;
        st->application++;
        st->retry_after_ms = 0;
        return 0;
    case FUNNEL_INPUT_START:
        if (st->stage != FUNNEL_APPLIED) {
            snprintf(why, len, "start: the candidate is in stage %s, not applied", from);
            return -1;
        }
        st->stage = FUNNEL_SCREENING;
        return 0;
    case FUNNEL_INPUT_PASS:
    case FUNNEL_INPUT_FAIL: {
        const char *verb = funnel_input_name(ev->input), *decided = funnel_stage_name(ev->stage);
        if (decided == NULL) decided = "?";
        if (ev->stage != st->stage) {
            snprintf(why, len, "%s %s: the candidate is in stage %s", verb, decided, from);
            return -1;
        }
        if (ev->input == FUNNEL_INPUT_PASS) {
            funnel_stage_t next = next_on_pass(st->stage);
            if (next == FUNNEL_NONE) {
                snprintf(why, len, "pass %s: nothing follows stage %s", decided, from);
                return -1;
            }
            st->stage = next;
            return 0;
        }
        if (!can_fail(st->stage)) {
            snprintf(why, len, "fail %s: stage %s cannot be failed", decided, from);
            return -1;
        }
        st->stage = FUNNEL_REJECTED;
        /* retries_max re-applications: applications 1..retries_max may
         * come back, the last one may not. */
        st->retry_after_ms = 0;
        if (st->application <= policy->retries_max) {
            /* 0 means "no retry", so a retry allowed at once is at 1. */
            int64_t at = ev->at_ms + policy->cooldown_ms;
            st->retry_after_ms = at > 0 ? at : 1;
        }
        return 0;
    }
    }
    snprintf(why, len, "unknown input");
    return -1;
}

void funnel_screening_decide(unsigned correct, unsigned total, double threshold, funnel_decision_t *d) {
    memset(d, 0, sizeof(*d));
    d->threshold = threshold;
    d->cases = total;
    d->mean_score = total ? (double)correct / (double)total : 0.0;
    d->passed = total > 0 && d->mean_score >= threshold;
    snprintf(d->reason, sizeof(d->reason), "%u of %u correct: %.2f %s %.2f", correct, total, d->mean_score,
             d->passed ? ">=" : "<", threshold);
}

void funnel_exam_decide(const double *scores, const unsigned *critical, size_t n, double threshold,
                        funnel_decision_t *d) {
    memset(d, 0, sizeof(*d));
    d->threshold = threshold;
    d->cases = (unsigned)n;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        sum += scores[i];
        d->critical_errors += critical[i];
    }
    if (n == 0) {
        snprintf(d->reason, sizeof(d->reason), "no validated case");
        return;
    }
    d->mean_score = sum / (double)n;
    /* A mean is a sum divided: keep 0.9 >= 0.9 true despite rounding. */
    bool mean_ok = d->mean_score + 1e-9 >= threshold;
    d->passed = mean_ok && d->critical_errors == 0;
    if (d->critical_errors > 0)
        snprintf(d->reason, sizeof(d->reason), "%u critical error%s (mean %.2f over %zu cases)", d->critical_errors,
                 d->critical_errors == 1 ? "" : "s", d->mean_score, n);
    else
        snprintf(d->reason, sizeof(d->reason), "mean %.2f %s %.2f over %zu cases", d->mean_score,
                 mean_ok ? ">=" : "<", threshold, n);
}

int64_t funnel_stage_due(const funnel_timeouts_t *t, funnel_stage_t stage, int64_t entered_at_ms) {
    int64_t limit = 0;
    if (stage == FUNNEL_SCREENING) limit = t->screening_ms;
    else if (stage == FUNNEL_EXAM1 || stage == FUNNEL_EXAM2) limit = t->exam_ms;
    return limit > 0 ? entered_at_ms + limit : 0;
}

int funnel_timeout_decide(funnel_stage_t stage, unsigned cases, unsigned submitted_in_time, int64_t due_at_ms,
                          funnel_decision_t *d, char *why, size_t len) {
    memset(d, 0, sizeof(*d));
    if (stage == FUNNEL_SCREENING) {
        snprintf(d->reason, sizeof(d->reason), "timed out: screening not answered by %lld", (long long)due_at_ms);
        return 1;
    }
    if (stage != FUNNEL_EXAM1 && stage != FUNNEL_EXAM2) {
        snprintf(why, len, "stage %s has no time limit", funnel_stage_name(stage) ? funnel_stage_name(stage) : "?");
        return -1;
    }
    if (cases > 0 && submitted_in_time >= cases) {
        snprintf(why, len, "%s: all %u cases submitted by %lld; the verdicts decide", funnel_stage_name(stage), cases,
                 (long long)due_at_ms);
        return 0;
    }
    d->cases = cases;
    snprintf(d->reason, sizeof(d->reason), "timed out: %u of %u cases submitted by %lld", submitted_in_time, cases,
             (long long)due_at_ms);
    return 1;
}

/* FNV-1a of the seed, then splitmix64: small, portable, and the same
 * everywhere (rand() is not). */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

int funnel_draw(const char *seed, size_t n, size_t k, size_t *out) {
    if (k > n) return -1;
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *c = (const unsigned char *)seed; *c; c++) h = (h ^ *c) * 1099511628211ULL;
    /* A partial Fisher-Yates: the first k positions of a shuffle. */
    size_t *perm = malloc((n ? n : 1) * sizeof(*perm));
    if (perm == NULL) return -1;
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = 0; i < k; i++) {
        size_t j = i + (size_t)(splitmix64(&h) % (uint64_t)(n - i));
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        out[i] = perm[i];
    }
    free(perm);
    return 0;
}
