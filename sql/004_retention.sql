-- Retention (SPEC §6): jobs whose file and result were purged keep their row (status, error,
-- summary) and answer 410 expired for the result. The partial index finds what is due cheaply.
ALTER TABLE tori_jobs ADD COLUMN purged_at timestamptz;
CREATE INDEX tori_jobs_purge_due_idx ON tori_jobs (finished_at) WHERE purged_at IS NULL;
-- "Is this stored file still used by a job?" (retention, and undoing a failed upload).
CREATE INDEX tori_jobs_storage_key_idx ON tori_jobs (storage_key);
