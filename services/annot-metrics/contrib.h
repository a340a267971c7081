/* contrib: what each input event adds to which metric series.  Pure: the
 * decoded event (and, where a metric needs an earlier event, the state the
 * caller looked up in PostgreSQL) in, additive contributions into a
 * series_batch_t out.  Every contribution goes to the event's hour, its day
 * and all time (the funnel: its cohort's day and all time), each both under
 * the event's guideline version and under "" (all versions).
 *
 * Metrics and their counters (docs/METRICS.md is the analysts' version):
 *
 *   quality.level            {} {annotator} {locale} {task_kind}: validation
 *                            results of annotators' work (exam work counts
 *                            in the funnel instead).  c0 validated, c1
 *                            accepted, c2 rejected, c3 critical errors, sum
 *                            = sum of scores.
 *   funnel.stage             {stage}, window = cohort day: c0 entered, c1
 *                            passed, c2 failed, c3 decisions with a known
 *                            entry time, sum = their time in stage (ms).
 *   throughput               {step}: c0 items (imported, submitted, checked,
 *                            assigned, validated).
 *   latency_ms               {step}: distribution; submitted: task created
 *                            -> submitted; checked, assigned, validated:
 *                            submitted -> that step; end_to_end: task
 *                            created -> validated.
 *   lease.health             {queue}: c0 granted, c1 expired, c2 released
 *                            (holder or revoked), c3 ended by a submission,
 *                            c4 parked, c5 heartbeats.
 *   lease.time_to_submit_ms  {queue}: distribution, leased -> submitted.
 *   lease.heartbeat_gap_ms   {queue}: distribution, time between a lease's
 *                            heartbeats seen (from the grant for the first).
 *   validator.agreement      {} {validator}: c0 complete pairs, c1 agreed,
 *                            c2..c5 the confusion table aa, ar, ra, rr
 *                            (first rater = the earlier verdict overall; the
 *                            validator named in the labels per validator),
 *                            sum = sum of |score difference|.
 *   autocheck.precision      {} {rule}: c0 flagged by the checker, c1 of
 *                            those also recorded by the validator, c2
 *                            recorded by the validator and not flagged
 *                            (checker categories only).
 *   guideline.hotspot        {kind,section}: c0 feedback items; {section}:
 *                            c0 feedback items of every kind, c1 validator
 *                            errors citing the section.
 *   annotators.status        {status}: c0 annotators moved into it. */
#ifndef METRICS_CONTRIB_H
#define METRICS_CONTRIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annot/v1/annotator.pb-c.h"
#include "annot/v1/candidate.pb-c.h"
#include "annot/v1/check.pb-c.h"
#include "annot/v1/feedback.pb-c.h"
#include "annot/v1/lease.pb-c.h"
#include "annot/v1/submission.pb-c.h"
#include "annot/v1/task.pb-c.h"
#include "annot/v1/validation.pb-c.h"
#include "series.h"

#define METRIC_QUALITY "quality.level"
#define METRIC_FUNNEL "funnel.stage"
#define METRIC_THROUGHPUT "throughput"
#define METRIC_LATENCY "latency_ms"
#define METRIC_LEASE "lease.health"
#define METRIC_TIME_TO_SUBMIT "lease.time_to_submit_ms"
#define METRIC_HEARTBEAT_GAP "lease.heartbeat_gap_ms"
#define METRIC_AGREEMENT "validator.agreement"
#define METRIC_PRECISION "autocheck.precision"
#define METRIC_HOTSPOT "guideline.hotspot"
#define METRIC_ANNOTATORS "annotators.status"

/* Whether an error category is one the checker can flag (taxonomy). */
typedef bool (*contrib_checker_rule_fn)(void *opaque, const char *category);

typedef struct contrib {
    series_batch_t *batch;
    const char *gv;              /* the event's header.guideline_version */
    int64_t occurred_at_ms;      /* header.occurred_at_ms: the time when the event has none of its own */
    contrib_checker_rule_fn checker_rule;
    void *checker_opaque;
    bool overflow; /* set when a label value did not fit SERIES_LABELS_MAX: the event must be refused */
} contrib_t;

/* The last heartbeat (or the grant) seen of a lease. */
typedef struct contrib_beat {
    int64_t at_ms;
    uint32_t count; /* heartbeat_count then; 0 for the grant */
} contrib_beat_t;

/* The other verdict of a double-validation pair, recorded earlier. */
typedef struct contrib_half {
    const char *validator_id;
    Annot__V1__Verdict verdict;
    double score;
} contrib_half_t;

/* A candidate's entry into the stage being decided, as recorded. */
typedef struct contrib_entry {
    int64_t entered_at_ms; /* 0 when unknown */
    const char *cohort_day; /* "" when unknown */
} contrib_entry_t;

/* Each returns 0, or -1 with errstr naming the missing or bad field (the
 * event is then dead-lettered and adds nothing). */
int contrib_task(contrib_t *c, const Annot__V1__TaskEvent *ev, char *errstr, size_t errlen);
/* prev: the lease's last beat for a heartbeat event (NULL when unknown: no
 * gap is measured). */
int contrib_lease(contrib_t *c, const Annot__V1__LeaseEvent *ev, const contrib_beat_t *prev, char *errstr,
                  size_t errlen);
int contrib_submission(contrib_t *c, const Annot__V1__SubmissionEvent *ev, char *errstr, size_t errlen);
int contrib_check(contrib_t *c, const Annot__V1__CheckResultEvent *ev, char *errstr, size_t errlen);
int contrib_assignment(contrib_t *c, const Annot__V1__ValidationAssignmentEvent *ev, char *errstr, size_t errlen);
/* other: the pair's other verdict when this one completes a pair, else NULL. */
int contrib_validation(contrib_t *c, const Annot__V1__ValidationResultEvent *ev, const contrib_half_t *other,
                       char *errstr, size_t errlen);
int contrib_feedback(contrib_t *c, const Annot__V1__GuidelineFeedbackEvent *ev, char *errstr, size_t errlen);
/* entry: for StageDecided, the recorded entry into that stage; for
 * StageEntered without a cohort day, entry->cohort_day is the candidate's
 * known cohort.  NULL when nothing is recorded. */
int contrib_candidate(contrib_t *c, const Annot__V1__CandidateEvent *ev, const contrib_entry_t *entry,
                      char *errstr, size_t errlen);
int contrib_annotator(contrib_t *c, const Annot__V1__AnnotatorStatusEvent *ev, char *errstr, size_t errlen);

/* Lower-case JSON spelling of an enum value without its prefix
 * (TASK_KIND_EXAM_STAGE1 -> "exam_stage1"); "unspecified" for an unknown
 * value. */
const char *contrib_enum_name(const ProtobufCEnumDescriptor *desc, int value, char *out, size_t len);

#endif
