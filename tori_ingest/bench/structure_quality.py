"""The structure benchmark's metrics: predicted blocks against known structure.

Figures, per document and micro-averaged over documents (counts summed, then divided):

* headings: precision, recall and F1 of predicted `title`/`heading` blocks against the truth's,
  matched one to one by normalised text (numbering kept, trailing punctuation dropped) and by
  page when both sides have one;
* level agreement: among matched headings, the share whose level RANK equals the truth's (the
  distinct levels of each side sorted, so 2, 3, 4 for 1, 2, 3 agrees); a title only agrees with
  a title;
* list recall: truth list items found as predicted `list_item` blocks (marker ignored);
* table cells, ruled and unruled apart: each truth table against its best predicted table on the
  same page, cells equal at the same (row, column) over the union of both shapes; a missed table
  scores 0 for all its cells;
* reading order: each truth paragraph, heading and list item is found as the first predicted
  block containing its first eight words; the share of consecutive truth pairs (both found)
  whose predicted positions do not go backwards.

The metrics only: `structure_markdown` turns a peer's Markdown into blocks so it is scored the
same way, and `structure_section` runs the section (ours: `pipeline.layout.document_blocks`;
the peer: `bench.peers`) and renders it.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

Block = dict[str, Any]
Blocks = list[Block]

HEADING_TYPES = ("title", "heading")
ORDER_TYPES = ("title", "heading", "paragraph", "list_item")
KEY_WORDS = 8

_JOIN = re.compile(r"(?<=\w)[-\u00ad\ufffe\u2010\u2011]\s*(?=\w)")  # hyphens, wrapped or not
_MARKER = re.compile(
    r"^\s*(?:[\u2022\u00b7\u25aa\u25cf\u25e6\u2013\u2014*+-]|\(?\d{1,3}[.)]|\(?[a-zA-Z][.)])\s+"
)
_WORD = re.compile(r"\w+")


# --- normalising -----------------------------------------------------------------------------


def normalize(text: str) -> str:
    """Casefolded, NFKC, hyphens inside words dropped (wrapped or not), whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).replace("\ufffe", "-")
    text = _JOIN.sub("", text)
    return " ".join(text.casefold().split())


def heading_key(text: str) -> str:
    """A heading's text for matching: numbering kept, trailing punctuation stripped."""
    return normalize(text).rstrip(" .:;,!?-\u2013\u2014")


def strip_marker(text: str) -> str:
    """Text without its leading bullet or number (twice: "- • item" from some converters)."""
    for _ in range(2):
        text = _MARKER.sub("", text, count=1)
    return text


def words(text: str) -> list[str]:
    return _WORD.findall(normalize(text))


def block_text(block: Block) -> str:
    text = str(block.get("text") or "")
    if not text and block.get("rows"):
        text = " ".join(str(cell) for row in block["rows"] for cell in row)
    return text


def _same_page(a: Block, b: Block) -> bool:
    return a.get("page") is None or b.get("page") is None or a["page"] == b["page"]


# --- the metrics -----------------------------------------------------------------------------


def match_headings(truth: Blocks, predicted: Blocks) -> list[tuple[Block, Block]]:
    """Truth headings paired one to one with predicted ones (same text, same page)."""
    want = [b for b in truth if b.get("type") in HEADING_TYPES]
    got = [b for b in predicted if b.get("type") in HEADING_TYPES]
    used = [False] * len(got)
    pairs = []
    for t in want:
        key = heading_key(block_text(t))
        for k, p in enumerate(got):
            if not used[k] and heading_key(block_text(p)) == key and _same_page(t, p):
                used[k] = True
                pairs.append((t, p))
                break
    return pairs


def _ranks(levels: Iterable[Any]) -> dict[Any, int]:
    return {level: k for k, level in enumerate(sorted({x for x in levels if x is not None}))}


