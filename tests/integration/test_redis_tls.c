/* Integration: Redis over TLS, the way the images run it.  Debian's hiredis
 * 0.14 has no TLS, so the images' entrypoint (docker/entrypoint.sh) turns a
 * rediss:// URL into a local stunnel tunnel.  Against a real redis-server
 * listening only on a TLS port (client certificates required, password
 * set; throwaway CA and certificates made by openssl here): a plaintext
 * client is refused; a rediss:// URL given to a binary directly fails
 * saying why; through the entrypoint annotctl status reaches Redis, and
 * fails with a CA that did not sign the server, a name the certificate
 * lacks, or no client certificate; annot-dispatcher, through the
 * entrypoint, leases and submits a task with its queues and lease in the
 * TLS Redis; stunnel dies with its service, and a service whose stunnel
 * dies stops cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <sys/stat.h>

#include "annot/v1/task.pb-c.h"
#include "itest.h"

#define PASSWORD "tls-test-pw"

static char dir[512], schema[64], skill[32];
/* The userinfo and database of the next tls_env's URL. */
static const char *url_userinfo = ":" PASSWORD, *url_db = "0";
static int tls_port;
static pid_t redis_pid;

static void sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0) fail_msg("command failed: %s", cmd);
}

/* A CA, a certificate it signs for `localhost` and 127.0.0.1 (the server)
 * and one for a client; and an unrelated CA. */
static void make_certs(void) {
    const char *q = ">/dev/null 2>&1";
    sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.crt %s",
       dir, q);
    sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other.key "
       "-out other.crt %s",
       dir, q);
    sh("cd %s && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.ext && "
       "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr %s && "
       "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext "
       "-out server.crt %s",
       dir, q, q);
    sh("cd %s && openssl req -newkey rsa:2048 -nodes -subj /CN=annot-client -keyout client.key -out client.csr %s && "
       "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out client.crt %s",
       dir, q, q);
}

static int port_open(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

static int setup(void **state) {
    (void)state;
    if (itest_setup("test_redis_tls") != 0) return -1;
    snprintf(schema, sizeof(schema), "disptls_%s", itest_run);
    snprintf(skill, sizeof(skill), "t%s", itest_run + 1);
    char cwd[256];
    if (getcwd(cwd, sizeof(cwd)) == NULL) return -1;
    snprintf(dir, sizeof(dir), "%s/build/tests/redis-tls.%s", cwd, itest_run);
    if (mkdir(dir, 0700) != 0) return -1;
    make_certs();
    /* Redis as docker/compose.yaml runs it: TLS only (port 0), client
     * certificates required, a password. */
    tls_port = itest_free_port();
    char a_port[16], a_cert[600], a_key[600], a_ca[600];
    snprintf(a_port, sizeof(a_port), "%d", tls_port);
    snprintf(a_cert, sizeof(a_cert), "%s/server.crt", dir);
    snprintf(a_key, sizeof(a_key), "%s/server.key", dir);
    snprintf(a_ca, sizeof(a_ca), "%s/ca.crt", dir);
    char *argv[] = {"/usr/bin/redis-server", "--port", "0", "--tls-port", a_port, "--bind", "127.0.0.1",
                    "--tls-cert-file", a_cert, "--tls-key-file", a_key, "--tls-ca-cert-file", a_ca,
                    "--tls-auth-clients", "yes", "--requirepass", PASSWORD, "--save", "", "--appendonly", "no",
                    "--dir", dir, NULL};
    redis_pid = itest_spawn("redis-tls", NULL, argv);
    /* Lives for the whole group: out of the children each test's teardown
     * kills. */
    for (int i = 0; i < ITEST_MAX_CHILDREN; i++)
        if (itest_children[i] == redis_pid) itest_children[i] = 0;
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (!port_open(tls_port)) {
        if (time(NULL) > deadline || waitpid(redis_pid, NULL, WNOHANG) != 0) {
            fprintf(stderr, "redis-server with TLS did not start (build/tests/redis-tls.%s.*.log)\n", itest_run);
            return -1;
        }
        usleep(50 * 1000);
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    itest_kill_children(NULL);
    if (redis_pid > 0 && kill(redis_pid, SIGTERM) == 0) waitpid(redis_pid, NULL, 0);
    sh("rm -rf %s", dir);
    itest_teardown();
    return 0;
}

/* Pids of processes whose command line names this test's directory (the
 * stunnel the entrypoint starts reads its configuration from under it). */
static int tunnels(pid_t *out, int cap) {
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], buf[4096];
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL) continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        /* argv[0] is stunnel4 (not the watcher shell, whose script names
         * it too); its configuration file is the next argument. */
        const char *argv0 = strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf;
        size_t l0 = strlen(buf);
        if (strcmp(argv0, "stunnel4") == 0 && l0 + 1 < len && strstr(buf + l0 + 1, dir) && n < cap)
            out[n++] = (pid_t)atoi(e->d_name);
    }
    closedir(d);
    return n;
}

