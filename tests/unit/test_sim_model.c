/* Unit tests of annot-sim's world model (tools/annot-sim/model.c): the
 * catalogue loads and refuses a broken file; draws are deterministic under a
 * seed; the writer's defects are the ones the real guideline checker finds
 * (a clean description draws no finding, every injected checker-visible
 * defect draws its rule), so the simulated auto-check precision measures
 * the checker and not the simulator; the validator's judgement follows the
 * truth and the configured weights. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../tools/annot-sim/model.h"
#include "check.h"

static sim_catalogue_t cat;
static check_rules_t *rules;
static check_taxonomy_t tax;
static const double weights[3] = {0.05, 0.2, 1.0};
static char err[512];

static int setup(void **state) {
    (void)state;
    if (sim_catalogue_load(&cat, "config/sim/catalogue.json", err, sizeof(err)) != 0) return -1;
    if ((rules = check_rules_load("config/guideline", err, sizeof(err))) == NULL) return -1;
    return check_taxonomy_load(&tax, "config/taxonomy.conf", err, sizeof(err));
}

static int teardown(void **state) {
    (void)state;
    sim_catalogue_free(&cat);
    check_rules_destroy(rules);
    check_taxonomy_free(&tax);
    return 0;
}

static void test_catalogue_loads_every_kind(void **state) {
    (void)state;
    assert_true(cat.nitems >= 15);
    const char *kinds[] = {"dish", "clothing", "vehicle", "place", "symbol"};
    for (size_t k = 0; k < 5; k++) {
        size_t n = 0;
        for (size_t i = 0; i < cat.nitems; i++) n += strcmp(cat.items[i].kind, kinds[k]) == 0;
        assert_true(n >= 3);
    }
    assert_non_null(sim_catalogue_find(&cat, "jollof rice"));
    assert_null(sim_catalogue_find(&cat, "no such thing"));
}

static void test_catalogue_refuses_a_broken_file(void **state) {
    (void)state;
    char path[] = "/tmp/test_sim_model_XXXXXX";
    int fd = mkstemp(path);
    const char *text = "{\"guideline_version\": \"g\", \"items\": [{\"kind\": \"dish\", \"locale\": \"en-US\"}]}";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    sim_catalogue_t c;
    assert_int_equal(sim_catalogue_load(&c, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "items[0]"));
    unlink(path);
}

static sim_task_view_t view_of(const sim_item_t *it) {
    sim_task_view_t v = {"t-1", it->main_object, "production", it->synonym, NULL, it->components, it->ncomponents};
    return v;
}

static void test_draws_are_deterministic(void **state) {
    (void)state;
    assert_true(sim_draw(7, "person %d skill", 3) == sim_draw(7, "person %d skill", 3));
    assert_true(sim_draw(7, "person %d skill", 3) != sim_draw(8, "person %d skill", 3));
    sim_task_view_t v = view_of(&cat.items[0]);
    sim_text_t a = sim_write(42, "a1 t-1", 0.4, &v, &cat.items[0]);
    sim_text_t b = sim_write(42, "a1 t-1", 0.4, &v, &cat.items[0]);
    assert_string_equal(a.text, b.text);
    assert_int_equal(a.defects, b.defects);
    free(a.text), free(b.text);
    double sum = 0;
    for (int i = 0; i < 10000; i++) sum += sim_draw(1, "u %d", i);
    assert_true(sum / 10000 > 0.48 && sum / 10000 < 0.52);
}

static void test_skill_lowers_defect_rates(void **state) {
    (void)state;
    for (int d = 0; d < DEFECT_COUNT; d++) {
        if (d == DEFECT_MAIN_NOT_FIRST) continue; /* follows from the text, never drawn */
        assert_true(sim_defect_rate((sim_defect_t)d, 0.9) < sim_defect_rate((sim_defect_t)d, 0.5));
        assert_true(sim_defect_rate((sim_defect_t)d, 1.0) == 0);
    }
}

/* The checker rule that finds a writer's defect, or -1 (validators only). */
static int rule_of(sim_defect_t d) {
    check_rule_t r;
    return check_rule_parse(sim_defect_category(d), &r) == 0 ? (int)r : -1;
}

/* Writes 60 descriptions of the task (as the view gives it to the writer,
 * item the catalogue's entry or NULL) and asserts that the checker finds
 * exactly the checker-visible defects the writer put in; counts them into
 * seen and the clean descriptions into *clean. */
