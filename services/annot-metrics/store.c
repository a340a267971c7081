/* store: see store.h. */
#include "store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rows per INSERT: 17 parameters each, well under PostgreSQL's 65535. */
#define STORE_ROWS_PER_STATEMENT 200
#define STORE_PARAMS 17

#define STORE_RETURNING                                                                                         \
    " RETURNING metric, window_kind, (extract(epoch FROM window_start) * 1000)::bigint, "                       \
    "CASE WHEN window_end = 'infinity' THEN NULL ELSE (extract(epoch FROM window_end) * 1000)::bigint END, "     \
    "guideline_version, labels::text, c0, c1, c2, c3, c4, c5, s0, vmin, vmax, hist::text, revision, "           \
    "final_published"

static void ts_text(char *out, size_t len, int64_t ms) {
    if (ms == WINDOW_OPEN_END) {
        snprintf(out, len, "infinity");
        return;
    }
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000));
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, len, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00", (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(((ms % 1000) + 1000) % 1000));
}

/* "{n,n,...}" of a histogram. */
static char *hist_text(const int64_t *h) {
    size_t cap = STATS_HIST_BUCKETS * 21 + 3, o = 0;
    char *s = malloc(cap);
    if (s == NULL) abort();
    s[o++] = '{';
    for (int i = 0; i < STATS_HIST_BUCKETS; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s%lld", i ? "," : "", (long long)h[i]);
    snprintf(s + o, cap - o, "}");
    return s;
}

static int hist_parse(const char *text, int64_t *h) {
    memset(h, 0, STATS_HIST_BUCKETS * sizeof(*h));
    const char *p = text;
    if (*p++ != '{') return -1;
    for (int i = 0; i < STATS_HIST_BUCKETS && *p && *p != '}'; i++) {
        char *end;
        h[i] = strtoll(p, &end, 10);
        p = *end == ',' ? end + 1 : end;
    }
    return 0;
}

static int row_parse(PGresult *res, int r, rollup_row_t *row) {
    memset(row, 0, sizeof(*row));
    snprintf(row->metric, sizeof(row->metric), "%s", PQgetvalue(res, r, 0));
    window_kind_t kind;
    if (window_kind_parse(PQgetvalue(res, r, 1), &kind) != 0) return -1;
    row->window.kind = kind;
    row->window.start_ms = strtoll(PQgetvalue(res, r, 2), NULL, 10);
    row->window.end_ms = PQgetisnull(res, r, 3) ? WINDOW_OPEN_END : strtoll(PQgetvalue(res, r, 3), NULL, 10);
    snprintf(row->gv, sizeof(row->gv), "%s", PQgetvalue(res, r, 4));
    snprintf(row->labels, sizeof(row->labels), "%s", PQgetvalue(res, r, 5));
    for (int i = 0; i < SERIES_COUNTERS; i++) row->value.c[i] = strtoll(PQgetvalue(res, r, 6 + i), NULL, 10);
    row->value.sum = strtod(PQgetvalue(res, r, 12), NULL);
    row->value.vmin = PQgetisnull(res, r, 13) ? NAN : strtod(PQgetvalue(res, r, 13), NULL);
    row->value.vmax = PQgetisnull(res, r, 14) ? NAN : strtod(PQgetvalue(res, r, 14), NULL);
    if (!PQgetisnull(res, r, 15)) {
        if (hist_parse(PQgetvalue(res, r, 15), row->hist_buf) != 0) return -1;
        row->value.hist = row->hist_buf;
    }
    row->revision = strtoll(PQgetvalue(res, r, 16), NULL, 10);
    row->final = PQgetvalue(res, r, 17)[0] == 't';
    return 0;
}

static int rows_deliver(PGresult *res, store_row_fn fn, void *opaque, char *errstr, size_t errlen) {
    rollup_row_t *row = malloc(sizeof(*row));
    if (row == NULL) abort();
    int rc = 0;
    for (int r = 0; r < PQntuples(res) && rc == 0; r++) {
        if (row_parse(res, r, row) != 0) {
            snprintf(errstr, errlen, "rollup row %d does not parse", r);
            rc = -1;
        } else {
            rc = fn(opaque, row, errstr, errlen);
        }
    }
    free(row);
    return rc;
}

static int key_cmp(const series_key_t *a, const series_key_t *b) {
    int c = strcmp(a->metric, b->metric);
    if (c) return c;
    if (a->window.kind != b->window.kind) return a->window.kind < b->window.kind ? -1 : 1;
    if (a->window.start_ms != b->window.start_ms) return a->window.start_ms < b->window.start_ms ? -1 : 1;
    if ((c = strcmp(a->gv, b->gv))) return c;
    return strcmp(a->labels, b->labels);
}

static int idx_cmp(const void *x, const void *y, void *batch) {
    return key_cmp(series_batch_key(batch, *(const size_t *)x), series_batch_key(batch, *(const size_t *)y));
}

/* One multi-row upsert of points order[from..to). */
static int flush_chunk(pg_t *pg, const series_batch_t *batch, const size_t *order, size_t from, size_t to,
                       int64_t now_ms, int64_t grace_ms, store_row_fn fn, void *opaque, char *errstr,
                       size_t errlen) {
    size_t n = to - from;
    size_t sqlcap = 1024 + n * 256;
    char *sql = malloc(sqlcap);
    const char **params = calloc(n * STORE_PARAMS, sizeof(*params));
    char(*text)[12][80] = calloc(n, sizeof(*text));
    char **hists = calloc(n, sizeof(*hists));
    if (sql == NULL || params == NULL || text == NULL || hists == NULL) abort();
    size_t o = (size_t)snprintf(sql, sqlcap,
                                "INSERT INTO rollups (metric, window_kind, window_start, window_end, "
                                "guideline_version, labels, c0, c1, c2, c3, c4, c5, s0, vmin, vmax, hist, "
                                "final_published) VALUES ");
    for (size_t i = 0; i < n; i++) {
        const series_key_t *k = series_batch_key(batch, order[from + i]);
        const series_value_t *v = series_batch_value(batch, order[from + i]);
        const char **p = params + i * STORE_PARAMS;
        char(*t)[80] = text[i];
        p[0] = k->metric;
        p[1] = window_kind_name(k->window.kind);
        ts_text(t[0], sizeof(t[0]), k->window.start_ms);
        ts_text(t[1], sizeof(t[1]), k->window.end_ms);
        p[2] = t[0];
        p[3] = t[1];
        p[4] = k->gv;
        p[5] = k->labels;
        for (int c = 0; c < SERIES_COUNTERS; c++) {
            snprintf(t[2 + c], sizeof(t[0]), "%lld", (long long)v->c[c]);
            p[6 + c] = t[2 + c];
        }
        snprintf(t[8], sizeof(t[0]), "%.17g", v->sum);
        p[12] = t[8];
        if (!isnan(v->vmin)) {
            snprintf(t[9], sizeof(t[0]), "%.17g", v->vmin);
            snprintf(t[10], sizeof(t[0]), "%.17g", v->vmax);
            p[13] = t[9];
            p[14] = t[10];
        }
        if (v->hist) p[15] = hists[i] = hist_text(v->hist);
        p[16] = window_closed(&k->window, now_ms, grace_ms) ? "true" : "false";
        int b = (int)(i * STORE_PARAMS);
        o += (size_t)snprintf(sql + o, sqlcap - o,
                              "%s($%d, $%d, $%d::timestamptz, $%d::timestamptz, $%d, $%d::jsonb, $%d::bigint, "
                              "$%d::bigint, $%d::bigint, $%d::bigint, $%d::bigint, $%d::bigint, $%d::float8, "
                              "$%d::float8, $%d::float8, $%d::bigint[], $%d::boolean)",
                              i ? ", " : "", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10,
                              b + 11, b + 12, b + 13, b + 14, b + 15, b + 16, b + 17);
    }
    snprintf(sql + o, sqlcap - o,
             " ON CONFLICT (metric, window_kind, window_start, guideline_version, labels) DO UPDATE SET "
             "c0 = rollups.c0 + EXCLUDED.c0, c1 = rollups.c1 + EXCLUDED.c1, c2 = rollups.c2 + EXCLUDED.c2, "
             "c3 = rollups.c3 + EXCLUDED.c3, c4 = rollups.c4 + EXCLUDED.c4, c5 = rollups.c5 + EXCLUDED.c5, "
             "s0 = rollups.s0 + EXCLUDED.s0, vmin = least(rollups.vmin, EXCLUDED.vmin), "
             "vmax = greatest(rollups.vmax, EXCLUDED.vmax), hist = hist_add(rollups.hist, EXCLUDED.hist), "
             "revision = rollups.revision + 1, "
             "final_published = rollups.final_published OR EXCLUDED.final_published, updated_at = now()"
             STORE_RETURNING);
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, sql, (int)(n * STORE_PARAMS), params, errstr, errlen);
    int rc = res ? rows_deliver(res, fn, opaque, errstr, errlen) : -1;
    PQclear(res);
    for (size_t i = 0; i < n; i++) free(hists[i]);
    free(hists);
    free(text);
    free(params);
    free(sql);
    return rc;
}

