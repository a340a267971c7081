/* Integration: annot-dispatcher's API as people meet it, so far: a user
 * made by `annotctl users add` authenticates with the token it printed;
 * GET /v1/me; POST /v1/check gives the checker's findings; and every kind
 * of bad input gets its 4xx with the failing field while the server stays
 * up; SIGTERM stops it cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "itest.h"

static char schema[64], token[128];
static int http_port, ops_port;
static pid_t dispatcher;

static int setup(void **state) {
    (void)state;
    if (itest_setup("test_dispatcher") != 0) return -1;
    snprintf(schema, sizeof(schema), "disp_%s", itest_run);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    itest_kill_children(NULL);
    itest_teardown();
    return 0;
}

static void test_start_and_authenticate(void **state) {
    (void)state;
    itest_user_add(schema, "annotator", NULL, token, sizeof(token));
    dispatcher = itest_dispatcher_start(schema, &http_port, &ops_port, NULL);
    char body[1 << 16];
    assert_int_equal(itest_http("GET", http_port, "/v1/me", token, NULL, 0, body, sizeof(body)), 200);
    json_t *me = json_loads(body, 0, NULL);
    assert_non_null(me);
    assert_string_equal(json_string_value(json_object_get(me, "role")), "annotator");
    assert_string_equal(json_string_value(json_object_get(me, "status")), "active");
    assert_string_equal(json_string_value(json_object_get(me, "name")), "T annotator");
    assert_true(json_is_null(json_object_get(me, "rolling_quality")));
    json_decref(me);
}

/* The error code of an error body. */
static void assert_error(int status, const char *body, int want_status, const char *want_code, const char *in_message) {
    assert_int_equal(status, want_status);
    json_t *e = json_loads(body, 0, NULL);
    if (e == NULL) fail_msg("error body is not JSON: %s", body);
    assert_string_equal(json_string_value(json_object_get(e, "error")), want_code);
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(msg);
    if (in_message && strstr(msg, in_message) == NULL) fail_msg("message '%s' lacks '%s'", msg, in_message);
    json_decref(e);
}

static void test_check_before_submitting(void **state) {
    (void)state;
    const char *req = "{\"task\":{\"task_id\":\"t1\",\"kind\":\"production\",\"image_uri\":\"s3://i/1.jpg\","
                      "\"main_object\":\"curry rice\",\"locale\":\"en-US\"},"
                      "\"description\":\"A beautiful plate of curry rice. I think it is delicious.\"}";
    char body[1 << 16];
    assert_int_equal(itest_http("POST", http_port, "/v1/check", token, req, strlen(req), body, sizeof(body)), 200);
    json_t *r = json_loads(body, 0, NULL);
    assert_non_null(r);
    json_t *findings = json_object_get(r, "findings");
    assert_true(json_is_array(findings));
    int subjective = 0, speculation = 0;
    size_t i;
    json_t *f;
    json_array_foreach(findings, i, f) {
        const char *rule = json_string_value(json_object_get(f, "rule"));
        subjective += strcmp(rule, "subjective_language") == 0;
        speculation += strcmp(rule, "speculation") == 0;
        /* The span points at the words in the original text. */
        if (strcmp(rule, "subjective_language") == 0 && json_integer_value(json_object_get(f, "start")) == 2)
            assert_int_equal(json_integer_value(json_object_get(f, "end")), 11); /* "beautiful" */
    }
    assert_true(subjective >= 2);
    assert_true(speculation >= 1);
    assert_true(json_real_value(json_object_get(r, "score")) < 1.0);
    json_decref(r);
}

/* The head of the answer to a bodiless request (status line and headers). */
static void http_head(const char *method, const char *path, char *out, size_t len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    char req[512];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer %s\r\n\r\n",
                     method, path, token);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t got = 0;
    ssize_t r;
    while (got < len - 1 && (r = read(fd, out + got, len - 1 - got)) > 0) got += (size_t)r;
    out[got] = '\0';
    close(fd);
    char *end = strstr(out, "\r\n\r\n");
    if (end) end[2] = '\0';
}

/* method on path gets a 405 whose Allow header is exactly allow. */
static void assert_405_allow(const char *method, const char *path, const char *allow) {
    char head[4096], want[64];
    http_head(method, path, head, sizeof(head));
    snprintf(want, sizeof(want), "\r\nAllow: %s\r\n", allow);
    if (strstr(head, " 405 ") == NULL || strcasestr(head, want) == NULL)
        fail_msg("%s %s: want 405 with Allow: %s, got:\n%s", method, path, allow, head);
}

/* A 405 names the methods the path has (RFC 9110: Allow is required), HEAD
 * wherever GET is; a 200 has no Allow header.  HEAD is answered as GET. */