static void writer_matches_checker(const check_task_t *task, const sim_task_view_t *v, const sim_item_t *item,
                                   int *seen, int *clean) {
    check_scratch_t *scratch = check_scratch_new();
    check_result_t res;
    check_result_init(&res);
    for (int k = 0; k < 60; k++) {
        char label[64];
        snprintf(label, sizeof(label), "w%d %s", k, v->main_object);
        sim_text_t t = sim_write(99, label, k % 2 ? 0.2 : 0.7, v, item);
        assert_int_equal(check_run(rules, scratch, task, t.text, strlen(t.text), &res, err, sizeof(err)), 0);
        uint32_t found = 0;
        for (size_t f = 0; f < res.count; f++) found |= 1u << res.findings[f].rule;
        uint32_t expected = 0;
        for (int d = 0; d < DEFECT_COUNT; d++) {
            if (!(t.defects & (1u << d))) continue;
            seen[d]++;
            if (rule_of((sim_defect_t)d) >= 0) expected |= 1u << rule_of((sim_defect_t)d);
        }
        if (t.defects == 0) (*clean)++;
        if (found != expected) {
            fprintf(stderr, "defects %#x: checker found %#x, expected %#x in: %s\n", t.defects, found, expected,
                    t.text);
            for (size_t f = 0; f < res.count; f++) fprintf(stderr, "  %s\n", res.findings[f].message);
        }
        assert_int_equal(found, expected);
        free(t.text);
    }
    check_result_free(&res);
    check_scratch_destroy(scratch);
}

static void test_writer_defects_are_what_the_checker_finds(void **state) {
    (void)state;
    int seen[DEFECT_COUNT] = {0}, clean = 0;
    for (size_t i = 0; i < cat.nitems; i++) {
        const sim_item_t *it = &cat.items[i];
        check_component_t comps[SIM_COMPONENTS_MAX];
        for (size_t c = 0; c < it->ncomponents; c++)
            comps[c] = (check_component_t){it->components[c].name, it->components[c].relation,
                                           it->components[c].target};
        char *syn[1] = {it->synonym};
        check_task_t task = {.task_id = "t-1", .kind = CHECK_KIND_PRODUCTION, .main_object = it->main_object,
                             .main_object_synonyms = syn, .synonym_count = it->synonym ? 1 : 0,
                             .locale = it->locale, .components = comps, .component_count = it->ncomponents};
        sim_task_view_t v = view_of(it);
        writer_matches_checker(&task, &v, it, seen, &clean);
    }
    assert_true(clean > 100);
    for (int d = 0; d < DEFECT_COUNT; d++)
        if (d != DEFECT_UNFIXED && d != DEFECT_NO_EDIT) assert_true(seen[d] > 5);
}

/* writer_matches_checker on a bank case's task as the funnel issues it to
 * a candidate: to write from scratch (exam_stage1, no pre-generated text)
 * or to edit (exam_stage2). */
static void exam_case_matches(json_t *bank_task, bool edit, int *seen, int *clean) {
    json_t *t = json_deep_copy(bank_task);
    json_object_set_new(t, "kind", json_string(edit ? "exam_stage2" : "exam_stage1"));
    if (!edit) json_object_del(t, "pregenerated");
    json_t *obj = json_pack("{s:o, s:s}", "task", t, "description", "");
    check_task_t task;
    const char *text;
    size_t len;
    if (check_request_from_json(obj, &task, &text, &len, err, sizeof(err)) != 0) fail_msg("%s", err);
    sim_component_t comps[SIM_COMPONENTS_MAX];
    sim_task_view_t v = {"t-1", task.main_object, edit ? "exam_stage2" : "exam_stage1",
                         task.synonym_count ? task.main_object_synonyms[0] : NULL, edit ? task.pregenerated : NULL,
                         comps, 0};
    for (size_t n = 0; n < task.component_count && n < SIM_COMPONENTS_MAX; n++, v.ncomponents++)
        comps[n] = (sim_component_t){task.components[n].name, task.components[n].relation, task.components[n].target};
    writer_matches_checker(&task, &v, sim_catalogue_find(&cat, task.main_object), seen, clean);
    check_task_clear(&task);
    json_decref(obj);
}

/* The same for every English case of the exam bank: the writer sees the
 * bank's task, whose synonyms may differ from the catalogue's entry for the
 * same object (the bank's hanbok has none, the catalogue's is "Korean
 * dress"), and must go by the task as the checker does.  A stage-2 case is
 * written from scratch and edited: an editor's defect that the
 * pre-generated text has too (the same word, the same component's relation,
 * the main object missing or late again) is that text's defect left in
 * place, unfixed_defect, for the writer as for the checker. */
