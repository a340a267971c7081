/* annot-sim: plays the operation through the real HTTP API and Kafka.
 *
 * Each simulated day (sim.day.ms of real time; a working day is 8 hours)
 * the operator imports the day's production tasks and the day's cohort of
 * candidates with annotctl; annotators of different skill lease and
 * describe, validators with their own noise judge, candidates go through
 * screening, training and both exams and work once approved.  Some leases
 * are left to expire, some requests are bad on purpose.  After the last day
 * it waits for the pipeline to drain, waits for annot-metrics to have seen
 * every verdict, prints its own tally and writes the HTML report.  The
 * workload is a function of sim.seed (see model.h). */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"
#include "operator.h"
#include "pg.h"
#include "service.h"
#include "shutdown.h"
#include "sim.h"

static const config_def_t sim_defs[] = {
    {"sim.seed", CONFIG_INT, "1", NULL, 0, 4294967295.0, false, "seed of every draw: the same seed, the same workload"},
    {"sim.days", CONFIG_INT, "3", NULL, 1, SIM_DAYS_MAX, false, "simulated days"},
    {"sim.day.ms", CONFIG_INT, "40000", NULL, 2000, 86400000, false,
     "real milliseconds per simulated working day (8 hours): the compression"},
    {"sim.api", CONFIG_STRING, "http://127.0.0.1:8080", NULL, 0, 0, false, "the dispatcher's HTTP API"},
    {"sim.annotctl", CONFIG_STRING, "", NULL, 0, 0, false, "annotctl to run (default: beside annot-sim)"},
    {"sim.dir", CONFIG_STRING, "run/sim", NULL, 0, 0, false, "where the day files and annotctl's errors go"},
    {"sim.start.day", CONFIG_STRING, "", NULL, 0, 0, false, "date of the first simulated day (default: today, UTC)"},
    {"sim.cohort", CONFIG_INT, "30", NULL, 0, 1000, false, "candidates applying per day"},
    {"sim.annotators", CONFIG_INT, "6", NULL, 0, 1000, false, "annotators working from day 1"},
    {"sim.validators", CONFIG_INT, "4", NULL, 2, 1000, false, "validators (two at least: double validation)"},
    {"sim.tasks.per.day", CONFIG_INT, "60", NULL, 0, 100000, false, "production tasks imported per day"},
    {"sim.abandon.rate", CONFIG_DOUBLE, "0.03", NULL, 0, 1, false, "share of annotation leases left to expire"},
    {"sim.bad.input.rate", CONFIG_DOUBLE, "0.03", NULL, 0, 1, false,
     "share of submissions preceded by a bad request"},
    {"sim.drain.ms", CONFIG_INT, "60000", NULL, 0, 3600000, false,
     "after the last day, how long to wait for work in flight"},
    {"sim.html", CONFIG_STRING, "", NULL, 0, 0, false, "write the HTML report here"},
    {"metrics.schema", CONFIG_STRING, "metrics", NULL, 0, 0, false, "annot-metrics' PostgreSQL schema"},
    {NULL, 0, NULL, NULL, 0, 0, false, NULL},
};

static person_t *person_new(sim_t *s, sim_role_t role, const char *prefix) {
    person_t *p = &s->people[s->npeople];
    memset(p, 0, sizeof(*p));
    p->index = s->npeople++;
    p->role = role;
    snprintf(p->name, sizeof(p->name), "%s-%03d", prefix, p->index + 1);
    /* Annotators hired earlier are good; candidates spread widely, so that
     * about half get through the exams. */
    if (role == ROLE_ANNOTATOR) p->skill = 0.72 + 0.26 * sim_draw(s->seed, "%s skill", p->name);
    if (role == ROLE_CANDIDATE) p->skill = 0.3 + 0.7 * sim_draw(s->seed, "%s skill", p->name);
    if (role == ROLE_VALIDATOR) {
        p->noise.miss = 0.02 + 0.10 * sim_draw(s->seed, "%s miss", p->name);
        p->noise.false_flag = 0.01 + 0.06 * sim_draw(s->seed, "%s false flag", p->name);
    }
    return p;
}

/* Where the candidates are, for the progress line and the drain. */
typedef struct stages {
    int waiting, screening, training, exam, approved, rejected;
} stages_t;

