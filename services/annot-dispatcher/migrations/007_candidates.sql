-- What the dispatcher knows of each candidate, from the candidates topic
-- (annot-funnel is the source of truth): the stage, the screening test and
-- the training they were assigned, and whether they have answered /
-- acknowledged them here.
CREATE TABLE candidates (
    candidate_id          text PRIMARY KEY,
    stage                 text NOT NULL DEFAULT 'applied',
    screening_id          text,
    screening_version     text,
    screening_questions   text[],
    screening_due_ms      bigint NOT NULL DEFAULT 0,
    training_version      text,
    training_samples      text[],
    training_completed_at timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Screening answers as received: one submission per screening attempt.
CREATE TABLE screening_answers (
    screening_id  text PRIMARY KEY,
    candidate_id  text NOT NULL,
    answers       jsonb NOT NULL,
    submitted_at  timestamptz NOT NULL DEFAULT now()
);
