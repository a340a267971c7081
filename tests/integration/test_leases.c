/* Integration: the dispatcher's queues and leases (services/annot-dispatcher/
 * leases.c and its Lua scripts) against the stack's real Redis
 * (ANNOT_REDIS_URL, from run/devstack.env).  Every test works in a key
 * namespace of its own, derived from a per-run id, and deletes it after, so
 * runs on one Redis never meet.  Times are passed explicitly wherever expiry
 * matters, so no test waits for a clock; deadlines only guard against
 * hangs.
 *
 * The Makefile links a test with libannot.a only, not with a service's
 * sources, so the modules under test are compiled into this file by
 * including their .c files (plain units with no main). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lease_policy.h"

#include "leases.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "redis.h"

#define DEADLINE_S 120 /* a guard against hanging, not a timing assertion */
#define T0 1000000000LL /* explicit "now" of the tests that steer expiry */

static config_t *cfg;
static char run_id[16];
static int test_seq;
static char err[512];

typedef struct fixture {
    redis_t *r;
    lease_store_t *ls;
    char ns[LEASE_NS_MAX + 1];
} fixture_t;

static int group_setup(void **state) {
    (void)state;
    log_init("test_leases", LOG_LEVEL_ERROR);
    cfg = config_new(NULL);
    if (config_load_env(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    char id[EVENT_ID_LEN];
    event_id_new(id);
    snprintf(run_id, sizeof(run_id), "%.8s", id);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    config_destroy(cfg);
    return 0;
}

static redis_t *redis_open(void) {
    char e[512];
    redis_t *r = redis_connect(config_str(cfg, "redis.url"), e, sizeof(e));
    if (r == NULL) fail_msg("redis: %s", e);
    return r;
}

/* Deletes every key of the namespace (all of them start with "{ns:q:"). */
static void ns_wipe(redis_t *r, const char *ns) {
    char pattern[LEASE_NS_MAX + 16];
    snprintf(pattern, sizeof(pattern), "{%s:q:*", ns);
    char cursor[32] = "0";
    do {
        redisReply *rep = redis_command(r, err, sizeof(err), "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        assert_non_null(rep);
        assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            redisReply *d = redis_command(r, err, sizeof(err), "DEL %b", keys->element[i]->str, keys->element[i]->len);
            assert_non_null(d);
            freeReplyObject(d);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
}

static int setup(void **state) {
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->ns, sizeof(f->ns), "lt-%s-%d", run_id, ++test_seq);
    f->r = redis_open();
    f->ls = lease_store_new(f->r, f->ns, err, sizeof(err));
    assert_non_null(f->ls);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;
    ns_wipe(f->r, f->ns);
    lease_store_destroy(f->ls);
    redis_close(f->r);
    free(f);
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

static void task_json(char *buf, size_t len, const char *task_id) {
    snprintf(buf, len, "{\"task_id\":\"%s\",\"kind\":\"production\",\"main_object\":\"\xe5\xaf\xbf\xe5\x8f\xb8\"}", task_id);
}

static int put(fixture_t *f, lease_queue_t q, const char *task_id, const char *pool, const char *owner,
               int priority, const char *author, int64_t now) {
    char json[256];
    task_json(json, sizeof(json), task_id);
    lease_item_t item = {.task_id = task_id, .pool = pool, .owner_id = owner, .priority = priority,
                         .task_json = json, .author_id = author};
    return lease_enqueue(f->ls, q, &item, now, err, sizeof(err));
}

static void put_ok(fixture_t *f, lease_queue_t q, const char *task_id, const char *pool, const char *owner,
                   int priority, const char *author, int64_t now) {
    int rc = put(f, q, task_id, pool, owner, priority, author, now);
    if (rc != LEASE_OK) fail_msg("enqueue %s: %s %s", task_id, lease_rc_name(rc), err);
}

/* Leases an annotation task from the pools of a ja-JP person with skill
 * "dish" (ja-JP/dish, ja-JP/general). */
static int take(fixture_t *f, const char *holder, int64_t now, int64_t ttl, int max_held, lease_t *out) {
    static const lease_pool_name_t pools[] = {"ja-JP/dish", "ja-JP/general"};
    lease_request_t req = {.holder_id = holder, .pools = pools, .npools = 2, .now_ms = now,
                           .ttl_ms = ttl, .max_held = max_held};
    return lease_acquire(f->ls, LEASE_QUEUE_ANNOTATION, &req, out, err, sizeof(err));
}

static void take_ok(fixture_t *f, const char *holder, int64_t now, int64_t ttl, lease_t *out) {
    int rc = take(f, holder, now, ttl, 10, out);
    if (rc != LEASE_OK) fail_msg("acquire: %s %s", lease_rc_name(rc), err);
}

static lease_task_info_t info_of(fixture_t *f, lease_queue_t q, const char *task_id) {
    lease_task_info_t info;
    assert_int_equal(lease_task_info(f->ls, q, task_id, &info, err, sizeof(err)), LEASE_OK);
    return info;
}

static long long pool_depth(fixture_t *f, const char *pool) {
    lease_pool_name_t p;
    snprintf(p, sizeof(p), "%s", pool);
    long long d = -1;
    assert_int_equal(lease_pool_depths(f->ls, LEASE_QUEUE_ANNOTATION, &p, 1, &d, err, sizeof(err)), LEASE_OK);
    return d;
}

/* ---- tests ------------------------------------------------------------------ */

/* Highest priority first, oldest first within a priority, across every pool
 * of the person and none other; the payload comes back byte for byte. */
static void test_acquire_order_and_payload(void **state) {
    fixture_t *f = *state;
    put_ok(f, LEASE_QUEUE_ANNOTATION, "a", "ja-JP/dish", NULL, 1, NULL, T0);
    put_ok(f, LEASE_QUEUE_ANNOTATION, "b", "ja-JP/general", NULL, 5, NULL, T0 + 1);
    put_ok(f, LEASE_QUEUE_ANNOTATION, "c", "ja-JP/dish", NULL, 5, NULL, T0 + 2);
    put_ok(f, LEASE_QUEUE_ANNOTATION, "d", "fr-FR/dish", NULL, 9, NULL, T0 + 3);
    put_ok(f, LEASE_QUEUE_ANNOTATION, "e", "ja-JP/sauce", NULL, 9, NULL, T0 + 4);
    long long depths[2];
    lease_pool_name_t pools[2] = {"ja-JP/dish", "ja-JP/general"};
    assert_int_equal(lease_pool_depths(f->ls, LEASE_QUEUE_ANNOTATION, pools, 2, depths, err, sizeof(err)), LEASE_OK);
    assert_int_equal(depths[0], 2);
    assert_int_equal(depths[1], 1);

    const char *want[] = {"b", "c", "a"};
    for (int i = 0; i < 3; i++) {
        lease_t l;
        take_ok(f, "ann-1", T0 + 100, 30000, &l);
        assert_string_equal(l.task_id, want[i]);
        assert_int_equal(l.fencing_token, 1);
        assert_int_equal(l.attempt, 1);
        assert_int_equal(l.granted_at_ms, T0 + 100);
        assert_int_equal(l.expires_at_ms, T0 + 100 + 30000);
        char json[256];
        task_json(json, sizeof(json), want[i]);
        assert_int_equal(l.task_json_len, strlen(json));
        assert_string_equal(l.task_json, json);
        lease_queue_t q;
        assert_int_equal(lease_policy_lease_id_queue(l.lease_id, &q), 0);
        assert_int_equal(q, LEASE_QUEUE_ANNOTATION);
        if (i == 0) assert_int_equal(l.queued_at_ms, T0 + 1);
        lease_free(&l);
    }
    lease_t l;
    assert_int_equal(take(f, "ann-1", T0 + 100, 30000, 10, &l), LEASE_NONE);
    assert_int_equal(pool_depth(f, "fr-FR/dish"), 1);
    assert_int_equal(pool_depth(f, "ja-JP/sauce"), 1);
    assert_int_equal(pool_depth(f, "ja-JP/dish"), 0);

    lease_pool_name_t *all;
    size_t n;
    assert_int_equal(lease_pool_list(f->ls, LEASE_QUEUE_ANNOTATION, &all, &n, err, sizeof(err)), LEASE_OK);
    assert_int_equal(n, 4);
    free(all);
    long long open;
    assert_int_equal(lease_open_count(f->ls, LEASE_QUEUE_ANNOTATION, &open, err, sizeof(err)), LEASE_OK);
    assert_int_equal(open, 3);
}

/* The token rises with every lease of a task, whatever ended the previous
 * one (release, expiry), and never goes back. */
static void test_fencing_token_rises(void **state) {
    fixture_t *f = *state;
    put_ok(f, LEASE_QUEUE_ANNOTATION, "t", "ja-JP/dish", NULL, 3, NULL, T0);
    uint64_t last = 0;
    int64_t now = T0;
    for (int i = 0; i < 6; i++) {
        lease_t l;
        take_ok(f, i % 2 ? "ann-1" : "ann-2", now, 1000, &l);
        assert_true(l.fencing_token > last);
        assert_int_equal(l.attempt, i + 1);
        last = l.fencing_token;
        lease_ack_t ack;
        if (i % 2 == 0) {
            assert_int_equal(lease_release(f->ls, l.lease_id, i % 2 ? "ann-1" : "ann-2", now + 1, &ack, err, sizeof(err)), LEASE_OK);
            assert_int_equal(ack.fencing_token, l.fencing_token);
        } else {
            lease_expired_t x[4];
            size_t n;
            assert_int_equal(lease_reap(f->ls, LEASE_QUEUE_ANNOTATION, l.expires_at_ms, 100, x, 4, &n, err, sizeof(err)), LEASE_OK);
            assert_int_equal(n, 1);
            assert_int_equal(x[0].fencing_token, l.fencing_token);
        }
        lease_free(&l);
        now += 5000;
    }
    assert_int_equal(info_of(f, LEASE_QUEUE_ANNOTATION, "t").fence, last);
    assert_int_equal(last, 6);
}

/* A holder whose lease expired is out: heartbeat and submit are LOST before
 * the reaper ran, and after the task went to someone else; the new holder
 * submits. */
static void test_stale_holder_is_lost(void **state) {
    fixture_t *f = *state;
    put_ok(f, LEASE_QUEUE_ANNOTATION, "t", "ja-JP/dish", NULL, 3, NULL, T0);
    lease_t a;
    take_ok(f, "ann-a", T0, 100, &a);
    lease_ack_t ack;
    assert_int_equal(lease_heartbeat(f->ls, a.lease_id, "ann-a", T0 + 50, 100, &ack, err, sizeof(err)), LEASE_OK);
    assert_int_equal(ack.expires_at_ms, T0 + 150);
    assert_int_equal(ack.heartbeat_count, 1);
    /* TTL 0: the lease's own. */
    assert_int_equal(lease_heartbeat(f->ls, a.lease_id, "ann-a", T0 + 60, 0, &ack, err, sizeof(err)), LEASE_OK);
    assert_int_equal(ack.expires_at_ms, T0 + 160);
    assert_int_equal(ack.heartbeat_count, 2);

    /* Expired, not yet reaped. */
    assert_int_equal(lease_heartbeat(f->ls, a.lease_id, "ann-a", T0 + 160, 100, &ack, err, sizeof(err)), LEASE_LOST);
    assert_int_equal(ack.lost, LEASE_LOST_EXPIRED);
    assert_int_equal(lease_submit(f->ls, a.lease_id, "ann-a", a.fencing_token, T0 + 161, &ack, err, sizeof(err)), LEASE_LOST);
    assert_int_equal(ack.lost, LEASE_LOST_EXPIRED);
    assert_int_equal(lease_release(f->ls, a.lease_id, "ann-a", T0 + 161, &ack, err, sizeof(err)), LEASE_LOST);

    lease_expired_t x[2];
    size_t n;
    assert_int_equal(lease_reap(f->ls, LEASE_QUEUE_ANNOTATION, T0 + 200, 3, x, 2, &n, err, sizeof(err)), LEASE_OK);
    assert_int_equal(n, 1);
    assert_false(x[0].parked);

    lease_t b;
    take_ok(f, "ann-b", T0 + 300, 100, &b);
    assert_string_equal(b.task_id, "t");
    assert_true(b.fencing_token > a.fencing_token);
    /* The old holder, with its old lease and token: lost. */
    assert_int_equal(lease_submit(f->ls, a.lease_id, "ann-a", a.fencing_token, T0 + 310, &ack, err, sizeof(err)), LEASE_LOST);
    assert_int_equal(ack.lost, LEASE_LOST_UNKNOWN);
    assert_int_equal(lease_heartbeat(f->ls, a.lease_id, "ann-a", T0 + 310, 100, &ack, err, sizeof(err)), LEASE_LOST);
    /* The old holder with the new lease id (say, guessed): not theirs. */
    assert_int_equal(lease_submit(f->ls, b.lease_id, "ann-a", b.fencing_token, T0 + 310, &ack, err, sizeof(err)), LEASE_LOST);
    assert_int_equal(ack.lost, LEASE_LOST_HOLDER);
    /* The new holder with the old token: stale. */
    assert_int_equal(lease_submit(f->ls, b.lease_id, "ann-b", a.fencing_token, T0 + 310, &ack, err, sizeof(err)), LEASE_LOST);
    assert_int_equal(ack.lost, LEASE_LOST_FENCE);
    /* ...which did not end the lease. */
    assert_int_equal(lease_submit(f->ls, b.lease_id, "ann-b", b.fencing_token, T0 + 320, &ack, err, sizeof(err)), LEASE_OK);
    assert_string_equal(ack.task_id, "t");
    assert_int_equal(ack.fencing_token, b.fencing_token);
    assert_int_equal(ack.attempt, 2);
    assert_int_equal(info_of(f, LEASE_QUEUE_ANNOTATION, "t").state, LEASE_TASK_DONE);
    /* Done: never handed out again, and a second submit is lost. */
    assert_int_equal(lease_submit(f->ls, b.lease_id, "ann-b", b.fencing_token, T0 + 330, &ack, err, sizeof(err)), LEASE_LOST);
    lease_t c;
    assert_int_equal(take(f, "ann-c", T0 + 400, 100, 10, &c), LEASE_NONE);
    lease_free(&a);
    lease_free(&b);
}

/* Release puts the task back at its priority, behind what already waits
 * there; only the holder may release, and only once. */
static void test_release_requeues(void **state) {
    fixture_t *f = *state;
    put_ok(f, LEASE_QUEUE_ANNOTATION, "hi", "ja-JP/dish", NULL, 7, NULL, T0);
    put_ok(f, LEASE_QUEUE_ANNOTATION, "hi2", "ja-JP/dish", NULL, 7, NULL, T0);
    put_ok(f, LEASE_QUEUE_ANNOTATION, "lo", "ja-JP/dish", NULL, 2, NULL, T0);
    lease_t l;
    take_ok(f, "ann-1", T0, 1000, &l);
    assert_string_equal(l.task_id, "hi");
    assert_int_equal(pool_depth(f, "ja-JP/dish"), 2);
    lease_ack_t ack;
    assert_int_equal(lease_release(f->ls, l.lease_id, "ann-2", T0 + 1, &ack, err, sizeof(err)), LEASE_LOST);
    assert_int_equal(ack.lost, LEASE_LOST_HOLDER);
    assert_int_equal(lease_release(f->ls, l.lease_id, "ann-1", T0 + 1, &ack, err, sizeof(err)), LEASE_OK);
    assert_string_equal(ack.task_id, "hi");
    assert_int_equal(lease_release(f->ls, l.lease_id, "ann-1", T0 + 2, &ack, err, sizeof(err)), LEASE_LOST);
    assert_int_equal(ack.lost, LEASE_LOST_UNKNOWN);
    assert_int_equal(pool_depth(f, "ja-JP/dish"), 3);
    lease_task_info_t info = info_of(f, LEASE_QUEUE_ANNOTATION, "hi");
    assert_int_equal(info.state, LEASE_TASK_QUEUED);
    assert_int_equal(info.expired_attempts, 0); /* a release is not an attempt */
    lease_free(&l);

    const char *want[] = {"hi2", "hi", "lo"};
    for (int i = 0; i < 3; i++) {
        take_ok(f, "ann-2", T0 + 10, 1000, &l);
        assert_string_equal(l.task_id, want[i]);
        lease_free(&l);
    }
    long long open;
    assert_int_equal(lease_open_count(f->ls, LEASE_QUEUE_ANNOTATION, &open, err, sizeof(err)), LEASE_OK);
    assert_int_equal(open, 3);
}

/* The reaper requeues an expired lease's task with one more attempt, and
 * parks it at the max_attempts-th expiry: lease_policy_park's rule. */
static void test_reap_requeues_then_parks(void **state) {
    fixture_t *f = *state;
    const int max = 3;
    put_ok(f, LEASE_QUEUE_ANNOTATION, "p", "ja-JP/dish", NULL, 3, NULL, T0);
    int64_t now = T0;
    for (uint32_t attempt = 1; attempt <= (uint32_t)max; attempt++) {
        lease_t l;
        take_ok(f, "ann-1", now, 500, &l);
        lease_expired_t x[4];
        size_t n;
        /* One ms before expiry: nothing to reap. */
        assert_int_equal(lease_reap(f->ls, LEASE_QUEUE_ANNOTATION, l.expires_at_ms - 1, max, x, 4, &n, err, sizeof(err)), LEASE_OK);
        assert_int_equal(n, 0);
        assert_int_equal(lease_reap(f->ls, LEASE_QUEUE_ANNOTATION, l.expires_at_ms, max, x, 4, &n, err, sizeof(err)), LEASE_OK);
        assert_int_equal(n, 1);
        assert_string_equal(x[0].lease_id, l.lease_id);
        assert_string_equal(x[0].task_id, "p");
        assert_string_equal(x[0].holder_id, "ann-1");
        assert_int_equal(x[0].fencing_token, l.fencing_token);
        assert_int_equal(x[0].expires_at_ms, l.expires_at_ms);
        assert_int_equal(x[0].detected_at_ms, l.expires_at_ms);
        assert_int_equal(x[0].expired_attempts, attempt);
        assert_int_equal(x[0].parked, lease_policy_park(attempt, max));
        long long held;
        assert_int_equal(lease_held_count(f->ls, LEASE_QUEUE_ANNOTATION, "ann-1", now, &held, err, sizeof(err)), LEASE_OK);
        assert_int_equal(held, 0);
        lease_free(&l);
        now += 1000;
    }
    lease_task_info_t info = info_of(f, LEASE_QUEUE_ANNOTATION, "p");
    assert_int_equal(info.state, LEASE_TASK_PARKED);
    assert_int_equal(info.expired_attempts, 3);
    lease_t l;
    assert_int_equal(take(f, "ann-1", now, 500, 10, &l), LEASE_NONE);
    assert_int_equal(pool_depth(f, "ja-JP/dish"), 0);
    long long open;
    assert_int_equal(lease_open_count(f->ls, LEASE_QUEUE_ANNOTATION, &open, err, sizeof(err)), LEASE_OK);
    assert_int_equal(open, 0);
}

/* Every change a lease goes through lands in the queue's event stream, in
 * order, with what the leases topic needs; a relay deletes what it sent. */
static void test_lease_events(void **state) {
    fixture_t *f = *state;
    lease_ack_t ack;
    lease_t a, b, c, d;
    put_ok(f, LEASE_QUEUE_ANNOTATION, "e1", "ja-JP/dish", NULL, 3, NULL, T0);
    take_ok(f, "ann-1", T0 + 10, 1000, &a);
    assert_int_equal(lease_heartbeat(f->ls, a.lease_id, "ann-1", T0 + 20, 0, &ack, err, sizeof(err)), LEASE_OK);
    assert_int_equal(lease_submit(f->ls, a.lease_id, "ann-1", a.fencing_token, T0 + 30, &ack, err, sizeof(err)), LEASE_OK);

    put_ok(f, LEASE_QUEUE_ANNOTATION, "e2", "ja-JP/dish", NULL, 3, NULL, T0 + 40);
    take_ok(f, "ann-2", T0 + 50, 1000, &b);
    assert_int_equal(lease_release(f->ls, b.lease_id, "ann-2", T0 + 60, &ack, err, sizeof(err)), LEASE_OK);

    /* e2 again, left to expire with max_attempts 1: expired, then parked. */
    take_ok(f, "ann-3", T0 + 70, 100, &c);
    lease_expired_t x[2];
    size_t nx;
    assert_int_equal(lease_reap(f->ls, LEASE_QUEUE_ANNOTATION, T0 + 170, 1, x, 2, &nx, err, sizeof(err)), LEASE_OK);
    assert_int_equal(nx, 1);

    /* A rebuild that overrides a live lease revokes it. */
    put_ok(f, LEASE_QUEUE_ANNOTATION, "e3", "ja-JP/dish", NULL, 3, NULL, T0 + 200);
    take_ok(f, "ann-4", T0 + 210, 1000, &d);
    char json[256];
    task_json(json, sizeof(json), "e3");
    lease_item_t item = {.task_id = "e3", .pool = "ja-JP/dish", .priority = 3, .task_json = json};
    char ended[LEASE_ID_LEN];
    assert_int_equal(lease_restore(f->ls, LEASE_QUEUE_ANNOTATION, &item, 1, 0, T0 + 220, NULL, ended, err, sizeof(err)),
                     LEASE_OK);
    assert_string_equal(ended, d.lease_id);

    lease_stream_entry_t e[16];
    size_t n;
    assert_int_equal(lease_events_read(f->ls, LEASE_QUEUE_ANNOTATION, e, 16, &n, err, sizeof(err)), LEASE_OK);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++) {
        if (e[i].parse_rc != 0) fail_msg("entry %zu: %s", i, e[i].err);
    }
    /* e1: granted, heartbeat, released(submitted). */
    assert_int_equal(e[0].rec.kind, LEASE_EVENT_GRANTED);
    assert_string_equal(e[0].rec.lease_id, a.lease_id);
    assert_string_equal(e[0].rec.task_id, "e1");
    assert_string_equal(e[0].rec.holder_id, "ann-1");
    assert_int_equal(e[0].rec.fence, a.fencing_token);
    assert_int_equal(e[0].rec.attempt, 1);
    assert_int_equal(e[0].rec.at_ms, T0 + 10);
    assert_int_equal(e[0].rec.expires_at_ms, T0 + 1010);
    assert_int_equal(e[0].rec.ttl_ms, 1000);
    assert_int_equal(e[0].rec.queue_wait_ms, 10);
    assert_int_equal(e[1].rec.kind, LEASE_EVENT_HEARTBEAT);
    assert_int_equal(e[1].rec.count, 1);
    assert_int_equal(e[1].rec.expires_at_ms, T0 + 1020);
    assert_int_equal(e[2].rec.kind, LEASE_EVENT_RELEASED);
    assert_int_equal(e[2].rec.why, LEASE_WHY_SUBMITTED);
    assert_false(e[2].rec.requeued);
    assert_int_equal(e[2].rec.at_ms, T0 + 30);
    /* e2: granted, released by its holder and requeued; granted again,
     * expired and parked. */
    assert_int_equal(e[3].rec.kind, LEASE_EVENT_GRANTED);
    assert_int_equal(e[4].rec.kind, LEASE_EVENT_RELEASED);
    assert_int_equal(e[4].rec.why, LEASE_WHY_HOLDER);
    assert_true(e[4].rec.requeued);
    assert_int_equal(e[5].rec.kind, LEASE_EVENT_GRANTED);
    assert_int_equal(e[5].rec.attempt, 2);
    assert_int_equal(e[5].rec.queue_wait_ms, 10);
    assert_int_equal(e[6].rec.kind, LEASE_EVENT_EXPIRED);
    assert_string_equal(e[6].rec.lease_id, c.lease_id);
    assert_string_equal(e[6].rec.holder_id, "ann-3");
    assert_int_equal(e[6].rec.attempt, 2);
    assert_int_equal(e[6].rec.expires_at_ms, T0 + 170);
    assert_int_equal(e[6].rec.count, 1);
    assert_int_equal(e[6].rec.max_attempts, 1);
    assert_false(e[6].rec.requeued);
    assert_int_equal(e[7].rec.kind, LEASE_EVENT_PARKED);
    assert_int_equal(e[7].rec.why, LEASE_WHY_MAX_ATTEMPTS);
    assert_string_equal(e[7].rec.task_id, "e2");
    /* e3: granted, then revoked by the restore. */
    assert_int_equal(e[8].rec.kind, LEASE_EVENT_GRANTED);
    assert_int_equal(e[9].rec.kind, LEASE_EVENT_RELEASED);
    assert_int_equal(e[9].rec.why, LEASE_WHY_REVOKED);
    assert_string_equal(e[9].rec.lease_id, d.lease_id);
    assert_string_equal(e[9].rec.holder_id, "ann-4");
    assert_true(e[9].rec.requeued);

    assert_int_equal(lease_events_delete(f->ls, LEASE_QUEUE_ANNOTATION, e, n, err, sizeof(err)), LEASE_OK);
    lease_stream_entries_clear(e, n);
    long long pending = -1;
    assert_int_equal(lease_events_pending(f->ls, LEASE_QUEUE_ANNOTATION, &pending, err, sizeof(err)), LEASE_OK);
    assert_int_equal(pending, 0);
    lease_free(&a);
    lease_free(&b);
    lease_free(&c);
    lease_free(&d);
}

/* The raw fields of an event on the queue's stream (field values, in
 * order of the names asked for; NULL where absent). */
static void stream_fields(fixture_t *f, size_t idx, const char *const *names, size_t nn, char out[][32]) {
    redisReply *rep = redis_command(f->r, err, sizeof(err), "XRANGE {%s:q:annotation}:events - +", f->ns);
    assert_non_null(rep);
    assert_true(rep->type == REDIS_REPLY_ARRAY && rep->elements > idx);
    redisReply *kv = rep->element[idx]->element[1];
    for (size_t j = 0; j < nn; j++) {
        out[j][0] = '\0';
        for (size_t i = 0; i + 1 < kv->elements; i += 2) {
            if (strcmp(kv->element[i]->str, names[j]) == 0) snprintf(out[j], 32, "%s", kv->element[i + 1]->str);
        }
    }
    freeReplyObject(rep);
}

/* Leasing from a single queue (one pool, no author excluded) takes its
 * head in one step: highest priority, then oldest; an entry whose task is
 * gone is dropped on the way.  The fence, attempt and time of each event
 * are written as plain decimals, for the grant and for the heartbeat and
 * submit that read them back from the lease. */
static void test_single_queue_and_event_numbers(void **state) {
    fixture_t *f = *state;
    put_ok(f, LEASE_QUEUE_ANNOTATION, "o1", "ja-JP/dish", NULL, 1, NULL, T0);
    put_ok(f, LEASE_QUEUE_ANNOTATION, "o2", "ja-JP/dish", NULL, 5, NULL, T0 + 1);
    put_ok(f, LEASE_QUEUE_ANNOTATION, "o3", "ja-JP/dish", NULL, 5, NULL, T0 + 2);
    redisReply *rep = redis_command(f->r, err, sizeof(err), "ZADD {%s:q:annotation}:pool:ja-JP/dish 0 ghost", f->ns);
    assert_non_null(rep);
    freeReplyObject(rep);

    static const lease_pool_name_t one[] = {"ja-JP/dish"};
    lease_request_t req = {.holder_id = "ann-1", .pools = one, .npools = 1, .now_ms = T0 + 10,
                           .ttl_ms = 1000, .max_held = 10};
    static const char *const want[] = {"o2", "o3", "o1"};
    lease_t l[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lease_acquire(f->ls, LEASE_QUEUE_ANNOTATION, &req, &l[i], err, sizeof(err)), LEASE_OK);
        assert_string_equal(l[i].task_id, want[i]);
        assert_int_equal(l[i].fencing_token, 1);
        assert_int_equal(l[i].attempt, 1);
    }
    lease_t none;
    assert_int_equal(lease_acquire(f->ls, LEASE_QUEUE_ANNOTATION, &req, &none, err, sizeof(err)), LEASE_NONE);
    assert_int_equal(pool_depth(f, "ja-JP/dish"), 0);

    /* o2 again after a release: fence 2, attempt 2. */
    lease_ack_t ack;
    assert_int_equal(lease_release(f->ls, l[0].lease_id, "ann-1", T0 + 20, &ack, err, sizeof(err)), LEASE_OK);
    req.now_ms = T0 + 30;
    lease_t again;
    assert_int_equal(lease_acquire(f->ls, LEASE_QUEUE_ANNOTATION, &req, &again, err, sizeof(err)), LEASE_OK);
    assert_string_equal(again.task_id, "o2");
    assert_int_equal(again.fencing_token, 2);
    assert_int_equal(again.attempt, 2);
    assert_int_equal(lease_heartbeat(f->ls, again.lease_id, "ann-1", T0 + 40, 0, &ack, err, sizeof(err)), LEASE_OK);
    assert_int_equal(lease_submit(f->ls, again.lease_id, "ann-1", 2, T0 + 50, &ack, err, sizeof(err)), LEASE_OK);
    lease_task_info_t info = info_of(f, LEASE_QUEUE_ANNOTATION, "o2");
    assert_int_equal(info.fence, 2);
    assert_int_equal(info.leases, 2);

    /* Events: 3 grants, the release, then grant, heartbeat, submit. */
    static const char *const names[] = {"k", "f", "a", "at", "exp"};
    char v[5][32];
    stream_fields(f, 4, names, 5, v);
    assert_string_equal(v[0], "granted");
    assert_string_equal(v[1], "2");
    assert_string_equal(v[2], "2");
    assert_string_equal(v[3], "1000000030");
    assert_string_equal(v[4], "1000001030");
    stream_fields(f, 5, names, 5, v);
    assert_string_equal(v[0], "heartbeat");
    assert_string_equal(v[1], "2");
    assert_string_equal(v[2], "2");
    assert_string_equal(v[3], "1000000040");
    assert_string_equal(v[4], "1000001040");
    stream_fields(f, 6, names, 4, v);
    assert_string_equal(v[0], "released");
    assert_string_equal(v[1], "2");
    assert_string_equal(v[2], "2");
    assert_string_equal(v[3], "1000000050");
    for (int i = 0; i < 3; i++) lease_free(&l[i]);
    lease_free(&again);
}

/* One relay at a time drains a stream; another takes over once the
 * holder's claim lapses. */
static void test_lease_events_claim(void **state) {
    fixture_t *f = *state;
    bool mine;
    assert_int_equal(lease_events_claim(f->ls, LEASE_QUEUE_EXAM, "relay-a", 200, &mine, err, sizeof(err)), LEASE_OK);
    assert_true(mine);
    assert_int_equal(lease_events_claim(f->ls, LEASE_QUEUE_EXAM, "relay-b", 200, &mine, err, sizeof(err)), LEASE_OK);
    assert_false(mine);
    assert_int_equal(lease_events_claim(f->ls, LEASE_QUEUE_EXAM, "relay-a", 200, &mine, err, sizeof(err)), LEASE_OK);
    assert_true(mine);
    /* Another queue's stream is claimed on its own. */
    assert_int_equal(lease_events_claim(f->ls, LEASE_QUEUE_VALIDATION, "relay-b", 200, &mine, err, sizeof(err)), LEASE_OK);
    assert_true(mine);
    char key[LEASE_KEY_MAX];
    lease_key(key, sizeof(key), f->ns, LEASE_QUEUE_EXAM, LEASE_KEY_RELAY, NULL);
    redisReply *rep = redis_command(f->r, err, sizeof(err), "DEL %s", key); /* relay-a died and its claim lapsed */
    assert_non_null(rep);
    freeReplyObject(rep);
    assert_int_equal(lease_events_claim(f->ls, LEASE_QUEUE_EXAM, "relay-b", 200, &mine, err, sizeof(err)), LEASE_OK);
    assert_true(mine);
}

/* The reaper takes at most `limit` per call, oldest expiry first. */
static void test_reap_limit(void **state) {
    fixture_t *f = *state;
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "r%d", i);
        put_ok(f, LEASE_QUEUE_ANNOTATION, id, "ja-JP/dish", NULL, 3, NULL, T0);
        lease_t l;
        take_ok(f, "ann-1", T0 + i, 100, &l);
        lease_free(&l);
    }
    lease_expired_t x[2];
    size_t n, total = 0;
    int64_t last_exp = 0;
    do {
        assert_int_equal(lease_reap(f->ls, LEASE_QUEUE_ANNOTATION, T0 + 1000, 3, x, 2, &n, err, sizeof(err)), LEASE_OK);
        for (size_t i = 0; i < n; i++) {
            assert_true(x[i].expires_at_ms >= last_exp);
            last_exp = x[i].expires_at_ms;
        }
        total += n;
    } while (n == 2);
    assert_int_equal(total, 5);
    assert_int_equal(pool_depth(f, "ja-JP/dish"), 5);
}

