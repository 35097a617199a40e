"""WebSocket endpoints: `/ws` (subscribe to many jobs) and `/ws/jobs/{id}` (one job).

Per job a client gets a snapshot first, then every change in order. Each message carries the
job's whole state and its `version`, so a client that reads slowly only ever has the latest
state per job waiting (memory bounded by its subscriptions, never by the event rate), and a
state older than one already sent is never sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from tori_ingest.core.dashboard import DashboardBatch
from tori_ingest.core.models import MAX_SUBSCRIPTIONS, ErrorInfo, EventError, JobEvent, Subscription
from tori_ingest.core.vocab import ErrorCode
from tori_ingest.http import hub
from tori_ingest.http.auth import principal
from tori_ingest.http.feed import DashboardFeed
from tori_ingest.http.hub import EventHub

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
CLOSE_NOT_FOUND = 4404
CLOSE_POLICY = 1008  # a client that floods us with errors it never reads
CLOSE_TRY_LATER = 1013
# Per-connection and per-process bounds: a client that never reads cannot grow our memory.
MAX_PENDING_ERRORS = 50
MAX_BAD_MESSAGES = 100  # protocol errors one connection may cause, read or not
MAX_CONNECTIONS = 2000
_open_connections = 0
_per_caller: dict[str, int] = {}  # open sockets per caller (`caller_key`), this copy


class Abuse(Exception):
    """The client keeps sending what we must answer with errors, and does not read them."""


class Connection:
    """One client: its subscriptions, what it was last sent, and what is waiting to be sent."""

    def __init__(self, ws: WebSocket, hub: EventHub, db: asyncpg.Pool, single: bool) -> None:
        self.ws, self.hub, self.db, self.single = ws, hub, db, single
        self.who = principal(ws)  # its jobs only; a ticket: its one job only
        self.jobs: set[str] = set()
        self.sent: dict[str, int] = {}  # job id → last version sent
        self.pending: dict[str, JobEvent | EventError | DashboardBatch] = {}
        self.feed: DashboardFeed | None = None  # `{"dashboard": true}`: every visible job
        self.wake = asyncio.Event()
        self.found_any = False  # has any job state been sent (for the close code)
        self.errors = 0
        # Jobs whose first snapshot is being read: events for them wait here, newest only,
        # so the client's first message per job is always the snapshot.
        self.early: dict[str, JobEvent | None] = {}

    # Called by the hub (event loop thread, synchronously) and by snapshots.
    def push(self, event: JobEvent, *, snapshot: bool = False) -> None:
        job_id = event.job_id
        if job_id not in self.jobs:
            return
        if job_id in self.early and not snapshot:
            held = self.early[job_id]
            if held is None or event.version > held.version:
                self.early[job_id] = event
            return
        waiting = self.pending.get(job_id)
        newest = max(
            self.sent.get(job_id, 0), waiting.version if isinstance(waiting, JobEvent) else 0
        )
        if event.version < newest or (event.version == newest and not snapshot):
            return
        self.pending[job_id] = event.model_copy(
            update={"type": "snapshot" if snapshot else "update"}
        )
        self.wake.set()

    async def resync(self) -> None:
        states = await hub.snapshots(self.db, self.jobs, self.who.owner_filter)
        for state in states.values():
            self.push(state, snapshot=True)

    def error(self, code: ErrorCode, message: str, job_id: str | None = None) -> None:
        self.errors += 1
        waiting = sum(1 for m in self.pending.values() if isinstance(m, EventError))
        if waiting >= MAX_PENDING_ERRORS or self.errors > MAX_BAD_MESSAGES:
            raise Abuse(f"{self.errors} errors, {waiting} unread")
        key = f"error:{uuid.uuid4()}"
        self.pending[key] = EventError(job_id=job_id, error=ErrorInfo(code=code, message=message))
        self.wake.set()

    async def subscribe(self, raw_ids: list[Any]) -> None:
        ids: list[str] = []
        bad: list[str] = []
        for raw in raw_ids:
            try:
                ids.append(str(uuid.UUID(str(raw))))
            except ValueError:
                bad.append(str(raw)[:64])
        if self.who.ticket_job is not None:  # other ids do not exist for a ticket
            bad += [i for i in ids if i != self.who.ticket_job]
            ids = [i for i in ids if i == self.who.ticket_job]
        if bad:  # one message for all of them: bounded, however many were sent
            self.error(ErrorCode.NOT_FOUND, f"no such job ({len(bad)} invalid ids)", bad[0])
        new = [i for i in dict.fromkeys(ids) if i not in self.jobs]
        if len(self.jobs) + len(new) > MAX_SUBSCRIPTIONS:
            self.error(ErrorCode.BAD_REQUEST, f"at most {MAX_SUBSCRIPTIONS} subscriptions")
            return
        for job_id in new:  # listen before reading the snapshot: no change can fall between
            self.jobs.add(job_id)
            self.early[job_id] = None
            self.hub.subscribe(job_id, self)
        try:
            states = await hub.snapshots(self.db, new, self.who.owner_filter)
        finally:
            held = {job_id: self.early.pop(job_id, None) for job_id in new}
        for job_id in new:
            if job_id in states:
                state, newer = states[job_id], held[job_id]
                self.push(
                    newer if newer and newer.version > state.version else state, snapshot=True
                )
            else:
                self.unsubscribe([job_id])
                self.error(ErrorCode.NOT_FOUND, "no such job", job_id)

    def unsubscribe(self, ids: list[Any]) -> None:
        for raw in ids:
            job_id = str(raw)
            if job_id in self.jobs:
                self.jobs.discard(job_id)
                self.hub.unsubscribe(job_id, self)
                self.sent.pop(job_id, None)
                self.pending.pop(job_id, None)

    def dashboard(self) -> None:
        """Follow every job this caller may see, in coalesced batches (`http.feed`)."""
        if self.who.ticket_job is not None:
            self.error(ErrorCode.BAD_REQUEST, "a ticket reads one job; the dashboard needs a token")
        elif self.feed is None:
            owner = self.who.owner_filter
            self.feed = DashboardFeed(self.hub, self.db, owner, self.pending, self.wake)
            self.feed.start()

    def close(self) -> None:
        self.unsubscribe(list(self.jobs))
        if self.feed is not None:
            self.feed.stop()

    async def send_loop(self) -> None:
        """Send what is pending, oldest first; `/ws/jobs/{id}` stops after the terminal state."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending:
                key = next(iter(self.pending))
                message = self.pending.pop(key)
                await self.ws.send_text(message.model_dump_json())
                if isinstance(message, DashboardBatch):
                    continue
                if isinstance(message, EventError):
                    if self.single:
                        return
                    continue
                self.sent[key] = message.version
                self.found_any = True
                if self.single and message.status.terminal:
                    return

    async def receive_loop(self) -> None:
        while True:
            raw = await self.ws.receive_text()
            if len(raw) > MAX_MESSAGE_BYTES:
                self.error(ErrorCode.BAD_REQUEST, "message too large")
                continue
            try:
                message = Subscription.model_validate_json(raw)
            except ValidationError:
                self.error(
                    ErrorCode.BAD_REQUEST,
                    'expected JSON like {"subscribe": ["<job id>"]} (lists of job ids)',
                )
                continue
            if message.unsubscribe:
                self.unsubscribe(message.unsubscribe)
            if message.subscribe:
                await self.subscribe(message.subscribe)
            if message.dashboard:
                self.dashboard()
            if not (message.subscribe or message.unsubscribe or message.dashboard):
                self.error(
                    ErrorCode.BAD_REQUEST, "nothing to do: use subscribe, unsubscribe or dashboard"
                )


