/* check_rules: loads and compiles the checker's configuration (see
 * check.h): checker.conf (weights, thresholds, rule severities and
 * sections), per language a language.conf of short word lists and the
 * lexicon files, and config/taxonomy.conf.  Also the lexicon scan, the one
 * place the matching engine runs.
 *
 * Lexicon entries are words and phrases with a little syntax, expanded at
 * load into plain literals:
 *     beautiful(ly|)        alternatives in parentheses; an empty one, or a
 *     charm(ing|ingly)?     '?' after the group, makes it optional
 *     eye-catching          '-' matches "-", " " or nothing
 *     gorgeous*             the match extends to the end of the word
 * Each literal is folded exactly as descriptions are (check_text.c), so a
 * lexicon is written in ordinary spelling and case and still matches "É" as
 * "é".  All literals of a language, every category together, go into one
 * Vectorscan literal database: one pass over the text finds them all, and
 * literal matching is the engine's fastest path.  Word boundaries are
 * checked on each match rather than in patterns, which would need the
 * slower Unicode-property mode. */
#include "check_internal.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const rule_names[CHECK_RULE_COUNT] = {
    "subjective_language", "speculation", "viewer_address", "main_object_missing",
    "main_object_not_first", "main_object_underdescribed", "relation_missing", "reference_overload",
    "length", "invalid_text", "no_meaningful_edit", "unfixed_defect",
};

static const char *const severity_names[] = {NULL, "minor", "major", "critical"};
static const char *const kind_names[] = {NULL, "production", "exam_stage1", "exam_stage2", "golden"};

/* The lexicon files of a language and their categories. */
static const struct {
    const char *file;
    int cat;
} lexicon_files[] = {
    {"subjective.txt", CHECK_CAT_SUBJECTIVE}, {"speculation.txt", CHECK_CAT_SPECULATION},
    {"viewer.txt", CHECK_CAT_VIEWER},         {"reference.txt", CHECK_CAT_REFERENCE},
    {"relation.txt", CHECK_CAT_RELATION},     {"neutral.txt", CHECK_CAT_NEUTRAL},
};

static const char *const cat_names[CHECK_CAT_COUNT] = {
    "subjective", "speculation", "viewer", "reference", "relation", "neutral",
    "anaphora", "conjunctions", "year_words", "abbreviations", "name_connectors",
    "containers", "container_links",
};

#define FINDING_CATS                                                                                      \
    (1u << CHECK_CAT_SUBJECTIVE | 1u << CHECK_CAT_SPECULATION | 1u << CHECK_CAT_VIEWER |                 \
     1u << CHECK_CAT_REFERENCE)

#define VARIANTS_PER_ENTRY_MAX 512

const char *check_rule_name(check_rule_t rule) {
    return (unsigned)rule < CHECK_RULE_COUNT ? rule_names[rule] : NULL;
}

int check_rule_parse(const char *name, check_rule_t *out) {
    for (int i = 0; i < CHECK_RULE_COUNT; i++) {
        if (strcmp(rule_names[i], name) == 0) {
            *out = (check_rule_t)i;
            return 0;
        }
    }
    return -1;
}

const char *check_severity_name(check_severity_t severity) {
    return severity >= CHECK_SEVERITY_MINOR && severity <= CHECK_SEVERITY_CRITICAL ? severity_names[severity]
                                                                                     : NULL;
}

int check_severity_parse(const char *name, check_severity_t *out) {
    for (int i = CHECK_SEVERITY_MINOR; i <= CHECK_SEVERITY_CRITICAL; i++) {
        if (strcmp(severity_names[i], name) == 0) {
            *out = (check_severity_t)i;
            return 0;
        }
    }
    return -1;
}

const char *check_kind_name(check_kind_t kind) {
    return kind >= CHECK_KIND_PRODUCTION && kind <= CHECK_KIND_GOLDEN ? kind_names[kind] : NULL;
}