/* At most max_held live leases per person and queue; expired leases the
 * reaper has not reached do not count. */
static void test_max_held(void **state) {
    fixture_t *f = *state;
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof(id), "m%d", i);
        put_ok(f, LEASE_QUEUE_ANNOTATION, id, "ja-JP/dish", NULL, 3, NULL, T0);
    }
    lease_t a, b, c, d, e;
    assert_int_equal(take(f, "ann-1", T0, 1000, 2, &a), LEASE_OK);
    assert_int_equal(take(f, "ann-1", T0, 1000, 2, &b), LEASE_OK);
    assert_int_equal(take(f, "ann-1", T0, 1000, 2, &c), LEASE_LIMIT);
    /* Someone else is not limited by ann-1's leases. */
    assert_int_equal(take(f, "ann-2", T0, 1000, 2, &c), LEASE_OK);
    lease_free(&c);
    long long held;
    assert_int_equal(lease_held_count(f->ls, LEASE_QUEUE_ANNOTATION, "ann-1", T0, &held, err, sizeof(err)), LEASE_OK);
    assert_int_equal(held, 2);
    lease_ack_t ack;
    assert_int_equal(lease_submit(f->ls, a.lease_id, "ann-1", a.fencing_token, T0 + 1, &ack, err, sizeof(err)), LEASE_OK);
    assert_int_equal(take(f, "ann-1", T0 + 2, 1000, 2, &d), LEASE_OK);
    assert_int_equal(take(f, "ann-1", T0 + 3, 1000, 2, &e), LEASE_LIMIT);
    assert_int_equal(lease_release(f->ls, d.lease_id, "ann-1", T0 + 4, &ack, err, sizeof(err)), LEASE_OK);
    /* b expired at T0 + 1000 and is not reaped: it no longer counts. */
    assert_int_equal(take(f, "ann-1", T0 + 5000, 1000, 1, &e), LEASE_OK);
    assert_int_equal(lease_held_count(f->ls, LEASE_QUEUE_ANNOTATION, "ann-1", T0 + 5000, &held, err, sizeof(err)), LEASE_OK);
    assert_int_equal(held, 1);
    lease_free(&a);
    lease_free(&b);
    lease_free(&d);
    lease_free(&e);
}

