"""A public-grade API without a database: every route is described in the OpenAPI document."""

from __future__ import annotations

from tori_ingest.core.settings import Settings
from tori_ingest.http import app as api_module
from tori_ingest.http.context import Context

# --- OpenAPI ---------------------------------------------------------------------------------


def test_every_route_is_described() -> None:
    ctx = Context(settings=Settings.load({}), db=None, storage=None)  # type: ignore[arg-type]
    app = api_module.build_api(ctx)
    described = app.state.openapi["paths"]
    for route in app.routes:
        assert route.path in described, route.path
        for method in getattr(route, "methods", None) or {"GET"}:
            if method != "HEAD":
                assert method.lower() in described[route.path], (method, route.path)