static void assert_no_tunnel_left(void) {
    pid_t p[4];
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (tunnels(p, 4) > 0) {
        if (time(NULL) > deadline) fail_msg("stunnel %d outlived its service", (int)p[0]);
        usleep(50 * 1000);
    }
}

/* The environment of the entrypoint: the URL as compose passes it (a file),
 * the certificates, the tunnel's local port, and TMPDIR under this test's
 * directory; tls selects which certificates: "ok", "other-ca", "wrong-name",
 * "no-client-cert". */
static void tls_env(const char *tls, int local_port) {
    char path[600], value[600];
    snprintf(path, sizeof(path), "%s/redis_url", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "rediss://%s@127.0.0.1:%d/%s\n", url_userinfo, tls_port, url_db);
    fclose(f);
    unsetenv("ANNOT_REDIS_URL");
    setenv("ANNOT_REDIS_URL_FILE", path, 1);
    snprintf(value, sizeof(value), "%s/%s.crt", dir, strcmp(tls, "other-ca") == 0 ? "other" : "ca");
    setenv("ANNOT_REDIS_TLS_CA_FILE", value, 1);
    if (strcmp(tls, "no-client-cert") == 0) {
        unsetenv("ANNOT_REDIS_TLS_CERT_FILE");
        unsetenv("ANNOT_REDIS_TLS_KEY_FILE");
    } else {
        snprintf(value, sizeof(value), "%s/client.crt", dir);
        setenv("ANNOT_REDIS_TLS_CERT_FILE", value, 1);
        snprintf(value, sizeof(value), "%s/client.key", dir);
        setenv("ANNOT_REDIS_TLS_KEY_FILE", value, 1);
    }
    /* localhost: the certificate's DNS name, checked as a host name (the
     * connection still goes to 127.0.0.1). */
    setenv("ANNOT_REDIS_TLS_SERVER_NAME", strcmp(tls, "wrong-name") == 0 ? "redis.elsewhere.example" : "localhost", 1);
    snprintf(value, sizeof(value), "%d", local_port);
    setenv("ANNOT_REDIS_TLS_LOCAL_PORT", value, 1);
    setenv("TMPDIR", dir, 1);
}

static void tls_env_clear(void) {
    unsetenv("ANNOT_REDIS_URL_FILE");
    unsetenv("ANNOT_REDIS_TLS_CA_FILE");
    unsetenv("ANNOT_REDIS_TLS_CERT_FILE");
    unsetenv("ANNOT_REDIS_TLS_KEY_FILE");
    unsetenv("ANNOT_REDIS_TLS_SERVER_NAME");
    unsetenv("ANNOT_REDIS_TLS_LOCAL_PORT");
    unsetenv("TMPDIR");
    setenv("ANNOT_REDIS_URL", config_str(itest_cfg, "redis.url"), 1);
}

static void test_plaintext_to_tls_port_refused(void **state) {
    (void)state;
    char err[512], url[128];
    /* The TCP connection is accepted; the first command is not answered. */
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", tls_port);
    redis_t *r = redis_connect(url, err, sizeof(err));
    assert_non_null(r);
    assert_int_not_equal(redis_ping(r), 0);
    redis_close(r);
    snprintf(url, sizeof(url), "redis://:%s@127.0.0.1:%d/0", PASSWORD, tls_port);
    assert_null(redis_connect(url, err, sizeof(err)));
    /* Said as a broken connection, not as a wrong password. */
    assert_non_null(strstr(err, "AUTH failed: "));
}

static void test_rediss_url_without_entrypoint_says_why(void **state) {
    (void)state;
    char err[512], url[128];
    snprintf(url, sizeof(url), "rediss://:%s@127.0.0.1:%d/0", PASSWORD, tls_port);
    assert_null(redis_connect(url, err, sizeof(err)));
    assert_non_null(strstr(err, "rediss://"));
    assert_non_null(strstr(err, "entrypoint"));
    assert_null(strstr(err, PASSWORD));
}

