/* Unit tests of the funnel's state machine (services/annot-funnel/
 * funnel_machine.c): every (stage, input) pair, legal or illegal, the retry
 * policy and cool-down, the stage decisions and the question draw.  The
 * module is compiled in here because test binaries link only libannot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../services/annot-funnel/funnel_machine.c"

static const funnel_policy_t policy = {.retries_max = 1, .cooldown_ms = 1000};
static char why[256];

/* The legal table, written out independently of the code: from stage,
 * input (and the stage a pass/fail names) to the stage reached; NONE =
 * illegal. */
static funnel_stage_t expected(funnel_stage_t from, funnel_input_t in, funnel_stage_t decided) {
    switch (in) {
    case FUNNEL_INPUT_APPLY: return from == FUNNEL_NONE ? FUNNEL_APPLIED : FUNNEL_NONE; /* rejected: below */
    case FUNNEL_INPUT_START: return from == FUNNEL_APPLIED ? FUNNEL_SCREENING : FUNNEL_NONE;
    case FUNNEL_INPUT_PASS:
        if (decided != from) return FUNNEL_NONE;
        if (from == FUNNEL_SCREENING) return FUNNEL_TRAINING;
        if (from == FUNNEL_TRAINING) return FUNNEL_EXAM1;
        if (from == FUNNEL_EXAM1) return FUNNEL_EXAM2;
        if (from == FUNNEL_EXAM2) return FUNNEL_APPROVED;
        return FUNNEL_NONE;
    case FUNNEL_INPUT_FAIL:
        if (decided != from) return FUNNEL_NONE;
        if (from == FUNNEL_SCREENING || from == FUNNEL_EXAM1 || from == FUNNEL_EXAM2) return FUNNEL_REJECTED;
        return FUNNEL_NONE;
    }
    return FUNNEL_NONE;
}

/* Every stage x input x named stage: legal ones move where the table says,
 * illegal ones are refused with a reason and change nothing.  (Re-applying
 * from rejected is legal only under conditions: its own tests follow; here
 * it is checked with no retry left, where it is illegal.) */
static void test_every_transition(void **state) {
    (void)state;
    int legal = 0, illegal = 0;
    for (int from = 0; from < FUNNEL_STAGE_COUNT; from++) {
        for (int in = 0; in < FUNNEL_INPUT_COUNT; in++) {
            int named_max = (in == FUNNEL_INPUT_PASS || in == FUNNEL_INPUT_FAIL) ? FUNNEL_STAGE_COUNT : 1;
            for (int named = 0; named < named_max; named++) {
                funnel_state_t st = {(funnel_stage_t)from, from == FUNNEL_NONE ? 0 : 2, 0};
                funnel_state_t before = st;
                funnel_event_t ev = {(funnel_input_t)in, (funnel_stage_t)named, 5000};
                funnel_stage_t want = expected(st.stage, ev.input, ev.stage);
                why[0] = '\0';
                int rc = funnel_step(&policy, &st, &ev, why, sizeof(why));
                if (want == FUNNEL_NONE) {
                    if (rc != -1)
                        fail_msg("%s --%s(%s)--> accepted, expected refused", funnel_stage_name(before.stage),
                                 funnel_input_name(ev.input), funnel_stage_name(ev.stage));
                    assert_memory_equal(&st, &before, sizeof(st));
                    assert_true(strlen(why) > 0);
                    illegal++;
                } else {
                    if (rc != 0)
                        fail_msg("%s --%s(%s)--> refused: %s", funnel_stage_name(before.stage),
                                 funnel_input_name(ev.input), funnel_stage_name(ev.stage), why);
                    assert_int_equal(st.stage, want);
                    legal++;
                }
            }
        }
    }
    /* apply, start, 4 passes, 3 fails */
    assert_int_equal(legal, 9);
    assert_int_equal(illegal + legal, 8 * 2 + 8 * 8 * 2); /* every pair was tried */
}

