/* The operator's part, through the real annotctl.  See operator.h. */
#include "operator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

/* Runs `annotctl ARGS`, its output into out (last line kept in last).
 * Returns the exit status, -1 when it could not run. */
static int annotctl(sim_t *s, const char *args, json_t *lines, char *last, size_t lastlen) {
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s' %s 2>>'%s/annotctl.err'", s->annotctl, args, s->work_dir);
    FILE *f = popen(cmd, "r");
    if (f == NULL) return -1;
    char line[8192];
    if (last) last[0] = '\0';
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (last && lastlen) {
            size_t n = strlen(line) < lastlen - 1 ? strlen(line) : lastlen - 1;
            memcpy(last, line, n);
            last[n] = '\0';
        }
        if (lines) {
            json_t *o = json_loads(line, 0, NULL);
            if (o) json_array_append_new(lines, o);
        }
    }
    int rc = pclose(f);
    return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* An import that failed is run again, as an operator would: a task file
 * again is harmless (the intake is idempotent on task_id) and a candidate
 * file is imported whole or not at all.  A few tries, a pause between. */
enum { IMPORT_TRIES = 5, IMPORT_PAUSE_MS = 2000 };

static int annotctl_import(sim_t *s, const char *args, json_t *lines, int want_lines) {
    int rc = -1;
    for (int i = 0; i < IMPORT_TRIES; i++) {
        if (i > 0) {
            fprintf(stderr, "annot-sim: annotctl %s failed (exit %d), trying again (%d of %d)\n", args, rc, i + 1,
                    IMPORT_TRIES);
            nanosleep(&(struct timespec){IMPORT_PAUSE_MS / 1000, 0}, NULL);
            atomic_fetch_add(&s->n.import_retries, 1);
        }
        if (lines) json_array_clear(lines);
        rc = annotctl(s, args, lines, NULL, 0);
        if (rc == 0 && (lines == NULL || json_array_size(lines) == (size_t)want_lines)) return 0;
        if (rc == 0) rc = -1;
    }
    return rc;
}

int operator_user_add(sim_t *s, person_t *p, const char *role, const char *skills) {
    char args[1024];
    snprintf(args, sizeof(args), "users add --role %s --name '%s' --locale en-US --skills %s", role, p->name, skills);
    int rc = annotctl(s, args, NULL, p->token, sizeof(p->token));
    if (rc != 0 || p->token[0] == '\0') {
        fprintf(stderr, "annot-sim: annotctl users add for %s failed (exit %d; see %s/annotctl.err)\n", p->name, rc,
                s->work_dir);
        return -1;
    }
    return 0;
}

/* The date of simulated day `day`, YYYY-MM-DD. */
static void day_date(const sim_t *s, int day, char out[16]) {
    struct tm tm = {0};
    strptime(s->start_day, "%Y-%m-%d", &tm);
    tm.tm_mday += day;
    tm.tm_hour = 12;
    time_t t = timegm(&tm);
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

static FILE *day_file(sim_t *s, const char *what, int day, char *path, size_t len) {
    snprintf(path, len, "%s/%s-day%d.ndjson", s->work_dir, what, day + 1);
    FILE *f = fopen(path, "w");
    if (f == NULL) fprintf(stderr, "annot-sim: %s: cannot write\n", path);
    return f;
}

int operator_import_tasks(sim_t *s, int day) {
    char path[1200];
    FILE *f = day_file(s, "tasks", day, path, sizeof(path));
    if (f == NULL) return -1;
    for (int i = 0; i < s->tasks_per_day; i++) {
        size_t k = (size_t)(sim_draw(s->seed, "task %d-%d item", day, i) * (double)s->cat.nitems);
        const sim_item_t *it = &s->cat.items[k < s->cat.nitems ? k : 0];
        char id[96];
        snprintf(id, sizeof(id), "sim-%llx-d%d-%04d", (unsigned long long)(s->seed & 0xffffff), day + 1, i);
        json_t *comps = json_array();
        for (size_t c = 0; c < it->ncomponents; c++)
            json_array_append_new(comps, json_pack("{s:s, s:s, s:s}", "name", it->components[c].name, "relation",
                                                   it->components[c].relation, "target", it->components[c].target));
        json_t *t = json_pack("{s:s, s:s, s:s, s:s, s:s, s:[s], s:o, s:i, s:s}", "task_id", id, "kind", "production",
                              "image_uri", "s3://sim/images/placeholder.jpg", "main_object", it->main_object,
                              "locale", it->locale, "skills", it->kind, "components", comps, "priority",
                              1 + (int)(sim_draw(s->seed, "task %d-%d priority", day, i) * 9), "guideline_version",
                              s->cat.guideline_version);
        char uri[256];
        snprintf(uri, sizeof(uri), "s3://sim/images/%s.jpg", id);
        json_object_set_new(t, "image_uri", json_string(uri));
        if (it->synonym) json_object_set_new(t, "main_object_synonyms", json_pack("[s]", it->synonym));
        char *line = json_dumps(t, JSON_COMPACT);
        fprintf(f, "%s\n", line);
        free(line);
        json_decref(t);
    }
    fclose(f);
    char args[1400];
    snprintf(args, sizeof(args), "tasks import '%s' >/dev/null", path);
    int rc = annotctl_import(s, args, NULL, 0);
    if (rc != 0) {
        fprintf(stderr, "annot-sim: annotctl tasks import %s failed (exit %d)\n", path, rc);
        return -1;
    }
    atomic_fetch_add(&s->n.tasks_imported, s->tasks_per_day);
    return 0;
}

int operator_import_cohort(sim_t *s, int day, person_t *first, int n) {
    char path[1200], date[16];
    day_date(s, day, date);
    FILE *f = day_file(s, "candidates", day, path, sizeof(path));
    if (f == NULL) return -1;
    for (int i = 0; i < n; i++)
        fprintf(f, "{\"name\": \"%s\", \"locale\": \"en-US\", \"skills\": [\"dish\", \"clothing\", \"vehicle\", "
                   "\"place\", \"symbol\"], \"cohort_day\": \"%s\"}\n",
                first[i].name, date);
    fclose(f);
    char args[1400];
    snprintf(args, sizeof(args), "candidates import '%s'", path);
    json_t *lines = json_array();
    int rc = annotctl_import(s, args, lines, n);
    if (rc != 0) {
        fprintf(stderr, "annot-sim: annotctl candidates import %s failed (exit %d, %zu of %d lines)\n", path, rc,
                json_array_size(lines), n);
        json_decref(lines);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *tok = json_string_value(json_object_get(json_array_get(lines, (size_t)i), "token"));
        snprintf(first[i].token, sizeof(first[i].token), "%s", tok ? tok : "");
    }
    json_decref(lines);
    atomic_fetch_add(&s->n.candidates_imported, n);
    return 0;
}
