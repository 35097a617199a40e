"""OCR through a real server: scans and images end to end, interactive uploads not kept waiting."""

from __future__ import annotations

import io

from tests.helpers import Server, StartServer, recall, scanned_page, wait_for
from tests.pdfs import prose_pdf
from tori_ingest.bench import scans

# --- end to end ---------------------------------------------------------------------------


async def test_scanned_pdf_and_image_through_the_service(server: Server) -> None:
    image, truth = scanned_page(51, scans.Rough(noise=0.005), dpi=150)
    scanned = scans.image_pdf([image], stamp="Received 03/12/2024 Fax p. 1/1")
    png = io.BytesIO()
    image.save(png, "PNG")
    jobs = {
        "pdf": server.upload(scanned, "scan.pdf").json()["job_id"],
        "png": server.upload(png.getvalue(), "photo.png").json()["job_id"],
        "off": server.upload(png.getvalue(), "photo.png", ocr="off").json()["job_id"],
    }
    done = {name: await server.wait_job(job_id) for name, job_id in jobs.items()}
    assert done["off"]["status"] == "failed" and done["off"]["error"]["code"] == "no_text"
    for name, media in (("pdf", "application/pdf"), ("png", "image/png")):
        assert done[name]["status"] == "succeeded", done[name]["error"]
        result = server.client.get(f"/jobs/{jobs[name]}/result").json()
        assert result["document"]["media_type"] == media
        assert result["stats"]["ocr_pages"] == 1 and result["timings_ms"]["ocr"] > 0
        page = result["pages"][0]
        assert page["source"] == "ocr" and page["ocr_confidence"] > 0.6
        assert recall(truth, page["text"]) >= 0.95
    r = server.upload(b"GIF89a\x01\x00\x01\x00", "anim.gif")
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_type"
    bad = server.upload(scanned, "scan.pdf", ocr="sometimes")
    assert bad.status_code == 400 and "ocr must be one of" in bad.json()["error"]["message"]
    spec = server.client.get("/openapi.json").json()
    assert "415" in spec["paths"]["/jobs"]["post"]["responses"]


def slow_pdf(seconds: int, salt: int) -> bytes:
    """A PDF whose pool work sleeps `seconds` (TORI_TEST_HOOKS): a stand-in for a long scan."""
    head, rest = prose_pdf(1).split(b"\n", 1)
    return head + f"\n%tori-test-slow={seconds}\n%{salt}\n".encode() + rest


async def test_interactive_upload_is_not_kept_waiting_by_long_bulk_jobs(
    start_server: StartServer,
) -> None:
    """Four long bulk jobs fill every main worker slot and every process bulk work may use;
    an upload still gets the reserved slot and process at once (before: it waited for a bulk
    job to end, 125 s behind two 100-page scans)."""
    srv = await start_server(TORI_TEST_HOOKS="1")
    bulk = [
        srv.upload(slow_pdf(8, i), f"bulk{i}.pdf", priority="bulk").json()["job_id"]
        for i in range(4)
    ]

    def two_running() -> bool:  # a third is "running" too, waiting for a bulk process
        return sum(srv.status(j)["status"] == "running" for j in bulk) >= 2

    await wait_for(two_running, 30, "two bulk jobs to run")
    job = await srv.wait_job(srv.upload(prose_pdf(2), "now.pdf").json()["job_id"], timeout=30)
    assert job["status"] == "succeeded"
    # Ordering, not a stopwatch: the upload ended while every 8-s bulk job was still at it.
    assert [srv.status(j)["status"] for j in bulk].count("succeeded") == 0
    for job_id in bulk:
        srv.client.delete(f"/jobs/{job_id}")
