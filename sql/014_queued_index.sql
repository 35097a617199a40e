-- Admission counts queued jobs on every submit (per lane, and per owner for interactive ones):
-- a partial index keeps that a short index scan however many jobs have ended.
CREATE INDEX tori_jobs_queued_idx ON tori_jobs (lane, owner) WHERE status = 'queued';
