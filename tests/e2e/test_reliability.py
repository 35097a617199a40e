"""Reliability with real `serve`/`worker` processes: signals, kills, attempts, dedup, probes."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

from tests.helpers import (
    Server,
    StartServer,
    cli,
    fetchval,
    wait_for,
)
from tests.pdfs import make_pdf, prose_pdf


def hooked(marker: str, pages: int = 1) -> bytes:
    """A valid PDF whose first KiB carries a test-hook marker (honoured with TORI_TEST_HOOKS)."""
    data = prose_pdf(pages)
    head, rest = data.split(b"\n", 1)
    return head + f"\n%tori-test-{marker}\n".encode() + rest


# --- 1, 2: the same with real processes ---------------------------------------------------------


async def test_worker_in_its_shutdown_grace_is_not_robbed(start_server: StartServer) -> None:
    """A job longer than the old 10 s stall threshold, SIGTERM mid-job, a second worker
    watching: the first finishes it within the grace, once, with one attempt."""
    api = await start_server("serve", "--no-worker")
    shared = {"TORI_STORAGE_DIR": str(api.storage), "TORI_TEST_HOOKS": "1"}
    first = await start_server("worker", db_url=api.db_url, ready=False,
                               TORI_SHUTDOWN_GRACE_S="30", **shared)  # fmt: skip
    job_id = api.upload(hooked("slow=14")).json()["job_id"]
    await wait_for(lambda: api.status(job_id)["status"] == "running", 60, "worker A to start")
    count = "SELECT count(*) FROM procrastinate_workers"
    per_copy = await fetchval(api.db_url, count)  # a copy runs several (ingest, webhooks…)
    second = await start_server("worker", db_url=api.db_url, ready=False, **shared)
    await wait_for(
        lambda: fetchval(api.db_url, f"{count} HAVING count(*) >= {2 * per_copy}"),
        60,
        "worker B to register",
    )
    stopped = asyncio.to_thread(first.stop, signal.SIGTERM, 60)
    assert await stopped == 0
    job = await api.wait_job(job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 1, (job["error"], job["attempts"])
    assert await fetchval(api.db_url, "SELECT runs FROM tori_jobs WHERE id = $1::uuid", job_id) == 1
    assert "recovered a stalled job" not in second.log_path.read_text()


async def test_max_attempts_one_means_one(start_server: StartServer) -> None:
    api = await start_server("serve", "--no-worker")
    job_id = api.upload(prose_pdf(1), "gone.pdf").json()["job_id"]
    for path in api.storage.rglob("*.pdf"):
        path.unlink()  # the stored file vanished: a storage error, retried if attempts allow
    await start_server("worker", db_url=api.db_url, ready=False,
                       TORI_STORAGE_DIR=str(api.storage), TORI_MAX_ATTEMPTS="1")  # fmt: skip
    job = await api.wait_job(job_id, timeout=60)
    assert job["status"] == "failed" and job["error"]["code"] == "internal", job
    assert job["attempts"] == 1
    assert "TORI_MAX_ATTEMPTS" in job["error"]["message"] and "Error" not in job["error"]["message"]


async def test_shutdown_past_grace_uses_no_attempt(start_server: StartServer) -> None:
    srv = await start_server(TORI_TEST_HOOKS="1", TORI_SHUTDOWN_GRACE_S="1", TORI_MAX_ATTEMPTS="1")
    job_id = srv.upload(hooked("slow=6")).json()["job_id"]
    await wait_for(lambda: srv.status(job_id)["status"] == "running", 30, "the job to run")
    assert await asyncio.to_thread(srv.stop, signal.SIGTERM) == 0
    row = await fetchval(srv.db_url, "SELECT status || ':' || attempts FROM tori_jobs"
                         " WHERE id = $1::uuid", job_id)  # fmt: skip
    assert row == "queued:0"
    again = await start_server(db_url=srv.db_url, TORI_TEST_HOOKS="1", TORI_MAX_ATTEMPTS="1",
                               TORI_STORAGE_DIR=str(srv.storage))  # fmt: skip
    job = await again.wait_job(job_id)
    assert job["status"] == "succeeded" and job["attempts"] == 1, (job["error"], job["attempts"])


# --- 3: NUL from a broken page ------------------------------------------------------------------


def pdf_with_bad_filter() -> bytes:
    """Two pages; page 2's content stream names a filter with a NUL (`/Bad#00Name`)."""
    data = make_pdf(["The first page reads fine.", "The second page does not."])
    first = data.index(b"/FlateDecode")
    second = data.index(b"/FlateDecode", first + 1)
    return data[:second] + b"/Bad#00Name " + data[second + len(b"/FlateDecode") :]


async def test_nul_in_a_warning_never_sticks_a_job(server: Server) -> None:
    job = await server.wait_job(server.upload(pdf_with_bad_filter()).json()["job_id"])
    assert job["status"] == "succeeded", job
    result = server.client.get(f"/jobs/{job['job_id']}/result").json()
    assert result["pages"][0]["text"].startswith("The first page")
    assert any("page 2" in w for w in result["warnings"]), result["warnings"]
    assert not any("\x00" in w for w in result["warnings"])


# --- 4: dedup never hands out an encrypted document's text ---------------------------------------


async def test_dedup_does_not_bypass_a_password(server: Server) -> None:
    locked = make_pdf([f"Secret {uuid.uuid4().hex}."], user_password="pw")
    opened = await server.wait_job(server.upload(locked, "a.pdf", password="pw").json()["job_id"])
    assert opened["status"] == "succeeded"
    for fields in ({}, {"password": "wrong"}):
        job = await server.wait_job(server.upload(locked, "b.pdf", **fields).json()["job_id"])
        assert job["deduplicated"] is False and job["status"] == "failed", job
        assert job["error"]["code"] in ("encrypted", "bad_password")


async def test_dedup_copy_carries_the_new_file_name(server: Server) -> None:
    data = make_pdf([f"Plain {uuid.uuid4().hex}."])
    await server.wait_job(server.upload(data, "first.pdf").json()["job_id"])
    copy = server.upload(data, "second.pdf").json()
    assert copy["deduplicated"] is True
    result = server.client.get(f"/jobs/{copy['job_id']}/result").json()
    assert result["document"]["filename"] == "second.pdf" and result["job_id"] == copy["job_id"]


# --- 10: leaks -------------------------------------------------------------------------------


def test_worker_probe_port_obeys_the_bind_rule() -> None:
    out = cli("worker", TORI_HOST="0.0.0.0", TORI_METRICS_PORT="9", TORI_SPACY_MODEL="blank:en")
    assert out.returncode == 2 and "refusing to listen on 0.0.0.0" in out.stderr


async def test_by_reference_job_keeps_the_bytes_it_was_accepted_for(
    start_server: StartServer, import_tree: Path
) -> None:
    srv = await start_server("serve", "--no-worker", TORI_IMPORT_DIR=str(import_tree))
    job_id = srv.client.post("/jobs", json={"path": "real/a.pdf"}).json()["job_id"]
    swapped = import_tree / "real" / "a.pdf"
    swapped.unlink()
    swapped.symlink_to(import_tree.parent / "outside.pdf")  # swapped after the submit
    await start_server("worker", db_url=srv.db_url, ready=False, TORI_STORAGE_DIR=str(srv.storage))
    job = await srv.wait_job(job_id)
    assert job["status"] == "succeeded", job
    text = srv.client.get(f"/jobs/{job_id}/result", params={"format": "text"}).text
    assert "Someone else" not in text and "Ada" in text
