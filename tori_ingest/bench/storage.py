"""`bench --storage`: the store, measured in one run on this machine.

1. upload throughput (MB/s) of POST /jobs into a directory and into a bucket, the same files
   through the same real `serve --no-worker`;
2. a back-fill from a bucket: `tori-ingest submit --by-reference s3://…/` over N objects —
   wall time, objects/s, and the peak RSS of the client and of the API process.

The bucket is `--bucket s3://…` (AWS_* from the environment), or else a moto_server started on
loopback when one is installed (the test extra): the report says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import obstore
import psutil
from obstore.store import S3Store

from tori_ingest.bench import data as benchdata
from tori_ingest.bench.service import Service, _free_port
from tori_ingest.core.settings import Settings
from tori_ingest.core.vocab import Lane
from tori_ingest.store.bucket import connect

UPLOAD_FILES = 8
UPLOAD_MB = 32
UPLOAD_CONCURRENCY = 4


@contextlib.contextmanager
def bucket_env(bucket_url: str | None, log: Any) -> Iterator[tuple[str, dict[str, str], str]]:
    """(s3 URL, env for processes, what it is); a loopback moto_server when none is given."""
    if bucket_url:
        yield bucket_url.rstrip("/"), {}, "the given bucket"
        return
    moto = str(Path(sys.executable).with_name("moto_server"))  # this environment's first
    if not Path(moto).exists():
        moto = shutil.which("moto_server") or moto
    if not Path(moto).exists():
        raise SystemExit("bench --storage needs --bucket s3://… or moto_server (pip install moto)")
    port = _free_port()
    proc = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.put(f"{endpoint}/tori-bench", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
        }
        log(f"bucket: moto_server on loopback ({endpoint})")
        yield "s3://tori-bench", env, "moto_server on loopback (in-memory S3, same machine)"
    finally:
        proc.terminate()  # a moto holding gigabytes takes a while to exit: never lose the figures
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def upload_blobs(count: int, size_mb: int) -> list[bytes]:
    """Distinct PDF-headed blobs (distinct: dedup must not shortcut the store)."""
    body = os.urandom(size_mb * 2**20 - 64)
    return [b"%PDF-1.4\n%" + uuid.uuid4().hex.encode() + b"\n" + body for _ in range(count)]


async def upload_mb_per_s(base: str, blobs: list[bytes]) -> float:
    gate = asyncio.Semaphore(UPLOAD_CONCURRENCY)

    async def one(client: httpx.AsyncClient, blob: bytes) -> None:
        async with gate:
            files = {"file": ("bench.pdf", blob, "application/pdf")}
            r = await client.post("/jobs", files=files, data={"priority": Lane.BULK})
            r.raise_for_status()

    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        started = time.perf_counter()
        await asyncio.gather(*(one(client, b) for b in blobs))
        seconds = time.perf_counter() - started
    return sum(map(len, blobs)) / 2**20 / seconds


async def fill_bucket(store: S3Store, prefix: str, documents: list[bytes], n: int) -> None:
    """`n` distinct objects under `prefix` (documents with a numbered trailing comment, so
    content addressing cannot fold them), 32 PUTs in flight."""
    gate = asyncio.Semaphore(32)

    async def put(i: int) -> None:
        data = documents[i % len(documents)] + f"\n%tori-bench {i}\n".encode()
        async with gate:
            await obstore.put_async(store, f"{prefix}/{i:07d}.pdf", data)

    await asyncio.gather(*(put(i) for i in range(n)))


def run_backfill(prefix_url: str, env: dict[str, str]) -> dict[str, float]:
    """The real client command; its wall time and peak RSS (sampled)."""
    command = [sys.executable, "-m", "tori_ingest", "submit", "--by-reference", prefix_url + "/"]
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = 0.0
    with contextlib.suppress(psutil.NoSuchProcess):
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            peak = max(peak, watched.memory_info().rss / 2**20)
            time.sleep(0.2)
    output = proc.communicate()[0].decode(errors="replace")
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"the back-fill client failed:\n{output[-2000:]}")
    return {"seconds": time.perf_counter() - started, "client_peak_rss_mb": peak}


def run(service_url: str, bucket_url: str | None, backfill: int, log: Any) -> dict[str, Any]:
    """Both figures; `service_url` is a migrated scratch database."""
    work = Path(tempfile.mkdtemp(prefix="tori-bench-storage-"))
    blobs = upload_blobs(UPLOAD_FILES, UPLOAD_MB)
    figures: dict[str, Any] = {"upload": {"files": UPLOAD_FILES, "mb_each": UPLOAD_MB}}
    with bucket_env(bucket_url, log) as (url, env, what):
        figures["bucket"] = what
        run_id = uuid.uuid4().hex[:8]
        stores = {
            "directory": {"TORI_STORAGE_DIR": str(work / "files")},
            "bucket": {"TORI_STORAGE_URL": f"{url}/{run_id}/docs", **env},
        }
        for name, store_env in stores.items():
            service = Service(service_url, work / name, "blank:en", 1, store_env, ("--no-worker",))
            try:
                service.wait_ready()
                rate = asyncio.run(upload_mb_per_s(service.base, blobs))
            finally:
                service.stop()
            figures["upload"][f"{name}_mb_per_s"] = round(rate, 1)
            log(f"upload into the {name}: {rate:.1f} MB/s")
        if backfill:
            figures["backfill"] = backfill_cost(service_url, url, run_id, env, backfill, work, log)
    return figures


def backfill_cost(
    service_url: str, url: str, run_id: str, env: dict[str, str], n: int, work: Path, log: Any
) -> dict[str, Any]:
    docs = [p.read_bytes() for p in benchdata.write_corpus(work / "corpus", documents=12)]
    bucket, _, base = url.removeprefix("s3://").partition("/")
    prefix = "/".join(filter(None, [base, run_id, "import"]))
    store = connect(f"s3://{bucket}", Settings.load(env))
    asyncio.run(fill_bucket(store, prefix, docs, n))
    store_env = {
        "TORI_STORAGE_URL": f"{url}/{run_id}/docs",
        "TORI_IMPORT_URL": f"s3://{bucket}/{prefix}",
        "TORI_BULK_BACKLOG_MAX": str(max(n * 2, 1000)),
        **env,
    }
    service = Service(service_url, work / "backfill", "blank:en", 1, store_env, ("--no-worker",))
    try:
        service.wait_ready()
        client_env = {**os.environ, **env, "TORI_URL": service.base}
        outcome = run_backfill(f"s3://{bucket}/{prefix}", client_env)
        api_peak = max(service.samples) if service.samples else service.rss_mb()
    finally:
        service.stop()
    per_s = n / outcome["seconds"]
    mean_kb = sum(map(len, docs)) / len(docs) / 1024
    log(f"back-fill of {n} objects ({mean_kb:.0f} KB mean): {outcome['seconds']:.1f} s, "
        f"{per_s:.0f} objects/s; client peak {outcome['client_peak_rss_mb']:.0f} MB, "
        f"API peak {api_peak:.0f} MB")  # fmt: skip
    return {
        "objects": n,
        "mean_object_kb": round(mean_kb, 1),
        "seconds": round(outcome["seconds"], 1),
        "objects_per_s": round(per_s, 1),
        "client_peak_rss_mb": round(outcome["client_peak_rss_mb"], 1),
        "api_peak_rss_mb": round(api_peak, 1),
        "hours_for_100k": round(100_000 / per_s / 3600, 2),
    }