/* A validator is never handed a validation task of their own work: not when
 * it is the only one queued (it stays queued), not when it is ahead of
 * others, not even past a scan window full of them. */
static void test_validator_never_gets_own_work(void **state) {
    fixture_t *f = *state;
    const lease_queue_t q = LEASE_QUEUE_VALIDATION;
    put_ok(f, q, "asg-own", NULL, "val-1", 9, "val-1", T0);
    lease_request_t req = {.holder_id = "val-1", .own_queue = true,
                           .exclude_author = lease_policy_excludes_author(q), .now_ms = T0,
                           .ttl_ms = 1000, .max_held = 5};
    lease_t l;
    assert_int_equal(lease_acquire(f->ls, q, &req, &l, err, sizeof(err)), LEASE_NONE);
    long long depth;
    assert_int_equal(lease_own_depth(f->ls, q, "val-1", &depth, err, sizeof(err)), LEASE_OK);
    assert_int_equal(depth, 1);
    assert_int_equal(info_of(f, q, "asg-own").state, LEASE_TASK_QUEUED);

    put_ok(f, q, "asg-other", NULL, "val-1", 1, "ann-7", T0);
    assert_int_equal(lease_acquire(f->ls, q, &req, &l, err, sizeof(err)), LEASE_OK);
    assert_string_equal(l.task_id, "asg-other");
    lease_free(&l);
    assert_int_equal(lease_acquire(f->ls, q, &req, &l, err, sizeof(err)), LEASE_NONE);

    /* Pooled validation (should a deployment pool it): 40 own tasks ahead of
     * the one the validator may take, more than one scan window. */
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof(id), "own-%d", i);
        put_ok(f, q, id, "ja-JP/general", NULL, 9, "val-1", T0);
    }
    put_ok(f, q, "theirs", "ja-JP/general", NULL, 0, "ann-8", T0);
    static const lease_pool_name_t pools[] = {"ja-JP/general"};
    req.pools = pools;
    req.npools = 1;
    assert_int_equal(lease_acquire(f->ls, q, &req, &l, err, sizeof(err)), LEASE_OK);
    assert_string_equal(l.task_id, "theirs");
    lease_free(&l);
    assert_int_equal(lease_acquire(f->ls, q, &req, &l, err, sizeof(err)), LEASE_NONE);
    /* Another validator gets them. */
    req.holder_id = "val-2";
    assert_int_equal(lease_acquire(f->ls, q, &req, &l, err, sizeof(err)), LEASE_OK);
    assert_string_equal(l.task_id, "own-0");
    lease_free(&l);
}

