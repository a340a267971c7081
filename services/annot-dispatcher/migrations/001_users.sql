-- The people who talk to the dispatcher.  Tokens are stored as BLAKE2b-256
-- hashes only (common/auth.h); the token itself is shown once, by
-- `annotctl users add`.
CREATE TABLE users (
    user_id         text PRIMARY KEY,
    name            text NOT NULL,
    role            text NOT NULL CHECK (role IN ('annotator', 'candidate', 'validator', 'admin')),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'probation', 'suspended')),
    locale          text NOT NULL DEFAULT '',
    skills          text[] NOT NULL DEFAULT '{}',
    token_hash      bytea NOT NULL UNIQUE,
    -- Rolling quality over the last validated submissions, as the funnel
    -- tracker reports it on the annotators topic; NULL until it has.
    rolling_quality double precision,
    validated_count integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now()
);
