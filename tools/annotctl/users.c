/* annotctl users add: creates a person who may talk to the dispatcher and
 * prints their bearer token, once, alone on the last line.  Only the token's
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

#include "annotctl.h"
#include "auth.h"
#include "event.h"
#include "pg.h"

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
    PGresult *res = pg_query_ex(pg, PGRES_COMMAND_OK,
                                "INSERT INTO users (user_id, name, role, locale, skills, token_hash) VALUES "
                                "($1, $2, $3, $4, coalesce(string_to_array(nullif($5, ''), ','), '{}'), $6)",
                                6, params, lengths, formats, err, sizeof(err));
    pg_close(pg);
    if (res == NULL) {
        fprintf(stderr, "annotctl: %s\n", err);
        return 1;
    }
    PQclear(res);
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
