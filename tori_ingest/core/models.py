"""The shapes the service speaks, as pydantic models: they build the responses, validate the
request bodies and are the source of `/openapi.json` (nothing is described twice).

Measured for the choice (a 700-page result, 3 MB of JSON, best of 30 on the dev machine):
pydantic validate + dump 10 ms, msgspec convert + encode 2 ms, plain orjson 0.3 ms. pydantic
was chosen: it is already installed with spaCy, drives the settings and the JSON Schema, and
10 ms is 0.03 % of the NLP time of such a document.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tori_ingest.core.formats import MediaType
from tori_ingest.core.vocab import (
    BlockType,
    ErrorCode,
    Lane,
    OcrMode,
    PageSource,
    PartPhase,
    Status,
)

# Limits that requests and responses share (each written once, here).
MAX_LIST_LIMIT = 200
DEFAULT_LIST_LIMIT = 50
MAX_IDEMPOTENCY_KEY = 255
MAX_TEXT_FIELD = 1024
MAX_PATHS = 1000
MAX_SUBSCRIPTIONS = 1000  # job ids one WebSocket may follow


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


# --- errors ----------------------------------------------------------------------------------


class ErrorInfo(Model):
    code: ErrorCode
    message: str


class ErrorBody(ErrorInfo):
    request_id: str | None


class ErrorEnvelope(Model):
    """Every error answer: `{"error": {"code", "message", "request_id"}}`."""

    error: ErrorBody


# --- jobs ------------------------------------------------------------------------------------


class Links(Model):
    self: str
    result: str
    file: str
    ws: str

    @classmethod
    def of(cls, job_id: object) -> Links:
        base = f"/jobs/{job_id}"
        return cls(self=base, result=f"{base}/result", file=f"{base}/file", ws=f"/ws/jobs/{job_id}")


class DocumentRef(Model):
    sha256: str
    filename: str
    bytes: int


class Summary(Model):
    """The small part of a result kept on the job row (GET /jobs/{id})."""

    pages: int
    title: str | None = None
    words: int
    sentences: int
    chars: int
    ocr_pages: int = 0
    entities: int
    chunks: int
    warnings: int


class JobView(Model):
    """A job's status (GET /jobs/{id})."""

    job_id: str
    status: Status
    lane: Lane
    owner_ref: str | None = Field(None, description="the app's own tag (metadata, not access)")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    pages_done: int
    pages_total: int | None
    document: DocumentRef
    deduplicated: bool
    error: ErrorInfo | None
    result: Summary | None
    links: Links


class PartView(Model):
    """One page-range part of a split job (TORI_SPLIT_PAGES)."""

    phase: PartPhase = Field(description="read (text layer, OCR, layout), then nlp")
    first_page: int
    last_page: int
    status: Status = Field(description="queued, running or succeeded")
    # `copy` in JSON; not the attribute's name, which would shadow BaseModel.copy.
    copy_name: str | None = Field(None, alias="copy", description="the copy (host:pid) running it")

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True, validate_by_name=True)


class SplitJobView(JobView):
    """A running job processed in parts: its status with the parts of the phase under way."""

    parts: list[PartView]


class Accepted(Model):
    """One created (202) or replayed (200) job of POST /jobs."""

    job_id: str
    status: Status
    deduplicated: bool
    pages_total: int | None = Field(
        None, description="known at once for a deduplicated job (born succeeded); else null"
    )
    links: Links
    ticket: str | None = Field(
        None, description="reads this job only, with no token (for a browser); null: auth off"
    )


class Erased(Model):
    """DELETE /jobs/{id}?erase=true: the document is gone; the job now answers 410."""

    job_id: str
    erased: Literal[True] = True


class JobList(Model):
    jobs: list[JobView]
    next: str | None = Field(description="pass as ?after= for the next page; null at the end")


class ByReference(Model):
    """POST /jobs with a JSON body: files under TORI_IMPORT_DIR or objects under
    TORI_IMPORT_URL (relative paths, or full s3:// URLs under that prefix)."""

    owner_ref: str | None = Field(None, max_length=MAX_TEXT_FIELD)
    path: str | None = None
    paths: list[str] | None = Field(None, description=f"at most {MAX_PATHS}")
    priority: Lane = Lane.BULK
    password: str | None = Field(None, max_length=MAX_TEXT_FIELD)
    ocr: OcrMode | None = Field(None, description="this job's OCR mode; unset: TORI_OCR")
    callback_url: str | None = Field(
        None, description="POSTed a signed webhook at each terminal state (else TORI_WEBHOOK_URL)"
    )


class RetryRequest(Model):
    password: str | None = Field(None, max_length=MAX_TEXT_FIELD)


# --- live events -----------------------------------------------------------------------------


class JobEvent(Model):
    """One WebSocket message about a job: its whole state, with an ordering `version`."""

    type: Literal["snapshot", "update"] = "update"
    job_id: str
    status: Status
    pages_done: int
    pages_total: int | None
    error: ErrorInfo | None
    version: int
    copy_name: str | None = Field(None, description="while running: the copy (host:pid) running it")
    parts: list[PartView] | None = Field(
        None,
        description="a running split job's parts of the phase under way (the first 40; "
        "GET /jobs/{id} lists them all); null otherwise",
    )


