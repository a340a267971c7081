/* fault: see fault.h. */
#include "fault.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static char fault_name[128];
static long fault_remaining;

int fault_init(const char *spec) {
    fault_name[0] = '\0';
    fault_remaining = 0;
    if (spec == NULL || spec[0] == '\0') return 0;
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n == 0 || n >= sizeof(fault_name)) return -1;
    long count = 1;
    if (colon) {
        char *end;
        count = strtol(colon + 1, &end, 10);
        if (*end != '\0' || count < 1) return -1;
    }
    memcpy(fault_name, spec, n);
    fault_name[n] = '\0';
    fault_remaining = count;
    return 0;
}

void fault_point(const char *name) {
    if (fault_name[0] == '\0' || strcmp(name, fault_name) != 0) return;
    if (--fault_remaining > 0) return;
    log_warn("fault injection: SIGKILL at %s", name);
    kill(getpid(), SIGKILL);
}
