/* standing: see standing.h. */
#include "standing.h"

#include <stdio.h>
#include <string.h>

const char *standing_status_name(standing_status_t s) {
    switch (s) {
    case STANDING_ACTIVE: return "active";
    case STANDING_PROBATION: return "probation";
    case STANDING_SUSPENDED: return "suspended";
    default: return NULL;
    }
}

int standing_status_parse(const char *name, standing_status_t *s) {
    for (int i = STANDING_ACTIVE; i <= STANDING_SUSPENDED; i++) {
        if (strcmp(name, standing_status_name((standing_status_t)i)) == 0) {
            *s = (standing_status_t)i;
            return 0;
        }
    }
    return -1;
}

standing_status_t standing_evaluate(const standing_policy_t *p, standing_status_t current, const double *scores,
                                    size_t n, double *quality, unsigned *count, char *reason, size_t len) {
    size_t k = n < p->window ? n : p->window;
    double sum = 0;
    for (size_t i = 0; i < k; i++) sum += scores[i];
    *quality = k ? sum / (double)k : 0.0;
    *count = (unsigned)k;
    if (current == STANDING_NONE) current = STANDING_ACTIVE;
    if (current == STANDING_SUSPENDED) {
        snprintf(reason, len, "suspended until retrained");
        return current;
    }
    if (k < p->min_count || k == 0) {
        snprintf(reason, len, "%zu of %u validated submissions needed before judging", k, p->min_count);
        return current;
    }
    if (*quality < p->suspension) {
        snprintf(reason, len, "rolling quality %.2f < suspension %.2f", *quality, p->suspension);
        return STANDING_SUSPENDED;
    }
    if (*quality < p->probation) {
        snprintf(reason, len, "rolling quality %.2f < probation %.2f", *quality, p->probation);
        return STANDING_PROBATION;
    }
    snprintf(reason, len, "rolling quality %.2f >= probation %.2f", *quality, p->probation);
    return STANDING_ACTIVE;
}

bool standing_reinstate_due(const standing_policy_t *p, standing_status_t current, int64_t suspended_at_ms,
                            int64_t now_ms) {
    return current == STANDING_SUSPENDED && p->retraining_ms > 0 && now_ms - suspended_at_ms >= p->retraining_ms;
}
