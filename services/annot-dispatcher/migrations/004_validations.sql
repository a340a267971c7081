-- Validation work: the assignment as the assigner sent it (its task row in
-- tasks has task_id = assignment_id, queue 'validation', owner = the
-- validator), and the verdicts recorded.
CREATE TABLE assignments (
    assignment_id text PRIMARY KEY,
    submission_id text NOT NULL,
    validator_id  text NOT NULL,
    author_id     text NOT NULL,
    proto         bytea NOT NULL  -- the packed ValidationAssignment
);

CREATE TABLE validations (
    validation_id  uuid PRIMARY KEY,
    assignment_id  text NOT NULL UNIQUE REFERENCES assignments (assignment_id),
    submission_id  text NOT NULL,
    validator_id   text NOT NULL,
    verdict        text NOT NULL CHECK (verdict IN ('accept', 'reject')),
    score          double precision NOT NULL,
    errors         jsonb NOT NULL,
    feedback       jsonb NOT NULL,
    fencing_token  bigint NOT NULL,
    validated_at   timestamptz NOT NULL DEFAULT now()
);
