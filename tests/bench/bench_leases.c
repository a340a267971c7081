/* bench_leases: lease-then-submit cycles through the dispatcher's lease
 * module (one atomic Lua script per step, leases.c) against the stack's
 * Redis, with 1, 8 and 64 concurrent clients, beside the ceiling measured in
 * the same run: redis-benchmark running EVALSHA of a script that does the
 * Redis work of one lease step (pop a queue head, bump a fencing counter,
 * write the task and lease hashes, index the expiry, append an event) with
 * the same number of clients, its rate and its own p50/p99 (--csv).  Each
 * client is a thread with its own blocking connection and one call in
 * flight, as the dispatcher serves a kept-alive HTTP client (a thread per
 * connection, a pooled Redis connection per request); the bench's own work
 * between calls (an id, a JSON line) is a few percent of its CPU.  Each
 * client keeps one task in flight and at least 10 tasks stay queued.  Each
 * cycle is three script calls (acquire, submit, and an enqueue that keeps
 * the queue depth constant), so the ratio compares script calls per second.
 *
 * A second table says where the time went, for ours and for the ceiling:
 * Redis's CPU and its wait for a CPU as shares of the wall time (INFO cpu,
 * /proc/<pid>/schedstat when Redis runs on this host), its microseconds
 * inside each EVALSHA (INFO commandstats), the client's CPU per call (this
 * process, or redis-benchmark), and our client threads' wait for a CPU per
 * call (their schedstat): with 64 calls in flight on one Redis thread the
 * lease latency is mostly the Redis queue, 64 x Redis's time per call,
 * stretched whenever Redis waits for a CPU.
 *
 * Then the lease latency with 10 and with 1,000,000 tasks queued
 * (BENCH_DEEP sets the depth): two pools in one Redis, leased from in
 * alternating rounds, the median of the rounds' ratios; and Redis's memory
 * for the deep pool.  Figures, never a pass or fail. */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "log.h"
#include "redis.h"

#include "lease_policy.h"
#include "leases.h"

#define POOL "en-US/dish"
#define DEEP_POOL "en-US/deep"
#define DEPTH_ROUNDS 8 /* even: each depth goes first as often */
#define DEPTH_CYCLES 500
#define TASK_JSON_FMT "{\"task_id\":\"%s\",\"kind\":\"production\",\"main_object\":\"katsu curry\",\"locale\":\"en-US\"}"

static const char *redis_url;
static char ns[32];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what, const char *err) {
    fprintf(stderr, "bench_leases: %s: %s\n", what, err);
    exit(1);
}

typedef struct conn {
    redis_t *r;
    lease_store_t *ls;
} conn_t;

static void conn_open(conn_t *c) {
    char err[256];
    if ((c->r = redis_connect(redis_url, err, sizeof(err))) == NULL) die("redis", err);
    if ((c->ls = lease_store_new(c->r, ns, err, sizeof(err))) == NULL) die("lease store", err);
}

static void conn_close(conn_t *c) {
    lease_store_destroy(c->ls);
    redis_close(c->r);
}

/* The pool the cycle clients lease from and queue back into. */
static const char *cycle_pool = POOL;

static void enqueue(conn_t *c, const char *pool, const char *task_id) {
    char json[256], err[256];
    snprintf(json, sizeof(json), TASK_JSON_FMT, task_id);
    lease_item_t item = {.task_id = task_id, .pool = pool, .priority = 1, .task_json = json};
    if (lease_enqueue(c->ls, LEASE_QUEUE_ANNOTATION, &item, 0, err, sizeof(err)) != LEASE_OK) die("enqueue", err);
}

/* ---- where the time goes ------------------------------------------------- */

/* What a run cost, read before and after it: the Redis server's CPU (its
 * INFO cpu, all threads), its time inside EVALSHA (INFO commandstats), its
 * main thread's wait for a CPU (/proc/<pid>/schedstat, when Redis runs on
 * this host), this process's CPU and its children's (redis-benchmark). */
typedef struct usage {
    double t, redis_cpu_s, redis_runq_s, evalsha_usec, evalsha_calls, self_cpu_s, child_cpu_s;
} usage_t;

static redis_t *stats_redis;
static long redis_pid;

