/* lease_relay: drains the lease-event streams the Lua scripts write
 * (lease_event.h) to the leases topic, on a thread of its own.
 *
 * One pass, per queue: claim the stream (one instance drains it at a time),
 * read the oldest entries, record what PostgreSQL must know (a parked task
 * stays parked across a rebuild), look up the submission behind each
 * validation lease, produce every event and wait for the delivery reports,
 * and only then delete the entries.  A crash anywhere re-sends entries
 * under the same event ids, which consumers drop as duplicates: nothing is
 * lost, nothing counts twice.  An entry that does not decode (only a hand
 * edit can make one) goes to the dead-letter topic.
 *
 * What it cannot save: entries Redis loses before they are relayed (an
 * unpersisted Redis restarting empty).  Production runs Redis with AOF. */
#ifndef DISPATCHER_LEASE_RELAY_H
#define DISPATCHER_LEASE_RELAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "event.h"
#include "kafka.h"
#include "leases.h"
#include "metrics.h"
#include "pg.h"

#define LEASE_RELAY_BATCH 512

typedef struct lease_relay {
    lease_store_t *leases; /* borrowed; used only by the relay thread */
    pg_t *pg;              /* borrowed; likewise */
    kafka_producer_t *producer;
    const char *topic, *dlq_topic, *source;
    char owner[EVENT_ID_LEN]; /* this instance, for the claim */
    metrics_series_t *m_relayed, *m_dead, *m_pending[LEASE_QUEUE_LAST + 1];
    atomic_int stop;
    pthread_t thread;
    bool started;
    lease_stream_entry_t batch[LEASE_RELAY_BATCH];
} lease_relay_t;

/* Starts the thread.  Returns 0, or -1 when it cannot. */
int lease_relay_start(lease_relay_t *r, lease_store_t *leases, pg_t *pg, kafka_producer_t *producer,
                      const char *topic, const char *dlq_topic, const char *source, metrics_registry_t *metrics);
/* Stops the thread after one last pass (call once nothing more can lease). */
void lease_relay_stop(lease_relay_t *r);

/* One pass over every queue: the number of events relayed, or -1 with errstr
 * (the entries stay for the next pass).  *more is set when a stream held a
 * full batch. */
long lease_relay_pass(lease_relay_t *r, bool *more, char *errstr, size_t errlen);

#endif