class EventError(Model):
    type: Literal["error"] = "error"
    job_id: str | None
    error: ErrorInfo


class Subscription(BaseModel):
    """What a client sends on /ws (unknown keys ignored)."""

    subscribe: list[Any] = Field(default_factory=list)
    unsubscribe: list[Any] = Field(default_factory=list)
    dashboard: bool = Field(False, description="every visible job, in batches (`/ui`)")


# --- the result --------------------------------------------------------------------


class Page(Model):
    number: int
    text: str
    chars: int
    removed: list[str] = Field(
        default_factory=list,
        description="lines cleaning took off this page (running headers, footers, page numbers)",
    )
    source: PageSource = Field(
        PageSource.TEXT, description="text: the PDF's text layer; ocr: OCR of the page's image"
    )
    ocr_confidence: float | None = Field(
        None, description="tesseract's mean word confidence, 0-1 (null: not OCR'd)"
    )


class Entity(Model):
    text: str
    label: str
    count: int
    pages: list[int]


class Keyphrase(Model):
    text: str
    count: int


class Block(Model):
    """A piece of the document's structure, in reading order (SPEC §16)."""

    type: BlockType
    text: str
    page: int = Field(description="1-based page number")
    bbox: list[float] = Field(
        description="[x0, y0, x1, y1] in PDF points, origin at the page's top-left corner"
    )
    level: int | None = Field(None, description="headings: 1 = top level")
    rows: list[list[str]] | None = Field(
        None, description="tables: rows of cell strings; the first row is the header"
    )


class Chunk(Model):
    text: str
    page_start: int
    page_end: int
    headings: list[str] = Field(
        default_factory=list, description="the section titles it sits under, outermost first"
    )
    words: int = 0


class Stats(Model):
    words: int
    sentences: int
    chars: int
    ocr_pages: int = Field(0, description="pages whose text came from OCR")


class PipelineInfo(Model):
    model: str
    model_version: str


class Metadata(Model):
    pages: int
    title: str | None
    author: str | None
    producer: str | None
    created: str | None
    encrypted: bool
    language: str | None = Field(
        None, description="ISO 639-1 code of the document's main language; null if undetectable"
    )
    media_type: MediaType = Field(MediaType.PDF, description="what the bytes are, by signature")


class Annotated(Model):
    """The text and what NLP found in it: shared by the pool's output and the result."""

    pages: list[Page]
    entities: list[Entity]
    keyphrases: list[Keyphrase]
    blocks: list[Block] = Field(
        default_factory=list, description="the document's structure, in reading order"
    )
    chunks: list[Chunk]
    stats: Stats
    warnings: list[str]


class Processed(Annotated):
    """What a pool process returns for one document (the CPU part of a result)."""

    document: Metadata
    timings_ms: dict[str, float]
    pipeline: PipelineInfo
    cpu_ms: dict[str, float] = Field(default_factory=dict)  # per Stage, in the pool process


class Document(Metadata, DocumentRef):
    pass


class Timings(Model):
    queue_wait: float
    extract: float
    ocr: float = Field(0.0, description="rendering and OCR of the pages that needed it")
    clean: float = Field(0.0, description="text cleaning (counted in extract by earlier versions)")
    layout: float = Field(0.0, description="layout analysis: blocks and chunks")
    nlp: float
    total: float
    cpu: dict[str, float] = Field(
        default_factory=dict,
        description="CPU ms per stage: extract, ocr, clean, nlp in the pool process, assemble "
        "(building the result, pool and worker); storing it is not in the stored result",
    )


@dataclass(frozen=True)
class Serialised:
    """A result as JSON and what the job row keeps of it, made by the worker outside the
    database transaction (its CPU is the store stage)."""

    pages: int
    summary: str
    result: str


class ResultPipeline(PipelineInfo):
    tori_ingest_version: str


class Result(Annotated):
    """GET /jobs/{id}/result."""

    job_id: str
    document: Document
    timings_ms: Timings
    pipeline: ResultPipeline
    deduplicated: bool = False

    def summary(self) -> Summary:
        return Summary(
            pages=self.document.pages,
            title=self.document.title,
            **self.stats.model_dump(),
            entities=len(self.entities),
            chunks=len(self.chunks),
            warnings=len(self.warnings),
        )


# --- probes ----------------------------------------------------------------------------------


class Health(Model):
    status: Literal["ok"] = "ok"


class Ready(Model):
    status: Literal["ready"] = "ready"
    pool: int | None


class Counts(Model):
    """Jobs by state, and by lane then state (`tori-ingest status`)."""

    jobs: dict[Status, int]
    lanes: dict[Lane, dict[Status, int]]


def serialise(result: Result) -> Serialised:
    return Serialised(
        result.document.pages, result.summary().model_dump_json(), result.model_dump_json()
    )
