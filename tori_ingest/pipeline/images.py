"""Image documents (PNG, JPEG, multi-page TIFF) as pages to OCR, with bounded memory.

Every frame is checked by its header before a pixel is decoded: what decoding would take
(pixels x bytes per pixel) must fit MAX_DECODE_BYTES, else the job fails `too_large` — a
40,000 x 40,000 PNG is refused without allocating anything. A JPEG that large is decoded
straight at 1/2, 1/4 or 1/8 scale in grey (libjpeg's DCT scaling), so a huge photo still
gets read. Decoded frames are turned upright by their EXIF orientation, made grey and scaled
down to at most MAX_OCR_PIXELS (and to `dpi` when the file says it was scanned finer).
Frames are decoded one at a time, so a long TIFF never holds more than one page in memory.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from collections.abc import Iterator

from PIL import Image, ImageOps

from tori_ingest.core.errors import JobError
from tori_ingest.core.vocab import ErrorCode

MAX_DECODE_BYTES = 256 * 1024 * 1024  # one decoded frame, before it is made grey and scaled
MAX_OCR_PIXELS = 25_000_000  # what OCR reads of one page (A4 at 200 dpi: 3.9 million)
DPI_SLACK = 1.5  # a scan finer than 1.5 x the OCR resolution is scaled down to it

# Pillow's own bomb guard refuses above 2 x MAX_IMAGE_PIXELS; ours (by bytes) is stricter.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)
_READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError)


def frame_count(data: bytes) -> int:
    """How many pages (frames) the image has; JobError if it cannot be read."""
    with _open(data) as image:
        return int(getattr(image, "n_frames", 1))


def pages(data: bytes, *, dpi: int, max_pages: int) -> Iterator[Image.Image]:
    """Each frame as an upright grey image ready for OCR."""
    with _open(data) as image:
        total = int(getattr(image, "n_frames", 1))
        if total > max_pages:
            raise JobError(
                ErrorCode.TOO_MANY_PAGES, f"the image has {total} pages; the limit is {max_pages}"
            )
        for index in range(total):
            try:
                image.seek(index)
                yield _prepare(image, dpi)
            except JobError:
                raise
            except MemoryError:
                raise
            except _READ_ERRORS as exc:
                raise JobError(
                    ErrorCode.CORRUPT_PDF, f"page {index + 1} of the image cannot be read: {exc}"
                ) from None


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise JobError(ErrorCode.TOO_LARGE, f"the image is too large to read: {exc}") from None
    except _READ_ERRORS as exc:
        raise JobError(ErrorCode.CORRUPT_PDF, f"the image cannot be read: {exc}") from None


def decode_bytes(mode: str, size: tuple[int, int]) -> int:
    """Memory Pillow needs for a frame: one byte a pixel for 1/L/P, four for the rest."""
    per_pixel = 1 if mode in ("1", "L", "P") else 4
    return size[0] * size[1] * per_pixel


def _prepare(image: Image.Image, dpi: int) -> Image.Image:
    """Decode one frame within the memory budget; upright, grey, at most MAX_OCR_PIXELS."""
    width, height = image.size
    if width <= 0 or height <= 0:
        raise JobError(ErrorCode.CORRUPT_PDF, "the image has no pixels")
    if image.format == "JPEG" and width * height > MAX_OCR_PIXELS:
        # Decode at the smallest DCT scale still at least MAX_OCR_PIXELS (at most 4 x that).
        factor = math.sqrt(MAX_OCR_PIXELS / (width * height))
        image.draft("L", (math.ceil(width * factor), math.ceil(height * factor)))
    if decode_bytes(image.mode, image.size) > MAX_DECODE_BYTES:
        raise JobError(
            ErrorCode.TOO_LARGE,
            f"a page of the image is {width} x {height} pixels ({image.mode}); at most "
            f"{MAX_DECODE_BYTES >> 20} MB of decoded pixels are read per page",
        )
    frame = ImageOps.exif_transpose(image) or image  # decodes; honours EXIF orientation
    frame = frame.convert("L") if frame.mode != "L" else frame
    return _scaled(frame, image.info.get("dpi"), dpi)


def _scaled(frame: Image.Image, stated: object, dpi: int) -> Image.Image:
    scale = 1.0
    if isinstance(stated, tuple) and stated and isinstance(stated[0], int | float):
        if stated[0] > DPI_SLACK * dpi:
            scale = dpi / float(stated[0])
    pixels = frame.width * frame.height * scale * scale
    if pixels > MAX_OCR_PIXELS:
        scale *= math.sqrt(MAX_OCR_PIXELS / pixels)
    if scale >= 1.0:
        return frame
    size = (max(1, math.floor(frame.width * scale)), max(1, math.floor(frame.height * scale)))
    return frame.resize(size, Image.Resampling.BOX)
