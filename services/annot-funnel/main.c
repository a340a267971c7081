/* annot-funnel: the candidate funnel tracker.  Consumes the candidates
 * topic (applications, screening answers, training acknowledgements) and
 * the validation-results topic (verdicts on exam cases and on production
 * work) through the common pipeline, moves candidates through the state
 * machine (funnel_machine.h), hands out screening tests, training and exam
 * cases, decides stages, promotes approved candidates and keeps annotators'
 * standing.  Every output goes through the outbox in the transaction of the
 * change it announces.  Once a second the main loop also brings suspended
 * annotators back on probation when their retraining period is over, and
 * puts a StageExpired on the candidates topic for every candidate whose
 * stage deadline has passed (decided when it is read back, in the
 * candidate's order). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "funnel.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "pipeline.h"
#include "service.h"
#include "shutdown.h"

static const config_def_t funnel_defs[] = {
    {"funnel.group", CONFIG_STRING, "annot-funnel", NULL, 0, 0, false, "consumer group"},
    {"funnel.schema", CONFIG_STRING, "funnel", NULL, 0, 0, false, "PostgreSQL schema of this service"},
    {"funnel.migrations", CONFIG_STRING, "services/annot-funnel/migrations", NULL, 0, 0, false,
     "this service's SQL migrations"},
    {"screening.bank", CONFIG_STRING, "screening/bank.json", NULL, 0, 0, false,
     "the screening test's questions and key, relative to config.dir (the dispatcher's key)"},
    {"training.material", CONFIG_STRING, "training/material.json", NULL, 0, 0, false,
     "the candidates' training material, relative to config.dir (the dispatcher's key)"},
    {"exams.bank", CONFIG_STRING, "exams/bank.json", NULL, 0, 0, false,
     "the exam case sets, relative to config.dir"},
    {"funnel.screening.questions", CONFIG_INT, "8", NULL, 1, 256, false,
     "questions drawn from the bank per screening test"},
    {"funnel.screening.threshold", CONFIG_DOUBLE, "0.75", NULL, 0, 1, false,
     "share of correct answers that passes screening"},
    {"funnel.screening.due.ms", CONFIG_INT, "0", NULL, 0, 31536000000.0, false,
     "time to answer the screening test (the dispatcher refuses later answers; past it plus "
     "funnel.timeout.grace.ms the attempt fails); 0 = no deadline"},
    {"funnel.exam.timeout.ms", CONFIG_INT, "0", NULL, 0, 31536000000.0, false,
     "time to submit every case of an exam stage, from their assignment; 0 = no limit"},
    {"funnel.timeout.grace.ms", CONFIG_INT, "60000", NULL, 0, 86400000, false,
     "after a stage deadline, how long answers accepted just before it have to arrive before the stage fails"},
    {"funnel.exam1.threshold", CONFIG_DOUBLE, "0.85", NULL, 0, 1, false,
     "mean validator score that passes exam 1 (with no critical error)"},
    {"funnel.exam2.threshold", CONFIG_DOUBLE, "0.9", NULL, 0, 1, false,
     "mean validator score that passes exam 2 (with no critical error)"},
    {"funnel.retry.max", CONFIG_INT, "1", NULL, 0, 100, false,
     "re-applications allowed after rejections; 0 = a rejection is final"},
    {"funnel.retry.cooldown.ms", CONFIG_INT, "2592000000", NULL, 0, 31536000000.0, false,
     "from a rejection to the earliest re-application (default 30 days)"},
    {"standing.window", CONFIG_INT, "50", NULL, 1, 10000, false,
     "K: rolling quality is the mean over the last K validated production submissions"},
    {"standing.min.count", CONFIG_INT, "10", NULL, 1, 10000, false,
     "validated submissions before an annotator's standing is judged"},
    {"standing.probation", CONFIG_DOUBLE, "0.85", NULL, 0, 1, false, "rolling quality below this: probation"},
    {"standing.suspension", CONFIG_DOUBLE, "0.7", NULL, 0, 1, false,
     "rolling quality below this: suspended (must not exceed standing.probation)"},
    {"standing.retraining.ms", CONFIG_INT, "604800000", NULL, 0, 31536000000.0, false,
     "a suspended annotator comes back on probation, window emptied, after this long; 0 = never"},
    {NULL, 0, NULL, NULL, 0, 0, false, NULL},
};

static pipeline_result_t funnel_apply(void *opaque, pipeline_ctx_t *ctx, const rd_kafka_message_t *rkm,
                                      const Annot__V1__EventHeader *hdr, char *errstr, size_t errlen) {
    funnel_t *f = opaque;
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
    /* The input's own time, so a replay computes the same cool-downs and
     * stamps the same times. */
    flow_t fl = {f, ctx, pipeline_pg(ctx), hdr->event_id, hdr->occurred_at_ms > 0 ? hdr->occurred_at_ms : ts,
                 errstr, errlen};
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    if (strcmp(topic, service_topic(f->svc, "candidates")) == 0)
        return candidate_flow_apply(&fl, rkm->payload, rkm->len);
    return results_flow_apply(&fl, rkm->payload, rkm->len);
}

