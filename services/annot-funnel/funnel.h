/* funnel: what the annot-funnel service shares between its files: the
 * loaded configuration (policies, question bank, training, exam bank), the
 * metrics, and the context of one input being applied. */
#ifndef FUNNEL_H
#define FUNNEL_H

#include <stdint.h>

#include "exam_bank.h"
#include "funnel_machine.h"
#include "metrics.h"
#include "pg.h"
#include "pipeline.h"
#include "screening.h"
#include "service.h"
#include "standing.h"
#include "training.h"

typedef struct funnel {
    service_t *svc;
    funnel_policy_t policy;
    standing_policy_t standing;
    screening_bank_t bank;
    training_t training;
    exam_bank_t exams;
    unsigned screening_questions;
    double screening_threshold;
    int64_t screening_due_ms;
    double exam_threshold[2]; /* exam 1, exam 2 */
    funnel_timeouts_t timeouts;
    int64_t timeout_grace_ms; /* after a deadline, before the sweep acts */
    metrics_series_t *m_entered[FUNNEL_STAGE_COUNT];
    metrics_series_t *m_passed[FUNNEL_STAGE_COUNT], *m_failed[FUNNEL_STAGE_COUNT];
    metrics_series_t *m_refused, *m_status[4], *m_timed_out;
} funnel_t;

/* One input being applied: its id and time (outputs take both, so a
 * replay re-emits the same events), and where outputs go: the pipeline's
 * outbox inside its transaction, or (ctx NULL: the main loop's own
 * transactions) the outbox table directly. */
typedef struct flow {
    funnel_t *f;
    pipeline_ctx_t *ctx;
    pg_t *pg;
    const char *cause_id;
    int64_t now_ms;
    char *errstr;
    size_t errlen;
} flow_t;

/* Queues one output event for the topic of role. */
int flow_emit(flow_t *fl, const char *role, const char *key, const void *payload, size_t len);

/* The candidates topic: CandidateApplied, ScreeningSubmitted and
 * TrainingCompleted move a candidate; the funnel's own events and the
 * others are skipped. */
pipeline_result_t candidate_flow_apply(flow_t *fl, const void *payload, size_t len);
/* The validation-results topic: exam verdicts decide stages, production
 * verdicts move standing. */
pipeline_result_t results_flow_apply(flow_t *fl, const void *payload, size_t len);
/* An exam verdict (called by results_flow_apply). */
pipeline_result_t candidate_flow_exam_result(flow_t *fl, const char *candidate_id, const char *task_id, double score,
                                             unsigned critical, int64_t validated_at_ms);

/* Candidates whose stage deadline (plus the grace) has passed: a
 * StageExpired each, to the outbox, and the deadline cleared; one
 * transaction.  Returns how many, or -1 with fl->errstr. */
long candidate_flow_expire(flow_t *fl);

/* A verdict on an annotator's production submission. */
pipeline_result_t standing_flow_result(flow_t *fl, const char *annotator_id, const char *submission_id, double score,
                                       int64_t validated_at_ms);
/* An operator's request to bring a suspended annotator back on probation
 * now; refused (logged, counted, in the annotator's history) unless they
 * are suspended. */
pipeline_result_t standing_flow_reinstate_request(flow_t *fl, const char *annotator_id, const char *reason);
/* A promoted candidate's first status (in the approval's transaction). */
int standing_flow_promote(flow_t *fl, const char *annotator_id, const char *locale, const char *skills_array,
                          const char *const *skills, size_t nskills);
/* Suspended annotators whose retraining period is over come back on
 * probation; one transaction, outputs to the outbox.  Returns how many, or
 * -1 with fl->errstr. */
long standing_flow_reinstate(flow_t *fl);

#endif
