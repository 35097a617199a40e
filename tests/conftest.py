"""Fixtures and hooks: one real Postgres for the session, a fresh migrated database per
test module, the API in this process, and real `tori-ingest serve` processes on free ports.
Everything else the tests share (the `Api` and `Server` classes, `wait_for`, constants) is in
tests/helpers.py.

The test pyramid, one directory per tier (pyproject's markers, set here from the directory):

* tests/unit: pure, in-process: no database, no process of its own;
* tests/integration: a real Postgres and the API in this process, through `api` /
  `api_client`: the real app over httpx's ASGI transport, with a real asyncpg pool on the
  module's database, real storage and a started event hub; no worker, so a job it creates
  stays queued;
* tests/e2e: a real process (`server`, `start_server`, `s3`, `browser`) only where one
  matters: jobs run by the worker pool, WebSockets end to end, signals and kills, several
  copies, log files, the CLI, a process pool.

A subject tested at several tiers has a module of the same name in each directory
(tests/unit/test_access.py, tests/integration/test_access.py, ...). Collection fails when a
test sits in a tier below what it uses (see `pytest_collection_modifyitems`); the check reads
fixtures at collection, so one asked for at run time escapes it (the `bucket` cases of
tests/unit/test_storage.py reach `s3` through `backend`). `corpus` marks the tests that read
the real-world corpus.

Postgres is the embedded one (pgserver) unless DATABASE_URL is set; each module gets its own
database cloned from a migrated template, so tests never see each other's jobs. Async tests and
fixtures all run in the session's event loop (pyproject: pytest-asyncio, auto mode).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.helpers import (
    S3,
    TEMPLATE,
    Api,
    ApiClient,
    Backend,
    Receiver,
    Server,
    StartServer,
    free_port,
    new_database,
)
from tests.pdfs import make_pdf, prose_pdf
from tori_ingest.core.settings import Settings
from tori_ingest.http.context import Context
from tori_ingest.http.hub import EventHub
from tori_ingest.store import migrate
from tori_ingest.store.backend import open_storage
from tori_ingest.store.db import create_database, create_pool

if TYPE_CHECKING:
    from playwright.async_api import Browser

# --- test tiers (pyproject's markers): the directory a test lives in -------------------------

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "e2e")
# What a tier may not use, so that no test drifts below its tier: an e2e fixture or a process
# of its own makes a test e2e; a database (every database fixture builds on `admin_url`) makes
# it integration at least.
E2E_FIXTURES = {"server", "start_server", "s3", "browser", "ui_server"}
DB_FIXTURES = {"admin_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    misfiled = []
    for item in items:
        tier = _tier(item)
        if tier is None:
            misfiled.append(f"{item.nodeid}: not in tests/unit, tests/integration or tests/e2e")
            continue
        item.add_marker(getattr(pytest.mark, tier))
        if _reads("CORPUS", item):
            item.add_marker(pytest.mark.corpus)
        needs = _needs(item)
        if TIERS.index(needs) > TIERS.index(tier):
            misfiled.append(f"{item.nodeid}: {_why(item)}, so it belongs in tests/{needs}")
    if misfiled:
        raise pytest.UsageError(
            "tests filed in the wrong tier (move each to the directory named):\n  "
            + "\n  ".join(misfiled)
        )


def _tier(item: pytest.Item) -> str | None:
    try:
        parts = Path(item.path).resolve().relative_to(TESTS).parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 and parts[0] in TIERS else None


def _needs(item: pytest.Item) -> str:
    """The lowest tier a test may live in, read off its fixtures and its source."""
    used = set(getattr(item, "fixturenames", ()))
    if used & E2E_FIXTURES or _spawns_processes(item):
        return "e2e"
    return "integration" if used & DB_FIXTURES else "unit"


def _why(item: pytest.Item) -> str:
    used = set(getattr(item, "fixturenames", ()))
    if used & E2E_FIXTURES:
        return f"it uses {', '.join(sorted(used & E2E_FIXTURES))}"
    if _spawns_processes(item):
        calls = ", ".join(f"`{call}`" for call in SPAWNS if _reads(call, item))
        return f"it starts processes (its source has {calls})"
    return "it uses a database (admin_url)"


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


# --- Postgres ----------------------------------------------------------------------------------


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


# --- the API in this process ---------------------------------------------------------------------


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


# --- real processes ------------------------------------------------------------------------------


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


# --- a real browser (Debian's chromium, driven by Playwright) ------------------------------------

CHROMIUM = (
    os.environ.get("TORI_TEST_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)
# Running as root in a container: no sandbox; nothing that calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """chromium for the module (skipped, with the reason, without it or Playwright, which is
    in the `test` extra and never downloads a browser)."""
    if CHROMIUM is None:
        pytest.skip(
            "no chromium on this machine: `apt-get install chromium` (as .ci/run does) "
            "or set TORI_TEST_CHROMIUM to run the browser tests"
        )
    playwright = pytest.importorskip(
        "playwright.async_api", reason="playwright is not installed (the `test` extra)"
    )
    async with playwright.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


# --- a real S3 server (moto's standalone server, loopback) ---------------------------------------


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


# --- fixtures of one subject tested at several tiers ----------------------------------------------


# files to submit by reference (tests/*/test_api_safety.py)
@pytest.fixture(scope="module")
def import_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("import")
    (root / "sub").mkdir()
    (root / "a.pdf").write_bytes(prose_pdf(2, title="by ref a"))
    (root / "sub" / "b.pdf").write_bytes(prose_pdf(3, title="by ref b"))
    (root / "notes.pdf").write_bytes(b"plain text, not a pdf")
    (root / "empty.pdf").write_bytes(b"")
    outside = tmp_path_factory.mktemp("outside") / "secret.pdf"
    outside.write_bytes(prose_pdf(1))
    (root / "escape.pdf").symlink_to(outside)
    return root


# links and special files to submit by reference (tests/*/test_reliability.py)
@pytest.fixture
def import_tree(tmp_path: Path) -> Path:
    root = tmp_path / "import"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.pdf").write_bytes(prose_pdf(1))
    (tmp_path / "outside.pdf").write_bytes(make_pdf(["Someone else's document."]))
    (root / "link.pdf").symlink_to(tmp_path / "outside.pdf")
    (root / "dirlink").symlink_to(root / "real")
    os.mkfifo(root / "pipe.pdf")
    return root


# each backend of the store, fresh (tests/*/test_storage.py)
@pytest.fixture(params=["directory", "bucket"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "directory":
        root = tmp_path / "files"
        storage = open_storage(Settings.load({"TORI_DATA_DIR": str(tmp_path)}))

        def listing() -> list[str]:
            return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]

        return Backend(storage, listing)
    s3: S3 = request.getfixturevalue("s3")
    bucket = s3.new_bucket()
    env = s3.env(f"s3://{bucket}/docs", TORI_DATA_DIR=str(tmp_path))
    storage = open_storage(Settings.load(env))
    return Backend(storage, lambda: [k.removeprefix("docs/") for k in s3.keys(bucket)], s3, bucket)


# a webhook receiver (tests/*/test_webhooks.py)
@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
