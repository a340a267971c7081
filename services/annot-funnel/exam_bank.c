/* exam_bank: see exam_bank.h. */
#include "exam_bank.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "funnel_machine.h"

static const char *stage_key(int stage) { return stage == 1 ? "stage1" : "stage2"; }

int exam_case_task(const exam_case_t *c, int stage, task_proto_t *tp, char *errstr, size_t errlen) {
    json_t *t = json_deep_copy(c->task);
    if (t == NULL || !json_is_object(t)) {
        memset(tp, 0, sizeof(*tp));
        json_decref(t);
        snprintf(errstr, errlen, "task: expected an object");
        return -1;
    }
    json_object_set_new(t, "kind", json_string(stage == 1 ? "exam_stage1" : "exam_stage2"));
    int rc = task_proto_from_json(t, tp, errstr, errlen);
    json_decref(t);
    return rc;
}

static int load_stage(exam_stage_bank_t *sb, json_t *obj, int stage, char *errstr, size_t errlen) {
    const char *key = stage_key(stage);
    json_t *per = json_object_get(obj, "sets_per_candidate"), *sets = json_object_get(obj, "sets");
    if (!json_is_integer(per) || json_integer_value(per) < 1) {
        snprintf(errstr, errlen, "%s.sets_per_candidate: expected a positive integer", key);
        return -1;
    }
    if (!json_is_array(sets) || json_array_size(sets) < (size_t)json_integer_value(per)) {
        snprintf(errstr, errlen, "%s.sets: expected an array of at least sets_per_candidate sets", key);
        return -1;
    }
    sb->sets_per_candidate = (unsigned)json_integer_value(per);
    sb->nsets = json_array_size(sets);
    sb->sets = calloc(sb->nsets, sizeof(*sb->sets));
    if (sb->sets == NULL) abort();
    for (size_t i = 0; i < sb->nsets; i++) {
        json_t *s = json_array_get(sets, i), *cases = json_object_get(s, "cases");
        exam_set_t *es = &sb->sets[i];
        es->id = json_string_value(json_object_get(s, "id"));
        es->locale = json_string_value(json_object_get(s, "locale"));
        if (es->id == NULL || es->id[0] == '\0' || es->locale == NULL) {
            snprintf(errstr, errlen, "%s.sets[%zu]: id and locale are required strings", key, i);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(sb->sets[j].id, es->id) == 0) {
                snprintf(errstr, errlen, "%s.sets[%zu].id: '%s' twice", key, i, es->id);
                return -1;
            }
        }
        if (!json_is_array(cases) || json_array_size(cases) == 0) {
            snprintf(errstr, errlen, "%s.sets[%zu].cases: expected a non-empty array", key, i);
            return -1;
        }
        es->ncases = json_array_size(cases);
        es->cases = calloc(es->ncases, sizeof(*es->cases));
        if (es->cases == NULL) abort();
        for (size_t k = 0; k < es->ncases; k++) {
            json_t *c = json_array_get(cases, k);
            exam_case_t *ec = &es->cases[k];
            ec->id = json_string_value(json_object_get(c, "id"));
            ec->task = json_object_get(c, "task");
            if (ec->id == NULL || ec->id[0] == '\0') {
                snprintf(errstr, errlen, "%s.sets[%zu].cases[%zu].id: required", key, i, k);
                return -1;
            }
            for (size_t j = 0; j < k; j++) {
                if (strcmp(es->cases[j].id, ec->id) == 0) {
                    snprintf(errstr, errlen, "%s.sets[%zu].cases[%zu].id: '%s' twice", key, i, k, ec->id);
                    return -1;
                }
            }
            if (json_object_get(ec->task, "task_id") || json_object_get(ec->task, "kind")) {
                snprintf(errstr, errlen, "%s.sets[%zu].cases[%zu].task: task_id and kind are set by the funnel", key,
                         i, k);
                return -1;
            }
            task_proto_t tp;
            char why[512];
            int rc = exam_case_task(ec, stage, &tp, why, sizeof(why));
            task_proto_clear(&tp);
            if (rc != 0) {
                snprintf(errstr, errlen, "%s.sets[%zu].cases[%zu].%s", key, i, k, why);
                return -1;
            }
        }
    }
    return 0;
}

int exam_bank_load(exam_bank_t *bank, const char *path, char *errstr, size_t errlen) {
    memset(bank, 0, sizeof(*bank));
    json_error_t jerr;
    bank->root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (bank->root == NULL) {
        snprintf(errstr, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
        return -1;
    }
    char why[768];
    bank->version = json_string_value(json_object_get(bank->root, "version"));
    int rc = 0;
    if (bank->version == NULL || bank->version[0] == '\0') {
        snprintf(why, sizeof(why), "version: required");
        rc = -1;
    }
    for (int s = 1; s <= 2 && rc == 0; s++) {
        json_t *obj = json_object_get(bank->root, stage_key(s));
        if (!json_is_object(obj)) {
            snprintf(why, sizeof(why), "%s: required object", stage_key(s));
            rc = -1;
        } else {
            rc = load_stage(&bank->stage[s - 1], obj, s, why, sizeof(why));
        }
    }
    if (rc != 0) {
        snprintf(errstr, errlen, "%s: %s", path, why);
        exam_bank_free(bank);
    }
    return rc;
}

void exam_bank_free(exam_bank_t *bank) {
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < bank->stage[s].nsets; i++) free(bank->stage[s].sets[i].cases);
        free(bank->stage[s].sets);
    }
    json_decref(bank->root);
    memset(bank, 0, sizeof(*bank));
}

int exam_bank_choose(const exam_bank_t *bank, int stage, const char *locale, const char *seed, const exam_set_t **out,
                     size_t max, size_t *n) {
    const exam_stage_bank_t *sb = &bank->stage[stage == 1 ? 0 : 1];
    size_t want = sb->sets_per_candidate, *draw = calloc(sb->nsets, sizeof(*draw));
    if (draw == NULL || want > max || funnel_draw(seed, sb->nsets, sb->nsets, draw) != 0) {
        free(draw);
        return -1;
    }
    /* The whole bank in drawn order, read twice: own locale, then the rest. */
    *n = 0;
    for (int pass = 0; pass < 2 && *n < want; pass++) {
        for (size_t i = 0; i < sb->nsets && *n < want; i++) {
            const exam_set_t *s = &sb->sets[draw[i]];
            if ((strcmp(s->locale, locale) == 0) == (pass == 0)) out[(*n)++] = s;
        }
    }
    free(draw);
    return 0;
}
