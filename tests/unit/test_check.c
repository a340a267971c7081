/* Unit tests of common/check*: the text utilities (folding, tokens,
 * sentences, quotes, spans into the original bytes), every rule with the
 * hard cases of issue 4, the JSON edges, configuration errors that name
 * file and line, thread safety, and the labelled corpus
 * (tests/corpus/checker.ndjson) and its independently labelled holdout
 * batch (tests/corpus/checker-holdout.ndjson) with precision and recall per
 * rule, each reported on its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <utf8proc.h>

#include "check.h"
#include "check_internal.h"
#include "utf8.h"

#define CORPUS "tests/corpus/checker.ndjson"
#define HOLDOUT "tests/corpus/checker-holdout.ndjson"
#define RULES_DIR "config/guideline"

static check_rules_t *rules;
static check_scratch_t *scratch;
static check_result_t result;
static char errstr[512];

static int group_setup(void **state) {
    (void)state;
    rules = check_rules_load(RULES_DIR, errstr, sizeof(errstr));
    if (rules == NULL) {
        fprintf(stderr, "loading %s: %s\n", RULES_DIR, errstr);
        return -1;
    }
    scratch = check_scratch_new();
    check_result_init(&result);
    return scratch ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    check_result_free(&result);
    check_scratch_destroy(scratch);
    check_rules_destroy(rules);
    return 0;
}

/* A task on the stack: strings are borrowed, as check_run allows. */
typedef struct task_spec {
    const char *locale;
    const char *main_object;
    const char *synonyms[4];
    const char *comps[4][3];
    check_kind_t kind;
    const char *pregenerated;
} task_spec_t;

static check_task_t task_of(const task_spec_t *s, char **syn, check_component_t *comps) {
    check_task_t t;
    memset(&t, 0, sizeof(t));
    t.kind = s->kind ? s->kind : CHECK_KIND_PRODUCTION;
    t.locale = (char *)(s->locale ? s->locale : "en-US");
    t.main_object = (char *)s->main_object;
    for (size_t i = 0; i < 4 && s->synonyms[i]; i++) syn[t.synonym_count++] = (char *)s->synonyms[i];
    t.main_object_synonyms = syn;
    for (size_t i = 0; i < 4 && s->comps[i][0]; i++) {
        comps[i] = (check_component_t){(char *)s->comps[i][0], (char *)s->comps[i][1], (char *)s->comps[i][2]};
        t.component_count++;
    }
    t.components = comps;
    t.pregenerated = (char *)s->pregenerated;
    return t;
}

static const check_result_t *check_spec(const task_spec_t *s, const char *text) {
    char *syn[4];
    check_component_t comps[4];
    check_task_t t = task_of(s, syn, comps);
    assert_int_equal(check_run(rules, scratch, &t, text, strlen(text), &result, errstr, sizeof(errstr)), 0);
    return &result;
}

/* The common case: an English task with only a main object. */
static const check_result_t *check_en(const char *main_object, const char *text) {
    task_spec_t s = {.main_object = main_object};
    return check_spec(&s, text);
}

static size_t count_rule(const check_result_t *r, check_rule_t rule) {
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++) n += r->findings[i].rule == rule;
    return n;
}

static const check_finding_t *first_rule(const check_result_t *r, check_rule_t rule) {
    for (size_t i = 0; i < r->count; i++) {
        if (r->findings[i].rule == rule) return &r->findings[i];
    }
    return NULL;
}

/* The original bytes a finding points at must be exactly `want`. */
static void assert_span(const char *text, const check_finding_t *f, const char *want) {
    assert_non_null(f);
    size_t n = strlen(want);
    assert_int_equal(f->end - f->start, n);
    assert_memory_equal(text + f->start, want, n);
}

/* Padding that makes a text long enough for the length rule, names nothing
 * evaluative and stays on the subject ("It ..."): appended to short test
 * texts. */
#define PAD                                                                                                     \
    " It stands on a wooden table with a folded cloth at one end and two cups at the other. It is lit from a "  \
    "window on the left, and its shadow falls on the white wall behind the table. It stands close to a chair "  \
    "with a straw seat."

/* ------------------------------------------------------------------ */
/* text utilities */

static void fold_is(const char *in, const char *want) {
    char *buf = NULL;
    size_t len = 0, cap = 0;
    assert_int_equal(check_fold_append(&rules->fold, in, strlen(in), &buf, &len, &cap), 0);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);
    free(buf);
}

static void test_fold(void **state) {
    (void)state;
    fold_is("Straße", "strasse");                         /* case folding changes the length */
    fold_is("ÉCOLE  Crème\tBrûlée", "ecole creme brulee"); /* marks stripped, spaces collapsed */
    fold_is("Cafe\xCC\x81", "cafe");                      /* decomposed input */
    fold_is("ЁЛКА Ёжик", "елка ежик");                    /* Cyrillic case and ё */
    fold_is("\xEF\xAC\x81ne \xEF\xBC\xA1\xEF\xBC\xA2", "fine ab"); /* ligature, full width (NFKC) */
    fold_is("don\xE2\x80\x99t", "don't");                 /* typographic apostrophe */
    char *buf = NULL;
    size_t len = 0, cap = 0;
    assert_int_equal(check_fold_append(&rules->fold, "a\xFF", 2, &buf, &len, &cap), -1);
    free(buf);
}

/* check_fold_append's ASCII path (task names) against the fold of a text,
 * which takes the general loop: every ASCII byte, alone and in runs, at
 * the ends and between letters. */
static void test_fold_ascii(void **state) {
    (void)state;
    check_text_t t;
    memset(&t, 0, sizeof(t));
    char *buf = NULL;
    size_t cap = 0;
    for (int c = 1; c < 128; c++) {
        char in[4][16];
        size_t in_len[4];
        in_len[0] = (size_t)snprintf(in[0], sizeof(in[0]), "A%cb", c);
        in_len[1] = (size_t)snprintf(in[1], sizeof(in[1]), "%c%cX y%c", c, c, c);
        in_len[2] = (size_t)snprintf(in[2], sizeof(in[2]), " Q %c%c %c", c, c, c);
        in_len[3] = (size_t)snprintf(in[3], sizeof(in[3]), "%c", c);
        for (int v = 0; v < 4; v++) {
            check_text_prepare(&t, rules, in[v], in_len[v]);
            size_t len = 0;
            assert_int_equal(check_fold_append(&rules->fold, in[v], in_len[v], &buf, &len, &cap), 0);
            if (len != t.norm_len || memcmp(buf, t.norm, len) != 0)
                fail_msg("byte 0x%02X in variant %d: name \"%s\", text \"%s\"", (unsigned)c, v, buf, t.norm);
        }
    }
    free(buf);
    check_text_free(&t);
}

/* fold_run's fast path (a BMP code point folded from the table, skipping
 * the cluster rules) against utf8proc itself, for every code point it
 * covers, between ASCII letters, doubled, and before a space: the texts'
 * normalised form and a name's fold must be utf8proc's bytes exactly. */
static void test_fold_fast_path(void **state) {
    (void)state;
    const check_fold_t *fold = &rules->fold;
    check_text_t t;
    memset(&t, 0, sizeof(t));
    char *buf = NULL;
    size_t cap = 0, covered = 0;
    for (utf8proc_int32_t cp = 0; cp < 0x10000; cp++) {
        if (!(fold->bmp[cp] & CHECK_FOLD_FAST)) continue;
        covered++;
        uint8_t enc[4];
        utf8proc_ssize_t n = utf8proc_encode_char(cp, enc);
        char in[3][32];
        size_t in_len[3];
        in_len[0] = (size_t)snprintf(in[0], sizeof(in[0]), "a%.*sb", (int)n, (const char *)enc);
        in_len[1] = (size_t)snprintf(in[1], sizeof(in[1]), "%.*s%.*s", (int)n, (const char *)enc, (int)n,
                                     (const char *)enc);
        in_len[2] = (size_t)snprintf(in[2], sizeof(in[2]), "%.*s x", (int)n, (const char *)enc);
        for (int v = 0; v < 3; v++) {
            utf8proc_uint8_t *want = NULL;
            assert_true(utf8proc_map((const utf8proc_uint8_t *)in[v], (utf8proc_ssize_t)in_len[v], &want,
                                     (utf8proc_option_t)fold->options) >= 0);
            /* as the pipeline does with every text: no space at the ends
             * (a mark stripped to nothing leaves " x") */
            size_t wl = strlen((char *)want), a = 0;
            while (a < wl && want[a] == ' ') a++;
            while (wl > a && want[wl - 1] == ' ') wl--;
            memmove(want, want + a, wl - a);
            want[wl - a] = '\0';
            check_text_prepare(&t, rules, in[v], in_len[v]);
            if (strcmp((const char *)want, t.norm) != 0)
                fail_msg("U+%04X in \"%s\": utf8proc \"%s\", fast path \"%s\"", (unsigned)cp, in[v], want, t.norm);
            size_t len = 0;
            assert_int_equal(check_fold_append(fold, in[v], in_len[v], &buf, &len, &cap), 0);
            assert_string_equal(buf, (const char *)want);
            free(want);
        }
    }
    printf("fast path: %zu BMP code points checked against utf8proc\n", covered);
    /* Cyrillic, Greek, Latin-1 letters, punctuation: most of the BMP */
    assert_true(covered > 30000);
    assert_true(fold->bmp[0x0416] & CHECK_FOLD_FAST); /* Ж */
    assert_false(fold->bmp[0x0301] & CHECK_FOLD_FAST); /* a combining mark */
    assert_false(fold->bmp[0x00A0] & CHECK_FOLD_FAST); /* a space */
    check_text_free(&t);
    free(buf);
}

/* fold_run's sixteen-byte Cyrillic step (check_fold_t.cyr_simd) against
 * the byte paths it stands in for: random texts of Cyrillic letters, ASCII
 * and what ends a block (ё, «, a dash, a combining mark, a newline, a
 * second space, invalid bytes) give the same normalised text, the same map
 * back to the original for every byte and the same issues either way. */
