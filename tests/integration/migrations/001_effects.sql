-- The integration suite's consumer (itest_consumer.c).  effects has no
-- unique key on purpose: the table itself would accept a double application,
-- so only the pipeline's ledger keeps it exactly-once, and a test that counts
-- rows sees any double.
CREATE TABLE effects (
    event_id   uuid   NOT NULL,
    task_id    text   NOT NULL,
    amount     bigint NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX effects_task ON effects (task_id);
