/* annotctl status: can this configuration reach Kafka, PostgreSQL and
 * Redis?  One line each; exit status 1 when any is unreachable. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#include "annotctl.h"
#include "kafka.h"
#include "pg.h"
#include "redis.h"

static int status_kafka(service_t *svc) {
    char err[512];
    rd_kafka_conf_t *conf = kafka_conf_new(svc->cfg, "annotctl", NULL, err, sizeof(err));
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)) : NULL;
    if (rk == NULL) {
        if (conf) rd_kafka_conf_destroy(conf);
        printf("kafka       FAIL  %s\n", err);
        return 1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, 5000);
    int rc = 0;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        printf("kafka       FAIL  %s: %s\n", config_str(svc->cfg, "kafka.bootstrap.servers"), rd_kafka_err2str(e));
        rc = 1;
    } else {
        size_t missing = 0;
        for (size_t i = 0; i < svc->topics.count; i++) {
            int found = 0;
            for (int j = 0; j < md->topic_cnt; j++)
                found |= strcmp(md->topics[j].topic, svc->topics.items[i].name) == 0;
            missing += !found;
        }
        printf("kafka       %s  %d broker(s), %zu of %zu topics present\n", missing ? "FAIL" : "ok  ",
               md->broker_cnt, svc->topics.count - missing, svc->topics.count);
        rc = missing ? 1 : 0;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    return rc;
}

static int status_pg(service_t *svc) {
    char err[512];
    pg_t *pg = pg_connect(config_str(svc->cfg, "database.url"), "public", 1, err, sizeof(err));
    if (pg == NULL) {
        printf("postgresql  FAIL  %s\n", err);
        return 1;
    }
    printf("postgresql  ok    server %d\n", PQserverVersion(pg_conn(pg)));
    pg_close(pg);
    return 0;
}

static int status_redis(service_t *svc) {
    char err[512];
    redis_t *r = redis_connect(config_str(svc->cfg, "redis.url"), err, sizeof(err));
    if (r == NULL || redis_ping(r) != 0) {
        printf("redis       FAIL  %s\n", r ? "no PONG" : err);
        redis_close(r);
        return 1;
    }
    printf("redis       ok    PONG\n");
    redis_close(r);
    return 0;
}

int annotctl_status(service_t *svc, int argc, char **argv) {
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "annotctl: status takes no arguments\n");
        return 2;
    }
    int failed = status_kafka(svc) | status_pg(svc) | status_redis(svc);
    return failed ? 1 : 0;
}
