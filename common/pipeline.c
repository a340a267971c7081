/* pipeline: see pipeline.h for the delivery rules this file implements. */
#include "pipeline.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "annot/v1/deadletter.pb-c.h"
#include "event.h"
#include "fault.h"
#include "outbox.h"
#include "log.h"
#include "shutdown.h"

#define PIPELINE_BATCH_MAX 1000 /* the bound of pipeline.batch.max */

typedef enum {
    OUTCOME_APPLIED,
    OUTCOME_DUPLICATE,
    OUTCOME_INVALID,  /* dead-letter it */
    OUTCOME_REJECTED, /* apply said invalid after changing the transaction */
    OUTCOME_RETRY,
} outcome_t;

struct pipeline {
    service_t *svc;
    pg_t *pg;
    kafka_producer_t *producer;
    kafka_consumer_t *consumer;
    pipeline_def_t def;
    size_t batch_max;
    const char *dlq_topic;
    atomic_int pg_ok;
    time_t last_idle_check;
    metrics_series_t *m_applied, *m_duplicate, *m_dead, *m_retry, *m_outbox, *m_apply_seconds;
    pipeline_batch_begin_fn batch_begin;
    pipeline_batch_end_fn batch_end;
};

struct pipeline_ctx {
    pipeline_t *p;
};

pipeline_t *pipeline_new(service_t *svc, pg_t *pg, kafka_producer_t *producer,
                         const pipeline_def_t *def, char *errstr, size_t errlen) {
    const char *names[16];
    if (def->ntopics == 0 || def->ntopics > 16) {
        snprintf(errstr, errlen, "pipeline: 1..16 topics");
        return NULL;
    }
    for (size_t i = 0; i < def->ntopics; i++) {
        if ((names[i] = service_topic(svc, def->topic_roles[i])) == NULL) {
            snprintf(errstr, errlen, "topic table has no role '%s'", def->topic_roles[i]);
            return NULL;
        }
    }
    const char *dlq = service_topic(svc, config_str(svc->cfg, "dlq.topic.role"));
    if (dlq == NULL) {
        snprintf(errstr, errlen, "config key 'dlq.topic.role': no such role in the topic table");
        return NULL;
    }
    pipeline_t *p = calloc(1, sizeof(*p));
    if (p == NULL) abort();
    p->svc = svc;
    p->pg = pg;
    p->producer = producer;
    p->def = *def;
    p->dlq_topic = dlq;
    p->batch_max = (size_t)config_int(svc->cfg, "pipeline.batch.max");
    atomic_init(&p->pg_ok, 1);
    p->consumer = kafka_consumer_new(svc->cfg, def->group, names, def->ntopics, errstr, errlen);
    if (p->consumer == NULL) {
        free(p);
        return NULL;
    }
    char l[128];
    metrics_registry_t *m = svc->metrics;
    const char *help = "Consumed events by outcome";
    p->m_applied = metrics_counter(m, "annot_events_consumed_total", help, metrics_labels(l, sizeof(l), "outcome", "applied", NULL));
    p->m_duplicate = metrics_counter(m, "annot_events_consumed_total", help, metrics_labels(l, sizeof(l), "outcome", "duplicate", NULL));
    p->m_dead = metrics_counter(m, "annot_events_consumed_total", help, metrics_labels(l, sizeof(l), "outcome", "dead_lettered", NULL));
    p->m_retry = metrics_counter(m, "annot_event_retries_total", "Transient failures retried", NULL);
    p->m_outbox = metrics_counter(m, "annot_outbox_published_total", "Output events published from the outbox", NULL);
    p->m_apply_seconds = metrics_histogram(m, "annot_event_apply_seconds", "Time from poll to offset store", NULL, NULL, 0);
    return p;
}

void pipeline_destroy(pipeline_t *p) {
    if (p == NULL) return;
    kafka_consumer_close(p->consumer);
    free(p);
}

pg_t *pipeline_pg(pipeline_ctx_t *ctx) { return ctx->p->pg; }

int pipeline_emit(pipeline_ctx_t *ctx, const char *topic_role, const void *key, size_t keylen,
                  const void *payload, size_t len, char *errstr, size_t errlen) {
    const char *topic = service_topic(ctx->p->svc, topic_role);
    if (topic == NULL) {
        snprintf(errstr, errlen, "topic table has no role '%s'", topic_role);
        return -1;
    }
    return outbox_add(ctx->p->pg, topic, key, keylen, payload, len, errstr, errlen);
}

