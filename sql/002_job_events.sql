-- Live status (SPEC §1, §4): every change of a job's state or progress is announced by Postgres
-- itself, so a WebSocket on any copy hears about work done by any other copy.
-- `version` orders a job's states: a subscriber never goes back to an older one, which also makes
-- the snapshot-vs-event race harmless (whichever is newer wins).
ALTER TABLE tori_jobs ADD COLUMN version bigint NOT NULL DEFAULT 1;

CREATE FUNCTION tori_job_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END;
$$;

CREATE TRIGGER tori_jobs_version
    BEFORE UPDATE ON tori_jobs FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.pages_done IS DISTINCT FROM NEW.pages_done
          OR OLD.pages_total IS DISTINCT FROM NEW.pages_total
          OR OLD.error_code IS DISTINCT FROM NEW.error_code)
    EXECUTE FUNCTION tori_job_bump_version();

-- The payload stays far below NOTIFY's 8,000 bytes: the error message is cut to 300 characters.
CREATE FUNCTION tori_job_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tori_job_events', json_build_object(
        'job_id', NEW.id,
        'status', NEW.status,
        'pages_done', NEW.pages_done,
        'pages_total', NEW.pages_total,
        'error', CASE WHEN NEW.error_code IS NULL THEN NULL ELSE
                 json_build_object('code', NEW.error_code, 'message', left(NEW.error_message, 300))
                 END,
        'version', NEW.version
    )::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER tori_jobs_notify_insert
    AFTER INSERT ON tori_jobs FOR EACH ROW EXECUTE FUNCTION tori_job_notify();

CREATE TRIGGER tori_jobs_notify_update
    AFTER UPDATE ON tori_jobs FOR EACH ROW
    WHEN (OLD.version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION tori_job_notify();
