/* bench_funnel: how fast annot-funnel takes applications, beside the raw
 * ceiling of the pipeline underneath measured in the same run on the same
 * stack.  N CandidateApplied events go to the candidates topic; first an
 * in-process pipeline whose apply is the least a service can do (one row,
 * one outbox event) consumes them, then bin/annot-funnel with an empty
 * schema does (per application: the candidate row locked and written, three
 * history rows, the screening draw, three outbox events, and its own three
 * outputs read back from the topic and skipped).  The ratio is the figure
 * to compare between runs.  BENCH_CANDIDATES sets N (default 3000). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "annot/v1/candidate.pb-c.h"
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

static void die(const char *what, const char *err) {
    fprintf(stderr, "bench_funnel: %s: %s\n", what, err);
    exit(1);
}

static void produce_applications(service_t *svc, int n) {
    char err[512];
    const char *topic = service_topic(svc, "candidates");
    kafka_producer_t *p = kafka_producer_new(svc->cfg, "bench-producer", err, sizeof(err));
    if (p == NULL || topic == NULL) die("producer", err);
    kafka_delivery_t *ds = calloc((size_t)n, sizeof(*ds));
    char *skills[] = {"food", "crafts"};
    for (int i = 0; i < n; i++) {
        char id[EVENT_ID_LEN], cid[EVENT_ID_LEN];
        event_id_new(id);
        event_id_new(cid);
        Annot__V1__EventHeader hdr;
        event_header_fill(&hdr, id, "bench", "", "");
        Annot__V1__CandidateApplied a = ANNOT__V1__CANDIDATE_APPLIED__INIT;
        a.name = "Bench Candidate";
        a.locale = "en-US";
        a.n_skills = 2;
        a.skills = skills;
        a.applied_at_ms = hdr.occurred_at_ms;
        a.cohort_day = "2026-11-28";
        a.application_number = 1;
        Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
        ev.header = &hdr;
        ev.candidate_id = cid;
        ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED;
        ev.applied = &a;
        uint8_t buf[512];
        size_t len = annot__v1__candidate_event__pack(&ev, buf);
        if (kafka_produce(p, topic, cid, strlen(cid), buf, len, &ds[i], err, sizeof(err)) != 0) die("produce", err);
    }
    if (kafka_producer_wait(p, ds, (size_t)n, err, sizeof(err)) != 0) die("delivery", err);
    kafka_producer_destroy(p, 10000);
    free(ds);
}

typedef struct raw {
    long applied;
} raw_t;

static pipeline_result_t raw_apply(void *opaque, pipeline_ctx_t *ctx, const rd_kafka_message_t *rkm,
                                   const Annot__V1__EventHeader *hdr, char *errstr, size_t errlen) {
    raw_t *r = opaque;
    const char *params[3] = {hdr->event_id, "candidate", "1"};
    if (pg_command(pipeline_pg(ctx), "INSERT INTO effects (event_id, task_id, amount) VALUES ($1, $2, $3)", 3,
                   params, errstr, errlen) != 1 ||
        pipeline_emit(ctx, "selftest-out", hdr->event_id, strlen(hdr->event_id), rkm->payload, rkm->len, errstr,
                      errlen) != 0)
        return PIPELINE_RETRY;
    r->applied++;
    return PIPELINE_APPLIED;
}

/* The raw ceiling: events/s through a minimal pipeline, timed from its
 * first batch (the group join excluded) to n events. */
