"""What one pool process does: load spaCy, the language detector and the OCR engine once,
then turn a PDF or image file into a result.

Runs only inside pool processes (never on the event loop). `process` is the whole CPU path
of a job: read → extract → clean → annotate; the worker adds the job's own fields around it.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from typing import Any

from tori_ingest.core.errors import JobError
from tori_ingest.core.models import Page, Processed
from tori_ingest.core.vocab import ErrorCode, Extractor, OcrMode, Stage
from tori_ingest.pipeline import (
    chunking,
    clean,
    extract,
    hooks,
    language,
    layout,
    nlp,
    ocr,
    scan,
    split,
    structure,
)

# Pool processes report progress at most this often per job.
PROGRESS_INTERVAL_S = 0.25

_state: dict[str, Any] = {}


@dataclass(frozen=True)
class PipelineConfig:
    """The settings a pool process works by: TORI_OCR, TORI_OCR_LANGUAGES, TORI_OCR_DPI,
    TORI_EXTRACTOR, TORI_CHUNK_WORDS."""

    mode: OcrMode = OcrMode.AUTO
    languages: str = "eng"
    dpi: int = 200
    extractor: Extractor = Extractor.PDFIUM
    chunk_words: int = chunking.CHUNK_WORDS


def init_process(
    model: str,
    memory_mb: int,
    events: Queue[Any] | None,
    test_hooks: bool,
    config: PipelineConfig | None = None,
) -> None:
    """Pool initializer: cap memory, lower priority, load the pipeline once for this process."""
    # Ctrl-C and SIGTERM are the parent's to handle: a platform that signals every process of
    # the dyno at shutdown must not kill in-flight work that the grace period lets finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.nice(10)
    _state.update(
        models=nlp.Models(model),
        detector=language.Detector(),
        events=events,
        test_hooks=test_hooks,
        config=config or PipelineConfig(),
    )
    if _state["config"].mode is not OcrMode.OFF:
        _engine()  # loaded now, like spaCy; with OCR off only if a job asks for it
    if events is not None:
        events.put(("ready", os.getpid()))


def process(
    job_id: str,
    path: str,
    password: str | None,
    max_pages: int,
    ocr_mode: str | None = None,
    split_pages: int = 0,
) -> Processed | list[tuple[int, int]]:
    """The CPU part of a job; raises JobError for a document that cannot be ingested (with the
    CPU its stages took until then).

    `ocr_mode`: the job's own OCR mode (None: TORI_OCR). The phases are those of a split
    document (`read_part`, `prepare`, `annotate_part`, `finish`) run here as its one part, so
    a split document's result is the unsplit one by construction. A PDF with more pages than
    `split_pages` (TORI_SPLIT_PAGES) is not processed: its read parts' page ranges come back
    (counted here, in the job's one trip to the pool, so a short job pays no extra one).
    """
    clock = _Clock()  # the page count is part of reading (`extract`) for a job run whole
    data = _file(path)
    if split_pages > 0:
        ranges = _split(data, password, ocr_mode, split_pages)
        if ranges:
            return ranges
    try:
        report = _Progress(job_id, _state.get("events"))
        # pages_done counts pages fully done (read, cleaned, annotated): while pages are read
        # (text layer, OCR) it stays 0, and the reports only say the job is alive.
        read = _read(clock, data, password, max_pages, ocr_mode, None, lambda d, t: report(0, t))
        del data
        prepared = _prepare(clock, [read])
        total = len(prepared.texts)
        counts = _count(
            clock, prepared.texts, prepared.language, 1, lambda done: report(done, total)
        )
        return _finish(clock, prepared, [counts])
    except JobError as exc:
        exc.cpu_ms = clock.interrupted()
        raise


@dataclass
class Phase:
    """What one phase of a split document returns, with the CPU and wall ms it took."""

    out: Any
    cpu_ms: dict[str, float]
    wall_ms: dict[str, float]


@dataclass
class Prepared:
    """A document's steps that need every page at once: cleaning (furniture is what repeats
    across pages), its language, blocks and chunks (heading levels rank the whole document's
    styles). Done once, between reading the parts and annotating them."""

    read: scan.Read  # every part's pages, in order
    cleaned: list[clean.Cleaned]
    texts: list[str]
    language: str | None
    blocks: list[dict[str, Any]]
    chunks: list[dict[str, Any]]
    warnings: list[str]


def _split(
    data: bytes, password: str | None, ocr_mode: str | None, split_pages: int
) -> list[tuple[int, int]]:
    found = extract.survey(data, password, above=split_pages)
    mode = OcrMode(ocr_mode or (_state.get("config") or PipelineConfig()).mode)
    to_ocr = {OcrMode.OFF: 0, OcrMode.FORCE: found.pages}.get(mode, found.fontless)
    return split.read_ranges(found.pages, split_pages, to_ocr)


def read_part(
    path: str,
    password: str | None,
    max_pages: int,
    ocr_mode: str | None,
    first: int,
    last: int,
) -> Phase:
    """Pages first..last of a PDF: text layer, OCR where needed, page layout."""
    clock = _Clock()
    return _phase(
        clock, lambda: _read(clock, _file(path), password, max_pages, ocr_mode, (first, last))
    )


def prepare(reads: list[scan.Read]) -> Phase:
    """The document-level steps over every part's pages (parts in page order)."""
    clock = _Clock()
    return _phase(clock, lambda: _prepare(clock, reads))