static void test_fold_cyrillic_blocks(void **state) {
    (void)state;
    assert_true(rules->fold.cyr_simd);
    assert_int_equal(rules->fold.cyr_fix_count, 1); /* й -> и, marks stripped */
    static const char *const pieces[] = {
        "а", "б", "в", "й", "к", "о", "п", "р", "с", "т", "ц", "я", "ь", "э", "ю",
        "А", "Б", "Й", "К", "О", "П", "Р", "С", "Т", "Я", "Ъ", "Э",
        "ё", "Ё", "a", "Z", "7", " ", " ", " ", "  ", ".", ",", "-", "\n",
        "\xC2\xAB", "\xE2\x80\x94", "\xCC\x81", "\xFF", "\xD0", "\x01", "ѣ", "і",
    };
    enum { NP = sizeof(pieces) / sizeof(pieces[0]) };
    check_text_t a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    char text[512];
    unsigned seed = 12345;
    for (int round = 0; round < 20000; round++) {
        size_t len = 0, want = 16 + (size_t)(round % 160);
        /* most rounds mostly letters and spaces, so that blocks form */
        unsigned span = round % 4 == 0 ? NP : 33;
        while (len < want) {
            seed = seed * 1103515245u + 12345u;
            const char *p = pieces[(seed >> 16) % span];
            size_t n = strlen(p);
            memcpy(text + len, p, n);
            len += n;
        }
        rules->fold.cyr_simd = true;
        check_text_prepare(&a, rules, text, len);
        rules->fold.cyr_simd = false;
        check_text_prepare(&b, rules, text, len);
        rules->fold.cyr_simd = true;
        if (a.norm_len != b.norm_len || memcmp(a.norm, b.norm, a.norm_len) != 0)
            fail_msg("\"%.*s\": \"%s\" by blocks, \"%s\" byte by byte", (int)len, text, a.norm, b.norm);
        for (size_t k = 0; k < a.norm_len; k++) {
            if (a.nmap_start[k] != b.nmap_start[k] || a.nmap_end[k] != b.nmap_end[k])
                fail_msg("\"%.*s\", byte %zu: [%u, %u) by blocks, [%u, %u) byte by byte", (int)len, text, k,
                         a.nmap_start[k], a.nmap_end[k], b.nmap_start[k], b.nmap_end[k]);
        }
        assert_int_equal(a.issue_count, b.issue_count);
        assert_int_equal(a.token_count, b.token_count);
    }
    check_text_free(&a);
    check_text_free(&b);
}

static void test_spans_survive_folding(void **state) {
    (void)state;
    /* Each prefix changes length under folding; the span must still be
     * the original bytes of the word. */
    const char *texts[] = {
        "Stra\xC3\x9F" "e, \xEF\xAC\x81ne ÉCOLE: a beautiful bowl of rice." PAD,
        "Cafe\xCC\x81 au lait and a BEAUTIFUL bowl of rice." PAD,
        "\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3 beautiful bowl of rice." PAD,
    };
    const char *words[] = {"beautiful", "BEAUTIFUL", "beautiful"};
    for (size_t i = 0; i < 3; i++) {
        const check_result_t *r = check_en("bowl", texts[i]);
        assert_span(texts[i], first_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), words[i]);
    }
    /* A Russian word with a stress mark (U+0301) inside it. */
    const char *ru = "Краси\xCC\x81вый борщ стоит на столе.";
    task_spec_t s = {.locale = "ru-RU", .main_object = "борщ"};
    const check_result_t *r = check_spec(&s, ru);
    assert_span(ru, first_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), "Краси\xCC\x81вый");
}

static void test_invalid_utf8(void **state) {
    (void)state;
    const char text[] = "A bowl \xFF\xFE of rice with a beautiful glaze." PAD;
    const check_result_t *r = check_en("bowl", text);
    const check_finding_t *f = first_rule(r, CHECK_RULE_INVALID_TEXT);
    assert_non_null(f);
    assert_int_equal(f->start, 7);
    assert_int_equal(f->end, 9);
    assert_true(f->blocking);
    assert_true(r->blocking);
    assert_true(r->score == 0.0);
    /* the rest is still checked, with spans after the bad bytes intact */
    assert_span(text, first_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), "beautiful");
}

static void tokens_are(const char *text, const char *const *want, size_t n) {
    check_text_t *t = &scratch->text;
    check_text_prepare(t, rules, text, strlen(text));
    assert_int_equal(t->token_count, n);
    for (size_t i = 0; i < n; i++) {
        const check_token_t *tok = &t->tokens[i];
        assert_int_equal(tok->nend - tok->nstart, strlen(want[i]));
        assert_memory_equal(t->norm + tok->nstart, want[i], strlen(want[i]));
    }
}

static void test_tokens(void **state) {
    (void)state;
    const char *want[] = {"don't", "eye-catching", "3.5", "kg", "1,000", "ложек", "親", "子", "丼", "end"};
    tokens_are("Don\xE2\x80\x99t eye-catching: 3.5 kg, 1,000 ЛОЖЕК 親子丼 (end).", want, 10);
    check_text_t *t = &scratch->text;
    check_text_prepare(t, rules, "Good luck", 9);
    assert_true(t->tokens[0].flags & CHECK_TOK_CAP);
    assert_true(t->tokens[1].flags & CHECK_TOK_LOWER);
    /* token spans are original bytes */
    const char *s = "ÉCOLE Straße";
    check_text_prepare(t, rules, s, strlen(s));
    assert_int_equal(t->token_count, 2);
    assert_int_equal(t->tokens[1].ostart, 7);
    assert_int_equal(t->tokens[1].oend, strlen(s));
}

/* The tokeniser's run of folded Cyrillic letters (а-я and ё's fold) against
 * what the general path makes of the same letters: each one inside a
 * Latin word, hyphenated, before '.' or ',' and a digit (which join only
 * digits), before an apostrophe, and after a digit. */
static void test_tokens_cyrillic(void **state) {
    (void)state;
    check_text_t *t = &scratch->text;
    size_t checked = 0;
    for (utf8proc_int32_t cp = 0x0400; cp < 0x0530; cp++) {
        uint8_t enc[4];
        utf8proc_ssize_t n = utf8proc_encode_char(cp, enc);
        char in[64];
        int len = snprintf(in, sizeof(in), "a%.*sb %.*s-%.*s a%.*s.5 %.*s,5 %.*s'x 7%.*s", (int)n, (char *)enc, (int)n,
                           (char *)enc, (int)n, (char *)enc, (int)n, (char *)enc, (int)n, (char *)enc, (int)n,
                           (char *)enc, (int)n, (char *)enc);
        check_text_prepare(t, rules, in, (size_t)len);
        /* the same text through utf8proc's classes: a letter joins, and
         * '.' ',' never join a letter to a digit */
        utf8proc_category_t c = utf8proc_category(cp);
        bool word = c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
        if (!word || t->norm_len == 0) continue;
        /* aXb, X-X, aX, 5, X, 5, X'x, 7X (no decimal digits in this block) */
        size_t want = 8;
        if (t->token_count != want)
            fail_msg("U+%04X: %zu tokens in \"%s\" (normalised \"%s\"), want %zu", (unsigned)cp, t->token_count, in,
                     t->norm, want);
        assert_int_equal(t->tokens[0].ostart, 0);
        assert_int_equal(t->tokens[0].oend, 2 + n);
        assert_true(t->tokens[1].flags & CHECK_TOK_HYPHEN);
        assert_true(t->tokens[6].flags & CHECK_TOK_INNER);
        checked++;
    }
    assert_true(checked > 200);
}

static void test_sentences(void **state) {
    (void)state;
    const char *s = "St. Basil's Cathedral stands on the square. It is red! approx. 5 cm\nNew line here. "
                    "J. S. Bach sits. \xE8\xA1\x8C\xE3\x80\x82\xE5\xAD\x90";
    check_text_t *t = &scratch->text;
    check_text_prepare(t, rules, s, strlen(s));
    const check_lang_t *lang = check_rules_language(rules, "en-US");
    assert_int_equal(check_lexicon_scan(lang, scratch->hs, t), 0);
    check_text_sentences(t);
    const char *want[] = {"St. Basil's Cathedral stands on the square.", "It is red! approx. 5 cm", "New line here.",
                          "J. S. Bach sits.", "\xE8\xA1\x8C\xE3\x80\x82", "\xE5\xAD\x90"};
    assert_int_equal(t->sentence_count, 6);
    for (size_t i = 0; i < 6; i++) {
        const check_sentence_t *sen = &t->sentences[i];
        assert_int_equal(sen->oend - sen->ostart, strlen(want[i]));
        assert_memory_equal(s + sen->ostart, want[i], strlen(want[i]));
    }
}

static void test_quotes(void **state) {
    (void)state;
    const char *s = "A sign reads \"Beautiful\" and \xC2\xAB\xD0\x9A\xD1\x80\xD0\xB0\xD1\x81\xD0\xB8\xD0\xB2\xD0\xBE\xC2\xBB, "
                    "\xE2\x80\x9CLovely\xE2\x80\x9D; don\xE2\x80\x99t \xE2\x80\x98nice\xE2\x80\x99 \"unclosed";
    check_text_t *t = &scratch->text;
    check_text_prepare(t, rules, s, strlen(s));
    assert_int_equal(t->quote_count, 4);
    const char *inside[] = {"Beautiful", "\xD0\x9A\xD1\x80\xD0\xB0\xD1\x81\xD0\xB8\xD0\xB2\xD0\xBE", "Lovely", "nice"};
    for (size_t i = 0; i < 4; i++) {
        const char *p = strstr(s, inside[i]);
        assert_true(check_text_quoted(t, (uint32_t)(p - s), (uint32_t)(p - s + strlen(inside[i]))));
    }
    const char *p = strstr(s, "unclosed");
    assert_false(check_text_quoted(t, (uint32_t)(p - s), (uint32_t)(p - s + 8)));
    p = strstr(s, "sign");
    assert_false(check_text_quoted(t, (uint32_t)(p - s), (uint32_t)(p - s + 4)));
}

/* ------------------------------------------------------------------ */
/* rules: subjective language and its hard cases */

