/* bench_metrics: how fast annot-metrics aggregates, beside the raw ceiling
 * underneath it, and whether its memory stays bounded as events grow.
 *
 *   1. in process, no I/O: decode + contributions folded per batch of 500
 *      (contrib.c, series.c), events/s;
 *   2. in process with PostgreSQL: the same plus each batch's upsert into
 *      the rollups in one transaction (store.c), events/s;
 *   3. through the service: validation results produced to the embedded
 *      Kafka, bin/annot-metrics started on them, events/s from its first to
 *      its last applied event, beside the raw consume rate of the same
 *      topic on the same broker (the ceiling) and the ratio;
 *   4. a long run: more phases of events into the running service, each a
 *      day later than the one before (new windows every phase), with the
 *      service's RSS after each: it holds one batch's points, not the
 *      history, so RSS must stay flat while events and windows grow.
 *
 * Settings from the environment (run/devstack.env); BENCH_EVENTS sets the
 * events per phase (default 20000), BENCH_PHASES the long run's phases
 * (default 4).  The service's own modules are compiled in by including
 * their .c, as the unit tests do. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../services/annot-metrics/contrib.c"
#include "../../services/annot-metrics/publish.c"
#include "../../services/annot-metrics/series.c"
#include "../../services/annot-metrics/stats.c"
#include "../../services/annot-metrics/store.c"
#include "../../services/annot-metrics/window.c"
#include "event.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "service.h"
#include "shutdown.h"

#define T0 1795773600000LL /* 2026-11-27T10:00:00Z */
#define BATCH 500

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *err) {
    fprintf(stderr, "bench_metrics: %s: %s\n", what, err);
    exit(1);
}

static const char *const rules[] = {"subjective_language", "speculation", "relation_missing", "length",
                                    "main_object_not_first"};
static const char *const locales[] = {"ja-JP", "en-US", "ru-RU", "fr-FR"};

/* A validation result as the dispatcher would publish it: 50 annotators,
 * 20 validators, 4 locales, one finding and sometimes an error, a blind
 * pair every tenth submission, spread over six hours from base. */
static uint8_t *result_pack(const char *prefix, int i, int64_t base, size_t *len) {
    char id[EVENT_ID_LEN], author[32], validator[32], sub[64], pair[64], vid[64], section[8];
    event_id_new(id);
    snprintf(author, sizeof(author), "a%02d", i % 50);
    snprintf(validator, sizeof(validator), "v%02d", (i * 7) % 20);
    snprintf(sub, sizeof(sub), "%ss%d", prefix, i / 2);
    snprintf(pair, sizeof(pair), "%sp%d", prefix, i / 2);
    snprintf(vid, sizeof(vid), "%sr%d", prefix, i);
    snprintf(section, sizeof(section), "%d.%d", 1 + i % 6, 1 + i % 3);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, "bench", "", i % 3 ? "2026.11" : "2026.10");
    Annot__V1__ValidationResult r = ANNOT__V1__VALIDATION_RESULT__INIT;
    r.validation_id = vid;
    r.submission_id = sub;
    r.validator_id = validator;
    r.author_id = author;
    r.author_role = ANNOT__V1__ROLE__ROLE_ANNOTATOR;
    r.task_kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    r.locale = (char *)locales[i % 4];
    r.verdict = i % 9 ? ANNOT__V1__VERDICT__VERDICT_ACCEPT : ANNOT__V1__VERDICT__VERDICT_REJECT;
    r.score = i % 9 ? 0.95 : 0.6;
    r.validated_at_ms = base + (int64_t)(i % 21600) * 1000;
    r.submitted_at_ms = r.validated_at_ms - 60000 - i % 5000;
    r.task_created_at_ms = r.submitted_at_ms - 600000;
    r.double_validation = i % 20 < 2;
    r.pair_id = r.double_validation ? pair : "";
    Annot__V1__Finding f = ANNOT__V1__FINDING__INIT;
    Annot__V1__Finding *fp[1] = {&f};
    f.rule = (char *)rules[i % 5];
    r.n_check_findings = 1;
    r.check_findings = fp;
    Annot__V1__ValidationError e = ANNOT__V1__VALIDATION_ERROR__INIT;
    Annot__V1__ValidationError *ep[1] = {&e};
    if (i % 4 == 0) {
        e.category = (char *)rules[(i / 4) % 5];
        e.severity = ANNOT__V1__SEVERITY__SEVERITY_MINOR;
        e.section = section;
        r.n_errors = 1;
        r.errors = ep;
    }
    Annot__V1__ValidationResultEvent ev = ANNOT__V1__VALIDATION_RESULT_EVENT__INIT;
    ev.header = &hdr;
    ev.result = &r;
    *len = annot__v1__validation_result_event__get_packed_size(&ev);
    uint8_t *buf = malloc(*len);
    annot__v1__validation_result_event__pack(&ev, buf);
    return buf;
}

static bool always_checker(void *opaque, const char *c) {
    (void)opaque;
    (void)c;
    return true;
}

