/* lease_scripts: the Lua scripts behind leases.c, one per operation, each
 * run atomically by EVALSHA (common/redis.h loads it once and reloads it on
 * NOSCRIPT).  Included by leases.c only.
 *
 * Conventions for every script:
 *   - ARGV[1] is the queue's base key "{ns:q:<queue>}" (lease_key BASE).  Keys
 *     the caller can name are passed in KEYS; keys a script only learns while
 *     it runs (the task behind a popped id, the holder of an expiring lease,
 *     the home queue of a requeued task) are built as base .. suffix.  All
 *     of them carry the queue's hash tag, so every key a script touches is in
 *     one cluster slot (the BullMQ approach to keys discovered in-script).
 *   - A time argument of 0 means "the Redis server's clock" (TIME), so the
 *     dispatcher's instances share one clock; tests pass explicit times.
 *   - Numbers go into Redis through num(), which prints integers exactly
 *     (Lua's tostring switches to exponent notation past 14 digits).
 *   - Every change a lease goes through is appended, by the script that
 *     makes it, to the queue's EVENTS stream with emit(): the event and the
 *     change are one atomic step, so a crash can lose neither without the
 *     other.  lease_relay.c drains the stream to Kafka; lease_event.h names
 *     the fields.
 *   - States of a task hash: queued (in its home queue), leased (field
 *     `lease` names the live lease), done (submitted; payload key deleted),
 *     parked (taken out after max_attempts expired leases).
 *
 * Complexity per call (n = size of the sorted set concerned):
 *   enqueue O(log n); acquire O(P log n) over P candidate queues (plus at
 *   most LEASE_AUTHOR_SCAN_MAX HGETs per queue when authors are excluded);
 *   heartbeat, release, submit O(log n); reap O(log n + k log n) for k
 *   expired leases, at most `limit`; restore O(log n); depths O(P). */
#ifndef ANNOT_LEASE_SCRIPTS_H
#define ANNOT_LEASE_SCRIPTS_H

#include "lease_policy.h"

#define LEASE_STR_(x) #x
#define LEASE_STR(x)  LEASE_STR_(x)

/* How far acquire looks past tasks the holder authored, per queue: a
 * validator's own queue holds only what the assigner gave them (never their
 * own work), so this bound only matters against a broken assigner. */
#define LEASE_AUTHOR_SCAN_WINDOW 32
#define LEASE_AUTHOR_SCAN_MAX    1024

/* The pieces scripts share, each included only by the scripts that use it:
 * every `local function` is a closure built again on each call, so a script
 * carries only what it calls.
 *
 * LEASE_LUA_CORE, in every script: the base key, the clock, number
 * formatting, the queue score (lease_policy_queue_score) and the event
 * append.  num() is a string.format, costly beside the Redis calls around it
 * (about half a microsecond): hot paths format each number once and pass the
 * string on; emit() takes fence, attempt and time already formatted. */
#define LEASE_LUA_CORE                                                                        \
    "local base = ARGV[1]\n"                                                                  \
    "local function now_ms(arg)\n"                                                            \
    "  local n = tonumber(arg)\n"                                                             \
    "  if n and n > 0 then return n end\n"                                                    \
    "  local t = redis.call('TIME')\n"                                                        \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                    \
    "end\n"                                                                                   \
    "local function num(x) return string.format('%.0f', x) end\n"                             \
    /* A stored number (or nil) as emit() wants it: what num(tonumber(x) or 0) \
     * gives, for the paths that read it back from a hash. */                                 \
    "local function num0(x) return num(tonumber(x) or 0) end\n"                               \
    /* One lease event: kind, the lease's identity, the time, then pairs of \
     * kind-specific fields (lease_event.h).  fence, att and at are decimal \
     * strings (num, num0). */                                                                \
    "local function emit(kind, lease_id, task_id, holder, fence, att, at, ...)\n"             \
    "  redis.call('XADD', base .. '" LEASE_SUFFIX_EVENTS "', '*', 'k', kind, 'l', lease_id,\n" \
    "             't', task_id, 'h', holder or '', 'f', fence, 'a', att, 'at', at, ...)\n"   \
    "end\n"                                                                                   \
    "local function score(prio, seq)\n"                                                       \
    "  return (" LEASE_STR(LEASE_PRIORITY_MAX) " - prio) * 4398046511104 + seq\n"             \
    "end\n"

