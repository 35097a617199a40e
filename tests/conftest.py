"""Shared fixtures: one real Postgres for the session, a fresh database per test module,
and real `tori-ingest serve` processes on free ports.

Postgres is the embedded one (pgserver) unless DATABASE_URL is set; each module gets its own
database cloned from a migrated template, so tests never see each other's jobs.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tori_ingest.store import migrate
from tori_ingest.store.db import create_database

CORPUS = Path(
    os.environ.get("TORI_TEST_CORPUS")
    or Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pdfjs"
)
TEMPLATE = "tori_test_template"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def wait_for(predicate: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    from tori_ingest.store.db import EmbeddedPostgres

    # Not under pytest's 0700 tmp tree: pgserver runs Postgres as its own user when we are root.
    root = Path(tempfile.mkdtemp(prefix="tori-test-pg-"))
    root.chmod(0o755)
    server = EmbeddedPostgres(root / "data")
    yield server.url
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def template_url(admin_url: str) -> str:
    async def setup() -> str:
        url = await create_database(admin_url, TEMPLATE)
        await migrate.migrate_url(url)
        return url

    return run(setup())


def _new_database(admin_url: str, template: str | None) -> str:
    return run(create_database(admin_url, f"tori_test_{uuid.uuid4().hex[:12]}", template))


@pytest.fixture(scope="module")
def db_url(admin_url: str, template_url: str) -> str:
    """A fresh, migrated database for one test module."""
    return _new_database(admin_url, TEMPLATE)


@pytest.fixture
def empty_db_url(admin_url: str) -> str:
    """A fresh database with no schema at all (for migration tests)."""
    return _new_database(admin_url, None)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory the embedded Postgres' own user can enter (pytest's tmp tree is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="tori-data-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real `tori-ingest serve` (or `worker`) process."""

    def __init__(self, db_url: str, data_dir: Path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db_url = db_url
        self.data_dir = data_dir
        self.storage = Path(env.get("TORI_STORAGE_DIR") or data_dir / "files")
        self.log_path = data_dir / f"serve-{self.port}.log"
        full_env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "TORI_DATA_DIR": str(data_dir),
            "TORI_SPACY_MODEL": "blank:en",
            "TORI_POOL_SIZE": "2",
            "TORI_AUTO_MIGRATE": "0",
            "TORI_LOG_FORMAT": "json",
            **env,
        }
        if not db_url:  # the embedded default: no DATABASE_URL, auto-migrate on
            del full_env["DATABASE_URL"], full_env["TORI_AUTO_MIGRATE"]
        command = args or ("serve",)
        cli = [sys.executable, "-m", "tori_ingest", *command]
        if command[0] == "serve":
            cli += ["--port", str(self.port)]
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cli, env=full_env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.client = httpx.Client(base_url=self.base, timeout=30)

    def wait_ready(self, timeout: float = 90) -> Server:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log_text()}")
            try:
                return self.client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout, "the server to be ready")
        return self

    def server_errors(self) -> list[str]:
        """Access-log lines of 5xx answers (but /readyz, whose 503 while warming is its job)."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            msg = line.split('"msg":', 1)[-1]
            if re.search(r'HTTP/[\d.]+\\" 5\d\d', msg) and "/readyz" not in msg:
                found.append(line)
        return found

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.client.close()
        self.log.close()
        return self.proc.returncode

    # Convenience calls used across test modules.

    def upload(self, data: bytes, filename: str = "doc.pdf", **fields: str) -> httpx.Response:
        return self.client.post(
            "/jobs", files={"file": (filename, data, "application/pdf")}, data=fields
        )

    def wait_job(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        def terminal() -> dict[str, Any] | None:
            body = self.client.get(f"/jobs/{job_id}").json()
            return body if body["status"] in ("succeeded", "failed", "cancelled") else None

        return wait_for(terminal, timeout, f"job {job_id} to end")


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(db_url, tmp_path_factory.mktemp("data")).wait_ready()
    yield srv
    srv.stop()


StartServer = Callable[..., Server]


@pytest.fixture(scope="module")
def start_server(
    tmp_path_factory: pytest.TempPathFactory, admin_url: str, template_url: str
) -> Iterator[Callable[..., Server]]:
    """Factory for extra servers (own settings); all are stopped at module end."""
    started: list[Server] = []

    def start(*args: str, db_url: str | None = None, ready: bool = True, **env: str) -> Server:
        url = db_url or _new_database(admin_url, TEMPLATE)
        srv = Server(url, tmp_path_factory.mktemp("data"), *args, **env)
        started.append(srv)
        return srv.wait_ready() if ready else srv

    yield start
    for srv in started:
        srv.stop()


def fetchval(url: str, query: str, *args: Any) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return run(go())