int check_kind_parse(const char *name, check_kind_t *out) {
    for (int i = CHECK_KIND_PRODUCTION; i <= CHECK_KIND_GOLDEN; i++) {
        if (strcmp(kind_names[i], name) == 0) {
            *out = (check_kind_t)i;
            return 0;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* load context */

typedef struct origin {
    uint32_t file; /* index into load_t.files */
    uint32_t line;
    uint8_t cat;
} origin_t;

/* The literals of one language while it is built. */
typedef struct lang_build {
    check_variant_t *variants;
    size_t count, cap;
    char **literals; /* folded, NUL-terminated; owned */
    /* open addressing over literals + prefix flag */
    uint32_t *slots;
    size_t slot_cap;
} lang_build_t;

typedef struct load {
    check_rules_t *rules;
    char **files;
    size_t file_count, file_cap;
    origin_t *origins;
    size_t origin_count, origin_cap;
    uint64_t hash; /* FNV-1a over everything read */
    char *errstr;
    size_t errlen;
} load_t;

/* Copies a string whose length was checked (ASCII ids and sections). */
static void copy_str(char *dst, size_t size, const char *src) {
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) abort();
    return q;
}

static char *xstrdup(const char *s) {
    char *d = strdup(s);
    if (d == NULL) abort();
    return d;
}

static char *xstrndup(const char *s, size_t n) {
    char *d = strndup(s, n);
    if (d == NULL) abort();
    return d;
}

static void hash_bytes(uint64_t *h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        *h ^= b[i];
        *h *= 0x100000001b3ULL;
    }
}

static uint32_t load_file_add(load_t *ld, const char *path) {
    if (ld->file_count == ld->file_cap) {
        ld->file_cap = ld->file_cap ? ld->file_cap * 2 : 16;
        ld->files = xrealloc(ld->files, ld->file_cap * sizeof(*ld->files));
    }
    ld->files[ld->file_count] = xstrdup(path);
    hash_bytes(&ld->hash, path, strlen(path) + 1);
    return (uint32_t)ld->file_count++;
}

static uint32_t load_origin_add(load_t *ld, uint32_t file, uint32_t line, int cat) {
    if (ld->origin_count == ld->origin_cap) {
        ld->origin_cap = ld->origin_cap ? ld->origin_cap * 2 : 256;
        ld->origins = xrealloc(ld->origins, ld->origin_cap * sizeof(*ld->origins));
    }
    ld->origins[ld->origin_count] = (origin_t){file, line, (uint8_t)cat};
    return (uint32_t)ld->origin_count++;
}

static void load_free(load_t *ld) {
    for (size_t i = 0; i < ld->file_count; i++) free(ld->files[i]);
    free(ld->files);
    free(ld->origins);
}

/* Reads the lines of a file one by one; fails naming it when it cannot be
 * opened.  Strips comments ('#') and surrounding space. */
typedef int (*line_fn)(load_t *ld, uint32_t file, int lineno, char *line, void *opaque);

static int load_lines(load_t *ld, const char *path, line_fn fn, void *opaque) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(ld->errstr, ld->errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    uint32_t file = load_file_add(ld, path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = 0;
    while ((n = getline(&line, &cap, f)) != -1) {
        lineno++;
        hash_bytes(&ld->hash, line, (size_t)n);
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        size_t l = strlen(s);
        while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\n' || s[l - 1] == '\r')) s[--l] = '\0';
        if (l == 0) continue;
        if ((rc = fn(ld, file, lineno, s, opaque)) != 0) break;
    }
    free(line);
    fclose(f);
    return rc;
}

/* "key = value": splits line in place. */
static int split_pair(load_t *ld, uint32_t file, int lineno, char *line, char **key, char **value) {
    char *eq = strchr(line, '=');
    if (eq == NULL) {
        snprintf(ld->errstr, ld->errlen, "%s:%d: expected 'key = value'", ld->files[file], lineno);
        return -1;
    }
    char *k = line, *v = eq + 1;
    char *ke = eq;
    while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
    *ke = '\0';
    while (*v == ' ' || *v == '\t') v++;
    if (*k == '\0') {
        snprintf(ld->errstr, ld->errlen, "%s:%d: expected 'key = value'", ld->files[file], lineno);
        return -1;
    }
    *key = k;
    *value = v;
    return 0;
}

/* ------------------------------------------------------------------ */
/* checker.conf */

typedef enum { KEY_LONG, KEY_DOUBLE } key_type_t;

typedef struct conf_key {
    const char *key;
    key_type_t type;
    size_t offset;
    double min, max;
} conf_key_t;

#define RULES_FIELD(f) offsetof(check_rules_t, f)

static const conf_key_t conf_keys[] = {
    {"weight.minor", KEY_DOUBLE, RULES_FIELD(weight[CHECK_SEVERITY_MINOR]), 0, 1},
    {"weight.major", KEY_DOUBLE, RULES_FIELD(weight[CHECK_SEVERITY_MAJOR]), 0, 1},
    {"weight.critical", KEY_DOUBLE, RULES_FIELD(weight[CHECK_SEVERITY_CRITICAL]), 0, 1},
    {"length.min_words", KEY_LONG, RULES_FIELD(length_min_words), 0, 100000},
    {"length.max_words", KEY_LONG, RULES_FIELD(length_max_words), 1, 100000},
    {"length.max_bytes", KEY_LONG, RULES_FIELD(length_max_bytes), 64, 16 << 20},
    {"main_object.min_share", KEY_DOUBLE, RULES_FIELD(main_object_min_share), 0, 1},
    {"main_object.min_words", KEY_LONG, RULES_FIELD(main_object_min_words), 0, 100000},
    {"reference.max_share", KEY_DOUBLE, RULES_FIELD(reference_max_share), 0, 1},
    {"reference.min_sentences", KEY_LONG, RULES_FIELD(reference_min_sentences), 1, 1000},
    {"edit.min_distance", KEY_DOUBLE, RULES_FIELD(edit_min_distance), 0, 1},
    {"quote.max_bytes", KEY_LONG, RULES_FIELD(quote_max_bytes), 1, 100000},
};
#define CONF_KEY_COUNT (sizeof(conf_keys) / sizeof(conf_keys[0]))

typedef struct conf_state {
    bool seen[CONF_KEY_COUNT];
    bool strip_marks, strip_marks_seen;
    char languages[256];
    bool languages_seen;
} conf_state_t;

static int conf_line(load_t *ld, uint32_t file, int lineno, char *line, void *opaque) {
    conf_state_t *st = opaque;
    check_rules_t *rules = ld->rules;
    const char *path = ld->files[file];
    char *key, *value;
    if (split_pair(ld, file, lineno, line, &key, &value) != 0) return -1;
    for (size_t i = 0; i < CONF_KEY_COUNT; i++) {
        const conf_key_t *c = &conf_keys[i];
        if (strcmp(c->key, key) != 0) continue;
        char *end = NULL;
        errno = 0;
        double v = strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0' || !isfinite(v) || v < c->min || v > c->max ||
            (c->type == KEY_LONG && v != floor(v))) {
            snprintf(ld->errstr, ld->errlen, "%s:%d: %s: expected a%s number in [%g, %g], got '%s'", path, lineno,
                     key, c->type == KEY_LONG ? "n integer" : "", c->min, c->max, value);
            return -1;
        }
        if (c->type == KEY_LONG) *(long *)((char *)rules + c->offset) = (long)v;
        else *(double *)((char *)rules + c->offset) = v;
        st->seen[i] = true;
        return 0;
    }
    if (strncmp(key, "rule.", 5) == 0) {
        check_rule_t rule;
        if (check_rule_parse(key + 5, &rule) != 0) {
            snprintf(ld->errstr, ld->errlen, "%s:%d: '%s' is not a rule id", path, lineno, key + 5);
            return -1;
        }
        char sev[32], section[64], block[32], extra[8];
        int n = sscanf(value, "%31s %63s %31s %7s", sev, section, block, extra);
        check_severity_t severity;
        if (n < 2 || n > 3 || check_severity_parse(sev, &severity) != 0 ||
            (n == 3 && strcmp(block, "blocking") != 0) || strlen(section) >= CHECK_SECTION_MAX) {
            snprintf(ld->errstr, ld->errlen,
                     "%s:%d: %s: expected 'minor|major|critical SECTION [blocking]' (SECTION '-' for none)", path,
                     lineno, key);
            return -1;
        }
        check_rule_conf_t *rc = &rules->rule[rule];
        rc->severity = severity;
        copy_str(rc->section, sizeof(rc->section), strcmp(section, "-") == 0 ? "" : section);
        rc->blocking = n == 3;
        rc->set = true;
        return 0;
    }
    if (strcmp(key, "text.strip_marks") == 0) {
        if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
            snprintf(ld->errstr, ld->errlen, "%s:%d: %s: expected yes or no", path, lineno, key);
            return -1;
        }
        st->strip_marks = strcmp(value, "yes") == 0;
        st->strip_marks_seen = true;
        return 0;
    }
    if (strcmp(key, "languages") == 0) {
        if (strlen(value) >= sizeof(st->languages)) {
            snprintf(ld->errstr, ld->errlen, "%s:%d: languages: list too long", path, lineno);
            return -1;
        }
        snprintf(st->languages, sizeof(st->languages), "%s", value);
        st->languages_seen = true;
        return 0;
    }
    snprintf(ld->errstr, ld->errlen, "%s:%d: unknown key '%s'", path, lineno, key);
    return -1;
}

