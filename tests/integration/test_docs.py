"""`/docs` works offline: the page and its assets come from this binary, nothing else."""

from __future__ import annotations

import re

from tests.helpers import Api


async def test_docs_page_is_self_contained(api: Api) -> None:
    page = await api.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/static/") for s in sources), sources
    for source in sources:
        asset = await api.get(source)
        assert asset.status_code == 200 and len(asset.content) > 100, source
    bundle = await api.get("/docs/static/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content
    assert (await api.get("/docs/static/../../etc/passwd")).status_code == 404


async def test_root_points_at_the_docs(api: Api) -> None:
    r = await api.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/docs"


async def test_result_format_is_validated(api: Api) -> None:
    job = (await api.upload(b"%PDF-1.4\n%%EOF\n")).json()
    r = await api.get(f"/jobs/{job['job_id']}/result", params={"format": "xml"})
    assert r.status_code == 400 and "format" in r.json()["error"]["message"]
