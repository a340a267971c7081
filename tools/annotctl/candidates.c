/* annotctl candidates import FILE.ndjson and annotctl candidates show ID.
 *
 * import: one candidate per line, {"name", "locale", "skills": [...]}, and
 * optionally "cohort_day" (YYYY-MM-DD; default the UTC day of the import:
 * annot-sim dates its compressed days with it); a
 * line that also names "candidate_id" is the re-application of a rejected
 * candidate (same user, same token), allowed only once the funnel's
 * cool-down is over and a retry is left.  Every line is checked first
 * (unknown fields, types, locale, duplicates, re-application rules), so a
 * file with one bad line imports nothing.  Then, in one transaction of the
 * dispatcher's schema, the new candidates' users are created as `users add`
 * does and every CandidateApplied (key and candidate_id: the user id) goes
 * into the dispatcher's outbox, which its relay publishes: a file is
 * imported whole or not at all, even with a broker down.  One JSON line per
 * candidate is printed once committed: its id, the application number and
 * (new candidates only) the bearer token, shown this once.
 *
 * show: the candidate's current stage and history from the funnel's
 * schema, as one JSON document. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "annot/v1/candidate.pb-c.h"
#include "annotctl.h"
#include "auth.h"
#include "event.h"
#include "outbox.h"
#include "pg.h"
#include "utf8.h"

#define SKILLS_MAX 32

typedef struct cand_line {
    int lineno;
    char candidate_id[EVENT_ID_LEN];
    bool reapply;
    unsigned application;
    const char *name, *locale;
    const char *cohort_day; /* NULL: today (UTC) */
    const char *skills[SKILLS_MAX];
    size_t nskills;
    json_t *obj; /* owns the strings above */
    char token[AUTH_TOKEN_LEN];
    uint8_t hash[AUTH_HASH_LEN];
} cand_line_t;

/* BCP 47 in its common shape, as the task parser takes it. */
static bool locale_valid(const char *s) {
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    if (n < 2 || n > 3) return false;
    s += n;
    while (*s == '-') {
        s++;
        size_t k = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
        if (k < 1 || k > 8) return false;
        s += k;
    }
    return *s == '\0';
}

/* Parses one line's object; -1 with errstr naming the field. */
static int line_parse(json_t *obj, cand_line_t *c, char *errstr, size_t errlen) {
    if (!json_is_object(obj)) {
        snprintf(errstr, errlen, "expected a JSON object {name, locale, skills}");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (strcmp(key, "name") == 0 && json_is_string(v)) c->name = json_string_value(v);
        else if (strcmp(key, "locale") == 0 && json_is_string(v)) c->locale = json_string_value(v);
        else if (strcmp(key, "cohort_day") == 0) {
            struct tm tm = {0};
            const char *d = json_string_value(v), *end = d ? strptime(d, "%Y-%m-%d", &tm) : NULL;
            if (end == NULL || *end != '\0' || strlen(d) != 10) {
                snprintf(errstr, errlen, "cohort_day: expected a date YYYY-MM-DD");
                return -1;
            }
            c->cohort_day = d;
        } else if (strcmp(key, "candidate_id") == 0 && json_is_string(v)) {
            if (!event_id_valid(json_string_value(v))) {
                snprintf(errstr, errlen, "candidate_id: not a candidate id (UUID)");
                return -1;
            }
            snprintf(c->candidate_id, sizeof(c->candidate_id), "%s", json_string_value(v));
            c->reapply = true;
        } else if (strcmp(key, "skills") == 0 && json_is_array(v)) {
            size_t i;
            json_t *s;
            if (json_array_size(v) > SKILLS_MAX) {
                snprintf(errstr, errlen, "skills: at most %d", SKILLS_MAX);
                return -1;
            }
            json_array_foreach(v, i, s) {
                const char *t = json_string_value(s);
                if (t == NULL || t[0] == '\0' || strpbrk(t, ", {}\"") != NULL) {
                    snprintf(errstr, errlen, "skills[%zu]: expected a skill id (no spaces, commas or braces)", i);
                    return -1;
                }
                c->skills[c->nskills++] = t;
            }
        } else if (strcmp(key, "name") == 0 || strcmp(key, "locale") == 0 || strcmp(key, "candidate_id") == 0) {
            snprintf(errstr, errlen, "%s: expected a string", key);
            return -1;
        } else if (strcmp(key, "skills") == 0) {
            snprintf(errstr, errlen, "skills: expected an array of strings");
            return -1;
        } else {
            char name[UTF8_QUOTE_MAX + 1];
            snprintf(errstr, errlen, "%s: unknown field", utf8_quote(name, sizeof(name), key));
            return -1;
        }
    }
    if (c->name == NULL || c->name[0] == '\0') {
        snprintf(errstr, errlen, "name: required");
        return -1;
    }
    if (c->locale == NULL || !locale_valid(c->locale)) {
        snprintf(errstr, errlen, "locale: %s", c->locale ? "expected a BCP 47 tag such as en-US" : "required");
        return -1;
    }
    return 0;
}

