/* annot-dispatcher: the only service people talk to.  Threads:
 *   - libmicrohttpd's, one per connection, serving the API on http.addr
 *     (ANNOT_HTTP_ADDR) and the ops endpoints on ops.addr;
 *   - intake: the pipeline consuming the tasks topic into PostgreSQL and
 *     the Redis queues (intake.c);
 *   - wake: a Redis subscriber that wakes long polls (wake.c);
 *   - main: the reaper of expired leases and the outbox relay, once a
 *     second, until SIGTERM; then the shutdown order of STYLE.md. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "auth.h"
#include "check.h"
#include "http.h"
#include "intake.h"
#include "kafka.h"
#include "lease_relay.h"
#include "log.h"
#include "outbox.h"
#include "pg.h"
#include "pg_pool.h"
#include "pipeline.h"
#include "rebuild.h"
#include "redis.h"
#include "service.h"
#include "shutdown.h"
#include "wake.h"
#include "work.h"

static const config_def_t dispatcher_defs[] = {
    {"http.addr", CONFIG_STRING, "127.0.0.1:8080", "ANNOT_HTTP_ADDR", 0, 0, false, "host:port of the API"},
    {"http.max.body", CONFIG_INT, "1048576", NULL, 1024, 67108864, false, "largest request body accepted (413 above)"},
    {"http.drain.ms", CONFIG_INT, "10000", NULL, 0, 600000, false, "how long SIGTERM waits for requests in flight"},
    {"dispatcher.schema", CONFIG_STRING, "dispatcher", NULL, 0, 0, false, "PostgreSQL schema of this service"},
    {"dispatcher.group", CONFIG_STRING, "annot-dispatcher", NULL, 0, 0, false, "consumer group of the intake"},
    {"dispatcher.redis.ns", CONFIG_STRING, "annot", NULL, 0, 0, false, "namespace of the Redis keys"},
    {"dispatcher.migrations", CONFIG_STRING, "services/annot-dispatcher/migrations", NULL, 0, 0, false,
     "this service's SQL migrations"},
    {"dispatcher.pg.pool", CONFIG_INT, "8", NULL, 1, 256, false, "PostgreSQL connections for requests"},
    {"dispatcher.rules.dir", CONFIG_STRING, "guideline", NULL, 0, 0, false,
     "guideline rules for POST /v1/check, relative to config.dir"},
    {"dispatcher.taxonomy", CONFIG_STRING, "taxonomy.conf", NULL, 0, 0, false,
     "error categories verdicts may use, relative to config.dir"},
    {"screening.bank", CONFIG_STRING, "screening/bank.json", NULL, 0, 0, false,
     "the screening test's questions and key, relative to config.dir"},
    {"training.material", CONFIG_STRING, "training/material.json", NULL, 0, 0, false,
     "the candidates' training material, relative to config.dir"},
    LEASE_POLICY_CONFIG_DEFS,
    {NULL, 0, NULL, NULL, 0, 0, false, NULL},
};

typedef struct intake_thread {
    pipeline_t *pipe;
    intake_t *intake;
    pg_t *pg;
    pthread_t thread;
    int fatal;
} intake_thread_t;

static void *intake_run(void *arg) {
    intake_thread_t *it = arg;
    while (!shutdown_requested()) {
        if (pipeline_poll(it->pipe, 100) != 0) {
            log_fatal("intake: kafka fatal error; stopping");
            it->fatal = 1;
            shutdown_flag = 1;
        }
        char err[512];
        if (intake_drain(it->intake, it->pg, err, sizeof(err)) < 0) log_warn("intake: queueing in redis: %s", err);
    }
    return NULL;
}

/* Queue depths and open leases as gauges: production pools by name, and
 * open leases per queue (own queues are per person: too many series). */
