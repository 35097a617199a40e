"""Tenant isolation and bounded work, from a security review: dedup never crosses owners,
`GET /jobs?after=` is no existence oracle for another owner's jobs, erase leaves no trace of
the document on the job's row, and a text decompression bomb fails `too_large` instead of
taking its pool process down (SIGABRT: `worker_crashed`).

The bounds of the text are tested on the pure function with lowered caps (fast, exact sizes)
and once end to end with the real caps on a real server.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tori_ingest.core.errors import JobError
from tori_ingest.core.vocab import ErrorCode, Extractor
from tori_ingest.pipeline import extract, scan, textbound
from tori_ingest.store import views

from .conftest import ApiClient, Server, StartServer, fetchval, wait_for
from .pdfs import form_bomb, make_pdf, text_bomb, vector_page

TOKENS = "a:sa,b:sb"
A = {"Authorization": "Bearer sa"}
B = {"Authorization": "Bearer sb"}
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()  # callbacks need one


def unique_pdf() -> bytes:
    return make_pdf([f"Tenant text {uuid.uuid4().hex} for Ada Lovelace in London."])


@pytest.fixture(scope="module")
async def tenants(start_server: StartServer) -> AsyncIterator[Server]:
    """A real server (worker pool included) with two tenants, a and b."""
    yield await start_server(TORI_API_TOKENS=TOKENS)


def upload(srv: Server, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
    r = srv.client.post(
        "/jobs", files={"file": ("doc.pdf", data, "application/pdf")}, headers=headers
    )
    assert r.status_code == 202, r.text
    return r.json()


async def wait_job(srv: Server, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        body = srv.client.get(f"/jobs/{job_id}", headers=headers).json()
        return body if body["status"] in ("succeeded", "failed", "cancelled") else None

    return await wait_for(ended, 120, f"job {job_id} to end")


# --- 1. dedup within one owner -----------------------------------------------------------------


async def test_dedup_answers_only_from_the_same_owners_results(tenants: Server) -> None:
    data = unique_pdf()
    first = upload(tenants, data, A)
    assert not first["deduplicated"]
    assert (await wait_job(tenants, first["job_id"], A))["status"] == "succeeded"

    theirs = upload(tenants, data, B)  # the same bytes from another tenant: processed anew
    assert not theirs["deduplicated"]
    assert theirs["status"] == "queued"
    mine = upload(tenants, data, A)  # the same tenant again: answered from its own result
    assert mine["deduplicated"] and mine["status"] == "succeeded"

    done = await wait_job(tenants, theirs["job_id"], B)
    assert done["status"] == "succeeded" and not done["deduplicated"]
    # b's own result now answers b's next upload, and a's result still answers a's.
    assert upload(tenants, data, B)["deduplicated"]
    assert upload(tenants, data, A)["deduplicated"]


# --- 2. the listing's keyset anchor --------------------------------------------------------------


async def test_after_another_owners_job_answers_like_an_unknown_id(
    api_client: ApiClient,
) -> None:
    async with api_client(TORI_API_TOKENS=TOKENS) as api:
        for _ in range(2):  # b's jobs older than a's: an unfiltered anchor would list them
            assert (await api.post("/jobs", files=_file(), headers=B)).status_code == 202
        foreign = (await api.post("/jobs", files=_file(), headers=A)).json()["job_id"]

        def listing(after: str) -> Any:
            return api.get("/jobs", params={"after": after, "limit": 10}, headers=B)

        by_foreign, by_unknown = await listing(foreign), await listing(str(uuid.uuid4()))
        assert by_foreign.status_code == by_unknown.status_code == 200
        assert by_foreign.json() == by_unknown.json() == {"jobs": [], "next": None}

        # b's own ids still page (the anchor is filtered by owner, not dropped).
        own = (await api.get("/jobs", params={"limit": 1}, headers=B)).json()
        rest = (await listing(own["next"])).json()
        assert [j["job_id"] for j in rest["jobs"]] != [] and rest["next"] is None
        # a sees its own job and, anchored on it, nothing of b's.
        assert (
            await api.get("/jobs", params={"after": foreign}, headers=A)
        ).json() == by_unknown.json()


def _file() -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("doc.pdf", unique_pdf(), "application/pdf")}


# --- 3. erase scrubs the row ---------------------------------------------------------------------


async def test_erase_leaves_no_trace_of_the_document_on_the_row(api_client: ApiClient) -> None:
    async with api_client(TORI_WEBHOOK_SECRET=SECRET) as api:
        hook = "https://hooks.example.com/tori-erase"
        job_id = (await api.upload(unique_pdf(), callback_url=hook)).json()["job_id"]
        uid = uuid.UUID(job_id)
        # Cancelled first: the terminal state queues a webhook delivery holding the URL.
        assert (await api.delete(f"/jobs/{job_id}")).json()["status"] == "cancelled"
        assert (
            await fetchval(
                api.db_url, "SELECT url FROM tori_webhook_deliveries WHERE job_id = $1", uid
            )
            == hook
        )
        key = await fetchval(api.db_url, "SELECT storage_key FROM tori_jobs WHERE id = $1", uid)
        assert (api.storage / key).exists()

        erased = await api.delete(f"/jobs/{job_id}", params={"erase": "true"})
        assert erased.status_code == 200 and erased.json()["erased"] is True

        for column in ("sha256", "bytes", "storage_key", "callback_url"):
            value = await fetchval(api.db_url, f"SELECT {column} FROM tori_jobs WHERE id = $1", uid)
            assert value is None, column
        assert (
            await fetchval(
                api.db_url, "SELECT url FROM tori_webhook_deliveries WHERE job_id = $1", uid
            )
            == ""
        )
        assert not (api.storage / key).exists()

        # The bare row answers as an erased job did before: 410 expired, everywhere.
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/result", f"/jobs/{job_id}/file"):
            r = await api.get(path)
            assert r.status_code == 410, path
            assert r.json()["error"]["code"] == "expired"
        assert (await api.delete(f"/jobs/{job_id}", params={"erase": "true"})).status_code == 410
        assert job_id not in {j["job_id"] for j in (await api.get("/jobs")).json()["jobs"]}
        # Readers of the row cope with the NULLs (the CLI's `status` renders any row).
        view = views.view(await views.get(api.ctx.db, uid))
        assert (view.document.sha256, view.document.bytes) == ("", 0)


async def test_an_erased_document_is_never_a_dedup_source(tenants: Server) -> None:
    """The erased row keeps neither result nor hash: the same bytes again are processed anew."""
    data = unique_pdf()
    job_id = upload(tenants, data, A)["job_id"]
    assert (await wait_job(tenants, job_id, A))["status"] == "succeeded"
    erase = tenants.client.delete(f"/jobs/{job_id}", params={"erase": "true"}, headers=A)
    assert erase.status_code == 200
    assert not upload(tenants, data, A)["deduplicated"]


# --- 4. text decompression bombs -----------------------------------------------------------------

CAP = 50_000  # a lowered page cap: the bombs below stay small and fast


@pytest.mark.parametrize("extractor", list(Extractor))
def test_a_page_over_the_text_cap_fails_too_large_before_it_is_read(
    extractor: Extractor,
) -> None:
    under = extract.extract(text_bomb(CAP - 1000), extractor=extractor, max_page_text=CAP)
    assert len(under.pages[0]) == CAP - 1000
    with pytest.raises(JobError) as failed:
        extract.extract(text_bomb(CAP + 1000), extractor=extractor, max_page_text=CAP)
    assert failed.value.code is ErrorCode.TOO_LARGE
    assert "page 1" in failed.value.message


@pytest.mark.parametrize("extractor", list(Extractor))
def test_a_form_drawn_many_times_counts_every_draw(extractor: Extractor) -> None:
    """The page's own content is a few bytes per `Do`; the form's text counts per draw."""
    ok = extract.extract(form_bomb(1000, 40), extractor=extractor, max_page_text=CAP)
    assert len(ok.pages[0]) >= 40 * 1000
    with pytest.raises(JobError) as failed:
        extract.extract(form_bomb(1000, 60), extractor=extractor, max_page_text=CAP)
    assert failed.value.code is ErrorCode.TOO_LARGE


def test_the_document_text_cap_counts_every_page() -> None:
    pages = text_bomb(20_000, pages=3)
    assert len(extract.extract(pages, max_page_text=CAP, max_text=60_000).pages) == 3
    with pytest.raises(JobError) as failed:
        extract.extract(pages, max_page_text=CAP, max_text=50_000)
    assert failed.value.code is ErrorCode.TOO_LARGE
    assert "page 3" in failed.value.message


def test_a_large_drawing_with_little_text_is_not_refused() -> None:
    """A page of 3 MB of path operators (over the real 1M cap in bytes) shows one caption:
    only string operands count, so maps and CAD drawings still go through."""
    data = vector_page(3_000_000)
    for extractor in Extractor:
        assert extract.extract(data, extractor=extractor).pages[0] == "Only a caption."


def test_string_bytes_counts_strings_not_operators() -> None:
    content = b"BT (abc) Tj [(de) -120 (f\\)g)] TJ <414243> Tj ET 1 2 m 3 4 l S << /MCID 0 >> BDC"
    assert textbound.string_bytes(content, 1000) == len("abc)") + len("de)") + len("f\\)g)") + 3 + 1
    # inline image data is skipped as binary, whatever bytes it holds
    image = b"BI /W 4 /H 4 /BPC 8 /CS /G ID " + b"((((" * 1000 + b" EI Q"
    assert textbound.string_bytes(image, 10) == 1
    # an unclosed string runs to the end of the stream
    assert textbound.string_bytes(b"BT (" + b"A" * 500 + b" Tj ET", 10_000) == 506


async def test_a_400mb_text_bomb_ends_too_large_not_worker_crashed(tenants: Server) -> None:
    """The review's bomb: 1.6 MB of PDF, 400M characters of text on one page, real caps
    (TORI_MAX_MEMORY_MB 2048, 1M characters per page). PDFium used to abort the process."""
    bomb = text_bomb(400_000_000)
    assert len(bomb) < 2_000_000
    started = time.monotonic()
    job = await wait_job(tenants, upload(tenants, bomb, A)["job_id"], A)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "too_large", job["error"]
    assert time.monotonic() - started < 20
    # the pool survived: the next document is read as usual
    after = await wait_job(tenants, upload(tenants, unique_pdf(), A)["job_id"], A)
    assert after["status"] == "succeeded"


def test_a_page_pypdf_cannot_measure_is_never_loaded_by_pdfium() -> None:
    """Its size unknown, the page is read by pypdf (bounded) and not rendered for OCR."""
    data = make_pdf(["The first page reads fine.", "The second page does not."])
    second = data.index(b"/FlateDecode", data.index(b"/FlateDecode") + 1)
    data = data[:second] + b"/NoSuchFilter" + data[second + len(b"/FlateDecode") :]

    def no_engine() -> Any:
        raise AssertionError("page 2 was rendered for OCR")

    raw = extract.extract(data, extractor=Extractor.PDFIUM)
    assert raw.unmeasured == [1] and raw.pages[0] == "The first page reads fine."
    read = scan.read(data, scan.Options(), no_engine, lambda _d, _t: None)
    assert any("page 2: its content cannot be decoded" in w for w in read.warnings)