/* A re-application: the funnel must have the candidate rejected, with a
 * retry left and the cool-down over.  pg is the funnel's schema (NULL when
 * it does not exist yet).  -1 with errstr. */
static int reapply_check(pg_t *pg, cand_line_t *c, int64_t now, char *errstr, size_t errlen) {
    if (pg == NULL) {
        snprintf(errstr, errlen, "candidate_id: the funnel knows no candidates yet");
        return -1;
    }
    const char *p[1] = {c->candidate_id};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "SELECT stage, application, retry_after_ms FROM candidates WHERE candidate_id = $1", 1, p,
                             errstr, errlen);
    if (res == NULL) return -1;
    int rc = -1;
    if (PQntuples(res) == 0) {
        snprintf(errstr, errlen, "candidate_id: no candidate %s in the funnel", c->candidate_id);
    } else if (strcmp(PQgetvalue(res, 0, 0), "rejected") != 0) {
        snprintf(errstr, errlen, "candidate_id: candidate %s is in stage %s, not rejected", c->candidate_id,
                 PQgetvalue(res, 0, 0));
    } else if (atoll(PQgetvalue(res, 0, 2)) == 0) {
        snprintf(errstr, errlen, "candidate_id: candidate %s has no retry left", c->candidate_id);
    } else if (atoll(PQgetvalue(res, 0, 2)) > now) {
        snprintf(errstr, errlen, "candidate_id: candidate %s is in cool-down until %s (%lld ms from now)",
                 c->candidate_id, PQgetvalue(res, 0, 2), atoll(PQgetvalue(res, 0, 2)) - (long long)now);
    } else {
        c->application = (unsigned)atoi(PQgetvalue(res, 0, 1)) + 1;
        rc = 0;
    }
    PQclear(res);
    return rc;
}

/* The funnel's schema, or NULL when the funnel never ran. */
static pg_t *funnel_pg(service_t *svc, char *err, size_t errlen) {
    pg_t *pg = pg_connect(config_str(svc->cfg, "database.url"), config_str(svc->cfg, "funnel.schema"), 5, err,
                          errlen);
    if (pg == NULL) return NULL;
    const char *p[1] = {config_str(svc->cfg, "funnel.schema")};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND "
                             "table_name = 'candidates'",
                             1, p, err, errlen);
    bool there = res != NULL && PQntuples(res) == 1;
    PQclear(res);
    if (!there) {
        pg_close(pg);
        return NULL;
    }
    return pg;
}

/* Reads and checks every line; returns the number of bad lines (each
 * reported with its number). */
static int import_read(service_t *svc, FILE *f, const char *name, cand_line_t **out, size_t *count, int64_t now) {
    char *line = NULL, err[512];
    size_t cap = 0, n = 0, alloc = 0;
    int bad = 0, lineno = 0;
    ssize_t len;
    pg_t *fpg = NULL;
    bool fpg_tried = false;
    *out = NULL;
    while ((len = getline(&line, &cap, f)) != -1) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)len) continue;
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            *out = realloc(*out, alloc * sizeof(**out));
            if (*out == NULL) abort();
        }
        cand_line_t *c = &(*out)[n];
        memset(c, 0, sizeof(*c));
        c->lineno = lineno;
        c->application = 1;
        json_error_t jerr;
        c->obj = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);
        int rc = -1;
        if (c->obj == NULL) {
            snprintf(err, sizeof(err), "%s", jerr.text);
        } else if ((rc = line_parse(c->obj, c, err, sizeof(err))) == 0 && c->reapply) {
            if (!fpg_tried) {
                char perr[512];
                fpg = funnel_pg(svc, perr, sizeof(perr));
                fpg_tried = true;
            }
            rc = reapply_check(fpg, c, now, err, sizeof(err));
            for (size_t i = 0; rc == 0 && i < n; i++) {
                if ((*out)[i].reapply && strcmp((*out)[i].candidate_id, c->candidate_id) == 0) {
                    snprintf(err, sizeof(err), "candidate_id: %s also on line %d", c->candidate_id,
                             (*out)[i].lineno);
                    rc = -1;
                }
            }
        }
        if (rc != 0) {
            fprintf(stderr, "annotctl: %s line %d: %s\n", name, lineno, err);
            json_decref(c->obj);
            bad++;
            continue;
        }
        n++;
    }
    free(line);
    pg_close(fpg);
    *count = n;
    return bad;
}

