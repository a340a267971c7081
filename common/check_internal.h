/* check_internal: what the check_*.c files share and the unit tests look at;
 * not an API for anything else.
 *
 * The pipeline of one check:
 *   1. check_text_prepare (check_text.c): validates the bytes, normalises
 *      them (NFKC + case fold + mark stripping through utf8proc) into `norm`
 *      with, for every byte of norm, the span of original bytes it came from;
 *      splits norm into tokens; finds quoted regions and markup.
 *   2. check_lexicon_scan (check_rules.c): one Vectorscan scan with the
 *      language's literal database over norm with every byte that is not
 *      part of a word blanked; hits set flags on the tokens they cover.
 *   3. check_text_sentences (check_text.c): sentence boundaries, which need
 *      the abbreviation flags of step 2.
 *   4. the rules (check_run.c). */
#ifndef ANNOT_CHECK_INTERNAL_H
#define ANNOT_CHECK_INTERNAL_H

#include <hs.h>
#include <stdint.h>

#include "check.h"

/* Lexicon categories.  The first four produce findings; the others only
 * describe tokens for the rules. */
enum {
    CHECK_CAT_SUBJECTIVE = 0,
    CHECK_CAT_SPECULATION,
    CHECK_CAT_VIEWER,
    CHECK_CAT_REFERENCE,
    CHECK_CAT_RELATION,
    CHECK_CAT_NEUTRAL,     /* phrases that cancel a finding they cover: "great deal" */
    CHECK_CAT_ANAPHORA,    /* "it", "its": a sentence still about the previous subject */
    CHECK_CAT_CONJUNCTION, /* "and", "or": list separators */
    CHECK_CAT_YEAR_WORD,   /* "in", "since": a following year is a history cue */
    CHECK_CAT_ABBREVIATION,/* "approx", "st": a following '.' ends no sentence */
    CHECK_CAT_CONNECTOR,   /* "of", "de": may join the words of a proper name */
    CHECK_CAT_CONTAINER,   /* "bowl", "plate": what holds a component or target */
    CHECK_CAT_CONTAINER_LINK, /* "of" of "a bowl of pho" */
    CHECK_CAT_COUNT
};

/* Token flags. */
enum {
    CHECK_TOK_CAP = 1 << 0,      /* first letter upper or title case in the original */
    CHECK_TOK_DIGIT = 1 << 1,    /* starts with a digit */
    CHECK_TOK_CJK = 1 << 2,      /* one ideograph or kana */
    CHECK_TOK_LOWER = 1 << 3,    /* first letter lower case in the original */
    CHECK_TOK_RELATION = 1 << 4, /* from the lexicon flags below: covered by a hit */
    CHECK_TOK_ANAPHORA = 1 << 5,
    CHECK_TOK_CONJUNCTION = 1 << 6,
    CHECK_TOK_YEAR_WORD = 1 << 7,
    CHECK_TOK_ABBREVIATION = 1 << 8,
    CHECK_TOK_CONNECTOR = 1 << 9,
    CHECK_TOK_TASK_RELATION = 1 << 10, /* a word of the task's own relation */
    CHECK_TOK_HYPHEN = 1 << 11,        /* holds a '-': "eye-catching" */
    CHECK_TOK_INNER = 1 << 12,         /* holds a ' or a . or , between digits */
    CHECK_TOK_CLAUSE_AFTER = 1 << 13,  /* the gap after it breaks a clause (set by the sentences) */
    CHECK_TOK_CONTAINER = 1 << 14,
    CHECK_TOK_CONTAINER_LINK = 1 << 15,
};

/* The fold of every single BMP code point, computed once: most clusters are
 * one code point, and a table lookup is much cheaper than utf8proc's
 * decompose and recompose.  ASCII is in it too: an ASCII letter followed by
 * a non-ASCII code point takes the general path. */
