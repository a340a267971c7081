/* api: see api.h.  Handlers run on libmicrohttpd's threads (one per
 * connection, so a long poll blocks nobody else); each borrows a PostgreSQL
 * connection from the pool for the request. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "users.h"

void api_init(api_t *api, pg_pool_t *pool, const check_rules_t *rules, work_t *work, people_t *people,
              metrics_registry_t *metrics) {
    memset(api, 0, sizeof(*api));
    api->pool = pool;
    api->rules = rules;
    api->work = work;
    api->people = people;
    api->metrics = metrics;
    pthread_mutex_init(&api->scratch_lock, NULL);
}

void api_destroy(api_t *api) {
    for (size_t i = 0; i < api->nscratch; i++) check_scratch_destroy(api->scratch[i]);
    free(api->scratch);
    pthread_mutex_destroy(&api->scratch_lock);
}

static check_scratch_t *scratch_get(api_t *api) {
    pthread_mutex_lock(&api->scratch_lock);
    check_scratch_t *s = api->nscratch ? api->scratch[--api->nscratch] : NULL;
    pthread_mutex_unlock(&api->scratch_lock);
    return s ? s : check_scratch_new();
}

static void scratch_put(api_t *api, check_scratch_t *s) {
    pthread_mutex_lock(&api->scratch_lock);
    if (api->nscratch == api->capscratch) {
        api->capscratch = api->capscratch ? api->capscratch * 2 : 8;
        api->scratch = realloc(api->scratch, api->capscratch * sizeof(*api->scratch));
        if (api->scratch == NULL) abort();
    }
    api->scratch[api->nscratch++] = s;
    pthread_mutex_unlock(&api->scratch_lock);
}

static void handle_me(api_t *api, const user_t *user, const http_request_t *req, http_response_t *resp) {
    (void)req;
    json_t *me = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "user_id", user->user_id, "name", user->name, "role",
                           user->role, "status", user->status, "locale", user->locale, "validated_count",
                           user->validated_count);
    json_object_set_new(me, "rolling_quality", user->has_quality ? json_real(user->rolling_quality) : json_null());
    json_t *skills = json_array();
    for (size_t i = 0; i < user->nskills; i++) json_array_append_new(skills, json_string(user->skills[i]));
    json_object_set_new(me, "skills", skills);
    if (strcmp(user->role, "candidate") == 0) {
        /* Where the candidate stands in the funnel ("" until it knows them). */
        char stage[32];
        pg_t *pg = pg_pool_get(api->pool, 5000);
        int rc = pg ? people_candidate_stage(pg, user->user_id, stage, sizeof(stage)) : -1;
        pg_pool_put(api->pool, pg);
        if (rc != 0) {
            json_decref(me);
            http_response_error(resp, 503, "unavailable", "try again shortly");
            return;
        }
        json_object_set_new(me, "stage", json_string(stage));
    }
    http_response_json(resp, 200, me);
}

/* POST /v1/check: the autochecker's findings without submitting. */
static void handle_check(api_t *api, const user_t *user, const http_request_t *req, http_response_t *resp) {
    (void)user;
    json_t *body = http_request_json(req, resp);
    if (body == NULL) return;
    check_task_t task;
    const char *text;
    size_t len;
    char err[512];
    if (check_request_from_json(body, &task, &text, &len, err, sizeof(err)) != 0) {
        http_response_error(resp, 400, "invalid_field", "%s", err);
        check_task_clear(&task);
        json_decref(body);
        return;
    }
    check_scratch_t *scratch = scratch_get(api);
    check_result_t result;
    check_result_init(&result);
    if (scratch == NULL || check_run(api->rules, scratch, &task, text, len, &result, err, sizeof(err)) != 0) {
        http_response_error(resp, 400, "invalid_field", "%s", scratch ? err : "out of memory");
    } else {
        http_response_json(resp, 200, check_result_to_json(&result));
    }
    if (scratch) scratch_put(api, scratch);
    check_result_free(&result);
    check_task_clear(&task);
    json_decref(body);
}

typedef void (*route_fn)(api_t *api, const user_t *user, const char *id, const http_request_t *req,
                         http_response_t *resp);

static void route_me(api_t *api, const user_t *user, const char *id, const http_request_t *req, http_response_t *resp) {
    (void)id;
    handle_me(api, user, req, resp);
}

static void route_check(api_t *api, const user_t *user, const char *id, const http_request_t *req,
                        http_response_t *resp) {
    (void)id;
    handle_check(api, user, req, resp);
}

static void route_lease(api_t *api, const user_t *user, const char *id, const http_request_t *req,
                        http_response_t *resp) {
    (void)id;
    work_acquire(api->work, user, req, resp);
}

static void route_heartbeat(api_t *api, const user_t *user, const char *id, const http_request_t *req,
                            http_response_t *resp) {
    (void)req;
    work_heartbeat(api->work, user, id, resp);
}

static void route_release(api_t *api, const user_t *user, const char *id, const http_request_t *req,
                          http_response_t *resp) {
    (void)req;
    work_release(api->work, user, id, resp);
}

static void route_submit(api_t *api, const user_t *user, const char *id, const http_request_t *req,
                         http_response_t *resp) {
    work_submit(api->work, user, id, req, resp);
}