int pipeline_outbox_relay(pipeline_t *p, char *errstr, size_t errlen) {
    /* outbox_relay takes up to 500 rows at a time; a batch may have queued
     * more, and its offsets must wait for all of them. */
    for (;;) {
        size_t published = 0;
        int rc = outbox_relay(p->pg, p->producer, &published, errstr, errlen);
        metrics_add(p->m_outbox, (double)published);
        if (rc != 0 || published < 500) return rc;
    }
}

/* A consumed message and what became of it. */
typedef struct pending {
    rd_kafka_message_t *rkm;
    outcome_t out;
    Annot__V1__DeadLetterReason code;
    char reason[512];
    kafka_delivery_t dlq; /* the dead letter's delivery, when out is INVALID */
} pending_t;

static void pending_invalid(pending_t *m, Annot__V1__DeadLetterReason code, const char *reason) {
    m->out = OUTCOME_INVALID;
    m->code = code;
    snprintf(m->reason, sizeof(m->reason), "%s", reason);
}

/* Step 2 of pipeline.h for one message, inside the batch's transaction.
 * OUTCOME_RETRY means the transaction is unusable and must be rolled back. */
static outcome_t pipeline_apply_one(pipeline_t *p, pending_t *m, char *errstr, size_t errlen) {
    const rd_kafka_message_t *rkm = m->rkm;
    char why[256];
    Annot__V1__EventEnvelope *env = event_envelope_decode(rkm->payload, rkm->len, why, sizeof(why));
    if (env == NULL) {
        pending_invalid(m, ANNOT__V1__DEAD_LETTER_REASON__DEAD_LETTER_REASON_DECODE_ERROR, why);
        return OUTCOME_INVALID;
    }
    const Annot__V1__EventHeader *hdr = env->header;
    outcome_t out = OUTCOME_RETRY;
    if (!event_id_valid(hdr->event_id)) {
        pending_invalid(m, ANNOT__V1__DEAD_LETTER_REASON__DEAD_LETTER_REASON_VALIDATION_ERROR,
                        "header.event_id is not a UUID");
        out = OUTCOME_INVALID;
        goto done;
    }
    char part[16], offset[24];
    snprintf(part, sizeof(part), "%d", (int)rkm->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)rkm->offset);
    const char *params[4] = {hdr->event_id, rd_kafka_topic_name(rkm->rkt), part, offset};
    long inserted = pg_command(p->pg,
                               "INSERT INTO processed_events (event_id, topic, kafka_partition, kafka_offset) "
                               "VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING",
                               4, params, errstr, errlen);
    if (inserted < 0) goto done;
    if (inserted == 0) {
        out = OUTCOME_DUPLICATE;
        goto done;
    }
    pipeline_ctx_t ctx = {p};
    pipeline_result_t r = p->def.apply(p->def.opaque, &ctx, rkm, hdr, errstr, errlen);
    if (r == PIPELINE_APPLIED) {
        out = OUTCOME_APPLIED;
    } else if (r == PIPELINE_INVALID) {
        pending_invalid(m, ANNOT__V1__DEAD_LETTER_REASON__DEAD_LETTER_REASON_VALIDATION_ERROR, errstr);
        out = OUTCOME_REJECTED;
    }
done:
    event_envelope_free(env);
    return out;
}

/* Applies the batch in one transaction.  A message that apply rejects has
 * already changed the transaction, so the transaction is rolled back and
 * done again without it: rare, and it keeps the common path free of
 * savepoints.  Returns 0 once committed; otherwise rolls back and returns 1
 * when the transaction failed on an error its data raises again
 * (pg_failed_permanently), -1 on a transient failure. */
static int pipeline_apply_txn(pipeline_t *p, pending_t *b, size_t n, char *errstr, size_t errlen) {
    for (;;) {
        if (pg_ensure(p->pg, errstr, errlen) != 0 || pg_begin(p->pg, errstr, errlen) != 0) return -1;
        if (p->batch_begin) p->batch_begin(p->def.opaque);
        int redo = 0, failed = 0;
        for (size_t i = 0; i < n && !redo && !failed; i++) {
            if (b[i].out == OUTCOME_INVALID) continue;
            outcome_t o = pipeline_apply_one(p, &b[i], errstr, errlen);
            if (o == OUTCOME_RETRY) failed = 1;
            if (o == OUTCOME_REJECTED) {
                o = OUTCOME_INVALID;
                redo = 1;
            }
            b[i].out = o;
        }
        if (redo) {
            pg_rollback(p->pg);
            continue;
        }
        if (!failed && p->batch_end) {
            pipeline_ctx_t ctx = {p};
            failed = p->batch_end(p->def.opaque, &ctx, errstr, errlen) != PIPELINE_APPLIED;
        }
        if (!failed) {
            fault_point("pipeline.before_commit");
            failed = pg_commit(p->pg, errstr, errlen) != 0;
        }
        if (failed) {
            int permanent = pg_failed_permanently(p->pg);
            pg_rollback(p->pg);
            return permanent ? 1 : -1;
        }
        fault_point("pipeline.after_commit");
        return 0;
    }
}

