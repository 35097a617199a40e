"""PDFs made by the tests themselves (fpdf2), so expected text is known exactly."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable

from fpdf import FPDF
from fpdf.enums import EncryptionMethod


def make_pdf(
    pages: list[str | list[str]],
    *,
    title: str | None = None,
    author: str | None = None,
    user_password: str | None = None,
    owner_password: str = "owner-secret",
) -> bytes:
    """One PDF page per item; an item is a text (one line) or a list of lines.

    A `None`-like empty string gives a page with no text layer.
    """
    pdf = FPDF()
    pdf.set_auto_page_break(False)
    if title:
        pdf.set_title(title)
    if author:
        pdf.set_author(author)
    if user_password is not None:
        pdf.set_encryption(
            owner_password=owner_password,
            user_password=user_password,
            encryption_method=EncryptionMethod.AES_128,
        )
    pdf.set_font("Helvetica", size=11)
    for page in pages:
        pdf.add_page()
        lines = [page] if isinstance(page, str) else page
        for line in lines:
            if line:
                pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


PROSE = [
    "Ada Lovelace worked with Charles Babbage in London on the Analytical Engine.",
    "The engine could compute Bernoulli numbers, a result published in 1843.",
    "Alan Turing later studied her notes at the University of Cambridge.",
    "Modern computers in Paris and Tokyo still follow the same basic design.",
]


def roman(n: int) -> str:
    out = ""
    for value, letters in (
        (1000, "m"),
        (900, "cm"),
        (500, "d"),
        (400, "cd"),
        (100, "c"),
        (90, "xc"),
        (50, "l"),
        (40, "xl"),
        (10, "x"),
        (9, "ix"),
        (5, "v"),
        (4, "iv"),
        (1, "i"),
    ):
        while n >= value:
            out, n = out + letters, n - value
    return out


def prose_lines(number: int) -> list[str]:
    """Page `number`'s lines: unique first/last lines (never mistaken for running headers)."""
    r = roman(number).upper()
    return [f"Chapter {r} begins here.", f"Notes on part {r}.", *PROSE, f"End of chapter {r}."]


def prose_pdf(n_pages: int, **kw: object) -> bytes:
    """n pages of English sentences with named entities on every page."""
    return make_pdf([prose_lines(i) for i in range(1, n_pages + 1)], **kw)  # type: ignore[arg-type]


def hooked(marker: str, pages: int = 1, *, unique: bool = False) -> bytes:
    """A valid PDF whose first KiB carries a test-hook marker (a PDF comment line; the server
    needs TORI_TEST_HOOKS=1): `hang`, `crash`, `slow[=S]`, `memory`, `part-crash[=once]`."""
    data = prose_pdf(pages)
    head, rest = data.split(b"\n", 1)
    nonce = f"%{uuid.uuid4()}\n" if unique else ""  # a document no earlier run has seen
    return head + f"\n%tori-test-{marker}\n{nonce}".encode() + rest


# --- hand-built PDFs (content streams fpdf2 would not write) -----------------------------------

TEXT_LINE = b"(" + b"A" * 200 + b") Tj\n"  # 200 characters shown per `Tj`


def flate(parts: Iterable[bytes]) -> bytes:
    """FlateDecode data of the concatenated `parts`, compressed as they come (a bomb's
    hundreds of MB never exist at once here either)."""
    z = zlib.compressobj(9)
    return b"".join(z.compress(part) for part in parts) + z.flush()


