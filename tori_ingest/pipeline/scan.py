"""Every page's text: the PDF's text layer, or OCR where that layer is missing or negligible.

The rule (`TORI_OCR=auto`), page by page, so a mixed document gets OCR only where it needs it:
a page is OCR'd when its text layer has no word character at all, or fewer than SPARSE_CHARS
and images cover at least MIN_IMAGE_COVERAGE of the page. A scan with a stamped or faxed
header line ("Received 03/12/2024 Page 1/3": 30-60 characters over a full-page image) is
OCR'd; a born-digital page with a logo (a few per cent of the page) never is, nor a title
slide with two words (no big image). Measured on the 114-file real-world corpus (the 107
files pypdf opens, 149 pages): the 38 pages with an empty layer are OCR candidates; of the 12
pages with images over half the page, 10 have at most 5 word characters (JBIG2 bitmaps, a
scanned "pdf.js" page) and are OCR'd, while the two with 213 and 1,030 characters (a web-page
print over a white background picture, a form over a background image) keep their layer.
The OCR text replaces the layer only when it holds more word characters and its mean
confidence is at least MIN_CONFIDENCE (a photo read as text gives short, low-confidence
junk). `force` OCRs every page and keeps the OCR text whenever it has any; `off` never OCRs.

Images (PNG, JPEG, TIFF) are all OCR'd, frame by frame.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pypdfium2 as pdfium

from tori_ingest.core.errors import JobError
from tori_ingest.core.formats import MAGIC_WINDOW, MediaType, sniff
from tori_ingest.core.vocab import ErrorCode, Extractor, OcrMode, PageSource
from tori_ingest.pipeline import extract, images, layout
from tori_ingest.pipeline.ocr import Engine, Reading
from tori_ingest.pipeline.render import Renderer

SPARSE_CHARS = 100  # word characters: about two lines of text
MIN_IMAGE_COVERAGE = 0.5
MIN_CONFIDENCE = 0.4  # tesseract's mean word confidence, 0-1
NO_METADATA: dict[str, Any] = {"title": None, "author": None, "producer": None, "created": None}
_WORD = re.compile(r"\w")

# (pages whose text is final, total pages): called as each page's text is settled.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Options:
    password: str | None = None
    max_pages: int = 5000
    mode: OcrMode = OcrMode.AUTO
    dpi: int = 200
    extractor: Extractor = Extractor.PDFIUM
    pages: tuple[int, int] | None = None  # (first, last), 1-based: one part of a document


@dataclass
class PageText:
    text: str
    source: PageSource = PageSource.TEXT
    confidence: float | None = None


@dataclass
class Read:
    """A document's pages before cleaning, and how they were read."""

    pages: list[PageText]
    media_type: MediaType
    metadata: dict[str, Any] = field(default_factory=lambda: dict(NO_METADATA))
    encrypted: bool = False
    warnings: list[str] = field(default_factory=list)
    ocr_ms: float = 0.0
    ocr_cpu_ms: float = 0.0  # this process's CPU time in rendering and OCR
    structures: list[layout.PageStructure] = field(default_factory=list)  # one per page
    outline: list[tuple[int, str, int]] = field(default_factory=list)
    layout_ms: tuple[float, float] = (0.0, 0.0)  # (wall, CPU) inside extraction
    first: int = 1  # the number of `pages[0]` in the document (a part's first page)
    total: int = 0  # the document's page count (0: len(pages))
    ocr: OcrMode = OcrMode.AUTO  # the mode it was read with

    @property
    def ocr_pages(self) -> int:
        return sum(1 for p in self.pages if p.source is PageSource.OCR)


def joined(reads: list[Read]) -> Read:
    """The parts of one document, read separately (in page order), as one read: document-level
    facts (metadata, outline) come with the first part."""
    head = reads[0]
    if len(reads) == 1:
        return head
    return Read(
        pages=[page for r in reads for page in r.pages],
        media_type=head.media_type,
        metadata=head.metadata,
        encrypted=head.encrypted,
        warnings=[w for r in reads for w in r.warnings],
        ocr_ms=sum(r.ocr_ms for r in reads),
        ocr_cpu_ms=sum(r.ocr_cpu_ms for r in reads),
        structures=[s for r in reads for s in r.structures],
        outline=head.outline,
        layout_ms=(sum(r.layout_ms[0] for r in reads), sum(r.layout_ms[1] for r in reads)),
        first=head.first,
        total=head.total,
        ocr=head.ocr,
    )


def word_chars(text: str) -> int:
    return len(_WORD.findall(text))


def may_need_ocr(text: str, mode: OcrMode) -> bool:
    """Whether a page's text layer alone cannot settle it (the image check comes next)."""
    if mode is OcrMode.OFF:
        return False
    return mode is OcrMode.FORCE or word_chars(text) < SPARSE_CHARS


def choose(layer: str, reading: Reading | None, mode: OcrMode) -> PageText:
    """The OCR text when it is the better reading of the page, else the text layer."""
    if reading is None:
        return PageText(layer)
    found = word_chars(reading.text)
    better = found > word_chars(layer) and reading.confidence >= MIN_CONFIDENCE
    if found and (mode is OcrMode.FORCE or better):
        return PageText(reading.text, PageSource.OCR, reading.confidence)
    return PageText(layer)