int store_flush(pg_t *pg, const series_batch_t *batch, int64_t now_ms, int64_t grace_ms, store_row_fn fn,
                void *opaque, char *errstr, size_t errlen) {
    size_t n = series_batch_count(batch);
    if (n == 0) return 0;
    size_t *order = malloc(n * sizeof(*order));
    if (order == NULL) abort();
    for (size_t i = 0; i < n; i++) order[i] = i;
    qsort_r(order, n, sizeof(*order), idx_cmp, (void *)batch);
    int rc = 0;
    for (size_t from = 0; from < n && rc == 0; from += STORE_ROWS_PER_STATEMENT) {
        size_t to = from + STORE_ROWS_PER_STATEMENT < n ? from + STORE_ROWS_PER_STATEMENT : n;
        rc = flush_chunk(pg, batch, order, from, to, now_ms, grace_ms, fn, opaque, errstr, errlen);
    }
    free(order);
    return rc;
}

int store_sweep_final(pg_t *pg, int64_t now_ms, int64_t grace_ms, int limit, store_row_fn fn, void *opaque,
                      size_t *count, char *errstr, size_t errlen) {
    char cutoff[80], lim[16];
    ts_text(cutoff, sizeof(cutoff), now_ms - grace_ms);
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *params[2] = {cutoff, lim};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "UPDATE rollups SET final_published = true WHERE (metric, window_kind, window_start, "
                             "guideline_version, labels) IN (SELECT metric, window_kind, window_start, "
                             "guideline_version, labels FROM rollups WHERE NOT final_published AND window_end <= "
                             "$1::timestamptz ORDER BY window_end LIMIT $2::int FOR UPDATE SKIP LOCKED)" STORE_RETURNING,
                             2, params, errstr, errlen);
    if (res == NULL) return -1;
    *count = (size_t)PQntuples(res);
    int rc = rows_deliver(res, fn, opaque, errstr, errlen);
    PQclear(res);
    return rc;
}

