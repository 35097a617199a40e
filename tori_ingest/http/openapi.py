"""`/openapi.json`, generated from the route table and the pydantic models.

Each route is declared once, as an `Endpoint` with its `Op` (summary, response models, the
error codes it can answer, query and body models); the Starlette routes and this document
are both built from that table, so they cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter

from tori_ingest import __version__
from tori_ingest.core.models import ErrorEnvelope
from tori_ingest.core.vocab import ErrorCode

REF = "#/components/schemas/{model}"
# Every authenticated route may answer these, whatever it does.
ALWAYS = (ErrorCode.INTERNAL, ErrorCode.UNAVAILABLE, ErrorCode.RATE_LIMITED)


@dataclass(frozen=True)
class Raw:
    """A non-JSON response body (text, binary) or a hand-described one."""

    media_type: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Op:
    summary: str
    responses: dict[int, Any]  # status → model / type / Raw (several media types: a list)
    errors: tuple[ErrorCode, ...] = ()
    query: type[BaseModel] | None = None
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)  # media type → model / type
    body_required: bool = True
    public: bool = False  # no auth (probes)


@dataclass(frozen=True)
class Endpoint:
    path: str
    method: str  # "GET", "POST", "DELETE", or "WS"
    handler: Callable[..., Any]
    op: Op


class _Schemas:
    """Collects component schemas while turning types into `$ref`s."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, kind: Any, mode: str = "serialization") -> dict[str, Any]:
        if isinstance(kind, Raw):
            return kind.schema
        schema = TypeAdapter(kind).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        self.components.update(schema.pop("$defs", {}))
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            self.components[kind.__name__] = schema
            return {"$ref": REF.format(model=kind.__name__)}
        return schema

    def content(self, kind: Any, mode: str = "serialization") -> dict[str, Any]:
        kinds = kind if isinstance(kind, list) else [kind]
        return {
            (k.media_type if isinstance(k, Raw) else "application/json"): {
                "schema": self.of(k, mode)
            }
            for k in kinds
        }


def _absent(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: drop the null branch and null default."""
    options = [o for o in schema.get("anyOf", []) if o != {"type": "null"}]
    out = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
    if len(options) == 1:
        out.update(options[0])
    elif options:
        out["anyOf"] = options
    return out


def _parameters(path: str, op: Op, schemas: _Schemas) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in re.findall(r"{(\w+)}", path):
        schema = {"type": "string", "format": "uuid"} if name == "job_id" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    if op.query is not None:
        query = schemas.of(op.query, "validation")
        model = schemas.components.pop(op.query.__name__, query)
        for name, prop in model.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": False, "schema": _absent(prop)})
    for name, schema in op.headers.items():
        params.append({"name": name, "in": "header", "required": False, "schema": schema})
    return params


def _websocket(endpoint: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    """A WebSocket as a GET that switches protocols; its messages are named components."""
    messages = [
        schemas.of(kind)["$ref"].rsplit("/", 1)[-1] for kind in endpoint.op.responses.values()
    ]
    out: dict[str, Any] = {
        "summary": endpoint.op.summary,
        "description": "Server messages: " + ", ".join(messages) + " (see components).",
        "responses": {"101": {"description": "Switching Protocols (WebSocket)"}},
    }
    if params := _parameters(endpoint.path, endpoint.op, schemas):
        out["parameters"] = params
    return out


def _operation(endpoint: Endpoint, schemas: _Schemas, auth: bool) -> dict[str, Any]:
    if endpoint.method == "WS":
        return _websocket(endpoint, schemas)
    op = endpoint.op
    responses: dict[str, Any] = {}
    for status, kind in op.responses.items():
        responses[str(status)] = {"description": op.summary, "content": schemas.content(kind)}
    codes = set(op.errors) | (set() if op.public else set(ALWAYS))
    if auth and not op.public:
        codes.add(ErrorCode.UNAUTHORIZED)
    for status in sorted({c.http_status for c in codes}):
        names = ", ".join(sorted(c for c in codes if c.http_status == status))
        responses[str(status)] = {
            "description": names,
            "content": schemas.content(ErrorEnvelope),
        }
    out: dict[str, Any] = {"summary": op.summary, "responses": responses}
    if params := _parameters(endpoint.path, op, schemas):
        out["parameters"] = params
    if op.body:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {
                media: {"schema": schemas.of(kind, "validation")} for media, kind in op.body.items()
            },
        }
    if op.public:
        out["security"] = []
    return out


def document(endpoints: list[Endpoint], *, auth: bool = True) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `endpoints` (WebSockets appear as GET with a 101)."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        method = "get" if endpoint.method == "WS" else endpoint.method.lower()
        paths.setdefault(endpoint.path, {})[method] = _operation(endpoint, schemas, auth)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tori-ingest",
            "version": __version__,
            "description": "Asynchronous PDF ingestion: upload, extract, clean, annotate.",
        },
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
