/* The simulated world: catalogue, draws, the writer and the validator's
 * judgement.  See model.h. */
#include "model.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

static const struct {
    const char *category;
    double base_rate; /* per description, for a writer of skill 0.5 */
} defects[DEFECT_COUNT] = {
    [DEFECT_SUBJECTIVE] = {"subjective_language", 0.30},
    [DEFECT_SPECULATION] = {"speculation", 0.20},
    [DEFECT_VIEWER] = {"viewer_address", 0.15},
    [DEFECT_MAIN_MISSING] = {"main_object_missing", 0.06},
    [DEFECT_MAIN_NOT_FIRST] = {"main_object_not_first", 0}, /* follows from the text, never drawn */
    [DEFECT_BARE_LIST] = {"relation_missing", 0.25},
    [DEFECT_REFERENCE] = {"reference_overload", 0.18},
    [DEFECT_CULTURAL] = {"cultural_inaccuracy", 0.10},
    [DEFECT_UNFIXED] = {"unfixed_defect", 0.25},
    [DEFECT_NO_EDIT] = {"no_meaningful_edit", 0.06},
};

const char *sim_defect_category(sim_defect_t d) { return d < DEFECT_COUNT ? defects[d].category : "other"; }

double sim_defect_rate(sim_defect_t d, double skill) {
    if (skill < 0) skill = 0;
    if (skill > 1) skill = 1;
    double r = defects[d].base_rate * (1 - skill) * 2;
    return r > 1 ? 1 : r;
}

double sim_draw(uint64_t seed, const char *fmt, ...) {
    char label[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(label, sizeof(label), fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof(label)) n = sizeof(label) - 1;
    unsigned char key[crypto_generichash_KEYBYTES_MIN > 8 ? crypto_generichash_KEYBYTES_MIN : 8] = {0};
    memcpy(key, &seed, sizeof(seed));
    uint64_t h;
    crypto_generichash((unsigned char *)&h, sizeof(h), (const unsigned char *)label, (size_t)n, key, sizeof(key));
    return (double)(h >> 11) / (double)(1ULL << 53);
}

/* ---- catalogue ---- */

static char *dup_str(json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? strdup(s) : NULL;
}

static int load_lines(json_t *arr, char **out, size_t *n) {
    size_t i;
    json_t *v;
    *n = 0;
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > SIM_LINES_MAX) return -1;
    json_array_foreach(arr, i, v) {
        if (!json_is_string(v)) return -1;
        out[(*n)++] = strdup(json_string_value(v));
    }
    return 0;
}

int sim_catalogue_load(sim_catalogue_t *cat, const char *path, char *errstr, size_t errlen) {
    memset(cat, 0, sizeof(*cat));
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        snprintf(errstr, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
        return -1;
    }
    json_t *items = json_object_get(root, "items");
    cat->guideline_version = dup_str(root, "guideline_version");
    if (cat->guideline_version == NULL || !json_is_array(items) || json_array_size(items) == 0) {
        snprintf(errstr, errlen, "%s: needs \"guideline_version\" and a non-empty \"items\" array", path);
        json_decref(root);
        sim_catalogue_free(cat);
        return -1;
    }
    cat->items = calloc(json_array_size(items), sizeof(*cat->items));
    size_t i;
    json_t *o;
    json_array_foreach(items, i, o) {
        sim_item_t *it = &cat->items[cat->nitems++];
        it->kind = dup_str(o, "kind");
        it->locale = dup_str(o, "locale");
        it->main_object = dup_str(o, "main_object");
        it->setting = dup_str(o, "setting");
        it->wrong_fact = dup_str(o, "wrong_fact");
        const char *syn = json_string_value(json_array_get(json_object_get(o, "synonyms"), 0));
        it->synonym = syn ? strdup(syn) : NULL;
        json_t *comps = json_object_get(o, "components");
        size_t j;
        json_t *c;
        int bad = !it->kind || !it->locale || !it->main_object || !it->setting || !it->wrong_fact ||
                  !json_is_array(comps) || json_array_size(comps) == 0 || json_array_size(comps) > SIM_COMPONENTS_MAX;
        if (!bad) {
            json_array_foreach(comps, j, c) {
                sim_component_t *sc = &it->components[it->ncomponents++];
                sc->name = dup_str(c, "name");
                sc->relation = dup_str(c, "relation");
                sc->target = dup_str(c, "target");
                if (!sc->name || !sc->relation || !sc->target) bad = 1;
            }
        }
        if (!bad) bad = load_lines(json_object_get(o, "details"), it->details, &it->ndetails) != 0 ||
                        load_lines(json_object_get(o, "facts"), it->facts, &it->nfacts) != 0;
        if (bad) {
            snprintf(errstr, errlen, "%s: items[%zu]: needs kind, locale, main_object, setting, wrong_fact, "
                     "1-%d components {name, relation, target}, 1-%d details and facts", path, i,
                     SIM_COMPONENTS_MAX, SIM_LINES_MAX);
            json_decref(root);
            sim_catalogue_free(cat);
            return -1;
        }
    }
    json_decref(root);
    return 0;
}

