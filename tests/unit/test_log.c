/* Unit tests of common/log: every line written is one JSON object with ts,
 * level, service and msg, whatever bytes the message holds; lines below the
 * level are not written; structured fields are merged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

typedef struct log_capture {
    int fd;
    char path[64];
} log_capture_t;

static int setup(void **state) {
    log_capture_t *cap = calloc(1, sizeof(*cap));
    assert_non_null(cap);
    snprintf(cap->path, sizeof(cap->path), "/tmp/test_log.XXXXXX");
    cap->fd = mkstemp(cap->path);
    assert_true(cap->fd >= 0);
    log_set_fd(cap->fd);
    log_init("test-svc", LOG_LEVEL_INFO);
    *state = cap;
    return 0;
}

static int teardown(void **state) {
    log_capture_t *cap = *state;
    log_set_fd(STDOUT_FILENO);
    close(cap->fd);
    unlink(cap->path);
    free(cap);
    return 0;
}

/* Everything written so far; the caller frees it. */
static char *capture_read(const log_capture_t *cap) {
    off_t size = lseek(cap->fd, 0, SEEK_END);
    assert_true(size >= 0);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(pread(cap->fd, text, (size_t)size, 0), size);
    text[size] = '\0';
    return text;
}

/* Splits the capture into lines, checks each is a JSON object with the four
 * fields and returns them as an array (the caller decrefs). */
static json_t *capture_lines(const log_capture_t *cap) {
    char *text = capture_read(cap);
    json_t *lines = json_array();
    char *p = text;
    while (*p != '\0') {
        char *nl = strchr(p, '\n');
        assert_non_null(nl); /* every line is terminated */
        json_error_t err;
        json_t *obj = json_loadb(p, (size_t)(nl - p), 0, &err);
        if (obj == NULL) fail_msg("not JSON: %.*s (%s)", (int)(nl - p), p, err.text);
        assert_true(json_is_object(obj));
        assert_true(json_is_string(json_object_get(obj, "ts")));
        assert_true(json_is_string(json_object_get(obj, "level")));
        assert_true(json_is_string(json_object_get(obj, "service")));
        assert_true(json_is_string(json_object_get(obj, "msg")));
        json_array_append_new(lines, obj);
        p = nl + 1;
    }
    free(text);
    return lines;
}

static const char *field(json_t *lines, size_t i, const char *key) {
    return json_string_value(json_object_get(json_array_get(lines, i), key));
}

static void test_line_shape(void **state) {
    log_capture_t *cap = *state;
    log_info("started %d workers", 4);
    json_t *lines = capture_lines(cap);
    assert_int_equal(json_array_size(lines), 1);
    assert_string_equal(field(lines, 0, "level"), "info");
    assert_string_equal(field(lines, 0, "service"), "test-svc");
    assert_string_equal(field(lines, 0, "msg"), "started 4 workers");
    /* RFC 3339 UTC with milliseconds: 2024-11-27T20:54:01.123Z */
    const char *ts = field(lines, 0, "ts");
    assert_int_equal(strlen(ts), 24);
    for (size_t i = 0; i < 24; i++) {
        char c = ts[i];
        switch (i) {
        case 4: case 7: assert_int_equal(c, '-'); break;
        case 10: assert_int_equal(c, 'T'); break;
        case 13: case 16: assert_int_equal(c, ':'); break;
        case 19: assert_int_equal(c, '.'); break;
        case 23: assert_int_equal(c, 'Z'); break;
        default: assert_true(isdigit((unsigned char)c));
        }
    }
    json_decref(lines);
}

static void test_levels_filtered(void **state) {
    log_capture_t *cap = *state;
    log_debug("hidden %s", "detail");
    log_write(LOG_LEVEL_DEBUG, "hidden too");
    log_write_fields(LOG_LEVEL_DEBUG, json_pack("{s:s}", "k", "v"), "hidden fields");
    log_info("shown info");
    log_warn("shown warn");
    log_error("shown error");
    log_fatal("shown fatal");
    json_t *lines = capture_lines(cap);
    assert_int_equal(json_array_size(lines), 4);
    assert_string_equal(field(lines, 0, "level"), "info");
    assert_string_equal(field(lines, 1, "level"), "warn");
    assert_string_equal(field(lines, 2, "level"), "error");
    assert_string_equal(field(lines, 3, "level"), "fatal");
    json_decref(lines);

    log_init("test-svc", LOG_LEVEL_ERROR);
    log_warn("now hidden");
    log_error("now shown");
    lines = capture_lines(cap);
    assert_int_equal(json_array_size(lines), 5);
    assert_string_equal(field(lines, 4, "msg"), "now shown");
    json_decref(lines);

    log_init("test-svc", LOG_LEVEL_DEBUG);
    log_debug("debug shown");
    lines = capture_lines(cap);
    assert_int_equal(json_array_size(lines), 6);
    assert_string_equal(field(lines, 5, "level"), "debug");
    json_decref(lines);
}

static void test_special_characters_escaped(void **state) {
    log_capture_t *cap = *state;
    const char *msg = "say \"hi\"\nsecond line\r\t\\ end \x01 caf\xc3\xa9 \xe2\x82\xac";
    log_info("%s", msg);
    json_t *lines = capture_lines(cap);
    /* The newline in the message did not split the line. */
    assert_int_equal(json_array_size(lines), 1);
    assert_string_equal(field(lines, 0, "msg"), msg);
    json_decref(lines);
}

