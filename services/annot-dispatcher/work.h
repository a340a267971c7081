/* work: the lease endpoints of the API: POST /v1/leases (with long poll),
 * .../heartbeat, .../release and .../submit, over the lease module
 * (leases.h) and PostgreSQL.  A submission is accepted in two checks: the
 * Redis script proves the lease is live with its fencing token, then the
 * PostgreSQL transaction refuses it if a submission with an equal or higher
 * token was recorded; the SubmissionEvent goes into the outbox in that same
 * transaction, so a 202 means the event is durable. */
#ifndef DISPATCHER_WORK_H
#define DISPATCHER_WORK_H

#include <pthread.h>

#include "http.h"
#include "kafka.h"
#include "lease_policy.h"
#include "leases.h"
#include "metrics.h"
#include "pg_pool.h"
#include "redis.h"
#include "check.h"
#include "users.h"
#include "verdict.h"
#include "wake.h"

typedef struct work_conn {
    redis_t *redis;
    lease_store_t *leases;
} work_conn_t;

typedef struct work {
    const char *redis_url;
    const char *ns;
    lease_policy_t policy;
    wake_t *wake;
    pg_pool_t *pool;
    kafka_producer_t *producer;
    const char *submissions_topic;
    const char *results_topic;  /* validation-results */
    const char *feedback_topic; /* guideline feedback */
    const char *candidates_topic; /* exam cases submitted, for the funnel */
    const check_taxonomy_t *taxonomy;
    double weights[4];          /* by check_severity_t */
    const char *source;
    pthread_mutex_t lock;
    work_conn_t *conns; /* idle Redis connections, one per request in flight */
    size_t nconns, capconns;
    metrics_series_t *m_granted, *m_empty, *m_lost, *m_submitted, *m_released;
} work_t;

/* Where submissions go: the topics of submissions, validation results,
 * guideline feedback and candidates (exam cases submitted); the taxonomy and severity weights verdicts are
 * checked and scored with. */
typedef struct work_outputs {
    const char *submissions_topic, *results_topic, *feedback_topic, *candidates_topic;
    const check_taxonomy_t *taxonomy;
    const check_rules_t *rules;
} work_outputs_t;

void work_init(work_t *w, const char *redis_url, const char *ns, const lease_policy_t *policy, wake_t *wake,
               pg_pool_t *pool, kafka_producer_t *producer, const work_outputs_t *outputs, const char *source,
               metrics_registry_t *metrics);
void work_destroy(work_t *w);

void work_acquire(work_t *w, const user_t *user, const http_request_t *req, http_response_t *resp);
void work_heartbeat(work_t *w, const user_t *user, const char *lease_id, http_response_t *resp);
void work_release(work_t *w, const user_t *user, const char *lease_id, http_response_t *resp);
void work_submit(work_t *w, const user_t *user, const char *lease_id, const http_request_t *req,
                 http_response_t *resp);
/* Requeues expired leases (or parks their tasks); returns how many. */
size_t work_reap(work_t *w);

#endif