/* Loads a file under config.dir; the loaders fill err. */
static int load_config_files(funnel_t *f, char *err, size_t errlen) {
    char path[4096];
    service_config_path(f->svc, config_str(f->svc->cfg, "screening.bank"), path, sizeof(path));
    if (screening_bank_load(&f->bank, path, err, errlen) != 0) {
        log_fatal("config key 'screening.bank': %s", err);
        return -1;
    }
    service_config_path(f->svc, config_str(f->svc->cfg, "training.material"), path, sizeof(path));
    if (training_load(&f->training, path, err, errlen) != 0) {
        log_fatal("config key 'training.material': %s", err);
        return -1;
    }
    service_config_path(f->svc, config_str(f->svc->cfg, "exams.bank"), path, sizeof(path));
    if (exam_bank_load(&f->exams, path, err, errlen) != 0) {
        log_fatal("config key 'exams.bank': %s", err);
        return -1;
    }
    return 0;
}

static int load_policies(funnel_t *f) {
    const config_t *cfg = f->svc->cfg;
    f->policy.retries_max = (unsigned)config_int(cfg, "funnel.retry.max");
    f->policy.cooldown_ms = config_int(cfg, "funnel.retry.cooldown.ms");
    f->screening_questions = (unsigned)config_int(cfg, "funnel.screening.questions");
    f->screening_threshold = config_double(cfg, "funnel.screening.threshold");
    f->screening_due_ms = config_int(cfg, "funnel.screening.due.ms");
    f->timeouts.screening_ms = f->screening_due_ms;
    f->timeouts.exam_ms = config_int(cfg, "funnel.exam.timeout.ms");
    f->timeout_grace_ms = config_int(cfg, "funnel.timeout.grace.ms");
    f->exam_threshold[0] = config_double(cfg, "funnel.exam1.threshold");
    f->exam_threshold[1] = config_double(cfg, "funnel.exam2.threshold");
    f->standing.window = (unsigned)config_int(cfg, "standing.window");
    f->standing.min_count = (unsigned)config_int(cfg, "standing.min.count");
    f->standing.probation = config_double(cfg, "standing.probation");
    f->standing.suspension = config_double(cfg, "standing.suspension");
    f->standing.retraining_ms = config_int(cfg, "standing.retraining.ms");
    if (f->standing.suspension > f->standing.probation) {
        log_fatal("config key 'standing.suspension': %g is above standing.probation (%g)", f->standing.suspension,
                  f->standing.probation);
        return -1;
    }
    if (f->standing.min_count > f->standing.window) {
        log_fatal("config key 'standing.min.count': %u is above standing.window (%u)", f->standing.min_count,
                  f->standing.window);
        return -1;
    }
    if (f->screening_questions > f->bank.n) {
        log_fatal("config key 'funnel.screening.questions': %u, but the bank has %zu questions",
                  f->screening_questions, f->bank.n);
        return -1;
    }
    return 0;
}

