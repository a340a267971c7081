/* people: candidates and annotators as the dispatcher sees them.
 *
 * From Kafka (in the intake pipeline, idempotent): the candidates topic
 * tells which stage each candidate is in and which screening test and
 * training they were given (annot-funnel decides all of it); the annotators
 * topic carries each annotator's standing (status, rolling quality) and, on
 * promotion, the role, locale and skills the dispatcher then leases by.
 *
 * Over HTTP (candidates only): GET/POST /v1/screening serves the assigned
 * questions without the key and takes the answers; GET /v1/training serves
 * the training material and POST /v1/training/complete takes the
 * acknowledgement.  Each accepted answer is recorded with its CandidateEvent
 * in the outbox in one transaction, so a 202 means the event is durable. */
#ifndef DISPATCHER_PEOPLE_H
#define DISPATCHER_PEOPLE_H

#include "http.h"
#include "pg_pool.h"
#include "pipeline.h"
#include "screening.h"
#include "training.h"
#include "users.h"

typedef struct people {
    pg_pool_t *pool;
    const screening_bank_t *bank;
    const training_t *training;
    const char *candidates_topic;
    const char *source;
} people_t;

/* The pipeline's apply for CandidateEvents and AnnotatorStatusEvents. */
pipeline_result_t people_apply_candidate(pg_t *pg, const rd_kafka_message_t *rkm, char *errstr, size_t errlen);
pipeline_result_t people_apply_annotator(pg_t *pg, const rd_kafka_message_t *rkm, char *errstr, size_t errlen);

/* The candidate's stage ("applied", "screening", ...) into buf; "" when the
 * funnel has not told us of them yet.  -1 when the database failed. */
int people_candidate_stage(pg_t *pg, const char *candidate_id, char *buf, size_t len);

void people_screening_get(people_t *p, const user_t *user, http_response_t *resp);
void people_screening_post(people_t *p, const user_t *user, const http_request_t *req, http_response_t *resp);
void people_training_get(people_t *p, const user_t *user, http_response_t *resp);
void people_training_complete(people_t *p, const user_t *user, const http_request_t *req, http_response_t *resp);

#endif