/* requeue: back into its home queue behind the tasks of its priority, and
 * wake the long-pollers of that queue.  now_s is num(now). */
#define LEASE_LUA_REQUEUE                                                                     \
    "local function requeue(tk, task_id, now_s)\n"                                            \
    "  local t = redis.call('HMGET', tk, 'home', 'prio')\n"                                   \
    "  local seq = redis.call('INCR', base .. '" LEASE_SUFFIX_SEQ "')\n"                      \
    "  redis.call('ZADD', base .. t[1], num(score(tonumber(t[2]), seq)), task_id)\n"          \
    "  redis.call('HSET', tk, 'state', 'queued', 'lease', '', 'queued_at', now_s)\n"          \
    "  redis.call('PUBLISH', base .. '" LEASE_SUFFIX_WAKE "', t[1])\n"                        \
    "end\n"

/* live_lease: a lease is live when it exists, belongs to holder, has not
 * expired, and is still the task's current lease with the task's current
 * fence (a restore may have superseded it).  Returns its fields, or nil and
 * the reason.  fence_s and att_s are the stored fence and attempt as emit()
 * wants them, unformatted: every script writes them as canonical decimals
 * (num, HINCRBY, or a Lua integer Redis prints with %.17g), so each stored
 * string is its own num0. */
#define LEASE_LUA_LIVE                                                                        \
    "local function live_lease(lk, lease_id, holder, now)\n"                                  \
    "  local l = redis.call('HMGET', lk, 'task', 'holder', 'fence', 'exp', 'ttl')\n"          \
    "  if not l[1] then return nil, 'unknown' end\n"                                          \
    "  if l[2] ~= holder then return nil, 'holder' end\n"                                     \
    "  if tonumber(l[4]) <= now then return nil, 'expired' end\n"                             \
    "  local tk = base .. '" LEASE_SUFFIX_TASK "' .. l[1]\n"                                  \
    "  local t = redis.call('HMGET', tk, 'state', 'lease', 'fence', 'leases')\n"              \
    "  if t[1] ~= 'leased' or t[2] ~= lease_id or t[3] ~= l[3] then\n"                        \
    "    return nil, 'superseded'\n"                                                          \
    "  end\n"                                                                                 \
    "  local attempt = tonumber(t[4]) or 0\n"                                                 \
    "  return {task = l[1], fence = tonumber(l[3]), exp = tonumber(l[4]),\n"                  \
    "          ttl = tonumber(l[5]), tk = tk, attempt = attempt,\n"                           \
    "          fence_s = l[3], att_s = t[4] or '0'}\n"                                 \
    "end\n"

/* drop_lease: deletes a lease and its index entries. */
#define LEASE_LUA_DROP                                                                        \
    "local function drop_lease(lease_id, holder)\n"                                           \
    "  redis.call('DEL', base .. '" LEASE_SUFFIX_LEASE "' .. lease_id)\n"                     \
    "  redis.call('ZREM', base .. '" LEASE_SUFFIX_EXPIRY "', lease_id)\n"                     \
    "  if holder then redis.call('ZREM', base .. '" LEASE_SUFFIX_HELD "' .. holder, lease_id) end\n" \
    "end\n"

/* evict (needs LEASE_LUA_DROP): takes a task out of its queue, its lease and
 * the parked set; returns the id of the lease it ended (reported as
 * revoked), or ''. */
