/* bench_e2e: the whole pipeline with all five services running (one
 * instance each, fresh schemas and groups): annotators lease and submit
 * production tasks over HTTP as fast as they can, the submission goes
 * through the autochecker and the assigner and comes back to the dispatcher
 * as a validation task in a validator's queue, where validators long-poll
 * POST /v1/leases and submit verdicts (which the metrics and the funnel
 * then consume).  Printed: submissions per second (HTTP 202s), the rate at
 * which validation tasks reach validators, the latency from the submit's
 * 202 to the validator's lease of that submission (p50/p99), and each
 * service's RSS.  The ceiling, measured in the same run on the same broker:
 * librdkafka producing and a consumer consuming messages of the same size
 * (a packed SubmissionEvent), produce to consume.  The pipeline crosses
 * Kafka three times between the 202 and the validation task (submissions,
 * checks, validation-assignments) plus PostgreSQL and Redis at each step;
 * the ratio to the single-hop ceiling is the figure to compare between runs.
 * BENCH_E2E_TASKS, BENCH_E2E_ANNOTATORS, BENCH_E2E_VALIDATORS set the size;
 * BENCH_E2E_X, one key=value, is passed to every service with -X (to try a
 * setting, e.g. kafka.fetch.wait.max.ms=10, against the defaults).
 * Figures, never a pass or fail. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "annot/v1/submission.pb-c.h"
#include "annot/v1/task.pb-c.h"
#include "event.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "service.h"

enum { S_DISPATCHER, S_AUTOCHECKER, S_ASSIGNER, S_FUNNEL, S_METRICS, S_COUNT };
static const char *const names[S_COUNT] = {"annot-dispatcher", "annot-autochecker", "annot-assigner", "annot-funnel",
                                           "annot-metrics"};
static const char *const roles[S_COUNT][11] = {
    {"tasks", "validation-assignments", "candidates", "annotators", NULL},
    {"submissions", NULL},
    {"checks", "annotators", "validation-results", "leases", NULL},
    {"candidates", "validation-results", NULL},
    {"tasks", "leases", "submissions", "checks", "validation-assignments", "validation-results", "feedback",
     "candidates", "annotators", "guidelines", NULL},
};
static const char DESCRIPTION[] =
    "Bibimbap in a black stone bowl: a fried egg sits on top of the vegetables, which are arranged in sections "
    "over white rice: spinach, bean sprouts, julienned carrot, brown mushrooms and minced beef. A spoonful of red "
    "gochujang paste sits beside the egg, and sesame seeds are scattered over the spinach.";

static service_t svc;
static char run[16], prefix[64], skill[32], gv[32], schemas[S_COUNT][64], groups[S_COUNT][96];
static pid_t pids[S_COUNT];
static int ops[S_COUNT], http_port;
static int n_tasks = 2000, n_ann = 16, n_val = 16;
static char (*ann_tokens)[128], (*val_tokens)[128];
static double *t_submit, *t_queued;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void stop_services(void) {
    for (int s = 0; s < S_COUNT; s++)
        if (pids[s] > 0) kill(pids[s], SIGTERM);
    for (int s = 0; s < S_COUNT; s++)
        if (pids[s] > 0) waitpid(pids[s], NULL, 0);
}

static void die(const char *what, const char *err) {
    fprintf(stderr, "bench_e2e: %s: %s\n", what, err);
    stop_services();
    exit(1);
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    socklen_t sl = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    close(fd);
    return ntohs(sin.sin_port);
}

/* One HTTP/1.1 request on loopback (Connection: close); the status, the
 * body copied into out. */
static int http(const char *method, int port, const char *path, const char *token, const char *body, char *out,
                size_t out_len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    char req[2048];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n%s%s%s\r\n%s", method,
                     path, blen, token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
                     body ? body : "");
    if (n >= (int)sizeof(req) || write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    ssize_t r;
    while (got < out_len - 1 && (r = read(fd, out + got, out_len - 1 - got)) > 0) got += (size_t)r;
    out[got] = '\0';
    close(fd);
    int status = -1;
    sscanf(out, "HTTP/1.%*d %d", &status);
    const char *b = strstr(out, "\r\n\r\n");
    if (b) memmove(out, b + 4, strlen(b + 4) + 1);
    return status;
}

