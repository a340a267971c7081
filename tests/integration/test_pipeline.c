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
 *  - data the database refuses for good (a CHECK, an index entry over the
 *    size limit) is dead-lettered, not retried for ever; the rest of its
 *    batch is applied once; replayed once its cause is gone, it applies.
 *  - the service surface: /healthz, /readyz, /metrics, clean SIGTERM exit.
 *
 * Connection settings come from the environment (run/devstack.env); the same
 * tests run on the devbroker and on a real Apache Kafka broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "annot/v1/deadletter.pb-c.h"
#include "annot/v1/task.pb-c.h"
#include "itest.h"
#include "outbox.h"

#define CONSUMER_BIN "build/tests/itest_consumer"

static int setup(void **state) {
    (void)state;
    return itest_setup("test_pipeline");
}

static int teardown(void **state) {
    (void)state;
    itest_teardown();
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
    itest_produce(p, "selftest", task_id, buf, len, &s->partition, &s->offset);
    free(buf);
}

/* ---- the consumer process ----------------------------------------------- */

typedef struct consumer_opts {
    const char *schema, *group, *prefix, *crash_at;
    int ops_port;
} consumer_opts_t;

static pid_t consumer_spawn(const consumer_opts_t *o) {
    char schema[128], group[128], prefix[128], ops[64];
    snprintf(schema, sizeof(schema), "itest.schema=%s", o->schema);
    snprintf(group, sizeof(group), "itest.group=%s", o->group);
    snprintf(prefix, sizeof(prefix), "itest.prefix=%s", o->prefix);
    snprintf(ops, sizeof(ops), "ops.addr=127.0.0.1:%d", o->ops_port);
    /* Short session and commit intervals: a killed member leaves the group
     * in seconds and the test sees commits soon.  Small batches: many
     * commits for the crash points to land between. */
    char *const argv[] = {CONSUMER_BIN, "-X", schema, "-X", group, "-X", prefix, "-X", ops,
                          "-X", "kafka.session.timeout.ms=6000", "-X", "kafka.auto.commit.interval.ms=200",
                          "-X", "pipeline.batch.max=7", NULL};
    return itest_spawn("itest_consumer", o->crash_at, argv);
}

