-- Stage time limits (funnel.screening.due.ms, funnel.exam.timeout.ms).

-- The deadline of the stage the candidate is in, unix ms; 0 = none, or its
-- StageExpired already sent.
ALTER TABLE candidates ADD COLUMN stage_due_at_ms bigint NOT NULL DEFAULT 0;
CREATE INDEX candidates_due ON candidates (stage_due_at_ms) WHERE stage_due_at_ms > 0;

-- Exam cases the candidate submitted (ExamCaseSubmitted from the
-- dispatcher), the first per case.  Apart from exam_cases for the reason
-- exam_results is.
CREATE TABLE exam_submissions (
    task_id         text PRIMARY KEY,
    candidate_id    text NOT NULL,
    submission_id   text NOT NULL,
    submitted_at_ms bigint NOT NULL
);