static double info_field(const char *info, const char *field) {
    const char *p = strstr(info, field);
    return p ? strtod(p + strlen(field), NULL) : 0;
}

/* Seconds the thread of an open schedstat file spent runnable but waiting
 * for a CPU (its second field, nanoseconds); -1 when unreadable.  pread
 * regenerates the file: one system call per reading. */
static double runq_fd_s(int fd) {
    char buf[128];
    ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf) - 1, 0) : -1;
    if (n <= 0) return -1;
    buf[n] = '\0';
    unsigned long long run_ns, wait_ns;
    return sscanf(buf, "%llu %llu", &run_ns, &wait_ns) == 2 ? (double)wait_ns / 1e9 : -1;
}

static double runq_wait_s(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    double v = runq_fd_s(fd);
    if (fd >= 0) close(fd);
    return v;
}

static double redis_runq_s(void) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/schedstat", redis_pid);
    return redis_pid > 0 ? runq_wait_s(path) : -1;
}

static double cpu_s(int who) {
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static usage_t usage_now(void) {
    char err[256];
    usage_t u = {.t = now_s()};
    redisReply *rep = redis_command(stats_redis, err, sizeof(err), "INFO cpu");
    if (rep == NULL || rep->type != REDIS_REPLY_STRING) die("INFO cpu", err);
    u.redis_cpu_s = info_field(rep->str, "used_cpu_sys:") + info_field(rep->str, "used_cpu_user:");
    freeReplyObject(rep);
    rep = redis_command(stats_redis, err, sizeof(err), "INFO commandstats");
    if (rep == NULL || rep->type != REDIS_REPLY_STRING) die("INFO commandstats", err);
    const char *e = strstr(rep->str, "cmdstat_evalsha:");
    if (e != NULL) {
        u.evalsha_calls = info_field(e, "calls=");
        u.evalsha_usec = info_field(e, "usec=");
    }
    freeReplyObject(rep);
    u.redis_runq_s = redis_runq_s();
    u.self_cpu_s = cpu_s(RUSAGE_SELF);
    u.child_cpu_s = cpu_s(RUSAGE_CHILDREN);
    return u;
}

/* Between a and b: Redis's CPU and its wait for a CPU as fractions of the
 * wall time (wait -1 when unknown), its microseconds inside each EVALSHA,
 * and the client's CPU microseconds per script call (this process's, or
 * with children, redis-benchmark's). */
typedef struct cost {
    double redis_busy, redis_runq, redis_us, client_us;
} cost_t;

static cost_t usage_cost(const usage_t *a, const usage_t *b, double calls, bool children) {
    cost_t c;
    double wall = b->t - a->t, n = b->evalsha_calls - a->evalsha_calls;
    c.redis_busy = (b->redis_cpu_s - a->redis_cpu_s) / wall;
    c.redis_runq = a->redis_runq_s >= 0 && b->redis_runq_s >= 0 ? (b->redis_runq_s - a->redis_runq_s) / wall : -1;
    c.redis_us = n > 0 ? (b->evalsha_usec - a->evalsha_usec) / n : 0;
    double cpu = children ? b->child_cpu_s - a->child_cpu_s : b->self_cpu_s - a->self_cpu_s;
    c.client_us = calls > 0 ? cpu * 1e6 / calls : 0;
    return c;
}

/* ---- the cycle clients ---------------------------------------------------- */

typedef struct client {
    pthread_t th;
    int id, cycles;
    double *lat;    /* acquire latency of each cycle, seconds */
    double *own;    /* of which this thread waited for a CPU, seconds */
    double runq_s;  /* time runnable but waiting for a CPU over the cycles; -1 unknown */
} client_t;

static int seq_base;

static void *client_run(void *arg) {
    client_t *cl = arg;
    conn_t c;
    conn_open(&c);
    lease_pool_name_t pools[1];
    snprintf(pools[0], sizeof(pools[0]), "%s", cycle_pool);
    char holder[32], err[256];
    snprintf(holder, sizeof(holder), "holder-%d", cl->id);
    lease_request_t req = {.holder_id = holder, .pools = pools, .npools = 1, .ttl_ms = 30000, .max_held = 4};
    int sfd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    double runq0 = runq_fd_s(sfd);
    for (int i = 0; i < cl->cycles; i++) {
        lease_t l;
        double w0 = runq_fd_s(sfd);
        double t0 = now_s();
        int rc = lease_acquire(c.ls, LEASE_QUEUE_ANNOTATION, &req, &l, err, sizeof(err));
        cl->lat[i] = now_s() - t0;
        double w1 = runq_fd_s(sfd);
        cl->own[i] = w0 >= 0 && w1 >= 0 ? w1 - w0 : 0;
        if (rc != LEASE_OK) die("acquire", rc == LEASE_NONE ? "queue ran dry" : err);
        lease_ack_t ack;
        if (lease_submit(c.ls, l.lease_id, holder, l.fencing_token, 0, &ack, err, sizeof(err)) != LEASE_OK)
            die("submit", err);
        lease_free(&l);
        char task_id[64];
        snprintf(task_id, sizeof(task_id), "t-%d-%d-%d", seq_base, cl->id, i);
        enqueue(&c, cycle_pool, task_id);
    }
    double runq1 = runq_fd_s(sfd);
    if (sfd >= 0) close(sfd);
    cl->runq_s = runq0 >= 0 && runq1 >= 0 ? runq1 - runq0 : -1;
    conn_close(&c);
    return NULL;
}

typedef struct run_result {
    double cycles_per_s, p50_ms, p99_ms;
    double runq_us;            /* client threads' wait for a CPU, microseconds per script call */
    double p50_net_ms, p99_net_ms; /* lease latency less the calling thread's own wait for a CPU */
} run_result_t;

/* clients threads, each doing cycles lease-submit-enqueue cycles; *cost
 * (when not NULL) gets what the run cost. */
static run_result_t run_cycles(int clients, int cycles, cost_t *cost) {
    client_t *cl = calloc((size_t)clients, sizeof(*cl));
    seq_base++;
    usage_t u0 = usage_now();
    double t0 = now_s();
    for (int i = 0; i < clients; i++) {
        cl[i].id = i;
        cl[i].cycles = cycles;
        cl[i].lat = calloc((size_t)cycles, sizeof(double));
        cl[i].own = calloc((size_t)cycles, sizeof(double));
        pthread_create(&cl[i].th, NULL, client_run, &cl[i]);
    }
    for (int i = 0; i < clients; i++) pthread_join(cl[i].th, NULL);
    double elapsed = now_s() - t0;
    usage_t u1 = usage_now();
    size_t n = (size_t)clients * (size_t)cycles;
    double *all = malloc(n * sizeof(double)), *net = malloc(n * sizeof(double));
    double runq = 0;
    for (int i = 0; i < clients; i++) {
        for (int j = 0; j < cycles; j++) {
            all[(size_t)i * (size_t)cycles + (size_t)j] = cl[i].lat[j];
            net[(size_t)i * (size_t)cycles + (size_t)j] = cl[i].lat[j] - cl[i].own[j];
        }
        free(cl[i].lat);
        free(cl[i].own);
        runq = runq >= 0 && cl[i].runq_s >= 0 ? runq + cl[i].runq_s : -1;
    }
    free(cl);
    qsort(all, n, sizeof(double), cmp_double);
    qsort(net, n, sizeof(double), cmp_double);
    size_t p99 = (size_t)((double)n * 0.99);
    run_result_t r = {(double)n / elapsed, all[n / 2] * 1e3, all[p99] * 1e3,
                      runq >= 0 ? runq * 1e6 / (3.0 * (double)n) : -1, net[n / 2] * 1e3, net[p99] * 1e3};
    if (cost != NULL) *cost = usage_cost(&u0, &u1, 3.0 * (double)n, false);
    free(all);
    free(net);
    return r;
}

/* ---- the ceiling -------------------------------------------------------------- */

static const char CEILING_LUA[] =
    "local k = KEYS[1]\n"
    "local id = ARGV[1]\n"
    "redis.call('ZADD', k .. ':q', 1, id)\n"
    "local h = redis.call('ZRANGE', k .. ':q', 0, 0)\n"
    "redis.call('ZREM', k .. ':q', h[1])\n"
    "local f = redis.call('HINCRBY', k .. ':t:' .. id, 'fence', 1)\n"
    "redis.call('HSET', k .. ':t:' .. id, 'state', 'leased', 'lease', id)\n"
    "redis.call('HSET', k .. ':l', 'task', id, 'holder', 'h', 'fence', f)\n"
    "redis.call('ZADD', k .. ':exp', f, id)\n"
    "redis.call('XADD', k .. ':ev', 'MAXLEN', '~', 10000, '*', 'k', 'granted', 'l', id)\n"
    "return h[1]\n";

typedef struct ceiling_result {
    double rate, p50_ms, p99_ms;
} ceiling_result_t;

/* redis-benchmark's EVALSHA rate and its own latency percentiles of
 * CEILING_LUA with clients connections. */
static ceiling_result_t ceiling(const char *sha, const char *host, int port, int clients, int requests) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "redis-benchmark -h %s -p %d -c %d -n %d -r 100000 --csv EVALSHA %s 1 '{%s:ceil}' __rand_int__ 2>&1",
             host, port, clients, requests, sha, ns);
    FILE *f = popen(cmd, "r");
    if (f == NULL) die("redis-benchmark", "cannot start");
    /* --csv prints a header and one line per test:
     * "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
     * "p95_latency_ms","p99_latency_ms","max_latency_ms". */
    ceiling_result_t r = {0, 0, 0};
    char line[1024];
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "\"EVALSHA", 8) != 0) continue;
        double v[7];
        char *p = strstr(line, "\",\"");
        int n = 0;
        while (p != NULL && n < 7) {
            v[n++] = strtod(p + 3, NULL);
            p = strstr(p + 3, "\",\"");
        }
        if (n == 7) r = (ceiling_result_t){v[0], v[3], v[5]};
    }
    if (pclose(f) != 0 || r.rate <= 0) die("redis-benchmark", "no rate in its output");
    return r;
}

