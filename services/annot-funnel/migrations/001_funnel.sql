-- The candidate funnel (annot-funnel is its source of truth).

-- One row per candidate: where they stand and what they were assigned.
CREATE TABLE candidates (
    candidate_id        text PRIMARY KEY,
    name                text NOT NULL,
    locale              text NOT NULL,
    skills              text[] NOT NULL DEFAULT '{}',
    cohort_day          text NOT NULL,
    stage               text NOT NULL,
    application         integer NOT NULL,
    -- Rejected: earliest re-application (unix ms); 0 = no retry left.
    retry_after_ms      bigint NOT NULL DEFAULT 0,
    screening_id        text,
    screening_questions text[],
    training_version    text,
    updated_at_ms       bigint NOT NULL
);

-- Everything that happened to a candidate, in order: inputs taken, events
-- emitted, inputs refused (`annotctl candidates show`).
CREATE TABLE history (
    id             bigserial PRIMARY KEY,
    candidate_id   text NOT NULL,
    application    integer NOT NULL,
    event_id       text NOT NULL,
    kind           text NOT NULL,
    stage          text NOT NULL,
    detail         text NOT NULL DEFAULT '',
    occurred_at_ms bigint NOT NULL
);
CREATE INDEX history_candidate ON history (candidate_id, id);

-- Exam cases handed out (one exam task each).
CREATE TABLE exam_cases (
    task_id        text PRIMARY KEY,
    candidate_id   text NOT NULL,
    application    integer NOT NULL,
    stage          text NOT NULL,
    case_set       text NOT NULL,
    assigned_at_ms bigint NOT NULL
);
CREATE INDEX exam_cases_candidate ON exam_cases (candidate_id, application, stage);

-- Validators' verdicts on exam cases, the first per case.  Kept apart from
-- exam_cases so a verdict read before its case (a replay reads two topics
-- in any interleaving) still counts once the case is there.
CREATE TABLE exam_results (
    task_id         text PRIMARY KEY,
    candidate_id    text NOT NULL,
    score           double precision NOT NULL,
    critical        integer NOT NULL,
    validated_at_ms bigint NOT NULL
);

-- Annotators' standing.
CREATE TABLE annotators (
    annotator_id    text PRIMARY KEY,
    status          text NOT NULL,
    locale          text NOT NULL DEFAULT '',
    skills          text[] NOT NULL DEFAULT '{}',
    candidate_id    text NOT NULL DEFAULT '',
    -- Scores validated before this (unix ms) are out of the window (after a
    -- reinstatement).
    window_start_ms bigint NOT NULL DEFAULT 0,
    suspended_at_ms bigint NOT NULL DEFAULT 0,
    -- Status changes so far: names each change's event.
    changes         integer NOT NULL DEFAULT 0,
    updated_at_ms   bigint NOT NULL
);

-- Validated production submissions, the first verdict per submission.
CREATE TABLE annotator_scores (
    annotator_id    text NOT NULL,
    submission_id   text NOT NULL,
    score           double precision NOT NULL,
    validated_at_ms bigint NOT NULL,
    PRIMARY KEY (annotator_id, submission_id)
);
CREATE INDEX annotator_scores_recent ON annotator_scores (annotator_id, validated_at_ms DESC);