#define LEASE_LUA_EVICT                                                                       \
    "local function evict(tk, task_id, now)\n"                                                \
    "  local t = redis.call('HMGET', tk, 'lease', 'home')\n"                                  \
    "  local ended = ''\n"                                                                    \
    "  if t[1] and t[1] ~= '' then\n"                                                         \
    "    local l = redis.call('HMGET', base .. '" LEASE_SUFFIX_LEASE "' .. t[1], 'holder', 'fence', 'att')\n" \
    "    drop_lease(t[1], l[1])\n"                                                            \
    "    if l[1] then\n"                                                                      \
    "      emit('released', t[1], task_id, l[1], num0(l[2]), num0(l[3]), num(now),\n"         \
    "           'why', 'revoked', 'rq', 1)\n"                                                 \
    "    end\n"                                                                               \
    "    ended = t[1]\n"                                                                      \
    "  end\n"                                                                                 \
    "  if t[2] then redis.call('ZREM', base .. t[2], task_id) end\n"                          \
    "  redis.call('ZREM', base .. '" LEASE_SUFFIX_PARKED "', task_id)\n"                      \
    "  return ended\n"                                                                        \
    "end\n"

/* enqueue: stores a new task and queues it in its home.  Idempotent: a task
 * the queue already knows (queued, leased, done or parked) is left alone.
 *   KEYS: 1 task hash, 2 home queue (pool or own), 3 seq, 4 pools set,
 *         5 payload
 *   ARGV: 1 base, 2 task_id, 3 home suffix, 4 priority, 5 task json,
 *         6 author ('' for none), 7 now, 8 pool name ('' for an own queue)
 *   Returns 1 when queued, 0 when the task was already known. */
static const char LEASE_LUA_ENQUEUE[] =
    LEASE_LUA_CORE
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "local now = now_ms(ARGV[7])\n"
    "local seq = redis.call('INCR', KEYS[3])\n"
    "redis.call('HSET', KEYS[1], 'state', 'queued', 'home', ARGV[3], 'prio', ARGV[4],\n"
    "           'author', ARGV[6], 'fence', 0, 'leases', 0, 'attempts', 0,\n"
    "           'lease', '', 'queued_at', num(now))\n"
    "redis.call('SET', KEYS[5], ARGV[5])\n"
    "redis.call('ZADD', KEYS[2], num(score(tonumber(ARGV[4]), seq)), ARGV[2])\n"
    "if ARGV[8] ~= '' then redis.call('SADD', KEYS[4], ARGV[8]) end\n"
    "redis.call('PUBLISH', base .. '" LEASE_SUFFIX_WAKE "', ARGV[3])\n"
    "return 1\n";

/* acquire: hands the holder the best queued task of the candidate queues
 * (highest priority, then oldest, across all of them), as a new lease.
 * The task's fencing token is raised by one: it rises with every lease and is
 * never reset.  With exclude_author, a task whose author is the holder is
 * passed over and stays queued.
 *   KEYS: 1 expiry index, 2 the holder's held set, 3.. candidate queues
 *   ARGV: 1 base, 2 holder, 3 new lease id, 4 now, 5 ttl, 6 max_held,
 *         7 exclude_author ('1' or '0')
 *   Returns {'OK', task_id, fence, attempt, granted_at, expires_at,
 *   queued_at, json} or {'NONE', now} or {'LIMIT', now}. */
