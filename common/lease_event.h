/* lease_event: the lease events the Lua scripts append to each queue's
 * EVENTS stream (lease_scripts.h, emit()), decoded and turned into the
 * LeaseEvent messages of the leases topic.  Pure: no I/O.
 *
 * A stream entry is a flat list of field/value pairs:
 *   k   kind: granted, heartbeat, expired, released, parked
 *   l   lease id          t  task id (the leasable item)   h  holder id
 *   f   fencing token     a  attempt (the task's lease count at the grant)
 *   at  when, unix ms (Redis's clock, or the caller's in tests)
 * then, by kind:
 *   granted    exp (expiry), ttl, qw (ms the task waited in its queue)
 *   heartbeat  exp (new expiry), n (heartbeats of this lease so far)
 *   expired    exp, rq (1: requeued, 0: parked), ma (max attempts),
 *              n (expired attempts of the task so far)
 *   released   why (holder, submitted, revoked), rq (1: back in its queue)
 *   parked     why (max_attempts), n (expired attempts)
 *
 * The event id is derived from the lease id and what happened to it (and the
 * heartbeat's number), so relaying an entry twice (a crash between the
 * delivery report and the XDEL) gives the same id twice, which consumers'
 * ledgers drop. */
#ifndef DISPATCHER_LEASE_EVENT_H
#define DISPATCHER_LEASE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "annot/v1/lease.pb-c.h"
#include "event.h"
#include "lease_policy.h"

typedef enum {
    LEASE_EVENT_GRANTED = 1,
    LEASE_EVENT_HEARTBEAT,
    LEASE_EVENT_EXPIRED,
    LEASE_EVENT_RELEASED,
    LEASE_EVENT_PARKED,
} lease_event_kind_t;

typedef enum {
    LEASE_WHY_NONE = 0,
    LEASE_WHY_HOLDER,
    LEASE_WHY_SUBMITTED,
    LEASE_WHY_REVOKED,
    LEASE_WHY_MAX_ATTEMPTS,
} lease_event_why_t;

/* One decoded stream entry. */
typedef struct lease_event_rec {
    lease_event_kind_t kind;
    char lease_id[LEASE_ID_LEN];
    char task_id[LEASE_ID_MAX + 1];
    char holder_id[LEASE_ID_MAX + 1];
    uint64_t fence;
    uint32_t attempt;
    int64_t at_ms;
    int64_t expires_at_ms; /* granted, heartbeat, expired */
    int64_t ttl_ms;        /* granted */
    int64_t queue_wait_ms; /* granted */
    uint32_t count;        /* heartbeat: heartbeats; expired, parked: expired attempts */
    uint32_t max_attempts; /* expired */
    bool requeued;         /* expired, released */
    lease_event_why_t why; /* released, parked */
} lease_event_rec_t;

/* Decodes the n strings of one entry (field, value, field, value, ...).
 * Returns 0, or -1 with errstr naming the missing or malformed field. */
int lease_event_parse(const char *const *kv, const size_t *lens, size_t n, lease_event_rec_t *rec,
                      char *errstr, size_t errlen);

/* The storage one LeaseEvent message needs; it points into rec and into
 * itself, so keep both alive until the message is packed. */
typedef struct lease_event_msg {
    Annot__V1__LeaseEvent ev;
    Annot__V1__EventHeader header;
    char event_id[EVENT_ID_LEN];
    Annot__V1__LeaseGranted granted;
    Annot__V1__LeaseHeartbeat heartbeat;
    Annot__V1__LeaseExpired expired;
    Annot__V1__LeaseReleased released;
    Annot__V1__TaskParked parked;
    char reason_text[48];
} lease_event_msg_t;

/* The validation queue's leasable item is an assignment; the message names
 * the task and submission under validation, which only PostgreSQL knows
 * (NULL when unknown: task_id falls back to the assignment id). */
typedef struct lease_event_subject {
    const char *task_id;
    const char *submission_id;
} lease_event_subject_t;

/* Builds the message of rec for queue q.  subject: validation only, may be
 * NULL.  source: the header's source. */
void lease_event_build(lease_event_msg_t *m, const lease_event_rec_t *rec, lease_queue_t q,
                       const lease_event_subject_t *subject, const char *source);

/* The Kafka key of a built message: its task id. */
const char *lease_event_key(const lease_event_msg_t *m);

#endif
