"""The operator dashboard (`/ui`) in a real browser: Debian's chromium, driven by Playwright.

What a person sees is asserted: the login form, counts that agree with `GET /jobs` and
`/metrics`, an error code and its message, a progress figure that moves, the chart, a retry
button that works, and a layout that fits 1400x1000 and a phone. Skipped, with the reason,
where chromium or Playwright is missing (`.ci/run` installs chromium with apt; Playwright is in
the `test` extra and never downloads a browser). Screenshots are kept under the test's tmp
directory and copied to `.artifacts/`.
"""

from __future__ import annotations

import re
import shutil
import socket
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tori_ingest.core.vocab import Status

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

from tests.helpers import (
    ADMIN,
    CORRUPT,
    ROOT,
    Server,
    StartServer,
    execute,
    metric_samples,
    wait_for,
)
from tests.helpers import UI_APP as APP
from tests.helpers import UI_TOKENS as TOKENS
from tests.pdfs import hooked, make_pdf, prose_pdf

ARTIFACTS = ROOT / ".artifacts"
LONG_PAGES = 3000  # the running job's stated size


@pytest.fixture(scope="module")
async def ui_server(start_server: StartServer) -> Server:
    """Auth on: `ops` is an admin, `app` an owner."""
    return await start_server(TORI_TEST_HOOKS="1", **TOKENS)


def _submit(srv: Server, data: bytes, headers: dict[str, str], name: str) -> str:
    r = srv.client.post("/jobs", files={"file": (name, data, "application/pdf")}, headers=headers)
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def _job(srv: Server, job_id: str) -> dict[str, Any]:
    return srv.client.get(f"/jobs/{job_id}", headers=ADMIN).json()


