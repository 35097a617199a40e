"""Robustness on 114 real-world PDFs chosen to break parsers (../shared/corpus/pdfjs).

Every file must end `succeeded` or `failed` with a typed code: none stuck, no 5xx, and page
counts must match what pypdf itself reads from the file.
"""

import collections
import io

import pytest
from pypdf import PdfReader

from tests.helpers import CORPUS, Server, StartServer, wait_for
from tori_ingest.core.vocab import ErrorCode

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"real-world corpus not found at {CORPUS}"
)


def expected_pages(data: bytes) -> int | None:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            return None
        return len(reader.pages)
    except Exception:
        return None


async def test_every_corpus_pdf_ends_typed(start_server: StartServer) -> None:
    srv: Server = await start_server(TORI_SPACY_MODEL="auto", TORI_JOB_TIMEOUT_S="120")
    submitted: dict[str, bytes] = {}
    for path in sorted(CORPUS.glob("*.pdf")):
        data = path.read_bytes()
        r = srv.upload(data, path.name)
        assert r.status_code in (202, 415), (path.name, r.status_code, r.text)
        if r.status_code == 202:
            submitted[r.json()["job_id"]] = data
        else:
            assert r.json()["error"]["code"] == "unsupported_type", path.name
    assert len(submitted) >= 100

    def all_ended() -> list[dict] | None:
        jobs = [srv.status(i) for i in submitted]
        return jobs if all(j["status"] in ("succeeded", "failed") for j in jobs) else None

    jobs = await wait_for(all_ended, timeout=600, what="every corpus job to end")
    outcomes = collections.Counter(j["error"]["code"] if j["error"] else "ok" for j in jobs)
    assert outcomes["ok"] >= len(jobs) // 2, outcomes
    assert set(outcomes) - {"ok"} <= {code.value for code in ErrorCode}, outcomes
    assert outcomes[ErrorCode.INTERNAL] == 0, outcomes
    for job in jobs:
        if job["status"] == "succeeded":
            assert job["pages_total"] == expected_pages(submitted[job["job_id"]]), job
            result = srv.client.get(f"/jobs/{job['job_id']}/result")
            assert result.status_code == 200
            assert len(result.json()["pages"]) == job["pages_total"]
    assert srv.server_errors() == []
