/* Integration: the PostgreSQL and Redis modules against the real servers of
 * the stack (settings from the environment, run/devstack.env). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "log.h"
#include "pg.h"
#include "redis.h"

static config_t *cfg;
static char run_id[16];
static char mig_dir[256];

static int setup(void **state) {
    (void)state;
    log_init("test_stores", LOG_LEVEL_ERROR);
    char err[512];
    cfg = config_new(NULL);
    if (config_load_env(cfg, err, sizeof(err)) != 0) return -1;
    char id[EVENT_ID_LEN];
    event_id_new(id);
    snprintf(run_id, sizeof(run_id), "s%.8s", id);
    /* Two migrations; the second depends on the first. */
    snprintf(mig_dir, sizeof(mig_dir), "/tmp/annot-test-migrations-%s", run_id);
    char path[512];
    snprintf(path, sizeof(path), "mkdir -p %s", mig_dir);
    if (system(path) != 0) return -1;
    snprintf(path, sizeof(path), "%s/001_things.sql", mig_dir);
    FILE *f = fopen(path, "w");
    fputs("CREATE TABLE things (id int PRIMARY KEY, name text NOT NULL);\n"
          "INSERT INTO things VALUES (1, 'one');\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/002_more.sql", mig_dir);
    f = fopen(path, "w");
    fputs("ALTER TABLE things ADD COLUMN size int NOT NULL DEFAULT 7;\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/README", mig_dir);
    f = fopen(path, "w"); /* not a migration: ignored */
    fputs("not sql\n", f);
    fclose(f);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", mig_dir);
    if (system(cmd) != 0) return -1;
    config_destroy(cfg);
    return 0;
}

static pg_t *pg_open(const char *schema) {
    char err[512];
    pg_t *pg = pg_connect(config_str(cfg, "database.url"), schema, 10, err, sizeof(err));
    if (pg == NULL) fail_msg("postgresql: %s", err);
    return pg;
}

/* Four processes migrate one schema at once: the advisory lock lets each
 * migration apply once, and all four succeed. */
static void test_pg_migrate_concurrently_once(void **state) {
    (void)state;
    char schema[64];
    snprintf(schema, sizeof(schema), "mig_%s", run_id);
    pid_t pids[4];
    for (int i = 0; i < 4; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            char err[512];
            pg_t *pg = pg_connect(config_str(cfg, "database.url"), schema, 10, err, sizeof(err));
            int rc = pg && pg_migrate(pg, mig_dir, err, sizeof(err)) == 0 ? 0 : 1;
            if (rc) fprintf(stderr, "migrate: %s\n", err);
            pg_close(pg);
            _exit(rc);
        }
    }
    for (int i = 0; i < 4; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    pg_t *pg = pg_open(schema);
    char err[512];
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, "SELECT count(*), max(size) FROM things", 0, NULL, err, sizeof(err));
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "1"); /* the INSERT ran once */
    assert_string_equal(PQgetvalue(res, 0, 1), "7");
    PQclear(res);
    res = pg_query(pg, PGRES_TUPLES_OK, "SELECT name FROM schema_migrations ORDER BY name", 0, NULL, err, sizeof(err));
    assert_non_null(res);
    assert_int_equal(PQntuples(res), 3);
    assert_string_equal(PQgetvalue(res, 0, 0), "000_common_ledger");
    assert_string_equal(PQgetvalue(res, 1, 0), "001_things.sql");
    assert_string_equal(PQgetvalue(res, 2, 0), "002_more.sql");
    PQclear(res);
    /* The common tables exist in the service's own schema. */
    assert_non_null(res = pg_query(pg, PGRES_TUPLES_OK, "SELECT count(*) FROM processed_events", 0, NULL, err, sizeof(err)));
    PQclear(res);
    assert_non_null(res = pg_query(pg, PGRES_TUPLES_OK, "SELECT count(*) FROM outbox", 0, NULL, err, sizeof(err)));
    PQclear(res);
    pg_close(pg);
}

