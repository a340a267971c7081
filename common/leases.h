/* leases: the dispatcher's queues and leases in Redis.  Every operation that
 * changes state is one atomic Lua script (lease_scripts.h) run by EVALSHA
 * through common/redis.h; the rules it applies come from lease_policy.h.
 *
 * A lease is (task, holder, fencing token, expiry).  The fencing token of a
 * task rises with every lease of it and is never reset; heartbeat, release
 * and submit answer LEASE_LOST to anyone but the live holder.  The reaper
 * (lease_reap) requeues expired leases and parks a task after the configured
 * number of expired attempts.  Redis holds only hot state: when it loses it,
 * lease_restore and lease_restore_held rebuild it from PostgreSQL.
 *
 * Threads: a lease_store_t wraps one redis_t (borrowed, not owned) and, like
 * it, belongs to one thread at a time.
 *
 * Return codes: LEASE_OK (0), a positive outcome (LEASE_NONE, LEASE_LIMIT,
 * LEASE_LOST, LEASE_DUPLICATE), or a negative error with errstr filled:
 * LEASE_ERR_INVALID (bad argument, nothing sent), LEASE_ERR_REDIS (the
 * connection failed; the script may or may not have run; the next call
 * reconnects), LEASE_ERR_REPLY (Redis answered with an error). */
#ifndef ANNOT_LEASES_H
#define ANNOT_LEASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lease_event.h"
#include "lease_policy.h"
#include "redis.h"

typedef enum {
    LEASE_OK = 0,
    LEASE_NONE = 1,      /* acquire: nothing queued that this holder may take */
    LEASE_LIMIT = 2,     /* acquire: the holder already holds max_held live leases */
    LEASE_LOST = 3,      /* heartbeat/release/submit: not a live lease of this holder */
    LEASE_DUPLICATE = 4, /* enqueue: the task is already known (queued, leased, done, parked) */
    LEASE_ERR_INVALID = -1,
    LEASE_ERR_REDIS = -2,
    LEASE_ERR_REPLY = -3,
} lease_rc_t;

/* Why a lease is lost (LEASE_LOST). */
typedef enum {
    LEASE_LOST_NOT = 0,    /* not lost */
    LEASE_LOST_UNKNOWN,    /* no such lease (never was, or already ended) */
    LEASE_LOST_HOLDER,     /* the lease belongs to someone else */
    LEASE_LOST_EXPIRED,    /* past its expiry (the reaper may not have run yet) */
    LEASE_LOST_SUPERSEDED, /* the lease exists but its task no longer names it with its
                            * token (a partial loss; a restore deletes the old lease,
                            * which then reads as UNKNOWN) */
    LEASE_LOST_FENCE,      /* submit: the token is not the lease's */
} lease_lost_t;

const char *lease_rc_name(int rc);
const char *lease_lost_name(lease_lost_t lost);

typedef struct lease_store lease_store_t;

/* ns: the key namespace (LEASE_NS_DEFAULT in production).  redis stays the
 * caller's; destroy the store before closing it.  NULL with errstr on a bad
 * namespace. */
lease_store_t *lease_store_new(redis_t *redis, const char *ns, char *errstr, size_t errlen);
void lease_store_destroy(lease_store_t *ls);
/* A submitted task's record (kept so that enqueue stays idempotent and its
 * fencing counter keeps rising) expires after ttl_ms; 0, the default, keeps
 * it.  With a TTL, PostgreSQL must be what stops a finished task from being
 * enqueued again. */
void lease_store_set_done_ttl(lease_store_t *ls, int64_t ttl_ms);
/* The pub/sub channel enqueue, release, reap and restore PUBLISH on when
 * work appears in a queue of kind q; the message is the home of the work:
 * ":pool:<pool>" or ":own:<person>".  Returns the length, -1 if too small. */
int lease_wake_channel(const lease_store_t *ls, lease_queue_t q, char *buf, size_t len);

/* A task to queue.  Exactly one of pool (annotation: a pool name from
 * lease_policy_task_pool) and owner_id (exam: the candidate; validation:
 * the assigned validator) is set.  task_id is the leasable item's id (for
 * validation, the assignment's).  Nothing here is retained after the call. */
