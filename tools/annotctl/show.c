/* show: the `show` commands' common part, a record and its history as one
 * JSON document. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "annotctl.h"

int annotctl_show_record(pg_t *pg, const char *record_sql, int nparams, const char *const *params,
                         const char *history_sql, const char *missing) {
    char err[1024];
    int rc = 1;
    PGresult *hist = NULL, *res = pg_query(pg, PGRES_TUPLES_OK, record_sql, nparams, params, err, sizeof(err));
    if (res == NULL) {
        fprintf(stderr, "annotctl: postgresql: %s\n", err);
        goto out;
    }
    if (PQntuples(res) == 0) {
        fprintf(stderr, "annotctl: no ");
        fprintf(stderr, missing, params[0]);
        fprintf(stderr, "\n");
        goto out;
    }
    hist = pg_query(pg, PGRES_TUPLES_OK, history_sql, 1, params, err, sizeof(err));
    if (hist == NULL) {
        fprintf(stderr, "annotctl: postgresql: %s\n", err);
        goto out;
    }
    json_t *o = json_loads(PQgetvalue(res, 0, 0), 0, NULL), *h = json_loads(PQgetvalue(hist, 0, 0), 0, NULL);
    if (o == NULL) {
        fprintf(stderr, "annotctl: the record of %s is not JSON\n", params[0]);
        json_decref(h);
        goto out;
    }
    json_object_set_new(o, "history", h ? h : json_array());
    char *text = json_dumps(o, JSON_INDENT(2));
    printf("%s\n", text);
    free(text);
    json_decref(o);
    rc = 0;
out:
    PQclear(res);
    PQclear(hist);
    return rc;
}
