/* pg: see pg.h.  Errors carry PostgreSQL's own message; callers that retry
 * (the consumer pipeline) call pg_ensure first, which resets the connection
 * when the server went away. */
#include "pg.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct pg {
    PGconn *conn;
    char *schema;
    /* The SQLSTATE of the first statement that failed since the last
     * pg_begin: what failed the transaction (every later statement only
     * says 25P02, the transaction is aborted). */
    char failed_state[6];
};

/* The tables every consuming service needs; see ledger.h for their use. */
static const struct {
    const char *name;
    const char *sql;
} pg_common_migrations[] = {
    {"000_common_ledger",
     "CREATE TABLE processed_events ("
     "  event_id uuid PRIMARY KEY,"
     "  topic text NOT NULL,"
     "  kafka_partition integer NOT NULL,"
     "  kafka_offset bigint NOT NULL,"
     "  applied_at timestamptz NOT NULL DEFAULT now());"
     "CREATE TABLE outbox ("
     "  id bigserial PRIMARY KEY,"
     "  topic text NOT NULL,"
     "  msg_key bytea,"
     "  payload bytea NOT NULL,"
     "  created_at timestamptz NOT NULL DEFAULT now());"},
};

static void pg_errstr(PGconn *conn, char *errstr, size_t errlen) {
    snprintf(errstr, errlen, "%s", PQerrorMessage(conn));
    size_t n = strlen(errstr);
    while (n > 0 && (errstr[n - 1] == '\n' || errstr[n - 1] == ' ')) errstr[--n] = '\0';
}

/* Server notices ("already exists, skipping") go to the debug log instead of
 * libpq's default, stderr. */
static void pg_notice(void *arg, const char *message) {
    (void)arg;
    log_debug("postgresql: %.*s", (int)strcspn(message, "\n"), message);
}

static int pg_session_setup(pg_t *pg, char *errstr, size_t errlen) {
    PQsetNoticeProcessor(pg->conn, pg_notice, NULL);
    char *ident = PQescapeIdentifier(pg->conn, pg->schema, strlen(pg->schema));
    if (ident == NULL) {
        pg_errstr(pg->conn, errstr, errlen);
        return -1;
    }
    char sql[512];
    snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS %s", ident);
    PGresult *res = PQexec(pg->conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok && PQstatus(pg->conn) == CONNECTION_OK) {
        /* Two services creating the same schema at once race on the
         * catalog; the loser's schema exists by now. */
        res = PQexec(pg->conn, sql);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
    }
    if (!ok) {
        pg_errstr(pg->conn, errstr, errlen);
        PQfreemem(ident);
        return -1;
    }
    const char *params[1] = {ident};
    res = PQexecParams(pg->conn, "SELECT set_config('search_path', $1, false)", 1, NULL, params,
                       NULL, NULL, 0);
    PQfreemem(ident);
    ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok) pg_errstr(pg->conn, errstr, errlen);
    PQclear(res);
    return ok ? 0 : -1;
}

pg_t *pg_connect(const char *url, const char *schema, int timeout_s, char *errstr, size_t errlen) {
    time_t deadline = time(NULL) + timeout_s;
    pg_t *pg = calloc(1, sizeof(*pg));
    if (pg == NULL) abort();
    pg->schema = strdup(schema);
    for (int attempt = 1;; attempt++) {
        pg->conn = PQconnectdb(url);
        if (PQstatus(pg->conn) == CONNECTION_OK) break;
        pg_errstr(pg->conn, errstr, errlen);
        PQfinish(pg->conn);
        pg->conn = NULL;
        if (time(NULL) >= deadline) {
            free(pg->schema);
            free(pg);
            return NULL;
        }
        if (attempt == 1) log_warn("postgresql not reachable yet, retrying: %s", errstr);
        sleep(1);
    }
    if (pg_session_setup(pg, errstr, errlen) != 0) {
        pg_close(pg);
        return NULL;
    }
    return pg;
}

void pg_close(pg_t *pg) {
    if (pg == NULL) return;
    if (pg->conn) PQfinish(pg->conn);
    free(pg->schema);
    free(pg);
}

PGconn *pg_conn(pg_t *pg) { return pg->conn; }

const char *pg_schema(const pg_t *pg) { return pg->schema; }

int pg_ensure(pg_t *pg, char *errstr, size_t errlen) {
    if (PQstatus(pg->conn) == CONNECTION_OK) return 0;
    PQreset(pg->conn);
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        pg_errstr(pg->conn, errstr, errlen);
        return -1;
    }
    log_info("postgresql connection re-established");
    return pg_session_setup(pg, errstr, errlen);
}

int pg_ping(pg_t *pg) {
    char err[256];
    if (pg_ensure(pg, err, sizeof(err)) != 0) return -1;
    PGresult *res = PQexec(pg->conn, "SELECT 1");
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    return ok ? 0 : -1;
}

PGresult *pg_query_ex(pg_t *pg, ExecStatusType expect, const char *sql, int nparams,
                      const char *const *params, const int *lengths, const int *formats,
                      char *errstr, size_t errlen) {
    PGresult *res = PQexecParams(pg->conn, sql, nparams, NULL, params, lengths, formats, 0);
    if (PQresultStatus(res) != expect) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (pg->failed_state[0] == '\0' && state != NULL)
            snprintf(pg->failed_state, sizeof(pg->failed_state), "%s", state);
        const char *msg = PQresultErrorMessage(res);
        snprintf(errstr, errlen, "%s", msg && *msg ? msg : PQerrorMessage(pg->conn));
        size_t n = strlen(errstr);
        while (n > 0 && errstr[n - 1] == '\n') errstr[--n] = '\0';
        PQclear(res);
        return NULL;
    }
    return res;
}

