-- The analysts' views over the rollups: one per metric family, with named
-- columns and the derived figures (rates, kappa, quantiles) computed the way
-- the published metric events compute them.  Every view has window_kind
-- ('hour', 'day', 'all'), window_start, window_end and guideline_version
-- ('' = every version); docs/METRICS.md describes each column.

CREATE VIEW quality AS
SELECT window_kind, window_start, window_end, guideline_version,
       coalesce((SELECT k FROM jsonb_object_keys(labels) AS k LIMIT 1), 'all') AS dimension,
       coalesce((SELECT v FROM jsonb_each_text(labels) AS e(k, v) LIMIT 1), '') AS value,
       c0 AS validated, c1 AS accepted, c2 AS rejected, c3 AS critical_errors,
       ratio(s0, c0) AS quality_level,
       t.value AS target,
       ratio(s0, c0) >= t.value AS on_target
FROM rollups
LEFT JOIN settings t ON t.key = 'quality.target'
WHERE metric = 'quality.level';

CREATE VIEW funnel AS
SELECT CASE WHEN window_kind = 'day' THEN to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD') ELSE '' END
           AS cohort_day,
       guideline_version,
       labels->>'stage' AS stage,
       c0 AS entered, c1 AS passed, c2 AS failed,
       ratio(c1, c1 + c2) AS pass_rate,
       CASE WHEN c3 > 0 THEN s0 / c3 / 1000.0 END AS mean_time_in_stage_s
FROM rollups
WHERE metric = 'funnel.stage';

CREATE VIEW throughput AS
SELECT window_kind, window_start, window_end, guideline_version,
       labels->>'step' AS step, c0 AS items
FROM rollups
WHERE metric = 'throughput';

CREATE VIEW latency AS
SELECT window_kind, window_start, window_end, guideline_version,
       metric,
       coalesce(labels->>'step', labels->>'queue') AS step,
       c0 AS observations,
       ratio(s0, c0) AS mean_ms,
       vmin AS min_ms, vmax AS max_ms,
       hist_quantile(hist, 0.5, vmin, vmax) AS p50_ms,
       hist_quantile(hist, 0.9, vmin, vmax) AS p90_ms,
       hist_quantile(hist, 0.99, vmin, vmax) AS p99_ms
FROM rollups
WHERE metric IN ('latency_ms', 'lease.time_to_submit_ms', 'lease.heartbeat_gap_ms');

CREATE VIEW lease_health AS
SELECT window_kind, window_start, window_end, guideline_version,
       labels->>'queue' AS queue,
       c0 AS granted, c1 AS expired, c2 AS released, c3 AS submitted, c4 AS parked, c5 AS heartbeats,
       ratio(c1, c0) AS expiry_rate
FROM rollups
WHERE metric = 'lease.health';

CREATE VIEW validator_agreement AS
SELECT window_kind, window_start, window_end, guideline_version,
       coalesce(labels->>'validator', '') AS validator,
       c0 AS pairs, c1 AS agreed,
       c2 AS both_accept, c3 AS accept_reject, c4 AS reject_accept, c5 AS both_reject,
       kappa(c2, c3, c4, c5) AS kappa,
       ratio(s0, c0) AS mean_abs_score_diff
FROM rollups
WHERE metric = 'validator.agreement';

CREATE VIEW autocheck_precision AS
SELECT window_kind, window_start, window_end, guideline_version,
       coalesce(labels->>'rule', '') AS rule,
       c0 AS flagged, c1 AS confirmed, c2 AS missed,
       ratio(c1, c0) AS precision,
       ratio(c1, c1 + c2) AS recall
FROM rollups
WHERE metric = 'autocheck.precision';

CREATE VIEW guideline_hotspots AS
SELECT window_kind, window_start, window_end, guideline_version,
       labels->>'section' AS section,
       coalesce(labels->>'kind', '') AS kind,
       c0 AS feedback_count,
       c1 AS error_count
FROM rollups
WHERE metric = 'guideline.hotspot';

CREATE VIEW annotator_status_changes AS
SELECT window_kind, window_start, window_end, guideline_version,
       labels->>'status' AS status, c0 AS changes
FROM rollups
WHERE metric = 'annotators.status';
