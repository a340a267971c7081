/* Unit tests of the dispatcher's verdict parser (pure; its .c file is
 * compiled in here because test binaries link only libannot). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../services/annot-dispatcher/verdict.c"
#include "utf8.h"

static check_taxonomy_t taxonomy;
static const double weights[4] = {0, 0.05, 0.2, 1.0};

static int setup(void **state) {
    (void)state;
    char err[256];
    return check_taxonomy_load(&taxonomy, "config/taxonomy.conf", err, sizeof(err));
}

static int teardown(void **state) {
    (void)state;
    check_taxonomy_free(&taxonomy);
    return 0;
}

/* Parses text; returns the rc and leaves the error message in err. */
static int parse(const char *text, verdict_t *v, char *err, size_t len) {
    json_t *body = json_loads(text, 0, NULL);
    assert_non_null(body);
    int rc = verdict_parse(body, &taxonomy, weights, v, err, len);
    json_decref(body);
    return rc;
}

static void test_accept_without_errors_scores_one(void **state) {
    (void)state;
    verdict_t v;
    char err[256];
    assert_int_equal(parse("{\"verdict\":\"accept\"}", &v, err, sizeof(err)), 0);
    assert_true(v.accept);
    assert_int_equal(v.nerrors, 0);
    assert_true(v.score == 1.0);
}

static void test_reject_scored_by_severity(void **state) {
    (void)state;
    verdict_t v;
    char err[256];
    const char *body = "{\"verdict\":\"reject\",\"errors\":["
                       "{\"category\":\"subjective_language\",\"severity\":\"minor\",\"section\":\"3.1\"},"
                       "{\"category\":\"factual_error\",\"severity\":\"major\",\"note\":\"it is miso, not curry\"}],"
                       "\"feedback\":[{\"section\":\"4.2\",\"kind\":\"ambiguity\",\"text\":\"sauces on top?\"}]}";
    json_t *j = json_loads(body, 0, NULL);
    assert_int_equal(verdict_parse(j, &taxonomy, weights, &v, err, sizeof(err)), 0);
    assert_false(v.accept);
    assert_int_equal(v.nerrors, 2);
    assert_int_equal(v.errors[1].severity, CHECK_SEVERITY_MAJOR);
    assert_string_equal(v.errors[1].note, "it is miso, not curry");
    assert_int_equal(v.nfeedback, 1);
    assert_int_equal(v.feedback[0].kind, VERDICT_FEEDBACK_AMBIGUITY);
    assert_true(v.score > 0.7499 && v.score < 0.7501);
    json_decref(j);
    assert_int_equal(parse("{\"verdict\":\"reject\",\"errors\":[{\"category\":\"main_object_missing\",\"severity\":"
                           "\"critical\"},{\"category\":\"other\",\"severity\":\"major\"}]}",
                           &v, err, sizeof(err)),
                     0);
    assert_true(v.score == 0.0); /* never below zero */
}

