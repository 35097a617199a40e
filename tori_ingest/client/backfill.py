"""`tori-ingest submit --by-reference s3://bucket/prefix/`: enqueue a whole bucket prefix.

The prefix is listed a page (1,000 keys) at a time and posted in batches of `BATCH` object
URLs, a few batches in flight, so memory stays flat for 100,000 keys or 10 million. Jobs
are not followed one by one (the dashboard and `tori-ingest status` show the back-fill);
the command reports what was accepted and what was refused, and why.

Every batch carries an Idempotency-Key derived from its keys: running the same command
again after an interruption replays the batches already accepted instead of doubling them.
A batch refused as a whole (one object is not a document) is retried key by key, so one
bad object never holds back its 99 neighbours.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import obstore
from obstore.store import S3Store
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from tori_ingest.client.submit import DOCUMENT_SUFFIXES
from tori_ingest.core.vocab import Lane

BATCH = 100
LIST_PAGE = 1000
MAX_TRIES = 8  # per batch, for 429/5xx/transport errors, with backoff


class Stopped(RuntimeError):
    """The service kept failing a batch (5xx, 429, unreachable) through every try."""


def is_prefix(path: str) -> bool:
    return path.startswith("s3://")


async def object_urls(prefix_url: str) -> AsyncIterator[list[str]]:
    """Pages of `s3://bucket/key` URLs of documents under the prefix (AWS_* from the env)."""
    bucket, _, prefix = prefix_url.removeprefix("s3://").partition("/")
    store = S3Store(bucket)  # configured by the standard AWS_* environment variables
    async for page in obstore.list(store, prefix=prefix or None, chunk_size=LIST_PAGE):
        yield [
            f"s3://{bucket}/{meta['path']}"
            for meta in page
            if "." + meta["path"].rsplit(".", 1)[-1].lower() in DOCUMENT_SUFFIXES
        ]


class Backfill:
    """Posts batches and counts outcomes; `run` drives the listing."""

    def __init__(self, client: httpx.AsyncClient, priority: str | None, password: str | None):
        self.client = client
        self.priority = priority or Lane.BULK
        self.password = password
        self.counts: Counter[str] = Counter()

    async def run(self, prefix_url: str, concurrency: int, progress: Progress) -> Counter[str]:
        task = progress.add_task("submitting", total=None)
        gate = asyncio.Semaphore(max(1, concurrency))
        async with asyncio.TaskGroup() as group:
            async for page in object_urls(prefix_url):
                self.counts["listed"] += len(page)
                for start in range(0, len(page), BATCH):
                    await gate.acquire()  # bounded: listing waits for the slowest batches
                    group.create_task(self._gated(page[start : start + BATCH], gate))
                progress.update(task, description=self._describe())
        progress.update(task, description=self._describe())
        return self.counts

    def _describe(self) -> str:
        c = self.counts
        return f"listed {c['listed']}, accepted {c['accepted']}, refused {c['refused']}"

    async def _gated(self, urls: list[str], gate: asyncio.Semaphore) -> None:
        try:
            await self._submit(urls)
        finally:
            gate.release()

    async def _submit(self, urls: list[str]) -> None:
        status, answer = await self._post(urls)
        if status in (200, 202):
            self.counts["accepted"] += len(urls)
            self.counts["replayed"] += len(urls) if status == 200 else 0
        elif len(urls) > 1:  # refused (4xx) for one bad object: find it, keep the rest
            for url in urls:
                await self._submit([url])
        else:
            self.counts["refused"] += 1
            self.counts[f"refused:{answer}"] += 1

    async def _post(self, urls: list[str]) -> tuple[int, str]:
        """(status, error code) once the service has answered for good (2xx or 4xx); Stopped
        when it never does, so an outage ends the run instead of splitting every batch."""
        body: dict[str, object] = {"paths": urls, "priority": self.priority}
        if self.password:
            body["password"] = self.password
        key = "backfill-" + hashlib.sha256("\n".join(urls).encode()).hexdigest()[:40]
        for attempt in range(MAX_TRIES):
            try:
                r = await self.client.post("/jobs", json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                r = None
            if r is not None and r.status_code < 500 and r.status_code != 429:
                code = r.json().get("error", {}).get("code", "") if r.status_code >= 400 else ""
                return r.status_code, code
            wait = float(r.headers.get("retry-after", 0)) if r is not None else 0
            await asyncio.sleep(max(wait, min(2.0**attempt, 60)))
        status = r.status_code if r is not None else "no answer"
        raise Stopped(f"the service answered {status} to a batch {MAX_TRIES} times")


async def submit_prefix(
    prefix_url: str,
    *,
    url: str,
    token: str | None,
    priority: str | None,
    password: str | None,
    concurrency: int,
    console: Console,
) -> Counter[str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as client:
        backfill = Backfill(client, priority, password)
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            return await backfill.run(prefix_url, concurrency, progress)
