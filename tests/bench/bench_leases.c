/* bench_leases: lease-then-submit cycles through the dispatcher's lease
 * module (one atomic Lua script per step, leases.c) against the stack's
 * Redis, with 1, 8 and 64 concurrent clients, beside the ceiling measured in
 * the same run: redis-benchmark running EVALSHA of a script that does the
 * Redis work of one lease step (pop a queue head, bump a fencing counter,
 * write the task and lease hashes, index the expiry, append an event) with
 * the same number of clients.  Each client keeps one task in flight and at
 * least 10 tasks stay queued.  Each cycle is three script calls (acquire,
 * submit, and an enqueue that keeps the queue depth constant), so the ratio
 * compares script calls per second.  Then the lease latency with 10 and
 * with 1,000,000 tasks queued (BENCH_DEEP sets the depth), and Redis's
 * memory at that depth.  Figures, never a pass or fail. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "event.h"
#include "log.h"
#include "redis.h"


#include "lease_policy.h"
#include "leases.h"

#define POOL "en-US/dish"
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

static void enqueue(conn_t *c, const char *task_id) {
    char json[256], err[256];
    snprintf(json, sizeof(json), TASK_JSON_FMT, task_id);
    lease_item_t item = {.task_id = task_id, .pool = POOL, .priority = 1, .task_json = json};
    if (lease_enqueue(c->ls, LEASE_QUEUE_ANNOTATION, &item, 0, err, sizeof(err)) != LEASE_OK) die("enqueue", err);
}

/* ---- the cycle clients ---------------------------------------------------- */

typedef struct client {
    pthread_t th;
    int id, cycles;
    double *lat; /* acquire latency of each cycle, seconds */
} client_t;

static int seq_base;

static void *client_run(void *arg) {
    client_t *cl = arg;
    conn_t c;
    conn_open(&c);
    static const lease_pool_name_t pools[] = {POOL};
    char holder[32], err[256];
    snprintf(holder, sizeof(holder), "holder-%d", cl->id);
    lease_request_t req = {.holder_id = holder, .pools = pools, .npools = 1, .ttl_ms = 30000, .max_held = 4};
    for (int i = 0; i < cl->cycles; i++) {
        lease_t l;
        double t0 = now_s();
        int rc = lease_acquire(c.ls, LEASE_QUEUE_ANNOTATION, &req, &l, err, sizeof(err));
        cl->lat[i] = now_s() - t0;
        if (rc != LEASE_OK) die("acquire", rc == LEASE_NONE ? "queue ran dry" : err);
        lease_ack_t ack;
        if (lease_submit(c.ls, l.lease_id, holder, l.fencing_token, 0, &ack, err, sizeof(err)) != LEASE_OK)
            die("submit", err);
        lease_free(&l);
        char task_id[64];
        snprintf(task_id, sizeof(task_id), "t-%d-%d-%d", seq_base, cl->id, i);
        enqueue(&c, task_id);
    }
    conn_close(&c);
    return NULL;
}

typedef struct run_result {
    double cycles_per_s, p50_ms, p99_ms;
} run_result_t;

