/* Unit tests of pg_sqlstate_permanent: which PostgreSQL errors the consumer
 * pipeline dead-letters a message for (its data fails the same way every
 * time) and which it retries (they pass: the server comes back, the other
 * transaction ends, a later event supplies the missing row). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pg.h"

static void test_data_errors_are_permanent(void **state) {
    (void)state;
    assert_true(pg_sqlstate_permanent("22003"));  /* numeric_value_out_of_range */
    assert_true(pg_sqlstate_permanent("22021"));  /* character_not_in_repertoire: bad UTF-8 */
    assert_true(pg_sqlstate_permanent("22P02"));  /* invalid_text_representation */
    assert_true(pg_sqlstate_permanent("22008"));  /* datetime_field_overflow */
    assert_true(pg_sqlstate_permanent("23502"));  /* not_null_violation */
    assert_true(pg_sqlstate_permanent("23514"));  /* check_violation */
    assert_true(pg_sqlstate_permanent("54000"));  /* program_limit_exceeded: index row too large */
}

static void test_passing_errors_are_retried(void **state) {
    (void)state;
    assert_false(pg_sqlstate_permanent("23505")); /* unique_violation: a concurrent writer */
    assert_false(pg_sqlstate_permanent("23503")); /* foreign_key_violation: a row still to come */
    assert_false(pg_sqlstate_permanent("40001")); /* serialization_failure */
    assert_false(pg_sqlstate_permanent("40P01")); /* deadlock_detected */
    assert_false(pg_sqlstate_permanent("08006")); /* connection_failure */
    assert_false(pg_sqlstate_permanent("57P01")); /* admin_shutdown */
    assert_false(pg_sqlstate_permanent("57014")); /* query_canceled: a statement timeout */
    assert_false(pg_sqlstate_permanent("53100")); /* disk_full */
    assert_false(pg_sqlstate_permanent("42P01")); /* undefined_table: a migration to run, not the data */
    assert_false(pg_sqlstate_permanent("25P02")); /* in_failed_sql_transaction: an earlier error decides */
    assert_false(pg_sqlstate_permanent("XX000")); /* internal_error */
}

static void test_no_state_is_retried(void **state) {
    (void)state;
    assert_false(pg_sqlstate_permanent(NULL)); /* no result: the connection went */
    assert_false(pg_sqlstate_permanent(""));
    assert_false(pg_sqlstate_permanent("22"));
    assert_false(pg_sqlstate_permanent("220030"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_errors_are_permanent),
        cmocka_unit_test(test_passing_errors_are_retried),
        cmocka_unit_test(test_no_state_is_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
