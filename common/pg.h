/* pg: PostgreSQL through libpq.  Parameterised statements only; a connection
 * works inside its service's own schema (search_path), which migrations
 * create; transactions through small helpers; a broken connection is reset
 * on the next call. */
#ifndef ANNOT_PG_H
#define ANNOT_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct pg pg_t;

/* Connects to url, retrying for up to timeout_s (PostgreSQL may still be
 * starting), and sets search_path to schema (created if missing). */
pg_t *pg_connect(const char *url, const char *schema, int timeout_s, char *errstr, size_t errlen);
void pg_close(pg_t *pg);
PGconn *pg_conn(pg_t *pg);
const char *pg_schema(const pg_t *pg);
/* Resets a broken connection; 0 when the connection is usable. */
int pg_ensure(pg_t *pg, char *errstr, size_t errlen);
/* 0 when a trivial query succeeds (readiness). */
int pg_ping(pg_t *pg);

/* Runs sql with text parameters ($1..$n; NULL entries are SQL NULL) and
 * checks that the status is `expect`.  Returns the result (the caller
 * PQclear()s it) or NULL with errstr set. */
PGresult *pg_query(pg_t *pg, ExecStatusType expect, const char *sql, int nparams,
                   const char *const *params, char *errstr, size_t errlen);
/* The same with lengths and formats (1 = binary) for bytea parameters. */
PGresult *pg_query_ex(pg_t *pg, ExecStatusType expect, const char *sql, int nparams,
                      const char *const *params, const int *lengths, const int *formats,
                      char *errstr, size_t errlen);
/* Runs a command; returns the number of rows it affected, or -1. */
long pg_command(pg_t *pg, const char *sql, int nparams, const char *const *params, char *errstr,
                size_t errlen);

/* The text of a PostgreSQL text[] literal holding items (quotes and
 * backslashes escaped), for a "$n::text[]" parameter.  free() it. */
char *pg_text_array(const char *const *items, size_t n);

int pg_begin(pg_t *pg, char *errstr, size_t errlen);
int pg_commit(pg_t *pg, char *errstr, size_t errlen);
/* Whether an error of this SQLSTATE comes back every time the same
 * statement runs with the same data: a data exception (class 22: a value
 * out of range, a byte sequence the encoding refuses), a NOT NULL or CHECK
 * violation (23502, 23514), a program limit (class 54: an index row too
 * large).  Not a unique or foreign-key violation (23505, 23503), which a
 * concurrent writer or a later event may resolve, nor anything about the
 * connection, the server's resources or conflicts between transactions. */
bool pg_sqlstate_permanent(const char *state);
/* Whether the transaction of the last pg_begin failed on such an error:
 * run again with the same data, it fails again. */
bool pg_failed_permanently(const pg_t *pg);
/* Never fails visibly: a failed rollback leaves a connection pg_ensure resets. */
void pg_rollback(pg_t *pg);

/* Applies, under an advisory lock on the schema, the common tables (event
 * ledger, outbox) and then every dir/NNN_*.sql not yet applied, in order,
 * each in its own transaction.  dir may be NULL. */
int pg_migrate(pg_t *pg, const char *dir, char *errstr, size_t errlen);

#endif
