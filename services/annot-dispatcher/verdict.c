/* verdict: see verdict.h. */
#include "verdict.h"

#include <stdio.h>
#include <string.h>

#include "utf8.h"

static const char *const feedback_kinds[] = {NULL, "ambiguity", "missing_rule", "contradiction", "edge_case"};

const char *verdict_feedback_kind_name(verdict_feedback_kind_t kind) {
    return kind >= VERDICT_FEEDBACK_AMBIGUITY && kind <= VERDICT_FEEDBACK_EDGE_CASE ? feedback_kinds[kind] : NULL;
}

/* A string member of an item, optional or not; -1 with errstr. */
static int item_string(const json_t *item, const char *name, bool required, const char **out, const char *where,
                       char *errstr, size_t errlen) {
    const json_t *v = json_object_get(item, name);
    if (v == NULL && !required) {
        *out = "";
        return 0;
    }
    if (!json_is_string(v) || (required && json_string_length(v) == 0) ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(errstr, errlen, "%s.%s: %s", where, name,
                 v == NULL ? "required" : "expected a non-empty string without NUL bytes");
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* Refuses members of item not in allowed (NULL-terminated). */
static int item_only(const json_t *item, const char *const *allowed, const char *where, char *errstr, size_t errlen) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)item, key, v) {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0) i++;
        if (allowed[i] == NULL) {
            char name[UTF8_QUOTE_MAX + 1];
            snprintf(errstr, errlen, "%s.%s: unknown field", where, utf8_quote(name, sizeof(name), key));
            return -1;
        }
    }
    return 0;
}

static int parse_errors(const json_t *arr, const check_taxonomy_t *taxonomy, verdict_t *out, char *errstr,
                        size_t errlen) {
    static const char *const allowed[] = {"category", "severity", "section", "note", NULL};
    if (!json_is_array(arr) || json_array_size(arr) > VERDICT_ITEMS_MAX) {
        snprintf(errstr, errlen, "errors: expected an array of at most %d items", VERDICT_ITEMS_MAX);
        return -1;
    }
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item) {
        char where[32];
        snprintf(where, sizeof(where), "errors[%zu]", i);
        verdict_error_t *e = &out->errors[i];
        const char *severity;
        if (!json_is_object(item)) {
            snprintf(errstr, errlen, "%s: expected an object", where);
            return -1;
        }
        if (item_only(item, allowed, where, errstr, errlen) != 0 ||
            item_string(item, "category", true, &e->category, where, errstr, errlen) != 0 ||
            item_string(item, "severity", true, &severity, where, errstr, errlen) != 0 ||
            item_string(item, "section", false, &e->section, where, errstr, errlen) != 0 ||
            item_string(item, "note", false, &e->note, where, errstr, errlen) != 0)
            return -1;
        if (check_taxonomy_find(taxonomy, e->category) == NULL) {
            char name[UTF8_QUOTE_MAX + 1];
            snprintf(errstr, errlen, "%s.category: '%s' is not in the error taxonomy", where,
                     utf8_quote(name, sizeof(name), e->category));
            return -1;
        }
        if (check_severity_parse(severity, &e->severity) != 0) {
            snprintf(errstr, errlen, "%s.severity: expected minor, major or critical", where);
            return -1;
        }
    }
    out->nerrors = json_array_size(arr);
    return 0;
}

static int parse_feedback(const json_t *arr, verdict_t *out, char *errstr, size_t errlen) {
    static const char *const allowed[] = {"section", "kind", "text", NULL};
    if (!json_is_array(arr) || json_array_size(arr) > VERDICT_ITEMS_MAX) {
        snprintf(errstr, errlen, "feedback: expected an array of at most %d items", VERDICT_ITEMS_MAX);
        return -1;
    }
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item) {
        char where[32];
        snprintf(where, sizeof(where), "feedback[%zu]", i);
        verdict_feedback_t *f = &out->feedback[i];
        const char *kind;
        if (!json_is_object(item)) {
            snprintf(errstr, errlen, "%s: expected an object", where);
            return -1;
        }
        if (item_only(item, allowed, where, errstr, errlen) != 0 ||
            item_string(item, "section", true, &f->section, where, errstr, errlen) != 0 ||
            item_string(item, "kind", true, &kind, where, errstr, errlen) != 0 ||
            item_string(item, "text", true, &f->text, where, errstr, errlen) != 0)
            return -1;
        f->kind = 0;
        for (int k = VERDICT_FEEDBACK_AMBIGUITY; k <= VERDICT_FEEDBACK_EDGE_CASE; k++) {
            if (strcmp(kind, feedback_kinds[k]) == 0) f->kind = (verdict_feedback_kind_t)k;
        }
        if (f->kind == 0) {
            snprintf(errstr, errlen, "%s.kind: expected ambiguity, missing_rule, contradiction or edge_case", where);
            return -1;
        }
    }
    out->nfeedback = json_array_size(arr);
    return 0;
}

int verdict_parse(const json_t *body, const check_taxonomy_t *taxonomy, const double weights[4], verdict_t *out,
                  char *errstr, size_t errlen) {
    static const char *const allowed[] = {"verdict", "errors", "feedback", "fencing_token", NULL};
    memset(out, 0, sizeof(*out));
    if (!json_is_object(body)) {
        snprintf(errstr, errlen, "body: expected a JSON object");
        return -1;
    }
    if (item_only(body, allowed, "body", errstr, errlen) != 0) {
        /* "body.x: unknown field" reads better as "x: unknown field". */
        memmove(errstr, errstr + 5, strlen(errstr + 5) + 1);
        return -1;
    }
    const json_t *v = json_object_get(body, "verdict");
    if (!json_is_string(v) || (strcmp(json_string_value(v), "accept") != 0 && strcmp(json_string_value(v), "reject") != 0)) {
        snprintf(errstr, errlen, "verdict: expected \"accept\" or \"reject\"");
        return -1;
    }
    out->accept = strcmp(json_string_value(v), "accept") == 0;
    const json_t *errors = json_object_get(body, "errors");
    if (errors != NULL && parse_errors(errors, taxonomy, out, errstr, errlen) != 0) return -1;
    const json_t *feedback = json_object_get(body, "feedback");
    if (feedback != NULL && parse_feedback(feedback, out, errstr, errlen) != 0) return -1;
    if (!out->accept && out->nerrors == 0) {
        snprintf(errstr, errlen, "errors: a reject names at least one error");
        return -1;
    }
    double penalty = 0;
    for (size_t i = 0; i < out->nerrors; i++) penalty += weights[out->errors[i].severity];
    out->score = penalty >= 1.0 ? 0.0 : 1.0 - penalty;
    return 0;
}

int verdict_description_parse(const json_t *body, const char **description, char *errstr, size_t errlen) {
    const char *key;
    json_t *v;
    *description = NULL;
    json_object_foreach((json_t *)body, key, v) {
        if (strcmp(key, "description") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v)) {
                snprintf(errstr, errlen, "description: expected a non-empty string without NUL bytes");
                return -1;
            }
            *description = json_string_value(v);
        } else if (strcmp(key, "fencing_token") != 0) {
            char name[UTF8_QUOTE_MAX + 1];
            snprintf(errstr, errlen, "%s: unknown field", utf8_quote(name, sizeof(name), key));
            return -1;
        }
    }
    if (*description == NULL) {
        snprintf(errstr, errlen, "description: required");
        return -1;
    }
    return 0;
}
