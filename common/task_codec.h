/* task_codec: the task between its two shapes, the JSON of DESIGN.md
 * section 7 (imported by operators, returned inside leases) and the
 * protobuf Task of the tasks topic.  The JSON side is parsed strictly by the
 * checker's parser (check_task_from_json: unknown fields refused by name),
 * so there is one definition of what a valid task looks like. */
#ifndef ANNOT_TASK_CODEC_H
#define ANNOT_TASK_CODEC_H

#include <jansson.h>

#include "annot/v1/task.pb-c.h"
#include "check.h"

#define TASK_CODEC_COMPONENTS_MAX 64

/* A protobuf Task whose strings live in the check_task_t beside it. */
typedef struct task_proto {
    Annot__V1__Task task;
    check_task_t owner;
    Annot__V1__Component comp_store[TASK_CODEC_COMPONENTS_MAX];
    Annot__V1__Component *comps[TASK_CODEC_COMPONENTS_MAX];
} task_proto_t;

/* Fills out from a task object; -1 with errstr naming the field.  Release
 * with task_proto_clear, also after a failure. */
int task_proto_from_json(const json_t *obj, task_proto_t *out, char *errstr, size_t errlen);
void task_proto_clear(task_proto_t *tp);

/* Whether the dispatcher's intake can queue t: a task_id that is a valid
 * id, a main object, a priority in range.  The intake checks it, and so
 * does `annotctl tasks import` before it produces anything (the checker's
 * task needs no id; an exam case gets its own from the funnel).  0, or -1
 * with errstr naming the field. */
int task_proto_queueable(const Annot__V1__Task *t, char *errstr, size_t errlen);

/* The task as a lease returns it; the golden reference is never included.
 * NULL when a text field is not valid UTF-8.  The caller owns the result. */
json_t *task_proto_to_json(const Annot__V1__Task *task);

/* "production", "exam_stage1", "exam_stage2", "golden", or NULL. */
const char *task_kind_name(Annot__V1__TaskKind kind);

#endif
