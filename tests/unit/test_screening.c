/* Unit tests of the screening bank and the training material
 * (common/screening.c, common/training.c): the shipped files load; a broken
 * file is refused naming the field; candidates never see the key; answers
 * are checked and scored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "screening.h"
#include "training.h"

static char err[512];

/* Writes text to a temporary file; returns its path (static buffer). */
static const char *tmp_file(const char *text) {
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/test_screening_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_shipped_bank_loads(void **state) {
    (void)state;
    screening_bank_t b;
    if (screening_bank_load(&b, "config/screening/bank.json", err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_string_equal(b.version, "screen-v1");
    assert_true(b.n >= 12);
    size_t logic = 0, language = 0;
    for (size_t i = 0; i < b.n; i++) {
        if (strcmp(b.questions[i].kind, "logic") == 0) logic++;
        if (strcmp(b.questions[i].kind, "language") == 0) language++;
    }
    assert_true(logic >= 4 && language >= 4);
    screening_bank_free(&b);
}

static void expect_bad_bank(const char *text, const char *field) {
    screening_bank_t b;
    const char *path = tmp_file(text);
    assert_int_equal(screening_bank_load(&b, path, err, sizeof(err)), -1);
    unlink(path);
    if (strstr(err, field) == NULL) fail_msg("error '%s' does not name '%s'", err, field);
}

static void test_bad_bank_names_the_field(void **state) {
    (void)state;
    expect_bad_bank("{\"questions\":[]}", "version");
    expect_bad_bank("{\"version\":\"v\",\"questions\":[]}", "questions");
    expect_bad_bank("{\"version\":\"v\",\"questions\":[{\"id\":\"q\",\"kind\":\"logic\",\"text\":\"t\","
                    "\"options\":[{\"id\":\"a\",\"text\":\"x\"},{\"id\":\"b\",\"text\":\"y\"}],\"answer\":\"c\"}]}",
                    "questions[0].answer");
    expect_bad_bank("{\"version\":\"v\",\"questions\":[{\"id\":\"q\",\"kind\":\"maths\",\"text\":\"t\","
                    "\"options\":[{\"id\":\"a\",\"text\":\"x\"},{\"id\":\"b\",\"text\":\"y\"}],\"answer\":\"a\"}]}",
                    "questions[0].kind");
    expect_bad_bank("{\"version\":\"v\",\"questions\":[{\"id\":\"q\",\"kind\":\"logic\",\"text\":\"t\","
                    "\"options\":[{\"id\":\"a\",\"text\":\"x\"},{\"id\":\"a\",\"text\":\"y\"}],\"answer\":\"a\"}]}",
                    "questions[0].options");
    expect_bad_bank("{\"version\":\"v\",\"questions\":[{\"id\":\"q\",\"kind\":\"logic\",\"text\":\"t\","
                    "\"options\":[{\"id\":\"a\",\"text\":\"x\"},{\"id\":\"b\",\"text\":\"y\"}],\"answer\":\"a\"},"
                    "{\"id\":\"q\",\"kind\":\"logic\",\"text\":\"t\","
                    "\"options\":[{\"id\":\"a\",\"text\":\"x\"},{\"id\":\"b\",\"text\":\"y\"}],\"answer\":\"a\"}]}",
                    "questions[1].id");
    expect_bad_bank("{\"version\": 3", "1:");
}

static void test_public_json_hides_the_key(void **state) {
    (void)state;
    screening_bank_t b;
    assert_int_equal(screening_bank_load(&b, "config/screening/bank.json", err, sizeof(err)), 0);
    const char *ids[] = {"L2", "G1"};
    json_t *pub = screening_public_json(&b, ids, 2);
    assert_non_null(pub);
    assert_int_equal(json_array_size(pub), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(pub, 0), "id")), "L2");
    char *text = json_dumps(pub, 0);
    assert_null(strstr(text, "answer"));
    free(text);
    json_decref(pub);
    const char *unknown[] = {"L2", "nope"};
    assert_null(screening_public_json(&b, unknown, 2));
    screening_bank_free(&b);
}

static void test_answers_checked_and_scored(void **state) {
    (void)state;
    screening_bank_t b;
    assert_int_equal(screening_bank_load(&b, "config/screening/bank.json", err, sizeof(err)), 0);
    const char *ids[] = {"L1", "L2", "G1"};
    screening_answer_t good[] = {{"G1", "b"}, {"L1", "a"}, {"L2", "c"}};
    assert_int_equal(screening_answers_check(&b, ids, 3, good, 3, err, sizeof(err)), 0);
    assert_int_equal(screening_correct(&b, ids, 3, good, 3), 2);

    screening_answer_t missing[] = {{"G1", "b"}, {"L1", "a"}};
    assert_int_equal(screening_answers_check(&b, ids, 3, missing, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "L2 is not answered"));
    assert_int_equal(screening_correct(&b, ids, 3, missing, 2), 2);

    screening_answer_t stranger[] = {{"G1", "b"}, {"L1", "a"}, {"G5", "b"}};
    assert_int_equal(screening_answers_check(&b, ids, 3, stranger, 3, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "answers[2].question_id"));

    screening_answer_t twice[] = {{"G1", "b"}, {"G1", "a"}, {"L1", "a"}, {"L2", "b"}};
    assert_int_equal(screening_answers_check(&b, ids, 3, twice, 4, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "answers[1].question_id"));

    screening_answer_t bad_option[] = {{"G1", "z"}, {"L1", "a"}, {"L2", "b"}};
    assert_int_equal(screening_answers_check(&b, ids, 3, bad_option, 3, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "answers[0].answer"));

    screening_answer_t all_right[] = {{"L1", "a"}, {"L2", "b"}, {"G1", "b"}};
    assert_int_equal(screening_correct(&b, ids, 3, all_right, 3), 3);
    screening_bank_free(&b);
}

static void test_training_material(void **state) {
    (void)state;
    training_t t;
    if (training_load(&t, "config/training/material.json", err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_true(strlen(t.guideline_version) > 0);
    assert_true(t.nsamples >= 4);
    /* The samples show both verdicts. */
    int accept = 0, reject = 0;
    json_t *s;
    size_t i;
    json_array_foreach(json_object_get(t.root, "samples"), i, s) {
        if (strcmp(json_string_value(json_object_get(s, "verdict")), "accept") == 0) accept++;
        else reject++;
    }
    assert_true(accept > 0 && reject > 0);
    training_free(&t);

    const char *path = tmp_file("{\"guideline_version\":\"g\",\"title\":\"t\",\"sections\":[{\"id\":\"1\",\"title\":\"x\","
                                "\"summary\":\"y\"}],\"samples\":[{\"id\":\"S\",\"main_object\":\"m\",\"description\":"
                                "\"d\",\"notes\":\"n\",\"verdict\":\"maybe\"}]}");
    assert_int_equal(training_load(&t, path, err, sizeof(err)), -1);
    unlink(path);
    assert_non_null(strstr(err, "samples[0]"));
}

/* The answers body of POST /v1/screening, parsed apart from the HTTP
 * handler (and fuzzed by fuzz_verdict): each refusal names its field, a
 * long unknown key quoted short and on a letter boundary. */
static void test_answers_body(void **state) {
    (void)state;
    static const struct {
        const char *body, *err;
    } bad[] = {
        {"{\"answers\":[]}", "screening_id: required"},
        {"{\"screening_id\":\"s\"}", "answers: required"},
        {"{\"screening_id\":1,\"answers\":[]}", "screening_id: expected a string"},
        {"{\"screening_id\":\"s\",\"answers\":{}}", "answers: expected an array"},
        {"{\"screening_id\":\"s\",\"answers\":[],\"mood\":1}", "mood: unknown field"},
        {"{\"screening_id\":\"s\",\"answers\":[1]}", "answers[0]: expected an object"},
        {"{\"screening_id\":\"s\",\"answers\":[{\"question_id\":\"L1\"}]}",
         "answers[0].answer: a string question_id and answer are the only fields"},
        {"{\"screening_id\":\"s\",\"answers\":[{\"question_id\":\"L1\",\"answer\":2}]}",
         "answers[0].answer: a string question_id and answer are the only fields"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *body = json_loads(bad[i].body, 0, NULL);
        const char *id;
        screening_answer_t *answers;
        size_t n;
        char err[256];
        assert_int_equal(screening_body_parse(body, &id, &answers, &n, err, sizeof(err)), -1);
        assert_null(answers);
        assert_string_equal(err, bad[i].err);
        json_decref(body);
    }
    char text[1024] = "{\"screening_id\":\"s\",\"answers\":[],\"";
    for (int i = 0; i < 301; i++) strcat(text, "\xd1\x8f");
    strcat(text, "\":1}");
    json_t *body = json_loads(text, 0, NULL);
    const char *id;
    screening_answer_t *answers;
    size_t n;
    char err[512];
    assert_int_equal(screening_body_parse(body, &id, &answers, &n, err, sizeof(err)), -1);
    assert_true(strlen(err) <= 64 + strlen(": unknown field"));
    assert_non_null(strstr(err, "\xd1\x8f...: unknown field"));
    json_decref(body);
    body = json_loads("{\"screening_id\":\"s-1\",\"answers\":[{\"question_id\":\"L1\",\"answer\":\"b\"},"
                      "{\"answer\":\"a\",\"question_id\":\"L2\"}]}",
                      0, NULL);
    assert_int_equal(screening_body_parse(body, &id, &answers, &n, err, sizeof(err)), 0);
    assert_string_equal(id, "s-1");
    assert_int_equal(n, 2);
    assert_string_equal(answers[1].question_id, "L2");
    assert_string_equal(answers[1].answer, "a");
    free(answers);
    json_decref(body);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_bank_loads),
        cmocka_unit_test(test_bad_bank_names_the_field),
        cmocka_unit_test(test_public_json_hides_the_key),
        cmocka_unit_test(test_answers_checked_and_scored),
        cmocka_unit_test(test_answers_body),
        cmocka_unit_test(test_training_material),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
