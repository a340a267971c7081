/* lease_policy: the pure rules behind the dispatcher's queues and leases.
 * Which pools a person may lease from, how long a lease of each queue lasts,
 * how many leases one person may hold, when a task is parked, how a queue
 * orders its tasks, and the name of every Redis key.  No I/O: leases.c runs
 * these rules against Redis, and tests/unit/test_lease_policy.c checks them
 * without a server. */
#ifndef ANNOT_LEASE_POLICY_H
#define ANNOT_LEASE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* The three queues; the numbers are those of annot.v1.Queue (lease.proto). */
typedef enum {
    LEASE_QUEUE_ANNOTATION = 1, /* production and golden tasks, pooled by locale/skill */
    LEASE_QUEUE_EXAM = 2,       /* exam cases, in the candidate's own queue */
    LEASE_QUEUE_VALIDATION = 3, /* validation tasks, in the assigned validator's own queue */
} lease_queue_t;

#define LEASE_QUEUE_FIRST LEASE_QUEUE_ANNOTATION
#define LEASE_QUEUE_LAST  LEASE_QUEUE_VALIDATION

/* "annotation", "exam", "validation" (the JSON spelling); NULL when q is not
 * a queue. */
const char *lease_queue_name(lease_queue_t q);
/* 0, or -1 when name is not one of the three. */
int lease_queue_parse(const char *name, lease_queue_t *out);
bool lease_queue_valid(int q);

/* Sizes.  Ids (task, holder, author) are 1..LEASE_ID_MAX printable ASCII
 * bytes without space, '{' or '}' (they become parts of Redis key names and
 * must not open a second hash tag).  A locale or skill is 1..LEASE_NAME_MAX
 * of [A-Za-z0-9_-]; a pool is "<locale>/<skill>". */
#define LEASE_ID_MAX       128
#define LEASE_NAME_MAX     48
#define LEASE_POOL_MAX     (2 * LEASE_NAME_MAX + 1)
#define LEASE_POOLS_MAX    32   /* pools one acquire may look at */
#define LEASE_NS_MAX       48
#define LEASE_KEY_MAX      (LEASE_NS_MAX + LEASE_ID_MAX + 40)
#define LEASE_PRIORITY_MAX 1023 /* priorities are 0..1023, higher served first */
#define LEASE_GENERAL_SKILL "general"
#define LEASE_NS_DEFAULT   "annot"

typedef char lease_pool_name_t[LEASE_POOL_MAX + 1];

bool lease_policy_id_valid(const char *id);
bool lease_policy_name_valid(const char *name);
/* A well-formed pool name "<locale>/<skill>". */
bool lease_policy_pool_valid(const char *pool);

/* Writes "<locale>/<skill>" into buf.  Returns its length, or -1 when a part
 * is invalid or buf is too small. */
int lease_policy_pool_name(char *buf, size_t len, const char *locale, const char *skill);

/* The pool a production task is queued in: its locale and its first skill,
 * or the general pool of its locale when it names no skill.  A task sits in
 * exactly one pool, so a task that needs several skills is found by people
 * who have the first one. */
int lease_policy_task_pool(char *buf, size_t len, const char *locale,
                           const char *const *skills, size_t nskills);

/* The pools a person with this locale and skills leases from, in order:
 * "<locale>/<skill>" for each distinct skill, then "<locale>/general" (once,
 * even when it is among the skills).  Returns the number written into out
 * (at most max), or -1 with errstr naming the bad locale or skill, or saying
 * that there are more than max pools. */
int lease_policy_person_pools(const char *locale, const char *const *skills, size_t nskills,
                              lease_pool_name_t *out, size_t max, char *errstr, size_t errlen);

/* Per-queue limits, from configuration. */
typedef struct lease_queue_limits {
    int64_t ttl_ms;   /* a lease lasts this long unless heartbeated */
    int max_held;     /* most live leases of this queue one person holds at once */
    int max_attempts; /* a task whose leases expired this many times is parked */
} lease_queue_limits_t;

typedef struct lease_policy {
    lease_queue_limits_t queue[LEASE_QUEUE_LAST + 1]; /* by lease_queue_t; [0] unused */
} lease_policy_t;

/* Bounds every limit is checked against (also the config table's bounds). */
#define LEASE_TTL_MS_MIN       1000LL
#define LEASE_TTL_MS_MAX       86400000LL /* one day */
#define LEASE_MAX_HELD_MAX     100
#define LEASE_MAX_ATTEMPTS_MAX 100

