/* Unit tests of common/fault: the crash points the fault tests rely on.  A
 * point that fires kills the process, so each case runs in a forked child
 * that reports through a pipe how far it got. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault.h"
#include "log.h"

typedef struct child_result {
    int status;     /* from waitpid */
    int passed;     /* fault points the child got past */
} child_result_t;

/* Runs in the child: initialises spec, then passes the points in names
 * (NULL-terminated), writing one byte to fd after each; exits 0 at the end. */
static void child_run(int fd, const char *spec, const char *const *names) {
    if (fault_init(spec) != 0) _exit(3);
    for (size_t i = 0; names[i] != NULL; i++) {
        fault_point(names[i]);
        if (write(fd, "x", 1) != 1) _exit(4);
    }
    _exit(0);
}

static child_result_t child_result_get(const char *spec, const char *const *names) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_run(fds[1], spec, names);
    }
    close(fds[1]);
    child_result_t r = {0, 0};
    char buf[64];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof(buf))) > 0) r.passed += (int)n;
    close(fds[0]);
    assert_int_equal(waitpid(pid, &r.status, 0), pid);
    return r;
}

static int killed_by_sigkill(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }

static void test_malformed_specs_rejected(void **state) {
    (void)state;
    static const char *const bad[] = {":3", "p:", "p:0", "p:-1", "p:3x", "p:x", ":"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (fault_init(bad[i]) != -1) fail_msg("accepted '%s'", bad[i]);
    }
    char longname[200];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(fault_init(longname), -1);
    assert_int_equal(fault_init("p"), 0);
    assert_int_equal(fault_init("pipeline.after_commit:12"), 0);
    assert_int_equal(fault_init(""), 0);
    assert_int_equal(fault_init(NULL), 0);
}

static void test_fires_on_nth_pass(void **state) {
    (void)state;
    static const char *const names[] = {"p", "p", "p", "p", "p", NULL};
    child_result_t r = child_result_get("p:3", names);
    assert_true(killed_by_sigkill(r.status));
    assert_int_equal(r.passed, 2); /* got past the first two, not the third */
}

static void test_fires_on_first_pass_without_count(void **state) {
    (void)state;
    static const char *const names[] = {"other", "p", "p", NULL};
    child_result_t r = child_result_get("p", names);
    assert_true(killed_by_sigkill(r.status));
    assert_int_equal(r.passed, 1);
}

static void test_other_points_do_not_count(void **state) {
    (void)state;
    /* Only exact names count towards n: two "p" among the others is not 3. */
    static const char *const names[] = {"q", "p", "pp", "P", "", "p:3", "p ", "p", "q", NULL};
    child_result_t r = child_result_get("p:3", names);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 0);
    assert_int_equal(r.passed, 9);
}

static void test_empty_spec_disables(void **state) {
    (void)state;
    static const char *const names[] = {"p", "p", "p", NULL};
    child_result_t r = child_result_get("", names);
    assert_true(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
    assert_int_equal(r.passed, 3);
}

int main(void) {
    /* The point logs a warning before it fires; keep it out of the output. */
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) log_set_fd(devnull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_specs_rejected),
        cmocka_unit_test(test_fires_on_nth_pass),
        cmocka_unit_test(test_fires_on_first_pass_without_count),
        cmocka_unit_test(test_other_points_do_not_count),
        cmocka_unit_test(test_empty_spec_disables),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (devnull >= 0) close(devnull);
    return rc;
}