static void test_subjective(void **state) {
    (void)state;
    const char *text = "A beautiful bowl of rice sits on the table, beautifully glazed and delicious." PAD;
    const check_result_t *r = check_en("bowl", text);
    assert_int_equal(count_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), 3);
    assert_span(text, first_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), "beautiful");
    const check_finding_t *f = first_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE);
    assert_string_equal(f->section, "3.1");
    assert_int_equal(f->severity, CHECK_SEVERITY_MINOR);
    assert_false(f->blocking);
    /* three minor findings: 1 - 3 * 0.05 */
    assert_true(r->score > 0.8499 && r->score < 0.8501);
    assert_false(r->blocking);
}

static void test_subjective_word_boundaries(void **state) {
    (void)state;
    /* "deli" is not "delicious", "greatcoat" not "great", "Goodwin" not "good" */
    const check_result_t *r =
        check_en("bowl", "A bowl of rice from the deli counter sits next to a greatcoat owned by Mr. Goodwin." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), 0);
    r = check_en("bowl", "A bowl of rice sits there, deliciously glossy." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), 1);
}

static void test_subjective_quoted_signage(void **state) {
    (void)state;
    const char *text = "A bowl of rice sits under a sign that reads \"Beautiful Food, Delicious Prices\" in red." PAD;
    const check_result_t *r = check_en("bowl", text);
    assert_int_equal(count_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), 0);
    /* the same words outside the quotes are the annotator's */
    r = check_en("bowl", "A bowl of rice sits under a beautiful sign." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), 1);
}

static void test_subjective_proper_names(void **state) {
    (void)state;
    const check_result_t *r = check_en("bowl", "A bowl of rice stands in the window of the Good Luck Café." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), 0);
    r = check_en("bowl", "A bowl of rice stands on a table. Good Luck Café is written above the door." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), 0);
    /* sentence-initial capital alone is no name: "Delicious Thai curry" */
    const char *text = "A bowl of rice stands on a table. Delicious Thai curry fills a second bowl." PAD;
    r = check_en("bowl", text);
    assert_span(text, first_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), "Delicious");
    /* ...unless the same capitalised words recur inside a sentence */
    r = check_en("bowl", "A bowl of rice stands on a table. Grand Bazaar traders pass by; the Grand Bazaar is busy." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), 0);
    /* words of the task's own names: main object "lucky cat" */
    r = check_en("happy buddha", "A happy buddha statue sits on a shelf." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), 0);
}

static void test_subjective_neutral_phrases(void **state) {
    (void)state;
    const check_result_t *r = check_en("bowl", "A bowl holds a great deal of rice, a charm for good luck." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), 0);
}

static void test_subjective_russian(void **state) {
    (void)state;
    task_spec_t s = {.locale = "ru-RU", .main_object = "борщ"};
    const char *text = "Тарелка борща стоит на столе. ВКУСНЫЙ борщ и красивая ложка, над дверью вывеска «Вкусно и точка».";
    const check_result_t *r = check_spec(&s, text);
    assert_int_equal(count_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), 2);
    assert_span(text, first_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), "ВКУСНЫЙ");
}

/* ------------------------------------------------------------------ */
/* speculation and viewer address */

static void test_speculation(void **state) {
    (void)state;
    const char *text = "A bowl of rice is probably still warm. I think the rice seems to be fresh." PAD;
    const check_result_t *r = check_en("bowl", text);
    assert_int_equal(count_rule(r, CHECK_RULE_SPECULATION), 3);
    assert_span(text, first_rule(r, CHECK_RULE_SPECULATION), "probably");
    /* "I think" is speculation, not also first person */
    assert_int_equal(count_rule(r, CHECK_RULE_VIEWER_ADDRESS), 0);
}

static void test_viewer_address(void **state) {
    (void)state;
    const char *text = "A bowl of rice sits where you can see it. We ate from my bowl." PAD;
    const check_result_t *r = check_en("bowl", text);
    assert_int_equal(count_rule(r, CHECK_RULE_VIEWER_ADDRESS), 3);
    assert_span(text, first_rule(r, CHECK_RULE_VIEWER_ADDRESS), "you");
    /* "US" is a country; "Our Lady of the Rosary" a name */
    r = check_en("bowl", "A bowl of rice sits next to a US flag." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_VIEWER_ADDRESS), 0);
    r = check_en("bowl", "A bowl of rice stands on a shelf. Our Lady of the Rosary looks down from an icon." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_VIEWER_ADDRESS), 0);
    task_spec_t s = {.locale = "ru-RU", .main_object = "борщ"};
    r = check_spec(&s, "Борщ стоит на столе. Я вижу ложку, обратите внимание на неё.");
    assert_int_equal(count_rule(r, CHECK_RULE_VIEWER_ADDRESS), 2);
}

/* ------------------------------------------------------------------ */
/* main object */

static void test_main_object(void **state) {
    (void)state;
    const check_result_t *r = check_en("oyakodon", "A bowl of rice sits on a tray." PAD);
    const check_finding_t *f = first_rule(r, CHECK_RULE_MAIN_OBJECT_MISSING);
    assert_non_null(f);
    assert_int_equal(f->start, 0);
    assert_int_equal(f->end, 0);
    assert_int_equal(f->severity, CHECK_SEVERITY_CRITICAL);
    assert_true(r->score == 0.0);
    /* by a synonym, in the plural, in another case */
    task_spec_t s = {.main_object = "oyakodon", .synonyms = {"rice bowl"}};
    r = check_spec(&s, "Two rice bowls sit on a tray." PAD);
    assert_int_equal(r->count, 0);
    r = check_en("berry", "Three berries lie on a plate." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_MAIN_OBJECT_MISSING), 0);
    r = check_en("feathers", "A feather lies on a plate." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_MAIN_OBJECT_MISSING), 0);
    r = check_en("shoes", "A shoe lies on a plate." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_MAIN_OBJECT_MISSING), 0);
    r = check_en("rice", "A bowl of ricotta lies on a plate." PAD); /* a form, not a prefix */
    assert_int_equal(count_rule(r, CHECK_RULE_MAIN_OBJECT_MISSING), 1);
    task_spec_t ru = {.locale = "ru-RU", .main_object = "матрёшка"};
    r = check_spec(&ru, "На полке стоят пять матрешек.");
    assert_int_equal(count_rule(r, CHECK_RULE_MAIN_OBJECT_MISSING), 0);
    task_spec_t ru2 = {.locale = "ru-RU", .main_object = "платок"};
    r = check_spec(&ru2, "Девушка держит в руках край платка.");
    assert_int_equal(count_rule(r, CHECK_RULE_MAIN_OBJECT_MISSING), 0);
    /* every way a form may differ from its word (word_matches), against the
     * first-bytes filter that rejects tokens before them (form_prefix):
     * a vowel inserted, a vowel dropped, an ending changed, one dropped */
    static const struct {
        const char *object, *text;
        size_t missing;
    } forms[] = {
        {"кукла", "На полке стоят пять кукол.", 0},     {"ложка", "В стакане шесть ложек.", 0},
        {"кусок", "На тарелке два куска хлеба.", 0},    {"платок", "Девушка в платке стоит у окна.", 0},
        {"лепёшка", "На тарелке лежат лепёшки.", 0},    {"пельмени", "В миске один пельмень.", 0},
        {"кукла", "На полке стоит кукуруза.", 1},       {"кусок", "На тарелке лежит кускус.", 1},
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        task_spec_t f = {.locale = "ru-RU", .main_object = forms[i].object};
        r = check_spec(&f, forms[i].text);
        if (count_rule(r, CHECK_RULE_MAIN_OBJECT_MISSING) != forms[i].missing)
            fail_msg("%s in \"%s\": main_object_missing %zu, want %zu", forms[i].object, forms[i].text,
                     count_rule(r, CHECK_RULE_MAIN_OBJECT_MISSING), forms[i].missing);
    }
    /* not in the first sentence: the span is the first sentence */
    const char *text = "A tray stands on a table. An oyakodon sits on it." PAD;
    r = check_en("oyakodon", text);
    assert_span(text, first_rule(r, CHECK_RULE_MAIN_OBJECT_NOT_FIRST), "A tray stands on a table.");
}

static void test_main_object_underdescribed(void **state) {
    (void)state;
    const char *text =
        "A small kimono hangs in the corner of a shop. The shop is long and narrow, with shelves of tea tins, "
        "noodles and bottles of soy sauce on both walls. A woman in a grey cardigan counts banknotes behind the "
        "counter while a customer in a yellow raincoat waits with a basket. Paper lanterns hang from the ceiling "
        "in a row, and a calendar is pinned to the wall. Through the glass door, a wet street with parked "
        "bicycles can be seen, and a stack of newspapers lies on a stool by the door.";
    const check_result_t *r = check_en("kimono", text);
    assert_int_equal(count_rule(r, CHECK_RULE_MAIN_OBJECT_UNDERDESCRIBED), 1);
    /* "It ..." continues the main object */
    r = check_en("kimono",
                 "A red kimono hangs on a stand. It has long sleeves with cranes embroidered on them. Its obi is "
                 "gold. It reaches the floor, and its hem is padded. The shop is long and narrow, with shelves on "
                 "both walls and a counter at the back where a woman counts money. A calendar hangs on the wall.");
    assert_int_equal(count_rule(r, CHECK_RULE_MAIN_OBJECT_UNDERDESCRIBED), 0);
}

/* ------------------------------------------------------------------ */
/* relations */

