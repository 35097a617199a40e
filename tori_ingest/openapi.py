"""The OpenAPI 3 description served at /openapi.json (SPEC §4), written out by hand.

A test checks that every route of the app is described here, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from tori_ingest import __version__, errors

ERROR_CODES = sorted(
    errors.JOB_CODES
    | {
        errors.UNAUTHORIZED,
        errors.NOT_FOUND,
        errors.METHOD_NOT_ALLOWED,
        errors.BAD_REQUEST,
        errors.IDEMPOTENCY_CONFLICT,
        errors.NOT_READY,
        errors.EXPIRED,
        errors.UNAVAILABLE,
    }
)

STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]
LANES = ["interactive", "bulk"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Bad request",
        401: "Missing or invalid bearer token",
        404: "Unknown job",
        409: "Conflict",
        410: "Result purged",
        413: "Too large",
        415: "Not a PDF",
        503: "Database unavailable",
        500: "Internal error",
    }
    return {str(s): _json(_ref("Error"), text[s]) for s in (*statuses, 401, 500, 503)}


JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
NULLABLE_STRING = {"type": ["string", "null"]}
STR = {"type": "string"}
INT = {"type": "integer"}


DOCUMENT_FILE = {"sha256": STR, "filename": STR, "bytes": INT}


def _objects(**properties: Any) -> dict[str, Any]:
    """An array of objects with these properties."""
    return {"type": "array", "items": {"type": "object", "properties": properties}}


NULLABLE_INT = {"type": ["integer", "null"]}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "request_id"],
                "properties": {
                    "code": {"type": "string", "enum": ERROR_CODES},
                    "message": {"type": "string"},
                    "request_id": NULLABLE_STRING,
                },
            }
        },
    },
    "Links": {
        "type": "object",
        "required": ["self", "result", "ws"],
        "properties": {k: {"type": "string"} for k in ("self", "result", "ws")},
    },
    "Accepted": {
        "type": "object",
        "required": ["job_id", "status", "links"],
        "properties": {
            "job_id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": STATUSES},
            "deduplicated": {"type": "boolean"},
            "links": _ref("Links"),
        },
    },
    "Job": {
        "type": "object",
        "required": [
            "job_id",
            "status",
            "lane",
            "created_at",
            "attempts",
            "pages_done",
            "pages_total",
            "document",
            "deduplicated",
            "error",
            "result",
            "links",
        ],
        "properties": {
            "job_id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": STATUSES},
            "lane": {"type": "string", "enum": LANES},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "attempts": {"type": "integer"},
            "pages_done": {"type": "integer"},
            "pages_total": NULLABLE_INT,
            "document": {"type": "object", "properties": DOCUMENT_FILE},
            "deduplicated": {"type": "boolean"},
            "error": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string", "enum": sorted(errors.JOB_CODES)},
                            "message": {"type": "string"},
                        },
                    },
                ]
            },
            "result": {"type": ["object", "null"], "description": "summary when succeeded"},
            "links": _ref("Links"),
        },
    },
    "JobList": {
        "type": "object",
        "required": ["jobs", "next"],
        "properties": {
            "jobs": {"type": "array", "items": _ref("Job")},
            "next": {
                "type": ["string", "null"],
                "description": "pass as ?after= for the next page",
            },
        },
    },
    "Result": {
        "type": "object",
        "required": [
            "job_id",
            "document",
            "pages",
            "entities",
            "keyphrases",
            "chunks",
            "stats",
            "warnings",
            "timings_ms",
            "pipeline",
        ],
        "properties": {
            "job_id": {"type": "string", "format": "uuid"},
            "document": {
                "type": "object",
                "properties": {
                    **DOCUMENT_FILE,
                    "pages": {"type": "integer"},
                    "title": NULLABLE_STRING,
                    "author": NULLABLE_STRING,
                    "producer": NULLABLE_STRING,
                    "created": NULLABLE_STRING,
                    "encrypted": {"type": "boolean"},
                },
            },
            "pages": _objects(number=INT, text=STR, chars=INT),
            "entities": _objects(
                text=STR, label=STR, count=INT, pages={"type": "array", "items": INT}
            ),
            "keyphrases": _objects(text=STR, count=INT),
            "chunks": _objects(text=STR, page_start=INT, page_end=INT),
            "stats": {
                "type": "object",
                "properties": {
                    "words": {"type": "integer"},
                    "sentences": {"type": "integer"},
                    "chars": {"type": "integer"},
                },
            },
            "warnings": {"type": "array", "items": {"type": "string"}},
            "timings_ms": {"type": "object"},
            "pipeline": {"type": "object"},
            "deduplicated": {"type": "boolean"},
        },
    },
    "Upload": {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {
                "type": "string",
                "format": "binary",
                "description": "a PDF; repeat the field for several jobs",
            },
            "priority": {"type": "string", "enum": LANES, "default": "interactive"},
            "password": {"type": "string", "description": "for encrypted PDFs"},
        },
    },
    "ByReference": {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "relative to TORI_IMPORT_DIR"},
            "paths": {"type": "array", "items": {"type": "string"}, "maxItems": 1000},
            "priority": {"type": "string", "enum": LANES, "default": "bulk"},
            "password": {"type": "string"},
        },
    },
}


def _spec() -> dict[str, Any]:
    accepted = {"oneOf": [_ref("Accepted"), {"type": "array", "items": _ref("Accepted")}]}
    job = _json(_ref("Job"), "The job")
    ws = {
        "description": "Switching Protocols (WebSocket). Messages: "
        '{"type": "snapshot"|"update", "job_id", "status", "pages_done", "pages_total", '
        '"error", "version"}; protocol errors {"type": "error", "job_id", "error"}.'
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tori-ingest",
            "version": __version__,
            "description": "Asynchronous PDF ingestion: upload, extract, clean, annotate.",
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/jobs": {
                "post": {
                    "summary": "Submit PDFs (upload, or by reference to TORI_IMPORT_DIR)",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 255},
                        },
                        {
                            "name": "reprocess",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "boolean"},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {"schema": _ref("Upload")},
                            "application/json": {"schema": _ref("ByReference")},
                        },
                    },
                    "responses": {
                        "202": _json(accepted, "Accepted: one object, or a list for several"),
                        "200": _json(accepted, "Replay of an idempotent request"),
                        **_errors(400, 409, 413, 415),
                    },
                },
                "get": {
                    "summary": "List jobs, newest first (keyset pagination)",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"type": "string", "enum": STATUSES},
                        },
                        {
                            "name": "lane",
                            "in": "query",
                            "schema": {"type": "string", "enum": LANES},
                        },
                        {
                            "name": "after",
                            "in": "query",
                            "schema": {"type": "string", "format": "uuid"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                        },
                    ],
                    "responses": {"200": _json(_ref("JobList"), "A page of jobs"), **_errors(400)},
                },
            },
            "/jobs/{job_id}": {
                "parameters": [JOB_ID],
                "get": {"summary": "A job's state", "responses": {"200": job, **_errors(404)}},
                "delete": {
                    "summary": "Cancel (a no-op for an ended job)",
                    "responses": {"200": job, **_errors(404)},
                },
            },
            "/jobs/{job_id}/result": {
                "parameters": [JOB_ID],
                "get": {
                    "summary": "The full result (409 not_ready until succeeded)",
                    "parameters": [
                        {
                            "name": "format",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["json", "text"]},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The result",
                            "content": {
                                "application/json": {"schema": _ref("Result")},
                                "text/plain": {"schema": {"type": "string"}},
                            },
                        },
                        **_errors(404, 409, 410),
                    },
                },
            },
            "/jobs/{job_id}/retry": {
                "parameters": [JOB_ID],
                "post": {
                    "summary": "Re-queue a failed or cancelled job",
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"password": {"type": "string"}},
                                }
                            }
                        },
                    },
                    "responses": {"202": job, "200": job, **_errors(400, 404)},
                },
            },
            "/ws": {
                "get": {
                    "summary": 'WebSocket: send {"subscribe": [ids]} / {"unsubscribe": [ids]}',
                    "responses": {"101": ws},
                }
            },
            "/ws/jobs/{job_id}": {
                "parameters": [JOB_ID],
                "get": {
                    "summary": "WebSocket for one job; closes after its terminal state "
                    "(4404 for an unknown job)",
                    "responses": {"101": ws},
                },
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "Alive")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: database, storage, warm pool",
                    "security": [],
                    "responses": {
                        "200": _json({"type": "object"}, "Ready"),
                        "503": _json(_ref("Error"), "Not ready"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_errors(),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3"), **_errors()},
                }
            },
        },
    }


SPEC = _spec()
