/* check: the guideline rules of DESIGN.md section 6 as a pure library.  A
 * description is checked against its task (main object and synonyms, locale,
 * components and their relations, kind, the pre-generated text of an editing
 * case) and yields findings (rule id, severity, guideline section, byte span
 * into the ORIGINAL text, message, blocking) and a score on the scale of
 * section 4: max(0, 1 - sum(weight[severity])).
 *
 * Everything configurable (lexicons per language, thresholds, severities,
 * sections, which rules block) is read from a directory, normally
 * <config.dir>/guideline, once, by check_rules_load; the lexicons are
 * compiled there into one Vectorscan literal database per language.  After
 * that nothing here does I/O, and a loaded check_rules_t is read-only: any
 * number of threads may check with it at once, each with its own
 * check_scratch_t.  A reload (SIGHUP) builds a new rules object and destroys
 * the old one once no call uses it; a scratch follows whichever rules object
 * it is given.
 *
 * The JSON shapes are those of DESIGN.md section 7: the task object (unknown
 * fields are an error naming the field) and the result line
 * {"findings":[{"rule","severity","section","start","end","message",
 * "blocking"}],"score","blocking"}. */
#ifndef ANNOT_CHECK_H
#define ANNOT_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The rule ids: the checker's half of the shared taxonomy (config/taxonomy.conf). */
typedef enum {
    CHECK_RULE_SUBJECTIVE_LANGUAGE = 0,
    CHECK_RULE_SPECULATION,
    CHECK_RULE_VIEWER_ADDRESS,
    CHECK_RULE_MAIN_OBJECT_MISSING,
    CHECK_RULE_MAIN_OBJECT_NOT_FIRST,
    CHECK_RULE_MAIN_OBJECT_UNDERDESCRIBED,
    CHECK_RULE_RELATION_MISSING,
    CHECK_RULE_REFERENCE_OVERLOAD,
    CHECK_RULE_LENGTH,
    CHECK_RULE_INVALID_TEXT,
    CHECK_RULE_NO_MEANINGFUL_EDIT,
    CHECK_RULE_UNFIXED_DEFECT,
    CHECK_RULE_COUNT
} check_rule_t;

/* "subjective_language", ...; NULL for an out-of-range value. */
const char *check_rule_name(check_rule_t rule);
/* 0 and *out set, or -1 for a name that is not a rule id. */
int check_rule_parse(const char *name, check_rule_t *out);

typedef enum {
    CHECK_SEVERITY_MINOR = 1,
    CHECK_SEVERITY_MAJOR,
    CHECK_SEVERITY_CRITICAL,
} check_severity_t;

const char *check_severity_name(check_severity_t severity);
int check_severity_parse(const char *name, check_severity_t *out);

typedef enum {
    CHECK_KIND_PRODUCTION = 1,
    CHECK_KIND_EXAM_STAGE1,
    CHECK_KIND_EXAM_STAGE2,
    CHECK_KIND_GOLDEN,
} check_kind_t;

const char *check_kind_name(check_kind_t kind);
int check_kind_parse(const char *name, check_kind_t *out);

/* {name, relation, target}: "sauce" "poured over" "rice".  relation and
 * target may be NULL or empty (a component that stands on its own). */
typedef struct check_component {
    char *name;
    char *relation;
    char *target;
} check_component_t;

/* A task as DESIGN.md section 7 has it.  check_run only reads it: a caller
 * may point the fields at strings it owns (a protobuf Task, say).  A task
 * filled by check_task_from_json owns every string and array and is released
 * by check_task_clear. */
typedef struct check_task {
    char *task_id;
    check_kind_t kind;
    char *image_uri;
    char *main_object;
    char **main_object_synonyms;
    size_t synonym_count;
    char *locale; /* BCP 47; the language is the part before the first '-' */
    char **skills;
    size_t skill_count;
    check_component_t *components;
    size_t component_count;
    char *pregenerated; /* exam_stage2: the text the candidate edits */
    int32_t priority;
    char *guideline_version;
} check_task_t;

void check_task_clear(check_task_t *task);

#define CHECK_SECTION_MAX 16
#define CHECK_MESSAGE_MAX 200

/* One finding.  start/end are byte offsets into the text as given (end
 * exclusive, on code point boundaries), whatever normalisation did to its
 * length; start == end == 0 means the text as a whole. */
