/* Unit and property tests of the assigner's policy
 * (services/annot-assigner/assign_policy.c, compiled in here because test
 * binaries link only libannot).  The property test makes 1,000,000 random
 * assignments over a random roster and checks every one against a brute
 * force reading of the rules: never the author, never a conflict, the two
 * validators of a double pair distinct, the cheapest eligible validator
 * chosen, nobody left out who was eligible; and, for validators of equal
 * standing, that the load stays within 2 of each other and ties are shared
 * evenly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "../../services/annot-assigner/assign_policy.c"

static assign_policy_t policy(void) {
    assign_policy_t p = {.w_load = 1.0, .w_recent = 0.5, .inactive_after_ms = 60000, .double_share = 0.1,
                         .first_k = 3, .double_exam = false};
    snprintf(p.exam_skill, sizeof(p.exam_skill), "exam");
    return p;
}

static const char *const dish[] = {"dish"};
static const char *const dish_exam[] = {"dish", "exam"};

static void test_eligibility_rules(void **state) {
    (void)state;
    assign_policy_t p = policy();
    assign_validator_t v = {.id = "val-1", .locale = "en-GB", .skills = dish, .nskills = 1, .last_active_ms = 1000};
    assign_request_t r = {.submission_id = "s", .author_id = "ann-1", .locale = "en-US", .skills = dish, .nskills = 1,
                          .now_ms = 2000};
    assert_int_equal(assign_eligible(&p, &v, &r, NULL, 0), ASSIGN_OK);
    r.author_id = "val-1";
    assert_int_equal(assign_eligible(&p, &v, &r, NULL, 0), ASSIGN_NOT_AUTHOR);
    r.author_id = "ann-1";
    assign_conflict_t c = {"val-1", "ann-1"};
    assert_int_equal(assign_eligible(&p, &v, &r, &c, 1), ASSIGN_NOT_CONFLICT);
    const char *const ex[] = {"val-1"};
    r.exclude = ex;
    r.nexclude = 1;
    assert_int_equal(assign_eligible(&p, &v, &r, NULL, 0), ASSIGN_NOT_EXCLUDED);
    r.nexclude = 0;
    v.suspended = true;
    assert_int_equal(assign_eligible(&p, &v, &r, NULL, 0), ASSIGN_NOT_SUSPENDED);
    v.suspended = false;
    r.now_ms = 1000 + 60001;
    assert_int_equal(assign_eligible(&p, &v, &r, NULL, 0), ASSIGN_NOT_INACTIVE);
    r.now_ms = 2000;
    r.locale = "ja-JP";
    assert_int_equal(assign_eligible(&p, &v, &r, NULL, 0), ASSIGN_NOT_LANGUAGE);
    r.locale = "en";
    assert_int_equal(assign_eligible(&p, &v, &r, NULL, 0), ASSIGN_OK);
    static const char *const vehicle[] = {"vehicle"};
    r.skills = vehicle;
    assert_int_equal(assign_eligible(&p, &v, &r, NULL, 0), ASSIGN_NOT_SKILL);
    /* Exam work needs the exam skill, whatever the task's skills. */
    r.exam = true;
    r.skills = dish;
    assert_int_equal(assign_eligible(&p, &v, &r, NULL, 0), ASSIGN_NOT_SKILL);
    v.skills = dish_exam;
    v.nskills = 2;
    assert_int_equal(assign_eligible(&p, &v, &r, NULL, 0), ASSIGN_OK);
    /* Activity not required when the policy says 0. */
    p.inactive_after_ms = 0;
    r.now_ms = INT64_MAX / 2;
    assert_int_equal(assign_eligible(&p, &v, &r, NULL, 0), ASSIGN_OK);
}

static void test_same_language(void **state) {
    (void)state;
    assert_true(assign_same_language("en-US", "en-GB"));
    assert_true(assign_same_language("EN", "en-us"));
    assert_true(assign_same_language("ja-JP", "ja"));
    assert_false(assign_same_language("en-US", "es-US"));
    assert_false(assign_same_language("e", "en"));
    assert_false(assign_same_language("", "en"));
}

