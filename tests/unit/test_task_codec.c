/* Unit tests of the task codec (common/task_codec.h): what `annotctl tasks
 * import` accepts is what the dispatcher's intake queues. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "task_codec.h"

/* Parses text as `annotctl tasks import` does; the rc, err holding the
 * refusal. */
static int parse(const char *text, char *err, size_t errlen) {
    json_t *obj = json_loads(text, 0, NULL);
    assert_non_null(obj);
    task_proto_t tp;
    err[0] = '\0';
    int rc = task_proto_from_json(obj, &tp, err, errlen);
    if (rc == 0) rc = task_proto_queueable(&tp.task, err, errlen);
    task_proto_clear(&tp);
    json_decref(obj);
    return rc;
}

static void test_valid_task_round_trips(void **state) {
    (void)state;
    json_t *obj = json_loads("{\"task_id\":\"t-1\",\"kind\":\"production\",\"main_object\":\"curry rice\","
                             "\"locale\":\"en-US\",\"priority\":5,\"components\":[{\"name\":\"sauce\","
                             "\"relation\":\"poured over\",\"target\":\"rice\"}]}",
                             0, NULL);
    task_proto_t tp;
    char err[256];
    assert_int_equal(task_proto_from_json(obj, &tp, err, sizeof(err)), 0);
    assert_int_equal(task_proto_queueable(&tp.task, err, sizeof(err)), 0);
    json_t *back = task_proto_to_json(&tp.task);
    assert_string_equal(json_string_value(json_object_get(back, "task_id")), "t-1");
    assert_int_equal(json_integer_value(json_object_get(back, "priority")), 5);
    assert_int_equal(json_array_size(json_object_get(back, "components")), 1);
    json_decref(back);
    task_proto_clear(&tp);
    json_decref(obj);
}

/* fuzz_task_json: a task without a task_id was accepted (the checker's task
 * needs none), annotctl formatted the NULL id as its message key, and the
 * dispatcher's intake dead-lettered the task, as it does an id it cannot
 * queue or a priority out of range: an import reported done that imported
 * nothing.  The intake's own check now refuses them up front. */
static void test_task_the_intake_refuses_is_refused(void **state) {
    (void)state;
    static const struct {
        const char *body, *field;
    } cases[] = {
        {"{\"kind\":\"production\",\"main_object\":\"kilt\",\"locale\":\"en-GB\"}", "task.task_id:"},
        {"{\"task_id\":\"\",\"kind\":\"production\",\"main_object\":\"kilt\",\"locale\":\"en-GB\"}", "task.task_id:"},
        {"{\"task_id\":\"t 1\",\"kind\":\"production\",\"main_object\":\"kilt\",\"locale\":\"en-GB\"}", "task.task_id:"},
        {"{\"task_id\":\"t-{1}\",\"kind\":\"production\",\"main_object\":\"kilt\",\"locale\":\"en-GB\"}", "task.task_id:"},
        {"{\"task_id\":\"t-1\",\"kind\":\"production\",\"main_object\":\"kilt\",\"locale\":\"en-GB\",\"priority\":-1}", "task.priority:"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256];
        if (parse(cases[i].body, err, sizeof(err)) == 0) fail_msg("accepted %s", cases[i].body);
        if (strstr(err, cases[i].field) == NULL) fail_msg("'%s' does not name '%s'", err, cases[i].field);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_task_round_trips),
        cmocka_unit_test(test_task_the_intake_refuses_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
