/* Unit tests of common/auth: tokens, their hashes, the bearer header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "auth.h"

static int setup(void **state) {
    (void)state;
    return auth_init();
}

static void test_new_tokens_are_distinct_and_verify(void **state) {
    (void)state;
    char a[AUTH_TOKEN_LEN], b[AUTH_TOKEN_LEN];
    uint8_t ha[AUTH_HASH_LEN], hb[AUTH_HASH_LEN], again[AUTH_HASH_LEN];
    auth_token_new(a, ha);
    auth_token_new(b, hb);
    assert_string_not_equal(a, b);
    assert_int_equal(strlen(a), 46);
    assert_memory_equal(a, "at_", 3);
    assert_int_equal(auth_token_hash(a, again), 0);
    assert_true(auth_hash_equal(ha, again));
    assert_false(auth_hash_equal(ha, hb));
}

static void test_one_changed_character_fails(void **state) {
    (void)state;
    char t[AUTH_TOKEN_LEN];
    uint8_t h[AUTH_HASH_LEN], h2[AUTH_HASH_LEN];
    auth_token_new(t, h);
    t[20] = t[20] == 'A' ? 'B' : 'A';
    assert_int_equal(auth_token_hash(t, h2), 0);
    assert_false(auth_hash_equal(h, h2));
}

static void test_malformed_tokens_rejected_without_lookup(void **state) {
    (void)state;
    uint8_t h[AUTH_HASH_LEN];
    assert_int_equal(auth_token_hash(NULL, h), -1);
    assert_int_equal(auth_token_hash("", h), -1);
    assert_int_equal(auth_token_hash("at_short", h), -1);
    assert_int_equal(auth_token_hash("xx_1oNpdmrMOJkl4-RJxO7P6fsJyGHfTHO3GcVzI5TAXnA", h), -1);
    assert_int_equal(auth_token_hash("at_1oNpdmrMOJkl4-RJxO7P6fsJyGHfTHO3GcVzI5TAXn=", h), -1);
    assert_int_equal(auth_token_hash("at_1oNpdmrMOJkl4-RJxO7P6fsJyGHfTHO3GcVzI5TAXnA", h), 0);
}

static void test_bearer_header(void **state) {
    (void)state;
    assert_string_equal(auth_bearer("Bearer abc"), "abc");
    assert_string_equal(auth_bearer("bearer   abc"), "abc");
    assert_null(auth_bearer("Basic abc"));
    assert_null(auth_bearer("Bearer "));
    assert_null(auth_bearer(NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_tokens_are_distinct_and_verify),
        cmocka_unit_test(test_one_changed_character_fails),
        cmocka_unit_test(test_malformed_tokens_rejected_without_lookup),
        cmocka_unit_test(test_bearer_header),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