/* Step 2 of pipeline.h.  A transaction that fails for good on its data
 * names no culprit (the failing statement may be a batch hook's, writing
 * what several messages folded together), so each message is applied again
 * in a transaction of its own, and one that fails so alone is
 * dead-lettered: retried, it would stop its partition for ever.  Returns 0
 * once every message is committed or dead-lettered, -1 on a transient
 * failure (what committed stays committed; the ledger skips it next time). */
static int pipeline_apply_batch(pipeline_t *p, pending_t *b, size_t n, char *errstr, size_t errlen) {
    int rc = pipeline_apply_txn(p, b, n, errstr, errlen);
    if (rc <= 0) return rc;
    if (n == 1) {
        char why[sizeof(b->reason)];
        snprintf(why, sizeof(why), "the database refuses it: %s", errstr);
        pending_invalid(b, ANNOT__V1__DEAD_LETTER_REASON__DEAD_LETTER_REASON_PROCESSING_ERROR, why);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (b[i].out == OUTCOME_INVALID) continue;
        if (pipeline_apply_batch(p, &b[i], 1, errstr, errlen) != 0) return -1;
    }
    return 0;
}

/* Enqueues the dead letter of m (waited for by the caller). */
static int pipeline_dead_letter(pipeline_t *p, pending_t *m, char *errstr, size_t errlen) {
    const rd_kafka_message_t *rkm = m->rkm;
    char where[512], id[EVENT_ID_LEN], cause[EVENT_ID_LEN] = "";
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    snprintf(where, sizeof(where), "%s/%d/%lld", topic, (int)rkm->partition, (long long)rkm->offset);
    /* The same message always gives the same dead-letter id. */
    event_id_derive(id, where, "dead-letter");
    char why[256];
    Annot__V1__EventEnvelope *env = event_envelope_decode(rkm->payload, rkm->len, why, sizeof(why));
    if (env && event_id_valid(env->header->event_id)) memcpy(cause, env->header->event_id, EVENT_ID_LEN);
    event_envelope_free(env);

    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, p->svc->name, cause, "");
    Annot__V1__DeadLetter dl = ANNOT__V1__DEAD_LETTER__INIT;
    dl.header = &hdr;
    dl.payload.data = rkm->payload;
    dl.payload.len = rkm->len;
    dl.key.data = rkm->key;
    dl.key.len = rkm->key_len;
    dl.topic = (char *)topic;
    dl.partition = rkm->partition;
    dl.offset = rkm->offset;
    dl.reason = m->reason;
    dl.consumer_group = (char *)p->def.group;
    dl.service = (char *)p->svc->name;
    dl.failed_at_ms = hdr.occurred_at_ms;
    dl.reason_code = m->code;
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
    dl.original_timestamp_ms = ts > 0 ? ts : 0;
    size_t len = annot__v1__dead_letter__get_packed_size(&dl);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) abort();
    annot__v1__dead_letter__pack(&dl, buf);
    int rc = kafka_produce(p->producer, p->dlq_topic, rkm->key, rkm->key_len, buf, len, &m->dlq, errstr, errlen);
    free(buf);
    return rc;
}

/* Step 3: the batch's dead letters and the outbox, published and
 * delivery-reported. */
static int pipeline_publish(pipeline_t *p, pending_t *b, size_t n, char *errstr, size_t errlen) {
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i].out != OUTCOME_INVALID) continue;
        atomic_store(&b[i].dlq.done, 1); /* until enqueued: nothing to wait for */
        if (rc == 0 && pipeline_dead_letter(p, &b[i], errstr, errlen) != 0) rc = -1;
    }
    if (rc == 0 && pipeline_outbox_relay(p, errstr, errlen) != 0) rc = -1;
    for (size_t i = 0; i < n; i++) {
        if (b[i].out != OUTCOME_INVALID) continue;
        char werr[256];
        if (kafka_producer_wait(p->producer, &b[i].dlq, 1, werr, sizeof(werr)) != 0) {
            if (rc == 0) snprintf(errstr, errlen, "dead letter: %s", werr);
            rc = -1;
        } else if (rc == 0) {
            const rd_kafka_message_t *rkm = b[i].rkm;
            log_write_fields(LOG_LEVEL_WARN,
                             json_pack("{s:s, s:i, s:I, s:s}", "topic", rd_kafka_topic_name(rkm->rkt), "partition",
                                       (int)rkm->partition, "offset", (json_int_t)rkm->offset, "reason", b[i].reason),
                             "message dead-lettered");
        }
    }
    return rc;
}