/* ------------------------------------------------------------------ */
/* lexicon entries */

static uint64_t literal_hash(const char *s, size_t len, bool prefix) {
    uint64_t h = 0xcbf29ce484222325ULL;
    hash_bytes(&h, s, len);
    h ^= prefix;
    h *= 0x100000001b3ULL;
    return h;
}

static void build_rehash(lang_build_t *b) {
    size_t cap = b->slot_cap ? b->slot_cap * 2 : 1024;
    uint32_t *slots = xrealloc(NULL, cap * sizeof(*slots));
    for (size_t i = 0; i < cap; i++) slots[i] = UINT32_MAX;
    for (size_t v = 0; v < b->count; v++) {
        uint64_t h = literal_hash(b->literals[v], b->variants[v].len, b->variants[v].prefix);
        size_t j = h & (cap - 1);
        while (slots[j] != UINT32_MAX) j = (j + 1) & (cap - 1);
        slots[j] = (uint32_t)v;
    }
    free(b->slots);
    b->slots = slots;
    b->slot_cap = cap;
}

/* Adds one folded literal of a category; a literal already known gains the
 * category.  A literal listed twice in one category, or in two categories
 * that produce findings (which finding would it be?), is an error. */
static int build_add(load_t *ld, lang_build_t *b, const char *lit, size_t len, bool prefix, uint32_t origin) {
    const origin_t *o = &ld->origins[origin];
    if ((b->count + 1) * 2 > b->slot_cap) build_rehash(b);
    uint64_t h = literal_hash(lit, len, prefix);
    size_t j = h & (b->slot_cap - 1);
    while (b->slots[j] != UINT32_MAX) {
        check_variant_t *v = &b->variants[b->slots[j]];
        if (v->len == len && v->prefix == prefix && memcmp(b->literals[b->slots[j]], lit, len) == 0) {
            const origin_t *first = &ld->origins[v->origin];
            uint16_t bit = (uint16_t)(1u << o->cat);
            bool clash = (v->cats & bit) ||
                         ((bit & FINDING_CATS) && (v->cats & FINDING_CATS)) ||
                         (bit == 1u << CHECK_CAT_NEUTRAL && (v->cats & FINDING_CATS)) ||
                         ((bit & FINDING_CATS) && (v->cats & 1u << CHECK_CAT_NEUTRAL));
            if (clash && v->origin == origin) return 0; /* two spellings of one entry */
            if (clash) {
                size_t shown = len - 1 - !prefix; /* without the boundary spaces */
                snprintf(ld->errstr, ld->errlen, "%s:%u: \"%.*s\" (%s) is already listed at %s:%u (%s)",
                         ld->files[o->file], o->line, (int)shown, lit + 1, cat_names[o->cat], ld->files[first->file],
                         first->line, cat_names[first->cat]);
                return -1;
            }
            v->cats |= bit;
            return 0;
        }
        j = (j + 1) & (b->slot_cap - 1);
    }
    if (b->count == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->variants = xrealloc(b->variants, b->cap * sizeof(*b->variants));
        b->literals = xrealloc(b->literals, b->cap * sizeof(*b->literals));
    }
    char *copy = xrealloc(NULL, len + 1);
    memcpy(copy, lit, len);
    copy[len] = '\0';
    b->literals[b->count] = copy;
    b->variants[b->count] = (check_variant_t){(uint32_t)len, (uint16_t)(1u << o->cat), prefix, origin, 0};
    b->slots[j] = (uint32_t)b->count++;
    return 0;
}

