/* Integration: many people leasing at once through the HTTP API.  200
 * annotators work 10,000 tasks; some of them abandon leases (which expire
 * and go to a new holder) and Redis loses everything mid-run.  Every task
 * must be submitted exactly once, and no task may ever be held by two live
 * leases at once (checked on every grant against what the clients hold).
 * LOAD_CLIENTS and LOAD_TASKS shrink it for a quick run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "annot/v1/task.pb-c.h"
#include "auth.h"
#include "itest.h"

static char schema[64], skill[32];
static int http_port, ops_port, n_clients = 200, n_tasks = 10000;
static char (*tokens)[AUTH_TOKEN_LEN];

/* What the clients hold: per task, the live lease's expiry (ms) or 0, and
 * its rebuild epoch (fencing token >> 32).  A rebuild after a Redis loss
 * revokes every earlier lease (their holders get 409) and hands out tokens
 * of a higher epoch, so a new holder of such a task is not a double lease. */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t *held_until;
static long long *held_epoch;
static atomic_int submitted, lost, violations, abandoned;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state) {
    (void)state;
    if (itest_setup("test_dispatcher_load") != 0 || auth_init() != 0) return -1;
    if (getenv("LOAD_CLIENTS")) n_clients = atoi(getenv("LOAD_CLIENTS"));
    if (getenv("LOAD_TASKS")) n_tasks = atoi(getenv("LOAD_TASKS"));
    snprintf(schema, sizeof(schema), "displd_%s", itest_run);
    snprintf(skill, sizeof(skill), "s%s", itest_run + 1);
    held_until = calloc((size_t)n_tasks, sizeof(int64_t));
    held_epoch = calloc((size_t)n_tasks, sizeof(long long));
    tokens = calloc((size_t)n_clients, sizeof(*tokens));
    static const char *const extra[] = {"lease.annotation.ttl.ms=2000", "lease.annotation.max.attempts=100",
                                        "dispatcher.pg.pool=16", NULL};
    pid_t pid = itest_dispatcher_start(schema, &http_port, &ops_port, extra);
    (void)pid;
    /* The users, straight into the table the dispatcher migrated. */
    pg_t *pg = itest_pg(schema);
    char err[256];
    for (int i = 0; i < n_clients; i++) {
        uint8_t hash[AUTH_HASH_LEN];
        char id[EVENT_ID_LEN];
        auth_token_new(tokens[i], hash);
        event_id_new(id);
        const char *params[4] = {id, skill, (const char *)hash, "en-US"};
        int lengths[4] = {0, 0, AUTH_HASH_LEN, 0}, formats[4] = {0, 0, 1, 0};
        PGresult *res = pg_query_ex(pg, PGRES_COMMAND_OK,
                                    "INSERT INTO users (user_id, name, role, locale, skills, token_hash) "
                                    "VALUES ($1, 'load', 'annotator', $4, ARRAY[$2], $3)",
                                    4, params, lengths, formats, err, sizeof(err));
        if (res == NULL) {
            fprintf(stderr, "%s\n", err);
            return -1;
        }
        PQclear(res);
    }
    pg_close(pg);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    itest_kill_children(NULL);
    free(held_until);
    free(held_epoch);
    free(tokens);
    itest_teardown();
    return 0;
}

static void produce_tasks(void) {
    kafka_producer_t *p = itest_producer();
    char err[256];
    kafka_delivery_t *ds = calloc((size_t)n_tasks, sizeof(*ds));
    char *skills[1] = {skill};
    for (int i = 0; i < n_tasks; i++) {
        char id[EVENT_ID_LEN], task_id[64];
        event_id_new(id);
        snprintf(task_id, sizeof(task_id), "%s-load-%d", itest_run, i);
        Annot__V1__EventHeader hdr;
        event_header_fill(&hdr, id, "test", "", "g1");
        Annot__V1__Task t = ANNOT__V1__TASK__INIT;
        t.task_id = task_id;
        t.kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
        t.main_object = "rice";
        t.locale = "en-US";
        t.n_skills = 1;
        t.skills = skills;
        Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
        ev.header = &hdr;
        ev.task = &t;
        uint8_t buf[512];
        size_t len = annot__v1__task_event__pack(&ev, buf);
        assert_int_equal(kafka_produce(p, itest_topic("tasks"), task_id, strlen(task_id), buf, len, &ds[i], err,
                                       sizeof(err)),
                         0);
    }
    assert_int_equal(kafka_producer_wait(p, ds, (size_t)n_tasks, err, sizeof(err)), 0);
    free(ds);
    kafka_producer_destroy(p, 5000);
}

