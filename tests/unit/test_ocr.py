"""OCR inside the pipeline: which pages get OCR'd, recall on generated scans, modes, progress."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from PIL import Image

from tests.helpers import recall, scanned_page
from tests.pdfs import make_pdf
from tori_ingest.bench import scans
from tori_ingest.core.vocab import OcrMode, PageSource
from tori_ingest.pipeline import ocr, process, scan
from tori_ingest.pipeline.ocr import Reading

ENGINE: list[ocr.Engine] = []


def engine() -> ocr.Engine:
    """One tesseract for the whole module, loaded on first use (as a pool process does)."""
    if not ENGINE:
        ENGINE.append(ocr.Engine("eng"))
    return ENGINE[0]


def read(data: bytes, mode: OcrMode = OcrMode.AUTO, dpi: int = 200) -> scan.Read:
    return scan.read(data, scan.Options(mode=mode, dpi=dpi), engine, lambda d, t: None)


# --- the rule: which pages need OCR ---------------------------------------------------------


def test_rule_on_the_text_layer_alone() -> None:
    assert scan.may_need_ocr("", OcrMode.AUTO)
    assert scan.may_need_ocr("Received 03/12/2024 Fax p. 1/3", OcrMode.AUTO)  # image decides
    assert not scan.may_need_ocr("word " * 40, OcrMode.AUTO)
    assert not scan.may_need_ocr("", OcrMode.OFF)
    assert scan.may_need_ocr("word " * 400, OcrMode.FORCE)


def test_choice_between_layer_and_ocr() -> None:
    good, junk = Reading("The engine was tested in London.", 0.93), Reading("~ ee | &", 0.21)
    assert scan.choose("", good, OcrMode.AUTO).source is PageSource.OCR
    assert scan.choose("", junk, OcrMode.AUTO).source is PageSource.TEXT  # low confidence
    assert scan.choose("pdf.js", Reading("pdf.js", 0.9), OcrMode.AUTO).text == "pdf.js"
    assert scan.choose("", Reading("", 0.0), OcrMode.FORCE).source is PageSource.TEXT
    page = scan.choose("long layer " * 20, good, OcrMode.FORCE)
    assert (page.source, page.confidence) == (PageSource.OCR, 0.93)


def test_mixed_document_is_handled_page_by_page() -> None:
    """Text page, scanned page, born-digital page with a logo, short title page."""
    image, truth = scanned_page(11, scans.Rough(noise=0.005))
    logo = Image.new("L", (120, 60), 90)
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, " ".join(["Ada Lovelace described the analytical engine."] * 12))
    pdf.add_page()
    pdf.image(image, x=0, y=0, w=210, h=297)
    pdf.add_page()
    pdf.image(logo, x=10, y=10, w=30, h=15)  # about 1 % of the page
    pdf.set_xy(10, 40)
    pdf.multi_cell(0, 6, "Annual report of the committee. " * 6)
    pdf.add_page()
    pdf.cell(0, 10, "Background")
    out = read(bytes(pdf.output()))
    assert [p.source for p in out.pages] == [
        PageSource.TEXT,
        PageSource.OCR,
        PageSource.TEXT,
        PageSource.TEXT,
    ]
    assert recall(truth, out.pages[1].text) >= 0.95
    assert out.pages[1].confidence is not None and out.pages[1].confidence >= 0.7
    assert out.pages[3].text == "Background" and out.ocr_pages == 1 and out.ocr_ms > 0


def test_photo_with_a_caption_keeps_its_layer() -> None:
    """A born-digital page whose photo covers most of it: OCR is tried, its junk not taken."""
    rng = random.Random(5)
    photo = Image.frombytes("L", (400, 300), bytes(rng.randrange(256) for _ in range(120_000)))
    photo = photo.resize((800, 600), Image.Resampling.BICUBIC)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(photo, x=0, y=0, w=210, h=250)
    pdf.set_font("Helvetica", size=10)
    pdf.set_xy(10, 270)
    pdf.cell(0, 5, "Figure 1: the harbour at dawn.")
    page = read(bytes(pdf.output()), dpi=150).pages[0]
    assert (page.source, page.text.strip()) == (PageSource.TEXT, "Figure 1: the harbour at dawn.")


def test_generated_scans_reach_the_recall_target() -> None:
    """Clean, noisy + skewed, blurred JPEG and stamped-header scans: word recall ≥ 0.95."""
    found = total = 0
    for doc in scans.scan_set(pages=1):
        out = read(doc.data)
        assert all(p.source is PageSource.OCR for p in out.pages), doc.name
        hit, words = scans.word_recall(doc.truth[0], out.pages[0].text)
        assert hit / words >= 0.95, (doc.name, hit / words)
        found, total = found + hit, total + words
    assert found / total >= 0.97


def test_a_page_of_one_colour_is_not_read_but_faint_text_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Blank pages skip tesseract (nothing to find); any ink at all still goes to it."""
    tesseract_calls = []
    real = engine()._recognise
    monkeypatch.setattr(
        engine(), "_recognise", lambda image: tesseract_calls.append(image) or real(image)
    )
    assert engine().read(Image.new("L", (1700, 2200), 255)) == Reading("", 0.0)
    assert engine().read(Image.new("RGB", (800, 600), (30, 60, 90))) == Reading("", 0.0)
    assert tesseract_calls == []
    image, truth = scanned_page(0, scans.Rough())
    faint = image.convert("L").point(lambda v: 200 + v * 55 // 255)  # grey 200 on white
    assert faint.getextrema() == (200, 255)
    assert recall(truth, engine().read(faint).text) >= 0.9
    assert len(tesseract_calls) == 1


def test_upside_down_scan_is_turned_and_read() -> None:
    image, truth = scanned_page(21, scans.Rough(skew=180))
    out = read(scans.image_pdf([image]), dpi=150)
    assert out.pages[0].source is PageSource.OCR
    assert recall(truth, out.pages[0].text) >= 0.95


def test_modes_off_and_force() -> None:
    image, _ = scanned_page(31, scans.Rough())
    data = scans.image_pdf([image])
    assert read(data, OcrMode.OFF).pages[0].text == ""
    text_pdf = make_pdf(["The committee met in Geneva to review the budget."])
    forced = read(text_pdf, OcrMode.FORCE).pages[0]
    assert forced.source is PageSource.OCR and "Geneva" in forced.text


def test_progress_counts_ocr_pages() -> None:
    image, _ = scanned_page(41, scans.Rough())
    data = scans.image_pdf([image, image])
    seen: list[tuple[int, int]] = []
    scan.read(data, scan.Options(dpi=150), engine, lambda d, t: seen.append((d, t)))
    assert seen[-1] == (2, 2) and (1, 2) in seen
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_missing_language_is_named_at_start() -> None:
    ocr.check_languages("eng")
    with pytest.raises(ocr.ModelError, match=r"tessdata\.fast-"):
        ocr.check_languages("eng+xyz")


class Reports:
    """Stands in for the pool's event queue: what a job reports, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def put(self, event: tuple[Any, ...]) -> None:
        if event[0] == "progress":
            self.seen.append((event[2], event[3]))


def test_pages_done_counts_only_pages_fully_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image, _ = scanned_page(43, scans.Rough())
    path = tmp_path / "scan.pdf"
    path.write_bytes(scans.image_pdf([image] * 3))
    reports = Reports()
    process.init_process("blank:en", 0, None, False, process.PipelineConfig(dpi=150))
    monkeypatch.setitem(process._state, "events", reports)
    monkeypatch.setattr(process, "PROGRESS_INTERVAL_S", 0.0)  # every report, not one in 0.25 s
    before_nlp: list[tuple[int, int]] = []
    count = process.nlp.count

    def spy(*args: Any, **kwargs: Any) -> Any:
        before_nlp.extend(reports.seen)
        return count(*args, **kwargs)

    monkeypatch.setattr(process.nlp, "count", spy)
    out = process.process("job", str(path), None, 100)
    assert out.stats.ocr_pages == 3
    assert before_nlp and all(done == 0 for done, _ in before_nlp)  # OCR'd, not yet done
    assert reports.seen[len(before_nlp) :] == [(1, 3), (2, 3), (3, 3)]
