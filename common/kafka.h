/* kafka: the producer and consumer every service uses, on librdkafka.
 *
 * Producer: idempotent (enable.idempotence=true, so acks=all and no
 * duplicates from internal retries).  A message is done only when its
 * delivery report says so: kafka_produce takes a caller-owned
 * kafka_delivery_t that the report fills in, and kafka_producer_wait polls
 * until every listed delivery has its report.
 *
 * Consumer: a group member with enable.auto.offset.store=false; the caller
 * stores a message's offset (kafka_consumer_store) only after its effects
 * are durable, and the auto-commit thread commits what was stored.
 *
 * Both take librdkafka properties from every "kafka.*" configuration key. */
#ifndef ANNOT_KAFKA_H
#define ANNOT_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef struct kafka_producer kafka_producer_t;
typedef struct kafka_consumer kafka_consumer_t;

/* Filled in by the delivery report of one message. */
typedef struct kafka_delivery {
    atomic_int done;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
} kafka_delivery_t;

/* Builds a librdkafka configuration: client.id, then the pairs in defaults
 * ({name, value, ..., NULL}; may be NULL), then cfg's kafka.* keys, so an
 * operator can still tune what we chose (cfg may be NULL: none); our logger
 * is its log callback.
 * Returns NULL with errstr naming the bad key. */
rd_kafka_conf_t *kafka_conf_new(const config_t *cfg, const char *client_id,
                                const char *const *defaults, char *errstr, size_t errlen);
/* Sets one property on conf, with errstr naming it on failure. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr, size_t errlen);

kafka_producer_t *kafka_producer_new(const config_t *cfg, const char *client_id, char *errstr, size_t errlen);
/* Flushes for up to timeout_ms, then destroys. */
void kafka_producer_destroy(kafka_producer_t *p, int timeout_ms);
rd_kafka_t *kafka_producer_handle(kafka_producer_t *p);
/* true once librdkafka raised a fatal error: the producer must be rebuilt. */
bool kafka_producer_fatal(kafka_producer_t *p);

/* Enqueues a copy of payload for topic with key; d (may be NULL) receives the
 * delivery report and must stay alive until then.  Waits while the local
 * queue is full.  Returns 0 or -1. */
int kafka_produce(kafka_producer_t *p, const char *topic, const void *key, size_t keylen,
                  const void *payload, size_t len, kafka_delivery_t *d, char *errstr, size_t errlen);
/* Polls until each of the n deliveries has its report.  It never gives up
 * early: librdkafka still holds the kafka_delivery_t pointers until then, and
 * it reports every message within message.timeout.ms.  Returns 0 when all
 * succeeded; -1 with the first error otherwise. */
int kafka_producer_wait(kafka_producer_t *p, kafka_delivery_t *deliveries, size_t n, char *errstr,
                        size_t errlen);

/* Joins group and subscribes to topics. */
kafka_consumer_t *kafka_consumer_new(const config_t *cfg, const char *group,
                                     const char *const *topics, size_t ntopics, char *errstr, size_t errlen);
/* Returns the next message (the caller rd_kafka_message_destroy()s it) or
 * NULL when none arrived in timeout_ms.  Errors that are only informational
 * are logged here and give NULL. */
rd_kafka_message_t *kafka_consumer_poll(kafka_consumer_t *c, int timeout_ms);
/* Waits up to timeout_ms for a first message, then takes what else is
 * already there, up to max; returns how many were put in out (the caller
 * destroys each).  Errors are handled as in kafka_consumer_poll. */
size_t kafka_consumer_poll_batch(kafka_consumer_t *c, int timeout_ms, rd_kafka_message_t **out, size_t max);
/* Records rkm's offset + 1 as the position to commit. */
int kafka_consumer_store(kafka_consumer_t *c, const rd_kafka_message_t *rkm);
bool kafka_consumer_fatal(kafka_consumer_t *c);
/* Commits stored offsets, leaves the group, destroys. */
void kafka_consumer_close(kafka_consumer_t *c);
rd_kafka_t *kafka_consumer_handle(kafka_consumer_t *c);

#endif
