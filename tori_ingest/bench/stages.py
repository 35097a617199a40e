"""Where a service run's CPU went, stage by stage, and which files cost the most in each.

Totals come from the service's own counters (`tori_stage_cpu_seconds_total`: the pool's
extract, ocr, clean, nlp and assemble, the worker's assemble and store); the slowest files
per stage from each result's `timings_ms.cpu` (the pool's stages and the worker's assemble;
storing happens after the result is written, so it has totals only).
The fixed cost of a job is measured on one-page PDFs submitted one at a time; `CpuMeter` splits
a whole run's CPU between the pool, the service's own process and Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import websockets

from tori_ingest.core.vocab import TERMINAL, Stage

SLOWEST = 3
_COUNTER = re.compile(r'^tori_stage_cpu_seconds_total\{stage="(\w+)"\} ([0-9.eE+-]+)$', re.M)


def stage_totals(base: str) -> dict[str, float]:
    """CPU seconds per stage so far, from the service's /metrics."""
    text = httpx.get(f"{base}/metrics", timeout=30).text
    return {stage: float(value) for stage, value in _COUNTER.findall(text)}


async def per_file(base: str, jobs: dict[str, str]) -> dict[str, Any]:
    """The slowest files of each stage, in CPU ms, from the results of `jobs` (name → id)."""
    costs: dict[str, list[tuple[float, str]]] = {stage: [] for stage in Stage}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for name, job_id in jobs.items():
            result = (await client.get(f"/jobs/{job_id}/result")).json()
            pages = result["document"]["pages"]
            for stage, ms in result["timings_ms"].get("cpu", {}).items():
                costs[stage].append((ms, f"{name} ({pages} p)"))
    return {
        stage: [[label, round(ms)] for ms, label in sorted(found, reverse=True)[:SLOWEST]]
        for stage, found in costs.items()
        if found
    }


class CpuMeter:
    """CPU seconds of the service's own process (API + worker loop), its pool (the process's
    children) and the embedded Postgres (postmaster and backends; None for DATABASE_URL, which
    may be another machine). `pool_share_of_cpu` = pool ÷ all three: the bare pipeline spends
    only the pool's part, so on a machine whose cores all run the service and Postgres the
    rest is what the service costs beyond it (efficiency can exceed it when the bare run
    itself leaves cores idle, e.g. in its tail)."""

    def __init__(self, service_pid: int, postgres_pid: int | None) -> None:
        self.service = psutil.Process(service_pid)
        self.postgres = psutil.Process(postgres_pid) if postgres_pid else None

    def snapshot(self) -> dict[str, float]:
        own = self.service.cpu_times()  # the service outlives the run: no NoSuchProcess here
        found = {
            "service_process": own.user + own.system,
            "pool": _cpu(self.service.children(recursive=True))
            + own.children_user
            + own.children_system,
        }
        if self.postgres is not None:
            found["postgres"] = _cpu([self.postgres, *self.postgres.children(recursive=True)])
        return found

    def per_job(self, before: dict[str, float], jobs: int) -> dict[str, Any]:
        after = self.snapshot()
        ms = {k: round((after[k] - before[k]) * 1000 / jobs, 1) for k in after}
        share = round(ms["pool"] / sum(ms.values()), 3)
        return {"cpu_ms_per_job": ms, "pool_share_of_cpu": share}


def _cpu(processes: list[psutil.Process]) -> float:
    """Their CPU seconds, and that of children they have waited for (a pool process recycled,
    a Postgres backend closed): whoever reaps them lives in the same tree."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


# Stages the worker's own process runs (not the pool): left out of the pool's named CPU.
WORKER_STAGES = {Stage.STORE}
UNNAMED = "unnamed"  # the pool's CPU outside every named stage


def report(
    base: str, jobs: dict[str, str], seconds: float, pool_size: int, pool_cpu_s: float
) -> dict[str, Any]:
    """Stage CPU of the run, with the pool's CPU outside every stage as its own `unnamed` line.

    `stage_cpu_share_of_pool_cpu`: the named stages' share of what the pool processes really
    spent (psutil), i.e. how much of the pool's CPU the stages account for. `pool_busy_share`:
    the named stages' CPU ÷ (wall * pool size), the pool's utilisation: idle cores (waiting
    for uploads, one long document's tail on one core) lower it, not overhead.
    """
    totals = stage_totals(base)
    named = sum(v for stage, v in totals.items() if stage not in WORKER_STAGES)
    totals[UNNAMED] = max(pool_cpu_s - named, 0.0)
    return {
        "stage_cpu_s": {stage: round(value, 2) for stage, value in totals.items()},
        "stage_cpu_share_of_pool_cpu": round(named / pool_cpu_s, 3) if pool_cpu_s else None,
        "pool_busy_share": round(named / (seconds * pool_size), 2) if seconds else None,
        "slowest_files_cpu_ms": asyncio.run(per_file(base, jobs)),
    }


async def _one_at_a_time(base: str, blob: bytes, jobs: int) -> tuple[list[float], list[str]]:
    latencies, ids = [], []
    async with (
        websockets.connect(base.replace("http", "ws") + "/ws") as ws,
        httpx.AsyncClient(base_url=base, timeout=60) as client,
    ):
        for _ in range(jobs):
            started = time.perf_counter()
            r = await client.post(
                "/jobs", params={"reprocess": "true"}, files={"file": ("one.pdf", blob)}
            )
            job_id = r.json()["job_id"]
            await ws.send(orjson.dumps({"subscribe": [job_id]}).decode())
            while True:
                m = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
                if m.get("job_id") == job_id and m.get("status") in TERMINAL:
                    break
            latencies.append((time.perf_counter() - started) * 1000)
            ids.append(job_id)
    return latencies, ids


def fixed_cost(base: str, main_pid: int, pdf: Path, jobs: int = 40) -> dict[str, float]:
    """A one-page PDF, one job at a time: latency upload → succeeded, the pool's CPU for it,
    and the API/worker process's CPU per job (upload, dispatch, JSON, transactions, events)."""
    main = psutil.Process(main_pid)
    blob = pdf.read_bytes()
    asyncio.run(_one_at_a_time(base, blob, 3))  # warm
    before = sum(main.cpu_times()[:2])
    latencies, ids = asyncio.run(_one_at_a_time(base, blob, jobs))
    main_ms = (sum(main.cpu_times()[:2]) - before) * 1000 / jobs
    pool_cpu = [
        sum(httpx.get(f"{base}/jobs/{i}/result").json()["timings_ms"]["cpu"].values()) for i in ids
    ]
    return {
        "latency_ms_median": round(statistics.median(latencies), 1),
        "pool_cpu_ms_median": round(statistics.median(pool_cpu), 1),
        "service_process_cpu_ms_per_job": round(main_ms, 1),
    }
