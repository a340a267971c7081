/* Unit tests of common/http: the project's server started in-process on
 * 127.0.0.1 and spoken to by a plain socket client, HTTP/1.1 with
 * Connection: close, so what is checked is what a real client receives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"

#define MAX_BODY 1024

/* What the handler saw of the last request. */
typedef struct seen {
    pthread_mutex_t lock;
    int calls;
    char method[16];
    char path[128];
    char body[MAX_BODY + 1];
    size_t body_len;
    char query_q[64];
    char query_missing[8];
    char header_x[64];
    char header_missing[8];
    /* /slow: posted on entry, waited on before answering */
    sem_t entered, release;
} seen_t;

typedef struct fixture {
    http_server_t *srv;
    int port;
    seen_t seen;
} fixture_t;

static void copy_or_mark(char *dst, size_t len, const char *src) {
    snprintf(dst, len, "%s", src ? src : "<null>");
}

static void handler(void *opaque, const http_request_t *req, http_response_t *resp) {
    seen_t *seen = opaque;
    pthread_mutex_lock(&seen->lock);
    seen->calls++;
    snprintf(seen->method, sizeof(seen->method), "%s", req->method);
    snprintf(seen->path, sizeof(seen->path), "%s", req->path);
    seen->body_len = req->body_len < MAX_BODY ? req->body_len : MAX_BODY;
    memcpy(seen->body, req->body, seen->body_len);
    copy_or_mark(seen->query_q, sizeof(seen->query_q), http_request_query(req, "q"));
    copy_or_mark(seen->query_missing, sizeof(seen->query_missing), http_request_query(req, "nope"));
    copy_or_mark(seen->header_x, sizeof(seen->header_x), http_request_header(req, "x-test-header"));
    copy_or_mark(seen->header_missing, sizeof(seen->header_missing),
                 http_request_header(req, "X-Nope"));
    pthread_mutex_unlock(&seen->lock);

    if (strcmp(req->path, "/text") == 0) {
        http_response_text(resp, 200, "text/plain; charset=utf-8", "hello\n");
    } else if (strcmp(req->path, "/json") == 0) {
        http_response_json(resp, 201, json_pack("{s:s, s:i}", "task_id", "t-1", "n", 2));
    } else if (strcmp(req->path, "/error") == 0) {
        http_response_error(resp, 404, "not_found", "no task '%s'", "t-9");
    } else if (strcmp(req->path, "/allow") == 0) {
        snprintf(resp->allow, sizeof(resp->allow), "GET, POST");
        http_response_error(resp, 405, "method_not_allowed", "not here");
    } else if (strcmp(req->path, "/echo") == 0) {
        resp->status = 200;
        resp->body = malloc(req->body_len ? req->body_len : 1);
        memcpy(resp->body, req->body, req->body_len);
        resp->body_len = req->body_len;
        resp->content_type = "application/octet-stream";
    } else if (strcmp(req->path, "/slow") == 0) {
        sem_post(&seen->entered);
        sem_wait(&seen->release);
        http_response_text(resp, 200, "text/plain", "finished");
    } else if (strcmp(req->path, "/silent") == 0) {
        /* answers nothing */
    } else {
        http_response_error(resp, 404, "not_found", "no route");
    }
}

static int setup_threads(void **state, unsigned threads) {
    fixture_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    pthread_mutex_init(&fx->seen.lock, NULL);
    sem_init(&fx->seen.entered, 0, 0);
    sem_init(&fx->seen.release, 0, 0);
    char errstr[256];
    fx->srv = http_server_start("127.0.0.1:0", MAX_BODY, threads, handler, &fx->seen, errstr,
                                sizeof(errstr));
    if (fx->srv == NULL) fail_msg("http_server_start: %s", errstr);
    fx->port = http_server_port(fx->srv);
    assert_true(fx->port > 0);
    *state = fx;
    return 0;
}

static int setup(void **state) { return setup_threads(state, 2); }
static int setup_thread_per_connection(void **state) { return setup_threads(state, 0); }

