-- A rule of the table that itest_consumer does not check first: a negative
-- amount is refused (SQLSTATE 23514).  test_pipeline sends one to see the
-- pipeline dead-letter data the database refuses for good, and drops the
-- rule before replaying it.
ALTER TABLE effects ADD CONSTRAINT effects_amount_not_negative CHECK (amount >= 0);