static pid_t spawn(int s, char *const extra[]) {
    char bin[64], a_schema[128], a_group[160], a_ops[64], log[512];
    const char *key = names[s] + strlen("annot-");
    ops[s] = free_port();
    snprintf(bin, sizeof(bin), "bin/%s", names[s]);
    snprintf(a_schema, sizeof(a_schema), "%s.schema=%s", key, schemas[s]);
    snprintf(a_group, sizeof(a_group), "%s.group=%s", key, groups[s]);
    snprintf(a_ops, sizeof(a_ops), "ops.addr=127.0.0.1:%d", ops[s]);
    const char *dir = getenv("ANNOT_RUN_DIR");
    snprintf(log, sizeof(log), "%s/bench-e2e-%s.log", dir ? dir : "/tmp", names[s]);
    char *argv[32] = {bin, "-X", a_schema, "-X", a_group, "-X", a_ops, "-X", "log.level=warn"};
    int n = 9;
    for (int i = 0; extra && extra[i] && n < 30; i++) {
        argv[n++] = "-X";
        argv[n++] = extra[i];
    }
    if (getenv("BENCH_E2E_X") && n < 30) {
        argv[n++] = "-X";
        argv[n++] = getenv("BENCH_E2E_X");
    }
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, argv);
        _exit(127);
    }
    char body[4096];
    double deadline = now_s() + 120;
    while (http("GET", ops[s], "/readyz", NULL, NULL, body, sizeof(body)) != 200) {
        if (now_s() > deadline) die(names[s], "never became ready");
        usleep(100 * 1000);
    }
    return pid;
}

/* Waits until group has consumed everything on the topic of role. */
static void caught_up(const char *group, const char *role) {
    char err[512];
    const char *const defaults[] = {"group.id", group, NULL};
    rd_kafka_conf_t *conf = kafka_conf_new(svc.cfg, "bench-lag", defaults, err, sizeof(err));
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err)) : NULL;
    if (rk == NULL) die("lag", err);
    const topic_def_t *t = topics_find(&svc.topics, role);
    double deadline = now_s() + 300;
    for (;;) {
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(t->partitions);
        for (int i = 0; i < t->partitions; i++) rd_kafka_topic_partition_list_add(parts, t->name, i);
        int behind = rd_kafka_committed(rk, parts, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int i = 0; i < parts->cnt && !behind; i++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(rk, t->name, i, &lo, &hi, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
                (hi > 0 && parts->elems[i].offset < hi))
                behind = 1;
        }
        rd_kafka_topic_partition_list_destroy(parts);
        if (!behind) break;
        if (now_s() > deadline) die("lag", "a service never caught up with the topics' history");
        usleep(200 * 1000);
    }
    rd_kafka_destroy(rk);
}

/* ---- the ceiling: produce to consume on the same broker --------------- */

typedef struct raw {
    const char *topic;
    int n;
    rd_kafka_topic_partition_list_t *from; /* the ends before producing */
    double *lat, last;
    atomic_int ready;
} raw_t;

static void *raw_consume(void *arg) {
    raw_t *r = arg;
    char err[512];
    const char *const defaults[] = {"group.id", "bench-e2e-raw", NULL};
    rd_kafka_conf_t *conf = kafka_conf_new(svc.cfg, "bench-e2e-raw", defaults, err, sizeof(err));
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err)) : NULL;
    if (rk == NULL) die("raw consumer", err);
    rd_kafka_poll_set_consumer(rk);
    if (rd_kafka_assign(rk, r->from) != RD_KAFKA_RESP_ERR_NO_ERROR) die("raw consumer", "assign");
    atomic_store(&r->ready, 1);
    int got = 0;
    double deadline = now_s() + 300;
    while (got < r->n && now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->len >= sizeof(double) && m->key_len > strlen(prefix) &&
            memcmp(m->key, prefix, strlen(prefix)) == 0) {
            double sent;
            memcpy(&sent, m->payload, sizeof(sent));
            r->last = now_s();
            r->lat[got++] = r->last - sent;
        }
        rd_kafka_message_destroy(m);
    }
    if (got < r->n) die("raw consumer", "not every message arrived within 300 s");
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return NULL;
}

