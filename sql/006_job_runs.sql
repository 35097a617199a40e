-- Fencing (reliability): `runs` counts every start of a job and never goes back, so a write
-- from an older run (a worker that lost its heartbeat but was still inside its shutdown
-- grace, or came back after a database outage) can be told apart from the current run's.
-- `attempts` stays the user-facing count: runs ended by a shutdown or a stall give theirs back.
ALTER TABLE tori_jobs ADD COLUMN runs integer NOT NULL DEFAULT 0;
