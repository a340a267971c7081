/* check_run: the guideline rules (DESIGN.md section 6) over an analysed text
 * (check_text.c) and the task, and the score.  Every rule is a function of
 * the tokens, sentences and lexicon hits; none looks at bytes the analysis
 * did not map, so every span is an original byte span.
 *
 * What a rule deliberately does not count:
 *   - words inside quotation marks: a sign that reads "Delicious" is what
 *     the image shows, not the annotator's judgement;
 *   - words inside a capitalised multiword name ("Good Luck Café", "Our Lady
 *     of Kazan"): the name is a fact;
 *   - words inside the task's own names (main object "lucky cat");
 *   - short all-capital words ("US" is a country, not "us").
 * For an editing case (exam stage 2) the pre-generated text is checked the
 * same way first; a defect found in both texts is reported as
 * unfixed_defect instead of under its own rule, since on an editing exam
 * leaving it is the error. */
#include "check_internal.h"

#include <emmintrin.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define MAIN_GROUP 0u
#define NAME_NONE UINT32_MAX
#define NAME_MAIN (UINT32_MAX - 1)
#define ISSUES_REPORTED_MAX 16

enum { MARK_ABOUT = 1, MARK_REFERENCE = 2 };

typedef struct run {
    const check_rules_t *rules;
    const check_lang_t *lang;
    const check_task_t *task;
    check_scratch_t *sc;
    check_text_t *t;
    check_result_t *out;
    uint64_t **keys;
    size_t *key_cap;
    size_t main_names;     /* names[0, main_names): main object and synonyms */
    uint32_t main_relaxed; /* mention group of the main object by its last word too */
} run_t;

static void *grow(void *p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return p;
    size_t n = *cap ? *cap : 16;
    while (n < need) n *= 2;
    void *q = realloc(p, n * size);
    if (q == NULL) abort();
    *cap = n;
    return q;
}

/* A 64-bit hash of a word of a folded text (CHECK_PAD): sixteen bytes a
 * step, the last step's bytes past the word masked off, so no loop over
 * the word's bytes whose end the branch predictor would have to guess. */
static uint64_t word_hash(const char *s, size_t n) {
    static const uint8_t ones[32] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                     0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    uint64_t h = 0xcbf29ce484222325ULL ^ n;
    for (;;) {
        size_t take = n < 16 ? n : 16;
        __m128i v = _mm_and_si128(_mm_loadu_si128((const __m128i *)s),
                                  _mm_loadu_si128((const __m128i *)(ones + 16 - take)));
        uint64_t lo = (uint64_t)_mm_cvtsi128_si64(v), hi = (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v));
        h = (h ^ lo) * 0x9E3779B97F4A7C15ULL;
        h = (h ^ (h >> 29) ^ hi) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 32;
        if (n <= 16) return h;
        s += 16, n -= 16;
    }
}

/* The identity of a defect, to find it again in the pre-generated text:
 * the rule, the word (a lexicon hit's, in a folded text; NULL for none)
 * and extra (a component), each in its own round.  (Mixing rule and extra
 * in one XOR made component 2's relation_missing the same defect as
 * main_object_not_first.) */
static uint64_t key_of(check_rule_t rule, const char *word, size_t n, uint64_t extra) {
    uint64_t h = ((uint64_t)rule + 1) * 0x9E3779B97F4A7C15ULL;
    if (word != NULL) h = (h ^ word_hash(word, n)) * 0xBF58476D1CE4E5B9ULL;
    h = (h ^ (h >> 31) ^ extra) * 0x94D049BB133111EBULL;
    return h ^ (h >> 29);
}

/* ------------------------------------------------------------------ */
/* messages */

/* Copies at most max bytes of s[0..len) into out as valid UTF-8 on one
 * line, "…" marking a cut at max; bad bytes become '?'. */
static void quote_bytes(const uint8_t *s, size_t len, char *out, size_t outlen, size_t max) {
    size_t o = 0;
    size_t i = 0;
    while (i < len && o + 5 < outlen) {
        if (i >= max) {
            memcpy(out + o, "\xE2\x80\xA6", 3);
            o += 3;
            break;
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            out[o++] = (c < 0x20 || c == 0x7F) ? ' ' : (char)c;
            i++;
            continue;
        }
        /* a span may hold bad bytes between its words: never copy them */
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (l < 0) {
            out[o++] = '?';
            i++;
            continue;
        }
        size_t n = (size_t)l;
        if (o + n + 4 >= outlen) break;
        memcpy(out + o, s + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
}

/* Copies at most max bytes of the original span into out (quote_bytes). */
static void quote_span(const check_text_t *t, uint32_t start, uint32_t end, char *out, size_t outlen, size_t max) {
    quote_bytes((const uint8_t *)t->orig + start, end - start, out, outlen, max);
}

/* Copies a task string for a message, cut on a code point boundary.  Task
 * strings from JSON are valid UTF-8, but a caller may fill a task with any
 * bytes (check.h): the message stays valid UTF-8 all the same. */
static void copy_cut(char *dst, size_t size, const char *src) {
    quote_bytes((const uint8_t *)src, strlen(src), dst, size, SIZE_MAX);
}

/* Whether fmt's only conversions are %s, %u, %zu and %ld. */
static bool plain_conversions(const char *fmt) {
    for (const char *p = strchr(fmt, '%'); p != NULL; p = strchr(p + 1, '%')) {
        p++;
        if (*p == 'z' || *p == 'l') p++;
        if (!(*p == 's' || (*p == 'u' && p[-1] != 'l') || (*p == 'd' && p[-1] == 'l'))) return false;
    }
    return true;
}

/* Appends n bytes of piece at *o, as far as len - 1 allows; *o counts on. */
static inline void join_piece(char *buf, size_t len, size_t *o, const char *piece, size_t n) {
    if (*o < len) memcpy(buf + *o, piece, *o + n < len ? n : len - *o);
    *o += n;
}

/* vsnprintf of a format plain_conversions accepts (nearly every message:
 * words, quoted strings, counts), without vsnprintf's machinery, which
 * costs a few percent of a check.  Returns what vsnprintf returns: the
 * length the whole message would have. */
static size_t join_plain(char *buf, size_t len, const char *fmt, va_list ap) {
    size_t o = 0;
    for (const char *p = fmt;;) {
        const char *pc = strchrnul(p, '%');
        join_piece(buf, len, &o, p, (size_t)(pc - p));
        if (*pc == '\0') break;
        p = pc + 1;
        if (*p == 's') {
            const char *str = va_arg(ap, const char *);
            join_piece(buf, len, &o, str, strlen(str));
            p++;
            continue;
        }
        unsigned long long v;
        bool minus = false;
        if (*p == 'u') {
            v = va_arg(ap, unsigned);
        } else if (*p == 'z') {
            v = va_arg(ap, size_t);
            p++;
        } else { /* %ld */
            long l = va_arg(ap, long);
            minus = l < 0;
            v = minus ? 0ull - (unsigned long long)l : (unsigned long long)l;
            p++;
        }
        p++;
        char digits[24], *d = digits + sizeof(digits);
        do *--d = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        if (minus) *--d = '-';
        join_piece(buf, len, &o, d, (size_t)(digits + sizeof(digits) - d));
    }
    buf[o < len ? o : len - 1] = '\0';
    return o;
}

/* snprintf that never leaves half a UTF-8 sequence at the cut. */
static void message_format(char *buf, size_t len, const char *fmt, va_list ap) {
    int n = plain_conversions(fmt) ? (int)join_plain(buf, len, fmt, ap) : vsnprintf(buf, len, fmt, ap);
    if (n >= 0 && (size_t)n >= len) {
        /* vsnprintf kept len - 1 bytes: the last letter may be cut short.
         * Find where it starts and drop it unless all its bytes are kept. */
        size_t e = len - 1, lead = e;
        while (lead > 0 && ((uint8_t)buf[lead - 1] & 0xC0) == 0x80) lead--;
        if (lead > 0) {
            uint8_t c = (uint8_t)buf[lead - 1];
            size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            if (lead - 1 + need > e) e = lead - 1;
        }
        buf[e] = '\0';
    }
}

static check_finding_t *emit(run_t *r, check_rule_t rule, uint32_t start, uint32_t end, uint64_t key,
                             const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static check_finding_t *emit(run_t *r, check_rule_t rule, uint32_t start, uint32_t end, uint64_t key,
                             const char *fmt, ...) {
    check_result_t *out = r->out;
    out->findings = grow(out->findings, &out->cap, out->count + 1, sizeof(*out->findings));
    *r->keys = grow(*r->keys, r->key_cap, out->count + 1, sizeof(**r->keys));
    check_finding_t *f = &out->findings[out->count];
    (*r->keys)[out->count] = key;
    out->count++;
    const check_rule_conf_t *conf = &r->rules->rule[rule];
    f->rule = rule;
    f->severity = conf->severity;
    memcpy(f->section, conf->section, sizeof(f->section));
    f->start = start;
    f->end = end;
    f->blocking = conf->blocking;
    va_list ap;
    va_start(ap, fmt);
    message_format(f->message, sizeof(f->message), fmt, ap);
    va_end(ap);
    return f;
}

/* ------------------------------------------------------------------ */
/* task names */

static size_t cp_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((uint8_t)s[i] & 0xC0) != 0x80;
    return c;
}

/* The bytes of a 16-byte load of s that are code point starts (not
 * continuation bytes), a bit each. */
static inline unsigned cp_starts16(const char *s) {
    __m128i v = _mm_loadu_si128((const __m128i *)s);
    __m128i cont = _mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8((char)0xC0)), _mm_set1_epi8((char)0x80));
    return ~(unsigned)_mm_movemask_epi8(cont) & 0xFFFF;
}

static inline unsigned low_bits(size_t n) { return n >= 16 ? 0xFFFFu : (1u << n) - 1; }

