-- Every task the dispatcher was given, and every accepted submission.
-- PostgreSQL is the source of truth: Redis queues and leases are rebuilt
-- from here when Redis loses them.
CREATE TABLE tasks (
    task_id           text PRIMARY KEY,
    queue             text NOT NULL CHECK (queue IN ('annotation', 'exam', 'validation')),
    kind              text NOT NULL,
    pool              text NOT NULL DEFAULT '',  -- production pool "<locale>/<skill>"
    owner_id          text NOT NULL DEFAULT '',  -- exam: the candidate
    priority          integer NOT NULL,
    payload           jsonb NOT NULL,            -- the task as a lease returns it
    guideline_version text NOT NULL DEFAULT '',
    state             text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'done', 'parked')),
    -- The fencing token of the accepted submission: a submission carrying a
    -- lower or equal token can never replace it.
    submitted_fence   bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_open ON tasks (queue) WHERE state = 'queued';

CREATE TABLE submissions (
    submission_id  uuid PRIMARY KEY,
    task_id        text NOT NULL UNIQUE REFERENCES tasks (task_id),
    lease_id       text NOT NULL,
    fencing_token  bigint NOT NULL,
    author_id      text NOT NULL,
    description    text NOT NULL,
    submitted_at   timestamptz NOT NULL DEFAULT now()
);