static int task_index(const char *task_id) {
    const char *dash = strrchr(task_id, '-');
    return dash ? atoi(dash + 1) : -1;
}

static void *client(void *arg) {
    int me = (int)(intptr_t)arg;
    char body[1 << 13], path[160];
    unsigned seed = (unsigned)me * 2654435761u;
    int idle = 0;
    while (atomic_load(&submitted) < n_tasks && idle < 200) {
        static const char lease_req[] = "{\"queue\":\"annotation\",\"wait_s\":1}";
        int st = itest_http("POST", http_port, "/v1/leases", tokens[me], lease_req, sizeof(lease_req) - 1, body,
                            sizeof(body));
        if (st != 200) {
            idle += st == 204;
            continue;
        }
        idle = 0;
        json_t *j = json_loads(body, 0, NULL);
        const char *lease_id = json_string_value(json_object_get(j, "lease_id"));
        const char *task_id = json_string_value(json_object_get(json_object_get(j, "task"), "task_id"));
        if (lease_id == NULL || task_id == NULL) {
            fprintf(stderr, "  bad lease answer: %s\n", body);
            atomic_fetch_add(&violations, 1);
            json_decref(j);
            continue;
        }
        int64_t expires = json_integer_value(json_object_get(j, "expires_at_ms"));
        long long epoch = (long long)(json_integer_value(json_object_get(j, "fencing_token")) >> 32);
        int t = task_index(task_id);
        pthread_mutex_lock(&held_lock);
        /* Someone else still holds a live lease on it: a double lease. */
        if (t < 0 || t >= n_tasks || (held_until[t] > now_ms() + 50 && held_epoch[t] == epoch)) {
            atomic_fetch_add(&violations, 1);
        } else {
            held_until[t] = expires;
            held_epoch[t] = epoch;
        }
        pthread_mutex_unlock(&held_lock);
        snprintf(path, sizeof(path), "/v1/leases/%s/submit", lease_id);
        json_decref(j);
        if (rand_r(&seed) % 50 == 0) {
            /* Walk away: the lease expires and someone else finishes it. */
            atomic_fetch_add(&abandoned, 1);
            continue;
        }
        static const char submit_req[] = "{\"description\":\"rice in a bowl\"}";
        st = itest_http("POST", http_port, path, tokens[me], submit_req, sizeof(submit_req) - 1, body, sizeof(body));
        pthread_mutex_lock(&held_lock);
        if (t >= 0 && t < n_tasks) held_until[t] = 0;
        pthread_mutex_unlock(&held_lock);
        if (st == 202) atomic_fetch_add(&submitted, 1);
        else if (st == 409) atomic_fetch_add(&lost, 1);
    }
    return NULL;
}

static void test_many_clients_every_task_once(void **state) {
    (void)state;
    produce_tasks();
    pthread_t *th = calloc((size_t)n_clients, sizeof(pthread_t));
    for (int i = 0; i < n_clients; i++) pthread_create(&th[i], NULL, client, (void *)(intptr_t)i);
    /* Mid-run, Redis loses everything. */
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (atomic_load(&submitted) < n_tasks / 3 && time(NULL) < deadline) usleep(50 * 1000);
    itest_redis_lose_everything();
    for (int i = 0; i < n_clients; i++) pthread_join(th[i], NULL);
    free(th);
    fprintf(stderr, "  load: %d submitted, %d lost (409), %d abandoned, %d violations\n", atomic_load(&submitted),
            atomic_load(&lost), atomic_load(&abandoned), atomic_load(&violations));
    assert_int_equal(atomic_load(&violations), 0);
    assert_int_equal(atomic_load(&submitted), n_tasks);
    assert_true(atomic_load(&abandoned) > 0);
    pg_t *pg = itest_pg(schema);
    assert_int_equal(itest_pg_number(pg, "SELECT count(*) FROM submissions"), n_tasks);
    assert_int_equal(itest_pg_number(pg, "SELECT count(DISTINCT task_id) FROM submissions"), n_tasks);
    /* Only this run's tasks: the intake also reads earlier runs' tasks
     * from the topic, in pools nobody here serves. */
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "%s-load-", itest_run);
    assert_int_equal(itest_pg_number_p(pg, "SELECT count(*) FROM tasks WHERE starts_with(task_id, $1) AND state <> 'done'",
                                       prefix),
                     0);
    assert_int_equal(itest_pg_number_p(pg, "SELECT count(*) FROM tasks WHERE starts_with(task_id, $1)", prefix), n_tasks);
    pg_close(pg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_clients_every_task_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
