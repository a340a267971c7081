/* training: see training.h. */
#include "training.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int nonempty(json_t *o, const char *name) {
    const char *s = json_string_value(json_object_get(o, name));
    return s != NULL && *s != '\0';
}

int training_load(training_t *t, const char *path, char *errstr, size_t errlen) {
    memset(t, 0, sizeof(*t));
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (root == NULL) {
        snprintf(errstr, errlen, "%s:%d: %s", path, je.line, je.text);
        return -1;
    }
    t->root = root;
    json_t *sections = json_object_get(root, "sections"), *samples = json_object_get(root, "samples");
    if (!nonempty(root, "guideline_version") || !nonempty(root, "title")) {
        snprintf(errstr, errlen, "%s: guideline_version and title: non-empty strings are required", path);
        goto fail;
    }
    if (!json_is_array(sections) || json_array_size(sections) == 0 || !json_is_array(samples) ||
        json_array_size(samples) == 0) {
        snprintf(errstr, errlen, "%s: sections and samples: non-empty arrays are required", path);
        goto fail;
    }
    size_t i;
    json_t *o;
    json_array_foreach(sections, i, o) {
        if (!nonempty(o, "id") || !nonempty(o, "title") || !nonempty(o, "summary")) {
            snprintf(errstr, errlen, "%s: sections[%zu]: id, title and summary are required", path, i);
            goto fail;
        }
    }
    t->sample_ids = calloc(json_array_size(samples), sizeof(*t->sample_ids));
    if (t->sample_ids == NULL) abort();
    json_array_foreach(samples, i, o) {
        const char *verdict = json_string_value(json_object_get(o, "verdict"));
        if (!nonempty(o, "id") || !nonempty(o, "main_object") || !nonempty(o, "description") || !nonempty(o, "notes") ||
            verdict == NULL || (strcmp(verdict, "accept") != 0 && strcmp(verdict, "reject") != 0)) {
            snprintf(errstr, errlen, "%s: samples[%zu]: id, main_object, description, notes and a verdict "
                     "(accept or reject) are required", path, i);
            goto fail;
        }
        const char *id = json_string_value(json_object_get(o, "id"));
        for (size_t k = 0; k < t->nsamples; k++) {
            if (strcmp(t->sample_ids[k], id) == 0) {
                snprintf(errstr, errlen, "%s: samples[%zu].id: duplicated", path, i);
                goto fail;
            }
        }
        t->sample_ids[t->nsamples++] = id;
    }
    t->guideline_version = json_string_value(json_object_get(root, "guideline_version"));
    return 0;
fail:
    training_free(t);
    return -1;
}

void training_free(training_t *t) {
    free(t->sample_ids);
    json_decref(t->root);
    memset(t, 0, sizeof(*t));
}
