/* intake: see intake.h. */
#include "intake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot/v1/validation.pb-c.h"
#include "lease_policy.h"
#include "log.h"
#include "people.h"
#include "task_codec.h"
#include "utf8.h"

/* Which queue, pool and owner a task goes to; -1 with errstr naming the
 * field when the task cannot be queued. */
static int intake_route(const Annot__V1__Task *t, lease_queue_t *q, char *pool, size_t poollen, const char **owner,
                        char *errstr, size_t errlen) {
    *owner = "";
    pool[0] = '\0';
    switch (t->kind) {
    case ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION:
    case ANNOT__V1__TASK_KIND__TASK_KIND_GOLDEN:
        *q = LEASE_QUEUE_ANNOTATION;
        if (lease_policy_task_pool(pool, poollen, t->locale, (const char *const *)t->skills, t->n_skills) < 0) {
            char quoted[UTF8_QUOTE_MAX + 1];
            snprintf(errstr, errlen, "task.locale / task.skills: not a valid pool (locale '%s')",
                     utf8_quote(quoted, sizeof(quoted), t->locale));
            return -1;
        }
        return 0;
    case ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE1:
    case ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE2:
        *q = LEASE_QUEUE_EXAM;
        if (!lease_policy_id_valid(t->candidate_id)) {
            snprintf(errstr, errlen, "task.candidate_id: an exam case needs its candidate");
            return -1;
        }
        *owner = t->candidate_id;
        return 0;
    default:
        snprintf(errstr, errlen, "task.kind: not a task kind (%d)", (int)t->kind);
        return -1;
    }
}

/* Records a task row; intake_drain queues it in Redis once committed. */
static pipeline_result_t intake_queue(intake_t *in, pg_t *pg, lease_queue_t q, const char *task_id, const char *kind,
                                      const char *pool, const char *owner, int priority, const char *payload,
                                      const char *guideline_version, const char *author, char *errstr, size_t errlen) {
    (void)in;
    char prio[16];
    snprintf(prio, sizeof(prio), "%d", priority);
    const char *params[9] = {task_id, lease_queue_name(q), kind, pool, owner, prio, payload, guideline_version,
                             author ? author : ""};
    /* A task we already have keeps its row: a replayed event of a finished
     * task must not queue it again. */
    return pg_command(pg,
                      "INSERT INTO tasks (task_id, queue, kind, pool, owner_id, priority, payload, guideline_version, "
                      "author_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (task_id) DO NOTHING",
                      9, params, errstr, errlen) < 0
               ? PIPELINE_RETRY
               : PIPELINE_APPLIED;
}

long intake_drain(intake_t *in, pg_t *pg, char *errstr, size_t errlen) {
    if (pg_ensure(pg, errstr, errlen) != 0) return -1;
    /* New tasks to queue, and cancelled ones (a reassigned validation task)
     * to take out of Redis. */
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "SELECT task_id, queue, pool, owner_id, priority, payload::text, author_id, state FROM "
                             "tasks WHERE NOT enqueued AND state IN ('queued', 'parked') ORDER BY created_at LIMIT 500",
                             0, NULL, errstr, errlen);
    if (res == NULL) return -1;
    int n = PQntuples(res);
    long done = 0;
    for (int i = 0; i < n; i++) {
        lease_queue_t q;
        if (lease_queue_parse(PQgetvalue(res, i, 1), &q) != 0) continue;
        const char *author = PQgetvalue(res, i, 6);
        lease_item_t item = {PQgetvalue(res, i, 0), q == LEASE_QUEUE_ANNOTATION ? PQgetvalue(res, i, 2) : NULL,
                             q != LEASE_QUEUE_ANNOTATION ? PQgetvalue(res, i, 3) : NULL, atoi(PQgetvalue(res, i, 4)),
                             PQgetvalue(res, i, 5), 0, author[0] ? author : NULL};
        int rc = strcmp(PQgetvalue(res, i, 7), "parked") == 0
                     ? lease_cancel(in->leases, q, item.task_id, 0, errstr, errlen)
                     : lease_enqueue(in->leases, q, &item, 0, errstr, errlen);
        if (rc < 0) break;
        const char *params[1] = {PQgetvalue(res, i, 0)};
        if (pg_command(pg, "UPDATE tasks SET enqueued = true WHERE task_id = $1", 1, params, errstr, errlen) < 0) break;
        done++;
    }
    PQclear(res);
    return done == n ? done : -1;
}

