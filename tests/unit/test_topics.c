/* Unit tests of common/topics: the repository's own config/topics.conf, and
 * the errors an operator gets for a broken table, each naming the line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topics.h"

static char errstr[512];
static char path[64];

static void table_write(const char *text) {
    snprintf(path, sizeof(path), "/tmp/test_topics.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static int teardown(void **state) {
    (void)state;
    if (path[0] != '\0') unlink(path);
    path[0] = '\0';
    errstr[0] = '\0';
    return 0;
}

/* Loads text, expects a failure whose message names the file and `line` (0:
 * no line), and checks nothing is left allocated. */
static void table_fails(const char *text, int line) {
    table_write(text);
    topics_t topics;
    memset(&topics, 0xa5, sizeof(topics));
    assert_int_equal(topics_load(&topics, path, errstr, sizeof(errstr)), -1);
    assert_null(topics.items);
    assert_int_equal(topics.count, 0);
    assert_non_null(strstr(errstr, path));
    if (line > 0) {
        char want[32];
        snprintf(want, sizeof(want), "line %d:", line);
        assert_non_null(strstr(errstr, want));
    } else {
        assert_null(strstr(errstr, "line"));
    }
    topics_free(&topics); /* harmless after a failure */
}

static void test_repo_table(void **state) {
    (void)state;
    topics_t topics;
    int rc = topics_load(&topics, "config/topics.conf", errstr, sizeof(errstr));
    if (rc != 0) fail_msg("%s", errstr);
    assert_true(topics.count >= 12);
    static const struct {
        const char *role, *name;
        int partitions;
    } want[] = {
        {"tasks", "annot.tasks.v1", 6},
        {"submissions", "annot.submissions.v1", 6},
        {"validation-results", "annot.validation-results.v1", 6},
        {"guidelines", "annot.guidelines.v1", 1},
        {"dlq", "annot.dlq.v1", 3},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const topic_def_t *t = topics_find(&topics, want[i].role);
        if (t == NULL) fail_msg("role %s missing from config/topics.conf", want[i].role);
        assert_string_equal(t->name, want[i].name);
        assert_int_equal(t->partitions, want[i].partitions);
    }
    /* Every role and every topic name appears once. */
    for (size_t i = 0; i < topics.count; i++) {
        assert_true(topics.items[i].partitions >= 1);
        for (size_t j = i + 1; j < topics.count; j++) {
            assert_string_not_equal(topics.items[i].role, topics.items[j].role);
            assert_string_not_equal(topics.items[i].name, topics.items[j].name);
        }
    }
    topics_free(&topics);
    assert_null(topics.items);
    assert_int_equal(topics.count, 0);
}

static void test_comments_blank_lines_and_order(void **state) {
    (void)state;
    table_write("# role name partitions\n"
                "\n"
                "  tasks   annot.tasks.v1   6   # trailing comment\n"
                "\t\n"
                "dlq\tannot.dlq_v1\t1\n"
                "x annot.X-y.v2 10000\n");
    topics_t topics;
    assert_int_equal(topics_load(&topics, path, errstr, sizeof(errstr)), 0);
    assert_int_equal(topics.count, 3);
    assert_string_equal(topics.items[0].role, "tasks");
    assert_string_equal(topics.items[0].name, "annot.tasks.v1");
    assert_int_equal(topics.items[0].partitions, 6);
    assert_string_equal(topics.items[1].name, "annot.dlq_v1");
    assert_int_equal(topics.items[2].partitions, 10000);
    topics_free(&topics);
}

/* A prefix isolates one deployment's topics from another's on a cluster;
 * a prefix that makes an illegal name is refused, naming the key. */
