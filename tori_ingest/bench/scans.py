"""Generated scans whose text is known: text PDFs (fpdf2) rendered to images (pypdfium2),
roughened like a scanner or a phone would (noise, skew, blur, JPEG), and packed back into an
image-only PDF or written as PNG/JPEG/TIFF. Used by `bench --ocr` and the OCR tests.
"""

from __future__ import annotations

import io
import random
import re
from collections import Counter
from dataclasses import dataclass

import pypdfium2 as pdfium
from fpdf import FPDF
from PIL import Image, ImageFilter

from tori_ingest.bench.data import prose_pdf

A4_MM = (210, 297)


@dataclass(frozen=True)
class Rough:
    """How a page is roughened: skew in degrees, share of flipped pixels, blur radius."""

    skew: float = 0.0
    noise: float = 0.0
    blur: float = 0.0
    jpeg_quality: int | None = None


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def word_recall(truth: str, found: str) -> tuple[int, int]:
    """(words of `truth` found, words of `truth`), counting repeats."""
    want, got = Counter(words(truth)), Counter(words(found))
    return sum(min(c, got[w]) for w, c in want.items()), sum(want.values())


def page_texts(pdf: bytes) -> list[str]:
    """The text of each page of a born-digital PDF (the truth a scan of it should give)."""
    doc = pdfium.PdfDocument(pdf)
    try:
        return [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    finally:
        doc.close()


def render(pdf: bytes, dpi: int) -> list[Image.Image]:
    doc = pdfium.PdfDocument(pdf)
    try:
        return [
            doc[i].render(scale=dpi / 72, grayscale=True).to_pil().copy() for i in range(len(doc))
        ]
    finally:
        doc.close()


def roughen(image: Image.Image, rough: Rough, seed: int) -> Image.Image:
    """Skew, blur and salt-and-pepper noise, as a cheap scanner would add them."""
    out = image.convert("L")
    if rough.skew:
        out = out.rotate(rough.skew, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=255)
    if rough.blur:
        out = out.filter(ImageFilter.GaussianBlur(rough.blur))
    if rough.noise:
        rng = random.Random(seed)
        pixels = out.load()
        assert pixels is not None
        for _ in range(int(out.width * out.height * rough.noise)):
            x, y = rng.randrange(out.width), rng.randrange(out.height)
            pixels[x, y] = 255 - pixels[x, y]  # type: ignore[operator]
    if rough.jpeg_quality:
        buffer = io.BytesIO()
        out.save(buffer, "JPEG", quality=rough.jpeg_quality)
        out = Image.open(io.BytesIO(buffer.getvalue()))
        out.load()
    return out


def image_pdf(images: list[Image.Image], stamp: str | None = None) -> bytes:
    """An image-only PDF, one A4 page per image; `stamp`: a small real-text header line on
    the first page (what a fax machine or a scanning app adds)."""
    pdf = FPDF()
    pdf.set_auto_page_break(False)
    for number, image in enumerate(images, 1):
        pdf.add_page()
        pdf.image(image, x=0, y=0, w=A4_MM[0], h=A4_MM[1])
        if stamp and number == 1:
            pdf.set_font("Helvetica", size=7)
            pdf.set_xy(5, 2)
            pdf.cell(0, 3, stamp)
    return bytes(pdf.output())


def encode(images: list[Image.Image], fmt: str, **params: object) -> bytes:
    """PNG/JPEG of one image, or a multi-page TIFF of several."""
    buffer = io.BytesIO()
    first, *rest = images
    if rest:
        first.save(buffer, fmt, save_all=True, append_images=rest, **params)
    else:
        first.save(buffer, fmt, **params)
    return buffer.getvalue()


@dataclass(frozen=True)
class Scan:
    name: str
    data: bytes
    truth: list[str]  # each page's text


def scan_set(seed: int = 3, dpi: int = 200, pages: int = 2) -> list[Scan]:
    """Generated scans of prose: clean, noisy and skewed, blurred JPEG, with a stamped header."""
    roughs = {
        "clean": Rough(),
        "noisy-skewed": Rough(skew=1.5, noise=0.01),
        "blurred-jpeg": Rough(skew=-0.8, blur=0.8, jpeg_quality=40),
    }
    out = []
    for k, (name, rough) in enumerate(roughs.items()):
        source = prose_pdf(pages, seed * 100 + k, words_per_page=250)
        truth = page_texts(source)
        images = [roughen(img, rough, seed + i) for i, img in enumerate(render(source, dpi))]
        out.append(Scan(f"scan-{name}.pdf", image_pdf(images), truth))
    source = prose_pdf(1, seed * 100 + 9, words_per_page=250)
    stamp = "Received 03/12/2024 14:02 Fax +49 30 1234567 p. 1/1"
    images = [roughen(img, Rough(noise=0.005), seed) for img in render(source, dpi)]
    out.append(Scan("scan-stamped.pdf", image_pdf(images, stamp), [page_texts(source)[0]]))
    return out
