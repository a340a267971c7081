/* kafka: see kafka.h.  Error handling follows librdkafka's INTRODUCTION.md:
 * most errors are informational (the client retries by itself); a fatal
 * error (idempotence guarantees broken) stops the instance; a full local
 * queue is waited out by polling. */
#include "kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct kafka_producer {
    rd_kafka_t *rk;
    atomic_int fatal;
};

struct kafka_consumer {
    rd_kafka_t *rk;
    atomic_int fatal;
};

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    /* librdkafka uses syslog levels: 0..3 error, 4 warning, 5..6 info, 7 debug. */
    log_level_t l = level <= 3 ? LOG_LEVEL_ERROR
                  : level == 4 ? LOG_LEVEL_WARN
                  : level <= 6 ? LOG_LEVEL_INFO
                               : LOG_LEVEL_DEBUG;
    if (l < log_min_level) return;
    log_write_fields(l, json_pack("{s:s, s:s}", "component", "librdkafka", "client", rd_kafka_name(rk)),
                     fac && buf ? buf : "");
    (void)fac;
}

static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    atomic_int *fatal = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));
        log_error("kafka fatal error %s: %s", rd_kafka_err2name(orig), why);
        if (fatal) atomic_store(fatal, 1);
        return;
    }
    /* All brokers down, transport errors: the client reconnects by itself. */
    log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr, size_t errlen) {
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errlen, "config key 'kafka.%s': %s", name, why);
        return -1;
    }
    return 0;
}

static int kafka_conf_apply(void *opaque, const char *name, const char *value, char *errstr, size_t errlen) {
    return kafka_conf_set(opaque, name, value, errstr, errlen);
}

rd_kafka_conf_t *kafka_conf_new(const config_t *cfg, const char *client_id,
                                const char *const *defaults, char *errstr, size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    if (kafka_conf_set(conf, "client.id", client_id, errstr, errlen) != 0) goto fail;
    for (size_t i = 0; defaults != NULL && defaults[i] != NULL; i += 2) {
        if (kafka_conf_set(conf, defaults[i], defaults[i + 1], errstr, errlen) != 0) goto fail;
    }
    if (cfg != NULL && config_kafka_foreach(cfg, kafka_conf_apply, conf, errstr, errlen) != 0) goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
    (void)rk;
    (void)opaque;
    kafka_delivery_t *d = rkm->_private;
    if (d == NULL) {
        if (rkm->err) log_error("kafka delivery failed: %s", rd_kafka_err2str(rkm->err));
        return;
    }
    d->err = rkm->err;
    d->partition = rkm->partition;
    d->offset = rkm->offset;
    atomic_store(&d->done, 1);
}

kafka_producer_t *kafka_producer_new(const config_t *cfg, const char *client_id, char *errstr, size_t errlen) {
    kafka_producer_t *p = calloc(1, sizeof(*p));
    if (p == NULL) abort();
    atomic_init(&p->fatal, 0);
    static const char *const defaults[] = {"enable.idempotence", "true", "linger.ms", "5", NULL};
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, client_id, defaults, errstr, errlen);
    if (conf == NULL) {
        free(p);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, kafka_dr_cb);
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
    rd_kafka_conf_set_opaque(conf, &p->fatal);
    char why[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
    if (p->rk == NULL) {
        snprintf(errstr, errlen, "kafka producer: %s", why);
        rd_kafka_conf_destroy(conf);
        free(p);
        return NULL;
    }
    conf = NULL; /* now owned by p->rk */
    return p;
}

