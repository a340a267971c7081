/* store: the metrics' PostgreSQL side (schema of its own, migrations/).
 * Adds a batch's deltas to the rollups and hands back each touched row's
 * new totals; publishes closed windows as final; and keeps the little state
 * some metrics need from an earlier event (pair halves, lease beats,
 * candidate stages).  Everything runs on the caller's transaction. */
#ifndef METRICS_STORE_H
#define METRICS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contrib.h"
#include "pg.h"
#include "publish.h"
#include "series.h"

/* Called once per row written, with its totals after the write. */
typedef int (*store_row_fn)(void *opaque, const rollup_row_t *row, char *errstr, size_t errlen);

/* Adds every point of batch to its row (in key order, so two instances
 * lock rows in the same order) and calls fn with each row's new totals.
 * A row of a window already closed at now_ms (window_closed with grace_ms)
 * is marked final. */
int store_flush(pg_t *pg, const series_batch_t *batch, int64_t now_ms, int64_t grace_ms, store_row_fn fn,
                void *opaque, char *errstr, size_t errlen);
/* Marks up to limit closed windows not yet published as final and calls fn
 * with each; *count says how many. */
int store_sweep_final(pg_t *pg, int64_t now_ms, int64_t grace_ms, int limit, store_row_fn fn, void *opaque,
                      size_t *count, char *errstr, size_t errlen);
/* Records the quality target for the views. */
int store_setting(pg_t *pg, const char *key, double value, char *errstr, size_t errlen);

/* Double validation: records this verdict as a half of pair_id; when the
 * other half is already there, fills *other (validator copied into
 * validator_buf), forgets the pair and returns 1; 0 when this is the first
 * half; -1 on error. */
int store_pair_take(pg_t *pg, const char *pair_id, const char *validation_id, const char *validator_id,
                    int verdict, double score, contrib_half_t *other, char *validator_buf, size_t buflen,
                    char *errstr, size_t errlen);

/* Leases: the last beat seen (1 found, 0 not), a new beat, the end. */
int store_beat_get(pg_t *pg, const char *lease_id, contrib_beat_t *beat, char *errstr, size_t errlen);
int store_beat_set(pg_t *pg, const char *lease_id, const contrib_beat_t *beat, char *errstr, size_t errlen);
int store_beat_end(pg_t *pg, const char *lease_id, char *errstr, size_t errlen);

/* Candidates: record the entry into a stage (stage 1, applied, carries the
 * cohort), and look one up: 1 found (cohort copied into cohort_buf), 0 not. */
int store_stage_enter(pg_t *pg, const char *candidate_id, int stage, const char *cohort_day, int64_t at_ms,
                      char *errstr, size_t errlen);
int store_stage_get(pg_t *pg, const char *candidate_id, int stage, int64_t *entered_at_ms, char *cohort_buf,
                    size_t buflen, char *errstr, size_t errlen);

/* Forgets pair halves and lease beats older than retention_ms: in-flight
 * state whose completion never came.  *pruned says how many rows. */
int store_prune_state(pg_t *pg, int64_t now_ms, int64_t retention_ms, long *pruned, char *errstr, size_t errlen);

int store_guideline_version(pg_t *pg, const char *version, int64_t published_at_ms, const char *published_by,
                            char *errstr, size_t errlen);

#endif
