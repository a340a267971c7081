/* bench_assigner: validator assignments per second, in-process (the policy
 * alone over a roster of 48 validators) and end to end through Kafka
 * (checked submissions on the checks topic -> bin/annot-assigner: roster,
 * validator load from Redis, the choice, the assignment row and its outbox
 * event in one PostgreSQL transaction -> the validation-assignments topic),
 * beside the ceiling measured in the same run on the same broker: consuming
 * the same checks with nothing done to them.  BENCH_CHECKS sets the count.
 * Figures, never a pass or fail. */
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "annot/v1/annotator.pb-c.h"
#include "annot/v1/check.pb-c.h"
#include "event.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "service.h"
#include "shutdown.h"

#include "../../services/annot-assigner/assign_policy.c"

#define NVAL 48

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *err) {
    fprintf(stderr, "bench_assigner: %s: %s\n", what, err);
    exit(1);
}

static const char *const locales[] = {"en-US", "ja-JP", "ko-KR", "th-TH"};
static const char *const skills[] = {"dish", "clothing", "vehicle", "place", "symbol"};

static double in_process(int n) {
    assign_policy_t p = {.w_load = 1, .w_recent = 0.5, .inactive_after_ms = 0};
    snprintf(p.exam_skill, sizeof(p.exam_skill), "exam");
    assign_validator_t vs[NVAL];
    char ids[NVAL][16];
    const char *sk[NVAL][2];
    for (int i = 0; i < NVAL; i++) {
        snprintf(ids[i], sizeof(ids[i]), "val-%02d", i);
        sk[i][0] = skills[i % 5];
        sk[i][1] = skills[(i / 5) % 5];
        vs[i] = (assign_validator_t){.id = ids[i], .locale = locales[i % 4], .skills = sk[i], .nskills = 2};
    }
    long found = 0;
    double t0 = now_s();
    for (int k = 0; k < n; k++) {
        char sid[24];
        snprintf(sid, sizeof(sid), "s-%d", k);
        const char *task_skills[1] = {skills[k % 5]};
        assign_request_t r = {.submission_id = sid, .author_id = "ann", .locale = locales[k % 4],
                              .skills = task_skills, .nskills = 1};
        long pick = assign_pick(&p, vs, NVAL, &r, NULL, 0);
        if (pick >= 0) {
            vs[pick].queued++;
            found++;
        }
    }
    double rate = n / (now_s() - t0);
    if (found < n / 2) die("in-process", "too few eligible validators");
    return rate;
}

static void produce(kafka_producer_t *p, const char *topic, const char *key, const uint8_t *buf, size_t len,
                    kafka_delivery_t *d) {
    char err[256];
    if (kafka_produce(p, topic, key, strlen(key), buf, len, d, err, sizeof(err)) != 0) die("produce", err);
}