async def _ended(srv: Server, job_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        job = _job(srv, job_id)
        return job if Status(job["status"]).terminal else None

    return await wait_for(ended, 120, f"job {job_id} to end")


def _expected_tiles(srv: Server, headers: dict[str, str]) -> dict[str, str]:
    """Jobs per status as GET /jobs lists them for this caller."""
    out = {}
    for status in Status:
        r = srv.client.get("/jobs", params={"status": status, "limit": 200}, headers=headers)
        out[str(status)] = f"{len(r.json()['jobs']):,}"
    return out


async def _tiles(page: Page) -> dict[str, str]:
    pairs = await page.eval_on_selector_all(
        "#tiles .tile[data-status]",
        "ts => ts.map(t => [t.dataset.status, t.querySelector('.value').textContent])",
    )
    return dict(pairs)


async def _login(context: BrowserContext, srv: Server, token: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{srv.base}/ui")
    await page.locator("#login").wait_for(state="visible")  # no session yet: the form, no data
    assert await page.locator("#dash").is_hidden()
    await page.fill("#token", token)
    await page.click("#login button[type=submit]")
    await page.locator("#tiles .tile").first.wait_for()
    return page


async def _fits(page: Page, width: int) -> None:
    """Nothing sticks out sideways: no horizontal scrolling, every panel within the width."""
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    for box in await page.eval_on_selector_all(
        "main > *", "els => els.map(e => e.getBoundingClientRect().right)"
    ):
        assert box <= width + 0.5


async def _screenshot(page: Page, tmp_path: Path, name: str, *, full: bool = False) -> None:
    await page.mouse.move(0, 0)  # no hover highlight in the picture
    path = tmp_path / name
    await page.screenshot(path=str(path), full_page=full)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / name)


async def test_dashboard_in_a_browser(browser: Browser, ui_server: Server, tmp_path: Path) -> None:
    srv = ui_server
    broken = _submit(srv, CORRUPT, APP, "broken.pdf")
    blank = _submit(srv, make_pdf(["", ""]), APP, "scan.pdf")
    good = [_submit(srv, prose_pdf(i + 1, title=f"ok {i}"), APP, f"ok-{i}.pdf") for i in range(3)]
    theirs = _submit(srv, prose_pdf(2, title="not the app's"), ADMIN, "ops.pdf")
    for job_id in (broken, blank, *good, theirs):
        await _ended(srv, job_id)

    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    urls: list[str] = []
    context.on("request", lambda request: urls.append(request.url))
    page = await _login(context, srv, "ops-secret")
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: "Content Security Policy" in m.text and problems.append(m.text))
    assert await page.inner_text("#viewer") == "ops · admin, all jobs"

    # The counts a person reads are GET /jobs's and /metrics' (the admin sees every job).
    expected = _expected_tiles(srv, ADMIN)
    gauge = metric_samples(srv.client.get("/metrics", headers=ADMIN).text)["tori_jobs"]
    for status, shown in expected.items():
        assert shown == f"{int(sum(v for s, v in gauge if s['status'] == status)):,}", status
    await wait_for(lambda: _same(_tiles(page), expected), 30, f"the tiles to show {expected}")
    assert expected["failed"] == "2" and expected["succeeded"] == "4"

    # A failure: its code, its message, a retry button.
    row = page.locator(f'#failures tr[data-job="{broken}"]')
    assert "broken.pdf" in await row.inner_text() and "corrupt_pdf" in await row.inner_text()
    assert "cannot be read" in await row.locator("td.message").inner_text()
    # What a narrow cell cuts off can still be read: the full time, message and name on hover.
    when = await row.locator("td.when").get_attribute("title") or ""
    assert str(datetime.now().year) in when
    assert "cannot be read" in (await row.locator("td.message").get_attribute("title") or "")
    assert broken in (await row.locator("td.file").get_attribute("title") or "")
    assert await page.locator(f'#failures tr[data-job="{blank}"] code').inner_text() == "no_text"

    # The chart: 60 slots of a minute; the jobs it counts are the jobs that ran.
    slots = page.locator("#chart rect.hit")
    assert await slots.count() == 60
    titles = [await slots.nth(i).locator("title").text_content() or "" for i in range(60)]
    ran = sum(
        int(m.group(1).replace(",", ""))
        for t in titles
        if (m := re.search(r"([\d,]+) jobs/min", t))
    )
    assert ran == 6  # two failed, four succeeded, every one within the hour
    assert await page.locator("#chart path.area").count() == 2  # one per lane
    await _screenshot(page, tmp_path, "ui-1400x1000.png")
    await _fits(page, 1400)
    chart = await page.locator("#chart").bounding_box()
    assert chart is not None and chart["y"] + chart["height"] < 1000  # above the fold

    # A running job: its progress figure moves, live, and the row names the copy that runs it.
    # The job hangs in its pool process (a test hook), so it runs as long as the test needs;
    # its progress is written to its row (the trigger → NOTIFY → /ws path the worker's own
    # progress takes), and each figure is waited for before the next is written.
    long_job = _submit(srv, hooked("hang"), APP, "long.pdf")
    row = page.locator(f'#running tr[data-job="{long_job}"]')
    copy = f"{socket.gethostname()}:{srv.proc.pid}"
    await wait_for(lambda: _text_is(row.locator("td").nth(3), copy), 60, f"its copy {copy}")
    for done in (0, 1200, 2400):
        await execute(
            srv.db_url,
            "UPDATE tori_jobs SET pages_done = $2, pages_total = $3 WHERE id = $1::uuid",
            long_job,
            done,
            LONG_PAGES,
        )
        figure = f"{done:,} / {LONG_PAGES:,} pages"
        await wait_for(lambda f=figure: _text_is(row.locator(".figure"), f), 30, figure)
    await _screenshot(page, tmp_path, "ui-1400x1000-running.png")
    assert srv.client.delete(f"/jobs/{long_job}", headers=APP).status_code == 200
    assert (await _ended(srv, long_job))["status"] == "cancelled"
    await row.wait_for(state="detached")

    # Retry: the button re-queues the failed job; it fails again, on its second attempt.
    await page.locator(f'#failures tr[data-job="{blank}"] button.retry').click()
    await wait_for(lambda: _job(srv, blank)["attempts"] == 2, 60, "the retried job to run")
    assert (await _ended(srv, blank))["status"] == "failed"
    attempts = page.locator(f'#failures tr[data-job="{blank}"] td.attempts')
    await wait_for(lambda: _text_is(attempts, "2"), 30, "the row to show the second attempt")

    # The session: an HttpOnly, SameSite=Strict cookie; the token in no URL and no log line.
    cookies = {c["name"]: c for c in await context.cookies()}
    assert cookies["tori_session"]["httpOnly"] and cookies["tori_session"]["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""
    ws_base = srv.base.replace("http://", "ws://")
    assert all(u.startswith((srv.base, ws_base, "data:")) for u in urls), urls  # one origin
    assert not [u for u in urls if "secret" in u]
    log = srv.log_path.read_text()
    assert "ops-secret" not in log and "app-secret" not in log
    assert problems == []
    await context.close()


async def test_an_owner_on_a_phone_sees_its_own_jobs(
    browser: Browser, ui_server: Server, tmp_path: Path
) -> None:
    srv = ui_server
    await _ended(srv, _submit(srv, prose_pdf(1, title="ops again"), ADMIN, "ops-2.pdf"))
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = await _login(context, srv, "app-secret")
    assert await page.inner_text("#viewer") == "app · own jobs"
    expected = _expected_tiles(srv, APP)
    assert expected != _expected_tiles(srv, ADMIN)  # the admin's jobs are not the app's
    await wait_for(lambda: _same(_tiles(page), expected), 30, f"the tiles to show {expected}")
    await page.locator("#chart rect.hit").first.wait_for(state="attached")
    await _fits(page, 390)
    await _screenshot(page, tmp_path, "ui-390x844.png", full=True)
    await page.click("#logout")
    await page.locator("#login").wait_for(state="visible")
    assert all(c["name"] != "tori_session" for c in await context.cookies())
    await context.close()


async def test_with_auth_off_the_page_just_works(browser: Browser, server: Server) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{server.base}/ui")
    await page.locator("#tiles .tile").first.wait_for()
    assert await page.locator("#login").is_hidden() and await page.locator("#logout").is_hidden()
    assert await page.inner_text("#viewer") == "auth off · all jobs"
    await wait_for(lambda: _text_is(page.locator("#live"), "live"), 30, "the live feed")
    await context.close()


async def _same(shown: Any, expected: dict[str, str]) -> bool:
    return await shown == expected


async def _text_is(locator: Any, text: str) -> bool:
    return await locator.count() > 0 and (await locator.first.text_content() or "").startswith(text)
