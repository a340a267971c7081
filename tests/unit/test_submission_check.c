/* Unit tests of the autochecker's submission check (pure; its .c file is
 * compiled in here because test binaries link only libannot): what it
 * refuses is dead-lettered by the service, what it accepts is stored in
 * PostgreSQL and published. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../services/annot-autochecker/submission_check.c"
#include "event.h"

static check_rules_t *rules;
static check_scratch_t *scratch;
static check_result_t result;

static int setup(void **state) {
    (void)state;
    char err[512];
    if ((rules = check_rules_load("config/guideline", err, sizeof(err))) == NULL) {
        fprintf(stderr, "config/guideline: %s\n", err);
        return -1;
    }
    scratch = check_scratch_new();
    check_result_init(&result);
    return scratch ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    check_result_free(&result);
    check_scratch_destroy(scratch);
    check_rules_destroy(rules);
    return 0;
}

/* A checkable submission event, every part on the caller's stack. */
typedef struct fixture {
    Annot__V1__EventHeader hdr;
    Annot__V1__Task task;
    Annot__V1__Submission sub;
    Annot__V1__SubmissionEvent ev;
} fixture_t;

static void fixture_init(fixture_t *f) {
    annot__v1__event_header__init(&f->hdr);
    f->hdr.event_id = "00000000-0000-4000-8000-000000000001";
    f->hdr.source = "annot-dispatcher";
    f->hdr.guideline_version = "g-1";
    annot__v1__task__init(&f->task);
    f->task.task_id = "t-1";
    f->task.kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    f->task.main_object = "curry rice";
    f->task.locale = "en-US";
    annot__v1__submission__init(&f->sub);
    f->sub.submission_id = "s-1";
    f->sub.task_id = "t-1";
    f->sub.author_id = "annotator-1";
    f->sub.description = "Curry rice on a white plate, the sauce poured over the rice.";
    f->sub.task = &f->task;
    annot__v1__submission_event__init(&f->ev);
    f->ev.header = &f->hdr;
    f->ev.submission = &f->sub;
}

static int check(const fixture_t *f, char *err, size_t errlen) {
    submission_check_out_t out = {0};
    err[0] = '\0';
    int rc = submission_check(rules, scratch, &f->ev, "test", 1, &result, &out, err, errlen);
    free(out.bytes);
    return rc;
}

static void test_valid_submission_is_checked(void **state) {
    (void)state;
    fixture_t f;
    fixture_init(&f);
    char err[256];
    assert_int_equal(check(&f, err, sizeof(err)), 0);
}

/* The service's finding (fuzz_submission): a submission whose ids or texts
 * were not valid UTF-8 was checked, then refused by PostgreSQL on insert,
 * and retried forever.  The service decodes with event_unpack, which
 * refuses it, naming the field: the service dead-letters it. */
static void assert_undecodable(const fixture_t *f, const char *why) {
    uint8_t buf[4096];
    assert_true(annot__v1__submission_event__get_packed_size(&f->ev) <= sizeof(buf));
    size_t len = annot__v1__submission_event__pack(&f->ev, buf);
    char err[256] = "";
    assert_null(event_unpack(&annot__v1__submission_event__descriptor, buf, len, err, sizeof(err)));
    assert_string_equal(err, why);
}

static void test_strings_not_utf8_are_refused(void **state) {
    (void)state;
    fixture_t f;
    fixture_init(&f);
    f.sub.author_id = "annotator-\xff";
    assert_undecodable(&f, "submission.author_id is not valid UTF-8");
    fixture_init(&f);
    f.task.locale = "en-\xc3";
    assert_undecodable(&f, "submission.task.locale is not valid UTF-8");
    fixture_init(&f);
    f.hdr.guideline_version = "g-\xe2\x82";
    assert_undecodable(&f, "header.guideline_version is not valid UTF-8");
    fixture_init(&f);
    f.sub.description = "Curry rice \xed\xa0\x80 on a plate."; /* a UTF-16 surrogate */
    assert_undecodable(&f, "submission.description is not valid UTF-8");
}

/* fuzz_submission: an event without a header was dereferenced. */
static void test_event_without_header_is_refused(void **state) {
    (void)state;
    char err[256];
    fixture_t f;
    fixture_init(&f);
    f.ev.header = NULL;
    assert_int_equal(check(&f, err, sizeof(err)), -1);
    assert_string_equal(err, "header: missing");
}

/* fuzz_submission: protobuf-c reads a field number 0 written in two bytes
 * (80 00) as an unknown field, keeps it, and writes it back in one byte,
 * which it then refuses to read: the CheckResultEvent, which carries the
 * submission, could not be decoded downstream.  Number 0 is no field
 * number: such an event is refused (dead-lettered). */
static void test_field_number_zero_is_refused(void **state) {
    (void)state;
    char err[256];
    fixture_t f;
    fixture_init(&f);
    ProtobufCMessageUnknownField uf = {.tag = 0, .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT, .len = 1,
                                       .data = (uint8_t *)"\x01"};
    f.sub.base.n_unknown_fields = 1;
    f.sub.base.unknown_fields = &uf;
    assert_int_equal(check(&f, err, sizeof(err)), -1);
    assert_string_equal(err, "submission: a field numbered 0");
    f.sub.base.n_unknown_fields = 0;
    f.task.base.n_unknown_fields = 1;
    f.task.base.unknown_fields = &uf;
    assert_int_equal(check(&f, err, sizeof(err)), -1);
    assert_string_equal(err, "submission.task: a field numbered 0");
    /* Another unknown field (a newer producer's) passes through. */
    uf.tag = 99;
    assert_int_equal(check(&f, err, sizeof(err)), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_submission_is_checked),
        cmocka_unit_test(test_strings_not_utf8_are_refused),
        cmocka_unit_test(test_event_without_header_is_refused),
        cmocka_unit_test(test_field_number_zero_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
