/* check_json: the checker's JSON edges, shared by `annotctl check` and the
 * dispatcher's POST /v1/check: the task object of DESIGN.md section 7
 * (every field checked for its type, unknown fields refused by name), the
 * request {"task", "description"} and the result line. */
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

static char *dup_checked(const json_t *v, const char *path, char *errstr, size_t errlen) {
    if (!json_is_string(v)) {
        snprintf(errstr, errlen, "%s: expected a string", path);
        return NULL;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (strlen(s) != n) {
        snprintf(errstr, errlen, "%s: contains a NUL character", path);
        return NULL;
    }
    char *d = strdup(s);
    if (d == NULL) snprintf(errstr, errlen, "%s: out of memory", path);
    return d;
}

/* An optional string field: null is the same as absent. */
static int string_field(const json_t *v, const char *path, char **out, char *errstr, size_t errlen) {
    if (json_is_null(v)) return 0;
    free(*out);
    *out = dup_checked(v, path, errstr, errlen);
    return *out ? 0 : -1;
}

static int string_array_field(const json_t *v, const char *path, char ***out, size_t *count, char *errstr,
                              size_t errlen) {
    if (json_is_null(v)) return 0;
    if (!json_is_array(v)) {
        snprintf(errstr, errlen, "%s: expected an array of strings", path);
        return -1;
    }
    size_t n = json_array_size(v);
    *out = calloc(n + 1, sizeof(**out));
    if (*out == NULL) {
        snprintf(errstr, errlen, "%s: out of memory", path);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char p[96];
        snprintf(p, sizeof(p), "%s[%zu]", path, i);
        (*out)[i] = dup_checked(json_array_get(v, i), p, errstr, errlen);
        if ((*out)[i] == NULL) return -1;
        *count = i + 1;
    }
    return 0;
}

static bool locale_valid(const char *s) {
    /* BCP 47 in its common shape: a 2-3 letter language, then subtags of
     * 2-8 letters or digits. */
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (n < 2 || n > 3) return false;
    s += n;
    while (*s == '-') {
        s++;
        size_t k = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
        if (k < 1 || k > 8) return false;
        s += k;
    }
    return *s == '\0';
}

static int component_parse(const json_t *v, size_t i, check_component_t *c, char *errstr, size_t errlen) {
    char path[64];
    snprintf(path, sizeof(path), "task.components[%zu]", i);
    if (!json_is_object(v)) {
        snprintf(errstr, errlen, "%s: expected an object {name, relation, target}", path);
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)v, key, value) {
        char field[UTF8_QUOTE_MAX + 1], p[sizeof(path) + UTF8_QUOTE_MAX + 2];
        utf8_quote(field, sizeof(field), key);
        snprintf(p, sizeof(p), "%s.%s", path, field);
        char **slot = strcmp(key, "name") == 0       ? &c->name
                      : strcmp(key, "relation") == 0 ? &c->relation
                      : strcmp(key, "target") == 0   ? &c->target
                                                     : NULL;
        if (slot == NULL) {
            snprintf(errstr, errlen, "%s: unknown field", p);
            return -1;
        }
        if (string_field(value, p, slot, errstr, errlen) != 0) return -1;
    }
    if (c->name == NULL || c->name[0] == '\0') {
        snprintf(errstr, errlen, "%s.name: required", path);
        return -1;
    }
    return 0;
}

