/* clock: time helpers shared by the modules that wait. */
#ifndef ANNOT_CLOCK_H
#define ANNOT_CLOCK_H

#include <time.h>

/* The CLOCK_REALTIME instant timeout_ms from now, for pthread_cond_timedwait
 * (whose clock that is unless the condition variable says otherwise). */
static inline struct timespec clock_deadline_ms(int timeout_ms) {
    struct timespec d;
    clock_gettime(CLOCK_REALTIME, &d);
    d.tv_sec += timeout_ms / 1000;
    d.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (d.tv_nsec >= 1000000000L) {
        d.tv_sec++;
        d.tv_nsec -= 1000000000L;
    }
    return d;
}

#endif
