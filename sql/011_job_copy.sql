-- The copy (host:pid) whose pool runs a job, written by the run that starts it: the live event
-- carries it, so a dashboard that learns of a job from the feed names its copy at once, and
-- the running-jobs query needs no join through Procrastinate's tables.
ALTER TABLE tori_jobs ADD COLUMN copy_name text;

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
        'copy_name', CASE WHEN j.status = 'running' THEN j.copy_name END
    )
$$;
