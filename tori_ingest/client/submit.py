"""`tori-ingest submit`: upload files or directories (or reference them), follow them live.

Uploads run concurrently (bounded); `--by-reference` posts paths under TORI_IMPORT_DIR in
batches instead (no bytes travel: the back-fill mode). Jobs are followed over WebSockets
(one socket per 1,000 jobs, the server's per-socket cap), with a rich progress bar of files
and pages. Exit status is non-zero when any job failed or was refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiofiles
import httpx
import orjson
import websockets
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tori_ingest.core.models import MAX_SUBSCRIPTIONS
from tori_ingest.core.vocab import TERMINAL, Lane, Status

REFUSED = "refused"  # the service answered 4xx: no job exists
REFERENCE_BATCH = 500
# `--save DIR --format F`: the result of each succeeded job, as DIR/<file name>.<suffix>.
SAVE_SUFFIXES = {"json": ".json", "text": ".txt", "markdown": ".md"}


@dataclass
class Tracked:
    path: Path
    job_id: str | None = None
    status: str = "submitting"
    pages_done: int = 0
    pages_total: int | None = None
    error: str | None = None
    saved: Path | None = None

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL or self.status == REFUSED

    def update(self, message: dict[str, Any]) -> None:
        self.status = message["status"]
        self.pages_total = message.get("pages_total") or self.pages_total
        self.pages_done = message.get("pages_done") or 0
        if self.status == Status.SUCCEEDED:
            self.pages_done = self.pages_total or self.pages_done
        self.error = (message.get("error") or {}).get("code")


# What a directory is searched for: PDFs and the images the service OCRs.
DOCUMENT_SUFFIXES = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff"})


def collect(paths: list[str]) -> tuple[list[Path], list[Path]]:
    """(files to send, files skipped): files as given, and every PDF or image under given
    directories (sorted, recursive); other files under a directory are skipped."""
    found: list[Path] = []
    skipped: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for p in sorted(q for q in path.rglob("*") if q.is_file()):
                (found if p.suffix.lower() in DOCUMENT_SUFFIXES else skipped).append(p)
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {raw}")
    return found, skipped


class Follower:
    """Subscribes job ids over as many WebSockets as needed and routes their messages."""

    def __init__(self, url: str, headers: dict[str, str], on_message: Callable) -> None:
        self.url = url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/")
        self.headers, self.on_message = headers, on_message
        self.sockets: list[Any] = []
        self.readers: list[asyncio.Task[None]] = []
        self.in_last = MAX_SUBSCRIPTIONS

    async def subscribe(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            if self.in_last >= MAX_SUBSCRIPTIONS:
                ws = await websockets.connect(self.url + "/ws", additional_headers=self.headers)
                self.sockets.append(ws)
                self.readers.append(asyncio.create_task(self._read(ws)))
                self.in_last = 0
            await self.sockets[-1].send(orjson.dumps({"subscribe": [job_id]}).decode())
            self.in_last += 1

    async def _read(self, ws: Any) -> None:
        async for raw in ws:
            message = orjson.loads(raw)
            if message.get("type") != "error":
                self.on_message(message)

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        for ws in self.sockets:
            with contextlib.suppress(Exception):
                await ws.close()


async def submit(
    paths: list[Path],
    *,
    url: str,
    token: str | None = None,
    priority: str | None = None,
    password: str | None = None,
    concurrency: int = 4,
    references: list[str] | None = None,
    console: Console | None = None,
    save: Path | None = None,
    result_format: str = "json",
) -> list[Tracked]:
    """Submit and follow; with `references` (paths relative to TORI_IMPORT_DIR, one per
    path), by reference instead of uploading; with `save`, write each succeeded job's result
    there in `result_format` (json, text or markdown)."""
    console = console or Console(stderr=True)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    items = [Tracked(p) for p in paths]
    by_id: dict[str, Tracked] = {}
    done = asyncio.Event()

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        files_bar = progress.add_task("files", total=len(items))
        pages_bar = progress.add_task("pages", total=None)

        def refresh() -> None:
            ended = sum(1 for t in items if t.ended)
            progress.update(files_bar, completed=ended)
            total = sum(t.pages_total or 0 for t in items) or None
            progress.update(pages_bar, completed=sum(t.pages_done for t in items), total=total)
            if ended == len(items):
                done.set()

        def on_message(message: dict[str, Any]) -> None:
            item = by_id.get(message.get("job_id") or "")
            if item is not None:
                item.update(message)
                refresh()

        follower = Follower(url, headers, on_message)

        async def accepted(item: Tracked, response: httpx.Response, body: Any) -> None:
            if response.status_code in (200, 202):
                item.job_id = body["job_id"]
                item.update(body)  # a deduplicated job is born succeeded, with its pages
                by_id[item.job_id] = item
                await follower.subscribe([item.job_id])
            else:
                item.status, item.error = REFUSED, refusal(response)
            refresh()

        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:
            if references is not None:
                await _by_reference(client, items, references, priority, password, accepted)
            else:
                await _upload_all(client, items, priority, password, concurrency, accepted)
            if items:
                await done.wait()
            if save is not None:
                await save_results(client, items, save, result_format, concurrency)
        await follower.close()
    return items


async def save_results(
    client: httpx.AsyncClient, items: list[Tracked], folder: Path, fmt: str, concurrency: int
) -> None:
    """Each succeeded job's result as folder/<file name>.<suffix>; a name two files share
    gets its job id added, so no result overwrites another."""
    done = [t for t in items if t.status == Status.SUCCEEDED and t.job_id]
    names = [t.path.name for t in done]
    gate = asyncio.Semaphore(max(1, concurrency))

    async def fetch(item: Tracked) -> None:
        name = (
            item.path.name
            if names.count(item.path.name) == 1
            else f"{item.path.name}.{item.job_id}"
        )
        target = folder / (name + SAVE_SUFFIXES[fmt])
        async with (
            gate,
            client.stream("GET", f"/jobs/{item.job_id}/result", params={"format": fmt}) as response,
        ):
            if response.status_code != 200:
                item.error = f"result not saved: {refusal(response)}"
                return
            async with aiofiles.open(target, "wb") as out:
                async for piece in response.aiter_bytes():
                    await out.write(piece)
        item.saved = target

    await asyncio.gather(*(fetch(item) for item in done))


async def _upload_all(
    client: httpx.AsyncClient,
    items: list[Tracked],
    priority: str | None,
    password: str | None,
    concurrency: int,
    accepted: Callable,
) -> None:
    limit = asyncio.Semaphore(concurrency)
    fields = {
        "priority": priority or Lane.INTERACTIVE,
        **({"password": password} if password else {}),
    }

    async def upload(item: Tracked) -> None:
        async with limit:
            with item.path.open("rb") as f:
                r = await client.post(
                    "/jobs", files={"file": (item.path.name, f, "application/pdf")}, data=fields
                )
        await accepted(item, r, r.json() if r.status_code in (200, 202) else None)

    await asyncio.gather(*(upload(i) for i in items))


async def _by_reference(
    client: httpx.AsyncClient,
    items: list[Tracked],
    references: list[str],
    priority: str | None,
    password: str | None,
    accepted: Callable,
) -> None:
    for start in range(0, len(items), REFERENCE_BATCH):
        batch = items[start : start + REFERENCE_BATCH]
        body: dict[str, Any] = {
            "paths": references[start : start + REFERENCE_BATCH],
            "priority": priority or Lane.BULK,
        }
        if password:
            body["password"] = password
        r = await client.post("/jobs", json=body)
        answers = r.json() if r.status_code in (200, 202) else None
        if isinstance(answers, dict):
            answers = [answers]
        for n, item in enumerate(batch):
            await accepted(item, r, answers[n] if answers else None)


def relative_to_import(paths: list[Path], import_dir: Path) -> list[str]:
    """Paths as the service's TORI_IMPORT_DIR sees them; ValueError for one outside it."""
    root = import_dir.resolve()
    return [str(p.resolve().relative_to(root)) for p in paths]


def refusal(response: httpx.Response) -> str:
    """Why the service refused: its code and message, and for 401 how to send a token."""
    try:
        error = response.json()["error"]
        why = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        why = f"http_{response.status_code}"
    if response.status_code == 401:
        why += " (pass --token or set TORI_TOKEN)"
    return why


def summary(items: list[Tracked]) -> Table:
    table = Table(title="tori-ingest submit")
    saved = any(item.saved for item in items)
    for column in ("file", "job", "status", "pages", "error", *(["saved"] if saved else [])):
        table.add_column(column, overflow="fold")  # wrap, never cut a path or a job id
    for item in items:
        colour = {Status.SUCCEEDED: "green", Status.FAILED: "red", REFUSED: "red"}.get(
            item.status, ""
        )
        status = f"[{colour}]{item.status}[/]" if colour else item.status
        table.add_row(
            str(item.path),
            item.job_id or "-",
            status,
            str(item.pages_total or "-"),
            item.error or "",
            *([str(item.saved or "")] if saved else []),
        )
    return table
