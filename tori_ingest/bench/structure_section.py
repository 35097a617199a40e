"""`tori-ingest bench --quality`, structure section: run it and show it.

`run` scores our layout analysis (`pipeline.layout.document_blocks`) and the peer's Markdown
(`bench.peers`, read by `structure_markdown`) on the generated documents of `structure_docs`,
and with a corpus on the hand-listed headings of real-world files (`structure_truth.json`);
`render` prints the section. The metrics themselves are in `structure_quality`.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tori_ingest.bench.structure_markdown import markdown_blocks
from tori_ingest.bench.structure_quality import (
    Blocks,
    count_document,
    figures,
    ratio,
    real_world_counts,
)

TRUTH_FILE = Path(__file__).with_name("structure_truth.json")
SUMMARY_KEYS = (
    "heading_precision",
    "heading_recall",
    "heading_f1",
    "level_agreement",
    "list_recall",
    "table_cells_ruled",
    "table_cells_unruled",
    "reading_order",
    "furniture_leaked",
)


def _ours() -> Callable[[bytes], Blocks]:
    """The product's layout analysis, imported only when the benchmark runs."""
    from tori_ingest.pipeline import layout

    found: Callable[[bytes], Blocks] | None = getattr(layout, "document_blocks", None)
    if found is None:  # where it lived before it moved to layout
        from tori_ingest.pipeline import structure

        found = structure.document_blocks
    return found


def _run_ours(data: bytes, reader: Callable[[bytes], Blocks]) -> Blocks | str:
    try:
        return reader(data)
    except Exception as exc:  # one failed document scores zero, it does not stop the run
        return f"{type(exc).__name__}: {exc}"


def _side(
    truths: list[tuple[str, Blocks, list[str]]], outputs: dict[str, Blocks | str]
) -> dict[str, Any]:
    """Micro-averaged figures and the per-document rows of one side (ours or the peer's)."""
    total: Counter[str] = Counter()
    rows = []
    failures = []
    for name, truth, furniture in truths:
        got = outputs.get(name, [])
        if isinstance(got, str):
            failures.append(f"{name}: {got}")
            got = []
        n = count_document(truth, got, furniture)
        total.update(n)
        row = {"document": name, **figures(n), "blocks": len(got)}
        rows.append(row)
    return {**figures(total), "failures": failures, "documents": rows}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_truth(path: Path = TRUTH_FILE) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _real_world_side(
    files: list[tuple[Path, dict[str, Any], int]], outputs: dict[str, Blocks | str]
) -> dict[str, Any]:
    rows = []
    n: Counter[str] = Counter()
    for path, entry, pages in files:
        got = outputs.get(str(path), [])
        error = got if isinstance(got, str) else None
        blocks: Blocks = [] if isinstance(got, str) else got
        row = real_world_counts(entry["headings"], blocks, pages)
        for key in ("headings_truth", "headings_predicted", "headings_matched"):
            n[key] += row[key]
        n["pages"] += pages
        rows.append({"file": path.name, **row, **({"error": error} if error else {})})
    return {
        "heading_recall": ratio(n["headings_matched"], n["headings_truth"]),
        "heading_precision": ratio(n["headings_matched"], n["headings_predicted"]),
        "headings_per_page": round(n["headings_predicted"] / n["pages"], 2) if n["pages"] else None,
        "files": rows,
    }


def _page_count(data: bytes) -> int:
    import io

    import pypdf

    try:
        return len(pypdf.PdfReader(io.BytesIO(data)).pages)
    except Exception:
        return 0