static int count_row(void *opaque, const rollup_row_t *row, char *errstr, size_t errlen) {
    (void)row;
    (void)errstr;
    (void)errlen;
    (*(long *)opaque)++;
    return 0;
}

/* Stages 1 and 2: decode and fold n events, flushing each batch to pg when
 * it is not NULL.  Returns events/s; *points counts the rows written. */
static double in_process(uint8_t **bufs, size_t *lens, int n, pg_t *pg, long *points) {
    series_batch_t *b = series_batch_new();
    char err[1024];
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        if (i % BATCH == 0 && pg && pg_begin(pg, err, sizeof(err)) != 0) die("pg", err);
        Annot__V1__ValidationResultEvent *ev = annot__v1__validation_result_event__unpack(NULL, lens[i], bufs[i]);
        contrib_t c = {b, ev->header->guideline_version, ev->header->occurred_at_ms, always_checker, NULL, false};
        if (contrib_validation(&c, ev, NULL, err, sizeof(err)) != 0) die("contrib", err);
        annot__v1__validation_result_event__free_unpacked(ev, NULL);
        if (i % BATCH == BATCH - 1 || i == n - 1) {
            if (pg) {
                if (store_flush(pg, b, event_now_ms(), 0, count_row, points, err, sizeof(err)) != 0 ||
                    pg_commit(pg, err, sizeof(err)) != 0)
                    die("pg", err);
            } else {
                *points += (long)series_batch_count(b);
            }
            series_batch_reset(b);
        }
    }
    double rate = n / (now_s() - t0);
    series_batch_destroy(b);
    return rate;
}

static void produce_all(service_t *svc, const char *topic, uint8_t **bufs, size_t *lens, int n, const char *prefix,
                        int from) {
    char err[512];
    kafka_producer_t *p = kafka_producer_new(svc->cfg, "bench-producer", err, sizeof(err));
    if (p == NULL) die("producer", err);
    kafka_delivery_t *ds = calloc((size_t)n, sizeof(*ds));
    for (int i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof(key), "%ss%d", prefix, (from + i) / 2);
        while (kafka_produce(p, topic, key, strlen(key), bufs[i], lens[i], &ds[i], err, sizeof(err)) != 0) {
            if (strstr(err, "full") == NULL) die("produce", err);
            rd_kafka_poll(kafka_producer_handle(p), 100);
        }
    }
    if (kafka_producer_wait(p, ds, (size_t)n, err, sizeof(err)) != 0) die("delivery", err);
    free(ds);
    kafka_producer_destroy(p, 10000);
}

/* Raw ceiling: a fresh group reads the whole topic, doing nothing. */
static double consume_raw(service_t *svc, const char *topic, int n) {
    char err[512], group[64], id[EVENT_ID_LEN];
    event_id_new(id);
    snprintf(group, sizeof(group), "bench-metrics-raw-%.8s", id);
    const char *topics[1] = {topic};
    kafka_consumer_t *c = kafka_consumer_new(svc->cfg, group, topics, 1, err, sizeof(err));
    if (c == NULL) die("consumer", err);
    int got = 0;
    double t0 = 0;
    while (got < n && !shutdown_requested()) {
        rd_kafka_message_t *m = kafka_consumer_poll(c, 1000);
        if (m == NULL) continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && got++ == 0) t0 = now_s();
        kafka_consumer_store(c, m);
        rd_kafka_message_destroy(m);
    }
    double rate = (got - 1) / (now_s() - t0);
    kafka_consumer_close(c);
    return rate;
}

static long long pg_count(pg_t *pg, const char *sql) {
    char err[512];
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, sql, 0, NULL, err, sizeof(err));
    if (res == NULL) return -1;
    long long v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

static long rss_kib(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) kib = atol(line + 6);
    }
    if (f) fclose(f);
    return kib;
}

/* Waits until the service applied `want` events; returns the time of the
 * first applied event seen and the end. */
static void wait_applied(pg_t *pg, long long want, double *first, double *last, pid_t pid) {
    *first = 0;
    double stalled = now_s();
    long long prev = -1;
    for (;;) {
        long long n = pg_count(pg, "SELECT count(*) FROM processed_events");
        if (n > 0 && *first == 0) *first = now_s();
        if (n >= want) break;
        if (n != prev) {
            prev = n;
            stalled = now_s();
        }
        if (now_s() - stalled > 60 || waitpid(pid, NULL, WNOHANG) == pid) die("service", "stalled or exited");
        usleep(20 * 1000);
    }
    *last = now_s();
}