typedef struct check_fold {
    uint32_t *bmp;  /* 65536 entries: pool offset << 8 | byte length, and CHECK_FOLD_FAST */
    uint8_t *pool;
    size_t pool_len;
    int options;    /* utf8proc_option_t */
    /* For the two-byte code points U+0080-U+07FF (Cyrillic, Greek, Latin
     * letters beyond ASCII): their two-byte fold (first byte low) when the
     * bmp entry is CHECK_FOLD_FAST and the fold is two bytes, else 0; the
     * inner loop of fold_run for runs of such letters reads only this. */
    uint16_t *two;
    /* fold_run's sixteen-byte step for Cyrillic: usable when every letter
     * U+0410-U+044F folds to the lower-case letter of U+0430-U+044F its
     * case gives (А -> а, Р -> р), but for at most two, cyr_fix (with
     * STRIPMARK: й -> и), as a lower-case letter's two bytes and its fold's. */
    bool cyr_simd;
    int cyr_fix_count;
    uint8_t cyr_fix[2][4];
} check_fold_t;

/* In a bmp entry: the code point may take fold_run's fast path (its
 * cluster is itself when the next code point is ASCII, a space or of
 * grapheme break class Other).  Covered by test_fold_fast_path. */
#define CHECK_FOLD_FAST (1u << 31)

/* One literal of a lexicon after expansion and folding; the Vectorscan id of
 * a literal is its index. */
typedef struct check_variant {
    uint32_t len;
    uint16_t cats;   /* bit per category: one literal may be in several lists */
    uint8_t prefix;  /* "stem*": the match extends to the end of the word */
    uint32_t origin; /* its lexicon line while loading, for errors */
    /* The token flags its categories give every token it covers
     * (CHECK_TOK_*; the abbreviation's only its last, see
     * check_lexicon_scan), set once the categories are final. */
    uint32_t tok_flags;
} check_variant_t;

/* A short list of folded words with their byte lengths. */
typedef struct check_words {
    char **w;
    uint8_t *len;
    size_t count;
    /* The words are ordered by their last byte: those ending in byte b are
     * [by_last[b], by_last[b + 1]). */
    uint16_t by_last[257];
} check_words_t;

typedef struct check_lang {
    char code[16];
    hs_database_t *db; /* NULL when the language has no entries */
    check_variant_t *variants;
    size_t variant_count;
    /* Noun inflection for the main object and components (folded), see
     * language.conf: a name word minus one `strip` ending, or minus one
     * `ending`, is a stem; a token is a form of the word when it is a stem
     * plus a strip ending or an ending (or the bare stem an ending was taken
     * from: "feathers" -> "feather").  With `fleeting` vowels (Russian), a
     * vowel may appear between the stem's last two consonants (кукла ->
     * кукол) or drop before the last one (платок -> платка); `vowels` says
     * what is not a consonant. */
    check_words_t strip, endings, vowels, fleeting;
    /* Words of a task relation that place a thing outside its target
     * ("beside", "next to"): only those carry over to the target's
     * container (beside the bowl of ceviche is beside the ceviche; on the
     * plate of momos is not on the momos). */
    check_words_t outside;
    /* Prepositions that put a thing in or on a container: "tamales are
     * stacked on a plate" makes the plate the tamales' container. */
    check_words_t container_in;
} check_lang_t;

typedef struct check_rule_conf {
    check_severity_t severity;
    char section[CHECK_SECTION_MAX];
    bool blocking;
    bool set;
} check_rule_conf_t;

struct check_rules {
    uint64_t serial; /* distinguishes rules objects for the scratch */
    char version[20];
    double weight[4]; /* by check_severity_t */
    check_rule_conf_t rule[CHECK_RULE_COUNT];
    long length_min_words, length_max_words, length_max_bytes;
    double main_object_min_share;
    long main_object_min_words;
    double reference_max_share;
    long reference_min_sentences;
    double edit_min_distance;
    long quote_max_bytes;
    check_fold_t fold;
    check_lang_t *langs;
    size_t lang_count;
    check_lang_t fallback; /* languages without lexicons */
};

typedef struct check_token {
    uint32_t nstart, nend; /* in norm */
    uint16_t key;          /* its first two bytes, to reject name words fast */
    uint32_t ostart, oend; /* in the original */
    uint32_t sentence;
    uint32_t flags;
} check_token_t;

typedef struct check_sentence {
    uint32_t first, last;  /* tokens [first, last) */
    uint32_t ostart, oend; /* in the original */
    uint32_t words;
} check_sentence_t;

typedef struct check_hit {
    uint32_t nstart, nend;
    uint32_t ostart, oend;
    uint32_t tfirst, tlast; /* tokens covered, inclusive */
    uint32_t variant;
    uint16_t cats;
} check_hit_t;