/* Whether s holds at least two code points: what the stems need, without
 * counting a whole word.  s is in a folded text (CHECK_PAD): a load, not a
 * loop whose end the branch predictor would have to guess. */
static inline bool cp_two(const char *s, size_t n) {
    if (n > 16) return true; /* a code point is at most four bytes */
    unsigned starts = cp_starts16(s) & low_bits(n);
    return (starts & (starts - 1)) != 0; /* two bits or more (no popcount instruction on plain x86-64) */
}

/* memcmp(a, b, n) == 0 for the few bytes of an ending or a word, both in
 * folded texts (CHECK_PAD): sixteen bytes a compare, and one compare for
 * nearly every word. */
static inline bool bytes_eq(const char *a, const char *b, size_t n) {
    for (;;) {
        __m128i x = _mm_loadu_si128((const __m128i *)a), y = _mm_loadu_si128((const __m128i *)b);
        unsigned diff = ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) & low_bits(n);
        if (n <= 16 || diff != 0) return diff == 0;
        a += 16, b += 16, n -= 16;
    }
}

/* The first two bytes of a word (one for a one-byte word): every form of a
 * name word shares them, so comparing them first rejects nearly every
 * token, in Cyrillic too, where one lead byte is shared by half the
 * alphabet. */
static inline uint16_t word_key(const char *s, size_t n) {
    return (uint16_t)((uint8_t)s[0] | (n > 1 ? (uint16_t)((uint8_t)s[1]) << 8 : 0));
}

/* The longest of list that word ends with and that leaves two letters. */
static size_t longest_suffix(const char *word, size_t len, const check_words_t *list) {
    size_t best = 0;
    if (len == 0) return 0;
    uint8_t last = (uint8_t)word[len - 1];
    for (size_t e = list->by_last[last]; e < list->by_last[last + 1]; e++) {
        size_t el = list->len[e];
        if (el <= best || el >= len || !bytes_eq(word + len - el, list->w[e], el))
            continue;
        if (!cp_two(word, len - el)) continue;
        best = el;
    }
    return best;
}

/* Byte length of the code point ending at off. */
static size_t cp_before(const char *s, size_t off) {
    size_t i = off;
    while (i > 0) {
        i--;
        if (((uint8_t)s[i] & 0xC0) != 0x80) break;
    }
    return off - i;
}

/* How many first bytes of a name word every token word_matches accepts for
 * it shares with it: each way of matching compares a prefix of the word
 * (the word, a stem, the token when shorter, and for a fleeting vowel a stem
 * or the word less its last one or two letters), so a token that differs in
 * the first min(its length, this) bytes matches in no way. */
static uint32_t form_prefix(const check_lang_t *lang, const char *w, uint32_t wl, uint32_t stem, uint32_t stem2) {
    uint32_t p = stem < wl ? stem : wl;
    if (stem2 && stem2 < p) p = stem2;
    if (lang->fleeting.count == 0) return p;
    const uint32_t stems[2] = {stem, stem2};
    for (int k = 0; k < 2; k++) { /* fleeting_inserted: a stem less its last letter */
        uint32_t sl = stems[k];
        if (sl == 0) continue;
        uint32_t c2 = (uint32_t)cp_before(w, sl);
        if (sl - c2 < p) p = sl - c2;
    }
    if (wl > 0) { /* fleeting_dropped: the word less its last two letters */
        uint32_t c2 = (uint32_t)cp_before(w, wl);
        uint32_t v = c2 < wl ? (uint32_t)cp_before(w, wl - c2) : 0;
        if (wl - c2 - v < p) p = wl - c2 - v;
    }
    return p;
}

/* The word bits of a folded name of at most sixteen bytes that holds only
 * ASCII letters, digits and spaces (most names), by one load: there the
 * words are the runs of letters and digits, as norm_next_word finds them.
 * False for any other name.  s is in a folded text (CHECK_PAD). */
static bool name_word_bits(const char *s, size_t len, unsigned *bits) {
    if (len > 16) return false;
    __m128i v = _mm_loadu_si128((const __m128i *)s);
    __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('a' - 1)), _mm_cmplt_epi8(v, _mm_set1_epi8('z' + 1)));
    __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
    unsigned word = (unsigned)_mm_movemask_epi8(_mm_or_si128(letter, digit)) & low_bits(len);
    unsigned space = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(' '))) & low_bits(len);
    *bits = word;
    return (word | space) == low_bits(len);
}

/* A word [ws, we) of the name nm, whose folded text is s at off in buf. */
static void name_word_add(const run_t *r, check_name_t *nm, const char *s, size_t off, uint32_t ws, uint32_t we) {
    uint32_t w = nm->words++;
    nm->woff[w] = (uint32_t)off + ws;
    nm->wlen[w] = we - ws;
    nm->wkey[w] = word_key(s + ws, we - ws);
    /* The stems: the word minus its longest strippable ending, and
     * minus its longest ending, each only if two letters are left. */
    nm->wstem[w] = we - ws - (uint32_t)longest_suffix(s + ws, we - ws, &r->lang->strip);
    size_t e2 = longest_suffix(s + ws, we - ws, &r->lang->endings);
    nm->wstem2[w] = e2 ? we - ws - (uint32_t)e2 : 0;
    nm->wpre[w] = form_prefix(r->lang, s + ws, we - ws, nm->wstem[w], nm->wstem2[w]);
}

static uint32_t name_add(run_t *r, const char *text) {
    check_scratch_t *sc = r->sc;
    size_t off = sc->buf_len;
    if (check_fold_append(&r->rules->fold, text, strlen(text), &sc->buf, &sc->buf_len, &sc->buf_cap) != 0) {
        /* invalid UTF-8 in a name: a name that matches nothing */
        sc->buf_len = off;
        sc->buf = grow(sc->buf, &sc->buf_cap, off + 1 + CHECK_PAD, 1);
        memset(sc->buf + off, 0, 1 + CHECK_PAD);
    }
    sc->names = grow(sc->names, &sc->name_cap, sc->name_count + 1, sizeof(*sc->names));
    check_name_t *nm = &sc->names[sc->name_count];
    memset(nm, 0, sizeof(*nm));
    nm->off = (uint32_t)off;
    nm->len = (uint32_t)(sc->buf_len - off);
    sc->buf_len++; /* keep the NUL: names stay separate strings */
    const char *s = sc->buf + off;
    unsigned bits;
    if (name_word_bits(s, nm->len, &bits)) {
        unsigned starts = bits & ~(bits << 1), ends = bits & ~(bits >> 1);
        for (; starts != 0 && nm->words < CHECK_NAME_WORDS; starts &= starts - 1, ends &= ends - 1)
            name_word_add(r, nm, s, off, (uint32_t)__builtin_ctz(starts), (uint32_t)__builtin_ctz(ends) + 1);
    } else {
        size_t pos = 0;
        uint32_t ws, we, wf;
        while (nm->words < CHECK_NAME_WORDS && check_norm_next_word(s, nm->len, &pos, &ws, &we, &wf))
            name_word_add(r, nm, s, off, ws, we);
    }
    return (uint32_t)sc->name_count++;
}

static bool name_equal(const check_scratch_t *sc, uint32_t a, uint32_t b) {
    const check_name_t *x = &sc->names[a], *y = &sc->names[b];
    return x->len == y->len && memcmp(sc->buf + x->off, sc->buf + y->off, x->len) == 0;
}

/* Whether a one-word name is the last word of a longer name: a component
 * "streamers" of the main object "carp streamers" is the main object. */
static bool name_is_head_of(const check_scratch_t *sc, uint32_t a, uint32_t b) {
    const check_name_t *x = &sc->names[a], *y = &sc->names[b];
    if (x->words != 1 || y->words < 2) return false;
    uint32_t w = y->words - 1;
    return x->wlen[0] == y->wlen[w] && memcmp(sc->buf + x->woff[0], sc->buf + y->woff[w], x->wlen[0]) == 0;
}

static void names_prepare(run_t *r) {
    check_scratch_t *sc = r->sc;
    const check_task_t *task = r->task;
    sc->buf_len = 0;
    sc->name_count = 0;
    name_add(r, task->main_object);
    for (size_t i = 0; i < task->synonym_count; i++) {
        if (task->main_object_synonyms[i]) name_add(r, task->main_object_synonyms[i]);
    }
    r->main_names = sc->name_count;
    sc->comp_idx = grow(sc->comp_idx, &sc->comp_idx_cap, task->component_count * 3 + 1, sizeof(*sc->comp_idx));
    for (size_t c = 0; c < task->component_count; c++) {
        const check_component_t *comp = &task->components[c];
        uint32_t *idx = &sc->comp_idx[c * 3];
        uint32_t nm = name_add(r, comp->name ? comp->name : "");
        idx[0] = nm;
        for (size_t m = 0; m < r->main_names; m++) {
            if (name_equal(sc, nm, (uint32_t)m) || name_is_head_of(sc, nm, (uint32_t)m)) idx[0] = NAME_MAIN;
        }
        idx[1] = NAME_NONE;
        if (comp->target && comp->target[0]) {
            uint32_t tg = name_add(r, comp->target);
            idx[1] = tg;
            for (size_t m = 0; m < r->main_names; m++) {
                if (name_equal(sc, tg, (uint32_t)m)) idx[1] = NAME_MAIN;
            }
        }
        idx[2] = comp->relation && comp->relation[0] ? name_add(r, comp->relation) : NAME_NONE;
    }
}

/* The task's fields that the names, probes and the pre-generated text's
 * analysis depend on, each string as its length and bytes (NULL as a length
 * of its own), into scratch->task_key_next. */
static void key_put(check_scratch_t *sc, const void *p, size_t n) {
    sc->task_key_next = grow(sc->task_key_next, &sc->task_key_next_cap, sc->task_key_next_len + n, 1);
    memcpy(sc->task_key_next + sc->task_key_next_len, p, n);
    sc->task_key_next_len += n;
}

