/* annotctl: the commands; each returns the process exit status (0 done,
 * 1 failed, 2 bad usage). */
#ifndef ANNOTCTL_H
#define ANNOTCTL_H

#include "pg.h"
#include "service.h"

int annotctl_topics_create(service_t *svc, int argc, char **argv);
int annotctl_topics_list(service_t *svc, int argc, char **argv);
int annotctl_status(service_t *svc, int argc, char **argv);
int annotctl_check(service_t *svc, int argc, char **argv);
int annotctl_tasks_import(service_t *svc, int argc, char **argv);
int annotctl_users_add(service_t *svc, int argc, char **argv);
int annotctl_users_rotate(service_t *svc, int argc, char **argv);
int annotctl_candidates_import(service_t *svc, int argc, char **argv);
int annotctl_candidates_show(service_t *svc, int argc, char **argv);
int annotctl_annotators_show(service_t *svc, int argc, char **argv);
int annotctl_annotators_reinstate(service_t *svc, int argc, char **argv);
int annotctl_dlq_list(service_t *svc, int argc, char **argv);
int annotctl_dlq_replay(service_t *svc, int argc, char **argv);
int annotctl_metrics_tail(service_t *svc, int argc, char **argv);
int annotctl_report(service_t *svc, int argc, char **argv);

/* Prints, indented, the JSON object that record_sql's one text column holds
 * for params, with the JSON array history_sql gives for params[0] as its
 * "history"; `missing`, a format with one %s for params[0], names the record
 * in the message when there is none ("candidate %s").
 * Returns the exit status. */
int annotctl_show_record(pg_t *pg, const char *record_sql, int nparams, const char *const *params,
                         const char *history_sql, const char *missing);

#endif