/* annotctl status through the entrypoint: its exit status and its redis
 * line. */
static int status_through_tunnel(const char *tls, char *line, size_t len) {
    tls_env(tls, itest_free_port());
    FILE *f = popen("docker/entrypoint.sh bin/annotctl status 2>&1", "r");
    assert_non_null(f);
    char buf[1024];
    line[0] = '\0';
    while (fgets(buf, sizeof(buf), f))
        if (strncmp(buf, "redis", 5) == 0) snprintf(line, len, "%s", buf);
    int st = pclose(f);
    tls_env_clear();
    assert_no_tunnel_left();
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_annotctl_status_through_tunnel(void **state) {
    (void)state;
    char line[1024];
    assert_int_equal(status_through_tunnel("ok", line, sizeof(line)), 0);
    assert_non_null(strstr(line, "ok    PONG"));
    /* An ACL user whose password needs %XX escapes, and a database number:
     * the URL the entrypoint hands over keeps both. */
    sh("redis-cli --tls --cacert %s/ca.crt --cert %s/client.crt --key %s/client.key -h 127.0.0.1 -p %d "
       "--no-auth-warning -a %s ACL SETUSER tls-%s on '>p@ss/w:rd' '~*' '&*' +@all >/dev/null",
       dir, dir, dir, tls_port, PASSWORD, itest_run);
    char userinfo[128];
    snprintf(userinfo, sizeof(userinfo), "tls-%s:p%%40ss%%2Fw%%3Ard", itest_run);
    url_userinfo = userinfo;
    url_db = "3";
    int rc = status_through_tunnel("ok", line, sizeof(line));
    url_userinfo = ":" PASSWORD;
    url_db = "0";
    assert_int_equal(rc, 0);
    assert_non_null(strstr(line, "ok    PONG"));
}

static void test_unverified_server_or_client_refused(void **state) {
    (void)state;
    const char *cases[] = {"other-ca", "wrong-name", "no-client-cert"};
    for (size_t i = 0; i < 3; i++) {
        char line[1024];
        int rc = status_through_tunnel(cases[i], line, sizeof(line));
        if (rc != 1 || strstr(line, "FAIL") == NULL) fail_msg("%s: exit %d, '%s'", cases[i], rc, line);
    }
}

static void produce_task(const char *task_id) {
    char id[EVENT_ID_LEN];
    event_id_new(id);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, "test", "", "g-7");
    char *skills[1] = {skill};
    Annot__V1__Component comp = ANNOT__V1__COMPONENT__INIT;
    comp.name = "sauce";
    comp.relation = "poured over";
    comp.target = "rice";
    Annot__V1__Component *comps[1] = {&comp};
    Annot__V1__Task t = ANNOT__V1__TASK__INIT;
    t.task_id = (char *)task_id;
    t.kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    t.image_uri = "s3://images/curry.jpg";
    t.main_object = "curry rice";
    t.locale = "en-US";
    t.n_skills = 1;
    t.skills = skills;
    t.n_components = 1;
    t.components = comps;
    t.priority = 5;
    t.guideline_version = "g-7";
    Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
    ev.header = &hdr;
    ev.task = &t;
    uint8_t buf[1024];
    size_t len = annot__v1__task_event__pack(&ev, buf);
    kafka_producer_t *p = itest_producer();
    itest_produce(p, "tasks", task_id, buf, len, NULL, NULL);
    kafka_producer_destroy(p, 5000);
}

/* Keys of this run's namespace in the Redis behind url ("redis-cli" with
 * the client certificate for the TLS one). */
static long tls_redis_keys(void) {
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "redis-cli --tls --cacert %s/ca.crt --cert %s/client.crt --key %s/client.key -h 127.0.0.1 -p %d "
             "--no-auth-warning -a %s --scan --pattern '%s:*' | wc -l",
             dir, dir, dir, tls_port, PASSWORD, itest_run);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    long n = -1;
    if (fscanf(f, "%ld", &n) != 1) n = -1;
    assert_int_equal(pclose(f), 0);
    return n;
}

static long plain_redis_keys(void) {
    char err[256];
    redis_t *r = redis_connect(config_str(itest_cfg, "redis.url"), err, sizeof(err));
    assert_non_null(r);
    redisReply *rep = redis_command(r, err, sizeof(err), "KEYS %s:*", itest_run);
    assert_non_null(rep);
    long n = (long)rep->elements;
    freeReplyObject(rep);
    redis_close(r);
    return n;
}

