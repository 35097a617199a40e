"""Shared fixtures and helpers: one real Postgres for the session, a fresh migrated database per
test module, the API in this process, and real `tori-ingest serve` processes on free ports.

The test pyramid:

* the API surface (validation, error envelopes, auth, idempotency, listings, OpenAPI) is called
  in-process through `api` / `api_client`: the real app over httpx's ASGI transport, with a real
  asyncpg pool on the module's database, real storage and a started event hub; no worker, so a
  job it creates stays queued;
* a real process (`server`, `start_server`) only where one matters: jobs run by the worker pool,
  WebSockets end to end, signals and kills, several copies, log files.

Postgres is the embedded one (pgserver) unless DATABASE_URL is set; each module gets its own
database cloned from a migrated template, so tests never see each other's jobs. Async tests and
fixtures all run in the session's event loop (pyproject: pytest-asyncio, auto mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tori_ingest.core.settings import Settings
from tori_ingest.http.app import build_api
from tori_ingest.http.context import Context
from tori_ingest.http.hub import EventHub
from tori_ingest.store import migrate
from tori_ingest.store.backend import open_storage
from tori_ingest.store.db import create_database, create_pool

CORPUS = Path(
    os.environ.get("TORI_TEST_CORPUS")
    or Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pdfjs"
)
TEMPLATE = "tori_test_template"

# --- helpers -----------------------------------------------------------------------------------


def run(coro: Any) -> Any:
    """Run a coroutine from a synchronous test (tests/test_migrate.py)."""
    return asyncio.run(coro)


# --- test tiers (pyproject's markers), read off the fixtures a test uses ----------------------

E2E_FIXTURES = {"server", "start_server", "s3", "browser", "ui_server"}
DB_FIXTURES = {"admin_url"}  # every database fixture builds on it


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & E2E_FIXTURES or _spawns_processes(item):
            item.add_marker(pytest.mark.e2e)
        elif used & DB_FIXTURES:
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)
        if _reads("CORPUS", item):
            item.add_marker(pytest.mark.corpus)


# What a test calls to start processes itself: the CLI, a server, a process pool.
SPAWNS = ("subprocess.", "Server(", "cli(", "Pool(", "warm_pool(", "run_jobs(")


def _spawns_processes(item: pytest.Item) -> bool:
    """Tests that start processes themselves, without an e2e fixture."""
    return any(_reads(call, item) for call in SPAWNS)


def _reads(name: str, item: pytest.Item) -> bool:
    function = getattr(item, "function", None)
    try:
        return name in (inspect.getsource(function) if function is not None else "")
    except (OSError, TypeError):
        return False


async def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 60,  # noqa: ASYNC109 (a poll: on timeout it says what it waited for)
    what: str = "condition",
) -> Any:
    """Poll `predicate` (plain or async) until it returns something truthy; fail after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def fetchval(url: str, query: str, *args: Any) -> Any:
    """One query on its own connection (so a test sees the database as any client would)."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def execute(url: str, query: str, *args: Any) -> str:
    """One statement on its own connection."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.execute(query, *args)
    finally:
        await conn.close()


async def job_count(target: Server | Api) -> int:
    return await fetchval(target.db_url, "SELECT count(*) FROM tori_jobs")


def storage_files(target: Server | Api) -> list[Path]:
    """Every file on the volume (stored PDFs and temp files)."""
    return sorted(p for p in target.storage.rglob("*") if p.is_file())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ws_url(srv: Server, path: str) -> str:
    return srv.base.replace("http://", "ws://") + path


# --- Postgres ----------------------------------------------------------------------------------


async def new_database(admin_url: str, template: str | None = TEMPLATE) -> str:
    """A fresh database: a clone of the migrated template, or (template=None) empty."""
    return await create_database(admin_url, f"tori_test_{uuid.uuid4().hex[:12]}", template)


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
async def template_url(admin_url: str) -> str:
    url = await create_database(admin_url, TEMPLATE)
    await migrate.migrate_url(url)
    return url


