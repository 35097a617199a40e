-- Jobs: one row per submitted document, the source of truth for its state (SPEC §3).
-- The row stays small: the full result lives in tori_results.
CREATE TABLE tori_jobs (
    id                   uuid PRIMARY KEY,
    status               text NOT NULL DEFAULT 'queued'
                         CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    lane                 text NOT NULL DEFAULT 'interactive' CHECK (lane IN ('interactive', 'bulk')),
    created_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    finished_at          timestamptz,
    attempts             integer NOT NULL DEFAULT 0,
    pages_done           integer NOT NULL DEFAULT 0,
    pages_total          integer,
    sha256               text NOT NULL,
    filename             text NOT NULL,
    bytes                bigint NOT NULL,
    storage_key          text NOT NULL,
    password             text,          -- submitted PDF password; cleared when the job ends
    deduplicated         boolean NOT NULL DEFAULT false,
    error_code           text,
    error_message        text,
    summary              jsonb,         -- small result summary for GET /jobs/{id}
    procrastinate_job_id bigint
);

-- Listing newest first, with or without a status filter (keyset pagination on (created_at, id)).
CREATE INDEX tori_jobs_created_idx ON tori_jobs (created_at DESC, id DESC);
CREATE INDEX tori_jobs_status_created_idx ON tori_jobs (status, created_at DESC, id DESC);
-- Dedup lookups and "is this file still referenced" before deleting it.
CREATE INDEX tori_jobs_sha256_idx ON tori_jobs (sha256);

CREATE TABLE tori_results (
    job_id     uuid PRIMARY KEY REFERENCES tori_jobs (id) ON DELETE CASCADE,
    result     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