def level_counts(pairs: list[tuple[Block, Block]]) -> tuple[int, int]:
    """(matched headings whose level rank agrees, matched headings).

    Ranks are taken over the matched truth headings (titles apart) on each side, so predicted
    levels 2, 3, 4 for truth levels 1, 2, 3 agree, and a title taken for a heading costs that
    one heading, not the ranks of all the others.
    """
    sections = [(t, p) for t, p in pairs if t.get("type") == "heading"]
    truth_rank = _ranks(t.get("level") for t, _ in sections)
    got_rank = _ranks(p.get("level") for _, p in sections if p.get("type") == "heading")
    ok = 0
    for t, p in pairs:
        if t.get("type") == "title" or p.get("type") == "title":
            ok += t.get("type") == p.get("type")
        elif t.get("level") is not None and p.get("level") is not None:
            ok += truth_rank[t["level"]] == got_rank[p["level"]]
    return ok, len(pairs)


def furniture_counts(furniture: Sequence[str], predicted: Blocks) -> tuple[int, int]:
    """(furniture lines found inside predicted blocks, furniture lines): lower is better."""
    want = Counter(" ".join(words(line)) for line in furniture)
    texts = [" " + " ".join(words(block_text(b))) + " " for b in predicted]
    leaked = 0
    for key, count in want.items():
        seen = sum(text.count(f" {key} ") for text in texts)
        leaked += min(seen, count)
    return leaked, sum(want.values())


def list_counts(truth: Blocks, predicted: Blocks) -> tuple[int, int]:
    """(truth list items found as predicted list items, truth list items)."""
    want = [normalize(strip_marker(b["text"])) for b in truth if b.get("type") == "list_item"]
    got = Counter(
        normalize(strip_marker(block_text(b))) for b in predicted if b.get("type") == "list_item"
    )
    found = 0
    for key in want:
        if got[key] > 0:
            got[key] -= 1
            found += 1
    return found, len(want)


def table_score(
    truth_rows: Sequence[Sequence[str]], rows: Sequence[Sequence[str]]
) -> tuple[int, int]:
    """(truth cells equal at the same place, cells of the union of both shapes)."""
    n_rows = max(len(truth_rows), len(rows))
    n_cols = max((len(r) for r in [*truth_rows, *rows]), default=0)
    right = 0
    for r, truth_row in enumerate(truth_rows):
        for c, cell in enumerate(truth_row):
            if r < len(rows) and c < len(rows[r]) and normalize(cell) == normalize(rows[r][c]):
                right += 1
    return right, n_rows * n_cols


def table_counts(truth: Blocks, predicted: Blocks) -> dict[str, list[int]]:
    """Per kind ("ruled", "unruled", "all"): [cells right, cells counted, tables, tables found]."""
    out: dict[str, list[int]] = {k: [0, 0, 0, 0] for k in ("ruled", "unruled", "all")}
    candidates = [b for b in predicted if b.get("type") == "table" and b.get("rows")]
    used: set[int] = set()
    for t in (b for b in truth if b.get("type") == "table"):
        best: tuple[float, int, int, int] | None = None
        for k, p in enumerate(candidates):
            if k in used or not _same_page(t, p):
                continue
            right, total = table_score(t["rows"], p["rows"])
            score = right / total if total else 0.0
            if best is None or score > best[0]:
                best = (score, right, total, k)
        if best is not None and best[1] > 0:
            used.add(best[3])
            right, total, found = best[1], best[2], 1
        else:
            right, total, found = 0, sum(len(r) for r in t["rows"]), 0
        kinds = ["all"]
        if "ruled" in t:
            kinds.append("ruled" if t["ruled"] else "unruled")
        for kind in kinds:
            out[kind][0] += right
            out[kind][1] += total
            out[kind][2] += 1
            out[kind][3] += found
    return out


def order_positions(truth: Blocks, predicted: Blocks) -> list[int]:
    """For each truth paragraph/heading/list item: the first predicted block holding its first
    eight words, or -1."""
    texts = [" " + " ".join(words(strip_marker(block_text(b)))) + " " for b in predicted]
    out = []
    for t in truth:
        if t.get("type") not in ORDER_TYPES:
            continue
        key = " ".join(words(strip_marker(t["text"]))[:KEY_WORDS])
        out.append(next((k for k, text in enumerate(texts) if f" {key} " in text), -1))
    return out


