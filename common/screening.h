/* screening: the screening test's question bank (config/screening/bank.json)
 * and its answer key.  Pure: loads one file, then only computes.
 *
 * The dispatcher serves the questions a candidate was assigned without the
 * key (GET /v1/screening) and checks the shape of the answers (POST); the
 * funnel scores them against the key.  Both load the same file, so what is
 * asked and what is scored cannot drift apart.
 *
 * File format (JSON):
 *   {"version": "screen-v1",
 *    "questions": [{"id": "L1", "kind": "logic" | "language",
 *                   "text": "...", "options": [{"id": "a", "text": "..."}, ...],
 *                   "answer": "b"}, ...]}
 * Every id unique, at least two options, the answer one of the options. */
#ifndef ANNOT_SCREENING_H
#define ANNOT_SCREENING_H

#include <jansson.h>
#include <stddef.h>

typedef struct screening_question {
    const char *id, *kind, *text, *answer;
    json_t *options; /* array of {"id", "text"}, borrowed from the bank */
} screening_question_t;

typedef struct screening_bank {
    json_t *root;
    const char *version;
    screening_question_t *questions;
    size_t n;
} screening_bank_t;

/* One answer as submitted. */
typedef struct screening_answer {
    const char *question_id, *answer;
} screening_answer_t;

/* The most answers one submission may carry. */
#define SCREENING_ANSWERS_MAX 256

/* The body of a candidate's answers (POST /v1/screening):
 * {"screening_id": "...", "answers": [{"question_id", "answer"}, ...]}.
 * Strings point into body; *answers is malloc'd (NULL after a failure) and
 * the caller frees it.  Returns 0, or -1 with errstr naming the field (a
 * name from the body quoted as utf8_quote does). */
int screening_body_parse(const json_t *body, const char **screening_id, screening_answer_t **answers,
                         size_t *nanswers, char *errstr, size_t errlen);

/* Loads and validates the bank; -1 with errstr naming the file and the
 * failing field (e.g. "questions[3].answer"). */
int screening_bank_load(screening_bank_t *bank, const char *path, char *errstr, size_t errlen);
void screening_bank_free(screening_bank_t *bank);

const screening_question_t *screening_find(const screening_bank_t *bank, const char *id);

/* The questions ids[0..n) as the candidate sees them: id, kind, text and
 * options, never the answer.  NULL when an id is not in the bank. */
json_t *screening_public_json(const screening_bank_t *bank, const char *const *ids, size_t n);

/* Checks answers against the assigned question ids: every assigned question
 * answered exactly once, nothing else, each answer one of its options.
 * Returns 0, or -1 with errstr naming the field ("answers[2].answer: ...").
 * Fills unanswered with the first assigned question left unanswered, if any,
 * before failing. */
int screening_answers_check(const screening_bank_t *bank, const char *const *ids, size_t n,
                            const screening_answer_t *answers, size_t nanswers, char *errstr, size_t errlen);

/* Correct answers out of the n assigned questions (an assigned question not
 * answered counts as wrong; answers to other questions are ignored). */
unsigned screening_correct(const screening_bank_t *bank, const char *const *ids, size_t n,
                           const screening_answer_t *answers, size_t nanswers);

#endif
