/* leases: see leases.h.  This file only checks arguments, names the keys
 * (lease_key), runs the scripts of lease_scripts.h and decodes their
 * replies; every decision that must be atomic is made inside a script. */
#include "leases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event.h"
#include "lease_scripts.h"

enum {
    SCRIPT_ENQUEUE = 0,
    SCRIPT_ACQUIRE,
    SCRIPT_HEARTBEAT,
    SCRIPT_RELEASE,
    SCRIPT_SUBMIT,
    SCRIPT_REAP,
    SCRIPT_RESTORE,
    SCRIPT_RESTORE_HELD,
    SCRIPT_DEPTHS,
    SCRIPT_HELD,
    SCRIPT_CLAIM,
    SCRIPT_CANCEL,
    SCRIPT_LOADS,
    SCRIPT_COUNT,
};

static const char *const script_source[SCRIPT_COUNT] = {
    [SCRIPT_ENQUEUE] = LEASE_LUA_ENQUEUE,
    [SCRIPT_ACQUIRE] = LEASE_LUA_ACQUIRE,
    [SCRIPT_HEARTBEAT] = LEASE_LUA_HEARTBEAT,
    [SCRIPT_RELEASE] = LEASE_LUA_RELEASE,
    [SCRIPT_SUBMIT] = LEASE_LUA_SUBMIT,
    [SCRIPT_REAP] = LEASE_LUA_REAP,
    [SCRIPT_RESTORE] = LEASE_LUA_RESTORE,
    [SCRIPT_RESTORE_HELD] = LEASE_LUA_RESTORE_HELD,
    [SCRIPT_DEPTHS] = LEASE_LUA_DEPTHS,
    [SCRIPT_HELD] = LEASE_LUA_HELD,
    [SCRIPT_CLAIM] = LEASE_LUA_CLAIM,
    [SCRIPT_CANCEL] = LEASE_LUA_CANCEL,
    [SCRIPT_LOADS] = LEASE_LUA_LOADS,
};

struct lease_store {
    redis_t *redis; /* borrowed */
    char ns[LEASE_NS_MAX + 1];
    int64_t done_ttl_ms;
    /* Per store, not shared: redis_script_run writes the SHA on first use,
     * and a store belongs to one thread. */
    redis_script_t script[SCRIPT_COUNT];
};

/* Fencing tokens and times travel through Lua numbers (doubles): keep them
 * where every integer is exact. */
#define LEASE_NUMBER_MAX ((uint64_t)1 << 52)

const char *lease_rc_name(int rc) {
    switch (rc) {
    case LEASE_OK: return "ok";
    case LEASE_NONE: return "none";
    case LEASE_LIMIT: return "limit";
    case LEASE_LOST: return "lost";
    case LEASE_DUPLICATE: return "duplicate";
    case LEASE_ERR_INVALID: return "invalid";
    case LEASE_ERR_REDIS: return "redis";
    case LEASE_ERR_REPLY: return "reply";
    default: return "?";
    }
}

static const char *const lost_names[] = {
    [LEASE_LOST_NOT] = "",
    [LEASE_LOST_UNKNOWN] = "unknown",
    [LEASE_LOST_HOLDER] = "holder",
    [LEASE_LOST_EXPIRED] = "expired",
    [LEASE_LOST_SUPERSEDED] = "superseded",
    [LEASE_LOST_FENCE] = "fence",
};

const char *lease_lost_name(lease_lost_t lost) {
    return (int)lost >= 0 && lost <= LEASE_LOST_FENCE ? lost_names[lost] : "?";
}

static lease_lost_t lost_parse(const char *s) {
    for (int i = LEASE_LOST_UNKNOWN; i <= LEASE_LOST_FENCE; i++) {
        if (strcmp(s, lost_names[i]) == 0) return (lease_lost_t)i;
    }
    return LEASE_LOST_UNKNOWN;
}

lease_store_t *lease_store_new(redis_t *redis, const char *ns, char *errstr, size_t errlen) {
    if (redis == NULL || !lease_policy_ns_valid(ns)) {
        snprintf(errstr, errlen, "lease store: namespace must be 1..%d of [A-Za-z0-9_.-]", LEASE_NS_MAX);
        return NULL;
    }
    lease_store_t *ls = calloc(1, sizeof(*ls));
    if (ls == NULL) abort();
    ls->redis = redis;
    snprintf(ls->ns, sizeof(ls->ns), "%s", ns);
    for (int i = 0; i < SCRIPT_COUNT; i++) ls->script[i].source = script_source[i];
    return ls;
}

void lease_store_destroy(lease_store_t *ls) {
    free(ls);
}

void lease_store_set_done_ttl(lease_store_t *ls, int64_t ttl_ms) {
    ls->done_ttl_ms = ttl_ms > 0 ? ttl_ms : 0;
}

int lease_wake_channel(const lease_store_t *ls, lease_queue_t q, char *buf, size_t len) {
    return lease_key(buf, len, ls->ns, q, LEASE_KEY_WAKE, NULL);
}

/* ---- arguments and replies -------------------------------------------- */

#define ARGS_MAX (LEASE_POOLS_MAX + 24)

/* The KEYS and ARGV of one script call; keys and numbers are formatted into
 * buf, strings are pointed at.  A key that lease_key refuses marks the whole
 * call invalid, so callers check once. */
typedef struct args {
    int n;
    bool bad;
    const char *v[ARGS_MAX];
    size_t len[ARGS_MAX];
    char buf[ARGS_MAX][LEASE_KEY_MAX];
} args_t;

static void args_bin(args_t *a, const char *s, size_t len) {
    if (a->n == ARGS_MAX) {
        a->bad = true;
        return;
    }
    a->v[a->n] = s;
    a->len[a->n] = len;
    a->n++;
}

