/* Unit tests of the dispatcher's lease events (pure; its .c file is compiled
 * in here because test binaries link only libannot): decoding the entries
 * the Lua scripts append, and the LeaseEvent messages built from them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lease_event.h"
#include "lease_policy.h"

#define LEASE "0b1d8e6a-3f0c-4c7e-9a55-2f6f1e0d4a71"

/* Parses a NULL-terminated list of field, value strings. */
static int parse(lease_event_rec_t *rec, char *err, size_t errlen, ...) {
    const char *kv[64];
    size_t lens[64], n = 0;
    va_list ap;
    va_start(ap, errlen);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;) {
        kv[n] = s;
        lens[n] = strlen(s);
        n++;
    }
    va_end(ap);
    return lease_event_parse(kv, lens, n, rec, err, errlen);
}

#define IDENT "l", LEASE, "t", "task-1", "h", "ann-1", "f", "7", "a", "2", "at", "1700000000123"

static void test_parse_each_kind(void **state) {
    (void)state;
    lease_event_rec_t r;
    char err[160];
    assert_int_equal(parse(&r, err, sizeof(err), "k", "granted", IDENT, "exp", "1700000030123", "ttl", "30000", "qw",
                           "450", NULL),
                     0);
    assert_int_equal(r.kind, LEASE_EVENT_GRANTED);
    assert_string_equal(r.lease_id, LEASE);
    assert_string_equal(r.task_id, "task-1");
    assert_string_equal(r.holder_id, "ann-1");
    assert_int_equal(r.fence, 7);
    assert_int_equal(r.attempt, 2);
    assert_int_equal(r.at_ms, 1700000000123LL);
    assert_int_equal(r.expires_at_ms, 1700000030123LL);
    assert_int_equal(r.ttl_ms, 30000);
    assert_int_equal(r.queue_wait_ms, 450);

    assert_int_equal(parse(&r, err, sizeof(err), "k", "heartbeat", IDENT, "exp", "1700000040000", "n", "3", NULL), 0);
    assert_int_equal(r.kind, LEASE_EVENT_HEARTBEAT);
    assert_int_equal(r.count, 3);

    assert_int_equal(parse(&r, err, sizeof(err), "k", "expired", IDENT, "exp", "1700000030123", "rq", "1", "ma", "3",
                           "n", "2", NULL),
                     0);
    assert_int_equal(r.kind, LEASE_EVENT_EXPIRED);
    assert_true(r.requeued);
    assert_int_equal(r.max_attempts, 3);
    assert_int_equal(r.count, 2);

    assert_int_equal(parse(&r, err, sizeof(err), "k", "released", IDENT, "why", "submitted", "rq", "0", NULL), 0);
    assert_int_equal(r.why, LEASE_WHY_SUBMITTED);
    assert_false(r.requeued);

    assert_int_equal(parse(&r, err, sizeof(err), "k", "parked", IDENT, "why", "max_attempts", "n", "3", NULL), 0);
    assert_int_equal(r.why, LEASE_WHY_MAX_ATTEMPTS);
    assert_int_equal(r.count, 3);
}

/* Whatever is wrong, the error names the field. */
static void test_parse_errors_name_the_field(void **state) {
    (void)state;
    lease_event_rec_t r;
    char err[160];
    assert_int_equal(parse(&r, err, sizeof(err), "k", "stolen", IDENT, NULL), -1);
    assert_non_null(strstr(err, "'k'"));
    assert_int_equal(parse(&r, err, sizeof(err), "k", "granted", "l", LEASE, "h", "x", "f", "1", "a", "1", "at", "5",
                           "exp", "1", "ttl", "1", "qw", "0", NULL),
                     -1);
    assert_non_null(strstr(err, "'t' is missing"));
    assert_int_equal(parse(&r, err, sizeof(err), "k", "granted", IDENT, "exp", "12x", "ttl", "1", "qw", "0", NULL), -1);
    assert_non_null(strstr(err, "'exp' is malformed"));
    assert_int_equal(parse(&r, err, sizeof(err), "k", "granted", IDENT, "exp", "1", "ttl", "1", NULL), -1);
    assert_non_null(strstr(err, "'qw' is missing"));
    assert_int_equal(parse(&r, err, sizeof(err), "k", "expired", IDENT, "exp", "1", "rq", "2", "ma", "3", "n", "1", NULL),
                     -1);
    assert_non_null(strstr(err, "'rq'"));
    assert_int_equal(parse(&r, err, sizeof(err), "k", "released", IDENT, "why", "max_attempts", "rq", "1", NULL), -1);
    assert_non_null(strstr(err, "'why'"));
    assert_int_equal(parse(&r, err, sizeof(err), "k", "heartbeat", IDENT, "exp", "1", "n", "-1", NULL), -1);
    assert_int_equal(parse(&r, err, sizeof(err), "k", "heartbeat", IDENT, "exp", "1", "n", "99999999999", NULL), -1);
    /* A value of the wrong length never overflows the record. */
    char long_task[LEASE_ID_MAX + 10];
    memset(long_task, 'x', sizeof(long_task) - 1);
    long_task[sizeof(long_task) - 1] = '\0';
    assert_int_equal(parse(&r, err, sizeof(err), "k", "heartbeat", "l", LEASE, "t", long_task, "h", "a", "f", "1", "a",
                           "1", "at", "1", "exp", "1", "n", "1", NULL),
                     -1);
    assert_non_null(strstr(err, "'t' is malformed"));
}

