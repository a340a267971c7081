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

#define OUTBOX_ROWS_PER_INSERT 1000

int outbox_add_many(pg_t *pg, const char *topic, size_t n, const void *const *keys, const size_t *keylens,
                    const void *const *payloads, const size_t *lens, char *errstr, size_t errlen) {
    size_t chunk = n < OUTBOX_ROWS_PER_INSERT ? n : OUTBOX_ROWS_PER_INSERT;
    const char **params = calloc(chunk * 2 + 1, sizeof(*params));
    int *lengths = calloc(chunk * 2 + 1, sizeof(*lengths));
    int *formats = calloc(chunk * 2 + 1, sizeof(*formats));
    size_t sqlcap = 64 + chunk * 32;
    char *sql = malloc(sqlcap);
    if (params == NULL || lengths == NULL || formats == NULL || sql == NULL) abort();
    int rc = 0;
    for (size_t from = 0; from < n && rc == 0; from += chunk) {
        size_t m = n - from < chunk ? n - from : chunk;
        size_t o = (size_t)snprintf(sql, sqlcap, "INSERT INTO outbox (topic, msg_key, payload) VALUES ");
        params[0] = topic;
        for (size_t i = 0; i < m; i++) {
            params[1 + 2 * i] = keys[from + i];
            lengths[1 + 2 * i] = (int)keylens[from + i];
            formats[1 + 2 * i] = 1;
            params[2 + 2 * i] = payloads[from + i];
            lengths[2 + 2 * i] = (int)lens[from + i];
            formats[2 + 2 * i] = 1;
            o += (size_t)snprintf(sql + o, sqlcap - o, "%s($1, $%zu, $%zu)", i ? ", " : "", 2 + 2 * i, 3 + 2 * i);
        }
        PGresult *res = pg_query_ex(pg, PGRES_COMMAND_OK, sql, (int)(1 + 2 * m), params, lengths, formats, errstr,
                                    errlen);
        if (res == NULL) rc = -1;
        PQclear(res);
    }
    free(sql);
    free(formats);
    free(lengths);
    free(params);
    return rc;
}

int outbox_relay(pg_t *pg, kafka_producer_t *producer, size_t *published, char *errstr, size_t errlen) {
    /* A connection the server dropped since the last call (a PostgreSQL
     * restart right after a batch committed) is made again here: relays
     * are retried, and each retry must be able to succeed. */
    if (pg_ensure(pg, errstr, errlen) != 0) return -1;
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

