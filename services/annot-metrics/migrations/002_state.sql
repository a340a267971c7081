-- What some metrics need from an earlier event, kept until it is used; none
-- of it grows with the number of events, only with what is in flight.  What
-- is never used (a pair whose second verdict never comes, a lease whose end
-- was never reported) is pruned after metrics.state.retention.ms.

-- The first verdict of a double-validation pair, until the second arrives
-- (then both feed validator.agreement and the row goes).
CREATE TABLE pair_halves (
    pair_id       text NOT NULL,
    validation_id text NOT NULL,
    validator_id  text NOT NULL,
    verdict       smallint NOT NULL,
    score         double precision NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),  -- halves never completed are pruned after a while
    PRIMARY KEY (pair_id, validation_id)
);

-- The last heartbeat (or the grant) of a live lease, for heartbeat gaps;
-- deleted when the lease ends.
CREATE TABLE lease_beats (
    lease_id        text PRIMARY KEY,
    last_at_ms      bigint NOT NULL,
    heartbeat_count integer NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()  -- wall clock of the last update, for pruning
);

-- A candidate's cohort and when they entered each stage, for the funnel's
-- time in stage and for decisions, which do not carry the cohort.
CREATE TABLE candidate_stages (
    candidate_id  text NOT NULL,
    stage         smallint NOT NULL,   -- FunnelStage; 1 (applied) carries the cohort
    cohort_day    text NOT NULL,
    entered_at_ms bigint NOT NULL,
    PRIMARY KEY (candidate_id, stage)
);

-- Guideline versions as published, for the report.
CREATE TABLE guideline_versions (
    version         text PRIMARY KEY,
    published_at_ms bigint NOT NULL,
    published_by    text NOT NULL
);