void sim_catalogue_free(sim_catalogue_t *cat) {
    for (size_t i = 0; i < cat->nitems; i++) {
        sim_item_t *it = &cat->items[i];
        free(it->kind), free(it->locale), free(it->main_object), free(it->synonym), free(it->setting);
        free(it->wrong_fact);
        for (size_t j = 0; j < it->ncomponents; j++)
            free(it->components[j].name), free(it->components[j].relation), free(it->components[j].target);
        for (size_t j = 0; j < it->ndetails; j++) free(it->details[j]);
        for (size_t j = 0; j < it->nfacts; j++) free(it->facts[j]);
    }
    free(cat->items);
    free(cat->guideline_version);
    memset(cat, 0, sizeof(*cat));
}

const sim_item_t *sim_catalogue_find(const sim_catalogue_t *cat, const char *main_object) {
    for (size_t i = 0; main_object && i < cat->nitems; i++)
        if (strcmp(cat->items[i].main_object, main_object) == 0) return &cat->items[i];
    return NULL;
}

/* ---- the writer ---- */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static void put(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf_t *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)(n > 0 ? n : 64) + 1;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL) abort();
    }
}

/* Appends a sentence: a space before it unless first, its first letter
 * upper-cased. */
static void sentence(buf_t *b, const char *s) {
    if (b->len) put(b, " ");
    size_t at = b->len;
    put(b, "%s", s);
    b->p[at] = (char)toupper((unsigned char)b->p[at]);
}

static const char *pick(uint64_t seed, const char *label, const char *what, const char *const *from, size_t n) {
    size_t i = (size_t)(sim_draw(seed, "%s %s", label, what) * (double)n);
    return from[i < n ? i : n - 1];
}

/* Whether word occurs in s as a whole word, ignoring ASCII case. */
static bool has_word(const char *s, const char *word) {
    size_t n = strlen(word);
    for (const char *p = s; (p = strcasestr(p, word)) != NULL; p++) {
        if ((p == s || !isalpha((unsigned char)p[-1])) && !isalpha((unsigned char)p[n])) return true;
    }
    return false;
}

/* A sentence that makes a lexicon defect, and the words that make it one. */
typedef struct phrase {
    const char *text;
    const char *words[3];
} phrase_t;

/* Writes the phrase of a new defect and returns true.  In an editing task
 * the phrase repeats none of the pre-generated text's words: the same word
 * again is that text's defect left in place (unfixed_defect, by the
 * guideline and the checker), which DEFECT_UNFIXED models.  False, and
 * nothing written, when every phrase repeats one. */
