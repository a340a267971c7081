/* model: the simulated world, pure (no I/O besides loading the catalogue).
 *
 * Every draw derives from the run's seed and a label naming what is drawn
 * ("person 7 skill", "task d2-14 writer a3 attempt 1"), hashed with
 * libsodium's BLAKE2b, so the workload is the same for the same seed however
 * the real services interleave it: who writes which task may vary with
 * timing, but what a given person writes for a given task, and how a given
 * validator judges it, does not. */
#ifndef SIM_MODEL_H
#define SIM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"

/* The defects the writer can put into a description: the checker's rules it
 * tests and one only a person can see (a wrong cultural attribution). */
typedef enum {
    DEFECT_SUBJECTIVE = 0,  /* subjective_language */
    DEFECT_SPECULATION,     /* speculation */
    DEFECT_VIEWER,          /* viewer_address */
    DEFECT_MAIN_MISSING,    /* main_object_missing */
    DEFECT_MAIN_NOT_FIRST,  /* main_object_not_first: missing from the opening, named later */
    DEFECT_BARE_LIST,       /* relation_missing */
    DEFECT_REFERENCE,       /* reference_overload */
    DEFECT_CULTURAL,        /* cultural_inaccuracy (validators only) */
    DEFECT_UNFIXED,         /* unfixed_defect (exam stage 2) */
    DEFECT_NO_EDIT,         /* no_meaningful_edit (exam stage 2) */
    DEFECT_COUNT
} sim_defect_t;

const char *sim_defect_category(sim_defect_t d);

#define SIM_COMPONENTS_MAX 4
#define SIM_LINES_MAX 4

typedef struct sim_component {
    char *name, *relation, *target;
} sim_component_t;

typedef struct sim_item {
    char *kind, *locale, *main_object, *synonym, *setting, *wrong_fact;
    sim_component_t components[SIM_COMPONENTS_MAX];
    size_t ncomponents;
    char *details[SIM_LINES_MAX], *facts[SIM_LINES_MAX];
    size_t ndetails, nfacts;
} sim_item_t;

typedef struct sim_catalogue {
    char *guideline_version;
    sim_item_t *items;
    size_t nitems;
} sim_catalogue_t;

int sim_catalogue_load(sim_catalogue_t *cat, const char *path, char *errstr, size_t errlen);
void sim_catalogue_free(sim_catalogue_t *cat);
/* The item whose main object is main_object, or NULL. */
const sim_item_t *sim_catalogue_find(const sim_catalogue_t *cat, const char *main_object);

/* A deterministic draw in [0, 1) for the label (printf format). */
double sim_draw(uint64_t seed, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A description and the defects it truly has. */
typedef struct sim_text {
    char *text; /* malloc'd */
    uint32_t defects; /* bit (1u << sim_defect_t) */
} sim_text_t;

/* How likely a writer of skill s (0..1) is to make each defect in one
 * description: base rate x (1 - s) x 2, so a writer of skill 0.5 makes
 * each at its base rate and a writer of skill 1 makes none. */
double sim_defect_rate(sim_defect_t d, double skill);

/* The task fields the writer needs (from the lease's task JSON). */
typedef struct sim_task_view {
    const char *task_id, *main_object, *kind; /* kind: production, exam_stage1, ... */
    const char *synonym;                      /* the task's first synonym of the main object, or NULL */
    const char *pregenerated;                 /* exam stage 2, else NULL */
    const sim_component_t *components;        /* the task's, which may differ from the item's */
    size_t ncomponents;
} sim_task_view_t;

/* Writes the description of task by a writer of the given skill.  item is
 * the catalogue's entry for the task's main object, NULL for objects the
 * catalogue does not know (exam cases): the description is then built from
 * the task alone.  label makes the draw unique (writer and attempt). */
sim_text_t sim_write(uint64_t seed, const char *label, double skill, const sim_task_view_t *task,
                     const sim_item_t *item);

/* A validator's judgement of a description with the given true defects. */
#define SIM_VERDICT_ERRORS_MAX 12
typedef struct sim_verdict {
    bool accept;
    struct {
        const char *category, *severity, *section;
    } errors[SIM_VERDICT_ERRORS_MAX];
    size_t nerrors;
    const char *feedback_section; /* NULL: no feedback */
    const char *feedback_kind;
    double score; /* the score the dispatcher will compute: max(0, 1 - sum of weights) */
} sim_verdict_t;

/* A validator misses each true defect with probability miss and adds an
 * error the text does not have with probability false_flag. */
typedef struct sim_validator_noise {
    double miss, false_flag;
} sim_validator_noise_t;

sim_verdict_t sim_judge(uint64_t seed, const char *label, uint32_t defects, sim_validator_noise_t noise,
                        const check_taxonomy_t *taxonomy, const double weights[3]);

/* A screening answer: right with probability 0.45 + 0.55 x skill. */
bool sim_answers_right(uint64_t seed, const char *label, double skill);

#endif
