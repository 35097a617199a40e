"""The ASGI apps: every route declared once (`ENDPOINTS`), with its OpenAPI operation.

Middleware, outermost first: request ids and the error envelope, request metrics, CORS
(outside auth: a preflight carries no token), bearer auth.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Route, WebSocketRoute

from tori_ingest.core.dashboard import DashboardBatch
from tori_ingest.core.errors import ToriError
from tori_ingest.core.formats import MediaType
from tori_ingest.core.models import (
    MAX_IDEMPOTENCY_KEY,
    Accepted,
    ByReference,
    Erased,
    EventError,
    Health,
    JobEvent,
    JobList,
    JobView,
    Ready,
    Result,
    RetryRequest,
    SplitJobView,
)
from tori_ingest.core.vocab import ErrorCode, Lane, OcrMode
from tori_ingest.core.webhooks import DeliveryList
from tori_ingest.http import docs, download, metrics, probes, routes, ui, ws
from tori_ingest.http.auth import Auth
from tori_ingest.http.context import Context
from tori_ingest.http.limits import RateLimit
from tori_ingest.http.middleware import RequestContext, http_error_handler, tori_error_handler
from tori_ingest.http.openapi import Endpoint, Op, Raw, document

E = ErrorCode
TEXT = Raw("text/plain")
MARKDOWN = Raw("text/markdown")
ORIGINAL = [Raw(str(m), {"type": "string", "format": "binary"}) for m in MediaType]


class UploadForm(BaseModel):
    """POST /jobs as multipart/form-data (streamed; described here, parsed by `upload`)."""

    file: bytes = Field(
        description="a PDF, or a PNG, JPEG or TIFF image; repeat the field for several jobs"
    )
    priority: Lane = Lane.INTERACTIVE
    password: str | None = Field(None, description="for encrypted PDFs")
    ocr: OcrMode | None = Field(None, description="this job's OCR mode; unset: TORI_OCR")
    owner_ref: str | None = Field(None, description="the app's own tag, e.g. its user id")
    callback_url: str | None = Field(None, description="webhook at each terminal state")


SUBMIT = Op(
    "Submit PDFs or images (upload, or by reference to TORI_IMPORT_DIR / TORI_IMPORT_URL); one "
    "file answers an "
    "object, several a list",
    {202: Accepted | list[Accepted], 200: Accepted | list[Accepted]},
    (
        E.BAD_REQUEST,
        E.EMPTY_FILE,
        E.IDEMPOTENCY_CONFLICT,
        E.TOO_LARGE,
        E.UNSUPPORTED_TYPE,
        E.RATE_LIMITED,
    ),
    query=routes.SubmitQuery,
    headers={"Idempotency-Key": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY}},
    body={"multipart/form-data": UploadForm, "application/json": ByReference},
)
ENDPOINTS = [
    Endpoint("/jobs", "POST", routes.create_jobs, SUBMIT),
    Endpoint(
        "/jobs",
        "GET",
        routes.list_jobs,
        Op(
            "List jobs, newest first (keyset pagination)",
            {200: JobList},
            (E.BAD_REQUEST,),
            query=routes.ListQuery,
        ),
    ),
    Endpoint(
        "/jobs/{job_id}",
        "GET",
        routes.get_job,
        Op(
            "A job's state (with its parts while a split job runs)",
            {200: JobView | SplitJobView},
            (E.NOT_FOUND, E.EXPIRED),
        ),
    ),
    Endpoint(
        "/jobs/{job_id}",
        "DELETE",
        routes.cancel_job,
        Op(
            "Cancel (a no-op for an ended job); ?erase=true also deletes the document",
            {200: JobView | Erased},
            (E.NOT_FOUND, E.EXPIRED, E.BAD_REQUEST),
            query=routes.CancelQuery,
        ),
    ),
    Endpoint(
        "/jobs/{job_id}/retry",
        "POST",
        routes.retry_job,
        Op(
            "Re-queue a failed or cancelled job",
            {202: JobView, 200: JobView},
            (E.BAD_REQUEST, E.NOT_FOUND, E.EXPIRED, E.TOO_LARGE),
            body={"application/json": RetryRequest},
            body_required=False,
        ),
    ),
    Endpoint(
        "/jobs/{job_id}/result",
        "GET",
        routes.get_result,
        Op(
            "The full result (409 not_ready until succeeded; ?format=text: the cleaned text, "
            "?format=markdown: the structure as Markdown)",
            {200: [Result, TEXT, MARKDOWN]},
            (E.BAD_REQUEST, E.NOT_FOUND, E.NOT_READY, E.EXPIRED),
            query=routes.ResultQuery,
        ),
    ),
    Endpoint(
        "/jobs/{job_id}/file",
        "GET",
        download.get_file,
        Op(
            "The original bytes (a bucket store redirects to a presigned URL for 5 minutes)",
            {200: ORIGINAL, 307: Raw("text/plain")},
            (E.BAD_REQUEST, E.NOT_FOUND, E.EXPIRED, E.UNAVAILABLE),
            query=download.FileQuery,
        ),
    ),
    Endpoint(
        "/jobs/{job_id}/deliveries",
        "GET",
        routes.get_deliveries,
        Op(
            "The job's webhook deliveries: state, tries, status codes, next try",
            {200: DeliveryList},
            (E.NOT_FOUND, E.EXPIRED),
        ),
    ),
    Endpoint(
        "/ws",
        "WS",
        ws.ws_many,
        Op(
            'WebSocket: send {"subscribe": [ids]} / {"unsubscribe": [ids]}; {"dashboard": true}: '
            "every job the caller may see, in batches a few times a second",
            {0: JobEvent, 1: EventError, 2: DashboardBatch},
        ),
    ),
    Endpoint(
        "/ws/jobs/{job_id}",
        "WS",
        ws.ws_one,
        Op(
            "WebSocket for one job; closes after its terminal state (4404: unknown job)",
            {0: JobEvent, 1: EventError},
        ),
    ),
]
PROBES = [
    Endpoint("/healthz", "GET", probes.healthz, Op("Liveness", {200: Health}, public=True)),
    Endpoint(
        "/readyz",
        "GET",
        probes.readyz,
        Op("Readiness: database, storage, warm pool", {200: Ready}, (E.UNAVAILABLE,), public=True),
    ),
    Endpoint("/metrics", "GET", metrics.metrics_endpoint, Op("Prometheus metrics", {200: TEXT})),
]
HTML = Raw("text/html")
DOCS = [
    Endpoint(
        "/openapi.json",
        "GET",
        probes.openapi_json,
        Op("This document", {200: Raw("application/json", {"type": "object"})}, public=True),
    ),
    Endpoint(
        "/docs",
        "GET",
        docs.docs_page,
        Op("Interactive API documentation", {200: HTML}, public=True),
    ),
    Endpoint(
        "/docs/static/{name}",
        "GET",
        docs.docs_asset,
        Op("Assets of /docs", {200: Raw("application/octet-stream")}, (E.NOT_FOUND,), public=True),
    ),
    Endpoint("/", "GET", docs.home, Op("Redirects to /docs", {307: HTML}, public=True)),
]


def _routes(endpoints: list[Endpoint]) -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for e in endpoints:
        if e.method == "WS":
            out.append(WebSocketRoute(e.path, e.handler))
        else:
            out.append(Route(e.path, e.handler, methods=[e.method]))
    return out


API_ENDPOINTS = [*ENDPOINTS, *PROBES, *DOCS, *ui.ENDPOINTS]


def api_document(auth: bool = True) -> dict[str, Any]:
    """`/openapi.json` of `serve` without a server (`tori-ingest config --openapi`: the
    JavaScript client's types are generated from it)."""
    return document(API_ENDPOINTS, auth=auth)


def build_api(context: Context) -> Starlette:
    """The API of `serve`."""
    endpoints = API_ENDPOINTS
    middleware = [Middleware(RequestContext), Middleware(metrics.RequestMetrics)]
    if context.settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=context.settings.cors_origins,
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
                expose_headers=["X-Request-ID", "Retry-After"],
            )
        )
    return _starlette(context, endpoints, middleware)


def build_probe_api(context: Context) -> Starlette:
    """What a worker-only process serves on TORI_METRICS_PORT: metrics and health probes."""
    return _starlette(context, PROBES, [Middleware(RequestContext)])


def _starlette(
    context: Context, endpoints: list[Endpoint], middleware: list[Middleware]
) -> Starlette:
    """The app around `endpoints`: auth innermost, the error envelope everywhere."""
    auth = bool(context.settings.api_tokens)
    middleware = [
        *middleware,
        Middleware(Auth, settings=context.settings, db=context.db, local_only=context.local_only),
        Middleware(RateLimit, settings=context.settings, db=context.db),
    ]
    handlers: dict[Any, Any] = {ToriError: tori_error_handler, HTTPException: http_error_handler}
    app = Starlette(routes=_routes(endpoints), middleware=middleware, exception_handlers=handlers)
    app.state.ctx = context
    app.state.openapi = document(endpoints, auth=auth)
    return app
