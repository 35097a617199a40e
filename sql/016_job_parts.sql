-- A long document's page-range parts (TORI_SPLIT_PAGES). Each part is a queue entry of its
-- own in the job's lane, so any pool process of any copy can take one; this table is where
-- they meet. `run` is the job run that planned the part: a late part of an older run never
-- writes into a newer one. Phases: 'read' (text layer, OCR, layout of the pages), then one
-- 'prepare' row (cleaning, language, blocks and chunks over every page; done by whichever
-- read part ends last), then 'nlp' (counts of the pages' entities, keyphrases, words); the
-- last NLP part to end merges the result. Inputs and outputs are pickled by the workers and
-- only read by them; rows go as soon as the job ends (trigger below), so no text outlives it.
CREATE TABLE tori_job_parts (
    job_id uuid NOT NULL REFERENCES tori_jobs (id) ON DELETE CASCADE,
    run int NOT NULL,
    phase text NOT NULL,
    idx int NOT NULL,
    first_page int NOT NULL,
    last_page int NOT NULL,
    status text NOT NULL DEFAULT 'queued',
    copy_name text,
    copy_deaths int NOT NULL DEFAULT 0,
    procrastinate_job_id bigint,
    input bytea,
    output bytea,
    PRIMARY KEY (job_id, phase, idx)
);

-- A job that ends takes its parts with it; a cancelled one also aborts those still queued or
-- running (a running part's pool process is killed, as a cancelled job's is).
CREATE FUNCTION tori_job_parts_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'cancelled' THEN
        PERFORM procrastinate_cancel_job_v1(p.procrastinate_job_id, true, false)
        FROM tori_job_parts p
        WHERE p.job_id = NEW.id AND p.procrastinate_job_id IS NOT NULL AND p.status <> 'succeeded';
    END IF;
    DELETE FROM tori_job_parts WHERE job_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER tori_job_parts_end AFTER UPDATE OF status ON tori_jobs
    FOR EACH ROW WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled')
                       AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION tori_job_parts_end();
