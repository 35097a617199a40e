"""The benchmark's queue-overhead measure, run through a real Postgres queue."""

from tori_ingest.bench import run as bench


async def test_queue_overhead_runs_real_jobs_through_the_queue(db_url: str) -> None:
    per_job_ms = await bench.queue_overhead(db_url, prefill=200, jobs_per_run=10)
    assert per_job_ms > 0
