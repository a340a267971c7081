/* Unit tests of the dispatcher's lease policy (services/annot-dispatcher/
 * lease_policy.c): pools, limits, the park rule, queue order, lease ids and
 * the Redis key names, with no server.
 *
 * The Makefile links a test with libannot.a only, not with a service's
 * sources, so the module under test is compiled into this file by including
 * its .c (a pure unit with no main).  This keeps the Makefile untouched; if
 * the dispatcher's sources ever become a library, include the header
 * instead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lease_policy.h"
#include "event.h"

static char errstr[256];

/* ---- queues -------------------------------------------------------------- */

static void test_queue_names(void **state) {
    (void)state;
    lease_queue_t q;
    assert_string_equal(lease_queue_name(LEASE_QUEUE_ANNOTATION), "annotation");
    assert_string_equal(lease_queue_name(LEASE_QUEUE_EXAM), "exam");
    assert_string_equal(lease_queue_name(LEASE_QUEUE_VALIDATION), "validation");
    assert_null(lease_queue_name((lease_queue_t)0));
    assert_null(lease_queue_name((lease_queue_t)4));
    assert_int_equal(lease_queue_parse("validation", &q), 0);
    assert_int_equal(q, LEASE_QUEUE_VALIDATION);
    assert_int_equal(lease_queue_parse("Validation", &q), -1);
    assert_int_equal(lease_queue_parse("", &q), -1);
    assert_int_equal(lease_queue_parse(NULL, &q), -1);
    /* The numbers are annot.v1.Queue's. */
    assert_int_equal(LEASE_QUEUE_ANNOTATION, 1);
    assert_int_equal(LEASE_QUEUE_EXAM, 2);
    assert_int_equal(LEASE_QUEUE_VALIDATION, 3);
    assert_false(lease_policy_uses_own_queue(LEASE_QUEUE_ANNOTATION));
    assert_true(lease_policy_uses_own_queue(LEASE_QUEUE_EXAM));
    assert_true(lease_policy_uses_own_queue(LEASE_QUEUE_VALIDATION));
    assert_false(lease_policy_excludes_author(LEASE_QUEUE_ANNOTATION));
    assert_false(lease_policy_excludes_author(LEASE_QUEUE_EXAM));
    assert_true(lease_policy_excludes_author(LEASE_QUEUE_VALIDATION));
}

/* ---- pools --------------------------------------------------------------- */

static void test_person_pools(void **state) {
    (void)state;
    lease_pool_name_t pools[8];
    const char *skills[] = {"dish", "street_food"};
    int n = lease_policy_person_pools("ja-JP", skills, 2, pools, 8, errstr, sizeof(errstr));
    assert_int_equal(n, 3);
    assert_string_equal(pools[0], "ja-JP/dish");
    assert_string_equal(pools[1], "ja-JP/street_food");
    assert_string_equal(pools[2], "ja-JP/general");

    /* No skills: the general pool of the locale only. */
    n = lease_policy_person_pools("fr-FR", NULL, 0, pools, 8, errstr, sizeof(errstr));
    assert_int_equal(n, 1);
    assert_string_equal(pools[0], "fr-FR/general");

    /* Duplicates and "general" among the skills: each pool once. */
    const char *dup[] = {"dish", "general", "dish"};
    n = lease_policy_person_pools("ja-JP", dup, 3, pools, 8, errstr, sizeof(errstr));
    assert_int_equal(n, 2);
    assert_string_equal(pools[0], "ja-JP/dish");
    assert_string_equal(pools[1], "ja-JP/general");

    /* Exactly max pools fits; one more does not. */
    n = lease_policy_person_pools("ja-JP", skills, 2, pools, 3, errstr, sizeof(errstr));
    assert_int_equal(n, 3);
    n = lease_policy_person_pools("ja-JP", skills, 2, pools, 2, errstr, sizeof(errstr));
    assert_int_equal(n, -1);
    assert_non_null(strstr(errstr, "more than 2 pools"));
}