static uint8_t *applied_pack(const cand_line_t *c, int64_t now, size_t *len) {
    char id[EVENT_ID_LEN], day[16], what[32];
    /* One application, one event id: a re-application imported twice is
     * one event to the funnel. */
    snprintf(what, sizeof(what), "applied/%u", c->application);
    event_id_derive(id, c->candidate_id, what);
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    if (c->cohort_day) snprintf(day, sizeof(day), "%s", c->cohort_day);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, "annotctl", "", "");
    hdr.occurred_at_ms = now;
    hdr.correlation_id = id;
    Annot__V1__CandidateApplied a = ANNOT__V1__CANDIDATE_APPLIED__INIT;
    a.name = (char *)c->name;
    a.locale = (char *)c->locale;
    a.n_skills = c->nskills;
    a.skills = (char **)c->skills;
    a.applied_at_ms = now;
    a.cohort_day = day;
    a.application_number = c->application;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.header = &hdr;
    ev.candidate_id = (char *)c->candidate_id;
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED;
    ev.applied = &a;
    *len = annot__v1__candidate_event__get_packed_size(&ev);
    uint8_t *buf = malloc(*len);
    if (buf == NULL) abort();
    annot__v1__candidate_event__pack(&ev, buf);
    return buf;
}

/* Creates the new candidates' users in the open transaction. */
static int users_insert(pg_t *pg, cand_line_t *lines, size_t n, char *err, size_t errlen) {
    for (size_t i = 0; i < n; i++) {
        cand_line_t *c = &lines[i];
        if (c->reapply) {
            const char *p[1] = {c->candidate_id};
            PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                                     "SELECT 1 FROM users WHERE user_id = $1 AND role = 'candidate'", 1, p, err,
                                     errlen);
            bool known = res != NULL && PQntuples(res) == 1;
            PQclear(res);
            if (!known) {
                snprintf(err, errlen, "line %d: candidate_id %s is not a candidate user of the dispatcher", c->lineno,
                         c->candidate_id);
                return -1;
            }
            continue;
        }
        event_id_new(c->candidate_id);
        auth_token_new(c->token, c->hash);
        char *skills = pg_text_array(c->skills, c->nskills);
        const char *params[6] = {c->candidate_id, c->name, "candidate", c->locale, skills, (const char *)c->hash};
        int lengths[6] = {0, 0, 0, 0, 0, AUTH_HASH_LEN}, formats[6] = {0, 0, 0, 0, 0, 1};
        PGresult *res = pg_query_ex(pg, PGRES_COMMAND_OK,
                                    "INSERT INTO users (user_id, name, role, locale, skills, token_hash) VALUES "
                                    "($1, $2, $3, $4, $5::text[], $6)",
                                    6, params, lengths, formats, err, errlen);
        free(skills);
        if (res == NULL) return -1;
        PQclear(res);
    }
    return 0;
}

