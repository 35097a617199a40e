"""What a caller may hold, in-process: blank bearers, failed logins, sessions, admission, caps."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from tests.helpers import A, ApiClient, B, execute, fetchval, job_count
from tests.pdfs import prose_pdf
from tori_ingest.store import limits
from tori_ingest.store.db import create_pool
from tori_ingest.worker import maintenance


async def test_a_blank_bearer_never_matches(api_client: ApiClient) -> None:
    async with api_client(TORI_API_TOKENS="app:s1") as api:
        for header in ("Bearer ", "Bearer  ", "Bearer %20", "bearer"):
            r = await api.get("/jobs", headers={"Authorization": header})
            assert r.status_code == 401, header
        assert (await api.post("/ui/login", json={"token": " "})).status_code == 401


# --- 4. a by-reference path that names a directory --------------------------------------------


async def test_a_directory_by_reference_is_a_clear_400_and_leaks_nothing(
    api_client: ApiClient, tmp_path: Path
) -> None:
    (tmp_path / "folder").mkdir()
    async with api_client(TORI_IMPORT_DIR=str(tmp_path)) as api:
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(20):
            r = await api.post("/jobs", json={"path": "folder"})
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == "bad_request"
            assert "not a regular file" in r.json()["error"]["message"]
        assert len(os.listdir("/proc/self/fd")) - before < 5  # not one per request
        assert (await api.get("/readyz")).status_code == 200


# --- 12. rate limits and admission ---------------------------------------------------------------


async def test_failed_authentication_is_counted_per_address(api_client: ApiClient) -> None:
    async with api_client(TORI_API_TOKENS="a:sa", TORI_RATE_LIMIT="3/hour") as api:
        await execute(api.db_url, "DELETE FROM tori_rate_limits")
        codes = [
            (await api.get("/jobs", headers={"Authorization": f"Bearer guess-{i}"})).status_code
            for i in range(5)
        ]
        assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]
        blocked = await api.get("/jobs", headers=A)  # even the right token, from there, now
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1


async def test_old_rate_limit_windows_and_sessions_are_purged(db_url: str) -> None:
    await execute(
        db_url,
        "INSERT INTO tori_rate_limits (bucket, window_start, hits)"
        " VALUES ('token:old', now() - interval '2 days', 5)",
    )
    await execute(
        db_url,
        "INSERT INTO tori_sessions (id, name, token_fp, expires_at)"
        " VALUES ('\\x01', 'a', '\\x02', now() - interval '1 hour')",
    )
    db = await create_pool(db_url, max_size=2)
    try:
        assert await limits.purge(db, maintenance.RATE_WINDOWS_KEPT) >= 1
        assert await maintenance.sessions.purge_expired(db) >= 1
    finally:
        await db.close()
    assert (
        await fetchval(db_url, "SELECT count(*) FROM tori_rate_limits WHERE bucket = 'token:old'")
        == 0
    )
    assert await fetchval(db_url, "SELECT count(*) FROM tori_sessions") == 0
    assert timedelta(days=1) <= maintenance.RATE_WINDOWS_KEPT


async def test_bulk_admission_counts_jobs_not_requests(
    api_client: ApiClient, tmp_path: Path, db_url: str
) -> None:
    for i in range(4):
        (tmp_path / f"{i}.pdf").write_bytes(prose_pdf(1, title=f"doc {i}"))
    await execute(db_url, "DELETE FROM tori_jobs WHERE status = 'queued'")
    async with api_client(TORI_IMPORT_DIR=str(tmp_path), TORI_BULK_BACKLOG_MAX="2") as api:
        before = await job_count(api)
        many = await api.post("/jobs", json={"paths": ["0.pdf", "1.pdf", "2.pdf"]})
        assert many.status_code == 400 and many.json()["error"]["code"] == "bad_request"
        assert await job_count(api) == before
        two = await api.post("/jobs", json={"paths": ["0.pdf", "1.pdf"]})
        assert two.status_code == 202, two.text
        full = await api.post("/jobs", json={"paths": ["3.pdf"]})
        assert full.status_code == 429 and full.json()["error"]["code"] == "rate_limited"
        # "priority": "interactive" is no way around it: that lane has its own cap per token.
        sneaky = await api.post("/jobs", json={"paths": ["3.pdf"], "priority": "interactive"})
        assert sneaky.status_code == 202


async def test_interactive_submissions_are_capped_per_token(
    api_client: ApiClient, db_url: str
) -> None:
    await execute(db_url, "DELETE FROM tori_jobs WHERE status = 'queued'")
    env = {"TORI_API_TOKENS": "a:sa,b:sb", "TORI_INTERACTIVE_BACKLOG_MAX": "2"}
    async with api_client(**env) as api:

        async def upload(headers: dict[str, str], n: int) -> int:
            files = {"file": (f"{n}.pdf", prose_pdf(1, title=f"i {n}"), "application/pdf")}
            return (await api.post("/jobs", files=files, headers=headers)).status_code

        assert [await upload(A, n) for n in range(3)] == [202, 202, 429]
        assert await upload(B, 9) == 202  # another token's backlog is its own


# --- 13. the session cookie behind a TLS proxy ---------------------------------------------------


async def test_the_session_cookie_is_secure_unless_on_loopback(api_client: ApiClient) -> None:
    async with api_client(TORI_API_TOKENS="a:sa") as api:
        proxied = await api.post("/ui/login", json={"token": "sa"})  # Host "test", plain http
        assert "secure" in proxied.headers["set-cookie"].lower()
        local = await api.post(
            "http://127.0.0.1:8000/ui/login", json={"token": "sa"}, headers={"Host": "127.0.0.1"}
        )
        assert local.status_code == 200 and "secure" not in local.headers["set-cookie"].lower()