static stages_t stages_now(sim_t *s) {
    stages_t st = {0};
    for (int i = 0; i < s->npeople; i++) {
        const person_t *p = &s->people[i];
        if (p->role != ROLE_CANDIDATE) continue;
        const char *g = p->stage;
        if (strcmp(g, "approved") == 0) st.approved++;
        else if (strcmp(g, "rejected") == 0) st.rejected++;
        else if (strcmp(g, "screening") == 0) st.screening++;
        else if (strcmp(g, "training") == 0) st.training++;
        else if (strncmp(g, "exam", 4) == 0) st.exam++;
        else st.waiting++;
    }
    return st;
}

static void progress(sim_t *s, const char *phase, bool tty) {
    stages_t st = stages_now(s);
    fprintf(stderr,
            "%s%s | tasks %ld imported, %ld submitted, %ld validated | candidates %ld: %d screening, %d training, "
            "%d in exams, %d approved, %d rejected | %ld leases abandoned, %ld bad requests%s",
            tty ? "\r\033[K" : "", phase, atomic_load(&s->n.tasks_imported), atomic_load(&s->n.submitted),
            atomic_load(&s->n.validated_distinct), atomic_load(&s->n.candidates_imported), st.screening, st.training,
            st.exam, st.approved, st.rejected, atomic_load(&s->n.abandoned), atomic_load(&s->n.bad_sent),
            tty ? "" : "\n");
    fflush(stderr);
}

static bool drained(sim_t *s) {
    stages_t st = stages_now(s);
    return atomic_load(&s->n.validated_distinct) >= atomic_load(&s->n.tasks_imported) &&
           st.screening + st.training + st.exam + st.waiting == 0;
}

/* Waits (up to timeout_ms) until annot-metrics has counted every verdict
 * this run saw accepted; returns what it counted. */
static long metrics_caught_up(service_t *svc, long want, int64_t timeout_ms) {
    char err[512];
    pg_t *pg = pg_connect(config_str(svc->cfg, "database.url"), config_str(svc->cfg, "metrics.schema"), 5, err,
                          sizeof(err));
    if (pg == NULL) {
        fprintf(stderr, "annot-sim: postgresql: %s\n", err);
        return -1;
    }
    long got = -1;
    int64_t until = sim_now_ms() + timeout_ms;
    do {
        PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                                 "SELECT coalesce(sum(items), 0) FROM throughput WHERE step = 'validated' AND "
                                 "window_kind = 'all' AND guideline_version = ''",
                                 0, NULL, err, sizeof(err));
        if (res) got = atol(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (got >= want) break;
        usleep(500000);
    } while (sim_now_ms() < until && !shutdown_requested());
    pg_close(pg);
    return got;
}

static char *run_report(sim_t *s) {
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "'%s' report 2>&1", s->annotctl);
    FILE *f = popen(cmd, "r");
    if (f == NULL) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    size_t n;
    while (out && (n = fread(out + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 4096) out = realloc(out, cap *= 2);
    }
    pclose(f);
    if (out) out[len] = '\0';
    return out;
}

