"""The queue at scale: per-job overhead of defer + fetch + finish with many rows in the tables."""

from __future__ import annotations

import time

import asyncpg

from tori_ingest.core.vocab import Lane, Status
from tori_ingest.store import jobs

# --- the queue at scale ----------------------------------------------------------------------


async def queue_overhead(url: str, prefill: int, jobs_per_run: int = 300) -> float:
    """Mean ms per no-op job (our atomic defer + Procrastinate fetch + finish) at `prefill` rows.

    The prefill is what a back-fill leaves: finished jobs, and a queued bulk backlog.
    """
    import procrastinate

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("TRUNCATE tori_jobs CASCADE; DELETE FROM procrastinate_jobs")
        await conn.execute(
            """INSERT INTO tori_jobs (id, status, lane, sha256, filename, bytes, storage_key,
                                      finished_at)
               SELECT gen_random_uuid(), CASE WHEN g % 2 = 0 THEN $2 ELSE $3 END,
                      $4, md5(g::text), 'f.pdf', 1, 'k', now()
               FROM generate_series(1, $1) g""",
            prefill,
            Status.SUCCEEDED,
            Status.QUEUED,
            Lane.BULK,
        )
        await conn.execute(
            """INSERT INTO procrastinate_jobs (queue_name, task_name, priority, args, status)
               SELECT $2, $3, 0, jsonb_build_object('job_id', gen_random_uuid()),
                      CASE WHEN g % 2 = 0 THEN $4 ELSE $5 END::procrastinate_job_status
               FROM generate_series(1, $1) g""",
            prefill,
            jobs.QUEUE,
            jobs.TASK_NAME,
            procrastinate.jobs.Status.FAILED.value,
            procrastinate.jobs.Status.TODO.value,
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url, max_size=4))
    db = await asyncpg.create_pool(url, min_size=1, max_size=4)
    async with app.open_async():
        worker_id = await app.job_manager.register_worker()
        new = jobs.NewJob(sha256="0" * 64, filename="noop.pdf", bytes=1, storage_key="noop")
        started = time.perf_counter()
        for _ in range(jobs_per_run):
            async with db.acquire() as c:
                await jobs.create(c, new)
            job = await app.job_manager.fetch_job(queues=[jobs.QUEUE], worker_id=worker_id)
            assert job is not None and job.id is not None
            await app.job_manager.finish_job(
                job, status=procrastinate.jobs.Status.SUCCEEDED, delete_job=True
            )
        elapsed = time.perf_counter() - started
        await app.job_manager.unregister_worker(worker_id)
    await db.close()
    return elapsed / jobs_per_run * 1000