/* The dispatcher's configuration keys, for its config_def_t table:
 *   static const config_def_t dispatcher_defs[] = {
 *       LEASE_POLICY_CONFIG_DEFS,
 *       ...,
 *       {NULL, 0, NULL, NULL, 0, 0, false, NULL},
 *   };
 * then lease_policy_from_config() reads them. */
#define LEASE_POLICY_CONFIG_QUEUE_DEFS(q, ttl, held, attempts)                                   \
    {"lease." q ".ttl.ms", CONFIG_INT, ttl, NULL, (double)LEASE_TTL_MS_MIN,                     \
     (double)LEASE_TTL_MS_MAX, false, "how long a lease of the " q " queue lasts without heartbeat"}, \
    {"lease." q ".max.held", CONFIG_INT, held, NULL, 1, LEASE_MAX_HELD_MAX, false,                 \
     "most live " q " leases one person may hold at once"},                                        \
    {"lease." q ".max.attempts", CONFIG_INT, attempts, NULL, 1, LEASE_MAX_ATTEMPTS_MAX, false,     \
     "expired " q " leases of one task before it is parked"}
#define LEASE_POLICY_CONFIG_DEFS                                      \
    LEASE_POLICY_CONFIG_QUEUE_DEFS("annotation", "300000", "1", "3"), \
    LEASE_POLICY_CONFIG_QUEUE_DEFS("exam", "1800000", "1", "3"),      \
    LEASE_POLICY_CONFIG_QUEUE_DEFS("validation", "600000", "1", "3")

/* The defaults of LEASE_POLICY_CONFIG_DEFS. */
void lease_policy_defaults(lease_policy_t *p);
/* 0, or -1 with errstr naming the queue and the value out of bounds. */
int lease_policy_validate(const lease_policy_t *p, char *errstr, size_t errlen);
/* Reads the keys of LEASE_POLICY_CONFIG_DEFS from cfg (whose table must
 * declare them) and validates them. */
int lease_policy_from_config(lease_policy_t *p, const config_t *cfg, char *errstr, size_t errlen);

int64_t lease_policy_ttl_ms(const lease_policy_t *p, lease_queue_t q);
int lease_policy_max_held(const lease_policy_t *p, lease_queue_t q);
int lease_policy_max_attempts(const lease_policy_t *p, lease_queue_t q);

/* Exam and validation work sits in a person's own queue; annotation work in
 * pools. */
bool lease_policy_uses_own_queue(lease_queue_t q);
/* A validator is never handed a validation task of their own work. */
bool lease_policy_excludes_author(lease_queue_t q);

/* The park rule: after the expired_attempts-th expired lease, is the task
 * parked instead of requeued?  The reap script applies the same rule
 * atomically (lease_scripts.h). */
bool lease_policy_park(uint32_t expired_attempts, int max_attempts);
/* "3 leases expired", for TaskParked.reason_text.  Returns snprintf's. */
int lease_policy_park_reason(char *buf, size_t len, uint32_t expired_attempts);

/* A queue's order: higher priority first, first in first out within a
 * priority.  The score is (LEASE_PRIORITY_MAX - priority) * 2^42 + seq, with
 * seq a per-queue counter: below 2^53, so exact as a double and in Lua, and
 * the sorted set's ZPOPMIN-like head is the next task. */
#define LEASE_SEQ_BITS 42
double lease_policy_queue_score(int priority, uint64_t seq);
bool lease_policy_priority_valid(long long priority);

/* Lease ids are v4 UUIDs (event_id_new) whose last hex digit is the queue,
 * so that heartbeat, release and submit, which get only the id, know which
 * queue (and so which Redis slot) the lease lives in.  118 random bits are
 * left.  mark sets the digit; lease_policy_lease_id_queue reads it back, -1
 * when id is not a lease id. */
#define LEASE_ID_LEN 37 /* 36 characters and the NUL, as EVENT_ID_LEN */
void lease_policy_lease_id_mark(char id[LEASE_ID_LEN], lease_queue_t q);
int lease_policy_lease_id_queue(const char *id, lease_queue_t *q);

