/* assigner: the annot-assigner's effects, applied in the common pipeline's
 * transaction (or, for the main loop's sweeps, in one of their own), with
 * every ValidationAssignmentEvent written to the outbox in that same
 * transaction.
 *
 *   checks topic              a checked submission gets its validator (two,
 *                             blind, when assign_double says so);
 *   annotators topic          the roster (role validator) and authors'
 *                             standing (probation);
 *   validation-results topic  an assignment is done; its validator active;
 *   leases topic              validation leases: the validator is active;
 *                             a parked assignment (its lease expired
 *                             lease.validation.max.attempts times) goes to
 *                             someone else.
 * Sweeps: open (never leased) assignments of validators inactive for
 * assigner.inactive.after.ms go to someone else; slots nobody was eligible
 * for are tried again.
 *
 * A reassignment carries replaces_assignment_id: the dispatcher takes the
 * old one out of its validator's queue, or drops the new one when the old
 * one's verdict is already in. */
#ifndef ASSIGNER_ASSIGNER_H
#define ASSIGNER_ASSIGNER_H

#include "assign_policy.h"
#include "leases.h"
#include "metrics.h"
#include "pg.h"
#include "pipeline.h"
#include "service.h"

typedef struct assigner {
    service_t *svc;
    assign_policy_t policy;
    assign_conflict_t *conflicts;
    size_t nconflicts;
    char *conflicts_text; /* backs conflicts */
    int64_t recent_window_ms;
    lease_store_t *leases; /* the dispatcher's queues, for validator load */
    const char *topic;     /* validation-assignments */
    metrics_series_t *m_assigned, *m_double, *m_reassigned, *m_unassigned;
} assigner_t;

/* Reads "validator_id author_id" pairs, one per line (# comments); -1 with
 * errstr naming the line. */
int assigner_conflicts_load(assigner_t *a, const char *path, char *errstr, size_t errlen);

/* The pipeline's apply for all four topics. */
pipeline_result_t assigner_apply(void *opaque, pipeline_ctx_t *ctx, const rd_kafka_message_t *rkm,
                                 const Annot__V1__EventHeader *hdr, char *errstr, size_t errlen);

/* The sweeps, each in its own transaction on pg.  Return how many
 * assignments they made, or -1 with errstr. */
long assigner_sweep_inactive(assigner_t *a, pg_t *pg, char *errstr, size_t errlen);
long assigner_retry_unassigned(assigner_t *a, pg_t *pg, char *errstr, size_t errlen);

#endif