static bool phrase_write(buf_t *b, uint64_t seed, const char *label, const char *what, const phrase_t *from, size_t n,
                         const char *pregenerated) {
    size_t first = (size_t)(sim_draw(seed, "%s %s", label, what) * (double)n);
    for (size_t k = 0; k < n; k++) {
        const phrase_t *p = &from[(first + k) % n];
        bool repeats = false;
        for (size_t w = 0; w < 3 && p->words[w] && pregenerated; w++) repeats |= has_word(pregenerated, p->words[w]);
        if (!repeats) {
            sentence(b, p->text);
            return true;
        }
    }
    return false;
}

static const phrase_t subjective[] = {
    {"It looks delicious and the colours are beautiful.", {"delicious", "beautiful"}},
    {"The whole scene is stunning and cozy.", {"stunning", "cozy"}},
    {"It is a lovely, charming sight that feels perfect.", {"lovely", "charming", "perfect"}},
    {"The result is gorgeous and truly impressive.", {"gorgeous", "impressive"}},
};
static const phrase_t speculation[] = {
    {"It was probably put there only a few minutes ago.", {"probably"}},
    {"The owner seems to be standing just out of the frame.", {"seems"}},
    {"It might be there for a family gathering.", {"might"}},
    {"Perhaps it was prepared for a festival.", {"perhaps"}},
};
static const phrase_t viewer[] = {
    {"You can see every texture up close.", {"you"}},
    {"We can see the light falling from the left.", {"we"}},
    {"As you look closer you notice the fine detail.", {"you"}},
};
static const char *const generic_noun[][2] = {
    {"dish", "A dish"}, {"clothing", "A garment"}, {"vehicle", "A vehicle"}, {"place", "A place"},
    {"symbol", "An object"},
};
static const char *const framing[] = {
    "It is photographed in daylight from a short distance, slightly from above.",
    "It is lit evenly from the left against a plain background.",
    "It is photographed at eye level, with the edges of the frame left empty.",
};
static const char *const exam_details[] = {
    "The %s fills the centre of the frame.", "Soft daylight falls on the %s from the left.",
    "The background behind the %s is plain and slightly out of focus.",
    "The %s is photographed from slightly above, at a short distance.",
};

/* Whether s names the task's main object (or its synonym). */
static bool names_main(const sim_task_view_t *task, const char *s) {
    return strcasestr(s, task->main_object) || (task->synonym && strcasestr(s, task->synonym));
}

/* In an editing task, a structural defect of the description that the
 * pre-generated text has too is that text's defect left in place: a
 * validator, like the checker, calls it unfixed_defect.  The relations are
 * judged by their words, the main object by its name, as the writer writes
 * them. */
static void editing_carry_over(const sim_task_view_t *task, bool has[DEFECT_COUNT]) {
    const char *pre = task->pregenerated;
    const char *end = strpbrk(pre, ".!?");
    size_t first_len = end ? (size_t)(end - pre) : strlen(pre);
    char first[512];
    snprintf(first, sizeof(first), "%.*s", (int)first_len, pre);
    bool pre_missing = !names_main(task, pre), pre_late = !pre_missing && !names_main(task, first);
    if (has[DEFECT_BARE_LIST]) {
        /* Each component the list leaves without its relation: the
         * pre-generated text's own defect when it never states it, unless
         * the relation is to a main object it never names (then its defect
         * is the missing main object). */
        size_t left = 0;
        for (size_t i = 0; i < task->ncomponents; i++) {
            const sim_component_t *c = &task->components[i];
            bool of_main = strcasecmp(c->name, task->main_object) == 0 || strcasecmp(c->target, task->main_object) == 0;
            left += strcasestr(pre, c->relation) == NULL && !(of_main && pre_missing);
        }
        if (left > 0) has[DEFECT_UNFIXED] = true;
        if (left == task->ncomponents) has[DEFECT_BARE_LIST] = false;
    }
    if ((has[DEFECT_MAIN_MISSING] && pre_missing) || (has[DEFECT_MAIN_NOT_FIRST] && pre_late)) {
        has[DEFECT_MAIN_MISSING] = has[DEFECT_MAIN_NOT_FIRST] = false;
        has[DEFECT_UNFIXED] = true;
    }
}

