/* annotctl users add: creates a person who may talk to the dispatcher and
 * prints their bearer token, once, alone on the last line.  Annotators and
 * validators are also announced on the annotators topic (an
 * AnnotatorStatusEvent, through the dispatcher's outbox in the same
 * transaction as the user row): that is how the assigner learns its
 * roster.  Only the token's
 * hash is stored (common/auth.h), so a lost token is replaced, never shown
 * again: `users rotate USER_ID` gives the same person a new token and the
 * old one stops working at its next request (the dispatcher looks the hash
 * up on every request).  The dispatcher's migrations are applied first
 * (idempotent, under their advisory lock), so users can be added before it
 * ever ran. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot/v1/annotator.pb-c.h"
#include "annotctl.h"
#include "auth.h"
#include "outbox.h"
#include "event.h"
#include "pg.h"

/* The announcement of a new annotator or validator (no previous status). */
static int announce(service_t *svc, pg_t *pg, const char *user_id, const char *role, const char *locale,
                    const char *skills, char *err, size_t errlen) {
    const char *topic = service_topic(svc, "annotators");
    if (topic == NULL) {
        snprintf(err, errlen, "the topic table has no annotators topic");
        return -1;
    }
    char event_id[EVENT_ID_LEN], *skill_buf = strdup(skills), *save = NULL, *list[64];
    size_t n = 0;
    for (char *t = strtok_r(skill_buf, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save)) list[n++] = t;
    event_id_derive(event_id, user_id, "user-created");
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, event_id, "annotctl", NULL, NULL);
    Annot__V1__AnnotatorStatusEvent ev = ANNOT__V1__ANNOTATOR_STATUS_EVENT__INIT;
    ev.header = &hdr;
    ev.annotator_id = (char *)user_id;
    ev.status = ANNOT__V1__ANNOTATOR_STATUS__ANNOTATOR_STATUS_ACTIVE;
    ev.reason = "created by annotctl users add";
    ev.changed_at_ms = hdr.occurred_at_ms;
    ev.role = strcmp(role, "validator") == 0 ? ANNOT__V1__ROLE__ROLE_VALIDATOR : ANNOT__V1__ROLE__ROLE_ANNOTATOR;
    ev.locale = (char *)locale;
    ev.n_skills = n;
    ev.skills = list;
    size_t len = annot__v1__annotator_status_event__get_packed_size(&ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) abort();
    annot__v1__annotator_status_event__pack(&ev, buf);
    int rc = outbox_add(pg, topic, user_id, strlen(user_id), buf, len, err, errlen);
    free(buf);
    free(skill_buf);
    return rc;
}

static int role_valid(const char *r) {
    return !strcmp(r, "annotator") || !strcmp(r, "candidate") || !strcmp(r, "validator") || !strcmp(r, "admin");
}

/* The dispatcher's schema, migrated; NULL after printing why. */
static pg_t *users_db_open(service_t *svc) {
    if (auth_init() != 0) {
        fprintf(stderr, "annotctl: libsodium failed to start\n");
        return NULL;
    }
    char err[1024];
    pg_t *pg = pg_connect(config_str(svc->cfg, "database.url"), config_str(svc->cfg, "dispatcher.schema"), 5, err,
                          sizeof(err));
    if (pg == NULL || pg_migrate(pg, config_str(svc->cfg, "dispatcher.migrations"), err, sizeof(err)) != 0) {
        fprintf(stderr, "annotctl: postgresql: %s\n", err);
        pg_close(pg);
        return NULL;
    }
    return pg;
}

int annotctl_users_add(service_t *svc, int argc, char **argv) {
    static const struct option opts[] = {
        {"role", required_argument, NULL, 'r'},   {"name", required_argument, NULL, 'n'},
        {"locale", required_argument, NULL, 'l'}, {"skills", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char *role = NULL, *name = NULL, *locale = "", *skills = "";
    int opt;
    /* The command's own options: argv[0] stands in for the program name. */
    optind = 0;
    while ((opt = getopt_long(argc + 1, argv - 1, "+", opts, NULL)) != -1) {
        switch (opt) {
        case 'r': role = optarg; break;
        case 'n': name = optarg; break;
        case 'l': locale = optarg; break;
        case 's': skills = optarg; break;
        default: return 2;
        }
    }
    if (role == NULL || name == NULL || !role_valid(role) || name[0] == '\0') {
        fprintf(stderr, "annotctl: users add --role annotator|candidate|validator|admin --name NAME "
                        "[--locale L] [--skills a,b]\n");
        return 2;
    }
    pg_t *pg = users_db_open(svc);
    if (pg == NULL) return 1;
    char err[1024];
    char user_id[EVENT_ID_LEN], token[AUTH_TOKEN_LEN];
    uint8_t hash[AUTH_HASH_LEN];
    event_id_new(user_id);
    auth_token_new(token, hash);
    /* skills "a,b" becomes the array literal {a,b} through string_to_array. */
    const char *params[6] = {user_id, name, role, locale, skills, (const char *)hash};
    int lengths[6] = {0, 0, 0, 0, 0, AUTH_HASH_LEN}, formats[6] = {0, 0, 0, 0, 0, 1};
    PGresult *res = NULL;
    bool announced = strcmp(role, "annotator") == 0 || strcmp(role, "validator") == 0;
    int ok = pg_begin(pg, err, sizeof(err)) == 0 &&
             (res = pg_query_ex(pg, PGRES_COMMAND_OK,
                                "INSERT INTO users (user_id, name, role, locale, skills, token_hash) VALUES "
                                "($1, $2, $3, $4, coalesce(string_to_array(nullif($5, ''), ','), '{}'), $6)",
                                6, params, lengths, formats, err, sizeof(err))) != NULL &&
             (!announced || announce(svc, pg, user_id, role, locale, skills, err, sizeof(err)) == 0) &&
             pg_commit(pg, err, sizeof(err)) == 0;
    PQclear(res);
    if (!ok) pg_rollback(pg);
    pg_close(pg);
    if (!ok) {
        fprintf(stderr, "annotctl: %s\n", err);
        return 1;
    }
    printf("user %s (%s, %s) created; their bearer token, shown only now:\n%s\n", user_id, name, role, token);
    return 0;
}

int annotctl_users_rotate(service_t *svc, int argc, char **argv) {
    if (argc != 1 || argv[0][0] == '\0') {
        fprintf(stderr, "annotctl: users rotate USER_ID (the user_id of users add or GET /v1/me)\n");
        return 2;
    }
    pg_t *pg = users_db_open(svc);
    if (pg == NULL) return 1;
    char err[1024], token[AUTH_TOKEN_LEN];
    uint8_t hash[AUTH_HASH_LEN];
    auth_token_new(token, hash);
    const char *params[2] = {argv[0], (const char *)hash};
    int lengths[2] = {0, AUTH_HASH_LEN}, formats[2] = {0, 1};
    PGresult *res = pg_query_ex(pg, PGRES_TUPLES_OK,
                                "UPDATE users SET token_hash = $2 WHERE user_id = $1 RETURNING name, role", 2, params,
                                lengths, formats, err, sizeof(err));
    pg_close(pg);
    if (res == NULL) {
        fprintf(stderr, "annotctl: %s\n", err);
        return 1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        fprintf(stderr, "annotctl: no user %s\n", argv[0]);
        return 1;
    }
    printf("user %s (%s, %s): new bearer token, shown only now; the old one no longer works:\n%s\n", argv[0],
           PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), token);
    PQclear(res);
    return 0;
}