int check_task_from_json(const json_t *obj, check_task_t *task, char *errstr, size_t errlen) {
    memset(task, 0, sizeof(*task));
    if (!json_is_object(obj)) {
        snprintf(errstr, errlen, "task: expected an object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        char field[UTF8_QUOTE_MAX + 1], p[80];
        utf8_quote(field, sizeof(field), key);
        snprintf(p, sizeof(p), "task.%s", field);
        int rc = 0;
        if (strcmp(key, "task_id") == 0) rc = string_field(v, p, &task->task_id, errstr, errlen);
        else if (strcmp(key, "image_uri") == 0) rc = string_field(v, p, &task->image_uri, errstr, errlen);
        else if (strcmp(key, "main_object") == 0) rc = string_field(v, p, &task->main_object, errstr, errlen);
        else if (strcmp(key, "locale") == 0) rc = string_field(v, p, &task->locale, errstr, errlen);
        else if (strcmp(key, "pregenerated") == 0) rc = string_field(v, p, &task->pregenerated, errstr, errlen);
        else if (strcmp(key, "guideline_version") == 0)
            rc = string_field(v, p, &task->guideline_version, errstr, errlen);
        else if (strcmp(key, "main_object_synonyms") == 0)
            rc = string_array_field(v, p, &task->main_object_synonyms, &task->synonym_count, errstr, errlen);
        else if (strcmp(key, "skills") == 0)
            rc = string_array_field(v, p, &task->skills, &task->skill_count, errstr, errlen);
        else if (strcmp(key, "kind") == 0) {
            if (!json_is_string(v) || check_kind_parse(json_string_value(v), &task->kind) != 0) {
                snprintf(errstr, errlen, "%s: expected one of production, exam_stage1, exam_stage2, golden", p);
                rc = -1;
            }
        } else if (strcmp(key, "priority") == 0) {
            if (!json_is_null(v)) {
                json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
                if (!json_is_integer(v) || n < INT32_MIN || n > INT32_MAX) {
                    snprintf(errstr, errlen, "%s: expected a 32-bit integer", p);
                    rc = -1;
                } else {
                    task->priority = (int32_t)n;
                }
            }
        } else if (strcmp(key, "components") == 0) {
            if (json_is_null(v)) continue;
            if (!json_is_array(v)) {
                snprintf(errstr, errlen, "%s: expected an array of {name, relation, target}", p);
                return -1;
            }
            size_t n = json_array_size(v);
            task->components = calloc(n + 1, sizeof(*task->components));
            if (task->components == NULL) {
                snprintf(errstr, errlen, "%s: out of memory", p);
                return -1;
            }
            for (size_t i = 0; i < n && rc == 0; i++) {
                task->component_count = i + 1;
                rc = component_parse(json_array_get(v, i), i, &task->components[i], errstr, errlen);
            }
        } else {
            snprintf(errstr, errlen, "%s: unknown field", p);
            rc = -1;
        }
        if (rc != 0) return -1;
    }
    if (task->kind == 0) {
        snprintf(errstr, errlen, "task.kind: required");
        return -1;
    }
    if (task->main_object == NULL || task->main_object[0] == '\0') {
        snprintf(errstr, errlen, "task.main_object: required");
        return -1;
    }
    if (task->locale == NULL || !locale_valid(task->locale)) {
        snprintf(errstr, errlen, "task.locale: %s", task->locale ? "expected a BCP 47 tag such as en-US" : "required");
        return -1;
    }
    if (task->kind == CHECK_KIND_EXAM_STAGE2 && (task->pregenerated == NULL || task->pregenerated[0] == '\0')) {
        snprintf(errstr, errlen, "task.pregenerated: required for exam_stage2");
        return -1;
    }
    return 0;
}

void check_task_clear(check_task_t *task) {
    free(task->task_id);
    free(task->image_uri);
    free(task->main_object);
    for (size_t i = 0; i < task->synonym_count; i++) free(task->main_object_synonyms[i]);
    free(task->main_object_synonyms);
    free(task->locale);
    for (size_t i = 0; i < task->skill_count; i++) free(task->skills[i]);
    free(task->skills);
    for (size_t i = 0; i < task->component_count; i++) {
        free(task->components[i].name);
        free(task->components[i].relation);
        free(task->components[i].target);
    }
    free(task->components);
    free(task->pregenerated);
    free(task->guideline_version);
    memset(task, 0, sizeof(*task));
}

int check_request_from_json(const json_t *obj, check_task_t *task, const char **description, size_t *len,
                            char *errstr, size_t errlen) {
    memset(task, 0, sizeof(*task));
    *description = NULL;
    *len = 0;
    if (!json_is_object(obj)) {
        snprintf(errstr, errlen, "expected an object {\"task\": {...}, \"description\": \"...\"}");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        char field[UTF8_QUOTE_MAX + 1];
        utf8_quote(field, sizeof(field), key);
        if (strcmp(key, "task") == 0 || strcmp(key, "description") == 0) continue;
        if (strcmp(key, "expect") == 0) {
            bool ok = json_is_array(v);
            for (size_t i = 0; ok && i < json_array_size(v); i++) {
                check_rule_t rule;
                json_t *e = json_array_get(v, i);
                ok = json_is_string(e) && check_rule_parse(json_string_value(e), &rule) == 0;
            }
            if (!ok) {
                snprintf(errstr, errlen, "expect: expected an array of rule ids");
                return -1;
            }
            continue;
        }
        snprintf(errstr, errlen, "%s: unknown field", field);
        return -1;
    }
    json_t *d = json_object_get(obj, "description");
    if (d == NULL) {
        snprintf(errstr, errlen, "description: required");
        return -1;
    }
    if (!json_is_string(d)) {
        snprintf(errstr, errlen, "description: expected a string");
        return -1;
    }
    json_t *t = json_object_get(obj, "task");
    if (t == NULL) {
        snprintf(errstr, errlen, "task: required");
        return -1;
    }
    if (check_task_from_json(t, task, errstr, errlen) != 0) return -1;
    *description = json_string_value(d);
    *len = json_string_length(d);
    return 0;
}

json_t *check_result_to_json(const check_result_t *result) {
    json_t *obj = json_object();
    json_t *findings = json_array();
    if (obj == NULL || findings == NULL) goto fail;
    for (size_t i = 0; i < result->count; i++) {
        const check_finding_t *f = &result->findings[i];
        json_t *m = json_string(f->message);
        if (m == NULL) m = json_string("(message not valid UTF-8)");
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:o, s:b}", "rule", check_rule_name(f->rule), "severity",
                              check_severity_name(f->severity), "section", f->section, "start", (json_int_t)f->start,
                              "end", (json_int_t)f->end, "message", m, "blocking", f->blocking);
        if (o == NULL || json_array_append_new(findings, o) != 0) goto fail;
    }
    if (json_object_set_new(obj, "findings", findings) != 0) {
        findings = NULL;
        goto fail;
    }
    findings = NULL;
    /* Four decimals: weights are given with two, and 0.85000000000000009
     * helps nobody. */
    if (json_object_set_new(obj, "score", json_real(round(result->score * 10000) / 10000)) != 0 ||
        json_object_set_new(obj, "blocking", json_boolean(result->blocking)) != 0)
        goto fail;
    return obj;
fail:
    json_decref(findings);
    json_decref(obj);
    return NULL;
}