/* Exam cases go to the candidate's own queue, seen by nobody else. */
static void test_own_queue_is_private(void **state) {
    fixture_t *f = *state;
    const lease_queue_t q = LEASE_QUEUE_EXAM;
    put_ok(f, q, "case-1", NULL, "cand-1", 0, NULL, T0);
    lease_request_t req = {.holder_id = "cand-2", .own_queue = true, .now_ms = T0, .ttl_ms = 1000, .max_held = 1};
    lease_t l;
    assert_int_equal(lease_acquire(f->ls, q, &req, &l, err, sizeof(err)), LEASE_NONE);
    req.holder_id = "cand-1";
    assert_int_equal(lease_acquire(f->ls, q, &req, &l, err, sizeof(err)), LEASE_OK);
    assert_string_equal(l.task_id, "case-1");
    lease_queue_t lq;
    assert_int_equal(lease_policy_lease_id_queue(l.lease_id, &lq), 0);
    assert_int_equal(lq, LEASE_QUEUE_EXAM);
    lease_ack_t ack;
    assert_int_equal(lease_submit(f->ls, l.lease_id, "cand-1", l.fencing_token, T0 + 1, &ack, err, sizeof(err)), LEASE_OK);
    lease_free(&l);
}

/* Enqueueing a task that is queued, leased or done changes nothing. */
static void test_enqueue_is_idempotent(void **state) {
    fixture_t *f = *state;
    put_ok(f, LEASE_QUEUE_ANNOTATION, "i", "ja-JP/dish", NULL, 3, NULL, T0);
    assert_int_equal(put(f, LEASE_QUEUE_ANNOTATION, "i", "ja-JP/general", NULL, 9, NULL, T0), LEASE_DUPLICATE);
    assert_int_equal(pool_depth(f, "ja-JP/dish"), 1);
    assert_int_equal(pool_depth(f, "ja-JP/general"), 0);
    lease_t l;
    take_ok(f, "ann-1", T0, 1000, &l);
    assert_int_equal(put(f, LEASE_QUEUE_ANNOTATION, "i", "ja-JP/dish", NULL, 3, NULL, T0), LEASE_DUPLICATE);
    assert_int_equal(pool_depth(f, "ja-JP/dish"), 0);
    assert_int_equal(info_of(f, LEASE_QUEUE_ANNOTATION, "i").state, LEASE_TASK_LEASED);
    lease_ack_t ack;
    assert_int_equal(lease_submit(f->ls, l.lease_id, "ann-1", l.fencing_token, T0 + 1, &ack, err, sizeof(err)), LEASE_OK);
    assert_int_equal(put(f, LEASE_QUEUE_ANNOTATION, "i", "ja-JP/dish", NULL, 3, NULL, T0), LEASE_DUPLICATE);
    assert_int_equal(pool_depth(f, "ja-JP/dish"), 0);
    lease_task_info_t info = info_of(f, LEASE_QUEUE_ANNOTATION, "i");
    assert_int_equal(info.state, LEASE_TASK_DONE);
    assert_int_equal(info.fence, 1);
    /* A done task keeps its small record, not its payload. */
    redisReply *rep = redis_command(f->r, err, sizeof(err), "EXISTS {%s:q:annotation}:json:i", f->ns);
    assert_non_null(rep);
    assert_int_equal(rep->integer, 0);
    freeReplyObject(rep);
    lease_free(&l);
    /* The same id in another queue kind is another item. */
    put_ok(f, LEASE_QUEUE_EXAM, "i", NULL, "cand-1", 3, NULL, T0);
}