static void test_exam_writer_defects_are_what_the_checker_finds(void **state) {
    (void)state;
    json_error_t jerr;
    json_t *bank = json_load_file("config/exams/bank.json", 0, &jerr);
    assert_non_null(bank);
    int seen[DEFECT_COUNT] = {0}, clean = 0, cases = 0;
    const char *stages[] = {"stage1", "stage2"};
    for (int st = 0; st < 2; st++) {
        size_t i, k;
        json_t *set, *c;
        json_array_foreach(json_object_get(json_object_get(bank, stages[st]), "sets"), i, set) {
            /* The simulator writes English, and its candidates (en-US) are
             * given the English sets. */
            if (strncmp(json_string_value(json_object_get(set, "locale")), "en-", 3) != 0) continue;
            json_array_foreach(json_object_get(set, "cases"), k, c) {
                exam_case_matches(json_object_get(c, "task"), false, seen, &clean);
                cases++;
                if (st == 1) exam_case_matches(json_object_get(c, "task"), true, seen, &clean);
            }
        }
    }
    json_decref(bank);
    assert_true(cases >= 12);
    assert_true(clean > 50);
    assert_true(seen[DEFECT_SUBJECTIVE] > 5 && seen[DEFECT_BARE_LIST] > 5);
    assert_true(seen[DEFECT_UNFIXED] > 5 && seen[DEFECT_NO_EDIT] > 0);
}

static void test_editing_leaves_or_fixes_the_pregenerated_text(void **state) {
    (void)state;
    const sim_item_t *it = &cat.items[0];
    sim_task_view_t v = view_of(it);
    v.kind = "exam_stage2";
    v.pregenerated = "A delicious curry that you can almost taste. Rice and pork.";
    int no_edit = 0, unfixed = 0;
    for (int k = 0; k < 400; k++) {
        char label[32];
        snprintf(label, sizeof(label), "c%d", k);
        sim_text_t t = sim_write(5, label, 0.3, &v, NULL);
        bool kept = strstr(t.text, "A delicious curry that you can almost taste.") != NULL;
        if (t.defects & (1u << DEFECT_NO_EDIT)) {
            no_edit++;
            assert_string_equal(t.text, v.pregenerated);
            /* handed in as it came, its defects are all still there */
            assert_int_equal(t.defects, 1u << DEFECT_NO_EDIT | 1u << DEFECT_UNFIXED);
        } else if (t.defects & (1u << DEFECT_UNFIXED)) {
            /* a sentence kept, or the components listed bare again */
            unfixed++;
            assert_true(kept || strstr(t.text, " It has ") != NULL);
        } else {
            assert_false(kept);
        }
        /* a new evaluative word is not the pre-generated text's again */
        if (t.defects & (1u << DEFECT_SUBJECTIVE)) assert_null(strstr(t.text, "looks delicious"));
        free(t.text);
    }
    assert_true(no_edit > 0 && unfixed > 0);
}

static void test_judge_follows_truth_and_weights(void **state) {
    (void)state;
    sim_validator_noise_t exact = {0, 0};
    uint32_t truth = (1u << DEFECT_SUBJECTIVE) | (1u << DEFECT_VIEWER);
    sim_verdict_t v = sim_judge(1, "v1 s1", truth, exact, &tax, weights);
    assert_int_equal(v.nerrors, 2);
    assert_true(v.accept); /* minor errors only */
    assert_true(v.score > 0.899 && v.score < 0.901);
    v = sim_judge(1, "v1 s2", truth | (1u << DEFECT_CULTURAL), exact, &tax, weights);
    assert_false(v.accept);
    assert_true(v.score > 0.699 && v.score < 0.701);
    v = sim_judge(1, "v1 s3", 1u << DEFECT_MAIN_MISSING, exact, &tax, weights);
    assert_false(v.accept);
    assert_string_equal(v.errors[0].severity, "critical");
    assert_true(v.score == 0);
    v = sim_judge(1, "v1 s4", 0, exact, &tax, weights);
    assert_true(v.accept && v.nerrors == 0 && v.score == 1);
    sim_validator_noise_t blind = {1, 0};
    v = sim_judge(1, "v1 s5", truth, blind, &tax, weights);
    assert_int_equal(v.nerrors, 0);
    /* A noisy validator flags clean work now and then, not always. */
    sim_validator_noise_t noisy = {0.1, 0.2};
    int flagged = 0;
    for (int i = 0; i < 1000; i++) {
        char label[32];
        snprintf(label, sizeof(label), "v2 s%d", i);
        flagged += sim_judge(3, label, 0, noisy, &tax, weights).nerrors > 0;
    }
    assert_true(flagged > 100 && flagged < 300);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue_loads_every_kind),
        cmocka_unit_test(test_catalogue_refuses_a_broken_file),
        cmocka_unit_test(test_draws_are_deterministic),
        cmocka_unit_test(test_skill_lowers_defect_rates),
        cmocka_unit_test(test_writer_defects_are_what_the_checker_finds),
        cmocka_unit_test(test_exam_writer_defects_are_what_the_checker_finds),
        cmocka_unit_test(test_editing_leaves_or_fixes_the_pregenerated_text),
        cmocka_unit_test(test_judge_follows_truth_and_weights),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