typedef struct check_span {
    uint32_t start, end;
} check_span_t;

enum {
    CHECK_ISSUE_INVALID_UTF8 = 1,
    CHECK_ISSUE_CONTROL,
    CHECK_ISSUE_INVISIBLE,
    CHECK_ISSUE_MARKUP,
};

typedef struct check_issue {
    uint32_t start, end; /* in the original */
    int kind;
    const char *what;    /* static text for the message */
} check_issue_t;

/* The analysis of one text.  Buffers grow and are reused between calls. */
typedef struct check_text {
    const char *orig;
    size_t orig_len;
    char *norm;
    size_t norm_len, norm_cap;
    uint32_t *nmap_start, *nmap_end; /* per norm byte: its original span */
    char *scan; /* what the lexicons are matched against, see check_lexicon_scan */
    size_t scan_cap;
    check_token_t *tokens;
    size_t token_count, token_cap;
    check_sentence_t *sentences;
    size_t sentence_count, sentence_cap;
    check_span_t *quotes;
    size_t quote_count, quote_cap;
    check_hit_t *hits;
    size_t hit_count, hit_cap;
    check_issue_t *issues;
    size_t issue_count, issue_cap;
    size_t words; /* tokens that count as words */
    uint32_t token_flags_any; /* the union of the flags the tokeniser gave the tokens */
    uint64_t *bits; /* the tokeniser's bitmaps of norm, see text_tokenise */
    size_t bits_cap;
    /* Per norm byte: the first token that ends after it (token_count past
     * the last one), so a lexicon hit finds its tokens by two loads. */
    uint32_t *tok_at;
    size_t tok_at_cap;
} check_text_t;

/* A folded name of the task (main object, synonym, component, relation)
 * split into words; words beyond CHECK_NAME_WORDS are not compared. */
#define CHECK_NAME_WORDS 8
typedef struct check_name {
    uint32_t off, len; /* the folded name in scratch->buf */
    uint32_t words;
    uint32_t woff[CHECK_NAME_WORDS], wlen[CHECK_NAME_WORDS];
    uint16_t wkey[CHECK_NAME_WORDS];   /* first two bytes: every form shares them */
    uint32_t wstem[CHECK_NAME_WORDS];  /* minus a strip ending (or the whole word) */
    uint32_t wstem2[CHECK_NAME_WORDS]; /* minus an ending, 0 when none applies */
    uint32_t wpre[CHECK_NAME_WORDS];   /* the first bytes every form of the word shares */
} check_name_t;

/* Where the words of the task's names are looked for: by the first two
 * bytes of the word a token must start with. */
typedef struct check_probe {
    uint16_t key;
    uint8_t kind; /* CHECK_PROBE_* */
    uint8_t word;
    uint8_t w0, w1; /* the words of the name it compares from the token on */
    uint32_t name;
    uint32_t slot; /* its key's in probe_slots, to clear it for the next task */
} check_probe_t;

/* The probes of one key, in an open-addressed table at most a quarter
 * full: a token's key finds its probes in one or two loads (key 0, which
 * no word starts with, marks a free slot). */
typedef struct check_probe_slot {
    uint16_t key;
    uint32_t first, count; /* in probes */
} check_probe_slot_t;

enum { CHECK_PROBE_WHOLE = 1, CHECK_PROBE_HEAD = 2, CHECK_PROBE_RELATION = 4 };

/* A place where a name was found, before the groups are built. */
typedef struct check_candidate {
    uint32_t name, token, len;
    uint8_t kind;
} check_candidate_t;

