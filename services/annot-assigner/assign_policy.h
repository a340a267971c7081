/* assign_policy: who validates a submission.  Pure: the caller gathers the
 * validators with their load and activity, this module decides.
 *
 * Eligible: a validator (not suspended), active within inactive_after_ms,
 * of the submission's language (the part of the locale before '-': an
 * en-GB validator judges en-US English), with one of the task's skills for
 * production work or the exam skill for exam work; never the author, never
 * a configured conflict of the author, never someone the caller excludes
 * (the first validator of a double pair, the validator an assignment is
 * taken from).
 *
 * Among the eligible, the lowest cost wins:
 *   cost = w_load * (open leases + queued validation tasks)
 *        + w_recent * (assignments given in the recent window)
 * and a tie goes to the lowest SipHash of (submission, validator): every
 * validator is equally likely to win ties over many submissions, and the
 * same submission always gets the same answer (replays agree).
 *
 * Double validation (two different validators, blind to each other): a
 * configured share of submissions chosen by hash, every submission of an
 * annotator among their first first_k, and every one of an annotator on
 * probation; exam work too when double_exam is set. */
#ifndef ASSIGNER_ASSIGN_POLICY_H
#define ASSIGNER_ASSIGN_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct assign_policy {
    double w_load, w_recent;
    int64_t inactive_after_ms; /* 0: activity is not required */
    double double_share;       /* 0..1 */
    int first_k;               /* an annotator's first K submissions are double validated */
    bool double_exam;
    char exam_skill[48];
} assign_policy_t;

/* The config keys (assigner.*) and their defaults, for the service's table. */
#define ASSIGN_POLICY_CONFIG_DEFS                                                                          \
    {"assigner.weight.load", CONFIG_DOUBLE, "1.0", NULL, 0, 1000, false,                                \
     "cost per open lease or queued validation task of a validator"},                                  \
    {"assigner.weight.recent", CONFIG_DOUBLE, "0.5", NULL, 0, 1000, false,                              \
     "cost per assignment given to a validator in the recent window"},                                  \
    {"assigner.inactive.after.ms", CONFIG_INT, "900000", NULL, 0, 86400000, false,                      \
     "a validator with no activity for this long gets no new work and loses unleased work (0: never)"}, \
    {"assigner.double.share", CONFIG_DOUBLE, "0.1", NULL, 0, 1, false,                                  \
     "share of production submissions validated blind by two validators"},                             \
    {"assigner.double.first.k", CONFIG_INT, "20", NULL, 0, 100000, false,                               \
     "every submission of an annotator's first K is double validated"},                                 \
    {"assigner.double.exam", CONFIG_BOOL, "false", NULL, 0, 0, false,                                   \
     "double validate exam submissions too"},                                                           \
    {"assigner.exam.skill", CONFIG_STRING, "exam", NULL, 0, 0, false,                                   \
     "the skill a validator needs to validate exam work (the exam validation pool)"}

/* Reads the keys above; -1 with errstr naming the key. */
int assign_policy_from_config(assign_policy_t *p, const config_t *cfg, char *errstr, size_t errlen);

/* One validator as the caller sees them now. */
typedef struct assign_validator {
    const char *id;
    const char *locale;
    const char *const *skills;
    size_t nskills;
    bool suspended;
    int64_t last_active_ms; /* last lease, heartbeat, verdict or roster change */
    long long open_leases, queued;
    long long recent;
} assign_validator_t;

/* A configured conflict: validator never validates author's work. */
typedef struct assign_conflict {
    const char *validator_id, *author_id;
} assign_conflict_t;

/* What is to be validated. */
typedef struct assign_request {
    const char *submission_id;
    const char *author_id;
    const char *locale;
    const char *const *skills;
    size_t nskills;
    bool exam;
    const char *const *exclude; /* validator ids that may not take it */
    size_t nexclude;
    int64_t now_ms;
} assign_request_t;

/* Why a validator is not eligible (ASSIGN_OK when they are). */
typedef enum {
    ASSIGN_OK = 0,
    ASSIGN_NOT_AUTHOR,    /* is the author */
    ASSIGN_NOT_CONFLICT,  /* configured conflict with the author */
    ASSIGN_NOT_EXCLUDED,  /* excluded by the caller */
    ASSIGN_NOT_SUSPENDED,
    ASSIGN_NOT_INACTIVE,
    ASSIGN_NOT_LANGUAGE,
    ASSIGN_NOT_SKILL,
} assign_eligibility_t;

assign_eligibility_t assign_eligible(const assign_policy_t *p, const assign_validator_t *v, const assign_request_t *r,
                                     const assign_conflict_t *conflicts, size_t nconflicts);

double assign_cost(const assign_policy_t *p, const assign_validator_t *v);

/* The index of the chosen validator, or -1 when nobody is eligible. */
long assign_pick(const assign_policy_t *p, const assign_validator_t *vs, size_t n, const assign_request_t *r,
                 const assign_conflict_t *conflicts, size_t nconflicts);

/* Whether the submission gets two validators.  author_submissions: how many
 * of the author's submissions were assigned before this one. */
bool assign_double(const assign_policy_t *p, const char *submission_id, bool exam, bool author_on_probation,
                   long long author_submissions);

/* The same language: the locales' parts before '-' are equal, ignoring
 * case ("en-GB" and "en-us"). */
bool assign_same_language(const char *a, const char *b);

#endif
