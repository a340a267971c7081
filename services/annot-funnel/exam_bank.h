/* exam_bank: the exam case sets (config/exams/bank.json), pure after
 * loading.  Each stage has case sets; a candidate gets sets_per_candidate
 * of them, drawn deterministically from their id and application, sets of
 * their own locale first.  A case is a task as `annotctl tasks import`
 * takes it, minus task_id and kind (the funnel sets them); every stage 2
 * case carries the pre-generated description to edit, with its defects.
 *
 * File format (JSON):
 *   {"version": "exam-v1",
 *    "stage1": {"sets_per_candidate": 2,
 *               "sets": [{"id": "en-food-jp", "locale": "en-US",
 *                         "cases": [{"id": "oyakodon", "task": {...}}]}]},
 *    "stage2": {...}}
 * Ids unique (sets within a stage, cases within a set); every task valid for
 * its stage (task_codec's parser, so what the dispatcher refuses is refused
 * here, at start). */
#ifndef EXAM_BANK_H
#define EXAM_BANK_H

#include <jansson.h>
#include <stddef.h>

#include "task_codec.h"

typedef struct exam_case {
    const char *id;
    json_t *task; /* borrowed from the bank */
} exam_case_t;

typedef struct exam_set {
    const char *id, *locale;
    exam_case_t *cases;
    size_t ncases;
} exam_set_t;

typedef struct exam_stage_bank {
    unsigned sets_per_candidate;
    exam_set_t *sets;
    size_t nsets;
} exam_stage_bank_t;

typedef struct exam_bank {
    json_t *root;
    const char *version;
    exam_stage_bank_t stage[2]; /* [0]: exam 1, [1]: exam 2 */
} exam_bank_t;

/* -1 with errstr naming the file and the field ("stage2.sets[1].cases[0]
 * .task.pregenerated: required"). */
int exam_bank_load(exam_bank_t *bank, const char *path, char *errstr, size_t errlen);
void exam_bank_free(exam_bank_t *bank);

/* The sets of stage (1 or 2) for a candidate: out[0..*n) point into the
 * bank.  seed makes the draw (candidate and application); sets of locale
 * come first, others fill up when there are too few. */
int exam_bank_choose(const exam_bank_t *bank, int stage, const char *locale, const char *seed, const exam_set_t **out,
                     size_t max, size_t *n);

/* The task of case c for stage (1 or 2), kind set; release with
 * task_proto_clear (also after a failure). */
int exam_case_task(const exam_case_t *c, int stage, task_proto_t *tp, char *errstr, size_t errlen);

#endif
