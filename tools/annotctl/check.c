/* annotctl check: the offline lint for guideline authors.  Reads lines
 * {"task": {...}, "description": "..."} from a file or stdin ("-") and writes
 * one result line per input line to stdout, in order, so output line N
 * answers input line N.  A bad line gets an error object on its output line
 * and a message naming the line on stderr, and the run goes on.  Exit 1 if
 * any finding is blocking or any line was bad (or the input or the rules
 * cannot be read), 0 otherwise, 2 for bad usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annotctl.h"
#include "check.h"

static void check_line_error(size_t lineno, const char *message) {
    fprintf(stderr, "annotctl: check: line %zu: %s\n", lineno, message);
    json_t *e = json_pack("{s:s, s:I, s:s}", "error", "bad_input", "line", (json_int_t)lineno, "message", message);
    char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
    /* message came from our parser or jansson and is valid UTF-8; if
     * packing fails anyway, keep the one-line-per-input promise. */
    printf("%s\n", s ? s : "{\"error\":\"bad_input\"}");
    free(s);
    json_decref(e);
}

int annotctl_check(service_t *svc, int argc, char **argv) {
    if (argc != 1) {
        fprintf(stderr, "annotctl: usage: check FILE.ndjson (or - for stdin)\n");
        return 2;
    }
    FILE *in = strcmp(argv[0], "-") == 0 ? stdin : fopen(argv[0], "r");
    if (in == NULL) {
        fprintf(stderr, "annotctl: check: %s: %s\n", argv[0], strerror(errno));
        return 1;
    }
    char dir[4096], err[512];
    service_config_path(svc, "guideline", dir, sizeof(dir));
    check_rules_t *rules = check_rules_load(dir, err, sizeof(err));
    check_scratch_t *scratch = check_scratch_new();
    if (rules == NULL || scratch == NULL) {
        fprintf(stderr, "annotctl: check: %s\n", rules ? "out of memory" : err);
        check_rules_destroy(rules);
        check_scratch_destroy(scratch);
        if (in != stdin) fclose(in);
        return 1;
    }
    check_result_t result;
    check_result_init(&result);
    char *line = NULL;
    size_t cap = 0, lineno = 0, bad = 0, blocking = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, in)) != -1) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)n) continue; /* blank lines are not input */
        json_error_t jerr;
        /* JSON_ALLOW_NUL: a description may carry a \u0000, which is a
         * finding (control character), not a reason to refuse the line. */
        json_t *req = json_loadb(line, (size_t)n, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
        if (req == NULL) {
            char msg[300];
            snprintf(msg, sizeof(msg), "not JSON: %s (column %d)", jerr.text, jerr.column);
            check_line_error(lineno, msg);
            bad++;
            continue;
        }
        check_task_t task;
        const char *text;
        size_t len;
        if (check_request_from_json(req, &task, &text, &len, err, sizeof(err)) != 0 ||
            check_run(rules, scratch, &task, text, len, &result, err, sizeof(err)) != 0) {
            check_line_error(lineno, err);
            bad++;
        } else {
            json_t *out = check_result_to_json(&result);
            char *s = out ? json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
            if (s == NULL) {
                check_line_error(lineno, "out of memory");
                bad++;
            } else {
                printf("%s\n", s);
                blocking += result.blocking;
            }
            free(s);
            json_decref(out);
        }
        check_task_clear(&task);
        json_decref(req);
    }
    int read_failed = ferror(in);
    if (read_failed) fprintf(stderr, "annotctl: check: %s: read error\n", argv[0]);
    free(line);
    if (in != stdin) fclose(in);
    check_result_free(&result);
    check_scratch_destroy(scratch);
    check_rules_destroy(rules);
    if (fflush(stdout) != 0) return 1;
    if (bad || blocking)
        fprintf(stderr, "annotctl: check: %zu line(s), %zu bad, %zu with blocking findings\n", lineno, bad, blocking);
    return bad || blocking || read_failed ? 1 : 0;
}
