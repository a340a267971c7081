/* Unit tests of the exam bank (services/annot-funnel/exam_bank.c): the
 * shipped bank loads, every case is a valid task of its stage, stage 2
 * cases carry their pre-generated text, the draw is deterministic and
 * prefers the candidate's locale, and a broken bank is refused naming the
 * field.  Compiled in: tests link only libannot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../services/annot-funnel/exam_bank.c"
#include "../../services/annot-funnel/funnel_machine.c"

static exam_bank_t bank;
static char err[1024];

static int setup(void **state) {
    (void)state;
    return exam_bank_load(&bank, "config/exams/bank.json", err, sizeof(err));
}

static int teardown(void **state) {
    (void)state;
    exam_bank_free(&bank);
    return 0;
}

static void test_shipped_bank(void **state) {
    (void)state;
    assert_string_equal(bank.version, "exam-v1");
    for (int s = 1; s <= 2; s++) {
        const exam_stage_bank_t *sb = &bank.stage[s - 1];
        assert_true(sb->nsets >= 3);
        for (size_t i = 0; i < sb->nsets; i++) {
            for (size_t k = 0; k < sb->sets[i].ncases; k++) {
                task_proto_t tp;
                assert_int_equal(exam_case_task(&sb->sets[i].cases[k], s, &tp, err, sizeof(err)), 0);
                assert_int_equal(tp.task.kind, s == 1 ? ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE1
                                                      : ANNOT__V1__TASK_KIND__TASK_KIND_EXAM_STAGE2);
                if (s == 2) assert_true(strlen(tp.task.pregenerated) > 20);
                task_proto_clear(&tp);
            }
        }
    }
}

static void test_choose(void **state) {
    (void)state;
    const exam_set_t *a[4], *b[4];
    size_t na, nb;
    assert_int_equal(exam_bank_choose(&bank, 1, "en-US", "cand/1", a, 4, &na), 0);
    assert_int_equal(exam_bank_choose(&bank, 1, "en-US", "cand/1", b, 4, &nb), 0);
    assert_int_equal(na, 2);
    assert_int_equal(nb, 2);
    assert_ptr_equal(a[0], b[0]);
    assert_ptr_equal(a[1], b[1]);
    assert_ptr_not_equal(a[0], a[1]);
    assert_string_equal(a[0]->locale, "en-US");
    assert_string_equal(a[1]->locale, "en-US");
    /* One ru-RU set in the bank: it comes first, another fills up. */
    assert_int_equal(exam_bank_choose(&bank, 2, "ru-RU", "cand/1", a, 4, &na), 0);
    assert_int_equal(na, 2);
    assert_string_equal(a[0]->locale, "ru-RU");
    assert_string_equal(a[1]->locale, "en-US");
    /* Different candidates do not all get the same sets. */
    int differ = 0;
    for (int i = 0; i < 20 && !differ; i++) {
        char seed[32];
        snprintf(seed, sizeof(seed), "c%d/1", i);
        assert_int_equal(exam_bank_choose(&bank, 1, "en-US", seed, b, 4, &nb), 0);
        differ = b[0] != a[0] || b[1] != a[1];
    }
    assert_true(differ);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_broken_banks(void **state) {
    (void)state;
    const char *path = "build/tests/exam_bank_bad.json";
    exam_bank_t b;
    write_file(path, "{\"version\":\"x\",\"stage1\":{\"sets_per_candidate\":1,\"sets\":[{\"id\":\"s\",\"locale\":"
                     "\"en-US\",\"cases\":[{\"id\":\"c\",\"task\":{\"main_object\":\"m\",\"locale\":\"en-US\"}}]}]},"
                     "\"stage2\":{\"sets_per_candidate\":1,\"sets\":[{\"id\":\"s\",\"locale\":\"en-US\",\"cases\":"
                     "[{\"id\":\"c\",\"task\":{\"main_object\":\"m\",\"locale\":\"en-US\"}}]}]}}");
    assert_int_equal(exam_bank_load(&b, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "stage2.sets[0].cases[0].task.pregenerated: required"));
    write_file(path, "{\"version\":\"x\",\"stage1\":{\"sets_per_candidate\":2,\"sets\":[]}}");
    assert_int_equal(exam_bank_load(&b, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "stage1.sets"));
    write_file(path, "{\"version\":\"x\",\"stage1\":{\"sets_per_candidate\":1,\"sets\":[{\"id\":\"s\",\"locale\":"
                     "\"en-US\",\"cases\":[{\"id\":\"c\",\"task\":{\"task_id\":\"t\",\"main_object\":\"m\","
                     "\"locale\":\"en-US\"}}]}]}}");
    assert_int_equal(exam_bank_load(&b, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "task_id and kind are set by the funnel"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_bank),
        cmocka_unit_test(test_choose),
        cmocka_unit_test(test_broken_banks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
