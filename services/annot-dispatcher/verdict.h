/* verdict: the body of a submit.  A validator's verdict as submitted over
 * HTTP, checked against the shared error taxonomy (config/taxonomy.conf) and
 * scored as DESIGN.md section 4 says: max(0, 1 - sum(weight[severity])); or
 * an annotator's description.  Pure: no I/O. */
#ifndef DISPATCHER_VERDICT_H
#define DISPATCHER_VERDICT_H

#include <jansson.h>
#include <stdbool.h>

#include "check.h"

#define VERDICT_ITEMS_MAX 64

typedef struct verdict_error {
    const char *category; /* points into the request body */
    check_severity_t severity;
    const char *section;  /* "" when absent */
    const char *note;     /* "" when absent */
} verdict_error_t;

typedef enum {
    VERDICT_FEEDBACK_AMBIGUITY = 1,
    VERDICT_FEEDBACK_MISSING_RULE,
    VERDICT_FEEDBACK_CONTRADICTION,
    VERDICT_FEEDBACK_EDGE_CASE,
} verdict_feedback_kind_t;

typedef struct verdict_feedback {
    const char *section;
    verdict_feedback_kind_t kind;
    const char *text;
} verdict_feedback_t;

typedef struct verdict {
    bool accept;
    verdict_error_t errors[VERDICT_ITEMS_MAX];
    size_t nerrors;
    verdict_feedback_t feedback[VERDICT_ITEMS_MAX];
    size_t nfeedback;
    double score;
} verdict_t;

/* Parses {"verdict": "accept"|"reject", "errors": [...], "feedback": [...]}
 * (also "fencing_token", which the caller reads).  A reject must name at
 * least one error.  Strings point into body, which must outlive out.
 * Returns 0, or -1 with errstr naming the field ("errors[1].category: not in
 * the taxonomy"). */
int verdict_parse(const json_t *body, const check_taxonomy_t *taxonomy, const double weights[4], verdict_t *out,
                  char *errstr, size_t errlen);

const char *verdict_feedback_kind_name(verdict_feedback_kind_t kind);

/* The other shape of a submit's body, an annotation's or exam case's:
 * {"description": "..."} (also "fencing_token").  *description points into
 * body.  Returns 0, or -1 with errstr naming the field. */
int verdict_description_parse(const json_t *body, const char **description, char *errstr, size_t errlen);

#endif