typedef struct lease_item {
    const char *task_id;
    const char *pool;
    const char *owner_id;
    int priority;          /* 0..LEASE_PRIORITY_MAX, higher first */
    const char *task_json; /* handed back inside the lease, byte for byte */
    size_t task_json_len;  /* 0: strlen(task_json) */
    const char *author_id; /* whose work this is (validation), or NULL */
} lease_item_t;

/* Stores and queues the task, and PUBLISHes on the wake channel.  LEASE_OK,
 * or LEASE_DUPLICATE (no change) when the task is already known.
 * now_ms 0: Redis's clock (here and in every call below). */
int lease_enqueue(lease_store_t *ls, lease_queue_t q, const lease_item_t *item, int64_t now_ms,
                  char *errstr, size_t errlen);

/* What to lease from. */
typedef struct lease_request {
    const char *holder_id;
    const lease_pool_name_t *pools; /* lease_policy_person_pools; may be NULL if npools 0 */
    size_t npools;                  /* at most LEASE_POOLS_MAX */
    bool own_queue;                 /* also the holder's own queue (exam, validation) */
    bool exclude_author;            /* skip tasks whose author is the holder (validation) */
    int64_t now_ms;
    int64_t ttl_ms;                 /* lease_policy_ttl_ms */
    int max_held;                   /* lease_policy_max_held */
} lease_request_t;

typedef struct lease {
    char lease_id[LEASE_ID_LEN];
    char task_id[LEASE_ID_MAX + 1];
    uint64_t fencing_token;
    uint32_t attempt;      /* 1 for the task's first lease */
    int64_t granted_at_ms;
    int64_t expires_at_ms;
    int64_t queued_at_ms;  /* when the task was (re)queued: queue wait = granted - queued */
    char *task_json;       /* NUL-terminated; owned, freed by lease_free */
    size_t task_json_len;
} lease_t;

void lease_free(lease_t *lease);

/* Leases the best task (highest priority, then oldest) of the candidate
 * queues.  *out is overwritten (lease_free a previous lease first).
 * LEASE_OK with *out filled (lease_free it), LEASE_NONE, or
 * LEASE_LIMIT when the holder already has max_held live leases of queue q. */
int lease_acquire(lease_store_t *ls, lease_queue_t q, const lease_request_t *req, lease_t *out,
                  char *errstr, size_t errlen);

/* What heartbeat, release and submit report. */
typedef struct lease_ack {
    lease_lost_t lost;          /* set when LEASE_LOST */
    char task_id[LEASE_ID_MAX + 1];
    uint64_t fencing_token;
    uint32_t attempt;
    int64_t expires_at_ms;      /* heartbeat: the new expiry */
    uint32_t heartbeat_count;   /* heartbeat: including this one */
    int64_t at_ms;              /* the time the script used */
} lease_ack_t;

/* The queue of a lease comes from its id (lease_policy_lease_id_queue); a
 * malformed id is LEASE_LOST / LEASE_LOST_UNKNOWN without a round trip. */

/* Reads a lease of holder_id without changing anything: its task, token
 * and attempt into ack.  LEASE_OK, or LEASE_LOST (unknown, or another
 * holder's).  Not a check of liveness: the scripts below decide that
 * atomically; this only tells a caller what it is about to finish. */
int lease_peek(lease_store_t *ls, const char *lease_id, const char *holder_id, lease_ack_t *ack, char *errstr,
               size_t errlen);
/* Extends the lease to now + ttl_ms (ttl_ms 0: the TTL it was granted with). */
int lease_heartbeat(lease_store_t *ls, const char *lease_id, const char *holder_id,
                    int64_t now_ms, int64_t ttl_ms, lease_ack_t *ack, char *errstr, size_t errlen);
/* Ends the lease; its task goes back to its queue at its priority. */
int lease_release(lease_store_t *ls, const char *lease_id, const char *holder_id, int64_t now_ms,
                  lease_ack_t *ack, char *errstr, size_t errlen);
