"""The quality benchmark on its smallest configuration (not timed: its figures are measured
by `tori-ingest bench --quality`), and the whole CPU path of a job on the shapes of issue #17:
nothing lost, `no_text` only when extraction found nothing, language and entities."""

from pathlib import Path

import pytest
from fpdf import FPDF

from tests.pdfs import make_pdf, prose_pdf
from tori_ingest.bench import quality
from tori_ingest.bench.quality_docs import font_path

ARABIC = "\u062d\u064e\u0628\u064a\u0628\u064a habibi \u062d\u064e\u0628\u064a\u0628\u064a"
GERMAN = [
    "Ein Weg ist eine Folge von Knoten, die paarweise durch Kanten verbunden sind.",
    "Wir sagen, der Graph sei zusammenhängend, wenn je zwei Knoten verbunden sind.",
    "Die Abbildung zeigt den Raum, in dem die Knoten und die Wege des Graphen liegen.",
    "Jeder Baum mit mindestens zwei Knoten hat mindestens zwei Blätter, wie man sieht.",
]


def test_quality_benchmark_meets_its_targets(tmp_path: Path) -> None:
    figures = quality.run("auto", pool_size=1, folder=tmp_path, labelled=False)
    assert figures["failed"] == [] and figures["pages_emptied"] == 0
    for key in ("hyphen_joins", "two_column_order", "document_language_accuracy"):
        assert 0 <= figures[key] <= 1
    assert figures["targets_met"] == dict.fromkeys(quality.TARGETS, True), figures


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("shapes")
    pdfs = {
        "background": make_pdf(["Background"] * 6),
        "scanned": make_pdf(["", "", ""]),
        "german": make_pdf([[f"{n} 1.6. WEGE UND KNOTEN", *GERMAN[n % 2 :]] for n in range(4)]),
        "english": prose_pdf(3),
    }
    if font_path():
        pdf = FPDF()
        pdf.add_font("unicode", fname=font_path())
        pdf.set_font("unicode", size=12)
        for _ in range(4):
            pdf.add_page()
            pdf.cell(0, 10, ARABIC)
        pdfs["arabic"] = bytes(pdf.output())
    paths = []
    for key, data in pdfs.items():
        (folder / f"{key}.pdf").write_bytes(data)
        paths.append(folder / f"{key}.pdf")
    return dict(zip(pdfs, quality.measure(paths, "auto", 1), strict=True))


def test_repeated_pages_are_not_no_text(results: dict[str, dict]) -> None:
    background = results["background"]
    assert "error" not in background
    assert [p["text"] for p in background["pages"]] == ["Background"] * 6
    assert not any("no text layer" in w for w in background["warnings"])


def test_arabic_pages_keep_their_text(results: dict[str, dict]) -> None:
    if "arabic" not in results:
        pytest.skip("no Unicode TTF font (DejaVu) to draw Arabic with")
    arabic = results["arabic"]
    assert "error" not in arabic and all("habibi" in p["text"] for p in arabic["pages"])
    assert arabic["document"]["language"] == "ar"


def test_no_text_only_when_extraction_found_nothing(results: dict[str, dict]) -> None:
    assert results["scanned"]["error"].startswith("no_text")


def test_german_document_gets_german_and_no_english_entities(results: dict[str, dict]) -> None:
    german = results["german"]
    assert german["document"]["language"] == "de"
    assert german["entities"] == []
    assert any("German (de)" in w for w in german["warnings"])
    assert german["pipeline"]["model"] == "blank:de"
    phrases = {k["text"] for k in german["keyphrases"]}
    assert not phrases & {"und", "sei", "ist", "mit"}
    assert german["pages"][0]["removed"] == ["0 1.6. WEGE UND KNOTEN"]


def test_english_document_keeps_its_entities(results: dict[str, dict]) -> None:
    english = results["english"]
    assert english["document"]["language"] == "en"
    assert {"Ada Lovelace", "London"} <= {e["text"] for e in english["entities"]}
    assert not any("entity model" in w for w in english["warnings"])


def test_bench_has_a_quality_flag() -> None:
    from tori_ingest.cli import build_parser

    assert build_parser().parse_args(["bench", "--quality"]).quality is True
    assert build_parser().parse_args(["bench"]).quality is False
