/* funnel_machine: the candidate state machine, pure (no I/O, no clock).
 *
 *   (none) --apply--> applied --start--> screening --pass--> training
 *   training --pass--> exam1 --pass--> exam2 --pass--> approved
 *   screening / exam1 / exam2 --fail--> rejected
 *   rejected --apply--> applied   (only with a retry left and after the
 *                                  cool-down)
 *
 * Everything else is illegal: funnel_step refuses it, says why, and leaves
 * the state as it was.  A pass or fail names the stage it decides, so a
 * decision that arrives late (for a stage the candidate has left) is
 * refused rather than applied to the wrong stage.  Besides the machine:
 * the stage decisions (screening score, exam mean with no critical error)
 * and the deterministic draw of questions, both pure. */
#ifndef FUNNEL_MACHINE_H
#define FUNNEL_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Numbered as annot.v1.FunnelStage, so a stage converts by a cast. */
typedef enum funnel_stage {
    FUNNEL_NONE = 0, /* not known to the funnel yet */
    FUNNEL_APPLIED = 1,
    FUNNEL_SCREENING = 2,
    FUNNEL_TRAINING = 3,
    FUNNEL_EXAM1 = 4,
    FUNNEL_EXAM2 = 5,
    FUNNEL_APPROVED = 6,
    FUNNEL_REJECTED = 7,
} funnel_stage_t;

#define FUNNEL_STAGE_COUNT 8

typedef enum funnel_input {
    FUNNEL_INPUT_APPLY = 0, /* an application (first or re-application) */
    FUNNEL_INPUT_START,     /* the application is taken: screening starts */
    FUNNEL_INPUT_PASS,      /* the stage named in the event was passed */
    FUNNEL_INPUT_FAIL,      /* the stage named in the event was failed */
} funnel_input_t;

#define FUNNEL_INPUT_COUNT 4

typedef struct funnel_policy {
    unsigned retries_max; /* re-applications allowed after rejections */
    int64_t cooldown_ms;  /* from a rejection to the earliest re-application */
} funnel_policy_t;

typedef struct funnel_state {
    funnel_stage_t stage;
    unsigned application;   /* 1 for the first application, 0 before it */
    int64_t retry_after_ms; /* rejected: earliest re-application; 0 = none left */
} funnel_state_t;

typedef struct funnel_event {
    funnel_input_t input;
    funnel_stage_t stage; /* PASS / FAIL: the stage decided */
    int64_t at_ms;        /* when it happened (the input's time) */
} funnel_event_t;

/* Applies ev to st.  0: st is the new state.  -1: illegal, st untouched,
 * why says what was refused and why. */
int funnel_step(const funnel_policy_t *policy, funnel_state_t *st, const funnel_event_t *ev, char *why, size_t len);

/* "applied", "screening", ... as the dispatcher and the schema spell them;
 * "none" for FUNNEL_NONE, NULL out of range. */
const char *funnel_stage_name(funnel_stage_t s);
/* 0, or -1 when name is not a stage. */
int funnel_stage_parse(const char *name, funnel_stage_t *s);
const char *funnel_input_name(funnel_input_t in);

/* A stage decision with its reason, as StageDecided carries it. */
typedef struct funnel_decision {
    bool passed;
    double mean_score;
    unsigned critical_errors;
    unsigned cases;
    double threshold;
    char reason[160];
} funnel_decision_t;

/* Screening: correct / total against the threshold. */
void funnel_screening_decide(unsigned correct, unsigned total, double threshold, funnel_decision_t *d);
/* Exam stage: the mean of scores[0..n) at or above threshold and no critical
 * error (critical[i] counts case i's critical errors).  n == 0 fails. */
void funnel_exam_decide(const double *scores, const unsigned *critical, size_t n, double threshold,
                        funnel_decision_t *d);

/* Stage time limits (0: none).  Screening: from entering it to answering
 * (the deadline ScreeningAssigned carries, which the dispatcher enforces
 * too).  Exams: from the cases' assignment to the candidate's last case
 * submitted; the validators' time after that is not the candidate's. */
typedef struct funnel_timeouts {
    int64_t screening_ms;
    int64_t exam_ms;
} funnel_timeouts_t;

/* The deadline of a stage entered at entered_at_ms; 0 when the stage has
 * no limit (training is acknowledged at the candidate's pace). */
int64_t funnel_stage_due(const funnel_timeouts_t *t, funnel_stage_t stage, int64_t entered_at_ms);

/* A stage's deadline has passed (due_at_ms).  Screening: unanswered, it
 * fails.  Exam: it fails when fewer than `cases` were submitted by the
 * deadline (submitted_in_time); when every case was, it is left to the
 * verdicts.  1: d is the failing decision (counted as a failed attempt:
 * the retry policy and cool-down apply); 0: nothing to decide, why says
 * so; -1: the stage has no time limit. */
int funnel_timeout_decide(funnel_stage_t stage, unsigned cases, unsigned submitted_in_time, int64_t due_at_ms,
                          funnel_decision_t *d, char *why, size_t len);

/* Draws k distinct indexes of 0..n-1 into out, in draw order, from seed
 * alone (the same seed gives the same draw on every machine).  -1 when
 * k > n or out of memory. */
int funnel_draw(const char *seed, size_t n, size_t k, size_t *out);

#endif
