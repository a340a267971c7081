/* annotctl: the operators' and analysts' command line.  Each command is a
 * function in the table below; they share the configuration of every binary
 * (ANNOT_* environment, -X key=value). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annotctl.h"
#include "log.h"
#include "service.h"

static const config_def_t annotctl_defs[] = {
    {"topics.replication.factor", CONFIG_INT, "1", NULL, 1, 32, false,
     "replication factor of the topics `topics create` makes"},
    {"dispatcher.schema", CONFIG_STRING, "dispatcher", NULL, 0, 0, false, "the dispatcher's PostgreSQL schema"},
    {"dispatcher.migrations", CONFIG_STRING, "services/annot-dispatcher/migrations", NULL, 0, 0, false,
     "the dispatcher's migrations (applied before users are added)"},
    {"funnel.schema", CONFIG_STRING, "funnel", NULL, 0, 0, false,
     "the funnel's PostgreSQL schema (candidates import checks re-applications there; candidates show; "
     "annotators)"},
    {"standing.window", CONFIG_INT, "50", NULL, 1, 10000, false,
     "K of annotators' rolling quality, as annot-funnel's key (annotators show)"},
    {"metrics.schema", CONFIG_STRING, "metrics", NULL, 0, 0, false, "annot-metrics' PostgreSQL schema (report)"},
    {"admin.timeout.ms", CONFIG_INT, "30000", NULL, 100, 600000, false,
     "how long an admin request may take"},
    {NULL, 0, NULL, NULL, 0, 0, false, NULL},
};

typedef struct annotctl_command {
    const char *group;
    const char *verb;
    int (*run)(service_t *svc, int argc, char **argv);
    const char *help;
} annotctl_command_t;

static const annotctl_command_t commands[] = {
    {"topics", "create", annotctl_topics_create, "create every topic of the topic table (real Kafka, Admin API)"},
    {"topics", "list", annotctl_topics_list, "list the cluster's topics beside the topic table"},
    {"check", NULL, annotctl_check, "FILE.ndjson (or -): offline lint, one JSON result per input line"},
    {"tasks", "import", annotctl_tasks_import, "FILE.ndjson: tasks onto the tasks topic (all lines valid, or none)"},
    {"users", "add", annotctl_users_add, "--role R --name N [--locale L] [--skills a,b]: prints the token once"},
    {"users", "rotate", annotctl_users_rotate, "USER_ID: a new token for that user, printed once; the old one stops"},
    {"candidates", "import", annotctl_candidates_import,
     "FILE.ndjson: candidates (users + applications; all lines valid, or none); prints ids and tokens"},
    {"candidates", "show", annotctl_candidates_show, "ID: a candidate's stage and history"},
    {"annotators", "show", annotctl_annotators_show,
     "ID: an annotator's standing: status, rolling quality over the last K, status history"},
    {"annotators", "reinstate", annotctl_annotators_reinstate,
     "ID --reason TEXT: a suspended annotator back on probation now (retrained)"},
    {"status", NULL, annotctl_status, "reachability of Kafka, PostgreSQL and Redis"},
    {"dlq", "list", annotctl_dlq_list, "one JSON line per dead letter: origin, service, reason"},
    {"dlq", "replay", annotctl_dlq_replay, "put dead letters (by id) back on their original topic"},
    {"metrics", "tail", annotctl_metrics_tail, "[--json] [--from-beginning] [--once]: the metrics topic, one line each"},
    {"report", NULL, annotctl_report, "[--version V] [--day YYYY-MM-DD]: the operation's report from the metric views"},
    {NULL, NULL, NULL, NULL},
};

/* "COMMAND [ARGS]" and the command table, for --help. */
static void annotctl_usage(char *buf, size_t len) {
    size_t off = (size_t)snprintf(buf, len, "COMMAND [ARGS]\n\nCommands:");
    for (const annotctl_command_t *c = commands; c->group != NULL && off < len; c++) {
        char name[64];
        snprintf(name, sizeof(name), "%s%s%s", c->group, c->verb ? " " : "", c->verb ? c->verb : "");
        off += (size_t)snprintf(buf + off, len - off, "\n  %-16s %s", name, c->help);
    }
}

int main(int argc, char **argv) {
    char usage[2048];
    annotctl_usage(usage, sizeof(usage));
    service_t svc;
    int rc = service_init(&svc, "annotctl", "Operator and analyst command line.", usage, annotctl_defs,
                          argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;
    /* A command line tool speaks to a person: warnings only on its log,
     * and the log on stderr, since stdout carries the results (tokens,
     * JSON lines) that scripts read. */
    if (log_min_level < LOG_LEVEL_WARN && getenv("ANNOT_LOG_LEVEL") == NULL) log_init("annotctl", LOG_LEVEL_WARN);
    log_set_fd(STDERR_FILENO);
    if (svc.nargs == 0) {
        fprintf(stderr, "annotctl: no command; see annotctl --help\n");
        service_destroy(&svc);
        return 2;
    }
    const annotctl_command_t *cmd = NULL;
    for (const annotctl_command_t *c = commands; c->group != NULL; c++) {
        if (strcmp(c->group, svc.args[0]) != 0) continue;
        if (c->verb == NULL || (svc.nargs > 1 && strcmp(c->verb, svc.args[1]) == 0)) {
            cmd = c;
            break;
        }
    }
    if (cmd == NULL) {
        fprintf(stderr, "annotctl: unknown command '%s%s%s'; see annotctl --help\n", svc.args[0],
                svc.nargs > 1 ? " " : "", svc.nargs > 1 ? svc.args[1] : "");
        service_destroy(&svc);
        return 2;
    }
    int skip = cmd->verb ? 2 : 1;
    rc = cmd->run(&svc, svc.nargs - skip, svc.args + skip);
    service_destroy(&svc);
    return rc;
}
