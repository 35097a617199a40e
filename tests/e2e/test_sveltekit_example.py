"""The SvelteKit example (examples/sveltekit) as a person uses it: Debian's chromium uploads a
PDF to the example's own server, which submits it with the app's token; the page then follows
the job over the service's WebSocket with the job's ticket alone (cross-origin, so CORS is
real) and shows the text, the Markdown and the outline of the result.

What matters beyond "it works": the token never reaches the browser (no page, script, response
or request carries it), and the browser talks to the service with the ticket only. Skipped, with
the reason, without Node, chromium or Playwright, or when the example is not built (`make test`
builds it: npm ci and npm run build in examples/sveltekit, after clients/js). The screenshot is
kept under the test's tmp directory and copied to `.artifacts/`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.helpers import ROOT, StartServer, free_port, wait_for
from tests.pdfs import PROSE, Doc

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, FilePayload, Page, Request, Response

EXAMPLE = ROOT / "examples" / "sveltekit"
ARTIFACTS = ROOT / ".artifacts"
TOKEN = "app-secret-0123456789"
TITLE, SECTION = "Example Report", "1 Findings"


@pytest.fixture(scope="module")
def node() -> str:
    """Node, and the example built by `make test` (skipped first: before any browser or server)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the SvelteKit example is not tested")
    if not (EXAMPLE / "build" / "index.js").exists():
        pytest.skip(
            "examples/sveltekit is not built (`make test` builds it when npm is installed: "
            "npm ci && npm run build there, after clients/js)"
        )
    return node


def report(marker: str) -> bytes:
    """A title, a section heading and prose with a marker no other upload has (no dedup)."""
    doc = Doc()
    doc.text(TITLE, size=22, bold=True)
    doc.text(SECTION, size=16, bold=True)
    doc.paragraph(f"{PROSE[0]} Marker {marker}.")
    return doc.output()


async def test_the_sveltekit_example_in_a_browser(
    node: str, browser: Browser, start_server: StartServer, tmp_path: Path
) -> None:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    srv = await start_server(
        TORI_API_TOKENS=f"app:{TOKEN}",
        TORI_SECRET_KEY="sveltekit-example-ticket-key",
        TORI_CORS_ORIGINS=origin,
        TORI_POOL_SIZE="1",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TORI_", "PUBLIC_"))}
    env |= {
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "ORIGIN": origin,
        "TORI_URL": srv.base,
        "TORI_TOKEN": TOKEN,
        "PUBLIC_TORI_URL": srv.base,
    }
    log_path = tmp_path / "example.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            node, "build", cwd=EXAMPLE, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        html = await wait_for(lambda: _answers(proc, origin, log_path), 30, "the example")
        assert TOKEN not in html
        await _upload_and_follow(browser, srv.base, origin, tmp_path)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    assert TOKEN not in log_path.read_text(errors="replace")


def _answers(proc: asyncio.subprocess.Process, origin: str, log_path: Path) -> str | None:
    """The example's page once `node build` serves it; its log if it exits instead."""
    if proc.returncode is not None:
        raise AssertionError(f"`node build` exited early:\n{log_path.read_text()[-3000:]}")
    try:
        r = httpx.get(origin, timeout=5)
    except httpx.TransportError:
        return None
    return r.text if r.status_code == 200 else None


async def _upload_and_follow(browser: Browser, service: str, origin: str, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    context = await browser.new_context(viewport={"width": 1000, "height": 1000})
    requests: list[Request] = []
    sockets: list[str] = []
    problems: list[str] = []

    def refused(response: Response) -> None:
        if response.status >= 400:
            problems.append(f"{response.status} {response.url}")

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":  # a CORS refusal shows here
            problems.append(message.text)

    context.on("request", lambda request: requests.append(request))  # not a bound method
    page = await context.new_page()
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", refused)
    page.on("console", console)
    await page.goto(origin)
    upload: FilePayload = {"name": "r.pdf", "mimeType": "application/pdf", "buffer": report(marker)}
    await page.get_by_test_id("file").set_input_files(files=[upload])
    await page.get_by_test_id("upload").click()
    await wait_for(lambda: _succeeded(page), 60, "the page to show the job succeeded")
    job_id = await page.get_by_test_id("job").inner_text()

    text = page.get_by_test_id("text")
    await text.wait_for()
    assert marker in await text.inner_text()
    assert await page.get_by_test_id("progress").inner_text() == "1 / 1 pages"
    markdown = await page.get_by_test_id("markdown").inner_text()
    assert f"# {TITLE}" in markdown and marker in markdown
    outline = await page.get_by_test_id("outline").inner_text()
    assert TITLE in outline and SECTION in outline
    await _screenshot(page, tmp_path, "sveltekit-example.png")

    # The browser read the job with its ticket only: on the socket, and for the result.
    assert [u for u in sockets if f"/ws/jobs/{job_id}?ticket=" in u], sockets
    to_service = [r for r in requests if r.url.startswith(service)]
    assert any(f"/jobs/{job_id}/result" in r.url and "ticket=" in r.url for r in to_service)
    # The token: in no page, script or answer the browser got, and in no request it made.
    assert TOKEN not in await page.content()
    for request in requests:
        headers = await request.all_headers()
        assert TOKEN not in request.url and TOKEN not in str(headers), request.url
        if request.url.startswith(service):
            assert "authorization" not in headers, request.url
        response = await request.response()
        if response is not None and not 300 <= response.status < 400:
            assert TOKEN.encode() not in await response.body(), request.url
    assert problems == []
    await context.close()


async def _succeeded(page: Page) -> bool:
    """The status reads `succeeded`; an error on the page, or another end, fails at once."""
    if await page.get_by_test_id("error").count():
        raise AssertionError(await page.get_by_test_id("error").first.inner_text())
    status = page.get_by_test_id("status")
    shown = await status.inner_text() if await status.count() else ""
    if shown in ("failed", "cancelled"):
        raise AssertionError(f"the job {shown}: {await page.inner_text('main')}")
    return shown == "succeeded"


async def _screenshot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    await page.screenshot(path=str(path), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / name)