static void args_str(args_t *a, const char *s) {
    args_bin(a, s ? s : "", s ? strlen(s) : 0);
}

static void args_key(args_t *a, const lease_store_t *ls, lease_queue_t q, lease_key_t kind,
                     const char *id) {
    if (a->n == ARGS_MAX) {
        a->bad = true;
        return;
    }
    int n = lease_key(a->buf[a->n], sizeof(a->buf[a->n]), ls->ns, q, kind, id);
    if (n < 0) {
        a->bad = true;
        n = 0;
    }
    args_bin(a, a->buf[a->n], (size_t)n);
}

static void args_int(args_t *a, long long v) {
    if (a->n == ARGS_MAX) {
        a->bad = true;
        return;
    }
    int n = snprintf(a->buf[a->n], sizeof(a->buf[a->n]), "%lld", v);
    args_bin(a, a->buf[a->n], (size_t)n);
}

static void args_uint(args_t *a, unsigned long long v) {
    if (a->n == ARGS_MAX) {
        a->bad = true;
        return;
    }
    int n = snprintf(a->buf[a->n], sizeof(a->buf[a->n]), "%llu", v);
    args_bin(a, a->buf[a->n], (size_t)n);
}

/* Runs a script; on LEASE_OK *out is a non-error reply the caller frees. */
static int script_call(lease_store_t *ls, int which, int nkeys, args_t *a, redisReply **out,
                       char *errstr, size_t errlen) {
    *out = NULL;
    if (a->bad) {
        snprintf(errstr, errlen, "invalid argument (id, pool or namespace)");
        return LEASE_ERR_INVALID;
    }
    redisReply *rep = redis_script_run(ls->redis, &ls->script[which], nkeys, a->n, a->v, a->len,
                                       errstr, errlen);
    if (rep == NULL) return LEASE_ERR_REDIS;
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, errlen, "redis: %s", rep->str);
        freeReplyObject(rep);
        return LEASE_ERR_REPLY;
    }
    *out = rep;
    return LEASE_OK;
}

static int command_call(lease_store_t *ls, args_t *a, redisReply **out, char *errstr,
                        size_t errlen) {
    *out = NULL;
    if (a->bad) {
        snprintf(errstr, errlen, "invalid argument (id, pool or namespace)");
        return LEASE_ERR_INVALID;
    }
    redisReply *rep = redis_command_argv(ls->redis, a->n, a->v, a->len, errstr, errlen);
    if (rep == NULL) return LEASE_ERR_REDIS;
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(errstr, errlen, "redis: %s", rep->str);
        freeReplyObject(rep);
        return LEASE_ERR_REPLY;
    }
    *out = rep;
    return LEASE_OK;
}

static int bad_reply(redisReply *rep, const char *what, char *errstr, size_t errlen) {
    snprintf(errstr, errlen, "unexpected reply to %s", what);
    freeReplyObject(rep);
    return LEASE_ERR_REPLY;
}

static bool reply_is_array(const redisReply *r, size_t min) {
    return r->type == REDIS_REPLY_ARRAY && r->elements >= min;
}

