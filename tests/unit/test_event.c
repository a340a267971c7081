/* Unit tests of common/event: event ids (random for originals, derived and
 * stable for replays) and reading the header out of any topic's message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot/v1/candidate.pb-c.h"
#include "annot/v1/submission.pb-c.h"
#include "annot/v1/task.pb-c.h"
#include "event.h"

static char err[256];

/* Checks the canonical lower-case text form and returns the version nibble. */
static int uuid_version(const char *id) {
    assert_int_equal(strlen(id), 36);
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            assert_int_equal(id[i], '-');
        } else {
            assert_true(isxdigit((unsigned char)id[i]));
            assert_false(isupper((unsigned char)id[i]));
        }
    }
    /* RFC 4122 variant: 10xx */
    assert_non_null(strchr("89ab", id[19]));
    return id[14] - '0';
}

static int id_compare(const void *a, const void *b) { return strcmp(a, b); }

#define NEW_IDS 2000

static void test_new_ids_are_distinct_v4(void **state) {
    (void)state;
    char(*ids)[EVENT_ID_LEN] = calloc(NEW_IDS, EVENT_ID_LEN);
    assert_non_null(ids);
    for (size_t i = 0; i < NEW_IDS; i++) {
        event_id_new(ids[i]);
        assert_int_equal(uuid_version(ids[i]), 4);
        assert_true(event_id_valid(ids[i]));
    }
    qsort(ids, NEW_IDS, EVENT_ID_LEN, id_compare);
    for (size_t i = 1; i < NEW_IDS; i++) assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

static void test_derive_deterministic_v5(void **state) {
    (void)state;
    const char *cause = "11111111-2222-4333-8444-555555555555";
    char a[EVENT_ID_LEN], b[EVENT_ID_LEN];
    event_id_derive(a, cause, "check");
    event_id_derive(b, cause, "check");
    assert_string_equal(a, b);
    assert_int_equal(uuid_version(a), 5);
    assert_true(event_id_valid(a));
    /* Pinned: a replay by a newer build must re-emit the same ids, or the
     * downstream ledgers would no longer drop them as duplicates.  (Python:
     * uuid5(UUID('6b1e4a52-930c-4f7e-9d31-2c58a047e219'), cause + '/check')) */
    assert_string_equal(a, "bc0512da-b5d7-5d0e-87a9-270745595564");
}

static void test_derive_differs_by_cause_and_purpose(void **state) {
    (void)state;
    const char *c1 = "11111111-2222-4333-8444-555555555555";
    const char *c2 = "11111111-2222-4333-8444-555555555556";
    char a[EVENT_ID_LEN], b[EVENT_ID_LEN], c[EVENT_ID_LEN], d[EVENT_ID_LEN];
    event_id_derive(a, c1, "check");
    event_id_derive(b, c2, "check");
    event_id_derive(c, c1, "feedback");
    event_id_derive(d, c1, "");
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, d);
    assert_string_not_equal(b, c);
    /* Not the cause's own id either. */
    assert_string_not_equal(a, c1);
}

static void test_derive_long_inputs(void **state) {
    (void)state;
    /* Purposes that differ only at their end still give different ids. */
    char p1[700], p2[700], cause[700];
    memset(p1, 'p', sizeof(p1) - 1);
    p1[sizeof(p1) - 1] = '\0';
    memcpy(p2, p1, sizeof(p2));
    p2[sizeof(p2) - 2] = 'q';
    char a[EVENT_ID_LEN], b[EVENT_ID_LEN];
    event_id_derive(a, "11111111-2222-4333-8444-555555555555", p1);
    event_id_derive(b, "11111111-2222-4333-8444-555555555555", p2);
    assert_string_not_equal(a, b);
    /* A cause longer than any internal buffer (e.g. a topic/partition/offset
     * string) works and is deterministic. */
    memset(cause, 'c', sizeof(cause) - 1);
    cause[sizeof(cause) - 1] = '\0';
    event_id_derive(a, cause, "dead-letter");
    event_id_derive(b, cause, "dead-letter");
    assert_string_equal(a, b);
    assert_int_equal(uuid_version(a), 5);
    cause[sizeof(cause) - 2] = 'd';
    event_id_derive(b, cause, "dead-letter");
    assert_string_not_equal(a, b);
}

