/* annot-metrics: the metrics aggregator.  Consumes what the other services
 * emit (tasks, leases, submissions, checks, validation assignments and
 * results, feedback, candidates, annotators, guideline versions) through the
 * common pipeline, so every event counts once: its contributions
 * (contrib.c) are folded per series point over the batch, added to the
 * rollups in PostgreSQL, and every point the batch changed is published on
 * the metrics topic through the outbox, all in the batch's transaction.  A
 * late event lands in its own (older) window, which is updated and
 * published again.  A sweeper publishes each window once more, final, after
 * it closed.  Memory holds one batch's points; the history is in
 * PostgreSQL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot/v1/guideline.pb-c.h"
#include "check.h"
#include "contrib.h"
#include "event.h"
#include "kafka.h"
#include "log.h"
#include "outbox.h"
#include "pg.h"
#include "pipeline.h"
#include "publish.h"
#include "series.h"
#include "service.h"
#include "shutdown.h"
#include "store.h"
#include "utf8.h"

static const config_def_t metrics_defs[] = {
    {"metrics.group", CONFIG_STRING, "annot-metrics", NULL, 0, 0, false, "consumer group"},
    {"metrics.schema", CONFIG_STRING, "metrics", NULL, 0, 0, false, "PostgreSQL schema of this service"},
    {"metrics.migrations", CONFIG_STRING, "services/annot-metrics/migrations", NULL, 0, 0, false,
     "this service's SQL migrations"},
    {"metrics.quality.target", CONFIG_DOUBLE, "0.95", NULL, 0, 1, false, "quality level target (0..1)"},
    {"metrics.window.grace.ms", CONFIG_INT, "300000", NULL, 0, 86400000LL * 30, false,
     "how long after its end a window waits for late events before it is published as final"},
    {"metrics.sweep.interval.ms", CONFIG_INT, "5000", NULL, 100, 3600000, false,
     "how often closed windows are looked for, to publish them as final"},
    {"metrics.state.retention.ms", CONFIG_INT, "604800000", NULL, 1000, 86400000LL * 365, false,
     "how long a pair's first verdict or a lease's last heartbeat waits for its completion before it is dropped"},
    {"metrics.taxonomy", CONFIG_STRING, "taxonomy.conf", NULL, 0, 0, false,
     "the shared error taxonomy, relative to config.dir (which categories the checker can flag)"},
    {NULL, 0, NULL, NULL, 0, 0, false, NULL},
};

/* The topics consumed, by role; the index is the role's handler. */
enum {
    ROLE_TASKS,
    ROLE_LEASES,
    ROLE_SUBMISSIONS,
    ROLE_CHECKS,
    ROLE_ASSIGNMENTS,
    ROLE_RESULTS,
    ROLE_FEEDBACK,
    ROLE_CANDIDATES,
    ROLE_ANNOTATORS,
    ROLE_GUIDELINES,
    ROLE_COUNT
};
static const char *const metrics_roles[ROLE_COUNT] = {
    "tasks", "leases", "submissions", "checks", "validation-assignments", "validation-results",
    "feedback", "candidates", "annotators", "guidelines",
};

typedef struct metrics_svc {
    service_t *svc;
    pg_t *pg;
    series_batch_t *batch;
    check_taxonomy_t taxonomy;
    const char *topics[ROLE_COUNT];
    const char *metrics_topic;
    double target;
    int64_t grace_ms, retention_ms;
    metrics_series_t *m_points, *m_published, *m_final;
} metrics_svc_t;

static bool checker_rule(void *opaque, const char *category) {
    const check_category_t *cat = check_taxonomy_find(opaque, category);
    return cat != NULL && cat->checker;
}

/* ---- per topic ----------------------------------------------------------- */

/* Decodes the message of a topic and checks its strings (utf8.h). */
#define UNPACK(type, prefix, var, what)                                                                         \
    type *var = prefix##__unpack(NULL, rkm->len, rkm->payload);                                                 \
    if (var == NULL) {                                                                                          \
        snprintf(errstr, errlen, "not a %s", what);                                                             \
        return PIPELINE_INVALID;                                                                                \
    }                                                                                                           \
    if (utf8_proto_strings_valid(&var->base, errstr, errlen) != 0) {                                            \
        prefix##__free_unpacked(var, NULL);                                                                     \
        return PIPELINE_INVALID;                                                                                \
    }