/* New work PUBLISHes the home it landed in on the queue kind's channel:
 * what the dispatcher's long-polls wait on. */
static void test_wake_channel(void **state) {
    fixture_t *f = *state;
    /* A subscriber needs the raw connection: parse host and port of
     * redis://[:pw@]host:port[/db]. */
    const char *url = config_str(cfg, "redis.url");
    if (strchr(url, '@')) skip(); /* a password: this tiny parser does not AUTH */
    const char *hp = url + strlen("redis://");
    char host[128];
    int port = 6379;
    size_t hl = strcspn(hp, ":/");
    snprintf(host, sizeof(host), "%.*s", (int)hl, hp);
    if (hp[hl] == ':') port = atoi(hp + hl + 1);
    redisContext *sub = redisConnectWithTimeout(host, port, (struct timeval){5, 0});
    assert_true(sub != NULL && sub->err == 0);
    redisSetTimeout(sub, (struct timeval){DEADLINE_S, 0}); /* hang guard */
    char channel[LEASE_KEY_MAX];
    assert_true(lease_wake_channel(f->ls, LEASE_QUEUE_ANNOTATION, channel, sizeof(channel)) > 0);
    redisReply *rep = redisCommand(sub, "SUBSCRIBE %s", channel);
    assert_non_null(rep);
    freeReplyObject(rep);

    put_ok(f, LEASE_QUEUE_ANNOTATION, "w", "ja-JP/dish", NULL, 3, NULL, T0);
    assert_int_equal(put(f, LEASE_QUEUE_ANNOTATION, "w", "ja-JP/dish", NULL, 3, NULL, T0), LEASE_DUPLICATE);
    lease_t l;
    take_ok(f, "ann-1", T0, 1000, &l);
    lease_ack_t ack;
    assert_int_equal(lease_release(f->ls, l.lease_id, "ann-1", T0 + 1, &ack, err, sizeof(err)), LEASE_OK);
    lease_free(&l);
    put_ok(f, LEASE_QUEUE_ANNOTATION, "w2", "ja-JP/general", NULL, 3, NULL, T0);

    /* Enqueue, release, enqueue: the duplicate published nothing. */
    const char *want[] = {":pool:ja-JP/dish", ":pool:ja-JP/dish", ":pool:ja-JP/general"};
    for (int i = 0; i < 3; i++) {
        void *r = NULL;
        assert_int_equal(redisGetReply(sub, &r), REDIS_OK);
        rep = r;
        assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
        assert_int_equal(rep->elements, 3);
        assert_string_equal(rep->element[0]->str, "message");
        assert_string_equal(rep->element[1]->str, channel);
        assert_string_equal(rep->element[2]->str, want[i]);
        freeReplyObject(rep);
    }
    redisFree(sub);
}