static void test_relations(void **state) {
    (void)state;
    task_spec_t s = {.main_object = "oyakodon",
                     .comps = {{"egg", "poured over", "rice"}, {"mitsuba", "scattered on", "egg"}}};
    /* stated with other words than the task's */
    const check_result_t *r = check_spec(&s, "An oyakodon is served in a bowl. A layer of egg is spread across the "
                                             "rice, and mitsuba leaves lie atop the egg." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 0);
    r = check_spec(&s, "An oyakodon is served in a bowl. The rice is hidden under the egg. On top of it, a few "
                       "mitsuba leaves are scattered." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 0);
    r = check_spec(&s, "An oyakodon is served in a bowl. In the middle of the rice, the egg has set, with mitsuba "
                       "leaves on top." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 0);
    /* listed */
    const char *text = "An oyakodon is served in a bowl. It has rice, egg, pieces of chicken and mitsuba." PAD;
    r = check_spec(&s, text);
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 2);
    assert_span(text, first_rule(r, CHECK_RULE_RELATION_MISSING),
                "It has rice, egg, pieces of chicken and mitsuba.");
    /* a component not mentioned at all */
    r = check_spec(&s, "An oyakodon is served in a bowl. Egg has been poured over the rice." PAD);
    const check_finding_t *f = first_rule(r, CHECK_RULE_RELATION_MISSING);
    assert_non_null(f);
    assert_int_equal(f->start, 0);
    assert_non_null(strstr(f->message, "mitsuba"));
    /* Russian, with cases on both sides */
    task_spec_t ru = {.locale = "ru-RU", .main_object = "борщ", .comps = {{"сметана", "плавает в", "борщ"}}};
    r = check_spec(&ru, "Тарелка борща стоит на столе. В борще плавает ложка сметаны.");
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 0);
    r = check_spec(&ru, "Тарелка борща стоит на столе. Борщ, сметана, хлеб.");
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 1);
}

/* A target named in full once and then by its head word; a target by its
 * container; the task's own relation after the component. */
static void test_relations_by_reference(void **state) {
    (void)state;
    task_spec_t s = {.main_object = "bibimbap", .comps = {{"gochujang", "beside", "fried egg"}}};
    const check_result_t *r = check_spec(&s, "A bibimbap fills a stone bowl. A fried egg rests on the rice. A spoonful "
                                             "of gochujang sits next to the egg." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 0);
    /* beside the bowl of ceviche is beside the ceviche ... */
    task_spec_t c = {.main_object = "plate", .comps = {{"sweet potato", "beside", "ceviche"}}};
    r = check_spec(&c, "A plate holds a glass bowl of ceviche. A slice of sweet potato lies next to the bowl." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 0);
    r = check_spec(&c, "A plate holds ten pieces of ceviche arranged on a round white dish. A slice of sweet potato "
                       "lies next to the dish." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 0);
    /* ... but a bowl beside something else is no container of it */
    r = check_spec(&c, "A plate holds a bowl beside the ceviche. A slice of sweet potato lies next to the bowl." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 1);
    /* and on the plate of ceviche is not on the ceviche */
    task_spec_t o = {.main_object = "table", .comps = {{"coriander", "on top of", "ceviche"}}};
    r = check_spec(&o, "A table holds a plate of ceviche. Coriander lies on the plate." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 1);
    /* a jar of kimchi puts the kimchi in the jar */
    task_spec_t k = {.main_object = "counter", .comps = {{"kimchi", "in", "jar"}}};
    r = check_spec(&k, "A counter holds a glass jar of kimchi." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 0);
    r = check_spec(&k, "A counter is wiped clean. There is a glass jar, kimchi and a spoon." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 1);
    /* the task's own words after the component, the target said otherwise */
    task_spec_t h = {.main_object = "hei-tiki", .comps = {{"cord", "threaded through", "hei-tiki"}}};
    r = check_spec(&h, "A hei-tiki lies on felt. A black cord is threaded through a hole in the figure's head." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 0);
    r = check_spec(&h, "A hei-tiki lies on felt. A black cord and a card lie beside the felt." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_RELATION_MISSING), 1);
}

/* ------------------------------------------------------------------ */
/* reference overload, length, form */

static void test_reference_overload(void **state) {
    (void)state;
    const char *visual = "A paella pan stands on a table, filled with yellow rice. Mussels are arranged on the rice. "
                         "Lemon wedges lie on the rim. A spoon leans against a handle. ";
    char text[2048];
    snprintf(text, sizeof(text), "%sPaella originated in Valencia in the nineteenth century. The name comes from "
                                 "the Latin word patella. It is considered the national dish of Spain.", visual);
    const check_result_t *r = check_en("paella", text);
    const check_finding_t *f = first_rule(r, CHECK_RULE_REFERENCE_OVERLOAD);
    assert_non_null(f);
    assert_memory_equal(text + f->start, "Paella originated", 17);
    assert_int_equal(f->end, strlen(text));
    /* one background sentence is allowed; a year after "in" is a cue */
    snprintf(text, sizeof(text), "%sThe dish was first cooked in 1840.", visual);
    r = check_en("paella", text);
    assert_int_equal(count_rule(r, CHECK_RULE_REFERENCE_OVERLOAD), 0);
    snprintf(text, sizeof(text), "%sThe dish was first cooked in 1840. Since 1900 it has been sold here.", visual);
    r = check_en("paella", text);
    assert_int_equal(count_rule(r, CHECK_RULE_REFERENCE_OVERLOAD), 1);
}

static void test_length(void **state) {
    (void)state;
    const check_result_t *r = check_en("bowl", "A bowl of rice.");
    const check_finding_t *f = first_rule(r, CHECK_RULE_LENGTH);
    assert_non_null(f);
    assert_non_null(strstr(f->message, "4 words"));
    char *big = malloc(40000);
    assert_non_null(big);
    size_t off = 0;
    off += (size_t)sprintf(big, "A bowl of rice.");
    while (off < 3000) off += (size_t)sprintf(big + off, " The bowl is red.");
    r = check_en("bowl", big);
    f = first_rule(r, CHECK_RULE_LENGTH);
    assert_non_null(f);
    assert_non_null(strstr(f->message, "maximum"));
    memset(big, 'a', 39999);
    big[39999] = '\0';
    r = check_en("bowl", big);
    assert_int_equal(r->count, 1); /* too big to analyse: one length finding */
    assert_int_equal(r->findings[0].rule, CHECK_RULE_LENGTH);
    free(big);
}

static void test_invalid_text(void **state) {
    (void)state;
    struct {
        const char *text;
        const char *span;
    } cases[] = {
        {"A <b>bowl</b> of rice." PAD, "<b>"},
        {"A bowl &amp; rice." PAD, "&amp;"},
        {"A bowl of **rice**." PAD, "**"},
        {"A bowl of rice.\n- rice\n- egg" PAD, "-"},
        {"# Bowl\nA bowl of rice." PAD, "#"},
        {"A bowl\x07 of rice." PAD, "\x07"},
        {"A bo\xE2\x80\x8Bwl of rice." PAD, "\xE2\x80\x8B"},
        {"A bowl \xE2\x80\xAEof rice." PAD, "\xE2\x80\xAE"},
        {"A bowl of `rice`." PAD, "`"},
    };
    const check_result_t *r0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const check_result_t *r = check_en("bowl", cases[i].text);
        const check_finding_t *f = first_rule(r, CHECK_RULE_INVALID_TEXT);
        assert_span(cases[i].text, f, cases[i].span);
        assert_true(f->blocking);
        assert_true(r->blocking);
        /* the zero-width space does not hide the main object */
        assert_int_equal(count_rule(r, CHECK_RULE_MAIN_OBJECT_MISSING), 0);
    }
    /* words inside the markup are not the annotator's */
    r0 = check_en("bowl", "A <i>bowl</i> of rice." PAD);
    assert_int_equal(count_rule(r0, CHECK_RULE_VIEWER_ADDRESS), 0);
    /* ordinary punctuation is no markup */
    const check_result_t *r = check_en("bowl", "A bowl of rice (about 3 < 4 cups) sits 2 - 3 cm from a #2 pencil." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_INVALID_TEXT), 0);
}

/* ------------------------------------------------------------------ */
/* exam stage 2 */

static void test_editing(void **state) {
    (void)state;
    const char *pre = "A beautiful bowl of rice is probably warm. The bowl holds rice, egg and sauce." PAD;
    task_spec_t s = {.main_object = "bowl",
                     .kind = CHECK_KIND_EXAM_STAGE2,
                     .pregenerated = pre,
                     .comps = {{"sauce", "poured over", "rice"}}};
    /* left as it is */
    const check_result_t *r = check_spec(&s, pre);
    assert_int_equal(count_rule(r, CHECK_RULE_NO_MEANINGFUL_EDIT), 1);
    assert_int_equal(count_rule(r, CHECK_RULE_UNFIXED_DEFECT), 3);
    assert_int_equal(count_rule(r, CHECK_RULE_SUBJECTIVE_LANGUAGE), 0);
    const check_finding_t *f = first_rule(r, CHECK_RULE_UNFIXED_DEFECT);
    assert_span(pre, f, "beautiful");
    assert_string_equal(f->section, "6.2");
    assert_true(r->score == 0.0);
    /* rewritten */
    r = check_spec(&s, "A bowl of rice stands on the table. Sauce has been poured over the rice, and a fried egg "
                       "lies on top of it." PAD);
    assert_int_equal(r->count, 0);
    /* rewritten with one defect kept and one new one */
    r = check_spec(&s, "A bowl of rice stands on the table, probably warm. Sauce has been poured over the rice, "
                       "and I guess the egg is fried." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_NO_MEANINGFUL_EDIT), 0);
    assert_int_equal(count_rule(r, CHECK_RULE_UNFIXED_DEFECT), 1);
    assert_int_equal(count_rule(r, CHECK_RULE_SPECULATION), 1);
    /* an unfixed defect is never milder than the defect */
    task_spec_t m = {.main_object = "kimono", .kind = CHECK_KIND_EXAM_STAGE2, .pregenerated = "A robe hangs." PAD};
    r = check_spec(&m, "A red robe hangs on a stand." PAD);
    f = first_rule(r, CHECK_RULE_UNFIXED_DEFECT);
    assert_non_null(f);
    assert_int_equal(f->severity, CHECK_SEVERITY_CRITICAL);
}

/* A defect is left from the pre-generated text only when it is the same
 * defect: the identity of a finding once mixed its rule and its component
 * by XOR, so the second component's relation_missing (rule 6, component
 * 2) was main_object_not_first (rule 4), and a description that named the
 * main object late was told it had left that in place. */