/* Ends the lease if fencing_token is its token and marks the task done.
 * The dispatcher then records the submission in PostgreSQL with its own
 * fence check; should that fail, lease_restore puts the task back. */
int lease_submit(lease_store_t *ls, const char *lease_id, const char *holder_id,
                 uint64_t fencing_token, int64_t now_ms, lease_ack_t *ack, char *errstr,
                 size_t errlen);

/* Submissions the submit script accepted are "unconfirmed" until the
 * caller's PostgreSQL transaction commits; the dispatcher confirms them
 * then.  One left unconfirmed (the commit failed, or the dispatcher died
 * between the script and the commit) is found by lease_unconfirmed and
 * settled against PostgreSQL (work_reconcile): done there, confirmed;
 * still queued there, queued again. */
int lease_confirm(lease_store_t *ls, lease_queue_t q, const char *task_id, char *errstr, size_t errlen);
/* Up to max task ids of queue q unconfirmed since before_ms, oldest first,
 * into ids (max entries); *n how many. */
int lease_unconfirmed(lease_store_t *ls, lease_queue_t q, int64_t before_ms, char (*ids)[LEASE_ID_MAX + 1], size_t max,
                      size_t *n, char *errstr, size_t errlen);

/* One lease the reaper ended. */
typedef struct lease_expired {
    char lease_id[LEASE_ID_LEN];
    char task_id[LEASE_ID_MAX + 1];
    char holder_id[LEASE_ID_MAX + 1];
    uint64_t fencing_token;
    int64_t expires_at_ms;
    int64_t detected_at_ms;
    uint32_t expired_attempts; /* including this one */
    bool parked;               /* true: taken out (PARK_REASON_MAX_ATTEMPTS); false: requeued */
} lease_expired_t;

/* Ends up to limit leases of queue q that expired at or before now: each
 * task is requeued, or parked when lease_policy_park(attempts, max_attempts).
 * out holds limit entries; *nout says how many were used.  Call again while
 * *nout == limit. */
int lease_reap(lease_store_t *ls, lease_queue_t q, int64_t now_ms, int max_attempts,
               lease_expired_t *out, size_t limit, size_t *nout, char *errstr, size_t errlen);

/* Rebuilding after Redis lost its data (PostgreSQL is the truth).
 *
 * lease_restore queues the task whatever Redis holds for it (ending any
 * lease, unparking, replacing the payload), with its fencing counter raised
 * to at least fence_floor + 1: fence_floor must be at least every token ever
 * handed out for the task, so those are all stale afterwards.
 * expired_attempts is PostgreSQL's count (the larger of it and Redis's is
 * kept).  *fence_out (may be NULL) gets the counter; ended_lease_id (may be
 * NULL) the lease it ended, or "". */
int lease_restore(lease_store_t *ls, lease_queue_t q, const lease_item_t *item,
                  uint64_t fence_floor, uint32_t expired_attempts, int64_t now_ms,
                  uint64_t *fence_out, char ended_lease_id[LEASE_ID_LEN], char *errstr,
                  size_t errlen);

/* A lease PostgreSQL recorded when it was granted. */
typedef struct lease_held {
    const char *lease_id;
    const char *holder_id;
    uint64_t fencing_token;
    int64_t expires_at_ms;
    int64_t ttl_ms;
} lease_held_t;

/* Re-creates a lease that PostgreSQL vouches for, keeping id and token.
 * LEASE_OK, or LEASE_LOST (superseded) when Redis already knows a newer
 * lease of the task: requeue it with lease_restore instead. */
int lease_restore_held(lease_store_t *ls, lease_queue_t q, const lease_item_t *item,
                       const lease_held_t *held, uint32_t expired_attempts, int64_t now_ms,
                       char *errstr, size_t errlen);

/* For the assigner and /metrics. */

/* Queued tasks of each pool, in one round trip. */
int lease_pool_depths(lease_store_t *ls, lease_queue_t q, const lease_pool_name_t *pools,
                      size_t npools, long long *depths, char *errstr, size_t errlen);