static const char LEASE_LUA_ACQUIRE[] =
    LEASE_LUA_CORE
    "local holder, lease_id = ARGV[2], ARGV[3]\n"
    "local now = now_ms(ARGV[4])\n"
    "local now_s = num(now)\n"
    "local ttl = tonumber(ARGV[5])\n"
    /* Asking for work is presence, whatever the answer. */
    "redis.call('ZADD', base .. '" LEASE_SUFFIX_SEEN "', now_s, holder)\n"
    /* Only live leases count: an expired one the reaper has not reached yet
     * must not keep its holder from working. */
    "if redis.call('ZCOUNT', KEYS[2], '(' .. now_s, '+inf') >= tonumber(ARGV[6]) then\n"
    "  return {'LIMIT', now}\n"
    "end\n"
    "local exclude = ARGV[7] == '1'\n"
    "local function head(key)\n"
    "  if not exclude then\n"
    "    local h = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')\n"
    "    if h[1] then return h[1], tonumber(h[2]) end\n"
    "    return nil\n"
    "  end\n"
    "  local start = 0\n"
    "  while start < " LEASE_STR(LEASE_AUTHOR_SCAN_MAX) " do\n"
    "    local w = redis.call('ZRANGE', key, start, start + " LEASE_STR(LEASE_AUTHOR_SCAN_WINDOW) " - 1, 'WITHSCORES')\n"
    "    if #w == 0 then return nil end\n"
    "    for i = 1, #w, 2 do\n"
    "      if redis.call('HGET', base .. '" LEASE_SUFFIX_TASK "' .. w[i], 'author') ~= holder then\n"
    "        return w[i], tonumber(w[i + 1])\n"
    "      end\n"
    "    end\n"
    "    start = start + " LEASE_STR(LEASE_AUTHOR_SCAN_WINDOW) "\n"
    "  end\n"
    "  return nil\n"
    "end\n"
    /* Takes the best head of the candidate queues out of its queue.  With
     * one queue and no author to pass over, the head is the best: one
     * ZPOPMIN instead of a ZRANGE and a ZREM. */
    "local function pop()\n"
    "  if #KEYS == 3 and not exclude then\n"
    "    return redis.call('ZPOPMIN', KEYS[3])[1]\n"
    "  end\n"
    "  local best_key, best_id, best_score\n"
    "  for i = 3, #KEYS do\n"
    "    local id, s = head(KEYS[i])\n"
    "    if id and (best_score == nil or s < best_score) then\n"
    "      best_key, best_id, best_score = KEYS[i], id, s\n"
    "    end\n"
    "  end\n"
    "  if best_id then redis.call('ZREM', best_key, best_id) end\n"
    "  return best_id\n"
    "end\n"
    /* A queue entry whose task is not 'queued' cannot arise from these
     * scripts; should one appear (a hand edit), drop it and look again,
     * a bounded number of times. */
    "for round = 1, 16 do\n"
    "  local best_id = pop()\n"
    "  if not best_id then return {'NONE', now} end\n"
    "  local tk = base .. '" LEASE_SUFFIX_TASK "' .. best_id\n"
    "  local t = redis.call('HMGET', tk, 'state', 'queued_at', 'fence', 'leases')\n"
    /* No payload: the entry outlived its task (a partial loss); never
     * hand out a lease without its task.  The rebuild from PostgreSQL
     * queues it again. */
    "  local json = t[1] == 'queued' and redis.call('GET', base .. '" LEASE_SUFFIX_PAYLOAD "' .. best_id)\n"
    "  if json then\n"
    /* The fencing token and the lease count rise by one (what HINCRBY
     * did, read and written in the one HSET below; the script is atomic). */
    "    local fence = (tonumber(t[3]) or 0) + 1\n"
    "    local attempt = (tonumber(t[4]) or 0) + 1\n"
    "    local fence_s, att_s = num(fence), num(attempt)\n"
    "    local exp = now + ttl\n"
    "    local exp_s, ttl_s = num(exp), num(ttl)\n"
    "    redis.call('HSET', tk, 'fence', fence_s, 'leases', att_s, 'state', 'leased', 'lease', lease_id)\n"
    "    redis.call('HSET', base .. '" LEASE_SUFFIX_LEASE "' .. lease_id, 'task', best_id,\n"
    "               'holder', holder, 'fence', fence_s, 'exp', exp_s, 'ttl', ttl_s,\n"
    "               'granted', now_s, 'hb', 0, 'att', att_s)\n"
    "    redis.call('ZADD', KEYS[1], exp_s, lease_id)\n"
    "    redis.call('ZADD', KEYS[2], exp_s, lease_id)\n"
    "    local queued_at = tonumber(t[2]) or now\n"
    "    emit('granted', lease_id, best_id, holder, fence_s, att_s, now_s, 'exp', exp_s,\n"
    "         'ttl', ttl_s, 'qw', num(math.max(now - queued_at, 0)))\n"
    "    return {'OK', best_id, fence, attempt, now, exp, queued_at, json}\n"
    "  end\n"
    "end\n"
    "return {'NONE', now}\n";