@pytest.fixture(scope="module")
async def db_url(admin_url: str, template_url: str) -> str:
    """A fresh, migrated database for one test module."""
    return await new_database(admin_url)


@pytest.fixture
async def fresh_db_url(admin_url: str, template_url: str) -> str:
    """A fresh, migrated database for one test (one that must see only its own jobs)."""
    return await new_database(admin_url)


@pytest.fixture
async def empty_db_url(admin_url: str) -> str:
    """A fresh database with no schema at all (for migration tests)."""
    return await new_database(admin_url, None)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory the embedded Postgres' own user can enter (pytest's tmp tree is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="tori-data-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --- the API in this process -------------------------------------------------------------------


class Api(httpx.AsyncClient):
    """An httpx client on the app of `serve`, built in this process (ASGI, no socket).

    Like `Server` it has `db_url`, `storage` and `upload()`. A 5xx answer fails the request
    that got it (the app turns a crash into a 500 envelope: this is where a test sees it),
    unless `allow_server_errors` is set.
    """

    def __init__(self, ctx: Context, db_url: str) -> None:
        super().__init__(
            transport=httpx.ASGITransport(app=build_api(ctx)),
            base_url="http://test",
            event_hooks={"response": [self._no_server_error]},
        )
        self.ctx = ctx
        self.db_url = db_url
        self.storage = getattr(ctx.storage, "root", ctx.settings.tori_storage_dir)
        self.allow_server_errors = False

    async def _no_server_error(self, response: httpx.Response) -> None:
        if response.status_code >= 500 and not self.allow_server_errors:
            await response.aread()
            request = response.request
            raise AssertionError(
                f"{request.method} {request.url} answered {response.status_code}: "
                f"{response.text[:1000]}"
            )

    async def upload(self, data: bytes, filename: str = "doc.pdf", **fields: str) -> httpx.Response:
        return await self.post(
            "/jobs", files={"file": (filename, data, "application/pdf")}, data=fields
        )


ApiClient = Callable[..., contextlib.AbstractAsyncContextManager[Api]]


@pytest.fixture(scope="module")
def api_client(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> ApiClient:
    """Factory: `async with api_client(TORI_API_TOKENS="t", ...) as api:` an in-process API with
    those settings (env-style names), on the module's database unless `db_url=` says otherwise,
    with its own empty storage."""

    @contextlib.asynccontextmanager
    async def open_api(*, db_url: str = db_url, **env: str) -> AsyncIterator[Api]:
        data_dir = tmp_path_factory.mktemp("api")
        settings = Settings.load(
            {
                "DATABASE_URL": db_url,
                "TORI_DATA_DIR": str(data_dir),
                "TORI_SPACY_MODEL": "blank:en",
                "TORI_AUTO_MIGRATE": "0",
                **env,
            }
        )
        storage = open_storage(settings)
        db = await create_pool(db_url, max_size=10)
        hub = EventHub(db_url)
        hub.start()
        try:
            ctx = Context(settings=settings, db=db, storage=storage, pool=None, hub=hub)
            async with Api(ctx, db_url) as api:
                yield api
        finally:
            await hub.stop()
            await db.close()

    return open_api


@pytest.fixture(scope="module")
async def api(api_client: ApiClient) -> AsyncIterator[Api]:
    """The in-process API with default settings (no auth, no import tree), one per module."""
    async with api_client() as client:
        yield client


# --- real processes ----------------------------------------------------------------------------


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

    async def wait_ready(self, timeout: float = 90) -> Server:  # noqa: ASYNC109
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log_text()}")
            try:
                return self.client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(ready, timeout, "the server to be ready")
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

    def status(self, job_id: str) -> dict[str, Any]:
        return self.client.get(f"/jobs/{job_id}").json()

    async def wait_job(self, job_id: str, timeout: float = 120) -> dict[str, Any]:  # noqa: ASYNC109
        def terminal() -> dict[str, Any] | None:
            body = self.status(job_id)
            return body if body["status"] in ("succeeded", "failed", "cancelled") else None

        return await wait_for(terminal, timeout, f"job {job_id} to end")


