/* bench_pipeline: throughput and latency of the consumer pipeline (consume,
 * ledger + effect + outbox in one PostgreSQL transaction, publish, offset
 * store), printed beside the raw ceilings measured in the same run on the
 * same stack: Kafka produce and consume alone, and single-row PostgreSQL
 * transactions alone.  The ratios are the figures to compare between runs;
 * the absolute numbers move with the machine.  Settings from the
 * environment (run/devstack.env); BENCH_EVENTS sets the event count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "annot/v1/task.pb-c.h"
#include "event.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "pipeline.h"
#include "service.h"
#include "shutdown.h"

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
    fprintf(stderr, "bench_pipeline: %s: %s\n", what, err);
    exit(1);
}

/* N TaskEvents to topic; returns the rate in messages/s. */
static double produce_tasks(service_t *svc, const char *topic, const char *prefix, int n) {
    char err[512];
    kafka_producer_t *p = kafka_producer_new(svc->cfg, "bench-producer", err, sizeof(err));
    if (p == NULL) die("producer", err);
    kafka_delivery_t *ds = calloc((size_t)n, sizeof(*ds));
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        char id[EVENT_ID_LEN], task_id[96];
        event_id_new(id);
        snprintf(task_id, sizeof(task_id), "%s%07d", prefix, i);
        Annot__V1__EventHeader hdr;
        event_header_fill(&hdr, id, "bench", "", "g1");
        Annot__V1__Task task = ANNOT__V1__TASK__INIT;
        task.task_id = task_id;
        task.main_object = "grilled mackerel on a bamboo leaf";
        task.image_uri = "s3://bench/images/0001.jpg";
        task.locale = "ja-JP";
        task.priority = 1;
        Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
        ev.header = &hdr;
        ev.task = &task;
        uint8_t buf[512];
        size_t len = annot__v1__task_event__pack(&ev, buf);
        if (kafka_produce(p, topic, task_id, strlen(task_id), buf, len, &ds[i], err, sizeof(err)) != 0)
            die("produce", err);
    }
    if (kafka_producer_wait(p, ds, (size_t)n, err, sizeof(err)) != 0) die("delivery", err);
    double rate = n / (now_s() - t0);
    free(ds);
    kafka_producer_destroy(p, 10000);
    return rate;
}

/* Consumes n messages with a fresh group, doing nothing with them. */
static double consume_raw(service_t *svc, const char *topic, int n) {
    char err[512], group[64], id[EVENT_ID_LEN];
    event_id_new(id);
    snprintf(group, sizeof(group), "bench-raw-%.8s", id);
    const char *topics[1] = {topic};
    kafka_consumer_t *c = kafka_consumer_new(svc->cfg, group, topics, 1, err, sizeof(err));
    if (c == NULL) die("consumer", err);
    int got = 0;
    double t0 = 0;
    while (got < n && !shutdown_requested()) {
        rd_kafka_message_t *m = kafka_consumer_poll(c, 1000);
        if (m == NULL) continue;
        if (got++ == 0) t0 = now_s(); /* from the first message: not the group join */
        kafka_consumer_store(c, m);
        rd_kafka_message_destroy(m);
    }
    double rate = (n - 1) / (now_s() - t0);
    kafka_consumer_close(c);
    return rate;
}

/* n single-row transactions: the pipeline's PostgreSQL work without Kafka. */
static double pg_raw(pg_t *pg, int n) {
    char err[512];
    if (pg_command(pg, "CREATE TABLE IF NOT EXISTS raw_rows (id uuid PRIMARY KEY, v bigint)", 0, NULL, err,
                   sizeof(err)) < 0)
        die("pg", err);
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        char id[EVENT_ID_LEN];
        event_id_new(id);
        const char *params[1] = {id};
        if (pg_begin(pg, err, sizeof(err)) != 0 ||
            pg_command(pg, "INSERT INTO raw_rows (id, v) VALUES ($1, 1)", 1, params, err, sizeof(err)) != 1 ||
            pg_commit(pg, err, sizeof(err)) != 0)
            die("pg", err);
    }
    return n / (now_s() - t0);
}

typedef struct bench_apply {
    long applied;
} bench_apply_t;