static void test_unfixed_only_for_the_same_defect(void **state) {
    (void)state;
    task_spec_t s = {.main_object = "tagine",
                     .kind = CHECK_KIND_EXAM_STAGE2,
                     .pregenerated = "A tagine stands on a table. It has a lid, lamb and prunes." PAD,
                     .comps = {{"lid", "set beside", "base"}, {"prunes", "piled in", "base"}}};
    const check_result_t *r = check_spec(&s, "An object stands in the centre. The lid is set beside the base, and "
                                             "the prunes are piled in the base of the tagine." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_MAIN_OBJECT_NOT_FIRST), 1);
    assert_int_equal(count_rule(r, CHECK_RULE_UNFIXED_DEFECT), 0);
    /* and each component's relation is its own defect: the second left in
     * place is not the first */
    r = check_spec(&s, "A tagine stands on a table. The lid is set beside the base; prunes and base are all else "
                       "there is." PAD);
    assert_int_equal(count_rule(r, CHECK_RULE_UNFIXED_DEFECT), 1);
    assert_non_null(strstr(first_rule(r, CHECK_RULE_UNFIXED_DEFECT)->message, "prunes"));
}

/* fuzz_check's first finding (tests/fuzz/corpus/fuzz_check/regress-no-mentions):
 * on a fresh scratch, a text that names nothing of the task left the
 * mentions array unallocated, and group_mentions added offset 0 to its NULL
 * (undefined; UBSan reports it: make CC=clang-14 SANITIZE=undefined). */
static void test_no_mentions_on_a_fresh_scratch(void **state) {
    (void)state;
    check_scratch_t *fresh = check_scratch_new();
    assert_non_null(fresh);
    check_result_t r;
    check_result_init(&r);
    char *syn[4];
    check_component_t comps[4];
    task_spec_t s = {.main_object = "curry rice", .comps = {{"sauce", "poured over", "rice"}}};
    check_task_t t = task_of(&s, syn, comps);
    const char *text = "A plate on a table.";
    assert_int_equal(check_run(rules, fresh, &t, text, strlen(text), &r, errstr, sizeof(errstr)), 0);
    assert_int_equal(count_rule(&r, CHECK_RULE_MAIN_OBJECT_MISSING), 1);
    check_result_free(&r);
    check_scratch_destroy(fresh);
}

/* fuzz_check: a task string that is not valid UTF-8 (a name cut in the
 * middle of a letter) was copied as it was into a finding's message, which
 * check.h promises is valid UTF-8 (it goes into JSON and protobuf strings). */
static void test_bad_task_strings_give_valid_messages(void **state) {
    (void)state;
    task_spec_t s = {.main_object = "\xd0\xbf\xd0\xb5\xd0\xbb\xd1", /* "пел" and half a letter */
                     .comps = {{"\xd1\x81\xd0\xbc\xd0\xb5\xd1", "on", "\xff"}}};
    const check_result_t *r = check_spec(&s, "A plate on a table." PAD);
    const check_finding_t *f = first_rule(r, CHECK_RULE_MAIN_OBJECT_MISSING);
    assert_non_null(f);
    for (size_t i = 0; i < r->count; i++) {
        const char *m = r->findings[i].message;
        if (!utf8_valid(m, strlen(m))) fail_msg("%s: message not valid UTF-8: %s", check_rule_name(r->findings[i].rule), m);
    }
    assert_non_null(strstr(f->message, "\"\xd0\xbf\xd0\xb5\xd0\xbb?\""));
}

/* fuzz_check: a message longer than CHECK_MESSAGE_MAX was cut by
 * vsnprintf, and the cut was then moved back from the terminating NUL, not
 * from the last letter: half a letter could stay at the end.  Long names of
 * two-byte letters, shifted by one ASCII byte, put the cut on both halves. */
static void test_long_messages_cut_on_a_letter(void **state) {
    (void)state;
    static const char *const targets[] = {"\xd0\xbc\xd0\xb0\xd0\xbb\xd0\xb5\xd0\xbd\xd1\x8c\xd0\xba\xd0\xb8\xd0\xb5 "
                                          "\xd0\xb4\xd0\xb5\xd1\x80\xd0\xb5\xd0\xb2\xd1\x8f\xd0\xbd\xd0\xbd\xd1\x8b\xd0\xb5 "
                                          "\xd0\xbb\xd0\xbe\xd0\xb6\xd0\xba\xd0\xb8",
                                          "\xd0\xbc\xd0\xb0\xd0\xbb\xd0\xb5\xd0\xbd\xd1\x8c\xd0\xba\xd0\xb8\xd0\xb5 "
                                          "\xd0\xb4\xd0\xb5\xd1\x80\xd0\xb5\xd0\xb2\xd1\x8f\xd0\xbd\xd0\xbd\xd1\x8b\xd0\xb5 "
                                          "\xd0\xbb\xd0\xbe\xd0\xb6\xd0\xba\xd0\xb8 xy"};
    /* "большие расписные деревянные куклы" beside "маленькие деревянные ложки (xy)" */
    const char *name = "\xd0\xb1\xd0\xbe\xd0\xbb\xd1\x8c\xd1\x88\xd0\xb8\xd0\xb5 "
                       "\xd1\x80\xd0\xb0\xd1\x81\xd0\xbf\xd0\xb8\xd1\x81\xd0\xbd\xd1\x8b\xd0\xb5 "
                       "\xd0\xb4\xd0\xb5\xd1\x80\xd0\xb5\xd0\xb2\xd1\x8f\xd0\xbd\xd0\xbd\xd1\x8b\xd0\xb5 "
                       "\xd0\xba\xd1\x83\xd0\xba\xd0\xbb\xd1\x8b";
    size_t relation_findings = 0;
    for (int shift = 0; shift < 2; shift++) {
        task_spec_t s = {.locale = "ru-RU",
                         .main_object = "\xd0\xbc\xd0\xb0\xd1\x82\xd1\x80\xd1\x91\xd1\x88\xd0\xba\xd0\xb0",
                         .comps = {{name, "\xd1\x81\xd1\x82\xd0\xbe\xd1\x8f\xd1\x82 \xd1\x80\xd1\x8f\xd0\xb4\xd0\xbe\xd0\xbc \xd1\x81",
                                    targets[shift]}}};
        char text[1024];
        /* "На полке стоит матрёшка, а на столе <name> и <target>." */
        snprintf(text, sizeof(text),
                 "\xd0\x9d\xd0\xb0 \xd0\xbf\xd0\xbe\xd0\xbb\xd0\xba\xd0\xb5 \xd1\x81\xd1\x82\xd0\xbe\xd0\xb8\xd1\x82 "
                 "\xd0\xbc\xd0\xb0\xd1\x82\xd1\x80\xd1\x91\xd1\x88\xd0\xba\xd0\xb0, \xd0\xb0 \xd0\xbd\xd0\xb0 "
                 "\xd1\x81\xd1\x82\xd0\xbe\xd0\xbb\xd0\xb5 %s \xd0\xb8 %s.",
                 name, targets[shift]);
        const check_result_t *r = check_spec(&s, text);
        relation_findings += count_rule(r, CHECK_RULE_RELATION_MISSING);
        for (size_t i = 0; i < r->count; i++) {
            const char *m = r->findings[i].message;
            if (!utf8_valid(m, strlen(m))) fail_msg("%s: message cut mid-letter: %s", check_rule_name(r->findings[i].rule), m);
        }
    }
    assert_true(relation_findings > 0);
}

static void test_no_main_object_is_an_error(void **state) {
    (void)state;
    check_task_t t;
    memset(&t, 0, sizeof(t));
    t.kind = CHECK_KIND_PRODUCTION;
    t.locale = "en-US";
    assert_int_equal(check_run(rules, scratch, &t, "text", 4, &result, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "main object"));
}

static void test_other_languages(void **state) {
    (void)state;
    /* no lexicons for Japanese: structural rules only */
    assert_false(check_rules_has_language(rules, "ja"));
    assert_true(check_rules_has_language(rules, "ru"));
    task_spec_t s = {.locale = "ja-JP", .main_object = "親子丼"};
    const check_result_t *r = check_spec(&s, "器の中に親子丼がある。");
    assert_int_equal(count_rule(r, CHECK_RULE_MAIN_OBJECT_MISSING), 0);
    r = check_spec(&s, "器の中にご飯がある。");
    assert_int_equal(count_rule(r, CHECK_RULE_MAIN_OBJECT_MISSING), 1);
}

/* ------------------------------------------------------------------ */
/* JSON */

static int task_json_fails(const char *json, const char *want) {
    json_error_t jerr;
    json_t *obj = json_loads(json, 0, &jerr);
    assert_non_null(obj);
    check_task_t t;
    int rc = check_task_from_json(obj, &t, errstr, sizeof(errstr));
    check_task_clear(&t);
    json_decref(obj);
    if (rc == 0) return 0;
    if (strstr(errstr, want) == NULL) fprintf(stderr, "error '%s' lacks '%s'\n", errstr, want);
    return strstr(errstr, want) != NULL;
}

