/* outbox: events that must leave with a PostgreSQL transaction.  A service
 * writes its output events into its schema's outbox table inside the same
 * transaction as the effect they announce (outbox_add), and they are
 * published after the commit (outbox_relay): either both happen or neither,
 * and a crash in between leaves rows that the next relay publishes.  The
 * consumer pipeline relays after every batch; a request handler (the
 * dispatcher's submit) relays before it answers. */
#ifndef ANNOT_OUTBOX_H
#define ANNOT_OUTBOX_H

#include <stddef.h>

#include "kafka.h"
#include "pg.h"

/* Queues one event, inside the caller's transaction. */
int outbox_add(pg_t *pg, const char *topic, const void *key, size_t keylen, const void *payload, size_t len,
               char *errstr, size_t errlen);
/* Queues n events for one topic in as few statements as possible (one per
 * 1,000 rows), inside the caller's transaction: for a service that emits
 * many events per batch. */
int outbox_add_many(pg_t *pg, const char *topic, size_t n, const void *const *keys, const size_t *keylens,
                    const void *const *payloads, const size_t *lens, char *errstr, size_t errlen);
/* Publishes up to 500 queued events in their own transaction, waits for
 * every delivery report, then deletes them.  Rows are locked FOR UPDATE SKIP
 * LOCKED, so concurrent relays (other instances) never publish a row twice
 * at once.  *published says how many went out.  0, or -1 with errstr (rows
 * stay for the next relay). */
int outbox_relay(pg_t *pg, kafka_producer_t *producer, size_t *published, char *errstr, size_t errlen);

#endif