PGresult *pg_query(pg_t *pg, ExecStatusType expect, const char *sql, int nparams,
                   const char *const *params, char *errstr, size_t errlen) {
    return pg_query_ex(pg, expect, sql, nparams, params, NULL, NULL, errstr, errlen);
}

long pg_command(pg_t *pg, const char *sql, int nparams, const char *const *params, char *errstr,
                size_t errlen) {
    PGresult *res = pg_query(pg, PGRES_COMMAND_OK, sql, nparams, params, errstr, errlen);
    if (res == NULL) return -1;
    long n = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return n;
}

int pg_begin(pg_t *pg, char *errstr, size_t errlen) {
    pg->failed_state[0] = '\0';
    return pg_command(pg, "BEGIN", 0, NULL, errstr, errlen) < 0 ? -1 : 0;
}

int pg_commit(pg_t *pg, char *errstr, size_t errlen) {
    return pg_command(pg, "COMMIT", 0, NULL, errstr, errlen) < 0 ? -1 : 0;
}

bool pg_sqlstate_permanent(const char *state) {
    if (state == NULL || strlen(state) != 5) return false;
    return strncmp(state, "22", 2) == 0 || strcmp(state, "23502") == 0 || strcmp(state, "23514") == 0 ||
           strncmp(state, "54", 2) == 0;
}

bool pg_failed_permanently(const pg_t *pg) { return pg_sqlstate_permanent(pg->failed_state); }

void pg_rollback(pg_t *pg) {
    PGresult *res = PQexec(pg->conn, "ROLLBACK");
    PQclear(res);
}

static int migration_name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* File names NNN_name.sql, sorted. */
static int migration_files(const char *dir, char ***out, size_t *count, char *errstr, size_t errlen) {
    *out = NULL;
    *count = 0;
    if (dir == NULL) return 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(errstr, errlen, "migrations directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    size_t cap = 0;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        if (len < 9 || strcmp(n + len - 4, ".sql") != 0) continue;
        if (!(n[0] >= '0' && n[0] <= '9' && n[1] >= '0' && n[1] <= '9' && n[2] >= '0' &&
              n[2] <= '9' && n[3] == '_'))
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            *out = realloc(*out, cap * sizeof(char *));
            if (*out == NULL) abort();
        }
        (*out)[(*count)++] = strdup(n);
    }
    closedir(d);
    qsort(*out, *count, sizeof(char *), migration_name_cmp);
    return 0;
}

static char *file_read(const char *path, char *errstr, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(errstr, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    if (buf == NULL) abort();
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (buf == NULL) abort();
        }
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/* Applies one migration in its own transaction unless already recorded. */
static int pg_migration_apply(pg_t *pg, const char *name, const char *sql, char *errstr, size_t errlen) {
    const char *params[1] = {name};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, "SELECT 1 FROM schema_migrations WHERE name = $1", 1,
                             params, errstr, errlen);
    if (res == NULL) return -1;
    int done = PQntuples(res) > 0;
    PQclear(res);
    if (done) return 0;
    if (pg_begin(pg, errstr, errlen) != 0) return -1;
    /* A migration file holds several statements: the simple protocol runs
     * them all (it is our own file, not input). */
    res = PQexec(pg->conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(errstr, errlen, "migration %s: %s", name, PQresultErrorMessage(res));
        PQclear(res);
        pg_rollback(pg);
        return -1;
    }
    PQclear(res);
    if (pg_command(pg, "INSERT INTO schema_migrations (name) VALUES ($1)", 1, params, errstr, errlen) < 0 ||
        pg_commit(pg, errstr, errlen) != 0) {
        pg_rollback(pg);
        return -1;
    }
    log_info("applied migration %s to schema %s", name, pg->schema);
    return 0;
}

int pg_migrate(pg_t *pg, const char *dir, char *errstr, size_t errlen) {
    const char *params[1] = {pg->schema};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, "SELECT pg_advisory_lock(hashtext($1))", 1, params,
                             errstr, errlen);
    if (res == NULL) return -1;
    PQclear(res);
    char **files = NULL;
    size_t nfiles = 0;
    int rc = -1;
    if (pg_command(pg,
                   "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                   0, NULL, errstr, errlen) < 0)
        goto done;
    for (size_t i = 0; i < sizeof(pg_common_migrations) / sizeof(pg_common_migrations[0]); i++) {
        if (pg_migration_apply(pg, pg_common_migrations[i].name, pg_common_migrations[i].sql, errstr,
                               errlen) != 0)
            goto done;
    }
    if (migration_files(dir, &files, &nfiles, errstr, errlen) != 0) goto done;
    for (size_t i = 0; i < nfiles; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        char *sql = file_read(path, errstr, errlen);
        if (sql == NULL) goto done;
        int r = pg_migration_apply(pg, files[i], sql, errstr, errlen);
        free(sql);
        if (r != 0) goto done;
    }
    rc = 0;
done:
    for (size_t i = 0; i < nfiles; i++) free(files[i]);
    free(files);
    res = PQexec(pg->conn, "SELECT pg_advisory_unlock_all()");
    PQclear(res);
    return rc;
}

char *pg_text_array(const char *const *items, size_t n) {
    size_t cap = 3;
    for (size_t i = 0; i < n; i++) cap += 2 * strlen(items[i]) + 3;
    char *s = malloc(cap), *p = s;
    if (s == NULL) abort();
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ',';
        *p++ = '"';
        for (const char *c = items[i]; *c; c++) {
            if (*c == '"' || *c == '\\') *p++ = '\\';
            *p++ = *c;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    return s;
}
