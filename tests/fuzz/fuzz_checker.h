/* fuzz_checker: the guideline checker as the targets that run it load it
 * once (fuzz_check, fuzz_submission): the real rules of config/guideline, a
 * scratch and a result, reused by every input as a service reuses them. */
#ifndef ANNOT_FUZZ_CHECKER_H
#define ANNOT_FUZZ_CHECKER_H

#include "check.h"
#include "fuzz.h"

typedef struct fuzz_checker {
    check_rules_t *rules;
    check_scratch_t *scratch;
    check_result_t result;
} fuzz_checker_t;

static inline void fuzz_checker_init(fuzz_checker_t *c) {
    char err[512];
    if ((c->rules = check_rules_load("config/guideline", err, sizeof(err))) == NULL)
        FUZZ_DIE("config/guideline: %s", err);
    if ((c->scratch = check_scratch_new()) == NULL) FUZZ_DIE("out of memory");
    check_result_init(&c->result);
}

#endif