def order_counts(truth: Blocks, predicted: Blocks) -> tuple[int, int, int, int]:
    """(pairs in order, pairs with both found, truth blocks found, truth blocks)."""
    positions = order_positions(truth, predicted)
    ok = pairs = 0
    for a, b in pairwise(positions):
        if a >= 0 and b >= 0:
            pairs += 1
            ok += a <= b
    return ok, pairs, sum(1 for p in positions if p >= 0), len(positions)


def count_document(truth: Blocks, predicted: Blocks, furniture: Sequence[str] = ()) -> Counter[str]:
    """Every count of one document (summed over documents for the micro averages)."""
    n: Counter[str] = Counter()
    n["furniture_leaked"], n["furniture_lines"] = furniture_counts(furniture, predicted)
    pairs = match_headings(truth, predicted)
    n["headings_truth"] = sum(1 for b in truth if b.get("type") in HEADING_TYPES)
    n["headings_predicted"] = sum(1 for b in predicted if b.get("type") in HEADING_TYPES)
    n["headings_matched"] = len(pairs)
    n["levels_ok"], n["levels_n"] = level_counts(pairs)
    n["list_found"], n["list_items"] = list_counts(truth, predicted)
    for kind, (right, total, tables, found) in table_counts(truth, predicted).items():
        n[f"cells_right_{kind}"] += right
        n[f"cells_{kind}"] += total
        n[f"tables_{kind}"] += tables
        n[f"tables_found_{kind}"] += found
    n["order_ok"], n["order_pairs"], n["order_found"], n["order_blocks"] = order_counts(
        truth, predicted
    )
    return n


def ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def figures(n: Counter[str]) -> dict[str, Any]:
    """The benchmark's figures from (summed) counts."""
    precision = ratio(n["headings_matched"], n["headings_predicted"])
    recall = ratio(n["headings_matched"], n["headings_truth"])
    f1 = (
        round(2 * precision * recall / (precision + recall), 4)
        if precision and recall
        else (0.0 if precision is not None and recall is not None else None)
    )
    return {
        "heading_precision": precision,
        "heading_recall": recall,
        "heading_f1": f1,
        "level_agreement": ratio(n["levels_ok"], n["levels_n"]),
        "list_recall": ratio(n["list_found"], n["list_items"]),
        "table_cells": ratio(n["cells_right_all"], n["cells_all"]),
        "table_cells_ruled": ratio(n["cells_right_ruled"], n["cells_ruled"]),
        "table_cells_unruled": ratio(n["cells_right_unruled"], n["cells_unruled"]),
        "tables_found": ratio(n["tables_found_all"], n["tables_all"]),
        "reading_order": ratio(n["order_ok"], n["order_pairs"]),
        "order_blocks_found": ratio(n["order_found"], n["order_blocks"]),
        "furniture_leaked": ratio(n["furniture_leaked"], n["furniture_lines"]),
    }


def score(truth: Blocks, predicted: Blocks) -> dict[str, Any]:
    """The figures of one document."""
    return figures(count_document(truth, predicted))


def score_all(pairs: Iterable[tuple[Blocks, Blocks]]) -> dict[str, Any]:
    """Micro-averaged figures over documents: (truth, predicted) per document."""
    total: Counter[str] = Counter()
    for truth, predicted in pairs:
        total.update(count_document(truth, predicted))
    return figures(total)


def real_world_counts(
    expected: list[dict[str, Any]], predicted: Blocks, pages: int
) -> dict[str, Any]:
    """Heading recall and precision against the hand list (strict), and headings per page."""
    truth = [{"type": "heading", "text": h["text"], "page": h.get("page")} for h in expected]
    got = [b for b in predicted if b.get("type") in HEADING_TYPES]
    matched = len(match_headings(truth, got))
    per_page = Counter(int(b.get("page") or 0) for b in got)
    return {
        "headings_truth": len(truth),
        "headings_predicted": len(got),
        "headings_matched": matched,
        "heading_recall": ratio(matched, len(truth)),
        "heading_precision": ratio(matched, len(got)),
        "headings_per_page": round(len(got) / pages, 2) if pages else None,
        "max_headings_on_a_page": max(per_page.values(), default=0),
    }