static pipeline_result_t apply_lease(contrib_t *c, pg_t *pg, const rd_kafka_message_t *rkm, char *errstr,
                                     size_t errlen) {
    UNPACK(Annot__V1__LeaseEvent, annot__v1__lease_event, ev, "LeaseEvent");
    pipeline_result_t r = PIPELINE_APPLIED;
    contrib_beat_t prev, beat;
    int have_prev = 0;
    if (ev->event_case == ANNOT__V1__LEASE_EVENT__EVENT_HEARTBEAT &&
        (have_prev = store_beat_get(pg, ev->lease_id, &prev, errstr, errlen)) < 0) {
        r = PIPELINE_RETRY;
        goto done;
    }
    if (contrib_lease(c, ev, have_prev ? &prev : NULL, errstr, errlen) != 0) {
        r = PIPELINE_INVALID;
        goto done;
    }
    int rc = 0;
    switch (ev->event_case) {
    case ANNOT__V1__LEASE_EVENT__EVENT_GRANTED:
        beat = (contrib_beat_t){ev->granted->granted_at_ms, 0};
        rc = store_beat_set(pg, ev->lease_id, &beat, errstr, errlen);
        break;
    case ANNOT__V1__LEASE_EVENT__EVENT_HEARTBEAT:
        beat = (contrib_beat_t){ev->heartbeat->heartbeat_at_ms, ev->heartbeat->heartbeat_count};
        rc = store_beat_set(pg, ev->lease_id, &beat, errstr, errlen);
        break;
    case ANNOT__V1__LEASE_EVENT__EVENT_EXPIRED:
    case ANNOT__V1__LEASE_EVENT__EVENT_RELEASED:
        rc = store_beat_end(pg, ev->lease_id, errstr, errlen);
        break;
    default:
        break;
    }
    if (rc != 0) r = PIPELINE_RETRY;
done:
    annot__v1__lease_event__free_unpacked(ev, NULL);
    return r;
}

static pipeline_result_t apply_result(contrib_t *c, pg_t *pg, const rd_kafka_message_t *rkm, char *errstr,
                                      size_t errlen) {
    UNPACK(Annot__V1__ValidationResultEvent, annot__v1__validation_result_event, ev,
           "ValidationResultEvent");
    pipeline_result_t r = PIPELINE_APPLIED;
    const Annot__V1__ValidationResult *res = ev->result;
    contrib_half_t other;
    char other_validator[256];
    int paired = 0;
    /* Validate before touching the pair state: a bad verdict must not
     * complete a pair. */
    if (res == NULL || (res->verdict != ANNOT__V1__VERDICT__VERDICT_ACCEPT &&
                        res->verdict != ANNOT__V1__VERDICT__VERDICT_REJECT)) {
        snprintf(errstr, errlen, res ? "result.verdict is neither accept nor reject" : "result is missing");
        r = PIPELINE_INVALID;
        goto done;
    }
    if (res->double_validation && res->pair_id[0] != '\0') {
        paired = store_pair_take(pg, res->pair_id, res->validation_id, res->validator_id, res->verdict, res->score,
                                 &other, other_validator, sizeof(other_validator), errstr, errlen);
        if (paired < 0) {
            r = PIPELINE_RETRY;
            goto done;
        }
    }
    if (contrib_validation(c, ev, paired ? &other : NULL, errstr, errlen) != 0) r = PIPELINE_INVALID;
done:
    annot__v1__validation_result_event__free_unpacked(ev, NULL);
    return r;
}