int store_setting(pg_t *pg, const char *key, double value, char *errstr, size_t errlen) {
    char v[40];
    snprintf(v, sizeof(v), "%.17g", value);
    const char *params[2] = {key, v};
    return pg_command(pg,
                      "INSERT INTO settings (key, value) VALUES ($1, $2::float8) "
                      "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                      2, params, errstr, errlen) < 0
               ? -1
               : 0;
}

int store_pair_take(pg_t *pg, const char *pair_id, const char *validation_id, const char *validator_id,
                    int verdict, double score, contrib_half_t *other, char *validator_buf, size_t buflen,
                    char *errstr, size_t errlen) {
    /* The other half, taken (deleted) if it is there. */
    const char *p2[2] = {pair_id, validation_id};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "DELETE FROM pair_halves WHERE pair_id = $1 AND validation_id <> $2 "
                             "RETURNING validator_id, verdict, score",
                             2, p2, errstr, errlen);
    if (res == NULL) return -1;
    if (PQntuples(res) > 0) {
        snprintf(validator_buf, buflen, "%s", PQgetvalue(res, 0, 0));
        other->validator_id = validator_buf;
        other->verdict = (Annot__V1__Verdict)atoi(PQgetvalue(res, 0, 1));
        other->score = strtod(PQgetvalue(res, 0, 2), NULL);
        PQclear(res);
        return 1;
    }
    PQclear(res);
    char v[8], s[40];
    snprintf(v, sizeof(v), "%d", verdict);
    snprintf(s, sizeof(s), "%.17g", score);
    const char *p5[5] = {pair_id, validation_id, validator_id, v, s};
    if (pg_command(pg,
                   "INSERT INTO pair_halves (pair_id, validation_id, validator_id, verdict, score) "
                   "VALUES ($1, $2, $3, $4::smallint, $5::float8) ON CONFLICT DO NOTHING",
                   5, p5, errstr, errlen) < 0)
        return -1;
    return 0;
}

int store_beat_get(pg_t *pg, const char *lease_id, contrib_beat_t *beat, char *errstr, size_t errlen) {
    const char *p[1] = {lease_id};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK, "SELECT last_at_ms, heartbeat_count FROM lease_beats WHERE lease_id = $1",
                             1, p, errstr, errlen);
    if (res == NULL) return -1;
    int found = PQntuples(res) > 0;
    if (found) {
        beat->at_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        beat->count = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    return found;
}

