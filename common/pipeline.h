/* pipeline: the consume -> apply -> produce loop every consuming service
 * runs, with the delivery rules of docs/ARCHITECTURE.md built in once:
 *
 *   1. poll a batch of messages (up to pipeline.batch.max, as many as are
 *      already there); decode each one's header (every message has one);
 *   2. BEGIN; for each message record its event id in processed_events (a
 *      duplicate ends there) and call the service's apply, which changes its
 *      tables and queues output events in the outbox table; COMMIT;
 *   3. publish the outbox (and the dead letters) and wait for the delivery
 *      reports;
 *   4. only then store the messages' offsets.
 *
 * A crash anywhere replays the batch: before the commit nothing happened;
 * after it the ledger skips the effects and step 3 publishes what is still
 * in the outbox.  Output ids derive from input ids, so an output published
 * twice is the same event twice, which the next ledger drops.  A message that
 * does not decode or that apply rejects goes to the dead-letter topic with
 * its bytes and reason, then its offset is stored; so does one whose data
 * the database refuses the same way every time (pg_sqlstate_permanent),
 * found by applying its batch again a message at a time.  Transient
 * failures (PostgreSQL or Kafka away) are retried with back-off, never
 * skipped.
 * One transaction per batch is what makes the pipeline fast: the per-event
 * cost is a few statements, not a commit and a delivery round trip. */
#ifndef ANNOT_PIPELINE_H
#define ANNOT_PIPELINE_H

#include <librdkafka/rdkafka.h>

#include "annot/v1/header.pb-c.h"
#include "kafka.h"
#include "pg.h"
#include "service.h"

typedef enum {
    PIPELINE_APPLIED = 0, /* effect done: commit */
    PIPELINE_INVALID,     /* the message is bad: roll back, dead-letter it */
    PIPELINE_RETRY,       /* transient failure: roll back, try again */
} pipeline_result_t;

typedef struct pipeline pipeline_t;
typedef struct pipeline_ctx pipeline_ctx_t;

/* apply runs inside the transaction on pipeline_pg(ctx).  On INVALID or
 * RETRY it fills errstr with the reason. */
typedef pipeline_result_t (*pipeline_apply_fn)(void *opaque, pipeline_ctx_t *ctx,
                                               const rd_kafka_message_t *rkm,
                                               const Annot__V1__EventHeader *header,
                                               char *errstr, size_t errlen);

typedef struct pipeline_def {
    const char *group;              /* consumer group */
    const char *const *topic_roles; /* roles in the topic table to consume */
    size_t ntopics;
    pipeline_apply_fn apply;
    void *opaque;
} pipeline_def_t;

/* Optional batch hooks, for a service that folds a batch's events together
 * before writing (annot-metrics adds up a batch's contributions per series
 * and writes each series once).  begin runs right after BEGIN, also when a
 * batch is redone, so it must forget whatever the previous attempt
 * gathered; end runs inside the transaction after the last apply and before
 * COMMIT, and may write and pipeline_emit.  Anything but APPLIED from end
 * rolls the batch back and retries it (a transient failure). */
typedef void (*pipeline_batch_begin_fn)(void *opaque);
typedef pipeline_result_t (*pipeline_batch_end_fn)(void *opaque, pipeline_ctx_t *ctx, char *errstr, size_t errlen);

/* The pipeline uses pg and producer (not owned) and owns its consumer. */
pipeline_t *pipeline_new(service_t *svc, pg_t *pg, kafka_producer_t *producer,
                         const pipeline_def_t *def, char *errstr, size_t errlen);
/* Sets the batch hooks (both may be NULL); call before the first poll. */
void pipeline_set_batch_hooks(pipeline_t *p, pipeline_batch_begin_fn begin, pipeline_batch_end_fn end);
/* Commits stored offsets and closes the consumer. */
void pipeline_destroy(pipeline_t *p);

/* Handles at most one batch, waiting up to timeout_ms for its first
 * message.  Returns 0, or -1 when the Kafka client hit a fatal error and the
 * process must stop. */
int pipeline_poll(pipeline_t *p, int timeout_ms);
/* Publishes what the outbox holds (also done after every message). */
int pipeline_outbox_relay(pipeline_t *p, char *errstr, size_t errlen);
/* Readiness as the main loop last saw it: PostgreSQL usable, Kafka
 * reachable.  Safe from any thread. */
int pipeline_ready(void *p, char *why, size_t len);

/* For apply: the transaction's connection, and the outbox. */
pg_t *pipeline_pg(pipeline_ctx_t *ctx);
/* Queues an event for the topic of role; it is published after the commit
 * and before the input's offset is stored. */
int pipeline_emit(pipeline_ctx_t *ctx, const char *topic_role, const void *key, size_t keylen,
                  const void *payload, size_t len, char *errstr, size_t errlen);

#endif
