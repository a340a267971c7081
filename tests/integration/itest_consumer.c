/* itest_consumer: the consumer the integration suite kills and restarts.  It
 * runs the common pipeline exactly as a service does: TaskEvents from the
 * selftest topic are applied to its own schema (one row in effects per
 * event, a table that would happily take a double) and each one emits a
 * derived event to selftest-out through the outbox.  Tasks whose id does not
 * start with itest.prefix are ledgered but not applied, so runs on one
 * long-lived stack do not see each other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot/v1/task.pb-c.h"
#include "event.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "pipeline.h"
#include "service.h"
#include "shutdown.h"

static const config_def_t itest_defs[] = {
    {"itest.schema", CONFIG_STRING, NULL, NULL, 0, 0, true, "PostgreSQL schema of this run"},
    {"itest.group", CONFIG_STRING, NULL, NULL, 0, 0, true, "consumer group of this run"},
    {"itest.prefix", CONFIG_STRING, NULL, NULL, 0, 0, true, "task ids of this run start with it"},
    {"itest.migrations", CONFIG_STRING, "tests/integration/migrations", NULL, 0, 0, false, "migrations"},
    {NULL, 0, NULL, NULL, 0, 0, false, NULL},
};

typedef struct itest {
    const char *prefix;
    const char *source;
} itest_t;

static pipeline_result_t itest_apply(void *opaque, pipeline_ctx_t *ctx, const rd_kafka_message_t *rkm,
                                     const Annot__V1__EventHeader *hdr, char *errstr, size_t errlen) {
    itest_t *it = opaque;
    Annot__V1__TaskEvent *ev = annot__v1__task_event__unpack(NULL, rkm->len, rkm->payload);
    if (ev == NULL || ev->task == NULL || ev->task->task_id[0] == '\0') {
        snprintf(errstr, errlen, "not a TaskEvent with a task id");
        if (ev) annot__v1__task_event__free_unpacked(ev, NULL);
        return PIPELINE_INVALID;
    }
    pipeline_result_t r = PIPELINE_APPLIED;
    if (strncmp(ev->task->task_id, it->prefix, strlen(it->prefix)) != 0) goto done;

    char amount[24];
    snprintf(amount, sizeof(amount), "%d", ev->task->priority);
    const char *params[3] = {hdr->event_id, ev->task->task_id, amount};
    if (pg_command(pipeline_pg(ctx), "INSERT INTO effects (event_id, task_id, amount) VALUES ($1, $2, $3)", 3,
                   params, errstr, errlen) != 1) {
        r = PIPELINE_RETRY;
        goto done;
    }
    /* The output's id derives from the input's: a replay emits it again
     * byte for byte, never a second, different event. */
    char out_id[EVENT_ID_LEN];
    event_id_derive(out_id, hdr->event_id, "selftest-out");
    Annot__V1__EventHeader out_hdr;
    event_header_fill(&out_hdr, out_id, it->source, hdr->event_id, hdr->guideline_version);
    out_hdr.occurred_at_ms = hdr->occurred_at_ms; /* derived from the input, so replays are identical */
    Annot__V1__TaskEvent out = ANNOT__V1__TASK_EVENT__INIT;
    out.header = &out_hdr;
    out.task = ev->task;
    size_t len = annot__v1__task_event__get_packed_size(&out);
    uint8_t *buf = malloc(len);
    if (buf == NULL) abort();
    annot__v1__task_event__pack(&out, buf);
    if (pipeline_emit(ctx, "selftest-out", ev->task->task_id, strlen(ev->task->task_id), buf, len, errstr,
                      errlen) != 0)
        r = PIPELINE_RETRY;
    free(buf);
done:
    annot__v1__task_event__free_unpacked(ev, NULL);
    return r;
}

int main(int argc, char **argv) {
    service_t svc;
    int rc = service_init(&svc, "itest-consumer", "Integration-suite consumer.", NULL, itest_defs, argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;

    char err[1024];
    pg_t *pg = NULL;
    kafka_producer_t *producer = NULL;
    pipeline_t *pipe = NULL;
    rc = 1;
    pg = pg_connect(config_str(svc.cfg, "database.url"), config_str(svc.cfg, "itest.schema"),
                    (int)config_int(svc.cfg, "pg.connect.timeout.s"), err, sizeof(err));
    if (pg == NULL || pg_migrate(pg, config_str(svc.cfg, "itest.migrations"), err, sizeof(err)) != 0) {
        log_fatal("postgresql: %s", err);
        goto out;
    }
    producer = kafka_producer_new(svc.cfg, "itest-consumer", err, sizeof(err));
    if (producer == NULL) {
        log_fatal("%s", err);
        goto out;
    }
    itest_t it = {config_str(svc.cfg, "itest.prefix"), "itest-consumer"};
    static const char *const roles[] = {"selftest"};
    pipeline_def_t def = {config_str(svc.cfg, "itest.group"), roles, 1, itest_apply, &it};
    pipe = pipeline_new(&svc, pg, producer, &def, err, sizeof(err));
    if (pipe == NULL) {
        log_fatal("%s", err);
        goto out;
    }
    if (service_ops_start(&svc, pipeline_ready, pipe) != 0) goto out;
    log_info("consuming");
    rc = 0;
    while (!shutdown_requested()) {
        if (pipeline_poll(pipe, 100) != 0) {
            log_fatal("kafka fatal error; stopping");
            rc = 1;
            break;
        }
    }
    log_info("shutting down");
out:
    /* The order of STYLE.md: the event in hand is finished (pipeline_poll
     * returned), the producer flushed, then offsets committed as the
     * consumer closes, then PostgreSQL. */
    http_server_stop(svc.ops, 1000);
    svc.ops = NULL;
    kafka_producer_destroy(producer, (int)config_int(svc.cfg, "shutdown.flush.timeout.ms"));
    pipeline_destroy(pipe);
    pg_close(pg);
    service_destroy(&svc);
    return rc;
}