static bool reply_is(const redisReply *r, const char *s) {
    return (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && strcmp(r->str, s) == 0;
}

/* Copies a string element; false when it is not one or does not fit. */
static bool reply_copy(const redisReply *r, char *buf, size_t len) {
    if (r->type != REDIS_REPLY_STRING || r->len >= len) return false;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    return true;
}

/* An integer element, or a string holding one (Redis hashes hand numbers
 * back as strings). */
static bool reply_ll(const redisReply *r, long long *v) {
    if (r->type == REDIS_REPLY_INTEGER) {
        *v = r->integer;
        return true;
    }
    if (r->type == REDIS_REPLY_STRING && r->len > 0) {
        char *end;
        *v = strtoll(r->str, &end, 10);
        return *end == '\0';
    }
    return false;
}

static bool reply_u64(const redisReply *r, uint64_t *v) {
    long long x;
    if (!reply_ll(r, &x) || x < 0) return false;
    *v = (uint64_t)x;
    return true;
}

static bool reply_u32(const redisReply *r, uint32_t *v) {
    long long x;
    if (!reply_ll(r, &x) || x < 0 || x > UINT32_MAX) return false;
    *v = (uint32_t)x;
    return true;
}

static bool reply_i64(const redisReply *r, int64_t *v) {
    long long x;
    if (!reply_ll(r, &x)) return false;
    *v = (int64_t)x;
    return true;
}

/* ---- checks ------------------------------------------------------------- */

static int invalid(char *errstr, size_t errlen, const char *what) {
    snprintf(errstr, errlen, "%s", what);
    return LEASE_ERR_INVALID;
}

/* Checks an item and writes its home suffix (":pool:<pool>" or
 * ":own:<owner>"). */
static int item_check(lease_queue_t q, const lease_item_t *item, char *home, size_t homelen,
                      char *errstr, size_t errlen) {
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    if (item == NULL || !lease_policy_id_valid(item->task_id)) return invalid(errstr, errlen, "task_id: not a valid id");
    if ((item->pool == NULL) == (item->owner_id == NULL)) {
        return invalid(errstr, errlen, "item: exactly one of pool and owner_id");
    }
    if (item->pool != NULL && !lease_policy_pool_valid(item->pool)) return invalid(errstr, errlen, "pool: not a pool name");
    if (item->owner_id != NULL && !lease_policy_id_valid(item->owner_id)) return invalid(errstr, errlen, "owner_id: not a valid id");
    if (!lease_policy_priority_valid(item->priority)) return invalid(errstr, errlen, "priority: not in 0..1023");
    if (item->task_json == NULL) return invalid(errstr, errlen, "task_json: missing");
    if (item->author_id != NULL && !lease_policy_id_valid(item->author_id)) return invalid(errstr, errlen, "author_id: not a valid id");
    int n = snprintf(home, homelen, "%s%s", item->pool ? LEASE_SUFFIX_POOL : LEASE_SUFFIX_OWN,
                     item->pool ? item->pool : item->owner_id);
    if (n < 0 || (size_t)n >= homelen) return invalid(errstr, errlen, "item: home too long");
    return LEASE_OK;
}

static size_t json_len(const lease_item_t *item) {
    return item->task_json_len ? item->task_json_len : strlen(item->task_json);
}

/* The item's home queue key. */
static void args_home(args_t *a, const lease_store_t *ls, lease_queue_t q, const lease_item_t *item) {
    if (item->pool) args_key(a, ls, q, LEASE_KEY_POOL, item->pool);
    else args_key(a, ls, q, LEASE_KEY_OWN, item->owner_id);
}

/* The five keys of an item going (back) into its home queue, in the order
 * the enqueue and restore scripts take them, then the base (ARGV[1]). */
static void args_item_keys(args_t *a, const lease_store_t *ls, lease_queue_t q, const lease_item_t *item) {
    args_key(a, ls, q, LEASE_KEY_TASK, item->task_id);
    args_home(a, ls, q, item);
    args_key(a, ls, q, LEASE_KEY_SEQ, NULL);
    args_key(a, ls, q, LEASE_KEY_POOLS, NULL);
    args_key(a, ls, q, LEASE_KEY_PAYLOAD, item->task_id);
    args_key(a, ls, q, LEASE_KEY_BASE, NULL);
}

/* The item as ARGV[2..7], which every script that stores an item (enqueue,
 * restore, restore_held) takes in this order. */
static void args_item(args_t *a, const lease_item_t *item, const char *home, int64_t now_ms) {
    args_str(a, item->task_id);
    args_str(a, home);
    args_int(a, item->priority);
    args_bin(a, item->task_json, json_len(item));
    args_str(a, item->author_id);
    args_int(a, now_ms > 0 ? now_ms : 0);
}

/* ---- enqueue ------------------------------------------------------------ */

int lease_enqueue(lease_store_t *ls, lease_queue_t q, const lease_item_t *item, int64_t now_ms,
                  char *errstr, size_t errlen) {
    char home[LEASE_KEY_MAX];
    int rc = item_check(q, item, home, sizeof(home), errstr, errlen);
    if (rc != LEASE_OK) return rc;
    args_t a;
    a.n = 0, a.bad = false;
    args_item_keys(&a, ls, q, item);
    args_item(&a, item, home, now_ms);
    args_str(&a, item->pool);
    redisReply *rep;
    rc = script_call(ls, SCRIPT_ENQUEUE, 5, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (rep->type != REDIS_REPLY_INTEGER) return bad_reply(rep, "enqueue", errstr, errlen);
    rc = rep->integer == 1 ? LEASE_OK : LEASE_DUPLICATE;
    freeReplyObject(rep);
    return rc;
}

/* ---- acquire ------------------------------------------------------------ */

void lease_free(lease_t *lease) {
    if (lease == NULL) return;
    free(lease->task_json);
    lease->task_json = NULL;
    lease->task_json_len = 0;
}

int lease_acquire(lease_store_t *ls, lease_queue_t q, const lease_request_t *req, lease_t *out,
                  char *errstr, size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    if (req == NULL || !lease_policy_id_valid(req->holder_id)) return invalid(errstr, errlen, "holder_id: not a valid id");
    if (req->npools > LEASE_POOLS_MAX || (req->npools > 0 && req->pools == NULL)) return invalid(errstr, errlen, "pools: too many");
    if (req->npools == 0 && !req->own_queue) return invalid(errstr, errlen, "request: no queue to lease from");
    if (req->ttl_ms <= 0 || (uint64_t)req->ttl_ms > LEASE_NUMBER_MAX) return invalid(errstr, errlen, "ttl_ms: must be positive");
    if (req->max_held < 1) return invalid(errstr, errlen, "max_held: must be at least 1");

    char lease_id[LEASE_ID_LEN];
    event_id_new(lease_id);
    lease_policy_lease_id_mark(lease_id, q);

    args_t a;
    a.n = 0, a.bad = false;
    args_key(&a, ls, q, LEASE_KEY_EXPIRY, NULL);
    args_key(&a, ls, q, LEASE_KEY_HELD, req->holder_id);
    for (size_t i = 0; i < req->npools; i++) args_key(&a, ls, q, LEASE_KEY_POOL, req->pools[i]);
    if (req->own_queue) args_key(&a, ls, q, LEASE_KEY_OWN, req->holder_id);
    int nkeys = a.n;
    args_key(&a, ls, q, LEASE_KEY_BASE, NULL);
    args_str(&a, req->holder_id);
    args_str(&a, lease_id);
    args_int(&a, req->now_ms > 0 ? req->now_ms : 0);
    args_int(&a, req->ttl_ms);
    args_int(&a, req->max_held);
    args_str(&a, req->exclude_author ? "1" : "0");
    redisReply *rep;
    int rc = script_call(ls, SCRIPT_ACQUIRE, nkeys, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (!reply_is_array(rep, 2)) return bad_reply(rep, "acquire", errstr, errlen);
    redisReply **e = rep->element;
    if (reply_is(e[0], "NONE") || reply_is(e[0], "LIMIT")) {
        rc = reply_is(e[0], "NONE") ? LEASE_NONE : LEASE_LIMIT;
        freeReplyObject(rep);
        return rc;
    }
    if (!reply_is(e[0], "OK") || rep->elements != 8 || !reply_copy(e[1], out->task_id, sizeof(out->task_id)) ||
        !reply_u64(e[2], &out->fencing_token) || !reply_u32(e[3], &out->attempt) ||
        !reply_i64(e[4], &out->granted_at_ms) || !reply_i64(e[5], &out->expires_at_ms) ||
        !reply_i64(e[6], &out->queued_at_ms) || e[7]->type != REDIS_REPLY_STRING) {
        memset(out, 0, sizeof(*out));
        return bad_reply(rep, "acquire", errstr, errlen);
    }
    memcpy(out->lease_id, lease_id, sizeof(lease_id));
    size_t jl = e[7]->len;
    out->task_json = malloc(jl + 1);
    if (out->task_json == NULL) abort();
    memcpy(out->task_json, e[7]->str, jl);
    out->task_json[jl] = '\0';
    out->task_json_len = jl;
    freeReplyObject(rep);
    return LEASE_OK;
}

/* ---- heartbeat, release, submit ------------------------------------------ */

/* The three share their keys, their checks and the shape of their reply. */
static int lease_end_op(lease_store_t *ls, int which, const char *lease_id, const char *holder_id,
                        uint64_t fence, int64_t now_ms, int64_t ttl_ms, lease_ack_t *ack,
                        char *errstr, size_t errlen) {
    memset(ack, 0, sizeof(*ack));
    if (!lease_policy_id_valid(holder_id)) return invalid(errstr, errlen, "holder_id: not a valid id");
    lease_queue_t q;
    if (lease_policy_lease_id_queue(lease_id, &q) != 0) {
        /* A client may send anything as a lease id: no such lease. */
        ack->lost = LEASE_LOST_UNKNOWN;
        return LEASE_LOST;
    }
    if (fence > LEASE_NUMBER_MAX) {
        ack->lost = LEASE_LOST_FENCE;
        return LEASE_LOST;
    }
    args_t a;
    a.n = 0, a.bad = false;
    args_key(&a, ls, q, LEASE_KEY_LEASE, lease_id);
    args_key(&a, ls, q, LEASE_KEY_EXPIRY, NULL);
    args_key(&a, ls, q, LEASE_KEY_HELD, holder_id);
    args_key(&a, ls, q, LEASE_KEY_BASE, NULL);
    args_str(&a, lease_id);
    args_str(&a, holder_id);
    if (which == SCRIPT_SUBMIT) args_uint(&a, fence);
    args_int(&a, now_ms > 0 ? now_ms : 0);
    if (which == SCRIPT_HEARTBEAT) args_int(&a, ttl_ms > 0 ? ttl_ms : 0);
    if (which == SCRIPT_SUBMIT) args_int(&a, ls->done_ttl_ms);
    redisReply *rep;
    int rc = script_call(ls, which, 3, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (!reply_is_array(rep, 2)) return bad_reply(rep, "lease call", errstr, errlen);
    redisReply **e = rep->element;
    if (reply_is(e[0], "LOST")) {
        ack->lost = e[1]->type == REDIS_REPLY_STRING ? lost_parse(e[1]->str) : LEASE_LOST_UNKNOWN;
        freeReplyObject(rep);
        return LEASE_LOST;
    }
    if (!reply_is(e[0], "OK") || rep->elements != 7 || !reply_copy(e[1], ack->task_id, sizeof(ack->task_id)) ||
        !reply_u64(e[2], &ack->fencing_token) || !reply_i64(e[3], &ack->expires_at_ms) ||
        !reply_u32(e[4], &ack->heartbeat_count) || !reply_u32(e[5], &ack->attempt) ||
        !reply_i64(e[6], &ack->at_ms)) {
        memset(ack, 0, sizeof(*ack));
        return bad_reply(rep, "lease call", errstr, errlen);
    }
    freeReplyObject(rep);
    return LEASE_OK;
}

int lease_heartbeat(lease_store_t *ls, const char *lease_id, const char *holder_id,
                    int64_t now_ms, int64_t ttl_ms, lease_ack_t *ack, char *errstr, size_t errlen) {
    if (ttl_ms < 0 || (uint64_t)ttl_ms > LEASE_NUMBER_MAX) return invalid(errstr, errlen, "ttl_ms: out of range");
    return lease_end_op(ls, SCRIPT_HEARTBEAT, lease_id, holder_id, 0, now_ms, ttl_ms, ack, errstr, errlen);
}

int lease_release(lease_store_t *ls, const char *lease_id, const char *holder_id, int64_t now_ms,
                  lease_ack_t *ack, char *errstr, size_t errlen) {
    return lease_end_op(ls, SCRIPT_RELEASE, lease_id, holder_id, 0, now_ms, 0, ack, errstr, errlen);
}

int lease_submit(lease_store_t *ls, const char *lease_id, const char *holder_id,
                 uint64_t fencing_token, int64_t now_ms, lease_ack_t *ack, char *errstr,
                 size_t errlen) {
    return lease_end_op(ls, SCRIPT_SUBMIT, lease_id, holder_id, fencing_token, now_ms, 0, ack,
                        errstr, errlen);
}

/* ---- reap --------------------------------------------------------------- */

int lease_reap(lease_store_t *ls, lease_queue_t q, int64_t now_ms, int max_attempts,
               lease_expired_t *out, size_t limit, size_t *nout, char *errstr, size_t errlen) {
    *nout = 0;
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    if (max_attempts < 1) return invalid(errstr, errlen, "max_attempts: must be at least 1");
    if (limit == 0 || out == NULL) return invalid(errstr, errlen, "limit: must be at least 1");
    args_t a;
    a.n = 0, a.bad = false;
    args_key(&a, ls, q, LEASE_KEY_EXPIRY, NULL);
    args_key(&a, ls, q, LEASE_KEY_PARKED, NULL);
    args_key(&a, ls, q, LEASE_KEY_BASE, NULL);
    args_int(&a, now_ms > 0 ? now_ms : 0);
    args_int(&a, max_attempts);
    args_uint(&a, limit);
    redisReply *rep;
    int rc = script_call(ls, SCRIPT_REAP, 2, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 8 != 0 || rep->elements / 8 > limit) {
        return bad_reply(rep, "reap", errstr, errlen);
    }
    for (size_t i = 0; i < rep->elements / 8; i++) {
        redisReply **e = rep->element + i * 8;
        lease_expired_t *x = &out[i];
        memset(x, 0, sizeof(*x));
        long long parked;
        if (!reply_copy(e[0], x->lease_id, sizeof(x->lease_id)) ||
            !reply_copy(e[1], x->task_id, sizeof(x->task_id)) ||
            !reply_copy(e[2], x->holder_id, sizeof(x->holder_id)) ||
            !reply_u64(e[3], &x->fencing_token) || !reply_i64(e[4], &x->expires_at_ms) ||
            !reply_u32(e[5], &x->expired_attempts) || !reply_ll(e[6], &parked) ||
            !reply_i64(e[7], &x->detected_at_ms)) {
            /* The script has run: what it did is done, but it cannot be
             * reported; say so loudly rather than return half a list. */
            return bad_reply(rep, "reap", errstr, errlen);
        }
        x->parked = parked != 0;
        *nout = i + 1;
    }
    freeReplyObject(rep);
    return LEASE_OK;
}

/* ---- restore ------------------------------------------------------------ */

int lease_restore(lease_store_t *ls, lease_queue_t q, const lease_item_t *item,
                  uint64_t fence_floor, uint32_t expired_attempts, int64_t now_ms,
                  uint64_t *fence_out, char ended_lease_id[LEASE_ID_LEN], char *errstr,
                  size_t errlen) {
    if (ended_lease_id) ended_lease_id[0] = '\0';
    char home[LEASE_KEY_MAX];
    int rc = item_check(q, item, home, sizeof(home), errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (fence_floor >= LEASE_NUMBER_MAX) return invalid(errstr, errlen, "fence_floor: out of range");
    args_t a;
    a.n = 0, a.bad = false;
    args_item_keys(&a, ls, q, item);
    args_item(&a, item, home, now_ms);
    args_uint(&a, fence_floor);
    args_uint(&a, expired_attempts);
    args_str(&a, item->pool);
    redisReply *rep;
    rc = script_call(ls, SCRIPT_RESTORE, 5, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    uint64_t fence;
    if (!reply_is_array(rep, 2) || !reply_u64(rep->element[0], &fence) ||
        (rep->element[1]->type != REDIS_REPLY_STRING) || rep->element[1]->len >= LEASE_ID_LEN) {
        return bad_reply(rep, "restore", errstr, errlen);
    }
    if (fence_out) *fence_out = fence;
    if (ended_lease_id) reply_copy(rep->element[1], ended_lease_id, LEASE_ID_LEN);
    freeReplyObject(rep);
    return LEASE_OK;
}

int lease_restore_held(lease_store_t *ls, lease_queue_t q, const lease_item_t *item,
                       const lease_held_t *held, uint32_t expired_attempts, int64_t now_ms,
                       char *errstr, size_t errlen) {
    char home[LEASE_KEY_MAX];
    int rc = item_check(q, item, home, sizeof(home), errstr, errlen);
    if (rc != LEASE_OK) return rc;
    lease_queue_t lq;
    if (held == NULL || lease_policy_lease_id_queue(held->lease_id, &lq) != 0 || lq != q) {
        return invalid(errstr, errlen, "lease_id: not a lease id of this queue");
    }
    if (!lease_policy_id_valid(held->holder_id)) return invalid(errstr, errlen, "holder_id: not a valid id");
    if (held->fencing_token == 0 || held->fencing_token >= LEASE_NUMBER_MAX) return invalid(errstr, errlen, "fencing_token: out of range");
    if (held->expires_at_ms <= 0 || held->ttl_ms <= 0) return invalid(errstr, errlen, "expires_at_ms, ttl_ms: must be positive");
    args_t a;
    a.n = 0, a.bad = false;
    args_key(&a, ls, q, LEASE_KEY_TASK, item->task_id);
    args_key(&a, ls, q, LEASE_KEY_EXPIRY, NULL);
    args_key(&a, ls, q, LEASE_KEY_HELD, held->holder_id);
    args_key(&a, ls, q, LEASE_KEY_POOLS, NULL);
    args_key(&a, ls, q, LEASE_KEY_PAYLOAD, item->task_id);
    args_key(&a, ls, q, LEASE_KEY_BASE, NULL);
    args_item(&a, item, home, now_ms);
    args_str(&a, held->lease_id);
    args_str(&a, held->holder_id);
    args_uint(&a, held->fencing_token);
    args_int(&a, held->expires_at_ms);
    args_int(&a, held->ttl_ms);
    args_uint(&a, expired_attempts);
    args_str(&a, item->pool);
    redisReply *rep;
    rc = script_call(ls, SCRIPT_RESTORE_HELD, 5, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (!reply_is_array(rep, 2)) return bad_reply(rep, "restore_held", errstr, errlen);
    rc = reply_is(rep->element[0], "OK") ? LEASE_OK : reply_is(rep->element[0], "LOST") ? LEASE_LOST : -100;
    if (rc == -100) return bad_reply(rep, "restore_held", errstr, errlen);
    freeReplyObject(rep);
    return rc;
}

/* ---- introspection ------------------------------------------------------ */

int lease_pool_depths(lease_store_t *ls, lease_queue_t q, const lease_pool_name_t *pools,
                      size_t npools, long long *depths, char *errstr, size_t errlen) {
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    if (npools > LEASE_POOLS_MAX) return invalid(errstr, errlen, "pools: too many");
    if (npools == 0) return LEASE_OK;
    args_t a;
    a.n = 0, a.bad = false;
    for (size_t i = 0; i < npools; i++) args_key(&a, ls, q, LEASE_KEY_POOL, pools[i]);
    args_key(&a, ls, q, LEASE_KEY_BASE, NULL);
    redisReply *rep;
    int rc = script_call(ls, SCRIPT_DEPTHS, (int)npools, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != npools) return bad_reply(rep, "depths", errstr, errlen);
    for (size_t i = 0; i < npools; i++) {
        if (!reply_ll(rep->element[i], &depths[i])) return bad_reply(rep, "depths", errstr, errlen);
    }
    freeReplyObject(rep);
    return LEASE_OK;
}

/* Runs a one-key read command answering an integer. */
static int int_command(lease_store_t *ls, const char *cmd, lease_queue_t q, lease_key_t kind,
                       const char *id, long long *out, char *errstr, size_t errlen) {
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    args_t a;
    a.n = 0, a.bad = false;
    args_str(&a, cmd);
    args_key(&a, ls, q, kind, id);
    redisReply *rep;
    int rc = command_call(ls, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (rep->type != REDIS_REPLY_INTEGER) return bad_reply(rep, cmd, errstr, errlen);
    *out = rep->integer;
    freeReplyObject(rep);
    return LEASE_OK;
}

int lease_own_depth(lease_store_t *ls, lease_queue_t q, const char *owner_id, long long *depth,
                    char *errstr, size_t errlen) {
    if (!lease_policy_id_valid(owner_id)) return invalid(errstr, errlen, "owner_id: not a valid id");
    return int_command(ls, "ZCARD", q, LEASE_KEY_OWN, owner_id, depth, errstr, errlen);
}

int lease_open_count(lease_store_t *ls, lease_queue_t q, long long *count, char *errstr,
                     size_t errlen) {
    return int_command(ls, "ZCARD", q, LEASE_KEY_EXPIRY, NULL, count, errstr, errlen);
}

int lease_held_count(lease_store_t *ls, lease_queue_t q, const char *holder_id, int64_t now_ms,
                     long long *count, char *errstr, size_t errlen) {
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    if (!lease_policy_id_valid(holder_id)) return invalid(errstr, errlen, "holder_id: not a valid id");
    args_t a;
    a.n = 0, a.bad = false;
    args_key(&a, ls, q, LEASE_KEY_HELD, holder_id);
    args_key(&a, ls, q, LEASE_KEY_BASE, NULL);
    args_int(&a, now_ms > 0 ? now_ms : 0);
    redisReply *rep;
    int rc = script_call(ls, SCRIPT_HELD, 1, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (rep->type != REDIS_REPLY_INTEGER) return bad_reply(rep, "held", errstr, errlen);
    *count = rep->integer;
    freeReplyObject(rep);
    return LEASE_OK;
}

int lease_pool_list(lease_store_t *ls, lease_queue_t q, lease_pool_name_t **pools,
                    size_t *npools, char *errstr, size_t errlen) {
    *pools = NULL;
    *npools = 0;
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    args_t a;
    a.n = 0, a.bad = false;
    args_str(&a, "SMEMBERS");
    args_key(&a, ls, q, LEASE_KEY_POOLS, NULL);
    redisReply *rep;
    int rc = command_call(ls, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (rep->type != REDIS_REPLY_ARRAY) return bad_reply(rep, "pools", errstr, errlen);
    lease_pool_name_t *list = calloc(rep->elements ? rep->elements : 1, sizeof(*list));
    if (list == NULL) abort();
    for (size_t i = 0; i < rep->elements; i++) {
        if (!reply_copy(rep->element[i], list[i], sizeof(list[i]))) {
            free(list);
            return bad_reply(rep, "pools", errstr, errlen);
        }
    }
    *pools = list;
    *npools = rep->elements;
    freeReplyObject(rep);
    return LEASE_OK;
}

int lease_peek(lease_store_t *ls, const char *lease_id, const char *holder_id, lease_ack_t *ack, char *errstr,
               size_t errlen) {
    memset(ack, 0, sizeof(*ack));
    lease_queue_t q;
    if (lease_policy_lease_id_queue(lease_id, &q) != 0) {
        ack->lost = LEASE_LOST_UNKNOWN;
        return LEASE_LOST;
    }
    args_t a;
    a.n = 0, a.bad = false;
    args_str(&a, "HMGET");
    args_key(&a, ls, q, LEASE_KEY_LEASE, lease_id);
    args_str(&a, "task");
    args_str(&a, "holder");
    args_str(&a, "fence");
    args_str(&a, "att");
    redisReply *rep;
    int rc = command_call(ls, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (!reply_is_array(rep, 4)) return bad_reply(rep, "lease", errstr, errlen);
    redisReply **e = rep->element;
    if (e[0]->type != REDIS_REPLY_STRING) {
        ack->lost = LEASE_LOST_UNKNOWN;
        rc = LEASE_LOST;
    } else if (e[1]->type != REDIS_REPLY_STRING || strcmp(e[1]->str, holder_id) != 0) {
        ack->lost = LEASE_LOST_HOLDER;
        rc = LEASE_LOST;
    } else if (!reply_copy(e[0], ack->task_id, sizeof(ack->task_id)) || !reply_u64(e[2], &ack->fencing_token)) {
        return bad_reply(rep, "lease", errstr, errlen);
    } else {
        /* Leases restored from PostgreSQL before 'att' existed have none. */
        if (!reply_u32(e[3], &ack->attempt)) ack->attempt = 0;
    }
    freeReplyObject(rep);
    return rc;
}

int lease_confirm(lease_store_t *ls, lease_queue_t q, const char *task_id, char *errstr, size_t errlen) {
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    args_t a;
    a.n = 0, a.bad = false;
    args_str(&a, "ZREM");
    args_key(&a, ls, q, LEASE_KEY_UNCONFIRMED, NULL);
    args_str(&a, task_id);
    redisReply *rep;
    int rc = command_call(ls, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    freeReplyObject(rep);
    return LEASE_OK;
}

int lease_unconfirmed(lease_store_t *ls, lease_queue_t q, int64_t before_ms, char (*ids)[LEASE_ID_MAX + 1], size_t max,
                      size_t *n, char *errstr, size_t errlen) {
    *n = 0;
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    args_t a;
    a.n = 0, a.bad = false;
    args_str(&a, "ZRANGEBYSCORE");
    args_key(&a, ls, q, LEASE_KEY_UNCONFIRMED, NULL);
    args_str(&a, "-inf");
    args_int(&a, before_ms);
    args_str(&a, "LIMIT");
    args_str(&a, "0");
    args_int(&a, (long long)max);
    redisReply *rep;
    int rc = command_call(ls, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (rep->type != REDIS_REPLY_ARRAY) return bad_reply(rep, "unconfirmed", errstr, errlen);
    for (size_t i = 0; i < rep->elements && *n < max; i++)
        if (reply_copy(rep->element[i], ids[*n], LEASE_ID_MAX + 1)) (*n)++;
    freeReplyObject(rep);
    return LEASE_OK;
}

int lease_cancel(lease_store_t *ls, lease_queue_t q, const char *task_id, int64_t now_ms, char *errstr,
                 size_t errlen) {
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    if (!lease_policy_id_valid(task_id)) return invalid(errstr, errlen, "task_id: not a valid id");
    args_t a;
    a.n = 0, a.bad = false;
    args_key(&a, ls, q, LEASE_KEY_TASK, task_id);
    args_key(&a, ls, q, LEASE_KEY_PARKED, NULL);
    args_key(&a, ls, q, LEASE_KEY_BASE, NULL);
    args_str(&a, task_id);
    args_int(&a, now_ms > 0 ? now_ms : 0);
    redisReply *rep;
    int rc = script_call(ls, SCRIPT_CANCEL, 2, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (rep->type != REDIS_REPLY_INTEGER) return bad_reply(rep, "cancel", errstr, errlen);
    freeReplyObject(rep);
    return LEASE_OK;
}

int lease_loads(lease_store_t *ls, lease_queue_t q, const char *const *people, size_t n, int64_t now_ms,
                long long *queued, long long *held, long long *seen, char *errstr, size_t errlen) {
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    /* In slices: args_t holds a bounded number of arguments. */
    enum { SLICE = LEASE_POOLS_MAX / 3 };
    for (size_t from = 0; from < n; from += SLICE) {
        size_t k = n - from < SLICE ? n - from : SLICE;
        args_t a;
        a.n = 0, a.bad = false;
        for (size_t i = 0; i < k; i++) {
            if (!lease_policy_id_valid(people[from + i])) return invalid(errstr, errlen, "person: not a valid id");
            args_key(&a, ls, q, LEASE_KEY_OWN, people[from + i]);
            args_key(&a, ls, q, LEASE_KEY_HELD, people[from + i]);
        }
        args_key(&a, ls, q, LEASE_KEY_BASE, NULL);
        args_int(&a, now_ms > 0 ? now_ms : 0);
        for (size_t i = 0; i < k; i++) args_str(&a, people[from + i]);
        redisReply *rep;
        int rc = script_call(ls, SCRIPT_LOADS, (int)(2 * k), &a, &rep, errstr, errlen);
        if (rc != LEASE_OK) return rc;
        if (!reply_is_array(rep, 3 * k)) return bad_reply(rep, "loads", errstr, errlen);
        for (size_t i = 0; i < k; i++) {
            queued[from + i] = rep->element[3 * i]->integer;
            held[from + i] = rep->element[3 * i + 1]->integer;
            seen[from + i] = rep->element[3 * i + 2]->integer;
        }
        freeReplyObject(rep);
    }
    return LEASE_OK;
}

int lease_task_info(lease_store_t *ls, lease_queue_t q, const char *task_id,
                    lease_task_info_t *info, char *errstr, size_t errlen) {
    memset(info, 0, sizeof(*info));
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    if (!lease_policy_id_valid(task_id)) return invalid(errstr, errlen, "task_id: not a valid id");
    args_t a;
    a.n = 0, a.bad = false;
    args_str(&a, "HMGET");
    args_key(&a, ls, q, LEASE_KEY_TASK, task_id);
    args_str(&a, "state");
    args_str(&a, "fence");
    args_str(&a, "leases");
    args_str(&a, "attempts");
    args_str(&a, "lease");
    redisReply *rep;
    int rc = command_call(ls, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (!reply_is_array(rep, 5)) return bad_reply(rep, "task info", errstr, errlen);
    redisReply **e = rep->element;
    static const char *const states[] = {"", "queued", "leased", "done", "parked"};
    if (e[0]->type == REDIS_REPLY_STRING) {
        for (int s = LEASE_TASK_QUEUED; s <= LEASE_TASK_PARKED; s++) {
            if (strcmp(e[0]->str, states[s]) == 0) info->state = (lease_task_state_t)s;
        }
        if (info->state == LEASE_TASK_ABSENT || !reply_u64(e[1], &info->fence) ||
            !reply_u32(e[2], &info->leases) || !reply_u32(e[3], &info->expired_attempts)) {
            memset(info, 0, sizeof(*info));
            return bad_reply(rep, "task info", errstr, errlen);
        }
        if (info->state == LEASE_TASK_LEASED) reply_copy(e[4], info->lease_id, sizeof(info->lease_id));
    }
    freeReplyObject(rep);
    return LEASE_OK;
}

/* ---- the lease-event stream -------------------------------------------- */

/* The fields of an entry as a JSON object, for the dead-letter record of an
 * entry that does not decode. */
static char *entry_raw_json(const redisReply *fields) {
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
            json_object_set_new(o, k->str, json_stringn(v->str, v->len));
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

int lease_events_read(lease_store_t *ls, lease_queue_t q, lease_stream_entry_t *out, size_t max,
                      size_t *nout, char *errstr, size_t errlen) {
    *nout = 0;
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    args_t a;
    a.n = 0, a.bad = false;
    args_str(&a, "XRANGE");
    args_key(&a, ls, q, LEASE_KEY_EVENTS, NULL);
    args_str(&a, "-");
    args_str(&a, "+");
    args_str(&a, "COUNT");
    args_int(&a, (long long)max);
    redisReply *rep;
    int rc = command_call(ls, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements > max) return bad_reply(rep, "XRANGE", errstr, errlen);
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        lease_stream_entry_t *se = &out[*nout];
        memset(se, 0, sizeof(*se));
        if (!reply_is_array(e, 2) || !reply_copy(e->element[0], se->id, sizeof(se->id)) ||
            e->element[1]->type != REDIS_REPLY_ARRAY) {
            lease_stream_entries_clear(out, *nout);
            *nout = 0;
            return bad_reply(rep, "XRANGE", errstr, errlen);
        }
        const redisReply *f = e->element[1];
        const char *kv[64];
        size_t lens[64], n = 0;
        bool strings = f->elements <= 64;
        for (size_t j = 0; strings && j < f->elements; j++) {
            strings = f->element[j]->type == REDIS_REPLY_STRING;
            if (strings) kv[n] = f->element[j]->str, lens[n] = f->element[j]->len, n++;
        }
        if (!strings) {
            se->parse_rc = -1;
            snprintf(se->err, sizeof(se->err), "lease event entry: too many or non-string fields");
        } else {
            se->parse_rc = lease_event_parse(kv, lens, n, &se->rec, se->err, sizeof(se->err));
        }
        if (se->parse_rc != 0) se->raw = entry_raw_json(f);
        (*nout)++;
    }
    freeReplyObject(rep);
    return LEASE_OK;
}

void lease_stream_entries_clear(lease_stream_entry_t *entries, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(entries[i].raw);
        entries[i].raw = NULL;
    }
}

int lease_events_delete(lease_store_t *ls, lease_queue_t q, const lease_stream_entry_t *entries, size_t n,
                        char *errstr, size_t errlen) {
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    if (n == 0) return LEASE_OK;
    /* XDEL with every id in one round trip: argv built here, not in args_t,
     * whose size is bounded. */
    const char **argv = malloc((n + 2) * sizeof(*argv));
    size_t *lens = malloc((n + 2) * sizeof(*lens));
    char key[LEASE_KEY_MAX];
    int klen = lease_key(key, sizeof(key), ls->ns, q, LEASE_KEY_EVENTS, NULL);
    if (argv == NULL || lens == NULL || klen < 0) abort();
    argv[0] = "XDEL", lens[0] = 4;
    argv[1] = key, lens[1] = (size_t)klen;
    for (size_t i = 0; i < n; i++) argv[i + 2] = entries[i].id, lens[i + 2] = strlen(entries[i].id);
    redisReply *rep = redis_command_argv(ls->redis, (int)(n + 2), argv, lens, errstr, errlen);
    free(argv);
    free(lens);
    if (rep == NULL) return LEASE_ERR_REDIS;
    int rc = rep->type == REDIS_REPLY_INTEGER ? LEASE_OK : LEASE_ERR_REPLY;
    if (rc != LEASE_OK) snprintf(errstr, errlen, "redis: XDEL: %s", rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
    freeReplyObject(rep);
    return rc;
}

int lease_events_stream(const lease_store_t *ls, lease_queue_t q, char *buf, size_t len) {
    return lease_key(buf, len, ls->ns, q, LEASE_KEY_EVENTS, NULL);
}

int lease_events_pending(lease_store_t *ls, lease_queue_t q, long long *count, char *errstr, size_t errlen) {
    return int_command(ls, "XLEN", q, LEASE_KEY_EVENTS, NULL, count, errstr, errlen);
}

int lease_events_claim(lease_store_t *ls, lease_queue_t q, const char *owner, int64_t ttl_ms, bool *mine,
                       char *errstr, size_t errlen) {
    *mine = false;
    if (!lease_queue_valid((int)q)) return invalid(errstr, errlen, "queue: not a queue");
    args_t a;
    a.n = 0, a.bad = false;
    args_key(&a, ls, q, LEASE_KEY_RELAY, NULL);
    args_str(&a, owner);
    args_int(&a, ttl_ms);
    redisReply *rep;
    int rc = script_call(ls, SCRIPT_CLAIM, 1, &a, &rep, errstr, errlen);
    if (rc != LEASE_OK) return rc;
    if (rep->type != REDIS_REPLY_INTEGER) return bad_reply(rep, "claim", errstr, errlen);
    *mine = rep->integer == 1;
    freeReplyObject(rep);
    return LEASE_OK;
}
