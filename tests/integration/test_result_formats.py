"""The stored result read back three ways (JSON, text, Markdown) from results written into the
database directly (no worker here): the large arrays stream after the summary, and a result
stored before structured output existed still reads as Markdown."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from tests.helpers import Api, execute
from tests.pdfs import make_pdf

PAGES = [
    {"number": 1, "text": "First paragraph.\n\nSecond paragraph.", "chars": 35},
    {"number": 2, "text": "# not a heading", "chars": 15},
]


async def stored(api: Api, result: dict[str, Any]) -> str:
    """A job that succeeded with `result` (written as a worker would store it)."""
    job_id = (await api.upload(make_pdf([uuid.uuid4().hex]))).json()["job_id"]
    await execute(
        api.db_url,
        "UPDATE tori_jobs SET status = 'succeeded', finished_at = now(), pages_total = 2"
        " WHERE id = $1",
        uuid.UUID(job_id),
    )
    body = orjson.dumps({"job_id": job_id, **result}).decode()
    await execute(
        api.db_url, "INSERT INTO tori_results VALUES ($1, $2::jsonb)", uuid.UUID(job_id), body
    )
    return job_id


async def test_arrays_come_after_the_summary_each_whole(api: Api) -> None:
    blocks = [
        {"type": "paragraph", "text": f"b{i}", "page": 1, "bbox": [0, 0, 1, 1]} for i in range(450)
    ]
    chunks = [{"text": "c", "page_start": 1, "page_end": 1, "headings": [], "words": 1}]
    job_id = await stored(
        api, {"stats": {"words": 3}, "blocks": blocks, "chunks": chunks, "pages": PAGES}
    )
    raw = (await api.get(f"/jobs/{job_id}/result")).content
    assert raw.startswith(f'{{"job_id" : "{job_id}"'.encode())  # json_build_object's spacing
    assert (
        raw.index(b'"stats"')
        < raw.index(b'"blocks"')
        < raw.index(b'"chunks"')
        < raw.index(b'"pages"')
    )
    body = orjson.loads(raw)  # 450 blocks: three batches of the stream, joined into one array
    assert body["blocks"] == blocks and body["chunks"] == chunks and body["pages"] == PAGES


async def test_a_result_from_before_blocks_reads_as_markdown_of_its_pages(api: Api) -> None:
    job_id = await stored(api, {"stats": {"words": 5}, "chunks": [], "pages": PAGES})
    md = await api.get(f"/jobs/{job_id}/result", params={"format": "markdown"})
    assert md.status_code == 200 and md.headers["content-type"] == "text/markdown; charset=utf-8"
    assert md.text == (
        "<!-- page 1 -->\n\nFirst paragraph.\n\nSecond paragraph.\n\n"
        "<!-- page 2 -->\n\n\\# not a heading\n"
    )
    text = await api.get(f"/jobs/{job_id}/result", params={"format": "text"})
    assert text.text == "First paragraph.\n\nSecond paragraph.\f# not a heading"
    assert "blocks" not in (await api.get(f"/jobs/{job_id}/result")).json()


async def test_an_unknown_format_is_a_bad_request(api: Api) -> None:
    job_id = await stored(api, {"pages": PAGES})
    r = await api.get(f"/jobs/{job_id}/result", params={"format": "html"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
