/* annot-assigner: chooses who validates each checked submission
 * (assign_policy.h), double validation included, and reassigns work whose
 * validator does not do it.  Consumes the checks, annotators,
 * validation-results and leases topics through the common pipeline and
 * emits ValidationAssignmentEvents through its outbox; reads validators'
 * load from the dispatcher's Redis queues. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "assigner.h"
#include "auth.h"
#include "kafka.h"
#include "leases.h"
#include "log.h"
#include "outbox.h"
#include "pg.h"
#include "pipeline.h"
#include "redis.h"
#include "service.h"
#include "shutdown.h"

static const config_def_t assigner_defs[] = {
    {"assigner.group", CONFIG_STRING, "annot-assigner", NULL, 0, 0, false, "consumer group"},
    {"assigner.schema", CONFIG_STRING, "assigner", NULL, 0, 0, false, "PostgreSQL schema of this service"},
    {"assigner.migrations", CONFIG_STRING, "services/annot-assigner/migrations", NULL, 0, 0, false,
     "this service's SQL migrations"},
    {"assigner.conflicts", CONFIG_STRING, "assigner/conflicts.conf", NULL, 0, 0, false,
     "validator/author pairs that must never meet, relative to config.dir"},
    {"assigner.recent.window.ms", CONFIG_INT, "600000", NULL, 1000, 86400000, false,
     "the window of 'assignments given recently' in the cost"},
    {"assigner.sweep.ms", CONFIG_INT, "5000", NULL, 100, 3600000, false,
     "how often inactive validators' work and unassigned slots are looked at"},
    {"dispatcher.redis.ns", CONFIG_STRING, "annot", NULL, 0, 0, false,
     "namespace of the dispatcher's Redis keys (validator load is read there)"},
    ASSIGN_POLICY_CONFIG_DEFS,
    {NULL, 0, NULL, NULL, 0, 0, false, NULL},
};

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    service_t svc;
    int rc = service_init(&svc, "annot-assigner",
                          "Chooses the validators of every checked submission and reassigns abandoned work.", NULL,
                          assigner_defs, argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;
    char err[1024], path[4096];
    assigner_t a = {.svc = &svc};
    pg_t *pg = NULL;
    redis_t *redis = NULL;
    kafka_producer_t *producer = NULL;
    pipeline_t *pipe = NULL;
    rc = 1;
    if (auth_init() != 0) {
        log_fatal("libsodium failed to start");
        goto out;
    }
    if (assign_policy_from_config(&a.policy, svc.cfg, err, sizeof(err)) != 0) {
        log_fatal("%s", err);
        goto out;
    }
    service_config_path(&svc, config_str(svc.cfg, "assigner.conflicts"), path, sizeof(path));
    if (assigner_conflicts_load(&a, path, err, sizeof(err)) != 0) {
        log_fatal("config key 'assigner.conflicts': %s", err);
        goto out;
    }
    a.recent_window_ms = config_int(svc.cfg, "assigner.recent.window.ms");
    if ((a.topic = service_topic(&svc, "validation-assignments")) == NULL) goto out;
    pg = pg_connect(config_str(svc.cfg, "database.url"), config_str(svc.cfg, "assigner.schema"),
                    (int)config_int(svc.cfg, "pg.connect.timeout.s"), err, sizeof(err));
    if (pg == NULL || pg_migrate(pg, config_str(svc.cfg, "assigner.migrations"), err, sizeof(err)) != 0) {
        log_fatal("postgresql: %s", err);
        goto out;
    }
    if ((redis = redis_connect(config_str(svc.cfg, "redis.url"), err, sizeof(err))) == NULL ||
        (a.leases = lease_store_new(redis, config_str(svc.cfg, "dispatcher.redis.ns"), err, sizeof(err))) == NULL) {
        log_fatal("redis: %s", err);
        goto out;
    }
    if ((producer = kafka_producer_new(svc.cfg, svc.name, err, sizeof(err))) == NULL) {
        log_fatal("%s", err);
        goto out;
    }
    a.m_assigned = metrics_counter(svc.metrics, "annot_assignments_total", "Validation assignments made, by kind",
                                   "kind=\"initial\"");
    a.m_reassigned = metrics_counter(svc.metrics, "annot_assignments_total", "Validation assignments made, by kind",
                                     "kind=\"reassigned\"");
    a.m_double = metrics_counter(svc.metrics, "annot_double_validations_total",
                                 "Submissions given a second, blind validator", NULL);
    a.m_unassigned = metrics_counter(svc.metrics, "annot_unassigned_total",
                                     "Slots no validator was eligible for (kept and tried again)", NULL);
    static const char *const roles[] = {"checks", "annotators", "validation-results", "leases"};
    pipeline_def_t def = {config_str(svc.cfg, "assigner.group"), roles, 4, assigner_apply, &a};
    if ((pipe = pipeline_new(&svc, pg, producer, &def, err, sizeof(err))) == NULL) {
        log_fatal("%s", err);
        goto out;
    }
    if (service_ops_start(&svc, pipeline_ready, pipe) != 0) goto out;
    log_write_fields(LOG_LEVEL_INFO, json_pack("{s:i}", "conflicts", (int)a.nconflicts), "assigning");
    rc = 0;
    int64_t sweep_ms = config_int(svc.cfg, "assigner.sweep.ms"), next_sweep = mono_ms() + sweep_ms;
    while (!shutdown_requested()) {
        if (pipeline_poll(pipe, 100) != 0) {
            log_fatal("kafka fatal error; stopping");
            rc = 1;
            break;
        }
        if (mono_ms() < next_sweep) continue;
        next_sweep = mono_ms() + sweep_ms;
        long n = assigner_sweep_inactive(&a, pg, err, sizeof(err));
        if (n < 0) log_warn("inactivity sweep: %s", err);
        if ((n = assigner_retry_unassigned(&a, pg, err, sizeof(err))) < 0) log_warn("unassigned retry: %s", err);
        /* What the sweeps put in the outbox. */
        if (pipeline_outbox_relay(pipe, err, sizeof(err)) != 0) log_warn("outbox relay: %s", err);
    }
    log_info("shutting down");
out:
    http_server_stop(svc.ops, 1000);
    svc.ops = NULL;
    kafka_producer_destroy(producer, (int)config_int(svc.cfg, "shutdown.flush.timeout.ms"));
    pipeline_destroy(pipe);
    lease_store_destroy(a.leases);
    redis_close(redis);
    pg_close(pg);
    free(a.conflicts);
    free(a.conflicts_text);
    service_destroy(&svc);
    return rc;
}