static void pipeline_backoff(int attempt) {
    long ms = 100L << (attempt < 6 ? attempt : 6); /* 100 ms .. 6.4 s */
    for (long slept = 0; slept < ms && !shutdown_requested(); slept += 50)
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
}

static double elapsed_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void pipeline_retry_log(pipeline_t *p, const pending_t *b, size_t n, int attempt, const char *err) {
    metrics_inc(p->m_retry);
    log_write_fields(LOG_LEVEL_WARN,
                     json_pack("{s:s, s:i, s:I, s:i, s:i}", "topic", rd_kafka_topic_name(b[0].rkm->rkt), "partition",
                               (int)b[0].rkm->partition, "offset", (json_int_t)b[0].rkm->offset, "batch", (int)n,
                               "attempt", attempt + 1),
                     err[0] ? err : "transient failure");
}

/* Steps 2-4 for a batch, each retried until done or shutdown.  Returns 0
 * when every offset was stored, -1 when shutdown interrupted (offsets left
 * unstored: the messages will be seen again). */
static int pipeline_handle(pipeline_t *p, pending_t *b, size_t n) {
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char err[1024] = "";
    for (int attempt = 0;; attempt++) {
        if (shutdown_requested()) return -1;
        int ok = pipeline_apply_batch(p, b, n, err, sizeof(err)) == 0;
        atomic_store(&p->pg_ok, ok);
        if (ok) break;
        pipeline_retry_log(p, b, n, attempt, err);
        pipeline_backoff(attempt);
    }
    for (int attempt = 0;; attempt++) {
        if (pipeline_publish(p, b, n, err, sizeof(err)) == 0) break;
        if (shutdown_requested()) return -1;
        pipeline_retry_log(p, b, n, attempt, err);
        pipeline_backoff(attempt);
    }
    fault_point("pipeline.before_store");
    double seconds = elapsed_since(&t0);
    for (size_t i = 0; i < n; i++) {
        kafka_consumer_store(p->consumer, b[i].rkm);
        metrics_inc(b[i].out == OUTCOME_APPLIED     ? p->m_applied
                    : b[i].out == OUTCOME_DUPLICATE ? p->m_duplicate
                                                    : p->m_dead);
        metrics_observe(p->m_apply_seconds, seconds);
    }
    return 0;
}

void pipeline_set_batch_hooks(pipeline_t *p, pipeline_batch_begin_fn begin, pipeline_batch_end_fn end) {
    p->batch_begin = begin;
    p->batch_end = end;
}

int pipeline_poll(pipeline_t *p, int timeout_ms) {
    rd_kafka_message_t *msgs[PIPELINE_BATCH_MAX];
    size_t n = kafka_consumer_poll_batch(p->consumer, timeout_ms, msgs, p->batch_max);
    /* Serve delivery reports of anything produced outside a wait. */
    rd_kafka_poll(kafka_producer_handle(p->producer), 0);
    if (n > 0) {
        pending_t *b = calloc(n, sizeof(*b));
        if (b == NULL) abort();
        for (size_t i = 0; i < n; i++) b[i].rkm = msgs[i];
        pipeline_handle(p, b, n);
        for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(msgs[i]);
        free(b);
    } else if (time(NULL) - p->last_idle_check >= 5) {
        /* Idle: keep readiness true to life, and publish an outbox left by
         * a crash (or by a transaction outside the pipeline). */
        p->last_idle_check = time(NULL);
        char err[512];
        int ok = pg_ping(p->pg) == 0;
        if (ok && pipeline_outbox_relay(p, err, sizeof(err)) != 0) log_warn("outbox relay: %s", err);
        atomic_store(&p->pg_ok, ok);
    }
    if (kafka_consumer_fatal(p->consumer) || kafka_producer_fatal(p->producer)) return -1;
    return 0;
}

int pipeline_ready(void *opaque, char *why, size_t len) {
    pipeline_t *p = opaque;
    if (!atomic_load(&p->pg_ok)) {
        snprintf(why, len, "postgresql unreachable");
        return -1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(kafka_producer_handle(p->producer), 0, NULL, &md, 2000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(why, len, "kafka unreachable: %s", rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}