static int setup(sim_t *s, service_t *svc, const char *argv0) {
    config_t *cfg = svc->cfg;
    char err[1024], path[1100];
    s->seed = (uint64_t)config_int(cfg, "sim.seed");
    s->days = (int)config_int(cfg, "sim.days");
    s->day_ms = config_int(cfg, "sim.day.ms");
    s->cohort = (int)config_int(cfg, "sim.cohort");
    s->annotators = (int)config_int(cfg, "sim.annotators");
    s->validators = (int)config_int(cfg, "sim.validators");
    s->tasks_per_day = (int)config_int(cfg, "sim.tasks.per.day");
    s->abandon_rate = config_double(cfg, "sim.abandon.rate");
    s->bad_input_rate = config_double(cfg, "sim.bad.input.rate");
    s->drain_ms = config_int(cfg, "sim.drain.ms");
    snprintf(s->api, sizeof(s->api), "%s", config_str(cfg, "sim.api"));
    snprintf(s->work_dir, sizeof(s->work_dir), "%s", config_str(cfg, "sim.dir"));
    const char *ctl = config_str(cfg, "sim.annotctl");
    if (ctl && ctl[0]) {
        snprintf(s->annotctl, sizeof(s->annotctl), "%s", ctl);
    } else {
        char self[1024];
        snprintf(self, sizeof(self), "%s", argv0);
        snprintf(s->annotctl, sizeof(s->annotctl), "%s/annotctl", dirname(self));
    }
    const char *start = config_str(cfg, "sim.start.day");
    struct tm tm = {0};
    if (start && start[0]) {
        const char *end = strptime(start, "%Y-%m-%d", &tm);
        if (end == NULL || *end) {
            log_fatal("sim.start.day: '%s' is not a date YYYY-MM-DD", start);
            return -1;
        }
        snprintf(s->start_day, sizeof(s->start_day), "%s", start);
    } else {
        time_t now = time(NULL);
        gmtime_r(&now, &tm);
        strftime(s->start_day, sizeof(s->start_day), "%Y-%m-%d", &tm);
    }
    if (mkdir(s->work_dir, 0755) != 0 && access(s->work_dir, W_OK) != 0) {
        log_fatal("sim.dir: cannot create %s", s->work_dir);
        return -1;
    }
    if (access(s->annotctl, X_OK) != 0) {
        log_fatal("sim.annotctl: %s is not an executable", s->annotctl);
        return -1;
    }
    service_config_path(svc, "sim/catalogue.json", path, sizeof(path));
    if (sim_catalogue_load(&s->cat, path, err, sizeof(err)) != 0) {
        log_fatal("catalogue: %s", err);
        return -1;
    }
    service_config_path(svc, "taxonomy.conf", path, sizeof(path));
    if (check_taxonomy_load(&s->tax, path, err, sizeof(err)) != 0) {
        log_fatal("taxonomy: %s", err);
        return -1;
    }
    service_config_path(svc, "guideline", path, sizeof(path));
    check_rules_t *rules = check_rules_load(path, err, sizeof(err));
    if (rules == NULL) {
        log_fatal("guideline rules: %s", err);
        return -1;
    }
    for (int i = 0; i < 3; i++) s->weights[i] = check_rules_weight(rules, (check_severity_t)(i + 1));
    check_rules_destroy(rules);
    service_config_path(svc, "screening/bank.json", path, sizeof(path));
    if (screening_bank_load(&s->bank, path, err, sizeof(err)) != 0) {
        log_fatal("screening bank: %s", err);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/acks.txt", s->work_dir);
    if ((s->acks = fopen(path, "w")) == NULL) {
        log_fatal("sim.dir: cannot write %s", path);
        return -1;
    }
    s->cap_people = s->annotators + s->validators + s->cohort * s->days;
    s->people = calloc((size_t)s->cap_people + 1, sizeof(*s->people));
    pthread_mutex_init(&s->mu, NULL);
    s->validated_tasks = json_object();
    return 0;
}

static void teardown(sim_t *s) {
    for (size_t b = 0; b < TRUTH_BUCKETS; b++) {
        for (truth_t *t = s->truth[b], *next; t; t = next) {
            next = t->next;
            free(t);
        }
    }
    free(s->people);
    json_decref(s->validated_tasks);
    if (s->acks) fclose(s->acks);
    sim_catalogue_free(&s->cat);
    check_taxonomy_free(&s->tax);
    screening_bank_free(&s->bank);
    pthread_mutex_destroy(&s->mu);
}

static void summary(sim_t *s, long metrics_validated) {
    stages_t st = stages_now(s);
    printf("\n== annot-sim: %d simulated day(s) from %s, seed %llu\n", s->days, s->start_day,
           (unsigned long long)s->seed);
    printf("   production tasks     %ld imported, %ld submitted, %ld validated\n", atomic_load(&s->n.tasks_imported),
           atomic_load(&s->n.submitted), atomic_load(&s->n.validated_distinct));
    printf("   verdicts             %ld on production work, %ld on exam cases (annot-metrics counted %ld)\n",
           atomic_load(&s->n.verdicts), atomic_load(&s->n.exam_verdicts), metrics_validated);
    printf("   candidates           %ld applied: %d approved, %d rejected, %d still in the funnel\n",
           atomic_load(&s->n.candidates_imported), st.approved, st.rejected,
           st.screening + st.training + st.exam + st.waiting);
    printf("   leases               %ld left to expire on purpose, %ld lost by their holder\n",
           atomic_load(&s->n.abandoned), atomic_load(&s->n.lease_lost));
    printf("   bad requests         %ld sent, %ld answered 4xx, %ld answered otherwise\n", atomic_load(&s->n.bad_sent),
           atomic_load(&s->n.bad_4xx), atomic_load(&s->n.bad_unexpected));
    printf("   transport errors     %ld\n", atomic_load(&s->n.http_errors));
    printf("   imports run again    %ld\n", atomic_load(&s->n.import_retries));
    printf("   quality by day       ");
    for (int d = 0; d < s->days && d < SIM_DAYS_MAX; d++) {
        if (s->day_verdicts[d]) printf("day %d %.3f  ", d + 1, s->day_score[d] / (double)s->day_verdicts[d]);
        else printf("day %d -  ", d + 1);
    }
    printf("(the validators' scores, as they judged)\n");
}

int main(int argc, char **argv) {
    service_t svc;
    int rc = service_init(&svc, "annot-sim",
                          "Plays candidates, annotators and validators through the dispatcher's HTTP API.", NULL,
                          sim_defs, argc, argv);
    if (rc != 0) return rc > 0 ? 0 : 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sim_t *s = calloc(1, sizeof(*s));
    if (s == NULL || setup(s, &svc, argv[0]) != 0) {
        service_destroy(&svc);
        return 2;
    }
    bool tty = isatty(2);
    rc = 0;
    for (int i = 0; i < s->annotators && rc == 0; i++) {
        person_t *p = person_new(s, ROLE_ANNOTATOR, "annotator");
        rc = operator_user_add(s, p, "annotator", "dish,clothing,vehicle,place,symbol");
    }
    for (int i = 0; i < s->validators && rc == 0; i++) {
        person_t *p = person_new(s, ROLE_VALIDATOR, "validator");
        rc = operator_user_add(s, p, "validator", "dish,clothing,vehicle,place,symbol,food,exam");
    }
    for (int i = 0; i < s->npeople && rc == 0; i++) rc = people_start(s, &s->people[i]);
    log_info("simulation starts: %d day(s) of %lld ms, %d annotators, %d validators, %d candidates and %d tasks a day",
             s->days, (long long)s->day_ms, s->annotators, s->validators, s->cohort, s->tasks_per_day);
    s->start_ms = sim_now_ms();
    char phase[64];
    for (int day = 0; day < s->days && rc == 0 && !shutdown_requested(); day++) {
        atomic_store(&s->day, day);
        person_t *first = &s->people[s->npeople];
        for (int i = 0; i < s->cohort; i++) person_new(s, ROLE_CANDIDATE, "candidate");
        if (operator_import_tasks(s, day) != 0 || (s->cohort && operator_import_cohort(s, day, first, s->cohort) != 0)) {
            rc = 1;
            break;
        }
        for (int i = 0; i < s->cohort && rc == 0; i++) rc = people_start(s, &first[i]);
        snprintf(phase, sizeof(phase), "day %d/%d", day + 1, s->days);
        int64_t day_end = s->start_ms + (int64_t)(day + 1) * s->day_ms;
        while (sim_now_ms() < day_end && !shutdown_requested()) {
            progress(s, phase, tty);
            usleep(tty ? 250000 : 5000000);
        }
    }
    /* The last day is over: no new work; wait for what is in flight. */
    int64_t drain_end = sim_now_ms() + s->drain_ms;
    while (rc == 0 && !drained(s) && sim_now_ms() < drain_end && !shutdown_requested()) {
        progress(s, "draining", tty);
        usleep(tty ? 250000 : 5000000);
    }
    progress(s, drained(s) ? "drained" : "stopped", tty);
    if (tty) fputc('\n', stderr);
    atomic_store(&s->stop, true);
    people_join(s);
    long want = atomic_load(&s->n.verdicts) + atomic_load(&s->n.exam_verdicts);
    long counted = rc == 0 ? metrics_caught_up(&svc, want, 30000) : -1;
    summary(s, counted);
    const char *html = config_str(svc.cfg, "sim.html");
    if (rc == 0 && html && html[0]) {
        char *text = run_report(s), err[512];
        if (report_html(s, html, text ? text : "(annotctl report did not run)", config_str(svc.cfg, "database.url"),
                        config_str(svc.cfg, "metrics.schema"), err, sizeof(err)) != 0) {
            fprintf(stderr, "annot-sim: %s\n", err);
            rc = 1;
        } else {
            printf("   HTML report          %s\n", html);
        }
        free(text);
    }
    if (rc == 0 && atomic_load(&s->n.bad_unexpected) > 0) rc = 1;
    teardown(s);
    free(s);
    curl_global_cleanup();
    service_destroy(&svc);
    return rc;
}
