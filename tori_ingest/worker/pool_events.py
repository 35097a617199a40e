"""Pool processes → worker: "ready" and per-page "progress" events over a Unix datagram socket.

Not a `multiprocessing.Queue`: its writers share one lock, so a pool process SIGKILLed (a
timeout, a cancel, the OOM killer) while writing could leave the lock held and every later
event stuck, silently. A datagram is delivered whole or not at all, writers share nothing,
and the worker reads on its event loop without a thread. Progress is best effort (dropped
when the socket is full); "ready" waits for room.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

MAX_DATAGRAM = 4096
Handler = Callable[[tuple[Any, ...]], None]


class EventSender:
    """The child's end (picklable: only the address crosses the process boundary)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._sock: socket.socket | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"address": self.address, "_sock": None}

    def put(self, event: tuple[Any, ...]) -> None:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        flags = socket.MSG_DONTWAIT if event[0] == "progress" else 0
        with contextlib.suppress(BlockingIOError, FileNotFoundError, ConnectionRefusedError):
            self._sock.sendto(orjson.dumps(event), flags, self.address)


class EventReceiver:
    """The worker's end: a socket in a private temp directory, read on the event loop."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="tori-pool-"))
        self.address = str(self._dir / "events")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.address)
        self._sock.setblocking(False)
        self._loop: asyncio.AbstractEventLoop | None = None

    def sender(self) -> EventSender:
        return EventSender(self.address)

    def start(self, handler: Handler) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._drain, handler)

    def _drain(self, handler: Handler) -> None:
        while True:
            try:
                data = self._sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return
            try:
                event = tuple(orjson.loads(data))
                handler(event)
            except Exception as exc:  # one bad datagram never stops the stream
                log.warning(
                    "unreadable pool event",
                    extra={"event": "pool.bad_event", "error": type(exc).__name__},
                )

    def close(self) -> None:
        """Stop reading (from the loop's thread or any other) and remove the socket."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            done: concurrent.futures.Future[None] = concurrent.futures.Future()

            def remove() -> None:
                loop.remove_reader(self._sock.fileno())
                done.set_result(None)

            try:
                on_loop = asyncio.get_running_loop() is loop
            except RuntimeError:
                on_loop = False
            if on_loop:
                remove()
            else:
                with contextlib.suppress(RuntimeError, concurrent.futures.TimeoutError):
                    loop.call_soon_threadsafe(remove)
                    done.result(timeout=5)
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)