/* Queued tasks in a person's own queue. */
int lease_own_depth(lease_store_t *ls, lease_queue_t q, const char *owner_id, long long *depth,
                    char *errstr, size_t errlen);
/* Live (unexpired) leases of queue q held by holder_id. */
int lease_held_count(lease_store_t *ls, lease_queue_t q, const char *holder_id, int64_t now_ms,
                     long long *count, char *errstr, size_t errlen);
/* Leases of queue q not yet ended (live, or expired and not yet reaped). */
int lease_open_count(lease_store_t *ls, lease_queue_t q, long long *count, char *errstr,
                     size_t errlen);
/* For each of people[0..n), the tasks queued in their own queue of q,
 * their live leases of q, and when they last asked for work of q (unix ms,
 * 0: never), into queued[], held[] and seen[] (one round trip per 10
 * people). */
int lease_loads(lease_store_t *ls, lease_queue_t q, const char *const *people, size_t n, int64_t now_ms,
                long long *queued, long long *held, long long *seen, char *errstr, size_t errlen);
/* Takes a task out of service: its lease (if any) ends, it leaves its queue
 * and is parked.  LEASE_OK also when Redis does not know it. */
int lease_cancel(lease_store_t *ls, lease_queue_t q, const char *task_id, int64_t now_ms, char *errstr,
                 size_t errlen);
/* Every pool that ever held a task of queue q: *pools is malloc'ed (free()
 * it), *npools its length. */
int lease_pool_list(lease_store_t *ls, lease_queue_t q, lease_pool_name_t **pools,
                    size_t *npools, char *errstr, size_t errlen);

/* What Redis holds about one task (for operators and tests). */
typedef enum {
    LEASE_TASK_ABSENT = 0,
    LEASE_TASK_QUEUED,
    LEASE_TASK_LEASED,
    LEASE_TASK_DONE,
    LEASE_TASK_PARKED,
} lease_task_state_t;

typedef struct lease_task_info {
    lease_task_state_t state;
    uint64_t fence;            /* the fencing counter: the last token handed out */
    uint32_t leases;           /* leases granted */
    uint32_t expired_attempts; /* leases that expired */
    char lease_id[LEASE_ID_LEN]; /* when leased */
} lease_task_info_t;

int lease_task_info(lease_store_t *ls, lease_queue_t q, const char *task_id,
                    lease_task_info_t *info, char *errstr, size_t errlen);

/* The lease-event stream of a queue (lease_event.h): every script that
 * changes a lease appends to it; lease_relay.c drains it to Kafka. */

/* One entry.  parse_rc 0: rec holds it; otherwise err says what is wrong and
 * raw holds the fields as a JSON object (for the dead-letter topic). */
typedef struct lease_stream_entry {
    char id[48]; /* the stream id, "<ms>-<seq>" */
    int parse_rc;
    lease_event_rec_t rec;
    char err[160];
    char *raw;
} lease_stream_entry_t;

/* The oldest max entries (XRANGE - + COUNT max), into out (max entries);
 * *nout how many.  Free them with lease_stream_entries_clear. */
int lease_events_read(lease_store_t *ls, lease_queue_t q, lease_stream_entry_t *out, size_t max,
                      size_t *nout, char *errstr, size_t errlen);
void lease_stream_entries_clear(lease_stream_entry_t *entries, size_t n);
/* Deletes the entries (XDEL), once relayed. */
int lease_events_delete(lease_store_t *ls, lease_queue_t q, const lease_stream_entry_t *entries, size_t n,
                        char *errstr, size_t errlen);
/* The stream's key (for dead letters and operators). */
int lease_events_stream(const lease_store_t *ls, lease_queue_t q, char *buf, size_t len);
/* Entries not yet relayed. */
int lease_events_pending(lease_store_t *ls, lease_queue_t q, long long *count, char *errstr, size_t errlen);
/* Claims (or renews) the right to drain the stream of q for ttl_ms; *mine
 * says whether owner holds it. */
int lease_events_claim(lease_store_t *ls, lease_queue_t q, const char *owner, int64_t ttl_ms, bool *mine,
                       char *errstr, size_t errlen);

#endif