static lease_event_rec_t rec_of(void) {
    lease_event_rec_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.lease_id, sizeof(r.lease_id), "%s", LEASE);
    snprintf(r.task_id, sizeof(r.task_id), "asg-9");
    snprintf(r.holder_id, sizeof(r.holder_id), "val-1");
    r.fence = 4;
    r.attempt = 1;
    r.at_ms = 1000;
    return r;
}

/* The message carries everything; its id depends only on the lease and what
 * happened to it, so a second relay of the same entry is a duplicate. */
static void test_build_and_ids(void **state) {
    (void)state;
    lease_event_rec_t r = rec_of();
    r.kind = LEASE_EVENT_HEARTBEAT;
    r.count = 1;
    r.expires_at_ms = 31000;
    lease_event_msg_t m1, m2, m3;
    lease_event_subject_t subj = {"task-under-validation", "sub-1"};
    lease_event_build(&m1, &r, LEASE_QUEUE_VALIDATION, &subj, "annot-dispatcher");
    assert_int_equal(m1.ev.event_case, ANNOT__V1__LEASE_EVENT__EVENT_HEARTBEAT);
    assert_int_equal(m1.ev.queue, ANNOT__V1__QUEUE__QUEUE_VALIDATION);
    assert_string_equal(m1.ev.task_id, "task-under-validation");
    assert_string_equal(m1.ev.assignment_id, "asg-9");
    assert_string_equal(m1.ev.submission_id, "sub-1");
    assert_string_equal(lease_event_key(&m1), "task-under-validation");
    assert_int_equal(m1.ev.heartbeat->expires_at_ms, 31000);
    assert_int_equal(m1.ev.heartbeat->heartbeat_count, 1);
    assert_int_equal(m1.header.occurred_at_ms, 1000);
    assert_string_equal(m1.header.source, "annot-dispatcher");
    assert_true(event_id_valid(m1.event_id));

    lease_event_build(&m2, &r, LEASE_QUEUE_VALIDATION, &subj, "annot-dispatcher");
    assert_string_equal(m1.event_id, m2.event_id);
    r.count = 2;
    lease_event_build(&m3, &r, LEASE_QUEUE_VALIDATION, &subj, "annot-dispatcher");
    assert_string_not_equal(m1.event_id, m3.event_id);

    /* Packs and unpacks to the same event. */
    uint8_t buf[512];
    size_t len = annot__v1__lease_event__pack(&m1.ev, buf);
    Annot__V1__LeaseEvent *back = annot__v1__lease_event__unpack(NULL, len, buf);
    assert_non_null(back);
    assert_string_equal(back->header->event_id, m1.event_id);
    assert_string_equal(back->lease_id, LEASE);
    assert_int_equal(back->fencing_token, 4);
    annot__v1__lease_event__free_unpacked(back, NULL);
}

/* Without a subject (or outside validation) the key is the leased item. */
static void test_build_other_kinds(void **state) {
    (void)state;
    lease_event_rec_t r = rec_of();
    lease_event_msg_t m;
    r.kind = LEASE_EVENT_PARKED;
    r.count = 3;
    lease_event_build(&m, &r, LEASE_QUEUE_ANNOTATION, NULL, "d");
    assert_string_equal(lease_event_key(&m), "asg-9");
    assert_string_equal(m.ev.assignment_id, "");
    assert_int_equal(m.ev.parked->reason, ANNOT__V1__PARK_REASON__PARK_REASON_MAX_ATTEMPTS);
    assert_int_equal(m.ev.parked->attempts, 3);
    assert_string_equal(m.ev.parked->reason_text, "3 leases expired");
    char parked_id[EVENT_ID_LEN];
    memcpy(parked_id, m.event_id, EVENT_ID_LEN);

    r.kind = LEASE_EVENT_EXPIRED;
    r.requeued = false;
    r.max_attempts = 3;
    r.expires_at_ms = 900;
    lease_event_build(&m, &r, LEASE_QUEUE_VALIDATION, NULL, "d");
    assert_string_equal(lease_event_key(&m), "asg-9");
    assert_int_equal(m.ev.expired->detected_at_ms, 1000);
    assert_int_equal(m.ev.expired->expires_at_ms, 900);
    assert_string_not_equal(m.event_id, parked_id);

    r.kind = LEASE_EVENT_RELEASED;
    r.why = LEASE_WHY_REVOKED;
    r.requeued = true;
    lease_event_build(&m, &r, LEASE_QUEUE_EXAM, NULL, "d");
    assert_int_equal(m.ev.queue, ANNOT__V1__QUEUE__QUEUE_EXAM);
    assert_int_equal(m.ev.released->reason, ANNOT__V1__RELEASE_REASON__RELEASE_REASON_REVOKED);
    assert_true(m.ev.released->requeued);
    assert_string_not_equal(m.ev.released->detail, "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_each_kind),
        cmocka_unit_test(test_parse_errors_name_the_field),
        cmocka_unit_test(test_build_and_ids),
        cmocka_unit_test(test_build_other_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