static void test_cheapest_wins_and_double_rules(void **state) {
    (void)state;
    assign_policy_t p = policy();
    assign_validator_t vs[3] = {
        {.id = "a", .locale = "en-US", .skills = dish, .nskills = 1, .last_active_ms = 0, .open_leases = 2, .queued = 1},
        {.id = "b", .locale = "en-US", .skills = dish, .nskills = 1, .last_active_ms = 0, .queued = 1, .recent = 2},
        {.id = "c", .locale = "en-US", .skills = dish, .nskills = 1, .last_active_ms = 0, .queued = 1, .recent = 1},
    };
    assign_request_t r = {.submission_id = "s1", .author_id = "x", .locale = "en-US", .skills = dish, .nskills = 1,
                          .now_ms = 10};
    assert_int_equal(assign_pick(&p, vs, 3, &r, NULL, 0), 2); /* costs 3, 2, 1.5 */
    r.author_id = "c";
    assert_int_equal(assign_pick(&p, vs, 3, &r, NULL, 0), 1);
    r.locale = "fr-FR";
    assert_int_equal(assign_pick(&p, vs, 3, &r, NULL, 0), -1);

    assert_true(assign_double(&p, "any", false, true, 1000)); /* probation */
    assert_true(assign_double(&p, "any", false, false, 2));   /* among the first 3 */
    assert_false(assign_double(&p, "any", true, true, 0));    /* exam: per double_exam */
    p.double_exam = true;
    assert_true(assign_double(&p, "any", true, false, 1000));
    /* The share: about 10 % of 100,000 submissions, and the same answer
     * every time for one submission. */
    int n = 0;
    char id[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(id, sizeof(id), "sub-%d", i);
        bool d = assign_double(&p, id, false, false, 1000);
        assert_int_equal(d, assign_double(&p, id, false, false, 1000));
        n += d;
    }
    assert_true(n > 9400 && n < 10600);
}

/* ---- the property test ------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}
static unsigned rnd_below(unsigned n) { return (unsigned)(rnd() % n); }

#define NVAL 24
#define NAUTH 200
#define NCONF 20

static void test_million_random_assignments(void **state) {
    (void)state;
    assign_policy_t p = policy();
    static const char *const locales[] = {"en-US", "en-GB", "ja-JP", "ko-KR"};
    static const char *const skills[] = {"dish", "clothing", "vehicle", "place", "symbol", "exam"};
    char vid[NVAL][16], aid[NAUTH][16];
    const char *vskills[NVAL][3];
    assign_validator_t vs[NVAL];
    for (int i = 0; i < NVAL; i++) {
        snprintf(vid[i], sizeof(vid[i]), "val-%d", i);
        size_t ns = 1 + rnd_below(3);
        for (size_t k = 0; k < ns; k++) vskills[i][k] = skills[rnd_below(6)];
        vs[i] = (assign_validator_t){.id = vid[i], .locale = locales[rnd_below(4)], .skills = vskills[i],
                                     .nskills = ns, .suspended = rnd_below(12) == 0,
                                     .last_active_ms = rnd_below(10) == 0 ? -1000000 : 0};
    }
    /* Some authors are validators too (people who annotate and validate). */
    for (int i = 0; i < NAUTH; i++) {
        if (i < 10) snprintf(aid[i], sizeof(aid[i]), "val-%d", i);
        else snprintf(aid[i], sizeof(aid[i]), "ann-%d", i);
    }
    assign_conflict_t conf[NCONF];
    for (int i = 0; i < NCONF; i++) conf[i] = (assign_conflict_t){vid[rnd_below(NVAL)], aid[rnd_below(NAUTH)]};

    long long assigned = 0, doubles = 0, unassignable = 0;
    for (int step = 0; step < 1000000; step++) {
        char sid[24];
        snprintf(sid, sizeof(sid), "s-%d", step);
        const char *task_skills[2] = {skills[rnd_below(5)], skills[rnd_below(5)]};
        assign_request_t r = {.submission_id = sid, .author_id = aid[rnd_below(NAUTH)],
                              .locale = locales[rnd_below(4)], .skills = task_skills, .nskills = 1 + rnd_below(2),
                              .exam = rnd_below(10) == 0, .now_ms = 1000};
        bool dbl = assign_double(&p, sid, r.exam, rnd_below(20) == 0, rnd_below(10));
        long first = assign_pick(&p, vs, NVAL, &r, conf, NCONF);
        /* Brute force: the pick is eligible and no eligible one is cheaper;
         * -1 only when nobody is eligible. */
        long cheapest = -1;
        for (int i = 0; i < NVAL; i++) {
            if (assign_eligible(&p, &vs[i], &r, conf, NCONF) != ASSIGN_OK) continue;
            if (cheapest < 0 || assign_cost(&p, &vs[i]) < assign_cost(&p, &vs[cheapest])) cheapest = i;
        }
        if (first < 0) {
            assert_int_equal(cheapest, -1);
            unassignable++;
            continue;
        }
        assert_string_not_equal(vs[first].id, r.author_id);
        for (int i = 0; i < NCONF; i++)
            assert_false(strcmp(conf[i].validator_id, vs[first].id) == 0 && strcmp(conf[i].author_id, r.author_id) == 0);
        assert_int_equal(assign_eligible(&p, &vs[first], &r, conf, NCONF), ASSIGN_OK);
        assert_true(assign_cost(&p, &vs[first]) <= assign_cost(&p, &vs[cheapest]));
        vs[first].queued++;
        assigned++;
        if (dbl) {
            const char *ex[1] = {vs[first].id};
            r.exclude = ex;
            r.nexclude = 1;
            long second = assign_pick(&p, vs, NVAL, &r, conf, NCONF);
            if (second >= 0) {
                assert_true(second != first);
                assert_string_not_equal(vs[second].id, r.author_id);
                assert_int_equal(assign_eligible(&p, &vs[second], &r, conf, NCONF), ASSIGN_OK);
                vs[second].queued++;
                doubles++;
            }
        }
        /* Validators work: each finishes one task now and then. */
        for (int i = 0; i < NVAL; i++)
            if (vs[i].queued > 0 && rnd_below(4) == 0) vs[i].queued--;
    }
    printf("  1,000,000 submissions: %lld assigned, %lld double pairs, %lld with no eligible validator\n", assigned,
           doubles, unassignable);
    assert_true(assigned > 500000);
    assert_true(doubles > 50000);
}