static void build_free(lang_build_t *b) {
    for (size_t i = 0; i < b->count; i++) free(b->literals[i]);
    free(b->literals);
    free(b->variants);
    free(b->slots);
    memset(b, 0, sizeof(*b));
}

/* One slot of an entry: the alternatives at that place. */
typedef struct slot {
    char *alts[32];
    int count;
} slot_t;

/* Expands entry (our small syntax) into literals, folds and adds them. */
static int entry_add(load_t *ld, lang_build_t *b, uint32_t file, int lineno, int cat, const char *entry) {
    const char *path = ld->files[file];
    slot_t slots[32];
    int nslots = 0, rc = -1;
    bool prefix = false;
    size_t elen = strlen(entry);
    if (elen > 0 && entry[elen - 1] == '*') {
        prefix = true;
        elen--;
    }
    char *text = xrealloc(NULL, elen + 1);
    memcpy(text, entry, elen);
    text[elen] = '\0';
    const char *p = text;
    while (*p) {
        if (nslots == 32) {
            snprintf(ld->errstr, ld->errlen, "%s:%d: entry too complex", path, lineno);
            goto done;
        }
        slot_t *s = &slots[nslots];
        s->count = 0;
        if (*p == '(') {
            const char *close = strchr(p, ')');
            if (close == NULL) {
                snprintf(ld->errstr, ld->errlen, "%s:%d: '(' without ')'", path, lineno);
                goto done;
            }
            const char *a = p + 1;
            for (;;) {
                const char *bar = a;
                while (bar < close && *bar != '|') bar++;
                if (s->count == 32 || memchr(a, '(', (size_t)(bar - a))) {
                    snprintf(ld->errstr, ld->errlen, "%s:%d: groups cannot nest and hold at most 32 alternatives",
                             path, lineno);
                    nslots++;
                    goto done;
                }
                s->alts[s->count++] = xstrndup(a, (size_t)(bar - a));
                if (bar == close) break;
                a = bar + 1;
            }
            p = close + 1;
            if (*p == '?') {
                if (s->count < 32) s->alts[s->count++] = xstrdup("");
                p++;
            }
        } else if (*p == '-' && p > text && p[1] != '\0') {
            s->alts[s->count++] = xstrdup("-");
            s->alts[s->count++] = xstrdup(" ");
            s->alts[s->count++] = xstrdup("");
            p++;
        } else {
            const char *q = p;
            while (*q && *q != '(' && !(*q == '-' && q > text && q[1] != '\0')) {
                if (*q == ')' || *q == '|' || *q == '?' || *q == '*') {
                    snprintf(ld->errstr, ld->errlen, "%s:%d: unexpected '%c' (syntax: word(a|b), word(a)?, a-b, stem*)",
                             path, lineno, *q);
                    goto done;
                }
                q++;
            }
            s->alts[s->count++] = xstrndup(p, (size_t)(q - p));
            p = q;
        }
        nslots++;
    }
    size_t total = 1;
    for (int i = 0; i < nslots; i++) {
        total *= (size_t)slots[i].count;
        if (total > VARIANTS_PER_ENTRY_MAX) {
            snprintf(ld->errstr, ld->errlen, "%s:%d: entry expands to more than %d forms", path, lineno,
                     VARIANTS_PER_ENTRY_MAX);
            goto done;
        }
    }
    uint32_t origin = load_origin_add(ld, file, (uint32_t)lineno, cat);
    char *raw = NULL, *folded = NULL;
    size_t raw_cap = 0, folded_cap = 0;
    rc = 0;
    for (size_t v = 0; v < total && rc == 0; v++) {
        size_t raw_len = 0, rest = v;
        for (int i = 0; i < nslots; i++) {
            const char *alt = slots[i].alts[rest % (size_t)slots[i].count];
            rest /= (size_t)slots[i].count;
            size_t al = strlen(alt);
            if (raw_len + al + 1 > raw_cap) {
                raw_cap = (raw_len + al + 1) * 2;
                raw = xrealloc(raw, raw_cap);
            }
            memcpy(raw + raw_len, alt, al);
            raw_len += al;
        }
        size_t folded_len = 0;
        if (check_fold_append(&ld->rules->fold, raw ? raw : "", raw_len, &folded, &folded_len, &folded_cap) != 0) {
            snprintf(ld->errstr, ld->errlen, "%s:%d: invalid UTF-8", path, lineno);
            rc = -1;
            break;
        }
        folded_len = folded_len ? check_norm_scan_form(folded, folded_len) : 0;
        if (folded_len == 0) continue; /* "(a|)" next to nothing: skip the empty form */
        if (prefix && folded_len < 3) {
            snprintf(ld->errstr, ld->errlen, "%s:%d: a stem* needs at least 3 letters", path, lineno);
            rc = -1;
            break;
        }
        /* Word boundaries are part of the literal: " word " (" stem" for a
         * stem*), matched against text whose non-word bytes are spaces. */
        if (folded_len + 3 > folded_cap) {
            folded_cap = folded_len + 3;
            folded = xrealloc(folded, folded_cap);
        }
        memmove(folded + 1, folded, folded_len);
        folded[0] = ' ';
        folded_len++;
        if (!prefix) folded[folded_len++] = ' ';
        folded[folded_len] = '\0';
        rc = build_add(ld, b, folded, folded_len, prefix, origin);
    }
    free(raw);
    free(folded);
done:
    for (int i = 0; i < nslots; i++) {
        for (int a = 0; a < slots[i].count; a++) free(slots[i].alts[a]);
    }
    free(text);
    return rc;
}

