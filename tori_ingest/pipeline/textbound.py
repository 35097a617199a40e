"""How much text a PDF page can show, measured from its content streams before any extractor
reads it (the text-bomb guard of `extract`).

A few MB of PDF can inflate to hundreds of MB of `(AAAA…) Tj`; PDFium spends about 250 bytes
per character of the page it reads and aborts the process when refused memory, so the bound
is taken first: pure functions over pypdf objects, memory bounded by one decoded stream.
"""

from __future__ import annotations

import re
from collections import Counter

from pypdf import PageObject
from pypdf.filters import decode_stream_data
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    EncodedStreamObject,
    IndirectObject,
    PdfObject,
    StreamObject,
)

# Form XObjects drawn inside forms are followed this deep: past what PDFium itself follows
# (kMaxFormLevel, 40 levels), so no form it would read goes unmeasured.
MAX_FORM_DEPTH = 64

# The parts of a content stream that can hold string operands: a literal `(…)`, a hex string
# `<…>` (`<<` opens a dictionary), and inline image data (`ID` … `EI`), skipped as binary.
_OUTSIDE = re.compile(rb"[(<]|(?<![^\s\]\[)>}])ID\s")
_IN_LITERAL = re.compile(rb"[()\\]")
_INLINE_END = re.compile(rb"\sEI(?=\s|\Z)")
# `/Name Do`: a form XObject drawn (counted loosely: one in a string counts too, erring high).
_DRAW = re.compile(rb"/([^\s/\[\]()<>{}%]+)\s*Do(?![^\s/\[\]()<>{}%])")


def text_bound(page: PageObject, limit: int) -> int:
    """An upper bound on the characters `page` can show, exact enough up to `limit` (past it,
    counting stops): the bytes of the string operands in its content streams (a byte shows
    at most one character, a two-byte code one), plus, for each form XObject it draws, the
    form's own bound times the number of draws. Most pages are settled by the size of their
    streams alone; only one that adds up past `limit` has its strings counted. Memory stays
    bounded by one decoded stream (pypdf refuses to decode one past 75 MB). A ToUnicode map
    that expands one code into many characters is not foreseen: extraction checks again."""
    contents, resources = page.get("/Contents"), page.get("/Resources")
    loose = _Bound(limit, exact=False).content(contents, resources, 0)
    if loose <= limit:
        return loose
    return _Bound(limit, exact=True).content(contents, resources, 0)


class _Bound:
    """One page's measure: stream sizes (`exact` False) or string bytes; forms measured once
    per page (with the resources they inherit, when they have none of their own)."""

    def __init__(self, limit: int, *, exact: bool) -> None:
        self.limit, self.exact = limit, exact
        self.forms: dict[tuple[object, int | None], int] = {}

    def content(self, contents: PdfObject | None, resources: PdfObject | None, depth: int) -> int:
        size, drawn = 0, Counter[bytes]()
        for stream in _streams(contents):
            data = _decoded(stream)
            size += string_bytes(data, self.limit - size) if self.exact else len(data)
            if size > self.limit:
                return size
            drawn.update(_DRAW.findall(data))
        xobjects = _dict(_dict(resources).get("/XObject"))
        for name, times in drawn.items():
            key = "/" + name.decode("latin-1")
            if key in xobjects:
                size += times * self._form(xobjects.raw_get(key), resources, depth)
                if size > self.limit:
                    break
        return size

    def _form(self, ref: PdfObject, resources: PdfObject | None, depth: int) -> int:
        form = ref.get_object()
        if not isinstance(form, StreamObject) or form.get("/Subtype") != "/Form":
            return 0
        if depth >= MAX_FORM_DEPTH:
            return 0
        own = form.get("/Resources")
        identity = (ref.idnum, ref.generation) if isinstance(ref, IndirectObject) else id(form)
        key = (identity, None if own is not None else id(resources))
        if key not in self.forms:
            self.forms[key] = 0  # a form that draws itself adds nothing (PDFium stops it)
            self.forms[key] = self.content(form, own or resources, depth + 1)
        return self.forms[key]


def _streams(contents: PdfObject | None) -> list[StreamObject]:
    found = contents.get_object() if contents is not None else None
    items = [item.get_object() for item in found] if isinstance(found, ArrayObject) else [found]
    return [s for s in items if isinstance(s, StreamObject)]


def _dict(value: PdfObject | None) -> DictionaryObject:
    found = value.get_object() if value is not None else None
    return found if isinstance(found, DictionaryObject) else DictionaryObject()


def _decoded(stream: StreamObject) -> bytes:
    """The stream's data decoded, without pypdf's cache (the extractor decodes it again)."""
    if isinstance(stream, EncodedStreamObject) and stream.decoded_self is None:
        return decode_stream_data(stream)
    return stream.get_data()


def string_bytes(content: bytes, limit: int) -> int:
    """The bytes of the string operands of a content stream (a hex string's digits counted as
    the bytes they make), counted until past `limit`. Every string or dictionary opened counts
    at least one, so the work stays within about `limit` steps whatever the stream holds."""
    count, at, end = 0, 0, len(content)
    while count <= limit and (found := _OUTSIDE.search(content, at)):
        at = found.end()
        token = found.group()
        if token == b"(":
            start, depth = at, 1
            while depth and at - start <= limit and (inside := _IN_LITERAL.search(content, at)):
                at = inside.end()
                char = inside.group()
                if char == b"\\":
                    at += 1
                else:
                    depth += 1 if char == b"(" else -1
            if depth and at - start <= limit:
                at = end  # never closed: the rest of the stream is the string
            count += max(at - start, 1)
        elif token == b"<":
            if content.startswith(b"<", at):
                at += 1  # a dictionary
                count += 1
                continue
            close = content.find(b">", at)
            close = end if close < 0 else close
            count += max((close - at) // 2, 1)
            at = close + 1
        else:
            image_end = _INLINE_END.search(content, at)
            at = end if image_end is None else image_end.end()
            count += 1
    return count
