-- The rollups: one row per series point (metric, window, guideline version,
-- labels) holding additive totals.  What c0..c5 and s0 mean is per metric
-- (services/annot-metrics/contrib.h, docs/METRICS.md); analysts read the
-- views of 003_views.sql rather than this table.  Every batch of events adds
-- its delta to the rows it touches (one upsert per row), raising revision,
-- and publishes the new totals through the outbox in the same transaction.
CREATE TABLE rollups (
    metric            text NOT NULL,
    window_kind       text NOT NULL CHECK (window_kind IN ('hour', 'day', 'all')),
    window_start      timestamptz NOT NULL,
    window_end        timestamptz NOT NULL,   -- exclusive; 'infinity' for all time
    guideline_version text NOT NULL,          -- '' = every version
    labels            jsonb NOT NULL,         -- '{}' = no further dimension
    c0 bigint NOT NULL DEFAULT 0,
    c1 bigint NOT NULL DEFAULT 0,
    c2 bigint NOT NULL DEFAULT 0,
    c3 bigint NOT NULL DEFAULT 0,
    c4 bigint NOT NULL DEFAULT 0,
    c5 bigint NOT NULL DEFAULT 0,
    s0 double precision NOT NULL DEFAULT 0,
    vmin double precision,                    -- distributions: smallest observation
    vmax double precision,                    -- distributions: largest observation
    hist bigint[],                            -- distributions: 128 log-scale buckets (stats.h)
    revision bigint NOT NULL DEFAULT 1,       -- rises with every update; part of the metric event id
    final_published boolean NOT NULL DEFAULT false, -- the closed window went out with final = true
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (metric, window_kind, window_start, guideline_version, labels)
);
-- The sweeper looks for closed windows not yet published as final.
CREATE INDEX rollups_open ON rollups (window_end) WHERE NOT final_published;

-- Adds two histograms bucket by bucket (NULL is empty).
CREATE FUNCTION hist_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN a IS NULL THEN b WHEN b IS NULL THEN a ELSE
        ARRAY(SELECT coalesce(x, 0) + coalesce(y, 0)
              FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i) ORDER BY i) END
$$;

-- The q-quantile of a histogram, as stats_hist_quantile computes it: the
-- upper bound 2^(i/4) of the bucket holding the ceil(q*n)-th observation,
-- clamped to [vmin, vmax].
CREATE FUNCTION hist_quantile(h bigint[], q double precision, vmin double precision, vmax double precision)
RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    WITH b AS (
        SELECT i, sum(x) OVER (ORDER BY i) AS cum, sum(x) OVER () AS n
        FROM unnest(h) WITH ORDINALITY AS t(x, i)
    )
    SELECT greatest(vmin, least(vmax, power(2, (min(i) - 1) / 4.0)))
    FROM b WHERE n > 0 AND cum >= greatest(1, ceil(q * n))
$$;

-- Cohen's kappa from the 2x2 table of a rater pair (stats_kappa).
CREATE FUNCTION kappa(aa bigint, ar bigint, ra bigint, rr bigint) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN n = 0 THEN 0
        WHEN pe >= 1 THEN 1
        ELSE (po - pe) / (1 - pe) END
    FROM (SELECT n, (aa + rr)::float8 / nullif(n, 0) AS po,
                 ((aa + ar)::float8 * (aa + ra) + (ra + rr)::float8 * (ar + rr)) / nullif(n * n, 0) AS pe
          FROM (SELECT (aa + ar + ra + rr)::float8 AS n) s) t
$$;

CREATE FUNCTION ratio(num double precision, den double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN den = 0 THEN 0 ELSE num / den END $$;

-- Settings the views need; the service writes them at start.
CREATE TABLE settings (
    key   text PRIMARY KEY,
    value double precision NOT NULL
);
