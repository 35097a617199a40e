"""`tori-ingest bench --quality`: how good the text is, on generated documents whose truth is
known (`quality_docs`): body-word recall, header/footer removal precision and recall, hyphen
joins, reading order of two-column pages, language accuracy and keyphrase hits.

The documents go through the real pipeline (`pipeline.process` in a pool process, as a job
would); nothing here is timed, so the figures do not depend on the machine.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tori_ingest.bench import quality_docs as docs
from tori_ingest.bench.quality_docs import TruthDoc, words
from tori_ingest.bench.structure_quality import ratio
from tori_ingest.core.vocab import Extractor
from tori_ingest.pipeline import clean, extract
from tori_ingest.pipeline import process as pipeline

TARGETS = {
    "body_recall": 0.995,
    "furniture_precision": 0.98,
    "furniture_recall": 0.95,
    "language_accuracy": 0.98,
}
LANGUAGE_MIN_WORDS = 50  # pages shorter than this are not counted for language accuracy
TOP_KEYPHRASES = 10


def _init(model: str, extractor: Extractor = Extractor.PYPDF) -> None:
    pipeline.init_process(model, 0, None, False, pipeline.PipelineConfig(extractor=extractor))


def _run(path: str) -> dict[str, Any]:
    """One document through the pipeline, plus its extracted lines (to see what was removed)."""
    data = Path(path).read_bytes()
    extractor = pipeline._state["config"].extractor
    raw = [clean.clean_page(t) for t in extract.extract(data, extractor=extractor).pages]
    try:
        out = pipeline.process("quality", path, None, 100_000).model_dump()
    except Exception as exc:  # a failed document scores zero, it does not stop the benchmark
        out = {"error": str(exc), "pages": [], "keyphrases": [], "document": {}}
    detector = pipeline._state.get("detector")
    page_languages = [detector.page(page["text"])[0] if detector else None for page in out["pages"]]
    return {**out, "raw": raw, "page_languages": page_languages}


def removed_lines(raw: str, page: dict[str, Any]) -> list[str]:
    """The page's removed lines: its own list, or (older results) what is missing from it."""
    if "removed" in page:
        return list(page["removed"])
    left = Counter(page["text"].split("\n"))
    gone = []
    for line in raw.split("\n"):
        if line and left[line] > 0:
            left[line] -= 1
        elif line:
            gone.append(line)
    return gone


def _order_score(sentences: list[str], text: str) -> tuple[int, int]:
    """(sentences found after the one before, pairs): each located by its first words."""
    flat = " ".join(words(text))
    ok, previous = 0, -1
    for k, sentence in enumerate(sentences):
        key = " ".join(words(sentence)[:6])
        position = flat.find(key, previous + 1)
        if position >= 0:
            ok += k > 0
            previous = position
        else:
            previous = max(previous, flat.find(key))
    return ok, max(0, len(sentences) - 1)


def evaluate(truth: list[TruthDoc], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure of the benchmark from the truth and the pipeline's results."""
    n: Counter[str] = Counter()
    failed = []
    for doc, out in zip(truth, outputs, strict=True):
        if "error" in out:
            failed.append(f"{doc.name}: {out['error']}")
        n["documents"] += 1
        n["language_docs_ok"] += out["document"].get("language") == doc.language
        pages = out["pages"] or [{"text": "", "removed": []}] * len(doc.pages)
        for k, (want, got) in enumerate(zip(doc.pages, pages, strict=True)):
            got_words = Counter(words(got["text"]))
            body = Counter(w for text in want.body for w in words(text))
            n["pages_emptied"] += bool(body) and not got["text"]
            n["body_words"] += sum(body.values())
            n["body_found"] += sum(min(c, got_words[w]) for w, c in body.items())
            furniture = [" ".join(line.split()) for line in want.furniture]
            removed = removed_lines(out["raw"][k], got) if out["raw"] else []
            n["furniture_lines"] += len(furniture)
            n["removed_lines"] += len(removed)
            n["removed_right"] += sum(1 for line in removed if line in furniture)
            lines = {" ".join(line.split()) for line in got["text"].split("\n")}
            n["furniture_gone"] += sum(1 for line in furniture if line not in lines)
            n["joins"] += len(want.joins)
            n["joins_ok"] += sum(1 for w in want.joins if got_words[w.lower()] > 0)
            if want.order:
                ok, pairs = _order_score(want.order, got["text"])
                n["order_ok"] += ok
                n["order_pairs"] += pairs
            if sum(body.values()) >= LANGUAGE_MIN_WORDS:
                n["language_pages"] += 1
                languages = out.get("page_languages") or []
                n["language_ok"] += k < len(languages) and languages[k] == want.language
        if doc.labels:
            top = [k["text"] for k in out["keyphrases"][:TOP_KEYPHRASES]]
            n["labels"] += len(doc.labels)
            n["labels_hit"] += sum(1 for label in doc.labels if label in top)
            n["top_phrases"] += len(top)
            n["top_one_word"] += sum(1 for phrase in top if " " not in phrase)
    return _figures(n, failed)


def _figures(n: Counter[str], failed: list[str]) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "documents": n["documents"],
        "failed": failed,
        "pages_emptied": n["pages_emptied"],
        "body_recall": ratio(n["body_found"], n["body_words"]),
        "furniture_precision": ratio(n["removed_right"], n["removed_lines"]),
        "furniture_recall": ratio(n["furniture_gone"], n["furniture_lines"]),
        "hyphen_joins": ratio(n["joins_ok"], n["joins"]),
        "two_column_order": ratio(n["order_ok"], n["order_pairs"]),
        "language_accuracy": ratio(n["language_ok"], n["language_pages"]),
        "document_language_accuracy": ratio(n["language_docs_ok"], n["documents"]),
        "keyphrase_label_hits": ratio(n["labels_hit"], n["labels"]),
        "keyphrase_one_word_share": ratio(n["top_one_word"], n["top_phrases"]),
        "counts": {
            k: n[k]
            for k in ("body_words", "furniture_lines", "removed_lines", "joins", "language_pages")
        },
    }
    figures["targets_met"] = {
        name: figures[name] is not None and figures[name] >= target
        for name, target in TARGETS.items()
    }
    return figures


def measure(
    paths: list[Path], model: str, pool_size: int = 2, extractor: Extractor = Extractor.PYPDF
) -> list[dict[str, Any]]:
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(
        pool_size, mp_context=ctx, initializer=_init, initargs=(model, extractor)
    ) as pool:
        return list(pool.map(_run, [str(p) for p in paths]))


def run(
    model: str,
    pool_size: int = 2,
    scale: int = 1,
    folder: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
    labelled: bool = True,
    extractor: Extractor = Extractor.PYPDF,
) -> dict[str, Any]:
    """Build the documents, run them through the pipeline, score them."""
    folder = folder or Path(tempfile.mkdtemp(prefix="tori-quality-"))
    truth = docs.quality_set(folder / "quality", scale)
    if labelled:  # the keyphrase labels
        truth += docs.labelled_set(folder / "labelled")
    pages = sum(len(d.pages) for d in truth)
    log(f"quality: {len(truth)} generated documents, {pages} pages; model {model}")
    outputs = measure([d.path for d in truth if d.path], model, max(1, pool_size), extractor)
    figures: dict[str, Any] = {"extractor": extractor}
    figures.update(evaluate(truth, outputs))
    figures["pages"] = pages
    figures["ligature_font"] = docs.font_path() is not None
    figures["targets"] = TARGETS
    return figures
