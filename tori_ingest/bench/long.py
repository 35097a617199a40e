"""`bench --long`: one long document alone on an idle service, split into parts or not.

Time from upload to `succeeded` for a 48-page scan (generated prose rendered at 150 dpi), a
320-page born-digital book (generated) and the longest PDF of `--corpus`, each with
TORI_SPLIT_PAGES=0 and with splitting on, on one copy (`serve`, the pool size given) and on
two `worker` copies of TORI_POOL_SIZE=1 behind a `serve --no-worker`. The per-part overhead
is the CPU the split run spent beyond the unsplit one (both from the result's
`timings_ms.cpu`), divided by its parts. With splitting on, it also times one-page uploads
(interactive lane, one at a time) while the scan, submitted in the bulk lane, has its parts
running on every process bulk work may use: the lanes' promise under a split job.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from pypdf import PdfReader

from tori_ingest.bench import scans
from tori_ingest.bench.data import prose_pdf
from tori_ingest.bench.pipelines import usable
from tori_ingest.bench.run import scratch_database
from tori_ingest.bench.service import Service
from tori_ingest.core.settings import Settings
from tori_ingest.core.vocab import TERMINAL, Lane, Status
from tori_ingest.pipeline import extract, split
from tori_ingest.store.db import database_url

SCAN_PAGES, SCAN_DPI, BOOK_PAGES = 48, 150, 320
UPLOADS_UNDER_SPLIT = 5


def documents(corpus: Path | None, work: Path) -> dict[str, Path]:
    docs = {"scan 48 p (150 dpi)": work / "scan.pdf", "book 320 p": work / "book.pdf"}
    docs["scan 48 p (150 dpi)"].write_bytes(
        scans.image_pdf(scans.render(prose_pdf(SCAN_PAGES, 5, words_per_page=250), SCAN_DPI))
    )
    docs["book 320 p"].write_bytes(prose_pdf(BOOK_PAGES, 9))
    if corpus is not None:
        pages = {p: len(PdfReader(p).pages) for p in usable(sorted(corpus.glob("*.pdf")))}
        longest = max(pages, key=lambda p: pages[p])
        docs[f"{longest.name} ({pages[longest]} p, real)"] = longest
    return docs


@contextmanager
def copies(
    url: str, work: Path, model: str, pool: int, two: bool, env: dict[str, str]
) -> Iterator[str]:
    """One `serve` with its pool, or a `serve --no-worker` and two one-process `worker`s; yields
    the API's base URL once every copy is ready."""
    started: list[Service] = []
    try:
        if not two:
            started.append(Service(url, work / "one", model, pool, env))
        else:
            started.append(Service(url, work / "api", model, 1, env, args=("--no-worker",)))
            for name in ("a", "b"):
                started.append(Service(url, work / name, model, 1, env, command="worker"))
        for service in started:
            service.wait_ready()
        yield started[0].base
    finally:
        for service in started:
            service.stop()


def one_alone(base: str, path: Path) -> dict[str, Any]:
    """Upload → succeeded, seconds; the result's CPU ms and its pages' character counts."""
    with httpx.Client(base_url=base, timeout=600) as client:
        began = time.perf_counter()
        job = client.post(
            "/jobs", params={"reprocess": "true"}, files={"file": (path.name, path.read_bytes())}
        ).json()
        while (state := client.get(f"/jobs/{job['job_id']}").json())["status"] not in TERMINAL:
            time.sleep(0.05)
        seconds = time.perf_counter() - began
        result = client.get(f"/jobs/{job['job_id']}/result").json()
    return {
        "status": state["status"],
        "seconds": round(seconds, 2),
        "cpu_ms": sum(result["timings_ms"]["cpu"].values()) if "timings_ms" in result else 0.0,
        "chars": [page["chars"] for page in result.get("pages", [])],
    }


