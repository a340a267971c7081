/* Integration: the consumer pipeline on a real stack (Kafka, PostgreSQL).
 *
 *  - exactly once across kill -9: events are produced, itest_consumer is
 *    killed between its PostgreSQL commit and its offset store, again just
 *    before the store, and once more from outside at an arbitrary moment; a
 *    last instance finishes.  Every event must be applied exactly once, and
 *    every derived output published, with the id derived from its input.
 *  - dead letters: undecodable bytes and an invalid header land on the
 *    dead-letter topic with their bytes, place and reason, and the consumer
 *    goes on to the valid events after them.
 *  - the service surface: /healthz, /readyz, /metrics, clean SIGTERM exit.
 *
 * Connection settings come from the environment (run/devstack.env); the same
 * tests run on the devbroker and on a real Apache Kafka broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "annot/v1/deadletter.pb-c.h"
#include "annot/v1/task.pb-c.h"
#include "config.h"
#include "event.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "topics.h"

#define CONSUMER_BIN "build/tests/itest_consumer"
#define DEADLINE_S 120 /* a guard against hanging, not a timing assertion */

static config_t *cfg;
static topics_t topics;
static char run_id[16];
static int spawn_count;
static pid_t children[16]; /* killed at teardown, so a failed test leaves none */

static const char *topic_of(const char *role) {
    const topic_def_t *t = topics_find(&topics, role);
    assert_non_null(t);
    return t->name;
}