static void route_screening_get(api_t *api, const user_t *user, const char *id, const http_request_t *req,
                                http_response_t *resp) {
    (void)id;
    (void)req;
    people_screening_get(api->people, user, resp);
}

static void route_screening_post(api_t *api, const user_t *user, const char *id, const http_request_t *req,
                                 http_response_t *resp) {
    (void)id;
    people_screening_post(api->people, user, req, resp);
}

static void route_training_get(api_t *api, const user_t *user, const char *id, const http_request_t *req,
                               http_response_t *resp) {
    (void)id;
    (void)req;
    people_training_get(api->people, user, resp);
}

static void route_training_complete(api_t *api, const user_t *user, const char *id, const http_request_t *req,
                                    http_response_t *resp) {
    (void)id;
    people_training_complete(api->people, user, req, resp);
}

typedef struct route {
    const char *method;
    const char *path; /* "{id}" matches one path segment */
    route_fn fn;
} route_t;

static const route_t routes[] = {
    {"GET", "/v1/me", route_me},
    {"POST", "/v1/check", route_check},
    {"POST", "/v1/leases", route_lease},
    {"POST", "/v1/leases/{id}/heartbeat", route_heartbeat},
    {"POST", "/v1/leases/{id}/release", route_release},
    {"POST", "/v1/leases/{id}/submit", route_submit},
    {"GET", "/v1/screening", route_screening_get},
    {"POST", "/v1/screening", route_screening_post},
    {"GET", "/v1/training", route_training_get},
    {"POST", "/v1/training/complete", route_training_complete},
    {NULL, NULL, NULL},
};

/* Matches path against a route pattern; the {id} segment is copied out.
 * Any segment matches, the empty one too: a lease id this server never
 * issued (empty, or too long for id, which then gets "") is the handler's
 * to refuse as an unknown lease, not a path that does not exist. */
static int route_match(const char *pattern, const char *path, char *id, size_t idlen) {
    const char *brace = strstr(pattern, "{id}");
    if (brace == NULL) return strcmp(pattern, path) == 0;
    size_t pre = (size_t)(brace - pattern);
    if (strncmp(pattern, path, pre) != 0) return 0;
    const char *seg = path + pre, *end = strchr(seg, '/');
    size_t n = end ? (size_t)(end - seg) : strlen(seg);
    if (strcmp(brace + 4, end ? end : "") != 0) return 0;
    if (n >= idlen) n = 0;
    memcpy(id, seg, n);
    id[n] = '\0';
    return 1;
}

/* The route of method and path, or NULL; allow gets the methods the path
 * has ("" when none: 404), for a 405's Allow header; id gets the {id}
 * segment. */
static const route_t *route_find(const http_request_t *req, char *allow, size_t allowlen, char *id, size_t idlen) {
    size_t used = 0;
    allow[0] = '\0';
    for (const route_t *r = routes; r->path != NULL; r++) {
        if (!route_match(r->path, req->path, id, idlen)) continue;
        if (strcmp(r->method, req->method) == 0) {
            allow[0] = '\0';
            return r;
        }
        int n = snprintf(allow + used, allowlen - used, "%s%s", used ? ", " : "", r->method);
        if (n > 0 && (size_t)n < allowlen - used) used += (size_t)n;
    }
    return NULL;
}

void api_observe(void *opaque, const http_request_t *req, const http_response_t *resp, double seconds) {
    api_t *api = opaque;
    char id[128], allow[48], labels[256], status[8];
    const route_t *route = route_find(req, allow, sizeof(allow), id, sizeof(id));
    snprintf(status, sizeof(status), "%d", resp->status);
    metrics_labels(labels, sizeof(labels), "route", route ? route->path : "other", "status", status, NULL);
    metrics_observe(metrics_histogram(api->metrics, "annot_http_request_seconds", "API request latency", labels,
                                      NULL, 0),
                    seconds);
}

void api_handle(void *opaque, const http_request_t *req, http_response_t *resp) {
    api_t *api = opaque;
    char id[128] = "";
    const route_t *route = route_find(req, resp->allow, sizeof(resp->allow), id, sizeof(id));
    if (route == NULL) {
        if (resp->allow[0]) http_response_error(resp, 405, "method_not_allowed", "%s is not allowed on %s", req->method, req->path);
        else http_response_error(resp, 404, "not_found", "no such endpoint");
    } else {
        const char *token = auth_bearer(http_request_header(req, "Authorization"));
        user_t user;
        char err[512];
        pg_t *pg = token ? pg_pool_get(api->pool, 5000) : NULL;
        users_lookup_t found = token == NULL ? USERS_UNKNOWN
                               : pg == NULL  ? USERS_UNAVAILABLE
                                             : users_by_token(pg, token, &user, err, sizeof(err));
        pg_pool_put(api->pool, pg);
        if (found == USERS_UNKNOWN) {
            http_response_error(resp, 401, "unauthorized", "a valid bearer token is required");
        } else if (found == USERS_UNAVAILABLE) {
            log_warn("user lookup failed: %s", pg ? err : "no database connection free");
            http_response_error(resp, 503, "unavailable", "try again shortly");
        } else {
            route->fn(api, &user, id, req, resp);
        }
    }
}