static pipeline_result_t bench_apply_fn(void *opaque, pipeline_ctx_t *ctx, const rd_kafka_message_t *rkm,
                                        const Annot__V1__EventHeader *hdr, char *errstr, size_t errlen) {
    bench_apply_t *b = opaque;
    Annot__V1__TaskEvent *ev = annot__v1__task_event__unpack(NULL, rkm->len, rkm->payload);
    if (ev == NULL || ev->task == NULL) {
        if (ev) annot__v1__task_event__free_unpacked(ev, NULL);
        snprintf(errstr, errlen, "not a TaskEvent");
        return PIPELINE_INVALID;
    }
    const char *params[3] = {hdr->event_id, ev->task->task_id, "1"};
    pipeline_result_t r = PIPELINE_APPLIED;
    if (pg_command(pipeline_pg(ctx), "INSERT INTO effects (event_id, task_id, amount) VALUES ($1, $2, $3)", 3,
                   params, errstr, errlen) != 1 ||
        pipeline_emit(ctx, "selftest-out", ev->task->task_id, strlen(ev->task->task_id), rkm->payload, rkm->len,
                      errstr, errlen) != 0)
        r = PIPELINE_RETRY;
    annot__v1__task_event__free_unpacked(ev, NULL);
    if (r == PIPELINE_APPLIED) b->applied++;
    return r;
}

int main(int argc, char **argv) {
    service_t svc;
    if (service_init(&svc, "bench-pipeline", "Pipeline benchmark.", NULL, NULL, argc, argv) != 0) return 2;
    log_init("bench-pipeline", LOG_LEVEL_ERROR);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int n = getenv("BENCH_EVENTS") ? atoi(getenv("BENCH_EVENTS")) : 20000;
    const char *topic = service_topic(&svc, "selftest");
    char err[1024], id[EVENT_ID_LEN], schema[64], prefix[64];
    event_id_new(id);
    snprintf(schema, sizeof(schema), "bench_%.8s", id);
    snprintf(prefix, sizeof(prefix), "b%.8s-", id);

    pg_t *pg = pg_connect(config_str(svc.cfg, "database.url"), schema, 10, err, sizeof(err));
    if (pg == NULL || pg_migrate(pg, "tests/integration/migrations", err, sizeof(err)) != 0) die("pg", err);

    printf("bench_pipeline: %d events, topic %s\n", n, topic);
    double produce_rate = produce_tasks(&svc, topic, prefix, n);
    double consume_rate = consume_raw(&svc, topic, n);
    double pg_rate = pg_raw(pg, n);

    kafka_producer_t *producer = kafka_producer_new(svc.cfg, "bench-pipeline", err, sizeof(err));
    if (producer == NULL) die("producer", err);
    bench_apply_t b = {0};
    static const char *const roles[] = {"selftest"};
    char group[64];
    snprintf(group, sizeof(group), "bench-pipeline-%.8s", id);
    pipeline_def_t def = {group, roles, 1, bench_apply_fn, &b};
    pipeline_t *pipe = pipeline_new(&svc, pg, producer, &def, err, sizeof(err));
    if (pipe == NULL) die("pipeline", err);
    /* The first batch waits for the group join; the clock starts after it,
     * and latency counts from the poll that returned a batch to its offsets
     * stored. */
    while (b.applied == 0 && !shutdown_requested()) {
        if (pipeline_poll(pipe, 1000) != 0) die("pipeline", "fatal kafka error");
    }
    long first = b.applied;
    int measured = n - (int)first;
    if (measured < 100) die("pipeline", "first batch took nearly everything; raise BENCH_EVENTS");
    double *lat = calloc((size_t)measured, sizeof(double));
    long done = 0;
    double t0 = now_s(), last_progress = t0;
    while (done < measured && !shutdown_requested()) {
        double s = now_s();
        if (s - last_progress > 30) {
            fprintf(stderr, "bench_pipeline: stalled at %ld of %d events\n", done, measured);
            return 1;
        }
        long before = b.applied;
        if (pipeline_poll(pipe, 1000) != 0) die("pipeline", "fatal kafka error");
        if (b.applied > before) {
            last_progress = now_s();
            /* Every event of a batch waits for the whole batch. */
            double took = last_progress - s;
            while (done < b.applied - first && done < measured) lat[done++] = took;
        }
    }
    double pipe_rate = measured / (now_s() - t0);
    n = measured;
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    printf("  raw kafka produce (idempotent, delivery-reported) %10.0f msg/s\n", produce_rate);
    printf("  raw kafka consume (offset store only)             %10.0f msg/s\n", consume_rate);
    printf("  raw postgresql single-row transactions            %10.0f tx/s\n", pg_rate);
    printf("  pipeline (ledger + effect + outbox + publish)      %10.0f events/s\n", pipe_rate);
    printf("  pipeline per-event latency (poll to offset store) p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", lat[n / 2] * 1e3,
           lat[(size_t)(n * 0.99)] * 1e3, lat[n - 1] * 1e3);
    printf("  ratio pipeline / raw consume %.3f   pipeline / raw pg tx %.3f\n", pipe_rate / consume_rate,
           pipe_rate / pg_rate);
    printf("  peak RSS %ld KiB\n", ru.ru_maxrss);
    free(lat);
    kafka_producer_destroy(producer, 10000);
    pipeline_destroy(pipe);
    pg_close(pg);
    service_destroy(&svc);
    return 0;
}
