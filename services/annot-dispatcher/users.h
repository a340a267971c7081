/* users: who is asking.  Looks a bearer token up in the users table. */
#ifndef DISPATCHER_USERS_H
#define DISPATCHER_USERS_H

#include <stdbool.h>

#include "pg.h"

typedef struct user {
    char user_id[64];
    char name[128];
    char role[16];   /* annotator, candidate, validator, admin */
    char status[16]; /* active, probation, suspended */
    char locale[32];
    char skills_buf[512];  /* the skills, NUL-separated; skills[] points in */
    const char *skills[16];
    size_t nskills;
    bool has_quality;
    double rolling_quality;
    int validated_count;
} user_t;

typedef enum {
    USERS_FOUND = 0,
    USERS_UNKNOWN,    /* no such token */
    USERS_UNAVAILABLE /* the database failed */
} users_lookup_t;

/* Finds the user whose token is presented (the raw header value's token). */
users_lookup_t users_by_token(pg_t *pg, const char *token, user_t *out, char *errstr, size_t errlen);

#endif