static void test_valid_rejects_junk(void **state) {
    (void)state;
    assert_true(event_id_valid("11111111-2222-4333-8444-555555555555"));
    assert_true(event_id_valid("bc0512da-b5d7-5d0e-87a9-270745595564"));
    static const char *const junk[] = {
        "",
        "not-a-uuid",
        "11111111-2222-4333-8444-55555555555",   /* 35 */
        "11111111-2222-4333-8444-5555555555555", /* 37 */
        "11111111-2222-4333-8444-55555555555g",
        "111111112-222-4333-8444-555555555555", /* hyphen moved */
        "11111111 2222 4333 8444 555555555555",
        "{1111111-2222-4333-8444-55555555555}",
        "11111111-2222-4333-8444-555555555555 ",
        "111111112222433384445555555555550000",
        "BC0512DA-B5D7-5D0E-87A9-270745595564", /* upper case: another dedupe key */
    };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        if (event_id_valid(junk[i])) fail_msg("accepted '%s'", junk[i]);
    }
    assert_false(event_id_valid(NULL));
}

/* Packs msg into a malloc'd buffer; len receives its size. */
static uint8_t *pack(const ProtobufCMessage *msg, size_t *len) {
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(msg, buf), *len);
    return buf;
}

static void test_envelope_of_task_event(void **state) {
    (void)state;
    char id[EVENT_ID_LEN];
    event_id_new(id);
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, id, "annotctl", "11111111-2222-4333-8444-555555555555", "2024.11-r3");
    Annot__V1__Task task = ANNOT__V1__TASK__INIT;
    task.task_id = "task-1";
    task.kind = ANNOT__V1__TASK_KIND__TASK_KIND_PRODUCTION;
    task.image_uri = "s3://bucket/1.jpg";
    task.locale = "de-DE";
    task.priority = 7;
    Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
    ev.header = &hdr;
    ev.task = &task;
    size_t len;
    uint8_t *buf = pack(&ev.base, &len);

    Annot__V1__EventEnvelope *env = event_envelope_decode(buf, len, err, sizeof(err));
    assert_non_null(env);
    assert_non_null(env->header);
    assert_string_equal(env->header->event_id, id);
    assert_string_equal(env->header->source, "annotctl");
    assert_string_equal(env->header->causation_id, "11111111-2222-4333-8444-555555555555");
    assert_string_equal(env->header->guideline_version, "2024.11-r3");
    assert_true(env->header->occurred_at_ms == hdr.occurred_at_ms);
    assert_true(hdr.occurred_at_ms > 0);
    event_envelope_free(env);
    free(buf);
}

static void test_envelope_of_other_message(void **state) {
    (void)state;
    /* The same call works for another topic's message type. */
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, "bc0512da-b5d7-5d0e-87a9-270745595564", "annot-dispatcher", NULL, NULL);
    Annot__V1__SubmissionEvent ev = ANNOT__V1__SUBMISSION_EVENT__INIT;
    ev.header = &hdr;
    size_t len;
    uint8_t *buf = pack(&ev.base, &len);
    Annot__V1__EventEnvelope *env = event_envelope_decode(buf, len, err, sizeof(err));
    assert_non_null(env);
    assert_string_equal(env->header->event_id, "bc0512da-b5d7-5d0e-87a9-270745595564");
    assert_string_equal(env->header->source, "annot-dispatcher");
    assert_string_equal(env->header->causation_id, "");
    event_envelope_free(env);
    free(buf);
}

static void test_envelope_without_header(void **state) {
    (void)state;
    Annot__V1__Task task = ANNOT__V1__TASK__INIT;
    task.task_id = "task-1";
    Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
    ev.task = &task; /* no header */
    size_t len;
    uint8_t *buf = pack(&ev.base, &len);
    assert_true(len > 0);
    assert_null(event_envelope_decode(buf, len, err, sizeof(err)));
    assert_string_equal(err, "not a protobuf message with an event header");
    free(buf);
    assert_null(event_envelope_decode("", 0, err, sizeof(err)));
}