static int setup(void **state) {
    (void)state;
    log_init("test_pipeline", LOG_LEVEL_WARN);
    char err[512];
    cfg = config_new(NULL);
    if (config_load_env(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    char path[1024];
    snprintf(path, sizeof(path), "%s/topics.conf", config_str(cfg, "config.dir"));
    if (topics_load(&topics, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    char id[EVENT_ID_LEN];
    event_id_new(id);
    snprintf(run_id, sizeof(run_id), "r%.8s", id);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* Per test: a failed assertion must not leave consumers running into the
 * next test. */
static int kill_children(void **state) {
    (void)state;
    for (int i = 0; i < 16; i++) {
        if (children[i] > 0 && kill(children[i], SIGKILL) == 0) waitpid(children[i], NULL, 0);
        children[i] = 0;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    topics_free(&topics);
    config_destroy(cfg);
    return 0;
}

/* ---- producing ---------------------------------------------------------- */

typedef struct sent {
    char event_id[EVENT_ID_LEN];
    char task_id[64];
    int amount;
    int32_t partition;
    int64_t offset;
} sent_t;

static void produce_raw(kafka_producer_t *p, const char *key, const void *buf, size_t len, sent_t *s) {
    char err[512];
    kafka_delivery_t d;
    assert_int_equal(kafka_produce(p, topic_of("selftest"), key, strlen(key), buf, len, &d, err, sizeof(err)), 0);
    if (kafka_producer_wait(p, &d, 1, err, sizeof(err)) != 0) fail_msg("delivery: %s", err);
    s->partition = d.partition;
    s->offset = d.offset;
}

/* A TaskEvent with the given event id (which may be invalid on purpose). */
static void produce_task(kafka_producer_t *p, const char *event_id, const char *task_id, int amount, sent_t *s) {
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, event_id, "test_pipeline", "", "g-test");
    Annot__V1__Task task = ANNOT__V1__TASK__INIT;
    task.task_id = (char *)task_id;
    task.kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    task.main_object = "rice";
    task.priority = amount;
    Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
    ev.header = &hdr;
    ev.task = &task;
    size_t len = annot__v1__task_event__get_packed_size(&ev);
    uint8_t *buf = malloc(len);
    annot__v1__task_event__pack(&ev, buf);
    snprintf(s->event_id, sizeof(s->event_id), "%s", event_id);
    snprintf(s->task_id, sizeof(s->task_id), "%s", task_id);
    s->amount = amount;
    produce_raw(p, task_id, buf, len, s);
    free(buf);
}

static kafka_producer_t *producer_new(void) {
    char err[512];
    kafka_producer_t *p = kafka_producer_new(cfg, "test_pipeline", err, sizeof(err));
    if (p == NULL) fail_msg("producer: %s", err);
    return p;
}

/* ---- the consumer process ----------------------------------------------- */

typedef struct consumer_opts {
    const char *schema, *group, *prefix, *crash_at;
    int ops_port;
} consumer_opts_t;

static pid_t consumer_spawn(const consumer_opts_t *o) {
    char logpath[256];
    snprintf(logpath, sizeof(logpath), "build/tests/itest_consumer.%s.%d.log", run_id, ++spawn_count);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        if (o->crash_at) setenv("ANNOT_CRASH_AT", o->crash_at, 1);
        else unsetenv("ANNOT_CRASH_AT");
        char schema[128], group[128], prefix[128], ops[64];
        snprintf(schema, sizeof(schema), "itest.schema=%s", o->schema);
        snprintf(group, sizeof(group), "itest.group=%s", o->group);
        snprintf(prefix, sizeof(prefix), "itest.prefix=%s", o->prefix);
        snprintf(ops, sizeof(ops), "ops.addr=127.0.0.1:%d", o->ops_port);
        /* Short session and commit intervals: a killed member leaves the
         * group in seconds and the test sees commits soon. */
        /* Small batches: many commits for the crash points to land between. */
        execl(CONSUMER_BIN, CONSUMER_BIN, "-X", schema, "-X", group, "-X", prefix, "-X", ops, "-X",
              "kafka.session.timeout.ms=6000", "-X", "kafka.auto.commit.interval.ms=200", "-X",
              "pipeline.batch.max=7", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 16; i++) {
        if (children[i] == 0) {
            children[i] = pid;
            break;
        }
    }
    return pid;
}

/* Waits for the process to end; returns its wait status. */
static int consumer_wait(pid_t pid) {
    int status = 0;
    time_t deadline = time(NULL) + DEADLINE_S;
    for (int i = 0; i < 16; i++) {
        if (children[i] == pid) children[i] = 0;
    }
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (time(NULL) > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("consumer %d did not exit", (int)pid);
        }
        usleep(50 * 1000);
    }
    return status;
}

/* ---- observing ----------------------------------------------------------- */

static pg_t *pg_open(const char *schema) {
    char err[512];
    pg_t *pg = pg_connect(config_str(cfg, "database.url"), schema, 10, err, sizeof(err));
    if (pg == NULL) fail_msg("postgresql: %s", err);
    return pg;
}

/* A single number from sql; -1 when the query fails (schema not made yet). */
static long long pg_number(pg_t *pg, const char *sql) {
    char err[512];
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, sql, 0, NULL, err, sizeof(err));
    if (res == NULL) return -1;
    long long n = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    return n;
}

static void wait_rows_at_least(pg_t *pg, long long want) {
    time_t deadline = time(NULL) + DEADLINE_S;
    while (pg_number(pg, "SELECT count(*) FROM effects") < want) {
        if (time(NULL) > deadline) fail_msg("effects never reached %lld rows", want);
        usleep(100 * 1000);
    }
}

/* Waits until the group's committed offsets reach the end of every
 * partition of the selftest topic: then nothing is left to replay. */
static void wait_caught_up(const char *group) {
    char err[512];
    const char *const defaults[] = {"group.id", group, NULL};
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, "test_pipeline-lag", defaults, err, sizeof(err));
    assert_non_null(conf);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(rk);
    const topic_def_t *t = topics_find(&topics, "selftest");
    time_t deadline = time(NULL) + DEADLINE_S;
    for (;;) {
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(t->partitions);
        for (int i = 0; i < t->partitions; i++) rd_kafka_topic_partition_list_add(parts, t->name, i);
        int behind = 0;
        if (rd_kafka_committed(rk, parts, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) behind = 1;
        for (int i = 0; i < parts->cnt && !behind; i++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(rk, t->name, i, &lo, &hi, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
                behind = 1;
            else if (hi > 0 && parts->elems[i].offset < hi)
                behind = 1;
        }
        rd_kafka_topic_partition_list_destroy(parts);
        if (!behind) break;
        if (time(NULL) > deadline) fail_msg("group %s never caught up", group);
        usleep(200 * 1000);
    }
    rd_kafka_destroy(rk);
}

/* Reads a whole topic from the beginning and calls fn for each message. */
static void topic_read_all(const char *role, void (*fn)(const rd_kafka_message_t *, void *), void *opaque) {
    char err[512];
    const char *const defaults[] = {"group.id", "test_pipeline-reader", "enable.partition.eof", "true", NULL};
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, "test_pipeline-reader", defaults, err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(rk);
    const topic_def_t *t = topics_find(&topics, role);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(t->partitions);
    for (int i = 0; i < t->partitions; i++)
        rd_kafka_topic_partition_list_add(parts, t->name, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    int eofs = 0;
    time_t deadline = time(NULL) + DEADLINE_S;
    while (eofs < t->partitions) {
        if (time(NULL) > deadline) fail_msg("reading %s timed out", t->name);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (m == NULL) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) eofs++;
        else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) fn(m, opaque);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* A plain HTTP GET; returns the status and copies the body. */
static int http_get(int port, const char *path, char *body, size_t len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    static char buf[1 << 16];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof(buf) - 1 && (r = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0) got += (size_t)r;
    buf[got] = '\0';
    close(fd);
    int status = -1;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    const char *b = strstr(buf, "\r\n\r\n");
    snprintf(body, len, "%s", b ? b + 4 : "");
    return status;
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

/* ---- exactly once across kill -9 ----------------------------------------- */

#define N_EVENTS 300

typedef struct outputs {
    const char *prefix;
    char (*ids)[EVENT_ID_LEN];
    int count;
    int cap;
} outputs_t;

static void collect_output(const rd_kafka_message_t *m, void *opaque) {
    outputs_t *o = opaque;
    if (m->key_len < strlen(o->prefix) || memcmp(m->key, o->prefix, strlen(o->prefix)) != 0) return;
    Annot__V1__TaskEvent *ev = annot__v1__task_event__unpack(NULL, m->len, m->payload);
    assert_non_null(ev);
    assert_true(o->count < o->cap);
    snprintf(o->ids[o->count++], EVENT_ID_LEN, "%s", ev->header->event_id);
    annot__v1__task_event__free_unpacked(ev, NULL);
}

static int id_cmp(const void *a, const void *b) { return strcmp(a, b); }

static void test_exactly_once_across_kill9(void **state) {
    (void)state;
    char schema[64], group[64], prefix[64];
    snprintf(schema, sizeof(schema), "itest_%s", run_id);
    snprintf(group, sizeof(group), "itest-once-%s", run_id);
    snprintf(prefix, sizeof(prefix), "%s-once-", run_id);

    static sent_t sent[N_EVENTS];
    long long total = 0;
    kafka_producer_t *p = producer_new();
    for (int i = 0; i < N_EVENTS; i++) {
        char id[EVENT_ID_LEN], task[96];
        event_id_new(id);
        snprintf(task, sizeof(task), "%s%04d", prefix, i);
        produce_task(p, id, task, i + 1, &sent[i]);
        total += i + 1;
    }
    kafka_producer_destroy(p, 5000);

    consumer_opts_t o = {schema, group, prefix, "pipeline.after_commit:6", free_port()};
    /* 1: killed right after its 6th commit, before those offsets are stored. */
    int st = consumer_wait(consumer_spawn(&o));
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    /* 2: killed after publishing the outbox, before storing the offset. */
    o.crash_at = "pipeline.before_store:5";
    st = consumer_wait(consumer_spawn(&o));
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    /* 3: kill -9 from outside while it works. */
    pg_t *pg = pg_open(schema);
    o.crash_at = NULL;
    pid_t pid = consumer_spawn(&o);
    long long before = pg_number(pg, "SELECT count(*) FROM effects");
    wait_rows_at_least(pg, before + 20 < N_EVENTS ? before + 20 : N_EVENTS);
    kill(pid, SIGKILL);
    consumer_wait(pid);
    /* 4: finishes, then stops on SIGTERM, cleanly. */
    pid = consumer_spawn(&o);
    wait_caught_up(group);
    kill(pid, SIGTERM);
    st = consumer_wait(pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    /* Every event applied once: the rows, their distinct ids, the sum. */
    assert_int_equal(pg_number(pg, "SELECT count(*) FROM effects"), N_EVENTS);
    assert_int_equal(pg_number(pg, "SELECT count(DISTINCT event_id) FROM effects"), N_EVENTS);
    assert_int_equal(pg_number(pg, "SELECT sum(amount) FROM effects"), total);
    assert_int_equal(pg_number(pg, "SELECT count(*) FROM outbox"), 0);
    for (int i = 0; i < N_EVENTS; i += 37) {
        const char *params[1] = {sent[i].event_id};
        char err[256];
        PGresult *res = pg_query(pg, PGRES_TUPLES_OK, "SELECT amount FROM effects WHERE event_id = $1", 1, params,
                                 err, sizeof(err));
        assert_non_null(res);
        assert_int_equal(PQntuples(res), 1);
        assert_int_equal(atoi(PQgetvalue(res, 0, 0)), sent[i].amount);
        PQclear(res);
    }
    pg_close(pg);

    /* Every output published, each under the id derived from its input;
     * replays may repeat an output, never invent a new one. */
    outputs_t out = {prefix, calloc(4 * N_EVENTS, EVENT_ID_LEN), 0, 4 * N_EVENTS};
    topic_read_all("selftest-out", collect_output, &out);
    qsort(out.ids, (size_t)out.count, EVENT_ID_LEN, id_cmp);
    int distinct = 0;
    for (int i = 0; i < out.count; i++) distinct += i == 0 || strcmp(out.ids[i], out.ids[i - 1]) != 0;
    assert_int_equal(distinct, N_EVENTS);
    for (int i = 0; i < N_EVENTS; i++) {
        char want[EVENT_ID_LEN];
        event_id_derive(want, sent[i].event_id, "selftest-out");
        assert_non_null(bsearch(want, out.ids, (size_t)out.count, EVENT_ID_LEN, id_cmp));
    }
    free(out.ids);
}

/* ---- dead letters ---------------------------------------------------------- */

typedef struct dead {
    const char *prefix;
    const char *group;
    Annot__V1__DeadLetter *found[8];
    int count;
} dead_t;

static void collect_dead(const rd_kafka_message_t *m, void *opaque) {
    dead_t *d = opaque;
    Annot__V1__DeadLetter *dl = annot__v1__dead_letter__unpack(NULL, m->len, m->payload);
    assert_non_null(dl);
    if (dl->key.len >= strlen(d->prefix) && memcmp(dl->key.data, d->prefix, strlen(d->prefix)) == 0 &&
        strcmp(dl->consumer_group, d->group) == 0 && d->count < 8)
        d->found[d->count++] = dl;
    else
        annot__v1__dead_letter__free_unpacked(dl, NULL);
}

static void test_dead_letters_and_service_surface(void **state) {
    (void)state;
    char schema[64], group[64], prefix[64], key[96];
    snprintf(schema, sizeof(schema), "itest_dlq_%s", run_id);
    snprintf(group, sizeof(group), "itest-dlq-%s", run_id);
    snprintf(prefix, sizeof(prefix), "%s-dlq-", run_id);

    kafka_producer_t *p = producer_new();
    static const char garbage[] = "\xff\xfe not a protobuf \x00\x01";
    sent_t bad_bytes, bad_header, good[5];
    snprintf(key, sizeof(key), "%sgarbage", prefix);
    produce_raw(p, key, garbage, sizeof(garbage) - 1, &bad_bytes);
    snprintf(key, sizeof(key), "%sbadid", prefix);
    produce_task(p, "not-a-uuid", key, 1, &bad_header);
    for (int i = 0; i < 5; i++) {
        char id[EVENT_ID_LEN];
        event_id_new(id);
        snprintf(key, sizeof(key), "%sok%d", prefix, i);
        produce_task(p, id, key, 10, &good[i]);
    }
    kafka_producer_destroy(p, 5000);

    consumer_opts_t o = {schema, group, prefix, NULL, free_port()};
    pid_t pid = consumer_spawn(&o);
    wait_caught_up(group);

    /* The consumer went on past the bad messages. */
    pg_t *pg = pg_open(schema);
    assert_int_equal(pg_number(pg, "SELECT count(*) FROM effects"), 5);
    assert_int_equal(pg_number(pg, "SELECT sum(amount) FROM effects"), 50);
    pg_close(pg);

    /* The service surface, while it runs. */
    char body[1 << 16];
    assert_int_equal(http_get(o.ops_port, "/healthz", body, sizeof(body)), 200);
    assert_int_equal(http_get(o.ops_port, "/readyz", body, sizeof(body)), 200);
    assert_int_equal(http_get(o.ops_port, "/metrics", body, sizeof(body)), 200);
    /* At least our two: on a long-lived stack the topic also holds earlier
     * runs' bad messages, which this new group dead-letters too. */
    const char *m = strstr(body, "annot_events_consumed_total{outcome=\"dead_lettered\"} ");
    assert_non_null(m);
    assert_true(atoi(strchr(m, '}') + 2) >= 2);
    assert_int_equal(http_get(o.ops_port, "/nope", body, sizeof(body)), 404);

    kill(pid, SIGTERM);
    int st = consumer_wait(pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    /* Both bad messages are on the dead-letter topic, with their bytes,
     * their place and why. */
    dead_t d = {prefix, group, {0}, 0};
    topic_read_all("dlq", collect_dead, &d);
    assert_int_equal(d.count, 2);
    int seen_bytes = 0, seen_header = 0;
    for (int i = 0; i < d.count; i++) {
        Annot__V1__DeadLetter *dl = d.found[i];
        assert_string_equal(dl->topic, topic_of("selftest"));
        assert_true(event_id_valid(dl->header->event_id));
        assert_true(strlen(dl->reason) > 0);
        if (dl->reason_code == ANNOT__V1__DEAD_LETTER_REASON__DEAD_LETTER_REASON_DECODE_ERROR) {
            seen_bytes++;
            assert_int_equal(dl->payload.len, sizeof(garbage) - 1);
            assert_memory_equal(dl->payload.data, garbage, sizeof(garbage) - 1);
            assert_int_equal(dl->partition, bad_bytes.partition);
            assert_int_equal(dl->offset, bad_bytes.offset);
        } else {
            assert_int_equal(dl->reason_code, ANNOT__V1__DEAD_LETTER_REASON__DEAD_LETTER_REASON_VALIDATION_ERROR);
            seen_header++;
            assert_non_null(strstr(dl->reason, "event_id"));
            assert_int_equal(dl->partition, bad_header.partition);
            assert_int_equal(dl->offset, bad_header.offset);
        }
        annot__v1__dead_letter__free_unpacked(dl, NULL);
    }
    assert_int_equal(seen_bytes, 1);
    assert_int_equal(seen_header, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_exactly_once_across_kill9, kill_children),
        cmocka_unit_test_teardown(test_dead_letters_and_service_surface, kill_children),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