void kafka_producer_destroy(kafka_producer_t *p, int timeout_ms) {
    if (p == NULL) return;
    rd_kafka_resp_err_t err = rd_kafka_flush(p->rk, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_error("kafka producer: %d message(s) not delivered at shutdown: %s", rd_kafka_outq_len(p->rk),
                  rd_kafka_err2str(err));
    rd_kafka_destroy(p->rk);
    free(p);
}

rd_kafka_t *kafka_producer_handle(kafka_producer_t *p) { return p->rk; }

bool kafka_producer_fatal(kafka_producer_t *p) { return atomic_load(&p->fatal) != 0; }

int kafka_produce(kafka_producer_t *p, const char *topic, const void *key, size_t keylen,
                  const void *payload, size_t len, kafka_delivery_t *d, char *errstr, size_t errlen) {
    if (d != NULL) {
        atomic_store(&d->done, 0);
        d->err = RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY((void *)key, keylen),
            RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p->rk, 100); /* serve delivery reports to make room */
            continue;
        }
        snprintf(errstr, errlen, "produce to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
}

int kafka_producer_wait(kafka_producer_t *p, kafka_delivery_t *deliveries, size_t n, char *errstr,
                        size_t errlen) {
    for (size_t i = 0; i < n; i++) {
        while (!atomic_load(&deliveries[i].done)) rd_kafka_poll(p->rk, 10);
    }
    for (size_t i = 0; i < n; i++) {
        if (deliveries[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errstr, errlen, "delivery failed: %s", rd_kafka_err2str(deliveries[i].err));
            return -1;
        }
    }
    return 0;
}

kafka_consumer_t *kafka_consumer_new(const config_t *cfg, const char *group,
                                     const char *const *topics, size_t ntopics, char *errstr, size_t errlen) {
    kafka_consumer_t *c = calloc(1, sizeof(*c));
    if (c == NULL) abort();
    atomic_init(&c->fatal, 0);
    const char *const defaults[] = {"group.id", group,
                                    "enable.auto.offset.store", "false",
                                    "enable.auto.commit", "true",
                                    "auto.offset.reset", "earliest",
                                    /* A killed member's partitions move after
                                     * 10 s, not librdkafka's 45; and a restart
                                     * does not wait 45 s for a member id the
                                     * group still holds (librdkafka #5569). */
                                    "session.timeout.ms", "10000",
                                    NULL};
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, group, defaults, errstr, errlen);
    if (conf == NULL) {
        free(c);
        return NULL;
    }
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
    rd_kafka_conf_set_opaque(conf, &c->fatal);
    char why[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
    if (c->rk == NULL) {
        snprintf(errstr, errlen, "kafka consumer: %s", why);
        rd_kafka_conf_destroy(conf);
        free(c);
        return NULL;
    }
    conf = NULL; /* now owned by c->rk */
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)ntopics);
    for (size_t i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errlen, "kafka subscribe: %s", rd_kafka_err2str(err));
        rd_kafka_destroy(c->rk);
        free(c);
        return NULL;
    }
    return c;
}

rd_kafka_message_t *kafka_consumer_poll(kafka_consumer_t *c, int timeout_ms) {
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (rkm == NULL) return NULL;
    if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) return rkm;
    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* not an error: the end of a partition for now */
    } else if (rkm->err == RD_KAFKA_RESP_ERR__FATAL) {
        atomic_store(&c->fatal, 1);
        log_error("kafka consumer fatal error: %s", rd_kafka_message_errstr(rkm));
    } else {
        log_warn("kafka consumer: %s: %s", rd_kafka_err2name(rkm->err), rd_kafka_message_errstr(rkm));
    }
    rd_kafka_message_destroy(rkm);
    return NULL;
}

size_t kafka_consumer_poll_batch(kafka_consumer_t *c, int timeout_ms, rd_kafka_message_t **out, size_t max) {
    size_t n = 0;
    rd_kafka_message_t *m = kafka_consumer_poll(c, timeout_ms);
    while (m != NULL) {
        out[n++] = m;
        m = n < max ? kafka_consumer_poll(c, 0) : NULL;
    }
    return n;
}

int kafka_consumer_store(kafka_consumer_t *c, const rd_kafka_message_t *rkm) {
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(offsets, rd_kafka_topic_name(rkm->rkt), rkm->partition)->offset =
        rkm->offset + 1;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, offsets);
    rd_kafka_topic_partition_list_destroy(offsets);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* The partition was revoked meanwhile: its new owner will see the
         * message again and the ledger will skip it. */
        log_warn("kafka offset store: %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

bool kafka_consumer_fatal(kafka_consumer_t *c) { return atomic_load(&c->fatal) != 0; }

rd_kafka_t *kafka_consumer_handle(kafka_consumer_t *c) { return c->rk; }

void kafka_consumer_close(kafka_consumer_t *c) {
    if (c == NULL) return;
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) log_warn("kafka consumer close: %s", rd_kafka_err2str(err));
    rd_kafka_destroy(c->rk);
    free(c);
}
