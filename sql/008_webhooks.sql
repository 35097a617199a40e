-- Webhooks: on each terminal state of a job that has a callback URL, a delivery row and its
-- Procrastinate job are created by a trigger, in the transaction that ends the job. Whatever
-- path ends it (a worker's result or failure, a cancel, a deduplicated job born succeeded),
-- the event exists if and only if the terminal state was committed.
--
-- "Terminal" is read off `finished_at`: every transition into succeeded/failed/cancelled sets
-- it and a retry clears it, so each terminal state of a retried job is its own event.

-- The callback of a job, fixed at submit (its own `callback_url`, else TORI_WEBHOOK_URL).
ALTER TABLE tori_jobs ADD COLUMN callback_url text;

CREATE TABLE tori_webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- webhook-id: msg_<hex>
    job_id           uuid NOT NULL REFERENCES tori_jobs (id) ON DELETE CASCADE,
    event_type       text NOT NULL,
    url              text NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
    -- The job row at its terminal state, until the first try turns it into `payload`, the
    -- exact body sent on every try. Both are dropped when the job is erased.
    snapshot         jsonb,
    payload          text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_status_code integer,
    last_error       text,
    delivered_at     timestamptz,
    queue_job_id     bigint  -- the Procrastinate job that may make the next try (a fence)
);
CREATE INDEX tori_webhook_deliveries_job_idx ON tori_webhook_deliveries (job_id, created_at);
CREATE INDEX tori_webhook_deliveries_state_idx ON tori_webhook_deliveries (state, created_at);

CREATE TABLE tori_webhook_attempts (
    delivery_id      uuid NOT NULL REFERENCES tori_webhook_deliveries (id) ON DELETE CASCADE,
    n                integer NOT NULL,
    at               timestamptz NOT NULL,
    duration_ms      double precision,
    status_code      integer,
    error            text,
    response_excerpt text,
    PRIMARY KEY (delivery_id, n)
);

-- Queue and task names: tori_ingest/worker/webhooks.py (QUEUE, TASK_NAME); a test checks both.
CREATE FUNCTION tori_webhook_on_terminal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delivery uuid := gen_random_uuid();
BEGIN
    INSERT INTO tori_webhook_deliveries (id, job_id, event_type, url, snapshot, queue_job_id)
    VALUES (
        delivery, NEW.id, 'job.' || NEW.status, NEW.callback_url,
        to_jsonb(NEW) - ARRAY['password', 'storage_key', 'callback_url'],
        (procrastinate_defer_jobs_v1(ARRAY[ROW(
            'webhooks', 'tori.webhook', 0, NULL, NULL,
            jsonb_build_object('delivery_id', delivery), NULL
        )::procrastinate_job_to_defer_v1]))[1]
    );
    RETURN NULL;
END;
$$;

CREATE TRIGGER tori_jobs_webhook_insert
    AFTER INSERT ON tori_jobs FOR EACH ROW
    WHEN (NEW.finished_at IS NOT NULL AND NEW.callback_url IS NOT NULL
          AND NEW.erased_at IS NULL)
    EXECUTE FUNCTION tori_webhook_on_terminal();

CREATE TRIGGER tori_jobs_webhook_update
    AFTER UPDATE ON tori_jobs FOR EACH ROW
    WHEN (OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL
          AND NEW.callback_url IS NOT NULL AND NEW.erased_at IS NULL)
    EXECUTE FUNCTION tori_webhook_on_terminal();

-- Erasing a job sends nothing more: its pending deliveries are cancelled (their queued try
-- removed; a try already in flight cannot record a retry, being fenced by `state`), and the
-- copies of its data they hold are dropped.
CREATE FUNCTION tori_webhook_on_erase() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM procrastinate_cancel_job_v1(queue_job_id, false, true)
    FROM tori_webhook_deliveries
    WHERE job_id = NEW.id AND state = 'pending' AND queue_job_id IS NOT NULL;
    UPDATE tori_webhook_deliveries
    SET state = CASE WHEN state = 'pending' THEN 'cancelled' ELSE state END,
        next_attempt_at = NULL, snapshot = NULL, payload = NULL
    WHERE job_id = NEW.id;
    UPDATE tori_webhook_attempts SET response_excerpt = NULL
    WHERE delivery_id IN (SELECT id FROM tori_webhook_deliveries WHERE job_id = NEW.id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER tori_jobs_webhook_erase
    AFTER UPDATE ON tori_jobs FOR EACH ROW
    WHEN (OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL)
    EXECUTE FUNCTION tori_webhook_on_erase();