/* Redis lost everything while a lease was out: restore re-queues the task
 * with its counter above the floor, so the old token is stale and the next
 * lease's token is higher than any before the loss. */
static void test_restore_after_loss_raises_fence(void **state) {
    fixture_t *f = *state;
    put_ok(f, LEASE_QUEUE_ANNOTATION, "t", "ja-JP/dish", NULL, 3, NULL, T0);
    lease_t a;
    take_ok(f, "ann-a", T0, 10000, &a);
    assert_int_equal(a.fencing_token, 1);

    ns_wipe(f->r, f->ns); /* the loss */
    redisReply *rep = redis_command(f->r, err, sizeof(err), "SCRIPT FLUSH");
    assert_non_null(rep);
    freeReplyObject(rep);

    char json[256];
    task_json(json, sizeof(json), "t");
    lease_item_t item = {.task_id = "t", .pool = "ja-JP/dish", .priority = 3, .task_json = json};
    uint64_t fence;
    char ended[LEASE_ID_LEN];
    /* PostgreSQL knew token 1. */
    assert_int_equal(lease_restore(f->ls, LEASE_QUEUE_ANNOTATION, &item, 1, 0, T0 + 10, &fence, ended, err, sizeof(err)), LEASE_OK);
    assert_int_equal(fence, 2);
    assert_string_equal(ended, "");
    lease_ack_t ack;
    assert_int_equal(lease_heartbeat(f->ls, a.lease_id, "ann-a", T0 + 20, 0, &ack, err, sizeof(err)), LEASE_LOST);
    assert_int_equal(lease_submit(f->ls, a.lease_id, "ann-a", a.fencing_token, T0 + 20, &ack, err, sizeof(err)), LEASE_LOST);

    lease_t b;
    take_ok(f, "ann-b", T0 + 30, 10000, &b);
    assert_string_equal(b.task_id, "t");
    assert_int_equal(b.fencing_token, 3);
    assert_string_equal(b.task_json, json);

    /* Restore while Redis still holds a live lease (PostgreSQL cannot vouch
     * for it): the lease ends and its holder is lost. */
    assert_int_equal(lease_restore(f->ls, LEASE_QUEUE_ANNOTATION, &item, 2, 0, T0 + 40, &fence, ended, err, sizeof(err)), LEASE_OK);
    assert_int_equal(fence, 3); /* the counter never goes down */
    assert_string_equal(ended, b.lease_id);
    assert_int_equal(lease_submit(f->ls, b.lease_id, "ann-b", b.fencing_token, T0 + 50, &ack, err, sizeof(err)), LEASE_LOST);
    long long held;
    assert_int_equal(lease_held_count(f->ls, LEASE_QUEUE_ANNOTATION, "ann-b", T0 + 50, &held, err, sizeof(err)), LEASE_OK);
    assert_int_equal(held, 0);
    assert_int_equal(pool_depth(f, "ja-JP/dish"), 1);

    lease_t c;
    take_ok(f, "ann-c", T0 + 60, 10000, &c);
    assert_int_equal(c.fencing_token, 4);
    assert_int_equal(lease_submit(f->ls, c.lease_id, "ann-c", c.fencing_token, T0 + 70, &ack, err, sizeof(err)), LEASE_OK);
    /* A done task that PostgreSQL says is open (its submission was never
     * recorded) comes back too. */
    assert_int_equal(lease_restore(f->ls, LEASE_QUEUE_ANNOTATION, &item, 4, 0, T0 + 80, &fence, ended, err, sizeof(err)), LEASE_OK);
    assert_int_equal(fence, 5);
    assert_int_equal(info_of(f, LEASE_QUEUE_ANNOTATION, "t").state, LEASE_TASK_QUEUED);
    lease_free(&a);
    lease_free(&b);
    lease_free(&c);
}

/* Restore takes a parked task back, keeping the larger attempt count. */
static void test_restore_unparks(void **state) {
    fixture_t *f = *state;
    put_ok(f, LEASE_QUEUE_ANNOTATION, "p", "ja-JP/dish", NULL, 3, NULL, T0);
    lease_t l;
    take_ok(f, "ann-1", T0, 100, &l);
    lease_expired_t x[1];
    size_t n;
    assert_int_equal(lease_reap(f->ls, LEASE_QUEUE_ANNOTATION, T0 + 100, 1, x, 1, &n, err, sizeof(err)), LEASE_OK);
    assert_true(n == 1 && x[0].parked);
    char json[256];
    task_json(json, sizeof(json), "p");
    lease_item_t item = {.task_id = "p", .pool = "ja-JP/dish", .priority = 3, .task_json = json};
    assert_int_equal(lease_restore(f->ls, LEASE_QUEUE_ANNOTATION, &item, 1, 0, T0 + 200, NULL, NULL, err, sizeof(err)), LEASE_OK);
    lease_task_info_t info = info_of(f, LEASE_QUEUE_ANNOTATION, "p");
    assert_int_equal(info.state, LEASE_TASK_QUEUED);
    assert_int_equal(info.expired_attempts, 1);
    redisReply *rep = redis_command(f->r, err, sizeof(err), "ZCARD {%s:q:annotation}:parked", f->ns);
    assert_non_null(rep);
    assert_int_equal(rep->integer, 0);
    freeReplyObject(rep);
    lease_free(&l);
}

/* A lease PostgreSQL vouches for comes back with its id and token, and its
 * holder carries on; one older than what Redis knows is refused. */
