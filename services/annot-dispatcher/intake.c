/* intake: see intake.h. */
#include "intake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lease_policy.h"
#include "task_codec.h"

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
            snprintf(errstr, errlen, "task.locale / task.skills: not a valid pool ('%s')", t->locale);
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

pipeline_result_t intake_apply(void *opaque, pipeline_ctx_t *ctx, const rd_kafka_message_t *rkm,
                               const Annot__V1__EventHeader *hdr, char *errstr, size_t errlen) {
    (void)hdr;
    intake_t *in = opaque;
    Annot__V1__TaskEvent *ev = annot__v1__task_event__unpack(NULL, rkm->len, rkm->payload);
    if (ev == NULL || ev->task == NULL) {
        snprintf(errstr, errlen, "not a TaskEvent with a task");
        if (ev) annot__v1__task_event__free_unpacked(ev, NULL);
        return PIPELINE_INVALID;
    }
    const Annot__V1__Task *t = ev->task;
    pipeline_result_t r = PIPELINE_INVALID;
    lease_queue_t q;
    char pool[LEASE_POOL_MAX + 1];
    const char *owner;
    json_t *payload = NULL;
    char *payload_text = NULL;
    if (!lease_policy_id_valid(t->task_id)) {
        snprintf(errstr, errlen, "task.task_id: empty or not a valid id");
        goto done;
    }
    if (t->main_object == NULL || t->main_object[0] == '\0') {
        snprintf(errstr, errlen, "task.main_object: empty");
        goto done;
    }
    if (!lease_policy_priority_valid(t->priority)) {
        snprintf(errstr, errlen, "task.priority: out of range (%d)", (int)t->priority);
        goto done;
    }
    if (intake_route(t, &q, pool, sizeof(pool), &owner, errstr, errlen) != 0) goto done;
    if ((payload = task_proto_to_json(t)) == NULL) {
        snprintf(errstr, errlen, "task: a text field is not valid UTF-8");
        goto done;
    }
    payload_text = json_dumps(payload, JSON_COMPACT);
    char priority[16];
    snprintf(priority, sizeof(priority), "%d", (int)t->priority);
    const char *params[8] = {t->task_id, lease_queue_name(q), task_kind_name(t->kind), pool, owner, priority,
                             payload_text, t->guideline_version};
    /* The no-op update makes RETURNING give the state of a task we already
     * had: a replayed event of a finished task must not queue it again
     * (after a Redis loss, Redis would not know it was done). */
    PGresult *res = pg_query(pipeline_pg(ctx), PGRES_TUPLES_OK,
                             "INSERT INTO tasks (task_id, queue, kind, pool, owner_id, priority, payload, "
                             "guideline_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                             "ON CONFLICT (task_id) DO UPDATE SET task_id = EXCLUDED.task_id RETURNING state",
                             8, params, errstr, errlen);
    if (res == NULL) {
        r = PIPELINE_RETRY;
        goto done;
    }
    int queued = strcmp(PQgetvalue(res, 0, 0), "queued") == 0;
    PQclear(res);
    if (!queued) {
        r = PIPELINE_APPLIED;
        goto done;
    }
    /* Queued whether or not the row is new: enqueue is idempotent (a task
     * queued, leased or done is left alone), and a crash between an earlier
     * enqueue and its commit must not leave the task out of Redis. */
    lease_item_t item = {t->task_id, q == LEASE_QUEUE_ANNOTATION ? pool : NULL, q == LEASE_QUEUE_EXAM ? owner : NULL,
                         (int)t->priority, payload_text, 0, NULL};
    int rc = lease_enqueue(in->leases, q, &item, 0, errstr, errlen);
    r = rc >= 0 ? PIPELINE_APPLIED : PIPELINE_RETRY;
done:
    free(payload_text);
    json_decref(payload);
    annot__v1__task_event__free_unpacked(ev, NULL);
    return r;
}