def annotate_part(texts: list[str], language: str | None, first: int) -> Phase:
    """NLP counts of cleaned pages, the first of which is page `first`."""
    clock = _Clock()
    return _phase(clock, lambda: _count(clock, texts, language, first, None))


def finish(prepared: Prepared, counts: list[nlp.Counts], spent: list[Phase]) -> Processed:
    """The result of a split document from its prepared pages and its parts' NLP counts;
    `spent`: every phase it took (their CPU and wall times add up in the result)."""
    clock = _Clock()
    for phase in spent:
        for stage, cpu in phase.cpu_ms.items():
            clock.add(Stage(stage), phase.wall_ms.get(stage, 0.0), cpu)
    return _finish(clock, prepared, counts)


def _phase(clock: _Clock, run: Callable[[], Any]) -> Phase:
    try:
        out = run()
    except JobError as exc:
        exc.cpu_ms = clock.interrupted()
        raise
    return Phase(out, dict(clock.cpu), dict(clock.wall))


def _file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _read(
    clock: _Clock,
    data: bytes,
    password: str | None,
    max_pages: int,
    ocr_mode: str | None,
    pages: tuple[int, int] | None,
    progress: scan.Progress = lambda _done, _total: None,
) -> scan.Read:
    if _state.get("test_hooks"):
        hooks.run(data, pages)
    config: PipelineConfig = _state.get("config") or PipelineConfig()
    options = scan.Options(
        password, max_pages, OcrMode(ocr_mode or config.mode), config.dpi, config.extractor, pages
    )
    read = scan.read(data, options, _engine, progress)
    clock.lap(
        Stage.EXTRACT,
        inner={Stage.OCR: (read.ocr_ms, read.ocr_cpu_ms), Stage.LAYOUT: read.layout_ms},
    )
    return read


def _prepare(clock: _Clock, reads: list[scan.Read]) -> Prepared:
    read = scan.joined(reads)
    config: PipelineConfig = _state.get("config") or PipelineConfig()
    margins = [layout.margin_lines(structure) for structure in read.structures]
    cleaned = clean.clean_pages([p.text for p in read.pages], margins)
    texts = [page.text for page in cleaned]
    clock.lap(Stage.CLEAN)
    blocks, chunks = structure.blocks_and_chunks(read, cleaned, config.chunk_words)
    clock.lap(Stage.LAYOUT)
    warnings = list(read.warnings)
    warnings += [f"page {i} has no text layer" for i, text in enumerate(texts, 1) if not text]
    if not any(texts):
        off = read.ocr is OcrMode.OFF
        raise JobError(
            ErrorCode.NO_TEXT,
            f"none of the {len(texts)} pages has a text layer or text that OCR could read"
            + (" (OCR is off)" if off else ""),
        )
    lang = _state["detector"].document(texts)
    annotator: nlp.Annotator = _state["models"].get(lang)
    if lang is not None and not annotator.entities and not _state["models"].blank:
        warnings.append(
            f"no spaCy entity model for {language.name(lang)} is installed: entities are "
            "empty (install one and name it in TORI_SPACY_MODEL, e.g. en=…,fr=fr_core_news_sm)"
        )
    clock.lap(Stage.NLP)
    return Prepared(read, cleaned, texts, lang, blocks, chunks, warnings)


