/* check_text: the text side of the checker.  It validates the bytes
 * (invalid UTF-8, control and invisible characters, markup), normalises them
 * for matching (NFKC, case folding and mark stripping, all by utf8proc) while
 * remembering for every normalised byte which original bytes it came from,
 * cuts the result into tokens and sentences and finds quoted regions.  Every
 * span a rule reports is mapped back through that map, so offsets are into
 * the text as submitted even where folding changed lengths ("Straße" ->
 * "strasse").
 *
 * Normalisation works one grapheme cluster at a time: composition never
 * crosses a cluster boundary, so the cluster is the smallest unit whose
 * output can be attributed to a definite span of input.  Most clusters are a
 * single code point, served from a table computed at load. */
#include "check_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Character classes of the BMP (see cp_cls_build), filled once. */
static uint16_t cp_cls[0x10000];
static pthread_once_t cp_cls_once = PTHREAD_ONCE_INIT;
static void cp_cls_build(void);
/* The classes of cp_cls, from utf8proc's tables: the scanners ask them for
 * every character. */
enum {
    CLS_WORD = 1 << 0,
    CLS_DIGIT = 1 << 1,
    CLS_MARK = 1 << 2,
    CLS_CJK = 1 << 3,
    CLS_SPACE = 1 << 4,
    CLS_INVISIBLE = 1 << 5,
    CLS_SIMPLE = 1 << 6, /* grapheme break class Other: a break on both sides of two of them */
    CLS_UPPER = 1 << 7,  /* Lu or Lt */
    CLS_LOWER = 1 << 8,  /* Ll */
};

/* The fold of ASCII: lower case, and the classes the core loop needs. */
enum { ASCII_SPACE = 1, ASCII_CONTROL = 2 };
static uint8_t ascii_fold[128];

/* ------------------------------------------------------------------ */
/* growth helpers */

static void *grow(void *p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return p;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *q = realloc(p, n * size);
    if (q == NULL) abort(); /* as the rest of common/: out of memory is fatal */
    *cap = n;
    return q;
}

/* ------------------------------------------------------------------ */
/* folding */

static int fold_options(bool strip_marks) {
    int o = UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE |
            UTF8PROC_LUMP;
    if (strip_marks) o |= UTF8PROC_STRIPMARK;
    return o;
}

/* Folds one cluster of valid UTF-8.  Returns the byte length written to
 * *out (a buffer the function grows), or -1. */
static ssize_t fold_cluster(int options, const uint8_t *s, size_t len, utf8proc_int32_t **out,
                            size_t *out_cap) {
    utf8proc_ssize_t n = utf8proc_decompose(s, (utf8proc_ssize_t)len, *out, (utf8proc_ssize_t)*out_cap,
                                            (utf8proc_option_t)options);
    if (n < 0) return -1;
    if ((size_t)n + 1 > *out_cap) {
        *out = grow(*out, out_cap, (size_t)n + 1, sizeof(**out));
        n = utf8proc_decompose(s, (utf8proc_ssize_t)len, *out, (utf8proc_ssize_t)*out_cap,
                               (utf8proc_option_t)options);
        if (n < 0) return -1;
    }
    utf8proc_ssize_t bytes = utf8proc_reencode(*out, n, (utf8proc_option_t)options);
    return bytes < 0 ? -1 : (ssize_t)bytes;
}

/* Whether fold_run's Cyrillic step may fold this table's letters (see
 * check_fold_t.cyr_simd), and the exceptions it patches. */
static void cyr_simd_init(check_fold_t *fold) {
    fold->cyr_simd = false;
    fold->cyr_fix_count = 0;
    for (utf8proc_int32_t cp = 0x410; cp < 0x450; cp++) {
        utf8proc_int32_t lower = cp < 0x430 ? cp + 0x20 : cp;
        uint16_t f = fold->two[cp], own = (uint16_t)((0xC0 | lower >> 6) | (0x80 | (lower & 0x3F)) << 8);
        if (f == 0 || f != fold->two[lower]) return;
        if (cp < 0x430 || f == own) continue;
        /* a lower-case letter that folds to another two-byte letter */
        if (fold->cyr_fix_count == 2 || (f & 0xFF) < 0xD0 || (f & 0xFF) > 0xD1) return;
        uint8_t *fix = fold->cyr_fix[fold->cyr_fix_count++];
        fix[0] = (uint8_t)(own & 0xFF), fix[1] = (uint8_t)(own >> 8);
        fix[2] = (uint8_t)(f & 0xFF), fix[3] = (uint8_t)(f >> 8);
    }
    fold->cyr_simd = true;
}

int check_fold_init(check_fold_t *fold, bool strip_marks) {
    pthread_once(&cp_cls_once, cp_cls_build);
    memset(fold, 0, sizeof(*fold));
    fold->options = fold_options(strip_marks);
    fold->bmp = calloc(65536, sizeof(*fold->bmp));
    if (fold->bmp == NULL) return -1;
    size_t pool_cap = 0;
    utf8proc_int32_t *buf = NULL;
    size_t buf_cap = 0;
    for (utf8proc_int32_t cp = 0; cp < 0x10000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        uint8_t enc[4];
        utf8proc_ssize_t elen = utf8proc_encode_char(cp, enc);
        ssize_t n = fold_cluster(fold->options, enc, (size_t)elen, &buf, &buf_cap);
        if (n < 0 || n > 255) { /* never for assigned BMP code points; keep the original */
            memcpy(buf, enc, (size_t)elen);
            n = elen;
        }
        fold->pool = grow(fold->pool, &pool_cap, fold->pool_len + (size_t)n, 1);
        memcpy(fold->pool + fold->pool_len, buf, (size_t)n);
        fold->bmp[cp] = (uint32_t)fold->pool_len << 8 | (uint32_t)n;
        /* The fast path of fold_run: a code point of grapheme break class
         * Other that the core loop would fold on its own (no space, control,
         * invisible or damaged character) into bytes without a space. */
        uint16_t c = cp_cls[cp];
        if ((c & CLS_SIMPLE) && !(c & (CLS_SPACE | CLS_INVISIBLE)) && cp >= 0xA0 && cp != 0xFFFD &&
            memchr(buf, ' ', (size_t)n) == NULL)
            fold->bmp[cp] |= CHECK_FOLD_FAST;
        fold->pool_len += (size_t)n;
    }
    free(buf);
    fold->two = calloc(0x800, sizeof(*fold->two));
    if (fold->two == NULL) return -1;
    for (utf8proc_int32_t cp = 0x80; cp < 0x800; cp++) {
        uint32_t e = fold->bmp[cp];
        if (!(e & CHECK_FOLD_FAST) || (e & 0xFF) != 2) continue;
        const uint8_t *b = fold->pool + ((e & ~CHECK_FOLD_FAST) >> 8);
        fold->two[cp] = (uint16_t)(b[0] | b[1] << 8);
    }
    cyr_simd_init(fold);
    return 0;
}

void check_fold_free(check_fold_t *fold) {
    free(fold->bmp);
    free(fold->two);
    free(fold->pool);
    memset(fold, 0, sizeof(*fold));
}

/* ------------------------------------------------------------------ */
/* code point classes */

/* ASCII letters and digits, by byte value: 0 for the bytes of multi-byte
 * sequences, so a run of ASCII word bytes is one table lookup a byte. */