/* SIGTERM, and the consumer exits cleanly (status 0). */
static void consumer_stop(pid_t pid) {
    kill(pid, SIGTERM);
    int st = itest_wait(pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* A consumer of this run's events, once it has consumed all there is. */
static pid_t consumer_caught_up(const consumer_opts_t *o) {
    pid_t pid = consumer_spawn(o);
    /* Caught up: an event retried for ever would hold its partition's
     * offset back, and this would time out. */
    itest_wait_caught_up(o->group, "selftest");
    return pid;
}

/* A valid event of this run, key <prefix>ok<i>. */
static void produce_ok(kafka_producer_t *p, const char *prefix, int i, int amount, sent_t *s) {
    char id[EVENT_ID_LEN], key[96];
    event_id_new(id);
    snprintf(key, sizeof(key), "%sok%d", prefix, i);
    produce_task(p, id, key, amount, s);
}

/* The effects table holds count rows of sum amounts. */
static void effects_are(pg_t *pg, long long count, long long sum) {
    assert_int_equal(itest_pg_number(pg, "SELECT count(*) FROM effects"), count);
    assert_int_equal(itest_pg_number(pg, "SELECT sum(amount) FROM effects"), sum);
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
    snprintf(schema, sizeof(schema), "itest_%s", itest_run);
    snprintf(group, sizeof(group), "itest-once-%s", itest_run);
    snprintf(prefix, sizeof(prefix), "%s-once-", itest_run);

    static sent_t sent[N_EVENTS];
    long long total = 0;
    kafka_producer_t *p = itest_producer();
    for (int i = 0; i < N_EVENTS; i++) {
        char id[EVENT_ID_LEN], task[96];
        event_id_new(id);
        snprintf(task, sizeof(task), "%s%04d", prefix, i);
        produce_task(p, id, task, i + 1, &sent[i]);
        total += i + 1;
    }
    kafka_producer_destroy(p, 5000);

    consumer_opts_t o = {schema, group, prefix, "pipeline.after_commit:6", itest_free_port()};
    /* 1: killed right after its 6th commit, before those offsets are stored. */
    int st = itest_wait(consumer_spawn(&o));
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    /* 2: killed after publishing the outbox, before storing the offset. */
    o.crash_at = "pipeline.before_store:5";
    st = itest_wait(consumer_spawn(&o));
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    /* 3: kill -9 from outside while it works. */
    pg_t *pg = itest_pg(schema);
    o.crash_at = NULL;
    pid_t pid = consumer_spawn(&o);
    long long before = itest_pg_number(pg, "SELECT count(*) FROM effects");
    itest_pg_wait_at_least(pg, "SELECT count(*) FROM effects", before + 20 < N_EVENTS ? before + 20 : N_EVENTS);
    kill(pid, SIGKILL);
    itest_wait(pid);
    /* 4: finishes, then stops on SIGTERM, cleanly. */
    consumer_stop(consumer_caught_up(&o));

    /* Every event applied once: the rows, their distinct ids, the sum. */
    effects_are(pg, N_EVENTS, total);
    assert_int_equal(itest_pg_number(pg, "SELECT count(DISTINCT event_id) FROM effects"), N_EVENTS);
    assert_int_equal(itest_pg_number(pg, "SELECT count(*) FROM outbox"), 0);
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
    itest_read_all("selftest-out", collect_output, &out);
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

typedef struct copies {
    const char *prefix;
    const char *bytes;
    size_t len;
    int count;
} copies_t;

/* Counts messages of this run that carry exactly the given bytes. */
static void count_copies(const rd_kafka_message_t *m, void *opaque) {
    copies_t *c = opaque;
    if (m->key_len >= strlen(c->prefix) && memcmp(m->key, c->prefix, strlen(c->prefix)) == 0 && m->len == c->len &&
        memcmp(m->payload, c->bytes, c->len) == 0)
        c->count++;
}

static void test_dead_letters_and_service_surface(void **state) {
    (void)state;
    char schema[64], group[64], prefix[64], key[96];
    snprintf(schema, sizeof(schema), "itest_dlq_%s", itest_run);
    snprintf(group, sizeof(group), "itest-dlq-%s", itest_run);
    snprintf(prefix, sizeof(prefix), "%s-dlq-", itest_run);

    kafka_producer_t *p = itest_producer();
    static const char garbage[] = "\xff\xfe not a protobuf \x00\x01";
    sent_t bad_bytes, bad_header, good[5];
    snprintf(key, sizeof(key), "%sgarbage", prefix);
    itest_produce(p, "selftest", key, garbage, sizeof(garbage) - 1, &bad_bytes.partition, &bad_bytes.offset);
    snprintf(key, sizeof(key), "%sbadid", prefix);
    produce_task(p, "not-a-uuid", key, 1, &bad_header);
    for (int i = 0; i < 5; i++) produce_ok(p, prefix, i, 10, &good[i]);
    kafka_producer_destroy(p, 5000);

    consumer_opts_t o = {schema, group, prefix, NULL, itest_free_port()};
    pid_t pid = consumer_caught_up(&o);

    /* The consumer went on past the bad messages. */
    pg_t *pg = itest_pg(schema);
    effects_are(pg, 5, 50);
    pg_close(pg);

    /* The service surface, while it runs. */
    char body[1 << 16];
    assert_int_equal(itest_http_get(o.ops_port, "/healthz", body, sizeof(body)), 200);
    assert_int_equal(itest_http_get(o.ops_port, "/readyz", body, sizeof(body)), 200);
    assert_int_equal(itest_http_get(o.ops_port, "/metrics", body, sizeof(body)), 200);
    /* At least our two: on a long-lived stack the topic also holds earlier
     * runs' bad messages, which this new group dead-letters too. */
    const char *m = strstr(body, "annot_events_consumed_total{outcome=\"dead_lettered\"} ");
    assert_non_null(m);
    assert_true(atoi(strchr(m, '}') + 2) >= 2);
    assert_int_equal(itest_http_get(o.ops_port, "/nope", body, sizeof(body)), 404);

    consumer_stop(pid);

    /* Both bad messages are on the dead-letter topic, with their bytes,
     * their place and why. */
    dead_t d = {prefix, group, {0}, 0};
    itest_read_all("dlq", collect_dead, &d);
    assert_int_equal(d.count, 2);
    int seen_bytes = 0, seen_header = 0;
    char garbage_dead_id[EVENT_ID_LEN] = "";
    for (int i = 0; i < d.count; i++) {
        Annot__V1__DeadLetter *dl = d.found[i];
        assert_string_equal(dl->topic, itest_topic("selftest"));
        assert_true(event_id_valid(dl->header->event_id));
        assert_true(strlen(dl->reason) > 0);
        if (dl->reason_code == ANNOT__V1__DEAD_LETTER_REASON__DEAD_LETTER_REASON_DECODE_ERROR) {
            seen_bytes++;
            assert_int_equal(dl->payload.len, sizeof(garbage) - 1);
            assert_memory_equal(dl->payload.data, garbage, sizeof(garbage) - 1);
            assert_int_equal(dl->partition, bad_bytes.partition);
            assert_int_equal(dl->offset, bad_bytes.offset);
            snprintf(garbage_dead_id, sizeof(garbage_dead_id), "%s", dl->header->event_id);
            /* A consumer killed between publishing a dead letter and storing
             * its offset publishes it again, under the same id: do that here. */
            uint8_t again[1024];
            assert_true(annot__v1__dead_letter__get_packed_size(dl) <= sizeof(again));
            size_t len = annot__v1__dead_letter__pack(dl, again);
            kafka_producer_t *dp = itest_producer();
            snprintf(key, sizeof(key), "%sgarbage", prefix);
            itest_produce(dp, "dlq", key, again, len, NULL, NULL);
            kafka_producer_destroy(dp, 5000);
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

    /* An operator lists the dead letters (each once, though the garbage's
     * was published twice) and replays one: its original bytes and key go
     * back on the original topic. */
    char cmd[256], line[4096];
    snprintf(cmd, sizeof(cmd), "bin/annotctl dlq list");
    FILE *f = popen(cmd, "r");
    int listed = 0;
    while (fgets(line, sizeof(line), f)) listed += strstr(line, garbage_dead_id) != NULL;
    assert_int_equal(pclose(f), 0);
    assert_int_equal(listed, 1);
    snprintf(cmd, sizeof(cmd), "bin/annotctl dlq replay %s >/dev/null", garbage_dead_id);
    assert_int_equal(system(cmd), 0);
    copies_t copies = {prefix, garbage, sizeof(garbage) - 1, 0};
    itest_read_all("selftest", count_copies, &copies);
    assert_int_equal(copies.count, 2);
    assert_int_not_equal(system("bin/annotctl dlq replay 00000000-0000-4000-8000-000000000000 2>/dev/null"), 0);
}

/* ---- data the database refuses ----------------------------------------------- */

static void test_refused_data_is_dead_lettered(void **state) {
    (void)state;
    char schema[64], group[64], prefix[64], key[8192];
    snprintf(schema, sizeof(schema), "itest_ref_%s", itest_run);
    snprintf(group, sizeof(group), "itest-ref-%s", itest_run);
    snprintf(prefix, sizeof(prefix), "%s-ref-", itest_run);

    /* Eight good events with, among them, one the table's CHECK refuses
     * (a negative amount) and one whose task id, 6000 letters that do not
     * compress, is too large for a btree index entry: both arrive in the
     * middle of a batch (at most 7). */
    kafka_producer_t *p = itest_producer();
    sent_t good[8], negative, long_id;
    char id[EVENT_ID_LEN];
    for (int i = 0; i < 8; i++) {
        if (i == 2) {
            event_id_new(id);
            snprintf(key, sizeof(key), "%snegative", prefix);
            produce_task(p, id, key, -5, &negative);
        }
        if (i == 5) {
            static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            size_t o = (size_t)snprintf(key, sizeof(key), "%slong-", prefix);
            unsigned x = 2463534242u;
            for (int k = 0; k < 6000; k++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift32 */
                key[o++] = letters[x % 62];
            }
            key[o] = '\0';
            event_id_new(id);
            produce_task(p, id, key, 10, &long_id);
        }
        produce_ok(p, prefix, i, 10, &good[i]);
    }
    kafka_producer_destroy(p, 5000);

    /* Caught up: the refused events are not retried for ever. */
    consumer_opts_t o = {schema, group, prefix, NULL, itest_free_port()};
    pid_t pid = consumer_caught_up(&o);

    /* Every good event once, whatever batch it shared with a refused one. */
    pg_t *pg = itest_pg(schema);
    effects_are(pg, 8, 80);
    outputs_t out = {prefix, calloc(32, EVENT_ID_LEN), 0, 32};
    itest_read_all("selftest-out", collect_output, &out);
    assert_int_equal(out.count, 8);
    free(out.ids);

    /* The two refused ones are dead letters, with PostgreSQL's reason. */
    dead_t d = {prefix, group, {0}, 0};
    itest_read_all("dlq", collect_dead, &d);
    assert_int_equal(d.count, 2);
    char negative_dead_id[EVENT_ID_LEN] = "";
    int seen_check = 0, seen_index = 0;
    for (int i = 0; i < d.count; i++) {
        Annot__V1__DeadLetter *dl = d.found[i];
        assert_int_equal(dl->reason_code, ANNOT__V1__DEAD_LETTER_REASON__DEAD_LETTER_REASON_PROCESSING_ERROR);
        assert_non_null(strstr(dl->reason, "the database refuses it"));
        if (dl->offset == negative.offset && dl->partition == negative.partition) {
            seen_check++;
            assert_non_null(strstr(dl->reason, "effects_amount_not_negative"));
            snprintf(negative_dead_id, sizeof(negative_dead_id), "%s", dl->header->event_id);
        } else {
            assert_int_equal(dl->offset, long_id.offset);
            assert_int_equal(dl->partition, long_id.partition);
            seen_index++;
            assert_non_null(strstr(dl->reason, "effects_task"));
        }
        annot__v1__dead_letter__free_unpacked(dl, NULL);
    }
    assert_int_equal(seen_check, 1);
    assert_int_equal(seen_index, 1);

    /* The operator's way (OPERATIONS.md): the cause goes, the dead letter is
     * replayed, and the event applies. */
    char err[512], cmd[256];
    assert_true(pg_command(pg, "ALTER TABLE effects DROP CONSTRAINT effects_amount_not_negative", 0, NULL, err,
                           sizeof(err)) >= 0);
    snprintf(cmd, sizeof(cmd), "bin/annotctl dlq replay %s >/dev/null", negative_dead_id);
    assert_int_equal(system(cmd), 0);
    itest_pg_wait_at_least_v(pg, "SELECT count(*) FROM effects", 0, NULL, 9);
    effects_are(pg, 9, 75);
    pg_close(pg);
    consumer_stop(pid);
}

typedef struct keyed {
    const char *key;
    int count;
} keyed_t;

static void count_keyed(const rd_kafka_message_t *m, void *opaque) {
    keyed_t *k = opaque;
    k->count += m->key_len == strlen(k->key) && memcmp(m->key, k->key, m->key_len) == 0;
}

/* PostgreSQL drops the connection after a batch committed and before its
 * outbox went out (a restart, as in the fault suite): the relay's retry
 * connects again and publishes the row, once, instead of failing with "no
 * connection to the server" until the process dies. */
static void test_outbox_relay_reconnects(void **state) {
    (void)state;
    char schema[64], key[96], err[512];
    snprintf(schema, sizeof(schema), "itest_ob_%s", itest_run);
    snprintf(key, sizeof(key), "%s-outbox", itest_run);
    pg_t *pg = itest_pg(schema);
    assert_int_equal(pg_migrate(pg, "tests/integration/migrations", err, sizeof(err)), 0);
    assert_int_equal(outbox_add(pg, itest_topic("selftest-out"), key, strlen(key), "row", 3, err, sizeof(err)), 0);

    pg_t *killer = itest_pg(schema);
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", PQbackendPID(pg_conn(pg)));
    const char *params[1] = {pid};
    PGresult *res = pg_query(killer, PGRES_TUPLES_OK, "SELECT pg_terminate_backend($1::int, 5000)", 1, params, err,
                             sizeof(err));
    assert_non_null(res);
    PQclear(res);
    pg_close(killer);

    kafka_producer_t *p = itest_producer();
    size_t published = 0, total = 0;
    /* The first relay finds the connection gone; the next one must work. */
    if (outbox_relay(pg, p, &published, err, sizeof(err)) == 0) total += published;
    published = 0;
    if (outbox_relay(pg, p, &published, err, sizeof(err)) != 0) fail_msg("relay after reconnecting: %s", err);
    total += published;
    assert_int_equal(total, 1);
    assert_int_equal(itest_pg_number(pg, "SELECT count(*) FROM outbox"), 0);
    kafka_producer_destroy(p, 5000);
    pg_close(pg);
    keyed_t k = {key, 0};
    itest_read_all("selftest-out", count_keyed, &k);
    assert_int_equal(k.count, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_exactly_once_across_kill9, itest_kill_children),
        cmocka_unit_test_teardown(test_dead_letters_and_service_surface, itest_kill_children),
        cmocka_unit_test_teardown(test_refused_data_is_dead_lettered, itest_kill_children),
        cmocka_unit_test(test_outbox_relay_reconnects),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
