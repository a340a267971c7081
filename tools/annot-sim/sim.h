/* annot-sim's run: the people it plays, what they did, and the simulated
 * clock.  people.c plays the people (one thread each), operator.c the
 * operator (annotctl), report.c the HTML page; main.c wires them. */
#ifndef SIM_SIM_H
#define SIM_SIM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <stdio.h>

#include <jansson.h>

#include "check.h"
#include "model.h"
#include "screening.h"

#define SIM_DAYS_MAX 60

typedef enum { ROLE_ANNOTATOR, ROLE_VALIDATOR, ROLE_CANDIDATE } sim_role_t;

typedef struct person {
    int index;
    sim_role_t role;
    char name[64];
    char token[128];
    double skill;               /* writers and candidates */
    sim_validator_noise_t noise; /* validators */
    char stage[32];             /* candidates: the last stage /v1/me showed */
    pthread_t thread;
    bool started;
    struct sim *sim;
} person_t;

/* The truth about one submitted text, keyed by its hash. */
typedef struct truth {
    unsigned char key[16];
    uint32_t defects;
    bool exam;
    struct truth *next;
} truth_t;

#define TRUTH_BUCKETS 4096

typedef struct sim_counts {
    atomic_long tasks_imported, candidates_imported, validated_distinct;
    atomic_long submitted, exam_submitted, verdicts, exam_verdicts;
    atomic_long abandoned, lease_lost, suspended_seen;
    atomic_long bad_sent, bad_4xx, bad_unexpected;
    atomic_long http_errors, import_retries;
} sim_counts_t;

typedef struct sim {
    /* settings */
    uint64_t seed;
    int days;
    int64_t day_ms;
    char api[256];
    char annotctl[1024];
    char work_dir[1024];
    char start_day[16]; /* the first simulated day, YYYY-MM-DD */
    int cohort, annotators, validators, tasks_per_day;
    double abandon_rate, bad_input_rate;
    int64_t drain_ms;
    /* world */
    sim_catalogue_t cat;
    check_taxonomy_t tax;
    double weights[3];
    screening_bank_t bank;
    /* clock */
    int64_t start_ms;
    atomic_int day; /* the simulated day now, 0-based */
    atomic_bool stop;
    /* people */
    person_t *people;
    int npeople, cap_people;
    pthread_mutex_t mu; /* people array, truth map, per-day tallies, acks */
    FILE *acks;         /* one line per 202: "submission ID" or "validation ID" */
    truth_t *truth[TRUTH_BUCKETS];
    json_t *validated_tasks; /* production task ids with an accepted verdict, as a set */
    /* per simulated day: production verdicts and their score sum (the
     * score the dispatcher computes from the same weights) */
    long day_verdicts[SIM_DAYS_MAX];
    double day_score[SIM_DAYS_MAX];
    sim_counts_t n;
} sim_t;

int64_t sim_now_ms(void);
/* Sleeps for the real time of minutes simulated minutes (a working day is
 * 8 hours), cut short by stop. */
void sim_sleep_minutes(sim_t *s, double minutes);
void sim_sleep_ms(sim_t *s, int64_t ms);

/* people.c */
int people_start(sim_t *s, person_t *p);
void people_join(sim_t *s);
void truth_put(sim_t *s, const char *text, uint32_t defects, bool exam);
bool truth_get(sim_t *s, const char *text, uint32_t *defects, bool *exam);
/* A verdict on production task task_id was accepted: counted in
 * validated_distinct the first time (a double validation, or two tasks that
 * drew the same text, count as what they are). */
void task_validated(sim_t *s, const char *task_id);
/* Records a 202's id in the acks file (what the reconciler checks). */
void ack_record(sim_t *s, const char *kind, json_t *answer);

/* report.c: the HTML page (report text: annotctl report's output). */
int report_html(sim_t *s, const char *path, const char *report_text, const char *db_url, const char *metrics_schema,
                char *errstr, size_t errlen);

#endif