static void metrics_register(funnel_t *f) {
    char l[128];
    for (int s = FUNNEL_APPLIED; s < FUNNEL_STAGE_COUNT; s++) {
        const char *name = funnel_stage_name((funnel_stage_t)s);
        f->m_entered[s] = metrics_counter(f->svc->metrics, "annot_funnel_stage_entered_total",
                                          "Candidates who entered a stage", metrics_labels(l, sizeof(l), "stage",
                                                                                           name, NULL));
        f->m_passed[s] = metrics_counter(f->svc->metrics, "annot_funnel_stage_decided_total", "Stage decisions",
                                         metrics_labels(l, sizeof(l), "stage", name, "outcome", "passed", NULL));
        f->m_failed[s] = metrics_counter(f->svc->metrics, "annot_funnel_stage_decided_total", "Stage decisions",
                                         metrics_labels(l, sizeof(l), "stage", name, "outcome", "failed", NULL));
    }
    f->m_timed_out = metrics_counter(f->svc->metrics, "annot_funnel_stage_timeouts_total",
                                     "Stages failed because their time limit passed", NULL);
    f->m_refused = metrics_counter(f->svc->metrics, "annot_funnel_transitions_refused_total",
                                   "Inputs the state machine refused (illegal transitions)", NULL);
    for (int s = STANDING_ACTIVE; s <= STANDING_SUSPENDED; s++)
        f->m_status[s] = metrics_counter(
            f->svc->metrics, "annot_funnel_status_changes_total", "Annotator status changes",
            metrics_labels(l, sizeof(l), "status", standing_status_name((standing_status_t)s), NULL));
    f->m_status[0] = f->m_status[STANDING_ACTIVE];
}

int main(int argc, char **argv) {
    service_t svc;
    int rc = service_init(&svc, "annot-funnel",
                          "Candidate funnel: screening, training, exams, approval; annotators' standing.", NULL,
                          funnel_defs, argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;

    char err[1024];
    funnel_t f = {.svc = &svc};
    pg_t *pg = NULL;
    kafka_producer_t *producer = NULL;
    pipeline_t *pipe = NULL;
    rc = 1;
    if (load_config_files(&f, err, sizeof(err)) != 0 || load_policies(&f) != 0) goto out;
    pg = pg_connect(config_str(svc.cfg, "database.url"), config_str(svc.cfg, "funnel.schema"),
                    (int)config_int(svc.cfg, "pg.connect.timeout.s"), err, sizeof(err));
    if (pg == NULL || pg_migrate(pg, config_str(svc.cfg, "funnel.migrations"), err, sizeof(err)) != 0) {
        log_fatal("postgresql: %s", err);
        goto out;
    }
    if ((producer = kafka_producer_new(svc.cfg, svc.name, err, sizeof(err))) == NULL) {
        log_fatal("%s", err);
        goto out;
    }
    metrics_register(&f);
    static const char *const roles[] = {"candidates", "validation-results"};
    pipeline_def_t def = {config_str(svc.cfg, "funnel.group"), roles, 2, funnel_apply, &f};
    if ((pipe = pipeline_new(&svc, pg, producer, &def, err, sizeof(err))) == NULL) {
        log_fatal("%s", err);
        goto out;
    }
    if (service_ops_start(&svc, pipeline_ready, pipe) != 0) goto out;
    log_info("funnel running: screening %s (%u questions, pass %.2f), training %s, exams %s, %u retr%s after %lld ms",
             f.bank.version, f.screening_questions, f.screening_threshold, f.training.guideline_version,
             f.exams.version, f.policy.retries_max, f.policy.retries_max == 1 ? "y" : "ies",
             (long long)f.policy.cooldown_ms);
    rc = 0;
    time_t last_sweep = 0;
    while (!shutdown_requested()) {
        if (pipeline_poll(pipe, 100) != 0) {
            log_fatal("kafka fatal error; stopping");
            rc = 1;
            break;
        }
        time_t now = time(NULL);
        if (now == last_sweep) continue;
        last_sweep = now;
        char id[EVENT_ID_LEN] = "";
        flow_t fl = {&f, NULL, pg, id, event_now_ms(), err, sizeof(err)};
        long n = pg_ensure(pg, err, sizeof(err)) == 0 ? standing_flow_reinstate(&fl) : -1;
        if (n < 0) log_warn("reinstatement sweep: %s", err);
        long x = n >= 0 ? candidate_flow_expire(&fl) : 0;
        if (x < 0) log_warn("deadline sweep: %s", err);
        if ((n > 0 || x > 0) && pipeline_outbox_relay(pipe, err, sizeof(err)) != 0) log_warn("outbox: %s", err);
    }
    log_info("shutting down");
out:
    http_server_stop(svc.ops, 1000);
    svc.ops = NULL;
    kafka_producer_destroy(producer, (int)config_int(svc.cfg, "shutdown.flush.timeout.ms"));
    pipeline_destroy(pipe);
    pg_close(pg);
    exam_bank_free(&f.exams);
    training_free(&f.training);
    screening_bank_free(&f.bank);
    service_destroy(&svc);
    return rc;
}
