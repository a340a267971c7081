/* topics: the topic table in config/topics.conf.  Services name topics by
 * role ("tasks", "dlq", ...) so an operator can rename or version a topic in
 * one place; the devbroker and `annotctl topics create` create every topic in
 * it with its partition count. */
#ifndef ANNOT_TOPICS_H
#define ANNOT_TOPICS_H

#include <stddef.h>

typedef struct topic_def {
    char role[64];
    char name[256];
    int partitions;
} topic_def_t;

typedef struct topics {
    topic_def_t *items;
    size_t count;
} topics_t;

/* Parses lines "role name partitions" ('#' comments).  Returns 0, or -1 with
 * errstr naming the file and line. */
int topics_load(topics_t *topics, const char *path, char *errstr, size_t errlen);
/* Puts prefix before every topic name (config key topics.prefix: several
 * isolated deployments, or parallel test lanes, on one cluster).  Returns 0,
 * or -1 with errstr when a prefixed name is not a legal topic name. */
int topics_prefix(topics_t *topics, const char *prefix, char *errstr, size_t errlen);
void topics_free(topics_t *topics);
/* The topic of a role, or NULL. */
const topic_def_t *topics_find(const topics_t *topics, const char *role);

#endif