static void test_json_task(void **state) {
    (void)state;
    const char *full = "{\"task_id\":\"t1\",\"kind\":\"exam_stage2\",\"image_uri\":\"s3://b/i.jpg\","
                       "\"main_object\":\"donburi\",\"main_object_synonyms\":[\"rice bowl\",\"丼\"],\"locale\":\"ja-JP\","
                       "\"skills\":[\"food\"],\"components\":[{\"name\":\"sauce\",\"relation\":\"poured over\","
                       "\"target\":\"rice\"},{\"name\":\"egg\"}],\"pregenerated\":\"x\",\"priority\":3,"
                       "\"guideline_version\":\"v7\"}";
    json_t *obj = json_loads(full, 0, NULL);
    check_task_t t;
    assert_int_equal(check_task_from_json(obj, &t, errstr, sizeof(errstr)), 0);
    assert_string_equal(t.task_id, "t1");
    assert_int_equal(t.kind, CHECK_KIND_EXAM_STAGE2);
    assert_int_equal(t.synonym_count, 2);
    assert_string_equal(t.main_object_synonyms[1], "丼");
    assert_int_equal(t.component_count, 2);
    assert_string_equal(t.components[0].relation, "poured over");
    assert_null(t.components[1].target);
    assert_int_equal(t.priority, 3);
    assert_string_equal(t.guideline_version, "v7");
    check_task_clear(&t);
    json_decref(obj);

    assert_true(task_json_fails("{\"kind\":\"production\",\"main_object\":\"x\",\"locale\":\"en\",\"colour\":1}",
                                "task.colour: unknown field"));
    assert_true(task_json_fails("{\"kind\":\"production\",\"main_object\":\"x\",\"locale\":\"en\",\"priority\":\"1\"}",
                                "task.priority: expected a 32-bit integer"));
    assert_true(task_json_fails("{\"kind\":\"production\",\"main_object\":\"x\",\"locale\":\"en\","
                                "\"components\":[{\"name\":\"a\"},{\"name\":\"b\",\"colour\":\"red\"}]}",
                                "task.components[1].colour: unknown field"));
    assert_true(task_json_fails("{\"kind\":\"production\",\"main_object\":\"x\",\"locale\":\"en\","
                                "\"components\":[{\"relation\":\"on\"}]}",
                                "task.components[0].name: required"));
    assert_true(task_json_fails("{\"kind\":\"draft\",\"main_object\":\"x\",\"locale\":\"en\"}", "task.kind: expected"));
    assert_true(task_json_fails("{\"kind\":\"production\",\"locale\":\"en\"}", "task.main_object: required"));
    assert_true(task_json_fails("{\"kind\":\"production\",\"main_object\":\"x\",\"locale\":\"english!\"}",
                                "task.locale: expected a BCP 47 tag"));
    assert_true(task_json_fails("{\"kind\":\"exam_stage2\",\"main_object\":\"x\",\"locale\":\"en\"}",
                                "task.pregenerated: required for exam_stage2"));
    assert_true(task_json_fails("{\"kind\":\"production\",\"main_object\":\"x\",\"locale\":\"en\","
                                "\"main_object_synonyms\":[\"a\",2]}",
                                "task.main_object_synonyms[1]: expected a string"));
    /* a NUL inside a string would cut it short */
    json_error_t jerr;
    const char *nul_json = "{\"kind\":\"production\",\"main_object\":\"a\\u0000b\",\"locale\":\"en\"}";
    json_t *nul = json_loadb(nul_json, strlen(nul_json), JSON_ALLOW_NUL, &jerr);
    assert_non_null(nul);
    assert_int_equal(check_task_from_json(nul, &t, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "task.main_object: contains a NUL"));
    check_task_clear(&t);
    json_decref(nul);
}

