/* users: see users.h. */
#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

users_lookup_t users_by_token(pg_t *pg, const char *token, user_t *out, char *errstr, size_t errlen) {
    uint8_t hash[AUTH_HASH_LEN];
    if (auth_token_hash(token, hash) != 0) return USERS_UNKNOWN;
    if (pg_ensure(pg, errstr, errlen) != 0) return USERS_UNAVAILABLE;
    const char *params[1] = {(const char *)hash};
    int lengths[1] = {AUTH_HASH_LEN}, formats[1] = {1};
    PGresult *res = pg_query_ex(pg, PGRES_TUPLES_OK,
                                "SELECT user_id, name, role, status, locale, rolling_quality, validated_count, "
                                "token_hash, array_to_string(skills, ',') FROM users WHERE token_hash = $1",
                                1, params, lengths, formats, errstr, errlen);
    if (res == NULL) return USERS_UNAVAILABLE;
    users_lookup_t rc = USERS_UNKNOWN;
    if (PQntuples(res) == 1) {
        /* The index found the row; the constant-time comparison is what
         * decides, so no early exit leaks how much of a hash matched. */
        size_t stored_len = 0;
        unsigned char *stored = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 7), &stored_len);
        if (stored != NULL && stored_len == AUTH_HASH_LEN && auth_hash_equal(stored, hash)) {
            snprintf(out->user_id, sizeof(out->user_id), "%s", PQgetvalue(res, 0, 0));
            snprintf(out->name, sizeof(out->name), "%s", PQgetvalue(res, 0, 1));
            snprintf(out->role, sizeof(out->role), "%s", PQgetvalue(res, 0, 2));
            snprintf(out->status, sizeof(out->status), "%s", PQgetvalue(res, 0, 3));
            snprintf(out->locale, sizeof(out->locale), "%s", PQgetvalue(res, 0, 4));
            out->has_quality = !PQgetisnull(res, 0, 5);
            out->rolling_quality = out->has_quality ? strtod(PQgetvalue(res, 0, 5), NULL) : 0.0;
            out->validated_count = atoi(PQgetvalue(res, 0, 6));
            snprintf(out->skills_buf, sizeof(out->skills_buf), "%s", PQgetvalue(res, 0, 8));
            out->nskills = 0;
            char *save = NULL;
            for (char *tok = strtok_r(out->skills_buf, ",", &save); tok && out->nskills < 16;
                 tok = strtok_r(NULL, ",", &save))
                out->skills[out->nskills++] = tok;
            rc = USERS_FOUND;
        }
        PQfreemem(stored);
    }
    PQclear(res);
    return rc;
}