typedef struct lexicon_state {
    lang_build_t *build;
    int cat;
} lexicon_state_t;

static int lexicon_line(load_t *ld, uint32_t file, int lineno, char *line, void *opaque) {
    lexicon_state_t *st = opaque;
    return entry_add(ld, st->build, file, lineno, st->cat, line);
}

/* language.conf: lists of words, space-separated. */
typedef struct language_state {
    lang_build_t *build;
    check_lang_t *lang;
} language_state_t;

static int list_fold(load_t *ld, const char *path, int lineno, const char *value, check_words_t *out) {
    char *copy = xstrdup(value), *save = NULL;
    for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        char *folded = NULL;
        size_t flen = 0, fcap = 0;
        if (check_fold_append(&ld->rules->fold, w, strlen(w), &folded, &flen, &fcap) != 0 || flen == 0 || flen > 255) {
            snprintf(ld->errstr, ld->errlen, "%s:%d: bad word '%s'", path, lineno, w);
            free(folded);
            free(copy);
            return -1;
        }
        out->w = xrealloc(out->w, (out->count + 1) * sizeof(*out->w));
        out->len = xrealloc(out->len, (out->count + 1) * sizeof(*out->len));
        out->w[out->count] = folded;
        out->len[out->count++] = (uint8_t)flen;
    }
    free(copy);
    if (out->count > UINT16_MAX) {
        snprintf(ld->errstr, ld->errlen, "%s:%d: more than %d words", path, lineno, UINT16_MAX);
        return -1;
    }
    /* by last byte (a stable insertion sort: the lists are short) */
    for (size_t i = 1; i < out->count; i++) {
        char *w = out->w[i];
        uint8_t l = out->len[i];
        size_t j = i;
        while (j > 0 && (uint8_t)out->w[j - 1][out->len[j - 1] - 1] > (uint8_t)w[l - 1]) {
            out->w[j] = out->w[j - 1];
            out->len[j] = out->len[j - 1];
            j--;
        }
        out->w[j] = w;
        out->len[j] = l;
    }
    size_t e = 0;
    for (int b = 0; b < 256; b++) {
        out->by_last[b] = (uint16_t)e;
        while (e < out->count && (uint8_t)out->w[e][out->len[e] - 1] == b) e++;
    }
    out->by_last[256] = (uint16_t)out->count;
    return 0;
}

static void words_free(check_words_t *words) {
    for (size_t i = 0; i < words->count; i++) free(words->w[i]);
    free(words->w);
    free(words->len);
    memset(words, 0, sizeof(*words));
}

static int language_line(load_t *ld, uint32_t file, int lineno, char *line, void *opaque) {
    language_state_t *st = opaque;
    const char *path = ld->files[file];
    char *key, *value;
    if (split_pair(ld, file, lineno, line, &key, &value) != 0) return -1;
    if (strcmp(key, "noun.strip") == 0) return list_fold(ld, path, lineno, value, &st->lang->strip);
    if (strcmp(key, "noun.endings") == 0) return list_fold(ld, path, lineno, value, &st->lang->endings);
    if (strcmp(key, "noun.vowels") == 0) return list_fold(ld, path, lineno, value, &st->lang->vowels);
    if (strcmp(key, "noun.fleeting") == 0) return list_fold(ld, path, lineno, value, &st->lang->fleeting);
    if (strcmp(key, "outside_relations") == 0) return list_fold(ld, path, lineno, value, &st->lang->outside);
    if (strcmp(key, "container_prepositions") == 0)
        return list_fold(ld, path, lineno, value, &st->lang->container_in);
    for (int cat = CHECK_CAT_ANAPHORA; cat < CHECK_CAT_COUNT; cat++) {
        if (strcmp(key, cat_names[cat]) != 0) continue;
        char *copy = xstrdup(value), *save = NULL;
        int rc = 0;
        for (char *w = strtok_r(copy, " \t", &save); w && rc == 0; w = strtok_r(NULL, " \t", &save))
            rc = entry_add(ld, st->build, file, lineno, cat, w);
        free(copy);
        return rc;
    }
    snprintf(ld->errstr, ld->errlen, "%s:%d: unknown key '%s'", path, lineno, key);
    return -1;
}

/* The token flag of each category that describes tokens (0 for those
 * that produce findings). */
static const uint32_t cat_tok_flag[CHECK_CAT_COUNT] = {
    [CHECK_CAT_RELATION] = CHECK_TOK_RELATION,         [CHECK_CAT_ANAPHORA] = CHECK_TOK_ANAPHORA,
    [CHECK_CAT_CONJUNCTION] = CHECK_TOK_CONJUNCTION,   [CHECK_CAT_YEAR_WORD] = CHECK_TOK_YEAR_WORD,
    [CHECK_CAT_ABBREVIATION] = CHECK_TOK_ABBREVIATION, [CHECK_CAT_CONNECTOR] = CHECK_TOK_CONNECTOR,
    [CHECK_CAT_CONTAINER] = CHECK_TOK_CONTAINER,       [CHECK_CAT_CONTAINER_LINK] = CHECK_TOK_CONTAINER_LINK,
};

