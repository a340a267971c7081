/* assign_policy: see assign_policy.h. */
#include "assign_policy.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "lease_policy.h"

int assign_policy_from_config(assign_policy_t *p, const config_t *cfg, char *errstr, size_t errlen) {
    memset(p, 0, sizeof(*p));
    p->w_load = config_double(cfg, "assigner.weight.load");
    p->w_recent = config_double(cfg, "assigner.weight.recent");
    p->inactive_after_ms = config_int(cfg, "assigner.inactive.after.ms");
    p->double_share = config_double(cfg, "assigner.double.share");
    p->first_k = (int)config_int(cfg, "assigner.double.first.k");
    p->double_exam = config_bool(cfg, "assigner.double.exam");
    const char *skill = config_str(cfg, "assigner.exam.skill");
    if (!lease_policy_name_valid(skill) || strlen(skill) >= sizeof(p->exam_skill)) {
        snprintf(errstr, errlen, "config key 'assigner.exam.skill': not a skill name ('%s')", skill);
        return -1;
    }
    snprintf(p->exam_skill, sizeof(p->exam_skill), "%s", skill);
    return 0;
}

bool assign_same_language(const char *a, const char *b) {
    for (;; a++, b++) {
        bool ea = *a == '\0' || *a == '-', eb = *b == '\0' || *b == '-';
        if (ea || eb) return ea && eb;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
    }
}

static bool has_skill(const assign_validator_t *v, const char *skill) {
    for (size_t i = 0; i < v->nskills; i++)
        if (strcmp(v->skills[i], skill) == 0) return true;
    return false;
}

assign_eligibility_t assign_eligible(const assign_policy_t *p, const assign_validator_t *v, const assign_request_t *r,
                                     const assign_conflict_t *conflicts, size_t nconflicts) {
    if (strcmp(v->id, r->author_id) == 0) return ASSIGN_NOT_AUTHOR;
    for (size_t i = 0; i < nconflicts; i++)
        if (strcmp(conflicts[i].validator_id, v->id) == 0 && strcmp(conflicts[i].author_id, r->author_id) == 0)
            return ASSIGN_NOT_CONFLICT;
    for (size_t i = 0; i < r->nexclude; i++)
        if (strcmp(r->exclude[i], v->id) == 0) return ASSIGN_NOT_EXCLUDED;
    if (v->suspended) return ASSIGN_NOT_SUSPENDED;
    if (p->inactive_after_ms > 0 && r->now_ms - v->last_active_ms > p->inactive_after_ms) return ASSIGN_NOT_INACTIVE;
    if (!assign_same_language(v->locale, r->locale)) return ASSIGN_NOT_LANGUAGE;
    if (r->exam) return has_skill(v, p->exam_skill) ? ASSIGN_OK : ASSIGN_NOT_SKILL;
    for (size_t i = 0; i < r->nskills; i++)
        if (has_skill(v, r->skills[i])) return ASSIGN_OK;
    return ASSIGN_NOT_SKILL;
}

double assign_cost(const assign_policy_t *p, const assign_validator_t *v) {
    return p->w_load * (double)(v->open_leases + v->queued) + p->w_recent * (double)v->recent;
}

/* The tie-break: SipHash-2-4 (libsodium) of "submission\nvalidator" under a
 * fixed key, so every process computes the same order. */
static uint64_t tie_hash(const char *submission_id, const char *validator_id) {
    static const unsigned char key[crypto_shorthash_KEYBYTES] = "annot-assigner-1";
    unsigned char in[2 * LEASE_ID_MAX + 2], out[crypto_shorthash_BYTES];
    int n = snprintf((char *)in, sizeof(in), "%s\n%s", submission_id, validator_id);
    crypto_shorthash(out, in, (unsigned long long)(n < (int)sizeof(in) ? n : (int)sizeof(in) - 1), key);
    uint64_t h;
    memcpy(&h, out, sizeof(h));
    return h;
}

long assign_pick(const assign_policy_t *p, const assign_validator_t *vs, size_t n, const assign_request_t *r,
                 const assign_conflict_t *conflicts, size_t nconflicts) {
    long best = -1;
    double best_cost = 0;
    uint64_t best_hash = 0;
    for (size_t i = 0; i < n; i++) {
        if (assign_eligible(p, &vs[i], r, conflicts, nconflicts) != ASSIGN_OK) continue;
        double c = assign_cost(p, &vs[i]);
        uint64_t h = tie_hash(r->submission_id, vs[i].id);
        if (best < 0 || c < best_cost || (c == best_cost && h < best_hash)) {
            best = (long)i;
            best_cost = c;
            best_hash = h;
        }
    }
    return best;
}

bool assign_double(const assign_policy_t *p, const char *submission_id, bool exam, bool author_on_probation,
                   long long author_submissions) {
    if (exam) return p->double_exam;
    if (author_on_probation || author_submissions < p->first_k) return true;
    /* The share by hash: the same submission always decides the same way. */
    uint64_t h = tie_hash(submission_id, "double");
    return (double)(h >> 11) / (double)(1ULL << 53) < p->double_share;
}
