"""What the tests share that is not a fixture: the in-process API client, real `serve`
processes, the S3 server and its relay, polling, one-off queries, and the constants and
builders that tests of several tiers (or several modules) use.

Fixtures and hooks live in tests/conftest.py (they build on these); PDFs are made by
tests/pdfs.py. Test modules import from here, tests.pdfs and conftest fixtures only, never
from each other. A constant whose name another module also uses carries its subject as a
prefix here (`ACCESS_TOKENS`, `UI_TOKENS`, ...) and is imported under its short name.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.pdfs import make_pdf, prose_pdf
from tori_ingest.bench import scans
from tori_ingest.core.settings import Settings
from tori_ingest.http.app import build_api
from tori_ingest.http.context import Context
from tori_ingest.store import migrate
from tori_ingest.store.backend import Storage
from tori_ingest.store.db import create_database
from tori_ingest.worker.pool import Pool

CORPUS = Path(
    os.environ.get("TORI_TEST_CORPUS")
    or Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pdfjs"
)
TEMPLATE = "tori_test_template"

# --- helpers -----------------------------------------------------------------------------------


def run(coro: Any) -> Any:
    """Run a coroutine from a synchronous test (tests/integration/test_migrate.py)."""
    return asyncio.run(coro)


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


StartServer = Callable[..., Awaitable[Server]]


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

    def delete(self, bucket: str, key: str) -> None:
        """Remove an object (a signed request: moto refuses an anonymous DELETE)."""
        import boto3  # moto's own dependency: only the bucket tests need it

        client = boto3.client(
            "s3",
            endpoint_url=self.moto,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        client.delete_object(Bucket=bucket, Key=key)

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


# --- tokens, keys and settings of the access tests (tests/*/test_access.py) -----------------------


ACCESS_TOKENS = "app:app-secret-1,ops:ops-secret-2,root:root-secret-3"
ACCESS_APP = {"Authorization": "Bearer app-secret-1"}
ACCESS_OPS = {"Authorization": "Bearer ops-secret-2"}
ACCESS_ROOT = {"Authorization": "Bearer root-secret-3"}
ACCESS_KEY = "a-ticket-signing-key"


def unique_text_pdf() -> bytes:
    return make_pdf([f"Unique text {uuid.uuid4().hex}."])


def access_settings(**env: str) -> Settings:
    return Settings.load({"TORI_API_TOKENS": ACCESS_TOKENS, "TORI_SECRET_KEY": ACCESS_KEY, **env})


# --- two tenants' headers (test_access_limits, test_tenant_isolation) -----------------------------


A, B = {"Authorization": "Bearer sa"}, {"Authorization": "Bearer sb"}


# --- the API safety tests' settings (tests/*/test_api_safety.py) ----------------------------------


SAFETY_TOKENS = {"TORI_API_TOKENS": "tok-one, tok-two", "TORI_CORS_ORIGINS": "https://app.example"}


# --- the CLI in a child process (test_cli, test_newcomer, test_reliability, test_settings) --------


def cli(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TORI_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "-m", "tori_ingest", *args],
        env={**full_env, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- images (tests/*/test_images.py) --------------------------------------------------------------


def png_header_only(width: int, height: int, color_type: int = 6) -> bytes:
    """A PNG that claims width x height (RGBA by default) around one tiny IDAT: what a
    decompression bomb looks like to a reader that trusts the header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


# --- migrations (tests/*/test_migrate.py) ---------------------------------------------------------


def shipped_migrations() -> list[str]:
    return [p.name for p in migrate.procrastinate_migration_files()]


# --- the repository -------------------------------------------------------------------------------


ROOT = Path(__file__).resolve().parents[1]


# --- OCR (tests/*/test_ocr.py) --------------------------------------------------------------------


def recall(truth: str, found: str) -> float:
    hit, total = scans.word_recall(truth, found)
    return hit / total


def scanned_page(seed: int, rough: scans.Rough, dpi: int = 200) -> tuple[Image.Image, str]:
    source = prose_pdf(1)
    if seed:
        from tori_ingest.bench.data import prose_pdf as bench_prose

        source = bench_prose(1, seed, words_per_page=200)
    truth = scans.page_texts(source)[0]
    return scans.roughen(scans.render(source, dpi)[0], rough, seed), truth


# --- the process pool, without a server (test_pool, test_images) ----------------------------------