sim_text_t sim_write(uint64_t seed, const char *label, double skill, const sim_task_view_t *task,
                     const sim_item_t *item) {
    sim_text_t out = {NULL, 0};
    bool has[DEFECT_COUNT] = {false};
    for (int d = 0; d < DEFECT_COUNT; d++)
        has[d] = sim_draw(seed, "%s defect %d", label, d) < sim_defect_rate((sim_defect_t)d, skill);
    bool editing = task->pregenerated != NULL && task->pregenerated[0] != '\0';
    if (!editing) has[DEFECT_UNFIXED] = has[DEFECT_NO_EDIT] = false;
    if (item == NULL) has[DEFECT_CULTURAL] = false;
    buf_t b = {NULL, 0, 0};
    put(&b, "%s", "");
    if (editing && has[DEFECT_NO_EDIT]) {
        /* Handed in as it came, with every defect the bank wrote into it
         * (the point of the exam) still there. */
        put(&b, "%s", task->pregenerated);
        out.text = b.p;
        out.defects = 1u << DEFECT_NO_EDIT | 1u << DEFECT_UNFIXED;
        return out;
    }
    const char *pre = editing ? task->pregenerated : NULL;
    has[DEFECT_NO_EDIT] = false;
    const char *main = task->main_object;
    /* A writer may name the main object by a synonym the task gives (not
     * one the catalogue knows and the task does not: the checker, like a
     * validator, goes by the task). */
    if (task->synonym && sim_draw(seed, "%s synonym", label) < 0.3) main = task->synonym;
    char line[1024];
    const char *setting = item ? item->setting : "in the centre of the image";
    if (has[DEFECT_MAIN_MISSING]) {
        const char *noun = "An object";
        for (size_t i = 0; item && i < sizeof(generic_noun) / sizeof(generic_noun[0]); i++)
            if (strcmp(item->kind, generic_noun[i][0]) == 0) noun = generic_noun[i][1];
        snprintf(line, sizeof(line), "%s %s.", noun, setting);
    } else if (item) {
        /* The opening says what the main object looks like, not only where. */
        snprintf(line, sizeof(line), "%s %s: %s", main, setting, item->details[0]);
        size_t at = strlen(main) + strlen(setting) + 3;
        if (at < sizeof(line)) line[at] = (char)tolower((unsigned char)line[at]);
    } else {
        snprintf(line, sizeof(line), "%s %s.", main, setting);
    }
    sentence(&b, line);
    if (has[DEFECT_SUBJECTIVE])
        has[DEFECT_SUBJECTIVE] = phrase_write(&b, seed, label, "subjective", subjective, 4, pre);
    if (has[DEFECT_BARE_LIST]) {
        put(&b, " It has ");
        for (size_t i = 0; i < task->ncomponents; i++)
            put(&b, "%s%s", i == 0 ? "" : i + 1 == task->ncomponents ? " and " : ", ", task->components[i].name);
        put(&b, ".");
    } else {
        for (size_t i = 0; i < task->ncomponents; i++) {
            snprintf(line, sizeof(line), "the %s is %s the %s.", task->components[i].name,
                     task->components[i].relation, task->components[i].target);
            sentence(&b, line);
        }
    }
    if (item) {
        /* An overloaded description tells the history instead of the look. */
        size_t ndetails = has[DEFECT_REFERENCE] ? 2 : item->ndetails;
        for (size_t i = has[DEFECT_MAIN_MISSING] ? 0 : 1; i < ndetails; i++) sentence(&b, item->details[i]);
        sentence(&b, pick(seed, label, "framing", framing, 3));
    } else {
        for (size_t i = 0; i < sizeof(exam_details) / sizeof(exam_details[0]); i++) {
            snprintf(line, sizeof(line), exam_details[i], task->main_object);
            sentence(&b, line);
        }
    }
    if (has[DEFECT_SPECULATION])
        has[DEFECT_SPECULATION] = phrase_write(&b, seed, label, "speculation", speculation, 4, pre);
    if (has[DEFECT_VIEWER]) has[DEFECT_VIEWER] = phrase_write(&b, seed, label, "viewer", viewer, 3, pre);
    if (has[DEFECT_CULTURAL]) sentence(&b, item->wrong_fact);
    if (has[DEFECT_REFERENCE] && item) {
        for (size_t i = 0; i < item->nfacts; i++) sentence(&b, item->facts[i]);
        sentence(&b, "It is considered part of the region's heritage.");
        sentence(&b, "Families traditionally pass the craft down through generations.");
    } else {
        has[DEFECT_REFERENCE] = false;
    }
    if (has[DEFECT_UNFIXED]) {
        /* The pre-generated text's first sentence, left in place. */
        const char *p = task->pregenerated, *end = strpbrk(p, ".!?");
        int n = end ? (int)(end - p + 1) : (int)strlen(p);
        put(&b, " %.*s", n, p);
    }
    /* An opening without the main object, which background sentences then
     * name: the main object is not missing, only late. */
    const char *rest = strpbrk(b.p, ".");
    if (has[DEFECT_MAIN_MISSING] && rest && names_main(task, rest)) {
        has[DEFECT_MAIN_MISSING] = false;
        has[DEFECT_MAIN_NOT_FIRST] = true;
    }
    if (editing) editing_carry_over(task, has);
    for (int d = 0; d < DEFECT_COUNT; d++)
        if (has[d]) out.defects |= 1u << d;
    out.text = b.p;
    return out;
}

