/* The simulated people, one thread each, through the dispatcher's HTTP API:
 * annotators lease, write (taking simulated minutes, heartbeating when the
 * lease would run out), now and then walk away from a lease or send a bad
 * request first; validators judge what they are given from the truth of the
 * text plus their own noise; candidates take the screening test, the
 * training and the exams, and work as annotators once approved. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "api.h"
#include "sim.h"

int64_t sim_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sim_sleep_ms(sim_t *s, int64_t ms) {
    while (ms > 0 && !atomic_load(&s->stop)) {
        int64_t step = ms < 100 ? ms : 100;
        struct timespec ts = {(time_t)(step / 1000), (long)(step % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

void sim_sleep_minutes(sim_t *s, double minutes) { sim_sleep_ms(s, (int64_t)(minutes * (double)s->day_ms / 480.0)); }

/* ---- the truth of every text written ---- */

static void text_key(const char *text, unsigned char key[16]) {
    crypto_generichash(key, 16, (const unsigned char *)text, strlen(text), NULL, 0);
}

void truth_put(sim_t *s, const char *text, uint32_t defects, bool exam) {
    truth_t *t = calloc(1, sizeof(*t));
    if (t == NULL) abort();
    text_key(text, t->key);
    t->defects = defects;
    t->exam = exam;
    size_t b = (size_t)(t->key[0] | t->key[1] << 8) % TRUTH_BUCKETS;
    pthread_mutex_lock(&s->mu);
    t->next = s->truth[b];
    s->truth[b] = t;
    pthread_mutex_unlock(&s->mu);
}

