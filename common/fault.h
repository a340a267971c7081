/* fault: named crash points for the fault tests.  The integration suite sets
 * fault.crash_at (ANNOT_CRASH_AT) to "point" or "point:n"; the n-th time the
 * process passes that point it kills itself with SIGKILL, exactly what an
 * OOM kill or `kill -9` does, at a place chosen to be the worst (between a
 * PostgreSQL commit and the Kafka offset store, say).  Unset, a point costs
 * one comparison. */
#ifndef ANNOT_FAULT_H
#define ANNOT_FAULT_H

/* Returns -1 on a malformed spec. */
int fault_init(const char *spec);
void fault_point(const char *name);

#endif