static const uint8_t byte_word[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1,
    ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,
    ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1,
    ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

/* The connectors that may join the words on either side (don't,
 * eye-catching, 3.5, 1,000). */
static const uint8_t byte_connector[256] = {['\''] = 1, ['-'] = 1, ['.'] = 1, [','] = 1};

/* What the first byte of a token's original tells of its case: a token
 * flag, DIGIT_FIRST for a digit, 0 when it takes a closer look. */
#define DIGIT_FIRST 0x80
static const uint8_t byte_case[256] = {
    ['0'] = DIGIT_FIRST, ['1'] = DIGIT_FIRST, ['2'] = DIGIT_FIRST, ['3'] = DIGIT_FIRST, ['4'] = DIGIT_FIRST,
    ['5'] = DIGIT_FIRST, ['6'] = DIGIT_FIRST, ['7'] = DIGIT_FIRST, ['8'] = DIGIT_FIRST, ['9'] = DIGIT_FIRST,
#define U(c) [c] = CHECK_TOK_CAP, [c + 32] = CHECK_TOK_LOWER
    U('A'), U('B'), U('C'), U('D'), U('E'), U('F'), U('G'), U('H'), U('I'), U('J'), U('K'), U('L'), U('M'),
    U('N'), U('O'), U('P'), U('Q'), U('R'), U('S'), U('T'), U('U'), U('V'), U('W'), U('X'), U('Y'), U('Z'),
#undef U
};
_Static_assert(((CHECK_TOK_CAP | CHECK_TOK_LOWER) & DIGIT_FIRST) == 0, "DIGIT_FIRST is no token flag");

static bool cp_is_word_slow(utf8proc_int32_t cp) {
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_NO;
}

static bool cp_is_mark_slow(utf8proc_int32_t cp) {
    utf8proc_category_t c = utf8proc_category(cp);
    return c >= UTF8PROC_CATEGORY_MN && c <= UTF8PROC_CATEGORY_ME;
}

/* Scripts written without spaces: every ideograph or kana is a token. */
static inline __attribute__((always_inline)) bool cp_is_cjk(utf8proc_int32_t cp) {
    return (cp >= 0x3040 && cp <= 0x30FF) || (cp >= 0x31F0 && cp <= 0x31FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x3FFFF);
}

static bool cp_is_space_slow(utf8proc_int32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
    return cp == 0x85 || cp == 0x2028 || cp == 0x2029 || utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS;
}

/* Characters a reader cannot see and a description never needs: zero-width
 * spaces, byte order marks, bidirectional overrides (they can make a text
 * display differently from what it says), private use, unassigned code
 * points.  ZWJ/ZWNJ and the soft hyphen are legitimate and pass. */
static bool cp_is_invisible_slow(utf8proc_int32_t cp) {
    if (cp < 0xA0) return false;
    if (cp == 0x200C || cp == 0x200D || cp == 0xAD) return false;
    utf8proc_category_t c = utf8proc_category(cp);
    return c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CO || c == UTF8PROC_CATEGORY_CN;
}

/* The classes for every BMP code point, computed once per process from
 * utf8proc's tables. */
static void cp_cls_build(void) {
    for (int c = 0; c < 128; c++) {
        if (c == ' ' || (c >= '\t' && c <= '\r')) ascii_fold[c] = ASCII_SPACE;
        else if (c < 0x20 || c == 0x7F) ascii_fold[c] = ASCII_CONTROL;
        else ascii_fold[c] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    for (utf8proc_int32_t cp = 0; cp < 0x10000; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        utf8proc_category_t c = utf8proc_category(cp);
        uint16_t f = 0;
        if (cp_is_word_slow(cp)) f |= CLS_WORD;
        if (c == UTF8PROC_CATEGORY_ND) f |= CLS_DIGIT;
        if (cp_is_mark_slow(cp)) f |= CLS_MARK;
        if (cp_is_cjk(cp)) f |= CLS_CJK;
        if (cp_is_space_slow(cp)) f |= CLS_SPACE;
        if (cp_is_invisible_slow(cp)) f |= CLS_INVISIBLE;
        if (utf8proc_get_property(cp)->boundclass == UTF8PROC_BOUNDCLASS_OTHER) f |= CLS_SIMPLE;
        if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT) f |= CLS_UPPER;
        if (c == UTF8PROC_CATEGORY_LL) f |= CLS_LOWER;
        cp_cls[cp] = f;
    }
}

static uint16_t cp_class_slow(utf8proc_int32_t cp);

/* Inlined into every scanner: the table for the BMP, utf8proc beyond. */
#define CP_INLINE static inline __attribute__((always_inline))

CP_INLINE uint16_t cp_class(utf8proc_int32_t cp) {
    if (cp >= 0 && cp < 0x10000) return cp_cls[cp];
    return cp_class_slow(cp);
}

static __attribute__((noinline)) uint16_t cp_class_slow(utf8proc_int32_t cp) {
    if (cp < 0) return 0;
    utf8proc_category_t c = utf8proc_category(cp);
    uint16_t f = 0;
    if (cp_is_word_slow(cp)) f |= CLS_WORD;
    if (c == UTF8PROC_CATEGORY_ND) f |= CLS_DIGIT;
    if (cp_is_mark_slow(cp)) f |= CLS_MARK;
    if (cp_is_cjk(cp)) f |= CLS_CJK;
    if (cp_is_invisible_slow(cp)) f |= CLS_INVISIBLE;
    if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT) f |= CLS_UPPER;
    if (c == UTF8PROC_CATEGORY_LL) f |= CLS_LOWER;
    return f;
}

CP_INLINE bool cp_is_word(utf8proc_int32_t cp) {
    if (cp < 0x80) return cp >= 0 && byte_word[cp];
    return cp_class(cp) & CLS_WORD;
}

CP_INLINE bool cp_is_digit(utf8proc_int32_t cp) {
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    return cp_class(cp) & CLS_DIGIT;
}

CP_INLINE bool cp_is_mark(utf8proc_int32_t cp) { return cp >= 0x300 && (cp_class(cp) & CLS_MARK); }

CP_INLINE bool cp_is_space(utf8proc_int32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
    return cp_class(cp) & CLS_SPACE;
}

CP_INLINE bool cp_is_invisible(utf8proc_int32_t cp) { return cp_class(cp) & CLS_INVISIBLE; }

/* Decodes the code point at s[i]; *n receives its byte length (1 for an
 * invalid byte, with the return value -1). */
CP_INLINE utf8proc_int32_t cp_decode(const uint8_t *s, size_t len, size_t i, size_t *n) {
    uint8_t c = s[i];
    if (c < 0x80) {
        *n = 1;
        return c;
    }
    /* Two- and three-byte sequences (Cyrillic, CJK, punctuation) inline,
     * with the same checks as utf8proc: no overlong forms, no surrogates.
     * Anything else goes to utf8proc. */
    if (c >= 0xC2 && c < 0xE0 && i + 1 < len && (s[i + 1] & 0xC0) == 0x80) {
        *n = 2;
        return (utf8proc_int32_t)((c & 0x1F) << 6 | (s[i + 1] & 0x3F));
    }
    if (c >= 0xE0 && c < 0xF0 && i + 2 < len && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80) {
        utf8proc_int32_t v = (utf8proc_int32_t)((c & 0x0F) << 12 | (s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F));
        if (v >= 0x800 && (v < 0xD800 || v > 0xDFFF)) {
            *n = 3;
            return v;
        }
    }
    utf8proc_int32_t cp;
    utf8proc_ssize_t l = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &cp);
    if (l < 0) {
        *n = 1;
        return -1;
    }
    *n = (size_t)l;
    return cp;
}

/* The code point ending at off in valid UTF-8. */
static utf8proc_int32_t cp_decode_before(const uint8_t *s, size_t off) {
    size_t i = off - 1;
    while (i > 0 && off - i < 4 && (s[i] & 0xC0) == 0x80) i--;
    size_t n;
    return cp_decode(s, off, i, &n);
}

bool check_text_all_upper(const char *s, size_t len) {
    const uint8_t *u = (const uint8_t *)s;
    bool letter = false;
    for (size_t i = 0; i < len;) {
        size_t n;
        utf8proc_int32_t cp = cp_decode(u, len, i, &n);
        i += n;
        if (cp < 0) return false;
        uint16_t c = cp_class(cp);
        if (c & CLS_LOWER) return false;
        if (c & CLS_UPPER) letter = true;
    }
    return letter;
}

/* ------------------------------------------------------------------ */
/* normalisation */

/* The output of the core loop: norm with (when maps is true) the map and the
 * issues found on the way. */
typedef struct fold_sink {
    check_text_t *t;
    bool maps;
    size_t base; /* norm_len when this fold began: no leading space before it */
    utf8proc_int32_t *tmp;
    size_t tmp_cap;
} fold_sink_t;

static void text_issue(check_text_t *t, int kind, const char *what, size_t start, size_t end) {
    if (t->issue_count > 0) {
        check_issue_t *last = &t->issues[t->issue_count - 1];
        if (last->kind == kind && last->what == what && last->end == start) {
            last->end = (uint32_t)end;
            return;
        }
    }
    t->issues = grow(t->issues, &t->issue_cap, t->issue_count + 1, sizeof(*t->issues));
    t->issues[t->issue_count++] = (check_issue_t){(uint32_t)start, (uint32_t)end, kind, what};
}

/* Makes room for n more normalised bytes. */
static inline void sink_reserve(fold_sink_t *k, size_t n) {
    check_text_t *t = k->t;
    size_t need = t->norm_len + n + 1 + CHECK_PAD; /* and the NUL and the pad */
    if (need <= t->norm_cap) return;
    size_t cap = t->norm_cap ? t->norm_cap : 256;
    while (cap < need) cap *= 2;
    t->norm = realloc(t->norm, cap);
    if (t->norm == NULL) abort();
    if (k->maps) {
        t->nmap_start = realloc(t->nmap_start, cap * sizeof(uint32_t));
        t->nmap_end = realloc(t->nmap_end, cap * sizeof(uint32_t));
        if (t->nmap_start == NULL || t->nmap_end == NULL) abort();
    }
    t->norm_cap = cap;
}