/* A ValidationAssignmentEvent: the validator's own queue. */
static pipeline_result_t intake_assignment(intake_t *in, pipeline_ctx_t *ctx, const rd_kafka_message_t *rkm,
                                           char *errstr, size_t errlen) {
    Annot__V1__ValidationAssignmentEvent *ev = (Annot__V1__ValidationAssignmentEvent *)event_unpack(
        &annot__v1__validation_assignment_event__descriptor, rkm->payload, rkm->len, errstr, errlen);
    if (ev == NULL) return PIPELINE_INVALID;
    const Annot__V1__ValidationAssignment *a = ev->assignment;
    pipeline_result_t r = PIPELINE_INVALID;
    char *payload_text = NULL;
    json_t *payload = NULL;
    uint8_t *packed = NULL;
    if (a == NULL) {
        snprintf(errstr, errlen, "assignment: required");
        goto done;
    }
    if (!lease_policy_id_valid(a->assignment_id) || !lease_policy_id_valid(a->validator_id) ||
        a->submission_id[0] == '\0' || a->author_id[0] == '\0') {
        snprintf(errstr, errlen, "assignment: assignment_id, validator_id, submission_id and author_id are required");
        goto done;
    }
    json_t *findings = json_array();
    for (size_t i = 0; i < a->n_check_findings; i++) {
        const Annot__V1__Finding *f = a->check_findings[i];
        json_array_append_new(findings, json_pack("{s:s, s:s, s:I, s:I, s:s}", "rule", f->rule, "section", f->section,
                                                  "start", (json_int_t)f->start, "end", (json_int_t)f->end, "message",
                                                  f->message));
    }
    json_t *task = a->task ? task_proto_to_json(a->task) : json_object();
    payload = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:f}", "kind", "validation", "assignment_id", a->assignment_id,
                        "submission_id", a->submission_id, "description", a->description, "task",
                        task ? task : json_object(), "check_findings", findings, "check_score", a->check_score);
    if (payload == NULL) {
        snprintf(errstr, errlen, "assignment: cannot be written as JSON");
        goto done;
    }
    payload_text = json_dumps(payload, JSON_COMPACT);
    size_t len = annot__v1__validation_assignment__get_packed_size(a);
    packed = malloc(len ? len : 1);
    if (packed == NULL) abort();
    annot__v1__validation_assignment__pack(a, packed);
    const char *params[6] = {a->assignment_id, a->submission_id, a->validator_id, a->author_id, (const char *)packed,
                             a->task_id};
    int lengths[6] = {0, 0, 0, 0, (int)len, 0}, formats[6] = {0, 0, 0, 0, 1, 0};
    PGresult *res = pg_query_ex(pipeline_pg(ctx), PGRES_COMMAND_OK,
                                "INSERT INTO assignments (assignment_id, submission_id, validator_id, author_id, proto, "
                                "task_id) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (assignment_id) DO NOTHING",
                                6, params, lengths, formats, errstr, errlen);
    if (res == NULL) {
        r = PIPELINE_RETRY;
        goto done;
    }
    PQclear(res);
    if (a->replaces_assignment_id[0] != '\0') {
        /* A reassignment: the assignment it replaces leaves its validator's
         * queue (intake_drain cancels it in Redis after the commit), unless
         * its verdict is already recorded: then this one is moot. */
        const char *p1[1] = {a->replaces_assignment_id};
        res = pg_query(pipeline_pg(ctx), PGRES_TUPLES_OK,
                       "UPDATE tasks SET state = CASE WHEN state = 'queued' THEN 'parked' ELSE state END, "
                       "enqueued = CASE WHEN state = 'queued' THEN false ELSE enqueued END "
                       "WHERE task_id = $1 RETURNING state",
                       1, p1, errstr, errlen);
        if (res == NULL) {
            r = PIPELINE_RETRY;
            goto done;
        }
        bool moot = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "done") == 0;
        PQclear(res);
        if (moot) {
            log_write_fields(LOG_LEVEL_INFO,
                             json_pack("{s:s, s:s}", "assignment_id", a->assignment_id, "replaces",
                                       a->replaces_assignment_id),
                             "reassignment not queued: the replaced assignment was already validated");
            r = PIPELINE_APPLIED;
            goto done;
        }
    }
    const char *gv = a->task ? a->task->guideline_version : "";
    r = intake_queue(in, pipeline_pg(ctx), LEASE_QUEUE_VALIDATION, a->assignment_id, "validation", "", a->validator_id,
                     0, payload_text, gv, a->author_id, errstr, errlen);
done:
    free(packed);
    free(payload_text);
    json_decref(payload);
    annot__v1__validation_assignment_event__free_unpacked(ev, NULL);
    return r;
}

pipeline_result_t intake_apply(void *opaque, pipeline_ctx_t *ctx, const rd_kafka_message_t *rkm,
                               const Annot__V1__EventHeader *hdr, char *errstr, size_t errlen) {
    (void)hdr;
    intake_t *in = opaque;
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    if (strcmp(topic, in->assignments_topic) == 0) return intake_assignment(in, ctx, rkm, errstr, errlen);
    if (strcmp(topic, in->candidates_topic) == 0) return people_apply_candidate(pipeline_pg(ctx), rkm, errstr, errlen);
    if (strcmp(topic, in->annotators_topic) == 0) return people_apply_annotator(pipeline_pg(ctx), rkm, errstr, errlen);
    Annot__V1__TaskEvent *ev =
        (Annot__V1__TaskEvent *)event_unpack(&annot__v1__task_event__descriptor, rkm->payload, rkm->len, errstr, errlen);
    if (ev == NULL) return PIPELINE_INVALID;
    if (ev->task == NULL) {
        snprintf(errstr, errlen, "task: required");
        annot__v1__task_event__free_unpacked(ev, NULL);
        return PIPELINE_INVALID;
    }
    const Annot__V1__Task *t = ev->task;
    pipeline_result_t r = PIPELINE_INVALID;
    lease_queue_t q;
    char pool[LEASE_POOL_MAX + 1];
    const char *owner;
    json_t *payload = NULL;
    char *payload_text = NULL;
    if (task_proto_queueable(t, errstr, errlen) != 0) goto done;
    if (intake_route(t, &q, pool, sizeof(pool), &owner, errstr, errlen) != 0) goto done;
    if ((payload = task_proto_to_json(t)) == NULL) {
        snprintf(errstr, errlen, "task: cannot be written as JSON");
        goto done;
    }
    payload_text = json_dumps(payload, JSON_COMPACT);
    r = intake_queue(in, pipeline_pg(ctx), q, t->task_id, task_kind_name(t->kind), pool, owner, (int)t->priority,
                     payload_text, t->guideline_version, NULL, errstr, errlen);
done:
    free(payload_text);
    json_decref(payload);
    annot__v1__task_event__free_unpacked(ev, NULL);
    return r;
}
