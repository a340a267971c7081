/* topics: parser of the topic table; see topics.h. */
#include "topics.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int topic_name_valid(const char *s) {
    /* Kafka's legal characters, and its 249-character limit. */
    size_t n = strlen(s);
    if (n == 0 || n > 249 || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
    for (; *s; s++) {
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-') return 0;
    }
    return 1;
}

int topics_load(topics_t *topics, const char *path, char *errstr, size_t errlen) {
    memset(topics, 0, sizeof(*topics));
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(errstr, errlen, "topics file '%s': %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    int lineno = 0, rc = 0;
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char role[64], name[256], count[16], extra[8];
        int n = sscanf(line, "%63s %255s %15s %7s", role, name, count, extra);
        if (n <= 0) continue;
        /* strtol, not %d: sscanf's overflow is undefined, and glibc turns
         * 4294967297 into 1. */
        char *end = NULL;
        long parts = 0;
        if (n == 3) {
            errno = 0;
            parts = strtol(count, &end, 10);
            if (errno != 0 || *end != '\0') parts = 0;
        }
        if (n != 3 || parts < 1 || parts > 10000 || !topic_name_valid(name)) {
            snprintf(errstr, errlen, "topics file '%s' line %d: expected 'role name partitions'", path, lineno);
            rc = -1;
            break;
        }
        if (topics_find(topics, role) != NULL) {
            snprintf(errstr, errlen, "topics file '%s' line %d: role '%s' listed twice", path, lineno, role);
            rc = -1;
            break;
        }
        if (topics->count == alloc) {
            alloc = alloc ? alloc * 2 : 16;
            topics->items = realloc(topics->items, alloc * sizeof(*topics->items));
            if (topics->items == NULL) abort();
        }
        topic_def_t *t = &topics->items[topics->count++];
        snprintf(t->role, sizeof(t->role), "%s", role);
        snprintf(t->name, sizeof(t->name), "%s", name);
        t->partitions = (int)parts;
    }
    free(line);
    fclose(f);
    if (rc == 0 && topics->count == 0) {
        snprintf(errstr, errlen, "topics file '%s': no topics", path);
        rc = -1;
    }
    if (rc != 0) topics_free(topics);
    return rc;
}

int topics_prefix(topics_t *topics, const char *prefix, char *errstr, size_t errlen) {
    for (size_t i = 0; i < topics->count; i++) {
        topic_def_t *t = &topics->items[i];
        char name[sizeof(t->name)];
        int n = snprintf(name, sizeof(name), "%s%s", prefix, t->name);
        if (n < 0 || (size_t)n >= sizeof(name) || !topic_name_valid(name)) {
            snprintf(errstr, errlen, "config key 'topics.prefix': '%s%s' is not a legal Kafka topic name", prefix,
                     t->name);
            return -1;
        }
        memcpy(t->name, name, sizeof(name));
    }
    return 0;
}

void topics_free(topics_t *topics) {
    free(topics->items);
    topics->items = NULL;
    topics->count = 0;
}

const topic_def_t *topics_find(const topics_t *topics, const char *role) {
    for (size_t i = 0; i < topics->count; i++) {
        if (strcmp(topics->items[i].role, role) == 0) return &topics->items[i];
    }
    return NULL;
}
