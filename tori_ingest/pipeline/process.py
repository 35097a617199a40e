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
from dataclasses import dataclass
from multiprocessing.queues import Queue
from typing import Any

from tori_ingest.core.errors import JobError
from tori_ingest.core.models import Page, Processed
from tori_ingest.core.vocab import ErrorCode, Extractor, OcrMode, Stage
from tori_ingest.pipeline import chunking, clean, language, layout, nlp, ocr, scan, structure

# Pool processes report progress at most this often per job.
PROGRESS_INTERVAL_S = 0.25
# Markers (in a PDF's first KiB) that trigger failure modes in tests; TORI_TEST_HOOKS only.
HOOK_HANG, HOOK_CRASH = b"%tori-test-hang", b"%tori-test-crash"
HOOK_SLOW, HOOK_MEMORY = b"%tori-test-slow", b"%tori-test-memory"
SLOW_S = 4.0

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
    job_id: str, path: str, password: str | None, max_pages: int, ocr_mode: str | None = None
) -> Processed:
    """The CPU part of a job; raises JobError for a document that cannot be ingested (with the
    CPU its stages took until then).

    `ocr_mode`: the job's own OCR mode (None: TORI_OCR).
    """
    clock = _Clock()
    try:
        return _process(clock, job_id, path, password, max_pages, ocr_mode)
    except JobError as exc:
        exc.cpu_ms = clock.interrupted()
        raise


def _process(
    clock: _Clock,
    job_id: str,
    path: str,
    password: str | None,
    max_pages: int,
    ocr_mode: str | None,
) -> Processed:
    report = _Progress(job_id, _state.get("events"))
    with open(path, "rb") as f:
        data = f.read()
    if _state.get("test_hooks"):
        _test_hook(data)
    config: PipelineConfig = _state.get("config") or PipelineConfig()
    options = scan.Options(
        password, max_pages, OcrMode(ocr_mode or config.mode), config.dpi, config.extractor
    )
    # pages_done counts pages fully done (read, cleaned, annotated): while pages are read
    # (text layer, OCR) it stays 0, and the reports only say the job is alive.
    read = scan.read(data, options, _engine, lambda _done, total: report(0, total))
    del data
    clock.lap(
        Stage.EXTRACT,
        inner={Stage.OCR: (read.ocr_ms, read.ocr_cpu_ms), Stage.LAYOUT: read.layout_ms},
    )
    total = len(read.pages)
    # Cleaning never empties a page, so a page without text had none to extract or OCR.
    margins = [layout.margin_lines(structure) for structure in read.structures]
    pages = clean.clean_pages([p.text for p in read.pages], margins)
    texts = [page.text for page in pages]
    clock.lap(Stage.CLEAN)
    blocks, chunks = structure.blocks_and_chunks(read, pages, config.chunk_words)
    clock.lap(Stage.LAYOUT)
    warnings = list(read.warnings)
    warnings += [f"page {i} has no text layer" for i, text in enumerate(texts, 1) if not text]
    if not any(texts):
        ocr_off = " (OCR is off)" if options.mode is OcrMode.OFF else ""
        raise JobError(
            ErrorCode.NO_TEXT,
            f"none of the {total} pages has a text layer or text that OCR could read{ocr_off}",
        )
    lang = _state["detector"].document(texts)
    annotator: nlp.Annotator = _state["models"].get(lang)
    if lang is not None and not annotator.entities and not _state["models"].blank:
        warnings.append(
            f"no spaCy entity model for {language.name(lang)} is installed: entities are "
            "empty (install one and name it in TORI_SPACY_MODEL, e.g. en=…,fr=fr_core_news_sm)"
        )
    annotations = nlp.annotate(annotator.nlp, texts, on_page=lambda done: report(done, total))
    annotations["stats"]["ocr_pages"] = read.ocr_pages
    annotations.update(blocks=blocks, chunks=chunks)
    clock.lap(Stage.NLP)
    processed = Processed.model_validate(
        {
            "document": {
                "pages": total,
                **read.metadata,
                "encrypted": read.encrypted,
                "language": lang,
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
                for i, (p, r) in enumerate(zip(pages, read.pages, strict=True), 1)
            ],
            **annotations,
            "warnings": warnings,
            "timings_ms": clock.wall,
            "pipeline": annotator.info,
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
            self._add(other, w, c)
            carved = (carved[0] + w, carved[1] + c)
        self._add(
            stage, (wall - self._wall) * 1000 - carved[0], (cpu - self._cpu) * 1000 - carved[1]
        )
        self._wall, self._cpu = wall, cpu

    def _add(self, stage: Stage, wall_ms: float, cpu_ms: float) -> None:
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


def _test_hook(data: bytes) -> None:
    head = data[:1024]
    if HOOK_HANG in head:
        while True:
            time.sleep(1)
    if HOOK_CRASH in head:
        os.kill(os.getpid(), signal.SIGSEGV)
    if HOOK_SLOW in head:  # "%tori-test-slow" sleeps SLOW_S, "%tori-test-slow=12" 12 s
        after = head.split(HOOK_SLOW, 1)[1]
        seconds = after[1:].split(b"\n", 1)[0] if after.startswith(b"=") else b""
        time.sleep(float(seconds) if seconds.strip().isdigit() else SLOW_S)
    if HOOK_MEMORY in head:  # like a decompression bomb: far more than the address-space cap
        hog = bytearray(64 * 1024**3)
        del hog
