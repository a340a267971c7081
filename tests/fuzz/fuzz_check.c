/* fuzz_check: the guideline checker (common/check.h) on a task and a
 * description made of fuzz input, with the real rules of config/guideline.
 *
 * Input: six lines, then the description (the rest, any bytes):
 *   locale
 *   main object
 *   synonyms, '|' between them
 *   components, '|' between them, each name/relation/target
 *   kind (production, exam_stage1, exam_stage2, golden; else production)
 *   pregenerated text (an exam_stage2's)
 * Missing lines are empty.  Checked: check_run succeeds (the task always has
 * a main object), every finding's span lies in the text (on code point
 * boundaries when the text is valid UTF-8: a stray continuation byte of a
 * bad text counts as a character of its own), its message is valid UTF-8,
 * the score is in [0, 1], and the result converts to JSON. */
#include <jansson.h>
#include <string.h>

#include "fuzz_checker.h"
#include "utf8.h"

#define FUZZ_LIST_MAX 8

static fuzz_checker_t checker;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_checker_init(&checker);
    return 0;
}

/* The next line of *p (up to '\n' or end), NUL-terminated in place. */
static char *next_line(char **p, char *end) {
    char *s = *p;
    if (s >= end) return end; /* end points at the buffer's final NUL */
    char *nl = memchr(s, '\n', (size_t)(end - s));
    if (nl == NULL) nl = end;
    *nl = '\0';
    *p = nl < end ? nl + 1 : end;
    return s;
}

/* Splits s on sep in place into at most FUZZ_LIST_MAX non-empty items. */
static size_t split(char *s, int sep, char **items) {
    size_t n = 0;
    while (*s && n < FUZZ_LIST_MAX) {
        char *e = strchr(s, sep);
        if (e) *e = '\0';
        if (*s) items[n++] = s;
        if (e == NULL) break;
        s = e + 1;
    }
    return n;
}

static bool is_continuation(const char *text, size_t len, uint32_t off) {
    return off < len && ((uint8_t)text[off] & 0xC0) == 0x80;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    if (buf == NULL) abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *p = buf, *end = buf + size;
    check_task_t task = {0};
    char *synonyms[FUZZ_LIST_MAX], *comp_text[FUZZ_LIST_MAX];
    check_component_t comps[FUZZ_LIST_MAX];
    task.task_id = "fuzz";
    task.locale = next_line(&p, end);
    task.main_object = next_line(&p, end);
    task.main_object_synonyms = synonyms;
    task.synonym_count = split(next_line(&p, end), '|', synonyms);
    size_t nc = split(next_line(&p, end), '|', comp_text);
    for (size_t i = 0; i < nc; i++) {
        char *parts[FUZZ_LIST_MAX] = {0};
        size_t np = split(comp_text[i], '/', parts);
        comps[i].name = parts[0];
        comps[i].relation = np > 1 ? parts[1] : NULL;
        comps[i].target = np > 2 ? parts[2] : NULL;
    }
    task.components = comps;
    task.component_count = nc;
    if (check_kind_parse(next_line(&p, end), &task.kind) != 0) task.kind = CHECK_KIND_PRODUCTION;
    task.pregenerated = next_line(&p, end);
    if (task.main_object[0] == '\0') task.main_object = "object";
    const char *text = p;
    size_t len = (size_t)(end - p);
    /* The description keeps any bytes: it is not NUL-terminated for the
     * checker, which takes a length.  The copy in buf beyond it is ours. */

    char err[512];
    bool valid = utf8_valid(text, len);
    int rc = check_run(checker.rules, checker.scratch, &task, text, len, &checker.result, err, sizeof(err));
    FUZZ_ASSERT(rc == 0);
    FUZZ_ASSERT(checker.result.score >= 0.0 && checker.result.score <= 1.0);
    for (size_t i = 0; i < checker.result.count; i++) {
        const check_finding_t *f = &checker.result.findings[i];
        FUZZ_ASSERT(check_rule_name(f->rule) != NULL);
        FUZZ_ASSERT(f->start <= f->end && f->end <= len);
        FUZZ_ASSERT(!valid || (!is_continuation(text, len, f->start) && !is_continuation(text, len, f->end)));
        FUZZ_ASSERT(memchr(f->message, '\0', sizeof(f->message)) != NULL);
        if (!utf8_valid(f->message, strlen(f->message))) fprintf(stderr, "%s: %s\n", check_rule_name(f->rule), f->message);
        FUZZ_ASSERT(utf8_valid(f->message, strlen(f->message)));
    }
    json_t *j = check_result_to_json(&checker.result);
    FUZZ_ASSERT(j != NULL);
    json_decref(j);
    free(buf);
    return 0;
}