static inline void sink_space(fold_sink_t *k, size_t ostart, size_t oend) {
    check_text_t *t = k->t;
    if (t->norm_len == k->base) return;
    if (t->norm[t->norm_len - 1] == ' ') {
        if (k->maps) t->nmap_end[t->norm_len - 1] = (uint32_t)oend;
        return;
    }
    t->norm[t->norm_len] = ' ';
    if (k->maps) {
        t->nmap_start[t->norm_len] = (uint32_t)ostart;
        t->nmap_end[t->norm_len] = (uint32_t)oend;
    }
    t->norm_len++;
}

static inline void sink_bytes(fold_sink_t *k, const uint8_t *b, size_t n, size_t ostart, size_t oend) {
    check_text_t *t = k->t;
    for (size_t j = 0; j < n; j++) {
        /* A compatibility decomposition may produce spaces of its own. */
        if (b[j] == ' ') {
            sink_space(k, ostart, oend);
            continue;
        }
        t->norm[t->norm_len] = (char)b[j];
        if (k->maps) {
            t->nmap_start[t->norm_len] = (uint32_t)ostart;
            t->nmap_end[t->norm_len] = (uint32_t)oend;
        }
        t->norm_len++;
    }
}

#ifdef __SSE2__
/* The bytes b of v with lo <= b <= hi (0 < lo <= hi < 0xFF), as unsigned
 * bytes: the signed compares see them with their top bit flipped. */
static inline __m128i bytes_in(__m128i v, int lo, int hi) {
    __m128i x = _mm_xor_si128(v, _mm_set1_epi8((char)0x80));
    return _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8((char)((lo ^ 0x80) - 1))),
                         _mm_cmplt_epi8(x, _mm_set1_epi8((char)((hi ^ 0x80) + 1))));
}

/* A byte mask's bytes 4q..4q+3 as 32-bit lanes (0 or -1). */
static inline __m128i mask_dwords(__m128i m, int q) {
    __m128i w = q < 2 ? _mm_unpacklo_epi8(m, m) : _mm_unpackhi_epi8(m, m);
    return (q & 1) ? _mm_unpackhi_epi16(w, w) : _mm_unpacklo_epi16(w, w);
}

/* The spaces of v that follow a space: in v, or prev (the byte written
 * before the block).  Such a run is the byte paths' to join. */
static inline __m128i spaces_after_space(__m128i v, char prev) {
    __m128i is_sp = _mm_cmpeq_epi8(v, _mm_set1_epi8(' '));
    return _mm_and_si128(is_sp, _mm_or_si128(_mm_slli_si128(is_sp, 1), _mm_cvtsi32_si128(-(prev == ' ') & 0xFF)));
}

/* The maps of sixteen output bytes at o that are sixteen input bytes at i,
 * each its own but for the letters whose bytes second and lead mark (byte
 * masks): a second byte starts one earlier, a lead byte ends one later. */
static inline void maps_store16(uint32_t *ms, uint32_t *me, size_t o, size_t i, __m128i second, __m128i lead) {
    __m128i p0 = _mm_add_epi32(_mm_set1_epi32((int)i), _mm_setr_epi32(0, 1, 2, 3));
    const __m128i four = _mm_set1_epi32(4), one = _mm_set1_epi32(1);
    for (int q = 0; q < 4; q++) {
        _mm_storeu_si128((__m128i *)(ms + o + 4 * q), _mm_add_epi32(p0, mask_dwords(second, q)));
        _mm_storeu_si128((__m128i *)(me + o + 4 * q), _mm_sub_epi32(_mm_add_epi32(p0, one), mask_dwords(lead, q)));
        p0 = _mm_add_epi32(p0, four);
    }
}

/* fold_run's sixteen-byte step for Cyrillic text, with maps
 * (check_fold_t.cyr_simd): blocks of printable ASCII (no space after a
 * space) and the letters U+0410-U+044F, where every character is its own
 * cluster and folds to as many bytes, by case arithmetic (A-Z +0x20; А-П
 * D0 90-9F -> D0 B0-BF; Р-Я D0 A0-AF -> D1 80-8F) and cyr_fix.  A block
 * whose last byte starts a letter commits fifteen bytes.  What follows a
 * block must not join its last character (a combining mark): ASCII, a
 * lead byte of U+0400-U+047F (letters all), or the end.  Returns where it
 * stopped; the byte paths take over from there. */
static size_t cyr_blocks(fold_sink_t *k, const check_fold_t *fold, const uint8_t *s, size_t len, size_t i) {
    check_text_t *t = k->t;
    char *out = t->norm;
    uint32_t *ms = t->nmap_start, *me = t->nmap_end;
    size_t o = t->norm_len;
    const __m128i xd0 = _mm_set1_epi8((char)0xD0), xd1 = _mm_set1_epi8((char)0xD1), x20 = _mm_set1_epi8(0x20);
    while (i + 16 <= len && o > k->base) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i lead0 = _mm_cmpeq_epi8(v, xd0), lead1 = _mm_cmpeq_epi8(v, xd1);
        __m128i lead = _mm_or_si128(lead0, lead1);
        __m128i sec0 = _mm_and_si128(_mm_slli_si128(lead0, 1), bytes_in(v, 0x90, 0xBF));
        __m128i sec1 = _mm_and_si128(_mm_slli_si128(lead1, 1), bytes_in(v, 0x80, 0x8F));
        __m128i second = _mm_or_si128(sec0, sec1);
        __m128i printable = bytes_in(v, 0x20, 0x7E);
        unsigned lm = (unsigned)_mm_movemask_epi8(lead), sm = (unsigned)_mm_movemask_epi8(second);
        unsigned bad = (~(unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(printable, lead), second)) & 0xFFFF) |
                       (unsigned)_mm_movemask_epi8(spaces_after_space(v, out[o - 1])) | (lm & 0x7FFF & ~(sm >> 1));
        if (bad) break;
        size_t n = (lm & 0x8000) ? 15 : 16;
        if (n == 16 && i + 16 < len && s[i + 16] >= 0x80 && s[i + 16] != 0xD0 && s[i + 16] != 0xD1) break;
        __m128i upper = _mm_or_si128(bytes_in(v, 'A', 'Z'), _mm_and_si128(sec0, bytes_in(v, 0x90, 0x9F)));
        __m128i upper2 = _mm_and_si128(sec0, bytes_in(v, 0xA0, 0xAF)); /* Р-Я: the lead becomes D1 */
        __m128i f = _mm_add_epi8(v, _mm_and_si128(upper, x20));
        f = _mm_sub_epi8(f, _mm_and_si128(upper2, x20));
        f = _mm_add_epi8(f, _mm_and_si128(_mm_srli_si128(upper2, 1), _mm_set1_epi8(1)));
        for (int x = 0; x < fold->cyr_fix_count; x++) {
            const uint8_t *fix = fold->cyr_fix[x];
            __m128i at = _mm_and_si128(_mm_and_si128(lead, _mm_cmpeq_epi8(f, _mm_set1_epi8((char)fix[0]))),
                                       _mm_srli_si128(_mm_cmpeq_epi8(f, _mm_set1_epi8((char)fix[1])), 1));
            __m128i at2 = _mm_slli_si128(at, 1);
            f = _mm_or_si128(_mm_andnot_si128(at, f), _mm_and_si128(at, _mm_set1_epi8((char)fix[2])));
            f = _mm_or_si128(_mm_andnot_si128(at2, f), _mm_and_si128(at2, _mm_set1_epi8((char)fix[3])));
        }
        _mm_storeu_si128((__m128i *)(out + o), f);
        maps_store16(ms, me, o, i, second, lead); /* a letter's two bytes map to its two */
        o += n;
        i += n;
    }
    t->norm_len = o;
    return i;
}
#endif

/* The core loop.  Returns -1 on invalid UTF-8 when maps is false (lexicon
 * entries and task names must be valid); with maps, invalid bytes become an
 * issue and a word separator. */
static int fold_run(fold_sink_t *k, const check_fold_t *fold, const uint8_t *s, size_t len) {
    check_text_t *t = k->t;
    sink_reserve(k, len + 8);
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            /* A run of ASCII: each byte its own cluster (but the last, which
             * a combining mark may follow), and the NFKC case fold of ASCII
             * is lower case.  Locals, not t->, so the loop stays in
             * registers. */
            size_t j = i + 1;
#ifdef __SSE2__
            /* sixteen bytes a step to the first byte >= 0x80 */
            while (j + 16 <= len && _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(s + j))) == 0) j += 16;
