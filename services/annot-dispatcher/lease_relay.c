/* lease_relay: see lease_relay.h. */
#include "lease_relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "annot/v1/deadletter.pb-c.h"
#include "log.h"

/* How long a claim lasts unless renewed: passes run every 100 ms at least,
 * so only a dead instance lets it lapse. */
#define CLAIM_TTL_MS 5000

/* Parked tasks leave PostgreSQL's queued state, so a rebuild does not queue
 * them again. */
static int record_parked(lease_relay_t *r, const lease_stream_entry_t *e, size_t n, char *errstr, size_t errlen) {
    const char **ids = calloc(n, sizeof(*ids));
    size_t k = 0;
    if (ids == NULL) abort();
    for (size_t i = 0; i < n; i++)
        if (e[i].parse_rc == 0 && e[i].rec.kind == LEASE_EVENT_PARKED) ids[k++] = e[i].rec.task_id;
    int rc = 0;
    if (k > 0) {
        char *arr = pg_text_array(ids, k);
        const char *p[1] = {arr};
        rc = pg_command(r->pg, "UPDATE tasks SET state = 'parked' WHERE task_id = ANY($1::text[]) AND state = 'queued'",
                        1, p, errstr, errlen) < 0 ? -1 : 0;
        free(arr);
    }
    free(ids);
    return rc;
}

/* The task and submission under validation for each validation lease, by
 * assignment id (subjects[i] for e[i]); the result backs the strings. */
static PGresult *validation_subjects(lease_relay_t *r, const lease_stream_entry_t *e, size_t n,
                                     lease_event_subject_t *subjects, char *errstr, size_t errlen) {
    const char **ids = calloc(n, sizeof(*ids));
    size_t k = 0;
    if (ids == NULL) abort();
    for (size_t i = 0; i < n; i++)
        if (e[i].parse_rc == 0) ids[k++] = e[i].rec.task_id;
    char *arr = pg_text_array(ids, k);
    free(ids);
    const char *p[1] = {arr};
    PGresult *res = pg_query(r->pg, PGRES_TUPLES_OK,
                             "SELECT assignment_id, submission_id, task_id FROM assignments "
                             "WHERE assignment_id = ANY($1::text[])",
                             1, p, errstr, errlen);
    free(arr);
    if (res == NULL) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (e[i].parse_rc != 0) continue;
        for (int row = 0; row < PQntuples(res); row++) {
            if (strcmp(PQgetvalue(res, row, 0), e[i].rec.task_id) == 0) {
                subjects[i].submission_id = PQgetvalue(res, row, 1);
                if (PQgetlength(res, row, 2) > 0) subjects[i].task_id = PQgetvalue(res, row, 2);
                break;
            }
        }
    }
    return res;
}

static int produce_dead(lease_relay_t *r, const char *stream, const lease_stream_entry_t *e, kafka_delivery_t *d,
                        char *errstr, size_t errlen) {
    char where[LEASE_KEY_MAX + 64], id[EVENT_ID_LEN];
    snprintf(where, sizeof(where), "%s/%s", stream, e->id);
    event_id_derive(id, where, "dead-letter");
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, r->source, "", "");
    Annot__V1__DeadLetter dl = ANNOT__V1__DEAD_LETTER__INIT;
    dl.header = &hdr;
    dl.payload.data = (uint8_t *)e->raw;
    dl.payload.len = e->raw ? strlen(e->raw) : 0;
    dl.topic = (char *)stream;
    dl.reason = (char *)e->err;
    dl.service = (char *)r->source;
    dl.failed_at_ms = hdr.occurred_at_ms;
    dl.reason_code = ANNOT__V1__DEAD_LETTER_REASON__DEAD_LETTER_REASON_DECODE_ERROR;
    size_t len = annot__v1__dead_letter__get_packed_size(&dl);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) abort();
    annot__v1__dead_letter__pack(&dl, buf);
    int rc = kafka_produce(r->producer, r->dlq_topic, e->id, strlen(e->id), buf, len, d, errstr, errlen);
    free(buf);
    return rc;
}