static void test_person_pools_bad_names(void **state) {
    (void)state;
    lease_pool_name_t pools[8];
    const char *bad_skill[] = {"dish", "a/b"};
    assert_int_equal(lease_policy_person_pools("ja-JP", bad_skill, 2, pools, 8, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "skills[1]"));
    const char *empty_skill[] = {""};
    assert_int_equal(lease_policy_person_pools("ja-JP", empty_skill, 1, pools, 8, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "skills[0]"));
    const char *brace[] = {"{x}"};
    assert_int_equal(lease_policy_person_pools("ja-JP", brace, 1, pools, 8, errstr, sizeof(errstr)), -1);
    const char *skills[] = {"dish"};
    assert_int_equal(lease_policy_person_pools("ja JP", skills, 1, pools, 8, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "locale"));
    assert_int_equal(lease_policy_person_pools(NULL, skills, 1, pools, 8, errstr, sizeof(errstr)), -1);
    char longname[LEASE_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    const char *too_long[] = {longname};
    assert_int_equal(lease_policy_person_pools("ja-JP", too_long, 1, pools, 8, errstr, sizeof(errstr)), -1);
    longname[LEASE_NAME_MAX] = '\0'; /* exactly the maximum */
    assert_int_equal(lease_policy_person_pools("ja-JP", too_long, 1, pools, 8, errstr, sizeof(errstr)), 2);
}

static void test_task_pool(void **state) {
    (void)state;
    char pool[LEASE_POOL_MAX + 1];
    const char *skills[] = {"dish", "sauce"};
    assert_int_equal(lease_policy_task_pool(pool, sizeof(pool), "ja-JP", skills, 2), 10);
    assert_string_equal(pool, "ja-JP/dish");
    assert_int_equal(lease_policy_task_pool(pool, sizeof(pool), "ja-JP", NULL, 0), 13);
    assert_string_equal(pool, "ja-JP/general");
    assert_int_equal(lease_policy_task_pool(pool, 8, "ja-JP", skills, 2), -1);
    assert_int_equal(lease_policy_task_pool(pool, sizeof(pool), "ja-JP/x", skills, 2), -1);
    /* A task's pool is one of the pools a person with its first skill
     * leases from: that is what makes it findable. */
    lease_pool_name_t pools[4];
    const char *person[] = {"sauce", "dish"};
    int n = lease_policy_person_pools("ja-JP", person, 2, pools, 4, errstr, sizeof(errstr));
    assert_int_equal(lease_policy_task_pool(pool, sizeof(pool), "ja-JP", skills, 2), 10);
    bool found = false;
    for (int i = 0; i < n; i++) found = found || strcmp(pools[i], pool) == 0;
    assert_true(found);
}

static void test_pool_valid(void **state) {
    (void)state;
    assert_true(lease_policy_pool_valid("ja-JP/dish"));
    assert_true(lease_policy_pool_valid("x/y"));
    assert_false(lease_policy_pool_valid("ja-JP"));
    assert_false(lease_policy_pool_valid("/dish"));
    assert_false(lease_policy_pool_valid("ja-JP/"));
    assert_false(lease_policy_pool_valid("ja-JP/dish/x"));
    assert_false(lease_policy_pool_valid("ja-JP/di sh"));
    assert_false(lease_policy_pool_valid(NULL));
}

static void test_id_valid(void **state) {
    (void)state;
    char id[LEASE_ID_MAX + 2];
    assert_true(lease_policy_id_valid("task-1"));
    assert_true(lease_policy_id_valid("0b4e7a0e-5d1c-4a2b-9c3d-1e2f3a4b5c6d"));
    assert_true(lease_policy_id_valid("a:b/c.d"));
    assert_false(lease_policy_id_valid(""));
    assert_false(lease_policy_id_valid(NULL));
    assert_false(lease_policy_id_valid("a b"));
    assert_false(lease_policy_id_valid("a{b"));
    assert_false(lease_policy_id_valid("a}b"));
    assert_false(lease_policy_id_valid("a\nb"));
    assert_false(lease_policy_id_valid("caf\xc3\xa9"));
    memset(id, 'x', LEASE_ID_MAX);
    id[LEASE_ID_MAX] = '\0';
    assert_true(lease_policy_id_valid(id));
    id[LEASE_ID_MAX] = 'x';
    id[LEASE_ID_MAX + 1] = '\0';
    assert_false(lease_policy_id_valid(id));
}

/* ---- limits -------------------------------------------------------------- */

static void test_limits_defaults_and_bounds(void **state) {
    (void)state;
    lease_policy_t p;
    lease_policy_defaults(&p);
    assert_int_equal(lease_policy_validate(&p, errstr, sizeof(errstr)), 0);
    assert_int_equal(lease_policy_ttl_ms(&p, LEASE_QUEUE_ANNOTATION), 300000);
    assert_int_equal(lease_policy_ttl_ms(&p, LEASE_QUEUE_EXAM), 1800000);
    assert_int_equal(lease_policy_ttl_ms(&p, LEASE_QUEUE_VALIDATION), 600000);
    assert_int_equal(lease_policy_max_held(&p, LEASE_QUEUE_ANNOTATION), 1);
    assert_int_equal(lease_policy_max_attempts(&p, LEASE_QUEUE_VALIDATION), 3);
    assert_int_equal(lease_policy_ttl_ms(&p, (lease_queue_t)9), 0);

    p.queue[LEASE_QUEUE_EXAM].ttl_ms = 999;
    assert_int_equal(lease_policy_validate(&p, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "lease.exam.ttl.ms: 999"));
    lease_policy_defaults(&p);
    p.queue[LEASE_QUEUE_VALIDATION].max_held = 0;
    assert_int_equal(lease_policy_validate(&p, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "lease.validation.max.held"));
    lease_policy_defaults(&p);
    p.queue[LEASE_QUEUE_ANNOTATION].max_attempts = LEASE_MAX_ATTEMPTS_MAX + 1;
    assert_int_equal(lease_policy_validate(&p, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "lease.annotation.max.attempts"));
}

/* The config table the dispatcher will use: its defaults equal
 * lease_policy_defaults, a set value arrives, a value out of bounds is
 * refused with the key named. */
static void test_limits_from_config(void **state) {
    (void)state;
    static const config_def_t defs[] = {
        LEASE_POLICY_CONFIG_DEFS,
        {NULL, 0, NULL, NULL, 0, 0, false, NULL},
    };
    config_t *cfg = config_new(defs);
    lease_policy_t from_cfg, defaults;
    lease_policy_defaults(&defaults);
    assert_int_equal(lease_policy_from_config(&from_cfg, cfg, errstr, sizeof(errstr)), 0);
    assert_memory_equal(&from_cfg, &defaults, sizeof(defaults));

    assert_int_equal(config_set(cfg, "lease.exam.ttl.ms", "60000", "test", errstr, sizeof(errstr)), 0);
    assert_int_equal(config_set(cfg, "lease.annotation.max.held", "4", "test", errstr, sizeof(errstr)), 0);
    assert_int_equal(config_set(cfg, "lease.validation.max.attempts", "5", "test", errstr, sizeof(errstr)), 0);
    assert_int_equal(lease_policy_from_config(&from_cfg, cfg, errstr, sizeof(errstr)), 0);
    assert_int_equal(lease_policy_ttl_ms(&from_cfg, LEASE_QUEUE_EXAM), 60000);
    assert_int_equal(lease_policy_max_held(&from_cfg, LEASE_QUEUE_ANNOTATION), 4);
    assert_int_equal(lease_policy_max_attempts(&from_cfg, LEASE_QUEUE_VALIDATION), 5);

    assert_int_equal(config_set(cfg, "lease.exam.ttl.ms", "10", "test", errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "lease.exam.ttl.ms"));
    assert_int_equal(config_set(cfg, "lease.annotation.max.held", "0", "test", errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "lease.annotation.max.held"));
    config_destroy(cfg);
}

static void test_park_rule(void **state) {
    (void)state;
    assert_false(lease_policy_park(0, 3));
    assert_false(lease_policy_park(1, 3));
    assert_false(lease_policy_park(2, 3));
    assert_true(lease_policy_park(3, 3));
    assert_true(lease_policy_park(4, 3));
    assert_true(lease_policy_park(1, 1));
    assert_true(lease_policy_park(1, 0)); /* never requeue forever */
    char reason[64];
    lease_policy_park_reason(reason, sizeof(reason), 3);
    assert_string_equal(reason, "3 leases expired");
    lease_policy_park_reason(reason, sizeof(reason), 1);
    assert_string_equal(reason, "1 lease expired");
}

/* ---- order --------------------------------------------------------------- */

static void test_queue_order(void **state) {
    (void)state;
    /* The Lua scripts use this constant literally. */
    assert_true(((uint64_t)1 << LEASE_SEQ_BITS) == 4398046511104ULL);
    /* Higher priority first, FIFO within a priority. */
    assert_true(lease_policy_queue_score(5, 10) < lease_policy_queue_score(5, 11));
    assert_true(lease_policy_queue_score(5, 999999) < lease_policy_queue_score(4, 1));
    assert_true(lease_policy_queue_score(LEASE_PRIORITY_MAX, ((uint64_t)1 << LEASE_SEQ_BITS) - 1) <
                lease_policy_queue_score(LEASE_PRIORITY_MAX - 1, 0));
    /* Every score is an integer a double holds exactly (Lua's numbers). */
    double worst = lease_policy_queue_score(0, ((uint64_t)1 << LEASE_SEQ_BITS) - 1);
    assert_true(worst < 9007199254740992.0); /* 2^53 */
    assert_true((uint64_t)worst == (((uint64_t)LEASE_PRIORITY_MAX << LEASE_SEQ_BITS) | (((uint64_t)1 << LEASE_SEQ_BITS) - 1)));
    assert_true(lease_policy_priority_valid(0));
    assert_true(lease_policy_priority_valid(LEASE_PRIORITY_MAX));
    assert_false(lease_policy_priority_valid(-1));
    assert_false(lease_policy_priority_valid(LEASE_PRIORITY_MAX + 1));
}

/* ---- lease ids ----------------------------------------------------------- */

static void test_lease_id_queue(void **state) {
    (void)state;
    for (int q = LEASE_QUEUE_FIRST; q <= LEASE_QUEUE_LAST; q++) {
        for (int i = 0; i < 50; i++) {
            char id[LEASE_ID_LEN];
            event_id_new(id);
            lease_policy_lease_id_mark(id, (lease_queue_t)q);
            lease_queue_t back;
            assert_int_equal(lease_policy_lease_id_queue(id, &back), 0);
            assert_int_equal(back, q);
            /* Still a canonical UUID: what LeaseEvent.lease_id promises. */
            assert_true(event_id_valid(id));
        }
    }
    lease_queue_t q;
    assert_int_equal(lease_policy_lease_id_queue("0b4e7a0e-5d1c-4a2b-9c3d-1e2f3a4b5c62", &q), 0);
    assert_int_equal(q, LEASE_QUEUE_EXAM);
    assert_int_equal(lease_policy_lease_id_queue("0b4e7a0e-5d1c-4a2b-9c3d-1e2f3a4b5c60", &q), -1);
    assert_int_equal(lease_policy_lease_id_queue("0b4e7a0e-5d1c-4a2b-9c3d-1e2f3a4b5c64", &q), -1);
    assert_int_equal(lease_policy_lease_id_queue("0B4E7A0E-5D1C-4A2B-9C3D-1E2F3A4B5C61", &q), -1);
    assert_int_equal(lease_policy_lease_id_queue("0b4e7a0e-5d1c-4a2b-9c3d-1e2f3a4b5c611", &q), -1);
    assert_int_equal(lease_policy_lease_id_queue("0b4e7a0e-5d1c-4a2b-9c3d-1e2f3a4b5c6", &q), -1);
    assert_int_equal(lease_policy_lease_id_queue("0b4e7a0e_5d1c-4a2b-9c3d-1e2f3a4b5c61", &q), -1);
    assert_int_equal(lease_policy_lease_id_queue("0b4e7a0e-5d1c-4a2b-9c3d-1e2f3a4b5cg1", &q), -1);
    assert_int_equal(lease_policy_lease_id_queue("", &q), -1);
    assert_int_equal(lease_policy_lease_id_queue(NULL, &q), -1);
}

/* ---- keys ---------------------------------------------------------------- */

/* Redis Cluster's slot of a key: CRC16 (XMODEM) of the hash tag, mod 16384. */
static unsigned key_slot(const char *key) {
    const char *s = key;
    size_t n = strlen(key);
    const char *open = strchr(key, '{');
    if (open) {
        const char *close = strchr(open + 1, '}');
        if (close && close > open + 1) {
            s = open + 1;
            n = (size_t)(close - open - 1);
        }
    }
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((unsigned char)s[i] << 8);
        for (int b = 0; b < 8; b++) crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc & 16383;
}

static void test_key_names(void **state) {
    (void)state;
    char k[LEASE_KEY_MAX];
    const char *lid = "0b4e7a0e-5d1c-4a2b-9c3d-1e2f3a4b5c61";
    assert_int_equal(lease_key(k, sizeof(k), "annot", LEASE_QUEUE_ANNOTATION, LEASE_KEY_BASE, NULL), 20);
    assert_string_equal(k, "{annot:q:annotation}");
    lease_key(k, sizeof(k), "annot", LEASE_QUEUE_ANNOTATION, LEASE_KEY_POOL, "ja-JP/dish");
    assert_string_equal(k, "{annot:q:annotation}:pool:ja-JP/dish");
    lease_key(k, sizeof(k), "annot", LEASE_QUEUE_EXAM, LEASE_KEY_OWN, "cand-7");
    assert_string_equal(k, "{annot:q:exam}:own:cand-7");
    lease_key(k, sizeof(k), "annot", LEASE_QUEUE_VALIDATION, LEASE_KEY_TASK, "asg-1");
    assert_string_equal(k, "{annot:q:validation}:task:asg-1");
    lease_key(k, sizeof(k), "annot", LEASE_QUEUE_ANNOTATION, LEASE_KEY_LEASE, lid);
    assert_string_equal(k, "{annot:q:annotation}:lease:0b4e7a0e-5d1c-4a2b-9c3d-1e2f3a4b5c61");
    lease_key(k, sizeof(k), "annot", LEASE_QUEUE_ANNOTATION, LEASE_KEY_HELD, "ann-1");
    assert_string_equal(k, "{annot:q:annotation}:held:ann-1");
    lease_key(k, sizeof(k), "annot", LEASE_QUEUE_VALIDATION, LEASE_KEY_PAYLOAD, "asg-1");
    assert_string_equal(k, "{annot:q:validation}:json:asg-1");
    lease_key(k, sizeof(k), "annot", LEASE_QUEUE_ANNOTATION, LEASE_KEY_EXPIRY, NULL);
    assert_string_equal(k, "{annot:q:annotation}:expiry");
    lease_key(k, sizeof(k), "annot", LEASE_QUEUE_ANNOTATION, LEASE_KEY_PARKED, NULL);
    assert_string_equal(k, "{annot:q:annotation}:parked");
    lease_key(k, sizeof(k), "annot", LEASE_QUEUE_ANNOTATION, LEASE_KEY_SEQ, NULL);
    assert_string_equal(k, "{annot:q:annotation}:seq");
    lease_key(k, sizeof(k), "annot", LEASE_QUEUE_ANNOTATION, LEASE_KEY_POOLS, NULL);
    assert_string_equal(k, "{annot:q:annotation}:pools");
    lease_key(k, sizeof(k), "annot", LEASE_QUEUE_ANNOTATION, LEASE_KEY_WAKE, NULL);
    assert_string_equal(k, "{annot:q:annotation}:wake");
}

static void test_key_refusals(void **state) {
    (void)state;
    char k[LEASE_KEY_MAX];
    const char *lid = "0b4e7a0e-5d1c-4a2b-9c3d-1e2f3a4b5c61"; /* an annotation lease */
    assert_int_equal(lease_key(k, sizeof(k), "", LEASE_QUEUE_EXAM, LEASE_KEY_SEQ, NULL), -1);
    assert_int_equal(lease_key(k, sizeof(k), "a{b", LEASE_QUEUE_EXAM, LEASE_KEY_SEQ, NULL), -1);
    assert_int_equal(lease_key(k, sizeof(k), "annot", (lease_queue_t)0, LEASE_KEY_SEQ, NULL), -1);
    assert_int_equal(lease_key(k, sizeof(k), "annot", LEASE_QUEUE_EXAM, (lease_key_t)99, NULL), -1);
    assert_int_equal(lease_key(k, sizeof(k), "annot", LEASE_QUEUE_EXAM, LEASE_KEY_SEQ, "x"), -1);
    assert_int_equal(lease_key(k, sizeof(k), "annot", LEASE_QUEUE_EXAM, LEASE_KEY_TASK, NULL), -1);
    assert_int_equal(lease_key(k, sizeof(k), "annot", LEASE_QUEUE_EXAM, LEASE_KEY_PAYLOAD, NULL), -1);
    assert_int_equal(lease_key(k, sizeof(k), "annot", LEASE_QUEUE_EXAM, LEASE_KEY_TASK, "a}b"), -1);
    assert_int_equal(lease_key(k, sizeof(k), "annot", LEASE_QUEUE_ANNOTATION, LEASE_KEY_POOL, "dish"), -1);
    assert_int_equal(lease_key(k, sizeof(k), "annot", LEASE_QUEUE_ANNOTATION, LEASE_KEY_LEASE, "task-1"), -1);
    /* A lease id marked for another queue has no key in this one. */
    assert_int_equal(lease_key(k, sizeof(k), "annot", LEASE_QUEUE_EXAM, LEASE_KEY_LEASE, lid), -1);
    /* volatile: the point is a buffer one byte short, which the compiler
     * would otherwise see through and refuse to build. */
    volatile size_t exact = 21;
    assert_int_equal(lease_key(k, exact - 1, "annot", LEASE_QUEUE_ANNOTATION, LEASE_KEY_BASE, NULL), -1);
    assert_int_equal(lease_key(k, exact, "annot", LEASE_QUEUE_ANNOTATION, LEASE_KEY_BASE, NULL), 20);
    /* The longest ids fit LEASE_KEY_MAX. */
    char id[LEASE_ID_MAX + 1], ns[LEASE_NS_MAX + 1];
    memset(id, 'i', LEASE_ID_MAX);
    id[LEASE_ID_MAX] = '\0';
    memset(ns, 'n', LEASE_NS_MAX);
    ns[LEASE_NS_MAX] = '\0';
    assert_true(lease_key(k, sizeof(k), ns, LEASE_QUEUE_VALIDATION, LEASE_KEY_TASK, id) > 0);
    assert_true(lease_key(k, sizeof(k), ns, LEASE_QUEUE_VALIDATION, LEASE_KEY_HELD, id) > 0);
}

/* Every key of one queue kind hashes to one cluster slot (a script touches
 * one queue kind), and the three kinds are spread over different slots. */
static void test_key_slots(void **state) {
    (void)state;
    char k[LEASE_KEY_MAX];
    unsigned slots[LEASE_QUEUE_LAST + 1];
    for (int q = LEASE_QUEUE_FIRST; q <= LEASE_QUEUE_LAST; q++) {
        char lid[LEASE_ID_LEN] = "0b4e7a0e-5d1c-4a2b-9c3d-1e2f3a4b5c60";
        lease_policy_lease_id_mark(lid, (lease_queue_t)q);
        const char *ids[] = {NULL, "ja-JP/dish", "person-7", "task:1", lid, "holder-9", "task:1"};
        assert_true(lease_key(k, sizeof(k), "annot", (lease_queue_t)q, LEASE_KEY_BASE, NULL) > 0);
        slots[q] = key_slot(k);
        for (int kind = LEASE_KEY_BASE; kind <= LEASE_KEY_SEEN; kind++) {
            const char *id = kind <= LEASE_KEY_PAYLOAD ? ids[kind] : NULL;
            assert_true(lease_key(k, sizeof(k), "annot", (lease_queue_t)q, (lease_key_t)kind, id) > 0);
            assert_int_equal(key_slot(k), slots[q]);
        }
        /* An id with braces could move a key to another slot: refused. */
        assert_int_equal(lease_key(k, sizeof(k), "annot", (lease_queue_t)q, LEASE_KEY_OWN, "{x}"), -1);
    }
    assert_int_not_equal(slots[1], slots[2]);
    assert_int_not_equal(slots[1], slots[3]);
    assert_int_not_equal(slots[2], slots[3]);
    /* The known value of CRC16 for "123456789" is 0x31C3. */
    assert_int_equal(key_slot("123456789"), 0x31C3 & 16383);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_names),
        cmocka_unit_test(test_person_pools),
        cmocka_unit_test(test_person_pools_bad_names),
        cmocka_unit_test(test_task_pool),
        cmocka_unit_test(test_pool_valid),
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test(test_limits_defaults_and_bounds),
        cmocka_unit_test(test_limits_from_config),
        cmocka_unit_test(test_park_rule),
        cmocka_unit_test(test_queue_order),
        cmocka_unit_test(test_lease_id_queue),
        cmocka_unit_test(test_key_names),
        cmocka_unit_test(test_key_refusals),
        cmocka_unit_test(test_key_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
