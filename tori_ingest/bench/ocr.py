"""`tori-ingest bench --ocr`: OCR quality and cost.

1. Generated scans (`bench.scans`: prose rendered at 200 dpi, clean / noisy and skewed /
   blurred JPEG / with a stamped text header): word recall against the known text, seconds
   per OCR'd page.
2. A real-world corpus (`--corpus`, e.g. PDF.js's test PDFs): every PDF through the pipeline
   with OCR off and with `auto`; how many that failed `no_text` now yield text.

Documents run in pebble pool processes set up like the service's (`pipeline.init_process`),
so a PDF that crashes PDFium costs one process, not the benchmark.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from pebble import ProcessExpired, ProcessPool

from tori_ingest.bench import scans
from tori_ingest.core.errors import JobError
from tori_ingest.core.vocab import ErrorCode, OcrMode
from tori_ingest.pipeline import process as pipeline

TIMEOUT_S = 300
RECALL_TARGET = 0.95


def _outcome(path: str, mode: str) -> dict[str, Any]:
    try:
        out = pipeline.process("bench", path, None, 5000, mode)
    except JobError as exc:
        return {"error": str(exc.code)}
    return {
        "pages": [p.text for p in out.pages],
        "ocr_pages": out.stats.ocr_pages,
        "ocr_ms": out.timings_ms.get("ocr", 0.0),
    }


def _run_all(paths: list[Path], modes: list[str], model: str, workers: int) -> list[Any]:
    """Each (path, mode)'s outcome, in order; a crash or hang is an outcome too."""
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPool(
        workers, initializer=pipeline.init_process, initargs=(model, 0, None, False), context=ctx
    ) as pool:
        futures = [
            pool.schedule(_outcome, args=(str(p), m), timeout=TIMEOUT_S)
            for p in paths
            for m in modes
        ]
        results = []
        for future in futures:
            try:
                results.append(future.result())
            except FutureTimeout:
                results.append({"error": str(ErrorCode.TIMEOUT)})
            except ProcessExpired:
                results.append({"error": str(ErrorCode.WORKER_CRASHED)})
            except Exception as exc:  # the benchmark reports, it does not stop
                results.append({"error": f"{type(exc).__name__}: {exc}"})
        return results


def generated(model: str, workers: int, log: Callable[[str], None]) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="tori-ocr-"))
    sets = scans.scan_set()
    for scan in sets:
        (folder / scan.name).write_bytes(scan.data)
    log(f"ocr: {len(sets)} generated scans, {sum(len(s.truth) for s in sets)} pages")
    outputs = _run_all([folder / s.name for s in sets], [str(OcrMode.AUTO)], model, workers)
    per_doc: dict[str, float | None] = {}
    found = total = ocr_pages = 0
    ocr_ms = 0.0
    for scan, out in zip(sets, outputs, strict=True):
        got = "\n".join(out.get("pages", []))
        f, t = scans.word_recall("\n".join(scan.truth), got)
        found, total = found + f, total + t
        per_doc[scan.name] = round(f / t, 4) if t else None
        ocr_pages += out.get("ocr_pages", 0)
        ocr_ms += out.get("ocr_ms", 0.0)
    recall = round(found / total, 4) if total else None
    return {
        "scan_word_recall": recall,
        "scan_word_recall_by_document": per_doc,
        "scan_seconds_per_page": round(ocr_ms / 1000 / ocr_pages, 2) if ocr_pages else None,
        "scan_target_met": recall is not None and recall >= RECALL_TARGET,
    }


def corpus(folder: Path, model: str, workers: int, log: Callable[[str], None]) -> dict[str, Any]:
    paths = sorted(folder.glob("*.pdf"))
    log(f"ocr: {len(paths)} PDFs of {folder}, OCR off and auto")
    modes = [str(OcrMode.OFF), str(OcrMode.AUTO)]
    outputs = _run_all(paths, modes, model, workers)
    n: Counter[str] = Counter()
    recovered = []
    for k, path in enumerate(paths):
        off, auto = outputs[2 * k], outputs[2 * k + 1]
        n["documents"] += 1
        n["ocr_pages"] += auto.get("ocr_pages", 0)
        n["ocr_ms"] += int(auto.get("ocr_ms", 0))
        n[f"off:{off.get('error', 'ok')}"] += 1
        n[f"auto:{auto.get('error', 'ok')}"] += 1
        if off.get("error") == ErrorCode.NO_TEXT:
            n["no_text_before"] += 1
            if "error" not in auto:
                recovered.append(path.name)
    return {
        "corpus_documents": n["documents"],
        "corpus_no_text_with_ocr_off": n["no_text_before"],
        "corpus_no_text_now_with_text": len(recovered),
        "corpus_recovered": recovered,
        "corpus_ocr_pages": n["ocr_pages"],
        "corpus_ocr_seconds": round(n["ocr_ms"] / 1000, 1),
        "corpus_outcomes": {k: v for k, v in sorted(n.items()) if ":" in k},
    }


def run(
    model: str, workers: int, folder: Path | None, log: Callable[[str], None]
) -> dict[str, Any]:
    figures = generated(model, workers, log)
    if folder is not None:
        figures.update(corpus(folder, model, workers, log))
    return figures