/* A failing migration is rolled back whole and reported with its name. */
static void test_pg_bad_migration_rolls_back(void **state) {
    (void)state;
    char schema[64], dir[300], path[400];
    snprintf(schema, sizeof(schema), "bad_%s", run_id);
    snprintf(dir, sizeof(dir), "%s-bad", mig_dir);
    snprintf(path, sizeof(path), "mkdir -p %s", dir);
    assert_int_equal(system(path), 0);
    snprintf(path, sizeof(path), "%s/001_half.sql", dir);
    FILE *f = fopen(path, "w");
    fputs("CREATE TABLE half (id int);\nCREATE TABLE broken (id nosuchtype);\n", f);
    fclose(f);
    pg_t *pg = pg_open(schema);
    char err[512];
    assert_int_equal(pg_migrate(pg, dir, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "001_half.sql"));
    assert_non_null(strstr(err, "nosuchtype"));
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, "SELECT to_regclass('half') IS NULL", 0, NULL, err, sizeof(err));
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    pg_close(pg);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
}

/* Parameters travel as data (no injection); a server error comes back as
 * an error message, and a killed connection is re-established. */
static void test_pg_params_errors_reconnect(void **state) {
    (void)state;
    char schema[64], err[512];
    snprintf(schema, sizeof(schema), "q_%s", run_id);
    pg_t *pg = pg_open(schema);
    const char *evil[1] = {"x'); DROP TABLE processed_events; --"};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, "SELECT $1::text", 1, evil, err, sizeof(err));
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), evil[0]);
    PQclear(res);
    assert_null(pg_query(pg, PGRES_TUPLES_OK, "SELECT * FROM no_such_table", 0, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "no_such_table"));
    assert_int_equal(pg_command(pg, "SELECT 1", 0, NULL, err, sizeof(err)), -1); /* tuples, not a command */

    pg_t *killer = pg_open(schema);
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", PQbackendPID(pg_conn(pg)));
    const char *params[1] = {pid};
    res = pg_query(killer, PGRES_TUPLES_OK, "SELECT pg_terminate_backend($1::int)", 1, params, err, sizeof(err));
    assert_non_null(res);
    PQclear(res);
    pg_close(killer);
    assert_null(pg_query(pg, PGRES_TUPLES_OK, "SELECT 1", 0, NULL, err, sizeof(err)));
    assert_int_equal(pg_ensure(pg, err, sizeof(err)), 0);
    assert_int_equal(pg_ping(pg), 0);
    /* search_path is set again on the new connection. */
    res = pg_query(pg, PGRES_TUPLES_OK, "SELECT current_schema()", 0, NULL, err, sizeof(err));
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), schema);
    PQclear(res);
    pg_close(pg);
}

static redis_t *redis_open(void) {
    char err[512];
    redis_t *r = redis_connect(config_str(cfg, "redis.url"), err, sizeof(err));
    if (r == NULL) fail_msg("redis: %s", err);
    return r;
}

/* A script runs by EVALSHA; after SCRIPT FLUSH (a Redis restart) it is
 * loaded again and runs, once. */
static void test_redis_script_survives_flush(void **state) {
    (void)state;
    redis_t *r = redis_open();
    redis_script_t incr = {"return redis.call('INCRBY', KEYS[1], ARGV[1])", ""};
    char key[64], err[512];
    snprintf(key, sizeof(key), "test:{%s}:n", run_id);
    const char *argv[2] = {key, "5"};
    redisReply *rep = redis_script_run(r, &incr, 1, 2, argv, NULL, err, sizeof(err));
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_int_equal(rep->integer, 5);
    freeReplyObject(rep);
    assert_int_equal(strlen(incr.sha), 40);
    rep = redis_command(r, err, sizeof(err), "SCRIPT FLUSH");
    assert_non_null(rep);
    freeReplyObject(rep);
    rep = redis_script_run(r, &incr, 1, 2, argv, NULL, err, sizeof(err));
    assert_non_null(rep);
    assert_int_equal(rep->integer, 10); /* ran exactly once more */
    freeReplyObject(rep);
    /* A script error is a reply, not a dead connection. */
    redis_script_t bad = {"return redis.call('NOSUCHCOMMAND')", ""};
    rep = redis_script_run(r, &bad, 0, 0, NULL, NULL, err, sizeof(err));
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_ERROR);
    freeReplyObject(rep);
    rep = redis_command(r, err, sizeof(err), "DEL %s", key);
    freeReplyObject(rep);
    redis_close(r);
}

