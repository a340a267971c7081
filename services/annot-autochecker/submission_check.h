/* submission_check: turns a SubmissionEvent into a CheckResultEvent with the
 * guideline rule library (common/check.h).  Pure: no I/O, so the service's
 * apply and the tests share it. */
#ifndef SUBMISSION_CHECK_H
#define SUBMISSION_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "annot/v1/check.pb-c.h"
#include "annot/v1/submission.pb-c.h"
#include "check.h"
#include "event.h"

/* What a check produced, besides the findings. */
typedef struct submission_check_out {
    uint8_t *bytes; /* packed CheckResultEvent, malloc'd: the caller frees */
    size_t len;
    char check_id[EVENT_ID_LEN]; /* derived from the submission id */
    check_kind_t kind;
} submission_check_out_t;

/* Fills task with pointers into the protobuf Task (nothing copied but the
 * components array, which submission_task_clear frees).  -1 with errstr
 * naming the field when the task cannot be checked. */
int submission_task_from_proto(const Annot__V1__Task *pt, check_task_t *task, char *errstr, size_t errlen);
void submission_task_clear(check_task_t *task);

/* Validates ev and checks its description.  On success out holds the packed
 * CheckResultEvent, whose event id derives from the input event's, so a
 * replay under the same rules emits the same bytes; result holds the
 * findings for the caller's own records.  -1 with errstr naming what is
 * wrong with the event (a dead letter, not a retry): no header, a string
 * that is not valid UTF-8, a field numbered 0, no submission or task, no
 * main object. */
int submission_check(const check_rules_t *rules, check_scratch_t *scratch,
                     const Annot__V1__SubmissionEvent *ev, const char *source, int64_t checked_at_ms,
                     check_result_t *result, submission_check_out_t *out, char *errstr, size_t errlen);

#endif
