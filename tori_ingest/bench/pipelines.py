"""The pipeline without the service: the same extract+clean+nlp functions in a plain process
pool (bare), and the naive plan (full spaCy over whole-document text) as a baseline."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from tori_ingest.core.errors import JobError
from tori_ingest.core.vocab import Extractor
from tori_ingest.pipeline import nlp
from tori_ingest.pipeline import process as pipeline


def count_pages(paths: list[Path]) -> int:
    return sum(len(PdfReader(str(p)).pages) for p in paths)


def usable(paths: list[Path]) -> list[Path]:
    """The files pypdf can open without a password: a real-world corpus holds broken and
    locked ones, which every pipeline measured here must see alike (or not at all)."""
    found = []
    for path in paths:
        try:
            reader = PdfReader(str(path))
            if reader.is_encrypted and not reader.decrypt(""):
                continue
            if len(reader.pages) > 0:
                found.append(path)
        except Exception:
            continue
    return found


# --- pipelines without the service ----------------------------------------------------------


def _bare_init(model: str, extractor: Extractor = Extractor.PYPDF) -> None:
    pipeline.init_process(model, 0, None, False, pipeline.PipelineConfig(extractor=extractor))


def _bare(path: str) -> int:
    """Pages of one document; a document the service would fail (no text…) counts too."""
    try:
        return pipeline.process("bench", path, None, 100_000).document.pages
    except JobError:
        return len(PdfReader(path).pages)


_naive: dict[str, Any] = {}


def _naive_init(model: str) -> None:
    import spacy

    name = nlp.resolve_model(model)
    language = spacy.blank("en") if name.startswith("blank:") else spacy.load(name)
    language.max_length = 50_000_000
    _naive["nlp"] = language


def _naive_run(path: str) -> int:
    """The original plan: every page through pypdf, then the full pipeline on one string."""
    reader = PdfReader(path)
    try:
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
    except Exception:  # the naive plan has no per-page isolation: a broken page loses the text
        text = ""
    doc = _naive["nlp"](text)
    _ = [(e.text, e.label_) for e in doc.ents], list(doc.sents)
    return len(reader.pages)


def pool_pages_per_s(
    paths: list[Path],
    size: int,
    model: str,
    naive: bool,
    extractor: Extractor = Extractor.PYPDF,
) -> dict[str, float]:
    """Pages/s of a plain pool; the naive plan always reads with pypdf (it is the baseline)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tori_ingest.bench.preload"])  # as the service's pool does
    init, run = (_naive_init, _naive_run) if naive else (_bare_init, _bare)
    args = (model,) if naive else (model, extractor)
    with ProcessPoolExecutor(size, mp_context=ctx, initializer=init, initargs=args) as pool:
        list(pool.map(run, [str(paths[0])] * size))  # warm every process before timing
        started = time.perf_counter()
        pages = sum(pool.map(run, [str(p) for p in paths]))
        elapsed = time.perf_counter() - started
    return {"pages": pages, "seconds": round(elapsed, 2), "pages_per_s": round(pages / elapsed, 2)}