static void test_first_application(void **state) {
    (void)state;
    funnel_state_t st = {0};
    funnel_event_t ev = {FUNNEL_INPUT_APPLY, FUNNEL_NONE, 100};
    assert_int_equal(funnel_step(&policy, &st, &ev, why, sizeof(why)), 0);
    assert_int_equal(st.stage, FUNNEL_APPLIED);
    assert_int_equal(st.application, 1);
    /* Applying again while in the funnel is refused. */
    assert_int_equal(funnel_step(&policy, &st, &ev, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "stage applied"));
}

/* A whole journey: every pass in order ends approved; nothing follows. */
static void test_journey_to_approval(void **state) {
    (void)state;
    funnel_state_t st = {0};
    funnel_event_t evs[] = {
        {FUNNEL_INPUT_APPLY, 0, 1},          {FUNNEL_INPUT_START, 0, 1},
        {FUNNEL_INPUT_PASS, FUNNEL_SCREENING, 2}, {FUNNEL_INPUT_PASS, FUNNEL_TRAINING, 3},
        {FUNNEL_INPUT_PASS, FUNNEL_EXAM1, 4},     {FUNNEL_INPUT_PASS, FUNNEL_EXAM2, 5},
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        assert_int_equal(funnel_step(&policy, &st, &evs[i], why, sizeof(why)), 0);
    assert_int_equal(st.stage, FUNNEL_APPROVED);
    funnel_event_t again = {FUNNEL_INPUT_APPLY, 0, 10};
    assert_int_equal(funnel_step(&policy, &st, &again, why, sizeof(why)), -1);
    assert_int_equal(st.stage, FUNNEL_APPROVED);
}

/* Rejection sets the cool-down; a re-application before it is refused,
 * at it is taken (application 2); a second rejection leaves no retry. */
static void test_retry_and_cooldown(void **state) {
    (void)state;
    funnel_state_t st = {FUNNEL_EXAM1, 1, 0};
    funnel_event_t fail = {FUNNEL_INPUT_FAIL, FUNNEL_EXAM1, 10000};
    assert_int_equal(funnel_step(&policy, &st, &fail, why, sizeof(why)), 0);
    assert_int_equal(st.stage, FUNNEL_REJECTED);
    assert_int_equal(st.retry_after_ms, 11000);

    funnel_event_t early = {FUNNEL_INPUT_APPLY, 0, 10999};
    assert_int_equal(funnel_step(&policy, &st, &early, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "cool-down until 11000"));
    assert_int_equal(st.stage, FUNNEL_REJECTED);

    funnel_event_t on_time = {FUNNEL_INPUT_APPLY, 0, 11000};
    assert_int_equal(funnel_step(&policy, &st, &on_time, why, sizeof(why)), 0);
    assert_int_equal(st.stage, FUNNEL_APPLIED);
    assert_int_equal(st.application, 2);
    assert_int_equal(st.retry_after_ms, 0);

    funnel_event_t start = {FUNNEL_INPUT_START, 0, 11001}, fail2 = {FUNNEL_INPUT_FAIL, FUNNEL_SCREENING, 12000};
    assert_int_equal(funnel_step(&policy, &st, &start, why, sizeof(why)), 0);
    assert_int_equal(funnel_step(&policy, &st, &fail2, why, sizeof(why)), 0);
    assert_int_equal(st.retry_after_ms, 0); /* no retry left */
    funnel_event_t late = {FUNNEL_INPUT_APPLY, 0, 1000000};
    assert_int_equal(funnel_step(&policy, &st, &late, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "no retry left"));
}

static void test_no_retries_policy(void **state) {
    (void)state;
    funnel_policy_t none = {.retries_max = 0, .cooldown_ms = 1000};
    funnel_state_t st = {FUNNEL_SCREENING, 1, 0};
    funnel_event_t fail = {FUNNEL_INPUT_FAIL, FUNNEL_SCREENING, 5};
    assert_int_equal(funnel_step(&none, &st, &fail, why, sizeof(why)), 0);
    assert_int_equal(st.retry_after_ms, 0);
    /* A zero cool-down with a retry left still allows the retry. */
    funnel_policy_t at_once = {.retries_max = 2, .cooldown_ms = 0};
    funnel_state_t st2 = {FUNNEL_SCREENING, 1, 0};
    funnel_event_t fail0 = {FUNNEL_INPUT_FAIL, FUNNEL_SCREENING, 0}, apply = {FUNNEL_INPUT_APPLY, 0, 0};
    assert_int_equal(funnel_step(&at_once, &st2, &fail0, why, sizeof(why)), 0);
    assert_true(st2.retry_after_ms > 0);
    assert_int_equal(funnel_step(&at_once, &st2, &apply, why, sizeof(why)), -1); /* at 0 < 1 */
    apply.at_ms = 1;
    assert_int_equal(funnel_step(&at_once, &st2, &apply, why, sizeof(why)), 0);
}

static void test_stage_names(void **state) {
    (void)state;
    for (int i = 0; i < FUNNEL_STAGE_COUNT; i++) {
        funnel_stage_t s;
        assert_int_equal(funnel_stage_parse(funnel_stage_name((funnel_stage_t)i), &s), 0);
        assert_int_equal(s, i);
    }
    funnel_stage_t s;
    assert_int_equal(funnel_stage_parse("exam3", &s), -1);
    assert_null(funnel_stage_name((funnel_stage_t)8));
}

static void test_screening_decision(void **state) {
    (void)state;
    funnel_decision_t d;
    funnel_screening_decide(6, 8, 0.75, &d);
    assert_true(d.passed);
    assert_string_equal(d.reason, "6 of 8 correct: 0.75 >= 0.75");
    funnel_screening_decide(5, 8, 0.75, &d);
    assert_false(d.passed);
    assert_string_equal(d.reason, "5 of 8 correct: 0.62 < 0.75");
    funnel_screening_decide(0, 0, 0.0, &d);
    assert_false(d.passed);
}

static void test_exam_decision(void **state) {
    (void)state;
    funnel_decision_t d;
    double good[] = {1.0, 0.95, 0.8, 0.85};
    unsigned none[] = {0, 0, 0, 0}, one[] = {0, 0, 1, 0};
    funnel_exam_decide(good, none, 4, 0.9, &d);
    assert_true(d.passed);
    assert_int_equal(d.cases, 4);
    assert_string_equal(d.reason, "mean 0.90 >= 0.90 over 4 cases");
    funnel_exam_decide(good, one, 4, 0.5, &d);
    assert_false(d.passed); /* the mean is fine, one critical error fails it */
    assert_int_equal(d.critical_errors, 1);
    assert_string_equal(d.reason, "1 critical error (mean 0.90 over 4 cases)");
    double low[] = {0.8, 0.8};
    funnel_exam_decide(low, none, 2, 0.85, &d);
    assert_false(d.passed);
    assert_string_equal(d.reason, "mean 0.80 < 0.85 over 2 cases");
    funnel_exam_decide(NULL, NULL, 0, 0.85, &d);
    assert_false(d.passed);
}

static void test_draw(void **state) {
    (void)state;
    size_t a[8], b[8], c[8];
    assert_int_equal(funnel_draw("cand-1/1", 16, 8, a), 0);
    assert_int_equal(funnel_draw("cand-1/1", 16, 8, b), 0);
    assert_memory_equal(a, b, sizeof(a)); /* deterministic */
    assert_int_equal(funnel_draw("cand-1/2", 16, 8, c), 0);
    assert_memory_not_equal(a, c, sizeof(a)); /* another attempt, another draw */
    for (int i = 0; i < 8; i++) {
        assert_true(a[i] < 16);
        for (int j = 0; j < i; j++) assert_true(a[i] != a[j]);
    }
    assert_int_equal(funnel_draw("x", 3, 4, a), -1);
    assert_int_equal(funnel_draw("x", 3, 3, a), 0);
    assert_int_equal(a[0] + a[1] + a[2], 3);
}

/* Deadlines: screening and exams have one when configured, training and
 * the end stages never. */
static void test_stage_due(void **state) {
    (void)state;
    const funnel_timeouts_t t = {.screening_ms = 100, .exam_ms = 1000};
    assert_int_equal(funnel_stage_due(&t, FUNNEL_SCREENING, 5000), 5100);
    assert_int_equal(funnel_stage_due(&t, FUNNEL_EXAM1, 5000), 6000);
    assert_int_equal(funnel_stage_due(&t, FUNNEL_EXAM2, 5000), 6000);
    for (int s = 0; s < FUNNEL_STAGE_COUNT; s++) {
        if (s == FUNNEL_SCREENING || s == FUNNEL_EXAM1 || s == FUNNEL_EXAM2) continue;
        assert_int_equal(funnel_stage_due(&t, (funnel_stage_t)s, 5000), 0);
    }
    const funnel_timeouts_t none = {0, 0};
    for (int s = 0; s < FUNNEL_STAGE_COUNT; s++) assert_int_equal(funnel_stage_due(&none, (funnel_stage_t)s, 5000), 0);
}

/* A passed deadline: screening fails; an exam fails unless every case was
 * submitted in time; other stages have no limit.  A timed-out stage is a
 * failed attempt: the machine rejects with the cool-down, and with no
 * retry left the rejection is final. */
static void test_timeout_decision(void **state) {
    (void)state;
    funnel_decision_t d;
    assert_int_equal(funnel_timeout_decide(FUNNEL_SCREENING, 0, 0, 7000, &d, why, sizeof(why)), 1);
    assert_false(d.passed);
    assert_non_null(strstr(d.reason, "timed out: screening not answered by 7000"));
    assert_int_equal(funnel_timeout_decide(FUNNEL_EXAM1, 4, 1, 7000, &d, why, sizeof(why)), 1);
    assert_false(d.passed);
    assert_int_equal(d.cases, 4);
    assert_non_null(strstr(d.reason, "1 of 4 cases submitted by 7000"));
    assert_int_equal(funnel_timeout_decide(FUNNEL_EXAM2, 4, 0, 7000, &d, why, sizeof(why)), 1);
    assert_int_equal(funnel_timeout_decide(FUNNEL_EXAM2, 4, 4, 7000, &d, why, sizeof(why)), 0);
    assert_non_null(strstr(why, "all 4 cases submitted"));
    assert_int_equal(funnel_timeout_decide(FUNNEL_EXAM1, 0, 0, 7000, &d, why, sizeof(why)), 1);
    const funnel_stage_t no_limit[] = {FUNNEL_NONE, FUNNEL_APPLIED, FUNNEL_TRAINING, FUNNEL_APPROVED, FUNNEL_REJECTED};
    for (size_t i = 0; i < sizeof(no_limit) / sizeof(no_limit[0]); i++)
        assert_int_equal(funnel_timeout_decide(no_limit[i], 2, 0, 7000, &d, why, sizeof(why)), -1);

    /* First attempt timed out: rejected, retry after the cool-down. */
    funnel_state_t st = {FUNNEL_EXAM1, 1, 0};
    funnel_event_t fail = {FUNNEL_INPUT_FAIL, FUNNEL_EXAM1, 7000};
    assert_int_equal(funnel_step(&policy, &st, &fail, why, sizeof(why)), 0);
    assert_int_equal(st.stage, FUNNEL_REJECTED);
    assert_int_equal(st.retry_after_ms, 7000 + policy.cooldown_ms);
    /* The retry's screening times out too: no retry left, final. */
    funnel_state_t st2 = {FUNNEL_SCREENING, 2, 0};
    funnel_event_t fail2 = {FUNNEL_INPUT_FAIL, FUNNEL_SCREENING, 9000};
    assert_int_equal(funnel_step(&policy, &st2, &fail2, why, sizeof(why)), 0);
    assert_int_equal(st2.stage, FUNNEL_REJECTED);
    assert_int_equal(st2.retry_after_ms, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_transition), cmocka_unit_test(test_first_application),
        cmocka_unit_test(test_journey_to_approval), cmocka_unit_test(test_retry_and_cooldown),
        cmocka_unit_test(test_no_retries_policy), cmocka_unit_test(test_stage_names),
        cmocka_unit_test(test_screening_decision), cmocka_unit_test(test_exam_decision),
        cmocka_unit_test(test_draw), cmocka_unit_test(test_stage_due), cmocka_unit_test(test_timeout_decision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