/* heartbeat: extends a live lease to now + ttl (ttl 0: the lease's own).
 *   KEYS: 1 lease hash, 2 expiry index, 3 the holder's held set
 *   ARGV: 1 base, 2 lease id, 3 holder, 4 now, 5 ttl
 *   Returns {'OK', task_id, fence, expires_at, heartbeats, attempt, now} or
 *   {'LOST', reason}. */
static const char LEASE_LUA_HEARTBEAT[] =
    LEASE_LUA_CORE
    LEASE_LUA_LIVE
    "local now = now_ms(ARGV[4])\n"
    "local l, why = live_lease(KEYS[1], ARGV[2], ARGV[3], now)\n"
    "if not l then return {'LOST', why} end\n"
    "local ttl = tonumber(ARGV[5])\n"
    "if not ttl or ttl <= 0 then ttl = l.ttl end\n"
    "local exp = now + ttl\n"
    "local exp_s = num(exp)\n"
    "local hb = redis.call('HINCRBY', KEYS[1], 'hb', 1)\n"
    "redis.call('HSET', KEYS[1], 'exp', exp_s)\n"
    "redis.call('ZADD', KEYS[2], exp_s, ARGV[2])\n"
    "redis.call('ZADD', KEYS[3], exp_s, ARGV[2])\n"
    "emit('heartbeat', ARGV[2], l.task, ARGV[3], l.fence_s, l.att_s, num(now), 'exp', exp_s, 'n', hb)\n"
    "return {'OK', l.task, l.fence, exp, hb, l.attempt, now}\n";

/* release: ends a live lease and puts its task back in its home queue at its
 * priority (behind the tasks already waiting there, so the same holder does
 * not get it straight back).  Not an attempt: the count of expired leases
 * is unchanged.
 *   KEYS: 1 lease hash, 2 expiry index, 3 the holder's held set
 *   ARGV: 1 base, 2 lease id, 3 holder, 4 now
 *   Returns {'OK', task_id, fence, 0, 0, attempt, now} or {'LOST', reason}. */
static const char LEASE_LUA_RELEASE[] =
    LEASE_LUA_CORE
    LEASE_LUA_REQUEUE
    LEASE_LUA_LIVE
    "local now = now_ms(ARGV[4])\n"
    "local l, why = live_lease(KEYS[1], ARGV[2], ARGV[3], now)\n"
    "if not l then return {'LOST', why} end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('ZREM', KEYS[2], ARGV[2])\n"
    "redis.call('ZREM', KEYS[3], ARGV[2])\n"
    "local now_s = num(now)\n"
    "requeue(l.tk, l.task, now_s)\n"
    "emit('released', ARGV[2], l.task, ARGV[3], l.fence_s, l.att_s, now_s, 'why', 'holder', 'rq', 1)\n"
    "return {'OK', l.task, l.fence, 0, 0, l.attempt, now}\n";

/* submit: ends a live lease whose fencing token is fence and marks its task
 * done (payload deleted, never requeued), and unconfirmed until the caller's
 * PostgreSQL commit is confirmed (lease_confirm).  done_ttl > 0 lets the
 * done record expire after that many ms.
 *   KEYS: 1 lease hash, 2 expiry index, 3 the holder's held set
 *   ARGV: 1 base, 2 lease id, 3 holder, 4 fence, 5 now, 6 done_ttl
 *   Returns {'OK', task_id, fence, 0, 0, attempt, now} or {'LOST', reason}. */
static const char LEASE_LUA_SUBMIT[] =
    LEASE_LUA_CORE
    LEASE_LUA_LIVE
    "local now = now_ms(ARGV[5])\n"
    "local l, why = live_lease(KEYS[1], ARGV[2], ARGV[3], now)\n"
    "if not l then return {'LOST', why} end\n"
    "if l.fence ~= tonumber(ARGV[4]) then return {'LOST', 'fence'} end\n"
    "local now_s = num(now)\n"
    /* The lease and the task's payload go in one DEL. */
    "redis.call('DEL', KEYS[1], base .. '" LEASE_SUFFIX_PAYLOAD "' .. l.task)\n"
    "redis.call('ZREM', KEYS[2], ARGV[2])\n"
    "redis.call('ZREM', KEYS[3], ARGV[2])\n"
    "redis.call('HSET', l.tk, 'state', 'done', 'lease', '', 'done_at', now_s)\n"
    "redis.call('ZADD', base .. '" LEASE_SUFFIX_UNCONFIRMED "', now_s, l.task)\n"
    "local done_ttl = tonumber(ARGV[6])\n"
    "if done_ttl and done_ttl > 0 then redis.call('PEXPIRE', l.tk, done_ttl) end\n"
    "emit('released', ARGV[2], l.task, ARGV[3], l.fence_s, l.att_s, now_s, 'why', 'submitted', 'rq', 0)\n"
    "return {'OK', l.task, l.fence, 0, 0, l.attempt, now}\n";

