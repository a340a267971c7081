/* standing: an annotator's standing from their validated production work,
 * pure.  Rolling quality is the mean score of the last K validated
 * submissions; below the probation threshold they are on probation, below
 * the suspension threshold suspended.  Until min_count submissions are in
 * the window nothing is judged.  A suspended annotator stays suspended
 * whatever the window says (no new work reaches them) until the retraining
 * period is over: then they come back on probation with an empty window. */
#ifndef STANDING_H
#define STANDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Numbered as annot.v1.AnnotatorStatus. */
typedef enum standing_status {
    STANDING_NONE = 0,
    STANDING_ACTIVE = 1,
    STANDING_PROBATION = 2,
    STANDING_SUSPENDED = 3,
} standing_status_t;

typedef struct standing_policy {
    unsigned window;      /* K */
    unsigned min_count;   /* validated submissions before any judgement */
    double probation;     /* rolling quality below this: probation */
    double suspension;    /* below this: suspended */
    int64_t retraining_ms; /* suspended this long: back on probation; 0 = never */
} standing_policy_t;

/* The status scores[0..n) (most recent first; only the first K count) give
 * an annotator now in current; fills the rolling quality, the count used
 * and a reason ("rolling quality 0.78 < probation 0.85"). */
standing_status_t standing_evaluate(const standing_policy_t *p, standing_status_t current, const double *scores,
                                    size_t n, double *quality, unsigned *count, char *reason, size_t len);

/* True when a suspension since suspended_at_ms has served its retraining
 * period at now_ms. */
bool standing_reinstate_due(const standing_policy_t *p, standing_status_t current, int64_t suspended_at_ms,
                            int64_t now_ms);

/* "active", "probation", "suspended"; NULL otherwise. */
const char *standing_status_name(standing_status_t s);
int standing_status_parse(const char *name, standing_status_t *s);

#endif
