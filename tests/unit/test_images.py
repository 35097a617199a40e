"""Images as documents: recognised by their bytes, multi-page TIFF, EXIF, decode caps, OCR pages."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.helpers import png_header_only
from tests.pdfs import prose_pdf
from tori_ingest.bench import scans
from tori_ingest.core.errors import JobError, Refused
from tori_ingest.core.formats import MediaType, check_document, sniff
from tori_ingest.core.vocab import ErrorCode, PageSource
from tori_ingest.pipeline import images, ocr, scan


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("head", "media"),
    [
        (b"%PDF-1.7\n", MediaType.PDF),
        (b"junk before the header %PDF-1.4", MediaType.PDF),
        (b"\x89PNG\r\n\x1a\n\x00\x00", MediaType.PNG),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", MediaType.JPEG),
        (b"II*\x00\x08\x00\x00\x00", MediaType.TIFF),
        (b"MM\x00*\x00\x00\x00\x08", MediaType.TIFF),
        (b"GIF89a", None),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", None),
        (b"BM6\x00", None),
    ],
)
def test_documents_are_recognised_by_their_bytes(head: bytes, media: MediaType | None) -> None:
    assert sniff(head) == media


def test_anything_else_is_unsupported_type() -> None:
    with pytest.raises(Refused) as refused:
        check_document(b"GIF89a" + b"\x00" * 10, 16, final=True)
    assert refused.value.code is ErrorCode.UNSUPPORTED_TYPE
    assert refused.value.code.http_status == 415
    # While streaming, only a full window without any signature is decisive.
    assert check_document(b"\x89PN", 3, final=False) is None
    assert check_document(b"\x89PNG\r\n\x1a\n", 8, final=False) is MediaType.PNG
    with pytest.raises(Refused):
        check_document(b"x" * 1024, 1024, final=False)
    with pytest.raises(Refused) as empty:
        check_document(b"", 0, final=True)
    assert empty.value.code is ErrorCode.EMPTY_FILE


def test_multi_page_tiff_gives_one_page_per_frame() -> None:
    frames = [Image.new("L", (300 + 10 * i, 200), 255) for i in range(3)]
    data = scans.encode(frames, "TIFF", compression="tiff_deflate")
    assert images.frame_count(data) == 3
    widths = [page.width for page in images.pages(data, dpi=200, max_pages=10)]
    assert widths == [300, 310, 320]
    with pytest.raises(JobError) as capped:
        list(images.pages(data, dpi=200, max_pages=2))
    assert capped.value.code is ErrorCode.TOO_MANY_PAGES


def test_exif_orientation_is_honoured() -> None:
    """A phone photo stored sideways with Orientation=6 (rotate 90° clockwise to view)."""
    page = scans.render(prose_pdf(1), 150)[0]
    sideways = page.rotate(90, expand=True)  # what the sensor stored
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(sideways.convert("RGB"), "JPEG", quality=90, exif=exif.tobytes())
    (upright,) = images.pages(data, dpi=200, max_pages=1)
    assert upright.size == page.size and upright.mode == "L"
    reading = ocr.Engine("eng").read(upright)
    hit, total = scans.word_recall(scans.page_texts(prose_pdf(1))[0], reading.text)
    assert hit / total >= 0.95


def test_huge_png_is_refused_before_decoding() -> None:
    for width, height in ((40_000, 40_000), (9_000, 8_000)):  # 1.6 G and 72 M RGBA pixels
        with pytest.raises(JobError) as refused:
            list(images.pages(png_header_only(width, height), dpi=200, max_pages=10))
        assert refused.value.code is ErrorCode.TOO_LARGE


def test_large_images_are_scaled_to_the_ocr_cap() -> None:
    big_jpeg = encoded(Image.new("L", (8_000, 6_000), 255), "JPEG", quality=50)  # 48 M pixels
    (page,) = images.pages(big_jpeg, dpi=200, max_pages=1)
    assert page.width * page.height <= images.MAX_OCR_PIXELS
    fine_scan = encoded(Image.new("L", (2_400, 3_000), 255), "PNG", dpi=(600, 600))
    (page,) = images.pages(fine_scan, dpi=200, max_pages=1)
    assert page.size == (800, 1_000)  # a 600 dpi scan is read at TORI_OCR_DPI


def test_corrupt_image_fails_typed() -> None:
    with pytest.raises(JobError) as broken:
        list(images.pages(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, dpi=200, max_pages=1))
    assert broken.value.code is ErrorCode.CORRUPT_PDF


def test_image_pages_are_ocr_pages() -> None:
    page = scans.render(prose_pdf(1), 150)[0]
    data = scans.encode([page, page], "TIFF", compression="tiff_lzw")
    out = scan.read(data, scan.Options(), lambda: ocr.Engine("eng"), lambda d, t: None)
    assert out.media_type is MediaType.TIFF and out.ocr_pages == 2
    assert all(p.source is PageSource.OCR for p in out.pages)