/* n messages of len bytes, produced as fast as librdkafka takes them
 * (pace 0) or pace per second (idempotent, every delivery report awaited)
 * while a consumer reads them; fills the produce-to-consume rate and
 * latency quantiles. */
static void raw_ceiling(int n, size_t len, double pace, double *rate, double *p50, double *p99) {
    char err[512];
    raw_t r = {.topic = service_topic(&svc, "selftest"), .n = n};
    r.lat = calloc((size_t)n, sizeof(double));
    const topic_def_t *t = topics_find(&svc.topics, "selftest");
    kafka_producer_t *p = kafka_producer_new(svc.cfg, "bench-e2e-raw", err, sizeof(err));
    if (p == NULL) die("raw producer", err);
    /* Start from the partitions' current ends, known before producing. */
    r.from = rd_kafka_topic_partition_list_new(t->partitions);
    for (int i = 0; i < t->partitions; i++) {
        int64_t lo, hi;
        if (rd_kafka_query_watermark_offsets(kafka_producer_handle(p), t->name, i, &lo, &hi, 5000) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            die("raw", "watermarks");
        rd_kafka_topic_partition_list_add(r.from, t->name, i)->offset = hi;
    }
    pthread_t th;
    pthread_create(&th, NULL, raw_consume, &r);
    while (!atomic_load(&r.ready)) usleep(1000);
    usleep(500 * 1000); /* the consumer's fetchers are up */
    uint8_t *buf = calloc(1, len);
    memset(buf, 'x', len);
    kafka_delivery_t *ds = calloc((size_t)n, sizeof(*ds));
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        char key[96];
        snprintf(key, sizeof(key), "%sraw-%d", prefix, i);
        if (pace > 0) {
            double wait = t0 + i / pace - now_s();
            if (wait > 0) usleep((useconds_t)(wait * 1e6));
        }
        double sent = now_s();
        memcpy(buf, &sent, sizeof(sent));
        if (kafka_produce(p, r.topic, key, strlen(key), buf, len, &ds[i], err, sizeof(err)) != 0) die("raw", err);
    }
    if (kafka_producer_wait(p, ds, (size_t)n, err, sizeof(err)) != 0) die("raw delivery", err);
    pthread_join(th, NULL);
    *rate = n / (r.last - t0);
    qsort(r.lat, (size_t)n, sizeof(double), cmp_double);
    *p50 = r.lat[n / 2];
    *p99 = r.lat[(size_t)(n * 0.99)];
    kafka_producer_destroy(p, 10000);
    rd_kafka_topic_partition_list_destroy(r.from);
    free(ds);
    free(buf);
    free(r.lat);
}

/* ---- the pipeline ------------------------------------------------------- */

static void user_add(const char *role, char *out, size_t len) {
    char cmd[512], line[512] = "", last[512] = "";
    snprintf(cmd, sizeof(cmd),
             "bin/annotctl -X dispatcher.schema=%s users add --role %s --name 'Bench %s' --locale en-US "
             "--skills %s 2>/dev/null",
             schemas[S_DISPATCHER], role, role, skill);
    FILE *f = popen(cmd, "r");
    if (f == NULL) die("annotctl", "popen");
    while (fgets(line, sizeof(line), f)) snprintf(last, sizeof(last), "%s", line);
    if (pclose(f) != 0) die("annotctl users add", last);
    last[strcspn(last, "\n")] = '\0';
    snprintf(out, len, "%s", last);
}