#endif
            while (j < len && s[j] < 0x80) j++;
            size_t stop = j < len ? j - 1 : j;
            char *out = t->norm;
            uint32_t *ms = t->nmap_start, *me = t->nmap_end;
            size_t o = t->norm_len;
            const bool maps = k->maps;
            for (;;) {
#ifdef __SSE2__
                /* Sixteen bytes at a time while they are printable ASCII with
                 * no whitespace run in them: then every byte is its own output
                 * byte (upper case lowered, a single space kept as it is) and
                 * maps to itself.  Anything else, and the blocks around it,
                 * takes the byte loop below, which these blocks reproduce. */
                if (maps) {
                    const __m128i az_lo = _mm_set1_epi8('A' - 1), az_hi = _mm_set1_epi8('Z' + 1);
                    const __m128i bit5 = _mm_set1_epi8(0x20);
                    const __m128i glyph_max = _mm_set1_epi8(0x7E), glyph_min = _mm_set1_epi8(0x20);
                    while (i + 16 <= stop && o > k->base) {
                        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
                        /* printable: 0x20 <= b < 0x7F (bytes >= 0x80 are negative) */
                        __m128i bad = _mm_or_si128(_mm_cmpgt_epi8(v, glyph_max), _mm_cmplt_epi8(v, glyph_min));
                        bad = _mm_or_si128(bad, spaces_after_space(v, out[o - 1]));
                        if (_mm_movemask_epi8(bad) != 0) break;
                        __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(v, az_lo), _mm_cmplt_epi8(v, az_hi));
                        _mm_storeu_si128((__m128i *)(out + o), _mm_or_si128(v, _mm_and_si128(upper, bit5)));
                        maps_store16(ms, me, o, i, _mm_setzero_si128(), _mm_setzero_si128());
                        o += 16;
                        i += 16;
                    }
                }
#endif
                /* the bytes one at a time, sixteen at most before the next try */
                size_t chunk_end = stop - i > 16 ? i + 16 : stop;
                for (; i < chunk_end; i++) {
                    uint8_t f = ascii_fold[s[i]];
                    if (f >= 0x20) {
                        out[o] = (char)f;
                        if (maps) ms[o] = (uint32_t)i, me[o] = (uint32_t)i + 1;
                        o++;
                        continue;
                    }
                    if (f == ASCII_CONTROL && maps) text_issue(t, CHECK_ISSUE_CONTROL, "control character", i, i + 1);
                    if (o == k->base) continue; /* no leading space */
                    if (out[o - 1] == ' ') {
                        if (maps) me[o - 1] = (uint32_t)i + 1;
                    } else {
                        out[o] = ' ';
                        if (maps) ms[o] = (uint32_t)i, me[o] = (uint32_t)i + 1;
                        o++;
                    }
                }
                if (i >= stop) break;
            }
            t->norm_len = o;
            if (i >= len) break;
            if (s[i] >= 0x80) continue;
            /* the last ASCII byte before a non-ASCII one: the general path */
        }
        /* Two-byte letters whose fold is two bytes (Cyrillic, Greek, Latin
         * beyond ASCII), each followed by the end, ASCII or another two-byte
         * code point of break class Other or a space: what the loop below
         * does for them, from one table, with the next code point decoded
         * once.  Anything else stops it where the loop below takes over. */
        if (s[i] >= 0x80) {
#ifdef __SSE2__
            if (k->maps && fold->cyr_simd) {
                i = cyr_blocks(k, fold, s, len, i);
                if (i >= len) break;
                if (s[i] < 0x80) continue;
            }
#endif
            const uint16_t *two = fold->two;
            char *out = t->norm;
            uint32_t *ms = t->nmap_start, *me = t->nmap_end;
            size_t o = t->norm_len;
            const bool maps = k->maps;
            uint16_t f = 0;
            if (i + 1 < len && s[i] >= 0xC2 && s[i] < 0xE0 && (s[i + 1] & 0xC0) == 0x80)
                f = two[(s[i] & 0x1F) << 6 | (s[i + 1] & 0x3F)];
            while (f != 0) {
                /* f: the fold of the letter at i; fn: that of the next
                 * one when it is such a letter too (decoded once) */
                size_t end = i + 2;
                uint16_t fn = 0;
                if (end < len && s[end] >= 0x80) {
                    uint8_t d0 = s[end];
                    if (d0 < 0xC2 || d0 >= 0xE0 || end + 1 >= len || (s[end + 1] & 0xC0) != 0x80) break;
                    uint32_t next = (uint32_t)(d0 & 0x1F) << 6 | (s[end + 1] & 0x3F);
                    fn = two[next];
                    if (fn == 0 && !(cp_cls[next] & (CLS_SIMPLE | CLS_SPACE))) break;
                }
                out[o] = (char)(f & 0xFF);
                out[o + 1] = (char)(f >> 8);
                if (maps) {
                    ms[o] = ms[o + 1] = (uint32_t)i;
                    me[o] = me[o + 1] = (uint32_t)end;
                }
                o += 2;
                i = end;
                f = fn;
            }
            t->norm_len = o;
            if (i >= len) break;
            if (s[i] < 0x80) continue; /* it stopped after at least one letter */
        }
        size_t n;
        utf8proc_int32_t cp = cp_decode(s, len, i, &n);
        /* Cyrillic, Greek, most letters and punctuation, a run at a time:
         * the cluster is the code point alone when the next one is ASCII, a
         * space or also of break class Other (UAX #29 GB999), and its fold
         * is in the table.  Anything else takes the general path below,
         * with cp and n the code point it stopped at. */
        bool to_top = false;
        while (cp >= 0 && cp < 0x10000 && (fold->bmp[cp] & CHECK_FOLD_FAST)) {
            size_t end = i + n, n2 = 0;
            utf8proc_int32_t next = -1;
            if (end < len && s[end] >= 0x80) {
                next = cp_decode(s, len, end, &n2);
                if (next >= 0 && !(cp_class(next) & (CLS_SIMPLE | CLS_SPACE))) break; /* a mark may follow */
            }
            uint32_t e = fold->bmp[cp];
            uint32_t bytes = e & 0xFF;
            const uint8_t *b = fold->pool + ((e & ~CHECK_FOLD_FAST) >> 8);
            /* Room for the rest of the input is kept from the start (every
             * path writes at most a byte per byte, or reserves): a fold no
             * longer than its code point (Cyrillic, most letters) needs no
             * new reserve. */
            if (bytes > n) sink_reserve(k, bytes + (len - end));
            size_t o = t->norm_len;
            char *out = t->norm + o; /* locals: a char store aliases t's fields */
            if (bytes == 2) out[0] = (char)b[0], out[1] = (char)b[1];
            else memcpy(out, b, bytes);
            if (k->maps) {
                uint32_t *ms = t->nmap_start + o, *me = t->nmap_end + o;
                if (bytes == 2) {
                    ms[0] = ms[1] = (uint32_t)i;
                    me[0] = me[1] = (uint32_t)end;
                } else {
                    for (uint32_t j = 0; j < bytes; j++) ms[j] = (uint32_t)i, me[j] = (uint32_t)end;
                }
            }
            t->norm_len = o + bytes;
            i = end;
            if (n2 == 0) { /* the end, or ASCII next: the loop's top */
                to_top = true;
                break;
            }
            cp = next;
            n = n2;
        }
        if (to_top) continue;
        if (cp < 0) {
            if (!k->maps) return -1;
            text_issue(t, CHECK_ISSUE_INVALID_UTF8, "invalid UTF-8", i, i + 1);
            sink_space(k, i, i + 1);
            i++;
            continue;
        }
        if (cp_is_space(cp)) {
            sink_space(k, i, i + n);
            i += n;
            continue;
        }
        if (cp >= 0x80 && cp < 0xA0) {
            if (k->maps) text_issue(t, CHECK_ISSUE_CONTROL, "control character", i, i + n);
            sink_space(k, i, i + n);
            i += n;
            continue;
        }
        if (cp == 0xFFFD) {
            if (k->maps)
                text_issue(t, CHECK_ISSUE_INVALID_UTF8, "replacement character U+FFFD (damaged text)", i, i + n);
            sink_space(k, i, i + n);
            i += n;
            continue;
        }
        if (cp_is_invisible(cp)) {
            /* Dropped from norm, so a word split by a zero-width space
             * still matches its lexicon entry. */
            if (k->maps) text_issue(t, CHECK_ISSUE_INVISIBLE, "invisible or unassigned character", i, i + n);
            i += n;
            continue;
        }
        /* The cluster: cp and what may not be separated from it. */
        size_t end = i + n;
        utf8proc_int32_t prev = cp;
        utf8proc_int32_t state = 0;
        while (end < len) {
            size_t n2;
            utf8proc_int32_t next = cp_decode(s, len, end, &n2);
            if (next < 0 || cp_is_space(next)) break;
            /* two code points of break class Other always break (UAX #29
             * GB999): most pairs never need the full rules */
            if ((cp_class(prev) & cp_class(next) & CLS_SIMPLE)) break;
            if (utf8proc_grapheme_break_stateful(prev, next, &state)) break;
            end += n2;
            prev = next;
        }
        if (end == i + n && cp < 0x10000) {
            uint32_t e = fold->bmp[cp];
            uint32_t bytes = e & 0xFF;
            sink_reserve(k, bytes + (len - end));
            sink_bytes(k, fold->pool + ((e & ~CHECK_FOLD_FAST) >> 8), bytes, i, end);
        } else {
            ssize_t bytes = fold_cluster(fold->options, s + i, end - i, &k->tmp, &k->tmp_cap);
            if (bytes < 0) {
                /* Cannot happen for valid UTF-8; keep the bytes as they are. */
                sink_reserve(k, (end - i) + (len - end));
                sink_bytes(k, s + i, end - i, i, end);
            } else {
                sink_reserve(k, (size_t)bytes + (len - end));
                sink_bytes(k, (const uint8_t *)k->tmp, (size_t)bytes, i, end);
            }
        }
        i = end;
    }
    if (t->norm_len > k->base && t->norm[t->norm_len - 1] == ' ') t->norm_len--;
    memset(t->norm + t->norm_len, 0, 1 + CHECK_PAD);
    return 0;
}