def text_stream(chars: int) -> Iterable[bytes]:
    """A text object showing about `chars` characters (rounded up to whole 200-character
    `Tj` lines), yielded in pieces of about 1 MB."""
    lines = -(-chars // 200)
    per_piece = 5000
    yield b"BT /F1 1 Tf 10 700 Td\n"
    for start in range(0, lines, per_piece):
        yield TEXT_LINE * min(per_piece, lines - start)
    yield b"ET\n"


def raw_pdf(pages: list[bytes], forms: dict[str, bytes] | None = None) -> bytes:
    """A PDF whose pages have these FlateDecode'd content streams (already compressed), with
    Helvetica as /F1 and `forms` (name -> compressed content) as form XObjects of every page."""
    forms = forms or {}
    objects: list[bytes] = [b"", b"", b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    form_refs = []
    for name, data in forms.items():
        objects.append(
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font"
            b" << /F1 3 0 R >> >> /Length %d /Filter /FlateDecode >>\nstream\n"
            % len(data)
            + data
            + b"\nendstream"
        )
        form_refs.append(b"/%s %d 0 R" % (name.encode(), len(objects)))
    resources = b"<< /Font << /F1 3 0 R >> /XObject << %s >> >>" % b" ".join(form_refs)
    kids = []
    for data in pages:
        objects.append(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
        )
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources %s"
            b" /Contents %d 0 R >>" % (resources, len(objects))
        )
        kids.append(b"%d 0 R" % len(objects))
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def text_bomb(chars: int, pages: int = 1) -> bytes:
    """A text decompression bomb: each page's content stream shows `chars` characters of
    repeated `(AAAA…) Tj`, which compresses about 250:1 and better (400M characters: 1.6 MB)."""
    stream = flate(text_stream(chars))
    return raw_pdf([stream] * pages)


def form_bomb(chars: int, draws: int) -> bytes:
    """One page drawing a form XObject of `chars` characters `draws` times: the page's own
    content is a few bytes per draw, its text `chars * draws`."""
    page = flate([b"q /X0 Do Q\n" * draws])
    return raw_pdf([page], forms={"X0": flate(text_stream(chars))})


def vector_page(path_bytes: int, text: str = "Only a caption.") -> bytes:
    """A page of `path_bytes` of path operators (a map, a CAD drawing) and one short line of
    text: a large content stream that shows almost no text."""
    line = b"10 10 m 600 780 l S\n"
    paths = line * (path_bytes // len(line) + 1)
    caption = b"BT /F1 12 Tf 72 720 Td (%s) Tj ET\n" % text.encode()
    return raw_pdf([flate([paths, caption])])


class Doc:
    """A structured A4 document, written top to bottom: headings in any style, paragraphs,
    list lines, ruled and unruled tables, two columns, running headers and footers, bookmarks.
    Body text is 11 pt Helvetica; what a test writes is exactly what the page shows."""

    BODY = 11.0

    def __init__(self) -> None:
        self.pdf = FPDF(format="A4")
        self.pdf.set_margins(20, 20, 20)
        self.pdf.set_auto_page_break(True, margin=20)
        self.started = False

    def page(self, header: str | None = None, footer: str | None = None) -> None:
        self.pdf.add_page()
        self.started = True
        self.pdf.set_font("Helvetica", size=9)
        self.pdf.set_auto_page_break(False)  # the footer sits inside the bottom margin
        if header:
            self.pdf.set_xy(20, 8)
            self.pdf.cell(0, 5, header)
        if footer:
            self.pdf.set_xy(20, 283)
            self.pdf.cell(0, 5, footer)
        self.pdf.set_auto_page_break(True, margin=20)
        self.pdf.set_xy(20, 25)

    def at_bottom(self, text: str) -> None:
        """A footer written now, in the middle of the page's content stream."""
        x, y = self.pdf.get_x(), self.pdf.get_y()
        self.pdf.set_auto_page_break(False)
        self.pdf.set_font("Helvetica", size=9)
        self.pdf.set_xy(20, 283)
        self.pdf.cell(0, 5, text)
        self.pdf.set_auto_page_break(True, margin=20)
        self.pdf.set_xy(x, y)

    def _here(self) -> None:
        if not self.started:
            self.page()

    def text(
        self,
        text: str,
        *,
        size: float = BODY,
        bold: bool = False,
        font: str = "Helvetica",
        bookmark: int | None = None,
    ) -> None:
        """One line; `bookmark`: an outline entry at that level (0 = top) pointing here."""
        self._here()
        if bookmark is not None:
            self.pdf.start_section(text, level=bookmark)
        self.pdf.set_font(font, "B" if bold else "", size)
        self.pdf.cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(1.5)

    def paragraph(self, text: str) -> None:
        self._here()
        self.pdf.set_font("Helvetica", size=self.BODY)
        self.pdf.multi_cell(0, 5.5, text, new_x="LMARGIN", new_y="NEXT")
        self.gap()

    def lines(self, lines: list[str]) -> None:
        """Body-size lines one under the other (a list: each wraps under its own start)."""
        self._here()
        self.pdf.set_font("Helvetica", size=self.BODY)
        for line in lines:
            self.pdf.multi_cell(0, 5.5, line, new_x="LMARGIN", new_y="NEXT")

    def gap(self) -> None:
        self.pdf.ln(4)

    def ruled_table(self, rows: list[list[str]]) -> None:
        self._here()
        self.pdf.set_font("Helvetica", size=self.BODY)
        with self.pdf.table() as table:
            for row in rows:
                cells = table.row()
                for value in row:
                    cells.cell(value)
        self.gap()

    def unruled_table(self, rows: list[list[str]], width: float = 35) -> None:
        self._here()
        for i, row in enumerate(rows):
            self.pdf.set_font("Helvetica", "B" if i == 0 else "", self.BODY)
            for value in row:
                self.pdf.cell(width, 6, value)
            self.pdf.ln(6)
        self.gap()

    def columns(
        self, left: list[tuple[str, str]], right: list[tuple[str, str]], width: float = 80
    ) -> None:
        """Two columns of (heading, paragraph) sections, side by side."""
        self._here()
        top = self.pdf.get_y() + 4
        for x, sections in ((20, left), (110, right)):
            self.pdf.set_xy(x, top)
            for heading, text in sections:
                self.pdf.set_x(x)
                self.pdf.set_font("Helvetica", "B", 13)
                self.pdf.cell(width, 7, heading, new_x="LEFT", new_y="NEXT")
                self.pdf.set_font("Helvetica", size=self.BODY)
                self.pdf.multi_cell(width, 5.5, text, new_x="LEFT", new_y="NEXT")
                self.pdf.ln(4)

    def output(self) -> bytes:
        self._here()
        return bytes(self.pdf.output())