static pipeline_result_t apply_candidate(contrib_t *c, pg_t *pg, const rd_kafka_message_t *rkm, char *errstr,
                                         size_t errlen) {
    UNPACK(Annot__V1__CandidateEvent, annot__v1__candidate_event, ev, "CandidateEvent");
    pipeline_result_t r = PIPELINE_APPLIED;
    char cohort[16] = "", day[11];
    contrib_entry_t entry = {0, cohort};
    int found = 0, rc = 0;
    const int applied_stage = ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_APPLIED;
    switch (ev->event_case) {
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_ENTERED:
        found = store_stage_get(pg, ev->candidate_id, applied_stage, &entry.entered_at_ms, cohort, sizeof(cohort),
                                errstr, errlen);
        break;
    case ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_DECIDED:
        found = store_stage_get(pg, ev->candidate_id, ev->stage_decided->stage, &entry.entered_at_ms, cohort,
                                sizeof(cohort), errstr, errlen);
        /* No recorded entry into the stage: the time in stage is unknown,
         * but the cohort is the application's. */
        if (found == 0) {
            int64_t applied_at;
            found = store_stage_get(pg, ev->candidate_id, applied_stage, &applied_at, cohort, sizeof(cohort),
                                    errstr, errlen);
        }
        break;
    default:
        break;
    }
    if (found < 0) {
        r = PIPELINE_RETRY;
        goto done;
    }
    if (contrib_candidate(c, ev, found ? &entry : NULL, errstr, errlen) != 0) {
        r = PIPELINE_INVALID;
        goto done;
    }
    /* Remember entries: the cohort (from the application) and when each
     * stage began, for decisions, which carry neither. */
    if (ev->event_case == ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED) {
        const Annot__V1__CandidateApplied *a = ev->applied;
        int64_t at = a->applied_at_ms > 0 ? a->applied_at_ms : c->occurred_at_ms;
        if (a->cohort_day[0] == '\0') window_day_string(at, day);
        rc = store_stage_enter(pg, ev->candidate_id, applied_stage, a->cohort_day[0] ? a->cohort_day : day, at,
                               errstr, errlen);
    } else if (ev->event_case == ANNOT__V1__CANDIDATE_EVENT__EVENT_STAGE_ENTERED &&
               ev->stage_entered->stage != applied_stage) {
        const Annot__V1__StageEntered *s = ev->stage_entered;
        int64_t at = s->entered_at_ms > 0 ? s->entered_at_ms : c->occurred_at_ms;
        window_day_string(at, day);
        const char *co = s->cohort_day[0] ? s->cohort_day : cohort[0] ? cohort : day;
        rc = store_stage_enter(pg, ev->candidate_id, s->stage, co, at, errstr, errlen);
    }
    if (rc != 0) r = PIPELINE_RETRY;
done:
    annot__v1__candidate_event__free_unpacked(ev, NULL);
    return r;
}

static pipeline_result_t apply_guideline(pg_t *pg, const rd_kafka_message_t *rkm, const contrib_t *c,
                                         char *errstr, size_t errlen) {
    UNPACK(Annot__V1__GuidelineVersionEvent, annot__v1__guideline_version_event, ev,
           "GuidelineVersionEvent");
    pipeline_result_t r = PIPELINE_APPLIED;
    if (ev->version[0] == '\0') {
        snprintf(errstr, errlen, "version is empty");
        r = PIPELINE_INVALID;
    } else if (store_guideline_version(pg, ev->version, ev->published_at_ms ? ev->published_at_ms : c->occurred_at_ms,
                                       ev->published_by, errstr, errlen) != 0) {
        r = PIPELINE_RETRY;
    }
    annot__v1__guideline_version_event__free_unpacked(ev, NULL);
    return r;
}

/* The events that need no earlier state: unpack, contribute, free. */
#define SIMPLE(type, prefix, what, fn)                                                                          \
    do {                                                                                                        \
        UNPACK(type, prefix, ev, what);                                                                         \
        pipeline_result_t r = fn(c, ev, errstr, errlen) == 0 ? PIPELINE_APPLIED : PIPELINE_INVALID;            \
        prefix##__free_unpacked(ev, NULL);                                                                      \
        return r;                                                                                               \
    } while (0)