/* check_fold_append for ASCII, which most task names are: what fold_run's
 * byte loop does without maps (lower case, a space for each run of spaces
 * and control characters, none at either end), without its set-up.  False,
 * and *buf_len as it was, when s is not all ASCII after all: one pass, not a
 * test and then the fold. */
static bool fold_append_ascii(const uint8_t *s, size_t len, char **buf, size_t *buf_len, size_t *buf_cap) {
    *buf = grow(*buf, buf_cap, *buf_len + len + 1 + CHECK_PAD, 1);
    char *out = *buf;
    size_t base = *buf_len, o = base;
    uint8_t high = 0;
    for (size_t i = 0; i < len; i++) {
        high |= s[i];
        uint8_t f = ascii_fold[s[i] & 0x7F];
        if (f >= 0x20) out[o++] = (char)f;
        else if (o > base && out[o - 1] != ' ') out[o++] = ' ';
    }
    if (high & 0x80) return false;
    if (o > base && out[o - 1] == ' ') o--;
    memset(out + o, 0, 1 + CHECK_PAD);
    *buf_len = o;
    return true;
}

int check_fold_append(const check_fold_t *fold, const char *s, size_t len, char **buf, size_t *buf_len,
                      size_t *buf_cap) {
    /* a name that starts with a non-ASCII letter (Cyrillic) is rarely ASCII */
    if ((len == 0 || (uint8_t)s[0] < 0x80) && fold_append_ascii((const uint8_t *)s, len, buf, buf_len, buf_cap))
        return 0;
    check_text_t t;
    memset(&t, 0, sizeof(t));
    t.norm = *buf;
    t.norm_len = *buf_len;
    t.norm_cap = *buf_cap;
    fold_sink_t k = {&t, false, *buf_len, NULL, 0};
    int rc = fold_run(&k, fold, (const uint8_t *)s, len);
    free(k.tmp);
    *buf = t.norm;
    *buf_cap = t.norm_cap;
    if (rc != 0) {
        if (*buf) (*buf)[*buf_len] = '\0';
        return -1;
    }
    *buf_len = t.norm_len;
    return 0;
}

/* ------------------------------------------------------------------ */
/* tokens */

/* The tokeniser, inlined into its loops.  Plain ASCII (nearly every byte
 * of most texts) never reaches the general decoder. */
CP_INLINE bool norm_next_word(const uint8_t *s, size_t len, size_t *pos, uint32_t *start, uint32_t *end,
                              uint32_t *flags) {
    size_t i = *pos, n;
    while (i < len) {
        if (s[i] < 0x80) {
            if (byte_word[s[i]]) break;
            i++;
            continue;
        }
        utf8proc_int32_t cp = cp_decode(s, len, i, &n);
        if (cp >= 0 && cp_is_word(cp)) break;
        i += n;
    }
    if (i >= len) {
        *pos = len;
        return false;
    }
    size_t first = i;
    uint32_t f;
    utf8proc_int32_t last;
    if (s[i] < 0x80) {
        last = s[i++];
        f = last <= '9' ? CHECK_TOK_DIGIT : 0; /* a word byte: a digit or a letter */
    } else {
        utf8proc_int32_t cp = cp_decode(s, len, i, &n);
        f = cp_is_digit(cp) ? CHECK_TOK_DIGIT : 0;
        i += n;
        if (cp_is_cjk(cp)) {
            while (i < len) {
                utf8proc_int32_t m = cp_decode(s, len, i, &n);
                if (m < 0 || !cp_is_mark(m)) break;
                i += n;
            }
            *start = (uint32_t)first;
            *end = (uint32_t)i;
            *flags = f | CHECK_TOK_CJK;
            *pos = i;
            return true;
        }
        last = cp;
    }
    while (i < len) {
        /* runs of ASCII letters and digits without the general decoder */
        size_t run = i;
        while (i < len && byte_word[s[i]]) i++;
        if (i > run) last = s[i - 1];
        if (i >= len) break;
        utf8proc_int32_t c2;
        /* and of the folded Cyrillic letters а-я (U+0430-U+044F), letters
         * of class Ll and no digits: `last` only matters for digits */
        if ((s[i] == 0xD0 && i + 1 < len && s[i + 1] >= 0xB0 && s[i + 1] <= 0xBF) ||
            (s[i] == 0xD1 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x8F)) {
            last = (utf8proc_int32_t)((s[i] & 0x1F) << 6 | (s[i + 1] & 0x3F));
            i += 2;
            continue;
        }
        if (s[i] >= 0x80) {
            c2 = cp_decode(s, len, i, &n);
            if (c2 >= 0 && (cp_class(c2) & (CLS_WORD | CLS_CJK)) == CLS_WORD) {
                last = c2;
                i += n;
                continue;
            }
            break; /* the connectors are all ASCII */
        }
        c2 = s[i];
        /* Connectors inside a word: don't, eye-catching, 3.5, 1,000. */
        if (byte_connector[c2] && i + 1 < len) {
            size_t n3;
            utf8proc_int32_t c3 = cp_decode(s, len, i + 1, &n3);
            bool ok = c3 >= 0 && cp_is_word(c3) && !cp_is_cjk(c3);
            if (ok && (c2 == '.' || c2 == ',')) ok = cp_is_digit(last) && cp_is_digit(c3);
            if (ok) {
                f |= c2 == '-' ? CHECK_TOK_HYPHEN : CHECK_TOK_INNER;
                i += 1;
                continue;
            }
        }
        break;
    }
    *start = (uint32_t)first;
    *end = (uint32_t)i;
    *flags = f;
    *pos = i;
    return true;
}

bool check_norm_next_word(const char *norm, size_t len, size_t *pos, uint32_t *start, uint32_t *end,
                          uint32_t *flags) {
    return norm_next_word((const uint8_t *)norm, len, pos, start, end, flags);
}

/* Bitmaps of norm, a bit a byte: begin[] for the bytes a word may start
 * with as far as bytes tell (ASCII letters and digits, bytes >= 0x80),
 * other[] for the bytes that are not word bytes (every bit past the end
 * set).  Word bytes are ASCII letters and digits and the folded Cyrillic
 * letters а-я (U+0430-U+044F: D0 B0-BF, D1 80-8F); a word of them alone is
 * found on the bitmaps (text_tokenise). */
