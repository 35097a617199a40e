"""Where a long document is cut into page-range parts (TORI_SPLIT_PAGES): pure functions.

Measured on the 2-core bench machine, one process, each phase timed apart:
- a 48-page scan at 150 dpi: 36.7 s unsplit, 99.6 % of it reading (OCR, ~0.75 s a page);
  prepare 0.07 s, NLP 1.5 s;
- a generated 320-page born-digital book: 14.7 s unsplit, 85 % of it NLP (~19 µs a character);
  reading 1.9 s in 4 parts, 2.8 s in 20 (each part opens the PDF again: ~50 ms for that
  book), prepare 0.5 s; what crosses the process boundary pickles in 40 ms (6.8 MB).
So reading is cut into at least MIN_PARTS parts of at most TORI_SPLIT_PAGES pages of even
size (equal parts end together; with 4 parts of a 48-page scan on 3 processes, the last part
ran alone: 0.64x the unsplit time instead of 0.5x). Where every page has a font (a text
layer: nothing to OCR), a part may hold TEXT_PAGES_FACTOR times as many pages: reading them
is cheap next to reopening the PDF for one more part (the book's read phase, 20 parts of 16
pages, took 1.6 s of its 10.3 s split on two processes). NLP, which is all a born-digital book
costs, by characters once they are known: NLP_PART_CHARS is about 1 s of NLP, against a
part's fixed cost of 30-45 ms of CPU (measured: `bench --long`), in an even number of parts
(the book's 15 parts left its last second to one process of two).
"""

from __future__ import annotations

import math

MIN_PARTS = 8  # small enough that the last round of parts leaves few processes idle
TEXT_PAGES_FACTOR = 4
NLP_PART_CHARS = 50_000


def read_ranges(pages: int, split_pages: int, to_ocr: int | None = None) -> list[tuple[int, int]]:
    """(first, last) page ranges to read, or [] when the document is not split (TORI_SPLIT_PAGES
    0, or no more pages than that). `to_ocr`: how many pages may need OCR (None: any)."""
    if split_pages <= 0 or pages <= split_pages:
        return []
    most = split_pages * (TEXT_PAGES_FACTOR if to_ocr == 0 else 1)
    return _even(pages, min(pages, max(MIN_PARTS, math.ceil(pages / most))))


def nlp_ranges(chars: list[int], part_chars: int = NLP_PART_CHARS) -> list[tuple[int, int]]:
    """(first, last) page ranges of about `part_chars` characters each (whole pages)."""
    total = sum(chars)
    parts = max(1, math.ceil(total / part_chars))
    parts += parts % 2 if parts > 1 else 0  # an even count: two processes end together
    parts = min(len(chars), parts)
    target = total / parts
    ranges: list[tuple[int, int]] = []
    first, seen = 1, 0
    for number, count in enumerate(chars, 1):
        seen += count
        left = len(chars) - number
        if (seen >= target * (len(ranges) + 1) or left < parts - len(ranges) - 1) and left:
            if len(ranges) < parts - 1:
                ranges.append((first, number))
                first = number + 1
    ranges.append((first, len(chars)))
    return ranges


def _even(pages: int, parts: int) -> list[tuple[int, int]]:
    size, extra = divmod(pages, parts)
    ranges: list[tuple[int, int]] = []
    first = 1
    for i in range(parts):
        last = first + size - 1 + (1 if i < extra else 0)
        ranges.append((first, last))
        first = last + 1
    return ranges
