/* task_codec: see task_codec.h. */
#include "task_codec.h"

#include <stdio.h>
#include <string.h>

#include "lease_policy.h"

const char *task_kind_name(Annot__V1__TaskKind k) {
    switch (k) {
    case ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION: return "production";
    case ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE1: return "exam_stage1";
    case ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE2: return "exam_stage2";
    case ANNOT__V1__TASK_KIND__TASK_KIND_GOLDEN: return "golden";
    default: return NULL;
    }
}

static Annot__V1__TaskKind kind_to_proto(check_kind_t k) {
    switch (k) {
    case CHECK_KIND_PRODUCTION: return ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    case CHECK_KIND_EXAM_STAGE1: return ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE1;
    case CHECK_KIND_EXAM_STAGE2: return ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE2;
    case CHECK_KIND_GOLDEN: return ANNOT__V1__TASK_KIND__TASK_KIND_GOLDEN;
    }
    return ANNOT__V1__TASK_KIND__TASK_KIND_UNSPECIFIED;
}

static char *or_empty(char *s) { return s ? s : (char *)""; }

int task_proto_from_json(const json_t *obj, task_proto_t *tp, char *errstr, size_t errlen) {
    memset(tp, 0, sizeof(*tp));
    if (check_task_from_json(obj, &tp->owner, errstr, errlen) != 0) return -1;
    const check_task_t *ct = &tp->owner;
    if (ct->component_count > TASK_CODEC_COMPONENTS_MAX) {
        snprintf(errstr, errlen, "task.components: more than %d", TASK_CODEC_COMPONENTS_MAX);
        return -1;
    }
    Annot__V1__Task *t = &tp->task;
    annot__v1__task__init(t);
    t->task_id = ct->task_id;
    t->kind = kind_to_proto(ct->kind);
    t->image_uri = or_empty(ct->image_uri);
    t->main_object = ct->main_object;
    t->main_object_synonyms = ct->main_object_synonyms;
    t->n_main_object_synonyms = ct->synonym_count;
    t->locale = or_empty(ct->locale);
    t->skills = ct->skills;
    t->n_skills = ct->skill_count;
    t->pregenerated = or_empty(ct->pregenerated);
    t->priority = ct->priority;
    t->guideline_version = or_empty(ct->guideline_version);
    for (size_t i = 0; i < ct->component_count; i++) {
        tp->comps[i] = &tp->comp_store[i];
        annot__v1__component__init(tp->comps[i]);
        tp->comps[i]->name = ct->components[i].name;
        tp->comps[i]->relation = or_empty(ct->components[i].relation);
        tp->comps[i]->target = or_empty(ct->components[i].target);
    }
    t->components = tp->comps;
    t->n_components = ct->component_count;
    return 0;
}

void task_proto_clear(task_proto_t *tp) { check_task_clear(&tp->owner); }

int task_proto_queueable(const Annot__V1__Task *t, char *errstr, size_t errlen) {
    if (!lease_policy_id_valid(t->task_id)) {
        snprintf(errstr, errlen, "task.task_id: empty or not a valid id");
        return -1;
    }
    if (t->main_object == NULL || t->main_object[0] == '\0') {
        snprintf(errstr, errlen, "task.main_object: empty");
        return -1;
    }
    if (!lease_policy_priority_valid(t->priority)) {
        snprintf(errstr, errlen, "task.priority: out of range (%d)", (int)t->priority);
        return -1;
    }
    return 0;
}

static json_t *string_array(char **items, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(items[i]));
    return a;
}

json_t *task_proto_to_json(const Annot__V1__Task *t) {
    json_t *components = json_array();
    for (size_t i = 0; i < t->n_components; i++) {
        const Annot__V1__Component *c = t->components[i];
        json_array_append_new(components, json_pack("{s:s, s:s, s:s}", "name", c->name, "relation", c->relation,
                                                     "target", c->target));
    }
    const char *kind = task_kind_name(t->kind);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:i, s:s}", "task_id", t->task_id, "kind",
                          kind ? kind : "", "image_uri", t->image_uri, "main_object", t->main_object,
                          "main_object_synonyms", string_array(t->main_object_synonyms, t->n_main_object_synonyms),
                          "locale", t->locale, "skills", string_array(t->skills, t->n_skills), "components",
                          components, "priority", (int)t->priority, "guideline_version", t->guideline_version);
    if (j != NULL && t->kind == ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE2)
        json_object_set_new(j, "pregenerated", json_string(t->pregenerated));
    return j;
}