static int language_load(load_t *ld, const char *dir, const char *code, check_lang_t *lang) {
    lang_build_t build;
    memset(&build, 0, sizeof(build));
    snprintf(lang->code, sizeof(lang->code), "%s", code);
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/language.conf", dir, code);
    language_state_t lst = {&build, lang};
    int rc = load_lines(ld, path, language_line, &lst);
    for (size_t f = 0; rc == 0 && f < sizeof(lexicon_files) / sizeof(lexicon_files[0]); f++) {
        snprintf(path, sizeof(path), "%s/%s/%s", dir, code, lexicon_files[f].file);
        lexicon_state_t st = {&build, lexicon_files[f].cat};
        rc = load_lines(ld, path, lexicon_line, &st);
    }
    if (rc == 0 && build.count > 0) {
        unsigned *ids = xrealloc(NULL, build.count * sizeof(*ids));
        size_t *lens = xrealloc(NULL, build.count * sizeof(*lens));
        for (size_t i = 0; i < build.count; i++) {
            ids[i] = (unsigned)i;
            lens[i] = build.variants[i].len;
        }
        hs_compile_error_t *err = NULL;
        if (hs_compile_lit_multi((const char *const *)build.literals, NULL, ids, lens, (unsigned)build.count,
                                 HS_MODE_BLOCK, NULL, &lang->db, &err) != HS_SUCCESS) {
            if (err && err->expression >= 0 && (size_t)err->expression < build.count) {
                const origin_t *o = &ld->origins[build.variants[err->expression].origin];
                snprintf(ld->errstr, ld->errlen, "%s:%u: %s", ld->files[o->file], o->line, err->message);
            } else {
                snprintf(ld->errstr, ld->errlen, "%s/%s: compiling the lexicons: %s", dir, code,
                         err ? err->message : "unknown error");
            }
            hs_free_compile_error(err);
            rc = -1;
        }
        free(ids);
        free(lens);
        if (rc == 0) {
            lang->variants = build.variants; /* now owned by lang */
            lang->variant_count = build.count;
            for (size_t v = 0; v < build.count; v++) {
                for (int cat = 0; cat < CHECK_CAT_COUNT; cat++) {
                    if (lang->variants[v].cats & 1u << cat) lang->variants[v].tok_flags |= cat_tok_flag[cat];
                }
            }
            build.variants = NULL;
        }
    }
    build_free(&build);
    return rc;
}

static void language_free(check_lang_t *lang) {
    if (lang->db) hs_free_database(lang->db);
    free(lang->variants);
    words_free(&lang->strip);
    words_free(&lang->endings);
    words_free(&lang->vowels);
    words_free(&lang->fleeting);
    words_free(&lang->outside);
    words_free(&lang->container_in);
    memset(lang, 0, sizeof(*lang));
}

/* ------------------------------------------------------------------ */
/* rules */

check_rules_t *check_rules_load(const char *dir, char *errstr, size_t errlen) {
    static uint64_t serial_next = 1;
    check_rules_t *rules = calloc(1, sizeof(*rules));
    if (rules == NULL) {
        snprintf(errstr, errlen, "out of memory");
        return NULL;
    }
    rules->serial = __atomic_fetch_add(&serial_next, 1, __ATOMIC_RELAXED);
    load_t ld = {rules, NULL, 0, 0, NULL, 0, 0, 0xcbf29ce484222325ULL, errstr, errlen};
    conf_state_t st;
    memset(&st, 0, sizeof(st));
    char path[4096];
    snprintf(path, sizeof(path), "%s/checker.conf", dir);
    if (load_lines(&ld, path, conf_line, &st) != 0) goto fail;
    for (size_t i = 0; i < CONF_KEY_COUNT; i++) {
        if (!st.seen[i]) {
            snprintf(errstr, errlen, "%s: '%s' is not set", path, conf_keys[i].key);
            goto fail;
        }
    }
    for (int r = 0; r < CHECK_RULE_COUNT; r++) {
        if (!rules->rule[r].set) {
            snprintf(errstr, errlen, "%s: 'rule.%s' is not set", path, rule_names[r]);
            goto fail;
        }
    }
    if (!st.strip_marks_seen || !st.languages_seen) {
        snprintf(errstr, errlen, "%s: '%s' is not set", path, st.languages_seen ? "text.strip_marks" : "languages");
        goto fail;
    }
    if (rules->length_min_words > rules->length_max_words) {
        snprintf(errstr, errlen, "%s: length.min_words is above length.max_words", path);
        goto fail;
    }
    if (check_fold_init(&rules->fold, st.strip_marks) != 0) {
        snprintf(errstr, errlen, "out of memory");
        goto fail;
    }
    char *save = NULL;
    for (char *code = strtok_r(st.languages, " \t,", &save); code; code = strtok_r(NULL, " \t,", &save)) {
        if (strlen(code) >= sizeof(rules->langs[0].code) || strchr(code, '/') || code[0] == '.') {
            snprintf(errstr, errlen, "%s: bad language '%s'", path, code);
            goto fail;
        }
        rules->langs = xrealloc(rules->langs, (rules->lang_count + 1) * sizeof(*rules->langs));
        check_lang_t *lang = &rules->langs[rules->lang_count++];
        memset(lang, 0, sizeof(*lang));
        if (language_load(&ld, dir, code, lang) != 0) goto fail;
    }
    snprintf(rules->version, sizeof(rules->version), "%016llx", (unsigned long long)ld.hash);
    load_free(&ld);
    return rules;
fail:
    load_free(&ld);
    check_rules_destroy(rules);
    return NULL;
}

void check_rules_destroy(check_rules_t *rules) {
    if (rules == NULL) return;
    for (size_t i = 0; i < rules->lang_count; i++) language_free(&rules->langs[i]);
    free(rules->langs);
    check_fold_free(&rules->fold);
    free(rules);
}

const char *check_rules_version(const check_rules_t *rules) { return rules->version; }

