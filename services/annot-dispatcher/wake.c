/* wake: see wake.h. */
#include "wake.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "redis.h"

void wake_notify(wake_t *w) {
    pthread_mutex_lock(&w->lock);
    w->generation++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

uint64_t wake_generation(wake_t *w) {
    pthread_mutex_lock(&w->lock);
    uint64_t g = w->generation;
    pthread_mutex_unlock(&w->lock);
    return g;
}

void wake_wait(wake_t *w, uint64_t seen, int timeout_ms) {
    struct timespec deadline = clock_deadline_ms(timeout_ms);
    pthread_mutex_lock(&w->lock);
    while (w->generation == seen && !atomic_load(&w->stop)) {
        if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) != 0) break;
    }
    pthread_mutex_unlock(&w->lock);
}

/* The subscriber: a connection of its own (a subscribed connection can do
 * nothing else), reconnected whenever it breaks, read with a short timeout
 * so stop is noticed. */
static void *wake_run(void *arg) {
    wake_t *w = arg;
    char err[256];
    while (!atomic_load(&w->stop)) {
        redis_t *r = redis_connect(w->redis_url, err, sizeof(err));
        if (r == NULL) {
            sleep(1);
            continue;
        }
        redisContext *c = redis_context(r);
        int ok = 1;
        for (int i = 0; i < w->nchannels && ok; i++) {
            if (redisAppendCommand(c, "SUBSCRIBE %s", w->channels[i]) != REDIS_OK) ok = 0;
        }
        redisSetTimeout(c, (struct timeval){0, 500 * 1000});
        while (ok && !atomic_load(&w->stop)) {
            void *reply = NULL;
            if (redisGetReply(c, &reply) != REDIS_OK) {
                /* A read timeout is how we look at stop; anything else
                 * means reconnect. */
                if (c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    c->err = 0;
                    c->errstr[0] = '\0';
                    continue;
                }
                ok = 0;
                break;
            }
            redisReply *rep = reply;
            if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 && strcmp(rep->element[0]->str, "message") == 0)
                wake_notify(w);
            freeReplyObject(rep);
        }
        redis_close(r);
        /* Work may have arrived while we were not listening. */
        wake_notify(w);
    }
    return NULL;
}

int wake_start(wake_t *w, const char *redis_url, const char *const *channels, int n, char *errstr, size_t errlen) {
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    atomic_init(&w->stop, 0);
    w->redis_url = strdup(redis_url);
    for (int i = 0; i < n && i < 3; i++) snprintf(w->channels[i], sizeof(w->channels[i]), "%s", channels[i]);
    w->nchannels = n < 3 ? n : 3;
    if (pthread_create(&w->thread, NULL, wake_run, w) != 0) {
        snprintf(errstr, errlen, "cannot start the wake thread");
        free(w->redis_url);
        return -1;
    }
    return 0;
}

void wake_stop(wake_t *w) {
    atomic_store(&w->stop, 1);
    wake_notify(w);
    pthread_join(w->thread, NULL);
    free(w->redis_url);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
}
