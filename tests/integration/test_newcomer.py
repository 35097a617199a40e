"""A newcomer's first hour, in-process: a refused file among several is named."""

from __future__ import annotations

from tests.helpers import Api
from tests.pdfs import prose_pdf


async def test_a_refused_file_among_several_is_named(api: Api) -> None:
    files = [
        ("file", ("good.pdf", prose_pdf(1), "application/pdf")),
        ("file", ("notes.txt", b"just text, no pdf header at all", "text/plain")),
    ]
    r = await api.post("/jobs", files=files)
    assert r.status_code == 415 and "notes.txt" in r.json()["error"]["message"]