def _count(
    clock: _Clock,
    texts: list[str],
    lang: str | None,
    first: int,
    on_page: Callable[[int], None] | None,
) -> nlp.Counts:
    annotator: nlp.Annotator = _state["models"].get(lang)
    counts = nlp.count(annotator.nlp, texts, first_page=first, on_page=on_page)
    clock.lap(Stage.NLP)
    return counts


def _finish(clock: _Clock, prepared: Prepared, parts: list[nlp.Counts]) -> Processed:
    read, counts = prepared.read, nlp.Counts()
    for part in parts:
        counts.add(part)
    annotations = nlp.ranked(counts)
    annotations["stats"]["ocr_pages"] = read.ocr_pages
    annotations.update(blocks=prepared.blocks, chunks=prepared.chunks)
    processed = Processed.model_validate(
        {
            "document": {
                "pages": len(prepared.texts),
                **read.metadata,
                "encrypted": read.encrypted,
                "language": prepared.language,
                "media_type": read.media_type,
            },
            "pages": [
                Page(
                    number=i,
                    text=p.text,
                    chars=len(p.text),
                    removed=p.removed,
                    source=r.source,
                    ocr_confidence=r.confidence,
                )
                for i, (p, r) in enumerate(zip(prepared.cleaned, read.pages, strict=True), 1)
            ],
            **annotations,
            "warnings": prepared.warnings,
            "timings_ms": clock.wall,
            "pipeline": _state["models"].get(prepared.language).info,
        }
    )
    clock.lap(Stage.ASSEMBLE)
    processed.cpu_ms = clock.cpu
    return processed


class _Clock:
    """Wall and CPU milliseconds of each stage of one job in this process."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def lap(self, stage: Stage, inner: dict[Stage, tuple[float, float]] | None = None) -> None:
        """Close `stage` now; `inner` (wall, CPU) ms spent inside it count as theirs instead."""
        wall, cpu = time.perf_counter(), time.process_time()
        carved = (0.0, 0.0)
        if stage is Stage.EXTRACT:  # OCR and layout run inside it: both always reported
            inner = {Stage.OCR: (0.0, 0.0), Stage.LAYOUT: (0.0, 0.0), **(inner or {})}
        for other, (w, c) in (inner or {}).items():
            self.add(other, w, c)
            carved = (carved[0] + w, carved[1] + c)
        self.add(
            stage, (wall - self._wall) * 1000 - carved[0], (cpu - self._cpu) * 1000 - carved[1]
        )
        self._wall, self._cpu = wall, cpu

    def add(self, stage: Stage, wall_ms: float, cpu_ms: float) -> None:
        if stage is not Stage.ASSEMBLE:  # the result's own wall times end with NLP
            self.wall[stage] = round(self.wall.get(stage, 0.0) + wall_ms, 1)
        self.cpu[stage] = round(self.cpu.get(stage, 0.0) + cpu_ms, 1)

    def interrupted(self) -> dict[str, float]:
        """CPU per stage of a job that raised: the stage it was in ends now."""
        for stage in (Stage.EXTRACT, Stage.CLEAN, Stage.LAYOUT, Stage.NLP, Stage.ASSEMBLE):
            if stage not in self.cpu:
                self.lap(stage)
                break
        return dict(self.cpu)


def _engine() -> ocr.Engine:
    """This process's OCR engine, loaded on first use."""
    if "engine" not in _state:
        config: PipelineConfig = _state.get("config") or PipelineConfig()
        _state["engine"] = ocr.Engine(config.languages)
    engine: ocr.Engine = _state["engine"]
    return engine


def ping() -> int:
    """A no-op task: proves a pool process is alive and warm."""
    return os.getpid()


class _Progress:
    """(done, total) reports to the parent, at most one per interval, counted from job start.

    A job shorter than one interval reports nothing: its final state is written with the result,
    so a one-page PDF costs no extra database round trip.
    """

    def __init__(self, job_id: str, events: Queue[Any] | None) -> None:
        self.job_id, self.events, self.last = job_id, events, time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.events is None or now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        self.events.put(("progress", self.job_id, done, total))