static int teardown(void **state) {
    fixture_t *fx = *state;
    http_server_stop(fx->srv, 1000); /* NULL after a test stopped it itself */
    sem_destroy(&fx->seen.entered);
    sem_destroy(&fx->seen.release);
    pthread_mutex_destroy(&fx->seen.lock);
    free(fx);
    return 0;
}

/* The parts of an answer a client looks at. */
typedef struct answer {
    int status;
    char content_type[128];
    char *body; /* NUL-terminated; body_len may include NULs */
    size_t body_len;
    long content_length; /* -1 when not sent */
    char *raw;
} answer_t;

static void answer_free(answer_t *a) {
    free(a->raw);
    memset(a, 0, sizeof(*a));
}

static int client_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Sends request (len bytes) and reads the whole answer until the server
 * closes the connection.  No cmocka assertions here (the slow client runs
 * on its own thread): a failed exchange gives status 0 and an empty body,
 * which the callers' checks catch. */
static answer_t http_exchange(int port, const char *request, size_t len) {
    answer_t a = {.content_length = -1};
    a.raw = calloc(1, 1);
    a.body = a.raw;
    int fd = client_connect(port);
    if (fd < 0) return a;
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, request + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += (size_t)w;
    }
    size_t cap = 4096, n = 0;
    a.raw = realloc(a.raw, cap + 1);
    for (;;) {
        if (n == cap) a.raw = realloc(a.raw, (cap *= 2) + 1);
        ssize_t r = recv(fd, a.raw + n, cap - n, 0);
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    a.raw[n] = '\0';
    a.body = a.raw + n;
    char *end = strstr(a.raw, "\r\n\r\n");
    if (end == NULL || sscanf(a.raw, "HTTP/1.1 %d", &a.status) != 1) {
        a.status = 0;
        return a;
    }
    a.body = end + 4;
    a.body_len = n - (size_t)(a.body - a.raw);
    /* Content-Type, case-insensitively, among the headers. */
    for (char *line = strstr(a.raw, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, "Content-Type:", 13) == 0) {
            const char *v = line + 13;
            while (*v == ' ') v++;
            size_t vl = (size_t)(strstr(v, "\r\n") - v);
            snprintf(a.content_type, sizeof(a.content_type), "%.*s", (int)vl, v);
        }
        if (strncasecmp(line, "Content-Length:", 15) == 0) a.content_length = strtol(line + 15, NULL, 10);
    }
    return a;
}

/* The answer is complete: a status line, and as many body bytes as the
 * server announced. */
static void answer_complete_check(const answer_t *a) {
    assert_true(a->status >= 100);
    if (a->content_length >= 0) assert_int_equal(a->content_length, a->body_len);
}

static answer_t http_get(int port, const char *target, const char *extra_headers) {
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n", target,
                     extra_headers ? extra_headers : "");
    return http_exchange(port, req, (size_t)n);
}

static answer_t http_post(int port, const char *target, const char *body, size_t len) {
    size_t cap = len + 512;
    char *req = malloc(cap);
    int n = snprintf(req, cap,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Type: application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
                     target, len);
    memcpy(req + n, body, len);
    answer_t a = http_exchange(port, req, (size_t)n + len);
    free(req);
    return a;
}

static int calls(fixture_t *fx) {
    pthread_mutex_lock(&fx->seen.lock);
    int c = fx->seen.calls;
    pthread_mutex_unlock(&fx->seen.lock);
    return c;
}

static void test_text_response(void **state) {
    fixture_t *fx = *state;
    answer_t a = http_get(fx->port, "/text", NULL);
    answer_complete_check(&a);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.content_type, "text/plain; charset=utf-8");
    assert_string_equal(a.body, "hello\n");
    assert_string_equal(fx->seen.method, "GET");
    assert_string_equal(fx->seen.path, "/text");
    answer_free(&a);
}