double check_rules_weight(const check_rules_t *rules, check_severity_t severity) {
    return severity >= CHECK_SEVERITY_MINOR && severity <= CHECK_SEVERITY_CRITICAL ? rules->weight[severity] : 0;
}

const check_lang_t *check_rules_language(const check_rules_t *rules, const char *locale) {
    if (locale == NULL) return &rules->fallback;
    size_t n = strcspn(locale, "-_");
    for (size_t i = 0; i < rules->lang_count; i++) {
        if (strlen(rules->langs[i].code) == n && strncasecmp(rules->langs[i].code, locale, n) == 0)
            return &rules->langs[i];
    }
    return &rules->fallback;
}

bool check_rules_has_language(const check_rules_t *rules, const char *lang) {
    return check_rules_language(rules, lang) != &rules->fallback;
}

/* ------------------------------------------------------------------ */
/* scratch and scanning */

check_scratch_t *check_scratch_new(void) { return calloc(1, sizeof(check_scratch_t)); }

void check_scratch_destroy(check_scratch_t *scratch) {
    if (scratch == NULL) return;
    if (scratch->hs) hs_free_scratch(scratch->hs);
    check_text_free(&scratch->text);
    check_text_free(&scratch->pre);
    free(scratch->buf);
    free(scratch->names);
    free(scratch->comp_idx);
    free(scratch->probes);
    free(scratch->probe_slots);
    free(scratch->probe_tokens);
    free(scratch->cands);
    free(scratch->cand_order);
    free(scratch->cand_name_off);
    free(scratch->mentions);
    free(scratch->name_mention_off);
    free(scratch->name_mention_count);
    free(scratch->sentence_marks);
    free(scratch->keys);
    free(scratch->pre_keys);
    check_result_free(&scratch->pre_result);
    free(scratch->pre_used);
    free(scratch->hash_a);
    free(scratch->hash_b);
    free(scratch->row);
    free(scratch->task_key);
    free(scratch->task_key_next);
    free(scratch);
}

int check_scratch_bind(check_scratch_t *scratch, const check_rules_t *rules, char *errstr, size_t errlen) {
    if (scratch->rules_serial == rules->serial) return 0;
    /* hs_alloc_scratch grows an existing scratch to fit another database,
     * so one scratch serves every language. */
    for (size_t i = 0; i < rules->lang_count; i++) {
        if (rules->langs[i].db == NULL) continue;
        if (hs_alloc_scratch(rules->langs[i].db, &scratch->hs) != HS_SUCCESS) {
            snprintf(errstr, errlen, "allocating the matching scratch failed");
            return -1;
        }
    }
    scratch->rules_serial = rules->serial;
    return 0;
}

typedef struct scan_ctx {
    const check_lang_t *lang;
    check_text_t *t;
} scan_ctx_t;

/* Offsets: scan = " " + norm (non-word bytes blanked) + " ", so norm
 * offset k is scan offset k + 1.  A literal " lit " ending at `to` starts
 * in norm at to - len and ends at to - 2; a stem " lit" runs on to the
 * next space. */
static int scan_on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
                         void *opaque) {
    (void)from;
    (void)flags;
    scan_ctx_t *c = opaque;
    check_text_t *t = c->t;
    const check_variant_t *v = &c->lang->variants[id];
    size_t start = (size_t)to - v->len, end;
    if (v->prefix) {
        size_t p = (size_t)to;
        while (p < t->norm_len + 1 && t->scan[p] != ' ') p++;
        end = p - 1;
    } else {
        end = (size_t)to - 2;
    }
    if (t->hit_count == t->hit_cap) {
        t->hit_cap = t->hit_cap ? t->hit_cap * 2 : 64;
        t->hits = xrealloc(t->hits, t->hit_cap * sizeof(*t->hits));
    }
    check_hit_t *h = &t->hits[t->hit_count++];
    h->nstart = (uint32_t)start;
    h->nend = (uint32_t)end;
    h->variant = id;
    h->cats = v->cats;
    return 0;
}

static int hit_cmp(const void *a, const void *b) {
    const check_hit_t *x = a, *y = b;
    if (x->nstart != y->nstart) return x->nstart < y->nstart ? -1 : 1;
    if (x->nend != y->nend) return x->nend > y->nend ? -1 : 1;
    return 0;
}

