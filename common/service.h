/* service: what every binary does the same way at start and stop.  It parses
 * the command line (--help, --version, --config FILE, -X key=value), loads the
 * configuration in its order (defaults -> $config.dir/annot.conf ->
 * $config.dir/<name>.conf -> --config FILE -> environment -> -X), starts the
 * logger, installs the signal handlers, loads the topic table, and serves
 * /healthz, /readyz and /metrics. */
#ifndef ANNOT_SERVICE_H
#define ANNOT_SERVICE_H

#include "config.h"
#include "http.h"
#include "metrics.h"
#include "topics.h"

/* Readiness: 0 when ready, or -1 with the reason in why. */
typedef int (*service_ready_fn)(void *opaque, char *why, size_t len);

typedef struct service {
    const char *name;
    config_t *cfg;
    topics_t topics;
    metrics_registry_t *metrics;
    http_server_t *ops;
    service_ready_fn ready;
    void *ready_opaque;
    char **args; /* positional arguments, for binaries that take them */
    int nargs;
} service_t;

/* args_usage describes the positional arguments after the options (a tool's
 * command), or is NULL when the binary takes none.  Returns 0 to run, 1 when
 * the command line asked only for --help or --version (already printed), -1
 * when the command line or the configuration is bad (the reason, naming the
 * key, is already logged). */
int service_init(service_t *svc, const char *name, const char *summary, const char *args_usage,
                 const config_def_t *defs, int argc, char **argv);
/* The topic name of a role in the topic table; logs and returns NULL if the
 * table lacks it. */
const char *service_topic(const service_t *svc, const char *role);
/* A path under config.dir. */
void service_config_path(const service_t *svc, const char *file, char *out, size_t len);
/* Starts the ops endpoints on ops.addr; ready may be NULL (always ready). */
int service_ops_start(service_t *svc, service_ready_fn ready, void *opaque);
void service_destroy(service_t *svc);

#endif