static void key_str(check_scratch_t *sc, const char *s) {
    size_t n = s ? strlen(s) : SIZE_MAX;
    key_put(sc, &n, sizeof(n));
    if (s) key_put(sc, s, n);
}

/* Whether the scratch holds what check_run prepares for this task under
 * these rules; when not, it now stands for this task, and the caller
 * prepares it. */
static bool task_prepared(check_scratch_t *sc, const check_task_t *task, const check_rules_t *rules) {
    sc->task_key_next_len = 0;
    key_put(sc, &task->kind, sizeof(task->kind));
    key_str(sc, task->locale);
    key_str(sc, task->main_object);
    key_put(sc, &task->synonym_count, sizeof(task->synonym_count));
    for (size_t i = 0; i < task->synonym_count; i++) key_str(sc, task->main_object_synonyms[i]);
    key_put(sc, &task->component_count, sizeof(task->component_count));
    for (size_t c = 0; c < task->component_count; c++) {
        key_str(sc, task->components[c].name);
        key_str(sc, task->components[c].relation);
        key_str(sc, task->components[c].target);
    }
    key_str(sc, task->kind == CHECK_KIND_EXAM_STAGE2 ? task->pregenerated : NULL);
    if (sc->task_key_len > 0 && sc->task_rules_serial == rules->serial && sc->task_key_len == sc->task_key_next_len &&
        memcmp(sc->task_key, sc->task_key_next, sc->task_key_len) == 0)
        return true;
    char *k = sc->task_key;
    size_t cap = sc->task_key_cap;
    sc->task_key = sc->task_key_next;
    sc->task_key_cap = sc->task_key_next_cap;
    sc->task_key_len = sc->task_key_next_len;
    sc->task_key_next = k;
    sc->task_key_next_cap = cap;
    sc->task_rules_serial = rules->serial;
    sc->pre_ready = false;
    return false;
}

static bool in_list(const check_words_t *list, const char *s, size_t n) {
    if (n == 0) return false;
    uint8_t last = (uint8_t)s[n - 1];
    for (size_t i = list->by_last[last]; i < list->by_last[last + 1]; i++) {
        if (list->len[i] == n && bytes_eq(list->w[i], s, n)) return true;
    }
    return false;
}

static bool is_ending(const check_lang_t *lang, const char *s, size_t n) {
    return n > 0 && (in_list(&lang->endings, s, n) || in_list(&lang->strip, s, n));
}

static bool is_consonant(const check_lang_t *lang, const char *s, size_t n) {
    if (n == 1 && !(((uint8_t)*s | 32) >= 'a' && ((uint8_t)*s | 32) <= 'z')) return false;
    return !in_list(&lang->vowels, s, n);
}

/* Russian genitive plural: a vowel between the stem's last two consonants
 * (кукл- -> кукол, ложк- -> ложек). */
static bool fleeting_inserted(const check_lang_t *lang, const char *tok, size_t tl, const char *stem, size_t sl) {
    if (sl == 0) return false;
    /* the token must be the stem plus one vowel long: most are not */
    bool fits = false;
    for (size_t v = 0; v < lang->fleeting.count && !fits; v++) fits = tl == sl + lang->fleeting.len[v];
    if (!fits) return false;
    size_t c2 = cp_before(stem, sl);
    if (c2 >= sl) return false;
    size_t c1 = cp_before(stem, sl - c2);
    if (!is_consonant(lang, stem + sl - c2, c2) || !is_consonant(lang, stem + sl - c2 - c1, c1)) return false;
    for (size_t v = 0; v < lang->fleeting.count; v++) {
        size_t vl = lang->fleeting.len[v];
        if (tl != sl + vl) continue;
        if (bytes_eq(tok, stem, sl - c2) && bytes_eq(tok + sl - c2, lang->fleeting.w[v], vl) &&
            bytes_eq(tok + sl - c2 + vl, stem + sl - c2, c2))
            return true;
    }
    return false;
}

/* The reverse: a vowel before the word's last consonant drops in the other
 * cases (платок -> платка, кусок -> куска). */
static bool fleeting_dropped(const check_lang_t *lang, const char *tok, size_t tl, const char *w, size_t wl) {
    size_t c2 = cp_before(w, wl);
    if (c2 >= wl) return false;
    size_t v = cp_before(w, wl - c2);
    if (v + c2 >= wl) return false;
    size_t head = wl - c2 - v;
    if (tl <= head + c2 || !bytes_eq(tok, w, head) || !bytes_eq(tok + head, w + wl - c2, c2)) return false;
    if (!in_list(&lang->fleeting, w + wl - c2 - v, v)) return false;
    if (!is_consonant(lang, w + wl - c2, c2)) return false;
    return is_ending(lang, tok + head + c2, tl - head - c2);
}

/* Whether token text is a form of a name word (see check_lang_t). */
static bool word_matches(const check_lang_t *lang, const char *tok, size_t tl, const char *w, uint32_t wl,
                         uint32_t stem, uint32_t stem2, uint32_t pre) {
    /* one compare rejects nearly every token that matches in no way */
    if (!bytes_eq(tok, w, tl < pre ? tl : pre)) return false;
    if (tl == wl && bytes_eq(tok, w, wl)) return true;
    if (!cp_two(w, wl)) return false;
    if (tl > stem && bytes_eq(tok, w, stem) && is_ending(lang, tok + stem, tl - stem)) return true;
    if (stem2 && tl > stem2 && bytes_eq(tok, w, stem2) && is_ending(lang, tok + stem2, tl - stem2)) return true;
    /* the word without one of its endings: "feathers" -> "feather", "shoes" -> "shoe" */
    if (tl < wl && bytes_eq(tok, w, tl) && cp_two(tok, tl) && in_list(&lang->endings, w + tl, wl - tl)) return true;
    if (lang->fleeting.count == 0) return false;
    return fleeting_inserted(lang, tok, tl, w, stem) || (stem2 && fleeting_inserted(lang, tok, tl, w, stem2)) ||
           fleeting_dropped(lang, tok, tl, w, wl);
}

/* A token matches a name word as a whole or, when hyphenated, by one of its
 * parts ("куполов-луковиц", "rice-bowl"). */
static bool token_matches(const run_t *r, const check_text_t *t, const check_token_t *tok, const check_name_t *nm,
                          uint32_t w) {
    const char *s = t->norm + tok->nstart;
    size_t n = tok->nend - tok->nstart;
    const char *word = r->sc->buf + nm->woff[w];
    if (word_key(s, n) == nm->wkey[w] &&
        word_matches(r->lang, s, n, word, nm->wlen[w], nm->wstem[w], nm->wstem2[w], nm->wpre[w]))
        return true;
    if (!(tok->flags & CHECK_TOK_HYPHEN)) return false;
    for (size_t a = 0; a < n;) {
        const char *dash = memchr(s + a, '-', n - a);
        size_t b = dash ? (size_t)(dash - s) : n;
        if (b < n || a > 0) {
            if (word_matches(r->lang, s + a, b - a, word, nm->wlen[w], nm->wstem[w], nm->wstem2[w], nm->wpre[w]))
                return true;
        }
        a = b + 1;
    }
    return false;
}

/* Whether the name's words w0..w1-1 match the tokens from i on. */
static bool name_at(const run_t *r, const check_text_t *t, const check_name_t *nm, uint32_t w0, uint32_t w1,
                    size_t i) {
    if (w1 <= w0 || i + (w1 - w0) > t->token_count) return false;
    uint32_t sentence = t->tokens[i].sentence;
    for (uint32_t w = w0; w < w1; w++) {
        const check_token_t *tok = &t->tokens[i + (w - w0)];
        if (tok->sentence != sentence || !token_matches(r, t, tok, nm, w)) return false;
    }
    return true;
}

static void mention_push(check_scratch_t *sc, uint32_t first, uint32_t last) {
    sc->mentions = grow(sc->mentions, &sc->mention_cap, sc->mention_count + 1, sizeof(*sc->mentions));
    sc->mentions[sc->mention_count++] = (check_span_t){first, last};
}

static inline unsigned probe_hash(uint16_t key) { return (unsigned)key * 40503u >> 6; }

static void probe_add(check_scratch_t *sc, uint32_t name, uint8_t word, uint8_t kind) {
    sc->probes = grow(sc->probes, &sc->probe_cap, sc->probe_count + 1, sizeof(*sc->probes));
    const check_name_t *nm = &sc->names[name];
    /* a relation's word alone; a name from its first word (whole) or its
     * last (head) to its end */
    uint8_t w0 = kind == CHECK_PROBE_WHOLE ? 0 : word;
    uint8_t w1 = kind == CHECK_PROBE_RELATION ? (uint8_t)(word + 1) : (uint8_t)nm->words;
    sc->probes[sc->probe_count++] = (check_probe_t){nm->wkey[word], kind, word, w0, w1, name, 0};
}

/* The slot of key in the probe table: its own, or the free one where the
 * search ends. */
static inline check_probe_slot_t *probe_slot(const check_scratch_t *sc, uint16_t key) {
    size_t mask = sc->probe_slot_cap - 1, h = probe_hash(key) & mask;
    while (sc->probe_slots[h].key != 0 && sc->probe_slots[h].key != key) h = (h + 1) & mask;
    return &sc->probe_slots[h];
}

static int probe_cmp(const void *a, const void *b) {
    const check_probe_t *x = a, *y = b;
    return x->key != y->key ? (x->key < y->key ? -1 : 1) : (x->name < y->name ? -1 : x->name > y->name);
}

/* The probes of the task's names: each name by its first word (whole) and
 * its last (head), each longer word of a relation on its own. */