def read(data: bytes, options: Options, engine: Callable[[], Engine], progress: Progress) -> Read:
    """The pages of a PDF or an image; `engine()` gives the process's OCR engine."""
    media = sniff(data[:MAGIC_WINDOW]) or MediaType.PDF  # pypdf has the last word on the rest
    if media is MediaType.PDF:
        return _read_pdf(data, options, engine, progress)
    return _read_image(data, media, options, engine, progress)


class _Settled:
    """Counts pages whose text is final while pypdf extracts (a page that may need OCR is
    settled later), so progress neither stalls before OCR nor jumps past it."""

    def __init__(self, mode: OcrMode, progress: Progress) -> None:
        self.mode, self.progress, self.count = mode, progress, 0

    def on_text(self, text: str) -> None:
        self.count += not may_need_ocr(text, self.mode)

    def on_page(self, _done: int, total: int) -> None:
        self.progress(self.count, total)


def _read_pdf(
    data: bytes, options: Options, engine: Callable[[], Engine], progress: Progress
) -> Read:
    settled = _Settled(options.mode, progress)
    raw = extract.extract(
        data,
        password=options.password,
        max_pages=options.max_pages,
        on_page=settled.on_page,
        on_text=settled.on_text,
        extractor=options.extractor,
        pages=options.pages,
    )
    out = Read(
        pages=[PageText(text) for text in raw.pages],
        media_type=MediaType.PDF,
        metadata=raw.metadata,
        encrypted=raw.encrypted,
        warnings=list(raw.warnings),
        structures=raw.structures,
        outline=raw.outline,
        layout_ms=raw.layout_ms,
        first=raw.first,
        total=raw.total,
        ocr=options.mode,
    )
    offset = raw.first - 1  # list positions → the document's page indexes
    candidates = [i for i, text in enumerate(raw.pages) if may_need_ocr(text, options.mode)]
    unmeasured = {u - offset for u in raw.unmeasured}  # PDFium must not load these (`extract`)
    for index in sorted(unmeasured.intersection(candidates)):
        out.warnings.append(f"page {index + offset + 1}: its content cannot be decoded for OCR")
        settled.count += 1
    candidates = [i for i in candidates if i not in unmeasured]
    if not candidates:
        return out
    started, cpu = time.perf_counter(), time.process_time()
    try:
        renderer = Renderer(data, options.password)
    except pdfium.PdfiumError as exc:
        out.warnings.append(f"the PDF cannot be rendered for OCR ({exc})")
        return out
    try:
        for index in candidates:
            _ocr_page(out, renderer, index, offset, options, engine)
            settled.count += 1
            progress(settled.count, len(out.pages))
    finally:
        renderer.close()
    out.ocr_ms = (time.perf_counter() - started) * 1000
    out.ocr_cpu_ms = (time.process_time() - cpu) * 1000
    return out


def _ocr_page(
    out: Read,
    renderer: Renderer,
    index: int,
    offset: int,
    options: Options,
    engine: Callable[[], Engine],
) -> None:
    """OCR of `out.pages[index]`, page `index + offset + 1` of the document."""
    layer, page = out.pages[index].text, index + offset
    try:
        if options.mode is OcrMode.AUTO and word_chars(layer):
            if renderer.image_coverage(page) < MIN_IMAGE_COVERAGE:
                return  # a short born-digital page: its layer is all there is
        image = renderer.render(page, options.dpi)
    except MemoryError:
        raise
    except Exception as exc:  # one unrenderable page must not fail the document
        out.warnings.append(f"page {page + 1}: cannot be rendered for OCR ({exc})")
        return
    reading = engine().read(image) if image is not None else None
    out.pages[index] = choose(layer, reading, options.mode)
    if reading is not None and out.pages[index].source is PageSource.OCR:
        known = out.structures[index]
        out.structures[index] = ocr_structure(page + 1, reading, known.width, known.height)


def ocr_structure(
    number: int, reading: Reading, width: float, height: float
) -> layout.PageStructure:
    """The page's blocks as the OCR engine found them, its pixel boxes turned into points."""
    scale = width / reading.width if reading.width and width else 72 / 200
    paragraphs = [
        (text, (x0 * scale, y0 * scale, x1 * scale, y1 * scale))
        for text, (x0, y0, x1, y1) in reading.paragraphs
    ]
    return layout.PageStructure(number, width, height, paragraphs=paragraphs)


def _read_image(
    data: bytes,
    media: MediaType,
    options: Options,
    engine: Callable[[], Engine],
    progress: Progress,
) -> Read:
    if options.mode is OcrMode.OFF:
        raise JobError(ErrorCode.NO_TEXT, "the document is an image and OCR is off")
    started, cpu = time.perf_counter(), time.process_time()
    total = images.frame_count(data)
    out = Read(pages=[], media_type=media, ocr=options.mode)
    for number, image in enumerate(
        images.pages(data, dpi=options.dpi, max_pages=options.max_pages), 1
    ):
        reading = engine().read(image)
        out.pages.append(choose("", reading, options.mode))
        width = image.width * 72 / options.dpi
        out.structures.append(
            ocr_structure(number, reading, width, image.height * 72 / options.dpi)
        )
        progress(number, total)
    out.ocr_ms = (time.perf_counter() - started) * 1000
    out.ocr_cpu_ms = (time.process_time() - cpu) * 1000
    return out