static void test_bad_verdicts_name_the_field(void **state) {
    (void)state;
    static const struct {
        const char *body, *field;
    } cases[] = {
        {"{}", "verdict:"},
        {"{\"verdict\":\"maybe\"}", "verdict:"},
        {"{\"verdict\":\"reject\"}", "errors:"},
        {"{\"verdict\":\"reject\",\"errors\":[{\"category\":\"ugly\",\"severity\":\"minor\"}]}", "errors[0].category"},
        {"{\"verdict\":\"reject\",\"errors\":[{\"category\":\"other\",\"severity\":\"huge\"}]}", "errors[0].severity"},
        {"{\"verdict\":\"reject\",\"errors\":[{\"category\":\"other\"}]}", "errors[0].severity"},
        {"{\"verdict\":\"reject\",\"errors\":[{\"category\":\"other\",\"severity\":\"minor\",\"colour\":1}]}",
         "errors[0].colour"},
        {"{\"verdict\":\"accept\",\"errors\":{}}", "errors:"},
        {"{\"verdict\":\"accept\",\"feedback\":[{\"section\":\"1\",\"kind\":\"rant\",\"text\":\"x\"}]}", "feedback[0].kind"},
        {"{\"verdict\":\"accept\",\"feedback\":[{\"section\":\"1\",\"kind\":\"edge_case\"}]}", "feedback[0].text"},
        {"{\"verdict\":\"accept\",\"mood\":\"good\"}", "mood: unknown field"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        verdict_t v;
        char err[256] = "";
        if (parse(cases[i].body, &v, err, sizeof(err)) == 0) fail_msg("accepted %s", cases[i].body);
        if (strstr(err, cases[i].field) == NULL) fail_msg("'%s' does not name '%s'", err, cases[i].field);
    }
}

/* A name from the body quoted in a refusal: err must read
 * "<before><at most UTF8_QUOTE_MAX bytes of the name><after>" and be valid
 * UTF-8 (the dispatcher sends it as a JSON string). */
static void assert_quoted(const char *err, const char *before, const char *quoted, const char *after) {
    if (!utf8_valid(err, strlen(err))) fail_msg("not valid UTF-8: '%s'", err);
    size_t b = strlen(before), a = strlen(after), n = strlen(err);
    if (n < b + a || strncmp(err, before, b) != 0 || strcmp(err + n - a, after) != 0)
        fail_msg("'%s' is not '%s...%s'", err, before, after);
    assert_true(n - b - a <= UTF8_QUOTE_MAX);
    if (quoted != NULL) assert_memory_equal(err + b, quoted, strlen(quoted));
}

/* fuzz_verdict's finding: an unknown key (or category) was quoted whole, so
 * a long one of two-byte letters was cut by snprintf in the middle of a
 * letter, and the 400 answer lost its message (not a JSON string).  Long
 * or invalid names are quoted cut, on a character boundary. */
static void test_long_or_invalid_names_are_quoted_cut(void **state) {
    (void)state;
    char big[2 * 301 + 1] = "", err[512];
    for (int i = 0; i < 301; i++) strcat(big, "\xd1\x8f"); /* я */
    const char *long_key_bodies[][3] = {
        {"{\"verdict\":\"accept\",\"%s\":1}", "", ": unknown field"},
        {"{\"verdict\":\"reject\",\"errors\":[{\"category\":\"other\",\"severity\":\"minor\",\"%s\":1}]}",
         "errors[0].", ": unknown field"},
        {"{\"verdict\":\"accept\",\"feedback\":[{\"%s\":1}]}", "feedback[0].", ": unknown field"},
        {"{\"verdict\":\"reject\",\"errors\":[{\"category\":\"%s\",\"severity\":\"minor\"}]}",
         "errors[0].category: '", "' is not in the error taxonomy"},
    };
    for (size_t i = 0; i < sizeof(long_key_bodies) / sizeof(long_key_bodies[0]); i++) {
        char body[2048];
        snprintf(body, sizeof(body), long_key_bodies[i][0], big);
        verdict_t v;
        assert_int_equal(parse(body, &v, err, sizeof(err)), -1);
        assert_quoted(err, long_key_bodies[i][1], "\xd1\x8f\xd1\x8f", long_key_bodies[i][2]);
        assert_non_null(strstr(err, "..."));
    }
    /* The description body's parser, the other shape of a submit. */
    char body[2048];
    snprintf(body, sizeof(body), "{\"description\":\"a bowl\",\"%s\":1}", big);
    json_t *j = json_loads(body, 0, NULL);
    const char *description;
    assert_int_equal(verdict_description_parse(j, &description, err, sizeof(err)), -1);
    assert_quoted(err, "", "\xd1\x8f", ": unknown field");
    json_decref(j);
    /* A key that is not UTF-8 (jansson's parser refuses those, a JSON built
     * in code does not): quoted up to the bad byte. */
    j = json_pack("{s:s}", "verdict", "accept");
    json_object_set_new_nocheck(j, "mood\xff\xfeon", json_integer(1));
    verdict_t v;
    assert_int_equal(verdict_parse(j, &taxonomy, weights, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "mood...: unknown field");
    json_decref(j);
    j = json_pack("{s:s}", "description", "a bowl");
    json_object_set_new_nocheck(j, "\xc3", json_integer(1));
    assert_int_equal(verdict_description_parse(j, &description, err, sizeof(err)), -1);
    assert_string_equal(err, "...: unknown field");
    json_decref(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_without_errors_scores_one),
        cmocka_unit_test(test_reject_scored_by_severity),
        cmocka_unit_test(test_bad_verdicts_name_the_field),
        cmocka_unit_test(test_long_or_invalid_names_are_quoted_cut),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