/* One event of the topic of role into c's batch. */
static pipeline_result_t apply_role(contrib_t *c, int role, pg_t *pg, const rd_kafka_message_t *rkm, char *errstr,
                                    size_t errlen) {
    switch (role) {
    case ROLE_TASKS: SIMPLE(Annot__V1__TaskEvent, annot__v1__task_event, "TaskEvent", contrib_task);
    case ROLE_LEASES: return apply_lease(c, pg, rkm, errstr, errlen);
    case ROLE_SUBMISSIONS:
        SIMPLE(Annot__V1__SubmissionEvent, annot__v1__submission_event, "SubmissionEvent", contrib_submission);
    case ROLE_CHECKS: SIMPLE(Annot__V1__CheckResultEvent, annot__v1__check_result_event, "CheckResultEvent", contrib_check);
    case ROLE_ASSIGNMENTS:
        SIMPLE(Annot__V1__ValidationAssignmentEvent, annot__v1__validation_assignment_event,
               "ValidationAssignmentEvent", contrib_assignment);
    case ROLE_RESULTS: return apply_result(c, pg, rkm, errstr, errlen);
    case ROLE_FEEDBACK:
        SIMPLE(Annot__V1__GuidelineFeedbackEvent, annot__v1__guideline_feedback_event, "GuidelineFeedbackEvent",
               contrib_feedback);
    case ROLE_CANDIDATES: return apply_candidate(c, pg, rkm, errstr, errlen);
    case ROLE_ANNOTATORS:
        SIMPLE(Annot__V1__AnnotatorStatusEvent, annot__v1__annotator_status_event, "AnnotatorStatusEvent",
               contrib_annotator);
    case ROLE_GUIDELINES: return apply_guideline(pg, rkm, c, errstr, errlen);
    default:
        snprintf(errstr, errlen, "topic %s is not one this service reads", rd_kafka_topic_name(rkm->rkt));
        return PIPELINE_INVALID;
    }
}

static pipeline_result_t metrics_apply(void *opaque, pipeline_ctx_t *ctx, const rd_kafka_message_t *rkm,
                                       const Annot__V1__EventHeader *hdr, char *errstr, size_t errlen) {
    metrics_svc_t *ms = opaque;
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    int role = 0;
    while (role < ROLE_COUNT && strcmp(ms->topics[role], topic) != 0) role++;
    if (strlen(hdr->guideline_version) >= SERIES_GV_MAX) {
        snprintf(errstr, errlen, "header.guideline_version is longer than %d bytes", SERIES_GV_MAX - 1);
        return PIPELINE_INVALID;
    }
    contrib_t c = {ms->batch, hdr->guideline_version, hdr->occurred_at_ms, checker_rule, &ms->taxonomy, false};
    pipeline_result_t r = apply_role(&c, role, pipeline_pg(ctx), rkm, errstr, errlen);
    /* An INVALID event may have contributed already: the pipeline redoes
     * the batch without it, and batch_begin forgets the batch. */
    if (r == PIPELINE_APPLIED && c.overflow) {
        snprintf(errstr, errlen, "a label value (locale, section, rule, annotator...) does not fit in %d bytes",
                 SERIES_LABELS_MAX);
        return PIPELINE_INVALID;
    }
    return r;
}

/* ---- publishing ---------------------------------------------------------- */

/* The metric events of one transaction, packed, waiting to go into the
 * outbox together (one multi-row INSERT, not one per point). */
typedef struct publisher {
    metrics_svc_t *ms;
    int64_t now_ms;
    size_t n, cap;
    uint8_t **payloads;
    size_t *lens;
    const void **keys;
    size_t *keylens;
} publisher_t;

static void publisher_clear(publisher_t *pub) {
    for (size_t i = 0; i < pub->n; i++) {
        free(pub->payloads[i]);
        free((void *)pub->keys[i]);
    }
    pub->n = 0;
}

static void publisher_free(publisher_t *pub) {
    publisher_clear(pub);
    free(pub->payloads);
    free(pub->lens);
    free(pub->keys);
    free(pub->keylens);
}