static void produce_tasks(int first, int count) {
    char err[512];
    kafka_producer_t *p = kafka_producer_new(svc.cfg, "bench-e2e", err, sizeof(err));
    if (p == NULL) die("producer", err);
    kafka_delivery_t *ds = calloc((size_t)count, sizeof(*ds));
    char *sk[1] = {skill};
    for (int i = first; i < first + count; i++) {
        char id[EVENT_ID_LEN], task_id[96];
        event_id_new(id);
        snprintf(task_id, sizeof(task_id), "%s%d", prefix, i);
        Annot__V1__EventHeader hdr;
        event_header_fill(&hdr, id, "bench", "", gv);
        Annot__V1__Task t = ANNOT__V1__TASK__INIT;
        t.task_id = task_id;
        t.kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
        t.image_uri = "s3://bench/bibimbap.jpg";
        t.main_object = "bibimbap";
        t.locale = "en-US";
        t.n_skills = 1;
        t.skills = sk;
        t.guideline_version = gv;
        t.created_at_ms = event_now_ms();
        Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
        ev.header = &hdr;
        ev.task = &t;
        uint8_t buf[1024];
        size_t len = annot__v1__task_event__pack(&ev, buf);
        if (kafka_produce(p, service_topic(&svc, "tasks"), task_id, strlen(task_id), buf, len, &ds[i - first],
                          err, sizeof(err)) != 0)
            die("produce", err);
    }
    if (kafka_producer_wait(p, ds, (size_t)count, err, sizeof(err)) != 0) die("delivery", err);
    free(ds);
    kafka_producer_destroy(p, 10000);
}

static long long pg_number(pg_t *pg, const char *sql) {
    char err[512];
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, sql, 0, NULL, err, sizeof(err));
    if (res == NULL) return -1;
    long long v = PQgetisnull(res, 0, 0) ? -1 : atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* The task index from "<prefix><i>" inside a lease answer; -1 if none. */
static int task_index(json_t *task) {
    const char *id = json_string_value(json_object_get(task, "task_id"));
    if (id == NULL || strncmp(id, prefix, strlen(prefix)) != 0) return -1;
    int i = atoi(id + strlen(prefix));
    return i >= 0 && i < n_tasks ? i : -1;
}

/* A phase: tasks [first, first + count) worked as fast as the annotators
 * can (pace 0) or with leases started at pace per second in all. */
typedef struct phase {
    int first, count;
    double pace, t0;
    atomic_int submitted, queued, slot;
    atomic_int stop;
} phase_t;

typedef struct client {
    phase_t *ph;
    const char *token;
} client_t;

static void *annotator(void *arg) {
    client_t *c = arg;
    phase_t *ph = c->ph;
    char body[1 << 14], path[160], req[1024];
    snprintf(req, sizeof(req), "{\"description\":\"%s\"}", DESCRIPTION);
    while (!atomic_load(&ph->stop) && atomic_load(&ph->submitted) < ph->count) {
        if (ph->pace > 0) {
            /* An open loop: the k-th lease starts at t0 + k / pace. */
            double at = ph->t0 + atomic_fetch_add(&ph->slot, 1) / ph->pace, wait = at - now_s();
            if (wait > 0) usleep((useconds_t)(wait * 1e6));
        }
        if (http("POST", http_port, "/v1/leases", c->token, "{\"queue\":\"annotation\",\"wait_s\":1}", body,
                 sizeof(body)) != 200)
            continue;
        json_t *j = json_loads(body, 0, NULL);
        int i = task_index(json_object_get(j, "task"));
        snprintf(path, sizeof(path), "/v1/leases/%s/submit", json_string_value(json_object_get(j, "lease_id")));
        json_decref(j);
        if (http("POST", http_port, path, c->token, req, body, sizeof(body)) == 202 && i >= 0) {
            t_submit[i] = now_s();
            atomic_fetch_add(&ph->submitted, 1);
        }
    }
    return NULL;
}

