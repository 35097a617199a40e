"""The HTTP API end to end: jobs run by a real `tori-ingest serve` (uvicorn, Postgres, pool)."""

from __future__ import annotations

import httpx

from tests.helpers import Server, fetchval
from tests.pdfs import make_pdf, prose_pdf

# --- a real server: jobs run by the worker pool ------------------------------------------------


async def test_upload_poll_result(server: Server) -> None:
    data = make_pdf(["Hello from page one.", ["Page two", "has two lines."]], title="Greeting")
    r = server.upload(data, "greeting.pdf")
    assert r.status_code == 202
    body = r.json()
    job_id = body["job_id"]
    assert body["status"] == "queued"
    assert body["links"] == {
        "self": f"/jobs/{job_id}",
        "result": f"/jobs/{job_id}/result",
        "file": f"/jobs/{job_id}/file",
        "ws": f"/ws/jobs/{job_id}",
    }

    job = await server.wait_job(job_id)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1
    assert job["pages_total"] == 2 and job["pages_done"] == 2
    assert job["error"] is None and job["deduplicated"] is False
    assert job["document"]["filename"] == "greeting.pdf"
    assert job["document"]["bytes"] == len(data)
    assert job["result"]["pages"] == 2 and job["result"]["title"] == "Greeting"
    assert job["started_at"] >= job["created_at"] and job["finished_at"] >= job["started_at"]

    raw = server.client.get(f"/jobs/{job_id}/result")
    result = raw.json()
    assert result["job_id"] == job_id
    # The summary first (`curl … | head`), the pages last, nothing twice.
    assert list(result)[:3] == ["job_id", "document", "stats"] and list(result)[-1] == "pages"
    assert raw.text[:200].replace(" ", "").startswith(f'{{"job_id":"{job_id}","document":{{')
    assert [p["text"] for p in result["pages"]] == [
        "Hello from page one.",
        "Page two\nhas two lines.",
    ]
    assert result["document"]["sha256"] == job["document"]["sha256"]
    assert result["document"]["pages"] == 2
    assert set(result["timings_ms"]) == {
        "queue_wait",
        "extract",
        "ocr",
        "clean",
        "layout",
        "nlp",
        "total",
        "cpu",
    }
    assert set(result["timings_ms"]["cpu"]) == {
        "extract",
        "ocr",
        "clean",
        "layout",
        "nlp",
        "assemble",
    }
    assert result["pipeline"]["model"] == "blank:en"
    assert result["pipeline"]["tori_ingest_version"]

    text = server.client.get(f"/jobs/{job_id}/result", params={"format": "text"})
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text == "Hello from page one.\fPage two\nhas two lines."

    original = server.client.get(f"/jobs/{job_id}/file")  # a directory store streams the bytes
    assert original.status_code == 200 and original.content == data
    assert original.headers["content-type"] == "application/pdf"
    assert original.headers["content-disposition"] == "attachment; filename*=UTF-8''greeting.pdf"


async def test_several_files_in_one_request(server: Server) -> None:
    r = server.client.post(
        "/jobs",
        files=[
            ("file", ("a.pdf", prose_pdf(1), "application/pdf")),
            ("file", ("b.pdf", prose_pdf(2), "application/pdf")),
        ],
    )
    assert r.status_code == 202
    ids = [j["job_id"] for j in r.json()]
    assert len(set(ids)) == 2
    assert [(await server.wait_job(i))["pages_total"] for i in ids] == [1, 2]


async def test_encrypted_pdf_fails_then_succeeds_with_password(server: Server) -> None:
    data = make_pdf(["Classified text."], user_password="open sesame")
    locked = await server.wait_job(server.upload(data).json()["job_id"])
    assert locked["status"] == "failed"
    assert locked["error"]["code"] == "encrypted"
    wrong = await server.wait_job(server.upload(data, password="nope").json()["job_id"])
    assert wrong["error"]["code"] == "bad_password"
    opened = await server.wait_job(server.upload(data, password="open sesame").json()["job_id"])
    assert opened["status"] == "succeeded"
    result = server.client.get(f"/jobs/{opened['job_id']}/result").json()
    assert result["pages"][0]["text"] == "Classified text."
    assert result["document"]["encrypted"] is True
    # The password is not kept once the job has ended.
    kept = await fetchval(
        server.db_url, "SELECT count(*) FROM tori_jobs WHERE password IS NOT NULL"
    )
    assert kept == 0


async def test_scanned_pdf_fails_no_text(server: Server) -> None:
    job = await server.wait_job(server.upload(make_pdf(["", ""])).json()["job_id"])
    assert job["status"] == "failed" and job["error"]["code"] == "no_text"
    r = server.client.get(f"/jobs/{job['job_id']}/result")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_ready"


def test_readyz_and_healthz(server: Server) -> None:
    assert server.client.get("/healthz").json() == {"status": "ok"}
    ready = server.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["pool"] == 2


def test_no_server_errors_logged(server: Server) -> None:
    # Runs last in this module: none of the requests above may have produced a 5xx (an
    # in-process answer's 5xx fails its own request: see `conftest.Api`).
    assert server.server_errors() == []
    with httpx.Client(base_url=server.base) as client:
        assert client.get("/healthz").status_code == 200
