/* fuzz_submission: a message of the submissions topic as annot-autochecker
 * takes it (services/annot-autochecker/submission_check.c): protobuf bytes
 * unpacked as a SubmissionEvent by event_unpack (strings checked, as the
 * service does), then validated and checked with the real rules of
 * config/guideline.
 *
 * Checked: what the two accept can be stored and published: its
 * strings are valid UTF-8 (PostgreSQL refuses anything else, and a refused
 * insert is retried forever), and its CheckResultEvent unpacks again. */
#include <string.h>

#include "../../services/annot-autochecker/submission_check.h"
#include "event.h"
#include "fuzz_checker.h"
#include "utf8.h"

static fuzz_checker_t checker;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_checker_init(&checker);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512] = "";
    /* As the service decodes it (strings checked). */
    Annot__V1__SubmissionEvent *ev =
        (Annot__V1__SubmissionEvent *)event_unpack(&annot__v1__submission_event__descriptor, data, size, err, sizeof(err));
    if (ev == NULL) return 0;
    submission_check_out_t out = {0};
    if (submission_check(checker.rules, checker.scratch, ev, "fuzz", 1, &checker.result, &out, err, sizeof(err)) == 0) {
        const Annot__V1__Submission *s = ev->submission;
        /* What the autochecker stores in check_results. */
        const char *stored[] = {s->submission_id, s->task_id, s->author_id, s->task->locale,
                                ev->header->guideline_version};
        for (size_t i = 0; i < sizeof(stored) / sizeof(stored[0]); i++)
            FUZZ_ASSERT(stored[i] != NULL && utf8_valid(stored[i], strlen(stored[i])));
        Annot__V1__CheckResultEvent *back = annot__v1__check_result_event__unpack(NULL, out.len, out.bytes);
        FUZZ_ASSERT(back != NULL && back->check != NULL);
        FUZZ_ASSERT(back->check->n_findings == checker.result.count);
        annot__v1__check_result_event__free_unpacked(back, NULL);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    free(out.bytes);
    annot__v1__submission_event__free_unpacked(ev, NULL);
    return 0;
}