static void *validator(void *arg) {
    client_t *c = arg;
    phase_t *ph = c->ph;
    char body[1 << 14], path[160];
    while (!atomic_load(&ph->stop)) {
        if (http("POST", http_port, "/v1/leases", c->token, "{\"queue\":\"validation\",\"wait_s\":2}", body,
                 sizeof(body)) != 200)
            continue;
        double at = now_s();
        json_t *j = json_loads(body, 0, NULL);
        int i = task_index(json_object_get(json_object_get(j, "task"), "task"));
        snprintf(path, sizeof(path), "/v1/leases/%s/submit", json_string_value(json_object_get(j, "lease_id")));
        json_decref(j);
        if (i >= 0 && t_queued[i] == 0) {
            t_queued[i] = at;
            atomic_fetch_add(&ph->queued, 1);
        }
        http("POST", http_port, path, c->token, "{\"verdict\":\"accept\",\"errors\":[]}", body, sizeof(body));
    }
    return NULL;
}

typedef struct phase_result {
    double submit_rate, e2e_rate, p50, p99, max; /* as the clients saw it */
    double rec_rate, rec_p50, rec_p99;           /* as the dispatcher recorded it */
} phase_result_t;

/* The dispatcher's own record of tasks [first, first + count): from the
 * submission's row (submitted_at) to its validation task's row (created_at,
 * queued in Redis right after that commit).  Independent of how fast the
 * validators come to lease. */
static void recorded(pg_t *dpg, int first, int count, phase_result_t *r) {
    char err[512], a[16], b[16];
    snprintf(a, sizeof(a), "%d", first);
    snprintf(b, sizeof(b), "%d", first + count - 1);
    const char *params[3] = {prefix, a, b};
    PGresult *res = pg_query(dpg, PGRES_TUPLES_OK,
                             "WITH l AS (SELECT s.submitted_at AS s_at, t.created_at AS q_at FROM submissions s "
                             "JOIN assignments a ON a.submission_id = s.submission_id::text "
                             "JOIN tasks t ON t.task_id = a.assignment_id "
                             "WHERE starts_with(s.task_id, $1) AND "
                             "substr(s.task_id, length($1) + 1)::int BETWEEN $2::int AND $3::int) "
                             "SELECT count(*), extract(epoch FROM max(q_at) - min(s_at)), "
                             "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM q_at - s_at)), "
                             "percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM q_at - s_at)) FROM l",
                             3, params, err, sizeof(err));
    if (res == NULL) die("postgresql", err);
    if (atoi(PQgetvalue(res, 0, 0)) != count) die("dispatcher", "a submission without its validation task");
    r->rec_rate = count / atof(PQgetvalue(res, 0, 1));
    r->rec_p50 = atof(PQgetvalue(res, 0, 2));
    r->rec_p99 = atof(PQgetvalue(res, 0, 3));
    PQclear(res);
}

