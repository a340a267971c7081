/* pg_pool: see pg_pool.h.  A fixed set of connections behind a mutex and a
 * condition variable; a borrower that finds a broken connection resets it
 * through pg_ensure like anyone else. */
#include "pg_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"

struct pg_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    pg_t **free;
    int nfree, size;
};

pg_pool_t *pg_pool_new(const char *url, const char *schema, int size, int timeout_s, char *errstr, size_t errlen) {
    pg_pool_t *pool = calloc(1, sizeof(*pool));
    if (pool == NULL) abort();
    pool->free = calloc((size_t)size, sizeof(pg_t *));
    if (pool->free == NULL) abort();
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->freed, NULL);
    for (int i = 0; i < size; i++) {
        pg_t *pg = pg_connect(url, schema, timeout_s, errstr, errlen);
        if (pg == NULL) {
            pg_pool_destroy(pool);
            return NULL;
        }
        pool->free[pool->nfree++] = pg;
        pool->size++;
    }
    return pool;
}

void pg_pool_destroy(pg_pool_t *pool) {
    if (pool == NULL) return;
    for (int i = 0; i < pool->nfree; i++) pg_close(pool->free[i]);
    pthread_cond_destroy(&pool->freed);
    pthread_mutex_destroy(&pool->lock);
    free(pool->free);
    free(pool);
}

pg_t *pg_pool_get(pg_pool_t *pool, int timeout_ms) {
    struct timespec deadline = clock_deadline_ms(timeout_ms);
    pthread_mutex_lock(&pool->lock);
    while (pool->nfree == 0) {
        if (pthread_cond_timedwait(&pool->freed, &pool->lock, &deadline) == ETIMEDOUT) break;
    }
    pg_t *pg = pool->nfree > 0 ? pool->free[--pool->nfree] : NULL;
    pthread_mutex_unlock(&pool->lock);
    return pg;
}

void pg_pool_put(pg_pool_t *pool, pg_t *pg) {
    if (pg == NULL) return;
    pthread_mutex_lock(&pool->lock);
    pool->free[pool->nfree++] = pg;
    pthread_cond_signal(&pool->freed);
    pthread_mutex_unlock(&pool->lock);
}
