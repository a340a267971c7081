/* api: the people-facing HTTP API of DESIGN.md section 7.  One handler for
 * every request: authentication, routing, input validation (a 400 names the
 * failing field), and a latency histogram by route and status. */
#ifndef DISPATCHER_API_H
#define DISPATCHER_API_H

#include <pthread.h>

#include "check.h"
#include "http.h"
#include "metrics.h"
#include "people.h"
#include "pg_pool.h"
#include "work.h"

typedef struct api {
    pg_pool_t *pool;
    const check_rules_t *rules;
    work_t *work;
    people_t *people;
    metrics_registry_t *metrics;
    /* Scratch for the checker, one per request in flight, reused. */
    pthread_mutex_t scratch_lock;
    check_scratch_t **scratch;
    size_t nscratch, capscratch;
} api_t;

void api_init(api_t *api, pg_pool_t *pool, const check_rules_t *rules, work_t *work, people_t *people,
              metrics_registry_t *metrics);
void api_destroy(api_t *api);
/* The http_handler_fn of the API server. */
void api_handle(void *opaque, const http_request_t *req, http_response_t *resp);
/* Its http_observer_fn: the latency histogram by route and status, the
 * server's 413s included. */
void api_observe(void *opaque, const http_request_t *req, const http_response_t *resp, double seconds);

#endif
