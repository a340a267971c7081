/* annotctl tasks import FILE.ndjson: one task per line (DESIGN.md section 7,
 * unknown fields refused), produced on the tasks topic for the dispatcher's
 * intake.  Every line is checked before anything is produced, so a file with
 * one bad line imports nothing; then every TaskEvent is produced and waited
 * for.  Importing the same file again is harmless: the intake is idempotent
 * on task_id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annotctl.h"
#include "event.h"
#include "kafka.h"
#include "task_codec.h"

typedef struct import_line {
    uint8_t *bytes;
    size_t len;
    char key[256];
} import_line_t;

/* Reads and encodes every line; 0, or the count of bad lines (reported). */
static int import_read(FILE *f, const char *name, import_line_t **out, size_t *count) {
    char *line = NULL;
    size_t cap = 0, n = 0, alloc = 0;
    int bad = 0, lineno = 0;
    ssize_t len;
    *out = NULL;
    while ((len = getline(&line, &cap, f)) != -1) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)len) continue;
        json_error_t jerr;
        json_t *obj = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);
        char err[512];
        task_proto_t tp;
        if (obj == NULL) {
            fprintf(stderr, "annotctl: %s line %d: %s\n", name, lineno, jerr.text);
            bad++;
            continue;
        }
        if (task_proto_from_json(obj, &tp, err, sizeof(err)) != 0 ||
            task_proto_queueable(&tp.task, err, sizeof(err)) != 0) {
            fprintf(stderr, "annotctl: %s line %d: %s\n", name, lineno, err);
            task_proto_clear(&tp);
            json_decref(obj);
            bad++;
            continue;
        }
        char id[EVENT_ID_LEN];
        event_id_new(id);
        Annot__V1__EventHeader hdr;
        event_header_fill(&hdr, id, "annotctl", "", tp.task.guideline_version);
        tp.task.created_at_ms = hdr.occurred_at_ms;
        Annot__V1__TaskEvent ev = ANNOT__V1__TASK_EVENT__INIT;
        ev.header = &hdr;
        ev.task = &tp.task;
        if (n == alloc) {
            alloc = alloc ? alloc * 2 : 64;
            *out = realloc(*out, alloc * sizeof(**out));
            if (*out == NULL) abort();
        }
        import_line_t *il = &(*out)[n++];
        il->len = annot__v1__task_event__get_packed_size(&ev);
        il->bytes = malloc(il->len);
        if (il->bytes == NULL) abort();
        annot__v1__task_event__pack(&ev, il->bytes);
        snprintf(il->key, sizeof(il->key), "%s", tp.task.task_id);
        task_proto_clear(&tp);
        json_decref(obj);
    }
    free(line);
    *count = n;
    return bad;
}

int annotctl_tasks_import(service_t *svc, int argc, char **argv) {
    if (argc != 1) {
        fprintf(stderr, "annotctl: tasks import FILE.ndjson (or - for standard input)\n");
        return 2;
    }
    FILE *f = strcmp(argv[0], "-") == 0 ? stdin : fopen(argv[0], "r");
    if (f == NULL) {
        perror(argv[0]);
        return 1;
    }
    import_line_t *lines = NULL;
    size_t n = 0;
    int bad = import_read(f, argv[0], &lines, &n);
    if (f != stdin) fclose(f);
    int rc = 0;
    const char *topic = service_topic(svc, "tasks");
    if (bad > 0) {
        fprintf(stderr, "annotctl: %d bad line(s): nothing imported\n", bad);
        rc = 1;
    } else if (topic == NULL) {
        rc = 1;
    } else {
        char err[512];
        kafka_producer_t *p = kafka_producer_new(svc->cfg, "annotctl", err, sizeof(err));
        kafka_delivery_t *ds = calloc(n ? n : 1, sizeof(*ds));
        size_t queued = 0;
        if (p == NULL) {
            fprintf(stderr, "annotctl: %s\n", err);
            rc = 1;
        }
        for (size_t i = 0; rc == 0 && i < n; i++, queued++) {
            if (kafka_produce(p, topic, lines[i].key, strlen(lines[i].key), lines[i].bytes, lines[i].len, &ds[i], err,
                              sizeof(err)) != 0) {
                fprintf(stderr, "annotctl: %s\n", err);
                rc = 1;
            }
        }
        if (p != NULL && kafka_producer_wait(p, ds, queued, err, sizeof(err)) != 0) {
            fprintf(stderr, "annotctl: %s\n", err);
            rc = 1;
        }
        if (rc == 0) printf("imported %zu task(s) to %s\n", n, topic);
        free(ds);
        kafka_producer_destroy(p, 10000);
    }
    for (size_t i = 0; i < n; i++) free(lines[i].bytes);
    free(lines);
    return rc;
}
