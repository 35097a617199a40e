"""Which Postgres to use (embedded or `DATABASE_URL`) and the asyncpg pool for our own tables."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tori_ingest.core.settings import Settings

log = logging.getLogger(__name__)

# Errors that mean "the database is not reachable right now" (answered 503, retried by the
# worker). OSError is here because a refused connection is one; the store wraps its own OSErrors
# (`StorageUnavailable`), so a full disk is never reported as the database.
DB_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    TimeoutError,
)


class EmbeddedPostgres:
    """A private Postgres under the data directory, shared by every process that uses it.

    pgserver counts the processes using one data directory and stops the server when the
    last of them exits, so `serve` and `worker` side by side share it safely.
    """

    def __init__(self, pgdata: Path) -> None:
        with warnings.catch_warnings():  # "XDG_RUNTIME_DIR is not set": harmless, it falls back
            warnings.simplefilter("ignore")
            import pgserver  # imported lazily: only the embedded mode needs it

        pgdata.mkdir(parents=True, exist_ok=True)
        forget_dead_handles(pgdata)
        self._server = pgserver.get_server(pgdata, cleanup_mode="stop")
        self.url: str = self._server.get_uri()

    @property
    def pid(self) -> int | None:
        """The postmaster's (the benchmark counts its CPU)."""
        pid = self._server.get_pid()
        return int(pid) if pid is not None else None

    def stop(self) -> None:
        self._server.cleanup()


HANDLES = ".handle_pids.json"  # pgserver's list of the processes using a data directory


def forget_dead_handles(pgdata: Path) -> list[int]:
    """Drop processes that no longer exist from pgserver's handle list; returns them.

    pgserver stops the server when the last process on its list exits. A process killed
    without running its exit handlers (a second Ctrl-C, SIGKILL, OOM) stays on the list, and
    from then on no exit is ever the last one: Postgres would outlive every later run."""
    path = pgdata / HANDLES
    try:
        pids = [int(p) for p in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []
    dead = [p for p in pids if not _alive(p)]
    if dead:
        path.write_text(json.dumps([p for p in pids if p not in dead]))
        log.info(
            "forgot embedded-Postgres handles of processes that died",
            extra={"event": "db.stale_handles", "pids": dead},
        )
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The URL to connect to, starting the embedded server when no DATABASE_URL is set."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value(), None
    settings.tori_data_dir.mkdir(parents=True, exist_ok=True)
    # pgserver runs Postgres as its own user when we are root: it must be able to enter here.
    settings.tori_data_dir.chmod(settings.tori_data_dir.stat().st_mode | 0o711)
    server = EmbeddedPostgres(settings.tori_data_dir / "pg")
    return server.url, server


async def create_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, **kw: Any
) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=60,
        timeout=5,
        reset=_keep_session,
        **kw,
    )


CLOSE_TIMEOUT_S = 5.0


async def ping(db: asyncpg.Pool | asyncpg.Connection, timeout: float | None = None) -> None:  # noqa: ASYNC109
    """One round trip: raises when the database does not answer."""
    await db.fetchval("SELECT 1", timeout=timeout)


async def close_pool(db: asyncpg.Pool, timeout: float = CLOSE_TIMEOUT_S) -> None:  # noqa: ASYNC109
    """Close gracefully, but never wait on a connection someone still holds: after `timeout`
    every connection is terminated, so shutdown ends within its grace whatever is connected."""
    try:
        await asyncio.wait_for(db.close(), timeout)
    except TimeoutError:
        log.warning(
            "database pool did not close within %.0f s; terminating its connections",
            timeout,
            extra={"event": "db.close_timeout"},
        )
        db.terminate()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset query (UNLISTEN *, RESET ALL, unlock all, CLOSE
    ALL): one round trip on every release, and our pooled connections leave none of that
    behind (no SET, LISTEN, session locks or cursors outside transactions; the event hub and
    `migrate` use connections of their own). asyncpg still rolls back a stray transaction."""


def with_database(url: str, name: str) -> str:
    """The same server, another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    """(Re)create database `name` (a scratch one: bench, tests); returns its URL."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name}")
        await conn.execute(
            f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")
        )
    finally:
        await conn.close()
    return with_database(admin_url, name)
