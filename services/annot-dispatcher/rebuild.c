/* rebuild: see rebuild.h. */
#include "rebuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "log.h"

/* 1 when the marker is there, 0 when not, -1 when Redis failed. */
static int marker_present(redis_t *redis, const char *key, char *errstr, size_t errlen) {
    redisReply *rep = redis_command(redis, errstr, errlen, "EXISTS %s", key);
    if (rep == NULL) return -1;
    int present = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    return present;
}

/* Requeues every queued task, a page at a time (keyset on task_id). */
static long requeue_all(pg_t *pg, lease_store_t *leases, uint64_t fence_floor, char *errstr, size_t errlen) {
    char last[256] = "";
    long total = 0;
    for (;;) {
        const char *params[1] = {last};
        PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                                 "SELECT task_id, queue, pool, owner_id, priority, payload::text, author_id FROM tasks "
                                 "WHERE state = 'queued' AND task_id > $1 ORDER BY task_id LIMIT 1000",
                                 1, params, errstr, errlen);
        if (res == NULL) return -1;
        int n = PQntuples(res);
        for (int i = 0; i < n; i++) {
            lease_queue_t q;
            if (lease_queue_parse(PQgetvalue(res, i, 1), &q) != 0) continue;
            lease_item_t item = {PQgetvalue(res, i, 0), q == LEASE_QUEUE_ANNOTATION ? PQgetvalue(res, i, 2) : NULL,
                                 q != LEASE_QUEUE_ANNOTATION ? PQgetvalue(res, i, 3) : NULL,
                                 atoi(PQgetvalue(res, i, 4)), PQgetvalue(res, i, 5), 0,
                                 /* the author keeps their own work away from them after a rebuild too */
                                 PQgetlength(res, i, 6) > 0 ? PQgetvalue(res, i, 6) : NULL};
            if (lease_restore(leases, q, &item, fence_floor, 0, 0, NULL, NULL, errstr, errlen) < 0) {
                PQclear(res);
                return -1;
            }
            total++;
        }
        if (n > 0) snprintf(last, sizeof(last), "%s", PQgetvalue(res, n - 1, 0));
        PQclear(res);
        if (n < 1000) return total;
    }
}

long rebuild_if_lost(pg_t *pg, redis_t *redis, lease_store_t *leases, const char *ns, char *errstr, size_t errlen) {
    char marker[256];
    snprintf(marker, sizeof(marker), "%s:epoch", ns);
    int present = marker_present(redis, marker, errstr, errlen);
    if (present != 0) return present < 0 ? -1 : 0;
    if (pg_ensure(pg, errstr, errlen) != 0) return -1;
    const char *params[1] = {marker};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, "SELECT pg_advisory_lock(hashtext($1))", 1, params, errstr, errlen);
    if (res == NULL) return -1;
    PQclear(res);
    long total = 0;
    /* Another instance may have rebuilt while we waited for the lock. */
    if ((present = marker_present(redis, marker, errstr, errlen)) != 0) {
        total = present < 0 ? -1 : 0;
        goto unlock;
    }
    res = pg_query(pg, PGRES_TUPLES_OK, "UPDATE rebuild_state SET epoch = epoch + 1 RETURNING epoch", 0, NULL, errstr,
                   errlen);
    if (res == NULL) {
        total = -1;
        goto unlock;
    }
    unsigned long long epoch = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    total = requeue_all(pg, leases, (uint64_t)epoch << 32, errstr, errlen);
    if (total >= 0) {
        redisReply *rep = redis_command(redis, errstr, errlen, "SET %s %llu", marker, epoch);
        if (rep == NULL) total = -1;
        else freeReplyObject(rep);
    }
    if (total >= 0)
        log_write_fields(LOG_LEVEL_WARN, json_pack("{s:I, s:I}", "epoch", (json_int_t)epoch, "tasks", (json_int_t)total),
                         "redis had lost the queues: rebuilt from postgresql");
unlock:
    res = PQexec(pg_conn(pg), "SELECT pg_advisory_unlock_all()");
    PQclear(res);
    return total;
}

/* How old an unconfirmed submission must be before it is settled: only
 * slack for the clocks of Redis and this host, since an in-flight
 * submission holds its row locked and is skipped anyway. */
#define RECONCILE_GRACE_MS 5000
#define RECONCILE_BATCH 256

static long reconcile_queue(pg_t *pg, lease_store_t *leases, lease_queue_t q, char *errstr, size_t errlen) {
    static char ids[RECONCILE_BATCH][LEASE_ID_MAX + 1]; /* main thread only */
    const char *ptrs[RECONCILE_BATCH];
    size_t n = 0;
    if (lease_unconfirmed(leases, q, event_now_ms() - RECONCILE_GRACE_MS, ids, RECONCILE_BATCH, &n, errstr, errlen) < 0)
        return -1;
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++) ptrs[i] = ids[i];
    if (pg_ensure(pg, errstr, errlen) != 0 || pg_begin(pg, errstr, errlen) != 0) return -1;
    char *arr = pg_text_array(ptrs, n);
    const char *params[1] = {arr};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "SELECT task_id, state, pool, owner_id, priority, payload::text, author_id FROM tasks "
                             "WHERE task_id = ANY($1::text[]) FOR UPDATE SKIP LOCKED",
                             1, params, errstr, errlen);
    free(arr);
    if (res == NULL) {
        pg_rollback(pg);
        return -1;
    }
    long requeued = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *task_id = PQgetvalue(res, i, 0);
        if (strcmp(PQgetvalue(res, i, 1), "queued") == 0) {
            lease_item_t item = {task_id, q == LEASE_QUEUE_ANNOTATION ? PQgetvalue(res, i, 2) : NULL,
                                 q != LEASE_QUEUE_ANNOTATION ? PQgetvalue(res, i, 3) : NULL,
                                 atoi(PQgetvalue(res, i, 4)), PQgetvalue(res, i, 5), 0,
                                 PQgetlength(res, i, 6) > 0 ? PQgetvalue(res, i, 6) : NULL};
            if (lease_restore(leases, q, &item, 0, 0, 0, NULL, NULL, errstr, errlen) < 0) goto fail;
            log_warn("task %s: its submission was never recorded in PostgreSQL; queued again", task_id);
            requeued++;
        }
        if (lease_confirm(leases, q, task_id, errstr, errlen) < 0) goto fail;
    }
    PQclear(res);
    pg_rollback(pg); /* only the row locks to give back */
    return requeued;
fail:
    PQclear(res);
    pg_rollback(pg);
    return -1;
}

long reconcile_unconfirmed(pg_t *pg, lease_store_t *leases, char *errstr, size_t errlen) {
    long total = 0;
    for (int q = LEASE_QUEUE_FIRST; q <= LEASE_QUEUE_LAST; q++) {
        long n = reconcile_queue(pg, leases, (lease_queue_t)q, errstr, errlen);
        if (n < 0) return -1;
        total += n;
    }
    return total;
}
