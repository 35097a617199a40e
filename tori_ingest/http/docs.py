"""`/docs`: interactive API documentation over `/openapi.json`, served by this binary.

The Swagger UI assets come from the `swagger-ui-py` wheel (installed with the project, read
from its package folder without importing it), so the page works with no internet and a CSP
that allows nothing but this origin.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from tori_ingest.core.errors import Refused
from tori_ingest.core.vocab import ErrorCode

ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tori-ingest API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="docs"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/start.js"></script></body></html>
"""
START = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#docs",
  deepLinking: true, persistAuthorization: false, tryItOutEnabled: true});
"""


@cache
def asset_dir() -> Path | None:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "static"


async def docs_page(request: Request) -> Response:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": CSP})


async def docs_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "start.js":
        return Response(START, media_type="text/javascript")
    folder = asset_dir()
    if name not in ASSETS or folder is None or not (folder / name).is_file():
        raise Refused(ErrorCode.NOT_FOUND, f"no such asset {name!r}")
    return FileResponse(folder / name, headers={"Cache-Control": "public, max-age=86400"})


async def home(request: Request) -> Response:
    """`/` points people at the documentation."""
    link = '<a href="/docs">API documentation</a>'
    return HTMLResponse(link, status_code=307, headers={"Location": "/docs"})