int main(int argc, char **argv) {
    service_t svc;
    if (service_init(&svc, "bench-assigner", "Assigner benchmark.", NULL, NULL, argc, argv) != 0) return 2;
    log_init("bench-assigner", LOG_LEVEL_ERROR);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (sodium_init() < 0) die("libsodium", "init");
    int n = getenv("BENCH_CHECKS") ? atoi(getenv("BENCH_CHECKS")) : 5000;
    printf("in process: %.0f assignments/s (policy over %d validators, 1,000,000 picks)\n", in_process(1000000), NVAL);

    char err[1024], id[EVENT_ID_LEN], schema[64], run[16];
    event_id_new(id);
    snprintf(run, sizeof(run), "%.8s", id);
    snprintf(schema, sizeof(schema), "bench_asg_%s", run);
    kafka_producer_t *p = kafka_producer_new(svc.cfg, "bench-assigner", err, sizeof(err));
    if (p == NULL) die("producer", err);
    /* The roster, as annotctl announces it. */
    kafka_delivery_t *d = calloc((size_t)(n + NVAL), sizeof(*d));
    for (int i = 0; i < NVAL; i++) {
        char vid[64], eid[EVENT_ID_LEN];
        snprintf(vid, sizeof(vid), "bv-%s-%02d", run, i);
        event_id_new(eid);
        Annot__V1__EventHeader hdr;
        event_header_fill(&hdr, eid, "bench", NULL, NULL);
        char *vsk[2] = {(char *)skills[i % 5], (char *)skills[(i / 5) % 5]};
        Annot__V1__AnnotatorStatusEvent ev = ANNOT__V1__ANNOTATOR_STATUS_EVENT__INIT;
        ev.header = &hdr;
        ev.annotator_id = vid;
        ev.status = ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_ACTIVE;
        ev.changed_at_ms = event_now_ms();
        ev.role = ANNOT__V1__ROLE__ROLE_VALIDATOR;
        ev.locale = (char *)locales[i % 4];
        ev.n_skills = 2;
        ev.skills = vsk;
        uint8_t buf[512];
        size_t len = annot__v1__annotator_status_event__pack(&ev, buf);
        produce(p, service_topic(&svc, "annotators"), vid, buf, len, &d[i]);
    }
    for (int k = 0; k < n; k++) {
        char sid[64], tid[64], eid[EVENT_ID_LEN];
        snprintf(sid, sizeof(sid), "bs-%s-%d", run, k);
        snprintf(tid, sizeof(tid), "bt-%s-%d", run, k);
        event_id_new(eid);
        Annot__V1__EventHeader hdr;
        event_header_fill(&hdr, eid, "bench", NULL, "g1");
        char *tsk[1] = {(char *)skills[k % 5]};
        Annot__V1__Task t = ANNOT__V1__TASK__INIT;
        t.task_id = tid;
        t.kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
        t.main_object = "tteokbokki";
        t.locale = (char *)locales[k % 4];
        t.n_skills = 1;
        t.skills = tsk;
        Annot__V1__Submission s = ANNOT__V1__SUBMISSION__INIT;
        s.submission_id = sid;
        s.task_id = tid;
        s.author_id = "bench-author";
        s.task_kind = t.kind;
        s.description = "Tteokbokki in a shallow pan: cylindrical rice cakes coated in red chili sauce.";
        s.task = &t;
        Annot__V1__CheckResult c = ANNOT__V1__CHECK_RESULT__INIT;
        c.submission_id = sid;
        c.task_id = tid;
        c.author_id = "bench-author";
        c.submission = &s;
        c.score = 1;
        Annot__V1__CheckResultEvent ev = ANNOT__V1__CHECK_RESULT_EVENT__INIT;
        ev.header = &hdr;
        ev.check = &c;
        uint8_t buf[1024];
        size_t len = annot__v1__check_result_event__pack(&ev, buf);
        produce(p, service_topic(&svc, "checks"), sid, buf, len, &d[NVAL + k]);
    }
    if (kafka_producer_wait(p, d, (size_t)(n + NVAL), err, sizeof(err)) != 0) die("delivery", err);
    kafka_producer_destroy(p, 10000);
    free(d);

    /* The ceiling: the same checks consumed and stored, nothing else. */
    char group[64];
    snprintf(group, sizeof(group), "bench-raw-%s", run);
    const char *topics[1] = {service_topic(&svc, "checks")};
    kafka_consumer_t *c = kafka_consumer_new(svc.cfg, group, topics, 1, err, sizeof(err));
    if (c == NULL) die("consumer", err);
    int got = 0;
    double t0 = 0;
    /* The topic also holds earlier runs' checks: count ours. */
    while (got < n) {
        rd_kafka_message_t *m = kafka_consumer_poll(c, 1000);
        if (m == NULL) continue;
        if (t0 == 0) t0 = now_s();
        if (m->key_len > 3 && memcmp(m->key, "bs-", 3) == 0 && memmem(m->key, m->key_len, run, strlen(run))) got++;
        kafka_consumer_store(c, m);
        rd_kafka_message_destroy(m);
    }
    double raw_rate = n / (now_s() - t0);
    kafka_consumer_close(c);

    /* The assigner, from a fresh group and schema. */
    char a_schema[96], a_group[96];
    snprintf(a_schema, sizeof(a_schema), "assigner.schema=%s", schema);
    snprintf(a_group, sizeof(a_group), "assigner.group=bench-asg-%s", run);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", 1);
        dup2(fd, 1);
        execl("bin/annot-assigner", "bin/annot-assigner", "-X", a_schema, "-X", a_group, "-X", "log.level=warn",
              "-X", "assigner.double.share=0", "-X", "assigner.double.first.k=0", (char *)NULL);
        _exit(127);
    }
    pg_t *pg = NULL;
    double deadline = now_s() + 600;
    long long done = 0;
    while (now_s() < deadline) {
        sleep(1);
        if (pg == NULL) pg = pg_connect(config_str(svc.cfg, "database.url"), schema, 10, err, sizeof(err));
        if (pg == NULL) continue;
        /* Only this run's: the topic may hold earlier runs' checks. */
        char like[64];
        snprintf(like, sizeof(like), "bs-%s-%%", run);
        const char *lp[1] = {like};
        PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                                 "SELECT count(*), extract(epoch from max(created_at) - min(created_at)) FROM "
                                 "assignments WHERE submission_id LIKE $1", 1, lp, err, sizeof(err));
        if (res == NULL) continue; /* not migrated yet */
        done = atoll(PQgetvalue(res, 0, 0));
        double span = atof(PQgetvalue(res, 0, 1));
        PQclear(res);
        if (done >= n) {
            double rate = (double)(n - 1) / span;
            printf("through Kafka: %d checks -> %lld assignments in %.2f s: %.0f assignments/s "
                   "(first to last assignment row)\n", n, done, span, rate);
            printf("ceiling: consuming the same checks raw %.0f msg/s; ratio %.3f\n", raw_rate, rate / raw_rate);
            break;
        }
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    pg_close(pg);
    if (done < n) die("assigner", "did not assign every check within 10 minutes");
    service_destroy(&svc);
    return 0;
}