/* clients threads, each doing cycles lease-submit-enqueue cycles. */
static run_result_t run_cycles(int clients, int cycles) {
    client_t *cl = calloc((size_t)clients, sizeof(*cl));
    seq_base++;
    double t0 = now_s();
    for (int i = 0; i < clients; i++) {
        cl[i].id = i;
        cl[i].cycles = cycles;
        cl[i].lat = calloc((size_t)cycles, sizeof(double));
        pthread_create(&cl[i].th, NULL, client_run, &cl[i]);
    }
    for (int i = 0; i < clients; i++) pthread_join(cl[i].th, NULL);
    double elapsed = now_s() - t0;
    size_t n = (size_t)clients * (size_t)cycles;
    double *all = malloc(n * sizeof(double));
    for (int i = 0; i < clients; i++) {
        memcpy(all + (size_t)i * (size_t)cycles, cl[i].lat, (size_t)cycles * sizeof(double));
        free(cl[i].lat);
    }
    free(cl);
    qsort(all, n, sizeof(double), cmp_double);
    run_result_t r = {(double)n / elapsed, all[n / 2] * 1e3, all[(size_t)((double)n * 0.99)] * 1e3};
    free(all);
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

/* redis-benchmark's EVALSHA rate of CEILING_LUA with clients connections. */
static double ceiling(const char *sha, const char *host, int port, int clients, int requests) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "redis-benchmark -h %s -p %d -c %d -n %d -r 100000 -q EVALSHA %s 1 '{%s:ceil}' __rand_int__ 2>&1", host,
             port, clients, requests, sha, ns);
    FILE *f = popen(cmd, "r");
    if (f == NULL) die("redis-benchmark", "cannot start");
    /* Its progress updates end in \r, not \n, so the output is one long
     * line: read it all, then take the figure of the final summary
     * ("EVALSHA ...: 81234.56 requests per second, p50=0.3 msec").  Reading
     * it in fixed-size pieces could split that phrase and lose the rate. */
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    if (out == NULL) abort();
    size_t got;
    while ((got = fread(out + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0) {
            cap *= 2;
            if ((out = realloc(out, cap)) == NULL) abort();
        }
    }
    out[len] = '\0';
    double rate = 0;
    char *p = NULL;
    for (char *q = strstr(out, "requests per second"); q; q = strstr(q + 1, "requests per second")) p = q;
    if (p != NULL) {
        char *colon = p;
        while (colon > out && *colon != ':') colon--;
        if (*colon == ':') rate = strtod(colon + 1, NULL);
    }
    free(out);
    if (pclose(f) != 0 || rate <= 0) die("redis-benchmark", "no rate in its output");
    return rate;
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
        enqueue(&c, task_id);
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

    printf("lease-then-submit cycles (acquire + submit + enqueue: 3 scripts); queued: max(10, 2 x clients)\n");
    printf("%8s %14s %14s %12s %12s %18s %8s\n", "clients", "cycles/s", "scripts/s", "p50 lease", "p99 lease",
           "ceiling EVALSHA/s", "ratio");
    static const int clients[] = {1, 8, 64};
    for (size_t k = 0; k < 3; k++) {
        wipe(&c);
        /* Every client finds work: a queue that runs dry measures waiting. */
        int depth = clients[k] * 2 > 10 ? clients[k] * 2 : 10;
        for (int i = 0; i < depth; i++) {
            char task_id[32];
            snprintf(task_id, sizeof(task_id), "seed-%d", i);
            enqueue(&c, task_id);
        }
        int per_client = clients[k] == 1 ? 20000 : clients[k] == 8 ? 5000 : 800;
        run_result_t r = run_cycles(clients[k], per_client);
        double ceil_rate = ceiling(sha, host, port, clients[k], 200000);
        printf("%8d %14.0f %14.0f %9.3f ms %9.3f ms %18.0f %7.0f%%\n", clients[k], r.cycles_per_s,
               3 * r.cycles_per_s, r.p50_ms, r.p99_ms, ceil_rate, 100.0 * 3 * r.cycles_per_s / ceil_rate);
    }

    printf("\nlease latency by queue depth (8 clients)\n");
    wipe(&c);
    for (int i = 0; i < 10; i++) {
        char task_id[32];
        snprintf(task_id, sizeof(task_id), "shallow-%d", i);
        enqueue(&c, task_id);
    }
    run_result_t shallow = run_cycles(8, 4000);
    wipe(&c);
    long long mem0 = used_memory(&c);
    double t0 = now_s();
    fill(deep);
    double fill_s = now_s() - t0;
    long long mem1 = used_memory(&c);
    run_result_t deep_r = run_cycles(8, 4000);
    printf("%12s %12s %12s\n", "queued", "p50 lease", "p99 lease");
    printf("%12d %9.3f ms %9.3f ms\n", 10, shallow.p50_ms, shallow.p99_ms);
    printf("%12d %9.3f ms %9.3f ms\n", deep, deep_r.p50_ms, deep_r.p99_ms);
    printf("p50 at depth %d / at depth 10: %.2f; p99: %.2f\n", deep, deep_r.p50_ms / shallow.p50_ms,
           deep_r.p99_ms / shallow.p99_ms);
    printf("queued %d tasks in %.1f s (%.0f enqueues/s, 8 clients); Redis memory %.1f MB for them (%.0f bytes/task)\n",
           deep, fill_s, deep / fill_s, (double)(mem1 - mem0) / 1e6, (double)(mem1 - mem0) / deep);
    wipe(&c);
    conn_close(&c);
    config_destroy(cfg);
    return 0;
}