static size_t text_bitmaps(check_text_t *t, uint64_t **begin, uint64_t **other) {
    size_t len = t->norm_len, nw = (len + 63) / 64;
    t->bits = grow(t->bits, &t->bits_cap, 2 * nw + 2, sizeof(*t->bits));
    *begin = t->bits;
    *other = t->bits + nw;
    const uint8_t *s = (const uint8_t *)t->norm;
    /* The scan form on the way (see check_lexicon_scan): every ASCII byte
     * that is not a letter or digit becomes a space here; text_tokenise
     * blanks the non-ASCII bytes between words. */
    t->scan = grow(t->scan, &t->scan_cap, len + 3, 1);
    uint8_t *sc = (uint8_t *)t->scan + 1;
    uint64_t carry = 0; /* a Cyrillic letter's second byte in the next word */
    for (size_t w = 0; w < nw; w++) {
        uint64_t wb = 0, hb = 0, lead = 0;
        size_t base = w * 64;
        size_t i = 0;
#ifdef __SSE2__
        const __m128i bit5 = _mm_set1_epi8(0x20), a1 = _mm_set1_epi8('a' - 1), z1 = _mm_set1_epi8('z' + 1);
        const __m128i d1 = _mm_set1_epi8('0' - 1), d9 = _mm_set1_epi8('9' + 1);
        const __m128i xd0 = _mm_set1_epi8((char)0xD0), xd1 = _mm_set1_epi8((char)0xD1);
        const __m128i xf0 = _mm_set1_epi8((char)0xF0), xb0 = _mm_set1_epi8((char)0xB0);
        const __m128i x80 = _mm_set1_epi8((char)0x80);
        for (; i < 64 && base + i + 16 <= len; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(s + base + i));
            /* the byte after each: s[len] is the NUL */
            __m128i nx = _mm_loadu_si128((const __m128i *)(s + base + i + 1));
            __m128i lower = _mm_or_si128(v, bit5);
            __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(lower, a1), _mm_cmplt_epi8(lower, z1));
            __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, d1), _mm_cmplt_epi8(v, d9));
            __m128i keep = _mm_or_si128(_mm_or_si128(letter, digit), _mm_cmplt_epi8(v, _mm_setzero_si128()));
            _mm_storeu_si128((__m128i *)(sc + base + i),
                             _mm_or_si128(_mm_and_si128(keep, v), _mm_andnot_si128(keep, _mm_set1_epi8(' '))));
            __m128i nx_hi = _mm_and_si128(nx, xf0);
            __m128i cyr = _mm_or_si128(_mm_and_si128(_mm_cmpeq_epi8(v, xd0), _mm_cmpeq_epi8(nx_hi, xb0)),
                                       _mm_and_si128(_mm_cmpeq_epi8(v, xd1), _mm_cmpeq_epi8(nx_hi, x80)));
            wb |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_or_si128(letter, digit)) << i;
            hb |= (uint64_t)(unsigned)_mm_movemask_epi8(v) << i;
            lead |= (uint64_t)(unsigned)_mm_movemask_epi8(cyr) << i;
        }
#endif
        for (; i < 64 && base + i < len; i++) {
            uint8_t c = s[base + i], n = s[base + i + 1];
            sc[base + i] = byte_word[c] || c >= 0x80 ? c : ' ';
            wb |= (uint64_t)byte_word[c] << i;
            hb |= (uint64_t)(c >> 7) << i;
            lead |= (uint64_t)((c == 0xD0 && (n & 0xF0) == 0xB0) | (c == 0xD1 && (n & 0xF0) == 0x80)) << i;
        }
        uint64_t word = wb | lead | lead << 1 | carry;
        carry = lead >> 63;
        (*begin)[w] = word | hb;
        (*other)[w] = ~word;
    }
    return nw;
}

/* tok_at[from, to) = token, and up to fifteen entries after to, which the
 * next call overwrites. */
static inline void tok_at_fill(uint32_t *tok_at, size_t from, size_t to, uint32_t token) {
#ifdef __SSE2__
    const __m128i v = _mm_set1_epi32((int)token);
    for (size_t q = from; q < to; q += 16) {
        _mm_storeu_si128((__m128i *)(tok_at + q), v);
        _mm_storeu_si128((__m128i *)(tok_at + q + 4), v);
        _mm_storeu_si128((__m128i *)(tok_at + q + 8), v);
        _mm_storeu_si128((__m128i *)(tok_at + q + 12), v);
    }
#else
    for (size_t q = from; q < to; q++) tok_at[q] = token;
#endif
}

/* Tokens of norm.  A word of word bytes (text_bitmaps: ASCII letters and
 * digits, Cyrillic а-я) that ends in an ASCII byte other than a connector
 * (' - . ,) is found on the bitmaps (test_tokens_fast_paths compares it
 * with norm_next_word); anything else (other characters, connectors) goes
 * to norm_next_word from where the word starts, which gives what it would
 * have given from the end of the previous token, since only ASCII non-word
 * bytes lie between. */
static void text_tokenise(check_text_t *t) {
    uint32_t start, end, flags;
    const uint8_t *o = (const uint8_t *)t->orig;
    const uint8_t *s = (const uint8_t *)t->norm;
    const size_t len = t->norm_len;
    uint64_t *begin, *other;
    size_t nw = text_bitmaps(t, &begin, &other);
    other[nw] = ~0ull; /* stops the search for a word's end (text_bitmaps leaves room) */
    const uint32_t *nmap_start = t->nmap_start, *nmap_end = t->nmap_end;
    /* The token array in locals: stores through t (the scan form's bytes
     * among them) would otherwise make every token reload them. */
    check_token_t *tokens = t->tokens;
    size_t count = 0, cap = t->token_cap;
    /* tok_at in sixteen-entry strides (one stride covers nearly every word
     * and the gap before it, so the loop's exit is predictable); the slack
     * after len takes the last stride's overhang. */
    t->tok_at = grow(t->tok_at, &t->tok_at_cap, len + 16, sizeof(*t->tok_at));
    uint32_t *tok_at = t->tok_at;
    size_t tok_at_done = 0;
    /* The words of begin still to visit: w and the mask of its bits at or
     * after the current position, kept across tokens. */
    size_t w = 0;
    uint64_t m = nw > 0 ? begin[0] : 0;
    uint32_t flags_any = 0;
    for (;;) {
        while (m == 0) {
            if (++w >= nw) goto done;
            m = begin[w];
        }
        size_t p = w * 64 + (size_t)__builtin_ctzll(m);
        if (p >= len) break;
        size_t next;
        bool simple = !(other[p >> 6] >> (p & 63) & 1);
        size_t e = p;
        if (simple) {
            size_t ew = p >> 6;
            uint64_t x = other[ew] & (~0ull << (p & 63));
            while (x == 0) x = other[++ew];
            e = ew * 64 + (size_t)__builtin_ctzll(x);
            if (e > len) e = len;
            /* A connector only joins when a word character follows it.
             * Without branches (which word ends in a comma is a coin
             * toss): s[len] is the NUL and s[len + 1] the pad's first
             * zero, neither a connector nor a word byte. */
            simple = !((s[e] >> 7) | (byte_connector[s[e]] & ((s[e + 1] >> 7) | byte_word[s[e + 1]])));
        }
        if (simple) {
            start = (uint32_t)p;
            end = (uint32_t)e;
            flags = s[p] <= '9' ? CHECK_TOK_DIGIT : 0; /* a Cyrillic letter's lead byte is above */
            next = e;
        } else {
            next = p;
            bool found = norm_next_word(s, len, &next, &start, &end, &flags);
            /* what it skipped is no word: blank its non-ASCII bytes too */
            for (size_t k = p, gap_end = found ? start : len; k < gap_end; k++) {
                if (s[k] >= 0x80) t->scan[1 + k] = ' ';
            }
            if (!found) break;
        }
        if (count == cap) tokens = grow(tokens, &cap, count + 1, sizeof(*tokens));
        check_token_t *tok = &tokens[count++];
        tok->nstart = start;
        tok->nend = end;
        tok_at_fill(tok_at, tok_at_done, end, (uint32_t)(count - 1));
        tok_at_done = end;
        /* s[start + 1] is readable (at worst the NUL): masked, not branched on */
        tok->key = (uint16_t)(s[start] | (s[start + 1] & -(unsigned)(end - start > 1)) << 8);
        uint32_t ostart = nmap_start[start], oend = nmap_end[end - 1];
        tok->ostart = ostart;
        tok->oend = oend;
        tok->sentence = 0;
        /* Case comes from the original: the first letter of the span.  An
         * ASCII letter or digit there (nearly always) decides at once. */
        uint8_t first_case = byte_case[o[ostart]];
        flags |= first_case & (CHECK_TOK_CAP | CHECK_TOK_LOWER);
        if (first_case == 0) {
            for (size_t j = ostart; j < oend;) {
                size_t n;
                utf8proc_int32_t oc = cp_decode(o, oend, j, &n);
                j += n;
                if (oc < 0) break;
                if (oc < 0x80) {
                    if (oc >= 'A' && oc <= 'Z') flags |= CHECK_TOK_CAP;
                    else if (oc >= 'a' && oc <= 'z') flags |= CHECK_TOK_LOWER;
                    else if (oc >= '0' && oc <= '9') ;
                    else continue;
                    break;
                }
                uint16_t c = cp_class(oc);
                if (c & CLS_UPPER) {
                    flags |= CHECK_TOK_CAP;
                    break;
                }
                if (c & CLS_LOWER) {
                    flags |= CHECK_TOK_LOWER;
                    break;
                }
                if (c & CLS_WORD) break;
            }
        }
        tok->flags = flags;
        flags_any |= flags;
        w = next >> 6;
        if (w >= nw) break;
        m = begin[w] & (~0ull << (next & 63));
    }
done:
    tok_at_fill(tok_at, tok_at_done, len, (uint32_t)count);
    t->tokens = tokens;
    t->token_cap = cap;
    t->token_count = count;
    t->words = count;
    t->token_flags_any = flags_any;
}

