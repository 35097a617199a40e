"""`tori-ingest submit`: upload files or directories, follow them live, summarise.

Uploads run concurrently (bounded), a single WebSocket follows every job, and a rich progress
bar shows files and pages. Exit status is non-zero when any job failed or was refused.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

TERMINAL = {"succeeded", "failed", "cancelled"}


@dataclass
class Tracked:
    path: Path
    job_id: str | None = None
    status: str = "uploading"
    pages_done: int = 0
    pages_total: int | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def collect(paths: list[str]) -> list[Path]:
    """Files as given, and every *.pdf under given directories (sorted, recursive)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".pdf"
            )
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {raw}")
    return found


async def submit(
    paths: list[Path],
    *,
    url: str,
    token: str | None = None,
    priority: str = "interactive",
    password: str | None = None,
    concurrency: int = 4,
    console: Console | None = None,
) -> list[Tracked]:
    console = console or Console(stderr=True)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    items = [Tracked(p) for p in paths]
    by_id: dict[str, Tracked] = {}
    done = asyncio.Event()
    ws_url = url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + "/ws"

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        files_bar = progress.add_task("files", total=len(items))
        pages_bar = progress.add_task("pages", total=None)

        def refresh() -> None:
            ended = sum(1 for t in items if t.status in TERMINAL or t.status == "refused")
            progress.update(files_bar, completed=ended)
            totals = [t.pages_total or 0 for t in items]
            progress.update(
                pages_bar, completed=sum(t.pages_done for t in items), total=sum(totals) or None
            )
            if ended == len(items):
                done.set()

        async with websockets.connect(ws_url, additional_headers=headers) as ws:

            async def follow() -> None:
                async for raw in ws:
                    message = orjson.loads(raw)
                    item = by_id.get(message.get("job_id") or "")
                    if item is None or message.get("type") == "error":
                        continue
                    item.status = message["status"]
                    item.pages_total = message.get("pages_total")
                    item.pages_done = message.get("pages_done") or 0
                    if message["status"] == "succeeded":
                        item.pages_done = item.pages_total or item.pages_done
                    item.error = (message.get("error") or {}).get("code")
                    refresh()

            follower = asyncio.create_task(follow())
            limit = asyncio.Semaphore(concurrency)
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:

                async def upload(item: Tracked) -> None:
                    async with limit:
                        fields = {
                            "priority": priority,
                            **({"password": password} if password else {}),
                        }
                        with item.path.open("rb") as f:
                            r = await client.post(
                                "/jobs",
                                files={"file": (item.path.name, f, "application/pdf")},
                                data=fields,
                            )
                    if r.status_code in (200, 202):
                        item.job_id, item.status = r.json()["job_id"], "queued"
                        by_id[item.job_id] = item
                        await ws.send(orjson.dumps({"subscribe": [item.job_id]}).decode())
                    else:
                        item.status = "refused"
                        item.error = _error_code(r)
                    refresh()

                await asyncio.gather(*(upload(i) for i in items))
            if items:
                await done.wait()
            follower.cancel()
    return items


def _error_code(response: httpx.Response) -> str:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"


def summary(items: list[Tracked]) -> Table:
    table = Table(title="tori-ingest submit")
    for column in ("file", "job", "status", "pages", "error"):
        table.add_column(column)
    for item in items:
        colour = {"succeeded": "green", "failed": "red", "refused": "red"}.get(item.status, "")
        table.add_row(
            str(item.path),
            item.job_id or "-",
            f"[{colour}]{item.status}[/]" if colour else item.status,
            str(item.pages_total or "-"),
            item.error or "",
        )
    return table
