/* annotctl dlq: the dead-letter topic for operators.  `dlq list` prints one
 * JSON line per dead letter (where it came from, which service gave up on it
 * and why); `dlq replay ID...` puts the original bytes and key of those dead
 * letters back on their original topic, once the consumer is fixed.  A replay
 * is safe to repeat: a message with a valid event id that was applied meanwhile
 * is dropped by the consumer's ledger.  Dead letters are published at least
 * once; copies share their id and are listed and replayed once. */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot/v1/deadletter.pb-c.h"
#include "annotctl.h"
#include "kafka.h"

typedef int (*dlq_fn)(void *opaque, const Annot__V1__DeadLetter *dl);

/* Reads the dead-letter topic from its beginning to its current end. */
static int dlq_scan(service_t *svc, dlq_fn fn, void *opaque) {
    char err[512];
    const char *topic = service_topic(svc, config_str(svc->cfg, "dlq.topic.role"));
    const topic_def_t *t = topics_find(&svc->topics, config_str(svc->cfg, "dlq.topic.role"));
    if (topic == NULL || t == NULL) return 1;
    const char *const defaults[] = {"group.id", "annotctl-dlq", "enable.partition.eof", "true",
                                    "enable.auto.commit", "false", NULL};
    rd_kafka_conf_t *conf = kafka_conf_new(svc->cfg, "annotctl", defaults, err, sizeof(err));
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err)) : NULL;
    if (rk == NULL) {
        if (conf) rd_kafka_conf_destroy(conf);
        fprintf(stderr, "annotctl: %s\n", err);
        return 1;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(t->partitions);
    for (int i = 0; i < t->partitions; i++)
        rd_kafka_topic_partition_list_add(parts, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    int eofs = 0, rc = 0, idle = 0;
    int timeout_ms = (int)config_int(svc->cfg, "admin.timeout.ms");
    while (eofs < t->partitions && rc == 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (m == NULL) {
            if ((idle += 500) >= timeout_ms) {
                fprintf(stderr, "annotctl: no answer from Kafka reading %s\n", topic);
                rc = 1;
            }
            continue;
        }
        idle = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err) {
            fprintf(stderr, "annotctl: %s: %s\n", topic, rd_kafka_message_errstr(m));
            rc = 1;
        } else {
            Annot__V1__DeadLetter *dl = annot__v1__dead_letter__unpack(NULL, m->len, m->payload);
            if (dl == NULL || dl->header == NULL) {
                fprintf(stderr, "annotctl: %s [%d] offset %lld is not a DeadLetter; skipped\n", topic,
                        (int)m->partition, (long long)m->offset);
            } else {
                rc = fn(opaque, dl);
            }
            if (dl) annot__v1__dead_letter__free_unpacked(dl, NULL);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

static const char *dlq_reason_name(Annot__V1__DeadLetterReason r) {
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&annot__v1__dead_letter_reason__descriptor, r);
    return v ? v->name : "unknown";
}

/* A consumer killed between publishing a dead letter and storing its offset
 * publishes it again under the same id (pipeline.c): list each id once. */
static int dlq_print(void *opaque, const Annot__V1__DeadLetter *dl) {
    json_t *listed = opaque;
    if (json_object_get(listed, dl->header->event_id)) return 0;
    json_object_set_new(listed, dl->header->event_id, json_true());
    json_t *line = json_pack("{s:s, s:I, s:s, s:s, s:s, s:i, s:I, s:s, s:s, s:I}", "id", dl->header->event_id,
                             "failed_at_ms", (json_int_t)dl->failed_at_ms, "service", dl->service, "group",
                             dl->consumer_group, "topic", dl->topic, "partition", (int)dl->partition, "offset",
                             (json_int_t)dl->offset, "reason_code", dlq_reason_name(dl->reason_code), "reason",
                             dl->reason, "bytes", (json_int_t)dl->payload.len);
    if (line == NULL) return 0; /* a field that is not UTF-8: nothing useful to print */
    char *text = json_dumps(line, JSON_COMPACT);
    puts(text);
    free(text);
    json_decref(line);
    return 0;
}

int annotctl_dlq_list(service_t *svc, int argc, char **argv) {
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "annotctl: dlq list takes no arguments\n");
        return 2;
    }
    json_t *listed = json_object();
    int rc = dlq_scan(svc, dlq_print, listed);
    json_decref(listed);
    return rc;
}

typedef struct replay {
    kafka_producer_t *producer;
    char **ids;
    int nids;
    int *done;
} replay_t;

static int dlq_replay_one(void *opaque, const Annot__V1__DeadLetter *dl) {
    replay_t *r = opaque;
    for (int i = 0; i < r->nids; i++) {
        if (r->done[i] || strcmp(r->ids[i], dl->header->event_id) != 0) continue;
        char err[512];
        kafka_delivery_t d;
        if (kafka_produce(r->producer, dl->topic, dl->key.len ? dl->key.data : NULL, dl->key.len, dl->payload.data,
                          dl->payload.len, &d, err, sizeof(err)) != 0 ||
            kafka_producer_wait(r->producer, &d, 1, err, sizeof(err)) != 0) {
            fprintf(stderr, "annotctl: replay %s: %s\n", r->ids[i], err);
            return 1;
        }
        printf("replayed %s to %s [%d] offset %lld\n", r->ids[i], dl->topic, (int)d.partition, (long long)d.offset);
        r->done[i] = 1;
    }
    return 0;
}

int annotctl_dlq_replay(service_t *svc, int argc, char **argv) {
    if (argc == 0) {
        fprintf(stderr, "annotctl: dlq replay ID... (ids from `annotctl dlq list`)\n");
        return 2;
    }
    char err[512];
    replay_t r = {kafka_producer_new(svc->cfg, "annotctl", err, sizeof(err)), argv, argc, calloc((size_t)argc, sizeof(int))};
    if (r.producer == NULL) {
        fprintf(stderr, "annotctl: %s\n", err);
        free(r.done);
        return 1;
    }
    int rc = dlq_scan(svc, dlq_replay_one, &r);
    for (int i = 0; i < argc; i++) {
        if (!r.done[i]) {
            fprintf(stderr, "annotctl: no dead letter with id %s\n", argv[i]);
            rc = 1;
        }
    }
    kafka_producer_destroy(r.producer, 10000);
    free(r.done);
    return rc;
}
