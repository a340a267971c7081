/* submission_check: see submission_check.h. */
#include "submission_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int kind_from_proto(Annot__V1__TaskKind k, check_kind_t *out) {
    switch (k) {
    case ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION: *out = CHECK_KIND_PRODUCTION; return 0;
    case ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE1: *out = CHECK_KIND_EXAM_STAGE1; return 0;
    case ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE2: *out = CHECK_KIND_EXAM_STAGE2; return 0;
    case ANNOT__V1__TASK_KIND__TASK_KIND_GOLDEN: *out = CHECK_KIND_GOLDEN; return 0;
    default: return -1;
    }
}

static Annot__V1__Severity severity_to_proto(check_severity_t s) {
    switch (s) {
    case CHECK_SEVERITY_MINOR: return ANNOT__V1__SEVERITY__SEVERITY_MINOR;
    case CHECK_SEVERITY_MAJOR: return ANNOT__V1__SEVERITY__SEVERITY_MAJOR;
    case CHECK_SEVERITY_CRITICAL: return ANNOT__V1__SEVERITY__SEVERITY_CRITICAL;
    }
    return ANNOT__V1__SEVERITY__SEVERITY_UNSPECIFIED;
}

int submission_task_from_proto(const Annot__V1__Task *pt, check_task_t *task, char *errstr, size_t errlen) {
    memset(task, 0, sizeof(*task));
    if (pt == NULL) {
        snprintf(errstr, errlen, "submission.task: missing");
        return -1;
    }
    if (kind_from_proto(pt->kind, &task->kind) != 0) {
        snprintf(errstr, errlen, "submission.task.kind: not a task kind (%d)", (int)pt->kind);
        return -1;
    }
    if (pt->main_object == NULL || pt->main_object[0] == '\0') {
        snprintf(errstr, errlen, "submission.task.main_object: empty");
        return -1;
    }
    task->task_id = pt->task_id;
    task->image_uri = pt->image_uri;
    task->main_object = pt->main_object;
    task->main_object_synonyms = pt->main_object_synonyms;
    task->synonym_count = pt->n_main_object_synonyms;
    task->locale = pt->locale;
    task->skills = pt->skills;
    task->skill_count = pt->n_skills;
    task->pregenerated = pt->pregenerated;
    task->priority = pt->priority;
    task->guideline_version = pt->guideline_version;
    if (pt->n_components > 0) {
        task->components = calloc(pt->n_components, sizeof(*task->components));
        if (task->components == NULL) abort();
        for (size_t i = 0; i < pt->n_components; i++) {
            const Annot__V1__Component *c = pt->components[i];
            if (c == NULL || c->name == NULL || c->name[0] == '\0') {
                snprintf(errstr, errlen, "submission.task.components[%zu].name: empty", i);
                submission_task_clear(task);
                return -1;
            }
            task->components[i].name = c->name;
            task->components[i].relation = c->relation;
            task->components[i].target = c->target;
        }
        task->component_count = pt->n_components;
    }
    return 0;
}

void submission_task_clear(check_task_t *task) {
    free(task->components);
    memset(task, 0, sizeof(*task));
}

/* Whether msg or a message inside it holds an unknown field numbered 0.
 * protobuf-c reads one written in several bytes (80 00), keeps it, writes
 * it back in one byte and refuses that when reading: a CheckResultEvent
 * carrying such a submission could not be decoded downstream.  Other
 * unknown fields (a newer producer's) pass through.  path names msg and
 * ends up naming the message that holds the field. */
static bool field_zero_find(const ProtobufCMessage *msg, char *path, size_t plen, size_t cap) {
    for (unsigned i = 0; i < msg->n_unknown_fields; i++) {
        if (msg->unknown_fields[i].tag == 0) return true;
    }
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned f = 0; f < d->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[f];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF &&
            *(const uint32_t *)((const char *)msg + fd->quantifier_offset) != fd->id)
            continue;
        const void *member = (const char *)msg + fd->offset;
        size_t count = 1;
        const ProtobufCMessage *const *items = member;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            count = *(const size_t *)((const char *)msg + fd->quantifier_offset);
            items = *(const ProtobufCMessage *const *const *)member;
        }
        for (size_t k = 0; k < count; k++) {
            if (items[k] == NULL) continue;
            int n = fd->label == PROTOBUF_C_LABEL_REPEATED
                        ? snprintf(path + plen, cap - plen, "%s%s[%zu]", plen ? "." : "", fd->name, k)
                        : snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "", fd->name);
            size_t sub = n > 0 && (size_t)n < cap - plen ? plen + (size_t)n : cap - 1;
            if (field_zero_find(items[k], path, sub, cap)) return true;
            path[plen] = '\0';
        }
    }
    return false;
}