static void test_json_response(void **state) {
    fixture_t *fx = *state;
    answer_t a = http_get(fx->port, "/json", NULL);
    answer_complete_check(&a);
    assert_int_equal(a.status, 201);
    assert_string_equal(a.content_type, "application/json");
    json_t *body = json_loads(a.body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "task_id")), "t-1");
    assert_int_equal(json_integer_value(json_object_get(body, "n")), 2);
    json_decref(body);
    answer_free(&a);
}

static void test_error_body_shape(void **state) {
    fixture_t *fx = *state;
    answer_t a = http_get(fx->port, "/error", NULL);
    answer_complete_check(&a);
    assert_int_equal(a.status, 404);
    assert_string_equal(a.content_type, "application/json");
    json_t *body = json_loads(a.body, 0, NULL);
    assert_non_null(body);
    assert_int_equal(json_object_size(body), 2);
    assert_string_equal(json_string_value(json_object_get(body, "error")), "not_found");
    assert_string_equal(json_string_value(json_object_get(body, "message")), "no task 't-9'");
    json_decref(body);
    answer_free(&a);
}

/* A 405 carries the Allow header its handler named (RFC 9110 requires
 * one), with HEAD wherever GET is; other answers have none. */
static void test_allow_header(void **state) {
    fixture_t *fx = *state;
    answer_t a = http_get(fx->port, "/allow", NULL);
    answer_complete_check(&a);
    assert_int_equal(a.status, 405);
    assert_non_null(strcasestr(a.raw, "\r\nAllow: GET, HEAD, POST\r\n"));
    answer_free(&a);
    a = http_get(fx->port, "/error", NULL);
    answer_complete_check(&a);
    assert_null(strcasestr(a.raw, "\r\nAllow:"));
    answer_free(&a);
}

/* HEAD is answered as GET without the body (RFC 9110 section 9.3.2): the
 * handler sees a GET, the client gets the status and headers of the GET,
 * Content-Length included, and no body. */
static void test_head_is_get_without_body(void **state) {
    fixture_t *fx = *state;
    static const char req[] = "HEAD /text HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    answer_t a = http_exchange(fx->port, req, sizeof(req) - 1);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.content_type, "text/plain; charset=utf-8");
    assert_int_equal(a.content_length, 6); /* "hello\n" */
    assert_int_equal(a.body_len, 0);
    pthread_mutex_lock(&fx->seen.lock);
    assert_string_equal(fx->seen.method, "GET");
    assert_string_equal(fx->seen.path, "/text");
    pthread_mutex_unlock(&fx->seen.lock);
    answer_free(&a);
}

/* The path is percent-decoded, but for %00 and %2F: a NUL would end the
 * C string the handler gets, and "/text%00x" would be served as "/text";
 * an encoded slash is data within its segment, no separator. */
static void test_path_nul_and_slash_not_decoded(void **state) {
    fixture_t *fx = *state;
    answer_t a = http_get(fx->port, "/te%78t", NULL);
    answer_complete_check(&a);
    assert_int_equal(a.status, 200);
    answer_free(&a);
    a = http_get(fx->port, "/text%00x", NULL);
    answer_complete_check(&a);
    assert_int_equal(a.status, 404);
    answer_free(&a);
    pthread_mutex_lock(&fx->seen.lock);
    assert_string_equal(fx->seen.path, "/text%00x");
    pthread_mutex_unlock(&fx->seen.lock);
    a = http_get(fx->port, "/a%2fb%2Fc%20d", NULL);
    answer_complete_check(&a);
    pthread_mutex_lock(&fx->seen.lock);
    assert_string_equal(fx->seen.path, "/a%2fb%2Fc d");
    pthread_mutex_unlock(&fx->seen.lock);
    answer_free(&a);
}

