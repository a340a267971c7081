/* annot-devbroker: Kafka for development and tests, with no JVM.  It runs
 * librdkafka's own mock cluster (rdkafka_mock.h), which speaks the real Kafka
 * protocol on loopback TCP ports, with consumer groups and committed offsets.
 * The mock has no CreateTopics, so every topic of the topic table is created
 * here, with its partition count, before the bootstrap list is published;
 * devbroker.topic.prefixes adds one copy of the table per prefix, for
 * isolated users of one cluster (the test runner's parallel lanes, each
 * with its own topics.prefix).
 * Limits of the mock: no transactions, about 5 MiB kept per partition.
 *
 * For the fault suite, SIGUSR1 takes broker devbroker.fault.broker down (its
 * connections close and it accepts none) and SIGUSR2 brings it back up. */
#include <signal.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"
#include "service.h"
#include "shutdown.h"

static const config_def_t devbroker_defs[] = {
    {"devbroker.brokers", CONFIG_INT, "3", NULL, 1, 16, false, "number of mock brokers"},
    {"devbroker.addr.file", CONFIG_STRING, "", NULL, 0, 0, false,
     "file to write the bootstrap list to, once every topic exists"},
    {"devbroker.topic.prefixes", CONFIG_STRING, "", "ANNOT_DEVBROKER_TOPIC_PREFIXES", 0, 0, false,
     "space-separated prefixes: the topic table is also created once under each"},
    {"devbroker.fault.broker", CONFIG_INT, "1", NULL, 1, 16, false,
     "the broker SIGUSR1 takes down and SIGUSR2 brings up (fault tests)"},
    {NULL, 0, NULL, NULL, 0, 0, false, NULL},
};

/* Creates every topic of the table, each name after prefix.  Each create
 * is an operation posted to the mock cluster's thread.  With librdkafka
 * 2.0.2 one now and then got no wake-up: gdb showed the thread in its
 * one-second poll while the create waited for its answer, so a start took
 * up to 16 s, in one start out of six (56 topics, the test runner's
 * lanes).  Likely cause: the next create is posted the moment the previous
 * answer arrives, while the thread is still serving its queue.  A
 * millisecond between creates removed it (60 starts, each under 0.1 s,
 * also with both cores busy). */
static int create_topics(rd_kafka_mock_cluster_t *mc, const topics_t *topics, const char *prefix, int replication) {
    for (size_t i = 0; i < topics->count; i++) {
        const topic_def_t *t = &topics->items[i];
        char name[512];
        snprintf(name, sizeof(name), "%s%s", prefix, t->name);
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, t->partitions, replication);
        usleep(1000); /* see above */
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            log_fatal("creating topic %s: %s", name, rd_kafka_err2str(e));
            return -1;
        }
    }
    return 0;
}

/* Writes text to path through a temporary file and rename, so a reader
 * never sees half of it. */
static int write_atomically(const char *path, const char *text) {
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) return -1;
    int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static volatile sig_atomic_t broker_wanted_down = -1; /* -1: no change asked */

static void on_fault_signal(int sig) { broker_wanted_down = sig == SIGUSR1; }

int main(int argc, char **argv) {
    service_t svc;
    int rc = service_init(&svc, "annot-devbroker",
                          "Embedded Kafka (librdkafka mock cluster) with the topics of the topic table.",
                          NULL, devbroker_defs, argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;

    char err[512];
    /* No kafka.* keys here: they describe the cluster to connect to, and
     * this handle connects to none. */
    rd_kafka_conf_t *conf = kafka_conf_new(NULL, "annot-devbroker", NULL, err, sizeof(err));
    if (conf == NULL) {
        log_fatal("%s", err);
        return 2;
    }
    /* The handle only anchors the mock cluster; it talks to nobody. */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        log_fatal("rd_kafka_new: %s", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    conf = NULL; /* now owned by rk */
    int brokers = (int)config_int(svc.cfg, "devbroker.brokers");
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (mc == NULL) {
        log_fatal("cannot start the mock cluster");
        rd_kafka_destroy(rk);
        return 1;
    }
    int replication = brokers < 3 ? brokers : 3;
    if (create_topics(mc, &svc.topics, "", replication) != 0) {
        rc = 1;
        goto out;
    }
    char prefixes[1024];
    snprintf(prefixes, sizeof(prefixes), "%s", config_str(svc.cfg, "devbroker.topic.prefixes"));
    char *save = NULL;
    for (char *p = strtok_r(prefixes, " \t", &save); p; p = strtok_r(NULL, " \t", &save)) {
        if (create_topics(mc, &svc.topics, p, replication) != 0) {
            rc = 1;
            goto out;
        }
    }
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    const char *addr_file = config_str(svc.cfg, "devbroker.addr.file");
    if (addr_file[0] && write_atomically(addr_file, bootstraps) != 0) {
        log_fatal("config key 'devbroker.addr.file': cannot write '%s'", addr_file);
        rc = 1;
        goto out;
    }
    if (service_ops_start(&svc, NULL, NULL) != 0) {
        rc = 1;
        goto out;
    }
    log_write_fields(LOG_LEVEL_INFO,
                     json_pack("{s:s, s:i, s:i}", "bootstrap_servers", bootstraps, "brokers", brokers, "topics",
                               (int)svc.topics.count),
                     "mock kafka cluster ready");
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fault_signal;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    int32_t fault_broker = (int32_t)config_int(svc.cfg, "devbroker.fault.broker");
    while (!shutdown_requested()) {
        rd_kafka_poll(rk, 200);
        int want = broker_wanted_down;
        if (want < 0) continue;
        broker_wanted_down = -1;
        rd_kafka_resp_err_t e = want ? rd_kafka_mock_broker_set_down(mc, fault_broker)
                                     : rd_kafka_mock_broker_set_up(mc, fault_broker);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) log_error("broker %d: %s", fault_broker, rd_kafka_err2str(e));
        else log_warn("broker %d is %s", fault_broker, want ? "down (SIGUSR1)" : "up again (SIGUSR2)");
    }
    log_info("shutting down");
out:
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    service_destroy(&svc);
    return rc;
}