/* reap: ends up to `limit` leases whose expiry is at or before now, oldest
 * first.  Each task gets one more expired attempt, then is requeued, or
 * parked once attempts >= max_attempts (lease_policy_park).  A lease whose
 * task no longer names it (a partial loss) is only cleaned up, not reported;
 * one the task still names is reaped even if superseded, or the task would
 * stay leased forever.
 *   KEYS: 1 expiry index, 2 parked set
 *   ARGV: 1 base, 2 now, 3 max_attempts, 4 limit
 *   Returns a flat array, 8 entries per expired lease: lease id, task id,
 *   holder, fence, expires_at, attempts, parked (1/0), now. */
static const char LEASE_LUA_REAP[] =
    LEASE_LUA_CORE
    LEASE_LUA_REQUEUE
    LEASE_LUA_DROP
    "local now = now_ms(ARGV[2])\n"
    "local now_s = num(now)\n"
    "local max = tonumber(ARGV[3])\n"
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_s, 'LIMIT', 0, tonumber(ARGV[4]))\n"
    "local out = {}\n"
    "for _, lid in ipairs(ids) do\n"
    "  local lk = base .. '" LEASE_SUFFIX_LEASE "' .. lid\n"
    "  local l = redis.call('HMGET', lk, 'task', 'holder', 'fence', 'exp', 'att')\n"
    "  redis.call('ZREM', KEYS[1], lid)\n"
    "  if l[1] then\n"
    "    drop_lease(lid, l[2])\n"
    "    local tk = base .. '" LEASE_SUFFIX_TASK "' .. l[1]\n"
    "    local t = redis.call('HMGET', tk, 'state', 'lease')\n"
    "    if t[1] == 'leased' and t[2] == lid then\n"
    "      local attempts = redis.call('HINCRBY', tk, 'attempts', 1)\n"
    "      local parked = 0\n"
    "      if attempts >= max then\n"
    "        redis.call('HSET', tk, 'state', 'parked', 'lease', '', 'parked_at', now_s)\n"
    "        redis.call('ZADD', KEYS[2], now_s, l[1])\n"
    "        parked = 1\n"
    "      else\n"
    "        requeue(tk, l[1], now_s)\n"
    "      end\n"
    "      local f_s, a_s = num0(l[3]), num0(l[5])\n"
    "      emit('expired', lid, l[1], l[2], f_s, a_s, now_s, 'exp', l[4], 'rq', 1 - parked,\n"
    "           'ma', max, 'n', attempts)\n"
    "      if parked == 1 then\n"
    "        emit('parked', lid, l[1], l[2], f_s, a_s, now_s, 'why', 'max_attempts', 'n', attempts)\n"
    "      end\n"
    "      local n = #out\n"
    "      out[n + 1], out[n + 2], out[n + 3], out[n + 4] = lid, l[1], l[2], tonumber(l[3])\n"
    "      out[n + 5], out[n + 6], out[n + 7], out[n + 8] = tonumber(l[4]), attempts, parked, now\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* restore: rebuilds one task from PostgreSQL after Redis lost it (or to
 * override what Redis holds: PostgreSQL is the truth).  Whatever the task's
 * state, it ends queued in its home, with any lease it had ended, its
 * payload replaced and its fencing counter raised to at least
 * fence_floor + 1, so every token handed out up to fence_floor is stale.
 *   KEYS: 1 task hash, 2 home queue, 3 seq, 4 pools set, 5 payload
 *   ARGV: 1 base, 2 task_id, 3 home suffix, 4 priority, 5 json, 6 author,
 *         7 now, 8 fence_floor, 9 expired attempts so far, 10 pool name
 *   Returns {fence counter, id of the lease it ended or ''}. */
