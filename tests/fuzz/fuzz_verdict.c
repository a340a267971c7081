/* fuzz_verdict: the bodies of POST /v1/leases/{id}/submit as the dispatcher
 * parses them (services/annot-dispatcher/verdict.c): a validator's verdict,
 * checked against the real error taxonomy (config/taxonomy.conf), and an
 * annotator's description; and a candidate's screening answers (POST
 * /v1/screening, common/screening.c).  The body is read as
 * http_request_json reads it.
 *
 * Checked: an accepted verdict is scored in [0, 1] with its counts in
 * range; a refused body has an error message that is short and valid UTF-8
 * (it is sent back as a JSON string: one that is not would lose the
 * message). */
#include <jansson.h>
#include <string.h>

#include "../../services/annot-dispatcher/verdict.h"
#include "fuzz.h"
#include "screening.h"

static check_taxonomy_t taxonomy;
static const double weights[4] = {0, 0.05, 0.2, 1.0};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char err[512];
    if (check_taxonomy_load(&taxonomy, "config/taxonomy.conf", err, sizeof(err)) != 0)
        FUZZ_DIE("config/taxonomy.conf: %s", err);
    return 0;
}

static void assert_message(const char *err) {
    FUZZ_ASSERT(err[0] != '\0');
    json_t *m = json_string(err);
    FUZZ_ASSERT(m != NULL);
    json_decref(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_error_t jerr;
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) return 0;
    verdict_t v;
    char err[512] = "";
    if (verdict_parse(body, &taxonomy, weights, &v, err, sizeof(err)) == 0) {
        FUZZ_ASSERT(v.score >= 0.0 && v.score <= 1.0);
        FUZZ_ASSERT(v.nerrors <= VERDICT_ITEMS_MAX && v.nfeedback <= VERDICT_ITEMS_MAX);
        FUZZ_ASSERT(v.accept || v.nerrors > 0);
    } else {
        assert_message(err);
    }
    const char *description;
    err[0] = '\0';
    if (verdict_description_parse(body, &description, err, sizeof(err)) == 0) {
        FUZZ_ASSERT(description != NULL && description[0] != '\0');
    } else {
        assert_message(err);
    }
    const char *screening_id;
    screening_answer_t *answers;
    size_t n;
    err[0] = '\0';
    if (screening_body_parse(body, &screening_id, &answers, &n, err, sizeof(err)) == 0) {
        FUZZ_ASSERT(screening_id != NULL && n <= SCREENING_ANSWERS_MAX);
        for (size_t i = 0; i < n; i++) FUZZ_ASSERT(answers[i].question_id != NULL && answers[i].answer != NULL);
        free(answers);
    } else {
        FUZZ_ASSERT(answers == NULL);
        assert_message(err);
    }
    json_decref(body);
    return 0;
}
