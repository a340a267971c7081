-- A task is queued in Redis only after the transaction that recorded it has
-- committed (intake_drain), so nobody can lease a task whose row is not yet
-- visible to the submit that will finish it.  enqueued marks the rows done;
-- a crash between the Redis enqueue and this flag just enqueues again
-- (enqueue is idempotent).
ALTER TABLE tasks ADD COLUMN enqueued boolean NOT NULL DEFAULT false;
ALTER TABLE tasks ADD COLUMN author_id text NOT NULL DEFAULT '';
CREATE INDEX tasks_to_enqueue ON tasks (created_at) WHERE NOT enqueued;
