/* Unit tests of annotator standing (services/annot-funnel/standing.c):
 * rolling quality over the last K, the thresholds, the minimum count and
 * the way back after retraining.  Compiled in: tests link only libannot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../services/annot-funnel/standing.c"

static const standing_policy_t policy = {.window = 4, .min_count = 2, .probation = 0.85, .suspension = 0.6,
                                         .retraining_ms = 1000};
static char reason[128];

static void test_window_is_last_k(void **state) {
    (void)state;
    double q;
    unsigned n;
    /* Most recent first: the old 0.0 is outside the window of 4. */
    double s[] = {1.0, 0.9, 0.9, 1.0, 0.0};
    assert_int_equal(standing_evaluate(&policy, STANDING_ACTIVE, s, 5, &q, &n, reason, sizeof(reason)),
                     STANDING_ACTIVE);
    assert_int_equal(n, 4);
    assert_true(q > 0.949 && q < 0.951);
}

static void test_thresholds(void **state) {
    (void)state;
    double q;
    unsigned n;
    double prob[] = {0.8, 0.8, 0.8, 0.8};
    assert_int_equal(standing_evaluate(&policy, STANDING_ACTIVE, prob, 4, &q, &n, reason, sizeof(reason)),
                     STANDING_PROBATION);
    assert_string_equal(reason, "rolling quality 0.80 < probation 0.85");
    double susp[] = {0.5, 0.5, 0.6, 0.5};
    assert_int_equal(standing_evaluate(&policy, STANDING_PROBATION, susp, 4, &q, &n, reason, sizeof(reason)),
                     STANDING_SUSPENDED);
    assert_string_equal(reason, "rolling quality 0.53 < suspension 0.60");
    /* Probation ends when quality recovers. */
    double good[] = {0.9, 0.9, 0.9, 0.9};
    assert_int_equal(standing_evaluate(&policy, STANDING_PROBATION, good, 4, &q, &n, reason, sizeof(reason)),
                     STANDING_ACTIVE);
    /* Suspended stays suspended, whatever the window. */
    assert_int_equal(standing_evaluate(&policy, STANDING_SUSPENDED, good, 4, &q, &n, reason, sizeof(reason)),
                     STANDING_SUSPENDED);
}

static void test_min_count(void **state) {
    (void)state;
    double q;
    unsigned n;
    double one[] = {0.0};
    assert_int_equal(standing_evaluate(&policy, STANDING_ACTIVE, one, 1, &q, &n, reason, sizeof(reason)),
                     STANDING_ACTIVE);
    assert_int_equal(standing_evaluate(&policy, STANDING_NONE, NULL, 0, &q, &n, reason, sizeof(reason)),
                     STANDING_ACTIVE);
}

static void test_reinstatement(void **state) {
    (void)state;
    assert_false(standing_reinstate_due(&policy, STANDING_SUSPENDED, 5000, 5999));
    assert_true(standing_reinstate_due(&policy, STANDING_SUSPENDED, 5000, 6000));
    assert_false(standing_reinstate_due(&policy, STANDING_PROBATION, 5000, 9000));
    standing_policy_t never = policy;
    never.retraining_ms = 0;
    assert_false(standing_reinstate_due(&never, STANDING_SUSPENDED, 0, 1000000000));
}

static void test_names(void **state) {
    (void)state;
    standing_status_t s;
    assert_int_equal(standing_status_parse("probation", &s), 0);
    assert_int_equal(s, STANDING_PROBATION);
    assert_int_equal(standing_status_parse("gone", &s), -1);
    assert_null(standing_status_name(STANDING_NONE));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_is_last_k), cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_min_count),        cmocka_unit_test(test_reinstatement),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
