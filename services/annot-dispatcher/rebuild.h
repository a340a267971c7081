/* rebuild: Redis holds only hot state; when it comes back empty (restarted
 * without persistence, flushed, failed over to an empty replica) the
 * dispatcher queues again every task PostgreSQL has as queued.  A marker key
 * tells whether Redis still has our data; one instance rebuilds under a
 * PostgreSQL advisory lock while the others wait and then see the marker.
 * Live leases cannot be vouched for (PostgreSQL does not record grants):
 * their tasks are requeued with a fencing token raised past every token of
 * the previous epoch, so their holders get lease_lost. */
#ifndef DISPATCHER_REBUILD_H
#define DISPATCHER_REBUILD_H

#include <stddef.h>

#include "leases.h"
#include "pg.h"
#include "redis.h"

/* Checks the marker and rebuilds if it is gone.  Returns the number of
 * tasks requeued (0 when nothing was lost), or -1 with errstr. */
long rebuild_if_lost(pg_t *pg, redis_t *redis, lease_store_t *leases, const char *ns, char *errstr, size_t errlen);

/* Settles the submissions Redis accepted (task marked done) but PostgreSQL
 * did not record: the commit failed, or the dispatcher died between the two
 * (leases.h, lease_confirm).  A task whose row an in-flight submission
 * still holds locked is left for the next call; one PostgreSQL has done is
 * confirmed; one it still has queued is queued again in Redis.  Returns how
 * many were queued again, or -1 with errstr. */
long reconcile_unconfirmed(pg_t *pg, lease_store_t *leases, char *errstr, size_t errlen);

#endif
