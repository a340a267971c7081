/* annot-autochecker: checks every submission against the guideline rules
 * (common/check.h) and publishes the findings and score on the checks topic.
 * It consumes through the common pipeline, so each submission is checked
 * and recorded exactly once in effect; a submission that cannot be checked
 * (no task, no main object, a string not valid UTF-8, not a
 * SubmissionEvent) is dead-lettered.
 * SIGHUP reloads the rules between two batches: the batch in hand finishes
 * under the rules it started with, and a reload that fails keeps the old
 * rules. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "pipeline.h"
#include "service.h"
#include "shutdown.h"
#include "submission_check.h"

static const config_def_t autochecker_defs[] = {
    {"autochecker.group", CONFIG_STRING, "annot-autochecker", NULL, 0, 0, false, "consumer group"},
    {"autochecker.schema", CONFIG_STRING, "autochecker", NULL, 0, 0, false, "PostgreSQL schema of this service"},
    {"autochecker.rules.dir", CONFIG_STRING, "guideline", NULL, 0, 0, false,
     "guideline rules directory, relative to config.dir"},
    {"autochecker.migrations", CONFIG_STRING, "services/annot-autochecker/migrations", NULL, 0, 0, false,
     "this service's SQL migrations"},
    {NULL, 0, NULL, NULL, 0, 0, false, NULL},
};

typedef struct autochecker {
    service_t *svc;
    check_rules_t *rules;
    check_scratch_t *scratch;
    check_result_t result;
    metrics_series_t *m_checked, *m_blocking, *m_score;
} autochecker_t;

static volatile sig_atomic_t reload_flag = 0;

static void on_sighup(int sig) {
    (void)sig;
    reload_flag = 1;
}

static check_rules_t *rules_load(service_t *svc, char *err, size_t errlen) {
    char dir[4096];
    service_config_path(svc, config_str(svc->cfg, "autochecker.rules.dir"), dir, sizeof(dir));
    return check_rules_load(dir, err, errlen);
}

static void rules_reload(autochecker_t *ac) {
    char err[1024];
    check_rules_t *fresh = rules_load(ac->svc, err, sizeof(err));
    if (fresh == NULL) {
        log_error("rules reload failed, keeping rules %s: %s", check_rules_version(ac->rules), err);
        return;
    }
    /* Single-threaded: no check is running now, the old rules can go. */
    check_rules_destroy(ac->rules);
    ac->rules = fresh;
    log_info("rules reloaded: version %s", check_rules_version(ac->rules));
}

static pipeline_result_t autochecker_apply(void *opaque, pipeline_ctx_t *ctx, const rd_kafka_message_t *rkm,
                                           const Annot__V1__EventHeader *hdr, char *errstr, size_t errlen) {
    (void)hdr;
    autochecker_t *ac = opaque;
    Annot__V1__SubmissionEvent *ev =
        (Annot__V1__SubmissionEvent *)event_unpack(&annot__v1__submission_event__descriptor, rkm->payload, rkm->len, errstr, errlen);
    if (ev == NULL) return PIPELINE_INVALID;
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
    submission_check_out_t out = {0};
    pipeline_result_t r = PIPELINE_APPLIED;
    /* The check time is the input's log time: a replay gives the same bytes. */
    if (submission_check(ac->rules, ac->scratch, ev, ac->svc->name, ts > 0 ? ts : ev->header->occurred_at_ms,
                         &ac->result, &out, errstr, errlen) != 0) {
        r = PIPELINE_INVALID;
        goto done;
    }
    const Annot__V1__Submission *s = ev->submission;
    json_t *findings = check_result_to_json(&ac->result);
    char *findings_text = json_dumps(json_object_get(findings, "findings"), JSON_COMPACT);
    json_decref(findings);
    char score[32];
    snprintf(score, sizeof(score), "%.6f", ac->result.score);
    const char *params[11] = {s->submission_id, out.check_id, s->task_id, s->author_id, check_kind_name(out.kind),
                              s->task->locale, score, ac->result.blocking ? "true" : "false",
                              findings_text ? findings_text : "[]", check_rules_version(ac->rules),
                              ev->header->guideline_version};
    /* A second event for the same submission (a re-sent submit) changes
     * nothing: the first check stands. */
    long n = pg_command(pipeline_pg(ctx),
                        "INSERT INTO check_results (submission_id, check_id, task_id, author_id, task_kind, locale, "
                        "score, blocking, findings, rules_version, guideline_version) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (submission_id) DO NOTHING",
                        11, params, errstr, errlen);
    free(findings_text);
    if (n < 0) {
        r = PIPELINE_RETRY;
        goto done;
    }
    if (pipeline_emit(ctx, "checks", s->submission_id, strlen(s->submission_id), out.bytes, out.len, errstr,
                      errlen) != 0) {
        r = PIPELINE_RETRY;
        goto done;
    }
    metrics_inc(ac->m_checked);
    if (ac->result.blocking) metrics_inc(ac->m_blocking);
    metrics_observe(ac->m_score, ac->result.score);
done:
    free(out.bytes);
    annot__v1__submission_event__free_unpacked(ev, NULL);
    return r;
}

