/* Unit tests of common/config: the defaults -> file -> environment -> command
 * line chain, validation that names the key and where the value came from,
 * and the kafka.* pass-through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"

/* The binary's own table, as a service declares it. */
static const config_def_t test_defs[] = {
    {"workers", CONFIG_INT, "4", "TEST_CONFIG_WORKERS", 1, 64, false, "worker threads"},
    {"ratio", CONFIG_DOUBLE, "0.5", "TEST_CONFIG_RATIO", 0, 1, false, "a fraction"},
    {"offset", CONFIG_INT, "-3", NULL, 0, 0, false, "unbounded integer"},
    {"verbose", CONFIG_BOOL, "false", "TEST_CONFIG_VERBOSE", 0, 0, false, "a flag"},
    {"name", CONFIG_STRING, "svc", "TEST_CONFIG_NAME", 0, 0, false, "a string"},
    {"token", CONFIG_STRING, NULL, "TEST_CONFIG_TOKEN", 0, 0, true, "required, no default"},
    {NULL, 0, NULL, NULL, 0, 0, false, NULL},
};

static char errstr[512];

/* Writes text to a new temporary file; path receives its name. */
static void temp_file_write(char path[64], const char *text) {
    snprintf(path, 64, "/tmp/test_config.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static int setup(void **state) {
    static const char *const vars[] = {"TEST_CONFIG_WORKERS", "TEST_CONFIG_RATIO",
                                       "TEST_CONFIG_VERBOSE", "TEST_CONFIG_NAME",
                                       "TEST_CONFIG_TOKEN", "TEST_CONFIG_WORKERS_FILE",
                                       "TEST_CONFIG_NAME_FILE", "TEST_CONFIG_TOKEN_FILE"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) unsetenv(vars[i]);
    errstr[0] = '\0';
    *state = config_new(test_defs);
    return 0;
}

static int teardown(void **state) {
    config_destroy(*state);
    *state = NULL;
    return 0;
}

static void test_defaults_applied(void **state) {
    config_t *cfg = *state;
    assert_int_equal(config_int(cfg, "workers"), 4);
    assert_true(config_double(cfg, "ratio") == 0.5);
    assert_int_equal(config_int(cfg, "offset"), -3);
    assert_false(config_bool(cfg, "verbose"));
    assert_string_equal(config_str(cfg, "name"), "svc");
    assert_null(config_str(cfg, "token"));
    /* The common keys are there too, with their defaults. */
    assert_string_equal(config_str(cfg, "log.level"), "info");
    assert_string_equal(config_str(cfg, "kafka.bootstrap.servers"), "127.0.0.1:9092");
    assert_int_equal(config_int(cfg, "pg.connect.timeout.s"), 30);
    assert_string_equal(config_origin(cfg, "workers"), "default");
    assert_null(config_origin(cfg, "token"));
}

static void test_new_without_own_table(void **state) {
    (void)state;
    config_t *cfg = config_new(NULL);
    assert_string_equal(config_str(cfg, "dlq.topic.role"), "dlq");
    assert_int_equal(config_set(cfg, "workers", "2", "-X", errstr, sizeof(errstr)), -1);
    config_destroy(cfg);
}

static void test_file_loaded_with_comments_and_blank_lines(void **state) {
    config_t *cfg = *state;
    char path[64];
    temp_file_write(path,
                    "# a comment line\n"
                    "\n"
                    "   \t\n"
                    "workers = 8\n"
                    "  name=index#er  \n"
                    "verbose = yes\r\n"
                    "ratio=0.25\n");
    assert_int_equal(config_load_file(cfg, path, false, errstr, sizeof(errstr)), 0);
    assert_int_equal(config_int(cfg, "workers"), 8);
    /* A '#' inside a value is part of it (passwords in URLs). */
    assert_string_equal(config_str(cfg, "name"), "index#er");
    assert_true(config_bool(cfg, "verbose"));
    assert_true(config_double(cfg, "ratio") == 0.25);
    char want[128];
    snprintf(want, sizeof(want), "%s:4", path);
    assert_string_equal(config_origin(cfg, "workers"), want);
    snprintf(want, sizeof(want), "%s:7", path);
    assert_string_equal(config_origin(cfg, "ratio"), want);
    unlink(path);
}

static void test_file_bad_value_names_key_and_line(void **state) {
    config_t *cfg = *state;
    char path[64];
    temp_file_write(path, "# header\nname = x\nworkers = many\nratio = 0.1\n");
    assert_int_equal(config_load_file(cfg, path, false, errstr, sizeof(errstr)), -1);
    char where[128];
    snprintf(where, sizeof(where), "%s:3", path);
    assert_non_null(strstr(errstr, "'workers'"));
    assert_non_null(strstr(errstr, where));
    assert_non_null(strstr(errstr, "many"));
    /* The bad value is not applied. */
    assert_int_equal(config_int(cfg, "workers"), 4);
    unlink(path);
}

static void test_file_unknown_key_names_line(void **state) {
    config_t *cfg = *state;
    char path[64];
    temp_file_write(path, "workers = 2\n\nwrokers = 3\n");
    assert_int_equal(config_load_file(cfg, path, false, errstr, sizeof(errstr)), -1);
    char where[128];
    snprintf(where, sizeof(where), "%s:3", path);
    assert_non_null(strstr(errstr, "'wrokers'"));
    assert_non_null(strstr(errstr, "unknown"));
    assert_non_null(strstr(errstr, where));
    unlink(path);
}

static void test_file_line_without_equals(void **state) {
    config_t *cfg = *state;
    char path[64];
    temp_file_write(path, "workers 2\n");
    assert_int_equal(config_load_file(cfg, path, false, errstr, sizeof(errstr)), -1);
    char where[128];
    snprintf(where, sizeof(where), "%s:1", path);
    assert_non_null(strstr(errstr, where));
    assert_non_null(strstr(errstr, "key=value"));
    unlink(path);
}

static void test_file_missing(void **state) {
    config_t *cfg = *state;
    const char *path = "/nonexistent/dir/annot.conf";
    assert_int_equal(config_load_file(cfg, path, true, errstr, sizeof(errstr)), 0);
    assert_int_equal(config_load_file(cfg, path, false, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, path));
}

static void test_env_overrides_file(void **state) {
    config_t *cfg = *state;
    char path[64];
    temp_file_write(path, "workers = 8\nname = from-file\n");
    assert_int_equal(config_load_file(cfg, path, false, errstr, sizeof(errstr)), 0);
    setenv("TEST_CONFIG_WORKERS", "16", 1);
    assert_int_equal(config_load_env(cfg, errstr, sizeof(errstr)), 0);
    assert_int_equal(config_int(cfg, "workers"), 16);
    assert_string_equal(config_origin(cfg, "workers"), "env TEST_CONFIG_WORKERS");
    /* A key whose variable is not set keeps the file's value. */
    assert_string_equal(config_str(cfg, "name"), "from-file");
    /* The command line comes last and wins over the environment. */
    assert_int_equal(config_set_pair(cfg, "workers=32", "-X", errstr, sizeof(errstr)), 0);
    assert_int_equal(config_int(cfg, "workers"), 32);
    assert_string_equal(config_origin(cfg, "workers"), "-X");
    unsetenv("TEST_CONFIG_WORKERS");
    unlink(path);
}

static void test_env_bad_value_names_variable(void **state) {
    config_t *cfg = *state;
    setenv("TEST_CONFIG_RATIO", "1.5", 1);
    assert_int_equal(config_load_env(cfg, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "'ratio'"));
    assert_non_null(strstr(errstr, "TEST_CONFIG_RATIO"));
    assert_true(config_double(cfg, "ratio") == 0.5);
    unsetenv("TEST_CONFIG_RATIO");
}

/* Compose and Docker secrets: VAR_FILE names a file holding the value. */
static void test_env_file_variant(void **state) {
    config_t *cfg = *state;
    char path[64];
    temp_file_write(path, "s3cret#with:chars@\n");
    setenv("TEST_CONFIG_TOKEN_FILE", path, 1);
    assert_int_equal(config_load_env(cfg, errstr, sizeof(errstr)), 0);
    /* The line break an editor adds is not part of the secret. */
    assert_string_equal(config_str(cfg, "token"), "s3cret#with:chars@");
    assert_non_null(strstr(config_origin(cfg, "token"), "TEST_CONFIG_TOKEN_FILE"));
    assert_int_equal(config_check_required(cfg, errstr, sizeof(errstr)), 0);
    /* Typed keys are validated as from any other source. */
    char bad[64];
    temp_file_write(bad, "many\n");
    setenv("TEST_CONFIG_WORKERS_FILE", bad, 1);
    assert_int_equal(config_load_env(cfg, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "'workers'"));
    assert_non_null(strstr(errstr, "TEST_CONFIG_WORKERS_FILE"));
    unsetenv("TEST_CONFIG_WORKERS_FILE");
    unsetenv("TEST_CONFIG_TOKEN_FILE");
    unlink(path);
    unlink(bad);
}

static void test_env_file_errors_name_variable(void **state) {
    config_t *cfg = *state;
    setenv("TEST_CONFIG_NAME_FILE", "/nonexistent/secret", 1);
    assert_int_equal(config_load_env(cfg, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "TEST_CONFIG_NAME_FILE"));
    assert_non_null(strstr(errstr, "/nonexistent/secret"));
    assert_string_equal(config_str(cfg, "name"), "svc");
    /* Both forms at once is ambiguous: refused, naming both. */
    char path[64];
    temp_file_write(path, "from-file");
    setenv("TEST_CONFIG_NAME_FILE", path, 1);
    setenv("TEST_CONFIG_NAME", "from-env", 1);
    assert_int_equal(config_load_env(cfg, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "TEST_CONFIG_NAME_FILE"));
    assert_non_null(strstr(errstr, "TEST_CONFIG_NAME and"));
    unsetenv("TEST_CONFIG_NAME");
    unsetenv("TEST_CONFIG_NAME_FILE");
    unlink(path);
}

static void test_set_last_wins(void **state) {
    config_t *cfg = *state;
    assert_int_equal(config_set(cfg, "name", "one", "a", errstr, sizeof(errstr)), 0);
    assert_int_equal(config_set(cfg, "name", "two", "b", errstr, sizeof(errstr)), 0);
    assert_int_equal(config_set_pair(cfg, " name = three ", "c", errstr, sizeof(errstr)), 0);
    assert_string_equal(config_str(cfg, "name"), "three");
    assert_string_equal(config_origin(cfg, "name"), "c");
    /* An '=' in the value belongs to the value. */
    assert_int_equal(config_set_pair(cfg, "name=a=b", "d", errstr, sizeof(errstr)), 0);
    assert_string_equal(config_str(cfg, "name"), "a=b");
}

static void test_int_bounds(void **state) {
    config_t *cfg = *state;
    assert_int_equal(config_set(cfg, "workers", "1", "t", errstr, sizeof(errstr)), 0);
    assert_int_equal(config_int(cfg, "workers"), 1);
    assert_int_equal(config_set(cfg, "workers", "64", "t", errstr, sizeof(errstr)), 0);
    assert_int_equal(config_int(cfg, "workers"), 64);
    assert_int_equal(config_set(cfg, "workers", "0", "t", errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "'workers'"));
    assert_non_null(strstr(errstr, "range"));
    assert_int_equal(config_set(cfg, "workers", "65", "t", errstr, sizeof(errstr)), -1);
    assert_int_equal(config_set(cfg, "workers", "7x", "t", errstr, sizeof(errstr)), -1);
    assert_int_equal(config_set(cfg, "workers", "", "t", errstr, sizeof(errstr)), -1);
    assert_int_equal(config_set(cfg, "workers", "2.5", "t", errstr, sizeof(errstr)), -1);
    assert_int_equal(config_set(cfg, "offset", "99999999999999999999", "t", errstr,
                                sizeof(errstr)), -1);
    assert_int_equal(config_int(cfg, "workers"), 64);
    /* Without bounds (min == max) any integer goes. */
    assert_int_equal(config_set(cfg, "offset", "-1000000", "t", errstr, sizeof(errstr)), 0);
    assert_int_equal(config_int(cfg, "offset"), -1000000);
}

static void test_double_bounds(void **state) {
    config_t *cfg = *state;
    assert_int_equal(config_set(cfg, "ratio", "0", "t", errstr, sizeof(errstr)), 0);
    assert_int_equal(config_set(cfg, "ratio", "1", "t", errstr, sizeof(errstr)), 0);
    assert_int_equal(config_set(cfg, "ratio", "0.75", "t", errstr, sizeof(errstr)), 0);
    assert_true(config_double(cfg, "ratio") == 0.75);
    assert_int_equal(config_set(cfg, "ratio", "1.0001", "t", errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "'ratio'"));
    assert_int_equal(config_set(cfg, "ratio", "-0.1", "t", errstr, sizeof(errstr)), -1);
    assert_int_equal(config_set(cfg, "ratio", "nan", "t", errstr, sizeof(errstr)), -1);
    assert_int_equal(config_set(cfg, "ratio", "inf", "t", errstr, sizeof(errstr)), -1);
    assert_int_equal(config_set(cfg, "ratio", "half", "t", errstr, sizeof(errstr)), -1);
    assert_true(config_double(cfg, "ratio") == 0.75);
}

static void test_bool_parsing(void **state) {
    config_t *cfg = *state;
    static const char *const yes[] = {"true", "yes", "1"};
    static const char *const no[] = {"false", "no", "0"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(config_set(cfg, "verbose", yes[i], "t", errstr, sizeof(errstr)), 0);
        assert_true(config_bool(cfg, "verbose"));
        assert_int_equal(config_set(cfg, "verbose", no[i], "t", errstr, sizeof(errstr)), 0);
        assert_false(config_bool(cfg, "verbose"));
    }
    assert_int_equal(config_set(cfg, "verbose", "maybe", "t", errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "'verbose'"));
    assert_int_equal(config_set(cfg, "verbose", "", "t", errstr, sizeof(errstr)), -1);
    assert_int_equal(config_set(cfg, "verbose", "2", "t", errstr, sizeof(errstr)), -1);
    assert_false(config_bool(cfg, "verbose"));
}

static void test_required_keys(void **state) {
    config_t *cfg = *state;
    assert_int_equal(config_check_required(cfg, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "'token'"));
    assert_non_null(strstr(errstr, "TEST_CONFIG_TOKEN"));
    /* An empty value does not count as set. */
    assert_int_equal(config_set(cfg, "token", "", "t", errstr, sizeof(errstr)), 0);
    assert_int_equal(config_check_required(cfg, errstr, sizeof(errstr)), -1);
    setenv("TEST_CONFIG_TOKEN", "s3cret", 1);
    assert_int_equal(config_load_env(cfg, errstr, sizeof(errstr)), 0);
    assert_int_equal(config_check_required(cfg, errstr, sizeof(errstr)), 0);
    unsetenv("TEST_CONFIG_TOKEN");
}

typedef struct kafka_seen {
    char names[8][64];
    char values[8][64];
    size_t count;
} kafka_seen_t;

static int kafka_collect(void *opaque, const char *name, const char *value, char *err,
                         size_t errlen) {
    (void)err;
    (void)errlen;
    kafka_seen_t *seen = opaque;
    assert_true(seen->count < 8);
    snprintf(seen->names[seen->count], 64, "%s", name);
    snprintf(seen->values[seen->count], 64, "%s", value);
    seen->count++;
    return 0;
}

static const char *kafka_seen_get(const kafka_seen_t *seen, const char *name) {
    for (size_t i = 0; i < seen->count; i++) {
        if (strcmp(seen->names[i], name) == 0) return seen->values[i];
    }
    return NULL;
}

static void test_kafka_pass_through(void **state) {
    config_t *cfg = *state;
    char path[64];
    temp_file_write(path, "kafka.compression.codec = lz4\nkafka.linger.ms=5\nworkers=2\n");
    assert_int_equal(config_load_file(cfg, path, false, errstr, sizeof(errstr)), 0);
    assert_int_equal(config_set_pair(cfg, "kafka.bootstrap.servers=broker:9092", "-X", errstr,
                                     sizeof(errstr)), 0);
    kafka_seen_t seen = {0};
    assert_int_equal(config_kafka_foreach(cfg, kafka_collect, &seen, errstr, sizeof(errstr)), 0);
    assert_int_equal(seen.count, 3);
    assert_string_equal(kafka_seen_get(&seen, "compression.codec"), "lz4");
    assert_string_equal(kafka_seen_get(&seen, "linger.ms"), "5");
    assert_string_equal(kafka_seen_get(&seen, "bootstrap.servers"), "broker:9092");
    assert_null(kafka_seen_get(&seen, "workers"));
    char where[128];
    snprintf(where, sizeof(where), "%s:2", path);
    assert_string_equal(config_origin(cfg, "kafka.linger.ms"), where);
    unlink(path);
}

static void test_kafka_empty_property_rejected(void **state) {
    config_t *cfg = *state;
    assert_int_equal(config_set_pair(cfg, "kafka.=x", "-X", errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "kafka."));
}

static void test_undeclared_key_rejected(void **state) {
    config_t *cfg = *state;
    assert_int_equal(config_set(cfg, "redis.timeout", "5", "-X", errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "'redis.timeout'"));
    assert_non_null(strstr(errstr, "-X"));
    /* "kafka" without the dot is not the pass-through prefix. */
    assert_int_equal(config_set(cfg, "kafkax.acks", "all", "-X", errstr, sizeof(errstr)), -1);
    kafka_seen_t seen = {0};
    assert_int_equal(config_kafka_foreach(cfg, kafka_collect, &seen, errstr, sizeof(errstr)), 0);
    assert_null(kafka_seen_get(&seen, "acks"));
    assert_null(config_origin(cfg, "redis.timeout"));
}

static int kafka_refuse(void *opaque, const char *name, const char *value, char *err,
                        size_t errlen) {
    (void)opaque;
    snprintf(err, errlen, "refused %s=%s", name, value);
    return -1;
}

static void test_kafka_callback_error_stops(void **state) {
    config_t *cfg = *state;
    assert_int_equal(config_kafka_foreach(cfg, kafka_refuse, NULL, errstr, sizeof(errstr)), -1);
    assert_string_equal(errstr, "refused bootstrap.servers=127.0.0.1:9092");
}

static void test_origin_sources(void **state) {
    config_t *cfg = *state;
    assert_string_equal(config_origin(cfg, "name"), "default");
    setenv("TEST_CONFIG_NAME", "from-env", 1);
    assert_int_equal(config_load_env(cfg, errstr, sizeof(errstr)), 0);
    assert_string_equal(config_origin(cfg, "name"), "env TEST_CONFIG_NAME");
    assert_string_equal(config_origin(cfg, "workers"), "default");
    assert_int_equal(config_set(cfg, "name", "cli", "command line", errstr, sizeof(errstr)), 0);
    assert_string_equal(config_origin(cfg, "name"), "command line");
    unsetenv("TEST_CONFIG_NAME");
}

/* Runs fn in a child and returns its wait status. */
static int child_status(void (*fn)(config_t *), config_t *cfg) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Keep the expected abort message out of the test output. */
        if (freopen("/dev/null", "w", stderr) == NULL) _exit(2);
        fn(cfg);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void get_undeclared(config_t *cfg) { (void)config_str(cfg, "no.such.key"); }
static void get_wrong_type(config_t *cfg) { (void)config_int(cfg, "name"); }

static void test_getter_misuse_aborts(void **state) {
    config_t *cfg = *state;
    int status = child_status(get_undeclared, cfg);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    status = child_status(get_wrong_type, cfg);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_getter_misuse_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_applied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_without_own_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_loaded_with_comments_and_blank_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_bad_value_names_key_and_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_unknown_key_names_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_line_without_equals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_overrides_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_bad_value_names_variable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_file_variant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_file_errors_name_variable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_last_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_double_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bool_parsing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_required_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_pass_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_empty_property_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undeclared_key_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_callback_error_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_origin_sources, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