typedef struct check_finding {
    check_rule_t rule;
    check_severity_t severity;
    char section[CHECK_SECTION_MAX]; /* "" when the rule has none */
    uint32_t start, end;
    bool blocking;
    char message[CHECK_MESSAGE_MAX]; /* valid UTF-8 */
} check_finding_t;

/* Findings ordered by start offset, then rule id.  Initialise once, reuse
 * across calls (check_run empties it first), free at the end. */
typedef struct check_result {
    check_finding_t *findings;
    size_t count, cap;
    double score;
    bool blocking; /* at least one finding is blocking */
} check_result_t;

void check_result_init(check_result_t *result);
void check_result_free(check_result_t *result);

typedef struct check_rules check_rules_t;
typedef struct check_scratch check_scratch_t;

/* Loads <dir>/checker.conf and the lexicons of every language it lists
 * (<dir>/<lang>/language.conf and *.txt) and compiles them.  Returns NULL with
 * errstr naming the file and line of the first problem. */
check_rules_t *check_rules_load(const char *dir, char *errstr, size_t errlen);
void check_rules_destroy(check_rules_t *rules);
/* A hash of every configuration byte loaded: CheckResult.rules_version. */
const char *check_rules_version(const check_rules_t *rules);
/* The configured weight of a severity in the score. */
double check_rules_weight(const check_rules_t *rules, check_severity_t severity);
/* Whether a language (e.g. "en") has lexicons; other languages get only the
 * rules that need none (main object, relations, length, form, editing). */
bool check_rules_has_language(const check_rules_t *rules, const char *lang);

/* Per-thread working memory (buffers and the Vectorscan scratch), grown on
 * demand and kept between calls.  Never use one scratch from two threads at
 * once.  NULL only when memory is exhausted. */
check_scratch_t *check_scratch_new(void);
void check_scratch_destroy(check_scratch_t *scratch);

/* Checks text (len bytes, not necessarily NUL-terminated, any bytes) against
 * task and fills out.  Returns 0, or -1 with errstr set when the task is
 * unusable (no main object) or the matching engine fails; bad text is never
 * an error, it is a finding. */
int check_run(const check_rules_t *rules, check_scratch_t *scratch, const check_task_t *task,
              const char *text, size_t len, check_result_t *out, char *errstr, size_t errlen);

/* For the benchmark's ceiling: scans text with the language's database alone
 * (no normalisation, no rules) and counts the matches.  0 or -1. */
int check_rules_scan_raw(const check_rules_t *rules, check_scratch_t *scratch, const char *locale,
                         const char *text, size_t len, size_t *matches);

/* config/taxonomy.conf: every error category validators and the checker
 * share, with its default severity and guideline section. */
typedef struct check_category {
    char id[48];
    check_severity_t severity;
    char section[CHECK_SECTION_MAX]; /* "" when none */
    bool checker;                    /* a checker rule, not validator-only */
} check_category_t;

typedef struct check_taxonomy {
    check_category_t *items;
    size_t count;
} check_taxonomy_t;

/* Lines "id severity section source" (section "-" for none, source checker
 * or validator).  Every checker rule id must be listed as a checker
 * category.  0, or -1 with errstr naming file and line. */
int check_taxonomy_load(check_taxonomy_t *taxonomy, const char *path, char *errstr, size_t errlen);
void check_taxonomy_free(check_taxonomy_t *taxonomy);
const check_category_t *check_taxonomy_find(const check_taxonomy_t *taxonomy, const char *id);

/* JSON.  check_task_from_json fills task (owning copies; clear it with
 * check_task_clear, also after a failure) from a task object; errors name
 * the field ("task.components[1].name: expected a string").  Strings with a
 * NUL byte are refused. */
int check_task_from_json(const json_t *obj, check_task_t *task, char *errstr, size_t errlen);
/* A request {"task": {...}, "description": "..."}; "expect" (a list of rule
 * ids, the corpus's labels) is allowed and ignored, anything else is an
 * error.  *description points into obj (it may hold NUL bytes: use *len). */
int check_request_from_json(const json_t *obj, check_task_t *task, const char **description,
                            size_t *len, char *errstr, size_t errlen);
/* The result object; NULL only when memory is exhausted.  The caller owns it. */
json_t *check_result_to_json(const check_result_t *result);

#endif
