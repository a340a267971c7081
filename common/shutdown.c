/* shutdown: see shutdown.h. */
#include "shutdown.h"

#include <string.h>

volatile sig_atomic_t shutdown_flag = 0;

static void shutdown_on_signal(int sig) {
    (void)sig;
    shutdown_flag = 1;
}

void shutdown_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = shutdown_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}
