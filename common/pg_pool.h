/* pg_pool: PostgreSQL connections for threads that serve requests.  A
 * libpq connection must not be used by two threads at once; HTTP handlers
 * borrow one for the length of a request and give it back. */
#ifndef ANNOT_PG_POOL_H
#define ANNOT_PG_POOL_H

#include "pg.h"

typedef struct pg_pool pg_pool_t;

/* Opens size connections to url in schema.  NULL with errstr on failure. */
pg_pool_t *pg_pool_new(const char *url, const char *schema, int size, int timeout_s, char *errstr, size_t errlen);
void pg_pool_destroy(pg_pool_t *pool);
/* Waits up to timeout_ms for a free connection; NULL when none came. */
pg_t *pg_pool_get(pg_pool_t *pool, int timeout_ms);
void pg_pool_put(pg_pool_t *pool, pg_t *pg);

#endif