static int publish_row(void *opaque, const rollup_row_t *row, char *errstr, size_t errlen) {
    publisher_t *pub = opaque;
    publish_opts_t opts = {pub->ms->svc->name, pub->ms->target, pub->now_ms};
    if (pub->n == pub->cap) {
        pub->cap = pub->cap ? pub->cap * 2 : 256;
        pub->payloads = realloc(pub->payloads, pub->cap * sizeof(*pub->payloads));
        pub->lens = realloc(pub->lens, pub->cap * sizeof(*pub->lens));
        pub->keys = realloc(pub->keys, pub->cap * sizeof(*pub->keys));
        pub->keylens = realloc(pub->keylens, pub->cap * sizeof(*pub->keylens));
        if (!pub->payloads || !pub->lens || !pub->keys || !pub->keylens) abort();
    }
    if (publish_pack(row, &opts, &pub->payloads[pub->n], &pub->lens[pub->n], errstr, errlen) != 0) return -1;
    /* Kafka key: the metric name, so one metric's points stay in order. */
    pub->keys[pub->n] = strdup(row->metric);
    if (pub->keys[pub->n] == NULL) abort();
    pub->keylens[pub->n] = strlen(row->metric);
    pub->n++;
    metrics_inc(row->final ? pub->ms->m_final : pub->ms->m_published);
    return 0;
}

/* The gathered events into the outbox, on the transaction of pg. */
static int publisher_flush(publisher_t *pub, pg_t *pg, char *errstr, size_t errlen) {
    int rc = pub->n == 0 ? 0
                         : outbox_add_many(pg, pub->ms->metrics_topic, pub->n, pub->keys, pub->keylens,
                                           (const void *const *)pub->payloads, pub->lens, errstr, errlen);
    publisher_clear(pub);
    return rc;
}

static void metrics_batch_begin(void *opaque) {
    metrics_svc_t *ms = opaque;
    series_batch_reset(ms->batch);
}

static pipeline_result_t metrics_batch_end(void *opaque, pipeline_ctx_t *ctx, char *errstr, size_t errlen) {
    metrics_svc_t *ms = opaque;
    publisher_t pub = {.ms = ms, .now_ms = event_now_ms()};
    metrics_add(ms->m_points, (double)series_batch_count(ms->batch));
    int rc = store_flush(pipeline_pg(ctx), ms->batch, pub.now_ms, ms->grace_ms, publish_row, &pub, errstr, errlen);
    if (rc == 0) rc = publisher_flush(&pub, pipeline_pg(ctx), errstr, errlen);
    publisher_free(&pub);
    return rc == 0 ? PIPELINE_APPLIED : PIPELINE_RETRY;
}

/* Publishes windows that closed since, as final, in one transaction with
 * their outbox rows (the relay sends them), and drops in-flight state that
 * outlived metrics.state.retention.ms.  Returns how many were published. */
static long sweep_final(metrics_svc_t *ms, pipeline_t *pipe) {
    char err[1024];
    publisher_t pub = {.ms = ms, .now_ms = event_now_ms()};
    size_t n = 0;
    if (pg_ensure(ms->pg, err, sizeof(err)) != 0 || pg_begin(ms->pg, err, sizeof(err)) != 0) goto fail;
    long pruned = 0;
    if (store_sweep_final(ms->pg, pub.now_ms, ms->grace_ms, 500, publish_row, &pub, &n, err, sizeof(err)) != 0 ||
        publisher_flush(&pub, ms->pg, err, sizeof(err)) != 0 ||
        store_prune_state(ms->pg, pub.now_ms, ms->retention_ms, &pruned, err, sizeof(err)) != 0) {
        pg_rollback(ms->pg);
        goto fail;
    }
    if (pg_commit(ms->pg, err, sizeof(err)) != 0) {
        pg_rollback(ms->pg);
        goto fail;
    }
    publisher_free(&pub);
    if (pruned > 0) log_info("dropped %ld pair halves and lease beats older than the retention", pruned);
    if (n > 0 && pipeline_outbox_relay(pipe, err, sizeof(err)) != 0) log_warn("outbox relay: %s", err);
    return (long)n;
fail:
    publisher_free(&pub);
    log_warn("final sweep: %s", err);
    return -1;
}