static void test_envelope_of_garbage(void **state) {
    (void)state;
    static const uint8_t junk1[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t truncated[] = {0x0a, 0x20, 0x0a, 0x03, 'a'}; /* header longer than the bytes */
    const char *text = "{\"event_id\": \"not protobuf\"}";
    assert_null(event_envelope_decode(junk1, sizeof(junk1), err, sizeof(err)));
    assert_null(event_envelope_decode(truncated, sizeof(truncated), err, sizeof(err)));
    assert_null(event_envelope_decode(text, strlen(text), err, sizeof(err)));
    /* Cutting a real message short is garbage too. */
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, "bc0512da-b5d7-5d0e-87a9-270745595564", "x", NULL, NULL);
    Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
    ev.header = &hdr;
    size_t len;
    uint8_t *buf = pack(&ev.base, &len);
    assert_null(event_envelope_decode(buf, len - 3, err, sizeof(err)));
    free(buf);
    event_envelope_free(NULL);
}

/* A header string that is not UTF-8 (PostgreSQL would refuse it in
 * processed_events, or the guideline version in a metric row, on every
 * retry): the envelope does not decode, and says which field. */
static void test_envelope_header_must_be_utf8(void **state) {
    (void)state;
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, "bc0512da-b5d7-5d0e-87a9-270745595564", "x", NULL, "2026.\xc3");
    Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
    ev.header = &hdr;
    size_t len;
    uint8_t *buf = pack(&ev.base, &len);
    assert_null(event_envelope_decode(buf, len, err, sizeof(err)));
    assert_string_equal(err, "header.guideline_version is not valid UTF-8");
    free(buf);
}

/* event_unpack: the type's bytes decode and every string is checked, at
 * any depth, repeated fields and the oneof member that is set included. */
static void test_unpack_checks_every_string(void **state) {
    (void)state;
    Annot__V1__EventHeader hdr;
    event_header_fill(&hdr, "bc0512da-b5d7-5d0e-87a9-270745595564", "itest", NULL, "版本 3");
    Annot__V1__CandidateApplied ap = ANNOT__V1__CANDIDATE_APPLIED__INIT;
    char *skills[] = {"food", "dress\x80"};
    ap.name = "Ann";
    ap.locale = "ja-JP";
    ap.skills = skills;
    ap.n_skills = 2;
    Annot__V1__CandidateEvent ev = ANNOT__V1__CANDIDATE_EVENT__INIT;
    ev.header = &hdr;
    ev.candidate_id = "c1";
    ev.event_case = ANNOT__V1__CANDIDATE_EVENT__EVENT_APPLIED;
    ev.applied = &ap;
    size_t len;
    uint8_t *buf = pack(&ev.base, &len);
    assert_null(event_unpack(&annot__v1__candidate_event__descriptor, buf, len, err, sizeof(err)));
    assert_string_equal(err, "applied.skills[1] is not valid UTF-8");
    free(buf);

    skills[1] = "dress";
    ap.name = "Ann \xff\xfe";
    buf = pack(&ev.base, &len);
    assert_null(event_unpack(&annot__v1__candidate_event__descriptor, buf, len, err, sizeof(err)));
    assert_string_equal(err, "applied.name is not valid UTF-8");
    free(buf);

    ap.name = "Анна";
    buf = pack(&ev.base, &len);
    Annot__V1__CandidateEvent *got =
        (Annot__V1__CandidateEvent *)event_unpack(&annot__v1__candidate_event__descriptor, buf, len, err, sizeof(err));
    assert_non_null(got);
    assert_string_equal(got->applied->name, "Анна");
    assert_string_equal(got->applied->skills[1], "dress");
    annot__v1__candidate_event__free_unpacked(got, NULL);

    /* Cut short, the bytes are no CandidateEvent. */
    assert_null(event_unpack(&annot__v1__candidate_event__descriptor, buf, len - 2, err, sizeof(err)));
    assert_string_equal(err, "not a CandidateEvent");
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_ids_are_distinct_v4),
        cmocka_unit_test(test_derive_deterministic_v5),
        cmocka_unit_test(test_derive_differs_by_cause_and_purpose),
        cmocka_unit_test(test_derive_long_inputs),
        cmocka_unit_test(test_valid_rejects_junk),
        cmocka_unit_test(test_envelope_of_task_event),
        cmocka_unit_test(test_envelope_of_other_message),
        cmocka_unit_test(test_envelope_without_header),
        cmocka_unit_test(test_envelope_of_garbage),
        cmocka_unit_test(test_envelope_header_must_be_utf8),
        cmocka_unit_test(test_unpack_checks_every_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
