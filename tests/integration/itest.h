/* itest: what the integration tests share: the stack's settings from the
 * environment (run/devstack.env), a run id that keeps runs on one stack
 * apart, child processes that are killed if a test fails, waiting for a
 * consumer group to catch up, reading a topic whole, a tiny HTTP client and
 * PostgreSQL probes.  Header-only (static inline) so each test binary stays
 * one file plus libannot; include it after <cmocka.h>. */
#ifndef ITEST_H
#define ITEST_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "event.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "redis.h"
#include "topics.h"

#define ITEST_DEADLINE_S 120 /* a guard against hanging, not a timing assertion */
#define ITEST_MAX_CHILDREN 16

static config_t *itest_cfg;
static topics_t itest_topics;
static char itest_run[16];
static int itest_spawned;
static char itest_name[64]; /* the test program's name: its services' log directory */
static pid_t itest_children[ITEST_MAX_CHILDREN];

/* Group setup: settings from the environment, the topic table, a run id. */
static inline int itest_setup(const char *name) {
    log_init(name, LOG_LEVEL_WARN);
    snprintf(itest_name, sizeof(itest_name), "%s", name);
    char err[512], path[1024];
    itest_cfg = config_new(NULL);
    if (config_load_env(itest_cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/topics.conf", config_str(itest_cfg, "config.dir"));
    /* topics.prefix (ANNOT_TOPICS_PREFIX) is the test runner's lane: the
     * services a test starts inherit it from the environment. */
    if (topics_load(&itest_topics, path, err, sizeof(err)) != 0 ||
        topics_prefix(&itest_topics, config_str(itest_cfg, "topics.prefix"), err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    char id[EVENT_ID_LEN];
    event_id_new(id);
    snprintf(itest_run, sizeof(itest_run), "r%.8s", id);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static inline void itest_teardown(void) {
    topics_free(&itest_topics);
    config_destroy(itest_cfg);
}

static inline const char *itest_topic(const char *role) {
    const topic_def_t *t = topics_find(&itest_topics, role);
    assert_non_null(t);
    return t->name;
}

/* Per-test teardown: a failed assertion must not leave children running into
 * the next test. */
static inline int itest_kill_children(void **state) {
    (void)state;
    for (int i = 0; i < ITEST_MAX_CHILDREN; i++) {
        if (itest_children[i] > 0 && kill(itest_children[i], SIGKILL) == 0) waitpid(itest_children[i], NULL, 0);
        itest_children[i] = 0;
    }
    return 0;
}

/* Starts argv[0] with its output in build/tests/logs/<test>/<log>.<run>.<n>.log
 * (the test runner prints their warnings when the test fails) and, when
 * crash_at is set, ANNOT_CRASH_AT. */
static inline pid_t itest_spawn(const char *log, const char *crash_at, char *const argv[]) {
    char logpath[256];
    snprintf(logpath, sizeof(logpath), "build/tests/logs/%s", itest_name);
    mkdir("build/tests/logs", 0755);
    mkdir(logpath, 0755);
    snprintf(logpath, sizeof(logpath), "build/tests/logs/%s/%s.%s.%d.log", itest_name, log, itest_run, ++itest_spawned);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A test killed (a CI timeout, ^C) takes its services with it. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        if (crash_at) setenv("ANNOT_CRASH_AT", crash_at, 1);
        else unsetenv("ANNOT_CRASH_AT");
        execv(argv[0], argv);
        _exit(127);
    }
    for (int i = 0; i < ITEST_MAX_CHILDREN; i++) {
        if (itest_children[i] == 0) {
            itest_children[i] = pid;
            break;
        }
    }
    return pid;
}

/* Waits for the child to end; returns its wait status. */
static inline int itest_wait(pid_t pid) {
    int status = 0;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (time(NULL) > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("child %d did not exit", (int)pid);
        }
        usleep(50 * 1000);
    }
    for (int i = 0; i < ITEST_MAX_CHILDREN; i++) {
        if (itest_children[i] == pid) itest_children[i] = 0;
    }
    return status;
}

static inline kafka_producer_t *itest_producer(void) {
    char err[512];
    kafka_producer_t *p = kafka_producer_new(itest_cfg, "itest", err, sizeof(err));
    if (p == NULL) fail_msg("producer: %s", err);
    return p;
}

/* Produces and waits for the delivery report; fills partition and offset. */
static inline void itest_produce(kafka_producer_t *p, const char *role, const char *key, const void *buf,
                                 size_t len, int32_t *partition, int64_t *offset) {
    char err[512];
    kafka_delivery_t d;
    assert_int_equal(kafka_produce(p, itest_topic(role), key, strlen(key), buf, len, &d, err, sizeof(err)), 0);
    if (kafka_producer_wait(p, &d, 1, err, sizeof(err)) != 0) fail_msg("delivery: %s", err);
    if (partition) *partition = d.partition;
    if (offset) *offset = d.offset;
}

static inline pg_t *itest_pg(const char *schema) {
    char err[512];
    pg_t *pg = pg_connect(config_str(itest_cfg, "database.url"), schema, 10, err, sizeof(err));
    if (pg == NULL) fail_msg("postgresql: %s", err);
    return pg;
}

/* A single number from sql with n text parameters ($1..$n); -1 when the
 * query fails (schema not made yet). */
static inline long long itest_pg_number_v(pg_t *pg, const char *sql, int n, const char *const *params) {
    char err[512];
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, sql, n, n ? params : NULL, err, sizeof(err));
    if (res == NULL) return -1;
    long long v = PQntuples(res) && !PQgetisnull(res, 0, 0) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    return v;
}

/* The same with one parameter ($1; NULL: none). */
static inline long long itest_pg_number_p(pg_t *pg, const char *sql, const char *param) {
    const char *params[1] = {param};
    return itest_pg_number_v(pg, sql, param ? 1 : 0, params);
}

static inline long long itest_pg_number(pg_t *pg, const char *sql) { return itest_pg_number_p(pg, sql, NULL); }

/* Waits until sql with n parameters gives at least want. */
static inline void itest_pg_wait_at_least_v(pg_t *pg, const char *sql, int n, const char *const *params,
                                            long long want) {
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (itest_pg_number_v(pg, sql, n, params) < want) {
        if (time(NULL) > deadline) fail_msg("'%s' ($1 = %s) never reached %lld", sql, n ? params[0] : "-", want);
        usleep(100 * 1000);
    }
}

/* The same with $1 = param (NULL: no parameter). */
static inline void itest_pg_wait_at_least_p(pg_t *pg, const char *sql, const char *param, long long want) {
    const char *params[1] = {param};
    itest_pg_wait_at_least_v(pg, sql, param ? 1 : 0, params, want);
}

static inline void itest_pg_wait_at_least(pg_t *pg, const char *sql, long long want) {
    itest_pg_wait_at_least_p(pg, sql, NULL, want);
}

/* Waits until the group's committed offsets reach the end of every
 * partition of the topic of role: then nothing is left to replay. */
static inline void itest_wait_caught_up(const char *group, const char *role) {
    char err[512];
    const char *const defaults[] = {"group.id", group, NULL};
    rd_kafka_conf_t *conf = kafka_conf_new(itest_cfg, "itest-lag", defaults, err, sizeof(err));
    assert_non_null(conf);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(rk);
    const topic_def_t *t = topics_find(&itest_topics, role);
    assert_non_null(t);
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    for (;;) {
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(t->partitions);
        for (int i = 0; i < t->partitions; i++) rd_kafka_topic_partition_list_add(parts, t->name, i);
        int behind = rd_kafka_committed(rk, parts, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR;
        for (int i = 0; i < parts->cnt && !behind; i++) {
            int64_t lo, hi;
            if (rd_kafka_query_watermark_offsets(rk, t->name, i, &lo, &hi, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
                behind = 1;
            else if (hi > 0 && parts->elems[i].offset < hi)
                behind = 1;
        }
        rd_kafka_topic_partition_list_destroy(parts);
        if (!behind) break;
        if (time(NULL) > deadline) fail_msg("group %s never caught up on %s", group, t->name);
        usleep(200 * 1000);
    }
    rd_kafka_destroy(rk);
}

/* Reads the whole topic of role from the beginning, calling fn per message. */
static inline void itest_read_all(const char *role, void (*fn)(const rd_kafka_message_t *, void *), void *opaque) {
    char err[512];
    const char *const defaults[] = {"group.id", "itest-reader", "enable.partition.eof", "true", NULL};
    rd_kafka_conf_t *conf = kafka_conf_new(itest_cfg, "itest-reader", defaults, err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(rk);
    const topic_def_t *t = topics_find(&itest_topics, role);
    assert_non_null(t);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(t->partitions);
    for (int i = 0; i < t->partitions; i++)
        rd_kafka_topic_partition_list_add(parts, t->name, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    int eofs = 0;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
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

/* One HTTP/1.1 request on loopback (Connection: close); token may be NULL.
 * Returns the status and copies the body into out. */
static inline int itest_http(const char *method, int port, const char *path, const char *token, const char *body,
                             size_t body_len, char *out, size_t out_len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %zu\r\n%s%s%s\r\n",
                     method, path, body_len, token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "");
    if (write(fd, head, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    /* The server may answer (413) and close before taking a large body. */
    for (size_t off = 0; off < body_len;) {
        ssize_t w = write(fd, body + off, body_len - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    /* Per call, not static: the load test calls this from many threads. */
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    ssize_t r;
    while (got < cap - 1 && (r = read(fd, buf + got, cap - 1 - got)) > 0) got += (size_t)r;
    buf[got] = '\0';
    close(fd);
    int status = -1;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    const char *b = strstr(buf, "\r\n\r\n");
    snprintf(out, out_len, "%s", b ? b + 4 : "");
    free(buf);
    return status;
}

static inline int itest_http_get(int port, const char *path, char *body, size_t len) {
    return itest_http("GET", port, path, NULL, NULL, 0, body, len);
}

/* Runs `annotctl users add` against the dispatcher schema and returns the
 * token from the last line of its output. */
static inline void itest_user_add(const char *schema, const char *role, const char *extra, char *out, size_t len) {
    char cmd[512], line[512] = "", last[512] = "";
    snprintf(cmd, sizeof(cmd), "bin/annotctl -X dispatcher.schema=%s users add --role %s --name 'T %s' %s", schema,
             role, role, extra ? extra : "");
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) snprintf(last, sizeof(last), "%s", line);
    assert_int_equal(pclose(f), 0);
    last[strcspn(last, "\n")] = '\0';
    assert_true(strncmp(last, "at_", 3) == 0);
    snprintf(out, len, "%s", last);
}

static inline int itest_free_port(void);

/* Starts bin/annot-dispatcher on free ports with its own schema, Redis
 * namespace and consumer group (all named after the run), and waits until
 * /readyz answers 200.  extra: more "-X" arguments, NULL-terminated;
 * crash_at: a fault point (common/fault.h), or NULL. */
static inline pid_t itest_dispatcher_start_at(const char *schema, int *http_port, int *ops_port,
                                              const char *const *extra, const char *crash_at) {
    *http_port = itest_free_port();
    *ops_port = itest_free_port();
    char a_schema[160], a_http[64], a_ops[64], a_ns[64], a_group[256];
    snprintf(a_schema, sizeof(a_schema), "dispatcher.schema=%s", schema);
    snprintf(a_http, sizeof(a_http), "http.addr=127.0.0.1:%d", *http_port);
    snprintf(a_ops, sizeof(a_ops), "ops.addr=127.0.0.1:%d", *ops_port);
    snprintf(a_ns, sizeof(a_ns), "dispatcher.redis.ns=%s", itest_run);
    snprintf(a_group, sizeof(a_group), "dispatcher.group=disp-%s-%s", itest_run, schema);
    char *argv[32] = {"bin/annot-dispatcher", "-X", a_schema, "-X", a_http, "-X", a_ops, "-X", a_ns, "-X", a_group};
    int n = 11;
    for (size_t i = 0; extra && extra[i] && n < 30; i++) {
        argv[n++] = "-X";
        argv[n++] = (char *)extra[i];
    }
    argv[n] = NULL;
    pid_t pid = itest_spawn("annot-dispatcher", crash_at, argv);
    char body[1 << 12];
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (itest_http("GET", *ops_port, "/readyz", NULL, NULL, 0, body, sizeof(body)) != 200) {
        if (time(NULL) > deadline) fail_msg("dispatcher never became ready");
        usleep(100 * 1000);
    }
    return pid;
}


/* Deletes every Redis key of this run's namespace in one script, as a
 * Redis restart without persistence would (all at once, never half). */
static inline pid_t itest_dispatcher_start(const char *schema, int *http_port, int *ops_port, const char *const *extra) {
    return itest_dispatcher_start_at(schema, http_port, ops_port, extra, NULL);
}

static inline void itest_redis_lose_everything(void) {
    char err[256];
    redis_t *r = redis_connect(config_str(itest_cfg, "redis.url"), err, sizeof(err));
    assert_non_null(r);
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "*%s:*", itest_run);
    redisReply *rep = redis_command(r, err, sizeof(err),
                                    "EVAL %s 0 %s",
                                    "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                                    "n = n + redis.call('DEL', k) end return n",
                                    pattern);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_true(rep->integer > 0);
    freeReplyObject(rep);
    redis_close(r);
}

/* A repeated submit's answer (again) is the first one's (first) under the
 * same id field, marked replayed. */
static inline void itest_assert_replayed(const char *first, const char *again, const char *id_field) {
    json_t *a = json_loads(first, 0, NULL), *b = json_loads(again, 0, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(a, id_field)), json_string_value(json_object_get(b, id_field)));
    assert_true(json_is_true(json_object_get(b, "replayed")));
    json_decref(a);
    json_decref(b);
}

/* SIGTERMs a service and checks that it stopped cleanly (exit 0). */
static inline void itest_stop_cleanly(pid_t pid) {
    kill(pid, SIGTERM);
    int st = itest_wait(pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* A port that was free a moment ago (for a child's ops.addr). */
static inline int itest_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    socklen_t sl = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    close(fd);
    return ntohs(sin.sin_port);
}

#endif
