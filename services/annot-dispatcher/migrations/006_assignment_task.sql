-- The task under validation, so the lease events of a validation lease name
-- it (their Kafka key); '' for assignments recorded before this column.
ALTER TABLE assignments ADD COLUMN task_id text NOT NULL DEFAULT '';
UPDATE assignments SET task_id = submissions.task_id
  FROM submissions WHERE submissions.submission_id::text = assignments.submission_id;