static void test_invalid_utf8_still_one_json_line(void **state) {
    log_capture_t *cap = *state;
    log_info("bad \xff\xfe bytes \xc3 and \xed\xa0\x80 caf\xc3\xa9 end");
    log_write_fields(LOG_LEVEL_WARN, json_pack("{s:s}", "task_id", "t1"), "raw \x80\x81 data");
    json_t *lines = capture_lines(cap);
    assert_int_equal(json_array_size(lines), 2);
    const char *m = field(lines, 0, "msg");
    assert_non_null(strstr(m, "bad "));
    assert_non_null(strstr(m, " bytes "));
    assert_non_null(strstr(m, " caf\xc3\xa9 end")); /* valid characters kept */
    assert_non_null(strstr(field(lines, 1, "msg"), " data"));
    assert_string_equal(field(lines, 1, "task_id"), "t1");
    json_decref(lines);
}

static void test_long_message_cut_inside_character(void **state) {
    log_capture_t *cap = *state;
    /* log_write formats into 4096 bytes: the cut falls inside the two-byte
     * character, leaving a lone lead byte. */
    char msg[4097];
    memset(msg, 'a', 4094);
    memcpy(msg + 4094, "\xc3\xa9", 3);
    log_info("%s", msg);
    json_t *lines = capture_lines(cap);
    assert_int_equal(json_array_size(lines), 1);
    assert_true(strncmp(field(lines, 0, "msg"), msg, 4094) == 0);
    json_decref(lines);
}

static void test_fields_merged(void **state) {
    log_capture_t *cap = *state;
    log_write_fields(LOG_LEVEL_WARN,
                     json_pack("{s:s, s:i, s:b, s:s}", "task_id", "t-42", "attempt", 3, "retry",
                               1, "msg", "must not replace the message"),
                     "lease expired");
    log_write_fields(LOG_LEVEL_INFO, NULL, "no fields");
    json_t *lines = capture_lines(cap);
    assert_int_equal(json_array_size(lines), 2);
    json_t *first = json_array_get(lines, 0);
    assert_string_equal(field(lines, 0, "msg"), "lease expired");
    assert_string_equal(field(lines, 0, "level"), "warn");
    assert_string_equal(field(lines, 0, "service"), "test-svc");
    assert_string_equal(field(lines, 0, "task_id"), "t-42");
    assert_int_equal(json_integer_value(json_object_get(first, "attempt")), 3);
    assert_true(json_is_true(json_object_get(first, "retry")));
    assert_int_equal(json_object_size(json_array_get(lines, 1)), 4);
    json_decref(lines);
}

static void test_level_parse(void **state) {
    (void)state;
    static const struct {
        const char *name;
        log_level_t level;
    } ok[] = {{"debug", LOG_LEVEL_DEBUG}, {"info", LOG_LEVEL_INFO},   {"warn", LOG_LEVEL_WARN},
              {"error", LOG_LEVEL_ERROR}, {"INFO", LOG_LEVEL_INFO},   {"Warn", LOG_LEVEL_WARN}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        log_level_t level = LOG_LEVEL_FATAL;
        assert_int_equal(log_level_parse(ok[i].name, &level), 0);
        assert_int_equal(level, ok[i].level);
    }
    static const char *const bad[] = {"", "verbose", "inf", "infos", "0", " info"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        log_level_t level = LOG_LEVEL_ERROR;
        assert_int_equal(log_level_parse(bad[i], &level), -1);
        assert_int_equal(level, LOG_LEVEL_ERROR); /* untouched */
    }
    for (log_level_t l = LOG_LEVEL_DEBUG; l <= LOG_LEVEL_ERROR; l++) {
        log_level_t back;
        assert_int_equal(log_level_parse(log_level_name(l), &back), 0);
        assert_int_equal(back, l);
    }
}

#define WRITERS 4
#define LINES_PER_WRITER 250

static void *writer_run(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < LINES_PER_WRITER; i++)
        log_write_fields(LOG_LEVEL_INFO, json_pack("{s:i, s:i}", "writer", id, "seq", i),
                         "a line long enough that two of them would interleave if split "
                         "over several writes: 0123456789abcdefghijklmnopqrstuvwxyz");
    return NULL;
}

static void test_threads_do_not_interleave(void **state) {
    log_capture_t *cap = *state;
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, writer_run, (void *)(intptr_t)i), 0);
    for (int i = 0; i < WRITERS; i++) pthread_join(th[i], NULL);
    json_t *lines = capture_lines(cap);
    assert_int_equal(json_array_size(lines), WRITERS * LINES_PER_WRITER);
    int next[WRITERS] = {0};
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) {
        int w = (int)json_integer_value(json_object_get(line, "writer"));
        assert_in_range(w, 0, WRITERS - 1);
        /* Each writer's lines come out in its own order. */
        assert_int_equal(json_integer_value(json_object_get(line, "seq")), next[w]++);
    }
    json_decref(lines);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels_filtered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_characters_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8_still_one_json_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_message_cut_inside_character, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields_merged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_do_not_interleave, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
