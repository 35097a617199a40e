"""Structured output through a real server: blocks in the stored result, the Markdown
endpoint, section-aware chunks (heading paths, a table split by rows with its header
repeated), and the blocks of a scanned page (the OCR engine's own paragraphs)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tori_ingest.bench import scans

from ..helpers import StartServer, cli
from ..pdfs import PROSE, Doc

ROWS = [["Item", "Qty", "Price"]] + [[f"Part {i}", str(i), f"{i}.50"] for i in range(1, 19)]
TITLE, MARKETS, PARTS, OUTLOOK = "Quarterly Review", "1 Markets", "1.1 Parts", "2 Outlook"


def report() -> bytes:
    doc = Doc()
    doc.text(TITLE, size=22, bold=True)
    doc.text(MARKETS, size=16, bold=True)
    doc.paragraph(" ".join(PROSE))
    doc.lines(["- First point", "- Second point"])
    doc.gap()
    doc.text(PARTS, size=13, bold=True)
    doc.ruled_table(ROWS)
    doc.text(OUTLOOK, size=16, bold=True)
    doc.paragraph(PROSE[3])
    return doc.output()


async def test_blocks_markdown_and_chunks_that_follow_sections(start_server: StartServer) -> None:
    srv = await start_server(TORI_CHUNK_WORDS="60")
    job_id = srv.upload(report(), "report.pdf").json()["job_id"]
    assert (await srv.wait_job(job_id))["status"] == "succeeded"
    result = srv.client.get(f"/jobs/{job_id}/result").json()

    blocks = result["blocks"]
    assert [(b["type"], b["text"], b["level"]) for b in blocks if b["type"] != "table"] == [
        ("title", TITLE, None),
        ("heading", MARKETS, 1),
        ("paragraph", " ".join(PROSE), None),
        ("list_item", "- First point", None),
        ("list_item", "- Second point", None),
        ("heading", PARTS, 2),
        ("heading", OUTLOOK, 1),
        ("paragraph", PROSE[3], None),
    ]
    assert [b["rows"] for b in blocks if b["type"] == "table"] == [ROWS]
    assert all(b["page"] == 1 and len(b["bbox"]) == 4 for b in blocks)
    assert TITLE in result["pages"][0]["text"]  # the page text of before, unchanged
    assert result["timings_ms"]["layout"] > 0

    md = srv.client.get(f"/jobs/{job_id}/result", params={"format": "markdown"})
    assert md.status_code == 200
    assert md.headers["content-type"] == "text/markdown; charset=utf-8"
    assert md.text.startswith(f"<!-- page 1 -->\n\n# {TITLE}\n\n## {MARKETS}\n\n{PROSE[0]} ")
    assert "\n\n- First point\n- Second point\n\n" in md.text
    assert f"### {PARTS}\n\n| Item | Qty | Price |\n| --- | --- | --- |\n| Part 1 | 1 | 1.50 |" in (
        md.text
    )
    assert md.text.endswith(f"## {OUTLOOK}\n\n{PROSE[3]}\n")

    chunks = result["chunks"]
    assert all(c["headings"][0] == TITLE for c in chunks)
    sections = [c["headings"][1] for c in chunks]
    assert sections == sorted(sections) and set(sections) == {MARKETS, OUTLOOK}  # no crossing
    assert all(c["words"] == len(c["text"].split()) <= 60 for c in chunks)
    pieces = [c for c in chunks if "| Part " in c["text"]]
    assert len(pieces) >= 2 and all(c["headings"] == [TITLE, MARKETS, PARTS] for c in pieces)
    assert all("| Item | Qty | Price |\n| --- | --- | --- |" in c["text"] for c in pieces)
    rows = [ln for c in pieces for ln in c["text"].splitlines() if ln.startswith("| Part ")]
    assert rows == [f"| Part {i} | {i} | {i}.50 |" for i in range(1, 19)]  # each row once


async def test_a_scanned_page_gets_blocks_from_the_ocr_engine(start_server: StartServer) -> None:
    srv = await start_server()
    doc = Doc()
    doc.paragraph(" ".join(PROSE))
    doc.paragraph(PROSE[1] + " " + PROSE[2])
    scan = scans.image_pdf([scans.render(doc.output(), 150)[0]])
    job_id = srv.upload(scan, "scan.pdf").json()["job_id"]
    assert (await srv.wait_job(job_id))["status"] == "succeeded"
    result = srv.client.get(f"/jobs/{job_id}/result").json()
    assert result["pages"][0]["source"] == "ocr"
    blocks = result["blocks"]
    assert [b["type"] for b in blocks] == ["paragraph", "paragraph"]
    for block, truth in zip(blocks, [" ".join(PROSE), PROSE[1] + " " + PROSE[2]], strict=True):
        hit, total = scans.word_recall(truth, block["text"])
        assert hit / total >= 0.95, block["text"]
        x0, y0, x1, y1 = block["bbox"]
        assert 40 < x0 < x1 < 560 and 40 < y0 < y1 < 250  # where the text sits, in points
    assert blocks[0]["bbox"][3] < blocks[1]["bbox"][1]  # in reading order
    md = srv.client.get(f"/jobs/{job_id}/result", params={"format": "markdown"}).text
    assert md.startswith("<!-- page 1 -->\n\nAda Lovelace")


async def test_submit_saves_each_result_in_the_format_asked(
    start_server: StartServer, tmp_path: Path
) -> None:
    srv = await start_server()
    source = tmp_path / "report.pdf"
    source.write_bytes(report())
    out = tmp_path / "results"
    args = ("submit", str(source), "--url", srv.base, "--save", str(out), "--format", "markdown")
    done = await asyncio.to_thread(cli, *args, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.name for p in out.iterdir()] == ["report.pdf.md"]
    saved = (out / "report.pdf.md").read_text()
    assert saved.startswith(f"<!-- page 1 -->\n\n# {TITLE}\n\n## {MARKETS}\n\n")