static const char LEASE_LUA_RESTORE[] =
    LEASE_LUA_CORE
    LEASE_LUA_DROP
    LEASE_LUA_EVICT
    "local tk = KEYS[1]\n"
    "local now = now_ms(ARGV[7])\n"
    "local ended = evict(tk, ARGV[2], now)\n"
    "local cur = redis.call('HMGET', tk, 'fence', 'attempts', 'leases')\n"
    "local fence = math.max(tonumber(cur[1]) or 0, tonumber(ARGV[8]) + 1)\n"
    "local attempts = math.max(tonumber(cur[2]) or 0, tonumber(ARGV[9]))\n"
    "local seq = redis.call('INCR', KEYS[3])\n"
    "redis.call('PERSIST', tk)\n"
    "redis.call('HSET', tk, 'state', 'queued', 'home', ARGV[3], 'prio', ARGV[4],\n"
    "           'author', ARGV[6], 'fence', num(fence),\n"
    "           'leases', tonumber(cur[3]) or 0, 'attempts', attempts, 'lease', '',\n"
    "           'queued_at', num(now))\n"
    "redis.call('SET', KEYS[5], ARGV[5])\n"
    "redis.call('ZADD', KEYS[2], num(score(tonumber(ARGV[4]), seq)), ARGV[2])\n"
    "if ARGV[10] ~= '' then redis.call('SADD', KEYS[4], ARGV[10]) end\n"
    "redis.call('PUBLISH', base .. '" LEASE_SUFFIX_WAKE "', ARGV[3])\n"
    "return {fence, ended}\n";

/* restore_held: rebuilds a live lease that PostgreSQL vouches for (it
 * recorded the grant), keeping its id and fencing token so its holder can
 * go on.  Refused when Redis already knows a newer lease of the task (its
 * counter is above fence, or equal but for another lease or state).
 *   KEYS: 1 task hash, 2 expiry index, 3 the holder's held set, 4 pools set,
 *         5 payload
 *   ARGV: 1 base, 2 task_id, 3 home suffix, 4 priority, 5 json, 6 author,
 *         7 now, 8 lease id, 9 holder, 10 fence, 11 expires_at, 12 ttl,
 *         13 expired attempts so far, 14 pool name
 *   Returns {'OK', fence} or {'LOST', 'superseded'}. */
static const char LEASE_LUA_RESTORE_HELD[] =
    LEASE_LUA_CORE
    LEASE_LUA_DROP
    LEASE_LUA_EVICT
    "local tk, lease_id, holder = KEYS[1], ARGV[8], ARGV[9]\n"
    "local now = now_ms(ARGV[7])\n"
    "local fence = tonumber(ARGV[10])\n"
    "local cur = redis.call('HMGET', tk, 'fence', 'state', 'lease', 'attempts', 'leases')\n"
    "local cf = tonumber(cur[1]) or 0\n"
    "if cf > fence then return {'LOST', 'superseded'} end\n"
    "if cf == fence and cur[2] then\n"
    "  if cur[2] == 'leased' and cur[3] == lease_id then return {'OK', fence} end\n"
    "  return {'LOST', 'superseded'}\n"
    "end\n"
    "evict(tk, ARGV[2], now)\n"
    "local attempts = math.max(tonumber(cur[4]) or 0, tonumber(ARGV[13]))\n"
    "redis.call('PERSIST', tk)\n"
    "redis.call('HSET', tk, 'state', 'leased', 'home', ARGV[3], 'prio', ARGV[4],\n"
    "           'author', ARGV[6], 'fence', num(fence),\n"
    "           'leases', math.max(tonumber(cur[5]) or 0, 1), 'attempts', attempts,\n"
    "           'lease', lease_id, 'queued_at', num(now))\n"
    "redis.call('SET', KEYS[5], ARGV[5])\n"
    "redis.call('HSET', base .. '" LEASE_SUFFIX_LEASE "' .. lease_id, 'task', ARGV[2],\n"
    "           'holder', holder, 'fence', num(fence), 'exp', ARGV[11], 'ttl', ARGV[12],\n"
    "           'granted', num(now), 'hb', 0, 'att', math.max(tonumber(cur[5]) or 0, 1))\n"
    "redis.call('ZADD', KEYS[2], ARGV[11], lease_id)\n"
    "redis.call('ZADD', KEYS[3], ARGV[11], lease_id)\n"
    "if ARGV[14] ~= '' then redis.call('SADD', KEYS[4], ARGV[14]) end\n"
    "return {'OK', fence}\n";

