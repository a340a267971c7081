/* annotctl topics: creates the topic table's topics through librdkafka's
 * Admin API (CreateTopics), for a real cluster; a topic that exists already
 * counts as done, so the command can run at every deployment. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annotctl.h"
#include "kafka.h"

static rd_kafka_t *admin_client(service_t *svc) {
    char err[512];
    rd_kafka_conf_t *conf = kafka_conf_new(svc->cfg, "annotctl", NULL, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "annotctl: %s\n", err);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "annotctl: %s\n", err);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

int annotctl_topics_create(service_t *svc, int argc, char **argv) {
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "annotctl: topics create takes no arguments\n");
        return 2;
    }
    rd_kafka_t *rk = admin_client(svc);
    if (rk == NULL) return 1;
    int rf = (int)config_int(svc->cfg, "topics.replication.factor");
    int timeout_ms = (int)config_int(svc->cfg, "admin.timeout.ms");
    size_t n = svc->topics.count;
    rd_kafka_NewTopic_t **topics = calloc(n, sizeof(*topics));
    if (topics == NULL) abort();
    char err[512];
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        topics[i] = rd_kafka_NewTopic_new(svc->topics.items[i].name, svc->topics.items[i].partitions, rf, err,
                                          sizeof(err));
        if (topics[i] == NULL) {
            fprintf(stderr, "annotctl: topic %s: %s\n", svc->topics.items[i].name, err);
            rc = 1;
            goto out;
        }
    }
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, err, sizeof(err));
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, err, sizeof(err));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, topics, n, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (ev == NULL || rd_kafka_event_error(ev)) {
        fprintf(stderr, "annotctl: CreateTopics: %s\n", ev ? rd_kafka_event_error_string(ev) : "timed out");
        rc = 1;
    } else {
        size_t cnt;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            const char *name = rd_kafka_topic_result_name(res[i]);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
                printf("created %s\n", name);
            } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                printf("exists  %s\n", name);
            } else {
                fprintf(stderr, "annotctl: topic %s: %s\n", name, rd_kafka_topic_result_error_string(res[i]));
                rc = 1;
            }
        }
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opts);
out:
    for (size_t i = 0; i < n; i++) {
        if (topics[i]) rd_kafka_NewTopic_destroy(topics[i]);
    }
    free(topics);
    rd_kafka_destroy(rk);
    return rc;
}

int annotctl_topics_list(service_t *svc, int argc, char **argv) {
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "annotctl: topics list takes no arguments\n");
        return 2;
    }
    rd_kafka_t *rk = admin_client(svc);
    if (rk == NULL) return 1;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, (int)config_int(svc->cfg, "admin.timeout.ms"));
    int rc = 0;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "annotctl: metadata: %s\n", rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return 1;
    }
    printf("%-24s %-34s %s\n", "ROLE", "TOPIC", "PARTITIONS (table / cluster)");
    for (size_t i = 0; i < svc->topics.count; i++) {
        const topic_def_t *t = &svc->topics.items[i];
        int have = -1;
        for (int j = 0; j < md->topic_cnt; j++) {
            if (strcmp(md->topics[j].topic, t->name) == 0 && md->topics[j].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                have = md->topics[j].partition_cnt;
        }
        if (have < 0) rc = 1;
        char cluster[16];
        if (have < 0) snprintf(cluster, sizeof(cluster), "missing");
        else snprintf(cluster, sizeof(cluster), "%d", have);
        printf("%-24s %-34s %d / %s\n", t->role, t->name, t->partitions, cluster);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}