static void test_prefix(void **state) {
    (void)state;
    table_write("tasks annot.tasks.v1 6\nleases annot.leases.v1 2\n");
    topics_t topics;
    assert_int_equal(topics_load(&topics, path, errstr, sizeof(errstr)), 0);
    assert_int_equal(topics_prefix(&topics, "", errstr, sizeof(errstr)), 0);
    assert_string_equal(topics_find(&topics, "tasks")->name, "annot.tasks.v1");
    assert_int_equal(topics_prefix(&topics, "lane2.", errstr, sizeof(errstr)), 0);
    assert_string_equal(topics_find(&topics, "tasks")->name, "lane2.annot.tasks.v1");
    assert_string_equal(topics_find(&topics, "leases")->name, "lane2.annot.leases.v1");
    assert_int_equal(topics_find(&topics, "leases")->partitions, 2);
    assert_int_equal(topics_prefix(&topics, "bad prefix/", errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "topics.prefix"));
    char longp[300];
    memset(longp, 'x', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    assert_int_equal(topics_prefix(&topics, longp, errstr, sizeof(errstr)), -1);
    topics_free(&topics);
}

static void test_find(void **state) {
    (void)state;
    table_write("tasks annot.tasks.v1 6\nleases annot.leases.v1 2\n");
    topics_t topics;
    assert_int_equal(topics_load(&topics, path, errstr, sizeof(errstr)), 0);
    const topic_def_t *t = topics_find(&topics, "leases");
    assert_non_null(t);
    assert_string_equal(t->name, "annot.leases.v1");
    assert_int_equal(t->partitions, 2);
    assert_null(topics_find(&topics, "lease"));
    assert_null(topics_find(&topics, "annot.leases.v1")); /* a name is not a role */
    assert_null(topics_find(&topics, ""));
    topics_free(&topics);
    topics_t none = {0};
    assert_null(topics_find(&none, "tasks"));
}

static void test_bad_partition_count(void **state) {
    (void)state;
    table_fails("tasks annot.tasks.v1 6\n# comment\ndlq annot.dlq.v1 0\n", 3);
    teardown(NULL);
    table_fails("tasks annot.tasks.v1 -2\n", 1);
    teardown(NULL);
    table_fails("tasks annot.tasks.v1 six\n", 1);
    teardown(NULL);
    table_fails("\ntasks annot.tasks.v1 2.5\n", 2);
    teardown(NULL);
    table_fails("tasks annot.tasks.v1 10001\n", 1);
    teardown(NULL);
    table_fails("tasks annot.tasks.v1\n", 1);
    teardown(NULL);
    /* A typo with extra digits must not wrap around to a small count. */
    table_fails("tasks annot.tasks.v1 4294967297\n", 1);
    teardown(NULL);
    table_fails("tasks annot.tasks.v1 99999999999999999999999\n", 1);
}

static void test_extra_column(void **state) {
    (void)state;
    table_fails("tasks annot.tasks.v1 6 compact\n", 1);
}

static void test_bad_topic_name(void **state) {
    (void)state;
    table_fails("tasks annot.tasks.v1 6\nleases annot/leases 6\n", 2);
    teardown(NULL);
    table_fails("tasks annot.t\xc3\xa4sks 6\n", 1);
    teardown(NULL);
    table_fails("tasks .. 6\n", 1);
    teardown(NULL);
    /* Kafka's limit is 249 characters. */
    char text[300];
    memset(text, 'a', sizeof(text));
    memcpy(text, "t ", 2);
    snprintf(text + 2 + 250, sizeof(text) - 252, " 1\n");
    table_fails(text, 1);
    teardown(NULL);
    snprintf(text + 2 + 249, sizeof(text) - 251, " 1\n");
    table_write(text);
    topics_t topics;
    assert_int_equal(topics_load(&topics, path, errstr, sizeof(errstr)), 0);
    assert_int_equal(strlen(topics.items[0].name), 249);
    topics_free(&topics);
}

static void test_duplicate_role(void **state) {
    (void)state;
    table_fails("tasks annot.tasks.v1 6\ndlq annot.dlq.v1 3\n\ntasks annot.tasks.v2 6\n", 4);
    assert_non_null(strstr(errstr, "'tasks'"));
}

static void test_empty_table(void **state) {
    (void)state;
    table_fails("", 0);
    assert_non_null(strstr(errstr, "no topics"));
    teardown(NULL);
    table_fails("# only comments\n\n   \n", 0);
    assert_non_null(strstr(errstr, "no topics"));
}

static void test_missing_file(void **state) {
    (void)state;
    topics_t topics;
    assert_int_equal(topics_load(&topics, "/nonexistent/topics.conf", errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "/nonexistent/topics.conf"));
    assert_null(topics.items);
    assert_int_equal(topics.count, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_repo_table, teardown),
        cmocka_unit_test_teardown(test_comments_blank_lines_and_order, teardown),
        cmocka_unit_test_teardown(test_find, teardown),
        cmocka_unit_test_teardown(test_prefix, teardown),
        cmocka_unit_test_teardown(test_bad_partition_count, teardown),
        cmocka_unit_test_teardown(test_extra_column, teardown),
        cmocka_unit_test_teardown(test_bad_topic_name, teardown),
        cmocka_unit_test_teardown(test_duplicate_role, teardown),
        cmocka_unit_test_teardown(test_empty_table, teardown),
        cmocka_unit_test_teardown(test_missing_file, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