/* Validators of equal standing: with load only (no completions), greedy
 * least-load keeps them within 2 of each other (at most the author and the
 * first of a pair are passed over at each step), and ties are shared
 * evenly when loads stay equal. */
static void test_load_spread_and_fair_ties(void **state) {
    (void)state;
    assign_policy_t p = policy();
    p.w_recent = 0;
    p.inactive_after_ms = 0;
    enum { K = 12 };
    char vid[K][16];
    assign_validator_t vs[K];
    for (int i = 0; i < K; i++) {
        snprintf(vid[i], sizeof(vid[i]), "eq-%d", i);
        vs[i] = (assign_validator_t){.id = vid[i], .locale = "ja-JP", .skills = dish, .nskills = 1};
    }
    long long max_spread = 0;
    for (int step = 0; step < 1000000; step++) {
        char sid[24], author[16];
        snprintf(sid, sizeof(sid), "q-%d", step);
        /* A quarter of the work is by one of the validators themselves. */
        if (rnd_below(4) == 0) snprintf(author, sizeof(author), "eq-%u", rnd_below(K));
        else snprintf(author, sizeof(author), "ann-%u", rnd_below(50));
        assign_request_t r = {.submission_id = sid, .author_id = author, .locale = "ja-JP", .skills = dish,
                              .nskills = 1};
        long a = assign_pick(&p, vs, K, &r, NULL, 0);
        assert_true(a >= 0);
        vs[a].queued++;
        if (rnd_below(10) == 0) {
            const char *ex[1] = {vs[a].id};
            r.exclude = ex;
            r.nexclude = 1;
            long b = assign_pick(&p, vs, K, &r, NULL, 0);
            assert_true(b >= 0 && b != a);
            vs[b].queued++;
        }
        long long lo = vs[0].queued, hi = vs[0].queued;
        for (int i = 1; i < K; i++) {
            if (vs[i].queued < lo) lo = vs[i].queued;
            if (vs[i].queued > hi) hi = vs[i].queued;
        }
        if (hi - lo > max_spread) max_spread = hi - lo;
    }
    printf("  equal validators, 1,000,000 submissions: largest load spread %lld\n", max_spread);
    assert_true(max_spread <= 2);

    /* Everyone finishes at once: loads stay equal, ties decide every pick. */
    long long wins[K] = {0};
    for (int i = 0; i < K; i++) vs[i].queued = 0;
    for (int step = 0; step < 120000; step++) {
        char sid[24];
        snprintf(sid, sizeof(sid), "t-%d", step);
        assign_request_t r = {.submission_id = sid, .author_id = "ann", .locale = "ja-JP", .skills = dish, .nskills = 1};
        wins[assign_pick(&p, vs, K, &r, NULL, 0)]++;
    }
    for (int i = 0; i < K; i++) assert_true(wins[i] > 9400 && wins[i] < 10600); /* 10,000 each, +-6 % */
}

int main(void) {
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eligibility_rules),
        cmocka_unit_test(test_same_language),
        cmocka_unit_test(test_cheapest_wins_and_double_rules),
        cmocka_unit_test(test_million_random_assignments),
        cmocka_unit_test(test_load_spread_and_fair_ties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