size_t check_norm_scan_form(char *s, size_t len) {
    char *out = malloc(len + 1);
    if (out == NULL) abort();
    memset(out, ' ', len);
    size_t pos = 0;
    uint32_t ws, we, wf;
    while (norm_next_word((const uint8_t *)s, len, &pos, &ws, &we, &wf)) {
        for (uint32_t k = ws; k < we; k++) {
            char c = s[k];
            out[k] = c == '\'' || c == '-' || c == '.' || c == ',' ? ' ' : c;
        }
    }
    size_t a = 0, b = len;
    while (a < b && out[a] == ' ') a++;
    while (b > a && out[b - 1] == ' ') b--;
    memcpy(s, out + a, b - a);
    s[b - a] = '\0';
    free(out);
    return b - a;
}

/* ------------------------------------------------------------------ */
/* quotes and markup: a pass over the original bytes */

typedef struct quote_pair {
    const char *open;
    const char *close[2];
} quote_pair_t;

/* “…” may close with ”; „…“ is German and Russian; «…» is Russian and
 * French; 「…」 and 『…』 Japanese.  ‘…’ only opens after a non-letter, so an
 * apostrophe never starts a quote. */
static const quote_pair_t quote_pairs[] = {
    {"\"", {"\"", NULL}},
    {"\xE2\x80\x9C", {"\xE2\x80\x9D", "\""}},
    {"\xE2\x80\x9E", {"\xE2\x80\x9C", "\xE2\x80\x9D"}},
    {"\xC2\xAB", {"\xC2\xBB", NULL}},
    {"\xE3\x80\x8C", {"\xE3\x80\x8D", NULL}},
    {"\xE3\x80\x8E", {"\xE3\x80\x8F", NULL}},
    {"\xE2\x80\xB9", {"\xE2\x80\xBA", NULL}},
    {"\xE2\x80\x98", {"\xE2\x80\x99", NULL}},
};

static bool byte_letter_before(const uint8_t *s, size_t off) {
    if (off == 0) return false;
    utf8proc_int32_t cp = cp_decode_before(s, off);
    return cp >= 0 && cp_is_word(cp);
}

static bool byte_letter_at(const uint8_t *s, size_t len, size_t off) {
    if (off >= len) return false;
    size_t n;
    utf8proc_int32_t cp = cp_decode(s, len, off, &n);
    return cp >= 0 && cp_is_word(cp);
}

/* Length of the quote opener at s[i] and its pair, or 0. */
static size_t quote_open_at(const uint8_t *s, size_t len, size_t i, const quote_pair_t **pair) {
    for (size_t p = 0; p < sizeof(quote_pairs) / sizeof(quote_pairs[0]); p++) {
        size_t ol = strlen(quote_pairs[p].open);
        if (i + ol > len || memcmp(s + i, quote_pairs[p].open, ol) != 0) continue;
        if (p == 7 && byte_letter_before(s, i)) return 0;
        *pair = &quote_pairs[p];
        return ol;
    }
    return 0;
}

/* The end of the closer of pair in s[from..limit), or 0 when there is none
 * before the paragraph ends. */
static size_t quote_close_find(const uint8_t *s, size_t len, size_t from, size_t limit,
                               const quote_pair_t *pair) {
    for (size_t j = from; j < limit; j++) {
        if (s[j] == '\n') return 0;
        for (int c = 0; c < 2 && pair->close[c]; c++) {
            size_t cl = strlen(pair->close[c]);
            if (j + cl > len || memcmp(s + j, pair->close[c], cl) != 0) continue;
            /* ’ closes only where it is not an apostrophe (don’t). */
            if (pair == &quote_pairs[7] && byte_letter_at(s, len, j + cl)) continue;
            if (j == from) continue; /* an empty quote is no quote */
            return j + cl;
        }
    }
    return 0;
}

static bool line_start(const uint8_t *s, size_t i) {
    while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t')) i--;
    return i == 0 || s[i - 1] == '\n';
}

/* Markup at s[i]: returns its end, or 0. */
static size_t markup_at(const uint8_t *s, size_t len, size_t i, const char **what) {
    uint8_t c = s[i];
    if (c == '<' && i + 1 < len && (isalpha(s[i + 1]) || s[i + 1] == '/' || s[i + 1] == '!')) {
        for (size_t j = i + 1; j < len && j < i + 256; j++) {
            if (s[j] == '<' || s[j] == '\n') break;
            if (s[j] == '>') {
                *what = "markup (HTML tag)";
                return j + 1;
            }
        }
        return 0;
    }
    if (c == '&' && i + 2 < len) {
        size_t j = i + 1;
        if (s[j] == '#') {
            j++;
            if (j < len && (s[j] == 'x' || s[j] == 'X')) j++;
            size_t d = j;
            while (j < len && isxdigit(s[j]) && j - d < 8) j++;
            if (j > d && j < len && s[j] == ';') {
                *what = "markup (HTML entity)";
                return j + 1;
            }
            return 0;
        }
        while (j < len && isalpha(s[j]) && j - i < 12) j++;
        if (j - i >= 3 && j < len && s[j] == ';') {
            *what = "markup (HTML entity)";
            return j + 1;
        }
        return 0;
    }
    if ((c == '*' || c == '_') && i + 1 < len && s[i + 1] == c) {
        *what = "markup (emphasis)";
        return i + 2;
    }
    if (c == '`') {
        *what = "markup (code)";
        size_t j = i;
        while (j < len && s[j] == '`') j++;
        return j;
    }
    if (c == '[') {
        for (size_t j = i + 1; j + 1 < len && j < i + 256; j++) {
            if (s[j] == '\n' || s[j] == '[') break;
            if (s[j] == ']' && s[j + 1] == '(') {
                *what = "markup (link)";
                size_t k = j + 2;
                while (k < len && s[k] != ')' && s[k] != '\n' && k < j + 512) k++;
                return k < len && s[k] == ')' ? k + 1 : j + 2;
            }
        }
        return 0;
    }
    if (line_start(s, i)) {
        size_t j = i;
        if (c == '#') {
            while (j < len && s[j] == '#') j++;
            if (j < len && j - i <= 6 && s[j] == ' ') {
                *what = "markup (heading)";
                return j;
            }
            return 0;
        }
        if ((c == '-' || c == '*' || c == '+' || c == '>') && i + 1 < len && s[i + 1] == ' ') {
            *what = c == '>' ? "markup (block quote)" : "markup (list item)";
            return i + 1;
        }
        if (isdigit(c)) {
            while (j < len && isdigit(s[j]) && j - i < 3) j++;
            if (j + 1 < len && (s[j] == '.' || s[j] == ')') && s[j + 1] == ' ') {
                *what = "markup (numbered list)";
                return j + 1;
            }
        }
    }
    return 0;
}

static const uint8_t scan_interesting[256] = {
    ['\n'] = 1, ['"'] = 1, [0xE2] = 1, [0xC2] = 1, [0xE3] = 1, /* newline, quotes */
    ['<'] = 1,  ['&'] = 1, ['*'] = 1,  ['_'] = 1,  ['`'] = 1,  ['['] = 1,  /* inline markup */
};

#ifdef __SSE2__
/* Whether any of the sixteen bytes at s is in scan_interesting. */
static inline bool interesting16(const uint8_t *s) {
    __m128i v = _mm_loadu_si128((const __m128i *)s);
#define EQ(c) _mm_cmpeq_epi8(v, _mm_set1_epi8((char)(c)))
    /* 0xE2 and 0xE3 differ in the last bit only */
    __m128i hit = _mm_or_si128(_mm_or_si128(EQ('\n'), EQ('"')),
                               _mm_or_si128(_mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8((char)0xFE)),
                                                           _mm_set1_epi8((char)0xE2)),
                                            EQ(0xC2)));
    hit = _mm_or_si128(hit, _mm_or_si128(_mm_or_si128(EQ('<'), EQ('&')), _mm_or_si128(EQ('*'), EQ('_'))));
    hit = _mm_or_si128(hit, _mm_or_si128(EQ('`'), EQ('[')));
