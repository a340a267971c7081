-- Every change of an annotator's standing, and every reinstatement request
-- refused (`annotctl annotators show`).
CREATE TABLE annotator_history (
    id              bigserial PRIMARY KEY,
    annotator_id    text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('status', 'refused')),
    status          text NOT NULL,
    previous        text NOT NULL DEFAULT '',
    reason          text NOT NULL DEFAULT '',
    rolling_quality double precision NOT NULL DEFAULT 0,
    window_count    integer NOT NULL DEFAULT 0,
    -- The status event emitted ('' when refused) and the input that led here.
    event_id        text NOT NULL DEFAULT '',
    cause_id        text NOT NULL DEFAULT '',
    occurred_at_ms  bigint NOT NULL
);
CREATE INDEX annotator_history_annotator ON annotator_history (annotator_id, id);
CREATE INDEX annotator_history_cause ON annotator_history (cause_id);