static pid_t dispatcher_through_tunnel(int *http_port, int *ops_port) {
    *http_port = itest_free_port();
    *ops_port = itest_free_port();
    char a_schema[160], a_http[64], a_ops[64], a_ns[64], a_group[256];
    snprintf(a_schema, sizeof(a_schema), "dispatcher.schema=%s", schema);
    snprintf(a_http, sizeof(a_http), "http.addr=127.0.0.1:%d", *http_port);
    snprintf(a_ops, sizeof(a_ops), "ops.addr=127.0.0.1:%d", *ops_port);
    snprintf(a_ns, sizeof(a_ns), "dispatcher.redis.ns=%s", itest_run);
    snprintf(a_group, sizeof(a_group), "dispatcher.group=disp-%s", schema);
    char *argv[] = {"docker/entrypoint.sh", "bin/annot-dispatcher", "-X", a_schema, "-X", a_http, "-X", a_ops,
                    "-X", a_ns, "-X", a_group, NULL};
    tls_env("ok", itest_free_port());
    pid_t pid = itest_spawn("annot-dispatcher-tls", NULL, argv);
    tls_env_clear();
    char body[1 << 12];
    time_t deadline = time(NULL) + ITEST_DEADLINE_S;
    while (itest_http("GET", *ops_port, "/readyz", NULL, NULL, 0, body, sizeof(body)) != 200) {
        if (time(NULL) > deadline || waitpid(pid, NULL, WNOHANG) != 0) fail_msg("dispatcher never became ready");
        usleep(100 * 1000);
    }
    return pid;
}

static void test_dispatcher_leases_and_submits_over_tls(void **state) {
    (void)state;
    char extra[128], token[128], task_id[128], body[1 << 14];
    snprintf(extra, sizeof(extra), "--locale en-US --skills %s", skill);
    itest_user_add(schema, "annotator", extra, token, sizeof(token));
    int http_port, ops_port;
    pid_t d = dispatcher_through_tunnel(&http_port, &ops_port);
    snprintf(task_id, sizeof(task_id), "%s-tls-task", itest_run);
    produce_task(task_id);

    const char *req = "{\"queue\":\"annotation\",\"wait_s\":20}";
    assert_int_equal(itest_http("POST", http_port, "/v1/leases", token, req, strlen(req), body, sizeof(body)), 200);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "task"), "task_id")), task_id);
    char path[256];
    snprintf(path, sizeof(path), "/v1/leases/%s/submit", json_string_value(json_object_get(j, "lease_id")));
    json_decref(j);
    /* The queues and the lease are in the TLS Redis, none in the stack's. */
    assert_true(tls_redis_keys() > 0);
    assert_int_equal(plain_redis_keys(), 0);
    const char *sub = "{\"description\":\"Japanese curry rice: the brown sauce is poured over the white rice.\"}";
    assert_int_equal(itest_http("POST", http_port, path, token, sub, strlen(sub), body, sizeof(body)), 202);
    assert_non_null(strstr(body, "submission_id"));
    /* The lease is gone from the TLS Redis: a repeat is answered as a
     * replay of the recorded submission. */
    assert_int_equal(itest_http("POST", http_port, path, token, sub, strlen(sub), body, sizeof(body)), 202);
    assert_non_null(strstr(body, "\"replayed\":true"));

    /* docker stop: SIGTERM, status 0, and the tunnel goes with it. */
    kill(d, SIGTERM);
    int st = itest_wait(d);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_no_tunnel_left();
}

static void test_service_stops_when_its_tunnel_dies(void **state) {
    (void)state;
    int http_port, ops_port;
    pid_t d = dispatcher_through_tunnel(&http_port, &ops_port);
    pid_t t[4];
    assert_int_equal(tunnels(t, 4), 1);
    kill(t[0], SIGKILL);
    int st = itest_wait(d);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_no_tunnel_left();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plaintext_to_tls_port_refused),
        cmocka_unit_test(test_rediss_url_without_entrypoint_says_why),
        cmocka_unit_test_teardown(test_annotctl_status_through_tunnel, itest_kill_children),
        cmocka_unit_test_teardown(test_unverified_server_or_client_refused, itest_kill_children),
        cmocka_unit_test_teardown(test_dispatcher_leases_and_submits_over_tls, itest_kill_children),
        cmocka_unit_test_teardown(test_service_stops_when_its_tunnel_dies, itest_kill_children),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
