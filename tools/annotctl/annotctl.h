/* annotctl: the commands; each returns the process exit status (0 done,
 * 1 failed, 2 bad usage). */
#ifndef ANNOTCTL_H
#define ANNOTCTL_H

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

#endif