struct check_scratch {
    hs_scratch_t *hs;
    uint64_t rules_serial; /* the rules object hs was sized for */
    check_text_t text, pre; /* the description; the pre-generated text */
    char *buf;              /* folded task names */
    size_t buf_len, buf_cap;
    check_name_t *names;
    size_t name_count, name_cap;
    uint32_t *comp_idx; /* per component: name, target and relation in names */
    size_t comp_idx_cap;
    check_probe_t *probes; /* sorted by key */
    size_t probe_count, probe_cap;
    check_probe_slot_t *probe_slots;
    size_t probe_slot_cap; /* a power of two */
    uint64_t probe_keys[65536 / 64]; /* a bit per key that has probes */
    uint32_t *probe_tokens; /* per check: the tokens that may start a name */
    size_t probe_token_cap;
    check_candidate_t *cands;
    size_t cand_count, cand_cap;
    uint32_t *cand_order; /* per check: the candidates by name, each name's in token order */
    size_t cand_order_cap;
    uint32_t *cand_name_off; /* per name: where its candidates start in cand_order (and the end) */
    size_t cand_name_off_cap;
    check_span_t *mentions; /* token spans, grouped by name */
    size_t mention_count, mention_cap;
    uint32_t *name_mention_off, *name_mention_count; /* per group: a name index, or main_relaxed */
    size_t name_mention_cap;
    uint8_t *sentence_marks;
    size_t sentence_mark_cap;
    uint64_t *keys, *pre_keys; /* identity of each finding's defect */
    size_t key_cap, pre_key_cap;
    check_result_t pre_result;
    bool *pre_used; /* per pre-generated finding: matched by one of the description */
    size_t pre_used_cap;
    uint64_t *hash_a, *hash_b;
    uint32_t *row;
    size_t hash_a_cap, hash_b_cap, row_cap;
    /* The task the names, probes and (for an editing case) the
     * pre-generated text's analysis above were made from, as bytes (see
     * task_key in check_run.c), and the rules they were made with: a call
     * with the same task again (the pre-submit check as the annotator
     * edits, the candidates of one exam task) reuses them.  task_key_len 0:
     * nothing prepared. */
    char *task_key, *task_key_next;
    size_t task_key_len, task_key_cap, task_key_next_len, task_key_next_cap;
    uint64_t task_rules_serial;
    size_t main_names;
    bool pre_ready; /* pre and pre_result hold the task's pre-generated text */
};

/* Every folded text (a check_text_t's norm, the names and lexicon words
 * check_fold_append writes) is followed by its NUL and this many zero
 * bytes: the word comparisons of check_run.c load sixteen bytes at a time
 * from anywhere in them. */
#define CHECK_PAD 16

/* check_text.c */
int check_fold_init(check_fold_t *fold, bool strip_marks);
void check_fold_free(check_fold_t *fold);
/* Appends the fold of s to *buf (growing it), then a NUL and CHECK_PAD
 * zero bytes; whitespace runs become one space, leading and trailing space
 * is dropped.  -1 only for invalid UTF-8. */
int check_fold_append(const check_fold_t *fold, const char *s, size_t len, char **buf, size_t *buf_len,
                      size_t *buf_cap);
/* Replaces, in place, every byte of s that is not part of a word by a space
 * (the scan form of check_lexicon_scan); returns the length without
 * leading and trailing spaces, which it moves out. */
size_t check_norm_scan_form(char *s, size_t len);
/* The next word of a folded string at or after *pos, by the tokeniser's
 * rules (letters, marks and digits; ' and - inside words; . and , inside
 * numbers; one ideograph or kana each).  false at the end. */
bool check_norm_next_word(const char *norm, size_t len, size_t *pos, uint32_t *start, uint32_t *end,
                          uint32_t *flags);
/* Step 1 of the pipeline. */
void check_text_prepare(check_text_t *t, const check_rules_t *rules, const char *text, size_t len);
/* Step 3. */
void check_text_sentences(check_text_t *t);
void check_text_free(check_text_t *t);
/* Whether the original bytes [start, end) lie in a quoted region. */
bool check_text_quoted(const check_text_t *t, uint32_t start, uint32_t end);
/* Whether the original bytes after a token hold a clause or sentence break
 * (, ; : ( ) dash . ! ? newline); valid after check_text_sentences. */
bool check_text_gap_breaks_clause(const check_text_t *t, size_t left_token);
/* True when every letter of the original bytes is upper case. */
bool check_text_all_upper(const char *s, size_t len);

/* check_rules.c */
const check_lang_t *check_rules_language(const check_rules_t *rules, const char *locale);
int check_scratch_bind(check_scratch_t *scratch, const check_rules_t *rules, char *errstr, size_t errlen);
/* Step 2. */
int check_lexicon_scan(const check_lang_t *lang, hs_scratch_t *hs, check_text_t *t);

#endif