static phase_result_t phase_run(pg_t *dpg, int first, int count, double pace) {
    produce_tasks(first, count);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM tasks WHERE enqueued AND starts_with(task_id, '%s')", prefix);
    double deadline = now_s() + 300;
    while (pg_number(dpg, sql) < first + count) {
        if (now_s() > deadline) die("dispatcher", "never queued the tasks");
        usleep(100 * 1000);
    }
    phase_t ph = {.first = first, .count = count, .pace = pace};
    int n = n_ann + n_val;
    pthread_t *th = calloc((size_t)n, sizeof(pthread_t));
    client_t *cl = calloc((size_t)n, sizeof(client_t));
    for (int i = 0; i < n_val; i++) {
        cl[n_ann + i] = (client_t){&ph, val_tokens[i]};
        pthread_create(&th[n_ann + i], NULL, validator, &cl[n_ann + i]);
    }
    ph.t0 = now_s();
    for (int i = 0; i < n_ann; i++) {
        cl[i] = (client_t){&ph, ann_tokens[i]};
        pthread_create(&th[i], NULL, annotator, &cl[i]);
    }
    deadline = now_s() + 600;
    while (atomic_load(&ph.queued) < count && now_s() < deadline) usleep(50 * 1000);
    atomic_store(&ph.stop, 1);
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    if (atomic_load(&ph.queued) < count) die("pipeline", "not every submission reached a validator within 600 s");
    free(th);
    free(cl);
    double last_submit = 0, last_queued = 0;
    double *lat = calloc((size_t)count, sizeof(double));
    for (int i = 0; i < count; i++) {
        if (t_submit[first + i] > last_submit) last_submit = t_submit[first + i];
        if (t_queued[first + i] > last_queued) last_queued = t_queued[first + i];
        lat[i] = t_queued[first + i] - t_submit[first + i];
    }
    qsort(lat, (size_t)count, sizeof(double), cmp_double);
    phase_result_t r = {.submit_rate = count / (last_submit - ph.t0),
                        .e2e_rate = count / (last_queued - ph.t0),
                        .p50 = lat[count / 2],
                        .p99 = lat[(size_t)(count * 0.99)],
                        .max = lat[count - 1]};
    free(lat);
    recorded(dpg, first, count, &r);
    return r;
}

/* Where the time goes, as annot-metrics measured it from the events' own
 * times in the paced phase (its guideline version): from the submission to
 * the assigner's decision; the rest to the validation-queued figure is the
 * hop back to the dispatcher.  (The autochecker's check time is the
 * submission's Kafka log time, so a "checked" step says nothing here.) */
static void stages(service_t *sv) {
    for (int r = 0; roles[S_METRICS][r]; r++) caught_up(groups[S_METRICS], roles[S_METRICS][r]);
    char err[512];
    pg_t *mpg = pg_connect(config_str(sv->cfg, "database.url"), schemas[S_METRICS], 10, err, sizeof(err));
    if (mpg == NULL) die("postgresql", err);
    const char *params[1] = {gv};
    PGresult *res = pg_query(mpg, PGRES_TUPLES_OK,
                             "SELECT step, observations, p50_ms, p99_ms FROM latency WHERE window_kind = 'all' AND "
                             "guideline_version = $1 AND metric = 'latency_ms' AND step = 'assigned'",
                             1, params, err, sizeof(err));
    if (res == NULL) die("postgresql", err);
    for (int i = 0; i < PQntuples(res); i++)
        printf("  paced, annot-metrics: submitted -> %s  %s observations  p50 %.0f ms  p99 %.0f ms (log buckets)\n",
               PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), atof(PQgetvalue(res, i, 2)), atof(PQgetvalue(res, i, 3)));
    PQclear(res);
    pg_close(mpg);
}

/* CPU seconds (user + system) a process has used. */
static double cpu_s(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* After the name: state and 10 more fields, then utime and stime. */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long rss_kib(pid_t pid, const char *field) {
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, strlen(field)) == 0) v = atol(line + strlen(field) + 1);
    if (f) fclose(f);
    return v;
}