static void probes_prepare(run_t *r) {
    check_scratch_t *sc = r->sc;
    /* the previous task's keys out of the bitmap and the table */
    for (size_t p = 0; p < sc->probe_count; p++) {
        sc->probe_keys[sc->probes[p].key >> 6] = 0;
        sc->probe_slots[sc->probes[p].slot].key = 0;
    }
    sc->probe_count = 0;
    for (uint32_t n = 0; n < sc->name_count; n++) {
        const check_name_t *nm = &sc->names[n];
        if (nm->words == 0) continue;
        bool relation = false;
        for (size_t c = 0; c < r->task->component_count; c++) relation |= sc->comp_idx[c * 3 + 2] == n;
        if (relation) {
            /* Only the longer words: "the" and "of" of "in the centre of"
             * relate nothing (short relation words are in the lexicon).
             * A language without lexicons has only the task's words:
             * "posé sur une assiette". */
            for (uint32_t w = 0; w < nm->words; w++) {
                if (r->lang->db == NULL || cp_count(sc->buf + nm->woff[w], nm->wlen[w]) >= 4)
                    probe_add(sc, n, (uint8_t)w, CHECK_PROBE_RELATION);
            }
            continue;
        }
        probe_add(sc, n, 0, CHECK_PROBE_WHOLE);
        if (nm->words > 1) probe_add(sc, n, (uint8_t)(nm->words - 1), CHECK_PROBE_HEAD);
    }
    /* a few dozen probes at most: insertion sort, no qsort call */
    for (size_t i = 1; i < sc->probe_count; i++) {
        check_probe_t p = sc->probes[i];
        size_t j = i;
        while (j > 0 && probe_cmp(&sc->probes[j - 1], &p) > 0) {
            sc->probes[j] = sc->probes[j - 1];
            j--;
        }
        sc->probes[j] = p;
    }
    size_t slots = 256;
    while (slots < 4 * sc->probe_count) slots *= 2;
    if (slots > sc->probe_slot_cap) {
        free(sc->probe_slots);
        sc->probe_slots = calloc(slots, sizeof(*sc->probe_slots));
        if (sc->probe_slots == NULL) abort();
        sc->probe_slot_cap = slots;
    }
    for (size_t p = 0; p < sc->probe_count; p++) {
        check_probe_t *pr = &sc->probes[p];
        check_probe_slot_t *slot = probe_slot(sc, pr->key);
        if (slot->key == 0) *slot = (check_probe_slot_t){pr->key, (uint32_t)p, 0};
        slot->count++;
        pr->slot = (uint32_t)(slot - sc->probe_slots);
        sc->probe_keys[pr->key >> 6] |= 1ull << (pr->key & 63);
    }
}

/* Where a probe's word matches, the candidate mention (or the relation
 * flag).  First, without a branch a token, the tokens that may start a
 * name: those whose key has probes (probe_keys), and the hyphenated ones,
 * any part of which may match any probe. */
static void candidates_find(run_t *r) {
    check_scratch_t *sc = r->sc;
    check_text_t *t = r->t;
    sc->cand_count = 0;
    sc->probe_tokens = grow(sc->probe_tokens, &sc->probe_token_cap, t->token_count, sizeof(*sc->probe_tokens));
    uint32_t *keep = sc->probe_tokens;
    size_t kept = 0;
    for (size_t i = 0; i < t->token_count; i++) {
        const check_token_t *tok = &t->tokens[i];
        keep[kept] = (uint32_t)i;
        kept += (sc->probe_keys[tok->key >> 6] >> (tok->key & 63) & 1) | ((tok->flags & CHECK_TOK_HYPHEN) != 0);
    }
    for (size_t k = 0; k < kept; k++) {
        size_t i = keep[k];
        check_token_t *tok = &t->tokens[i];
        size_t lo = 0, hi = sc->probe_count;
        if (!(tok->flags & CHECK_TOK_HYPHEN)) {
            const check_probe_slot_t *slot = probe_slot(sc, tok->key);
            lo = slot->first;
            hi = lo + slot->count;
        }
        for (size_t p = lo; p < hi; p++) {
            const check_probe_t *pr = &sc->probes[p];
            const check_name_t *nm = &sc->names[pr->name];
            if (!name_at(r, t, nm, pr->w0, pr->w1, i)) continue;
            if (pr->kind == CHECK_PROBE_RELATION) {
                tok->flags |= CHECK_TOK_TASK_RELATION;
                continue;
            }
            sc->cands = grow(sc->cands, &sc->cand_cap, sc->cand_count + 1, sizeof(*sc->cands));
            sc->cands[sc->cand_count++] = (check_candidate_t){pr->name, (uint32_t)i, (uint32_t)(pr->w1 - pr->w0), pr->kind};
        }
    }
}

/* Group g: among the candidates order[0, count) (or all of them when order
 * is NULL), in token order, those of names[from, to) of the given kinds,
 * the longest at each place, none overlapping.  Returns how many. */
static size_t group_build(run_t *r, uint32_t g, const uint32_t *order, size_t count, uint32_t from, uint32_t to,
                          unsigned kinds) {
    check_scratch_t *sc = r->sc;
    sc->mention_count = sc->name_mention_off[g] = (uint32_t)sc->mention_count;
    size_t free_from = 0;
    for (size_t c = 0; c < count; c++) {
        const check_candidate_t *cd = &sc->cands[order ? order[c] : c];
        /* one test, not four short-circuit branches: most candidates are
         * another group's */
        if (!((cd->name - from < to - from) & ((cd->kind & kinds) != 0) & (cd->token >= free_from))) continue;
        uint32_t best = cd->len;
        for (size_t d = c + 1; d < count; d++) {
            const check_candidate_t *o = &sc->cands[order ? order[d] : d];
            if (o->token != cd->token) break;
            if ((o->name - from < to - from) & ((o->kind & kinds) != 0) & (o->len > best)) best = o->len;
        }
        mention_push(sc, cd->token, cd->token + best - 1);
        free_from = cd->token + best;
    }
    sc->name_mention_count[g] = (uint32_t)(sc->mention_count - sc->name_mention_off[g]);
    return sc->name_mention_count[g];
}

/* The candidates by name (cand_order, cand_name_off), each name's in token
 * order, so that a component's group reads its own alone. */
static void candidates_by_name(check_scratch_t *sc) {
    sc->cand_name_off = grow(sc->cand_name_off, &sc->cand_name_off_cap, sc->name_count + 2, sizeof(uint32_t));
    sc->cand_order = grow(sc->cand_order, &sc->cand_order_cap, sc->cand_count + 1, sizeof(uint32_t));
    uint32_t *off = sc->cand_name_off;
    memset(off, 0, (sc->name_count + 2) * sizeof(uint32_t));
    for (size_t c = 0; c < sc->cand_count; c++) off[sc->cands[c].name + 2]++;
    for (size_t n = 2; n < sc->name_count + 2; n++) off[n] += off[n - 1];
    /* off[n + 1] is now where name n starts; filling moves it to its end */
    for (size_t c = 0; c < sc->cand_count; c++) sc->cand_order[off[sc->cands[c].name + 1]++] = (uint32_t)c;
}

/* A component name or target: whole, and by its last word where it is not
 * whole ("a fried egg rests on the rice ... next to the egg": a name said in
 * full once is then shortened to its head).  From the name's own
 * candidates alone. */
static void group_build_component(run_t *r, uint32_t n) {
    const uint32_t *off = r->sc->cand_name_off;
    group_build(r, n, r->sc->cand_order + off[n], off[n + 1] - off[n], n, n + 1,
                CHECK_PROBE_WHOLE | CHECK_PROBE_HEAD);
}

/* Groups: MAIN_GROUP (the main object's names, whole), one per component
 * name or target (by its name index), and main_relaxed (the main object
 * also by its last word, "jollof rice" ... "beside the rice": what
 * relations to it are looked for with). */
static void mentions_all(run_t *r) {
    check_scratch_t *sc = r->sc;
    sc->mention_count = 0;
    size_t groups = sc->name_count + 1;
    size_t cap = sc->name_mention_cap;
    sc->name_mention_off = grow(sc->name_mention_off, &cap, groups, sizeof(uint32_t));
    cap = sc->name_mention_cap;
    sc->name_mention_count = grow(sc->name_mention_count, &cap, groups, sizeof(uint32_t));
    sc->name_mention_cap = cap;
    for (size_t g = 0; g < groups; g++) sc->name_mention_off[g] = sc->name_mention_count[g] = 0;
    r->main_relaxed = (uint32_t)sc->name_count;
    candidates_find(r);
    candidates_by_name(sc);
    group_build(r, MAIN_GROUP, NULL, sc->cand_count, 0, (uint32_t)r->main_names, CHECK_PROBE_WHOLE);
    group_build(r, r->main_relaxed, NULL, sc->cand_count, 0, (uint32_t)r->main_names,
                CHECK_PROBE_WHOLE | CHECK_PROBE_HEAD);
    for (size_t c = 0; c < r->task->component_count; c++) {
        const uint32_t *idx = &sc->comp_idx[c * 3];
        if (idx[0] != NAME_MAIN) group_build_component(r, idx[0]);
        if (idx[1] != NAME_NONE && idx[1] != NAME_MAIN) group_build_component(r, idx[1]);
    }
}

static const check_span_t *group_mentions(const run_t *r, uint32_t g, size_t *count) {
    *count = r->sc->name_mention_count[g];
    /* No mention at all leaves the array unallocated on a fresh scratch:
     * NULL + 0 is undefined, so no pointer for an empty group. */
    return *count ? r->sc->mentions + r->sc->name_mention_off[g] : NULL;
}

