-- Erasing a job leaves no trace of the document on its bare row: the sha256, size, storage
-- key and callback URL become NULL with the file name and summary (tori_ingest/store/jobs.py
-- `erase`). Until now they stayed, so an erased row still said which document it had been
-- (a hash identifies a known file) and where its events went.
ALTER TABLE tori_jobs ALTER COLUMN sha256 DROP NOT NULL;
ALTER TABLE tori_jobs ALTER COLUMN bytes DROP NOT NULL;
ALTER TABLE tori_jobs ALTER COLUMN storage_key DROP NOT NULL;

-- The copies an erased job's webhook deliveries keep go too: the URL (the column stays NOT
-- NULL: '' is no address) and the error texts, which may name its host. Otherwise as in
-- sql/008_webhooks.sql.
CREATE OR REPLACE FUNCTION tori_webhook_on_erase() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM procrastinate_cancel_job_v1(queue_job_id, false, true)
    FROM tori_webhook_deliveries
    WHERE job_id = NEW.id AND state = 'pending' AND queue_job_id IS NOT NULL;
    UPDATE tori_webhook_deliveries
    SET state = CASE WHEN state = 'pending' THEN 'cancelled' ELSE state END,
        next_attempt_at = NULL, snapshot = NULL, payload = NULL, url = '', last_error = NULL
    WHERE job_id = NEW.id;
    UPDATE tori_webhook_attempts SET response_excerpt = NULL, error = NULL
    WHERE delivery_id IN (SELECT id FROM tori_webhook_deliveries WHERE job_id = NEW.id);
    RETURN NULL;
END;
$$;

-- Jobs erased before this migration are scrubbed the same way (no trigger fires on these
-- updates: neither the state nor `erased_at` changes).
UPDATE tori_jobs SET sha256 = NULL, bytes = NULL, storage_key = NULL, callback_url = NULL
WHERE erased_at IS NOT NULL;
UPDATE tori_webhook_deliveries SET url = '', last_error = NULL
WHERE job_id IN (SELECT id FROM tori_jobs WHERE erased_at IS NOT NULL);
UPDATE tori_webhook_attempts SET response_excerpt = NULL, error = NULL
WHERE delivery_id IN (SELECT d.id FROM tori_webhook_deliveries d
                      JOIN tori_jobs j ON j.id = d.job_id WHERE j.erased_at IS NOT NULL);
