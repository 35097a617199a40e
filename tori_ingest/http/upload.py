"""Streaming multipart uploads straight to the volume (never a whole file in memory).

python-multipart's push parser turns each body chunk into part events; file parts go to a
`TempWriter` (hashing as they go), small text fields are kept. Every check that can reject a
file (size cap, magic bytes, empty, file name) happens while streaming, and any rejection
discards every temp file of the request, so bad input leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from tori_ingest.core.errors import Refused
from tori_ingest.core.formats import check_document
from tori_ingest.core.vocab import ErrorCode
from tori_ingest.store.backend import Storage, TempWriter

MAX_FIELD_BYTES = 64 * 1024
MAX_FILES = 100
MAX_PARTS = 200
# All files of one request together: twice the per-file cap (many small files are fine;
# 100 x TORI_MAX_UPLOAD_MB is not), plus room for the form's fields.
REQUEST_FILE_FACTOR = 2
REQUEST_OVERHEAD = 1024 * 1024


@dataclass
class UploadedFile:
    filename: str
    writer: TempWriter


@dataclass
class Form:
    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    async def discard(self) -> None:
        for f in self.files:
            await f.writer.discard()


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)
    writer: TempWriter | None = None


def safe_filename(raw: str) -> str:
    """The client's file name as metadata; a name that tries to be a path is refused (400)."""
    name = raw.strip()
    if not name:
        return "upload.pdf"
    if "/" in name or "\\" in name or "\x00" in name or name in (".", "..") or len(name) > 255:
        raise Refused(ErrorCode.BAD_REQUEST, f"invalid file name {raw[:100]!r}")
    return name


async def read_form(
    content_type: str, body: AsyncIterator[bytes], storage: Storage, max_file_bytes: int
) -> Form:
    """Parse a multipart body, streaming `file` parts to temp files on the volume."""
    mime, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        raise Refused(ErrorCode.BAD_REQUEST, "expected multipart/form-data with a boundary")
    form = Form()
    events: list[tuple[str, bytes]] = []
    header: list[bytes] = [b"", b""]

    def on(kind: str) -> Callable[..., None]:
        def data_cb(data: bytes, start: int, end: int) -> None:
            events.append((kind, data[start:end]))

        def bare_cb() -> None:
            events.append((kind, b""))

        return data_cb if kind in ("data", "hfield", "hvalue") else bare_cb

    try:  # refuses a boundary it cannot handle (over 256 bytes) when built: the client's fault
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": on("begin"),
                "on_part_data": on("data"),
                "on_part_end": on("end"),
                "on_header_field": on("hfield"),
                "on_header_value": on("hvalue"),
                "on_header_end": on("hend"),
                "on_headers_finished": on("hdone"),
                "on_end": on("done"),
            },
        )
    except FormParserError as exc:
        raise Refused(ErrorCode.BAD_REQUEST, f"malformed multipart request: {exc}") from None
    part = _Part()
    parts = 0
    finished = False
    received, max_request = 0, REQUEST_FILE_FACTOR * max_file_bytes + REQUEST_OVERHEAD
    try:
        async for chunk in body:
            received += len(chunk)
            if received > max_request:
                raise Refused(
                    ErrorCode.TOO_LARGE,
                    f"the request is larger than {max_request >> 20} MB (all files together)",
                )
            try:
                parser.write(chunk)
            except FormParserError as exc:
                raise Refused(ErrorCode.BAD_REQUEST, f"malformed multipart body: {exc}") from None
            for kind, data in events:
                if kind == "begin":
                    part, header = _Part(), [b"", b""]
                    parts += 1
                    if parts > MAX_PARTS:
                        raise Refused(ErrorCode.TOO_LARGE, f"more than {MAX_PARTS} form parts")
                elif kind == "hfield":
                    header[0] += data
                elif kind == "hvalue":
                    header[1] += data
                elif kind == "hend":
                    part.headers[header[0].lower()] = header[1]
                    header = [b"", b""]
                elif kind == "hdone":
                    _start_part(part, form, storage)
                elif kind == "data":
                    await _part_data(part, data, max_file_bytes)
                elif kind == "end":
                    await _end_part(part, form)
                elif kind == "done":
                    finished = True
            events.clear()
        if not finished:
            raise Refused(ErrorCode.BAD_REQUEST, "malformed multipart body: truncated")
    except BaseException:
        if part.writer is not None:
            await part.writer.discard()
        await form.discard()
        raise
    return form


def _start_part(part: _Part, form: Form, storage: Storage) -> None:
    _, disposition = parse_options_header(part.headers.get(b"content-disposition", b""))
    part.name = disposition.get(b"name", b"").decode("utf-8", "replace")
    raw_filename = disposition.get(b"filename")
    if part.name == "file":
        if len(form.files) >= MAX_FILES:
            raise Refused(ErrorCode.TOO_LARGE, f"more than {MAX_FILES} files in one request")
        part.filename = safe_filename(
            raw_filename.decode("utf-8", "replace") if raw_filename else ""
        )
        part.writer = storage.writer()


async def _part_data(part: _Part, data: bytes, max_file_bytes: int) -> None:
    if part.writer is None:
        if len(part.value) + len(data) > MAX_FIELD_BYTES:
            raise Refused(ErrorCode.TOO_LARGE, f"form field {part.name!r} is too large")
        part.value += data
        return
    if part.writer.size + len(data) > max_file_bytes:
        raise Refused(
            ErrorCode.TOO_LARGE, f"the file is larger than {max_file_bytes // (1024 * 1024)} MB"
        )
    await part.writer.write(data)
    check_document(
        part.writer.head, part.writer.size, final=False, name=f"uploaded file {part.filename!r}"
    )


async def _end_part(part: _Part, form: Form) -> None:
    if part.writer is None:
        if part.name:
            form.fields[part.name] = part.value.decode("utf-8", "replace")
        return
    writer, part.writer = part.writer, None
    await writer.close()
    form.files.append(UploadedFile(filename=part.filename or "upload.pdf", writer=writer))
    check_document(writer.head, writer.size, final=True, name=f"uploaded file {part.filename!r}")
