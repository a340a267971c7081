/* outbox: see outbox.h. */
#include "outbox.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int outbox_add(pg_t *pg, const char *topic, const void *key, size_t keylen, const void *payload, size_t len,
               char *errstr, size_t errlen) {
    const char *params[3] = {topic, key, payload};
    int lengths[3] = {0, (int)keylen, (int)len};
    int formats[3] = {0, 1, 1};
    PGresult *res = pg_query_ex(pg, PGRES_COMMAND_OK,
                                "INSERT INTO outbox (topic, msg_key, payload) VALUES ($1, $2, $3)", 3, params,
                                lengths, formats, errstr, errlen);
    if (res == NULL) return -1;
    PQclear(res);
    return 0;
}

int outbox_relay(pg_t *pg, kafka_producer_t *producer, size_t *published, char *errstr, size_t errlen) {
    /* Rows are locked while they are published, so two instances of a
     * service never publish the same row at once (SKIP LOCKED). */
    if (pg_begin(pg, errstr, errlen) != 0) return -1;
    PGresult *res = PQexecParams(pg_conn(pg),
                                 "SELECT id, topic, msg_key, payload FROM outbox ORDER BY id "
                                 "LIMIT 500 FOR UPDATE SKIP LOCKED",
                                 0, NULL, NULL, NULL, NULL, 1 /* binary results */);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(errstr, errlen, "outbox: %s", PQresultErrorMessage(res));
        PQclear(res);
        pg_rollback(pg);
        return -1;
    }
    int n = PQntuples(res);
    *published = 0;
    if (n == 0) {
        PQclear(res);
        pg_rollback(pg);
        return 0;
    }
    kafka_delivery_t *ds = calloc((size_t)n, sizeof(*ds));
    size_t idcap = (size_t)n * 21 + 3;
    char *ids = malloc(idcap);
    if (ds == NULL || ids == NULL) abort();
    size_t off = (size_t)snprintf(ids, idcap, "{");
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        uint64_t be;
        memcpy(&be, PQgetvalue(res, i, 0), sizeof(be));
        off += (size_t)snprintf(ids + off, idcap - off, "%s%lld", i ? "," : "", (long long)be64toh(be));
        int nokey = PQgetisnull(res, i, 2);
        rc = kafka_produce(producer, PQgetvalue(res, i, 1), nokey ? NULL : PQgetvalue(res, i, 2),
                           nokey ? 0 : (size_t)PQgetlength(res, i, 2), PQgetvalue(res, i, 3),
                           (size_t)PQgetlength(res, i, 3), &ds[i], errstr, errlen);
        if (rc != 0) n = i; /* wait only for what was enqueued */
    }
    snprintf(ids + off, idcap - off, "}");
    PQclear(res);
    /* Wait even after a failed produce: what was enqueued must not outlive
     * ds. */
    char werr[256];
    if (kafka_producer_wait(producer, ds, (size_t)n, werr, sizeof(werr)) != 0 && rc == 0) {
        snprintf(errstr, errlen, "outbox: %s", werr);
        rc = -1;
    }
    if (rc == 0) {
        const char *params[1] = {ids};
        if (pg_command(pg, "DELETE FROM outbox WHERE id = ANY($1::bigint[])", 1, params, errstr, errlen) < 0 ||
            pg_commit(pg, errstr, errlen) != 0)
            rc = -1;
        else
            *published = (size_t)n;
    }
    if (rc != 0) pg_rollback(pg);
    free(ds);
    free(ids);
    return rc;
}

