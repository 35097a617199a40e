-- Access for a browser app: a job belongs to the token name that created it (NULL with auth
-- off), the app may tag it with its own user id (owner_ref, metadata only), and an erased job
-- keeps a bare row that answers 410.
ALTER TABLE tori_jobs ADD COLUMN owner text;
ALTER TABLE tori_jobs ADD COLUMN owner_ref text;
ALTER TABLE tori_jobs ADD COLUMN erased_at timestamptz;
CREATE INDEX tori_jobs_owner_created_idx ON tori_jobs (owner, created_at DESC, id DESC);

-- The same Idempotency-Key from two owners is two keys.
ALTER TABLE tori_idempotency ADD COLUMN owner text NOT NULL DEFAULT '';
ALTER TABLE tori_idempotency DROP CONSTRAINT tori_idempotency_pkey;
ALTER TABLE tori_idempotency ADD PRIMARY KEY (owner, key);

-- Rate limits shared by every copy: one counter per (bucket, fixed window).
CREATE TABLE tori_rate_limits (
    bucket       text NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
