/* fuzz_task_json: a task line as `annotctl tasks import` reads it and the
 * dispatcher returns it: JSON (DESIGN.md section 7) parsed strictly by
 * task_proto_from_json, packed as the tasks topic's TaskEvent, unpacked and
 * turned back into JSON by task_proto_to_json.  The same bytes also go
 * through check_request_from_json, the checker's request shape (annotctl
 * check and the corpus).
 *
 * Checked: an accepted task survives the round trip (same id, main object
 * and component count), and JSON that jansson accepted is valid UTF-8, so
 * the lease's JSON of it is never NULL; a refusal's message is valid UTF-8
 * (annotctl prints it, the dispatcher's POST /v1/check answers with it). */
#include <jansson.h>
#include <string.h>

#include "annot/v1/task.pb-c.h"
#include "fuzz.h"
#include "task_codec.h"
#include "utf8.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

static void task_round_trip(const json_t *obj) {
    char err[512];
    task_proto_t tp;
    if (task_proto_from_json(obj, &tp, err, sizeof(err)) != 0) {
        FUZZ_ASSERT(err[0] != '\0' && utf8_valid(err, strlen(err)));
        task_proto_clear(&tp);
        return;
    }
    Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
    ev.task = &tp.task;
    size_t len = annot__v1__task_event__get_packed_size(&ev);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) abort();
    FUZZ_ASSERT(annot__v1__task_event__pack(&ev, buf) == len);
    Annot__V1__TaskEvent *back = annot__v1__task_event__unpack(NULL, len, buf);
    FUZZ_ASSERT(back != NULL && back->task != NULL);
    /* What annotctl would import has an id (the checker's task need not). */
    if (task_proto_queueable(&tp.task, err, sizeof(err)) == 0)
        FUZZ_ASSERT(strcmp(back->task->task_id, tp.task.task_id) == 0);
    FUZZ_ASSERT(strcmp(back->task->main_object, tp.task.main_object) == 0);
    FUZZ_ASSERT(back->task->n_components == tp.task.n_components);
    json_t *j = task_proto_to_json(back->task);
    FUZZ_ASSERT(j != NULL);
    char *text = json_dumps(j, JSON_COMPACT);
    FUZZ_ASSERT(text != NULL);
    free(text);
    json_decref(j);
    annot__v1__task_event__free_unpacked(back, NULL);
    free(buf);
    task_proto_clear(&tp);
}

static void request_parse(const json_t *obj) {
    char err[512];
    check_task_t task;
    const char *description;
    size_t len;
    if (check_request_from_json(obj, &task, &description, &len, err, sizeof(err)) == 0) {
        FUZZ_ASSERT(description != NULL);
        FUZZ_ASSERT(task.main_object != NULL);
    } else {
        FUZZ_ASSERT(err[0] != '\0' && utf8_valid(err, strlen(err)));
    }
    check_task_clear(&task);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_error_t jerr;
    json_t *obj = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL) return 0;
    task_round_trip(obj);
    request_parse(obj);
    json_decref(obj);
    return 0;
}