/* ---- the validator ---- */

static void add_error(sim_verdict_t *v, const check_taxonomy_t *tax, const char *category) {
    for (size_t i = 0; i < v->nerrors; i++)
        if (strcmp(v->errors[i].category, category) == 0) return;
    const check_category_t *c = check_taxonomy_find(tax, category);
    if (c == NULL || v->nerrors == SIM_VERDICT_ERRORS_MAX) return;
    v->errors[v->nerrors].category = c->id;
    v->errors[v->nerrors].severity = check_severity_name(c->severity);
    v->errors[v->nerrors].section = c->section;
    v->nerrors++;
}

sim_verdict_t sim_judge(uint64_t seed, const char *label, uint32_t truth, sim_validator_noise_t noise,
                        const check_taxonomy_t *tax, const double weights[3]) {
    static const char *const false_flags[] = {"language_quality", "subjective_language", "relation_missing"};
    static const char *const feedback_kinds[] = {"ambiguity", "edge_case", "missing_rule", "contradiction"};
    sim_verdict_t v;
    memset(&v, 0, sizeof(v));
    for (int d = 0; d < DEFECT_COUNT; d++)
        if ((truth & (1u << d)) && sim_draw(seed, "%s miss %d", label, d) >= noise.miss)
            add_error(&v, tax, defects[d].category);
    if (sim_draw(seed, "%s false flag", label) < noise.false_flag)
        add_error(&v, tax, pick(seed, label, "false flag kind", false_flags, 3));
    double penalty = 0;
    v.accept = true;
    for (size_t i = 0; i < v.nerrors; i++) {
        check_severity_t s = check_taxonomy_find(tax, v.errors[i].category)->severity;
        penalty += weights[s - 1];
        if (s != CHECK_SEVERITY_MINOR) v.accept = false;
    }
    v.score = penalty >= 1 ? 0 : 1 - penalty;
    /* Now and then the guideline itself was unclear about what went wrong. */
    if (v.nerrors > 0 && v.errors[0].section[0] && sim_draw(seed, "%s feedback", label) < 0.08) {
        v.feedback_section = v.errors[0].section;
        v.feedback_kind = pick(seed, label, "feedback kind", feedback_kinds, 4);
    }
    return v;
}

bool sim_answers_right(uint64_t seed, const char *label, double skill) {
    return sim_draw(seed, "%s", label) < 0.45 + 0.55 * skill;
}