int check_lexicon_scan(const check_lang_t *lang, hs_scratch_t *hs, check_text_t *t) {
    t->hit_count = 0;
    if (lang->db == NULL || t->norm_len == 0) return 0;
    /* The scan form, written by text_tokenise: every byte that is not part
     * of a word (and the connectors inside words: don't, eye-catching)
     * became a space; a space goes at each end, so a literal can only match
     * whole words and the engine never stops inside one (" i " instead of
     * every "i"). */
    char *sc = t->scan;
    sc[0] = ' ';
    sc[t->norm_len + 1] = ' ';
    sc[t->norm_len + 2] = '\0';
    scan_ctx_t ctx = {lang, t};
    if (hs_scan(lang->db, sc, (unsigned)t->norm_len + 2, 0, hs, scan_on_match, &ctx) != HS_SUCCESS) return -1;
    /* Matches arrive by end offset, which is almost start order already:
     * an insertion sort beats qsort on that. */
    for (size_t i = 1; i < t->hit_count; i++) {
        check_hit_t h = t->hits[i];
        size_t j = i;
        while (j > 0 && hit_cmp(&t->hits[j - 1], &h) > 0) {
            t->hits[j] = t->hits[j - 1];
            j--;
        }
        t->hits[j] = h;
    }
    /* Hits start and end on tokens (or inside a hyphenated one): the
     * tokens of their first and last bytes are theirs.  Locals: the stores
     * into hits and token flags could otherwise alias them. */
    check_token_t *tokens = t->tokens;
    const size_t token_count = t->token_count, hit_count = t->hit_count;
    if (token_count == 0) { /* no word, so no hit (the scan form is all spaces) */
        t->hit_count = 0;
        return 0;
    }
    const uint32_t *nmap_start = t->nmap_start, *nmap_end = t->nmap_end, *tok_at = t->tok_at;
    const uint32_t last = (uint32_t)token_count - 1;
    const check_variant_t *variants = lang->variants;
    for (size_t i = 0; i < hit_count; i++) {
        check_hit_t *h = &t->hits[i];
        const uint32_t nstart = h->nstart, nend = h->nend;
        h->ostart = nmap_start[nstart];
        h->oend = nmap_end[nend - 1];
        uint32_t a = tok_at[nstart], b = tok_at[nend - 1];
        a = a < last ? a : last;
        b = b < last ? b : last;
        h->tfirst = (uint32_t)a;
        h->tlast = (uint32_t)b;
        /* No branch on the categories (which words are "and" or "it" is
         * the text's affair); a hit covers one token nearly always. */
        uint32_t flags = variants[h->variant].tok_flags;
        for (size_t k = a; k <= b; k++) tokens[k].flags |= flags & ~(uint32_t)CHECK_TOK_ABBREVIATION;
        /* "e.g" covers e and g: the '.' that matters follows g */
        tokens[b].flags |= flags & CHECK_TOK_ABBREVIATION & -(uint32_t)(tokens[b].nend == nend);
    }
    return 0;
}

static int count_on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
                          void *opaque) {
    (void)id;
    (void)from;
    (void)to;
    (void)flags;
    (*(size_t *)opaque)++;
    return 0;
}

int check_rules_scan_raw(const check_rules_t *rules, check_scratch_t *scratch, const char *locale,
                         const char *text, size_t len, size_t *matches) {
    char err[128];
    *matches = 0;
    if (check_scratch_bind(scratch, rules, err, sizeof(err)) != 0) return -1;
    const check_lang_t *lang = check_rules_language(rules, locale);
    if (lang->db == NULL) return 0;
    return hs_scan(lang->db, text, (unsigned)len, 0, scratch->hs, count_on_match, matches) == HS_SUCCESS ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* taxonomy */

static int taxonomy_line(load_t *ld, uint32_t file, int lineno, char *line, void *opaque) {
    check_taxonomy_t *tx = opaque;
    const char *path = ld->files[file];
    char id[64], sev[32], section[64], source[32], extra[8];
    int n = sscanf(line, "%63s %31s %63s %31s %7s", id, sev, section, source, extra);
    check_severity_t severity;
    if (n != 4 || check_severity_parse(sev, &severity) != 0 || strlen(id) >= sizeof(tx->items[0].id) ||
        strlen(section) >= CHECK_SECTION_MAX || (strcmp(source, "checker") != 0 && strcmp(source, "validator") != 0)) {
        snprintf(ld->errstr, ld->errlen,
                 "%s:%d: expected 'category minor|major|critical SECTION checker|validator' (SECTION '-' for none)",
                 path, lineno);
        return -1;
    }
    for (const char *c = id; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) {
            snprintf(ld->errstr, ld->errlen, "%s:%d: category '%s': only a-z, 0-9 and _", path, lineno, id);
            return -1;
        }
    }
    if (check_taxonomy_find(tx, id) != NULL) {
        snprintf(ld->errstr, ld->errlen, "%s:%d: category '%s' listed twice", path, lineno, id);
        return -1;
    }
    check_rule_t rule;
    bool checker = strcmp(source, "checker") == 0;
    if (checker != (check_rule_parse(id, &rule) == 0)) {
        snprintf(ld->errstr, ld->errlen, "%s:%d: '%s' %s", path, lineno, id,
                 checker ? "is not a checker rule id" : "is a checker rule id: its source is 'checker'");
        return -1;
    }
    tx->items = xrealloc(tx->items, (tx->count + 1) * sizeof(*tx->items));
    check_category_t *c = &tx->items[tx->count++];
    copy_str(c->id, sizeof(c->id), id);
    c->severity = severity;
    copy_str(c->section, sizeof(c->section), strcmp(section, "-") == 0 ? "" : section);
    c->checker = checker;
    return 0;
}

int check_taxonomy_load(check_taxonomy_t *taxonomy, const char *path, char *errstr, size_t errlen) {
    memset(taxonomy, 0, sizeof(*taxonomy));
    load_t ld = {NULL, NULL, 0, 0, NULL, 0, 0, 0, errstr, errlen};
    int rc = load_lines(&ld, path, taxonomy_line, taxonomy);
    for (int r = 0; rc == 0 && r < CHECK_RULE_COUNT; r++) {
        if (check_taxonomy_find(taxonomy, rule_names[r]) == NULL) {
            snprintf(errstr, errlen, "%s: checker rule '%s' is missing", path, rule_names[r]);
            rc = -1;
        }
    }
    load_free(&ld);
    if (rc != 0) check_taxonomy_free(taxonomy);
    return rc;
}

void check_taxonomy_free(check_taxonomy_t *taxonomy) {
    free(taxonomy->items);
    taxonomy->items = NULL;
    taxonomy->count = 0;
}

const check_category_t *check_taxonomy_find(const check_taxonomy_t *taxonomy, const char *id) {
    for (size_t i = 0; i < taxonomy->count; i++) {
        if (strcmp(taxonomy->items[i].id, id) == 0) return &taxonomy->items[i];
    }
    return NULL;
}