static void test_restore_held(void **state) {
    fixture_t *f = *state;
    char json[256];
    task_json(json, sizeof(json), "h");
    lease_item_t item = {.task_id = "h", .pool = "ja-JP/dish", .priority = 3, .task_json = json};
    char lid[LEASE_ID_LEN];
    event_id_new(lid);
    lease_policy_lease_id_mark(lid, LEASE_QUEUE_ANNOTATION);
    lease_held_t held = {.lease_id = lid, .holder_id = "ann-1", .fencing_token = 7,
                         .expires_at_ms = T0 + 1000, .ttl_ms = 1000};
    assert_int_equal(lease_restore_held(f->ls, LEASE_QUEUE_ANNOTATION, &item, &held, 0, T0, err, sizeof(err)), LEASE_OK);
    /* Twice is the same. */
    assert_int_equal(lease_restore_held(f->ls, LEASE_QUEUE_ANNOTATION, &item, &held, 0, T0, err, sizeof(err)), LEASE_OK);
    lease_ack_t ack;
    assert_int_equal(lease_heartbeat(f->ls, lid, "ann-1", T0 + 500, 0, &ack, err, sizeof(err)), LEASE_OK);
    assert_int_equal(ack.fencing_token, 7);
    assert_int_equal(ack.expires_at_ms, T0 + 1500);
    long long n;
    assert_int_equal(lease_held_count(f->ls, LEASE_QUEUE_ANNOTATION, "ann-1", T0 + 500, &n, err, sizeof(err)), LEASE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(lease_submit(f->ls, lid, "ann-1", 7, T0 + 600, &ack, err, sizeof(err)), LEASE_OK);

    /* Redis handed out tokens up to 2 for another task: a recorded lease
     * with token 1 is older than what Redis knows. */
    put_ok(f, LEASE_QUEUE_ANNOTATION, "k", "ja-JP/dish", NULL, 3, NULL, T0);
    lease_t l;
    take_ok(f, "ann-2", T0, 1000, &l);
    assert_int_equal(lease_release(f->ls, l.lease_id, "ann-2", T0 + 1, &ack, err, sizeof(err)), LEASE_OK);
    lease_free(&l);
    take_ok(f, "ann-2", T0 + 2, 1000, &l);
    assert_int_equal(l.fencing_token, 2);
    task_json(json, sizeof(json), "k");
    lease_item_t k = {.task_id = "k", .pool = "ja-JP/dish", .priority = 3, .task_json = json};
    char lid2[LEASE_ID_LEN];
    event_id_new(lid2);
    lease_policy_lease_id_mark(lid2, LEASE_QUEUE_ANNOTATION);
    lease_held_t old = {.lease_id = lid2, .holder_id = "ann-3", .fencing_token = 1,
                        .expires_at_ms = T0 + 1000, .ttl_ms = 1000};
    assert_int_equal(lease_restore_held(f->ls, LEASE_QUEUE_ANNOTATION, &k, &old, 0, T0 + 3, err, sizeof(err)), LEASE_LOST);
    assert_int_equal(lease_heartbeat(f->ls, l.lease_id, "ann-2", T0 + 4, 0, &ack, err, sizeof(err)), LEASE_OK);
    /* A lease id of another queue is refused outright. */
    lease_policy_lease_id_mark(lid2, LEASE_QUEUE_EXAM);
    assert_int_equal(lease_restore_held(f->ls, LEASE_QUEUE_ANNOTATION, &k, &old, 0, T0 + 3, err, sizeof(err)), LEASE_ERR_INVALID);
    lease_free(&l);
}

/* A partial loss (a failover that dropped some writes) can leave a lease
 * record whose task has moved on: its counter is past the lease's token.
 * That lease is lost for every call; at its expiry the reaper still frees
 * the task, which would otherwise stay leased forever. */
static void test_superseded_lease_is_lost(void **state) {
    fixture_t *f = *state;
    put_ok(f, LEASE_QUEUE_ANNOTATION, "s", "ja-JP/dish", NULL, 3, NULL, T0);
    lease_t l;
    take_ok(f, "ann-1", T0, 1000, &l);
    redisReply *rep = redis_command(f->r, err, sizeof(err), "HSET {%s:q:annotation}:task:s fence 5", f->ns);
    assert_non_null(rep);
    freeReplyObject(rep);
    lease_ack_t ack;
    assert_int_equal(lease_heartbeat(f->ls, l.lease_id, "ann-1", T0 + 1, 0, &ack, err, sizeof(err)), LEASE_LOST);
    assert_int_equal(ack.lost, LEASE_LOST_SUPERSEDED);
    assert_int_equal(lease_submit(f->ls, l.lease_id, "ann-1", l.fencing_token, T0 + 1, &ack, err, sizeof(err)), LEASE_LOST);
    assert_int_equal(ack.lost, LEASE_LOST_SUPERSEDED);
    assert_int_equal(lease_release(f->ls, l.lease_id, "ann-1", T0 + 1, &ack, err, sizeof(err)), LEASE_LOST);
    assert_int_equal(ack.lost, LEASE_LOST_SUPERSEDED);
    lease_expired_t x[1];
    size_t n;
    assert_int_equal(lease_reap(f->ls, LEASE_QUEUE_ANNOTATION, l.expires_at_ms, 3, x, 1, &n, err, sizeof(err)), LEASE_OK);
    assert_int_equal(n, 1);
    assert_false(x[0].parked);
    lease_free(&l);
    take_ok(f, "ann-2", T0 + 2000, 1000, &l);
    assert_string_equal(l.task_id, "s");
    assert_int_equal(l.fencing_token, 6);
    lease_free(&l);
}

/* Whatever a client sends as a lease id is LOST, never an error, and never
 * touches another queue's leases. */
static void test_lease_ids_from_clients(void **state) {
    fixture_t *f = *state;
    lease_ack_t ack;
    const char *junk[] = {"", "x", "../../etc", "0b4e7a0e-5d1c-4a2b-9c3d-1e2f3a4b5c60",
                          "0B4E7A0E-5D1C-4A2B-9C3D-1E2F3A4B5C61", "{annot:q:exam}:lease:x"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        assert_int_equal(lease_heartbeat(f->ls, junk[i], "ann-1", T0, 0, &ack, err, sizeof(err)), LEASE_LOST);
        assert_int_equal(ack.lost, LEASE_LOST_UNKNOWN);
        assert_int_equal(lease_submit(f->ls, junk[i], "ann-1", 1, T0, &ack, err, sizeof(err)), LEASE_LOST);
    }
    put_ok(f, LEASE_QUEUE_ANNOTATION, "t", "ja-JP/dish", NULL, 3, NULL, T0);
    lease_t l;
    take_ok(f, "ann-1", T0, 1000, &l);
    /* The same id marked for the exam queue is another lease: unknown. */
    char other[LEASE_ID_LEN];
    memcpy(other, l.lease_id, sizeof(other));
    lease_policy_lease_id_mark(other, LEASE_QUEUE_EXAM);
    assert_int_equal(lease_submit(f->ls, other, "ann-1", l.fencing_token, T0 + 1, &ack, err, sizeof(err)), LEASE_LOST);
    assert_int_equal(ack.lost, LEASE_LOST_UNKNOWN);
    assert_int_equal(lease_submit(f->ls, l.lease_id, "ann-1", l.fencing_token, T0 + 1, &ack, err, sizeof(err)), LEASE_OK);
    lease_free(&l);
}

static void test_bad_arguments(void **state) {
    fixture_t *f = *state;
    lease_item_t both = {.task_id = "t", .pool = "ja-JP/dish", .owner_id = "x", .task_json = "{}"};
    assert_int_equal(lease_enqueue(f->ls, LEASE_QUEUE_ANNOTATION, &both, T0, err, sizeof(err)), LEASE_ERR_INVALID);
    assert_non_null(strstr(err, "pool and owner_id"));
    lease_item_t prio = {.task_id = "t", .pool = "ja-JP/dish", .priority = 1024, .task_json = "{}"};
    assert_int_equal(lease_enqueue(f->ls, LEASE_QUEUE_ANNOTATION, &prio, T0, err, sizeof(err)), LEASE_ERR_INVALID);
    assert_non_null(strstr(err, "priority"));
    lease_item_t id = {.task_id = "a b", .pool = "ja-JP/dish", .task_json = "{}"};
    assert_int_equal(lease_enqueue(f->ls, LEASE_QUEUE_ANNOTATION, &id, T0, err, sizeof(err)), LEASE_ERR_INVALID);
    assert_non_null(strstr(err, "task_id"));
    lease_item_t pool = {.task_id = "t", .pool = "dish", .task_json = "{}"};
    assert_int_equal(lease_enqueue(f->ls, LEASE_QUEUE_ANNOTATION, &pool, T0, err, sizeof(err)), LEASE_ERR_INVALID);
    assert_int_equal(lease_enqueue(f->ls, (lease_queue_t)7, &pool, T0, err, sizeof(err)), LEASE_ERR_INVALID);
    lease_request_t none = {.holder_id = "ann-1", .ttl_ms = 1000, .max_held = 1};
    lease_t l;
    assert_int_equal(lease_acquire(f->ls, LEASE_QUEUE_ANNOTATION, &none, &l, err, sizeof(err)), LEASE_ERR_INVALID);
    lease_expired_t x[1];
    size_t n;
    assert_int_equal(lease_reap(f->ls, LEASE_QUEUE_ANNOTATION, T0, 0, x, 1, &n, err, sizeof(err)), LEASE_ERR_INVALID);
    assert_null(lease_store_new(f->r, "a{b}", err, sizeof(err)));
    /* Nothing reached Redis. */
    assert_int_equal(pool_depth(f, "ja-JP/dish"), 0);
}

/* ---- concurrency ---------------------------------------------------------------- */

#define CONC_THREADS 16
#define CONC_TASKS   2000

typedef struct conc {
    const char *ns;
    time_t deadline;
    atomic_int live[CONC_TASKS];           /* live leases per task, as the holders see them */
    atomic_ullong last_fence[CONC_TASKS];  /* highest token handed out per task */
    atomic_int submitted[CONC_TASKS];
    atomic_int total_submitted;
    atomic_int double_held;                /* a task leased while another lease of it was live */
    atomic_int fence_not_rising;
    atomic_int unexpected;                 /* any call that should have succeeded and did not */
    atomic_int releases, heartbeats;
    char first_error[512];
    atomic_flag error_once;
} conc_t;

typedef struct worker {
    conc_t *c;
    int index;
} worker_t;

static void conc_error(conc_t *c, const char *what, int rc, const char *detail) {
    atomic_fetch_add(&c->unexpected, 1);
    if (!atomic_flag_test_and_set(&c->error_once)) {
        snprintf(c->first_error, sizeof(c->first_error), "%s: %s %s", what, lease_rc_name(rc), detail);
    }
}

static void *conc_worker(void *arg) {
    worker_t *w = arg;
    conc_t *c = w->c;
    char e[512], holder[32];
    snprintf(holder, sizeof(holder), "worker-%d", w->index);
    redis_t *r = redis_connect(config_str(cfg, "redis.url"), e, sizeof(e));
    if (r == NULL) {
        conc_error(c, "connect", 0, e);
        return NULL;
    }
    lease_store_t *ls = lease_store_new(r, c->ns, e, sizeof(e));
    static const lease_pool_name_t pools[] = {"ja-JP/dish", "ja-JP/general"};
    /* now 0: the Redis server's clock, as the dispatcher will run it. */
    lease_request_t req = {.holder_id = holder, .pools = pools, .npools = 2, .now_ms = 0,
                           .ttl_ms = 600000, .max_held = 1};
    unsigned seed = (unsigned)w->index * 7919u + 1u;
    while (atomic_load(&c->total_submitted) < CONC_TASKS && time(NULL) < c->deadline) {
        lease_t l;
        int rc = lease_acquire(ls, LEASE_QUEUE_ANNOTATION, &req, &l, e, sizeof(e));
        if (rc == LEASE_NONE) {
            /* Everything left is leased by others, who may release it. */
            nanosleep(&(struct timespec){0, 1000000}, NULL);
            continue;
        }
        if (rc != LEASE_OK) {
            conc_error(c, "acquire", rc, e);
            break;
        }
        int idx = atoi(l.task_id + 2);
        if (atomic_fetch_add(&c->live[idx], 1) != 0) atomic_fetch_add(&c->double_held, 1);
        unsigned long long prev = atomic_exchange(&c->last_fence[idx], l.fencing_token);
        if (l.fencing_token <= prev) atomic_fetch_add(&c->fence_not_rising, 1);
        lease_ack_t ack;
        unsigned dice = (unsigned)rand_r(&seed) % 8;
        if (dice == 0) {
            rc = lease_heartbeat(ls, l.lease_id, holder, 0, 0, &ack, e, sizeof(e));
            if (rc != LEASE_OK) conc_error(c, "heartbeat", rc, e);
            atomic_fetch_add(&c->heartbeats, 1);
        }
        if (dice == 1) {
            /* Off the books before Redis requeues it: from then on another
             * worker may take it legitimately. */
            atomic_fetch_sub(&c->live[idx], 1);
            rc = lease_release(ls, l.lease_id, holder, 0, &ack, e, sizeof(e));
            if (rc != LEASE_OK) conc_error(c, "release", rc, e);
            atomic_fetch_add(&c->releases, 1);
        } else {
            rc = lease_submit(ls, l.lease_id, holder, l.fencing_token, 0, &ack, e, sizeof(e));
            if (rc != LEASE_OK) conc_error(c, "submit", rc, e);
            /* Done in Redis: nobody can lease it any more, so leaving the
             * books only now proves no overlap. */
            atomic_fetch_sub(&c->live[idx], 1);
            atomic_fetch_add(&c->submitted[idx], 1);
            atomic_fetch_add(&c->total_submitted, 1);
        }
        lease_free(&l);
    }
    lease_store_destroy(ls);
    redis_close(r);
    return NULL;
}

/* 16 threads, each with its own connection, lease and submit (and sometimes
 * heartbeat or release) 2,000 tasks: every task is submitted exactly once,
 * no task is ever held by two live leases, tokens only rise. */
static void test_concurrent_workers(void **state) {
    fixture_t *f = *state;
    conc_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->ns = f->ns;
    for (int i = 0; i < CONC_TASKS; i++) {
        char id[16];
        snprintf(id, sizeof(id), "c-%04d", i);
        put_ok(f, LEASE_QUEUE_ANNOTATION, id, i % 3 ? "ja-JP/dish" : "ja-JP/general", NULL, i % 5, NULL, 0);
    }
    c->deadline = time(NULL) + DEADLINE_S;
    pthread_t threads[CONC_THREADS];
    worker_t workers[CONC_THREADS];
    for (int i = 0; i < CONC_THREADS; i++) {
        workers[i] = (worker_t){c, i};
        assert_int_equal(pthread_create(&threads[i], NULL, conc_worker, &workers[i]), 0);
    }
    for (int i = 0; i < CONC_THREADS; i++) pthread_join(threads[i], NULL);

    if (c->unexpected || c->double_held || c->fence_not_rising) {
        fail_msg("%d leases of a task already held, %d tokens not above the last, %d unexpected outcomes (first: %s)",
                 atomic_load(&c->double_held), atomic_load(&c->fence_not_rising),
                 atomic_load(&c->unexpected), c->first_error);
    }
    assert_true(time(NULL) < c->deadline);
    assert_int_equal(atomic_load(&c->total_submitted), CONC_TASKS);
    assert_true(atomic_load(&c->releases) > 0);
    for (int i = 0; i < CONC_TASKS; i++) {
        assert_int_equal(atomic_load(&c->submitted[i]), 1);
        char id[16];
        snprintf(id, sizeof(id), "c-%04d", i);
        lease_task_info_t info = info_of(f, LEASE_QUEUE_ANNOTATION, id);
        assert_int_equal(info.state, LEASE_TASK_DONE);
        assert_int_equal(info.fence, atomic_load(&c->last_fence[i]));
    }
    long long open;
    assert_int_equal(lease_open_count(f->ls, LEASE_QUEUE_ANNOTATION, &open, err, sizeof(err)), LEASE_OK);
    assert_int_equal(open, 0);
    assert_int_equal(pool_depth(f, "ja-JP/dish"), 0);
    assert_int_equal(pool_depth(f, "ja-JP/general"), 0);
    printf("  concurrent: %d tasks, %d releases, %d heartbeats\n", CONC_TASKS,
           atomic_load(&c->releases), atomic_load(&c->heartbeats));
    free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_acquire_order_and_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fencing_token_rises, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_holder_is_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_requeues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_requeues_then_parks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_events_claim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_queue_and_event_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reap_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validator_never_gets_own_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_queue_is_private, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enqueue_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wake_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_after_loss_raises_fence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_unparks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_superseded_lease_is_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_ids_from_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_workers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
