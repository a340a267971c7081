/* training: the training material candidates read before the exams
 * (config/training/material.json): the guideline version it teaches, the
 * guideline's sections in short, and sample descriptions with the verdict a
 * validator would give and why.  Pure: loads one file.
 *
 * The funnel announces it (TrainingAssigned: version and sample ids), the
 * dispatcher serves it (GET /v1/training) and takes the acknowledgement of
 * exactly that version (POST /v1/training/complete).
 *
 * File format (JSON):
 *   {"guideline_version": "g-2026.11", "title": "...",
 *    "sections": [{"id": "3.1", "title": "...", "summary": "..."}, ...],
 *    "samples": [{"id": "S1", "main_object": "...", "description": "...",
 *                 "verdict": "accept" | "reject", "notes": "..."}, ...]} */
#ifndef ANNOT_TRAINING_H
#define ANNOT_TRAINING_H

#include <jansson.h>
#include <stddef.h>

typedef struct training {
    json_t *root; /* the material as served */
    const char *guideline_version;
    const char **sample_ids;
    size_t nsamples;
} training_t;

/* Loads and validates; -1 with errstr naming the file and the field. */
int training_load(training_t *t, const char *path, char *errstr, size_t errlen);
void training_free(training_t *t);

#endif