int main(int argc, char **argv) {
    if (service_init(&svc, "bench-e2e", "End-to-end pipeline benchmark.", NULL, NULL, argc, argv) != 0) return 2;
    log_init("bench-e2e", LOG_LEVEL_ERROR);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (getenv("BENCH_E2E_TASKS")) n_tasks = atoi(getenv("BENCH_E2E_TASKS"));
    if (getenv("BENCH_E2E_ANNOTATORS")) n_ann = atoi(getenv("BENCH_E2E_ANNOTATORS"));
    if (getenv("BENCH_E2E_VALIDATORS")) n_val = atoi(getenv("BENCH_E2E_VALIDATORS"));
    if (n_tasks < 100 || n_ann < 1 || n_val < 1) die("settings", "at least 100 tasks, 1 annotator, 1 validator");
    char id[EVENT_ID_LEN], err[512];
    event_id_new(id);
    snprintf(run, sizeof(run), "%.8s", id);
    snprintf(prefix, sizeof(prefix), "be2e-%s-", run);
    snprintf(skill, sizeof(skill), "e2e%s", run);
    snprintf(gv, sizeof(gv), "g-bench-%s-s", run); /* per phase: -s saturated, -p paced */
    for (int s = 0; s < S_COUNT; s++) {
        snprintf(schemas[s], sizeof(schemas[s]), "be2e_%.4s_%s", names[s] + 6, run);
        snprintf(groups[s], sizeof(groups[s]), "be2e-%s-%s", names[s] + 6, run);
    }

    /* The message size of the ceiling: a submission as the dispatcher
     * publishes it, with this bench's description and task. */
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, "annot-dispatcher", "", gv);
    char *sk[1] = {skill};
    Annot__V1__Task t = ANNOT__V1__TASK__INIT;
    t.task_id = prefix;
    t.main_object = "bibimbap";
    t.image_uri = "s3://bench/bibimbap.jpg";
    t.locale = "en-US";
    t.n_skills = 1;
    t.skills = sk;
    t.guideline_version = gv;
    Annot__V1__Submission sub = ANNOT__V1__SUBMISSION__INIT;
    sub.submission_id = id;
    sub.task_id = prefix;
    sub.author_id = id;
    sub.lease_id = id;
    sub.description = (char *)DESCRIPTION;
    sub.task = &t;
    Annot__V1__SubmissionEvent sev = ANNOT__V1__SUBMISSION_EVENT__INIT;
    sev.header = &hdr;
    sev.submission = &sub;
    size_t msg_len = annot__v1__submission_event__get_packed_size(&sev);

    printf("bench_e2e: %d tasks, %d annotators, %d validators, all five services (one instance each)\n", n_tasks,
           n_ann, n_val);
    double raw_rate, raw_p50, raw_p99;
    raw_ceiling(n_tasks * 5 > 20000 ? n_tasks * 5 : 20000, msg_len, 0, &raw_rate, &raw_p50, &raw_p99);

    char a_http[64], a_ns[64];
    http_port = free_port();
    snprintf(a_http, sizeof(a_http), "http.addr=127.0.0.1:%d", http_port);
    snprintf(a_ns, sizeof(a_ns), "dispatcher.redis.ns=be2e%s", run);
    char *const d_extra[] = {a_http, a_ns, NULL};
    pids[S_DISPATCHER] = spawn(S_DISPATCHER, d_extra);
    pids[S_AUTOCHECKER] = spawn(S_AUTOCHECKER, NULL);
    /* One validator per submission: the latency is to the first (only)
     * validation task. */
    char *const a_extra[] = {a_ns, "assigner.double.share=0", "assigner.double.first.k=0", NULL};
    pids[S_ASSIGNER] = spawn(S_ASSIGNER, a_extra);
    pids[S_FUNNEL] = spawn(S_FUNNEL, NULL);
    pids[S_METRICS] = spawn(S_METRICS, NULL);

    ann_tokens = calloc((size_t)n_ann, sizeof(*ann_tokens));
    val_tokens = calloc((size_t)n_val, sizeof(*val_tokens));
    for (int i = 0; i < n_ann; i++) user_add("annotator", ann_tokens[i], sizeof(ann_tokens[i]));
    for (int i = 0; i < n_val; i++) user_add("validator", val_tokens[i], sizeof(val_tokens[i]));
    pg_t *dpg = pg_connect(config_str(svc.cfg, "database.url"), schemas[S_DISPATCHER], 10, err, sizeof(err));
    pg_t *apg = pg_connect(config_str(svc.cfg, "database.url"), schemas[S_ASSIGNER], 10, err, sizeof(err));
    if (dpg == NULL || apg == NULL) die("postgresql", err);
    /* Everything earlier benchmarks left on the topics is read first, and
     * the assigner knows the validators. */
    double deadline = now_s() + 300;
    while (pg_number(apg, "SELECT count(*) FROM validators") < n_val) {
        if (now_s() > deadline) die("assigner", "never learned the validators");
        usleep(100 * 1000);
    }
    for (int s = 0; s < S_COUNT; s++)
        for (int r = 0; roles[s][r]; r++) caught_up(groups[s], roles[s][r]);
    t_submit = calloc((size_t)n_tasks, sizeof(double));
    t_queued = calloc((size_t)n_tasks, sizeof(double));
    double cpu0[S_COUNT];
    for (int s = 0; s < S_COUNT; s++) cpu0[s] = cpu_s(pids[s]);
    /* Saturation: the annotators submit as fast as the dispatcher takes
     * it; what reaches the validators per second is the sustained rate. */
    int n_sat = n_tasks * 2 / 3;
    double t_sat = now_s();
    phase_result_t sat = phase_run(dpg, 0, n_sat, 0);
    t_sat = now_s() - t_sat;
    double cpu1[S_COUNT];
    for (int s = 0; s < S_COUNT; s++) cpu1[s] = cpu_s(pids[s]);
    /* Latency below saturation: leases started at half the sustained rate. */
    gv[strlen(gv) - 1] = 'p';
    phase_result_t paced = phase_run(dpg, n_sat, n_tasks - n_sat, sat.e2e_rate / 2);
    /* The ceiling's latency at the same offered rate. */
    double raw_paced_rate, raw_paced_p50, raw_paced_p99;
    raw_ceiling(500, msg_len, sat.e2e_rate / 2, &raw_paced_rate, &raw_paced_p50, &raw_paced_p99);

    printf("  raw kafka produce -> consume, %zu-byte messages, flat out     %8.0f msg/s  (p50 %.1f ms, p99 %.1f ms: "
           "backlog)\n", msg_len, raw_rate, raw_p50 * 1e3, raw_p99 * 1e3);
    printf("  saturated, %d tasks: submissions accepted (HTTP 202)          %8.0f /s\n", n_sat, sat.submit_rate);
    printf("  saturated: submit -> validation task leased (sustained)      %8.0f /s  latency p50 %.0f ms  p99 %.0f ms "
           "(queueing)\n", sat.e2e_rate, sat.p50 * 1e3, sat.p99 * 1e3);
    printf("  saturated, dispatcher's record: submission row -> validation task row   %8.0f /s  p50 %.0f ms  p99 %.0f ms\n",
           sat.rec_rate, sat.rec_p50 * 1e3, sat.rec_p99 * 1e3);
    printf("  paced at %.0f submissions/s, %d tasks: latency submit 202 -> validation-queued  p50 %.1f ms  p99 %.1f ms"
           "  max %.1f ms\n", sat.e2e_rate / 2, n_tasks - n_sat, paced.p50 * 1e3, paced.p99 * 1e3, paced.max * 1e3);
    printf("  paced, dispatcher's record: p50 %.1f ms  p99 %.1f ms\n", paced.rec_p50 * 1e3, paced.rec_p99 * 1e3);
    printf("  raw kafka paced at the same rate, one hop: p50 %.1f ms  p99 %.1f ms\n", raw_paced_p50 * 1e3,
           raw_paced_p99 * 1e3);
    printf("  ratio sustained pipeline / raw kafka produce->consume %.4f (the pipeline crosses Kafka 3 times to the "
           "validation task)\n", sat.e2e_rate / raw_rate);
    stages(&svc);
    printf("  per service (saturated phase, %.1f s): CPU s, RSS KiB now/peak at the end\n", t_sat);
    for (int s = 0; s < S_COUNT; s++)
        printf("    %-18s %6.1f  %ld/%ld\n", names[s], cpu1[s] - cpu0[s], rss_kib(pids[s], "VmRSS:"),
               rss_kib(pids[s], "VmHWM:"));
    free(t_submit);
    free(t_queued);
    free(ann_tokens);
    free(val_tokens);
    pg_close(apg);
    pg_close(dpg);
    stop_services();
    service_destroy(&svc);
    return 0;
}