int main(int argc, char **argv) {
    service_t svc;
    int rc = service_init(&svc, "annot-autochecker",
                          "Checks every submission against the guideline rules and publishes the findings.", NULL,
                          autochecker_defs, argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;

    char err[1024];
    autochecker_t ac = {.svc = &svc};
    pg_t *pg = NULL;
    kafka_producer_t *producer = NULL;
    pipeline_t *pipe = NULL;
    rc = 1;
    check_result_init(&ac.result);
    if ((ac.rules = rules_load(&svc, err, sizeof(err))) == NULL) {
        log_fatal("config key 'autochecker.rules.dir': %s", err);
        goto out;
    }
    if ((ac.scratch = check_scratch_new()) == NULL) goto out;
    pg = pg_connect(config_str(svc.cfg, "database.url"), config_str(svc.cfg, "autochecker.schema"),
                    (int)config_int(svc.cfg, "pg.connect.timeout.s"), err, sizeof(err));
    if (pg == NULL || pg_migrate(pg, config_str(svc.cfg, "autochecker.migrations"), err, sizeof(err)) != 0) {
        log_fatal("postgresql: %s", err);
        goto out;
    }
    if ((producer = kafka_producer_new(svc.cfg, svc.name, err, sizeof(err))) == NULL) {
        log_fatal("%s", err);
        goto out;
    }
    static const double score_buckets[] = {0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0};
    ac.m_checked = metrics_counter(svc.metrics, "annot_checks_total", "Submissions checked", NULL);
    ac.m_blocking = metrics_counter(svc.metrics, "annot_checks_blocking_total", "Checks with a blocking finding", NULL);
    ac.m_score = metrics_histogram(svc.metrics, "annot_check_score", "Check scores", NULL, score_buckets,
                                   sizeof(score_buckets) / sizeof(score_buckets[0]));
    static const char *const roles[] = {"submissions"};
    pipeline_def_t def = {config_str(svc.cfg, "autochecker.group"), roles, 1, autochecker_apply, &ac};
    if ((pipe = pipeline_new(&svc, pg, producer, &def, err, sizeof(err))) == NULL) {
        log_fatal("%s", err);
        goto out;
    }
    if (service_ops_start(&svc, pipeline_ready, pipe) != 0) goto out;
    struct sigaction sa = {.sa_handler = on_sighup};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    log_info("checking submissions with rules %s", check_rules_version(ac.rules));
    rc = 0;
    while (!shutdown_requested()) {
        if (reload_flag) {
            reload_flag = 0;
            rules_reload(&ac);
        }
        if (pipeline_poll(pipe, 100) != 0) {
            log_fatal("kafka fatal error; stopping");
            rc = 1;
            break;
        }
    }
    log_info("shutting down");
out:
    http_server_stop(svc.ops, 1000);
    svc.ops = NULL;
    kafka_producer_destroy(producer, (int)config_int(svc.cfg, "shutdown.flush.timeout.ms"));
    pipeline_destroy(pipe);
    pg_close(pg);
    check_result_free(&ac.result);
    check_scratch_destroy(ac.scratch);
    check_rules_destroy(ac.rules);
    service_destroy(&svc);
    return rc;
}