static double raw_rate(service_t *svc, const char *id, int n) {
    char err[1024], schema[64], group[64];
    snprintf(schema, sizeof(schema), "benchfr_%.8s", id);
    snprintf(group, sizeof(group), "bench-funnel-raw-%.8s", id);
    pg_t *pg = pg_connect(config_str(svc->cfg, "database.url"), schema, 10, err, sizeof(err));
    if (pg == NULL || pg_migrate(pg, "tests/integration/migrations", err, sizeof(err)) != 0) die("pg", err);
    kafka_producer_t *producer = kafka_producer_new(svc->cfg, "bench-funnel", err, sizeof(err));
    if (producer == NULL) die("producer", err);
    raw_t r = {0};
    static const char *const roles[] = {"candidates"};
    pipeline_def_t def = {group, roles, 1, raw_apply, &r};
    pipeline_t *pipe = pipeline_new(svc, pg, producer, &def, err, sizeof(err));
    if (pipe == NULL) die("pipeline", err);
    while (r.applied == 0 && !shutdown_requested())
        if (pipeline_poll(pipe, 1000) != 0) die("pipeline", "fatal kafka error");
    long first = r.applied;
    double t0 = now_s(), last = t0;
    while (r.applied < n && !shutdown_requested()) {
        long before = r.applied;
        if (pipeline_poll(pipe, 1000) != 0) die("pipeline", "fatal kafka error");
        if (r.applied > before) last = now_s();
        else if (now_s() - last > 30) die("raw pipeline", "stalled");
    }
    double rate = (double)(r.applied - first) / (last - t0);
    kafka_producer_destroy(producer, 10000);
    pipeline_destroy(pipe);
    pg_close(pg);
    return rate;
}

static long long count_candidates(pg_t *pg) {
    char err[256];
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, "SELECT count(*) FROM candidates", 0, NULL, err, sizeof(err));
    long long n = res ? atoll(PQgetvalue(res, 0, 0)) : 0;
    PQclear(res);
    return n;
}

/* Applications/s through bin/annot-funnel, timed from the first candidate
 * in its schema to the n-th. */
static double funnel_rate(service_t *svc, const char *id, int n) {
    char schema[64], a_schema[96], a_group[96], a_ops[64], log[128], err[512];
    snprintf(schema, sizeof(schema), "benchf_%.8s", id);
    snprintf(a_schema, sizeof(a_schema), "funnel.schema=%s", schema);
    snprintf(a_group, sizeof(a_group), "funnel.group=bench-funnel-%.8s", id);
    snprintf(a_ops, sizeof(a_ops), "ops.addr=127.0.0.1:0");
    snprintf(log, sizeof(log), "%s/bench-funnel.log", getenv("ANNOT_RUN_DIR") ? getenv("ANNOT_RUN_DIR") : "/tmp");
    pid_t pid = fork();
    if (pid < 0) die("fork", "failed");
    if (pid == 0) {
        if (freopen(log, "w", stdout) == NULL) _exit(127);
        dup2(1, 2);
        char *argv[] = {"bin/annot-funnel", "-X", a_schema, "-X", a_group, "-X", a_ops, NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    pg_t *pg = pg_connect(config_str(svc->cfg, "database.url"), schema, 10, err, sizeof(err));
    if (pg == NULL) die("pg", err);
    long long first = 0, got = 0;
    double t0 = 0, last = now_s();
    while (got < n) {
        usleep(20 * 1000);
        got = count_candidates(pg);
        if (got > 0 && t0 == 0) {
            t0 = now_s();
            first = got;
        }
        if (got > first) last = now_s();
        if (now_s() - last > 60) die("funnel", "stalled (see its log)");
        if (waitpid(pid, NULL, WNOHANG) == pid) die("funnel", "exited (see its log)");
    }
    double rate = (double)(got - first) / (last - t0);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    pg_close(pg);
    return rate;
}

int main(int argc, char **argv) {
    service_t svc;
    if (service_init(&svc, "bench-funnel", "Funnel benchmark.", NULL, NULL, argc, argv) != 0) return 2;
    log_init("bench-funnel", LOG_LEVEL_ERROR);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int n = getenv("BENCH_CANDIDATES") ? atoi(getenv("BENCH_CANDIDATES")) : 3000;
    char id[EVENT_ID_LEN];
    event_id_new(id);
    printf("bench_funnel: %d applications\n", n);
    produce_applications(&svc, n);
    double raw = raw_rate(&svc, id, n);
    double funnel = funnel_rate(&svc, id, n);
    printf("  raw pipeline (ledger + 1 row + 1 outbox event + publish) %8.0f events/s\n", raw);
    printf("  annot-funnel applications (row, 3 history rows, 3 events) %8.0f applications/s\n", funnel);
    printf("  ratio funnel / raw pipeline %.3f\n", funnel / raw);
    service_destroy(&svc);
    return 0;
}