static void test_error_body_direct(void **state) {
    (void)state;
    /* The same shape without a server, with a message that is not UTF-8. */
    http_response_t resp = {0};
    http_response_error(&resp, 400, "bad_request", "field %s: %d", "priority", 7);
    assert_int_equal(resp.status, 400);
    assert_string_equal(resp.content_type, "application/json");
    assert_int_equal(resp.body_len, strlen(resp.body));
    json_t *body = json_loads(resp.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(body, "error")), "bad_request");
    assert_string_equal(json_string_value(json_object_get(body, "message")), "field priority: 7");
    json_decref(body);
    http_response_error(&resp, 422, "invalid", "bad bytes %s", "\xff\xfe");
    body = json_loads(resp.body, 0, NULL);
    assert_non_null(body);
    assert_int_equal(resp.status, 422);
    assert_string_equal(json_string_value(json_object_get(body, "error")), "invalid");
    /* Each byte that is no UTF-8 is a '?'; the rest of the message stays
     * (it was "invalid message text" as a whole). */
    assert_string_equal(json_string_value(json_object_get(body, "message")), "bad bytes ??");
    json_decref(body);
    /* Overlong forms, surrogates and a cut character are no UTF-8 either;
     * whole characters stay. */
    http_response_error(&resp, 405, "method_not_allowed", "%s", "a\xc0\xaf" "b\xed\xa0\x80" "c\xe3\x81" "d\xc3\xa9");
    body = json_loads(resp.body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "message")), "a??b???c??d\xc3\xa9");
    json_decref(body);
    free(resp.body);
}

/* A message longer than the buffer is cut at a character's end: a field
 * name of 2-, 3- and 4-byte characters, every cut position, keeps its
 * text (it used to become "invalid message text" when the cut fell inside
 * a character). */
static void test_error_long_message_cut_at_character(void **state) {
    (void)state;
    static const char *const chars[] = {"\xc3\xa9", "\xe3\x81\x82", "\xf0\x9f\x98\x80"};
    for (size_t c = 0; c < sizeof(chars) / sizeof(chars[0]); c++) {
        for (size_t pad = 0; pad < 4; pad++) {
            char field[2048];
            size_t n = 0;
            for (size_t i = 0; i < pad; i++) field[n++] = 'x';
            while (n + strlen(chars[c]) < sizeof(field) - 1) {
                memcpy(field + n, chars[c], strlen(chars[c]));
                n += strlen(chars[c]);
            }
            field[n] = '\0';
            http_response_t resp = {0};
            http_response_error(&resp, 400, "invalid_field", "%s: unknown field", field);
            json_t *body = json_loads(resp.body, 0, NULL);
            assert_non_null(body);
            const char *msg = json_string_value(json_object_get(body, "message"));
            assert_non_null(msg);
            size_t len = strlen(msg);
            /* Only the partial last character is dropped. */
            assert_true(len <= 1023 && len > 1023 - strlen(chars[c]));
            assert_memory_equal(msg, field, len);
            json_decref(body);
            free(resp.body);
        }
    }
}

static void test_query_and_headers_reach_handler(void **state) {
    fixture_t *fx = *state;
    answer_t a = http_get(fx->port, "/text?q=hello%20world&x=1", "X-Test-Header: abc-123\r\n");
    answer_complete_check(&a);
    assert_int_equal(a.status, 200);
    assert_string_equal(fx->seen.path, "/text"); /* without the query string */
    assert_string_equal(fx->seen.query_q, "hello world");
    assert_string_equal(fx->seen.query_missing, "<null>");
    assert_string_equal(fx->seen.header_x, "abc-123"); /* name matched case-insensitively */
    assert_string_equal(fx->seen.header_missing, "<null>");
    answer_free(&a);
}

static void test_body_reaches_handler(void **state) {
    fixture_t *fx = *state;
    const char body[] = "line one\0after a NUL";
    answer_t a = http_post(fx->port, "/echo", body, sizeof(body) - 1);
    answer_complete_check(&a);
    assert_int_equal(a.status, 200);
    assert_string_equal(fx->seen.method, "POST");
    assert_int_equal(fx->seen.body_len, sizeof(body) - 1);
    assert_memory_equal(fx->seen.body, body, sizeof(body) - 1);
    assert_int_equal(a.body_len, sizeof(body) - 1);
    assert_memory_equal(a.body, body, sizeof(body) - 1);
    answer_free(&a);
}