#undef EQ
    return _mm_movemask_epi8(hit) != 0;
}
#endif

static void text_scan_original(check_text_t *t, size_t quote_max) {
    const uint8_t *s = (const uint8_t *)t->orig;
    size_t len = t->orig_len;
    t->quote_count = 0;
    bool line_begins = true;
    for (size_t i = 0; i < len;) {
        if (line_begins) {
            /* list markers and headings count only at the start of a line */
            line_begins = false;
            size_t j = i;
            while (j < len && (s[j] == ' ' || s[j] == '\t')) j++;
            const char *what = NULL;
            size_t end = j < len ? markup_at(s, len, j, &what) : 0;
            if (end > 0) {
                text_issue(t, CHECK_ISSUE_MARKUP, what, j, end);
                i = end;
                continue;
            }
        }
        if (s[i] == '\n') {
            line_begins = true;
            i++;
            continue;
        }
        /* Only these bytes can start a quote or inline markup. */
        if (!scan_interesting[s[i]]) {
            i++;
#ifdef __SSE2__
            /* sixteen bytes a step while none of them is interesting */
            while (i + 16 <= len && !interesting16(s + i)) i += 16;
#endif
            /* four bytes a step: most of a text is uninteresting */
            while (i + 4 <= len && !(scan_interesting[s[i]] | scan_interesting[s[i + 1]] | scan_interesting[s[i + 2]] |
                                     scan_interesting[s[i + 3]]))
                i += 4;
            while (i < len && !scan_interesting[s[i]]) i++;
            continue;
        }
        const quote_pair_t *pair;
        size_t ol = quote_open_at(s, len, i, &pair);
        if (ol > 0) {
            size_t limit = i + ol + quote_max < len ? i + ol + quote_max : len;
            size_t end = quote_close_find(s, len, i + ol, limit, pair);
            if (end > 0) {
                t->quotes = grow(t->quotes, &t->quote_cap, t->quote_count + 1, sizeof(*t->quotes));
                t->quotes[t->quote_count++] = (check_span_t){(uint32_t)i, (uint32_t)end};
                i = end;
                continue;
            }
            i += ol;
            continue;
        }
        const char *what = NULL;
        size_t end = markup_at(s, len, i, &what);
        if (end > 0) {
            text_issue(t, CHECK_ISSUE_MARKUP, what, i, end);
            i = end;
            continue;
        }
        i++;
    }
}

static int issue_cmp(const void *a, const void *b) {
    const check_issue_t *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->kind - y->kind;
}

void check_text_prepare(check_text_t *t, const check_rules_t *rules, const char *text, size_t len) {
    t->orig = text;
    t->orig_len = len;
    t->norm_len = 0;
    t->issue_count = 0;
    t->hit_count = 0;
    t->sentence_count = 0;
    fold_sink_t k = {t, true, 0, NULL, 0};
    /* With maps the fold cannot fail. */
    (void)fold_run(&k, &rules->fold, (const uint8_t *)text, len);
    free(k.tmp);
    text_tokenise(t);
    size_t fold_issues = t->issue_count;
    text_scan_original(t, (size_t)rules->quote_max_bytes);
    if (fold_issues > 0 && t->issue_count > fold_issues)
        qsort(t->issues, t->issue_count, sizeof(*t->issues), issue_cmp);
}

bool check_text_quoted(const check_text_t *t, uint32_t start, uint32_t end) {
    size_t lo = 0, hi = t->quote_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->quotes[mid].end <= start) lo = mid + 1;
        else hi = mid;
    }
    return lo < t->quote_count && t->quotes[lo].start <= start && end <= t->quotes[lo].end;
}

/* ------------------------------------------------------------------ */
/* sentences */

typedef struct gap_info {
    bool newline, strong, dot, ideographic, clause;
} gap_info_t;

static gap_info_t gap_scan(const uint8_t *s, size_t from, size_t to) {
    gap_info_t g = {false, false, false, false, false};
    for (size_t j = from; j < to; j++) {
        uint8_t c = s[j];
        if (c == '\n') g.newline = true;
        else if (c == '.') g.dot = true;
        else if (c == '!' || c == '?') g.strong = true;
        else if (c == ',' || c == ';' || c == ':' || c == '(' || c == ')' || c == '-') g.clause = true;
        else if (c == 0xE2 && j + 2 < to) {
            if (s[j + 1] == 0x80 && s[j + 2] == 0xA6) g.strong = true; /* … */
            if (s[j + 1] == 0x80 && (s[j + 2] == 0x93 || s[j + 2] == 0x94)) g.clause = true; /* – — */
        } else if (c == 0xE3 && j + 2 < to && s[j + 1] == 0x80 && s[j + 2] == 0x82) {
            g.ideographic = true; /* 。 */
        } else if (c == 0xEF && j + 2 < to && s[j + 1] == 0xBC && (s[j + 2] == 0x81 || s[j + 2] == 0x9F)) {
            g.ideographic = true; /* ！ ？ */
        }
    }
    return g;
}

bool check_text_gap_breaks_clause(const check_text_t *t, size_t left) {
    if (left + 1 >= t->token_count) return true;
    return t->tokens[left].flags & CHECK_TOK_CLAUSE_AFTER;
}

/* Where a sentence that ends at token i ends in the original: after its
 * closing punctuation and quotes, before the space. */
static uint32_t sentence_end(const check_text_t *t, size_t i) {
    const uint8_t *s = (const uint8_t *)t->orig;
    size_t limit = i + 1 < t->token_count ? t->tokens[i + 1].ostart : t->orig_len;
    size_t j = t->tokens[i].oend;
    while (j < limit && s[j] != ' ' && s[j] != '\n' && s[j] != '\t' && s[j] != '\r') j++;
    return (uint32_t)j;
}

void check_text_sentences(check_text_t *t) {
    t->sentence_count = 0;
    if (t->token_count == 0) return;
    const uint8_t *s = (const uint8_t *)t->orig;
    size_t first = 0;
    /* Locals: the calls in the rare branches would otherwise make every
     * token reload them. */
    check_token_t *tokens = t->tokens;
    const size_t token_count = t->token_count;
    uint32_t sentence = 0;
    for (size_t i = 0; i < token_count; i++) {
        tokens[i].sentence = sentence;
        bool boundary = i + 1 == token_count;
        if (!boundary) {
            check_token_t *a = &tokens[i];
            const check_token_t *b = &tokens[i + 1];
            /* one space, the commonest gap by far, breaks nothing */
            bool one_space = b->ostart == a->oend + 1 && s[a->oend] == ' ';
            gap_info_t g = {false, false, false, false, false};
            if (!one_space) g = gap_scan(s, a->oend, b->ostart);
            if (g.clause || g.dot || g.strong || g.newline || g.ideographic) a->flags |= CHECK_TOK_CLAUSE_AFTER;
            if (g.newline || g.ideographic) {
                boundary = true;
            } else if (g.dot || g.strong) {
                boundary = !(b->flags & CHECK_TOK_LOWER);
                if (boundary && g.dot && !g.strong) {
                    /* "approx. 5 cm", "St. Basil's", "J. S. Bach" */
                    if (a->flags & CHECK_TOK_ABBREVIATION) boundary = false;
                    else if ((a->flags & CHECK_TOK_CAP) && a->nend - a->nstart == 1) boundary = false;
                }
            }
        }
        if (boundary) {
            t->sentences = grow(t->sentences, &t->sentence_cap, t->sentence_count + 1, sizeof(*t->sentences));
            check_sentence_t *sen = &t->sentences[t->sentence_count++];
            sen->first = (uint32_t)first;
            sen->last = (uint32_t)i + 1;
            sen->ostart = tokens[first].ostart;
            sen->oend = sentence_end(t, i);
            sen->words = (uint32_t)(i + 1 - first);
            first = i + 1;
            sentence++;
        }
    }
}

void check_text_free(check_text_t *t) {
    free(t->norm);
    free(t->scan);
    free(t->nmap_start);
    free(t->nmap_end);
    free(t->tokens);
    free(t->sentences);
    free(t->quotes);
    free(t->hits);
    free(t->issues);
    free(t->bits);
    free(t->tok_at);
    memset(t, 0, sizeof(*t));
}
