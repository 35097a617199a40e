"""Text shapes that once made a pipeline step super-linear, and the check that none is now.

A whitespace-free run of punctuation ("=====", "______", "))))", dot leaders, formulas set
without spaces: what MathML converted from LaTeX extracts to) made spaCy's tokenizer
quadratic (8,000 "=" took 3.3 s of NLP, 20,000 would take about 80 s): a crafted one-page PDF
could burn a pool process for minutes. `per_char_cost` runs each shape at two sizes through
cleaning and NLP and reports the CPU time per character; the bench checks it against
US_PER_CHAR_BOUND and that it does not grow with the size (GROWTH_BOUND).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tori_ingest.pipeline import clean, nlp

# Ordinary prose costs about 10 µs a character (NER); one token per character (")))") about
# 100. Before the fix the ")" run cost 850 µs a character at 8,000 and grew linearly with n.
US_PER_CHAR_BOUND = 250.0
GROWTH_BOUND = 1.5  # cost per character at 4n ÷ at n: about 1 when linear, 4 when quadratic
SIZES = (2_000, 8_000)

SHAPES: dict[str, Callable[[int], str]] = {
    "equals run": lambda n: "=" * n,
    "underscore blanks": lambda n: "Name: " + "_" * (n - 6),
    "closing parens": lambda n: "f(x" + ")" * (n - 3),
    "ellipsis leaders": lambda n: "Contents " + "\u2026" * (n - 9),
    "formula without spaces": lambda n: ("(a+b)=\u2211x\u1d62\u00b2/(n\u22121)" * n)[:n],
    "one symbol a line": lambda n: ("x\n=\n(\n" * n)[:n],
}


def per_char_cost(language: Any, sizes: tuple[int, int] = SIZES) -> dict[str, dict[str, float]]:
    """µs of CPU per character (clean + annotate) of every shape at both sizes."""
    out: dict[str, dict[str, float]] = {}
    for name, make in SHAPES.items():
        costs = []
        for size in sizes:
            text = make(size)
            started = time.process_time()
            pages = [page.text for page in clean.clean_pages([text])]
            nlp.annotate(language, pages)
            costs.append((time.process_time() - started) * 1e6 / size)
        out[name] = {
            "us_per_char": round(max(costs), 1),
            "growth": round(costs[1] / costs[0], 2) if costs[0] else 0.0,
        }
    return out


def check(costs: dict[str, dict[str, float]]) -> bool:
    """True when every shape is within the bound and linear."""
    return all(
        c["us_per_char"] <= US_PER_CHAR_BOUND and c["growth"] <= GROWTH_BOUND
        for c in costs.values()
    )