static void test_body_at_limit_accepted(void **state) {
    fixture_t *fx = *state;
    char *body = malloc(MAX_BODY);
    memset(body, 'b', MAX_BODY);
    answer_t a = http_post(fx->port, "/echo", body, MAX_BODY);
    answer_complete_check(&a);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.body_len, MAX_BODY);
    assert_int_equal(calls(fx), 1);
    answer_free(&a);
    free(body);
}

static void too_large_check(const answer_t *a) {
    answer_complete_check(a);
    assert_int_equal(a->status, 413);
    assert_string_equal(a->content_type, "application/json");
    json_t *body = json_loads(a->body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "error")), "too_large");
    assert_true(json_is_string(json_object_get(body, "message")));
    json_decref(body);
}

static void test_body_too_large_declared(void **state) {
    fixture_t *fx = *state;
    char *body = malloc(MAX_BODY + 1);
    memset(body, 'b', MAX_BODY + 1);
    answer_t a = http_post(fx->port, "/echo", body, MAX_BODY + 1);
    too_large_check(&a);
    assert_int_equal(calls(fx), 0); /* the handler never saw it */
    answer_free(&a);
    free(body);
}

/* The observer sees every answer, the server's own 413 included, with the
 * request's path. */
typedef struct observed {
    pthread_mutex_t lock;
    int n, last_status;
    char last_path[64];
} observed_t;

static void observer(void *opaque, const http_request_t *req, const http_response_t *resp, double seconds) {
    observed_t *o = opaque;
    assert_true(seconds >= 0);
    pthread_mutex_lock(&o->lock);
    o->n++;
    o->last_status = resp->status;
    snprintf(o->last_path, sizeof(o->last_path), "%s", req->path);
    pthread_mutex_unlock(&o->lock);
}

static void test_observer_sees_every_answer(void **state) {
    fixture_t *fx = *state;
    static observed_t o = {PTHREAD_MUTEX_INITIALIZER, 0, 0, ""};
    http_server_observe(fx->srv, observer, &o);
    answer_t a = http_post(fx->port, "/echo", "hi", 2);
    assert_int_equal(a.status, 200);
    answer_free(&a);
    assert_int_equal(o.n, 1);
    assert_int_equal(o.last_status, 200);
    char *body = malloc(MAX_BODY + 1);
    memset(body, 'b', MAX_BODY + 1);
    a = http_post(fx->port, "/echo", body, MAX_BODY + 1);
    assert_int_equal(a.status, 413);
    answer_free(&a);
    free(body);
    assert_int_equal(o.n, 2);
    assert_int_equal(o.last_status, 413);
    assert_string_equal(o.last_path, "/echo");
    assert_int_equal(calls(fx), 1);
}

static void test_body_too_large_chunked(void **state) {
    fixture_t *fx = *state;
    /* No Content-Length: the limit must hold while the chunks arrive. */
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n");
    for (int chunk = 0; chunk < 3; chunk++) {
        n += snprintf(req + n, sizeof(req) - (size_t)n, "200\r\n"); /* 512 bytes */
        memset(req + n, 'c', 512);
        n += 512;
        n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    }
    n += snprintf(req + n, sizeof(req) - (size_t)n, "0\r\n\r\n");
    answer_t a = http_exchange(fx->port, req, (size_t)n);
    too_large_check(&a);
    assert_int_equal(calls(fx), 0);
    answer_free(&a);
}

static void test_handler_without_answer_gives_500(void **state) {
    fixture_t *fx = *state;
    answer_t a = http_get(fx->port, "/silent", NULL);
    answer_complete_check(&a);
    assert_int_equal(a.status, 500);
    json_t *body = json_loads(a.body, 0, NULL);
    assert_non_null(body);
    assert_true(json_is_string(json_object_get(body, "error")));
    json_decref(body);
    answer_free(&a);
}

