-- The validators the assigner may choose from, from the annotators topic
-- (role validator), with their last sign of activity (a lease, a heartbeat,
-- a verdict, a roster change), unix ms.
CREATE TABLE validators (
    validator_id   text PRIMARY KEY,
    locale         text NOT NULL DEFAULT '',
    skills         text[] NOT NULL DEFAULT '{}',
    status         text NOT NULL DEFAULT 'active',
    last_active_ms bigint NOT NULL DEFAULT 0,
    -- Assignments given in the current window (tumbling, of
    -- assigner.recent.window.ms, starting at recent_since_ms): one update
    -- per assignment, no count over the assignments table.
    recent_count    integer NOT NULL DEFAULT 0,
    recent_since_ms bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Authors' standing (probation means double validation) and how many of
-- their submissions were assigned (the first K are double validated).
CREATE TABLE authors (
    author_id   text PRIMARY KEY,
    status      text NOT NULL DEFAULT 'active',
    submissions bigint NOT NULL DEFAULT 0
);

-- Every assignment emitted.  A submission has one live assignment per slot
-- (slot 1: the second validator of a double pair); a reassignment marks the
-- old one replaced and adds the new one in the same transaction.
CREATE TABLE assignments (
    assignment_id text PRIMARY KEY,
    submission_id text NOT NULL,
    slot          integer NOT NULL CHECK (slot IN (0, 1)),
    pair_id       text NOT NULL DEFAULT '',
    validator_id  text NOT NULL,
    author_id     text NOT NULL,
    state         text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'leased', 'done', 'replaced')),
    reason        text NOT NULL,
    replaces      text NOT NULL DEFAULT '',
    proto         bytea NOT NULL,  -- the ValidationAssignment as emitted
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- When the inactivity sweep last looked at it and could not move it:
    -- the sweep takes the least recently looked at first, so work nobody
    -- can take never starves the rest.
    swept_at      timestamptz
);
CREATE UNIQUE INDEX assignments_live_slot ON assignments (submission_id, slot) WHERE state <> 'replaced';
CREATE INDEX assignments_submission ON assignments (submission_id);
CREATE INDEX assignments_open ON assignments (validator_id) WHERE state IN ('open', 'leased');

-- Slots nobody was eligible for yet; the main loop tries them again.
CREATE TABLE unassigned (
    submission_id text NOT NULL,
    slot          integer NOT NULL,
    assignment    bytea NOT NULL,  -- the ValidationAssignment without a validator
    exclude       text NOT NULL DEFAULT '',  -- who may not take it: ids separated by a space
    reason        text NOT NULL,
    since         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (submission_id, slot)
);
