"""Webhooks at the API: which callback a submit gets, and a job's delivery log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tori_ingest.core.errors import Refused
from tori_ingest.core.settings import Settings
from tori_ingest.core.vocab import ErrorCode
from tori_ingest.core.webhooks import CallbackRefused, DeliveryList, check_url
from tori_ingest.http.context import ctx
from tori_ingest.http.middleware import JSON
from tori_ingest.store import deliveries


def callback_for(settings: Settings, raw: str | None) -> str | None:
    """The job's callback, fixed now: its own `callback_url` (checked against the SSRF guard
    as written; delivery checks again after DNS), else TORI_WEBHOOK_URL, else none."""
    if raw is None or raw == "":
        return settings.tori_webhook_url
    if settings.tori_webhook_secret is None:
        raise Refused(
            ErrorCode.BAD_REQUEST,
            "callback_url needs TORI_WEBHOOK_SECRET on the service (webhooks are signed)",
        )
    try:
        return check_url(raw, allow_private=settings.tori_webhook_allow_private)
    except CallbackRefused as exc:
        raise Refused(ErrorCode.BAD_REQUEST, str(exc)) from None


async def list_deliveries(request: Request, job_id: object) -> Response:
    """GET /jobs/{id}/deliveries for a job the caller may see (checked by the caller)."""
    items = await deliveries.for_job(ctx(request).db, job_id)  # type: ignore[arg-type]
    return JSON(DeliveryList(job_id=str(job_id), deliveries=items))
