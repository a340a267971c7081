/* annot-dispatcher: the only service people talk to.  It serves the HTTP API
 * of DESIGN.md section 7 on http.addr (ANNOT_HTTP_ADDR) and its ops
 * endpoints on ops.addr.  Built so far: authentication by bearer token,
 * GET /v1/me and POST /v1/check (the guideline checker before submitting).
 * Leases, intake and submissions follow (issue 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "auth.h"
#include "check.h"
#include "http.h"
#include "log.h"
#include "pg.h"
#include "pg_pool.h"
#include "service.h"
#include "shutdown.h"

static const config_def_t dispatcher_defs[] = {
    {"http.addr", CONFIG_STRING, "127.0.0.1:8080", "ANNOT_HTTP_ADDR", 0, 0, false, "host:port of the API"},
    {"http.max.body", CONFIG_INT, "1048576", NULL, 1024, 67108864, false, "largest request body accepted (413 above)"},
    {"http.drain.ms", CONFIG_INT, "10000", NULL, 0, 600000, false, "how long SIGTERM waits for requests in flight"},
    {"dispatcher.schema", CONFIG_STRING, "dispatcher", NULL, 0, 0, false, "PostgreSQL schema of this service"},
    {"dispatcher.migrations", CONFIG_STRING, "services/annot-dispatcher/migrations", NULL, 0, 0, false,
     "this service's SQL migrations"},
    {"dispatcher.pg.pool", CONFIG_INT, "8", NULL, 1, 256, false, "PostgreSQL connections for requests"},
    {"dispatcher.rules.dir", CONFIG_STRING, "guideline", NULL, 0, 0, false,
     "guideline rules for POST /v1/check, relative to config.dir"},
    {NULL, 0, NULL, NULL, 0, 0, false, NULL},
};

typedef struct ready_ctx {
    pg_pool_t *pool;
} ready_ctx_t;

static int dispatcher_ready(void *opaque, char *why, size_t len) {
    ready_ctx_t *r = opaque;
    pg_t *pg = pg_pool_get(r->pool, 1000);
    int ok = pg != NULL && pg_ping(pg) == 0;
    pg_pool_put(r->pool, pg);
    if (!ok) snprintf(why, len, "postgresql unreachable");
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    service_t svc;
    int rc = service_init(&svc, "annot-dispatcher", "The people-facing HTTP API: leases, submissions, checks.",
                          NULL, dispatcher_defs, argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;
    char err[1024], dir[4096];
    check_rules_t *rules = NULL;
    pg_t *pg = NULL;
    pg_pool_t *pool = NULL;
    http_server_t *http = NULL;
    api_t api;
    int api_ready = 0;
    rc = 1;
    if (auth_init() != 0) {
        log_fatal("libsodium failed to start");
        goto out;
    }
    service_config_path(&svc, config_str(svc.cfg, "dispatcher.rules.dir"), dir, sizeof(dir));
    if ((rules = check_rules_load(dir, err, sizeof(err))) == NULL) {
        log_fatal("config key 'dispatcher.rules.dir': %s", err);
        goto out;
    }
    const char *url = config_str(svc.cfg, "database.url"), *schema = config_str(svc.cfg, "dispatcher.schema");
    int timeout_s = (int)config_int(svc.cfg, "pg.connect.timeout.s");
    pg = pg_connect(url, schema, timeout_s, err, sizeof(err));
    if (pg == NULL || pg_migrate(pg, config_str(svc.cfg, "dispatcher.migrations"), err, sizeof(err)) != 0) {
        log_fatal("postgresql: %s", err);
        goto out;
    }
    if ((pool = pg_pool_new(url, schema, (int)config_int(svc.cfg, "dispatcher.pg.pool"), timeout_s, err,
                            sizeof(err))) == NULL) {
        log_fatal("postgresql: %s", err);
        goto out;
    }
    api_init(&api, pool, rules, svc.metrics);
    api_ready = 1;
    http = http_server_start(config_str(svc.cfg, "http.addr"), (size_t)config_int(svc.cfg, "http.max.body"), 0,
                             api_handle, &api, err, sizeof(err));
    if (http == NULL) {
        log_fatal("config key 'http.addr': %s", err);
        goto out;
    }
    ready_ctx_t ready = {pool};
    if (service_ops_start(&svc, dispatcher_ready, &ready) != 0) goto out;
    log_write_fields(LOG_LEVEL_INFO, json_pack("{s:i}", "http_port", http_server_port(http)), "API listening");
    rc = 0;
    while (!shutdown_requested()) nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    log_info("shutting down: draining requests");
out:
    /* Stop taking requests, let those in flight finish, then the stores. */
    http_server_stop(http, (int)config_int(svc.cfg, "http.drain.ms"));
    http_server_stop(svc.ops, 1000);
    svc.ops = NULL;
    if (api_ready) api_destroy(&api);
    pg_pool_destroy(pool);
    pg_close(pg);
    check_rules_destroy(rules);
    service_destroy(&svc);
    return rc;
}