/* Relays one batch of queue q: the number relayed, or -1. */
static long relay_batch(lease_relay_t *r, lease_queue_t q, size_t n, char *errstr, size_t errlen) {
    lease_stream_entry_t *e = r->batch;
    lease_event_subject_t *subjects = calloc(n, sizeof(*subjects));
    kafka_delivery_t *d = calloc(n, sizeof(*d));
    if (subjects == NULL || d == NULL) abort();
    PGresult *res = NULL;
    long rc = -1, dead = 0;
    if (record_parked(r, e, n, errstr, errlen) != 0) goto out;
    if (q == LEASE_QUEUE_VALIDATION && (res = validation_subjects(r, e, n, subjects, errstr, errlen)) == NULL) goto out;
    char stream[LEASE_KEY_MAX];
    lease_events_stream(r->leases, q, stream, sizeof(stream));
    size_t produced = 0;
    for (; produced < n; produced++) {
        int prc;
        if (e[produced].parse_rc != 0) {
            log_error("lease event %s dead-lettered: %s", e[produced].id, e[produced].err);
            prc = produce_dead(r, stream, &e[produced], &d[produced], errstr, errlen);
            dead++;
        } else {
            lease_event_msg_t m;
            lease_event_build(&m, &e[produced].rec, q, &subjects[produced], r->source);
            size_t len = annot__v1__lease_event__get_packed_size(&m.ev);
            uint8_t *buf = malloc(len ? len : 1);
            if (buf == NULL) abort();
            annot__v1__lease_event__pack(&m.ev, buf);
            const char *key = lease_event_key(&m);
            prc = kafka_produce(r->producer, r->topic, key, strlen(key), buf, len, &d[produced], errstr, errlen);
            free(buf);
        }
        if (prc != 0) break;
    }
    /* Wait for what was enqueued even after a failure: librdkafka holds
     * pointers into d until it reports. */
    char werr[256];
    int wrc = kafka_producer_wait(r->producer, d, produced, werr, sizeof(werr));
    if (produced < n) goto out;
    if (wrc != 0) {
        snprintf(errstr, errlen, "%s", werr);
        goto out;
    }
    if (lease_events_delete(r->leases, q, e, n, errstr, errlen) != LEASE_OK) goto out;
    metrics_add(r->m_relayed, (double)(n - (size_t)dead));
    metrics_add(r->m_dead, (double)dead);
    rc = (long)n;
out:
    PQclear(res);
    free(subjects);
    free(d);
    return rc;
}

long lease_relay_pass(lease_relay_t *r, bool *more, char *errstr, size_t errlen) {
    long total = 0;
    *more = false;
    for (int q = LEASE_QUEUE_FIRST; q <= LEASE_QUEUE_LAST; q++) {
        bool mine;
        if (lease_events_claim(r->leases, (lease_queue_t)q, r->owner, CLAIM_TTL_MS, &mine, errstr, errlen) != LEASE_OK)
            return -1;
        if (!mine) continue;
        size_t n = 0;
        if (lease_events_read(r->leases, (lease_queue_t)q, r->batch, LEASE_RELAY_BATCH, &n, errstr, errlen) != LEASE_OK)
            return -1;
        long rc = n > 0 ? relay_batch(r, (lease_queue_t)q, n, errstr, errlen) : 0;
        lease_stream_entries_clear(r->batch, n);
        if (rc < 0) return -1;
        total += rc;
        if (n == LEASE_RELAY_BATCH) *more = true;
        long long pending = 0;
        if (lease_events_pending(r->leases, (lease_queue_t)q, &pending, errstr, errlen) == LEASE_OK)
            metrics_set(r->m_pending[q], (double)pending);
    }
    return total;
}

static void *relay_run(void *arg) {
    lease_relay_t *r = arg;
    char err[512];
    int failing = 0;
    for (;;) {
        bool stopping = atomic_load(&r->stop), more = false;
        long n = lease_relay_pass(r, &more, err, sizeof(err));
        if (n < 0) {
            /* Log the first failure of a run, not one per pass. */
            if (failing++ == 0) log_warn("lease relay: %s", err);
            pg_ensure(r->pg, err, sizeof(err));
        } else {
            if (failing) log_info("lease relay: recovered");
            failing = 0;
        }
        if (stopping) break;
        if (!more) nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    return NULL;
}

int lease_relay_start(lease_relay_t *r, lease_store_t *leases, pg_t *pg, kafka_producer_t *producer,
                      const char *topic, const char *dlq_topic, const char *source, metrics_registry_t *metrics) {
    r->leases = leases;
    r->pg = pg;
    r->producer = producer;
    r->topic = topic;
    r->dlq_topic = dlq_topic;
    r->source = source;
    event_id_new(r->owner);
    char l[128];
    r->m_relayed = metrics_counter(metrics, "annot_lease_events_total", "Lease events relayed to Kafka, by outcome",
                                   metrics_labels(l, sizeof(l), "outcome", "published", NULL));
    r->m_dead = metrics_counter(metrics, "annot_lease_events_total", "Lease events relayed to Kafka, by outcome",
                                metrics_labels(l, sizeof(l), "outcome", "dead_lettered", NULL));
    for (int q = LEASE_QUEUE_FIRST; q <= LEASE_QUEUE_LAST; q++)
        r->m_pending[q] = metrics_gauge(metrics, "annot_lease_events_pending",
                                        "Lease events in Redis not yet relayed, by queue",
                                        metrics_labels(l, sizeof(l), "queue", lease_queue_name((lease_queue_t)q), NULL));
    atomic_store(&r->stop, 0);
    if (pthread_create(&r->thread, NULL, relay_run, r) != 0) return -1;
    r->started = true;
    return 0;
}

void lease_relay_stop(lease_relay_t *r) {
    if (!r->started) return;
    atomic_store(&r->stop, 1);
    pthread_join(r->thread, NULL);
    r->started = false;
}