static void gauges_update(metrics_registry_t *m, lease_store_t *ls) {
    char err[256], labels[256];
    lease_pool_name_t *pools = NULL;
    size_t npools = 0;
    if (lease_pool_list(ls, LEASE_QUEUE_ANNOTATION, &pools, &npools, err, sizeof(err)) >= 0 && npools > 0) {
        long long *depths = calloc(npools, sizeof(long long));
        if (depths && lease_pool_depths(ls, LEASE_QUEUE_ANNOTATION, pools, npools, depths, err, sizeof(err)) >= 0) {
            for (size_t i = 0; i < npools; i++)
                metrics_set(metrics_gauge(m, "annot_queue_depth", "Tasks queued, by production pool",
                                          metrics_labels(labels, sizeof(labels), "pool", pools[i], NULL)),
                            (double)depths[i]);
        }
        free(depths);
    }
    free(pools);
    for (int q = LEASE_QUEUE_FIRST; q <= LEASE_QUEUE_LAST; q++) {
        long long open = 0;
        if (lease_open_count(ls, (lease_queue_t)q, &open, err, sizeof(err)) >= 0)
            metrics_set(metrics_gauge(m, "annot_leases_open", "Live leases, by queue",
                                      metrics_labels(labels, sizeof(labels), "queue", lease_queue_name((lease_queue_t)q), NULL)),
                        (double)open);
    }
}

typedef struct ready_ctx {
    pg_pool_t *pool;
    pipeline_t *intake;
} ready_ctx_t;

static int dispatcher_ready(void *opaque, char *why, size_t len) {
    ready_ctx_t *r = opaque;
    pg_t *pg = pg_pool_get(r->pool, 1000);
    int ok = pg != NULL && pg_ping(pg) == 0;
    pg_pool_put(r->pool, pg);
    if (!ok) {
        snprintf(why, len, "postgresql unreachable");
        return -1;
    }
    return pipeline_ready(r->intake, why, len);
}

