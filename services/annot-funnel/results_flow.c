/* results_flow: validators' verdicts as the funnel reads them.  An exam
 * verdict (candidate_id and exam_stage set) counts toward the candidate's
 * stage; a verdict on an annotator's production or golden work moves their
 * standing; anything else is not the funnel's business.  Also where outputs leave: flow_emit. */
#include <stdio.h>
#include <string.h>

#include "annot/v1/validation.pb-c.h"
#include "event.h"
#include "funnel.h"
#include "outbox.h"

int flow_emit(flow_t *fl, const char *role, const char *key, const void *payload, size_t len) {
    if (fl->ctx != NULL) return pipeline_emit(fl->ctx, role, key, strlen(key), payload, len, fl->errstr, fl->errlen);
    const char *topic = service_topic(fl->f->svc, role);
    if (topic == NULL) {
        snprintf(fl->errstr, fl->errlen, "no topic of role %s", role);
        return -1;
    }
    return outbox_add(fl->pg, topic, key, strlen(key), payload, len, fl->errstr, fl->errlen);
}

pipeline_result_t results_flow_apply(flow_t *fl, const void *payload, size_t len) {
    Annot__V1__ValidationResultEvent *ev = (Annot__V1__ValidationResultEvent *)event_unpack(
        &annot__v1__validation_result_event__descriptor, payload, len, fl->errstr, fl->errlen);
    if (ev == NULL) return PIPELINE_INVALID;
    if (ev->result == NULL) {
        annot__v1__validation_result_event__free_unpacked(ev, NULL);
        snprintf(fl->errstr, fl->errlen, "result: required");
        return PIPELINE_INVALID;
    }
    const Annot__V1__ValidationResult *r = ev->result;
    pipeline_result_t out = PIPELINE_APPLIED;
    bool exam = r->exam_stage == ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_EXAM1 ||
                r->exam_stage == ANNOT__V1__FUNNEL_STAGE__FUNNEL_STAGE_EXAM2;
    /* Golden items are production work the annotator cannot tell apart:
     * they count toward standing like any other. */
    bool production = !exam && r->author_role == ANNOT__V1__ROLE__ROLE_ANNOTATOR &&
                      (r->task_kind == ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION ||
                       r->task_kind == ANNOT__V1__TASK_KIND__TASK_KIND_GOLDEN);
    if (!exam && !production) goto done;
    if (!(r->score >= 0.0 && r->score <= 1.0)) {
        snprintf(fl->errstr, fl->errlen, "result.score: %g is not within 0..1", r->score);
        out = PIPELINE_INVALID;
        goto done;
    }
    if (r->task_id[0] == '\0' || r->submission_id[0] == '\0') {
        snprintf(fl->errstr, fl->errlen, "result.%s: required", r->task_id[0] ? "submission_id" : "task_id");
        out = PIPELINE_INVALID;
        goto done;
    }
    int64_t at = r->validated_at_ms > 0 ? r->validated_at_ms : fl->now_ms;
    if (exam) {
        if (!event_id_valid(r->candidate_id)) {
            snprintf(fl->errstr, fl->errlen, "result.candidate_id: an exam verdict needs its candidate (UUID)");
            out = PIPELINE_INVALID;
            goto done;
        }
        unsigned critical = 0;
        for (size_t i = 0; i < r->n_errors; i++) {
            if (r->errors[i]->severity == ANNOT__V1__SEVERITY__SEVERITY_CRITICAL) critical++;
        }
        out = candidate_flow_exam_result(fl, r->candidate_id, r->task_id, r->score, critical, at);
    } else {
        if (r->author_id[0] == '\0') {
            snprintf(fl->errstr, fl->errlen, "result.author_id: required");
            out = PIPELINE_INVALID;
            goto done;
        }
        out = standing_flow_result(fl, r->author_id, r->submission_id, r->score, at);
    }
done:
    annot__v1__validation_result_event__free_unpacked(ev, NULL);
    return out;
}
