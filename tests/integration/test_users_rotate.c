/* Integration: `annotctl users rotate USER_ID` gives a person a new bearer
 * token; against a running dispatcher the old token is refused at once and
 * the new one is the same person.  An unknown user id fails, naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "itest.h"

static char schema[64];

static int setup(void **state) {
    (void)state;
    if (itest_setup("test_users_rotate") != 0) return -1;
    snprintf(schema, sizeof(schema), "rot_%s", itest_run);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    itest_kill_children(NULL);
    itest_teardown();
    return 0;
}

/* Runs annotctl with args; its output's last line into last; exit status. */
static int annotctl_run(const char *args, char *last, size_t len) {
    char cmd[512], line[512];
    snprintf(cmd, sizeof(cmd), "bin/annotctl -X dispatcher.schema=%s %s 2>&1", schema, args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    last[0] = '\0';
    while (fgets(line, sizeof(line), f)) snprintf(last, len, "%s", line);
    last[strcspn(last, "\n")] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void me_user_id(int port, const char *token, char *out, size_t len) {
    char body[4096];
    assert_int_equal(itest_http("GET", port, "/v1/me", token, NULL, 0, body, sizeof(body)), 200);
    json_t *me = json_loads(body, 0, NULL);
    assert_non_null(me);
    snprintf(out, len, "%s", json_string_value(json_object_get(me, "user_id")));
    json_decref(me);
}

static void test_rotated_token_replaces_the_old_one(void **state) {
    (void)state;
    char old_token[128], new_token[512], user_id[128], again[128], out[512], body[4096];
    itest_user_add(schema, "validator", NULL, old_token, sizeof(old_token));
    int http_port, ops_port;
    pid_t dispatcher = itest_dispatcher_start(schema, &http_port, &ops_port, NULL);
    me_user_id(http_port, old_token, user_id, sizeof(user_id));

    char args[256];
    snprintf(args, sizeof(args), "users rotate %s", user_id);
    assert_int_equal(annotctl_run(args, new_token, sizeof(new_token)), 0);
    assert_true(strncmp(new_token, "at_", 3) == 0);
    assert_string_not_equal(new_token, old_token);

    assert_int_equal(itest_http("GET", http_port, "/v1/me", old_token, NULL, 0, body, sizeof(body)), 401);
    me_user_id(http_port, new_token, again, sizeof(again));
    assert_string_equal(again, user_id);

    assert_int_equal(annotctl_run("users rotate no-such-user", out, sizeof(out)), 1);
    assert_non_null(strstr(out, "no user no-such-user"));
    assert_int_equal(annotctl_run("users rotate", out, sizeof(out)), 2);
    /* The token of the failed rotations was never stored: the new one holds. */
    assert_int_equal(itest_http("GET", http_port, "/v1/me", new_token, NULL, 0, body, sizeof(body)), 200);
    itest_stop_cleanly(dispatcher);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotated_token_replaces_the_old_one),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
