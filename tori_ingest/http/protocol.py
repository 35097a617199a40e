"""uvicorn's httptools protocol with a bounded request head.

httptools accepts a header of any size (it buffers a 150 MB header whole before uvicorn sees
it), so one unauthenticated client could grow the process by hundreds of MB and stall the
event loop. Here a request line plus headers over MAX_HEAD_BYTES, or more than
MAX_HEADER_FIELDS header fields, is answered 431 and the connection closed. A reverse proxy
in front (nginx, a load balancer) is still advised: it bounds the rest of what a client sends.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tori_ingest.core.vocab import ErrorCode

# h11 allows 16 KiB, nginx 4 x 8 KiB buffers, Node 16 KiB: 32 KiB leaves room for long cookies
# and ticketed URLs; 100 fields is Apache's LimitRequestFields.
MAX_HEAD_BYTES = 32 * 1024
MAX_HEADER_FIELDS = 100


class _HeadTooLarge(Exception):
    """Raised in a parser callback: stops httptools from parsing further."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        # Still inside a request head after this chunk: count it. (A chunk that completed a
        # head was bounded by the read size, and the next message starts its own count.)
        if self._in_head and not self._refused:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(f"the request line and headers exceed {MAX_HEAD_BYTES} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        # A head that arrived in one read (up to 256 KiB) was never counted while incomplete.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > MAX_HEAD_BYTES:
            self._refuse(f"the request line and headers exceed {MAX_HEAD_BYTES} bytes")
            raise _HeadTooLarge
        if len(self.headers) > MAX_HEADER_FIELDS:
            self._refuse(f"a request may carry at most {MAX_HEADER_FIELDS} header fields")
            raise _HeadTooLarge
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # our own refusal already answered
            super().send_400_response(msg)

    def _refuse(self, message: str) -> None:
        self._refused = True
        body = orjson.dumps(
            {
                "error": {
                    "code": ErrorCode.BAD_REQUEST,
                    "message": message,
                    "request_id": uuid.uuid4().hex,
                }
            }
        )
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n"
        )
        self.logger.warning("refused a request head: %s", message)
        self.transport.write(head + body)
        self.transport.close()
