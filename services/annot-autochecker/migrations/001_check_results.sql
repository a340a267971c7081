-- One row per checked submission: what the checker said, under which rules.
-- The findings travel on the checks topic; here they are kept for SQL
-- (auto-check precision against validators, guideline hot spots).
CREATE TABLE check_results (
    submission_id   text PRIMARY KEY,
    check_id        uuid NOT NULL,
    task_id         text NOT NULL,
    author_id       text NOT NULL,
    task_kind       text NOT NULL,
    locale          text NOT NULL,
    score           double precision NOT NULL,
    blocking        boolean NOT NULL,
    findings        jsonb NOT NULL,
    rules_version   text NOT NULL,
    guideline_version text NOT NULL,
    checked_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX check_results_checked_at ON check_results (checked_at);
