-- The copies that run a worker, as each reports itself every few seconds: the dashboard's
-- per-copy pool status and the `tori_copies{state}` gauge. Procrastinate's own
-- procrastinate_workers has only an id and a heartbeat, so this small table says who a copy is
-- (host:pid, the name its Procrastinate worker runs under) and what its pool is doing.
-- A copy deletes its row when it stops; a row whose heartbeat is older than its own
-- `stalled_after_s` is a copy that died (shown as stalled, dropped after an hour).
CREATE TABLE tori_copies (
    name            text PRIMARY KEY,
    host            text NOT NULL,
    pid             integer NOT NULL,
    version         text NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat_at    timestamptz NOT NULL DEFAULT now(),
    stalled_after_s double precision NOT NULL,
    processes       integer NOT NULL,             -- in its pool
    busy            integer NOT NULL DEFAULT 0,   -- of them running a job
    process_starts  integer NOT NULL DEFAULT 0,   -- pool processes started, replacements included
    running         uuid[] NOT NULL DEFAULT '{}', -- the jobs it is running now
    -- its Procrastinate worker ids (procrastinate_workers.id; a new one after each restart of
    -- the worker loop), so a job that started since the last report still names its copy
    worker_ids      bigint[] NOT NULL DEFAULT '{}'
);

-- Throughput over the last hour (the dashboard) reads jobs by the time they ended.
CREATE INDEX tori_jobs_finished_idx ON tori_jobs (finished_at);
