-- The fault suite's reconciliation (tools/stack/faults.sh): after a
-- simulated run with services killed and servers restarted, compares what
-- each service recorded with what the services before it produced and with
-- what the simulated people were told (every 202).  One row per check:
-- expected, actual, lost, duplicated.  Run by psql with the variable
-- candidates (the number of candidates imported) and, on its standard
-- input, one line "KIND ID" per fact: "submission ID" and "validation ID"
-- for every 202 (the simulator's acks.txt), "task ID" per imported task.
\set ON_ERROR_STOP on
CREATE TEMP TABLE acks (kind text, id text);
\copy acks FROM pstdin WITH (FORMAT text, DELIMITER ' ')
CREATE TEMP VIEW imported AS SELECT id AS task_id FROM acks WHERE kind = 'task';

CREATE TEMP VIEW live AS
SELECT * FROM assigner.assignments WHERE state <> 'replaced';

CREATE TEMP TABLE checks (name text, expected bigint, actual bigint, lost bigint, duplicated bigint);

-- Every 202 the people saw is on record.
INSERT INTO checks
SELECT 'submissions acknowledged (202) are recorded', count(*), count(s.submission_id),
       count(*) - count(s.submission_id), 0
FROM acks a LEFT JOIN dispatcher.submissions s ON s.submission_id::text = a.id WHERE a.kind = 'submission';
INSERT INTO checks
SELECT 'verdicts acknowledged (202) are recorded', count(*), count(v.validation_id),
       count(*) - count(v.validation_id), 0
FROM acks a LEFT JOIN dispatcher.validations v ON v.validation_id::text = a.id WHERE a.kind = 'validation';

-- Every imported task reached the dispatcher.
INSERT INTO checks
SELECT 'imported tasks are in the dispatcher', count(*), count(t.task_id), count(*) - count(t.task_id), 0
FROM imported i LEFT JOIN dispatcher.tasks t ON t.task_id = i.task_id;

-- Every imported task was submitted once (a task has one accepted submission).
INSERT INTO checks
SELECT 'imported tasks are submitted once', count(*), count(s.submission_id), count(*) - count(s.submission_id), 0
FROM imported i LEFT JOIN dispatcher.submissions s ON s.task_id = i.task_id;

-- Every submission checked once.
INSERT INTO checks
SELECT 'submissions are checked', (SELECT count(*) FROM dispatcher.submissions),
       (SELECT count(*) FROM autochecker.check_results),
       (SELECT count(*) FROM dispatcher.submissions s WHERE NOT EXISTS
          (SELECT 1 FROM autochecker.check_results c WHERE c.submission_id = s.submission_id::text)),
       (SELECT count(*) FROM autochecker.check_results c WHERE NOT EXISTS
          (SELECT 1 FROM dispatcher.submissions s WHERE c.submission_id = s.submission_id::text));

-- Every submission has one live first assignment, and at most one live second.
INSERT INTO checks
SELECT 'submissions are assigned once per slot', (SELECT count(*) FROM dispatcher.submissions),
       (SELECT count(DISTINCT submission_id) FROM live WHERE slot = 0),
       (SELECT count(*) FROM dispatcher.submissions s WHERE NOT EXISTS
          (SELECT 1 FROM live l WHERE l.slot = 0 AND l.submission_id = s.submission_id::text)),
       (SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM live GROUP BY submission_id, slot) x
        WHERE n > 1);

-- Every live assignment reached its validator's queue.
INSERT INTO checks
SELECT 'assignments are queued by the dispatcher', (SELECT count(*) FROM live),
       (SELECT count(*) FROM live l JOIN dispatcher.assignments d USING (assignment_id)),
       (SELECT count(*) FROM live l WHERE NOT EXISTS
          (SELECT 1 FROM dispatcher.assignments d WHERE d.assignment_id = l.assignment_id)), 0;

-- Every live assignment validated once; no submission validated more often
-- than it has slots (a replaced assignment validated beside its replacement
-- would be a verdict applied twice).
INSERT INTO checks
SELECT 'assignments are validated once', (SELECT count(*) FROM live),
       (SELECT count(*) FROM dispatcher.validations),
       (SELECT count(*) FROM live l WHERE NOT EXISTS
          (SELECT 1 FROM dispatcher.validations v WHERE v.assignment_id = l.assignment_id)),
       (SELECT coalesce(sum(greatest(0, v.n - l.n)), 0)
        FROM (SELECT submission_id, count(*) AS n FROM dispatcher.validations GROUP BY submission_id) v
        JOIN (SELECT submission_id, count(*) AS n FROM live GROUP BY submission_id) l USING (submission_id));

-- Every validated exam case counted by the funnel.
INSERT INTO checks
SELECT 'exam verdicts reach the funnel', count(DISTINCT t.task_id), count(DISTINCT r.task_id),
       count(DISTINCT t.task_id) - count(DISTINCT r.task_id), 0
FROM dispatcher.tasks t JOIN dispatcher.submissions s USING (task_id)
JOIN dispatcher.validations v ON v.submission_id = s.submission_id::text
LEFT JOIN funnel.exam_results r ON r.task_id = t.task_id
WHERE t.queue = 'exam';

-- Every candidate imported is in the funnel, once.
INSERT INTO checks
SELECT 'candidates are in the funnel', :candidates, (SELECT count(*) FROM funnel.candidates),
       greatest(0, :candidates - (SELECT count(*) FROM funnel.candidates)),
       greatest(0, (SELECT count(*) FROM funnel.candidates) - :candidates);

-- annot-metrics counted every event once: its all-time totals equal the
-- records of the services that produced the events.
CREATE TEMP VIEW counted AS
SELECT step, items FROM metrics.throughput WHERE window_kind = 'all' AND guideline_version = '';
INSERT INTO checks
SELECT 'metrics: ' || x.step, x.n, coalesce(c.items, 0), greatest(0, x.n - coalesce(c.items, 0)),
       greatest(0, coalesce(c.items, 0) - x.n)
FROM (VALUES ('imported', (SELECT count(*) FROM dispatcher.tasks WHERE queue <> 'validation')),
             ('submitted', (SELECT count(*) FROM dispatcher.submissions)),
             ('checked', (SELECT count(*) FROM autochecker.check_results)),
             ('validated', (SELECT count(*) FROM dispatcher.validations))) AS x(step, n)
LEFT JOIN counted c ON c.step = x.step;
INSERT INTO checks
SELECT 'metrics: candidates applied', :candidates, coalesce(sum(entered), 0),
       greatest(0, :candidates - coalesce(sum(entered), 0)), greatest(0, coalesce(sum(entered), 0) - :candidates)
FROM metrics.funnel WHERE guideline_version = '' AND cohort_day = '' AND stage = 'applied';

\pset footer off
SELECT name AS "check", expected, actual, lost, duplicated FROM checks;
SELECT 'TOTAL lost=' || sum(lost) || ' duplicated=' || sum(duplicated) AS total FROM checks;
