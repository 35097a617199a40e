-- A split job's parts in its live state, the WebSocket's as well as GET /jobs/{id}'s: a part's
-- start and end bump the job's `parts_version`, which bumps `version` (so every subscriber hears
-- of it), and the event lists the parts of the phase under way. At most 40 of them: NOTIFY's
-- payload must stay under 8,000 bytes (GET /jobs/{id} lists them all).
ALTER TABLE tori_jobs ADD COLUMN parts_version int NOT NULL DEFAULT 0;

DROP TRIGGER tori_jobs_version ON tori_jobs;
CREATE TRIGGER tori_jobs_version
    BEFORE UPDATE ON tori_jobs FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.pages_done IS DISTINCT FROM NEW.pages_done
          OR OLD.pages_total IS DISTINCT FROM NEW.pages_total
          OR OLD.error_code IS DISTINCT FROM NEW.error_code
          OR OLD.parts_version IS DISTINCT FROM NEW.parts_version)
    EXECUTE FUNCTION tori_job_bump_version();

CREATE OR REPLACE FUNCTION tori_job_event(j tori_jobs) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'job_id', j.id,
        'status', j.status,
        'pages_done', j.pages_done,
        'pages_total', j.pages_total,
        'error', CASE WHEN j.error_code IS NULL THEN NULL ELSE
                 json_build_object('code', j.error_code,
                                   'message', left(coalesce(j.error_message, ''), 300))
                 END,
        'version', j.version,
        'copy_name', CASE WHEN j.status = 'running' THEN j.copy_name END,
        'parts', CASE WHEN j.status = 'running' THEN (
            SELECT json_agg(json_build_object(
                       'phase', p.phase, 'first_page', p.first_page, 'last_page', p.last_page,
                       'status', p.status,
                       'copy', CASE WHEN p.status = 'running' THEN p.copy_name END)
                   ORDER BY p.idx)
            FROM (SELECT * FROM tori_job_parts q
                  WHERE q.job_id = j.id
                    AND q.phase = CASE WHEN EXISTS (SELECT 1 FROM tori_job_parts n
                                                    WHERE n.job_id = j.id AND n.phase = 'nlp')
                                       THEN 'nlp' ELSE 'read' END
                  ORDER BY q.idx LIMIT 40) p
        ) END
    )
$$;