int store_beat_set(pg_t *pg, const char *lease_id, const contrib_beat_t *beat, char *errstr, size_t errlen) {
    char at[24], n[16];
    snprintf(at, sizeof(at), "%lld", (long long)beat->at_ms);
    snprintf(n, sizeof(n), "%u", beat->count);
    const char *p[3] = {lease_id, at, n};
    return pg_command(pg,
                      "INSERT INTO lease_beats (lease_id, last_at_ms, heartbeat_count) VALUES ($1, $2, $3) "
                      "ON CONFLICT (lease_id) DO UPDATE SET last_at_ms = greatest(lease_beats.last_at_ms, "
                      "EXCLUDED.last_at_ms), heartbeat_count = greatest(lease_beats.heartbeat_count, "
                      "EXCLUDED.heartbeat_count), recorded_at = now()",
                      3, p, errstr, errlen) < 0
               ? -1
               : 0;
}

int store_beat_end(pg_t *pg, const char *lease_id, char *errstr, size_t errlen) {
    const char *p[1] = {lease_id};
    return pg_command(pg, "DELETE FROM lease_beats WHERE lease_id = $1", 1, p, errstr, errlen) < 0 ? -1 : 0;
}

int store_stage_enter(pg_t *pg, const char *candidate_id, int stage, const char *cohort_day, int64_t at_ms,
                      char *errstr, size_t errlen) {
    char st[8], at[24];
    snprintf(st, sizeof(st), "%d", stage);
    snprintf(at, sizeof(at), "%lld", (long long)at_ms);
    const char *p[4] = {candidate_id, st, cohort_day, at};
    /* A re-application starts the stages again: the latest entry counts. */
    return pg_command(pg,
                      "INSERT INTO candidate_stages (candidate_id, stage, cohort_day, entered_at_ms) "
                      "VALUES ($1, $2::smallint, $3, $4) ON CONFLICT (candidate_id, stage) DO UPDATE SET "
                      "cohort_day = EXCLUDED.cohort_day, entered_at_ms = EXCLUDED.entered_at_ms",
                      4, p, errstr, errlen) < 0
               ? -1
               : 0;
}

int store_stage_get(pg_t *pg, const char *candidate_id, int stage, int64_t *entered_at_ms, char *cohort_buf,
                    size_t buflen, char *errstr, size_t errlen) {
    char st[8];
    snprintf(st, sizeof(st), "%d", stage);
    const char *p[2] = {candidate_id, st};
    PGresult *res = pg_query(pg, PGRES_TUPLES_OK,
                             "SELECT cohort_day, entered_at_ms FROM candidate_stages "
                             "WHERE candidate_id = $1 AND stage = $2::smallint",
                             2, p, errstr, errlen);
    if (res == NULL) return -1;
    int found = PQntuples(res) > 0;
    if (found) {
        snprintf(cohort_buf, buflen, "%s", PQgetvalue(res, 0, 0));
        *entered_at_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    return found;
}

int store_guideline_version(pg_t *pg, const char *version, int64_t published_at_ms, const char *published_by,
                            char *errstr, size_t errlen) {
    char at[24];
    snprintf(at, sizeof(at), "%lld", (long long)published_at_ms);
    const char *p[3] = {version, at, published_by};
    return pg_command(pg,
                      "INSERT INTO guideline_versions (version, published_at_ms, published_by) VALUES ($1, $2, $3) "
                      "ON CONFLICT (version) DO NOTHING",
                      3, p, errstr, errlen) < 0
               ? -1
               : 0;
}

int store_prune_state(pg_t *pg, int64_t now_ms, int64_t retention_ms, long *pruned, char *errstr, size_t errlen) {
    /* By the wall clock of the last update, not by event time: a replay of
     * old events must find its state. */
    char cutoff[80];
    ts_text(cutoff, sizeof(cutoff), now_ms - retention_ms);
    const char *p[1] = {cutoff};
    long a = pg_command(pg, "DELETE FROM lease_beats WHERE recorded_at < $1::timestamptz", 1, p, errstr, errlen);
    if (a < 0) return -1;
    long b = pg_command(pg, "DELETE FROM pair_halves WHERE recorded_at < $1::timestamptz", 1, p, errstr, errlen);
    if (b < 0) return -1;
    *pruned = a + b;
    return 0;
}