static void test_json_request_and_result(void **state) {
    (void)state;
    const char *line = "{\"task\":{\"kind\":\"production\",\"main_object\":\"bowl\",\"locale\":\"en-US\"},"
                       "\"description\":\"A beautiful bowl.\",\"expect\":[\"length\"]}";
    json_t *obj = json_loads(line, 0, NULL);
    check_task_t t;
    const char *text;
    size_t len;
    assert_int_equal(check_request_from_json(obj, &t, &text, &len, errstr, sizeof(errstr)), 0);
    assert_int_equal(len, 17);
    assert_int_equal(check_run(rules, scratch, &t, text, len, &result, errstr, sizeof(errstr)), 0);
    json_t *out = check_result_to_json(&result);
    assert_non_null(out);
    json_t *findings = json_object_get(out, "findings");
    assert_int_equal(json_array_size(findings), 2);
    json_t *f = json_array_get(findings, 0);
    assert_string_equal(json_string_value(json_object_get(f, "rule")), "length");
    assert_string_equal(json_string_value(json_object_get(f, "severity")), "major");
    assert_string_equal(json_string_value(json_object_get(f, "section")), "5.1");
    f = json_array_get(findings, 1);
    assert_int_equal(json_integer_value(json_object_get(f, "start")), 2);
    assert_int_equal(json_integer_value(json_object_get(f, "end")), 11);
    assert_true(json_is_false(json_object_get(f, "blocking")));
    assert_true(json_real_value(json_object_get(out, "score")) == 0.75);
    assert_true(json_is_false(json_object_get(out, "blocking")));
    json_decref(out);
    check_task_clear(&t);
    json_decref(obj);

    const struct {
        const char *json, *want;
    } bad[] = {
        {"{\"task\":{\"kind\":\"production\",\"main_object\":\"b\",\"locale\":\"en\"}}", "description: required"},
        {"{\"description\":\"x\"}", "task: required"},
        {"{\"task\":{},\"description\":\"x\",\"id\":1}", "id: unknown field"},
        {"{\"task\":{},\"description\":\"x\",\"expect\":[\"beauty\"]}", "expect: expected an array of rule ids"},
        {"{\"task\":{},\"description\":3}", "description: expected a string"},
        {"[1]", "expected an object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        obj = json_loads(bad[i].json, 0, NULL);
        assert_non_null(obj);
        assert_int_equal(check_request_from_json(obj, &t, &text, &len, errstr, sizeof(errstr)), -1);
        if (strstr(errstr, bad[i].want) == NULL) fprintf(stderr, "'%s' lacks '%s'\n", errstr, bad[i].want);
        assert_non_null(strstr(errstr, bad[i].want));
        check_task_clear(&t);
        json_decref(obj);
    }
}

/* ------------------------------------------------------------------ */
/* configuration */

static char tmpdir[64];

static int config_copy(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_check.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "cp -r " RULES_DIR "/. %s/", tmpdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static int config_remove(void **state) {
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void file_append(const char *rel, const char *text) {
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int file_lines(const char *rel) {
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0, c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

/* Appends a line to a file of the copy and expects loading to fail naming
 * that file and line, and `want`. */
static void load_fails_at(const char *rel, const char *line, const char *want) {
    int at = file_lines(rel) + 1;
    file_append(rel, line);
    check_rules_t *r = check_rules_load(tmpdir, errstr, sizeof(errstr));
    assert_null(r);
    char where[300];
    snprintf(where, sizeof(where), "%s/%s:%d:", tmpdir, rel, at);
    if (strstr(errstr, where) == NULL || strstr(errstr, want) == NULL)
        fprintf(stderr, "error '%s' lacks '%s' or '%s'\n", errstr, where, want);
    assert_non_null(strstr(errstr, where));
    assert_non_null(strstr(errstr, want));
}

static void test_config_copy_loads(void **state) {
    (void)state;
    check_rules_t *r = check_rules_load(tmpdir, errstr, sizeof(errstr));
    assert_non_null(r);
    assert_int_equal(strlen(check_rules_version(r)), 16);
    assert_true(check_rules_weight(r, CHECK_SEVERITY_MAJOR) == 0.2);
    check_rules_destroy(r);
}

static void test_config_unknown_key(void **state) {
    (void)state;
    load_fails_at("checker.conf", "length.min_wrods = 3\n", "unknown key 'length.min_wrods'");
}

static void test_config_bad_number(void **state) {
    (void)state;
    load_fails_at("checker.conf", "weight.major = 2\n", "weight.major");
}

static void test_config_bad_rule(void **state) {
    (void)state;
    load_fails_at("checker.conf", "rule.length = severe 5.1\n", "rule.length");
}

static void test_config_not_a_rule(void **state) {
    (void)state;
    load_fails_at("checker.conf", "rule.beauty = minor 3.1\n", "'beauty' is not a rule id");
}

static void test_config_bad_entry(void **state) {
    (void)state;
    load_fails_at("en/subjective.txt", "lovely(ish\n", "'(' without ')'");
}

static void test_config_duplicate_entry(void **state) {
    (void)state;
    load_fails_at("en/speculation.txt", "beautifully\n", "already listed at");
}

static void test_config_unknown_language_key(void **state) {
    (void)state;
    load_fails_at("ru/language.conf", "plural = ы\n", "unknown key 'plural'");
}

static void test_config_missing_file(void **state) {
    (void)state;
    char path[256];
    snprintf(path, sizeof(path), "%s/ru/viewer.txt", tmpdir);
    assert_int_equal(unlink(path), 0);
    assert_null(check_rules_load(tmpdir, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "ru/viewer.txt"));
}

static void test_config_missing_key(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "sed -i '/^edit.min_distance/d' %s/checker.conf", tmpdir);
    assert_int_equal(system(cmd), 0);
    assert_null(check_rules_load(tmpdir, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "'edit.min_distance' is not set"));
}

static void test_taxonomy(void **state) {
    (void)state;
    check_taxonomy_t tx;
    assert_int_equal(check_taxonomy_load(&tx, "config/taxonomy.conf", errstr, sizeof(errstr)), 0);
    assert_int_equal(tx.count, 17);
    /* the checker's configuration agrees with the shared taxonomy */
    for (int i = 0; i < CHECK_RULE_COUNT; i++) {
        const check_category_t *c = check_taxonomy_find(&tx, check_rule_name((check_rule_t)i));
        assert_non_null(c);
        assert_true(c->checker);
        assert_int_equal(c->severity, rules->rule[i].severity);
        assert_string_equal(c->section, rules->rule[i].section);
    }
    const char *validator_only[] = {"not_visible", "factual_error", "cultural_inaccuracy", "language_quality", "other"};
    for (size_t i = 0; i < 5; i++) {
        const check_category_t *c = check_taxonomy_find(&tx, validator_only[i]);
        assert_non_null(c);
        assert_false(c->checker);
    }
    assert_null(check_taxonomy_find(&tx, "beauty"));
    check_taxonomy_free(&tx);

    char path[] = "/tmp/test_check_tx.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *bad = "length major 5.1 checker\nnot_visible critical 1.1 somebody\n";
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    assert_int_equal(check_taxonomy_load(&tx, path, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, ":2:"));
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    const char *partial = "length major 5.1 checker\n";
    assert_int_equal(write(fd, partial, strlen(partial)), (ssize_t)strlen(partial));
    close(fd);
    assert_int_equal(check_taxonomy_load(&tx, path, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "is missing"));
    unlink(path);
}

/* ------------------------------------------------------------------ */
/* the corpus */

typedef struct corpus_line {
    check_task_t task;
    char *text;
    size_t len;
    bool expect[CHECK_RULE_COUNT];
} corpus_line_t;

static corpus_line_t *corpus;
static size_t corpus_count;

/* Loads the corpus file named by *state (set with
 * cmocka_unit_test_prestate_setup_teardown). */
static int corpus_load(void **state) {
    const char *path = *state;
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) != -1) {
        json_error_t jerr;
        json_t *obj = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &jerr);
        if (obj == NULL) {
            fprintf(stderr, "%s:%zu: %s\n", path, corpus_count + 1, jerr.text);
            return -1;
        }
        corpus = realloc(corpus, (corpus_count + 1) * sizeof(*corpus));
        corpus_line_t *c = &corpus[corpus_count++];
        memset(c, 0, sizeof(*c));
        const char *text;
        if (check_request_from_json(obj, &c->task, &text, &c->len, errstr, sizeof(errstr)) != 0) {
            fprintf(stderr, "%s:%zu: %s\n", path, corpus_count, errstr);
            return -1;
        }
        c->text = malloc(c->len + 1);
        memcpy(c->text, text, c->len + 1);
        json_t *e;
        size_t i;
        json_array_foreach(json_object_get(obj, "expect"), i, e) {
            check_rule_t rule;
            if (check_rule_parse(json_string_value(e), &rule) != 0) {
                fprintf(stderr, "%s:%zu: unknown rule in expect\n", path, corpus_count);
                return -1;
            }
            c->expect[rule] = true;
        }
        json_decref(obj);
    }
    free(line);
    fclose(f);
    return 0;
}

static int corpus_free(void **state) {
    (void)state;
    for (size_t i = 0; i < corpus_count; i++) {
        check_task_clear(&corpus[i].task);
        free(corpus[i].text);
    }
    free(corpus);
    corpus = NULL;
    corpus_count = 0;
    return 0;
}

/* Runs the loaded corpus, prints every disagreement and the per-rule table,
 * and returns true when a rule is below 0.9 precision or 0.85 recall (or,
 * when every_rule is set, has no labelled example at all). */
static bool corpus_score(const char *name, bool every_rule) {
    size_t tp[CHECK_RULE_COUNT] = {0}, fp[CHECK_RULE_COUNT] = {0}, fn[CHECK_RULE_COUNT] = {0};
    size_t russian = 0, clean = 0;
    for (size_t i = 0; i < corpus_count; i++) {
        corpus_line_t *c = &corpus[i];
        russian += strncmp(c->task.locale, "ru", 2) == 0;
        assert_int_equal(check_run(rules, scratch, &c->task, c->text, c->len, &result, errstr, sizeof(errstr)), 0);
        bool got[CHECK_RULE_COUNT] = {false};
        bool any = false;
        for (size_t k = 0; k < result.count; k++) got[result.findings[k].rule] = true;
        for (int r = 0; r < CHECK_RULE_COUNT; r++) {
            any |= c->expect[r];
            if (got[r] && c->expect[r]) tp[r]++;
            else if (got[r]) fp[r]++;
            else if (c->expect[r]) fn[r]++;
            if (got[r] != c->expect[r])
                fprintf(stderr, "  %s %s: %s\n", c->task.task_id ? c->task.task_id : "?",
                        got[r] ? "unexpected" : "missed", check_rule_name((check_rule_t)r));
        }
        clean += !any;
    }
    printf("%s: %zu descriptions (%zu clean, %zu Russian)\n", name, corpus_count, clean, russian);
    printf("%-28s %4s %4s %4s %9s %7s\n", "rule", "tp", "fp", "fn", "precision", "recall");
    bool failed = false;
    for (int r = 0; r < CHECK_RULE_COUNT; r++) {
        double p = tp[r] + fp[r] ? (double)tp[r] / (double)(tp[r] + fp[r]) : 1.0;
        double rc = tp[r] + fn[r] ? (double)tp[r] / (double)(tp[r] + fn[r]) : 1.0;
        bool bad = p < 0.9 || rc < 0.85 || (every_rule && tp[r] + fn[r] == 0);
        printf("%-28s %4zu %4zu %4zu %9.3f %7.3f%s\n", check_rule_name((check_rule_t)r), tp[r], fp[r], fn[r], p, rc,
               bad ? "  <-- below 0.9 / 0.85 or no examples" : "");
        failed |= bad;
    }
    if (strcmp(name, "corpus") == 0) {
        assert_true(russian >= 10);
        assert_true(clean >= 50);
    }
    return failed;
}

static void test_corpus_precision_recall(void **state) {
    (void)state;
    assert_true(corpus_count >= 150);
    assert_false(corpus_score("corpus", true));
}

/* The holdout batch was written and labelled from DESIGN.md section 6 by
 * someone who had not read the rules or lexicons; its figures are reported
 * on their own so that they are not diluted by the author's corpus.  They
 * are a measurement, not a bar: every line must load and run, but a rule
 * below 0.9 / 0.85 here is reported (and its misses listed) without
 * failing, since tuning the rules until the holdout passes would make it
 * one more author's corpus.  docs/ARCHITECTURE.md keeps the figures. */
static void test_holdout_precision_recall(void **state) {
    (void)state;
    assert_true(corpus_count >= 60);
    if (corpus_score("holdout", false)) printf("holdout: some rules are below 0.9 / 0.85 (measured, not enforced)\n");
}

/* The scan form text_tokenise writes on the way equals the one made from
 * the finished tokens (check_norm_scan_form, as the lexicon entries are
 * made), for every corpus text and a few odd ones. */
static void test_scan_form(void **state) {
    (void)state;
    static const char *const odd[] = {
        "— «Вкусно» — don't eye-catching 3.5 1,000 a-b- -c 'q' 親子丼は、美味しい。 café\xCC\x81 x\xE2\x80\x8By",
        "\xF0\x9F\x8D\x9C ramen \xE2\x80\x94 end \xC2\xAB", "...", "",
    };
    check_text_t t;
    memset(&t, 0, sizeof(t));
    for (size_t i = 0; i < corpus_count + sizeof(odd) / sizeof(odd[0]); i++) {
        const char *text = i < corpus_count ? corpus[i].text : odd[i - corpus_count];
        size_t len = i < corpus_count ? corpus[i].len : strlen(text);
        check_text_prepare(&t, rules, text, len);
        char *want = malloc(t.norm_len + 1);
        memcpy(want, t.norm, t.norm_len);
        size_t wl = check_norm_scan_form(want, t.norm_len);
        /* the same without the spaces at the ends */
        size_t a = 1, b = t.norm_len + 1;
        while (a < b && t.scan[a] == ' ') a++;
        while (b > a && t.scan[b - 1] == ' ') b--;
        assert_int_equal(b - a, wl);
        assert_memory_equal(t.scan + a, want, wl);
        free(want);
    }
    check_text_free(&t);
}

/* The tokeniser's fast paths (ASCII words on the bitmaps, words that begin
 * with a letter а-я) against check_norm_next_word run word by word over
 * the same normalised text: the same spans and the same flags (case
 * aside, which comes from the original), for the corpus and for every
 * sequence of up to five pieces mixing both scripts with the connectors,
 * digits, other letters and punctuation around them. */
static void tokens_agree(check_text_t *t, const char *text, size_t len) {
    check_text_prepare(t, rules, text, len);
    const uint32_t kept = CHECK_TOK_DIGIT | CHECK_TOK_CJK | CHECK_TOK_HYPHEN | CHECK_TOK_INNER;
    size_t pos = 0, k = 0;
    uint32_t ws, we, wf;
    while (check_norm_next_word(t->norm, t->norm_len, &pos, &ws, &we, &wf)) {
        if (k >= t->token_count || t->tokens[k].nstart != ws || t->tokens[k].nend != we ||
            (t->tokens[k].flags & kept) != (wf & kept))
            fail_msg("\"%.*s\": token %zu differs from the word [%u, %u)", (int)len, text, k, ws, we);
        k++;
    }
    assert_int_equal(k, t->token_count);
}

static void test_tokens_fast_paths(void **state) {
    (void)state;
    static const char *const pieces[] = {
        "кот", "Кот", "ёлка", "ЁЖ", "abc", "Ab", "7", "-", "'", ".", ",", " ", "\xC2\xAB", "\xC2\xBB",
        "\xE2\x80\x94", "\xC3\xA9", "\xD1\x97", "\xCC\x81", "\xE4\xB8\xAD", "5", "x", "\n",
    };
    enum { NP = sizeof(pieces) / sizeof(pieces[0]) };
    check_text_t t;
    memset(&t, 0, sizeof(t));
    for (size_t i = 0; i < corpus_count; i++) tokens_agree(&t, corpus[i].text, corpus[i].len);
    char buf[64];
    size_t texts = 0;
    for (unsigned n = 1; n <= 5; n++) {
        size_t total = 1;
        for (unsigned d = 0; d < n; d++) total *= NP;
        /* every sequence of up to three pieces; a stride through longer ones */
        size_t step = n <= 3 ? 1 : 7919;
        for (size_t code = 0; code < total; code += step) {
            size_t len = 0, c = code;
            for (unsigned d = 0; d < n; d++, c /= NP) {
                size_t l = strlen(pieces[c % NP]);
                memcpy(buf + len, pieces[c % NP], l);
                len += l;
            }
            tokens_agree(&t, buf, len);
            texts++;
        }
    }
    assert_true(texts > 10000);
    check_text_free(&t);
}

/* ------------------------------------------------------------------ */
/* threads and reloads */

typedef struct worker {
    check_scratch_t *scratch;
    char **json; /* one dump per corpus line */
    int rc;
} worker_t;

static void *worker_run(void *arg) {
    worker_t *w = arg;
    check_result_t res;
    check_result_init(&res);
    char err[256];
    for (size_t i = 0; i < corpus_count && w->rc == 0; i++) {
        if (check_run(rules, w->scratch, &corpus[i].task, corpus[i].text, corpus[i].len, &res, err, sizeof(err)) != 0) {
            w->rc = -1;
            break;
        }
        json_t *o = check_result_to_json(&res);
        w->json[i] = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    }
    check_result_free(&res);
    return NULL;
}

static void test_threads_agree(void **state) {
    (void)state;
    enum { THREADS = 4 };
    worker_t w[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i].scratch = check_scratch_new();
        w[i].json = calloc(corpus_count, sizeof(char *));
        w[i].rc = 0;
        assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    for (size_t k = 0; k < corpus_count; k++) {
        for (int i = 1; i < THREADS; i++) assert_string_equal(w[0].json[k], w[i].json[k]);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(w[i].rc, 0);
        for (size_t k = 0; k < corpus_count; k++) free(w[i].json[k]);
        free(w[i].json);
        check_scratch_destroy(w[i].scratch);
    }
}

static char *result_dump(const check_task_t *task, const char *text, size_t len, check_scratch_t *sc) {
    check_result_t res;
    check_result_init(&res);
    assert_int_equal(check_run(rules, sc, task, text, len, &res, errstr, sizeof(errstr)), 0);
    json_t *o = check_result_to_json(&res);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    check_result_free(&res);
    return s;
}

/* A scratch keeps what it prepared for the last task (names, probes, the
 * pre-generated text's analysis) and reuses it when the same task comes
 * again: every corpus line checked twice in a row, then with the next
 * line's text, and its task changed in place (another main object, another
 * pre-generated text) must give what a fresh scratch gives. */
static void test_task_reuse(void **state) {
    (void)state;
    check_scratch_t *shared = check_scratch_new();
    size_t editing = 0;
    for (size_t i = 0; i < corpus_count; i++) {
        const corpus_line_t *c = &corpus[i], *next = &corpus[(i + 1) % corpus_count];
        check_scratch_t *fresh = check_scratch_new();
        char *want = result_dump(&c->task, c->text, c->len, fresh);
        char *want_next = result_dump(&c->task, next->text, next->len, fresh);
        check_scratch_destroy(fresh);
        for (int k = 0; k < 2; k++) {
            char *got = result_dump(&c->task, c->text, c->len, shared);
            assert_string_equal(got, want);
            free(got);
        }
        char *got = result_dump(&c->task, next->text, next->len, shared);
        assert_string_equal(got, want_next);
        free(got);
        /* the same task object, changed between two calls */
        check_task_t t = c->task;
        char main_object[256];
        snprintf(main_object, sizeof(main_object), "%s", next->task.main_object);
        t.main_object = main_object;
        if (t.kind == CHECK_KIND_EXAM_STAGE2 && t.pregenerated) {
            t.pregenerated = next->text;
            editing++;
        }
        free(want);
        fresh = check_scratch_new();
        want = result_dump(&t, c->text, c->len, fresh);
        check_scratch_destroy(fresh);
        got = result_dump(&t, c->text, c->len, shared);
        assert_string_equal(got, want);
        free(got);
        main_object[0] = main_object[0] == 'x' ? 'y' : 'x';
        fresh = check_scratch_new();
        free(want);
        want = result_dump(&t, c->text, c->len, fresh);
        check_scratch_destroy(fresh);
        got = result_dump(&t, c->text, c->len, shared);
        assert_string_equal(got, want);
        free(got);
        free(want);
        free(want_next);
    }
    assert_true(editing > 0);
    check_scratch_destroy(shared);
}

/* A task with more names than the probe table's first size (64 probes):
 * the table grows, a name late in the task is still found, and the next,
 * smaller task on the same scratch is checked as on a fresh one (the big
 * task's probes are cleared, not left to match). */
static void test_many_names(void **state) {
    (void)state;
    enum { N = 60 };
    char names[N][8];
    check_component_t comps[N];
    for (int i = 0; i < N; i++) {
        /* distinct first two letters, so distinct probe keys */
        snprintf(names[i], sizeof(names[i]), "%c%caron", 'b' + i / 20, 'a' + i % 20);
        comps[i] = (check_component_t){names[i], "placed beside", "bowl"};
    }
    check_task_t t;
    memset(&t, 0, sizeof(t));
    t.kind = CHECK_KIND_PRODUCTION;
    t.locale = "en-US";
    t.main_object = "bowl";
    t.components = comps;
    t.component_count = N;
    char text[512];
    snprintf(text, sizeof(text), "A bowl of rice stands on a table. A %s is placed beside the bowl." PAD, names[N - 1]);
    check_scratch_t *sc = check_scratch_new();
    check_result_t res;
    check_result_init(&res);
    assert_int_equal(check_run(rules, sc, &t, text, strlen(text), &res, errstr, sizeof(errstr)), 0);
    assert_int_equal(count_rule(&res, CHECK_RULE_RELATION_MISSING), N - 1);
    for (size_t i = 0; i < res.count; i++) assert_null(strstr(res.findings[i].message, names[N - 1]));
    /* the same text with a smaller task naming the last component's key
     * nowhere: its probes must be gone */
    check_component_t one = {names[0], "placed beside", "bowl"};
    t.components = &one;
    t.component_count = 1;
    check_scratch_t *fresh = check_scratch_new();
    char *want = result_dump(&t, text, strlen(text), fresh);
    char *got = result_dump(&t, text, strlen(text), sc);
    assert_string_equal(got, want);
    assert_non_null(strstr(want, "relation_missing"));
    free(want);
    free(got);
    check_scratch_destroy(fresh);
    check_result_free(&res);
    check_scratch_destroy(sc);
}

static void test_scratch_follows_reload(void **state) {
    (void)state;
    check_rules_t *again = check_rules_load(RULES_DIR, errstr, sizeof(errstr));
    assert_non_null(again);
    assert_string_equal(check_rules_version(again), check_rules_version(rules));
    const char *text = "A beautiful bowl of rice is probably warm." PAD;
    check_task_t t;
    memset(&t, 0, sizeof(t));
    t.kind = CHECK_KIND_PRODUCTION;
    t.locale = "en-US";
    t.main_object = "bowl";
    check_result_t a, b;
    check_result_init(&a);
    check_result_init(&b);
    assert_int_equal(check_run(rules, scratch, &t, text, strlen(text), &a, errstr, sizeof(errstr)), 0);
    assert_int_equal(check_run(again, scratch, &t, text, strlen(text), &b, errstr, sizeof(errstr)), 0);
    check_rules_destroy(again);
    assert_int_equal(a.count, b.count);
    assert_int_equal(a.count, 2);
    assert_int_equal(check_run(rules, scratch, &t, text, strlen(text), &b, errstr, sizeof(errstr)), 0);
    assert_int_equal(a.count, b.count);
    check_result_free(&a);
    check_result_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold),
        cmocka_unit_test(test_fold_ascii),
        cmocka_unit_test(test_fold_fast_path),
        cmocka_unit_test(test_fold_cyrillic_blocks),
        cmocka_unit_test(test_spans_survive_folding),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_tokens_cyrillic),
        cmocka_unit_test(test_sentences),
        cmocka_unit_test(test_quotes),
        cmocka_unit_test(test_subjective),
        cmocka_unit_test(test_subjective_word_boundaries),
        cmocka_unit_test(test_subjective_quoted_signage),
        cmocka_unit_test(test_subjective_proper_names),
        cmocka_unit_test(test_subjective_neutral_phrases),
        cmocka_unit_test(test_subjective_russian),
        cmocka_unit_test(test_speculation),
        cmocka_unit_test(test_viewer_address),
        cmocka_unit_test(test_main_object),
        cmocka_unit_test(test_main_object_underdescribed),
        cmocka_unit_test(test_relations),
        cmocka_unit_test(test_relations_by_reference),
        cmocka_unit_test(test_reference_overload),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_invalid_text),
        cmocka_unit_test(test_editing),
        cmocka_unit_test(test_unfixed_only_for_the_same_defect),
        cmocka_unit_test(test_no_main_object_is_an_error),
        cmocka_unit_test(test_no_mentions_on_a_fresh_scratch),
        cmocka_unit_test(test_bad_task_strings_give_valid_messages),
        cmocka_unit_test(test_long_messages_cut_on_a_letter),
        cmocka_unit_test(test_other_languages),
        cmocka_unit_test(test_json_task),
        cmocka_unit_test(test_json_request_and_result),
        cmocka_unit_test_setup_teardown(test_config_copy_loads, config_copy, config_remove),
        cmocka_unit_test_setup_teardown(test_config_unknown_key, config_copy, config_remove),
        cmocka_unit_test_setup_teardown(test_config_bad_number, config_copy, config_remove),
        cmocka_unit_test_setup_teardown(test_config_bad_rule, config_copy, config_remove),
        cmocka_unit_test_setup_teardown(test_config_not_a_rule, config_copy, config_remove),
        cmocka_unit_test_setup_teardown(test_config_bad_entry, config_copy, config_remove),
        cmocka_unit_test_setup_teardown(test_config_duplicate_entry, config_copy, config_remove),
        cmocka_unit_test_setup_teardown(test_config_unknown_language_key, config_copy, config_remove),
        cmocka_unit_test_setup_teardown(test_config_missing_file, config_copy, config_remove),
        cmocka_unit_test_setup_teardown(test_config_missing_key, config_copy, config_remove),
        cmocka_unit_test(test_taxonomy),
        cmocka_unit_test_prestate_setup_teardown(test_corpus_precision_recall, corpus_load, corpus_free, CORPUS),
        cmocka_unit_test_prestate_setup_teardown(test_holdout_precision_recall, corpus_load, corpus_free, HOLDOUT),
        cmocka_unit_test_prestate_setup_teardown(test_scan_form, corpus_load, corpus_free, CORPUS),
        cmocka_unit_test_prestate_setup_teardown(test_tokens_fast_paths, corpus_load, corpus_free, CORPUS),
        cmocka_unit_test_prestate_setup_teardown(test_threads_agree, corpus_load, corpus_free, CORPUS),
        cmocka_unit_test_prestate_setup_teardown(test_task_reuse, corpus_load, corpus_free, CORPUS),
        cmocka_unit_test(test_many_names),
        cmocka_unit_test(test_scratch_follows_reload),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