int annotctl_candidates_import(service_t *svc, int argc, char **argv) {
    if (argc != 1) {
        fprintf(stderr, "annotctl: candidates import FILE.ndjson (or - for standard input)\n");
        return 2;
    }
    if (auth_init() != 0) {
        fprintf(stderr, "annotctl: libsodium failed to start\n");
        return 1;
    }
    FILE *f = strcmp(argv[0], "-") == 0 ? stdin : fopen(argv[0], "r");
    if (f == NULL) {
        perror(argv[0]);
        return 1;
    }
    int64_t now = event_now_ms();
    cand_line_t *lines = NULL;
    size_t n = 0;
    int bad = import_read(svc, f, argv[0], &lines, &n, now);
    if (f != stdin) fclose(f);
    const char *topic = service_topic(svc, "candidates");
    int rc = 1;
    char err[1024];
    pg_t *pg = NULL;
    uint8_t **bufs = calloc(n + 1, sizeof(*bufs));
    if (bufs == NULL) abort();
    if (bad > 0) {
        fprintf(stderr, "annotctl: %d bad line(s): nothing imported\n", bad);
        goto out;
    }
    if (topic == NULL) goto out;
    pg = pg_connect(config_str(svc->cfg, "database.url"), config_str(svc->cfg, "dispatcher.schema"), 5, err,
                    sizeof(err));
    if (pg == NULL || pg_migrate(pg, config_str(svc->cfg, "dispatcher.migrations"), err, sizeof(err)) != 0 ||
        pg_begin(pg, err, sizeof(err)) != 0) {
        fprintf(stderr, "annotctl: postgresql: %s\n", err);
        goto out;
    }
    if (users_insert(pg, lines, n, err, sizeof(err)) != 0) {
        fprintf(stderr, "annotctl: %s: nothing imported\n", err);
        goto out;
    }
    /* The applications go through the dispatcher's outbox, in the users'
     * transaction: all or nothing, whatever the brokers are doing (the
     * dispatcher's relay publishes them within a second of the commit). */
    const void **keys = calloc(n + 1, sizeof(*keys)), **payloads = calloc(n + 1, sizeof(*payloads));
    size_t *keylens = calloc(n + 1, sizeof(*keylens)), *lens = calloc(n + 1, sizeof(*lens));
    if (keys == NULL || payloads == NULL || keylens == NULL || lens == NULL) abort();
    for (size_t i = 0; i < n; i++) {
        bufs[i] = applied_pack(&lines[i], now, &lens[i]);
        payloads[i] = bufs[i];
        keys[i] = lines[i].candidate_id;
        keylens[i] = strlen(lines[i].candidate_id);
    }
    int queued = outbox_add_many(pg, topic, n, keys, keylens, payloads, lens, err, sizeof(err));
    free(keys);
    free(payloads);
    free(keylens);
    free(lens);
    if (queued != 0 || pg_commit(pg, err, sizeof(err)) != 0) {
        fprintf(stderr, "annotctl: postgresql: %s: nothing imported\n", err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "candidate_id", lines[i].candidate_id, "name", lines[i].name,
                              "locale", lines[i].locale, "application", (int)lines[i].application);
        json_object_set_new(o, "token", lines[i].reapply ? json_null() : json_string(lines[i].token));
        char *text = json_dumps(o, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        json_decref(o);
    }
    rc = 0;
out:
    if (rc != 0 && pg != NULL) pg_rollback(pg);
    pg_close(pg);
    for (size_t i = 0; i < n; i++) {
        free(bufs[i]);
        json_decref(lines[i].obj);
        sodium_memzero(lines[i].token, sizeof(lines[i].token));
    }
    free(bufs);
    free(lines);
    return rc;
}

int annotctl_candidates_show(service_t *svc, int argc, char **argv) {
    if (argc != 1) {
        fprintf(stderr, "annotctl: candidates show CANDIDATE_ID\n");
        return 2;
    }
    char err[1024];
    pg_t *pg = funnel_pg(svc, err, sizeof(err));
    if (pg == NULL) {
        fprintf(stderr, "annotctl: the funnel's schema '%s' has no candidates yet\n",
                config_str(svc->cfg, "funnel.schema"));
        return 1;
    }
    const char *p[1] = {argv[0]};
    int rc = annotctl_show_record(pg,
        "SELECT json_build_object('candidate_id', candidate_id, 'name', name, "
        "'locale', locale, 'skills', skills, 'cohort_day', cohort_day, 'stage', "
        "stage, 'application', application, 'retry_after_ms', retry_after_ms, "
        "'updated_at_ms', updated_at_ms)::text FROM candidates WHERE "
        "candidate_id = $1",
        1, p,
        "SELECT coalesce(json_agg(json_build_object('at_ms', occurred_at_ms, 'application', "
        "application, 'kind', kind, 'stage', stage, 'detail', detail, 'event_id', event_id) ORDER BY "
        "id), '[]')::text FROM history WHERE candidate_id = $1",
        "candidate %s");
    pg_close(pg);
    return rc;
}
