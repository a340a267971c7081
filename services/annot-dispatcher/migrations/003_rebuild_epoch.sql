-- How many times Redis was rebuilt from PostgreSQL.  Fencing tokens handed
-- out in epoch E are at least E << 32, so after a rebuild every token given
-- before Redis lost its data is lower than any new one (PostgreSQL does not
-- record each grant, so it cannot know the highest).
CREATE TABLE rebuild_state (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    epoch    bigint NOT NULL DEFAULT 0
);
INSERT INTO rebuild_state DEFAULT VALUES;