int main(int argc, char **argv) {
    service_t svc;
    int rc = service_init(&svc, "annot-metrics",
                          "Aggregates the pipeline's events into metrics: SQL rollups and the metrics topic.", NULL,
                          metrics_defs, argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;

    char err[1024], path[4096];
    metrics_svc_t ms = {.svc = &svc};
    kafka_producer_t *producer = NULL;
    pipeline_t *pipe = NULL;
    rc = 1;
    ms.target = config_double(svc.cfg, "metrics.quality.target");
    ms.grace_ms = config_int(svc.cfg, "metrics.window.grace.ms");
    ms.retention_ms = config_int(svc.cfg, "metrics.state.retention.ms");
    service_config_path(&svc, config_str(svc.cfg, "metrics.taxonomy"), path, sizeof(path));
    if (check_taxonomy_load(&ms.taxonomy, path, err, sizeof(err)) != 0) {
        log_fatal("config key 'metrics.taxonomy': %s", err);
        goto out;
    }
    for (int i = 0; i < ROLE_COUNT; i++) {
        if ((ms.topics[i] = service_topic(&svc, metrics_roles[i])) == NULL) goto out;
    }
    if ((ms.metrics_topic = service_topic(&svc, "metrics")) == NULL) goto out;
    ms.batch = series_batch_new();
    ms.pg = pg_connect(config_str(svc.cfg, "database.url"), config_str(svc.cfg, "metrics.schema"),
                       (int)config_int(svc.cfg, "pg.connect.timeout.s"), err, sizeof(err));
    if (ms.pg == NULL || pg_migrate(ms.pg, config_str(svc.cfg, "metrics.migrations"), err, sizeof(err)) != 0 ||
        store_setting(ms.pg, "quality.target", ms.target, err, sizeof(err)) != 0) {
        log_fatal("postgresql: %s", err);
        goto out;
    }
    if ((producer = kafka_producer_new(svc.cfg, svc.name, err, sizeof(err))) == NULL) {
        log_fatal("%s", err);
        goto out;
    }
    ms.m_points = metrics_counter(svc.metrics, "annot_metric_points_written_total",
                                  "Series points written to the rollups (one per point per batch)", NULL);
    ms.m_published = metrics_counter(svc.metrics, "annot_metric_events_total", "Metric events queued for publication",
                                     "final=\"false\"");
    ms.m_final = metrics_counter(svc.metrics, "annot_metric_events_total", "Metric events queued for publication",
                                 "final=\"true\"");
    pipeline_def_t def = {config_str(svc.cfg, "metrics.group"), metrics_roles, ROLE_COUNT, metrics_apply, &ms};
    if ((pipe = pipeline_new(&svc, ms.pg, producer, &def, err, sizeof(err))) == NULL) {
        log_fatal("%s", err);
        goto out;
    }
    pipeline_set_batch_hooks(pipe, metrics_batch_begin, metrics_batch_end);
    if (service_ops_start(&svc, pipeline_ready, pipe) != 0) goto out;
    log_info("aggregating metrics into schema %s", config_str(svc.cfg, "metrics.schema"));
    rc = 0;
    int64_t sweep_every = config_int(svc.cfg, "metrics.sweep.interval.ms"), next_sweep = 0;
    while (!shutdown_requested()) {
        if (pipeline_poll(pipe, 100) != 0) {
            log_fatal("kafka fatal error; stopping");
            rc = 1;
            break;
        }
        int64_t now = event_now_ms();
        if (now >= next_sweep) {
            next_sweep = now + sweep_every;
            sweep_final(&ms, pipe);
        }
    }
    log_info("shutting down");
out:
    http_server_stop(svc.ops, 1000);
    svc.ops = NULL;
    kafka_producer_destroy(producer, (int)config_int(svc.cfg, "shutdown.flush.timeout.ms"));
    pipeline_destroy(pipe);
    pg_close(ms.pg);
    series_batch_destroy(ms.batch);
    check_taxonomy_free(&ms.taxonomy);
    service_destroy(&svc);
    return rc;
}
