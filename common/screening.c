/* screening: see screening.h. */
#include "screening.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

static const char *str_field(json_t *o, const char *name) {
    const char *s = json_string_value(json_object_get(o, name));
    return s && *s ? s : NULL;
}

static json_t *option_find(json_t *options, const char *id) {
    size_t i;
    json_t *o;
    json_array_foreach(options, i, o) {
        if (strcmp(json_string_value(json_object_get(o, "id")), id) == 0) return o;
    }
    return NULL;
}

int screening_bank_load(screening_bank_t *bank, const char *path, char *errstr, size_t errlen) {
    memset(bank, 0, sizeof(*bank));
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (root == NULL) {
        snprintf(errstr, errlen, "%s:%d: %s", path, je.line, je.text);
        return -1;
    }
    bank->root = root;
    json_t *qs = json_object_get(root, "questions");
    if ((bank->version = str_field(root, "version")) == NULL) {
        snprintf(errstr, errlen, "%s: version: a non-empty string is required", path);
        goto fail;
    }
    if (!json_is_array(qs) || json_array_size(qs) == 0) {
        snprintf(errstr, errlen, "%s: questions: a non-empty array is required", path);
        goto fail;
    }
    bank->questions = calloc(json_array_size(qs), sizeof(*bank->questions));
    if (bank->questions == NULL) abort();
    size_t i;
    json_t *q;
    json_array_foreach(qs, i, q) {
        screening_question_t *sq = &bank->questions[i];
        sq->id = str_field(q, "id");
        sq->kind = str_field(q, "kind");
        sq->text = str_field(q, "text");
        sq->answer = str_field(q, "answer");
        sq->options = json_object_get(q, "options");
        const char *bad = sq->id == NULL ? "id" : sq->kind == NULL ? "kind" : sq->text == NULL ? "text" : NULL;
        if (bad == NULL && strcmp(sq->kind, "logic") != 0 && strcmp(sq->kind, "language") != 0) bad = "kind";
        if (bad == NULL && (!json_is_array(sq->options) || json_array_size(sq->options) < 2)) bad = "options";
        for (size_t j = 0; bad == NULL && j < json_array_size(sq->options); j++) {
            json_t *o = json_array_get(sq->options, j);
            const char *oid = str_field(o, "id");
            if (oid == NULL || str_field(o, "text") == NULL) bad = "options";
            for (size_t k = 0; bad == NULL && k < j; k++)
                if (strcmp(oid, json_string_value(json_object_get(json_array_get(sq->options, k), "id"))) == 0)
                    bad = "options";
        }
        if (bad == NULL && (sq->answer == NULL || option_find(sq->options, sq->answer) == NULL)) bad = "answer";
        if (bad == NULL && screening_find(bank, sq->id) != NULL) bad = "id";
        if (bad != NULL) {
            snprintf(errstr, errlen, "%s: questions[%zu].%s is missing, malformed or duplicated", path, i, bad);
            goto fail;
        }
        bank->n++;
    }
    return 0;
fail:
    screening_bank_free(bank);
    return -1;
}

void screening_bank_free(screening_bank_t *bank) {
    free(bank->questions);
    json_decref(bank->root);
    memset(bank, 0, sizeof(*bank));
}

const screening_question_t *screening_find(const screening_bank_t *bank, const char *id) {
    for (size_t i = 0; i < bank->n; i++)
        if (strcmp(bank->questions[i].id, id) == 0) return &bank->questions[i];
    return NULL;
}

json_t *screening_public_json(const screening_bank_t *bank, const char *const *ids, size_t n) {
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        const screening_question_t *q = screening_find(bank, ids[i]);
        if (q == NULL) {
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:O}", "id", q->id, "kind", q->kind, "text", q->text,
                                             "options", q->options));
    }
    return out;
}

static long assigned_index(const char *const *ids, size_t n, const char *id) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0) return (long)i;
    return -1;
}