@pytest.fixture(scope="module")
async def server(
    admin_url: str, template_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Server]:
    """A real `serve` with its worker pool, on a database of its own (the module's `db_url`
    is the in-process API's, whose jobs must stay queued)."""
    srv = Server(await new_database(admin_url), tmp_path_factory.mktemp("data"))
    try:
        yield await srv.wait_ready()
    finally:
        srv.stop()


StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture(scope="module")
def start_server(
    tmp_path_factory: pytest.TempPathFactory, admin_url: str, template_url: str
) -> Iterator[StartServer]:
    """Factory for extra servers (own settings; `await start_server(...)`); all are stopped at
    module end."""
    started: list[Server] = []

    async def start(
        *args: str, db_url: str | None = None, ready: bool = True, **env: str
    ) -> Server:
        url = db_url or await new_database(admin_url)
        srv = Server(url, tmp_path_factory.mktemp("data"), *args, **env)
        started.append(srv)
        return await srv.wait_ready() if ready else srv

    yield start
    for srv in started:
        srv.stop()


# --- a real S3 server (moto's standalone server, loopback) -------------------------------------


class S3:
    """moto_server on loopback, reached through a TCP relay the tests can cut (`down()`) and
    restore (`up()`): the bucket becomes unreachable while its data survives."""

    def __init__(self, moto_port: int) -> None:
        self.moto = f"http://127.0.0.1:{moto_port}"
        self.relay = Relay(moto_port)
        self.endpoint = f"http://127.0.0.1:{self.relay.port}"

    def env(self, url: str, **extra: str) -> dict[str, str]:
        """Settings of a process whose store is `url` on this server."""
        return {
            "TORI_STORAGE_URL": url,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            **extra,
        }

    def new_bucket(self) -> str:
        name = f"b{uuid.uuid4().hex[:12]}"
        httpx.put(f"{self.moto}/{name}", timeout=10).raise_for_status()
        return name

    def keys(self, bucket: str) -> list[str]:
        """Every object key in the bucket (read from moto directly, not through our code)."""
        body = httpx.get(f"{self.moto}/{bucket}", params={"list-type": "2"}, timeout=10).text
        return re.findall(r"<Key>([^<]+)</Key>", body)

    def open_uploads(self, bucket: str) -> list[str]:
        """Multipart uploads begun and neither completed nor aborted."""
        body = httpx.get(f"{self.moto}/{bucket}?uploads", timeout=10).text
        return re.findall(r"<UploadId>([^<]+)</UploadId>", body)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        httpx.put(f"{self.moto}/{bucket}/{key}", content=data, timeout=30).raise_for_status()

    def size(self, bucket: str, key: str) -> int:
        params = {"list-type": "2", "prefix": key}
        body = httpx.get(f"{self.moto}/{bucket}", params=params, timeout=10).text
        return int(re.findall(r"<Size>(\d+)</Size>", body)[0])

    def etag(self, bucket: str, key: str) -> str:
        return httpx.head(f"{self.moto}/{bucket}/{key}", timeout=10).headers["etag"]


class Relay:
    """A loopback TCP relay in its own thread: `down()` refuses and cuts connections."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self.up()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def up(self) -> None:
        self._call(self._start())

    def down(self) -> None:
        self._call(self._stop())

    async def _start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.target_port)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await self._open_upstream()
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(1 << 16):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """moto's standalone S3 server for the session (skipped with a reason when not installed)."""
    moto = str(Path(sys.executable).with_name("moto_server"))  # this environment's first
    if not Path(moto).exists():
        moto = shutil.which("moto_server") or moto
    if not Path(moto).exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]'; `make test` does)")
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("moto_server did not start") from None
                time.sleep(0.1)
        yield S3(port)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
