"""pypdf against PDFium on a folder of PDFs with no known text: speed, and proxies of quality.

Without ground truth (the real-world corpus), each extractor is scored by what a reader of
its text would notice: pages with any text, words, words that ran together (a "word" of 25+
letters: a missing space) or fell apart (share of one-letter words: spaces inside words), and
how many of the other extractor's words it also has (agreement both ways). On the generated
documents `bench --quality --extractor X` scores both against the exact text instead.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tori_ingest.core.errors import JobError
from tori_ingest.core.vocab import Extractor
from tori_ingest.pipeline import clean, extract

_WORD = re.compile(r"[^\W\d_]+")
RUN_TOGETHER = 25


def _words(pages: list[str]) -> Counter[str]:
    return Counter(w.lower() for page in pages for w in _WORD.findall(clean.clean_page(page)))


def compare(paths: list[Path]) -> dict[str, Any]:
    """Per extractor: CPU seconds and pages/s of extraction alone (one process), and quality."""
    texts: dict[Extractor, list[Counter[str]]] = {e: [] for e in Extractor}
    figures: dict[str, Any] = {}
    for extractor in Extractor:
        pages = with_text = 0
        started = time.process_time()
        raw: list[list[str]] = []
        for path in paths:
            try:
                got = extract.extract(path.read_bytes(), extractor=extractor).pages
            except JobError:
                got = []
            raw.append(got)
        seconds = time.process_time() - started
        for got in raw:
            pages += len(got)
            with_text += sum(1 for page in got if _WORD.search(page))
            texts[extractor].append(_words(got))
        words = sum(sum(c.values()) for c in texts[extractor])
        long_words = sum(
            n for w in texts[extractor] for k, n in w.items() if len(k) >= RUN_TOGETHER
        )
        one_letter = sum(n for w in texts[extractor] for k, n in w.items() if len(k) == 1)
        figures[extractor] = {
            "cpu_s": round(seconds, 2),
            "pages_per_s": round(pages / seconds, 1) if seconds else None,
            "pages_with_text": with_text,
            "words": words,
            "run_together_per_1k_words": round(long_words * 1000 / words, 2) if words else 0,
            "one_letter_per_1k_words": round(one_letter * 1000 / words, 1) if words else 0,
        }
    for a, b in ((Extractor.PYPDF, Extractor.PDFIUM), (Extractor.PDFIUM, Extractor.PYPDF)):
        found = total = 0
        for mine, other in zip(texts[a], texts[b], strict=True):
            total += sum(other.values())
            found += sum(min(n, mine[w]) for w, n in other.items())
        figures[a]["has_words_of_" + str(b)] = round(found / total, 3) if total else None
    return figures
