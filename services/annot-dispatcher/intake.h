/* intake: the dispatcher's consumer of the tasks and validation-assignments
 * topics.  Each task is recorded in PostgreSQL (idempotent on task_id) and
 * queued in Redis in its queue: production and golden tasks in the pool of
 * their locale and first skill, exam cases in their candidate's own queue,
 * validation assignments in their validator's own queue (marked with the
 * author, whom the lease script never hands them to).  Runs in the pipeline
 * (common/pipeline.h) on a thread of its own with its own connections;
 * a task is recorded in the pipeline's transaction and queued in Redis by
 * intake_drain after that commit. */
#ifndef DISPATCHER_INTAKE_H
#define DISPATCHER_INTAKE_H

#include <jansson.h>

#include "annot/v1/task.pb-c.h"
#include "leases.h"
#include "pipeline.h"

typedef struct intake {
    lease_store_t *leases;
    /* Messages are told apart by their topic. */
    const char *assignments_topic, *candidates_topic, *annotators_topic;
} intake_t;

/* Queues in Redis the tasks recorded but not yet queued (only committed
 * rows are seen, so nothing can be leased before its row is visible).
 * Returns how many were queued, or -1 with errstr (the rest stay for the
 * next call). */
long intake_drain(intake_t *in, pg_t *pg, char *errstr, size_t errlen);

/* The pipeline's apply for TaskEvents, ValidationAssignmentEvents, and the
 * CandidateEvents and AnnotatorStatusEvents of people.h. */
pipeline_result_t intake_apply(void *opaque, pipeline_ctx_t *ctx, const rd_kafka_message_t *rkm,
                               const Annot__V1__EventHeader *hdr, char *errstr, size_t errlen);

#endif