async def _serve(ws: WebSocket, conn: Connection, first: list[str] | None) -> None:
    await ws.accept()
    loops: list[asyncio.Task[None]] = []
    try:
        if first is not None:
            await conn.subscribe(first)
            await conn.send_loop()
            return
        loops = [
            asyncio.create_task(conn.send_loop(), name="ws-send"),
            asyncio.create_task(conn.receive_loop(), name="ws-receive"),
        ]
        done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    except WebSocketDisconnect:
        return
    except Abuse as exc:
        log.info("closing an abusive WebSocket", extra={"event": "ws.abuse", "reason": str(exc)})
        await _close(ws, CLOSE_POLICY)
    finally:
        # Also when this handler itself is cancelled (shutdown): each loop is stopped and its
        # end collected, so a client's normal disconnect never surfaces as an unretrieved
        # task exception.
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        conn.close()


async def _close(ws: WebSocket, code: int) -> None:
    if ws.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(code=code)


def caller_key(ws: WebSocket) -> str:
    """Whose sockets these are: the token name or ticket, else (auth off) the client address."""
    who = principal(ws)
    if who.name is not None or who.ticket_job is not None:
        return who.bucket
    return f"address:{(ws.client or ('unknown', 0))[0]}"


@contextlib.asynccontextmanager
async def _admitted(ws: WebSocket) -> AsyncIterator[bool]:
    """Count this connection against MAX_CONNECTIONS and against its caller's share
    (TORI_WS_PER_CALLER), so one caller cannot hold every slot; False (closed 1013) when
    either is full."""
    global _open_connections
    key, per_caller = caller_key(ws), ws.app.state.ctx.settings.tori_ws_per_caller
    if _open_connections >= MAX_CONNECTIONS or _per_caller.get(key, 0) >= per_caller:
        await ws.accept()
        await _close(ws, CLOSE_TRY_LATER)
        yield False
        return
    _open_connections += 1
    _per_caller[key] = _per_caller.get(key, 0) + 1
    try:
        yield True
    finally:
        _open_connections -= 1
        _per_caller[key] -= 1
        if not _per_caller[key]:
            del _per_caller[key]


async def ws_many(ws: WebSocket) -> None:
    ctx = ws.app.state.ctx
    async with _admitted(ws) as admitted:
        if admitted:
            await _serve(ws, Connection(ws, ctx.hub, ctx.db, single=False), None)
            await _close(ws, 1000)


async def ws_one(ws: WebSocket) -> None:
    ctx = ws.app.state.ctx
    async with _admitted(ws) as admitted:
        if admitted:
            conn = Connection(ws, ctx.hub, ctx.db, single=True)
            await _serve(ws, conn, [ws.path_params["job_id"]])
            await _close(ws, 1000 if conn.found_any else CLOSE_NOT_FOUND)