int main(int argc, char **argv) {
    service_t svc;
    int rc = service_init(&svc, "annot-dispatcher", "The people-facing HTTP API: leases, submissions, checks.",
                          NULL, dispatcher_defs, argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;
    char err[1024], dir[4096];
    check_rules_t *rules = NULL;
    pg_t *pg = NULL, *intake_pg = NULL;
    pg_pool_t *pool = NULL;
    kafka_producer_t *producer = NULL;
    redis_t *intake_redis = NULL;
    lease_store_t *intake_leases = NULL, *main_leases = NULL;
    redis_t *main_redis = NULL, *relay_redis = NULL;
    lease_store_t *relay_leases = NULL;
    pg_t *relay_pg = NULL;
    lease_relay_t relay = {0};
    pipeline_t *pipe = NULL;
    http_server_t *http = NULL;
    wake_t wake;
    work_t work;
    api_t api;
    intake_t intake;
    intake_thread_t it = {0};
    int have_wake = 0, have_work = 0, have_api = 0, have_thread = 0;
    lease_policy_t policy;
    check_taxonomy_t taxonomy = {0};
    screening_bank_t bank = {0};
    training_t training = {0};
    people_t people;
    rc = 1;
    if (auth_init() != 0) {
        log_fatal("libsodium failed to start");
        goto out;
    }
    if (lease_policy_from_config(&policy, svc.cfg, err, sizeof(err)) != 0) {
        log_fatal("%s", err);
        goto out;
    }
    service_config_path(&svc, config_str(svc.cfg, "dispatcher.rules.dir"), dir, sizeof(dir));
    if ((rules = check_rules_load(dir, err, sizeof(err))) == NULL) {
        log_fatal("config key 'dispatcher.rules.dir': %s", err);
        goto out;
    }
    service_config_path(&svc, config_str(svc.cfg, "dispatcher.taxonomy"), dir, sizeof(dir));
    if (check_taxonomy_load(&taxonomy, dir, err, sizeof(err)) != 0) {
        log_fatal("config key 'dispatcher.taxonomy': %s", err);
        goto out;
    }
    service_config_path(&svc, config_str(svc.cfg, "screening.bank"), dir, sizeof(dir));
    if (screening_bank_load(&bank, dir, err, sizeof(err)) != 0) {
        log_fatal("config key 'screening.bank': %s", err);
        goto out;
    }
    service_config_path(&svc, config_str(svc.cfg, "training.material"), dir, sizeof(dir));
    if (training_load(&training, dir, err, sizeof(err)) != 0) {
        log_fatal("config key 'training.material': %s", err);
        goto out;
    }
    const char *url = config_str(svc.cfg, "database.url"), *schema = config_str(svc.cfg, "dispatcher.schema");
    const char *redis_url = config_str(svc.cfg, "redis.url"), *ns = config_str(svc.cfg, "dispatcher.redis.ns");
    int timeout_s = (int)config_int(svc.cfg, "pg.connect.timeout.s");
    pg = pg_connect(url, schema, timeout_s, err, sizeof(err));
    if (pg == NULL || pg_migrate(pg, config_str(svc.cfg, "dispatcher.migrations"), err, sizeof(err)) != 0) {
        log_fatal("postgresql: %s", err);
        goto out;
    }
    if ((pool = pg_pool_new(url, schema, (int)config_int(svc.cfg, "dispatcher.pg.pool"), timeout_s, err,
                            sizeof(err))) == NULL ||
        (intake_pg = pg_connect(url, schema, timeout_s, err, sizeof(err))) == NULL ||
        (relay_pg = pg_connect(url, schema, timeout_s, err, sizeof(err))) == NULL) {
        log_fatal("postgresql: %s", err);
        goto out;
    }
    /* One Redis connection per thread: the intake's, the lease relay's and
     * the main loop's (rebuild). */
    if ((intake_redis = redis_connect(redis_url, err, sizeof(err))) == NULL ||
        (intake_leases = lease_store_new(intake_redis, ns, err, sizeof(err))) == NULL ||
        (main_redis = redis_connect(redis_url, err, sizeof(err))) == NULL ||
        (main_leases = lease_store_new(main_redis, ns, err, sizeof(err))) == NULL ||
        (relay_redis = redis_connect(redis_url, err, sizeof(err))) == NULL ||
        (relay_leases = lease_store_new(relay_redis, ns, err, sizeof(err))) == NULL) {
        log_fatal("redis: %s", err);
        goto out;
    }
    if ((producer = kafka_producer_new(svc.cfg, svc.name, err, sizeof(err))) == NULL) {
        log_fatal("%s", err);
        goto out;
    }
    const char *submissions = service_topic(&svc, "submissions");
    if (submissions == NULL) goto out;

    char channels[3][256];
    const char *chan_ptrs[3];
    for (int q = LEASE_QUEUE_FIRST; q <= LEASE_QUEUE_LAST; q++) {
        lease_wake_channel(intake_leases, (lease_queue_t)q, channels[q - 1], sizeof(channels[0]));
        chan_ptrs[q - 1] = channels[q - 1];
    }
    if (wake_start(&wake, redis_url, chan_ptrs, 3, err, sizeof(err)) != 0) {
        log_fatal("%s", err);
        goto out;
    }
    have_wake = 1;
    work_outputs_t outputs = {submissions, service_topic(&svc, "validation-results"), service_topic(&svc, "feedback"),
                              service_topic(&svc, "candidates"), &taxonomy, rules};
    if (outputs.results_topic == NULL || outputs.feedback_topic == NULL || outputs.candidates_topic == NULL) goto out;
    work_init(&work, redis_url, ns, &policy, &wake, pool, producer, &outputs, svc.name, svc.metrics);
    have_work = 1;
    people = (people_t){pool, &bank, &training, service_topic(&svc, "candidates"), svc.name};
    if (people.candidates_topic == NULL) goto out;
    api_init(&api, pool, rules, &work, &people, svc.metrics);
    have_api = 1;

    /* Before taking any work: if Redis lost the queues (or never had
     * them), rebuild them now, not after a lease was granted that the
     * rebuild would then revoke. */
    if (rebuild_if_lost(pg, main_redis, main_leases, ns, err, sizeof(err)) < 0) {
        log_fatal("redis rebuild: %s", err);
        goto out;
    }
    intake.leases = intake_leases;
    if ((intake.assignments_topic = service_topic(&svc, "validation-assignments")) == NULL ||
        (intake.candidates_topic = service_topic(&svc, "candidates")) == NULL ||
        (intake.annotators_topic = service_topic(&svc, "annotators")) == NULL)
        goto out;
    static const char *const roles[] = {"tasks", "validation-assignments", "candidates", "annotators"};
    pipeline_def_t def = {config_str(svc.cfg, "dispatcher.group"), roles, 4, intake_apply, &intake};
    if ((pipe = pipeline_new(&svc, intake_pg, producer, &def, err, sizeof(err))) == NULL) {
        log_fatal("%s", err);
        goto out;
    }
    const char *leases_topic = service_topic(&svc, "leases");
    const char *dlq_topic = service_topic(&svc, config_str(svc.cfg, "dlq.topic.role"));
    if (leases_topic == NULL || dlq_topic == NULL) goto out;
    if (lease_relay_start(&relay, relay_leases, relay_pg, producer, leases_topic, dlq_topic, svc.name, svc.metrics) != 0) {
        log_fatal("cannot start the lease relay thread");
        goto out;
    }
    it.pipe = pipe;
    it.intake = &intake;
    it.pg = intake_pg;
    if (pthread_create(&it.thread, NULL, intake_run, &it) != 0) {
        log_fatal("cannot start the intake thread");
        goto out;
    }
    have_thread = 1;
    http = http_server_start(config_str(svc.cfg, "http.addr"), (size_t)config_int(svc.cfg, "http.max.body"), 0,
                             api_handle, &api, err, sizeof(err));
    if (http == NULL) {
        log_fatal("config key 'http.addr': %s", err);
        goto out;
    }
    http_server_observe(http, api_observe, &api);
    ready_ctx_t ready = {pool, pipe};
    if (service_ops_start(&svc, dispatcher_ready, &ready) != 0) goto out;
    log_write_fields(LOG_LEVEL_INFO, json_pack("{s:i}", "http_port", http_server_port(http)), "API listening");
    rc = 0;
    while (!shutdown_requested()) {
        long rebuilt = rebuild_if_lost(pg, main_redis, main_leases, ns, err, sizeof(err));
        if (rebuilt > 0) wake_notify(&wake);
        else if (rebuilt < 0) log_warn("redis rebuild: %s", err);
        work_reap(&work);
        long settled = reconcile_unconfirmed(pg, main_leases, err, sizeof(err));
        if (settled > 0) wake_notify(&wake);
        else if (settled < 0) log_warn("reconcile: %s", err);
        gauges_update(svc.metrics, main_leases);
        size_t published;
        if (outbox_relay(pg, producer, &published, err, sizeof(err)) != 0) log_warn("outbox relay: %s", err);
        for (int i = 0; i < 10 && !shutdown_requested(); i++) nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
    if (it.fatal) rc = 1;
    log_info("shutting down: draining requests");
out:
    shutdown_flag = 1;
    /* Stop taking requests and let those in flight finish; the intake
     * finishes its batch; the producer is flushed; then the stores. */
    http_server_stop(http, (int)config_int(svc.cfg, "http.drain.ms"));
    http_server_stop(svc.ops, 1000);
    svc.ops = NULL;
    if (have_thread) pthread_join(it.thread, NULL);
    /* Nothing leases any more: relay the last lease events. */
    lease_relay_stop(&relay);
    if (pg && producer) {
        size_t published;
        outbox_relay(pg, producer, &published, err, sizeof(err));
    }
    kafka_producer_destroy(producer, (int)config_int(svc.cfg, "shutdown.flush.timeout.ms"));
    pipeline_destroy(pipe);
    if (have_api) api_destroy(&api);
    if (have_work) work_destroy(&work);
    if (have_wake) wake_stop(&wake);
    lease_store_destroy(relay_leases);
    redis_close(relay_redis);
    pg_close(relay_pg);
    lease_store_destroy(main_leases);
    redis_close(main_redis);
    lease_store_destroy(intake_leases);
    redis_close(intake_redis);
    pg_pool_destroy(pool);
    pg_close(intake_pg);
    pg_close(pg);
    check_taxonomy_free(&taxonomy);
    training_free(&training);
    screening_bank_free(&bank);
    check_rules_destroy(rules);
    service_destroy(&svc);
    return rc;
}