def pool_settings(**env: str) -> Settings:
    return Settings.load({"TORI_POOL_SIZE": "2", **env})


@asynccontextmanager
async def warm_pool(model: str = "blank:en", **env: str) -> AsyncIterator[Pool]:
    pool = Pool(pool_settings(**env), model)
    pool.start()
    try:
        await asyncio.wait_for(pool.wait_warm(), 60)
        yield pool
    finally:
        await asyncio.to_thread(pool.stop)


async def run_jobs(files: list[Path], model: str = "blank:en", **env: str) -> list[Any]:
    """Each file's outcome (a `Processed`, or the exception), then the progress reports."""
    progress: list[tuple[str, int, int]] = []
    async with warm_pool(model, **env) as pool:
        pool.on_progress = lambda job, done, total: progress.append((job, done, total))
        results = await asyncio.gather(
            *(pool.run(f"job-{i}", str(f), None) for i, f in enumerate(files)),
            return_exceptions=True,
        )
    return [*results, progress]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- the store's contract (tests/*/test_storage.py) -----------------------------------------------


STORE_PDF = b"%PDF-1.4\n" + b"x" * 100


class Backend:
    """A fresh store plus a way to list what it holds, for one test."""

    def __init__(
        self, storage: Storage, listing: object, s3: S3 | None = None, bucket: str = ""
    ) -> None:
        self.storage = storage
        self._listing = listing
        self.s3, self.bucket = s3, bucket

    def keys(self) -> list[str]:
        """What the store holds: files or objects, and small uploads a bucket store keeps in
        memory until their jobs are in (instead of a temp object)."""
        held = list(getattr(self.storage, "held", {}))
        return sorted([*self._listing(), *held])  # type: ignore[misc]


async def stream(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def put(storage: Storage, data: bytes) -> str:
    writer = storage.writer()
    async for chunk in stream(data):
        await writer.write(chunk)
    await writer.close()
    return writer.temp


# --- tenant isolation (tests/*/test_tenant_isolation.py) ------------------------------------------


TENANT_TOKENS = "a:sa,b:sb"


def tenant_pdf() -> bytes:
    return make_pdf([f"Tenant text {uuid.uuid4().hex} for Ada Lovelace in London."])


# --- the dashboard (tests/*/test_ui.py, tests/e2e/test_ui_browser.py) -----------------------------

MONITORING = ROOT / "config" / "monitoring"
UI_TOKENS = {"TORI_API_TOKENS": "ops:ops-secret, app:app-secret", "TORI_ADMIN_TOKENS": "ops"}
ADMIN = {"Authorization": "Bearer ops-secret"}
UI_APP = {"Authorization": "Bearer app-secret"}
CORRUPT = b"%PDF-1.4\n" + bytes(range(256)) * 8  # a PDF header, then nothing readable


def metric_samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of a /metrics answer: name → [(labels, value)]."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


# --- webhooks (tests/*/test_webhooks.py) ----------------------------------------------------------


WEBHOOK_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
LOOPBACK_OK = {"TORI_WEBHOOK_SECRET": WEBHOOK_SECRET, "TORI_WEBHOOK_ALLOW_PRIVATE": "1"}


# --- a receiver ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    at: float  # time.time() when the request arrived
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


class Receiver:
    """An HTTP receiver on 127.0.0.1 in a thread: records every request; answers 500 while
    `down`, nothing at all while `hang` (until `release`), else 200."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.down = False
        self.hang = False
        self.release = threading.Event()
        self.answer: tuple[int, dict[str, str], bytes] | None = None  # instead of 200/500
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                hang = receiver.hang
                status = 0 if hang else 500 if receiver.down else 200
                with receiver.lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.hits.append(Hit(at, self.path, headers, body, status))
                if hang:
                    receiver.release.wait(60)
                    return  # the sender is gone by now
                plain = (status, {}, b"no" if status == 500 else b"ok")
                code, extra, content = receiver.answer or plain
                self.send_response(code)
                for name, value in {**extra, "content-length": str(len(content))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def of(self, job_id: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if orjson.loads(h.body)["data"]["job_id"] == job_id]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


async def delivery_rows(db_url: str, job_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url)
    try:
        return await conn.fetch(
            "SELECT * FROM tori_webhook_deliveries WHERE job_id = $1::uuid ORDER BY created_at",
            job_id,
        )
    finally:
        await conn.close()
