-- Runs lost because the copy running them died (SIGKILL, OOM, a lost machine). Such a run gives
-- its attempt back (the machine's fault, not the job's), so without this count a document that
-- kills its copy would be retried without end; at TORI_MAX_ATTEMPTS deaths it fails instead.
ALTER TABLE tori_jobs ADD COLUMN copy_deaths int NOT NULL DEFAULT 0;
