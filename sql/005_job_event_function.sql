-- One definition of a job's live state (the WebSocket event): the NOTIFY trigger and the
-- snapshot query both call tori_job_event(), so the two can never disagree. The payload stays
-- far below NOTIFY's 8,000 bytes: the error message is cut to 300 characters.
CREATE FUNCTION tori_job_event(j tori_jobs) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'job_id', j.id,
        'status', j.status,
        'pages_done', j.pages_done,
        'pages_total', j.pages_total,
        'error', CASE WHEN j.error_code IS NULL THEN NULL ELSE
                 json_build_object('code', j.error_code,
                                   'message', left(coalesce(j.error_message, ''), 300))
                 END,
        'version', j.version
    )
$$;

CREATE OR REPLACE FUNCTION tori_job_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tori_job_events', tori_job_event(NEW)::text);
    RETURN NULL;
END;
$$;