/* depths: the length of each queue in KEYS, in one round trip.
 *   KEYS: the queues; ARGV: 1 base.  Returns an array of integers. */
static const char LEASE_LUA_DEPTHS[] =
    "local out = {}\n"
    "for i = 1, #KEYS do out[i] = redis.call('ZCARD', KEYS[i]) end\n"
    "return out\n";

/* held: the holder's live leases (expiry after now).
 *   KEYS: 1 the holder's held set; ARGV: 1 base, 2 now.  Returns an integer. */
static const char LEASE_LUA_HELD[] =
    LEASE_LUA_CORE
    "return redis.call('ZCOUNT', KEYS[1], '(' .. num(now_ms(ARGV[2])), '+inf')\n";

/* cancel: takes a task out of service whatever its state (queued, leased,
 * parked): its lease ends (reported as revoked), it leaves its queue and is
 * parked.  A reassigned validation task, whose replacement went to another
 * validator.
 *   KEYS: 1 task hash, 2 parked set; ARGV: 1 base, 2 task_id, 3 now.
 *   Returns 1, or 0 when the task is unknown. */
static const char LEASE_LUA_CANCEL[] =
    LEASE_LUA_CORE
    LEASE_LUA_DROP
    LEASE_LUA_EVICT
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "local now = now_ms(ARGV[3])\n"
    "evict(KEYS[1], ARGV[2], now)\n"
    "redis.call('HSET', KEYS[1], 'state', 'parked', 'lease', '', 'parked_at', num(now))\n"
    "redis.call('ZADD', KEYS[2], num(now), ARGV[2])\n"
    "redis.call('DEL', base .. '" LEASE_SUFFIX_PAYLOAD "' .. ARGV[2])\n"
    "return 1\n";

/* loads: for each person, the tasks queued in their own queue, their live
 * leases, and when they last asked for work (0: never), in one round trip
 * (the assigner's view of validators).
 *   KEYS: pairs of (own queue, held set); ARGV: 1 base, 2 now, 3.. the
 *   people, in the order of KEYS.
 *   Returns a flat array: queued, live leases, last seen, per person. */
static const char LEASE_LUA_LOADS[] =
    LEASE_LUA_CORE
    "local now = now_ms(ARGV[2])\n"
    "local out = {}\n"
    "for i = 1, #KEYS, 2 do\n"
    "  out[#out + 1] = redis.call('ZCARD', KEYS[i])\n"
    "  out[#out + 1] = redis.call('ZCOUNT', KEYS[i + 1], '(' .. num(now), '+inf')\n"
    "  local seen = redis.call('ZSCORE', base .. '" LEASE_SUFFIX_SEEN "', ARGV[3 + (i - 1) / 2])\n"
    "  out[#out + 1] = seen and tonumber(seen) or 0\n"
    "end\n"
    "return out\n";

/* claim: makes owner the one dispatcher instance that drains the queue's
 * EVENTS stream for the next ttl ms (renewed while it is), so several
 * instances do not relay the same entries twice over (harmless, since the
 * event ids dedupe, but wasteful).
 *   KEYS: 1 relay key; ARGV: 1 owner, 2 ttl.  Returns 1 when owner holds it. */
static const char LEASE_LUA_CLAIM[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end\n"
    "if cur then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "return 1\n";

#endif
