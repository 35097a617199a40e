"""The HTTP API's surface in-process (`api`: the real app, Postgres and storage, no worker)."""

from __future__ import annotations

import pytest

from tests.helpers import Api, ApiClient, job_count, storage_files
from tests.pdfs import make_pdf, prose_pdf

# --- in-process: the API surface ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "status", "code"),
    [
        (b"GIF89a not a pdf at all", "looks.pdf", 415, "unsupported_type"),
        (b"<html>" + b"x" * 5000, "page.pdf", 415, "unsupported_type"),
        (b"", "empty.pdf", 400, "empty_file"),
        (prose_pdf(1), "../../etc/passwd", 400, "bad_request"),
    ],
)
async def test_bad_uploads_leave_nothing_behind(
    api: Api, data: bytes, filename: str, status: int, code: str
) -> None:
    files_before, jobs_before = storage_files(api), await job_count(api)
    r = await api.post("/jobs", files={"file": (filename, data, "application/pdf")})
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]
    assert storage_files(api) == files_before
    assert await job_count(api) == jobs_before


async def test_one_bad_file_rejects_the_whole_request(api: Api) -> None:
    files_before, jobs_before = storage_files(api), await job_count(api)
    r = await api.post(
        "/jobs",
        files=[
            ("file", ("ok.pdf", prose_pdf(3), "application/pdf")),
            ("file", ("bad.pdf", b"nope", "application/pdf")),
        ],
    )
    assert r.status_code == 415
    assert storage_files(api) == files_before
    assert await job_count(api) == jobs_before


async def test_too_large_is_413_while_streaming(api_client: ApiClient, fresh_db_url: str) -> None:
    async with api_client(db_url=fresh_db_url, TORI_MAX_UPLOAD_MB="1") as small:
        big = prose_pdf(1) + b"%" + b"x" * (2 * 1024 * 1024)
        r = await small.post("/jobs", files={"file": ("big.pdf", big, "application/pdf")})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "too_large"
        assert storage_files(small) == []
        assert await job_count(small) == 0


async def test_too_many_files_in_one_request_is_413(api: Api) -> None:
    files_before, jobs_before = storage_files(api), await job_count(api)
    many = [("file", (f"{i}.pdf", b"%PDF-1.4 tiny", "application/pdf")) for i in range(101)]
    r = await api.post("/jobs", files=many)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert storage_files(api) == files_before
    assert await job_count(api) == jobs_before


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        (
            {"data": {"priority": "interactive"}, "files": {"other": ("a.pdf", b"%PDF-1.4")}},
            "missing file field",
        ),
        (
            {
                "content": b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\n%PDF-1.',
                "headers": {"content-type": "multipart/form-data; boundary=xyz"},
            },
            "truncated",
        ),
        (
            {"content": b"garbage", "headers": {"content-type": "multipart/form-data"}},
            "no boundary",
        ),
        ({"content": b"%PDF-1.4", "headers": {"content-type": "application/pdf"}}, "not multipart"),
        (
            {"files": {"file": ("a.pdf", b"%PDF-1.4 x")}, "data": {"priority": "urgent"}},
            "bad priority",
        ),
    ],
)
async def test_malformed_requests_are_400(api: Api, kwargs: dict, what: str) -> None:
    files_before, jobs_before = storage_files(api), await job_count(api)
    r = await api.post("/jobs", **kwargs)
    assert r.status_code == 400, what
    assert r.json()["error"]["code"] == "bad_request"
    assert storage_files(api) == files_before
    assert await job_count(api) == jobs_before


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/00000000-0000-4000-8000-000000000000",
        "/jobs/not-a-uuid",
        "/jobs/not-a-uuid/result",
        "/nowhere",
    ],
)
async def test_unknown_is_404_envelope(api: Api, path: str) -> None:
    r = await api.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_wrong_method_is_405_envelope(api: Api) -> None:
    r = await api.put("/jobs")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


async def test_request_id_is_honoured_or_generated(api: Api) -> None:
    honoured = await api.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert honoured.headers["x-request-id"] == "abc-123"
    generated = (await api.get("/healthz")).headers["x-request-id"]
    assert len(generated) == 32


async def test_result_is_409_until_succeeded(api: Api) -> None:
    # No worker in this process: the job stays queued.
    job_id = (await api.upload(prose_pdf(1))).json()["job_id"]
    r = await api.get(f"/jobs/{job_id}/result")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_ready"
    assert (await api.get(f"/jobs/{job_id}")).json()["status"] == "queued"
    # The API-only copy is ready without a pool.
    assert (await api.get("/readyz")).json()["pool"] is None


async def test_list_newest_first_with_keyset_pagination(
    api_client: ApiClient, fresh_db_url: str
) -> None:
    async with api_client(db_url=fresh_db_url) as api:  # sees only the jobs made here
        ids = [(await api.upload(make_pdf([f"doc {w}"]))).json()["job_id"] for w in "abcde"]
        seen: list[str] = []
        after = None
        while True:
            params = {"limit": 2, **({"after": after} if after else {})}
            page = (await api.get("/jobs", params=params)).json()
            seen += [j["job_id"] for j in page["jobs"]]
            after = page["next"]
            if after is None:
                break
        assert seen == ids[::-1]
        succeeded = await api.get("/jobs", params={"status": "succeeded"})
        assert succeeded.json()["jobs"] == []
        queued = await api.get("/jobs", params={"status": "queued"})
        assert len(queued.json()["jobs"]) == 5
        for bad in ({"limit": 0}, {"limit": 10_000}, {"status": "nope"}, {"after": "x"}):
            assert (await api.get("/jobs", params=bad)).status_code == 400