bool truth_get(sim_t *s, const char *text, uint32_t *defects, bool *exam) {
    unsigned char key[16];
    text_key(text, key);
    size_t b = (size_t)(key[0] | key[1] << 8) % TRUTH_BUCKETS;
    bool found = false;
    pthread_mutex_lock(&s->mu);
    for (truth_t *t = s->truth[b]; t; t = t->next) {
        if (memcmp(t->key, key, 16) == 0) {
            *defects = t->defects, *exam = t->exam, found = true;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

void task_validated(sim_t *s, const char *task_id) {
    pthread_mutex_lock(&s->mu);
    if (json_object_get(s->validated_tasks, task_id) == NULL) {
        json_object_set_new(s->validated_tasks, task_id, json_true());
        atomic_fetch_add(&s->n.validated_distinct, 1);
    }
    pthread_mutex_unlock(&s->mu);
}

void ack_record(sim_t *s, const char *kind, json_t *answer) {
    const char *id = json_string_value(json_object_get(answer, strcmp(kind, "validation") == 0 ? "validation_id"
                                                                                                 : "submission_id"));
    if (s->acks == NULL || id == NULL) return;
    pthread_mutex_lock(&s->mu);
    fprintf(s->acks, "%s %s\n", kind, id);
    fflush(s->acks); /* a 202 counts only once it is on record */
    pthread_mutex_unlock(&s->mu);
}

/* ---- writing ---- */

/* The task of a lease as the writer sees it; components point into comps. */
static sim_task_view_t task_view(json_t *task, sim_component_t *comps) {
    sim_task_view_t v = {json_string_value(json_object_get(task, "task_id")),
                         json_string_value(json_object_get(task, "main_object")),
                         json_string_value(json_object_get(task, "kind")),
                         json_string_value(json_array_get(json_object_get(task, "main_object_synonyms"), 0)),
                         json_string_value(json_object_get(task, "pregenerated")), comps, 0};
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(task, "components"), i, c) {
        if (v.ncomponents == SIM_COMPONENTS_MAX) break;
        comps[v.ncomponents++] = (sim_component_t){(char *)json_string_value(json_object_get(c, "name")),
                                                   (char *)json_string_value(json_object_get(c, "relation")),
                                                   (char *)json_string_value(json_object_get(c, "target"))};
    }
    if (v.main_object == NULL) v.main_object = "object";
    if (v.task_id == NULL) v.task_id = "";
    return v;
}

/* The bad requests people send now and then, each with the 4xx it must get. */
static void send_bad_input(sim_t *s, person_t *p, api_t *api, const char *lease_id, unsigned which) {
    char path[256];
    snprintf(path, sizeof(path), "/v1/leases/%s/submit", lease_id);
    static const char *const bodies[] = {
        "{\"description\": \"An unfinished",          /* invalid JSON */
        "{\"description\": 42}",                       /* wrong type */
        "{\"description\": \"x\", \"mood\": \"happy\"}", /* unknown field */
        "{\"description\": \"\xff\xfe invalid UTF-8\"}", /* invalid UTF-8 */
    };
    int status;
    atomic_fetch_add(&s->n.bad_sent, 1);
    if (which % 5 == 4) {
        /* A body far over the size limit. */
        size_t len = 11u << 20;
        char *big = malloc(len);
        if (big == NULL) abort();
        memset(big, 'a', len);
        memcpy(big, "{\"description\": \"", 17);
        big[len - 2] = '"', big[len - 1] = '}';
        status = api_call(api, "POST", path, big, len, NULL);
        free(big);
    } else {
        const char *b = bodies[which % 5];
        status = api_call(api, "POST", path, b, strlen(b), NULL);
    }
    if (status >= 400 && status < 500) {
        atomic_fetch_add(&s->n.bad_4xx, 1);
    } else if (status < 0 || status == 503) {
        /* The dispatcher was away (restarting, or its database was): no
         * verdict on the request either way. */
        atomic_fetch_add(&s->n.http_errors, 1);
    } else {
        atomic_fetch_add(&s->n.bad_unexpected, 1);
        fprintf(stderr, "annot-sim: %s: a bad request got %d, not a 4xx\n", p->name, status);
    }
}

/* Holds the lease for minutes simulated minutes, heartbeating when less than
 * half its time is left.  false when the lease was lost. */
static bool work_on(sim_t *s, api_t *api, const char *lease_id, int64_t expires_at_ms, int64_t ttl_ms, double minutes) {
    int64_t until = sim_now_ms() + (int64_t)(minutes * (double)s->day_ms / 480.0);
    char path[256];
    snprintf(path, sizeof(path), "/v1/leases/%s/heartbeat", lease_id);
    while (!atomic_load(&s->stop)) {
        int64_t now = sim_now_ms();
        if (now >= until) return true;
        if (expires_at_ms - now < ttl_ms / 2) {
            json_t *out = NULL;
            int st = api_call(api, "POST", path, NULL, 0, &out);
            if (st == 200) expires_at_ms = json_integer_value(json_object_get(out, "expires_at_ms"));
            json_decref(out);
            if (st == 409) return false;
        }
        int64_t nap = until - now;
        if (nap > ttl_ms / 4) nap = ttl_ms / 4;
        sim_sleep_ms(s, nap > 0 ? nap : 1);
    }
    return false;
}

/* One lease of queue ("annotation" or "exam"): lease, write, submit.
 * Returns the lease's HTTP status (200 worked, 204 nothing to do, 403...). */
/* Submits to a lease as a client that cares about its work: when no
 * answer came (the connection broke) or the dispatcher was unavailable, the
 * same submit is sent again; the dispatcher answers a retry of a recorded
 * submit with its first answer.  Returns the last status. */
static int submit_retrying(sim_t *s, api_t *api, const char *lease_id, const json_t *body, json_t **answer) {
    char path[256];
    snprintf(path, sizeof(path), "/v1/leases/%s/submit", lease_id);
    int st = -1;
    for (int attempt = 0; attempt < 8 && !atomic_load(&s->stop); attempt++) {
        json_decref(*answer);
        *answer = NULL;
        st = api_call_json(api, "POST", path, body, answer);
        if (st >= 0 && st < 500) break;
        atomic_fetch_add(&s->n.http_errors, 1);
        sim_sleep_ms(s, 1000);
    }
    return st;
}

static int write_one(sim_t *s, person_t *p, api_t *api, const char *queue, unsigned *seq) {
    json_t *req = json_pack("{s:s, s:i}", "queue", queue, "wait_s", 1);
    json_t *lease = NULL;
    int st = api_call_json(api, "POST", "/v1/leases", req, &lease);
    json_decref(req);
    if (st != 200 || lease == NULL) {
        json_decref(lease);
        if (st < 0) atomic_fetch_add(&s->n.http_errors, 1);
        return st;
    }
    const char *lease_id = json_string_value(json_object_get(lease, "lease_id"));
    int64_t expires = json_integer_value(json_object_get(lease, "expires_at_ms"));
    int64_t ttl = expires - sim_now_ms();
    json_t *task = json_object_get(lease, "task");
    sim_component_t comps[SIM_COMPONENTS_MAX];
    sim_task_view_t view = task_view(task, comps);
    bool exam = strcmp(queue, "exam") == 0;
    unsigned n = (*seq)++;
    if (!exam && sim_draw(s->seed, "%s lease %u abandon", p->name, n) < s->abandon_rate) {
        /* Walks away: the lease runs out and the task goes to someone else. */
        atomic_fetch_add(&s->n.abandoned, 1);
        sim_sleep_ms(s, ttl + 500);
        json_decref(lease);
        return st;
    }
    char label[256];
    snprintf(label, sizeof(label), "%s %s", p->name, view.task_id);
    sim_text_t text = sim_write(s->seed, label, p->skill, &view, sim_catalogue_find(&s->cat, view.main_object));
    double minutes = 6 + 10 * sim_draw(s->seed, "%s minutes", label);
    if (work_on(s, api, lease_id, expires, ttl, minutes)) {
        if (sim_draw(s->seed, "%s bad input", label) < s->bad_input_rate)
            send_bad_input(s, p, api, lease_id, (unsigned)(sim_draw(s->seed, "%s bad kind", label) * 5));
        truth_put(s, text.text, text.defects, exam);
        json_t *body = json_pack("{s:s}", "description", text.text), *answer = NULL;
        int sub = submit_retrying(s, api, lease_id, body, &answer);
        json_decref(body);
        if (sub == 202) {
            atomic_fetch_add(exam ? &s->n.exam_submitted : &s->n.submitted, 1);
            ack_record(s, "submission", answer);
        } else if (sub == 409) {
            atomic_fetch_add(&s->n.lease_lost, 1);
        }
        json_decref(answer);
    } else if (!atomic_load(&s->stop)) {
        atomic_fetch_add(&s->n.lease_lost, 1);
    }
    free(text.text);
    json_decref(lease);
    return st;
}

static void annotator_loop(sim_t *s, person_t *p, api_t *api) {
    unsigned seq = 0;
    while (!atomic_load(&s->stop)) {
        int st = write_one(s, p, api, "annotation", &seq);
        if (st == 403) {
            /* Suspended: nothing more to do in this run. */
            atomic_fetch_add(&s->n.suspended_seen, 1);
            snprintf(p->stage, sizeof(p->stage), "suspended");
            return;
        }
        if (st == 204 || st == 409) sim_sleep_minutes(s, 5);
        else if (st < 0 || st >= 500) sim_sleep_ms(s, 500);
        else sim_sleep_minutes(s, 1); /* a short break between tasks */
    }
}

static void validator_loop(sim_t *s, person_t *p, api_t *api) {
    unsigned seq = 0;
    while (!atomic_load(&s->stop)) {
        json_t *req = json_pack("{s:s, s:i}", "queue", "validation", "wait_s", 1);
        json_t *lease = NULL;
        int st = api_call_json(api, "POST", "/v1/leases", req, &lease);
        json_decref(req);
        if (st != 200 || lease == NULL) {
            json_decref(lease);
            if (st < 0 || st >= 500) atomic_fetch_add(&s->n.http_errors, 1), sim_sleep_ms(s, 500);
            continue;
        }
        const char *lease_id = json_string_value(json_object_get(lease, "lease_id"));
        int64_t expires = json_integer_value(json_object_get(lease, "expires_at_ms"));
        json_t *vt = json_object_get(lease, "task");
        const char *text = json_string_value(json_object_get(vt, "description"));
        const char *submission = json_string_value(json_object_get(vt, "submission_id"));
        uint32_t defects = 0;
        bool exam = false;
        if (text == NULL || !truth_get(s, text, &defects, &exam)) {
            /* Not written by this run: judged as it reads, which is clean. */
            const char *kind = json_string_value(json_object_get(json_object_get(vt, "task"), "kind"));
            exam = kind && strncmp(kind, "exam", 4) == 0;
        }
        char label[256];
        snprintf(label, sizeof(label), "%s %s", p->name, submission ? submission : "");
        sim_verdict_t v = sim_judge(s->seed, label, defects, p->noise, &s->tax, s->weights);
        json_t *errors = json_array(), *feedback = json_array();
        for (size_t i = 0; i < v.nerrors; i++) {
            json_t *e = json_pack("{s:s, s:s}", "category", v.errors[i].category, "severity", v.errors[i].severity);
            if (v.errors[i].section[0]) json_object_set_new(e, "section", json_string(v.errors[i].section));
            json_array_append_new(errors, e);
        }
        if (v.feedback_section)
            json_array_append_new(feedback, json_pack("{s:s, s:s, s:s}", "section", v.feedback_section, "kind",
                                                      v.feedback_kind, "text",
                                                      "the guideline does not say how to treat this case"));
        json_t *body = json_pack("{s:s, s:o, s:o}", "verdict", v.accept ? "accept" : "reject", "errors", errors,
                                 "feedback", feedback);
        double minutes = 2 + 4 * sim_draw(s->seed, "%s minutes %u", p->name, seq++);
        if (work_on(s, api, lease_id, expires, expires - sim_now_ms(), minutes)) {
            json_t *answer = NULL;
            int sub = submit_retrying(s, api, lease_id, body, &answer);
            if (sub == 202) ack_record(s, "validation", answer);
            json_decref(answer);
            if (sub == 202) {
                atomic_fetch_add(exam ? &s->n.exam_verdicts : &s->n.verdicts, 1);
                const char *task_id = json_string_value(json_object_get(json_object_get(vt, "task"), "task_id"));
                if (!exam && task_id) task_validated(s, task_id);
                if (!exam) {
                    int d = atomic_load(&s->day);
                    if (d >= SIM_DAYS_MAX) d = SIM_DAYS_MAX - 1;
                    pthread_mutex_lock(&s->mu);
                    s->day_verdicts[d]++;
                    s->day_score[d] += v.score;
                    pthread_mutex_unlock(&s->mu);
                }
            } else if (sub == 409) {
                atomic_fetch_add(&s->n.lease_lost, 1);
            }
        }
        json_decref(body);
        json_decref(lease);
    }
}

/* The screening test: each answer right with a probability that grows with
 * skill (the key is the bank the funnel scores with). */
static void take_screening(sim_t *s, person_t *p, api_t *api) {
    json_t *test = NULL;
    if (api_call(api, "GET", "/v1/screening", NULL, 0, &test) != 200 || test == NULL ||
        json_is_true(json_object_get(test, "submitted"))) {
        json_decref(test);
        sim_sleep_minutes(s, 5);
        return;
    }
    sim_sleep_minutes(s, 20);
    json_t *answers = json_array();
    size_t i;
    json_t *q;
    json_array_foreach(json_object_get(test, "questions"), i, q) {
        const char *id = json_string_value(json_object_get(q, "id"));
        const screening_question_t *key = screening_find(&s->bank, id ? id : "");
        const char *answer = key ? key->answer : "a";
        char label[128];
        snprintf(label, sizeof(label), "%s screening %s", p->name, id ? id : "");
        if (!sim_answers_right(s->seed, label, p->skill)) {
            /* Another option than the key's. */
            size_t j;
            json_t *o;
            json_array_foreach(json_object_get(q, "options"), j, o) {
                const char *oid = json_string_value(json_object_get(o, "id"));
                if (oid && strcmp(oid, answer) != 0) {
                    answer = oid;
                    break;
                }
            }
        }
        json_array_append_new(answers, json_pack("{s:s, s:s}", "question_id", id ? id : "", "answer", answer));
    }
    json_t *body = json_pack("{s:O, s:o}", "screening_id", json_object_get(test, "screening_id"), "answers", answers);
    if (api_call_json(api, "POST", "/v1/screening", body, NULL) != 202) atomic_fetch_add(&s->n.http_errors, 1);
    json_decref(body);
    json_decref(test);
}

static void take_training(sim_t *s, api_t *api) {
    json_t *tr = NULL;
    if (api_call(api, "GET", "/v1/training", NULL, 0, &tr) == 200 && tr) {
        sim_sleep_minutes(s, 60); /* reading the guideline and the samples */
        json_t *body = json_pack("{s:O}", "guideline_version", json_object_get(tr, "guideline_version"));
        int st = api_call_json(api, "POST", "/v1/training/complete", body, NULL);
        if (st != 202 && st != 409) atomic_fetch_add(&s->n.http_errors, 1);
        json_decref(body);
    }
    json_decref(tr);
    sim_sleep_minutes(s, 5);
}

static void candidate_loop(sim_t *s, person_t *p, api_t *api) {
    unsigned seq = 0;
    while (!atomic_load(&s->stop)) {
        json_t *me = NULL;
        int st = api_call(api, "GET", "/v1/me", NULL, 0, &me);
        const char *role = json_string_value(json_object_get(me, "role"));
        const char *stage = json_string_value(json_object_get(me, "stage"));
        if (st == 200 && role && strcmp(role, "annotator") == 0) {
            json_decref(me);
            snprintf(p->stage, sizeof(p->stage), "approved");
            annotator_loop(s, p, api);
            return;
        }
        if (st == 200 && stage) snprintf(p->stage, sizeof(p->stage), "%s", stage);
        json_decref(me);
        if (strcmp(p->stage, "rejected") == 0) return;
        if (strcmp(p->stage, "screening") == 0) take_screening(s, p, api);
        else if (strcmp(p->stage, "training") == 0) take_training(s, api);
        else if (strncmp(p->stage, "exam", 4) == 0) {
            int lst = write_one(s, p, api, "exam", &seq);
            if (lst != 200) sim_sleep_minutes(s, 5);
        } else {
            sim_sleep_minutes(s, 5);
        }
    }
}

static void *person_main(void *arg) {
    person_t *p = arg;
    sim_t *s = p->sim;
    api_t *api = api_new(s->api, p->token);
    switch (p->role) {
    case ROLE_ANNOTATOR: annotator_loop(s, p, api); break;
    case ROLE_VALIDATOR: validator_loop(s, p, api); break;
    case ROLE_CANDIDATE: candidate_loop(s, p, api); break;
    }
    api_free(api);
    return NULL;
}

int people_start(sim_t *s, person_t *p) {
    p->sim = s;
    if (pthread_create(&p->thread, NULL, person_main, p) != 0) return -1;
    p->started = true;
    return 0;
}

void people_join(sim_t *s) {
    for (int i = 0; i < s->npeople; i++)
        if (s->people[i].started) pthread_join(s->people[i].thread, NULL);
}