/* Whether tokens [a, b] overlap a mention of the main object or a component. */
static bool overlaps_task_name(const run_t *r, uint32_t a, uint32_t b) {
    const check_scratch_t *sc = r->sc;
    for (size_t i = 0; i < sc->mention_count; i++) {
        if (sc->mentions[i].start <= b && a <= sc->mentions[i].end) return true;
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* proper names */

/* Whether the gap after token k is only what joins the words of a name:
 * spaces, hyphens, apostrophes, '&'. */
static bool gap_joins_name(const check_text_t *t, size_t k) {
    const uint8_t *s = (const uint8_t *)t->orig;
    for (size_t j = t->tokens[k].oend; j < t->tokens[k + 1].ostart; j++) {
        uint8_t c = s[j];
        if (c == ' ' || c == '-' || c == '\'' || c == '&') continue;
        if (c == 0xC2 && j + 1 < t->tokens[k + 1].ostart && s[j + 1] == 0xA0) { /* no-break space */
            j++;
            continue;
        }
        if (c == 0xE2 && j + 2 < t->tokens[k + 1].ostart && s[j + 1] == 0x80 && s[j + 2] == 0x99) { /* ’ */
            j += 2;
            continue;
        }
        return false;
    }
    return true;
}

static bool tok_cap(const check_text_t *t, size_t k) { return t->tokens[k].flags & CHECK_TOK_CAP; }

static bool tokens_equal(const check_text_t *t, size_t a, size_t b) {
    const check_token_t *x = &t->tokens[a], *y = &t->tokens[b];
    return x->nend - x->nstart == y->nend - y->nstart &&
           memcmp(t->norm + x->nstart, t->norm + y->nstart, x->nend - x->nstart) == 0;
}

/* A lexicon hit is part of a proper name when it sits in a run of
 * capitalised words ("the Good Luck Café", "Our Lady of Kazan").  At the
 * start of a sentence every first word is capitalised, so there the run
 * needs two more capitalised words, or must occur capitalised elsewhere in
 * the text: "Delicious Thai curry" is judgement, "Grand Bazaar ... the
 * Grand Bazaar" is a name. */
static bool hit_in_name(const run_t *r, const check_hit_t *h) {
    const check_text_t *t = r->t;
    size_t a = h->tfirst, b = h->tlast;
    for (size_t k = a; k <= b; k++) {
        if (!tok_cap(t, k) && !(k > a && (t->tokens[k].flags & CHECK_TOK_CONNECTOR))) return false;
    }
    const check_sentence_t *sen = &t->sentences[t->tokens[a].sentence];
    size_t end = b; /* last token of the run */
    for (;;) {
        /* the next capitalised word, across at most two connectors ("of the") */
        size_t k = end + 1, c = 0;
        while (k < sen->last && c < 2 && (t->tokens[k].flags & CHECK_TOK_CONNECTOR) && !tok_cap(t, k) &&
               gap_joins_name(t, k - 1))
            k++, c++;
        if (k >= sen->last || !tok_cap(t, k) || !gap_joins_name(t, k - 1)) break;
        end = k;
    }
    size_t start = a; /* first token of the run */
    for (;;) {
        size_t k = start, c = 0;
        while (k > sen->first + 1 && c < 2 && (t->tokens[k - 1].flags & CHECK_TOK_CONNECTOR) && !tok_cap(t, k - 1) &&
               gap_joins_name(t, k - 1))
            k--, c++;
        if (k <= sen->first || !tok_cap(t, k - 1) || !gap_joins_name(t, k - 1)) break;
        start = k - 1;
    }
    size_t caps = 0;
    for (size_t k = start; k <= end; k++) caps += tok_cap(t, k);
    if (start > sen->first) return caps >= 2;
    if (caps >= 3 || (caps >= 2 && a > start)) return true;
    if (caps < 2) return false;
    /* Sentence-initial pair: a name if the same capitalised words occur
     * where a capital means something. */
    size_t n = end - start + 1;
    for (size_t i = 0; i + n <= t->token_count; i++) {
        if (i == start || t->sentences[t->tokens[i].sentence].first == i) continue;
        size_t k = 0;
        while (k < n && tokens_equal(t, start + k, i + k) && tok_cap(t, i + k) == tok_cap(t, start + k)) k++;
        if (k == n) return true;
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* the rules */

static void rule_invalid_text(run_t *r) {
    const check_text_t *t = r->t;
    size_t n = t->issue_count < ISSUES_REPORTED_MAX ? t->issue_count : ISSUES_REPORTED_MAX;
    for (size_t i = 0; i < n; i++) {
        const check_issue_t *is = &t->issues[i];
        char q[80];
        if (is->kind == CHECK_ISSUE_MARKUP) {
            quote_span(t, is->start, is->end, q, sizeof(q), 40);
            emit(r, CHECK_RULE_INVALID_TEXT, is->start, is->end, key_of(CHECK_RULE_INVALID_TEXT, NULL, 0, 0),
                 "%s \"%s\"", is->what, q);
        } else if (is->kind == CHECK_ISSUE_INVALID_UTF8 && is->what[0] == 'i') {
            emit(r, CHECK_RULE_INVALID_TEXT, is->start, is->end, key_of(CHECK_RULE_INVALID_TEXT, NULL, 0, 0),
                 "%s (%u byte%s)", is->what, is->end - is->start, is->end - is->start == 1 ? "" : "s");
        } else {
            /* Name the first code point: the characters themselves are
             * what the reader cannot see. */
            utf8proc_int32_t cp = -1;
            utf8proc_iterate((const uint8_t *)t->orig + is->start, is->end - is->start, &cp);
            emit(r, CHECK_RULE_INVALID_TEXT, is->start, is->end, key_of(CHECK_RULE_INVALID_TEXT, NULL, 0, 0),
                 "%s U+%04X", is->what, (unsigned)cp);
        }
    }
    if (t->issue_count > n) {
        emit(r, CHECK_RULE_INVALID_TEXT, t->issues[n].start, t->issues[t->issue_count - 1].end,
             key_of(CHECK_RULE_INVALID_TEXT, NULL, 0, 0), "%zu more problems of form", t->issue_count - n);
    }
}

/* Whether original bytes overlap markup ("<i>" holds no first person): the
 * markup is its own finding. */
static bool in_markup(const check_text_t *t, uint32_t start, uint32_t end) {
    for (size_t i = 0; i < t->issue_count && t->issues[i].start < end; i++) {
        if (t->issues[i].kind == CHECK_ISSUE_MARKUP && t->issues[i].end > start) return true;
    }
    return false;
}

/* Lexicon findings (subjective, speculation, viewer) and reference marks on
 * sentences. */
static void rule_lexicon(run_t *r) {
    check_text_t *t = r->t;
    uint8_t *marks = r->sc->sentence_marks;
    uint32_t last_end[4] = {0, 0, 0, 0};
    uint32_t neutral_end = 0, spec_end = 0;
    static const check_rule_t cat_rule[3] = {CHECK_RULE_SUBJECTIVE_LANGUAGE, CHECK_RULE_SPECULATION,
                                             CHECK_RULE_VIEWER_ADDRESS};
    static const char *const cat_message[3] = {
        "evaluative word \"%s\"",
        "speculation or hedging \"%s\"",
        "addresses the viewer or speaks in the first person: \"%s\"",
    };
    for (size_t i = 0; i < t->hit_count; i++) {
        const check_hit_t *h = &t->hits[i];
        if ((h->cats & 1u << CHECK_CAT_NEUTRAL) && h->nend > neutral_end) neutral_end = h->nend;
        if ((h->cats & 1u << CHECK_CAT_SPECULATION) && h->nend > spec_end) spec_end = h->nend;
        /* the hit's categories among the four, in order: most hits (relation
         * words, "it", "and") have none of them */
        _Static_assert(CHECK_CAT_SUBJECTIVE == 0, "the four categories are the low bits");
        for (unsigned cats = h->cats & ((1u << (CHECK_CAT_REFERENCE + 1)) - 1); cats != 0; cats &= cats - 1) {
            int cat = __builtin_ctz(cats);
            if (h->nend <= last_end[cat]) continue; /* inside a longer hit of the same list */
            last_end[cat] = h->nend;
            if (h->nend <= neutral_end) continue;
            if (cat == CHECK_CAT_VIEWER && h->nend <= spec_end) continue; /* "I think" is speculation */
            if (check_text_quoted(t, h->ostart, h->oend) || in_markup(t, h->ostart, h->oend)) continue;
            if (overlaps_task_name(r, h->tfirst, h->tlast)) continue;
            if (hit_in_name(r, h)) continue;
            size_t letters = cp_count(t->orig + h->ostart, h->oend - h->ostart);
            if (letters >= 2 && letters <= 3 && check_text_all_upper(t->orig + h->ostart, h->oend - h->ostart))
                continue;
            if (cat == CHECK_CAT_REFERENCE) {
                marks[t->tokens[h->tfirst].sentence] |= MARK_REFERENCE;
                continue;
            }
            char q[96];
            quote_span(t, h->ostart, h->oend, q, sizeof(q), 60);
            check_rule_t rule = cat_rule[cat];
            emit(r, rule, h->ostart, h->oend, key_of(rule, t->norm + h->nstart, h->nend - h->nstart, 0),
                 cat_message[cat], q);
        }
    }
    /* "in 1869": a year after a year word is a history cue. */
    if (!(t->token_flags_any & CHECK_TOK_DIGIT)) return; /* no number at all: most texts */
    for (size_t k = 1; k < t->token_count; k++) {
        const check_token_t *tok = &t->tokens[k];
        if (!(tok->flags & CHECK_TOK_DIGIT) || tok->nend - tok->nstart != 4) continue;
        if (!(t->tokens[k - 1].flags & CHECK_TOK_YEAR_WORD) || t->tokens[k - 1].sentence != tok->sentence) continue;
        const char *d = t->norm + tok->nstart;
        bool digits = true;
        for (int j = 0; j < 4; j++) digits &= d[j] >= '0' && d[j] <= '9';
        int year = digits ? atoi(d) : 0;
        if (year >= 1000 && year <= 2099 && !check_text_quoted(t, tok->ostart, tok->oend))
            marks[tok->sentence] |= MARK_REFERENCE;
    }
}

/* The main object as its findings quote it, in buf. */
static const char *main_name(const run_t *r, char *buf, size_t size) {
    copy_cut(buf, size, r->task->main_object);
    return buf;
}

static void rule_main_object(run_t *r) {
    const check_text_t *t = r->t;
    uint8_t *marks = r->sc->sentence_marks;
    size_t n;
    const check_span_t *m = group_mentions(r, MAIN_GROUP, &n);
    char name[96]; /* main_name fills it for a finding */
    if (n == 0) {
        emit(r, CHECK_RULE_MAIN_OBJECT_MISSING, 0, 0, key_of(CHECK_RULE_MAIN_OBJECT_MISSING, NULL, 0, 0),
             "the main object \"%s\" is not named (nor any of its synonyms)", main_name(r, name, sizeof(name)));
        return;
    }
    uint32_t first_sentence = t->tokens[m[0].start].sentence;
    if (first_sentence > 0) {
        const check_sentence_t *s0 = &t->sentences[0];
        emit(r, CHECK_RULE_MAIN_OBJECT_NOT_FIRST, s0->ostart, s0->oend,
             key_of(CHECK_RULE_MAIN_OBJECT_NOT_FIRST, NULL, 0, 0),
             "the first sentence does not name the main object \"%s\" (first named in sentence %u)",
             main_name(r, name, sizeof(name)),
             first_sentence + 1);
    }
    /* Which sentences are about the main object: they name it (by its last
     * word too: "the gate" of a "torii gate") or one of the task's
     * components and their targets, or continue the previous one with
     * "it"/"its". */
    size_t rn;
    const check_span_t *rm = group_mentions(r, r->main_relaxed, &rn);
    for (size_t i = 0; i < rn; i++) marks[t->tokens[rm[i].start].sentence] |= MARK_ABOUT;
    for (size_t c = 0; c < r->task->component_count; c++) {
        for (int part = 0; part < 2; part++) {
            uint32_t idx = r->sc->comp_idx[c * 3 + part];
            if (idx == NAME_MAIN || idx == NAME_NONE) continue;
            size_t cn;
            const check_span_t *cm = group_mentions(r, idx, &cn);
            for (size_t i = 0; i < cn; i++) marks[t->tokens[cm[i].start].sentence] |= MARK_ABOUT;
        }
    }
    size_t about = 0;
    for (size_t s = 0; s < t->sentence_count; s++) {
        const check_sentence_t *sen = &t->sentences[s];
        if (!(marks[s] & MARK_ABOUT) && s > 0 && (marks[s - 1] & MARK_ABOUT)) {
            for (size_t k = sen->first; k < sen->last && k < sen->first + 3; k++) {
                if (t->tokens[k].flags & CHECK_TOK_ANAPHORA) marks[s] |= MARK_ABOUT;
            }
        }
        if (marks[s] & MARK_ABOUT) about += sen->words;
    }
    if ((long)t->words < r->rules->main_object_min_words) return;
    double share = t->words ? (double)about / (double)t->words : 1.0;
    if (share < r->rules->main_object_min_share) {
        emit(r, CHECK_RULE_MAIN_OBJECT_UNDERDESCRIBED, 0, 0, key_of(CHECK_RULE_MAIN_OBJECT_UNDERDESCRIBED, NULL, 0, 0),
             "only %.0f%% of the words describe the main object \"%s\" (minimum %.0f%%)", share * 100,
             main_name(r, name, sizeof(name)),
             r->rules->main_object_min_share * 100);
    }
}

static bool tok_relation(const check_text_t *t, size_t k) {
    return t->tokens[k].flags & (CHECK_TOK_RELATION | CHECK_TOK_TASK_RELATION);
}

static bool tok_separates(const check_text_t *t, size_t k) {
    return (t->tokens[k].flags & CHECK_TOK_CONJUNCTION) || check_text_gap_breaks_clause(t, k - 1);
}

/* Whether two mentions in one sentence are put in relation, where x comes
 * first:
 *   - a relation word between them that is not cut off from both by list
 *     separators: "sauce poured over the rice", "the egg, which sits on the
 *     rice", but not "rice, pieces of chicken and egg";
 *   - a relation word right after the later one, closing it off: "rice
 *     with sauce on top", "rice has sauce poured over it";
 *   - a relation phrase that opens the sentence before the first one: "In
 *     the middle of the borscht, a spoonful of sour cream ...".
 * A list ("rice, sauce and egg") has none of these. */
static bool pair_related(const check_text_t *t, check_span_t x, check_span_t y) {
    if (y.start < x.start) {
        check_span_t z = x;
        x = y;
        y = z;
    }
    if (y.start <= x.end) return false; /* one mention inside the other */
    bool rel_first = false, rel_last = false, conj = false, first_open = true;
    size_t breaks = 0;
    bool break_right_after_x = false;
    for (size_t k = x.end + 1; k <= y.start; k++) {
        if (tok_separates(t, k)) {
            rel_last = false;
            conj |= (t->tokens[k].flags & CHECK_TOK_CONJUNCTION) != 0;
            if (check_text_gap_breaks_clause(t, k - 1)) {
                breaks++;
                if (k == x.end + 1) break_right_after_x = true;
            }
            /* "X, worn over ...": after a comma right after X, the next
             * segment still speaks of X if it opens with a relation word. */
            first_open = k == x.end + 1 && !(t->tokens[k].flags & CHECK_TOK_CONJUNCTION) && k < y.start &&
                         tok_relation(t, k);
        }
        if (k == y.start) break;
        if (tok_relation(t, k)) {
            rel_last = true;
            if (first_open) rel_first = true;
        }
    }
    if (rel_first || rel_last) return true;
    /* after the later mention */
    size_t sent_first = t->sentences[t->tokens[x.start].sentence].first;
    size_t sent_last = t->sentences[t->tokens[y.end].sentence].last;
    size_t k = y.end, n = 0, last_rel = 0;
    bool rel = false, ana = false;
    while (k + 1 < sent_last && n < 4 && !check_text_gap_breaks_clause(t, k)) {
        k++;
        n++;
        if (t->tokens[k].flags & CHECK_TOK_CONJUNCTION) break;
        if (tok_relation(t, k)) rel = true, last_rel = n;
        if (t->tokens[k].flags & CHECK_TOK_ANAPHORA) ana = true;
    }
    if (rel && (ana || (last_rel == n && (k + 1 >= sent_last || check_text_gap_breaks_clause(t, k))))) return true;
    /* a relation phrase opening the sentence before the first mention */
    if (conj || breaks > 1 || (breaks == 1 && !break_right_after_x)) return false;
    if (x.start == sent_first || x.start - sent_first > 5) return false;
    for (k = sent_first; k < x.start; k++) {
        if (k > sent_first && check_text_gap_breaks_clause(t, k - 1)) return false;
        if (t->tokens[k].flags & CHECK_TOK_CONJUNCTION) return false;
    }
    if (check_text_gap_breaks_clause(t, x.start - 1)) return false;
    for (k = sent_first; k < x.start; k++) {
        if (tok_relation(t, k)) return true;
    }
    return false;
}

/* Whether the sentence of mention m relates it to something named in the
 * previous sentence: a relation word followed closely by "it"/"them"
 * ("Sauce is poured over it", "... on top of them"), or a sentence opening
 * with "It"/"Its" that has a relation word soon after ("It is topped with
 * sauce"). */
static bool refers_back(const check_text_t *t, check_span_t m) {
    const check_sentence_t *sen = &t->sentences[t->tokens[m.start].sentence];
    for (size_t k = sen->first; k < sen->last; k++) {
        if (k >= m.start && k <= m.end) continue;
        if (!tok_relation(t, k)) continue;
        for (size_t a = k + 1; a < sen->last && a <= k + 3; a++) {
            if (check_text_gap_breaks_clause(t, a - 1)) break;
            if (t->tokens[a].flags & CHECK_TOK_ANAPHORA) return true;
        }
        if ((t->tokens[sen->first].flags & CHECK_TOK_ANAPHORA) && k <= sen->first + 4) return true;
    }
    return false;
}

/* The container a mention sits in, as the text says it: "a glass bowl of
 * ceviche", "миска горячего борща", "a pho bowl", "tamales are stacked on
 * a plate".  The container word comes right before the mention (a link
 * word such as "of" and up to two other words between, none of them a
 * relation word, conjunction or clause break), right after it, or in the
 * same clause after it behind a container preposition ("on", "in") with at
 * most three words between.  Returns its token, or -1. */
static long container_of(const run_t *r, check_span_t m) {
    const check_text_t *t = r->t;
    size_t gap = 0;
    bool linked = false;
    for (size_t k = m.start; k > 0 && gap <= 2; k--) {
        const check_token_t *c = &t->tokens[k - 1];
        if (c->sentence != t->tokens[m.start].sentence || check_text_gap_breaks_clause(t, k - 1)) break;
        if (c->flags & CHECK_TOK_CONTAINER) return (long)(k - 1);
        if ((c->flags & CHECK_TOK_CONTAINER_LINK) && !linked) {
            linked = true;
            continue;
        }
        if (c->flags & (CHECK_TOK_RELATION | CHECK_TOK_TASK_RELATION | CHECK_TOK_CONJUNCTION)) break;
        gap++;
    }
    size_t after = (size_t)m.end + 1;
    if (after < t->token_count && (t->tokens[after].flags & CHECK_TOK_CONTAINER) &&
        t->tokens[after].sentence == t->tokens[m.end].sentence && !check_text_gap_breaks_clause(t, m.end))
        return (long)after;
    /* "momos are arranged in a circle on a round aluminium plate" */
    long prep = -1;
    for (size_t k = m.end + 1; k < t->token_count && k <= (size_t)m.end + 10; k++) {
        const check_token_t *c = &t->tokens[k];
        if (check_text_gap_breaks_clause(t, k - 1) || (c->flags & CHECK_TOK_CONJUNCTION)) break;
        if ((c->flags & CHECK_TOK_CONTAINER) && prep >= 0 && k - (size_t)prep <= 4) return (long)k;
        if (in_list(&r->lang->container_in, t->norm + c->nstart, c->nend - c->nstart)) prep = (long)k;
        else if (c->flags & CHECK_TOK_CONTAINER) break;
    }
    return -1;
}

/* The other places where the container of one of the mentions is named:
 * "a glass bowl of ceviche ... a slice of sweet potato lies next to the
 * bowl" puts the sweet potato beside the ceviche.  Fills at most cap spans
 * of out and returns how many. */
static size_t container_mentions(const run_t *r, const check_span_t *m, size_t n, check_span_t *out, size_t cap) {
    const check_text_t *t = r->t;
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        long c = container_of(r, m[i]);
        if (c < 0) continue;
        const check_token_t *ct = &t->tokens[c];
        const char *w = t->norm + ct->nstart;
        uint32_t wl = ct->nend - ct->nstart;
        uint32_t stem = wl - (uint32_t)longest_suffix(w, wl, &r->lang->strip);
        size_t e2 = longest_suffix(w, wl, &r->lang->endings);
        uint32_t stem2 = e2 ? wl - (uint32_t)e2 : 0, pre = form_prefix(r->lang, w, wl, stem, stem2);
        for (size_t k = 0; k < t->token_count && count < cap; k++) {
            const check_token_t *tok = &t->tokens[k];
            if ((long)k == c || !(tok->flags & CHECK_TOK_CONTAINER)) continue;
            if (k >= m[i].start && k <= m[i].end) continue;
            if (word_matches(r->lang, t->norm + tok->nstart, tok->nend - tok->nstart, w, wl, stem, stem2, pre))
                out[count++] = (check_span_t){(uint32_t)k, (uint32_t)k};
        }
    }
    return count;
}

/* Whether a mention of nm and one of tm are put in relation: in one
 * sentence (pair_related) or in neighbouring ones (refers_back).  *together
 * receives the first mention of nm that shares a sentence with tm. */
static bool mentions_related(const check_text_t *t, const check_span_t *nm, size_t nn, const check_span_t *tm,
                             size_t tn, const check_span_t **together) {
    for (size_t i = 0; i < nn; i++) {
        uint32_t ns = t->tokens[nm[i].start].sentence;
        for (size_t j = 0; j < tn; j++) {
            uint32_t ts = t->tokens[tm[j].start].sentence;
            if (ns == ts) {
                if (*together == NULL) *together = &nm[i];
                if (pair_related(t, nm[i], tm[j])) return true;
            } else if (ns == ts + 1 || ts == ns + 1) {
                /* "The rice fills the bowl. Sauce is poured over it." */
                if (refers_back(t, ns > ts ? nm[i] : tm[j])) return true;
            }
        }
    }
    return false;
}

/* Whether the task relation (a name index, or NAME_NONE) places a thing
 * outside its target; see check_lang_t.outside. */
static bool relation_outside(const run_t *r, uint32_t rel) {
    if (rel == NAME_NONE || rel == NAME_MAIN) return false;
    const check_name_t *nm = &r->sc->names[rel];
    for (uint32_t w = 0; w < nm->words; w++) {
        if (in_list(&r->lang->outside, r->sc->buf + nm->woff[w], nm->wlen[w])) return true;
    }
    return false;
}

/* Whether a mention of the component is followed at once by every word of
 * the task's relation (the task's words themselves, multi-word, so that
 * the phrase is unmistakable: "threaded through", "sprinkled over"). */
static bool relation_follows(const run_t *r, uint32_t rel, const check_span_t *nm, size_t nn) {
    if (rel == NAME_NONE || rel == NAME_MAIN) return false;
    const check_text_t *t = r->t;
    const check_name_t *name = &r->sc->names[rel];
    if (name->words < 2) return false;
    for (size_t i = 0; i < nn; i++) {
        /* "cord is threaded through": one word may come between */
        for (size_t skip = 0; skip <= 1; skip++) {
            size_t k = (size_t)nm[i].end + 1 + skip;
            if (k + name->words > t->token_count) break;
            bool all = !check_text_gap_breaks_clause(t, nm[i].end);
            for (uint32_t w = 0; w < name->words && all; w++) {
                const check_token_t *tok = &t->tokens[k + w];
                all = tok->sentence == t->tokens[nm[i].end].sentence &&
                      !check_text_gap_breaks_clause(t, k + w - 1) && tok->nend - tok->nstart == name->wlen[w] &&
                      memcmp(t->norm + tok->nstart, r->sc->buf + name->woff[w], name->wlen[w]) == 0;
            }
            if (all) return true;
        }
    }
    return false;
}

/* Whether a mention of the component sits in a container that is a mention
 * of the target: "a jar of kimchi" for "kimchi in jar". */
static bool contained_in(const run_t *r, const check_span_t *nm, size_t nn, const check_span_t *tm, size_t tn) {
    for (size_t i = 0; i < nn; i++) {
        long c = container_of(r, nm[i]);
        if (c < 0) continue;
        for (size_t j = 0; j < tn; j++) {
            if ((uint32_t)c >= tm[j].start && (uint32_t)c <= tm[j].end) return true;
        }
    }
    return false;
}

/* A component's words as its findings quote them. */
typedef struct relation_names {
    char name[64], target[64], rel[64];
} relation_names_t;

static void relation_names_fill(relation_names_t *n, const check_component_t *comp) {
    copy_cut(n->name, sizeof(n->name), comp->name);
    copy_cut(n->target, sizeof(n->target), comp->target);
    copy_cut(n->rel, sizeof(n->rel), comp->relation && comp->relation[0] ? comp->relation : "related to");
}

static void rule_relations(run_t *r, bool main_missing) {
    const check_text_t *t = r->t;
    check_scratch_t *sc = r->sc;
    for (size_t c = 0; c < r->task->component_count; c++) {
        const check_component_t *comp = &r->task->components[c];
        const uint32_t *idx = &sc->comp_idx[c * 3];
        if (idx[1] == NAME_NONE || idx[0] == idx[1] ||
            (idx[0] != NAME_MAIN && sc->names[idx[0]].words == 0))
            continue; /* stands on its own */
        relation_names_t n; /* filled only for a finding: most components have none */
        uint64_t key = key_of(CHECK_RULE_RELATION_MISSING, NULL, 0, c + 1);
        size_t nn, tn;
        const check_span_t *nm = group_mentions(r, idx[0] == NAME_MAIN ? r->main_relaxed : idx[0], &nn);
        const check_span_t *tm = group_mentions(r, idx[1] == NAME_MAIN ? r->main_relaxed : idx[1], &tn);
        if (nn == 0) {
            if (idx[0] == NAME_MAIN && main_missing) continue;
            relation_names_fill(&n, comp);
            emit(r, CHECK_RULE_RELATION_MISSING, 0, 0, key, "the component \"%s\" (%s %s) is not mentioned", n.name,
                 n.rel, n.target);
            continue;
        }
        if (tn == 0) {
            if (idx[1] == NAME_MAIN && main_missing) continue; /* main_object_missing says it */
            relation_names_fill(&n, comp);
            emit(r, CHECK_RULE_RELATION_MISSING, 0, 0, key, "\"%s\", which \"%s\" is %s, is not mentioned", n.target,
                 n.name, n.rel);
            continue;
        }
        const check_span_t *together = NULL;
        if (mentions_related(t, nm, nn, tm, tn, &together)) continue;
        /* the task's own relation right after the component: "a cord
         * threaded through a hole at the top of the figure's head" */
        if (relation_follows(r, idx[2], nm, nn)) continue;
        /* "a jar of kimchi" puts the kimchi in the jar */
        if (!relation_outside(r, idx[2]) && contained_in(r, nm, nn, tm, tn)) continue;
        /* the target by its container: "next to the bowl" of ceviche */
        if (relation_outside(r, idx[2])) {
            check_span_t alias[16];
            size_t an = container_mentions(r, tm, tn, alias, sizeof(alias) / sizeof(alias[0]));
            const check_span_t *unused = NULL;
            if (an > 0 && mentions_related(t, nm, nn, alias, an, &unused)) continue;
        }
        relation_names_fill(&n, comp);
        if (together) {
            const check_sentence_t *sen = &t->sentences[t->tokens[together->start].sentence];
            emit(r, CHECK_RULE_RELATION_MISSING, sen->ostart, sen->oend, key,
                 "\"%s\" and \"%s\" are named without their relation (task: %s %s %s)", n.name, n.target, n.name,
                 n.rel, n.target);
        } else {
            const check_token_t *a = &t->tokens[nm[0].start], *b = &t->tokens[nm[0].end];
            emit(r, CHECK_RULE_RELATION_MISSING, a->ostart, b->oend, key,
                 "\"%s\" is never put in relation to \"%s\" (task: %s %s %s)", n.name, n.target, n.name, n.rel,
                 n.target);
        }
    }
}

/* Background against description, counted in sentences: the guideline
 * weighs history, origin and reputation sentences against visual ones. */
static void rule_reference(run_t *r) {
    const check_text_t *t = r->t;
    const uint8_t *marks = r->sc->sentence_marks;
    size_t count = 0, first = 0, last = 0;
    for (size_t s = 0; s < t->sentence_count; s++) {
        if (!(marks[s] & MARK_REFERENCE)) continue;
        if (count == 0) first = s;
        last = s;
        count++;
    }
    if (t->sentence_count == 0 || (long)count < r->rules->reference_min_sentences) return;
    double share = (double)count / (double)t->sentence_count;
    if (share <= r->rules->reference_max_share) return;
    emit(r, CHECK_RULE_REFERENCE_OVERLOAD, t->sentences[first].ostart, t->sentences[last].oend,
         key_of(CHECK_RULE_REFERENCE_OVERLOAD, NULL, 0, 0),
         "%zu of %zu sentences (%.0f%%, maximum %.0f%%) are background (history, origin, reputation) rather than "
         "what is visible",
         count, t->sentence_count, share * 100, r->rules->reference_max_share * 100);
}

static void rule_length(run_t *r) {
    size_t words = r->t->words;
    if ((long)words < r->rules->length_min_words) {
        emit(r, CHECK_RULE_LENGTH, 0, 0, key_of(CHECK_RULE_LENGTH, NULL, 0, 0), "%zu words; the minimum is %ld", words,
             r->rules->length_min_words);
    } else if ((long)words > r->rules->length_max_words) {
        emit(r, CHECK_RULE_LENGTH, 0, 0, key_of(CHECK_RULE_LENGTH, NULL, 0, 0), "%zu words; the maximum is %ld", words,
             r->rules->length_max_words);
    }
}

/* Analyses one text and applies every rule that looks at a single text. */
static int rules_apply(run_t *r, check_text_t *t, const char *text, size_t len) {
    r->t = t;
    check_text_prepare(t, r->rules, text, len);
    if (check_lexicon_scan(r->lang, r->sc->hs, t) != 0) return -1;
    check_text_sentences(t);
    r->sc->sentence_marks = grow(r->sc->sentence_marks, &r->sc->sentence_mark_cap, t->sentence_count + 1, 1);
    memset(r->sc->sentence_marks, 0, t->sentence_count + 1);
    mentions_all(r);
    rule_invalid_text(r);
    rule_lexicon(r);
    size_t before = r->out->count;
    rule_main_object(r);
    bool main_missing = r->out->count > before && r->out->findings[before].rule == CHECK_RULE_MAIN_OBJECT_MISSING;
    rule_relations(r, main_missing);
    rule_reference(r);
    rule_length(r);
    return 0;
}

/* ------------------------------------------------------------------ */
/* editing (exam stage 2) */

static uint64_t *token_hashes(const check_text_t *t, uint64_t **buf, size_t *cap) {
    *buf = grow(*buf, cap, t->token_count + 1, sizeof(**buf));
    for (size_t i = 0; i < t->token_count; i++) {
        (*buf)[i] = word_hash(t->norm + t->tokens[i].nstart, t->tokens[i].nend - t->tokens[i].nstart);
    }
    return *buf;
}

/* Word-level Levenshtein distance over the normalised words, divided by the
 * longer length: punctuation, case and spacing changes are no edit.  Only
 * a distance under `limit` (a share) matters, so the table is computed in
 * the band of diagonals a path that short can use (Ukkonen): exact below
 * the limit, and some share at or above it otherwise. */
static double edit_distance(check_scratch_t *sc, double limit) {
    size_t n = sc->pre.token_count, m = sc->text.token_count;
    if (n == 0 && m == 0) return 0;
    const uint64_t *a = token_hashes(&sc->pre, &sc->hash_a, &sc->hash_a_cap);
    const uint64_t *b = token_hashes(&sc->text, &sc->hash_b, &sc->hash_b_cap);
    size_t longer = n > m ? n : m;
    /* A common prefix and suffix never change the distance, and an edit
     * leaves most of the text as it was: only the middle needs the table. */
    while (n > 0 && m > 0 && a[0] == b[0]) a++, b++, n--, m--;
    while (n > 0 && m > 0 && a[n - 1] == b[m - 1]) n--, m--;
    if (n == 0 || m == 0) return (double)(n + m) / (double)longer;
    /* a distance above k is at or above the limit */
    size_t k = (size_t)(limit * (double)longer) + 1;
    size_t diff = n > m ? n - m : m - n;
    if (diff > k) return (double)diff / (double)longer;
    const uint32_t far = UINT32_MAX / 2; /* outside the band */
    sc->row = grow(sc->row, &sc->row_cap, 2 * (m + 2), sizeof(*sc->row));
    uint32_t *prev = sc->row, *cur = sc->row + m + 2;
    for (size_t j = 0; j <= m + 1; j++) prev[j] = j <= k ? (uint32_t)j : far;
    for (size_t i = 1; i <= n; i++) {
        size_t lo = i > k ? i - k : 1, hi = i + k < m ? i + k : m;
        cur[lo - 1] = lo == 1 ? (uint32_t)i : far;
        for (size_t j = lo; j <= hi; j++) {
            uint32_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            uint32_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        cur[hi + 1] = far;
        uint32_t *tmp = prev;
        prev = cur;
        cur = tmp;
    }
    size_t d = prev[m] < k + 1 ? prev[m] : k + 1;
    return (double)d / (double)longer;
}

static bool rule_carries_over(check_rule_t rule) {
    return rule != CHECK_RULE_INVALID_TEXT && rule != CHECK_RULE_NO_MEANINGFUL_EDIT &&
           rule != CHECK_RULE_UNFIXED_DEFECT;
}

/* Findings of the description that the pre-generated text had too become
 * unfixed_defect, each pre-generated finding matched at most once. */
static void editing_compare(run_t *r) {
    check_scratch_t *sc = r->sc;
    const check_result_t *pre = &sc->pre_result;
    const check_rule_conf_t *conf = &r->rules->rule[CHECK_RULE_UNFIXED_DEFECT];
    sc->pre_used = grow(sc->pre_used, &sc->pre_used_cap, pre->count + 1, sizeof(*sc->pre_used));
    bool *used = sc->pre_used;
    memset(used, 0, pre->count * sizeof(*used));
    for (size_t i = 0; i < r->out->count; i++) {
        check_finding_t *f = &r->out->findings[i];
        if (!rule_carries_over(f->rule)) continue;
        for (size_t j = 0; j < pre->count; j++) {
            if (used[j] || sc->pre_keys[j] != (*r->keys)[i]) continue;
            used[j] = true;
            char msg[CHECK_MESSAGE_MAX];
            snprintf(msg, sizeof(msg), "%s", f->message);
            char full[CHECK_MESSAGE_MAX + 64];
            snprintf(full, sizeof(full), "left from the pre-generated text (%s): %s", check_rule_name(f->rule), msg);
            size_t e = strlen(full);
            if (e >= sizeof(f->message)) {
                e = sizeof(f->message) - 1;
                while (e > 0 && ((uint8_t)full[e] & 0xC0) == 0x80) e--;
                full[e] = '\0';
            }
            memcpy(f->message, full, e + 1);
            /* Never milder than the defect itself. */
            if (f->severity < conf->severity) f->severity = conf->severity;
            f->blocking = f->blocking || conf->blocking;
            f->rule = CHECK_RULE_UNFIXED_DEFECT;
            memcpy(f->section, conf->section, sizeof(f->section));
            break;
        }
    }
}

/* ------------------------------------------------------------------ */

static int finding_cmp(const void *a, const void *b) {
    const check_finding_t *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->rule != y->rule) return x->rule < y->rule ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

void check_result_init(check_result_t *result) { memset(result, 0, sizeof(*result)); }

void check_result_free(check_result_t *result) {
    free(result->findings);
    memset(result, 0, sizeof(*result));
}

static void result_score(const check_rules_t *rules, check_result_t *out) {
    double sum = 0;
    out->blocking = false;
    for (size_t i = 0; i < out->count; i++) {
        sum += rules->weight[out->findings[i].severity];
        out->blocking |= out->findings[i].blocking;
    }
    out->score = sum >= 1 ? 0 : 1 - sum;
}

int check_run(const check_rules_t *rules, check_scratch_t *scratch, const check_task_t *task, const char *text,
              size_t len, check_result_t *out, char *errstr, size_t errlen) {
    out->count = 0;
    out->score = 1;
    out->blocking = false;
    if (task == NULL || task->main_object == NULL || task->main_object[0] == '\0') {
        snprintf(errstr, errlen, "the task has no main object");
        return -1;
    }
    if (text == NULL) len = 0;
    if (check_scratch_bind(scratch, rules, errstr, errlen) != 0) return -1;
    run_t r = {rules, check_rules_language(rules, task->locale), task, scratch, NULL, out, &scratch->keys,
               &scratch->key_cap, 0, 0};
    if ((long)len > rules->length_max_bytes || len >= UINT32_MAX) {
        emit(&r, CHECK_RULE_LENGTH, 0, 0, 0, "the text is %zu bytes; the limit is %ld", len, rules->length_max_bytes);
        result_score(rules, out);
        return 0;
    }
    /* A text may be cold (a buffer not touched since it arrived): its
     * first lines (a description is rarely longer) are fetched while the
     * task's names are prepared, not when folding first touches them. */
    for (size_t off = 0; off < len && off < 4096; off += 64) __builtin_prefetch(text + off);
    if (!task_prepared(scratch, task, rules)) {
        names_prepare(&r);
        probes_prepare(&r);
        scratch->main_names = r.main_names;
    }
    r.main_names = scratch->main_names;
    const char *pre = task->pregenerated;
    bool editing = task->kind == CHECK_KIND_EXAM_STAGE2 && pre && pre[0] &&
                   (long)strlen(pre) <= rules->length_max_bytes;
    if (editing && !scratch->pre_ready) {
        run_t p = r;
        p.out = &scratch->pre_result;
        p.out->count = 0;
        p.keys = &scratch->pre_keys;
        p.key_cap = &scratch->pre_key_cap;
        if (rules_apply(&p, &scratch->pre, pre, strlen(pre)) != 0) goto scan_failed;
        scratch->pre_ready = true;
    }
    if (rules_apply(&r, &scratch->text, text ? text : "", len) != 0) goto scan_failed;
    if (editing) {
        double d = edit_distance(scratch, rules->edit_min_distance);
        editing_compare(&r);
        if (d < rules->edit_min_distance) {
            emit(&r, CHECK_RULE_NO_MEANINGFUL_EDIT, 0, 0, 0,
                 "the pre-generated text is almost unchanged: %.1f%% of its words edited (minimum %.1f%%)", d * 100,
                 rules->edit_min_distance * 100);
        }
    }
    if (out->count > 1) qsort(out->findings, out->count, sizeof(*out->findings), finding_cmp);
    result_score(rules, out);
    return 0;
scan_failed:
    scratch->task_key_len = 0; /* the pre-generated text's analysis may be partial */
    snprintf(errstr, errlen, "the matching engine failed");
    out->count = 0;
    return -1;
}
