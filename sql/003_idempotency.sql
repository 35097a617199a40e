-- Idempotency keys (SPEC §4): one request, identified by the client's key, created these jobs.
-- The primary key makes concurrent duplicates safe: the second insert fails and its whole
-- transaction (job rows and queue entries included) rolls back.
CREATE TABLE tori_idempotency (
    key         text PRIMARY KEY,
    fingerprint text NOT NULL,          -- sha256 of what the request asked for
    job_ids     uuid[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tori_idempotency_created_idx ON tori_idempotency (created_at);

-- Listing by lane (back-fill progress) without scanning interactive jobs.
CREATE INDEX tori_jobs_lane_created_idx ON tori_jobs (lane, created_at DESC, id DESC);