int main(int argc, char **argv) {
    service_t svc;
    if (service_init(&svc, "bench-metrics", "Metrics benchmark.", NULL, NULL, argc, argv) != 0) return 2;
    log_init("bench-metrics", LOG_LEVEL_ERROR);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int n = getenv("BENCH_EVENTS") ? atoi(getenv("BENCH_EVENTS")) : 20000;
    int phases = getenv("BENCH_PHASES") ? atoi(getenv("BENCH_PHASES")) : 4;
    if (n < 1000 || phases < 1) die("settings", "BENCH_EVENTS >= 1000, BENCH_PHASES >= 1");
    const char *topic = service_topic(&svc, "validation-results");
    char err[1024], id[EVENT_ID_LEN], schema[64], prefix[64], group[64];
    event_id_new(id);
    snprintf(schema, sizeof(schema), "bench_metrics_%.8s", id);
    snprintf(prefix, sizeof(prefix), "bm%.8s-", id);
    snprintf(group, sizeof(group), "bench-metrics-%.8s", id);

    uint8_t **bufs = calloc((size_t)n, sizeof(*bufs));
    size_t *lens = calloc((size_t)n, sizeof(*lens));
    for (int i = 0; i < n; i++) bufs[i] = result_pack(prefix, i, T0, &lens[i]);
    printf("bench_metrics: %d validation results per phase, topic %s\n", n, topic);

    long points = 0;
    double rate_mem = in_process(bufs, lens, n, NULL, &points);
    printf("  in process, decode + contributions (batches of %d)      %10.0f events/s  (%.0f points per batch)\n",
           BATCH, rate_mem, (double)points / ((n + BATCH - 1) / BATCH));
    pg_t *pg = pg_connect(config_str(svc.cfg, "database.url"), schema, 10, err, sizeof(err));
    if (pg == NULL || pg_migrate(pg, "services/annot-metrics/migrations", err, sizeof(err)) != 0) die("pg", err);
    points = 0;
    double rate_pg = in_process(bufs, lens, n, pg, &points);
    printf("  in process + rollup upserts in PostgreSQL                %10.0f events/s  (%ld rows written)\n", rate_pg,
           points);
    /* The service gets a schema of its own: start it clean. */
    char svc_schema[80];
    snprintf(svc_schema, sizeof(svc_schema), "%s_svc", schema);

    produce_all(&svc, topic, bufs, lens, n, prefix, 0);
    double raw = consume_raw(&svc, topic, n);

    char a_schema[128], a_group[128];
    snprintf(a_schema, sizeof(a_schema), "metrics.schema=%s", svc_schema);
    snprintf(a_group, sizeof(a_group), "metrics.group=%s", group);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        execl("bin/annot-metrics", "bin/annot-metrics", "-X", a_schema, "-X", a_group, "-X", "log.level=warn", NULL);
        _exit(127);
    }
    pg_t *spg = NULL;
    for (int tries = 0; spg == NULL && tries < 100; tries++) {
        spg = pg_connect(config_str(svc.cfg, "database.url"), svc_schema, 10, err, sizeof(err));
        if (spg && pg_count(spg, "SELECT count(*) FROM processed_events") < 0) {
            pg_close(spg);
            spg = NULL;
            usleep(100 * 1000);
        }
    }
    if (spg == NULL) die("service schema", err);
    /* The group reads the topic from the start: earlier runs' events too. */
    long long total = 0;
    {
        rd_kafka_conf_t *conf = kafka_conf_new(svc.cfg, "bench-wm", NULL, err, sizeof(err));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        const topic_def_t *t = topics_find(&svc.topics, "validation-results");
        for (int p = 0; p < t->partitions; p++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000) != 0) die("watermarks", topic);
            total += hi - lo;
        }
        rd_kafka_destroy(rk);
    }
    double first, last;
    wait_applied(spg, total, &first, &last, pid);
    double rate_svc = (double)(total - 1) / (last - first);
    printf("  raw kafka consume of the same topic (ceiling)            %10.0f events/s\n", raw);
    printf("  through bin/annot-metrics (consume, fold, upsert, publish) %8.0f events/s  (%lld events)\n", rate_svc,
           total);
    printf("  ratio service / raw consume %.3f   service / in-process+pg %.3f\n", rate_svc / raw, rate_svc / rate_pg);

    printf("  long run: service RSS after each phase (each phase a day later: new windows)\n");
    printf("    phase %d: %8lld events applied  %8lld rollup rows  RSS %6ld KiB\n", 1, total,
           pg_count(spg, "SELECT count(*) FROM rollups"), rss_kib(pid));
    for (int ph = 2; ph <= phases; ph++) {
        for (int i = 0; i < n; i++) {
            free(bufs[i]);
            bufs[i] = result_pack(prefix, (ph - 1) * n + i, T0 + (int64_t)(ph - 1) * 86400000LL, &lens[i]);
        }
        produce_all(&svc, topic, bufs, lens, n, prefix, (ph - 1) * n);
        total += n;
        wait_applied(spg, total, &first, &last, pid);
        printf("    phase %d: %8lld events applied  %8lld rollup rows  RSS %6ld KiB\n", ph, total,
               pg_count(spg, "SELECT count(*) FROM rollups"), rss_kib(pid));
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("  bench process peak RSS %ld KiB\n", ru.ru_maxrss);
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(lens);
    pg_close(spg);
    pg_close(pg);
    service_destroy(&svc);
    return 0;
}