static void test_bad_address_and_port_in_use(void **state) {
    fixture_t *fx = *state;
    char errstr[256];
    static const char *const bad[] = {"nonsense", "127.0.0.1:99999", "127.0.0.1:x",
                                      "999.0.0.1:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errstr[0] = '\0';
        assert_null(http_server_start(bad[i], MAX_BODY, 1, handler, &fx->seen, errstr,
                                      sizeof(errstr)));
        assert_non_null(strstr(errstr, bad[i]));
    }
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", fx->port);
    assert_null(http_server_start(addr, MAX_BODY, 1, handler, &fx->seen, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, addr));
}

typedef struct slow_client {
    int port;
    answer_t answer;
} slow_client_t;

static void *slow_client_run(void *arg) {
    slow_client_t *c = arg;
    c->answer = http_get(c->port, "/slow", NULL);
    return NULL;
}

typedef struct stopper {
    http_server_t *srv;
} stopper_t;

static void *stopper_run(void *arg) {
    stopper_t *s = arg;
    http_server_stop(s->srv, 30000);
    return NULL;
}

static void test_stop_waits_for_request_in_flight(void **state) {
    fixture_t *fx = *state;
    slow_client_t client = {.port = fx->port};
    pthread_t client_th, stop_th;
    assert_int_equal(pthread_create(&client_th, NULL, slow_client_run, &client), 0);
    /* Wait until the handler is running (bounded, so that a server that
     * never calls it fails instead of hanging). */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    if (sem_timedwait(&fx->seen.entered, &deadline) != 0) fail_msg("/slow never reached the handler");

    stopper_t stopper = {fx->srv};
    fx->srv = NULL;
    assert_int_equal(pthread_create(&stop_th, NULL, stopper_run, &stopper), 0);
    /* Once stopping, the server takes no new connections.  Poll for that
     * rather than guess how long it takes; the bound only stops a broken
     * build from hanging the suite. */
    int refused = 0, connect_errno = 0;
    for (int i = 0; i < 1000 && !refused; i++) {
        int fd = client_connect(fx->port);
        if (fd < 0) {
            connect_errno = errno;
            refused = 1;
        } else {
            close(fd);
            nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        }
    }
    /* The stop is under way with the request still in the handler: let it
     * finish (also when the check above failed, or the threads would hang),
     * and the client must still get the whole answer. */
    sem_post(&fx->seen.release);
    pthread_join(stop_th, NULL);
    pthread_join(client_th, NULL);
    assert_true(refused);
    /* Reset when the attempt raced with the listening socket's close. */
    if (connect_errno != ECONNREFUSED && connect_errno != ECONNRESET)
        fail_msg("connect during stop: %s", strerror(connect_errno));
    answer_complete_check(&client.answer);
    assert_int_equal(client.answer.status, 200);
    assert_string_equal(client.answer.body, "finished");
    answer_free(&client.answer);
}

/* The same under both threading models the services use. */
static void test_stop_waits_thread_per_connection(void **state) {
    test_stop_waits_for_request_in_flight(state);
}
static void test_stop_waits_thread_pool(void **state) { test_stop_waits_for_request_in_flight(state); }

int main(void) {
    /* libmicrohttpd's warnings go through the logger; keep them out of the
     * test output. */
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) log_set_fd(devnull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_body_shape, setup, teardown),
        cmocka_unit_test(test_error_body_direct),
        cmocka_unit_test_setup_teardown(test_allow_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_is_get_without_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_nul_and_slash_not_decoded, setup, teardown),
        cmocka_unit_test(test_error_long_message_cut_at_character),
        cmocka_unit_test_setup_teardown(test_query_and_headers_reach_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_reaches_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_at_limit_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large_declared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observer_sees_every_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_without_answer_gives_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_address_and_port_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_waits_thread_per_connection,
                                        setup_thread_per_connection, teardown),
        cmocka_unit_test_setup_teardown(test_stop_waits_thread_pool, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (devnull >= 0) close(devnull);
    return rc;
}
