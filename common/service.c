/* service: see service.h. */
#include "service.h"

#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "log.h"
#include "shutdown.h"
#include "version.h"

static void service_usage(const service_t *svc, const char *summary, const char *args_usage) {
    printf("Usage: %s [--config FILE] [-X key=value]... %s\n\n%s\n\n"
           "Options:\n"
           "  -c, --config FILE   read FILE after the files in config.dir\n"
           "  -X key=value        set a configuration key (last wins; kafka.* go to librdkafka)\n"
           "  -h, --help          this text\n"
           "  -V, --version       print the version\n\n",
           svc->name, args_usage ? args_usage : "", summary);
    config_print_help(svc->cfg, stdout);
}

int service_init(service_t *svc, const char *name, const char *summary, const char *args_usage,
                 const config_def_t *defs, int argc, char **argv) {
    memset(svc, 0, sizeof(*svc));
    svc->name = name;
    svc->cfg = config_new(defs);
    svc->metrics = metrics_registry_new();
    log_init(name, LOG_LEVEL_INFO);

    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *extra_file = NULL, *dir_pair = NULL;
    int opt;
    optind = 1;
    /* '+': options end at the first positional argument (a tool's command
     * may have options of its own). */
    while ((opt = getopt_long(argc, argv, "+c:X:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': extra_file = optarg; break;
        case 'X': /* applied last, below; config.dir is needed first */
            if (strncmp(optarg, "config.dir=", 11) == 0) dir_pair = optarg;
            break;
        case 'h': service_usage(svc, summary, args_usage); return 1;
        case 'V':
            printf("%s %s (librdkafka %s)\n", name, ANNOT_VERSION, rd_kafka_version_str());
            return 1;
        default: log_fatal("unknown command-line option; see --help"); return -1;
        }
    }
    if (optind < argc && args_usage == NULL) {
        log_fatal("unexpected argument '%s'; see --help", argv[optind]);
        return -1;
    }
    svc->args = argv + optind;
    svc->nargs = argc - optind;
    int args_end = optind;

    char err[1024] = "";
    char path[4096];
    /* config.dir decides which files load, so it is taken before them from
     * the layers that outrank files (environment, then -X). */
    const char *env_dir = getenv("ANNOT_CONFIG_DIR");
    if (env_dir && config_set(svc->cfg, "config.dir", env_dir, "env ANNOT_CONFIG_DIR", err, sizeof(err)) != 0)
        goto fail;
    if (dir_pair && config_set_pair(svc->cfg, dir_pair, "command line", err, sizeof(err)) != 0) goto fail;
    service_config_path(svc, "annot.conf", path, sizeof(path));
    if (config_load_file(svc->cfg, path, true, err, sizeof(err)) != 0) goto fail;
    char own[256];
    snprintf(own, sizeof(own), "%s.conf", name);
    service_config_path(svc, own, path, sizeof(path));
    if (config_load_file(svc->cfg, path, true, err, sizeof(err)) != 0) goto fail;
    if (extra_file && config_load_file(svc->cfg, extra_file, false, err, sizeof(err)) != 0) goto fail;
    if (config_load_env(svc->cfg, err, sizeof(err)) != 0) goto fail;
    optind = 1;
    while ((opt = getopt_long(args_end, argv, "+c:X:hV", longopts, NULL)) != -1) {
        if (opt == 'X' && config_set_pair(svc->cfg, optarg, "command line", err, sizeof(err)) != 0) goto fail;
    }
    if (config_check_required(svc->cfg, err, sizeof(err)) != 0) goto fail;

    log_level_t level;
    if (log_level_parse(config_str(svc->cfg, "log.level"), &level) != 0) {
        snprintf(err, sizeof(err), "config key 'log.level' (%s): not a level (debug, info, warn, error): '%s'",
                 config_origin(svc->cfg, "log.level"), config_str(svc->cfg, "log.level"));
        goto fail;
    }
    log_init(name, level);
    if (fault_init(config_str(svc->cfg, "fault.crash_at")) != 0) {
        snprintf(err, sizeof(err), "config key 'fault.crash_at': want point or point:n");
        goto fail;
    }
    service_config_path(svc, config_str(svc->cfg, "topics.file"), path, sizeof(path));
    if (topics_load(&svc->topics, path, err, sizeof(err)) != 0) goto fail;
    if (topics_prefix(&svc->topics, config_str(svc->cfg, "topics.prefix"), err, sizeof(err)) != 0) {
        topics_free(&svc->topics);
        goto fail;
    }
    shutdown_install();
    return 0;
fail:
    log_fatal("%s", err);
    return -1;
}

void service_config_path(const service_t *svc, const char *file, char *out, size_t len) {
    if (file[0] == '/') snprintf(out, len, "%s", file);
    else snprintf(out, len, "%s/%s", config_str(svc->cfg, "config.dir"), file);
}

const char *service_topic(const service_t *svc, const char *role) {
    const topic_def_t *t = topics_find(&svc->topics, role);
    if (t == NULL) {
        log_error("topic table has no role '%s'", role);
        return NULL;
    }
    return t->name;
}

static void service_ops_handle(void *opaque, const http_request_t *req, http_response_t *resp) {
    service_t *svc = opaque;
    if (strcmp(req->method, "GET") != 0) {
        snprintf(resp->allow, sizeof(resp->allow), "GET");
        http_response_error(resp, 405, "method_not_allowed", "only GET here");
    } else if (strcmp(req->path, "/healthz") == 0) {
        http_response_json(resp, 200, json_pack("{s:s}", "status", "ok"));
    } else if (strcmp(req->path, "/readyz") == 0) {
        char why[512] = "";
        if (svc->ready == NULL || svc->ready(svc->ready_opaque, why, sizeof(why)) == 0)
            http_response_json(resp, 200, json_pack("{s:s}", "status", "ready"));
        else
            http_response_json(resp, 503, json_pack("{s:s, s:s}", "status", "not_ready", "reason", why));
    } else if (strcmp(req->path, "/metrics") == 0) {
        char *text = metrics_render(svc->metrics);
        resp->status = 200;
        resp->body = text;
        resp->body_len = strlen(text);
        resp->content_type = "text/plain; version=0.0.4";
    } else {
        http_response_error(resp, 404, "not_found", "no such endpoint");
    }
}

int service_ops_start(service_t *svc, service_ready_fn ready, void *opaque) {
    svc->ready = ready;
    svc->ready_opaque = opaque;
    char err[512];
    const char *addr = config_str(svc->cfg, "ops.addr");
    svc->ops = http_server_start(addr, 1024, 1, service_ops_handle, svc, err, sizeof(err));
    if (svc->ops == NULL) {
        log_fatal("config key 'ops.addr': %s", err);
        return -1;
    }
    log_write_fields(LOG_LEVEL_INFO, json_pack("{s:i}", "ops_port", http_server_port(svc->ops)),
                     "ops endpoints listening");
    return 0;
}

void service_destroy(service_t *svc) {
    http_server_stop(svc->ops, 1000);
    svc->ops = NULL;
    topics_free(&svc->topics);
    metrics_registry_destroy(svc->metrics);
    config_destroy(svc->cfg);
    svc->metrics = NULL;
    svc->cfg = NULL;
}