int submission_check(const check_rules_t *rules, check_scratch_t *scratch,
                     const Annot__V1__SubmissionEvent *ev, const char *source, int64_t checked_at_ms,
                     check_result_t *result, submission_check_out_t *out, char *errstr, size_t errlen) {
    const Annot__V1__Submission *s = ev->submission;
    if (ev->header == NULL) {
        snprintf(errstr, errlen, "header: missing");
        return -1;
    }
    char path[256] = "";
    if (field_zero_find(&ev->base, path, 0, sizeof(path))) {
        snprintf(errstr, errlen, "%s: a field numbered 0", path[0] ? path : "event");
        return -1;
    }
    if (s == NULL) {
        snprintf(errstr, errlen, "submission: missing");
        return -1;
    }
    if (s->submission_id == NULL || s->submission_id[0] == '\0') {
        snprintf(errstr, errlen, "submission.submission_id: empty");
        return -1;
    }
    check_task_t task;
    if (submission_task_from_proto(s->task, &task, errstr, errlen) != 0) return -1;
    const char *text = s->description ? s->description : "";
    int rc = check_run(rules, scratch, &task, text, strlen(text), result, errstr, errlen);
    out->kind = task.kind;
    submission_task_clear(&task);
    if (rc != 0) return -1;

    char event_id[EVENT_ID_LEN];
    event_id_derive(event_id, ev->header->event_id, "check");
    event_id_derive(out->check_id, s->submission_id, "check");
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, event_id, source, ev->header->event_id, ev->header->guideline_version);
    hdr.correlation_id = ev->header->correlation_id && ev->header->correlation_id[0] ? ev->header->correlation_id
                                                                                      : ev->header->event_id;
    /* From the input, not the clock: a replay must give identical bytes. */
    hdr.occurred_at_ms = checked_at_ms;

    Annot__V1__Finding *findings = calloc(result->count ? result->count : 1, sizeof(*findings));
    Annot__V1__Finding **fptrs = calloc(result->count ? result->count : 1, sizeof(*fptrs));
    if (findings == NULL || fptrs == NULL) abort();
    for (size_t i = 0; i < result->count; i++) {
        const check_finding_t *f = &result->findings[i];
        annot__v1__finding__init(&findings[i]);
        findings[i].rule = (char *)check_rule_name(f->rule);
        findings[i].severity = severity_to_proto(f->severity);
        findings[i].section = (char *)f->section;
        findings[i].start = f->start;
        findings[i].end = f->end;
        findings[i].message = (char *)f->message;
        findings[i].blocking = f->blocking;
        fptrs[i] = &findings[i];
    }
    Annot__V1__CheckResult cr = ANNOT__V1__CHECK_RESULT__INIT;
    cr.check_id = out->check_id;
    cr.submission_id = s->submission_id;
    cr.task_id = s->task_id;
    cr.author_id = s->author_id;
    cr.author_role = s->author_role;
    cr.task_kind = s->task_kind;
    cr.locale = s->task->locale;
    cr.n_skills = s->task->n_skills;
    cr.skills = s->task->skills;
    cr.candidate_id = s->candidate_id;
    cr.exam_stage = s->exam_stage;
    cr.n_findings = result->count;
    cr.findings = fptrs;
    cr.score = result->score;
    cr.blocking = result->blocking;
    cr.checked_at_ms = checked_at_ms;
    cr.rules_version = (char *)check_rules_version(rules);
    cr.submission = (Annot__V1__Submission *)s;
    Annot__V1__CheckResultEvent out_ev = ANNOT__V1__CHECK_RESULT_EVENT__INIT;
    out_ev.header = &hdr;
    out_ev.check = &cr;
    out->len = annot__v1__check_result_event__get_packed_size(&out_ev);
    out->bytes = malloc(out->len ? out->len : 1);
    if (out->bytes == NULL) abort();
    annot__v1__check_result_event__pack(&out_ev, out->bytes);
    free(findings);
    free(fptrs);
    return 0;
}