/* A killed connection fails the call in hand (NULL: it may or may not have
 * run) and the next call reconnects. */
static void test_redis_reconnects(void **state) {
    (void)state;
    redis_t *r = redis_open();
    redis_t *killer = redis_open();
    char err[512];
    redisReply *rep = redis_command(r, err, sizeof(err), "CLIENT SETNAME victim%s", run_id);
    freeReplyObject(rep);
    rep = redis_command(killer, err, sizeof(err), "CLIENT LIST");
    assert_non_null(rep);
    char name[64];
    snprintf(name, sizeof(name), "name=victim%s", run_id);
    char *line = strstr(rep->str, name);
    assert_non_null(line);
    while (line > rep->str && line[-1] != '\n') line--;
    char addr[64];
    assert_int_equal(sscanf(strstr(line, "addr=") + 5, "%63s", addr), 1);
    freeReplyObject(rep);
    rep = redis_command(killer, err, sizeof(err), "CLIENT KILL %s", addr);
    assert_non_null(rep);
    freeReplyObject(rep);
    assert_null(redis_command(r, err, sizeof(err), "PING"));
    assert_int_equal(redis_ping(r), 0);
    redis_close(killer);
    redis_close(r);
}

/* A Redis 6 ACL user and a password holding URL delimiters, %-escaped in
 * the URL: AUTH user password, and a wrong password fails at connect. */
static void test_redis_acl_user_auth(void **state) {
    (void)state;
    redis_t *admin = redis_open();
    char err[512], user[64];
    snprintf(user, sizeof(user), "itest-%s", run_id);
    redisReply *rep = redis_command(admin, err, sizeof(err), "ACL SETUSER %s on >p@ss:w/rd%% ~* &* +@all", user);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    const char *base = config_str(cfg, "redis.url") + strlen("redis://");
    char url[512];
    snprintf(url, sizeof(url), "redis://%s:p%%40ss%%3Aw%%2Frd%%25@%s", user, base);
    redis_t *r = redis_connect(url, err, sizeof(err));
    if (r == NULL) fail_msg("connect as ACL user: %s", err);
    rep = redis_command(r, err, sizeof(err), "ACL WHOAMI");
    assert_non_null(rep);
    assert_string_equal(rep->str, user);
    freeReplyObject(rep);
    redis_close(r);
    snprintf(url, sizeof(url), "redis://%s:wrong-pw@%s", user, base);
    assert_null(redis_connect(url, err, sizeof(err)));
    assert_non_null(strstr(err, "AUTH failed"));
    assert_null(strstr(err, "wrong-pw"));
    snprintf(url, sizeof(url), "redis://%s:bad%%4@%s", user, base);
    assert_null(redis_connect(url, err, sizeof(err)));
    assert_non_null(strstr(err, "bad Redis URL"));
    rep = redis_command(admin, err, sizeof(err), "ACL DELUSER %s", user);
    freeReplyObject(rep);
    redis_close(admin);
}

static void test_redis_bad_url(void **state) {
    (void)state;
    char err[512];
    assert_null(redis_connect("http://127.0.0.1:1", err, sizeof(err)));
    assert_non_null(strstr(err, "bad Redis URL"));
    assert_null(redis_connect("redis://:secret@127.0.0.1:notaport", err, sizeof(err)));
    assert_null(strstr(err, "secret")); /* the password is never echoed */
    assert_null(redis_connect("redis://127.0.0.1:1/0", err, sizeof(err)));
    assert_non_null(strstr(err, "127.0.0.1:1"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_migrate_concurrently_once),
        cmocka_unit_test(test_pg_bad_migration_rolls_back),
        cmocka_unit_test(test_pg_params_errors_reconnect),
        cmocka_unit_test(test_redis_script_survives_flush),
        cmocka_unit_test(test_redis_reconnects),
        cmocka_unit_test(test_redis_acl_user_auth),
        cmocka_unit_test(test_redis_bad_url),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