static long long used_memory(conn_t *c) {
    char err[256];
    redisReply *rep = redis_command(c->r, err, sizeof(err), "INFO memory");
    if (rep == NULL || rep->type != REDIS_REPLY_STRING) die("INFO", err);
    const char *p = strstr(rep->str, "used_memory:");
    long long v = p ? atoll(p + strlen("used_memory:")) : 0;
    freeReplyObject(rep);
    return v;
}

/* Deletes the namespace's keys: the queue, the tasks, the event streams. */
static void wipe(conn_t *c) {
    char err[256], cursor[32] = "0", pattern[64];
    snprintf(pattern, sizeof(pattern), "{%s:*", ns);
    do {
        redisReply *rep = redis_command(c->r, err, sizeof(err), "SCAN %s MATCH %s COUNT 10000", cursor, pattern);
        if (rep == NULL) die("SCAN", err);
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        if (keys->elements > 0) {
            const char **argv = malloc((keys->elements + 1) * sizeof(*argv));
            size_t *lens = malloc((keys->elements + 1) * sizeof(*lens));
            argv[0] = "UNLINK", lens[0] = 6;
            for (size_t i = 0; i < keys->elements; i++)
                argv[i + 1] = keys->element[i]->str, lens[i + 1] = keys->element[i]->len;
            redisReply *d = redis_command_argv(c->r, (int)keys->elements + 1, argv, lens, err, sizeof(err));
            if (d) freeReplyObject(d);
            free(argv);
            free(lens);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    /* UNLINK frees big values (the event stream, the queues) in Redis's
     * background thread: let it finish, or it competes for the two cores
     * with the next measurement. */
    for (;;) {
        redisReply *rep = redis_command(c->r, err, sizeof(err), "INFO memory");
        if (rep == NULL || rep->type != REDIS_REPLY_STRING) die("INFO memory", err);
        double pending = info_field(rep->str, "lazyfree_pending_objects:");
        freeReplyObject(rep);
        if (pending == 0) break;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
}

/* Queues n tasks with a few threads (setup, not measured). */
typedef struct filler {
    pthread_t th;
    int from, to;
} filler_t;

static void *fill_run(void *arg) {
    filler_t *f = arg;
    conn_t c;
    conn_open(&c);
    for (int i = f->from; i < f->to; i++) {
        char task_id[32];
        snprintf(task_id, sizeof(task_id), "deep-%08d", i);
        enqueue(&c, DEEP_POOL, task_id);
    }
    conn_close(&c);
    return NULL;
}

static void fill(int n) {
    filler_t f[8];
    for (int i = 0; i < 8; i++) {
        f[i].from = (int)((long long)n * i / 8);
        f[i].to = (int)((long long)n * (i + 1) / 8);
        pthread_create(&f[i].th, NULL, fill_run, &f[i]);
    }
    for (int i = 0; i < 8; i++) pthread_join(f[i].th, NULL);
}

int main(void) {
    log_init("bench_leases", LOG_LEVEL_ERROR);
    char err[512];
    config_t *cfg = config_new(NULL);
    if (config_load_env(cfg, err, sizeof(err)) != 0) die("config", err);
    redis_url = config_str(cfg, "redis.url");
    char host[64] = "127.0.0.1";
    int port = 6379;
    if (sscanf(redis_url, "redis://%63[^:]:%d", host, &port) != 2) die("redis.url", redis_url);
    char id[EVENT_ID_LEN];
    event_id_new(id);
    snprintf(ns, sizeof(ns), "bl-%.8s", id);
    int deep = getenv("BENCH_DEEP") ? atoi(getenv("BENCH_DEEP")) : 1000000;

    conn_t c;
    conn_open(&c);
    redisReply *rep = redis_command(c.r, err, sizeof(err), "SCRIPT LOAD %s", CEILING_LUA);
    if (rep == NULL || rep->type != REDIS_REPLY_STRING) die("SCRIPT LOAD", err);
    char sha[64];
    snprintf(sha, sizeof(sha), "%s", rep->str);
    freeReplyObject(rep);

    stats_redis = c.r;
    rep = redis_command(c.r, err, sizeof(err), "INFO server");
    if (rep == NULL || rep->type != REDIS_REPLY_STRING) die("INFO server", err);
    redis_pid = (long)info_field(rep->str, "process_id:");
    freeReplyObject(rep);
    if (redis_runq_s() < 0) redis_pid = 0; /* not on this host */

    printf("lease-then-submit cycles (acquire + submit + enqueue: 3 scripts); queued: max(10, 2 x clients)\n");
    printf("%8s %10s %10s %10s %10s %12s %10s %10s %7s %10s\n", "clients", "cycles/s", "scripts/s", "p50 lease",
           "p99 lease", "ceiling/s", "ceil p50", "ceil p99", "ratio", "p99/ceil");
    static const int clients[] = {1, 8, 64};
    run_result_t rs[3];
    cost_t ours[3], ceil_cost[3];
    for (size_t k = 0; k < 3; k++) {
        wipe(&c);
        /* Every client finds work: a queue that runs dry measures waiting. */
        int depth = clients[k] * 2 > 10 ? clients[k] * 2 : 10;
        for (int i = 0; i < depth; i++) {
            char task_id[32];
            snprintf(task_id, sizeof(task_id), "seed-%d", i);
            enqueue(&c, POOL, task_id);
        }
        int per_client = clients[k] == 1 ? 20000 : clients[k] == 8 ? 5000 : 800;
        run_result_t r = rs[k] = run_cycles(clients[k], per_client, &ours[k]);
        usage_t u0 = usage_now();
        ceiling_result_t ce = ceiling(sha, host, port, clients[k], 200000);
        usage_t u1 = usage_now();
        ceil_cost[k] = usage_cost(&u0, &u1, 200000, true);
        printf("%8d %10.0f %10.0f %7.3f ms %7.3f ms %12.0f %7.3f ms %7.3f ms %6.0f%% %9.2fx\n", clients[k],
               r.cycles_per_s, 3 * r.cycles_per_s, r.p50_ms, r.p99_ms, ce.rate, ce.p50_ms, ce.p99_ms,
               100.0 * 3 * r.cycles_per_s / ce.rate, r.p99_ms / ce.p99_ms);
    }
    printf("\nwhere the time went, ours | the ceiling's: Redis CPU and Redis waiting for a CPU (%% of wall time),\n"
           "Redis us inside each EVALSHA, client CPU us per call, client threads' wait for a CPU (us per call), and\n"
           "lease p50/p99 less the calling thread's own wait for a CPU during that call\n");
    printf("%8s %6s %6s %9s %9s %9s %10s %10s | %6s %6s %9s %9s\n", "clients", "busy", "wait", "redis us",
           "client us", "runq us", "p50 -own", "p99 -own", "busy", "wait", "redis us", "client us");
    for (size_t k = 0; k < 3; k++) {
        /* Redis's wait is unknown when it runs elsewhere (no schedstat). */
        char w_ours[16] = "n/a", w_ceil[16] = "n/a";
        if (ours[k].redis_runq >= 0) snprintf(w_ours, sizeof(w_ours), "%.0f%%", 100 * ours[k].redis_runq);
        if (ceil_cost[k].redis_runq >= 0) snprintf(w_ceil, sizeof(w_ceil), "%.0f%%", 100 * ceil_cost[k].redis_runq);
        printf("%8d %5.0f%% %6s %9.1f %9.1f %9.1f %7.3f ms %7.3f ms | %5.0f%% %6s %9.1f %9.1f\n", clients[k],
               100 * ours[k].redis_busy, w_ours, ours[k].redis_us, ours[k].client_us, rs[k].runq_us, rs[k].p50_net_ms,
               rs[k].p99_net_ms, 100 * ceil_cost[k].redis_busy, w_ceil, ceil_cost[k].redis_us, ceil_cost[k].client_us);
    }

    /* Queue depth: a pool of 10 and a pool of `deep` in the same Redis,
     * measured in alternating rounds (which one goes first alternates too),
     * so that the machine's load, which comes and goes over seconds, falls
     * on both alike; the figure is the median of the rounds' ratios. */
    printf("\nlease latency by queue depth (8 clients, %d rounds of %d cycles a client per depth, alternating)\n",
           DEPTH_ROUNDS, DEPTH_CYCLES);
    wipe(&c);
    for (int i = 0; i < 10; i++) {
        char task_id[32];
        snprintf(task_id, sizeof(task_id), "shallow-%d", i);
        enqueue(&c, POOL, task_id);
    }
    long long mem0 = used_memory(&c);
    double t0 = now_s();
    fill(deep);
    double fill_s = now_s() - t0;
    long long mem1 = used_memory(&c);
    double r50[DEPTH_ROUNDS], r99[DEPTH_ROUNDS];
    printf("%6s %16s %16s %16s %16s %8s %8s\n", "round", "p50 at 10", "p99 at 10", "p50 deep", "p99 deep",
           "p50 x", "p99 x");
    for (int k = 0; k < DEPTH_ROUNDS; k++) {
        run_result_t sh, dp;
        if (k % 2 == 0) {
            cycle_pool = POOL, sh = run_cycles(8, DEPTH_CYCLES, NULL);
            cycle_pool = DEEP_POOL, dp = run_cycles(8, DEPTH_CYCLES, NULL);
        } else {
            cycle_pool = DEEP_POOL, dp = run_cycles(8, DEPTH_CYCLES, NULL);
            cycle_pool = POOL, sh = run_cycles(8, DEPTH_CYCLES, NULL);
        }
        r50[k] = dp.p50_ms / sh.p50_ms;
        r99[k] = dp.p99_ms / sh.p99_ms;
        printf("%6d %13.3f ms %13.3f ms %13.3f ms %13.3f ms %8.2f %8.2f\n", k + 1, sh.p50_ms, sh.p99_ms, dp.p50_ms,
               dp.p99_ms, r50[k], r99[k]);
    }
    cycle_pool = POOL;
    qsort(r50, DEPTH_ROUNDS, sizeof(double), cmp_double);
    qsort(r99, DEPTH_ROUNDS, sizeof(double), cmp_double);
    printf("depth %d / depth 10, median over the rounds: p50 %.2f, p99 %.2f\n", deep,
           (r50[DEPTH_ROUNDS / 2 - 1] + r50[DEPTH_ROUNDS / 2]) / 2, (r99[DEPTH_ROUNDS / 2 - 1] + r99[DEPTH_ROUNDS / 2]) / 2);
    printf("queued %d tasks in %.1f s (%.0f enqueues/s, 8 clients); Redis memory %.1f MB for them (%.0f bytes/task)\n",
           deep, fill_s, deep / fill_s, (double)(mem1 - mem0) / 1e6, (double)(mem1 - mem0) / deep);
    wipe(&c);
    conn_close(&c);
    config_destroy(cfg);
    return 0;
}