def run(
    corpus: Path | None = None,
    peers: bool = True,
    log: Callable[[str], None] = lambda _: None,
    folder: Path | None = None,
    peer_path: Path | None = None,
) -> dict[str, Any]:
    """The structure section: generated documents (ours and the peer's figures), and with
    `corpus` the hand-listed headings of the real-world files found in it."""
    from tori_ingest.bench import peers as peer_tools
    from tori_ingest.bench import structure_docs

    folder = folder or Path(tempfile.mkdtemp(prefix="tori-structure-"))
    written = structure_docs.write_set(folder / "structure")
    truths = [(doc.name, doc.truth, doc.furniture) for doc, _ in written]
    log(f"structure: {len(written)} generated documents, {sum(d.pages for d, _ in written)} pages")
    section: dict[str, Any] = {"documents": [doc.name for doc, _ in written]}

    real: list[tuple[Path, dict[str, Any], int]] = []
    if corpus is not None:
        hand = load_truth()["files"]
        for path in sorted(corpus.glob("*.pdf")):
            entry = hand.get(sha256(path))
            if entry is not None:
                real.append((path, entry, _page_count(path.read_bytes())))
        log(f"structure: {len(real)} hand-listed real-world files in {corpus}")

    try:
        reader = _ours()
    except ImportError as exc:
        section["ours"] = {"skipped": f"document_blocks is not available ({exc})"}
    else:
        ours = {doc.name: _run_ours(doc.data, reader) for doc, _ in written}
        section["ours"] = _side(truths, ours)
        if real:
            mine = {str(p): _run_ours(p.read_bytes(), reader) for p, _, _ in real}
            section["ours"]["real_world"] = _real_world_side(real, mine)

    if not peers:
        section["peer"] = {"skipped": "--no-peers"}
        return section
    try:
        python = peer_tools.ensure_peer_venv(peer_path or peer_tools.DEFAULT_PATH, log=log)
    except peer_tools.PeerUnavailable as exc:
        section["peer"] = {"skipped": str(exc)}
        return section
    paths = [path for _, path in written] + [p for p, _, _ in real]
    for key, layout in (("peer", True), ("peer_legacy", False)):
        try:
            markdown = peer_tools.peer_markdown(paths, python=python, layout=layout)
        except peer_tools.PeerUnavailable as exc:
            section[key] = {"skipped": str(exc)}
            continue
        outputs: dict[str, Blocks | str] = {
            doc.name: markdown_blocks(markdown.get(str(path), "")) for doc, path in written
        }
        engine = "layout engine" if layout else "legacy engine"
        section[key] = {"name": f"{peer_tools.PEER_NAME} ({engine})", **_side(truths, outputs)}
        if real:
            got: dict[str, Blocks | str] = {
                str(p): markdown_blocks(markdown.get(str(p), "")) for p, _, _ in real
            }
            section[key]["real_world"] = _real_world_side(real, got)
    return section


def render(section: dict[str, Any]) -> str:
    """The section as a small text table (ours against the peer), then per-document rows."""
    sides = [(name, section[name]) for name in ("ours", "peer", "peer_legacy") if name in section]
    lines = ["structure (generated documents, micro-averaged)"]
    lines.append(f"  {'figure':<22}" + "".join(f"{name:>12}" for name, _ in sides))
    for key in SUMMARY_KEYS:
        cells = []
        for _, side in sides:
            value = side.get(key) if "skipped" not in side else None
            cells.append(f"{'-' if value is None else format(value, '.3f'):>12}")
        lines.append(f"  {key:<22}" + "".join(cells))
    for name, side in sides:
        if "skipped" in side:
            lines.append(f"  {name}: skipped ({side['skipped']})")
            continue
        lines.append(f"  {name} per document: heading P/R, levels, lists, cells, order")
        for row in side.get("documents", []):
            values = [
                row[k]
                for k in (
                    "heading_precision",
                    "heading_recall",
                    "level_agreement",
                    "list_recall",
                    "table_cells",
                    "reading_order",
                )
            ]
            shown = " ".join("   -" if v is None else f"{v:.2f}" for v in values)
            lines.append(f"    {row['document']:<22} {shown}")
        for failure in side.get("failures", []):
            lines.append(f"    failed: {failure}")
        real = side.get("real_world")
        if real:
            lines.append(
                f"  {name} real-world headings: recall {real['heading_recall']}, "
                f"precision {real['heading_precision']}, per page {real['headings_per_page']}"
            )
            for row in real["files"]:
                lines.append(
                    f"    {row['file']:<28} {row['headings_matched']}/{row['headings_truth']} "
                    f"found, {row['headings_predicted']} predicted "
                    f"(max {row['max_headings_on_a_page']} on a page)"
                )
    return "\n".join(lines)
