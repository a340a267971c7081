/* shutdown: SIGTERM and SIGINT set a flag that every loop checks between
 * short polls; nothing else happens in the handler (only async-signal-safe
 * work may). */
#ifndef ANNOT_SHUTDOWN_H
#define ANNOT_SHUTDOWN_H

#include <signal.h>
#include <stdbool.h>

extern volatile sig_atomic_t shutdown_flag;

/* Installs the handlers and ignores SIGPIPE (a peer closing a socket must
 * not kill the process). */
void shutdown_install(void);
static inline bool shutdown_requested(void) { return shutdown_flag != 0; }

#endif
