/* operator: what the operation's staff do, through annotctl as they would:
 * add users, import each day's tasks and each day's cohort of candidates. */
#ifndef SIM_OPERATOR_H
#define SIM_OPERATOR_H

#include "sim.h"

/* annotctl users add; the token into p->token.  0 or -1. */
int operator_user_add(sim_t *s, person_t *p, const char *role, const char *skills);
/* The day's production tasks, drawn from the catalogue.  0 or -1. */
int operator_import_tasks(sim_t *s, int day);
/* The day's cohort: n candidates into people[first..first+n), their tokens
 * filled.  0 or -1. */
int operator_import_cohort(sim_t *s, int day, person_t *first, int n);

#endif
