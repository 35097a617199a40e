"""A real `tori-ingest serve` driven over HTTP and WebSockets: throughput end to end, submit
latency under load, and push latency from a committed change to the client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import orjson
import psutil
import websockets

from tori_ingest.bench import data as benchdata
from tori_ingest.core.vocab import TERMINAL, Status

# --- the service -----------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


class Service:
    """A real `tori-ingest serve` on this machine, its whole process tree's RSS sampled."""

    def __init__(
        self,
        url: str,
        data_dir: Path,
        model: str,
        pool_size: int,
        extra_env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        command: str = "serve",
    ) -> None:
        """`command` serve, or worker (its probes on the port, through TORI_METRICS_PORT)."""
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "TORI_DATA_DIR": str(data_dir),
            "TORI_SPACY_MODEL": model,
            "TORI_POOL_SIZE": str(pool_size),
            "TORI_AUTO_MIGRATE": "1",
            "TORI_LOG_LEVEL": "WARNING",
            "TORI_LOG_FORMAT": "json",
            **(extra_env or {}),
        }
        cli = [sys.executable, "-m", "tori_ingest", command, *args]
        if command == "serve":
            cli += ["--port", str(self.port)]
        else:
            env["TORI_METRICS_PORT"] = str(self.port)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = (data_dir / "service.log").open("wb")
        self.proc = subprocess.Popen(
            cli,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def rss_mb(self) -> float:
        """Summed RSS of the service's processes: overstates it, since the pool processes share
        the pages they inherited from the fork server (the model); see `pss_mb`."""
        return sum(p.memory_info().rss for p in self._processes()) / 2**20

    def pss_mb(self) -> float:
        """Summed PSS (proportional set size): each shared page counted once, split between
        the processes that share it: what the service really occupies."""
        total = 0
        for p in self._processes():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, AttributeError):
                total += p.memory_full_info().pss
        return total / 2**20

    def _processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            found = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        alive = []
        for p in found:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.memory_info()
                alive.append(p)
        return alive

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self.samples.append(self.rss_mb())

    def wait_ready(self, timeout: float = 180) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError("the service exited; see service.log")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            time.sleep(0.1)
        raise TimeoutError("the service did not become ready")

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, 15)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
        self.log.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_through_service(base: str, paths: list[Path], concurrency: int = 4) -> dict:
    """Upload every file, follow them over one WebSocket, time first upload → last success."""
    blobs = {p: p.read_bytes() for p in paths}  # read before the clock starts
    done: dict[str, str] = {}
    all_done = asyncio.Event()
    ids: set[str] = set()
    names: dict[str, str] = {}
    async with (
        websockets.connect(base.replace("http", "ws") + "/ws") as ws,
        httpx.AsyncClient(base_url=base, timeout=300) as client,
    ):

        async def follow() -> None:
            async for raw in ws:
                m = orjson.loads(raw)
                if m.get("status") in TERMINAL:
                    done[m["job_id"]] = m["status"]
                    if len(done) == len(paths) and ids >= set(done):
                        all_done.set()

        follower = asyncio.create_task(follow())
        limit = asyncio.Semaphore(concurrency)

        async def upload(path: Path) -> None:
            async with limit:
                r = await client.post(
                    "/jobs",
                    params={"reprocess": "true"},
                    files={"file": (path.name, blobs[path])},
                )
                job_id = r.json()["job_id"]
                ids.add(job_id)
                names[path.name] = job_id
                await ws.send(orjson.dumps({"subscribe": [job_id]}).decode())

        started = time.perf_counter()
        await asyncio.gather(*(upload(p) for p in paths))
        await asyncio.wait_for(all_done.wait(), 3600)
        elapsed = time.perf_counter() - started
        follower.cancel()
    failures = sum(1 for s in done.values() if s != Status.SUCCEEDED)
    succeeded = {n: j for n, j in names.items() if done.get(j) == Status.SUCCEEDED}
    return {"seconds": round(elapsed, 2), "failures": failures, "jobs": succeeded}


async def submit_and_push_latency(base: str, url: str, saturate: list[Path], samples: int) -> dict:
    """POST /jobs latency (1 MB) and NOTIFY→WebSocket latency while the pool is saturated."""
    big = benchdata.padded_pdf(1024 * 1024, seed=99)
    blobs = {p: p.read_bytes() for p in saturate}  # read before the clock starts
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for path in saturate:  # keep every core busy meanwhile
            await client.post(
                "/jobs",
                params={"reprocess": "true"},
                files={"file": (path.name, blobs[path])},
            )
        submit_ms = []
        for i in range(samples):
            body = big + f"\n%{i}\n".encode()  # distinct bytes: no dedup shortcut
            t0 = time.perf_counter()
            r = await client.post("/jobs", files={"file": (f"big-{i}.pdf", body)})
            submit_ms.append((time.perf_counter() - t0) * 1000)
            await client.delete(f"/jobs/{r.json()['job_id']}")  # measure, don't add work
        # Push: a cancelled job's row is changed directly in Postgres; time commit → receipt.
        r = await client.post("/jobs", files={"file": ("push.pdf", big + b"\n%push\n")})
        job_id = r.json()["job_id"]
        await client.delete(f"/jobs/{job_id}")
    conn = await asyncpg.connect(url)
    push_ms = []
    try:
        async with websockets.connect(base.replace("http", "ws") + "/ws") as ws:
            await ws.send(orjson.dumps({"subscribe": [job_id]}).decode())
            await ws.recv()  # snapshot
            for i in range(1, samples + 1):
                # Timed from before the statement is sent: the commit's NOTIFY can reach the
                # socket before the UPDATE's own reply does, so this is an upper bound.
                committed = time.perf_counter()
                await conn.execute(
                    "UPDATE tori_jobs SET pages_done = $2 WHERE id = $1", uuid.UUID(job_id), i
                )
                while True:
                    m = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
                    if m.get("pages_done") == i:
                        break
                push_ms.append((time.perf_counter() - committed) * 1000)
    finally:
        await conn.close()
    return {
        "submit_p50_ms": round(percentile(submit_ms, 50), 1),
        "submit_p99_ms": round(percentile(submit_ms, 99), 1),
        "push_p50_ms": round(percentile(push_ms, 50), 2),
        "push_p99_ms": round(percentile(push_ms, 99), 2),
    }
