"""PDFs made by the tests themselves (fpdf2), so expected text is known exactly."""

from __future__ import annotations

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


def hooked(marker: str, pages: int = 1) -> bytes:
    """A valid PDF whose first KiB carries a test-hook marker (a PDF comment line; the server
    needs TORI_TEST_HOOKS=1): `hang`, `crash`, `slow[=S]`, `memory`."""
    data = prose_pdf(pages)
    head, rest = data.split(b"\n", 1)
    return head + f"\n%tori-test-{marker}\n".encode() + rest
