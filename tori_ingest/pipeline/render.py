"""PDF pages as images (pypdfium2), and how much of a page its images cover.

pypdf reads the text layer; PDFium (in the pypdfium2 wheel) draws pages, which pypdf cannot.
The document is opened only when a page needs looking at, so a born-digital PDF never pays.
A page is rendered in grey at the OCR resolution, scaled down to at most MAX_OCR_PIXELS
(a 200 x 200 inch page is not a 1.6-gigapixel bitmap).
"""

from __future__ import annotations

import math

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from tori_ingest.pipeline.images import MAX_OCR_PIXELS

POINTS_PER_INCH = 72
_IMAGE, _FORM = pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_FORM


class Renderer:
    """One PDF opened with PDFium, for the pages that need it."""

    def __init__(self, data: bytes, password: str | None) -> None:
        try:
            self._doc = pdfium.PdfDocument(data, password=password)
        except pdfium.PdfiumError:
            if not password:
                raise
            # pypdf accepted the empty user password after the submitted one failed.
            self._doc = pdfium.PdfDocument(data)

    def close(self) -> None:
        self._doc.close()

    def image_coverage(self, index: int) -> float:
        """Share of the page's area under images (top-level, or forms holding one), 0-1.

        Overlapping images count twice, so this is an upper bound; a scan is one image that
        covers the page, a born-digital page's logo a few per cent.
        """
        page = self._doc[index]
        try:
            width, height = page.get_size()
            if width <= 0 or height <= 0:
                return 0.0
            covered = 0.0
            for obj in page.get_objects(filter=[_IMAGE, _FORM], max_depth=1):
                if obj.type == _FORM and not _holds_image(page, obj):
                    continue
                left, bottom, right, top = obj.get_bounds()
                w = min(right, width) - max(left, 0.0)
                h = min(top, height) - max(bottom, 0.0)
                if w > 0 and h > 0:
                    covered += w * h
            return float(min(1.0, covered / (width * height)))
        finally:
            page.close()

    def render(self, index: int, dpi: int) -> Image.Image | None:
        """The page in 8-bit grey at `dpi` (capped at MAX_OCR_PIXELS); None if it has no area."""
        page = self._doc[index]
        try:
            width, height = page.get_size()
            scale = dpi / POINTS_PER_INCH
            pixels = width * height * scale * scale
            if pixels < 1:
                return None
            if pixels > MAX_OCR_PIXELS:
                scale *= math.sqrt(MAX_OCR_PIXELS / pixels)
            bitmap = page.render(scale=scale, grayscale=True, may_draw_forms=True)
            try:
                image: Image.Image = bitmap.to_pil().copy()  # outlives PDFium's buffer
                return image
            finally:
                bitmap.close()
        finally:
            page.close()


def _holds_image(page: pdfium.PdfPage, form: pdfium.PdfObject) -> bool:
    return any(True for _ in page.get_objects(filter=[_IMAGE], form=form, max_depth=8))