int screening_answers_check(const screening_bank_t *bank, const char *const *ids, size_t n,
                            const screening_answer_t *answers, size_t nanswers, char *errstr, size_t errlen) {
    unsigned char *seen = calloc(n ? n : 1, 1);
    if (seen == NULL) abort();
    int rc = -1;
    for (size_t i = 0; i < nanswers; i++) {
        long at = assigned_index(ids, n, answers[i].question_id);
        if (at < 0) {
            snprintf(errstr, errlen, "answers[%zu].question_id: not a question of this screening", i);
            goto out;
        }
        if (seen[at]) {
            snprintf(errstr, errlen, "answers[%zu].question_id: answered twice", i);
            goto out;
        }
        seen[at] = 1;
        const screening_question_t *q = screening_find(bank, ids[at]);
        if (q == NULL) {
            snprintf(errstr, errlen, "answers[%zu].question_id: no longer in the question bank", i);
            goto out;
        }
        if (option_find(q->options, answers[i].answer) == NULL) {
            snprintf(errstr, errlen, "answers[%zu].answer: not one of the options of question %s", i, q->id);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!seen[i]) {
            snprintf(errstr, errlen, "answers: question %s is not answered", ids[i]);
            goto out;
        }
    }
    rc = 0;
out:
    free(seen);
    return rc;
}

unsigned screening_correct(const screening_bank_t *bank, const char *const *ids, size_t n,
                           const screening_answer_t *answers, size_t nanswers) {
    unsigned correct = 0;
    for (size_t i = 0; i < n; i++) {
        const screening_question_t *q = screening_find(bank, ids[i]);
        if (q == NULL) continue;
        for (size_t j = 0; j < nanswers; j++) {
            if (strcmp(answers[j].question_id, ids[i]) == 0) {
                if (strcmp(answers[j].answer, q->answer) == 0) correct++;
                break; /* the first answer counts */
            }
        }
    }
    return correct;
}

int screening_body_parse(const json_t *body, const char **screening_id, screening_answer_t **answers,
                         size_t *nanswers, char *errstr, size_t errlen) {
    char name[UTF8_QUOTE_MAX + 1];
    const char *key;
    json_t *v, *jans = NULL;
    *screening_id = NULL;
    *answers = NULL;
    *nanswers = 0;
    json_object_foreach((json_t *)body, key, v) {
        if (strcmp(key, "screening_id") == 0) {
            if (!json_is_string(v)) {
                snprintf(errstr, errlen, "screening_id: expected a string");
                return -1;
            }
            *screening_id = json_string_value(v);
        } else if (strcmp(key, "answers") == 0) {
            if (!json_is_array(v)) {
                snprintf(errstr, errlen, "answers: expected an array");
                return -1;
            }
            jans = v;
        } else {
            snprintf(errstr, errlen, "%s: unknown field", utf8_quote(name, sizeof(name), key));
            return -1;
        }
    }
    if (*screening_id == NULL || jans == NULL) {
        snprintf(errstr, errlen, "%s: required", *screening_id ? "answers" : "screening_id");
        return -1;
    }
    size_t n = json_array_size(jans);
    if (n > SCREENING_ANSWERS_MAX) {
        snprintf(errstr, errlen, "answers: at most %d", SCREENING_ANSWERS_MAX);
        return -1;
    }
    screening_answer_t *a = calloc(n ? n : 1, sizeof(*a));
    if (a == NULL) abort();
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(jans, i);
        const char *bad = NULL;
        if (!json_is_object(item)) bad = "";
        json_object_foreach(item, key, v) {
            if (strcmp(key, "question_id") == 0 && json_is_string(v)) a[i].question_id = json_string_value(v);
            else if (strcmp(key, "answer") == 0 && json_is_string(v)) a[i].answer = json_string_value(v);
            else bad = key;
            if (bad) break;
        }
        if (bad == NULL && a[i].question_id == NULL) bad = "question_id";
        if (bad == NULL && a[i].answer == NULL) bad = "answer";
        if (bad != NULL) {
            snprintf(errstr, errlen, "answers[%zu]%s%s: %s", i, *bad ? "." : "", utf8_quote(name, sizeof(name), bad),
                     *bad ? "a string question_id and answer are the only fields" : "expected an object");
            free(a);
            return -1;
        }
    }
    *answers = a;
    *nanswers = n;
    return 0;
}