def interactive_under_split(base: str, scan: Path, page: bytes) -> dict[str, Any]:
    """Upload → succeeded of one-page PDFs while a split bulk scan's parts run; the scan is
    cancelled afterwards (its time is measured above)."""
    with httpx.Client(base_url=base, timeout=600) as client:
        bulk = client.post(
            "/jobs",
            params={"reprocess": "true"},
            data={"priority": Lane.BULK},
            files={"file": (scan.name, scan.read_bytes())},
        ).json()["job_id"]
        deadline = time.monotonic() + 120
        while not _parts_running(client.get(f"/jobs/{bulk}").json()):
            if time.monotonic() > deadline:
                raise RuntimeError("the bulk scan's parts never started")
            time.sleep(0.05)
        seconds = []
        for _ in range(UPLOADS_UNDER_SPLIT):
            began = time.perf_counter()
            files = {"file": ("page.pdf", page)}
            job = client.post("/jobs", params={"reprocess": "true"}, files=files).json()
            while client.get(f"/jobs/{job['job_id']}").json()["status"] not in TERMINAL:
                time.sleep(0.02)
            seconds.append(time.perf_counter() - began)
        still_split = _parts_running(client.get(f"/jobs/{bulk}").json())
        client.delete(f"/jobs/{bulk}")
    return {
        "median_s": round(statistics.median(seconds), 2),
        "max_s": round(max(seconds), 2),
        "uploads": len(seconds),
        "bulk_parts_still_running": still_split,
    }


def _parts_running(job: dict[str, Any]) -> bool:
    return any(part["status"] == Status.RUNNING for part in job.get("parts") or [])


def run(corpus: Path | None, model: str, pool: int, log: Callable[[str], None]) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="tori-bench-long-"))
    work.chmod(0o755)
    docs = documents(corpus, work)
    split_pages = Settings.load().tori_split_pages or 16
    admin_url, embedded = database_url(Settings.load({"TORI_DATA_DIR": str(work / "data")}))
    figures: dict[str, Any] = {"split_pages": split_pages, "documents": {}}
    try:
        with scratch_database(admin_url, "tori_bench_long") as url:
            _measure(url, work, docs, model, pool, split_pages, figures, log)
    finally:
        if embedded is not None:
            embedded.stop()
    return _summary(figures)


def _measure(
    url: str,
    work: Path,
    docs: dict[str, Path],
    model: str,
    pool: int,
    split_pages: int,
    figures: dict[str, Any],
    log: Callable[[str], None],
) -> None:
    files = str(work / "files")  # one store for the API and the workers
    for name, path in docs.items():  # how the split cuts each one (`_summary` counts its parts)
        figures["documents"][name] = {"to_ocr": extract.survey(path.read_bytes()).fontless}
    for two in (False, True):
        layout = "two workers of 1" if two else f"one copy, pool {pool}"
        for setting in (0, split_pages):
            env = {
                "TORI_SPLIT_PAGES": str(setting),
                "TORI_JOB_TIMEOUT_S": "3600",
                "TORI_STORAGE_DIR": files,
            }
            with copies(url, work / f"{int(two)}-{setting}", model, pool, two, env) as base:
                for name, path in docs.items():
                    seen = one_alone(base, path)
                    log(f"{layout}, split {setting}: {name}: {seen['seconds']} s")
                    entry = figures["documents"][name].setdefault(layout, {})
                    entry["split" if setting else "whole"] = seen
                if setting:
                    scan = docs["scan 48 p (150 dpi)"]
                    under = interactive_under_split(base, scan, prose_pdf(1, 11))
                    log(f"{layout}: one-page uploads under a split bulk scan: {under}")
                    figures.setdefault("uploads_under_split", {})[layout] = under


def _summary(figures: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"split_pages": figures["split_pages"]}
    for layout, under in figures.get("uploads_under_split", {}).items():
        out[f"one-page upload under a split bulk scan | {layout}"] = under
    for name, layouts in figures["documents"].items():
        to_ocr = layouts.pop("to_ocr")
        for layout, seen in layouts.items():
            whole, parted = seen["whole"], seen["split"]
            pages = len(parted["chars"])
            reads = split.read_ranges(pages, figures["split_pages"], to_ocr)
            parts = len(reads) + len(split.nlp_ranges(parted["chars"])) if reads else 0
            extra = parted["cpu_ms"] - whole["cpu_ms"]
            out[f"{name} | {layout}"] = {
                "whole_s": whole["seconds"],
                "split_s": parted["seconds"],
                "ratio": round(parted["seconds"] / whole["seconds"], 2),
                "parts": parts,
                "overhead_cpu_ms_per_part": round(extra / parts, 1) if parts else None,
            }
    return out