/* Redis keys.  Every key of one queue kind carries the same hash tag
 * "{<ns>:q:<queue>}", so each script touches one cluster slot:
 *
 *   {ns:q:Q}                     BASE: the tag, prefix of everything below
 *   {ns:q:Q}:pool:<locale/skill> POOL   zset task_id -> score (annotation)
 *   {ns:q:Q}:own:<person>        OWN    zset task_id -> score (exam, validation)
 *   {ns:q:Q}:task:<task_id>      TASK   hash: state, home, prio, author, fence,
 *                                       leases, attempts, lease, queued_at
 *   {ns:q:Q}:json:<task_id>      PAYLOAD string: the task JSON (kept apart so
 *                                       the hash keeps Redis's compact listpack
 *                                       encoding, whose values are <= 64 bytes)
 *   {ns:q:Q}:lease:<lease_id>    LEASE  hash: task, holder, fence, exp, ttl, granted, hb,
 *                                       att (the task's lease count at the grant)
 *   {ns:q:Q}:held:<holder>       HELD   zset lease_id -> expires_at
 *   {ns:q:Q}:expiry              EXPIRY zset lease_id -> expires_at (the reaper's index)
 *   {ns:q:Q}:parked              PARKED zset task_id -> parked_at
 *   {ns:q:Q}:seq                 SEQ    counter behind FIFO order
 *   {ns:q:Q}:pools               POOLS  set of pool names that ever held a task
 *   {ns:q:Q}:wake                WAKE   pub/sub channel; message: the home of the new work
 *   {ns:q:Q}:events              EVENTS stream of lease events (lease_event.h), written by
 *                                       the scripts, drained to Kafka by lease_relay.c
 *   {ns:q:Q}:events:relay        RELAY  which dispatcher instance is draining EVENTS
 *   {ns:q:Q}:seen                SEEN   zset person -> when they last asked for work (any
 *                                       acquire, even one that found nothing): presence
 *   {ns:q:Q}:unconfirmed         UNCONFIRMED zset task_id -> submitted_at: tasks the submit
 *                                       script marked done whose PostgreSQL commit is not
 *                                       yet confirmed (work_reconcile)
 *
 * A task's "home" is the suffix of its queue key (":pool:ja-JP/dish" or
 * ":own:<person>"), so the scripts find the queue of any task as base..home.
 * The suffixes are these macros, shared with the Lua text. */
#define LEASE_SUFFIX_POOL   ":pool:"
#define LEASE_SUFFIX_OWN    ":own:"
#define LEASE_SUFFIX_TASK   ":task:"
#define LEASE_SUFFIX_PAYLOAD ":json:"
#define LEASE_SUFFIX_LEASE  ":lease:"
#define LEASE_SUFFIX_HELD   ":held:"
#define LEASE_SUFFIX_EXPIRY ":expiry"
#define LEASE_SUFFIX_PARKED ":parked"
#define LEASE_SUFFIX_SEQ    ":seq"
#define LEASE_SUFFIX_POOLS  ":pools"
#define LEASE_SUFFIX_WAKE   ":wake"
#define LEASE_SUFFIX_EVENTS ":events"
#define LEASE_SUFFIX_RELAY  ":events:relay"
#define LEASE_SUFFIX_UNCONFIRMED ":unconfirmed"
#define LEASE_SUFFIX_SEEN   ":seen"

typedef enum {
    LEASE_KEY_BASE = 0,
    LEASE_KEY_POOL,   /* id: pool name */
    LEASE_KEY_OWN,    /* id: person id */
    LEASE_KEY_TASK,   /* id: task id */
    LEASE_KEY_LEASE,  /* id: lease id */
    LEASE_KEY_HELD,   /* id: holder id */
    LEASE_KEY_PAYLOAD, /* id: task id */
    LEASE_KEY_EXPIRY, /* no id (NULL) from here on */
    LEASE_KEY_PARKED,
    LEASE_KEY_SEQ,
    LEASE_KEY_POOLS,
    LEASE_KEY_WAKE,
    LEASE_KEY_EVENTS,
    LEASE_KEY_RELAY,
    LEASE_KEY_UNCONFIRMED,
    LEASE_KEY_SEEN,
} lease_key_t;

/* A namespace: 1..LEASE_NS_MAX of [A-Za-z0-9_.-]; production uses "annot",
 * tests a namespace per run. */
bool lease_policy_ns_valid(const char *ns);
/* The one function that names every key.  Returns the length written, or -1
 * when ns, q, kind or id is invalid for that kind, or buf is too small. */
int lease_key(char *buf, size_t len, const char *ns, lease_queue_t q, lease_key_t kind,
              const char *id);

#endif
