/* wake: long polls wait here until new work is queued.  One thread
 * subscribes to the lease module's wake channels in Redis (published by
 * every dispatcher instance that enqueues), and bumps a generation counter
 * that waiters sleep on; a waiter then tries to lease again.  Waiters also
 * wake every second on their own, so a wake lost while Redis reconnects
 * costs at most that. */
#ifndef DISPATCHER_WAKE_H
#define DISPATCHER_WAKE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct wake {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t generation;
    pthread_t thread;
    atomic_int stop;
    char *redis_url;
    char channels[3][256];
    int nchannels;
} wake_t;

/* Starts the subscriber thread on the given channels. */
int wake_start(wake_t *w, const char *redis_url, const char *const *channels, int n, char *errstr, size_t errlen);
void wake_stop(wake_t *w);
uint64_t wake_generation(wake_t *w);
/* Sleeps until the generation moves past seen, or timeout_ms. */
void wake_wait(wake_t *w, uint64_t seen, int timeout_ms);
/* Wakes local waiters (work queued by this process). */
void wake_notify(wake_t *w);

#endif