static void test_method_not_allowed_has_allow(void **state) {
    (void)state;
    assert_405_allow("DELETE", "/v1/me", "GET, HEAD");
    assert_405_allow("PUT", "/v1/screening", "GET, HEAD, POST");
    assert_405_allow("GET", "/v1/leases/some-lease/heartbeat", "POST");
    assert_405_allow("HEAD", "/v1/leases/some-lease/heartbeat", "POST");
    char head[4096];
    http_head("HEAD", "/v1/me", head, sizeof(head));
    assert_non_null(strstr(head, " 200 "));
    assert_non_null(strcasestr(head, "\r\nContent-Type: application/json\r\n"));
    http_head("GET", "/v1/me", head, sizeof(head));
    assert_non_null(strstr(head, " 200 "));
    assert_null(strcasestr(head, "\r\nAllow:"));
}

static void test_bad_input_gets_4xx_and_server_stays_up(void **state) {
    (void)state;
    char body[1 << 16];
    assert_error(itest_http("POST", http_port, "/v1/check", NULL, "{}", 2, body, sizeof(body)), body, 401,
                 "unauthorized", NULL);
    assert_error(itest_http("POST", http_port, "/v1/check", "at_wrongwrongwrongwrongwrongwrongwrongwrongwro", "{}", 2,
                            body, sizeof(body)),
                 body, 401, "unauthorized", NULL);
    assert_error(itest_http("POST", http_port, "/v1/check", "garbage", "{}", 2, body, sizeof(body)), body, 401,
                 "unauthorized", NULL);
    assert_error(itest_http("POST", http_port, "/v1/check", token, "{\"task\":", 8, body, sizeof(body)), body, 400,
                 "invalid_json", NULL);
    assert_error(itest_http("POST", http_port, "/v1/check", token, "[1,2]", 5, body, sizeof(body)), body, 400,
                 "invalid_json", "object");
    static const char bad_utf8[] = "{\"task\":{},\"description\":\"\xff\xfe\"}";
    assert_error(itest_http("POST", http_port, "/v1/check", token, bad_utf8, sizeof(bad_utf8) - 1, body, sizeof(body)),
                 body, 400, "invalid_json", NULL);
    const char *unknown = "{\"task\":{\"task_id\":\"t\",\"kind\":\"production\",\"main_object\":\"x\",\"colour\":1},"
                          "\"description\":\"x\"}";
    assert_error(itest_http("POST", http_port, "/v1/check", token, unknown, strlen(unknown), body, sizeof(body)), body,
                 400, "invalid_field", "task.colour");
    const char *wrong_type = "{\"task\":{\"task_id\":\"t\",\"kind\":\"production\",\"main_object\":7},\"description\":\"x\"}";
    assert_error(itest_http("POST", http_port, "/v1/check", token, wrong_type, strlen(wrong_type), body, sizeof(body)),
                 body, 400, "invalid_field", "task.main_object");
    size_t big = 10u * 1024 * 1024;
    char *huge = malloc(big);
    memset(huge, 'a', big);
    assert_error(itest_http("POST", http_port, "/v1/check", token, huge, big, body, sizeof(body)), body, 413,
                 "too_large", NULL);
    free(huge);
    assert_error(itest_http("GET", http_port, "/v1/nothing", token, NULL, 0, body, sizeof(body)), body, 404,
                 "not_found", NULL);
    assert_error(itest_http("DELETE", http_port, "/v1/me", token, NULL, 0, body, sizeof(body)), body, 405,
                 "method_not_allowed", NULL);
    /* Still serving. */
    assert_int_equal(itest_http("GET", http_port, "/v1/me", token, NULL, 0, body, sizeof(body)), 200);
    assert_int_equal(itest_http_get(ops_port, "/healthz", body, sizeof(body)), 200);
    assert_int_equal(itest_http_get(ops_port, "/metrics", body, sizeof(body)), 200);
    assert_non_null(strstr(body, "annot_http_request_seconds_count{route=\"/v1/check\",status=\"401\"} 3"));
    /* The server's own 413 (the handler never ran) is counted too. */
    assert_non_null(strstr(body, "annot_http_request_seconds_count{route=\"/v1/check\",status=\"413\"} 1"));
}

static void test_sigterm_stops_cleanly(void **state) {
    (void)state;
    itest_stop_cleanly(dispatcher);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_and_authenticate),
        cmocka_unit_test(test_check_before_submitting),
        cmocka_unit_test(test_bad_input_gets_4xx_and_server_stays_up),
        cmocka_unit_test(test_method_not_allowed_has_allow),
        cmocka_unit_test(test_sigterm_stops_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
